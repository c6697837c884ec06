//! NAT detection from signalling (`nat = auto`, CONFIG.md): what a request says about
//! where its sender thinks it is, against where it came from.
//!
//! Evidence, strongest first:
//! - the top Via's sent-by is an address other than the packet's source address
//!   (RFC 3261 §18.2.1 would stamp `received`), or over UDP a port other than the source
//!   port (RFC 3581 `rport`);
//! - the Contact names a private address (RFC 1918, RFC 6598 shared space, RFC 4193
//!   unique-local, link-local) while the packet came from a public one;
//! - so does the SDP's audio connection address.
//!
//! A sent-by that is a host name proves nothing (we do not resolve names here); it is
//! not taken as evidence. The result is kept per registration and per call leg, so the
//! direct-media `nonat` rule can say why it kept the media relayed.

use crate::transport::{Flow, Transport};
use sip_message::{Host, Request, Uri};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Why a request looks as if it crossed a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatEvidence {
    /// The top Via says one address (or UDP port), the packet came from another.
    Via {
        /// The Via's sent-by.
        sent_by: SocketAddr,
        /// The packet's source.
        source: SocketAddr,
    },
    /// The Contact names a private address; the packet came from a public one.
    PrivateContact {
        /// The Contact's address.
        contact: IpAddr,
        /// The packet's source.
        source: SocketAddr,
    },
    /// The SDP names a private media address; the packet came from a public one.
    PrivateSdp {
        /// The SDP's audio address.
        sdp: IpAddr,
        /// The packet's source.
        source: SocketAddr,
    },
    /// Not detected: the endpoint is configured `nat = yes`.
    Configured,
}

impl fmt::Display for NatEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatEvidence::Via { sent_by, source } => write!(f, "Via says {sent_by}, packets come from {source}"),
            NatEvidence::PrivateContact { contact, source } => write!(f, "Contact says {contact}, packets come from {source}"),
            NatEvidence::PrivateSdp { sdp, source } => write!(f, "SDP says {sdp}, packets come from {source}"),
            NatEvidence::Configured => f.write_str("configured nat = yes"),
        }
    }
}

impl NatEvidence {
    /// Reads back what [`fmt::Display`] wrote (the store keeps the words).
    pub fn parse(text: &str) -> Option<NatEvidence> {
        if text == "configured nat = yes" {
            return Some(NatEvidence::Configured);
        }
        let (head, source) = text.split_once(", packets come from ")?;
        let source = source.parse().ok()?;
        if let Some(v) = head.strip_prefix("Via says ") {
            return Some(NatEvidence::Via { sent_by: v.parse().ok()?, source });
        }
        if let Some(v) = head.strip_prefix("SDP says ") {
            return Some(NatEvidence::PrivateSdp { sdp: v.parse().ok()?, source });
        }
        let contact = head.strip_prefix("Contact says ")?.parse().ok()?;
        Some(NatEvidence::PrivateContact { contact, source })
    }
}

/// Whether `ip` is an address no packet from the internet carries: RFC 1918, RFC 6598
/// (carrier-grade NAT), link-local, RFC 4193 unique-local.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private() || v.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `ip` is loopback or private: a source like that is on our side of any NAT.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || is_private(ip)
}

/// The evidence, if any, that `request` (received over `source`) crossed a NAT.
pub fn detect(request: &Request, source: &Flow) -> Option<NatEvidence> {
    let via = request.via();
    let remote = source.remote;
    if let Some(ip) = via.host().ip() {
        let default = if source.transport == Transport::Tls { 5061 } else { 5060 };
        let sent_by = SocketAddr::new(ip, via.port().unwrap_or(default));
        // Only a datagram's source port says anything: a TCP connection's source port
        // is ephemeral whatever the sent-by says.
        let port_differs = source.transport == Transport::Udp && sent_by.port() != remote.port();
        if ip != remote.ip() || port_differs {
            return Some(NatEvidence::Via { sent_by, source: remote });
        }
    }
    if is_local(remote.ip()) {
        return None;
    }
    let contact = request.contacts().addrs().iter().find_map(|c| {
        let ip = contact_ip(c.uri())?;
        is_private(ip).then_some(NatEvidence::PrivateContact { contact: ip, source: remote })
    });
    contact.or_else(|| {
        let is_sdp = request.content_type().is_some_and(|t| t.is("application", "sdp"));
        let sdp = sdp::SessionDescription::parse(request.body()).ok().filter(|_| is_sdp)?;
        let ip = sdp.audio_address()?.ip();
        is_private(ip).then_some(NatEvidence::PrivateSdp { sdp: ip, source: remote })
    })
}

