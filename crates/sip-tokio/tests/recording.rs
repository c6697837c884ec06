//! Recording, DTMF and direct-media forwarding over real loopback sockets: plain UDP
//! sockets on 127.0.0.2 and 127.0.0.3 are the phones, the relay binds on 127.0.0.1 in
//! 31100-31199 (each test its own slice). Every wait is bounded.

use sip_tokio::media_relay::{g711, wav, Codec, Leg, SessionConfig};
use sip_tokio::{MediaEvent, MediaRelay, RecordingState};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);
const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn phone(last: u8) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip(last), 0)).await.expect("bind a phone socket on loopback")
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local address")
}

async fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0; 2048];
    let (n, _) = timeout(WAIT, s.recv_from(&mut buf)).await.expect("a packet within the bound").expect("recv");
    buf.truncate(n);
    buf
}

fn relay(first: u16, last: u16) -> (MediaRelay, mpsc::UnboundedReceiver<MediaEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MediaRelay::new(RELAY_IP, (first, last), tx), rx)
}

/// The next event that is not about latching (those are the relay tests' business).
async fn next_event(events: &mut mpsc::UnboundedReceiver<MediaEvent>) -> MediaEvent {
    loop {
        let e = timeout(WAIT, events.recv()).await.expect("an event within the bound").expect("relay alive");
        if !matches!(e, MediaEvent::Latched { .. } | MediaEvent::HeardBoth { .. }) {
            return e;
        }
    }
}

/// No event other than latching comes for a while.
async fn no_event(events: &mut mpsc::UnboundedReceiver<MediaEvent>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        assert!(matches!(e, MediaEvent::Latched { .. } | MediaEvent::HeardBoth { .. }), "unexpected event {e:?}");
    }
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sip-tokio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// 20 ms (160 samples) of a `freq` Hz tone starting at sample `n0`, G.711-encoded.
fn tone(freq: f64, n0: u32, encode: fn(i16) -> u8) -> Vec<u8> {
    (n0..n0 + 160)
        .map(|n| {
            // A phase offset keeps samples off exact zero, so crossings count cleanly.
            let x = (2.0 * std::f64::consts::PI * freq * f64::from(n) / 8000.0 + 0.3).sin();
            encode((x * 12000.0) as i16)
        })
        .collect()
}

/// The samples of a complete WAV file the relay wrote.
fn read_wav(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("the recording exists");
    let info = wav::parse(&bytes).expect("a WAV file");
    assert_eq!((info.format, info.channels, info.sample_rate, info.bits_per_sample), (1, 1, 8000, 16));
    assert_eq!(info.data_offset, 44);
    assert_eq!(info.data_bytes as usize, bytes.len() - 44, "data size patched");
    assert_eq!(info.riff_size as usize, bytes.len() - 8, "RIFF size patched");
    bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

fn zero_crossings(samples: &[i16]) -> usize {
    samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

/// `sox <file> -n stat`'s rough frequency; `None` without sox (installed in CI).
fn sox_frequency(path: &Path) -> Option<f64> {
    let out = match std::process::Command::new("sox").arg(path).args(["-n", "stat"]).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("sox not run ({e}): skipping the sox check");
            return None;
        }
    };
    assert!(out.status.success(), "sox refused {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = text.lines().find(|l| l.starts_with("Rough   frequency:")).expect("sox stat prints a frequency");
    Some(line.rsplit(' ').next().and_then(|f| f.parse().ok()).expect("a number"))
}

#[tokio::test]
async fn records_each_leg_to_its_own_wav_file() {
    let (relay, mut events) = relay(31100, 31109);
    let media = relay.open(20, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    let (file_a, file_b) = (temp("leg-a.wav"), temp("leg-b.wav"));
    // A: PCMU at 0. B: PCMA at a dynamic number, with telephone-event at 101.
    let codecs_a = HashMap::from([(0, Codec::Pcmu)]);
    let codecs_b = HashMap::from([(96, Codec::Pcma), (101, Codec::TelephoneEvent { clock_rate: 8000 })]);
    media.start_recording([Some(file_a.clone()), Some(file_b.clone())], [codecs_a, codecs_b]);
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 20, state: RecordingState::Started, files: [Some(file_a.clone()), Some(file_b.clone())] }
    );

    // One second of 1 kHz from A; half a second of 500 Hz from B with packet 10 lost
    // and one telephone-event packet (not audio) in the stream.
    for seq in 0..50u16 {
        let n0 = u32::from(seq) * 160;
        a.send_to(&packet(0, seq, n0, 0xa, &tone(1000.0, n0, g711::linear_to_ulaw)), media.local(Leg::A)).await.expect("send");
        recv(&b).await;
        if seq < 25 && seq != 10 {
            let p = if seq == 12 {
                packet(101, seq, n0, 0xb, &[1, 0x8a, 0, 160])
            } else {
                packet(96, seq, n0, 0xb, &tone(500.0, n0, g711::linear_to_alaw))
            };
            b.send_to(&p, media.local(Leg::B)).await.expect("send");
            recv(&a).await;
        }
    }
    // Recorded, and also detected: the event packet's end bit.
    assert!(matches!(next_event(&mut events).await, MediaEvent::Dtmf { key: 20, leg: Leg::B, digit: '1', .. }));
    media.stop_recording();
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 20, state: RecordingState::Stopped, files: [Some(file_a.clone()), Some(file_b.clone())] }
    );

    let sa = read_wav(&file_a);
    assert_eq!(sa.len(), 8000, "50 packets of 160 samples");
    let crossings = zero_crossings(&sa);
    assert!((1990..=2010).contains(&crossings), "1 kHz: about 2000 zero crossings in 1 s, got {crossings}");
    if let Some(f) = sox_frequency(&file_a) {
        assert!((900.0..1100.0).contains(&f), "sox hears {f} Hz");
    }
    let sb = read_wav(&file_b);
    assert_eq!(sb.len(), 25 * 160, "the lost packet and the event's time are silence, in place");
    assert!(sb[1600..1760].iter().all(|&s| s == 0), "packet 10 lost: silence");
    assert!(sb[1920..2080].iter().all(|&s| s == 0), "packet 12 was an event: silence");
    assert!(sb[1760..1920].iter().any(|&s| s != 0), "packet 11 is audio");
    let crossings = zero_crossings(&sb[..1600]);
    assert!((195..=205).contains(&crossings), "500 Hz: about 200 crossings in 0.2 s, got {crossings}");
    // After the stop, nothing more is written.
    a.send_to(&packet(0, 50, 8000, 0xa, &[0xff; 160]), media.local(Leg::A)).await.expect("send");
    recv(&b).await;
    assert_eq!(read_wav(&file_a).len(), 8000);
    media.close_and_wait().await;
    let _ = (std::fs::remove_file(&file_a), std::fs::remove_file(&file_b));
}

