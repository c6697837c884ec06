//! Building requests (RFC 3261 §8.1.1) and responses (§8.2.6).
//!
//! Random parts (branch, tag, Call-ID) come from an [`IdSource`] the caller passes in,
//! so that with a seeded source every built message is byte-identical from run to run.
//! What is built here is printed canonically: full header names, one space after `:`.

use crate::error::{ErrorKind, ParseError};
use crate::header::{Header, HeaderName, Headers};
use crate::message::{is_call_id, Core, MediaType};
use crate::message::{Request, Response};
use crate::name_addr::Contacts;
use crate::name_addr::NameAddr;
use crate::text::Text;
use crate::uri::{Host, Uri};
use crate::via::{CSeq, Method, Transport, Via};
use bytes::{BufMut, Bytes, BytesMut};

/// The RFC 3261 §8.1.1.7 magic cookie that starts every branch we generate.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Where generated identifiers come from.
///
/// Only [`IdSource::next_u64`] is required; the engine may override the others, e.g. to
/// encode its shard number in every branch, tag and Call-ID it creates.
pub trait IdSource {
    /// 64 fresh random bits.
    fn next_u64(&mut self) -> u64;

    /// A branch: the magic cookie and 64 random bits (§8.1.1.7).
    fn branch(&mut self) -> String {
        let mut s = String::with_capacity(BRANCH_COOKIE.len() + 16);
        s.push_str(BRANCH_COOKIE);
        crate::digits::push_hex16(&mut s, self.next_u64());
        s
    }

    /// A From/To tag with 64 random bits (§19.3 asks for at least 32).
    fn tag(&mut self) -> String {
        let mut s = String::with_capacity(16);
        crate::digits::push_hex16(&mut s, self.next_u64());
        s
    }

    /// A Call-ID with 128 random bits (§8.1.1.4).
    fn call_id(&mut self) -> String {
        let mut s = String::with_capacity(32);
        crate::digits::push_hex16(&mut s, self.next_u64());
        crate::digits::push_hex16(&mut s, self.next_u64());
        s
    }
}

/// A seeded generator (SplitMix64): reproducible identifiers for tests and for an
/// engine that owns its seed. Not for secrets (nonces use a keyed hash elsewhere).
#[derive(Debug, Clone)]
pub struct SeededIds(u64);

impl SeededIds {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SeededIds {
        SeededIds(seed)
    }
}

impl IdSource for SeededIds {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The reason phrase RFC 3261 §21 (and RFC 3311, 3329, 4028, 5079, 6228) gives a code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Builds a new request outside a dialog (§8.1.1).
///
/// ```
/// use sip_message::{IdSource, Method, NameAddr, RequestBuilder, SeededIds, Transport, Uri};
/// let mut ids = SeededIds::new(7);
/// let req = RequestBuilder::new(Method::Options, Uri::parse_str("sip:bob@example.com").unwrap())
///     .from(NameAddr::new(Uri::parse_str("sip:alice@example.org").unwrap()))
///     .via(Transport::Udp, "192.0.2.1".parse::<std::net::IpAddr>().unwrap().into(), Some(5060))
///     .build(&mut ids)
///     .unwrap();
/// assert!(req.via().has_rfc3261_branch());
/// assert!(req.from().tag().is_some());
/// assert_eq!(req.max_forwards(), Some(70));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    uri: Uri,
    from: Option<NameAddr>,
    to: Option<NameAddr>,
    call_id: Option<String>,
    cseq: u32,
    max_forwards: u32,
    via: Option<(Transport, Host, Option<u16>)>,
    contact: Option<NameAddr>,
    tail: Tail,
}

/// What both builders put after the rows they build themselves: the caller's extra rows,
/// then Content-Type and the body.
#[derive(Debug, Clone, Default)]
struct Tail {
    extra: Vec<Header>,
    body: Option<(String, Bytes)>,
}

