//! What the B2BUA does with a leg's SDP: find, re-point and restrict its audio stream,
//! and answer an offer itself.

use std::net::{IpAddr, SocketAddr};

use crate::codec::{payload_type, Codec};
use crate::model::{parse_ms, Attribute, Connection, Line, Media, Origin, SessionDescription};

impl SessionDescription {
    /// The first audio stream with a non-zero port: its effective connection address
    /// (media-level `c=` over session-level) and port. `None` when there is none, or
    /// when its address is a host name rather than an IP address.
    pub fn audio_address(&self) -> Option<SocketAddr> {
        let media = self.active_audio()?;
        let ip = self.effective_connection(media)?.ip()?;
        Some(SocketAddr::new(ip, media.port))
    }

    /// Hold as the offerer means it: the first active audio stream's effective
    /// direction is sendonly or inactive, or its connection address is `0.0.0.0`
    /// (RFC 2543 hold, RFC 3264 §8.4). False when there is no active audio stream.
    pub fn is_hold(&self) -> bool {
        let Some(media) = self.active_audio() else { return false };
        let dir = self.effective_direction(media);
        matches!(dir, crate::Direction::SendOnly | crate::Direction::Inactive)
            || self.effective_connection(media).is_some_and(Connection::is_hold_address)
    }

    /// Points the first active audio stream at `addr:port`: a media-level `c=`, the
    /// `m=` port (a port count is dropped) and no `a=rtcp` (RTCP is port + 1 on our
    /// relay). A session-level `c=` is re-pointed too, so that the other leg's address
    /// does not leak. Every other active stream (video, a second audio, image) gets
    /// port 0 (disabled, RFC 3264 §6/§8.2): the relay carries one audio stream per leg.
    ///
    /// Hold passes through: when the stream's effective `c=` was `0.0.0.0`, the `c=`
    /// lines stay as they are and only the port changes.
    ///
    /// Without an active audio stream every stream is disabled and no `c=` changes
    /// (check [`audio_address`](SessionDescription::audio_address) first).
    pub fn set_audio_address(&mut self, addr: IpAddr, port: u16) {
        let audio = self.active_audio_index();
        let held = audio
            .and_then(|i| self.media.get(i))
            .is_some_and(|m| m.connection.as_ref().or(self.connection.as_ref()).is_some_and(Connection::is_hold_address));
        for (i, media) in self.media.iter_mut().enumerate() {
            if Some(i) != audio {
                if media.is_active() {
                    media.port = 0;
                    media.port_count = None;
                }
                continue;
            }
            media.port = port;
            media.port_count = None;
            media.remove_attributes("rtcp");
            if !held {
                match &mut media.connection {
                    Some(c) => c.assign(addr),
                    None => media.connection = Some(Connection::new(addr)),
                }
            }
        }
        if !held && audio.is_some() {
            if let Some(c) = &mut self.connection {
                if !c.is_hold_address() {
                    c.assign(addr);
                }
            }
        }
    }

    /// Keeps, in the first active audio stream, only the formats whose encoding name
    /// (from `a=rtpmap`, or the RFC 3551 static table for 0..=34) is in `allowed`
    /// (case-insensitive), and removes the `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of
    /// the others. A dynamic format without `a=rtpmap`, or one that is not a number,
    /// is removed. Returns the number of formats left, not counting telephone-event:
    /// 0 means no common codec (the caller answers 488). 0 also when there is no
    /// active audio stream.
    pub fn filter_codecs(&mut self, allowed: &[&str]) -> usize {
        let Some(media) = self.active_audio_index().and_then(|i| self.media.get_mut(i)) else { return 0 };
        let removed: Vec<String> = media
            .formats
            .iter()
            .filter(|f| !payload_type(f).and_then(|pt| media.rtpmap(pt)).is_some_and(|c| c.is_named_in(allowed)))
            .cloned()
            .collect();
        for fmt in &removed {
            media.remove_format(fmt);
        }
        media.codecs().iter().filter(|c| !c.is_telephone_event()).count()
    }

    /// Gives the formats of this answer's first active audio stream the payload-type
    /// numbers the offer gave the same format ([`Codec::same_format`]) in the
    /// corresponding stream (RFC 3264 §6.1: "if a particular codec was referenced with a
    /// specific payload type number in the offer, that same payload type number SHOULD
    /// be used for that codec in the answer"). For a B2BUA that answers one leg with the
    /// other leg's answer: that endpoint chose its own numbers, this leg keeps its own.
    /// The `m=` tokens and their `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines are
    /// renumbered together (swaps included); a static format moved to a dynamic number
    /// gets an `a=rtpmap`. A format the offer does not have keeps its number, and so does
    /// one whose offered number the answer uses for a format that stays. Returns how many
    /// formats changed number.
    pub fn keep_offer_numbers(&mut self, offer: &SessionDescription) -> usize {
        let Some(i) = self.active_audio_index() else { return 0 };
        let (Some(answer), Some(offered)) = (self.media.get_mut(i), offer.media.get(i)) else { return 0 };
        let offered = offered.codecs();
        let mut moves: Vec<(u8, Codec)> = Vec::new();
        for fmt in &answer.formats {
            let Some(codec) = payload_type(fmt).and_then(|pt| answer.rtpmap(pt)) else { continue };
            let Some(to) = offered.iter().find(|o| o.same_format(&codec)).map(|o| o.payload_type) else { continue };
            if to != codec.payload_type && !moves.iter().any(|&(t, _)| t == to) {
                moves.push((to, codec));
            }
        }
        // A target the answer uses for a format that keeps its number would be taken twice.
        let staying = |pt: u8| !moves.iter().any(|(_, c)| c.payload_type == pt);
        let used: Vec<u8> = answer.formats.iter().filter_map(|f| payload_type(f)).filter(|&pt| staying(pt)).collect();
        moves.retain(|(to, _)| !used.contains(to));
        if moves.is_empty() {
            return 0;
        }
        let renumber = |token: &str| -> Option<String> {
            let pt = payload_type(token)?;
            moves.iter().find(|(_, c)| c.payload_type == pt).map(|(to, _)| to.to_string())
        };
        for fmt in &mut answer.formats {
            if let Some(new) = renumber(fmt) {
                *fmt = new;
            }
        }
        let mut mapped = vec![false; moves.len()];
        for a in &mut answer.attributes {
            if !matches!(a.name.as_str(), "rtpmap" | "fmtp" | "rtcp-fb") {
                continue;
            }
            let Some(value) = &a.value else { continue };
            let token_len = value.find([' ', '\t']).unwrap_or(value.len());
            let Some(new) = renumber(&value[..token_len]) else { continue };
            if a.name == "rtpmap" {
                if let Some(k) = payload_type(&value[..token_len]).and_then(|pt| moves.iter().position(|(_, c)| c.payload_type == pt)) {
                    mapped[k] = true;
                }
            }
            a.value = Some(format!("{new}{}", &value[token_len..]));
        }
        for ((to, codec), done) in moves.iter().zip(mapped) {
            if !done {
                let c = Codec { payload_type: *to, ..codec.clone() };
                answer.attributes.push(Attribute::new("rtpmap", &c.rtpmap_value()));
            }
        }
        moves.len()
    }

