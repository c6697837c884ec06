//! Server-side SIP digest authentication: RFC 3261 §22 with RFC 8760 (MD5 and SHA-256),
//! hashing per RFC 7616, `qop=auth` only; and a client helper ([`Challenge`]).
//!
//! **Nonces are stateless.** A nonce is the hex of `issued-at (ms of [`Time`]) ‖ serial ‖
//! HMAC-SHA256(secret, issued-at ‖ serial ‖ realm)[..16]`, so checking one needs no
//! table: recompute the MAC. The serial (a per-[`Digest`] counter) makes every challenge's
//! nonce unique, so the per-nonce `nc` tracking below never confuses two clients that
//! were challenged in the same millisecond. The secret is drawn by the caller from the OS
//! at start-up and never persisted: a nonce minted before a restart has an invalid MAC,
//! which is [`Verdict::Failed`], and the client gets a fresh challenge (its `stale`
//! flag is false, so a client may prompt again; rare, and only across restarts).
//!
//! **Verdicts** follow RFC 7616 §3.3: `stale=true` is only for a request whose digest
//! is right but whose nonce is not usable, so the response is always checked first:
//! - wrong response (wrong password *or* unknown user, indistinguishable: an unknown
//!   user is hashed against a dummy password) → [`Verdict::Failed`];
//! - right response, nonce older than `nonce_lifetime` or dated in the future →
//!   [`Verdict::Stale`];
//! - right response, `nc` not above the highest seen for that nonce (a replay, or
//!   requests reordered in flight) → also [`Verdict::Stale`] ([`StaleReason::Replayed`]):
//!   an attacker replaying a captured request gains nothing from a fresh nonce, and an
//!   honest client that raced itself retries without bothering its user
//!   (RFC 7616 §3.4 on `nc`, §5 on replay).
//!
//! **Choices** (RFC latitude; `docs/DIGEST.md` has the notes):
//! - only `qop=auth` is accepted. We always offer it and RFC 7616 §3.4 says the
//!   client's qop must be one the server offered, so a qop-less RFC 2069 answer (which
//!   RFC 2617 still tolerated) is [`Verdict::Failed`]: it would carry no `cnonce` and no
//!   `nc`, so neither chosen-plaintext nor replay protection;
//! - `-sess` algorithms and `userhash` are not supported (never offered);
//! - the `uri` parameter is hashed as sent, not compared with the Request-URI: the
//!   parameter exists because proxies may rewrite the Request-URI in transit
//!   (RFC 7616 §3.4), and the `nc` tracking already bounds what a captured answer
//!   can be reused for;
//! - credentials for another realm are not ours (RFC 3261 §22.3): [`Verdict::Missing`].
//!
//! ```
//! use sip_core::digest::{Challenge, Digest, DigestConfig, Verdict};
//! use sip_core::Time;
//! let mut digest = Digest::new(DigestConfig::new("sipbridge", [7; 32]));
//! let [sha256, _md5]: [String; 2] = digest.challenge(Time::ZERO, false).try_into().unwrap();
//! let auth = Challenge::parse(&sha256).unwrap()
//!     .authorization("alice", "s3cret", "INVITE", "sip:bob@example.com", "c1", 1);
//! let checked = digest.verify(Time::from_millis(20), "INVITE", &auth,
//!     |user| (user == "alice").then_some("s3cret"));
//! assert_eq!(checked.verdict, Verdict::Authenticated { username: "alice".into() });
//! ```

mod client;
mod hash;
mod params;

pub use client::{authorization, Challenge, ChallengeError};
pub use hash::Algorithm;

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sip_message::{Header, HeaderName, Request};
use subtle::{Choice, ConstantTimeEq};

use crate::Time;
use hash::{request_digest, DigestInput};
use params::{quote, Params, Parsed};

/// How long a nonce stays fresh unless configured otherwise.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// How many nonces' `nc` we remember unless configured otherwise.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 100_000;

/// The bytes of the MAC kept in a nonce: 128 bits is beyond guessing.
const MAC_LEN: usize = 16;
/// issued-at (8) + serial (8) + MAC.
const NONCE_LEN: usize = 16 + MAC_LEN;

