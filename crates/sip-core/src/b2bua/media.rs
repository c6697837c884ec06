//! The media-path mechanism: moving a call's media off our relay (direct media) and back
//! (re-anchoring), with the glare rules of RFC 3261 §14 (`../shared/design/DIRECT_MEDIA.md`,
//! "Moving the media", "Glare", "Re-anchoring"). The *decision* is the policy's; this is
//! what carries it out.
//!
//! Each leg has a goal ([`Goal`]): `Direct` means its SDP points at the other endpoint's
//! media address (what the other leg's own SDP gave), `Relay` at our relay address
//! (`media_local`). Where a leg points now is read from the description in force on it
//! (`Negotiator::local`), so a re-INVITE passed through from the phones that already put
//! the media where we want it leaves nothing to do. [`B2bua::media_pump`] runs after
//! every input and sends, per leg, at most one request while the two differ, when no
//! INVITE transaction or offer is in progress on that leg (§14.1), no 491 back-off is
//! running and no `outgoing` withholding holds it back.
//!
//! A call that never moves its media carries none of this: the state is boxed in
//! `Call::media` and `None` until [`B2bua::go_direct`] or [`B2bua::re_anchor`].

use super::{contact, send_ack, sent_by, B2bua, Call, CallError, CallEvent, CallId, Phase, Side, TxEntry, TxUse};
use crate::endpoint::Endpoint;
use crate::transaction::TransactionId;
use crate::Time;
use sdp::SessionDescription;
use sip_message::{Header, HeaderName, IdSource, Method, Request, Response};
use std::net::SocketAddr;
use std::time::Duration;

/// How a leg is asked to move its media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectMethod {
    /// re-INVITE (the default).
    #[default]
    Invite,
    /// UPDATE (RFC 3311), falling back to re-INVITE when the peer's Allow does not list it.
    Update,
}

/// What [`B2bua::go_direct`] is asked to do, per leg (index [`Side::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectOpts {
    /// re-INVITE or UPDATE on each leg.
    pub method: [DirectMethod; 2],
    /// `direct_media = outgoing` on this leg (meant for the inbound leg, A): the first
    /// direct-media request on it is withheld once, waiting for the peer server's own
    /// re-INVITE, which is then answered with the direct address. If none came within
    /// [`WITHHOLD_GRACE`], or one already came before the direct target was known, the
    /// request goes out after all (never strand a call).
    pub withhold: [bool; 2],
}

/// How long a withheld request waits for the peer's own re-INVITE.
pub const WITHHOLD_GRACE: Duration = Duration::from_secs(4);

/// Where a call's media flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaPath {
    /// Through our relay (on at least one leg): the relay must forward.
    #[default]
    Relayed,
    /// A request moving the media is in progress, queued or backing off.
    Moving,
    /// Both legs point at each other's endpoint: the relay may stop forwarding.
    Direct,
}

/// Per-call media-path counters, for [`super::CallInfo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// re-INVITEs and UPDATEs the mechanism sent (direct, re-point, re-anchor, retries).
    pub reinvites_sent: u32,
    /// 491s we sent on this call (to either leg's peer).
    pub glare_491_sent: u32,
    /// 491s we received to the mechanism's requests.
    pub glare_491_received: u32,
}

/// Where a leg's SDP should point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    Relay,
    Direct,
}

/// The `outgoing` withholding of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withhold {
    /// Not asked, or already used.
    No,
    /// Holding the first request back until then.
    Until(Time),
}

#[derive(Debug, Clone)]
struct LegCtl {
    goal: Goal,
    method: DirectMethod,
    /// Our request in flight on this leg.
    in_flight: Option<TransactionId>,
    /// The 491 back-off (§14.1): not before then.
    retry_at: Option<Time>,
    withhold: Withhold,
    /// A target this leg's peer refused (not 491): not asked again until a new command.
    refused: Option<SocketAddr>,
}

impl LegCtl {
    fn new() -> LegCtl {
        LegCtl { goal: Goal::Relay, method: DirectMethod::Invite, in_flight: None, retry_at: None, withhold: Withhold::No, refused: None }
    }
}

