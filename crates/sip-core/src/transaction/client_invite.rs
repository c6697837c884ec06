//! The INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state).
//!
//! ```text
//!                                |INVITE from TU
//!              Timer A fires     |INVITE sent
//!              Reset A,          V                      Timer B fires
//!              INVITE sent +-----------+                or Transport Err.
//!                +---------|           |---------------+inform TU
//!                |         |  Calling  |               |
//!                +-------->|           |-------------->|
//!                          +-----------+ 2xx           |
//!                             |  |       2xx to TU     |
//!                             |  |1xx                  |
//!     300-699 +---------------+  |1xx to TU            |
//!    ACK sent |                  |                     |
//! resp. to TU |  1xx             V                     |
//!             |  1xx to TU  -----------+               |
//!             |  +---------|           |               |
//!             |  |         |Proceeding |-------------->|
//!             |  +-------->|           | 2xx           |
//!             |            +-----------+ 2xx to TU     |
//!             |       300-699    |                     |
//!             |       ACK sent,  |                     |
//!             |       resp. to TU|                     |
//!             |                  |                     |
//!             |                  V                     |
//!             |            +-----------+               |
//!             +----------->|           | Transport Err.|
//!       300-699            | Completed |-------------->|
//!       ACK sent           |           | Inform TU     |
//!                          +-----------+               |
//!     2xx (RFC 6026)          |  Timer D fires         |
//!     +-----------+           |  -                     |
//!     | Accepted  |<-- 2xx    V                        |
//!     +-----------+      +-----------+                 |
//!       Timer M ------>  | Terminated|<----------------+
//!                        +-----------+
//! ```

use super::{build_ack_or_cancel, Effects, Failure, Up};
use crate::timers::{Retransmit, Timer, TimerConfig};
use crate::Time;
use bytes::Bytes;
use sip_message::{Method, Request, Response};

/// The state, with the deadlines that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// INVITE sent, nothing heard. Timer A (UDP only) and Timer B.
    Calling { retransmit: Option<Retransmit>, timeout_at: Time },
    /// A provisional response arrived; the TU decides how long to wait (Timer C is a
    /// proxy timer, the B2BUA has its own no-answer timer). Once we have sent a CANCEL,
    /// `cancelled_until` is 64·T1 later: no final by then and the INVITE counts as
    /// cancelled (§9.1).
    Proceeding { cancelled_until: Option<Time> },
    /// A 300–699 arrived and was ACKed; retransmissions of it are ACKed again until Timer D.
    Completed { until: Time },
    /// A 2xx arrived (RFC 6026 §8.4); further 2xx go to the TU (the dialog ACKs them) until Timer M.
    Accepted { until: Time },
    /// Done; the layer removes the transaction.
    Terminated,
}

#[derive(Debug)]
pub(crate) struct ClientInvite {
    request: Request,
    wire: Bytes,
    ack: Option<Bytes>,
    timers: TimerConfig,
    reliable: bool,
    pub(crate) state: State,
}

