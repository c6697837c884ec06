//! SDP for sipbridge: the session description model, its parser and printer
//! (RFC 8866, which obsoletes RFC 4566), and the RFC 3264 offer/answer negotiator, as
//! pure code: no SIP, no IO, no clock, no randomness.
//!
//! sipbridge bridges two call legs and rewrites each leg's SDP so that the media points
//! at its RTP relay (later, for direct media, at the other phone). The helpers on
//! [`SessionDescription`] are what that takes: [`audio_address`], [`is_hold`],
//! [`set_audio_address`], [`filter_codecs`], [`audio_codecs`], [`ptime`] and
//! [`answer_to`] (an answer sipbridge writes itself); [`uses_srtp`] and [`has_t38`] tell
//! the direct-media policy about media it cannot bridge directly; [`LocalOrigin`] keeps
//! our `o=` line per leg; [`Negotiator`] tracks who owes whom an answer.
//!
//! # Parsing: lenient on the surface, strict on structure
//!
//! - Lines may end in CRLF or in a bare LF; trailing spaces, tabs and CRs are dropped;
//!   empty lines are skipped; fields may be separated by runs of spaces or tabs.
//!   Everything must be UTF-8 (RFC 8866 §5), and a CR or NUL inside a line is an
//!   error (§9: no value holds them).
//! - Structure is checked: `v=0` first, then `o=` (six fields, numeric id and version,
//!   network type `IN`), then `s=` (which may be empty, as in the RFC 3264 examples);
//!   `c=` at most once per level; a well-formed `m=` (`<media> <port>[/<count>] <proto>
//!   <fmt>…`, the formats kept as tokens, so `image 0 udptl t38` works); every active
//!   stream (port not 0) has a `c=` of its own or a session-level one. A type letter
//!   RFC 8866 does not define is an error (§5 says such a description is ignored), and
//!   so is a session-only line (`t=`, `u=`…) inside a media description.
//! - Deliberately not required: `t=` (kept when present, never invented on parse), and
//!   at least one format on `m=` lines.
//! - Errors are [`SdpError`]: a small `Copy` kind and the 1-based line number. Network
//!   input never panics.
//!
//! # What is preserved
//!
//! Everything not interpreted survives parse and print: `i=`, `u=`, `e=`, `p=`, `b=`,
//! `t=`, `r=`, `z=`, `k=` lines, every `a=` attribute (name and value verbatim, in
//! order, at session and media level), multicast `c=` addresses with `/ttl` (kept as
//! written, as are host names), port counts (`49170/2`), and media of any type.
//!
//! # Printing
//!
//! [`SessionDescription::to_bytes`] writes canonical SDP: CRLF line ends, single
//! spaces, lines in RFC 8866 §5 order (the parser puts the other lines in that order
//! too, keeping `t=`/`r=` pairs and the order of attributes), so that
//! `parse(to_bytes(x)) == x` for every parsed `x`.
//!
//! # Directions and hold
//!
//! A direction attribute at session level applies to every media description without
//! its own ([`SessionDescription::effective_direction`]); [`Media::direction`] is the
//! stream's own. [`is_hold`] accepts the three hold forms: `a=sendonly`, `a=inactive`
//! and the RFC 2543 `c=IN IP4 0.0.0.0`; [`set_audio_address`] lets the `0.0.0.0` form
//! pass through unchanged so that hold works end to end.
//!
//! # Our origin and its version rule
//!
//! [`LocalOrigin::stamp`] writes our `o=` (username, session id and address fixed for
//! the dialog) and `s=-` into every description we send on a leg. The version starts
//! at 1 and increases by one exactly when the description differs from the one stamped
//! before on that leg; a byte-identical re-send (session refresh) keeps it (RFC 3264 §8).
//!
//! # Offer/answer
//!
//! [`Negotiator`] is the state of one side of one dialog (Stable, LocalOffer,
//! RemoteOffer). A peer offer returns a [`RemoteOffer`] token that only
//! [`Negotiator::local_answer`] consumes, so an answer without an offer cannot be
//! written. Answers are checked against their offer (same number of `m=` lines and
//! media types, port 0 stays 0, accepted streams list offered formats): strictly for
//! answers we send ([`validate_answer`]: only offered formats), as RFC 3264 §6.1
//! allows for answers we receive ([`check_remote_answer`]: at least one offered
//! format, extra ones tolerated, since phones add e.g. telephone-event).
//!
//! ```
//! use sdp::{SessionDescription, Negotiator, LocalOrigin};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let offer = SessionDescription::parse(b"v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\
//!     c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n\
//!     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n").unwrap();
//! assert_eq!(offer.audio_address(), Some("192.0.2.1:49170".parse().unwrap()));
//!
//! let mut neg = Negotiator::new();
//! let token = neg.remote_offer(offer.clone()).unwrap();
//! let relay = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
//! let mut answer = SessionDescription::answer_to(&offer, &["PCMA", "telephone-event"], relay, 40000).unwrap();
//! LocalOrigin::new("sipbridge", 42, relay).stamp(&mut answer);
//! neg.local_answer(token, answer.clone()).unwrap();
//! assert_eq!(answer.audio_codecs().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["PCMA", "telephone-event"]);
//! assert_eq!(neg.local(), Some(answer));
//! ```
//!
//! [`audio_address`]: SessionDescription::audio_address
//! [`is_hold`]: SessionDescription::is_hold
//! [`set_audio_address`]: SessionDescription::set_audio_address
//! [`filter_codecs`]: SessionDescription::filter_codecs
//! [`audio_codecs`]: SessionDescription::audio_codecs
//! [`ptime`]: SessionDescription::ptime
//! [`answer_to`]: SessionDescription::answer_to
//! [`uses_srtp`]: SessionDescription::uses_srtp
//! [`has_t38`]: SessionDescription::has_t38

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audio;
mod codec;
mod error;
mod model;
mod negotiator;
mod origin;
mod parse;
mod print;

#[cfg(test)]
mod tests;

pub use audio::answer_codecs;
pub use codec::Codec;
pub use error::{SdpError, SdpErrorKind};
pub use model::{Attribute, Connection, Direction, Line, Media, Origin, SessionDescription};
pub use negotiator::{check_remote_answer, validate_answer, NegotiationError, NegotiationState, Negotiator, RemoteOffer};
pub use origin::LocalOrigin;

impl SessionDescription {
    /// Parses a session description (see the crate docs for what is accepted).
    pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
        parse::parse(input)
    }

    /// Prints the description canonically (CRLF, RFC 8866 order);
    /// `parse(to_bytes(x)) == x`.
    pub fn to_bytes(&self) -> bytes::Bytes {
        // Exactly the printed length: a negotiator keeps these for a call's whole life,
        // and the printer's 512-byte head start would stay allocated with them.
        bytes::Bytes::from(print::print(self).into_bytes().into_boxed_slice())
    }
}

impl std::fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&print::print(self))
    }
}
