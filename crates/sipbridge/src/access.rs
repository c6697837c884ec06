//! Who may do what: digest authentication of `secret` endpoints (401 for REGISTER, 407
//! for INVITE), the password-guessing guard, and answers held back for throttled
//! sources (`docs/CONFIG.md`, "Who may call" and `[auth]`).
//!
//! No user enumeration: a request naming an unknown user gets the very same challenge
//! (apart from the nonce) and, with credentials, the very same 403 as a known user with
//! a wrong password; [`sip_core::digest`] does the same hashing work for both.

use crate::config::Config;
use crate::guard::{Admission, Guard};
use sip_core::b2bua::CallId;
use sip_core::digest::{Algorithm, Challenger, Digest, DigestConfig, Verdict};
use sip_core::sip_message::{Header, Request};
use sip_core::{Time, TransactionId};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

/// What a request's credentials come to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Authenticated as the endpoint with this index.
    Endpoint(usize),
    /// Answer with this status (401/407 with these challenge headers, or 403).
    Answer(u16, Vec<Header>),
}

/// A request an answer is owed to, for the delayed-answer queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// A server transaction (REGISTER and the like): `Endpoint::reply`.
    Tx(TransactionId),
    /// A call waiting for routing: `B2bua::reject_with`.
    Call(CallId),
}

/// An answer held back for a throttled source.
#[derive(Debug, Clone)]
pub struct Delayed {
    /// When to send it.
    pub at: Time,
    /// To what.
    pub owed: Owed,
    /// The status.
    pub status: u16,
    /// Its extra headers.
    pub headers: Vec<Header>,
}

/// Authentication state: the digest authenticator, the guard, the held answers.
pub struct Access {
    digest: Digest,
    /// Failures, throttling and bans by source.
    pub guard: Guard,
    /// Answers waiting for their time, in time order (one delay for all).
    delayed: VecDeque<Delayed>,
    /// Endpoint names and secrets, in config order (`None`: no secret).
    secrets: Vec<(String, Option<String>)>,
    /// Successful authentications since start.
    pub authenticated: u64,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("guard", &self.guard).field("delayed", &self.delayed.len()).finish()
    }
}

impl Access {
    /// The rules of `config`, nonces keyed with `secret` (drawn from the OS).
    pub fn new(config: &Config, secret: [u8; 32]) -> Access {
        let mut dc = DigestConfig::new(config.realm(), secret);
        dc.nonce_lifetime = Duration::from_secs(u64::from(config.auth.nonce_lifetime_s));
        // Validated at load; an unknown name cannot get here.
        dc.algorithms = config.auth.algorithms.iter().filter_map(|a| Algorithm::from_token(a)).collect();
        let secrets = config.endpoints.iter().map(|e| (e.name.clone(), e.secret.as_ref().map(|s| s.expose().to_owned()))).collect();
        Access { digest: Digest::new(dc), guard: Guard::new(&config.auth), delayed: VecDeque::new(), secrets, authenticated: 0 }
    }

    /// Whether any endpoint authenticates (else an unknown source is simply refused).
    pub fn has_secrets(&self) -> bool {
        self.secrets.iter().any(|(_, s)| s.is_some())
    }

    /// The guard's verdict on `ip` now.
    pub fn admit(&mut self, now: Time, ip: IpAddr) -> Admission {
        self.guard.admit(now, ip)
    }

    /// Checks `request`'s credentials for `challenger` (401 user agent / 407 proxy).
    pub fn authenticate(&mut self, now: Time, challenger: Challenger, request: &Request, source: IpAddr) -> Outcome {
        let secrets = &self.secrets;
        let v = self.digest.verify_request(now, challenger, request, |user: &str| {
            secrets.iter().find(|(n, s)| n == user && s.is_some()).and_then(|(_, s)| s.clone())
        });
        match v.verdict {
            Verdict::Authenticated { username } => match self.secrets.iter().position(|(n, _)| *n == username) {
                Some(i) => {
                    self.authenticated += 1;
                    Outcome::Endpoint(i)
                }
                None => Outcome::Answer(403, Vec::new()),
            },
            Verdict::Missing => Outcome::Answer(challenger.status(), self.digest.challenge_headers(now, challenger, false)),
            Verdict::Stale(why) => {
                tracing::debug!(%source, ?why, "stale nonce: new challenge");
                Outcome::Answer(challenger.status(), self.digest.challenge_headers(now, challenger, true))
            }
            Verdict::Failed(why) => {
                let user = v.claimed_username.unwrap_or_default();
                match self.guard.failure(now, source) {
                    Some(until) => tracing::warn!(%source, user = %user, until = %until, "too many failed authentications: source refused"),
                    None => tracing::info!(%source, user = %user, ?why, "authentication failed"),
                }
                Outcome::Answer(403, Vec::new())
            }
        }
    }

    /// Holds an answer back until `at`.
    pub fn delay(&mut self, at: Time, owed: Owed, status: u16, headers: Vec<Header>) {
        self.delayed.push_back(Delayed { at, owed, status, headers });
    }

    /// The next held answer's time.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.delayed.front().map(|d| d.at)
    }

    /// The held answers due at `now`.
    pub fn due(&mut self, now: Time) -> Vec<Delayed> {
        let n = self.delayed.iter().take_while(|d| d.at <= now).count();
        self.delayed.drain(..n).collect()
    }

    /// Answers waiting now.
    pub fn delayed_len(&self) -> usize {
        self.delayed.len()
    }
}
