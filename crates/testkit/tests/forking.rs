//! Parallel forking on the outbound leg, in virtual time: alice (127.0.0.1) calls through
//! sipbridge (127.0.0.2) a user registered from two phones, bob1 (127.0.0.3) and bob2
//! (127.0.0.4); both ring at once, the first 2xx wins and the other is cancelled
//! (RFC 3261 §16.7 rules, applied by the B2BUA's outbound leg). A failing run prints its
//! ladder.

use sip_core::b2bua::{B2buaConfig, CallEvent, EndReason, Side};
use sip_core::sip_message::{Method, Request};
use sip_core::{EndpointConfig, Event, Time};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::b2bua_node::{B2buaNode, Route};
use testkit::phone::{Action, Answer, Phone, Record};
use testkit::{LinkConfig, Net, NodeId};

const ALICE: &str = "127.0.0.1:5060";
const BRIDGE: &str = "127.0.0.2:5060";
const BOB1: &str = "127.0.0.3:5060";
const BOB2: &str = "127.0.0.4:5060";
const END: Time = Time::from_millis(200_000);

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn ms(t: u64) -> Time {
    Time::from_millis(t)
}

fn config() -> EndpointConfig {
    let mut c = EndpointConfig::default();
    c.allow.push(Method::Update);
    c
}

/// Rings, and answers `status` after `after` (`None`: rings until cancelled).
fn answer(after: Option<u64>, status: u16) -> Answer {
    Answer { ring_after: Some(Duration::ZERO), after: after.map(Duration::from_millis), status, fork: false }
}

struct World {
    net: Net,
    alice: NodeId,
    bridge: NodeId,
    bob1: NodeId,
    bob2: NodeId,
}

impl World {
    fn new(seed: u64, alice: Phone, bob1: Answer, bob2: Answer) -> World {
        World::with_links(seed, alice, bob1, bob2, LinkConfig::perfect())
    }

    /// bob2's link is `bob2_link`; the others are perfect.
    fn with_links(seed: u64, alice: Phone, bob1: Answer, bob2: Answer, bob2_link: LinkConfig) -> World {
        let mut net = Net::new(seed);
        let a = net.add_node("alice", config());
        let x = net.add_node("sipbridge", config());
        let b1 = net.add_node("bob1", config());
        let b2 = net.add_node("bob2", config());
        assert_eq!((net.addr(a), net.addr(b2)), (addr(ALICE), addr(BOB2)));
        net.link(a, x, LinkConfig::perfect());
        net.link(x, b1, LinkConfig::perfect());
        net.link(x, b2, bob2_link);
        net.set_app(a, Box::new(alice));
        let route = Route::Fork(vec![addr(BOB1), addr(BOB2)]);
        net.set_app(x, Box::new(B2buaNode::new(addr(BRIDGE), route, B2buaConfig { seed, ..B2buaConfig::default() })));
        net.set_app(b1, Box::new(Phone::new("bob", addr(BOB1), addr(BRIDGE), 22).answering(bob1)));
        net.set_app(b2, Box::new(Phone::new("bob", addr(BOB2), addr(BRIDGE), 33).answering(bob2)));
        World { net, alice: a, bridge: x, bob1: b1, bob2: b2 }
    }

    fn record(&mut self, n: NodeId) -> Record {
        self.net.app::<Phone>(n).expect("a phone").record.clone()
    }

    fn bridge(&mut self) -> &mut B2buaNode {
        self.net.app::<B2buaNode>(self.bridge).expect("bridge")
    }

    fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            let (a, b1, b2) = (self.record(self.alice), self.record(self.bob1), self.record(self.bob2));
            let x = format!("{:?}", self.bridge().events);
            panic!("{what}\n{}\nalice: {a:?}\nbob1: {b1:?}\nbob2: {b2:?}\nbridge: {x}", self.net.ladder());
        }
    }

    fn reason(&mut self) -> Option<EndReason> {
        self.bridge().ended().first().map(|(_, r)| r.clone())
    }

    fn ended_at(&mut self) -> Option<Time> {
        self.bridge().events.iter().find_map(|(t, e)| matches!(e, CallEvent::Ended { .. }).then_some(*t))
    }

    /// The INVITEs a phone received (retransmissions are absorbed by its transaction).
    fn invites(&self, n: NodeId) -> Vec<Request> {
        self.net
            .events(n)
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Request { request, .. } if matches!(request.method(), Method::Invite) => Some(request.clone()),
                _ => None,
            })
            .collect()
    }

    /// The phone got a CANCEL and answered its INVITE 487.
    fn cancelled(&self, n: NodeId) -> bool {
        self.net.delivered_count(n, "CANCEL ") >= 1 && self.net.sent_count(n, "SIP/2.0 487") >= 1
    }

    /// After the run: no call, no transaction left anywhere.
    fn check_clean(&mut self) {
        let calls = self.bridge().b2bua.call_count();
        self.check(calls == 0, "the call record was not reaped");
        for n in [self.alice, self.bridge, self.bob1, self.bob2] {
            let live = self.net.live_transactions(n);
            self.check(live == 0, "transactions left");
        }
    }
}

fn caller() -> Phone {
    Phone::new("alice", addr(ALICE), addr(BRIDGE), 11).at(ms(0), Action::Call("bob".into()))
}

#[test]
fn both_ring_the_first_answer_wins_and_the_other_is_cancelled() {
    let mut w = World::new(1, caller().at(ms(5000), Action::Bye), answer(Some(1000), 200), answer(None, 200));
    w.net.run_until(END);
    let (a, b1, b2) = (w.record(w.alice), w.record(w.bob1), w.record(w.bob2));
    // One INVITE per contact: same Call-ID, From tag, To, CSeq and offer; its own
    // Request-URI and branch.
    let (i1, i2) = (w.invites(w.bob1), w.invites(w.bob2));
    w.check(i1.len() == 1 && i2.len() == 1, "each phone gets one INVITE");
    let (i1, i2) = (&i1[0], &i2[0]);
    w.check(i1.call_id().as_str() == i2.call_id().as_str(), "the same Call-ID");
    w.check(i1.from().tag() == i2.from().tag() && i1.from().tag().is_some(), "the same From tag");
    w.check(i1.cseq() == i2.cseq(), "the same CSeq");
    w.check(i1.to().uri().to_string() == i2.to().uri().to_string(), "the same To");
    w.check(i1.body() == i2.body() && !i1.body().is_empty(), "the same SDP offer");
    w.check(i1.via().branch() != i2.via().branch(), "each its own branch");
    w.check(i1.uri().to_string().contains("127.0.0.3") && i2.uri().to_string().contains("127.0.0.4"), "each its own Request-URI");
    // The caller.
    w.check(a.invite_finals == vec![200], "alice gets one 200");
    w.check(a.provisionals.iter().filter(|s| **s == 180).count() == 2, "alice hears each phone's 180 once");
    w.check(a.bye_status == Some(200), "alice's BYE is answered end to end");
    // The phones.
    w.check(b1.acks_received == 1 && b1.bye_received, "bob1 answered: ACK, and the BYE at the end");
    w.check(w.cancelled(w.bob2), "bob2 gets CANCEL and answers 487");
    w.check(b2.ended && !b2.bye_received && b2.acks_received == 0, "bob2 is only cancelled");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "ended by the caller's BYE");
    let ok = w.bridge().b2bua.stats().answered == 1;
    w.check(ok, "one answered call");
    w.check_clean();
}

#[test]
fn both_refuse_the_caller_gets_the_best_answer() {
    // 486 beats 480 whichever comes first; the caller hears nothing until both answered.
    for (s1, s2) in [(486, 480), (480, 486)] {
        let mut w = World::new(2, caller(), answer(Some(300), s1), answer(Some(600), s2));
        w.net.run_until(END);
        let a = w.record(w.alice);
        w.check(a.invite_finals == vec![486], &format!("{s1} and {s2}: alice gets 486"));
        let ok = w.reason() == Some(EndReason::Rejected(486));
        w.check(ok, "ended as rejected 486");
        let at = w.ended_at().expect("ended");
        w.check(at >= ms(600), "not before the second phone answered");
        w.check(w.net.delivered_count(w.bob1, "CANCEL ") + w.net.delivered_count(w.bob2, "CANCEL ") == 0, "nothing to cancel");
        w.check_clean();
    }
}

