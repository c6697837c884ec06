//! N OPTIONS through the engine, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/options_loop 2000`.
use bytes::Bytes;
use sip_core::{Endpoint, EndpointConfig, Flow, Time, Transport};
use std::time::Duration;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let msgs: Vec<Bytes> = (0..n)
        .map(|i| {
            Bytes::from(format!(
                "OPTIONS sip:sipbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench-{i}\r\n\
                 Max-Forwards: 70\r\nFrom: sipp <sip:sipp@127.0.0.1:5070>;tag={i}\r\nTo: <sip:sipbridge@127.0.0.1:5060>\r\n\
                 Call-ID: {i}-bench@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContact: <sip:sipp@127.0.0.1:5070>\r\nAccept: application/sdp\r\n\
                 Content-Length: 0\r\n\r\n"
            ))
        })
        .collect();
    let mut ep = Endpoint::new(EndpointConfig::default());
    let src = Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "127.0.0.1:5070".parse().expect("addr"),
        connection: None,
    };
    let mut sent = 0usize;
    for m in msgs {
        ep.handle_datagram(Time::ZERO, src, m);
        while let Some(t) = ep.poll_transmit() {
            sent += t.payload().map_or(0, |p| p.len());
        }
    }
    ep.handle_timeout(Time::ZERO + Duration::from_secs(40));
    println!("{sent} bytes sent, {} live", ep.transaction_count());
}
