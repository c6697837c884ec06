//! The RFC 4475 registrar cases (`cparam01`, `cparam02`, `regescrt`), read in place from
//! `../shared/conformance/rfc4475/`: contact parameters and URI parameters kept apart,
//! an escaped URI header kept in the binding.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use sip_core::registrar::{Registrar, RegistrarConfig};
use sip_core::sip_message::{parse_datagram, Frame, Message, Request};
use sip_core::{Flow, Time, Transport};
use std::path::PathBuf;

fn corpus(name: &str) -> Request {
    let dir = std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("conformance/rfc4475");
    let path = dir.join(format!("{name}.dat"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set SIPBRIDGE_SHARED)", path.display()));
    match parse_datagram(Bytes::from(data)).unwrap() {
        Frame::Message(Message::Request(r)) => r,
        _ => panic!("{name} is a request"),
    }
}

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "192.0.2.1:5060".parse().unwrap(),
        connection: None,
    }
}

/// Registers `name` and returns the 200's Contact rows and the stored contact URI.
fn run(name: &str) -> (Vec<String>, String) {
    let mut r = Registrar::new(RegistrarConfig::default());
    let req = corpus(name);
    let h = r.register(Time::ZERO, "user", &req, &flow(), None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rows = h.iter().map(|h| h.value_str().unwrap().to_owned()).collect();
    let b = &r.bindings("user")[0];
    (rows, b.contact.uri().to_string())
}

#[test]
fn cparam01_contact_parameter_is_not_a_uri_parameter() {
    let (rows, uri) = run("cparam01");
    assert_eq!(uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(rows, ["<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"]);
}

#[test]
fn cparam02_uri_parameter_stays_in_the_uri() {
    let (rows, uri) = run("cparam02");
    assert_eq!(uri, "sip:+19725552222@gw1.example.net;unknownparam");
    assert_eq!(rows, ["<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600"]);
}

#[test]
fn regescrt_keeps_the_escaped_header() {
    let (rows, uri) = run("regescrt");
    assert_eq!(uri, "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
    assert_eq!(rows, ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]);
}
