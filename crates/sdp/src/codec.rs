//! RTP payload formats: `a=rtpmap` and the RFC 3551 static payload types.

/// One RTP payload format of a media stream: its payload type and what `a=rtpmap` (or
/// the RFC 3551 static table) says it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The payload type number (0–127), as listed on the `m=` line.
    pub payload_type: u8,
    /// The encoding name, as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The encoding parameters (for audio: the channel count) when written.
    pub channels: Option<u16>,
}

/// RFC 3551 tables 4 and 5: the static payload types, with their clock rate and, where
/// the table gives more than one, the channel count.
const STATIC: &[(u8, &str, u32, Option<u16>)] = &[
    (0, "PCMU", 8000, None),
    (3, "GSM", 8000, None),
    (4, "G723", 8000, None),
    (5, "DVI4", 8000, None),
    (6, "DVI4", 16000, None),
    (7, "LPC", 8000, None),
    (8, "PCMA", 8000, None),
    (9, "G722", 8000, None),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, None),
    (12, "QCELP", 8000, None),
    (13, "CN", 8000, None),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, None),
    (16, "DVI4", 11025, None),
    (17, "DVI4", 22050, None),
    (18, "G729", 8000, None),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

/// The encoding name of RFC 4733 DTMF events.
pub(crate) const TELEPHONE_EVENT: &str = "telephone-event";

impl Codec {
    /// A codec from its parts.
    pub fn new(payload_type: u8, name: &str, clock_rate: u32, channels: Option<u16>) -> Codec {
        Codec { payload_type, name: name.to_owned(), clock_rate, channels }
    }

    /// The RFC 3551 static payload type `pt` (0 PCMU, 3 GSM, 8 PCMA, 9 G722, 18 G729,
    /// 31 H261…), or `None` for an unassigned or dynamic number.
    pub fn static_payload(pt: u8) -> Option<Codec> {
        STATIC.iter().find(|(n, ..)| *n == pt).map(|&(n, name, rate, ch)| Codec::new(n, name, rate, ch))
    }

    /// Whether this is RFC 4733 `telephone-event` (DTMF), which is not a voice codec.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case(TELEPHONE_EVENT)
    }

    /// Whether `self` and `other` are the same payload format, their numbers aside: the
    /// encoding name (case-insensitive, RFC 4855 §3), the clock rate and the channel
    /// count (absent = 1, RFC 8866 §6.6 and RFC 3551 §4.1). What the two legs of a call
    /// share under different payload-type numbers.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }

    /// Whether the encoding name is one of `names`, compared case-insensitively.
    pub fn is_named_in(&self, names: &[&str]) -> bool {
        names.iter().any(|n| n.eq_ignore_ascii_case(&self.name))
    }

    /// The value of this codec's `a=rtpmap` attribute: `97 iLBC/8000`, `111 opus/48000/2`.
    pub fn rtpmap_value(&self) -> String {
        use crate::print::push_u64;
        let mut s = String::with_capacity(self.name.len() + 20);
        push_u64(&mut s, u64::from(self.payload_type));
        s.push(' ');
        s.push_str(&self.name);
        s.push('/');
        push_u64(&mut s, u64::from(self.clock_rate));
        if let Some(ch) = self.channels {
            s.push('/');
            push_u64(&mut s, u64::from(ch));
        }
        s
    }

    /// Reads an `a=rtpmap` value (`<pt> <name>/<rate>[/<channels>]`); `None` when malformed.
    pub fn parse_rtpmap(value: &str) -> Option<Codec> {
        let (pt, rest) = value.trim().split_once([' ', '\t'])?;
        let payload_type = digits(pt)?;
        let mut parts = rest.trim().split('/');
        let name = parts.next().filter(|n| !n.is_empty())?;
        let clock_rate = digits(parts.next()?)?;
        let channels = match parts.next() {
            Some(ch) => Some(digits(ch)?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Codec::new(payload_type, name, clock_rate, channels))
    }
}

/// The payload type a format token of an `m=` line stands for: a number 0..=255
/// written canonically (`9`, not `09`, so that printing the number gives the token
/// back); anything else is not a payload type.
pub(crate) fn payload_type(fmt: &str) -> Option<u8> {
    if fmt.len() > 1 && fmt.starts_with('0') {
        return None;
    }
    digits(fmt)
}

/// A number made of ASCII digits only (no sign, no space), or `None`.
pub(crate) fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table() {
        assert_eq!(Codec::static_payload(0), Some(Codec::new(0, "PCMU", 8000, None)));
        assert_eq!(Codec::static_payload(8).map(|c| c.name), Some("PCMA".to_owned()));
        assert_eq!(Codec::static_payload(18).map(|c| c.name), Some("G729".to_owned()));
        assert_eq!(Codec::static_payload(9).map(|c| c.clock_rate), Some(8000));
        assert_eq!(Codec::static_payload(2), None);
        assert_eq!(Codec::static_payload(96), None);
    }

    #[test]
    fn rtpmap_forms() {
        assert_eq!(Codec::parse_rtpmap("97 iLBC/8000"), Some(Codec::new(97, "iLBC", 8000, None)));
        assert_eq!(Codec::parse_rtpmap("111 opus/48000/2"), Some(Codec::new(111, "opus", 48000, Some(2))));
        assert_eq!(Codec::parse_rtpmap("101  telephone-event/8000"), Some(Codec::new(101, "telephone-event", 8000, None)));
        for bad in ["", "97", "97 iLBC", "x iLBC/8000", "300 a/8000", "97 /8000", "97 a/b", "97 a/8000/x", "97 a/1/2/3"] {
            assert_eq!(Codec::parse_rtpmap(bad), None, "{bad:?}");
        }
        assert_eq!(Codec::new(111, "opus", 48000, Some(2)).rtpmap_value(), "111 opus/48000/2");
        assert_eq!(Codec::new(0, "PCMU", 8000, None).rtpmap_value(), "0 PCMU/8000");
    }

    #[test]
    fn payload_types_are_canonical_numbers() {
        assert_eq!(payload_type("0"), Some(0));
        assert_eq!(payload_type("101"), Some(101));
        assert_eq!(payload_type("09"), None, "would print as 9");
        assert_eq!(payload_type("00"), None);
        assert_eq!(payload_type("t38"), None);
        assert_eq!(payload_type("256"), None);
    }

    #[test]
    fn digits_only() {
        assert_eq!(digits::<u16>("49170"), Some(49170));
        assert_eq!(digits::<u16>("+5"), None);
        assert_eq!(digits::<u16>("70000"), None);
        assert_eq!(digits::<u16>(""), None);
    }
}
