//! Framing for stream transports (TCP, TLS): RFC 3261 §18.3 and RFC 5626 §4.4.1.
//!
//! Bytes arrive in chunks of any size; [`StreamDecoder::decode`] yields whole messages,
//! keep-alives, or "need more". Content-Length is mandatory on a stream, since nothing
//! else can tell where a body ends. A framing error is unrecoverable: the decoder stays
//! broken and the connection must be closed (RFC 4475 §3.1.2.2, `ncl`, `mcl01`).

use crate::error::{ErrorKind, ParseError};
use crate::message::{Frame, Message};
use crate::parse::{self, ContentLength, End, Head, RawMessage};
use bytes::{Buf, BytesMut};

/// One unit of a stream before the message in it is interpreted
/// ([`StreamDecoder::decode_raw`]).
#[derive(Debug, Clone)]
pub enum RawFrame {
    /// A framed message.
    Message(RawMessage),
    /// A double-CRLF keep-alive (RFC 5626 §4.4.1).
    Ping,
    /// A single-CRLF keep-alive answer.
    Pong,
}

/// Decodes SIP messages from a byte stream.
///
/// ```
/// use sip_message::{Frame, StreamDecoder};
/// let mut d = StreamDecoder::new();
/// d.push(b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n");
/// assert!(matches!(d.decode(), Ok(None))); // need more
/// d.push(b"From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n");
/// d.push(b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n\r\n\r\n");
/// assert!(matches!(d.decode(), Ok(Some(Frame::Message(_)))));
/// assert!(matches!(d.decode(), Ok(Some(Frame::Ping))));
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    max_len: usize,
    /// Bytes at the front of `buf` already searched for the end of the head, so that a
    /// peer feeding one byte at a time costs linear, not quadratic, work.
    scanned: usize,
    /// A parsed head waiting for `usize` body octets.
    pending: Option<(Head, usize)>,
    broken: Option<ParseError>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder::new()
    }
}

impl StreamDecoder {
    /// The default bound on one message (head and body), in octets.
    pub const DEFAULT_MAX_LEN: usize = 64 * 1024;

    /// A decoder that refuses messages over [`Self::DEFAULT_MAX_LEN`].
    pub fn new() -> StreamDecoder {
        StreamDecoder::with_max_len(Self::DEFAULT_MAX_LEN)
    }

    /// A decoder that refuses messages over `max_len` octets (413/513 territory: a peer
    /// must not make us buffer without bound).
    pub fn with_max_len(max_len: usize) -> StreamDecoder {
        StreamDecoder { buf: BytesMut::new(), max_len, scanned: 0, pending: None, broken: None }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.broken.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Octets received and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.pending.as_ref().map_or(0, |(h, _)| h.body_start)
    }

    /// Whether a framing error has made the stream unusable (close the connection).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// The next frame: `Ok(None)` means "need more bytes".
    ///
    /// An `Err` for a message that was framed correctly but is malformed inside (a bad
    /// header, 505, CSeq mismatch) skips that message and the stream goes on; an `Err`
    /// about framing leaves the decoder broken ([`Self::is_broken`]) and every later call
    /// returns the same error.
    pub fn decode(&mut self) -> Result<Option<Frame>, ParseError> {
        Ok(match self.decode_raw()? {
            None => None,
            Some(RawFrame::Message(raw)) => Some(Frame::Message(Message::from_raw(raw)?)),
            Some(RawFrame::Ping) => Some(Frame::Ping),
            Some(RawFrame::Pong) => Some(Frame::Pong),
        })
    }

