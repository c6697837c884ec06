//! One test per RFC 3261 §17 timer rule, at exact virtual times: the engine is driven by
//! a clock that only moves to the deadline it asks for, so every send time is exact.

use bytes::Bytes;
use sip_core::{Endpoint, EndpointConfig, Event, Failure, Flow, Time, Timer, TimerConfig, Transmit, Transport};
use sip_message::{Host, Message, Method, NameAddr, RequestBuilder, Response, Uri};
use std::time::Duration;

fn flow(t: Transport) -> Flow {
    Flow {
        transport: t,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "127.0.0.1:5070".parse().expect("addr"),
        connection: if t.is_reliable() { Some(sip_core::ConnectionId(1)) } else { None },
    }
}

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig { listeners: vec![(Transport::Udp, "127.0.0.1:5060".parse().expect("addr"))], ..Default::default() })
}

fn request(ep: &mut Endpoint, method: Method, t: Transport) -> sip_message::Request {
    RequestBuilder::new(method, Uri::parse_str("sip:bob@127.0.0.1:5070").expect("uri"))
        .from(NameAddr::new(Uri::parse_str("sip:alice@127.0.0.1").expect("uri")))
        .via(t.to_message(), Host::Ipv4([127, 0, 0, 1].into()), Some(5060))
        .build(ep.ids())
        .expect("request")
}

/// What the engine did, with the virtual time it did it at.
#[derive(Default)]
struct Log {
    sent: Vec<(u64, Bytes)>,
    events: Vec<(u64, Event)>,
}

impl Log {
    fn drain(&mut self, ep: &mut Endpoint, now: Time) {
        loop {
            let mut any = false;
            while let Some(t) = ep.poll_transmit() {
                any = true;
                if let Transmit::Send { payload, .. } = t {
                    self.sent.push((now.as_millis(), payload));
                }
            }
            while let Some(e) = ep.poll_event() {
                any = true;
                self.events.push((now.as_millis(), e));
            }
            if !any {
                return;
            }
        }
    }

    /// Runs the clock from deadline to deadline until `until` (ms) or until nothing is due.
    fn run_until(&mut self, ep: &mut Endpoint, until: u64) {
        while let Some(at) = ep.poll_timeout() {
            if at.as_millis() > until {
                break;
            }
            ep.handle_timeout(at);
            self.drain(ep, at);
        }
    }

    fn send_times(&self, starts_with: &str) -> Vec<u64> {
        self.sent.iter().filter(|(_, b)| b.starts_with(starts_with.as_bytes())).map(|(t, _)| *t).collect()
    }
}

fn response_to(req: &sip_message::Request, status: u16) -> Bytes {
    req.reply(status).to_tag("callee").build(&mut sip_message::SeededIds::new(9)).expect("response").to_bytes()
}

fn parse_request(b: &Bytes) -> sip_message::Request {
    match Message::parse(b.clone()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn invite_client_over_udp_all_lost_timer_a_then_b() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Invite, Transport::Udp);
    let tx = ep.send_request(Time::ZERO, req, flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 100_000);
    assert_eq!(log.send_times("INVITE"), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(log.events.len(), 1);
    assert!(matches!(log.events[0], (32000, Event::Failed { tx: t, reason: Failure::Timeout(Timer::B) }) if t == tx));
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn invite_client_over_tcp_sends_once_and_times_out_at_64_t1() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Invite, Transport::Tcp);
    ep.send_request(Time::ZERO, req, flow(Transport::Tcp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 100_000);
    assert_eq!(log.send_times("INVITE"), [0]);
    assert!(matches!(log.events[..], [(32000, Event::Failed { reason: Failure::Timeout(Timer::B), .. })]));
}

#[test]
fn non_invite_client_over_udp_all_lost_timer_e_capped_at_t2_then_f() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Options, Transport::Udp);
    ep.send_request(Time::ZERO, req, flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 100_000);
    let times = log.send_times("OPTIONS");
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert_eq!(times.len(), 11);
    assert!(times.windows(2).all(|w| w[1] - w[0] <= 4000), "intervals capped at T2");
    assert!(matches!(log.events[..], [(32000, Event::Failed { reason: Failure::Timeout(Timer::F), .. })]));
}

