//! The B2BUA call model: two legs, each its own dialog with its own Call-ID, tags and
//! CSeq space, kept in step (`../shared/design/DIRECT_MEDIA.md`, "Words").
//!
//! [`B2bua`] sits on the [`Endpoint`]: the driver hands it every engine event
//! ([`B2bua::handle_event`]), and it gives back what is not about calls (REGISTER,
//! out-of-dialog MESSAGE …). It never retransmits a request and never sees a retransmitted
//! one: that is the transaction layer's job. What it does retransmit is the one thing
//! RFC 3261 gives the layer above: a 2xx to an INVITE, until the ACK (§13.3.1.4).
//!
//! Mechanism here, policy outside: an incoming INVITE becomes a
//! [`CallEvent::Incoming`]; the binary decides with [`B2bua::route`] (where to, which
//! relay addresses, which codecs) or [`B2bua::reject`].
//!
//! Drain rule: after every input or command, drain the endpoint (`poll_transmit`,
//! `poll_event` → `handle_event`) and [`B2bua::poll_event`] until all are empty, then
//! read both `poll_timeout`s.

mod fork;
mod leg;
mod media;
mod session_timer;

pub use leg::Side;
pub use media::{DirectMethod, DirectOpts, MediaCounters, MediaPath, HISTORY as MEDIA_HISTORY, WITHHOLD_GRACE};
pub use session_timer::{Refresher, SessionExpires, MIN_SE};

use crate::dialog::Dialog;
use crate::endpoint::{Endpoint, Event};
use crate::nat::NatEvidence;
use crate::timers::TimerConfig;
use crate::transaction::{Failure, TransactionId};
use crate::transport::{Flow, Transport};
use crate::Time;
use bytes::Bytes;
use fork::{Branch, Forks};
use leg::{sdp_of, AckOwed, CallerInvite, Leg, Pending2xx};
use sdp::{LocalOrigin, SessionDescription};
use session_timer::{supports_timer, SessionTimer};
use sip_message::{reason_phrase, Header, HeaderName, Host, IdSource, Method, NameAddr, Request, Response, SipUri, Uri};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// The call layer's maps are keyed by what peers choose (Call-IDs, tags) and by our own
/// handles: foldhash seeded from the engine seed, as the endpoint's transaction maps
/// (SipHash cost several times more per lookup, and a call does about twenty).
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn map<K, V>(seed: u64) -> Map<K, V> {
    Map::with_hasher(foldhash::fast::FixedState::with_seed(seed))
}
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A call's handle. Numbers are never reused, so a stale handle finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call{}", self.0)
    }
}

/// What the B2BUA needs to know of the server it runs in.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// The RFC 3261 timer base (2xx retransmission, 64·T1).
    pub timers: TimerConfig,
    /// The address peers reach us at, for Contact and Via (`[sip] external_address`, or
    /// the listener's address).
    pub advertise: IpAddr,
    /// Our listeners' ports by transport, for Contact and Via.
    pub ports: Vec<(Transport, u16)>,
    /// `User-Agent` on requests and `Server` on responses.
    pub user_agent: String,
    /// The Allow row we send.
    pub allow: String,
    /// How long the outbound leg may ring before the call gets 480 (Asterisk's Dial
    /// timeout).
    pub no_answer: Duration,
    /// The longest a call may last; zero = no limit.
    pub max_duration: Duration,
    /// Seed for the §14.2 Retry-After and our SDP session ids.
    pub seed: u64,
}

impl Default for B2buaConfig {
    fn default() -> B2buaConfig {
        B2buaConfig {
            timers: TimerConfig::default(),
            advertise: IpAddr::from([127, 0, 0, 1]),
            ports: vec![(Transport::Udp, 5060), (Transport::Tcp, 5060), (Transport::Tls, 5061)],
            user_agent: "sipbridge".into(),
            allow: "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO".into(),
            no_answer: Duration::from_secs(60),
            max_duration: Duration::ZERO,
            seed: 0,
        }
    }
}

/// Where the binary sends a call, and with which media.
#[derive(Debug, Clone)]
pub struct Target {
    /// The outbound leg's Request-URI (and To).
    pub uri: Uri,
    /// The flow to send the INVITE over.
    pub flow: Flow,
    /// Our relay address for each leg (index [`Side::index`]): what each leg's SDP
    /// points at.
    pub media: [SocketAddr; 2],
    /// Codec names each leg may use (empty = anything).
    pub codecs: [Vec<String>; 2],
    /// Send each leg's in-dialog requests to the address its messages come from (NAT).
    pub pin_flow: [bool; 2],
    /// The ringing limit for this call; `None` = the configured one.
    pub no_answer: Option<Duration>,
    /// Extra rows for the outbound INVITE.
    pub headers: Vec<Header>,
    /// More contacts to ring in parallel with `uri` (a registered endpoint's other
    /// bindings): empty = one INVITE. `docs/CALLS.md`, "Forking to several contacts".
    pub forks: Vec<Fork>,
    /// Why each leg's endpoint is taken as behind NAT, if it is (the caller's INVITE,
    /// the callee's registration or config): kept with the call for the direct-media
    /// `nonat` rule and the API.
    pub nat: [Option<NatEvidence>; 2],
    /// `direct_rtp_setup` (DIRECT_MEDIA.md): the policy already allows direct media at
    /// set-up, so the INVITE to the callee carries the caller's media address and the
    /// answer to the caller the callee's: the media never touches the relay and no
    /// re-INVITE is needed. The relay ports stay reserved for re-anchoring.
    pub direct_setup: bool,
}

/// One more contact a call rings in parallel with [`Target::uri`]: its own INVITE (same
/// Call-ID, From tag, CSeq and offer; its own branch and Request-URI).
#[derive(Debug, Clone)]
pub struct Fork {
    /// The Request-URI (the binding's contact).
    pub uri: Uri,
    /// The flow to send its INVITE over (and its dialog's, when it answers first).
    pub flow: Flow,
    /// Send the dialog's requests over `flow` if this contact wins (NAT).
    pub pin_flow: bool,
}

/// A call waiting for the binary's decision.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The call.
    pub call: CallId,
    /// The caller's INVITE.
    pub request: Request,
    /// Where it came from.
    pub source: Flow,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The outbound leg (or we) answered the INVITE with this final status.
    Rejected(u16),
    /// The caller cancelled.
    Cancelled,
    /// Nobody answered within the ringing limit.
    NoAnswer,
    /// A BYE from this leg.
    HangUp(Side),
    /// A request that matters got no answer, or 481/408: "no reply to critical request".
    NoReply {
        /// The leg.
        side: Side,
        /// The request (INVITE for a re-INVITE, ACK for a 2xx never acknowledged).
        method: Method,
        /// The status that ended it (408 for a timeout).
        status: u16,
    },
    /// The binary hung up (API, media timeout …), with its reason.
    Command(String),
    /// The call reached `max_duration`.
    MaxDuration,
    /// No session refresh came from this leg in time (RFC 4028 §10).
    SessionExpired(Side),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Rejected(s) => write!(f, "rejected {s}"),
            EndReason::Cancelled => f.write_str("cancelled"),
            EndReason::NoAnswer => f.write_str("no answer"),
            EndReason::HangUp(s) => write!(f, "{s} leg hung up"),
            EndReason::NoReply { side, method, status } => write!(f, "no reply to critical request {method} on the {side} leg ({status})"),
            EndReason::Command(r) => write!(f, "hung up: {r}"),
            EndReason::MaxDuration => f.write_str("maximum duration reached"),
            EndReason::SessionExpired(s) => write!(f, "session timer expired on the {s} leg"),
        }
    }
}

/// What the B2BUA tells the binary.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A new call: answer with [`B2bua::route`] or [`B2bua::reject`].
    Incoming(Box<Incoming>),
    /// The outbound leg sent a provisional response (forwarded to the caller).
    Progress {
        /// The call.
        call: CallId,
        /// 180, 183 …
        status: u16,
    },
    /// The outbound leg answered (the 2xx went to the caller).
    Answered {
        /// The call.
        call: CallId,
    },
    /// A leg's SDP gave (or changed, or withdrew) the address it receives media at.
    Media {
        /// The call.
        call: CallId,
        /// The leg.
        side: Side,
        /// Its RTP address; `None` on hold with `c=0.0.0.0` or port 0.
        remote: Option<SocketAddr>,
    },
    /// The media path changed (`media.rs`): stop relay forwarding on `Direct`, resume
    /// it on `Relayed`.
    MediaPath {
        /// The call.
        call: CallId,
        /// Where the media flows now.
        path: MediaPath,
    },
    /// An offer/answer exchange completed on a leg (RFC 3264 §4): [`B2bua::local_sdp`]
    /// and [`B2bua::remote_sdp`] of `side` are new (for the relay's payload-type maps).
    Negotiated {
        /// The call.
        call: CallId,
        /// The leg.
        side: Side,
    },
    /// The call is over (both legs are being or have been torn down).
    Ended {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No such call (ended, or a stale handle).
    #[error("no such call")]
    NoCall,
    /// The call is past the point where this may be done.
    #[error("the call is {0}")]
    WrongState(&'static str),
    /// The outbound INVITE could not be built or sent.
    #[error("cannot send: {0}")]
    Send(String),
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the binary's decision.
    Routing,
    /// The outbound INVITE is out.
    Calling,
    /// The outbound leg answered.
    Answered,
    /// Torn down; the record stays a while to absorb late messages.
    Ended,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Routing => "routing",
            Phase::Calling => "calling",
            Phase::Answered => "answered",
            Phase::Ended => "ended",
        }
    }
}

/// What a transaction is for.
#[derive(Debug, Clone, Copy)]
enum TxUse {
    /// The initial INVITE (server on A, client on B).
    Invite,
    /// A re-INVITE we sent, forwarding the server re-INVITE `peer` of the other leg.
    ClientReinvite { peer: Option<TransactionId> },
    /// A re-INVITE we received, forwarded as `peer` on the other leg.
    ServerReinvite { peer: Option<TransactionId> },
    /// A non-INVITE we sent, forwarding the server transaction `peer` of the other leg.
    Forward { peer: TransactionId, update: bool },
    /// Our BYE.
    Bye,
    /// Our own session refresh (RFC 4028) with UPDATE; a re-INVITE refresh is a
    /// `ClientReinvite` without a peer.
    RefreshUpdate,
    /// A media-path request of ours (direct media, re-point, re-anchor).
    Media { update: bool },
}

#[derive(Debug, Clone, Copy)]
struct TxEntry {
    call: CallId,
    side: Side,
    usage: TxUse,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls created.
    pub calls: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls ended, by reason: answered and then hung up.
    pub completed: u64,
    /// Rejected (busy, not found …) or no answer.
    pub failed: u64,
    /// Cancelled by the caller.
    pub cancelled: u64,
    /// Torn down because a critical request got no reply.
    pub no_reply: u64,
    /// 491 answers we sent.
    pub glare_491_sent: u64,
    /// 491 answers to our media-path requests.
    pub glare_491_received: u64,
    /// Media-path requests (re-INVITE / UPDATE) we sent for direct media or re-anchoring.
    pub media_requests: u64,
    /// Times a call's media became direct.
    pub direct_switches: u64,
    /// Times a call's media came back to the relay after being direct.
    pub re_anchors: u64,
}

