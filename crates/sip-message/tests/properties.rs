//! Property tests: generated messages read back what was generated and survive
//! parse → print → parse; arbitrary and mutated bytes never panic the datagram parser or
//! the stream decoder (the stable counterpart of the `fuzz/` targets, so CI runs it).

use proptest::prelude::*;
use sip_message::bytes::Bytes;
use sip_message::{Frame, Message, StreamDecoder};

/// One generated message and the values it must read back.
#[derive(Debug, Clone)]
struct Gen {
    wire: Vec<u8>,
    method: String,
    user: String,
    host: String,
    port: Option<u16>,
    branches: Vec<String>,
    from_tag: String,
    display: Option<String>,
    call_id: String,
    cseq: u32,
    max_forwards: u8,
    contacts: usize,
    body: Vec<u8>,
    is_response: Option<u16>,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_owned()),
    ]
}

/// White space the RFC 4475 way: none, spaces, tabs, or a fold.
fn sws() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(""), Just(" "), Just("  "), Just("\t"), Just("\r\n "), Just(" \r\n\t")]
}

fn name(full: &'static str, compact: Option<&'static str>) -> impl Strategy<Value = String> {
    let mut choices = vec![full.to_owned(), full.to_ascii_lowercase(), full.to_ascii_uppercase()];
    if let Some(c) = compact {
        choices.push(c.to_owned());
        choices.push(c.to_ascii_uppercase());
    }
    proptest::sample::select(choices)
}

/// A display name: a token run or a quoted string with escapes.
fn display() -> impl Strategy<Value = Option<(String, String)>> {
    prop_oneof![
        Just(None),
        "[A-Za-z][A-Za-z0-9]{0,8}( [A-Za-z0-9]{1,8}){0,2}".prop_map(|s| Some((s.clone(), s))),
        "[ -~]{0,16}".prop_map(|s| {
            let mut q = String::from("\"");
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            Some((q, s))
        }),
    ]
}

prop_compose! {
    fn message()(
        response in proptest::option::of(prop_oneof![100u16..=199, 200u16..=299, 300u16..=699]),
        method in prop_oneof![Just("INVITE".to_owned()), Just("OPTIONS".to_owned()), Just("BYE".to_owned()), token()],
        user in "[a-z0-9]{1,10}",
        host in host(),
        port in proptest::option::of(1u16..),
        vias in proptest::collection::vec((prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("SCTP")], host(), "[a-zA-Z0-9]{1,12}", any::<bool>()), 1..5),
        via_rows in any::<bool>(),
        from_tag in "[a-zA-Z0-9]{1,12}",
        disp in display(),
        call_id in "[a-zA-Z0-9.!%*_+`'~-]{1,20}(@[a-z0-9.]{1,12})?",
        cseq in any::<u32>(),
        mf in any::<u8>(),
        contacts in proptest::collection::vec(("[a-z]{1,6}", host(), proptest::option::of("[0-9]\\.[0-9]{1,3}")), 0..3),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        extra in proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,20}"), 0..3),
        names in (name("Via", Some("v")), name("From", Some("f")), name("To", Some("t")), name("Call-ID", Some("i")), name("CSeq", None), name("Contact", Some("m")), name("Content-Length", Some("l"))),
        ws in proptest::collection::vec(sws(), 8),
        reason in "[ -~]{0,12}",
    ) -> Gen {
        let (via_n, from_n, to_n, cid_n, cseq_n, contact_n, cl_n) = names;
        let mut w = String::new();
        let sip_uri = match port { Some(p) => format!("sip:{user}@{host}:{p}"), None => format!("sip:{user}@{host}") };
        match response {
            Some(code) => w.push_str(&format!("SIP/2.0 {code} {reason}\r\n")),
            None => w.push_str(&format!("{method} {sip_uri} SIP/2.0\r\n")),
        }
        let via_text: Vec<String> = vias.iter().map(|(t, h, b, rport)| {
            format!("SIP{}/{}2.0/{t} {h}{};branch{}={}z9hG4bK{b}", ws[0], ws[1], if *rport { ";rport" } else { "" }, ws[2], ws[3])
        }).collect();
        if via_rows {
            for v in &via_text { w.push_str(&format!("{via_n}{}:{v}\r\n", ws[4])); }
        } else {
            w.push_str(&format!("{via_n}:{}\r\n", via_text.join(&format!(",{}", ws[5]))));
        }
        let (dn_wire, dn) = match disp { Some((wire, value)) => (format!("{wire} "), Some(value)), None => (String::new(), None) };
        w.push_str(&format!("{from_n}:{}{dn_wire}<sip:caller@example.com>{};{}tag={from_tag}\r\n", ws[6], ws[7], ws[2]));
        w.push_str(&format!("{to_n}: <{sip_uri}>\r\n"));
        w.push_str(&format!("{cid_n}: {call_id}\r\n"));
        let cseq_method = if response.is_some() { "INVITE".to_owned() } else { method.clone() };
        w.push_str(&format!("{cseq_n}: {cseq}{} {cseq_method}\r\n", ws[3]));
        w.push_str(&format!("Max-Forwards: {mf:03}\r\n"));
        for (u, h, q) in &contacts {
            let qp = q.as_ref().map(|q| format!(";q={q}")).unwrap_or_default();
            w.push_str(&format!("{contact_n}: <sip:{u}@{h}>{qp}\r\n"));
        }
        for (n, v) in &extra {
            w.push_str(&format!("{n}: {v}\r\n"));
        }
        w.push_str(&format!("{cl_n}{}: {}\r\n\r\n", ws[4], body.len()));
        let mut wire = w.into_bytes();
        wire.extend_from_slice(&body);
        Gen {
            wire,
            method: if response.is_some() { "INVITE".into() } else { method },
            user,
            host,
            port,
            branches: vias.iter().map(|(_, _, b, _)| format!("z9hG4bK{b}")).collect(),
            from_tag,
            display: dn,
            call_id,
            cseq,
            max_forwards: mf,
            contacts: contacts.len(),
            body,
            is_response: response,
        }
    }
}

