//! Prints how each file given on the command line parses (a debugging aid).
use sip_message::{bytes::Bytes, parse_datagram};
fn main() {
    for p in std::env::args().skip(1) {
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{p}: {e}");
                continue;
            }
        };
        match parse_datagram(Bytes::from(data)) {
            Ok(f) => println!("{p}: ok {f:?}\n"),
            Err(e) => println!("{p}: ERR {e} (status {}, response {})\n", e.status(), e.is_response()),
        }
    }
}
