//! Qualify (OPTIONS keep-alives) at exact virtual times: the qualifier and its endpoint
//! are driven by a clock that only moves to the next deadline or delivery, against a
//! scripted peer that decides, per copy of each OPTIONS it receives, what to answer and
//! when.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use sip_core::qualify::{Qualifier, QualifyConfig, QualifyEvent, State, Target};
use sip_core::{Endpoint, EndpointConfig, Event, Failure, Flow, Time, TimerConfig, Transmit, Transport};
use sip_message::{HeaderName, Message, Method, Request, SeededIds, Uri};
use std::collections::HashMap;
use std::time::Duration;

const US: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:5070";
const SECOND: Duration = Duration::from_secs(1);

fn flow() -> Flow {
    Flow { transport: Transport::Udp, local: US.parse().unwrap(), remote: PEER.parse().unwrap(), connection: None }
}

fn target() -> Target {
    Target { uri: Uri::parse_str("sip:bob@127.0.0.1:5070").unwrap(), flow: flow() }
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d)
}

/// What the peer does with one copy of an OPTIONS: `(delay ms, status)` per response.
type Peer = Box<dyn FnMut(u64, &Request, usize) -> Vec<(u64, u16)>>;

struct Rig {
    ep: Endpoint,
    q: Qualifier,
    now: Time,
    peer: Peer,
    /// Responses on their way to us.
    inbox: Vec<(Time, Bytes)>,
    /// Every OPTIONS on the wire, with its time and raw bytes.
    wire: Vec<(u64, Request, Bytes)>,
    copies: HashMap<String, usize>,
    changes: Vec<(u64, QualifyEvent)>,
    passed: Vec<Event>,
}

impl Rig {
    fn new(timers: TimerConfig, config: QualifyConfig, peer: Peer) -> Rig {
        let ep =
            Endpoint::new(EndpointConfig { timers, listeners: vec![(Transport::Udp, US.parse().unwrap())], seed: 5, ..Default::default() });
        let q = Qualifier::new(QualifyConfig {
            advertise: "127.0.0.1".parse().unwrap(),
            ports: vec![(Transport::Udp, 5060)],
            start_jitter: Duration::ZERO,
            ..config
        });
        Rig {
            ep,
            q,
            now: Time::ZERO,
            peer,
            inbox: Vec::new(),
            wire: Vec::new(),
            copies: HashMap::new(),
            changes: Vec::new(),
            passed: Vec::new(),
        }
    }

    /// A peer answering every copy with `status` after `delay` ms.
    fn answering(status: u16, delay: u64) -> Rig {
        Rig::new(TimerConfig::default(), QualifyConfig::default(), Box::new(move |_, _, _| vec![(delay, status)]))
    }

    fn add(&mut self, frequency: Duration, max_rtt: Duration) {
        let now = self.now;
        self.q.add(now, "bob".into(), target(), frequency, max_rtt);
        self.drain();
    }

    /// The drain rule: the endpoint's transmits and events, then the qualifier's events.
    fn drain(&mut self) {
        let now = self.now;
        loop {
            let mut any = false;
            while let Some(t) = self.ep.poll_transmit() {
                any = true;
                let Transmit::Send { payload, .. } = t else { continue };
                let Ok(Message::Request(req)) = Message::parse(payload.clone()) else { panic!("we only send requests") };
                let branch = req.via().branch().unwrap().to_owned();
                let copy = self.copies.entry(branch).or_insert(0);
                for (delay, status) in (self.peer)(now.as_millis(), &req, *copy) {
                    let resp = req.reply(status).to_tag("peer").build(&mut SeededIds::new(1)).unwrap();
                    self.inbox.push((now + ms(delay), resp.to_bytes()));
                }
                *copy += 1;
                self.wire.push((now.as_millis(), req, payload));
            }
            while let Some(e) = self.ep.poll_event() {
                any = true;
                if let Some(e) = self.q.handle_event(now, &mut self.ep, e) {
                    self.passed.push(e);
                }
            }
            while let Some(e) = self.q.poll_event() {
                any = true;
                self.changes.push((now.as_millis(), e));
            }
            if !any {
                return;
            }
        }
    }