/// The boxed media-path state of a call that was ever asked to move its media.
#[derive(Debug, Clone)]
pub(crate) struct MediaCtl {
    legs: [LegCtl; 2],
    path: MediaPath,
    /// The last [`HISTORY`] path changes.
    pub history: Vec<(Time, MediaPath)>,
    /// A peer's re-INVITE waiting for our media request on the other leg to end.
    deferred: Option<(Side, TransactionId, Box<Request>)>,
}

/// How many path changes a call keeps.
pub const HISTORY: usize = 16;

impl MediaCtl {
    fn new() -> MediaCtl {
        MediaCtl { legs: [LegCtl::new(), LegCtl::new()], path: MediaPath::Relayed, history: Vec::new(), deferred: None }
    }

    pub fn path(&self) -> MediaPath {
        self.path
    }

    pub fn goal(&self, side: Side) -> Goal {
        self.legs[side.index()].goal
    }

    /// The earliest timer: a 491 retry or the end of a withholding.
    pub fn deadline(&self) -> Option<Time> {
        self.legs
            .iter()
            .flat_map(|l| {
                let w = match l.withhold {
                    Withhold::Until(t) => Some(t),
                    Withhold::No => None,
                };
                [l.retry_at, w]
            })
            .flatten()
            .min()
    }
}

impl Call {
    /// A re-INVITE from `side` would find the other leg busy with nothing but our own
    /// media-path request, and nothing on its own leg stands in the way.
    pub(crate) fn defer_reinvite(&self, side: Side) -> bool {
        let Some(ctl) = self.media.as_deref() else { return false };
        if ctl.deferred.is_some() {
            return false;
        }
        let Some(ours) = ctl.legs[side.other().index()].in_flight else { return false };
        let (this, other) = (self.leg(side), self.leg(side.other()));
        (other.client_invite == Some(ours) || other.client_update == Some(ours))
            && other.server_invite.is_none()
            && other.pending_2xx.is_none()
            && other.usable()
            && this.server_invite.is_none()
            && this.client_invite.is_none()
            && this.client_update.is_none()
            && this.pending_2xx.is_none()
            && this.nego_stable()
    }

    /// `direct_rtp_setup`: both goals at direct before the call is answered.
    pub(crate) fn direct_setup(&mut self) {
        for l in &mut self.ctl_mut().legs {
            l.goal = Goal::Direct;
        }
    }

    pub(crate) fn defer(&mut self, side: Side, tx: TransactionId, request: Request) {
        self.ctl_mut().deferred = Some((side, tx, Box::new(request)));
    }

    /// A deferred re-INVITE was cancelled.
    pub(crate) fn undefer(&mut self, tx: TransactionId) {
        if let Some(m) = self.media.as_deref_mut() {
            if m.deferred.as_ref().is_some_and(|d| d.1 == tx) {
                m.deferred = None;
            }
        }
    }

    /// Where `side`'s SDP points now (the description in force on it).
    fn points_at(&self, side: Side) -> Option<SocketAddr> {
        self.leg(side).nego.local_audio_address()
    }

    /// Where `side`'s SDP should point: `None` when there is nothing to aim at (the
    /// other endpoint is on hold with `c=0.0.0.0`, or its address is unknown).
    fn wanted(&self, side: Side) -> Option<SocketAddr> {
        let ctl = self.media.as_deref()?;
        match ctl.goal(side) {
            Goal::Relay => Some(self.leg(side).media_local),
            Goal::Direct => self.leg(side.other()).media_remote,
        }
    }

    /// Both legs answered, ACKed and not torn down.
    pub(super) fn confirmed(&self) -> bool {
        self.phase == Phase::Answered
            && self.a.usable()
            && self.b.usable()
            && self.a.final_done
            && self.b.final_done
            && self.a.pending_2xx.is_none()
            && self.b.pending_2xx.is_none()
            && self.a.ack_owed.is_none()
            && self.b.ack_owed.is_none()
    }