impl ClientInvite {
    /// §17.1.1.2: the INVITE is passed to the transport, Timer A (UDP) and Timer B start.
    /// `wire` is `request` printed (the caller already printed it to check its size).
    pub fn start(now: Time, request: Request, wire: Bytes, timers: TimerConfig, reliable: bool, fx: &mut Effects) -> ClientInvite {
        fx.send.push(wire.clone());
        let retransmit = (!reliable).then(|| Retransmit::first(now, timers.t1));
        let state = State::Calling { retransmit, timeout_at: now + timers.t1x64() };
        ClientInvite { request, wire, ack: None, timers, reliable, state }
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether a provisional response has been received (CANCEL may be sent, §9.1).
    pub fn has_provisional(&self) -> bool {
        matches!(self.state, State::Proceeding { .. })
    }

    pub fn is_calling_or_proceeding(&self) -> bool {
        matches!(self.state, State::Calling { .. } | State::Proceeding { .. })
    }

    pub fn on_response(&mut self, now: Time, response: Response, fx: &mut Effects) {
        let status = response.status();
        match (&self.state, status) {
            // §17.1.1.2: 1xx in Calling or Proceeding → Proceeding, passed up.
            (State::Calling { .. }, 100..=199) => {
                self.state = State::Proceeding { cancelled_until: None };
                fx.up.push(Up::Response(response));
            }
            (State::Proceeding { .. }, 100..=199) => {
                fx.up.push(Up::Response(response));
            }
            // RFC 6026 §8.4: 2xx in Calling or Proceeding → Accepted, passed up.
            (State::Calling { .. } | State::Proceeding { .. }, 200..=299) => {
                self.state = State::Accepted { until: now + self.timers.t1x64() };
                fx.up.push(Up::Response(response));
            }
            // §17.1.1.2: 300-699 → ACK, Completed, passed up; Timer D 32 s (UDP) or 0.
            (State::Calling { .. } | State::Proceeding { .. }, _) => {
                let ack = build_ack_or_cancel(&self.request, Method::Ack, Some(&response));
                fx.send.push(ack.clone());
                self.ack = Some(ack);
                let d = if self.reliable { std::time::Duration::ZERO } else { std::time::Duration::from_secs(32).max(self.timers.t1x64()) };
                self.state = State::Completed { until: now + d };
                fx.up.push(Up::Response(response));
            }
            // §17.1.1.2: a retransmitted final in Completed is ACKed again, not passed up.
            (State::Completed { .. }, 300..=699) => {
                if let Some(ack) = &self.ack {
                    fx.send.push(ack.clone());
                }
            }
            // RFC 6026 §8.4: 2xx in Accepted go to the TU (the dialog ACKs each).
            (State::Accepted { .. }, 200..=299) => fx.up.push(Up::Response(response)),
            // Anything else (a late 1xx, a 2xx after a non-2xx) is dropped.
            _ => {}
        }
    }

    pub fn on_timeout(&mut self, now: Time, fx: &mut Effects) {
        match self.state.clone() {
            State::Calling { retransmit, timeout_at } => {
                if now >= timeout_at {
                    // §17.1.1.2: Timer B fires in Calling → inform the TU, Terminated.
                    self.state = State::Terminated;
                    fx.up.push(Up::Failed(Failure::Timeout(Timer::B)));
                } else if let Some(r) = retransmit.filter(|r| now >= r.at) {
                    // §17.1.1.2: Timer A fires → retransmit, reset A to twice its value.
                    fx.send.push(self.wire.clone());
                    self.state = State::Calling { retransmit: Some(r.next(now, None)), timeout_at };
                }
            }
            // §9.1: no final response 64·T1 after our CANCEL: the INVITE is cancelled.
            State::Proceeding { cancelled_until: Some(until) } if now >= until => {
                self.state = State::Terminated;
                fx.up.push(Up::Failed(Failure::Cancelled));
            }
            // Timer D (§17.1.1.2) and Timer M (RFC 6026 §8.4) end the transaction.
            State::Completed { until } | State::Accepted { until } if now >= until => self.state = State::Terminated,
            _ => {}
        }
    }

    /// §17.1.1.2: a transport error in Calling or Proceeding informs the TU.
    /// Our CANCEL went out (§9.1): start the 64·T1 wait for the INVITE's final response.
    pub fn on_cancel_sent(&mut self, now: Time) {
        if let State::Proceeding { cancelled_until: c @ None } = &mut self.state {
            *c = Some(now + self.timers.t1x64());
        }
    }

    pub fn on_transport_error(&mut self, fx: &mut Effects) {
        if self.is_calling_or_proceeding() {
            fx.up.push(Up::Failed(Failure::Transport));
        }
        self.state = State::Terminated;
    }

    pub fn deadline(&self) -> Option<Time> {
        match &self.state {
            State::Calling { retransmit, timeout_at } => Some(retransmit.map_or(*timeout_at, |r| r.at.min(*timeout_at))),
            State::Completed { until } | State::Accepted { until } => Some(*until),
            State::Proceeding { cancelled_until } => *cancelled_until,
            State::Terminated => None,
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
