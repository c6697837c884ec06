//! The operator's config file (`/work/shared/design/CONFIG.md` is the contract).
//!
//! TOML, every key optional with the contract's default, validated completely at load so
//! that a running server never meets a bad value: `sipbridge check-config` and a SIGHUP
//! reload both go through [`Config::load`]. Unknown keys are errors, never ignored,
//! because a misspelt key silently falling back to its default is the classic way a PBX
//! ends up with authentication or NAT handling the operator thought they had configured.
//!
//! Every error names the key (as a path such as `endpoint[1].direct_media`, indexes
//! counted from 0) and the line it is on; see [`ConfigError`]. Values are checked where
//! they are parsed (so the TOML parser reports their exact position) and cross-key rules
//! (t2 ≥ t1, routes naming endpoints, a `[tls]` section for a `tls:` listener, …) are
//! checked afterwards and located by looking the key up in the parsed document.
//!
//! Loading goes: parse the document with spans → rewrite chan_sip spellings
//! ([`chan_sip`](self#chan_sip-spellings)) → deserialize into [`Config`] → cross-key checks.
//!
//! # chan_sip spellings
//!
//! Endpoints also accept Asterisk chan_sip's names so a `sip.conf` peer can be carried over
//! line by line: `directmediapermit`, `directmediadeny` and `directrtpsetup` are plain
//! aliases, and `directmedia` / `canreinvite` are mapped as in [`chan_sip`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Serialize through `Display` and deserialize through `FromStr`, for the config values
/// that are written as one string in TOML (`"udp:0.0.0.0:5060"`, `"10.0.0.0/8"`, …).
/// Parsing inside the visitor (not after `String::deserialize`) matters: the TOML
/// deserializer attaches the value's own position only to errors raised while it is
/// running, and otherwise an error in an array element would point at the whole array.
macro_rules! string_serde {
    ($($t:ty),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::config::ParseStr(|text: &str| text.parse::<$t>()))
            }
        }
    )*};
}

/// A serde visitor that accepts a string and parses it with the closure, raising the
/// parse error inside the deserializer (see [`string_serde`]).
struct ParseStr<F>(F);

impl<'de, T, E, F> serde::de::Visitor<'de> for ParseStr<F>
where
    F: FnOnce(&str) -> Result<T, E>,
    E: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<DE: serde::de::Error>(self, text: &str) -> Result<T, DE> {
        (self.0)(text).map_err(DE::custom)
    }
}

pub mod chan_sip;
mod endpoint;
mod error;
mod net;
mod route;
#[cfg(test)]
mod tests;

pub use endpoint::{DirectMedia, DirectMediaMethod, DtmfMode, Endpoint, EndpointHost, Nat, Secret};
pub use error::ConfigError;
pub use net::{Cidr, Host, HostPort, Listen, PortRange, Transport};
pub use route::{Route, RouteMatch, UserTemplate};

use error::{Document, Invalid, KeyPath};

/// A config value that did not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub(crate) String);

/// The whole config file. Sections are public plain data: the loader has validated them,
/// and the server only reads them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[sip]`: listeners and identity.
    pub sip: Sip,
    /// `[timers]`: the RFC 3261 timer base.
    pub timers: Timers,
    /// `[tls]`: present only when the file has the section; needed by `tls:` listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// `[media]`: the RTP relay.
    pub media: Media,
    /// `[store]`: where registrations (and later config) persist.
    pub store: Store,
    /// `[registrar]`: accepted registration lifetimes.
    pub registrar: Registrar,
    /// `[api]`: the HTTP API and metrics.
    pub api: Api,
    /// `[log]`: log filter and SIP message tracing (beyond the shared contract).
    pub log: Log,
    /// `[calls]`: ringing and duration limits (beyond the shared contract).
    pub calls: Calls,
    /// `[features]`: DTMF feature codes (beyond the shared contract).
    pub features: Features,
    /// `[auth]`: digest realm, nonce lifetime, password-guessing defence (beyond the
    /// shared contract).
    pub auth: Auth,
    /// `[[endpoint]]`: phones and peer servers, in file order.
    #[serde(rename = "endpoint", skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// `[[route]]`: tried in file order when the dialled user is not an endpoint name.
    #[serde(rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    /// Sockets to listen on, `"udp:IP:PORT"`, `"tcp:IP:PORT"` or `"tls:IP:PORT"`.
    pub listen: Vec<Listen>,
    /// Our domain: AORs are `user@domain`.
    pub domain: String,
    /// Public IP to advertise when we are behind NAT; `""` (None) = advertise the local one.
    #[serde(with = "empty_is_none")]
    pub external_address: Option<IpAddr>,
    /// `User-Agent` / `Server` header value; `""` = send none.
    pub user_agent: String,
}

