//! Dialogs (RFC 3261 §12): the state two user agents share between an INVITE's first
//! response with a To tag and the BYE, and how requests inside one are built.
//!
//! A [`Dialog`] is plain data plus the §12 procedures: creation by the UAS (§12.1.1) and
//! by the UAC (§12.1.2), building a request inside it (§12.2.1.1, including the ACK for a
//! 2xx of §13.2.2.4), checking a request received inside it (§12.2.2: CSeq order, target
//! refresh) and where its requests go. It sends nothing itself: the call layer passes
//! what it builds to the transaction layer.

use crate::transport::{Flow, Transport};
use bytes::Bytes;
use sip_message::{Header, HeaderName, Host, IdSource, Method, NameAddr, Request, RequestBuilder, Response, Uri};
use std::net::SocketAddr;

/// Which side of the dialog we are (§12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the request that created it.
    Uac,
    /// We received it.
    Uas,
}

/// §12: a dialog created by a provisional response is early; a 2xx confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a request inside a dialog was refused (§12.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDialogError {
    /// Its CSeq is lower than the last one received: answer 500 (§12.2.2).
    CSeqOutOfOrder,
}

/// One dialog's state (§12.1.1, §12.1.2).
#[derive(Debug, Clone)]
pub struct Dialog {
    role: Role,
    state: DialogState,
    call_id: String,
    /// Our URI with our tag: From when we are the UAC, To when we are the UAS.
    local: NameAddr,
    /// Theirs with their tag.
    remote: NameAddr,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    /// Where requests go when the target cannot be sent to directly (a host name, or a
    /// peer behind NAT): the flow the dialog was created over.
    flow: Flow,
    /// Send to `flow` always (NAT: the Contact is not reachable, the source is).
    pin_flow: bool,
}

impl Dialog {
    /// The UAS side, from the request and the To tag of our response (§12.1.1): the route
    /// set is the Record-Route rows in order, the remote target the request's Contact.
    pub fn uas(request: &Request, local_tag: &str, source: Flow) -> Dialog {
        let local = detach(&with_tag(request.to(), local_tag));
        Dialog {
            role: Role::Uas,
            state: DialogState::Early,
            call_id: request.call_id().as_str().to_owned(),
            local,
            remote: detach(request.from()),
            local_seq: 0,
            remote_seq: Some(request.cseq().seq),
            remote_target: detach_uri(&contact_uri(request.contacts().addrs()).unwrap_or_else(|| request.from().uri().clone())),
            route_set: request.record_routes().iter().map(detach).collect(),
            flow: source,
            pin_flow: false,
        }
    }

    /// The UAC side, from our request and a response carrying a To tag (§12.1.2): the
    /// route set is the Record-Route rows in reverse, the remote target the Contact.
    /// `None` when the response has no To tag (it creates no dialog).
    pub fn uac(request: &Request, response: &Response, flow: Flow) -> Option<Dialog> {
        response.to().tag()?;
        let mut route_set: Vec<NameAddr> = response.record_routes().iter().map(detach).collect();
        route_set.reverse();
        Some(Dialog {
            role: Role::Uac,
            state: if (200..300).contains(&response.status()) { DialogState::Confirmed } else { DialogState::Early },
            call_id: request.call_id().as_str().to_owned(),
            local: detach(request.from()),
            remote: detach(response.to()),
            local_seq: request.cseq().seq,
            remote_seq: None,
            remote_target: detach_uri(&contact_uri(response.contacts().addrs()).unwrap_or_else(|| request.uri().clone())),
            route_set,
            flow,
            pin_flow: false,
        })
    }

    /// Always send to the flow the dialog was created over (a peer behind NAT).
    pub fn pin_flow(&mut self, pin: bool) {
        self.pin_flow = pin;
    }

