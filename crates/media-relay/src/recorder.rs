//! A leg's received RTP → 16-bit linear PCM at 8 kHz, for recording.
//!
//! Feed it every RTP packet accepted from the leg, in arrival order; it appends the
//! packet's samples to the caller's buffer, preceded by silence for any media time the
//! stream skipped:
//!
//! - **G.711** (whichever PT the leg's [`PayloadMap`] gives PCMU or PCMA) is decoded,
//!   one sample per payload byte.
//! - **Gaps.** The next packet of the stream is expected at the previous one's RTP
//!   timestamp + its sample count. When a packet arrives with a newer sequence number
//!   (1 to [`MAX_DROPOUT`] ahead) and a later timestamp, the difference is filled with
//!   silence, at most [`MAX_GAP_SAMPLES`]: lost packets, and also media time a sender
//!   spent sending telephone events or comfort noise, or nothing at all (silence
//!   suppression), keep their place in the recording. The bound keeps a bogus timestamp
//!   jump from writing hours of zeros; a longer real pause is shortened to it.
//! - **Late and duplicate packets** (sequence number not ahead of the last one
//!   recorded) are dropped: their place is already written. No jitter buffer.
//! - **A new SSRC**, or a sequence jump of [`MAX_DROPOUT`] or more, starts a new stream
//!   without silence.
//! - **telephone-event and CN** packets are skipped (their media time becomes silence
//!   through the gap rule), as are packets of any codec it cannot decode (counted in
//!   [`RecorderStats::unsupported`]; G.722 or Opus calls record nothing).

use crate::codec::{Codec, PayloadMap};
use crate::g711;
use crate::rtp::{self, RtpHeader};

/// The recorder's sample rate: G.711's.
pub const SAMPLE_RATE: u32 = 8000;
/// The most silence one gap inserts: 5 s at 8 kHz.
pub const MAX_GAP_SAMPLES: u32 = 5 * SAMPLE_RATE;
/// A sequence number this far ahead (or more) is a restart, not loss (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;

/// What a [`Recorder`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Audio packets decoded.
    pub packets: u64,
    /// Samples appended, silence included.
    pub samples: u64,
    /// Of `samples`, silence inserted for gaps.
    pub silence: u64,
    /// Packets dropped as late or duplicate.
    pub late: u64,
    /// telephone-event and CN packets skipped.
    pub skipped: u64,
    /// Packets of a codec the recorder cannot decode, or of an unknown PT.
    pub unsupported: u64,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    last_seq: u16,
    next_ts: u32,
}

/// The recorder of one leg (see the module docs).
#[derive(Debug, Clone)]
pub struct Recorder {
    codecs: PayloadMap,
    stream: Option<Stream>,
    stats: RecorderStats,
}

impl Recorder {
    /// A recorder that reads payload types through `codecs`.
    pub fn new(codecs: PayloadMap) -> Recorder {
        Recorder { codecs, stream: None, stats: RecorderStats::default() }
    }

    /// Replaces the payload type map (a re-negotiation).
    pub fn set_codecs(&mut self, codecs: PayloadMap) {
        self.codecs = codecs;
    }

    /// Parses `packet` and appends its audio (and any gap's silence) to `out`. Returns
    /// how many samples it appended. Anything that is not valid RTP appends nothing.
    pub fn handle_rtp(&mut self, packet: &[u8], out: &mut Vec<i16>) -> usize {
        match rtp::parse_rtp(packet) {
            Some(header) => self.handle_parsed(&header, packet, out),
            None => 0,
        }
    }

    /// [`Recorder::handle_rtp`] for a packet already parsed into `header`.
    pub fn handle_parsed(&mut self, header: &RtpHeader, packet: &[u8], out: &mut Vec<i16>) -> usize {
        let table = match self.codecs.get(header.payload_type) {
            Some(Codec::Pcmu) => &g711::ULAW_TO_LINEAR,
            Some(Codec::Pcma) => &g711::ALAW_TO_LINEAR,
            Some(Codec::TelephoneEvent { .. } | Codec::ComfortNoise) => {
                self.stats.skipped += 1;
                return 0;
            }
            Some(Codec::Other) | None => {
                self.stats.unsupported += 1;
                return 0;
            }
        };
        let Some(payload) = packet.get(header.header_len..header.header_len + header.payload_len) else { return 0 };
        let silence = match self.stream {
            Some(s) if s.ssrc == header.ssrc => {
                let ahead = header.sequence.wrapping_sub(s.last_seq);
                if ahead == 0 || ahead > u16::MAX / 2 {
                    self.stats.late += 1;
                    return 0;
                }
                if ahead >= MAX_DROPOUT {
                    0
                } else {
                    let gap = header.timestamp.wrapping_sub(s.next_ts);
                    // A timestamp behind the expected one (wrapping): no gap.
                    if gap > u32::MAX / 2 {
                        0
                    } else {
                        gap.min(MAX_GAP_SAMPLES)
                    }
                }
            }
            _ => 0,
        };
        let before = out.len();
        out.resize(before + silence as usize, 0);
        out.extend(payload.iter().map(|&b| table[usize::from(b)]));
        let samples = payload.len() as u32;
        self.stream = Some(Stream { ssrc: header.ssrc, last_seq: header.sequence, next_ts: header.timestamp.wrapping_add(samples) });
        self.stats.packets += 1;
        self.stats.silence += u64::from(silence);
        let appended = out.len() - before;
        self.stats.samples += appended as u64;
        appended
    }

