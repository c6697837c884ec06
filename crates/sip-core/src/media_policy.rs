//! The direct-media decision (`DIRECT_MEDIA.md`, "When to go direct"): for one call,
//! may the media leave the relay, and if not, why.
//!
//! Pure code: [`decide`] takes what is known about the two endpoints' policy
//! ([`LegPolicy`]), about each leg ([`LegFacts`]) and about the call ([`CallFacts`]),
//! and returns a [`Decision`]. It reads no clock: the time since the answer is an input,
//! and [`CallFacts::verify_media_remaining`] tells the caller when to ask again. The
//! binary maps its endpoint config (`direct_media`, `direct_media_permit`/`deny`,
//! `dtmf_mode`) into these types; this module does not know the config crate.
//!
//! The rules, in the spec's order; the first one that refuses is the reason reported:
//!
//! 1. either endpoint has `direct_media = no` ([`Blocker::DirectMediaNo`]);
//! 2. either endpoint is `nonat` and behind NAT: signalling evidence (Via, Contact,
//!    SDP against the packet source, or `nat = yes`), or media evidence: the relay hears
//!    the leg's RTP from an address (or port) other than the one its SDP names
//!    ([`Blocker::NoNatBehindNat`]). Evidence blocks only `nonat` endpoints;
//! 3. a permit/deny list refuses the other endpoint's SDP media address: each
//!    endpoint's lists are applied to the *other* endpoint's address, deny first, then
//!    permit, an empty permit list permitting all ([`Blocker::Denied`]);
//! 4. no voice codec in common ([`Blocker::NoCommonCodec`]), or the ptimes differ
//!    ([`Blocker::PtimeMismatch`]; no `a=ptime` means 20 ms), or the endpoints number
//!    the codecs differently where it matters ([`Blocker::PayloadTypes`]): no common
//!    voice codec has the same payload type on both sides, or telephone-event has not.
//!    Each leg keeps its own numbers (RFC 3264 §8.3.2) and the relay translates
//!    between them, but phone to phone nobody would;
//! 5. a feature needs the media: recording, a DTMF feature armed while a leg's DTMF
//!    rides RTP (`rfc4733`/`inband`; SIP INFO does not block), hold music, an
//!    announcement, a transfer in progress;
//! 6. SRTP on either leg ([`Blocker::Srtp`]), then T.38 / image media
//!    ([`Blocker::T38OrImage`]);
//! 7. more than two parties ([`Blocker::Parties`]), or a leg not answered
//!    ([`Blocker::NotAnswered`]);
//! 8. the two media addresses are of different families ([`Blocker::AddressFamily`]);
//!
//!    then, not a numbered rule but a precondition of any move: each leg's SDP names
//!    an audio address ([`Blocker::NoAudio`]);
//! 9. with `verify_media`, until the relay has heard RTP from both endpoints and for
//!    at most [`VERIFY_MEDIA_WINDOW`] after the answer, the answer is
//!    [`Decision::Wait`] ([`Blocker::VerifyMedia`]); after that window the decision is
//!    taken without the missing RTP (which simply gives no media evidence).
//!
//! Choices the spec leaves open, made here:
//! - codecs are compared by encoding name (case-insensitive) *and* clock rate, so that
//!   `L16/8000` and `L16/16000` are not "common"; telephone-event and CN are not voice;
//! - an SDP hold address (`c=0.0.0.0`) is no address: it gives no media NAT evidence,
//!   and permit/deny and address family are not checked against it, so a hold passed
//!   end to end does not flip the call back to the relay;
//! - an IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, as a dual-stack socket reports
//!   IPv4 peers) is compared as the IPv4 address everywhere.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sdp::{Codec, SessionDescription};

use crate::nat::NatEvidence;

/// How long after the answer `verify_media` waits to hear RTP from both endpoints.
pub const VERIFY_MEDIA_WINDOW: Duration = Duration::from_secs(2);

/// The packetization time of a stream without `a=ptime` (RFC 3551 §4.5: 20 ms for the
/// common audio codecs).
pub const DEFAULT_PTIME_MS: u32 = 20;

