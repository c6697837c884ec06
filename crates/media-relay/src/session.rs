//! One call's media: two legs, latching, counters and the inactivity deadline.

use crate::codec::{Codec, PayloadMap, PayloadTranslation};
use crate::dtmf::DtmfDetector;
use crate::recorder::{Recorder, RecorderStats};
use crate::rtp::{self, RtpHeader};
use crate::seq::{SeqState, Update};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// A leg of a call. `A` (index 0) is the inbound leg, the dialog someone created toward
/// us; `B` (index 1) the outbound leg we created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// The inbound leg (index 0).
    A = 0,
    /// The outbound leg (index 1).
    B = 1,
}

impl Leg {
    /// Both legs, in index order.
    pub const BOTH: [Leg; 2] = [Leg::A, Leg::B];

    /// 0 for [`Leg::A`], 1 for [`Leg::B`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The leg at `index` (0 or 1); `None` for anything else.
    pub fn from_index(index: usize) -> Option<Leg> {
        match index {
            0 => Some(Leg::A),
            1 => Some(Leg::B),
            _ => None,
        }
    }

    /// The other leg: where a packet received on this one goes.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// How many consecutive RTP packets of one source and SSRC a `nat` leg needs before it
/// latches to a source that is not its SDP address.
pub const LATCH_PACKETS: u8 = 2;

/// Per-call relay settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// `[media] timeout_s`: how long the call may go without any RTP (from either leg)
    /// before [`RelayEvent::Inactive`]. `Duration::ZERO` = never.
    pub timeout: Duration,
    /// Per leg (index = [`Leg::index`]): symmetric RTP (the endpoint's `nat = yes`, or
    /// `auto` with NAT detected). Such a leg latches to the first source that sends
    /// [`LATCH_PACKETS`] consecutive valid RTP packets, even when it differs from the SDP,
    /// and sends that leg's media back to it.
    pub nat: [bool; 2],
    /// `[media] rtp_keepalive_s` (Asterisk's `rtpkeepalive`): when nothing has been sent
    /// to a leg for this long while the relay forwards, send it one comfort-noise packet
    /// ([`Keepalive`]) so a NAT binding in front of it stays open (RFC 6263 §4.2).
    /// `Duration::ZERO` = never.
    pub keepalive: Duration,
}

impl Default for SessionConfig {
    /// 60 s timeout (CONFIG.md `[media] timeout_s`), no `nat` leg, no keep-alive.
    fn default() -> Self {
        SessionConfig { timeout: Duration::from_secs(60), nat: [false; 2], keepalive: Duration::ZERO }
    }
}

/// An RTP keep-alive to send out of `leg`'s RTP socket to `to` (from
/// [`Session::poll_keepalive`]): one RFC 3389 comfort-noise packet, noise level 127
/// (-127 dBov, silence), under the leg's CN payload type (13 unless its SDP names
/// another), with an SSRC of its own and its own sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// The leg whose RTP socket sends.
    pub leg: Leg,
    /// Where that leg's media goes.
    pub to: SocketAddr,
    /// The packet: a 12-byte RTP header and the one-byte CN payload.
    pub packet: [u8; 13],
}

/// What to do with a packet: send it out of `leg`'s local socket (the RTP one, or the RTCP
/// one when `rtcp`) to `to`. The bytes are the received ones, unchanged but for the RTP
/// payload type when `payload_type` says so ([`Forward::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The leg whose local socket sends: the other leg than the one it arrived on.
    pub leg: Leg,
    /// RTCP socket (port + 1) rather than RTP: the same kind it arrived on.
    pub rtcp: bool,
    /// The destination: the leg's latched source, else its SDP address.
    pub to: SocketAddr,
    /// `Some(pt)`: the packet is RTP whose payload type must become `pt` on the way out
    /// (the legs number this codec differently, [`Session::set_payload_translation`]);
    /// `None`: send the bytes as they came (RTCP, anything not RTP, a number that is the
    /// same on both legs).
    pub payload_type: Option<u8>,
}

impl Forward {
    /// Rewrites `data` (the packet [`Session::handle_packet`] was given) as this forward
    /// says: the payload type of its RTP header ([`rtp::set_payload_type`], the marker
    /// bit kept). Does nothing when `payload_type` is `None`. In place, no allocation.
    pub fn apply(&self, data: &mut [u8]) {
        if let Some(pt) = self.payload_type {
            rtp::set_payload_type(data, pt);
        }
    }
}

