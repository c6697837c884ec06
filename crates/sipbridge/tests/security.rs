//! Attacks on the built binary with Debian's SIPVicious (package `sipvicious`, binaries
//! `svwar` and `svcrack`; `scripts/test.sh` installs it): extension enumeration must find
//! nothing, and password guessing must be throttled, then banned, before it finds the
//! password (`[auth]` in `docs/CONFIG.md`, `src/guard.rs`).
//!
//! Each test has loopback addresses of its own (sipbridge and its API on one, each attacker
//! on another, since the guard keys on the source address). Every tool runs with a bound
//! on its time and is killed when the test ends, failed or not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{text, Binary, Kid};

/// One GET → (status, body).
fn http(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    common::http(addr, "GET", path)
}

/// The bound on any wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
const API_PORT: u16 = 18120;

/// The endpoints every server here has: dynamic, with these secrets.
const ENDPOINTS: [(&str, &str); 3] = [("100", "Tr0ub4dor-100"), ("101", "Tr0ub4dor-101"), ("alice", "correct-horse-alice")];

/// A SIPVicious tool (`svwar`, `svcrack`) with these arguments, output captured.
fn sipvicious(tool: &str, args: &[&str]) -> Kid {
    let child = Command::new(tool)
        .args(args)
        .env("HOME", std::env::temp_dir()) // it keeps sessions in ~/.sipvicious (only with -s)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} runs (Debian package sipvicious; scripts/test.sh installs it): {e}"));
    Kid(Some(child))
}

/// sipbridge on `ip:5060` (UDP) with its API on `ip:18120`, the [`ENDPOINTS`], and `auth`
/// as its `[auth]` section.
struct Server {
    bin: Binary,
    ip: String,
}

