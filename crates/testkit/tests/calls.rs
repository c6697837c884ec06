//! B2BUA call scenarios in virtual time: alice (127.0.0.1) calls through sipbridge
//! (127.0.0.2) to bob (127.0.0.3). Each test checks both legs end to end; the lossy ones
//! sweep seeds. A failing run prints its ladder.

use sip_core::b2bua::{B2buaConfig, CallEvent, EndReason, Side};
use sip_core::sip_message::Method;
use sip_core::{EndpointConfig, Time};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::b2bua_node::{B2buaNode, Route};
use testkit::phone::{Action, Answer, Phone};
use testkit::{LinkConfig, Net, NodeId};

const ALICE: &str = "127.0.0.1:5060";
const BRIDGE: &str = "127.0.0.2:5060";
const BOB: &str = "127.0.0.3:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn ms(t: u64) -> Time {
    Time::from_millis(t)
}

fn config() -> EndpointConfig {
    let mut c = EndpointConfig::default();
    c.allow.push(Method::Update);
    c.allow.push(Method::Info);
    c.supported.push("timer".into());
    c
}

struct World {
    net: Net,
    alice: NodeId,
    bridge: NodeId,
    bob: NodeId,
}

impl World {
    fn new(seed: u64, link: LinkConfig, alice: Phone, bob: Phone, route: Route) -> World {
        World::with_config(seed, link, alice, bob, route, B2buaConfig::default())
    }

    fn with_config(seed: u64, link: LinkConfig, alice: Phone, bob: Phone, route: Route, cfg: B2buaConfig) -> World {
        let mut net = Net::new(seed);
        let a = net.add_node("alice", config());
        let x = net.add_node("sipbridge", config());
        let b = net.add_node("bob", config());
        assert_eq!(net.addr(a), addr(ALICE));
        net.link(a, x, link);
        net.link(x, b, link);
        net.set_app(a, Box::new(alice));
        net.set_app(x, Box::new(B2buaNode::new(addr(BRIDGE), route, B2buaConfig { seed, ..cfg })));
        net.set_app(b, Box::new(bob));
        World { net, alice: a, bridge: x, bob: b }
    }

    fn alice(&mut self) -> &mut Phone {
        self.net.app::<Phone>(self.alice).expect("alice")
    }
    fn bob(&mut self) -> &mut Phone {
        self.net.app::<Phone>(self.bob).expect("bob")
    }
    fn bridge(&mut self) -> &mut B2buaNode {
        self.net.app::<B2buaNode>(self.bridge).expect("bridge")
    }

    fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            let (a, b) = (self.alice().record.clone(), self.bob().record.clone());
            let x = format!("{:?}", self.bridge().events);
            panic!("{what}\n{}\nalice: {a:?}\nbob: {b:?}\nbridge: {x}", self.net.ladder());
        }
    }

    fn reason(&mut self) -> Option<EndReason> {
        self.bridge().ended().first().map(|(_, r)| r.clone())
    }

    /// After the run: no call, no transaction left anywhere.
    fn check_clean(&mut self) {
        let calls = self.bridge().b2bua.call_count();
        self.check(calls == 0, "the call record was not reaped");
        for n in [self.alice, self.bridge, self.bob] {
            let live = self.net.live_transactions(n);
            self.check(live == 0, "transactions left");
        }
    }
}

fn caller() -> Phone {
    Phone::new("alice", addr(ALICE), addr(BRIDGE), 11)
}

fn callee(answer: Answer) -> Phone {
    Phone::new("bob", addr(BOB), addr(BRIDGE), 22).answering(answer)
}

fn to_bob() -> Route {
    Route::To(addr(BOB))
}

const END: Time = Time::from_millis(200_000);

