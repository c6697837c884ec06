//! The built `sipbridge` binary over real loopback sockets: started with a config file
//! like an operator starts it, spoken to over UDP, TCP and TLS, by hand and by SIPp.
//!
//! - every RFC 4475 message as one UDP datagram, the answer checked against
//!   `../shared/conformance/rfc4475/MANIFEST.tsv` (read in place);
//! - OPTIONS over UDP, TCP and TLS get 200 with Allow, Accept, Supported;
//! - a retransmitted INVITE gets the very same 404 again (same To tag);
//! - the 404 to an INVITE is retransmitted on Timer G while the ACK is withheld;
//! - SIPp (Debian's sip-tester, which CI installs) runs bounded OPTIONS and INVITE→404
//!   scenarios against it without a failed call;
//! - SIGTERM stops it with exit status 0.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

mod common;

use common::{shared, Binary};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port free for both UDP and TCP on 127.0.0.1 (the binary binds it right after).
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

struct Server {
    bin: Binary,
    port: u16,
}

impl Server {
    /// Starts the binary with UDP and TCP on `port`, TLS on `port + 1` (a fresh
    /// self-signed certificate), T1 as given, and waits until it answers OPTIONS.
    fn start(name: &str, t1_ms: u64) -> Server {
        let port = free_port();
        let dir = common::temp_dir("e2e", name);
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        let config = format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\", \"tls:127.0.0.1:{tls}\"]\n\
             [timers]\nt1_ms = {t1_ms}\n[tls]\ncertificate = \"{dir}/cert.pem\"\nprivate_key = \"{dir}/key.pem\"\n\
             [api]\nlisten = \"\"\n[log]\nlevel = \"info\"\nsip_debug = true\n\
             [[endpoint]]\nname = \"phone\"\nhost = \"127.0.0.1:5999\"\nqualify = false\n",
            tls = port + 1,
            dir = dir.display()
        );
        let s = Server { bin: Binary::start_in(dir, &config), port };
        s.wait_ready();
        s
    }

    fn udp(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn wait_ready(&self) {
        let phone = Phone::new();
        let deadline = Instant::now() + WAIT;
        let mut n = 0;
        while Instant::now() < deadline {
            n += 1;
            phone.send(self.udp(), &options("UDP", phone.addr(), &format!("ready{n}")));
            if phone.recv_within(Duration::from_millis(200)).is_some() {
                return;
            }
        }
        panic!("sipbridge did not answer OPTIONS within {WAIT:?}; stderr:\n{}", self.stderr());
    }

    fn stderr(&self) -> String {
        self.bin.stderr()
    }
}

struct Phone(UdpSocket);

impl Phone {
    fn new() -> Phone {
        Phone(UdpSocket::bind("127.0.0.1:0").unwrap())
    }

    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }

    fn send(&self, to: SocketAddr, data: &[u8]) {
        self.0.send_to(data, to).unwrap();
    }

    fn recv_within(&self, d: Duration) -> Option<Vec<u8>> {
        self.0.set_read_timeout(Some(d)).unwrap();
        let mut buf = vec![0u8; 65535];
        match self.0.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }
}

