//! Session timers (RFC 4028) on one leg: the refresher re-INVITEs or UPDATEs every half
//! interval; the other side hangs up when no refresh came in time.

use crate::Time;
use bytes::Bytes;
use sip_message::{Header, HeaderName, Headers};
use std::time::Duration;

/// The smallest interval we accept (RFC 4028 §5: Min-SE never below 90 s).
pub const MIN_SE: u32 = 90;

/// Who refreshes, as the `refresher` parameter says it (relative to the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC of the request.
    Uac,
    /// The UAS of the request.
    Uas,
}

/// A `Session-Expires` value: the interval and the optional refresher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// Seconds.
    pub interval: u32,
    /// Who refreshes, if said.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// The first `Session-Expires` row (`x` compact), if any and well formed.
    pub fn of(h: &Headers) -> Option<SessionExpires> {
        let row = h.get(HeaderName::SessionExpires)?;
        let v = row.value_str()?;
        let mut parts = v.split(';');
        let interval = parts.next()?.trim().parse().ok()?;
        let refresher = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match v.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            }
        });
        Some(SessionExpires { interval, refresher })
    }

    /// The row to send.
    pub fn header(self) -> Header {
        let v = match self.refresher {
            Some(Refresher::Uac) => format!("{};refresher=uac", self.interval),
            Some(Refresher::Uas) => format!("{};refresher=uas", self.interval),
            None => self.interval.to_string(),
        };
        Header::new(HeaderName::SessionExpires, Bytes::from(v))
    }
}

/// Whether `Supported` (or `Require`) lists the `timer` option tag.
pub fn supports_timer(h: &Headers) -> bool {
    [HeaderName::Supported, HeaderName::Require]
        .into_iter()
        .any(|n| h.values(n).any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"timer"))))
}

/// A leg's running session timer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimer {
    pub interval: Duration,
    /// We refresh (else the peer does, and we watch for expiry).
    pub we_refresh: bool,
    /// When to act: our next refresh, or the peer's deadline.
    pub due_at: Time,
}

impl SessionTimer {
    pub fn start(now: Time, interval: u32, we_refresh: bool) -> SessionTimer {
        let mut t = SessionTimer { interval: Duration::from_secs(u64::from(interval)), we_refresh, due_at: now };
        t.refreshed(now);
        t
    }

    /// A refresh succeeded (a 2xx to a re-INVITE or UPDATE on the leg): RFC 4028 §10,
    /// the refresher sends the next one at half the interval; the other side gives up
    /// `min(32 s, interval/3)` before the session would expire.
    pub fn refreshed(&mut self, now: Time) {
        self.due_at = if self.we_refresh {
            now + self.interval / 2
        } else {
            now + (self.interval - (self.interval / 3).min(Duration::from_secs(32)))
        };
    }

    /// `Session-Expires` for a 2xx to a request the peer sent on this leg.
    pub fn in_response(&self) -> SessionExpires {
        SessionExpires { interval: self.secs(), refresher: Some(if self.we_refresh { Refresher::Uas } else { Refresher::Uac }) }
    }

    /// `Session-Expires` for a request we send on this leg.
    pub fn in_request(&self) -> SessionExpires {
        SessionExpires { interval: self.secs(), refresher: Some(if self.we_refresh { Refresher::Uac } else { Refresher::Uas }) }
    }

    fn secs(&self) -> u32 {
        u32::try_from(self.interval.as_secs()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let mut h = Headers::new();
        h.push(Header::new(HeaderName::SessionExpires, Bytes::from_static(b"1800 ; refresher = UAS")));
        h.push(Header::new(HeaderName::Supported, Bytes::from_static(b"replaces, timer")));
        let se = SessionExpires::of(&h);
        assert_eq!(se, Some(SessionExpires { interval: 1800, refresher: Some(Refresher::Uas) }));
        assert!(supports_timer(&h));
        assert_eq!(SessionExpires { interval: 90, refresher: None }.header().value(), b"90");
    }

    #[test]
    fn deadlines_follow_section_10() {
        let t = SessionTimer::start(Time::ZERO, 90, true);
        assert_eq!(t.due_at, Time::from_millis(45_000));
        let t = SessionTimer::start(Time::ZERO, 90, false);
        assert_eq!(t.due_at, Time::from_millis(60_000));
        let t = SessionTimer::start(Time::ZERO, 1800, false);
        assert_eq!(t.due_at, Time::from_millis(1_768_000));
    }
}
