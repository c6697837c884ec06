//! The registrar end to end over real sockets with SIPp (Debian's sip-tester): a phone
//! registers with digest authentication (`tests/sipp/register.xml`, `-au`/`-ap`), the API
//! lists its binding, calls to its endpoint name reach the registered contact, the binding
//! survives a restart on an SQLite file or a PostgreSQL database, two contacts ring in
//! parallel (the first answer wins, the other is cancelled) and a binding expires on time.
//!
//! SIPp 3.6 only knows MD5 and answers the first WWW-Authenticate row: the configs put
//! MD5 first. Each test has five loopback addresses of its own from 127.0.0.130-149
//! (sipbridge and its API on the first, the phones next, the caller after them) so they
//! can run at once; every SIPp is bounded by `-timeout` and killed when the test ends,
//! failed or not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

mod common;

use common::{http, sipp_counts, text, Binary, Kid};

/// SIPp bounded by a 15 s `-timeout`.
fn sipp15(ip: &str, port: u16, args: &[&str]) -> Kid {
    common::sipp(ip, port, "15s", args)
}

/// The bound on any wait for something that should happen (milliseconds on an idle
/// machine).
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "s3cret";

fn bench_scenario(name: &str) -> String {
    common::bench_scenario(name)
}

fn our_scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name).display().to_string()
}

/// sipbridge on `ip:5060` (UDP) with its API on `ip:api_port`: the dynamic endpoint
/// `phone` (secret [`PASSWORD`]), the static caller `uac` at `uac_ip:5080` without a
/// secret, every dialled user routed to `phone`.
struct Server {
    bin: Binary,
    ip: String,
    api: String,
}

impl Server {
    /// `store` is `[store] url`, `{dir}` in it replaced by the server's temp folder;
    /// `extra` is appended to the config.
    fn start(name: &str, ip: &str, api_port: u16, uac_ip: &str, store: &str, extra: &str) -> Server {
        // A stray process on these addresses would answer in our place.
        assert!(std::net::UdpSocket::bind((ip, 5060)).is_ok(), "{ip}:5060 is taken by another process");
        assert!(std::net::TcpListener::bind((ip, api_port)).is_ok(), "{ip}:{api_port} is taken by another process");
        let dir = common::temp_dir("registrar", name);
        let store = store.replace("{dir}", &dir.display().to_string());
        let config = format!(
            "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{ip}:{api_port}\"\n[store]\nurl = \"{store}\"\n\
             [media]\naddress = \"{ip}\"\n[log]\nlevel = \"info\"\n[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n{extra}\n\
             [[endpoint]]\nname = \"phone\"\nhost = \"dynamic\"\nsecret = \"{PASSWORD}\"\nqualify = false\ndirect_media = \"no\"\n\
             [[endpoint]]\nname = \"uac\"\nhost = \"{uac_ip}:5080\"\nqualify = false\ndirect_media = \"no\"\n\
             [[route]]\nmatch = \".*\"\nto = \"phone\"\n"
        );
        let s = Server { bin: Binary::start_in(dir, &config), ip: ip.to_owned(), api: format!("{ip}:{api_port}") };
        s.wait_ready(1);
        s
    }

