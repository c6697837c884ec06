//! Transaction matching (§17.1.3, §17.2.3, RFC 2543 fallback), CANCEL (§9), merged
//! requests (§8.2.2.2), stream framing, keep-alives and transport choice (§18.1.1).

use bytes::Bytes;
use sip_core::{ConnectionId, Endpoint, EndpointConfig, Event, Failure, Flow, Time, Transmit, Transport};
use sip_message::{Host, Message, Method, NameAddr, Request, RequestBuilder, Response, Uri};

fn udp() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "192.0.2.5:5062".parse().expect("addr"),
        connection: None,
    }
}

fn tcp(c: u64) -> Flow {
    Flow { transport: Transport::Tcp, connection: Some(ConnectionId(c)), ..udp() }
}

fn ep() -> Endpoint {
    Endpoint::new(EndpointConfig {
        listeners: vec![(Transport::Udp, "127.0.0.1:5060".parse().expect("a")), (Transport::Tcp, "127.0.0.1:5060".parse().expect("a"))],
        ..Default::default()
    })
}

fn drain(ep: &mut Endpoint) -> (Vec<Transmit>, Vec<Event>) {
    let (mut t, mut e) = (Vec::new(), Vec::new());
    loop {
        let before = t.len() + e.len();
        t.extend(std::iter::from_fn(|| ep.poll_transmit()));
        e.extend(std::iter::from_fn(|| ep.poll_event()));
        if t.len() + e.len() == before {
            return (t, e);
        }
    }
}

fn responses(t: &[Transmit]) -> Vec<Response> {
    t.iter()
        .filter_map(|t| t.payload())
        .filter_map(|p| match Message::parse(p.clone()) {
            Ok(Message::Response(r)) => Some(r),
            _ => None,
        })
        .collect()
}

