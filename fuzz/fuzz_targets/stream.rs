//! `stream`: the input is a TCP/TLS byte stream, cut into chunks.
//!
//! Input layout (the first bytes choose how the rest is cut):
//! - byte 0, bits 0–3: `n`, the number of chunk-size bytes that follow (0–15);
//!   `n == 0` means one-byte chunks.
//! - byte 0, bits 4–6: the decoder's message-size bound: 0 is
//!   `StreamDecoder::DEFAULT_MAX_LEN` (`StreamDecoder::new()`), 1–7 are
//!   32, 64, 128, 256, 512, 1024, 2048 octets (`with_max_len`), so that the TooLarge
//!   paths are reached with small inputs. Bit 7 is unused.
//! - bytes 1..=n: chunk sizes, each `byte + 1` (1–256), used in turn and cycled.
//! - the rest: the stream.
//!
//! Properties checked:
//! 1. Nothing panics; after each push, `decode()` is drained until `Ok(None)` or a
//!    framing error (`is_broken()`); a non-fatal error (a message framed correctly but
//!    malformed inside) is recorded and decoding goes on.
//! 2. No endless loop: every frame or error consumes input, so a decoder yielding more
//!    results than bytes pushed is a bug. Once broken, the decoder keeps returning
//!    the same error.
//! 3. Chunking does not matter: the sequence of messages and errors is the same as when
//!    the whole stream is pushed at once. Keep-alives (Ping/Pong) are left out of the
//!    comparison, since they legitimately depend on where the stream is cut: a CRLF
//!    that ends the buffered data is taken as a pong at once (a later CRLF is then a
//!    second pong, not half of a ping), and a lone CR or LF before a start line is
//!    dropped (RFC 3261 §7.5, RFC 5626 §4.4.1; see `StreamDecoder::keep_alive`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::{Frame, Message, ParseError, StreamDecoder};

const MAX_LENS: [usize; 8] = [StreamDecoder::DEFAULT_MAX_LEN, 32, 64, 128, 256, 512, 1024, 2048];

#[derive(Debug, PartialEq)]
enum Event {
    Message(Message),
    /// Any error; `broken` tells whether it was a framing error.
    Error { error: ParseError, broken: bool },
}

#[derive(Default)]
struct Run {
    events: Vec<Event>,
    keep_alives: usize,
    pushed: usize,
}

impl Run {
    fn failed(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::Error { .. }))
    }

    /// Drains `d` until it needs more bytes or breaks. Returns `false` once broken.
    fn drain(&mut self, d: &mut StreamDecoder) -> bool {
        loop {
            let results = self.events.len() + self.keep_alives;
            assert!(
                results <= self.pushed,
                "decoder yielded {results} results from {} bytes: endless loop",
                self.pushed
            );
            match d.decode() {
                Ok(None) => return true,
                Ok(Some(Frame::Message(m))) => self.events.push(Event::Message(m)),
                Ok(Some(Frame::Ping | Frame::Pong)) => self.keep_alives += 1,
                Err(error) => {
                    let broken = d.is_broken();
                    self.events.push(Event::Error { error, broken });
                    if broken {
                        // A broken decoder stays broken, with the same error, and
                        // ignores what is pushed after.
                        d.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n");
                        assert_eq!(d.decode(), Err(error), "a broken decoder changed its error");
                        assert!(d.is_broken());
                        return false;
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(cfg & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let max_len = MAX_LENS[usize::from((cfg >> 4) & 0x07)];

    // Chunked.
    let mut chunked = Run::default();
    let mut d = StreamDecoder::with_max_len(max_len);
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let size = sizes.get(i % sizes.len().max(1)).map_or(1, |&b| usize::from(b) + 1);
        i += 1;
        let end = (pos + size).min(stream.len());
        d.push(&stream[pos..end]);
        chunked.pushed += end - pos;
        pos = end;
        if !chunked.drain(&mut d) {
            break;
        }
    }

    // Whole.
    let mut whole = Run::default();
    let mut d = StreamDecoder::with_max_len(max_len);
    d.push(stream);
    whole.pushed = stream.len();
    whole.drain(&mut d);

    if !chunked.failed() && !whole.failed() {
        assert!(
            chunked.events == whole.events,
            "chunked and whole streams give different messages\nchunked: {:?}\nwhole:   {:?}",
            chunked.events,
            whole.events
        );
    }
    // Stronger: errors too (kind, offset, and whether fatal) must not depend on chunking.
    assert!(
        chunked.events == whole.events,
        "chunked and whole streams give different results\nchunked: {:?}\nwhole:   {:?}",
        chunked.events,
        whole.events
    );
});
