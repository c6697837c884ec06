//! A node running the qualify layer (OPTIONS keep-alives) above its endpoint, for
//! reachability scenarios in virtual time.

use crate::NodeApp;
use sip_core::qualify::{Qualifier, QualifyConfig, QualifyEvent};
use sip_core::{Endpoint, Event, Time, Transport};
use std::net::SocketAddr;

/// The qualifier as a testkit node app.
pub struct QualifyNode {
    /// The qualify layer.
    pub qualifier: Qualifier,
    /// Every state change, with its time.
    pub changes: Vec<(Time, QualifyEvent)>,
    /// Events the qualifier did not take.
    pub passed: Vec<Event>,
}

impl QualifyNode {
    /// A qualifier at `local` (the node's address).
    pub fn new(local: SocketAddr, mut config: QualifyConfig) -> QualifyNode {
        config.advertise = local.ip();
        config.ports = vec![(Transport::Udp, local.port())];
        QualifyNode { qualifier: Qualifier::new(config), changes: Vec::new(), passed: Vec::new() }
    }

    fn drain(&mut self, now: Time) {
        while let Some(e) = self.qualifier.poll_event() {
            self.changes.push((now, e));
        }
    }
}

impl NodeApp for QualifyNode {
    fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: &Event) {
        if let Some(e) = self.qualifier.handle_event(now, ep, event.clone()) {
            self.passed.push(e);
        }
        self.drain(now);
    }

    fn poll_timeout(&mut self) -> Option<Time> {
        self.qualifier.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        self.qualifier.handle_timeout(now, ep);
        self.drain(now);
    }
}
