//! The RTP relay's I/O: one tokio task per relayed call, owning that call's four UDP
//! sockets and its sans-IO [`media_relay::Session`].
//!
//! ```text
//!  B2BUA (signalling task)                    call task (1 per relayed call)
//!  MediaRelay::open ── binds 4 sockets ──►  ┌──────────────────────────────────┐
//!  MediaHandle ── Command queue, wake ─────►│ owns Session + 4 UdpSockets      │
//!      ▲  stats(): latest snapshot ◄────────│ select!: wake, 4 × readable,     │
//!      └── MediaEvent (unbounded) ◄─────────│   the one timer (inactivity,     │
//!                                           │   stats publication)             │
//!                                           └──────────────────────────────────┘
//! ```
//!
//! - The signalling task never waits on media: [`MediaRelay::open`] binds synchronously
//!   (so the ports are known before the SDP is written) and every [`MediaHandle`] call
//!   only queues a command or reads the latest snapshot. Commands that only matter for
//!   packets still to come are queued without waking the media thread (see
//!   `MediaHandle::send`): a relayed call costs two wake-ups, its start and its end.
//! - The call task drains each readable socket with `try_recv_from` (at most
//!   [`BATCH`] datagrams per wake-up, so one busy socket cannot starve the others or the
//!   commands), hands each to [`Session::handle_packet`] and sends the [`Forward`] with
//!   `try_send_to`: a full socket buffer drops the packet, as the network might.
//! - Ports come from one [`PortPool`] shared by every call behind a `std` mutex, held
//!   only to take or give back a port number (never across an await). A port that fails
//!   to bind (another process has it) is skipped and goes back to the pool's tail.
//! - Warm sockets ([`WarmSockets`], off unless [`MediaRelay::with_warm_sockets`] turns it
//!   on): when a call task ends its socket pairs are kept open, registered with the
//!   reactor, instead of being closed, and a call set up at least
//!   [`WarmSockets::quarantine`] later takes them: the `socket`, `bind`, two `epoll_ctl`
//!   and `close` calls of each socket, about a sixth of the CPU of a short relayed call,
//!   are saved. Whatever arrived while a pair was unused is read and dropped before the
//!   new call gets it, and the new call's session latches afresh, so late packets of the
//!   old call are never forwarded by the new one (the same rules as for a port reused
//!   after a close). At most [`WarmSockets::limit`] pairs are kept; the oldest beyond it,
//!   and any unused for [`WarmSockets::idle`], are closed and their ports go back to the
//!   pool. A bind that fails for want of file descriptors closes warm pairs and tries
//!   again. Otherwise the ports return to the pool when the call task ends — after
//!   [`MediaHandle::close`], dropping the handle, or the runtime shutting down — and its
//!   sockets are closed.
//! - Time: a tokio `Instant` taken when the task starts is the session's epoch.
//! - Recording ([`MediaHandle::start_recording`]): the session decodes each accepted RTP
//!   packet of a recorded leg ([`media_relay::Recorder`]) and the call task appends the
//!   samples to that leg's WAV file (16-bit mono 8 kHz PCM, [`media_relay::wav`]) with
//!   buffered `std::fs` writes on the media thread: a file costs a `write` syscall about
//!   every two seconds. The header is written at the start with placeholder sizes
//!   ([`media_relay::wav::UNKNOWN_SIZE`]: readers take the data up to the end of the
//!   file, so a recording cut short by a crash still plays) and patched when the
//!   recording stops, the call closes, or the task is dropped. I/O errors become
//!   [`MediaEvent::RecordingFailed`], never a panic.
//! - DTMF: RFC 4733 telephone events of either leg come out as [`MediaEvent::Dtmf`],
//!   one per key press ([`media_relay::DtmfDetector`]), with the payload type of
//!   [`MediaHandle::set_payload_types`] (default 101). No inband (tone) detection yet.
//! - Payload-type translation ([`MediaHandle::set_payload_translation`]): a forwarded
//!   RTP packet gets the other leg's number for its codec (RFC 3264 §8.3.2: the legs'
//!   numbers are negotiated apart), written into the receive buffer before the send
//!   ([`Forward::apply`]); RTCP and anything not RTP go out as they came.

use media_relay::{
    recorder, wav, Codec, Forward, Leg, LegStats, PayloadMap, PayloadTranslation, PortPool, RelayEvent, Session, SessionConfig,
};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Datagrams read from one socket per wake-up before the task looks at the others.
pub const BATCH: usize = 32;
/// The stats snapshot behind [`MediaHandle::stats`] is refreshed at most this often
/// while packets flow (and at once on a latch, a command or an event).
pub const STATS_INTERVAL: Duration = Duration::from_millis(100);
/// Receive buffer: larger than any RTP packet on an Ethernet path; a longer datagram is
/// truncated by the kernel and relayed truncated.
const MAX_DATAGRAM: usize = 2048;

thread_local! {
    /// The receive buffer of every call task on this thread: a task only holds it inside
    /// `drain`, which never awaits, so tasks sharing a thread never see it in use, and a
    /// call costs no buffer of its own (2 KiB each at 10 000 calls).
    static BUFFER: std::cell::RefCell<[u8; MAX_DATAGRAM]> = const { std::cell::RefCell::new([0; MAX_DATAGRAM]) };
}
/// Write buffer of a recording's file: about two seconds of 8 kHz 16-bit audio.
const WAV_BUFFER: usize = 32 * 1024;