impl Default for Sip {
    fn default() -> Self {
        Sip {
            listen: vec![
                Listen { transport: Transport::Udp, addr: SocketAddr::from(([0, 0, 0, 0], 5060)) },
                Listen { transport: Transport::Tcp, addr: SocketAddr::from(([0, 0, 0, 0], 5060)) },
            ],
            domain: "pbx.example.test".to_owned(),
            external_address: None,
            user_agent: "sipbridge".to_owned(),
        }
    }
}

/// `[timers]`: RFC 3261 §17 timer base in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// T1, the RTT estimate (RFC 3261 default 500 ms). Must be > 0: every retransmit
    /// interval is a multiple of it.
    pub t1_ms: u64,
    /// T2, the cap on non-INVITE retransmit intervals (default 4000 ms); must be ≥ T1.
    pub t2_ms: u64,
    /// T4, how long a message may linger in the network (default 5000 ms).
    pub t4_ms: u64,
}

impl Timers {
    /// Largest accepted value for any timer. Transaction timeouts are 64·T1, so a T1 of
    /// a minute already means an hour-long INVITE timeout; anything larger is a unit
    /// mistake (seconds written as milliseconds the other way round is caught by t1 > 0).
    pub const MAX_MS: u64 = 60_000;

    /// T1 as a duration.
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    /// T2 as a duration.
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    /// T4 as a duration.
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1_ms: 500, t2_ms: 4000, t4_ms: 5000 }
    }
}

/// `[tls]`: certificate chain and key for `tls:` listeners, PEM files. Relative paths are
/// relative to the server's working directory. The files are read when the server starts,
/// not by the config check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key of the leaf certificate.
    pub private_key: PathBuf,
}

impl Default for Tls {
    fn default() -> Self {
        Tls { certificate: PathBuf::from("cert.pem"), private_key: PathBuf::from("key.pem") }
    }
}

/// `[media]`: the RTP relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Address put in SDP `c=` for relayed media (per endpoint: `media_address`).
    pub address: IpAddr,
    /// Relay port range; even ports carry RTP, the next odd one its RTCP.
    pub ports: PortRange,
    /// Go direct only after hearing RTP from both endpoints (DIRECT_MEDIA.md).
    pub verify_media: bool,
    /// Hang up a relayed call with no RTP in either direction for this long; 0 = never.
    pub timeout_s: u32,
    /// Send an endpoint an RTP keep-alive (one comfort-noise packet) when the relay has
    /// sent it nothing for this long, so its NAT binding stays open (Asterisk's
    /// `rtpkeepalive`, beyond the shared contract); 0 = never. Not while direct.
    pub rtp_keepalive_s: u32,
    /// Where `POST /api/calls/{id}/record` writes its WAV files (beyond the shared
    /// contract); relative to the working directory, created when first needed.
    pub record_dir: PathBuf,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            address: IpAddr::from([127, 0, 0, 1]),
            ports: PortRange::new(20000, 29999),
            verify_media: true,
            timeout_s: 60,
            rtp_keepalive_s: 0,
            record_dir: PathBuf::from("recordings"),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// `"memory"`, `"sqlite:PATH"` (default `sqlite:sipbridge.db`) or `"postgres://…"`.
    pub url: StoreUrl,
}

