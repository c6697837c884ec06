#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use super::*;
use proptest::prelude::*;

fn sdp_text(addr: &str, port: u16, proto: &str, fmts: &str, extra: &str) -> String {
    let ip = if addr.contains(':') { "IP6" } else { "IP4" };
    let mut s = format!("v=0\r\no=- 1 1 IN {ip} {addr}\r\ns=-\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm=audio {port} {proto} {fmts}\r\n");
    s.push_str(&extra.replace('\n', "\r\n"));
    s
}

fn sdp(addr: &str, port: u16) -> SessionDescription {
    sdp_with(addr, port, "0 8 101", "a=rtpmap:101 telephone-event/8000\n")
}

fn sdp_with(addr: &str, port: u16, fmts: &str, extra: &str) -> SessionDescription {
    parse(&sdp_text(addr, port, "RTP/AVP", fmts, extra))
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

fn net(s: &str) -> IpNet {
    let (a, p) = s.split_once('/').unwrap();
    IpNet::new(a.parse().unwrap(), p.parse().unwrap()).unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// alice (192.0.2.10:4000) and bob (198.51.100.20:5000), both answered and heard from
/// where their SDP says: a call that goes direct.
fn call() -> ([LegPolicy; 2], [LegFacts; 2], CallFacts) {
    let leg = |addr: &str, port: u16| LegFacts {
        answered: true,
        signalling_nat: None,
        sdp: Some(sdp(addr, port)),
        rtp_source: Some(SocketAddr::new(ip(addr), port)),
        heard: true,
    };
    ([LegPolicy::new("alice"), LegPolicy::new("bob")], [leg("192.0.2.10", 4000), leg("198.51.100.20", 5000)], CallFacts::default())
}

fn relayed(p: &[LegPolicy; 2], l: &[LegFacts; 2], c: &CallFacts) -> Blocker {
    match decide(p, l, c) {
        Decision::Relayed(b) => b,
        d => panic!("expected relayed, got {d:?}"),
    }
}

fn words(p: &[LegPolicy; 2], l: &[LegFacts; 2], c: &CallFacts) -> String {
    decide(p, l, c).to_string()
}

const VIA_NAT: NatEvidence = NatEvidence::Via {
    sent_by: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5)), 5060),
    source: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)), 40000),
};

#[test]
fn plain_call_goes_direct() {
    let (p, l, c) = call();
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    assert_eq!(decide(&p, &l, &c).to_string(), "direct");
    assert!(decide(&p, &l, &c).is_direct());
    assert_eq!(decide(&p, &l, &c).blocker(), None);
    // yes, outgoing and nonat (without evidence) all allow it.
    for (a, b) in
        [(DirectMode::Outgoing, DirectMode::Yes), (DirectMode::NoNat, DirectMode::NoNat), (DirectMode::Outgoing, DirectMode::NoNat)]
    {
        let mut p = p.clone();
        p[0].mode = a;
        p[1].mode = b;
        assert_eq!(decide(&p, &l, &c), Decision::Direct, "{a:?} {b:?}");
    }
}

// ---- rule 1 ----

#[test]
fn rule1_direct_media_no_either_side() {
    let (mut p, l, c) = call();
    p[1].mode = DirectMode::No;
    assert_eq!(relayed(&p, &l, &c), Blocker::DirectMediaNo { name: "bob".into() });
    assert_eq!(words(&p, &l, &c), "relayed: bob has direct_media = no");
    p[0].mode = DirectMode::No;
    assert_eq!(words(&p, &l, &c), "relayed: alice has direct_media = no");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "direct_media_no");
}

// ---- rule 2 ----

#[test]
fn rule2_nonat_with_signalling_evidence() {
    let (mut p, mut l, c) = call();
    l[1].signalling_nat = Some(VIA_NAT);
    // Evidence blocks only nonat endpoints.
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    p[1].mode = DirectMode::NoNat;
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::NoNatBehindNat { name: "bob".into(), evidence: NatProof::Signalling(VIA_NAT) });
    assert_eq!(b.to_string(), "relayed: bob is nonat and behind NAT (Via says 10.0.0.5:5060, packets come from 203.0.113.7:40000)");
    assert_eq!(b.metric_label(), "nat");
    l[1].signalling_nat = Some(NatEvidence::Configured);
    assert_eq!(words(&p, &l, &c), "relayed: bob is nonat and behind NAT (configured nat = yes)");
}

