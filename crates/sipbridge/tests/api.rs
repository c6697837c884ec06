//! The HTTP API and `sipbridge show` against the built binary, with real SIPp calls
//! through it (Debian's sip-tester; the scenarios of `../shared/bench/scenarios`, read in
//! place).
//!
//! Each test has loopback addresses of its own (sipbridge and its API on .x0, the caller
//! on .x1, the callee on .x2) so they can run at once; every wait is bounded and every
//! child is killed when the test ends, failed or not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use serde_json::Value;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

/// The bound on any wait for something that should happen (milliseconds on an idle
/// machine).
const WAIT: Duration = Duration::from_secs(10);
const API_PORT: u16 = 18080;

mod common;

use common::{http, text, Binary, Kid};

fn scenario(name: &str) -> String {
    common::bench_scenario(name)
}

fn sipp(ip: &str, port: u16, args: &[&str]) -> Kid {
    common::sipp(ip, port, "30s", args)
}

/// sipbridge on `ip:5060` with its API on `ip:18080`, endpoints `caller` (`caller_ip:5080`)
/// and `callee` (`callee_ip:5070`), every dialled user routed to `callee`.
struct Server {
    bin: Binary,
    ip: String,
}

impl Server {
    fn start(name: &str, ip: &str, caller_ip: &str, callee_ip: &str) -> Server {
        let config = format!(
            "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{ip}:{API_PORT}\"\n[store]\nurl = \"memory\"\n\
             [media]\naddress = \"{ip}\"\n[log]\nlevel = \"info\"\n\
             [[endpoint]]\nname = \"caller\"\nhost = \"{caller_ip}:5080\"\nqualify = false\ndirect_media = \"no\"\n\
             [[endpoint]]\nname = \"callee\"\nhost = \"{callee_ip}:5070\"\nqualify = false\ndirect_media = \"no\"\n\
             [[route]]\nmatch = \".*\"\nto = \"callee\"\n"
        );
        // A stray process on these addresses would answer in our place.
        assert!(std::net::UdpSocket::bind((ip, 5060)).is_ok(), "{ip}:5060 is taken by another process");
        assert!(std::net::TcpListener::bind((ip, API_PORT)).is_ok(), "{ip}:{API_PORT} is taken by another process");
        let s = Server { bin: Binary::start_in(common::temp_dir("api", name), &config), ip: ip.to_owned() };
        // Ready when the API answers (it is bound after the SIP sockets).
        let deadline = Instant::now() + WAIT;
        while http(&s.api(), "GET", "/api/health").is_err() {
            assert!(Instant::now() < deadline, "the API on {} never answered; stderr:\n{}", s.api(), s.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn api(&self) -> String {
        format!("{}:{API_PORT}", self.ip)
    }

    fn url(&self) -> String {
        format!("http://{}", self.api())
    }

    fn stderr(&self) -> String {
        self.bin.stderr()
    }

    /// `GET path` → (status, body), failing the test when the API is unreachable.
    fn get(&self, path: &str) -> (u16, String) {
        http(&self.api(), "GET", path).unwrap_or_else(|e| panic!("GET {path}: {e}\nsipbridge:\n{}", self.stderr()))
    }

    fn post(&self, path: &str) -> (u16, String) {
        http(&self.api(), "POST", path).unwrap_or_else(|e| panic!("POST {path}: {e}\nsipbridge:\n{}", self.stderr()))
    }

    /// `GET path` that must answer 200 with JSON.
    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// The value of one sample of `/metrics` (`name` with its labels, if any).
    fn metric(&self, sample: &str) -> u64 {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{sample} missing from /metrics:\n{body}"))
    }

    /// Polls `GET /api/calls` until `pred` holds, at most [`WAIT`].
    fn calls_until(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let calls = self.json("/api/calls");
            let calls = calls.as_array().unwrap().clone();
            if pred(&calls) {
                return calls;
            }
            assert!(Instant::now() < deadline, "{what}: never; last /api/calls: {calls:?}\nsipbridge:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `sipbridge show WHAT --api URL` → (exit code, stdout, stderr).
fn show(what: &str, url: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipbridge")).args(["show", what, "--api", url]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn options(from: &str, to: &str, call_id: &str) -> String {
    format!(
        "OPTIONS sip:sipbridge@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{from}>;tag=t-{call_id}\r\nTo: <sip:sipbridge@{to}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Whether `ladder` has a message `direction` on `leg` whose first line starts with `start`.
fn has(ladder: &[Value], direction: &str, leg: &str, start: &str, peer: &str) -> bool {
    ladder.iter().any(|m| {
        m["direction"] == direction
            && m["leg"] == leg
            && m["peer"] == peer
            && m["first_line"].as_str().is_some_and(|l| l.starts_with(start))
            && m["time"].as_str().is_some_and(|t| t.ends_with('Z'))
    })
}

#[test]
fn health_metrics_endpoints_errors_and_a_call_with_its_ladder() {
    let (ip, caller, callee) = ("127.0.0.70", "127.0.0.71", "127.0.0.72");
    let server = Server::start("call", ip, caller, callee);

    // Health, and errors as JSON.
    assert_eq!(server.get("/api/health"), (200, "{\"status\":\"ok\"}".to_owned()));
    let (status, body) = server.get("/api/calls/abc");
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].as_str().unwrap().contains("abc"), "{body}");
    assert_eq!(server.get("/api/calls/999").0, 404);
    assert_eq!(server.post("/api/calls/999/hangup").0, 404);
    assert_eq!(server.get("/api/nothing-here").0, 404);

    // Metrics: the names, HELP and TYPE lines, and a counter that moves with traffic.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "sipbridge_calls_active",
        "sipbridge_calls_total",
        "sipbridge_calls_answered_total",
        "sipbridge_glare_491_sent_total",
        "sipbridge_transactions",
        "sipbridge_sip_messages_received_total",
        "sipbridge_sip_retransmissions_absorbed_total",
        "sipbridge_sip_parse_errors_total",
        "sipbridge_relay_packets_total",
        "sipbridge_relay_lost_packets_total",
        "sipbridge_relay_calls",
        "sipbridge_relay_free_port_pairs",
    ] {
        assert!(metrics.contains(&format!("\n# HELP {name} ")) || metrics.starts_with(&format!("# HELP {name} ")), "{name}:\n{metrics}");
        assert!(metrics.contains(&format!("# TYPE {name} ")), "{name}:\n{metrics}");
    }
    for outcome in ["completed", "failed", "cancelled", "no_reply"] {
        assert_eq!(server.metric(&format!("sipbridge_calls_total{{outcome=\"{outcome}\"}}")), 0);
    }
    let before = server.metric("sipbridge_sip_messages_received_total");
    let probe = UdpSocket::bind((caller, 0)).unwrap();
    probe.set_read_timeout(Some(WAIT)).unwrap();
    let me = probe.local_addr().unwrap().to_string();
    probe.send_to(options(&me, &format!("{ip}:5060"), "api-probe-1").as_bytes(), (ip, 5060)).unwrap();
    let mut buf = [0u8; 4096];
    let n = probe.recv(&mut buf).expect("OPTIONS is answered");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(server.metric("sipbridge_sip_messages_received_total"), before + 1);

    // Endpoints, from the config; state unknown until qualify exists.
    let endpoints = server.json("/api/endpoints");
    let names: Vec<&str> = endpoints.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["caller", "callee"]);
    assert_eq!(endpoints[1]["host"], format!("{callee}:5070"));
    assert_eq!(endpoints[1]["state"], "unknown");
    assert!(endpoints[1]["rtt_ms"].is_null() && endpoints[1]["registrations"].as_array().unwrap().is_empty());
    let (code, out, err) = show("endpoints", &server.url());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.starts_with("callee") && l.contains(&format!("{callee}:5070")) && l.contains("unknown")), "{out}");
    assert_eq!(show("registrations", &server.url()).1, "no registrations\n");
    assert_eq!(show("calls", &server.url()).1, "no calls\n");

    // A call held for 5 s: caller (SIPp UAC) → sipbridge → callee (SIPp UAS).
    let uas = sipp(callee, 5070, &["-sf", &scenario("uas.xml"), "-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let target = format!("{ip}:5060");
    let uac = sipp(caller, 5080, &[&target, "-sf", &scenario("uac.xml"), "-m", "1", "-d", "5000"]);
    // Answered, ACKed, and the media-path policy has decided: both SIPps are
    // `direct_media = "no"` (SIPp cannot take a re-INVITE).
    let calls = server.calls_until("the call is answered and its media decided", |c| {
        c.len() == 1 && c[0]["state"] == "answered" && c[0]["media_reason"].as_str().is_some_and(|r| r.contains("direct_media = no"))
    });
    let call = &calls[0];
    let a_call_id = call["legs"][0]["call_id"].as_str().unwrap();
    let b_call_id = call["legs"][1]["call_id"].as_str().unwrap();
    assert!(a_call_id.ends_with(&format!("@{caller}")), "SIPp's Call-ID on the A leg: {call}");
    assert!(!b_call_id.is_empty() && b_call_id != a_call_id, "{call}");
    assert_eq!(call["legs"][0]["endpoint"], "caller", "{call}");
    assert_eq!(call["legs"][1]["endpoint"], "callee", "{call}");
    assert_eq!(call["legs"][0]["media"]["remote"], format!("{caller}:15080"), "SIPp's media port: {call}");
    assert_eq!(call["legs"][1]["media"]["remote"], format!("{callee}:15070"), "{call}");
    for leg in 0..2 {
        assert!(call["legs"][leg]["media"]["local"].as_str().unwrap().starts_with(&format!("{ip}:")), "{call}");
    }
    assert_eq!(call["media_path"], "relayed");
    assert_eq!(call["media_reason"], "relayed: caller has direct_media = no", "{call}");
    assert_eq!((call["reinvites_sent"].as_u64(), call["direct_after_ms"].as_u64()), (Some(0), None), "{call}");
    assert!(call["from"].as_str().unwrap().contains(caller), "{call}");
    assert!(call["started_at"].as_str().unwrap().ends_with('Z'), "{call}");

    let id = call["id"].as_u64().unwrap();
    let detail = server.json(&format!("/api/calls/{id}"));
    assert_eq!(detail["legs"], call["legs"]);
    let ladder = detail["ladder"].as_array().unwrap();
    let (a_peer, b_peer) = (format!("{caller}:5080"), format!("{callee}:5070"));
    assert!(has(ladder, "in", "a", "INVITE ", &a_peer), "{ladder:#?}");
    assert!(has(ladder, "out", "b", "INVITE ", &b_peer), "{ladder:#?}");
    assert!(has(ladder, "in", "b", "SIP/2.0 200", &b_peer), "{ladder:#?}");
    assert!(has(ladder, "out", "a", "SIP/2.0 200", &a_peer), "{ladder:#?}");
    assert!(has(ladder, "in", "a", "ACK ", &a_peer), "{ladder:#?}");
    assert_eq!(ladder[0]["first_line"].as_str().map(|l| l.starts_with("INVITE ")), Some(true), "the INVITE in comes first: {ladder:#?}");
    let times: Vec<u64> = ladder.iter().map(|m| m["t_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order: {times:?}");
    assert!(!ladder.iter().any(|m| m["first_line"].as_str().unwrap().starts_with("OPTIONS")), "the probe is no call's: {ladder:#?}");
    assert_eq!(detail["media_history"][0]["media_path"], "relayed");

    let (code, out, err) = show("calls", &server.url());
    assert_eq!(code, Some(0), "{err}");
    let row = out.lines().find(|l| l.starts_with(&id.to_string())).unwrap_or_else(|| panic!("call {id} missing:\n{out}"));
    assert!(row.contains(caller) && row.contains("answered") && row.contains("relayed"), "{out}");
    // The relay holds the call's ports, and each leg shows its counters.
    assert_eq!(server.metric("sipbridge_relay_calls"), 1);
    let (_, body) = server.get("/api/calls");
    let calls: Vec<Value> = serde_json::from_str(&body).unwrap();
    for leg in calls[0]["legs"].as_array().unwrap() {
        assert!(leg["media"]["stats"]["packets_in"].is_u64(), "per-leg relay counters: {leg:#}");
    }

    // The caller hangs up after 5 s: both SIPps succeed, the call leaves the list, and the
    // ladder (still there while the call layer remembers it) ends with the BYE's 200.
    let uac = uac.wait(Duration::from_secs(30));
    let uas = uas.wait(Duration::from_secs(30));
    assert!(uac.status.success(), "UAC:\n{}\nsipbridge:\n{}", text(&uac), server.stderr());
    assert!(uas.status.success(), "UAS:\n{}\nsipbridge:\n{}", text(&uas), server.stderr());
    server.calls_until("the call ends", <[Value]>::is_empty);
    assert_eq!(server.metric("sipbridge_calls_total{outcome=\"completed\"}"), 1);
    assert_eq!(server.metric("sipbridge_calls_answered_total"), 1);
    assert_eq!(server.metric("sipbridge_calls_active"), 0);
    assert_eq!(server.metric("sipbridge_relay_calls"), 0, "the relay ports are released");
    let (status, body) = server.get(&format!("/api/calls/{id}"));
    if status == 200 {
        let detail: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(detail["state"], "ended");
        let ladder = detail["ladder"].as_array().unwrap();
        assert!(has(ladder, "in", "a", "BYE ", &a_peer) && has(ladder, "out", "b", "BYE ", &b_peer), "{ladder:#?}");
        assert_eq!(server.post(&format!("/api/calls/{id}/hangup")).0, 409, "an ended call cannot be hung up again");
    } else {
        assert_eq!(status, 404, "{body}");
    }
}

#[test]
fn hangup_through_the_api_ends_the_call_on_both_legs() {
    let (ip, caller, callee) = ("127.0.0.73", "127.0.0.74", "127.0.0.75");
    let server = Server::start("hangup", ip, caller, callee);
    let uas = sipp(callee, 5070, &["-sf", &scenario("uas.xml"), "-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    // A long hold: the call only ends early because we hang it up. The UAC gets a BYE it
    // does not expect, answers it 200 and counts its call failed.
    let target = format!("{ip}:5060");
    let uac = sipp(caller, 5080, &[&target, "-sf", &scenario("uac.xml"), "-m", "1", "-d", "20000"]);
    // Answered, ACKed, and the media-path policy has decided: both SIPps are
    // `direct_media = "no"` (SIPp cannot take a re-INVITE).
    let calls = server.calls_until("the call is answered and its media decided", |c| {
        c.len() == 1 && c[0]["state"] == "answered" && c[0]["media_reason"].as_str().is_some_and(|r| r.contains("direct_media = no"))
    });
    let id = calls[0]["id"].as_u64().unwrap();
    let started = Instant::now();

    let (status, body) = server.post(&format!("/api/calls/{id}/hangup"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::json!({ "hung_up": id }));
    server.calls_until("the hung-up call leaves the list", <[Value]>::is_empty);
    let (status, body) = server.post(&format!("/api/calls/{id}/hangup"));
    assert!(status == 409 || status == 404, "a second hangup: {status} {body}");

    // The callee got the BYE its scenario waits for; the caller got one too, long
    // before its 20 s hold was up.
    let uas = uas.wait(Duration::from_secs(15));
    assert!(uas.status.success(), "UAS:\n{}\nsipbridge:\n{}", text(&uas), server.stderr());
    let uac = uac.wait(Duration::from_secs(15));
    assert!(started.elapsed() < Duration::from_secs(15), "the UAC ran out its hold: the BYE never reached it\n{}", text(&uac));

    let detail = server.json(&format!("/api/calls/{id}"));
    assert_eq!(detail["state"], "ended");
    assert!(detail["end_reason"].as_str().unwrap().contains("HTTP API"), "{detail}");
    let ladder = detail["ladder"].as_array().unwrap();
    assert!(has(ladder, "out", "a", "BYE ", &format!("{caller}:5080")), "{ladder:#?}");
    assert!(has(ladder, "out", "b", "BYE ", &format!("{callee}:5070")), "{ladder:#?}");
    assert_eq!(server.metric("sipbridge_calls_total{outcome=\"completed\"}"), 1);
    assert_eq!(server.metric("sipbridge_calls_active"), 0);
}
