//! Direct media in virtual time: alice (127.0.0.1) calls through sipbridge (127.0.0.2) to
//! bob (127.0.0.3); the node's command list plays the policy (`go_direct`, `re_anchor`).
//! Timeline with 10 ms links and bob answering after 1 s: bob's 200 at 1020 ms, the
//! caller's ACK reaches us at 1050 ms. A failing run prints its ladder.

use sip_core::b2bua::{B2buaConfig, CallEvent, DirectMethod, DirectOpts, EndReason, MediaPath, Side};
use sip_core::sip_message::Method;
use sip_core::{EndpointConfig, Time};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::b2bua_node::{B2buaNode, Command, Route};
use testkit::phone::{Action, Answer, Phone};
use testkit::{LinkConfig, Net, NodeId};

const ALICE: &str = "127.0.0.1:5060";
const BRIDGE: &str = "127.0.0.2:5060";
const BOB: &str = "127.0.0.3:5060";
const UPDATE: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn ms(t: u64) -> Time {
    Time::from_millis(t)
}

fn config(update: bool) -> EndpointConfig {
    let mut c = EndpointConfig::default();
    if update {
        c.allow.push(Method::Update);
    }
    c
}

/// `w.check(cond, what)` with `cond` evaluated first (it borrows `w` too).
macro_rules! check {
    ($w:ident, $cond:expr, $what:expr) => {{
        let ok = $cond;
        $w.check(ok, &$what)
    }};
}

fn direct() -> Command {
    Command::GoDirect(DirectOpts::default())
}

struct World {
    net: Net,
    alice: NodeId,
    bridge: NodeId,
    bob: NodeId,
}

impl World {
    fn new(alice: Phone, bob: Phone, node: impl FnOnce(B2buaNode) -> B2buaNode) -> World {
        World::with(alice, bob, node, [true, true])
    }

    fn with(alice: Phone, bob: Phone, node: impl FnOnce(B2buaNode) -> B2buaNode, update: [bool; 2]) -> World {
        World::on(7, LinkConfig::perfect(), alice, bob, node, update)
    }

    fn on(seed: u64, link: LinkConfig, alice: Phone, bob: Phone, node: impl FnOnce(B2buaNode) -> B2buaNode, update: [bool; 2]) -> World {
        let mut net = Net::new(seed);
        let a = net.add_node("alice", config(update[0]));
        let x = net.add_node("sipbridge", config(true));
        let b = net.add_node("bob", config(update[1]));
        net.link(a, x, link);
        net.link(x, b, link);
        net.set_app(a, Box::new(alice));
        let n = B2buaNode::new(addr(BRIDGE), Route::To(addr(BOB)), B2buaConfig { seed: 7, ..B2buaConfig::default() });
        net.set_app(x, Box::new(node(n)));
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
            let (a, b) = (self.alice().sdps.clone(), self.bob().sdps.clone());
            let x = format!("{:?}", self.bridge().events);
            panic!("{what}\n{}\nalice sdps: {a:#?}\nbob sdps: {b:#?}\nbridge: {x}", self.net.ladder());
        }
    }

    /// In-dialog INVITEs / UPDATEs each phone received: (alice, bob).
    fn received(&mut self, m: Method) -> (Vec<Time>, Vec<Time>) {
        let f = |p: &Phone, initial: bool| {
            let mut v: Vec<Time> = p.record.requests.iter().filter(|(_, x)| *x == m).map(|(t, _)| *t).collect();
            if initial && m == Method::Invite {
                v.remove(0);
            }
            v
        };
        let a = f(self.alice(), false);
        let b = f(self.bob(), true);
        (a, b)
    }

    fn path(&mut self) -> MediaPath {
        let b = self.bridge();
        b.b2bua.calls().first().map(|c| c.media_path).expect("a call")
    }

    /// The last SDP each phone received points at `who`.
    fn points_at(&mut self, phone: NodeId, who: &str) -> bool {
        let p = self.net.app::<Phone>(phone).expect("phone");
        p.record.remote_sdp.as_deref().is_some_and(|s| s.contains(&format!("c=IN IP4 {who}\r\n")))
    }
}

fn caller() -> Phone {
    Phone::new("alice", addr(ALICE), addr(BRIDGE), 11).at(ms(0), Action::Call("bob".into()))
}