impl Default for Store {
    fn default() -> Self {
        Store { url: StoreUrl::Sqlite(PathBuf::from("sipbridge.db")) }
    }
}

/// Where state persists.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `"memory"`: nothing survives a restart (tests, throwaway instances).
    Memory,
    /// `"sqlite:PATH"`: a local file, relative to the working directory.
    Sqlite(PathBuf),
    /// `"postgres://…"` or `"postgresql://…"`, passed to the driver as written. Printed with
    /// its password masked, like endpoint secrets.
    Postgres(String),
}

impl StoreUrl {
    /// The URL with any password replaced by [`Secret::MASK`], for printing and logs.
    pub fn masked(&self) -> String {
        match self {
            StoreUrl::Memory => "memory".to_owned(),
            StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => match postgres_password(url) {
                Some(range) => format!("{}{}{}", &url[..range.start], Secret::MASK, &url[range.end..]),
                None => url.clone(),
            },
        }
    }
}

/// Byte range of the password in `scheme://user:password@host/…`, if there is one.
fn postgres_password(url: &str) -> Option<std::ops::Range<usize>> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let userinfo_len = rest[..authority_len].rfind('@')?;
    let colon = rest[..userinfo_len].find(':')?;
    Some(authority_start + colon + 1..authority_start + userinfo_len)
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({:?})", self.masked())
    }
}

impl fmt::Display for StoreUrl {
    /// Masked: a Display that leaked the password would end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            Ok(StoreUrl::Memory)
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(InvalidValue("`sqlite:` needs a file path, as in \"sqlite:sipbridge.db\"".to_owned()));
            }
            Ok(StoreUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if postgres_password(s).is_some_and(|range| &s[range] == Secret::MASK) {
                return Err(InvalidValue(Secret::masked_value_error()));
            }
            Ok(StoreUrl::Postgres(s.to_owned()))
        } else {
            Err(InvalidValue(format!("unsupported store {s:?}: expected \"memory\", \"sqlite:PATH\" or \"postgres://…\"")))
        }
    }
}

string_serde!(StoreUrl);

/// `[registrar]`: Expires values outside this range are clamped up (423 Interval Too
/// Brief below the minimum, RFC 3261 §10.3 step 7) or down to the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registrar {
    /// Shortest registration we accept; ≥ 1, since 0 means "unregister".
    pub min_expires_s: u32,
    /// Longest registration we grant; ≥ `min_expires_s`.
    pub max_expires_s: u32,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar { min_expires_s: 60, max_expires_s: 3600 }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// HTTP API and `/metrics` listener; `""` (None) disables both.
    #[serde(with = "empty_is_none")]
    pub listen: Option<SocketAddr>,
}

impl Default for Api {
    fn default() -> Self {
        Api { listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))) }
    }
}

/// `[calls]` (beyond the shared contract; see `docs/CONFIG.md`): no leg waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calls {
    /// How long the outbound leg may ring before the caller gets 480 (Asterisk's Dial
    /// timeout).
    pub no_answer_s: u32,
    /// The longest a call may last before both legs get BYE (12 h, as Kamailio's dialog
    /// module); 0 = no limit.
    pub max_duration_s: u32,
}

impl Default for Calls {
    fn default() -> Self {
        Calls { no_answer_s: 60, max_duration_s: 43_200 }
    }
}