#[test]
fn rule2_nonat_with_media_evidence() {
    let (mut p, mut l, c) = call();
    // bob's SDP says 10.0.0.5, the relay hears him from 203.0.113.7.
    l[1].sdp = Some(sdp("10.0.0.5", 5000));
    l[1].rtp_source = Some(sa("203.0.113.7:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct, "bob is yes: media evidence does not block");
    p[1].mode = DirectMode::NoNat;
    let b = relayed(&p, &l, &c);
    assert_eq!(
        b,
        Blocker::NoNatBehindNat {
            name: "bob".into(),
            evidence: NatProof::Media { rtp_from: sa("203.0.113.7:5000"), sdp_says: sa("10.0.0.5:5000") }
        }
    );
    assert_eq!(b.to_string(), "relayed: bob is nonat and behind NAT (RTP from 203.0.113.7, SDP says 10.0.0.5)");
    // Same address, other port: port translation, with ports in the words.
    l[1].sdp = Some(sdp("203.0.113.7", 5000));
    l[1].rtp_source = Some(sa("203.0.113.7:61000"));
    assert_eq!(words(&p, &l, &c), "relayed: bob is nonat and behind NAT (RTP from 203.0.113.7:61000, SDP says 203.0.113.7:5000)");
    // The same address seen through a dual-stack socket is no evidence.
    l[1].rtp_source = Some(sa("[::ffff:203.0.113.7]:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // Not heard yet: no media evidence.
    l[1].rtp_source = None;
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

#[test]
fn rule2_signalling_evidence_is_reported_before_media_and_alice_before_bob() {
    let (mut p, mut l, c) = call();
    p = [LegPolicy { mode: DirectMode::NoNat, ..p[0].clone() }, LegPolicy { mode: DirectMode::NoNat, ..p[1].clone() }];
    l[0].rtp_source = Some(sa("192.0.2.99:4000"));
    l[0].signalling_nat = Some(NatEvidence::Configured);
    l[1].signalling_nat = Some(VIA_NAT);
    assert_eq!(words(&p, &l, &c), "relayed: alice is nonat and behind NAT (configured nat = yes)");
    l[0].signalling_nat = None;
    assert_eq!(words(&p, &l, &c), "relayed: alice is nonat and behind NAT (RTP from 192.0.2.99, SDP says 192.0.2.10)");
}

#[test]
fn rule2_hold_address_gives_no_media_evidence() {
    let (mut p, mut l, c) = call();
    p[1].mode = DirectMode::NoNat;
    l[1].sdp = Some(sdp("0.0.0.0", 5000));
    l[1].rtp_source = Some(sa("198.51.100.20:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

// ---- rule 3 ----

#[test]
fn rule3_deny_checked_both_ways() {
    let (mut p, mut l, c) = call();
    l[0].sdp = Some(sdp("10.1.2.3", 4000));
    l[0].rtp_source = Some(sa("10.1.2.3:4000"));
    // bob's deny list applies to alice's address.
    p[1].deny = vec![net("10.0.0.0/8")];
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::Denied { by: "bob".into(), other_address: ip("10.1.2.3"), rule: ListRule::Deny(net("10.0.0.0/8")) });
    assert_eq!(b.to_string(), "relayed: bob's direct_media_deny refuses 10.1.2.3");
    assert_eq!(b.metric_label(), "denied");
    // alice's own deny list does not apply to alice's address.
    p[1].deny.clear();
    p[0].deny = vec![net("10.0.0.0/8")];
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // ... but to bob's.
    p[0].deny = vec![net("198.51.100.0/24")];
    assert_eq!(words(&p, &l, &c), "relayed: alice's direct_media_deny refuses 198.51.100.20");
}

#[test]
fn rule3_permit_checked_both_ways_deny_first_empty_permits_all() {
    let (mut p, l, c) = call();
    p[0].permit = vec![net("203.0.113.0/24")];
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::Denied { by: "alice".into(), other_address: ip("198.51.100.20"), rule: ListRule::NotPermitted });
    assert_eq!(b.to_string(), "relayed: alice's direct_media_permit does not include 198.51.100.20");
    p[0].permit.push(net("198.51.100.0/24"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // Deny first: a permitted address that is also denied is refused.
    p[0].deny = vec![net("198.51.100.20/32")];
    assert!(matches!(relayed(&p, &l, &c), Blocker::Denied { rule: ListRule::Deny(_), .. }));
    p[0].deny.clear();
    // bob's permit list is checked against alice's address.
    p[1].permit = vec![net("192.0.2.0/25")];
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    p[1].permit = vec![net("192.0.2.128/25")];
    assert_eq!(words(&p, &l, &c), "relayed: bob's direct_media_permit does not include 192.0.2.10");
}

#[test]
fn rule3_ipv6_lists() {
    let (mut p, mut l, c) = call();
    l[0].sdp = Some(sdp("2001:db8:1::10", 4000));
    l[1].sdp = Some(sdp("2001:db8:2::20", 5000));
    l[0].rtp_source = Some(sa("[2001:db8:1::10]:4000"));
    l[1].rtp_source = Some(sa("[2001:db8:2::20]:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    p[0].deny = vec![net("2001:db8:2::/48")];
    assert_eq!(words(&p, &l, &c), "relayed: alice's direct_media_deny refuses 2001:db8:2::20");
    p[0].deny = vec![net("10.0.0.0/8")]; // an IPv4 entry never matches IPv6
    p[0].permit = vec![net("2001:db8::/32")];
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    p[1].permit = vec![net("0.0.0.0/0")]; // all of IPv4 is not IPv6
    assert_eq!(words(&p, &l, &c), "relayed: bob's direct_media_permit does not include 2001:db8:1::10");
}

#[test]
fn ip_net_contains() {
    assert_eq!(net("10.1.2.3/8").network(), ip("10.0.0.0"));
    assert_eq!(net("2001:db8::1/32").network(), ip("2001:db8::"));
    assert_eq!(net("192.0.2.7/32").network(), ip("192.0.2.7"));
    assert_eq!(net("203.0.113.9/0").network(), ip("0.0.0.0"));
    let n = net("10.0.0.0/8");
    assert!(n.contains(ip("10.255.0.1")));
    assert!(!n.contains(ip("11.0.0.1")));
    assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped is IPv4");
    assert!(!n.contains(ip("::a01:203")), "IPv4-compatible IPv6 is IPv6");
    assert!(net("0.0.0.0/0").contains(ip("203.0.113.7")));
    assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
    assert!(net("::/0").contains(ip("2001:db8::1")));
    assert!(net("192.0.2.7/32").contains(ip("192.0.2.7")));
    assert!(!net("192.0.2.7/32").contains(ip("192.0.2.8")));
    assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
    assert!(net("10.1.2.3/8").contains(ip("10.9.9.9")), "host bits ignored");
    assert_eq!(IpNet::new(ip("10.0.0.0"), 33), None);
    assert_eq!(IpNet::new(ip("::"), 129), None);
    assert!(IpNet::new(ip("::"), 128).is_some());
    assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
    assert_eq!(IpNet::new(ip("::ffff:10.0.0.0"), 8).unwrap().to_string(), "10.0.0.0/8");
}

// ---- rule 4 ----

#[test]
fn rule4_no_common_codec() {
    let (p, mut l, c) = call();
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "18 101", "a=rtpmap:101 telephone-event/8000\n"));
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::NoCommonCodec);
    assert_eq!(b.to_string(), "relayed: no common codec");
    assert_eq!(b.metric_label(), "codec");
    // telephone-event and CN alone are not a common codec.
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "0 13 101", "a=rtpmap:101 telephone-event/8000\n"));
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "18 13 101", "a=rtpmap:101 telephone-event/8000\n"));
    assert_eq!(relayed(&p, &l, &c), Blocker::NoCommonCodec);
    // Names compare case-insensitively.
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "96", "a=rtpmap:96 opus/48000/2\n"));
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "96", "a=rtpmap:96 OPUS/48000/2\n"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

#[test]
fn rule4_payload_types_must_match_phone_to_phone() {
    let (p, mut l, c) = call();
    // The same codec under other numbers: common, but only the relay could translate.
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "96", "a=rtpmap:96 opus/48000/2\n"));
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "111", "a=rtpmap:111 OPUS/48000/2\n"));
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::PayloadTypes { codec: "opus".into(), a: ("alice".into(), 96), b: ("bob".into(), 111) });
    assert_eq!(b.to_string(), "relayed: payload types differ (opus is 96 for alice, 111 for bob)");
    assert_eq!(b.metric_label(), "payload_type");
    // One common voice codec with the same number is enough (the move offers only it).
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "96 0", "a=rtpmap:96 opus/48000/2\n"));
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "111 0", "a=rtpmap:111 opus/48000/2\n"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // telephone-event must match whenever both have it: DTMF would be lost.
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "0 101", "a=rtpmap:101 telephone-event/8000\n"));
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "0 96", "a=rtpmap:96 telephone-event/8000\n"));
    let b = relayed(&p, &l, &c);
    assert_eq!(b.to_string(), "relayed: payload types differ (telephone-event is 101 for alice, 96 for bob)");
    // Only one side with telephone-event: nothing to mismatch.
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "0", ""));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