/// An endpoint's `direct_media` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DirectMode {
    /// `yes`: allowed.
    #[default]
    Yes,
    /// `no`: the media always goes through the relay.
    No,
    /// `nonat`: allowed only while the endpoint is not seen behind NAT.
    NoNat,
    /// `outgoing`: allowed (glare avoidance is the mechanism's business, not the
    /// decision's).
    Outgoing,
}

impl DirectMode {
    /// The config spelling: `yes`, `no`, `nonat`, `outgoing`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectMode::Yes => "yes",
            DirectMode::No => "no",
            DirectMode::NoNat => "nonat",
            DirectMode::Outgoing => "outgoing",
        }
    }
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`) of a permit or deny list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` bits; `None` when the prefix is longer than
    /// the address (32 for IPv4, 128 for IPv6). Bits past the prefix are ignored.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// The address as given (IPv4-mapped IPv6 made IPv4).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network's own address: the address given with every bit past the prefix
    /// cleared (`10.1.2.3/8` → `10.0.0.0`).
    pub fn network(&self) -> IpAddr {
        let m = self.masked(self.addr);
        match self.addr {
            IpAddr::V4(_) => IpAddr::from(u32::try_from(m >> 96).unwrap_or(0).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(m.to_be_bytes()),
        }
    }

    /// Whether `ip` is in the network. Families must match; an IPv4-mapped IPv6
    /// address is compared as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.masked(self.addr)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let bits = match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
            IpAddr::V6(v6) => u128::from(v6),
        };
        bits & u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One endpoint's direct-media policy, from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegPolicy {
    /// The endpoint's name, as the reason words use it.
    pub name: String,
    /// `direct_media`.
    pub mode: DirectMode,
    /// `direct_media_permit`: the other endpoint's media address must be in one of
    /// these (empty: every address).
    pub permit: Vec<IpNet>,
    /// `direct_media_deny`: the other endpoint's media address must be in none of
    /// these (checked before `permit`).
    pub deny: Vec<IpNet>,
    /// Whether the endpoint's DTMF rides RTP (`dtmf_mode = rfc4733` or `inband`),
    /// so that a DTMF feature needs the media; false for SIP INFO.
    pub dtmf_rtp: bool,
}

impl LegPolicy {
    /// The defaults of an endpoint called `name`: `direct_media = yes`, no lists,
    /// `dtmf_mode = rfc4733`.
    pub fn new(name: impl Into<String>) -> LegPolicy {
        LegPolicy { name: name.into(), mode: DirectMode::Yes, permit: Vec::new(), deny: Vec::new(), dtmf_rtp: true }
    }
}

/// What is known about one leg of the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegFacts {
    /// The leg is confirmed: 2xx sent or received, and ACKed.
    pub answered: bool,
    /// NAT evidence from the endpoint's signalling (its INVITE, its registration, or
    /// `nat = yes`).
    pub signalling_nat: Option<NatEvidence>,
    /// The endpoint's current SDP (the last offer or answer it sent on this leg).
    pub sdp: Option<SessionDescription>,
    /// Where the relay actually hears this leg's RTP from (after latching).
    pub rtp_source: Option<SocketAddr>,
    /// Whether the relay has heard RTP from this endpoint.
    pub heard: bool,
}

/// What is known about the call as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// The call is being recorded.
    pub recording: bool,
    /// A DTMF-triggered feature (feature codes, IVR) is listening.
    pub dtmf_feature_armed: bool,
    /// Hold music is playing to a leg.
    pub hold_music: bool,
    /// An announcement is playing to a leg.
    pub announcement: bool,
    /// A transfer (REFER) is in progress.
    pub transfer: bool,
    /// How many parties the media joins (2 for a plain call).
    pub parties: u8,
    /// `verify_media`: wait until RTP has been heard from both endpoints.
    pub verify_media: bool,
    /// Time since the call was answered (both legs confirmed).
    pub since_answer: Duration,
}

impl Default for CallFacts {
    /// A plain two-party call just answered, nothing needing the media, `verify_media`
    /// on (its default).
    fn default() -> CallFacts {
        CallFacts {
            recording: false,
            dtmf_feature_armed: false,
            hold_music: false,
            announcement: false,
            transfer: false,
            parties: 2,
            verify_media: true,
            since_answer: Duration::ZERO,
        }
    }
}