fn invite_text(branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5:5062{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.5>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: call-1@192.0.2.5\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn cancel_text(branch: &str) -> String {
    format!(
        "CANCEL sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5:5062{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.5>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: call-1@192.0.2.5\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    )
}

fn feed(ep: &mut Endpoint, ms: u64, text: &str) -> (Vec<Transmit>, Vec<Event>) {
    ep.handle_datagram(Time::from_millis(ms), udp(), Bytes::from(text.to_owned()));
    drain(ep)
}

fn request_tx(events: &[Event]) -> sip_core::TransactionId {
    match events {
        [Event::Request { tx, .. }] => *tx,
        other => panic!("expected one request event, got {other:?}"),
    }
}

#[test]
fn retransmitted_request_gets_the_same_response_and_no_second_event() {
    let mut ep = ep();
    let inv = invite_text(";branch=z9hG4bKr1", "");
    let (_, ev) = feed(&mut ep, 0, &inv);
    let tx = request_tx(&ev);
    ep.reply(Time::from_millis(10), tx, 404, vec![]).expect("404");
    let (t1, _) = drain(&mut ep);
    let (t2, ev2) = feed(&mut ep, 300, &inv);
    assert!(ev2.is_empty(), "no event for a retransmission");
    let (a, b) = (responses(&t1), responses(&t2));
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    assert_eq!(a[0].to().tag(), b[0].to().tag(), "same To tag");
    assert_eq!(t1[0].payload(), t2[0].payload(), "byte-identical");
}

#[test]
fn responses_carry_received_and_rport_and_go_to_the_source_port() {
    let mut ep = ep();
    let inv = invite_text(";rport;branch=z9hG4bKr2", "").replace("192.0.2.5:5062;rport", "10.0.0.1:5062;rport");
    let (_, ev) = feed(&mut ep, 0, &inv);
    let tx = request_tx(&ev);
    ep.reply(Time::ZERO, tx, 486, vec![]).expect("486");
    let (t, _) = drain(&mut ep);
    let Transmit::Send { flow, payload } = &t[0] else { panic!("send") };
    assert_eq!(flow.remote, udp().remote, "RFC 3581: to the source IP and port");
    let r = responses(std::slice::from_ref(&t[0])).remove(0);
    assert_eq!(r.via().received(), Some("192.0.2.5"));
    assert_eq!(r.via().rport(), Some(Some(5062)));
    assert!(payload.starts_with(b"SIP/2.0 486 Busy Here\r\n"));
}

#[test]
fn cancel_matches_its_invite_gets_200_and_reports_cancelled() {
    let mut ep = ep();
    let (_, ev) = feed(&mut ep, 0, &invite_text(";branch=z9hG4bKc1", ""));
    let tx = request_tx(&ev);
    let (t, ev) = feed(&mut ep, 100, &cancel_text(";branch=z9hG4bKc1"));
    assert!(matches!(ev[..], [Event::Cancelled { tx: t }] if t == tx));
    let r = responses(&t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].status(), r[0].cseq().method.clone()), (200, Method::Cancel));
    ep.reply(Time::from_millis(110), tx, 487, vec![]).expect("487 to the INVITE");
    let (t, _) = drain(&mut ep);
    assert_eq!(responses(&t)[0].status(), 487);
    // A CANCEL for nothing: 481.
    let (t, ev) = feed(&mut ep, 200, &cancel_text(";branch=z9hG4bKnothing"));
    assert!(ev.is_empty());
    assert_eq!(responses(&t)[0].status(), 481);
}

#[test]
fn rfc2543_requests_match_by_fields_and_their_ack_by_to_tag() {
    let mut ep = ep();
    let inv = invite_text("", ""); // no branch at all
    let (_, ev) = feed(&mut ep, 0, &inv);
    let tx = request_tx(&ev);
    let (t, ev) = feed(&mut ep, 100, &inv);
    assert!(ev.is_empty() && t.is_empty(), "retransmission absorbed (nothing sent yet)");
    ep.reply(Time::from_millis(150), tx, 404, vec![]).expect("404");
    let (t, _) = drain(&mut ep);
    let tag = responses(&t)[0].to().tag().expect("tag").to_owned();
    let wrong = "ACK sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5:5062\r\nFrom: <sip:alice@192.0.2.5>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=other\r\nCall-ID: call-1@192.0.2.5\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    let (_, ev) = feed(&mut ep, 200, wrong);
    assert!(matches!(ev[..], [Event::Ack { .. }]), "a To tag that is not ours does not match");
    assert_eq!(ep.transaction_state(tx), Some("Completed"));
    let right = wrong.replace("tag=other", &format!("tag={tag}"));
    let (_, ev) = feed(&mut ep, 300, &right);
    assert!(ev.is_empty());
    assert_eq!(ep.transaction_state(tx), Some("Confirmed"));
    // And a CANCEL without branch finds a 2543 INVITE too.
    let mut ep2 = self::ep();
    let (_, ev) = feed(&mut ep2, 0, &inv);
    let tx2 = request_tx(&ev);
    let (_, ev) = feed(&mut ep2, 10, &cancel_text(""));
    assert!(matches!(ev[..], [Event::Cancelled { tx }] if tx == tx2));
}

#[test]
fn merged_request_with_another_branch_gets_482() {
    let mut ep = ep();
    let (_, ev) = feed(&mut ep, 0, &invite_text(";branch=z9hG4bKm1", ""));
    let _ = request_tx(&ev);
    let (t, ev) = feed(&mut ep, 10, &invite_text(";branch=z9hG4bKm2", ""));
    assert!(ev.is_empty(), "the merged copy never reaches the layer above");
    assert_eq!(responses(&t)[0].status(), 482);
}

#[test]
fn unmatched_responses_are_dropped_and_counted() {
    let mut ep = ep();
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let (t, ev) = feed(&mut ep, 0, resp);
    assert!(t.is_empty() && ev.is_empty());
    assert_eq!(ep.stats().responses_dropped, 1);
}

/// An INVITE from us to 192.0.2.5:5062.
fn outgoing_invite(ep: &mut Endpoint) -> Request {
    RequestBuilder::new(Method::Invite, Uri::parse_str("sip:bob@192.0.2.5:5062").expect("uri"))
        .from(NameAddr::new(Uri::parse_str("sip:sipbridge@127.0.0.1").expect("uri")))
        .via(sip_message::Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), Some(5060))
        .build(ep.ids())
        .expect("invite")
}

