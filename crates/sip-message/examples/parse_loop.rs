//! Parses the benchmark's INVITE in a loop with sip-message or rsip, doing exactly the
//! per-message work of `benches/parse.rs`: for instruction counts, which (unlike times on
//! a shared machine) repeat exactly.
//!
//! ```sh
//! cargo build --release -p sip-message --example parse_loop
//! valgrind --tool=callgrind target/release/examples/parse_loop sip-message 2000
//! valgrind --tool=callgrind target/release/examples/parse_loop rsip 2000
//! valgrind --tool=callgrind target/release/examples/parse_loop sip-message 2000 response
//! valgrind --tool=callgrind target/release/examples/parse_loop sip-message 2000 longreq
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "sip-message".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    // The third argument picks the input: `invite` (default), `response`, or `longreq`
    // (RFC 4475 `longreq` rewritten for rsip, the benchmark's `longreq-normalized`).
    let input = match args.next().as_deref() {
        Some("response") => common::datagram(common::OK_200),
        Some("longreq") => common::datagram(&common::normalize_for_rsip(&common::load_longreq())),
        _ => common::datagram(common::INVITE),
    };
    for _ in 0..n {
        let ok = match which.as_str() {
            "sip-message" => common::sip_message_parse(std::hint::black_box(&input)).is_ok(),
            "rsip" => common::rsip_parse(std::hint::black_box(&input)).is_ok(),
            other => {
                eprintln!("usage: parse_loop sip-message|rsip [N] (not {other})");
                std::process::exit(2);
            }
        };
        assert!(ok, "the input parses");
    }
    println!("{which}: {n} parses");
}