impl CallFacts {
    /// While `verify_media` may still make the decision wait: the time left of
    /// [`VERIFY_MEDIA_WINDOW`]. The caller decides again after it at the latest (or as
    /// soon as RTP is first heard from a leg). `None` once the window is over or when
    /// `verify_media` is off.
    pub fn verify_media_remaining(&self) -> Option<Duration> {
        let left = VERIFY_MEDIA_WINDOW.checked_sub(self.since_answer)?;
        (self.verify_media && !left.is_zero()).then_some(left)
    }
}

/// Why an endpoint is taken to be behind NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatProof {
    /// Its signalling says so.
    Signalling(NatEvidence),
    /// The relay hears its RTP from an address other than its SDP's.
    Media {
        /// Where the RTP comes from.
        rtp_from: SocketAddr,
        /// What the SDP says.
        sdp_says: SocketAddr,
    },
}

impl fmt::Display for NatProof {
    /// The NAT evidence words, or `RTP from 203.0.113.7, SDP says 10.0.0.5` (with the
    /// ports when only the ports differ).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatProof::Signalling(e) => e.fmt(f),
            NatProof::Media { rtp_from, sdp_says } if rtp_from.ip().to_canonical() == sdp_says.ip().to_canonical() => {
                write!(f, "RTP from {rtp_from}, SDP says {sdp_says}")
            }
            NatProof::Media { rtp_from, sdp_says } => write!(f, "RTP from {}, SDP says {}", rtp_from.ip(), sdp_says.ip()),
        }
    }
}

/// Which list refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRule {
    /// The address is in this `direct_media_deny` entry.
    Deny(IpNet),
    /// `direct_media_permit` is not empty and the address is in none of its entries.
    NotPermitted,
}

/// What keeps the media on the relay (or makes the decision wait), with what it takes
/// to explain itself. [`fmt::Display`] writes the words operators see, with their
/// `relayed: ` or `waiting: ` prefix; [`Blocker::reason`] the words alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Rule 1: `direct_media = no`.
    DirectMediaNo {
        /// The endpoint.
        name: String,
    },
    /// Rule 2: a `nonat` endpoint behind NAT.
    NoNatBehindNat {
        /// The endpoint.
        name: String,
        /// Why it is taken to be behind NAT.
        evidence: NatProof,
    },
    /// Rule 3: an endpoint's list refuses the other endpoint's media address.
    Denied {
        /// The endpoint whose list refuses.
        by: String,
        /// The other endpoint's SDP media address.
        other_address: IpAddr,
        /// Which list.
        rule: ListRule,
    },
    /// Rule 4: no voice codec in common.
    NoCommonCodec,
    /// Rule 4: the packetization times differ.
    PtimeMismatch {
        /// The first endpoint and its ptime (ms, 20 when not written).
        a: (String, u32),
        /// The second endpoint and its ptime.
        b: (String, u32),
    },
    /// Rule 4: the endpoints give a codec different payload-type numbers (only the
    /// relay can translate them).
    PayloadTypes {
        /// The encoding name (`telephone-event`, `opus`).
        codec: String,
        /// The first endpoint and its number.
        a: (String, u8),
        /// The second endpoint and its number.
        b: (String, u8),
    },
    /// Rule 5: the call is recorded.
    Recording,
    /// Rule 5: a DTMF feature is armed and this endpoint's DTMF rides RTP.
    DtmfFeature {
        /// The endpoint.
        name: String,
    },
    /// Rule 5: hold music is playing.
    HoldMusic,
    /// Rule 5: an announcement is playing.
    Announcement,
    /// Rule 5 (a re-anchoring trigger): a transfer is in progress.
    Transfer,
    /// Rule 6: SRTP (SAVP profile, `a=crypto`, `a=fingerprint`).
    Srtp {
        /// The endpoint.
        name: String,
    },
    /// Rule 6: T.38 or other image media.
    T38OrImage {
        /// The endpoint.
        name: String,
    },
    /// Rule 7: more than two parties.
    Parties {
        /// How many.
        count: u8,
    },
    /// Rule 7: a leg is not answered.
    NotAnswered {
        /// The endpoint.
        name: String,
    },
    /// Rule 8: one endpoint's media is IPv4, the other's IPv6.
    AddressFamily {
        /// The IPv4 endpoint.
        ipv4: String,
        /// The IPv6 endpoint.
        ipv6: String,
    },
    /// No audio address known for a leg (no SDP yet, no active audio stream, or a
    /// host name in `c=`): there is nothing to point the other endpoint at.
    NoAudio {
        /// The endpoint.
        name: String,
    },
    /// Rule 9: `verify_media` is waiting to hear RTP (only ever in [`Decision::Wait`]).
    VerifyMedia {
        /// The endpoints not heard yet.
        waiting_for: Vec<String>,
    },
}

