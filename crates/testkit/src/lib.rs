//! testkit: run several sans-IO [`Endpoint`]s against each other in virtual time, over
//! links that drop, duplicate, delay and reorder datagrams from a seed, and print the
//! ladder of any run that fails.
//!
//! Nothing here reads a clock or a socket: a run with the same seed is the same run,
//! message for message, and 32 s of SIP timers take microseconds.
//!
//! ```
//! use testkit::{Net, LinkConfig};
//! use sip_core::EndpointConfig;
//! let mut net = Net::new(7);
//! let a = net.add_node("alice", EndpointConfig::default());
//! let b = net.add_node("bob", EndpointConfig::default());
//! net.link(a, b, LinkConfig::lossy(0.2));
//! assert_eq!(net.nodes(), 2);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod b2bua_node;
pub mod phone;
pub mod qualify_node;

use bytes::Bytes;
use sip_core::{Endpoint, EndpointConfig, Event, Flow, Time, Transmit, Transport};
use sip_message::{IdSource, SeededIds};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// How a link treats each datagram, decided by the net's seeded generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a delivered datagram is delivered twice.
    pub duplicate: f64,
    /// Smallest one-way delay.
    pub min_delay: Duration,
    /// Largest one-way delay; a spread above `min_delay` reorders datagrams.
    pub max_delay: Duration,
}

impl LinkConfig {
    /// A perfect link with 10 ms delay.
    pub fn perfect() -> LinkConfig {
        LinkConfig { loss: 0.0, duplicate: 0.0, min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(10) }
    }

    /// `loss` probability of loss, 5 % duplication and 5–80 ms delay (so reordering).
    pub fn lossy(loss: f64) -> LinkConfig {
        LinkConfig { loss, duplicate: 0.05, min_delay: Duration::from_millis(5), max_delay: Duration::from_millis(80) }
    }
}

/// A node's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

/// What runs on a node above its endpoint: it sees every event and may have timers of
/// its own (a call layer's 2xx retransmissions, a scripted phone's next action).
pub trait NodeApp: std::any::Any {
    /// An event from the node's endpoint; the app may answer through the endpoint.
    fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: &Event);
    /// When the app wants [`NodeApp::handle_timeout`].
    fn poll_timeout(&mut self) -> Option<Time> {
        None
    }
    /// Its timers are due.
    fn handle_timeout(&mut self, _now: Time, _ep: &mut Endpoint) {}
}

impl<F: FnMut(Time, &mut Endpoint, &Event) + 'static> NodeApp for F {
    fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: &Event) {
        self(now, ep, event)
    }
}

/// What a node's application does with an event: it may answer through the endpoint.
pub type App = Box<dyn NodeApp>;

struct Node {
    name: String,
    addr: SocketAddr,
    endpoint: Endpoint,
    app: Option<App>,
    events: Vec<(Time, Event)>,
}

/// One line of the ladder: what happened to a message, when.
#[derive(Debug, Clone)]
pub struct Step {
    /// When.
    pub at: Time,
    /// From which node.
    pub from: String,
    /// To which node.
    pub to: String,
    /// `sent`, `lost`, `duplicated`, `delivered`.
    pub what: &'static str,
    /// The start line.
    pub first_line: String,
}

struct InFlight {
    at: Time,
    seq: u64,
    to: usize,
    flow: Flow,
    payload: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A virtual network of endpoints.
pub struct Net {
    rng: SeededIds,
    nodes: Vec<Node>,
    links: Vec<((usize, usize), LinkConfig)>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    now: Time,
    ladder: Vec<Step>,
}

impl Net {
    /// An empty net whose links draw from `seed`.
    pub fn new(seed: u64) -> Net {
        Net {
            rng: SeededIds::new(seed),
            nodes: Vec::new(),
            links: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            now: Time::ZERO,
            ladder: Vec::new(),
        }
    }