impl Server {
    fn start(name: &str, ip: &str, auth: &str) -> Server {
        let mut config = format!(
            "[sip]\nlisten = [\"udp:{ip}:5060\"]\ndomain = \"sec.test\"\n[api]\nlisten = \"{ip}:{API_PORT}\"\n\
             [store]\nurl = \"memory\"\n[media]\naddress = \"{ip}\"\n[log]\nlevel = \"info\"\n[auth]\n{auth}\n"
        );
        for (user, secret) in ENDPOINTS {
            config.push_str(&format!("[[endpoint]]\nname = \"{user}\"\nhost = \"dynamic\"\nsecret = \"{secret}\"\nqualify = false\n"));
        }
        // A stray process on these addresses would answer in our place.
        assert!(std::net::UdpSocket::bind((ip, 5060)).is_ok(), "{ip}:5060 is taken by another process");
        assert!(std::net::TcpListener::bind((ip, API_PORT)).is_ok(), "{ip}:{API_PORT} is taken by another process");
        let s = Server { bin: Binary::start_in(common::temp_dir("security", name), &config), ip: ip.to_owned() };
        // Ready when the API answers (it is bound after the SIP sockets).
        let deadline = Instant::now() + WAIT;
        while http(&s.api(), "/api/health").is_err() {
            assert!(Instant::now() < deadline, "the API on {} never answered; stderr:\n{}", s.api(), s.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn api(&self) -> String {
        format!("{}:{API_PORT}", self.ip)
    }

    fn stderr(&self) -> String {
        self.bin.stderr()
    }

    /// `GET path` that must answer 200 with JSON.
    fn json(&self, path: &str) -> Value {
        let (status, body) = http(&self.api(), path).unwrap_or_else(|e| panic!("GET {path}: {e}\nsipbridge:\n{}", self.stderr()));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// The value of one sample of `/metrics` (`name` with its labels, if any).
    fn metric(&self, sample: &str) -> u64 {
        let (status, body) = http(&self.api(), "/metrics").unwrap();
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{sample} missing from /metrics:\n{body}"))
    }

    /// The guard's counters: (failed, ok, throttled, refused, bans).
    fn auth_counters(&self) -> [u64; 5] {
        [
            self.metric("sipbridge_auth_total{result=\"failed\"}"),
            self.metric("sipbridge_auth_total{result=\"ok\"}"),
            self.metric("sipbridge_auth_throttled_total"),
            self.metric("sipbridge_auth_refused_total"),
            self.metric("sipbridge_auth_bans_total"),
        ]
    }

    /// The sources `GET /api/bans` lists.
    fn banned(&self) -> Vec<String> {
        self.json("/api/bans").as_array().unwrap().iter().map(|b| b["source"].as_str().unwrap().to_owned()).collect()
    }
}

/// The extensions an svwar run reports (its "extension 'X' exists" log lines and the
/// rows of its result table).
fn svwar_found(out: &str) -> Vec<String> {
    let mut found: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once("extension '").and_then(|(_, rest)| rest.split_once('\'')).map(|(x, _)| x.to_owned()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The SIP responses an `svwar --debug` run printed (Python bytes reprs, one a line),
/// as text with real line ends.
fn svwar_responses(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("b'SIP/2.0 ").and_then(|r| r.strip_suffix('\'')))
        .map(|r| format!("SIP/2.0 {}", r.replace("\\r\\n", "\n").replace("\\'", "'")))
        .collect()
}

/// A response without what is per request (Via, From, To, Call-ID, the nonce): what
/// should be the same for every user.
fn normalised(response: &str) -> String {
    let keep = |l: &&str| !["Via:", "From:", "To:", "Call-ID:"].iter().any(|h| l.starts_with(h));
    let lines: Vec<String> = response
        .lines()
        .filter(keep)
        .map(|l| match l.split_once("nonce=\"") {
            Some((head, rest)) => format!("{head}nonce=\"…\"{}", rest.split_once('"').map_or("", |(_, tail)| tail)),
            None => l.to_owned(),
        })
        .collect();
    lines.join("\n")
}

/// svwar first asks for a random extension, takes its answer's status line for
/// "no such extension", then reports every extension whose status line differs. Against
/// REGISTER and INVITE the answer for a real extension is the same 401/407, which svwar
/// 0.3.3 takes for an "unknown response" and stops at: so each real extension gets a run
/// of its own (first in its range or dictionary), all runs at once. Beyond svwar's own
/// test, the whole answer for the real extension must equal the bogus one's, but for
/// what is per request.
///
/// svwar 0.3.3 ignores `-b` (its `main` never passes it on), so it binds 0.0.0.0 and its
/// packets come from 127.0.0.1; `-P` gives every run a port of its own, since the 407s
/// to an INVITE scan are retransmitted (its ACK has a new branch, so it matches no
/// transaction) and would land in the next run on the same port.
#[test]
fn svwar_finds_no_extension_with_register_invite_or_options() {
    let ip = "127.0.0.120";
    let server = Server::start("svwar", ip, "");
    let dict = server.bin.dir().join("extensions.txt");
    std::fs::write(&dict, "alice\nadmin\nbob\noperator\nroot\n100\n").unwrap();
    let dict = dict.display().to_string();
    let target = format!("udp://{ip}:5060");
    let mut runs = Vec::new();
    for method in ["REGISTER", "INVITE", "OPTIONS"] {
        for (first, guess) in [("100", ["-e", "100-120"]), ("101", ["-e", "101-120"]), ("alice", ["-d", dict.as_str()])] {
            let port = (31_100 + runs.len()).to_string();
            let args: Vec<String> = ["-v", "--debug", "--force", "-x", "127.0.0.1", "-P", &port, "-m", method, "--maximumtime", "5"]
                .into_iter()
                .chain(guess)
                .chain([target.as_str()])
                .map(str::to_owned)
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            runs.push((method, first, args.clone(), sipvicious("svwar", &refs)));
        }
    }
    for (method, first, args, kid) in runs {
        let out = text(&kid.wait(Duration::from_secs(30)));
        // It did scan: the probe for a random extension was answered.
        assert!(out.contains("Ok SIP device found"), "svwar {args:?} did not get going:\n{out}\nsipbridge:\n{}", server.stderr());
        assert!(!out.contains("Exception"), "svwar {args:?} failed:\n{out}");
        assert_eq!(svwar_found(&out), Vec::<String>::new(), "svwar {args:?} enumerated extensions:\n{out}");
        assert!(out.contains("found nothing"), "svwar {args:?}:\n{out}");
        let responses = svwar_responses(&out);
        let bogus = responses.first().unwrap_or_else(|| panic!("svwar {args:?} printed no response:\n{out}"));
        let real = responses
            .iter()
            .find(|r| r.contains(&format!("<sip:{first}@")))
            .unwrap_or_else(|| panic!("svwar {args:?} got no answer for {first}:\n{out}"));
        assert_eq!(normalised(real), normalised(bogus), "{method}: {first}'s answer differs from a bogus extension's");
        let status = if method == "OPTIONS" { "SIP/2.0 200" } else { "SIP/2.0 40" };
        assert!(real.starts_with(status), "{method}: {real}");
    }
    // Without --force svwar gives up at once: an unknown extension is challenged too.
    let out = text(&sipvicious("svwar", &["-v", "-x", "127.0.0.1", "-P", "31130", "-e", "100-120", &target]).wait(Duration::from_secs(30)));
    assert!(out.contains("authentication request for an unknown extension"), "svwar without --force:\n{out}");
    // svcrack against the default challenge order (SHA-256 first): it answers only the
    // first challenge, knows MD5 alone and dies on its first guess.
    let pw = server.bin.dir().join("passwords.txt");
    std::fs::write(&pw, format!("{}\n", ENDPOINTS[0].1)).unwrap();
    let args = ["-v", "-x", "127.0.0.1", "-P", "31131", "-u", "100", "-d", pw.to_str().unwrap(), "--maximumtime", "3", &target];
    let out = text(&sipvicious("svcrack", &args).wait(Duration::from_secs(20)));
    assert!(!out.contains("The password for"), "svcrack {args:?} cracked it:\n{out}");
    assert!(out.contains("Unknown algorithm: sha-256"), "svcrack {args:?} against SHA-256 first:\n{out}");
    // Nothing above sent credentials sipbridge could check: no failure, no throttling, no ban.
    assert_eq!(server.auth_counters(), [0; 5], "sipbridge:\n{}", server.stderr());
    assert!(server.banned().is_empty());
}

/// `throttle_after = 3, ban_after = 5`: svcrack's guesses get slowed down after the third
/// failure and refused after the fifth, so the real password, tenth in its dictionary, is
/// sent but never checked. A first run with the password first gets in at once, so the
/// tool does work against us.
///
/// svcrack 0.3.3 answers only the first challenge and knows MD5 alone (see the svwar test
/// for what it does with the default `algorithms = ["SHA-256", "MD5"]`), so this server
/// challenges with MD5 first. Like svwar it ignores `-b`: its packets come from 127.0.0.1.
/// It never stops on a 403: each one is followed by a fresh REGISTER without
/// credentials, and each challenge it gets by another guess, until the dictionary ends.
#[test]
fn svcrack_is_throttled_then_banned_before_the_password() {
    let ip = "127.0.0.125";
    let auth = "algorithms = [\"MD5\", \"SHA-256\"]\nthrottle_after = 3\nthrottle_ms = 500\nban_after = 5\nban_s = 600\nwindow_s = 300";
    let server = Server::start("svcrack", ip, auth);
    let target = format!("udp://{ip}:5060");
    let (user, secret) = ENDPOINTS[0];

    // The control: the password first.
    let easy = server.bin.dir().join("easy.txt");
    std::fs::write(&easy, format!("{secret}\n123456\n")).unwrap();
    let args = ["-v", "-x", "127.0.0.1", "-P", "31140", "-u", user, "-d", easy.to_str().unwrap(), "--maximumtime", "3", &target];
    let out = text(&sipvicious("svcrack", &args).wait(Duration::from_secs(20)));
    assert!(out.contains(&format!("The password for {user} is {secret}")), "svcrack {args:?} did not crack the easy one:\n{out}");
    assert_eq!(server.auth_counters(), [0, 1, 0, 0, 0], "the right password at once:\n{out}");

    // The attack: nine wrong guesses, the password tenth, ten more.
    let hard = server.bin.dir().join("hard.txt");
    let mut words: Vec<String> = (1..=20).map(|i| format!("guess{i:02}")).collect();
    words[9] = secret.to_owned();
    std::fs::write(&hard, words.join("\n") + "\n").unwrap();
    let args = ["-vv", "-x", "127.0.0.1", "-P", "31141", "-u", user, "-d", hard.to_str().unwrap(), "--maximumtime", "3", &target];
    let started = Instant::now();
    let out = text(&sipvicious("svcrack", &args).wait(Duration::from_secs(40)));
    let took = started.elapsed();
    assert!(!out.contains("The password for"), "svcrack {args:?} cracked it:\n{out}\nsipbridge:\n{}", server.stderr());
    assert!(out.contains(&format!("trying {secret}")), "svcrack {args:?} never sent the password (so this proves nothing):\n{out}");
    let guesses = out.matches("DEBUG:ASipOfRedWine:trying ").count();
    let [failed, ok, throttled, refused, bans] = server.auth_counters();
    // Exactly ban_after of its guesses reached authentication; the rest were refused.
    assert_eq!((failed, ok, bans), (5, 1, 1), "{guesses} guesses sent:\n{out}\nsipbridge:\n{}", server.stderr());
    assert!(throttled > 0 && refused > 0, "throttled {throttled}, refused {refused}");
    assert_eq!(server.banned(), ["127.0.0.1"], "the guesser is banned");
    let log = server.stderr();
    assert!(log.contains("too many failed authentications: source refused"), "sipbridge logged the ban:\n{log}");
    eprintln!("svcrack ran {took:?}, sent {guesses} guesses: failed {failed}, throttled {throttled}, refused {refused}, bans {bans}");
}