impl Blocker {
    /// The metrics label of this kind of blocker (`blockers by reason`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Blocker::DirectMediaNo { .. } => "direct_media_no",
            Blocker::NoNatBehindNat { .. } => "nat",
            Blocker::Denied { .. } => "denied",
            Blocker::NoCommonCodec => "codec",
            Blocker::PtimeMismatch { .. } => "ptime",
            Blocker::PayloadTypes { .. } => "payload_type",
            Blocker::Recording => "recording",
            Blocker::DtmfFeature { .. } => "dtmf",
            Blocker::HoldMusic => "hold_music",
            Blocker::Announcement => "announcement",
            Blocker::Transfer => "transfer",
            Blocker::Srtp { .. } => "srtp",
            Blocker::T38OrImage { .. } => "t38",
            Blocker::Parties { .. } => "parties",
            Blocker::NotAnswered { .. } => "unanswered",
            Blocker::AddressFamily { .. } => "address_family",
            Blocker::NoAudio { .. } => "no_audio",
            Blocker::VerifyMedia { .. } => "verify_media",
        }
    }

    /// Every metrics label, in rule order (to pre-register counters).
    pub const METRIC_LABELS: [&'static str; 18] = [
        "direct_media_no",
        "nat",
        "denied",
        "codec",
        "ptime",
        "payload_type",
        "recording",
        "dtmf",
        "hold_music",
        "announcement",
        "transfer",
        "srtp",
        "t38",
        "parties",
        "unanswered",
        "address_family",
        "no_audio",
        "verify_media",
    ];

    /// `waiting` for [`Blocker::VerifyMedia`], `relayed` for the others.
    pub fn prefix(&self) -> &'static str {
        match self {
            Blocker::VerifyMedia { .. } => "waiting",
            _ => "relayed",
        }
    }

    /// The words without the `relayed: ` / `waiting: ` prefix.
    pub fn reason(&self) -> String {
        Reason(self).to_string()
    }
}

/// The words of a blocker without its prefix.
struct Reason<'a>(&'a Blocker);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Blocker::DirectMediaNo { name } => write!(f, "{name} has direct_media = no"),
            Blocker::NoNatBehindNat { name, evidence } => write!(f, "{name} is nonat and behind NAT ({evidence})"),
            Blocker::Denied { by, other_address, rule: ListRule::Deny(_) } => {
                write!(f, "{by}'s direct_media_deny refuses {other_address}")
            }
            Blocker::Denied { by, other_address, rule: ListRule::NotPermitted } => {
                write!(f, "{by}'s direct_media_permit does not include {other_address}")
            }
            Blocker::NoCommonCodec => f.write_str("no common codec"),
            Blocker::PtimeMismatch { a, b } => write!(f, "ptime differs ({} {} ms, {} {} ms)", a.0, a.1, b.0, b.1),
            Blocker::PayloadTypes { codec, a, b } => {
                write!(f, "payload types differ ({codec} is {} for {}, {} for {})", a.1, a.0, b.1, b.0)
            }
            Blocker::Recording => f.write_str("recording"),
            Blocker::DtmfFeature { name } => write!(f, "a DTMF feature is armed and {name} sends DTMF in RTP"),
            Blocker::HoldMusic => f.write_str("hold music"),
            Blocker::Announcement => f.write_str("announcement"),
            Blocker::Transfer => f.write_str("transfer in progress"),
            Blocker::Srtp { name } => write!(f, "{name} uses SRTP"),
            Blocker::T38OrImage { name } => write!(f, "{name} has T.38/image media"),
            Blocker::Parties { count } => write!(f, "{count} parties"),
            Blocker::NotAnswered { name } => write!(f, "{name} has not answered"),
            Blocker::AddressFamily { ipv4, ipv6 } => write!(f, "address families differ ({ipv4} is IPv4, {ipv6} is IPv6)"),
            Blocker::NoAudio { name } => write!(f, "no audio address from {name}"),
            Blocker::VerifyMedia { waiting_for } => write!(f, "have not heard RTP from {} yet", waiting_for.join(" and ")),
        }
    }
}