/// Hashed in place of the password of a user the lookup does not know, so that an
/// unknown user costs the same work as a wrong password (no user enumeration). The
/// outcome is forced to failure whatever the client sent.
const DUMMY_PASSWORD: &[u8] = b"sipbridge: no such user, same work as a wrong password";

/// Settings of a [`Digest`] authenticator.
#[derive(Clone)]
pub struct DigestConfig {
    /// The protection space in challenges (RFC 3261 §22.1); credentials must match it.
    pub realm: String,
    /// The nonce MAC key. Draw it from the OS at start-up (the core draws nothing).
    pub secret: [u8; 32],
    /// How long after its challenge a nonce is accepted; then it is stale.
    pub nonce_lifetime: Duration,
    /// Bound on the replay table; past it the oldest nonces are forgotten (and answered
    /// stale if used again, since their `nc` can no longer be checked).
    pub max_tracked_nonces: usize,
    /// The algorithms challenged for, most preferred first (RFC 8760 §2.4: one header
    /// each, in this order); credentials in any other are refused. Default SHA-256,
    /// MD5. Clients that take the first challenge whatever it is (SIPp 3.6, older
    /// phones) need MD5 first.
    pub algorithms: Vec<Algorithm>,
}

impl DigestConfig {
    /// `realm` and `secret` with the default lifetime (300 s) and table bound (100 000).
    pub fn new(realm: impl Into<String>, secret: [u8; 32]) -> DigestConfig {
        DigestConfig {
            realm: realm.into(),
            secret,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            max_tracked_nonces: DEFAULT_MAX_TRACKED_NONCES,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

impl std::fmt::Debug for DigestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestConfig")
            .field("realm", &self.realm)
            .field("secret", &"********")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("max_tracked_nonces", &self.max_tracked_nonces)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// Who challenges: a UAS answers 401 with WWW-Authenticate and reads Authorization;
/// a proxy (or a B2BUA acting as one) answers 407 with Proxy-Authenticate and reads
/// Proxy-Authorization (RFC 3261 §22.2, §22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenger {
    /// 401 / WWW-Authenticate / Authorization.
    UserAgent,
    /// 407 / Proxy-Authenticate / Proxy-Authorization.
    Proxy,
}

impl Challenger {
    /// The status of the challenge response.
    pub fn status(self) -> u16 {
        match self {
            Challenger::UserAgent => 401,
            Challenger::Proxy => 407,
        }
    }

    /// The header the challenge goes in.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            Challenger::UserAgent => HeaderName::WwwAuthenticate,
            Challenger::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// The header the client's credentials come in.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            Challenger::UserAgent => HeaderName::Authorization,
            Challenger::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// The outcome of checking a request's credentials. It never tells an unknown user from
/// a wrong password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right for `username`, the nonce fresh and its `nc` new.
    Authenticated {
        /// The authenticated digest username.
        username: String,
    },
    /// No Digest credentials for our realm: challenge (without `stale`).
    Missing,
    /// The client knows the password but the nonce cannot be used: challenge with
    /// `stale=true`, and the client retries without asking its user (RFC 7616 §3.3).
    Stale(StaleReason),
    /// Wrong or unusable credentials: challenge again (the client will re-prompt) or
    /// answer 403, as policy decides (RFC 3261 §22.3 allows both).
    Failed(FailReason),
}

impl Verdict {
    /// Whether the request may proceed.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Verdict::Authenticated { .. })
    }

    /// Whether the challenge that answers this verdict carries `stale=true`.
    pub fn is_stale(&self) -> bool {
        matches!(self, Verdict::Stale(_))
    }
}

/// Why a right answer still needs a new nonce (for logs; the wire only says stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// Older than `nonce_lifetime`, or dated in the future.
    Expired,
    /// `nc` not above the highest accepted for this nonce, or the nonce was forgotten
    /// under load and a replay cannot be ruled out.
    Replayed,
}

