//! Call policy: who may call, where a call goes, which relay ports and codecs it gets
//! (`../shared/design/CONFIG.md`, "Who may call" and "Where a call goes").
//!
//! The call mechanism is [`sip_core::b2bua`]; this module answers its questions:
//! - the caller is the `[[endpoint]]` without `secret` whose static `host` address the
//!   INVITE came from, or the `secret` endpoint whose digest credentials it carries
//!   (407 challenge first, [`crate::access`]); wrong credentials, an unknown user and a
//!   source that matches nobody all get the same 403;
//! - the Request-URI user names an endpoint, or the first `[[route]]` whose `match`
//!   fits it gives the endpoint and the new user; otherwise 404;
//! - a `dynamic` endpoint is reached at its registered contacts
//!   ([`crate::registrations`]), all rung at once; without any: 480;
//! - each leg gets a relay port pair on the endpoint's `media_address` or `[media]
//!   address`; the codecs are each endpoint's `codecs`.

use crate::access::{Access, Outcome, Owed};
use crate::config::{self, Config, EndpointHost};
use crate::guard::Admission;
use sip_core::b2bua::{B2bua, B2buaConfig, CallEvent, CallId, Fork, Incoming, Side, Target};
use sip_core::digest::Challenger;
use sip_core::nat::NatEvidence;
use sip_core::qualify::{self, Qualifier, QualifyConfig, QualifyEvent};
use sip_core::registrar::{Binding, Change, Registrar, RegistrarConfig};
use sip_core::sip_message::{Header, Uri};
use sip_core::{Endpoint, Flow, Time, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Where media goes for a call: the relay, or (in tests) nothing at all.
pub trait MediaBackend {
    /// Reserves and opens a port pair per leg on `local[leg]`; returns each leg's RTP
    /// address. `nat[leg]`: latch to the first stable source.
    fn open(&mut self, call: CallId, local: [IpAddr; 2], nat: [bool; 2]) -> Result<[SocketAddr; 2], String>;
    /// A leg's SDP gave the address it receives at.
    fn set_remote(&mut self, call: CallId, side: Side, remote: Option<SocketAddr>);
    /// The call is answered: media inactivity counts from now.
    fn answered(&mut self, _call: CallId) {}
    /// The call is over: release its ports.
    fn close(&mut self, call: CallId);
    /// A call's per-leg counters (A, B), when it has relay ports.
    fn leg_stats(&self, _call: CallId) -> Option<[LegCounters; 2]> {
        None
    }
    /// Relay totals since start: packets in, packets out, packets lost, calls open.
    fn totals(&self) -> RelayTotals {
        RelayTotals::default()
    }
    /// Records each leg's incoming audio to its file (G.711; `None`: that leg not).
    fn start_recording(&mut self, _call: CallId, _files: [Option<std::path::PathBuf>; 2]) -> Result<(), String> {
        Err("this media backend does not record".into())
    }
    /// Stops a recording; the files are completed.
    fn stop_recording(&mut self, _call: CallId) {}
    /// Forward between the legs (relayed) or not (direct media: counted only).
    fn set_forwarding(&mut self, _call: CallId, _on: bool) {}
    /// The call's payload types after an offer/answer ([`crate::media::payloads`]):
    /// each leg's map for DTMF and recording, and the renumbering between the legs.
    /// Only what changed needs telling the relay.
    fn set_payloads(&mut self, _call: CallId, _payloads: crate::media::Payloads) {}
}

/// One leg's relay counters, for the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LegCounters {
    /// Packets received from the leg's endpoint.
    pub packets_in: u64,
    /// Bytes received from it.
    pub bytes_in: u64,
    /// Packets sent to it.
    pub packets_out: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// RTP packets missing from its sequence numbers (RFC 3550 A.3).
    pub lost: u64,
    /// When its last packet came, in milliseconds on the relay's clock (since the relay
    /// started; not an age); `None` before any.
    pub last_packet_ms: Option<u64>,
    /// The source its media is latched to.
    pub latched: Option<SocketAddr>,
    /// RTP keep-alives sent to it (`[media] rtp_keepalive_s`).
    pub keepalives_sent: u64,
}

