//! The sip-message / rsip throughput ratio, measured interleaved.
//!
//! criterion times one benchmark after the other, so on a shared machine whose speed
//! drifts (here by up to 45% within minutes) the two sides of a ratio are measured at
//! different speeds. This benchmark alternates: each round times a batch of parses
//! with sip-message, then the same batch with rsip (then the other order, so neither
//! side always runs first), and the round's ratio is taken from two batches measured
//! milliseconds apart. It prints the median time per parse of each side and the
//! median, lowest and highest ratio over the rounds.
//!
//! The per-message work and the inputs are exactly those of `benches/parse.rs` (shared
//! through `common/mod.rs`); `longreq-n` is its `longreq-normalized`.
//!
//! ```sh
//! cargo bench -p sip-message --bench interleaved            # invite, response, longreq-n
//! cargo bench -p sip-message --bench interleaved -- 400 2000 # rounds, parses per batch
//! ```

use bytes::Bytes;
use std::hint::black_box;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{datagram, load_longreq, normalize_for_rsip, rsip_parse, sip_message_parse, INVITE, OK_200};

/// Nanoseconds per parse over `n` parses of `input` by `parse`. A benchmark is where
/// the clock belongs: the protocol code itself never reads one.
#[allow(clippy::disallowed_methods)]
fn batch<T, E>(n: usize, input: &Bytes, parse: fn(&Bytes) -> Result<T, E>) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let ok = parse(black_box(input)).is_ok();
        assert!(black_box(ok), "the benchmark input parses");
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn run(name: &str, wire: &[u8], rounds: usize, per_batch: usize) {
    let input = datagram(wire);
    assert!(sip_message_parse(&input).is_ok() && rsip_parse(&input).is_ok(), "both parsers take `{name}`");
    // Warm-up: caches, branch predictors, the allocator's free lists, CPU frequency.
    batch(per_batch * 5, &input, sip_message_parse);
    batch(per_batch, &input, rsip_parse);
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = batch(per_batch, &input, sip_message_parse);
            (a, batch(per_batch, &input, rsip_parse))
        } else {
            let b = batch(per_batch, &input, rsip_parse);
            (batch(per_batch, &input, sip_message_parse), b)
        };
        ours.push(a);
        theirs.push(b);
        ratios.push(b / a);
    }
    let (lo, hi) = ratios.iter().fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    let (o, t, r) = (median(&mut ours), median(&mut theirs), median(&mut ratios));
    println!(
        "{name:<9} sip-message {:>6.3} µs  rsip {:>7.3} µs  ratio median {r:.2}x (rounds {rounds} x {per_batch}; lowest {lo:.2}x, highest {hi:.2}x)",
        o / 1000.0,
        t / 1000.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; numbers after it are ours.
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().copied().unwrap_or(200);
    let per_batch = nums.get(1).copied().unwrap_or(1000);
    run("invite", INVITE, rounds, per_batch);
    run("response", OK_200, rounds, per_batch);
    // RFC 4475 `longreq`, rewritten so that rsip takes it (see `benches/parse.rs`).
    run("longreq-n", &normalize_for_rsip(&load_longreq()), rounds, per_batch);
}
