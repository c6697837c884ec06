//! The UAS checks of RFC 3261 §8.2 that come before any request reaches the layer
//! above, and the stateless answers to requests that cannot be parsed.

use crate::endpoint::EndpointConfig;
use bytes::Bytes;
use sip_message::{ErrorKind, Header, HeaderName, IdSource, Method, ParseError, RawMessage, StartLine, Uri};
use std::fmt::Write as _;

/// A request refused before the layer above sees it.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub status: u16,
    pub headers: Vec<Header>,
}

impl Rejection {
    fn new(status: u16) -> Rejection {
        Rejection { status, headers: Vec::new() }
    }

    fn with(mut self, name: HeaderName, value: String) -> Rejection {
        self.headers.push(Header::new(name, Bytes::from(value)));
        self
    }
}

/// §8.2.1–§8.2.3, in the RFC's order: method, Request-URI scheme, Require, body type;
/// plus an INVITE whose Accept rules out any session description (RFC 4475 `sdp01`).
/// §8.2.1: an unknown method gets 501, a known one we do not do gets 405; both with Allow.
pub(crate) fn check_method(req: &sip_message::Request, cfg: &EndpointConfig) -> Option<Rejection> {
    let method = req.method();
    if cfg.allow.contains(method) {
        return None;
    }
    let status = if matches!(method, Method::Extension(_)) { 501 } else { 405 };
    Some(Rejection::new(status).with(HeaderName::Allow, cfg.allow_header()))
}

pub(crate) fn check(req: &sip_message::Request, cfg: &EndpointConfig) -> Option<Rejection> {
    let method = req.method();
    if let Some(r) = check_method(req, cfg) {
        return Some(r);
    }
    // §8.2.2.1: a Request-URI scheme we do not take gets 416.
    if !matches!(req.uri(), Uri::Sip(_) | Uri::Tel(_)) {
        return Some(Rejection::new(416));
    }
    // §8.2.2.3: Require listing options we do not support gets 420 with Unsupported
    // (never for CANCEL, and ACK is never answered).
    if !matches!(method, Method::Cancel | Method::Ack) {
        let unsupported: Vec<String> = req
            .headers()
            .values(HeaderName::Require)
            .filter_map(|t| std::str::from_utf8(&t).ok().map(str::to_owned))
            .filter(|t| !cfg.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            return Some(Rejection::new(420).with(HeaderName::Unsupported, unsupported.join(", ")));
        }
    }
    // §8.2.3: a body we cannot read gets 415 with Accept (and Accept-Encoding).
    if !req.body().is_empty() {
        if let Some(ct) = req.content_type() {
            let known = cfg.accept.iter().any(|a| a.split_once('/').is_some_and(|(t, s)| ct.is(t, s)));
            if !known {
                return Some(Rejection::new(415).with(HeaderName::Accept, cfg.accept.join(", ")));
            }
        }
        let encodings: Vec<Bytes> = req.headers().values(HeaderName::ContentEncoding).collect();
        if encodings.iter().any(|e| !e.eq_ignore_ascii_case(b"identity")) {
            return Some(Rejection::new(415).with(HeaderName::AcceptEncoding, "identity".into()));
        }
    }
    // §21.4.7: an INVITE whose Accept excludes application/sdp cannot be answered with
    // a session description: 406 with a Warning saying why.
    if matches!(method, Method::Invite) && req.headers().get(HeaderName::Accept).is_some() {
        let takes_sdp = req.headers().values(HeaderName::Accept).any(|range| {
            let r = range.split(|&c| c == b';').next().unwrap_or_default();
            let r = String::from_utf8_lossy(r).trim().to_ascii_lowercase();
            matches!(r.as_str(), "application/sdp" | "application/*" | "*/*")
        });
        if !takes_sdp {
            let w = format!("399 {} \"Accept does not include application/sdp\"", cfg.warn_agent());
            return Some(Rejection::new(406).with(HeaderName::Warning, w));
        }
    }
    None
}

/// The status for a request that failed to parse. A CSeq method mismatch on an unknown
/// method gets 501, which RFC 4475 (`mismatch02`) prefers to 400.
pub(crate) fn status_for(raw: Option<&RawMessage>, err: &ParseError, cfg: &EndpointConfig) -> (u16, Vec<String>) {
    if err.kind() == ErrorKind::CSeqMethodMismatch {
        if let Some(Ok(StartLine::Request { method, .. })) = raw.map(RawMessage::start_line) {
            if matches!(Method::from_token(method), Some(Method::Extension(_))) {
                return (501, vec![format!("Allow: {}", cfg.allow_header())]);
            }
        }
    }
    (err.status(), Vec::new())
}

/// A stateless answer to a request that did not parse (§8.2.6 as far as the rows
/// allow): every Via row, From, To (with a tag), Call-ID and CSeq copied as received, a
/// Warning with the reason (RFC 3261 §20.43, code 399), and nothing else.
pub(crate) fn error_response(raw: &RawMessage, err: &ParseError, cfg: &EndpointConfig, ids: &mut impl IdSource) -> Bytes {
    let (status, extra) = status_for(Some(raw), err, cfg);
    let mut s = String::with_capacity(512);
    let _ = write!(s, "SIP/2.0 {status} {}\r\n", sip_message::reason_phrase(status));
    let copy = [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq];
    for h in raw.headers().iter().filter(|h| copy.contains(&h.name())) {
        let value = String::from_utf8_lossy(h.value());
        let _ = write!(s, "{}: {value}", h.name().as_str());
        if h.name() == HeaderName::To && !has_tag(&h.value_bytes()) {
            let _ = write!(s, ";tag={}", ids.tag());
        }
        s.push_str("\r\n");
    }
    for e in extra {
        s.push_str(&e);
        s.push_str("\r\n");
    }
    let why: String = err.to_string().chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
    let _ = write!(s, "Warning: 399 {} \"{why}\"\r\nServer: {}\r\nContent-Length: 0\r\n\r\n", cfg.warn_agent(), cfg.user_agent);
    Bytes::from(s)
}

/// Whether a To value already has a tag, read leniently when it does not parse.
fn has_tag(v: &Bytes) -> bool {
    match sip_message::NameAddr::parse(v) {
        Ok(na) => na.tag().is_some(),
        Err(_) => {
            let squeezed: String = String::from_utf8_lossy(v).chars().filter(|c| !c.is_whitespace()).collect();
            squeezed.to_ascii_lowercase().contains(";tag=")
        }
    }
}