/// Relay totals since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayTotals {
    /// Packets received on relay ports.
    pub packets_in: u64,
    /// Packets forwarded.
    pub packets_out: u64,
    /// RTP packets lost (sequence gaps).
    pub lost: u64,
    /// Calls with relay ports open.
    pub open_calls: u64,
    /// Free port pairs.
    pub free_pairs: u64,
}

/// How often NATed UDP registrations without qualify get a CRLF keep-alive: well
/// inside the 30–60 s many NATs keep an idle UDP mapping.
pub const NAT_KEEPALIVE: Duration = Duration::from_secs(25);

/// A resolved `[[endpoint]]`.
#[derive(Debug, Clone)]
struct Peer {
    index: usize,
    /// Its static address, resolved at start-up.
    addr: Option<SocketAddr>,
}

/// The call policy and the call layer.
pub struct Calls<M: MediaBackend> {
    /// The call layer.
    pub b2bua: B2bua,
    /// Authentication and the guard against guessing.
    pub access: Access,
    /// The bindings of `dynamic` endpoints.
    pub registrar: Registrar,
    /// OPTIONS keep-alives of endpoints with `qualify = true`.
    pub qualify: Qualifier,
    /// When NATed UDP registrations without qualify next get a CRLF keep-alive.
    keepalive_at: Option<Time>,
    /// Calls being recorded.
    pub recording: std::collections::HashSet<CallId>,
    /// The direct-media policy's state per call.
    pub direct: HashMap<CallId, crate::direct::DirectCall>,
    /// When calls are to be decided again (earliest first).
    pub(crate) direct_due: std::collections::BinaryHeap<std::cmp::Reverse<(Time, CallId)>>,
    /// Policy counters for metrics.
    pub direct_stats: crate::direct::DirectStats,
    /// Calls whose media decision changed since the last look, with its words, for the API.
    pub media_reasons: Vec<(CallId, String)>,
    /// The last DTMF digits per call and when the last came, for feature codes.
    pub(crate) dtmf: HashMap<CallId, (Time, String)>,
    /// The wall-clock time of the engine's `Time::ZERO`, for Date headers and the store.
    pub boot: std::time::SystemTime,
    pub(crate) config: Config,
    peers: HashMap<String, Peer>,
    pub(crate) media: M,
    pub(crate) listeners: Vec<(Transport, SocketAddr)>,
    /// Calls by outcome, for metrics.
    pub refused: u64,
    /// Calls routed since the last look, with their endpoints' names (inbound,
    /// outbound), for the API.
    pub routed: Vec<(CallId, [String; 2])>,
    /// Calls that ended since the last look, as they were then, for the API.
    pub ended: Vec<sip_core::b2bua::CallInfo>,
}

/// The address we advertise in Contact, Via and SDP origins: `[sip] external_address`,
/// else the first listener's address when it is not a wildcard, else the address the
/// kernel would send from (no packet is sent), else loopback.
pub fn advertised_address(config: &Config, listeners: &[(Transport, SocketAddr)]) -> IpAddr {
    if let Some(a) = config.sip.external_address {
        return a;
    }
    if let Some((_, a)) = listeners.iter().find(|(_, a)| !a.ip().is_unspecified()) {
        return a.ip();
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()));
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// The call layer's configuration for `config`.
pub fn b2bua_config(config: &Config, listeners: &[(Transport, SocketAddr)], seed: u64) -> B2buaConfig {
    B2buaConfig {
        timers: sip_core::TimerConfig { t1: config.timers.t1(), t2: config.timers.t2(), t4: config.timers.t4() },
        advertise: advertised_address(config, listeners),
        ports: listeners.iter().map(|(t, a)| (*t, a.port())).collect(),
        user_agent: if config.sip.user_agent.is_empty() { "sipbridge".into() } else { config.sip.user_agent.clone() },
        no_answer: Duration::from_secs(u64::from(config.calls.no_answer_s)),
        max_duration: Duration::from_secs(u64::from(config.calls.max_duration_s)),
        seed,
        ..B2buaConfig::default()
    }
}

fn transport(t: config::Transport) -> Transport {
    match t {
        config::Transport::Udp => Transport::Udp,
        config::Transport::Tcp => Transport::Tcp,
        config::Transport::Tls => Transport::Tls,
    }
}

