//! The engine-task half of the API: per-call SIP ladders and the answers to
//! [`ApiCommand`]s.
//!
//! Ladders: the driver shows every message to `Application::on_wire`; [`ApiState::on_wire`]
//! takes its Call-ID and first line (a scan of the header lines, no parse) and files it
//! under the call whose leg has that Call-ID. The call layer knows a Call-ID only once it
//! has handled the INVITE, which happens after the driver showed it, so a message whose
//! Call-ID is unknown waits in a short queue; [`ApiState::settle`], run after every event,
//! command and timer, files it or forgets it (OPTIONS, REGISTER …). What each Call-ID
//! turned out to be is cached, so the call layer's linear search runs once per Call-ID.
//! Ladders and cache entries of calls the call layer has forgotten are swept as new calls
//! come.

use super::metrics::{AuthCounters, Metrics};
use super::ApiCommand;
use crate::calls::{Calls, LegCounters, MediaBackend};
use crate::config::{self, Config, EndpointHost};
use serde::Serialize;
use sip_core::b2bua::{B2bua, CallId, CallInfo, MediaPath, Phase};
use sip_core::{Endpoint, Flow, Time};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Messages kept per call: the first [`LADDER_HEAD`] and the last `LADDER_CAP -
/// LADDER_HEAD` (set-up and tear-down are what one looks at); the count in between is
/// reported as `ladder_omitted`.
pub const LADDER_CAP: usize = 500;
const LADDER_HEAD: usize = 250;
/// Messages waiting for their Call-ID to be known; older ones are dropped.
const PENDING_CAP: usize = 256;
/// Cached Call-IDs of non-call messages (OPTIONS, REGISTER …) before they are forgotten.
const NEGATIVE_CAP: usize = 4096;
/// Forgotten calls tolerated before their ladders are swept.
const SWEEP_SLACK: usize = 32;
/// Ended calls kept for `GET /api/calls/{id}` (with their ladders) after the call layer
/// has forgotten them: the last this many.
pub const RECENT_CALLS: usize = 1000;
/// First lines longer than this are cut (a first line is a method, a URI and a version).
const FIRST_LINE_MAX: usize = 256;
/// Messages of a plain call: INVITE, 100, 180, 200, ACK, BYE, 200 on each leg.
const TYPICAL_CALL: usize = 14;

/// What the media path of every call is in this build, and why.
/// The reason before the policy has decided anything for a call.
const MEDIA_REASON: &str = "relayed: the call is not answered yet";

/// The API's word for a media path.
fn path_word(p: MediaPath) -> &'static str {
    match p {
        MediaPath::Relayed => "relayed",
        MediaPath::Moving => "moving",
        MediaPath::Direct => "direct",
    }
}

/// Decisions kept per call at most (the oldest go first).
const REASON_LOG: usize = 16;

/// One message of a ladder, as kept.
#[derive(Debug, Clone)]
struct Wire {
    at: Time,
    outbound: bool,
    /// The flow's transport and peer (our own address is not shown): a ladder entry is
    /// kept for the call's whole life, ten or more per call.
    transport: sip_core::Transport,
    remote: SocketAddr,
    first_line: Box<str>,
}

/// What a Call-ID turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Leg `leg` (0 = inbound A, 1 = outbound B) of `call`.
    Leg { call: CallId, leg: usize },
    /// Not a call's (OPTIONS, REGISTER, a stray response).
    NotACall,
}

#[derive(Debug, Default)]
struct Ladder {
    head: Vec<(usize, Wire)>,
    tail: VecDeque<(usize, Wire)>,
    omitted: u64,
    /// Each leg's peer: where the A leg's first request came from, where the B leg's first
    /// request went. Names the endpoint when [`ApiState::set_leg_endpoints`] did not.
    peers: [Option<SocketAddr>; 2],
}

impl Ladder {
    fn push(&mut self, leg: usize, w: Wire) {
        let first_of_leg = (leg == 0 && !w.outbound) || (leg == 1 && w.outbound);
        if first_of_leg && self.peers[leg].is_none() {
            self.peers[leg] = Some(w.remote);
        }
        if self.head.len() < LADDER_HEAD {
            if self.head.capacity() == 0 {
                // A plain call's set-up and tear-down, both legs, without regrowing.
                self.head.reserve_exact(TYPICAL_CALL);
            }
            self.head.push((leg, w));
            return;
        }
        if self.tail.len() == LADDER_CAP - LADDER_HEAD {
            self.tail.pop_front();
            self.omitted += 1;
        }
        self.tail.push_back((leg, w));
    }
}

