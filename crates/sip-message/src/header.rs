//! Header names (full and compact forms) and the ordered header list.
//!
//! Headers are kept as rows in the order received. A row we only pass through keeps its
//! exact bytes (`raw`) and is printed unchanged; a row we build is printed canonically.

use crate::error::{ErrorKind, ParseError};
use crate::name_addr::NameAddr;
use crate::scan::{self, split_list, split_ranges};
use crate::text::Text;
use bytes::Bytes;

macro_rules! header_names {
    ($( $var:ident => $name:literal $(, $compact:literal)? ; $list:expr ),* $(,)?) => {
        /// A header name. Known headers are recognised case-insensitively and in their
        /// compact forms (RFC 3261 §7.3.3, §20); anything else is `Other` and keeps the
        /// spelling it arrived with in [`Header::name_text`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( #[doc = $name] $var, )*
            /// An extension header this crate does not know.
            Other,
        }

        impl HeaderName {
            /// The canonical (full) spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$var => $name, )*
                    HeaderName::Other => "",
                }
            }

            /// The compact form, if the header has one.
            pub const fn compact(self) -> Option<u8> {
                match self {
                    $( $( HeaderName::$var => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Whether the header's grammar is a comma-separated list (`#element`), so
            /// that several rows may be merged and one row may carry several values.
            pub const fn is_list(self) -> bool {
                match self {
                    $( HeaderName::$var => $list, )*
                    HeaderName::Other => false,
                }
            }

            /// Recognises a header name (full or compact, any case).
            pub fn from_bytes(b: &[u8]) -> HeaderName {
                // Fast path: the canonical spelling, which is what nearly every peer sends.
                match b {
                    $( x if x == $name.as_bytes() => return HeaderName::$var, )*
                    _ => {}
                }
                if b.len() == 1 {
                    let c = b[0].to_ascii_lowercase();
                    $( $( if c == $compact { return HeaderName::$var; } )? )*
                    return HeaderName::Other;
                }
                $( if b.len() == $name.len() && b.eq_ignore_ascii_case($name.as_bytes()) {
                    return HeaderName::$var;
                } )*
                HeaderName::Other
            }
        }
    };
}

header_names! {
    Via => "Via", b'v'; true,
    From => "From", b'f'; false,
    To => "To", b't'; false,
    CallId => "Call-ID", b'i'; false,
    CSeq => "CSeq"; false,
    MaxForwards => "Max-Forwards"; false,
    Contact => "Contact", b'm'; true,
    ContentLength => "Content-Length", b'l'; false,
    ContentType => "Content-Type", b'c'; false,
    Route => "Route"; true,
    RecordRoute => "Record-Route"; true,
    Expires => "Expires"; false,
    Accept => "Accept"; true,
    AcceptEncoding => "Accept-Encoding"; true,
    AcceptLanguage => "Accept-Language"; true,
    AlertInfo => "Alert-Info"; true,
    Allow => "Allow"; true,
    AllowEvents => "Allow-Events", b'u'; true,
    AuthenticationInfo => "Authentication-Info"; false,
    Authorization => "Authorization"; false,
    CallInfo => "Call-Info"; true,
    ContentDisposition => "Content-Disposition"; false,
    ContentEncoding => "Content-Encoding", b'e'; true,
    ContentLanguage => "Content-Language"; true,
    Date => "Date"; false,
    ErrorInfo => "Error-Info"; true,
    Event => "Event", b'o'; false,
    InReplyTo => "In-Reply-To"; true,
    MinExpires => "Min-Expires"; false,
    MinSe => "Min-SE"; false,
    MimeVersion => "MIME-Version"; false,
    Organization => "Organization"; false,
    Path => "Path"; true,
    Priority => "Priority"; false,
    ProxyAuthenticate => "Proxy-Authenticate"; false,
    ProxyAuthorization => "Proxy-Authorization"; false,
    ProxyRequire => "Proxy-Require"; true,
    RAck => "RAck"; false,
    Reason => "Reason"; true,
    ReferTo => "Refer-To", b'r'; false,
    ReferredBy => "Referred-By", b'b'; false,
    ReplyTo => "Reply-To"; false,
    Require => "Require"; true,
    RetryAfter => "Retry-After"; false,
    RSeq => "RSeq"; false,
    Server => "Server"; false,
    SessionExpires => "Session-Expires", b'x'; false,
    Subject => "Subject", b's'; false,
    SubscriptionState => "Subscription-State"; false,
    Supported => "Supported", b'k'; true,
    Timestamp => "Timestamp"; false,
    Unsupported => "Unsupported"; true,
    UserAgent => "User-Agent"; false,
    Warning => "Warning"; true,
    WwwAuthenticate => "WWW-Authenticate"; false,
    PAssertedIdentity => "P-Asserted-Identity"; true,
    Privacy => "Privacy"; false,
}

/// One header row.
///
/// The value is `buf[vs..ve]`. For a received row without folds `buf` is the whole row
/// as received, so one shared slice serves both for reading the value and for printing
/// the row unchanged; a folded row keeps its unfolded value in `buf` and the row as
/// received in `rare`; a built row has just its value in `buf`. What only some rows need
/// (an extension header's name, a folded row's original bytes) is boxed in `rare`, so
/// that the common row stays small: a message holds a dozen of them.
///
/// Inside a parsed [`Headers`] list, an unfolded received row holds no buffer of its
/// own: its bytes are in the list's one shared buffer, at `offset..offset + len`, so
/// framing a message takes one reference count for all its rows instead of one per
/// row (an atomic increment and decrement each). Such rows are only ever seen through
/// [`HeaderRef`]; [`HeaderRef::to_header`] gives an owned row.
#[derive(Debug, Clone)]
pub struct Header {
    name: HeaderName,
    place: Place,
    vs: u32,
    ve: u32,
    /// Byte offset of the row in the message it was parsed from (0 when built); used
    /// to place errors, and, for a row in a list's buffer, to find its bytes.
    offset: u32,
    /// The row's length, for a row in a list's buffer.
    len: u32,
    buf: Bytes,
    rare: Option<Box<Rare>>,
}

/// Where a row's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A row we build: `buf` is the value, printed canonically.
    Built,
    /// A received row with its own buffer: `buf` is the row as received, or, for a
    /// folded row, its unfolded value.
    Own,
    /// A received row in its list's buffer at `offset..offset + len`; `vs`/`ve` are
    /// relative to the row.
    InList,
}

