//! Property tests: round trips, answers are subsets of offers, no panics on garbage.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use sdp::{answer_codecs, check_remote_answer, validate_answer, Codec, SessionDescription};

/// A token without white space.
fn token() -> impl Strategy<Value = String> {
    "[!-~&&[^:]][!-~]{0,10}"
}

/// Free text, possibly with spaces (leading white space is part of a value; trailing
/// white space is dropped by the parser).
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| format!("IP4 {}", Ipv4Addr::from(a))),
        any::<[u16; 8]>().prop_map(|a| format!("IP6 {}", std::net::Ipv6Addr::from(a))),
        (224u8..240, any::<u8>(), 1u8..255).prop_map(|(a, b, ttl)| format!("IP4 {a}.2.{b}.1/{ttl}")),
        Just("IP4 host.example.com".to_owned()),
    ]
}

fn other_line(kinds: &'static [char]) -> impl Strategy<Value = String> {
    (prop::sample::select(kinds), "[!-~][ -~]{0,15}").prop_map(|(k, v)| format!("{k}={v}"))
}

fn attribute() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z][a-zA-Z0-9-]{0,10}";
    prop_oneof![
        name.prop_map(|n| format!("a={n}")),
        (name, text()).prop_map(|(n, v)| format!("a={n}:{v}")),
        Just("a=sendonly".to_owned()),
        Just("a=recvonly".to_owned()),
        Just("a=inactive".to_owned()),
        Just("a=sendrecv".to_owned()),
        (0u8..128, "[A-Za-z0-9-]{1,12}", prop::sample::select(vec![8000u32, 16000, 48000, 90000]))
            .prop_map(|(pt, n, r)| format!("a=rtpmap:{pt} {n}/{r}")),
        (0u8..128, "[!-~]{1,12}").prop_map(|(pt, p)| format!("a=fmtp:{pt} {p}")),
        (10u32..200).prop_map(|p| format!("a=ptime:{p}")),
        (1u16..65535).prop_map(|p| format!("a=rtcp:{p}")),
    ]
}

fn format_token() -> impl Strategy<Value = String> {
    prop_oneof![4 => (0u8..128).prop_map(|p| p.to_string()), 1 => Just("t38".to_owned()), 1 => Just("*".to_owned())]
}

/// One media description's lines; `needs_c` forces a media-level c= on an active stream.
fn media(needs_c: bool) -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(vec!["audio", "video", "image", "application", "text", "AUDIO"]),
        prop_oneof![Just(0u16), any::<u16>()],
        prop::option::of(1u16..5),
        prop::sample::select(vec!["RTP/AVP", "RTP/SAVP", "udptl", "TCP/BFCP", "UDP/TLS/RTP/SAVPF"]),
        prop::collection::vec(format_token(), 0..6),
        prop::option::of(address()),
        prop::collection::vec(other_line(&['i', 'b', 'k']), 0..3),
        prop::collection::vec(attribute(), 0..6),
    )
        .prop_map(move |(ty, port, count, proto, fmts, c, lines, attrs)| {
            let mut out = vec![];
            let count = count.map(|n| format!("/{n}")).unwrap_or_default();
            let fmts: String = fmts.iter().map(|f| format!(" {f}")).collect();
            out.push(format!("m={ty} {port}{count} {proto}{fmts}"));
            out.extend(lines);
            let c = c.or_else(|| (needs_c && port != 0).then(|| "IP4 192.0.2.9".to_owned()));
            if let Some(c) = c {
                out.push(format!("c=IN {c}"));
            }
            out.extend(attrs);
            out
        })
}

/// The text of a valid description, with random line ends, trailing white space and
/// session lines in any order.
fn description() -> impl Strategy<Value = String> {
    (
        (token(), any::<u64>(), any::<u64>(), address()),
        text(),
        prop::collection::vec(other_line(&['i', 'u', 'e', 'p', 'b', 't', 'r', 'z', 'k']), 0..6),
        prop::option::of(address()),
        prop::collection::vec(attribute(), 0..4),
        any::<bool>(),
    )
        .prop_flat_map(|(o, s, lines, c, attrs, _)| {
            let needs_c = c.is_none();
            (
                Just((o, s, lines, c, attrs)),
                prop::collection::vec(media(needs_c), 0..4),
                prop::collection::vec((any::<bool>(), "[ \t]{0,2}"), 64),
            )
        })
        .prop_map(|((o, s, lines, c, attrs), media, ends)| {
            let mut all = vec!["v=0".to_owned(), format!("o={} {} {} IN {}", o.0, o.1, o.2, o.3), format!("s={s}")];
            all.extend(lines);
            if let Some(c) = c {
                all.push(format!("c=IN {c}"));
            }
            all.extend(attrs);
            all.extend(media.into_iter().flatten());
            let mut text = String::new();
            for (i, line) in all.iter().enumerate() {
                let (crlf, trailing) = &ends[i % ends.len()];
                text.push_str(line);
                text.push_str(trailing);
                text.push_str(if *crlf { "\r\n" } else { "\n" });
            }
            text
        })
}

const NAMES: &[&str] = &["PCMU", "PCMA", "G722", "G729", "opus", "iLBC", "telephone-event", "GSM", "speex"];

