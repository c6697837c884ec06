//! RFC 4475 conformance: the 49 torture messages, read in place from
//! `../shared/conformance/rfc4475/` (never copied into this repository) and driven by
//! its `MANIFEST.tsv`. The test fails if the folder is missing.
//!
//! Per file, by validity:
//! - `valid`: the datagram parses and the key fields listed in the conformance README
//!   read back exactly (see `check_fields`, one arm per file).
//! - `semantic`: it parses and the fields its note mentions read back; `insuf` and
//!   `multi01` pass framing (`RawMessage`) and then fail the required / single-valued
//!   header check with a 400.
//! - `invalid`: an error whose status is among the acceptable `reply:` outcomes (or, for
//!   a response, `discard`), or a parse under a leniency the manifest allows, listed in
//!   `LENIENT` with the reason, whose re-encoding carries no defect forward.
//!
//! Every file is also printed and re-parsed (round trip), and fed to the stream decoder
//! whole, as every prefix, and split into two reads at every offset.

use sip_message::bytes::Bytes;
use sip_message::{
    Contacts, ErrorKind, Frame, HeaderName, Host, MediaType, Message, Method, NameAddr, RawMessage, Request, Response, SipUri,
    StreamDecoder, Transport, Uri,
};
use std::path::PathBuf;

/// Invalid messages we accept on purpose, with the leniency the manifest allows.
const LENIENT: &[(&str, &str)] = &[
    ("lwsstart.dat", "extra SP between request-line elements ignored; printed with single SP"),
    ("trws.dat", "trailing SP after SIP/2.0 ignored; printed without it"),
    ("badaspec.dat", "white space just inside <...> ignored; the URI prints without it"),
    ("baddate.dat", "Date is not interpreted by the parser (kept as an opaque row)"),
];

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("conformance/rfc4475");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "RFC 4475 corpus missing at {} (set SIPBRIDGE_SHARED to the shared/ folder)",
        dir.display()
    );
    dir
}

struct Row {
    file: String,
    kind: String,
    validity: String,
    outcomes: Vec<String>,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header line").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (f, k, v, o) = (col("file"), col("kind"), col("validity"), col("acceptable_outcomes"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[f].to_owned(),
                kind: c[k].to_owned(),
                validity: c[v].to_owned(),
                outcomes: c[o].split('|').map(str::to_owned).collect(),
            }
        })
        .collect()
}

fn load(file: &str) -> Bytes {
    Bytes::from(std::fs::read(corpus_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
}

fn req(m: &Message) -> &Request {
    m.as_request().expect("a request")
}

fn resp(m: &Message) -> &Response {
    m.as_response().expect("a response")
}

fn sip(u: &Uri) -> &SipUri {
    u.as_sip().expect("a sip URI")
}

fn user(u: &Uri) -> Vec<u8> {
    sip(u).user_decoded().expect("a user part").to_vec()
}

fn other<'a>(m: &'a Message, name: &str) -> &'a [u8] {
    m.headers().get_other(name).unwrap_or_else(|| panic!("header {name}")).value()
}

fn domain(h: &Host) -> &str {
    match h {
        Host::Domain(d) => d,
        other => panic!("not a domain: {other:?}"),
    }
}

fn addrs(c: &Contacts) -> &[NameAddr] {
    match c {
        Contacts::List(v) => v,
        other => panic!("no contact list: {other:?}"),
    }
}