fn callee() -> Phone {
    Phone::new("bob", addr(BOB), addr(BRIDGE), 12).answering(Answer::ok_after(Duration::from_secs(1)))
}

fn origin_version(sdp: &str) -> u64 {
    let o = sdp.lines().find(|l| l.starts_with("o=")).expect("o=");
    o.split(' ').nth(2).and_then(|v| v.parse().ok()).expect("a version")
}

#[test]
fn go_direct_end_to_end() {
    let mut w = World::new(caller().at(ms(5000), Action::Bye), callee(), |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 1 && b.len() == 1, "exactly one re-INVITE per leg");
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.points_at(w.bob, "127.0.0.1"), "both phones point at each other");
    let (sa, sb) = (w.alice().sdps[0].2.clone(), w.bob().sdps[0].2.clone());
    check!(w, origin_version(&sa) == 2 && origin_version(&sb) == 2, "o= version + 1 on each leg");
    check!(w, sa.contains("m=audio 40000 RTP/AVP 0 8 101") && sb.contains("a=rtpmap:101 telephone-event/8000"), "codecs and PTs kept");
    check!(w, w.path() == MediaPath::Direct, "the call is direct");
    let paths: Vec<MediaPath> = w.bridge().paths().into_iter().map(|(_, p)| p).collect();
    check!(w, paths == vec![MediaPath::Moving, MediaPath::Direct], "Moving then Direct reported");
    let info = w.bridge().b2bua.calls()[0].clone();
    check!(w, info.counters.reinvites_sent == 2 && info.media_history.len() == 2, "counters and history");
    w.net.run_until(ms(8000));
    check!(w, w.bridge().ended().len() == 1, "the call ends normally");
}

#[test]
fn direct_rtp_setup_needs_no_reinvite_and_re_anchors_on_demand() {
    let mut w = World::new(caller().at(ms(9000), Action::Bye), callee(), |n| {
        n.direct_setup().at(ms(3000), Command::ReAnchor([true, true])).at(ms(5000), direct())
    });
    w.net.run_until(ms(1040));
    check!(w, w.points_at(w.bob, "127.0.0.1"), "the INVITE to bob carries alice's media address");
    w.net.run_until(ms(2000));
    check!(w, w.points_at(w.alice, "127.0.0.3"), "the 200 to alice carries bob's");
    let (a, b) = w.received(Method::Invite);
    check!(w, a.is_empty() && b.is_empty(), "no re-INVITE at all");
    check!(w, w.path() == MediaPath::Direct, "direct from the answer");
    let history: Vec<MediaPath> = w.bridge().paths().into_iter().map(|(_, p)| p).collect();
    check!(w, history == vec![MediaPath::Direct], format!("one change, to direct: {history:?}"));
    check!(w, w.bridge().b2bua.calls()[0].counters.reinvites_sent == 0, "none counted");
    // Re-anchoring works as for a call that moved: both legs to the relay, then back.
    w.net.run_until(ms(4000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 1 && b.len() == 1, "one re-INVITE per leg to re-anchor");
    check!(w, w.points_at(w.alice, "127.0.0.2") && w.points_at(w.bob, "127.0.0.2") && w.path() == MediaPath::Relayed, "relayed");
    w.net.run_until(ms(6000));
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.points_at(w.bob, "127.0.0.1") && w.path() == MediaPath::Direct, "direct again");
    w.net.run_until(ms(10_000));
    check!(w, w.bridge().ended().len() == 1, "the call ends normally");
}

