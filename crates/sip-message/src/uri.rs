//! URIs (RFC 3261 §19.1, §25.1): `sip`/`sips` with every part, `tel` (RFC 3966), and any
//! other scheme kept as an opaque absolute URI.
//!
//! Parts are kept as they were received (escaped); `*_decoded` accessors undo `%HH`
//! escapes, as URI comparison (§19.1.4) requires.

use crate::scan::{self, unescape, Cursor};
use crate::text::Text;
use bytes::Bytes;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A `;name[=value]` parameter (URI, Via or header parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    name: Text,
    value: Option<Bytes>,
}

impl Param {
    /// A parameter with an optional value (the value is printed as given).
    pub fn new(name: impl Into<Text>, value: Option<Bytes>) -> Param {
        Param { name: name.into(), value }
    }

    /// The name as received.
    pub fn name(&self) -> &Text {
        &self.name
    }

    /// The value as received (quotes included for a quoted value); `None` when the
    /// parameter has no `=value`.
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// The value with quotes and quoted-pairs undone.
    pub fn value_unquoted(&self) -> Option<Bytes> {
        self.value.as_ref().map(scan::unquote)
    }

    /// The value with `%HH` escapes undone once (URI parameters, §19.1.2).
    pub fn value_decoded(&self) -> Option<Bytes> {
        self.value.as_ref().map(unescape)
    }

    /// Whether the name is `name`, ignoring case and, in URI parameters, escapes
    /// (`%6C%72` is `lr`, RFC 4475 `esc01`).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || (self.name.contains('%') && unescape(self.name.as_bytes()).eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// An ordered parameter list. Names compare case-insensitively (§19.1.4, §7.3.1).
///
/// A received list keeps its text (`;a=1;b`, already checked against the grammar) and
/// is read in place on each access: parameter lists are short, and a message's many
/// lists (Via, From, To, Contact, URIs) then cost one shared slice each instead of an
/// allocation and two slices per parameter. The first change turns it into a list of
/// [`Param`]s.
#[derive(Clone, Default)]
pub struct Params(Store);

#[derive(Clone)]
enum Store {
    /// As received: every `;`-separated item of this text is a checked parameter.
    Wire(Bytes),
    /// Built or changed.
    Owned(Vec<Param>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Owned(Vec::new())
    }
}

/// Items of a received parameter text: `(name, value)` ranges, split at `;` outside
/// quotes and `[...]`, white space around names, `=` and values trimmed.
struct WireIter<'a> {
    b: &'a [u8],
    pos: usize,
}

/// One received parameter: the range of its name and, if it has one, of its value.
type WireItem = ((usize, usize), Option<(usize, usize)>);

impl Iterator for WireIter<'_> {
    type Item = WireItem;
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.b;
        let start = self.pos + scan::memchr(b';', b.get(self.pos..)?)? + 1;
        // The item ends at the next `;`; only a quoted value or an IPv6 reference can
        // hide one, and those need the slow walk.
        let rest = &b[start..];
        let end = match scan::memchr3(b';', b'"', b'[', rest) {
            None => b.len(),
            Some(i) if rest[i] == b';' => start + i,
            Some(_) => item_end(b, start),
        };
        self.pos = end;
        let trimmed = |s: usize, e: usize| {
            let (a, z) = scan::trim(&b[s..e]);
            (s + a, s + z)
        };
        Some(match scan::memchr(b'=', &b[start..end]) {
            Some(eq) => (trimmed(start, start + eq), Some(trimmed(start + eq + 1, end))),
            None => (trimmed(start, end), None),
        })
    }
}

/// The end of the parameter starting at `start`: the next `;` outside a quoted value
/// and outside an IPv6 reference value. Both can only begin a value (the parser reads
/// them only right after `=`); a `[` inside a `paramchar` run is an ordinary character.
fn item_end(b: &[u8], start: usize) -> usize {
    let (mut quoted, mut bracket) = (false, false);
    let mut after_eq = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if quoted => i += 1,
            b'"' if quoted => quoted = false,
            b'"' if after_eq => quoted = true,
            b'[' if after_eq && !quoted => bracket = true,
            b']' if bracket => bracket = false,
            b';' if !quoted && !bracket => return i,
            _ => {}
        }
        if !scan::is_ws(c) {
            after_eq = c == b'=' && !quoted && !bracket;
        }
        i += 1;
    }
    b.len()
}

