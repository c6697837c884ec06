//! The INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state).
//!
//! ```text
//!                                |INVITE
//!                                |pass INV to TU
//!             INVITE             V send 100 if TU won't in 200 ms
//!             send response+-----------+
//!                 +--------|           |--------+ 101-199 from TU
//!                 |        |           |        | send response
//!                 +------->|           |<-------+
//!                          | Proceeding|
//!                          |           |--------+ Transport Err.
//!                          |           |        | Inform TU
//!                          |           |<-------+
//!                          +-----------+
//!             300-699 from TU |     |2xx from TU
//!             send response   |     |send response
//!                             |     +------------------+
//!                             |                        |
//!             INVITE          V          Timer G fires |
//!             send response+-----------+ send response |
//!                 +--------|           |--------+      |
//!                 |        | Completed |        |      |
//!                 +------->|           |<-------+      |
//!                          +-----------+               |
//!                             |     |                  |
//!                         ACK |     |                  |
//!                         -   |     +----------------->|
//!                             |  Timer H fires         |
//!                             V  or Transport Err.     V
//!                          +-----------+  Inform TU  +-----------+
//!                          |           |             |           |<--+ 2xx from TU
//!                          | Confirmed |             | Accepted  |   | send response
//!                          |           |             |           |---+ (RFC 6026)
//!                          +-----------+             +-----------+
//!                                |                         |
//!                                |Timer I fires            |Timer L fires
//!                                V                         V
//!                          +-----------+
//!                          | Terminated|
//!                          +-----------+
//! ```

use super::{Effects, Failure, Up};
use crate::timers::{Retransmit, Timer, TimerConfig};
use crate::Time;
use bytes::Bytes;
use sip_message::{Request, SeededIds};
use std::time::Duration;

/// §17.2.1: the server sends 100 Trying itself when the TU has not answered within 200 ms.
pub(crate) const TRYING_AFTER: Duration = Duration::from_millis(200);

/// The state, with the deadlines that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// INVITE passed up; `trying_at` is when the server sends 100 itself, `give_up_at`
    /// when the endpoint stops waiting for the TU and answers 500 itself.
    Proceeding { trying_at: Option<Time>, give_up_at: Time },
    /// A 300–699 was sent: Timer G retransmits it (UDP), Timer H gives up on the ACK.
    Completed { retransmit: Option<Retransmit>, timeout_at: Time },
    /// The ACK arrived; its retransmissions are absorbed until Timer I.
    Confirmed { until: Time },
    /// A 2xx was sent (RFC 6026 §8.7): INVITE retransmissions are absorbed, the TU's
    /// 2xx retransmissions pass, until Timer L.
    Accepted { until: Time },
    /// Done.
    Terminated,
}

/// What a TU response did to the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Respond {
    Sent,
    /// The transaction is past the point where this response may be sent.
    Refused,
}

#[derive(Debug)]
pub(crate) struct ServerInvite {
    request: Request,
    last_response: Option<Bytes>,
    /// The To tag of the final response, for RFC 2543 ACK matching (§17.2.3).
    pub(crate) to_tag: Option<String>,
    timers: TimerConfig,
    reliable: bool,
    pub(crate) state: State,
}

