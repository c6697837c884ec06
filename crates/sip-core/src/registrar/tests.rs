#![allow(clippy::unwrap_used)]
use super::*;
use bytes::Bytes;
use sip_message::Message;

fn register(call_id: &str, cseq: u32, contacts: &[&str], expires: Option<&str>) -> Request {
    let mut text = format!(
        "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{cseq}\r\nFrom: <sip:alice@pbx.test>;tag=1\r\nTo: <sip:alice@pbx.test>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nUser-Agent: phone 1\r\n"
    );
    for c in contacts {
        text.push_str(&format!("Contact: {c}\r\n"));
    }
    if let Some(e) = expires {
        text.push_str(&format!("Expires: {e}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    parse(text)
}

fn parse(text: String) -> Request {
    match Message::parse(Bytes::from(text)).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "192.0.2.10:5062".parse().unwrap(),
        connection: None,
    }
}

fn at(s: u64) -> Time {
    Time::from_millis(s * 1000)
}

fn contacts(h: &[Header]) -> Vec<String> {
    h.iter().map(|h| h.value_str().unwrap().to_owned()).collect()
}

fn changes(r: &mut Registrar) -> Vec<Change> {
    std::iter::from_fn(|| r.poll_change()).collect()
}

#[test]
fn add_refresh_expire() {
    let mut r = Registrar::new(RegistrarConfig::default());
    let h = r.register(at(0), "alice", &register("c1", 1, &["<sip:alice@192.0.2.10:5062>"], Some("600")), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:alice@192.0.2.10:5062>;expires=600"]);
    let c = changes(&mut r);
    assert!(
        matches!(&c[..], [Change::Put { aor, binding }] if aor == "alice" && binding.expires_at == at(600) && binding.user_agent.as_deref() == Some("phone 1"))
    );
    assert_eq!(r.poll_timeout(), Some(at(600)));
    // Refresh at 300 s with a contact parameter lifetime overriding the header.
    let h =
        r.register(at(300), "alice", &register("c1", 2, &["<sip:alice@192.0.2.10:5062>;expires=120"], Some("600")), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:alice@192.0.2.10:5062>;expires=120"]);
    assert_eq!(r.bindings("alice").len(), 1);
    assert_eq!(r.poll_timeout(), Some(at(420)));
    changes(&mut r);
    // A fetch (no Contact) lists the binding with its time left.
    let h = r.register(at(400), "alice", &register("c1", 3, &[], None), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:alice@192.0.2.10:5062>;expires=20"]);
    assert!(changes(&mut r).is_empty(), "a fetch changes nothing");
    r.handle_timeout(at(419));
    assert_eq!(r.bindings("alice").len(), 1);
    r.handle_timeout(at(420));
    assert!(r.bindings("alice").is_empty());
    assert_eq!(r.poll_timeout(), None);
    assert!(matches!(&changes(&mut r)[..], [Change::Removed { why: Removal::Expired, .. }]));
}

#[test]
fn lifetimes_are_negotiated() {
    let mut r = Registrar::new(RegistrarConfig { min_expires: 60, max_expires: 3600, default_expires: 3600, max_contacts: 10 });
    let e = r.register(at(0), "alice", &register("c1", 1, &["<sip:a@h>"], Some("30")), &flow(), None).unwrap_err();
    assert_eq!(e, RegisterError::IntervalTooBrief(60));
    assert_eq!(e.status(), 423);
    assert_eq!(e.headers()[0].value_str(), Some("60"));
    assert!(r.is_empty(), "a 423 changes nothing");
    let h = r.register(at(0), "alice", &register("c1", 2, &["<sip:a@h>"], Some("86400")), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:a@h>;expires=3600"], "clamped to the maximum");
    let h = r.register(at(0), "alice", &register("c1", 3, &["<sip:a@h>"], None), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:a@h>;expires=3600"], "the default");
    let e = r.register(at(0), "alice", &register("c1", 4, &["<sip:a@h>;expires=soon"], None), &flow(), None).unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn unregister_one_and_all() {
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(at(0), "alice", &register("c1", 1, &["<sip:a@h1>", "<sip:a@h2>;q=0.5", "<sip:a@h3>"], Some("600")), &flow(), None).unwrap();
    assert_eq!(r.bindings("alice").len(), 3);
    assert_eq!(r.bindings("alice")[1].q, Some(500));
    changes(&mut r);
    let h = r.register(at(1), "alice", &register("c1", 2, &["<sip:a@h2>"], Some("0")), &flow(), None).unwrap();
    assert_eq!(contacts(&h), ["<sip:a@h1>;expires=599", "<sip:a@h3>;expires=599"]);
    assert!(
        matches!(&changes(&mut r)[..], [Change::Removed { why: Removal::Unregistered, contact, .. }] if contact.to_string() == "sip:a@h2")
    );
    // `*` needs Expires: 0, and nothing else.
    let e = r.register(at(2), "alice", &register("c1", 3, &["*"], None), &flow(), None).unwrap_err();
    assert_eq!(e.status(), 400);
    let e = r.register(at(2), "alice", &register("c1", 3, &["*"], Some("60")), &flow(), None).unwrap_err();
    assert_eq!(e.status(), 400);
    let h = r.register(at(2), "alice", &register("c1", 3, &["*"], Some("0")), &flow(), None).unwrap();
    assert!(h.is_empty());
    assert!(r.is_empty());
    assert_eq!(changes(&mut r).len(), 2);
}

#[test]
fn call_id_and_cseq_order() {
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(at(0), "alice", &register("c1", 5, &["<sip:a@h1>"], Some("600")), &flow(), None).unwrap();
    changes(&mut r);
    // Same Call-ID, same or lower CSeq: a stale request, refused, nothing changes.
    for cseq in [5, 4] {
        let e = r.register(at(1), "alice", &register("c1", cseq, &["<sip:a@h1>", "<sip:a@h9>"], Some("0")), &flow(), None).unwrap_err();
        assert_eq!(e, RegisterError::OutOfOrder { stored: 5, got: cseq });
        assert_eq!(e.status(), 500);
    }
    assert_eq!(r.bindings("alice").len(), 1);
    assert!(changes(&mut r).is_empty());
    // Another Call-ID (the phone rebooted): any CSeq updates the binding.
    r.register(at(2), "alice", &register("c2", 1, &["<sip:a@h1>"], Some("900")), &flow(), None).unwrap();
    assert_eq!(r.bindings("alice")[0].call_id, "c2");
    assert_eq!(r.bindings("alice")[0].expires_at, at(902));
    // `*` from a stale request is refused too.
    let e = r.register(at(3), "alice", &register("c2", 1, &["*"], Some("0")), &flow(), None).unwrap_err();
    assert_eq!(e.status(), 500);
}

#[test]
fn contacts_match_by_uri_equivalence() {
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(at(0), "alice", &register("c1", 1, &["<sip:%61lice@Phone.example:5062;transport=UDP>"], Some("600")), &flow(), None)
        .unwrap();
    r.register(at(1), "alice", &register("c1", 2, &["<sip:alice@phone.example:5062;transport=udp;ob>"], Some("600")), &flow(), None)
        .unwrap();
    assert_eq!(r.bindings("alice").len(), 1, "the same contact, refreshed");
    r.register(at(2), "alice", &register("c1", 3, &["<sip:alice@phone.example>"], Some("600")), &flow(), None).unwrap();
    assert_eq!(r.bindings("alice").len(), 2, "without the port it is another contact (§19.1.4)");
}

#[test]
fn contact_limit_replaces_the_oldest() {
    let mut r = Registrar::new(RegistrarConfig { max_contacts: 2, ..RegistrarConfig::default() });
    r.register(at(0), "alice", &register("c1", 1, &["<sip:a@h1>"], Some("600")), &flow(), None).unwrap();
    r.register(at(10), "alice", &register("c2", 1, &["<sip:a@h2>"], Some("600")), &flow(), None).unwrap();
    changes(&mut r);
    r.register(at(20), "alice", &register("c3", 1, &["<sip:a@h3>"], Some("600")), &flow(), None).unwrap();
    let uris: Vec<String> = r.bindings("alice").iter().map(|b| b.contact.uri().to_string()).collect();
    assert_eq!(uris, ["sip:a@h2", "sip:a@h3"]);
    let c = changes(&mut r);
    assert!(matches!(&c[0], Change::Removed { why: Removal::Replaced, contact, .. } if contact.to_string() == "sip:a@h1"));
    assert!(matches!(&c[1], Change::Put { .. }));
}

#[test]
fn nat_registration_targets_the_source() {
    let mut r = Registrar::new(RegistrarConfig::default());
    let src = Flow { remote: "203.0.113.7:40000".parse().unwrap(), ..flow() };
    let ev = NatEvidence::Via { sent_by: "10.0.0.5:5060".parse().unwrap(), source: src.remote };
    let h = r
        .register(at(0), "alice", &register("c1", 1, &["<sip:alice@10.0.0.5:5060;transport=udp;ob>"], Some("60")), &src, Some(ev))
        .unwrap();
    assert_eq!(contacts(&h), ["<sip:alice@10.0.0.5:5060;transport=udp;ob>;expires=60"], "the phone sees its own Contact");
    let b = &r.bindings("alice")[0];
    assert_eq!(b.target.to_string(), "sip:alice@203.0.113.7:40000;ob");
    assert_eq!(b.nat, Some(ev));
    // Over TCP the target says so, and the flow keeps the connection.
    let tcp = Flow { transport: Transport::Tcp, connection: None, ..src };
    r.register(at(1), "bob", &register("c2", 1, &["<sip:bob@10.0.0.6:5060;transport=tcp>"], Some("60")), &tcp, Some(ev)).unwrap();
    assert_eq!(r.bindings("bob")[0].target.to_string(), "sip:bob@203.0.113.7:40000;transport=tcp");
}

#[test]
fn restore_skips_expired() {
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(at(0), "alice", &register("c1", 1, &["<sip:a@h1>"], Some("600")), &flow(), None).unwrap();
    let b = r.bindings("alice")[0].clone();
    let mut fresh = Registrar::new(RegistrarConfig::default());
    fresh.restore(at(100), "alice", b.clone());
    assert_eq!(fresh.bindings("alice"), std::slice::from_ref(&b));
    assert!(fresh.poll_change().is_none());
    let mut late = Registrar::new(RegistrarConfig::default());
    late.restore(at(600), "alice", b);
    assert!(late.is_empty());
}

#[test]
fn q_values() {
    assert_eq!(parse_q("1"), Some(1000));
    assert_eq!(parse_q("0.5"), Some(500));
    assert_eq!(parse_q("0.125"), Some(125));
    assert_eq!(parse_q("1.000"), Some(1000));
    assert_eq!(parse_q("1.5"), None);
    assert_eq!(parse_q("0.1234"), None);
    assert_eq!(parse_q("x"), None);
}