#[test]
fn common_codecs_by_name_and_rate() {
    let a = sdp_with("192.0.2.10", 4000, "9 0 8 96 13 101", "a=rtpmap:96 L16/16000\na=rtpmap:101 telephone-event/8000\n");
    let b = sdp_with(
        "198.51.100.20",
        5000,
        "8 97 0 98 13 101",
        "a=rtpmap:97 L16/8000\na=rtpmap:98 pcmu/8000\na=rtpmap:101 telephone-event/8000\n",
    );
    assert_eq!(common_codecs(&a, &b), ["PCMU", "PCMA"], "a's order, each name once, L16 rates differ, no CN or events");
    assert_eq!(common_codecs(&b, &a), ["PCMA", "PCMU"]);
    let no_audio = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n");
    assert!(common_codecs(&a, &no_audio).is_empty());
}

#[test]
fn rule4_ptime_differs_absent_is_20() {
    let (p, mut l, c) = call();
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "0", "a=ptime:20\n"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct, "absent ptime is 20 ms");
    l[1].sdp = Some(sdp_with("198.51.100.20", 5000, "0", "a=ptime:30\n"));
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::PtimeMismatch { a: ("alice".into(), 20), b: ("bob".into(), 30) });
    assert_eq!(b.to_string(), "relayed: ptime differs (alice 20 ms, bob 30 ms)");
    assert_eq!(b.metric_label(), "ptime");
    l[0].sdp = Some(sdp_with("192.0.2.10", 4000, "0", "a=ptime:30.0\n"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct, "30.0 is 30");
}

