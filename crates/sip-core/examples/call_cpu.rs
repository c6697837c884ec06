//! CPU per bridged call in the sans-IO core (endpoint + B2BUA), for instruction counts
//! under callgrind. N complete calls go through the engine the way the SIPp benchmark
//! (`bench/cps.sh`) drives the server: caller INVITE with SDP → 100 → our INVITE to the
//! callee → its 100, 180 and 200 with SDP → 180 and 200 to the caller → caller ACK → our
//! ACK → (hold) → caller BYE → our BYE → callee 200 → 200 to the caller. The peers' messages
//! are hand-made datagrams in SIPp's wording (responses copy the request's Via, From, To,
//! Call-ID and CSeq rows, as SIPp's `[last_*:]` do). A new call starts every 10 ms of virtual
//! time and is held 500 ms (50 calls are up at once); due timers are fired as time goes on,
//! and at the end time runs 64 s more so that every transaction and call record ends.
//!
//! The media relay is not modelled (as in `call_memory`): `Media`, `Answered` and
//! `MediaPath` events are only counted; on `Negotiated` the four SDPs in force are read
//! (`local_sdp` / `remote_sdp`), as the server does to set the relay's payload maps.
//!
//!     cargo build --release -p sip-core --example call_cpu
//!     valgrind --tool=callgrind target/release/examples/call_cpu 2000
//!     valgrind --tool=callgrind target/release/examples/call_cpu 1
//!
//! Instructions per call = (count(N=2000) − count(N=1)) / 1999 (callgrind's `Collected`
//! total, or `callgrind_annotate` of the two outputs). The run asserts that every call was
//! answered, confirmed and hung up, and that nothing is left in the engine, so it fails
//! when the flow breaks. `DUMP=1` prints the first call's messages.

use bytes::Bytes;
use sip_core::b2bua::{B2bua, B2buaConfig, CallEvent, Side, Target};
use sip_core::sip_message::Uri;
use sip_core::{Endpoint, EndpointConfig, Flow, Time, Transmit, Transport};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

const ME: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:5080";
const CALLEE: &str = "127.0.0.1:5070";
/// A new call every 10 ms, held 50 calls (500 ms).
const SPACING_MS: u64 = 10;
const HOLD: usize = 50;

/// SIPp's SDP (`uac.xml` / `uas.xml`).
fn sdp(port: u16) -> String {
    format!("v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

/// The head rows after the start line, without their CRLF, as `(name, row)`: the
/// harness's own scanning is kept cheap (bytes, no UTF-8 pass, no trimming beyond the
/// name) so that the count is mostly the engine's.
fn rows(msg: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    msg.split(|&c| c == b'\n').map(|r| r.strip_suffix(b"\r").unwrap_or(r)).take_while(|r| !r.is_empty()).skip(1).filter_map(|r| {
        let colon = r.iter().position(|&c| c == b':')?;
        let name = &r[..colon];
        let end = name.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(0, |p| p + 1);
        Some((&name[..end], r))
    })
}

fn is(name: &[u8], names: &[&str]) -> bool {
    names.iter().any(|m| name.eq_ignore_ascii_case(m.as_bytes()))
}

/// The value of the first row named `name` (or `compact`), case-insensitively.
fn row<'a>(msg: &'a [u8], name: &str, compact: &str) -> Option<&'a str> {
    let (_, r) = rows(msg).find(|(n, _)| is(n, &[name, compact]))?;
    let colon = r.iter().position(|&c| c == b':')?;
    std::str::from_utf8(&r[colon + 1..]).ok().map(str::trim)
}

