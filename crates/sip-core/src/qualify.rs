//! Qualify: OPTIONS keep-alives that tell whether each endpoint is reachable, and how
//! fast it answers — what Asterisk operators know as `qualify=yes` / `qualifyfreq`.
//!
//! [`Qualifier`] sits on the [`Endpoint`] like the call layer does: it sends an
//! out-of-dialog OPTIONS (RFC 3261 §11) to each target on a schedule, the driver hands it
//! every engine event ([`Qualifier::handle_event`]) and it keeps the answers to its own
//! OPTIONS, giving back everything else. It never retransmits: the transaction layer
//! does that (Timer E) and reports the end of an unanswered OPTIONS (Timer F, 64·T1)
//! or a transport error as [`Event::Failed`].
//!
//! The rules, per endpoint (`qualify_frequency_s`, `qualify_max_ms` of `CONFIG.md`):
//!
//! - The first OPTIONS goes out within [`QualifyConfig::start_jitter`] of
//!   [`Qualifier::add`] (a seeded draw, so a thousand endpoints added at start-up are
//!   spread over a second instead of firing together, and a fixed seed gives the same
//!   spread every run).
//! - Any final response — 200, but also 404, 405, 481, 501 … — means the peer is alive
//!   (Asterisk counts any reply): [`State::Reachable`], or [`State::Lagged`] when the
//!   round trip (response time − time the OPTIONS was first sent, so a reply to a
//!   retransmission includes the wait) exceeds the endpoint's `max_rtt`. Provisional
//!   responses are ignored.
//! - [`Event::Failed`] (Timer F or a transport error) means [`State::Unreachable`].
//! - While not Unreachable, one OPTIONS at a time: the next goes `frequency` after the
//!   previous one was *sent* (or at once, if its answer came later than that).
//! - While Unreachable (chan_sip's `DEFAULT_FREQ_NOTOK`): an OPTIONS every
//!   [`QualifyConfig::unreachable_interval`] (10 s), the first one 10 s after the
//!   timeout that made it Unreachable. Each still waits Timer F (32 s) for its answer,
//!   so they overlap; at most [`QualifyConfig::max_outstanding`] (4 = ⌈32 s / 10 s⌉)
//!   are out at once, and a 10 s tick that finds that many out sends nothing.
//! - The freshest evidence wins: an outcome of an OPTIONS sent before the one whose
//!   outcome already set the state (or before the target moved) is ignored.
//!
//! Drain rule: after every input or command, drain the endpoint (`poll_transmit`,
//! `poll_event` → `handle_event`) and [`Qualifier::poll_event`] until all are empty,
//! then read both `poll_timeout`s.

use crate::endpoint::{Endpoint, Event};
use crate::transaction::{Failure, TransactionId};
use crate::transport::{Flow, Transport};
use crate::Time;
use bytes::Bytes;
use sip_message::{Header, HeaderName, Host, IdSource, Method, NameAddr, ParseError, Request, RequestBuilder, SeededIds, SipUri, Uri};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// What the qualifier needs to build its OPTIONS; the address bits mirror
/// [`B2buaConfig`](crate::b2bua::B2buaConfig).
#[derive(Debug, Clone)]
pub struct QualifyConfig {
    /// The address peers reach us at, for From, Via and Contact.
    pub advertise: IpAddr,
    /// Our listeners' ports by transport (a transport not listed uses its default port).
    pub ports: Vec<(Transport, u16)>,
    /// `User-Agent` on each OPTIONS.
    pub user_agent: String,
    /// The user part of our From and Contact.
    pub from_user: String,
    /// How often to try an Unreachable endpoint (Asterisk: 10 s). At least 1 ms.
    pub unreachable_interval: Duration,
    /// The most OPTIONS out at once to an Unreachable endpoint (at least 1).
    pub max_outstanding: usize,
    /// The first OPTIONS after [`Qualifier::add`] goes out within this (seeded draw).
    pub start_jitter: Duration,
    /// Seed of the start-time spread.
    pub seed: u64,
}

impl Default for QualifyConfig {
    fn default() -> QualifyConfig {
        QualifyConfig {
            advertise: IpAddr::from([127, 0, 0, 1]),
            ports: vec![(Transport::Udp, 5060), (Transport::Tcp, 5060), (Transport::Tls, 5061)],
            user_agent: "sipbridge".into(),
            from_user: "sipbridge".into(),
            unreachable_interval: Duration::from_secs(10),
            max_outstanding: 4,
            start_jitter: Duration::from_secs(1),
            seed: 0,
        }
    }
}

