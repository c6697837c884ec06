//! The SIP message layer of sipbridge: everything between bytes on the wire and a typed
//! SIP message, and back (RFC 3261 §7, §20, §25, with the leniencies of RFC 4475).
//!
//! - **Parsing shares the received buffer.** A message is parsed from a [`bytes::Bytes`]
//!   and every part of it (header values, URIs, the body) is a slice of that buffer;
//!   only folded header values are copied, to unfold them.
//! - **Two stages.** [`RawMessage`] frames a datagram (start line, header rows, body by
//!   Content-Length); [`Message::from_raw`] interprets it and extracts, once, the headers
//!   every layer needs: top Via, From, To, Call-ID, CSeq, Max-Forwards, Contact,
//!   Route, Record-Route, Content-Type. Any other header is parsed on demand.
//! - **Printing.** A header row that was received is printed with its exact bytes; one
//!   we built is printed canonically (full name, one space after `:`). Content-Length
//!   is always recomputed from the body.
//! - **Framing.** [`parse_datagram`] for UDP, [`StreamDecoder`] for TCP/TLS (Content-Length
//!   mandatory, CRLF keep-alives of RFC 5626 §4.4.1).
//! - **Errors** are small `Copy` values ([`ParseError`]): a kind, the byte offset, and
//!   the status a UAS answers a broken request with. Broken responses are dropped.
//! - **Builders**: [`RequestBuilder`] (§8.1.1) and [`Request::reply`] (§8.2.6), drawing
//!   branches, tags and Call-IDs from a caller's [`IdSource`].
//!
//! ```
//! use bytes::Bytes;
//! use sip_message::{Frame, Method, parse_datagram};
//! let wire = Bytes::from_static(b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!     v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK776\r\nf: <sip:a@example.org>;tag=1\r\n\
//!     t: <sip:bob@example.com>\r\ni: abc@192.0.2.1\r\nCSeq: 7 OPTIONS\r\nl: 0\r\n\r\n");
//! let Ok(Frame::Message(msg)) = parse_datagram(wire) else { panic!() };
//! let req = msg.as_request().unwrap();
//! assert_eq!(req.method(), &Method::Options);
//! assert_eq!(req.via().branch(), Some("z9hG4bK776"));
//! assert_eq!(req.from().tag(), Some("1"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
pub mod digits;
mod error;
mod header;
mod message;
mod name_addr;
mod parse;
mod scan;
mod stream;
mod text;
mod uri;
mod via;

pub use builder::{reason_phrase, IdSource, RequestBuilder, ResponseBuilder, SeededIds, BRANCH_COOKIE};
pub use error::{ErrorKind, ParseError};
pub use header::{Header, HeaderName, HeaderRef, Headers, Iter as HeaderIter};
pub use message::{parse_datagram, Frame, MediaType, Message, Request, Response};
pub use name_addr::{Contacts, NameAddr};
pub use parse::{RawMessage, StartLine};
pub use stream::{RawFrame, StreamDecoder};
pub use text::Text;
pub use uri::{Host, Param, Params, SipUri, TelUri, Uri};
pub use via::{CSeq, Method, Transport, Via};

pub use bytes;
