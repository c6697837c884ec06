//! Two real phones (Debian's baresip, driven headless by `../shared/interop/phone.sh`)
//! call each other through the built sipbridge; each sends its own tone, and each
//! phone's recording must hold the other's tone (`../shared/interop/tone.sh check`).
//!
//! The phones are `nat = "yes"` endpoints: baresip 1.0 binds its RTP sockets to 0.0.0.0,
//! so on loopback its RTP comes from 127.0.0.1 and not from the address in its SDP
//! (`../shared/interop/README.md`, "RTP source caveat"), which is exactly the case
//! symmetric latching is for.
//!
//! The second test has the phones register with passwords (`host = "dynamic"` endpoints
//! with a `secret`) and call each other by endpoint name. The direct-media tests move the
//! media off the relay: with re-INVITEs (two baresip phones), and with UPDATE (RFC 3311)
//! to Linphone (`linphonec`, `../shared/interop/lphone.sh`), which lists UPDATE in its
//! Allow, falling back to a re-INVITE for baresip, which does not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::api_json as api_get;

fn interop() -> PathBuf {
    std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("interop")
}

struct Lab {
    sipbridge: Child,
    dir: PathBuf,
}

impl Lab {
    /// sipbridge on `config` in a fresh folder named after `name`, its SIP socket on
    /// `sip` (which must be free: a stray server would answer in its place); ready when
    /// `sip` is taken (and `api`, when given, accepts connections).
    fn start(name: &str, sip: &str, api: Option<&str>, config: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("sipbridge-interop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sipbridge.toml"), config).unwrap();
        assert!(std::net::UdpSocket::bind(sip).is_ok(), "{sip} is taken by another process");
        let sipbridge = Command::new(env!("CARGO_BIN_EXE_sipbridge"))
            .arg("--config")
            .arg(dir.join("sipbridge.toml"))
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sipbridge.log")).unwrap())
            .spawn()
            .unwrap();
        let lab = Lab { sipbridge, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(sip).is_ok() || api.is_some_and(|a| std::net::TcpStream::connect(a).is_err()) {
            assert!(Instant::now() < deadline, "sipbridge did not start:\n{}", lab.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        lab
    }

    /// Runs one of the interop scripts to its end. Its output goes through files, not
    /// pipes: `lphone.sh start` leaves a process behind (the `sleep` that holds the
    /// phone's stdin FIFO open) that inherits stderr, and a pipe would stay open, and
    /// `output()` wait, for that process's whole lifetime.
    fn script(&self, name: &str, args: &[&str]) -> Output {
        let (out, err) = (self.dir.join("script.out"), self.dir.join("script.err"));
        let status = Command::new("bash")
            .arg(interop().join(name))
            .args(args)
            .env("INTEROP_RUN", self.dir.join("run"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output { status, stdout: std::fs::read(&out).unwrap_or_default(), stderr: std::fs::read(&err).unwrap_or_default() }
    }

    fn ok(&self, name: &str, args: &[&str]) -> String {
        let o = self.script(name, args);
        assert!(
            o.status.success(),
            "{name} {args:?} failed:\n{}\n{}\nsipbridge:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.stderr()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("sipbridge.log")).unwrap_or_default()
    }

    /// Starts `phone` on `at` sending an endless `tone` (Hz); it auto-answers.
    fn phone(&self, phone: Phone, at: &str, tone: &str) {
        self.ok(phone.script(), &["start", phone.name, at, "--tone", tone, "--lifetime", "90"]);
    }

    /// How far `phone`'s event log is now (for [`Lab::wait`]).
    fn mark(&self, phone: Phone) -> String {
        self.ok(phone.script(), &["mark", phone.name])
    }

    /// Waits (10 s at most) for `phone`'s `event` after `mark`; the event's line.
    fn wait(&self, phone: Phone, event: Event, mark: &str) -> String {
        self.ok(phone.script(), &["wait", phone.name, phone.event(event), "10", mark])
    }

    /// `phone`'s newest recording holds at least `min_seconds` of a `freq` Hz tone.
    fn heard(&self, phone: Phone, freq: &str, min_seconds: &str) {
        let rec = self.ok(phone.script(), &["rec", phone.name]);
        let check = self.ok("tone.sh", &["check", &rec, "--freq", freq, "--min-seconds", min_seconds]);
        assert!(check.contains("PASS"), "{}'s recording {rec}:\n{check}", phone.name);
    }

    /// Captures `secs` s of traffic of `hosts` as `name` and asks `capture.sh media`
    /// where the RTP between `a` and `b` went; the verdict (`direct`, `relayed`, …) and
    /// the whole answer with the flows, for failure messages.
    fn media_verdict(&self, name: &str, hosts: &str, secs: u64, a: Phone, b: Phone) -> (String, String) {
        self.ok("capture.sh", &["start", name, "--hosts", hosts]);
        std::thread::sleep(Duration::from_secs(secs));
        self.ok("capture.sh", &["stop", name]);
        let answer = self.ok("capture.sh", &["media", name, "--between", a.name, b.name]);
        let verdict = answer.lines().find_map(|l| l.strip_prefix("verdict ")).unwrap_or_default().trim().to_owned();
        let flows = self.ok("capture.sh", &["rtp", name]);
        (verdict, format!("{answer}\n{flows}"))
    }

    /// `GET /api/calls/{id}` (the call with its ladder) once its `media_path` is `want`,
    /// within 10 s.
    fn media_path_is(&self, api: &str, id: u64, want: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = api_get(api, &format!("/api/calls/{id}"));
            if c["media_path"] == want {
                return c;
            }
            assert!(Instant::now() < deadline, "not {want} within 10 s: {c}\nsipbridge:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The caller of `call` hangs up; both phones see the call end, and each heard the
    /// other's tone for 2.5 s at least (`tones`: what the caller and the callee send).
    fn hang_up(&self, call: &DirectCall, tones: [&str; 2]) {
        let [caller, callee] = call.phones;
        self.ok(caller.script(), &["hangup", caller.name]);
        self.wait(callee, Event::Closed, &call.marks[1]);
        self.wait(caller, Event::Closed, &call.marks[0]);
        self.heard(callee, tones[0], "2.5");
        self.heard(caller, tones[1], "2.5");
    }

    /// `caller` dials `callee` (its endpoint name) through sipbridge on `ip:5060`, which
    /// the callee answers; within 10 s sipbridge moves the media off its relay with one
    /// request per leg and no glare, and says `direct`. While direct, a 3 s capture of
    /// `hosts` sees RTP only phone to phone, and the relay forwards nothing.
    fn call_goes_direct(&self, ip: &str, api: &str, caller: Phone, callee: Phone, hosts: &str) -> DirectCall {
        let marks = [self.mark(caller), self.mark(callee)];
        self.ok(caller.script(), &["dial", caller.name, &format!("sip:{}@{ip}:5060", callee.name)]);
        self.wait(callee, Event::Up, &marks[1]);
        self.wait(caller, Event::Up, &marks[0]);
        let answered = Instant::now();
        let id = loop {
            let calls = api_get(api, "/api/calls");
            if let Some(c) = calls.as_array().unwrap().iter().find(|c| c["media_path"] == "direct") {
                break c["id"].as_u64().unwrap();
            }
            assert!(answered.elapsed() < Duration::from_secs(10), "not direct within 10 s: {calls}\nsipbridge:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(100));
        };
        let call = self.media_path_is(api, id, "direct");
        assert_eq!(call["media_reason"], "direct", "{call}");
        assert_eq!(call["reinvites_sent"], 2, "one media request per leg: {call}");
        assert_eq!((&call["glare_491_sent"], &call["glare_491_received"]), (&0.into(), &0.into()), "{call}");
        assert!(call["direct_after_ms"].as_u64().is_some_and(|ms| ms < 5000), "{call}");
        let out = |v: &serde_json::Value, leg: usize| v["legs"][leg]["media"]["stats"]["packets_out"].as_u64();
        let (verdict, capture) = self.media_verdict(&format!("direct-{}-{}", caller.name, callee.name), hosts, 3, caller, callee);
        let after = api_get(api, &format!("/api/calls/{id}"));
        assert_eq!((out(&call, 0), out(&call, 1)), (out(&after, 0), out(&after, 1)), "the relay forwarded while direct: {after}");
        assert_eq!(verdict, "direct", "{capture}");
        DirectCall { call, phones: [caller, callee], marks }
    }
}

/// A call [`Lab::call_goes_direct`] saw go direct.
struct DirectCall {
    /// `GET /api/calls/{id}` once direct: the call, its ladder and media history.
    call: serde_json::Value,
    /// The caller and the callee.
    phones: [Phone; 2],
    /// The caller's and the callee's event-log marks from before the dial.
    marks: [String; 2],
}

/// The IP of `ip:port`.
fn host(at: &str) -> &str {
    at.rsplit_once(':').map_or(at, |(ip, _)| ip)
}

/// The requests sipbridge sent on `leg` (`a`: to the caller, `b`: to the callee) of the
/// call `call` (`GET /api/calls/{id}`), ACKs aside, each with the status of the first
/// final response that came back on that leg after it, e.g. `["INVITE 200", "UPDATE 200"]`
/// (`"UPDATE -"` while unanswered).
fn requests_sent(call: &serde_json::Value, leg: &str) -> Vec<String> {
    let ladder: Vec<&serde_json::Value> = call["ladder"].as_array().unwrap().iter().filter(|m| m["leg"] == leg).collect();
    let line = |m: &serde_json::Value| m["first_line"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for (i, m) in ladder.iter().enumerate() {
        let first = line(m);
        let method = first.split(' ').next().unwrap_or_default().to_owned();
        if m["direction"] != "out" || first.starts_with("SIP/2.0") || method == "ACK" {
            continue;
        }
        let status = ladder[i + 1..]
            .iter()
            .filter(|r| r["direction"] == "in")
            .filter_map(|r| line(r).strip_prefix("SIP/2.0 ").and_then(|s| s.split(' ').next()).map(str::to_owned))
            .find(|code| !code.starts_with('1'))
            .unwrap_or_else(|| "-".into());
        sent.push(format!("{method} {status}"));
    }
    sent
}

/// A phone of `../shared/interop/`: baresip (`phone.sh`) or linphonec (`lphone.sh`).
#[derive(Clone, Copy)]
struct Phone {
    name: &'static str,
    linphone: bool,
}

/// What [`Lab::wait`] waits for.
#[derive(Clone, Copy)]
enum Event {
    /// The call is up with its media (baresip `CALL_ESTABLISHED`; linphonec "Media
    /// streams established").
    Up,
    /// The call has ended.
    Closed,
}

impl Phone {
    const fn baresip(name: &'static str) -> Phone {
        Phone { name, linphone: false }
    }

    const fn linphone(name: &'static str) -> Phone {
        Phone { name, linphone: true }
    }

    fn script(self) -> &'static str {
        if self.linphone {
            "lphone.sh"
        } else {
            "phone.sh"
        }
    }

    fn event(self, event: Event) -> &'static str {
        match (self.linphone, event) {
            (false, Event::Up) => "CALL_ESTABLISHED",
            (false, Event::Closed) => "CALL_CLOSED",
            (true, Event::Up) => "established",
            (true, Event::Closed) => "closed",
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.script("phone.sh", &["stopall"]);
        let _ = self.script("lphone.sh", &["stopall"]);
        // Captures a failed test left running.
        for entry in std::fs::read_dir(self.dir.join("run/captures")).into_iter().flatten().flatten() {
            if let Some(name) = entry.file_name().to_str().and_then(|f| f.strip_suffix(".pid")) {
                let _ = self.script("capture.sh", &["stop", name]);
            }
        }
        let _ = self.sipbridge.kill();
        let _ = self.sipbridge.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn two_baresip_phones_hear_each_other_through_the_relay() {
    let config = "[sip]\nlisten = [\"udp:127.0.0.10:5060\"]\n[api]\nlisten = \"\"\n[store]\nurl = \"memory\"\n\
                  [media]\naddress = \"127.0.0.10\"\n[log]\nlevel = \"info\"\n\
                  [[endpoint]]\nname = \"a\"\nhost = \"127.0.0.2:5062\"\nnat = \"yes\"\ndirect_media = \"no\"\n\
                  [[endpoint]]\nname = \"b\"\nhost = \"127.0.0.3:5064\"\nnat = \"yes\"\ndirect_media = \"no\"\n";
    let lab = Lab::start("relay", "127.0.0.10:5060", None, config);
    let (a, b) = (Phone::baresip("a"), Phone::baresip("b"));
    lab.phone(a, "127.0.0.2:5062", "1000");
    lab.phone(b, "127.0.0.3:5064", "600");
    let (ma, mb) = (lab.mark(a), lab.mark(b));
    lab.ok("phone.sh", &["dial", "a", "sip:b@127.0.0.10:5060"]);
    let est = lab.wait(b, Event::Up, &mb);
    assert!(est.contains("sip:a@127.0.0.10"), "b sees the call from sipbridge, not from a: {est}");
    lab.wait(a, Event::Up, &ma);
    // `direct_media = "no"`: every RTP packet goes through sipbridge.
    let (verdict, capture) = lab.media_verdict("relayed", "127.0.0.2 127.0.0.3 127.0.0.10", 4, a, b);
    assert_eq!(verdict, "relayed", "{capture}");
    lab.ok("phone.sh", &["hangup", "a"]);
    lab.wait(b, Event::Closed, &mb);
    lab.heard(b, "1000", "2.5");
    lab.heard(a, "600", "2.5");
    let log = lab.stderr();
    assert!(log.contains("call ended") && log.contains("inbound leg hung up"), "sipbridge logged the hang-up:\n{log}");
}

/// Two baresip phones register with digest authentication, then one calls the other by
/// endpoint name: the INVITE is challenged (407), sipbridge sends the call to the
/// callee's registered contact, each hears the other's tone.
///
/// `algorithms = ["MD5"]`: baresip 1.0.0 (libre 1.1.0, Debian 12) gives up on a 401 that
/// has any challenge it cannot answer, whatever the order: with the default
/// `["SHA-256", "MD5"]`, and with `["MD5", "SHA-256"]` too, it sends no second REGISTER
/// and reports `REGISTER_FAIL "Function not implemented"` (ENOSYS).
#[test]
fn two_baresip_phones_register_with_passwords_and_call_by_name() {
    let (ip, api) = ("127.0.0.130", "127.0.0.130:18130");
    let config = format!(
        "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{ip}\"\nports = \"30000-30099\"\n[log]\nlevel = \"info\"\n\
         [auth]\nalgorithms = [\"MD5\"]\n\
         [[endpoint]]\nname = \"alice\"\nhost = \"dynamic\"\nsecret = \"alice-s3cret\"\nnat = \"yes\"\ndirect_media = \"no\"\n\
         [[endpoint]]\nname = \"bob\"\nhost = \"dynamic\"\nsecret = \"bob-s3cret\"\nnat = \"yes\"\ndirect_media = \"no\"\n"
    );
    let lab = Lab::start("reg", &format!("{ip}:5060"), Some(api), &config);
    let registrar = format!("{ip}:5060");
    // Ports 5072/5074: RTP 21440-21459 and 21480-21499, clear of the other test's phones.
    for (name, at, tone, pw) in [("alice", "127.0.0.131:5072", "1000", "alice-s3cret"), ("bob", "127.0.0.132:5074", "600", "bob-s3cret")] {
        let args = ["start", name, at, "--tone", tone, "--registrar", &registrar, "--password", pw, "--regint", "60", "--lifetime", "90"];
        lab.ok("phone.sh", &args);
        let reg = lab.ok("phone.sh", &["wait", name, "REGISTER_OK", "5", "0"]);
        assert!(reg.contains("200 OK"), "{name}: {reg}");
    }
    // The registrations, as the API shows them: each phone's own contact.
    let endpoints = api_get(api, "/api/endpoints");
    let contact = |name: &str| -> String {
        let e = endpoints.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap();
        let regs = e["registrations"].as_array().unwrap();
        assert_eq!(regs.len(), 1, "{name}: {e}");
        regs[0]["contact"].as_str().unwrap().to_owned()
    };
    let bob_contact = contact("bob");
    assert!(bob_contact.starts_with("sip:bob-") && bob_contact.ends_with("@127.0.0.132:5074"), "{bob_contact}");
    assert!(contact("alice").ends_with("@127.0.0.131:5072"));

    let (alice, bob) = (Phone::baresip("alice"), Phone::baresip("bob"));
    let (ma, mb) = (lab.mark(alice), lab.mark(bob));
    lab.ok("phone.sh", &["dial", "alice", &format!("sip:bob@{ip}:5060")]);
    let est = lab.wait(bob, Event::Up, &mb);
    assert!(est.contains(&format!("sip:alice@{ip}")), "bob sees the call from sipbridge, as alice: {est}");
    lab.wait(alice, Event::Up, &ma);
    // The call went to bob's registered contact, as alice (authenticated) to bob.
    let calls = api_get(api, "/api/calls");
    let call = calls.as_array().unwrap().iter().find(|c| c["state"] == "answered").unwrap_or_else(|| panic!("{calls}")).clone();
    assert_eq!((&call["legs"][0]["endpoint"], &call["legs"][1]["endpoint"]), (&"alice".into(), &"bob".into()), "{call}");
    let ladder = api_get(api, &format!("/api/calls/{}", call["id"]));
    let invite = format!("INVITE {bob_contact} SIP/2.0");
    let to_bob = ladder["ladder"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["direction"] == "out" && m["leg"] == "b" && m["first_line"] == invite.as_str() && m["peer"] == "127.0.0.132:5074");
    assert!(to_bob, "no {invite:?} to 127.0.0.132:5074 in {ladder}");
    std::thread::sleep(Duration::from_secs(4));
    lab.ok("phone.sh", &["hangup", "alice"]);
    lab.wait(bob, Event::Closed, &mb);
    lab.wait(alice, Event::Closed, &ma);
    lab.heard(bob, "1000", "2.5");
    lab.heard(alice, "600", "2.5");
    let log = lab.stderr();
    assert!(log.contains("routing") && log.contains("from=alice to=bob"), "sipbridge logged the routing:\n{log}");
    assert!(log.contains("call ended"), "sipbridge logged the hang-up:\n{log}");
}

/// `direct_media = "yes"` with two baresip phones: after the answer (and, with
/// `verify_media`, once the relay has heard both), sipbridge re-INVITEs each phone to
/// the other; the API says `direct`, the relay stops forwarding, a capture taken while
/// direct shows RTP only phone to phone (`capture.sh media … verdict direct`), and each
/// phone still hears the other's tone. Then recording through the API brings the media
/// back to the relay (`relayed: recording`), each leg's WAV holds its phone's tone, and
/// stopping it lets the media go direct again. `nat = "yes"`: baresip sends its RTP from
/// 127.0.0.1, not its SDP address (README "RTP source caveat"), so the relay must latch
/// to the source to hear it (and `yes` lets a NATed endpoint go direct; `nonat` would not).
#[test]
fn two_baresip_phones_go_direct_and_the_capture_shows_no_rtp_through_sipbridge() {
    let (ip, api) = ("127.0.0.12", "127.0.0.12:18012");
    let config = format!(
        "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{ip}\"\nports = \"30100-30199\"\n[log]\nlevel = \"info\"\n\
         [[endpoint]]\nname = \"c\"\nhost = \"127.0.0.4:5066\"\nnat = \"yes\"\ndirect_media = \"yes\"\n\
         [[endpoint]]\nname = \"d\"\nhost = \"127.0.0.5:5068\"\nnat = \"yes\"\ndirect_media = \"yes\"\n"
    );
    let lab = Lab::start("direct", &format!("{ip}:5060"), Some(api), &config);
    // Ports 5066/5068: RTP 21320-21339 and 21360-21379, clear of the other tests' phones.
    let (c, d) = (Phone::baresip("c"), Phone::baresip("d"));
    lab.phone(c, "127.0.0.4:5066", "1000");
    lab.phone(d, "127.0.0.5:5068", "600");
    let direct = lab.call_goes_direct(ip, api, c, d, &format!("127.0.0.4 127.0.0.5 {ip}"));
    let call = &direct.call;
    assert_eq!(requests_sent(call, "a"), ["INVITE 200"], "one re-INVITE to c: {call}");
    assert_eq!(requests_sent(call, "b"), ["INVITE 200", "INVITE 200"], "the call, then one re-INVITE to d: {call}");
    // Recording mid-call brings the media back to the relay, the WAVs hold the tones,
    // and when it stops the media goes direct again.
    let id = call["id"].as_u64().unwrap();
    let (status, body) = common::http(api, "POST", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let files: Vec<PathBuf> = serde_json::from_str::<serde_json::Value>(&body).unwrap()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| lab.dir.join(f.as_str().unwrap()))
        .collect();
    let relayed = lab.media_path_is(api, id, "relayed");
    assert_eq!(relayed["media_reason"], "relayed: recording", "{relayed}");
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = common::http(api, "DELETE", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let again = lab.media_path_is(api, id, "direct");
    assert_eq!(again["media_reason"], "direct", "{again}");
    for (file, freq) in files.iter().zip(["1000", "600"]) {
        let heard = lab.ok("tone.sh", &["check", &file.display().to_string(), "--freq", freq, "--min-seconds", "2"]);
        assert!(heard.contains("PASS"), "{}:\n{heard}", file.display());
    }
    lab.hang_up(&direct, ["1000", "600"]);
    let log = lab.stderr();
    assert!(log.contains("media path decision") && log.contains("Direct"), "{log}");
}

/// `direct_media_method = "update"` on every endpoint: sipbridge moves the media with an
/// UPDATE (RFC 3311) to each phone whose Allow lists UPDATE, and with a re-INVITE to one
/// whose Allow does not. Linphone (linphonec 5.1) lists UPDATE and answers it with its SDP
/// (200, no re-INVITE); baresip 1.0.0 does not list it (`Allow: INVITE,ACK,BYE,CANCEL,
/// OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER`), so its leg falls back to a re-INVITE.
/// Two calls: Linphone to Linphone (an UPDATE on each leg), then Linphone to baresip (an
/// UPDATE to the caller, a re-INVITE to the callee, whose Allow sipbridge read in its
/// 200). Each time the API says `direct`, a capture taken while direct shows RTP only
/// phone to phone, and each phone hears the other's tone.
#[test]
fn update_moves_linphone_media_and_baresip_without_update_in_allow_gets_a_reinvite() {
    let (ip, api) = ("127.0.0.83", "127.0.0.83:18083");
    let mut config = format!(
        "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{ip}\"\nports = \"30700-30799\"\n[log]\nlevel = \"info\"\n"
    );
    // Ports 5088/5090/5092: RTP 21760-21779, 21800-21819, 21840-21859, clear of the other
    // tests' phones (and of tests/peering.rs, up to 5086).
    let phones = [
        (Phone::linphone("l1"), "127.0.0.84:5088", "1000"),
        (Phone::linphone("l2"), "127.0.0.85:5090", "600"),
        (Phone::baresip("b"), "127.0.0.86:5092", "800"),
    ];
    for (phone, at, _) in phones {
        config += &format!(
            "[[endpoint]]\nname = \"{}\"\nhost = \"{at}\"\nnat = \"yes\"\ndirect_media = \"yes\"\ndirect_media_method = \"update\"\n",
            phone.name
        );
    }
    let lab = Lab::start("update", &format!("{ip}:5060"), Some(api), &config);
    for (phone, at, tone) in phones {
        lab.phone(phone, at, tone);
    }
    // Every SIP message to and from sipbridge, for the Allow rows the phones send.
    lab.ok("capture.sh", &["start", "update-sip", &format!("host {ip} and udp port 5060")]);
    // l1 calls l2, then b. The caller's leg gets an UPDATE each time; the callee's leg an
    // UPDATE when its 200 listed UPDATE in Allow (Linphone), else a re-INVITE (baresip).
    let [(l1, l1_at, l1_tone), callees @ ..] = phones;
    for (callee, at, tone) in callees {
        let hosts = format!("{} {} {ip}", host(l1_at), host(at));
        let direct = lab.call_goes_direct(ip, api, l1, callee, &hosts);
        let call = &direct.call;
        assert_eq!(requests_sent(call, "a"), ["UPDATE 200"], "one UPDATE to l1, no re-INVITE: {call}");
        let move_callee = if callee.linphone { "UPDATE 200" } else { "INVITE 200" };
        assert_eq!(requests_sent(call, "b"), ["INVITE 200", move_callee], "the call, then the move of {}: {call}", callee.name);
        std::thread::sleep(Duration::from_secs(1));
        lab.hang_up(&direct, [l1_tone, tone]);
    }

    // Why: the Allow rows each phone sent sipbridge (INVITE, 200 OK, answers to UPDATE).
    lab.ok("capture.sh", &["stop", "update-sip"]);
    let file = lab.ok("capture.sh", &["file", "update-sip"]);
    let allows = |src: &str| -> Vec<String> {
        let o = Command::new("tshark")
            .args(["-r", &file, "-Y", &format!("ip.src == {src} && sip.Allow"), "-T", "fields", "-e", "sip.Allow"])
            .output()
            .unwrap();
        assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
        let rows: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect();
        assert!(!rows.is_empty(), "no Allow from {src} in the capture");
        rows
    };
    let lists_update = |row: &str| row.split(',').any(|m| m.trim().eq_ignore_ascii_case("UPDATE"));
    for src in ["127.0.0.84", "127.0.0.85"] {
        let rows = allows(src);
        assert!(rows.iter().all(|r| lists_update(r)), "Linphone at {src} lists UPDATE: {rows:?}");
    }
    let rows = allows("127.0.0.86");
    assert!(!rows.iter().any(|r| lists_update(r)), "baresip at 127.0.0.86 lists no UPDATE: {rows:?}");
}
