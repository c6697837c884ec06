//! The built binary, as an operator runs it: exit statuses and what goes to stdout and
//! stderr.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Command, Output};

fn sipbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipbridge")).args(args).output().unwrap()
}

/// A config file in a directory of this test process's own, so parallel test runs and
/// other users of the temp dir do not collide.
fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipbridge-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn check_config_prints_the_effective_config() {
    let path = write_config(
        "good.toml",
        "[sip]\ndomain = \"pbx.cli.test\"\n\n[[endpoint]]\nname = \"alice\"\nsecret = \"hunter2\"\ndirectmedia = \"update,nonat\"\n",
    );
    let out = sipbridge(&["check-config", path.to_str().unwrap()]);
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
    let path = write_config("bad.toml", "[sip]\ndomain = \"pbx.cli.test\"\n\n[timers]\nt1_ms = 500\nt3_ms = 900\n");
    let out = sipbridge(&["check-config", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(stderr.contains(&format!("{}:6:1: timers.t3_ms: unknown key `t3_ms`", path.display())), "{stderr}");
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
fn show_is_not_available_yet() {
    let out = sipbridge(&["show", "calls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("the HTTP API is not available in this build yet"), "{}", text(&out.stderr));
}

#[test]
fn run_loads_the_config_before_failing() {
    // Until the server is wired, running fails; but a bad --config must fail first, on the config.
    let path = write_config("run-bad.toml", "[sip]\nlisten = [\"sctp:0.0.0.0:5060\"]\n");
    let out = sipbridge(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("sip.listen[0]: invalid listen address"), "{}", text(&out.stderr));
    let out = sipbridge(&["--sip-debug"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("server not wired yet"), "{}", text(&out.stderr));
}
