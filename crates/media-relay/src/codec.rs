//! Payload type → codec, per leg: what the recorder decodes and the DTMF detector reads.
//!
//! The numbers come from the leg's negotiated SDP (`a=rtpmap`); the static assignments
//! of RFC 3551 §6 (0 = PCMU, 8 = PCMA, 13 = CN) fill in what the SDP did not name, and
//! telephone-event defaults to 101 (the number nearly every phone uses) when the SDP
//! names no telephone-event at all.

use std::borrow::Cow;
use std::collections::HashMap;

/// What a payload type carries, as far as the relay's recorder and DTMF detector care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, 8 kHz (`PCMU/8000`, static PT 0).
    Pcmu,
    /// G.711 A-law, 8 kHz (`PCMA/8000`, static PT 8).
    Pcma,
    /// RFC 4733 named telephone events (`telephone-event/<rate>`): DTMF digits.
    TelephoneEvent {
        /// The RTP clock rate (8000 beside G.711, 48000 beside Opus): the unit of the
        /// event's duration field.
        clock_rate: u32,
    },
    /// RFC 3389 comfort noise (`CN`, static PT 13): recorded as silence.
    ComfortNoise,
    /// Any other codec (G.722, Opus, …): the recorder cannot decode it and skips it.
    Other,
}

impl Codec {
    /// The codec an `a=rtpmap` encoding name and clock rate stand for (names are
    /// case-insensitive, RFC 4855 §3). G.711 at a rate other than 8000 is [`Codec::Other`].
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Codec {
        if name.eq_ignore_ascii_case("PCMU") && clock_rate == 8000 {
            Codec::Pcmu
        } else if name.eq_ignore_ascii_case("PCMA") && clock_rate == 8000 {
            Codec::Pcma
        } else if name.eq_ignore_ascii_case("telephone-event") {
            Codec::TelephoneEvent { clock_rate }
        } else if name.eq_ignore_ascii_case("CN") {
            Codec::ComfortNoise
        } else {
            Codec::Other
        }
    }

    /// The RFC 3551 §6 static assignment of `pt` that the relay cares about (0, 8, 13;
    /// and 19, CN in drafts before RFC 3389, still sent by old gateways).
    pub fn static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            13 | 19 => Some(Codec::ComfortNoise),
            _ => None,
        }
    }
}

/// The telephone-event payload type assumed when the leg's map names none.
pub const DEFAULT_TELEPHONE_EVENT: u8 = 101;

/// One leg's payload type → [`Codec`] map, with the defaults of the module docs filled in.
/// A handful of entries, looked up by a linear scan (cheaper than hashing at that size).
/// The defaults alone (most calls, and every leg until told) are a shared table, not a
/// copy: each relayed call holds four maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    entries: Cow<'static, [(u8, Codec)]>,
}

/// [`PayloadMap::default`]'s entries, sorted by payload type.
static DEFAULT_ENTRIES: [(u8, Codec); 5] = [
    (0, Codec::Pcmu),
    (8, Codec::Pcma),
    (13, Codec::ComfortNoise),
    (19, Codec::ComfortNoise),
    (DEFAULT_TELEPHONE_EVENT, Codec::TelephoneEvent { clock_rate: 8000 }),
];

impl PayloadMap {
    /// The negotiated `map` (entries with a PT above 127 are not RTP payload types and
    /// are ignored), then PT 0, 8, 13 and 19 where `map` does not name them, then
    /// telephone-event/8000 at [`DEFAULT_TELEPHONE_EVENT`] if `map` has no
    /// telephone-event and does not use that number for something else.
    pub fn new(map: &HashMap<u8, Codec>) -> PayloadMap {
        let mut entries: Vec<(u8, Codec)> = map.iter().filter(|(&pt, _)| pt < 128).map(|(&pt, &c)| (pt, c)).collect();
        for pt in [0, 8, 13, 19] {
            if !map.contains_key(&pt) {
                if let Some(c) = Codec::static_payload_type(pt) {
                    entries.push((pt, c));
                }
            }
        }
        let has_events = map.values().any(|c| matches!(c, Codec::TelephoneEvent { .. }));
        if !has_events && !map.contains_key(&DEFAULT_TELEPHONE_EVENT) {
            entries.push((DEFAULT_TELEPHONE_EVENT, Codec::TelephoneEvent { clock_rate: 8000 }));
        }
        entries.sort_unstable_by_key(|&(pt, _)| pt);
        if entries == DEFAULT_ENTRIES {
            return PayloadMap { entries: Cow::Borrowed(&DEFAULT_ENTRIES) };
        }
        entries.shrink_to_fit();
        PayloadMap { entries: Cow::Owned(entries) }
    }

