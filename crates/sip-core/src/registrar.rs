//! Registrar bindings, RFC 3261 §10.3: the address-of-record → contacts table that
//! REGISTER changes and calls read.
//!
//! Sans-IO like the rest of the core: [`Registrar::register`] takes an already
//! authorised REGISTER and returns the 200's headers or the error to answer with;
//! expiry is driven by [`Registrar::poll_timeout`] / [`Registrar::handle_timeout`];
//! every change is queued for [`Registrar::poll_change`], so the binary can persist it.
//!
//! Choices where the RFC leaves room:
//! - a REGISTER that fails the Call-ID/CSeq check for any contact changes nothing
//!   (§10.3 step 7: all updates commit or none do) and gets 500 with Retry-After;
//! - at most `max_contacts` bindings per AOR; a new contact beyond that replaces the
//!   binding that would expire first (what Asterisk's `remove_existing` does), so a
//!   phone that changed address is not locked out until its old binding expires;
//! - NATed registrations (`nat`): the binding's target is the source address of the
//!   REGISTER, the Contact as written is kept for the 200 and for display.

use crate::nat::NatEvidence;
use crate::time::Time;
use crate::transport::{Flow, Transport};
use sip_message::{Contacts, Header, HeaderName, Host, NameAddr, Request, SipUri, Uri};
use std::collections::HashMap;
use std::time::Duration;

/// Registration lifetimes and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Below this (and above 0), 423 Interval Too Brief with Min-Expires (§10.3 step 7).
    pub min_expires: u32,
    /// Longer requests are granted this.
    pub max_expires: u32,
    /// When neither the Contact nor the request says (§10.2.1.1 leaves it to us).
    pub default_expires: u32,
    /// Bindings kept per address-of-record.
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig { min_expires: 60, max_expires: 3600, default_expires: 3600, max_contacts: 10 }
    }
}

/// One contact of an address-of-record.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact as the UA wrote it (URI and contact parameters, without `expires`).
    pub contact: NameAddr,
    /// Where requests for this binding go: the Contact URI, or for a NATed
    /// registration the REGISTER's source address.
    pub target: Uri,
    /// The flow the REGISTER came over (for NAT: requests go back over it).
    pub source: Flow,
    /// Why the registration is taken as NATed, if it is.
    pub nat: Option<NatEvidence>,
    /// The REGISTER's Call-ID and CSeq (§10.3 step 7 ordering).
    pub call_id: String,
    /// See `call_id`.
    pub cseq: u32,
    /// When it lapses.
    pub expires_at: Time,
    /// `q` in thousandths (RFC 3261 §20.10), if given.
    pub q: Option<u16>,
    /// The `+sip.instance` contact parameter (RFC 5626), if given.
    pub instance: Option<String>,
    /// The REGISTER's User-Agent, for display.
    pub user_agent: Option<String>,
}

impl Binding {
    fn uri(&self) -> Option<&SipUri> {
        self.contact.uri().as_sip()
    }

    /// Whether `uri` names this binding's contact (§19.1.4 equivalence; other schemes
    /// byte for byte).
    fn is(&self, uri: &Uri) -> bool {
        match (self.uri(), uri.as_sip()) {
            (Some(a), Some(b)) => a.equivalent(b),
            _ => self.contact.uri() == uri,
        }
    }

    /// Seconds left at `now`, rounded up so a fresh binding shows what was granted.
    pub fn remaining(&self, now: Time) -> u32 {
        let left = self.expires_at - now;
        u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(u32::MAX)
    }
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `Expires: 0` or `Contact: *`.
    Unregistered,
    /// Its time ran out.
    Expired,
    /// A new contact needed its place (`max_contacts`).
    Replaced,
}

/// A change to the table, for persistence and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A binding was added or refreshed.
    Put {
        /// The address-of-record.
        aor: String,
        /// The binding as it now is.
        binding: Box<Binding>,
    },
    /// A binding went away.
    Removed {
        /// The address-of-record.
        aor: String,
        /// Its contact URI.
        contact: Uri,
        /// Why.
        why: Removal,
    },
}

/// Why a REGISTER is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// 400: malformed Contact or Expires, or `*` misused (§10.3 step 6).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 423 with Min-Expires (§10.3 step 7).
    #[error("interval too brief: at least {0} s")]
    IntervalTooBrief(u32),
    /// 500: same Call-ID with a CSeq not above the binding's (§10.3 step 7).
    #[error("out of order: CSeq {got} is not above {stored} for this Call-ID")]
    OutOfOrder {
        /// The binding's CSeq.
        stored: u32,
        /// The request's.
        got: u32,
    },
}

impl RegisterError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RegisterError::BadRequest(_) => 400,
            RegisterError::IntervalTooBrief(_) => 423,
            RegisterError::OutOfOrder { .. } => 500,
        }
    }

    /// The headers the answer needs: Min-Expires for 423, Retry-After for 500.
    pub fn headers(&self) -> Vec<Header> {
        match self {
            RegisterError::IntervalTooBrief(min) => vec![Header::new(HeaderName::MinExpires, min.to_string())],
            RegisterError::OutOfOrder { .. } => vec![Header::other("Retry-After", "1")],
            RegisterError::BadRequest(_) => Vec::new(),
        }
    }
}