    /// Moves the clock from event to event until `until` ms.
    fn run_until(&mut self, until: u64) {
        let limit = Time::from_millis(until);
        loop {
            let next =
                [self.ep.poll_timeout(), self.q.poll_timeout(), self.inbox.iter().map(|(t, _)| *t).min()].into_iter().flatten().min();
            match next {
                Some(t) if t <= limit => self.now = self.now.max(t),
                _ => {
                    self.now = limit;
                    return;
                }
            }
            let now = self.now;
            while let Some(i) = self.inbox.iter().position(|(t, _)| *t <= now) {
                let (_, b) = self.inbox.remove(i);
                let back = Flow { local: US.parse().unwrap(), remote: PEER.parse().unwrap(), ..flow() };
                self.ep.handle_datagram(now, back, b);
                self.drain();
            }
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
                self.drain();
            }
            if self.q.poll_timeout().is_some_and(|t| t <= now) {
                self.q.handle_timeout(now, &mut self.ep);
                self.drain();
            }
        }
    }

    /// The time each distinct OPTIONS (branch) first went out.
    fn new_options(&self) -> Vec<u64> {
        let mut seen = std::collections::HashSet::new();
        self.wire.iter().filter(|(_, r, _)| seen.insert(r.via().branch().unwrap().to_owned())).map(|(t, _, _)| *t).collect()
    }

    /// The send times of every copy of the OPTIONS first sent at `first` ms.
    fn copies_of(&self, first: u64) -> Vec<u64> {
        let branch = self.wire.iter().find(|(t, _, _)| *t == first).map(|(_, r, _)| r.via().branch().unwrap().to_owned()).unwrap();
        self.wire.iter().filter(|(_, r, _)| r.via().branch() == Some(branch.as_str())).map(|(t, _, _)| *t).collect()
    }

    fn changes(&self) -> Vec<(u64, State, State, Option<Duration>)> {
        self.changes
            .iter()
            .map(|(t, e)| match e {
                QualifyEvent::StateChanged { name, from, to, rtt } => {
                    assert_eq!(name, "bob");
                    (*t, *from, *to, *rtt)
                }
            })
            .collect()
    }
}

/// Timer E's copies of one OPTIONS first sent at `s` that got no answer (§17.1.2.2).
fn timer_e(s: u64) -> Vec<u64> {
    [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].iter().map(|d| s + d).collect()
}

#[test]
fn options_is_built_per_rfc3261_section_11() {
    let mut rig = Rig::answering(200, 20);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(60_000);
    let (t, req, _) = &rig.wire[0];
    assert_eq!(*t, 0, "first OPTIONS at once with no start jitter");
    assert_eq!(req.method(), &Method::Options);
    assert_eq!(req.uri(), &target().uri, "Request-URI = the target");
    assert_eq!(req.to().uri(), &target().uri, "To = the target");
    assert_eq!(req.to().tag(), None);
    assert!(req.from().tag().is_some(), "From carries our tag");
    assert_eq!(req.from().uri().to_string(), "sip:sipbridge@127.0.0.1");
    assert!(req.via().has_rfc3261_branch());
    assert_eq!(req.max_forwards(), Some(70));
    assert_eq!(req.cseq().seq, 1);
    assert_eq!(req.cseq().method, Method::Options);
    let h = |n| req.headers().get(n).map(|h| String::from_utf8_lossy(&h.value_bytes()).into_owned());
    assert_eq!(h(HeaderName::Accept).as_deref(), Some("application/sdp"));
    assert_eq!(h(HeaderName::Contact).as_deref(), Some("<sip:sipbridge@127.0.0.1:5060>"));
    assert_eq!(h(HeaderName::UserAgent).as_deref(), Some("sipbridge"));
    assert!(req.body().is_empty());
    // The next one: a new transaction (branch), a fresh Call-ID, the CSeq goes up.
    let (t2, next, _) = &rig.wire[1];
    assert_eq!(*t2, 60_000);
    assert_ne!(next.via().branch(), req.via().branch());
    assert_ne!(next.call_id(), req.call_id());
    assert_ne!(next.from().tag(), req.from().tag());
    assert_eq!(next.cseq().seq, 2);
    // A fixed seed builds the same bytes every run.
    let mut again = Rig::answering(200, 20);
    again.add(60 * SECOND, 2 * SECOND);
    again.run_until(60_000);
    let bytes = |r: &Rig| r.wire.iter().map(|(_, _, b)| b.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&rig), bytes(&again));
}