fn options(ep: &mut Endpoint, size: usize) -> Request {
    let mut b = RequestBuilder::new(Method::Options, Uri::parse_str("sip:peer@192.0.2.5:5062").expect("uri"))
        .from(NameAddr::new(Uri::parse_str("sip:sipbridge@127.0.0.1").expect("uri")))
        .via(sip_message::Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), Some(5060));
    if size > 0 {
        b = b.header(sip_message::Header::other("X-Pad", "x".repeat(size)));
    }
    b.build(ep.ids()).expect("request")
}

#[test]
fn a_request_larger_than_the_mtu_goes_over_tcp() {
    let mut ep = ep();
    let small = options(&mut ep, 0);
    ep.send_request(Time::ZERO, small, udp()).expect("sent");
    let big = options(&mut ep, 1400);
    ep.send_request(Time::ZERO, big, udp()).expect("sent");
    let (t, _) = drain(&mut ep);
    let flows: Vec<_> = t.iter().filter_map(|t| if let Transmit::Send { flow, .. } = t { Some(flow.transport) } else { None }).collect();
    assert_eq!(flows, [Transport::Udp, Transport::Tcp]);
    let Some(p) = t[1].payload() else { panic!() };
    assert!(String::from_utf8_lossy(p).contains("Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK"), "Via names TCP");
}

