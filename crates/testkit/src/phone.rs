//! A scripted SIP phone for call scenarios: it places or answers one call, follows a
//! list of timed actions (BYE, CANCEL, re-INVITE, hold, UPDATE), answers what it is sent
//! the way a plain RFC 3261 phone does (2xx retransmitted until ACK, 491 on glare and a
//! §14.1 retry) and records what happened for the test to check.

use crate::NodeApp;
use bytes::Bytes;
use sip_core::dialog::Dialog;
use sip_core::sip_message::{IdSource, Method, NameAddr, Request, RequestBuilder, Response, SeededIds, Uri};
use sip_core::{Endpoint, Event, Flow, Time, TransactionId, Transport};
use std::net::SocketAddr;
use std::time::Duration;

/// How the phone answers an incoming INVITE.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Send 180 Ringing this long after the INVITE (`None`: no 180).
    pub ring_after: Option<Duration>,
    /// Send the final response this long after the INVITE (`None`: never).
    pub after: Option<Duration>,
    /// The final status.
    pub status: u16,
    /// Pretend to be two forked phones: 180 from two To tags, 200 from the second,
    /// then 200 from the first 100 ms later.
    pub fork: bool,
}

impl Answer {
    /// 180 at once, 200 after `after`.
    pub fn ok_after(after: Duration) -> Answer {
        Answer { ring_after: Some(Duration::ZERO), after: Some(after), status: 200, fork: false }
    }
}

/// Something the phone does at a time.
#[derive(Debug, Clone)]
pub enum Action {
    /// INVITE `sip:user@proxy`.
    Call(String),
    /// Hang up (BYE).
    Bye,
    /// CANCEL the INVITE.
    Cancel,
    /// re-INVITE, putting the call on hold (`a=sendonly`) or taking it off.
    Reinvite {
        /// Hold or resume.
        hold: bool,
    },
    /// UPDATE with a new offer.
    Update,
}

/// The phone's record.
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// Final statuses of our initial INVITE.
    pub invite_finals: Vec<u16>,
    /// Provisional statuses of our initial INVITE.
    pub provisionals: Vec<u16>,
    /// 2xx responses to the initial INVITE that we ACKed (retransmissions included).
    pub acks_sent: usize,
    /// The call was answered (we sent or received the 2xx and the ACK went).
    pub established: bool,
    /// The other side's BYE arrived.
    pub bye_received: bool,
    /// Our BYE got this final status.
    pub bye_status: Option<u16>,
    /// Requests received, by method, with times.
    pub requests: Vec<(Time, Method)>,
    /// The last SDP we received.
    pub remote_sdp: Option<String>,
    /// Finals of our re-INVITEs / UPDATEs (including 491s).
    pub refresh_finals: Vec<u16>,
    /// 491s we sent.
    pub sent_491: usize,
    /// ACKs for our 2xx that arrived.
    pub acks_received: usize,
    /// The call ended on our side.
    pub ended: bool,
}

/// The scripted phone.
pub struct Phone {
    name: String,
    local: SocketAddr,
    proxy: SocketAddr,
    media: SocketAddr,
    answer: Option<Answer>,
    offer_in_invite: bool,
    actions: Vec<(Time, Action)>,
    ids: SeededIds,
    /// Our owned Call-ID space: the §14.1 back-off depends on it.
    owner: bool,
    dialog: Option<Dialog>,
    invite_tx: Option<TransactionId>,
    invite: Option<Request>,
    server_tx: Option<TransactionId>,
    server_request: Option<Request>,
    local_tag: String,
    /// Scheduled answers to the incoming INVITE: (at, status, tag).
    answers: Vec<(Time, u16, String)>,
    pending_2xx: Option<(TransactionId, Response, Time, Duration, Time)>,
    refresh_tx: Option<(TransactionId, Action)>,
    retry_at: Option<(Time, Action)>,
    last_ack: Option<(Bytes, Flow)>,
    last_refresh_ack: Option<(u32, Bytes, Flow)>,
    hold: bool,
    version: u64,
    session_expires: Option<String>,
    /// An Allow row for our INVITE and our 2xx to it.
    allow: Option<String>,
    /// Our telephone-event payload type (101).
    dtmf_pt: u8,
    /// Statuses for the in-dialog INVITEs/UPDATEs we receive, in turn (then 200).
    reinvite_answers: Vec<u16>,
    /// Move our media to this port when answering the next in-dialog offer.
    move_port: Option<u16>,
    /// Every SDP body we received, with its time and the method.
    pub sdps: Vec<(Time, Method, String)>,
    /// What happened.
    pub record: Record,
}

