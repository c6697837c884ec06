//! Payload-type translation in the relay (RFC 3264 §8.3.2: each leg keeps its own
//! numbers), over real loopback sockets against the built binary. The test is both
//! phones, by hand over UDP: the caller offers telephone-event as 101, the callee
//! answers it as 96.
//!
//! - the answer the caller gets keeps the caller's 101 (RFC 3264 §6.1);
//! - the caller's telephone events (101) reach the callee as 96, marker bit kept; the
//!   callee's (96, the number it declared) reach the caller as 101; PCMU (0) and RTCP
//!   pass untouched;
//! - the relay still reads the callee's 96 as DTMF: the feature code `*1` from the
//!   callee starts a recording (a WAV file per leg appears in `record_dir`).
//!
//! Addresses: sipbridge 127.0.0.76 (API port 18176), the callee .77, the caller .78.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

mod common;

use common::{header, http, Binary};

const IP: &str = "127.0.0.76";
const CALLEE: &str = "127.0.0.77";
const CALLER: &str = "127.0.0.78";
const API: &str = "127.0.0.76:18176";
const WAIT: Duration = Duration::from_secs(10);

fn socket(ip: &str, port: u16) -> UdpSocket {
    let s = UdpSocket::bind((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s
}

/// The next datagram on `s` that `want` accepts (others are skipped), within [`WAIT`].
fn recv_where(s: &UdpSocket, what: &str, want: impl Fn(&[u8]) -> bool) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            if want(&buf[..n]) {
                return (buf[..n].to_vec(), from);
            }
        }
    }
    panic!("no {what} on {:?}", s.local_addr());
}

fn sip_recv(s: &UdpSocket, first_line: &str) -> (String, SocketAddr) {
    let (m, from) = recv_where(s, first_line, |d| d.starts_with(first_line.as_bytes()));
    (String::from_utf8(m).unwrap(), from)
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default()
}

/// The `c=`/`m=` audio address of an SDP body.
fn sdp_audio(sdp: &str) -> SocketAddr {
    let ip = sdp.lines().filter_map(|l| l.strip_prefix("c=IN IP4 ")).next_back().unwrap();
    let port = sdp.lines().find_map(|l| l.strip_prefix("m=audio ")).and_then(|m| m.split(' ').next()).unwrap();
    format!("{}:{port}", ip.trim()).parse().unwrap()
}