impl<M: MediaBackend> Calls<M> {
    /// The policy for `config`; static endpoint hosts are resolved now (a name that does
    /// not resolve is logged, and calls to it get 480).
    pub fn new(config: Config, listeners: Vec<(Transport, SocketAddr)>, media: M, seed: u64, auth_secret: [u8; 32]) -> Calls<M> {
        let mut peers = HashMap::new();
        for (index, e) in config.endpoints.iter().enumerate() {
            let addr = match &e.host {
                EndpointHost::Dynamic => None,
                EndpointHost::Static(hp) => {
                    let port = hp.port.unwrap_or(transport(e.transport).default_port());
                    let text = match &hp.host {
                        config::Host::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
                        config::Host::Name(n) => format!("{n}:{port}"),
                    };
                    match text.to_socket_addrs().map(|mut a| a.next()) {
                        Ok(Some(a)) => Some(a),
                        _ => {
                            tracing::warn!(endpoint = %e.name, host = %text, "endpoint host does not resolve; calls to it get 480");
                            None
                        }
                    }
                }
            };
            peers.insert(e.name.clone(), Peer { index, addr });
        }
        let b2bua = B2bua::new(b2bua_config(&config, &listeners, seed));
        let access = Access::new(&config, auth_secret);
        let bc = b2bua_config(&config, &listeners, seed);
        let qualify = Qualifier::new(QualifyConfig {
            advertise: bc.advertise,
            ports: bc.ports.clone(),
            user_agent: bc.user_agent.clone(),
            seed: seed ^ 0x0051_7561_6c69_6679,
            ..QualifyConfig::default()
        });
        let registrar = Registrar::new(RegistrarConfig {
            min_expires: config.registrar.min_expires_s,
            max_expires: config.registrar.max_expires_s,
            default_expires: config.registrar.max_expires_s.min(3600),
            ..RegistrarConfig::default()
        });
        Calls {
            b2bua,
            access,
            registrar,
            qualify,
            keepalive_at: None,
            recording: Default::default(),
            direct: HashMap::new(),
            direct_due: Default::default(),
            direct_stats: Default::default(),
            media_reasons: Vec::new(),
            dtmf: HashMap::new(),
            boot: std::time::SystemTime::now(),
            config,
            peers,
            media,
            listeners,
            refused: 0,
            routed: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Handles one engine event: the call layer first, then REGISTER, then
    /// [`crate::policy::on_event`] for what nobody took.
    pub fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: sip_core::Event) {
        let event = self.b2bua.handle_event(now, ep, event).and_then(|e| self.qualify.handle_event(now, ep, e));
        match event {
            Some(sip_core::Event::Request { tx, request, source }) if *request.method() == sip_core::sip_message::Method::Register => {
                self.register(now, ep, tx, &request, &source);
            }
            Some(e) => crate::policy::on_event(now, ep, e),
            None => {}
        }
        self.drain(now, ep);
    }

    /// Starts qualifying the endpoints with `qualify = true` that have a contact (a
    /// static host, or bindings restored from the store; others start when they
    /// register) and the NAT keep-alives. Call once, at start-up, after `restore`.
    pub fn start(&mut self, now: Time) {
        for i in 0..self.config.endpoints.len() {
            self.requalify(now, i);
        }
        self.keepalive_at = Some(now + NAT_KEEPALIVE);
    }

    /// Points endpoint `index`'s qualify at its best contact, or stops it without one.
    fn requalify(&mut self, now: Time, index: usize) {
        let e = &self.config.endpoints[index];
        if !e.qualify {
            return;
        }
        let name = e.name.clone();
        let (frequency, max_rtt) =
            (Duration::from_secs(u64::from(e.qualify_frequency_s)), Duration::from_millis(u64::from(e.qualify_max_ms)));
        match self.contacts(index, &name).ok().and_then(|c| c.into_iter().next()) {
            Some(c) => {
                let target = qualify::Target { uri: c.uri, flow: c.flow };
                if !self.qualify.update_target(now, &name, target.clone()) && self.qualify.state(&name).is_none() {
                    self.qualify.add(now, name, target, frequency, max_rtt);
                }
            }
            None => {
                self.qualify.remove(&name);
            }
        }
    }

    /// A registration came or went: qualify follows the endpoint's best contact.
    pub fn binding_changed(&mut self, now: Time, change: &Change) {
        let aor = match change {
            Change::Put { aor, .. } | Change::Removed { aor, .. } => aor,
        };
        if let Some(p) = self.peers.get(aor) {
            let index = p.index;
            self.requalify(now, index);
        }
    }

    /// Qualify state changes, logged as Asterisk does ("Endpoint alice is now
    /// Unreachable").
    fn drain_qualify(&mut self) {
        while let Some(QualifyEvent::StateChanged { name, from, to, rtt }) = self.qualify.poll_event() {
            let rtt_ms = rtt.map(|r| r.as_millis());
            match to {
                qualify::State::Unreachable => tracing::warn!(endpoint = %name, %from, "endpoint is now unreachable"),
                _ => tracing::info!(endpoint = %name, %from, %to, ?rtt_ms, "endpoint is now {to}"),
            }
        }
    }

    /// CRLF keep-alives (RFC 5626 §4.4.1 ping) to NATed UDP registrations of endpoints
    /// that are not qualified, so their NAT bindings stay open.
    fn nat_keepalives(&mut self, ep: &mut Endpoint) {
        for (aor, list) in self.registrar.aors() {
            let qualified = self.peers.get(aor).is_some_and(|p| self.config.endpoints[p.index].qualify);
            for b in list.iter().filter(|b| !qualified && b.nat.is_some() && b.source.transport == Transport::Udp) {
                ep.send_stateless(b.source, sip_core::sip_message::bytes::Bytes::from_static(b"\r\n\r\n"));
            }
        }
    }

    /// The wall-clock time of engine time `now`.
    pub fn wall(&self, now: Time) -> std::time::SystemTime {
        self.boot + now.since_origin()
    }

    /// The next time the policy layer needs waking: binding expiry, a held answer.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        [
            self.b2bua.poll_timeout(),
            self.registrar.poll_timeout(),
            self.access.poll_timeout(),
            self.qualify.poll_timeout(),
            self.keepalive_at,
            self.direct_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expires bindings, sends held answers, moves the call layer's timers.
    pub fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        self.b2bua.handle_timeout(now, ep);
        self.registrar.handle_timeout(now);
        self.qualify.handle_timeout(now, ep);
        self.direct_due_now(now, ep);
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.nat_keepalives(ep);
            self.keepalive_at = Some(now + NAT_KEEPALIVE);
        }
        for d in self.access.due(now) {
            match d.owed {
                Owed::Tx(tx) => {
                    let _ = ep.reply(now, tx, d.status, d.headers);
                }
                Owed::Call(call) => {
                    let _ = self.b2bua.reject_with(now, ep, call, d.status, d.headers);
                }
            }
        }
        self.drain(now, ep);
    }

    /// Starts recording a call: one WAV per leg in `[media] record_dir`, named
    /// `call-{id}-{inbound|outbound}-{started ms}.wav`. While recording, the call stays
    /// relayed (DIRECT_MEDIA.md, re-anchoring). Returns the files.
    pub fn start_recording(&mut self, now: Time, call: CallId) -> Result<[std::path::PathBuf; 2], String> {
        let info = self.b2bua.call(call).ok_or("no such call")?;
        if info.phase == sip_core::b2bua::Phase::Ended {
            return Err("the call has ended".into());
        }
        let dir = &self.config.media.record_dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let at = now.as_millis();
        let files = [Side::A, Side::B].map(|s| dir.join(format!("call-{}-{s}-{at}.wav", call.0)));
        self.media.start_recording(call, [Some(files[0].clone()), Some(files[1].clone())])?;
        self.recording.insert(call);
        tracing::info!(%call, files = ?files, "recording");
        // Recording needs the media in the relay: decide again (re-anchor if direct).
        self.direct_check_at(call, now);
        Ok(files)
    }

    /// Stops recording a call.
    pub fn stop_recording(&mut self, now: Time, call: CallId) -> bool {
        let was = self.recording.remove(&call);
        if was {
            self.media.stop_recording(call);
            tracing::info!(%call, "recording stopped");
            // The media may go direct again.
            self.direct_check_at(call, now);
        }
        was
    }

    /// The media backend.
    pub fn media(&mut self) -> &mut M {
        &mut self.media
    }

    /// The endpoint a request from `source` comes from: no `secret`, static host, same IP
    /// (and the same port when several share the IP).
    fn caller(&self, source: &Flow) -> Option<usize> {
        let mut by_ip = None;
        for e in self.config.endpoints.iter().filter(|e| e.secret.is_none()) {
            let Some(p) = self.peers.get(&e.name) else { continue };
            let Some(a) = p.addr else { continue };
            if a.ip() == source.remote.ip() {
                if a.port() == source.remote.port() {
                    return Some(p.index);
                }
                by_ip.get_or_insert(p.index);
            }
        }
        by_ip
    }

    /// The endpoint and Request-URI user a dialled `user` goes to.
    fn destination(&self, user: &str) -> Option<(usize, String)> {
        if let Some(p) = self.peers.get(user) {
            return Some((p.index, user.to_owned()));
        }
        self.config.routes.iter().find_map(|r| {
            let new_user = r.rewrite(user)?;
            let p = self.peers.get(&r.to)?;
            Some((p.index, new_user))
        })
    }

    /// Drains the call layer's events: routes new calls, moves relay state along.
    pub fn drain(&mut self, now: Time, ep: &mut Endpoint) {
        self.drain_qualify();
        let mut last_negotiated = None;
        while let Some(e) = self.b2bua.poll_event() {
            if !matches!(e, CallEvent::Negotiated { .. }) {
                last_negotiated = None;
            }
            match e {
                CallEvent::Incoming(inc) => self.incoming(now, ep, *inc),
                CallEvent::Media { call, side, remote } => {
                    self.media.set_remote(call, side, remote);
                    // A new offer/answer can change the decision (codecs, hold, NAT).
                    self.direct_check_at(call, now);
                }
                CallEvent::Ended { call, reason } => {
                    tracing::debug!(%call, %reason, "releasing media");
                    self.recording.remove(&call);
                    self.direct.remove(&call);
                    self.dtmf.remove(&call);
                    self.media.close(call);
                    if let Some(info) = self.b2bua.call(call) {
                        self.ended.push(info);
                    }
                }
                CallEvent::Answered { call } => {
                    self.media.answered(call);
                    self.direct_check_at(call, now);
                }
                CallEvent::Progress { .. } => {}
                CallEvent::Negotiated { call, .. } => {
                    // Both legs' exchanges often end on one input: once is enough.
                    if last_negotiated != Some(call) {
                        self.media.set_payloads(call, crate::media::payloads(&self.b2bua, call));
                    }
                    last_negotiated = Some(call);
                }
                // Direct media is wired by the lead (stop/resume relay forwarding).
                CallEvent::MediaPath { call, path } => self.media_path_changed(call, path),
            }
        }
    }

    fn refuse(&mut self, now: Time, ep: &mut Endpoint, call: CallId, status: u16, why: &str) {
        tracing::info!(%call, status, "refused: {why}");
        self.refused += 1;
        let _ = self.b2bua.reject(now, ep, call, status);
    }

    /// Refuses a call that did not authenticate (a 407 challenge, or 403), after the
    /// guard's delay when its source was throttled as the INVITE arrived.
    fn refuse_auth(
        &mut self,
        now: Time,
        ep: &mut Endpoint,
        call: CallId,
        admission: Admission,
        (status, headers, why): (u16, Vec<Header>, String),
    ) {
        if status == 407 {
            tracing::debug!(%call, "challenged: {why}");
        } else {
            tracing::info!(%call, status, "refused: {why}");
            self.refused += 1;
        }
        if let Admission::Throttled(d) = admission {
            self.access.delay(now + d, Owed::Call(call), status, headers);
            return;
        }
        let _ = self.b2bua.reject_with(now, ep, call, status, headers);
    }

    /// The endpoint placing the call: a no-secret endpoint by its address, else the
    /// one whose credentials the INVITE carries; `Err` is the answer to refuse with.
    fn authenticate_caller(&mut self, now: Time, inc: &Incoming, admission: Admission) -> Result<usize, (u16, Vec<Header>, String)> {
        let ip = inc.source.remote.ip();
        if let Admission::Banned(until) = admission {
            return Err((403, Vec::new(), format!("{ip} is refused until {until} (failed authentications)")));
        }
        if let Some(i) = self.caller(&inc.source) {
            return Ok(i);
        }
        if !self.access.has_secrets() {
            return Err((403, Vec::new(), format!("{} is no endpoint of ours", inc.source.remote)));
        }
        match self.access.authenticate(now, Challenger::Proxy, &inc.request, ip) {
            Outcome::Endpoint(i) => Ok(i),
            Outcome::Answer(407, h) => Err((407, h, format!("{} sent no valid credentials yet", inc.source.remote))),
            Outcome::Answer(status, h) => Err((status, h, format!("{} failed authentication", inc.source.remote))),
        }
    }

    fn incoming(&mut self, now: Time, ep: &mut Endpoint, inc: Incoming) {
        let call = inc.call;
        // The guard's verdict as the INVITE arrives decides both the ban and the delay
        // (the failure this request may add counts from the next one on).
        let admission = self.access.admit(now, inc.source.remote.ip());
        let from = match self.authenticate_caller(now, &inc, admission) {
            Ok(i) => i,
            Err(answer) => return self.refuse_auth(now, ep, call, admission, answer),
        };
        let user =
            inc.request.uri().as_sip().and_then(|u| u.user_decoded()).map(|u| String::from_utf8_lossy(&u).into_owned()).unwrap_or_default();
        let Some((to, new_user)) = self.destination(&user) else {
            return self.refuse(now, ep, call, 404, &format!("no endpoint or route for {user:?}"));
        };
        if let Some((qualify::State::Unreachable, _)) = self.qualify.state(&self.config.endpoints[to].name) {
            let why = format!("{} is unreachable (qualify)", self.config.endpoints[to].name);
            return self.refuse(now, ep, call, 480, &why);
        }
        let contacts = match self.contacts(to, &new_user) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => {
                let why = format!("{} has no contact", self.config.endpoints[to].name);
                return self.refuse(now, ep, call, 480, &why);
            }
            Err((status, why)) => return self.refuse(now, ep, call, status, &why),
        };
        let (caller, callee) = (&self.config.endpoints[from], &self.config.endpoints[to]);
        let media_ip = |e: &config::Endpoint| e.media_address.unwrap_or(self.config.media.address);
        let caller_nat = match caller.nat {
            config::Nat::Yes => Some(sip_core::nat::detect(&inc.request, &inc.source).unwrap_or(NatEvidence::Configured)),
            config::Nat::Auto => sip_core::nat::detect(&inc.request, &inc.source),
            config::Nat::No => None,
        };
        let (caller_name, callee_name) = (caller.name.clone(), callee.name.clone());
        let codecs = [caller.codecs.clone(), callee.codecs.clone()];
        let callee_nat = contacts.iter().find_map(|c| c.nat);
        let direct_setup = self.direct_setup_allowed(call, [from, to], &inc.request, caller_nat, callee_nat);
        let mut contacts = contacts.into_iter();
        let Some(first) = contacts.next() else { return };
        let pin = [caller_nat.is_some(), first.pin];
        let nat = [caller_nat, first.nat];
        let media = match self.media.open(call, [media_ip(caller), media_ip(callee)], pin) {
            Ok(m) => m,
            Err(e) => return self.refuse(now, ep, call, 503, &format!("no relay ports: {e}")),
        };
        // Every other contact rings at the same time (first 2xx wins, CANCEL to the rest).
        let forks: Vec<Fork> = contacts.map(|c| Fork { uri: c.uri, flow: c.flow, pin_flow: c.pin }).collect();
        let target = Target {
            uri: first.uri,
            flow: first.flow,
            media,
            codecs,
            pin_flow: pin,
            no_answer: None,
            headers: Vec::new(),
            forks,
            nat,
            direct_setup,
        };
        tracing::info!(%call, from = %caller_name, to = %callee_name, user = %new_user, "routing");
        match self.b2bua.route(now, ep, call, target) {
            Ok(()) => {
                self.direct_begin(call, [from, to], direct_setup);
                self.routed.push((call, [caller_name, callee_name]));
            }
            Err(e) => {
                tracing::warn!(%call, error = %e, "cannot route");
                self.media.close(call);
            }
        }
    }
}

