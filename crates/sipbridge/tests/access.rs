//! The policy layer in virtual time: REGISTER with digest authentication, stale nonces,
//! no user enumeration, the guessing guard's exact timings, who may register what, 407
//! for callers with a secret, and calls reaching registered contacts.
//!
//! No sockets and no sleeping: an [`Endpoint`] and [`Calls<NoMedia>`] are fed datagrams
//! as if from phones' addresses and drained by the rule of ARCHITECTURE.md (engine
//! events to `calls.on_event` until quiet), and time moves by stepping through
//! `min(endpoint.poll_timeout, calls.poll_timeout)`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use sip_core::digest::Challenge;
use sip_core::sip_message::bytes::Bytes;
use sip_core::{Endpoint, Flow, Time, Transmit, Transport};
use sipbridge::calls::{Calls, NoMedia};
use sipbridge::config::Config;
use sipbridge::policy::endpoint_config;
use std::net::SocketAddr;
use std::time::Duration;

// ---- the harness ------------------------------------------------------------------------

const PBX: &str = "192.0.2.10:5060";
/// Alice's phone.
const PHONE: &str = "198.51.100.7:5060";
/// Alice's second phone.
const PHONE2: &str = "198.51.100.8:5060";
/// The static, no-secret endpoint `trunk`.
const TRUNK: &str = "198.51.100.20:5060";
/// Somebody not configured anywhere.
const STRANGER: &str = "203.0.113.50:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The config under test, with `auth` as the `[auth]` section's body.
fn config_text(auth: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:{PBX}\"]\ndomain = \"pbx.test\"\n\
         [api]\nlisten = \"\"\n\
         [store]\nurl = \"memory\"\n\
         [registrar]\nmin_expires_s = 60\nmax_expires_s = 3600\n\
         [auth]\n{auth}\n\
         [[endpoint]]\nname = \"alice\"\nsecret = \"alice-secret\"\nhost = \"dynamic\"\nnat = \"auto\"\n\
         [[endpoint]]\nname = \"bob\"\nsecret = \"bob-secret\"\n\
         [[endpoint]]\nname = \"trunk\"\nhost = \"{TRUNK}\"\n\
         [[endpoint]]\nname = \"carol\"\nhost = \"198.51.100.30:5060\"\nsecret = \"carol-secret\"\n"
    )
}

/// One message sent by the engine.
#[derive(Debug, Clone)]
struct Sent {
    at: Time,
    to: SocketAddr,
    text: String,
}

impl Sent {
    fn status(&self) -> u16 {
        status(&self.text)
    }
}

struct Pbx {
    now: Time,
    ep: Endpoint,
    calls: Calls<NoMedia>,
    /// Everything sent, in order.
    sent: Vec<Sent>,
}

impl Pbx {
    fn new(auth: &str) -> Pbx {
        let config = Config::from_toml(&config_text(auth), "access.rs").unwrap();
        let ep = Endpoint::new(endpoint_config(&config, 11));
        let calls = Calls::new(config, vec![(Transport::Udp, addr(PBX))], NoMedia::default(), 12, [7; 32]);
        Pbx { now: Time::ZERO, ep, calls, sent: Vec::new() }
    }

    /// The drain rule: transmits and events until both are empty.
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.ep.poll_transmit() {
                busy = true;
                if let Transmit::Send { flow, payload } = t {
                    let text = String::from_utf8(payload.to_vec()).unwrap();
                    self.sent.push(Sent { at: self.now, to: flow.remote, text });
                }
            }
            while let Some(e) = self.ep.poll_event() {
                busy = true;
                self.calls.on_event(self.now, &mut self.ep, e);
            }
            if !busy {
                break;
            }
        }
        while self.calls.registrar.poll_change().is_some() {}
    }

    /// A datagram from `from`, drained; what was sent because of it.
    fn deliver(&mut self, from: &str, text: &str) -> Vec<Sent> {
        let start = self.sent.len();
        let flow = Flow { transport: Transport::Udp, local: addr(PBX), remote: addr(from), connection: None };
        self.ep.handle_datagram(self.now, flow, Bytes::from(text.to_owned()));
        self.drain();
        self.sent[start..].to_vec()
    }

    /// [`Pbx::deliver`], expecting exactly one message back (a response to `from`).
    fn ask(&mut self, from: &str, text: &str) -> String {
        let out = self.deliver(from, text);
        assert_eq!(out.len(), 1, "one answer expected at {}, got {out:#?}", self.now);
        assert_eq!(out[0].to, addr(from), "the answer goes back to the phone");
        out[0].text.clone()
    }

    fn deadline(&mut self) -> Option<Time> {
        [self.ep.poll_timeout(), self.calls.poll_timeout()].into_iter().flatten().min()
    }

    /// Moves time to `t`, firing every deadline on the way at its exact time; what was
    /// sent meanwhile.
    fn advance_to(&mut self, t: Time) -> Vec<Sent> {
        assert!(t >= self.now, "time never goes backwards");
        let start = self.sent.len();
        for _ in 0..100_000 {
            match self.deadline() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.ep.handle_timeout(self.now);
                    self.calls.handle_timeout(self.now, &mut self.ep);
                    self.drain();
                }
                _ => {
                    self.now = t;
                    return self.sent[start..].to_vec();
                }
            }
        }
        panic!("a deadline at or before {t} never goes away");
    }

    fn advance(&mut self, d: Duration) -> Vec<Sent> {
        let t = self.now + d;
        self.advance_to(t)
    }

    fn bindings(&self, aor: &str) -> Vec<String> {
        self.calls.registrar.bindings(aor).iter().map(|b| b.contact.uri().to_string()).collect()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- messages ---------------------------------------------------------------------------

fn status(text: &str) -> u16 {
    let line = text.lines().next().unwrap();
    assert!(line.starts_with("SIP/2.0 "), "a response: {line}");
    line[8..11].parse().unwrap()
}

/// Every value of header `name` (full name, case-insensitive), in order.
fn headers(text: &str, name: &str) -> Vec<String> {
    let head = text.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

fn header(text: &str, name: &str) -> String {
    let all = headers(text, name);
    assert_eq!(all.len(), 1, "one {name} in\n{text}");
    all[0].clone()
}

fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).filter_map(|p| p.split_once('=')).find(|(n, _)| n.trim() == name).map(|(_, v)| v.trim())
}

