//! The RTP relay over real loopback sockets: plain UDP sockets on 127.0.0.2 and
//! 127.0.0.3 are the phones, the relay binds on 127.0.0.1 in 31000-31099 (each test its
//! own slice, so they can run in parallel). Every wait is bounded.

use sip_tokio::media_relay::{Leg, PayloadTranslation, SessionConfig};
use sip_tokio::{MediaEvent, MediaHandle, MediaRelay, RelayError, WarmSockets};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// The bound on any wait for something that should happen.
const WAIT: Duration = Duration::from_secs(5);
const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A G.711 packet, 172 bytes.
fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(172, 0xd5);
    p
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

async fn phone(last: u8) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip(last), 0)).await.expect("bind a phone socket on loopback")
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local address")
}

async fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (n, from) = timeout(WAIT, s.recv_from(&mut buf)).await.expect("a packet within the bound").expect("recv");
    buf.truncate(n);
    (buf, from)
}

/// Nothing arrives on `s` for a while (for something that must not come).
async fn silent(s: &UdpSocket, within: Duration) {
    let mut buf = vec![0; 2048];
    if let Ok(r) = timeout(within, s.recv_from(&mut buf)).await {
        panic!("unexpected packet: {r:?}");
    }
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<MediaEvent>) -> MediaEvent {
    timeout(WAIT, events.recv()).await.expect("an event within the bound").expect("relay alive")
}

fn relay(first: u16, last: u16) -> (MediaRelay, mpsc::UnboundedReceiver<MediaEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MediaRelay::new(RELAY_IP, (first, last), tx), rx)
}

fn config(timeout: Duration, nat: [bool; 2]) -> SessionConfig {
    SessionConfig { timeout, nat, keepalive: Duration::ZERO }
}

async fn wait_available(relay: &MediaRelay, want: usize) {
    let until = Instant::now() + WAIT;
    while relay.available() != want {
        assert!(Instant::now() < until, "pool has {} free, want {want}", relay.available());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn forwards_rtp_and_rtcp_both_ways() {
    let (relay, mut events) = relay(31000, 31009);
    let media = relay.open(7, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    assert_eq!(media.local(Leg::A).ip(), RELAY_IP);
    assert_eq!(media.local(Leg::A).port() % 2, 0);
    assert_ne!(media.local(Leg::A), media.local(Leg::B));
    let (a, a_rtcp, b, b_rtcp) = (phone(2).await, phone(2).await, phone(3).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote_rtcp(Leg::A, Some(addr(&a_rtcp)));
    media.set_remote(Leg::B, Some(addr(&b)));
    media.set_remote_rtcp(Leg::B, Some(addr(&b_rtcp)));
    let rtcp_port = |leg| SocketAddr::new(RELAY_IP, media.local(leg).port() + 1);

    for seq in 1..=5 {
        a.send_to(&rtp(0xa, seq), media.local(Leg::A)).await.expect("send");
        let (data, from) = recv(&b).await;
        assert_eq!((data, from), (rtp(0xa, seq), media.local(Leg::B)), "A → B out of B's RTP socket");
        b.send_to(&rtp(0xb, seq), media.local(Leg::B)).await.expect("send");
        let (data, from) = recv(&a).await;
        assert_eq!((data, from), (rtp(0xb, seq), media.local(Leg::A)), "B → A out of A's RTP socket");
    }
    a_rtcp.send_to(&rtcp_rr(0xa), rtcp_port(Leg::A)).await.expect("send");
    assert_eq!(recv(&b_rtcp).await, (rtcp_rr(0xa), rtcp_port(Leg::B)), "RTCP A → B");
    b_rtcp.send_to(&rtcp_rr(0xb), rtcp_port(Leg::B)).await.expect("send");
    assert_eq!(recv(&a_rtcp).await, (rtcp_rr(0xb), rtcp_port(Leg::A)), "RTCP B → A");

    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 7, leg: Leg::A, source: addr(&a) });
    assert_eq!(next_event(&mut events).await, MediaEvent::HeardBoth { key: 7 });
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 7, leg: Leg::B, source: addr(&b) });
    let [sa, sb] = media.fresh_stats().await;
    assert_eq!((sa.rtp_packets_in, sa.rtcp_packets_in, sa.packets_out, sa.lost), (5, 1, 6, 0));
    assert_eq!((sb.rtp_packets_in, sb.bytes_in, sb.packets_out), (5, 5 * 172 + 8, 6));
    assert!(!sa.source_differs_from_sdp && !sb.source_differs_from_sdp);
    media.close_and_wait().await;
}

