//! Recording a relayed call through the HTTP API (`POST`/`DELETE /api/calls/{id}/record`):
//! SIPp calls through the built binary, the caller playing Debian sip-tester's
//! g711a.pcap; the caller's leg file is a valid 8 kHz 16-bit WAV holding that audio.
//!
//! Addresses: sipbridge and its API 127.0.0.160 (API port 18160), the callee (SIPp UAS,
//! media socket of the test) .161, the caller .162.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::{http, sipp, text, Binary};

const API: &str = "127.0.0.160:18160";

fn repo_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(name).display().to_string()
}

/// The 16-bit samples of a PCM WAV file, after checking its header.
fn samples(path: &str) -> Vec<i16> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(data.len() >= 44 && &data[0..4] == b"RIFF" && &data[8..12] == b"WAVE", "{path}: not a WAV file");
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    assert_eq!((u16_at(20), u16_at(22), u32_at(24), u16_at(34)), (1, 1, 8000, 16), "{path}: PCM mono 8 kHz 16-bit");
    assert_eq!(usize::try_from(u32_at(40)).unwrap(), data.len() - 44, "{path}: the data size was patched on stop");
    data[44..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
}

#[test]
fn a_relayed_call_is_recorded_to_a_wav_file_per_leg() {
    let (ip, uas_ip, uac_ip) = ("127.0.0.160", "127.0.0.161", "127.0.0.162");
    let dir = common::temp_dir("recording", "wav");
    let rec = dir.join("rec");
    let config = format!(
        "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{API}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{ip}\"\nrecord_dir = \"{}\"\n[log]\nlevel = \"info\"\n\
         [[endpoint]]\nname = \"uac\"\nhost = \"{uac_ip}:5080\"\nqualify = false\ndirect_media = \"no\"\n\
         [[endpoint]]\nname = \"uas\"\nhost = \"{uas_ip}:5070\"\nqualify = false\ndirect_media = \"no\"\n\
         [[route]]\nmatch = \".*\"\nto = \"uas\"\n",
        rec.display()
    );
    let server = Binary::start_in(dir, &config);
    // The callee's media port (rtp_uas.xml's SDP) is ours: it only has to exist.
    let _media = std::net::UdpSocket::bind((uas_ip, 31500)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(API, "GET", "/api/health").is_err() {
        assert!(Instant::now() < deadline, "no API; stderr:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let uas = sipp(uas_ip, 5070, "60s", &["-sf", &repo_file("bench/rtp_uas.xml"), "-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let remote = format!("{ip}:5060");
    let uac = sipp(uac_ip, 5080, "60s", &[&remote, "-sf", &repo_file("bench/rtp_uac.xml"), "-m", "1", "-d", "5000"]);

    // Once the call is answered, record for two seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let (_, body) = http(API, "GET", "/api/calls").unwrap();
        let calls: Value = serde_json::from_str(&body).unwrap();
        if let Some(c) = calls.as_array().unwrap().iter().find(|c| c["state"] == "answered") {
            break c["id"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no answered call; stderr:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, body) = http(API, "POST", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let files: Vec<String> =
        serde_json::from_str::<Value>(&body).unwrap()["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    assert_eq!(files.len(), 2, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = http(API, "DELETE", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(API, "DELETE", &format!("/api/calls/{id}/record")).unwrap();
    assert_eq!(status, 404, "not recording any more");
    let (status, _) = http(API, "POST", "/api/calls/999/record").unwrap();
    assert_eq!(status, 404, "no such call");

    let uac = uac.output();
    let uas = uas.output();
    assert!(uac.status.success(), "UAC failed\n{}\nsipbridge:\n{}", text(&uac), server.stderr());
    assert!(uas.status.success(), "UAS failed\n{}", text(&uas));
    // The caller's leg: about two seconds of G.711 decoded to PCM, and not silence.
    let caller = samples(&files[0]);
    let secs = caller.len() as f64 / 8000.0;
    assert!((1.5..=2.6).contains(&secs), "{secs} s recorded; stderr:\n{}", server.stderr());
    let loud = caller.iter().filter(|s| s.unsigned_abs() > 100).count();
    assert!(loud > caller.len() / 4, "{loud} of {} samples above noise: the recording holds the audio", caller.len());
    // The callee sent nothing: its file is a valid, empty WAV.
    assert!(samples(&files[1]).is_empty());
    let log = server.stderr();
    assert!(log.contains("recording") && log.contains("recording stopped"), "{log}");
}

/// `[features] record_toggle = "*#"`: the caller keys *# (RFC 4733 events from Debian
/// sip-tester's pcaps), the relay hears it and recording starts; the caller's file holds
/// the audio that follows. The code keeps the call relayed (DIRECT_MEDIA.md rule 5).
#[test]
fn a_dtmf_feature_code_starts_recording() {
    let (ip, uas_ip, uac_ip) = ("127.0.0.163", "127.0.0.164", "127.0.0.165");
    let api = "127.0.0.163:18163";
    let dir = common::temp_dir("recording", "dtmf");
    let rec = dir.join("rec");
    let config = format!(
        "[sip]\nlisten = [\"udp:{ip}:5060\"]\n[api]\nlisten = \"{api}\"\n[store]\nurl = \"memory\"\n\
         [media]\naddress = \"{ip}\"\nrecord_dir = \"{}\"\n[features]\nrecord_toggle = \"*#\"\n[log]\nlevel = \"info\"\n\
         [[endpoint]]\nname = \"uac\"\nhost = \"{uac_ip}:5080\"\nqualify = false\n\
         [[endpoint]]\nname = \"uas\"\nhost = \"{uas_ip}:5070\"\nqualify = false\n\
         [[route]]\nmatch = \".*\"\nto = \"uas\"\n",
        rec.display()
    );
    let server = Binary::start_in(dir, &config);
    let _media = std::net::UdpSocket::bind((uas_ip, 31500)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(api, "GET", "/api/health").is_err() {
        assert!(Instant::now() < deadline, "no API; stderr:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let uas = sipp(uas_ip, 5070, "60s", &["-sf", &repo_file("bench/rtp_uas.xml"), "-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let remote = format!("{ip}:5060");
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/rtp_dtmf_uac.xml").display().to_string();
    let uac = sipp(uac_ip, 5080, "60s", &[&remote, "-sf", &scenario, "-m", "1", "-d", "4000"]);
    let uac = uac.output();
    let uas = uas.output();
    assert!(uac.status.success(), "UAC failed\n{}\nsipbridge:\n{}", text(&uac), server.stderr());
    assert!(uas.status.success(), "UAS failed\n{}", text(&uas));
    let log = server.stderr();
    assert!(log.contains("feature code: toggle recording"), "{log}");
    assert!(log.contains("relayed: a DTMF feature is armed"), "the code keeps the media in the relay: {log}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rec).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let caller = files.iter().find(|f| f.display().to_string().contains("-inbound-")).unwrap_or_else(|| panic!("{files:?}"));
    let samples = samples(&caller.display().to_string());
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 100).count();
    assert!(samples.len() > 8000 && loud > samples.len() / 4, "{} samples, {loud} loud", samples.len());
}
