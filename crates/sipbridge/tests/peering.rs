//! Direct media across two peered sipbridge servers, with real phones (Debian's baresip,
//! driven headless by `../shared/interop/phone.sh`): p1 → s1 → (trunk) → s2 → p2.
//!
//! Each server has its phone as a static `nat = "yes"` endpoint (baresip sends its RTP
//! from 127.0.0.1, not from its SDP address: `../shared/interop/README.md`, "RTP source
//! caveat") and the other server as a static trunk endpoint; s1 routes the user `p2` to
//! s2, s2 has `p2` as an endpoint. After each answer both servers move their legs
//! (DIRECT_MEDIA.md): with `direct_media = "outgoing"` on both trunk endpoints there must
//! be no 491 at all; with `yes` re-INVITEs may cross on the trunk, and the glare must be
//! resolved within the RFC 3261 §14.1 back-off bounds.
//!
//! The third test is the one-server baseline of the same measure (answer → both legs
//! direct, `direct_after_ms`), for docs/BENCHMARKS.md. Every test prints its figures
//! (`cargo test --test peering -- --nocapture`; with `PEERING_LADDER=1` also the first
//! call's ladder and media history on each server).
//!
//! Addresses and ports, distinct per test so that the tests can run in parallel and
//! clear of interop.rs (phones 5062–5074, relay ports 30000–30199):
//!
//! | test | servers (SIP :5060, API :180xx) | relay ports | phones | phone RTP |
//! |---|---|---|---|---|
//! | outgoing | 127.0.0.21, .22 | 30200–30299, 30300–30399 | .23:5076, .24:5078 | 21520–21539, 21560–21579 |
//! | yes | 127.0.0.25, .26 | 30400–30499, 30500–30599 | .27:5080, .28:5082 | 21600–21619, 21640–21659 |
//! | one server | 127.0.0.29 | 30600–30699 | .30:5084, .31:5086 | 21680–21699, 21720–21739 |

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{api_json as api_get, Binary};

/// Calls per test.
const CALLS: usize = 20;

fn interop() -> PathBuf {
    common::shared().join("interop")
}

/// The phones of one test (`phone.sh` with its own run folder), all stopped on drop.
struct Phones {
    run: PathBuf,
}