#[test]
fn basic_call_bye_from_the_caller() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Bye);
    let mut w = World::new(1, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.invite_finals == vec![200], "alice gets one 200");
    w.check(a.provisionals.contains(&180), "alice hears the 180");
    w.check(a.bye_status == Some(200), "alice's BYE is answered 200");
    w.check(b.bye_received && b.acks_received == 1, "bob gets the ACK and the BYE");
    // Both legs' SDP point at the relay, never at the other phone.
    let bob_sdp = b.remote_sdp.unwrap_or_default();
    w.check(bob_sdp.contains("c=IN IP4 127.0.0.2") && bob_sdp.contains("m=audio 20002 "), "bob's SDP points at the relay's B side");
    w.check(!bob_sdp.contains("127.0.0.1"), "bob never sees alice's address");
    let alice_sdp = a.remote_sdp.unwrap_or_default();
    w.check(alice_sdp.contains("c=IN IP4 127.0.0.2") && alice_sdp.contains("m=audio 20000 "), "alice's SDP points at the relay's A side");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "ended by the caller's BYE");
    let medias: Vec<(Side, Option<SocketAddr>)> = w
        .bridge()
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::Media { side, remote, .. } => Some((*side, *remote)),
            _ => None,
        })
        .collect();
    w.check(
        medias.contains(&(Side::A, Some(addr("127.0.0.1:40000")))) && medias.contains(&(Side::B, Some(addr("127.0.0.3:40000")))),
        "the relay learns both phones' media addresses",
    );
    w.check_clean();
}

#[test]
fn topology_is_hidden_on_the_outbound_leg() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(3000), Action::Bye);
    let mut w = World::new(2, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_millis(500))), to_bob());
    w.net.run_until(END);
    let bob_dialog = w.bob().dialog().cloned().expect("bob has a dialog");
    let alice_dialog = w.alice().dialog().cloned().expect("alice has a dialog");
    w.check(bob_dialog.call_id() != alice_dialog.call_id(), "each leg has its own Call-ID");
    w.check(bob_dialog.remote_target().to_string().contains("127.0.0.2"), "bob's remote target is sipbridge");
    w.check(bob_dialog.remote_uri().uri().to_string().contains("alice@127.0.0.2"), "bob sees the caller's user at our host");
}

#[test]
fn bye_from_the_callee() {
    let alice = caller().at(ms(0), Action::Call("bob".into()));
    let bob = callee(Answer::ok_after(Duration::from_secs(1))).at(ms(4000), Action::Bye);
    let mut w = World::new(3, LinkConfig::perfect(), alice, bob, to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.bye_received, "alice gets the BYE");
    w.check(b.bye_status == Some(200), "bob's BYE is answered");
    let ok = w.reason() == Some(EndReason::HangUp(Side::B));
    w.check(ok, "ended by the callee's BYE");
    w.check_clean();
}

#[test]
fn cancel_before_the_answer() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(2000), Action::Cancel);
    let bob = callee(Answer { ring_after: Some(Duration::ZERO), after: None, status: 200, fork: false });
    let mut w = World::new(4, LinkConfig::perfect(), alice, bob, to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.invite_finals == vec![487], "alice gets 487");
    w.check(b.ended, "bob's INVITE is cancelled");
    let ok = w.reason() == Some(EndReason::Cancelled);
    w.check(ok, "ended as cancelled");
    w.check_clean();
}

#[test]
fn cancel_racing_the_200() {
    // bob's 200 leaves at 2000 ms and reaches sipbridge at 2010; alice's CANCEL reaches
    // sipbridge at 2005. The caller gets 487; bob's 200 is ACKed and then BYE'd.
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(1995), Action::Cancel);
    let mut w = World::new(5, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_millis(1980))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.invite_finals == vec![487], "alice gets 487");
    w.check(b.acks_received >= 1 && b.bye_received, "bob's 200 is ACKed, then BYE'd");
    w.check_clean();
}

