//! Heap bytes per established call in the sans-IO core (endpoint + B2BUA), counted by
//! `stats_alloc`'s counting allocator: N calls are set up by hand-made datagrams (caller INVITE
//! with SDP, callee 180 then 200 with SDP, caller ACK), then time runs 40 s so their INVITE
//! transactions end (Timer L) and what is left is what an established call holds.
//!
//!     cargo run --release -p sip-core --example call_memory -- 10000

use bytes::Bytes;
use sip_core::b2bua::{B2bua, B2buaConfig, CallEvent, Target};
use sip_core::sip_message::{Message, Uri};
use sip_core::{Endpoint, EndpointConfig, Flow, Time, Transmit, Transport};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

const ME: &str = "127.0.0.10:5060";
const CALLER: &str = "127.0.0.2:5062";
const CALLEE: &str = "127.0.0.3:5064";

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
    )
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let me: SocketAddr = ME.parse().expect("addr");
    let caller: SocketAddr = CALLER.parse().expect("addr");
    let callee: SocketAddr = CALLEE.parse().expect("addr");
    let mut ep = Endpoint::new(EndpointConfig { listeners: vec![(Transport::Udp, me)], ..EndpointConfig::default() });
    let mut b2 = B2bua::new(B2buaConfig { advertise: me.ip(), ports: vec![(Transport::Udp, 5060)], ..B2buaConfig::default() });
    let from_caller = Flow { transport: Transport::Udp, local: me, remote: caller, connection: None };
    let from_callee = Flow { transport: Transport::Udp, local: me, remote: callee, connection: None };
    if std::env::var_os("SIZES").is_some() {
        let b = sdp("127.0.0.2", 30000);
        let l0 = live();
        let v: Vec<_> = (0..1000).map(|_| sip_core::sdp::SessionDescription::parse(b.as_bytes()).expect("sdp")).collect();
        println!("one parsed SDP: {} bytes", (live() - l0) / 1000);
        drop(v);
        let inv = format!(
            "INVITE sip:bob@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-a1\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@127.0.0.2:5062>;tag=a1\r\nTo: <sip:bob@{ME}>\r\nCall-ID: call-1@127.0.0.2\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:alice@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        );
        let l0 = live();
        let v: Vec<_> = (0..1000).map(|_| Message::parse(Bytes::from(inv.clone())).expect("msg")).collect();
        println!("one parsed INVITE ({} bytes on the wire): {} bytes", inv.len(), (live() - l0) / 1000);
        drop(v);
    }
    let mut now = Time::ZERO;
    let base = live();
    let mut out: Vec<Bytes> = Vec::new();
    let pump = |now: Time, ep: &mut Endpoint, b2: &mut B2bua, out: &mut Vec<Bytes>| loop {
        let mut any = false;
        while let Some(t) = ep.poll_transmit() {
            any = true;
            if let Transmit::Send { payload, .. } = t {
                out.push(payload);
            }
        }
        while let Some(e) = ep.poll_event() {
            any = true;
            let _ = b2.handle_event(now, ep, e);
        }
        while let Some(e) = b2.poll_event() {
            any = true;
            if let CallEvent::Incoming(inc) = e {
                let t = Target {
                    uri: Uri::parse_str(&format!("sip:bob@{CALLEE}")).expect("uri"),
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
                b2.route(now, ep, inc.call, t).expect("routed");
            }
        }
        if !any {
            return;
        }
    };
    for i in 0..n {
        now = Time::from_millis(i as u64);
        let body = sdp("127.0.0.2", 30000);
        let invite = format!(
            "INVITE sip:bob@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-a{i}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@127.0.0.2:5062>;tag=a{i}\r\nTo: <sip:bob@{ME}>\r\nCall-ID: call-{i}@127.0.0.2\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:alice@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        ep.handle_datagram(now, from_caller, Bytes::from(invite));
        pump(now, &mut ep, &mut b2, &mut out);
        // The INVITE to the callee: answer it 200 with SDP.
        let sent = out.drain(..).filter_map(|b| Message::parse(b).ok()).find_map(|m| match m {
            Message::Request(r) if r.method().as_str() == "INVITE" => Some(r),
            _ => None,
        });
        let inv = sent.expect("the outbound INVITE");
        // It rings first, as phones (and SIPp's UAS) do: a 180 with the callee's tag makes
        // the early dialog that the 200 then confirms.
        let ringing = inv.reply(180).to_tag(&format!("b{i}")).build(&mut sip_core::sip_message::SeededIds::new(i as u64)).expect("180");
        ep.handle_datagram(now, from_callee, ringing.to_bytes());
        pump(now, &mut ep, &mut b2, &mut out);
        out.clear();
        let body = sdp("127.0.0.3", 40000);
        let ok = inv
            .reply(200)
            .to_tag(&format!("b{i}"))
            .header(sip_core::sip_message::Header::new(
                sip_core::sip_message::HeaderName::Contact,
                Bytes::from(format!("<sip:bob@{CALLEE}>")),
            ))
            .body("application/sdp", Bytes::from(body))
            .build(&mut sip_core::sip_message::SeededIds::new(i as u64))
            .expect("200");
        ep.handle_datagram(now, from_callee, ok.to_bytes());
        pump(now, &mut ep, &mut b2, &mut out);
        // The 200 to the caller: ACK it.
        let to_tag = out.drain(..).filter_map(|b| Message::parse(b).ok()).find_map(|m| match m {
            Message::Response(r) if r.status() == 200 => r.to().tag().map(str::to_owned),
            _ => None,
        });
        let tag = to_tag.expect("the 200 to the caller");
        let ack = format!(
            "ACK sip:sipbridge@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-ack{i}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@127.0.0.2:5062>;tag=a{i}\r\nTo: <sip:bob@{ME}>;tag={tag}\r\nCall-ID: call-{i}@127.0.0.2\r\n\
             CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        ep.handle_datagram(now, from_caller, Bytes::from(ack));
        pump(now, &mut ep, &mut b2, &mut out);
        out.clear();
    }
    let with_transactions = live() - base;
    // 40 s later: Timer L has ended every INVITE transaction.
    let end = now + std::time::Duration::from_secs(40);
    while let Some(t) = [ep.poll_timeout(), b2.poll_timeout()].into_iter().flatten().min().filter(|t| *t <= end) {
        now = t.max(now);
        ep.handle_timeout(now);
        b2.handle_timeout(now, &mut ep);
        pump(now, &mut ep, &mut b2, &mut out);
        out.clear();
    }
    let established = live() - base;
    println!(
        "calls={n} active={} transactions={} bytes_per_call_with_invite_transactions={} bytes_per_call_established={}",
        b2.active_calls(),
        ep.transaction_count(),
        with_transactions / n as isize,
        established / n as isize
    );
    if std::env::var_os("EXIT_LIVE").is_some() {
        // For a heap profiler (`valgrind --tool=dhat`): what is live at exit is what the
        // established calls hold, by allocation site.
        out.shrink_to_fit();
        std::process::exit(0);
    }
}