#[test]
fn direct_offer_keeps_only_codecs_numbered_alike() {
    // bob answers telephone-event as 96 where alice's offer said 101: phone to phone
    // nobody translates, so alice is not offered telephone-event at all (her 101 would
    // reach bob, who expects 96), while bob keeps the 101 alice expects.
    let mut w = World::new(caller(), callee().dtmf_pt(96), |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    check!(w, !w.alice().sdps.is_empty() && !w.bob().sdps.is_empty(), "both phones got a direct-media offer");
    let (sa, sb) = (w.alice().sdps[0].2.clone(), w.bob().sdps[0].2.clone());
    check!(w, sa.contains("m=audio 40000 RTP/AVP 0 8\r\n") && !sa.contains("telephone-event"), format!("alice: PCMU, PCMA only: {sa}"));
    check!(w, sb.contains(" RTP/AVP 0 8 101\r\n") && sb.contains("a=rtpmap:101 telephone-event/8000"), format!("bob keeps 101: {sb}"));
    check!(w, w.path() == MediaPath::Direct, "direct");
}

#[test]
fn direct_rtp_setup_answers_only_codecs_numbered_alike() {
    // bob answers telephone-event as 96, alice offered 101: her answer keeps her 101
    // (RFC 3264 §6.1) and so must leave it out, since she sends straight to bob.
    let mut w = World::new(caller(), callee().dtmf_pt(96), B2buaNode::direct_setup);
    w.net.run_until(ms(2000));
    let answer = w.alice().record.remote_sdp.clone().unwrap_or_default();
    check!(w, answer.contains("c=IN IP4 127.0.0.3"), format!("direct: {answer}"));
    check!(w, answer.contains(" RTP/AVP 0 8\r\n") && !answer.contains("telephone-event"), format!("PCMU, PCMA only: {answer}"));
    check!(w, w.path() == MediaPath::Direct, "direct");
}

#[test]
fn update_method_and_fallback_without_allow() {
    let opts = DirectOpts { method: [DirectMethod::Update, DirectMethod::Update], withhold: [false, false] };
    // alice allows UPDATE, bob does not.
    let alice = caller().allow(UPDATE);
    let mut w = World::with(alice, callee(), |n| n.on_answer(Duration::from_millis(100), Command::GoDirect(opts)), [true, false]);
    w.net.run_until(ms(4000));
    let (ua, ub) = w.received(Method::Update);
    let (ia, ib) = w.received(Method::Invite);
    check!(w, ua.len() == 1 && ia.is_empty(), "UPDATE to alice");
    check!(w, ub.is_empty() && ib.len() == 1, "re-INVITE to bob, who does not allow UPDATE");
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.points_at(w.bob, "127.0.0.1"), "both direct");
    check!(w, w.path() == MediaPath::Direct, "direct");
}

#[test]
fn changed_port_in_answer_repoints_the_other_leg() {
    let bob = callee().move_port_on_reinvite(41000);
    let mut w = World::new(caller(), bob, |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 2 && b.len() == 1, "alice re-pointed once more");
    let last = w.alice().record.remote_sdp.clone().unwrap_or_default();
    check!(w, last.contains("m=audio 41000 ") && last.contains("c=IN IP4 127.0.0.3"), "alice points at bob's new port");
    check!(w, w.path() == MediaPath::Direct, "direct");
}

#[test]
fn refusal_on_one_leg_returns_to_relayed() {
    let bob = callee().reinvite_answers(&[488]);
    let mut w = World::new(caller(), bob, |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 2 && b.len() == 1, "alice moved and moved back");
    check!(w, w.points_at(w.alice, "127.0.0.2"), "alice back on the relay");
    check!(w, w.path() == MediaPath::Relayed, "relayed");
    check!(w, w.bridge().ended().is_empty(), "the call goes on");
}

#[test]
fn a_2xx_without_answer_sdp_is_a_refusal_not_a_loop() {
    // bob answers our move with a 200 that carries no SDP: asking again would get the
    // same once per round trip; the move is given up and alice goes back to the relay.
    let mut w = World::new(caller(), callee().reinvite_answers(&[200]), |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(8000));
    let (a, b) = w.received(Method::Invite);
    check!(w, b.len() == 1, format!("bob asked once, got {}", b.len()));
    check!(w, a.len() <= 2 && w.points_at(w.alice, "127.0.0.2"), "alice back on the relay");
    check!(w, w.path() == MediaPath::Relayed, "relayed");
    check!(w, w.bridge().ended().is_empty(), "the call goes on");
}

#[test]
fn glare_491_on_b_leg_retries_in_2_1_to_4_s() {
    let bob = callee().reinvite_answers(&[491]);
    let mut w = World::new(caller(), bob, |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(8000));
    let (_, b) = w.received(Method::Invite);
    check!(w, b.len() == 2, "bob got the re-INVITE twice");
    let gap = b[1].as_millis() - b[0].as_millis();
    check!(w, (2100..=4020).contains(&gap), &format!("retry after {gap} ms"));
    check!(w, w.points_at(w.bob, "127.0.0.1") && w.path() == MediaPath::Direct, "ends direct");
    let info = w.bridge().b2bua.calls()[0].clone();
    check!(w, info.counters.glare_491_received == 1, "491 counted");
}

