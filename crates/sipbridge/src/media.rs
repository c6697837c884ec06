//! The RTP relay behind the call policy: one port pair per leg from `[media] ports`,
//! packets forwarded between the legs with symmetric latching (`sip_tokio::relay`).
//!
//! The relay runs on a thread and runtime of its own, so a media storm never delays
//! signalling. The RTP inactivity timeout (`[media] timeout_s`) starts at the answer:
//! ringing without early media is silence that must not hang the call up.
//!
//! Payload types ([`payloads`], pushed after every completed offer/answer): each leg
//! negotiates its own numbers (RFC 3264 §8.3.2), so the relay is told, per leg, the
//! numbers that leg's endpoint sends with (for DTMF detection and recording) and how to
//! renumber what it forwards to the other leg (`docs/MEDIA_FEATURES.md`).

use crate::calls::{LegCounters, MediaBackend, RelayTotals};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use sip_core::b2bua::{B2bua, CallId, Side};
use sip_core::sdp::{self, SessionDescription};
use sip_tokio::media_relay::{Codec, Format, Leg, LegStats, PayloadMap, PayloadTranslation, SessionConfig};
use sip_tokio::{MediaEvent, MediaHandle, MediaRelay, WarmSockets};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the relay is told of a call's payload types, from the SDPs in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payloads {
    /// Per leg (index = [`Leg::index`]): the numbers that leg's endpoint sends with, for
    /// DTMF detection and recording (`MediaHandle::set_payload_types`).
    pub maps: [HashMap<u8, Codec>; 2],
    /// Per leg: how the RTP received from it is renumbered for the other leg.
    pub translation: [PayloadTranslation; 2],
}

/// The payload-type numbers an endpoint sends with, in the order they count: the SDP
/// we sent it (RFC 3264 §5.1/§6.1: an SDP names the numbers its sender expects to
/// receive, so the endpoint sends with ours), then the numbers of its own SDP that ours
/// does not use (a symmetric endpoint that sends with the numbers it declared — common
/// when it answered with numbers of its own).
fn sent_with(ours: Option<&SessionDescription>, theirs: Option<&SessionDescription>) -> Vec<sdp::Codec> {
    let mut codecs = ours.map(SessionDescription::audio_codecs).unwrap_or_default();
    for c in theirs.map(SessionDescription::audio_codecs).unwrap_or_default() {
        if !codecs.iter().any(|k| k.payload_type == c.payload_type) {
            codecs.push(c);
        }
    }
    codecs
}

fn formats(codecs: &[sdp::Codec]) -> Vec<Format<'_>> {
    codecs.iter().map(|c| Format { payload_type: c.payload_type, name: &c.name, clock_rate: c.clock_rate, channels: c.channels }).collect()
}

/// The payload types of `call` from the SDPs in force on its legs: leg X's endpoint
/// sends with `sent_with` (`local_sdp(X)` first), and what it sends goes to leg Y
/// with the numbers Y's endpoint declared it receives (`remote_sdp(Y)`), matched by
/// encoding name, clock rate and channels. Before any answer (or for a call that is
/// gone) the maps are empty and the translation the identity.
pub fn payloads(b2bua: &B2bua, call: CallId) -> Payloads {
    let [a, b] = [Side::A, Side::B];
    let (local, remote) = ([b2bua.local_sdp(call, a), b2bua.local_sdp(call, b)], [b2bua.remote_sdp(call, a), b2bua.remote_sdp(call, b)]);
    payloads_of(local.each_ref().map(Option::as_ref), remote.each_ref().map(Option::as_ref))
}

/// [`payloads`] from the SDPs in force, per leg (index = [`Leg::index`]): `local` the
/// ones we sent, `remote` the ones the endpoints sent.
pub fn payloads_of(local: [Option<&SessionDescription>; 2], remote: [Option<&SessionDescription>; 2]) -> Payloads {
    let sent = [0, 1].map(|i| sent_with(local[i], remote[i]));
    let received = remote.map(|r| r.map(SessionDescription::audio_codecs).unwrap_or_default());
    let maps = [0, 1].map(|i| sent[i].iter().map(|c| (c.payload_type, Codec::from_rtpmap(&c.name, c.clock_rate))).collect());
    let translation = [0, 1].map(|i| PayloadTranslation::between(&formats(&sent[i]), &formats(&received[1 - i])));
    Payloads { maps, translation }
}

/// One open call on the relay.
struct Open {
    handle: MediaHandle,
    /// What the relay was last told; `None`: nothing but what its defaults say already,
    /// as for most calls. Boxed: the table's spare room holds an `Open` for nothing,
    /// and `Payloads` is about 350 bytes.
    payloads: Option<Box<Payloads>>,
}