#[tokio::test]
async fn closing_the_call_completes_the_recording() {
    let (relay, mut events) = relay(31110, 31119);
    let media = relay.open(21, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    let file = temp("closed.wav");
    media.start_recording([Some(file.clone()), None], [HashMap::new(), HashMap::new()]);
    assert!(matches!(next_event(&mut events).await, MediaEvent::Recording { state: RecordingState::Started, .. }));
    for seq in 0..5u16 {
        a.send_to(&packet(0, seq, u32::from(seq) * 160, 1, &[0x80; 160]), media.local(Leg::A)).await.expect("send");
        recv(&b).await;
    }
    // While recording, the header (flushed at the start) has placeholder sizes, and the
    // samples may still sit in the buffer.
    let header = std::fs::read(&file).expect("created at the start");
    assert_eq!(wav::parse(&header).map(|i| i.data_bytes), Some(wav::UNKNOWN_SIZE));
    media.close_and_wait().await;
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 21, state: RecordingState::Stopped, files: [Some(file.clone()), None] }
    );
    let samples = read_wav(&file);
    assert_eq!(samples.len(), 800);
    assert!(samples.iter().all(|&s| s == 32124));
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_file_that_cannot_be_created_is_reported_and_the_other_leg_records() {
    let (relay, mut events) = relay(31120, 31129);
    let media = relay.open(22, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let missing_dir = std::env::temp_dir().join(format!("sip-tokio-{}-no-such-dir", std::process::id())).join("x.wav");
    let existing = temp("existing.wav");
    std::fs::write(&existing, b"keep me").expect("write");
    media.start_recording([Some(missing_dir.clone()), Some(existing.clone())], [HashMap::new(), HashMap::new()]);
    match next_event(&mut events).await {
        MediaEvent::RecordingFailed { key: 22, leg: Leg::A, path, error } => {
            assert_eq!(path, missing_dir);
            assert!(!error.is_empty());
        }
        other => panic!("want RecordingFailed for A, got {other:?}"),
    }
    assert!(matches!(next_event(&mut events).await, MediaEvent::RecordingFailed { leg: Leg::B, .. }), "never overwrite");
    no_event(&mut events, Duration::from_millis(100)).await;
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");

    let good = temp("good.wav");
    media.start_recording([Some(missing_dir), Some(good.clone())], [HashMap::new(), HashMap::new()]);
    assert!(matches!(next_event(&mut events).await, MediaEvent::RecordingFailed { leg: Leg::A, .. }));
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 22, state: RecordingState::Started, files: [None, Some(good.clone())] }
    );
    // Starting again stops the recording in progress first.
    let next = temp("next.wav");
    media.start_recording([None, Some(next.clone())], [HashMap::new(), HashMap::new()]);
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 22, state: RecordingState::Stopped, files: [None, Some(good.clone())] }
    );
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::Recording { key: 22, state: RecordingState::Started, files: [None, Some(next.clone())] }
    );
    assert!(read_wav(&good).is_empty(), "an empty but valid recording");
    media.stop_recording();
    assert!(matches!(next_event(&mut events).await, MediaEvent::Recording { state: RecordingState::Stopped, .. }));
    media.stop_recording();
    no_event(&mut events, Duration::from_millis(100)).await;
    for f in [existing, good, next] {
        let _ = std::fs::remove_file(f);
    }
}