/// `[auth]` (beyond the shared contract; see `docs/CONFIG.md`): digest authentication
/// and the defence against password guessing (fail2ban's rule, built in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// The digest realm; `""` means `[sip] domain`.
    pub realm: String,
    /// Digest algorithms challenged for, most preferred first (RFC 8760): `"SHA-256"`,
    /// `"MD5"`. Clients that answer the first challenge whatever it is (SIPp 3.6, some
    /// older phones) need `"MD5"` first.
    pub algorithms: Vec<String>,
    /// How long a nonce stays good before the answer is `stale=true`.
    pub nonce_lifetime_s: u32,
    /// Failed authentications from one source address within `window_s` after which
    /// its answers are slowed down by `throttle_ms` each.
    pub throttle_after: u32,
    /// The delay of each answer to a throttled source.
    pub throttle_ms: u32,
    /// Failures within `window_s` after which the source is refused (403) outright.
    pub ban_after: u32,
    /// How long a refused source stays refused.
    pub ban_s: u32,
    /// The window failures are counted in.
    pub window_s: u32,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            realm: String::new(),
            algorithms: vec!["SHA-256".to_owned(), "MD5".to_owned()],
            nonce_lifetime_s: 300,
            throttle_after: 5,
            throttle_ms: 2000,
            ban_after: 10,
            ban_s: 600,
            window_s: 300,
        }
    }
}

/// `[features]` (beyond the shared contract; see `docs/CONFIG.md`): codes callers dial
/// during a call, heard by the relay from RFC 4733 events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    /// Toggles recording of the call (e.g. `"*1"`); `""` = off. While a code is set, the
    /// media of calls with an RTP-DTMF leg stays in the relay, to hear it
    /// (DIRECT_MEDIA.md rule 5).
    pub record_toggle: String,
}

/// `[log]` (beyond the shared contract; see `docs/CONFIG.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A `tracing_subscriber::EnvFilter` directive string, e.g. `"info"` or
    /// `"warn,sipbridge=debug"`. Checked lightly at load (see `check_log_level`).
    pub level: String,
    /// Log every SIP message in and out with its peer address, like chan_sip's
    /// `sip set debug on`. `--sip-debug` on the command line turns it on too.
    pub sip_debug: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log { level: "info".to_owned(), sip_debug: false }
    }
}

