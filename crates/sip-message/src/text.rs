//! `Text`: a cheaply cloned, UTF-8-checked slice of a received buffer.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// A string that shares the buffer it was parsed from (no copy).
///
/// The invariant is that the bytes are valid UTF-8; every constructor checks it
/// (tokens are checked to be ASCII by the grammar before they get here).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Bytes);

impl Text {
    /// Wraps bytes that are valid UTF-8; `None` otherwise.
    pub fn from_bytes(b: Bytes) -> Option<Text> {
        std::str::from_utf8(&b).ok()?;
        Some(Text(b))
    }

    /// A `Text` from a static string, without allocation.
    pub const fn from_static(s: &'static str) -> Text {
        Text(Bytes::from_static(s.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // The constructor checked UTF-8, and `Bytes` is immutable.
        match std::str::from_utf8(&self.0) {
            Ok(s) => s,
            Err(_) => unreachable!("Text holds UTF-8 by construction"),
        }
    }

    /// The underlying shared bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// `buf[s..e]` as a static `Text` when it spells one of `common` (the few values a
    /// field usually has: `SIP`, `2.0`, `application`, parameter names …), otherwise the
    /// slice itself: a static needs no reference count.
    pub(crate) fn common_at(buf: &Bytes, s: usize, e: usize, common: &[&'static str]) -> Text {
        let b = &buf[s..e];
        for c in common {
            if b == c.as_bytes() {
                return Text::from_static(c);
            }
        }
        Text::from_checked(buf.slice(s..e))
    }

    /// Parameter names seen in nearly every message.
    pub(crate) const PARAM_NAMES: &'static [&'static str] =
        &["tag", "branch", "lr", "transport", "rport", "received", "user", "maddr", "expires", "q"];

    /// Constructor for bytes the caller has already proven to be ASCII or UTF-8.
    pub(crate) fn from_checked(b: Bytes) -> Text {
        debug_assert!(std::str::from_utf8(&b).is_ok());
        Text(b)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Bytes::from(s))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