    /// Adds an endpoint at 127.0.0.(n+1):5060 over UDP.
    pub fn add_node(&mut self, name: &str, mut config: EndpointConfig) -> NodeId {
        let n = self.nodes.len();
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, u8::try_from(n + 1).unwrap_or(254)], 5060));
        config.listeners = vec![(Transport::Udp, addr)];
        config.seed = config.seed.wrapping_add(n as u64 * 1000 + 1);
        self.nodes.push(Node { name: name.into(), addr, endpoint: Endpoint::new(config), app: None, events: Vec::new() });
        NodeId(n)
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Connects two nodes (both directions) with a link.
    pub fn link(&mut self, a: NodeId, b: NodeId, cfg: LinkConfig) {
        self.links.push(((a.0, b.0), cfg));
        self.links.push(((b.0, a.0), cfg));
    }

    /// Sets what a node does with each event it receives.
    pub fn set_app(&mut self, n: NodeId, app: App) {
        self.nodes[n.0].app = Some(app);
    }

    /// The node's app, when it is a `T`.
    pub fn app<T: NodeApp>(&mut self, n: NodeId) -> Option<&mut T> {
        let app: &mut dyn std::any::Any = self.nodes[n.0].app.as_deref_mut()?;
        app.downcast_mut::<T>()
    }

    /// Drops the link between two nodes (both directions): a peer that vanished.
    pub fn unlink(&mut self, a: NodeId, b: NodeId) {
        self.links.retain(|(k, _)| *k != (a.0, b.0) && *k != (b.0, a.0));
    }

    /// The node's address.
    pub fn addr(&self, n: NodeId) -> SocketAddr {
        self.nodes[n.0].addr
    }

    /// The UDP flow from `from` to `to`.
    pub fn flow(&self, from: NodeId, to: NodeId) -> Flow {
        Flow { transport: Transport::Udp, local: self.addr(from), remote: self.addr(to), connection: None }
    }

    /// The node's endpoint, to issue commands (then call [`Net::settle`]).
    pub fn endpoint(&mut self, n: NodeId) -> &mut Endpoint {
        &mut self.nodes[n.0].endpoint
    }

    /// Live transactions at the node.
    pub fn live_transactions(&self, n: NodeId) -> usize {
        self.nodes[n.0].endpoint.transaction_count()
    }

    /// Every event the node received, with its time.
    pub fn events(&self, n: NodeId) -> &[(Time, Event)] {
        &self.nodes[n.0].events
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Every step so far.
    pub fn steps(&self) -> &[Step] {
        &self.ladder
    }

    /// How many datagrams `from` sent whose start line begins with `prefix`.
    pub fn sent_count(&self, from: NodeId, prefix: &str) -> usize {
        let name = &self.nodes[from.0].name;
        self.ladder.iter().filter(|s| s.what == "sent" && &s.from == name && s.first_line.starts_with(prefix)).count()
    }

    /// How many datagrams `to` received whose start line begins with `prefix`.
    pub fn delivered_count(&self, to: NodeId, prefix: &str) -> usize {
        let name = &self.nodes[to.0].name;
        self.ladder.iter().filter(|s| s.what == "delivered" && &s.to == name && s.first_line.starts_with(prefix)).count()
    }

    /// The ladder diagram of the run so far, one message per line.
    pub fn ladder(&self) -> String {
        let mut s = String::new();
        for st in &self.ladder {
            let _ = writeln!(s, "{:>9}  {:>8} -> {:<8} {:<10} {}", st.at.to_string(), st.from, st.to, st.what, st.first_line);
        }
        s
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn delay(&mut self, cfg: &LinkConfig) -> Duration {
        let span = cfg.max_delay.saturating_sub(cfg.min_delay).as_millis() as u64;
        let extra = if span == 0 { 0 } else { self.rng.next_u64() % (span + 1) };
        cfg.min_delay + Duration::from_millis(extra)
    }

    /// Drains every endpoint (the drain rule) and puts what they sent on the links.
    pub fn settle(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].endpoint.poll_transmit() {
                    any = true;
                    if let Transmit::Send { flow, payload } = t {
                        self.put_on_link(i, flow, payload);
                    }
                }
                while let Some(e) = self.nodes[i].endpoint.poll_event() {
                    any = true;
                    let now = self.now;
                    let node = &mut self.nodes[i];
                    if let Some(app) = node.app.as_mut() {
                        app.on_event(now, &mut node.endpoint, &e);
                    }
                    node.events.push((now, e));
                }
            }
            if !any {
                return;
            }
        }
    }

    fn put_on_link(&mut self, from: usize, flow: Flow, payload: Bytes) {
        let first_line = first_line(&payload);
        let Some(to) = self.nodes.iter().position(|n| n.addr == flow.remote) else {
            self.step(from, None, "unroutable", first_line);
            return;
        };
        let Some(cfg) = self.links.iter().find(|(k, _)| *k == (from, to)).map(|(_, c)| *c) else {
            self.step(from, Some(to), "no link", first_line);
            return;
        };
        self.step(from, Some(to), "sent", first_line.clone());
        if self.chance(cfg.loss) {
            self.step(from, Some(to), "lost", first_line);
            return;
        }
        let copies = if self.chance(cfg.duplicate) { 2 } else { 1 };
        for c in 0..copies {
            if c == 1 {
                self.step(from, Some(to), "duplicated", first_line.clone());
            }
            let at = self.now + self.delay(&cfg);
            let back = Flow { transport: Transport::Udp, local: flow.remote, remote: self.nodes[from].addr, connection: None };
            self.seq += 1;
            self.in_flight.push(Reverse(InFlight { at, seq: self.seq, to, flow: back, payload: payload.clone() }));
        }
    }

    fn step(&mut self, from: usize, to: Option<usize>, what: &'static str, first_line: String) {
        let to = to.map_or_else(|| "?".to_owned(), |t| self.nodes[t].name.clone());
        self.ladder.push(Step { at: self.now, from: self.nodes[from].name.clone(), to, what, first_line });
    }

    /// Runs until nothing is in flight and no timer is pending, or until `limit`.
    /// Returns the time it stopped at.
    pub fn run_until(&mut self, limit: Time) -> Time {
        self.settle();
        loop {
            let next_packet = self.in_flight.peek().map(|Reverse(p)| p.at);
            let next_timer = (0..self.nodes.len())
                .flat_map(|i| {
                    let n = &mut self.nodes[i];
                    [n.endpoint.poll_timeout(), n.app.as_mut().and_then(|a| a.poll_timeout())]
                })
                .flatten()
                .min();
            let next = match (next_packet, next_timer) {
                (None, None) => return self.now,
                (a, b) => a.into_iter().chain(b).min().unwrap_or(self.now),
            };
            if next > limit {
                self.now = limit;
                return limit;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while self.in_flight.peek().is_some_and(|Reverse(p)| p.at <= now) {
                let Some(Reverse(p)) = self.in_flight.pop() else { break };
                let from_name = self.nodes.iter().position(|n| n.addr == p.flow.remote).unwrap_or(p.to);
                self.step(from_name, Some(p.to), "delivered", first_line(&p.payload));
                self.nodes[p.to].endpoint.handle_datagram(now, p.flow, p.payload);
                self.settle();
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].endpoint.poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].endpoint.handle_timeout(now);
                    self.settle();
                }
                let node = &mut self.nodes[i];
                if let Some(app) = node.app.as_mut() {
                    if app.poll_timeout().is_some_and(|t| t <= now) {
                        app.handle_timeout(now, &mut node.endpoint);
                        self.settle();
                    }
                }
            }
        }
    }
}

fn first_line(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == b'\r' || c == b'\n').unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
