//! Byte-level scanning shared by every grammar in this crate (RFC 3261 §25.1).
//!
//! Header values reach these functions already unfolded (§7.3.1), so linear white space
//! is only SP and HT here.

use bytes::Bytes;

/// Character classes of RFC 3261 §25.1, one bit each, looked up in one table: the
/// parser asks "is this a token character" for almost every byte it reads.
/// `token` (§25.1): alphanum and `-.!%*_+`'~`.
pub(crate) const TOKEN: u8 = 1;
/// `word` (Call-ID): token plus `()<>:\"/[]?{}`.
pub(crate) const WORD: u8 = 2;
/// The user part of a SIP URI (escapes left as they are).
pub(crate) const USER: u8 = 4;
/// The password of a SIP URI.
pub(crate) const PASSWORD: u8 = 8;
/// `paramchar` (§25.1): unreserved / escaped / `[]/:&+$`.
pub(crate) const PARAM: u8 = 16;
/// The `?headers` part of a SIP URI (`hname` / `hvalue`).
pub(crate) const HNAME: u8 = 32;
/// A `generic-param` value outside quotes: token, plus `:` and `[]` so that host
/// values (IPv6 too) read back.
pub(crate) const GEN_VALUE: u8 = 64;
/// A host name or IPv4 address.
pub(crate) const HOST: u8 = 128;

const fn has(set: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == c {
            return true;
        }
        i += 1;
    }
    false
}

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut k = 0;
        if alnum || has(b"-.!%*_+`'~", b) {
            k |= TOKEN | GEN_VALUE;
        }
        if alnum || has(b"-.!%*_+`'~()<>:\\\"/[]?{}", b) {
            k |= WORD;
        }
        // unreserved / escaped / user-unreserved (§25.1 `user`)
        if alnum || has(b"-_.!~*'()%&=+$,;?/", b) {
            k |= USER;
        }
        if alnum || has(b"-_.!~*'()%&=+$,", b) {
            k |= PASSWORD;
        }
        // paramchar = param-unreserved / unreserved / escaped
        if alnum || has(b"-_.!~*'()%[]/:&+$", b) {
            k |= PARAM;
        }
        // hname / hvalue characters of URI headers
        if alnum || has(b"-_.!~*'()%[]/?:+$=&", b) {
            k |= HNAME;
        }
        if has(b":[]", b) {
            k |= GEN_VALUE;
        }
        if alnum || has(b"-._", b) {
            k |= HOST;
        }
        t[c] = k;
        c += 1;
    }
    t
};

const fn class(c: u8, k: u8) -> bool {
    CLASSES[c as usize] & k != 0
}

/// The length of the run of bytes of class `k` (one of the constants above) at the start
/// of `b`, a byte at a time: for the short runs (tokens, parameter names and values)
/// that most fields are.
#[inline(always)]
pub(crate) fn run(b: &[u8], k: u8) -> usize {
    b.iter().position(|&c| !class(c, k)).unwrap_or(b.len())
}

/// Like [`run`], but eight bytes are looked up per step and tested together (about three
/// instructions a byte instead of five): for fields that are usually long (hosts,
/// Call-IDs, the user part of a URI).
#[inline]
pub(crate) fn run_long(b: &[u8], k: u8) -> usize {
    let mut i = 0;
    for ch in b.chunks_exact(8) {
        let m = ch.iter().fold(0xff, |m, &c| m & CLASSES[c as usize]);
        if m & k == 0 {
            break;
        }
        i += 8;
    }
    i + run(&b[i..], k)
}

/// Whether every byte of `b` is of class `k` (true for an empty `b`); for long fields
/// (see [`run_long`]).
#[inline]
pub(crate) fn all_class(b: &[u8], k: u8) -> bool {
    run_long(b, k) == b.len()
}

/// `token` characters (RFC 3261 §25.1): alphanum and `-.!%*_+`'~`.
pub(crate) const fn is_token(c: u8) -> bool {
    class(c, TOKEN)
}

pub(crate) const fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(crate) fn all_token(b: &[u8]) -> bool {
    !b.is_empty() && run(b, TOKEN) == b.len()
}