/// The engine-task state of the API (see the module docs).
#[derive(Debug)]
pub struct ApiState {
    /// Wall-clock time of the driver's `Time` origin.
    origin: SystemTime,
    endpoints: Vec<EndpointView>,
    /// Static endpoint addresses, to name a leg's endpoint by its peer.
    hosts: Vec<(SocketAddr, String)>,
    ladders: HashMap<CallId, Ladder>,
    /// Ended calls, newest last, for post-mortems.
    recent: VecDeque<CallInfo>,
    known: HashMap<String, Known>,
    negatives: usize,
    pending: VecDeque<(String, Wire)>,
    names: HashMap<CallId, [String; 2]>,
    /// Each call's media-path decisions in words, with when, oldest first.
    reasons: HashMap<CallId, Vec<(Time, String)>>,
}

impl ApiState {
    /// The API state for `config`. `origin` is the wall-clock time of the driver's
    /// `Time::ZERO` (taken just before the driver starts).
    pub fn new(config: &Config, origin: SystemTime) -> ApiState {
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| EndpointView {
                name: e.name.clone(),
                host: e.host.to_string(),
                state: "unknown".into(),
                rtt_ms: None,
                registrations: Vec::new(),
            })
            .collect();
        let hosts = config
            .endpoints
            .iter()
            .filter_map(|e| match &e.host {
                EndpointHost::Static(hp) => match hp.host {
                    config::Host::Ip(ip) => {
                        let default = if e.transport == config::Transport::Tls { 5061 } else { 5060 };
                        Some((SocketAddr::new(ip, hp.port.unwrap_or(default)), e.name.clone()))
                    }
                    config::Host::Name(_) => None,
                },
                EndpointHost::Dynamic => None,
            })
            .collect();
        ApiState {
            origin,
            endpoints,
            hosts,
            ladders: HashMap::new(),
            recent: VecDeque::new(),
            known: HashMap::new(),
            negatives: 0,
            pending: VecDeque::new(),
            names: HashMap::new(),
            reasons: HashMap::new(),
        }
    }

    /// Records the endpoint names of a call's legs (inbound, outbound), for the call
    /// layer to call when it routes a call. Without it, a leg's endpoint is found by its
    /// peer address among the static `host`s, or left `""`.
    pub fn set_leg_endpoints(&mut self, call: CallId, names: [String; 2]) {
        self.names.insert(call, names);
    }

    /// Records a call's new media-path decision (its words) at `now`.
    pub fn set_media_reason(&mut self, call: CallId, now: Time, words: String) {
        let log = self.reasons.entry(call).or_default();
        if log.len() == REASON_LOG {
            log.remove(0);
        }
        log.push((now, words));
    }

    /// The decision in force at `t` (the latest not after it).
    fn reason_at(&self, call: CallId, t: Time) -> String {
        let log = self.reasons.get(&call).map_or(&[][..], Vec::as_slice);
        log.iter().rev().find(|(at, _)| *at <= t).or(log.first()).map_or_else(|| MEDIA_REASON.to_owned(), |(_, w)| w.clone())
    }

    /// One message on the wire (`Application::on_wire`).
    pub fn on_wire(&mut self, b2bua: &B2bua, now: Time, outbound: bool, flow: &Flow, bytes: &[u8]) {
        let Some(call_id) = find_call_id(bytes) else { return };
        let wire = Wire { at: now, outbound, transport: flow.transport, remote: flow.remote, first_line: first_line(bytes).into() };
        match self.known.get(call_id) {
            Some(&Known::Leg { call, leg }) => self.file(call, leg, wire),
            Some(Known::NotACall) => {}
            None => {
                if self.pending.len() == PENDING_CAP {
                    self.pending.pop_front();
                }
                self.pending.push_back((call_id.to_owned(), wire));
                self.resolve(b2bua, false);
            }
        }
    }

    /// A call has ended: keep its summary (and so its ladder) among the recent ones.
    pub fn remember_ended(&mut self, info: CallInfo) {
        if self.recent.len() == RECENT_CALLS {
            self.recent.pop_front();
        }
        self.recent.push_back(info);
    }

    /// Files or forgets the messages waiting for their Call-ID (run after every event,
    /// command and timer: by then the call layer has seen what the driver showed).
    pub fn settle(&mut self, b2bua: &B2bua) {
        if !self.pending.is_empty() {
            self.resolve(b2bua, true);
        }
    }

    /// Files what waits and belongs to a call; with `final_`, forgets the rest.
    fn resolve(&mut self, b2bua: &B2bua, final_: bool) {
        let mut keep = VecDeque::new();
        // Call-IDs the call layer did not know in this pass: its search is linear, ask once.
        let mut missed: Vec<String> = Vec::new();
        while let Some((call_id, wire)) = self.pending.pop_front() {
            let lookup = || if missed.contains(&call_id) { None } else { b2bua.call_for_call_id(&call_id) };
            let known = match self.known.get(&call_id) {
                Some(k) => Some(*k),
                None => match lookup() {
                    Some(call) => {
                        let leg = b2bua.call(call).map_or(0, |i| usize::from(i.call_ids[1] == call_id));
                        let k = Known::Leg { call, leg };
                        self.new_call_id(b2bua);
                        self.known.insert(call_id.clone(), k);
                        Some(k)
                    }
                    None if final_ => {
                        self.negatives += 1;
                        if self.negatives > NEGATIVE_CAP {
                            self.known.retain(|_, k| *k != Known::NotACall);
                            self.negatives = 1;
                        }
                        self.known.insert(call_id.clone(), Known::NotACall);
                        Some(Known::NotACall)
                    }
                    None => {
                        missed.push(call_id.clone());
                        None
                    }
                },
            };
            match known {
                Some(Known::Leg { call, leg }) => self.file(call, leg, wire),
                Some(Known::NotACall) => {}
                None => keep.push_back((call_id, wire)),
            }
        }
        self.pending = keep;
    }

    fn file(&mut self, call: CallId, leg: usize, wire: Wire) {
        self.ladders.entry(call).or_default().push(leg, wire);
    }

    /// A new Call-ID of a call: sweep what belongs to calls the call layer forgot, when
    /// there are enough of them.
    fn new_call_id(&mut self, b2bua: &B2bua) {
        if self.ladders.len() <= b2bua.call_count() + self.recent.len() + SWEEP_SLACK {
            return;
        }
        let recent = &self.recent;
        self.ladders.retain(|id, _| b2bua.call(*id).is_some() || recent.iter().any(|c| c.id == *id));
        let ladders = &self.ladders;
        self.known.retain(|_, k| match k {
            Known::Leg { call, .. } => ladders.contains_key(call),
            Known::NotACall => true,
        });
        self.names.retain(|id, _| ladders.contains_key(id));
        self.reasons.retain(|id, _| ladders.contains_key(id));
    }

    /// Answers one command from the HTTP API. A hang-up goes through the call layer's
    /// `hang_up`, then `drain` (for the relay ports and the call's end).
    pub fn on_command<M: MediaBackend>(&mut self, now: Time, endpoint: &mut Endpoint, calls: &mut Calls<M>, command: ApiCommand) {
        // A receiver that gave up (timeout, client gone) is not our problem.
        match command {
            ApiCommand::Calls(tx) => {
                let _ = tx.send(calls.b2bua.calls().iter().map(|c| self.view(now, c, calls.media().leg_stats(c.id))).collect());
            }
            ApiCommand::Call(id, tx) => {
                let info = calls.b2bua.call(id).or_else(|| self.recent.iter().find(|c| c.id == id).cloned());
                let _ = tx.send(info.map(|c| self.detail(now, &c, calls.media().leg_stats(id))));
            }
            ApiCommand::HangUp(id, tx) => {
                let mut r = calls.b2bua.hang_up(now, endpoint, id, "hung up through the HTTP API");
                if r == Err(sip_core::b2bua::CallError::NoCall) && self.recent.iter().any(|c| c.id == id) {
                    r = Err(sip_core::b2bua::CallError::WrongState("ended"));
                }
                calls.drain(now, endpoint);
                let _ = tx.send(r);
            }
            ApiCommand::Endpoints(tx) => {
                let _ = tx.send(self.endpoint_views(now, calls));
            }
            ApiCommand::Record(id, tx) => {
                let r = calls.start_recording(now, id).map(|f| f.iter().map(|p| p.display().to_string()).collect());
                let _ = tx.send(r);
            }
            ApiCommand::StopRecord(id, tx) => {
                let _ = tx.send(calls.stop_recording(now, id));
            }
            ApiCommand::Bans(tx) => {
                let bans = calls.access.guard.bans(now);
                let _ = tx.send(bans.into_iter().map(|b| BanView { source: b.source.to_string(), until: self.wall(b.until) }).collect());
            }
            ApiCommand::Metrics(tx) => {
                let s = endpoint.stats();
                let b = &calls.b2bua;
                let _ = tx.send(Metrics {
                    calls_active: b.active_calls() as u64,
                    calls: b.stats(),
                    calls_refused: calls.refused,
                    transactions: endpoint.transaction_count() as u64,
                    received: s.received,
                    retransmissions_absorbed: s.retransmissions_absorbed,
                    parse_errors: s.parse_errors,
                    responses_dropped: s.responses_dropped,
                    relay: calls.media().totals(),
                    auth: AuthCounters {
                        authenticated: calls.access.authenticated,
                        failures: calls.access.guard.failures,
                        throttled: calls.access.guard.throttled,
                        refused: calls.access.guard.refused,
                        bans: calls.access.guard.bans,
                        banned_now: calls.access.guard.bans(now).len() as u64,
                    },
                    registrations: calls.registrar.len() as u64,
                    media_paths: {
                        let mut n = [0u64; 3];
                        for c in calls.b2bua.calls().iter().filter(|c| c.phase != Phase::Ended) {
                            n[match c.media_path {
                                MediaPath::Relayed => 0,
                                MediaPath::Moving => 1,
                                MediaPath::Direct => 2,
                            }] += 1;
                        }
                        n
                    },
                    blocked: calls.direct_stats.blocked.iter().map(|(l, n)| (*l, *n)).collect(),
                    endpoints: {
                        let mut n = [0u64; 4];
                        for (_, st, _) in calls.qualify.iter() {
                            n[match st {
                                sip_core::qualify::State::Reachable => 0,
                                sip_core::qualify::State::Lagged => 1,
                                sip_core::qualify::State::Unreachable => 2,
                                sip_core::qualify::State::Unknown => 3,
                            }] += 1;
                        }
                        n
                    },
                });
            }
        }
        self.settle(&calls.b2bua);
    }

    fn wall(&self, t: Time) -> String {
        rfc3339(self.origin + t.since_origin())
    }

    /// Every endpoint with its registrations as they are now.
    fn endpoint_views<M: MediaBackend>(&self, _now: Time, calls: &Calls<M>) -> Vec<EndpointView> {
        let mut views = self.endpoints.clone();
        for v in &mut views {
            if let Some((state, rtt)) = calls.qualify.state(&v.name) {
                v.state = state.as_str().to_owned();
                v.rtt_ms = rtt.map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
            }
            v.registrations = calls
                .registrar
                .bindings(&v.name)
                .iter()
                .map(|b| RegistrationView {
                    contact: b.contact.uri().to_string(),
                    expires_at: self.wall(b.expires_at),
                    source: format!("{}:{}", b.source.transport.to_message().as_str().to_ascii_lowercase(), b.source.remote),
                    target: b.target.to_string(),
                    nat: b.nat.map(|n| n.to_string()),
                    user_agent: b.user_agent.clone(),
                })
                .collect();
        }
        views
    }

    fn endpoint_name(&self, call: CallId, leg: usize) -> String {
        if let Some(n) = self.names.get(&call) {
            return n[leg].clone();
        }
        let Some(peer) = self.ladders.get(&call).and_then(|l| l.peers[leg]) else { return String::new() };
        let exact = self.hosts.iter().find(|(a, _)| *a == peer);
        let mut by_ip = self.hosts.iter().filter(|(a, _)| a.ip() == peer.ip());
        let unique_ip = match (by_ip.next(), by_ip.next()) {
            (Some(h), None) => Some(h),
            _ => None,
        };
        exact.or(unique_ip).map(|(_, n)| n.clone()).unwrap_or_default()
    }

    fn view(&self, now: Time, c: &CallInfo, stats: Option<[LegCounters; 2]>) -> CallView {
        let leg = |i: usize| LegView {
            endpoint: self.endpoint_name(c.id, i),
            call_id: c.call_ids[i].clone(),
            nat: c.nat[i].map(|n| n.to_string()),
            media: MediaView { local: c.media[i].0.to_string(), remote: c.media[i].1.map(|a| a.to_string()), stats: stats.map(|s| s[i]) },
        };
        CallView {
            id: c.id.0,
            from: c.from.clone(),
            to: c.to.clone(),
            state: phase(c.phase),
            legs: [leg(0), leg(1)],
            media_path: path_word(c.media_path),
            media_reason: self.reasons.get(&c.id).and_then(|l| l.last()).map_or_else(|| MEDIA_REASON.to_owned(), |(_, w)| w.clone()),
            reinvites_sent: c.counters.reinvites_sent,
            glare_491_sent: c.counters.glare_491_sent,
            glare_491_received: c.counters.glare_491_received,
            direct_after_ms: c
                .media_history
                .iter()
                .find(|(_, p)| *p == MediaPath::Direct)
                .zip(c.answered_at)
                .map(|((t, _), a)| u64::try_from((*t - a).as_millis()).unwrap_or(u64::MAX)),
            started_at: self.wall(c.created_at),
            answered_at: c.answered_at.map(|t| self.wall(t)),
            age_s: now.since_origin().saturating_sub(c.created_at.since_origin()).as_secs(),
            end_reason: c.reason.as_ref().map(ToString::to_string),
        }
    }

    fn detail(&self, now: Time, c: &CallInfo, stats: Option<[LegCounters; 2]>) -> CallDetail {
        let (ladder, omitted) = match self.ladders.get(&c.id) {
            Some(l) => (l.head.iter().chain(l.tail.iter()).map(|(leg, w)| self.entry(*leg, w)).collect(), l.omitted),
            None => (Vec::new(), 0),
        };
        CallDetail { call: self.view(now, c, stats), ladder, ladder_omitted: omitted, media_history: self.history(c) }
    }

    /// The media path from the start, each change with the decision in force then, and
    /// each new decision that did not move the media.
    fn history(&self, c: &CallInfo) -> Vec<MediaChange> {
        let mut out: Vec<(Time, MediaPath, String)> = vec![(c.created_at, MediaPath::Relayed, MEDIA_REASON.to_owned())];
        let mut path = MediaPath::Relayed;
        let mut events: Vec<(Time, Option<MediaPath>, Option<&String>)> =
            c.media_history.iter().map(|(t, p)| (*t, Some(*p), None)).collect();
        if let Some(log) = self.reasons.get(&c.id) {
            events.extend(log.iter().map(|(t, w)| (*t, None, Some(w))));
        }
        events.sort_by_key(|(t, _, _)| *t);
        for (t, p, w) in events {
            if let Some(p) = p {
                path = p;
            }
            let reason = w.cloned().unwrap_or_else(|| self.reason_at(c.id, t));
            out.push((t, path, reason));
        }
        out.into_iter().map(|(t, p, reason)| MediaChange { time: self.wall(t), media_path: path_word(p), reason }).collect()
    }

    fn entry(&self, leg: usize, w: &Wire) -> LadderEntry {
        LadderEntry {
            time: self.wall(w.at),
            t_ms: w.at.as_millis(),
            direction: if w.outbound { "out" } else { "in" },
            leg: if leg == 0 { "a" } else { "b" },
            transport: w.transport.to_string(),
            peer: w.remote.to_string(),
            first_line: w.first_line.to_string(),
        }
    }
}

fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Routing => "routing",
        Phase::Calling => "calling",
        Phase::Answered => "answered",
        Phase::Ended => "ended",
    }
}

/// The Call-ID of a SIP message (`Call-ID:` or compact `i:`, any case, at a line start,
/// in the header section), without parsing it.
pub(crate) fn find_call_id(bytes: &[u8]) -> Option<&str> {
    let mut lines = bytes.split(|&b| b == b'\n');
    lines.next()?; // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the headers
        }
        let rest = if line.len() > 7 && line[..7].eq_ignore_ascii_case(b"call-id") {
            &line[7..]
        } else if line.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'i')) {
            &line[1..]
        } else {
            continue;
        };
        let rest = rest.trim_ascii_start();
        if let Some(value) = rest.strip_prefix(b":") {
            let value = std::str::from_utf8(value.trim_ascii()).ok()?;
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

/// The start line, lossy UTF-8, cut at [`FIRST_LINE_MAX`] bytes.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(bytes.len()).min(FIRST_LINE_MAX);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `t` as RFC 3339 UTC with milliseconds: `2026-12-01T12:43:03.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// One call in `GET /api/calls`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallView {
    /// The call's number (`/api/calls/{id}`).
    pub id: u64,
    /// The caller (the inbound From URI).
    pub from: String,
    /// The dialled URI.
    pub to: String,
    /// `routing`, `calling` (the outbound leg rings), `answered` or `ended`.
    pub state: &'static str,
    /// The inbound (A) leg, then the outbound (B) leg.
    pub legs: [LegView; 2],
    /// `relayed` | `direct` | `moving`; always `relayed` in this build.
    pub media_path: &'static str,
    /// Why the media path is what it is.
    pub media_reason: String,
    /// re-INVITEs and UPDATEs sent to move the media.
    pub reinvites_sent: u32,
    /// 491s sent on the call's dialogs.
    pub glare_491_sent: u32,
    /// 491s received to our media requests.
    pub glare_491_received: u32,
    /// From the answer to both legs direct, the first time; `null` if never.
    pub direct_after_ms: Option<u64>,
    /// When the INVITE arrived, RFC 3339 UTC.
    pub started_at: String,
    /// When the called side answered.
    pub answered_at: Option<String>,
    /// Seconds since it started.
    pub age_s: u64,
    /// Why it ended (ended calls only).
    pub end_reason: Option<String>,
}

