//! The layer above the engine, as the driver sees it.

use sip_core::{ConnectionId, Endpoint, Event, Flow, Time};

/// What the application (call layer, registrar, policy) implements. Every method runs on
/// the engine task with the endpoint borrowed mutably, so it answers by calling
/// endpoint commands (`reply`, `respond`, `send_request` …) directly; the driver drains
/// the endpoint again after each call. Methods must not block: they hold up all
/// signalling of this engine task while they run.
pub trait Application {
    /// Commands from outside the engine task (HTTP API, CLI), sent through the channel
    /// given to [`crate::Bound::run_with_commands`]. Use `()` when there are none.
    type Command: Send + 'static;

    /// One event from the endpoint (a new request, a response, a failure …).
    fn on_event(&mut self, now: Time, endpoint: &mut Endpoint, event: Event);

    /// One command from the channel.
    fn on_command(&mut self, now: Time, endpoint: &mut Endpoint, command: Self::Command) {
        let _ = (now, endpoint, command);
    }

    /// A TCP/TLS connection is gone (closed by the peer, by the engine, for idleness or
    /// an error), after the endpoint was told. For state bound to a connection, such as
    /// a registration that can only be reached over it (RFC 5626 flows).
    fn on_connection_closed(&mut self, now: Time, endpoint: &mut Endpoint, connection: ConnectionId) {
        let _ = (now, endpoint, connection);
    }

    /// Every message on the wire, as the driver moves it: each UDP datagram and each
    /// stream read before the endpoint sees it (`outbound` false), each message handed
    /// to a socket or a connection's write queue (`outbound` true). For a call ladder or
    /// a capture; it must be cheap, since it runs for every packet. On a stream, an
    /// inbound `bytes` is one read as it came: part of a message, or several.
    fn on_wire(&mut self, now: Time, outbound: bool, flow: &Flow, bytes: &[u8]) {
        let _ = (now, outbound, flow, bytes);
    }

    /// The application's own next deadline (registration expiry, a call timer), folded
    /// into the driver's one timer; read after every drain.
    fn poll_timeout(&mut self) -> Option<Time> {
        None
    }

    /// Called when the deadline from [`Application::poll_timeout`] is due.
    fn handle_timeout(&mut self, now: Time, endpoint: &mut Endpoint) {
        let _ = (now, endpoint);
    }
}