/// Whether a [`MediaEvent::Recording`] tells of a start or a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingState {
    /// The files named are open and being written.
    Started,
    /// The recording is over; the files named are complete (sizes patched, flushed).
    Stopped,
}

/// What a call's media task tells the B2BUA. `key` is the one given to
/// [`MediaRelay::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP in either direction for the session's timeout: hang the call up.
    Inactive {
        /// The call.
        key: u64,
    },
    /// A leg latched: its media now goes to `source` (symmetric RTP).
    Latched {
        /// The call.
        key: u64,
        /// The leg.
        leg: Leg,
        /// Where that leg's RTP comes from and now goes to.
        source: SocketAddr,
    },
    /// RTP has arrived from both legs (DIRECT_MEDIA.md rule 9): the direct-media
    /// decision can look at [`LegStats::source_differs_from_sdp`].
    HeardBoth {
        /// The call.
        key: u64,
    },
    /// A leg's endpoint pressed a key (an RFC 4733 telephone event, reported once).
    Dtmf {
        /// The call.
        key: u64,
        /// The leg whose endpoint sent it.
        leg: Leg,
        /// '0'–'9', '*', '#', 'A'–'D'.
        digit: char,
        /// How long the key was held, as the sender says.
        duration: Duration,
    },
    /// A recording started or stopped. Every `Started` is followed by exactly one
    /// `Stopped`: after [`MediaHandle::stop_recording`], a new
    /// [`MediaHandle::start_recording`], the end of the call, or when the last of its
    /// files failed.
    Recording {
        /// The call.
        key: u64,
        /// Started or stopped.
        state: RecordingState,
        /// Per leg (index = [`Leg::index`]): `Started`, the files opened; `Stopped`, the
        /// files closed complete (a leg that failed on the way is `None` here and had
        /// its [`MediaEvent::RecordingFailed`]).
        files: [Option<PathBuf>; 2],
    },
    /// A leg's recording file could not be created, written or completed: that leg is no
    /// longer recorded (its file, if it was opened, is closed with whatever was written,
    /// sizes patched if the error allows). The call and its other leg go on.
    RecordingFailed {
        /// The call.
        key: u64,
        /// The leg.
        leg: Leg,
        /// The file.
        path: PathBuf,
        /// The system's error, as text.
        error: String,
    },
}

/// Why [`MediaRelay::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Every port pair of the range is in use (or was skipped: bound by someone else).
    #[error("no free relay port pair on {address} (range {first}-{last})")]
    Exhausted {
        /// The address the pair was wanted on.
        address: IpAddr,
        /// The range's first port.
        first: u16,
        /// The range's last port.
        last: u16,
    },
    /// A bind failed for another reason than the port being in use (an address that is
    /// not ours, no permission): trying other ports would not help.
    #[error("cannot bind relay socket {addr}: {source}")]
    Bind {
        /// The socket address.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
}

/// The relay: a cheap [`Clone`] handle on the shared port pool, the default media
/// address, the runtime the call tasks run on and the event sender.
#[derive(Debug, Clone)]
pub struct MediaRelay {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    address: IpAddr,
    range: (u16, u16),
    pool: Mutex<Pool>,
    runtime: Handle,
    events: mpsc::UnboundedSender<MediaEvent>,
}

/// The free port numbers, and the socket pairs kept open between calls.
#[derive(Debug)]
struct Pool {
    ports: PortPool,
    warm_config: WarmSockets,
    /// Pairs of ended calls, oldest first. Their ports are not in `ports`: they are in use
    /// until the sockets are closed.
    warm: VecDeque<Warm>,
}

/// A socket pair kept open after its call ended.
#[derive(Debug)]
struct Warm {
    ip: IpAddr,
    port: u16,
    sockets: [UdpSocket; 2],
    since: std::time::Instant,
}

/// Whether and how long the relay keeps the sockets of ended calls open for the next
/// calls (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmSockets {
    /// At most this many pairs (twice as many file descriptors) are kept; 0 = none. When
    /// full, the pairs of a call that ends are closed.
    pub limit: usize,
    /// A pair is given to no new call for this long after its call ended.
    pub quarantine: Duration,
    /// A pair unused this long is closed.
    pub idle: Duration,
}

impl WarmSockets {
    /// No warm sockets: every call binds its own and closes them at its end.
    pub const OFF: WarmSockets = WarmSockets { limit: 0, quarantine: Duration::from_secs(1), idle: Duration::from_secs(30) };
}

/// Linux's "too many open files" (per process, `EMFILE`, and system-wide, `ENFILE`):
/// a bind that fails so is retried after closing warm sockets.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

impl Pool {
    /// Closes the pairs unused for `idle` or longer, and the oldest beyond `limit` (after
    /// the limit was lowered).
    fn trim(&mut self, now: std::time::Instant) {
        let WarmSockets { limit, idle, .. } = self.warm_config;
        while let Some(w) = self.warm.front() {
            if self.warm.len() <= limit && now.saturating_duration_since(w.since) < idle {
                break;
            }
            self.close_oldest();
        }
    }

    /// Closes the oldest warm pair; false if there is none.
    fn close_oldest(&mut self) -> bool {
        let Some(w) = self.warm.pop_front() else { return false };
        // Closed before the port is free again, so that its next bind cannot collide.
        drop(w.sockets);
        self.ports.release(w.port);
        true
    }