    /// Ready when the `starts`th start has opened the store (logged once the bindings are
    /// restored, the log being appended to on a restart) and the API answers.
    fn wait_ready(&self, starts: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.stderr();
            if log.matches("store open").count() >= starts && http(&self.api, "GET", "/api/health").is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "sipbridge on {} never got ready; stderr:\n{log}", self.ip);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        self.bin.stderr()
    }

    /// SIGTERM, a clean exit (status 0), and the same binary on the same folder and config
    /// started again.
    fn restart(&mut self) {
        let status = self.bin.terminate(WAIT);
        assert!(status.success(), "exit status {status:?} after SIGTERM; stderr:\n{}", self.stderr());
        let starts = self.stderr().matches("store open").count();
        self.bin.restart();
        self.wait_ready(starts + 1);
    }

    /// `GET /api/endpoints`' `registrations` of `phone`.
    fn registrations(&self) -> Vec<Value> {
        let (status, body) =
            http(&self.api, "GET", "/api/endpoints").unwrap_or_else(|e| panic!("GET /api/endpoints: {e}\nsipbridge:\n{}", self.stderr()));
        assert_eq!(status, 200, "GET /api/endpoints: {body}");
        let endpoints: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        let phone = endpoints.as_array().unwrap().iter().find(|e| e["name"] == "phone").unwrap_or_else(|| panic!("no phone: {body}"));
        assert_eq!(phone["host"], "dynamic", "{body}");
        phone["registrations"].as_array().unwrap().clone()
    }

    /// Checks the registrations are exactly the phones at `ips` (port 5070, over UDP).
    fn assert_registered(&self, ips: &[&str], when: &str) {
        let regs = self.registrations();
        let mut got: Vec<(String, String)> =
            regs.iter().map(|r| (r["contact"].as_str().unwrap().to_owned(), r["source"].as_str().unwrap().to_owned())).collect();
        got.sort();
        let want: Vec<(String, String)> = ips.iter().map(|ip| (format!("sip:phone@{ip}:5070"), format!("udp:{ip}:5070"))).collect();
        assert_eq!(got, want, "{when}: registrations {regs:?}\nsipbridge:\n{}", self.stderr());
        for r in &regs {
            assert!(r["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
        }
    }

    /// A SIPp REGISTER of `phone` from `phone_ip:5070` with `password`, for `expires` s.
    fn register(&self, phone_ip: &str, password: &str, expires: u32, trace: Option<&str>) -> Output {
        let remote = format!("{}:5060", self.ip);
        let scenario = our_scenario("register.xml");
        let expires = expires.to_string();
        let mut args = vec![remote.as_str(), "-sf", &scenario, "-m", "1", "-au", "phone", "-ap", password];
        args.extend(["-set", "user", "phone", "-set", "expires", &expires]);
        if let Some(file) = trace {
            args.extend(["-trace_msg", "-message_file", file]);
        }
        sipp15(phone_ip, 5070, &args).output()
    }

    /// A registration that must succeed.
    fn register_ok(&self, phone_ip: &str, expires: u32) {
        let out = self.register(phone_ip, PASSWORD, expires, None);
        let (ok, failed) = sipp_counts(&out);
        assert!(
            out.status.success() && (ok, failed) == (1, 0),
            "REGISTER from {phone_ip}: {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
            text(&out),
            self.stderr()
        );
    }

    /// A call from the static `uac` at `uac_ip:5080` to `phone` with `scenario`.
    fn call(&self, uac_ip: &str, scenario: &str) -> Output {
        let remote = format!("{}:5060", self.ip);
        sipp15(uac_ip, 5080, &[&remote, "-sf", scenario, "-s", "phone", "-m", "1", "-d", "0"]).output()
    }

    /// A call to `phone` that must complete (answered, BYE, 200).
    fn call_ok(&self, uac_ip: &str, when: &str) {
        let out = self.call(uac_ip, &bench_scenario("uac.xml"));
        let (ok, failed) = sipp_counts(&out);
        assert!(
            out.status.success() && (ok, failed) == (1, 0),
            "{when}: UAC {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
            text(&out),
            self.stderr()
        );
    }
}

/// The UAS at `ip:5070` with `scenario` for `calls` calls.
fn uas(ip: &str, scenario: &str, calls: u32) -> Kid {
    let calls = calls.to_string();
    let uas = sipp15(ip, 5070, &["-sf", scenario, "-m", &calls]);
    std::thread::sleep(Duration::from_millis(300)); // bound and listening
    uas
}

/// Checks a SIPp UAS completed `calls` calls and failed none.
fn assert_uas(uas: Kid, calls: u64, what: &str, server: &Server) {
    let out = uas.output();
    let (ok, failed) = sipp_counts(&out);
    assert!(
        out.status.success() && (ok, failed) == (calls, 0),
        "{what}: {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
        text(&out),
        server.stderr()
    );
}

/// Register (listed by the API), call the phone, restart on the same store, listed
/// again, call again without a new REGISTER. Returns the server, still running.
/// Addresses 127.0.0.`base` (sipbridge, its API on port 18000 + `base`), `base`+1 (the
/// phone), `base`+2 (the caller).
fn register_call_restart_call(name: &str, base: u8, store: &str) -> Server {
    let [ip, phone_ip, uac_ip] = [0, 1, 2].map(|i| format!("127.0.0.{}", base + i));
    let mut server = Server::start(name, &ip, 18_000 + u16::from(base), &uac_ip, store, "");
    assert!(server.registrations().is_empty(), "a fresh store has no bindings");

    server.register_ok(&phone_ip, 120);
    server.assert_registered(&[&phone_ip], "after REGISTER");

    // One UAS on the registered address for both calls, across the restart.
    let uas = uas(&phone_ip, &bench_scenario("uas.xml"), 2);
    server.call_ok(&uac_ip, "the call to the registered contact");

    server.restart();
    let log = server.stderr();
    assert!(log.contains("registrations=1 expired=0"), "the binding is restored at start-up:\n{log}");
    server.assert_registered(&[&phone_ip], "after the restart");
    server.call_ok(&uac_ip, "the call after the restart, without a new REGISTER");
    assert_uas(uas, 2, "the registered phone's UAS (both calls)", &server);
    server
}

#[test]
fn sipp_registers_with_auth_then_a_call_reaches_the_registered_contact() {
    let (phone_ip, liar_ip) = ("127.0.0.131", "127.0.0.133");
    let server = register_call_restart_call("sqlite", 130, "sqlite:{dir}/bindings.db");
    assert!(server.bin.dir().join("bindings.db").is_file(), "the SQLite file is where [store] url says");

    // A wrong password: challenged, then 403, and the SIPp call fails; nothing changes.
    let trace = server.bin.dir().join("wrong-password.log").display().to_string();
    let out = server.register(liar_ip, "wrong", 120, Some(&trace));
    let (ok, failed) = sipp_counts(&out);
    assert!(
        !out.status.success() && (ok, failed) == (0, 1),
        "REGISTER with a wrong password: {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
        text(&out),
        server.stderr()
    );
    let messages = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(messages.contains("SIP/2.0 401 Unauthorized"), "challenged first:\n{messages}");
    assert!(messages.contains("SIP/2.0 403 Forbidden"), "then refused with 403:\n{messages}");
    assert!(server.stderr().contains("authentication failed"), "logged:\n{}", server.stderr());
    server.assert_registered(&[phone_ip], "after the wrong password");
}

#[test]
fn postgres_backed_registration_survives_a_restart() {
    let pg = common::pg::PgServer::start("registrar");
    let url = pg.create_database("registrar");
    let server = register_call_restart_call("postgres", 135, &url);
    // The row is in the database, as the registrar wrote it.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = db.query("SELECT aor, contact, source FROM bindings", &[]).unwrap();
    let rows: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        rows,
        [("phone".to_owned(), "sip:phone@127.0.0.136:5070".to_owned(), "udp:127.0.0.136:5070".to_owned())],
        "sipbridge:\n{}",
        server.stderr()
    );
    drop(server); // before the database server
}

