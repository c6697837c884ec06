//! Qualify (OPTIONS keep-alives) across the virtual network: sipbridge (127.0.0.1)
//! qualifies bob (127.0.0.2), whose endpoint answers OPTIONS itself (§11.2) unless a
//! test says otherwise. A failing run prints its ladder.

#![allow(clippy::unwrap_used)]

use sip_core::qualify::{QualifyConfig, QualifyEvent, State, Target};
use sip_core::sip_message::Uri;
use sip_core::{EndpointConfig, Event, Time};
use std::time::Duration;
use testkit::qualify_node::QualifyNode;
use testkit::{LinkConfig, Net, NodeId};

const SECOND: Duration = Duration::from_secs(1);

struct World {
    net: Net,
    bridge: NodeId,
    bob: NodeId,
}

impl World {
    fn new(seed: u64, link: LinkConfig, bob: EndpointConfig, jitter: Duration) -> World {
        let mut net = Net::new(seed);
        let x = net.add_node("sipbridge", EndpointConfig::default());
        let b = net.add_node("bob", bob);
        net.link(x, b, link);
        let cfg = QualifyConfig { seed, start_jitter: jitter, ..QualifyConfig::default() };
        let mut node = QualifyNode::new(net.addr(x), cfg);
        let target = Target { uri: Uri::parse_str(&format!("sip:bob@{}", net.addr(b))).unwrap(), flow: net.flow(x, b) };
        node.qualifier.add(Time::ZERO, "bob".into(), target, 60 * SECOND, 2 * SECOND);
        net.set_app(x, Box::new(node));
        World { net, bridge: x, bob: b }
    }

    fn node(&mut self) -> &mut QualifyNode {
        self.net.app::<QualifyNode>(self.bridge).unwrap()
    }

    fn changes(&mut self) -> Vec<(u64, State, State, Option<Duration>)> {
        self.node().changes.iter().map(|(t, QualifyEvent::StateChanged { from, to, rtt, .. })| (t.as_millis(), *from, *to, *rtt)).collect()
    }

    fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            let c = self.changes();
            panic!("{what}\n{}\nchanges: {c:?}", self.net.ladder());
        }
    }
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d)
}

#[test]
fn reachable_over_a_lossy_link_and_only_the_transaction_layer_retransmits() {
    for seed in 0..20 {
        let mut w = World::new(seed, LinkConfig::lossy(0.2), EndpointConfig::default(), SECOND);
        w.net.run_until(Time::from_millis(599_000));
        let changes = w.changes();
        let never_unreachable = changes.iter().all(|c| c.2 != State::Unreachable);
        w.check(never_unreachable && !changes.is_empty(), &format!("seed {seed}: reachable throughout"));
        // First OPTIONS within the first second, then every 60 s: ten OPTIONS, ten
        // transactions; every other copy on the wire is a Timer E retransmission.
        let txs = w.net.endpoint(w.bridge).stats().transactions;
        let sent = w.net.sent_count(w.bridge, "OPTIONS");
        w.check(txs == 10 && (10..=110).contains(&sent), &format!("seed {seed}: {txs} transactions, {sent} OPTIONS sent"));
        let bridge = w.bridge;
        let first = w.net.steps().iter().find(|s| s.what == "sent" && s.from == "sipbridge").map(|s| s.at).unwrap();
        w.check(first < Time::from_millis(1000), &format!("seed {seed}: first OPTIONS at {first}"));
        let clean = w.node().passed.is_empty() && w.net.live_transactions(bridge) <= 1;
        w.check(clean, "nothing leaks");
    }
}

#[test]
fn peer_answering_404_is_reachable() {
    let bob = EndpointConfig { answer_options: false, ..EndpointConfig::default() };
    let mut w = World::new(1, LinkConfig::perfect(), bob, Duration::ZERO);
    w.net.set_app(
        w.bob,
        Box::new(|now: Time, ep: &mut sip_core::Endpoint, e: &Event| {
            if let Event::Request { tx, .. } = e {
                let _ = ep.reply(now, *tx, 404, Vec::new());
            }
        }),
    );
    w.net.run_until(Time::from_millis(61_000));
    assert_eq!(w.changes(), [(20, State::Unknown, State::Reachable, Some(ms(20)))]);
    assert_eq!(w.net.sent_count(w.bridge, "OPTIONS"), 2);
    assert_eq!(w.net.sent_count(w.bob, "SIP/2.0 404"), 2);
}

#[test]
fn slow_link_is_lagged() {
    let slow = LinkConfig { min_delay: ms(1100), max_delay: ms(1100), ..LinkConfig::perfect() };
    let mut w = World::new(1, slow, EndpointConfig::default(), Duration::ZERO);
    w.net.run_until(Time::from_millis(10_000));
    assert_eq!(w.changes(), [(2200, State::Unknown, State::Lagged, Some(ms(2200)))]);
    // Copies at 0, 0.5 and 1.5 s (Timer E) before the 200 arrived; bob absorbed two.
    assert_eq!(w.net.sent_count(w.bridge, "OPTIONS"), 3);
    assert_eq!(w.net.endpoint(w.bob).stats().retransmissions_absorbed, 2);
}

#[test]
fn vanished_peer_is_unreachable_at_timer_f_and_comes_back() {
    let mut w = World::new(1, LinkConfig::perfect(), EndpointConfig::default(), Duration::ZERO);
    let (x, b) = (w.bridge, w.bob);
    w.net.run_until(Time::from_millis(100_000));
    w.net.unlink(x, b);
    w.net.link(x, b, LinkConfig { loss: 1.0, ..LinkConfig::perfect() });
    w.net.run_until(Time::from_millis(151_999));
    assert_eq!(w.net.sent_count(x, "OPTIONS"), 2 + 11, "the OPTIONS of 120 s: Timer E's 11 copies");
    w.net.run_until(Time::from_millis(200_000));
    w.net.unlink(x, b);
    w.net.link(x, b, LinkConfig::perfect());
    w.net.run_until(Time::from_millis(260_000));
    // Back at 200 s: the first answer is to the 201.5 s retransmission of the OPTIONS of
    // 182 s (round trip counted from its first send: 19.52 s, Lagged); the one of 192 s
    // is answered at 203.52 s; 60 s after that send a fresh OPTIONS finds it fast again.
    let changes = w.changes();
    let want = [
        (20, State::Unknown, State::Reachable, Some(ms(20))),
        (152_000, State::Reachable, State::Unreachable, None),
        (201_520, State::Unreachable, State::Lagged, Some(ms(19_520))),
        (252_020, State::Lagged, State::Reachable, Some(ms(20))),
    ];
    w.check(changes == want, "state changes");
    assert_eq!(w.node().qualifier.state("bob"), Some((State::Reachable, Some(ms(20)))));
}