#[derive(Debug, Clone, Default)]
struct Rare {
    /// The spelling of an extension header's name.
    other_name: Option<Text>,
    /// A folded row as received.
    folded_raw: Option<Bytes>,
}

impl Header {
    /// A header we build: printed canonically as `Name: value`.
    pub fn new(name: HeaderName, value: impl Into<Bytes>) -> Header {
        Header::built(name, None, value.into())
    }

    /// An extension header we build.
    pub fn other(name: &str, value: impl Into<Bytes>) -> Header {
        let kind = HeaderName::from_bytes(name.as_bytes());
        let other = (kind == HeaderName::Other).then(|| Text::from(name));
        Header::built(kind, other, value.into())
    }

    fn built(name: HeaderName, other_name: Option<Text>, buf: Bytes) -> Header {
        let ve = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let rare = other_name.map(|n| Box::new(Rare { other_name: Some(n), folded_raw: None }));
        Header { name, place: Place::Built, vs: 0, ve, offset: 0, len: 0, buf, rare }
    }

    /// A received folded row: `row` as it came, its unfolded value in `unfolded`.
    /// `other_name` is the spelling of an extension header's name.
    pub(crate) fn parsed_folded(name: HeaderName, other_name: Option<Text>, row: Bytes, unfolded: Bytes, offset: usize) -> Header {
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        let ve = u32::try_from(unfolded.len()).unwrap_or(0);
        let rare = Some(Box::new(Rare { other_name, folded_raw: Some(row) }));
        Header { name, place: Place::Own, vs: 0, ve, offset, len: 0, buf: unfolded, rare }
    }

    /// A received unfolded row of a list's buffer: at `offset..offset + len` of it, the
    /// value at `vs..ve` of the row.
    pub(crate) fn in_list(name: HeaderName, other_name: Option<Text>, offset: usize, len: usize, vs: usize, ve: usize) -> Header {
        let n = |v: usize| u32::try_from(v).unwrap_or(0);
        let rare = other_name.map(|n| Box::new(Rare { other_name: Some(n), folded_raw: None }));
        Header { name, place: Place::InList, vs: n(vs), ve: n(ve), offset: n(offset), len: n(len), buf: Bytes::new(), rare }
    }

    /// This row as part of a list attached to `list`.
    pub(crate) fn within<'a>(&'a self, list: &'a Bytes) -> HeaderRef<'a> {
        HeaderRef { h: self, list }
    }