/// An RFC 4733 press of `code` on `pt`: three updates and the end three times.
fn press(pt: u8, seq: u16, ts: u32, ssrc: u32, code: u8) -> Vec<Vec<u8>> {
    [(false, 160u16), (false, 320), (false, 480), (true, 640), (true, 640), (true, 640)]
        .into_iter()
        .enumerate()
        .map(|(i, (end, d))| {
            let [d0, d1] = d.to_be_bytes();
            packet(pt, seq + i as u16, ts, ssrc, &[code, if end { 0x8a } else { 0x0a }, d0, d1])
        })
        .collect()
}

#[tokio::test]
async fn dtmf_packets_make_one_event_per_digit() {
    let (relay, mut events) = relay(31130, 31139);
    let media = relay.open(23, [RELAY_IP; 2], SessionConfig::default()).expect("open");
    let (a, b) = (phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&a)));
    media.set_remote(Leg::B, Some(addr(&b)));
    // B negotiated telephone-event at 97; 101 is something else there.
    media.set_payload_types(Leg::B, &HashMap::from([(97, Codec::TelephoneEvent { clock_rate: 8000 }), (101, Codec::Other)]));
    let mut seq = 0;
    for (i, code) in [1u8, 11, 1].into_iter().enumerate() {
        for p in press(101, seq, 1000 * i as u32, 0xa, code) {
            a.send_to(&p, media.local(Leg::A)).await.expect("send");
            assert_eq!(recv(&b).await, p, "events are relayed unchanged");
        }
        seq += 6;
    }
    // A retransmitted end packet of the first press.
    a.send_to(&press(101, 3, 0, 0xa, 1)[3], media.local(Leg::A)).await.expect("send");
    recv(&b).await;
    for p in press(101, 0, 0, 0xb, 4).into_iter().chain(press(97, 6, 2000, 0xb, 10)) {
        b.send_to(&p, media.local(Leg::B)).await.expect("send");
        recv(&a).await;
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        match next_event(&mut events).await {
            MediaEvent::Dtmf { key: 23, leg, digit, duration } => {
                assert_eq!(duration, Duration::from_millis(80));
                got.push((leg, digit));
            }
            other => panic!("want Dtmf, got {other:?}"),
        }
    }
    assert_eq!(got, [(Leg::A, '1'), (Leg::A, '#'), (Leg::A, '1'), (Leg::B, '*')], "B's PT 101 is not an event there");
    no_event(&mut events, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn re_anchoring_latches_again_to_a_new_source() {
    let (relay, mut events) = relay(31140, 31149);
    let media = relay
        .open(24, [RELAY_IP; 2], SessionConfig { timeout: Duration::from_millis(300), nat: [true, false], keepalive: Duration::ZERO })
        .expect("open");
    let (sdp, a, b) = (phone(2).await, phone(2).await, phone(3).await);
    media.set_remote(Leg::A, Some(addr(&sdp)));
    media.set_remote(Leg::B, Some(addr(&b)));
    let rtp = |seq: u16| packet(0, seq, u32::from(seq) * 160, 0xa, &[0xff; 160]);
    for seq in 1..=2 {
        a.send_to(&rtp(seq), media.local(Leg::A)).await.expect("send");
    }
    assert_eq!(recv(&b).await, rtp(2));
    assert_eq!(timeout(WAIT, events.recv()).await.ok().flatten(), Some(MediaEvent::Latched { key: 24, leg: Leg::A, source: addr(&a) }));

    // Direct media: nothing forwarded, no timeout for longer than the timeout.
    media.set_forwarding(false);
    a.send_to(&rtp(3), media.local(Leg::A)).await.expect("send");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(events.try_recv().is_err(), "no Inactive while direct");
    let [sa, sb] = media.fresh_stats().await;
    assert_eq!((sa.rtp_packets_in, sb.packets_out), (2, 1), "counted (the first was a latch candidate), not forwarded");

    // Re-anchored: the phone's NAT gave it a new public port meanwhile.
    media.set_forwarding(true);
    let a2 = phone(2).await;
    for seq in 100..=101 {
        a2.send_to(&rtp(seq), media.local(Leg::A)).await.expect("send");
    }
    assert_eq!(recv(&b).await, rtp(101));
    assert_eq!(timeout(WAIT, events.recv()).await.ok().flatten(), Some(MediaEvent::Latched { key: 24, leg: Leg::A, source: addr(&a2) }));
    b.send_to(&packet(0, 1, 0, 0xb, &[0xff; 160]), media.local(Leg::B)).await.expect("send");
    assert_eq!(recv(&a2).await.len(), 172, "B's media goes to the new source");
    assert!(matches!(timeout(WAIT, events.recv()).await.ok().flatten(), Some(MediaEvent::HeardBoth { key: 24 })));
    assert!(matches!(timeout(WAIT, events.recv()).await.ok().flatten(), Some(MediaEvent::Latched { key: 24, leg: Leg::B, .. })));
    assert_eq!(timeout(WAIT, events.recv()).await.ok().flatten(), Some(MediaEvent::Inactive { key: 24 }), "the timeout is armed again");
}