impl Params {
    /// An empty list.
    pub fn new() -> Params {
        Params(Store::Owned(Vec::new()))
    }

    fn wire(raw: &Bytes) -> WireIter<'_> {
        WireIter { b: raw, pos: 0 }
    }

    /// The first received parameter named `name`: its name and value ranges in `raw`.
    ///
    /// One pass with a local index: a name is compared before its value is looked at, and
    /// an item that does not match is skipped to the next `;`. The text was checked when
    /// it was parsed, so a name runs to white space, `=` or `;`. A name with an escape, or a
    /// quoted or bracketed value (which may hide a `;`), sends the lookup to the general
    /// walk ([`WireIter`]), which gives the same answer for every list.
    fn find_wire(raw: &Bytes, name: &str) -> Option<WireItem> {
        let b: &[u8] = raw;
        let want = name.as_bytes();
        let ws = |mut i: usize| {
            while i < b.len() && scan::is_ws(b[i]) {
                i += 1;
            }
            i
        };
        let mut i = scan::memchr(b';', b)?;
        loop {
            let ns = ws(i + 1);
            let mut ne = ns;
            while ne < b.len() && !matches!(b[ne], b' ' | b'\t' | b'=' | b';' | b'%') {
                ne += 1;
            }
            if b.get(ne) == Some(&b'%') {
                return Params::find_wire_slow(raw, name);
            }
            let eq = ws(ne);
            let value_start = if b.get(eq) == Some(&b'=') { Some(ws(eq + 1)) } else { None };
            if let Some(vs) = value_start {
                if matches!(b.get(vs), Some(b'"' | b'[')) {
                    return Params::find_wire_slow(raw, name);
                }
            }
            let next = scan::find(b, ne, b';');
            if b[ns..ne].eq_ignore_ascii_case(want) {
                let end = next.unwrap_or(b.len());
                let value = value_start.map(|vs| {
                    let mut ve = end;
                    while ve > vs && scan::is_ws(b[ve - 1]) {
                        ve -= 1;
                    }
                    (vs, ve)
                });
                return Some(((ns, ne), value));
            }
            i = next?;
        }
    }

    fn find_wire_slow(raw: &Bytes, name: &str) -> Option<WireItem> {
        Params::wire(raw).find(|(n, _)| name_is(&raw[n.0..n.1], name))
    }

    /// The parameter named `name`, if present.
    pub fn get(&self, name: &str) -> Option<Param> {
        match &self.0 {
            Store::Wire(raw) => Params::find_wire(raw, name).map(|(n, v)| wire_param(raw, n, v)),
            Store::Owned(v) => v.iter().find(|p| p.is(name)).cloned(),
        }
    }

    /// The value of `name` (`None` if absent or valueless), as received.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        match &self.0 {
            Store::Wire(raw) => {
                let (_, v) = Params::find_wire(raw, name)?;
                v.map(|(s, e)| &raw[s..e])
            }
            Store::Owned(v) => v.iter().find(|p| p.is(name)).and_then(|p| p.value.as_deref()),
        }
    }

    /// The value of `name` as a string, if present, valued and UTF-8.
    pub fn value_str(&self, name: &str) -> Option<&str> {
        self.value(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether `name` is present (with or without value).
    pub fn contains(&self, name: &str) -> bool {
        match &self.0 {
            Store::Wire(raw) => Params::find_wire(raw, name).is_some(),
            Store::Owned(v) => v.iter().any(|p| p.is(name)),
        }
    }

    /// The list as owned parameters, for changing it.
    fn owned(&mut self) -> &mut Vec<Param> {
        if let Store::Wire(raw) = &self.0 {
            let v = Params::wire(raw).map(|(n, val)| wire_param(raw, n, val)).collect();
            self.0 = Store::Owned(v);
        }
        match &mut self.0 {
            Store::Owned(v) => v,
            Store::Wire(_) => unreachable!("converted just above"),
        }
    }

    /// Sets `name`, replacing an existing value in place or appending.
    pub fn set(&mut self, name: &str, value: Option<Bytes>) {
        let v = self.owned();
        match v.iter_mut().find(|p| p.is(name)) {
            Some(p) => p.value = value,
            None => v.push(Param::new(name, value)),
        }
    }

    /// Removes `name`; returns whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let v = self.owned();
        let n = v.len();
        v.retain(|p| !p.is(name));
        n != v.len()
    }

    /// All parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = Param> + '_ {
        let (wire, owned) = match &self.0 {
            Store::Wire(raw) => (Some(Params::wire(raw).map(move |(n, v)| wire_param(raw, n, v))), None),
            Store::Owned(v) => (None, Some(v.iter().cloned())),
        };
        wire.into_iter().flatten().chain(owned.into_iter().flatten())
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        match &self.0 {
            Store::Wire(raw) => Params::wire(raw).count(),
            Store::Owned(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut one = |name: &[u8], value: Option<&[u8]>| {
            out.push(b';');
            out.extend_from_slice(name);
            if let Some(v) = value {
                out.push(b'=');
                out.extend_from_slice(v);
            }
        };
        match &self.0 {
            Store::Wire(raw) => {
                for (n, v) in Params::wire(raw) {
                    one(&raw[n.0..n.1], v.map(|(s, e)| &raw[s..e]));
                }
            }
            Store::Owned(v) => {
                for p in v {
                    one(p.name.as_bytes(), p.value.as_deref());
                }
            }
        }
    }

    /// Parses `*( SWS ";" SWS name [ SWS "=" SWS value ] )` at the cursor, stopping at
    /// the first byte that is not `;` (after white space). Values are tokens, quoted
    /// strings, IPv6 references or (for URI parameters) `paramchar` runs. The checked
    /// text is kept as it is (see [`Params`]).
    #[inline(always)]
    pub(crate) fn parse(c: &mut Cursor<'_>, name_class: u8, value_class: u8) -> Result<Params, usize> {
        // Most lists are empty: the value ends, or `>`, `,` or `?` follows.
        match c.peek() {
            Some(b';' | b' ' | b'\t') => {
                // The list is read out of line from a copy of the cursor: the caller's
                // cursor does not escape, so it can stay in registers.
                let (params, pos) = Params::parse_list(*c, name_class, value_class)?;
                c.pos = pos;
                Ok(params)
            }
            _ => Ok(Params::new()),
        }
    }

    /// The list itself, read with a local index over the value; returns it and where it
    /// ends.
    fn parse_list(mut cur: Cursor<'_>, name_class: u8, value_class: u8) -> Result<(Params, usize), usize> {
        let c = &mut cur;
        let b: &[u8] = c.buf.get(..c.end).unwrap_or_default();
        let ws = |mut i: usize| {
            while b.get(i).is_some_and(|&x| scan::is_ws(x)) {
                i += 1;
            }
            i
        };
        let first = c.pos;
        let mut last = first;
        let mut i = first;
        loop {
            i = ws(i);
            if b.get(i) != Some(&b';') {
                if last == first {
                    return Ok((Params::new(), last));
                }
                return Ok((Params(Store::Wire(wire_text(c.buf, first, last))), last));
            }
            i = ws(i + 1);
            let ne = i + scan::run_long(b.get(i..).unwrap_or_default(), name_class);
            if ne == i {
                return Err(i);
            }
            last = ne;
            let eq = ws(ne);
            if b.get(eq) == Some(&b'=') {
                let vs = ws(eq + 1);
                let ve = match b.get(vs) {
                    Some(b'"') => {
                        c.pos = vs;
                        c.skip_quoted().ok_or(vs)?.1
                    }
                    Some(b'[') => scan::memchr(b']', &b[vs..]).ok_or(vs)? + vs + 1,
                    _ => vs + scan::run_long(b.get(vs..).unwrap_or_default(), value_class),
                };
                if ve == vs {
                    return Err(vs);
                }
                last = ve;
            }
            i = last;
        }
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A received parameter text, `buf[s..e]`: a static when it is one of the few whole lists
/// that most messages carry (`;lr` in every Route and Record-Route from a loose router,
/// `;transport=…` in Contacts), since a static needs no reference count; otherwise the
/// slice itself.
fn wire_text(buf: &Bytes, s: usize, e: usize) -> Bytes {
    const COMMON: [&[u8]; 4] = [b";lr", b";transport=udp", b";transport=tcp", b";transport=tls"];
    let b = &buf[s..e];
    for c in COMMON {
        if b == c {
            return Bytes::from_static(c);
        }
    }
    buf.slice(s..e)
}

/// Whether a received parameter name is `name` (see [`Param::is`]).
fn name_is(n: &[u8], name: &str) -> bool {
    n.eq_ignore_ascii_case(name.as_bytes())
        || (n.contains(&b'%') && unescape(&Bytes::copy_from_slice(n)).eq_ignore_ascii_case(name.as_bytes()))
}

fn wire_param(raw: &Bytes, n: (usize, usize), v: Option<(usize, usize)>) -> Param {
    Param { name: Text::common_at(raw, n.0, n.1, Text::PARAM_NAMES), value: v.map(|(s, e)| raw.slice(s..e)) }
}

/// A host: domain name, IPv4 address or IPv6 reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name as received (compare case-insensitively).
    Domain(Text),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written `[…]` in URIs and Via).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host; `None` if it is empty or holds characters no host can have.
    pub fn parse(b: &Bytes) -> Option<Host> {
        Host::parse_at(b, 0, b.len())
    }

    /// Parses `buf[s..e]`; only a domain name takes a slice of the buffer.
    pub(crate) fn parse_at(buf: &Bytes, s: usize, e: usize) -> Option<Host> {
        let b = &buf[s..e];
        if b.first() == Some(&b'[') {
            if b.len() < 2 || b.last() != Some(&b']') {
                return None;
            }
            let v6 = std::str::from_utf8(&b[1..b.len() - 1]).ok()?;
            return v6.parse().ok().map(Host::Ipv6);
        }
        if b.is_empty() || !scan::all_class(b, scan::HOST) {
            return None;
        }
        Some(Host::from_host_chars(buf, s, e))
    }

    /// `buf[s..e]`, already known to be a run of host characters: `None` if it is
    /// empty, else an IPv4 address or a domain name.
    pub(crate) fn from_host_run(buf: &Bytes, s: usize, e: usize) -> Option<Host> {
        (e > s).then(|| Host::from_host_chars(buf, s, e))
    }

    /// `buf[s..e]`, already known to be a non-empty run of host characters: an IPv4
    /// address or a domain name.
    fn from_host_chars(buf: &Bytes, s: usize, e: usize) -> Host {
        // Only a host starting with a digit can be a dotted quad; `parse_ipv4` turns
        // anything else (`3com.example`) down quickly, and it stays a domain name.
        if buf[s].is_ascii_digit() {
            if let Some(ip) = parse_ipv4(&buf[s..e]) {
                return Host::Ipv4(ip);
            }
        }
        Host::Domain(Text::from_checked(buf.slice(s..e)))
    }

    /// The host at the start of `buf[s..end]`, up to the first byte that is not a host
    /// character, or an IPv6 reference `[...]`: the host and where it ends. `None` if
    /// there is none or it does not parse; the caller checks what follows.
    pub(crate) fn parse_prefix(buf: &Bytes, s: usize, end: usize) -> Option<(Host, usize)> {
        if buf.get(s) == Some(&b'[') {
            let e = scan::memchr(b']', buf.get(s..end)?)? + s + 1;
            return Some((Host::parse_at(buf, s, e)?, e));
        }
        let e = s + scan::run_long(buf.get(s..end)?, scan::HOST);
        (e > s).then(|| (Host::from_host_chars(buf, s, e), e))
    }

    /// Whether the parser reads this host back as it is from its printed form: an IP
    /// address, or a domain name of host characters that does not spell an IPv4 address
    /// (a `Domain("192.0.2.1")` would come back as `Ipv4`).
    pub(crate) fn round_trips(&self) -> bool {
        match self {
            Host::Domain(d) => {
                let b = d.as_bytes();
                !b.is_empty() && scan::all_class(b, scan::HOST) && !(b[0].is_ascii_digit() && parse_ipv4(b).is_some())
            }
            Host::Ipv4(_) | Host::Ipv6(_) => true,
        }
    }

    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }

    /// Appends the host in wire form (an IPv6 address in brackets).
    pub fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        match self {
            Host::Domain(d) => out.extend_from_slice(d.as_bytes()),
            Host::Ipv4(a) => crate::digits::push_ipv4(out, *a),
            Host::Ipv6(a) => {
                let _ = write!(out, "[{a}]");
            }
        }
    }
}

