//! RTP and RTCP header checks: RFC 3550 §5.1 (the RTP fixed header) and RFC 5761 §4
//! (telling RTP from RTCP on one port).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           timestamp                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           synchronization source (SSRC) identifier            |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |            contributing source (CSRC) identifiers             |
//! |                             ....                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

/// The RTP version every packet we relay carries (RFC 3550 §5.1: V = 2).
pub const VERSION: u8 = 2;
/// The fixed part of the RTP header, in bytes.
pub const FIXED_HEADER_LEN: usize = 12;
/// The shortest RTCP packet: the 4-byte common header and the sender's SSRC
/// (RFC 3550 §6.4; an empty receiver report is exactly this).
pub const MIN_RTCP_LEN: usize = 8;

/// The fields of an RTP header that the relay looks at, from [`parse_rtp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// P: the payload ends in padding; its last byte says how many bytes.
    pub padding: bool,
    /// X: a header extension follows the CSRC list.
    pub extension: bool,
    /// CC: how many CSRC identifiers follow the fixed header (0–15).
    pub csrc_count: u8,
    /// M: the marker bit (start of a talkspurt for audio, RFC 3551 §4.1).
    pub marker: bool,
    /// PT: the payload type (0 = PCMU, 8 = PCMA, 96–127 dynamic).
    pub payload_type: u8,
    /// The sequence number, +1 per packet, wrapping at 65536.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRCs and extension.
    pub header_len: usize,
    /// Bytes of payload, padding excluded.
    pub payload_len: usize,
}

