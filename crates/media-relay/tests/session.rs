//! The relay session at exact virtual times.

use media_relay::{Codec, Forward, Leg, PayloadMap, PayloadTranslation, RelayEvent, Session, SessionConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const A_SDP: &str = "192.0.2.10:4000";
const B_SDP: &str = "198.51.100.20:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A G.711 packet: 12-byte header and 160 bytes of payload (172 bytes).
fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(172, 0xff);
    p
}

/// An empty RTCP receiver report.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn session(nat: [bool; 2]) -> Session {
    let mut s = Session::new(Duration::ZERO, SessionConfig { timeout: Duration::from_secs(60), nat, keepalive: Duration::ZERO });
    s.set_remote(Leg::A, Some(addr(A_SDP)));
    s.set_remote(Leg::B, Some(addr(B_SDP)));
    s
}

fn events(s: &mut Session) -> Vec<RelayEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn forwards_both_ways_rtp_and_rtcp() {
    let mut s = session([false; 2]);
    let a = addr(A_SDP);
    let b = addr(B_SDP);
    assert_eq!(
        s.handle_packet(ms(0), Leg::A, false, a, &rtp(1, 10)),
        Some(Forward { leg: Leg::B, rtcp: false, to: b, payload_type: None })
    );
    assert_eq!(
        s.handle_packet(ms(5), Leg::B, false, b, &rtp(2, 500)),
        Some(Forward { leg: Leg::A, rtcp: false, to: a, payload_type: None })
    );
    assert_eq!(
        s.handle_packet(ms(6), Leg::A, true, addr("192.0.2.10:4001"), &rtcp(1)),
        Some(Forward { leg: Leg::B, rtcp: true, to: addr("198.51.100.20:5001"), payload_type: None })
    );
    assert_eq!(
        events(&mut s),
        [RelayEvent::Latched { leg: Leg::A, source: a }, RelayEvent::HeardBoth, RelayEvent::Latched { leg: Leg::B, source: b }]
    );
    assert!(s.heard_both());
    let sa = s.stats(Leg::A);
    assert_eq!((sa.packets_in, sa.bytes_in, sa.rtp_packets_in, sa.rtcp_packets_in), (2, 172 + 8, 1, 1));
    assert_eq!((sa.packets_out, sa.bytes_out), (1, 172));
    assert_eq!(sa.last_packet_at, Some(ms(6)));
    assert_eq!(sa.latched, Some(a));
    assert_eq!(sa.latched_rtcp, Some(addr("192.0.2.10:4001")));
    assert!(!sa.source_differs_from_sdp);
    let sb = s.stats(Leg::B);
    assert_eq!((sb.packets_in, sb.packets_out, sb.bytes_out), (1, 2, 180));
    assert_eq!(sb.ssrc, Some(2));
}

#[test]
fn nothing_goes_to_a_leg_without_an_address_or_on_hold() {
    let mut s = Session::new(Duration::ZERO, SessionConfig::default());
    s.set_remote(Leg::A, Some(addr(A_SDP)));
    let a = addr(A_SDP);
    assert_eq!(s.handle_packet(ms(0), Leg::A, false, a, &rtp(1, 1)), None, "B's address is not known yet");
    assert_eq!(s.stats(Leg::A).packets_in, 1, "accepted and counted, just not sent");
    s.set_remote(Leg::B, Some(addr(B_SDP)));
    assert!(s.handle_packet(ms(20), Leg::A, false, a, &rtp(1, 2)).is_some());
    s.set_remote(Leg::B, Some(addr("0.0.0.0:5000")));
    assert_eq!(s.remote(Leg::B), None, "c=0.0.0.0 is hold");
    assert_eq!(s.handle_packet(ms(40), Leg::A, false, a, &rtp(1, 3)), None);
    // B on old-style hold still sends (music on hold) from its known address: accepted.
    assert!(s.handle_packet(ms(50), Leg::B, false, addr(B_SDP), &rtp(2, 1)).is_some());
    s.set_remote(Leg::B, Some(addr(B_SDP)));
    assert!(s.handle_packet(ms(60), Leg::A, false, a, &rtp(1, 4)).is_some(), "resumed");
    assert_eq!(s.stats(Leg::B).latched, Some(addr(B_SDP)), "hold and resume to the same address keep the latch");
}

