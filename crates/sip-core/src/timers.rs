//! The RFC 3261 timer base and the timers of §17 (table 4 of RFC 3261, RFC 6026).

use std::time::Duration;

/// T1, T2 and T4 (§17.1.1.1, table 4). Every transaction timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; the first retransmission interval. Default 500 ms.
    pub t1: Duration,
    /// The cap on non-INVITE request and INVITE response retransmission. Default 4 s.
    pub t2: Duration,
    /// How long a message may stay in the network. Default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J, L, M (32 s by default).
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// The timers by their RFC letters, to say which one ended a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission (UDP), starts at T1 and doubles.
    A,
    /// INVITE transaction timeout, 64·T1.
    B,
    /// Wait time for response retransmissions (INVITE client, Completed): 32 s on UDP, 0 on reliable.
    D,
    /// Non-INVITE request retransmission (UDP), T1 doubling to T2.
    E,
    /// Non-INVITE transaction timeout, 64·T1.
    F,
    /// INVITE final response retransmission (UDP), T1 doubling to T2.
    G,
    /// Wait time for ACK receipt, 64·T1.
    H,
    /// Wait time for ACK retransmissions: T4 on UDP, 0 on reliable.
    I,
    /// Wait time for non-INVITE request retransmissions: 64·T1 on UDP, 0 on reliable.
    J,
    /// Wait time for response retransmissions (non-INVITE client): T4 on UDP, 0 on reliable.
    K,
    /// Wait time for accepted INVITE request retransmissions (RFC 6026), 64·T1.
    L,
    /// Wait time for 2xx retransmissions (RFC 6026), 64·T1.
    M,
}

/// A retransmission timer: when it fires next and the interval it was last set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub at: crate::Time,
    pub interval: Duration,
}

impl Retransmit {
    pub fn first(now: crate::Time, t1: Duration) -> Retransmit {
        Retransmit { at: now + t1, interval: t1 }
    }

    /// The next firing after one at `now`: the interval doubles, capped at `cap`
    /// (`None` for Timer A, which doubles without cap).
    pub fn next(self, now: crate::Time, cap: Option<Duration>) -> Retransmit {
        let doubled = self.interval.saturating_mul(2);
        let interval = cap.map_or(doubled, |c| doubled.min(c));
        Retransmit { at: now + interval, interval }
    }
}