#[test]
fn failures_are_mapped() {
    for (bob_says, alice_gets) in [(486, 486), (603, 603), (480, 480), (404, 404), (503, 500), (302, 480), (407, 403)] {
        let alice = caller().at(ms(0), Action::Call("bob".into()));
        let bob = callee(Answer { ring_after: None, after: Some(Duration::from_millis(300)), status: bob_says, fork: false });
        let mut w = World::new(6, LinkConfig::perfect(), alice, bob, to_bob());
        w.net.run_until(END);
        let a = w.alice().record.clone();
        w.check(a.invite_finals == vec![alice_gets], &format!("bob's {bob_says} reaches alice as {alice_gets}"));
        let ok = w.reason() == Some(EndReason::Rejected(alice_gets));
        w.check(ok, "ended as rejected");
        w.check_clean();
    }
}

#[test]
fn rejected_by_policy() {
    let alice = caller().at(ms(0), Action::Call("nobody".into()));
    let mut w = World::new(7, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::ZERO)), Route::Reject(404));
    w.net.run_until(END);
    let a = w.alice().record.clone();
    w.check(a.invite_finals == vec![404], "alice gets 404");
    let ok = w.bob().record.requests.is_empty();
    w.check(ok, "bob hears nothing");
    w.check_clean();
}

#[test]
fn lossy_calls_complete() {
    // Lost INVITEs, 200s, ACKs and BYEs, duplicated and reordered: every call still ends
    // with both legs hung up and nothing left behind.
    for loss in [0.05, 0.2] {
        for seed in 0..40 {
            let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(20_000), Action::Bye);
            let mut w = World::new(seed, LinkConfig::lossy(loss), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
            w.net.run_until(END);
            let a = w.alice().record.clone();
            let b = w.bob().record.clone();
            let tag = format!("seed {seed} loss {loss}");
            w.check(a.invite_finals == vec![200], &format!("{tag}: alice gets exactly one 200"));
            w.check(b.bye_received, &format!("{tag}: bob gets the BYE"));
            let ok = w.reason() == Some(EndReason::HangUp(Side::A));
            w.check(ok, &format!("{tag}: ended by alice"));
            w.check_clean();
        }
    }
}

#[test]
fn lossy_calls_outlive_the_acks_they_forget() {
    // The B2BUA keeps the ACK it sent for a 2xx only for 64·T1 (the peer's 2xx
    // retransmissions end by then, §13.3.1.4). Calls held well past that, over a lossy
    // link (lost ACKs make the callee retransmit its 200 inside the window), must still
    // answer every retransmission and end cleanly.
    for seed in 0..20 {
        let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(90_000), Action::Bye);
        let mut w = World::new(seed, LinkConfig::lossy(0.2), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
        w.net.run_until(END);
        let a = w.alice().record.clone();
        let b = w.bob().record.clone();
        let tag = format!("seed {seed}");
        w.check(a.invite_finals == vec![200], &format!("{tag}: alice gets exactly one 200"));
        w.check(b.established && b.acks_received >= 1, &format!("{tag}: bob's 200 is ACKed"));
        w.check(b.bye_received, &format!("{tag}: bob gets the BYE at 90 s, not a teardown before"));
        let ok = w.reason() == Some(EndReason::HangUp(Side::A));
        w.check(ok, &format!("{tag}: ended by alice"));
        w.check_clean();
    }
}

#[test]
fn forked_answers_on_the_outbound_leg() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Bye);
    let bob = callee(Answer { ring_after: Some(Duration::ZERO), after: Some(Duration::from_secs(1)), status: 200, fork: true });
    let mut w = World::new(8, LinkConfig::perfect(), alice, bob, to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.invite_finals == vec![200], "alice gets one 200");
    let byes: Vec<Time> = b.requests.iter().filter(|(_, m)| *m == Method::Bye).map(|(t, _)| *t).collect();
    w.check(byes.len() == 2 && byes[0] < ms(2000), "the late fork is ACKed and hung up at once, the winner at the end");
    w.check(b.acks_received == 2, "both 200s are ACKed");
    w.check_clean();
}

