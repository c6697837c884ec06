//! Network values written as strings in the config: listeners, CIDRs, static hosts and
//! the relay port range. Each parses in `FromStr`, so a bad value is reported at its
//! position in the file.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvalidValue;
use sip_core::media_policy::IpNet;

/// SIP transport of a listener or of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 3261 §18 over UDP.
    #[default]
    Udp,
    /// Over TCP, framed by Content-Length.
    Tcp,
    /// Over TLS on TCP (RFC 3261 §26.2).
    Tls,
}

impl Transport {
    /// The lowercase config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// TCP and TLS: a connection-oriented stream (and a TCP socket).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[sip].listen` entry: `"udp:0.0.0.0:5060"`, `"tcp:[::]:5060"`, `"tls:0.0.0.0:5061"`.
/// Port 0 asks the OS for a free port (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    /// Transport of the socket.
    pub transport: Transport,
    /// Local address and port to bind.
    pub addr: SocketAddr,
}

impl FromStr for Listen {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidValue(format!("invalid listen address {s:?}: expected \"udp:IP:PORT\", \"tcp:IP:PORT\" or \"tls:IP:PORT\""));
        let (transport, addr) = s.split_once(':').ok_or_else(bad)?;
        let transport = match transport {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return Err(bad()),
        };
        let addr = addr.parse().map_err(|_| bad())?;
        Ok(Listen { transport, addr })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// An address block, `"10.0.0.0/8"`, `"2001:db8::/32"`, or one address (`"192.0.2.7"` is
/// `/32`). Host bits must be zero: `"10.0.0.1/8"` is refused because it is usually a typo
/// for a narrower block, and silently widening it would permit more than meant. The
/// matching is [`IpNet`]'s (an IPv4-mapped IPv6 address is taken as IPv4, in the block
/// as in the address looked up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// A block; None when `prefix` is longer than the address or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        IpNet::new(addr, prefix).filter(|n| n.network() == n.addr()).map(Cidr)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.0.prefix()
    }

    /// Whether `ip` is inside the block ([`IpNet::contains`]).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The block as the direct-media policy reads it.
    pub fn net(&self) -> IpNet {
        self.0
    }
}

impl FromStr for Cidr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidValue(format!("invalid CIDR {s:?}: {why}"));
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("expected ADDRESS/PREFIX such as \"10.0.0.0/8\" or \"2001:db8::/32\""))?;
        // An IPv4-mapped IPv6 block is an IPv4 block (that is how addresses are matched).
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(text) => match text.parse::<u8>() {
                Ok(p) if p <= max && !text.starts_with('+') => p,
                _ => return Err(bad(&format!("prefix must be a number from 0 to {max}"))),
            },
        };
        Cidr::new(addr, prefix).ok_or_else(|| {
            let network = IpNet::new(addr, prefix).map_or(addr, |n| n.network());
            bad(&format!("address has bits set past the /{prefix} prefix (did you mean \"{network}/{prefix}\"?)"))
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The host part of a static endpoint or of our domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal address.
    Ip(IpAddr),
    /// A DNS name, resolved by the server.
    Name(String),
}

impl FromStr for Host {
    type Err = InvalidValue;

    /// An IP address (IPv6 with or without brackets) or a DNS name: dot-separated labels
    /// of letters, digits and inner hyphens, at most 63 bytes each and 253 in all.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unbracketed = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        if let Ok(ip) = unbracketed.unwrap_or(s).parse() {
            return Ok(Host::Ip(ip));
        }
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if s.len() <= 253 && s.split('.').all(label_ok) {
            Ok(Host::Name(s.to_owned()))
        } else {
            Err(InvalidValue(format!("{s:?} is neither an IP address nor a host name")))
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A static endpoint address, `"HOST:PORT"`, `"[2001:db8::1]:5060"`, or `"HOST"` alone
/// (port None: the transport's default port, [`Transport::default_port`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Address or DNS name.
    pub host: Host,
    /// Port; None = the transport's default.
    pub port: Option<u16>,
}

impl FromStr for HostPort {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return HostPort::checked(Host::Ip(addr.ip()), Some(addr.port()), s);
        }
        // A bare IPv6 address has colons of its own: try the whole string as a host first.
        if let Ok(host) = s.parse() {
            return Ok(HostPort { host, port: None });
        }
        let bad = || InvalidValue(format!("invalid host {s:?}: expected \"dynamic\" or \"HOST:PORT\""));
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let host = host.parse().map_err(|InvalidValue(why)| InvalidValue(format!("invalid host {s:?}: {why}")))?;
        HostPort::checked(host, Some(port), s)
    }
}

impl HostPort {
    fn checked(host: Host, port: Option<u16>, text: &str) -> Result<HostPort, InvalidValue> {
        if port == Some(0) {
            return Err(InvalidValue(format!("invalid host {text:?}: port 0 cannot be sent to")));
        }
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// The relay's UDP port range, `"20000-29999"`. It starts on an even port so that ports
/// pair up as (even RTP, odd RTCP), RFC 3550 §11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// A range; the caller guarantees `first` is even, nonzero and below `last`
    /// (config text goes through `FromStr`, which checks).
    pub(crate) const fn new(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    /// First port (even).
    pub fn first(&self) -> u16 {
        self.first
    }

    /// Last port (inclusive).
    pub fn last(&self) -> u16 {
        self.last
    }

    /// How many RTP/RTCP pairs fit, i.e. how many relayed legs at once.
    pub fn pairs(&self) -> u16 {
        // (last - first + 1) ports, two per pair, a trailing even port unused.
        (self.last - self.first).div_ceil(2)
    }
}

impl FromStr for PortRange {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidValue(format!("invalid port range {s:?}: {why}"));
        let (first, last) = s.split_once('-').ok_or_else(|| bad("expected FIRST-LAST such as \"20000-29999\""))?;
        let port = |p: &str| p.trim().parse::<u16>().map_err(|_| bad("ports are numbers from 1 to 65535"));
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || first % 2 != 0 {
            return Err(bad("the first port must be even and nonzero (even ports carry RTP, odd ones RTCP)"));
        }
        if last <= first {
            return Err(bad("the last port must be above the first, with room for at least one RTP/RTCP pair"));
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

string_serde!(Listen, Cidr, HostPort, PortRange);