/// Trims SP/HT at both ends.
pub(crate) fn trim(b: &[u8]) -> (usize, usize) {
    let mut s = 0;
    let mut e = b.len();
    while s < e && is_ws(b[s]) {
        s += 1;
    }
    while e > s && is_ws(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

/// A cursor over one header value (or one start-line element).
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    pub buf: &'a Bytes,
    pub pos: usize,
    pub end: usize,
}

impl<'a> Cursor<'a> {
    pub fn range(buf: &'a Bytes, pos: usize, end: usize) -> Cursor<'a> {
        Cursor { buf, pos, end }
    }

    pub fn peek(&self) -> Option<u8> {
        if self.pos < self.end {
            Some(self.buf[self.pos])
        } else {
            None
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    #[inline(always)]
    pub fn skip_ws(&mut self) {
        while self.pos < self.end && is_ws(self.buf[self.pos]) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after optional white space). Returns whether it was there.
    #[inline(always)]
    pub fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Bytes {
        let s = self.pos;
        while self.pos < self.end && f(self.buf[self.pos]) {
            self.pos += 1;
        }
        self.buf.slice(s..self.pos)
    }

    /// Like `take_while`, but only moves: the range taken, with no slice made.
    #[inline(always)]
    pub fn skip_while(&mut self, f: impl Fn(u8) -> bool) -> (usize, usize) {
        let s = self.pos;
        while self.pos < self.end && f(self.buf[self.pos]) {
            self.pos += 1;
        }
        (s, self.pos)
    }

    /// The run of bytes of class `k` (see [`run`]), as a range.
    #[inline(always)]
    pub fn skip_class(&mut self, k: u8) -> (usize, usize) {
        let s = self.pos;
        let n = match self.buf.get(s..self.end) {
            Some(b) => run(b, k),
            None => 0,
        };
        self.pos = s + n;
        (s, self.pos)
    }

    /// A non-empty run of token characters, as a range.
    #[inline(always)]
    pub fn skip_token(&mut self) -> Option<(usize, usize)> {
        let r = self.skip_class(TOKEN);
        (r.1 > r.0).then_some(r)
    }

    /// The range of a quoted string including its quotes, and whether it holds a
    /// quoted-pair; `None` if unterminated (RFC 3261 §25.1: `quoted-pair = "\\"
    /// (%x00-09 / %x0B-0C / %x0E-7F)`).
    pub fn skip_quoted(&mut self) -> Option<(usize, usize, bool)> {
        let s = self.pos;
        let b = self.buf.get(..self.end)?;
        if b.get(s) != Some(&b'"') {
            return None;
        }
        let mut i = s + 1;
        let mut escaped = false;
        loop {
            i += b.get(i..)?.iter().position(|&c| QUOTED_STOP[c as usize])?;
            match b[i] {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => {
                    self.pos = i + 1;
                    return Some((s, self.pos, escaped));
                }
                _ => return None, // CR or LF
            }
        }
    }
}

/// The bytes that end a run of `qdtext` inside a quoted string: the closing quote, the
/// start of a quoted-pair, and CR/LF (which make it unterminated).
const QUOTED_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// `unquote` of the quoted string `b[s..e]` (as found by [`Cursor::skip_quoted`], which
/// tells whether it holds a quoted-pair), slicing only the inner text when nothing is
/// escaped.
pub(crate) fn unquote_at(b: &Bytes, s: usize, e: usize, escaped: bool) -> Bytes {
    if !escaped {
        return b.slice(s + 1..e - 1);
    }
    unquote(&b.slice(s..e))
}

/// Undoes quoted-pairs inside a quoted string (given with its quotes).
pub(crate) fn unquote(q: &Bytes) -> Bytes {
    if q.len() < 2 || q[0] != b'"' {
        return q.clone();
    }
    let inner = q.slice(1..q.len() - 1);
    if !inner.contains(&b'\\') {
        return inner;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            out.push(inner[i + 1]);
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Bytes::from(out)
}

/// Puts `s` in quotes, escaping `"` and `\` (for printing a display name).
pub(crate) fn quote(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// Splits a comma-separated header value into its elements, respecting quoted strings
/// and `<...>` (RFC 3261 §7.3.1). Elements are trimmed; empty elements are kept so the
/// caller can decide whether they are an error.
pub(crate) fn split_list(v: &Bytes) -> ListIter<'_> {
    ListIter { v, ranges: split_ranges(v) }
}

/// The same split as [`split_list`], as `(start, end)` ranges of `v`: no slice is made
/// until a parser keeps something.
pub(crate) fn split_ranges(v: &[u8]) -> RangeIter<'_> {
    RangeIter { v, pos: 0, done: false }
}

pub(crate) struct ListIter<'a> {
    v: &'a Bytes,
    ranges: RangeIter<'a>,
}

impl Iterator for ListIter<'_> {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        let (s, e) = self.ranges.next()?;
        Some(self.v.slice(s..e))
    }
}

pub(crate) struct RangeIter<'a> {
    v: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for RangeIter<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.done {
            return None;
        }
        let b = self.v;
        let start = self.pos;
        // Most values have no comma at all: one element, no quote tracking needed.
        if memchr(b',', &b[start..]).is_none() {
            self.done = true;
            let (s, e) = trim(&b[start..]);
            return Some((start + s, start + e));
        }
        let mut i = start;
        let mut in_quote = false;
        let mut in_angle = false;
        while i < b.len() {
            let c = b[i];
            if in_quote {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_quote = false;
                }
            } else {
                match c {
                    b'"' => in_quote = true,
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b',' if !in_angle => break,
                    _ => {}
                }
            }
            i += 1;
        }
        let end = i.min(b.len());
        if end >= b.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let (s, e) = trim(&b[start..end]);
        Some((start + s, start + e))
    }
}

