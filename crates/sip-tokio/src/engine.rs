//! The engine task: it owns the [`Endpoint`] and the [`Application`] by value, turns
//! socket input into `handle_*` calls, carries out `poll_transmit`, hands events to the
//! application, and sleeps on the one timer.

use crate::app::Application;
use crate::config::{DriverConfig, DriverError};
use crate::debug::{self, Direction};
use crate::io::{self, ConnTask, Start};
use bytes::Bytes;
use sip_core::{ConnectionId, Endpoint, Flow, Time, Transmit, Transport};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Socket tasks → engine task. Bounded, so a flood backs up into the kernel's buffers
/// (where UDP drops and TCP pushes back) instead of into our memory.
const INPUT_QUEUE: usize = 1024;
/// Inputs handled per wake-up of the engine task before the timer is looked at again.
const INPUT_BATCH: usize = 64;
/// Messages queued for one connection's writer. A peer that lets this many pile up is
/// not reading; it is closed rather than allowed to stall the engine task.
const CONNECTION_QUEUE: usize = 256;

/// What the socket tasks tell the engine task.
pub(crate) enum Input {
    /// One UDP datagram.
    Datagram { local: SocketAddr, remote: SocketAddr, data: Bytes },
    /// A connection accepted on a TCP/TLS listener, not yet registered (the engine task
    /// applies the per-source limit and gives it its id).
    Accepted { transport: Transport, local: SocketAddr, remote: SocketAddr, stream: TcpStream },
    /// A connection finished its connect and handshake.
    Opened { id: ConnectionId },
    /// Bytes read from a connection.
    Stream { id: ConnectionId, data: Bytes },
    /// A connection ended (EOF, read or write error).
    Closed { id: ConnectionId, reason: String },
    /// A connection could not be opened (connect refused, handshake failed, timeout).
    ConnectFailed { id: ConnectionId, reason: String },
}

/// Sockets bound and ready, not yet served. Binding is a step of its own so that the
/// binary reports "address in use" with the address before anything runs, and so that
/// the actual addresses (port 0) are known before the [`Endpoint`] is configured with
/// them.
#[derive(Debug)]
pub struct Bound {
    config: DriverConfig,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    listeners: Vec<(Transport, SocketAddr, TcpListener)>,
    local_addrs: Vec<(Transport, SocketAddr)>,
}

/// Binds every socket of `config.listen`, in order; the first failure is returned with
/// its address and nothing stays bound.
pub async fn bind(config: DriverConfig) -> Result<Bound, DriverError> {
    let mut udp = Vec::new();
    let mut listeners = Vec::new();
    let mut local_addrs = Vec::new();
    for &(transport, addr) in &config.listen {
        let err = |source| DriverError::Bind { transport, addr, source };
        let local = match transport {
            Transport::Udp => {
                let socket = bind_udp(addr).map_err(err)?;
                let local = socket.local_addr().map_err(err)?;
                udp.push((local, Arc::new(socket)));
                local
            }
            Transport::Tcp | Transport::Tls => {
                if transport == Transport::Tls && config.tls.is_none() {
                    return Err(DriverError::NoTlsConfig(addr));
                }
                let listener = TcpListener::bind(addr).await.map_err(err)?;
                let local = listener.local_addr().map_err(err)?;
                listeners.push((transport, local, listener));
                local
            }
        };
        local_addrs.push((transport, local));
    }
    Ok(Bound { config, udp, listeners, local_addrs })
}

/// The receive buffer we ask for on a UDP listener: a burst of a few thousand requests
/// (a registration storm after an outage, a CPS spike) waits in the kernel instead of
/// being dropped. The kernel caps it at `net.core.rmem_max`.
const UDP_BUFFER: usize = 8 << 20;

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// Binds and runs in one step, for a binary that knows its addresses up front.
pub async fn run<A: Application>(
    endpoint: Endpoint,
    config: DriverConfig,
    app: A,
    shutdown: impl Future<Output = ()>,
) -> Result<(Endpoint, A), DriverError> {
    Ok(bind(config).await?.run(endpoint, app, shutdown).await)
}

