//! The transaction layer (RFC 3261 §17, RFC 6026): four machines, one file each, and the
//! matching rules that find the transaction a message belongs to.

pub(crate) mod client_invite;
pub(crate) mod client_non_invite;
pub(crate) mod server_invite;
pub(crate) mod server_non_invite;

use crate::timers::Timer;
use crate::transport::Flow;
use crate::Time;
use bytes::Bytes;
use sip_message::{HeaderName, Method, Request, Response, Via};
use std::fmt::Write as _;
use std::sync::Arc;

pub(crate) use client_invite::ClientInvite;
pub(crate) use client_non_invite::ClientNonInvite;
pub(crate) use server_invite::ServerInvite;
pub(crate) use server_non_invite::ServerNonInvite;

/// A transaction handle: a generational slab key, so a stale handle never reaches a
/// newer transaction that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId {
    index: u32,
    generation: u32,
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tx{}.{}", self.index, self.generation)
    }
}

/// Why a transaction ended without a response from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A timer ran out: B (INVITE client), F (non-INVITE client), H (no ACK).
    Timeout(Timer),
    /// The transport reported an error (§17.1.1.2, §17.1.2.2, §17.2.4).
    Transport,
    /// Client: our CANCEL went out and no final response came within 64·T1 (§9.1); the
    /// INVITE counts as cancelled.
    Cancelled,
    /// Server: the layer above never answered the request within its limit; the endpoint
    /// answered it with 500 (INVITE) or let it go (non-INVITE, the client gave up long ago).
    Unanswered,
}

impl Failure {
    /// The response the TU acts on (§8.1.3.1): 408 for a timeout, 503 for a transport error.
    pub fn status(self) -> u16 {
        match self {
            Failure::Timeout(_) => 408,
            Failure::Transport => 503,
            Failure::Cancelled => 487,
            Failure::Unanswered => 500,
        }
    }
}

/// What a machine asks for: messages to send over the transaction's flow, and news for
/// the layer above.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub send: Vec<Bytes>,
    pub up: Vec<Up>,
}

// A response is moved once, straight to the event queue; boxing it would cost an
// allocation per response to save a copy per failure.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Up {
    Response(Response),
    Failed(Failure),
    ServerFailed(Failure),
    /// The server transaction's limit for an answer from the TU passed (INVITE: the
    /// endpoint answers 500 itself).
    Unanswered,
}

// The RFC's names for the four machines.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
pub(crate) enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    pub fn deadline(&self) -> Option<Time> {
        match self {
            Machine::ClientInvite(m) => m.deadline(),
            Machine::ClientNonInvite(m) => m.deadline(),
            Machine::ServerInvite(m) => m.deadline(),
            Machine::ServerNonInvite(m) => m.deadline(),
        }
    }

    pub fn is_terminated(&self) -> bool {
        match self {
            Machine::ClientInvite(m) => m.is_terminated(),
            Machine::ClientNonInvite(m) => m.is_terminated(),
            Machine::ServerInvite(m) => m.is_terminated(),
            Machine::ServerNonInvite(m) => m.is_terminated(),
        }
    }

    pub fn on_timeout(&mut self, now: Time, fx: &mut Effects) {
        match self {
            Machine::ClientInvite(m) => m.on_timeout(now, fx),
            Machine::ClientNonInvite(m) => m.on_timeout(now, fx),
            Machine::ServerInvite(m) => m.on_timeout(now, fx),
            Machine::ServerNonInvite(m) => m.on_timeout(now, fx),
        }
    }

    pub fn on_transport_error(&mut self, fx: &mut Effects) {
        match self {
            Machine::ClientInvite(m) => m.on_transport_error(fx),
            Machine::ClientNonInvite(m) => m.on_transport_error(fx),
            Machine::ServerInvite(m) => m.on_transport_error(fx),
            Machine::ServerNonInvite(m) => m.on_transport_error(fx),
        }
    }

    pub fn request(&self) -> &Request {
        match self {
            Machine::ClientInvite(m) => m.request(),
            Machine::ClientNonInvite(m) => m.request(),
            Machine::ServerInvite(m) => m.request(),
            Machine::ServerNonInvite(m) => m.request(),
        }
    }

    pub fn is_server(&self) -> bool {
        matches!(self, Machine::ServerInvite(_) | Machine::ServerNonInvite(_))
    }

    /// The RFC state name, for logs and the API.
    pub fn state_name(&self) -> &'static str {
        match self {
            Machine::ClientInvite(m) => match m.state {
                client_invite::State::Calling { .. } => "Calling",
                client_invite::State::Proceeding { .. } => "Proceeding",
                client_invite::State::Completed { .. } => "Completed",
                client_invite::State::Accepted { .. } => "Accepted",
                client_invite::State::Terminated => "Terminated",
            },
            Machine::ClientNonInvite(m) => match m.state {
                client_non_invite::State::Trying { .. } => "Trying",
                client_non_invite::State::Proceeding { .. } => "Proceeding",
                client_non_invite::State::Completed { .. } => "Completed",
                client_non_invite::State::Terminated => "Terminated",
            },
            Machine::ServerInvite(m) => match m.state {
                server_invite::State::Proceeding { .. } => "Proceeding",
                server_invite::State::Completed { .. } => "Completed",
                server_invite::State::Confirmed { .. } => "Confirmed",
                server_invite::State::Accepted { .. } => "Accepted",
                server_invite::State::Terminated => "Terminated",
            },
            Machine::ServerNonInvite(m) => match m.state {
                server_non_invite::State::Trying { .. } => "Trying",
                server_non_invite::State::Proceeding { .. } => "Proceeding",
                server_non_invite::State::Completed { .. } => "Completed",
                server_non_invite::State::Terminated => "Terminated",
            },
        }
    }
}

