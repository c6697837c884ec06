//! Requests, responses, and the transaction-critical headers extracted at parse time.

use crate::error::{ErrorKind, ParseError};
use crate::header::{Header, HeaderName, HeaderRef, Headers};
use crate::name_addr::{Contacts, NameAddr};
use crate::parse::{self, RawMessage, StartAt, StartLine};
use crate::scan::{self, split_ranges};
use crate::text::Text;
use crate::uri::{Params, Uri};
use crate::via::{CSeq, Method, Via};
use bytes::Bytes;

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
        MediaType::parse_at(v, 0, v.len())
    }

    /// Parses `v[s..e]` in place; errors are offsets in `v`.
    pub(crate) fn parse_at(v: &Bytes, s: usize, e: usize) -> Result<MediaType, usize> {
        let mut c = scan::Cursor::range(v, s, e);
        c.skip_ws();
        let top = c.skip_token().ok_or(c.pos)?;
        if !c.eat(b'/') {
            return Err(c.pos);
        }
        c.skip_ws();
        let sub = c.skip_token().ok_or(c.pos)?;
        let params = Params::parse(&mut c, scan::TOKEN, scan::TOKEN)?;
        c.skip_ws();
        if !c.at_end() {
            return Err(c.pos);
        }
        Ok(MediaType { top: Text::common_at(v, top.0, top.1, &["application"]), sub: Text::common_at(v, sub.0, sub.1, &["sdp"]), params })
    }

    /// Case-insensitive match on `type/subtype`.
    pub fn is(&self, top: &str, sub: &str) -> bool {
        self.top.eq_ignore_ascii_case(top) && self.sub.eq_ignore_ascii_case(sub)
    }
}

/// The headers every layer needs, extracted once when the message is parsed or built.
#[derive(Debug, Clone, PartialEq)]
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

/// Takes the one row of a single-valued header; a second row is an error (RFC 4475
/// `multi01`), even when it repeats the same value.
fn once<'a>(slot: &mut Option<HeaderRef<'a>>, h: HeaderRef<'a>) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::new(ErrorKind::MultipleValues(h.name()), h.offset()));
    }
    *slot = Some(h);
    Ok(())
}

/// Appends every address of a name-addr list row; empty elements are errors
/// (RFC 4475 `badinv01`).
fn push_addrs(out: &mut Vec<NameAddr>, h: HeaderRef<'_>) -> Result<(), ParseError> {
    let (buf, vs, _) = h.value_at();
    for (s, e) in split_ranges(h.value()) {
        if s == e {
            return Err(bad(h.name(), h.offset()));
        }
        // A `match`, not `map_err` and `?`: the address goes straight from the parser's
        // result into the list, with no intermediate `Result` of another layout to copy.
        match NameAddr::parse_at(buf, vs + s, vs + e) {
            Ok(a) => out.push(a),
            Err(_) => return Err(bad(h.name(), h.offset())),
        }
    }
    Ok(())
}

/// Call-ID = word [ "@" word ] (§25.1).
pub(crate) fn is_call_id(v: &[u8]) -> bool {
    // `@` is not a word character: the first run ends at it, or the value is not one.
    let at = scan::run_long(v, scan::WORD);
    if at == 0 {
        return false;
    }
    match v.get(at) {
        None => true,
        Some(b'@') => {
            let rest = &v[at + 1..];
            !rest.is_empty() && scan::all_class(rest, scan::WORD)
        }
        Some(_) => false,
    }
}

impl Core {
    /// Whether rows of this name feed the core.
    pub fn is_core(name: HeaderName) -> bool {
        matches!(
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
        )
    }

    /// `contacts` with the addresses of one more Contact row.
    pub fn add_contact(contacts: Contacts, h: HeaderRef<'_>) -> Result<Contacts, ParseError> {
        // `*` is only valid as the one and only Contact value (§10.2.2).
        let star = h.value() == b"*";
        Ok(match (contacts, star) {
            (Contacts::None, true) => Contacts::Star,
            (Contacts::None, false) => {
                let mut v = Vec::with_capacity(1);
                push_addrs(&mut v, h)?;
                Contacts::List(v)
            }
            (Contacts::List(mut v), false) => {
                push_addrs(&mut v, h)?;
                Contacts::List(v)
            }
            _ => return Err(bad(HeaderName::Contact, h.offset())),
        })
    }

