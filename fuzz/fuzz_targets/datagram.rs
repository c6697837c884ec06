//! `datagram`: the input is one UDP datagram.
//!
//! Properties checked:
//! 1. `parse_datagram` never panics (whatever it returns).
//! 2. Round trip: if the datagram parses to a message `m`, then `m.to_bytes()` parses
//!    again, to a message, and that message equals `m` (`Message: PartialEq`, which
//!    compares start line, body and header rows by name and unfolded value, leaving
//!    Content-Length out since printing recomputes it).
//! 3. Printing is a fixpoint: printing the reparsed message gives the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::bytes::Bytes;
use sip_message::{parse_datagram, Frame};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let Ok(Frame::Message(first)) = parse_datagram(input.clone()) else {
        return;
    };
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