#[test]
fn non_invite_client_after_provisional_retransmits_every_t2() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Options, Transport::Udp);
    ep.send_request(Time::ZERO, req.clone(), flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 1000); // sends at 0 and 500
    let t = Time::from_millis(1000);
    ep.handle_datagram(t, flow(Transport::Udp), response_to(&req, 100));
    log.drain(&mut ep, t);
    log.run_until(&mut ep, 100_000);
    // Timer E keeps its 1 s deadline from 500 ms (fires at 1500), then every T2.
    assert_eq!(log.send_times("OPTIONS"), [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]);
    let kinds: Vec<_> = log.events.iter().map(|(t, e)| (*t, matches!(e, Event::Response { .. }))).collect();
    assert_eq!(kinds, [(1000, true), (32000, false)]);
}

#[test]
fn non_invite_client_completed_absorbs_then_timer_k() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Options, Transport::Udp);
    let tx = ep.send_request(Time::ZERO, req.clone(), flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    let ok = response_to(&req, 200);
    ep.handle_datagram(Time::from_millis(100), flow(Transport::Udp), ok.clone());
    log.drain(&mut ep, Time::from_millis(100));
    assert_eq!(ep.transaction_state(tx), Some("Completed"));
    ep.handle_datagram(Time::from_millis(200), flow(Transport::Udp), ok); // retransmitted 200: absorbed
    log.drain(&mut ep, Time::from_millis(200));
    assert_eq!(log.events.len(), 1);
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(5100)), "Timer K = T4");
    log.run_until(&mut ep, 100_000);
    assert_eq!(ep.transaction_state(tx), None);
    assert_eq!(log.send_times("OPTIONS"), [0], "no retransmission after the final");
}

#[test]
fn invite_client_non_2xx_is_acked_and_reacked_until_timer_d() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Invite, Transport::Udp);
    let tx = ep.send_request(Time::ZERO, req.clone(), flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    let busy = response_to(&req, 486);
    for t in [100, 600, 1600] {
        ep.handle_datagram(Time::from_millis(t), flow(Transport::Udp), busy.clone());
        log.drain(&mut ep, Time::from_millis(t));
    }
    assert_eq!(log.send_times("ACK"), [100, 600, 1600], "§17.1.1.2: every copy of the final is ACKed");
    assert_eq!(log.events.iter().filter(|(_, e)| matches!(e, Event::Response { .. })).count(), 1);
    let ack = parse_request(&log.sent.iter().find(|(_, b)| b.starts_with(b"ACK")).expect("ack").1);
    // §17.1.1.3: same branch, R-URI, From, Call-ID, CSeq number; To from the response.
    assert_eq!(ack.via().branch(), req.via().branch());
    assert_eq!(ack.uri(), req.uri());
    assert_eq!(ack.cseq().seq, req.cseq().seq);
    assert_eq!(ack.cseq().method, Method::Ack);
    assert_eq!(ack.to().tag(), Some("callee"));
    assert_eq!(ack.call_id(), req.call_id());
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(32100)), "Timer D = 32 s on UDP");
    log.run_until(&mut ep, 100_000);
    assert_eq!(ep.transaction_state(tx), None);
    assert_eq!(log.send_times("INVITE"), [0], "no INVITE retransmission once a response arrived");
}

#[test]
fn invite_client_2xx_goes_to_accepted_and_passes_retransmissions_until_timer_m() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let req = request(&mut ep, Method::Invite, Transport::Udp);
    let tx = ep.send_request(Time::ZERO, req.clone(), flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    let ok = response_to(&req, 200);
    ep.handle_datagram(Time::from_millis(100), flow(Transport::Udp), ok.clone());
    log.drain(&mut ep, Time::from_millis(100));
    assert_eq!(ep.transaction_state(tx), Some("Accepted"));
    ep.handle_datagram(Time::from_millis(600), flow(Transport::Udp), ok);
    log.drain(&mut ep, Time::from_millis(600));
    // RFC 6026 §8.4: both copies go up (the dialog ACKs each); the transaction sends no ACK.
    assert_eq!(log.events.iter().filter(|(_, e)| matches!(e, Event::Response { .. })).count(), 2);
    assert!(log.send_times("ACK").is_empty());
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(32100)), "Timer M = 64·T1");
    log.run_until(&mut ep, 100_000);
    assert_eq!(ep.transaction_state(tx), None);
}

