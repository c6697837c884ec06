//! Bridged calls through the built binary with real SIPp on both sides (Debian's
//! sip-tester, which `scripts/test.sh` installs): SIPp UAC → sipbridge → SIPp UAS with the
//! benchmark scenarios of `../shared/bench/scenarios` (read in place).
//!
//! Each test has loopback addresses of its own (sipbridge on .x0, the UAS on .x1, the
//! UAC on .x2) so they can run at once; every process is bounded in calls and time.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{shared, sipp_counts, text, Binary};

struct Server(Binary);

impl Server {
    /// sipbridge on `ip:5060` with the UAC at `uac` and the UAS at `uas` as endpoints,
    /// every dialled user routed to the UAS; `media` is added to `[media]`.
    fn start(name: &str, ip: &str, uac: &str, uas: &str, media: &str) -> Server {
        Server::start_with(name, ip, uac, uas, "udp", media)
    }

    /// As [`Server::start`], reaching the UAS over `transport` (UDP and TCP listeners).
    fn start_with(name: &str, ip: &str, uac: &str, uas: &str, transport: &str, media: &str) -> Server {
        let config = format!(
            "[sip]\nlisten = [\"udp:{ip}:5060\", \"tcp:{ip}:5060\"]\n[api]\nlisten = \"\"\n[store]\nurl = \"memory\"\n[media]\naddress = \"{ip}\"\n{media}\n\
             [log]\nlevel = \"info\"\n\
             [[endpoint]]\nname = \"uac\"\nhost = \"{uac}\"\nqualify = false\ndirect_media = \"no\"\n[[endpoint]]\nname = \"uas\"\nhost = \"{uas}\"\ntransport = \"{transport}\"\nqualify = false\ndirect_media = \"no\"\n\
             [[route]]\nmatch = \".*\"\nto = \"uas\"\n"
        );
        // A stray process on the address would answer in our place and the test would
        // check it instead.
        assert!(std::net::UdpSocket::bind((ip, 5060)).is_ok(), "{ip}:5060 is taken by another process");
        let mut s = Server(Binary::start_in(common::temp_dir("calls", name), &config));
        // Ready when the UDP port is taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind((ip, 5060)).is_ok() {
            assert!(Instant::now() < deadline, "sipbridge did not bind {ip}:5060; stderr:\n{}", s.stderr());
            assert!(s.0.child.try_wait().unwrap().is_none(), "sipbridge exited; stderr:\n{}", s.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn stderr(&self) -> String {
        self.0.stderr()
    }
}

fn scenario(name: &str) -> String {
    shared().join("bench/scenarios").join(name).display().to_string()
}

/// SIPp with its control and media ports on its own address, bounded by `-timeout`.
fn sipp(ip: &str, port: u16, args: &[String]) -> Command {
    let mut c = Command::new("sipp");
    c.args([
        "-i",
        ip,
        "-p",
        &port.to_string(),
        "-mi",
        ip,
        "-mp",
        &(port + 10_000).to_string(),
        "-ci",
        ip,
        "-cp",
        &(port + 20_000).to_string(),
        "-nostdin",
    ]);
    c.args(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Runs `calls` calls UAC → sipbridge → UAS with `lost` percent loss at each SIPp and
/// checks both sides completed every one.
fn bridged_calls(name: &str, net: u8, calls: u32, rate: u32, lost: u32) {
    bridged_calls_over(name, net, calls, rate, lost, "udp");
}

fn bridged_calls_over(name: &str, net: u8, calls: u32, rate: u32, lost: u32, uas_transport: &str) {
    let (ip, uas_ip, uac_ip) = (format!("127.0.0.{net}0"), format!("127.0.0.{net}1"), format!("127.0.0.{net}2"));
    let server = Server::start_with(name, &ip, &format!("{uac_ip}:5080"), &format!("{uas_ip}:5070"), uas_transport, "");
    let m = calls.to_string();
    let mut uas_args = vec!["-sf".to_owned(), scenario("uas.xml"), "-m".into(), m.clone(), "-timeout".into(), "120s".into()];
    uas_args.extend(["-default_behaviors".into(), "all,-abortunexp".into()]);
    if uas_transport == "tcp" {
        uas_args.extend(["-t".into(), "t1".into()]);
    }
    let mut uac_args = vec![format!("{ip}:5060"), "-sf".into(), scenario("uac.xml"), "-m".into(), m, "-r".into(), rate.to_string()];
    uac_args.extend(["-d".into(), "0".into(), "-timeout".into(), "120s".into()]);
    if lost > 0 {
        uas_args.extend(["-lost".into(), lost.to_string()]);
        uac_args.extend(["-lost".into(), lost.to_string()]);
    }
    let uas = sipp(&uas_ip, 5070, &uas_args).spawn().expect("sipp runs (Debian package sip-tester; scripts/test.sh installs it)");
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp(&uac_ip, 5080, &uac_args).output().unwrap();
    let uas = uas.wait_with_output().unwrap();
    let (ok, failed) = sipp_counts(&uac);
    assert!(
        uac.status.success() && ok == u64::from(calls) && failed == 0,
        "UAC: {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
        text(&uac),
        server.stderr()
    );
    let (ok, failed) = sipp_counts(&uas);
    assert!(
        uas.status.success() && ok == u64::from(calls) && failed == 0,
        "UAS: {ok} ok, {failed} failed\n{}\nsipbridge:\n{}",
        text(&uas),
        server.stderr()
    );
}

#[test]
fn sipp_500_bridged_calls_without_a_failure() {
    bridged_calls("plain", 5, 500, 100, 0);
}

#[test]
fn sipp_calls_from_udp_to_a_tcp_callee() {
    bridged_calls_over("tcp", 9, 100, 50, 0, "tcp");
}

#[test]
fn sipp_500_bridged_calls_with_10_percent_loss_on_both_sides() {
    bridged_calls("lossy", 6, 500, 50, 10);
}

fn repo_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(name).display().to_string()
}

/// The caller's RTP (SIPp `play_pcap_audio` of Debian's g711a.pcap) reaches the callee
/// from sipbridge's relay, never from the caller: the callee's media socket is the test's.
#[test]
fn sipp_rtp_reaches_the_callee_from_the_relay() {
    let (ip, uas_ip, uac_ip) = ("127.0.0.70", "127.0.0.71", "127.0.0.72");
    let server = Server::start("rtp", ip, &format!("{uac_ip}:5080"), &format!("{uas_ip}:5070"), "");
    let media = std::net::UdpSocket::bind((uas_ip, 31500)).unwrap();
    media.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let uas_args: Vec<String> =
        ["-sf", &repo_file("bench/rtp_uas.xml"), "-m", "1", "-timeout", "60s"].iter().map(|s| s.to_string()).collect();
    let uas = sipp(uas_ip, 5070, &uas_args).spawn().expect("sipp runs");
    std::thread::sleep(Duration::from_millis(300));
    let uac_args: Vec<String> = [&format!("{ip}:5060"), "-sf", &repo_file("bench/rtp_uac.xml"), "-m", "1", "-d", "4000", "-timeout", "60s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let uac = sipp(uac_ip, 5080, &uac_args).spawn().expect("sipp runs");
    let mut sources = std::collections::HashMap::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut packets = 0;
    while Instant::now() < deadline {
        match media.recv_from(&mut buf) {
            Ok((n, from)) => {
                packets += 1;
                assert!(n > 12 && buf[0] >> 6 == 2, "an RTP packet");
                *sources.entry(from).or_insert(0) += 1;
            }
            Err(_) if packets > 0 => break, // the pcap has ended
            Err(_) => {}
        }
    }
    let uac = uac.wait_with_output().unwrap();
    let uas = uas.wait_with_output().unwrap();
    assert!(uac.status.success(), "UAC failed\n{}\nsipbridge:\n{}", text(&uac), server.stderr());
    assert!(uas.status.success(), "UAS failed\n{}", text(&uas));
    // g711a.pcap is 20 ms PCMA packets; several seconds of them.
    assert!(packets >= 100, "only {packets} RTP packets reached the callee; sources {sources:?}\n{}", server.stderr());
    assert_eq!(sources.len(), 1, "one source: {sources:?}");
    let from = *sources.keys().next().unwrap();
    assert_eq!(from.ip().to_string(), ip, "the RTP comes from sipbridge's media address");
    assert!((20000..=29999).contains(&from.port()) && from.port() % 2 == 0, "from an even relay port: {from}");
}

/// `[media] timeout_s`: an answered call with no RTP in either direction is hung up:
/// the callee gets a BYE from sipbridge (SIPp's UAS scenario waits for one and passes),
/// while the caller, which plays no RTP and holds the call for 30 s, is hung up too.
#[test]
fn a_call_without_rtp_is_hung_up_after_the_media_timeout() {
    let (ip, uas_ip, uac_ip) = ("127.0.0.80", "127.0.0.81", "127.0.0.82");
    let server = Server::start("rtp-timeout", ip, &format!("{uac_ip}:5080"), &format!("{uas_ip}:5070"), "timeout_s = 2");
    let uas_args: Vec<String> = ["-sf", &scenario("uas.xml"), "-m", "1", "-timeout", "60s"].iter().map(|s| s.to_string()).collect();
    let uas = sipp(uas_ip, 5070, &uas_args).spawn().expect("sipp runs");
    std::thread::sleep(Duration::from_millis(300));
    let uac_args: Vec<String> = [&format!("{ip}:5060"), "-sf", &scenario("uac.xml"), "-m", "1", "-d", "30000", "-timeout", "60s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let started = Instant::now();
    let uac = sipp(uac_ip, 5080, &uac_args).spawn().expect("sipp runs");
    let uas = uas.wait_with_output().unwrap();
    let took = started.elapsed();
    let mut uac = uac;
    let _ = uac.kill();
    let _ = uac.wait();
    assert!(uas.status.success(), "the UAS did not get its BYE\n{}\nsipbridge:\n{}", text(&uas), server.stderr());
    assert!(took < Duration::from_secs(15), "hung up after {took:?}, not about 2 s after the answer");
    let log = server.stderr();
    assert!(log.contains("no RTP in either direction"), "sipbridge logs why:\n{log}");
}
