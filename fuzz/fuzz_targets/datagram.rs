//! `datagram`: the input is one UDP datagram.
//!
//! Properties checked:
//! 1. `parse_datagram` never panics (whatever it returns).
//! 2. Round trip: if the datagram parses to a message `m`, then `m.to_bytes()` parses
//!    again, to a message, and that message equals `m` (`Message: PartialEq`, which
//!    compares start line, body and header rows by name and unfolded value, leaving
//!    Content-Length out since printing recomputes it).
//! 3. Printing is a fixpoint: printing the reparsed message gives the same bytes again.
//! 4. Parameter lists read in place agree with themselves: every parameter the iterator
//!    yields is found by name, and turning the list into an owned one (as the first
//!    change does) keeps every parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::bytes::Bytes;
use sip_message::{parse_datagram, Frame, Message, Params};

fn check_params(p: &Params) {
    let all: Vec<_> = p.iter().collect();
    assert_eq!(all.len(), p.len());
    for q in &all {
        let first = p.get(q.name()).expect("an iterated parameter is found by name");
        assert!(all.iter().any(|r| r == &first));
    }
    let mut owned = p.clone();
    owned.set("x-fuzz-probe", None);
    assert!(owned.remove("x-fuzz-probe"));
    assert_eq!(owned.iter().collect::<Vec<_>>(), all, "owned copy keeps every parameter");
}

fn check_all_params(m: &Message) {
    check_params(m.via().params());
    check_params(m.from().params());
    check_params(m.to().params());
    for u in [m.from().uri(), m.to().uri()] {
        if let Some(s) = u.as_sip() {
            check_params(s.params());
        }
    }
    if let Some(r) = m.as_request() {
        for a in r.contacts().addrs().iter().chain(r.routes()).chain(r.record_routes()) {
            check_params(a.params());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let Ok(Frame::Message(first)) = parse_datagram(input.clone()) else {
        return;
    };
    check_all_params(&first);
    let printed = first.to_bytes();
    let second = match parse_datagram(printed.clone()) {
        Ok(Frame::Message(m)) => m,
        other => panic!(
            "round trip: the printed message does not parse back to a message\n\
             input:   {input:?}\nprinted: {printed:?}\nreparse: {other:?}"
        ),
    };
    assert!(
        second == first,
        "round trip: reparse differs from the first parse\n\
         input:   {input:?}\nprinted: {printed:?}\nfirst:  {first:?}\nsecond: {second:?}"
    );
    let reprinted = second.to_bytes();
    assert!(
        reprinted == printed,
        "printing is not a fixpoint\ninput:     {input:?}\nprinted:   {printed:?}\nreprinted: {reprinted:?}"
    );
});
