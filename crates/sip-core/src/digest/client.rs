//! The client side: answer a challenge with credentials (RFC 3261 §22.2–§22.3,
//! RFC 7616 §3.4). Our own test phones use it, and so do the server's tests.

use super::hash::{request_digest, Algorithm, DigestInput};
use super::params::{self, quote, Parsed};

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Another scheme than Digest.
    #[error("not a Digest challenge")]
    NotDigest,
    /// Not well-formed, or without realm or nonce.
    #[error("malformed Digest challenge")]
    Malformed,
    /// An algorithm we do not compute (`-sess`, SHA-512-256, …).
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// A qop list without `auth` (only `auth-int`, say).
    #[error("challenge offers no qop we support")]
    UnsupportedQop,
}

/// One parsed Digest challenge (a WWW-Authenticate or Proxy-Authenticate value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    realm: String,
    nonce: String,
    algorithm: Algorithm,
    /// Whether `qop` was offered (and includes `auth`); without it we answer the
    /// RFC 2069 way, as RFC 3261 §22.4 requires of clients.
    qop_auth: bool,
    opaque: Option<String>,
    stale: bool,
}

impl Challenge {
    /// Parses a challenge value. `algorithm` absent means MD5 (RFC 7616 §3.3).
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let p = match params::parse(value) {
            Ok(Parsed::Digest(p)) => p,
            Ok(Parsed::NotDigest) => return Err(ChallengeError::NotDigest),
            Err(_) => return Err(ChallengeError::Malformed),
        };
        let get = |name| p.get(name).map_err(|_| ChallengeError::Malformed);
        let realm = get("realm")?.ok_or(ChallengeError::Malformed)?.to_owned();
        let nonce = get("nonce")?.ok_or(ChallengeError::Malformed)?.to_owned();
        let algorithm = match get("algorithm")? {
            None => Algorithm::Md5,
            Some(a) => Algorithm::from_token(a).ok_or(ChallengeError::UnsupportedAlgorithm)?,
        };
        let qop_auth = match get("qop")? {
            None => false,
            Some(list) if list.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) => true,
            Some(_) => return Err(ChallengeError::UnsupportedQop),
        };
        let opaque = get("opaque")?.map(str::to_owned);
        let stale = get("stale")?.is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge { realm, nonce, algorithm, qop_auth, opaque, stale })
    }

    /// The first challenge among `values` that we can answer: a server lists them
    /// most preferred first (RFC 8760 §2.4), so this picks SHA-256 when offered.
    pub fn first_supported<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values.into_iter().find_map(|v| Challenge::parse(v).ok())
    }

    /// The protection space.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The server's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The algorithm to answer with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `stale=true`: the password was right, only the nonce was old; retry without
    /// asking the user again (RFC 7616 §3.3).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// The Authorization (or Proxy-Authorization) value answering this challenge for
    /// `method` and `uri` (the Request-URI, RFC 3261 §22.4), with our `cnonce` and the
    /// count `nc` of requests sent with this nonce, 1 for the first.
    pub fn authorization(&self, username: &str, password: &str, method: &str, uri: &str, cnonce: &str, nc: u32) -> String {
        let nc = format!("{nc:08x}");
        let response = request_digest(&DigestInput {
            algorithm: self.algorithm,
            username,
            realm: &self.realm,
            password: password.as_bytes(),
            method,
            uri,
            nonce: &self.nonce,
            qop: self.qop_auth.then_some((nc.as_str(), cnonce, "auth")),
        });
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            self.algorithm
        );
        if self.qop_auth {
            out.push_str(&format!(", cnonce={}, qop=auth, nc={nc}", quote(cnonce)));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque={}", quote(opaque)));
        }
        out
    }
}

/// [`Challenge::parse`] then [`Challenge::authorization`], in one call.
pub fn authorization(
    challenge: &str,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, ChallengeError> {
    Ok(Challenge::parse(challenge)?.authorization(username, password, method, uri, cnonce, nc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // RFC 7616 §3.9.1: the SHA-256 challenge and the response it leads to.
    #[test]
    fn rfc7616_sha256_through_the_client() {
        let challenge = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
            nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let c = Challenge::parse(challenge).unwrap();
        let auth = c.authorization("Mufasa", "Circle of Life", "GET", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", 1);
        assert!(auth.contains("response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""), "{auth}");
        assert!(auth.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
        assert!(auth.contains("nc=00000001"));
    }

    #[test]
    fn rfc7616_md5_through_the_client() {
        let challenge = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
            nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\"";
        let auth = authorization(
            challenge,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        )
        .unwrap();
        assert!(auth.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""), "{auth}");
    }

    #[test]
    fn challenge_fields() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", stale=TRUE").unwrap();
        assert_eq!((c.realm(), c.nonce(), c.algorithm(), c.stale()), ("r", "n", Algorithm::Md5, true));
        // Without qop: RFC 2069's form, no cnonce / nc / qop.
        let auth = c.authorization("u", "p", "INVITE", "sip:b@x", "c", 1);
        assert!(!auth.contains("qop") && !auth.contains("cnonce") && !auth.contains("nc="), "{auth}");
        assert_eq!(Challenge::parse("Basic realm=\"r\""), Err(ChallengeError::NotDigest));
        assert_eq!(Challenge::parse("Digest realm=\"r\""), Err(ChallengeError::Malformed));
        assert_eq!(Challenge::parse("Digest realm=r, nonce=n, algorithm=MD5-sess"), Err(ChallengeError::UnsupportedAlgorithm));
        assert_eq!(Challenge::parse("Digest realm=r, nonce=n, qop=\"auth-int\""), Err(ChallengeError::UnsupportedQop));
        let picked =
            Challenge::first_supported(["Digest realm=r, nonce=n, algorithm=SHA-512-256", "Digest realm=r, nonce=n, algorithm=MD5"]);
        assert_eq!(picked.unwrap().algorithm(), Algorithm::Md5);
    }
}