#[test]
fn a_non_nat_leg_accepts_only_its_sdp_address() {
    let mut s = session([false; 2]);
    let behind_nat = addr("203.0.113.7:31000");
    for seq in 1..=5 {
        assert_eq!(s.handle_packet(ms(u64::from(seq) * 20), Leg::A, false, behind_nat, &rtp(1, seq)), None);
    }
    let st = s.stats(Leg::A);
    assert_eq!((st.packets_in, st.dropped, st.latched), (0, 5, None));
    assert!(st.heard && st.source_differs_from_sdp, "NAT evidence for DIRECT_MEDIA.md rule 2");
    assert_eq!(events(&mut s), []);
    // RTCP from anywhere but SDP port + 1 is refused too.
    assert_eq!(s.handle_packet(ms(200), Leg::A, true, addr("192.0.2.10:9999"), &rtcp(1)), None);
}

#[test]
fn a_nat_leg_latches_to_the_first_stable_source() {
    let mut s = session([true, false]);
    let public = addr("203.0.113.7:31000");
    let other = addr("203.0.113.8:41000");
    assert_eq!(s.handle_packet(ms(0), Leg::A, false, public, &rtp(1, 100)), None, "one packet is not stable");
    assert_eq!(s.handle_packet(ms(10), Leg::A, false, other, &rtp(9, 7)), None, "another source restarts the count");
    assert_eq!(s.handle_packet(ms(20), Leg::A, false, public, &rtp(1, 101)), None, "…so this is public's first again");
    assert_eq!(s.handle_packet(ms(20), Leg::A, false, public, &rtp(1, 101)), None, "a repeated packet does not count");
    assert_eq!(
        s.handle_packet(ms(40), Leg::A, false, public, &rtp(1, 102)),
        Some(Forward { leg: Leg::B, rtcp: false, to: addr(B_SDP), payload_type: None })
    );
    assert_eq!(events(&mut s), [RelayEvent::Latched { leg: Leg::A, source: public }]);
    // B's media now goes to the latched source, not the (private) SDP address.
    assert_eq!(
        s.handle_packet(ms(50), Leg::B, false, addr(B_SDP), &rtp(2, 1)),
        Some(Forward { leg: Leg::A, rtcp: false, to: public, payload_type: None })
    );
    // RTCP from the latched IP (any port: the NAT picks it) latches RTCP, and B's RTCP goes there.
    let public_rtcp = addr("203.0.113.7:31007");
    assert!(s.handle_packet(ms(60), Leg::A, true, public_rtcp, &rtcp(1)).is_some());
    assert_eq!(
        s.handle_packet(ms(70), Leg::B, true, addr("198.51.100.20:5001"), &rtcp(2)),
        Some(Forward { leg: Leg::A, rtcp: true, to: public_rtcp, payload_type: None })
    );
    let st = s.stats(Leg::A);
    assert_eq!((st.latched, st.latched_rtcp, st.dropped), (Some(public), Some(public_rtcp), 4));
    assert!(st.source_differs_from_sdp);
}

#[test]
fn a_stray_source_never_hijacks_a_latched_leg() {
    let mut s = session([true, true]);
    let public = addr("203.0.113.7:31000");
    let stray = addr("203.0.113.66:6666");
    s.handle_packet(ms(0), Leg::A, false, public, &rtp(1, 1));
    s.handle_packet(ms(20), Leg::A, false, public, &rtp(1, 2));
    assert_eq!(s.stats(Leg::A).latched, Some(public));
    for seq in 0..50 {
        assert_eq!(s.handle_packet(ms(30 + u64::from(seq)), Leg::A, false, stray, &rtp(66, seq)), None);
    }
    assert_eq!(s.handle_packet(ms(100), Leg::A, true, addr("203.0.113.66:6667"), &rtcp(66)), None, "nor its RTCP");
    assert_eq!(s.stats(Leg::A).latched, Some(public));
    assert_eq!(s.handle_packet(ms(200), Leg::B, false, addr(B_SDP), &rtp(2, 1)).map(|f| f.to), Some(public));
    // The SDP address itself is not a stray: the endpoint asked for it.
    assert!(s.handle_packet(ms(220), Leg::A, false, addr(A_SDP), &rtp(1, 3)).is_some());
    assert_eq!(s.stats(Leg::A).latched, Some(addr(A_SDP)));
    assert_eq!(s.handle_packet(ms(240), Leg::A, false, public, &rtp(1, 4)), None, "the old latch is gone");
}