#[test]
fn offer_in_the_2xx_answer_in_the_ack() {
    let alice = caller().offerless().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Bye);
    let mut w = World::new(9, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.invite_finals == vec![200], "alice gets 200");
    let alice_got = a.remote_sdp.unwrap_or_default();
    w.check(alice_got.contains("m=audio 20000 "), "bob's offer reaches alice pointed at the relay");
    let bob_got = b.remote_sdp.unwrap_or_default();
    w.check(
        bob_got.contains("m=audio 20002 ") && bob_got.contains("c=IN IP4 127.0.0.2"),
        "alice's answer reaches bob in the ACK, pointed at the relay",
    );
    w.check(b.acks_received == 1, "bob gets one ACK");
    w.check_clean();
}

#[test]
fn hold_by_reinvite_passes_end_to_end() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(3000), Action::Reinvite { hold: true }).at(ms(6000), Action::Bye);
    let mut w = World::new(10, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.refresh_finals == vec![200], "the re-INVITE gets 200");
    let invites = b.requests.iter().filter(|(_, m)| *m == Method::Invite).count();
    w.check(invites == 2, "bob gets the re-INVITE");
    let bob_got = b.remote_sdp.unwrap_or_default();
    w.check(bob_got.contains("a=sendonly") && bob_got.contains("c=IN IP4 127.0.0.2"), "bob sees hold, pointed at the relay");
    let alice_got = a.remote_sdp.unwrap_or_default();
    w.check(alice_got.contains("a=recvonly"), "alice gets bob's recvonly answer");
    w.check(b.acks_received == 2, "the re-INVITE's 200 is ACKed on bob's leg");
    w.check_clean();
}

#[test]
fn crossing_reinvites_get_491_and_retry() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(3000), Action::Reinvite { hold: true }).at(ms(20_000), Action::Bye);
    let bob = callee(Answer::ok_after(Duration::from_secs(1))).at(ms(3000), Action::Reinvite { hold: false });
    let mut w = World::new(11, LinkConfig::perfect(), alice, bob, to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.refresh_finals.first() == Some(&491) && a.refresh_finals.last() == Some(&200), "alice: 491, then 200 on the retry");
    w.check(b.refresh_finals.first() == Some(&491) && b.refresh_finals.last() == Some(&200), "bob: 491, then 200 on the retry");
    let ok = w.bridge().b2bua.stats().glare_491_sent >= 1;
    w.check(ok, "sipbridge answered 491");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "the call survives the glare");
    w.check_clean();
}

#[test]
fn update_is_forwarded() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(3000), Action::Update).at(ms(6000), Action::Bye);
    let mut w = World::new(12, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.refresh_finals == vec![200], "the UPDATE gets 200");
    w.check(b.requests.iter().any(|(_, m)| *m == Method::Update), "bob gets the UPDATE");
    w.check(b.remote_sdp.unwrap_or_default().contains("m=audio 20002 "), "with the SDP pointed at the relay");
    w.check(a.remote_sdp.unwrap_or_default().contains("m=audio 20000 "), "and the answer back pointed at the relay");
    w.check_clean();
}

#[test]
fn critical_reinvite_timeout_tears_down_both_legs() {
    let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(4000), Action::Reinvite { hold: true });
    let mut w = World::new(13, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(ms(3000));
    // bob vanishes.
    w.net.unlink(w.bridge, w.bob);
    w.net.run_until(END);
    let a = w.alice().record.clone();
    w.check(a.bye_received, "alice is hung up");
    w.check(a.refresh_finals.len() == 1 && a.refresh_finals[0] >= 400, "alice's re-INVITE fails");
    let ok = w.reason() == Some(EndReason::NoReply { side: Side::B, method: Method::Invite, status: 408 });
    w.check(ok, "ended as no reply to critical request INVITE on the outbound leg");
}