/// Something the owner of a [`Session`] should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// No RTP from either leg for [`SessionConfig::timeout`] (from
    /// [`Session::handle_timeout`]). Reported once; any RTP, or
    /// [`Session::restart_timeout`], arms the deadline again.
    Inactive,
    /// A leg's RTP destination is now `source`, learned from its packets (from
    /// [`Session::poll_event`]).
    Latched {
        /// The leg that latched.
        leg: Leg,
        /// The source address its RTP comes from, where its media now goes.
        source: SocketAddr,
    },
    /// RTP has now arrived from both legs (DIRECT_MEDIA.md rule 9; from
    /// [`Session::poll_event`], once per session).
    HeardBoth,
    /// The leg's endpoint pressed a key: an RFC 4733 telephone event ended (from
    /// [`Session::poll_event`], once per event; see [`DtmfDetector`]).
    Dtmf {
        /// The leg whose endpoint sent it.
        leg: Leg,
        /// '0'–'9', '*', '#', 'A'–'D'.
        digit: char,
        /// How long the key was held.
        duration: Duration,
    },
}

/// Counters and observed state of one leg. `in` is what the leg's endpoint sent us,
/// `out` what we handed out to be sent to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Packets accepted from the leg (RTP and RTCP, forwarded or not).
    pub packets_in: u64,
    /// Bytes (UDP payload) of those packets.
    pub bytes_in: u64,
    /// Of `packets_in`, valid RTP on the RTP socket.
    pub rtp_packets_in: u64,
    /// Of `packets_in`, packets on the RTCP socket.
    pub rtcp_packets_in: u64,
    /// Packets forwarded to the leg (as [`Forward`]s naming it).
    pub packets_out: u64,
    /// Bytes of those packets.
    pub bytes_out: u64,
    /// Packets that arrived on the leg's sockets and were refused: unknown source, or
    /// not RTP/RTCP where a latch needed it.
    pub dropped: u64,
    /// RTP packets lost, from sequence gaps (RFC 3550 A.1/A.3, wraparound and reordering
    /// handled; as in A.3 a duplicate counts as received and offsets a loss, never below
    /// zero), summed over every SSRC the leg has used: an SSRC change or a sender restart
    /// starts a new count and keeps the old one.
    pub lost: u64,
    /// When the last packet was accepted from the leg.
    pub last_packet_at: Option<Duration>,
    /// The RTP source the leg is latched to (its media goes there), if any.
    pub latched: Option<SocketAddr>,
    /// The RTCP source the leg is latched to, if any.
    pub latched_rtcp: Option<SocketAddr>,
    /// Valid RTP arrived on the leg from an address other than its SDP address: NAT
    /// evidence for DIRECT_MEDIA.md rule 2. Set by any such packet, accepted or not (a
    /// stray packet can only make the call stay relayed, never go direct).
    pub source_differs_from_sdp: bool,
    /// Valid RTP arrived on the leg's RTP socket (accepted or not).
    pub heard: bool,
    /// RTP keep-alives sent to the leg ([`SessionConfig::keepalive`]).
    pub keepalives_sent: u64,
    /// The SSRC of the leg's current RTP stream.
    pub ssrc: Option<u32>,
}

/// The SSRC of the keep-alive streams (leg B's has the lowest bit flipped): fixed, so
/// a capture can tell them from the endpoints' own streams.
pub const KEEPALIVE_SSRC: u32 = 0x5b1d_6e00;

/// Candidate source of a `nat` leg that has not latched yet.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    source: SocketAddr,
    ssrc: u32,
    last_seq: u16,
    count: u8,
}