    /// Forgets the stream: the next packet starts a new one, without silence (media
    /// resumed after a pause the recording should not show, such as direct media).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Counters so far.
    pub fn stats(&self) -> RecorderStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn g711(seq: u16) -> Vec<u8> {
        packet(0, seq, u32::from(seq) * 160, 7, &[0x80; 160])
    }

    #[test]
    fn decodes_pcmu_and_pcma_at_their_negotiated_numbers() {
        let mut r = Recorder::new(PayloadMap::new(&HashMap::from([(96, Codec::Pcma)])));
        let mut out = Vec::new();
        assert_eq!(r.handle_rtp(&packet(0, 1, 0, 1, &[0xff, 0x00, 0x80]), &mut out), 3);
        assert_eq!(out, [0, -32124, 32124]);
        out.clear();
        assert_eq!(r.handle_rtp(&packet(96, 2, 3, 1, &[0xd5, 0x55]), &mut out), 2);
        assert_eq!(out, [8, -8]);
        assert_eq!(r.handle_rtp(&packet(9, 3, 5, 1, &[1; 160]), &mut out), 0, "G.722: unsupported");
        assert_eq!(r.handle_rtp(&packet(101, 4, 5, 1, &[1, 0x80, 0, 160]), &mut out), 0, "telephone-event");
        assert_eq!(r.handle_rtp(&packet(13, 5, 5, 1, &[40]), &mut out), 0, "CN");
        assert_eq!(r.handle_rtp(b"\x80\x00junk", &mut out), 0, "not RTP");
        let st = r.stats();
        assert_eq!((st.packets, st.samples, st.unsupported, st.skipped), (2, 5, 1, 2));
    }

    #[test]
    fn gaps_are_filled_with_silence_late_packets_dropped() {
        let mut r = Recorder::new(PayloadMap::default());
        let mut out = Vec::new();
        r.handle_rtp(&g711(10), &mut out);
        r.handle_rtp(&g711(11), &mut out);
        assert_eq!(out.len(), 320);
        // 12 and 13 lost.
        assert_eq!(r.handle_rtp(&g711(14), &mut out), 3 * 160);
        assert_eq!(out.len(), 320 + 320 + 160);
        assert!(out[320..640].iter().all(|&s| s == 0), "silence where 12 and 13 were");
        assert!(out[640..].iter().all(|&s| s == 32124));
        assert_eq!(r.handle_rtp(&g711(13), &mut out), 0, "late: its place is written");
        assert_eq!(r.handle_rtp(&g711(14), &mut out), 0, "duplicate");
        let st = r.stats();
        assert_eq!((st.packets, st.silence, st.late, st.samples), (3, 320, 2, 800));
    }

    #[test]
    fn events_keep_their_media_time_as_silence() {
        let mut r = Recorder::new(PayloadMap::default());
        let mut out = Vec::new();
        r.handle_rtp(&packet(0, 1, 0, 5, &[0x80; 160]), &mut out);
        // A digit: three event packets (timestamp of the event start), then audio 480
        // samples later with the sequence numbers they used.
        for (seq, d) in [(2u16, 160u16), (3, 320), (4, 320)] {
            let [d0, d1] = d.to_be_bytes();
            r.handle_rtp(&packet(101, seq, 160, 5, &[1, 0x0a, d0, d1]), &mut out);
        }
        assert_eq!(r.handle_rtp(&packet(0, 5, 480, 5, &[0x80; 160]), &mut out), 320 + 160);
    }

    #[test]
    fn silence_is_bounded_and_restarts_insert_none() {
        let mut r = Recorder::new(PayloadMap::default());
        let mut out = Vec::new();
        r.handle_rtp(&packet(0, 1, 0, 5, &[0x80; 160]), &mut out);
        assert_eq!(r.handle_rtp(&packet(0, 2, 3_000_000, 5, &[0x80; 160]), &mut out), MAX_GAP_SAMPLES as usize + 160, "bounded");
        assert_eq!(r.handle_rtp(&packet(0, 3, 100, 5, &[0x80; 160]), &mut out), 160, "timestamp went back: no gap");
        assert_eq!(r.handle_rtp(&packet(0, 9000, 800_000, 5, &[0x80; 160]), &mut out), 160, "sequence restart");
        assert_eq!(r.handle_rtp(&packet(0, 50, 9_000_000, 6, &[0x80; 160]), &mut out), 160, "new SSRC");
        // Wraparound of both numbers: 65535 → 1 lost 0.
        r.handle_rtp(&packet(0, 65535, u32::MAX - 159, 8, &[0x80; 160]), &mut out);
        assert_eq!(r.handle_rtp(&packet(0, 1, 160, 8, &[0x80; 160]), &mut out), 320, "one packet lost across the wrap");
        r.reset();
        assert_eq!(r.handle_rtp(&packet(0, 20, 40_000, 8, &[0x80; 160]), &mut out), 160, "after reset: no gap");
    }
}
