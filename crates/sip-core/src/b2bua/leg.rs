//! One call leg: a dialog (or, on the outbound leg before the 2xx, the forked early
//! dialogs), its INVITE usage (2xx retransmission until ACK, §13.3.1.4), its offer/answer
//! state and where its media goes.

use crate::dialog::Dialog;
use crate::transaction::TransactionId;
use crate::transport::Flow;
use crate::Time;
use bytes::Bytes;
use sdp::{LocalOrigin, Negotiator, RemoteOffer, SessionDescription};
use sip_message::{Request, Response};
use std::net::SocketAddr;
use std::time::Duration;

/// A call's two legs: `A` is the inbound leg (we are its UAS and the caller owns its
/// Call-ID), `B` the outbound one (we are its UAC and own its Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The inbound leg.
    A,
    /// The outbound leg.
    B,
}

impl Side {
    /// The other leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// `0` for A, `1` for B (media relay leg index).
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::A => "inbound",
            Side::B => "outbound",
        })
    }
}

/// A 2xx to an INVITE we sent on this leg and keep sending until the ACK (§13.3.1.4:
/// T1, doubling up to T2; give up after 64·T1 and end the dialog with BYE).
#[derive(Debug, Clone)]
pub(crate) struct Pending2xx {
    pub tx: TransactionId,
    pub response: Response,
    pub reliable: bool,
    pub next_at: Time,
    pub interval: Duration,
    pub give_up_at: Time,
    /// The INVITE's CSeq number, which the ACK carries.
    pub seq: u32,
}

/// What the outbound INVITE takes from the caller's (§8.1.1 with topology hiding): the
/// From user and display name, and Max-Forwards.
#[derive(Debug, Clone)]
pub(crate) struct CallerInvite {
    /// The From URI's user, `anonymous` without one.
    pub from_user: String,
    pub from_display: Option<String>,
    pub max_forwards: Option<u32>,
}

impl CallerInvite {
    pub fn of(request: &Request) -> CallerInvite {
        CallerInvite {
            from_user: request
                .from()
                .uri()
                .as_sip()
                .and_then(|u| u.user())
                .map(|u| u.as_str().to_owned())
                .unwrap_or_else(|| "anonymous".into()),
            from_display: request.from().display_name_str().map(str::to_owned),
            max_forwards: request.max_forwards(),
        }
    }
}

/// An ACK this leg owes its peer until the other leg's ACK brings the SDP answer (an
/// offer-less INVITE: the 2xx carried the offer, §13.2.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckOwed {
    pub seq: u32,
}

#[derive(Debug)]
pub(crate) struct Leg {
    /// The dialog in force: A's from the first response we sent; B's from the 2xx.
    pub dialog: Option<Dialog>,
    /// B before the 2xx: one early dialog per To tag of the 18x's (forking, §12.1.2).
    /// Replaced by an empty `Vec` once the call is answered or fails, not cleared: its
    /// room (a dialog is 640 B) would stay for the call's whole life.
    pub early: Vec<Dialog>,
    /// The flow requests to this leg go over before a dialog exists (B: the flow of the
    /// INVITE whose 2xx won).
    pub flow: Flow,
    /// A: what our outbound INVITE takes from the caller's, until its final response.
    /// The INVITEs themselves are kept by the transaction layer for as long as their
    /// transactions live (`respond_a`, `b_dialog` read them there). `None` on B.
    pub invite: Option<Box<CallerInvite>>,
    /// The initial INVITE's transaction (server on A, client on B).
    pub invite_tx: Option<TransactionId>,
    /// A: our To tag.
    pub local_tag: String,
    /// A: a final response has been sent; B: one has been received.
    pub final_done: bool,
    /// A 2xx on this leg waiting for its ACK.
    pub pending_2xx: Option<Box<Pending2xx>>,
    /// Tear the leg down with BYE as soon as the ACK arrives (§15: not before).
    pub bye_after_ack: bool,
    pub ack_owed: Option<AckOwed>,
    /// A re-INVITE we sent on this leg and its transaction, while it is pending.
    pub client_invite: Option<TransactionId>,
    /// A re-INVITE received on this leg and not yet answered.
    pub server_invite: Option<TransactionId>,
    /// An UPDATE with an offer we sent, pending (RFC 3311 §5.1).
    pub client_update: Option<TransactionId>,
    pub origin: LocalOrigin,
    pub nego: Negotiator,
    pub remote_offer: Option<RemoteOffer>,
    /// Our relay address for this leg (what its SDP points at).
    pub media_local: SocketAddr,
    /// The address its SDP says it receives at.
    pub media_remote: Option<SocketAddr>,
    /// Codec names this leg may use; empty = anything.
    pub codecs: Vec<String>,
    /// The BYE has been sent or received: no request goes out on this leg any more.
    pub gone: bool,
    /// Methods the peer listed in Allow.
    pub peer_allows_update: bool,
    /// A: the caller's `Session-Expires` and whether it supports `timer`.
    pub session_asked: Option<(super::SessionExpires, bool)>,
    /// The running session timer (RFC 4028), if this leg has one.
    pub session: Option<super::session_timer::SessionTimer>,
    /// Direct media on this leg: what we send it points at the other endpoint's own
    /// address, not at our relay (`media.rs`).
    pub direct: bool,
    /// The peer sent an offer of its own (re-INVITE or UPDATE) while the leg was relayed.
    pub peer_reinvited: bool,
}