// ---- rule 5 ----

#[test]
fn rule5_features() {
    let (mut p, l, mut c) = call();
    c.recording = true;
    assert_eq!(words(&p, &l, &c), "relayed: recording");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "recording");
    c.recording = false;

    c.dtmf_feature_armed = true;
    assert_eq!(relayed(&p, &l, &c), Blocker::DtmfFeature { name: "alice".into() });
    assert_eq!(words(&p, &l, &c), "relayed: a DTMF feature is armed and alice sends DTMF in RTP");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "dtmf");
    p[0].dtmf_rtp = false; // alice uses SIP INFO
    assert_eq!(words(&p, &l, &c), "relayed: a DTMF feature is armed and bob sends DTMF in RTP");
    p[1].dtmf_rtp = false; // both SIP INFO: the feature hears DTMF in signalling
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    c.dtmf_feature_armed = false;

    c.hold_music = true;
    assert_eq!(words(&p, &l, &c), "relayed: hold music");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "hold_music");
    c.hold_music = false;
    c.announcement = true;
    assert_eq!(words(&p, &l, &c), "relayed: announcement");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "announcement");
    c.announcement = false;
    c.transfer = true;
    assert_eq!(words(&p, &l, &c), "relayed: transfer in progress");
    assert_eq!(relayed(&p, &l, &c).metric_label(), "transfer");
}

#[test]
fn rule5_order_recording_dtmf_hold_music() {
    let (p, l, _) = call();
    let c = CallFacts {
        recording: true,
        dtmf_feature_armed: true,
        hold_music: true,
        announcement: true,
        transfer: true,
        ..CallFacts::default()
    };
    assert_eq!(relayed(&p, &l, &c), Blocker::Recording);
    let c = CallFacts { recording: false, ..c };
    assert!(matches!(relayed(&p, &l, &c), Blocker::DtmfFeature { .. }));
    let c = CallFacts { dtmf_feature_armed: false, ..c };
    assert_eq!(relayed(&p, &l, &c), Blocker::HoldMusic);
    let c = CallFacts { hold_music: false, ..c };
    assert_eq!(relayed(&p, &l, &c), Blocker::Announcement);
}

// ---- rule 6 ----

