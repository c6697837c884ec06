//! OPTIONS qualify through the built binary over real sockets: a peer that answers is
//! `reachable` with its round trip in `GET /api/endpoints`; one that stops answering is
//! `unreachable` after Timer F (64·T1, T1 = 50 ms here) and a call to it fails at once
//! with 480 instead of waiting for Timer B; answering again makes it reachable.
//!
//! Addresses: sipbridge 127.0.0.150 (API port 18150), the peer 127.0.0.151:5060, the
//! caller 127.0.0.152:5080.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

mod common;

use common::Binary;

const API: &str = "127.0.0.150:18150";

fn get(path: &str) -> String {
    common::http(API, "GET", path).unwrap().1
}

/// `peer`'s state and round trip from the API.
fn peer_state() -> (String, Option<u64>) {
    let v: serde_json::Value = serde_json::from_str(&get("/api/endpoints")).unwrap();
    let peer = v.as_array().unwrap().iter().find(|e| e["name"] == "peer").unwrap().clone();
    (peer["state"].as_str().unwrap().to_owned(), peer["rtt_ms"].as_u64())
}

fn recv(sock: &UdpSocket, within: Duration) -> Option<(String, SocketAddr)> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = vec![0u8; 65535];
    sock.recv_from(&mut buf).ok().map(|(n, from)| (String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())).unwrap_or("")
}

/// A 200 to `req`: its Via, From, To (with a tag), Call-ID and CSeq.
fn ok(req: &str) -> String {
    let h = |n| header(req, n);
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=peer\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < deadline, "{what} within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn reachable_then_unreachable_after_timer_f_then_calls_fail_fast_then_back() {
    let peer = UdpSocket::bind("127.0.0.151:5060").expect("127.0.0.151:5060 is free");
    let caller = UdpSocket::bind("127.0.0.152:5080").expect("127.0.0.152:5080 is free");
    let config = format!(
        "[sip]\nlisten = [\"udp:127.0.0.150:5060\"]\n[timers]\nt1_ms = 50\n[api]\nlisten = \"{API}\"\n[store]\nurl = \"memory\"\n\
         [log]\nlevel = \"info\"\n\
         [[endpoint]]\nname = \"peer\"\nhost = \"127.0.0.151:5060\"\nqualify = true\nqualify_frequency_s = 1\nqualify_max_ms = 1000\n\
         [[endpoint]]\nname = \"caller\"\nhost = \"127.0.0.152:5080\"\nqualify = false\n"
    );
    let bin = Binary::start_in(common::temp_dir("qualify", "states"), &config);

    // The first OPTIONS comes within the 1 s start spread (plus start-up), built per §11.
    let (options, from) = recv(&peer, Duration::from_secs(5)).unwrap_or_else(|| panic!("no OPTIONS; stderr:\n{}", bin.stderr()));
    assert!(options.starts_with("OPTIONS sip:peer@127.0.0.151:5060 SIP/2.0\r\n"), "{options}");
    assert!(header(&options, "To").contains("sip:peer@127.0.0.151:5060"), "{options}");
    assert!(header(&options, "From").contains(";tag="), "{options}");
    assert_eq!(header(&options, "Max-Forwards"), "70");
    assert_eq!(header(&options, "Accept"), "application/sdp");
    peer.send_to(ok(&options).as_bytes(), from).unwrap();
    wait_for("reachable", Duration::from_secs(3), || peer_state().0 == "reachable");
    let (_, rtt) = peer_state();
    assert!(rtt.is_some_and(|r| r < 1000), "rtt {rtt:?}");

    // Stop answering: the next OPTIONS (1 s after the last was sent) is retransmitted
    // by the transaction layer and times out after 64·T1 = 3.2 s.
    let (unanswered, _) = recv(&peer, Duration::from_secs(3)).unwrap();
    let sent = Instant::now();
    let branch = header(&unanswered, "Via").to_owned();
    let took = wait_for("unreachable", Duration::from_secs(8), || peer_state().0 == "unreachable");
    assert!(took >= Duration::from_millis(2800), "unreachable after {took:?}, before Timer F");
    assert!(sent.elapsed() <= Duration::from_millis(4500), "unreachable {:?} after the OPTIONS", sent.elapsed());
    // What reached the peer meanwhile were retransmissions of that one OPTIONS.
    while let Some((m, _)) = recv(&peer, Duration::from_millis(10)) {
        if header(&m, "Via") != branch {
            assert!(m.starts_with("OPTIONS "), "only OPTIONS reach the peer: {m}");
        }
    }

    // A call to it now fails at once with 480; nothing is sent to the peer but OPTIONS.
    let me = caller.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:peer@127.0.0.150 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-q1;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@{me}>;tag=c1\r\nTo: <sip:peer@127.0.0.150>\r\nCall-ID: qualify-call-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    let asked = Instant::now();
    caller.send_to(invite.as_bytes(), "127.0.0.150:5060").unwrap();
    let mut last = None;
    while let Some((m, _)) = recv(&caller, Duration::from_secs(2)) {
        let status: u16 = m.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        if status >= 200 {
            last = Some(status);
            break;
        }
    }
    assert_eq!(last, Some(480), "stderr:\n{}", bin.stderr());
    assert!(asked.elapsed() < Duration::from_secs(1), "480 took {:?}", asked.elapsed());
    let ack = format!(
        "ACK sip:peer@127.0.0.150 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-q1;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@{me}>;tag=c1\r\nTo: <sip:peer@127.0.0.150>\r\nCall-ID: qualify-call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send_to(ack.as_bytes(), "127.0.0.150:5060").unwrap();

    // Unreachable endpoints are polled every 10 s: answer the next one, reachable again.
    let (poll, from) = recv(&peer, Duration::from_secs(12)).unwrap();
    assert!(poll.starts_with("OPTIONS "), "{poll}");
    peer.send_to(ok(&poll).as_bytes(), from).unwrap();
    wait_for("reachable again", Duration::from_secs(3), || peer_state().0 == "reachable");
    let log = bin.stderr();
    assert!(log.contains("endpoint is now unreachable") && log.contains("is unreachable (qualify)"), "{log}");
    let metrics = get("/metrics");
    assert!(metrics.contains("sipbridge_endpoints{state=\"reachable\"} 1"), "{metrics}");
}