#[test]
fn glare_491_on_a_leg_retries_in_0_to_2_s() {
    let alice = caller().reinvite_answers(&[491]);
    let mut w = World::new(alice, callee(), |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(8000));
    let (a, _) = w.received(Method::Invite);
    check!(w, a.len() == 2, "alice got the re-INVITE twice");
    let gap = a[1].as_millis() - a[0].as_millis();
    check!(w, gap <= 2020, &format!("retry after {gap} ms"));
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.path() == MediaPath::Direct, "ends direct");
}

#[test]
fn glare_491_to_update() {
    let opts = DirectOpts { method: [DirectMethod::Update; 2], withhold: [false; 2] };
    let bob = callee().allow(UPDATE).reinvite_answers(&[491]);
    let mut w = World::new(caller().allow(UPDATE), bob, |n| n.on_answer(Duration::from_millis(100), Command::GoDirect(opts)));
    w.net.run_until(ms(8000));
    let (_, b) = w.received(Method::Update);
    check!(w, b.len() == 2, "the UPDATE was retried");
    let gap = b[1].as_millis() - b[0].as_millis();
    check!(w, (2100..=4020).contains(&gap), &format!("retry after {gap} ms"));
    check!(w, w.path() == MediaPath::Direct, "ends direct");
}

#[test]
fn bye_during_back_off_sends_no_reinvite() {
    // bob's 491 reaches us at about 1150 ms; alice hangs up at 1500 ms, inside the 2.1 s
    // back-off.
    let bob = callee().reinvite_answers(&[491]);
    let mut w = World::new(caller().at(ms(1500), Action::Bye), bob, |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(10_000));
    let (_, b) = w.received(Method::Invite);
    check!(w, b.len() == 1, "no re-INVITE after BYE");
    check!(w, w.bridge().ended().len() == 1, "ended");
    let bye_at = w.bob().record.requests.iter().find(|(_, m)| *m == Method::Bye).map(|(t, _)| *t);
    check!(w, bye_at.is_some(), "bob got the BYE");
}

#[test]
fn reinvite_before_the_initial_ack_gets_491() {
    // bob re-INVITEs 15 ms after his 200 (at 1035 ms, arriving 1045): alice's ACK reaches
    // us at 1050 ms.
    let bob = callee().at(ms(1035), Action::Reinvite { hold: false });
    let mut w = World::new(caller(), bob, |n| n);
    w.net.run_until(ms(2000));
    check!(w, w.bob().record.refresh_finals.first() == Some(&491), "491 before the ACK");
    let info = w.bridge().b2bua.calls()[0].clone();
    check!(w, info.counters.glare_491_sent == 1, "491 counted on the call");
}

#[test]
fn hold_under_direct_media_passes_end_to_end() {
    let alice = caller().at(ms(3000), Action::Reinvite { hold: true }).at(ms(5000), Action::Reinvite { hold: false });
    let mut w = World::new(alice, callee(), |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    let held = w.bob().sdps.last().map(|s| s.2.clone()).unwrap_or_default();
    check!(w, held.contains("a=sendonly") && held.contains("c=IN IP4 127.0.0.1"), "bob sees the hold with alice's own address");
    check!(w, w.points_at(w.alice, "127.0.0.3"), "alice's answer points at bob");
    check!(w, w.path() == MediaPath::Direct, "still direct on hold");
    w.net.run_until(ms(6000));
    let resumed = w.bob().sdps.last().map(|s| s.2.clone()).unwrap_or_default();
    check!(w, resumed.contains("a=sendrecv") && resumed.contains("c=IN IP4 127.0.0.1"), "resumed, direct");
    check!(w, w.path() == MediaPath::Direct, "direct after resume");
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 1 && b.len() == 3, "no extra media requests");
}

