//! Two real phones (Debian's baresip, driven headless by `../shared/interop/phone.sh`)
//! call each other through the built sipbridge; each sends its own tone, and each
//! phone's recording must hold the other's tone (`../shared/interop/tone.sh check`).
//!
//! The phones are `nat = "yes"` endpoints: baresip 1.0 binds its RTP sockets to 0.0.0.0,
//! so on loopback its RTP comes from 127.0.0.1 and not from the address in its SDP
//! (`../shared/interop/README.md`, "RTP source caveat"), which is exactly the case
//! symmetric latching is for.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let dir = std::env::temp_dir().join(format!("sipbridge-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = "[sip]\nlisten = [\"udp:127.0.0.10:5060\"]\n[api]\nlisten = \"\"\n[store]\nurl = \"memory\"\n\
                  [media]\naddress = \"127.0.0.10\"\n[log]\nlevel = \"info\"\n\
                  [[endpoint]]\nname = \"a\"\nhost = \"127.0.0.2:5062\"\nnat = \"yes\"\n\
                  [[endpoint]]\nname = \"b\"\nhost = \"127.0.0.3:5064\"\nnat = \"yes\"\n";
    std::fs::write(dir.join("sipbridge.toml"), config).unwrap();
    assert!(std::net::UdpSocket::bind("127.0.0.10:5060").is_ok(), "127.0.0.10:5060 is taken by another process");
    let sipbridge = Command::new(env!("CARGO_BIN_EXE_sipbridge"))
        .arg("--config")
        .arg(dir.join("sipbridge.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sipbridge.log")).unwrap())
        .spawn()
        .unwrap();
    let lab = Lab { sipbridge, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind("127.0.0.10:5060").is_ok() {
        assert!(Instant::now() < deadline, "sipbridge did not bind:\n{}", lab.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.ok("phone.sh", &["start", "a", "127.0.0.2:5062", "--tone", "1000", "--lifetime", "90"]);
    lab.ok("phone.sh", &["start", "b", "127.0.0.3:5064", "--tone", "600", "--lifetime", "90"]);
    let (ma, mb) = (lab.ok("phone.sh", &["mark", "a"]), lab.ok("phone.sh", &["mark", "b"]));
    lab.ok("phone.sh", &["dial", "a", "sip:b@127.0.0.10:5060"]);
    let est = lab.ok("phone.sh", &["wait", "b", "CALL_ESTABLISHED", "10", &mb]);
    assert!(est.contains("sip:a@127.0.0.10"), "b sees the call from sipbridge, not from a: {est}");
    lab.ok("phone.sh", &["wait", "a", "CALL_ESTABLISHED", "10", &ma]);
    std::thread::sleep(Duration::from_secs(4));
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