    /// The oldest warm pair on `ip` out of quarantine, if any. Only the pairs old enough
    /// are looked at, and they are at the front.
    fn take_warm(&mut self, ip: IpAddr, now: std::time::Instant) -> Option<Warm> {
        let quarantine = self.warm_config.quarantine;
        let i = self.warm.iter().take_while(|w| now.saturating_duration_since(w.since) >= quarantine).position(|w| w.ip == ip)?;
        self.warm.remove(i)
    }
}

impl Shared {
    fn pool(&self) -> MutexGuard<'_, Pool> {
        // The pool is lists of numbers and sockets, consistent after any panic in a holder.
        self.pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the pairs of an ended call open for later calls, or closes them and frees
    /// their ports when warm sockets are off.
    fn park<const N: usize>(&self, pairs: [(IpAddr, u16, [UdpSocket; 2]); N]) {
        let now = std::time::Instant::now();
        let mut pool = self.pool();
        pool.trim(now);
        for (ip, port, sockets) in pairs {
            // Full: this pair is closed, not the oldest, which is the next to come out of
            // quarantine (at a rate beyond `limit / quarantine` pairs a second some binds
            // are still saved).
            if pool.warm.len() >= pool.warm_config.limit {
                drop(sockets);
                pool.ports.release(port);
            } else {
                pool.warm.push_back(Warm { ip, port, sockets, since: now });
            }
        }
    }
}

impl MediaRelay {
    /// A relay whose calls run on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (use [`MediaRelay::with_runtime`] there).
    pub fn new(address: IpAddr, ports: (u16, u16), events: mpsc::UnboundedSender<MediaEvent>) -> MediaRelay {
        MediaRelay::with_runtime(Handle::current(), address, ports, events)
    }

    /// A relay whose call tasks are spawned on `runtime` (for instance a runtime of its
    /// own, on its own threads, so media never shares a thread with signalling).
    /// `address` is `[media] address`, `ports` the `[media] ports` range (inclusive).
    pub fn with_runtime(runtime: Handle, address: IpAddr, ports: (u16, u16), events: mpsc::UnboundedSender<MediaEvent>) -> MediaRelay {
        let pool = Mutex::new(Pool { ports: PortPool::new(ports.0, ports.1), warm_config: WarmSockets::OFF, warm: VecDeque::new() });
        MediaRelay { shared: Arc::new(Shared { address, range: ports, pool, runtime, events }) }
    }

    /// Turns warm sockets on (or off, with [`WarmSockets::OFF`]) for the calls that end
    /// from now on. While any are kept, a task on the relay's runtime closes the pairs
    /// unused for [`WarmSockets::idle`] every few seconds.
    pub fn with_warm_sockets(self, config: WarmSockets) -> MediaRelay {
        self.shared.pool().warm_config = config;
        if config.limit > 0 {
            let shared: Weak<Shared> = Arc::downgrade(&self.shared);
            let every = (config.idle / 4).max(Duration::from_millis(100));
            self.shared.runtime.spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    // The relay is gone: nothing left to sweep.
                    let Some(shared) = shared.upgrade() else { break };
                    shared.pool().trim(std::time::Instant::now());
                }
            });
        }
        self
    }

    /// Socket pairs kept open after their calls ended, ready for new calls.
    pub fn warm(&self) -> usize {
        self.shared.pool().warm.len()
    }

    /// The default address to bind and advertise (`[media] address`).
    pub fn address(&self) -> IpAddr {
        self.shared.address
    }

    /// Free RTP/RTCP port pairs in the pool, warm ones included. Each open call holds two.
    pub fn available(&self) -> usize {
        let pool = self.shared.pool();
        pool.ports.available() + pool.warm.len()
    }

    /// Opens a call's media: binds an RTP/RTCP pair for each leg on `local[leg]` (the
    /// endpoint's `media_address`, else [`MediaRelay::address`]) and spawns the call's
    /// task. Returns at once; the sockets are bound when it returns, so
    /// [`MediaHandle::local`] can go straight into the SDP. `key` is echoed in every
    /// [`MediaEvent`] of this call.
    pub fn open(&self, key: u64, local: [IpAddr; 2], config: SessionConfig) -> Result<MediaHandle, RelayError> {
        // `from_std` registers with the runtime's reactor: enter it, so that `open` works
        // from any thread.
        let _runtime = self.shared.runtime.enter();
        let (port_a, a) = self.bind_pair(local[0])?;
        let b = match self.bind_pair(local[1]) {
            Ok(b) => b,
            Err(e) => {
                self.shared.park([(local[0], port_a, a)]);
                return Err(e);
            }
        };
        let (port_b, b) = b;
        let ports = Ports { shared: self.shared.clone(), ports: Some([(local[0], port_a), (local[1], port_b)]) };
        let sockets = [a, b];
        let locals = [SocketAddr::new(local[0], port_a), SocketAddr::new(local[1], port_b)];
        let link = Arc::new(Link {
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            stats: Mutex::new([LegStats::default(); 2]),
        });
        let start = Instant::now();
        let task = CallTask {
            key,
            start,
            session: Session::new(Duration::ZERO, config),
            sockets,
            link: link.clone(),
            applying: Vec::new(),
            events: self.shared.events.clone(),
            stats_due: None,
            published_at: start,
            recording: None,
            _ports: ports,
        };
        tracing::debug!(key, a = %locals[0], b = %locals[1], "relay: call opened");
        // Boxed: the task's future then holds a pointer, not the task's state twice (the
        // future of an `async fn` keeps its argument and its moved copy).
        let task = self.shared.runtime.spawn(Box::new(task).run());
        Ok(MediaHandle { key, locals, link, keepalive: AtomicBool::new(false), task })
    }

    /// A warm pair on `ip` out of quarantine, emptied of what arrived while it was
    /// unused; else ports from the pool until both of a pair bind on `ip` (the ones
    /// skipped go back to the pool's tail).
    fn bind_pair(&self, ip: IpAddr) -> Result<(u16, [UdpSocket; 2]), RelayError> {
        let warm = self.shared.pool().take_warm(ip, std::time::Instant::now());
        if let Some(Warm { port, sockets, .. }) = warm {
            sockets.iter().for_each(discard_queued);
            return Ok((port, sockets));
        }
        let mut skipped = Vec::new();
        let result = loop {
            let Some(port) = self.shared.pool().ports.allocate() else {
                let (first, last) = self.shared.range;
                break Err(RelayError::Exhausted { address: ip, first, last });
            };
            match bind_one(ip, port).and_then(|rtp| Ok([rtp, bind_one(ip, port + 1)?])) {
                Ok(pair) => break Ok((port, pair)),
                Err(BindError::InUse) => skipped.push(port),
                // Out of file descriptors: warm sockets hold some; close a few and retry
                // the same port.
                Err(BindError::Other(_, ref e)) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) && self.close_warm(16) => {
                    skipped.push(port);
                }
                Err(BindError::Other(addr, source)) => {
                    skipped.push(port);
                    break Err(RelayError::Bind { addr, source });
                }
            }
        };
        let mut pool = self.shared.pool();
        for port in skipped {
            pool.ports.release(port);
        }
        result
    }

    /// Closes up to `n` warm pairs, oldest first; false if there were none.
    fn close_warm(&self, n: usize) -> bool {
        let mut pool = self.shared.pool();
        let mut closed = false;
        for _ in 0..n {
            closed |= pool.close_oldest();
        }
        closed
    }
}

