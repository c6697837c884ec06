//! The endpoint: the engine's front door. It frames and parses what the driver hands
//! in, answers what it can answer itself (parse errors, §8.2 checks, OPTIONS, CANCEL),
//! files everything else under a transaction, and hands the layer above one event per
//! new request or response — never a retransmission.

use crate::timers::TimerConfig;
use crate::transaction::{
    build_ack_or_cancel, server_invite::Respond, ClientInvite, ClientNonInvite, Effects, Failure, Key, Machine, MergeKey, MethodKey,
    ServerInvite, ServerNonInvite, Slab, Transaction, TransactionId, Up,
};
use crate::transport::{response_flow, stamp_via, ConnectionId, Flow, Transmit, Transport};
use crate::{uas, Time};
use bytes::Bytes;
use sip_message::{
    Header, HeaderName, IdSource, Message, Method, ParseError, RawFrame, RawMessage, Request, Response, SeededIds, StreamDecoder, Via,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// The transaction maps hash keys the peer chooses (branches, tags), so the hash is keyed:
/// foldhash seeded from the engine seed, which the binary draws from the OS at start.
/// Deterministic for a fixed seed, as the sans-IO rules ask; much cheaper than SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
use std::net::SocketAddr;

/// What the endpoint is and does; built by the binary from `[sip]` and `[timers]`.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// `Server` / `User-Agent` value and the Warning agent.
    pub user_agent: String,
    /// The methods we implement (Allow, §8.2.1).
    pub allow: Vec<Method>,
    /// Option tags we support (Supported, §8.2.2.3).
    pub supported: Vec<String>,
    /// Body types we understand (Accept, §8.2.3).
    pub accept: Vec<String>,
    /// Our sockets: the first of each transport is used for requests we originate.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// Answer out-of-dialog OPTIONS here (200 with Allow, Accept, Supported, §11.2).
    pub answer_options: bool,
    /// §18.1.1: a request larger than this goes over TCP when we listen on TCP.
    pub udp_mtu: usize,
    /// The bound on one message on a stream (TCP/TLS), in octets.
    pub max_stream_message: usize,
    /// Seed of the engine's generator (branches, tags): fixed seed, identical output.
    pub seed: u64,
    /// How long an INVITE server transaction waits for the layer above to answer before
    /// the endpoint answers 500 itself (a safety net: the call layer's own no-answer
    /// timer should always come first). Non-INVITE requests wait 64·T1.
    pub unanswered_invite_limit: std::time::Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerConfig::default(),
            user_agent: "sipbridge".into(),
            allow: vec![Method::Invite, Method::Ack, Method::Cancel, Method::Bye, Method::Options],
            supported: Vec::new(),
            accept: vec!["application/sdp".into()],
            listeners: Vec::new(),
            answer_options: true,
            udp_mtu: 1300,
            max_stream_message: StreamDecoder::DEFAULT_MAX_LEN,
            seed: 0,
            unanswered_invite_limit: std::time::Duration::from_secs(300),
        }
    }
}

impl EndpointConfig {
    pub(crate) fn allow_header(&self) -> String {
        self.allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }

    /// The agent in Warning headers (§20.43: host or pseudonym, a token).
    pub(crate) fn warn_agent(&self) -> &str {
        let ua = self.user_agent.split_whitespace().next().unwrap_or("sipbridge");
        if ua.is_empty() {
            "sipbridge"
        } else {
            ua
        }
    }

    fn listener(&self, t: Transport) -> Option<SocketAddr> {
        self.listeners.iter().find(|(lt, _)| *lt == t).map(|(_, a)| *a)
    }
}