/// Key fields per file; the README's list for the valid messages, and what each
/// semantic note mentions. Every manifest row must have an arm.
fn check_fields(file: &str, m: &Message) {
    match file {
        "wsinv.dat" => {
            let r = req(m);
            assert_eq!(r.method(), &Method::Invite);
            assert_eq!(r.uri().to_string(), "sip:vivekg@chair-dnrc.example.com;unknownparam");
            let p = sip(r.uri()).params().get("unknownparam").expect("unknownparam");
            assert!(p.value().is_none());
            assert_eq!(r.to().uri().to_string(), "sip:vivekg@chair-dnrc.example.com");
            assert_eq!(r.to().tag(), Some("1918181833n"));
            assert_eq!(r.from().display_name().map(|d| d.as_ref()), Some(&b"J Rosenberg \\\""[..]));
            assert_eq!(r.from().uri().to_string(), "sip:jdrosen@example.com");
            assert_eq!(r.from().tag(), Some("98asjd8"));
            assert_eq!(r.max_forwards(), Some(68));
            assert_eq!((r.cseq().seq, &r.cseq().method), (9, &Method::Invite));
            assert_eq!(r.call_id(), "wsinv.ndaksdj@192.0.2.1");
            let vias = r.vias().expect("vias");
            let v: Vec<(Transport, String, Option<&str>)> =
                vias.iter().map(|v| (v.transport().clone(), v.host().to_string(), v.branch())).collect();
            assert_eq!(
                v,
                vec![
                    (Transport::Udp, "192.0.2.2".into(), Some("390skdjuw")),
                    (Transport::Tcp, "spindle.example.com".into(), Some("z9hG4bK9ikj8")),
                    (Transport::Udp, "192.168.255.111".into(), Some("z9hG4bK30239")),
                ]
            );
            assert_eq!(r.headers().get(HeaderName::Subject).map(|h| h.value().len()), Some(0));
            assert_eq!(other(m, "NewFangledHeader"), b"newfangled value continued newfangled value");
            assert_eq!(other(m, "UnknownHeaderWithUnusualValue"), b";;,,;;,;");
            assert_eq!(r.routes().len(), 1);
            assert_eq!(r.routes()[0].uri().to_string(), "sip:services.example.com;lr;unknownwith=value;unknown-no-value");
            let c = &addrs(r.contacts())[0];
            assert_eq!(c.display_name().map(|d| d.as_ref()), Some(&b"Quoted string \"\""[..]));
            assert_eq!(c.uri().to_string(), "sip:jdrosen@example.com");
            assert_eq!(c.params().value_str("newparam"), Some("newvalue"));
            assert!(c.params().get("secondparam").is_some_and(|p| p.value().is_none()));
            assert_eq!(c.params().value_str("q"), Some("0.33"));
            assert!(r.content_type().is_some_and(|t| t.is("application", "sdp")));
            assert_eq!(r.body().len(), 150);
        }
        "intmeth.dat" => {
            let r = req(m);
            let method = "!interesting-Method0123456789_*+`.%indeed'~";
            assert_eq!(r.method().as_str(), method);
            assert!(matches!(r.method(), Method::Extension(_)));
            assert_eq!((r.cseq().seq, r.cseq().method.as_str()), (139122385, method));
            let u = sip(r.uri());
            assert_eq!(u.user().map(|t| t.as_str()), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
            assert_eq!(u.password().map(|t| t.as_str()), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
            assert_eq!(domain(u.host()), "example.com");
            assert_eq!(r.via().transport(), &Transport::Tcp);
            assert_eq!(domain(r.via().host()), "host1.example.com");
            assert_eq!(r.via().branch(), Some("z9hG4bK-.!%66*_+`'~"));
            assert_eq!(r.to().display_name().map(|d| d.as_ref()), Some(&b"BEL:\x07 NUL:\x00 DEL:\x7f"[..]));
            assert_eq!(r.from().display_name_str(), Some("token1~` token2'+_ token3*%!.-"));
            assert_eq!(r.from().tag(), Some("_token~1'+`*%!-."));
            assert_eq!(r.call_id(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
            assert_eq!(r.max_forwards(), Some(255));
            let ext = m.headers().get_other("extensionHeader-!.%*+_`'~").expect("extension header");
            assert!(std::str::from_utf8(ext.value()).is_ok_and(|s| !s.is_ascii()));
        }
        "esc01.dat" => {
            let r = req(m);
            assert_eq!(user(r.uri()), b"sips:user@example.com");
            assert_eq!(domain(sip(r.uri()).host()), "example.net");
            assert_eq!(user(r.to().uri()), b"user");
            assert_eq!(user(r.from().uri()), b"I have spaces");
            assert_eq!(r.from().tag(), Some("938"));
            assert_eq!(r.call_id(), "esc01.239409asdfakjkn23onasd0-3234");
            assert!(r.content_type().is_some_and(|t| t.is("application", "sdp")));
            let c = sip(addrs(r.contacts())[0].uri());
            assert_eq!(c.user_decoded().as_deref(), Some(&b"caller"[..]));
            assert_eq!(domain(c.host()), "host5.example.net");
            assert!(c.params().get("lr").is_some_and(|p| p.value().is_none()));
            assert_eq!(c.params().get("name").and_then(|p| p.value_decoded()).as_deref(), Some(&b"value%41"[..]));
        }
        "escnull.dat" => {
            let r = req(m);
            assert_eq!(user(r.to().uri()), b"null-\0-null");
            assert_eq!(user(r.from().uri()), b"null-\0-null");
            let c = addrs(r.contacts());
            assert_eq!(c.len(), 2);
            assert_eq!(user(c[0].uri()), b"\0");
            assert_eq!(user(c[1].uri()), b"\0\0");
            assert!(c.iter().all(|a| domain(sip(a.uri()).host()) == "host5.example.com"));
            assert_ne!(c[0], c[1]);
            assert_eq!(r.headers().get(HeaderName::ContentLength).map(|h| h.value()), Some(&b"0"[..]));
        }
        "esc02.dat" => {
            let r = req(m);
            assert_eq!(r.method().as_str(), "RE%47IST%45R");
            assert_ne!(r.method(), &Method::Register);
            assert_eq!(r.cseq().method.as_str(), "RE%47IST%45R");
            assert_eq!(r.to().display_name_str(), Some("%Z%45"));
            assert_eq!(r.from().display_name_str(), Some("%Z%45"));
            let c: Vec<String> = addrs(r.contacts()).iter().map(|a| a.uri().to_string()).collect();
            assert_eq!(c, ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]);
            assert!(m.headers().get_other("C%6Fntact").is_some());
            assert_eq!(r.via().branch(), Some("z9hG4bK209%fzsnel234"));
        }
        "lwsdisp.dat" => {
            let r = req(m);
            assert_eq!(r.from().display_name_str(), Some("caller"));
            assert_eq!(r.from().uri().to_string(), "sip:caller@example.com");
            assert_eq!(r.from().tag(), Some("323"));
        }
        "longreq.dat" => {
            let r = req(m);
            let to = r.to();
            assert_eq!(
                to.display_name_str().map(str::to_owned),
                Some(format!("I have a user name of {} proportion", "extreme".repeat(10)))
            );
            let tu = sip(to.uri());
            assert_eq!(tu.port(), Some(6000));
            let p1 = format!("very{}value", "long".repeat(20));
            assert_eq!(tu.params().value_str("unknownparam1"), Some(p1.as_str()));
            assert_eq!(tu.params().value_str(&format!("longparam{}", "name".repeat(25))), Some("shortvalue"));
            assert!(tu.params().get(&format!("very{}ParameterNameWithNoValue", "long".repeat(25))).is_some_and(|p| p.value().is_none()));
            let fu = r.from();
            assert_eq!(user(fu.uri()), "amazinglylongcallername".repeat(5).as_bytes());
            assert_eq!(fu.tag().map(str::to_owned), Some(format!("12{}424", "982".repeat(50))));
            let pname = format!("unknownheaderparam{}", "name".repeat(20));
            let pval = format!("unknowheaderparam{}", "value".repeat(15));
            assert_eq!(fu.params().value_str(&pname), Some(pval.as_str()));
            assert!(fu.params().get(&format!("unknownValueless{}", "paramname".repeat(10))).is_some_and(|p| p.value().is_none()));
            assert_eq!(r.call_id().as_str(), format!("longreq.one{}longcallid", "really".repeat(20)));
            let vias = r.vias().expect("vias");
            assert_eq!(vias.len(), 34);
            assert_eq!(r.via_count(), 34);
            for (i, v) in vias[..33].iter().enumerate() {
                assert_eq!(domain(v.host()), format!("sip{}.example.com", 33 - i));
            }
            let last = &vias[33];
            assert_eq!(domain(last.host()), "host.example.com");
            assert_eq!(last.received(), Some("192.0.2.5"));
            assert_eq!(last.branch().map(str::to_owned), Some(format!("very{}branchvalue", "long".repeat(50))));
            assert_eq!(r.via().transport(), &Transport::Tcp);
            assert_eq!(r.via().branch(), None);
            assert_eq!(user(addrs(r.contacts())[0].uri()), "amazinglylongcallername".repeat(5).as_bytes());
        }
        "dblreq.dat" => {
            let r = req(m);
            assert_eq!(r.method(), &Method::Register);
            assert_eq!(r.call_id(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
            assert_eq!((r.cseq().seq, &r.cseq().method), (8, &Method::Register));
            assert!(r.body().is_empty(), "the trailing INVITE octets are not a body");
        }
        "semiuri.dat" => {
            let r = req(m);
            let u = sip(r.uri());
            assert_eq!(user(r.uri()), b"user;par=u@example.net");
            assert_eq!(domain(u.host()), "example.com");
            assert!(u.params().is_empty());
            let accept: Vec<String> = r
                .headers()
                .values(HeaderName::Accept)
                .map(|v| {
                    let t = MediaType::parse(&v).expect("media range");
                    format!("{}/{}", t.top, t.sub)
                })
                .collect();
            assert_eq!(
                accept,
                ["application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed", "message/sip", "message/sipfrag"]
            );
        }
        "transports.dat" => {
            let vias = m.as_request().expect("request").vias().expect("vias");
            let t: Vec<(&str, String)> = vias.iter().map(|v| (v.transport().as_str(), domain(v.host()).to_owned())).collect();
            let want: Vec<(&str, String)> =
                ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"].iter().enumerate().map(|(i, t)| (*t, format!("t{}.example.com", i + 1))).collect();
            assert_eq!(t, want);
            assert!(matches!(vias[3].transport(), Transport::Other(_)));
        }
        "mpart01.dat" => {
            let r = req(m);
            assert_eq!(r.method(), &Method::Message);
            let ct = r.content_type().expect("content-type");
            assert!(ct.is("multipart", "mixed"));
            assert_eq!(ct.params.value_str("boundary"), Some("7a9cbec02ceef655"));
            assert_eq!(r.body().len(), 553);
            let body = r.body();
            assert!(find(body, b"text/plain").is_some() && find(body, b"Hello").is_some());
            assert!(find(body, b"application/octet-stream").is_some() && body.contains(&0));
            // The binary part: between the blank line after its headers and the closing
            // boundary line.
            let start = find(body, b"application/octet-stream").expect("part");
            let data = start + find(&body[start..], b"\r\n\r\n").expect("part body") + 4;
            let end = data + find(&body[data..], b"\r\n--7a9cbec02ceef655--").expect("closing boundary");
            assert_eq!(end - data, 342);
        }
        "unreason.dat" => {
            let r = resp(m);
            assert_eq!(r.status(), 200);
            let raw = load(file);
            let line_end = find(&raw, b"\r\n").expect("status line");
            assert_eq!(r.reason().as_ref(), &raw[b"SIP/2.0 200 ".len()..line_end]);
            assert!(std::str::from_utf8(r.reason()).is_ok_and(|s| !s.is_ascii()));
        }
        "noreason.dat" => {
            let r = resp(m);
            assert_eq!(r.status(), 100);
            assert!(r.reason().is_empty());
        }
        // --- invalid, accepted under a documented leniency
        "lwsstart.dat" | "trws.dat" => {
            let r = req(m);
            let wire = m.to_bytes();
            let line = &wire[..find(&wire, b"\r\n").expect("request line")];
            assert_eq!(line, format!("{} {} SIP/2.0", r.method(), r.uri()).as_bytes());
            assert!(!line.windows(2).any(|w| w == b"  ") && !line.ends_with(b" "));
        }
        "badaspec.dat" => assert_eq!(req(m).to().uri().to_string(), "sip:t.watson@example.org"),
        "baddate.dat" => assert!(m.headers().get(HeaderName::Date).is_some_and(|d| d.value().ends_with(b"EST"))),
        // --- semantic
        "badbranch.dat" => {
            assert_eq!(m.via().branch(), Some("z9hG4bK"));
            assert!(!m.via().has_rfc3261_branch(), "a bare cookie identifies nothing: RFC 2543 matching");
        }
        "unkscm.dat" => {
            assert!(matches!(req(m).uri(), Uri::Other { scheme, .. } if scheme == "nobodyKnowsThisScheme"));
            assert_eq!(m.via().transport(), &Transport::Tcp);
        }
        "novelsc.dat" => assert_eq!(req(m).uri().to_string(), "soap.beep://192.0.2.103:3002"),
        "unksm2.dat" => {
            let r = req(m);
            assert_eq!(r.to().uri().scheme(), "isbn");
            assert_eq!(r.from().uri().scheme(), "http");
            assert_eq!(addrs(r.contacts())[0].uri().to_string(), "name:John_Smith");
        }
        "bext01.dat" => {
            let require: Vec<Bytes> = m.headers().values(HeaderName::Require).collect();
            assert_eq!(require, ["nothingSupportsThis", "nothingSupportsThisEither"].map(|s| Bytes::from_static(s.as_bytes())));
            assert_eq!(m.headers().values(HeaderName::ProxyRequire).count(), 2);
            assert_eq!(m.via().transport(), &Transport::Tls);
        }
        "invut.dat" => {
            assert!(req(m).content_type().is_some_and(|t| t.is("application", "unknownformat")));
            assert_eq!(req(m).body().len(), 40);
        }
        "regaut01.dat" => {
            let auth = m.headers().get(HeaderName::Authorization).expect("Authorization");
            assert!(auth.value().starts_with(b"NoOneKnowsThisScheme"));
        }
        "bcast.dat" => {
            let r = resp(m);
            assert_eq!(r.via_count(), 2);
            assert_eq!(r.vias().expect("vias")[1].host(), &Host::Ipv4([255, 255, 255, 255].into()));
            assert_eq!(r.body().len(), 154);
        }
        "zeromf.dat" => assert_eq!(req(m).max_forwards(), Some(0)),
        "cparam01.dat" => {
            let c = &addrs(req(m).contacts())[0];
            assert!(c.params().contains("unknownparam"), "header parameter");
            assert!(!sip(c.uri()).params().contains("unknownparam"), "not a URI parameter");
        }
        "cparam02.dat" => {
            let c = &addrs(req(m).contacts())[0];
            assert!(sip(c.uri()).params().contains("unknownparam"), "URI parameter");
            assert!(!c.params().contains("unknownparam"));
        }
        "regescrt.dat" => {
            let c = &addrs(req(m).contacts())[0];
            assert_eq!(sip(c.uri()).headers().map(|h| h.as_str()), Some("Route=%3Csip:sip.example.com%3E"));
        }
        "sdp01.dat" => {
            let accept: Vec<Bytes> = m.headers().values(HeaderName::Accept).collect();
            assert_eq!(accept, [Bytes::from_static(b"text/nobodyKnowsThis")]);
            assert!(req(m).content_type().is_some_and(|t| t.is("application", "sdp")));
        }
        "inv2543.dat" => {
            let r = req(m);
            assert_eq!(r.via().branch(), None);
            assert_eq!(r.from().tag(), None);
            assert_eq!(r.max_forwards(), None);
            assert!(r.headers().get(HeaderName::ContentLength).is_none());
            let raw = load(file);
            let body_at = find(&raw, b"\r\n\r\n").expect("blank line") + 4;
            assert_eq!(r.body().as_ref(), &raw[body_at..], "body runs to the end of the datagram");
            assert_eq!(sip(r.record_routes()[0].uri()).params().value_str("maddr"), Some("ss1.example.com"));
        }
        _ => panic!("{file}: no field checks written for this file"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Outcome tokens for an error: the reply a UAS sends, or discard for a response.
fn error_outcome(e: &sip_message::ParseError) -> String {
    if e.is_response() {
        "discard".into()
    } else {
        format!("reply:{}", e.status())
    }
}

#[test]
fn corpus_is_complete() {
    let rows = manifest();
    assert_eq!(rows.len(), 49, "the manifest lists 49 messages");
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("list corpus")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".dat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = rows.iter().map(|r| r.file.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_message_meets_its_manifest_row() {
    let mut report = Vec::new();
    for row in manifest() {
        let data = load(&row.file);
        let outcome = match sip_message::parse_datagram(data.clone()) {
            Ok(Frame::Message(m)) => {
                assert_eq!(m.as_response().is_some(), row.kind == "response", "{}: kind", row.file);
                check_fields(&row.file, &m);
                if row.validity == "invalid" {
                    assert!(
                        LENIENT.iter().any(|(f, _)| *f == row.file),
                        "{}: invalid message accepted without a documented leniency",
                        row.file
                    );
                }
                "parse-ok".to_owned()
            }
            Ok(other) => panic!("{}: parsed as a keep-alive {other:?}", row.file),
            Err(e) => {
                assert_ne!(e.kind(), ErrorKind::Incomplete, "{}: a datagram is never incomplete", row.file);
                assert!(e.offset() <= data.len(), "{}: offset {} beyond the data", row.file, e.offset());
                assert_eq!(e.is_response(), row.kind == "response", "{}: error knows it is in a response", row.file);
                assert_ne!(row.validity, "valid", "{}: valid message refused: {e}", row.file);
                if row.validity == "semantic" {
                    semantic_refusal(&row.file, data, e);
                }
                error_outcome(&e)
            }
        };
        // A parse is right where the row allows parse-ok, or a reply that ordinary
        // handling makes after parsing (501, 416, 415, 420 …: the server tests check
        // which); a refusal must be one of the listed replies.
        // (`bcast`'s discard, too, is the UA's decision about a well-formed response.)
        let decided_later = |o: &String| {
            o.strip_prefix("reply:").is_some_and(|c| !["400", "505", "513"].contains(&c)) || (o == "discard" && row.validity == "semantic")
        };
        let fits = row.outcomes.contains(&outcome) || (outcome == "parse-ok" && row.outcomes.iter().any(decided_later));
        assert!(fits, "{}: outcome {outcome} not in {:?}", row.file, row.outcomes);
        report.push(format!("{:<16} {:<9} {outcome}", row.file, row.validity));
    }
    println!("{}", report.join("\n"));
}

/// Semantic messages may only be refused after framing, by the core-header check.
fn semantic_refusal(file: &str, data: Bytes, e: sip_message::ParseError) {
    match file {
        "insuf.dat" => {
            let raw = RawMessage::parse_datagram(data).expect("insuf frames");
            let e2 = Message::from_raw(raw).expect_err("insuf lacks required headers");
            assert!(matches!(e2.kind(), ErrorKind::MissingHeader(HeaderName::From | HeaderName::To | HeaderName::CallId)), "{e2}");
            assert_eq!(e2, e);
        }
        "multi01.dat" => {
            let raw = RawMessage::parse_datagram(data).expect("multi01 frames");
            let e2 = Message::from_raw(raw).expect_err("multi01 has duplicates");
            assert!(matches!(e2.kind(), ErrorKind::MultipleValues(_)), "{e2}");
        }
        "mcl01.dat" => assert_eq!(e.kind(), ErrorKind::BadContentLength, "mcl01 cannot be framed"),
        _ => panic!("{file}: semantic message refused: {e}"),
    }
}

#[test]
fn invalid_messages_fail_for_the_right_reason() {
    let expect = [
        ("badinv01.dat", ErrorKind::BadHeader(HeaderName::Via)),
        ("clerr.dat", ErrorKind::BadContentLength),
        ("ncl.dat", ErrorKind::BadContentLength),
        ("scalar02.dat", ErrorKind::BadHeader(HeaderName::CSeq)),
        ("scalarlg.dat", ErrorKind::BadHeader(HeaderName::CSeq)),
        ("quotbal.dat", ErrorKind::BadHeader(HeaderName::To)),
        ("ltgtruri.dat", ErrorKind::BadRequestUri),
        ("lwsruri.dat", ErrorKind::BadRequestUri),
        ("escruri.dat", ErrorKind::BadRequestUri),
        ("regbadct.dat", ErrorKind::BadHeader(HeaderName::Contact)),
        ("baddn.dat", ErrorKind::BadHeader(HeaderName::From)),
        ("badvers.dat", ErrorKind::VersionNotSupported),
        ("mismatch01.dat", ErrorKind::CSeqMethodMismatch),
        ("mismatch02.dat", ErrorKind::CSeqMethodMismatch),
        ("bigcode.dat", ErrorKind::BadStatusCode),
    ];
    for (file, kind) in expect {
        let e = sip_message::parse_datagram(load(file)).expect_err(file);
        assert_eq!(e.kind(), kind, "{file}: {e}");
    }
    // scalar02's other overlarge numbers never wrap: Expires above 2^32-1 is an error on
    // demand, and Max-Forwards 300 is kept as it is.
    let raw = RawMessage::parse_datagram(load("scalar02.dat")).expect("scalar02 frames");
    assert!(matches!(raw.headers().number(HeaderName::Expires), Some(Err(_))));
    assert_eq!(raw.headers().number(HeaderName::MaxForwards), Some(Ok(300)));
}

#[test]
fn round_trip_over_the_corpus() {
    let mut n = 0;
    for row in manifest() {
        let Ok(Frame::Message(m)) = sip_message::parse_datagram(load(&row.file)) else {
            continue;
        };
        let wire = m.to_bytes();
        let again = Message::parse(wire.clone()).unwrap_or_else(|e| panic!("{}: reprint does not parse: {e}", row.file));
        assert_eq!(again, m, "{}", row.file);
        // Printing is stable: the reprint prints identically.
        assert_eq!(again.to_bytes(), wire, "{}", row.file);
        n += 1;
    }
    assert!(n >= 30, "only {n} files round-tripped");
}

/// Stream framing of each file, per the conformance README: the files that need the
/// datagram end (`clerr` waits for more, `ncl`/`mcl01` break the stream, `inv2543` has
/// no Content-Length, `baddn` no blank line) get exactly that treatment; every other
/// file decodes to the same message or error as its datagram parse.
#[test]
fn stream_framing_of_every_file_at_every_split() {
    for row in manifest() {
        let data = load(&row.file);
        let whole = decode_all(&[&data[..]]);
        match row.file.as_str() {
            "clerr.dat" | "baddn.dat" => assert_eq!(whole, vec![Got::NeedMore], "{}", row.file),
            "ncl.dat" | "mcl01.dat" => assert_eq!(whole, vec![Got::Broken(ErrorKind::BadContentLength)], "{}", row.file),
            "inv2543.dat" => assert_eq!(whole, vec![Got::Broken(ErrorKind::MissingContentLength)], "{}", row.file),
            "dblreq.dat" => {
                // Over a stream the trailing octets are the start of a next message.
                assert!(matches!(whole.first(), Some(Got::Msg(_))), "{}: {whole:?}", row.file);
            }
            _ => {
                let dg = match sip_message::parse_datagram(data.clone()) {
                    Ok(Frame::Message(m)) => Got::Msg(Box::new(m)),
                    Ok(_) => unreachable!("no keep-alive files"),
                    Err(e) => Got::Skipped(e.kind()),
                };
                assert_eq!(whole, vec![dg, Got::NeedMore], "{}", row.file);
            }
        }
        for cut in 0..=data.len() {
            assert_eq!(decode_all(&[&data[..cut], &data[cut..]]), whole, "{} split at {cut}", row.file);
            // A prefix yields a prefix of the frames, then waits (or breaks as the whole does).
            let prefix = decode_all(&[&data[..cut]]);
            let (last, items) = prefix.split_last().expect("ends with NeedMore or Broken");
            assert!(whole.starts_with(items), "{} prefix {cut}: {prefix:?}", row.file);
            assert!(*last == Got::NeedMore || whole.last() == Some(last), "{} prefix {cut}: {last:?}", row.file);
        }
    }
}

#[derive(Debug, PartialEq)]
enum Got {
    Msg(Box<Message>),
    Skipped(ErrorKind),
    Broken(ErrorKind),
    NeedMore,
}

/// Feeds the reads in order, draining after each; returns what came out, ending with
/// `NeedMore` or `Broken`.
fn decode_all(reads: &[&[u8]]) -> Vec<Got> {
    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    for r in reads {
        d.push(r);
        loop {
            match d.decode() {
                Ok(Some(Frame::Message(m))) => out.push(Got::Msg(Box::new(m))),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) if d.is_broken() => {
                    out.push(Got::Broken(e.kind()));
                    return out;
                }
                Err(e) => out.push(Got::Skipped(e.kind())),
            }
        }
    }
    out.push(Got::NeedMore);
    out
}
