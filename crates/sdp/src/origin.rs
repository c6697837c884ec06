//! Our own `o=` line on one leg (RFC 3264 §5, §8).

use std::net::IpAddr;

use crate::model::SessionDescription;

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
        sdp.origin.assign(&self.username, self.session_id, self.version, self.address);
        let now = fingerprint(sdp);
        let changed = self.last_sent.is_some_and(|last| last != now);
        if changed {
            // RFC 3264 §5: the version stays below 2^63 in practice; saturate rather than wrap.
            self.version = self.version.saturating_add(1);
            sdp.origin.session_version = self.version;
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
}

/// A 64-bit digest of a description (the same in every run). Two different
/// descriptions share one with probability about 2^-64; then a change would keep its
/// version, which RFC 3264 peers tolerate as an unchanged session. It never leaves the
/// process, so it need not be SipHash (`DefaultHasher`), which cost five times more.
fn fingerprint(sdp: &SessionDescription) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = Digest(0);
    sdp.hash(&mut h);
    h.finish()
}

/// A multiply-rotate hash over 8-byte words (FxHash's step) with a final mix
/// (SplitMix64's). Each step is a bijection of the state for a given word, and so is the
/// final mix: two inputs of the same shape that differ in a single word always differ in
/// the digest.
struct Digest(u64);

impl Digest {
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Digest {
    fn write(&mut self, bytes: &[u8]) {
        // The length first, so that zero padding of the last word cannot make two
        // inputs alike.
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