    /// What a builder's typed-core shortcut must equal: a full extraction from the rows it
    /// wrote. Every debug build (all tests) checks it; release builds trust the builder.
    #[cfg(debug_assertions)]
    fn check_shortcut(&self, headers: &Headers, what: &str) {
        let full = Core::extract(headers).expect("the rows a builder wrote form a valid core");
        assert!(full == *self, "the {what} core the builder derived differs from the extracted one:\n{full:?}\n{self:?}");
    }

    /// Extracts and checks the core headers in one pass over the rows. Only the top Via
    /// is parsed; the others must be non-empty and are parsed on demand.
    pub fn extract(headers: &Headers) -> Result<Core, ParseError> {
        Core::extract_for(headers, None)
    }

    /// [`Core::extract`] for a request with this method: its CSeq method must be the same
    /// (§8.2), checked last, after every other core header.
    pub fn extract_for(headers: &Headers, method: Option<&Method>) -> Result<Core, ParseError> {
        let mut top_via: Option<((usize, usize), HeaderRef<'_>)> = None;
        let mut via_count = 0;
        let (mut from, mut to, mut call_id, mut cseq, mut mf, mut ctype) = (None, None, None, None, None, None);
        let mut contacts = Contacts::None;
        let mut routes = Vec::new();
        let mut record_routes = Vec::new();
        for h in headers {
            match h.name() {
                HeaderName::Via => {
                    for (s, e) in split_ranges(h.value()) {
                        if s == e {
                            return Err(bad(HeaderName::Via, h.offset()));
                        }
                        if top_via.is_none() {
                            top_via = Some(((s, e), h));
                        }
                        via_count += 1;
                    }
                }
                HeaderName::From => once(&mut from, h)?,
                HeaderName::To => once(&mut to, h)?,
                HeaderName::CallId => once(&mut call_id, h)?,
                HeaderName::CSeq => once(&mut cseq, h)?,
                HeaderName::MaxForwards => once(&mut mf, h)?,
                HeaderName::ContentType => once(&mut ctype, h)?,
                HeaderName::Contact => contacts = Core::add_contact(contacts, h)?,
                HeaderName::Route => push_addrs(&mut routes, h)?,
                HeaderName::RecordRoute => push_addrs(&mut record_routes, h)?,
                _ => {}
            }
        }
        let end = headers.iter().next_back().map_or(0, HeaderRef::offset);
        let missing = |n| ParseError::new(ErrorKind::MissingHeader(n), end);

        let ((vs, ve), via_row) = top_via.ok_or_else(|| missing(HeaderName::Via))?;
        let (buf, off, _) = via_row.value_at();
        let via = Via::parse_at(buf, off + vs, off + ve).map_err(|_| bad(HeaderName::Via, via_row.offset()))?;
        let from_row = from.ok_or_else(|| missing(HeaderName::From))?;
        let (buf, s, e) = from_row.value_at();
        let from = match NameAddr::parse_at(buf, s, e) {
            Ok(a) => a,
            Err(_) => return Err(bad(HeaderName::From, from_row.offset())),
        };
        let to_row = to.ok_or_else(|| missing(HeaderName::To))?;
        let (buf, s, e) = to_row.value_at();
        let to = match NameAddr::parse_at(buf, s, e) {
            Ok(a) => a,
            Err(_) => return Err(bad(HeaderName::To, to_row.offset())),
        };
        let cid = call_id.ok_or_else(|| missing(HeaderName::CallId))?;
        if !is_call_id(cid.value()) {
            return Err(bad(HeaderName::CallId, cid.offset()));
        }
        let call_id = Text::from_checked(cid.value_bytes());
        let cs = cseq.ok_or_else(|| missing(HeaderName::CSeq))?;
        let (buf, s, e) = cs.value_at();
        let cseq = CSeq::parse_at(buf, s, e).map_err(|_| bad(HeaderName::CSeq, cs.offset()))?;
        let cseq_offset = cs.offset();
        let max_forwards = match mf {
            None => None,
            Some(h) => Some(scan::parse_u32(h.value()).ok_or_else(|| bad(HeaderName::MaxForwards, h.offset()))?),
        };
        let content_type = match ctype {
            None => None,
            Some(h) => {
                let (buf, s, e) = h.value_at();
                Some(MediaType::parse_at(buf, s, e).map_err(|_| bad(HeaderName::ContentType, h.offset()))?)
            }
        };
        if method.is_some_and(|m| *m != cseq.method) {
            return Err(ParseError::new(ErrorKind::CSeqMethodMismatch, cseq_offset));
        }
        Ok(Core { via, via_count, from, to, call_id, cseq, max_forwards, contacts, routes, record_routes, content_type })
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
        /// Content-Length: framing made it equal to the body's length (a datagram without
        /// the header has the rest of the datagram as body), and printing writes it so.
        pub fn content_length(&self) -> usize {
            self.body.len()
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
                let (buf, vs, _) = h.value_at();
                for (s, e) in split_ranges(h.value()) {
                    out.push(Via::parse_at(buf, vs + s, vs + e).map_err(|_| bad(HeaderName::Via, h.offset()))?);
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
        /// Appends a header row. Fails, changing nothing, if it breaks a core header.
        pub fn push_header(&mut self, h: Header) -> Result<(), ParseError> {
            self.edit_headers(h.name(), |rows| rows.push(h))
        }
        /// Inserts a header row at `index` (0 = top; e.g. a new top Via).
        pub fn insert_header(&mut self, index: usize, h: Header) -> Result<(), ParseError> {
            self.edit_headers(h.name(), |rows| rows.insert(index, h))
        }
        /// Replaces every row of that name with this one, at the place of the first.
        pub fn set_header(&mut self, h: Header) -> Result<(), ParseError> {
            self.edit_headers(h.name(), |rows| rows.set(h))
        }
        /// Removes every row with this name; returns how many were removed.
        pub fn remove_header(&mut self, name: HeaderName) -> Result<usize, ParseError> {
            let mut k = 0;
            self.edit_headers(name, |rows| k = rows.remove(name))?;
            Ok(k)
        }
        /// Replaces the body; `content_type` sets (or with `None` removes) Content-Type.
        pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) -> Result<(), ParseError> {
            self.edit_headers(HeaderName::ContentType, |rows| match content_type {
                Some(ct) => rows.set(Header::new(HeaderName::ContentType, Bytes::copy_from_slice(ct.as_bytes()))),
                None => {
                    rows.remove(HeaderName::ContentType);
                }
            })?;
            self.body = body;
            Ok(())
        }
        /// Applies `f` to the rows; when a core header changed, extracts the core again
        /// and, if that fails, puts the rows back as they were.
        fn edit_headers(&mut self, name: HeaderName, f: impl FnOnce(&mut Headers)) -> Result<(), ParseError> {
            if !Core::is_core(name) {
                f(&mut self.headers);
                return Ok(());
            }
            let before = self.headers.clone();
            f(&mut self.headers);
            match Core::extract(&self.headers) {
                Ok(core) => {
                    self.core = core;
                    Ok(())
                }
                Err(e) => {
                    self.headers = before;
                    Err(e)
                }
            }
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
                write_content_length(body_len, out);
                cl_done = true;
            }
            continue;
        }
        h.write(out);
        out.extend_from_slice(b"\r\n");
    }
    if !cl_done {
        write_content_length(body_len, out);
    }
}

fn write_content_length(body_len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Content-Length: ");
    crate::digits::push_u64(out, body_len as u64);
    out.extend_from_slice(b"\r\n");
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
        let core = Core::extract(&headers)?;
        Ok(Request { method, uri, headers, body, core })
    }