/// Reads and drops what a warm socket received while no call had it (late packets of
/// its last call, strays). Bounded, so a flood cannot hold the caller; anything left is
/// subject to the new session's latching like any stray.
fn discard_queued(socket: &UdpSocket) {
    let mut buf = [0u8; 64];
    for _ in 0..256 {
        match socket.try_recv_from(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // An ICMP error of an earlier send: read past it.
            Err(_) => {}
        }
    }
}

enum BindError {
    InUse,
    Other(SocketAddr, io::Error),
}

fn bind_one(ip: IpAddr, port: u16) -> Result<UdpSocket, BindError> {
    let addr = SocketAddr::new(ip, port);
    let bind = || -> io::Result<UdpSocket> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    };
    bind().map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse,
        _ => BindError::Other(addr, e),
    })
}

/// The ports of one call (`[leg]`: address and RTP port), back to the pool when the call
/// task is dropped without parking its sockets (the runtime shutting down).
#[derive(Debug)]
struct Ports {
    shared: Arc<Shared>,
    /// `None` once parked.
    ports: Option<[(IpAddr, u16); 2]>,
}

impl Ports {
    /// Hands the call's sockets to the pool: kept warm, or closed and their ports freed.
    fn park(mut self, sockets: [[UdpSocket; 2]; 2]) {
        let Some([(ip_a, port_a), (ip_b, port_b)]) = self.ports.take() else { return };
        let [a, b] = sockets;
        self.shared.park([(ip_a, port_a, a), (ip_b, port_b, b)]);
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        let Some(ports) = self.ports else { return };
        let mut pool = self.shared.pool();
        for (_, port) in ports {
            pool.ports.release(port);
        }
    }
}

/// One call's media, as the B2BUA holds it. Dropping it ends the call's task, like
/// [`MediaHandle::close`].
#[derive(Debug)]
pub struct MediaHandle {
    key: u64,
    locals: [SocketAddr; 2],
    /// The command queue, wake-up and counters shared with the task.
    link: Arc<Link>,
    /// A keep-alive interval is set: a new remote address then matters without a packet.
    keepalive: AtomicBool,
    task: JoinHandle<()>,
}

impl Drop for MediaHandle {
    /// Ends the task (at its next wake-up, which this is).
    fn drop(&mut self) {
        self.link.close();
    }
}

/// What a call's handle and its task share, in one allocation: a tokio channel for the
/// wake-ups and a `watch` for the counters cost about 1.2 KiB a call between them (the
/// channel's halves are cache-line padded, the `watch` carries eight `Notify`s); nobody
/// waits on the counters, and a wake-up needs no payload.
#[derive(Debug)]
struct Link {
    /// Commands not yet applied, in order; the task takes them at its next wake-up.
    queue: Mutex<Vec<Command>>,
    /// Wakes the task for a command that must take effect at once (see
    /// [`MediaHandle::send`]) or for the handle's end; wake-ups before the task waits
    /// are kept (one permit).
    wake: Notify,
    /// The handle is gone: the task ends.
    closed: AtomicBool,
    /// The latest snapshot of both legs' counters ([`MediaHandle::stats`]).
    stats: Mutex<[LegStats; 2]>,
}