/// Parses an RTP header, checking everything the header says about the packet's length:
/// version 2, the CSRC list and header extension fit, the padding count is at least 1 and
/// fits in what follows the header. `None` for anything else, including a packet whose
/// second byte is in the RTCP range 192–223 ([`is_rtcp`]): RFC 5761 §4 reserves
/// PT 64–95 so that the two can be told apart, so such a packet is not RTP.
pub fn parse_rtp(data: &[u8]) -> Option<RtpHeader> {
    if data.len() < FIXED_HEADER_LEN || data[0] >> 6 != VERSION || is_rtcp(data) {
        return None;
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrc_count = data[0] & 0x0f;
    let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if extension {
        // RFC 3550 §5.3.1: 16 bits profile-defined, 16 bits length in 32-bit words,
        // not counting this 4-byte extension header.
        let ext = data.get(header_len..header_len + 4)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut payload_len = data.len().checked_sub(header_len)?;
    if padding {
        let pad = usize::from(*data.last()?);
        if pad == 0 || pad > payload_len {
            return None;
        }
        payload_len -= pad;
    }
    Some(RtpHeader {
        padding,
        extension,
        csrc_count,
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        sequence: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        header_len,
        payload_len,
    })
}

/// Whether `data` looks like RTCP: version 2, at least [`MIN_RTCP_LEN`] bytes, and a
/// second byte (the RTCP packet type, or RTP's marker and PT) in 192–223, which is
/// RFC 5761 §4's rule for demultiplexing RTP and RTCP on one port (SR = 200, RR = 201,
/// SDES = 202, BYE = 203, APP = 204, RTPFB = 205, PSFB = 206, XR = 207).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= MIN_RTCP_LEN && data[0] >> 6 == VERSION && (192..=223).contains(&data[1])
}

/// The sender SSRC of an RTCP packet (the 32 bits after its first 4 bytes), if
/// [`is_rtcp`].
pub fn rtcp_sender_ssrc(data: &[u8]) -> Option<u32> {
    if !is_rtcp(data) {
        return None;
    }
    Some(u32::from_be_bytes([data[4], data[5], data[6], data[7]]))
}

/// Writes payload type `pt` (its low 7 bits) into an RTP header, keeping the marker bit
/// (RFC 3550 §5.1: M is the high bit of the second byte, PT the other seven). Does
/// nothing to a packet shorter than two bytes; the caller checks that `data` is RTP.
pub fn set_payload_type(data: &mut [u8], pt: u8) {
    if let Some(b) = data.get_mut(1) {
        *b = (*b & 0x80) | (pt & 0x7f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u8, second: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![first, second, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn g711_header() {
        let p = packet(0x80, 0x80, &[0xff; 160]);
        let h = parse_rtp(&p).expect("valid");
        assert_eq!(
            h,
            RtpHeader {
                padding: false,
                extension: false,
                csrc_count: 0,
                marker: true,
                payload_type: 0,
                sequence: 0x1234,
                timestamp: 320,
                ssrc: 0xdead_beef,
                header_len: 12,
                payload_len: 160,
            }
        );
        assert!(!is_rtcp(&p));
    }

    #[test]
    fn csrcs_extension_and_padding_are_measured() {
        // CC = 1, X = 1 with one word of extension, P = 1 with 3 bytes of padding.
        let mut rest = vec![0, 0, 0, 1]; // CSRC
        rest.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, 1 word
        rest.extend_from_slice(&[7; 10]); // payload
        rest.extend_from_slice(&[0, 0, 3]); // padding
        let h = parse_rtp(&packet(0xb1, 8, &rest)).expect("valid");
        assert!(h.padding && h.extension);
        assert_eq!((h.csrc_count, h.payload_type, h.header_len, h.payload_len), (1, 8, 12 + 4 + 8, 10));
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(parse_rtp(&[0x80, 0, 0, 0]), None, "short");
        assert_eq!(parse_rtp(&packet(0x40, 0, &[])), None, "version 1");
        assert_eq!(parse_rtp(&packet(0x82, 0, &[0; 4])), None, "2 CSRCs announced, 1 present");
        assert_eq!(parse_rtp(&packet(0x90, 0, &[0, 0, 0, 2, 0, 0, 0, 0])), None, "extension longer than the packet");
        assert_eq!(parse_rtp(&packet(0xa0, 0, &[1, 2, 0])), None, "padding count 0");
        assert_eq!(parse_rtp(&packet(0xa0, 0, &[1, 2, 9])), None, "padding longer than the payload");
        assert!(parse_rtp(&packet(0x80, 0, &[])).is_some(), "an empty payload is fine");
    }

    #[test]
    fn set_payload_type_keeps_the_marker() {
        let mut p = packet(0x80, 0x80 | 101, &[1, 2]);
        set_payload_type(&mut p, 96);
        assert_eq!(p[1], 0x80 | 96);
        let h = parse_rtp(&p).expect("still RTP");
        assert!(h.marker);
        assert_eq!(h.payload_type, 96);
        let mut p = packet(0x80, 101, &[]);
        set_payload_type(&mut p, 0xff);
        assert_eq!(p[1], 0x7f, "only seven bits are written; no marker invented");
        assert_eq!(&p[2..4], &[0x12, 0x34], "nothing else changes");
        let mut short = [0x80];
        set_payload_type(&mut short, 96);
        set_payload_type(&mut [], 96);
        assert_eq!(short, [0x80]);
    }

    #[test]
    fn rfc5761_demultiplexing() {
        let rr = [0x80, 201, 0, 1, 1, 2, 3, 4];
        assert!(is_rtcp(&rr));
        assert_eq!(rtcp_sender_ssrc(&rr), Some(0x0102_0304));
        assert_eq!(parse_rtp(&packet(0x80, 200, &[])), None, "SR is not RTP");
        assert!(!is_rtcp(&rr[..4]), "shorter than a header and SSRC");
        assert!(!is_rtcp(&[0x80, 191, 0, 1, 1, 2, 3, 4]), "RTP PT 63 with marker");
        assert!(!is_rtcp(&[0x40, 201, 0, 1, 1, 2, 3, 4]), "version 1");
        assert!(parse_rtp(&packet(0x80, 0x80 | 96, &[])).is_some(), "PT 96 with marker is RTP");
    }
}
