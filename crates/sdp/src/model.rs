//! The session description model (RFC 8866 §5).

use std::net::IpAddr;

use crate::codec::{digits, payload_type, Codec};

/// The `o=` line (RFC 8866 §5.2): who made the description, and which version of it
/// this is. The network type is always `IN`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The user name, `-` when there is none.
    pub username: String,
    /// The session id, stable for the whole session.
    pub session_id: u64,
    /// The version, increased each time the description changes (RFC 3264 §8).
    pub session_version: u64,
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// The address (or host name) of the originating machine.
    pub address: String,
}

impl Origin {
    /// Makes this [`Origin::new`]`(username, session_id, session_version, address)`,
    /// reusing its strings' allocations.
    pub(crate) fn assign(&mut self, username: &str, session_id: u64, session_version: u64, address: IpAddr) {
        assign(&mut self.username, username);
        self.session_id = session_id;
        self.session_version = session_version;
        assign(&mut self.address_type, address_type(address));
        self.address.clear();
        push_ip(&mut self.address, address);
    }

    /// An origin on address `address`.
    pub fn new(username: &str, session_id: u64, session_version: u64, address: IpAddr) -> Origin {
        Origin {
            username: username.to_owned(),
            session_id,
            session_version,
            address_type: address_type(address).to_owned(),
            address: ip_string(address),
        }
    }
}

/// The address as `Display` prints it; an IPv4 address without `core::fmt`, which costs
/// several times the printing itself.
fn ip_string(addr: IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, addr);
    s
}

/// Appends the address as `Display` prints it.
fn push_ip(s: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            for (k, o) in a.octets().into_iter().enumerate() {
                if k > 0 {
                    s.push('.');
                }
                crate::print::push_u64(s, u64::from(o));
            }
        }
        IpAddr::V6(a) => s.push_str(&a.to_string()),
    }
}

/// Replaces `s` by `value`, in the allocation it has when that is large enough.
fn assign(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

/// `IP4` or `IP6`.
pub(crate) fn address_type(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// A `c=` line (RFC 8866 §5.7). The network type is always `IN`. The address is kept
/// as written, including a multicast `/ttl[/count]` suffix (`224.2.1.1/127`) or a host
/// name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `IP4` or `IP6` (kept as written).
    pub address_type: String,
    /// The connection address, verbatim.
    pub address: String,
}

impl Connection {
    /// `c=IN IP4 <addr>` or `c=IN IP6 <addr>`.
    pub fn new(addr: IpAddr) -> Connection {
        Connection { address_type: address_type(addr).to_owned(), address: ip_string(addr) }
    }

    /// Makes this [`Connection::new`]`(addr)`, reusing its strings' allocations.
    pub(crate) fn assign(&mut self, addr: IpAddr) {
        assign(&mut self.address_type, address_type(addr));
        self.address.clear();
        push_ip(&mut self.address, addr);
    }

    /// The address as an IP address (a multicast `/ttl` suffix left out); `None` for a
    /// host name.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or_default();
        host.parse().ok()
    }

    /// Whether this is the RFC 2543 hold address `0.0.0.0`.
    pub fn is_hold_address(&self) -> bool {
        self.ip() == Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// An `a=` line: `a=<name>` (a flag) or `a=<name>:<value>`. Kept verbatim (the value
/// without trailing white space).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute name (before the first `:`).
    pub name: String,
    /// The value (after the first `:`), `None` for a flag attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// `a=<name>:<value>`.
    pub fn new(name: &str, value: &str) -> Attribute {
        Attribute { name: name.to_owned(), value: Some(value.to_owned()) }
    }

    /// `a=<name>`.
    pub fn flag(name: &str) -> Attribute {
        Attribute { name: name.to_owned(), value: None }
    }

    /// Whether this attribute concerns payload format `fmt`: its value starts with
    /// `fmt` followed by white space or nothing (`a=rtpmap:97 …`, `a=fmtp:101 0-15`).
    pub(crate) fn is_for_format(&self, fmt: &str) -> bool {
        match &self.value {
            Some(v) => v.strip_prefix(fmt).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t'])),
            None => false,
        }
    }
}

/// Any other line kept verbatim: `i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`, `k=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Line {
    /// The type letter.
    pub kind: char,
    /// The value, verbatim (without trailing white space).
    pub value: String,
}