impl Link {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

#[derive(Debug)]
enum Command {
    SetRemote(Leg, Option<SocketAddr>),
    SetRemoteRtcp(Leg, Option<SocketAddr>),
    SetForwarding(bool),
    RestartTimeout,
    SetTimeout(Duration),
    SetKeepalive(Duration),
    SetPayloadTypes(Leg, PayloadMap),
    // Boxed, the rare large ones: every command in the queue is as large as the largest.
    SetPayloadTranslation(Leg, Box<PayloadTranslation>),
    StartRecording(Box<([Option<PathBuf>; 2], [PayloadMap; 2])>),
    StopRecording,
    Stats(oneshot::Sender<[LegStats; 2]>),
}

impl MediaHandle {
    /// The key given to [`MediaRelay::open`].
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Our RTP socket address for `leg` (RTCP is on port + 1): what goes into that leg's
    /// SDP `c=`/`m=`.
    pub fn local(&self, leg: Leg) -> SocketAddr {
        self.locals[leg.index()]
    }

    /// The leg's SDP address (see [`Session::set_remote`]; `None` or `0.0.0.0` = send
    /// nothing to it).
    pub fn set_remote(&self, leg: Leg, rtp: Option<SocketAddr>) {
        self.send(Command::SetRemote(leg, rtp));
    }

    /// The leg's RTCP address from `a=rtcp`; `None` = RTP port + 1.
    pub fn set_remote_rtcp(&self, leg: Leg, rtcp: Option<SocketAddr>) {
        self.send(Command::SetRemoteRtcp(leg, rtcp));
    }

    /// Forwarding on (relayed) or off (direct media, DIRECT_MEDIA.md "Moving the
    /// media"): while off, packets are counted and dropped and the inactivity timeout
    /// does not fire; the ports stay bound for re-anchoring. Turning it back on re-arms
    /// the timeout from now and starts latching over on both legs. See
    /// [`Session::set_forwarding`].
    pub fn set_forwarding(&self, on: bool) {
        self.send(Command::SetForwarding(on));
    }

    /// The payload types negotiated on `leg` (its SDP's `a=rtpmap`s; see
    /// [`Codec::from_rtpmap`]): which PT is telephone-event for DTMF detection, which
    /// are G.711 for recording. Unset, or for numbers the map does not name: PCMU 0,
    /// PCMA 8, CN 13, telephone-event 101 ([`PayloadMap::new`]).
    pub fn set_payload_types(&self, leg: Leg, codecs: &HashMap<u8, Codec>) {
        self.send(Command::SetPayloadTypes(leg, PayloadMap::new(codecs)));
    }

    /// How the payload types of RTP received on `from` are renumbered for the other leg
    /// (see [`Session::set_payload_translation`]; identity until set).
    pub fn set_payload_translation(&self, from: Leg, translation: PayloadTranslation) {
        self.send(Command::SetPayloadTranslation(from, Box::new(translation)));
    }

    /// Starts recording: `files[leg]` (index = [`Leg::index`]; `None` = not that leg) gets
    /// what that leg's endpoint sends, as a 16-bit mono 8 kHz WAV file. `codecs[leg]` is
    /// the leg's negotiated payload types, as for [`MediaHandle::set_payload_types`]
    /// (it replaces them). A file that exists already is not overwritten: that leg fails.
    /// A recording in progress stops first. Answered by [`MediaEvent::RecordingFailed`]
    /// for each file that cannot be created, then [`MediaEvent::Recording`] `Started`
    /// if at least one was; nothing else (no file asked for, or none created).
    pub fn start_recording(&self, files: [Option<PathBuf>; 2], codecs: [HashMap<u8, Codec>; 2]) {
        let [a, b] = &codecs;
        self.send(Command::StartRecording(Box::new((files, [PayloadMap::new(a), PayloadMap::new(b)]))));
    }

    /// Stops the recording in progress, if any: the files are completed (sizes patched,
    /// flushed) and [`MediaEvent::Recording`] `Stopped` names them. Closing the call
    /// does the same.
    pub fn stop_recording(&self) {
        self.send(Command::StopRecording);
    }

    /// Counts the inactivity timeout from now (call it when the call is answered).
    pub fn restart_timeout(&self) {
        self.send(Command::RestartTimeout);
    }

    /// Changes the inactivity timeout (`Duration::ZERO` = none).
    pub fn set_timeout(&self, timeout: Duration) {
        self.send(Command::SetTimeout(timeout));
    }

    /// Changes the RTP keep-alive interval (`Duration::ZERO` = none;
    /// [`SessionConfig::keepalive`]).
    pub fn set_keepalive(&self, keepalive: Duration) {
        self.send(Command::SetKeepalive(keepalive));
    }

    /// The latest snapshot of both legs' counters: at most [`STATS_INTERVAL`] old while
    /// packets flow, exact once the call has been quiet that long.
    pub fn stats(&self) -> [LegStats; 2] {
        *relock(&self.link.stats)
    }

    /// Asks the task for the counters as of now, after every command sent before
    /// (tests, the API's "show call"). The last snapshot if the task has ended.
    pub async fn fresh_stats(&self) -> [LegStats; 2] {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx));
        rx.await.unwrap_or_else(|_| self.stats())
    }

    /// Ends the call's task; the sockets close and the ports go back to the pool as it
    /// ends (at once, unless the runtime is busy).
    pub fn close(self) {
        drop(self);
    }

    /// [`MediaHandle::close`], and waits until the task has ended and the ports are back.
    pub async fn close_and_wait(self) {
        let mut handle = self;
        handle.link.close();
        let _ = (&mut handle.task).await;
    }

    /// Queues a command. Waking the media thread costs more than a short call's whole
    /// relay work (an `eventfd` write here, a context switch there), so a command that
    /// only matters for packets yet to come (a remote address, payload-type tables) is
    /// queued without a wake-up: the task applies the queue, in order, before anything
    /// else at every wake-up, a packet's included, so no packet is handled without it.
    /// The others (timers, forwarding, recording, stats, and a remote address while a
    /// keep-alive is set, whose deadline it changes) wake the task.
    fn send(&self, command: Command) {
        let wake = match &command {
            Command::SetRemote(..) | Command::SetRemoteRtcp(..) => self.keepalive.load(Ordering::Relaxed),
            Command::SetPayloadTypes(..) | Command::SetPayloadTranslation(..) => false,
            Command::SetKeepalive(k) => {
                self.keepalive.store(!k.is_zero(), Ordering::Relaxed);
                true
            }
            _ => true,
        };
        relock(&self.link.queue).push(command);
        if wake {
            self.link.wake.notify_one();
        }
    }
}

