//! The auth-param list of a challenge or credentials (RFC 3261 §25.1, RFC 7235 §2.1):
//! `Digest` LWS `name=value *(, name=value)`, values a token or a quoted-string.
//!
//! Lenient where clients are sloppy (any whitespace, empty list elements, an unquoted
//! value that is not strictly a token), strict where ambiguity would matter (a
//! parameter we read given twice is malformed, an unterminated quoted-string too).

/// The header value is not well-formed Digest (the caller answers `Failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// What a header value turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Another scheme (Basic, Bearer, …): not ours to judge.
    NotDigest,
    /// A Digest parameter list, names lowercased, quoted values unescaped.
    Digest(Params),
}

/// The parameters of one Digest challenge or credentials, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The value of `name` (lowercase); a parameter given twice is malformed, since
    /// which copy the client meant cannot be known.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, Malformed> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(Malformed);
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 §25.1 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Parses a WWW-Authenticate / Authorization (or Proxy-) value. Every split happens at
/// an ASCII byte, so slicing the `&str` there always lands on a char boundary.
pub(crate) fn parse(value: &str) -> Result<Parsed, Malformed> {
    let b = value.as_bytes();
    let start = skip_ws(b, 0);
    let mut i = start;
    while i < b.len() && is_token(b[i]) {
        i += 1;
    }
    if i == start {
        return Err(Malformed);
    }
    if !value[start..i].eq_ignore_ascii_case("Digest") {
        return Ok(Parsed::NotDigest);
    }
    if i < b.len() && !is_ws(b[i]) {
        return Err(Malformed);
    }
    let mut params = Vec::new();
    i = skip_ws(b, i);
    loop {
        // RFC 7230 §7: empty list elements are allowed and ignored.
        while i < b.len() && b[i] == b',' {
            i = skip_ws(b, i + 1);
        }
        if i == b.len() {
            break;
        }
        let name_start = i;
        while i < b.len() && is_token(b[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(Malformed);
        }
        let name = value[name_start..i].to_ascii_lowercase();
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(Malformed);
        }
        i = skip_ws(b, i + 1);
        let (val, next) = if b.get(i) == Some(&b'"') { quoted(value, i)? } else { bare(value, i)? };
        params.push((name, val));
        i = skip_ws(b, next);
        if i < b.len() && b[i] != b',' {
            return Err(Malformed);
        }
    }
    if params.is_empty() {
        return Err(Malformed);
    }
    Ok(Parsed::Digest(Params(params)))
}

/// An unquoted value: up to whitespace or a comma, never empty.
fn bare(value: &str, start: usize) -> Result<(String, usize), Malformed> {
    let b = value.as_bytes();
    let mut i = start;
    while i < b.len() && !is_ws(b[i]) && b[i] != b',' && b[i] != b'"' {
        i += 1;
    }
    if i == start {
        return Err(Malformed);
    }
    Ok((value[start..i].to_owned(), i))
}

/// A quoted-string starting at `start` (the opening quote), with RFC 3261 §25.1
/// quoted-pair escapes removed; returns the index after the closing quote.
fn quoted(value: &str, start: usize) -> Result<(String, usize), Malformed> {
    let b = value.as_bytes();
    let mut out = String::new();
    let mut seg = start + 1;
    let mut i = seg;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&value[seg..i]);
                return Ok((out, i + 1));
            }
            b'\\' => {
                out.push_str(&value[seg..i]);
                let c = value[i + 1..].chars().next().ok_or(Malformed)?;
                out.push(c);
                i += 1 + c.len_utf8();
                seg = i;
            }
            _ => i += 1,
        }
    }
    Err(Malformed)
}

/// `s` as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1 quoted-pair).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(v: &str) -> Params {
        match parse(v) {
            Ok(Parsed::Digest(p)) => p,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    #[test]
    fn any_whitespace_and_order() {
        let p = params("  digest\tRealm = \"a b\" ,,\r\n nonce=\"n\",qop=auth , nc=00000001,  ");
        assert_eq!(p.get("realm"), Ok(Some("a b")));
        assert_eq!(p.get("nonce"), Ok(Some("n")));
        assert_eq!(p.get("qop"), Ok(Some("auth")));
        assert_eq!(p.get("nc"), Ok(Some("00000001")));
        assert_eq!(p.get("cnonce"), Ok(None));
    }

    #[test]
    fn escapes_and_non_ascii() {
        let p = params(r#"Digest username="a\"b\\c\é", realm="ré,alm""#);
        assert_eq!(p.get("username"), Ok(Some(r#"a"b\cé"#)));
        assert_eq!(p.get("realm"), Ok(Some("ré,alm")));
        let again = params(&format!("Digest username={}", quote(r#"a"b\c"#)));
        assert_eq!(again.get("username"), Ok(Some(r#"a"b\c"#)));
    }

    #[test]
    fn other_schemes_and_garbage() {
        assert_eq!(parse("Basic dXNlcjpwYXNz"), Ok(Parsed::NotDigest));
        for bad in [
            "",
            "   ",
            "Digest",
            "Digest ",
            "Digest,realm=\"x\"",
            "Digest realm",
            "Digest realm=",
            "Digest realm=\"unterminated",
            "Digest realm=\"x\\",
            "Digest realm=\"x\" nonce=\"y\"",
            "Digest =x",
            "Digest realm=\"x\"\"y\"",
            "\"Digest\" realm=x",
        ] {
            assert_eq!(parse(bad), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn duplicates_are_malformed_when_read() {
        let p = params("Digest realm=a, realm=b, foo=1");
        assert_eq!(p.get("realm"), Err(Malformed));
        assert_eq!(p.get("foo"), Ok(Some("1")));
    }
}
