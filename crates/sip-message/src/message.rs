//! Requests, responses, and the transaction-critical headers extracted at parse time.

use crate::error::{ErrorKind, ParseError};
use crate::header::{Header, HeaderName, Headers};
use crate::name_addr::{Contacts, NameAddr};
use crate::scan::{self, split_list};
use crate::text::Text;
use crate::uri::{Params, Uri};
use crate::via::{CSeq, Method, Via};
use bytes::Bytes;
use std::io::Write;

/// `type/subtype;params` of Content-Type (§20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `application`, `multipart` …, as received.
    pub top: Text,
    /// `sdp`, `mixed` …, as received.
    pub sub: Text,
    /// Parameters (`boundary=…`).
    pub params: Params,
}

impl MediaType {
    /// Parses `m-type SWS "/" SWS m-subtype *(SWS ";" SWS m-parameter)`.
    pub fn parse(v: &Bytes) -> Result<MediaType, usize> {
        let mut c = scan::Cursor::new(v);
        c.skip_ws();
        let top = c.take_token().ok_or(c.pos)?;
        if !c.eat(b'/') {
            return Err(c.pos);
        }
        c.skip_ws();
        let sub = c.take_token().ok_or(c.pos)?;
        let params = Params::parse(&mut c, scan::is_token, scan::is_token)?;
        c.skip_ws();
        if !c.at_end() {
            return Err(c.pos);
        }
        Ok(MediaType {
            top: Text::from_checked(top),
            sub: Text::from_checked(sub),
            params,
        })
    }

    /// Case-insensitive match on `type/subtype`.
    pub fn is(&self, top: &str, sub: &str) -> bool {
        self.top.eq_ignore_ascii_case(top) && self.sub.eq_ignore_ascii_case(sub)
    }
}

/// The headers every layer needs, extracted once when the message is parsed or built.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub via: Via,
    pub via_count: usize,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: Text,
    pub cseq: CSeq,
    pub max_forwards: Option<u32>,
    pub contacts: Contacts,
    pub routes: Vec<NameAddr>,
    pub record_routes: Vec<NameAddr>,
    pub content_type: Option<MediaType>,
}

fn bad(name: HeaderName, offset: usize) -> ParseError {
    ParseError::new(ErrorKind::BadHeader(name), offset)
}

/// The single row of a single-valued header: missing → `None`, several → error.
fn single<'a>(rows: &[(&'a Header, usize)]) -> Result<Option<(&'a Header, usize)>, ParseError> {
    match rows {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        [first, second, ..] => Err(ParseError::new(ErrorKind::MultipleValues(first.0.name()), second.1)),
    }
}

fn addr_list(rows: &[(&Header, usize)], name: HeaderName) -> Result<Vec<NameAddr>, ParseError> {
    let mut out = Vec::new();
    for (h, off) in rows {
        for item in split_list(h.value()) {
            if item.is_empty() {
                return Err(bad(name, *off));
            }
            out.push(NameAddr::parse(&item).map_err(|_| bad(name, *off))?);
        }
    }
    Ok(out)
}

impl Core {
    /// Extracts and checks the core headers. `offsets[i]` is where row `i` starts.
    pub fn extract(headers: &Headers, offsets: &[usize]) -> Result<Core, ParseError> {
        let off = |i: usize| offsets.get(i).copied().unwrap_or(0);
        let mut vias: Vec<(&Header, usize)> = Vec::new();
        let (mut from, mut to, mut call_id, mut cseq, mut mf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut contact, mut route, mut rr, mut ctype) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, h) in headers.iter().enumerate() {
            let slot = match h.name() {
                HeaderName::Via => &mut vias,
                HeaderName::From => &mut from,
                HeaderName::To => &mut to,
                HeaderName::CallId => &mut call_id,
                HeaderName::CSeq => &mut cseq,
                HeaderName::MaxForwards => &mut mf,
                HeaderName::Contact => &mut contact,
                HeaderName::Route => &mut route,
                HeaderName::RecordRoute => &mut rr,
                HeaderName::ContentType => &mut ctype,
                _ => continue,
            };
            slot.push((h, off(i)));
        }
        let end = offsets.last().copied().unwrap_or(0);
        let missing = |n| ParseError::new(ErrorKind::MissingHeader(n), end);

