//! The driver over real loopback sockets (127.0.0.1, port 0), with tokio sockets as the
//! phone. Waits are event-driven with generous bounds (a loaded CI machine must not make
//! them fail). Fixed sleeps only pace what a phone would pace (a retransmission 50 ms
//! later, a reconnect retry) or bound a wait for something that must not come.

use sip_core::sip_message::{Host, Method, NameAddr, RequestBuilder, Uri};
use sip_core::{ConnectionId, Endpoint, EndpointConfig, Event, Flow, Time, TimerConfig, TransactionId, Transport};
use sip_tokio::{Application, DriverConfig, DriverError, TlsConfig, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// The bound on any wait for something that should happen. Far above what it takes on
/// an idle machine (milliseconds), so only a real failure hits it.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The application under the driver: answers every request 404 and counts what it sees.

#[derive(Debug, Default)]
struct Counting {
    requests: usize,
    acks: usize,
    other: usize,
    last_request_tx: Option<TransactionId>,
    /// Statuses of responses to requests we sent, in order.
    responses: Vec<u16>,
    /// Hold requests unanswered until [`Command::ReleaseHeld`].
    hold: bool,
    held: Vec<TransactionId>,
    notify: Option<mpsc::UnboundedSender<Seen>>,
    /// What [`Application::on_wire`] saw: direction (true = out), transport, peer and
    /// the message's first line.
    wire: Vec<(bool, Transport, SocketAddr, String)>,
}

/// What the application tells a test that waits for it.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Request,
    Response(u16),
    Closed,
}

/// Commands from a test.
#[derive(Debug)]
enum Command {
    /// Send an OPTIONS from `local` to `remote`.
    SendOptions { transport: Transport, local: SocketAddr, remote: SocketAddr },
    /// Answer the held requests with 404.
    ReleaseHeld,
}

impl Counting {
    fn tell(&self, seen: Seen) {
        if let Some(n) = &self.notify {
            let _ = n.send(seen);
        }
    }
}

impl Application for Counting {
    type Command = Command;

    fn on_event(&mut self, now: Time, endpoint: &mut Endpoint, event: Event) {
        match event {
            Event::Request { tx, .. } => {
                self.requests += 1;
                self.last_request_tx = Some(tx);
                if self.hold {
                    self.held.push(tx);
                } else {
                    endpoint.reply(now, tx, 404, Vec::new()).expect("a fresh server transaction takes a final response");
                }
                self.tell(Seen::Request);
            }
            Event::Ack { .. } => self.acks += 1,
            Event::Response { response, .. } => {
                self.responses.push(response.status());
                self.tell(Seen::Response(response.status()));
            }
            _ => self.other += 1,
        }
    }

    fn on_connection_closed(&mut self, _: Time, _: &mut Endpoint, _: ConnectionId) {
        self.tell(Seen::Closed);
    }

    fn on_wire(&mut self, _: Time, outbound: bool, flow: &Flow, bytes: &[u8]) {
        let first = String::from_utf8_lossy(bytes).lines().next().unwrap_or_default().to_owned();
        self.wire.push((outbound, flow.transport, flow.remote, first));
    }

    fn on_command(&mut self, now: Time, endpoint: &mut Endpoint, c: Command) {
        let (transport, local, remote) = match c {
            Command::SendOptions { transport, local, remote } => (transport, local, remote),
            Command::ReleaseHeld => {
                for tx in self.held.drain(..) {
                    endpoint.reply(now, tx, 404, Vec::new()).expect("a held server transaction takes a final response");
                }
                return;
            }
        };
        let uri = Uri::parse_str(&format!("sip:peer@{remote}")).expect("a literal URI parses");
        let from = NameAddr::new(Uri::parse_str(&format!("sip:test@{local}")).expect("a literal URI parses"));
        let request = RequestBuilder::new(Method::Options, uri)
            .from(from)
            .via(transport.to_message(), Host::from(local.ip()), Some(local.port()))
            .build(endpoint.ids())
            .expect("From and Via are given");
        let flow = Flow { transport, local, remote, connection: None };
        endpoint.send_request(now, request, flow).expect("a fresh branch starts a client transaction");
    }
}

/// A driver running on its own task.
struct Running {
    addrs: Vec<(Transport, SocketAddr)>,
    stop: oneshot::Sender<()>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<(Endpoint, Counting)>,
}