    /// This row, seen with the buffer it lives in.
    fn view(&self) -> HeaderRef<'_> {
        debug_assert!(self.place != Place::InList, "a list's row is read through its list");
        HeaderRef { h: self, list: &self.buf }
    }

    /// Where the row started in the parsed message (0 for a built row).
    pub fn offset(&self) -> usize {
        self.offset as usize
    }

    /// The recognised name (`Other` for extension headers).
    pub fn name(&self) -> HeaderName {
        self.name
    }

    /// The name as spelled on the wire (or the canonical spelling for built headers).
    pub fn name_text(&self) -> &str {
        match self.rare.as_ref().and_then(|r| r.other_name.as_ref()) {
            Some(n) => n,
            None => self.name.as_str(),
        }
    }

    /// The value, unfolded (§7.3.1) and trimmed.
    pub fn value(&self) -> &[u8] {
        self.view().value()
    }

    /// The value as a shared slice of the received buffer.
    pub fn value_bytes(&self) -> Bytes {
        self.view().value_bytes()
    }

    /// The value as a string, if it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.view().value_str()
    }

    /// The exact bytes of the row as received (without the final CRLF), if parsed.
    pub fn raw(&self) -> Option<&[u8]> {
        self.view().raw()
    }

    /// Whether this row has the given name (for `Other`, compares spelling, any case).
    pub fn is(&self, name: &str) -> bool {
        let k = HeaderName::from_bytes(name.as_bytes());
        if k != HeaderName::Other {
            k == self.name
        } else {
            self.name == HeaderName::Other && self.name_text().eq_ignore_ascii_case(name)
        }
    }
}

/// A header row of a [`Headers`] list, with the buffer it lives in: what the list's
/// accessors give. It reads like a [`Header`]; [`HeaderRef::to_header`] makes an owned
/// row (for moving it into another message).
#[derive(Clone, Copy)]
pub struct HeaderRef<'a> {
    h: &'a Header,
    /// The list's buffer (used only by a row that lives in it).
    list: &'a Bytes,
}

impl<'a> HeaderRef<'a> {
    /// The buffer holding the row, and where in it the row starts.
    fn buf(self) -> (&'a Bytes, usize) {
        match self.h.place {
            Place::InList => (self.list, self.h.offset as usize),
            Place::Built | Place::Own => (&self.h.buf, 0),
        }
    }

    /// Where the row started in the parsed message (0 for a built row).
    pub fn offset(self) -> usize {
        self.h.offset()
    }

    /// The recognised name (`Other` for extension headers).
    pub fn name(self) -> HeaderName {
        self.h.name
    }

    /// The name as spelled on the wire (or the canonical spelling for built headers).
    pub fn name_text(self) -> &'a str {
        self.h.name_text()
    }

    /// Whether this row has the given name (for `Other`, compares spelling, any case).
    pub fn is(self, name: &str) -> bool {
        self.h.is(name)
    }

    /// The value, unfolded (§7.3.1) and trimmed.
    pub fn value(self) -> &'a [u8] {
        let (buf, s, e) = self.value_at();
        &buf[s..e]
    }

    /// The value as a shared slice of the received buffer.
    pub fn value_bytes(self) -> Bytes {
        let (buf, s, e) = self.value_at();
        buf.slice(s..e)
    }

    /// The buffer that holds the value and where in it the value lies, for parsers that
    /// work in place.
    pub(crate) fn value_at(self) -> (&'a Bytes, usize, usize) {
        let (buf, base) = self.buf();
        (buf, base + self.h.vs as usize, base + self.h.ve as usize)
    }

    /// The value as a string, if it is UTF-8.
    pub fn value_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.value()).ok()
    }

    /// The exact bytes of the row as received (without the final CRLF), if parsed.
    pub fn raw(self) -> Option<&'a [u8]> {
        if let Some(r) = self.h.rare.as_ref().and_then(|r| r.folded_raw.as_ref()) {
            return Some(r);
        }
        match self.h.place {
            Place::InList => {
                let s = self.h.offset as usize;
                Some(&self.list[s..s + self.h.len as usize])
            }
            Place::Own => Some(&self.h.buf),
            Place::Built => None,
        }
    }

    /// The row as an owned [`Header`], sharing the received bytes (no copy).
    pub fn to_header(self) -> Header {
        match self.h.place {
            Place::Built | Place::Own => self.h.clone(),
            Place::InList => {
                let s = self.h.offset as usize;
                Header { place: Place::Own, buf: self.list.slice(s..s + self.h.len as usize), len: 0, ..self.h.clone() }
            }
        }
    }

    /// Appends the row in wire form (no CRLF).
    pub(crate) fn write(self, out: &mut Vec<u8>) {
        match self.raw() {
            Some(raw) => out.extend_from_slice(raw),
            None => {
                out.extend_from_slice(self.name_text().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(self.value());
            }
        }
    }
}