/// A UDP INVITE arriving at the server: returns the endpoint, the log and the request.
fn incoming_invite(t: Transport) -> (Endpoint, Log, sip_message::Request, sip_core::TransactionId) {
    let mut ep = endpoint();
    let mut log = Log::default();
    let mut other = Endpoint::new(EndpointConfig { seed: 77, ..Default::default() });
    let req = request(&mut other, Method::Invite, t);
    ep.handle_datagram(Time::ZERO, flow(t), req.to_bytes());
    log.drain(&mut ep, Time::ZERO);
    let tx = match &log.events[..] {
        [(0, Event::Request { tx, .. })] => *tx,
        other => panic!("expected one request event, got {}", other.len()),
    };
    (ep, log, req, tx)
}

#[test]
fn invite_server_sends_100_trying_after_200_ms_without_tu_answer() {
    let (mut ep, mut log, _req, tx) = incoming_invite(Transport::Udp);
    assert!(log.sent.is_empty());
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(200)));
    log.run_until(&mut ep, 200);
    assert_eq!(log.send_times("SIP/2.0 100 Trying"), [200]);
    assert_eq!(ep.transaction_state(tx), Some("Proceeding"));
}

#[test]
fn invite_server_no_100_when_tu_answers_in_time() {
    let (mut ep, mut log, _req, tx) = incoming_invite(Transport::Udp);
    ep.reply(Time::from_millis(150), tx, 180, vec![]).expect("180");
    log.drain(&mut ep, Time::from_millis(150));
    log.run_until(&mut ep, 1000);
    assert!(log.send_times("SIP/2.0 100").is_empty());
    assert_eq!(log.send_times("SIP/2.0 180"), [150]);
}

#[test]
fn invite_server_retransmits_final_on_timer_g_until_timer_h() {
    let (mut ep, mut log, _req, tx) = incoming_invite(Transport::Udp);
    ep.reply(Time::from_millis(10), tx, 404, vec![]).expect("404");
    log.drain(&mut ep, Time::from_millis(10));
    log.run_until(&mut ep, 100_000);
    // Timer G: T1, doubling, capped at T2; Timer H at 64·T1 after the final.
    let expected: Vec<u64> = vec![10, 510, 1510, 3510, 7510, 11510, 15510, 19510, 23510, 27510, 31510];
    assert_eq!(log.send_times("SIP/2.0 404"), expected);
    assert!(matches!(log.events.last(), Some((32010, Event::ServerFailed { reason: Failure::Timeout(Timer::H), .. }))));
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn invite_server_ack_stops_timer_g_and_timer_i_ends_confirmed() {
    let (mut ep, mut log, req, tx) = incoming_invite(Transport::Udp);
    ep.reply(Time::ZERO, tx, 486, vec![]).expect("486");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 1600); // 486 at 0, 500, 1500
    let resp = match Message::parse(log.sent[0].1.clone()) {
        Ok(Message::Response(r)) => r,
        _ => panic!("response"),
    };
    let ack = ack_for(&req, &resp);
    ep.handle_datagram(Time::from_millis(1700), flow(Transport::Udp), ack.clone());
    log.drain(&mut ep, Time::from_millis(1700));
    assert_eq!(ep.transaction_state(tx), Some("Confirmed"));
    ep.handle_datagram(Time::from_millis(1800), flow(Transport::Udp), ack); // retransmitted ACK: absorbed
    log.drain(&mut ep, Time::from_millis(1800));
    assert!(log.events.iter().all(|(_, e)| !matches!(e, Event::Ack { .. })), "ACK for a non-2xx never goes up");
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(6700)), "Timer I = T4");
    log.run_until(&mut ep, 100_000);
    assert_eq!(log.send_times("SIP/2.0 486"), [0, 500, 1500]);
    assert_eq!(ep.transaction_state(tx), None);
}

fn ack_for(req: &sip_message::Request, resp: &Response) -> Bytes {
    let text = format!(
        "ACK {} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        req.uri(),
        req.via(),
        req.from(),
        resp.to(),
        req.call_id(),
        req.cseq().seq
    );
    Bytes::from(text)
}