/// Whether the relay reads `p` as its defaults (static G.711 and telephone-event 101,
/// no renumbering): telling it would change nothing.
fn relay_default(p: &Payloads) -> bool {
    let defaults = PayloadMap::default();
    Leg::BOTH.iter().all(|l| PayloadMap::new(&p.maps[l.index()]) == defaults && p.translation[l.index()] == PayloadTranslation::IDENTITY)
}

/// The relay and the open calls' handles.
pub struct Relay {
    relay: MediaRelay,
    handles: HashMap<CallId, Open>,
    timeout: Duration,
    /// `[media] rtp_keepalive_s`, armed with the timeout at the answer.
    keepalive: Duration,
    /// Counters of closed calls, so the totals only grow.
    closed: RelayTotals,
}

fn leg(side: Side) -> Leg {
    match side {
        Side::A => Leg::A,
        Side::B => Leg::B,
    }
}

impl Relay {
    /// A relay on `address` with ports `first..=last`, running on its own thread; its
    /// events (an inactive call, latching) go to `events`.
    pub fn start(
        address: IpAddr,
        ports: (u16, u16),
        timeout: Duration,
        keepalive: Duration,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Relay> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new().name("sipbridge-media".into()).spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(Relay {
            relay: MediaRelay::with_runtime(handle, address, ports, events).with_warm_sockets(warm_sockets(fd_limit())),
            handles: HashMap::new(),
            timeout,
            keepalive,
            closed: RelayTotals::default(),
        })
    }
}

/// Socket pairs of ended calls kept open for the next calls (see
/// [`sip_tokio::WarmSockets`]): an eighth of the file descriptors allowed, at most 8,192
/// pairs, enough to save most binds at 2,000 calls a second; two seconds' quarantine, so
/// the last packets of a call that ended are long gone when the next call gets its port.
fn warm_sockets(fd_limit: u64) -> WarmSockets {
    let limit = usize::try_from(fd_limit / 8).unwrap_or(usize::MAX).min(8192);
    WarmSockets { limit, quarantine: Duration::from_secs(2), idle: Duration::from_secs(30) }
}

/// The soft limit on open files (`RLIMIT_NOFILE`; `u64::MAX` when unlimited).
pub fn fd_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for every
/// program: each relayed call holds four sockets, and the usual soft limit of 1024 would
/// stop the relay at about 250 calls. Returns the soft limit in force afterwards.
pub fn raise_fd_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum || (limit.current.is_some() && limit.maximum.is_none()) {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit to the hard limit");
        }
    }
    fd_limit()
}

fn counters(s: &LegStats) -> LegCounters {
    LegCounters {
        packets_in: s.packets_in,
        bytes_in: s.bytes_in,
        packets_out: s.packets_out,
        bytes_out: s.bytes_out,
        lost: s.lost,
        last_packet_ms: s.last_packet_at.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        latched: s.latched,
        keepalives_sent: s.keepalives_sent,
    }
}

fn add(t: &mut RelayTotals, stats: &[LegStats; 2]) {
    for s in stats {
        t.packets_in += s.packets_in;
        t.packets_out += s.packets_out;
        t.lost += s.lost;
    }
}

impl MediaBackend for Relay {
    fn open(&mut self, call: CallId, local: [IpAddr; 2], nat: [bool; 2]) -> Result<[SocketAddr; 2], String> {
        // No timeout while ringing; `answered` arms it.
        let h = self
            .relay
            .open(call.0, local, SessionConfig { timeout: Duration::ZERO, nat, keepalive: Duration::ZERO })
            .map_err(|e| e.to_string())?;
        let addrs = [h.local(Leg::A), h.local(Leg::B)];
        self.handles.insert(call, Open { handle: h, payloads: None });
        Ok(addrs)
    }

    fn set_remote(&mut self, call: CallId, side: Side, remote: Option<SocketAddr>) {
        if let Some(Open { handle: h, .. }) = self.handles.get(&call) {
            h.set_remote(leg(side), remote);
        }
    }

    fn answered(&mut self, call: CallId) {
        if let Some(Open { handle: h, .. }) = self.handles.get(&call) {
            // Each command wakes the media thread: none that would change nothing (the
            // session was opened without a timeout).
            if !self.timeout.is_zero() {
                h.set_timeout(self.timeout);
                h.restart_timeout();
            }
            if !self.keepalive.is_zero() {
                h.set_keepalive(self.keepalive);
            }
        }
    }

