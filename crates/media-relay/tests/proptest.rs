//! Network input never panics: arbitrary bytes, sources, legs and times.

use media_relay::{rtp, Leg, PayloadTranslation, Session, SessionConfig};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn source() -> impl Strategy<Value = SocketAddr> {
    // A small address space so that sources repeat and match the SDP addresses.
    (0u8..3, 3999u16..4003).prop_map(|(host, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + host)), port))
}

fn packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        // Mostly-valid RTP headers with arbitrary flags and counts.
        (any::<u8>(), any::<u8>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(b0, b1, seq, rest)| {
            let mut p = vec![0x80 | (b0 & 0x3f), b1];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&rest);
            p
        }),
    ]
}

proptest! {
    #[test]
    fn handle_packet_never_panics(
        nat in any::<[bool; 2]>(),
        steps in proptest::collection::vec((any::<bool>(), any::<bool>(), source(), packet(), 0u64..100_000, any::<u8>()), 1..60),
    ) {
        let mut s = Session::new(Duration::ZERO, SessionConfig { timeout: Duration::from_secs(1), nat, keepalive: Duration::ZERO });
        s.set_remote(Leg::A, Some("192.0.2.10:4000".parse().expect("addr")));
        for (leg_b, rtcp, src, data, t, cmd) in steps {
            let leg = if leg_b { Leg::B } else { Leg::A };
            let now = Duration::from_millis(t);
            let _ = rtp::parse_rtp(&data);
            let _ = rtp::is_rtcp(&data);
            if let Some(f) = s.handle_packet(now, leg, rtcp, src, &data) {
                prop_assert_eq!(f.leg, leg.other());
                prop_assert_eq!(f.rtcp, rtcp);
                // Only valid RTP on the RTP socket is renumbered, and only its PT bits.
                let mut out = data.clone();
                f.apply(&mut out);
                if f.payload_type.is_some() {
                    prop_assert!(!rtcp && rtp::parse_rtp(&data).is_some());
                    prop_assert_eq!(out[1] & 0x80, data[1] & 0x80);
                    prop_assert_eq!(&out[2..], &data[2..]);
                    prop_assert_eq!(&out[..1], &data[..1]);
                } else {
                    prop_assert_eq!(&out, &data);
                }
            }
            while s.poll_event().is_some() {}
            match cmd % 16 {
                0 => s.set_forwarding(now, cmd & 16 != 0),
                1 => s.set_remote(leg, Some(src)),
                2 => s.set_remote(leg, None),
                3 => { let _ = s.handle_timeout(now); }
                4 => s.start_recording(leg),
                5 => { let _ = s.stop_recording(leg); }
                6 => s.clear_audio(leg),
                7 => s.set_payload_translation(leg, PayloadTranslation::from_pairs(&[(cmd & 0x7f, cmd.wrapping_mul(7)), (0, 8), (101, 96)])),
                _ => {}
            }
            let st = s.stats(leg);
            prop_assert!(st.rtp_packets_in + st.rtcp_packets_in <= st.packets_in);
        }
    }
}

proptest! {
    #[test]
    fn recorder_and_dtmf_never_panic(
        packets in proptest::collection::vec((any::<u8>(), any::<u16>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)), 1..80),
    ) {
        let mut r = media_relay::Recorder::new(media_relay::PayloadMap::default());
        let mut d = media_relay::DtmfDetector::new(media_relay::PayloadMap::default());
        let mut out = Vec::new();
        for (pt, seq, ts, payload) in packets {
            // Mostly PT 0 / 101 so that the interesting paths run.
            let pt = match pt % 4 { 0 => 0, 1 => 101, 2 => 8, _ => pt & 0x7f };
            let mut p = vec![0x80, pt];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 1]);
            p.extend_from_slice(&payload);
            let before = out.len();
            let n = r.handle_rtp(&p, &mut out);
            prop_assert_eq!(out.len() - before, n);
            prop_assert!(n <= payload.len() + media_relay::recorder::MAX_GAP_SAMPLES as usize);
            d.handle_rtp(&p);
            while let Some(digit) = d.poll_digit() {
                prop_assert!("0123456789*#ABCD".contains(digit.digit));
            }
            out.clear();
        }
    }
}
