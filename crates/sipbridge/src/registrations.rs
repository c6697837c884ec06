//! REGISTER (RFC 3261 §10.3) for endpoints with `host = "dynamic"`: authenticate
//! (401), check the address-of-record is the authenticated endpoint's own, apply the
//! binding changes, answer with every current binding.
//!
//! The AOR is the To URI's user part, which must name the endpoint whose credentials
//! were given (else 403: nobody registers somebody else's phone). The host part is not
//! checked: phones are configured with our IP address as often as with our domain.
//! Persistence is the caller's: the registrar queues every change
//! ([`sip_core::registrar::Registrar::poll_change`]).

use crate::access::{Outcome, Owed};
use crate::calls::{Calls, MediaBackend};
use crate::config::{EndpointHost, Nat};
use crate::guard::Admission;
use crate::store;
use sip_core::digest::Challenger;
use sip_core::nat::{self, NatEvidence};
use sip_core::registrar::{Binding, Change};
use sip_core::sip_message::bytes::Bytes;
use sip_core::sip_message::{Header, NameAddr, Request, Uri};
use sip_core::{Endpoint, Flow, Time, TransactionId, Transport};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

impl<M: MediaBackend> Calls<M> {
    /// Answers a REGISTER (now, or later for a throttled source).
    ///
    /// The guard's verdict is taken as the request arrives: the answer to the failure
    /// that reaches `throttle_after` goes out at once, every later one is held back.
    pub fn register(&mut self, now: Time, ep: &mut Endpoint, tx: TransactionId, request: &Request, source: &Flow) {
        let admission = self.access.admit(now, source.remote.ip());
        let (status, headers) = self.register_answer(now, admission, request, source);
        self.answer_tx(now, ep, tx, admission, status, headers);
    }

    /// Sends an answer to a server transaction, or holds it back when the source was
    /// throttled when the request came.
    pub(crate) fn answer_tx(
        &mut self,
        now: Time,
        ep: &mut Endpoint,
        tx: TransactionId,
        admission: Admission,
        status: u16,
        headers: Vec<Header>,
    ) {
        if let Admission::Throttled(d) = admission {
            self.access.delay(now + d, Owed::Tx(tx), status, headers);
            return;
        }
        if let Err(e) = ep.reply(now, tx, status, headers) {
            tracing::debug!(%tx, error = %e, "could not answer REGISTER");
        }
    }

    /// Puts back the bindings the store kept (at start-up, before any input); expired
    /// ones and rows that no longer parse are skipped, and counted in the return value.
    pub fn restore(&mut self, now: Time, rows: Vec<store::Binding>) -> (usize, usize) {
        let (mut kept, mut skipped) = (0, 0);
        let now_unix = unix(self.wall(now));
        for row in rows {
            if row.expires_at <= now_unix {
                skipped += 1;
                continue;
            }
            match self.binding_of_row(now, &row) {
                Some(b) => {
                    self.registrar.restore(now, &row.aor, b);
                    kept += 1;
                }
                None => {
                    tracing::warn!(endpoint = %row.aor, contact = %row.contact, "stored binding does not parse: dropped");
                    skipped += 1;
                }
            }
        }
        (kept, skipped)
    }

    fn binding_of_row(&self, now: Time, row: &store::Binding) -> Option<Binding> {
        let contact = NameAddr::parse(&Bytes::from(row.original_contact.clone())).ok()?;
        let target = match &row.target {
            Some(t) => Uri::parse_str(t).ok()?,
            None => contact.uri().clone(),
        };
        let (t, remote) = row.source.split_once(':')?;
        let transport = match t {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return None,
        };
        let remote: SocketAddr = remote.parse().ok()?;
        let local = self.listeners.iter().find(|(x, _)| *x == transport).map(|(_, a)| *a)?;
        let left = row.expires_at.saturating_sub(unix(self.wall(now)));
        Some(Binding {
            contact,
            target,
            source: Flow { transport, local, remote, connection: None },
            nat: row.nat.as_deref().and_then(NatEvidence::parse),
            call_id: row.call_id.clone(),
            cseq: row.cseq,
            expires_at: now + Duration::from_secs(left),
            q: row.q,
            instance: row.instance.clone(),
            user_agent: row.user_agent.clone(),
        })
    }