fn options(transport: &str, me: SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {me};rport;branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@{me}>;tag=p-{call_id}\r\nTo: <sip:sipbridge@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn invite(me: SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:nobody@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@{me}>;tag=p-{call_id}\r\nTo: <sip:nobody@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn status(msg: &[u8]) -> u16 {
    let s = String::from_utf8_lossy(msg);
    s.strip_prefix("SIP/2.0 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

/// The sent-by ports of the corpus' top Via values: replies go to the source IP and these
/// ports (§18.2.2; none of the messages asks for rport).
const VIA_PORTS: [u16; 4] = [5060, 5061, 5050, 5070];

#[test]
fn every_rfc4475_datagram_is_answered_as_the_manifest_accepts() {
    let server = Server::start("rfc4475", 500);
    let dir = shared().join("conformance/rfc4475");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("RFC 4475 manifest (set SIPBRIDGE_SHARED)");
    // A loopback address of its own, so the well-known ports are free on it.
    let phones: Vec<UdpSocket> = VIA_PORTS.iter().map(|p| UdpSocket::bind(("127.0.0.43", *p)).unwrap()).collect();
    let main = Phone(phones[0].try_clone().unwrap());
    let mut checked = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, kind, outcomes) = (cols[0], cols[3], cols[5].split('|').collect::<Vec<_>>());
        let data = std::fs::read(dir.join(file)).unwrap();
        main.send(server.udp(), &data);
        // A barrier: the engine answers in order, so everything before the barrier's 200
        // belongs to this file. (Two files share a branch and sent-by, so the second is
        // a retransmission of the first and gets its stored answer again: that is right.)
        let barrier = format!("barrier-{checked}");
        main.send(server.udp(), &options("UDP", main.addr(), &barrier));
        let mut replies = Vec::new();
        let mut keep = |msg: Vec<u8>| replies.push(msg);
        loop {
            let Some(msg) = main.recv_within(WAIT) else { panic!("{file}: no barrier reply; stderr:\n{}", server.stderr()) };
            let text = String::from_utf8_lossy(&msg).into_owned();
            if header(&text, "Call-ID") == Some(barrier.as_str()) {
                break;
            }
            keep(msg);
        }
        for p in &phones[1..] {
            p.set_nonblocking(true).unwrap();
            let mut buf = vec![0u8; 65535];
            while let Ok((n, _)) = p.recv_from(&mut buf) {
                keep(buf[..n].to_vec());
            }
        }
        let got = match replies.as_slice() {
            [] => "discard".to_owned(),
            [r] => format!("reply:{}", status(r)),
            many => panic!("{file}: {} replies", many.len()),
        };
        // ACK a final answer to an INVITE, or Timer G would repeat it into later files.
        if let [r] = replies.as_slice() {
            if let Some(ack) = ack_for(&data, r) {
                main.send(server.udp(), &ack);
            }
        }
        let ok = outcomes.contains(&got.as_str())
            || (outcomes.contains(&"parse-ok") && !matches!(got.as_str(), "discard" | "reply:400" | "reply:505" | "reply:513"))
            || (kind == "response" && got == "discard");
        assert!(ok, "{file}: got {got}, manifest accepts {outcomes:?}");
        if kind == "response" {
            assert_eq!(got, "discard", "{file}: a response is never answered");
        }
        checked += 1;
    }
    assert_eq!(checked, 49);
}

/// The ACK for a non-2xx final to an INVITE (§17.1.1.3): the request's Request-URI, the
/// response's Via, From, To, Call-ID and CSeq number.
fn ack_for(request: &[u8], response: &[u8]) -> Option<Vec<u8>> {
    let resp = String::from_utf8_lossy(response).into_owned();
    let cseq = header(&resp, "CSeq")?;
    if status(response) < 300 || !cseq.ends_with("INVITE") {
        return None;
    }
    let req = String::from_utf8_lossy(request).into_owned();
    let ruri = req.lines().next()?.split_whitespace().nth(1)?;
    let mut ack = format!("ACK {ruri} SIP/2.0\r\n");
    for line in resp.lines().skip(1) {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if ["via", "v", "from", "f", "to", "t", "call-id", "i"].contains(&name.as_str()) {
            ack.push_str(line);
            ack.push_str("\r\n");
        }
    }
    let n = cseq.split_whitespace().next()?;
    ack.push_str(&format!("CSeq: {n} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    Some(ack.into_bytes())
}

#[test]
fn options_over_udp_tcp_and_tls() {
    let server = Server::start("options", 500);
    let phone = Phone::new();
    phone.send(server.udp(), &options("UDP", phone.addr(), "o-udp"));
    let r = String::from_utf8(phone.recv_within(WAIT).unwrap()).unwrap();
    assert_eq!(status(r.as_bytes()), 200, "{r}");
    assert!(header(&r, "Allow").is_some_and(|a| a.contains("INVITE") && a.contains("OPTIONS")), "{r}");
    assert_eq!(header(&r, "Accept"), Some("application/sdp"));
    assert!(header(&r, "Supported").is_some(), "{r}");
    // RFC 3581: rport filled with our source port, received with our address.
    assert!(r.contains(&format!("rport={}", phone.addr().port())), "{r}");

    let mut tcp = TcpStream::connect(server.udp()).unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(&options("TCP", me, "o-tcp")).unwrap();
    let r = read_message(&mut tcp);
    assert_eq!(status(r.as_bytes()), 200, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("o-tcp"));

    // TLS, trusting the server's own certificate.
    let tls = sip_tokio::TlsConfig::from_files(&sip_tokio::TlsFiles {
        certificate: server.bin.dir().join("cert.pem"),
        private_key: server.bin.dir().join("key.pem"),
        trust: None,
    })
    .unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let conn = rustls::ClientConnection::new(tls.client.clone(), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", server.port + 1)).unwrap();
    let me = sock.local_addr().unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    stream.write_all(&options("TLS", me, "o-tls")).unwrap();
    let r = read_message(&mut stream);
    assert_eq!(status(r.as_bytes()), 200, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("o-tls"));
}

/// Reads one whole message (head and Content-Length body) from a stream.
fn read_message(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + WAIT;
    while !buf.ends_with(b"\r\n\r\n") {
        assert!(Instant::now() < deadline, "no whole head in time");
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!("connection ended early: {other:?} after {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = header(&head, "Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[test]
fn retransmitted_invite_gets_the_same_404_and_timer_g_repeats_it_until_the_ack() {
    let server = Server::start("timer-g", 100); // T1 = 100 ms: G at 100, 200, 400, 800 … ms
    let phone = Phone::new();
    let inv = invite(phone.addr(), "g1");
    phone.send(server.udp(), &inv);
    let first = phone.recv_within(WAIT).unwrap();
    assert_eq!(status(&first), 404, "{}", String::from_utf8_lossy(&first));
    phone.send(server.udp(), &inv); // our retransmission: answered from the transaction
    let mut copies = vec![first.clone()];
    let start = Instant::now();
    while copies.len() < 5 && start.elapsed() < WAIT {
        if let Some(m) = phone.recv_within(Duration::from_millis(500)) {
            copies.push(m);
        }
    }
    assert!(copies.len() >= 5, "only {} copies of the 404 without ACK", copies.len());
    assert!(copies.iter().all(|c| *c == first), "every copy is the same response, same To tag");
    // Now the ACK: the copies stop.
    let text = String::from_utf8_lossy(&first).into_owned();
    let to = header(&text, "To").unwrap();
    let me = phone.addr();
    let ack = format!(
        "ACK sip:nobody@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-g1\r\nMax-Forwards: 70\r\nFrom: <sip:phone@{me}>;tag=p-g1\r\n\
         To: {to}\r\nCall-ID: g1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    phone.send(server.udp(), ack.as_bytes());
    // Drain what was already in flight, then expect silence for well over the next G.
    while phone.recv_within(Duration::from_millis(300)).is_some_and(|m| m == first) {}
    assert!(phone.recv_within(Duration::from_millis(1500)).is_none(), "the 404 went on after the ACK");
    assert!(server.stderr().contains("<--- SIP read from UDP"), "sip_debug logs messages in");
}

fn sipp(scenario: &str, server: &Server, calls: u32, rate: u32) -> std::process::Output {
    let port = free_port();
    Command::new("sipp")
        .args(["-sf", &repo().join("bench").join(scenario).display().to_string()])
        .arg(server.udp().to_string())
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
        .args(["-timeout", "30", "-timeout_error", "-nostdin"])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("sipp runs (Debian package sip-tester; scripts/test.sh installs it)")
}

#[test]
fn sipp_options_and_invite_scenarios_pass() {
    let server = Server::start("sipp", 500);
    for (scenario, calls) in [("options.xml", 200), ("invite404.xml", 50)] {
        let out = sipp(scenario, &server, calls, 100);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{scenario}: sipp failed ({:?})\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn sigterm_stops_the_server_with_status_0() {
    let mut server = Server::start("sigterm", 500);
    let pid = server.bin.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = server.bin.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.stderr());
            assert!(server.stderr().contains("shutting down"));
            return;
        }
        assert!(Instant::now() < deadline, "still running {WAIT:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