#[test]
fn a_new_sdp_address_forgets_the_latch() {
    let mut s = session([true, false]);
    let public = addr("203.0.113.7:31000");
    s.handle_packet(ms(0), Leg::A, false, public, &rtp(1, 1));
    s.handle_packet(ms(20), Leg::A, false, public, &rtp(1, 2));
    assert_eq!(s.stats(Leg::A).latched, Some(public));
    s.set_remote(Leg::A, Some(addr(A_SDP)));
    assert_eq!(s.stats(Leg::A).latched, Some(public), "the same address again (a refresh) keeps it");
    s.set_remote(Leg::A, Some(addr("192.0.2.10:4100")));
    assert_eq!(s.stats(Leg::A).latched, None);
    assert_eq!(s.handle_packet(ms(40), Leg::B, false, addr(B_SDP), &rtp(2, 1)).map(|f| f.to), Some(addr("192.0.2.10:4100")));
}

#[test]
fn explicit_rtcp_address() {
    let mut s = session([false; 2]);
    s.set_remote_rtcp(Leg::B, Some(addr("198.51.100.20:7777")));
    let f = s.handle_packet(ms(0), Leg::A, true, addr("192.0.2.10:4001"), &rtcp(1));
    assert_eq!(f, Some(Forward { leg: Leg::B, rtcp: true, to: addr("198.51.100.20:7777"), payload_type: None }));
    assert_eq!(s.handle_packet(ms(1), Leg::B, true, addr("198.51.100.20:5001"), &rtcp(2)), None);
    assert!(s.handle_packet(ms(2), Leg::B, true, addr("198.51.100.20:7777"), &rtcp(2)).is_some());
}

#[test]
fn loss_with_reordering_wraparound_and_ssrc_change() {
    let mut s = session([false; 2]);
    let a = addr(A_SDP);
    let mut t = 0;
    let mut send = |s: &mut Session, ssrc: u32, seq: u16| {
        t += 20;
        s.handle_packet(ms(t), Leg::A, false, a, &rtp(ssrc, seq));
    };
    for seq in [65530, 65531, 65533, 65532, 65535, 1, 0, 3] {
        send(&mut s, 1, seq);
    }
    // 65534 and 2 never came; 65532 and 0 came late.
    assert_eq!(s.stats(Leg::A).lost, 2);
    // RFC 3550 A.3: a duplicate counts as received, so it offsets one loss…
    send(&mut s, 1, 3);
    assert_eq!(s.stats(Leg::A).lost, 1);
    // …but the count never goes below zero.
    send(&mut s, 1, 3);
    send(&mut s, 1, 3);
    assert_eq!(s.stats(Leg::A).lost, 0);
    // A new SSRC starts a new count and keeps the old loss.
    for seq in [100, 101, 105] {
        send(&mut s, 2, seq);
    }
    assert_eq!(s.stats(Leg::A).lost, 3);
    assert_eq!(s.stats(Leg::A).ssrc, Some(2));
    assert_eq!(s.stats(Leg::B).lost, 0);
}