impl Phones {
    fn script(&self, name: &str, args: &[&str]) -> Output {
        Command::new("bash").arg(interop().join(name)).args(args).env("INTEROP_RUN", &self.run).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs `phone.sh args`; its stdout, or the failure (with `context`, e.g. the servers' logs).
    fn ok(&self, args: &[&str], context: &dyn Fn() -> String) -> String {
        let o = self.script("phone.sh", args);
        assert!(
            o.status.success(),
            "phone.sh {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            context()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
}

impl Drop for Phones {
    fn drop(&mut self) {
        let _ = self.script("phone.sh", &["stopall"]);
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

/// One sipbridge server of a test.
struct Server {
    name: &'static str,
    api: String,
    bin: Binary,
}

impl Server {
    /// Starts sipbridge on `ip:5060` (API `ip:api_port`, relay `ports`) with `endpoints`
    /// (TOML `[[endpoint]]` / `[[route]]` tables), and waits for its API.
    fn start(test: &str, name: &'static str, ip: &str, api_port: u16, ports: &str, endpoints: &str) -> Server {
        let api = format!("{ip}:{api_port}");
        assert!(std::net::UdpSocket::bind((ip, 5060)).is_ok(), "{ip}:5060 is taken by another process");
        assert!(std::net::TcpListener::bind(&api).is_ok(), "{api} is taken by another process");
        let config = format!(
            "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n\
             [media]\naddress = \"{ip}\"\nports = \"{ports}\"\nverify_media = true\n[log]\nlevel = \"info\"\n{endpoints}"
        );
        let bin = Binary::start_in(common::temp_dir("peering", &format!("{test}-{name}")), &config);
        let server = Server { name, api, bin };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&server.api).is_err() {
            assert!(Instant::now() < deadline, "{name} did not start:\n{}", server.bin.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn calls(&self) -> Vec<serde_json::Value> {
        api_get(&self.api, "/api/calls").as_array().unwrap().clone()
    }

    /// The call with its ladder and media history, for failure messages.
    fn detail(&self, call: &serde_json::Value) -> String {
        let id = call["id"].as_str().map_or_else(|| call["id"].to_string(), str::to_owned);
        let d = api_get(&self.api, &format!("/api/calls/{id}"));
        format!("{} call detail:\n{}", self.name, serde_json::to_string_pretty(&d).unwrap())
    }
}

/// What one server said about one call, read while both servers showed it `direct`.
#[derive(Debug, Clone)]
struct Seen {
    direct_after_ms: u64,
    reinvites_sent: u64,
    glare_sent: u64,
    glare_received: u64,
    /// Packets the relay received (both legs) in one second while direct.
    relay_heard: u64,
    /// Each leg's media `remote` then.
    remotes: [String; 2],
}

impl Seen {
    fn of(call: &serde_json::Value) -> Seen {
        let n = |k: &str| call[k].as_u64().unwrap_or_else(|| panic!("no {k} in {call}"));
        Seen {
            direct_after_ms: n("direct_after_ms"),
            reinvites_sent: n("reinvites_sent"),
            glare_sent: n("glare_491_sent"),
            glare_received: n("glare_491_received"),
            relay_heard: 0,
            remotes: Default::default(),
        }
    }

    fn glare(&self) -> u64 {
        self.glare_sent + self.glare_received
    }
}

/// `CALLS` calls from phone `a` (its number `dial`) to phone `b`, one after another, each
/// hung up by `a` once every server shows it `direct` (at most `direct_within`); after
/// each hang-up every server must have forgotten the call. → per call, what each server
/// (in the order of `servers`) said.
fn run_calls(phones: &Phones, servers: &[&Server], a: &str, b: &str, dial: &str, direct_within: Duration) -> Vec<Vec<Seen>> {
    let logs = || servers.iter().map(|s| format!("--- {} log:\n{}", s.name, s.bin.stderr())).collect::<Vec<_>>().join("\n");
    let mut seen = Vec::new();
    for i in 0..CALLS {
        let (ma, mb) = (phones.ok(&["mark", a], &logs), phones.ok(&["mark", b], &logs));
        phones.ok(&["dial", a, dial], &logs);
        phones.ok(&["wait", b, "CALL_ESTABLISHED", "10", &mb], &logs);
        phones.ok(&["wait", a, "CALL_ESTABLISHED", "10", &ma], &logs);
        let established = Instant::now();
        let calls = loop {
            let calls: Vec<_> = servers.iter().map(|s| s.calls()).collect();
            let direct = calls.iter().all(|c| c.len() == 1 && c[0]["media_path"] == "direct" && c[0]["direct_after_ms"].is_u64());
            if direct {
                break calls;
            }
            if established.elapsed() > direct_within {
                let details: Vec<_> = servers.iter().zip(&calls).flat_map(|(s, cs)| cs.iter().map(|c| s.detail(c))).collect();
                panic!("call {i}: not direct on every server {direct_within:?} after the answer:\n{}\n{}", details.join("\n"), logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for (s, c) in servers.iter().zip(&calls) {
            assert_eq!(c[0]["media_reason"], "direct", "call {i} on {}: {}", s.name, s.detail(&c[0]));
        }
        if i == 0 && std::env::var_os("PEERING_LADDER").is_some() {
            for (s, c) in servers.iter().zip(&calls) {
                eprintln!("{}", s.detail(&c[0]));
            }
        }
        let mut row: Vec<Seen> = calls.iter().map(|c| Seen::of(&c[0])).collect();
        // While direct the relays hear nothing (packets in, 0.3 s and 1.3 s after), and each
        // server's legs point at the phones themselves: the chain collapsed end to end.
        std::thread::sleep(Duration::from_millis(300));
        let packets_in = |s: &Server| {
            let c = s.calls();
            [0, 1].map(|leg| c[0]["legs"][leg]["media"]["stats"]["packets_in"].as_u64().unwrap_or_default())
        };
        let before: Vec<[u64; 2]> = servers.iter().map(|s| packets_in(s)).collect();
        std::thread::sleep(Duration::from_secs(1));
        for ((s, r), b) in servers.iter().zip(row.iter_mut()).zip(&before) {
            let now = s.calls();
            let after = [0, 1].map(|leg| now[0]["legs"][leg]["media"]["stats"]["packets_in"].as_u64().unwrap_or_default());
            r.relay_heard = after[0] - b[0] + after[1] - b[1];
            r.remotes = [0, 1].map(|leg| now[0]["legs"][leg]["media"]["remote"].as_str().unwrap_or("-").to_owned());
        }
        eprintln!(
            "call {i:2}: {}",
            servers
                .iter()
                .zip(&row)
                .map(|(s, r)| format!(
                    "{}: direct_after_ms {:5} re-INVITEs {} 491 sent {} received {} relay heard {} packets in 1 s, remotes {:?}",
                    s.name, r.direct_after_ms, r.reinvites_sent, r.glare_sent, r.glare_received, r.relay_heard, r.remotes
                ))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        // The call is gone from the API after the hang-up: check it now.
        for ((s, c), r) in servers.iter().zip(&calls).zip(&row) {
            assert!(r.reinvites_sent >= 1, "call {i} on {}: direct without a re-INVITE? {}", s.name, s.detail(&c[0]));
        }
        phones.ok(&["hangup", a], &logs);
        phones.ok(&["wait", b, "CALL_CLOSED", "10", &mb], &logs);
        phones.ok(&["wait", a, "CALL_CLOSED", "10", &ma], &logs);
        let deadline = Instant::now() + Duration::from_secs(5);
        for s in servers {
            loop {
                let left = s.calls();
                if left.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "call {i}: {} still has it 5 s after the hang-up: {}\n{}",
                    s.name,
                    s.detail(&left[0]),
                    logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        seen.push(row);
    }
    seen
}

/// Every call, on every server, ended phone to phone: while direct the relay heard no
/// packet in a second (baresip sends 50 a second), and the server's legs point at the
/// phones (`phones`: their addresses, caller first).
fn assert_phone_to_phone(servers: &[&Server], phones: [&str; 2], seen: &[Vec<Seen>]) {
    for (i, row) in seen.iter().enumerate() {
        for (s, r) in servers.iter().zip(row) {
            assert_eq!(r.relay_heard, 0, "call {i}: {}'s relay still hears RTP while direct: {r:?}", s.name);
            for (remote, phone) in r.remotes.iter().zip(phones) {
                assert!(
                    remote.starts_with(&format!("{phone}:")),
                    "call {i}: {}'s legs do not point at the phones {phones:?}: {r:?}",
                    s.name
                );
            }
        }
    }
}

/// (median, worst) of `v` (the median of an even count: the mean of the middle two).
fn median_worst(v: &[u64]) -> (u64, u64) {
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    let median = if n % 2 == 0 { (v[n / 2 - 1] + v[n / 2]) / 2 } else { v[n / 2] };
    (median, v[n - 1])
}

fn summary(label: &str, servers: &[&Server], seen: &[Vec<Seen>]) {
    for (k, s) in servers.iter().enumerate() {
        let ms: Vec<u64> = seen.iter().map(|r| r[k].direct_after_ms).collect();
        let (median, worst) = median_worst(&ms);
        let min = ms.iter().min().copied().unwrap_or_default();
        let glare: u64 = seen.iter().map(|r| r[k].glare()).sum();
        eprintln!("{label} {}: {} calls, direct_after_ms median {median} worst {worst} best {min}; 491s {glare}", s.name, seen.len());
    }
    if servers.len() > 1 {
        let ms: Vec<u64> = seen.iter().map(|r| r.iter().map(|x| x.direct_after_ms).max().unwrap_or_default()).collect();
        let (median, worst) = median_worst(&ms);
        eprintln!("{label} both servers direct (the later of the two): median {median} worst {worst}");
    }
}

/// The two servers of a chain test and their phones, with the trunk endpoints in
/// `trunk_mode`. `base` is the last byte of s1's address: s1 = base, s2 = base+1,
/// p1 = base+2 at `p1_port`, p2 = base+3 at `p2_port`; relay ports from `ports_base`.
struct Chain {
    phones: Phones,
    s1: Server,
    s2: Server,
    s1_ip: String,
    p1_ip: String,
    p2_ip: String,
}

impl Chain {
    fn start(test: &str, trunk_mode: &str, base: u8, p1_port: u16, p2_port: u16, ports_base: u16) -> Chain {
        let ip = |k: u8| format!("127.0.0.{}", base + k);
        let (s1_ip, s2_ip, p1_ip, p2_ip) = (ip(0), ip(1), ip(2), ip(3));
        let s1 = Server::start(
            test,
            "s1",
            &s1_ip,
            18000 + u16::from(base),
            &format!("{}-{}", ports_base, ports_base + 99),
            &format!(
                "[[endpoint]]\nname = \"p1\"\nhost = \"{p1_ip}:{p1_port}\"\nnat = \"yes\"\ndirect_media = \"yes\"\n\
                 [[endpoint]]\nname = \"s2\"\nhost = \"{s2_ip}:5060\"\nnat = \"no\"\ndirect_media = \"{trunk_mode}\"\n\
                 [[route]]\nmatch = \"^p2$\"\nto = \"s2\"\n"
            ),
        );
        let s2 = Server::start(
            test,
            "s2",
            &s2_ip,
            18000 + u16::from(base) + 1,
            &format!("{}-{}", ports_base + 100, ports_base + 199),
            &format!(
                "[[endpoint]]\nname = \"p2\"\nhost = \"{p2_ip}:{p2_port}\"\nnat = \"yes\"\ndirect_media = \"yes\"\n\
                 [[endpoint]]\nname = \"s1\"\nhost = \"{s1_ip}:5060\"\nnat = \"no\"\ndirect_media = \"{trunk_mode}\"\n"
            ),
        );
        let phones = Phones { run: common::temp_dir("peering", &format!("{test}-phones")) };
        let logs = || format!("--- s1:\n{}\n--- s2:\n{}", s1.bin.stderr(), s2.bin.stderr());
        phones.ok(&["start", "p1", &format!("{p1_ip}:{p1_port}"), "--tone", "1000", "--no-record", "--lifetime", "300"], &logs);
        phones.ok(&["start", "p2", &format!("{p2_ip}:{p2_port}"), "--tone", "600", "--no-record", "--lifetime", "300"], &logs);
        Chain { phones, s1, s2, s1_ip, p1_ip, p2_ip }
    }

    fn run(&self, direct_within: Duration) -> Vec<Vec<Seen>> {
        let dial = format!("sip:p2@{}:5060", self.s1_ip);
        run_calls(&self.phones, &[&self.s1, &self.s2], "p1", "p2", &dial, direct_within)
    }
}

/// `direct_media = "outgoing"` on both trunk endpoints: each server withholds its first
/// request on the leg it did not create (s1's trunk leg is outbound, s2's inbound), so the
/// re-INVITEs never cross and there is no 491, on any call, on either server.
#[test]
fn outgoing_on_both_trunks_means_no_491_and_every_call_direct() {
    let chain = Chain::start("outgoing", "outgoing", 21, 5076, 5078, 30200);
    // verify window (2 s) + the withheld request (up to 4 s) + a margin.
    let seen = chain.run(Duration::from_secs(10));
    summary("outgoing", &[&chain.s1, &chain.s2], &seen);
    assert_phone_to_phone(&[&chain.s1, &chain.s2], [&chain.p1_ip, &chain.p2_ip], &seen);
    for (i, row) in seen.iter().enumerate() {
        for (name, r) in ["s1", "s2"].iter().zip(row) {
            assert_eq!((r.glare_sent, r.glare_received), (0, 0), "call {i} on {name}: a 491 in outgoing mode: {r:?}");
        }
    }
}

/// `direct_media = "yes"` on both trunk endpoints: both servers re-INVITE the trunk at
/// about the same time, so glare may happen; every call still ends direct on both, and a
/// call with a 491 is direct within the verify window (2 s) + the owner's back-off
/// (≤ 4 s) + a margin of 2 s.
#[test]
fn yes_on_both_trunks_resolves_glare_within_rfc_bounds() {
    let chain = Chain::start("yes", "yes", 25, 5080, 5082, 30400);
    let seen = chain.run(Duration::from_secs(15));
    summary("yes", &[&chain.s1, &chain.s2], &seen);
    let mut with_glare = 0;
    for (i, row) in seen.iter().enumerate() {
        if row.iter().any(|r| r.glare() > 0) {
            with_glare += 1;
            for (name, r) in ["s1", "s2"].iter().zip(row) {
                assert!(
                    r.direct_after_ms <= 8000,
                    "call {i} on {name}: glare resolved after {} ms (> 2 + 4 + 2 s): {row:?}",
                    r.direct_after_ms
                );
            }
        }
    }
    let sent: u64 = seen.iter().flatten().map(|r| r.glare_sent).sum();
    let received: u64 = seen.iter().flatten().map(|r| r.glare_received).sum();
    eprintln!("yes: {with_glare} of {} calls had glare; 491 sent {sent}, received {received} (both servers)", seen.len());
    // Every 491 one server sends, the other receives.
    assert_eq!(sent, received, "491s sent and received do not match: {seen:?}");
    assert_phone_to_phone(&[&chain.s1, &chain.s2], [&chain.p1_ip, &chain.p2_ip], &seen);
}

/// The baseline: one server between two phones, the same measure, for docs/BENCHMARKS.md.
#[test]
fn one_server_direct_timing() {
    let (ip, a, b) = ("127.0.0.29", "127.0.0.30:5084", "127.0.0.31:5086");
    let s = Server::start(
        "one",
        "s",
        ip,
        18029,
        "30600-30699",
        &format!(
            "[[endpoint]]\nname = \"a\"\nhost = \"{a}\"\nnat = \"yes\"\ndirect_media = \"yes\"\n\
             [[endpoint]]\nname = \"b\"\nhost = \"{b}\"\nnat = \"yes\"\ndirect_media = \"yes\"\n"
        ),
    );
    let phones = Phones { run: common::temp_dir("peering", "one-phones") };
    let logs = || s.bin.stderr();
    phones.ok(&["start", "a", a, "--tone", "1000", "--no-record", "--lifetime", "300"], &logs);
    phones.ok(&["start", "b", b, "--tone", "600", "--no-record", "--lifetime", "300"], &logs);
    let seen = run_calls(&phones, &[&s], "a", "b", &format!("sip:b@{ip}:5060"), Duration::from_secs(10));
    summary("one server", &[&s], &seen);
    assert_phone_to_phone(&[&s], ["127.0.0.30", "127.0.0.31"], &seen);
    for (i, row) in seen.iter().enumerate() {
        assert_eq!(row[0].glare(), 0, "call {i}: a 491 with one server: {:?}", row[0]);
    }
}