/// One live transaction: its machine, the flow its messages use, and the keys it is
/// filed under (removed with it).
#[derive(Debug)]
pub(crate) struct Transaction {
    pub machine: Machine,
    pub flow: Flow,
    pub key: Key,
    pub merge_key: Option<MergeKey>,
    /// CANCEL asked for before any provisional arrived (§9.1: send it once one does).
    pub cancel_pending: bool,
    /// Internal transactions (our CANCELs) report nothing upward.
    pub internal: bool,
    /// Server: our To tag, drawn at the first response that needs one.
    pub local_tag: Option<String>,
}

/// The method part of a key: ACK matches the INVITE (§17.2.3), CANCEL has its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum MethodKey {
    Invite,
    Cancel,
    Other(Box<str>),
}

impl MethodKey {
    pub fn of(m: &Method) -> MethodKey {
        match m {
            Method::Invite | Method::Ack => MethodKey::Invite,
            Method::Cancel => MethodKey::Cancel,
            m => MethodKey::Other(m.as_str().into()),
        }
    }
}

/// How a transaction is found. The strings are shared (`Arc`): each key is held twice, by
/// the transaction and by the endpoint's map, and a clone is then a count increment
/// instead of an allocation and a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// §17.1.3: a client transaction by the branch of the top Via and the CSeq method.
    Client { branch: Arc<str>, method: MethodKey },
    /// §17.2.3: a server transaction by branch, sent-by and method, when the branch
    /// starts with the magic cookie.
    Server { branch: Arc<str>, sent_by: Arc<str>, method: MethodKey },
    /// §17.2.3 fallback for RFC 2543 peers: Request-URI, From tag, Call-ID, CSeq number
    /// and top Via (the To tag is checked for ACK separately).
    Server2543 { text: Arc<str>, method: MethodKey },
}

impl Key {
    pub fn client(via: &Via, method: &Method) -> Option<Key> {
        Some(Key::Client { branch: via.branch()?.into(), method: MethodKey::of(method) })
    }

    /// The server key of a request (ACK keyed as the INVITE it acknowledges).
    pub fn server(req: &Request) -> Key {
        Key::server_with(req, MethodKey::of(req.method()))
    }

    pub fn server_with(req: &Request, method: MethodKey) -> Key {
        let via = req.via();
        if via.has_rfc3261_branch() {
            // Printed into bytes directly: `Host`'s `Display` goes through a buffer and a
            // lossy UTF-8 pass, and `core::fmt` costs more than the key itself.
            let mut sent_by = Vec::with_capacity(48);
            via.host().write(&mut sent_by);
            sent_by.make_ascii_lowercase();
            let port = via.port().unwrap_or(if via.transport().as_str().eq_ignore_ascii_case("TLS") { 5061 } else { 5060 });
            sent_by.push(b':');
            sip_message::digits::push_u64(&mut sent_by, u64::from(port));
            let sent_by = String::from_utf8(sent_by).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Key::Server { branch: via.branch().unwrap_or_default().into(), sent_by: sent_by.into(), method };
        }
        let mut text = req.uri().to_string();
        let _ = write!(text, "\u{0}{}\u{0}{}\u{0}{}\u{0}", req.from().tag().unwrap_or_default(), req.call_id(), req.cseq().seq);
        req.via().write_to_string(&mut text);
        Key::Server2543 { text: text.into(), method }
    }

