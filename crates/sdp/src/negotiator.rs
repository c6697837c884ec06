//! The RFC 3264 offer/answer state of one side of one dialog.
//!
//! ```text
//!                 local_offer                      remote_offer
//!      +--------------------------+   +------------------------------+
//!      |                          v   |                              v
//!  +--------+  remote_answer  +------------+              +-------------+
//!  | Stable | <-------------- | LocalOffer |   Stable <---| RemoteOffer |
//!  +--------+    (rollback)   +------------+  local_answer +-------------+
//!                                               (rollback)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use std::net::SocketAddr;

use crate::model::SessionDescription;

/// Where the offer/answer exchange of a dialog stands (RFC 3264 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NegotiationState {
    /// No offer outstanding.
    Stable,
    /// We sent an offer and wait for the answer.
    LocalOffer,
    /// The peer sent an offer and waits for our answer.
    RemoteOffer,
}

/// Why an offer/answer step was refused. The negotiator's state is unchanged by an
/// error (except that a spent [`RemoteOffer`] is gone).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationError {
    /// An offer is already outstanding, in either direction (RFC 3264 §4, RFC 6337 §3):
    /// a crossing offer is glare (the caller answers 491), a second peer offer before
    /// our answer gets 500 (RFC 3261 §14.2).
    #[error("an offer is already outstanding")]
    OfferPending,
    /// An answer without an offer to answer.
    #[error("no offer to answer")]
    NoOffer,
    /// The token is not for this negotiator's outstanding offer (it was rolled back,
    /// or belongs to another dialog).
    #[error("the offer token is not for the outstanding offer")]
    StaleToken,
    /// The answer does not fit the offer (RFC 3264 §6).
    #[error("answer does not match the offer: {0}")]
    AnswerMismatch(String),
}

/// The right to answer one peer offer: returned by [`Negotiator::remote_offer`] and
/// spent by [`Negotiator::local_answer`]. Not `Clone` and not constructible outside
/// this crate, so an answer cannot be written without an offer, nor twice.
#[derive(Debug)]
#[must_use = "an offer must be answered (local_answer) or rejected (rollback)"]
pub struct RemoteOffer {
    negotiator: u64,
    serial: u64,
}

/// Gives every negotiator an id, so a token cannot be spent on another one. A counter,
/// not a random number: it never appears in any output.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// RFC 3264 offer/answer state for one side of one dialog.
///
/// `local()` and `remote()` are the descriptions in force (the last completed
/// exchange); an outstanding offer is [`pending_offer`](Negotiator::pending_offer)
/// until it is answered, and is dropped by [`rollback`](Negotiator::rollback).
#[derive(Debug)]
pub struct Negotiator {
    id: u64,
    serial: u64,
    state: NegotiationState,
    /// The descriptions in force, kept printed: a parsed description is about 2 KiB on
    /// the heap for 250 bytes of text, and a call holds two per leg for its whole life;
    /// they are read a few times per offer/answer, not per packet.
    local: Option<Bytes>,
    /// [`SessionDescription::audio_address`] of `local`, read on every media-path step.
    local_audio: Option<SocketAddr>,
    remote: Option<Bytes>,
    /// The outstanding offer (short-lived), parsed: answers are checked against it.
    pending: Option<Box<SessionDescription>>,
    /// Keep the peer's description in force (`remote()`); a B2BUA that keeps what it
    /// needs of it elsewhere saves a parsed description per leg (about 2 KiB).
    keep_remote: bool,
    /// An exchange completed since [`Negotiator::take_completed`] last looked.
    completed: bool,
}

impl Default for Negotiator {
    fn default() -> Self {
        Negotiator::new()
    }
}

impl Negotiator {
    /// A negotiator before any offer.
    pub fn new() -> Negotiator {
        Negotiator {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            serial: 0,
            state: NegotiationState::Stable,
            local: None,
            local_audio: None,
            remote: None,
            pending: None,
            keep_remote: true,
            completed: false,
        }
    }

    /// A negotiator that does not keep the peer's description once an exchange is done:
    /// [`remote`](Negotiator::remote) is always `None`. Offers and answers are checked
    /// exactly as with [`new`](Negotiator::new).
    pub fn without_remote() -> Negotiator {
        Negotiator { keep_remote: false, ..Negotiator::new() }
    }