impl Line {
    /// A line `<kind>=<value>`.
    pub fn new(kind: char, value: &str) -> Line {
        Line { kind, value: value.to_owned() }
    }
}

/// Where a session-level line goes in RFC 8866 §5 order; `c=` is rank 4. `t=` and its
/// `r=` lines share a rank, so that their pairing survives the stable sort.
pub(crate) fn session_rank(kind: char) -> Option<u8> {
    Some(match kind {
        'i' => 0,
        'u' => 1,
        'e' => 2,
        'p' => 3,
        'b' => 5,
        't' | 'r' => 6,
        'z' => 7,
        'k' => 8,
        _ => return None,
    })
}

/// Media-level order (RFC 8866 §5): `i=`, then `c=` (rank 1), `b=`, `k=`.
pub(crate) fn media_rank(kind: char) -> Option<u8> {
    Some(match kind {
        'i' => 0,
        'b' => 2,
        'k' => 3,
        _ => return None,
    })
}

/// The media direction attributes (RFC 3264 §5.1, RFC 8866 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, also the default when no direction is written.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// What an answerer answers to this offered direction (RFC 3264 §6.1): sendonly and
    /// recvonly swap; sendrecv and inactive stay.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name stands for.
    pub fn from_name(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

/// The direction written in a list of attributes (the first direction attribute).
pub(crate) fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().filter(|a| a.value.is_none()).find_map(|a| Direction::from_name(&a.name))
}

/// Replaces the direction attributes of a list by `dir`, at the place of the first one
/// (or at the end).
pub(crate) fn set_direction_in(attributes: &mut Vec<Attribute>, dir: Direction) {
    let is_dir = |a: &Attribute| a.value.is_none() && Direction::from_name(&a.name).is_some();
    let at = attributes.iter().position(is_dir).unwrap_or(attributes.len());
    attributes.retain(|a| !is_dir(a));
    let at = at.min(attributes.len());
    attributes.insert(at, Attribute::flag(dir.as_str()));
}

/// One media description: the `m=` line and what follows it up to the next `m=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Media {
    pub(crate) media_type: String,
    pub(crate) port: u16,
    pub(crate) port_count: Option<u16>,
    pub(crate) proto: String,
    pub(crate) formats: Vec<String>,
    pub(crate) lines: Vec<Line>,
    pub(crate) connection: Option<Connection>,
    pub(crate) attributes: Vec<Attribute>,
}

impl Media {
    /// `m=<media_type> <port> <proto> <formats…>` with nothing else.
    pub fn new(media_type: &str, port: u16, proto: &str, formats: Vec<String>) -> Media {
        Media {
            media_type: media_type.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats,
            lines: Vec::new(),
            connection: None,
            attributes: Vec::new(),
        }
    }

    /// The media type: `audio`, `video`, `image`, `application`…
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// Whether the media type is `audio`.
    pub fn is_audio(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("audio")
    }

    /// The transport port; 0 means the stream is disabled or rejected (RFC 3264 §6).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the port (0 disables the stream).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// The port count of `m=audio 49170/2 …`, when written.
    pub fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// Sets or clears the port count.
    pub fn set_port_count(&mut self, count: Option<u16>) {
        self.port_count = count;
    }

    /// Whether the stream is active (its port is not 0).
    pub fn is_active(&self) -> bool {
        self.port != 0
    }

    /// The transport protocol: `RTP/AVP`, `RTP/SAVP`, `udptl`…
    pub fn proto(&self) -> &str {
        &self.proto
    }

    /// The formats of the `m=` line, as written (payload type numbers for `RTP/AVP`).
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    /// Replaces the formats of the `m=` line (the `a=rtpmap`/`a=fmtp` lines stay).
    pub fn set_formats(&mut self, formats: Vec<String>) {
        self.formats = formats;
    }

    /// The media-level `c=`, if any.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Sets or removes the media-level `c=`.
    pub fn set_connection(&mut self, connection: Option<Connection>) {
        self.connection = connection;
    }