impl fmt::Display for Blocker {
    /// `relayed: bob is nonat and behind NAT (RTP from 203.0.113.7, SDP says 10.0.0.5)`,
    /// `waiting: have not heard RTP from bob yet`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.prefix(), Reason(self))
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The media may go direct.
    Direct,
    /// The media stays on (or goes back to) the relay, for this first reason.
    Relayed(Blocker),
    /// Not yet: `verify_media` is waiting to hear RTP ([`Blocker::VerifyMedia`]); decide
    /// again when RTP is heard or after [`CallFacts::verify_media_remaining`].
    Wait(Blocker),
}

impl Decision {
    /// Whether the media may go direct.
    pub fn is_direct(&self) -> bool {
        matches!(self, Decision::Direct)
    }

    /// The blocker of a relayed or waiting decision.
    pub fn blocker(&self) -> Option<&Blocker> {
        match self {
            Decision::Direct => None,
            Decision::Relayed(b) | Decision::Wait(b) => Some(b),
        }
    }
}

impl fmt::Display for Decision {
    /// `direct`, or the blocker's words (`relayed: …`, `waiting: …`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Direct => f.write_str("direct"),
            Decision::Relayed(b) | Decision::Wait(b) => b.fmt(f),
        }
    }
}

/// Decides whether this call's media may go direct (see the module docs for the rules
/// and their order). `policy[i]` and `legs[i]` are the same endpoint.
pub fn decide(policy: &[LegPolicy; 2], legs: &[LegFacts; 2], call: &CallFacts) -> Decision {
    match first_blocker(policy, legs, call) {
        Some(b) => Decision::Relayed(b),
        None => verify_media(policy, legs, call).map_or(Decision::Direct, Decision::Wait),
    }
}

/// `direct_rtp_setup`: may the first INVITE already carry the caller's media address to
/// the callee? Only what is known before the answer is checked: rules 1 and 2 on the
/// signalling evidence (`callee_nat`: its registration's or config's), the callee's
/// permit/deny against the caller's address, the features of rule 5, the caller's
/// SRTP/T.38 and the party count; the caller's offer must name an audio address. The
/// rest (the caller's lists against the callee's address, codecs, ptime, address
/// family) is decided after the answer as for any call, and re-anchors the call if it
/// refuses. `verify_media` cannot apply: the relay never hears the RTP.
pub fn decide_at_setup(policy: &[LegPolicy; 2], caller: &LegFacts, callee_nat: Option<NatEvidence>, call: &CallFacts) -> Decision {
    let callee = LegFacts { answered: true, signalling_nat: callee_nat, ..LegFacts::default() };
    let legs = [LegFacts { answered: true, ..caller.clone() }, callee];
    let first = first_blocker(policy, &legs, call).filter(|b| !matches!(b, Blocker::NoAudio { name } if *name == policy[1].name));
    match first {
        Some(b) => Decision::Relayed(b),
        None if media_ip(&legs[0]).is_none() => Decision::Relayed(Blocker::NoAudio { name: policy[0].name.clone() }),
        None => Decision::Direct,
    }
}

