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
use sip_message::Message;
// `std::hint::black_box`, not `criterion::black_box`: criterion 0.5's version (without
// its `real_blackbox` feature) is a `read_volatile` copy of its argument, which for a
// 1 KB `Result<Message, _>` costs hundreds of nanoseconds per call and would be
// charged to the parser. The std one is free and opaque to the optimizer.
use std::hint::black_box;

#[path = "common/mod.rs"]
mod common;
use common::{datagram, load_longreq, normalize_for_rsip, rsip_core, rsip_parse, sip_message_parse, INVITE, OK_200};

use std::time::Duration;

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