    /// A registrar change as the store writes it.
    pub fn persist(&self, change: &Change, store: &store::StoreHandle) {
        match change {
            Change::Put { aor, binding } => store.put(self.to_row(aor, binding)),
            Change::Removed { aor, contact, .. } => store.remove(aor, &contact.to_string()),
        }
    }

    fn to_row(&self, aor: &str, b: &Binding) -> store::Binding {
        let t = match b.source.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        store::Binding {
            aor: aor.to_owned(),
            contact: b.contact.uri().to_string(),
            original_contact: b.contact.to_string(),
            target: Some(b.target.to_string()),
            nat: b.nat.map(|n| n.to_string()),
            source: format!("{t}:{}", b.source.remote),
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_at: unix(self.boot + b.expires_at.since_origin()),
            q: b.q,
            instance: b.instance.clone(),
            user_agent: b.user_agent.clone(),
        }
    }

    fn register_answer(&mut self, now: Time, admission: Admission, request: &Request, source: &Flow) -> (u16, Vec<Header>) {
        let ip = source.remote.ip();
        if let Admission::Banned(_) = admission {
            return (403, Vec::new());
        }
        // §10.2: the AOR in To is a SIP or SIPS URI (RFC 4475 `unksm2`).
        if request.to().uri().as_sip().is_none() {
            return (400, Vec::new());
        }
        let index = match self.access.authenticate(now, Challenger::UserAgent, request, ip) {
            Outcome::Endpoint(i) => i,
            Outcome::Answer(status, headers) => return (status, headers),
        };
        let e = &self.config.endpoints[index];
        let aor = request.to().uri().as_sip().and_then(|u| u.user_decoded()).map(|u| String::from_utf8_lossy(&u).into_owned());
        if aor.as_deref() != Some(e.name.as_str()) {
            tracing::info!(endpoint = %e.name, aor = ?aor, remote = %source.remote, "REGISTER for another AOR refused");
            return (403, Vec::new());
        }
        if e.host != EndpointHost::Dynamic {
            tracing::info!(endpoint = %e.name, remote = %source.remote, "REGISTER for an endpoint with a static host refused");
            return (403, Vec::new());
        }
        let nat = match e.nat {
            Nat::Yes => Some(nat::detect(request, source).unwrap_or(NatEvidence::Configured)),
            Nat::Auto => nat::detect(request, source),
            Nat::No => None,
        };
        let name = e.name.clone();
        match self.registrar.register(now, &name, request, source, nat) {
            Ok(mut headers) => {
                headers.push(Header::other("Date", http_date(self.wall(now))));
                (200, headers)
            }
            Err(err) => {
                tracing::info!(endpoint = %name, remote = %source.remote, error = %err, "REGISTER refused");
                (err.status(), err.headers())
            }
        }
    }
}

/// Unix seconds of `t`.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// RFC 3261 §20.17 / RFC 1123 date: `Tue, 01 Dec 2026 15:04:58 GMT`. Phones without a
/// clock of their own set it from the 200 to REGISTER.
pub fn http_date(t: std::time::SystemTime) -> String {
    let secs = unix(t);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::api::civil_from_days(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][usize::try_from(days % 7).unwrap_or(0)];
    let name = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [usize::try_from(month.saturating_sub(1)).unwrap_or(0)];
    format!("{weekday}, {day:02} {name} {year} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 3261 §20.17's example.
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(1_289_690_940)), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(1_796_137_498)), "Tue, 01 Dec 2026 15:04:58 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
