//! The digest hashing rules: H, HA1, HA2 and the request-digest (RFC 7616 §3.4.1–§3.4.3,
//! RFC 3261 §22.4 with RFC 8760 §2.2 for SHA-256).

use md5::Md5;
use sha2::Sha256;

/// A digest algorithm we compute (RFC 8760 §2.2). The `-sess` variants are not supported:
/// they need the server to keep per-session state a stateless nonce avoids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, RFC 2617's algorithm and the default when `algorithm` is absent.
    Md5,
    /// `SHA-256`, RFC 8760's (and RFC 7616's) preferred algorithm.
    Sha256,
}

impl Algorithm {
    /// The token as written in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Recognises an `algorithm=` token, case-insensitively (RFC 7616 §3.3).
    pub fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// `H(p0 ":" p1 ":" …)` in lowercase hex (RFC 7616 §3.4.1: "H(data)" is hex-encoded).
    pub(crate) fn hash(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 => hex_hash::<Md5>(parts),
            Algorithm::Sha256 => hex_hash::<Sha256>(parts),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_hash<D: sha2::Digest>(parts: &[&[u8]]) -> String {
    let mut h = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex(&h.finalize())
}

/// Lowercase hex, the form digests and our nonces travel in.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The inputs of one request-digest, as the client sent them (unquoted).
pub(crate) struct DigestInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a [u8],
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    /// `(nc, cnonce, qop)`; `None` is RFC 2069's form, which only our client helper
    /// produces (the server insists on qop=auth).
    pub qop: Option<(&'a str, &'a str, &'a str)>,
}

/// RFC 7616 §3.4.1: `response = KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))`
/// with `A1 = username ":" realm ":" password` (§3.4.2) and `A2 = method ":" uri`
/// (§3.4.3, qop=auth); without qop, RFC 2069's `KD(H(A1), nonce ":" H(A2))`.
pub(crate) fn request_digest(i: &DigestInput<'_>) -> String {
    let ha1 = i.algorithm.hash(&[i.username.as_bytes(), i.realm.as_bytes(), i.password]);
    let ha2 = i.algorithm.hash(&[i.method.as_bytes(), i.uri.as_bytes()]);
    match i.qop {
        Some((nc, cnonce, qop)) => {
            i.algorithm.hash(&[ha1.as_bytes(), i.nonce.as_bytes(), nc.as_bytes(), cnonce.as_bytes(), qop.as_bytes(), ha2.as_bytes()])
        }
        None => i.algorithm.hash(&[ha1.as_bytes(), i.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa<'a>(algorithm: Algorithm, realm: &'a str, password: &'a str, nonce: &'a str, cnonce: &'a str) -> DigestInput<'a> {
        DigestInput {
            algorithm,
            username: "Mufasa",
            realm,
            password: password.as_bytes(),
            method: "GET",
            uri: "/dir/index.html",
            nonce,
            qop: Some(("00000001", cnonce, "auth")),
        }
    }

    // RFC 7616 §3.9.1, both algorithms with qop=auth.
    const RFC7616_REALM: &str = "http-auth@example.org";
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_md5_vector() {
        let i = mufasa(Algorithm::Md5, RFC7616_REALM, "Circle of Life", RFC7616_NONCE, RFC7616_CNONCE);
        assert_eq!(request_digest(&i), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let i = mufasa(Algorithm::Sha256, RFC7616_REALM, "Circle of Life", RFC7616_NONCE, RFC7616_CNONCE);
        assert_eq!(request_digest(&i), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }

    // RFC 2617 §3.5 (note the capital O in the password there).
    #[test]
    fn rfc2617_md5_vector() {
        let i = mufasa(Algorithm::Md5, "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b");
        assert_eq!(request_digest(&i), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn algorithm_tokens() {
        assert_eq!(Algorithm::from_token("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_token("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("MD5-sess"), None);
        assert_eq!(Algorithm::from_token("SHA-512-256"), None);
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
