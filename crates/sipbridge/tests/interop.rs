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
//! with a `secret`) and call each other by endpoint name.

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

    fn script(&self, name: &str, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(interop().join(name))
            .args(args)
            .env("INTEROP_RUN", self.dir.join("run"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.script("phone.sh", &["stopall"]);
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
    lab.ok("phone.sh", &["start", "a", "127.0.0.2:5062", "--tone", "1000", "--lifetime", "90"]);
    lab.ok("phone.sh", &["start", "b", "127.0.0.3:5064", "--tone", "600", "--lifetime", "90"]);
    let (ma, mb) = (lab.ok("phone.sh", &["mark", "a"]), lab.ok("phone.sh", &["mark", "b"]));
    lab.ok("phone.sh", &["dial", "a", "sip:b@127.0.0.10:5060"]);
    let est = lab.ok("phone.sh", &["wait", "b", "CALL_ESTABLISHED", "10", &mb]);
    assert!(est.contains("sip:a@127.0.0.10"), "b sees the call from sipbridge, not from a: {est}");
    lab.ok("phone.sh", &["wait", "a", "CALL_ESTABLISHED", "10", &ma]);
    // `direct_media = "no"`: every RTP packet goes through sipbridge.
    lab.ok("capture.sh", &["start", "relayed", "--hosts", "127.0.0.2 127.0.0.3 127.0.0.10"]);
    std::thread::sleep(Duration::from_secs(4));
    lab.ok("capture.sh", &["stop", "relayed"]);
    let verdict = lab.ok("capture.sh", &["media", "relayed", "--between", "a", "b"]);
    let says = |what: &str| verdict.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["verdict", what]);
    assert!(says("relayed"), "{verdict}");
    lab.ok("phone.sh", &["hangup", "a"]);
    lab.ok("phone.sh", &["wait", "b", "CALL_CLOSED", "10", &mb]);
    let rec_b = lab.ok("phone.sh", &["rec", "b"]);
    let rec_a = lab.ok("phone.sh", &["rec", "a"]);
    let b_heard = lab.ok("tone.sh", &["check", &rec_b, "--freq", "1000", "--min-seconds", "2.5"]);
    assert!(b_heard.contains("PASS"), "b's recording:\n{b_heard}");
    let a_heard = lab.ok("tone.sh", &["check", &rec_a, "--freq", "600", "--min-seconds", "2.5"]);
    assert!(a_heard.contains("PASS"), "a's recording:\n{a_heard}");
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

    let (ma, mb) = (lab.ok("phone.sh", &["mark", "alice"]), lab.ok("phone.sh", &["mark", "bob"]));
    lab.ok("phone.sh", &["dial", "alice", &format!("sip:bob@{ip}:5060")]);
    let est = lab.ok("phone.sh", &["wait", "bob", "CALL_ESTABLISHED", "10", &mb]);
    assert!(est.contains(&format!("sip:alice@{ip}")), "bob sees the call from sipbridge, as alice: {est}");
    lab.ok("phone.sh", &["wait", "alice", "CALL_ESTABLISHED", "10", &ma]);
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
    lab.ok("phone.sh", &["wait", "bob", "CALL_CLOSED", "10", &mb]);
    lab.ok("phone.sh", &["wait", "alice", "CALL_CLOSED", "10", &ma]);
    let rec_b = lab.ok("phone.sh", &["rec", "bob"]);
    let rec_a = lab.ok("phone.sh", &["rec", "alice"]);
    let b_heard = lab.ok("tone.sh", &["check", &rec_b, "--freq", "1000", "--min-seconds", "2.5"]);
    assert!(b_heard.contains("PASS"), "bob's recording:\n{b_heard}");
    let a_heard = lab.ok("tone.sh", &["check", &rec_a, "--freq", "600", "--min-seconds", "2.5"]);
    assert!(a_heard.contains("PASS"), "alice's recording:\n{a_heard}");
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
    lab.ok("phone.sh", &["start", "c", "127.0.0.4:5066", "--tone", "1000", "--lifetime", "90"]);
    lab.ok("phone.sh", &["start", "d", "127.0.0.5:5068", "--tone", "600", "--lifetime", "90"]);
    let (mc, md) = (lab.ok("phone.sh", &["mark", "c"]), lab.ok("phone.sh", &["mark", "d"]));
    lab.ok("phone.sh", &["dial", "c", &format!("sip:d@{ip}:5060")]);
    lab.ok("phone.sh", &["wait", "d", "CALL_ESTABLISHED", "10", &md]);
    lab.ok("phone.sh", &["wait", "c", "CALL_ESTABLISHED", "10", &mc]);
    let answered = Instant::now();
    let call = loop {
        let calls = api_get(api, "/api/calls");
        if let Some(c) = calls.as_array().unwrap().iter().find(|c| c["media_path"] == "direct") {
            break c.clone();
        }
        assert!(answered.elapsed() < Duration::from_secs(10), "not direct within 10 s: {calls}\nsipbridge:\n{}", lab.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(call["media_reason"], "direct", "{call}");
    assert_eq!(call["reinvites_sent"], 2, "one re-INVITE per leg: {call}");
    assert_eq!(call["glare_491_sent"], 0, "{call}");
    assert!(call["direct_after_ms"].as_u64().is_some_and(|ms| ms < 5000), "{call}");
    // While direct, a capture sees RTP only between the phones, and the relay forwards nothing.
    let before = api_get(api, "/api/calls");
    lab.ok("capture.sh", &["start", "direct", "--hosts", &format!("127.0.0.4 127.0.0.5 {ip}")]);
    std::thread::sleep(Duration::from_secs(3));
    lab.ok("capture.sh", &["stop", "direct"]);
    let after = api_get(api, "/api/calls");
    let out = |v: &serde_json::Value, leg: usize| v[0]["legs"][leg]["media"]["stats"]["packets_out"].as_u64();
    assert_eq!((out(&before, 0), out(&before, 1)), (out(&after, 0), out(&after, 1)), "the relay forwarded while direct: {after}");
    let verdict = lab.ok("capture.sh", &["media", "direct", "--between", "c", "d"]);
    let says = |what: &str| verdict.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["verdict", what]);
    assert!(says("direct"), "{verdict}\n{}", lab.ok("capture.sh", &["rtp", "direct"]));
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
    let path_is = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = api_get(api, &format!("/api/calls/{id}"));
            if c["media_path"] == want {
                return c;
            }
            assert!(Instant::now() < deadline, "not {want} within 10 s: {c}\nsipbridge:\n{}", lab.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let relayed = path_is("relayed");
    assert_eq!(relayed["media_reason"], "relayed: recording", "{relayed}");
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = common::http(api, "DELETE", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let again = path_is("direct");
    assert_eq!(again["media_reason"], "direct", "{again}");
    for (file, freq) in files.iter().zip(["1000", "600"]) {
        let heard = lab.ok("tone.sh", &["check", &file.display().to_string(), "--freq", freq, "--min-seconds", "2"]);
        assert!(heard.contains("PASS"), "{}:\n{heard}", file.display());
    }
    lab.ok("phone.sh", &["hangup", "c"]);
    lab.ok("phone.sh", &["wait", "d", "CALL_CLOSED", "10", &md]);
    let heard_d = lab.ok("tone.sh", &["check", &lab.ok("phone.sh", &["rec", "d"]), "--freq", "1000", "--min-seconds", "2.5"]);
    assert!(heard_d.contains("PASS"), "d's recording:\n{heard_d}");
    let heard_c = lab.ok("tone.sh", &["check", &lab.ok("phone.sh", &["rec", "c"]), "--freq", "600", "--min-seconds", "2.5"]);
    assert!(heard_c.contains("PASS"), "c's recording:\n{heard_c}");
    let log = lab.stderr();
    assert!(log.contains("media path decision") && log.contains("Direct"), "{log}");
}