/// The bindings of every address-of-record.
#[derive(Debug, Default)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: HashMap<String, Vec<Binding>>,
    changes: std::collections::VecDeque<Change>,
}

/// What one Contact of a REGISTER asks for.
struct Wanted {
    contact: NameAddr,
    expires: u32,
}

impl Registrar {
    /// An empty table.
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar { config, aors: HashMap::new(), changes: Default::default() }
    }

    /// The limits in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The current bindings of `aor`, most recently refreshed last.
    pub fn bindings(&self, aor: &str) -> &[Binding] {
        self.aors.get(aor).map_or(&[], Vec::as_slice)
    }

    /// Every address-of-record with bindings.
    pub fn aors(&self) -> impl Iterator<Item = (&str, &[Binding])> {
        self.aors.iter().map(|(a, b)| (a.as_str(), b.as_slice()))
    }

    /// Number of bindings in all.
    pub fn len(&self) -> usize {
        self.aors.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }

    /// Puts back a binding from the store (at start-up); no change is queued.
    pub fn restore(&mut self, now: Time, aor: &str, binding: Binding) {
        if binding.expires_at <= now {
            return;
        }
        let list = self.aors.entry(aor.to_owned()).or_default();
        list.retain(|b| !b.is(binding.contact.uri()));
        list.push(binding);
    }

    /// Applies an authorised REGISTER for `aor` received over `source` (§10.3 steps
    /// 6–8). On success, the headers of the 200: every current binding as a Contact
    /// with its `expires` (and Date is the caller's business).
    pub fn register(
        &mut self,
        now: Time,
        aor: &str,
        request: &Request,
        source: &Flow,
        nat: Option<NatEvidence>,
    ) -> Result<Vec<Header>, RegisterError> {
        let header_expires = match request.headers().number(HeaderName::Expires) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return Err(RegisterError::BadRequest("Expires is not a number")),
        };
        let call_id = request.call_id().as_str();
        let cseq = request.cseq().seq;
        let current = self.aors.get(aor).map_or(&[][..], Vec::as_slice);
        let mut next: Vec<Binding> = current.to_vec();
        let mut removed: Vec<(Uri, Removal)> = Vec::new();
        let mut put: Vec<usize> = Vec::new();
        match request.contacts() {
            Contacts::None => {}
            Contacts::Star => {
                // §10.3 step 6: `*` only alone and with Expires: 0.
                if header_expires != Some(0) {
                    return Err(RegisterError::BadRequest("Contact: * needs Expires: 0"));
                }
                for b in &next {
                    check_order(b, call_id, cseq)?;
                }
                removed.extend(next.drain(..).map(|b| (b.contact.uri().clone(), Removal::Unregistered)));
            }
            Contacts::List(list) => {
                let wanted = self.wanted(list, header_expires)?;
                for w in wanted {
                    let existing = next.iter().position(|b| b.is(w.contact.uri()));
                    if let Some(i) = existing {
                        check_order(&next[i], call_id, cseq)?;
                    }
                    if w.expires == 0 {
                        if let Some(i) = existing {
                            let b = next.remove(i);
                            put.retain(|&p| p != i);
                            put.iter_mut().filter(|p| **p > i).for_each(|p| *p -= 1);
                            removed.push((b.contact.uri().clone(), Removal::Unregistered));
                        }
                        continue;
                    }
                    let binding = self.binding(now, w, request, source, nat);
                    match existing {
                        Some(i) => {
                            next[i] = binding;
                            if !put.contains(&i) {
                                put.push(i);
                            }
                        }
                        None => {
                            next.push(binding);
                            put.push(next.len() - 1);
                        }
                    }
                }
            }
        }
        // Over the limit: the bindings that would lapse first make room (not the ones
        // this request just wrote).
        while next.len() > self.config.max_contacts {
            let victim = next.iter().enumerate().filter(|(i, _)| !put.contains(i)).min_by_key(|(_, b)| b.expires_at).map(|(i, _)| i);
            let Some(i) = victim.or_else(|| put.first().copied()) else { break };
            let b = next.remove(i);
            put.retain(|&p| p != i);
            put.iter_mut().filter(|p| **p > i).for_each(|p| *p -= 1);
            removed.push((b.contact.uri().clone(), Removal::Replaced));
        }
        // Commit (§10.3 step 7: all or nothing, and nothing failed).
        for (contact, why) in removed {
            self.changes.push_back(Change::Removed { aor: aor.to_owned(), contact, why });
        }
        for &i in &put {
            self.changes.push_back(Change::Put { aor: aor.to_owned(), binding: Box::new(next[i].clone()) });
        }
        let headers = contact_headers(&next, now);
        if next.is_empty() {
            self.aors.remove(aor);
        } else {
            self.aors.insert(aor.to_owned(), next);
        }
        Ok(headers)
    }

    /// The contacts of a REGISTER with their granted lifetimes, or the error for the
    /// whole request.
    fn wanted(&self, list: &[NameAddr], header_expires: Option<u32>) -> Result<Vec<Wanted>, RegisterError> {
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let expires = match c.params().get("expires") {
                Some(p) => match p.value_unquoted() {
                    // delta-seconds beyond 2^32-1 mean 2^32-1 (§20.19 spirit): cap.
                    Some(v) if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                    _ => return Err(RegisterError::BadRequest("contact expires is not a number")),
                },
                None => header_expires.unwrap_or(self.config.default_expires),
            };
            // §10.3 step 7: 423 only for 0 < expires < min, and below an hour.
            if expires > 0 && expires < self.config.min_expires && expires < 3600 {
                return Err(RegisterError::IntervalTooBrief(self.config.min_expires));
            }
            if !matches!(c.uri(), Uri::Sip(_)) && !matches!(c.uri(), Uri::Tel(_)) && expires > 0 {
                // Any absolute URI may be registered, but we can only call sip:/sips:.
                return Err(RegisterError::BadRequest("only sip: and sips: contacts can be reached"));
            }
            let mut contact = c.clone();
            contact.params_mut().remove("expires");
            out.push(Wanted { contact, expires: expires.min(self.config.max_expires) });
        }
        Ok(out)
    }

    fn binding(&self, now: Time, w: Wanted, request: &Request, source: &Flow, nat: Option<NatEvidence>) -> Binding {
        let q = w.contact.params().value_str("q").and_then(parse_q);
        let instance =
            w.contact.params().get("+sip.instance").and_then(|p| p.value_unquoted()).map(|v| String::from_utf8_lossy(&v).into_owned());
        let target = match (&nat, w.contact.uri()) {
            (Some(_), Uri::Sip(u)) => Uri::Sip(towards(u, source)),
            _ => w.contact.uri().clone(),
        };
        let user_agent = request.headers().get_other("User-Agent").and_then(|h| h.value_str()).map(str::to_owned);
        Binding {
            contact: w.contact,
            target,
            source: *source,
            nat,
            call_id: request.call_id().as_str().to_owned(),
            cseq: request.cseq().seq,
            expires_at: now + Duration::from_secs(u64::from(w.expires)),
            q,
            instance,
            user_agent,
        }
    }

    /// The next binding expiry.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.aors.values().flatten().map(|b| b.expires_at).min()
    }

    /// Removes the bindings whose time has come.
    pub fn handle_timeout(&mut self, now: Time) {
        let changes = &mut self.changes;
        self.aors.retain(|aor, list| {
            list.retain(|b| {
                let keep = b.expires_at > now;
                if !keep {
                    changes.push_back(Change::Removed { aor: aor.clone(), contact: b.contact.uri().clone(), why: Removal::Expired });
                }
                keep
            });
            !list.is_empty()
        });
    }

    /// The next change to persist or log.
    pub fn poll_change(&mut self) -> Option<Change> {
        self.changes.pop_front()
    }
}