/// Locks a [`Link`] field: a list of commands or a snapshot of counters, consistent
/// after any panic in a holder.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first of a call's sockets ready to read, in the order RTP A, RTP B, RTCP A,
/// RTCP B. Through `poll_recv_ready`, which keeps the task's waker in each socket's
/// registration: the four `readable()` futures this replaces each kept a waiter node
/// in the task's future, about 700 B of every call's task.
fn poll_readable(sockets: &[[UdpSocket; 2]; 2], cx: &mut Context<'_>) -> Poll<(io::Result<()>, Leg, bool)> {
    for (leg, rtcp) in [(Leg::A, false), (Leg::B, false), (Leg::A, true), (Leg::B, true)] {
        if let Poll::Ready(r) = sockets[leg.index()][usize::from(rtcp)].poll_recv_ready(cx) {
            return Poll::Ready((r, leg, rtcp));
        }
    }
    Poll::Pending
}

/// What woke the call task.
enum Wake {
    /// A wake-up from the handle (`false`: the handle is gone).
    Command(bool),
    Readable(io::Result<()>, Leg, bool),
    Timer,
}

/// The task of one call.
struct CallTask {
    key: u64,
    start: Instant,
    session: Session,
    /// `[leg][rtcp]`.
    sockets: [[UdpSocket; 2]; 2],
    link: Arc<Link>,
    /// The queue's commands being applied (kept for its capacity).
    applying: Vec<Command>,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// Packets were counted since the last snapshot: publish by then.
    stats_due: Option<Instant>,
    published_at: Instant,
    /// The recording in progress.
    recording: Option<Recording>,
    /// Released when the task ends, after the sockets are dropped (field order).
    _ports: Ports,
}

/// A recording in progress: the legs' files still open, and those already completed.
struct Recording {
    files: [Option<WavFile>; 2],
    done: [Option<PathBuf>; 2],
}

/// One leg's WAV file: header with placeholder sizes at creation, samples appended
/// through a buffer, sizes patched by [`WavFile::finish`] (or, best effort, on drop).
struct WavFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    data_bytes: u32,
    bytes: Vec<u8>,
}

impl WavFile {
    /// A new file at `path` (never an existing one: recordings are not overwritten).
    fn create(path: PathBuf) -> io::Result<WavFile> {
        let file = File::options().write(true).create_new(true).open(&path)?;
        WavFile::start(path, file)
    }

    fn start(path: PathBuf, file: File) -> io::Result<WavFile> {
        let mut out = BufWriter::with_capacity(WAV_BUFFER, file);
        out.write_all(&wav::header(recorder::SAMPLE_RATE, 1, wav::UNKNOWN_SIZE))?;
        // On disk at once: a recording cut short (a crash) is still a readable WAV file.
        out.flush()?;
        Ok(WavFile { path, out: Some(out), data_bytes: 0, bytes: Vec::new() })
    }

    fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        let Some(out) = &mut self.out else { return Ok(()) };
        let len = u32::try_from(samples.len() * 2).ok().and_then(|n| n.checked_add(self.data_bytes));
        let Some(total) = len.filter(|&t| t <= wav::MAX_DATA_BYTES) else {
            return Err(io::Error::other("WAV size limit (4 GiB) reached"));
        };
        self.bytes.clear();
        self.bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        out.write_all(&self.bytes)?;
        self.data_bytes = total;
        Ok(())
    }

    /// Patches the sizes and flushes; the file is closed after it. Only the first call
    /// does anything.
    fn finish(&mut self) -> io::Result<()> {
        let Some(mut out) = self.out.take() else { return Ok(()) };
        out.flush()?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(wav::RIFF_SIZE_OFFSET))?;
        file.write_all(&wav::riff_size(self.data_bytes).to_le_bytes())?;
        file.seek(SeekFrom::Start(wav::DATA_SIZE_OFFSET))?;
        file.write_all(&self.data_bytes.to_le_bytes())?;
        file.flush()
    }
}

impl Drop for WavFile {
    fn drop(&mut self) {
        // The task was dropped mid-recording (runtime shutdown): complete the file if
        // possible; nobody is left to tell of an error.
        let _ = self.finish();
    }
}