    /// Nothing is in progress on `side` that §14.1 or RFC 3264 §4 says a new offer must
    /// wait for.
    fn leg_idle(&self, side: Side) -> bool {
        let l = self.leg(side);
        l.usable() && !l.invite_in_progress() && l.client_update.is_none() && l.nego_stable() && l.ack_owed.is_none()
    }

    fn ctl_mut(&mut self) -> &mut MediaCtl {
        self.media.get_or_insert_with(|| Box::new(MediaCtl::new()))
    }

    fn compute_path(&self, now: Time) -> MediaPath {
        let Some(ctl) = self.media.as_deref() else { return MediaPath::Relayed };
        if matches!(self.phase, Phase::Routing | Phase::Calling) {
            // Only `direct_rtp_setup` has goals this early: nothing is moving yet, and
            // the path is whatever the answer makes it.
            return ctl.path;
        }
        let mut moving = false;
        let mut direct = 0;
        for side in [Side::A, Side::B] {
            let l = &ctl.legs[side.index()];
            let want = self.wanted(side);
            let at = self.points_at(side);
            let settled = want.is_none() || want == at || want == l.refused;
            if l.in_flight.is_some() || l.retry_at.is_some_and(|t| t > now) || !settled {
                moving = true;
            }
            if l.goal == Goal::Direct && at.is_some() && at != Some(self.leg(side).media_local) {
                direct += 1;
            }
        }
        if moving {
            MediaPath::Moving
        } else if direct == 2 {
            MediaPath::Direct
        } else {
            MediaPath::Relayed
        }
    }
}

