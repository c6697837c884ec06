//! RFC 4733 telephone-event detection: one [`Dtmf`] per key press.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A sender sends an event as a run of packets that all carry the RTP timestamp of the
//! event's start (RFC 4733 §2.5.1.2), with a growing duration, and its last packet —
//! the E(nd) bit set — three times (§2.5.1.4); any of them may also be retransmitted.
//! The detector reports the event once, at the first end packet of a timestamp it has
//! not reported, with that packet's duration. Packets of an already reported timestamp
//! (the redundant end packets, retransmissions), and older ones, are ignored.
//!
//! When every end packet of an event is lost, the event is reported when the next
//! event of the stream starts (a new timestamp), with the longest duration seen. (An
//! event whose end is lost and that no other event follows is not reported.)
//!
//! Events 0–9 are digits '0'–'9', 10 '*', 11 '#', 12–15 'A'–'D' (§3.2); other events
//! (flash, tones) are not reported. Inband DTMF (tones inside the audio, a Goertzel
//! detector over decoded G.711) is not done here.

use crate::codec::{Codec, PayloadMap};
use crate::rtp::{self, RtpHeader};
use std::collections::VecDeque;
use std::time::Duration;

/// An event timestamp up to this many units behind the last reported one is an old
/// packet of an event already reported (2^20 units: over two minutes at 8 kHz).
const OLD_WINDOW: u32 = 1 << 20;

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtmf {
    /// '0'–'9', '*', '#', 'A'–'D'.
    pub digit: char,
    /// How long the key was held, from the event's duration field.
    pub duration: Duration,
}

/// The digit of an RFC 4733 §3.2 event code.
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    timestamp: u32,
    event: u8,
    /// The longest duration seen, in RTP timestamp units.
    duration: u16,
    clock_rate: u32,
}

/// The DTMF detector of one leg (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    codecs: PayloadMap,
    ssrc: Option<u32>,
    pending: Option<Pending>,
    last_reported: Option<u32>,
    digits: VecDeque<Dtmf>,
}

impl DtmfDetector {
    /// A detector that finds the telephone-event payload type through `codecs`.
    pub fn new(codecs: PayloadMap) -> DtmfDetector {
        DtmfDetector { codecs, ssrc: None, pending: None, last_reported: None, digits: VecDeque::new() }
    }

    /// Replaces the payload type map (a re-negotiation).
    pub fn set_codecs(&mut self, codecs: PayloadMap) {
        self.codecs = codecs;
    }

    /// Looks at one packet received from the leg; drain [`DtmfDetector::poll_digit`]
    /// after it. Anything but a telephone-event packet is ignored.
    pub fn handle_rtp(&mut self, packet: &[u8]) {
        if let Some(header) = rtp::parse_rtp(packet) {
            self.handle_parsed(&header, packet);
        }
    }

    /// [`DtmfDetector::handle_rtp`] for a packet already parsed into `header`.
    pub fn handle_parsed(&mut self, header: &RtpHeader, packet: &[u8]) {
        let Some(Codec::TelephoneEvent { clock_rate }) = self.codecs.get(header.payload_type) else { return };
        let Some(p) = packet.get(header.header_len..header.header_len + header.payload_len).filter(|p| p.len() >= 4) else {
            return;
        };
        let (event, end, duration) = (p[0], p[1] & 0x80 != 0, u16::from_be_bytes([p[2], p[3]]));
        let ts = header.timestamp;
        if self.ssrc != Some(header.ssrc) {
            // A new stream: the old one's unfinished event is over.
            self.flush();
            self.last_reported = None;
            self.ssrc = Some(header.ssrc);
        }
        if self.last_reported.is_some_and(|last| last.wrapping_sub(ts) < OLD_WINDOW) {
            return;
        }
        if let Some(p) = self.pending.filter(|p| p.timestamp != ts) {
            if ts.wrapping_sub(p.timestamp) > u32::MAX / 2 {
                // Older than the event in progress: a stray retransmission.
                return;
            }
            self.flush();
        }
        let longest = self.pending.map_or(duration, |p| p.duration.max(duration));
        self.pending = Some(Pending { timestamp: ts, event, duration: longest, clock_rate });
        if end {
            // The end packet's own duration is the event's (§2.5.1.3).
            if let Some(p) = &mut self.pending {
                p.duration = duration;
            }
            self.flush();
        }
    }

    /// Reports the event in progress, if any.
    fn flush(&mut self) {
        let Some(p) = self.pending.take() else { return };
        self.last_reported = Some(p.timestamp);
        if let Some(digit) = digit(p.event) {
            let nanos = u64::from(p.duration) * 1_000_000_000 / u64::from(p.clock_rate.max(1));
            self.digits.push_back(Dtmf { digit, duration: Duration::from_nanos(nanos) });
        }
    }