    /// Where the exchange stands.
    pub fn state(&self) -> NegotiationState {
        self.state
    }

    /// We send an offer. `Err(OfferPending)` when an offer is already outstanding in
    /// either direction (RFC 3264 §4; RFC 6337 §3).
    pub fn local_offer(&mut self, offer: SessionDescription) -> Result<(), NegotiationError> {
        if self.state != NegotiationState::Stable {
            return Err(NegotiationError::OfferPending);
        }
        self.pending = Some(Box::new(offer));
        self.state = NegotiationState::LocalOffer;
        Ok(())
    }

    /// The peer's answer to our offer, checked against it with
    /// [`check_remote_answer`]; then offer and answer are in force. `Err(NoOffer)`
    /// without an offer of ours outstanding.
    pub fn remote_answer(&mut self, answer: SessionDescription) -> Result<(), NegotiationError> {
        let offer = match (&self.state, &self.pending) {
            (NegotiationState::LocalOffer, Some(offer)) => offer,
            _ => return Err(NegotiationError::NoOffer),
        };
        check_remote_answer(offer, &answer)?;
        let offer = self.pending.take();
        self.local_audio = offer.as_ref().and_then(|o| o.audio_address());
        self.local = offer.map(|o| o.to_bytes());
        self.remote = self.keep_remote.then(|| answer.to_bytes());
        self.state = NegotiationState::Stable;
        self.completed = true;
        Ok(())
    }

    /// The peer's offer. `Err(OfferPending)` when an offer is outstanding (ours: glare
    /// at the SDP level, the caller answers 491; the peer's: it answers 500). Returns
    /// the token to spend on [`local_answer`](Negotiator::local_answer).
    pub fn remote_offer(&mut self, offer: SessionDescription) -> Result<RemoteOffer, NegotiationError> {
        if self.state != NegotiationState::Stable {
            return Err(NegotiationError::OfferPending);
        }
        self.serial += 1;
        self.pending = Some(Box::new(offer));
        self.state = NegotiationState::RemoteOffer;
        Ok(RemoteOffer { negotiator: self.id, serial: self.serial })
    }

    /// Our answer to the peer's offer, checked against it with [`validate_answer`];
    /// then offer and answer are in force. On a mismatch the token is spent and the
    /// offer stays pending: reject it and [`rollback`](Negotiator::rollback).
    pub fn local_answer(&mut self, token: RemoteOffer, answer: SessionDescription) -> Result<(), NegotiationError> {
        self.local_answer_printed(token, answer).map(|_| ()).map_err(|b| b.0)
    }

    /// [`local_answer`](Negotiator::local_answer) that also gives the answer back as
    /// printed (what [`local_bytes`](Negotiator::local_bytes) now holds), so that a
    /// caller sending it need not print it again; on an error, the answer comes back
    /// with it (boxed: errors are rare, and the description is large).
    pub fn local_answer_printed(
        &mut self,
        token: RemoteOffer,
        answer: SessionDescription,
    ) -> Result<Bytes, Box<(NegotiationError, SessionDescription)>> {
        if token.negotiator != self.id || token.serial != self.serial {
            return Err(Box::new((NegotiationError::StaleToken, answer)));
        }
        let offer = match (&self.state, &self.pending) {
            (NegotiationState::RemoteOffer, Some(offer)) => offer,
            _ => return Err(Box::new((NegotiationError::StaleToken, answer))),
        };
        if let Err(e) = validate_answer(offer, &answer) {
            return Err(Box::new((e, answer)));
        }
        self.remote = self.pending.take().filter(|_| self.keep_remote).map(|o| o.to_bytes());
        self.local_audio = answer.audio_address();
        let printed = answer.to_bytes();
        self.local = Some(printed.clone());
        self.state = NegotiationState::Stable;
        self.completed = true;
        Ok(printed)
    }

    /// The offer exchange failed (rejected with 488/491, timed out): back to Stable;
    /// the descriptions in force stay (RFC 3264 §8: a rejected offer leaves the session
    /// as it was). An outstanding [`RemoteOffer`] token becomes stale.
    pub fn rollback(&mut self) {
        self.pending = None;
        self.state = NegotiationState::Stable;
        self.serial += 1;
    }