/// Why credentials failed (for logs). [`FailReason::WrongResponse`] covers both a wrong
/// password and an unknown user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Not well-formed Digest, a required parameter missing or given twice, a bad `nc`.
    Malformed,
    /// An algorithm we did not offer.
    UnsupportedAlgorithm,
    /// `qop` absent (RFC 2069 style) or not `auth`.
    UnsupportedQop,
    /// Not a nonce we minted with this secret and realm (forged, or from before a restart).
    InvalidNonce,
    /// The response does not match: wrong password or unknown user.
    WrongResponse,
}

/// A [`Verdict`] plus the username the client claimed, for logs (never for decisions:
/// it is unauthenticated unless the verdict is [`Verdict::Authenticated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Verification {
    /// The outcome.
    pub verdict: Verdict,
    /// `username` from the credentials, if they parsed far enough to have one.
    pub claimed_username: Option<String>,
}

impl Verification {
    fn bare(verdict: Verdict) -> Verification {
        Verification { verdict, claimed_username: None }
    }
}

/// A nonce's identity: when it was minted and its serial, which also orders the replay
/// table oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct NonceId {
    issued_ms: u64,
    serial: u64,
}

/// The digest authenticator of one realm: mints challenges and verifies credentials.
///
/// Its only state is the replay table (highest `nc` accepted per nonce, entries dropped
/// once the nonce is past its lifetime, bounded by `max_tracked_nonces`) and the nonce
/// serial; hence `&mut self` and `now` on every call. It reads no clock.
pub struct Digest {
    config: DigestConfig,
    mac: Hmac<Sha256>,
    next_serial: u64,
    /// Highest `nc` accepted per nonce still within its lifetime.
    seen: BTreeMap<NonceId, u32>,
    /// The newest nonce evicted from `seen` for room: one at or below it that is not in
    /// `seen` may have been used already, so it is answered stale.
    forgotten_up_to: Option<NonceId>,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest").field("config", &self.config).field("tracked_nonces", &self.seen.len()).finish()
    }
}

impl Digest {
    /// An authenticator for `config.realm`.
    pub fn new(config: DigestConfig) -> Digest {
        let mac = Hmac::<Sha256>::new_from_slice(&config.secret).expect("HMAC takes a key of any length");
        Digest { config, mac, next_serial: 0, seen: BTreeMap::new(), forgotten_up_to: None }
    }

    /// The realm we challenge for.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// How many nonces the replay table holds now.
    pub fn tracked_nonces(&self) -> usize {
        self.seen.len()
    }

