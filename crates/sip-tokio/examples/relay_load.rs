//! Load on the RTP relay: N relayed calls, each with a G.711 stream both ways (50
//! packets/s of 172 bytes per direction), from loopback "phones", for a bounded time.
//!
//! The relay's call tasks run on a current-thread runtime of their own, on one thread;
//! the phones run on another. The relay thread's CPU time comes from
//! `/proc/thread-self/schedstat` (nanoseconds on CPU) and `/proc/thread-self/stat`
//! (user and system ticks), read on that thread before and after the run.
//!
//! ```text
//! cargo run --release -p sip-tokio --example relay_load -- --calls 100,200,400 --seconds 20
//! ```
//!
//! Output: one Markdown table row per N with packets sent (phones), relayed (read by the
//! relay), received (phones), loss (1 − received/sent), the machine's UDP buffer-overflow
//! counters over the run, the relay thread's CPU, its CPU per relayed packet and the calls
//! one core would carry at that cost (1 s / (CPU per packet × 100 packets per call per
//! second)), the phones thread's CPU, and how many 1 ms send ticks ran over 5 ms late (the
//! phones falling behind).

use sip_tokio::media_relay::{Leg, SessionConfig};
use sip_tokio::{MediaEvent, MediaHandle, MediaRelay};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::runtime::{Builder, Handle};
use tokio::time::{Instant, MissedTickBehavior};

/// Packets per second per direction (G.711, 20 ms ptime).
const PPS: u64 = 50;
/// 12 bytes of RTP header + 160 bytes of G.711 (20 ms at 8 kHz).
const PACKET: usize = 172;
/// Send ticks per packet interval: phones are spread over 20 ticks of 1 ms, as real
/// calls would be, instead of all sending at once.
const GROUPS: u64 = 20;
const RELAY_PORTS: (u16, u16) = (40000, 43999);

type Error = Box<dyn std::error::Error>;

struct Args {
    calls: Vec<usize>,
    seconds: u64,
}

fn args() -> Result<Args, Error> {
    let mut a = Args { calls: vec![100, 200, 400], seconds: 20 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--calls" => a.calls = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--seconds" => a.seconds = value.parse()?,
            _ => return Err(format!("unknown flag {flag} (--calls N,N,… --seconds S)").into()),
        }
    }
    if a.seconds == 0 || a.seconds > 120 || a.calls.iter().any(|&n| n == 0 || n > 900) {
        return Err("keep runs bounded: 1-120 s, 1-900 calls".into());
    }
    Ok(a)
}

/// CPU time of the calling thread: (on-CPU ns, user ticks, system ticks).
fn thread_cpu() -> (u64, u64, u64) {
    let sched = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = sched.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    (ns, tick(11), tick(12))
}

/// The kernel's UDP counters (`/proc/net/snmp`): (RcvbufErrors, SndbufErrors), all
/// sockets of the machine. A receive-buffer overflow at a phone or the relay shows here.
fn udp_buffer_errors() -> (u64, u64) {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return (0, 0) };
    let field = |name: &str| {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    (field("RcvbufErrors").unwrap_or(0), field("SndbufErrors").unwrap_or(0))
}

async fn relay_cpu(relay: &Handle) -> (u64, u64, u64) {
    relay.spawn(async { thread_cpu() }).await.unwrap_or((0, 0, 0))
}

