//! What the tests of the built binary share: a temp folder per server, the binary started
//! on a config file there with its stderr in a file, and everything stopped and removed
//! on drop. `pg` starts a real PostgreSQL server for tests of the `postgres://` store.

// Each test file uses what it needs of this.
#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `$SIPBRIDGE_SHARED`, else the nearest `shared/` with the bench scenarios above the
/// crate (`../shared` beside the repository, also from a git worktree one level deeper).
/// Its data is read in place.
pub fn shared() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIPBRIDGE_SHARED") {
        return PathBuf::from(dir);
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|s| s.join("bench/scenarios/uac.xml").is_file())
        .unwrap_or_else(|| crate_dir.join("../../../shared"))
}

/// A fresh folder for one server of one test file (`suite`) and test (`name`).
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipbridge-{suite}-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    dir
}

/// The running binary.
pub struct Binary {
    /// The process (killed and reaped on drop).
    pub child: Child,
    dir: PathBuf,
}

impl Binary {
    /// Writes `config` to `dir/sipbridge.toml` and starts `sipbridge --config` on it with
    /// `RUST_LOG` unset and stderr in `dir/stderr.log`.
    pub fn start_in(dir: PathBuf, config: &str) -> Binary {
        std::fs::write(dir.join("sipbridge.toml"), config).expect("the config file");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("the log file");
        let child = spawn(&dir, log);
        Binary { child, dir }
    }

    /// Stops it with SIGTERM and waits for the exit, killing it past `limit` (the status
    /// is then that of the kill, never a success). Its folder stays, for [`Binary::restart`].
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the config file of its folder (after [`Binary::terminate`]: the
    /// running process, if any, is killed first), its stderr appended to `stderr.log`.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new().append(true).create(true).open(self.dir.join("stderr.log")).expect("the log file");
        self.child = spawn(&self.dir, log);
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

/// `sipbridge --config dir/sipbridge.toml` in `dir` (so the default `sqlite:sipbridge.db`
/// store lands there, not in the source tree), `RUST_LOG` unset, stderr to `log`.
fn spawn(dir: &Path, log: std::fs::File) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sipbridge"))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("sipbridge.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary starts")
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed (and reaped) on drop, so a failed test leaves nothing running.
pub struct Kid(pub Option<std::process::Child>);

impl Kid {
    /// Waits for the exit, at most `limit`; kills it past that.
    pub fn wait(mut self, limit: std::time::Duration) -> std::process::Output {
        let Some(mut child) = self.0.take() else { panic!("waited twice") };
        let deadline = std::time::Instant::now() + limit;
        while child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.wait_with_output().expect("the child's output")
    }

    /// Its output once it exits by itself (SIPp's `-timeout` bounds that).
    pub fn output(mut self) -> std::process::Output {
        let Some(child) = self.0.take() else { panic!("waited twice") };
        child.wait_with_output().expect("the child's output")
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SIPp with its signalling, media and control ports on `ip`, bounded by `-timeout`.
pub fn sipp(ip: &str, port: u16, timeout: &str, args: &[&str]) -> Kid {
    let child = Command::new("sipp")
        .args(["-i", ip, "-p", &port.to_string(), "-mi", ip, "-mp", &(port + 10_000).to_string()])
        .args(["-ci", ip, "-cp", &(port + 20_000).to_string(), "-nostdin", "-timeout", timeout])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs (Debian package sip-tester; scripts/test.sh installs it)");
    Kid(Some(child))
}

/// A scenario of `../shared/bench/scenarios`, read in place.
pub fn bench_scenario(name: &str) -> String {
    shared().join("bench/scenarios").join(name).display().to_string()
}

/// A process's stdout and stderr, for failure messages.
pub fn text(o: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The "Successful call" and "Failed call" cumulative counts of SIPp's final screen.
pub fn sipp_counts(o: &std::process::Output) -> (u64, u64) {
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    let last = |label: &str| {
        s.lines()
            .rev()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.rsplit('|').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (last("Successful call"), last("Failed call"))
}

/// One HTTP/1.1 request with `Connection: close`, read to the end (10 s at most) →
/// (status, body).
pub fn http(addr: &str, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no header end: {raw}")))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other(format!("bad status: {head}")))?;
    Ok((status, body.to_owned()))
}

/// The value of the first header row `name` (case-insensitive, full name) of a SIP
/// message's text; a missing one fails the test.
pub fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

/// `GET path` on the API at `addr` → the JSON body of a 200 (anything else fails the test).
pub fn api_json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path).unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}