        // Via: the top value is parsed; every value must at least be non-empty (RFC 4475
        // badinv01). The rest are parsed on demand.
        let (top_row, top_off) = *vias.first().ok_or_else(|| missing(HeaderName::Via))?;
        let mut via_count = 0;
        let mut top = None;
        for (h, o) in &vias {
            for item in split_list(h.value()) {
                if item.is_empty() {
                    return Err(bad(HeaderName::Via, *o));
                }
                if top.is_none() {
                    top = Some(item);
                }
                via_count += 1;
            }
        }
        let top = top.ok_or_else(|| bad(HeaderName::Via, top_off))?;
        let via = Via::parse(&top).map_err(|e| bad(HeaderName::Via, top_off + e.min(top_row.value().len())))?;

        let name_addr = |rows: &[(&Header, usize)], n: HeaderName| -> Result<NameAddr, ParseError> {
            let (h, o) = single(rows)?.ok_or_else(|| missing(n))?;
            NameAddr::parse(h.value()).map_err(|_| bad(n, o))
        };
        let from = name_addr(&from, HeaderName::From)?;
        let to = name_addr(&to, HeaderName::To)?;

        let (cid, cid_off) = single(&call_id)?.ok_or_else(|| missing(HeaderName::CallId))?;
        let cid_v = scan::trim_bytes(cid.value());
        // Call-ID = word [ "@" word ]
        let at = cid_v.iter().filter(|&&c| c == b'@').count();
        if cid_v.is_empty() || at > 1 || !cid_v.iter().all(|&c| scan::is_word(c) || c == b'@') || cid_v[0] == b'@' || cid_v[cid_v.len() - 1] == b'@' {
            return Err(bad(HeaderName::CallId, cid_off));
        }
        let call_id = Text::from_checked(cid_v);

        let (cs, cs_off) = single(&cseq)?.ok_or_else(|| missing(HeaderName::CSeq))?;
        let cseq = CSeq::parse(cs.value()).map_err(|_| bad(HeaderName::CSeq, cs_off))?;

        let max_forwards = match single(&mf)? {
            None => None,
            Some((h, o)) => Some(scan::parse_u32(&scan::trim_bytes(h.value())).ok_or_else(|| bad(HeaderName::MaxForwards, o))?),
        };

        let contacts = if contact.is_empty() {
            Contacts::None
        } else if contact.len() == 1 && scan::trim_bytes(contact[0].0.value()).as_ref() == b"*" {
            Contacts::Star
        } else {
            Contacts::List(addr_list(&contact, HeaderName::Contact)?)
        };
        let routes = addr_list(&route, HeaderName::Route)?;
        let record_routes = addr_list(&rr, HeaderName::RecordRoute)?;
        let content_type = match single(&ctype)? {
            None => None,
            Some((h, o)) => Some(MediaType::parse(h.value()).map_err(|_| bad(HeaderName::ContentType, o))?),
        };
        Ok(Core {
            via,
            via_count,
            from,
            to,
            call_id,
            cseq,
            max_forwards,
            contacts,
            routes,
            record_routes,
            content_type,
        })
    }
}

