//! The first parsing stage (RFC 3261 §7, §7.3.1, §18.3): the start line split into its
//! parts, the header section cut into rows (unfolded), and the body framed by
//! Content-Length. Nothing here interprets a header value except Content-Length.
//!
//! Every slice shares the received buffer: the only copies are the values of folded
//! header rows, which have to be rewritten to unfold them.

use crate::error::{ErrorKind, ParseError};
use crate::header::{Header, HeaderName, HeaderRef, Headers};
use crate::scan::{self, is_ws};
use crate::text::Text;
use bytes::Bytes;

/// The start line cut into its three parts, not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version` (§7.1). Runs of several spaces between the
    /// parts and spaces at the end are tolerated (RFC 4475 `lwsstart`, `trws`).
    Request {
        /// The method token, unchecked.
        method: Bytes,
        /// The Request-URI text, unchecked.
        uri: Bytes,
        /// The version text (`SIP/2.0`).
        version: Bytes,
        /// Offset of the Request-URI in the input, to place errors.
        uri_offset: u32,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase` (§7.2). The space before an empty
    /// reason phrase may be missing (RFC 4475 `noreason`).
    Response {
        /// The version text.
        version: Bytes,
        /// The status code digits, unchecked (may be too long: RFC 4475 `bigcode`).
        code: Bytes,
        /// Everything after the space that follows the code, unchanged.
        reason: Bytes,
    },
}

/// A message after framing: start line parts, header rows, body.
///
/// [`crate::Message::from_raw`] turns it into a typed message. Keeping the stages apart
/// lets a server answer a request whose core headers are broken (it still has the rows
/// to copy into a 400) and lets tests tell framing failures from header failures.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// A start line that cannot be split is kept as its error: the rows and the framing
    /// are still good, so a stream can go on and a 400 can still copy the rows.
    pub(crate) start: Result<StartLine, ParseError>,
    pub(crate) start_offset: u32,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
}

/// What a Content-Length row said (§20.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentLength {
    /// No Content-Length row.
    Absent,
    /// One value (several rows with the same value are tolerated).
    Value(usize),
    /// Not a number, too large for memory, or several different values (RFC 4475 `ncl`,
    /// `mcl01`); the offset of the offending row.
    Bad(usize),
}

/// The start line cut into its parts, as ranges of the received buffer (no slices are
/// taken until a [`StartLine`] is asked for: [`crate::Message::parse`] reads the parts in
/// place).
#[derive(Debug, Clone, Copy)]
pub(crate) enum StartAt {
    /// Method, Request-URI and version.
    Request { method: (usize, usize), uri: (usize, usize), version: (usize, usize) },
    /// Version, status code and reason phrase.
    Response { version: (usize, usize), code: (usize, usize), reason: (usize, usize) },
}

impl StartAt {
    /// The parts as shared slices of `data`.
    pub fn to_line(self, data: &Bytes) -> StartLine {
        let sl = |(a, b): (usize, usize)| data.slice(a..b);
        match self {
            StartAt::Request { method, uri, version } => StartLine::Request {
                method: sl(method),
                uri: sl(uri),
                version: sl(version),
                uri_offset: u32::try_from(uri.0).unwrap_or(u32::MAX),
            },
            StartAt::Response { version, code, reason } => StartLine::Response { version: sl(version), code: sl(code), reason: sl(reason) },
        }
    }
}

/// The start line and header rows, and where the body starts.
#[derive(Debug)]
pub(crate) struct Head<S = StartLine> {
    pub start: Result<S, ParseError>,
    pub start_offset: usize,
    pub headers: Headers,
    pub body_start: usize,
    pub content_length: ContentLength,
    /// Whether the start line is (or begins like) a Status-Line.
    pub is_response: bool,
}

impl<S> Head<S> {
    /// An error about this message, marked as a response's when it is one (a broken
    /// response is dropped, never answered).
    pub fn error(&self, kind: ErrorKind, offset: usize) -> ParseError {
        mark_response(ParseError::new(kind, offset), self.is_response)
    }
}

fn mark_response(e: ParseError, is_response: bool) -> ParseError {
    if is_response {
        e.in_response()
    } else {
        e
    }
}

/// Where the data runs out while reading the head.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A datagram: the end of the data ends the line, the header section and the message
    /// (RFC 4475 `baddn` has no empty line after its headers).
    Datagram,
    /// A stream: running out of data means "need more".
    Stream,
}

/// Skips CRLFs before a start line (§7.5: ignored on streams; harmless on datagrams).
pub(crate) fn skip_leading_crlf(data: &[u8], mut pos: usize) -> usize {
    while pos < data.len() && (data[pos] == b'\r' || data[pos] == b'\n') {
        pos += 1;
    }
    pos
}

/// The line starting at `pos`: `(end of content, start of next line)`. A line ends in
/// LF with an optional CR before it; bare LF is accepted as a leniency.
#[inline]
fn next_line(data: &[u8], pos: usize, end: End) -> Result<Option<(usize, usize)>, ParseError> {
    match scan::find(data, pos, b'\n') {
        Some(nl) => {
            let le = if nl > pos && data[nl - 1] == b'\r' { nl - 1 } else { nl };
            Ok(Some((le, nl + 1)))
        }
        None => last_line(data, pos, end),
    }
}

/// [`next_line`] when no LF is left.
#[cold]
fn last_line(data: &[u8], pos: usize, end: End) -> Result<Option<(usize, usize)>, ParseError> {
    match end {
        End::Datagram => {
            if pos >= data.len() {
                Ok(None)
            } else {
                let mut le = data.len();
                if data[le - 1] == b'\r' {
                    le -= 1;
                }
                Ok(Some((le, data.len())))
            }
        }
        End::Stream => Err(ParseError::new(ErrorKind::Incomplete, data.len())),
    }
}

/// Reads the start line and the header section starting at `pos`.
pub(crate) fn parse_head(data: &Bytes, pos: usize, end: End) -> Result<Head, ParseError> {
    let h = parse_head_at(data, pos, end)?;
    Ok(Head {
        start: h.start.map(|s| s.to_line(data)),
        start_offset: h.start_offset,
        headers: h.headers.attach(data.clone()),
        body_start: h.body_start,
        content_length: h.content_length,
        is_response: h.is_response,
    })
}

/// [`parse_head`] with the start line left as ranges of `data`, and the header list not
/// yet attached to `data` (its rows are offsets into it): the caller attaches it with
/// [`Headers::attach`], moving its own handle in when it has one to spare.
pub(crate) fn parse_head_at(data: &Bytes, pos: usize, end: End) -> Result<Head<StartAt>, ParseError> {
    let pos = skip_leading_crlf(data, pos);
    if pos >= data.len() {
        return Err(ParseError::new(ErrorKind::Incomplete, pos));
    }
    let (sl_end, mut next) = next_line(data, pos, end)?.ok_or(ParseError::new(ErrorKind::Incomplete, pos))?;
    let start = split_start_line(data, pos, sl_end);
    let is_response = looks_like_response(&data[pos..]);
    let mark = |e: ParseError| mark_response(e, is_response);

    let mut headers = Headers::with_capacity(16);
    let mut content_length = ContentLength::Absent;
    let body_start;
    loop {
        let Some((le, after)) = next_line(data, next, end).map_err(mark)? else {
            body_start = data.len();
            break;
        };
        let ls = next;
        if le == ls {
            body_start = after;
            break;
        }
        // Continuation lines start with SP or HT (§7.3.1). On a stream, a row is only
        // complete once the first byte of the following line is known.
        let mut row_end = le;
        let mut n = after;
        let mut folded = false;
        loop {
            if n >= data.len() {
                if end == End::Stream {
                    return Err(mark(ParseError::new(ErrorKind::Incomplete, data.len())));
                }
                break;
            }
            if !is_ws(data[n]) {
                break;
            }
            match next_line(data, n, end).map_err(mark)? {
                Some((le2, after2)) => {
                    row_end = le2;
                    n = after2;
                    folded = true;
                }
                None => break,
            }
        }
        next = n;
        let h = parse_row(data, ls, row_end, folded).map_err(mark)?;
        if h.name() == HeaderName::ContentLength {
            content_length = merge_content_length(content_length, h.within(data));
        }
        headers.push(h);
    }
    Ok(Head { start, start_offset: pos, headers, body_start, content_length, is_response })
}

/// Several Content-Length rows are tolerated only if they agree; a value that is not a
/// number (`-999`), or does not fit in memory, is never used as a size.
fn merge_content_length(prev: ContentLength, h: HeaderRef<'_>) -> ContentLength {
    let v = scan::parse_u64(h.value()).and_then(|n| usize::try_from(n).ok());
    match (prev, v) {
        (ContentLength::Bad(o), _) => ContentLength::Bad(o),
        (_, None) => ContentLength::Bad(h.offset()),
        (ContentLength::Absent, Some(n)) => ContentLength::Value(n),
        (ContentLength::Value(p), Some(n)) if p == n => ContentLength::Value(n),
        (ContentLength::Value(_), Some(_)) => ContentLength::Bad(h.offset()),
    }
}

/// One header row `name HCOLON value`, `[ls, le)` in `data`, possibly folded. A folded
/// row is unfolded whole before it is read, so a fold before the colon is tolerated too.
fn parse_row(data: &Bytes, ls: usize, le: usize, folded: bool) -> Result<Header, ParseError> {
    let unfolded;
    let row: &[u8] = if folded {
        unfolded = unfold(&data[ls..le]);
        &unfolded
    } else {
        &data[ls..le]
    };
    // The name ends at the colon (white space before it is allowed, §7.3.1 HCOLON).
    let bad = || ParseError::new(ErrorKind::BadHeaderLine, ls);
    let colon = scan::memchr(b':', row).ok_or_else(bad)?;
    let mut name_end = colon;
    while name_end > 0 && is_ws(row[name_end - 1]) {
        name_end -= 1;
    }
    let name_bytes = &row[..name_end];
    let name = HeaderName::from_bytes(name_bytes);
    // Known names are tokens by construction; only an extension name needs the check.
    if name_end == 0 || (name == HeaderName::Other && !scan::all_class(name_bytes, scan::TOKEN)) {
        return Err(bad());
    }
    let other_name = (name == HeaderName::Other)
        .then(|| Text::from_checked(if folded { Bytes::copy_from_slice(name_bytes) } else { data.slice(ls..ls + name_end) }));
    let i = colon;
    let (a, b) = scan::trim(&row[i + 1..]);
    let (vs, ve) = (i + 1 + a, i + 1 + b);
    Ok(if folded {
        Header::parsed_folded(name, other_name, data.slice(ls..le), Bytes::copy_from_slice(&row[vs..ve]), ls)
    } else {
        Header::in_list(name, other_name, ls, le - ls, vs, ve)
    })
}

/// Replaces every `[*WSP CRLF] 1*WSP` fold with one SP and trims the ends (§7.3.1).
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'\r' || c == b'\n' {
            while out.last().is_some_and(|&l| is_ws(l)) {
                out.pop();
            }
            while i < v.len() && (v[i] == b'\r' || v[i] == b'\n' || is_ws(v[i])) {
                i += 1;
            }
            out.push(b' ');
            continue;
        }
        out.push(c);
        i += 1;
    }
    let (a, b) = scan::trim(&out);
    out.truncate(b);
    out.drain(..a);
    out
}

/// A Status-Line starts with the version; a method is a token and cannot contain `/`.
pub(crate) fn looks_like_response(line: &[u8]) -> bool {
    line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/")
}

/// Cuts `[s, e)` into start-line parts.
fn split_start_line(data: &Bytes, s: usize, e: usize) -> Result<StartAt, ParseError> {
    let line = &data[s..e];
    if looks_like_response(line) {
        // Status-Line. The version cannot contain SP.
        let bad = |o: usize| ParseError::new(ErrorKind::BadStatusCode, s + o).in_response();
        let vsp = line.iter().position(|&c| c == b' ').ok_or(bad(line.len()))?;
        let cs = vsp + 1;
        let mut ce = cs;
        while ce < line.len() && line[ce].is_ascii_digit() {
            ce += 1;
        }
        let reason = if ce == line.len() {
            (e, e)
        } else if line[ce] == b' ' {
            (s + ce + 1, e)
        } else {
            return Err(bad(ce));
        };
        return Ok(StartAt::Response { version: (s, s + vsp), code: (s + cs, s + ce), reason });
    }
    // Request-Line: split at runs of SP; exactly three parts.
    let mut parts = [(0usize, 0usize); 3];
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' {
            i += 1;
            continue;
        }
        let ps = i;
        i = scan::memchr(b' ', &line[i..]).map_or(line.len(), |p| i + p);
        if n == 3 {
            // A fourth part: white space inside the Request-URI (RFC 4475 `lwsruri`).
            return Err(ParseError::new(ErrorKind::BadRequestUri, s + ps));
        }
        parts[n] = (ps, i);
        n += 1;
    }
    if n < 3 {
        return Err(ParseError::new(ErrorKind::BadStartLine, s + i));
    }
    let at = |(a, b): (usize, usize)| (s + a, s + b);
    Ok(StartAt::Request { method: at(parts[0]), uri: at(parts[1]), version: at(parts[2]) })
}

impl RawMessage {
    /// Frames one UDP datagram (§18.3): the body is exactly Content-Length octets and
    /// anything after it is ignored (RFC 4475 `dblreq`); without Content-Length the body
    /// runs to the end of the datagram (RFC 4475 `inv2543`); a Content-Length larger than
    /// the data, negative, or given twice with different values is an error.
    pub fn parse_datagram(data: Bytes) -> Result<RawMessage, ParseError> {
        let head = parse_head(&data, 0, End::Datagram)?;
        let body = datagram_body(&head, &data)?;
        Ok(RawMessage::from_head(head, body))
    }

    /// Frames only the head of a datagram whose body framing is broken (a Content-Length
    /// that is negative, too large or given twice): the rows are kept and the body is
    /// whatever follows the empty line. For answering such a request with a 400 that
    /// copies its Via, From, To, Call-ID and CSeq rows (§8.2.6); never for processing it.
    pub fn parse_head_rows(data: Bytes) -> Result<RawMessage, ParseError> {
        let head = parse_head(&data, 0, End::Datagram)?;
        let body = data.slice(head.body_start.min(data.len())..);
        Ok(RawMessage::from_head(head, body))
    }

    pub(crate) fn from_head(head: Head, body: Bytes) -> RawMessage {
        RawMessage { start: head.start, start_offset: u32::try_from(head.start_offset).unwrap_or(u32::MAX), headers: head.headers, body }
    }

    /// The start line parts, or why the start line could not be split.
    pub fn start_line(&self) -> Result<&StartLine, ParseError> {
        self.start.as_ref().map_err(|e| *e)
    }

    /// Whether the start line is (or begins like) a Status-Line.
    pub fn is_response(&self) -> bool {
        match &self.start {
            Ok(s) => matches!(s, StartLine::Response { .. }),
            Err(e) => e.is_response(),
        }
    }

    /// The header rows, in order.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The framed body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// The body of a datagram whose head is `head` (see [`RawMessage::parse_datagram`]).
pub(crate) fn datagram_body<S>(head: &Head<S>, data: &Bytes) -> Result<Bytes, ParseError> {
    Ok(match head.content_length {
        ContentLength::Absent => data.slice(head.body_start.min(data.len())..),
        ContentLength::Value(n) => {
            let avail = data.len() - head.body_start.min(data.len());
            if n > avail {
                return Err(head.error(ErrorKind::BadContentLength, cl_offset(&head.headers)));
            }
            data.slice(head.body_start..head.body_start + n)
        }
        ContentLength::Bad(off) => return Err(head.error(ErrorKind::BadContentLength, off)),
    })
}

/// Offset of the first Content-Length row (for an error about it).
fn cl_offset(headers: &Headers) -> usize {
    headers.get(HeaderName::ContentLength).map_or(0, HeaderRef::offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &'static [u8]) -> Head {
        match parse_head(&Bytes::from_static(s), 0, End::Datagram) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn unfolds_and_trims() {
        assert_eq!(unfold(b"  a \r\n  b\r\n\tc  "), b"a b c");
        let h = head(b"OPTIONS sip:a SIP/2.0\r\nX:  one\r\n two  \r\nY:z\r\n\r\n");
        let rows: Vec<_> = h.headers.iter().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value(), b"one two");
        assert_eq!(rows[0].raw(), Some(&b"X:  one\r\n two  "[..]));
        assert_eq!(rows[1].value(), b"z");
        assert_eq!(rows[1].offset(), 40);
    }

    #[test]
    fn start_lines() {
        match head(b"SIP/2.0 100 \r\n\r\n").start.expect("splits") {
            StartLine::Response { code, reason, .. } => {
                assert_eq!(code.as_ref(), b"100");
                assert!(reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match head(b"SIP/2.0 180\r\n\r\n").start.expect("splits") {
            StartLine::Response { code, reason, .. } => {
                assert_eq!(code.as_ref(), b"180");
                assert!(reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match head(b"INVITE  sip:a@b   SIP/2.0  \r\n\r\n").start.expect("splits") {
            StartLine::Request { method, uri, version, uri_offset } => {
                assert_eq!((method.as_ref(), uri.as_ref(), version.as_ref()), (&b"INVITE"[..], &b"sip:a@b"[..], &b"SIP/2.0"[..]));
                assert_eq!(uri_offset, 8);
            }
            other => panic!("{other:?}"),
        }
        let e = head(b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n").start.err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::BadRequestUri));
        let e = head(b"SIP/2.0 2000OK\r\n\r\n").start.err();
        assert!(e.is_some_and(|e| e.is_response() && e.kind() == ErrorKind::BadStatusCode));
    }

    #[test]
    fn stream_needs_the_next_line_to_close_a_row() {
        let e = parse_head(&Bytes::from_static(b"OPTIONS sip:a SIP/2.0\r\nX: 1\r\n"), 0, End::Stream).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::Incomplete));
    }

    #[test]
    fn content_length_rows() {
        let h = head(b"OPTIONS sip:a SIP/2.0\r\nl: 5\r\nContent-Length: 005\r\n\r\n");
        assert_eq!(h.content_length, ContentLength::Value(5));
        let h = head(b"OPTIONS sip:a SIP/2.0\r\nl: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(matches!(h.content_length, ContentLength::Bad(_)));
        let h = head(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(h.content_length, ContentLength::Bad(_)));
    }
}