#[derive(Debug, Clone, Default)]
struct LegState {
    /// The SDP address now in force: `None` = unknown or on hold (send nothing).
    sdp: Option<SocketAddr>,
    /// The last SDP address that was not `None`: packets from it are accepted on hold.
    known_sdp: Option<SocketAddr>,
    /// `a=rtcp` (RFC 3605) or other explicit RTCP address; `None` = SDP port + 1.
    sdp_rtcp: Option<SocketAddr>,
    candidate: Option<Candidate>,
    seq: Option<SeqState>,
    /// Loss of the SSRCs before the current one.
    lost_before: u64,
    stats: LegStats,
    /// The leg's payload types (for DTMF and recording).
    payloads: PayloadMap,
    /// The payload-type numbers of packets received on this leg, as the other leg
    /// expects them; `None`: unchanged. Boxed: a 128-byte table that most calls, whose
    /// legs agree on their numbers, never need.
    translation: Option<Box<PayloadTranslation>>,
    dtmf: DtmfDetector,
    /// While the leg is recorded.
    /// Boxed: rare, and every open call carries the field.
    recorder: Option<Box<Recorder>>,
    /// When a packet (forwarded or keep-alive) was last sent to the leg's RTP address.
    sent_at: Duration,
    /// The keep-alive stream's next sequence number.
    keepalive_seq: u16,
    /// Samples recorded and not yet taken by the owner.
    audio: Vec<i16>,
}

impl LegState {
    fn expected_rtcp(&self) -> Option<SocketAddr> {
        self.sdp_rtcp.or_else(|| {
            let rtp = self.known_sdp?;
            Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
        })
    }

    /// Where this leg's media goes: nowhere while its SDP says so, else the latched
    /// source, else the SDP address.
    fn destination(&self, rtcp: bool) -> Option<SocketAddr> {
        self.sdp?;
        if rtcp {
            self.stats.latched_rtcp.or_else(|| self.expected_rtcp())
        } else {
            self.stats.latched.or(self.sdp)
        }
    }

    fn reset_latch(&mut self) {
        self.stats.latched = None;
        self.stats.latched_rtcp = None;
        self.candidate = None;
    }

    /// Loss counting for an accepted RTP packet.
    fn count_sequence(&mut self, header: &RtpHeader) {
        match &mut self.seq {
            Some(s) if s.ssrc == header.ssrc => {
                if s.update(header.sequence) == Update::Restart {
                    self.lost_before += s.lost();
                    *s = SeqState::new(header.ssrc, header.sequence);
                }
            }
            _ => {
                self.lost_before += self.seq.map_or(0, |s| s.lost());
                self.seq = Some(SeqState::new(header.ssrc, header.sequence));
            }
        }
        self.stats.ssrc = Some(header.ssrc);
        self.stats.lost = self.lost_before + self.seq.map_or(0, |s| s.lost());
    }
}

/// One call's media through the relay: two legs, each with a local RTP socket of ours
/// (RTCP on port + 1, owned by the I/O layer) and the address its SDP says it receives
/// at. Sans-IO: the owner feeds it packets and time and carries out the [`Forward`]s.
///
/// # Which packets are forwarded (latching)
///
/// A packet arriving on a leg is accepted only from that leg's endpoint, as far as the
/// relay can tell; anything else is dropped and counted in [`LegStats::dropped`]:
///
/// - **RTP socket.** From the latched source, once the leg has latched. Before that,
///   from the SDP address; the first valid RTP packet from it latches the leg there.
///   A `nat` leg ([`SessionConfig::nat`]) that has not latched also latches to a source
///   that sends [`LATCH_PACKETS`] consecutive valid RTP packets with one SSRC and
///   advancing sequence numbers (the last of them is forwarded, the ones before are
///   dropped); a packet from another source in between starts the count again. Once
///   latched, a different source is dropped — a stray or hostile sender never takes a
///   leg over — with one exception: valid RTP from the exact SDP address re-latches a
///   `nat` leg there (the SDP is what the endpoint asked for).
/// - **RTCP socket.** From the latched RTCP source; before that, from the SDP's RTCP
///   address ([`Session::set_remote_rtcp`], else SDP port + 1), or, on a `nat` leg,
///   from the IP of its latched RTP source; the first RTCP packet from either latches.
/// - A new SDP address ([`Session::set_remote`] with another address) forgets the
///   latches; `None` (hold, `c=0.0.0.0`) keeps them and stops sending to that leg.
///
/// Packets from an accepted source are forwarded unchanged whatever they contain (RTCP
/// multiplexed on the RTP port, SRTP, STUN), except that valid RTP gets the payload-type
/// number the other leg uses for its codec ([`Session::set_payload_translation`]); only
/// valid RTP counts for latching, loss, [`Session::heard_both`] and the inactivity timer.
///
/// # Inactivity
///
/// [`RelayEvent::Inactive`] fires when no valid RTP has been accepted from *either* leg
/// for [`SessionConfig::timeout`]: one silent direction (a phone on hold, a muted
/// sender that sends nothing) does not end a call, a call silent both ways does. The
/// deadline counts from the last RTP, from [`Session::new`], or from the last
/// [`Session::restart_timeout`] (call it when the call is answered, so ringing without
/// early media is not counted), whichever is latest. No deadline while forwarding is off.
///
/// Time is a `Duration` since an epoch the owner picks; it never goes backwards (a
/// smaller `now` is taken as the latest one seen).
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    legs: [LegState; 2],
    forwarding: bool,
    now: Duration,
    /// The latest of the last accepted RTP, creation and the last restart.
    active_at: Duration,
    inactive_reported: bool,
    heard_both_reported: bool,
    events: VecDeque<RelayEvent>,
}