#[test]
fn rule6_srtp() {
    let (p, mut l, c) = call();
    for (proto, extra) in [
        ("RTP/SAVP", ""),
        ("RTP/SAVPF", ""),
        ("RTP/AVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n"),
        ("UDP/TLS/RTP/SAVPF", "a=fingerprint:sha-256 AB:CD\n"),
        ("RTP/AVP", "a=fingerprint:sha-256 AB:CD\n"),
    ] {
        l[1].sdp = Some(parse(&sdp_text("198.51.100.20", 5000, proto, "0", extra)));
        let b = relayed(&p, &l, &c);
        assert_eq!(b, Blocker::Srtp { name: "bob".into() }, "{proto} {extra}");
        assert_eq!(b.to_string(), "relayed: bob uses SRTP");
        assert_eq!(b.metric_label(), "srtp");
    }
}

#[test]
fn rule6_t38_and_srtp_first() {
    let (p, mut l, c) = call();
    let fax =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nm=image 4002 udptl t38\r\n";
    l[0].sdp = Some(parse(fax));
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::T38OrImage { name: "alice".into() });
    assert_eq!(b.to_string(), "relayed: alice has T.38/image media");
    assert_eq!(b.metric_label(), "t38");
    // SRTP on bob is reported before T.38 on alice.
    l[1].sdp = Some(parse(&sdp_text("198.51.100.20", 5000, "RTP/SAVP", "0", "")));
    assert_eq!(relayed(&p, &l, &c), Blocker::Srtp { name: "bob".into() });
    // A fax-only leg (audio rejected): T.38 is what it says, not "no audio".
    let fax_only =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=image 4002 udptl t38\r\n";
    l[0].sdp = Some(parse(fax_only));
    l[1].sdp = Some(sdp("198.51.100.20", 5000));
    assert_eq!(relayed(&p, &l, &c), Blocker::T38OrImage { name: "alice".into() });
}

// ---- rule 7 ----

#[test]
fn rule7_parties_then_answered() {
    let (p, mut l, mut c) = call();
    c.parties = 3;
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::Parties { count: 3 });
    assert_eq!(b.to_string(), "relayed: 3 parties");
    assert_eq!(b.metric_label(), "parties");
    l[1].answered = false;
    assert_eq!(relayed(&p, &l, &c), Blocker::Parties { count: 3 }, "parties first");
    c.parties = 2;
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::NotAnswered { name: "bob".into() });
    assert_eq!(b.to_string(), "relayed: bob has not answered");
    assert_eq!(b.metric_label(), "unanswered");
    l[0].answered = false;
    assert_eq!(words(&p, &l, &c), "relayed: alice has not answered");
    // Not answered yet, no SDP yet: "not answered", not "no audio".
    l[0].sdp = None;
    assert_eq!(words(&p, &l, &c), "relayed: alice has not answered");
}

// ---- rule 8 ----