    /// The codecs of the first active audio stream, in `m=` order (names as written).
    pub fn audio_codecs(&self) -> Vec<Codec> {
        self.active_audio().map(Media::codecs).unwrap_or_default()
    }

    /// The `a=ptime` of the first active audio stream, else a session-level one.
    pub fn ptime(&self) -> Option<u32> {
        let media = self.active_audio()?;
        media.ptime().or_else(|| self.attributes.iter().find(|a| a.name == "ptime").and_then(|a| a.value.as_deref()).and_then(parse_ms))
    }

    /// The answer sipbridge gives itself to `offer` (RFC 3264 §6): as many `m=` lines
    /// as the offer; the first active audio stream accepted on `addr:port` with the
    /// codecs of [`answer_codecs`] (offer's payload-type numbers, each with `a=rtpmap`
    /// and the offer's `a=fmtp`), the offer's `a=ptime`, and the offered direction
    /// reversed, written explicitly; every other stream rejected (port 0, the offer's
    /// formats). `t=` is the offer's (§6: it cannot be negotiated), `c=` is at session
    /// level, `s=-`, and `o=- 0 0 IN IP4 <addr>` is a placeholder for
    /// [`LocalOrigin::stamp`](crate::LocalOrigin::stamp).
    ///
    /// `None` when the offer has no active audio stream or no codec in common (not
    /// counting telephone-event): the caller answers 488.
    pub fn answer_to(offer: &SessionDescription, supported: &[&str], addr: IpAddr, port: u16) -> Option<SessionDescription> {
        let audio = offer.active_audio_index()?;
        let codecs = answer_codecs(offer, supported);
        if codecs.iter().all(Codec::is_telephone_event) {
            return None;
        }
        let mut answer = SessionDescription::new(Origin::new("-", 0, 0, addr));
        let timing: Vec<Line> = offer.lines.iter().filter(|l| matches!(l.kind, 't' | 'r' | 'z')).cloned().collect();
        if !timing.is_empty() {
            answer.set_lines(timing);
        }
        answer.connection = Some(Connection::new(addr));
        for (i, offered) in offer.media.iter().enumerate() {
            if i != audio {
                answer.media.push(Media::new(&offered.media_type, 0, &offered.proto, offered.formats.clone()));
                continue;
            }
            let formats = codecs.iter().map(|c| pt_string(c.payload_type)).collect();
            let mut media = Media::new(&offered.media_type, port, &offered.proto, formats);
            for codec in &codecs {
                media.attributes.push(Attribute::new("rtpmap", &codec.rtpmap_value()));
                let pt = pt_string(codec.payload_type);
                let fmtp = offered.attributes.iter().filter(|a| a.name == "fmtp" && a.is_for_format(&pt));
                media.attributes.extend(fmtp.cloned());
            }
            if let Some(ptime) = offered.attributes.iter().find(|a| a.name == "ptime") {
                media.attributes.push(ptime.clone());
            }
            media.set_direction(offer.effective_direction(offered).reverse());
            answer.media.push(media);
        }
        Some(answer)
    }
}

/// RFC 3264 §6.1 answerer codec choice: the formats of the offer's first active audio
/// stream (in offer order, with the offer's payload-type numbers) whose encoding name
/// is in `supported` (case-insensitive).
///
/// telephone-event is kept when it is in `supported` and its clock rate is the rate of
/// one of the chosen voice codecs (RFC 4733 §7.1.1 ties the event rate to the audio
/// rate); so it is never chosen alone.
pub fn answer_codecs(offer: &SessionDescription, supported: &[&str]) -> Vec<Codec> {
    let chosen: Vec<Codec> = offer.audio_codecs().into_iter().filter(|c| c.is_named_in(supported)).collect();
    let voice_rates: Vec<u32> = chosen.iter().filter(|c| !c.is_telephone_event()).map(|c| c.clock_rate).collect();
    chosen.into_iter().filter(|c| !c.is_telephone_event() || voice_rates.contains(&c.clock_rate)).collect()
}

/// A payload-type number as text (without `core::fmt`).
fn pt_string(pt: u8) -> String {
    let mut s = String::with_capacity(3);
    crate::print::push_u64(&mut s, u64::from(pt));
    s
}
