//! The Via header (RFC 3261 §20.42, §18.2.1, RFC 3581 rport), CSeq (§20.16) and methods.

use crate::scan::{self, Cursor};
use crate::text::Text;
use crate::uri::{Host, Params};
use bytes::Bytes;
use std::fmt;

/// The transport of a Via (`sent-protocol` transport). Unknown tokens are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
    /// Any other token, as received.
    Other(Text),
}

impl Transport {
    /// Recognises a transport token (any case).
    pub fn from_token(t: &Bytes) -> Transport {
        Transport::from_range(t, 0, t.len())
    }

    /// Recognises `buf[s..e]`; only an unknown token takes a slice.
    pub(crate) fn from_range(buf: &Bytes, s: usize, e: usize) -> Transport {
        let t = &buf[s..e];
        // Nearly every Via says UDP or TCP, in upper case.
        match t {
            b"UDP" => return Transport::Udp,
            b"TCP" => return Transport::Tcp,
            _ => {}
        }
        let known = [
            ("UDP", Transport::Udp),
            ("TCP", Transport::Tcp),
            ("TLS", Transport::Tls),
            ("SCTP", Transport::Sctp),
            ("WS", Transport::Ws),
            ("WSS", Transport::Wss),
        ];
        for (n, tr) in known {
            if t.eq_ignore_ascii_case(n.as_bytes()) {
                return tr;
            }
        }
        Transport::Other(Text::from_checked(buf.slice(s..e)))
    }

    /// The canonical token.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        }
    }

    /// Whether the transport is reliable (RFC 3261 §17: timers A/E/G are skipped).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

static SIP: Text = Text::from_static("SIP");
static SIP_2_0: Text = Text::from_static("2.0");

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version when they are not exactly `SIP` and `2.0` (boxed: almost
    /// every Via has those, and a smaller Via is cheaper to move).
    other_protocol: Option<Box<(Text, Text)>>,
    transport: Transport,
    host: Host,
    port: Option<u16>,
    params: Params,
}

impl Via {
    /// `SIP/2.0/<transport> host[:port];branch=<branch>`.
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(Bytes::copy_from_slice(branch.as_bytes())));
        Via { other_protocol: None, transport, host, port, params }
    }

    /// Protocol name (`SIP`).
    pub fn protocol(&self) -> &Text {
        self.other_protocol.as_ref().map_or(&SIP, |p| &p.0)
    }
    /// Protocol version (`2.0`).
    pub fn version(&self) -> &Text {
        self.other_protocol.as_ref().map_or(&SIP_2_0, |p| &p.1)
    }
    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
    /// `sent-by` host.
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// `sent-by` port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// Mutable parameters (to add `received`/`rport`, RFC 3581 §4).
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value_str("branch")
    }
    /// Whether the branch starts with the RFC 3261 magic cookie `z9hG4bK` (§8.1.1.7).
    /// A bare cookie (RFC 4475 `badbranch`) does not count: it identifies nothing.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.len() > 7 && b.starts_with("z9hG4bK"))
    }
    /// `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value_str("received")
    }
    /// `rport`: `None` if absent, `Some(None)` without value, `Some(Some(p))` with one.
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.get("rport")?;
        Some(p.value().and_then(|v| scan::parse_u64(v)).and_then(|n| u16::try_from(n).ok()))
    }
    /// `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.params.value_str("maddr")
    }
    /// `ttl` parameter (0–255).
    pub fn ttl(&self) -> Option<u8> {
        self.params.value("ttl").and_then(scan::parse_u64).and_then(|n| u8::try_from(n).ok())
    }

    /// Parses one Via value (one element of the comma-separated list).
    pub fn parse(v: &Bytes) -> Result<Via, usize> {
        Via::parse_at(v, 0, v.len())
    }

    /// Parses `v[s..e]` in place; errors are offsets in `v`.
    pub(crate) fn parse_at(v: &Bytes, s: usize, e: usize) -> Result<Via, usize> {
        let mut c = Cursor::range(v, s, e);
        c.skip_ws();
        let protocol = c.skip_token().ok_or(c.pos)?;
        if !c.eat(b'/') {
            return Err(c.pos);
        }
        c.skip_ws();
        let version = c.skip_token().ok_or(c.pos)?;
        if !c.eat(b'/') {
            return Err(c.pos);
        }
        c.skip_ws();
        let transport = c.skip_token().ok_or(c.pos)?;
        let before = c.pos;
        c.skip_ws();
        if c.pos == before {
            return Err(c.pos); // LWS is required before sent-by
        }
        let hs = c.pos;
        let host = if c.peek() == Some(b'[') {
            c.pos = scan::find(v, hs, b']').filter(|&x| x < c.end).ok_or(hs)? + 1;
            Host::parse_at(v, hs, c.pos).ok_or(hs)?
        } else {
            // The run of host characters is the host: no second pass to check them.
            let (_, he) = c.skip_class(scan::HOST);
            Host::from_host_run(v, hs, he).ok_or(hs)?
        };
        let mut port = None;
        let save = c.pos;
        if c.eat(b':') {
            c.skip_ws();
            let (ps, pe) = c.skip_while(|ch| ch.is_ascii_digit());
            port = Some(scan::parse_u64(&v[ps..pe]).and_then(|n| u16::try_from(n).ok()).ok_or(save)?);
        }
        let params = Params::parse(&mut c, scan::TOKEN, scan::GEN_VALUE)?;
        c.skip_ws();
        if !c.at_end() {
            return Err(c.pos);
        }
        Ok(Via {
            other_protocol: if &v[protocol.0..protocol.1] == b"SIP" && &v[version.0..version.1] == b"2.0" {
                None
            } else {
                Some(Box::new((Text::common_at(v, protocol.0, protocol.1, &["SIP"]), Text::common_at(v, version.0, version.1, &["2.0"]))))
            },
            transport: Transport::from_range(v, transport.0, transport.1),
            host,
            port,
            params,
        })
    }

    /// Appends the canonical form.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.protocol().as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.version().as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.transport.as_str().as_bytes());
        out.push(b' ');
        self.host.write(out);
        if let Some(p) = self.port {
            out.push(b':');
            crate::digits::push_u64(out, u64::from(p));
        }
        self.params.write(out);
    }

    /// Canonical wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut v = Vec::with_capacity(64);
        self.write(&mut v);
        Bytes::from(v)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// A request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// PUBLISH (RFC 3903)
    Publish,
    /// INFO (RFC 6086)
    Info,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// UPDATE (RFC 3311)
    Update,
    /// Any other token, as received.
    Extension(Text),
}