#[test]
fn inactivity_timeout_fires_and_is_pushed_back() {
    let mut s = Session::new(ms(1000), SessionConfig { timeout: Duration::from_secs(60), nat: [false; 2], keepalive: Duration::ZERO });
    s.set_remote(Leg::A, Some(addr(A_SDP)));
    s.set_remote(Leg::B, Some(addr(B_SDP)));
    assert_eq!(s.poll_timeout(), Some(ms(61_000)), "counted from creation");
    s.restart_timeout(ms(5000)); // answered
    assert_eq!(s.poll_timeout(), Some(ms(65_000)));
    s.handle_packet(ms(10_000), Leg::A, false, addr(A_SDP), &rtp(1, 1));
    assert_eq!(s.poll_timeout(), Some(ms(70_000)), "RTP from one leg is enough");
    // RTCP and refused packets do not count as activity.
    s.handle_packet(ms(20_000), Leg::A, true, addr("192.0.2.10:4001"), &rtcp(1));
    s.handle_packet(ms(20_000), Leg::B, false, addr("203.0.113.1:1"), &rtp(2, 1));
    assert_eq!(s.poll_timeout(), Some(ms(70_000)));
    assert_eq!(s.handle_timeout(ms(69_999)), None);
    assert_eq!(s.handle_timeout(ms(70_000)), Some(RelayEvent::Inactive));
    assert_eq!(s.poll_timeout(), None, "reported once");
    assert_eq!(s.handle_timeout(ms(80_000)), None);
    s.handle_packet(ms(90_000), Leg::B, false, addr(B_SDP), &rtp(2, 2));
    assert_eq!(s.poll_timeout(), Some(ms(150_000)), "RTP again arms it again");
    // Time never goes backwards.
    s.handle_packet(ms(1), Leg::B, false, addr(B_SDP), &rtp(2, 3));
    assert_eq!(s.poll_timeout(), Some(ms(150_000)));
    assert_eq!(s.stats(Leg::B).last_packet_at, Some(ms(90_000)));
}

#[test]
fn zero_timeout_is_none() {
    let mut s = Session::new(Duration::ZERO, SessionConfig { timeout: Duration::ZERO, nat: [false; 2], keepalive: Duration::ZERO });
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(Duration::from_secs(1_000_000)), None);
    s.set_timeout(Duration::from_secs(5));
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(5)));
}

#[test]
fn forwarding_off_counts_but_drops_and_stops_the_timer() {
    let mut s = session([false; 2]);
    let a = addr(A_SDP);
    assert!(s.handle_packet(ms(0), Leg::A, false, a, &rtp(1, 1)).is_some());
    s.set_forwarding(ms(100), false);
    assert!(!s.forwarding());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(Duration::from_secs(3600)), None);
    assert_eq!(s.handle_packet(Duration::from_secs(3600), Leg::A, false, a, &rtp(1, 2)), None);
    assert_eq!(s.handle_packet(Duration::from_secs(3600), Leg::B, false, addr(B_SDP), &rtp(2, 1)), None);
    let (sa, sb) = (s.stats(Leg::A), s.stats(Leg::B));
    assert_eq!((sa.packets_in, sa.packets_out, sb.packets_in, sb.packets_out), (2, 0, 1, 1));
    assert!(s.heard_both());
    s.set_forwarding(Duration::from_secs(4000), true);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(4060)), "re-anchored: counted from now");
    assert!(s.handle_packet(Duration::from_secs(4001), Leg::A, false, a, &rtp(1, 3)).is_some());
}

#[test]
fn heard_both_waits_for_both_legs() {
    let mut s = session([false; 2]);
    s.handle_packet(ms(0), Leg::A, false, addr(A_SDP), &rtp(1, 1));
    s.handle_packet(ms(5), Leg::A, true, addr("198.51.100.20:5001"), &rtcp(1));
    assert!(!s.heard_both(), "RTCP is not RTP, and that was the wrong leg anyway");
    // Garbage from B's address is forwarded (transparent) but is not RTP.
    assert!(s.handle_packet(ms(10), Leg::B, false, addr(B_SDP), b"\x00\x01hello").is_some());
    assert!(!s.heard_both());
    s.handle_packet(ms(20), Leg::B, false, addr(B_SDP), &rtp(2, 1));
    assert!(s.heard_both());
    assert!(events(&mut s).contains(&RelayEvent::HeardBoth));
    s.handle_packet(ms(40), Leg::B, false, addr(B_SDP), &rtp(2, 2));
    assert!(!events(&mut s).contains(&RelayEvent::HeardBoth), "once");
}