#[test]
fn rule8_address_families_differ() {
    let (p, mut l, c) = call();
    l[1].sdp = Some(sdp("2001:db8::20", 5000));
    l[1].rtp_source = Some(sa("[2001:db8::20]:5000"));
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::AddressFamily { ipv4: "alice".into(), ipv6: "bob".into() });
    assert_eq!(b.to_string(), "relayed: address families differ (alice is IPv4, bob is IPv6)");
    assert_eq!(b.metric_label(), "address_family");
    // An IPv4-mapped address written as IPv6 is IPv4.
    l[1].sdp = Some(sdp("::ffff:198.51.100.20", 5000));
    l[1].rtp_source = Some(sa("198.51.100.20:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // A hold address says nothing about the family.
    l[0].sdp = Some(sdp("0.0.0.0", 4000));
    l[1].sdp = Some(sdp("2001:db8::20", 5000));
    l[1].rtp_source = Some(sa("[2001:db8::20]:5000"));
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

#[test]
fn no_audio_address() {
    let (p, mut l, c) = call();
    l[1].sdp = None;
    let b = relayed(&p, &l, &c);
    assert_eq!(b, Blocker::NoAudio { name: "bob".into() });
    assert_eq!(b.to_string(), "relayed: no audio address from bob");
    assert_eq!(b.metric_label(), "no_audio");
    let host = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 phone.example\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    l[1].sdp = Some(parse(host));
    assert_eq!(relayed(&p, &l, &c), Blocker::NoAudio { name: "bob".into() });
}

// ---- rule 9 ----

#[test]
fn rule9_verify_media_waits_then_times_out_at_2s() {
    let (p, mut l, mut c) = call();
    l[1].heard = false;
    l[1].rtp_source = None;
    for ms in [0, 500, 1999] {
        c.since_answer = Duration::from_millis(ms);
        let d = decide(&p, &l, &c);
        assert_eq!(d, Decision::Wait(Blocker::VerifyMedia { waiting_for: vec!["bob".into()] }), "{ms} ms");
        assert_eq!(d.to_string(), "waiting: have not heard RTP from bob yet");
        assert_eq!(d.blocker().unwrap().metric_label(), "verify_media");
        assert_eq!(c.verify_media_remaining(), Some(Duration::from_millis(2000 - ms)));
    }
    l[0].heard = false;
    assert_eq!(words(&p, &l, &c), "waiting: have not heard RTP from alice and bob yet");
    // At 2 s the decision is taken without the missing RTP.
    c.since_answer = Duration::from_secs(2);
    assert_eq!(c.verify_media_remaining(), None);
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    c.since_answer = Duration::from_secs(3600);
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
    // Off: no wait at all.
    c.since_answer = Duration::ZERO;
    c.verify_media = false;
    assert_eq!(c.verify_media_remaining(), None);
    assert_eq!(decide(&p, &l, &c), Decision::Direct);
}

#[test]
fn rule9_heard_rtp_brings_media_evidence_for_nonat() {
    let (mut p, mut l, mut c) = call();
    p[1].mode = DirectMode::NoNat;
    l[1].sdp = Some(sdp("10.0.0.5", 5000));
    l[1].heard = false;
    l[1].rtp_source = None;
    c.since_answer = Duration::from_millis(300);
    assert!(matches!(decide(&p, &l, &c), Decision::Wait(_)), "no evidence yet: wait");
    l[1].heard = true;
    l[1].rtp_source = Some(sa("203.0.113.7:5000"));
    assert_eq!(words(&p, &l, &c), "relayed: bob is nonat and behind NAT (RTP from 203.0.113.7, SDP says 10.0.0.5)");
}

#[test]
fn rule9_other_blockers_win_over_waiting() {
    let (p, mut l, mut c) = call();
    l[1].heard = false;
    c.recording = true;
    assert_eq!(relayed(&p, &l, &c), Blocker::Recording);
}

// ---- order ----

#[test]
fn blockers_come_in_the_spec_order() {
    // Everything wrong at once; remove the blockers one at a time, in order.
    let (mut p, mut l, mut c) = call();
    p[0].mode = DirectMode::No;
    p[1].mode = DirectMode::NoNat;
    l[1].signalling_nat = Some(VIA_NAT);
    p[0].deny = vec![net("0.0.0.0/0"), net("::/0")];
    l[0].sdp = Some(parse(&sdp_text("192.0.2.10", 4000, "RTP/SAVP", "0", "a=ptime:30\n")));
    l[1].sdp = Some(parse(&sdp_text("2001:db8::20", 5000, "RTP/AVP", "18", "")));
    l[1].rtp_source = Some(sa("[2001:db8::20]:5000"));
    c.recording = true;
    c.dtmf_feature_armed = true;
    c.hold_music = true;
    c.parties = 3;
    l[1].answered = false;
    l[0].heard = false;
    c.since_answer = Duration::from_millis(10);

    let mut seen = Vec::new();
    let mut step = |p: &[LegPolicy; 2], l: &[LegFacts; 2], c: &CallFacts| {
        let d = decide(p, l, c);
        seen.push(d.blocker().map_or("direct", Blocker::metric_label));
    };
    step(&p, &l, &c);
    p[0].mode = DirectMode::Yes;
    step(&p, &l, &c);
    l[1].signalling_nat = None;
    step(&p, &l, &c);
    p[0].deny.clear();
    step(&p, &l, &c);
    l[1].sdp = Some(parse(&sdp_text("2001:db8::20", 5000, "RTP/AVP", "0", "")));
    step(&p, &l, &c);
    l[1].sdp = Some(parse(&sdp_text("2001:db8::20", 5000, "RTP/AVP", "0", "a=ptime:30\n")));
    step(&p, &l, &c);
    c.recording = false;
    step(&p, &l, &c);
    c.dtmf_feature_armed = false;
    step(&p, &l, &c);
    c.hold_music = false;
    step(&p, &l, &c);
    l[0].sdp = Some(parse(&sdp_text("192.0.2.10", 4000, "RTP/AVP", "0", "a=ptime:30\n")));
    step(&p, &l, &c);
    c.parties = 2;
    step(&p, &l, &c);
    l[1].answered = true;
    step(&p, &l, &c);
    l[1].sdp = Some(parse(&sdp_text("198.51.100.20", 5000, "RTP/AVP", "0", "a=ptime:30\n")));
    l[1].rtp_source = Some(sa("198.51.100.20:5000"));
    step(&p, &l, &c);
    l[0].heard = true;
    step(&p, &l, &c);
    assert_eq!(
        seen,
        [
            "direct_media_no",
            "nat",
            "denied",
            "codec",
            "ptime",
            "recording",
            "dtmf",
            "hold_music",
            "srtp",
            "parties",
            "unanswered",
            "address_family",
            "verify_media",
            "direct"
        ]
    );
}

#[test]
fn metric_labels_are_listed_once() {
    let mut labels = Blocker::METRIC_LABELS.to_vec();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), Blocker::METRIC_LABELS.len());
}