#[test]
fn a_2xx_never_acked_tears_down_both_legs() {
    let alice = caller().at(ms(0), Action::Call("bob".into()));
    let mut w = World::new(14, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    // bob's 200 leaves at 1020, reaches sipbridge at 1030 and alice at 1040; alice's ACK
    // finds no link.
    w.net.run_until(ms(1035));
    w.net.unlink(w.alice, w.bridge);
    w.net.run_until(END);
    let b = w.bob().record.clone();
    w.check(b.bye_received, "bob is hung up");
    let ok = w.reason() == Some(EndReason::NoReply { side: Side::A, method: Method::Ack, status: 408 });
    w.check(ok, "ended as no reply to critical request ACK");
    let at = w.bridge().events.iter().find_map(|(t, e)| matches!(e, CallEvent::Ended { .. }).then_some(*t)).expect("ended");
    w.check(at == ms(1030 + 32_000), "after 64·T1 of 2xx retransmissions");
}

#[test]
fn no_answer_limit() {
    let alice = caller().at(ms(0), Action::Call("bob".into()));
    let bob = callee(Answer { ring_after: Some(Duration::ZERO), after: None, status: 200, fork: false });
    let cfg = B2buaConfig { no_answer: Duration::from_secs(30), ..B2buaConfig::default() };
    let mut w = World::with_config(15, LinkConfig::perfect(), alice, bob, to_bob(), cfg);
    w.net.run_until(END);
    let a = w.alice().record.clone();
    w.check(a.invite_finals == vec![480], "alice gets 480 after the ringing limit");
    let ok = w.bob().record.ended && w.bob().record.requests.len() == 1;
    w.check(ok, "bob's INVITE is cancelled");
    let ok = w.reason() == Some(EndReason::NoAnswer);
    w.check(ok, "ended as no answer");
    w.check_clean();
}

#[test]
fn call_duration_limit() {
    let alice = caller().at(ms(0), Action::Call("bob".into()));
    let cfg = B2buaConfig { max_duration: Duration::from_secs(10), ..B2buaConfig::default() };
    let mut w = World::with_config(16, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob(), cfg);
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.bye_received && b.bye_received, "both legs are hung up");
    let ok = w.reason() == Some(EndReason::MaxDuration);
    w.check(ok, "ended at the limit");
    w.check_clean();
}

fn reinvites_between(r: &testkit::phone::Record, from: Time, to: Time) -> usize {
    r.requests.iter().filter(|(t, m)| *m == Method::Invite && *t > from && *t <= to).count()
}

#[test]
fn session_timer_refreshed_by_sipbridge() {
    // alice asks for 90 s with sipbridge as refresher: a refresh every 45 s on alice's
    // leg only.
    let alice = caller().session_timer("90;refresher=uas").at(ms(0), Action::Call("bob".into())).at(ms(100_000), Action::Bye);
    let mut w = World::new(17, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(
        reinvites_between(&a, ms(45_000), ms(47_000)) == 1 && reinvites_between(&a, ms(90_000), ms(92_500)) == 1,
        "refreshes at 45 s and 90 s",
    );
    w.check(reinvites_between(&b, ms(0), END) == 1, "bob sees only the initial INVITE");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "the call lasts until alice hangs up");
    w.check_clean();
}

