//! Running the server: logging, sockets, the engine, and shutdown on SIGTERM / Ctrl-C.

use crate::api::{self, ApiCommand, ApiState};
use crate::calls::Calls;
use crate::config::{self, Config};
use crate::media::Relay;
use crate::policy;
use crate::registrations;
use crate::store::{self, StoreHandle};
use anyhow::Context as _;
use sip_core::b2bua::CallId;
use sip_core::registrar::Change;
use sip_core::{Endpoint, Event, Flow, Time, Transport};
use sip_tokio::MediaEvent;
use sip_tokio::{Application, DriverConfig, TlsConfig, TlsFiles};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// Runs the server with `config` until SIGTERM or Ctrl-C. `sip_debug` is the
/// `--sip-debug` flag, which turns on `[log].sip_debug` whatever the file says.
pub fn run(config: Config, sip_debug: bool) -> anyhow::Result<()> {
    let sip_debug = sip_debug || config.log.sip_debug;
    init_logging(&config.log.level, sip_debug)?;
    let files = crate::media::raise_fd_limit();
    tracing::info!(open_files = files, "open-files limit");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, sip_debug, shutdown_signal()))
}

/// Logging to stderr. `RUST_LOG`, when set, wins over `[log] level`; `sip_debug` adds the
/// `sip` target (whole messages in and out) at info.
fn init_logging(level: &str, sip_debug: bool) -> anyhow::Result<()> {
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).with_context(|| format!("RUST_LOG={v}"))?,
        _ => EnvFilter::try_new(level).with_context(|| format!("[log] level = {level:?}"))?,
    };
    if sip_debug {
        filter = filter.add_directive("sip=info".parse().context("sip=info")?);
    }
    // A second initialisation (tests calling run twice) keeps the first subscriber.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

/// The driver configuration for `config`: listeners and TLS files.
pub fn driver_config(config: &Config, sip_debug: bool) -> anyhow::Result<DriverConfig> {
    let listen = config.sip.listen.iter().map(|l| (transport(l.transport), l.addr)).collect();
    let tls = match &config.tls {
        Some(t) => Some(
            TlsConfig::from_files(&TlsFiles { certificate: t.certificate.clone(), private_key: t.private_key.clone(), trust: None })
                .context("[tls]")?,
        ),
        None => None,
    };
    Ok(DriverConfig { listen, tls, sip_debug, ..DriverConfig::default() })
}

fn transport(t: config::Transport) -> Transport {
    match t {
        config::Transport::Udp => Transport::Udp,
        config::Transport::Tcp => Transport::Tcp,
        config::Transport::Tls => Transport::Tls,
    }
}

/// A seed from the OS (std's `RandomState` keys come from it), so that branches, tags and
/// the transaction-map hash differ from run to run.
fn os_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// 32 bytes from the OS for the digest nonce key: nonces minted before a restart are
/// not honoured after it (the client just gets a fresh challenge).
fn os_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key));
    if read.is_err() {
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&os_seed().to_le_bytes());
        }
    }
    key
}

/// Binds, then serves until `shutdown` completes.
pub async fn serve(config: Config, sip_debug: bool, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let bound = sip_tokio::bind(driver_config(&config, sip_debug)?).await?;
    let seed = os_seed();
    let mut ec = policy::endpoint_config(&config, seed);
    ec.listeners = bound.local_addrs().to_vec();
    for (t, a) in &ec.listeners {
        tracing::info!(transport = %t, address = %a, "listening");
    }
    let listener = api::bind(config.api.listen).await?;
    let (commands_tx, commands) = mpsc::channel(api::COMMAND_QUEUE.max(1024));
    let (api_tx, mut api_rx) = mpsc::channel(api::COMMAND_QUEUE);
    let server = listener.map(|l| AbortOnDrop(api::spawn(l, api_tx)));
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let ports = (config.media.ports.first(), config.media.ports.last());
    let timeout = Duration::from_secs(u64::from(config.media.timeout_s));
    let keepalive = Duration::from_secs(u64::from(config.media.rtp_keepalive_s));
    let relay = Relay::start(config.media.address, ports, timeout, keepalive, media_tx).context("cannot start the media relay")?;
    // The API's requests and the relay's events become engine commands, so the engine
    // task is woken for them.
    let to_engine = commands_tx.clone();
    let api_forward = AbortOnDrop(tokio::spawn(async move {
        while let Some(c) = api_rx.recv().await {
            if to_engine.send(AppCommand::Api(c)).await.is_err() {
                break;
            }
        }
    }));
    let media_forward = AbortOnDrop(tokio::spawn(async move {
        while let Some(e) = media_rx.recv().await {
            if commands_tx.send(AppCommand::Media(e)).await.is_err() {
                break;
            }
        }
    }));
    // The driver's `Time::ZERO` is its start, a moment from now: close enough for the
    // API's wall-clock times (milliseconds).
    let api = ApiState::new(&config, std::time::SystemTime::now());
    let api_enabled = config.api.listen.is_some();
    let url = config.store.url.clone();
    let (store, rows) = store::start(&url).with_context(|| format!("cannot open the store {url}"))?;
    let mut calls = Calls::new(config, ec.listeners.clone(), relay, seed, os_key());
    let (kept, skipped) = calls.restore(Time::ZERO, rows);
    calls.start(Time::ZERO);
    store.remove_expired(registrations::unix(calls.wall(Time::ZERO)));
    tracing::info!(store = %url, registrations = kept, expired = skipped, "store open");
    let endpoint = Endpoint::new(ec);
    let (endpoint, app) = bound.run_with_commands(endpoint, App { calls, api, api_enabled, store }, commands, shutdown).await;
    app.store.flush();
    drop((server, api_forward, media_forward));
    let s = endpoint.stats();
    let c = app.calls.b2bua.stats();
    tracing::info!(
        received = s.received,
        transactions = s.transactions,
        parse_errors = s.parse_errors,
        calls = c.calls,
        answered = c.answered,
        "stopped"
    );
    Ok(())
}

