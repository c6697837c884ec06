//! The relay's per-packet decision, without sockets: `Session::handle_packet` on a
//! latched call, the G.711 packet the load benchmark sends (docs/BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, Criterion};
use media_relay::{Leg, Session, SessionConfig};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

fn rtp(seq: u16) -> [u8; 172] {
    let mut p = [0xd5u8; 172];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&7u32.to_be_bytes());
    p
}

fn handle_packet(c: &mut Criterion) {
    let a: SocketAddr = "192.0.2.10:4000".parse().expect("addr");
    let b: SocketAddr = "198.51.100.20:5000".parse().expect("addr");
    let mut s =
        Session::new(Duration::ZERO, SessionConfig { timeout: Duration::from_secs(60), nat: [true, false], keepalive: Duration::ZERO });
    s.set_remote(Leg::A, Some(a));
    s.set_remote(Leg::B, Some(b));
    let packets: Vec<[u8; 172]> = (0..1024).map(rtp).collect();
    let mut i = 0usize;
    let mut now = Duration::ZERO;
    c.bench_function("handle_packet latched G.711", |bench| {
        bench.iter(|| {
            i = (i + 1) % packets.len();
            now += Duration::from_micros(20);
            let f = s.handle_packet(now, Leg::A, false, a, black_box(&packets[i]));
            while s.poll_event().is_some() {}
            black_box(f)
        })
    });
    c.bench_function("handle_packet stray source", |bench| {
        let stray: SocketAddr = "203.0.113.66:6666".parse().expect("addr");
        bench.iter(|| black_box(s.handle_packet(now, Leg::A, false, stray, black_box(&packets[0]))))
    });
}

criterion_group!(benches, handle_packet);
criterion_main!(benches);