impl Running {
    fn addr(&self, t: Transport) -> SocketAddr {
        self.addrs.iter().find(|(x, _)| *x == t).map(|(_, a)| *a).expect("the test asked for this transport")
    }

    async fn stop(self) -> (Endpoint, Counting) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task).await.expect("the driver stops on shutdown").expect("the driver task does not panic")
    }
}

fn loopback(transports: &[Transport]) -> Vec<(Transport, SocketAddr)> {
    transports.iter().map(|t| (*t, SocketAddr::from(([127, 0, 0, 1], 0)))).collect()
}

async fn start(driver: DriverConfig, endpoint: EndpointConfig, app: Counting) -> Running {
    let bound = sip_tokio::bind(driver).await.expect("loopback port 0 binds");
    let addrs = bound.local_addrs().to_vec();
    let endpoint = Endpoint::new(EndpointConfig { listeners: addrs.clone(), ..endpoint });
    let (stop, stopped) = oneshot::channel::<()>();
    let (commands, rx) = mpsc::channel(16);
    let task = tokio::spawn(bound.run_with_commands(endpoint, app, rx, async move {
        let _ = stopped.await;
    }));
    Running { addrs, stop, commands, task }
}

async fn start_default(transports: &[Transport]) -> Running {
    let driver = DriverConfig { listen: loopback(transports), sip_debug: true, ..DriverConfig::default() };
    start(driver, EndpointConfig::default(), Counting::default()).await
}

// ---------------------------------------------------------------------------------------
// Messages the phone sends, and what it reads back.