#[test]
fn stream_framing_error_closes_the_connection_and_ping_gets_pong() {
    let mut ep = ep();
    ep.handle_stream(Time::ZERO, tcp(3), b"\r\n\r\n");
    let (t, _) = drain(&mut ep);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].payload().map(|b| b.as_ref()), Some(&b"\r\n"[..]), "RFC 5626 pong");
    let good = invite_text(";branch=z9hG4bKs1", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    // Split across two reads.
    ep.handle_stream(Time::ZERO, tcp(3), &good.as_bytes()[..40]);
    assert!(drain(&mut ep).1.is_empty());
    ep.handle_stream(Time::ZERO, tcp(3), &good.as_bytes()[40..]);
    let (_, ev) = drain(&mut ep);
    assert_eq!(ev.len(), 1);
    ep.handle_stream(Time::ZERO, tcp(3), b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n");
    let (t, _) = drain(&mut ep);
    assert!(matches!(t[..], [Transmit::Close { connection: ConnectionId(3) }]));
}

#[test]
fn a_bad_request_on_a_stream_is_answered_and_the_stream_goes_on() {
    let mut ep = ep();
    let bad = "OPTIONS sip:a@127.0.0.1 SIP/7.0\r\nVia: SIP/2.0/TCP 192.0.2.5:5062;branch=z9hG4bKv\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: v\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    ep.handle_stream(Time::ZERO, tcp(4), bad.as_bytes());
    let (t, _) = drain(&mut ep);
    let Transmit::Send { flow, payload } = &t[0] else { panic!("send") };
    assert!(payload.starts_with(b"SIP/2.0 505 "));
    assert_eq!(flow.connection, Some(ConnectionId(4)), "answered on the same connection");
    let ok = bad.replace("SIP/7.0", "SIP/2.0").replace("z9hG4bKv", "z9hG4bKw");
    ep.handle_stream(Time::ZERO, tcp(4), ok.as_bytes());
    let (t, _) = drain(&mut ep);
    assert!(t[0].payload().is_some_and(|p| p.starts_with(b"SIP/2.0 200 OK")));
}

#[test]
fn transport_error_fails_the_client_transaction_with_503() {
    let mut ep = ep();
    let req = options(&mut ep, 0);
    let tx = ep.send_request(Time::ZERO, req, udp()).expect("sent");
    let _ = drain(&mut ep);
    ep.handle_transport_error(Time::from_millis(5), &udp());
    let (_, ev) = drain(&mut ep);
    assert!(matches!(ev[..], [Event::Failed { tx: t, reason: Failure::Transport }] if t == tx));
    assert_eq!(Failure::Transport.status(), 503);
    assert_eq!(Failure::Timeout(sip_core::Timer::B).status(), 408);
}

#[test]
fn cancel_waits_for_a_provisional_then_goes_out_with_the_invite_branch() {
    let mut ep = ep();
    let req = outgoing_invite(&mut ep);
    let tx = ep.send_request(Time::ZERO, req.clone(), udp()).expect("sent");
    let _ = drain(&mut ep);
    ep.cancel(Time::from_millis(100), tx).expect("cancel accepted");
    let (t, _) = drain(&mut ep);
    assert!(t.is_empty(), "§9.1: no CANCEL before a provisional");
    let ringing = req.reply(180).to_tag("b").build(&mut sip_message::SeededIds::new(1)).expect("180").to_bytes();
    ep.handle_datagram(Time::from_millis(200), udp(), ringing);
    let (t, ev) = drain(&mut ep);
    assert!(matches!(ev[..], [Event::Response { .. }]));
    let cancel = match Message::parse(t[0].payload().expect("payload").clone()) {
        Ok(Message::Request(r)) => r,
        _ => panic!("CANCEL"),
    };
    assert_eq!(cancel.method(), &Method::Cancel);
    assert_eq!(cancel.via().branch(), req.via().branch());
    assert_eq!(cancel.cseq().seq, req.cseq().seq);
    assert_eq!(cancel.to().tag(), None, "To as in the INVITE");
}

#[test]
fn a_request_we_sent_that_comes_back_is_a_loop_but_a_hairpin_is_not() {
    let mut ep = ep();
    let ours = outgoing_invite(&mut ep);
    ep.send_request(Time::ZERO, ours.clone(), udp()).expect("sent");
    let _ = drain(&mut ep);
    // A proxy at 192.0.2.5 sends it straight back: its Via on top of ours, same R-URI.
    let text = String::from_utf8(ours.to_bytes().to_vec()).expect("utf8");
    let back = text.replacen("Via: ", "Via: SIP/2.0/UDP 192.0.2.5:5062;branch=z9hG4bKproxy1\r\nVia: ", 1);
    // The same request retargeted to another user (a spiral through us) is not a loop.
    let hairpin = back.replacen("INVITE sip:bob@192.0.2.5:5062", "INVITE sip:carol@127.0.0.1", 1).replace("z9hG4bKproxy1", "z9hG4bKproxy2");
    let (_, ev) = feed(&mut ep, 10, &hairpin);
    assert_eq!(ev.len(), 1, "a spiral is not a loop");
    // Sent back unchanged, it is (482, and the layer above never hears of it).
    let mut ep2 = self::ep();
    ep2.send_request(Time::ZERO, ours, udp()).expect("sent");
    let _ = drain(&mut ep2);
    let (t, ev) = feed(&mut ep2, 10, &back);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(responses(&t)[0].status(), 482);
}

#[test]
fn options_lists_allow_accept_and_supported() {
    let mut ep = ep();
    let opt = "OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5:5062;branch=z9hG4bKo1\r\nFrom: <sip:a@192.0.2.5>;tag=1\r\nTo: <sip:sipbridge@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let (t, ev) = feed(&mut ep, 0, opt);
    assert!(ev.is_empty());
    let r = &responses(&t)[0];
    assert_eq!(r.status(), 200);
    let allow: Vec<_> = r.headers().values(sip_message::HeaderName::Allow).collect();
    assert_eq!(allow, ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"].map(|m| Bytes::from_static(m.as_bytes())));
    assert!(r.headers().get(sip_message::HeaderName::Accept).is_some_and(|h| h.value() == b"application/sdp"));
    assert!(r.headers().get(sip_message::HeaderName::Supported).is_some());
    assert!(r.to().tag().is_some());
}

#[test]
fn an_invite_the_layer_above_never_answers_gets_500_at_the_limit() {
    let mut ep = Endpoint::new(EndpointConfig { unanswered_invite_limit: std::time::Duration::from_secs(60), ..Default::default() });
    let (_, ev) = feed(&mut ep, 0, &invite_text(";branch=z9hG4bKu1", ""));
    let tx = request_tx(&ev);
    ep.handle_timeout(Time::from_millis(200));
    let (t, _) = drain(&mut ep);
    assert_eq!(responses(&t)[0].status(), 100);
    assert_eq!(ep.poll_timeout(), Some(Time::from_millis(60_000)));
    ep.handle_timeout(Time::from_millis(60_000));
    let (t, ev) = drain(&mut ep);
    assert_eq!(responses(&t)[0].status(), 500);
    assert!(matches!(ev[..], [Event::ServerFailed { tx: t, reason: Failure::Unanswered }] if t == tx));
    assert_eq!(ep.transaction_state(tx), Some("Completed"));
    // And a non-INVITE nobody answers ends after 64·T1 without a word.
    let bye = invite_text(";branch=z9hG4bKu2", "").replace("INVITE", "BYE").replace("tag=a1", "tag=a9");
    let (_, ev) = feed(&mut ep, 61_000, &bye);
    let bye_tx = request_tx(&ev);
    ep.handle_timeout(Time::from_millis(61_000 + 32_000));
    let (t, ev) = drain(&mut ep);
    assert!(t.iter().all(|x| x.payload().is_none_or(|p| !p.starts_with(b"SIP/2.0 5"))));
    assert!(ev.iter().any(|e| matches!(e, Event::ServerFailed { tx, reason: Failure::Unanswered } if *tx == bye_tx)));
    assert_eq!(ep.transaction_state(bye_tx), None);
}

#[test]
fn a_cancelled_invite_without_final_ends_64_t1_after_the_cancel() {
    let mut ep = ep();
    let req = outgoing_invite(&mut ep);
    let tx = ep.send_request(Time::ZERO, req.clone(), udp()).expect("sent");
    let ringing = req.reply(180).to_tag("b").build(&mut sip_message::SeededIds::new(1)).expect("180").to_bytes();
    ep.handle_datagram(Time::from_millis(100), udp(), ringing);
    let _ = drain(&mut ep);
    ep.cancel(Time::from_millis(1000), tx).expect("cancel");
    let _ = drain(&mut ep);
    let mut last = Vec::new();
    while let Some(at) = ep.poll_timeout() {
        ep.handle_timeout(at);
        last.extend(drain(&mut ep).1.into_iter().map(|e| (at, e)));
    }
    assert!(
        matches!(last[..], [(at, Event::Failed { tx: t, reason: Failure::Cancelled })] if t == tx && at == Time::from_millis(33_000)),
        "{last:?}"
    );
    assert_eq!(ep.transaction_count(), 0);
}

#[test]
fn a_tcp_client_transaction_learns_its_connection_and_fails_when_it_closes() {
    let mut ep = ep();
    let req = options(&mut ep, 0);
    let to = Flow { transport: Transport::Tcp, connection: None, ..udp() };
    let tx = ep.send_request(Time::ZERO, req.clone(), to).expect("sent");
    let _ = drain(&mut ep);
    let trying = req.reply(100).build(&mut sip_message::SeededIds::new(1)).expect("100").to_bytes();
    ep.handle_stream(Time::from_millis(5), tcp(9), &trying);
    let _ = drain(&mut ep);
    ep.handle_connection_closed(Time::from_millis(10), ConnectionId(9));
    let (_, ev) = drain(&mut ep);
    assert!(matches!(ev[..], [Event::Failed { tx: t, reason: Failure::Transport }] if t == tx), "{ev:?}");
}

#[test]
fn a_response_with_cseq_ack_is_dropped() {
    let mut ep = ep();
    let req = outgoing_invite(&mut ep);
    let tx = ep.send_request(Time::ZERO, req.clone(), udp()).expect("sent");
    let _ = drain(&mut ep);
    let busy = String::from_utf8(req.reply(486).to_tag("b").build(&mut sip_message::SeededIds::new(1)).expect("486").to_bytes().to_vec())
        .expect("utf8")
        .replace(" INVITE\r\n", " ACK\r\n");
    let (t, ev) = feed(&mut ep, 10, &busy);
    assert!(t.is_empty() && ev.is_empty());
    assert_eq!(ep.transaction_state(tx), Some("Calling"));
}

#[test]
fn provisional_and_final_replies_share_one_to_tag() {
    let mut ep = ep();
    let (_, ev) = feed(&mut ep, 0, &invite_text(";branch=z9hG4bKt1", ""));
    let tx = request_tx(&ev);
    ep.reply(Time::ZERO, tx, 180, vec![]).expect("180");
    ep.reply(Time::ZERO, tx, 486, vec![]).expect("486");
    let (t, _) = drain(&mut ep);
    let r = responses(&t);
    assert_eq!(r.len(), 2);
    assert!(r[0].to().tag().is_some());
    assert_eq!(r[0].to().tag(), r[1].to().tag());
}
