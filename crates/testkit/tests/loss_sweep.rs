//! Seeds × loss rates (0, 5, 20, 50 %), with duplication and reordering on every lossy
//! link: every transaction ends as RFC 3261 §17 says, nothing above the transaction
//! layer ever sees a retransmission, and no endpoint sends more than the RFC allows.
//! A failing run prints its ladder.

use sip_core::{Endpoint, EndpointConfig, Event, Failure, Time, Timer};
use sip_message::{Host, Method, NameAddr, RequestBuilder, Uri};
use testkit::{LinkConfig, Net, NodeId};

const LOSS: [f64; 4] = [0.0, 0.05, 0.2, 0.5];
const SEEDS: u64 = 100;
/// Long enough for every transaction to end: 64·T1 for the request, then Timer D (32 s)
/// or H (64·T1) and I/K (T4) after a late response.
const END: Time = Time::from_millis(100_000);

fn setup(seed: u64, loss: f64) -> (Net, NodeId, NodeId) {
    let mut net = Net::new(seed);
    let a = net.add_node("alice", EndpointConfig::default());
    let b = net.add_node("bob", EndpointConfig::default());
    let link = if loss == 0.0 { LinkConfig::perfect() } else { LinkConfig::lossy(loss) };
    net.link(a, b, link);
    (net, a, b)
}

fn send(net: &mut Net, a: NodeId, b: NodeId, method: Method) -> sip_core::TransactionId {
    let target = net.addr(b);
    let own = net.addr(a);
    let flow = net.flow(a, b);
    let ep = net.endpoint(a);
    let req = RequestBuilder::new(method, Uri::parse_str(&format!("sip:bob@{target}")).expect("uri"))
        .from(NameAddr::new(Uri::parse_str(&format!("sip:alice@{own}")).expect("uri")))
        .via(sip_message::Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), Some(own.port()))
        .build(ep.ids())
        .expect("request");
    let tx = ep.send_request(Time::ZERO, req, flow).expect("sent");
    net.settle();
    tx
}

fn check(ok: bool, what: &str, net: &Net, seed: u64, loss: f64) {
    assert!(ok, "seed {seed}, loss {loss}: {what}\n{}", net.ladder());
}

/// The client's outcomes: final responses (status) and failures.
fn outcomes(events: &[(Time, Event)]) -> (Vec<u16>, Vec<Failure>) {
    let mut finals = Vec::new();
    let mut fails = Vec::new();
    for (_, e) in events {
        match e {
            Event::Response { response, .. } if response.status() >= 200 => finals.push(response.status()),
            Event::Failed { reason, .. } => fails.push(*reason),
            _ => {}
        }
    }
    (finals, fails)
}

#[test]
fn options_sweep() {
    for loss in LOSS {
        for seed in 0..SEEDS {
            let (mut net, a, b) = setup(seed, loss);
            send(&mut net, a, b, Method::Options);
            net.run_until(END);
            let (finals, fails) = outcomes(net.events(a));
            let c = |ok, what| check(ok, what, &net, seed, loss);
            c(finals.len() + fails.len() == 1, "exactly one outcome reaches the client's TU");
            c(finals.iter().all(|s| *s == 200) && fails.iter().all(|f| *f == Failure::Timeout(Timer::F)), "200 or Timer F");
            c(net.sent_count(a, "OPTIONS") <= 11, "at most 11 OPTIONS (Timer E, §17.1.2.2)");
            c(net.sent_count(b, "SIP/2.0 200") <= net.delivered_count(b, "OPTIONS"), "one 200 per OPTIONS copy at most");
            c(net.events(b).is_empty(), "OPTIONS never reaches the server's TU");
            c(net.live_transactions(a) == 0 && net.live_transactions(b) == 0, "every transaction ended");
            if loss == 0.0 {
                c(finals == [200] && net.sent_count(a, "OPTIONS") == 1, "a perfect link needs no retransmission");
            }
        }
    }
}

fn busy_app() -> testkit::App {
    Box::new(|now, ep: &mut Endpoint, e: &Event| {
        if let Event::Request { tx, .. } = e {
            ep.reply(now, *tx, 486, vec![]).expect("486");
        }
    })
}