/// One place an outbound leg's INVITE goes.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Its Request-URI.
    pub uri: Uri,
    /// The flow it goes over.
    pub flow: Flow,
    /// In-dialog requests keep to `flow` (NAT).
    pub pin: bool,
    /// Why it is taken as behind NAT, if it is.
    pub nat: Option<NatEvidence>,
}

impl<M: MediaBackend> Calls<M> {
    /// Where a call to endpoint `index` with Request-URI user `user` goes: its static
    /// host, or its registered contacts, best `q` first, most recent first among equals.
    /// `Err`: the status to refuse with and why.
    fn contacts(&self, index: usize, user: &str) -> Result<Vec<Contact>, (u16, String)> {
        let callee = &self.config.endpoints[index];
        if callee.host == EndpointHost::Dynamic {
            let mut list: Vec<&Binding> = self.registrar.bindings(&callee.name).iter().collect();
            list.reverse();
            list.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
            return Ok(list.into_iter().filter_map(|b| self.binding_contact(b)).collect());
        }
        let Some(remote) = self.peers.get(&callee.name).and_then(|p| p.addr) else { return Ok(Vec::new()) };
        let t = transport(callee.transport);
        let Some(local) = self.listener(t) else {
            return Err((503, format!("no {t} listener to reach {}", callee.name)));
        };
        let host = match remote.ip() {
            IpAddr::V6(v) => format!("[{v}]"),
            IpAddr::V4(v) => v.to_string(),
        };
        let param = match t {
            Transport::Tcp => ";transport=tcp",
            _ => "",
        };
        let scheme = if t == Transport::Tls { "sips" } else { "sip" };
        let Ok(uri) = Uri::parse_str(&format!("{scheme}:{user}@{host}:{}{param}", remote.port())) else {
            return Err((484, format!("{user:?} is not a valid user part")));
        };
        let flow = Flow { transport: t, local, remote, connection: None };
        let nat = (callee.nat == config::Nat::Yes).then_some(NatEvidence::Configured);
        Ok(vec![Contact { uri, flow, pin: nat.is_some(), nat }])
    }

