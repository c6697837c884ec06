//! `sdp`: the input is one SDP body, given to `sdp::SessionDescription::parse`.
//!
//! Properties checked:
//! 1. Parsing never panics (whatever it returns).
//! 2. Round trip: if the body parses to `d`, then `d.to_bytes()` parses to `d` again,
//!    and printing that gives the same bytes (printing is a fixpoint).
//! 3. The B2BUA's edits keep a description valid: after `set_audio_address` and after
//!    `filter_codecs`, the description still round-trips; an answer made by
//!    `answer_to` round-trips and passes `validate_answer` against its offer.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sdp::{validate_answer, SessionDescription};

fn round_trip(d: &SessionDescription, what: &str) {
    let printed = d.to_bytes();
    let again = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("{what}: reprinted description does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
    assert_eq!(&again, d, "{what}: round trip changed the description\n{}", String::from_utf8_lossy(&printed));
    assert_eq!(again.to_bytes(), printed, "{what}: printing is not a fixpoint");
}

fuzz_target!(|data: &[u8]| {
    let Ok(d) = SessionDescription::parse(data) else { return };
    round_trip(&d, "parsed");
    let _ = (d.audio_address(), d.is_hold(), d.ptime(), d.audio_codecs());

    let relay = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    let mut moved = d.clone();
    moved.set_audio_address(relay, 40000);
    round_trip(&moved, "set_audio_address");

    let mut filtered = d.clone();
    filtered.filter_codecs(&["PCMU", "PCMA", "telephone-event"]);
    round_trip(&filtered, "filter_codecs");

    if let Some(answer) = SessionDescription::answer_to(&d, &["PCMU", "PCMA", "G722", "opus", "telephone-event"], relay, 40000) {
        round_trip(&answer, "answer_to");
        assert_eq!(validate_answer(&d, &answer), Ok(()), "answer_to made an invalid answer");
    }
});