#[test]
fn a_503_is_not_forwarded_while_another_contact_rings() {
    let mut w = World::new(3, caller().at(ms(5000), Action::Bye), answer(Some(300), 503), answer(Some(2000), 200));
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![200], "alice gets only bob2's 200");
    let b2 = w.record(w.bob2);
    w.check(b2.bye_received, "and the call works to the end");
    w.check_clean();
    // Every contact busy or timing out: a 4xx beats the 503 (made 500, §16.7).
    let mut w = World::new(3, caller(), answer(Some(300), 503), answer(Some(600), 404));
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![404], "404 over 503");
    w.check_clean();
}

#[test]
fn a_6xx_cancels_the_other_contacts() {
    let mut w = World::new(4, caller(), answer(Some(500), 603), answer(None, 200));
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![603], "alice gets 603");
    let at = w.ended_at().expect("ended");
    w.check(at < ms(600), "at once, not after the other phone");
    w.check(w.cancelled(w.bob2), "bob2 is cancelled and answers 487");
    let ok = w.reason() == Some(EndReason::Rejected(603));
    w.check(ok, "ended as rejected 603");
    w.check_clean();
}

#[test]
fn caller_cancel_cancels_every_contact() {
    let mut w = World::new(5, caller().at(ms(2000), Action::Cancel), answer(None, 200), answer(None, 200));
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![487], "alice gets 487");
    w.check(w.cancelled(w.bob1) && w.cancelled(w.bob2), "both phones get CANCEL and answer 487");
    let ok = w.reason() == Some(EndReason::Cancelled);
    w.check(ok, "ended as cancelled");
    w.check_clean();
}

#[test]
fn no_answer_limit_cancels_every_contact() {
    let mut w = World::new(6, caller(), answer(None, 200), answer(None, 200));
    w.net.set_app(
        w.bridge,
        Box::new(B2buaNode::new(
            addr(BRIDGE),
            Route::Fork(vec![addr(BOB1), addr(BOB2)]),
            B2buaConfig { seed: 6, no_answer: Duration::from_secs(20), ..B2buaConfig::default() },
        )),
    );
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![480], "alice gets 480 after the ringing limit");
    w.check(w.cancelled(w.bob1) && w.cancelled(w.bob2), "both phones are cancelled");
    let ok = w.reason() == Some(EndReason::NoAnswer);
    w.check(ok, "ended as no answer");
    w.check_clean();
}

#[test]
fn both_answer_at_nearly_the_same_time() {
    // bob1's 200 leaves at 1000 ms, bob2's at 1003 ms: bob1 wins, bob2's 200 is ACKed and
    // BYE'd at once (it crossed the CANCEL), the caller sees exactly one 200.
    let mut w = World::new(7, caller().at(ms(5000), Action::Bye), answer(Some(1000), 200), answer(Some(1003), 200));
    w.net.run_until(END);
    let (a, b1, b2) = (w.record(w.alice), w.record(w.bob1), w.record(w.bob2));
    w.check(a.invite_finals == vec![200] && a.acks_sent == 1, "alice gets exactly one 200");
    w.check(b1.acks_received == 1 && b1.bye_received, "bob1 won: ACK, then the caller's BYE");
    w.check(b2.acks_received == 1 && b2.bye_received, "bob2 lost: its 200 is ACKed and BYE'd");
    let bye_at = |r: &Record| r.requests.iter().find(|(_, m)| *m == Method::Bye).map(|(t, _)| *t);
    w.check(bye_at(&b2).is_some_and(|t| t < ms(2000)), "the loser is hung up at once");
    w.check(bye_at(&b1).is_some_and(|t| t >= ms(5000)), "the winner when the caller hangs up");
    let ok = w.bridge().b2bua.stats().answered == 1;
    w.check(ok, "one answered call");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "ended by the caller's BYE");
    w.check_clean();
}