fn to_tag(text: &str) -> String {
    param(&header(text, "To"), "tag").expect("a To tag").to_owned()
}

/// A REGISTER (or INVITE) as a phone writes it; every field can be changed.
#[derive(Clone)]
struct Req {
    method: &'static str,
    uri: String,
    /// Via sent-by.
    via: String,
    branch: String,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    lines: Vec<String>,
    body: String,
}

impl Req {
    fn register(aor: &str) -> Req {
        Req {
            method: "REGISTER",
            uri: "sip:pbx.test".into(),
            via: PHONE.into(),
            branch: "z9hG4bKreg1".into(),
            from: format!("<sip:{aor}@pbx.test>;tag=ft1"),
            to: format!("<sip:{aor}@pbx.test>"),
            call_id: format!("reg-{aor}@198.51.100.7"),
            cseq: 1,
            lines: Vec::new(),
            body: String::new(),
        }
    }

    fn invite(user: &str, from_host: &str) -> Req {
        let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.99\r\ns=-\r\nc=IN IP4 198.51.100.99\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        Req {
            method: "INVITE",
            uri: format!("sip:{user}@pbx.test"),
            via: from_host.into(),
            branch: "z9hG4bKinv1".into(),
            from: format!("<sip:caller@{from_host}>;tag=ct1"),
            to: format!("<sip:{user}@pbx.test>"),
            call_id: format!("call-{user}@{from_host}"),
            cseq: 1,
            lines: vec![format!("Contact: <sip:caller@{from_host}>"), "Content-Type: application/sdp".into()],
            body: sdp.into(),
        }
    }

    fn branch(mut self, b: &str) -> Req {
        self.branch = format!("z9hG4bK{b}");
        self
    }

    fn cseq(mut self, n: u32) -> Req {
        self.cseq = n;
        self
    }

    fn via(mut self, sent_by: &str) -> Req {
        self.via = sent_by.into();
        self
    }

    fn call_id(mut self, c: &str) -> Req {
        self.call_id = c.into();
        self
    }

    fn to(mut self, to: &str) -> Req {
        self.to = to.into();
        self
    }

    fn line(mut self, l: impl Into<String>) -> Req {
        self.lines.push(l.into());
        self
    }

    /// Credentials answering `challenge` (a WWW-/Proxy-Authenticate value) as `user`.
    fn auth(self, header: &str, challenge: &str, user: &str, password: &str, nc: u32) -> Req {
        let uri = self.uri.clone();
        let v = sip_core::digest::authorization(challenge, user, password, self.method, &uri, "0a4f113b", nc).unwrap();
        self.line(format!("{header}: {v}"))
    }

    fn text(&self) -> String {
        let mut s = format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};rport;branch={b}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {n} {m}\r\n",
            m = self.method,
            uri = self.uri,
            via = self.via,
            b = self.branch,
            from = self.from,
            to = self.to,
            cid = self.call_id,
            n = self.cseq
        );
        for l in &self.lines {
            s.push_str(l);
            s.push_str("\r\n");
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n{}", self.body.len(), self.body));
        s
    }

    /// The ACK for a non-2xx final `response` to this INVITE (§17.1.1.3: same branch,
    /// the response's To).
    fn ack(&self, response: &str) -> String {
        format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};rport;branch={b}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {n} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = self.uri,
            via = self.via,
            b = self.branch,
            from = self.from,
            to = header(response, "To"),
            cid = self.call_id,
            n = self.cseq
        )
    }
}

/// The challenge values of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate).
fn challenges(response: &str) -> Vec<String> {
    match status(response) {
        401 => headers(response, "WWW-Authenticate"),
        407 => headers(response, "Proxy-Authenticate"),
        s => panic!("{s} is no challenge:\n{response}"),
    }
}

/// The first (most preferred) challenge of `response`.
fn first_challenge(response: &str) -> String {
    challenges(response).into_iter().next().unwrap()
}

const ALICE_CONTACT: &str = "Contact: <sip:alice@198.51.100.7:5060>";

/// A 401 for `req` without credentials, then `req` with alice's credentials for the
/// first challenge; returns the final answer.
fn register_alice(pbx: &mut Pbx, req: &Req) -> String {
    let c = pbx.ask(PHONE, &req.text());
    assert_eq!(status(&c), 401, "{c}");
    let first = first_challenge(&c);
    let second = req.clone().branch(&format!("{}b", req.branch)).cseq(req.cseq + 1);
    pbx.ask(PHONE, &second.auth("Authorization", &first, "alice", "alice-secret", 1).text())
}

// ---- 1. the register lifecycle ----------------------------------------------------------