    /// The other media-level lines (`i=`, `b=`, `k=`), in RFC 8866 order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Adds a media-level `i=`, `b=` or `k=` line at its RFC 8866 place; other kinds
    /// are not allowed in a media description and are ignored (returns false).
    pub fn push_line(&mut self, line: Line) -> bool {
        let Some(rank) = media_rank(line.kind) else { return false };
        let at = self.lines.iter().position(|l| media_rank(l.kind).is_some_and(|r| r > rank)).unwrap_or(self.lines.len());
        self.lines.insert(at, line);
        true
    }

    /// The media-level attributes, in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The media-level attributes, to edit.
    pub fn attributes_mut(&mut self) -> &mut Vec<Attribute> {
        &mut self.attributes
    }

    /// The value of the first attribute `name` (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// Removes every attribute called `name`.
    pub fn remove_attributes(&mut self, name: &str) {
        self.attributes.retain(|a| a.name != name);
    }

    /// The direction attribute of this media description itself, if any.
    pub fn own_direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// This media description's own direction, sendrecv when it has none. A direction
    /// written at session level applies to media without their own: use
    /// [`SessionDescription::effective_direction`](crate::SessionDescription::effective_direction)
    /// for the direction in force.
    pub fn direction(&self) -> Direction {
        self.own_direction().unwrap_or_default()
    }

    /// Writes `dir` as this media description's direction attribute (replacing any).
    pub fn set_direction(&mut self, dir: Direction) {
        set_direction_in(&mut self.attributes, dir);
    }

    /// What payload type `pt` is: its `a=rtpmap`, or for 0..=34 without one the RFC 3551
    /// static table.
    pub fn rtpmap(&self, pt: u8) -> Option<Codec> {
        let mapped = self
            .attributes
            .iter()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| a.value.as_deref().and_then(Codec::parse_rtpmap))
            .find(|c| c.payload_type == pt);
        mapped.or_else(|| Codec::static_payload(pt))
    }

    /// The known formats of the `m=` line, in order (a format that is not a number or
    /// a dynamic number without `a=rtpmap` is left out).
    pub fn codecs(&self) -> Vec<Codec> {
        self.formats.iter().filter_map(|f| payload_type(f).and_then(|pt| self.rtpmap(pt))).collect()
    }

    /// The `a=ptime` of this media description, in milliseconds (a fraction is cut).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(parse_ms)
    }

    /// The port of `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605), if any.
    pub fn rtcp_port(&self) -> Option<u16> {
        let value = self.attribute("rtcp")?;
        digits(value.split([' ', '\t']).next().unwrap_or_default())
    }

    /// Whether this stream is secure RTP: a `SAVP`/`SAVPF` profile (`RTP/SAVP`,
    /// `RTP/SAVPF`, DTLS-SRTP's `UDP/TLS/RTP/SAVP[F]`), or an SDES `a=crypto` (RFC 4568)
    /// or DTLS `a=fingerprint` (RFC 8122) attribute of its own. A session-level
    /// `a=fingerprint` is seen by [`SessionDescription::uses_srtp`].
    pub fn is_srtp(&self) -> bool {
        let savp = self.proto.split('/').any(|p| p.eq_ignore_ascii_case("SAVP") || p.eq_ignore_ascii_case("SAVPF"));
        savp || self.attributes.iter().any(is_security_attribute)
    }

    /// Whether this is fax or image media: `m=image`, the `udptl` transport, or the
    /// `t38` format (T.38, RFC 3362 / ITU-T T.38 Annex D).
    pub fn is_t38(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("image")
            || self.proto.split('/').any(|p| p.eq_ignore_ascii_case("udptl"))
            || self.formats.iter().any(|f| f.eq_ignore_ascii_case("t38"))
    }

    /// Removes format `fmt` from the `m=` line with its `a=rtpmap`, `a=fmtp` and
    /// `a=rtcp-fb` lines.
    pub fn remove_format(&mut self, fmt: &str) {
        self.formats.retain(|f| f != fmt);
        self.attributes.retain(|a| !(matches!(a.name.as_str(), "rtpmap" | "fmtp" | "rtcp-fb") && a.is_for_format(fmt)));
    }
}

/// `a=crypto` (SDES, RFC 4568) or `a=fingerprint` (DTLS-SRTP, RFC 5763 / RFC 8122).
fn is_security_attribute(a: &Attribute) -> bool {
    a.name.eq_ignore_ascii_case("crypto") || a.name.eq_ignore_ascii_case("fingerprint")
}