    /// Our listener for `t`.
    fn listener(&self, t: Transport) -> Option<SocketAddr> {
        self.listeners.iter().find(|(x, _)| *x == t).map(|(_, a)| *a)
    }

    /// How to reach one binding: a NATed one, or one registered over TCP/TLS, over the
    /// flow it registered on (RFC 5626's rule, and the only way through a NAT); another
    /// at its Contact's address when that is an IP literal, else over its flow too.
    fn binding_contact(&self, b: &Binding) -> Option<Contact> {
        let mut uri = b.target.clone();
        if let Uri::Sip(u) = &mut uri {
            u.clear_headers();
        }
        let sip = uri.as_sip()?;
        let via_source = b.nat.is_some() || b.source.transport != Transport::Udp;
        let flow = match sip.host().ip() {
            Some(ip) if !via_source => {
                let t = match sip.params().value_str("transport").map(str::to_ascii_lowercase).as_deref() {
                    Some("tcp") => Transport::Tcp,
                    Some("tls") => Transport::Tls,
                    _ if sip.is_secure() => Transport::Tls,
                    _ => Transport::Udp,
                };
                let remote = SocketAddr::new(ip, sip.port().unwrap_or(t.default_port()));
                Flow { transport: t, local: self.listener(t)?, remote, connection: None }
            }
            _ => b.source,
        };
        Some(Contact { uri, flow, pin: b.nat.is_some(), nat: b.nat })
    }
}

/// Addresses from the configured range without sockets: for signalling-only tests.
#[derive(Debug, Default)]
pub struct NoMedia {
    next: u16,
}

impl MediaBackend for NoMedia {
    fn open(&mut self, _call: CallId, local: [IpAddr; 2], _nat: [bool; 2]) -> Result<[SocketAddr; 2], String> {
        self.next = self.next.wrapping_add(4);
        let p = 20000 + self.next % 10000;
        Ok([SocketAddr::new(local[0], p), SocketAddr::new(local[1], p + 2)])
    }
    fn set_remote(&mut self, _call: CallId, _side: Side, _remote: Option<SocketAddr>) {}
    fn close(&mut self, _call: CallId) {}
}
