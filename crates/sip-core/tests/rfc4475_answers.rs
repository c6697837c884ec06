//! Every RFC 4475 message fed to the engine as one UDP datagram, and its answer checked
//! against `../shared/conformance/rfc4475/MANIFEST.tsv` (read in place; the test fails
//! if the folder is missing). The layer above is played by the policy the binary has
//! before calls exist: INVITE without a To tag → 404, anything else that reaches it → 481.
//!
//! `parse-ok` means "handled as an ordinary request": any answer except the parse-error
//! answers 400, 505 and 513. `discard` means nothing is sent. A response is never answered.

use bytes::Bytes;
use sip_core::{Endpoint, EndpointConfig, Event, Flow, Time, Transmit, Transport};
use sip_message::{HeaderName, Method, RawMessage, StartLine};

/// A response we sent, read with the framing stage only: a 400 copies the rows it got,
/// so its Via may be as broken as the request's (RFC 4475 `badinv01`).
struct Sent {
    status: u16,
    raw: RawMessage,
}

impl Sent {
    fn header(&self, name: HeaderName) -> String {
        self.raw.headers().values(name).map(|v| String::from_utf8_lossy(&v).into_owned()).collect::<Vec<_>>().join(", ")
    }
}
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("conformance/rfc4475");
    assert!(dir.join("MANIFEST.tsv").is_file(), "RFC 4475 corpus missing at {} (set SIPBRIDGE_SHARED)", dir.display());
    dir
}

struct Entry {
    file: String,
    kind: String,
    outcomes: Vec<String>,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("manifest");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Entry { file: cols[0].into(), kind: cols[3].into(), outcomes: cols[5].split('|').map(str::to_owned).collect() }
        })
        .collect()
}

/// What the engine sent back for one datagram, after the policy above answered.
fn answers(data: Bytes) -> (Vec<Sent>, usize) {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let flow = Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "192.0.2.10:5060".parse().expect("addr"),
        connection: None,
    };
    ep.handle_datagram(Time::ZERO, flow, data);
    let mut sent = Vec::new();
    let mut events = 0;
    loop {
        let mut any = false;
        while let Some(t) = ep.poll_transmit() {
            any = true;
            if let Transmit::Send { payload, .. } = t {
                sent.push(payload);
            }
        }
        while let Some(e) = ep.poll_event() {
            any = true;
            events += 1;
            if let Event::Request { tx, request, .. } = e {
                let status = if matches!(request.method(), Method::Invite) && request.to().tag().is_none() { 404 } else { 481 };
                ep.reply(Time::ZERO, tx, status, vec![]).expect("reply");
            }
        }
        if !any {
            break;
        }
    }
    let responses = sent
        .into_iter()
        .map(|b| {
            let raw = RawMessage::parse_datagram(b.clone()).expect("we send well-framed messages");
            let status = match raw.start_line() {
                Ok(StartLine::Response { code, .. }) => std::str::from_utf8(code).ok().and_then(|c| c.parse().ok()).expect("status"),
                _ => panic!("sent something that is not a response:\n{}", String::from_utf8_lossy(&b)),
            };
            Sent { status, raw }
        })
        .collect();
    (responses, events)
}

#[test]
fn every_rfc4475_message_gets_an_answer_the_manifest_accepts() {
    let entries = manifest();
    assert_eq!(entries.len(), 49, "the manifest lists the 49 RFC 4475 messages");
    let mut table = Vec::new();
    for e in &entries {
        let data = std::fs::read(corpus_dir().join(&e.file)).expect("read");
        let (responses, _) = answers(Bytes::from(data));
        let got = match responses.as_slice() {
            [] => "discard".to_owned(),
            [r] => format!("reply:{}", r.status),
            many => panic!("{}: {} responses to one datagram", e.file, many.len()),
        };
        if e.kind == "response" {
            assert_eq!(got, "discard", "{}: a response is never answered", e.file);
        }
        let ok = e.outcomes.contains(&got)
            || (e.outcomes.iter().any(|o| o == "parse-ok") && !matches!(got.as_str(), "discard" | "reply:400" | "reply:505" | "reply:513"))
            || (e.kind == "response" && e.outcomes.iter().any(|o| o == "parse-ok"));
        assert!(ok, "{}: answered {got}, manifest accepts {:?}", e.file, e.outcomes);
        if let [r] = responses.as_slice() {
            match r.status {
                405 | 501 => assert!(r.header(HeaderName::Allow).contains("INVITE"), "{}: {} needs Allow", e.file, r.status),
                415 => assert!(r.header(HeaderName::Accept).contains("application/sdp"), "{}: 415 needs Accept", e.file),
                406 => assert!(r.header(HeaderName::Warning).starts_with("399 "), "{}: 406 says why in a Warning", e.file),
                _ => {}
            }
            if let Some(to) = r.raw.headers().get(HeaderName::To).and_then(|h| sip_message::NameAddr::parse(&h.value_bytes()).ok()) {
                assert!(to.tag().is_some(), "{}: a final response carries a To tag: {to}", e.file);
            }
        }
        eprintln!("{}\t{got}", e.file);
        table.push((e.file.clone(), got));
    }
    let find = |f: &str| table.iter().find(|(n, _)| n == f).map(|(_, g)| g.clone()).unwrap_or_default();
    // The specific answers this server gives where the manifest allows several.
    assert_eq!(find("bext01.dat"), "reply:420");
    assert_eq!(find("mismatch02.dat"), "reply:501", "501 preferred for the unknown method");
    assert_eq!(find("unkscm.dat"), "reply:416");
    assert_eq!(find("invut.dat"), "reply:415");
    assert_eq!(find("badvers.dat"), "reply:505");
    assert_eq!(find("zeromf.dat"), "reply:200", "Max-Forwards 0 to the endpoint itself is answered normally");
    assert_eq!(find("inv2543.dat"), "reply:404", "RFC 2543 INVITE handled as an ordinary INVITE");
}

#[test]
fn bext01_420_lists_exactly_the_required_tags() {
    let data = std::fs::read(corpus_dir().join("bext01.dat")).expect("read");
    let (responses, events) = answers(Bytes::from(data));
    assert_eq!(events, 0, "rejected before the layer above");
    let u = responses[0].header(HeaderName::Unsupported);
    assert!(u.contains("nothingSupportsThis") && u.contains("nothingSupportsThisEither"), "{u}");
}

#[test]
fn dblreq_gets_one_answer_for_the_register_only() {
    let data = std::fs::read(corpus_dir().join("dblreq.dat")).expect("read");
    let (responses, _) = answers(Bytes::from(data));
    assert_eq!(responses.len(), 1);
    assert!(responses[0].header(HeaderName::CSeq).ends_with("REGISTER"));
    let _ = Method::Register;
}