#[tokio::test]
async fn a_nat_leg_latches_to_its_real_source_and_strays_are_dropped() {
    let (relay, mut events) = relay(31010, 31019);
    let media = relay.open(8, [RELAY_IP; 2], config(Duration::from_secs(60), [true, false])).expect("open");
    // What A's SDP says (a socket that must receive nothing once A has latched) and
    // where A really sends from (its NAT's public side).
    let (sdp, a, b, stray) = (phone(2).await, phone(2).await, phone(3).await, phone(4).await);
    media.set_remote(Leg::A, Some(addr(&sdp)));
    media.set_remote(Leg::B, Some(addr(&b)));

    a.send_to(&rtp(0xa, 1), media.local(Leg::A)).await.expect("send");
    a.send_to(&rtp(0xa, 2), media.local(Leg::A)).await.expect("send");
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 8, leg: Leg::A, source: addr(&a) });
    assert_eq!(recv(&b).await.0, rtp(0xa, 2), "the latching packet is forwarded, the first is not");

    b.send_to(&rtp(0xb, 1), media.local(Leg::B)).await.expect("send");
    assert_eq!(recv(&a).await, (rtp(0xb, 1), media.local(Leg::A)), "B's media goes to A's real source");

    // A stray sender cannot take A over.
    for seq in 1..=5 {
        stray.send_to(&rtp(0x66, seq), media.local(Leg::A)).await.expect("send");
    }
    b.send_to(&rtp(0xb, 2), media.local(Leg::B)).await.expect("send");
    assert_eq!(recv(&a).await.0, rtp(0xb, 2));
    silent(&sdp, Duration::from_millis(100)).await;
    silent(&b, Duration::from_millis(50)).await;
    let [sa, _] = media.fresh_stats().await;
    assert_eq!(sa.latched, Some(addr(&a)));
    assert_eq!(sa.dropped, 1 + 5, "A's first packet and the stray's five");
    assert!(sa.source_differs_from_sdp, "NAT evidence");
    assert_eq!(media.stats()[0].latched, Some(addr(&a)), "the published snapshot too");
}

#[tokio::test]
async fn a_silent_call_reports_inactive() {
    let (relay, mut events) = relay(31020, 31029);
    let media = relay.open(9, [RELAY_IP; 2], config(Duration::from_millis(300), [false; 2])).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    // RTP for about 400 ms, more than the timeout: no Inactive while it flows.
    let start = Instant::now();
    let mut last = start;
    for seq in 0..20 {
        a.send_to(&rtp(0xa, seq), media.local(Leg::A)).await.expect("send");
        recv(&b).await;
        last = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last - start >= Duration::from_millis(300));
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 9, leg: Leg::A, source: addr(&a) });
    assert_eq!(next_event(&mut events).await, MediaEvent::Inactive { key: 9 });
    let after = last.elapsed();
    // 300 ms after the relay read the last packet, which was a little before `last`.
    assert!(after >= Duration::from_millis(250), "fired {after:?} after the last packet, before the timeout");
    // Once, until RTP flows again.
    assert!(timeout(Duration::from_millis(400), events.recv()).await.is_err(), "reported once");
    b.send_to(&rtp(0xb, 1), media.local(Leg::B)).await.expect("send");
    recv(&a).await;
    assert_eq!(next_event(&mut events).await, MediaEvent::HeardBoth { key: 9 });
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 9, leg: Leg::B, source: addr(&b) });
    assert_eq!(next_event(&mut events).await, MediaEvent::Inactive { key: 9 }, "armed again by the new RTP");
}

