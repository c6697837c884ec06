//! sip-tokio: the thin tokio driver under the sans-IO [`sip_core::Endpoint`].
//!
//! The engine decides everything; this crate only moves bytes and time in and out
//! (`../shared/design/ARCHITECTURE.md`). It binds the sockets, feeds what they receive
//! to the endpoint, carries out its [`sip_core::Transmit`]s, hands its
//! [`sip_core::Event`]s to your [`Application`], and keeps the one timer.
//!
//! # Tasks
//!
//! ```text
//!  UDP receiver (1 per socket) ──┐
//!  TCP/TLS accept loop (1 per    │   Input (bounded mpsc)   ┌──────────────────────────┐
//!      listener) ────────────────┼─────────────────────────►│ engine task              │
//!  connection reader (1 per      │                          │  owns Endpoint + App     │
//!      connection; also does the ┘                          │  by value, no locks      │
//!      connect and TLS handshake)                           │  select!: input, command,│
//!                                                           │  the one timer, shutdown │
//!  connection writer (1 per connection) ◄── Bytes (mpsc) ───│  UDP: try_send_to        │
//!                                                           └──────────────────────────┘
//! ```
//!
//! - The engine task is the future returned by [`Bound::run`]: it is the only place the
//!   [`sip_core::Endpoint`] lives, so protocol state needs no `Arc<Mutex<…>>`. After every
//!   input, command or timer it drains `poll_transmit` and `poll_event` until both are
//!   empty (the engine's drain rule), then sleeps until the earliest of
//!   `Endpoint::poll_timeout`, [`Application::poll_timeout`] and the idle sweep.
//! - It never waits on a socket: UDP goes out with `try_send_to` (a full buffer drops
//!   the datagram, as the network might; the transaction layer retransmits), streams
//!   through a bounded queue per connection (a peer that lets it fill is closed).
//! - Time: a tokio `Instant` taken at start is the origin; `now` is
//!   `Time::from_duration(start.elapsed())`.
//! - Connections: ids are assigned here, never reused. A send naming a connection that is
//!   gone, or none, goes on the newest open connection to the same peer and transport,
//!   else on a new one (§18.1.1, §18.2.2). Reads go to `handle_stream` with the
//!   connection's id; EOF, errors, `Transmit::Close`, the idle timeout and a write queue
//!   overflow all end in `handle_connection_closed`, then
//!   [`Application::on_connection_closed`]; a connect or handshake failure of a
//!   connection we opened also in `handle_transport_error`.
//! - Limits: [`DriverConfig::max_connections_per_source`] accepted connections per remote
//!   IP; [`DriverConfig::idle_timeout`] without traffic either way.
//! - [`Application::on_wire`] sees every datagram and stream read as it arrives, and every
//!   message as it is handed to a socket or a write queue (for an API's call ladder).
//! - `sip_debug`: every datagram, stream chunk and outgoing message is logged whole at
//!   `info` on target `sip`, with direction, transport and peer.
//!
//! # Use
//!
//! ```no_run
//! use sip_core::{Endpoint, EndpointConfig, Event, Time, Transport};
//! use sip_tokio::{Application, DriverConfig};
//!
//! struct App;
//! impl Application for App {
//!     type Command = ();
//!     fn on_event(&mut self, now: Time, endpoint: &mut Endpoint, event: Event) {
//!         if let Event::Request { tx, .. } = event {
//!             let _ = endpoint.reply(now, tx, 404, Vec::new());
//!         }
//!     }
//! }
//!
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! let config = DriverConfig {
//!     listen: vec![(Transport::Udp, "0.0.0.0:5060".parse()?), (Transport::Tcp, "0.0.0.0:5060".parse()?)],
//!     ..DriverConfig::default()
//! };
//! let bound = sip_tokio::bind(config).await?; // "cannot bind UDP on 0.0.0.0:5060: …"
//! let endpoint = Endpoint::new(EndpointConfig { listeners: bound.local_addrs().to_vec(), ..EndpointConfig::default() });
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! let (_endpoint, _app) = bound.run(endpoint, App, shutdown).await;
//! # Ok(()) }
//! ```
//!
//! # Known limits
//!
//! - Outgoing TLS verifies the server's certificate against its IP address: the
//!   engine's `Flow` carries a socket address, not the host name the request was sent
//!   to, so SNI and RFC 5922 name checks wait for the engine to pass one.
//! - The engine is not told which connection a send without one went out on, so a client
//!   transaction on a connection we opened learns of its loss only by its timeout.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod config;
mod debug;
mod engine;
mod io;
pub mod relay;

pub use app::Application;
pub use config::{DriverConfig, DriverError, TlsConfig, TlsFiles};
pub use engine::{bind, run, Bound};
pub use media_relay;
pub use relay::{MediaEvent, MediaHandle, MediaRelay, RecordingState, RelayError, WarmSockets};
