//! The non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! ```text
//!                                   |Request received
//!                                   |pass to TU
//!                                   V
//!                             +-----------+
//!                             |           |
//!                             | Trying    |-------------+
//!                             |           |             |
//!                             +-----------+             |200-699 from TU
//!                                   |                   |send response
//!                                   |1xx from TU        |
//!                                   |send response      |
//!                                   |                   |
//!                Request            V      1xx from TU  |
//!                send response+-----------+send response|
//!                    +--------|           |--------+    |
//!                    |        | Proceeding|        |    |
//!                    +------->|           |<-------+    |
//!             +<--------------|           |             |
//!             |Trnsprt Err    +-----------+             |
//!             |Inform TU            |                   |
//!             |                     |                   |
//!             |                     |200-699 from TU    |
//!             |                     |send response      |
//!             |  Request            V                   |
//!             |  send response+-----------+             |
//!             |      +--------|           |             |
//!             |      |        | Completed |<------------+
//!             |      +------->|           |
//!             +<--------------|           |
//!             |Trnsprt Err    +-----------+
//!             |Inform TU            |
//!             |                     |Timer J fires
//!             |                     |-
//!             |                     |
//!             |                     V
//!             |               +-----------+
//!             |               |           |
//!             +-------------->| Terminated|
//!                             |           |
//!                             +-----------+
//! ```

use super::server_invite::Respond;
use super::{Effects, Failure, Up};
use crate::timers::TimerConfig;
use crate::Time;
use bytes::Bytes;
use sip_message::Request;
use std::time::Duration;

/// The state, with the deadline that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Request passed up, nothing sent: retransmissions are absorbed. `give_up_at`
    /// (64·T1, when the client's Timer F has fired) ends a request the TU never answers.
    Trying { give_up_at: Time },
    /// A provisional was sent: retransmissions get it again.
    Proceeding { give_up_at: Time },
    /// The final was sent: retransmissions get it again until Timer J.
    Completed { until: Time },
    /// Done.
    Terminated,
}

#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    request: Request,
    last_response: Option<Bytes>,
    timers: TimerConfig,
    reliable: bool,
    pub(crate) state: State,
}

impl ServerNonInvite {
    pub fn new(now: Time, request: Request, timers: TimerConfig, reliable: bool) -> ServerNonInvite {
        let state = State::Trying { give_up_at: now + timers.t1x64() };
        ServerNonInvite { request, last_response: None, timers, reliable, state }
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// §17.2.2: retransmissions get the last response again (none yet: absorbed).
    pub fn on_retransmission(&mut self, fx: &mut Effects) {
        if matches!(self.state, State::Proceeding { .. } | State::Completed { .. }) {
            if let Some(r) = &self.last_response {
                fx.send.push(r.clone());
            }
        }
    }

    pub fn respond(&mut self, now: Time, status: u16, wire: Bytes, fx: &mut Effects) -> Respond {
        match (&self.state, status) {
            // §17.2.2: 1xx from the TU in Trying or Proceeding → Proceeding.
            (State::Trying { give_up_at } | State::Proceeding { give_up_at }, 100..=199) => {
                self.state = State::Proceeding { give_up_at: *give_up_at };
            }
            // §17.2.2: 200-699 → Completed; Timer J is 64·T1 (UDP) or 0.
            (State::Trying { .. } | State::Proceeding { .. }, 200..=699) => {
                let j = if self.reliable { Duration::ZERO } else { self.timers.t1x64() };
                self.state = State::Completed { until: now + j };
            }
            _ => return Respond::Refused,
        }
        fx.send.push(wire.clone());
        self.last_response = Some(wire);
        Respond::Sent
    }

    pub fn on_timeout(&mut self, now: Time, fx: &mut Effects) {
        match self.state {
            // §17.2.2: Timer J fires in Completed → Terminated.
            State::Completed { until } if now >= until => self.state = State::Terminated,
            // The TU never answered and the client gave up (Timer F) long ago.
            State::Trying { give_up_at } | State::Proceeding { give_up_at } if now >= give_up_at => {
                self.state = State::Terminated;
                fx.up.push(Up::ServerFailed(Failure::Unanswered));
            }
            _ => {}
        }
    }

    /// §17.2.4: a response could not be sent; inform the TU.
    pub fn on_transport_error(&mut self, fx: &mut Effects) {
        if matches!(self.state, State::Trying { .. } | State::Proceeding { .. }) {
            fx.up.push(Up::ServerFailed(Failure::Transport));
        }
        self.state = State::Terminated;
    }

    pub fn deadline(&self) -> Option<Time> {
        match self.state {
            State::Completed { until } | State::Trying { give_up_at: until } | State::Proceeding { give_up_at: until } => Some(until),
            State::Terminated => None,
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
