//! The built binary, as an operator runs it: exit statuses and what goes to stdout and
//! stderr.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Command, Output};

fn sipbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipbridge")).args(args).output().unwrap()
}

/// A config file named for this test process, so parallel runs do not collide; removed
/// when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path = std::env::temp_dir().join(format!("sipbridge-cli-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn check_config_prints_the_effective_config() {
    let file = ConfigFile::new(
        "good.toml",
        "[sip]\ndomain = \"pbx.cli.test\"\n\n[[endpoint]]\nname = \"alice\"\nsecret = \"hunter2\"\ndirectmedia = \"update,nonat\"\n",
    );
    let out = sipbridge(&["check-config", file.path()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    for line in [
        "domain = \"pbx.cli.test\"",
        "t1_ms = 500",
        "listen = \"127.0.0.1:8080\"",
        "direct_media = \"nonat\"",
        "direct_media_method = \"update\"",
        "secret = \"********\"",
    ] {
        assert!(stdout.lines().any(|l| l == line), "`{line}` missing from:\n{stdout}");
    }
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn check_config_on_a_bad_file_names_key_and_line() {
    let file = ConfigFile::new("bad.toml", "[sip]\ndomain = \"pbx.cli.test\"\n\n[timers]\nt1_ms = 500\nt3_ms = 900\n");
    let out = sipbridge(&["check-config", file.path()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(stderr.contains(&format!("{}:6:1: timers.t3_ms: unknown key `t3_ms`", file.path())), "{stderr}");
}

#[test]
fn check_config_on_a_missing_file_fails() {
    let out = sipbridge(&["check-config", "/nonexistent/sipbridge.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/sipbridge.toml"), "{}", text(&out.stderr));
}

#[test]
fn help_goes_to_stdout() {
    for flag in ["--help", "-h"] {
        let out = sipbridge(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        for form in
            ["sipbridge [--config FILE] [--sip-debug]", "sipbridge check-config FILE", "sipbridge show calls|endpoints|registrations"]
        {
            assert!(stdout.contains(form), "{form} missing from:\n{stdout}");
        }
    }
}

#[test]
fn version() {
    let out = sipbridge(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("sipbridge {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let out = sipbridge(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("sipbridge: unknown option `--bogus`"), "{stderr}");
    assert!(stderr.contains("Usage:"), "{stderr}");
}

#[test]
fn show_without_a_running_instance_says_it_cannot_reach_it() {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    for what in ["calls", "endpoints", "registrations"] {
        let out = sipbridge(&["show", what, "--api", &url]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with(&format!("sipbridge: cannot reach the sipbridge API at {url}: ")), "{stderr}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
    let out = sipbridge(&["show", "calls", "--api", "https://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("https is not supported"), "{}", text(&out.stderr));
}

#[test]
fn run_fails_clearly_on_a_bad_config_or_a_taken_address() {
    // A bad --config fails on the config, before any socket is bound.
    let file = ConfigFile::new("run-bad.toml", "[sip]\nlisten = [\"sctp:0.0.0.0:5060\"]\n");
    let out = sipbridge(&["--config", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("sip.listen[0]: invalid listen address"), "{}", text(&out.stderr));
    // An address already in use is named in the error, and the exit status is 1.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let file = ConfigFile::new("run-taken.toml", &format!("[sip]\nlisten = [\"udp:{addr}\"]\n"));
    let out = sipbridge(&["--sip-debug", "--config", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&addr.to_string()), "{}", text(&out.stderr));
}
