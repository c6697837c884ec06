//! Parse and print benchmarks for `sip-message`, compared with the `rsip` 0.4 crate.
//!
//! Run with `cargo bench -p sip-message` (see docs/BENCHMARKS.md for the figures and
//! how they were obtained).
//!
//! Inputs (each a heap-allocated [`Bytes`] built once, outside the timed loop; every
//! iteration clones it, which is a reference-count bump, the way the server hands a
//! datagram over; every slice the parser keeps is another bump):
//!
//! - `invite`: a typical INVITE with an SDP offer, about 1 KB ([`INVITE`]).
//! - `response`: a typical 200 OK to that INVITE with an SDP answer ([`OK_200`]).
//! - `longreq`: RFC 4475 §3.1.1.7, read at start-up from the shared conformance corpus
//!   (`../shared/conformance/rfc4475/longreq.dat` beside the workspace, or under
//!   `$SIPBRIDGE_SHARED`; never copied into this repo).
//!   `rsip` rejects it (it has `Via :` rows with white space before the colon, which
//!   RFC 3261 allows), so it is measured for `sip-message` only.
//! - `longreq-normalized`: the same message rewritten in memory so that `rsip` can
//!   take it: no white space before the colon and compact names (`v`, `F`, `l`)
//!   spelled in full. Both parsers are measured on it.
//!
//! Work done per iteration, so that both sides are comparable:
//!
//! - `sip-message`: `Message::parse(bytes.clone())`, which frames the datagram
//!   (start line, every header row, body by Content-Length), parses the Request-URI
//!   or status code and extracts once: the top Via, From, To, Call-ID (checked), CSeq,
//!   Max-Forwards, every Contact, Route and Record-Route value, and Content-Type; then
//!   the top Via branch and the From and To tags are read (parameter lists are read in
//!   place on access). Then the message is dropped.
//! - `rsip`: `rsip::SipMessage::try_from(&[u8])` (tokenizes the start line, parses the
//!   Request-URI, splits the header rows, copies each value into a `String`, copies the
//!   body into a `Vec`), then, since `rsip` parses typed headers lazily, the
//!   equivalent typed headers are converted once in a single pass over the rows:
//!   the top Via, From, To, CSeq, every Contact, Route and Record-Route row and
//!   Content-Type through `.typed()`, Max-Forwards through `.num()`, and the Call-ID
//!   value is read (it has no typed form). Then everything is dropped.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rsip::prelude::*;
use sip_message::Message;
// `std::hint::black_box`, not `criterion::black_box`: criterion 0.5's version (without
// its `real_blackbox` feature) is a `read_volatile` copy of its argument, which for a
// 1 KB `Result<Message, _>` costs hundreds of nanoseconds per call and would be
// charged to the parser. The std one is free and opaque to the optimizer.
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// A typical INVITE from a desk phone: 1 Via with branch and rport, display names,
/// an SDP offer with five payload types. Content-Length is the exact body length (checked at
/// start-up).
const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds.3b9f1a;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: \"Bob Marley\" <sip:bob@biloxi.example.com>\r\n\
Call-ID: a84b4c76e66710c2f0d4b1e3@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK\r\n\
Supported: replaces, timer, 100rel, norefersub\r\n\
User-Agent: ExamplePhone/4.2.1 (model T46; fw 66.86.0.15)\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 370\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=ExamplePhone\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 9 0 8 18 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n\
a=rtcp:49171 IN IP4 192.0.2.101\r\n\
a=sendrecv\r\n";

/// A typical 200 OK to [`INVITE`] after one proxy: two Via rows (with `received`
/// and a filled-in `rport`), a Record-Route, a Contact, a To tag, and an SDP answer.
const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.10\r\n\
Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds.3b9f1a;rport=5060;received=192.0.2.101\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: \"Bob Marley\" <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710c2f0d4b1e3@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
Server: ExamplePBX/11.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 192\r\n\
\r\n\
v=0\r\n\
o=bob 2808844564 2808844564 IN IP4 192.0.2.4\r\n\
s=-\r\n\
c=IN IP4 192.0.2.4\r\n\
t=0 0\r\n\
m=audio 3456 RTP/AVP 9 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A heap-allocated, reference-counted buffer like the one a socket read gives the
/// server (not `Bytes::from_static`, whose clones and slices skip the reference count
/// and would flatter a zero-copy parser).
fn datagram(wire: &[u8]) -> Bytes {
    Bytes::copy_from_slice(wire)
}

/// Reads RFC 4475 `longreq` from the shared conformance corpus, which lives outside
/// this repository: `$SIPBRIDGE_SHARED/conformance/rfc4475/longreq.dat`, by default
/// `../shared` beside the workspace (the same rule as `tests/rfc4475.rs`).
fn load_longreq() -> Bytes {
    let path = std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
        .join("conformance/rfc4475/longreq.dat");
    match std::fs::read(&path) {
        Ok(data) => Bytes::from(data),
        Err(e) => panic!(
            "cannot read the RFC 4475 `longreq` message at {}: {e}. The benchmark needs the shared \
             conformance corpus (../shared/conformance/rfc4475/ beside the workspace, or set \
             SIPBRIDGE_SHARED to the shared/ folder); it is not part of this repository and must \
             not be copied into it.",
            path.display()
        ),
    }
}