#[test]
fn reachable_at_first_answer_with_rtt_then_every_frequency_after_the_send() {
    let mut rig = Rig::answering(200, 20);
    rig.add(60 * SECOND, 2 * SECOND);
    assert_eq!(rig.q.state("bob"), Some((State::Unknown, None)));
    rig.run_until(19);
    assert_eq!(rig.q.state("bob"), Some((State::Unknown, None)));
    rig.run_until(200_000);
    assert_eq!(rig.new_options(), [0, 60_000, 120_000, 180_000]);
    assert_eq!(rig.wire.len(), 4, "answered at once: no retransmission");
    assert_eq!(rig.changes(), [(20, State::Unknown, State::Reachable, Some(ms(20)))]);
    assert_eq!(rig.q.state("bob"), Some((State::Reachable, Some(ms(20)))));
    assert_eq!(rig.q.iter().collect::<Vec<_>>(), [("bob", State::Reachable, Some(ms(20)))]);
    assert!(rig.passed.is_empty());
}

#[test]
fn unreachable_at_timer_f_then_every_10_s_overlapping_then_reachable_again() {
    // Alive until 100 s, silent until 202 s, alive again from then on.
    let peer: Peer = Box::new(|now, _, _| if !(100_000..202_000).contains(&now) { vec![(20, 200)] } else { Vec::new() });
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), peer);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(151_999);
    assert_eq!(rig.q.state("bob"), Some((State::Reachable, Some(ms(20)))));
    // Only the transaction layer retransmits the unanswered OPTIONS: Timer E, one branch.
    assert_eq!(rig.copies_of(120_000), timer_e(120_000));
    rig.run_until(152_000);
    assert_eq!(rig.q.state("bob"), Some((State::Unreachable, None)), "Timer F = 64·T1 = 32 s after the send");
    rig.run_until(192_000);
    assert_eq!(rig.q.outstanding("bob"), 4, "162, 172, 182 and 192 s are out together");
    rig.run_until(194_000);
    assert_eq!(rig.q.outstanding("bob"), 3, "162 s timed out at 194 s");
    rig.run_until(330_000);
    // Every 10 s from the timeout while Unreachable; every 60 s from the answered one.
    assert_eq!(rig.new_options(), [0, 60_000, 120_000, 162_000, 172_000, 182_000, 192_000, 202_000, 262_000, 322_000]);
    assert_eq!(
        rig.changes(),
        [
            (20, State::Unknown, State::Reachable, Some(ms(20))),
            (152_000, State::Reachable, State::Unreachable, None),
            (202_020, State::Unreachable, State::Reachable, Some(ms(20))),
        ],
        "late answers to the OPTIONS of 172, 182 and 192 s (retransmissions at 203.5 and 205.5 s) are older news and change nothing"
    );
    assert_eq!(rig.copies_of(162_000), timer_e(162_000));
    assert!(rig.passed.is_empty());
    assert_eq!(rig.ep.stats().transactions, 10, "one client transaction per OPTIONS");
}

#[test]
fn unreachable_polling_sends_nothing_on_a_tick_with_the_cap_out() {
    // T1 = 1 s makes Timer F 64 s: seven 10 s ticks per timeout, more than the cap of 4.
    let timers = TimerConfig { t1: SECOND, ..TimerConfig::default() };
    let mut rig = Rig::new(timers, QualifyConfig::default(), Box::new(|_, _, _| Vec::new()));
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(63_999);
    assert_eq!(rig.q.state("bob"), Some((State::Unknown, None)));
    rig.run_until(200_000);
    assert_eq!(rig.changes(), [(64_000, State::Unknown, State::Unreachable, None)]);
    // 114, 124, 134 s find 4 out (74 s times out at 138 s); 184, 194 s likewise.
    assert_eq!(rig.new_options(), [0, 74_000, 84_000, 94_000, 104_000, 144_000, 154_000, 164_000, 174_000]);
}