/// One leg of a call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LegView {
    /// The `[[endpoint]]` on this leg; `""` when not known.
    pub endpoint: String,
    /// The leg's Call-ID.
    pub call_id: String,
    /// Why its endpoint is taken as behind NAT (`null`: it is not).
    pub nat: Option<String>,
    /// Its media addresses.
    pub media: MediaView,
}

/// A leg's media addresses.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaView {
    /// Our relay address for the leg: what our SDP to it says.
    pub local: String,
    /// Where the leg's SDP says it receives; `null` before its SDP, or on hold.
    pub remote: Option<String>,
    /// The relay's counters for the leg (at most 100 ms old); `null` without relay ports.
    pub stats: Option<LegCounters>,
}

/// `GET /api/calls/{id}`: the call, its SIP ladder and its media-path history.
#[derive(Debug, Clone, Serialize)]
pub struct CallDetail {
    /// The call, as in `GET /api/calls`.
    #[serde(flatten)]
    pub call: CallView,
    /// Its messages in the order they crossed the wire.
    pub ladder: Vec<LadderEntry>,
    /// Messages left out of the middle of a long ladder.
    pub ladder_omitted: u64,
    /// Each media-path change, oldest first.
    pub media_history: Vec<MediaChange>,
}

/// One message of a ladder.
#[derive(Debug, Clone, Serialize)]
pub struct LadderEntry {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Milliseconds since the server started (for exact intervals).
    pub t_ms: u64,
    /// `in` (received) or `out` (sent).
    pub direction: &'static str,
    /// `a` (the caller's leg) or `b` (the called leg).
    pub leg: &'static str,
    /// `UDP`, `TCP` or `TLS`.
    pub transport: String,
    /// The other end, `ip:port`.
    pub peer: String,
    /// The start line: `INVITE sip:… SIP/2.0` or `SIP/2.0 200 OK`.
    pub first_line: String,
}