/// The compact header names that occur in `longreq`, spelled in full (RFC 3261 §7.3.3).
fn full_name(name: &[u8]) -> &[u8] {
    match name {
        b"v" | b"V" => b"Via",
        b"f" | b"F" => b"From",
        b"t" | b"T" => b"To",
        b"i" | b"I" => b"Call-ID",
        b"m" | b"M" => b"Contact",
        b"l" | b"L" => b"Content-Length",
        b"c" | b"C" => b"Content-Type",
        other => other,
    }
}

/// Rewrites the header section so that `rsip` 0.4 can tokenize it: white space between
/// a header name and its colon is removed and compact names are spelled in full. The
/// start line, the header values and the body are unchanged. No folded rows are
/// expected (there are none in `longreq`).
fn normalize_for_rsip(msg: &[u8]) -> Bytes {
    let split = msg.windows(4).position(|w| w == b"\r\n\r\n").expect("longreq has an empty line after its headers");
    let (head, body) = msg.split_at(split + 4);
    let mut out = Vec::with_capacity(msg.len());
    for (i, line) in head[..head.len() - 4].split(|&c| c == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            let colon = line.iter().position(|&c| c == b':').expect("every header row of longreq has a colon");
            let name = line[..colon].trim_ascii_end();
            out.extend_from_slice(full_name(name));
            out.extend_from_slice(&line[colon..]);
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// What `sip-message` does per iteration: parse (which extracts the core headers),
/// then read the top Via branch and the From and To tags. Received parameter lists are
/// read in place on access, so the reads every message gets from the transaction and
/// dialog layers are counted here; rsip's typed forms hold them already parsed.
fn sip_message_parse(input: &Bytes) -> Result<Message, sip_message::ParseError> {
    let m = Message::parse(input.clone())?;
    black_box((m.via().branch(), m.from().tag(), m.to().tag()));
    Ok(m)
}

/// The typed headers `rsip` is asked for, the counterpart of `sip-message`'s core.
struct RsipCore<'a> {
    via: rsip::typed::Via,
    from: rsip::typed::From,
    to: rsip::typed::To,
    call_id: &'a str,
    cseq: rsip::typed::CSeq,
    max_forwards: Option<u32>,
    contacts: Vec<rsip::typed::Contact>,
    routes: Vec<rsip::typed::Route>,
    record_routes: Vec<rsip::typed::RecordRoute>,
    content_type: Option<rsip::typed::ContentType>,
}

/// Converts the rows `sip-message` extracts at parse time into `rsip`'s typed forms,
/// in one pass over the rows.
fn rsip_core(msg: &rsip::SipMessage) -> Result<RsipCore<'_>, rsip::Error> {
    use rsip::Header;
    let (mut via, mut from, mut to, mut call_id, mut cseq) = (None, None, None, None, None);
    let (mut max_forwards, mut content_type) = (None, None);
    let (mut contacts, mut routes, mut record_routes) = (Vec::new(), Vec::new(), Vec::new());
    for h in msg.headers().iter() {
        match h {
            Header::Via(v) if via.is_none() => via = Some(v.typed()?),
            Header::From(v) => from = Some(v.typed()?),
            Header::To(v) => to = Some(v.typed()?),
            Header::CallId(v) => call_id = Some(v.value()),
            Header::CSeq(v) => cseq = Some(v.typed()?),
            Header::MaxForwards(v) => max_forwards = Some(v.num()?),
            Header::Contact(v) => contacts.push(v.typed()?),
            Header::Route(v) => routes.push(v.typed()?),
            Header::RecordRoute(v) => record_routes.push(v.typed()?),
            Header::ContentType(v) => content_type = Some(v.typed()?),
            _ => {}
        }
    }
    Ok(RsipCore {
        via: via.ok_or_else(|| rsip::Error::missing_header("Via"))?,
        from: from.ok_or_else(|| rsip::Error::missing_header("From"))?,
        to: to.ok_or_else(|| rsip::Error::missing_header("To"))?,
        call_id: call_id.ok_or_else(|| rsip::Error::missing_header("Call-ID"))?,
        cseq: cseq.ok_or_else(|| rsip::Error::missing_header("CSeq"))?,
        max_forwards,
        contacts,
        routes,
        record_routes,
        content_type,
    })
}

/// What `rsip` does per iteration: parse, then convert the core headers.
fn rsip_parse(input: &Bytes) -> Result<(), rsip::Error> {
    let msg = rsip::SipMessage::try_from(&input[..])?;
    let core = rsip_core(&msg)?;
    black_box(&core);
    black_box(&msg);
    Ok(())
}