/// What the endpoint tells the layer above.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new request (never a retransmission, never ACK or CANCEL): answer it with
    /// [`Endpoint::respond`] or [`Endpoint::reply`].
    Request {
        /// Its server transaction.
        tx: TransactionId,
        /// The request, top Via stamped with `received`/`rport`.
        request: Request,
        /// Where it came from.
        source: Flow,
    },
    /// An ACK no transaction absorbed: the ACK for a 2xx (§13.2.2.4, RFC 6026), or a stray.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Flow,
    },
    /// A CANCEL matched this INVITE server transaction (§9.2); the CANCEL got its 200.
    /// The layer above should answer the INVITE with 487.
    Cancelled {
        /// The INVITE's transaction.
        tx: TransactionId,
    },
    /// A response to a request we sent (provisional or final; 2xx retransmissions for an
    /// INVITE too, RFC 6026, so the dialog can ACK each).
    Response {
        /// The client transaction.
        tx: TransactionId,
        /// The response.
        response: Response,
    },
    /// A request we sent got no response: timeout (Timer B/F) or transport error. Act as
    /// on a response with [`Failure::status`] (§8.1.3.1: 408 or 503).
    Failed {
        /// The client transaction.
        tx: TransactionId,
        /// Why.
        reason: Failure,
    },
    /// A server transaction ended badly: no ACK for our final response (Timer H), or the
    /// response could not be sent.
    ServerFailed {
        /// The server transaction.
        tx: TransactionId,
        /// Why.
        reason: Failure,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The transaction has ended, or the handle is stale.
    #[error("no such transaction")]
    NoTransaction,
    /// The transaction is past the point where this may be done (a second final
    /// response, a CANCEL after the final).
    #[error("not allowed in the transaction's state {0}")]
    WrongState(&'static str),
    /// The message cannot be sent as it is.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// The response could not be built from the request.
    #[error("cannot build the response: {0}")]
    Build(ParseError),
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received (parsed or not).
    pub received: u64,
    /// Retransmitted requests absorbed by a server transaction.
    pub retransmissions_absorbed: u64,
    /// Requests answered statelessly because they did not parse.
    pub parse_errors: u64,
    /// Responses dropped (unparseable, or matching no client transaction).
    pub responses_dropped: u64,
    /// Transactions created.
    pub transactions: u64,
}

/// The sans-IO SIP engine.
///
/// Drain rule: after every `handle_*` input or command, call [`Endpoint::poll_transmit`]
/// and [`Endpoint::poll_event`] until both return `None`, then read
/// [`Endpoint::poll_timeout`] and call [`Endpoint::handle_timeout`] when it is due.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    ids: SeededIds,
    txs: Slab,
    keys: Map<Key, TransactionId>,
    merges: Map<MergeKey, TransactionId>,
    deadlines: BinaryHeap<Reverse<(Time, TransactionId)>>,
    streams: HashMap<ConnectionId, StreamDecoder>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    fx: Effects,
    now: Time,
    stats: Stats,
    /// The OPTIONS capability rows and the `Server` row, built once (cloning a built
    /// header only bumps a reference count).
    capabilities: Vec<Header>,
    server: Header,
}