    /// The two challenge values for a 401's WWW-Authenticate or a 407's
    /// Proxy-Authenticate headers, SHA-256 first then MD5 (RFC 8760 §2.4: most
    /// preferred first), sharing one fresh nonce; `stale` answers a [`Verdict::Stale`].
    pub fn challenge(&mut self, now: Time, stale: bool) -> Vec<String> {
        self.forget_expired(now);
        let nonce = self.mint(now);
        let realm = quote(&self.config.realm);
        self.config
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = format!("Digest realm={realm}, nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"");
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// [`Digest::challenge`] as the two headers `challenger` puts in its response.
    pub fn challenge_headers(&mut self, now: Time, challenger: Challenger, stale: bool) -> Vec<Header> {
        self.challenge(now, stale).into_iter().map(|v| Header::new(challenger.challenge_header(), v)).collect()
    }

    /// Checks one Authorization / Proxy-Authorization value for a request with
    /// `method`. `lookup` maps a username to its password (called once, for known and
    /// unknown users alike).
    pub fn verify<P: AsRef<[u8]>>(
        &mut self,
        now: Time,
        method: &str,
        credentials: &str,
        lookup: impl FnOnce(&str) -> Option<P>,
    ) -> Verification {
        self.forget_expired(now);
        match params::parse(credentials) {
            Ok(Parsed::NotDigest) => Verification::bare(Verdict::Missing),
            Err(_) => Verification::bare(Verdict::Failed(FailReason::Malformed)),
            Ok(Parsed::Digest(p)) => match p.get("realm") {
                Ok(Some(realm)) if realm == self.config.realm => self.check(now, method, &p, lookup),
                Ok(Some(_)) => Verification { verdict: Verdict::Missing, claimed_username: claimed(&p) },
                _ => Verification { verdict: Verdict::Failed(FailReason::Malformed), claimed_username: claimed(&p) },
            },
        }
    }

    /// Checks `request`'s credentials in `challenger`'s header: the first Digest value
    /// for our realm is judged, others (other realms, other schemes) are skipped
    /// (RFC 3261 §22.3). With none for our realm the verdict is `Missing`, or `Failed`
    /// if one was malformed.
    pub fn verify_request<P: AsRef<[u8]>>(
        &mut self,
        now: Time,
        challenger: Challenger,
        request: &Request,
        lookup: impl FnOnce(&str) -> Option<P>,
    ) -> Verification {
        self.forget_expired(now);
        let mut malformed = false;
        for header in request.headers().get_all(challenger.credentials_header()) {
            let Some(value) = header.value_str() else {
                malformed = true;
                continue;
            };
            match params::parse(value) {
                Ok(Parsed::NotDigest) => {}
                Err(_) => malformed = true,
                Ok(Parsed::Digest(p)) => match p.get("realm") {
                    Ok(Some(realm)) if realm == self.config.realm => return self.check(now, request.method().as_str(), &p, lookup),
                    Ok(Some(_)) => {}
                    _ => malformed = true,
                },
            }
        }
        Verification::bare(if malformed { Verdict::Failed(FailReason::Malformed) } else { Verdict::Missing })
    }

    /// RFC 3261 §22.4 / RFC 7616 §3.4 for credentials already known to be for our realm.
    fn check<P: AsRef<[u8]>>(&mut self, now: Time, method: &str, p: &Params, lookup: impl FnOnce(&str) -> Option<P>) -> Verification {
        let claimed_username = claimed(p);
        let verdict = self.judge(now, method, p, lookup);
        Verification { verdict, claimed_username }
    }

    fn judge<P: AsRef<[u8]>>(&mut self, now: Time, method: &str, p: &Params, lookup: impl FnOnce(&str) -> Option<P>) -> Verdict {
        let fields = match Fields::from_params(p) {
            Ok(f) if self.config.algorithms.contains(&f.algorithm) => f,
            Ok(_) => return Verdict::Failed(FailReason::UnsupportedAlgorithm),
            Err(reason) => return Verdict::Failed(reason),
        };
        let Some(id) = self.open(fields.nonce) else { return Verdict::Failed(FailReason::InvalidNonce) };

        // The same work whether or not the user exists: hash a dummy password for an
        // unknown one and force the comparison to fail.
        let password = lookup(fields.username);
        let known = Choice::from(u8::from(password.is_some()));
        let expected = request_digest(&DigestInput {
            algorithm: fields.algorithm,
            username: fields.username,
            realm: &self.config.realm,
            password: password.as_ref().map_or(DUMMY_PASSWORD, |p| p.as_ref()),
            method,
            uri: fields.uri,
            nonce: fields.nonce,
            qop: Some((fields.nc_text, fields.cnonce, fields.qop)),
        });
        let sent = fields.response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(sent.as_bytes()) & known) {
            return Verdict::Failed(FailReason::WrongResponse);
        }

        // The digest is right: from here on only the nonce can be wrong (stale).
        let now_ms = now.as_millis();
        let age = now_ms.checked_sub(id.issued_ms);
        if age.is_none_or(|age| u128::from(age) > self.config.nonce_lifetime.as_millis()) {
            return Verdict::Stale(StaleReason::Expired);
        }
        if !self.accept_nc(id, fields.nc) {
            return Verdict::Stale(StaleReason::Replayed);
        }
        Verdict::Authenticated { username: fields.username.to_owned() }
    }

    /// Records `nc` for nonce `id` if it is above the highest accepted so far.
    fn accept_nc(&mut self, id: NonceId, nc: u32) -> bool {
        match self.seen.get_mut(&id) {
            Some(highest) if nc <= *highest => false,
            Some(highest) => {
                *highest = nc;
                true
            }
            None if self.forgotten_up_to.is_some_and(|f| id <= f) => false,
            None => {
                self.seen.insert(id, nc);
                while self.seen.len() > self.config.max_tracked_nonces {
                    if let Some((evicted, _)) = self.seen.pop_first() {
                        self.forgotten_up_to = self.forgotten_up_to.max(Some(evicted));
                    }
                }
                // Evicted at once when the table holds nothing: accepted this time,
                // answered stale if reused, like any forgotten nonce.
                true
            }
        }
    }

    /// Drops the replay entries of nonces past their lifetime: any use of them is stale
    /// before the table is consulted.
    fn forget_expired(&mut self, now: Time) {
        let lifetime_ms = u64::try_from(self.config.nonce_lifetime.as_millis()).unwrap_or(u64::MAX);
        let now_ms = now.as_millis();
        while let Some((id, _)) = self.seen.first_key_value() {
            if id.issued_ms.saturating_add(lifetime_ms) >= now_ms {
                break;
            }
            self.seen.pop_first();
        }
    }

    fn mint(&mut self, now: Time) -> String {
        let id = NonceId { issued_ms: now.as_millis(), serial: self.next_serial };
        self.next_serial = self.next_serial.wrapping_add(1);
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&id.issued_ms.to_be_bytes());
        raw[8..16].copy_from_slice(&id.serial.to_be_bytes());
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag[..MAC_LEN]);
        hash::hex(&raw)
    }

    /// The nonce's id if it is one we minted (MAC checked in constant time).
    fn open(&self, nonce: &str) -> Option<NonceId> {
        let raw = unhex::<NONCE_LEN>(nonce)?;
        let mut mac = self.mac.clone();
        mac.update(&raw[..16]);
        mac.update(self.config.realm.as_bytes());
        mac.verify_truncated_left(&raw[16..]).ok()?;
        let issued_ms = u64::from_be_bytes(raw[..8].try_into().ok()?);
        let serial = u64::from_be_bytes(raw[8..16].try_into().ok()?);
        Some(NonceId { issued_ms, serial })
    }

    fn tag(&self, head: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(head);
        mac.update(self.config.realm.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The credentials parameters the verification reads, checked for presence and form.
struct Fields<'a> {
    username: &'a str,
    nonce: &'a str,
    uri: &'a str,
    response: &'a str,
    algorithm: Algorithm,
    qop: &'a str,
    cnonce: &'a str,
    nc_text: &'a str,
    nc: u32,
}

impl<'a> Fields<'a> {
    fn from_params(p: &'a Params) -> Result<Fields<'a>, FailReason> {
        let get = |name| p.get(name).map_err(|_| FailReason::Malformed);
        let required = |name| get(name)?.ok_or(FailReason::Malformed);
        let algorithm = match get("algorithm")? {
            None => Algorithm::Md5, // RFC 7616 §3.4: absent means MD5
            Some(a) => Algorithm::from_token(a).ok_or(FailReason::UnsupportedAlgorithm)?,
        };
        let qop = get("qop")?.ok_or(FailReason::UnsupportedQop)?;
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(FailReason::UnsupportedQop);
        }
        if get("userhash")?.is_some_and(|u| u.eq_ignore_ascii_case("true")) {
            return Err(FailReason::Malformed); // RFC 7616 §3.4.4, not offered
        }
        let cnonce = required("cnonce")?;
        let nc_text = required("nc")?;
        let nc = parse_nc(nc_text).ok_or(FailReason::Malformed)?;
        if cnonce.is_empty() {
            return Err(FailReason::Malformed);
        }
        Ok(Fields {
            username: required("username")?,
            nonce: required("nonce")?,
            uri: required("uri")?,
            response: required("response")?,
            algorithm,
            qop,
            cnonce,
            nc_text,
            nc,
        })
    }
}

/// `nc`: 8 hex digits (RFC 7616 §3.4), counting from 1.
fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().filter(|&n| n > 0)
}

fn claimed(p: &Params) -> Option<String> {
    p.get("username").ok().flatten().map(str::to_owned)
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