    /// The next digit detected, in order.
    #[must_use]
    pub fn poll_digit(&mut self) -> Option<Dtmf> {
        self.digits.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn event(pt: u8, seq: u16, ts: u32, ssrc: u32, code: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[code, if end { 0x80 | 10 } else { 10 }]);
        p.extend_from_slice(&duration.to_be_bytes());
        p
    }

    fn digits(d: &mut DtmfDetector) -> Vec<Dtmf> {
        std::iter::from_fn(|| d.poll_digit()).collect()
    }

    fn press(d: &mut DtmfDetector, seq: u16, ts: u32, code: u8) {
        // Start (marker omitted: the detector does not need it), two updates, three ends.
        for (i, (end, dur)) in [(false, 160), (false, 320), (false, 480), (true, 800), (true, 800), (true, 800)].into_iter().enumerate() {
            d.handle_rtp(&event(101, seq + i as u16, ts, 1, code, end, dur));
        }
    }

    #[test]
    fn three_end_packets_make_one_digit() {
        let mut d = DtmfDetector::new(PayloadMap::default());
        press(&mut d, 1, 1000, 5);
        assert_eq!(digits(&mut d), [Dtmf { digit: '5', duration: Duration::from_millis(100) }]);
        // A retransmission of the end, later.
        d.handle_rtp(&event(101, 4, 1000, 1, 5, true, 800));
        assert_eq!(digits(&mut d), []);
        // The same key again is a new event (new timestamp).
        press(&mut d, 10, 5000, 5);
        press(&mut d, 20, 9000, 11);
        assert_eq!(digits(&mut d).iter().map(|d| d.digit).collect::<String>(), "5#");
        // An old event's packet after a newer one was reported.
        d.handle_rtp(&event(101, 5, 1000, 1, 5, true, 800));
        assert_eq!(digits(&mut d), []);
    }

    #[test]
    fn every_code_and_only_digits() {
        let mut d = DtmfDetector::new(PayloadMap::default());
        for code in 0..=16u8 {
            d.handle_rtp(&event(101, u16::from(code), u32::from(code) * 2000, 1, code, true, 400));
        }
        assert_eq!(digits(&mut d).iter().map(|d| d.digit).collect::<String>(), "0123456789*#ABCD", "16 (flash) is not a digit");
    }

    #[test]
    fn negotiated_payload_type_and_clock_rate() {
        let map = HashMap::from([(96, Codec::TelephoneEvent { clock_rate: 48000 }), (101, Codec::Other)]);
        let mut d = DtmfDetector::new(PayloadMap::new(&map));
        d.handle_rtp(&event(101, 1, 0, 1, 1, true, 4800));
        assert_eq!(digits(&mut d), [], "101 is not telephone-event here");
        d.handle_rtp(&event(96, 2, 0, 1, 1, true, 4800));
        assert_eq!(digits(&mut d), [Dtmf { digit: '1', duration: Duration::from_millis(100) }]);
    }

    #[test]
    fn a_lost_end_is_reported_when_the_next_event_starts() {
        let mut d = DtmfDetector::new(PayloadMap::default());
        d.handle_rtp(&event(101, 1, 1000, 1, 7, false, 160));
        d.handle_rtp(&event(101, 2, 1000, 1, 7, false, 480));
        assert_eq!(digits(&mut d), []);
        d.handle_rtp(&event(101, 3, 3000, 1, 8, false, 160));
        assert_eq!(digits(&mut d), [Dtmf { digit: '7', duration: Duration::from_millis(60) }]);
        d.handle_rtp(&event(101, 2, 1000, 1, 7, true, 480));
        assert_eq!(digits(&mut d), [], "the reported one's late end");
        d.handle_rtp(&event(101, 4, 3000, 1, 8, true, 800));
        assert_eq!(digits(&mut d).iter().map(|d| d.digit).collect::<String>(), "8");
        // A new SSRC may reuse timestamps.
        d.handle_rtp(&event(101, 1, 3000, 2, 9, true, 800));
        assert_eq!(digits(&mut d).iter().map(|d| d.digit).collect::<String>(), "9");
        // Short and garbage payloads are ignored.
        let mut short = event(101, 9, 9000, 2, 1, true, 800);
        short.truncate(14);
        d.handle_rtp(&short);
        d.handle_rtp(b"\x80\x65");
        assert_eq!(digits(&mut d), []);
    }
}