/// Where to send an endpoint's OPTIONS: its static host, or a registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Request-URI and To (§11.1).
    pub uri: Uri,
    /// The flow to send over.
    pub flow: Flow,
}

/// How an endpoint answers.
///
/// ```text
///            any final, rtt ≤ max_rtt
///   Unknown ─────────────────────────► Reachable ◄──┐
///      │     any final, rtt > max_rtt                │ any final
///      ├─────────────────────────────► Lagged ◄──────┤ (by its rtt)
///      │     Failed (Timer F, transport)             │
///      └─────────────────────────────► Unreachable ──┘
///   Reachable, Lagged ──Failed──► Unreachable
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No answer or timeout yet.
    Unknown,
    /// Answered within `max_rtt`.
    Reachable,
    /// Answered, slower than `max_rtt`.
    Lagged,
    /// The last OPTIONS timed out or could not be sent.
    Unreachable,
}

impl State {
    /// `unknown`, `reachable`, `lagged`, `unreachable` (the API's words).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Reachable => "reachable",
            State::Lagged => "lagged",
            State::Unreachable => "unreachable",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the qualifier tells the binary (to log at info and update metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QualifyEvent {
    /// An endpoint's state changed.
    StateChanged {
        /// The endpoint.
        name: String,
        /// The state before.
        from: State,
        /// The state now.
        to: State,
        /// The round trip that decided it; `None` for Unreachable.
        rtt: Option<Duration>,
    },
}

/// One qualified endpoint.
#[derive(Debug)]
struct Entry {
    name: String,
    target: Target,
    frequency: Duration,
    max_rtt: Duration,
    state: State,
    rtt: Option<Duration>,
    /// When the next OPTIONS is due; `None` while waiting for an answer.
    next_at: Option<Time>,
    last_sent: Time,
    /// The CSeq of the last OPTIONS built (increasing, §8.1.1.5).
    cseq: u32,
    /// Outcomes of OPTIONS with a lower CSeq are stale.
    floor: u32,
    /// CSeqs of the OPTIONS out whose outcome still counts.
    outstanding: Vec<u32>,
}

/// One OPTIONS out.
#[derive(Debug, Clone, Copy)]
struct Sent {
    entry: u64,
    cseq: u32,
    at: Time,
}

/// The qualify layer (see the module docs). Each name has one target: for several
/// registered contacts of one endpoint, add one name per contact.
#[derive(Debug)]
pub struct Qualifier {
    config: QualifyConfig,
    next_entry: u64,
    names: BTreeMap<String, u64>,
    entries: HashMap<u64, Entry>,
    txs: HashMap<TransactionId, Sent>,
    deadlines: BinaryHeap<Reverse<(Time, u64)>>,
    events: VecDeque<QualifyEvent>,
    rng: SeededIds,
    accept: Header,
    user_agent: Header,
}

impl Qualifier {
    /// A qualifier with `config`.
    pub fn new(mut config: QualifyConfig) -> Qualifier {
        config.unreachable_interval = config.unreachable_interval.max(Duration::from_millis(1));
        config.max_outstanding = config.max_outstanding.max(1);
        let rng = SeededIds::new(config.seed ^ 0x0071_7561_6c69_6679);
        let user_agent = Header::new(HeaderName::UserAgent, Bytes::from(config.user_agent.clone()));
        Qualifier {
            config,
            next_entry: 1,
            names: BTreeMap::new(),
            entries: HashMap::new(),
            txs: HashMap::new(),
            deadlines: BinaryHeap::new(),
            events: VecDeque::new(),
            rng,
            accept: Header::new(HeaderName::Accept, Bytes::from_static(b"application/sdp")),
            user_agent,
        }
    }

    /// Starts qualifying `name` at `target`: state Unknown, first OPTIONS within the
    /// start jitter, then every `frequency` (at least 1 ms); answers slower than
    /// `max_rtt` mark it Lagged (zero: never). A name already qualified starts over.
    pub fn add(&mut self, now: Time, name: String, target: Target, frequency: Duration, max_rtt: Duration) {
        self.remove(&name);
        let id = self.next_entry;
        self.next_entry += 1;
        let first = now + self.jitter();
        let entry = Entry {
            name: name.clone(),
            target,
            frequency: frequency.max(Duration::from_millis(1)),
            max_rtt,
            state: State::Unknown,
            rtt: None,
            next_at: Some(first),
            last_sent: now,
            cseq: 0,
            floor: 0,
            outstanding: Vec::new(),
        };
        self.names.insert(name, id);
        self.entries.insert(id, entry);
        self.schedule(id);
    }

    /// The endpoint's contact moved (a new registration): OPTIONS go to `target` from
    /// now on, the next one at once; answers to OPTIONS sent to the old target no longer
    /// count. The state stays until the new target answers or fails. A target equal to
    /// the current one changes nothing (a registration refresh). False for an unknown
    /// name.
    pub fn update_target(&mut self, now: Time, name: &str, target: Target) -> bool {
        let Some(&id) = self.names.get(name) else { return false };
        let Some(e) = self.entries.get_mut(&id) else { return false };
        if e.target != target {
            e.target = target;
            e.floor = e.cseq + 1;
            e.outstanding.clear();
            e.next_at = Some(now);
            self.schedule(id);
        }
        true
    }

    /// Stops qualifying `name`; answers to its OPTIONS still out are absorbed. False
    /// for an unknown name.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.names.remove(name) {
            Some(id) => self.entries.remove(&id).is_some(),
            None => false,
        }
    }

