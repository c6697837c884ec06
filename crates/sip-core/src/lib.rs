//! sip-core: the sans-IO SIP engine of sipbridge.
//!
//! The engine owns no socket, reads no clock, spawns no task and draws no unseeded
//! random number (`../shared/design/ARCHITECTURE.md`). A driver feeds it bytes and time
//! and carries out what it asks:
//!
//! - inputs: [`Endpoint::handle_datagram`], [`Endpoint::handle_stream`],
//!   [`Endpoint::handle_timeout`], [`Endpoint::handle_connection_closed`],
//!   [`Endpoint::handle_transport_error`];
//! - commands from the layer above: [`Endpoint::respond`], [`Endpoint::reply`],
//!   [`Endpoint::send_request`], [`Endpoint::cancel`], [`Endpoint::send_stateless`];
//! - outputs: [`Endpoint::poll_transmit`] (what to send, or a connection to close),
//!   [`Endpoint::poll_event`] (what the layer above must know), and
//!   [`Endpoint::poll_timeout`] (when to call `handle_timeout` next).
//!
//! **Drain rule**: after every input or command, call `poll_transmit` and `poll_event`
//! until both return `None`, then read `poll_timeout`.
//!
//! Under the endpoint sits the transaction layer of RFC 3261 §17 with RFC 6026's
//! Accepted state: one file per machine (`transaction/client_invite.rs`, …), timers by
//! their RFC letters ([`Timer`]) derived from [`TimerConfig`]. It retransmits what we send
//! over UDP, absorbs retransmissions we receive, generates the ACK for non-2xx finals,
//! sends 100 Trying when the layer above is slow, and reports timeouts and transport
//! errors as events. Nothing above it ever sees a retransmitted request.
//!
//! Beside it, [`digest`] authenticates requests (RFC 3261 §22, RFC 8760): stateless
//! HMAC nonces, SHA-256 and MD5 challenges, verification with replay protection.
//! Above the endpoint sit the call layer ([`b2bua`]) and the OPTIONS keep-alives
//! ([`qualify`]); each takes the engine events that are its own and hands back the rest.
//!
//! ```
//! use sip_core::{Endpoint, EndpointConfig, Flow, Time, Transport};
//! use bytes::Bytes;
//! let mut ep = Endpoint::new(EndpointConfig::default());
//! let flow = Flow { transport: Transport::Udp, local: "127.0.0.1:5060".parse().unwrap(),
//!                   remote: "127.0.0.1:5070".parse().unwrap(), connection: None };
//! ep.handle_datagram(Time::ZERO, flow, Bytes::from_static(b"OPTIONS sip:sipbridge@127.0.0.1 SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n\
//!     To: <sip:sipbridge@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"));
//! let sent = ep.poll_transmit().unwrap();
//! assert!(sent.payload().unwrap().starts_with(b"SIP/2.0 200 OK\r\n"));
//! assert!(ep.poll_event().is_none()); // OPTIONS is answered by the endpoint itself
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod b2bua;
pub mod dialog;
pub mod digest;
mod endpoint;
pub mod media_policy;
pub mod nat;
pub mod qualify;
pub mod registrar;
mod time;
mod timers;
mod transaction;
mod transport;
mod uas;

pub use endpoint::{CommandError, Endpoint, EndpointConfig, Event, Stats};
pub use time::Time;
pub use timers::{Timer, TimerConfig};
pub use transaction::{Failure, TransactionId};
pub use transport::{response_flow, ConnectionId, Flow, Transmit, Transport};

pub use sdp;
pub use sip_message;