    /// A request whose core the builder already knows (it printed those rows from these
    /// values).
    pub(crate) fn from_core(method: Method, uri: Uri, headers: Headers, body: Bytes, core: Core) -> Request {
        #[cfg(debug_assertions)]
        core.check_shortcut(&headers, "request");
        Request { method, uri, headers, body, core }
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

    /// Replaces the top Via value, keeping every other Via value exactly as received: a
    /// server stamps `received` and `rport` into it (§18.2.1, RFC 3581 §4) so that its
    /// responses, which copy the Via rows, carry them. A first row holding several values
    /// is split in two.
    pub fn set_top_via(&mut self, via: Via) {
        let Some(i) = self.headers.iter().position(|h| h.name() == HeaderName::Via) else {
            return; // unreachable for a parsed request: the core requires a Via
        };
        let v = self.headers.iter().nth(i).map(HeaderRef::value_bytes).unwrap_or_default();
        let rest = split_ranges(&v).nth(1).map(|(s, _)| s);
        let mut rows = Vec::with_capacity(2);
        rows.push(Header::new(HeaderName::Via, via.to_bytes()));
        if let Some(s) = rest {
            rows.push(Header::new(HeaderName::Via, v.slice(s..)));
        }
        self.headers.splice_row(i, rows);
        // Only the top value changed and `via` is already typed: no need to extract again.
        self.core.via = via;
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
        let core = Core::extract(&headers)?;
        Ok(Response { status, reason, headers, body, core })
    }

    /// A response whose core the builder already knows (it copied the request's rows).
    pub(crate) fn from_core(status: u16, reason: Bytes, headers: Headers, body: Bytes, core: Core) -> Result<Response, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::new(ErrorKind::BadStatusCode, 0));
        }
        #[cfg(debug_assertions)]
        core.check_shortcut(&headers, "response");
        Ok(Response { status, reason, headers, body, core })
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
        out.extend_from_slice(b"SIP/2.0 ");
        crate::digits::push_u64(out, u64::from(self.status));
        out.push(b' ');
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
    /// From.
    pub fn from(&self) -> &NameAddr {
        match self {
            Message::Request(r) => r.from(),
            Message::Response(r) => r.from(),
        }
    }
    /// To.
    pub fn to(&self) -> &NameAddr {
        match self {
            Message::Request(r) => r.to(),
            Message::Response(r) => r.to(),
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

/// `SIP-Version` must be `SIP/2.0` (case-insensitive, §7.1); another `SIP/x` is 505
/// (§8.2.1), anything else is not a start line at all.
fn check_version(v: &[u8], offset: usize) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        Ok(())
    } else if v.len() > 4 && v[..4].eq_ignore_ascii_case(b"SIP/") {
        Err(ParseError::new(ErrorKind::VersionNotSupported, offset))
    } else {
        Err(ParseError::new(ErrorKind::BadStartLine, offset))
    }
}