impl CallTask {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn run(mut self: Box<Self>) {
        let sleep = tokio::time::sleep_until(self.start);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            // The timer is moved only when the deadline comes earlier than the one armed:
            // every RTP packet pushes the inactivity deadline later, and resetting the
            // timer on each would cost a timer-wheel update per packet. A timer that fires
            // early is simply re-armed for the real deadline.
            if let Some(at) = self.deadline() {
                if armed.is_none_or(|armed| at < armed) {
                    sleep.as_mut().reset(at);
                    armed = Some(at);
                }
            }
            let sockets = &self.sockets;
            let wake = tokio::select! {
                biased;
                () = self.link.wake.notified() => Wake::Command(!self.link.closed.load(Ordering::Acquire)),
                (r, leg, rtcp) = std::future::poll_fn(|cx| poll_readable(sockets, cx)) => Wake::Readable(r, leg, rtcp),
                () = &mut sleep, if armed.is_some() => Wake::Timer,
            };
            // Before anything else: commands queued without a wake-up may concern the
            // packet about to be read.
            self.apply_queued();
            match wake {
                Wake::Command(true) => {}
                Wake::Command(false) => break,
                Wake::Readable(Ok(()), leg, rtcp) => BUFFER.with_borrow_mut(|buf| self.drain(leg, rtcp, buf)),
                Wake::Readable(Err(e), ..) => tracing::warn!(key = self.key, error = %e, "relay: socket readiness failed"),
                Wake::Timer => {
                    armed = None;
                    self.on_timer();
                }
            }
        }
        self.stop_recording();
        tracing::debug!(key = self.key, "relay: call closed");
        let CallTask { sockets, _ports: ports, .. } = *self;
        ports.park(sockets);
    }

    fn deadline(&self) -> Option<Instant> {
        let inactive = self.session.poll_timeout().map(|d| self.start + d);
        match (inactive, self.stats_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads up to [`BATCH`] datagrams from one socket and forwards them.
    fn drain(&mut self, leg: Leg, rtcp: bool, buf: &mut [u8]) {
        let now = self.now();
        let mut latched = false;
        for _ in 0..BATCH {
            let socket = &self.sockets[leg.index()][usize::from(rtcp)];
            let (len, source) = match socket.try_recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors of earlier sends surface here on some systems: not fatal.
                Err(_) => continue,
            };
            let Some(data) = buf.get_mut(..len) else { continue };
            if let Some(forward) = self.session.handle_packet(now, leg, rtcp, source, data) {
                forward.apply(data);
                let Forward { leg: out, rtcp, to, .. } = forward;
                // A full buffer or an unreachable destination drops the packet, as the
                // network would; RTP does not retransmit.
                let _ = self.sockets[out.index()][usize::from(rtcp)].try_send_to(data, to);
            }
            self.write_audio(leg);
            while let Some(event) = self.session.poll_event() {
                latched = true;
                self.emit(event);
            }
        }
        if latched {
            self.publish();
        } else if self.stats_due.is_none() {
            self.stats_due = Some(self.published_at + STATS_INTERVAL);
        }
    }

    /// Applies the queued commands in order; publishes the counters if there were any.
    fn apply_queued(&mut self) {
        std::mem::swap(&mut *relock(&self.link.queue), &mut self.applying);
        if self.applying.is_empty() {
            return;
        }
        let mut commands = std::mem::take(&mut self.applying);
        for command in commands.drain(..) {
            self.on_command(command);
        }
        self.applying = commands;
        self.publish();
    }

    fn on_command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::SetRemote(leg, rtp) => self.session.set_remote(leg, rtp),
            Command::SetRemoteRtcp(leg, rtcp) => self.session.set_remote_rtcp(leg, rtcp),
            Command::SetForwarding(on) => self.session.set_forwarding(now, on),
            Command::RestartTimeout => self.session.restart_timeout(now),
            Command::SetTimeout(t) => self.session.set_timeout(t),
            Command::SetKeepalive(k) => self.session.set_keepalive(now, k),
            Command::SetPayloadTypes(leg, payloads) => self.session.set_payload_types(leg, payloads),
            Command::SetPayloadTranslation(from, t) => self.session.set_payload_translation(from, *t),
            Command::StartRecording(r) => {
                let (files, payloads) = *r;
                self.start_recording(files, payloads);
            }
            Command::StopRecording => self.stop_recording(),
            Command::Stats(reply) => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    fn on_timer(&mut self) {
        let now = self.now();
        if let Some(event) = self.session.handle_timeout(now) {
            self.emit(event);
        }
        let mut sent = false;
        while let Some(k) = self.session.poll_keepalive(now) {
            // As for forwarded packets: a full buffer drops it.
            let _ = self.sockets[k.leg.index()][0].try_send_to(&k.packet, k.to);
            sent = true;
        }
        if sent {
            // Once per keep-alive interval at most: the counters show it at once.
            self.publish();
        }
        if self.stats_due.is_some_and(|due| due <= Instant::now()) {
            self.publish();
        }
    }

    fn emit(&self, event: RelayEvent) {
        let key = self.key;
        let event = match event {
            RelayEvent::Inactive => MediaEvent::Inactive { key },
            RelayEvent::Latched { leg, source } => {
                tracing::debug!(key, ?leg, %source, "relay: latched");
                MediaEvent::Latched { key, leg, source }
            }
            RelayEvent::HeardBoth => MediaEvent::HeardBoth { key },
            RelayEvent::Dtmf { leg, digit, duration } => {
                tracing::debug!(key, ?leg, %digit, ?duration, "relay: DTMF");
                MediaEvent::Dtmf { key, leg, digit, duration }
            }
        };
        self.send_event(event);
    }

    fn send_event(&self, event: MediaEvent) {
        // The B2BUA has gone away: nobody to tell.
        let _ = self.events.send(event);
    }

    /// Opens the files and starts the session's recorders (see
    /// [`MediaHandle::start_recording`]).
    fn start_recording(&mut self, paths: [Option<PathBuf>; 2], payloads: [PayloadMap; 2]) {
        self.stop_recording();
        let [pa, pb] = payloads;
        self.session.set_payload_types(Leg::A, pa);
        self.session.set_payload_types(Leg::B, pb);
        let mut files: [Option<WavFile>; 2] = [None, None];
        for (leg, path) in Leg::BOTH.into_iter().zip(paths) {
            let Some(path) = path else { continue };
            match WavFile::create(path.clone()) {
                Ok(file) => {
                    self.session.clear_audio(leg);
                    self.session.start_recording(leg);
                    files[leg.index()] = Some(file);
                }
                Err(e) => self.recording_failed(leg, path, &e),
            }
        }
        if files.iter().all(Option::is_none) {
            return;
        }
        let opened = [0, 1].map(|i| files[i].as_ref().map(|f| f.path.clone()));
        tracing::debug!(key = self.key, files = ?opened, "relay: recording");
        self.recording = Some(Recording { files, done: [None, None] });
        self.send_event(MediaEvent::Recording { key: self.key, state: RecordingState::Started, files: opened });
    }

    /// Appends what the session recorded on `leg` to its file.
    fn write_audio(&mut self, leg: Leg) {
        let Some(file) = self.recording.as_mut().and_then(|r| r.files[leg.index()].as_mut()) else { return };
        let samples = self.session.audio(leg);
        if samples.is_empty() {
            return;
        }
        let written = file.write(samples);
        self.session.clear_audio(leg);
        if let Err(e) = written {
            self.fail_leg(leg, &e);
        }
    }

    /// A write failed: that leg's recording ends; the recording ends with its last file.
    fn fail_leg(&mut self, leg: Leg, error: &io::Error) {
        let Some(recording) = &mut self.recording else { return };
        let Some(mut file) = recording.files[leg.index()].take() else { return };
        self.session.stop_recording(leg);
        self.session.clear_audio(leg);
        // Complete what was written, if the disk lets us.
        let _ = file.finish();
        let path = std::mem::take(&mut file.path);
        self.recording_failed(leg, path, error);
        if self.recording.as_ref().is_some_and(|r| r.files.iter().all(Option::is_none)) {
            self.stop_recording();
        }
    }

    fn recording_failed(&self, leg: Leg, path: PathBuf, error: &io::Error) {
        tracing::warn!(key = self.key, ?leg, path = %path.display(), %error, "relay: recording failed");
        self.send_event(MediaEvent::RecordingFailed { key: self.key, leg, path, error: error.to_string() });
    }

    /// Completes the recording in progress, if any, and reports it stopped.
    fn stop_recording(&mut self) {
        let Some(mut recording) = self.recording.take() else { return };
        for leg in Leg::BOTH {
            let Some(mut file) = recording.files[leg.index()].take() else { continue };
            self.session.stop_recording(leg);
            let rest = file.write(self.session.audio(leg)).and_then(|()| file.finish());
            self.session.clear_audio(leg);
            let path = std::mem::take(&mut file.path);
            match rest {
                Ok(()) => recording.done[leg.index()] = Some(path),
                Err(e) => self.recording_failed(leg, path, &e),
            }
        }
        tracing::debug!(key = self.key, files = ?recording.done, "relay: recording stopped");
        self.send_event(MediaEvent::Recording { key: self.key, state: RecordingState::Stopped, files: recording.done });
    }

    fn snapshot(&self) -> [LegStats; 2] {
        [self.session.stats(Leg::A), self.session.stats(Leg::B)]
    }

    fn publish(&mut self) {
        *relock(&self.link.stats) = self.snapshot();
        self.published_at = Instant::now();
        self.stats_due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("sip-tokio-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn wav_file_patches_its_sizes_once() {
        let path = temp("sizes.wav");
        let mut f = WavFile::create(path.clone()).expect("create");
        assert!(WavFile::create(path.clone()).is_err(), "an existing file is never overwritten");
        f.write(&[1, -1, 300]).expect("write");
        f.finish().expect("finish");
        f.finish().expect("a second finish does nothing");
        f.write(&[5]).expect("a write after finish is dropped");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[..44], &wav::header(8000, 1, 6)[..]);
        assert_eq!(&bytes[44..], &[1, 0, 0xff, 0xff, 0x2c, 0x01]);
        drop(f);
        // Dropped unfinished (runtime shutdown): completed anyway.
        let path2 = temp("dropped.wav");
        let mut f = WavFile::create(path2.clone()).expect("create");
        f.write(&[7; 10]).expect("write");
        drop(f);
        assert_eq!(wav::parse(&std::fs::read(&path2).expect("read")).map(|i| i.data_bytes), Some(20));
        let _ = (std::fs::remove_file(path), std::fs::remove_file(path2));
    }

    #[test]
    fn wav_file_errors_are_errors_not_panics() {
        let path = temp("limit.wav");
        let mut f = WavFile::create(path.clone()).expect("create");
        f.data_bytes = wav::MAX_DATA_BYTES - 2;
        f.write(&[1]).expect("exactly at the limit");
        let e = f.write(&[1]).expect_err("past the 4 GiB limit");
        assert!(e.to_string().contains("size limit"), "{e}");
        drop(f);
        let _ = std::fs::remove_file(path);
        // A full disk: /dev/full refuses every write.
        if let Ok(full) = File::options().write(true).open("/dev/full") {
            assert!(WavFile::start(PathBuf::from("/dev/full"), full).is_err(), "the header's flush fails");
        }
    }
}