#[test]
fn invite_server_2xx_accepted_absorbs_invite_retransmissions_until_timer_l() {
    let (mut ep, mut log, req, tx) = incoming_invite(Transport::Udp);
    ep.reply(Time::from_millis(50), tx, 200, vec![]).expect("200");
    log.drain(&mut ep, Time::from_millis(50));
    assert_eq!(ep.transaction_state(tx), Some("Accepted"));
    ep.handle_datagram(Time::from_millis(500), flow(Transport::Udp), req.to_bytes());
    log.drain(&mut ep, Time::from_millis(500));
    assert_eq!(log.send_times("SIP/2.0 200"), [50], "the transaction does not retransmit a 2xx itself");
    assert_eq!(log.events.len(), 1, "the retransmitted INVITE never reaches the TU");
    ep.reply(Time::from_millis(550), tx, 200, vec![]).expect("TU retransmits its 2xx through Accepted");
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(32050)), "Timer L = 64·T1");
    log.run_until(&mut ep, 100_000);
    assert_eq!(ep.transaction_state(tx), None);
}

#[test]
fn invite_server_over_tcp_has_no_timer_g_and_zero_timer_i() {
    let (mut ep, mut log, req, tx) = incoming_invite(Transport::Tcp);
    ep.reply(Time::ZERO, tx, 404, vec![]).expect("404");
    log.drain(&mut ep, Time::ZERO);
    let resp = match Message::parse(log.sent[0].1.clone()) {
        Ok(Message::Response(r)) => r,
        _ => panic!("response"),
    };
    log.run_until(&mut ep, 1000);
    assert_eq!(log.send_times("SIP/2.0 404"), [0], "no Timer G on a reliable transport");
    ep.handle_stream(Time::from_millis(1000), flow(Transport::Tcp), &ack_for(&req, &resp));
    log.drain(&mut ep, Time::from_millis(1000));
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(1000)), "Timer I = 0 on TCP");
    log.run_until(&mut ep, 1000);
    assert_eq!(ep.transaction_state(tx), None);
}

#[test]
fn non_invite_server_absorbs_then_replays_final_until_timer_j() {
    let mut ep = endpoint();
    let mut log = Log::default();
    let mut other = Endpoint::new(EndpointConfig { seed: 5, ..Default::default() });
    let req = request(&mut other, Method::Bye, Transport::Udp);
    ep.handle_datagram(Time::ZERO, flow(Transport::Udp), req.to_bytes());
    log.drain(&mut ep, Time::ZERO);
    let tx = match &log.events[..] {
        [(_, Event::Request { tx, .. })] => *tx,
        _ => panic!("one request"),
    };
    // Trying: a retransmission before any answer is absorbed silently.
    ep.handle_datagram(Time::from_millis(500), flow(Transport::Udp), req.to_bytes());
    log.drain(&mut ep, Time::from_millis(500));
    assert!(log.sent.is_empty());
    ep.reply(Time::from_millis(600), tx, 481, vec![]).expect("481");
    log.drain(&mut ep, Time::from_millis(600));
    ep.handle_datagram(Time::from_millis(1500), flow(Transport::Udp), req.to_bytes());
    log.drain(&mut ep, Time::from_millis(1500));
    let finals = log.send_times("SIP/2.0 481");
    assert_eq!(finals, [600, 1500]);
    assert_eq!(log.sent[0].1, log.sent[1].1, "the very same response, same To tag");
    assert_eq!(log.events.len(), 1);
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(32600)), "Timer J = 64·T1");
    log.run_until(&mut ep, 100_000);
    assert_eq!(ep.transaction_state(tx), None);
    assert_eq!(ep.stats().retransmissions_absorbed, 2);
}

#[test]
fn timer_base_comes_from_config() {
    let timers = TimerConfig { t1: Duration::from_millis(100), t2: Duration::from_millis(400), t4: Duration::from_secs(1) };
    let mut ep = Endpoint::new(EndpointConfig { timers, ..Default::default() });
    let mut log = Log::default();
    let req = request(&mut ep, Method::Options, Transport::Udp);
    ep.send_request(Time::ZERO, req, flow(Transport::Udp)).expect("sent");
    log.drain(&mut ep, Time::ZERO);
    log.run_until(&mut ep, 100_000);
    let times = log.send_times("OPTIONS");
    assert_eq!(&times[..5], [0, 100, 300, 700, 1100]);
    assert!(matches!(log.events[..], [(6400, Event::Failed { .. })]), "Timer F = 64·T1 = 6.4 s");
}