    /// What payload type `pt` carries on this leg; `None` = unknown.
    pub fn get(&self, pt: u8) -> Option<Codec> {
        self.entries.iter().find(|&&(p, _)| p == pt).map(|&(_, c)| c)
    }
}

impl Default for PayloadMap {
    /// Only the defaults: 0 PCMU, 8 PCMA, 13 and 19 CN, 101 telephone-event/8000.
    fn default() -> Self {
        PayloadMap { entries: Cow::Borrowed(&DEFAULT_ENTRIES) }
    }
}

/// One payload format as an SDP names it, for matching a codec across the two legs:
/// its payload type and its identity, the encoding name (case-insensitive, RFC 4855 §3),
/// clock rate and channel count (`a=rtpmap:<pt> <name>/<rate>[/<channels>]`, RFC 8866
/// §6.6; an absent count is 1 for audio, RFC 3551 §4.1). A name alone is not enough:
/// `telephone-event/8000` and `telephone-event/48000` are different formats, and so are
/// `opus/48000/2` and a mono `L16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format<'a> {
    /// The payload type (0–127) the SDP gives it.
    pub payload_type: u8,
    /// The encoding name, as written.
    pub name: &'a str,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count; `None` (not written) is 1.
    pub channels: Option<u16>,
}

impl Format<'_> {
    /// Whether `self` and `other` are the same codec (payload types aside).
    pub fn same_codec(&self, other: &Format<'_>) -> bool {
        self.name.eq_ignore_ascii_case(other.name)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }
}

/// Payload-type renumbering for the packets of one direction (received on one leg,
/// forwarded to the other).
///
/// Payload-type numbers belong to each leg's own offer/answer (RFC 3264 §8.3.2: a
/// dynamic mapping, once made, stays for that session; RFC 3551 §3): the same codec can
/// be 101 on one leg and 96 on the other. An SDP names the numbers its sender expects
/// to receive (RFC 3264 §5.1, §6.1), so a packet from leg X, numbered as X was told
/// (the SDP we sent X), must reach leg Y numbered as Y asked (the SDP Y sent us).
///
/// A table of 128 entries, identity where nothing is said: looking a number up costs an
/// index, never an allocation. Numbers the table does not name pass unchanged.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadTranslation {
    table: [u8; 128],
}

impl PayloadTranslation {
    /// Every payload type unchanged.
    pub const IDENTITY: PayloadTranslation = PayloadTranslation { table: identity_table() };

    /// `from → to` for each pair; a pair with a number above 127 (not an RTP payload
    /// type, RFC 3550 §5.1) is ignored, and of two pairs for one `from` the last wins.
    pub fn from_pairs(pairs: &[(u8, u8)]) -> PayloadTranslation {
        let mut t = PayloadTranslation::IDENTITY;
        for &(from, to) in pairs {
            if from < 128 && to < 128 {
                t.table[usize::from(from)] = to;
            }
        }
        t
    }

    /// The table between two legs: each format of `sent` (the numbers the sending leg's
    /// endpoint uses) becomes the payload type the same codec ([`Format::same_codec`])
    /// has in `received` (the numbers the other endpoint expects), the first such if it
    /// has several. A codec `received` does not name keeps its number; of two `sent`
    /// formats with one number the first counts (list the SDP that is authoritative
    /// first).
    pub fn between(sent: &[Format<'_>], received: &[Format<'_>]) -> PayloadTranslation {
        let mut t = PayloadTranslation::IDENTITY;
        let mut seen = [false; 128];
        for s in sent.iter().filter(|s| s.payload_type < 128) {
            let from = usize::from(s.payload_type);
            if std::mem::replace(&mut seen[from], true) {
                continue;
            }
            if let Some(r) = received.iter().find(|r| r.payload_type < 128 && r.same_codec(s)) {
                t.table[from] = r.payload_type;
            }
        }
        t
    }

    /// The payload type to write for a packet that arrived with `pt` (0–127; a larger
    /// value is returned unchanged).
    pub fn get(&self, pt: u8) -> u8 {
        self.table.get(usize::from(pt)).copied().unwrap_or(pt)
    }

    /// Whether every number passes unchanged.
    pub fn is_identity(&self) -> bool {
        *self == PayloadTranslation::IDENTITY
    }

    /// The numbers that change, as `(from, to)` pairs in `from` order.
    pub fn pairs(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        (0u8..128).zip(self.table.iter().copied()).filter(|&(from, to)| from != to)
    }
}

const fn identity_table() -> [u8; 128] {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        table[i] = i as u8;
        i += 1;
    }
    table
}