/// An offer with realistic audio: static and dynamic payload types, telephone-event,
/// other streams around the audio, directions and hold.
fn offer() -> impl Strategy<Value = String> {
    let codec = prop_oneof![
        prop::sample::select(vec![0u8, 3, 8, 9, 18, 13]).prop_map(|pt| (pt.to_string(), None)),
        (96u8..128, prop::sample::select(NAMES.to_vec()), prop::sample::select(vec![8000u32, 16000, 48000]))
            .prop_map(|(pt, n, r)| (pt.to_string(), Some(format!("{n}/{r}")))),
        // Odd tokens that are no payload type: not chosen, not answered.
        prop::sample::select(vec!["09", "00", "t38", "*", "255"]).prop_map(|t| (t.to_owned(), None)),
    ];
    (
        prop::collection::vec(codec, 1..7),
        prop::collection::vec(
            prop::sample::select(vec![
                "m=video 5000 RTP/AVP 31",
                "m=image 6000 udptl t38",
                "m=audio 0 RTP/AVP 0",
                "m=audio 7000 RTP/AVP 8",
            ]),
            0..3,
        ),
        0usize..3,
        prop::sample::select(vec!["", "a=sendonly\n", "a=recvonly\n", "a=inactive\n", "a=sendrecv\n"]),
        prop::sample::select(vec!["192.0.2.1", "0.0.0.0"]),
    )
        .prop_map(|(codecs, others, at, dir, c)| {
            let fmts: String = codecs.iter().map(|(pt, _)| format!(" {pt}")).collect();
            let mut audio = format!("m=audio 4000 RTP/AVP{fmts}\n");
            for (pt, map) in &codecs {
                if let Some(map) = map {
                    audio.push_str(&format!("a=rtpmap:{pt} {map}\na=fmtp:{pt} x=1\n"));
                }
            }
            audio.push_str(dir);
            let mut media: Vec<String> = others.iter().map(|m| format!("{m}\n")).collect();
            media.insert(at.min(media.len()), audio);
            format!("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 {c}\nt=0 0\n{}", media.concat())
        })
}

fn supported() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(NAMES.to_vec(), 0..=NAMES.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_descriptions_round_trip(text in description()) {
        let sdp = SessionDescription::parse(text.as_bytes());
        prop_assert!(sdp.is_ok(), "{:?} for\n{}", sdp, text);
        let sdp = sdp.unwrap();
        let printed = sdp.to_bytes();
        let again = SessionDescription::parse(&printed);
        prop_assert_eq!(again.as_ref(), Ok(&sdp), "printed:\n{}", String::from_utf8_lossy(&printed));
        prop_assert_eq!(again.unwrap().to_bytes(), printed);
    }

    #[test]
    fn answers_validate_and_are_subsets(text in offer(), supported in supported()) {
        let offer = SessionDescription::parse(text.as_bytes()).unwrap();
        let relay = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let chosen = answer_codecs(&offer, &supported);
        prop_assert!(chosen.iter().all(|c| c.is_named_in(&supported)));
        match SessionDescription::answer_to(&offer, &supported, relay, 40000) {
            None => prop_assert!(chosen.iter().all(Codec::is_telephone_event)),
            Some(answer) => {
                prop_assert_eq!(validate_answer(&offer, &answer), Ok(()));
                prop_assert_eq!(check_remote_answer(&offer, &answer), Ok(()));
                prop_assert_eq!(answer.media().len(), offer.media().len());
                let offered = offer.active_audio().unwrap();
                let accepted = answer.active_audio().unwrap();
                prop_assert_eq!(answer.active_audio_index(), offer.active_audio_index());
                prop_assert!(accepted.formats().iter().all(|f| offered.formats().contains(f)));
                prop_assert_eq!(answer.audio_codecs(), chosen.clone());
                prop_assert!(chosen.iter().any(|c| !c.is_telephone_event()));
                prop_assert_eq!(answer.media().iter().filter(|m| m.is_active()).count(), 1);
                prop_assert_eq!(answer.effective_direction(accepted), offer.effective_direction(offered).reverse());
                prop_assert_eq!(SessionDescription::parse(&answer.to_bytes()), Ok(answer.clone()));
            }
        }
    }

    #[test]
    fn filter_codecs_keeps_only_allowed(text in offer(), allowed in supported()) {
        let mut sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        let before = sdp.audio_codecs();
        let left = sdp.filter_codecs(&allowed);
        let after = sdp.audio_codecs();
        prop_assert!(after.iter().all(|c| c.is_named_in(&allowed)));
        prop_assert_eq!(left, after.iter().filter(|c| !c.is_telephone_event()).count());
        let expected: Vec<Codec> = before.into_iter().filter(|c| c.is_named_in(&allowed)).collect();
        prop_assert_eq!(after, expected);
        prop_assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
    }

    #[test]
    fn set_audio_address_leaves_one_active_stream(text in offer(), port in 1u16..) {
        let mut sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        let was_hold = sdp.is_hold();
        let relay = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        sdp.set_audio_address(relay, port);
        prop_assert_eq!(sdp.media().iter().filter(|m| m.is_active()).count(), 1);
        prop_assert_eq!(sdp.is_hold(), was_hold);
        let addr = sdp.audio_address().unwrap();
        prop_assert_eq!(addr.port(), port);
        prop_assert!(addr.ip() == relay || addr.ip().is_unspecified());
        prop_assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(sdp) = SessionDescription::parse(&bytes) {
            prop_assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
        }
    }

    #[test]
    fn parse_never_panics_on_damaged_descriptions(text in description(), cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = text.into_bytes();
        for (at, byte) in cuts {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match byte % 3 {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b"= :/\r\n0am"[usize::from(byte) % 9]),
            }
        }
        if let Ok(sdp) = SessionDescription::parse(&bytes) {
            let printed = sdp.to_bytes();
            prop_assert_eq!(SessionDescription::parse(&printed), Ok(sdp));
        }
    }
}