fn contact_ip(uri: &Uri) -> Option<IpAddr> {
    match uri.as_sip()?.host() {
        Host::Domain(_) => None,
        h => h.ip(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use sip_message::Message;

    fn request(via: &str, contact: &str) -> Request {
        let text = format!(
            "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKx;rport\r\nFrom: <sip:a@pbx.test>;tag=1\r\nTo: <sip:a@pbx.test>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(Bytes::from(text)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn flow(t: Transport, remote: &str) -> Flow {
        Flow { transport: t, local: "127.0.0.1:5060".parse().unwrap(), remote: remote.parse().unwrap(), connection: None }
    }

    #[test]
    fn same_address_is_no_nat() {
        let r = request("192.0.2.10:5062", "sip:a@192.0.2.10:5062");
        assert_eq!(detect(&r, &flow(Transport::Udp, "192.0.2.10:5062")), None);
        // sent-by without port means 5060.
        let r = request("192.0.2.10", "sip:a@192.0.2.10");
        assert_eq!(detect(&r, &flow(Transport::Udp, "192.0.2.10:5060")), None);
    }

    #[test]
    fn via_address_or_udp_port_differs() {
        let r = request("10.0.0.5:5060", "sip:a@10.0.0.5");
        let e = detect(&r, &flow(Transport::Udp, "203.0.113.7:40000")).unwrap();
        assert_eq!(e, NatEvidence::Via { sent_by: "10.0.0.5:5060".parse().unwrap(), source: "203.0.113.7:40000".parse().unwrap() });
        assert_eq!(e.to_string(), "Via says 10.0.0.5:5060, packets come from 203.0.113.7:40000");
        let r = request("203.0.113.7:5060", "sip:a@203.0.113.7");
        assert!(matches!(detect(&r, &flow(Transport::Udp, "203.0.113.7:40000")), Some(NatEvidence::Via { .. })));
        // Over TCP the source port is ephemeral: not evidence.
        assert_eq!(detect(&r, &flow(Transport::Tcp, "203.0.113.7:40000")), None);
    }

    #[test]
    fn private_contact_from_a_public_source() {
        // A phone that fixed its Via (STUN) but not its Contact.
        let r = request("203.0.113.7:5060", "sip:a@192.168.1.20:5060");
        let e = detect(&r, &flow(Transport::Udp, "203.0.113.7:5060")).unwrap();
        assert!(matches!(e, NatEvidence::PrivateContact { contact, .. } if contact.to_string() == "192.168.1.20"));
        // The same from a private source is a LAN phone.
        let r = request("192.168.1.20:5060", "sip:a@192.168.1.20:5060");
        assert_eq!(detect(&r, &flow(Transport::Udp, "192.168.1.20:5060")), None);
        // A host name in the Via proves nothing.
        let r = request("phone.example:5060", "sip:a@phone.example");
        assert_eq!(detect(&r, &flow(Transport::Udp, "203.0.113.7:5060")), None);
    }

    #[test]
    fn words_read_back() {
        let all = [
            NatEvidence::Via { sent_by: "10.0.0.5:5060".parse().unwrap(), source: "203.0.113.7:40000".parse().unwrap() },
            NatEvidence::PrivateContact { contact: "fd00::5".parse().unwrap(), source: "[2001:db8::7]:5060".parse().unwrap() },
            NatEvidence::PrivateSdp { sdp: "10.0.0.5".parse().unwrap(), source: "203.0.113.7:5060".parse().unwrap() },
            NatEvidence::Configured,
        ];
        for e in all {
            assert_eq!(NatEvidence::parse(&e.to_string()), Some(e));
        }
        assert_eq!(NatEvidence::parse("Via says nonsense, packets come from 1.2.3.4:5"), None);
        assert_eq!(NatEvidence::parse(""), None);
    }

    #[test]
    fn private_sdp_from_a_public_source() {
        // Via and Contact fixed by an ALG or STUN, the SDP not.
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let text = format!(
            "INVITE sip:b@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKx\r\nFrom: <sip:a@pbx.test>;tag=1\r\nTo: <sip:b@pbx.test>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:a@203.0.113.7:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let Message::Request(r) = Message::parse(Bytes::from(text)).unwrap() else { unreachable!() };
        let e = detect(&r, &flow(Transport::Udp, "203.0.113.7:5060")).unwrap();
        assert_eq!(e.to_string(), "SDP says 10.0.0.5, packets come from 203.0.113.7:5060");
        assert_eq!(detect(&r, &flow(Transport::Udp, "10.0.0.7:5060")).map(|e| matches!(e, NatEvidence::Via { .. })), Some(true));
    }

    #[test]
    fn private_ranges() {
        for p in ["10.1.2.3", "172.16.0.1", "192.168.0.1", "100.64.0.1", "169.254.1.1", "fd00::1", "fe80::1"] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["203.0.113.7", "100.128.0.1", "8.8.8.8", "2001:db8::1", "127.0.0.1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }
}