/// A media-path change.
#[derive(Debug, Clone, Serialize)]
pub struct MediaChange {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// The path from then on.
    pub media_path: &'static str,
    /// The decision in force, in words.
    pub reason: String,
}

/// One `[[endpoint]]` in `GET /api/endpoints`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointView {
    /// Its name.
    pub name: String,
    /// `dynamic` or its static `HOST:PORT`.
    pub host: String,
    /// `reachable` | `unreachable` | `lagged` | `unknown` (OPTIONS qualify; `unknown`
    /// before the first answer, and for endpoints with `qualify = false` or no contact).
    pub state: String,
    /// The last qualify round trip, while reachable or lagged.
    pub rtt_ms: Option<u64>,
    /// Its registered contacts.
    pub registrations: Vec<RegistrationView>,
}

/// A registered contact.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RegistrationView {
    /// The Contact URI.
    pub contact: String,
    /// When it expires, RFC 3339 UTC.
    pub expires_at: String,
    /// Where the REGISTER came from, `transport:ip:port`.
    pub source: String,
    /// Where requests to it go (the source address when it is behind NAT).
    pub target: String,
    /// Why it is taken as behind NAT, if it is.
    pub nat: Option<String>,
    /// Its User-Agent.
    pub user_agent: Option<String>,
}