impl Session {
    /// A session with no remote address known, forwarding on, the inactivity deadline
    /// at `now + config.timeout`.
    pub fn new(now: Duration, config: SessionConfig) -> Session {
        Session {
            config,
            legs: Default::default(),
            forwarding: true,
            now,
            active_at: now,
            inactive_reported: false,
            heard_both_reported: false,
            events: VecDeque::new(),
        }
    }

    /// The settings it was created with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The address `leg`'s SDP says it receives RTP at (`c=` and `m=`); its RTCP is at
    /// port + 1 unless [`Session::set_remote_rtcp`] says otherwise. `None`, an
    /// unspecified address (`c=0.0.0.0`, the old hold) or port 0 (a rejected stream) =
    /// send nothing to that leg. A different address than before forgets the leg's
    /// latches.
    pub fn set_remote(&mut self, leg: Leg, rtp: Option<SocketAddr>) {
        let rtp = rtp.filter(|a| !a.ip().is_unspecified() && a.port() != 0);
        let l = &mut self.legs[leg.index()];
        if rtp.is_some() && rtp != l.known_sdp {
            l.reset_latch();
            l.known_sdp = rtp;
        }
        l.sdp = rtp;
    }

    /// The leg's RTCP address from SDP `a=rtcp` (RFC 3605); `None` = RTP port + 1.
    pub fn set_remote_rtcp(&mut self, leg: Leg, rtcp: Option<SocketAddr>) {
        let l = &mut self.legs[leg.index()];
        if rtcp != l.sdp_rtcp {
            l.stats.latched_rtcp = None;
        }
        l.sdp_rtcp = rtcp;
    }

