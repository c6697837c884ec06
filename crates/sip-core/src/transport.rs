//! What the engine knows of transports: which one, which socket, which peer.

use bytes::Bytes;
use sip_message::Via;
use std::net::{IpAddr, SocketAddr};

/// The transports sipbridge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, so the transaction layer retransmits.
    Udp,
    /// TCP: reliable, connection-oriented.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Reliable transports skip Timers A, E, G and zero D, I, J, K (§17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token (§20.42).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The default port (§19.1.2): 5060, or 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    /// The same transport as the message layer names it (for building Via rows).
    pub fn to_message(self) -> sip_message::Transport {
        match self {
            Transport::Udp => sip_message::Transport::Udp,
            Transport::Tcp => sip_message::Transport::Tcp,
            Transport::Tls => sip_message::Transport::Tls,
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection the driver opened or accepted (TCP, TLS). Opaque to the engine; the
/// driver never reuses a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The transport.
    pub transport: Transport,
    /// Our socket: the UDP socket or the listening address a connection belongs to.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// For TCP/TLS, the connection to use; `None` asks the driver to open one to `remote`.
    pub connection: Option<ConnectionId>,
}

/// An instruction to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send `payload` (one whole SIP message or keep-alive) over `flow`. On a connection
    /// that is gone, the driver connects to `flow.remote` (§18.2.2).
    Send {
        /// Where.
        flow: Flow,
        /// What.
        payload: Bytes,
    },
    /// Close this connection: its framing is broken (§18.3, RFC 4475 §3.1.2.2).
    Close {
        /// Which.
        connection: ConnectionId,
    },
}

impl Transmit {
    /// The payload of a `Send`.
    pub fn payload(&self) -> Option<&Bytes> {
        match self {
            Transmit::Send { payload, .. } => Some(payload),
            Transmit::Close { .. } => None,
        }
    }
}

/// Where the responses to a request go (§18.2.2, RFC 3581 §4), worked out once from its
/// top Via and where it came from.
///
/// - Reliable transport: the connection the request came on; if that is gone, a new one
///   to the `received` address and the sent-by port.
/// - `maddr` holding an IP address: that address, sent-by port (multicast is not used
///   by sipbridge; a unicast maddr is honoured).
/// - Otherwise the source IP (it equals `received`, which a server adds whenever sent-by
///   differs, §18.2.1), and the source port when `rport` was asked for, else the
///   sent-by port or the transport's default.
pub fn response_flow(via: &Via, source: &Flow) -> Flow {
    let sent_by_port = via.port().unwrap_or(source.transport.default_port());
    if source.transport.is_reliable() {
        return Flow { remote: SocketAddr::new(source.remote.ip(), sent_by_port), ..*source };
    }
    if let Some(ip) = via.maddr().and_then(|m| m.parse::<IpAddr>().ok()) {
        return Flow { remote: SocketAddr::new(ip, sent_by_port), ..*source };
    }
    let port = if via.rport().is_some() { source.remote.port() } else { sent_by_port };
    Flow { remote: SocketAddr::new(source.remote.ip(), port), ..*source }
}

/// Whether the top Via needs `received` (§18.2.1: sent-by is not the source IP) and
/// `rport` filled in (RFC 3581 §4: the client asked for it).
pub(crate) fn stamp_via(via: &Via, source: &Flow) -> Option<Via> {
    let source_ip = source.remote.ip();
    let host_is_source = via.host().ip() == Some(source_ip);
    let wants_rport = matches!(via.rport(), Some(None));
    if host_is_source && !wants_rport {
        return None;
    }
    let mut v = via.clone();
    if !host_is_source || wants_rport {
        // RFC 3581 §4: with rport, received is added even when sent-by matches.
        let mut ip = Vec::with_capacity(15);
        match source_ip {
            IpAddr::V4(a) => sip_message::digits::push_ipv4(&mut ip, a),
            a @ IpAddr::V6(_) => ip.extend_from_slice(a.to_string().as_bytes()),
        }
        v.params_mut().set("received", Some(Bytes::from(ip)));
    }
    if wants_rport {
        let mut port = Vec::with_capacity(5);
        sip_message::digits::push_u64(&mut port, u64::from(source.remote.port()));
        v.params_mut().set("rport", Some(Bytes::from(port)));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn via(s: &'static str) -> Via {
        Via::parse(&Bytes::from_static(s.as_bytes())).expect("via")
    }

    fn udp(remote: &str) -> Flow {
        Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().expect("addr"),
            remote: remote.parse().expect("addr"),
            connection: None,
        }
    }

    #[test]
    fn udp_responses_follow_18_2_2_and_rport() {
        let src = udp("192.0.2.9:40000");
        assert_eq!(response_flow(&via("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1"), &src).remote, "192.0.2.9:5060".parse().expect("a"));
        assert_eq!(response_flow(&via("SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bK1"), &src).remote, "192.0.2.9:5070".parse().expect("a"));
        assert_eq!(
            response_flow(&via("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK1"), &src).remote,
            "192.0.2.9:40000".parse().expect("a")
        );
        assert_eq!(
            response_flow(&via("SIP/2.0/UDP h;maddr=192.0.2.77;branch=z9hG4bK1"), &src).remote,
            "192.0.2.77:5060".parse().expect("a")
        );
    }

    #[test]
    fn reliable_responses_reuse_the_connection() {
        let src = Flow { transport: Transport::Tcp, connection: Some(ConnectionId(7)), ..udp("192.0.2.9:40000") };
        let f = response_flow(&via("SIP/2.0/TCP h:5080;branch=z9hG4bK1"), &src);
        assert_eq!(f.connection, Some(ConnectionId(7)));
        assert_eq!(f.remote, "192.0.2.9:5080".parse().expect("a"));
    }

    #[test]
    fn received_and_rport_are_stamped() {
        let src = udp("192.0.2.9:40000");
        assert!(stamp_via(&via("SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1"), &src).is_none());
        let v = stamp_via(&via("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1"), &src).expect("stamped");
        assert_eq!(v.received(), Some("192.0.2.9"));
        assert_eq!(v.rport(), None);
        let v = stamp_via(&via("SIP/2.0/UDP 192.0.2.9;rport;branch=z9hG4bK1"), &src).expect("stamped");
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(v.received(), Some("192.0.2.9"));
    }
}