/// §10.3 step 7: same Call-ID needs a higher CSeq.
fn check_order(b: &Binding, call_id: &str, cseq: u32) -> Result<(), RegisterError> {
    if b.call_id == call_id && cseq <= b.cseq {
        return Err(RegisterError::OutOfOrder { stored: b.cseq, got: cseq });
    }
    Ok(())
}

/// `q` as thousandths: `0`, `1`, `0.5`, `0.125` (§25.1 qvalue).
fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let f = format!("{frac:0<3}").parse::<u16>().ok()?;
    let q = whole + f;
    (q <= 1000).then_some(q)
}

/// The Contact rows of a 200 to REGISTER: every binding with its time left (§10.3 step 8).
fn contact_headers(list: &[Binding], now: Time) -> Vec<Header> {
    list.iter()
        .map(|b| {
            let c = b.contact.clone().with_param("expires", Some(&b.remaining(now).to_string()));
            Header::new(HeaderName::Contact, c.to_bytes())
        })
        .collect()
}

/// `uri` pointed at the REGISTER's source address (NAT): host and port replaced, the
/// transport parameter saying what the flow is.
fn towards(uri: &SipUri, source: &Flow) -> SipUri {
    let mut u = uri.clone();
    let host = match source.remote.ip() {
        std::net::IpAddr::V4(a) => Host::Ipv4(a),
        std::net::IpAddr::V6(a) => Host::Ipv6(a),
    };
    u.set_host(host);
    u.set_port(Some(source.remote.port()));
    u.params_mut().remove("maddr");
    match source.transport {
        Transport::Udp => {
            u.params_mut().remove("transport");
        }
        Transport::Tcp => u.params_mut().set("transport", Some(bytes::Bytes::from_static(b"tcp"))),
        Transport::Tls => u.params_mut().set("transport", Some(bytes::Bytes::from_static(b"tls"))),
    }
    u
}

#[cfg(test)]
mod tests;