    /// Whether an offer/answer exchange completed (new descriptions in force, in either
    /// direction) since the last call; clears the flag. For an owner that reacts to new
    /// descriptions (a relay that renumbers payload types between legs) without
    /// comparing them.
    pub fn take_completed(&mut self) -> bool {
        std::mem::take(&mut self.completed)
    }

    /// When the peer's offer is outstanding, gives `answer` (the answer about to be sent
    /// to it) the offer's payload-type numbers for the formats both name
    /// ([`SessionDescription::keep_offer_numbers`], RFC 3264 §6.1); otherwise does
    /// nothing. Returns how many formats changed number.
    pub fn keep_offer_numbers(&self, answer: &mut SessionDescription) -> usize {
        match (self.state, &self.pending) {
            (NegotiationState::RemoteOffer, Some(offer)) => answer.keep_offer_numbers(offer),
            _ => 0,
        }
    }

    /// The last description we sent that is in force (parsed again from its printed
    /// form: equal to what was given, as printing and parsing round-trip).
    pub fn local(&self) -> Option<SessionDescription> {
        self.local.as_deref().and_then(|b| SessionDescription::parse(b).ok())
    }

    /// The last description the peer sent that is in force (as [`Negotiator::local`]).
    pub fn remote(&self) -> Option<SessionDescription> {
        self.remote.as_deref().and_then(|b| SessionDescription::parse(b).ok())
    }

    /// The audio address of [`Negotiator::local`], without parsing it.
    pub fn local_audio_address(&self) -> Option<SocketAddr> {
        self.local_audio
    }

    /// [`Negotiator::local`] as printed: to send again or compare, without parsing.
    pub fn local_bytes(&self) -> Option<&Bytes> {
        self.local.as_ref()
    }

    /// [`Negotiator::remote`] as printed.
    pub fn remote_bytes(&self) -> Option<&Bytes> {
        self.remote.as_ref()
    }

    /// The outstanding offer (ours or the peer's), if any.
    pub fn pending_offer(&self) -> Option<&SessionDescription> {
        self.pending.as_deref()
    }
}

/// Checks an answer we send against the offer (RFC 3264 §6, conservatively):
/// - the same number of `m=` lines, each of the same media type;
/// - a stream offered with port 0 is answered with port 0;
/// - an accepted stream (port not 0) lists at least one format, and only formats the
///   offer listed for that stream (a format the offer did not list is an error).
///
/// A rejected stream's formats are not checked.
pub fn validate_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<(), NegotiationError> {
    check(offer, answer, true)
}

/// Checks an answer the peer sent against our offer: as [`validate_answer`], except
/// that an accepted stream may list formats the offer did not, as long as it lists at
/// least one that it did (RFC 3264 §6.1: "The stream MAY indicate additional media
/// formats, not listed in the corresponding stream in the offer").
pub fn check_remote_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<(), NegotiationError> {
    check(offer, answer, false)
}

fn check(offer: &SessionDescription, answer: &SessionDescription, strict: bool) -> Result<(), NegotiationError> {
    let mismatch = |s: String| Err(NegotiationError::AnswerMismatch(s));
    if offer.media().len() != answer.media().len() {
        return mismatch(format!("{} m= lines in the answer, {} in the offer", answer.media().len(), offer.media().len()));
    }
    for (i, (o, a)) in offer.media().iter().zip(answer.media()).enumerate() {
        let n = i + 1;
        if !o.media_type().eq_ignore_ascii_case(a.media_type()) {
            return mismatch(format!("m= line {n} is {} in the answer, {} in the offer", a.media_type(), o.media_type()));
        }
        if !a.is_active() {
            continue;
        }
        if !o.is_active() {
            return mismatch(format!("m= line {n} was offered with port 0 but accepted"));
        }
        if a.formats().is_empty() {
            return mismatch(format!("m= line {n} is accepted without formats"));
        }
        let offered = |f: &String| o.formats().contains(f);
        if strict {
            if let Some(f) = a.formats().iter().find(|f| !offered(f)) {
                return mismatch(format!("m= line {n}: format {f} was not offered"));
            }
        } else if !a.formats().iter().any(offered) {
            return mismatch(format!("m= line {n}: no format in common with the offer"));
        }
    }
    Ok(())
}