/// Checks, before anything is timed, that both parsers accept an input and agree on
/// the core headers, so that no benchmark measures an error path.
fn check_both(name: &str, input: &Bytes) {
    let ours = sip_message_parse(input).unwrap_or_else(|e| panic!("sip-message rejects `{name}`: {e}"));
    let theirs = rsip::SipMessage::try_from(&input[..]).unwrap_or_else(|e| panic!("rsip rejects `{name}`: {e}"));
    let core = rsip_core(&theirs).unwrap_or_else(|e| panic!("rsip cannot type the headers of `{name}`: {e}"));
    assert_eq!(ours.call_id().as_str(), core.call_id, "{name}: Call-ID");
    assert_eq!(ours.cseq().seq, core.cseq.seq, "{name}: CSeq number");
    assert_eq!(ours.via().branch().map(str::to_owned), core.via.branch().map(|b| b.to_string()), "{name}: top Via branch");
    let (ours_from, ours_to, ours_contacts, ours_rr) = match &ours {
        Message::Request(r) => (r.from(), r.to(), r.contacts().addrs().len(), r.record_routes().len()),
        Message::Response(r) => (r.from(), r.to(), r.contacts().addrs().len(), r.record_routes().len()),
    };
    assert_eq!(ours_from.tag().map(str::to_owned), core.from.tag().map(|t| t.to_string()), "{name}: From tag");
    assert_eq!(ours_to.tag().map(str::to_owned), core.to.tag().map(|t| t.to_string()), "{name}: To tag");
    assert_eq!(ours_contacts, core.contacts.len(), "{name}: Contact count");
    let theirs_rr: usize = core.record_routes.iter().map(|r| r.uris().len()).sum();
    assert_eq!(ours_rr, theirs_rr, "{name}: Record-Route count");
    assert_eq!(ours.body().len(), theirs.body().len(), "{name}: body length");
    black_box((&core.to, &core.max_forwards, &core.routes, &core.content_type));
}

/// Criterion settings kept modest so that the whole run takes about a minute.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50)
}

/// One group per input: `<input>/sip-message` and, when `rsip` can take the input,
/// `<input>/rsip`, with byte throughput.
fn bench_input(c: &mut Criterion, group: &str, input: &Bytes, with_rsip: bool) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_with_input(BenchmarkId::from_parameter("sip-message"), input, |b, input| {
        b.iter(|| black_box(sip_message_parse(black_box(input))))
    });
    if with_rsip {
        g.bench_with_input(BenchmarkId::from_parameter("rsip"), input, |b, input| b.iter(|| black_box(rsip_parse(black_box(input)))));
    }
    g.finish();
}

fn parse_benches(c: &mut Criterion) {
    let invite = datagram(INVITE);
    let response = datagram(OK_200);
    let longreq = load_longreq();
    let longreq_norm = normalize_for_rsip(&longreq);

    // The declared Content-Length of the inline messages must be the real body length.
    for (name, msg) in [("invite", &invite), ("response", &response)] {
        let parsed = sip_message_parse(msg).unwrap_or_else(|e| panic!("sip-message rejects `{name}`: {e}"));
        let head_len = msg.windows(4).position(|w| w == b"\r\n\r\n").expect("an empty line") + 4;
        assert_eq!(parsed.body().len(), msg.len() - head_len, "{name}: Content-Length is not the body length");
    }
    check_both("invite", &invite);
    check_both("response", &response);
    check_both("longreq-normalized", &longreq_norm);
    let ours = sip_message_parse(&longreq).unwrap_or_else(|e| panic!("sip-message rejects `longreq`: {e}"));
    assert_eq!(ours.via().host().to_string(), "sip33.example.com", "longreq: top Via");
    assert!(rsip::SipMessage::try_from(&longreq[..]).is_err(), "rsip now accepts the original `longreq`: measure it on that input too");

    bench_input(c, "invite", &invite, true);
    bench_input(c, "response", &response, true);
    bench_input(c, "longreq", &longreq, false);
    bench_input(c, "longreq-normalized", &longreq_norm, true);
}

/// Printing the parsed INVITE back to wire form: `Message::to_bytes` (rows printed as
/// received, Content-Length recomputed) against `rsip`'s `Display` into a `String`.
fn print_benches(c: &mut Criterion) {
    let invite = datagram(INVITE);
    let ours = sip_message_parse(&invite).expect("the INVITE parses with sip-message");
    let theirs = rsip::SipMessage::try_from(&invite[..]).expect("the INVITE parses with rsip");
    let printed = ours.to_bytes();
    assert_eq!(
        sip_message_parse(&printed).expect("the printed INVITE parses again"),
        ours,
        "printing then parsing the INVITE gives the same message"
    );

    let mut g = c.benchmark_group("print-invite");
    g.throughput(Throughput::Bytes(printed.len() as u64));
    g.bench_function("sip-message", |b| b.iter(|| black_box(black_box(&ours).to_bytes())));
    g.bench_function("rsip", |b| b.iter(|| black_box(black_box(&theirs).to_string())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse_benches, print_benches
}
criterion_main!(benches);
