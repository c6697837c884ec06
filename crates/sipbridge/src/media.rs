//! The RTP relay behind the call policy: one port pair per leg from `[media] ports`,
//! packets forwarded between the legs with symmetric latching (`sip_tokio::relay`).
//!
//! The relay runs on a thread and runtime of its own, so a media storm never delays
//! signalling. The RTP inactivity timeout (`[media] timeout_s`) starts at the answer:
//! ringing without early media is silence that must not hang the call up.

use crate::calls::MediaBackend;
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
        Ok(Relay { relay: MediaRelay::with_runtime(handle, address, ports, events), handles: HashMap::new(), timeout })
    }

    /// The latest counters of a call's legs (at most 100 ms old).
    pub fn stats(&self, call: CallId) -> Option<[LegStats; 2]> {
        self.handles.get(&call).map(MediaHandle::stats)
    }

    /// Calls with relay ports open.
    pub fn open_calls(&self) -> usize {
        self.handles.len()
    }

    /// Free port pairs.
    pub fn available(&self) -> usize {
        self.relay.available()
    }

    /// The counters of every open call, summed: (packets in, packets out, lost).
    pub fn totals(&self) -> (u64, u64, u64) {
        let mut t = (0, 0, 0);
        for h in self.handles.values() {
            for s in h.stats() {
                t.0 += s.packets_in;
                t.1 += s.packets_out;
                t.2 += s.lost;
            }
        }
        t
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
            h.close();
        }
    }
}