impl Phone {
    /// A phone at `local` whose requests go to `proxy`; its SDP says `media`.
    pub fn new(name: &str, local: SocketAddr, proxy: SocketAddr, seed: u64) -> Phone {
        Phone {
            name: name.into(),
            local,
            proxy,
            media: SocketAddr::new(local.ip(), 40000),
            answer: None,
            offer_in_invite: true,
            actions: Vec::new(),
            ids: SeededIds::new(seed),
            owner: false,
            dialog: None,
            invite_tx: None,
            invite: None,
            server_tx: None,
            server_request: None,
            local_tag: String::new(),
            answers: Vec::new(),
            pending_2xx: None,
            refresh_tx: None,
            retry_at: None,
            last_ack: None,
            last_refresh_ack: None,
            hold: false,
            version: 1,
            session_expires: None,
            allow: None,
            dtmf_pt: 101,
            reinvite_answers: Vec::new(),
            move_port: None,
            sdps: Vec::new(),
            record: Record::default(),
        }
    }

    /// Answers incoming calls so.
    pub fn answering(mut self, a: Answer) -> Phone {
        self.answer = Some(a);
        self
    }

    /// Asks for session timers (RFC 4028) in the INVITE: `Session-Expires: VALUE`
    /// (e.g. `"90;refresher=uac"`) and `Supported: timer`.
    pub fn session_timer(mut self, value: &str) -> Phone {
        self.session_expires = Some(value.to_owned());
        self
    }

    /// Answers the in-dialog INVITEs and UPDATEs it receives with these statuses in turn
    /// (491, 488 …; 200 scripted means a 200 without SDP, as a broken peer sends), then
    /// 200 with its SDP.
    pub fn reinvite_answers(mut self, statuses: &[u16]) -> Phone {
        self.reinvite_answers = statuses.to_vec();
        self
    }

    /// Lists `methods` in an Allow row of its INVITE and of its 2xx to an INVITE.
    pub fn allow(mut self, methods: &str) -> Phone {
        self.allow = Some(methods.to_owned());
        self
    }

    /// Uses `pt` for telephone-event in its SDP (101 by default).
    pub fn dtmf_pt(mut self, pt: u8) -> Phone {
        self.dtmf_pt = pt;
        self
    }

    /// Moves its media to `port` in its answer to the next in-dialog offer.
    pub fn move_port_on_reinvite(mut self, port: u16) -> Phone {
        self.move_port = Some(port);
        self
    }

    /// The media address its SDP gives.
    pub fn media(&self) -> SocketAddr {
        self.media
    }

    /// Sends the INVITE without SDP (the offer comes in the 2xx, the answer in the ACK).
    pub fn offerless(mut self) -> Phone {
        self.offer_in_invite = false;
        self
    }

    /// Does `action` at `at`.
    pub fn at(mut self, at: Time, action: Action) -> Phone {
        self.actions.push((at, action));
        self.actions.sort_by_key(|(t, _)| *t);
        self
    }

