//! Our own `o=` line on one leg (RFC 3264 §5, §8).

use std::net::IpAddr;

use crate::model::{Origin, SessionDescription};

/// Our own `o=` line for one leg: the origin stays ours for the whole dialog, and the
/// session version increases by one each time we send a description that differs from
/// the previous one we sent on this leg, and stays when the content is unchanged (a
/// session refresh, RFC 3264 §8, RFC 6337 §5.3).
///
/// The first description stamped gets version 1. [`stamp`](LocalOrigin::stamp) also
/// sets `s=-`: the session name of the other leg's phone ("Asterisk PBX", a product
/// name) is not passed on, and a fixed name keeps refreshes byte-identical.
#[derive(Clone, Debug)]
pub struct LocalOrigin {
    username: String,
    session_id: u64,
    address: IpAddr,
    version: u64,
    /// A hash of the last description stamped (with its `o=` at the version then): a
    /// parsed description is about 2 KiB, and each leg of each call keeps one of these.
    last_sent: Option<u64>,
}

impl LocalOrigin {
    /// Our origin `o=<username> <session_id> <version> IN IP4|IP6 <address>`. The
    /// username must be one token: white space in it becomes `_`, and an empty one `-`.
    pub fn new(username: &str, session_id: u64, address: IpAddr) -> LocalOrigin {
        let username: String = username.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
        let username = if username.is_empty() { "-".to_owned() } else { username };
        LocalOrigin { username, session_id, address, version: 1, last_sent: None }
    }

    /// Replaces `sdp`'s `o=` with ours and its `s=` with `-`, increasing the version
    /// when `sdp` differs from the description stamped last (everything compared but
    /// the version itself). Call it once per description actually sent.
    pub fn stamp(&mut self, sdp: &mut SessionDescription) {
        sdp.set_session_name("-");
        sdp.set_origin(self.origin(self.version));
        let now = fingerprint(sdp);
        let changed = self.last_sent.is_some_and(|last| last != now);
        if changed {
            // RFC 3264 §5: the version stays below 2^63 in practice; saturate rather than wrap.
            self.version = self.version.saturating_add(1);
            sdp.set_origin(self.origin(self.version));
        }
        // Hashed with the version it was compared at, so the next stamp compares alike.
        self.last_sent = Some(if changed { fingerprint(sdp) } else { now });
    }

    /// The version of the last description stamped (1 before the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    fn origin(&self, version: u64) -> Origin {
        Origin::new(&self.username, self.session_id, version, self.address)
    }
}

/// A 64-bit digest of a description (`DefaultHasher::new` has fixed keys: the same in
/// every run of one build). Two
/// different descriptions share one with probability 2^-64; then a change would keep its
/// version, which RFC 3264 peers tolerate as an unchanged session.
fn fingerprint(sdp: &SessionDescription) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    sdp.hash(&mut h);
    h.finish()
}
