//! `name-addr` / `addr-spec` with header parameters (From, To, Contact, Route,
//! Record-Route, Reply-To …), RFC 3261 §20.10, §25.1.

use crate::scan::{self, is_token, is_ws, Cursor};
use crate::uri::{Params, Uri};
use bytes::Bytes;
use std::fmt;

/// An address: optional display name, URI, and header parameters (`;tag=`, `;q=` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    display_name: Option<Bytes>,
    uri: Uri,
    params: Params,
}

impl NameAddr {
    /// An address with no display name and no parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display_name: None, uri, params: Params::new() }
    }

    /// Builder: sets the display name (unquoted text; quoted on printing).
    pub fn with_display_name(mut self, name: &str) -> NameAddr {
        self.display_name = Some(Bytes::copy_from_slice(name.as_bytes()));
        self
    }

    /// Builder: adds a header parameter.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> NameAddr {
        self.params.set(name, value.map(|v| Bytes::copy_from_slice(v.as_bytes())));
        self
    }

    /// The display name with quotes and quoted-pairs undone. Raw bytes: a quoted display
    /// name may hold any UTF-8, and RFC 4475 `intmeth` puts NUL, BEL and DEL there.
    pub fn display_name(&self) -> Option<&Bytes> {
        self.display_name.as_ref()
    }

    /// The display name as a string, if UTF-8.
    pub fn display_name_str(&self) -> Option<&str> {
        self.display_name.as_ref().and_then(|d| std::str::from_utf8(d).ok())
    }

    /// The URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The URI, mutable.
    pub fn uri_mut(&mut self) -> &mut Uri {
        &mut self.uri
    }

    /// Header parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Header parameters, mutable.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// The `tag` parameter (From/To), if present and valued.
    pub fn tag(&self) -> Option<&str> {
        self.params.value_str("tag")
    }

    /// Parses one address (a whole From/To value, or one element of a Contact/Route
    /// list). Returns the offset of the first bad byte on failure.
    pub fn parse(v: &Bytes) -> Result<NameAddr, usize> {
        NameAddr::parse_at(v, 0, v.len())
    }

    /// Parses `v[s..e]` in place; errors are offsets in `v`.
    pub(crate) fn parse_at(v: &Bytes, s: usize, e: usize) -> Result<NameAddr, usize> {
        let mut c = Cursor::range(v, s, e);
        c.skip_ws();
        let mut display_name = None;
        let uri;
        // Display name: quoted string, or tokens up to '<' (RFC 4475 lwsdisp: no LWS
        // needed before '<'), or nothing.
        if c.peek() == Some(b'"') {
            let (qs, qe, escaped) = c.skip_quoted().ok_or(c.pos)?;
            display_name = Some(scan::unquote_at(v, qs, qe, escaped));
            c.skip_ws();
            if c.peek() != Some(b'<') {
                return Err(c.pos);
            }
        } else if c.peek() != Some(b'<') {
            // Either `token LWS token … <` or an addr-spec.
            let s = c.pos;
            let mut i = s;
            while i < c.end && (is_token(v[i]) || is_ws(v[i])) {
                i += 1;
            }
            if i < c.end && v[i] == b'<' {
                let (a, b) = scan::trim(&v[s..i]);
                if b > a {
                    display_name = Some(v.slice(s + a..s + b));
                }
                c.pos = i;
            }
        }
        if c.peek() == Some(b'<') {
            let open = c.pos;
            let close = scan::find(v, open, b'>').filter(|&x| x < c.end).ok_or(open)?;
            // RFC 4475 badaspec: tolerate white space just inside the brackets.
            let (a, b) = scan::trim(&v[open + 1..close]);
            uri = Uri::parse_at(v, open + 1 + a, open + 1 + b).map_err(|e| open + 1 + a + e)?;
            c.pos = close + 1;
        } else {
            // addr-spec: no display name; the URI ends at white space or ';', and since
            // its parameters would be header parameters it cannot carry `?` headers.
            let s = c.pos;
            let (ss, se) = c.skip_while(|ch| !is_ws(ch) && ch != b';' && ch != b',');
            if se == ss || v[ss..se].contains(&b'?') {
                return Err(s);
            }
            uri = Uri::parse_at(v, ss, se).map_err(|e| s + e)?;
        }
        let params = Params::parse(&mut c, scan::TOKEN, scan::GEN_VALUE)?;
        c.skip_ws();
        if !c.at_end() {
            return Err(c.pos);
        }
        Ok(NameAddr { display_name, uri, params })
    }

    /// Appends the address in canonical form: `"name" <uri>;params`.
    pub fn write(&self, out: &mut Vec<u8>) {
        if let Some(d) = &self.display_name {
            scan::quote(d, out);
            out.push(b' ');
        }
        out.push(b'<');
        self.uri.write(out);
        out.push(b'>');
        self.params.write(out);
    }

    /// The canonical wire form as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut v = Vec::with_capacity(64);
        self.write(&mut v);
        Bytes::from(v)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// A Contact value: `*` (only in REGISTER, to remove all bindings) or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Contacts {
    /// No Contact header.
    #[default]
    None,
    /// `Contact: *`.
    Star,
    /// One or more addresses, rows merged in order.
    List(Vec<NameAddr>),
}

impl Contacts {
    /// The addresses (empty for `None` and `Star`).
    pub fn addrs(&self) -> &[NameAddr] {
        match self {
            Contacts::List(v) => v,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(s: &'static str) -> NameAddr {
        NameAddr::parse(&Bytes::from_static(s.as_bytes())).unwrap_or_else(|e| panic!("{s}: error at {e}"))
    }

    #[test]
    fn forms() {
        let a = na("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ; tag = 98asjd8");
        assert_eq!(a.display_name_str(), Some("J Rosenberg \\\""));
        assert_eq!(a.tag(), Some("98asjd8"));
        let b = na("caller<sip:caller@example.com>;tag=323");
        assert_eq!(b.display_name_str(), Some("caller"));
        let c = na("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(c.display_name(), None);
        assert_eq!(c.tag(), Some("1918181833n"));
        let d = na("< sip:t.watson@example.org >");
        assert_eq!(d.uri().to_string(), "sip:t.watson@example.org");
        let e = na("<sip:a@b;lr>;expires=60;+sip.instance=\"<urn:uuid:1>\"");
        assert!(e.uri().as_sip().is_some_and(|u| u.params().contains("lr")));
        assert_eq!(e.params().value_str("expires"), Some("60"));
    }

    #[test]
    fn refusals() {
        for s in ["Bell, Alexander <sip:a@b>", "\"open <sip:a@b>", "<sip:a@b", "sip:a@b?x=y", "<sip:a@b>;;", "<sip:a@b> junk"] {
            assert!(NameAddr::parse(&Bytes::from_static(s.as_bytes())).is_err(), "{s}");
        }
    }

    #[test]
    fn canonical_print_round_trips() {
        let a = na("\"a \\\"b\\\"\" <sip:x@y>;tag=1");
        let again = NameAddr::parse(&a.to_bytes()).expect("reparse");
        assert_eq!(a, again);
    }
}