fn first_blocker(policy: &[LegPolicy; 2], legs: &[LegFacts; 2], call: &CallFacts) -> Option<Blocker> {
    let both = || policy.iter().zip(legs.iter());
    let name = |p: &LegPolicy| p.name.clone();
    // 1. direct_media = no.
    if let Some(p) = policy.iter().find(|p| p.mode == DirectMode::No) {
        return Some(Blocker::DirectMediaNo { name: name(p) });
    }
    // 2. nonat and behind NAT.
    for (p, leg) in both().filter(|(p, _)| p.mode == DirectMode::NoNat) {
        if let Some(evidence) = nat_proof(leg) {
            return Some(Blocker::NoNatBehindNat { name: name(p), evidence });
        }
    }
    // 3. permit/deny, each endpoint's lists against the other's address.
    let addresses = [media_ip(&legs[0]), media_ip(&legs[1])];
    for (p, other) in policy.iter().zip([addresses[1], addresses[0]]) {
        if let Some(other_address) = other {
            if let Some(rule) = refused(p, other_address) {
                return Some(Blocker::Denied { by: name(p), other_address, rule });
            }
        }
    }
    // 4. codecs, then ptime.
    if let (Some(a), Some(b)) = (audio(&legs[0]), audio(&legs[1])) {
        if common_codecs(a, b).is_empty() {
            return Some(Blocker::NoCommonCodec);
        }
        let (pa, pb) = (a.ptime().unwrap_or(DEFAULT_PTIME_MS), b.ptime().unwrap_or(DEFAULT_PTIME_MS));
        if pa != pb {
            return Some(Blocker::PtimeMismatch { a: (name(&policy[0]), pa), b: (name(&policy[1]), pb) });
        }
        if let Some((codec, x, y)) = payload_type_clash(a, b) {
            return Some(Blocker::PayloadTypes { codec, a: (name(&policy[0]), x), b: (name(&policy[1]), y) });
        }
    }
    // 5. features that need the media.
    if call.recording {
        return Some(Blocker::Recording);
    }
    if call.dtmf_feature_armed {
        if let Some(p) = policy.iter().find(|p| p.dtmf_rtp) {
            return Some(Blocker::DtmfFeature { name: name(p) });
        }
    }
    if call.hold_music {
        return Some(Blocker::HoldMusic);
    }
    if call.announcement {
        return Some(Blocker::Announcement);
    }
    if call.transfer {
        return Some(Blocker::Transfer);
    }
    // 6. SRTP, then T.38 / image.
    if let Some((p, _)) = both().find(|(_, l)| l.sdp.as_ref().is_some_and(SessionDescription::uses_srtp)) {
        return Some(Blocker::Srtp { name: name(p) });
    }
    if let Some((p, _)) = both().find(|(_, l)| l.sdp.as_ref().is_some_and(SessionDescription::has_t38)) {
        return Some(Blocker::T38OrImage { name: name(p) });
    }
    // 7. parties, then answered.
    if call.parties > 2 {
        return Some(Blocker::Parties { count: call.parties });
    }
    if let Some((p, _)) = both().find(|(_, l)| !l.answered) {
        return Some(Blocker::NotAnswered { name: name(p) });
    }
    // 8. address families.
    if let [Some(a), Some(b)] = addresses {
        if a.is_ipv4() != b.is_ipv4() {
            let (v4, v6) = if a.is_ipv4() { (&policy[0], &policy[1]) } else { (&policy[1], &policy[0]) };
            return Some(Blocker::AddressFamily { ipv4: name(v4), ipv6: name(v6) });
        }
    }
    // Something to point the other endpoint at.
    if let Some((p, _)) = both().find(|(_, l)| l.sdp.as_ref().and_then(SessionDescription::audio_address).is_none()) {
        return Some(Blocker::NoAudio { name: name(p) });
    }
    None
}

/// Rule 9: still waiting to hear both endpoints.
fn verify_media(policy: &[LegPolicy; 2], legs: &[LegFacts; 2], call: &CallFacts) -> Option<Blocker> {
    call.verify_media_remaining()?;
    let waiting_for: Vec<String> = policy.iter().zip(legs.iter()).filter(|(_, l)| !l.heard).map(|(p, _)| p.name.clone()).collect();
    (!waiting_for.is_empty()).then_some(Blocker::VerifyMedia { waiting_for })
}