/// A UAS answer in SIPp's `uas.xml` style: the request's Via, From, To (our tag added),
/// Call-ID and CSeq rows, our Contact, and `body` as SDP.
fn answer(req: &[u8], status: &str, to_tag: Option<&str>, body: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(req.len().min(1024) + 256);
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, r) in rows(req) {
        if is(n, &["via", "v", "from", "f", "call-id", "i", "cseq"]) {
            out.extend_from_slice(r);
            out.extend_from_slice(b"\r\n");
        } else if is(n, &["to", "t"]) {
            out.extend_from_slice(r);
            if let Some(t) = to_tag {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(t.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Contact: <sip:uas@127.0.0.1:5070;transport=UDP>\r\n");
    match body {
        Some(b) => {
            out.extend_from_slice(b"Content-Type: application/sdp\r\nContent-Length: ");
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(b.as_bytes());
        }
        None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
    Bytes::from(out)
}

/// A request's method (its first word).
fn method(msg: &[u8]) -> &[u8] {
    msg.split(|&c| c == b' ').next().unwrap_or_default()
}

/// A response's status code.
fn status(msg: &[u8]) -> Option<u16> {
    let rest = msg.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// One caller's dialog, once it is answered: what its ACK and BYE need.
struct Up {
    i: usize,
    /// The To row of the 200 (with our tag).
    to: String,
    /// The B2BUA's Contact URI: the ACK's and BYE's Request-URI.
    target: String,
}

#[derive(Default)]
struct Counts {
    incoming: usize,
    answered: usize,
    ended: usize,
    negotiated: usize,
    media: usize,
    /// 180s, 200s to INVITE and 200s to BYE the caller received.
    ringing_a: usize,
    ok_invite_a: usize,
    ok_bye_a: usize,
    /// INVITEs, ACKs and BYEs the callee received.
    invite_b: usize,
    ack_b: usize,
    bye_b: usize,
}

struct Harness {
    ep: Endpoint,
    b2: B2bua,
    now: Time,
    from_caller: Flow,
    from_callee: Flow,
    target: Target,
    /// Datagrams the engine sent, by peer.
    to_caller: Vec<Bytes>,
    to_callee: Vec<Bytes>,
    counts: Counts,
    dump: bool,
}

impl Harness {
    /// Drains the engine and the call layer until both are quiet (the drain rule).
    fn pump(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.ep.poll_transmit() {
                any = true;
                if let Transmit::Send { flow, payload } = t {
                    if self.dump {
                        println!("--> {}\n{}", flow.remote, String::from_utf8_lossy(&payload));
                    }
                    if flow.remote == self.from_caller.remote {
                        self.to_caller.push(payload);
                    } else {
                        self.to_callee.push(payload);
                    }
                }
            }
            while let Some(e) = self.ep.poll_event() {
                any = true;
                let _ = self.b2.handle_event(self.now, &mut self.ep, e);
            }
            let mut last_negotiated = None;
            while let Some(e) = self.b2.poll_event() {
                any = true;
                if !matches!(e, CallEvent::Negotiated { .. }) {
                    last_negotiated = None;
                }
                match e {
                    CallEvent::Incoming(inc) => {
                        self.counts.incoming += 1;
                        self.b2.route(self.now, &mut self.ep, inc.call, self.target.clone()).expect("routed");
                    }
                    CallEvent::Answered { .. } => self.counts.answered += 1,
                    CallEvent::Ended { .. } => self.counts.ended += 1,
                    CallEvent::Media { .. } => self.counts.media += 1,
                    CallEvent::Negotiated { call, .. } => {
                        // As the server does: once per call per drain, the SDPs in force.
                        if last_negotiated != Some(call) {
                            self.counts.negotiated += 1;
                            for side in [Side::A, Side::B] {
                                std::hint::black_box((self.b2.local_sdp(call, side), self.b2.remote_sdp(call, side)));
                            }
                        }
                        last_negotiated = Some(call);
                    }
                    CallEvent::Progress { .. } | CallEvent::MediaPath { .. } => {}
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Moves virtual time to `to`, firing every timer due on the way.
    fn advance(&mut self, to: Time) {
        while let Some(t) = [self.ep.poll_timeout(), self.b2.poll_timeout()].into_iter().flatten().min().filter(|t| *t <= to) {
            self.now = t.max(self.now);
            self.ep.handle_timeout(self.now);
            self.b2.handle_timeout(self.now, &mut self.ep);
            self.pump();
            self.to_caller.clear();
            self.to_callee.clear();
        }
        self.now = to.max(self.now);
    }

    fn caller_sends(&mut self, msg: Bytes) {
        if self.dump {
            println!("<-- caller\n{}", String::from_utf8_lossy(&msg));
        }
        self.ep.handle_datagram(self.now, self.from_caller, msg);
        self.pump();
    }

    fn callee_sends(&mut self, msg: Bytes) {
        if self.dump {
            println!("<-- callee\n{}", String::from_utf8_lossy(&msg));
        }
        self.ep.handle_datagram(self.now, self.from_callee, msg);
        self.pump();
    }

    /// The callee's side: answers what the engine sent it (INVITE: 100, 180, 200 with SDP;
    /// BYE: 200; ACK: nothing).
    fn callee(&mut self, i: usize) {
        for msg in std::mem::take(&mut self.to_callee) {
            match method(&msg) {
                b"INVITE" => {
                    self.counts.invite_b += 1;
                    let tag = format!("{i}SIPpTag01");
                    self.callee_sends(answer(&msg, "100 Trying", None, None));
                    self.callee_sends(answer(&msg, "180 Ringing", Some(&tag), None));
                    self.callee_sends(answer(&msg, "200 OK", Some(&tag), Some(&sdp(7000))));
                }
                b"ACK" => self.counts.ack_b += 1,
                b"BYE" => {
                    self.counts.bye_b += 1;
                    self.callee_sends(answer(&msg, "200 OK", None, None));
                }
                _ => {}
            }
        }
    }

    /// Places call `i`; returns what its ACK and BYE need once it is answered.
    fn place(&mut self, i: usize) -> Up {
        let body = sdp(6000);
        let invite = format!(
            "INVITE sip:service@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{i}-1-0\r\n\
             From: sipp <sip:sipp@{CALLER}>;tag=1SIPpTag00{i}\r\nTo: service <sip:service@{ME}>\r\n\
             Call-ID: {i}-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@{CALLER}>\r\nMax-Forwards: 70\r\n\
             Subject: Performance Test\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.caller_sends(Bytes::from(invite));
        // Let the callee answer whatever reached it, as often as it takes.
        while !self.to_callee.is_empty() {
            self.callee(i);
        }
        let mut up = None;
        for msg in std::mem::take(&mut self.to_caller) {
            match status(&msg) {
                Some(180) => self.counts.ringing_a += 1,
                Some(200) => {
                    self.counts.ok_invite_a += 1;
                    let to = row(&msg, "To", "t").expect("To").to_owned();
                    let contact = row(&msg, "Contact", "m").expect("Contact");
                    let target = contact.split_once('<').and_then(|(_, r)| r.split_once('>')).map_or(contact, |(u, _)| u).to_owned();
                    up = Some(Up { i, to, target });
                }
                _ => {}
            }
        }
        let up = up.expect("the 200 to the caller");
        let ack = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{i}-1-5\r\n\
             From: sipp <sip:sipp@{CALLER}>;tag=1SIPpTag00{i}\r\nTo: {}\r\nCall-ID: {i}-1@127.0.0.1\r\nCSeq: 1 ACK\r\n\
             Contact: <sip:sipp@{CALLER}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            up.target, up.to
        );
        self.caller_sends(Bytes::from(ack));
        self.callee(i);
        self.to_caller.clear();
        up
    }

    /// The caller hangs up call `up`.
    fn hang_up(&mut self, up: Up) {
        let i = up.i;
        let bye = format!(
            "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{i}-2-7\r\n\
             From: sipp <sip:sipp@{CALLER}>;tag=1SIPpTag00{i}\r\nTo: {}\r\nCall-ID: {i}-1@127.0.0.1\r\nCSeq: 2 BYE\r\n\
             Contact: <sip:sipp@{CALLER}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            up.target, up.to
        );
        self.caller_sends(Bytes::from(bye));
        self.callee(i);
        for msg in std::mem::take(&mut self.to_caller) {
            if status(&msg) == Some(200) && row(&msg, "CSeq", "CSeq").is_some_and(|c| c.ends_with("BYE")) {
                self.counts.ok_bye_a += 1;
            }
        }
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let me: SocketAddr = ME.parse().expect("addr");
    let caller: SocketAddr = CALLER.parse().expect("addr");
    let callee: SocketAddr = CALLEE.parse().expect("addr");
    let from_callee = Flow { transport: Transport::Udp, local: me, remote: callee, connection: None };
    let target = Target {
        uri: Uri::parse_str(&format!("sip:service@{CALLEE}")).expect("uri"),
        flow: from_callee,
        media: [SocketAddr::new(me.ip(), 20000), SocketAddr::new(me.ip(), 20002)],
        codecs: [Vec::new(), Vec::new()],
        pin_flow: [false, false],
        no_answer: None,
        headers: Vec::new(),
        forks: Vec::new(),
        nat: [None, None],
        direct_setup: false,
    };
    let mut h = Harness {
        ep: Endpoint::new(EndpointConfig { listeners: vec![(Transport::Udp, me)], ..EndpointConfig::default() }),
        b2: B2bua::new(B2buaConfig { advertise: me.ip(), ports: vec![(Transport::Udp, 5060)], ..B2buaConfig::default() }),
        now: Time::ZERO,
        from_caller: Flow { transport: Transport::Udp, local: me, remote: caller, connection: None },
        from_callee,
        target,
        to_caller: Vec::new(),
        to_callee: Vec::new(),
        counts: Counts::default(),
        dump: std::env::var_os("DUMP").is_some(),
    };
    let mut held: VecDeque<Up> = VecDeque::new();
    for i in 0..n {
        h.advance(Time::from_millis(i as u64 * SPACING_MS));
        let up = h.place(i);
        h.dump = false;
        held.push_back(up);
        if held.len() > HOLD {
            let old = held.pop_front().expect("held");
            h.hang_up(old);
        }
    }
    for up in std::mem::take(&mut held) {
        let at = h.now + Duration::from_millis(SPACING_MS);
        h.advance(at);
        h.hang_up(up);
    }
    // Every transaction (Timer K, J, L …) and every call record's linger ends.
    let end = h.now + Duration::from_secs(64);
    h.advance(end);
    let c = &h.counts;
    println!(
        "calls={n} incoming={} invites_out={} 180s={} answered={} 200s={} acks_out={} byes_out={} bye_200s={} ended={} \
         negotiated={} media={} left: calls={} transactions={}",
        c.incoming,
        c.invite_b,
        c.ringing_a,
        c.answered,
        c.ok_invite_a,
        c.ack_b,
        c.bye_b,
        c.ok_bye_a,
        c.ended,
        c.negotiated,
        c.media,
        h.b2.call_count(),
        h.ep.transaction_count()
    );
    for (what, got) in [
        ("incoming calls", c.incoming),
        ("INVITEs to the callee", c.invite_b),
        ("180s to the caller", c.ringing_a),
        ("answered calls", c.answered),
        ("200s to the caller's INVITE", c.ok_invite_a),
        ("ACKs to the callee", c.ack_b),
        ("BYEs to the callee", c.bye_b),
        ("200s to the caller's BYE", c.ok_bye_a),
        ("ended calls", c.ended),
    ] {
        assert_eq!(got, n, "{what}");
    }
    assert_eq!(h.b2.active_calls(), 0, "calls still up");
    assert_eq!(h.b2.call_count(), 0, "call records left");
    assert_eq!(h.ep.transaction_count(), 0, "transactions left");
}