fn options(transport: &str, phone: SocketAddr, id: &str) -> String {
    format!(
        "OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {phone};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@127.0.0.1>;tag=f{id}\r\nTo: <sip:sipbridge@127.0.0.1>\r\nCall-ID: {id}@phone\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn invite(phone: SocketAddr, id: &str) -> String {
    invite_over("UDP", phone, id)
}

fn invite_over(transport: &str, phone: SocketAddr, id: &str) -> String {
    format!(
        "INVITE sip:nobody@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {phone};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@127.0.0.1>;tag=f{id}\r\nTo: <sip:nobody@127.0.0.1>\r\nCall-ID: {id}@phone\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:phone@{phone}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// §17.1.1.3: the ACK for a non-2xx final: same branch, the response's To tag.
fn ack(phone: SocketAddr, id: &str, to_tag: &str) -> String {
    format!(
        "ACK sip:nobody@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@127.0.0.1>;tag=f{id}\r\nTo: <sip:nobody@127.0.0.1>;tag={to_tag}\r\nCall-ID: {id}@phone\r\nCSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn status(msg: &str) -> u16 {
    msg.strip_prefix("SIP/2.0 ").and_then(|s| s.get(..3)).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

fn to_tag(msg: &str) -> Option<&str> {
    header(msg, "To")?.split(';').find_map(|p| p.trim().strip_prefix("tag="))
}

struct UdpPhone {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl UdpPhone {
    async fn new() -> UdpPhone {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback port 0 binds");
        let addr = socket.local_addr().expect("a bound socket has an address");
        UdpPhone { socket, addr }
    }

    async fn send(&self, to: SocketAddr, msg: &str) {
        self.socket.send_to(msg.as_bytes(), to).await.expect("loopback send");
    }

    /// The next datagram, or `None` after `within`.
    async fn recv_within(&self, within: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65535];
        let (n, _) = timeout(within, self.socket.recv_from(&mut buf)).await.ok()?.expect("loopback receive");
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    async fn recv(&self) -> String {
        self.recv_within(WAIT).await.expect("a datagram arrives")
    }
}

/// Reads one SIP message (headers and Content-Length body) from a stream; `None` at EOF.
async fn read_message<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let body = header(&head, "Content-Length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            if buf.len() >= end + 4 + body {
                let msg: Vec<u8> = buf.drain(..end + 4 + body).collect();
                return Some(String::from_utf8_lossy(&msg).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(WAIT, s.read(&mut chunk)).await.expect("the driver answers or closes in time").ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits for the peer to close: EOF or a reset, after any data it still sends.
async fn wait_closed<S: AsyncRead + Unpin>(s: &mut S) {
    let mut chunk = [0u8; 4096];
    loop {
        match timeout(WAIT, s.read(&mut chunk)).await.expect("the driver closes the connection in time") {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, msg: &str) -> Option<String> {
    s.write_all(msg.as_bytes()).await.ok()?;
    read_message(s, &mut Vec::new()).await
}

// ---------------------------------------------------------------------------------------
// TLS material: a self-signed certificate for 127.0.0.1 in a temporary directory.

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("sip-tokio-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn test_certificate(dir: &TempDir) -> TlsFiles {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("rcgen makes a certificate");
    let certificate = dir.0.join("cert.pem");
    let private_key = dir.0.join("key.pem");
    std::fs::write(&certificate, ck.cert.pem()).expect("write the certificate");
    std::fs::write(&private_key, ck.signing_key.serialize_pem()).expect("write the key");
    TlsFiles { certificate, private_key, trust: None }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn udp_options_is_answered_200_by_the_endpoint() {
    let driver = start_default(&[Transport::Udp]).await;
    let phone = UdpPhone::new().await;
    phone.send(driver.addr(Transport::Udp), &options("UDP", phone.addr, "u1")).await;
    let resp = phone.recv().await;
    assert_eq!(status(&resp), 200, "{resp}");
    assert_eq!(header(&resp, "Call-ID"), Some("u1@phone"));
    let (endpoint, app) = driver.stop().await;
    assert_eq!(app.requests, 0, "OPTIONS never reaches the application");
    assert_eq!(endpoint.stats().received, 1);
}

#[tokio::test]
async fn on_wire_sees_every_message_in_and_out_with_its_peer() {
    let driver = start_default(&[Transport::Udp, Transport::Tcp]).await;
    let phone = UdpPhone::new().await;
    phone.send(driver.addr(Transport::Udp), &options("UDP", phone.addr, "w1")).await;
    assert_eq!(status(&phone.recv().await), 200);
    let mut conn = TcpStream::connect(driver.addr(Transport::Tcp)).await.expect("connect");
    let me = conn.local_addr().expect("a connected socket has an address");
    let resp = exchange(&mut conn, &options("TCP", me, "w2")).await.expect("a response on the connection");
    assert_eq!(status(&resp), 200, "{resp}");
    let (_, app) = driver.stop().await;
    let ok = "SIP/2.0 200 OK".to_owned();
    let opt = "OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0".to_owned();
    assert_eq!(
        app.wire,
        vec![
            (false, Transport::Udp, phone.addr, opt.clone()),
            (true, Transport::Udp, phone.addr, ok.clone()),
            (false, Transport::Tcp, me, opt),
            (true, Transport::Tcp, me, ok),
        ]
    );
}

#[tokio::test]
async fn tcp_options_is_answered_200_on_the_same_connection() {
    let driver = start_default(&[Transport::Tcp]).await;
    let mut conn = TcpStream::connect(driver.addr(Transport::Tcp)).await.expect("connect");
    let me = conn.local_addr().expect("a connected socket has an address");
    let resp = exchange(&mut conn, &options("TCP", me, "t1")).await.expect("a response on the connection");
    assert_eq!(status(&resp), 200, "{resp}");
    // The same connection keeps working for a second request.
    let resp = exchange(&mut conn, &options("TCP", me, "t2")).await.expect("a response on the connection");
    assert_eq!(status(&resp), 200, "{resp}");
    assert_eq!(header(&resp, "Call-ID"), Some("t2@phone"));
    driver.stop().await;
}

#[tokio::test]
async fn tls_options_is_answered_200() {
    let dir = TempDir::new("tls-options");
    let files = test_certificate(&dir);
    let tls = TlsConfig::from_files(&files).expect("the test certificate loads");
    let config = DriverConfig { listen: loopback(&[Transport::Tls]), tls: Some(tls.clone()), sip_debug: true, ..DriverConfig::default() };
    let driver = start(config, EndpointConfig::default(), Counting::default()).await;

    // The phone trusts the same self-signed certificate (TlsConfig's client side does).
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let tcp = TcpStream::connect(driver.addr(Transport::Tls)).await.expect("connect");
    let me = tcp.local_addr().expect("a connected socket has an address");
    let name = rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let mut conn = timeout(WAIT, connector.connect(name, tcp)).await.expect("handshake in time").expect("the handshake succeeds");
    let resp = exchange(&mut conn, &options("TLS", me, "s1")).await.expect("a response over TLS");
    assert_eq!(status(&resp), 200, "{resp}");
    driver.stop().await;
}

#[tokio::test]
async fn tls_handshake_with_an_untrusted_certificate_fails_and_the_driver_goes_on() {
    let dir = TempDir::new("tls-untrusted");
    let files = test_certificate(&dir);
    let tls = TlsConfig::from_files(&files).expect("the test certificate loads");
    let config = DriverConfig { listen: loopback(&[Transport::Tls]), tls: Some(tls.clone()), ..DriverConfig::default() };
    let driver = start(config, EndpointConfig::default(), Counting::default()).await;

    // A phone that trusts another certificate refuses ours.
    let other = TlsConfig::from_files(&test_certificate(&TempDir::new("tls-other"))).expect("loads");
    let connector = tokio_rustls::TlsConnector::from(other.client);
    let name = rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let tcp = TcpStream::connect(driver.addr(Transport::Tls)).await.expect("connect");
    let refused = timeout(WAIT, connector.connect(name.clone(), tcp)).await.expect("the handshake ends in time");
    assert!(refused.is_err(), "an untrusted certificate must fail the handshake");

    // A phone that trusts it is served as usual.
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let tcp = TcpStream::connect(driver.addr(Transport::Tls)).await.expect("connect");
    let me = tcp.local_addr().expect("a connected socket has an address");
    let mut conn = timeout(WAIT, connector.connect(name, tcp)).await.expect("handshake in time").expect("the handshake succeeds");
    let resp = exchange(&mut conn, &options("TLS", me, "s2")).await.expect("a response over TLS");
    assert_eq!(status(&resp), 200, "{resp}");
    driver.stop().await;
}

#[tokio::test]
async fn udp_invite_retransmission_gets_the_same_404_and_one_event() {
    // T1 = 5 s: Timer G stays out of the way, so each 404 read answers one INVITE sent.
    let timers = TimerConfig { t1: Duration::from_secs(5), t2: Duration::from_secs(8), ..TimerConfig::default() };
    let driver = DriverConfig { listen: loopback(&[Transport::Udp]), sip_debug: true, ..DriverConfig::default() };
    let driver = start(driver, EndpointConfig { timers, ..EndpointConfig::default() }, Counting::default()).await;
    let phone = UdpPhone::new().await;
    let to = driver.addr(Transport::Udp);
    let msg = invite(phone.addr, "i1");

    phone.send(to, &msg).await;
    let first = phone.recv().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    phone.send(to, &msg).await;
    let second = phone.recv().await;

    assert_eq!(status(&first), 404, "{first}");
    assert!(to_tag(&first).is_some(), "a final response carries our To tag: {first}");
    assert_eq!(first, second, "the retransmission is answered with the very same response");
    let (endpoint, app) = driver.stop().await;
    assert_eq!(app.requests, 1, "the application sees the INVITE once");
    assert_eq!(endpoint.stats().retransmissions_absorbed, 1);
}

#[tokio::test]
async fn udp_404_is_retransmitted_on_timer_g_until_the_ack() {
    let timers = TimerConfig { t1: Duration::from_millis(50), t2: Duration::from_millis(200), ..TimerConfig::default() };
    let config = DriverConfig { listen: loopback(&[Transport::Udp]), sip_debug: true, ..DriverConfig::default() };
    let driver = start(config, EndpointConfig { timers, ..EndpointConfig::default() }, Counting::default()).await;
    let phone = UdpPhone::new().await;
    let to = driver.addr(Transport::Udp);

    let sent = Instant::now();
    phone.send(to, &invite(phone.addr, "g1")).await;
    let first = phone.recv().await;
    assert_eq!(status(&first), 404, "{first}");
    // Timer G: copies at T1, 3·T1, 7·T1 after the first (50, 150, 350 ms).
    for copy in 2..=4 {
        let again = phone.recv().await;
        assert_eq!(again, first, "copy {copy} is the same 404");
    }
    let took = sent.elapsed();
    assert!(took >= Duration::from_millis(350), "Timer G fired early: four copies in {took:?}");
    // With the default T1 (500 ms) the four copies would take 3.5 s.
    assert!(took < Duration::from_secs(3), "Timer G does not follow the configured T1: {took:?}");

    let tag = to_tag(&first).expect("a final response carries our To tag");
    phone.send(to, &ack(phone.addr, "g1", tag)).await;
    // A barrier: once the OPTIONS sent after the ACK is answered, the ACK has been
    // handled (one socket, one queue, one engine task). 404s before it crossed the ACK.
    phone.send(to, &options("UDP", phone.addr, "g2")).await;
    loop {
        let m = phone.recv().await;
        if status(&m) == 200 {
            break;
        }
        assert_eq!(m, first, "only copies of the 404 may cross the ACK");
    }
    // Four T2 intervals: Timer G would have fired at least three more times.
    let after = phone.recv_within(Duration::from_millis(800)).await;
    assert!(after.is_none(), "no retransmission after the ACK: {after:?}");

    let (endpoint, app) = driver.stop().await;
    assert_eq!(app.requests, 1);
    assert_eq!(app.acks, 0, "the ACK for a non-2xx is the transaction's, not the application's");
    let tx = app.last_request_tx.expect("the INVITE was seen");
    assert_eq!(endpoint.transaction_state(tx), Some("Confirmed"));
}

#[tokio::test]
async fn tcp_framing_error_closes_the_connection() {
    let driver = start_default(&[Transport::Tcp]).await;
    let addr = driver.addr(Transport::Tcp);
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let me = conn.local_addr().expect("a connected socket has an address");
    let broken = options("TCP", me, "b1").replace("Content-Length: 0", "Content-Length: -5");
    conn.write_all(broken.as_bytes()).await.expect("write");
    wait_closed(&mut conn).await;

    // The driver goes on serving others.
    let mut other = TcpStream::connect(addr).await.expect("connect");
    let me = other.local_addr().expect("a connected socket has an address");
    let resp = exchange(&mut other, &options("TCP", me, "b2")).await.expect("a response");
    assert_eq!(status(&resp), 200, "{resp}");
    let (endpoint, _) = driver.stop().await;
    assert_eq!(endpoint.stats().parse_errors, 1);
}

#[tokio::test]
async fn connections_beyond_the_per_source_limit_are_closed() {
    let config =
        DriverConfig { listen: loopback(&[Transport::Tcp]), max_connections_per_source: 2, sip_debug: true, ..DriverConfig::default() };
    let driver = start(config, EndpointConfig::default(), Counting::default()).await;
    let addr = driver.addr(Transport::Tcp);

    let mut open = Vec::new();
    for i in 0..2 {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let me = c.local_addr().expect("a connected socket has an address");
        let resp = exchange(&mut c, &options("TCP", me, &format!("l{i}"))).await.expect("within the limit: answered");
        assert_eq!(status(&resp), 200, "{resp}");
        open.push(c);
    }
    // The third from the same IP is closed without an answer.
    let mut third = TcpStream::connect(addr).await.expect("the kernel accepts before the driver decides");
    let me = third.local_addr().expect("a connected socket has an address");
    let _ = third.write_all(options("TCP", me, "l2").as_bytes()).await;
    let mut buf = Vec::new();
    assert!(read_message(&mut third, &mut buf).await.is_none(), "the connection over the limit gets no answer");

    // The two within the limit still work.
    for (i, c) in open.iter_mut().enumerate() {
        let me = c.local_addr().expect("a connected socket has an address");
        let resp = exchange(c, &options("TCP", me, &format!("m{i}"))).await.expect("still open");
        assert_eq!(status(&resp), 200, "{resp}");
    }
    // Closing one frees its place (the driver learns of the close asynchronously: retry).
    drop(open.remove(0));
    let deadline = Instant::now() + WAIT;
    loop {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let me = c.local_addr().expect("a connected socket has an address");
        if let Some(resp) = exchange(&mut c, &options("TCP", me, "n1")).await {
            assert_eq!(status(&resp), 200, "{resp}");
            break;
        }
        assert!(Instant::now() < deadline, "a closed connection never freed its place");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    driver.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let idle = Duration::from_millis(300);
    let config = DriverConfig { listen: loopback(&[Transport::Tcp]), idle_timeout: idle, ..DriverConfig::default() };
    let driver = start(config, EndpointConfig::default(), Counting::default()).await;
    let mut conn = TcpStream::connect(driver.addr(Transport::Tcp)).await.expect("connect");
    let me = conn.local_addr().expect("a connected socket has an address");
    let sent = Instant::now();
    let resp = exchange(&mut conn, &options("TCP", me, "d1")).await.expect("a response");
    assert_eq!(status(&resp), 200, "{resp}");
    wait_closed(&mut conn).await;
    // Idleness counts from the last traffic, which was no earlier than our request.
    assert!(sent.elapsed() >= idle, "closed after {:?}, before the idle timeout", sent.elapsed());
    driver.stop().await;
}

#[tokio::test]
async fn requests_we_send_open_connections_over_tcp_and_tls() {
    let dir = TempDir::new("outgoing");
    let tls = TlsConfig::from_files(&test_certificate(&dir)).expect("the test certificate loads");
    let listen = loopback(&[Transport::Tcp, Transport::Tls]);
    let config = DriverConfig { listen, tls: Some(tls), sip_debug: true, ..DriverConfig::default() };
    let server = start(config.clone(), EndpointConfig::default(), Counting::default()).await;
    let (notify, mut responses) = mpsc::unbounded_channel();
    let client = start(config, EndpointConfig::default(), Counting { notify: Some(notify), ..Counting::default() }).await;

    for transport in [Transport::Tcp, Transport::Tls] {
        let command = Command::SendOptions { transport, local: client.addr(transport), remote: server.addr(transport) };
        client.commands.send(command).await.expect("the client driver runs");
        let seen = timeout(WAIT, responses.recv()).await.expect("a response in time").expect("the client driver runs");
        assert_eq!(seen, Seen::Response(200), "OPTIONS over {transport}");
    }
    let (_, app) = client.stop().await;
    assert_eq!(app.responses, vec![200, 200]);
    server.stop().await;
}

#[tokio::test]
async fn bind_reports_the_address_in_use() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("loopback port 0 binds");
    let addr = taken.local_addr().expect("a bound socket has an address");
    let config = DriverConfig { listen: vec![(Transport::Udp, addr)], ..DriverConfig::default() };
    match sip_tokio::bind(config).await {
        Err(e @ DriverError::Bind { .. }) => assert!(e.to_string().contains(&addr.to_string()), "{e}"),
        other => panic!("expected a bind error, got {other:?}"),
    }
    let tls_without_config = DriverConfig { listen: loopback(&[Transport::Tls]), ..DriverConfig::default() };
    assert!(matches!(sip_tokio::bind(tls_without_config).await, Err(DriverError::NoTlsConfig(_))));
}

#[tokio::test]
async fn garbage_datagrams_do_not_stop_the_driver() {
    let driver = start_default(&[Transport::Udp]).await;
    let phone = UdpPhone::new().await;
    let to = driver.addr(Transport::Udp);
    for junk in [&b"\xff\xfe\x00garbage"[..], b"\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n", &[0u8; 2000]] {
        phone.socket.send_to(junk, to).await.expect("loopback send");
    }
    phone.send(to, &options("UDP", phone.addr, "j1")).await;
    loop {
        let m = phone.recv().await;
        if header(&m, "Call-ID") == Some("j1@phone") {
            assert_eq!(status(&m), 200, "{m}");
            break;
        }
    }
    driver.stop().await;
}

#[tokio::test]
async fn a_response_whose_connection_is_gone_goes_on_a_new_one_to_the_via() {
    let (notify, mut seen) = mpsc::unbounded_channel();
    let app = Counting { hold: true, notify: Some(notify), ..Counting::default() };
    let config = DriverConfig { listen: loopback(&[Transport::Tcp]), sip_debug: true, ..DriverConfig::default() };
    let driver = start(config, EndpointConfig::default(), app).await;
    // The phone listens where its Via says (§18.2.2: sent-by port), and calls from elsewhere.
    let phone = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port 0 binds");
    let via = phone.local_addr().expect("a bound listener has an address");

    let mut conn = TcpStream::connect(driver.addr(Transport::Tcp)).await.expect("connect");
    conn.write_all(invite_over("TCP", via, "r1").as_bytes()).await.expect("write");
    assert_eq!(timeout(WAIT, seen.recv()).await.expect("the INVITE arrives in time"), Some(Seen::Request));
    drop(conn);
    assert_eq!(timeout(WAIT, seen.recv()).await.expect("the close is noticed in time"), Some(Seen::Closed));

    driver.commands.send(Command::ReleaseHeld).await.expect("the driver runs");
    let (mut back, _) = timeout(WAIT, phone.accept()).await.expect("the driver connects back in time").expect("accept");
    let resp = read_message(&mut back, &mut Vec::new()).await.expect("the response on the new connection");
    assert_eq!(status(&resp), 404, "{resp}");
    assert_eq!(header(&resp, "Call-ID"), Some("r1@phone"));
    driver.stop().await;
}