/// The NAT evidence for a leg: its signalling's, else its RTP heard from somewhere
/// other than its SDP address (a hold address gives none).
fn nat_proof(leg: &LegFacts) -> Option<NatProof> {
    if let Some(e) = leg.signalling_nat {
        return Some(NatProof::Signalling(e));
    }
    let rtp_from = leg.rtp_source?;
    let sdp_says = leg.sdp.as_ref()?.audio_address().filter(|a| !a.ip().is_unspecified())?;
    let same = rtp_from.ip().to_canonical() == sdp_says.ip().to_canonical() && rtp_from.port() == sdp_says.port();
    (!same).then_some(NatProof::Media { rtp_from, sdp_says })
}

/// The leg's SDP audio address, canonical, unless there is none or it is a hold
/// address.
fn media_ip(leg: &LegFacts) -> Option<IpAddr> {
    let ip = leg.sdp.as_ref()?.audio_address()?.ip().to_canonical();
    (!ip.is_unspecified()).then_some(ip)
}

/// The leg's SDP, when it has an active audio stream.
fn audio(leg: &LegFacts) -> Option<&SessionDescription> {
    leg.sdp.as_ref().filter(|s| s.active_audio().is_some())
}

/// Whether `policy`'s lists refuse `other`: deny first, then a non-empty permit list.
fn refused(policy: &LegPolicy, other: IpAddr) -> Option<ListRule> {
    if let Some(net) = policy.deny.iter().find(|n| n.contains(other)) {
        return Some(ListRule::Deny(*net));
    }
    (!policy.permit.is_empty() && !policy.permit.iter().any(|n| n.contains(other))).then_some(ListRule::NotPermitted)
}

/// Whether a codec carries voice (not telephone-event, not comfort noise).
pub(crate) fn is_voice(c: &Codec) -> bool {
    !c.is_telephone_event() && !c.name.eq_ignore_ascii_case("CN")
}

/// Rule 4's numbering check: `(codec, a's number, b's number)` when no common voice
/// codec has the same payload type in both (the first common one is named), or when
/// both list telephone-event under different numbers.
fn payload_type_clash(a: &SessionDescription, b: &SessionDescription) -> Option<(String, u8, u8)> {
    let (ca, cb) = (a.audio_codecs(), b.audio_codecs());
    let same = |x: &Codec, y: &Codec| x.name.eq_ignore_ascii_case(&y.name) && x.clock_rate == y.clock_rate;
    let pairs: Vec<(&Codec, &Codec)> =
        ca.iter().filter(|c| is_voice(c)).filter_map(|x| cb.iter().find(|y| same(x, y)).map(|y| (x, y))).collect();
    if !pairs.is_empty() && pairs.iter().all(|(x, y)| x.payload_type != y.payload_type) {
        let (x, y) = pairs[0];
        return Some((x.name.clone(), x.payload_type, y.payload_type));
    }
    let event = |cs: &[Codec]| cs.iter().find(|c| c.is_telephone_event()).cloned();
    match (event(&ca), event(&cb)) {
        (Some(x), Some(y)) if x.payload_type != y.payload_type => Some((x.name, x.payload_type, y.payload_type)),
        _ => None,
    }
}

/// The voice codecs of `a`'s first active audio stream that `b`'s also lists, by
/// encoding name (case-insensitive) and clock rate, in `a`'s order, each name once
/// (as `a` writes it). telephone-event and CN are not voice and never count.
pub fn common_codecs(a: &SessionDescription, b: &SessionDescription) -> Vec<String> {
    let theirs: Vec<Codec> = b.audio_codecs().into_iter().filter(is_voice).collect();
    let mut common: Vec<String> = Vec::new();
    for c in a.audio_codecs().into_iter().filter(is_voice) {
        let shared = theirs.iter().any(|t| t.name.eq_ignore_ascii_case(&c.name) && t.clock_rate == c.clock_rate);
        if shared && !common.iter().any(|n| n.eq_ignore_ascii_case(&c.name)) {
            common.push(c.name);
        }
    }
    common
}

#[cfg(test)]
mod tests;