fn rtp(ssrc: u32, seq: u16) -> [u8; PACKET] {
    let mut p = [0xd5u8; PACKET];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

struct Phone {
    socket: Arc<UdpSocket>,
    /// The relay socket this phone sends to.
    relay: SocketAddr,
    received: Arc<AtomicU64>,
}

struct Row {
    calls: usize,
    sent: u64,
    relayed_in: u64,
    received: u64,
    relay_ns: u64,
    relay_user: u64,
    relay_sys: u64,
    phones_ns: u64,
    late_ticks: u64,
    elapsed: Duration,
    rcvbuf_errors: u64,
    sndbuf_errors: u64,
}

async fn run(relay_rt: &Handle, calls: usize, seconds: u64) -> Result<Row, Error> {
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let relay = MediaRelay::with_runtime(relay_rt.clone(), IpAddr::V4(Ipv4Addr::LOCALHOST), RELAY_PORTS, events_tx);
    let (a_ip, b_ip) = (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
    let mut handles: Vec<MediaHandle> = Vec::with_capacity(calls);
    let mut phones: Vec<Phone> = Vec::with_capacity(2 * calls);
    for key in 0..calls {
        let media = relay.open(key as u64, [relay.address(); 2], SessionConfig::default())?;
        let a = Arc::new(UdpSocket::bind(SocketAddr::new(a_ip, 0)).await?);
        let b = Arc::new(UdpSocket::bind(SocketAddr::new(b_ip, 0)).await?);
        media.set_remote(Leg::A, Some(a.local_addr()?));
        media.set_remote(Leg::B, Some(b.local_addr()?));
        phones.push(Phone { socket: a, relay: media.local(Leg::A), received: Arc::default() });
        phones.push(Phone { socket: b, relay: media.local(Leg::B), received: Arc::default() });
        handles.push(media);
    }
    let mut receivers = Vec::new();
    for p in &phones {
        let (socket, received) = (p.socket.clone(), p.received.clone());
        receivers.push(tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while socket.recv_from(&mut buf).await.is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the relay tasks reach their first poll before the clock starts.
    for h in &handles {
        h.fresh_stats().await;
    }

    let relay0 = relay_cpu(relay_rt).await;
    let phones0 = thread_cpu().0;
    let udp0 = udp_buffer_errors();
    let ticks = seconds * 1000;
    let mut interval = tokio::time::interval(Duration::from_millis(1000 / PPS / GROUPS));
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut late_ticks = 0u64;
    for tick in 0..ticks {
        let at = interval.tick().await;
        if at.elapsed() > Duration::from_millis(5) {
            late_ticks += 1;
        }
        let group = tick % GROUPS;
        let seq = (tick / GROUPS) as u16;
        for (i, p) in phones.iter().enumerate().filter(|(i, _)| *i as u64 % GROUPS == group) {
            let packet = rtp(i as u32, seq);
            if p.socket.try_send_to(&packet, p.relay).is_ok() {
                sent += 1;
            } else {
                // A full send buffer: wait for it rather than count the phone's own drop.
                if p.socket.send_to(&packet, p.relay).await.is_ok() {
                    sent += 1;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    // Let the last packets through before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay1 = relay_cpu(relay_rt).await;
    let phones1 = thread_cpu().0;
    let udp1 = udp_buffer_errors();
    let mut relayed_in = 0;
    for h in &handles {
        let [a, b] = h.fresh_stats().await;
        relayed_in += a.rtp_packets_in + b.rtp_packets_in;
    }
    let received = phones.iter().map(|p| p.received.load(Ordering::Relaxed)).sum();
    for r in receivers {
        r.abort();
    }
    for h in handles {
        h.close_and_wait().await;
    }
    while let Ok(e) = events.try_recv() {
        if let MediaEvent::Inactive { key } = e {
            eprintln!("call {key}: unexpected Inactive");
        }
    }
    if elapsed > Duration::from_secs(seconds) + Duration::from_millis(500) {
        eprintln!("the phones fell behind: {seconds} s of packets took {elapsed:?}");
    }
    Ok(Row {
        calls,
        sent,
        relayed_in,
        received,
        relay_ns: relay1.0 - relay0.0,
        relay_user: relay1.1 - relay0.1,
        relay_sys: relay1.2 - relay0.2,
        phones_ns: phones1 - phones0,
        late_ticks,
        elapsed,
        rcvbuf_errors: udp1.0 - udp0.0,
        sndbuf_errors: udp1.1 - udp0.1,
    })
}

fn main() -> Result<(), Error> {
    let args = args()?;
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_thread = std::thread::Builder::new().name("relay".into()).spawn(move || -> Result<(), std::io::Error> {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let _ = handle_tx.send(rt.handle().clone());
        rt.block_on(async {
            let _ = stop_rx.await;
        });
        Ok(())
    })?;
    let relay_rt = handle_rx.recv()?;
    let phones_rt = Builder::new_current_thread().enable_all().build()?;
    println!(
        "| calls | sending took | packets sent | relayed | received | loss | UDP rcvbuf/sndbuf errors | relay CPU | user/sys ticks | relay CPU per packet | calls per core | phones CPU | late ticks |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &calls in &args.calls {
        let row = phones_rt.block_on(run(&relay_rt, calls, args.seconds))?;
        let per_packet = row.relay_ns as f64 / row.relayed_in.max(1) as f64;
        let per_core = 1e9 / (per_packet * 2.0 * PPS as f64);
        let loss = 1.0 - row.received as f64 / row.sent.max(1) as f64;
        // The run's wall time: the sending, and the 300 ms drain after it.
        let wall = row.elapsed.as_secs_f64() + 0.3;
        let cpu = row.relay_ns as f64 / 1e9 / wall;
        println!(
            "| {} | {:.1} s | {} | {} | {} | {:.3} % | {}/{} | {:.1} % of a core | {}/{} | {:.2} µs | {:.0} | {:.1} % | {} |",
            row.calls,
            row.elapsed.as_secs_f64(),
            row.sent,
            row.relayed_in,
            row.received,
            loss * 100.0,
            row.rcvbuf_errors,
            row.sndbuf_errors,
            cpu * 100.0,
            row.relay_user,
            row.relay_sys,
            per_packet / 1000.0,
            per_core,
            row.phones_ns as f64 / 1e9 / wall * 100.0,
            row.late_ticks,
        );
    }
    let _ = stop_tx.send(());
    relay_thread.join().map_err(|_| "relay thread panicked")??;
    Ok(())
}