#[test]
fn an_unreachable_contact_times_out_while_the_other_answers() {
    // bob2 is gone (no link): its INVITE times out (Timer B, 32 s) while bob1 rings; bob1
    // answers at 40 s and the call connects.
    let mut w = World::new(8, caller().at(ms(50_000), Action::Bye), answer(Some(40_000), 200), answer(None, 200));
    w.net.unlink(w.bridge, w.bob2);
    w.net.run_until(END);
    let (a, b1) = (w.record(w.alice), w.record(w.bob1));
    w.check(a.invite_finals == vec![200], "alice gets bob1's 200");
    w.check(b1.acks_received == 1 && b1.bye_received, "the call works end to end");
    let answered = w.bridge().events.iter().find_map(|(t, e)| matches!(e, CallEvent::Answered { .. }).then_some(*t));
    w.check(answered.is_some_and(|t| t >= ms(40_000)), "answered after bob2's timeout");
    w.check_clean();
    // bob1 answers before bob2's INVITE times out: bob2's CANCEL waits for a provisional
    // that never comes (§9.1) and its INVITE times out; nothing is left behind.
    let mut w = World::new(8, caller().at(ms(10_000), Action::Bye), answer(Some(1000), 200), answer(None, 200));
    w.net.unlink(w.bridge, w.bob2);
    w.net.run_until(END);
    let a = w.record(w.alice);
    w.check(a.invite_finals == vec![200] && a.bye_status == Some(200), "the call connects and ends");
    w.check_clean();
}

#[test]
fn one_contact_over_a_lossy_link() {
    for seed in 0..30 {
        let lossy = LinkConfig::lossy(0.2);
        let tag = format!("seed {seed}");
        // bob2, behind the lossy link, answers; bob1 is cancelled.
        let mut w = World::with_links(seed, caller().at(ms(20_000), Action::Bye), answer(None, 200), answer(Some(1000), 200), lossy);
        w.net.run_until(END);
        let (a, b2) = (w.record(w.alice), w.record(w.bob2));
        w.check(a.invite_finals == vec![200], &format!("{tag}: alice gets exactly one 200"));
        w.check(w.cancelled(w.bob1), &format!("{tag}: bob1 is cancelled"));
        w.check(b2.bye_received, &format!("{tag}: bob2 gets the BYE"));
        let ok = w.reason() == Some(EndReason::HangUp(Side::A));
        w.check(ok, &format!("{tag}: ended by alice"));
        w.check_clean();
        // bob1 answers; bob2, behind the lossy link, is cancelled.
        let mut w = World::with_links(seed, caller().at(ms(20_000), Action::Bye), answer(Some(1000), 200), answer(None, 200), lossy);
        w.net.run_until(END);
        let (a, b1, b2) = (w.record(w.alice), w.record(w.bob1), w.record(w.bob2));
        w.check(a.invite_finals == vec![200], &format!("{tag}: alice gets exactly one 200"));
        w.check(b1.bye_received, &format!("{tag}: bob1 gets the BYE"));
        w.check(b2.ended && !b2.established, &format!("{tag}: bob2 is cancelled"));
        w.check_clean();
        // Both answer at once (bob2 when the lossy link brought its INVITE): whichever
        // wins, the caller sees one 200, and each phone that answered is hung up in the
        // end; one that had not answered yet was cancelled.
        let mut w = World::with_links(seed, caller().at(ms(20_000), Action::Bye), answer(Some(1000), 200), answer(Some(1000), 200), lossy);
        w.net.run_until(END);
        let a = w.record(w.alice);
        w.check(a.invite_finals == vec![200], &format!("{tag}: alice gets exactly one 200"));
        for n in [w.bob1, w.bob2] {
            let b = w.record(n);
            let byes = b.requests.iter().filter(|(_, m)| *m == Method::Bye).count();
            let ok = if b.established { b.bye_received && byes == 1 } else { w.cancelled(n) };
            w.check(ok, &format!("{tag}: each phone is hung up or cancelled"));
        }
        let ok = w.bridge().b2bua.stats().answered == 1;
        w.check(ok, &format!("{tag}: one answered call"));
        w.check_clean();
    }
}