#[test]
fn two_registered_contacts_both_ring_first_answer_wins() {
    let (ip, answers_ip, rings_ip, uac_ip) = ("127.0.0.140", "127.0.0.141", "127.0.0.142", "127.0.0.143");
    let server = Server::start("fork", ip, 18140, uac_ip, "memory", "");
    // Two REGISTERs from two addresses: two SIPp runs, two Call-IDs, two bindings.
    server.register_ok(answers_ip, 120);
    server.register_ok(rings_ip, 120);
    server.assert_registered(&[answers_ip, rings_ip], "after both REGISTERs");

    let rings = uas(rings_ip, &our_scenario("uas_cancelled.xml"), 1);
    let answers = uas(answers_ip, &bench_scenario("uas.xml"), 1);
    server.call_ok(uac_ip, "the call forked to both contacts");
    assert_uas(rings, 1, "the contact that rang and was cancelled", &server);
    assert_uas(answers, 1, "the contact that answered", &server);
}

#[test]
fn registration_expires_on_time() {
    let (ip, phone_ip, uac_ip) = ("127.0.0.145", "127.0.0.146", "127.0.0.147");
    let server = Server::start("expiry", ip, 18145, uac_ip, "memory", "[registrar]\nmin_expires_s = 1\n");
    let registered = Instant::now();
    server.register_ok(phone_ip, 2);
    server.assert_registered(&[phone_ip], "just registered");

    // Gone at 2 s; polled until 4 s.
    let deadline = registered + Duration::from_secs(4);
    while !server.registrations().is_empty() {
        assert!(Instant::now() < deadline, "still registered {:?} after REGISTER with Expires: 2", registered.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(registered.elapsed() >= Duration::from_millis(1900), "expired early, after {:?}", registered.elapsed());
    assert!(server.stderr().contains("why=Expired"), "logged:\n{}", server.stderr());

    // No contact: the caller gets 480 (the scenario expects it and ACKs it).
    let out = server.call(uac_ip, &our_scenario("uac_480.xml"));
    let (ok, failed) = sipp_counts(&out);
    assert!(
        out.status.success() && (ok, failed) == (1, 0),
        "the call to an expired phone: {ok} ok, {failed} failed (not a 480?)\n{}\nsipbridge:\n{}",
        text(&out),
        server.stderr()
    );
}