impl std::fmt::Debug for HeaderRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name_text())
            .field("value", &String::from_utf8_lossy(self.value()))
            .field("raw", &self.raw().map(String::from_utf8_lossy))
            .field("offset", &self.offset())
            .finish()
    }
}

/// The header rows of a message, in order.
///
/// A parsed list keeps the received buffer once, and its unfolded rows refer into it
/// (see [`Header`]); rows pushed later carry their own bytes.
#[derive(Clone, Default)]
pub struct Headers {
    buf: Bytes,
    rows: Vec<Header>,
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The rows of a [`Headers`] list, in order.
#[derive(Clone)]
pub struct Iter<'a> {
    rows: std::slice::Iter<'a, Header>,
    list: &'a Bytes,
}

impl<'a> Iterator for Iter<'a> {
    type Item = HeaderRef<'a>;
    fn next(&mut self) -> Option<HeaderRef<'a>> {
        let list = self.list;
        self.rows.next().map(|h| HeaderRef { h, list })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
    fn nth(&mut self, n: usize) -> Option<HeaderRef<'a>> {
        let list = self.list;
        self.rows.nth(n).map(|h| HeaderRef { h, list })
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let list = self.list;
        self.rows.next_back().map(|h| HeaderRef { h, list })
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl Headers {
    /// An empty list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Replaces row `i` by `new` rows (in place, order kept).
    pub(crate) fn splice_row(&mut self, i: usize, new: Vec<Header>) {
        self.rows.splice(i..=i, new);
    }

    /// An empty list with room for `n` rows. The parser pushes rows made by
    /// [`Header::in_list`] into it and then gives it their buffer with [`Headers::attach`].
    pub(crate) fn with_capacity(n: usize) -> Headers {
        Headers { buf: Bytes::new(), rows: Vec::with_capacity(n) }
    }

    /// The list with `buf` as the buffer its received rows are in.
    pub(crate) fn attach(mut self, buf: Bytes) -> Headers {
        debug_assert!(self.rows.iter().all(|h| h.place != Place::InList || (h.offset as usize + h.len as usize) <= buf.len()));
        self.buf = buf;
        self
    }

    /// All rows, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { rows: self.rows.iter(), list: &self.buf }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first row with this name.
    pub fn get(&self, name: HeaderName) -> Option<HeaderRef<'_>> {
        self.iter().find(|h| h.name() == name)
    }