    /// The endpoint's state and its last round trip (`None` unless Reachable or Lagged).
    pub fn state(&self, name: &str) -> Option<(State, Option<Duration>)> {
        self.entry(name).map(|e| (e.state, e.rtt))
    }

    /// Every endpoint with its state and round trip, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, State, Option<Duration>)> + '_ {
        self.names.iter().filter_map(|(n, id)| self.entries.get(id).map(|e| (n.as_str(), e.state, e.rtt)))
    }

    /// The endpoint's current target.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.entry(name).map(|e| &e.target)
    }

    /// How many of the endpoint's OPTIONS are out and still count (0 for an unknown name).
    pub fn outstanding(&self, name: &str) -> usize {
        self.entry(name).map_or(0, |e| e.outstanding.len())
    }

    /// Endpoints qualified.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no endpoint is qualified.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.names.get(name).and_then(|id| self.entries.get(id))
    }

    /// The next state change.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<QualifyEvent> {
        self.events.pop_front()
    }

    /// When [`Qualifier::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Time> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            match self.entries.get(&id).and_then(|e| e.next_at) {
                Some(d) if d == at => return Some(at),
                // Stale: the entry is gone or its deadline moved (a newer entry exists).
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Sends the OPTIONS that are due.
    pub fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.entries.get(&id).and_then(|e| e.next_at) == Some(at) {
                self.due(now, ep, id);
                self.schedule(id);
            }
        }
    }

    /// Takes the responses and failures of our OPTIONS; returns every other event. The
    /// endpoint is not needed today; it is taken as
    /// [`B2bua::handle_event`](crate::b2bua::B2bua::handle_event) takes it, so the
    /// driver's loop reads the same.
    pub fn handle_event(&mut self, now: Time, _ep: &mut Endpoint, event: Event) -> Option<Event> {
        match event {
            Event::Response { tx, response } => {
                if !self.txs.contains_key(&tx) {
                    return Some(Event::Response { tx, response });
                }
                // §8.1.3.2 / §17.1.2: a provisional is not an answer; the final follows.
                if response.status() >= 200 {
                    if let Some(sent) = self.txs.remove(&tx) {
                        self.outcome(now, sent, Ok(response.status()));
                    }
                }
                None
            }
            Event::Failed { tx, reason } => match self.txs.remove(&tx) {
                Some(sent) => {
                    self.outcome(now, sent, Err(reason));
                    None
                }
                None => Some(Event::Failed { tx, reason }),
            },
            other => Some(other),
        }
    }

    fn schedule(&mut self, id: u64) {
        if let Some(at) = self.entries.get(&id).and_then(|e| e.next_at) {
            self.deadlines.push(Reverse((at, id)));
        }
    }

    fn jitter(&mut self) -> Duration {
        let span = u64::try_from(self.config.start_jitter.as_millis()).unwrap_or(u64::MAX);
        if span == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.next_u64() % span)
        }
    }

    /// An OPTIONS is due: send it, unless the rules say wait.
    fn due(&mut self, now: Time, ep: &mut Endpoint, id: u64) {
        let interval = self.config.unreachable_interval;
        let cap = self.config.max_outstanding;
        let Some(e) = self.entries.get_mut(&id) else { return };
        if e.state == State::Unreachable {
            // The 10 s grid goes on whether or not this tick sends.
            e.next_at = Some(now + interval);
            if e.outstanding.len() >= cap {
                tracing::trace!(name = %e.name, "qualify: {cap} OPTIONS already out, skipping this tick");
                return;
            }
        } else {
            e.next_at = None;
            if !e.outstanding.is_empty() {
                return; // one at a time; the answer schedules the next
            }
        }
        e.cseq += 1;
        let sent = Sent { entry: id, cseq: e.cseq, at: now };
        let flow = e.target.flow;
        let result = match options(&self.config, &self.accept, &self.user_agent, e, sent.cseq, ep.ids()) {
            Ok(req) => ep.send_request(now, req, flow).map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let Some(e) = self.entries.get_mut(&id) else { return };
        e.last_sent = now;
        e.outstanding.push(sent.cseq);
        match result {
            Ok(tx) => {
                self.txs.insert(tx, sent);
            }
            Err(err) => {
                tracing::warn!(name = %e.name, %err, "qualify: the OPTIONS could not be sent");
                self.outcome(now, sent, Err(Failure::Transport));
            }
        }
    }

    /// An OPTIONS ended: a final status, or why it failed.
    fn outcome(&mut self, now: Time, sent: Sent, result: Result<u16, Failure>) {
        let interval = self.config.unreachable_interval;
        let Some(e) = self.entries.get_mut(&sent.entry) else { return };
        if sent.cseq < e.floor {
            return; // older than the evidence we already acted on
        }
        e.floor = sent.cseq;
        e.outstanding.retain(|&c| c > sent.cseq);
        let to = match result {
            Ok(status) => {
                let rtt = now - sent.at;
                tracing::trace!(name = %e.name, status, ?rtt, "qualify: answered");
                e.rtt = Some(rtt);
                if e.outstanding.is_empty() {
                    e.next_at = Some((e.last_sent + e.frequency).max(now));
                } else {
                    e.next_at = None; // a newer OPTIONS is out; its outcome schedules
                }
                if !e.max_rtt.is_zero() && rtt > e.max_rtt {
                    State::Lagged
                } else {
                    State::Reachable
                }
            }
            Err(reason) => {
                tracing::trace!(name = %e.name, ?reason, "qualify: no answer");
                e.rtt = None;
                if e.state != State::Unreachable {
                    e.next_at = Some(now + interval);
                }
                State::Unreachable
            }
        };
        if e.state != to {
            tracing::debug!(name = %e.name, from = %e.state, %to, rtt = ?e.rtt, "qualify: state changed");
            self.events.push_back(QualifyEvent::StateChanged { name: e.name.clone(), from: e.state, to, rtt: e.rtt });
            e.state = to;
        }
        self.schedule(sent.entry);
    }
}