/// One call.
#[derive(Debug)]
struct Call {
    id: CallId,
    phase: Phase,
    a: Leg,
    b: Leg,
    created_at: Time,
    answered_at: Option<Time>,
    no_answer_at: Option<Time>,
    max_duration_at: Option<Time>,
    reap_at: Option<Time>,
    reason: Option<EndReason>,
    /// Every transaction and dialog key of the call, removed from the maps when it is
    /// reaped.
    txs: Vec<TransactionId>,
    dialog_keys: Vec<(String, String)>,
    /// What the API shows of the call: the caller, the dialled URI, each leg's Call-ID
    /// (kept apart from the INVITEs, which are dropped once answered).
    from: String,
    to: String,
    call_ids: [String; 2],
    /// ACKs we sent for 2xx responses, per leg, to send again when the 2xx is
    /// retransmitted (§13.2.2.4).
    last_ack: [Option<Box<LastAck>>; 2],
    /// The outbound leg's branches when the call rings several contacts; `None` for one.
    forks: Option<Box<Forks>>,
    /// The outbound dialog's requests always go over `b.flow` (`Target::pin_flow`, or the
    /// winning [`Fork::pin_flow`]).
    b_pin_flow: bool,
    /// [`Target::nat`].
    nat: [Option<NatEvidence>; 2],
    /// The media-path state, once the call was asked to move its media (`media.rs`).
    media: Option<Box<media::MediaCtl>>,
    counters: MediaCounters,
}