#[test]
fn slow_answer_is_lagged_fast_again_is_reachable() {
    let peer: Peer = Box::new(|now, _, copy| match (now < 100_000, copy) {
        (true, 0) => vec![(2500, 200)],
        (true, _) => Vec::new(),
        (false, _) => vec![(20, 200)],
    });
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), peer);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(150_000);
    assert_eq!(rig.new_options(), [0, 60_000, 120_000], "the next goes 60 s after the send, not after the slow answer");
    assert_eq!(rig.copies_of(0), [0, 500, 1500], "Timer E until the answer");
    assert_eq!(
        rig.changes(),
        [(2500, State::Unknown, State::Lagged, Some(ms(2500))), (120_020, State::Lagged, State::Reachable, Some(ms(20)))]
    );
    assert_eq!(rig.q.state("bob"), Some((State::Reachable, Some(ms(20)))));
}

#[test]
fn any_final_answer_means_alive() {
    for status in [404, 405, 403, 481, 501, 503, 603] {
        let mut rig = Rig::answering(status, 30);
        rig.add(60 * SECOND, 2 * SECOND);
        rig.run_until(61_000);
        assert_eq!(rig.changes(), [(30, State::Unknown, State::Reachable, Some(ms(30)))], "{status}");
        assert_eq!(rig.new_options(), [0, 60_000], "{status}");
    }
}

#[test]
fn provisional_is_not_an_answer() {
    let peer: Peer = Box::new(|_, _, copy| if copy == 0 { vec![(10, 100), (3000, 200)] } else { Vec::new() });
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), peer);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(2999);
    assert_eq!(rig.q.state("bob"), Some((State::Unknown, None)), "the 100 at 10 ms is ignored");
    rig.run_until(3000);
    assert_eq!(rig.changes(), [(3000, State::Unknown, State::Lagged, Some(ms(3000)))]);
    assert!(rig.passed.is_empty(), "the 100 is absorbed too");
}

#[test]
fn lossy_link_retransmissions_are_the_transaction_layers() {
    // The first two copies of every OPTIONS are lost; the third is answered.
    let peer: Peer = Box::new(|_, _, copy| if copy >= 2 { vec![(20, 200)] } else { Vec::new() });
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), peer);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(170_000);
    assert_eq!(rig.new_options(), [0, 60_000, 120_000]);
    for s in [0, 60_000, 120_000] {
        assert_eq!(rig.copies_of(s), [s, s + 500, s + 1500], "Timer E: T1, then 2·T1");
    }
    // Each copy is the same message byte for byte: a retransmission, not a new OPTIONS.
    for chunk in rig.wire.chunks(3) {
        assert!(chunk.iter().all(|(_, _, b)| *b == chunk[0].2));
    }
    assert_eq!(rig.wire.len(), 9);
    assert_eq!(rig.ep.stats().transactions, 3);
    assert_eq!(rig.changes(), [(1520, State::Unknown, State::Reachable, Some(ms(1520)))], "rtt from the first send");
}

#[test]
fn transport_error_is_unreachable_at_once() {
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), Box::new(|_, _, _| Vec::new()));
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(1000);
    rig.ep.handle_transport_error(Time::from_millis(1000), &flow());
    rig.drain();
    assert_eq!(rig.changes(), [(1000, State::Unknown, State::Unreachable, None)]);
    rig.run_until(25_000);
    assert_eq!(rig.new_options(), [0, 11_000, 21_000]);
}