macro_rules! common_accessors {
    () => {
        /// All header rows, in order.
        pub fn headers(&self) -> &Headers {
            &self.headers
        }
        /// The body (exactly Content-Length octets).
        pub fn body(&self) -> &Bytes {
            &self.body
        }
        /// The top Via, parsed.
        pub fn via(&self) -> &Via {
            &self.core.via
        }
        /// Number of Via values (rows merged).
        pub fn via_count(&self) -> usize {
            self.core.via_count
        }
        /// Every Via value, parsed in order (on demand).
        pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
            let mut out = Vec::with_capacity(self.core.via_count);
            for h in self.headers.get_all(HeaderName::Via) {
                for item in split_list(h.value()) {
                    out.push(Via::parse(&item).map_err(|e| bad(HeaderName::Via, e))?);
                }
            }
            Ok(out)
        }
        /// From.
        pub fn from(&self) -> &NameAddr {
            &self.core.from
        }
        /// To.
        pub fn to(&self) -> &NameAddr {
            &self.core.to
        }
        /// Call-ID.
        pub fn call_id(&self) -> &Text {
            &self.core.call_id
        }
        /// CSeq.
        pub fn cseq(&self) -> &CSeq {
            &self.core.cseq
        }
        /// Max-Forwards, if present (RFC 2543 peers omit it).
        pub fn max_forwards(&self) -> Option<u32> {
            self.core.max_forwards
        }
        /// Contact values.
        pub fn contacts(&self) -> &Contacts {
            &self.core.contacts
        }
        /// Route values in order.
        pub fn routes(&self) -> &[NameAddr] {
            &self.core.routes
        }
        /// Record-Route values in order.
        pub fn record_routes(&self) -> &[NameAddr] {
            &self.core.record_routes
        }
        /// Content-Type, parsed.
        pub fn content_type(&self) -> Option<&MediaType> {
            self.core.content_type.as_ref()
        }
        /// Appends a header row and re-extracts the core if it is a core header.
        pub fn push_header(&mut self, h: Header) -> Result<(), ParseError> {
            let n = h.name();
            self.headers.push(h);
            self.refresh(n)
        }
        /// Inserts a header row at `index` (0 = top; e.g. a new top Via).
        pub fn insert_header(&mut self, index: usize, h: Header) -> Result<(), ParseError> {
            let n = h.name();
            self.headers.insert(index, h);
            self.refresh(n)
        }
        /// Replaces every row of that name with this one.
        pub fn set_header(&mut self, h: Header) -> Result<(), ParseError> {
            let n = h.name();
            self.headers.set(h);
            self.refresh(n)
        }
        /// Removes every row with this name.
        pub fn remove_header(&mut self, name: HeaderName) -> Result<usize, ParseError> {
            let k = self.headers.remove(name);
            self.refresh(name)?;
            Ok(k)
        }
        /// Replaces the body; `content_type` sets (or with `None` removes) Content-Type.
        pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) -> Result<(), ParseError> {
            match content_type {
                Some(ct) => self.headers.set(Header::new(HeaderName::ContentType, Bytes::copy_from_slice(ct.as_bytes()))),
                None => {
                    self.headers.remove(HeaderName::ContentType);
                }
            }
            self.body = body;
            self.refresh(HeaderName::ContentType)
        }
        fn refresh(&mut self, name: HeaderName) -> Result<(), ParseError> {
            if matches!(
                name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
                    | HeaderName::MaxForwards
                    | HeaderName::Contact
                    | HeaderName::Route
                    | HeaderName::RecordRoute
                    | HeaderName::ContentType
            ) {
                self.core = Core::extract(&self.headers, &[])?;
            }
            Ok(())
        }
        /// Appends the message in wire form: the start line canonically, header rows
        /// as received (or canonically if built), Content-Length recomputed from the body.
        pub fn write(&self, out: &mut Vec<u8>) {
            out.reserve(self.body.len() + 64 * self.headers.len() + 64);
            self.write_start_line(out);
            out.extend_from_slice(b"\r\n");
            write_headers(&self.headers, self.body.len(), out);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&self.body);
        }
        /// The wire form as bytes.
        pub fn to_bytes(&self) -> Bytes {
            let mut v = Vec::new();
            self.write(&mut v);
            Bytes::from(v)
        }
    };
}

