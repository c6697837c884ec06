//! The B2BUA call layer on the engine, driven by arbitrary input: raw datagrams from the
//! caller or the callee, and well-formed messages the harness builds on the dialogs the
//! call layer created (so the fuzzer reaches deep states without guessing our Call-IDs
//! and tags), with bodies, methods and status codes from the input. Checks: no panic;
//! `handle_timeout(now)` leaves nothing due at or before `now`; after 700 s with the
//! peers silent (the call limit is 600 s), every call and every transaction has ended.
//!
//! Ops (opcode byte, operands):
//!   0 len_hi len_lo bytes…   raw datagram from the caller (opcode bit 7: from the callee)
//!   1 n                      advance the clock by n × 100 ms and fire timers
//!   2 hi lo blen body…       the callee answers the last request sent to it: 100 + (hi·256+lo) % 600
//!   3 hi lo blen body…       the caller answers the last request sent to it
//!   4 m blen body…           the caller sends a request in its dialog (m picks the method)
//!   5 m blen body…           the callee sends a request in its dialog
//!   6 blen body…             the caller sends a new INVITE with this body
//!   7                        hang up the newest call through the API
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::b2bua::{B2bua, B2buaConfig, CallEvent, CallId, Target};
use sip_core::sip_message::bytes::Bytes;
use sip_core::sip_message::{Header, HeaderName, Message, Method, Request, SeededIds, Uri};
use sip_core::{Endpoint, EndpointConfig, Flow, Time, Transmit, Transport};
use std::net::SocketAddr;
use std::time::Duration;

const ME: &str = "127.0.0.10:5060";
const CALLER: &str = "127.0.0.2:5062";
const CALLEE: &str = "127.0.0.3:5064";
const METHODS: [&str; 6] = ["BYE", "INVITE", "UPDATE", "INFO", "OPTIONS", "CANCEL"];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

struct Peer {
    addr: SocketAddr,
    /// The last request sent to this peer, to answer.
    last: Option<Request>,
    /// A request that created or belongs to the peer's dialog (for From/To/Call-ID).
    dialog: Option<(Request, String)>,
    cseq: u32,
}

struct Harness {
    ep: Endpoint,
    b2: B2bua,
    now: Time,
    peers: [Peer; 2],
    calls: Vec<CallId>,
    ids: SeededIds,
    n: u32,
}