    /// Like [`Self::decode`], but a framed message comes back before interpretation, so
    /// that a server can still answer a request whose headers are broken with a 400 that
    /// copies its rows. `Err` here is always a framing error (the decoder is broken).
    pub fn decode_raw(&mut self) -> Result<Option<RawFrame>, ParseError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        if self.pending.is_none() {
            if let Some(ka) = self.keep_alive() {
                return Ok(ka.map(|f| match f {
                    Frame::Ping => RawFrame::Ping,
                    _ => RawFrame::Pong,
                }));
            }
            let Some(head_len) = self.find_head_end() else {
                if self.buf.len() > self.max_len {
                    return Err(self.fail_too_large());
                }
                return Ok(None);
            };
            if head_len > self.max_len {
                return Err(self.fail_too_large());
            }
            let bytes = self.buf.split_to(head_len).freeze();
            self.scanned = 0;
            let head = parse::parse_head(&bytes, 0, End::Stream).map_err(|e| self.fail(e))?;
            let len = match head.content_length {
                ContentLength::Value(n) => n,
                ContentLength::Absent => {
                    return Err(self.fail(head.error(ErrorKind::MissingContentLength, head_len)));
                }
                ContentLength::Bad(off) => return Err(self.fail(head.error(ErrorKind::BadContentLength, off))),
            };
            if len > self.max_len - head_len {
                return Err(self.fail(head.error(ErrorKind::TooLarge, head_len)));
            }
            self.pending = Some((head, len));
        }
        match &self.pending {
            Some((_, len)) if self.buf.len() >= *len => {
                let len = *len;
                let Some((head, _)) = self.pending.take() else {
                    return Ok(None);
                };
                let body = self.buf.split_to(len).freeze();
                Ok(Some(RawFrame::Message(RawMessage::from_head(head, body))))
            }
            _ => Ok(None),
        }
    }

    /// The head has not ended within the bound (it may never end).
    fn fail_too_large(&mut self) -> ParseError {
        let start = parse::skip_leading_crlf(&self.buf, 0);
        let e = ParseError::new(ErrorKind::TooLarge, self.max_len);
        let e = if parse::looks_like_response(&self.buf[start..]) { e.in_response() } else { e };
        self.fail(e)
    }

    fn fail(&mut self, e: ParseError) -> ParseError {
        self.broken = Some(e);
        self.buf.clear();
        self.pending = None;
        e
    }

    /// CRLF keep-alives between messages (RFC 5626 §4.4.1): a double CRLF is a ping, a
    /// single CRLF a pong. A CRLF that ends the buffered data counts as a pong: waiting
    /// to see whether a second one follows would delay every pong. Stray CR or LF octets
    /// before a start line are dropped (RFC 3261 §7.5).
    fn keep_alive(&mut self) -> Option<Option<Frame>> {
        let b = &self.buf[..];
        if b.starts_with(b"\r\n\r\n") {
            self.buf.advance(4);
            return Some(Some(Frame::Ping));
        }
        if b == b"\r\n\r" {
            return Some(None);
        }
        if b.starts_with(b"\r\n") {
            self.buf.advance(2);
            return Some(Some(Frame::Pong));
        }
        let skip = parse::skip_leading_crlf(b, 0);
        if skip > 0 {
            self.buf.advance(skip);
            if self.buf.is_empty() {
                return Some(None);
            }
        }
        None
    }

    /// Length of the head (start line, header rows and the empty line), once the empty
    /// line has arrived. Bare LF line ends are accepted as on datagrams.
    fn find_head_end(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        let mut i = self.scanned.saturating_sub(3);
        while let Some(nl) = b.get(i..).and_then(|r| memchr::memchr(b'\n', r)) {
            let p = i + nl + 1;
            match (b.get(p), b.get(p + 1)) {
                (Some(b'\n'), _) => return Some(p + 1),
                (Some(b'\r'), Some(b'\n')) => return Some(p + 2),
                _ => i = p,
            }
        }
        self.scanned = b.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn every_split_gives_the_same_message() {
        let whole = Message::parse(bytes::Bytes::from_static(MSG)).expect("parses");
        for cut in 0..=MSG.len() {
            let mut d = StreamDecoder::new();
            d.push(&MSG[..cut]);
            let first = d.decode().expect("no error");
            d.push(&MSG[cut..]);
            let got = match first {
                Some(f) => f,
                None => d.decode().expect("no error").expect("whole message"),
            };
            assert_eq!(got, Frame::Message(whole.clone()), "cut at {cut}");
            assert!(matches!(d.decode(), Ok(None)));
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn byte_by_byte_then_two_back_to_back() {
        let mut d = StreamDecoder::new();
        let mut got = 0;
        let two = [MSG, MSG].concat();
        for b in two.chunks(1) {
            d.push(b);
            while let Some(f) = d.decode().expect("ok") {
                assert!(matches!(f, Frame::Message(_)));
                got += 1;
            }
        }
        assert_eq!(got, 2);
    }

    #[test]
    fn framing_errors_break_the_stream() {
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -9\r\n\r\n");
        assert_eq!(d.decode().map_err(|e| e.kind()), Err(ErrorKind::BadContentLength));
        assert!(d.is_broken());
        d.push(MSG);
        assert!(d.decode().is_err());

        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(d.decode().map_err(|e| e.kind()), Err(ErrorKind::MissingContentLength));

        let mut d = StreamDecoder::with_max_len(100);
        d.push(&[b'a'; 101]);
        assert_eq!(d.decode().map_err(|e| e.kind()), Err(ErrorKind::TooLarge));

        // A broken response says so: it is dropped, never answered with a 400.
        let mut d = StreamDecoder::new();
        d.push(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n");
        assert!(matches!(d.decode(), Err(e) if e.kind() == ErrorKind::MissingContentLength && e.is_response()));
        let mut d = StreamDecoder::with_max_len(64);
        d.push(b"\r\nSIP/2.0 200 OK\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(matches!(d.decode(), Ok(Some(Frame::Pong))));
        assert!(matches!(d.decode(), Err(e) if e.kind() == ErrorKind::TooLarge && e.is_response()));
    }

    #[test]
    fn a_bad_message_inside_good_framing_is_skipped() {
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        d.push(MSG);
        assert!(matches!(d.decode(), Err(e) if e.kind() == ErrorKind::MissingHeader(crate::HeaderName::Via)));
        assert!(!d.is_broken());
        assert!(matches!(d.decode(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn keep_alives() {
        let mut d = StreamDecoder::new();
        d.push(b"\r\n\r\n\r\n");
        assert_eq!(d.decode(), Ok(Some(Frame::Ping)));
        assert_eq!(d.decode(), Ok(Some(Frame::Pong)));
        assert_eq!(d.decode(), Ok(None));
        d.push(b"\r\n\r");
        assert_eq!(d.decode(), Ok(None));
        d.push(b"\n");
        assert_eq!(d.decode(), Ok(Some(Frame::Ping)));
    }
}
