//! Parse errors: small `Copy` kinds with the offending byte offset and the status a UAS
//! should answer with (RFC 3261 §21). They never allocate.

use crate::header::HeaderName;
use std::fmt;

/// What went wrong. Every kind maps to the status a UAS answers a *request* with; a bad
/// *response* is always dropped (RFC 3261 §16.7 / §18.1.2), never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The data ended before the message did (stream: need more bytes).
    Incomplete,
    /// The start line is neither a Request-Line nor a Status-Line.
    BadStartLine,
    /// `SIP-Version` is not `SIP/2.0` (RFC 3261 §8.2.1 → 505).
    VersionNotSupported,
    /// The Request-URI does not follow its grammar (brackets, spaces, escaped headers).
    BadRequestUri,
    /// A status code outside 100–699 or not three digits.
    BadStatusCode,
    /// A header row without a colon or with an illegal name.
    BadHeaderLine,
    /// A header value that breaks its grammar.
    BadHeader(HeaderName),
    /// A header RFC 3261 §8.1.1 / §20 requires is absent.
    MissingHeader(HeaderName),
    /// A single-valued header appears with several values.
    MultipleValues(HeaderName),
    /// Content-Length is not a number, is negative, or exceeds the data (datagram).
    BadContentLength,
    /// A stream message without Content-Length (RFC 3261 §18.3: mandatory on streams).
    MissingContentLength,
    /// The method of the start line differs from the CSeq method (RFC 3261 §8.2 → 400).
    CSeqMethodMismatch,
    /// The message is larger than the receiver accepts (RFC 3261 §21.5.14 → 513).
    TooLarge,
}

impl ErrorKind {
    /// The final status a UAS sends for a request that fails this way.
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::VersionNotSupported => 505,
            ErrorKind::TooLarge => 513,
            _ => 400,
        }
    }

    /// A short reason, usable as the reason phrase or a Warning text.
    pub const fn reason(self) -> &'static str {
        match self {
            ErrorKind::Incomplete => "Incomplete message",
            ErrorKind::BadStartLine => "Malformed start line",
            ErrorKind::VersionNotSupported => "Version Not Supported",
            ErrorKind::BadRequestUri => "Malformed Request-URI",
            ErrorKind::BadStatusCode => "Malformed status code",
            ErrorKind::BadHeaderLine => "Malformed header line",
            ErrorKind::BadHeader(_) => "Malformed header",
            ErrorKind::MissingHeader(_) => "Missing required header",
            ErrorKind::MultipleValues(_) => "Multiple values in single-valued header",
            ErrorKind::BadContentLength => "Bad Content-Length",
            ErrorKind::MissingContentLength => "Missing Content-Length",
            ErrorKind::CSeqMethodMismatch => "CSeq method does not match",
            ErrorKind::TooLarge => "Message Too Large",
        }
    }
}

/// A parse error: its kind and the byte offset in the input where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    kind: ErrorKind,
    offset: u32,
    response: bool,
}

impl ParseError {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> ParseError {
        let offset = if offset > u32::MAX as usize { u32::MAX } else { offset as u32 };
        ParseError { kind, offset, response: false }
    }

    /// Marks the error as found in a response (its start line was a Status-Line).
    pub(crate) const fn in_response(mut self) -> ParseError {
        self.response = true;
        self
    }

    /// Whether the broken message was a response: it must be dropped, never answered
    /// (RFC 3261 §18.1.2).
    pub const fn is_response(&self) -> bool {
        self.response
    }

    /// The kind of failure.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Byte offset in the input where the failure was detected.
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }

    /// The status code a UAS answers a request with (400, 505, 513 …).
    pub const fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::BadHeader(h) | ErrorKind::MissingHeader(h) | ErrorKind::MultipleValues(h) => {
                write!(f, "{}: {} at byte {}", self.kind.reason(), h.as_str(), self.offset)
            }
            k => write!(f, "{} at byte {}", k.reason(), self.offset),
        }
    }
}

impl std::error::Error for ParseError {}
