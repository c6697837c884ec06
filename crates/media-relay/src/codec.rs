//! Payload type → codec, per leg: what the recorder decodes and the DTMF detector reads.
//!
//! The numbers come from the leg's negotiated SDP (`a=rtpmap`); the static assignments
//! of RFC 3551 §6 (0 = PCMU, 8 = PCMA, 13 = CN) fill in what the SDP did not name, and
//! telephone-event defaults to 101 (the number nearly every phone uses) when the SDP
//! names no telephone-event at all.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    entries: Vec<(u8, Codec)>,
}

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
        PayloadMap { entries }
    }

    /// What payload type `pt` carries on this leg; `None` = unknown.
    pub fn get(&self, pt: u8) -> Option<Codec> {
        self.entries.iter().find(|&&(p, _)| p == pt).map(|&(_, c)| c)
    }
}

impl Default for PayloadMap {
    /// Only the defaults: 0 PCMU, 8 PCMA, 13 and 19 CN, 101 telephone-event/8000.
    fn default() -> Self {
        PayloadMap::new(&HashMap::new())
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
}
