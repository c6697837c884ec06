//! Transactions per second through the engine, in process (no sockets): what one core
//! can do before any IO cost. `cargo bench -p sip-core`.
//!
//! - `options_server`: an OPTIONS datagram in, parsed, matched, a server transaction
//!   created, answered 200 by the endpoint, the response printed; the clock jumps past
//!   Timer J every batch so the transaction table stays at its steady-state size.
//! - `invite_486_pair`: two endpoints: INVITE sent by one, received by the other,
//!   answered 486 by its layer above, the 486 matched at the client, ACK generated and
//!   absorbed by the server transaction: four messages, two transactions.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip_core::{Endpoint, EndpointConfig, Event, Flow, Time, Transmit, Transport};
use sip_message::{Host, Method, NameAddr, RequestBuilder, Uri};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 1024;

fn flow(local: &str, remote: &str) -> Flow {
    Flow { transport: Transport::Udp, local: local.parse().expect("addr"), remote: remote.parse().expect("addr"), connection: None }
}

fn options_messages() -> Vec<Bytes> {
    (0..BATCH)
        .map(|i| {
            Bytes::from(format!(
                "OPTIONS sip:sipbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench-{i}\r\n\
                 Max-Forwards: 70\r\nFrom: sipp <sip:sipp@127.0.0.1:5070>;tag={i}\r\nTo: <sip:sipbridge@127.0.0.1:5060>\r\n\
                 Call-ID: {i}-bench@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContact: <sip:sipp@127.0.0.1:5070>\r\nAccept: application/sdp\r\n\
                 Content-Length: 0\r\n\r\n"
            ))
        })
        .collect()
}

fn bench_options(c: &mut Criterion) {
    let msgs = options_messages();
    let mut ep = Endpoint::new(EndpointConfig::default());
    let src = flow("127.0.0.1:5060", "127.0.0.1:5070");
    let mut now = Time::ZERO;
    let mut i = 0;
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("options_server", |b| {
        b.iter(|| {
            ep.handle_datagram(now, src, msgs[i].clone());
            while let Some(t) = ep.poll_transmit() {
                black_box(t);
            }
            i += 1;
            if i == BATCH {
                i = 0;
                now = now + Duration::from_secs(40);
                ep.handle_timeout(now);
            }
        })
    });
    g.finish();
}

fn bench_invite_pair(c: &mut Criterion) {
    let mut a = Endpoint::new(EndpointConfig { seed: 1, ..Default::default() });
    let mut b = Endpoint::new(EndpointConfig { seed: 2, ..Default::default() });
    let a_to_b = flow("127.0.0.1:5060", "127.0.0.2:5060");
    let b_to_a = flow("127.0.0.2:5060", "127.0.0.1:5060");
    let uri = Uri::parse_str("sip:bob@127.0.0.2:5060").expect("uri");
    let from = NameAddr::new(Uri::parse_str("sip:alice@127.0.0.1").expect("uri"));
    let mut now = Time::ZERO;
    let mut n = 0;
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("invite_486_pair", |bch| {
        bch.iter(|| {
            let req = RequestBuilder::new(Method::Invite, uri.clone())
                .from(from.clone())
                .via(sip_message::Transport::Udp, Host::Ipv4([127, 0, 0, 1].into()), Some(5060))
                .build(a.ids())
                .expect("invite");
            a.send_request(now, req, a_to_b).expect("sent");
            // Ping-pong until both sides are quiet.
            loop {
                let mut moved = false;
                while let Some(Transmit::Send { payload, .. }) = a.poll_transmit() {
                    moved = true;
                    b.handle_datagram(now, b_to_a, payload);
                }
                while let Some(e) = b.poll_event() {
                    if let Event::Request { tx, .. } = e {
                        b.reply(now, tx, 486, vec![]).expect("486");
                    }
                }
                while let Some(Transmit::Send { payload, .. }) = b.poll_transmit() {
                    moved = true;
                    a.handle_datagram(now, a_to_b, payload);
                }
                while let Some(e) = a.poll_event() {
                    black_box(e);
                }
                if !moved {
                    break;
                }
            }
            n += 1;
            if n == BATCH {
                n = 0;
                now = now + Duration::from_secs(40);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_options, bench_invite_pair);
criterion_main!(benches);