/// Milliseconds of `a=ptime`/`a=maxptime`: digits, optionally followed by a fraction
/// that is cut (`20.0` is 20).
pub(crate) fn parse_ms(value: &str) -> Option<u32> {
    let whole = value.trim().split('.').next().unwrap_or_default();
    digits(whole)
}

/// A whole session description (RFC 8866 §5).
///
/// Everything this crate does not interpret is kept: the `i=`, `u=`, `e=`, `p=`, `b=`,
/// `t=`, `r=`, `z=`, `k=` lines, every attribute (in order), and media of any type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionDescription {
    pub(crate) origin: Origin,
    pub(crate) session_name: String,
    pub(crate) lines: Vec<Line>,
    pub(crate) connection: Option<Connection>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) media: Vec<Media>,
}

impl SessionDescription {
    /// A description with `origin`, `s=-`, `t=0 0`, and no media.
    pub fn new(origin: Origin) -> SessionDescription {
        SessionDescription {
            origin,
            session_name: "-".to_owned(),
            lines: vec![Line::new('t', "0 0")],
            connection: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The `o=` line.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Replaces the `o=` line.
    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }

    /// The `s=` line (may be empty, as in the RFC 3264 examples).
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// Replaces the `s=` line.
    pub fn set_session_name(&mut self, name: &str) {
        assign(&mut self.session_name, name);
    }

    /// The session-level `c=`, if any.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Sets or removes the session-level `c=`.
    pub fn set_connection(&mut self, connection: Option<Connection>) {
        self.connection = connection;
    }

    /// The other session-level lines (`i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`,
    /// `k=`), in RFC 8866 order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Replaces the other session-level lines; they are put in RFC 8866 order and kinds
    /// that do not belong there (`a`, `c`, `m`, `v`…) are dropped.
    pub fn set_lines(&mut self, mut lines: Vec<Line>) {
        lines.retain(|l| session_rank(l.kind).is_some());
        lines.sort_by_key(|l| session_rank(l.kind));
        self.lines = lines;
    }

    /// The session-level attributes, in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The session-level attributes, to edit.
    pub fn attributes_mut(&mut self) -> &mut Vec<Attribute> {
        &mut self.attributes
    }

    /// The direction written at session level, if any (it applies to media without
    /// their own).
    pub fn session_direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The media descriptions, in order.
    pub fn media(&self) -> &[Media] {
        &self.media
    }

    /// The media descriptions, to edit.
    pub fn media_mut(&mut self) -> &mut [Media] {
        &mut self.media
    }

    /// Appends a media description.
    pub fn push_media(&mut self, media: Media) {
        self.media.push(media);
    }

    /// The direction in force for `media`: its own, else the session-level one, else
    /// sendrecv (RFC 8866 §6.7).
    pub fn effective_direction(&self, media: &Media) -> Direction {
        media.own_direction().or(self.session_direction()).unwrap_or_default()
    }

    /// The connection in force for `media`: its own `c=`, else the session-level one.
    pub fn effective_connection<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// Whether any active stream (port not 0) is secure RTP ([`Media::is_srtp`]), or
    /// the session level carries `a=fingerprint` / `a=crypto` while a stream is active.
    /// Rejected streams do not count: their keys are never used.
    pub fn uses_srtp(&self) -> bool {
        let active = || self.media.iter().filter(|m| m.is_active());
        active().any(Media::is_srtp) || (active().next().is_some() && self.attributes.iter().any(is_security_attribute))
    }

    /// Whether any active stream (port not 0) is T.38 / image media ([`Media::is_t38`]).
    pub fn has_t38(&self) -> bool {
        self.media.iter().any(|m| m.is_active() && m.is_t38())
    }

    /// The index of the first audio stream with a non-zero port.
    pub fn active_audio_index(&self) -> Option<usize> {
        self.media.iter().position(|m| m.is_audio() && m.is_active())
    }

    /// The first audio stream with a non-zero port.
    pub fn active_audio(&self) -> Option<&Media> {
        self.active_audio_index().and_then(|i| self.media.get(i))
    }
}
