//! `[[endpoint]]`: a phone or a peer server, with its authentication, media and NAT
//! policy. `/work/shared/design/DIRECT_MEDIA.md` explains the direct-media keys.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{empty_is_none, Cidr, HostPort, InvalidValue, Transport};

/// How an endpoint carries DTMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    /// RTP telephone-event packets (RFC 4733).
    #[default]
    Rfc4733,
    /// SIP INFO requests.
    Info,
    /// Tones in the audio.
    Inband,
}

/// Whether this endpoint's media may leave the relay (DIRECT_MEDIA.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectMedia {
    /// Allowed.
    #[default]
    Yes,
    /// Never: the media always goes through the relay.
    No,
    /// Allowed only while the endpoint is not seen behind NAT.
    Nonat,
    /// Allowed, with glare avoidance on dialogs we did not create.
    Outgoing,
}

impl DirectMedia {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectMedia::Yes => "yes",
            DirectMedia::No => "no",
            DirectMedia::Nonat => "nonat",
            DirectMedia::Outgoing => "outgoing",
        }
    }
}

/// How media is moved: re-INVITE or UPDATE (RFC 3311).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectMediaMethod {
    /// re-INVITE.
    #[default]
    Invite,
    /// UPDATE, falling back to re-INVITE when the endpoint's Allow lacks UPDATE.
    Update,
}

impl DirectMediaMethod {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectMediaMethod::Invite => "invite",
            DirectMediaMethod::Update => "update",
        }
    }
}

/// NAT handling for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nat {
    /// Detect from Via `received`/`rport` and the SDP address.
    #[default]
    Auto,
    /// Always: force rport, latch RTP to its source, rewrite Contact to the source address.
    Yes,
    /// Never treat the endpoint as behind NAT.
    No,
}

/// An endpoint's digest password. Debug and Serialize print [`Secret::MASK`] so that a
/// config dump, a log line or a panic message never carries it; [`Secret::expose`] is the
/// one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// What a masked secret prints as.
    pub const MASK: &'static str = "********";

    /// Wrap a password (configs built in code, tests).
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The password itself, for computing digests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(super) fn masked_value_error() -> String {
        format!("{:?} is the mask that check-config prints in place of a secret; put the real secret here", Secret::MASK)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", Secret::MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Secret::MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(super::ParseStr(|secret: &str| match secret {
            "" => Err("an empty secret is not allowed; leave `secret` out for an endpoint matched by address".to_owned()),
            Secret::MASK => Err(Secret::masked_value_error()),
            _ => Ok(Secret(secret.to_owned())),
        }))
    }
}

/// Where an endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum EndpointHost {
    /// `"dynamic"`: it registers with us, and calls go to its registered contacts.
    #[default]
    Dynamic,
    /// `"HOST:PORT"`: a fixed contact; a no-secret endpoint is also matched by it.
    Static(HostPort),
}

impl FromStr for EndpointHost {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "dynamic" {
            Ok(EndpointHost::Dynamic)
        } else {
            s.parse().map(EndpointHost::Static)
        }
    }
}

impl fmt::Display for EndpointHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointHost::Dynamic => f.write_str("dynamic"),
            EndpointHost::Static(host) => host.fmt(f),
        }
    }
}

string_serde!(EndpointHost);

/// One `[[endpoint]]`. Keys in chan_sip spelling are accepted too (see
/// [`super::chan_sip`]); `directmediapermit`, `directmediadeny` and `directrtpsetup` are
/// plain aliases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoint {
    /// Dialable name, AOR user part and digest username; unique, required.
    pub name: String,
    /// Digest password; None = no authentication, requests matched by source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// `"dynamic"` (registers with us) or a static `"HOST:PORT"`.
    pub host: EndpointHost,
    /// Transport for requests we send to it.
    pub transport: Transport,
    /// Codec names in preference order, as in SDP rtpmap (`PCMU`, `telephone-event`, …).
    pub codecs: Vec<String>,
    /// How it carries DTMF.
    pub dtmf_mode: DtmfMode,
    /// Whether its media may leave the relay.
    pub direct_media: DirectMedia,
    /// re-INVITE or UPDATE for moving media.
    pub direct_media_method: DirectMediaMethod,
    /// The *other* endpoint's media address must be inside one of these (empty = any).
    #[serde(alias = "directmediapermit")]
    pub direct_media_permit: Vec<Cidr>,
    /// … and outside all of these (checked first).
    #[serde(alias = "directmediadeny")]
    pub direct_media_deny: Vec<Cidr>,
    /// Put the peer's media address in the initial INVITE/answer when policy allows.
    #[serde(alias = "directrtpsetup")]
    pub direct_rtp_setup: bool,
    /// NAT handling.
    pub nat: Nat,
    /// Overrides `[media].address` for this endpoint's leg; `""` = None.
    #[serde(with = "empty_is_none")]
    pub media_address: Option<IpAddr>,
    /// Send OPTIONS keepalives.
    pub qualify: bool,
    /// Seconds between keepalives while reachable (every 10 s while unreachable).
    pub qualify_frequency_s: u32,
    /// Replies slower than this mark the endpoint LAGGED.
    pub qualify_max_ms: u32,
}

impl Default for Endpoint {
    /// The contract's defaults, with an empty name (which validation refuses).
    fn default() -> Self {
        Endpoint {
            name: String::new(),
            secret: None,
            host: EndpointHost::Dynamic,
            transport: Transport::Udp,
            codecs: ["PCMU", "PCMA", "telephone-event"].map(str::to_owned).to_vec(),
            dtmf_mode: DtmfMode::Rfc4733,
            direct_media: DirectMedia::Yes,
            direct_media_method: DirectMediaMethod::Invite,
            direct_media_permit: Vec::new(),
            direct_media_deny: Vec::new(),
            direct_rtp_setup: false,
            nat: Nat::Auto,
            media_address: None,
            qualify: true,
            qualify_frequency_s: 60,
            qualify_max_ms: 2000,
        }
    }
}

/// Characters of an RFC 3261 §25.1 `user` (unreserved and user-unreserved), which the
/// name must be since it is the user part of the endpoint's AOR.
fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)
}

impl Endpoint {
    /// Rules within one endpoint; the error names the offending key.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() {
            return Err(("name", "every endpoint needs a non-empty name".to_owned()));
        }
        if let Some(bad) = self.name.chars().find(|&c| !is_user_char(c)) {
            return Err(("name", format!("{:?} contains {bad:?}, which cannot appear in the user part of a SIP URI", self.name)));
        }
        if self.secret.is_none() && self.host == EndpointHost::Dynamic {
            // Without a secret, requests are matched by source address; a dynamic endpoint
            // has none, so anybody could register as it and take its calls.
            return Err((
                "secret",
                format!("endpoint {:?} has host = \"dynamic\" but no secret, so anybody could register as it", self.name),
            ));
        }
        if self.codecs.is_empty() {
            return Err(("codecs", "needs at least one codec".to_owned()));
        }
        if let Some(bad) = self.codecs.iter().find(|c| c.is_empty() || !c.chars().all(|c| c.is_ascii_graphic())) {
            return Err(("codecs", format!("{bad:?} is not a codec name")));
        }
        if self.qualify && self.qualify_frequency_s == 0 {
            return Err(("qualify_frequency_s", "must be at least 1 while qualify is on".to_owned()));
        }
        if self.qualify && self.qualify_max_ms == 0 {
            return Err(("qualify_max_ms", "must be at least 1 while qualify is on".to_owned()));
        }
        Ok(())
    }
}
