//! A node running the B2BUA call layer, with a routing table in place of the binary's
//! policy, for call scenarios in virtual time.

use crate::NodeApp;
use sip_core::b2bua::{B2bua, B2buaConfig, CallEvent, CallId, DirectOpts, Fork, Target};
use sip_core::sip_message::Uri;
use sip_core::{Endpoint, Event, Flow, Time, Transport};
use std::net::SocketAddr;
use std::time::Duration;

/// Routes every call to one peer, or rejects it.
#[derive(Debug, Clone)]
pub enum Route {
    /// Send calls to this address, Request-URI `sip:user@addr`.
    To(SocketAddr),
    /// Ring all these addresses at once (a registered user's contacts), Request-URIs
    /// `sip:user@addr`: the first is `Target::uri`, the others `Target::forks`.
    Fork(Vec<SocketAddr>),
    /// Reject with this status.
    Reject(u16),
}

/// A media-path command, as the binary's policy would give it.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    /// [`B2bua::go_direct`].
    GoDirect(DirectOpts),
    /// [`B2bua::re_anchor`] of these legs.
    ReAnchor([bool; 2]),
}

/// The B2BUA as a testkit node app.
pub struct B2buaNode {
    /// Commands to run this long after a call is answered.
    on_answer: Vec<(Duration, Command)>,
    /// Commands due, for every answered call: (at, call, command).
    due: Vec<(Time, Option<CallId>, Command)>,
    /// Results of the commands run: (at, call, ok).
    pub command_results: Vec<(Time, CallId, Result<(), sip_core::b2bua::CallError>)>,
    /// The call layer.
    pub b2bua: B2bua,
    route: Route,
    local: SocketAddr,
    /// Route calls with [`Target::direct_setup`].
    direct_setup: bool,
    /// Every call event, in order, with its time.
    pub events: Vec<(Time, CallEvent)>,
    /// Events the call layer did not take.
    pub passed: Vec<Event>,
}

impl B2buaNode {
    /// A B2BUA at `local` (the node's address) routing with `route`.
    pub fn new(local: SocketAddr, route: Route, mut config: B2buaConfig) -> B2buaNode {
        config.advertise = local.ip();
        config.ports = vec![(Transport::Udp, local.port())];
        B2buaNode {
            on_answer: Vec::new(),
            due: Vec::new(),
            command_results: Vec::new(),
            b2bua: B2bua::new(config),
            route,
            direct_setup: false,
            local,
            events: Vec::new(),
            passed: Vec::new(),
        }
    }

    /// Runs `cmd` on each call `after` its answer.
    pub fn on_answer(mut self, after: Duration, cmd: Command) -> B2buaNode {
        self.on_answer.push((after, cmd));
        self
    }

    /// Routes every call with `direct_rtp_setup` ([`Target::direct_setup`]).
    pub fn direct_setup(mut self) -> B2buaNode {
        self.direct_setup = true;
        self
    }

    /// Runs `cmd` at `at` on every call not ended.
    pub fn at(mut self, at: Time, cmd: Command) -> B2buaNode {
        self.due.push((at, None, cmd));
        self
    }

    fn run_due(&mut self, now: Time, ep: &mut Endpoint) {
        let due: Vec<_> = self.due.iter().filter(|d| d.0 <= now).copied().collect();
        self.due.retain(|d| d.0 > now);
        for (_, call, cmd) in due {
            let calls: Vec<CallId> = match call {
                Some(c) => vec![c],
                None => self.b2bua.calls().iter().map(|c| c.id).collect(),
            };
            for c in calls {
                let r = match cmd {
                    Command::GoDirect(o) => self.b2bua.go_direct(now, ep, c, o),
                    Command::ReAnchor(l) => self.b2bua.re_anchor(now, ep, c, l),
                };
                self.command_results.push((now, c, r));
            }
        }
    }

    /// The media-path changes reported, with their times.
    pub fn paths(&self) -> Vec<(Time, sip_core::b2bua::MediaPath)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                CallEvent::MediaPath { path, .. } => Some((*t, *path)),
                _ => None,
            })
            .collect()
    }

    /// The calls that ended, with their reasons.
    pub fn ended(&self) -> Vec<(CallId, sip_core::b2bua::EndReason)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Ended { call, reason } => Some((*call, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn drain(&mut self, now: Time, ep: &mut Endpoint) {
        while let Some(e) = self.b2bua.poll_event() {
            if let CallEvent::Incoming(inc) = &e {
                let call = inc.call;
                match &self.route {
                    Route::Reject(s) => {
                        let _ = self.b2bua.reject(now, ep, call, *s);
                    }
                    Route::To(_) | Route::Fork(_) => {
                        let addrs = match &self.route {
                            Route::To(a) => vec![*a],
                            Route::Fork(v) => v.clone(),
                            Route::Reject(_) => unreachable!("matched above"),
                        };
                        let user = inc.request.uri().as_sip().and_then(|u| u.user()).map(|u| u.as_str().to_owned()).unwrap_or_default();
                        let uri = |addr: &SocketAddr| Uri::parse_str(&format!("sip:{user}@{addr}")).expect("a valid URI");
                        let flow =
                            |addr: &SocketAddr| Flow { transport: Transport::Udp, local: self.local, remote: *addr, connection: None };
                        let ip = self.local.ip();
                        let target = Target {
                            uri: uri(&addrs[0]),
                            flow: flow(&addrs[0]),
                            media: [SocketAddr::new(ip, 20000), SocketAddr::new(ip, 20002)],
                            codecs: [Vec::new(), Vec::new()],
                            pin_flow: [false, false],
                            no_answer: None,
                            headers: Vec::new(),
                            forks: addrs[1..].iter().map(|a| Fork { uri: uri(a), flow: flow(a), pin_flow: false }).collect(),
                            nat: [None, None],
                            direct_setup: self.direct_setup,
                        };
                        if let Err(e) = self.b2bua.route(now, ep, call, target) {
                            panic!("route failed: {e}");
                        }
                    }
                }
            }
            if let CallEvent::Answered { call } = &e {
                for (after, cmd) in &self.on_answer {
                    self.due.push((now + *after, Some(*call), *cmd));
                }
            }
            self.events.push((now, e));
        }
    }
}

impl NodeApp for B2buaNode {
    fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: &Event) {
        if let Some(e) = self.b2bua.handle_event(now, ep, event.clone()) {
            // What the binary's policy would answer: 481 for a request in no dialog.
            if let Event::Request { tx, .. } = &e {
                let _ = ep.reply(now, *tx, 481, Vec::new());
            }
            self.passed.push(e);
        }
        self.drain(now, ep);
    }

    fn poll_timeout(&mut self) -> Option<Time> {
        let d = self.due.iter().map(|d| d.0).min();
        [self.b2bua.poll_timeout(), d].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        self.b2bua.handle_timeout(now, ep);
        self.drain(now, ep);
        self.run_due(now, ep);
        self.drain(now, ep);
    }
}