fn sdp(ip: &str, port: u16, formats: &str, rtpmaps: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{rtpmaps}a=sendrecv\r\n")
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An RFC 4733 event payload: event, E bit, volume 10, duration.
fn event(digit: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [digit, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
}

/// One key press as a sender sends it (RFC 4733 §2.5): three packets with a growing
/// duration, the last (E bit) three times; all with the event's start timestamp.
fn key_press(pt: u8, digit: u8, seq: &mut u16, ts: u32, ssrc: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (end, duration)) in [(false, 160), (false, 320), (false, 480), (true, 640), (true, 640), (true, 640)].into_iter().enumerate() {
        out.push(rtp(pt, i == 0, *seq, ts, ssrc, &event(digit, end, duration)));
        *seq = seq.wrapping_add(1);
    }
    out
}

#[test]
fn telephone_event_numbers_are_translated_between_the_legs() {
    let dir = common::temp_dir("payload_types", "te");
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let config = format!(
        "[sip]\nlisten = [\"udp:{IP}:5060\"]\n[api]\nlisten = \"{API}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{IP}\"\nrecord_dir = \"{}\"\n[log]\nlevel = \"debug\"\n[features]\nrecord_toggle = \"*1\"\n\
         [[endpoint]]\nname = \"caller\"\nhost = \"{CALLER}:5080\"\nqualify = false\ndirect_media = \"no\"\n\
         [[endpoint]]\nname = \"callee\"\nhost = \"{CALLEE}:5070\"\nqualify = false\ndirect_media = \"no\"\n\
         [[route]]\nmatch = \".*\"\nto = \"callee\"\n",
        rec.display()
    );
    let server = Binary::start_in(dir, &config);
    let deadline = Instant::now() + WAIT;
    while http(API, "GET", "/api/health").is_err() {
        assert!(Instant::now() < deadline, "no API; stderr:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (caller_sip, callee_sip) = (socket(CALLER, 5080), socket(CALLEE, 5070));
    let (caller_rtp, callee_rtp) = (socket(CALLER, 40000), socket(CALLEE, 42000));
    let (caller_rtcp, callee_rtcp) = (socket(CALLER, 40001), socket(CALLEE, 42001));
    let proxy: SocketAddr = format!("{IP}:5060").parse().unwrap();

    // INVITE: PCMU and telephone-event 101.
    let offer = sdp(CALLER, 40000, "0 101", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n");
    let invite = format!(
        "INVITE sip:bob@{IP} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER}:5080;branch=z9hG4bK-pt1\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@{CALLER}>;tag=a1\r\nTo: <sip:bob@{IP}>\r\nCall-ID: pt-call-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{CALLER}:5080>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    caller_sip.send_to(invite.as_bytes(), proxy).unwrap();

    // The callee gets the offer (still 101) and answers telephone-event as 96.
    let (b_invite, b_from) = sip_recv(&callee_sip, "INVITE ");
    assert!(body(&b_invite).contains("a=rtpmap:101 telephone-event/8000"), "{b_invite}");
    let relay_b = sdp_audio(body(&b_invite));
    let answer = sdp(CALLEE, 42000, "0 96", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n");
    let vias: Vec<&str> = b_invite.lines().filter(|l| l.to_ascii_lowercase().starts_with("via:")).collect();
    let ok = format!(
        "SIP/2.0 200 OK\r\n{}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{CALLEE}:5070>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        vias.join("\r\n"),
        header(&b_invite, "From"),
        header(&b_invite, "To"),
        header(&b_invite, "Call-ID"),
        header(&b_invite, "CSeq"),
        answer.len()
    );
    callee_sip.send_to(ok.as_bytes(), b_from).unwrap();

    // The caller's 200: the answer keeps the caller's own 101 (RFC 3264 §6.1).
    let (a_ok, _) = sip_recv(&caller_sip, "SIP/2.0 200");
    let a_answer = body(&a_ok);
    assert!(a_answer.contains("m=audio") && a_answer.contains(" 0 101\r\n"), "{a_ok}");
    assert!(a_answer.contains("a=rtpmap:101 telephone-event/8000") && !a_answer.contains(":96 "), "{a_ok}");
    let relay_a = sdp_audio(a_answer);
    // The caller's in-dialog requests (ACK, BYE): no body, a branch of their own.
    let in_dialog = |method: &str, seq: u32, branch: &str| {
        format!(
            "{method} sip:bob@{IP} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER}:5080;branch=z9hG4bK-{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{CALLER}>;tag=a1\r\nTo: {}\r\nCall-ID: pt-call-1\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n",
            header(&a_ok, "To")
        )
    };
    caller_sip.send_to(in_dialog("ACK", 1, "pt2").as_bytes(), proxy).unwrap();
    let _ = sip_recv(&callee_sip, "ACK ");

    let is_rtp = |d: &[u8]| d.len() >= 12 && d[0] >> 6 == 2;
    // Caller → callee: PCMU untouched, then a telephone event 101 arriving as 96.
    let (mut a_seq, mut b_seq) = (1u16, 1u16);
    caller_rtp.send_to(&rtp(0, false, a_seq, 0, 0xa, &[0xff; 160]), relay_a).unwrap();
    a_seq += 1;
    let (got, from) = recv_where(&callee_rtp, "PCMU from the relay", is_rtp);
    assert_eq!(from, relay_b, "from the relay's B-leg port");
    assert_eq!(got, rtp(0, false, 1, 0, 0xa, &[0xff; 160]));
    let sent = key_press(101, 5, &mut a_seq, 160, 0xa);
    for p in &sent {
        caller_rtp.send_to(p, relay_a).unwrap();
        let (got, _) = recv_where(&callee_rtp, "a telephone event from the relay", is_rtp);
        let mut want = p.clone();
        want[1] = (p[1] & 0x80) | 96;
        assert_eq!(got, want, "101 becomes 96, marker bit and everything else kept");
    }
    // RTCP passes untouched.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xa];
    caller_rtcp.send_to(&rr, SocketAddr::new(relay_a.ip(), relay_a.port() + 1)).unwrap();
    assert_eq!(recv_where(&callee_rtcp, "RTCP", |_| true).0, rr);

    // Callee → caller: the callee sends with the number it declared, 96; the caller
    // gets 101. `*1` (feature code: start recording) is read with the callee's 96.
    callee_rtp.send_to(&rtp(0, false, b_seq, 0, 0xb, &[0x7f; 160]), relay_b).unwrap();
    b_seq += 1;
    assert_eq!(recv_where(&caller_rtp, "PCMU from the relay", is_rtp).0, rtp(0, false, 1, 0, 0xb, &[0x7f; 160]));
    let mut ts = 160;
    for digit in [10, 1] {
        for p in key_press(96, digit, &mut b_seq, ts, 0xb) {
            callee_rtp.send_to(&p, relay_b).unwrap();
            let (got, _) = recv_where(&caller_rtp, "a telephone event from the relay", is_rtp);
            let mut want = p.clone();
            want[1] = (p[1] & 0x80) | 101;
            assert_eq!(got, want, "96 becomes 101");
        }
        ts += 800;
    }
    // The DTMF was detected: the recording has started (a WAV file per leg).
    let deadline = Instant::now() + WAIT;
    loop {
        let files = std::fs::read_dir(&rec).map(|d| d.count()).unwrap_or(0);
        if files >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "*1 from the callee (telephone-event 96) started no recording\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }

    caller_sip.send_to(in_dialog("BYE", 2, "pt3").as_bytes(), proxy).unwrap();
    let _ = sip_recv(&caller_sip, "SIP/2.0 200");
}