impl Bound {
    /// The bound sockets, in the order of [`DriverConfig::listen`], with the ports the
    /// system picked for port 0. Give these to `EndpointConfig::listeners`.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.local_addrs
    }

    /// The first bound address of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.local_addrs.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a)
    }

    /// Serves the sockets until `shutdown` completes, then closes every connection and
    /// returns the endpoint and the application (for a final look at their state).
    pub async fn run<A: Application>(self, endpoint: Endpoint, app: A, shutdown: impl Future<Output = ()>) -> (Endpoint, A) {
        self.run_inner(endpoint, app, None, shutdown).await
    }

    /// As [`Bound::run`], with a channel of commands for [`Application::on_command`]
    /// (from an HTTP API, a CLI, a test). The driver keeps running when every sender is
    /// gone.
    pub async fn run_with_commands<A: Application>(
        self,
        endpoint: Endpoint,
        app: A,
        commands: mpsc::Receiver<A::Command>,
        shutdown: impl Future<Output = ()>,
    ) -> (Endpoint, A) {
        self.run_inner(endpoint, app, Some(commands), shutdown).await
    }

    async fn run_inner<A: Application>(
        self,
        endpoint: Endpoint,
        app: A,
        commands: Option<mpsc::Receiver<A::Command>>,
        shutdown: impl Future<Output = ()>,
    ) -> (Endpoint, A) {
        for (t, a) in &self.local_addrs {
            if !endpoint.config().listeners.contains(&(*t, *a)) {
                tracing::warn!(transport = %t, addr = %a, "bound socket missing from EndpointConfig::listeners: Via and routing will not name it");
            }
        }
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let mut tasks = Tasks::default();
        for (local, socket) in &self.udp {
            tasks.0.push(tokio::spawn(io::udp_receiver(socket.clone(), *local, input_tx.clone())).abort_handle());
        }
        for (transport, local, listener) in self.listeners {
            tasks.0.push(tokio::spawn(io::accept_loop(listener, transport, local, input_tx.clone())).abort_handle());
        }
        let tls = self.config.tls.as_ref();
        let mut engine = Engine {
            start: Instant::now(),
            endpoint,
            app,
            tls_acceptor: tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server.clone())),
            tls_connector: tls.map(|t| tokio_rustls::TlsConnector::from(t.client.clone())),
            udp: self.udp.into_iter().collect(),
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            per_source: HashMap::new(),
            next_id: 0,
            next_sweep: None,
            sweep_every: sweep_interval(self.config.idle_timeout),
            config: self.config,
            input_tx,
        };
        engine.serve(input_rx, commands, shutdown).await;
        tracing::debug!(connections = engine.conns.len(), "driver shutting down");
        drop(tasks);
        engine.conns.clear();
        (engine.endpoint, engine.app)
    }
}

/// How often idle connections are looked for: a quarter of the idle timeout, so one is
/// closed at most 25 % late, within sane bounds.
fn sweep_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
}

/// Listener and receiver tasks, aborted when the driver stops or its future is dropped.
#[derive(Default)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// One live connection, as the engine task knows it. Dropping it aborts its reader and
/// drops the writer's queue sender, so the writer sends what is queued and shuts the
/// connection.
struct Conn {
    /// Given to `handle_stream` with everything read here.
    flow: Flow,
    outgoing: mpsc::Sender<Bytes>,
    task: AbortHandle,
    last_activity: Instant,
    /// Accepted connections count towards the per-source limit; ours do not.
    counted: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Engine<A> {
    start: Instant,
    endpoint: Endpoint,
    app: A,
    config: DriverConfig,
    tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    tls_connector: Option<tokio_rustls::TlsConnector>,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    conns: HashMap<ConnectionId, Conn>,
    /// The newest connection to each peer, for sends that name no live connection.
    by_remote: HashMap<(Transport, SocketAddr), ConnectionId>,
    per_source: HashMap<IpAddr, usize>,
    next_id: u64,
    next_sweep: Option<Instant>,
    sweep_every: Duration,
    /// Cloned into every task the engine spawns; held here, so `recv` never sees the
    /// channel closed.
    input_tx: mpsc::Sender<Input>,
}

impl<A: Application> Engine<A> {
    fn now(&self) -> Time {
        Time::from_duration(self.start.elapsed())
    }