    fn close(&mut self, call: CallId) {
        if let Some(Open { handle: h, .. }) = self.handles.remove(&call) {
            add(&mut self.closed, &h.stats());
            h.close();
        }
    }

    fn leg_stats(&self, call: CallId) -> Option<[LegCounters; 2]> {
        self.handles.get(&call).map(|o| o.handle.stats().map(|s| counters(&s)))
    }

    fn start_recording(&mut self, call: CallId, files: [Option<std::path::PathBuf>; 2]) -> Result<(), String> {
        let open = self.handles.get(&call).ok_or("the call has no relay ports")?;
        // The legs' own numbers; static G.711 and telephone-event 101 before any answer.
        let maps = open.payloads.as_ref().map(|p| p.maps.clone()).unwrap_or_default();
        open.handle.start_recording(files, maps);
        Ok(())
    }

    fn stop_recording(&mut self, call: CallId) {
        if let Some(Open { handle: h, .. }) = self.handles.get(&call) {
            h.stop_recording();
        }
    }

    fn set_payloads(&mut self, call: CallId, payloads: Payloads) {
        let Some(open) = self.handles.get_mut(&call) else { return };
        let before = open.payloads.take().map(|p| *p).unwrap_or_default();
        for l in Leg::BOTH {
            let i = l.index();
            // Compared as the relay reads them (defaults filled in), so a call that only
            // uses the defaults (PCMU 0, PCMA 8, CN 13, telephone-event 101) costs no
            // command, and no wake-up of the media thread.
            if PayloadMap::new(&payloads.maps[i]) != PayloadMap::new(&before.maps[i]) {
                open.handle.set_payload_types(l, &payloads.maps[i]);
            }
            if payloads.translation[i] != before.translation[i] {
                tracing::debug!(%call, from = ?l, translation = ?payloads.translation[i], "relay: payload-type translation");
                open.handle.set_payload_translation(l, payloads.translation[i].clone());
            }
        }
        open.payloads = (!relay_default(&payloads)).then(|| Box::new(payloads));
    }

    fn set_forwarding(&mut self, call: CallId, on: bool) {
        if let Some(Open { handle: h, .. }) = self.handles.get(&call) {
            h.set_forwarding(on);
        }
    }

    fn totals(&self) -> RelayTotals {
        let mut t = self.closed;
        for o in self.handles.values() {
            add(&mut t, &o.handle.stats());
        }
        t.open_calls = self.handles.len() as u64;
        t.free_pairs = self.relay.available() as u64;
        t
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn warm_sockets_take_an_eighth_of_the_file_limit_up_to_8192_pairs() {
        assert_eq!(warm_sockets(1024).limit, 128, "the usual soft limit: 256 descriptors kept warm");
        assert_eq!(warm_sockets(20_000).limit, 2500);
        assert_eq!(warm_sockets(1 << 20).limit, 8192);
        assert_eq!(warm_sockets(u64::MAX).limit, 8192, "unlimited");
        assert_eq!(warm_sockets(7).limit, 0, "too few descriptors to spare: off");
        assert!(fd_limit() > 0);
    }

    fn sd(formats: &str, rtpmaps: &str) -> SessionDescription {
        let text =
            format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP {formats}\r\n{rtpmaps}");
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn each_direction_gets_the_receivers_numbers() {
        // The caller offered PCMU, opus 111 and telephone-event 101 and was answered with
        // its own numbers; we offered the callee the same, and it answered opus as 107
        // and telephone-event as 96.
        let caller = sd("0 111 101", "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n");
        let callee = sd("0 107 96", "a=rtpmap:107 opus/48000/2\r\na=rtpmap:96 telephone-event/8000\r\n");
        let p = payloads_of([Some(&caller), Some(&caller)], [Some(&caller), Some(&callee)]);
        let a: Vec<_> = p.translation[0].pairs().collect();
        assert_eq!(a, [(101, 96), (111, 107)]);
        let b: Vec<_> = p.translation[1].pairs().collect();
        assert_eq!(b, [(96, 101), (107, 111)], "the callee's own numbers too, for a symmetric sender");
        assert_eq!(p.maps[0].get(&101), Some(&Codec::TelephoneEvent { clock_rate: 8000 }));
        assert_eq!(p.maps[1].get(&101), Some(&Codec::TelephoneEvent { clock_rate: 8000 }), "the numbers of our offer");
        assert_eq!(p.maps[1].get(&96), Some(&Codec::TelephoneEvent { clock_rate: 8000 }), "and its own");
        assert_eq!(payloads_of([None, None], [None, None]), Payloads::default());
    }
}
