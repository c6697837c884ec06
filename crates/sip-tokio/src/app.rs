//! The layer above the engine, as the driver sees it.

use sip_core::{Endpoint, Event, Time};

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