#[test]
fn challenge_rows_follow_the_configured_algorithms() {
    let mut pbx = Pbx::new("");
    let r = pbx.ask(PHONE, &Req::register("alice").line(ALICE_CONTACT).text());
    assert_eq!(status(&r), 401);
    let rows = challenges(&r);
    assert_eq!(rows.len(), 2, "{r}");
    let parsed: Vec<Challenge> = rows.iter().map(|v| Challenge::parse(v).unwrap()).collect();
    assert_eq!(parsed[0].algorithm().to_string(), "SHA-256");
    assert_eq!(parsed[1].algorithm().to_string(), "MD5");
    assert_eq!(parsed[0].nonce(), parsed[1].nonce(), "one nonce for both rows");
    let nonce = parsed[0].nonce();
    assert_eq!(rows[0], format!("Digest realm=\"pbx.test\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\""));
    assert_eq!(rows[1], format!("Digest realm=\"pbx.test\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""));
    assert!(headers(&r, "Proxy-Authenticate").is_empty());
    assert!(pbx.bindings("alice").is_empty());

    let mut md5 = Pbx::new("algorithms = [\"MD5\"]");
    let r = md5.ask(PHONE, &Req::register("alice").line(ALICE_CONTACT).text());
    assert_eq!(status(&r), 401);
    let rows = challenges(&r);
    assert_eq!(rows.len(), 1, "{r}");
    assert!(rows[0].ends_with(", algorithm=MD5, qop=\"auth\""), "{}", rows[0]);
    // MD5 credentials pass; SHA-256 ones on the same nonce were not offered: 403.
    let sha = rows[0].replace("algorithm=MD5", "algorithm=SHA-256");
    let bad = Req::register("alice").line(ALICE_CONTACT).branch("sha").cseq(2).auth("Authorization", &sha, "alice", "alice-secret", 1);
    assert_eq!(status(&md5.ask(PHONE, &bad.text())), 403);
    let good = Req::register("alice").line(ALICE_CONTACT).branch("md5").cseq(3).auth("Authorization", &rows[0], "alice", "alice-secret", 1);
    let ok = md5.ask(PHONE, &good.text());
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(md5.bindings("alice"), ["sip:alice@198.51.100.7:5060"]);
}

#[test]
fn register_with_each_algorithm() {
    for alg in ["SHA-256", "MD5"] {
        let mut pbx = Pbx::new("");
        let req = Req::register("alice").line(ALICE_CONTACT).line("Expires: 600");
        let c = pbx.ask(PHONE, &req.text());
        let row = challenges(&c).into_iter().find(|v| v.contains(&format!("algorithm={alg},"))).unwrap();
        assert_eq!(Challenge::parse(&row).unwrap().algorithm().to_string(), alg);
        let ok = pbx.ask(PHONE, &req.clone().branch("2").cseq(2).auth("Authorization", &row, "alice", "alice-secret", 1).text());
        assert_eq!(status(&ok), 200, "{alg}: {ok}");
        assert_eq!(headers(&ok, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=600"], "{alg}");
        assert_eq!(headers(&ok, "Date").len(), 1, "phones set their clock from it");
        let b = pbx.calls.registrar.bindings("alice");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].expires_at, Time::ZERO + secs(600));
        assert_eq!(pbx.calls.access.authenticated, 1);
        assert_eq!(pbx.calls.access.guard.failures, 0, "a first request without credentials is no failure");
    }
}

#[test]
fn refresh_fetch_unregister() {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").line(ALICE_CONTACT).line("Expires: 600");
    let c = pbx.ask(PHONE, &req.text());
    let ch = first_challenge(&c);
    let first = req.clone().branch("2").cseq(2).auth("Authorization", &ch, "alice", "alice-secret", 1);
    assert_eq!(status(&pbx.ask(PHONE, &first.text())), 200);

    // Refresh 100 s later: same Call-ID, CSeq + 1, the next nc on the same nonce.
    pbx.advance(secs(100));
    let refresh = req.clone().branch("3").cseq(3).auth("Authorization", &ch, "alice", "alice-secret", 2);
    let ok = pbx.ask(PHONE, &refresh.text());
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(headers(&ok, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=600"]);
    assert_eq!(pbx.calls.registrar.bindings("alice")[0].expires_at, Time::ZERO + secs(700));

    // Same Call-ID, CSeq not above the binding's: 500 with Retry-After, nothing changes.
    // (CSeq 2: the transaction of CSeq 3 is alive, and a new branch on it would be a
    // merged request, 482.)
    let late = req.clone().branch("late").cseq(2).auth("Authorization", &ch, "alice", "alice-secret", 3);
    let r = pbx.ask(PHONE, &late.text());
    assert_eq!(status(&r), 500, "{r}");
    assert_eq!(header(&r, "Retry-After"), "1");

    // Fetch (no Contact) 30 s on: the binding with what is left of it.
    pbx.advance(secs(30));
    let fetch = Req::register("alice").branch("4").cseq(4).auth("Authorization", &ch, "alice", "alice-secret", 4);
    let r = pbx.ask(PHONE, &fetch.text());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=570"]);
    assert_eq!(pbx.bindings("alice"), ["sip:alice@198.51.100.7:5060"]);

    // Expires: 0 removes it: 200 without any Contact.
    let bye = Req::register("alice").line(ALICE_CONTACT).line("Expires: 0").branch("5").cseq(5).auth(
        "Authorization",
        &ch,
        "alice",
        "alice-secret",
        5,
    );
    let r = pbx.ask(PHONE, &bye.text());
    assert_eq!(status(&r), 200, "{r}");
    assert!(headers(&r, "Contact").is_empty(), "{r}");
    assert!(pbx.bindings("alice").is_empty());
    assert_eq!(pbx.calls.registrar.poll_timeout(), None, "no expiry left to wait for");
}

#[test]
fn a_binding_expires_exactly_on_time() {
    let mut pbx = Pbx::new("");
    pbx.advance(ms(1234));
    let t0 = pbx.now;
    let ok = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT).line("Expires: 60"));
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(headers(&ok, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=60"]);
    assert_eq!(pbx.calls.poll_timeout(), Some(t0 + secs(60)), "the policy layer wakes up for it");
    pbx.advance_to(t0 + ms(59_999));
    assert_eq!(pbx.bindings("alice"), ["sip:alice@198.51.100.7:5060"], "still there 1 ms before");
    let sent = pbx.advance_to(t0 + secs(60));
    assert!(pbx.bindings("alice").is_empty(), "gone at 60 s");
    assert!(sent.is_empty(), "expiry sends nothing: {sent:#?}");
}

#[test]
fn too_brief_an_interval_gets_423() {
    let mut pbx = Pbx::new("");
    let r = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT).line("Expires: 59"));
    assert_eq!(status(&r), 423, "{r}");
    assert_eq!(header(&r, "Min-Expires"), "60");
    assert!(pbx.bindings("alice").is_empty());
    // A contact's own expires counts too; the minimum itself is fine.
    let r = register_alice(&mut pbx, &Req::register("alice").line(format!("{ALICE_CONTACT};expires=30")).branch("b").cseq(10));
    assert_eq!(status(&r), 423, "{r}");
    let r = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT).line("Expires: 60").branch("c").cseq(20));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=60"]);
    // Longer than the maximum: granted the maximum.
    let r = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT).line("Expires: 86400").branch("d").cseq(30));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=3600"]);
}