#[test]
fn reason_is_the_words_without_prefix() {
    let b = Blocker::NotAnswered { name: "bob".into() };
    assert_eq!(b.reason(), "bob has not answered");
    assert_eq!(b.prefix(), "relayed");
    let w = Blocker::VerifyMedia { waiting_for: vec!["alice".into()] };
    assert_eq!(w.reason(), "have not heard RTP from alice yet");
    assert_eq!(w.prefix(), "waiting");
    assert_eq!(Decision::Relayed(b.clone()).to_string(), b.to_string());
}

// ---- never panics ----

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        Just(ip("0.0.0.0")),
        Just(ip("::ffff:10.0.0.1")),
        Just(ip("10.0.0.1")),
    ]
}

fn arb_sdp() -> impl Strategy<Value = Option<SessionDescription>> {
    let proto = prop::sample::select(vec!["RTP/AVP", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF", "udptl", "RTP/AVPF"]);
    let media = prop::sample::select(vec!["audio", "image", "video", "AUDIO"]);
    let fmts = prop::sample::select(vec!["0", "8 101", "18", "96", "t38", "0 13", "96 97", ""]);
    let extra = prop::sample::select(vec![
        "",
        "a=ptime:30\n",
        "a=ptime:x\n",
        "a=ptime:4294967296\n",
        "a=rtpmap:96 opus/48000/2\n",
        "a=rtpmap:96 L16/8000\na=rtpmap:97 L16/16000\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\n",
        "a=fingerprint:sha-256 AB\n",
        "a=rtpmap:101 telephone-event/8000\n",
    ]);
    let text = (arb_ip(), any::<u16>(), media, proto, fmts, extra).prop_map(|(addr, port, media, proto, fmts, extra)| {
        let ip = if addr.is_ipv4() { "IP4" } else { "IP6" };
        format!(
            "v=0\r\no=- 1 1 IN {ip} {addr}\r\ns=-\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm={media} {port} {proto} {fmts}\r\n{}",
            extra.replace('\n', "\r\n")
        )
    });
    prop_oneof![
        Just(None),
        text.prop_map(|t| SessionDescription::parse(t.as_bytes()).ok()),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| SessionDescription::parse(&b).ok()),
    ]
}

fn arb_sock() -> impl Strategy<Value = SocketAddr> {
    (arb_ip(), any::<u16>()).prop_map(|(i, p)| SocketAddr::new(i, p))
}

fn arb_evidence() -> impl Strategy<Value = Option<NatEvidence>> {
    prop_oneof![
        Just(None),
        Just(Some(NatEvidence::Configured)),
        (arb_sock(), arb_sock()).prop_map(|(sent_by, source)| Some(NatEvidence::Via { sent_by, source })),
        (arb_ip(), arb_sock()).prop_map(|(contact, source)| Some(NatEvidence::PrivateContact { contact, source })),
        (arb_ip(), arb_sock()).prop_map(|(sdp, source)| Some(NatEvidence::PrivateSdp { sdp, source })),
    ]
}

fn arb_leg() -> impl Strategy<Value = LegFacts> {
    (any::<bool>(), arb_evidence(), arb_sdp(), prop::option::of(arb_sock()), any::<bool>())
        .prop_map(|(answered, signalling_nat, sdp, rtp_source, heard)| LegFacts { answered, signalling_nat, sdp, rtp_source, heard })
}

fn arb_policy() -> impl Strategy<Value = LegPolicy> {
    let mode = prop::sample::select(vec![DirectMode::Yes, DirectMode::No, DirectMode::NoNat, DirectMode::Outgoing]);
    let nets = || prop::collection::vec((arb_ip(), 0u8..=128).prop_filter_map("prefix", |(a, p)| IpNet::new(a, p)), 0..3);
    ("[a-z]{0,6}", mode, nets(), nets(), any::<bool>()).prop_map(|(name, mode, permit, deny, dtmf_rtp)| LegPolicy {
        name,
        mode,
        permit,
        deny,
        dtmf_rtp,
    })
}

fn arb_call() -> impl Strategy<Value = CallFacts> {
    (any::<[bool; 6]>(), any::<u8>(), any::<u64>()).prop_map(|(b, parties, ns)| CallFacts {
        recording: b[0],
        dtmf_feature_armed: b[1],
        hold_music: b[2],
        announcement: b[3],
        transfer: b[4],
        parties,
        verify_media: b[5],
        since_answer: Duration::from_nanos(ns),
    })
}

proptest! {
    #[test]
    fn decide_never_panics(p0 in arb_policy(), p1 in arb_policy(), l0 in arb_leg(), l1 in arb_leg(), c in arb_call()) {
        let (p, l) = ([p0, p1], [l0, l1]);
        let d = decide(&p, &l, &c);
        let words = d.to_string();
        prop_assert!(words == "direct" || words.starts_with("relayed: ") || words.starts_with("waiting: "));
        match &d {
            Decision::Direct => prop_assert!(p.iter().all(|p| p.mode != DirectMode::No) && l.iter().all(|l| l.answered), "direct: {}", words),
            Decision::Relayed(b) => prop_assert!(b.prefix() == "relayed", "relayed: {:?}", b),
            Decision::Wait(b) => {
                prop_assert!(b.prefix() == "waiting", "wait: {:?}", b);
                prop_assert!(c.verify_media && c.since_answer < VERIFY_MEDIA_WINDOW, "wait after the window");
            }
        }
        if let Some(b) = d.blocker() {
            prop_assert!(Blocker::METRIC_LABELS.contains(&b.metric_label()), "label {}", b.metric_label());
        }
        prop_assert_eq!(decide(&p, &l, &c), d, "deterministic");
    }
}

#[test]
fn at_setup_only_what_is_known_before_the_answer() {
    let (mut p, l, c) = call();
    let caller = LegFacts { answered: false, heard: false, rtp_source: None, ..l[0].clone() };
    assert_eq!(decide_at_setup(&p, &caller, None, &c), Decision::Direct, "unanswered, unheard, verify_media on: still direct");
    // The callee's signalling evidence blocks a nonat callee.
    p[1].mode = DirectMode::NoNat;
    assert_eq!(decide_at_setup(&p, &caller, Some(VIA_NAT), &c).blocker().map(Blocker::metric_label), Some("nat"));
    assert_eq!(decide_at_setup(&p, &caller, None, &c), Decision::Direct, "no evidence yet: allowed");
    // The callee's deny list is checked against the caller's offer.
    p[1].deny = vec![net("192.0.2.0/24")];
    assert_eq!(decide_at_setup(&p, &caller, None, &c).to_string(), "relayed: bob's direct_media_deny refuses 192.0.2.10");
    // The caller's own lists wait for the callee's address (decided after the answer).
    p[1].deny.clear();
    p[0].permit = vec![net("10.0.0.0/8")];
    assert_eq!(decide_at_setup(&p, &caller, None, &c), Decision::Direct);
    // No offer from the caller: nothing to give the callee.
    let offerless = LegFacts { sdp: None, ..caller.clone() };
    assert_eq!(decide_at_setup(&p, &offerless, None, &c).to_string(), "relayed: no audio address from alice");
    // Features and SRTP as for any call.
    let recorded = CallFacts { recording: true, ..c.clone() };
    assert_eq!(decide_at_setup(&p, &caller, None, &recorded).to_string(), "relayed: recording");
    let srtp = LegFacts { sdp: Some(parse(&sdp_text("192.0.2.10", 4000, "RTP/SAVP", "0", ""))), ..caller };
    assert_eq!(decide_at_setup(&p, &srtp, None, &c).to_string(), "relayed: alice uses SRTP");
}