#[test]
fn update_target_sends_at_once_and_old_answers_no_longer_count() {
    // The old address answers after 5 s; the new one at once.
    let peer: Peer = Box::new(|_, req, copy| match (req.uri().to_string().contains("5070"), copy) {
        (true, 0) => vec![(5000, 200)],
        (true, _) => Vec::new(),
        (false, _) => vec![(20, 200)],
    });
    let mut rig = Rig::new(TimerConfig::default(), QualifyConfig::default(), peer);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(1000);
    let moved = Target { uri: Uri::parse_str("sip:bob@127.0.0.1:5080").unwrap(), flow: flow() };
    assert!(rig.q.update_target(Time::from_millis(1000), "bob", moved.clone()));
    rig.run_until(1000);
    assert!(rig.q.update_target(Time::from_millis(1000), "bob", moved.clone()), "same target: nothing changes");
    rig.run_until(70_000);
    assert_eq!(rig.new_options(), [0, 1000, 61_000]);
    let at_1000: Vec<&Uri> = rig.wire.iter().filter(|(t, _, _)| *t == 1000).map(|(_, r, _)| r.uri()).collect();
    assert_eq!(at_1000, [&moved.uri], "the new target; the old OPTIONS's Timer E copies go on to the old one (500, 1500 ms)");
    assert_eq!(rig.copies_of(0), [0, 500, 1500, 3500], "until the old address's answer at 5 s ends it");
    assert_eq!(rig.changes(), [(1020, State::Unknown, State::Reachable, Some(ms(20)))], "the old address's 5 s answer is ignored");
    assert_eq!(rig.q.target("bob"), Some(&moved));
    assert!(!rig.q.update_target(Time::from_millis(70_000), "carol", moved));
}

#[test]
fn remove_stops_and_absorbs_late_answers() {
    let mut rig = Rig::answering(200, 500);
    rig.add(60 * SECOND, 2 * SECOND);
    rig.run_until(100);
    assert!(rig.q.remove("bob"));
    assert!(!rig.q.remove("bob"));
    rig.run_until(200_000);
    assert_eq!(rig.new_options(), [0]);
    assert!(rig.changes.is_empty());
    assert!(rig.passed.is_empty(), "the answer to the removed endpoint's OPTIONS is still ours");
    assert_eq!(rig.q.state("bob"), None);
    assert!(rig.q.is_empty());
    assert_eq!(rig.q.poll_timeout(), None);
}

#[test]
fn other_events_pass_through() {
    let mut rig = Rig::answering(200, 20);
    let mut ep = Endpoint::new(EndpointConfig::default());
    let tx = {
        let req = sip_message::RequestBuilder::new(Method::Message, target().uri)
            .from(sip_message::NameAddr::new(Uri::parse_str("sip:a@127.0.0.1").unwrap()))
            .via(sip_message::Transport::Udp, sip_message::Host::Ipv4([127, 0, 0, 1].into()), Some(5060))
            .build(ep.ids())
            .unwrap();
        ep.send_request(Time::ZERO, req, flow()).unwrap()
    };
    let failed = Event::Failed { tx, reason: Failure::Transport };
    assert!(matches!(rig.q.handle_event(Time::ZERO, &mut rig.ep, failed), Some(Event::Failed { .. })), "not one of ours");
}

#[test]
fn start_times_are_spread_within_a_second_and_reproducible() {
    let firsts = |seed: u64| {
        let mut ep = Endpoint::new(EndpointConfig { listeners: vec![(Transport::Udp, US.parse().unwrap())], ..Default::default() });
        let mut q = Qualifier::new(QualifyConfig { seed, ..QualifyConfig::default() });
        for i in 0..1000 {
            q.add(Time::ZERO, format!("ep{i}"), target(), 60 * SECOND, 2 * SECOND);
        }
        let mut at = Vec::new();
        while let Some(t) = q.poll_timeout() {
            q.handle_timeout(t, &mut ep);
            while ep.poll_transmit().is_some() {
                at.push(t.as_millis());
            }
        }
        at
    };
    let a = firsts(1);
    assert_eq!(a.len(), 1000);
    assert!(a.iter().all(|&t| t < 1000), "all within the first second");
    let per_ms = a.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(*t).or_insert(0) += 1;
        m
    });
    assert!(per_ms.len() > 500, "spread over the second: {} distinct ms", per_ms.len());
    assert!(per_ms.values().all(|&n| n <= 8), "no burst");
    assert_eq!(a, firsts(1), "same seed, same spread");
    assert_ne!(a, firsts(2));
}