#[test]
fn several_contacts_then_star() {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice")
        .line("Contact: <sip:alice@198.51.100.7:5060>;expires=120")
        .line("Contact: <sip:alice@198.51.100.7:5062>")
        .line("Expires: 300");
    let r = register_alice(&mut pbx, &req);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact"), ["<sip:alice@198.51.100.7:5060>;expires=120", "<sip:alice@198.51.100.7:5062>;expires=300"]);
    assert_eq!(pbx.bindings("alice"), ["sip:alice@198.51.100.7:5060", "sip:alice@198.51.100.7:5062"]);

    // `*` without Expires: 0 is malformed (§10.3 step 6): 400, nothing removed.
    let star = Req::register("alice").line("Contact: *").branch("s1").cseq(10);
    let r = register_alice(&mut pbx, &star);
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(pbx.bindings("alice").len(), 2);

    let star = Req::register("alice").line("Contact: *").line("Expires: 0").branch("s2").cseq(20);
    let r = register_alice(&mut pbx, &star);
    assert_eq!(status(&r), 200, "{r}");
    assert!(headers(&r, "Contact").is_empty(), "{r}");
    assert!(pbx.bindings("alice").is_empty());
}

// ---- 2. stale nonces --------------------------------------------------------------------

#[test]
fn an_old_nonce_is_stale() {
    let mut pbx = Pbx::new("nonce_lifetime_s = 30");
    let req = Req::register("alice").line(ALICE_CONTACT);
    let a = first_challenge(&pbx.ask(PHONE, &req.text()));
    let b = first_challenge(&pbx.ask(PHONE, &req.clone().branch("1b").cseq(5).text()));
    assert!(!Challenge::parse(&a).unwrap().stale());
    assert_ne!(Challenge::parse(&a).unwrap().nonce(), Challenge::parse(&b).unwrap().nonce(), "a fresh nonce per challenge");

    // Exactly at the lifetime the nonce is still good …
    pbx.advance(secs(30));
    let r = pbx.ask(PHONE, &req.clone().branch("2").cseq(2).auth("Authorization", &a, "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 200, "{r}");
    // … 1 ms later it is stale: a new challenge with stale=true, for both algorithms.
    pbx.advance(ms(1));
    let r = pbx.ask(PHONE, &req.clone().branch("3").cseq(3).auth("Authorization", &b, "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 401, "{r}");
    let rows = challenges(&r);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|v| v.ends_with(", stale=true")), "{rows:?}");
    let fresh = Challenge::parse(&rows[0]).unwrap();
    assert!(fresh.stale());
    assert_ne!(fresh.nonce(), Challenge::parse(&b).unwrap().nonce());
    // Stale is no failure, and the new nonce works.
    assert_eq!(pbx.calls.access.guard.failures, 0);
    let r = pbx.ask(PHONE, &req.clone().branch("4").cseq(4).auth("Authorization", &rows[0], "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 200, "{r}");
}

#[test]
fn a_wrong_password_on_an_old_nonce_is_a_failure_not_stale() {
    let mut pbx = Pbx::new("nonce_lifetime_s = 30");
    let req = Req::register("alice").line(ALICE_CONTACT);
    let a = first_challenge(&pbx.ask(PHONE, &req.text()));
    pbx.advance(secs(31));
    let r = pbx.ask(PHONE, &req.clone().branch("2").cseq(2).auth("Authorization", &a, "alice", "guess", 1).text());
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(pbx.calls.access.guard.failures, 1);
}

#[test]
fn a_replayed_nc_is_stale() {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").line(ALICE_CONTACT);
    let ch = first_challenge(&pbx.ask(PHONE, &req.text()));
    let ok = req.clone().branch("2").cseq(2).auth("Authorization", &ch, "alice", "alice-secret", 1);
    assert_eq!(status(&pbx.ask(PHONE, &ok.text())), 200);
    // The very same credentials again (a captured request replayed, new transaction).
    let again = req.clone().branch("3").cseq(3).auth("Authorization", &ch, "alice", "alice-secret", 1);
    let r = pbx.ask(PHONE, &again.text());
    assert_eq!(status(&r), 401, "{r}");
    assert!(challenges(&r).iter().all(|v| v.ends_with(", stale=true")), "{r}");
    assert_eq!(pbx.calls.access.guard.failures, 0);
    // The next nc on the same nonce is fine.
    let next = req.clone().branch("4").cseq(4).auth("Authorization", &ch, "alice", "alice-secret", 2);
    assert_eq!(status(&pbx.ask(PHONE, &next.text())), 200);
}

// ---- 3. no user enumeration -------------------------------------------------------------

/// `text` with the Via branch, the To tag and the digest nonce replaced by placeholders.
fn masked(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.split("\r\n") {
        let mut l = line.to_owned();
        if let Some(i) = l.find(";branch=") {
            let end = l[i + 1..].find(';').map_or(l.len(), |j| i + 1 + j);
            l.replace_range(i..end, ";branch=BRANCH");
        }
        if l.starts_with("To:") {
            if let Some(i) = l.find(";tag=") {
                let end = l[i + 1..].find(';').map_or(l.len(), |j| i + 1 + j);
                l.replace_range(i..end, ";tag=TAG");
            }
        }
        if let Some(i) = l.find("nonce=\"") {
            let end = l[i + 7..].find('"').unwrap() + i + 7;
            l.replace_range(i + 7..end, "NONCE");
        }
        out.push(l);
    }
    out.join("\r\n")
}

/// The 401 and then the 403 a fresh server (same seeds) gives a REGISTER whose
/// credentials name `user` with a wrong password. The requests are the same for every
/// `user` but for the digest username and the branch of the second.
fn wrong_credentials(user: &str, branch: &str) -> (String, String, Pbx) {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").line(ALICE_CONTACT).call_id("same@198.51.100.7").cseq(7);
    let challenge = pbx.ask(PHONE, &req.clone().branch("c1").text());
    let ch = first_challenge(&challenge);
    let refusal = pbx.ask(PHONE, &req.clone().branch(branch).cseq(8).auth("Authorization", &ch, user, "not-the-secret", 1).text());
    (challenge, refusal, pbx)
}

#[test]
fn an_unknown_user_and_a_wrong_password_get_the_same_403() {
    let (_, wrong, a) = wrong_credentials("alice", "w");
    let (_, unknown, m) = wrong_credentials("mallory", "u");
    assert_eq!(status(&wrong), 403, "{wrong}");
    assert_eq!(status(&unknown), 403, "{unknown}");
    assert_ne!(wrong, unknown, "the branches differ on the wire");
    assert_eq!(masked(&wrong), masked(&unknown));
    assert!(masked(&wrong).contains(";branch=BRANCH") && masked(&wrong).contains(";tag=TAG"), "the masks applied:\n{}", masked(&wrong));
    assert!(headers(&wrong, "WWW-Authenticate").is_empty(), "no new challenge to try the next password on");
    for pbx in [&a, &m] {
        assert_eq!(pbx.calls.access.guard.failures, 1, "both count as failures");
        assert_eq!(pbx.calls.access.authenticated, 0);
    }
}

#[test]
fn known_and_unknown_users_get_the_same_challenge() {
    let challenge = |user: &str| {
        let mut pbx = Pbx::new("");
        let req = Req::register(user).line("Contact: <sip:u@198.51.100.7:5060>").call_id("same@198.51.100.7");
        let r = pbx.ask(PHONE, &req.text());
        (r, req)
    };
    let (a, alice) = challenge("alice");
    let (m, mallory) = challenge("mallory");
    assert_eq!((status(&a), status(&m)), (401, 401));
    // From and To echo the request (plus our To tag): the only place the two differ.
    for (resp, req) in [(&a, &alice), (&m, &mallory)] {
        assert_eq!(header(resp, "From"), req.from);
        assert_eq!(header(resp, "To"), format!("{};tag={}", req.to, to_tag(resp)));
    }
    let unecho = |t: &str| masked(t).replace("sip:mallory@", "sip:alice@");
    assert_ne!(a, m);
    assert_eq!(unecho(&a), unecho(&m));
    assert_eq!(challenges(&a).len(), 2);
}

/// The same within one server: a fresh nonce each, otherwise alike.
#[test]
fn one_server_challenges_known_and_unknown_users_alike() {
    let mut pbx = Pbx::new("");
    let alice = Req::register("alice").line(ALICE_CONTACT);
    let mallory = Req::register("mallory").line(ALICE_CONTACT).call_id("reg-mallory@198.51.100.7").branch("m");
    let a = pbx.ask(PHONE, &alice.text());
    let m = pbx.ask(PHONE, &mallory.text());
    assert_ne!(Challenge::parse(&challenges(&a)[0]).unwrap().nonce(), Challenge::parse(&challenges(&m)[0]).unwrap().nonce());
    let unecho = |t: &str| masked(t).replace("sip:mallory@", "sip:alice@").replace("reg-mallory@", "reg-alice@");
    assert_eq!(unecho(&a), unecho(&m));
}

// ---- 4. throttling and the ban, to the millisecond --------------------------------------

#[test]
fn throttle_then_ban_then_forgive() {
    let mut pbx = Pbx::new("throttle_after = 3\nthrottle_ms = 2000\nban_after = 5\nban_s = 60\nwindow_s = 300");
    let req = Req::register("alice").line(ALICE_CONTACT);
    let ch = first_challenge(&pbx.ask(PHONE, &req.text()));
    let guess = |n: u32| req.clone().branch(&format!("g{n}")).cseq(1 + n).auth("Authorization", &ch, "alice", &format!("guess{n}"), n);

    // Three failures, each answered at once.
    for n in 1..=3 {
        pbx.advance(ms(100));
        let r = pbx.ask(PHONE, &guess(n).text());
        assert_eq!(status(&r), 403, "guess {n}: {r}");
    }
    assert_eq!(pbx.calls.access.guard.failures, 3);
    assert_eq!(pbx.calls.access.guard.throttled, 0);

    // The 4th: its 403 comes exactly 2000 ms later, nothing before.
    pbx.advance(ms(100));
    let t4 = pbx.now;
    assert!(pbx.deliver(PHONE, &guess(4).text()).is_empty(), "held back");
    assert_eq!(pbx.calls.access.delayed_len(), 1);
    assert_eq!(pbx.calls.poll_timeout(), Some(t4 + ms(2000)));
    assert!(pbx.advance_to(t4 + ms(1999)).is_empty(), "nothing before 2000 ms");
    let out = pbx.advance_to(t4 + ms(2000));
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!((out[0].status(), out[0].at, out[0].to), (403, t4 + ms(2000), addr(PHONE)));
    assert_eq!(header(&out[0].text, "Via"), format!("SIP/2.0/UDP {PHONE};rport=5060;branch=z9hG4bKg4;received=198.51.100.7"));
    assert_eq!(pbx.calls.access.guard.failures, 4);
    assert_eq!(pbx.calls.access.guard.throttled, 1);
    assert!(pbx.calls.access.guard.bans(pbx.now).is_empty());

    // The 5th failure bans (its answer held back like the 4th's: it came while throttled).
    let t5 = pbx.now;
    assert!(pbx.deliver(PHONE, &guess(5).text()).is_empty());
    let ip = addr(PHONE).ip();
    let bans = pbx.calls.access.guard.bans(t5);
    assert_eq!(bans.len(), 1);
    assert_eq!((bans[0].source, bans[0].until), (ip, t5 + secs(60)));
    assert_eq!(pbx.calls.access.guard.bans, 1);
    let out = pbx.advance_to(t5 + ms(2000));
    assert_eq!(out.iter().map(|s| (s.status(), s.at)).collect::<Vec<_>>(), [(403, t5 + ms(2000))]);

    // Banned: even the right password gets 403, at once.
    let right =
        |n: u32, nc: u32| req.clone().branch(&format!("r{n}")).cseq(100 + n).auth("Authorization", &ch, "alice", "alice-secret", nc);
    let r = pbx.ask(PHONE, &right(1, 10).text());
    assert_eq!(status(&r), 403, "{r}");
    assert!(pbx.bindings("alice").is_empty());
    // A request without credentials too (no challenge for a banned source).
    assert_eq!(status(&pbx.ask(PHONE, &req.clone().branch("nc").cseq(150).text())), 403);
    // Another source is not affected.
    let other = req.clone().via("198.51.100.9:5060").call_id("other@198.51.100.9").branch("o");
    let out = pbx.deliver("198.51.100.9:5060", &other.text());
    assert_eq!(out.iter().map(Sent::status).collect::<Vec<_>>(), [401]);

    pbx.advance_to(t5 + ms(59_999));
    assert_eq!(status(&pbx.ask(PHONE, &right(2, 11).text())), 403, "1 ms before the ban ends");
    assert_eq!(pbx.calls.access.guard.refused, 3);
    assert_eq!(pbx.calls.access.authenticated, 0, "a banned source is not even checked");

    // The ban is over: the right password registers, without delay (the count restarted).
    pbx.advance_to(t5 + secs(60));
    let fresh = first_challenge(&pbx.ask(PHONE, &req.clone().branch("f").cseq(200).text()));
    let r = pbx.ask(PHONE, &req.clone().branch("f2").cseq(201).auth("Authorization", &fresh, "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(pbx.bindings("alice"), ["sip:alice@198.51.100.7:5060"]);
    let g = &pbx.calls.access.guard;
    assert_eq!((g.failures, g.throttled, g.bans, g.refused), (5, 2, 1, 3));
    assert!(g.bans(pbx.now).is_empty());
}

// ---- 5. who may register what -----------------------------------------------------------

#[test]
fn alice_cannot_register_bob() {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").to("<sip:bob@pbx.test>").line("Contact: <sip:bob@198.51.100.7:5060>");
    let r = register_alice(&mut pbx, &req);
    assert_eq!(status(&r), 403, "{r}");
    assert!(pbx.bindings("bob").is_empty() && pbx.bindings("alice").is_empty());
    assert_eq!(pbx.calls.access.authenticated, 1, "alice did authenticate");
    assert_eq!(pbx.calls.access.guard.failures, 0, "not a guessing failure");
}

#[test]
fn a_static_endpoint_cannot_register() {
    let mut pbx = Pbx::new("");
    let req = Req::register("carol").line("Contact: <sip:carol@198.51.100.7:5060>");
    let c = pbx.ask(PHONE, &req.text());
    assert_eq!(status(&c), 401);
    let r = pbx.ask(PHONE, &req.clone().branch("2").cseq(2).auth("Authorization", &first_challenge(&c), "carol", "carol-secret", 1).text());
    assert_eq!(status(&r), 403, "{r}");
    assert!(pbx.bindings("carol").is_empty());
    assert_eq!(pbx.calls.access.authenticated, 1);
}

#[test]
fn a_non_sip_to_is_a_bad_request() {
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").to("<tel:+15551234>").line(ALICE_CONTACT);
    let r = pbx.ask(PHONE, &req.text());
    assert_eq!(status(&r), 400, "before any challenge: {r}");
    assert!(headers(&r, "WWW-Authenticate").is_empty());
}

// ---- 6. INVITE from a source with a secret: 407 -----------------------------------------

/// The responses among `out` sent to `to`.
fn responses_to(out: &[Sent], to: &str) -> Vec<Sent> {
    out.iter().filter(|s| s.to == addr(to) && s.text.starts_with("SIP/2.0 ")).cloned().collect()
}

#[test]
fn invite_is_challenged_then_routed() {
    let mut pbx = Pbx::new("");
    let inv = Req::invite("trunk", STRANGER);
    let out = pbx.deliver(STRANGER, &inv.text());
    let answers = responses_to(&out, STRANGER);
    assert_eq!(answers.iter().map(Sent::status).collect::<Vec<_>>(), [407], "{out:#?}");
    let r = answers[0].text.clone();
    let rows = challenges(&r);
    assert_eq!(rows.len(), 2, "{r}");
    let nonce = Challenge::parse(&rows[0]).unwrap().nonce().to_owned();
    assert_eq!(rows[0], format!("Digest realm=\"pbx.test\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\""));
    assert_eq!(rows[1], format!("Digest realm=\"pbx.test\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""));
    assert!(headers(&r, "WWW-Authenticate").is_empty());
    assert!(out.iter().all(|s| s.to == addr(STRANGER)), "nothing goes to the trunk: {out:#?}");
    pbx.deliver(STRANGER, &inv.ack(&r));
    assert_eq!(pbx.calls.b2bua.stats().calls, 1);
    assert_eq!(pbx.calls.access.guard.failures, 0, "no credentials is no failure");

    // Wrong password: 403, ACKed.
    let wrong = inv.clone().branch("inv2").cseq(2).auth("Proxy-Authorization", &rows[0], "alice", "guess", 1);
    let out = pbx.deliver(STRANGER, &wrong.text());
    let answers = responses_to(&out, STRANGER);
    assert_eq!(answers.iter().map(Sent::status).collect::<Vec<_>>(), [403], "{out:#?}");
    assert!(headers(&answers[0].text, "Proxy-Authenticate").is_empty());
    assert!(out.iter().all(|s| s.to == addr(STRANGER)), "nothing goes to the trunk: {out:#?}");
    pbx.deliver(STRANGER, &wrong.ack(&answers[0].text));
    assert_eq!(pbx.calls.access.guard.failures, 1);
    assert!(pbx.calls.routed.is_empty());

    // The right one (the next nc on the nonce): 100 Trying back, the INVITE out to the
    // trunk by its name, without the credentials.
    let right = inv.clone().branch("inv3").cseq(3).auth("Proxy-Authorization", &rows[0], "alice", "alice-secret", 2);
    let out = pbx.deliver(STRANGER, &right.text());
    assert_eq!(responses_to(&out, STRANGER).iter().map(Sent::status).collect::<Vec<_>>(), [100], "{out:#?}");
    let fwd: Vec<&Sent> = out.iter().filter(|s| s.to == addr(TRUNK)).collect();
    assert_eq!(fwd.len(), 1, "{out:#?}");
    assert!(fwd[0].text.starts_with("INVITE sip:trunk@198.51.100.20:5060 SIP/2.0\r\n"), "{}", fwd[0].text);
    assert!(headers(&fwd[0].text, "Proxy-Authorization").is_empty(), "credentials are not passed on");
    assert_eq!(pbx.calls.routed.len(), 1);
    assert_eq!(pbx.calls.routed[0].1, ["alice".to_owned(), "trunk".to_owned()]);
    assert_eq!(pbx.calls.access.authenticated, 1);

    // The 407 and the 403 were ACKed: no Timer G retransmission of either.
    let later = pbx.advance(secs(5));
    let again = responses_to(&later, STRANGER);
    assert!(again.is_empty(), "{again:#?}");
}

/// A refused INVITE gets its final response and nothing else: no dialog was ever
/// confirmed, so there is nothing to BYE.
#[test]
fn a_challenged_invite_gets_no_bye() {
    let mut pbx = Pbx::new("");
    let inv = Req::invite("trunk", STRANGER);
    let out = pbx.deliver(STRANGER, &inv.text());
    assert_eq!(out.len(), 1, "only the 407: {out:#?}");
    assert_eq!(out[0].status(), 407);
    pbx.deliver(STRANGER, &inv.ack(&out[0].text));
    let later = pbx.advance(secs(40));
    assert!(later.is_empty(), "{later:#?}");
}

/// The same for a 403 (no extra headers): this path has no stray BYE.
#[test]
fn a_refused_invite_gets_no_bye() {
    let mut pbx = Pbx::new("");
    let inv = Req::invite("trunk", STRANGER);
    let ch = {
        let out = pbx.deliver(STRANGER, &inv.text());
        let r = responses_to(&out, STRANGER).remove(0).text;
        pbx.deliver(STRANGER, &inv.ack(&r));
        pbx.advance(secs(40));
        first_challenge(&r)
    };
    let wrong = inv.clone().branch("w").cseq(2).auth("Proxy-Authorization", &ch, "alice", "guess", 1);
    let out = pbx.deliver(STRANGER, &wrong.text());
    assert_eq!(out.iter().map(Sent::status).collect::<Vec<_>>(), [403], "{out:#?}");
    pbx.deliver(STRANGER, &wrong.ack(&out[0].text));
    let later = pbx.advance(secs(40));
    assert!(later.is_empty(), "{later:#?}");
}

/// The guard on the INVITE path, with the REGISTER path's timings: three wrong
/// passwords answered at once, the 4th's 403 exactly 2000 ms later (a 100 Trying from
/// the transaction layer meanwhile is fine, no final response).
#[test]
fn invite_guesses_are_throttled_from_the_4th() {
    let mut pbx = Pbx::new("throttle_after = 3\nthrottle_ms = 2000\nban_after = 5\nban_s = 60");
    let inv = Req::invite("trunk", STRANGER);
    let out = pbx.deliver(STRANGER, &inv.text());
    let r = responses_to(&out, STRANGER).remove(0).text;
    pbx.deliver(STRANGER, &inv.ack(&r));
    let ch = first_challenge(&r);
    for n in 1..=4u32 {
        pbx.advance(ms(100));
        let t = pbx.now;
        let guess = inv.clone().branch(&format!("g{n}")).cseq(1 + n).auth("Proxy-Authorization", &ch, "alice", "guess", n);
        let mut out = pbx.deliver(STRANGER, &guess.text());
        if n == 4 {
            let finals: Vec<Sent> =
                responses_to(&pbx.advance_to(t + ms(1999)), STRANGER).into_iter().filter(|s| s.status() >= 200).collect();
            assert!(finals.is_empty(), "nothing final before 2000 ms: {finals:#?}");
            out = pbx.advance_to(t + ms(2000));
        }
        let finals: Vec<Sent> = responses_to(&out, STRANGER).into_iter().filter(|s| s.status() >= 200).collect();
        assert_eq!(finals.iter().map(|s| (s.status(), s.at)).collect::<Vec<_>>(), [(403, pbx.now)], "guess {n}: {out:#?}");
        pbx.deliver(STRANGER, &guess.ack(&finals[0].text));
    }
    let g = &pbx.calls.access.guard;
    assert_eq!((g.failures, g.throttled), (4, 1));
}

#[test]
fn invite_from_a_static_endpoint_needs_no_credentials_and_unknown_callee_is_404() {
    let mut pbx = Pbx::new("");
    let inv = Req::invite("nobody", TRUNK);
    let out = pbx.deliver(TRUNK, &inv.text());
    assert_eq!(out.iter().map(Sent::status).collect::<Vec<_>>(), [404], "{out:#?}");
    // alice is not registered: 480.
    let inv = Req::invite("alice", TRUNK).branch("i2").call_id("c2");
    let out = pbx.deliver(TRUNK, &inv.text());
    assert_eq!(out.iter().map(Sent::status).collect::<Vec<_>>(), [480], "{out:#?}");
    assert!(pbx.deliver(TRUNK, &inv.ack(&out[0].text)).is_empty());
}

// ---- 7. calls to registered contacts ----------------------------------------------------

#[test]
fn a_call_reaches_the_registered_contact() {
    let mut pbx = Pbx::new("");
    let r = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT));
    assert_eq!(status(&r), 200);
    assert!(pbx.calls.registrar.bindings("alice")[0].nat.is_none(), "Via matches the source: no NAT");
    let out = pbx.deliver(TRUNK, &Req::invite("alice", TRUNK).text());
    let to_trunk: Vec<u16> = out.iter().filter(|s| s.to == addr(TRUNK)).map(Sent::status).collect();
    assert_eq!(to_trunk, [100]);
    let fwd: Vec<&Sent> = out.iter().filter(|s| s.to != addr(TRUNK)).collect();
    assert_eq!(fwd.len(), 1, "{out:#?}");
    assert_eq!(fwd[0].to, addr(PHONE));
    assert!(fwd[0].text.starts_with("INVITE sip:alice@198.51.100.7:5060 SIP/2.0\r\n"), "{}", fwd[0].text);
    assert_eq!(pbx.calls.routed[0].1, ["trunk".to_owned(), "alice".to_owned()]);
}

#[test]
fn a_call_forks_to_every_registered_contact() {
    let mut pbx = Pbx::new("");
    let r = register_alice(&mut pbx, &Req::register("alice").line(ALICE_CONTACT));
    assert_eq!(status(&r), 200);
    // The second phone, from its own address.
    let second = Req::register("alice").via(PHONE2).call_id("reg-2@198.51.100.8").line("Contact: <sip:alice@198.51.100.8:5060>");
    let c = pbx.ask(PHONE2, &second.text());
    let r =
        pbx.ask(PHONE2, &second.clone().branch("2").cseq(2).auth("Authorization", &first_challenge(&c), "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact").len(), 2, "{r}");

    let out = pbx.deliver(TRUNK, &Req::invite("alice", TRUNK).text());
    let mut invited: Vec<(SocketAddr, String)> =
        out.iter().filter(|s| s.to != addr(TRUNK)).map(|s| (s.to, s.text.lines().next().unwrap().to_owned())).collect();
    invited.sort();
    assert_eq!(
        invited,
        [
            (addr(PHONE), "INVITE sip:alice@198.51.100.7:5060 SIP/2.0".to_owned()),
            (addr(PHONE2), "INVITE sip:alice@198.51.100.8:5060 SIP/2.0".to_owned())
        ],
        "{out:#?}"
    );
}

#[test]
fn a_natted_registration_is_reached_at_its_source() {
    const NATTED: &str = "203.0.113.7:40000";
    let mut pbx = Pbx::new("");
    let req = Req::register("alice").via("10.0.0.5:5060").line("Contact: <sip:alice@10.0.0.5:5060>");
    let c = pbx.ask(NATTED, &req.text());
    assert_eq!(status(&c), 401);
    let r =
        pbx.ask(NATTED, &req.clone().branch("2").cseq(2).auth("Authorization", &first_challenge(&c), "alice", "alice-secret", 1).text());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact"), ["<sip:alice@10.0.0.5:5060>;expires=3600"], "the Contact as written");
    let b = &pbx.calls.registrar.bindings("alice")[0];
    assert!(b.nat.is_some(), "detected: {:?}", b.nat);
    assert_eq!(b.target.to_string(), "sip:alice@203.0.113.7:40000");

    let out = pbx.deliver(TRUNK, &Req::invite("alice", TRUNK).text());
    let fwd: Vec<&Sent> = out.iter().filter(|s| s.to != addr(TRUNK)).collect();
    assert_eq!(fwd.len(), 1, "{out:#?}");
    assert_eq!(fwd[0].to, addr(NATTED), "sent to where the REGISTER came from");
    assert!(fwd[0].text.starts_with("INVITE sip:alice@203.0.113.7:40000 SIP/2.0\r\n"), "{}", fwd[0].text);
}