    /// The first row of an extension header, by name (any case).
    pub fn get_other(&self, name: &str) -> Option<HeaderRef<'_>> {
        self.iter().find(|h| h.is(name))
    }

    /// Every row with this name, in order.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = HeaderRef<'_>> {
        self.iter().filter(move |h| h.name() == name)
    }

    /// Every value of a header, rows merged in order; list headers split at commas that
    /// are outside quotes and `<...>` (§7.3.1). Empty list elements are skipped.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = Bytes> + '_ {
        let list = name.is_list();
        self.get_all(name).flat_map(move |h| {
            let items: Vec<Bytes> =
                if list { split_list(&h.value_bytes()).filter(|v| !v.is_empty()).collect() } else { vec![h.value_bytes()] };
            items
        })
    }

    /// The first row of a numeric header (Expires, Min-Expires, Session-Expires without
    /// its parameters …), parsed on demand: `None` if absent, an error if the number is
    /// missing or does not fit 32 bits (RFC 4475 `scalar02`: never wrapped).
    pub fn number(&self, name: HeaderName) -> Option<Result<u32, ParseError>> {
        let h = self.get(name)?;
        let v = h.value();
        let digits = v.iter().position(|&c| c == b';' || scan::is_ws(c)).map_or(v, |e| &v[..e]);
        Some(scan::parse_u32(digits).ok_or(ParseError::new(ErrorKind::BadHeader(name), h.offset())))
    }

    /// Every address of a name-addr list header (Path, Reply-To, P-Asserted-Identity,
    /// Refer-To …), rows merged in order, parsed on demand.
    pub fn name_addrs(&self, name: HeaderName) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all(name) {
            let (buf, vs, _) = h.value_at();
            for (s, e) in split_ranges(h.value()) {
                if s < e {
                    out.push(NameAddr::parse_at(buf, vs + s, vs + e).map_err(|_| ParseError::new(ErrorKind::BadHeader(name), h.offset()))?);
                }
            }
        }
        Ok(out)
    }

    /// Appends a row.
    pub fn push(&mut self, h: Header) {
        self.rows.push(h);
    }

    /// Inserts a row at `index` (0 = first).
    pub fn insert(&mut self, index: usize, h: Header) {
        let i = index.min(self.rows.len());
        self.rows.insert(i, h);
    }

    /// Removes every row with this name; returns how many were removed.
    pub fn remove(&mut self, name: HeaderName) -> usize {
        let before = self.rows.len();
        self.rows.retain(|h| h.name != name);
        before - self.rows.len()
    }

    /// Removes every row of an extension header (any case).
    pub fn remove_other(&mut self, name: &str) -> usize {
        let before = self.rows.len();
        self.rows.retain(|h| !h.is(name));
        before - self.rows.len()
    }

    /// Replaces all rows of this name with one row, at the place of the first.
    pub fn set(&mut self, h: Header) {
        let same = |r: &Header| r.name == h.name && (h.name != HeaderName::Other || r.name_text().eq_ignore_ascii_case(h.name_text()));
        match self.rows.iter().position(same) {
            Some(first) => {
                let mut i = 0;
                self.rows.retain(|r| {
                    let keep = i <= first || !same(r);
                    i += 1;
                    keep
                });
                self.rows[first] = h;
            }
            None => self.rows.push(h),
        }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = HeaderRef<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_full_compact_any_case() {
        assert_eq!(HeaderName::from_bytes(b"cAlL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"k"), HeaderName::Supported);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        for n in [HeaderName::Via, HeaderName::Contact, HeaderName::ContentLength] {
            assert_eq!(HeaderName::from_bytes(n.as_str().as_bytes()), n);
            let c = [n.compact().expect("has compact form")];
            assert_eq!(HeaderName::from_bytes(&c), n);
        }
    }

    #[test]
    fn numbers_and_addresses_on_demand() {
        let mut h = Headers::new();
        h.push(Header::new(HeaderName::Expires, "0003600"));
        h.push(Header::new(HeaderName::SessionExpires, "1800;refresher=uac"));
        h.push(Header::new(HeaderName::MinExpires, "4294967296"));
        h.push(Header::new(HeaderName::Path, "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"));
        h.push(Header::new(HeaderName::Path, "<sip:p3.example.com;lr>"));
        assert_eq!(h.number(HeaderName::Expires), Some(Ok(3600)));
        assert_eq!(h.number(HeaderName::SessionExpires), Some(Ok(1800)));
        assert_eq!(
            h.number(HeaderName::MinExpires).map(|r| r.map_err(|e| e.kind())),
            Some(Err(ErrorKind::BadHeader(HeaderName::MinExpires)))
        );
        assert_eq!(h.number(HeaderName::RetryAfter), None);
        let path: Vec<String> = h.name_addrs(HeaderName::Path).expect("path").iter().map(|a| a.uri().to_string()).collect();
        assert_eq!(path, ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]);
        h.push(Header::new(HeaderName::ReplyTo, "<sip:a@b"));
        assert!(h.name_addrs(HeaderName::ReplyTo).is_err());
    }

    #[test]
    fn rows_merge_in_order() {
        let mut h = Headers::new();
        h.push(Header::new(HeaderName::Allow, "INVITE, ACK"));
        h.push(Header::new(HeaderName::Subject, "a, b"));
        h.push(Header::new(HeaderName::Allow, "BYE,,CANCEL"));
        let v: Vec<Bytes> = h.values(HeaderName::Allow).collect();
        assert_eq!(v, [&b"INVITE"[..], b"ACK", b"BYE", b"CANCEL"].map(Bytes::from_static));
        let s: Vec<Bytes> = h.values(HeaderName::Subject).collect();
        assert_eq!(s, [Bytes::from_static(b"a, b")]);
        h.set(Header::new(HeaderName::Allow, "OPTIONS"));
        let v: Vec<Bytes> = h.values(HeaderName::Allow).collect();
        assert_eq!(v, [Bytes::from_static(b"OPTIONS")]);
        assert_eq!(h.iter().next().map(|r| r.name()), Some(HeaderName::Allow));
    }
}