#[test]
fn re_anchor_one_leg_and_back() {
    let mut w = World::new(caller(), callee(), |n| {
        n.on_answer(Duration::from_millis(100), direct()).at(ms(3000), Command::ReAnchor([false, true])).at(ms(5000), direct())
    });
    w.net.run_until(ms(4000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 1 && b.len() == 2, "only bob re-anchored");
    check!(w, w.points_at(w.bob, "127.0.0.2") && w.points_at(w.alice, "127.0.0.3"), "bob on the relay, alice direct");
    check!(w, w.path() == MediaPath::Relayed, "relayed (the relay carries one way)");
    w.net.run_until(ms(6000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.len() == 1 && b.len() == 3, "only bob moved again");
    check!(w, w.points_at(w.bob, "127.0.0.1") && w.path() == MediaPath::Direct, "direct again");
}

#[test]
fn outgoing_withholding_answers_the_peer_reinvite_directly() {
    let opts = DirectOpts { method: [DirectMethod::Invite; 2], withhold: [true, false] };
    // alice plays a chained server: its own re-INVITE comes 200 ms after our go_direct.
    let alice = caller().at(ms(1350), Action::Reinvite { hold: false });
    let mut w = World::new(alice, callee(), |n| n.on_answer(Duration::from_millis(100), Command::GoDirect(opts)));
    w.net.run_until(ms(8000));
    let (a, b) = w.received(Method::Invite);
    check!(w, a.is_empty(), "nothing sent to alice: withheld, then her re-INVITE answered directly");
    // bob: our direct re-INVITE, then alice's forwarded one.
    check!(w, b.len() == 2, "bob got ours and alice's");
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.points_at(w.bob, "127.0.0.1"), "both direct");
    check!(w, w.path() == MediaPath::Direct, "direct");
    let glare = w.bridge().b2bua.calls()[0].counters;
    check!(w, glare.glare_491_sent == 0 && glare.glare_491_received == 0, "no 491");
}

#[test]
fn outgoing_withholding_never_strands() {
    // The peer's re-INVITE came before the target was known (answered via the relay):
    // the request is sent after all.
    let opts = DirectOpts { method: [DirectMethod::Invite; 2], withhold: [true, false] };
    let alice = caller().at(ms(1200), Action::Reinvite { hold: false });
    let mut w = World::new(alice, callee(), |n| n.on_answer(Duration::from_millis(500), Command::GoDirect(opts)));
    w.net.run_until(ms(3000));
    let (a, _) = w.received(Method::Invite);
    check!(w, a.len() == 1, "the withheld request went at once");
    check!(w, w.points_at(w.alice, "127.0.0.3") && w.path() == MediaPath::Direct, "direct");
}

#[test]
fn no_reply_481_to_a_media_request_ends_the_call() {
    let bob = callee().reinvite_answers(&[481]);
    let mut w = World::new(caller(), bob, |n| n.on_answer(Duration::from_millis(100), direct()));
    w.net.run_until(ms(4000));
    let ended = w.bridge().ended();
    check!(
        w,
        matches!(ended.first(), Some((_, EndReason::NoReply { side: Side::B, method: Method::Invite, status: 481 }))),
        format!("no reply to critical request: {ended:?}")
    );
    check!(w, w.alice().record.bye_received, "alice got BYE");
}

#[test]
fn re_anchor_counts_and_stats() {
    let mut w =
        World::new(caller(), callee(), |n| n.on_answer(Duration::from_millis(100), direct()).at(ms(3000), Command::ReAnchor([true, true])));
    w.net.run_until(ms(4000));
    check!(w, w.points_at(w.alice, "127.0.0.2") && w.points_at(w.bob, "127.0.0.2"), "both back on the relay");
    let paths: Vec<MediaPath> = w.bridge().paths().into_iter().map(|(_, p)| p).collect();
    check!(
        w,
        paths == vec![MediaPath::Moving, MediaPath::Direct, MediaPath::Moving, MediaPath::Relayed],
        format!("path changes: {paths:?}")
    );
    let st = w.bridge().b2bua.stats();
    check!(w, st.direct_switches == 1 && st.re_anchors == 1 && st.media_requests == 4, format!("{st:?}"));
}

#[test]
fn go_direct_is_refused_before_the_ack() {
    let mut w = World::new(caller(), callee(), |n| n.on_answer(Duration::ZERO, direct()));
    w.net.run_until(ms(2000));
    let r = w.bridge().command_results.clone();
    check!(w, r.len() == 1 && r[0].2.is_err(), "refused before the caller's ACK");
    check!(w, w.bridge().events.iter().all(|(_, e)| !matches!(e, CallEvent::MediaPath { .. })), "no path change");
}

// ---- two B2BUAs in a chain: phone1 – b1 – b2 – phone2 ---------------------------------

const P1: &str = "127.0.0.1:5060";
const B1: &str = "127.0.0.2:5060";
const B2: &str = "127.0.0.3:5060";
const P2: &str = "127.0.0.4:5060";

struct Chain {
    net: Net,
    p1: NodeId,
    b1: NodeId,
    b2: NodeId,
    p2: NodeId,
}

impl Chain {
    /// Both servers go direct at `at` (both confirmed by 1070 ms), with `opts`.
    fn new(seed: u64, opts: [DirectOpts; 2], at: Time) -> Chain {
        let mut net = Net::new(seed);
        let p1 = net.add_node("phone1", config(true));
        let b1 = net.add_node("b1", config(true));
        let b2 = net.add_node("b2", config(true));
        let p2 = net.add_node("phone2", config(true));
        net.link(p1, b1, LinkConfig::perfect());
        net.link(b1, b2, LinkConfig::perfect());
        net.link(b2, p2, LinkConfig::perfect());
        net.set_app(p1, Box::new(Phone::new("alice", addr(P1), addr(B1), 21).at(ms(0), Action::Call("bob".into()))));
        let node = |me: &str, to: &str, seed: u64, o: DirectOpts| {
            B2buaNode::new(addr(me), Route::To(addr(to)), B2buaConfig { seed, ..B2buaConfig::default() }).at(at, Command::GoDirect(o))
        };
        net.set_app(b1, Box::new(node(B1, B2, seed, opts[0])));
        net.set_app(b2, Box::new(node(B2, P2, seed + 1, opts[1])));
        net.set_app(p2, Box::new(Phone::new("bob", addr(P2), addr(B2), 22).answering(Answer::ok_after(Duration::from_secs(1)))));
        Chain { net, p1, b1, b2, p2 }
    }

    fn node(&mut self, n: NodeId) -> &mut B2buaNode {
        self.net.app::<B2buaNode>(n).expect("a b2bua")
    }

    fn phone(&mut self, n: NodeId) -> &mut Phone {
        self.net.app::<Phone>(n).expect("a phone")
    }

    fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            let (b1, b2) = (self.b1, self.b2);
            let e1 = format!("{:?}", self.node(b1).events);
            let x = format!("{e1}\n{:?}", self.node(b2).events);
            panic!("{what}\n{}\n{x}", self.net.ladder());
        }
    }

    fn both_direct(&mut self) -> bool {
        let (p1, p2) = (self.p1, self.p2);
        let a = self.phone(p1).record.remote_sdp.clone().unwrap_or_default();
        let b = self.phone(p2).record.remote_sdp.clone().unwrap_or_default();
        a.contains("c=IN IP4 127.0.0.4\r\n") && b.contains("c=IN IP4 127.0.0.1\r\n")
    }

    fn counters(&mut self, n: NodeId) -> sip_core::b2bua::MediaCounters {
        self.node(n).b2bua.calls()[0].counters
    }

    /// re-INVITEs sent on the b1–b2 dialog, by either server.
    fn middle_reinvites(&mut self) -> usize {
        let (b1, b2) = (self.b1, self.b2);
        let b1_to_b2 = self.net.sent_count(b1, "INVITE sip:sipbridge@127.0.0.3");
        let b2_to_b1 = self.net.sent_count(b2, "INVITE sip:sipbridge@127.0.0.2");
        b1_to_b2 + b2_to_b1
    }
}

