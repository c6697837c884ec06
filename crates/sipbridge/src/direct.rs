//! The direct-media policy of `[[endpoint]]`s as [`sip_core::media_policy`] reads it:
//! `direct_media`, `direct_media_permit`/`deny`, `dtmf_mode`, and the facts of a call the
//! binary knows (relay observations, `[media] verify_media`).

use crate::calls::{Calls, LegCounters, MediaBackend};
use crate::config::{self, DirectMedia, DirectMediaMethod, DtmfMode};
use sip_core::b2bua::{CallId, DirectMethod, DirectOpts, MediaPath, Phase, Side};
use sip_core::media_policy::{self, CallFacts, Decision, DirectMode, LegFacts, LegPolicy};
use sip_core::{Endpoint, Time};
use std::cmp::Reverse;
use std::time::Duration;

/// How often a call whose legs are answered but not yet ACKed is looked at again.
const CONFIRM_POLL: Duration = Duration::from_millis(100);
/// Give up waiting for the ACKs after this (the call layer tears such a call down).
const CONFIRM_LIMIT: Duration = Duration::from_secs(40);

/// The direct-media state the policy keeps per call.
#[derive(Debug, Clone)]
pub struct DirectCall {
    /// The `[[endpoint]]` indexes of the inbound and outbound legs.
    pub legs: [usize; 2],
    /// The last decision, in words ("direct", "relayed: …", "waiting: …").
    pub reason: String,
    /// Its metric label when it blocked, for `sipbridge_direct_media_blocked_total`.
    pub label: Option<&'static str>,
    /// Set up direct (`direct_rtp_setup`): the relay never hears the RTP, so
    /// `verify_media` does not apply.
    pub setup: bool,
}

/// Counters of the policy, for metrics.
#[derive(Debug, Clone, Default)]
pub struct DirectStats {
    /// Decisions that kept a call relayed, by blocker label (counted when the reason
    /// changes, so once per call and blocker).
    pub blocked: std::collections::BTreeMap<&'static str, u64>,
}

/// `[[endpoint]]`'s direct-media settings for the decision.
pub fn leg_policy(e: &config::Endpoint) -> LegPolicy {
    let nets = |v: &[config::Cidr]| v.iter().map(config::Cidr::net).collect();
    LegPolicy {
        name: e.name.clone(),
        mode: match e.direct_media {
            DirectMedia::Yes => DirectMode::Yes,
            DirectMedia::No => DirectMode::No,
            DirectMedia::Nonat => DirectMode::NoNat,
            DirectMedia::Outgoing => DirectMode::Outgoing,
        },
        permit: nets(&e.direct_media_permit),
        deny: nets(&e.direct_media_deny),
        // SIP INFO carries DTMF in signalling, which still passes through us.
        dtmf_rtp: e.dtmf_mode != DtmfMode::Info,
    }
}

/// Whether the relay has heard the leg's endpoint, and from where.
pub fn heard(c: &LegCounters) -> (bool, Option<std::net::SocketAddr>) {
    (c.packets_in > 0, c.latched)
}

impl<M: MediaBackend> Calls<M> {
    /// A routed call between endpoints `legs`: its media starts relayed, or with
    /// `setup` phone to phone (`direct_rtp_setup`).
    pub(crate) fn direct_begin(&mut self, call: CallId, legs: [usize; 2], setup: bool) {
        let reason = if setup {
            "direct: set up phone to phone (direct_rtp_setup), not answered yet"
        } else {
            "relayed: the call is not answered yet"
        };
        self.direct.insert(call, DirectCall { legs, reason: reason.to_owned(), label: None, setup });
    }