/// 512 cases unless `PROPTEST_CASES` asks for more (a long run before a release).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    ProptestConfig::with_cases(cases)
}

fn parse(b: &[u8]) -> Result<Message, sip_message::ParseError> {
    Message::parse(Bytes::copy_from_slice(b))
}

proptest! {
    #![proptest_config(config())]

    /// Generated messages parse, read back what was generated, and round-trip.
    #[test]
    fn generated_messages_read_back_and_round_trip(g in message()) {
        let m = parse(&g.wire).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&g.wire))))?;
        check_params(m.via().params())?;
        check_params(m.from().params())?;
        match (&m, g.is_response) {
            (Message::Request(r), None) => {
                prop_assert_eq!(r.method().as_str(), g.method.as_str());
                let u = r.uri().as_sip().expect("sip uri");
                prop_assert_eq!(u.user().map(|t| t.as_str()), Some(g.user.as_str()));
                prop_assert_eq!(u.host().to_string(), g.host.clone());
                prop_assert_eq!(u.port(), g.port);
                prop_assert_eq!(r.max_forwards(), Some(u32::from(g.max_forwards)));
            }
            (Message::Response(r), Some(code)) => prop_assert_eq!(r.status(), code),
            _ => prop_assert!(false, "wrong kind"),
        }
        let (vias, from, call_id, cseq, contacts, body) = match &m {
            Message::Request(r) => (r.vias(), r.from(), r.call_id(), r.cseq(), r.contacts(), r.body()),
            Message::Response(r) => (r.vias(), r.from(), r.call_id(), r.cseq(), r.contacts(), r.body()),
        };
        let branches: Vec<String> = vias.expect("vias").iter().map(|v| v.branch().unwrap_or("").to_owned()).collect();
        prop_assert_eq!(branches, g.branches.clone());
        prop_assert_eq!(from.tag(), Some(g.from_tag.as_str()));
        prop_assert_eq!(from.display_name().map(|d| d.to_vec()), g.display.as_ref().map(|d| d.as_bytes().to_vec()));
        prop_assert_eq!(call_id.as_str(), g.call_id.as_str());
        prop_assert_eq!(cseq.seq, g.cseq);
        prop_assert_eq!(cseq.method.as_str(), g.method.as_str());
        prop_assert_eq!(contacts.addrs().len(), g.contacts);
        prop_assert_eq!(body.as_ref(), &g.body[..]);

        let printed = m.to_bytes();
        let again = Message::parse(printed.clone()).map_err(|e| TestCaseError::fail(format!("reprint: {e}")))?;
        prop_assert_eq!(&again, &m);
        prop_assert_eq!(again.to_bytes(), printed);
    }

    /// The same message through the stream decoder in two reads at any split.
    #[test]
    fn generated_messages_stream_at_any_split(g in message(), cut in any::<prop::sample::Index>()) {
        let whole = parse(&g.wire).expect("generated messages parse");
        let cut = cut.index(g.wire.len() + 1);
        let mut d = StreamDecoder::new();
        d.push(&g.wire[..cut]);
        let first = d.decode().expect("no error");
        d.push(&g.wire[cut..]);
        let got = match first { Some(f) => f, None => d.decode().expect("no error").expect("a frame") };
        prop_assert_eq!(got, Frame::Message(whole));
    }

    /// Arbitrary bytes: never a panic; whatever parses round-trips.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_bytes(&data)?;
    }

    /// Bytes that look like SIP (a valid message with random edits) reach deep into the
    /// grammar; still never a panic, and whatever parses round-trips.
    #[test]
    fn mutated_messages_never_panic(g in message(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut data = g.wire.clone();
        for (at, byte, op) in edits {
            let i = at.index(data.len() + 1);
            match op {
                0 if i < data.len() => data[i] = byte,
                1 => data.insert(i, byte),
                _ if i < data.len() => { data.remove(i); }
                _ => {}
            }
        }
        check_bytes(&data)?;
    }
}