    fn instant(&self, t: Time) -> Instant {
        self.start + t.since_origin()
    }

    async fn serve(
        &mut self,
        mut input: mpsc::Receiver<Input>,
        mut commands: Option<mpsc::Receiver<A::Command>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = pin!(shutdown);
        let mut sleep = pin!(tokio::time::sleep_until(self.start));
        let mut armed = None;
        self.drain(self.now());
        loop {
            let deadline = self.deadline();
            // Moving the timer takes the time driver's lock and a wheel update: only when
            // the deadline changed (an elapsed timer left as it is fires again at once,
            // as a reset to a past instant would).
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(at);
                }
                armed = deadline;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                Some(i) = input.recv() => {
                    self.on_input(i);
                    // What else is queued, up to a bound, before the timer and the
                    // commands are looked at again: under load one wake-up and one
                    // deadline computation serve many datagrams.
                    for _ in 1..INPUT_BATCH {
                        match input.try_recv() {
                            Ok(i) => self.on_input(i),
                            Err(_) => break,
                        }
                    }
                }
                c = next_command(&mut commands) => match c {
                    Some(c) => {
                        let now = self.now();
                        self.app.on_command(now, &mut self.endpoint, c);
                        self.drain(now);
                    }
                    None => commands = None,
                },
                () = &mut sleep, if deadline.is_some() => self.on_timer(),
            }
        }
    }

    /// The one timer: the earliest of the engine's, the application's and the idle sweep.
    fn deadline(&mut self) -> Option<Instant> {
        let engine = self.endpoint.poll_timeout().map(|t| self.instant(t));
        let app = self.app.poll_timeout().map(|t| self.instant(t));
        [engine, app, self.next_sweep].into_iter().flatten().min()
    }

    fn on_timer(&mut self) {
        let now = self.now();
        self.endpoint.handle_timeout(now);
        if self.app.poll_timeout().is_some_and(|t| t <= now) {
            self.app.handle_timeout(now, &mut self.endpoint);
        }
        if self.next_sweep.is_some_and(|s| s <= Instant::now()) {
            self.sweep_idle(now);
        }
        self.drain(now);
    }

    /// The drain rule: transmits and events until both are empty. An event handler or a
    /// failed send may queue more of either, hence the outer loop.
    fn drain(&mut self, now: Time) {
        loop {
            let mut busy = false;
            while let Some(t) = self.endpoint.poll_transmit() {
                busy = true;
                self.transmit(now, t);
            }
            if let Some(event) = self.endpoint.poll_event() {
                busy = true;
                self.app.on_event(now, &mut self.endpoint, event);
            }
            if !busy {
                return;
            }
        }
    }

    fn on_input(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Datagram { local, remote, data } => {
                if self.config.sip_debug {
                    debug::log(Direction::In, Transport::Udp, remote, None, &data);
                }
                let flow = Flow { transport: Transport::Udp, local, remote, connection: None };
                self.app.on_wire(now, false, &flow, &data);
                self.endpoint.handle_datagram(now, flow, data);
            }
            Input::Accepted { transport, local, remote, stream } => self.on_accepted(transport, local, remote, stream),
            Input::Opened { id } => {
                if let Some(c) = self.conns.get(&id) {
                    tracing::debug!(connection = id.0, transport = %c.flow.transport, remote = %c.flow.remote, "connection open");
                }
            }
            Input::Stream { id, data } => {
                let Some(c) = self.conns.get_mut(&id) else { return };
                c.last_activity = Instant::now();
                let flow = c.flow;
                if self.config.sip_debug {
                    debug::log(Direction::In, flow.transport, flow.remote, Some(id), &data);
                }
                self.app.on_wire(now, false, &flow, &data);
                self.endpoint.handle_stream(now, flow, &data);
            }
            Input::Closed { id, reason } => self.remove(now, id, &reason),
            Input::ConnectFailed { id, reason } => {
                if let Some((flow, accepted)) = self.conns.get(&id).map(|c| (c.flow, c.counted)) {
                    tracing::debug!(connection = id.0, remote = %flow.remote, %reason, "connection failed");
                    self.remove(now, id, &reason);
                    // A failed TLS accept concerns no transaction; a failed connect of
                    // ours fails those that were sending to that peer.
                    if !accepted {
                        self.endpoint.handle_transport_error(now, &Flow { connection: None, ..flow });
                    }
                }
            }
        }
        self.drain(now);
    }

    fn on_accepted(&mut self, transport: Transport, local: SocketAddr, remote: SocketAddr, stream: TcpStream) {
        let count = self.per_source.get(&remote.ip()).copied().unwrap_or(0);
        if count >= self.config.max_connections_per_source {
            tracing::debug!(%remote, %transport, count, "per-source connection limit reached; closing the new connection");
            drop(stream);
            return;
        }
        let tls = if transport == Transport::Tls { self.tls_acceptor.clone() } else { None };
        if transport == Transport::Tls && tls.is_none() {
            return; // bind() refuses a TLS listener without TLS; nothing to serve it with
        }
        *self.per_source.entry(remote.ip()).or_insert(0) += 1;
        let flow = Flow { transport, local, remote, connection: None };
        self.spawn_connection(flow, Start::Accepted(stream), tls, None, true);
    }

    /// Gives a connection its id and starts its task; returns the id and the sender of
    /// its write queue.
    fn spawn_connection(
        &mut self,
        flow: Flow,
        start: Start,
        tls_server: Option<tokio_rustls::TlsAcceptor>,
        tls_client: Option<tokio_rustls::TlsConnector>,
        counted: bool,
    ) -> (ConnectionId, mpsc::Sender<Bytes>) {
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        let (outgoing_tx, outgoing) = mpsc::channel(CONNECTION_QUEUE);
        let task = ConnTask {
            id,
            start,
            tls_server,
            tls_client,
            connect_timeout: self.config.connect_timeout,
            outgoing,
            engine: self.input_tx.clone(),
        };
        let task = tokio::spawn(task.run()).abort_handle();
        let flow = Flow { connection: Some(id), ..flow };
        let conn = Conn { flow, outgoing: outgoing_tx.clone(), task, last_activity: Instant::now(), counted };
        self.conns.insert(id, conn);
        self.by_remote.insert((flow.transport, flow.remote), id);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(Instant::now() + self.sweep_every);
        }
        tracing::debug!(connection = id.0, transport = %flow.transport, remote = %flow.remote, "connection registered");
        (id, outgoing_tx)
    }

    /// Takes a connection out of every table (its `Drop` stops its tasks) and tells the
    /// engine, then the application, that it is gone. Callers drain afterwards.
    fn remove(&mut self, now: Time, id: ConnectionId, reason: &str) {
        let Some(conn) = self.conns.remove(&id) else { return };
        let key = (conn.flow.transport, conn.flow.remote);
        if self.by_remote.get(&key) == Some(&id) {
            self.by_remote.remove(&key);
        }
        if conn.counted {
            let ip = conn.flow.remote.ip();
            if let Some(n) = self.per_source.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_source.remove(&ip);
                }
            }
        }
        tracing::debug!(connection = id.0, remote = %conn.flow.remote, reason, "connection closed");
        drop(conn);
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
        self.endpoint.handle_connection_closed(now, id);
        self.app.on_connection_closed(now, &mut self.endpoint, id);
    }

    fn sweep_idle(&mut self, now: Time) {
        let at = Instant::now();
        let idle = self.config.idle_timeout;
        let stale: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| at.saturating_duration_since(c.last_activity) >= idle).map(|(id, _)| *id).collect();
        for id in stale {
            self.remove(now, id, "idle");
        }
        self.next_sweep = if self.conns.is_empty() { None } else { Some(at + self.sweep_every) };
    }

    fn transmit(&mut self, now: Time, t: Transmit) {
        match t {
            Transmit::Send { flow, payload } => match flow.transport {
                Transport::Udp => self.send_udp(now, flow, payload),
                Transport::Tcp | Transport::Tls => self.send_stream(now, flow, payload),
            },
            Transmit::Close { connection } => self.remove(now, connection, "closed by the engine"),
        }
    }

    fn send_udp(&mut self, now: Time, flow: Flow, payload: Bytes) {
        // The flow names the socket a request came in on; any socket of the same family
        // will do when it names none of ours.
        let socket = self
            .udp
            .get(&flow.local)
            .or_else(|| self.udp.iter().find(|(a, _)| a.is_ipv4() == flow.remote.is_ipv4()).map(|(_, s)| s))
            .cloned();
        let Some(socket) = socket else {
            tracing::warn!(local = %flow.local, remote = %flow.remote, "no UDP socket to send from");
            self.endpoint.handle_transport_error(now, &flow);
            return;
        };
        if self.config.sip_debug {
            debug::log(Direction::Out, Transport::Udp, flow.remote, None, &payload);
        }
        self.app.on_wire(now, true, &flow, &payload);
        // Never wait on the socket: a full send buffer drops the datagram like the
        // network would, and the transaction layer retransmits.
        match socket.try_send_to(&payload, flow.remote) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!(remote = %flow.remote, "UDP send buffer full; datagram dropped");
            }
            Err(e) => {
                tracing::debug!(remote = %flow.remote, error = %e, "UDP send failed");
                self.endpoint.handle_transport_error(now, &flow);
            }
        }
    }

    /// §18.2.2 / §18.1.1: the named connection when it is still open, else the newest
    /// open connection to the same peer, else a new one.
    fn send_stream(&mut self, now: Time, flow: Flow, payload: Bytes) {
        let live = flow.connection.filter(|id| self.conns.contains_key(id));
        let id = live.or_else(|| self.by_remote.get(&(flow.transport, flow.remote)).copied());
        let payload = match id {
            Some(id) => match self.write(now, id, payload) {
                Ok(()) => return,
                Err(payload) => payload,
            },
            None => payload,
        };
        self.open(now, flow, payload);
    }

    /// Queues `payload` on a connection; gives it back when the connection turns out to
    /// be gone, so a new one can carry it.
    fn write(&mut self, now: Time, id: ConnectionId, payload: Bytes) -> Result<(), Bytes> {
        let Some(conn) = self.conns.get_mut(&id) else { return Err(payload) };
        let flow = conn.flow;
        let len = payload.len();
        let sent = payload.clone();
        match conn.outgoing.try_send(payload) {
            Ok(()) => {
                conn.last_activity = Instant::now();
                if self.config.sip_debug {
                    debug::log(Direction::Out, flow.transport, flow.remote, Some(id), &sent);
                }
                self.app.on_wire(now, true, &flow, &sent);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(connection = id.0, remote = %flow.remote, len, "peer is not reading; closing the connection");
                self.remove(now, id, "write queue full");
                self.endpoint.handle_transport_error(now, &flow);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(payload)) => {
                self.remove(now, id, "writer gone");
                Err(payload)
            }
        }
    }

    /// Opens a connection to `flow.remote` and queues `payload` as its first message.
    fn open(&mut self, now: Time, flow: Flow, payload: Bytes) {
        let tls_client = match flow.transport {
            Transport::Tls => match self.tls_connector.clone() {
                Some(c) => Some(c),
                None => {
                    tracing::warn!(remote = %flow.remote, "TLS send without a TLS configuration");
                    self.endpoint.handle_transport_error(now, &flow);
                    return;
                }
            },
            _ => None,
        };
        let (id, queue) = self.spawn_connection(flow, Start::Connect(flow.remote), None, tls_client, false);
        if self.config.sip_debug {
            debug::log(Direction::Out, flow.transport, flow.remote, Some(id), &payload);
        }
        self.app.on_wire(now, true, &Flow { connection: Some(id), ..flow }, &payload);
        // A fresh queue has room: this cannot fail.
        let _ = queue.try_send(payload);
    }
}

async fn next_command<C>(commands: &mut Option<mpsc::Receiver<C>>) -> Option<C> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