    /// `direct_rtp_setup` on both endpoints, and what the policy can check before the
    /// answer allows direct media ([`media_policy::decide_at_setup`]); logged either way.
    pub(crate) fn direct_setup_allowed(
        &self,
        call: CallId,
        legs: [usize; 2],
        invite: &sip_core::sip_message::Request,
        caller_nat: Option<sip_core::nat::NatEvidence>,
        callee_nat: Option<sip_core::nat::NatEvidence>,
    ) -> bool {
        let endpoints = legs.map(|i| &self.config.endpoints[i]);
        if !endpoints.iter().all(|e| e.direct_rtp_setup) {
            return false;
        }
        let sdp = (!invite.body().is_empty()).then(|| sip_core::sdp::SessionDescription::parse(invite.body()).ok()).flatten();
        let caller = LegFacts { signalling_nat: caller_nat, sdp, ..LegFacts::default() };
        let facts = CallFacts {
            recording: false,
            dtmf_feature_armed: !self.config.features.record_toggle.is_empty(),
            verify_media: false,
            ..CallFacts::default()
        };
        let decision = media_policy::decide_at_setup(&endpoints.map(leg_policy), &caller, callee_nat, &facts);
        tracing::info!(%call, media = %decision, "direct_rtp_setup");
        decision.is_direct()
    }

    /// Look at `call` again at `at`. Every entry is decided at its time, so a call with
    /// several entries is decided several times: harmless, as a decision with nothing
    /// new repeats the last (no request, no counter moves), and the entries of a call that
    /// has ended cost a map lookup.
    pub(crate) fn direct_check_at(&mut self, call: CallId, at: Time) {
        self.direct_due.push(Reverse((at, call)));
    }

    /// The next time a call's media path must be decided again.
    pub(crate) fn direct_timeout(&self) -> Option<Time> {
        self.direct_due.peek().map(|Reverse((t, _))| *t)
    }

    /// Decides again for the calls whose time has come.
    pub(crate) fn direct_due_now(&mut self, now: Time, ep: &mut Endpoint) {
        while let Some(&Reverse((t, call))) = self.direct_due.peek() {
            if t > now {
                break;
            }
            self.direct_due.pop();
            self.decide_media(now, ep, call);
        }
    }

    /// The media-path decision for one call (DIRECT_MEDIA.md, "When to go direct"), and
    /// the move it asks for.
    pub fn decide_media(&mut self, now: Time, ep: &mut Endpoint, call: CallId) {
        let Some(dc) = self.direct.get(&call) else { return };
        let Some(info) = self.b2bua.call(call) else { return };
        if info.phase != Phase::Answered {
            return;
        }
        let since_answer = info.answered_at.map_or(Duration::ZERO, |t| now - t);
        let endpoints = dc.legs.map(|i| &self.config.endpoints[i]);
        if let Some(e) = endpoints.iter().find(|e| e.direct_media == DirectMedia::No) {
            // Rule 1 needs no facts, and a call that never moved needs no re-anchor: no
            // polling for the ACKs, no relay statistics, no SDP copies.
            if info.media_path == MediaPath::Relayed {
                let decision = Decision::Relayed(media_policy::Blocker::DirectMediaNo { name: e.name.clone() });
                self.note_decision(call, &decision);
                return;
            }
        }
        if !self.b2bua.confirmed(call) {
            // Answered but an ACK is still owed: go_direct would be refused.
            if since_answer < CONFIRM_LIMIT {
                self.direct_check_at(call, now + CONFIRM_POLL);
            }
            return;
        }
        let method = |e: &config::Endpoint| match e.direct_media_method {
            DirectMediaMethod::Invite => DirectMethod::Invite,
            DirectMediaMethod::Update => DirectMethod::Update,
        };
        let policy = endpoints.map(leg_policy);
        // `outgoing`: withhold the first request on the dialog we did not create (the
        // inbound leg), so a peer server's own re-INVITE wins.
        let opts = DirectOpts { method: endpoints.map(method), withhold: [endpoints[0].direct_media == DirectMedia::Outgoing, false] };
        let stats = self.media.leg_stats(call);
        let legs = [Side::A, Side::B].map(|side| {
            let i = side.index();
            let (heard, rtp_source) = stats.map_or((false, None), |s| heard(&s[i]));
            LegFacts { answered: true, signalling_nat: info.nat[i], sdp: self.b2bua.remote_sdp(call, side), rtp_source, heard }
        });
        let armed = !self.config.features.record_toggle.is_empty();
        let facts = CallFacts {
            recording: self.recording.contains(&call),
            dtmf_feature_armed: armed,
            verify_media: self.config.media.verify_media && !dc.setup,
            since_answer,
            ..CallFacts::default()
        };
        let decision = media_policy::decide(&policy, &legs, &facts);
        if let Decision::Wait(_) = decision {
            if let Some(left) = facts.verify_media_remaining() {
                self.direct_check_at(call, now + left);
            }
        }
        self.note_decision(call, &decision);
        match decision {
            Decision::Direct if info.media_path == MediaPath::Relayed => {
                if let Err(e) = self.b2bua.go_direct(now, ep, call, opts) {
                    tracing::debug!(%call, error = %e, "cannot go direct now");
                }
            }
            Decision::Relayed(_) if info.media_path != MediaPath::Relayed => {
                if let Err(e) = self.b2bua.re_anchor(now, ep, call, [true, true]) {
                    tracing::debug!(%call, error = %e, "cannot re-anchor now");
                }
            }
            _ => {}
        }
    }