/// Parameter lists are read in place: each iterated parameter is found by name, and the
/// owned copy a change makes keeps them all.
fn check_params(p: &sip_message::Params) -> Result<(), TestCaseError> {
    let all: Vec<_> = p.iter().collect();
    prop_assert_eq!(all.len(), p.len());
    for q in &all {
        prop_assert!(p.get(q.name()).is_some(), "{:?} not found by name", q);
    }
    let mut owned = p.clone();
    owned.set("x-probe", None);
    prop_assert!(owned.remove("x-probe"));
    prop_assert_eq!(owned.iter().collect::<Vec<_>>(), all);
    Ok(())
}

fn check_bytes(data: &[u8]) -> Result<(), TestCaseError> {
    // `Message::parse` reads the start line in place; it must agree with the two stages.
    let direct = Message::parse(Bytes::copy_from_slice(data));
    let staged = sip_message::RawMessage::parse_datagram(Bytes::copy_from_slice(data)).and_then(Message::from_raw);
    prop_assert_eq!(format!("{direct:?}"), format!("{staged:?}"));
    if let Ok(Frame::Message(m)) = sip_message::parse_datagram(Bytes::copy_from_slice(data)) {
        for p in [m.via().params(), m.from().params(), m.to().params()] {
            check_params(p)?;
        }
        if let Some(r) = m.as_request() {
            for a in r.contacts().addrs().iter().chain(r.routes()) {
                check_params(a.params())?;
            }
        }
        let again = Message::parse(m.to_bytes()).map_err(|e| TestCaseError::fail(format!("reprint of accepted input fails: {e}")))?;
        prop_assert_eq!(again, m);
    }
    // Stream: in 3 reads, drained after each; must end (the loop is bounded by the data).
    let mut d = StreamDecoder::new();
    let thirds = [&data[..data.len() / 3], &data[data.len() / 3..2 * data.len() / 3], &data[2 * data.len() / 3..]];
    for part in thirds {
        d.push(part);
        for _ in 0..=data.len() {
            match d.decode() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) if d.is_broken() => return Ok(()),
                Err(_) => {}
            }
        }
    }
    Ok(())
}