impl Message {
    /// Parses one datagram (see [`RawMessage::parse_datagram`] for the framing rules).
    pub fn parse(data: Bytes) -> Result<Message, ParseError> {
        // `RawMessage::parse_datagram` then `from_raw`, with the start line read in place.
        let head = parse::parse_head_at(&data, 0, parse::End::Datagram)?;
        let body = parse::datagram_body(&head, &data)?;
        let so = head.start_offset;
        match head.start? {
            StartAt::Request { method, uri, version } => {
                let (method, uri) =
                    Message::request_line((&data, method.0, method.1), (&data, uri.0, uri.1), 0, &data[version.0..version.1], so)?;
                // The list takes this handle on the datagram: no reference count for it.
                let headers = head.headers.attach(data);
                Ok(Message::Request(Request { core: Core::extract_for(&headers, Some(&method))?, method, uri, headers, body }))
            }
            StartAt::Response { version, code, reason } => {
                let reason = standard_reason(&data[code.0..code.1], &data[reason.0..reason.1])
                    .map_or_else(|| data.slice(reason.0..reason.1), Bytes::from_static);
                let status = Message::status_line(&data[version.0..version.1], &data[code.0..code.1], so)?;
                let headers = head.headers.attach(data);
                let core = Core::extract(&headers).map_err(|e| e.in_response())?;
                Ok(Message::Response(Response { status, reason, headers, body, core }))
            }
        }
    }

    /// Interprets a framed message: the version (505), the method token, the
    /// Request-URI (no brackets, no white space, no `?headers`: RFC 4475 `ltgtruri`,
    /// `lwsruri`, `escruri`), the status code (three digits, 100–699), the core headers
    /// and the CSeq method (§8.2: must equal the request method).
    pub fn from_raw(raw: RawMessage) -> Result<Message, ParseError> {
        let so = raw.start_offset as usize;
        match raw.start? {
            StartLine::Request { method, uri, version, uri_offset } => {
                // The Request-URI's offset in the message is `uri_offset`; its text is `uri`.
                let shift = uri_offset as usize;
                Message::request_shifted((&method, 0, method.len()), (&uri, 0, uri.len()), shift, &version, so, raw.headers, raw.body)
            }
            StartLine::Response { version, code, reason } => Message::response(&version, &code, reason, so, raw.headers, raw.body),
        }
    }

    /// A request from its start-line parts; the Request-URI is `uri.0[uri.1..uri.2]`,
    /// whose offsets in its buffer are `shift` less than in the message.
    fn request_shifted(
        (mb, ms, me): (&Bytes, usize, usize),
        (ub, us, ue): (&Bytes, usize, usize),
        shift: usize,
        version: &[u8],
        so: usize,
        headers: Headers,
        body: Bytes,
    ) -> Result<Message, ParseError> {
        let (method, uri) = Message::request_line((mb, ms, me), (ub, us, ue), shift, version, so)?;
        Ok(Message::Request(Request { core: Core::extract_for(&headers, Some(&method))?, method, uri, headers, body }))
    }