    /// The dialog in force.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    fn flow(&self) -> Flow {
        Flow { transport: Transport::Udp, local: self.local, remote: self.proxy, connection: None }
    }

    fn contact(&self) -> NameAddr {
        NameAddr::new(Uri::parse_str(&format!("sip:{}@{}", self.name, self.local)).expect("a valid URI"))
    }

    fn sent_by(&self) -> (Transport, sip_core::sip_message::Host, u16) {
        let host = match self.local.ip() {
            std::net::IpAddr::V4(v) => sip_core::sip_message::Host::Ipv4(v),
            std::net::IpAddr::V6(v) => sip_core::sip_message::Host::Ipv6(v),
        };
        (Transport::Udp, host, self.local.port())
    }

    /// Our SDP: PCMU, PCMA, telephone-event; `a=sendonly` on hold.
    fn sdp(&mut self, answering_hold: bool) -> Bytes {
        self.version += 1;
        let dir = if self.hold {
            "sendonly"
        } else if answering_hold {
            "recvonly"
        } else {
            "sendrecv"
        };
        let ip = self.media.ip();
        Bytes::from(format!(
            "v=0\r\no={} 1 {} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0 8 {pt}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-15\r\na=ptime:20\r\na={dir}\r\n",
            self.name,
            self.version,
            self.media.port(),
            pt = self.dtmf_pt
        ))
    }

    fn remember_sdp(&mut self, body: &Bytes) -> bool {
        if body.is_empty() {
            return false;
        }
        let s = String::from_utf8_lossy(body).into_owned();
        let hold = s.contains("a=sendonly") || s.contains("a=inactive") || s.contains("c=IN IP4 0.0.0.0");
        self.record.remote_sdp = Some(s);
        hold
    }

    fn start(&mut self, now: Time, ep: &mut Endpoint, action: Action) {
        match action {
            Action::Call(user) => {
                self.owner = true;
                let uri = Uri::parse_str(&format!("sip:{user}@{}", self.proxy)).expect("a valid URI");
                let from = NameAddr::new(Uri::parse_str(&format!("sip:{}@{}", self.name, self.local.ip())).expect("a valid URI"));
                let (t, h, p) = self.sent_by();
                let mut b = RequestBuilder::new(Method::Invite, uri).from(from).via(t.to_message(), h, Some(p)).contact(self.contact());
                if let Some(se) = &self.session_expires {
                    use sip_core::sip_message::{Header, HeaderName};
                    b = b.header(Header::new(HeaderName::SessionExpires, Bytes::from(se.clone())));
                    b = b.header(Header::new(HeaderName::Supported, Bytes::from_static(b"timer")));
                }
                if let Some(a) = &self.allow {
                    use sip_core::sip_message::{Header, HeaderName};
                    b = b.header(Header::new(HeaderName::Allow, Bytes::from(a.clone())));
                }
                if self.offer_in_invite {
                    let body = self.sdp(false);
                    b = b.body("application/sdp", body);
                }
                let req = b.build(&mut self.ids).expect("the INVITE builds");
                self.invite_tx = ep.send_request(now, req.clone(), self.flow()).ok();
                self.invite = Some(req);
            }
            Action::Cancel => {
                if let Some(tx) = self.invite_tx {
                    let _ = ep.cancel(now, tx);
                }
            }
            Action::Bye => {
                let (sb, c) = (self.sent_by(), self.contact());
                if let Some(d) = self.dialog.as_mut() {
                    if let Ok(req) = d.request(Method::Bye, sb, &c).build(&mut self.ids) {
                        let tx = ep.send_request(now, req, d.destination()).ok();
                        self.refresh_tx = tx.map(|t| (t, Action::Bye));
                        self.record.ended = true;
                    }
                }
            }
            Action::Reinvite { hold } => {
                self.hold = hold;
                self.refresh(now, ep, Method::Invite, Action::Reinvite { hold });
            }
            Action::Update => self.refresh(now, ep, Method::Update, Action::Update),
        }
    }

    fn refresh(&mut self, now: Time, ep: &mut Endpoint, method: Method, action: Action) {
        if self.record.ended || self.refresh_tx.is_some() {
            return;
        }
        let body = self.sdp(false);
        let (sb, c) = (self.sent_by(), self.contact());
        let Some(d) = self.dialog.as_mut() else { return };
        let Ok(req) = d.request(method, sb, &c).body("application/sdp", body).build(&mut self.ids) else { return };
        if let Ok(tx) = ep.send_request(now, req, d.destination()) {
            self.refresh_tx = Some((tx, action));
        }
    }

    fn on_response(&mut self, now: Time, ep: &mut Endpoint, tx: TransactionId, r: &Response) {
        let status = r.status();
        if Some(tx) == self.invite_tx {
            if status < 200 {
                self.record.provisionals.push(status);
                return;
            }
            if status >= 300 {
                self.record.invite_finals.push(status);
                return;
            }
            let Some(inv) = self.invite.clone() else { return };
            if self.dialog.as_ref().is_some_and(|d| d.remote_tag() != r.to().tag().unwrap_or_default()) {
                return; // a second fork: not expected through a B2BUA
            }
            if self.dialog.is_none() {
                self.record.invite_finals.push(status);
                self.dialog = Dialog::uac(&inv, r, self.flow());
            } else if let Some((wire, flow)) = &self.last_ack {
                // A retransmitted 2xx: the same ACK again.
                ep.send_stateless(*flow, wire.clone());
                self.record.acks_sent += 1;
                return;
            }
            let offer_in_2xx = !self.offer_in_invite;
            let answering_hold = self.remember_sdp(r.body());
            let body = if offer_in_2xx { Some(self.sdp(answering_hold)) } else { None };
            let sb = self.sent_by();
            if let Some(d) = self.dialog.as_ref() {
                if let Some(ack) = d.ack(inv.cseq().seq, sb, body, &mut self.ids) {
                    let wire = ack.to_bytes();
                    ep.send_stateless(d.destination(), wire.clone());
                    self.last_ack = Some((wire, d.destination()));
                    self.record.acks_sent += 1;
                    self.record.established = true;
                }
            }
            return;
        }
        if (200..300).contains(&status) && matches!(r.cseq().method, Method::Invite) {
            if let Some((seq, wire, flow)) = &self.last_refresh_ack {
                if *seq == r.cseq().seq {
                    // A retransmitted 2xx to our re-INVITE: the same ACK again.
                    ep.send_stateless(*flow, wire.clone());
                    return;
                }
            }
        }
        let Some((rtx, action)) = self.refresh_tx.clone() else { return };
        if rtx != tx || status < 200 {
            return;
        }
        self.refresh_tx = None;
        if let Action::Bye = action {
            self.record.bye_status = Some(status);
            return;
        }
        self.record.refresh_finals.push(status);
        if status == 491 {
            // §14.1: retry after 2.1–4 s if we own the Call-ID, 0–2 s otherwise, 10 ms steps.
            let steps = self.ids.next_u64() % 200;
            let wait = if self.owner { 2100 + (steps % 191) * 10 } else { steps * 10 };
            self.retry_at = Some((now + Duration::from_millis(wait), action.clone()));
        }
        if (200..300).contains(&status) {
            self.remember_sdp(r.body());
            if matches!(action, Action::Reinvite { .. }) {
                let sb = self.sent_by();
                if let Some(d) = self.dialog.as_ref() {
                    if let Some(ack) = d.ack(r.cseq().seq, sb, None, &mut self.ids) {
                        let wire = ack.to_bytes();
                        ep.send_stateless(d.destination(), wire.clone());
                        self.last_refresh_ack = Some((r.cseq().seq, wire, d.destination()));
                    }
                }
            }
        }
    }

    fn on_request(&mut self, now: Time, ep: &mut Endpoint, tx: TransactionId, req: &Request, source: Flow) {
        self.record.requests.push((now, req.method().clone()));
        if req.to().tag().is_none() {
            if !matches!(req.method(), Method::Invite) || self.server_tx.is_some() {
                let _ = ep.reply(now, tx, 486, Vec::new());
                return;
            }
            self.remember_sdp(req.body());
            self.server_tx = Some(tx);
            self.server_request = Some(req.clone());
            self.local_tag = self.ids.tag();
            let mut d = Dialog::uas(req, &self.local_tag, source);
            d.pin_flow(true);
            self.dialog = Some(d);
            let Some(a) = self.answer.clone() else { return };
            let tag = self.local_tag.clone();
            if let Some(r) = a.ring_after {
                if a.fork {
                    let other = self.ids.tag();
                    self.answers.push((now + r, 180, tag.clone()));
                    self.answers.push((now + r, 180, other.clone()));
                    if let Some(after) = a.after {
                        self.answers.push((now + after, a.status, other));
                        self.answers.push((now + after + Duration::from_millis(100), a.status, tag));
                    }
                    return;
                }
                self.answers.push((now + r, 180, tag.clone()));
            }
            if let Some(after) = a.after {
                self.answers.push((now + after, a.status, tag));
            }
            return;
        }
        let matches_main = self.dialog.as_ref().is_some_and(|d| d.matches(req));
        if !matches_main {
            // A BYE to the fork we pretended to be.
            if matches!(req.method(), Method::Bye) {
                let _ = ep.reply(now, tx, 200, Vec::new());
            } else {
                let _ = ep.reply(now, tx, 481, Vec::new());
            }
            return;
        }
        if let Some(d) = self.dialog.as_mut() {
            if d.receive_request(req).is_err() {
                let _ = ep.reply(now, tx, 500, Vec::new());
                return;
            }
        }
        match req.method() {
            Method::Bye => {
                let _ = ep.reply(now, tx, 200, Vec::new());
                self.record.bye_received = true;
                self.record.ended = true;
                self.pending_2xx = None;
            }
            Method::Invite | Method::Update => {
                let pending_ours = self.refresh_tx.as_ref().is_some_and(|(_, a)| !matches!(a, Action::Bye));
                if !req.body().is_empty() {
                    self.sdps.push((now, req.method().clone(), String::from_utf8_lossy(req.body()).into_owned()));
                }
                let scripted = if self.reinvite_answers.is_empty() { None } else { Some(self.reinvite_answers.remove(0)) };
                if pending_ours || scripted == Some(491) {
                    self.record.sent_491 += 1;
                    let _ = ep.reply(now, tx, 491, Vec::new());
                    return;
                }
                if let Some(s) = scripted.filter(|s| *s >= 300) {
                    let _ = ep.reply(now, tx, s, Vec::new());
                    return;
                }
                if let Some(p) = self.move_port.take() {
                    self.media.set_port(p);
                }
                let hold = self.remember_sdp(req.body());
                let body = self.sdp(hold);
                let c = self.contact();
                let mut resp =
                    req.reply(200).header(sip_core::sip_message::Header::new(sip_core::sip_message::HeaderName::Contact, c.to_bytes()));
                if scripted != Some(200) {
                    resp = resp.body("application/sdp", body);
                }
                let resp = resp.build(&mut self.ids);
                if let Ok(resp) = resp {
                    let _ = ep.respond(now, tx, resp.clone());
                    if matches!(req.method(), Method::Invite) {
                        let t1 = ep.config().timers.t1;
                        self.pending_2xx = Some((tx, resp, now + t1, t1, now + t1 * 64));
                    }
                }
            }
            _ => {
                let _ = ep.reply(now, tx, 200, Vec::new());
            }
        }
    }

    fn send_answers(&mut self, now: Time, ep: &mut Endpoint) {
        let due: Vec<(Time, u16, String)> = self.answers.iter().filter(|(t, _, _)| *t <= now).cloned().collect();
        self.answers.retain(|(t, _, _)| *t > now);
        for (_, status, tag) in due {
            let (Some(tx), Some(req)) = (self.server_tx, self.server_request.clone()) else { return };
            if self.record.ended {
                return;
            }
            let mut b = req.reply(status).to_tag(&tag);
            if status < 300 {
                b = b.header(sip_core::sip_message::Header::new(sip_core::sip_message::HeaderName::Contact, self.contact().to_bytes()));
            }
            if (200..300).contains(&status) {
                if let Some(a) = &self.allow {
                    b = b.header(sip_core::sip_message::Header::new(sip_core::sip_message::HeaderName::Allow, Bytes::from(a.clone())));
                }
                let offer_in_invite = !req.body().is_empty();
                let hold = offer_in_invite && String::from_utf8_lossy(req.body()).contains("a=sendonly");
                b = b.body("application/sdp", self.sdp(hold));
            }
            let Ok(resp) = b.build(&mut self.ids) else { return };
            if ep.respond(now, tx, resp.clone()).is_err() {
                continue;
            }
            if (200..300).contains(&status) && tag == self.local_tag {
                let t1 = ep.config().timers.t1;
                self.pending_2xx = Some((tx, resp, now + t1, t1, now + t1 * 64));
                self.record.established = true;
            }
        }
    }
}