impl Config {
    /// Read and validate a config file. Errors name the file, the key and its line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Ok(Config::from_toml(&text, &path.display().to_string())?)
    }

    /// Parse and validate config text; `origin` names it in errors (usually the path).
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut doc = toml::de::DeTable::parse(text).map_err(|e| ConfigError::from_toml(&e, origin, text, None))?;
        let lookup = Document::new(doc.clone());
        chan_sip::rewrite(&mut doc).map_err(|invalid| lookup.locate(invalid, origin, text))?;
        let config =
            Config::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| ConfigError::from_toml(&e, origin, text, Some(&lookup)))?;
        config.check().map_err(|invalid| lookup.locate(invalid, origin, text))?;
        Ok(config)
    }

    /// Check the cross-key rules of a config built in code (the loader already did this
    /// for a loaded one). Errors name the key but no line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(ConfigError::without_source)
    }

    /// The effective config as TOML, every key spelt out with its value, secrets masked.
    /// Loading the output gives back an equal config, except that masked secrets are
    /// refused (so a printed config cannot silently become one whose passwords are all
    /// `********`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// Every rule that involves more than one value, or a value that has no parser of its
    /// own. The first broken rule is reported.
    fn check(&self) -> Result<(), Invalid> {
        self.check_sip()?;
        self.check_timers()?;
        if let Some(tls) = &self.tls {
            for (key, path) in [("certificate", &tls.certificate), ("private_key", &tls.private_key)] {
                if path.as_os_str().is_empty() {
                    return Err(Invalid::new(KeyPath::key("tls").then(key), "must name a PEM file"));
                }
            }
        }
        let registrar = KeyPath::key("registrar");
        if self.registrar.min_expires_s == 0 {
            return Err(Invalid::new(registrar.then("min_expires_s"), "must be at least 1 (Expires: 0 means unregister)"));
        }
        if self.registrar.min_expires_s > self.registrar.max_expires_s {
            return Err(Invalid::new(
                registrar.then("min_expires_s"),
                format!(
                    "min_expires_s ({}) is greater than max_expires_s ({})",
                    self.registrar.min_expires_s, self.registrar.max_expires_s
                ),
            )
            .or_at(registrar.then("max_expires_s")));
        }
        self.check_auth()?;
        self.check_features()?;
        check_log_level(&self.log.level).map_err(|message| Invalid::new(KeyPath::key("log").then("level"), message))?;
        self.check_endpoints()?;
        self.check_routes()
    }

    fn check_sip(&self) -> Result<(), Invalid> {
        let sip = KeyPath::key("sip");
        if self.sip.listen.is_empty() {
            return Err(Invalid::new(sip.then("listen"), "needs at least one listener, such as \"udp:0.0.0.0:5060\""));
        }
        for (i, listen) in self.sip.listen.iter().enumerate() {
            let here = sip.then("listen").index(i);
            // TCP and TLS listeners are both TCP sockets: one address:port cannot be both.
            let clash = self.sip.listen[..i].iter().find(|earlier| {
                earlier.addr == listen.addr
                    && (earlier.transport == listen.transport || earlier.transport.is_stream() && listen.transport.is_stream())
            });
            if let Some(earlier) = clash {
                return Err(Invalid::new(here, format!("{listen} uses the same socket as {earlier}")));
            }
            if listen.transport == Transport::Tls && self.tls.is_none() {
                return Err(Invalid::new(here, format!("{listen} needs a [tls] section with `certificate` and `private_key`")));
            }
        }
        if let Err(InvalidValue(message)) = self.sip.domain.parse::<Host>() {
            return Err(Invalid::new(sip.then("domain"), message));
        }
        if self.sip.user_agent.chars().any(char::is_control) {
            return Err(Invalid::new(sip.then("user_agent"), "must not contain control characters (it becomes a header value)"));
        }
        Ok(())
    }

    fn check_timers(&self) -> Result<(), Invalid> {
        let timers = KeyPath::key("timers");
        let t = &self.timers;
        if t.t1_ms == 0 {
            return Err(Invalid::new(timers.then("t1_ms"), "must be greater than 0"));
        }
        if t.t2_ms < t.t1_ms {
            return Err(Invalid::new(timers.then("t2_ms"), format!("t2_ms ({}) must not be less than t1_ms ({})", t.t2_ms, t.t1_ms))
                .or_at(timers.then("t1_ms")));
        }
        for (key, value) in [("t1_ms", t.t1_ms), ("t2_ms", t.t2_ms), ("t4_ms", t.t4_ms)] {
            if value > Timers::MAX_MS {
                return Err(Invalid::new(timers.then(key), format!("{value} ms is more than the maximum of {} ms", Timers::MAX_MS)));
            }
        }
        Ok(())
    }

    fn check_endpoints(&self) -> Result<(), Invalid> {
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let here = KeyPath::key("endpoint").index(i);
            endpoint.check().map_err(|(key, message)| Invalid::new(here.then(key), message))?;
            if let Some(first) = self.endpoints[..i].iter().position(|e| e.name == endpoint.name) {
                return Err(Invalid::new(
                    here.then("name"),
                    format!("duplicate endpoint name {:?} (first defined in endpoint[{first}])", endpoint.name),
                ));
            }
        }
        Ok(())
    }

    fn check_features(&self) -> Result<(), Invalid> {
        let code = &self.features.record_toggle;
        if code.len() > 8 || !code.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            return Err(Invalid::new(
                KeyPath::key("features").then("record_toggle"),
                format!("{code:?} is not a DTMF code: up to 8 of 0-9 * # A-D"),
            ));
        }
        Ok(())
    }

    fn check_auth(&self) -> Result<(), Invalid> {
        let auth = KeyPath::key("auth");
        if self.auth.realm.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(Invalid::new(auth.then("realm"), "must not hold quotes, backslashes or control characters"));
        }
        if self.auth.algorithms.is_empty() {
            return Err(Invalid::new(auth.then("algorithms"), "needs at least one of \"SHA-256\", \"MD5\""));
        }
        for (i, a) in self.auth.algorithms.iter().enumerate() {
            if sip_core::digest::Algorithm::from_token(a).is_none() {
                return Err(Invalid::new(
                    auth.then("algorithms").index(i),
                    format!("{a:?} is not a digest algorithm we know: \"SHA-256\" or \"MD5\""),
                ));
            }
            if self.auth.algorithms[..i].iter().any(|b| b.eq_ignore_ascii_case(a)) {
                return Err(Invalid::new(auth.then("algorithms").index(i), format!("{a:?} is listed twice")));
            }
        }
        for (key, value) in [("nonce_lifetime_s", self.auth.nonce_lifetime_s), ("window_s", self.auth.window_s), ("ban_s", self.auth.ban_s)]
        {
            if value == 0 {
                return Err(Invalid::new(auth.then(key), "must be at least 1"));
            }
        }
        if self.auth.ban_after == 0 || self.auth.throttle_after == 0 {
            let key = if self.auth.ban_after == 0 { "ban_after" } else { "throttle_after" };
            return Err(Invalid::new(auth.then(key), "must be at least 1 (a source is never refused before its first failure)"));
        }
        if self.auth.throttle_after > self.auth.ban_after {
            return Err(Invalid::new(
                auth.then("throttle_after"),
                format!("throttle_after ({}) is greater than ban_after ({})", self.auth.throttle_after, self.auth.ban_after),
            ));
        }
        Ok(())
    }

    /// The digest realm in force: `[auth] realm`, else `[sip] domain`.
    pub fn realm(&self) -> &str {
        if self.auth.realm.is_empty() {
            &self.sip.domain
        } else {
            &self.auth.realm
        }
    }

    fn check_routes(&self) -> Result<(), Invalid> {
        for (i, route) in self.routes.iter().enumerate() {
            let here = KeyPath::key("route").index(i);
            if !self.endpoints.iter().any(|e| e.name == route.to) {
                return Err(Invalid::new(here.then("to"), format!("no endpoint is named {:?}", route.to)));
            }
            let groups = route.pattern.groups();
            if let Some(group) = route.user.highest_group().filter(|&g| g > groups) {
                return Err(Invalid::new(
                    here.then("user"),
                    format!("uses ${group} but `match` has {groups} capture group{}", if groups == 1 { "" } else { "s" }),
                ));
            }
        }
        Ok(())
    }

    /// The endpoint with this name (names are unique).
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// Level names `tracing` accepts, and the digits it takes for them.
const LEVELS: [&str; 12] = ["off", "error", "warn", "info", "debug", "trace", "0", "1", "2", "3", "4", "5"];