#[test]
fn session_timer_expires_without_refresh() {
    // alice is the refresher and never refreshes: 90 − 30 s after the answer the call is
    // torn down on both legs.
    let alice = caller().session_timer("90;refresher=uac").at(ms(0), Action::Call("bob".into()));
    let mut w = World::new(18, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    let b = w.bob().record.clone();
    w.check(a.bye_received && b.bye_received, "both legs get BYE");
    let ok = w.reason() == Some(EndReason::SessionExpired(Side::A));
    w.check(ok, "ended as expired");
    let at = w.bridge().events.iter().find_map(|(t, e)| matches!(e, CallEvent::Ended { .. }).then_some(*t)).expect("ended");
    w.check(at == ms(1030 + 60_000), "at 60 s after the answer");
}

#[test]
fn session_timer_refreshed_by_the_caller() {
    let alice = caller()
        .session_timer("90;refresher=uac")
        .at(ms(0), Action::Call("bob".into()))
        .at(ms(40_000), Action::Reinvite { hold: false })
        .at(ms(80_000), Action::Reinvite { hold: false })
        .at(ms(110_000), Action::Bye);
    let mut w = World::new(19, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    w.check(a.refresh_finals == vec![200, 200], "both refreshes succeed");
    let ok = w.reason() == Some(EndReason::HangUp(Side::A));
    w.check(ok, "the refreshed call lasts until alice hangs up");
    w.check_clean();
}

#[test]
fn session_interval_below_min_se_gets_422() {
    let alice = caller().session_timer("30").at(ms(0), Action::Call("bob".into()));
    let mut w = World::new(20, LinkConfig::perfect(), alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
    w.net.run_until(END);
    let a = w.alice().record.clone();
    w.check(a.invite_finals == vec![422], "422 Session Interval Too Small");
}

/// The other scenarios under 10 % loss with duplication and reordering: what must hold
/// whatever the luck of the run.
#[test]
fn lossy_scenarios_converge() {
    for seed in 0..20 {
        let tag = format!("seed {seed}");
        let lossy = LinkConfig::lossy(0.1);
        // CANCEL before the answer.
        let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(3000), Action::Cancel);
        let bob = callee(Answer { ring_after: Some(Duration::ZERO), after: None, status: 200, fork: false });
        let mut w = World::new(seed, lossy, alice, bob, to_bob());
        w.net.run_until(END);
        let a = w.alice().record.clone();
        w.check(a.invite_finals == vec![487], &format!("{tag}: cancel gives 487"));
        let ok = w.bob().record.ended;
        w.check(ok, &format!("{tag}: bob's INVITE is cancelled"));
        w.check_clean();
        // Hold by re-INVITE, then BYE from bob.
        let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Reinvite { hold: true });
        let bob = callee(Answer::ok_after(Duration::from_secs(1))).at(ms(40_000), Action::Bye);
        let mut w = World::new(seed, lossy, alice, bob, to_bob());
        w.net.run_until(END);
        let a = w.alice().record.clone();
        w.check(a.refresh_finals.last() == Some(&200), &format!("{tag}: the hold gets 200"));
        let ok = w.bob().record.remote_sdp.clone().unwrap_or_default().contains("a=sendonly");
        w.check(ok, &format!("{tag}: bob sees hold"));
        w.check(a.bye_received, &format!("{tag}: alice gets bob's BYE"));
        w.check_clean();
        // Crossing re-INVITEs: both end with a 200 after their retries.
        let alice =
            caller().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Reinvite { hold: true }).at(ms(60_000), Action::Bye);
        let bob = callee(Answer::ok_after(Duration::from_secs(1))).at(ms(5000), Action::Reinvite { hold: false });
        let mut w = World::new(seed, lossy, alice, bob, to_bob());
        w.net.run_until(END);
        let (a, b) = (w.alice().record.clone(), w.bob().record.clone());
        w.check(a.refresh_finals.last() == Some(&200) && b.refresh_finals.last() == Some(&200), &format!("{tag}: glare converges"));
        w.check(b.bye_received, &format!("{tag}: the call survives until alice hangs up"));
        w.check_clean();
        // UPDATE.
        let alice = caller().at(ms(0), Action::Call("bob".into())).at(ms(5000), Action::Update).at(ms(30_000), Action::Bye);
        let mut w = World::new(seed, lossy, alice, callee(Answer::ok_after(Duration::from_secs(1))), to_bob());
        w.net.run_until(END);
        let a = w.alice().record.clone();
        w.check(a.refresh_finals == vec![200], &format!("{tag}: UPDATE gets 200"));
        let ok = w.bob().record.bye_received;
        w.check(ok, &format!("{tag}: bob gets the BYE"));
        w.check_clean();
    }
}