/// Whether `p` is `sip:` in any case: one compare of the four bytes, with the letters
/// folded to lower case (`|0x20` maps only `S`, `I`, `P` onto `s`, `i`, `p`; the colon
/// is compared exactly).
fn is_sip_colon(p: [u8; 4]) -> bool {
    u32::from_le_bytes(p) | 0x0020_2020 == u32::from_le_bytes(*b"sip:")
}

/// Dotted-quad IPv4 (`IPv4address`, §25.1), as `Ipv4Addr::from_str` reads it (four
/// parts of one to three digits, at most 255, no leading zeros), in one pass and without
/// the UTF-8 round trip. Anything else is a domain name.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10);
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, o) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        let mut v = u32::from(first);
        i += 1;
        // A leading zero is the whole part (`01` is refused by what must follow it).
        if first != 0 {
            for _ in 0..2 {
                match digit(i) {
                    Some(d) => v = v * 10 + u32::from(d),
                    None => break,
                }
                i += 1;
            }
        }
        *o = u8::try_from(v).ok()?;
    }
    (i == b.len()).then_some(Ipv4Addr::from(octets))
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    secure: bool,
    user: Option<Text>,
    host: Host,
    port: Option<u16>,
    params: Params,
    /// The password and the `?headers` part, which few URIs have: boxed, so that every
    /// URI (four or more in each message) is smaller to move. `None` when both are absent.
    rare: Option<Box<UriRare>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UriRare {
    password: Option<Text>,
    headers: Option<Text>,
}