/// Parses a decimal number with leading zeros allowed; `None` on overflow of `u64`,
/// empty input or a non-digit.
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

pub(crate) fn parse_u32(b: &[u8]) -> Option<u32> {
    parse_u64(b).and_then(|n| u32::try_from(n).ok())
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2, RFC 3986 §2.1). A `%` not followed by two
/// hex digits is kept literally. Returns the input itself when nothing is escaped.
pub(crate) fn unescape(b: &Bytes) -> Bytes {
    if !b.contains(&b'%') {
        return b.clone();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Bytes::from(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Finds `needle` in `hay` starting at `from`.
pub(crate) fn find(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    memchr(needle, hay.get(from..)?).map(|p| p + from)
}

/// `memchr::memchr` for the short haystacks of a SIP message (a row, a URI: tens of
/// bytes). On x86-64 the SSE2 searcher is used directly: SSE2 is part of the baseline,
/// so it is inlined here, where `memchr::memchr` goes through its run-time dispatch to
/// AVX2 (three calls, about thirty instructions before the first byte is looked at).
#[inline(always)]
pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(f) = memchr::arch::x86_64::sse2::memchr::One::new(needle) {
        return f.find(hay);
    }
    memchr::memchr(needle, hay)
}

/// Like [`memchr`], for any of three bytes.
#[inline(always)]
pub(crate) fn memchr3(a: u8, b: u8, c: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(f) = memchr::arch::x86_64::sse2::memchr::Three::new(a, b, c) {
        return f.find(hay);
    }
    memchr::memchr3(a, b, c, hay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_respects_quotes_and_angles() {
        let v = Bytes::from_static(b"\"a, b\" <sip:x@y;p=1,2>, <sip:z>;q=1 ,, last");
        let items: Vec<Bytes> = split_list(&v).collect();
        assert_eq!(
            items,
            vec![
                Bytes::from_static(b"\"a, b\" <sip:x@y;p=1,2>"),
                Bytes::from_static(b"<sip:z>;q=1"),
                Bytes::new(),
                Bytes::from_static(b"last"),
            ]
        );
    }

    #[test]
    fn unescape_keeps_bad_escapes() {
        assert_eq!(unescape(&Bytes::from_static(b"a%41%zz%4")), &b"aA%zz%4"[..]);
        assert_eq!(unescape(&Bytes::from_static(b"%00-%00")), &b"\0-\0"[..]);
    }

    #[test]
    fn numbers_do_not_wrap() {
        assert_eq!(parse_u32(b"0009"), Some(9));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
        assert_eq!(parse_u32(b"-1"), None);
    }
}