impl Endpoint {
    /// A new engine.
    pub fn new(mut config: EndpointConfig) -> Endpoint {
        // Zero intervals would make retransmission timers fire in a loop.
        let ms = std::time::Duration::from_millis(1);
        config.timers.t1 = config.timers.t1.max(ms);
        config.timers.t2 = config.timers.t2.max(config.timers.t1);
        config.timers.t4 = config.timers.t4.max(ms);
        let ids = SeededIds::new(config.seed);
        let seed = config.seed;
        let capabilities = capability_headers(&config);
        let server = Header::new(HeaderName::Server, Bytes::from(config.user_agent.clone()));
        Endpoint {
            config,
            ids,
            txs: Slab::default(),
            keys: Map::with_hasher(foldhash::fast::FixedState::with_seed(seed ^ 0x5eed_4a54)),
            merges: Map::with_hasher(foldhash::fast::FixedState::with_seed(seed ^ 0x6d65_7267)),
            deadlines: BinaryHeap::new(),
            streams: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            fx: Effects::default(),
            now: Time::ZERO,
            stats: Stats::default(),
            capabilities,
            server,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The engine's seeded generator, for building requests (branches, tags, Call-IDs).
    pub fn ids(&mut self) -> &mut SeededIds {
        &mut self.ids
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live transactions.
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// The RFC state of a live transaction (`"Proceeding"`, `"Completed"` …).
    pub fn transaction_state(&self, tx: TransactionId) -> Option<&'static str> {
        self.txs.get(tx).map(|t| t.machine.state_name())
    }

    /// The request a live transaction was created for.
    pub fn transaction_request(&self, tx: TransactionId) -> Option<&Request> {
        self.txs.get(tx).map(|t| t.machine.request())
    }

    /// Next instruction for the driver.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the layer above.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Time> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            match self.txs.get(id).and_then(|t| t.machine.deadline()) {
                // A stale entry: the transaction ended or its deadline moved (a newer
                // entry for the new deadline exists).
                Some(d) if d == at => return Some(at),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    fn advance(&mut self, now: Time) -> Time {
        // Time never goes backwards.
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        let now = self.advance(now);
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let due = self.txs.get(id).and_then(|t| t.machine.deadline()).is_some_and(|d| d == at);
            if due {
                // Every machine moves its deadline when it fires (with_tx files the new one).
                self.with_tx(id, |m, fx| m.on_timeout(now, fx));
            }
        }
    }

    /// One UDP datagram from `source`.
    pub fn handle_datagram(&mut self, now: Time, source: Flow, data: Bytes) {
        let now = self.advance(now);
        self.stats.received += 1;
        if !data.is_empty() && data.iter().all(|&c| c == b'\r' || c == b'\n') {
            return; // a keep-alive: nothing to answer over UDP (RFC 5626 uses STUN there)
        }
        match RawMessage::parse_datagram(data.clone()) {
            // The datagram itself can be framed again if the message turns out broken, so
            // the rows need no copy on the common path.
            Ok(raw) => self.on_raw(now, source, raw, Some(&data)),
            Err(e) if e.is_response() => self.stats.responses_dropped += 1,
            Err(e) => {
                // A framing error (Content-Length) still leaves rows to answer with (RFC 4475 `clerr`, `ncl`, `mcl01`).
                self.stats.parse_errors += 1;
                if let Ok(raw) = RawMessage::parse_head_rows(data) {
                    if !raw.is_response() {
                        self.answer_unparsed(&raw, &e, source);
                    }
                }
            }
        }
    }

    /// Bytes received on a TCP/TLS connection (`source.connection` must be set).
    pub fn handle_stream(&mut self, now: Time, source: Flow, data: &[u8]) {
        let now = self.advance(now);
        let Some(conn) = source.connection else { return };
        let max = self.config.max_stream_message;
        let decoder = self.streams.entry(conn).or_insert_with(|| StreamDecoder::with_max_len(max));
        decoder.push(data);
        loop {
            let Some(decoder) = self.streams.get_mut(&conn) else { return };
            match decoder.decode_raw() {
                Ok(None) => return,
                Ok(Some(RawFrame::Ping)) => {
                    // RFC 5626 §4.4.1: answer a double-CRLF ping with a CRLF pong.
                    self.transmits.push_back(Transmit::Send { flow: source, payload: Bytes::from_static(b"\r\n") });
                }
                Ok(Some(RawFrame::Pong)) => {}
                Ok(Some(RawFrame::Message(raw))) => {
                    self.stats.received += 1;
                    self.on_raw(now, source, raw, None);
                }
                Err(e) => {
                    // §18.3: a framing error on a stream cannot be recovered: close.
                    self.stats.received += 1;
                    self.stats.parse_errors += 1;
                    if !e.is_response() {
                        tracing::debug!(connection = conn.0, error = %e, "stream framing error; closing the connection");
                    }
                    self.streams.remove(&conn);
                    self.transmits.push_back(Transmit::Close { connection: conn });
                    return;
                }
            }
        }
    }

    /// The driver closed, or lost, a connection. Client transactions waiting on it fail
    /// with a transport error (§17.1.1.2); server transactions will reconnect to answer.
    pub fn handle_connection_closed(&mut self, now: Time, connection: ConnectionId) {
        let _ = self.advance(now);
        self.streams.remove(&connection);
        let ids: Vec<TransactionId> = self
            .txs
            .ids()
            .filter(|id| self.txs.get(*id).is_some_and(|t| !t.machine.is_server() && t.flow.connection == Some(connection)))
            .collect();
        for id in ids {
            self.with_tx(id, |m, fx| m.on_transport_error(fx));
        }
    }

    /// The driver could not send to `flow` (ICMP unreachable, connection refused): every
    /// transaction sending there fails with a transport error.
    pub fn handle_transport_error(&mut self, now: Time, flow: &Flow) {
        let _ = self.advance(now);
        let ids: Vec<TransactionId> = self
            .txs
            .ids()
            .filter(|id| self.txs.get(*id).is_some_and(|t| t.flow.transport == flow.transport && t.flow.remote == flow.remote))
            .collect();
        for id in ids {
            self.with_tx(id, |m, fx| m.on_transport_error(fx));
        }
    }

    /// Interprets a framed message. `datagram` is the UDP payload it came from, when there
    /// is one: a broken request is framed from it again for the 400 (rare), instead of
    /// copying the rows of every request up front (streams must copy).
    fn on_raw(&mut self, now: Time, source: Flow, raw: RawMessage, datagram: Option<&Bytes>) {
        let is_response = raw.is_response();
        let rows = if is_response || datagram.is_some() { None } else { Some(raw.clone()) };
        match Message::from_raw(raw) {
            Ok(Message::Request(req)) => self.on_request(now, source, req),
            Ok(Message::Response(resp)) => self.on_response(now, source, resp),
            Err(_) if is_response => self.stats.responses_dropped += 1,
            Err(e) => {
                self.stats.parse_errors += 1;
                let rows = rows.or_else(|| datagram.and_then(|d| RawMessage::parse_datagram(d.clone()).ok()));
                if let Some(raw) = rows {
                    self.answer_unparsed(&raw, &e, source);
                }
            }
        }
    }

    /// A stateless error answer to a request that did not parse, sent where its top Via
    /// says when that Via parses, else back to the source.
    fn answer_unparsed(&mut self, raw: &RawMessage, e: &ParseError, source: Flow) {
        if raw.start_line().is_ok_and(|s| matches!(s, sip_message::StartLine::Request { method, .. } if method.as_ref() == b"ACK")) {
            return; // an ACK is never answered
        }
        let flow = raw
            .headers()
            .get(HeaderName::Via)
            .and_then(|h| Via::parse(&h.value_bytes()).ok())
            .map_or(source, |v| response_flow(&v, &source));
        let payload = uas::error_response(raw, e, &self.config, &mut self.ids);
        tracing::debug!(remote = %source.remote, error = %e, "unparseable request answered statelessly");
        self.transmits.push_back(Transmit::Send { flow, payload });
    }

    fn on_request(&mut self, now: Time, source: Flow, mut req: Request) {
        // The key comes from the Via as the client sent it: a NAT rebinding its port must
        // not turn a retransmission into a new (merged) request.
        let key = Key::server(&req);
        if let Some(v) = stamp_via(req.via(), &source) {
            req.set_top_via(v);
        }
        if matches!(req.method(), Method::Ack) {
            return self.on_ack(now, source, req, key);
        }
        if let Some(&id) = self.keys.get(&key) {
            // §17.2.3: a retransmission: the transaction answers it, nobody above hears of it.
            self.stats.retransmissions_absorbed += 1;
            self.with_tx(id, |m, fx| match m {
                Machine::ServerInvite(s) => s.on_retransmission(fx),
                Machine::ServerNonInvite(s) => s.on_retransmission(fx),
                _ => {}
            });
            return;
        }
        if matches!(req.method(), Method::Cancel) {
            return self.on_cancel(now, source, req, key);
        }
        let merge = MergeKey::of(&req);
        let merged = merge.as_ref().is_some_and(|m| self.merges.contains_key(m));
        let rejection = if let Some(r) = uas::check_method(&req, &self.config) {
            // §8.2.1 comes first.
            Some(r)
        } else if merged {
            // §8.2.2.2: same From tag, Call-ID and CSeq as a request in progress, other branch.
            Some(uas::Rejection { status: 482, headers: Vec::new() })
        } else if self.came_through_us(&req) {
            // §16.3 item 4 in spirit: a request that already passed through us has looped.
            Some(uas::Rejection { status: 482, headers: Vec::new() })
        } else {
            uas::check(&req, &self.config)
        };
        let answer_here =
            rejection.is_some() || (self.config.answer_options && matches!(req.method(), Method::Options) && req.to().tag().is_none());
        let merge = if merged { None } else { merge };
        if !answer_here {
            // The transaction and the layer above each keep the request.
            let id = self.new_server_tx(now, source, req.clone(), key, merge);
            self.events.push_back(Event::Request { tx: id, request: req, source });
            return;
        }
        let id = self.new_server_tx(now, source, req, key, merge);
        let (status, headers) = match rejection {
            Some(r) => (r.status, r.headers),
            None => (200, self.capabilities.clone()),
        };
        let _ = self.reply(now, id, status, headers);
    }

    /// Whether the request is one we sent that came back unchanged: a Via below the top
    /// carries the branch of one of our live client transactions for the same
    /// Request-URI (a loop). A request that merely passed through us before — a spiral,
    /// a hairpinned call with a new Request-URI — is not refused; Max-Forwards ends real
    /// loops of those. Only looked at when there are several Via values.
    fn came_through_us(&self, req: &Request) -> bool {
        if req.via_count() < 2 {
            return false;
        }
        let Ok(vias) = req.vias() else { return false };
        vias.iter().skip(1).any(|v| {
            let Some(key) = Key::client(v, req.method()) else { return false };
            self.keys
                .get(&key)
                .and_then(|id| self.txs.get(*id))
                .is_some_and(|t| !t.machine.is_server() && t.machine.request().uri() == req.uri())
        })
    }

    fn new_server_tx(&mut self, now: Time, source: Flow, req: Request, key: Key, merge: Option<MergeKey>) -> TransactionId {
        let reliable = source.transport.is_reliable();
        let flow = response_flow(req.via(), &source);
        let timers = self.config.timers;
        let machine = if matches!(req.method(), Method::Invite) {
            Machine::ServerInvite(ServerInvite::new(now, req, timers, reliable, self.config.unanswered_invite_limit))
        } else {
            Machine::ServerNonInvite(ServerNonInvite::new(now, req, timers, reliable))
        };
        self.insert(Transaction { machine, flow, key, merge_key: merge, cancel_pending: false, internal: false, local_tag: None })
    }

    fn insert(&mut self, t: Transaction) -> TransactionId {
        self.stats.transactions += 1;
        let key = t.key.clone();
        let merge = t.merge_key.clone();
        let deadline = t.machine.deadline();
        let id = self.txs.insert(t);
        self.keys.insert(key, id);
        if let Some(m) = merge {
            self.merges.insert(m, id);
        }
        if let Some(d) = deadline {
            self.deadlines.push(Reverse((d, id)));
        }
        id
    }

    fn on_ack(&mut self, now: Time, source: Flow, req: Request, key: Key) {
        if let Some(&id) = self.keys.get(&key) {
            let is_2543 = key.is_2543();
            let mut absorbed = false;
            self.with_tx(id, |m, _| match m {
                // RFC 2543 matching also needs the To tag of our response (§17.2.3).
                Machine::ServerInvite(s) if !is_2543 || s.to_tag.as_deref() == req.to().tag() => absorbed = s.on_ack(now),
                _ => {}
            });
            if absorbed {
                self.stats.retransmissions_absorbed += 1;
                return;
            }
        }
        self.events.push_back(Event::Ack { request: req, source });
    }

    /// §9.2: a CANCEL matching an INVITE server transaction gets 200 and the INVITE is
    /// reported cancelled; one matching nothing gets 481.
    fn on_cancel(&mut self, now: Time, source: Flow, req: Request, key: Key) {
        let invite = self.keys.get(&key.with_method(MethodKey::Invite)).copied();
        let id = self.new_server_tx(now, source, req, key, None);
        match invite {
            Some(inv) => {
                let _ = self.reply(now, id, 200, Vec::new());
                if self.txs.get(inv).is_some_and(|t| matches!(&t.machine, Machine::ServerInvite(s) if s.is_proceeding())) {
                    self.events.push_back(Event::Cancelled { tx: inv });
                }
            }
            None => {
                let _ = self.reply(now, id, 481, Vec::new());
            }
        }
    }

    fn on_response(&mut self, now: Time, source: Flow, resp: Response) {
        // §17.1.3: the CSeq method must match; ACK has no responses (and must not be
        // taken for the INVITE it would key as).
        if resp.cseq().method == Method::Ack {
            self.stats.responses_dropped += 1;
            return;
        }
        let Some(key) = Key::client(resp.via(), &resp.cseq().method) else {
            self.stats.responses_dropped += 1;
            return;
        };
        let Some(&id) = self.keys.get(&key) else {
            // §18.1.2 / §17.1.3: a response matching no client transaction is dropped.
            self.stats.responses_dropped += 1;
            return;
        };
        let provisional = resp.status() < 200;
        if source.connection.is_some() {
            // The driver opened the connection for our request: remember it, so ACK and
            // CANCEL use it and its loss fails the transaction (§17.1.1.2).
            if let Some(t) = self.txs.get_mut(id) {
                if t.flow.connection.is_none() && t.flow.transport == source.transport {
                    t.flow.connection = source.connection;
                }
            }
        }
        self.with_tx(id, |m, fx| match m {
            Machine::ClientInvite(c) => c.on_response(now, resp, fx),
            Machine::ClientNonInvite(c) => c.on_response(now, resp, fx),
            _ => {}
        });
        // §9.1: a CANCEL asked for before any provisional goes out with the first one.
        let pending = self.txs.get_mut(id).is_some_and(|t| std::mem::take(&mut t.cancel_pending));
        if pending && provisional {
            let _ = self.cancel(now, id);
        }
    }

    /// Runs `f` on a transaction's machine, then routes its effects: messages to the
    /// transaction's flow, news upward, the new deadline into the index, and the
    /// transaction out of every map once it is Terminated.
    fn with_tx(&mut self, id: TransactionId, f: impl FnOnce(&mut Machine, &mut Effects)) {
        let mut fx = std::mem::take(&mut self.fx);
        let Some(t) = self.txs.get_mut(id) else {
            self.fx = fx;
            return;
        };
        let before = t.machine.deadline();
        f(&mut t.machine, &mut fx);
        let changed = t.machine.deadline() != before;
        let flow = t.flow;
        let internal = t.internal;
        for payload in fx.send.drain(..) {
            self.transmits.push_back(Transmit::Send { flow, payload });
        }
        let mut unanswered = false;
        for up in fx.up.drain(..) {
            if internal {
                continue;
            }
            self.events.push_back(match up {
                Up::Response(response) => Event::Response { tx: id, response },
                Up::Failed(reason) => Event::Failed { tx: id, reason },
                Up::ServerFailed(reason) => Event::ServerFailed { tx: id, reason },
                Up::Unanswered => {
                    unanswered = true;
                    Event::ServerFailed { tx: id, reason: Failure::Unanswered }
                }
            });
        }
        self.fx = fx;
        self.settle(id, changed);
        if unanswered {
            tracing::warn!(%id, "the layer above never answered an INVITE; answering 500");
            let now = self.now;
            let _ = self.reply(now, id, 500, Vec::new());
        }
    }

    /// Files the transaction's deadline when it changed (unchanged deadlines already have
    /// an entry; pushing again per absorbed retransmission would grow the heap), and
    /// removes a Terminated transaction from every map.
    fn settle(&mut self, id: TransactionId, changed: bool) {
        let Some(t) = self.txs.get(id) else { return };
        if t.machine.is_terminated() {
            if let Some(t) = self.txs.remove(id) {
                if self.keys.get(&t.key) == Some(&id) {
                    self.keys.remove(&t.key);
                }
                if let Some(m) = t.merge_key {
                    if self.merges.get(&m) == Some(&id) {
                        self.merges.remove(&m);
                    }
                }
            }
        } else if let Some(d) = t.machine.deadline().filter(|_| changed) {
            self.deadlines.push(Reverse((d, id)));
        }
    }

    /// Sends a response on a server transaction. A final response to an INVITE must carry
    /// a To tag; 2xx retransmissions in Accepted are allowed (RFC 6026 §8.7).
    pub fn respond(&mut self, now: Time, tx: TransactionId, response: Response) -> Result<(), CommandError> {
        self.respond_with(now, tx, &response)
    }

    /// [`Endpoint::respond`] with a response the caller keeps (a 2xx it retransmits
    /// until the ACK): only its printed form goes to the transaction.
    pub fn respond_with(&mut self, now: Time, tx: TransactionId, response: &Response) -> Result<(), CommandError> {
        let now = self.advance(now);
        let t = self.txs.get(tx).ok_or(CommandError::NoTransaction)?;
        if !t.machine.is_server() {
            return Err(CommandError::Invalid("not a server transaction"));
        }
        let status = response.status();
        let to_tag = response.to().tag().map(str::to_owned);
        let wire = response.to_bytes();
        let mut result = Ok(());
        self.with_tx(tx, |m, fx| {
            let r = match m {
                Machine::ServerInvite(s) => s.respond(now, status, wire, to_tag, fx),
                Machine::ServerNonInvite(s) => s.respond(now, status, wire, fx),
                _ => Respond::Refused,
            };
            if r == Respond::Refused {
                result = Err(CommandError::WrongState(m.state_name()));
            }
        });
        result
    }

    /// Builds the response to a server transaction's request (§8.2.6: our To tag on
    /// finals, `Server`, the given extra rows) and sends it.
    pub fn reply(&mut self, now: Time, tx: TransactionId, status: u16, headers: Vec<Header>) -> Result<(), CommandError> {
        // One To tag per server transaction, so a 180 and the 200 after it agree (§12.1.1).
        let tag = match self.txs.get(tx).ok_or(CommandError::NoTransaction)?.local_tag.clone() {
            Some(t) => t,
            None => {
                let t = self.ids.tag();
                if let Some(x) = self.txs.get_mut(tx) {
                    x.local_tag = Some(t.clone());
                }
                t
            }
        };
        let t = self.txs.get(tx).ok_or(CommandError::NoTransaction)?;
        let mut b = t.machine.request().reply(status).to_tag(&tag);
        for h in headers {
            b = b.header(h);
        }
        b = b.header(self.server.clone());
        let response = b.build(&mut self.ids).map_err(CommandError::Build)?;
        self.respond(now, tx, response)
    }

    /// Starts a client transaction for `request` towards `flow` (§17.1). The request's
    /// top Via must carry a fresh `z9hG4bK` branch (the builders draw one). A UDP request
    /// larger than the MTU goes over TCP when we listen on TCP (§18.1.1).
    pub fn send_request(&mut self, now: Time, mut request: Request, mut flow: Flow) -> Result<TransactionId, CommandError> {
        let now = self.advance(now);
        if matches!(request.method(), Method::Ack) {
            return Err(CommandError::Invalid("ACK is not a transaction: use send_stateless"));
        }
        if !request.via().has_rfc3261_branch() {
            return Err(CommandError::Invalid("the top Via needs a z9hG4bK branch"));
        }
        // Printed once: for the size check and for the wire (again only if the Via changes).
        let mut wire = request.to_bytes();
        if flow.transport == Transport::Udp && wire.len() > self.config.udp_mtu {
            if let Some(tcp) = self.config.listener(Transport::Tcp) {
                flow = Flow { transport: Transport::Tcp, local: tcp, remote: flow.remote, connection: None };
                let v = request.via();
                let branch = v.branch().unwrap_or_default().to_owned();
                request.set_top_via(Via::new(Transport::Tcp.to_message(), v.host().clone(), v.port(), &branch));
                wire = request.to_bytes();
            }
        }
        let key = Key::client(request.via(), request.method()).ok_or(CommandError::Invalid("no branch"))?;
        if self.keys.contains_key(&key) {
            return Err(CommandError::Invalid("a transaction with this branch exists"));
        }
        let reliable = flow.transport.is_reliable();
        let timers = self.config.timers;
        let mut fx = std::mem::take(&mut self.fx);
        let machine = if matches!(request.method(), Method::Invite) {
            Machine::ClientInvite(ClientInvite::start(now, request, wire, timers, reliable, &mut fx))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::start(now, request, wire, timers, reliable, &mut fx))
        };
        let id = self.insert(Transaction { machine, flow, key, merge_key: None, cancel_pending: false, internal: false, local_tag: None });
        for payload in fx.send.drain(..) {
            self.transmits.push_back(Transmit::Send { flow, payload });
        }
        self.fx = fx;
        Ok(id)
    }