impl Call {
    fn leg(&self, s: Side) -> &Leg {
        match s {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
    fn leg_mut(&mut self, s: Side) -> &mut Leg {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
    fn legs_mut(&mut self, s: Side) -> (&mut Leg, &mut Leg) {
        match s {
            Side::A => (&mut self.a, &mut self.b),
            Side::B => (&mut self.b, &mut self.a),
        }
    }

    /// Where the outbound INVITE `tx` went: its flow, and whether its dialog pins it.
    fn b_branch(&self, tx: TransactionId) -> (Flow, bool) {
        match self.forks.as_ref().and_then(|f| f.branch(tx)) {
            Some(b) => (b.flow, b.pin_flow),
            None => (self.b.flow, self.b_pin_flow),
        }
    }

    /// An outbound INVITE is still waiting for its final response.
    fn b_pending(&self) -> bool {
        match &self.forks {
            Some(f) => !f.all_done(),
            None => self.b.invite_tx.is_some() && !self.b.final_done,
        }
    }

    fn next_deadline(&self) -> Option<Time> {
        let p = |l: &Leg| l.pending_2xx.as_ref().map(|p| if p.reliable { p.give_up_at } else { p.next_at.min(p.give_up_at) });
        let st = |l: &Leg| l.session.as_ref().filter(|_| self.phase != Phase::Ended).map(|t| t.due_at);
        let m = self.media.as_deref().filter(|_| self.phase == Phase::Answered).and_then(|m| m.deadline());
        let ack = |i: usize| self.last_ack[i].as_ref().map(|a| a.until);
        [p(&self.a), p(&self.b), st(&self.a), st(&self.b), m, self.no_answer_at, self.max_duration_at, self.reap_at, ack(0), ack(1)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A summary of one call, for the API and the CLI.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The call.
    pub id: CallId,
    /// Where it is.
    pub phase: Phase,
    /// The caller (inbound From).
    pub from: String,
    /// The dialled URI.
    pub to: String,
    /// Each leg's Call-ID.
    pub call_ids: [String; 2],
    /// Each leg's relay address and the address its SDP gave.
    pub media: [(SocketAddr, Option<SocketAddr>); 2],
    /// When it started and was answered.
    pub created_at: Time,
    /// When it was answered.
    pub answered_at: Option<Time>,
    /// Why it ended.
    pub reason: Option<EndReason>,
    /// Each leg's NAT evidence ([`Target::nat`]).
    pub nat: [Option<NatEvidence>; 2],
    /// Where the media flows.
    pub media_path: MediaPath,
    /// Media-path requests sent and 491s sent/received.
    pub counters: MediaCounters,
    /// The last [`MEDIA_HISTORY`] media-path changes.
    pub media_history: Vec<(Time, MediaPath)>,
}

/// The call layer (see the module docs).
#[derive(Debug)]
pub struct B2bua {
    /// Shared, not owned: handlers take a copy of it to use beside `&mut self`, and an
    /// `Arc` copy is a count increment where a `B2buaConfig` copy was three allocations.
    config: std::sync::Arc<Settings>,
    next_call: u64,
    /// Boxed: a call is several KiB, and a table of them inline would hold up to twice
    /// that per call in spare capacity.
    calls: Map<CallId, Box<Call>>,
    dialogs: Map<(String, String), (CallId, Side)>,
    /// Both legs' Call-IDs, for the API's ladder and logs.
    call_ids: Map<String, CallId>,
    txs: Map<TransactionId, TxEntry>,
    deadlines: BinaryHeap<Reverse<(Time, CallId)>>,
    events: VecDeque<CallEvent>,
    rng: sip_message::SeededIds,
    stats: CallStats,
}

impl B2bua {
    /// A call layer with `config`.
    pub fn new(config: B2buaConfig) -> B2bua {
        let rng = sip_message::SeededIds::new(config.seed ^ 0x0062_3262_7561);
        let seed = config.seed;
        B2bua {
            config: std::sync::Arc::new(Settings::new(config)),
            next_call: 1,
            calls: map(seed ^ 0x6361_6c6c),
            dialogs: map(seed ^ 0x6469_616c),
            call_ids: map(seed ^ 0x6369_6473),
            txs: map(seed ^ 0x7478_7321),
            deadlines: BinaryHeap::new(),
            events: VecDeque::new(),
            rng,
            stats: CallStats::default(),
        }
    }

    /// The next thing the binary must know.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// When [`B2bua::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Time> {
        while let Some(Reverse((t, id))) = self.deadlines.peek().copied() {
            match self.calls.get(&id).and_then(|c| c.next_deadline()) {
                Some(d) if d == t => return Some(t),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Counters.
    pub fn stats(&self) -> CallStats {
        self.stats
    }

    /// Calls not yet reaped (including ended ones still absorbing late messages).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Calls that have not ended.
    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| c.phase != Phase::Ended).count()
    }

    /// Summaries of the calls that have not ended, oldest first.
    pub fn calls(&self) -> Vec<CallInfo> {
        let mut v: Vec<CallInfo> = self.calls.values().filter(|c| c.phase != Phase::Ended).map(|c| info(c)).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// One call's summary (also ended calls not yet reaped).
    pub fn call(&self, id: CallId) -> Option<CallInfo> {
        self.calls.get(&id).map(|c| info(c))
    }

    /// The SDP `side`'s endpoint last sent that is in force (its codecs, ptime and media
    /// address), for the direct-media decision.
    pub fn remote_sdp(&self, id: CallId, side: Side) -> Option<sdp::SessionDescription> {
        self.calls.get(&id).and_then(|c| c.leg(side).nego.remote())
    }

    /// The SDP we last sent `side`'s endpoint that is in force: its payload-type numbers
    /// are the ones that endpoint sends with (RFC 3264 §5.1: an SDP names what its
    /// sender wants to receive), for the relay's payload-type translation.
    pub fn local_sdp(&self, id: CallId, side: Side) -> Option<sdp::SessionDescription> {
        self.calls.get(&id).and_then(|c| c.leg(side).nego.local())
    }

    /// Whether both legs are answered and ACKed and the call is not ending: the moment
    /// [`B2bua::go_direct`] may be asked.
    pub fn confirmed(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.confirmed())
    }

    /// The call a Call-ID belongs to (either leg's), for logs and the API's ladder.
    pub fn call_for_call_id(&self, call_id: &str) -> Option<CallId> {
        self.call_ids.get(call_id).copied()
    }

    /// After an input touching `id`: the media-path step (`media.rs`), then its timer.
    fn settle_call(&mut self, now: Time, ep: &mut Endpoint, id: CallId) {
        self.media_pump(now, ep, id);
        if let Some(c) = self.calls.get_mut(&id) {
            for side in [Side::A, Side::B] {
                if c.leg_mut(side).nego.take_completed() {
                    self.events.push_back(CallEvent::Negotiated { call: id, side });
                }
            }
        }
        self.schedule(id);
    }

    fn schedule(&mut self, id: CallId) {
        if let Some(d) = self.calls.get(&id).and_then(|c| c.next_deadline()) {
            self.deadlines.push(Reverse((d, id)));
        }
    }

    /// Handles one engine event. Returns it when it is not about a call (REGISTER,
    /// out-of-dialog requests other than INVITE, responses to requests the binary sent).
    pub fn handle_event(&mut self, now: Time, ep: &mut Endpoint, event: Event) -> Option<Event> {
        match event {
            Event::Request { tx, request, source } => {
                if request.to().tag().is_none() {
                    if matches!(request.method(), Method::Invite) {
                        self.incoming_invite(now, ep, tx, request, source);
                        return None;
                    }
                    return Some(Event::Request { tx, request, source });
                }
                let key = (request.call_id().as_str().to_owned(), request.to().tag().unwrap_or_default().to_owned());
                match self.dialogs.get(&key).copied() {
                    Some((call, side)) => {
                        self.in_dialog(now, ep, call, side, tx, request);
                        self.settle_call(now, ep, call);
                        None
                    }
                    None => Some(Event::Request { tx, request, source }),
                }
            }
            Event::Ack { request, source } => {
                let key = (request.call_id().as_str().to_owned(), request.to().tag().unwrap_or_default().to_owned());
                match self.dialogs.get(&key).copied() {
                    Some((call, side)) => {
                        self.on_ack(now, ep, call, side, &request);
                        self.settle_call(now, ep, call);
                        None
                    }
                    None => Some(Event::Ack { request, source }),
                }
            }
            Event::Cancelled { tx } => match self.txs.get(&tx).copied() {
                Some(e) => {
                    self.on_cancelled(now, ep, e, tx);
                    self.settle_call(now, ep, e.call);
                    None
                }
                None => Some(Event::Cancelled { tx }),
            },
            Event::Response { tx, response } => match self.txs.get(&tx).copied() {
                Some(e) => {
                    self.on_response(now, ep, e, tx, response);
                    self.settle_call(now, ep, e.call);
                    None
                }
                None => Some(Event::Response { tx, response }),
            },
            Event::Failed { tx, reason } => match self.txs.get(&tx).copied() {
                Some(e) => {
                    self.on_failed(now, ep, e, tx, reason);
                    self.settle_call(now, ep, e.call);
                    None
                }
                None => Some(Event::Failed { tx, reason }),
            },
            Event::ServerFailed { tx, reason } => match self.txs.get(&tx).copied() {
                Some(e) => {
                    tracing::info!(call = %e.call, side = %e.side, ?reason, "our response could not be delivered");
                    if matches!(reason, Failure::Transport) {
                        self.end_call(now, ep, e.call, EndReason::NoReply { side: e.side, method: Method::Invite, status: 503 });
                        self.settle_call(now, ep, e.call);
                    }
                    None
                }
                None => Some(Event::ServerFailed { tx, reason }),
            },
        }
    }

    // ---- the initial INVITE ------------------------------------------------------------

    fn incoming_invite(&mut self, now: Time, ep: &mut Endpoint, tx: TransactionId, request: Request, source: Flow) {
        // RFC 7332 / §16.3 spirit: Max-Forwards is decremented across the B2BUA, so a
        // request that arrives with 0 cannot go on.
        if request.max_forwards() == Some(0) {
            let _ = ep.reply(now, tx, 483, Vec::new());
            return;
        }
        // RFC 4028 §8.1: an interval below our Min-SE gets 422.
        let session_asked = SessionExpires::of(request.headers());
        if session_asked.is_some_and(|se| se.interval < MIN_SE) {
            let _ = ep.reply(now, tx, 422, vec![Header::new(HeaderName::MinSe, Bytes::from(MIN_SE.to_string()))]);
            return;
        }
        let offer = match sdp_of(request.content_type(), request.body()) {
            Some(Ok(sd)) => Some(sd),
            Some(Err(())) => {
                let _ = ep.reply(
                    now,
                    tx,
                    400,
                    vec![Header::new(HeaderName::Warning, Bytes::from_static(b"399 sipbridge \"the SDP does not parse\""))],
                );
                return;
            }
            None => None,
        };
        let id = CallId(self.next_call);
        self.next_call += 1;
        self.stats.calls += 1;
        let unspecified = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0);
        let mut a = Leg::new(source, unspecified, self.origin());
        a.local_tag = ep.ids().tag();
        a.invite_tx = Some(tx);
        let dialog = Dialog::uas(&request, &a.local_tag, source);
        let key = (request.call_id().as_str().to_owned(), a.local_tag.clone());
        a.dialog = Some(dialog);
        if let Some(sd) = offer {
            a.learn_remote(&sd);
            a.remote_offer = a.nego.remote_offer(sd).ok();
        }
        a.peer_allows_update = allows_update(request.headers());
        a.session_asked = session_asked.map(|se| (se, supports_timer(request.headers())));
        a.invite = Some(Box::new(CallerInvite::of(&request)));
        let b = Leg::new(source, unspecified, self.origin());
        let call = Call {
            id,
            phase: Phase::Routing,
            a,
            b,
            created_at: now,
            answered_at: None,
            no_answer_at: None,
            max_duration_at: None,
            reap_at: None,
            reason: None,
            txs: vec![tx],
            from: request.from().uri().to_string(),
            to: request.uri().to_string(),
            call_ids: [key.0.clone(), String::new()],
            // Room for exactly the two legs' keys (a push would make it four, 96 B more).
            dialog_keys: {
                let mut keys = Vec::with_capacity(2);
                keys.push(key.clone());
                keys
            },
            last_ack: [None, None],
            forks: None,
            b_pin_flow: false,
            nat: [None, None],
            media: None,
            counters: MediaCounters::default(),
        };
        self.call_ids.insert(key.0.clone(), id);
        self.dialogs.insert(key, (id, Side::A));
        self.txs.insert(tx, TxEntry { call: id, side: Side::A, usage: TxUse::Invite });
        self.calls.insert(id, Box::new(call));
        tracing::debug!(call = %id, "incoming call");
        self.events.push_back(CallEvent::Incoming(Box::new(Incoming { call: id, request, source })));
    }

    fn origin(&mut self) -> LocalOrigin {
        LocalOrigin::new("sipbridge", self.rng.next_u64() >> 2, self.config.advertise)
    }

    /// Refuses a call waiting for routing with `status` (403, 404, 480 …).
    pub fn reject(&mut self, now: Time, ep: &mut Endpoint, call: CallId, status: u16) -> Result<(), CallError> {
        self.reject_with(now, ep, call, status, Vec::new())
    }

    /// [`B2bua::reject`] with extra headers in the answer: a 407's Proxy-Authenticate
    /// challenges, a Retry-After.
    pub fn reject_with(&mut self, now: Time, ep: &mut Endpoint, call: CallId, status: u16, headers: Vec<Header>) -> Result<(), CallError> {
        let cfg = &self.config;
        let c = self.calls.get_mut(&call).ok_or(CallError::NoCall)?;
        if c.phase != Phase::Routing {
            return Err(CallError::WrongState(c.phase.name()));
        }
        if !headers.is_empty() && !c.a.final_done {
            if let (Some(_), Some(tx)) = (c.a.invite.as_ref(), c.a.invite_tx) {
                // The caller's INVITE as the transaction layer keeps it; without the
                // transaction nothing can be sent, and the leg ends as when sending fails.
                match ep.transaction_request(tx).map(|req| build_response(cfg, req, status, None, &c.a.local_tag, None, c.a.flow.transport))
                {
                    None => {
                        c.a.final_done = true;
                        c.a.gone = true;
                    }
                    Some(Some(mut resp)) => {
                        for h in headers {
                            let _ = resp.push_header(h);
                        }
                        let _ = ep.respond(now, tx, resp);
                        // Answered with a final error: no dialog, nothing to BYE.
                        c.a.final_done = true;
                        c.a.gone = true;
                    }
                    Some(None) => {}
                }
            }
        }
        self.end_call_with(now, ep, call, EndReason::Rejected(status), status);
        self.schedule(call);
        Ok(())
    }

    /// Sends a call waiting for routing to `target`: the outbound INVITE goes out with
    /// our own Call-ID, tags, Via and Contact (topology hiding) and the caller's SDP
    /// pointed at our relay.
    pub fn route(&mut self, now: Time, ep: &mut Endpoint, call: CallId, target: Target) -> Result<(), CallError> {
        let cfg = self.config.clone();
        let c = self.calls.get_mut(&call).ok_or(CallError::NoCall)?;
        if c.phase != Phase::Routing {
            return Err(CallError::WrongState(c.phase.name()));
        }
        // What the outbound INVITE takes from the caller's: its From (user and display
        // name) and Max-Forwards.
        let CallerInvite { from_user, from_display, max_forwards } =
            c.a.invite.as_deref().cloned().ok_or(CallError::WrongState("without an INVITE"))?;
        let mf = max_forwards.unwrap_or(70).saturating_sub(1).min(69);
        let a_tx = c.a.invite_tx.ok_or(CallError::WrongState("without an INVITE"))?;
        let _ = ep.reply(now, a_tx, 100, Vec::new());
        c.a.media_local = target.media[0];
        c.a.codecs = target.codecs[0].clone();
        if let Some(d) = c.a.dialog.as_mut() {
            d.pin_flow(target.pin_flow[0]);
        }
        c.b.media_local = target.media[1];
        c.b.codecs = target.codecs[1].clone();
        c.b.flow = target.flow;
        c.b_pin_flow = target.pin_flow[1];
        if target.direct_setup {
            // Each leg's SDP carries the other endpoint's own address from the start
            // (`Leg::rewrite`); the media-path controller holds both goals at direct, so
            // it reports `Direct` once both legs are answered and re-anchors on demand.
            c.a.direct = true;
            c.b.direct = true;
            c.direct_setup();
        }
        // The caller's offer, for the outbound leg.
        let mut body = None;
        if let Some(offer) = c.a.nego_pending_remote() {
            // Codecs the caller's endpoint may use bound what the callee is offered too.
            let mut offer = offer;
            if !c.a.codecs.is_empty() {
                let allowed: Vec<&str> = c.a.codecs.iter().map(String::as_str).collect();
                if offer.filter_codecs(&allowed) == 0 {
                    self.end_call_with(now, ep, call, EndReason::Rejected(488), 488);
                    self.schedule(call);
                    return Ok(());
                }
            }
            match c.b.rewrite_owned(offer) {
                Some(sd) => {
                    body = Some(sd.to_bytes());
                    let _ = c.b.nego.local_offer(sd);
                }
                None => {
                    self.end_call_with(now, ep, call, EndReason::Rejected(488), 488);
                    self.schedule(call);
                    return Ok(());
                }
            }
        }
        let transport = target.flow.transport;
        let (host, port) = (host_of(cfg.advertise), port_for(&cfg, transport));
        let mut from_uri = SipUri::new(false, host.clone()).with_user(from_user.as_str());
        if port != transport.default_port() {
            from_uri = from_uri.with_port(port);
        }
        let mut from = NameAddr::new(Uri::Sip(from_uri));
        if let Some(dn) = from_display.as_deref() {
            from = from.with_display_name(dn);
        }
        let mut extra =
            vec![Header::new(HeaderName::Allow, cfg.allow_value.clone()), Header::new(HeaderName::UserAgent, cfg.user_agent_value.clone())];
        if let Some((se, _)) = c.a.session_asked {
            // The caller wants session timers: ask the callee too (it picks the refresher).
            extra.push(SessionExpires { interval: se.interval, refresher: None }.header());
            extra.push(Header::new(HeaderName::Supported, Bytes::from_static(b"timer")));
        }
        extra.extend(target.headers);
        c.nat = target.nat;
        let forking = !target.forks.is_empty();
        let mut b = sip_message::RequestBuilder::new(Method::Invite, target.uri.clone())
            .from(from)
            .via(transport.to_message(), host, Some(port))
            .max_forwards(mf)
            .contact(contact(&cfg, transport).clone());
        // Moved into the one INVITE unless further ones need them too.
        let (main_extra, main_body) = if forking { (extra.clone(), body.clone()) } else { (std::mem::take(&mut extra), body.take()) };
        for h in main_extra {
            b = b.header(h);
        }
        if let Some(body) = main_body {
            b = b.body("application/sdp", body);
        }
        let request = b.build(ep.ids()).map_err(|e| CallError::Send(e.to_string()))?;
        let key = (request.call_id().as_str().to_owned(), request.from().tag().unwrap_or_default().to_owned());
        // What the further branches share with the first INVITE.
        let shared = forking.then(|| (request.from().clone(), request.to().clone(), request.cseq().seq));
        // The request itself goes to the transaction layer, which keeps it while the
        // INVITE lives: `b_dialog` reads it from there, no copy is kept here.
        let btx = ep.send_request(now, request, target.flow).map_err(|e| CallError::Send(e.to_string()))?;
        c.txs.push(btx);
        self.txs.insert(btx, TxEntry { call, side: Side::B, usage: TxUse::Invite });
        if let Some((shared_from, shared_to, shared_seq)) = shared {
            // One INVITE per further contact, as a forking proxy's branches (§16.6): the
            // same Call-ID, From tag, To, CSeq and offer, its own Request-URI and branch.
            let mut forks = Forks::default();
            forks.branches.push(Branch { tx: btx, flow: target.flow, pin_flow: target.pin_flow[1], done: false, tags: Vec::new() });
            for fork in &target.forks {
                let t = fork.flow.transport;
                let mut fb = sip_message::RequestBuilder::new(Method::Invite, fork.uri.clone())
                    .from(shared_from.clone())
                    .to(shared_to.clone())
                    .call_id(key.0.as_str())
                    .cseq(shared_seq)
                    .via(t.to_message(), host_of(cfg.advertise), Some(port_for(&cfg, t)))
                    .max_forwards(mf)
                    .contact(contact(&cfg, t).clone());
                for h in &extra {
                    fb = fb.header(h.clone());
                }
                if let Some(body) = body.clone() {
                    fb = fb.body("application/sdp", body);
                }
                let sent = fb
                    .build(ep.ids())
                    .map_err(|e| e.to_string())
                    .and_then(|r| ep.send_request(now, r, fork.flow).map_err(|e| e.to_string()));
                match sent {
                    Ok(tx) => {
                        forks.branches.push(Branch { tx, flow: fork.flow, pin_flow: fork.pin_flow, done: false, tags: Vec::new() });
                        c.txs.push(tx);
                        self.txs.insert(tx, TxEntry { call, side: Side::B, usage: TxUse::Invite });
                    }
                    Err(e) => tracing::warn!(call = %call, uri = %fork.uri, error = %e, "cannot ring a contact"),
                }
            }
            tracing::debug!(call = %call, branches = forks.branches.len(), "forking");
            c.forks = Some(Box::new(forks));
        }
        c.call_ids[1] = key.0.clone();
        c.b.invite_tx = Some(btx);
        c.phase = Phase::Calling;
        c.no_answer_at = Some(now + target.no_answer.unwrap_or(cfg.no_answer));
        c.dialog_keys.push(key.clone());
        let a_remote = c.a.media_remote;
        self.call_ids.insert(key.0.clone(), call);
        self.dialogs.insert(key, (call, Side::B));
        self.events.push_back(CallEvent::Media { call, side: Side::A, remote: a_remote });
        self.schedule(call);
        Ok(())
    }

    /// Hangs a call up (API, media timeout): BYE to answered legs, CANCEL or a final
    /// response to the others.
    pub fn hang_up(&mut self, now: Time, ep: &mut Endpoint, call: CallId, reason: &str) -> Result<(), CallError> {
        let c = self.calls.get(&call).ok_or(CallError::NoCall)?;
        if c.phase == Phase::Ended {
            return Err(CallError::WrongState("ended"));
        }
        self.end_call(now, ep, call, EndReason::Command(reason.to_owned()));
        self.schedule(call);
        Ok(())
    }

    // ---- responses on the outbound INVITE ----------------------------------------------

    fn on_response(&mut self, now: Time, ep: &mut Endpoint, e: TxEntry, tx: TransactionId, response: Response) {
        match e.usage {
            TxUse::Invite if e.side == Side::B => self.on_b_invite_response(now, ep, e.call, tx, response),
            TxUse::ClientReinvite { peer } => self.on_reinvite_response(now, ep, e.call, e.side, tx, peer, response),
            TxUse::Forward { peer, update } => self.on_forward_response(now, ep, e.call, e.side, peer, update, response),
            TxUse::RefreshUpdate => self.on_refresh_update(now, ep, e.call, e.side, response.status()),
            TxUse::Media { update } => self.on_media_response(now, ep, e.call, e.side, tx, update, response),
            _ => {}
        }
    }

    fn on_b_invite_response(&mut self, now: Time, ep: &mut Endpoint, call: CallId, tx: TransactionId, response: Response) {
        let status = response.status();
        if status == 100 {
            return;
        }
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.b.invite_tx.is_none() {
            return;
        }
        if status < 200 {
            let Some(tag) = response.to().tag() else { return };
            if c.b.dialog.is_some() {
                // Another contact still ringing after the 2xx won (its CANCEL may wait for
                // this very 18x, §9.1): no early dialog for a call already answered.
                return;
            }
            let new = !c.b.early.iter().any(|d| d.remote_tag() == tag);
            if new {
                if let Some(d) = b_dialog(ep, c, tx, &response) {
                    // One early dialog is the rule (forking is rare): room for exactly one,
                    // not the four (2.5 KiB) a first push reserves.
                    c.b.early.reserve_exact(1);
                    c.b.early.push(d);
                }
                if let Some(b) = c.forks.as_mut().and_then(|f| f.branch_mut(tx)) {
                    b.tags.push(tag.to_owned());
                }
            }
            if c.phase != Phase::Calling {
                return;
            }
            // Several phones ringing: the caller hears each one's first 18x (and any
            // early media), not every repetition of every branch.
            if c.forks.is_some() && !new && !matches!(sdp_of(response.content_type(), response.body()), Some(Ok(_))) {
                return;
            }
            // 18x with SDP: the answer preview (early media) goes to the caller pointed at
            // our relay; offer/answer state changes only with the 2xx (no 100rel).
            let mut body = None;
            if let Some(Ok(sd)) = sdp_of(response.content_type(), response.body()) {
                if c.b.learn_remote(&sd) {
                    self.events.push_back(CallEvent::Media { call, side: Side::B, remote: c.b.media_remote });
                }
                body = c.a.rewrite(&sd).map(|s| s.to_bytes());
            }
            let reason = response.reason_str().into_owned();
            self.respond_a(now, ep, call, status, Some(&reason), body);
            self.events.push_back(CallEvent::Progress { call, status });
            return;
        }
        if status < 300 {
            self.on_b_2xx(now, ep, call, tx, response, &cfg);
            return;
        }
        let mapped = map_status(status);
        tracing::info!(call = %call, status, mapped, "outbound leg refused the call");
        self.on_b_failure(now, ep, call, tx, mapped);
    }

    /// The outbound INVITE `tx` ended without a 2xx (a final failure, already mapped for
    /// the caller, or a timeout or transport failure). With one contact the call fails;
    /// when forking it fails once every branch has failed, with the best answer (§16.7
    /// step 6), or at once on a 6xx, which also cancels the other branches.
    fn on_b_failure(&mut self, now: Time, ep: &mut Endpoint, call: CallId, tx: TransactionId, mapped: u16) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let status = match c.forks.as_mut() {
            None => {
                c.b.final_done = true;
                c.b.early = Vec::new();
                mapped
            }
            Some(f) => {
                let Some(b) = f.branch_mut(tx) else { return };
                if b.done {
                    return;
                }
                b.done = true;
                let tags = std::mem::take(&mut b.tags);
                c.b.early.retain(|d| !tags.iter().any(|t| t == d.remote_tag()));
                f.offer(mapped);
                if f.all_done() {
                    c.b.final_done = true;
                    c.b.early = Vec::new();
                } else if mapped < 600 || c.b.dialog.is_some() {
                    tracing::debug!(call = %call, mapped, "a contact refused the call; others still ring");
                    return;
                }
                f.best.unwrap_or(mapped)
            }
        };
        if c.phase != Phase::Calling || c.b.dialog.is_some() {
            return;
        }
        // A 6xx ends the call now; `end_call_with` cancels the branches still ringing.
        self.end_call_with(now, ep, call, EndReason::Rejected(status), status);
    }

    fn on_b_2xx(&mut self, now: Time, ep: &mut Endpoint, call: CallId, tx: TransactionId, response: Response, cfg: &Settings) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.b.invite_tx.is_none() {
            return;
        }
        let tag = response.to().tag().unwrap_or_default().to_owned();
        if let Some(b) = c.forks.as_mut().and_then(|f| f.branch_mut(tx)) {
            b.done = true;
        }
        if let Some(d) = &c.b.dialog {
            if d.remote_tag() == tag {
                // A retransmitted 2xx: the ACK again (§13.2.2.4), unless it waits for the
                // caller's answer.
                if let Some(a) = &c.last_ack[1] {
                    ep.send_stateless(a.flow, a.wire.clone());
                }
                return;
            }
            if let Some(f) = c.forks.as_deref_mut() {
                if let Some((_, wire, flow)) = f.killed.iter().find(|(t, _, _)| *t == tag) {
                    // A retransmitted 2xx of a branch that lost: the same ACK, no new BYE.
                    ep.send_stateless(*flow, wire.clone());
                    return;
                }
            }
            // Another fork (or contact) answered too: ACK it and hang it up (§13.2.2.4).
            if let Some(mut fork) = b_dialog(ep, c, tx, &response) {
                let ack = kill_fork(now, ep, cfg, &mut fork, response.cseq().seq);
                if let (Some(f), Some((wire, flow))) = (c.forks.as_deref_mut(), ack) {
                    f.killed.push((tag, wire, flow));
                }
            }
            return;
        }
        // The first 2xx: the outbound dialog, over the flow of the INVITE it answers.
        let mut dialog = match c.b.early.iter().position(|d| d.remote_tag() == tag) {
            Some(i) => c.b.early.swap_remove(i),
            None => match b_dialog(ep, c, tx, &response) {
                Some(d) => d,
                None => return,
            },
        };
        dialog.confirm(Some(&response));
        c.b.early = Vec::new();
        c.b.dialog = Some(dialog);
        c.b.final_done = true;
        (c.b.flow, c.b_pin_flow) = c.b_branch(tx);
        if let Some(f) = c.forks.as_deref() {
            // First 2xx wins (§16.7 step 10): the other contacts stop ringing. A 2xx that
            // crosses the CANCEL is ACKed and BYE'd above.
            for other in f.pending() {
                let _ = ep.cancel(now, other);
            }
        }
        c.b.peer_allows_update = allows_update(response.headers());
        if let Some(se) = SessionExpires::of(response.headers()) {
            // §7.2: we are the UAC of this leg; refresher=uac means us.
            c.b.session = Some(SessionTimer::start(now, se.interval.max(MIN_SE), se.refresher != Some(Refresher::Uas)));
        }
        // A 2xx carries its INVITE's CSeq (§8.2.6.2).
        let seq = response.cseq().seq;
        if c.phase != Phase::Calling {
            // Cancelled (or hung up) while the 2xx was on its way: ACK then BYE.
            send_ack(now, ep, cfg, c, Side::B, seq, None);
            if let Some(mut d) = c.b.dialog.take() {
                send_bye(now, ep, cfg, &mut d, &mut self.txs, call, Side::B, &mut c.txs);
                // Kept: a retransmission of this 2xx gets the same ACK, not a new BYE.
                c.b.dialog = Some(d);
            }
            c.b.gone = true;
            return;
        }
        // Our INVITE carried an offer exactly when it is still outstanding (`route`); an
        // offer-less INVITE gets the offer in this 2xx.
        let b_had_offer = c.b.nego.state() == sdp::NegotiationState::LocalOffer;
        let mut a_body = None;
        match sdp_of(response.content_type(), response.body()) {
            Some(Ok(sd)) => {
                if c.b.learn_remote(&sd) {
                    self.events.push_back(CallEvent::Media { call, side: Side::B, remote: c.b.media_remote });
                }
                if b_had_offer {
                    // The caller's leg is rewritten first so that the answer can be
                    // handed to the callee's negotiator without a copy (the two legs'
                    // steps are independent).
                    let rewritten = c.a.rewrite(&sd);
                    if let Err(e) = c.b.nego.remote_answer(sd) {
                        tracing::info!(call = %call, error = %e, "the outbound leg's answer does not match our offer");
                    }
                    a_body = rewritten.map(|out| match c.a.remote_offer.take() {
                        // Printed once: what the negotiator keeps is what is sent.
                        Some(t) => match c.a.nego.local_answer_printed(t, out) {
                            Ok(printed) => printed,
                            Err(refused) => refused.1.to_bytes(),
                        },
                        None => out.to_bytes(),
                    });
                    send_ack(now, ep, cfg, c, Side::B, seq, None);
                } else {
                    // Offer in the 2xx (offer-less INVITE, §13.2.1): the caller's answer
                    // comes in its ACK, and our ACK waits for it.
                    c.b.remote_offer = c.b.nego.remote_offer(sd.clone()).ok();
                    if let Some(out) = c.a.rewrite(&sd) {
                        let _ = c.a.nego.local_offer(out.clone());
                        a_body = Some(out.to_bytes());
                    }
                    c.b.ack_owed = Some(AckOwed { seq });
                }
            }
            _ => {
                if b_had_offer {
                    tracing::info!(call = %call, "the outbound leg's 2xx has no SDP answer");
                }
                send_ack(now, ep, cfg, c, Side::B, seq, None);
            }
        }
        if b_had_offer && a_body.is_none() {
            // No answer we can give the caller: end it cleanly.
            self.end_call_with(now, ep, call, EndReason::Rejected(488), 488);
            return;
        }
        c.phase = Phase::Answered;
        c.answered_at = Some(now);
        c.no_answer_at = None;
        if !cfg.max_duration.is_zero() {
            c.max_duration_at = Some(now + cfg.max_duration);
        }
        self.stats.answered += 1;
        let reason = response.reason_str().into_owned();
        self.respond_a(now, ep, call, response.status(), Some(&reason), a_body);
        self.events.push_back(CallEvent::Answered { call });
    }

    /// Sends a response to the caller's INVITE: our To tag, Contact, and for a 2xx the
    /// retransmission schedule until the ACK (§13.3.1.4).
    fn respond_a(&mut self, now: Time, ep: &mut Endpoint, call: CallId, status: u16, reason: Option<&str>, body: Option<Bytes>) {
        let cfg = &self.config;
        let Some(c) = self.calls.get_mut(&call) else { return };
        let (Some(_), Some(tx)) = (c.a.invite.as_ref(), c.a.invite_tx) else { return };
        if c.a.final_done {
            return;
        }
        let timer = c.a.session_asked.filter(|_| (200..300).contains(&status)).map(|(se, timer_supported)| {
            // §9: the caller refreshes when it said so or supports timers; else we do.
            let we_refresh = se.refresher == Some(Refresher::Uas) || !timer_supported;
            (SessionTimer::start(now, se.interval, we_refresh), we_refresh)
        });
        // The caller's INVITE as the transaction layer keeps it (the one the call was
        // created from). Without the transaction the response could not be sent: as when
        // sending it fails below, the timer is kept and nothing else changes.
        let Some(req) = ep.transaction_request(tx) else {
            if let Some((t, _)) = timer {
                c.a.session = Some(t);
            }
            return;
        };
        let seq = req.cseq().seq;
        let mut resp = match build_response(cfg, req, status, reason, &c.a.local_tag, body, c.a.flow.transport) {
            Some(r) => r,
            None => return,
        };
        if let Some((t, we_refresh)) = timer {
            let _ = resp.push_header(t.in_response().header());
            if !we_refresh {
                let _ = resp.push_header(Header::new(HeaderName::Require, Bytes::from_static(b"timer")));
            }
            c.a.session = Some(t);
        }
        if ep.respond_with(now, tx, &resp).is_err() {
            return;
        }
        if (200..300).contains(&status) {
            if let Some(d) = c.a.dialog.as_mut() {
                d.confirm(None);
            }
            c.a.pending_2xx = Some(pending(cfg, tx, resp, c.a.flow.transport.is_reliable(), seq, now));
        }
        if status >= 200 {
            c.a.final_done = true;
            // What routing needed of the caller's INVITE is not needed after its final.
            c.a.invite = None;
        }
    }

    // ---- the caller's ACK, CANCEL ------------------------------------------------------

    fn on_ack(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, request: &Request) {
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let leg = c.leg_mut(side);
        match &leg.pending_2xx {
            Some(p) if p.seq == request.cseq().seq => {}
            _ => return, // a retransmitted ACK, or one for a 2xx we no longer wait on
        }
        leg.pending_2xx = None;
        if leg.bye_after_ack {
            leg.bye_after_ack = false;
            if let Some(mut d) = leg.dialog.take() {
                send_bye(now, ep, &cfg, &mut d, &mut self.txs, call, side, &mut c.txs);
                c.leg_mut(side).dialog = Some(d);
            }
            c.leg_mut(side).gone = true;
            return;
        }
        // The ACK may carry the answer to the offer our 2xx made; the other leg's ACK waits
        // for it.
        let answer = match sdp_of(request.content_type(), request.body()) {
            Some(Ok(sd)) => Some(sd),
            _ => None,
        };
        let (this, other) = c.legs_mut(side);
        let mut other_body = None;
        if let Some(sd) = &answer {
            let _ = this.nego.remote_answer(sd.clone());
            if this.learn_remote(sd) {
                self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
            }
            if other.ack_owed.is_some() {
                if let Some(out) = other.rewrite(sd) {
                    if let Some(t) = other.remote_offer.take() {
                        let _ = other.nego.local_answer(t, out.clone());
                    }
                    other_body = Some(out.to_bytes());
                }
            }
        }
        if let Some(owed) = other.ack_owed.take() {
            if other_body.is_none() {
                tracing::info!(call = %call, "the ACK brought no SDP answer for the other leg");
            }
            send_ack(now, ep, &cfg, c, side.other(), owed.seq, other_body);
        }
    }

    fn on_cancelled(&mut self, now: Time, ep: &mut Endpoint, e: TxEntry, tx: TransactionId) {
        match e.usage {
            TxUse::Invite if e.side == Side::A => {
                let Some(c) = self.calls.get(&e.call) else { return };
                if c.a.final_done {
                    return;
                }
                self.end_call_with(now, ep, e.call, EndReason::Cancelled, 487);
            }
            TxUse::ServerReinvite { peer } => {
                // §9.2: the re-INVITE gets 487; its forward on the other leg is cancelled.
                let _ = ep.reply(now, tx, 487, Vec::new());
                if let Some(p) = peer {
                    let _ = ep.cancel(now, p);
                }
                if let Some(c) = self.calls.get_mut(&e.call) {
                    c.undefer(tx);
                    let l = c.leg_mut(e.side);
                    l.server_invite = None;
                    l.remote_offer = None;
                    l.nego.rollback();
                }
            }
            _ => {}
        }
    }

    fn on_failed(&mut self, now: Time, ep: &mut Endpoint, e: TxEntry, tx: TransactionId, reason: Failure) {
        let status = reason.status();
        match e.usage {
            TxUse::Invite if e.side == Side::B => {
                let mapped = match reason {
                    Failure::Cancelled => 487,
                    Failure::Transport => 503,
                    _ => 408,
                };
                tracing::info!(call = %e.call, ?reason, mapped, "no response from the outbound leg");
                self.on_b_failure(now, ep, e.call, tx, mapped);
            }
            TxUse::ClientReinvite { peer } => {
                if let Some(p) = peer {
                    let _ = ep.reply(now, p, 500, Vec::new());
                }
                if let Some(c) = self.calls.get_mut(&e.call) {
                    c.leg_mut(e.side).client_invite = None;
                    c.leg_mut(e.side.other()).server_invite = None;
                }
                self.critical(now, ep, e.call, e.side, Method::Invite, status);
            }
            TxUse::Forward { peer, update } => {
                let _ = ep.reply(now, peer, if status == 503 { 503 } else { 408 }, Vec::new());
                if let Some(c) = self.calls.get_mut(&e.call) {
                    if update {
                        c.leg_mut(e.side).client_update = None;
                        c.leg_mut(e.side).nego.rollback();
                        c.leg_mut(e.side.other()).nego.rollback();
                        c.leg_mut(e.side.other()).remote_offer = None;
                    }
                }
                if update {
                    self.critical(now, ep, e.call, e.side, Method::Update, status);
                }
            }
            TxUse::Bye => tracing::debug!(call = %e.call, side = %e.side, %tx, "no response to our BYE"),
            TxUse::RefreshUpdate => self.critical(now, ep, e.call, e.side, Method::Update, status),
            TxUse::Media { update } => self.on_media_failed(now, ep, e.call, e.side, update, status),
            _ => {}
        }
    }

    /// "No reply to critical request": the call is torn down on both legs.
    fn critical(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, method: Method, status: u16) {
        tracing::warn!(call = %call, %side, %method, status, "no reply to critical request {method}: hanging up both legs");
        self.end_call(now, ep, call, EndReason::NoReply { side, method, status });
    }

    // ---- requests inside a dialog ------------------------------------------------------

    fn in_dialog(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, tx: TransactionId, request: Request) {
        let Some(c) = self.calls.get_mut(&call) else {
            let _ = ep.reply(now, tx, 481, Vec::new());
            return;
        };
        c.txs.push(tx);
        let leg = c.leg_mut(side);
        let from_tag = request.from().tag().unwrap_or_default();
        let dialog = match leg.dialog.as_mut() {
            Some(d) if d.remote_tag() == from_tag => Some(d),
            _ => leg.early.iter_mut().find(|d| d.remote_tag() == from_tag),
        };
        let Some(dialog) = dialog else {
            let _ = ep.reply(now, tx, 481, Vec::new());
            return;
        };
        if leg.gone && !matches!(request.method(), Method::Bye) {
            let _ = ep.reply(now, tx, 481, Vec::new());
            return;
        }
        if dialog.receive_request(&request).is_err() {
            // §12.2.2: a CSeq lower than the last one.
            let _ = ep.reply(now, tx, 500, Vec::new());
            return;
        }
        match request.method() {
            Method::Bye => {
                let _ = ep.reply(now, tx, 200, Vec::new());
                let leg = c.leg_mut(side);
                leg.gone = true;
                leg.pending_2xx = None;
                if c.phase == Phase::Ended {
                    return;
                }
                tracing::info!(call = %call, %side, "BYE");
                self.end_call(now, ep, call, EndReason::HangUp(side));
            }
            Method::Invite => self.reinvite(now, ep, call, side, tx, request),
            Method::Update => self.forward(now, ep, call, side, tx, request, true),
            _ => self.forward(now, ep, call, side, tx, request, false),
        }
    }

    /// A re-INVITE from `side`: forwarded to the other leg with its SDP rewritten, unless
    /// it crosses an INVITE (§14.2: 491 when ours is pending, 500 with Retry-After when
    /// theirs is).
    fn reinvite(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, tx: TransactionId, request: Request) {
        let cfg = self.config.clone();
        let retry_after = self.rng.next_u64() % 10;
        let Some(c) = self.calls.get_mut(&call) else { return };
        self.txs.insert(tx, TxEntry { call, side, usage: TxUse::ServerReinvite { peer: None } });
        let phase = c.phase;
        if phase == Phase::Answered && c.defer_reinvite(side) {
            // The other leg is busy only with our own media-path request: the peer's
            // re-INVITE waits for it (§14.1 queueing) instead of a 491, so that two
            // servers moving media at once (`outgoing`) never glare.
            c.leg_mut(side).server_invite = Some(tx);
            c.defer(side, tx, request);
            return;
        }
        let (this, other) = c.legs_mut(side);
        if this.server_invite.is_some() {
            let _ = ep.reply(now, tx, 500, vec![Header::new(HeaderName::RetryAfter, Bytes::from(retry_after.to_string()))]);
            return;
        }
        // Ours is pending on this leg, or our 2xx still waits for its ACK (DIRECT_MEDIA:
        // a re-INVITE before the ACK of the initial 2xx gets 491), or the other leg is
        // busy with an INVITE of its own (§14.1 forbids starting one there).
        if this.client_invite.is_some()
            || this.pending_2xx.is_some()
            || phase != Phase::Answered
            || !other.usable()
            || other.invite_in_progress()
        {
            self.stats.glare_491_sent += 1;
            c.counters.glare_491_sent += 1;
            let _ = ep.reply(now, tx, 491, Vec::new());
            return;
        }
        let body = match offer_of(&request, this, other) {
            Ok(Some((out, moved))) => {
                if moved {
                    self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
                }
                Some(out)
            }
            Ok(None) => None,
            Err(status) => {
                self.stats.glare_491_sent += u64::from(status == 491);
                c.counters.glare_491_sent += u32::from(status == 491);
                let _ = ep.reply(now, tx, status, Vec::new());
                return;
            }
        };
        let Some(d) = other.dialog.as_mut() else { return };
        let transport = d.destination().transport;
        let mut b = d.request(Method::Invite, sent_by(&cfg, transport), contact(&cfg, transport));
        b = b.header(Header::new(HeaderName::Allow, cfg.allow_value.clone()));
        if let Some(body) = body {
            b = b.body("application/sdp", body);
        }
        let Ok(req) = b.build(ep.ids()) else { return };
        match ep.send_request(now, req, d.destination()) {
            Ok(ctx) => {
                other.client_invite = Some(ctx);
                this.server_invite = Some(tx);
                c.txs.push(ctx);
                self.txs.insert(ctx, TxEntry { call, side: side.other(), usage: TxUse::ClientReinvite { peer: Some(tx) } });
                self.txs.insert(tx, TxEntry { call, side, usage: TxUse::ServerReinvite { peer: Some(ctx) } });
            }
            Err(e) => {
                tracing::warn!(call = %call, error = %e, "cannot forward a re-INVITE");
                let _ = ep.reply(now, tx, 500, Vec::new());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_reinvite_response(
        &mut self,
        now: Time,
        ep: &mut Endpoint,
        call: CallId,
        side: Side,
        ctx: TransactionId,
        peer: Option<TransactionId>,
        response: Response,
    ) {
        let status = response.status();
        if status < 200 {
            return;
        }
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let seq = response.cseq().seq;
        if status < 300 && c.leg(side).client_invite != Some(ctx) {
            // A retransmitted 2xx: the ACK again.
            if let Some(a) = c.last_ack[side.index()].as_ref().filter(|a| a.seq == seq) {
                ep.send_stateless(a.flow, a.wire.clone());
            }
            return;
        }
        if peer.is_none() {
            // Our own session refresh: only this leg is involved.
            let this = c.leg_mut(side);
            this.client_invite = None;
            if status >= 300 {
                this.nego.rollback();
                if matches!(status, 408 | 481) {
                    self.critical(now, ep, call, side, Method::Invite, status);
                } else if let Some(t) = this.session.as_mut() {
                    // 491 or a passing failure: try again shortly (§14.1 spirit).
                    t.due_at = now + Duration::from_secs(2);
                }
                return;
            }
            if let Some(Ok(sd)) = sdp_of(response.content_type(), response.body()) {
                let _ = this.nego.remote_answer(sd.clone());
                if this.learn_remote(&sd) {
                    self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
                }
            } else {
                this.nego.rollback();
            }
            if let Some(t) = this.session.as_mut() {
                t.refreshed(now);
            }
            send_ack(now, ep, &cfg, c, side, seq, None);
            return;
        }
        let (this, other) = c.legs_mut(side);
        this.client_invite = None;
        other.server_invite = None;
        if status >= 300 {
            this.nego.rollback();
            other.nego.rollback();
            other.remote_offer = None;
            if let Some(p) = peer {
                let _ = ep.reply(now, p, map_status_in_dialog(status), Vec::new());
            }
            if matches!(status, 408 | 481) {
                self.critical(now, ep, call, side, Method::Invite, status);
            }
            return;
        }
        if let Some(d) = this.dialog.as_mut() {
            d.receive_refresh_response(&response);
        }
        for l in [&mut *this, &mut *other] {
            if let Some(t) = l.session.as_mut() {
                t.refreshed(now);
            }
        }
        let had_offer = this.nego.pending_offer().is_some();
        let mut out_body = None;
        let mut ack_now = true;
        if let Some(Ok(sd)) = sdp_of(response.content_type(), response.body()) {
            if this.learn_remote(&sd) {
                self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
            }
            if had_offer {
                let _ = this.nego.remote_answer(sd.clone());
                if let Some(out) = other.rewrite(&sd) {
                    if let Some(t) = other.remote_offer.take() {
                        let _ = other.nego.local_answer(t, out.clone());
                    }
                    out_body = Some(out.to_bytes());
                }
            } else {
                this.remote_offer = this.nego.remote_offer(sd.clone()).ok();
                if let Some(out) = other.rewrite(&sd) {
                    let _ = other.nego.local_offer(out.clone());
                    out_body = Some(out.to_bytes());
                }
                this.ack_owed = Some(AckOwed { seq });
                ack_now = false;
            }
        } else if had_offer {
            this.nego.rollback();
        }
        if ack_now {
            send_ack(now, ep, &cfg, c, side, seq, None);
        }
        let c = self.calls.get_mut(&call).expect("the call exists: looked up above");
        let other = c.leg_mut(side.other());
        let Some(p) = peer else { return };
        if let Some(req) = ep.transaction_request(p).cloned() {
            let tag = other.dialog.as_ref().map(|d| d.local_tag().to_owned()).unwrap_or_default();
            if let Some(mut resp) = build_response(&cfg, &req, status, None, &tag, out_body, other.flow.transport) {
                if let Some(t) = other.session.as_ref() {
                    let _ = resp.push_header(t.in_response().header());
                }
                if ep.respond_with(now, p, &resp).is_ok() {
                    other.pending_2xx = Some(pending(&cfg, p, resp, other.flow.transport.is_reliable(), req.cseq().seq, now));
                }
            }
        }
    }

    /// UPDATE (RFC 3311) and other requests inside a dialog (INFO, MESSAGE …): forwarded
    /// to the other leg, the answer mapped back.
    #[allow(clippy::too_many_arguments)]
    fn forward(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, tx: TransactionId, request: Request, update: bool) {
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let phase = c.phase;
        let (this, other) = c.legs_mut(side);
        if matches!(request.method(), Method::Options) {
            let _ = ep.reply(now, tx, 200, Vec::new());
            return;
        }
        if phase == Phase::Ended || !other.usable() {
            let _ = ep.reply(now, tx, if update { 500 } else { 481 }, Vec::new());
            return;
        }
        let mut body: Option<(String, Bytes)> = None;
        if update {
            // RFC 3311 §5.2: an offer while one of ours is pending gets 491.
            let busy = this.client_update.is_some() || other.client_update.is_some() || !other.nego_stable();
            if busy && matches!(sdp_of(request.content_type(), request.body()), Some(Ok(_))) {
                self.stats.glare_491_sent += 1;
                c.counters.glare_491_sent += 1;
                let _ = ep.reply(now, tx, 491, Vec::new());
                return;
            }
            match offer_of(&request, this, other) {
                Ok(Some((out, moved))) => {
                    if moved {
                        self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
                    }
                    body = Some(("application/sdp".into(), out));
                }
                Ok(None) => {}
                Err(status) => {
                    self.stats.glare_491_sent += u64::from(status == 491);
                    c.counters.glare_491_sent += u32::from(status == 491);
                    let _ = ep.reply(now, tx, status, Vec::new());
                    return;
                }
            }
        } else if !request.body().is_empty() {
            let ct =
                request.headers().get(HeaderName::ContentType).and_then(|h| h.value_str()).unwrap_or("application/octet-stream").to_owned();
            body = Some((ct, request.body().clone()));
        }
        let Some(d) = other.dialog.as_mut() else { return };
        let transport = d.destination().transport;
        let mut b = d.request(request.method().clone(), sent_by(&cfg, transport), contact(&cfg, transport));
        if let Some((ct, body)) = body {
            b = b.body(&ct, body);
        }
        let Ok(req) = b.build(ep.ids()) else { return };
        match ep.send_request(now, req, d.destination()) {
            Ok(ctx) => {
                if update && this.remote_offer.is_some() {
                    other.client_update = Some(ctx);
                }
                c.txs.push(ctx);
                self.txs.insert(ctx, TxEntry { call, side: side.other(), usage: TxUse::Forward { peer: tx, update } });
            }
            Err(e) => {
                tracing::warn!(call = %call, error = %e, "cannot forward a request");
                let _ = ep.reply(now, tx, 500, Vec::new());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_forward_response(
        &mut self,
        now: Time,
        ep: &mut Endpoint,
        call: CallId,
        side: Side,
        peer: TransactionId,
        update: bool,
        response: Response,
    ) {
        let status = response.status();
        if status < 200 {
            return;
        }
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let (this, other) = c.legs_mut(side);
        if update && (200..300).contains(&status) {
            for l in [&mut *this, &mut *other] {
                if let Some(t) = l.session.as_mut() {
                    t.refreshed(now);
                }
            }
        }
        let offered = update && this.client_update.take().is_some();
        let mut body: Option<(String, Bytes)> = None;
        if offered {
            if status < 300 {
                if let Some(Ok(sd)) = sdp_of(response.content_type(), response.body()) {
                    let _ = this.nego.remote_answer(sd.clone());
                    if this.learn_remote(&sd) {
                        self.events.push_back(CallEvent::Media { call, side, remote: this.media_remote });
                    }
                    if let Some(out) = other.rewrite(&sd) {
                        if let Some(t) = other.remote_offer.take() {
                            let _ = other.nego.local_answer(t, out.clone());
                        }
                        body = Some(("application/sdp".into(), out.to_bytes()));
                    }
                }
            } else {
                this.nego.rollback();
                other.nego.rollback();
                other.remote_offer = None;
            }
        } else if !response.body().is_empty() {
            let ct = response
                .headers()
                .get(HeaderName::ContentType)
                .and_then(|h| h.value_str())
                .unwrap_or("application/octet-stream")
                .to_owned();
            body = Some((ct, response.body().clone()));
        }
        if let Some(req) = ep.transaction_request(peer).cloned() {
            let mut b = req.reply(map_status_in_dialog(status)).header(Header::new(HeaderName::Server, cfg.user_agent_value.clone()));
            if let Some((ct, body)) = body {
                b = b.body(&ct, body);
            }
            if let Ok(resp) = b.build(ep.ids()) {
                let _ = ep.respond(now, peer, resp);
            }
        }
        if update && matches!(status, 408 | 481) {
            self.critical(now, ep, call, side, Method::Update, status);
        }
    }

    // ---- timers ------------------------------------------------------------------------

    /// Runs what is due: 2xx retransmissions and their 64·T1 limit, the ringing limit, the
    /// call-duration limit, and forgetting ended calls.
    pub fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        while let Some(Reverse((t, id))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            self.call_timeout(now, ep, id);
            self.settle_call(now, ep, id);
        }
    }

    fn call_timeout(&mut self, now: Time, ep: &mut Endpoint, id: CallId) {
        let t2 = self.config.timers.t2;
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.reap_at.is_some_and(|t| t <= now) {
            self.reap(id);
            return;
        }
        for ack in &mut c.last_ack {
            if ack.as_ref().is_some_and(|a| a.until <= now) {
                *ack = None;
            }
        }
        for side in [Side::A, Side::B] {
            let leg = c.leg_mut(side);
            let Some(p) = leg.pending_2xx.as_mut() else { continue };
            if p.give_up_at <= now {
                // §13.3.1.4: no ACK within 64·T1: the dialog ends with a BYE.
                leg.pending_2xx = None;
                leg.bye_after_ack = false;
                let ended = c.phase == Phase::Ended;
                if ended {
                    if let Some(mut d) = c.leg_mut(side).dialog.take() {
                        let cfg = self.config.clone();
                        send_bye(now, ep, &cfg, &mut d, &mut self.txs, id, side, &mut c.txs);
                    }
                    c.leg_mut(side).gone = true;
                } else {
                    self.critical(now, ep, id, side, Method::Ack, 408);
                }
                return;
            }
            if !p.reliable && p.next_at <= now {
                let _ = ep.respond_with(now, p.tx, &p.response);
                p.interval = (p.interval * 2).min(t2);
                p.next_at = now + p.interval;
            }
        }
        if c.phase != Phase::Ended {
            for side in [Side::A, Side::B] {
                let Some(t) = c.leg(side).session else { continue };
                if t.due_at > now {
                    continue;
                }
                if t.we_refresh {
                    self.send_refresh(now, ep, id, side);
                } else {
                    tracing::info!(call = %id, %side, "session timer expired: no refresh (RFC 4028 §10)");
                    self.end_call(now, ep, id, EndReason::SessionExpired(side));
                }
                return;
            }
        }
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.no_answer_at.is_some_and(|t| t <= now) {
            c.no_answer_at = None;
            if c.phase == Phase::Calling {
                tracing::info!(call = %id, "no answer");
                self.end_call_with(now, ep, id, EndReason::NoAnswer, 480);
            }
            return;
        }
        if c.max_duration_at.is_some_and(|t| t <= now) {
            c.max_duration_at = None;
            self.end_call(now, ep, id, EndReason::MaxDuration);
        }
    }

    /// Our session refresh on `side` (RFC 4028 §7.4, §9): UPDATE without SDP when the peer
    /// allows it, else a re-INVITE repeating our current SDP (same version: nothing
    /// changed). Postponed while an INVITE is in progress on the leg.
    fn send_refresh(&mut self, now: Time, ep: &mut Endpoint, id: CallId, side: Side) {
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&id) else { return };
        let leg = c.leg_mut(side);
        let busy = !leg.usable() || leg.invite_in_progress() || leg.client_update.is_some();
        let Some(timer) = leg.session.as_mut() else { return };
        if busy {
            timer.due_at = now + Duration::from_secs(2);
            return;
        }
        // Not again before this one is answered; a failure reschedules it.
        timer.due_at = now + timer.interval / 2;
        let se = timer.in_request();
        let use_update = leg.peer_allows_update;
        let offer = if use_update { None } else { leg.nego.local() };
        if let Some(o) = &offer {
            if leg.nego.local_offer(o.clone()).is_err() {
                return;
            }
        }
        let Some(d) = leg.dialog.as_mut() else { return };
        let dest = d.destination();
        let method = if use_update { Method::Update } else { Method::Invite };
        let mut b = d.request(method, sent_by(&cfg, dest.transport), contact(&cfg, dest.transport));
        b = b.header(se.header()).header(Header::new(HeaderName::Supported, Bytes::from_static(b"timer")));
        if let Some(o) = offer {
            b = b.body("application/sdp", o.to_bytes());
        }
        let Ok(req) = b.build(ep.ids()) else { return };
        match ep.send_request(now, req, dest) {
            Ok(tx) => {
                let usage = if use_update { TxUse::RefreshUpdate } else { TxUse::ClientReinvite { peer: None } };
                if !use_update {
                    c.leg_mut(side).client_invite = Some(tx);
                }
                c.txs.push(tx);
                self.txs.insert(tx, TxEntry { call: id, side, usage });
            }
            Err(e) => tracing::warn!(call = %id, error = %e, "cannot send a session refresh"),
        }
    }

    fn on_refresh_update(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, status: u16) {
        if status < 200 {
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        if (200..300).contains(&status) {
            if let Some(t) = c.leg_mut(side).session.as_mut() {
                t.refreshed(now);
            }
        } else if matches!(status, 408 | 481) {
            self.critical(now, ep, call, side, Method::Update, status);
        } else if let Some(t) = c.leg_mut(side).session.as_mut() {
            t.due_at = now + Duration::from_secs(2);
        }
    }

    fn reap(&mut self, id: CallId) {
        if let Some(c) = self.calls.remove(&id) {
            for tx in &c.txs {
                self.txs.remove(tx);
            }
            for k in &c.dialog_keys {
                self.dialogs.remove(k);
                self.call_ids.remove(&k.0);
            }
        }
    }

    // ---- ending a call -----------------------------------------------------------------

    fn end_call(&mut self, now: Time, ep: &mut Endpoint, id: CallId, reason: EndReason) {
        let status = match &reason {
            EndReason::NoAnswer => 480,
            EndReason::Cancelled => 487,
            EndReason::Rejected(s) => *s,
            _ => 500,
        };
        self.end_call_with(now, ep, id, reason, status);
    }

    /// Tears the call down (§15): a final `status` to an unanswered caller, CANCEL to a
    /// ringing outbound leg, BYE to answered legs (after the ACK on a leg whose 2xx is
    /// still unacknowledged), 487 to requests still pending.
    fn end_call_with(&mut self, now: Time, ep: &mut Endpoint, id: CallId, reason: EndReason, status: u16) {
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.phase == Phase::Ended {
            return;
        }
        match &reason {
            EndReason::Cancelled => self.stats.cancelled += 1,
            EndReason::NoReply { .. } => self.stats.no_reply += 1,
            EndReason::Rejected(_) | EndReason::NoAnswer if c.answered_at.is_none() => self.stats.failed += 1,
            _ if c.answered_at.is_some() => self.stats.completed += 1,
            _ => self.stats.failed += 1,
        }
        c.phase = Phase::Ended;
        c.reason = Some(reason.clone());
        c.no_answer_at = None;
        c.max_duration_at = None;
        // Long enough for a late 2xx after our CANCEL (64·T1) and its ACK/BYE.
        c.reap_at = Some(now + cfg.timers.t1 * 64 + Duration::from_secs(5));
        // Requests still pending get 487 (§15.1.2).
        for side in [Side::A, Side::B] {
            let leg = c.leg_mut(side);
            if let Some(stx) = leg.server_invite.take() {
                let _ = ep.reply(now, stx, 487, Vec::new());
            }
        }
        // The caller's leg.
        if !c.a.final_done {
            if let (Some(_), Some(tx)) = (c.a.invite.as_ref(), c.a.invite_tx) {
                // The caller's INVITE as the transaction layer keeps it (none: nothing
                // could be sent).
                let resp = ep
                    .transaction_request(tx)
                    .and_then(|req| build_response(&cfg, req, status, None, &c.a.local_tag, None, c.a.flow.transport));
                if let Some(resp) = resp {
                    let _ = ep.respond(now, tx, resp);
                }
            }
            c.a.final_done = true;
        } else if !c.a.gone {
            hang_up_leg(now, ep, &cfg, c, Side::A, &mut self.txs);
        }
        // The callee's leg: every contact still ringing is cancelled.
        if let Some(btx) = c.b.invite_tx {
            if !c.b.final_done {
                match c.forks.as_deref() {
                    Some(f) => {
                        for tx in f.pending() {
                            let _ = ep.cancel(now, tx);
                        }
                    }
                    None => {
                        let _ = ep.cancel(now, btx);
                    }
                }
            } else if !c.b.gone && c.b.dialog.is_some() {
                hang_up_leg(now, ep, &cfg, c, Side::B, &mut self.txs);
            }
        }
        // Nothing can still need the record (no INVITE of ours unanswered, no 2xx waiting
        // for its ACK): forget it soon. Late requests in its dialogs get 481, late
        // responses to our BYEs are dropped; a call record is about 10 KiB, and at 2000
        // calls/s holding each for 64·T1 would keep 74 000 of them.
        let quiet = !c.b_pending() && c.a.pending_2xx.is_none() && c.b.pending_2xx.is_none() && !c.a.bye_after_ack && !c.b.bye_after_ack;
        if quiet {
            c.reap_at = Some(now + Duration::from_secs(1));
        }
        tracing::info!(call = %id, %reason, "call ended");
        self.events.push_back(CallEvent::Ended { call: id, reason });
    }
}

impl Leg {
    fn nego_stable(&self) -> bool {
        self.nego.state() == sdp::NegotiationState::Stable
    }

    /// The caller's offer before it has been answered.
    fn nego_pending_remote(&self) -> Option<SessionDescription> {
        self.nego.pending_offer().cloned()
    }
}

/// The SDP offer `request` (a re-INVITE or UPDATE from `this` leg) carries, through
/// [`relay_offer`]: `Ok(None)` without SDP, `Err(status)` to answer it with (400 when the
/// SDP does not parse, 491, 488).
fn offer_of(request: &Request, this: &mut Leg, other: &mut Leg) -> Result<Option<(Bytes, bool)>, u16> {
    match sdp_of(request.content_type(), request.body()) {
        Some(Ok(sd)) => relay_offer(this, other, &sd).map(Some),
        Some(Err(())) => Err(400),
        None => Ok(None),
    }
}

/// An offer from `this` leg for the `other`: taken into this leg's offer/answer state
/// (491 when an offer is already pending, RFC 3264 §4 and RFC 3311 §5.2), rewritten for
/// the other leg (488 when no codec is left) and made the other leg's pending offer.
/// Returns the other leg's body and whether this leg's media address changed.
fn relay_offer(this: &mut Leg, other: &mut Leg, sd: &SessionDescription) -> Result<(Bytes, bool), u16> {
    let token = this.nego.remote_offer(sd.clone()).map_err(|_| 491u16)?;
    if !this.direct {
        this.peer_reinvited = true;
    }
    let Some(out) = other.rewrite(sd) else {
        this.nego.rollback();
        return Err(488);
    };
    this.remote_offer = Some(token);
    let moved = this.learn_remote(sd);
    let _ = other.nego.local_offer(out.clone());
    Ok((out.to_bytes(), moved))
}

fn hang_up_leg(now: Time, ep: &mut Endpoint, cfg: &Settings, c: &mut Call, side: Side, txs: &mut Map<TransactionId, TxEntry>) {
    let id = c.id;
    let leg = c.leg_mut(side);
    if leg.pending_2xx.is_some() {
        // §15: the callee must not BYE before the ACK (or 64·T1).
        leg.bye_after_ack = true;
        return;
    }
    if let Some(mut d) = leg.dialog.take() {
        send_bye(now, ep, cfg, &mut d, txs, id, side, &mut c.txs);
        c.leg_mut(side).dialog = Some(d);
    }
    c.leg_mut(side).gone = true;
}

#[allow(clippy::too_many_arguments)]
fn send_bye(
    now: Time,
    ep: &mut Endpoint,
    cfg: &Settings,
    d: &mut Dialog,
    txs: &mut Map<TransactionId, TxEntry>,
    call: CallId,
    side: Side,
    call_txs: &mut Vec<TransactionId>,
) {
    let dest = d.destination();
    let b = d.request(Method::Bye, sent_by(cfg, dest.transport), contact(cfg, dest.transport));
    let b = b.header(Header::new(HeaderName::UserAgent, cfg.user_agent_value.clone()));
    let Ok(req) = b.build(ep.ids()) else { return };
    if let Ok(tx) = ep.send_request(now, req, dest) {
        txs.insert(tx, TxEntry { call, side, usage: TxUse::Bye });
        call_txs.push(tx);
    }
}

/// ACKs a 2xx on `side` (§13.2.2.4) and remembers the ACK for 2xx retransmissions.
fn send_ack(now: Time, ep: &mut Endpoint, cfg: &Settings, c: &mut Call, side: Side, seq: u32, body: Option<Bytes>) {
    let Some(d) = c.leg(side).dialog.as_ref() else { return };
    let dest = d.destination();
    let Some(ack) = d.ack(seq, sent_by(cfg, dest.transport), body, ep.ids()) else { return };
    let wire = ack.to_bytes();
    ep.send_stateless(dest, wire.clone());
    let until = now + cfg.timers.t1 * 64;
    c.last_ack[side.index()] = Some(Box::new(LastAck { seq, wire, flow: dest, until }));
}

/// An ACK we sent for a 2xx, kept to answer that 2xx's retransmissions with it.
#[derive(Debug)]
struct LastAck {
    /// The CSeq number of the INVITE it acknowledges.
    seq: u32,
    wire: Bytes,
    flow: Flow,
    /// When it is forgotten: 64·T1 after it was sent, when the peer has stopped
    /// retransmitting its 2xx (§13.3.1.4) and the transaction is over (§13.2.2.4).
    /// Kept for the call's life it was about 440 B of every established call.
    until: Time,
}

/// A second 2xx from another fork: ACK it, then BYE it (§13.2.2.4). Returns the ACK and
/// where it went.
fn kill_fork(now: Time, ep: &mut Endpoint, cfg: &Settings, fork: &mut Dialog, seq: u32) -> Option<(Bytes, Flow)> {
    let dest = fork.destination();
    let ack = fork.ack(seq, sent_by(cfg, dest.transport), None, ep.ids()).map(|a| a.to_bytes());
    if let Some(wire) = &ack {
        ep.send_stateless(dest, wire.clone());
    }
    let b = fork.request(Method::Bye, sent_by(cfg, dest.transport), contact(cfg, dest.transport));
    if let Ok(req) = b.build(ep.ids()) {
        let _ = ep.send_request(now, req, dest);
    }
    ack.map(|w| (w, dest))
}

/// The outbound dialog (early or confirmed) a response to the INVITE `tx` creates
/// (§12.1.2), over the flow that INVITE went over and pinned as its contact asked.
fn b_dialog(ep: &Endpoint, c: &Call, tx: TransactionId, response: &Response) -> Option<Dialog> {
    let (flow, pin) = c.b_branch(tx);
    // Each branch's INVITE differs only in its Request-URI and Via: the URI is the remote
    // target when the response has no Contact. The transaction layer keeps each one while
    // its transaction lives, which covers every 1xx and 2xx it passes up (RFC 6026
    // Accepted); its Via may have been switched to TCP, which no dialog reads.
    let request = ep.transaction_request(tx)?;
    let mut d = Dialog::uac(request, response, flow)?;
    d.pin_flow(pin);
    Some(d)
}

fn pending(cfg: &Settings, tx: TransactionId, response: Response, reliable: bool, seq: u32, now: Time) -> Box<Pending2xx> {
    Box::new(Pending2xx {
        tx,
        response,
        reliable,
        next_at: now + cfg.timers.t1,
        interval: cfg.timers.t1,
        give_up_at: now + cfg.timers.t1 * 64,
        seq,
    })
}

fn build_response(
    cfg: &Settings,
    req: &Request,
    status: u16,
    reason: Option<&str>,
    tag: &str,
    body: Option<Bytes>,
    transport: Transport,
) -> Option<Response> {
    let mut b = req.reply(status).to_tag(tag);
    if let Some(r) = reason.filter(|r| !r.is_empty() && *r != reason_phrase(status)) {
        b = b.reason(r);
    }
    if status > 100 && status < 300 {
        b = b.header(Header::new(HeaderName::Contact, contact_bytes(cfg, transport)));
    }
    if (200..300).contains(&status) {
        b = b.header(Header::new(HeaderName::Allow, cfg.allow_value.clone()));
    }
    b = b.header(Header::new(HeaderName::Server, cfg.user_agent_value.clone()));
    if let Some(body) = body {
        b = b.body("application/sdp", body);
    }
    b.build(&mut sip_message::SeededIds::new(0)).ok()
}

fn host_of(ip: IpAddr) -> Host {
    match ip {
        IpAddr::V4(v) => Host::Ipv4(v),
        IpAddr::V6(v) => Host::Ipv6(v),
    }
}

fn port_for(cfg: &B2buaConfig, t: Transport) -> u16 {
    cfg.ports.iter().find(|(x, _)| *x == t).map_or(t.default_port(), |(_, p)| *p)
}

fn sent_by(cfg: &B2buaConfig, t: Transport) -> (Transport, Host, u16) {
    (t, host_of(cfg.advertise), port_for(cfg, t))
}

/// Our Contact for a leg over `t`: the user part is not an AOR, just our name.
fn make_contact(cfg: &B2buaConfig, t: Transport) -> NameAddr {
    let mut u = SipUri::new(t == Transport::Tls, host_of(cfg.advertise)).with_user("sipbridge").with_port(port_for(cfg, t));
    if t == Transport::Tcp {
        u = u.with_param("transport", Some("tcp"));
    }
    NameAddr::new(Uri::Sip(u))
}

/// Our Contact for a leg over `t` ([`make_contact`], made once).
fn contact(cfg: &Settings, t: Transport) -> &NameAddr {
    &cfg.contacts[transport_index(t)].0
}

/// [`contact`] printed.
fn contact_bytes(cfg: &Settings, t: Transport) -> Bytes {
    cfg.contacts[transport_index(t)].1.clone()
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

/// The configuration, and what the call layer prints from it into every call, printed
/// once: header values and our Contact per transport (each was an allocation and a copy,
/// or a URI built and printed, per message).
#[derive(Debug)]
pub(crate) struct Settings {
    config: B2buaConfig,
    /// The `Allow` value.
    allow_value: Bytes,
    /// The `User-Agent` / `Server` value.
    user_agent_value: Bytes,
    /// [`make_contact`] and its printed form, per transport ([`transport_index`]).
    contacts: [(NameAddr, Bytes); 3],
}

impl Settings {
    fn new(config: B2buaConfig) -> Settings {
        let contacts = [Transport::Udp, Transport::Tcp, Transport::Tls].map(|t| {
            let c = make_contact(&config, t);
            let b = c.to_bytes();
            (c, b)
        });
        Settings {
            allow_value: Bytes::from(config.allow.clone()),
            user_agent_value: Bytes::from(config.user_agent.clone()),
            contacts,
            config,
        }
    }
}

impl std::ops::Deref for Settings {
    type Target = B2buaConfig;
    fn deref(&self) -> &B2buaConfig {
        &self.config
    }
}

fn allows_update(h: &sip_message::Headers) -> bool {
    h.values(HeaderName::Allow).any(|v| v.split(|&b| b == b',').any(|m| m.trim_ascii().eq_ignore_ascii_case(b"UPDATE")))
}

/// The status the caller gets for the outbound leg's final failure. Most pass through;
/// those that describe our request to the callee, not the caller's, become 500; a
/// challenge we cannot answer becomes 403; a redirect we do not follow becomes 480;
/// 503 becomes 500 (RFC 3261 §16.7's rule: the callee's overload is not ours).
pub fn map_status(status: u16) -> u16 {
    match status {
        300..=399 => 480,
        401 | 407 => 403,
        415 | 416 | 420 | 421 | 422 | 423 | 481 | 491 | 493 => 500,
        503 => 500,
        s if (400..700).contains(&s) && reason_phrase(s) != "Unknown" => s,
        s => s / 100 * 100,
    }
}

/// The status for a failed in-dialog request mapped to the other leg: 491 and 488 pass
/// through (the requester retries or keeps its session), the rest as [`map_status`],
/// except 481/408 which end the call and are answered 481 / 408.
pub fn map_status_in_dialog(status: u16) -> u16 {
    match status {
        200..=299 | 491 | 488 | 481 | 408 => status,
        s => map_status(s),
    }
}

fn info(c: &Call) -> CallInfo {
    CallInfo {
        id: c.id,
        phase: c.phase,
        from: c.from.clone(),
        to: c.to.clone(),
        call_ids: c.call_ids.clone(),
        media: [(c.a.media_local, c.a.media_remote), (c.b.media_local, c.b.media_remote)],
        created_at: c.created_at,
        answered_at: c.answered_at,
        reason: c.reason.clone(),
        nat: c.nat,
        media_path: c.media.as_deref().map_or(MediaPath::Relayed, |m| m.path()),
        counters: c.counters,
        media_history: c.media.as_deref().map(|m| m.history.clone()).unwrap_or_default(),
    }
}