    /// Our side.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// A 2xx confirms the dialog (§12.1); a 2xx to a UAC may also refresh the target and,
    /// for the first one, carries the route set (§12.1.2), which is kept from the 1xx
    /// otherwise per §12.2.1.2 only targets are refreshed.
    pub fn confirm(&mut self, response: Option<&Response>) {
        if let Some(r) = response {
            if self.state == DialogState::Early && self.role == Role::Uac {
                let mut rs: Vec<NameAddr> = r.record_routes().iter().map(detach).collect();
                rs.reverse();
                self.route_set = rs;
            }
            if let Some(u) = contact_uri(r.contacts().addrs()) {
                self.remote_target = detach_uri(&u);
            }
        }
        self.state = DialogState::Confirmed;
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Our tag.
    pub fn local_tag(&self) -> &str {
        self.local.tag().unwrap_or_default()
    }

    /// Their tag (empty for an RFC 2543 peer that sent none).
    pub fn remote_tag(&self) -> &str {
        self.remote.tag().unwrap_or_default()
    }

    /// Our URI (with tag).
    pub fn local_uri(&self) -> &NameAddr {
        &self.local
    }

    /// Their URI (with tag).
    pub fn remote_uri(&self) -> &NameAddr {
        &self.remote
    }

    /// Where their requests should reach (§12.1: the Contact).
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// The route set.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// The last CSeq number we used.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// §12.2.2: a request inside the dialog. A CSeq lower than the last one is refused
    /// (500); the number is remembered; an INVITE or UPDATE with a Contact refreshes the
    /// remote target (§12.2.2, RFC 3311 §5.2). ACK and CANCEL carry the INVITE's number
    /// and are not checked.
    pub fn receive_request(&mut self, request: &Request) -> Result<(), InDialogError> {
        let m = request.method();
        if matches!(m, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = request.cseq().seq;
        if let Some(last) = self.remote_seq {
            if seq <= last {
                return Err(InDialogError::CSeqOutOfOrder);
            }
        }
        self.remote_seq = Some(seq);
        if matches!(m, Method::Invite | Method::Update) {
            if let Some(u) = contact_uri(request.contacts().addrs()) {
                self.remote_target = detach_uri(&u);
            }
        }
        Ok(())
    }

    /// A 2xx to a target refresh we sent (re-INVITE, UPDATE) refreshes the target
    /// (§12.2.1.2).
    pub fn receive_refresh_response(&mut self, response: &Response) {
        if let Some(u) = contact_uri(response.contacts().addrs()) {
            self.remote_target = detach_uri(&u);
        }
    }

    /// Builds a request inside the dialog (§12.2.1.1): Request-URI the remote target,
    /// Route the route set (loose routing), From/To/Call-ID of the dialog, the next
    /// CSeq, our Via sent-by and Contact. The caller adds a body and extra rows and hands
    /// it to the transaction layer with [`Dialog::destination`].
    pub fn request(&mut self, method: Method, sent_by: (Transport, Host, u16), contact: &NameAddr) -> RequestBuilder {
        self.local_seq = self.local_seq.wrapping_add(1).max(1);
        self.builder(method, self.local_seq, sent_by, Some(contact))
    }

    /// The ACK for a 2xx to the INVITE with CSeq number `invite_seq` (§13.2.2.4): the
    /// same number, the route set, a fresh branch.
    pub fn ack(&self, invite_seq: u32, sent_by: (Transport, Host, u16), body: Option<Bytes>, ids: &mut impl IdSource) -> Option<Request> {
        let mut b = self.builder(Method::Ack, invite_seq, sent_by, None);
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            b = b.body("application/sdp", body);
        }
        b.build(ids).ok()
    }

    fn builder(&self, method: Method, seq: u32, sent_by: (Transport, Host, u16), contact: Option<&NameAddr>) -> RequestBuilder {
        // §12.2.1.1: with a loose first route (lr) the Request-URI is the remote target;
        // a strict router's URI would go first, and is treated as loose here (RFC 3261's
        // strict routing is from RFC 2543 and is not deployed).
        let (transport, host, port) = sent_by;
        let mut b = RequestBuilder::new(method, self.remote_target.clone())
            .from(self.local.clone())
            .to(self.remote.clone())
            .call_id(self.call_id.clone())
            .cseq(seq)
            .via(transport.to_message(), host, Some(port));
        for r in &self.route_set {
            b = b.header(Header::new(HeaderName::Route, r.to_bytes()));
        }
        if let Some(c) = contact {
            b = b.contact(c.clone());
        }
        b
    }

    /// Where a request in this dialog goes: the first route, else the remote target,
    /// when it names an IP address; otherwise (host names, NAT) the flow the dialog was
    /// created over. DNS (RFC 3263) is not done here.
    pub fn destination(&self) -> Flow {
        if self.pin_flow {
            return self.flow;
        }
        let uri = self.route_set.first().map(NameAddr::uri).unwrap_or(&self.remote_target);
        match uri_addr(uri, self.flow.transport) {
            Some(a) if a == self.flow.remote => self.flow,
            Some(a) => Flow { remote: a, connection: None, ..self.flow },
            None => self.flow,
        }
    }

    /// Whether `request` (with a To tag) belongs to this dialog (§12.2.2: Call-ID, our
    /// tag in To, theirs in From).
    pub fn matches(&self, request: &Request) -> bool {
        request.call_id().as_str() == self.call_id
            && request.to().tag() == self.local.tag()
            && request.from().tag().unwrap_or_default() == self.remote_tag()
    }
}

/// A copy that owns its bytes: a parsed URI is slices of the datagram it came in, and a
/// dialog that kept those would keep the whole datagram (and its SDP) alive for the call.
fn detach(n: &NameAddr) -> NameAddr {
    NameAddr::parse(&n.to_bytes()).unwrap_or_else(|_| n.clone())
}

fn detach_uri(u: &Uri) -> Uri {
    let mut out = Vec::new();
    u.write(&mut out);
    Uri::parse(&Bytes::from(out)).unwrap_or_else(|_| u.clone())
}

fn with_tag(n: &NameAddr, tag: &str) -> NameAddr {
    if n.tag().is_some() {
        n.clone()
    } else {
        n.clone().with_param("tag", Some(tag))
    }
}

fn contact_uri(contacts: &[NameAddr]) -> Option<Uri> {
    contacts.first().map(|c| c.uri().clone())
}

/// The socket address a SIP URI names, when its host is an IP address (default port per
/// transport, §19.1.2).
pub fn uri_addr(uri: &Uri, transport: Transport) -> Option<SocketAddr> {
    let s = uri.as_sip()?;
    let ip = s.host().ip()?;
    let default = if s.is_secure() { 5061 } else { transport.default_port() };
    Some(SocketAddr::new(ip, s.port().unwrap_or(default)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location
mod tests {
    use super::*;
    use sip_message::{Message, SeededIds};

    fn flow(remote: &str) -> Flow {
        Flow { transport: Transport::Udp, local: "127.0.0.1:5060".parse().unwrap(), remote: remote.parse().unwrap(), connection: None }
    }

    fn req(s: &str) -> Request {
        match Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap() {
            Message::Request(r) => r,
            _ => panic!(),
        }
    }

    fn resp(s: &str) -> Response {
        match Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap() {
            Message::Response(r) => r,
            _ => panic!(),
        }
    }

    const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\n\
        Record-Route: <sip:p1.example.com;lr>\nRecord-Route: <sip:192.0.2.9:5080;lr>\n\
        From: <sip:alice@a.example>;tag=a1\nTo: <sip:bob@127.0.0.1>\nCall-ID: c1\nCSeq: 5 INVITE\n\
        Contact: <sip:alice@10.0.0.1:5062>\nContent-Length: 0\n\n";

    #[test]
    fn uas_dialog_follows_12_1_1() {
        let r = req(INVITE);
        let mut d = Dialog::uas(&r, "b2", flow("10.0.0.1:5062"));
        assert_eq!(d.local_tag(), "b2");
        assert_eq!(d.remote_tag(), "a1");
        assert_eq!(d.route_set().len(), 2);
        assert_eq!(d.route_set()[0].uri().to_string(), "sip:p1.example.com;lr");
        // A first route with a host name: sent over the flow it came from.
        assert_eq!(d.destination().remote, "10.0.0.1:5062".parse().unwrap());
        let mut ids = SeededIds::new(1);
        let contact = NameAddr::new(Uri::parse_str("sip:sipbridge@127.0.0.1:5060").unwrap());
        let bye = d.request(Method::Bye, (Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), 5060), &contact).build(&mut ids).unwrap();
        assert_eq!(bye.uri().to_string(), "sip:alice@10.0.0.1:5062");
        assert_eq!(bye.from().tag(), Some("b2"));
        assert_eq!(bye.to().tag(), Some("a1"));
        assert_eq!(bye.routes().len(), 2);
        assert_eq!(bye.cseq().seq, 1);
        assert!(d.matches(&req(&INVITE.replace("To: <sip:bob@127.0.0.1>", "To: <sip:bob@127.0.0.1>;tag=b2"))));
    }

    #[test]
    fn cseq_order_and_target_refresh() {
        let r = req(INVITE);
        let mut d = Dialog::uas(&r, "b2", flow("10.0.0.1:5062"));
        let re = req(&INVITE.replace("CSeq: 5", "CSeq: 6").replace("10.0.0.1:5062>", "10.0.0.7:5070>"));
        assert_eq!(d.receive_request(&re), Ok(()));
        assert_eq!(d.remote_target().to_string(), "sip:alice@10.0.0.7:5070");
        assert_eq!(d.receive_request(&re), Err(InDialogError::CSeqOutOfOrder));
        let bye = req(&INVITE.replace("INVITE sip", "BYE sip").replace("CSeq: 5 INVITE", "CSeq: 4 BYE"));
        assert_eq!(d.receive_request(&bye), Err(InDialogError::CSeqOutOfOrder));
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_the_invite_cseq() {
        let r = req(INVITE);
        let ok = resp(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\nRecord-Route: <sip:192.0.2.1;lr>\n\
             Record-Route: <sip:192.0.2.2:5070;lr>\nFrom: <sip:alice@a.example>;tag=a1\nTo: <sip:bob@127.0.0.1>;tag=b9\n\
             Call-ID: c1\nCSeq: 5 INVITE\nContact: <sip:bob@192.0.2.50>\nContent-Length: 0\n\n",
        );
        let d = Dialog::uac(&r, &ok, flow("192.0.2.1:5060")).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.route_set()[0].uri().to_string(), "sip:192.0.2.2:5070;lr");
        assert_eq!(d.destination().remote, "192.0.2.2:5070".parse().unwrap());
        let mut ids = SeededIds::new(1);
        let ack = d.ack(5, (Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), 5060), None, &mut ids).unwrap();
        assert_eq!(ack.cseq().seq, 5);
        assert_eq!(ack.method(), &Method::Ack);
        assert_eq!(ack.uri().to_string(), "sip:bob@192.0.2.50");
        assert!(ack.via().has_rfc3261_branch());
        assert!(Dialog::uac(&r, &resp("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\nFrom: <sip:alice@a.example>;tag=a1\nTo: <sip:bob@127.0.0.1>\nCall-ID: c1\nCSeq: 5 INVITE\nContent-Length: 0\n\n"), flow("192.0.2.1:5060")).is_none());
    }
}