impl Leg {
    pub fn new(flow: Flow, media_local: SocketAddr, origin: LocalOrigin) -> Leg {
        Leg {
            dialog: None,
            early: Vec::new(),
            flow,
            invite: None,
            invite_tx: None,
            local_tag: String::new(),
            final_done: false,
            pending_2xx: None,
            bye_after_ack: false,
            ack_owed: None,
            client_invite: None,
            server_invite: None,
            client_update: None,
            origin,
            // The peer's SDP in force is kept: the direct-media decision reads its
            // codecs, ptime, crypto and address (about 1 KiB a leg; docs/BENCHMARKS.md).
            nego: Negotiator::new(),
            remote_offer: None,
            media_local,
            media_remote: None,
            codecs: Vec::new(),
            gone: false,
            peer_allows_update: false,
            session_asked: None,
            session: None,
            direct: false,
            peer_reinvited: false,
        }
    }

    /// An INVITE transaction is in progress on this leg in either direction, or our 2xx
    /// waits for its ACK: §14.1 forbids starting another one.
    pub fn invite_in_progress(&self) -> bool {
        self.client_invite.is_some() || self.server_invite.is_some() || self.pending_2xx.is_some() || !self.final_done
    }

    /// Answered and not torn down: requests may be sent on its dialog.
    pub fn usable(&self) -> bool {
        self.dialog.is_some() && !self.gone
    }

    /// The SDP in `body`, rewritten for this leg: only the codecs it may use, our relay
    /// address (or, with direct media on this leg, the other endpoint's own address as
    /// its SDP gives it), our origin with the version rule of RFC 3264 §8. `None` when
    /// the body does not parse or no codec is left (the caller answers 488).
    pub fn rewrite(&mut self, sd: &SessionDescription) -> Option<SessionDescription> {
        self.rewrite_owned(sd.clone())
    }

    /// [`Leg::rewrite`] of a description the caller no longer needs, rewritten in place
    /// instead of copied (a parsed description is a few dozen allocations).
    pub fn rewrite_owned(&mut self, mut out: SessionDescription) -> Option<SessionDescription> {
        // What the direct-media branch reads of the description as it came.
        let (given_codecs, given_address) = if self.direct { (out.audio_codecs(), out.audio_address()) } else { (Vec::new(), None) };
        if !self.codecs.is_empty() {
            let allowed: Vec<&str> = self.codecs.iter().map(String::as_str).collect();
            if out.filter_codecs(&allowed) == 0 {
                return None;
            }
        }
        // An answer to this leg keeps the numbers of its offer (RFC 3264 §6.1).
        self.nego.keep_offer_numbers(&mut out);
        if self.direct {
            // Phone to phone nobody translates: only the codecs that kept the number the
            // other endpoint gave them (when one voice codec is left; otherwise the
            // policy's rule 4 brings the call back to the relay).
            let mut same = out.clone();
            if super::media::keep_same_numbers(&mut same, &given_codecs) > 0 {
                out = same;
            }
        }
        let to = if self.direct { given_address } else { Some(self.media_local) };
        if let Some(to) = to {
            out.set_audio_address(to.ip(), to.port());
        }
        self.origin.stamp(&mut out);
        Some(out)
    }

    /// Remembers the media address the leg's own SDP gave; `true` when it changed.
    pub fn learn_remote(&mut self, sd: &SessionDescription) -> bool {
        let addr = sd.audio_address().filter(|a| !a.ip().is_unspecified() && a.port() != 0);
        let changed = addr != self.media_remote;
        self.media_remote = addr;
        changed
    }
}

/// The SDP a message carries, if its body is SDP (or untyped) and parses.
pub(crate) fn sdp_of(content_type: Option<&sip_message::MediaType>, body: &Bytes) -> Option<Result<SessionDescription, ()>> {
    if body.is_empty() {
        return None;
    }
    if let Some(ct) = content_type {
        if !ct.is("application", "sdp") {
            return None;
        }
    }
    Some(SessionDescription::parse(body).map_err(|_| ()))
}