#[test]
fn invite_rejected_sweep() {
    for loss in LOSS {
        for seed in 0..SEEDS {
            let (mut net, a, b) = setup(seed, loss);
            net.set_app(b, busy_app());
            send(&mut net, a, b, Method::Invite);
            net.run_until(END);
            let (finals, fails) = outcomes(net.events(a));
            let server_requests = net.events(b).iter().filter(|(_, e)| matches!(e, Event::Request { .. })).count();
            let server_h =
                net.events(b).iter().filter(|(_, e)| matches!(e, Event::ServerFailed { reason: Failure::Timeout(Timer::H), .. })).count();
            let c = |ok, what| check(ok, what, &net, seed, loss);
            c(finals.len() + fails.len() == 1, "exactly one outcome reaches the client's TU");
            c(finals.iter().all(|s| *s == 486) && fails.iter().all(|f| *f == Failure::Timeout(Timer::B)), "486 or Timer B");
            c(net.sent_count(a, "INVITE") <= 7, "at most 7 INVITEs (Timer A until B, §17.1.1.2)");
            c(net.sent_count(a, "ACK") <= net.delivered_count(a, "SIP/2.0 486"), "one ACK per 486 copy at most");
            c(net.sent_count(a, "ACK") >= finals.len(), "a received 486 is ACKed");
            c(server_requests == usize::from(net.delivered_count(b, "INVITE") > 0), "the server's TU sees the INVITE once");
            c(net.events(b).iter().all(|(_, e)| !matches!(e, Event::Ack { .. })), "the ACK of a non-2xx is absorbed");
            let max_finals = 11 + net.delivered_count(b, "INVITE");
            c(net.sent_count(b, "SIP/2.0 486") <= max_finals, "486 sent on Timer G and per INVITE copy only");
            c(server_h <= 1 && (server_h == 0 || net.delivered_count(b, "ACK") == 0), "Timer H only when no ACK arrived");
            c(net.live_transactions(a) == 0 && net.live_transactions(b) == 0, "every transaction ended");
            if loss == 0.0 {
                c(finals == [486] && server_h == 0 && net.sent_count(b, "SIP/2.0 486") == 1, "a perfect link: one 486, one ACK");
            }
        }
    }
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let (mut net, a, b) = setup(seed, 0.2);
        net.set_app(b, busy_app());
        send(&mut net, a, b, Method::Invite);
        net.run_until(END);
        net.ladder()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

/// Rings (180 at once), and answers 487 when cancelled (§9.2).
fn ringing_app() -> testkit::App {
    Box::new(|now, ep: &mut Endpoint, e: &Event| match e {
        Event::Request { tx, .. } => ep.reply(now, *tx, 180, vec![]).expect("180"),
        Event::Cancelled { tx } => ep.reply(now, *tx, 487, vec![]).expect("487"),
        _ => {}
    })
}

#[test]
fn cancel_sweep() {
    // Long enough for the server's safety net (unanswered_invite_limit, 300 s) when the
    // CANCEL never arrives, plus Timer H.
    let end = Time::from_millis(400_000);
    for loss in LOSS {
        for seed in 0..SEEDS {
            let (mut net, a, b) = setup(seed, loss);
            net.set_app(b, ringing_app());
            let tx = send(&mut net, a, b, Method::Invite);
            net.run_until(Time::from_millis(1000));
            let now = net.now();
            let cancelled = net.endpoint(a).cancel(now, tx);
            net.settle();
            net.run_until(end);
            let (finals, fails) = outcomes(net.events(a));
            let c = |ok, what| check(ok, what, &net, seed, loss);
            c(finals.len() + fails.len() == 1, "exactly one outcome reaches the client's TU");
            c(
                finals.iter().all(|s| [487, 500].contains(s))
                    && fails.iter().all(|f| matches!(f, Failure::Timeout(Timer::B) | Failure::Cancelled)),
                "487 (or the server's 500 safety net), Timer B, or cancelled after 64·T1",
            );
            // At 1 s nothing can have ended the INVITE yet (no final before the CANCEL,
            // Timer B at 32 s), so the CANCEL is always accepted.
            c(cancelled.is_ok(), "cancel accepted while the INVITE was pending");
            let first = |who: &str, what: &str, prefix: &str| {
                net.steps()
                    .iter()
                    .find(|s| s.what == what && (s.from == who || s.to == who) && s.first_line.starts_with(prefix))
                    .map(|s| s.at)
            };
            if let Some(cancel_at) = first("alice", "sent", "CANCEL") {
                let ringing_at = first("alice", "delivered", "SIP/2.0 180");
                c(ringing_at.is_some_and(|r| r <= cancel_at), "§9.1: no CANCEL before a provisional arrived");
            }
            c(net.sent_count(a, "CANCEL") <= 11, "at most 11 CANCELs (Timer E)");
            let server_requests = net.events(b).iter().filter(|(_, e)| matches!(e, Event::Request { .. })).count();
            c(server_requests <= 1, "the server's TU sees the INVITE once");
            c(net.live_transactions(a) == 0 && net.live_transactions(b) == 0, "every transaction ended");
            if loss == 0.0 {
                c(finals == [487], "a perfect link: 180, CANCEL, 200, 487, ACK");
            }
        }
    }
}