impl ServerInvite {
    pub fn new(now: Time, request: Request, timers: TimerConfig, reliable: bool, limit: Duration) -> ServerInvite {
        let state = State::Proceeding { trying_at: Some(now + TRYING_AFTER), give_up_at: now + limit };
        ServerInvite { request, last_response: None, to_tag: None, timers, reliable, state }
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether the INVITE is still waiting for a final response (CANCEL applies, §9.2).
    pub fn is_proceeding(&self) -> bool {
        matches!(self.state, State::Proceeding { .. })
    }

    /// §17.2.1: a retransmitted INVITE gets the last provisional (Proceeding) or the final
    /// (Completed) again; Confirmed and Accepted absorb it.
    pub fn on_retransmission(&mut self, fx: &mut Effects) {
        if matches!(self.state, State::Proceeding { .. } | State::Completed { .. }) {
            if let Some(r) = &self.last_response {
                fx.send.push(r.clone());
            }
        }
    }

    /// An ACK matched this transaction. Returns whether it was absorbed.
    pub fn on_ack(&mut self, now: Time) -> bool {
        match self.state {
            // §17.2.1: ACK in Completed → Confirmed; Timer I is T4 (UDP) or 0.
            State::Completed { .. } => {
                let i = if self.reliable { Duration::ZERO } else { self.timers.t4 };
                self.state = State::Confirmed { until: now + i };
                true
            }
            State::Confirmed { .. } => true,
            // An ACK for a 2xx is the dialog's business (RFC 6026 §8.7: passed to the TU).
            _ => false,
        }
    }

    pub fn respond(&mut self, now: Time, status: u16, wire: Bytes, to_tag: Option<String>, fx: &mut Effects) -> Respond {
        match (&self.state, status) {
            // §17.2.1: a provisional from the TU in Proceeding is sent and remembered.
            (State::Proceeding { give_up_at, .. }, 100..=199) => {
                self.state = State::Proceeding { trying_at: None, give_up_at: *give_up_at };
            }
            // RFC 6026 §8.5: a 2xx from the TU in Proceeding → Accepted, Timer L.
            (State::Proceeding { .. }, 200..=299) => {
                self.state = State::Accepted { until: now + self.timers.t1x64() };
                self.to_tag = to_tag;
            }
            // RFC 6026 §8.7: the TU's retransmissions of the 2xx pass in Accepted.
            (State::Accepted { .. }, 200..=299) => {}
            // §17.2.1: 300-699 from the TU in Proceeding → Completed, Timers G (UDP) and H.
            (State::Proceeding { .. }, 300..=699) => {
                let retransmit = (!self.reliable).then(|| Retransmit::first(now, self.timers.t1));
                self.state = State::Completed { retransmit, timeout_at: now + self.timers.t1x64() };
                self.to_tag = to_tag;
            }
            _ => return Respond::Refused,
        }
        fx.send.push(wire.clone());
        self.last_response = Some(wire);
        Respond::Sent
    }

    pub fn on_timeout(&mut self, now: Time, fx: &mut Effects) {
        match self.state.clone() {
            State::Proceeding { give_up_at, .. } if now >= give_up_at => {
                // The TU never answered: the endpoint answers for it (a 500), so the
                // transaction ends the RFC way (Completed, Timers G and H).
                fx.up.push(Up::Unanswered);
            }
            State::Proceeding { trying_at: Some(at), give_up_at } if now >= at => {
                // §17.2.1: the TU has not answered within 200 ms: send 100 Trying.
                self.state = State::Proceeding { trying_at: None, give_up_at };
                if let Ok(trying) = self.request.reply(100).build(&mut SeededIds::new(0)) {
                    let wire = trying.to_bytes();
                    fx.send.push(wire.clone());
                    self.last_response = Some(wire);
                }
            }
            State::Completed { timeout_at, .. } if now >= timeout_at => {
                // §17.2.1: Timer H fires in Completed: no ACK; inform the TU, Terminated.
                self.state = State::Terminated;
                fx.up.push(Up::ServerFailed(Failure::Timeout(Timer::H)));
            }
            State::Completed { retransmit: Some(r), timeout_at } if now >= r.at => {
                // §17.2.1: Timer G fires: resend the final, interval min(2·G, T2).
                if let Some(w) = &self.last_response {
                    fx.send.push(w.clone());
                }
                self.state = State::Completed { retransmit: Some(r.next(now, Some(self.timers.t2))), timeout_at };
            }
            // §17.2.1 Timer I, RFC 6026 §8.7 Timer L: Terminated.
            State::Confirmed { until } | State::Accepted { until } if now >= until => self.state = State::Terminated,
            _ => {}
        }
    }

    /// §17.2.4: a response could not be sent; inform the TU.
    pub fn on_transport_error(&mut self, fx: &mut Effects) {
        // Only while something is outstanding: an answer to send, or an ACK to wait for.
        if matches!(self.state, State::Proceeding { .. } | State::Completed { .. }) {
            fx.up.push(Up::ServerFailed(Failure::Transport));
        }
        self.state = State::Terminated;
    }

    pub fn deadline(&self) -> Option<Time> {
        match &self.state {
            State::Proceeding { trying_at, give_up_at } => Some(trying_at.map_or(*give_up_at, |t| t.min(*give_up_at))),
            State::Completed { retransmit, timeout_at } => Some(retransmit.map_or(*timeout_at, |r| r.at.min(*timeout_at))),
            State::Confirmed { until } | State::Accepted { until } => Some(*until),
            State::Terminated => None,
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