/// A light check of an EnvFilter directive string, so that a typo fails `check-config`
/// rather than silently logging nothing. Stricter than EnvFilter in one way: a bare word
/// must be a level (EnvFilter would take `inof` as a target name and enable it at
/// `trace`); write `target=level` for a target. Span and field filters (`[…]`) are
/// passed through for the server's EnvFilter to judge.
fn check_log_level(filter: &str) -> Result<(), String> {
    let is_level = |word: &str| LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word));
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.chars().any(char::is_whitespace) {
            return Err(format!("directive {directive:?} contains whitespace"));
        }
        match directive.rsplit_once('=') {
            Some((target, level)) if !level.contains([']', '}']) => {
                if target.is_empty() || !is_level(level) {
                    return Err(format!(
                        "directive {directive:?} is not TARGET=LEVEL with LEVEL one of off, error, warn, info, debug, trace"
                    ));
                }
            }
            _ if directive.contains('[') => {}
            _ => {
                if !is_level(directive) {
                    return Err(format!(
                        "{directive:?} is not a level (off, error, warn, info, debug, trace); for a target write \"{directive}=trace\""
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `Option<T>` written as `""` for None, so the printed config shows every key (TOML has
/// no null) and `external_address = ""` reads as "not set".
mod empty_is_none {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<T: Display, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        d.deserialize_str(super::ParseStr(|text: &str| match text {
            "" => Ok(None),
            _ => text.parse().map(Some).map_err(|e| format!("{e}: {text:?} (or \"\" for none)")),
        }))
    }
}