    /// Cancels a pending INVITE client transaction (§9.1): the CANCEL goes out now if a
    /// provisional has arrived, else as soon as one does. Its outcome is not reported;
    /// the INVITE's own final response (487, or a 2xx that won the race) is.
    pub fn cancel(&mut self, now: Time, tx: TransactionId) -> Result<(), CommandError> {
        let now = self.advance(now);
        let t = self.txs.get_mut(tx).ok_or(CommandError::NoTransaction)?;
        let Machine::ClientInvite(c) = &t.machine else {
            return Err(CommandError::Invalid("only an INVITE client transaction can be cancelled"));
        };
        if !c.is_calling_or_proceeding() {
            return Err(CommandError::WrongState(t.machine.state_name()));
        }
        if !c.has_provisional() {
            t.cancel_pending = true;
            return Ok(());
        }
        let wire = build_ack_or_cancel(c.request(), Method::Cancel, None);
        let flow = t.flow;
        let request = match Message::parse(wire.clone()) {
            Ok(Message::Request(r)) => r,
            _ => return Err(CommandError::Invalid("CANCEL did not build")),
        };
        let Some(key) = Key::client(request.via(), request.method()) else {
            return Err(CommandError::Invalid("no branch"));
        };
        if self.keys.contains_key(&key) {
            return Ok(()); // already cancelling
        }
        let mut fx = std::mem::take(&mut self.fx);
        let machine =
            Machine::ClientNonInvite(ClientNonInvite::start(now, request, wire, self.config.timers, flow.transport.is_reliable(), &mut fx));
        let _ = self.insert(Transaction { machine, flow, key, merge_key: None, cancel_pending: false, internal: true, local_tag: None });
        self.with_tx(tx, |m, _| {
            if let Machine::ClientInvite(c) = m {
                c.on_cancel_sent(now);
            }
        });
        for payload in fx.send.drain(..) {
            self.transmits.push_back(Transmit::Send { flow, payload });
        }
        self.fx = fx;
        Ok(())
    }

    /// Sends a message outside any transaction (the ACK for a 2xx, §13.2.2.4).
    pub fn send_stateless(&mut self, flow: Flow, payload: Bytes) {
        self.transmits.push_back(Transmit::Send { flow, payload });
    }

    /// The host and port to put in a Via sent-by for `transport` (§18.1.1).
    pub fn sent_by(&self, transport: Transport) -> Option<SocketAddr> {
        self.config.listener(transport)
    }
}

/// The rows of a 200 to OPTIONS (§11.2): Allow, Accept, Accept-Encoding, Accept-Language,
/// and Supported, listed even when empty (the grammar allows no option tags).
fn capability_headers(config: &EndpointConfig) -> Vec<Header> {
    vec![
        Header::new(HeaderName::Allow, Bytes::from(config.allow_header())),
        Header::new(HeaderName::Accept, Bytes::from(config.accept.join(", "))),
        Header::new(HeaderName::AcceptEncoding, Bytes::from_static(b"identity")),
        Header::new(HeaderName::AcceptLanguage, Bytes::from_static(b"en")),
        Header::new(HeaderName::Supported, Bytes::from(config.supported.join(", "))),
    ]
}