/// A source refused after failed authentications, in `GET /api/bans`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BanView {
    /// The address.
    pub source: String,
    /// Until when, RFC 3339 UTC.
    pub until: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_in_any_spelling_at_a_line_start() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCALL-ID:  abc@h \r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(find_call_id(m), Some("abc@h"));
        assert_eq!(find_call_id(b"SIP/2.0 200 OK\r\ni : short\r\n\r\n"), Some("short"));
        assert_eq!(find_call_id(b"SIP/2.0 200 OK\nVia: x\ncall-id:lf-only\n\n"), Some("lf-only"));
        // Not a Call-ID: another header starting with `i`, a Call-ID in a body, none at all.
        assert_eq!(find_call_id(b"OPTIONS sip:a SIP/2.0\r\nIn-Reply-To: x\r\n\r\nCall-ID: body\r\n"), None);
        assert_eq!(find_call_id(b"OPTIONS sip:a SIP/2.0\r\nX-Call-ID: no\r\n\r\n"), None);
        assert_eq!(find_call_id(b"\r\n\r\n"), None);
    }

    #[test]
    fn first_line_is_cut_at_the_line_end() {
        assert_eq!(first_line(b"SIP/2.0 180 Ringing\r\nVia: x\r\n"), "SIP/2.0 180 Ringing");
        assert_eq!(first_line(&[b'A'; 1000]).len(), FIRST_LINE_MAX);
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_798_761_599)), "2026-12-31T23:59:59.000Z");
    }

    #[test]
    fn messages_of_no_call_wait_then_are_forgotten_and_cached() {
        let b2bua = B2bua::new(sip_core::b2bua::B2buaConfig::default());
        let mut api = ApiState::new(&Config::default(), UNIX_EPOCH);
        let flow = Flow {
            transport: sip_core::Transport::Udp,
            local: SocketAddr::from(([127, 0, 0, 1], 5060)),
            remote: SocketAddr::from(([127, 0, 0, 2], 5060)),
            connection: None,
        };
        let options = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: probe\r\n\r\n";
        api.on_wire(&b2bua, Time::ZERO, false, &flow, options);
        // Outbound traffic before the event is handled does not decide: the call layer
        // may not have seen the request yet.
        api.on_wire(&b2bua, Time::ZERO, true, &flow, b"SIP/2.0 200 OK\r\ni: probe\r\n\r\n");
        assert_eq!(api.pending.len(), 2);
        api.settle(&b2bua);
        assert!(api.pending.is_empty() && api.ladders.is_empty());
        assert_eq!(api.known.get("probe"), Some(&Known::NotACall));
        // Known now: not queued again. Keep-alives and Call-ID-less data are ignored.
        api.on_wire(&b2bua, Time::ZERO, false, &flow, options);
        api.on_wire(&b2bua, Time::ZERO, false, &flow, b"\r\n\r\n");
        assert!(api.pending.is_empty());
        // The wait is bounded.
        for i in 0..PENDING_CAP + 10 {
            api.on_wire(&b2bua, Time::ZERO, false, &flow, format!("OPTIONS sip:a SIP/2.0\r\nCall-ID: p{i}\r\n\r\n").as_bytes());
        }
        assert_eq!(api.pending.len(), PENDING_CAP);
    }

    #[test]
    fn a_ladder_keeps_its_head_and_its_tail() {
        let flow = Flow {
            transport: sip_core::Transport::Udp,
            local: SocketAddr::from(([127, 0, 0, 1], 5060)),
            remote: SocketAddr::from(([127, 0, 0, 2], 5060)),
            connection: None,
        };
        let mut l = Ladder::default();
        for i in 0..(LADDER_CAP as u64 + 100) {
            l.push(
                0,
                Wire { at: Time::from_millis(i), outbound: false, transport: flow.transport, remote: flow.remote, first_line: "".into() },
            );
        }
        assert_eq!(l.head.len() + l.tail.len(), LADDER_CAP);
        assert_eq!(l.omitted, 100);
        assert_eq!(l.head[0].1.at, Time::from_millis(0));
        assert_eq!(l.tail.back().map(|w| w.1.at), Some(Time::from_millis(LADDER_CAP as u64 + 99)));
        assert_eq!(l.peers, [Some(flow.remote), None]);
    }
}