impl Tail {
    /// Appends the extra rows and Content-Type; returns the body.
    fn append_to(self, h: &mut Headers) -> Bytes {
        for x in self.extra {
            h.push(x);
        }
        match self.body {
            Some((ct, b)) => {
                h.push(Header::new(HeaderName::ContentType, Bytes::from(ct)));
                b
            }
            None => Bytes::new(),
        }
    }
}

impl RequestBuilder {
    /// A request for `method` to `uri`. Defaults: To is the Request-URI (§8.1.1.2),
    /// a fresh Call-ID, CSeq 1, Max-Forwards 70 (§8.1.1.6).
    pub fn new(method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder {
            method,
            uri,
            from: None,
            to: None,
            call_id: None,
            cseq: 1,
            max_forwards: 70,
            via: None,
            contact: None,
            tail: Tail::default(),
        }
    }

    /// From (required); a tag is added if it has none (§8.1.1.3).
    pub fn from(mut self, from: NameAddr) -> Self {
        self.from = Some(from);
        self
    }

    /// To, when it should differ from the Request-URI.
    pub fn to(mut self, to: NameAddr) -> Self {
        self.to = Some(to);
        self
    }

    /// A given Call-ID instead of a fresh one.
    pub fn call_id(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = Some(call_id.into());
        self
    }

    /// The CSeq number (the method is the request's).
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = seq;
        self
    }

    /// Max-Forwards (70 unless set).
    pub fn max_forwards(mut self, n: u32) -> Self {
        self.max_forwards = n;
        self
    }

    /// Our sent-by (required): the Via gets a fresh branch (§8.1.1.7).
    pub fn via(mut self, transport: Transport, host: Host, port: Option<u16>) -> Self {
        self.via = Some((transport, host, port));
        self
    }

    /// Contact (§8.1.1.8: required in requests that can establish a dialog).
    pub fn contact(mut self, contact: NameAddr) -> Self {
        self.contact = Some(contact);
        self
    }

    /// Any further header row, printed after the ones above.
    pub fn header(mut self, h: Header) -> Self {
        self.tail.extra.push(h);
        self
    }

    /// A body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.tail.body = Some((content_type.to_owned(), body));
        self
    }

    /// Builds the request. Fails with `MissingHeader` when From or Via was not given.
    pub fn build(self, ids: &mut impl IdSource) -> Result<Request, ParseError> {
        let mut h = Headers::with_capacity(9 + self.tail.extra.len());
        let mut typed_via = None;
        if let Some((transport, host, port)) = self.via {
            let udp = transport == Transport::Udp;
            let mut via = Via::new(transport, host, port, &ids.branch());
            // RFC 3581 §3: over UDP ask for the response at the port we sent from, so a
            // NAT between us and the server does not lose it.
            if udp {
                via.params_mut().set("rport", None);
            }
            h.push(Header::new(HeaderName::Via, via.to_bytes()));
            typed_via = Some(via);
        }
        h.push(Header::new(HeaderName::MaxForwards, {
            let mut v = Vec::with_capacity(10);
            crate::digits::push_u64(&mut v, u64::from(self.max_forwards));
            Bytes::from(v)
        }));
        let to = self.to.unwrap_or_else(|| NameAddr::new(without_headers(&self.uri)));
        h.push(Header::new(HeaderName::To, to.to_bytes()));
        let mut typed_from = None;
        if let Some(mut from) = self.from {
            if from.tag().is_none() {
                from = from.with_param("tag", Some(&ids.tag()));
            }
            h.push(Header::new(HeaderName::From, from.to_bytes()));
            typed_from = Some(from);
        }
        let call_id = Bytes::from(self.call_id.unwrap_or_else(|| ids.call_id()));
        h.push(Header::new(HeaderName::CallId, call_id.clone()));
        let cseq = CSeq { seq: self.cseq, method: self.method.clone() };
        h.push(Header::new(HeaderName::CSeq, cseq.to_bytes()));
        let contact = self.contact.inspect(|c| h.push(Header::new(HeaderName::Contact, c.to_bytes())));
        let extra_core = self.tail.extra.iter().any(|x| Core::is_core(x.name()));
        let content_type = self.tail.body.as_ref().map(|(ct, _)| Bytes::from(ct.clone()));
        let body = self.tail.append_to(&mut h);
        // The rows just printed are typed already: the core is made of those values
        // instead of parsing the rows again (which was most of what building cost). Any
        // case the shortcut does not cover, or that would fail, takes the full extraction
        // (its errors included).
        // A host the caller spelled as a domain but that reads back as an address (or
        // does not read back) would make the typed core differ from the parsed one.
        let hosts_round_trip = typed_via.as_ref().is_none_or(|v| v.host().round_trips())
            && [typed_from.as_ref(), Some(&to), contact.as_ref()]
                .into_iter()
                .flatten()
                .all(|a| a.uri().as_sip().is_none_or(|u| u.host().round_trips()));
        let (Some(via), Some(from), false, true, true) = (typed_via, typed_from, extra_core, is_call_id(&call_id), hosts_round_trip) else {
            return Request::from_parts(self.method, self.uri, h, body);
        };
        let content_type = match content_type.map(|ct| MediaType::parse(&ct)) {
            None => None,
            Some(Ok(ct)) => Some(ct),
            Some(Err(_)) => return Request::from_parts(self.method, self.uri, h, body),
        };
        let core = Core {
            via,
            via_count: 1,
            from,
            to,
            call_id: Text::from_checked(call_id),
            cseq,
            max_forwards: Some(self.max_forwards),
            contacts: contact.map_or(Contacts::None, |c| Contacts::List(vec![c])),
            routes: Vec::new(),
            record_routes: Vec::new(),
            content_type,
        };
        Ok(Request::from_core(self.method, self.uri, h, body, core))
    }
}

