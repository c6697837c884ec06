//! `sip_debug` output, in a test binary of its own: tracing caches per call site whether
//! anyone listens, and a thread-local subscriber races with other tests' threads on that
//! cache, so this binary installs one global subscriber and runs only this test.

use sip_core::{Endpoint, EndpointConfig, Event, Time, Transport};
use sip_tokio::{Application, DriverConfig};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// Collects every event logged on the `sip` target.
#[derive(Clone, Default)]
struct SipLog(Arc<Mutex<Vec<String>>>);

impl SipLog {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("no thread panicked while holding the log").clone()
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for SipLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sip"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        self.0.lock().expect("no thread panicked while holding the log").push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct NoApp;

impl Application for NoApp {
    type Command = ();
    fn on_event(&mut self, _: Time, _: &mut Endpoint, _: Event) {}
}

/// Sends one OPTIONS over UDP to a driver with `sip_debug` as given; returns the answer.
async fn options_round_trip(sip_debug: bool) -> String {
    let config =
        DriverConfig { listen: vec![(Transport::Udp, SocketAddr::from(([127, 0, 0, 1], 0)))], sip_debug, ..DriverConfig::default() };
    let bound = sip_tokio::bind(config).await.expect("loopback port 0 binds");
    let to = bound.local_addr(Transport::Udp).expect("a UDP socket was asked for");
    let endpoint = Endpoint::new(EndpointConfig { listeners: bound.local_addrs().to_vec(), ..EndpointConfig::default() });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(endpoint, NoApp, async move {
        let _ = stopped.await;
    }));
    let phone = UdpSocket::bind("127.0.0.1:0").await.expect("loopback port 0 binds");
    let me = phone.local_addr().expect("a bound socket has an address");
    let msg = format!(
        "OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKq1\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@127.0.0.1>;tag=fq1\r\nTo: <sip:sipbridge@127.0.0.1>\r\nCall-ID: q1@phone\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    phone.send_to(msg.as_bytes(), to).await.expect("loopback send");
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(WAIT, phone.recv_from(&mut buf)).await.expect("an answer in time").expect("loopback receive");
    let _ = stop.send(());
    timeout(WAIT, task).await.expect("the driver stops").expect("the driver does not panic");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn sip_debug_logs_every_message_whole_with_its_peer() {
    let log = SipLog::default();
    tracing::subscriber::set_global_default(log.clone()).expect("the only test in this binary sets it");

    let answer = options_round_trip(false).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(log.lines().is_empty(), "sip_debug off logs nothing on target sip: {:?}", log.lines());

    let answer = options_round_trip(true).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    let lines = log.lines();
    assert_eq!(lines.len(), 2, "one line in, one out: {lines:?}");
    let (inbound, outbound) = (&lines[0], &lines[1]);
    assert!(inbound.contains("SIP read from UDP:127.0.0.1:") && inbound.contains("direction=\"in\""), "{inbound}");
    assert!(inbound.contains("OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\n") && inbound.contains("Call-ID: q1@phone"), "whole: {inbound}");
    assert!(outbound.contains("Transmitting to UDP:127.0.0.1:") && outbound.contains("direction=\"out\""), "{outbound}");
    assert!(outbound.contains(&answer), "the whole answer: {outbound}");
}