impl UriRare {
    fn boxed(password: Option<Text>, headers: Option<Text>) -> Option<Box<UriRare>> {
        (password.is_some() || headers.is_some()).then(|| Box::new(UriRare { password, headers }))
    }
}

impl SipUri {
    /// A URI `sip:host` (or `sips:` when `secure`).
    pub fn new(secure: bool, host: Host) -> SipUri {
        SipUri { secure, user: None, host, port: None, params: Params::new(), rare: None }
    }

    /// Builder: sets the user part (given escaped, as it goes on the wire).
    pub fn with_user(mut self, user: impl Into<Text>) -> SipUri {
        self.user = Some(user.into());
        self
    }

    /// Builder: sets the port.
    pub fn with_port(mut self, port: u16) -> SipUri {
        self.port = Some(port);
        self
    }

    /// Builder: adds a URI parameter.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> SipUri {
        self.params.set(name, value.map(|v| Bytes::copy_from_slice(v.as_bytes())));
        self
    }

    /// `sips`?
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as received (escaped).
    pub fn user(&self) -> Option<&Text> {
        self.user.as_ref()
    }
    /// The user part with `%HH` escapes undone (may hold any octet, NUL included).
    pub fn user_decoded(&self) -> Option<Bytes> {
        self.user.as_ref().map(|u| unescape(u.as_bytes()))
    }
    /// The password as received.
    pub fn password(&self) -> Option<&Text> {
        self.rare.as_ref().and_then(|r| r.password.as_ref())
    }
    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// URI parameters (`;transport=`, `;lr`, `;maddr=` …).
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// Mutable URI parameters.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }
    /// The escaped headers part after `?`, as received.
    pub fn headers(&self) -> Option<&Text> {
        self.rare.as_ref().and_then(|r| r.headers.as_ref())
    }
    /// Removes the `?headers` part (it must never appear in a Request-URI, §19.1.1).
    pub fn clear_headers(&mut self) {
        let password = self.rare.take().and_then(|r| r.password);
        self.rare = UriRare::boxed(password, None);
    }
    /// Sets the user part.
    pub fn set_user(&mut self, user: Option<Text>) {
        self.user = user;
    }
    /// Sets the host.
    pub fn set_host(&mut self, host: Host) {
        self.host = host;
    }
    /// Sets the port.
    pub fn set_port(&mut self, port: Option<u16>) {
        self.port = port;
    }

    /// RFC 3261 §19.1.4 equivalence, for matching a REGISTER's Contact to a binding:
    /// scheme, user (after unescaping) and password compared exactly, host
    /// case-insensitively, the port only when written the same way; `user`, `ttl`,
    /// `method`, `maddr` and `transport` must agree when either side has them, other
    /// parameters only when both do; the headers part must be the same.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        let host_eq = match (&self.host, &other.host) {
            (Host::Domain(a), Host::Domain(b)) => a.as_str().eq_ignore_ascii_case(b.as_str()),
            (a, b) => a == b,
        };
        if self.secure != other.secure || !host_eq || self.port != other.port || self.password() != other.password() {
            return false;
        }
        if self.user_decoded() != other.user_decoded() || self.headers() != other.headers() {
            return false;
        }
        let same =
            |a: &Param, b: &Param| a.value_decoded().map(|v| v.to_ascii_lowercase()) == b.value_decoded().map(|v| v.to_ascii_lowercase());
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            match (self.params.get(name), other.params.get(name)) {
                (None, None) => {}
                (Some(a), Some(b)) if same(&a, &b) => {}
                _ => return false,
            }
        }
        self.params.iter().all(|a| other.params.get(a.name().as_str()).is_none_or(|b| same(&a, &b)))
    }

    /// Parses `b[start..end]`, the text after `sip:` / `sips:`; errors are absolute offsets.
    fn parse_rest(secure: bool, b: &Bytes, start: usize, end: usize) -> Result<Uri, usize> {
        let (mut user, mut password) = (None, None);
        let mut pos = start;
        // userinfo: everything before the first `@`, if there is one. The user part
        // cannot hold `@` or `:`, so one run of user characters usually finds the `@`
        // (or, for a URI without one, runs to the end of the parameters).
        let ue = start + scan::run(&b[start..end], scan::USER);
        let at = match b.get(ue) {
            Some(b'@') if ue < end => Some(ue),
            _ if ue < end => scan::memchr(b'@', &b[ue..end]).map(|i| ue + i),
            _ => None,
        };
        if let Some(at) = at {
            // `user [":" password] "@"`: the user part ends at the first `:` or at `@`.
            let colon = ue < at && b[ue] == b':';
            if ue == start || (ue < at && !colon) {
                return Err(start);
            }
            user = Some(Text::from_checked(b.slice(start..ue)));
            if colon {
                if !scan::all_class(&b[ue + 1..at], scan::PASSWORD) {
                    return Err(ue + 1);
                }
                password = Some(Text::from_checked(b.slice(ue + 1..at)));
            }
            pos = at + 1;
        }
        // host: it must end at the port, the parameters, the headers or the end.
        let hs = pos;
        let (host, he) = Host::parse_prefix(b, hs, end).ok_or(hs)?;
        if b[hs] != b'[' && he < end && !matches!(b[he], b':' | b';' | b'?') {
            return Err(hs);
        }
        pos = he;
        let mut port = None;
        if pos < end && b[pos] == b':' {
            let ps = pos + 1;
            pos = ps;
            while pos < end && b[pos].is_ascii_digit() {
                pos += 1;
            }
            port = Some(scan::parse_u64(&b[ps..pos]).and_then(|p| u16::try_from(p).ok()).ok_or(ps)?);
        }
        let mut c = Cursor::range(b, pos, end);
        let params = Params::parse(&mut c, scan::PARAM, scan::PARAM)?;
        let mut headers = None;
        if c.peek() == Some(b'?') {
            let hs = c.pos + 1;
            if hs >= end || !scan::all_class(&b[hs..end], scan::HNAME) {
                return Err(hs);
            }
            headers = Some(Text::from_checked(b.slice(hs..end)));
            c.pos = end;
        }
        if !c.at_end() {
            return Err(c.pos);
        }
        Ok(Uri::Sip(SipUri { secure, user, host, port, params, rare: UriRare::boxed(password, headers) }))
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.secure { b"sips:" } else { b"sip:" });
        if let Some(u) = &self.user {
            out.extend_from_slice(u.as_bytes());
            if let Some(p) = self.password() {
                out.push(b':');
                out.extend_from_slice(p.as_bytes());
            }
            out.push(b'@');
        }
        self.host.write(out);
        if let Some(p) = self.port {
            out.push(b':');
            crate::digits::push_u64(out, u64::from(p));
        }
        self.params.write(out);
        if let Some(h) = self.headers() {
            out.push(b'?');
            out.extend_from_slice(h.as_bytes());
        }
    }
}