macro_rules! ccheck {
    ($w:ident, $cond:expr, $what:expr) => {{
        let ok = $cond;
        $w.check(ok, &$what)
    }};
}

#[test]
fn chained_servers_both_yes_glare_then_converge() {
    let mut w = Chain::new(31, [DirectOpts::default(); 2], ms(1200));
    w.net.run_until(ms(10_000));
    let (c1, c2) = (w.counters(w.b1), w.counters(w.b2));
    ccheck!(w, c1.glare_491_received == 1 && c2.glare_491_received == 1, format!("491 both ways: {c1:?} {c2:?}"));
    ccheck!(w, w.both_direct(), "the phones end up pointing at each other");
    let m = w.middle_reinvites();
    ccheck!(w, m == 3, format!("two crossing re-INVITEs and one retry on the b1–b2 dialog, got {m}"));
    // b2 does not own the b1–b2 Call-ID: its retry came 0–2 s after its 491.
    let path2 = w.node(w.b2).b2bua.calls()[0].media_path;
    let path1 = w.node(w.b1).b2bua.calls()[0].media_path;
    ccheck!(w, path1 == MediaPath::Direct && path2 == MediaPath::Direct, format!("both direct: {path1:?} {path2:?}"));
    // b2 does not own the b1–b2 Call-ID: it retries 0–2 s after the 491 it got; b1, the
    // owner, would wait 2.1–4 s, and then finds nothing left to do.
    let steps = w.net.steps().to_vec();
    let sent = |from: &str, start: &str| -> Vec<u64> {
        steps.iter().filter(|s| s.what == "sent" && s.from == from && s.first_line.starts_with(start)).map(|s| s.at.as_millis()).collect()
    };
    let got_491 = sent("b1", "SIP/2.0 491");
    let b2_invites = sent("b2", "INVITE sip:sipbridge@127.0.0.2");
    ccheck!(w, got_491.len() == 1 && b2_invites.len() == 2, "one 491 to b2, one retry");
    let wait = b2_invites[1] - got_491[0];
    ccheck!(w, wait <= 2010, format!("b2 retried {wait} ms after the 491"));
    let b1_invites = sent("b1", "INVITE sip:sipbridge@127.0.0.3");
    ccheck!(w, b1_invites.len() == 1, "b1's back-off ends with nothing to send");
    // ... and b1 does not wait for its back-off to say so: the crossing retry put its
    // legs where it wanted them, so it is direct as soon as that exchange is done.
    let history = w.node(w.b1).b2bua.calls()[0].media_history.clone();
    let b1_direct = history.iter().find(|(_, p)| *p == MediaPath::Direct).map(|(t, _)| t.as_millis());
    ccheck!(
        w,
        b1_direct.is_some_and(|t| t >= b2_invites[1] && t <= b2_invites[1] + 200),
        format!("b1 direct right after b2's retry at {} ms: {history:?}", b2_invites[1])
    );
}

