//! `direct_rtp_setup` through the built binary, with two hand-driven UDP "phones" so every
//! byte they see can be checked: the INVITE that reaches the callee carries the caller's
//! media address, the 200 that reaches the caller carries the callee's, no re-INVITE or
//! UPDATE ever follows, and the API says the call is direct from the answer. With the
//! key off on one endpoint the same call starts relayed and moves with re-INVITEs.
//!
//! Addresses: sipbridge on 127.0.0.x0 (API on :8090), the caller on .x1, the callee on
//! .x2; x = 9, 8, 7 or 6, one per test, so they run at once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

mod common;

use common::{api_json, header, Binary};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One test's addresses.
#[derive(Clone, Copy)]
struct Net(u8);

impl Net {
    fn ip(self, host: u8) -> String {
        format!("127.0.0.{}{host}", self.0)
    }
    fn bridge(self) -> String {
        format!("{}:5060", self.ip(0))
    }
    fn api(self) -> String {
        format!("{}:8090", self.ip(0))
    }
}

fn start(net: Net, callee_setup: bool) -> Binary {
    start_with(net, callee_setup, "", "")
}

/// As [`start`], with `alice_extra` added to alice's `[[endpoint]]` and `media_extra` to
/// `[media]`.
fn start_with(net: Net, callee_setup: bool, alice_extra: &str, media_extra: &str) -> Binary {
    let (bridge, api, caller, callee, media) = (net.bridge(), net.api(), net.ip(1), net.ip(2), net.ip(0));
    let config = format!(
        "[sip]\nlisten = [\"udp:{bridge}\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n[media]\naddress = \"{media}\"\n{media_extra}\n\
         [log]\nlevel = \"info\"\n\
         [[endpoint]]\nname = \"alice\"\nhost = \"{caller}:5060\"\nqualify = false\ndirect_rtp_setup = true\n{alice_extra}\n\
         [[endpoint]]\nname = \"bob\"\nhost = \"{callee}:5060\"\nqualify = false\ndirect_rtp_setup = {callee_setup}\n\
         [[route]]\nmatch = \".*\"\nto = \"bob\"\n"
    );
    assert!(UdpSocket::bind(&bridge).is_ok(), "{bridge} is taken by another process");
    let b = Binary::start_in(common::temp_dir("direct_setup", &net.0.to_string()), &config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(&bridge).is_ok() || common::http(&api, "GET", "/api/health").is_err() {
        assert!(Instant::now() < deadline, "sipbridge did not start; stderr:\n{}", b.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    b
}

/// A UDP socket playing a phone; everything it sends goes to sipbridge.
struct Phone {
    socket: UdpSocket,
    bridge: String,
}

impl Phone {
    fn new(addr: &str, net: Net) -> Phone {
        let socket = UdpSocket::bind(addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        Phone { socket, bridge: net.bridge() }
    }

    fn send(&self, text: &str) {
        self.socket.send_to(text.as_bytes(), &self.bridge).unwrap();
    }

    fn recv(&self) -> Option<String> {
        let mut buf = [0u8; 8192];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The next message whose first line starts with `start` within `limit`; others
    /// (100 Trying, 180) are skipped.
    fn expect(&self, start: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.recv() {
                if m.starts_with(start) {
                    return m;
                }
                seen.push(m.lines().next().unwrap_or_default().to_owned());
            }
        }
        panic!("no {start:?} within {limit:?}; saw {seen:?}");
    }

    /// Answers the in-dialog INVITE `req` with a 200 whose SDP says `ip:port`, and takes
    /// the ACK.
    fn answer(&self, req: &str, ip: &str, port: u16) {
        let body = sdp(ip, port);
        self.send(&format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:x@{ip}:5060>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            header(req, "Via"),
            header(req, "From"),
            header(req, "To"),
            header(req, "Call-ID"),
            header(req, "CSeq"),
            body.len()
        ));
        let _ = self.expect("ACK ", Duration::from_secs(5));
    }

    /// The first lines of every request received within `limit` (what must not come).
    fn requests_within(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.recv().filter(|m| !m.starts_with("SIP/2.0")) {
                out.push(m.lines().next().unwrap_or_default().to_owned());
            }
        }
        out
    }
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The last `c=` address and the `m=audio` port of a message's SDP.
fn media_of(msg: &str) -> SocketAddr {
    let body = msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let ip = body.lines().filter_map(|l| l.strip_prefix("c=IN IP4 ")).next_back().unwrap_or_else(|| panic!("no c= in\n{msg}"));
    let port = body.lines().find_map(|l| l.strip_prefix("m=audio ")).and_then(|r| r.split(' ').next()).unwrap();
    format!("{}:{port}", ip.trim()).parse().unwrap()
}

/// A call alice → sipbridge → bob, answered and ACKed (by both).
struct Call {
    net: Net,
    alice: Phone,
    bob: Phone,
    /// The INVITE as bob got it.
    invite: String,
    /// The 200 as alice got it.
    ok: String,
}

impl Call {
    fn place(net: Net) -> Call {
        let (alice, bob) = (Phone::new(&format!("{}:5060", net.ip(1)), net), Phone::new(&format!("{}:5060", net.ip(2)), net));
        let (a, bridge) = (net.ip(1), net.bridge());
        let body = sdp(&a, 40000);
        alice.send(&format!(
            "INVITE sip:bob@{bridge} SIP/2.0\r\nVia: SIP/2.0/UDP {a}:5060;branch=z9hG4bK-ds-1;rport\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{a}>;tag=a1\r\nTo: <sip:bob@{bridge}>\r\nCall-ID: direct-setup-1\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:alice@{a}:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let invite = bob.expect("INVITE ", Duration::from_secs(5));
        let b = net.ip(2);
        let answer = sdp(&b, 42000);
        bob.send(&format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{b}:5060>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            header(&invite, "Via"),
            header(&invite, "From"),
            header(&invite, "To"),
            header(&invite, "Call-ID"),
            header(&invite, "CSeq"),
            answer.len()
        ));
        let ok = alice.expect("SIP/2.0 200", Duration::from_secs(5));
        alice.send(&format!(
            "ACK sip:sipbridge@{bridge} SIP/2.0\r\nVia: SIP/2.0/UDP {a}:5060;branch=z9hG4bK-ds-2;rport\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{a}>;tag=a1\r\nTo: {}\r\nCall-ID: direct-setup-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            header(&ok, "To")
        ));
        let _ = bob.expect("ACK ", Duration::from_secs(5));
        Call { net, alice, bob, invite, ok }
    }

    fn info(&self) -> serde_json::Value {
        let calls = api_json(&self.net.api(), "/api/calls");
        let id = calls.as_array().and_then(|a| a.first()).map(|c| c["id"].clone()).unwrap_or_else(|| panic!("one call in {calls}"));
        api_json(&self.net.api(), &format!("/api/calls/{id}"))
    }

    fn hang_up(&self) {
        let (a, bridge) = (self.net.ip(1), self.net.bridge());
        self.alice.send(&format!(
            "BYE sip:sipbridge@{bridge} SIP/2.0\r\nVia: SIP/2.0/UDP {a}:5060;branch=z9hG4bK-ds-3;rport\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{a}>;tag=a1\r\nTo: {}\r\nCall-ID: direct-setup-1\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
            header(&self.ok, "To")
        ));
        let _ = self.alice.expect("SIP/2.0 200", Duration::from_secs(5));
    }
}

#[test]
fn direct_rtp_setup_points_each_phone_at_the_other_and_never_reinvites() {
    let net = Net(9);
    let server = start(net, true);
    let call = Call::place(net);
    let (a, b): (SocketAddr, SocketAddr) =
        (format!("{}:40000", net.ip(1)).parse().unwrap(), format!("{}:42000", net.ip(2)).parse().unwrap());
    assert_eq!(media_of(&call.invite), a, "the callee is given the caller's media:\n{}", call.invite);
    assert_eq!(media_of(&call.ok), b, "the caller is given the callee's media:\n{}", call.ok);
    // Nothing follows: no re-INVITE or UPDATE to either phone.
    let (ra, rb) = (call.alice.requests_within(Duration::from_millis(1500)), call.bob.requests_within(Duration::from_millis(10)));
    assert!(ra.is_empty() && rb.is_empty(), "no request after the ACK: alice {ra:?}, bob {rb:?}");
    let c = call.info();
    assert_eq!(c["media_path"], "direct", "{c}");
    assert_eq!(c["media_reason"], "direct", "{c}");
    assert_eq!(c["reinvites_sent"], 0, "{c}");
    let history: Vec<&str> = c["media_history"].as_array().unwrap().iter().filter_map(|h| h["media_path"].as_str()).collect();
    assert_eq!(history.last(), Some(&"direct"), "{c}");
    assert!(!history.contains(&"moving"), "never moving: {c}");
    call.hang_up();
    let _ = call.bob.expect("BYE ", Duration::from_secs(5));
    drop(server);
}

#[test]
fn without_direct_rtp_setup_on_both_endpoints_the_call_starts_relayed() {
    let net = Net(8);
    let server = start(net, false);
    let call = Call::place(net);
    assert_eq!(media_of(&call.invite).ip().to_string(), net.ip(0), "the callee is given our relay:\n{}", call.invite);
    assert_eq!(media_of(&call.ok).ip().to_string(), net.ip(0), "the caller is given our relay:\n{}", call.ok);
    // direct_media = yes (the default) still moves it after the answer, with a re-INVITE
    // per leg: the difference direct_rtp_setup makes.
    let reinvite = call.alice.expect("INVITE ", Duration::from_secs(5));
    assert_eq!(media_of(&reinvite), format!("{}:42000", net.ip(2)).parse().unwrap(), "{reinvite}");
    call.hang_up();
    drop(server);
}

#[test]
fn a_blocker_seen_only_in_the_answer_re_anchors_the_call() {
    // alice's permit list cannot be checked before bob's answer gives his address; when
    // it refuses it, both legs are brought back to the relay.
    let net = Net(7);
    let server = start_with(net, true, "direct_media_permit = [\"10.0.0.0/8\"]", "");
    let call = Call::place(net);
    assert_eq!(media_of(&call.invite).ip().to_string(), net.ip(1), "set up direct:\n{}", call.invite);
    let (ra, rb) = (call.alice.expect("INVITE ", Duration::from_secs(5)), call.bob.expect("INVITE ", Duration::from_secs(5)));
    assert_eq!(media_of(&ra).ip().to_string(), net.ip(0), "alice back on the relay:\n{ra}");
    assert_eq!(media_of(&rb).ip().to_string(), net.ip(0), "bob back on the relay:\n{rb}");
    let c = call.info();
    let reason = c["media_reason"].as_str().unwrap_or_default().to_owned();
    assert_eq!(reason, format!("relayed: alice's direct_media_permit does not include {}", net.ip(2)), "{c}");
    drop(server);
}

/// Every datagram a media socket gets within `limit`: (source, length, payload type).
fn media_packets(s: &UdpSocket, limit: Duration) -> Vec<(SocketAddr, usize, u8)> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            out.push((from, n, buf.get(1).map_or(0, |b| b & 0x7f)));
        }
    }
    out
}

#[test]
fn rtp_keepalives_only_while_the_relay_carries_the_media() {
    // `[media] rtp_keepalive_s = 1`: neither phone sends RTP here, so a relayed call owes
    // each of them a comfort-noise packet every second; a direct one owes nothing.
    let net = Net(6);
    let server = start_with(net, true, "", "rtp_keepalive_s = 1");
    let media = [(net.ip(1), 40000), (net.ip(2), 42000)].map(|(ip, port)| {
        let s = UdpSocket::bind((ip.as_str(), port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        s
    });
    let call = Call::place(net);
    let quiet = media.each_ref().map(|s| media_packets(s, Duration::from_millis(2500)));
    assert!(quiet.iter().all(Vec::is_empty), "direct from the answer: no keep-alive {quiet:?}");
    // Recording brings the media back through the relay (a re-INVITE to each phone).
    let id = call.info()["id"].clone();
    let (status, body) = common::http(&net.api(), "POST", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let reinvites = [call.alice.expect("INVITE ", Duration::from_secs(5)), call.bob.expect("INVITE ", Duration::from_secs(5))];
    assert!(reinvites.iter().all(|r| media_of(r).ip().to_string() == net.ip(0)), "re-anchored: {reinvites:?}");
    call.alice.answer(&reinvites[0], &net.ip(1), 40000);
    call.bob.answer(&reinvites[1], &net.ip(2), 42000);
    let relayed = media.each_ref().map(|s| media_packets(s, Duration::from_millis(2500)));
    for (i, got) in relayed.iter().enumerate() {
        assert!(got.len() >= 2, "leg {i}: a keep-alive a second while relayed, got {got:?}");
        assert!(
            got.iter().all(|&(from, n, pt)| from.ip().to_string() == net.ip(0) && n == 13 && pt == 13),
            "leg {i}: CN from the relay: {got:?}"
        );
    }
    let c = call.info();
    let sent: Vec<u64> = (0..2).map(|i| c["legs"][i]["media"]["stats"]["keepalives_sent"].as_u64().unwrap_or(0)).collect();
    assert!(sent.iter().all(|&n| n >= 2), "counted in the API: {sent:?}");
    // Recording stops: direct again, and the keep-alives stop with the forwarding.
    let (status, body) = common::http(&net.api(), "DELETE", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let reinvites = [call.alice.expect("INVITE ", Duration::from_secs(5)), call.bob.expect("INVITE ", Duration::from_secs(5))];
    call.alice.answer(&reinvites[0], &net.ip(1), 40000);
    call.bob.answer(&reinvites[1], &net.ip(2), 42000);
    let deadline = Instant::now() + Duration::from_secs(5);
    while call.info()["media_path"] != "direct" {
        assert!(Instant::now() < deadline, "not direct again: {}", call.info());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = media.each_ref().map(|s| media_packets(s, Duration::from_millis(100)));
    let after = media.each_ref().map(|s| media_packets(s, Duration::from_millis(2500)));
    assert!(after.iter().all(Vec::is_empty), "direct again: no keep-alive {after:?}");
    call.hang_up();
    drop(server);
}