impl B2bua {
    /// Moves a call's media off the relay: each leg gets one re-INVITE (or UPDATE, as
    /// `opts.method` asks and the peer allows) whose SDP points at the other endpoint's
    /// media address, with our `o=` at version + 1, the codecs both legs negotiated and
    /// that leg's payload-type numbers. `CallEvent::MediaPath` reports the way.
    ///
    /// Refused unless both legs are answered and ACKed and the call is not ending.
    pub fn go_direct(&mut self, now: Time, ep: &mut Endpoint, call: CallId, opts: DirectOpts) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoCall)?;
        if c.phase != Phase::Answered {
            return Err(CallError::WrongState(c.phase.name()));
        }
        if !c.confirmed() {
            return Err(CallError::WrongState("not confirmed on both legs"));
        }
        for side in [Side::A, Side::B] {
            let reinvited = c.leg(side).peer_reinvited;
            let ctl = c.ctl_mut();
            let l = &mut ctl.legs[side.index()];
            l.goal = Goal::Direct;
            l.method = opts.method[side.index()];
            l.refused = None;
            // The peer's own re-INVITE already came (answered with our relay): holding
            // ours back would strand the leg on the relay.
            l.withhold = if opts.withhold[side.index()] && !reinvited { Withhold::Until(now + WITHHOLD_GRACE) } else { Withhold::No };
            c.leg_mut(side).direct = true;
        }
        self.media_pump(now, ep, call);
        self.schedule(call);
        Ok(())
    }

    /// Brings the media of the legs `legs` (index [`Side::index`]) back to our relay: each
    /// of them that points elsewhere gets an offer pointing at its `media_local`. Legs not
    /// named keep their goal.
    pub fn re_anchor(&mut self, now: Time, ep: &mut Endpoint, call: CallId, legs: [bool; 2]) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoCall)?;
        if c.phase != Phase::Answered {
            return Err(CallError::WrongState(c.phase.name()));
        }
        for side in [Side::A, Side::B] {
            if !legs[side.index()] || c.leg(side).gone {
                continue;
            }
            let l = &mut c.ctl_mut().legs[side.index()];
            l.goal = Goal::Relay;
            l.refused = None;
            l.withhold = Withhold::No;
            c.leg_mut(side).direct = false;
        }
        self.media_pump(now, ep, call);
        self.schedule(call);
        Ok(())
    }

    /// The media-path state machine's one step: sends what is wanted and allowed, and
    /// reports a path change. Runs after every input touching the call.
    pub(crate) fn media_pump(&mut self, now: Time, ep: &mut Endpoint, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.media.is_none() {
            return;
        }
        if c.phase == Phase::Answered {
            let ready = c.media.as_deref().and_then(|m| m.deferred.as_ref()).is_some_and(|d| c.leg_idle(d.0.other()));
            if ready {
                if let Some((side, tx, request)) = c.media.as_deref_mut().and_then(|m| m.deferred.take()) {
                    c.leg_mut(side).server_invite = None;
                    self.reinvite(now, ep, call, side, tx, *request);
                }
            }
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        // Timers that are due are spent whatever happens next (a due deadline left in
        // place would fire again at once).
        // A 491 back-off is for a change still wanted (§14.1): once the crossing request
        // put the leg where we wanted it, there is nothing left to retry.
        let settled = [Side::A, Side::B].map(|s| c.wanted(s).is_some_and(|w| Some(w) == c.points_at(s)));
        if let Some(ctl) = c.media.as_deref_mut() {
            for (l, settled) in ctl.legs.iter_mut().zip(settled) {
                if l.retry_at.is_some_and(|t| t <= now) || (settled && l.in_flight.is_none()) {
                    l.retry_at = None;
                }
                if matches!(l.withhold, Withhold::Until(t) if t <= now) {
                    l.withhold = Withhold::No;
                }
            }
        }
        if c.phase == Phase::Answered && c.confirmed() {
            for side in [Side::A, Side::B] {
                let Some(c) = self.calls.get_mut(&call) else { return };
                let want = c.wanted(side);
                let Some(ctl) = c.media.as_deref() else { return };
                let l = &ctl.legs[side.index()];
                let blocked = l.in_flight.is_some() || l.retry_at.is_some() || l.withhold != Withhold::No;
                let Some(want) = want else { continue };
                if blocked || Some(want) == l.refused || Some(want) == c.points_at(side) {
                    continue;
                }
                if !c.leg_idle(side) {
                    // §14.1: queued; the next input that ends the transaction runs us again.
                    continue;
                }
                self.send_media_offer(now, ep, call, side, want);
            }
        }
        self.report_path(now, call);
    }

    fn report_path(&mut self, now: Time, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let path = c.compute_path(now);
        let Some(ctl) = c.media.as_deref_mut() else { return };
        if ctl.path == path {
            return;
        }
        if path == MediaPath::Direct {
            self.stats.direct_switches += 1;
        } else if path == MediaPath::Relayed
            && ctl.history.iter().rev().find(|(_, p)| *p != MediaPath::Moving).is_some_and(|(_, p)| *p == MediaPath::Direct)
        {
            // Back from direct (a refused move from relayed is no re-anchor).
            self.stats.re_anchors += 1;
        }
        ctl.path = path;
        if ctl.history.len() == HISTORY {
            ctl.history.remove(0);
        }
        ctl.history.push((now, path));
        tracing::info!(call = %call, ?path, "media path");
        self.events.push_back(CallEvent::MediaPath { call, path });
    }

    /// One offer on `side` pointing its media at `target`.
    fn send_media_offer(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, target: SocketAddr) {
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let method = c.media.as_deref().map_or(DirectMethod::Invite, |m| m.legs[side.index()].method);
        let use_update = method == DirectMethod::Update && c.leg(side).peer_allows_update;
        // Codecs: those in force on both legs, by encoding name; this leg's numbers.
        // Going direct, only those the other endpoint receives under the same number
        // (nobody translates phone to phone; the policy's rule 4 saw to it that one is
        // left); back to the relay, every codec in common (the relay translates).
        let other = c.leg(side.other());
        let other_names: Vec<String> =
            other.nego.local().map(|sd| sd.audio_codecs().into_iter().map(|k| k.name).collect()).unwrap_or_default();
        let other_receives = if target == c.leg(side).media_local {
            Vec::new()
        } else {
            other.nego.remote().map(|sd| sd.audio_codecs()).unwrap_or_default()
        };
        let leg = c.leg_mut(side);
        let Some(mut sd) = leg.nego.local() else {
            tracing::info!(call = %call, %side, "no SDP in force on the leg: its media cannot be moved");
            c.ctl_mut().legs[side.index()].refused = Some(target);
            return;
        };
        if !other_names.is_empty() {
            let names: Vec<&str> = other_names.iter().map(String::as_str).collect();
            let mut filtered = sd.clone();
            if filtered.filter_codecs(&names) > 0 {
                sd = filtered;
            }
        }
        if !other_receives.is_empty() {
            let mut same = sd.clone();
            if keep_same_numbers(&mut same, &other_receives) > 0 {
                sd = same;
            }
        }
        sd.set_audio_address(target.ip(), target.port());
        leg.origin.stamp(&mut sd);
        if leg.nego.local_offer(sd.clone()).is_err() {
            return;
        }
        let Some(d) = leg.dialog.as_mut() else { return };
        let dest = d.destination();
        let m = if use_update { Method::Update } else { Method::Invite };
        let mut b = d.request(m.clone(), sent_by(&cfg, dest.transport), contact(&cfg, dest.transport));
        b = b.header(Header::new(HeaderName::Allow, cfg.allow_value.clone()));
        if let Some(t) = leg.session.as_ref() {
            b = b.header(t.in_request().header());
        }
        b = b.body("application/sdp", sd.to_bytes());
        let Ok(req) = b.build(ep.ids()) else {
            leg.nego.rollback();
            return;
        };
        match ep.send_request(now, req, dest) {
            Ok(tx) => {
                if use_update {
                    leg.client_update = Some(tx);
                } else {
                    leg.client_invite = Some(tx);
                }
                c.txs.push(tx);
                c.counters.reinvites_sent += 1;
                self.stats.media_requests += 1;
                c.ctl_mut().legs[side.index()].in_flight = Some(tx);
                self.txs.insert(tx, TxEntry { call, side, usage: TxUse::Media { update: use_update } });
                tracing::debug!(call = %call, %side, method = %m, %target, "moving the media");
            }
            Err(e) => {
                c.leg_mut(side).nego.rollback();
                tracing::warn!(call = %call, %side, error = %e, "cannot send a media-path request");
            }
        }
    }

    /// The answer to one of our media-path requests.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_media_response(
        &mut self,
        now: Time,
        ep: &mut Endpoint,
        call: CallId,
        side: Side,
        tx: TransactionId,
        update: bool,
        response: Response,
    ) {
        let status = response.status();
        if status < 200 {
            return;
        }
        let cfg = self.config.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let seq = response.cseq().seq;
        let ours = c.media.as_deref().is_some_and(|m| m.legs[side.index()].in_flight == Some(tx));
        if !ours {
            if !update && status < 300 {
                // A retransmitted 2xx: the ACK again (§13.2.2.4).
                if let Some(a) = c.last_ack[side.index()].as_ref().filter(|a| a.seq == seq) {
                    ep.send_stateless(a.flow, a.wire.clone());
                }
            }
            return;
        }
        c.ctl_mut().legs[side.index()].in_flight = None;
        let leg = c.leg_mut(side);
        if update {
            leg.client_update = None;
        } else {
            leg.client_invite = None;
        }
        if status < 300 {
            if let Some(d) = leg.dialog.as_mut() {
                d.receive_refresh_response(&response);
            }
            if let Some(t) = leg.session.as_mut() {
                t.refreshed(now);
            }
            let answered = match super::sdp_of(response.content_type(), response.body()) {
                Some(Ok(sd)) => {
                    if let Err(e) = leg.nego.remote_answer(sd.clone()) {
                        tracing::info!(call = %call, %side, error = %e, "the answer does not match our media offer");
                        leg.nego.rollback();
                        false
                    } else {
                        if leg.learn_remote(&sd) {
                            // The endpoint moved: the other leg is re-pointed by the pump.
                            self.events.push_back(CallEvent::Media { call, side, remote: leg.media_remote });
                        }
                        true
                    }
                }
                _ => {
                    tracing::info!(call = %call, %side, "no answer SDP in the 2xx to our media offer");
                    leg.nego.rollback();
                    false
                }
            };
            if !update {
                send_ack(now, ep, &cfg, c, side, seq, None);
            }
            if !answered {
                // As a refusal: asking again would get the same, once per round trip.
                self.media_refused(call, side, status);
            }
            return;
        }
        leg.nego.rollback();
        if status == 491 {
            // §14.1: ACKed by the transaction layer; retry after 2.1–4 s in 10 ms steps on
            // the dialog whose Call-ID we own (B), 0–2 s on the other (A).
            c.counters.glare_491_received += 1;
            self.stats.glare_491_received += 1;
            let r = self.rng.next_u64();
            let wait = match side {
                Side::B => 2100 + (r % 191) * 10,
                Side::A => (r % 201) * 10,
            };
            let c = self.calls.get_mut(&call).expect("looked up above");
            c.ctl_mut().legs[side.index()].retry_at = Some(now + Duration::from_millis(wait));
            tracing::debug!(call = %call, %side, wait_ms = wait, "491 to our media request: retrying");
            return;
        }
        if matches!(status, 408 | 481) {
            self.critical(now, ep, call, side, if update { Method::Update } else { Method::Invite }, status);
            return;
        }
        self.media_refused(call, side, status);
    }

    /// No answer at all to a media-path request: "no reply to critical request".
    pub(crate) fn on_media_failed(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, update: bool, status: u16) {
        if let Some(c) = self.calls.get_mut(&call) {
            let leg = c.leg_mut(side);
            if update {
                leg.client_update = None;
            } else {
                leg.client_invite = None;
            }
            leg.nego.rollback();
            if let Some(m) = c.media.as_deref_mut() {
                m.legs[side.index()].in_flight = None;
            }
        }
        self.critical(now, ep, call, side, if update { Method::Update } else { Method::Invite }, status);
    }

    /// A leg refused a move (4xx–6xx other than 491, 408, 481): going direct is given up
    /// and every leg goes back to the relay; a refused re-anchor is not asked again.
    fn media_refused(&mut self, call: CallId, side: Side, status: u16) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let target = c.wanted(side);
        let direct = c.media.as_deref().is_some_and(|m| m.goal(side) == Goal::Direct);
        tracing::info!(call = %call, %side, status, "media-path request refused");
        let ctl = c.ctl_mut();
        ctl.legs[side.index()].refused = target;
        if direct {
            for s in [Side::A, Side::B] {
                ctl.legs[s.index()].goal = Goal::Relay;
                ctl.legs[s.index()].withhold = Withhold::No;
            }
            c.a.direct = false;
            c.b.direct = false;
            // Back to the relay means the relay address, which this leg still points at.
            c.ctl_mut().legs[side.index()].refused = None;
        }
    }
}

/// Removes from `sd`'s active audio stream every format whose codec `theirs` does not
/// list under the same payload-type number (name case-insensitive, clock rate); returns
/// how many voice codecs are left (telephone-event and CN not counted).
pub(super) fn keep_same_numbers(sd: &mut SessionDescription, theirs: &[sdp::Codec]) -> usize {
    let Some(media) = sd.active_audio_index().and_then(|i| sd.media_mut().get_mut(i)) else { return 0 };
    let same = |c: &sdp::Codec| {
        theirs.iter().any(|t| t.payload_type == c.payload_type && t.name.eq_ignore_ascii_case(&c.name) && t.clock_rate == c.clock_rate)
    };
    let drop: Vec<String> = media
        .formats()
        .iter()
        .filter(|f| !f.parse::<u8>().ok().and_then(|pt| media.rtpmap(pt)).is_some_and(|c| same(&c)))
        .cloned()
        .collect();
    for f in &drop {
        media.remove_format(f);
    }
    media.codecs().iter().filter(|c| crate::media_policy::is_voice(c)).count()
}
