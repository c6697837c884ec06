//! The non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! ```text
//!                                    |Request from TU
//!                                    |send request
//!                Timer E             V
//!                send request  +-----------+
//!                    +---------|           |-------------------+
//!                    |         |  Trying   |  Timer F          |
//!                    +-------->|           |  or Transport Err.|
//!                              +-----------+  inform TU        |
//!                 200-699         |  |                         |
//!                 resp. to TU     |  |1xx                      |
//!                 +---------------+  |resp. to TU              |
//!                 |                  |                         |
//!                 |   Timer E        V       Timer F           |
//!                 |   send req +-----------+ or Transport Err. |
//!                 |  +---------|           | inform TU         |
//!                 |  |         |Proceeding |------------------>|
//!                 |  +-------->|           |-----+             |
//!                 |            +-----------+     |1xx          |
//!                 |              |      ^        |resp to TU   |
//!                 | 200-699      |      +--------+             |
//!                 | resp. to TU  |                             |
//!                 |              |                             |
//!                 |              V                             |
//!                 |            +-----------+                   |
//!                 |            |           |                   |
//!                 |            | Completed |                   |
//!                 |            |           |                   |
//!                 |            +-----------+                   |
//!                 |              ^   |                         |
//!                 |              |   | Timer K                 |
//!                 +--------------+   | -                       |
//!                                    |                         |
//!                                    V                         |
//!              NOTE:           +-----------+                   |
//!                              |           |                   |
//!          transitions         | Terminated|<------------------+
//!          labeled with        |           |
//!          the event           +-----------+
//!          over the action
//!          to take
//! ```

use super::{Effects, Failure, Up};
use crate::timers::{Retransmit, Timer, TimerConfig};
use crate::Time;
use bytes::Bytes;
use sip_message::{Request, Response};
use std::time::Duration;

/// The state, with the deadlines that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Request sent. Timer E (UDP) and Timer F.
    Trying { retransmit: Option<Retransmit>, timeout_at: Time },
    /// A provisional arrived: Timer E now fires every T2; Timer F still runs.
    Proceeding { retransmit: Option<Retransmit>, timeout_at: Time },
    /// The final response arrived; retransmissions of it are absorbed until Timer K.
    Completed { until: Time },
    /// Done.
    Terminated,
}

#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    request: Request,
    wire: Bytes,
    timers: TimerConfig,
    reliable: bool,
    pub(crate) state: State,
}

impl ClientNonInvite {
    /// §17.1.2.2: the request is passed to the transport, Timer E (UDP) and Timer F start.
    /// `wire` is `request` printed (the caller already printed it to check its size).
    pub fn start(now: Time, request: Request, wire: Bytes, timers: TimerConfig, reliable: bool, fx: &mut Effects) -> ClientNonInvite {
        fx.send.push(wire.clone());
        let retransmit = (!reliable).then(|| Retransmit::first(now, timers.t1));
        let state = State::Trying { retransmit, timeout_at: now + timers.t1x64() };
        ClientNonInvite { request, wire, timers, reliable, state }
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn on_response(&mut self, now: Time, response: Response, fx: &mut Effects) {
        match (self.state.clone(), response.status()) {
            // §17.1.2.2: 1xx → Proceeding, passed up.
            (State::Trying { retransmit, timeout_at } | State::Proceeding { retransmit, timeout_at }, 100..=199) => {
                self.state = State::Proceeding { retransmit, timeout_at };
                fx.up.push(Up::Response(response));
            }
            // §17.1.2.2: 200-699 → Completed, passed up; Timer K is T4 (UDP) or 0.
            (State::Trying { .. } | State::Proceeding { .. }, _) => {
                let k = if self.reliable { Duration::ZERO } else { self.timers.t4 };
                self.state = State::Completed { until: now + k };
                fx.up.push(Up::Response(response));
            }
            // Completed absorbs retransmitted responses.
            _ => {}
        }
    }

    pub fn on_timeout(&mut self, now: Time, fx: &mut Effects) {
        match self.state.clone() {
            State::Trying { timeout_at, .. } | State::Proceeding { timeout_at, .. } if now >= timeout_at => {
                // §17.1.2.2: Timer F → inform the TU, Terminated.
                self.state = State::Terminated;
                fx.up.push(Up::Failed(Failure::Timeout(Timer::F)));
            }
            State::Trying { retransmit: Some(r), timeout_at } if now >= r.at => {
                // §17.1.2.2: Timer E in Trying: retransmit, interval min(2·E, T2).
                fx.send.push(self.wire.clone());
                self.state = State::Trying { retransmit: Some(r.next(now, Some(self.timers.t2))), timeout_at };
            }
            State::Proceeding { retransmit: Some(r), timeout_at } if now >= r.at => {
                // §17.1.2.2: Timer E in Proceeding: retransmit, reset to T2.
                fx.send.push(self.wire.clone());
                let next = Retransmit { at: now + self.timers.t2, interval: self.timers.t2 };
                self.state = State::Proceeding { retransmit: Some(next), timeout_at };
            }
            // §17.1.2.2: Timer K → Terminated.
            State::Completed { until } if now >= until => self.state = State::Terminated,
            _ => {}
        }
    }

    pub fn on_transport_error(&mut self, fx: &mut Effects) {
        if matches!(self.state, State::Trying { .. } | State::Proceeding { .. }) {
            fx.up.push(Up::Failed(Failure::Transport));
        }
        self.state = State::Terminated;
    }

    pub fn deadline(&self) -> Option<Time> {
        match &self.state {
            State::Trying { retransmit, timeout_at } | State::Proceeding { retransmit, timeout_at } => {
                Some(retransmit.map_or(*timeout_at, |r| r.at.min(*timeout_at)))
            }
            State::Completed { until } => Some(*until),
            State::Terminated => None,
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