impl NodeApp for Phone {
    fn on_event(&mut self, now: Time, ep: &mut Endpoint, event: &Event) {
        match event {
            Event::Request { tx, request, source } => self.on_request(now, ep, *tx, request, *source),
            Event::Response { tx, response } => self.on_response(now, ep, *tx, response),
            Event::Ack { request, .. } => {
                self.record.acks_received += 1;
                if self.pending_2xx.as_ref().is_some_and(|p| p.1.cseq().seq == request.cseq().seq) {
                    self.pending_2xx = None;
                }
                self.remember_sdp(request.body());
            }
            Event::Cancelled { tx } => {
                let _ = ep.reply(now, *tx, 487, Vec::new());
                self.answers.clear();
                self.record.ended = true;
            }
            Event::Failed { tx, reason } => {
                if Some(*tx) == self.invite_tx {
                    self.record.invite_finals.push(reason.status());
                }
                if self.refresh_tx.as_ref().is_some_and(|(t, _)| t == tx) {
                    self.refresh_tx = None;
                    self.record.refresh_finals.push(reason.status());
                }
            }
            Event::ServerFailed { .. } => {}
        }
    }

    fn poll_timeout(&mut self) -> Option<Time> {
        let p = self.pending_2xx.as_ref().map(|p| p.2.min(p.4));
        [self.actions.first().map(|(t, _)| *t), self.answers.iter().map(|a| a.0).min(), p, self.retry_at.as_ref().map(|r| r.0)]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Time, ep: &mut Endpoint) {
        while self.actions.first().is_some_and(|(t, _)| *t <= now) {
            let (_, a) = self.actions.remove(0);
            self.start(now, ep, a);
        }
        self.send_answers(now, ep);
        if let Some((tx, resp, next, interval, give_up)) = self.pending_2xx.clone() {
            if give_up <= now {
                self.pending_2xx = None;
            } else if next <= now {
                let _ = ep.respond(now, tx, resp.clone());
                let i = (interval * 2).min(ep.config().timers.t2);
                self.pending_2xx = Some((tx, resp, now + i, i, give_up));
            }
        }
        if self.retry_at.as_ref().is_some_and(|r| r.0 <= now) {
            if let Some((_, a)) = self.retry_at.take() {
                self.start(now, ep, a);
            }
        }
    }
}
