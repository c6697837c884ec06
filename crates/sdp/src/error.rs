//! Parse errors: a small `Copy` kind and the line it was found on.

/// What was wrong with a session description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SdpErrorKind {
    /// The body is empty (no line at all).
    Empty,
    /// A line is not valid UTF-8.
    NotUtf8,
    /// A line is not `<letter>=<value>` with a lower-case letter.
    BadLine,
    /// A type letter RFC 8866 does not define (§5: such a description is ignored).
    UnknownType,
    /// The first line is not `v=`.
    MissingVersion,
    /// `v=` is not `0`.
    BadVersion,
    /// The second line is not `o=`.
    MissingOrigin,
    /// `o=` does not have its six fields, or its numbers are not numbers.
    BadOrigin,
    /// The third line is not `s=`.
    MissingSessionName,
    /// A line that may appear once appears again, or a line appears where it is not
    /// allowed (`t=` in a media description, a second `o=`…).
    Misplaced,
    /// `c=` is not `IN <addrtype> <address>`.
    BadConnection,
    /// `m=` is not `<media> <port>[/<count>] <proto> <fmt>…`.
    BadMedia,
    /// `a=` with an empty name.
    BadAttribute,
    /// An active media stream (port not 0) has no `c=` at media nor at session level.
    MissingConnection,
}

impl SdpErrorKind {
    /// A short English description.
    pub fn as_str(self) -> &'static str {
        match self {
            SdpErrorKind::Empty => "empty session description",
            SdpErrorKind::NotUtf8 => "line is not UTF-8",
            SdpErrorKind::BadLine => "not a <type>=<value> line",
            SdpErrorKind::UnknownType => "unknown line type",
            SdpErrorKind::MissingVersion => "first line is not v=",
            SdpErrorKind::BadVersion => "v= is not 0",
            SdpErrorKind::MissingOrigin => "o= expected",
            SdpErrorKind::BadOrigin => "malformed o=",
            SdpErrorKind::MissingSessionName => "s= expected",
            SdpErrorKind::Misplaced => "line not allowed here",
            SdpErrorKind::BadConnection => "malformed c=",
            SdpErrorKind::BadMedia => "malformed m=",
            SdpErrorKind::BadAttribute => "malformed a=",
            SdpErrorKind::MissingConnection => "active media without c=",
        }
    }
}

/// A session description that could not be parsed: what, and on which line (1-based,
/// counting every physical line; 0 only for an empty body).
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[error("line {line}: {}", kind.as_str())]
pub struct SdpError {
    /// What was wrong.
    pub kind: SdpErrorKind,
    /// The 1-based line number.
    pub line: usize,
}

impl SdpError {
    pub(crate) fn new(kind: SdpErrorKind, line: usize) -> SdpError {
        SdpError { kind, line }
    }
}