    /// Records a decision's words when they change: log at info, the blocker counter, the
    /// API's reason history.
    fn note_decision(&mut self, call: CallId, decision: &Decision) {
        let Some(dc) = self.direct.get_mut(&call) else { return };
        let words = decision.to_string();
        if dc.reason == words {
            return;
        }
        let label = decision.blocker().map(|b| b.metric_label());
        tracing::info!(%call, media = %words, "media path decision");
        if let (Some(l), Decision::Relayed(_)) = (label, decision) {
            *self.direct_stats.blocked.entry(l).or_default() += 1;
        }
        dc.reason = words.clone();
        dc.label = label;
        self.media_reasons.push((call, words));
    }

    /// A digit the relay heard from `side`'s endpoint: the feature codes
    /// (`[features] record_toggle`) match against the last digits of the call (reset
    /// after 3 s without one).
    pub fn on_dtmf(&mut self, now: Time, ep: &mut Endpoint, call: CallId, side: Side, digit: char) {
        let code = self.config.features.record_toggle.clone();
        if code.is_empty() {
            return;
        }
        let buf = self.dtmf.entry(call).or_insert_with(|| (now, String::new()));
        if now - buf.0 > Duration::from_secs(3) {
            buf.1.clear();
        }
        buf.0 = now;
        buf.1.push(digit);
        if buf.1.len() > 8 {
            buf.1.remove(0);
        }
        if !buf.1.ends_with(&code) {
            return;
        }
        buf.1.clear();
        tracing::info!(%call, %side, %code, "feature code: toggle recording");
        if self.recording.contains(&call) {
            self.stop_recording(now, call);
        } else if let Err(e) = self.start_recording(now, call) {
            tracing::warn!(%call, error = %e, "cannot record");
        }
        self.direct_due_now(now, ep);
    }

    /// The media moved: forward on the relay only while it carries the media.
    pub(crate) fn media_path_changed(&mut self, call: CallId, path: MediaPath) {
        tracing::info!(%call, ?path, "media path");
        self.media.set_forwarding(call, path != MediaPath::Direct);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_maps_to_the_decision_inputs() {
        let c = config::Config::from_toml(
            "[[endpoint]]\nname = \"a\"\nhost = \"127.0.0.1:5062\"\ndirect_media = \"nonat\"\ndirect_media_deny = [\"10.0.0.0/8\"]\ndtmf_mode = \"info\"\n\
             [[endpoint]]\nname = \"b\"\nhost = \"127.0.0.1:5064\"\ndirectmedia = \"update,nonat\"\n",
            "t",
        )
        .unwrap();
        let a = leg_policy(&c.endpoints[0]);
        assert_eq!(a.mode, DirectMode::NoNat);
        assert!(a.deny[0].contains("10.1.2.3".parse().unwrap()));
        assert!(a.permit.is_empty());
        assert!(!a.dtmf_rtp);
        let b = leg_policy(&c.endpoints[1]);
        assert_eq!(b.mode, DirectMode::NoNat);
        assert!(b.dtmf_rtp);
    }
}