/// A `tel:` URI (RFC 3966): the number and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    number: Text,
    params: Params,
}

impl TelUri {
    /// The subscriber number as received (`+1-201-555-0123`, `7042;phone-context=…` minus
    /// the parameters).
    pub fn number(&self) -> &Text {
        &self.number
    }
    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// Any URI: SIP, tel, or another scheme kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Any other absolute URI, unparsed: scheme and the rest after `:`.
    Other {
        /// The scheme as received.
        scheme: Text,
        /// Everything after the colon.
        rest: Text,
    },
}

impl Uri {
    /// Parses a complete URI (no surrounding white space or brackets); the error is the
    /// offset of the first bad byte.
    pub fn parse(b: &Bytes) -> Result<Uri, usize> {
        Uri::parse_at(b, 0, b.len())
    }

    /// Parses `b[s..e]` in place (no intermediate slice); the error is relative to `s`.
    pub(crate) fn parse_at(b: &Bytes, s: usize, e: usize) -> Result<Uri, usize> {
        // Nearly every URI is `sip:`; its scheme needs no further check.
        let sip_prefix = e >= s + 4 && b.get(s..s + 4).and_then(|p| <[u8; 4]>::try_from(p).ok()).is_some_and(is_sip_colon);
        let colon = if sip_prefix { s + 3 } else { scan::memchr(b':', &b[s..e]).ok_or(0usize)? + s };
        let scheme = &b[s..colon];
        if !sip_prefix
            && (scheme.is_empty()
                || !scheme[0].is_ascii_alphabetic()
                || !scheme.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))
        {
            return Err(0);
        }
        if sip_prefix || scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            let secure = scheme.len() == 4;
            return SipUri::parse_rest(secure, b, colon + 1, e).map_err(|o| o - s);
        }
        // Every other scheme: printable ASCII, no white space (RFC 3986 characters).
        let rest = &b[colon + 1..e];
        if let Some(i) = rest.iter().position(|&c| !(0x21..0x7f).contains(&c) || matches!(c, b'<' | b'>' | b'"')) {
            return Err(colon + 1 + i - s);
        }
        if scheme.eq_ignore_ascii_case(b"tel") {
            let mut c = Cursor::range(b, colon + 1, e);
            let number = c.take_while(|ch| ch != b';');
            if number.is_empty() {
                return Err(colon + 1 - s);
            }
            let params = Params::parse(&mut c, scan::PARAM, scan::PARAM).map_err(|o| o - s)?;
            if !c.at_end() {
                return Err(c.pos - s);
            }
            return Ok(Uri::Tel(TelUri { number: Text::from_checked(number), params }));
        }
        Ok(Uri::Other { scheme: Text::from_checked(b.slice(s..colon)), rest: Text::from_checked(b.slice(colon + 1..e)) })
    }

    /// Parses from a string (convenience for tests and configuration).
    pub fn parse_str(s: &str) -> Result<Uri, usize> {
        Uri::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The scheme, lower case for the known ones.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// Appends the URI in wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Uri::Sip(u) => u.write(out),
            Uri::Tel(t) => {
                out.extend_from_slice(b"tel:");
                out.extend_from_slice(t.number.as_bytes());
                t.params.write(out);
            }
            Uri::Other { scheme, rest } => {
                out.extend_from_slice(scheme.as_bytes());
                out.push(b':');
                out.extend_from_slice(rest.as_bytes());
            }
        }
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Uri {
        Uri::Sip(u)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(64);
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 3261 §19.1.4.
    #[test]
    fn equivalence_follows_section_19_1_4() {
        let u = |s: &str| match Uri::parse_str(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        };
        let equal = [
            ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
        ];
        for (a, b) in equal {
            assert!(u(a).equivalent(&u(b)), "{a} == {b}");
            assert!(u(b).equivalent(&u(a)), "{b} == {a}");
        }
        let different = [
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            ("sip:a@h;x=1", "sip:a@h;x=2"),
            ("sips:a@h", "sip:a@h"),
        ];
        for (a, b) in different {
            assert!(!u(a).equivalent(&u(b)), "{a} != {b}");
            assert!(!u(b).equivalent(&u(a)), "{b} != {a}");
        }
    }

    #[test]
    fn one_pass_lookup_agrees_with_the_walk() {
        let lists = [
            ";branch=z9hG4bK776asdhds;rport",
            " ; rport ; branch = z9hG4bKx ;received=1.2.3.4",
            ";tag=1928301774",
            ";x=\"a;branch=no\";branch=yes",
            ";maddr=[::1];branch=b;tag",
            ";%62ranch=esc;branch=plain",
            ";TAG=Up;tag=low",
            ";lr",
            ";a[b]=c;tag=t",
        ];
        for l in lists {
            let raw = Bytes::copy_from_slice(l.as_bytes());
            for name in ["branch", "tag", "rport", "lr", "received", "maddr", "x", "a[b]", "none"] {
                assert_eq!(Params::find_wire(&raw, name), Params::find_wire_slow(&raw, name), "{l} / {name}");
            }
        }
    }

    fn sip(s: &str) -> SipUri {
        match Uri::parse_str(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn full_sip_uri() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=1");
        assert!(u.is_secure());
        assert_eq!(u.user().map(|t| t.as_str()), Some("alice"));
        assert_eq!(u.password().map(|t| t.as_str()), Some("secret"));
        assert_eq!(u.host(), &Host::Ipv6("2001:db8::1".parse().expect("v6")));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.params().value_str("transport"), Some("tls"));
        assert!(u.params().contains("LR"));
        assert_eq!(u.headers().map(|t| t.as_str()), Some("Subject=hi&X=1"));
        let mut out = Vec::new();
        u.write(&mut out);
        assert_eq!(out, b"sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=1");
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user_decoded().as_deref(), Some(&b"user;par=u@example.net"[..]));
        assert_eq!(u.host(), &Host::Domain(Text::from("example.com")));
        assert!(u.params().is_empty());
    }

    #[test]
    fn tel_and_other_schemes() {
        match Uri::parse_str("tel:+1-201-555-0123;phone-context=example.com") {
            Ok(Uri::Tel(t)) => {
                assert_eq!(t.number(), "+1-201-555-0123");
                assert_eq!(t.params().value_str("phone-context"), Some("example.com"));
            }
            other => panic!("{other:?}"),
        }
        let u = Uri::parse_str("soap.beep://192.0.2.103:3002").expect("opaque");
        assert_eq!(u.scheme(), "soap.beep");
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn wire_params_split_like_the_parser() {
        // A `[` inside a paramchar run is not an IPv6 reference; a quoted value may hide `;`.
        let u = sip("sip:h;x=a[b;lr;maddr=[2001:db8::1];y");
        let names: Vec<String> = u.params().iter().map(|p| p.name().to_string()).collect();
        assert_eq!(names, ["x", "lr", "maddr", "y"]);
        assert_eq!(u.params().value_str("x"), Some("a[b"));
        assert!(u.params().contains("lr"));
        assert_eq!(u.params().value_str("maddr"), Some("[2001:db8::1]"));
        let na = crate::NameAddr::parse(&Bytes::from_static(b"<sip:a@b>;p=\"x;y=\\\"z\";tag = 7 ;q")).expect("parses");
        assert_eq!(na.params().value_str("p"), Some("\"x;y=\\\"z\""));
        assert_eq!(na.tag(), Some("7"));
        assert!(na.params().get("q").is_some_and(|p| p.value().is_none()));
        assert_eq!(na.params().len(), 3);
    }

    #[test]
    fn sip_colon_any_case() {
        for p in [b"sip:", b"SIP:", b"sIp:", b"SiP:"] {
            assert!(is_sip_colon(*p));
        }
        for p in [b"sip\x1a", b"sips", b"tel:", b"sjp:", b"sip;", b"\x13ip:", b"si\x10:"] {
            assert!(!is_sip_colon(*p), "{p:?}");
        }
    }

    #[test]
    fn ipv4_like_std() {
        for s in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4a",
            "1234.1.1.1",
            "10.0.0.10",
            "199.99.9.0",
            "3com.example",
            "",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s}");
        }
    }

    #[test]
    fn bad_uris() {
        for s in ["sip:", "sip:@host", "sip:a@", "sip:a@host:99999", "sip:a@host;", "sip:a b@c", "nocolon", "1x:y", "sip:a@h;lr?"] {
            assert!(Uri::parse_str(s).is_err(), "{s} should fail");
        }
    }
}