#[tokio::test]
async fn forwarding_off_drops_and_stops_the_timer() {
    let (relay, mut events) = relay(31030, 31039);
    let media = relay.open(10, [RELAY_IP; 2], config(Duration::from_millis(200), [false; 2])).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    media.set_forwarding(false);
    a.send_to(&rtp(0xa, 1), media.local(Leg::A)).await.expect("send");
    silent(&b, Duration::from_millis(400)).await;
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 10, leg: Leg::A, source: addr(&a) });
    assert!(timeout(Duration::from_millis(100), events.recv()).await.is_err(), "no Inactive while direct");
    let [sa, sb] = media.fresh_stats().await;
    assert_eq!((sa.rtp_packets_in, sb.packets_out), (1, 0), "counted, not sent");
    media.set_forwarding(true);
    a.send_to(&rtp(0xa, 2), media.local(Leg::A)).await.expect("send");
    assert_eq!(recv(&b).await.0, rtp(0xa, 2));
    assert_eq!(next_event(&mut events).await, MediaEvent::Latched { key: 10, leg: Leg::A, source: addr(&a) }, "latched anew");
    assert_eq!(next_event(&mut events).await, MediaEvent::Inactive { key: 10 }, "the timer runs again");
}

#[tokio::test]
async fn ports_go_back_to_the_pool_after_close() {
    // Two pairs: one call takes both.
    let (relay, _events) = relay(31040, 31043);
    assert_eq!(relay.available(), 2);
    let media = relay.open(1, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    assert_eq!((media.local(Leg::A).port(), media.local(Leg::B).port()), (31040, 31042));
    assert_eq!(relay.available(), 0);
    match relay.open(2, [RELAY_IP; 2], SessionConfig::default()) {
        Err(RelayError::Exhausted { first: 31040, last: 31043, .. }) => {}
        other => panic!("want Exhausted, got {other:?}"),
    }
    media.close_and_wait().await;
    assert_eq!(relay.available(), 2);
    // The sockets are closed too: the ports bind again.
    let media = relay.open(3, [RELAY_IP; 2], SessionConfig::default()).expect("open after close");
    drop(media); // Drop does what close does.
    wait_available(&relay, 2).await;
    let again: MediaHandle = relay.open(4, [RELAY_IP; 2], SessionConfig::default()).expect("open after drop");
    again.close();
    wait_available(&relay, 2).await;
}

fn warm(limit: usize, quarantine_ms: u64, idle_ms: u64) -> WarmSockets {
    WarmSockets { limit, quarantine: Duration::from_millis(quarantine_ms), idle: Duration::from_millis(idle_ms) }
}

#[tokio::test]
async fn warm_sockets_are_reused_only_after_quarantine_and_drop_what_came_meanwhile() {
    // Four pairs; at most two kept warm.
    let (relay, _events) = relay(31080, 31087);
    let relay = relay.with_warm_sockets(warm(2, 300, 30_000));
    let first = relay.open(1, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let (old_a, old_b) = (first.local(Leg::A), first.local(Leg::B));
    assert_eq!((old_a.port(), old_b.port()), (31080, 31082));
    first.close_and_wait().await;
    assert_eq!((relay.warm(), relay.available()), (2, 4), "kept open, and counted as free");

    // The old call's phone goes on sending after the call ended: the socket is still
    // bound, so the packet waits in it.
    let (a, b) = (phone(2).await, phone(3).await);
    a.send_to(&rtp(0xa, 1), old_a).await.expect("send");
    // Within the quarantine a new call gets fresh ports.
    let second = relay.open(2, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    assert_eq!((second.local(Leg::A).port(), second.local(Leg::B).port()), (31084, 31086));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let third = relay.open(3, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    assert_eq!((third.local(Leg::A), third.local(Leg::B)), (old_a, old_b), "the warm pairs, after the quarantine");
    assert_eq!(relay.warm(), 0);
    third.set_remote(Leg::A, Some(addr(&a)));
    third.set_remote(Leg::B, Some(addr(&b)));
    // What came while no call had the socket is read and dropped, never forwarded.
    let [sa, _] = third.fresh_stats().await;
    assert_eq!(sa.rtp_packets_in, 0, "the late packet is not counted by the new call");
    silent(&b, Duration::from_millis(200)).await;
    a.send_to(&rtp(0xa, 2), old_a).await.expect("send");
    assert_eq!(recv(&b).await, (rtp(0xa, 2), old_b), "the new call relays as any");

    // Four pairs end, two are kept: the other two are closed and their ports free.
    second.close_and_wait().await;
    third.close_and_wait().await;
    assert_eq!((relay.warm(), relay.available()), (2, 4));
    let held: Vec<_> = (31080..31088).step_by(2).filter(|&p| std::net::UdpSocket::bind((RELAY_IP, p)).is_err()).collect();
    assert_eq!(held.len(), 2, "two RTP ports still bound (warm), two free: {held:?}");
}

#[tokio::test]
async fn warm_sockets_unused_for_idle_are_closed() {
    let (relay, _events) = relay(31090, 31093);
    let relay = relay.with_warm_sockets(warm(8, 0, 200));
    let media = relay.open(1, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    media.close_and_wait().await;
    assert_eq!(relay.warm(), 2);
    let until = Instant::now() + WAIT;
    while relay.warm() != 0 {
        assert!(Instant::now() < until, "still {} warm pairs", relay.warm());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(relay.available(), 2);
    for port in [31090, 31091, 31092, 31093] {
        std::net::UdpSocket::bind((RELAY_IP, port)).expect("closed: the port binds again");
    }
}

#[tokio::test]
async fn a_remote_address_set_after_the_keepalive_still_gets_keepalives() {
    // Remote addresses are queued without waking the task, except while a keep-alive is
    // set: then the address alone (no packet) must start the keep-alives.
    let (relay, _events) = relay(31094, 31097);
    let media = relay.open(1, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    media.set_keepalive(Duration::from_millis(100));
    let a = phone(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    media.set_remote(Leg::A, Some(addr(&a)));
    let (packet, from) = recv(&a).await;
    assert_eq!(from, media.local(Leg::A));
    assert_eq!(packet[1] & 0x7f, 13, "comfort noise (RFC 3389) as the keep-alive");
    media.close_and_wait().await;
}

#[tokio::test]
async fn a_port_bound_by_someone_else_is_skipped() {
    let (relay, _events) = relay(31050, 31055);
    let squatter = std::net::UdpSocket::bind((RELAY_IP, 31051)).expect("bind the squatter");
    let media = relay.open(1, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    assert_eq!((media.local(Leg::A).port(), media.local(Leg::B).port()), (31052, 31054), "31050's RTCP port is taken");
    assert_eq!(relay.available(), 1, "31050 went back to the pool");
    drop(squatter);
    media.close_and_wait().await;
    assert_eq!(relay.available(), 3);
}

#[tokio::test]
async fn per_leg_bind_address_and_a_bad_address() {
    let (relay, _events) = relay(31060, 31069);
    let media = relay.open(1, [ip(1), ip(5)], SessionConfig::default()).expect("open");
    assert_eq!((media.local(Leg::A).ip(), media.local(Leg::B).ip()), (ip(1), ip(5)));
    media.close_and_wait().await;
    // 192.0.2.1 (TEST-NET-1) is not an address of this machine: a bind error, not a scan
    // of the whole range, and nothing leaks.
    let bad = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    match relay.open(2, [RELAY_IP, bad], SessionConfig::default()) {
        Err(RelayError::Bind { addr, .. }) => assert_eq!(addr.ip(), bad),
        other => panic!("want Bind, got {other:?}"),
    }
    assert_eq!(relay.available(), 5);
}

#[tokio::test]
async fn payload_types_are_renumbered_per_direction() {
    let (relay, _events) = relay(31070, 31079);
    let media = relay.open(8, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    // telephone-event: 101 on leg A, 96 on leg B.
    media.set_payload_translation(Leg::A, PayloadTranslation::from_pairs(&[(101, 96)]));
    media.set_payload_translation(Leg::B, PayloadTranslation::from_pairs(&[(96, 101)]));
    let with_pt = |seq, pt: u8| {
        let mut p = rtp(0xa, seq);
        p[1] = pt;
        p
    };
    a.send_to(&with_pt(1, 0x80 | 101), media.local(Leg::A)).await.expect("send");
    assert_eq!(recv(&b).await.0, with_pt(1, 0x80 | 96), "A's 101 reaches B as 96, marker kept");
    a.send_to(&with_pt(2, 0), media.local(Leg::A)).await.expect("send");
    assert_eq!(recv(&b).await.0, with_pt(2, 0), "PCMU untouched");
    b.send_to(&with_pt(3, 96), media.local(Leg::B)).await.expect("send");
    assert_eq!(recv(&a).await.0, with_pt(3, 101), "B's 96 reaches A as 101");
    media.close_and_wait().await;
}