impl Default for PayloadTranslation {
    /// [`PayloadTranslation::IDENTITY`].
    fn default() -> Self {
        PayloadTranslation::IDENTITY
    }
}

impl std::fmt::Debug for PayloadTranslation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.pairs()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_what_the_sdp_did_not_name() {
        let m = PayloadMap::default();
        assert_eq!(m.get(0), Some(Codec::Pcmu));
        assert_eq!(m.get(8), Some(Codec::Pcma));
        assert_eq!(m.get(13), Some(Codec::ComfortNoise));
        assert_eq!(m.get(101), Some(Codec::TelephoneEvent { clock_rate: 8000 }));
        assert_eq!(m.get(96), None);

        let negotiated = HashMap::from([(96, Codec::TelephoneEvent { clock_rate: 8000 }), (101, Codec::Other), (0, Codec::Other)]);
        let m = PayloadMap::new(&negotiated);
        assert_eq!(m.get(96), Some(Codec::TelephoneEvent { clock_rate: 8000 }));
        assert_eq!(m.get(101), Some(Codec::Other), "the SDP's own use of 101 wins");
        assert_eq!(m.get(0), Some(Codec::Other), "and of a static number");
        assert_eq!(m.get(8), Some(Codec::Pcma));
        let m = PayloadMap::new(&HashMap::from([(100, Codec::TelephoneEvent { clock_rate: 48000 })]));
        assert_eq!(m.get(101), None, "no default event PT beside a negotiated one");
        assert_eq!(PayloadMap::new(&HashMap::from([(200, Codec::Pcmu)])).get(200), None);
    }

    #[test]
    fn rtpmap_names() {
        assert_eq!(Codec::from_rtpmap("pcmu", 8000), Codec::Pcmu);
        assert_eq!(Codec::from_rtpmap("PCMA", 8000), Codec::Pcma);
        assert_eq!(Codec::from_rtpmap("PCMA", 16000), Codec::Other);
        assert_eq!(Codec::from_rtpmap("Telephone-Event", 48000), Codec::TelephoneEvent { clock_rate: 48000 });
        assert_eq!(Codec::from_rtpmap("CN", 8000), Codec::ComfortNoise);
        assert_eq!(Codec::from_rtpmap("opus", 48000), Codec::Other);
    }

    fn f(payload_type: u8, name: &str, clock_rate: u32, channels: Option<u16>) -> Format<'_> {
        Format { payload_type, name, clock_rate, channels }
    }

    #[test]
    fn translation_matches_name_rate_and_channels() {
        let sent = [
            f(0, "PCMU", 8000, None),
            f(111, "opus", 48000, Some(2)),
            f(101, "telephone-event", 8000, None),
            f(100, "telephone-event", 48000, None),
        ];
        let received = [
            f(0, "PCMU", 8000, None),
            f(107, "OPUS", 48000, Some(2)),
            f(97, "telephone-event", 48000, None),
            f(96, "Telephone-Event", 8000, None),
        ];
        let t = PayloadTranslation::between(&sent, &received);
        assert_eq!(t.get(0), 0);
        assert_eq!(t.get(111), 107, "names are case-insensitive");
        assert_eq!(t.get(101), 96, "telephone-event/8000 is not telephone-event/48000");
        assert_eq!(t.get(100), 97);
        assert_eq!(t.get(8), 8, "an unknown number passes");
        assert_eq!(t.get(200), 200, "not a payload type: unchanged, no panic");
        assert_eq!(t.pairs().collect::<Vec<_>>(), [(100, 97), (101, 96), (111, 107)]);
        assert!(!t.is_identity());
        assert_eq!(format!("{t:?}"), "{100: 97, 101: 96, 111: 107}");

        let mono = PayloadTranslation::between(&[f(96, "L16", 8000, None)], &[f(97, "L16", 8000, Some(2)), f(98, "L16", 8000, Some(1))]);
        assert_eq!(mono.get(96), 98, "no channel count is one channel");
        let first = PayloadTranslation::between(&[f(96, "PCMU", 8000, None), f(96, "PCMA", 8000, None)], &[f(8, "PCMA", 8000, None)]);
        assert!(first.is_identity(), "the first format of a number counts");
        assert!(PayloadTranslation::between(&[], &received).is_identity());
        assert_eq!(PayloadTranslation::default(), PayloadTranslation::IDENTITY);
    }

    #[test]
    fn translation_from_pairs_ignores_non_payload_types() {
        let t = PayloadTranslation::from_pairs(&[(101, 96), (130, 1), (5, 200), (101, 97)]);
        assert_eq!(t.pairs().collect::<Vec<_>>(), [(101, 97)]);
    }
}