/// Writes the header rows; Content-Length is emitted (canonically, with the real body
/// length) at the place of the first Content-Length row, or last if there was none.
fn write_headers(headers: &Headers, body_len: usize, out: &mut Vec<u8>) {
    let mut cl_done = false;
    for h in headers {
        if h.name() == HeaderName::ContentLength {
            if !cl_done {
                let _ = write!(out, "Content-Length: {body_len}\r\n");
                cl_done = true;
            }
            continue;
        }
        h.write(out);
        out.extend_from_slice(b"\r\n");
    }
    if !cl_done {
        let _ = write!(out, "Content-Length: {body_len}\r\n");
    }
}

/// Header rows compared by name and unfolded value, in order; Content-Length rows are
/// left out since printing recomputes them.
fn same_headers(a: &Headers, b: &Headers) -> bool {
    let mut x = a.iter().filter(|h| h.name() != HeaderName::ContentLength);
    let mut y = b.iter().filter(|h| h.name() != HeaderName::ContentLength);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) => {
                if p.name() != q.name() || !p.name_text().eq_ignore_ascii_case(q.name_text()) || p.value() != q.value() {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// A SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) core: Core,
}

impl Request {
    /// Assembles a request from parts; the core headers must be present and valid.
    pub fn from_parts(method: Method, uri: Uri, headers: Headers, body: Bytes) -> Result<Request, ParseError> {
        let core = Core::extract(&headers, &[])?;
        Ok(Request {
            method,
            uri,
            headers,
            body,
            core,
        })
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The Request-URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// Replaces the Request-URI.
    pub fn set_uri(&mut self, uri: Uri) {
        self.uri = uri;
    }

    fn write_start_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        self.uri.write(out);
        out.extend_from_slice(b" SIP/2.0");
    }

    common_accessors!();
}

impl PartialEq for Request {
    fn eq(&self, o: &Request) -> bool {
        self.method == o.method && self.uri == o.uri && self.body == o.body && same_headers(&self.headers, &o.headers)
    }
}

/// A SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: Bytes,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) core: Core,
}

impl Response {
    /// Assembles a response from parts; the core headers must be present and valid.
    pub fn from_parts(status: u16, reason: Bytes, headers: Headers, body: Bytes) -> Result<Response, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::new(ErrorKind::BadStatusCode, 0));
        }
        let core = Core::extract(&headers, &[])?;
        Ok(Response {
            status,
            reason,
            headers,
            body,
            core,
        })
    }

    /// Status code, 100–699.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The reason phrase, raw (free text, possibly UTF-8; never interpret it).
    pub fn reason(&self) -> &Bytes {
        &self.reason
    }
    /// The reason phrase as text (lossy for invalid UTF-8).
    pub fn reason_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.reason)
    }

    fn write_start_line(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "SIP/2.0 {} ", self.status);
        out.extend_from_slice(&self.reason);
    }

    common_accessors!();
}

impl PartialEq for Response {
    fn eq(&self, o: &Response) -> bool {
        self.status == o.status && self.reason == o.reason && self.body == o.body && same_headers(&self.headers, &o.headers)
    }
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header rows.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => r.headers(),
            Message::Response(r) => r.headers(),
        }
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => r.body(),
            Message::Response(r) => r.body(),
        }
    }
    /// The top Via.
    pub fn via(&self) -> &Via {
        match self {
            Message::Request(r) => r.via(),
            Message::Response(r) => r.via(),
        }
    }
    /// The Call-ID.
    pub fn call_id(&self) -> &Text {
        match self {
            Message::Request(r) => r.call_id(),
            Message::Response(r) => r.call_id(),
        }
    }
    /// The CSeq.
    pub fn cseq(&self) -> &CSeq {
        match self {
            Message::Request(r) => r.cseq(),
            Message::Response(r) => r.cseq(),
        }
    }
    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }
    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
    /// Appends the wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(r) => r.write(out),
            Message::Response(r) => r.write(out),
        }
    }
    /// The wire form as bytes.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Message {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Message {
        Message::Response(r)
    }
}