    /// The leg's SDP address in force (see [`Session::set_remote`]).
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.index()].sdp
    }

    /// A packet of `data.len()` bytes arrived on `leg`'s local RTP socket (or its RTCP
    /// socket when `rtcp`) from `source`. Returns where to send it, or `None` to drop it
    /// (refused source — see the type's docs —, forwarding off, or nowhere to send it on
    /// the other leg). Never panics, whatever `data` holds.
    pub fn handle_packet(&mut self, now: Duration, leg: Leg, rtcp: bool, source: SocketAddr, data: &[u8]) -> Option<Forward> {
        self.advance(now);
        let rtp = if rtcp { None } else { rtp::parse_rtp(data) };
        let accepted = if rtcp { self.accept_rtcp(leg, source, data) } else { self.accept_rtp(leg, source, rtp.as_ref()) };
        let now = self.now;
        let l = &mut self.legs[leg.index()];
        if !accepted {
            l.stats.dropped += 1;
            return None;
        }
        l.stats.packets_in += 1;
        l.stats.bytes_in += data.len() as u64;
        l.stats.last_packet_at = Some(now);
        if rtcp {
            l.stats.rtcp_packets_in += 1;
        } else if let Some(header) = &rtp {
            l.stats.rtp_packets_in += 1;
            l.count_sequence(header);
            if let Some(r) = &mut l.recorder {
                r.handle_parsed(header, data, &mut l.audio);
            }
            l.dtmf.handle_parsed(header, data);
            while let Some(d) = l.dtmf.poll_digit() {
                self.events.push_back(RelayEvent::Dtmf { leg, digit: d.digit, duration: d.duration });
            }
            self.active_at = now;
            self.inactive_reported = false;
        }
        if !self.forwarding {
            return None;
        }
        let translation = self.legs[leg.index()].translation.as_deref();
        let payload_type =
            rtp.zip(translation).map(|(h, t)| (h.payload_type, t.get(h.payload_type))).and_then(|(pt, to)| (pt != to).then_some(to));
        let out = leg.other();
        let o = &mut self.legs[out.index()];
        let to = o.destination(rtcp)?;
        o.stats.packets_out += 1;
        o.stats.bytes_out += data.len() as u64;
        if !rtcp {
            o.sent_at = now;
        }
        Some(Forward { leg: out, rtcp, to, payload_type })
    }

    /// The RTP-socket half of the latching rules; also records `heard` and the NAT
    /// evidence.
    fn accept_rtp(&mut self, leg: Leg, source: SocketAddr, rtp: Option<&RtpHeader>) -> bool {
        let nat = self.config.nat[leg.index()];
        let l = &mut self.legs[leg.index()];
        if let Some(header) = rtp {
            l.stats.heard = true;
            if l.known_sdp.is_some_and(|sdp| sdp != source) {
                l.stats.source_differs_from_sdp = true;
            }
            if !self.heard_both_reported && self.legs.iter().all(|l| l.stats.heard) {
                self.heard_both_reported = true;
                self.events.push_back(RelayEvent::HeardBoth);
            }
            let l = &mut self.legs[leg.index()];
            let from_sdp = l.known_sdp == Some(source);
            let latch = match l.stats.latched {
                Some(latched) => from_sdp && latched != source && nat,
                None if from_sdp => true,
                None if nat => Self::count_candidate(&mut l.candidate, source, header),
                None => false,
            };
            if latch {
                l.stats.latched = Some(source);
                l.candidate = None;
                if l.stats.latched_rtcp.is_some_and(|r| r.ip() != source.ip()) {
                    l.stats.latched_rtcp = None;
                }
                self.events.push_back(RelayEvent::Latched { leg, source });
            }
        }
        let l = &self.legs[leg.index()];
        match l.stats.latched {
            Some(latched) => latched == source,
            None => l.known_sdp == Some(source),
        }
    }

    /// A `nat` leg's count of consecutive packets from one source; true when it reaches
    /// [`LATCH_PACKETS`].
    fn count_candidate(candidate: &mut Option<Candidate>, source: SocketAddr, header: &RtpHeader) -> bool {
        let next = match candidate {
            Some(c) if c.source == source && c.ssrc == header.ssrc && (1..=100).contains(&header.sequence.wrapping_sub(c.last_seq)) => {
                Candidate { last_seq: header.sequence, count: c.count.saturating_add(1), ..*c }
            }
            // The same packet again is not a second packet; leave the count as it is.
            Some(c) if c.source == source && c.ssrc == header.ssrc && c.last_seq == header.sequence => *c,
            _ => Candidate { source, ssrc: header.ssrc, last_seq: header.sequence, count: 1 },
        };
        *candidate = Some(next);
        next.count >= LATCH_PACKETS
    }

    /// The RTCP-socket half of the latching rules.
    fn accept_rtcp(&mut self, leg: Leg, source: SocketAddr, data: &[u8]) -> bool {
        let nat = self.config.nat[leg.index()];
        let l = &mut self.legs[leg.index()];
        if let Some(latched) = l.stats.latched_rtcp {
            return latched == source;
        }
        let expected = l.expected_rtcp() == Some(source);
        let beside_rtp = nat && l.stats.latched.is_some_and(|rtp| rtp.ip() == source.ip());
        if !(expected || beside_rtp) {
            return false;
        }
        if rtp::is_rtcp(data) {
            l.stats.latched_rtcp = Some(source);
        }
        true
    }

    /// Counters and observed state of `leg`.
    pub fn stats(&self, leg: Leg) -> LegStats {
        self.legs[leg.index()].stats
    }

    /// Direct media (DIRECT_MEDIA.md "Moving the media"): with `on = false`, packets are
    /// still accepted, latched and counted but never forwarded, and there is no
    /// inactivity deadline. `on = true` (re-anchoring) resumes both: the deadline counts
    /// from `now`, and latching starts over on both legs (the endpoints' sources may
    /// have changed while their media went elsewhere: each leg latches again as a new
    /// one does, and [`RelayEvent::Latched`] is reported again). A recording's stream
    /// restarts too, so the direct spell is not written as silence.
    pub fn set_forwarding(&mut self, now: Duration, on: bool) {
        self.advance(now);
        if on && !self.forwarding {
            self.restart_timeout(now);
            for l in &mut self.legs {
                l.reset_latch();
                // Keep-alives resume an interval after the re-anchor, not at once.
                l.sent_at = l.sent_at.max(self.now);
                if let Some(r) = &mut l.recorder {
                    r.reset();
                }
            }
        }
        self.forwarding = on;
    }

    /// The payload types negotiated on `leg` (its SDP's `a=rtpmap`s), for DTMF
    /// detection and recording. Until set, [`PayloadMap::default`]: PCMU 0, PCMA 8,
    /// CN 13, telephone-event 101.
    pub fn set_payload_types(&mut self, leg: Leg, payloads: PayloadMap) {
        let l = &mut self.legs[leg.index()];
        l.dtmf.set_codecs(payloads.clone());
        if let Some(r) = &mut l.recorder {
            r.set_codecs(payloads.clone());
        }
        l.payloads = payloads;
    }

    /// Payload-type translation of the RTP packets received on `from` (RFC 3264 §8.3.2:
    /// each leg keeps its own numbers): a forwarded packet's [`Forward::payload_type`]
    /// says the number to write, the one `translation` gives its payload type when that
    /// differs. Until set, and for the numbers it does not name, the identity. RTCP and
    /// packets that are not valid RTP are never renumbered. The packets of `from` are
    /// still read (DTMF, recording) with `from`'s own numbers
    /// ([`Session::set_payload_types`]).
    pub fn set_payload_translation(&mut self, from: Leg, translation: PayloadTranslation) {
        self.legs[from.index()].translation = (translation != PayloadTranslation::IDENTITY).then(|| Box::new(translation));
    }

    /// The translation of packets received on `from` (see
    /// [`Session::set_payload_translation`]).
    pub fn payload_translation(&self, from: Leg) -> &PayloadTranslation {
        static IDENTITY: PayloadTranslation = PayloadTranslation::IDENTITY;
        self.legs[from.index()].translation.as_deref().unwrap_or(&IDENTITY)
    }

    /// Starts recording `leg`: from now on every RTP packet accepted from it (see the
    /// latching rules: a stray sender is never recorded) is decoded by a [`Recorder`]
    /// with the leg's payload types, and its samples (16-bit, 8 kHz) wait in
    /// [`Session::audio`]. Restarts a recording in progress (pending samples are kept).
    pub fn start_recording(&mut self, leg: Leg) {
        let l = &mut self.legs[leg.index()];
        l.recorder = Some(Box::new(Recorder::new(l.payloads.clone())));
    }

    /// Stops recording `leg` and returns its recorder's counters (`None` if it was not
    /// recorded). Samples not yet taken stay in [`Session::audio`].
    pub fn stop_recording(&mut self, leg: Leg) -> Option<RecorderStats> {
        self.legs[leg.index()].recorder.take().map(|r| r.stats())
    }

    /// The counters of `leg`'s recording in progress.
    pub fn recording(&self, leg: Leg) -> Option<RecorderStats> {
        self.legs[leg.index()].recorder.as_deref().map(Recorder::stats)
    }

    /// The samples recorded on `leg` since the last [`Session::clear_audio`]. Take them
    /// after every [`Session::handle_packet`] on a recorded leg (they accumulate until
    /// cleared).
    pub fn audio(&self, leg: Leg) -> &[i16] {
        &self.legs[leg.index()].audio
    }

    /// Forgets the samples of [`Session::audio`] (the owner has written them).
    pub fn clear_audio(&mut self, leg: Leg) {
        self.legs[leg.index()].audio.clear();
    }

    /// Whether packets are forwarded (see [`Session::set_forwarding`]).
    pub fn forwarding(&self) -> bool {
        self.forwarding
    }

    /// Counts the inactivity timeout from `now` (the call was answered; media resumed).
    pub fn restart_timeout(&mut self, now: Duration) {
        self.advance(now);
        self.active_at = self.now;
        self.inactive_reported = false;
    }

    /// Changes the inactivity timeout (`Duration::ZERO` = none), counted from the last
    /// activity as before.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.config.timeout = timeout;
    }

    /// The inactivity deadline, if one is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        let inactive = self.inactivity_deadline();
        let keepalive = (0..2).filter_map(|i| self.keepalive_due(i)).min();
        match (inactive, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn inactivity_deadline(&self) -> Option<Duration> {
        if !self.forwarding || self.config.timeout.is_zero() || self.inactive_reported {
            return None;
        }
        Some(self.active_at.saturating_add(self.config.timeout))
    }

    /// When leg `i` is owed a keep-alive: only while forwarding (never while the media
    /// is direct), with the keep-alive on and somewhere to send it.
    fn keepalive_due(&self, i: usize) -> Option<Duration> {
        let l = &self.legs[i];
        if !self.forwarding || self.config.keepalive.is_zero() {
            return None;
        }
        l.destination(false)?;
        Some(l.sent_at.saturating_add(self.config.keepalive))
    }

    /// Changes the keep-alive interval (`Duration::ZERO` = none), counted from the last
    /// packet sent to each leg, or from `now` for a leg sent nothing yet since the
    /// interval was off.
    pub fn set_keepalive(&mut self, now: Duration, keepalive: Duration) {
        self.advance(now);
        if self.config.keepalive.is_zero() {
            for l in &mut self.legs {
                l.sent_at = l.sent_at.max(self.now);
            }
        }
        self.config.keepalive = keepalive;
    }

    /// The next keep-alive that is due at `now` (call after [`Session::handle_timeout`]
    /// until `None`). Each one counts as a packet sent to its leg.
    pub fn poll_keepalive(&mut self, now: Duration) -> Option<Keepalive> {
        self.advance(now);
        let i = (0..2).find(|&i| self.keepalive_due(i).is_some_and(|t| t <= self.now))?;
        let leg = Leg::from_index(i)?;
        let now = self.now;
        let l = &mut self.legs[i];
        let to = l.destination(false)?;
        // A CN number the SDP gave (dynamic), else the static 13, else the old 19.
        let cn = |pt: &u8| l.payloads.get(*pt) == Some(Codec::ComfortNoise);
        let pt = (96..128u8).chain([13, 19]).find(cn).unwrap_or(13);
        let seq = l.keepalive_seq;
        l.keepalive_seq = seq.wrapping_add(1);
        l.sent_at = now;
        l.stats.keepalives_sent += 1;
        // RTP clock of CN at 8 kHz; any monotonic value will do for a packet that only
        // keeps a binding open.
        let ts = u32::try_from(now.as_millis().wrapping_mul(8) & u128::from(u32::MAX)).unwrap_or(0);
        let ssrc = KEEPALIVE_SSRC ^ u32::try_from(i).unwrap_or(0);
        let mut packet = [0u8; 13];
        packet[0] = 0x80;
        packet[1] = pt & 0x7f;
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&ts.to_be_bytes());
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        packet[12] = 127;
        Some(Keepalive { leg, to, packet })
    }

    /// Time has reached `now`: [`RelayEvent::Inactive`] if the inactivity deadline has
    /// passed (reported once, until RTP or a restart arms it again).
    pub fn handle_timeout(&mut self, now: Duration) -> Option<RelayEvent> {
        self.advance(now);
        if self.inactivity_deadline().is_some_and(|at| at <= self.now) {
            self.inactive_reported = true;
            return Some(RelayEvent::Inactive);
        }
        None
    }

    /// The next [`RelayEvent::Latched`], [`RelayEvent::HeardBoth`] or
    /// [`RelayEvent::Dtmf`], in order. Drain after every [`Session::handle_packet`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// Valid RTP has arrived from both legs (DIRECT_MEDIA.md rule 9): the NAT evidence of
    /// [`LegStats::source_differs_from_sdp`] is known for both.
    pub fn heard_both(&self) -> bool {
        self.legs.iter().all(|l| l.stats.heard)
    }

    fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }
}