#[test]
fn chained_servers_both_outgoing_no_491() {
    // `outgoing` toward the peer server: b2 withholds on its inbound leg (from b1); b1's
    // dialog toward b2 is its outbound one, where nothing is withheld.
    let o = DirectOpts { method: [DirectMethod::Invite; 2], withhold: [true, false] };
    let mut w = Chain::new(32, [DirectOpts::default(), o], ms(1200));
    w.net.run_until(ms(10_000));
    let (c1, c2) = (w.counters(w.b1), w.counters(w.b2));
    ccheck!(
        w,
        c1.glare_491_sent + c1.glare_491_received + c2.glare_491_sent + c2.glare_491_received == 0,
        format!("no 491 at all: {c1:?} {c2:?}")
    );
    ccheck!(w, w.both_direct(), "the phones end up pointing at each other");
    let m = w.middle_reinvites();
    ccheck!(w, m == 1, format!("one re-INVITE on the b1–b2 dialog, got {m}"));
}

#[test]
fn lossy_sweep_settles_direct_with_one_request_per_leg_or_ends() {
    for seed in 1..=30 {
        // bob's 491 on the first move, alice holds and resumes, all over a lossy link.
        let alice = caller().at(ms(6000), Action::Reinvite { hold: true }).at(ms(9000), Action::Reinvite { hold: false });
        let bob = callee().reinvite_answers(&[491]);
        let mut w = World::on(seed, LinkConfig::lossy(0.1), alice, bob, |n| n.at(ms(4000), direct()), [true; 2]);
        w.net.run_until(ms(60_000));
        let refused = w.bridge().command_results.iter().any(|r| r.2.is_err());
        if refused || !w.bridge().ended().is_empty() {
            continue; // not yet ACKed at 4 s, or a request timed out: torn down cleanly
        }
        let n = w.bridge().b2bua.calls()[0].counters;
        // One move per leg, plus bob's retry unless alice's hold already moved that leg.
        check!(w, (2..=3).contains(&n.reinvites_sent) && n.glare_491_received == 1, format!("seed {seed}: {n:?}"));
        let path = w.path();
        check!(w, path == MediaPath::Direct, format!("seed {seed}: settled {path:?}"));
        check!(w, w.points_at(w.alice, "127.0.0.3") && w.points_at(w.bob, "127.0.0.1"), format!("seed {seed}: direct"));
    }
}