    /// The version, the method and the Request-URI of a Request-Line, checked in this
    /// order (see [`Message::request_shifted`] for the offsets).
    fn request_line(
        (mb, ms, me): (&Bytes, usize, usize),
        (ub, us, ue): (&Bytes, usize, usize),
        shift: usize,
        version: &[u8],
        so: usize,
    ) -> Result<(Method, Uri), ParseError> {
        let uo = us + shift;
        check_version(version, uo + (ue - us) + 1)?;
        let method = Method::from_range(mb, ms, me).ok_or(ParseError::new(ErrorKind::BadStartLine, so))?;
        let uri = Uri::parse_at(ub, us, ue).map_err(|e| ParseError::new(ErrorKind::BadRequestUri, uo + e))?;
        if uri.as_sip().is_some_and(|u| u.headers().is_some()) {
            return Err(ParseError::new(ErrorKind::BadRequestUri, uo));
        }
        Ok((method, uri))
    }

    /// A response from its status-line parts.
    fn response(version: &[u8], code: &[u8], reason: Bytes, so: usize, headers: Headers, body: Bytes) -> Result<Message, ParseError> {
        let status = Message::status_line(version, code, so)?;
        let core = Core::extract(&headers).map_err(|e| e.in_response())?;
        Ok(Message::Response(Response { status, reason, headers, body, core }))
    }

    /// The status code of a Status-Line, after its version.
    fn status_line(version: &[u8], code: &[u8], so: usize) -> Result<u16, ParseError> {
        let r = |e: ParseError| e.in_response();
        check_version(version, so).map_err(r)?;
        match scan::parse_u32(code) {
            Some(n) if code.len() == 3 && (100..=699).contains(&n) => Ok(n as u16),
            _ => Err(r(ParseError::new(ErrorKind::BadStatusCode, so + version.len() + 1))),
        }
    }
}

/// The reason phrase as a static when it is the standard one for its code (`OK`,
/// `Ringing` …, what nearly every peer sends): a static needs no reference count.
fn standard_reason(code: &[u8], reason: &[u8]) -> Option<&'static [u8]> {
    let &[a, b, c] = code else { return None };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let n = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let standard = crate::builder::reason_phrase(n).as_bytes();
    (standard == reason && !standard.is_empty()).then_some(standard)
}

/// What one datagram, or one unit of a stream, carries.
// Keep-alives are rare and a `Frame` is moved once, straight out of the parser: boxing
// the message would cost an allocation per message to save a copy per keep-alive.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A SIP message.
    Message(Message),
    /// A keep-alive "ping": a double CRLF (RFC 5626 §4.4.1); a server answers with a pong.
    Ping,
    /// A keep-alive "pong": a single CRLF, the answer to our ping.
    Pong,
}

/// Parses one UDP datagram: a message, or a keep-alive made only of CR and LF octets
/// (four or more: ping; fewer: pong).
pub fn parse_datagram(data: Bytes) -> Result<Frame, ParseError> {
    if !data.is_empty() && data.iter().all(|&c| c == b'\r' || c == b'\n') {
        return Ok(if data.len() >= 4 { Frame::Ping } else { Frame::Pong });
    }
    Message::parse(data).map(Frame::Message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_standard_reason_for_its_code_becomes_a_static() {
        assert_eq!(standard_reason(b"200", b"OK"), Some(&b"OK"[..]));
        assert_eq!(standard_reason(b"180", b"Ringing"), Some(&b"Ringing"[..]));
        assert_eq!(standard_reason(b"200", b"Okay"), None);
        assert_eq!(standard_reason(b"180", b"OK"), None);
        assert_eq!(standard_reason(b"20", b"OK"), None);
        assert_eq!(standard_reason(b"2x0", b"OK"), None);
        // Whatever the reason, it reads back exactly as received.
        for reason in ["OK", "Okay", ""] {
            let wire = format!(
                "SIP/2.0 200 {reason}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
                 Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            );
            match Message::parse(Bytes::from(wire)) {
                Ok(Message::Response(r)) => assert_eq!(&r.reason()[..], reason.as_bytes()),
                other => panic!("a response: {other:?}"),
            }
        }
    }
}