/// An RFC 4733 packet on PT 101: event `code`, end bit, duration.
fn dtmf(ssrc: u32, seq: u16, ts: u32, code: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, 101];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[code, if end { 0x8a } else { 0x0a }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

#[test]
fn recording_takes_only_accepted_packets_and_fills_gaps() {
    use media_relay::{Codec, PayloadMap};
    let mut s = session([false; 2]);
    let a = addr(A_SDP);
    // Not recorded before the start.
    s.handle_packet(ms(0), Leg::A, false, a, &rtp(1, 1));
    assert!(s.audio(Leg::A).is_empty());
    assert_eq!(s.recording(Leg::A), None);
    s.set_payload_types(Leg::A, PayloadMap::new(&std::collections::HashMap::from([(0, Codec::Pcmu)])));
    s.start_recording(Leg::A);
    s.handle_packet(ms(20), Leg::A, false, a, &rtp(1, 2));
    assert_eq!(s.audio(Leg::A).len(), 160);
    assert!(s.audio(Leg::A).iter().all(|&x| x == 0), "0xff is µ-law zero");
    s.clear_audio(Leg::A);
    // A stray sender is dropped by latching, so not recorded either.
    assert_eq!(s.handle_packet(ms(30), Leg::A, false, addr("203.0.113.9:7000"), &rtp(9, 3)), None);
    assert!(s.audio(Leg::A).is_empty());
    // 3 and 4 lost.
    s.handle_packet(ms(80), Leg::A, false, a, &rtp(1, 5));
    assert_eq!(s.audio(Leg::A).len(), 3 * 160);
    // B is not recorded.
    s.handle_packet(ms(80), Leg::B, false, addr(B_SDP), &rtp(2, 1));
    assert!(s.audio(Leg::B).is_empty());
    let st = s.stop_recording(Leg::A).expect("was recording");
    assert_eq!((st.packets, st.samples, st.silence), (2, 640, 320));
    assert_eq!(s.stop_recording(Leg::A), None);
    assert_eq!(s.audio(Leg::A).len(), 480, "not taken yet: kept");
}

#[test]
fn dtmf_events_come_out_once_per_key_press() {
    let mut s = session([false; 2]);
    let b = addr(B_SDP);
    s.handle_packet(ms(0), Leg::B, false, b, &rtp(2, 1));
    let _ = events(&mut s);
    for (i, (end, dur)) in [(false, 160), (false, 320), (true, 640), (true, 640), (true, 640)].into_iter().enumerate() {
        let out = s.handle_packet(ms(20 + 20 * i as u64), Leg::B, false, b, &dtmf(2, 2 + i as u16, 160, 0x0b, end, dur));
        assert!(out.is_some(), "events are forwarded like any RTP");
    }
    assert_eq!(events(&mut s), [RelayEvent::Dtmf { leg: Leg::B, digit: '#', duration: ms(80) }]);
}

#[test]
fn resuming_forwarding_starts_latching_over() {
    let mut s = session([true, false]);
    let a_nat = addr("203.0.113.5:30000");
    s.handle_packet(ms(0), Leg::A, false, a_nat, &rtp(1, 1));
    s.handle_packet(ms(20), Leg::A, false, a_nat, &rtp(1, 2));
    assert_eq!(events(&mut s), [RelayEvent::Latched { leg: Leg::A, source: a_nat }]);
    s.set_forwarding(ms(100), false);
    assert_eq!(s.poll_timeout(), None);
    s.set_forwarding(ms(5000), true);
    assert_eq!(s.stats(Leg::A).latched, None, "forgotten on re-anchor");
    assert_eq!(s.poll_timeout(), Some(ms(5000) + Duration::from_secs(60)));
    // The endpoint now sends from another NAT binding: it latches there, anew.
    let a_new = addr("203.0.113.5:30002");
    assert_eq!(s.handle_packet(ms(5020), Leg::A, false, a_new, &rtp(1, 300)), None, "first packet of a candidate");
    assert!(s.handle_packet(ms(5040), Leg::A, false, a_new, &rtp(1, 301)).is_some());
    assert_eq!(events(&mut s), [RelayEvent::Latched { leg: Leg::A, source: a_new }]);
    assert_eq!(
        s.handle_packet(ms(5060), Leg::B, false, addr(B_SDP), &rtp(2, 1)),
        Some(Forward { leg: Leg::A, rtcp: false, to: a_new, payload_type: None })
    );
    // Off then on again without a change is the same: latch again from the SDP address.
    s.set_forwarding(ms(6000), true);
    assert_eq!(s.stats(Leg::A).latched, Some(a_new), "already on: nothing forgotten");
}

/// An RTP packet of payload type `pt` (marker bit set when `marker`).
fn rtp_pt(seq: u16, pt: u8, marker: bool) -> Vec<u8> {
    let mut p = rtp(7, seq);
    p[1] = pt | if marker { 0x80 } else { 0 };
    p
}

/// An RFC 4733 event packet: `event`, end bit, duration.
fn event(seq: u16, pt: u8, digit: u8, end: bool) -> Vec<u8> {
    let mut p = rtp_pt(seq, pt, false);
    p.truncate(12);
    p[4..8].copy_from_slice(&8000u32.to_be_bytes());
    p.extend_from_slice(&[digit, if end { 0x80 } else { 0 } | 10, 0x03, 0x20]);
    p
}

#[test]
fn payload_types_are_translated_per_direction() {
    let (a, b) = (addr(A_SDP), addr(B_SDP));
    let mut s = session([false; 2]);
    // telephone-event is 101 on leg A and 96 on leg B; opus 111 on A and 107 on B.
    s.set_payload_translation(Leg::A, PayloadTranslation::from_pairs(&[(101, 96), (111, 107)]));
    s.set_payload_translation(Leg::B, PayloadTranslation::from_pairs(&[(96, 101), (107, 111)]));
    assert_eq!(s.payload_translation(Leg::A).get(101), 96);

    let mut p = rtp_pt(1, 101, true);
    let f = s.handle_packet(ms(0), Leg::A, false, a, &p).expect("forwarded");
    assert_eq!(f, Forward { leg: Leg::B, rtcp: false, to: b, payload_type: Some(96) });
    f.apply(&mut p);
    assert_eq!(p[1], 0x80 | 96, "marker bit kept");
    assert_eq!(p[2..], rtp_pt(1, 101, true)[2..], "the rest is untouched");

    let f = s.handle_packet(ms(20), Leg::A, false, a, &rtp_pt(2, 0, false)).expect("forwarded");
    assert_eq!(f.payload_type, None, "PCMU is 0 on both legs");
    let f = s.handle_packet(ms(40), Leg::A, false, a, &rtp_pt(3, 96, false)).expect("forwarded");
    assert_eq!(f.payload_type, None, "a number the table does not name passes");
    let mut p = rtp_pt(9, 107, false);
    let f = s.handle_packet(ms(50), Leg::B, false, b, &p).expect("forwarded");
    assert_eq!(f.payload_type, Some(111), "the other direction has its own table");
    f.apply(&mut p);
    assert_eq!(p[1], 111);

    // RTCP, on its own socket or multiplexed on the RTP one (RFC 5761: its second byte
    // would read as marker + PT 73), and anything that is not RTP are never touched.
    s.set_payload_translation(Leg::A, PayloadTranslation::from_pairs(&[(73, 1), (101, 96)]));
    let f = s.handle_packet(ms(60), Leg::A, true, addr("192.0.2.10:4001"), &rtcp(7)).expect("forwarded");
    assert_eq!(f.payload_type, None);
    let f = s.handle_packet(ms(61), Leg::A, false, a, &rtcp(7)).expect("muxed RTCP from the latched source");
    assert_eq!(f.payload_type, None);
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let f = s.handle_packet(ms(62), Leg::A, false, a, &stun).expect("forwarded");
    assert_eq!(f.payload_type, None);
    f.apply(&mut stun);
    assert_eq!(stun[1], 0x01);
    let short = [0x80, 101, 0, 1];
    assert_eq!(s.handle_packet(ms(63), Leg::A, false, a, &short).map(|f| f.payload_type), Some(None), "too short for RTP");

    // Identity again: nothing is rewritten.
    s.set_payload_translation(Leg::A, PayloadTranslation::IDENTITY);
    assert_eq!(s.handle_packet(ms(80), Leg::A, false, a, &rtp_pt(4, 101, false)).map(|f| f.payload_type), Some(None));
}

#[test]
fn dtmf_is_read_with_the_sending_legs_numbers() {
    let (a, b) = (addr(A_SDP), addr(B_SDP));
    let mut s = session([false; 2]);
    s.set_payload_types(Leg::B, PayloadMap::new(&HashMap::from([(96, Codec::TelephoneEvent { clock_rate: 8000 })])));
    s.set_payload_translation(Leg::B, PayloadTranslation::from_pairs(&[(96, 101)]));
    let _ = s.handle_packet(ms(0), Leg::A, false, a, &rtp(1, 1));
    for (i, end) in [false, false, true].into_iter().enumerate() {
        let f = s.handle_packet(ms(20 * i as u64), Leg::B, false, b, &event(i as u16, 96, 5, end)).expect("forwarded");
        assert_eq!(f.payload_type, Some(101));
    }
    let digits: Vec<char> = events(&mut s)
        .into_iter()
        .filter_map(|e| {
            if let RelayEvent::Dtmf { leg, digit, .. } = e {
                assert_eq!(leg, Leg::B);
                Some(digit)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(digits, ['5']);
}

fn keepalives(s: &mut Session, now: Duration) -> Vec<media_relay::Keepalive> {
    let _ = s.handle_timeout(now);
    std::iter::from_fn(|| s.poll_keepalive(now)).collect()
}

#[test]
fn keepalive_fills_silence_and_stops_while_direct() {
    let mut s = session([false; 2]);
    assert_eq!(s.poll_timeout(), Some(ms(60_000)), "off by default: only the inactivity deadline");
    s.set_keepalive(ms(1000), Duration::from_secs(5));
    // b keeps sending to a: a is never owed one; b hears nothing back and is.
    let b = addr(B_SDP);
    for (i, t) in (1000..=6000).step_by(20).enumerate() {
        let seq = u16::try_from(i).unwrap_or(0);
        assert!(s.handle_packet(ms(t), Leg::B, false, b, &rtp(2, seq)).is_some());
        if t < 6000 {
            assert!(keepalives(&mut s, ms(t)).is_empty(), "nothing due at {t} ms");
        }
    }
    assert_eq!(s.poll_timeout(), Some(ms(6000)), "b's keep-alive is due 5 s after the interval was set");
    let k = keepalives(&mut s, ms(6000));
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!((k[0].leg, k[0].to), (Leg::B, b), "to b's SDP address, out of b's socket");
    let p = k[0].packet;
    assert_eq!((p[0], p[1], p[12]), (0x80, 13, 127), "RTP v2, CN (PT 13), noise level 127");
    assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), media_relay::KEEPALIVE_SSRC ^ 1);
    assert_eq!(s.stats(Leg::B).keepalives_sent, 1);
    assert!(keepalives(&mut s, ms(10_999)).is_empty(), "the next one 5 s later");
    let k = keepalives(&mut s, ms(11_000));
    assert_eq!(k.len(), 2, "both legs silent now: {k:?}");
    let b_seq = k.iter().find(|k| k.leg == Leg::B).map(|k| u16::from_be_bytes([k.packet[2], k.packet[3]]));
    assert_eq!(b_seq, Some(1), "b's second keep-alive");
    // Direct: none at all, however long.
    s.set_forwarding(ms(11_000), false);
    assert_eq!(s.poll_timeout(), None, "no deadline while direct");
    assert!(keepalives(&mut s, ms(60_000)).is_empty());
    // Re-anchored: they resume an interval later, not at once; the sequence goes on.
    s.set_forwarding(ms(60_000), true);
    assert!(keepalives(&mut s, ms(64_999)).is_empty());
    let k = keepalives(&mut s, ms(65_000));
    assert_eq!(k.len(), 2);
    let b_seq = k.iter().find(|k| k.leg == Leg::B).map(|k| u16::from_be_bytes([k.packet[2], k.packet[3]]));
    assert_eq!(b_seq, Some(2), "b's third keep-alive");
}

#[test]
fn keepalive_uses_the_legs_comfort_noise_number_and_needs_an_address() {
    let mut s = session([false; 2]);
    let mut cn = HashMap::new();
    cn.insert(0, Codec::Pcmu);
    cn.insert(98, Codec::ComfortNoise);
    cn.insert(13, Codec::Other);
    s.set_payload_types(Leg::A, PayloadMap::new(&cn));
    s.set_remote(Leg::B, None);
    s.set_keepalive(ms(0), ms(100));
    let k = keepalives(&mut s, ms(100));
    assert_eq!(k.len(), 1, "b has no address (hold): nothing to send it");
    assert_eq!((k[0].leg, k[0].packet[1]), (Leg::A, 98), "a's CN is 98");
}