/// The OPTIONS of §11.1: R-URI and To the target, our From with a tag, a fresh
/// Call-ID and branch, Max-Forwards 70, Contact, Accept: application/sdp.
fn options(
    cfg: &QualifyConfig,
    accept: &Header,
    user_agent: &Header,
    e: &Entry,
    cseq: u32,
    ids: &mut SeededIds,
) -> Result<Request, ParseError> {
    let t = e.target.flow.transport;
    let host = host_of(cfg.advertise);
    let port = port_for(cfg, t);
    let mut from = SipUri::new(false, host.clone()).with_user(cfg.from_user.as_str());
    if port != t.default_port() {
        from = from.with_port(port);
    }
    let mut contact = SipUri::new(t == Transport::Tls, host.clone()).with_user(cfg.from_user.as_str()).with_port(port);
    if t == Transport::Tcp {
        contact = contact.with_param("transport", Some("tcp"));
    }
    RequestBuilder::new(Method::Options, e.target.uri.clone())
        .from(NameAddr::new(Uri::Sip(from)))
        .via(t.to_message(), host, Some(port))
        .cseq(cseq)
        .max_forwards(70)
        .contact(NameAddr::new(Uri::Sip(contact)))
        .header(accept.clone())
        .header(user_agent.clone())
        .build(ids)
}

fn host_of(ip: IpAddr) -> Host {
    match ip {
        IpAddr::V4(v) => Host::Ipv4(v),
        IpAddr::V6(v) => Host::Ipv6(v),
    }
}

fn port_for(cfg: &QualifyConfig, t: Transport) -> u16 {
    cfg.ports.iter().find(|(x, _)| *x == t).map_or(t.default_port(), |(_, p)| *p)
}