    pub fn with_method(&self, method: MethodKey) -> Key {
        match self {
            Key::Client { branch, .. } => Key::Client { branch: branch.clone(), method },
            Key::Server { branch, sent_by, .. } => Key::Server { branch: branch.clone(), sent_by: sent_by.clone(), method },
            Key::Server2543 { text, .. } => Key::Server2543 { text: text.clone(), method },
        }
    }

    pub fn is_2543(&self) -> bool {
        matches!(self, Key::Server2543 { .. })
    }
}

/// §8.2.2.2 merged-request detection: From tag, Call-ID and CSeq of a request without a
/// To tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MergeKey {
    from_tag: Arc<str>,
    call_id: Arc<str>,
    cseq: u32,
    method: MethodKey,
}

impl MergeKey {
    pub fn of(req: &Request) -> Option<MergeKey> {
        if req.to().tag().is_some() || matches!(req.method(), Method::Ack | Method::Cancel) {
            return None;
        }
        Some(MergeKey {
            from_tag: req.from().tag()?.into(),
            call_id: req.call_id().as_str().into(),
            cseq: req.cseq().seq,
            method: MethodKey::of(req.method()),
        })
    }
}

trait WriteVia {
    fn write_to_string(&self, s: &mut String);
}

impl WriteVia for Via {
    fn write_to_string(&self, s: &mut String) {
        let _ = write!(s, "{self}");
    }
}

/// ACK for a non-2xx final (§17.1.1.3) or CANCEL (§9.1), built from the INVITE: same
/// Request-URI, Call-ID, From, CSeq number and top Via (same branch), the INVITE's Route
/// rows; To from the response (ACK) or the INVITE (CANCEL).
pub(crate) fn build_ack_or_cancel(invite: &Request, method: Method, response: Option<&Response>) -> Bytes {
    let mut s = String::with_capacity(512);
    let _ = write!(s, "{method} {} SIP/2.0\r\nVia: {}\r\n", invite.uri(), invite.via());
    for r in invite.headers().get_all(HeaderName::Route) {
        s.push_str("Route: ");
        s.push_str(&String::from_utf8_lossy(r.value()));
        s.push_str("\r\n");
    }
    let to = response.map_or_else(|| invite.to().to_string(), |r| r.to().to_string());
    let _ = write!(
        s,
        "Max-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContent-Length: 0\r\n\r\n",
        invite.from(),
        invite.call_id(),
        invite.cseq().seq
    );
    Bytes::from(s)
}

/// Boxed: the slot vector keeps its peak length (a burst of calls leaves thousands of
/// free slots behind), and a free slot should cost 16 bytes, not a transaction's size.
#[derive(Debug)]
struct Slot {
    generation: u32,
    value: Option<Box<Transaction>>,
}

/// Live transactions by handle.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    pub fn insert(&mut self, t: Transaction) -> TransactionId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.value = Some(Box::new(t));
            return TransactionId { index, generation: slot.generation };
        }
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 live transactions");
        self.slots.push(Slot { generation: 0, value: Some(Box::new(t)) });
        TransactionId { index, generation: 0 }
    }

    pub fn get(&self, id: TransactionId) -> Option<&Transaction> {
        self.slots.get(id.index as usize).filter(|s| s.generation == id.generation).and_then(|s| s.value.as_deref())
    }

    pub fn get_mut(&mut self, id: TransactionId) -> Option<&mut Transaction> {
        self.slots.get_mut(id.index as usize).filter(|s| s.generation == id.generation).and_then(|s| s.value.as_deref_mut())
    }

    pub fn remove(&mut self, id: TransactionId) -> Option<Transaction> {
        let slot = self.slots.get_mut(id.index as usize).filter(|s| s.generation == id.generation)?;
        let t = slot.value.take()?;
        self.free.push(id.index);
        self.len -= 1;
        Some(*t)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn ids(&self) -> impl Iterator<Item = TransactionId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| TransactionId { index: i as u32, generation: s.generation })
    }
}