/// What reaches the engine task from outside it.
#[derive(Debug)]
pub enum AppCommand {
    /// From the HTTP API.
    Api(ApiCommand),
    /// From the RTP relay.
    Media(MediaEvent),
}

/// The layer above the engine: the call layer and its policy, then [`policy::on_event`]
/// for what is not about calls; the HTTP API's ladders and answers.
struct App {
    calls: Calls<Relay>,
    api: ApiState,
    /// `[api] listen` is set.
    api_enabled: bool,
    /// Where registrations persist (written from a thread of its own).
    store: StoreHandle,
}

impl App {
    /// After every input: the API learns the new calls' endpoint names and forgets
    /// ended calls.
    fn settle(&mut self, now: Time) {
        while let Some(change) = self.calls.registrar.poll_change() {
            log_change(&change);
            self.calls.persist(&change, &self.store);
            self.calls.binding_changed(now, &change);
        }
        if !self.api_enabled {
            self.calls.media_reasons.clear();
            self.calls.routed.clear();
            self.calls.ended.clear();
            return;
        }
        for (call, names) in self.calls.routed.drain(..) {
            self.api.set_leg_endpoints(call, names);
        }
        for (call, words) in self.calls.media_reasons.drain(..) {
            self.api.set_media_reason(call, now, words);
        }
        for info in self.calls.ended.drain(..) {
            self.api.remember_ended(info);
        }
        self.api.settle(&self.calls.b2bua);
    }
}

impl Application for App {
    type Command = AppCommand;

    fn on_event(&mut self, now: Time, endpoint: &mut Endpoint, event: Event) {
        self.calls.on_event(now, endpoint, event);
        self.settle(now);
    }

    fn on_command(&mut self, now: Time, endpoint: &mut Endpoint, command: AppCommand) {
        match command {
            AppCommand::Api(c) => self.api.on_command(now, endpoint, &mut self.calls, c),
            AppCommand::Media(MediaEvent::Inactive { key }) => {
                let call = CallId(key);
                tracing::info!(%call, "no RTP in either direction: hanging up");
                let _ = self.calls.b2bua.hang_up(now, endpoint, call, "RTP timeout");
                self.calls.drain(now, endpoint);
            }
            AppCommand::Media(MediaEvent::RecordingFailed { key, leg, path, error }) => {
                tracing::warn!(call = %CallId(key), ?leg, path = %path.display(), %error, "recording failed");
            }
            AppCommand::Media(MediaEvent::Recording { key, state, files }) => {
                tracing::info!(call = %CallId(key), ?state, ?files, "recording");
            }
            AppCommand::Media(MediaEvent::Dtmf { key, leg, digit, .. }) => {
                let side = if leg == sip_tokio::media_relay::Leg::A { sip_core::b2bua::Side::A } else { sip_core::b2bua::Side::B };
                self.calls.on_dtmf(now, endpoint, CallId(key), side, digit);
            }
            AppCommand::Media(MediaEvent::HeardBoth { key }) => {
                // verify_media: both endpoints heard, their RTP sources known.
                self.calls.direct_check_at(CallId(key), now);
            }
            AppCommand::Media(e @ MediaEvent::Latched { .. }) => {
                tracing::debug!(?e, "relay");
                if let MediaEvent::Latched { key, .. } = e {
                    self.calls.direct_check_at(CallId(key), now);
                }
            }
        }
        self.settle(now);
    }

    fn on_wire(&mut self, now: Time, outbound: bool, flow: &Flow, bytes: &[u8]) {
        // The ladders are for the API; without it, no work per message.
        if self.api_enabled {
            self.api.on_wire(&self.calls.b2bua, now, outbound, flow, bytes);
        }
    }

    fn poll_timeout(&mut self) -> Option<Time> {
        self.calls.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Time, endpoint: &mut Endpoint) {
        self.calls.handle_timeout(now, endpoint);
        self.settle(now);
    }
}

/// Registrations coming and going, at info like Asterisk's "Endpoint alice is now
/// Reachable" lines.
fn log_change(change: &Change) {
    match change {
        Change::Put { aor, binding } => tracing::info!(
            endpoint = %aor,
            contact = %binding.contact.uri(),
            source = %binding.source.remote,
            nat = ?binding.nat.map(|n| n.to_string()),
            "registered"
        ),
        Change::Removed { aor, contact, why } => tracing::info!(endpoint = %aor, %contact, ?why, "registration removed"),
    }
}

/// Aborts the HTTP API task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
