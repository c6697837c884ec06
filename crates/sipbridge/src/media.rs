//! The RTP relay behind the call policy: one port pair per leg from `[media] ports`,
//! packets forwarded between the legs with symmetric latching (`sip_tokio::relay`).
//!
//! The relay runs on a thread and runtime of its own, so a media storm never delays
//! signalling. The RTP inactivity timeout (`[media] timeout_s`) starts at the answer:
//! ringing without early media is silence that must not hang the call up.

use crate::calls::{LegCounters, MediaBackend, RelayTotals};
use sip_core::b2bua::{CallId, Side};
use sip_tokio::media_relay::{Leg, LegStats, SessionConfig};
use sip_tokio::{MediaEvent, MediaHandle, MediaRelay};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;

/// The relay and the open calls' handles.
pub struct Relay {
    relay: MediaRelay,
    handles: HashMap<CallId, MediaHandle>,
    timeout: Duration,
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
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Relay> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new().name("sipbridge-media".into()).spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(Relay {
            relay: MediaRelay::with_runtime(handle, address, ports, events),
            handles: HashMap::new(),
            timeout,
            closed: RelayTotals::default(),
        })
    }
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
        let h = self.relay.open(call.0, local, SessionConfig { timeout: Duration::ZERO, nat }).map_err(|e| e.to_string())?;
        let addrs = [h.local(Leg::A), h.local(Leg::B)];
        self.handles.insert(call, h);
        Ok(addrs)
    }

    fn set_remote(&mut self, call: CallId, side: Side, remote: Option<SocketAddr>) {
        if let Some(h) = self.handles.get(&call) {
            h.set_remote(leg(side), remote);
        }
    }

    fn answered(&mut self, call: CallId) {
        if let Some(h) = self.handles.get(&call) {
            h.set_timeout(self.timeout);
            h.restart_timeout();
        }
    }

    fn close(&mut self, call: CallId) {
        if let Some(h) = self.handles.remove(&call) {
            add(&mut self.closed, &h.stats());
            h.close();
        }
    }

    fn leg_stats(&self, call: CallId) -> Option<[LegCounters; 2]> {
        self.handles.get(&call).map(|h| h.stats().map(|s| counters(&s)))
    }

    fn start_recording(&mut self, call: CallId, files: [Option<std::path::PathBuf>; 2]) -> Result<(), String> {
        let h = self.handles.get(&call).ok_or("the call has no relay ports")?;
        // Static G.711 numbers and telephone-event 101 unless told otherwise.
        h.start_recording(files, [HashMap::new(), HashMap::new()]);
        Ok(())
    }

    fn stop_recording(&mut self, call: CallId) {
        if let Some(h) = self.handles.get(&call) {
            h.stop_recording();
        }
    }

    fn set_forwarding(&mut self, call: CallId, on: bool) {
        if let Some(h) = self.handles.get(&call) {
            h.set_forwarding(on);
        }
    }

    fn totals(&self) -> RelayTotals {
        let mut t = self.closed;
        for h in self.handles.values() {
            add(&mut t, &h.stats());
        }
        t.open_calls = self.handles.len() as u64;
        t.free_pairs = self.relay.available() as u64;
        t
    }
}