/// The URI with any `?headers` removed (they never go into To or a Request-URI).
fn without_headers(uri: &Uri) -> Uri {
    let mut u = uri.clone();
    if let Uri::Sip(s) = &mut u {
        s.clear_headers();
    }
    u
}

/// Builds a response to a request (§8.2.6).
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    request: &'a Request,
    status: u16,
    reason: Option<Bytes>,
    to_tag: Option<String>,
    tail: Tail,
}

impl Request {
    /// Starts a response to this request: every Via row copied in order, From, Call-ID,
    /// CSeq copied, To copied with our tag added when it has none (except on 100, §8.2.6.2),
    /// and for 100 Trying the Timestamp copied (§8.2.6.1).
    pub fn reply(&self, status: u16) -> ResponseBuilder<'_> {
        ResponseBuilder { request: self, status, reason: None, to_tag: None, tail: Tail::default() }
    }
}

impl ResponseBuilder<'_> {
    /// A reason phrase instead of the standard one.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(Bytes::copy_from_slice(reason.as_bytes()));
        self
    }

    /// The To tag to add, so that every response of one dialog carries the same tag;
    /// without it a fresh tag is drawn.
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }

    /// A further header row (Allow, Accept, Unsupported, Contact …).
    pub fn header(mut self, h: Header) -> Self {
        self.tail.extra.push(h);
        self
    }

    /// A body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.tail.body = Some((content_type.to_owned(), body));
        self
    }

    /// Builds the response.
    pub fn build(self, ids: &mut impl IdSource) -> Result<Response, ParseError> {
        let req = self.request;
        let mut h = Headers::with_capacity(6 + req.via_count() + self.tail.extra.len());
        for row in req.headers().get_all(HeaderName::Via) {
            h.push(Header::new(HeaderName::Via, row.value_bytes()));
        }
        for name in [HeaderName::From, HeaderName::CallId, HeaderName::CSeq] {
            if let Some(row) = req.headers().get(name) {
                h.push(Header::new(name, row.value_bytes()));
            }
        }
        let mut to = None;
        if let Some(row) = req.headers().get(HeaderName::To) {
            let value = if req.to().tag().is_some() || self.status == 100 {
                to = Some(req.to().clone());
                row.value_bytes()
            } else {
                let tag = self.to_tag.unwrap_or_else(|| ids.tag());
                let mut v = BytesMut::with_capacity(row.value().len() + 5 + tag.len());
                v.put_slice(row.value());
                v.put_slice(b";tag=");
                v.put_slice(tag.as_bytes());
                v.freeze()
            };
            h.push(Header::new(HeaderName::To, value));
        }
        if self.status == 100 {
            if let Some(ts) = req.headers().get(HeaderName::Timestamp) {
                h.push(Header::new(HeaderName::Timestamp, ts.value_bytes()));
            }
        }
        // Contact rows (our 18x and 2xx carry one) are parsed on their own below; any other
        // core row among the extras needs the full extraction.
        let extra_core = self.tail.extra.iter().any(|x| Core::is_core(x.name()) && x.name() != HeaderName::Contact);
        let content_type = self.tail.body.as_ref().map(|(ct, _)| Bytes::from(ct.clone()));
        let body = self.tail.append_to(&mut h);
        let reason = self.reason.unwrap_or_else(|| Bytes::from_static(reason_phrase(self.status).as_bytes()));
        if extra_core {
            return Response::from_parts(self.status, reason, h, body);
        }
        // The copied rows are the request's, already typed: only the To (tag added) and a
        // Content-Type need parsing, not the whole header section again.
        // Only the extras can hold Contact rows (none is copied from the request); they
        // are read first, as the full extraction would.
        let mut contacts = Contacts::None;
        for row in h.get_all(HeaderName::Contact) {
            contacts = Core::add_contact(contacts, row)?;
        }
        let to = match to {
            Some(t) => t,
            None => match h.get(HeaderName::To) {
                Some(row) => NameAddr::parse(&row.value_bytes()).map_err(|_| ParseError::new(ErrorKind::BadHeader(HeaderName::To), 0))?,
                None => return Response::from_parts(self.status, reason, h, body),
            },
        };
        let content_type = match content_type {
            Some(ct) => Some(MediaType::parse(&ct).map_err(|_| ParseError::new(ErrorKind::BadHeader(HeaderName::ContentType), 0))?),
            None => None,
        };
        let core = Core {
            via: req.via().clone(),
            via_count: req.via_count(),
            from: req.from().clone(),
            to,
            call_id: req.call_id().clone(),
            cseq: req.cseq().clone(),
            max_forwards: None,
            contacts,
            routes: Vec::new(),
            record_routes: Vec::new(),
            content_type,
        };
        Response::from_core(self.status, reason, h, body, core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, SipUri};

    fn invite(ids: &mut SeededIds) -> Request {
        RequestBuilder::new(Method::Invite, Uri::parse_str("sip:bob@example.com").expect("uri"))
            .from(NameAddr::new(Uri::parse_str("sip:alice@example.org").expect("uri")).with_display_name("Alice"))
            .via(Transport::Udp, Host::Ipv4([192, 0, 2, 1].into()), Some(5060))
            .contact(NameAddr::new(Uri::parse_str("sip:alice@192.0.2.1:5060").expect("uri")))
            .header(Header::new(HeaderName::Timestamp, "54"))
            .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
            .build(ids)
            .expect("builds")
    }

    #[test]
    fn request_is_canonical_and_reproducible() {
        let a = invite(&mut SeededIds::new(1)).to_bytes();
        let b = invite(&mut SeededIds::new(1)).to_bytes();
        assert_eq!(a, b);
        assert_ne!(a, invite(&mut SeededIds::new(2)).to_bytes());
        let text = String::from_utf8(a.to_vec()).expect("utf8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "INVITE sip:bob@example.com SIP/2.0");
        assert!(lines[1].starts_with("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"), "{}", lines[1]);
        assert_eq!(lines[2], "Max-Forwards: 70");
        assert_eq!(lines[3], "To: <sip:bob@example.com>");
        assert!(lines[4].starts_with("From: \"Alice\" <sip:alice@example.org>;tag="));
        assert!(lines[5].starts_with("Call-ID: "));
        assert_eq!(lines[6], "CSeq: 1 INVITE");
        assert_eq!(lines[7], "Contact: <sip:alice@192.0.2.1:5060>");
        assert_eq!(lines[9], "Content-Type: application/sdp");
        assert_eq!(lines[10], "Content-Length: 5");
        assert!(text.ends_with("\r\n\r\nv=0\r\n"));
        // It reads back as what was built.
        let again = Message::parse(a).expect("reparses");
        assert_eq!(again, Message::Request(invite(&mut SeededIds::new(1))));
    }

    /// The core a built request carries (made from the typed values, not parsed) is what
    /// parsing the printed request gives, field by field; in debug builds
    /// `Request::from_core` also checks it against a full extraction. A domain spelling
    /// an IPv4 address takes the full extraction (it reads back as an address).
    #[test]
    fn built_core_is_the_parsed_core() {
        let uri = |s: &str| Uri::parse_str(s).expect("uri");
        let cases = vec![
            invite(&mut SeededIds::new(3)),
            RequestBuilder::new(Method::Bye, uri("sips:bob@[2001:db8::1]:5061;transport=tls"))
                .from(NameAddr::new(uri("sip:a@example.org")).with_display_name("A \"quoted\" \\ name").with_param("tag", Some("t1")))
                .to(NameAddr::new(uri("sip:b@example.net;user=phone")).with_param("tag", Some("t2")))
                .call_id("abc@host")
                .cseq(7)
                .max_forwards(0)
                .via(Transport::Tcp, Host::Ipv6("2001:db8::2".parse().expect("ip")), None)
                .header(Header::new(HeaderName::UserAgent, "x"))
                .body("application/sdp; charset=utf-8", Bytes::from_static(b"v=0\r\n"))
                .build(&mut SeededIds::new(4))
                .expect("builds"),
            RequestBuilder::new(Method::Options, uri("sip:example.com"))
                .from(NameAddr::new(uri("sip:anonymous@anonymous.invalid")))
                .via(Transport::Udp, Host::Domain("host.example".into()), Some(5070))
                .contact(NameAddr::new(uri("sip:me@192.0.2.1;ob")).with_param("expires", Some("60")))
                .build(&mut SeededIds::new(5))
                .expect("builds"),
            RequestBuilder::new(Method::Options, uri("sip:example.com"))
                .from(NameAddr::new(Uri::Sip(SipUri::new(false, Host::Domain("192.0.2.8".into())))))
                .via(Transport::Udp, Host::Domain("192.0.2.7".into()), Some(5070))
                .build(&mut SeededIds::new(6))
                .expect("builds"),
        ];
        for built in cases {
            let Ok(Message::Request(parsed)) = Message::parse(built.to_bytes()) else { panic!("reparses") };
            assert_eq!(built.via(), parsed.via());
            assert_eq!(built.via_count(), parsed.via_count());
            assert_eq!(built.from(), parsed.from());
            assert_eq!(built.to(), parsed.to());
            assert_eq!(built.call_id(), parsed.call_id());
            assert_eq!(built.cseq(), parsed.cseq());
            assert_eq!(built.max_forwards(), parsed.max_forwards());
            assert_eq!(built.contacts(), parsed.contacts());
            assert_eq!(built.content_type(), parsed.content_type());
            assert_eq!(built.routes(), parsed.routes());
        }
    }

    #[test]
    fn missing_from_or_via_is_an_error() {
        let uri = Uri::parse_str("sip:bob@example.com").expect("uri");
        let e = RequestBuilder::new(Method::Options, uri.clone())
            .via(Transport::Tcp, Host::Ipv4([127, 0, 0, 1].into()), None)
            .build(&mut SeededIds::new(0));
        assert_eq!(e.err().map(|e| e.kind()), Some(crate::ErrorKind::MissingHeader(HeaderName::From)));
        let e = RequestBuilder::new(Method::Options, uri)
            .from(NameAddr::new(Uri::parse_str("sip:a@b").expect("uri")))
            .build(&mut SeededIds::new(0));
        assert_eq!(e.err().map(|e| e.kind()), Some(crate::ErrorKind::MissingHeader(HeaderName::Via)));
    }

    #[test]
    fn response_copies_per_8_2_6() {
        let wire = b"INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP p1;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bKb, SIP/2.0/UDP p3;branch=z9hG4bKc\r\nTo: sip:bob@example.com\r\nf: <sip:a@b>;tag=x\r\ni: cid@h\r\nCSeq: 4 INVITE\r\nTimestamp: 54 0.5\r\nContent-Length: 0\r\n\r\n";
        let Ok(Message::Request(req)) = Message::parse(Bytes::from_static(wire)) else { panic!("parse") };
        let mut ids = SeededIds::new(3);
        let trying = req.reply(100).build(&mut ids).expect("100");
        assert_eq!(trying.to().tag(), None);
        assert_eq!(trying.headers().get(HeaderName::Timestamp).map(|h| h.value_bytes()), Some(Bytes::from_static(b"54 0.5")));
        let ok = req.reply(180).to_tag("t1").build(&mut ids).expect("180");
        assert_eq!(ok.to().tag(), Some("t1"));
        assert_eq!(ok.via_count(), 3);
        let branches: Vec<String> = ok.vias().expect("vias").iter().map(|v| v.branch().unwrap_or("").to_owned()).collect();
        assert_eq!(branches, ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]);
        assert_eq!(ok.call_id(), "cid@h");
        assert_eq!(ok.cseq(), req.cseq());
        assert_eq!(ok.from(), req.from());
        assert!(ok.headers().get(HeaderName::Timestamp).is_none());
        let text = ok.to_bytes();
        assert!(text.starts_with(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKa\r\n"));
        let ok2 = req.reply(486).build(&mut SeededIds::new(3)).expect("486");
        assert!(ok2.to().tag().is_some_and(|t| t.len() == 16));
        assert_eq!(ok2.reason().as_ref(), b"Busy Here");
    }

    #[test]
    fn stamped_top_via_reaches_the_response() {
        let wire = b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1;rport;branch=z9hG4bKa, SIP/2.0/TCP h2;branch=z9hG4bKb\r\nVia: SIP/2.0/UDP h3;branch=z9hG4bKc\r\nTo: <sip:b@example.com>\r\nFrom: <sip:a@b>;tag=x\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let Ok(Message::Request(mut req)) = Message::parse(Bytes::from_static(wire)) else { panic!("parse") };
        let mut via = req.via().clone();
        via.params_mut().set("received", Some(Bytes::from_static(b"192.0.2.7")));
        via.params_mut().set("rport", Some(Bytes::from_static(b"4000")));
        req.set_top_via(via);
        assert_eq!(req.via().received(), Some("192.0.2.7"));
        assert_eq!(req.via_count(), 3);
        let ok = req.reply(200).build(&mut SeededIds::new(1)).expect("200");
        let vias = ok.vias().expect("vias");
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].rport(), Some(Some(4000)));
        assert_eq!(vias[0].received(), Some("192.0.2.7"));
        assert_eq!(vias[1].branch(), Some("z9hG4bKb"));
        assert_eq!(vias[2].branch(), Some("z9hG4bKc"));
    }
}