impl Harness {
    fn flow(&self, p: usize) -> Flow {
        Flow { transport: Transport::Udp, local: addr(ME), remote: self.peers[p].addr, connection: None }
    }

    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.ep.poll_transmit() {
                any = true;
                let Transmit::Send { flow, payload } = t else { continue };
                let p = usize::from(flow.remote == addr(CALLEE));
                if let Ok(Message::Request(r)) = Message::parse(payload) {
                    if !matches!(r.method(), Method::Ack) {
                        self.peers[p].last = Some(r.clone());
                    }
                    if p == 1 && matches!(r.method(), Method::Invite) && r.to().tag().is_none() {
                        self.peers[1].dialog = Some((r, format!("callee{}", self.n)));
                    }
                }
            }
            while let Some(e) = self.ep.poll_event() {
                any = true;
                let _ = self.b2.handle_event(self.now, &mut self.ep, e);
            }
            while let Some(e) = self.b2.poll_event() {
                any = true;
                if let CallEvent::Incoming(inc) = e {
                    self.calls.push(inc.call);
                    let t = Target {
                        uri: Uri::parse_str(&format!("sip:bob@{CALLEE}")).expect("uri"),
                        flow: self.flow(1),
                        media: [addr("127.0.0.10:20000"), addr("127.0.0.10:20002")],
                        codecs: [Vec::new(), vec!["PCMU".into(), "telephone-event".into()]],
                        pin_flow: [false, true],
                        no_answer: None,
                        headers: Vec::new(),
                        forks: Vec::new(),
                        nat: [None, None],
                        direct_setup: false,
                    };
                    let _ = self.b2.route(self.now, &mut self.ep, inc.call, t);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn timeouts(&mut self) {
        while let Some(t) = [self.ep.poll_timeout(), self.b2.poll_timeout()].into_iter().flatten().min() {
            if t > self.now {
                break;
            }
            self.ep.handle_timeout(self.now);
            self.b2.handle_timeout(self.now, &mut self.ep);
            self.drain();
            let next = [self.ep.poll_timeout(), self.b2.poll_timeout()].into_iter().flatten().min();
            assert!(next.is_none_or(|t| t > self.now), "a deadline at or before now survived handle_timeout");
        }
    }

    fn deliver(&mut self, p: usize, bytes: Bytes) {
        let flow = self.flow(p);
        self.ep.handle_datagram(self.now, flow, bytes);
        self.drain();
    }

    fn answer(&mut self, p: usize, code: u16, body: &[u8]) {
        let Some(req) = self.peers[p].last.clone() else { return };
        let status = 100 + code % 600;
        let tag = if p == 1 { self.peers[1].dialog.as_ref().map(|d| d.1.clone()).unwrap_or_default() } else { "caller-tag".into() };
        let mut b = req.reply(status).to_tag(&tag);
        b = b.header(Header::new(HeaderName::Contact, Bytes::from(format!("<sip:peer@{}>", self.peers[p].addr))));
        if !body.is_empty() {
            b = b.body("application/sdp", Bytes::copy_from_slice(body));
        }
        if let Ok(r) = b.build(&mut self.ids) {
            // A 2xx to an INVITE also gets the peer's ACK.
            let ack = (200..300).contains(&status) && matches!(req.method(), Method::Invite);
            self.deliver(p, r.to_bytes());
            if ack {
                let (from, to) = (r.from().to_bytes(), r.to().to_bytes());
                let ack = format!(
                    "ACK sip:sipbridge@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKack{}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    self.peers[p].addr,
                    self.n,
                    String::from_utf8_lossy(&from),
                    String::from_utf8_lossy(&to),
                    r.call_id().as_str(),
                    r.cseq().seq
                );
                self.n += 1;
                self.deliver(p, Bytes::from(ack));
            }
        }
    }

    /// A request in the peer's dialog, built from the last request the B2BUA sent this
    /// peer (its From is the B2BUA's side, its To the peer's; the peer swaps them).
    fn request(&mut self, p: usize, m: u8, body: &[u8]) {
        let method = METHODS[usize::from(m) % METHODS.len()];
        // The B2BUA's last request to this peer carries the dialog: its From is our side,
        // its To the peer's; the peer answers with them swapped.
        let Some(last) = self.peers[p].last.clone() else { return };
        self.peers[p].cseq += 1;
        let cseq = self.peers[p].cseq + 100;
        let mut to = String::from_utf8_lossy(&last.from().to_bytes()).into_owned();
        let mut from = String::from_utf8_lossy(&last.to().to_bytes()).into_owned();
        if last.to().tag().is_none() {
            let tag = if p == 1 { self.peers[1].dialog.as_ref().map(|d| d.1.clone()).unwrap_or_default() } else { "caller-tag".into() };
            from.push_str(";tag=");
            from.push_str(&tag);
        }
        if method == "CANCEL" {
            std::mem::swap(&mut to, &mut from);
        }
        let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
        let msg = format!(
            "{method} sip:sipbridge@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKreq{}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:peer@{}>\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n",
            self.peers[p].addr,
            self.n,
            last.call_id().as_str(),
            self.peers[p].addr,
            body.len()
        );
        self.n += 1;
        let mut wire = msg.into_bytes();
        wire.extend_from_slice(body);
        self.deliver(p, Bytes::from(wire));
    }

    fn invite(&mut self, body: &[u8]) {
        let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
        let msg = format!(
            "INVITE sip:bob@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKinv{n}\r\nFrom: <sip:alice@{CALLER}>;tag=a{n}\r\nTo: <sip:bob@{ME}>\r\nCall-ID: c{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{CALLER}>\r\nSession-Expires: 90\r\nSupported: timer\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n",
            body.len(),
            n = self.n
        );
        self.n += 1;
        let mut wire = msg.into_bytes();
        wire.extend_from_slice(body);
        self.deliver(0, Bytes::from(wire));
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (a, b) = data.split_at(n);
    *data = b;
    a
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

fuzz_target!(|input: &[u8]| {
    let mut config = EndpointConfig { listeners: vec![(Transport::Udp, addr(ME))], seed: 7, ..EndpointConfig::default() };
    config.allow.extend([Method::Update, Method::Info]);
    config.supported.push("timer".into());
    let b2 = B2bua::new(B2buaConfig { advertise: addr(ME).ip(), ports: vec![(Transport::Udp, 5060)], seed: 7, max_duration: Duration::from_secs(600), ..B2buaConfig::default() });
    let peer = |a: &str| Peer { addr: addr(a), last: None, dialog: None, cseq: 0 };
    let mut h = Harness { ep: Endpoint::new(config), b2, now: Time::ZERO, peers: [peer(CALLER), peer(CALLEE)], calls: Vec::new(), ids: SeededIds::new(3), n: 0 };
    let mut data = input;
    let mut ops = 0;
    while !data.is_empty() && ops < 200 {
        ops += 1;
        let op = byte(&mut data);
        match op & 0x7f {
            0 => {
                let len = usize::from(byte(&mut data)) << 8 | usize::from(byte(&mut data));
                let bytes = Bytes::copy_from_slice(take(&mut data, len));
                h.deliver(usize::from(op >> 7), bytes);
            }
            1 => {
                h.now = h.now + Duration::from_millis(100 * u64::from(byte(&mut data)));
                h.timeouts();
            }
            2 | 3 => {
                let code = u16::from(byte(&mut data)) << 8 | u16::from(byte(&mut data));
                let len = usize::from(byte(&mut data));
                let body = take(&mut data, len).to_vec();
                h.answer(if op & 0x7f == 2 { 1 } else { 0 }, code, &body);
            }
            4 | 5 => {
                let m = byte(&mut data);
                let len = usize::from(byte(&mut data));
                let body = take(&mut data, len).to_vec();
                h.request(if op & 0x7f == 5 { 1 } else { 0 }, m, &body);
            }
            6 => {
                let len = usize::from(byte(&mut data));
                let body = take(&mut data, len).to_vec();
                h.invite(&body);
            }
            7 => {
                if let Some(c) = h.calls.last().copied() {
                    let _ = h.b2.hang_up(h.now, &mut h.ep, c, "fuzz");
                    h.drain();
                }
            }
            _ => {}
        }
    }
    // Silence: every call and transaction must end (session timers, 64·T1, no-answer
    // and duration limits all run out within this).
    for _ in 0..700 {
        h.now = h.now + Duration::from_secs(1);
        h.timeouts();
    }
    assert_eq!(h.b2.active_calls(), 0, "a call outlived 700 s of silence");
    assert_eq!(h.b2.call_count(), 0, "an ended call was never forgotten");
    assert_eq!(h.ep.transaction_count(), 0, "a transaction outlived 700 s of silence");
});