impl Method {
    /// Recognises a method token (exact case). `None` if not a token.
    pub fn from_token(t: &Bytes) -> Option<Method> {
        Method::from_range(t, 0, t.len())
    }

    /// Recognises `buf[s..e]`; only an extension method takes a slice.
    pub(crate) fn from_range(buf: &Bytes, s: usize, e: usize) -> Option<Method> {
        let t = &buf[s..e];
        // The known methods are tokens: only an extension needs the check.
        Some(match t {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            _ if scan::all_token(t) => Method::Extension(Text::from_checked(buf.slice(s..e))),
            _ => return None,
        })
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Extension(t) => t,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CSeq header: a 32-bit sequence number and a method (§20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31 when we generate it, any u32 accepted).
    pub seq: u32,
    /// Method; must equal the request's (§8.2).
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; overlarge numbers are refused, never wrapped.
    pub fn parse(v: &Bytes) -> Result<CSeq, usize> {
        CSeq::parse_at(v, 0, v.len())
    }

    /// Parses `v[s..e]` in place; errors are offsets in `v`.
    pub(crate) fn parse_at(v: &Bytes, s: usize, e: usize) -> Result<CSeq, usize> {
        // A local index over the value (a cursor would store its position every byte);
        // errors are offsets in `v`, as before.
        let b = v.get(s..e).unwrap_or_default();
        let ws = |mut i: usize| {
            while i < b.len() && scan::is_ws(b[i]) {
                i += 1;
            }
            i
        };
        let ns = ws(0);
        let mut i = ns;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let seq = scan::parse_u32(&b[ns..i]).ok_or(s + i)?;
        let before = i;
        i = ws(i);
        if i == before {
            return Err(s + i);
        }
        let ms = i;
        i += scan::run(&b[i..], scan::TOKEN);
        let method = Method::from_range(v, s + ms, s + i).ok_or(s + i)?;
        i = ws(i);
        if i != b.len() {
            return Err(s + i);
        }
        Ok(CSeq { seq, method })
    }

    /// Canonical form.
    pub fn to_bytes(&self) -> Bytes {
        let method = self.method.as_str().as_bytes();
        let mut v = Vec::with_capacity(11 + method.len());
        crate::digits::push_u64(&mut v, u64::from(self.seq));
        v.push(b' ');
        v.extend_from_slice(method);
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_odd_spacing() {
        let v = Via::parse(&Bytes::from_static(b"SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8")).expect("via");
        assert_eq!(v.transport(), &Transport::Tcp);
        assert_eq!(v.host(), &Host::Domain(Text::from("spindle.example.com")));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
    }

    #[test]
    fn via_params() {
        let v = Via::parse(&Bytes::from_static(
            b"SIP/2.0/UDP [2001:db8::9]:5070;rport;received=2001:db8::1;maddr=224.2.0.1;ttl=16;branch=z9hG4bKx",
        ))
        .expect("via");
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("2001:db8::1"));
        assert_eq!(v.maddr(), Some("224.2.0.1"));
        assert_eq!(v.ttl(), Some(16));
        assert!(v.has_rfc3261_branch());
        let w = Via::parse(&Bytes::from_static(b"SIP/2.0/FOO h;rport=5060;branch=z9hG4bK")).expect("via");
        assert_eq!(w.transport(), &Transport::Other(Text::from("FOO")));
        assert_eq!(w.rport(), Some(Some(5060)));
        assert!(!w.has_rfc3261_branch());
        let again = Via::parse(&v.to_bytes()).expect("reparse");
        assert_eq!(again, v);
    }

    #[test]
    fn via_refusals() {
        for s in ["SIP/2.0/UDP 192.0.2.15;;", "SIP/2.0 host", "SIP/2.0/UDPhost", "SIP/2.0/UDP host:70000", ""] {
            assert!(Via::parse(&Bytes::from_static(s.as_bytes())).is_err(), "{s}");
        }
    }

    #[test]
    fn cseq() {
        let c = CSeq::parse(&Bytes::from_static(b"0009 INVITE")).expect("cseq");
        assert_eq!(c, CSeq { seq: 9, method: Method::Invite });
        assert!(CSeq::parse(&Bytes::from_static(b"36893488147419103232 REGISTER")).is_err());
        assert!(CSeq::parse(&Bytes::from_static(b"1INVITE")).is_err());
        assert!(CSeq::parse(&Bytes::from_static(b"-1 INVITE")).is_err());
    }
}
