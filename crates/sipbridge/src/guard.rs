//! The defence against password guessing, per source address (`[auth]` in
//! `docs/CONFIG.md`): what fail2ban does for Asterisk, built in.
//!
//! A failure is a request whose credentials did not verify (wrong password, unknown
//! user: the same thing here). Within `window_s`, after `throttle_after` failures every
//! answer to that source is held back `throttle_ms`, so a guesser's rate collapses;
//! after `ban_after` failures the source is refused with 403 for `ban_s`, whatever it
//! sends. Requests without credentials are not failures: every phone's first request
//! has none.
//!
//! Time is the engine's [`Time`]; memory is bounded by forgetting sources whose window
//! has passed and, past [`MAX_SOURCES`], the quietest ones.

use crate::config::Auth;
use sip_core::Time;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Sources remembered at most; beyond, the one with the oldest last failure is dropped.
pub const MAX_SOURCES: usize = 100_000;

/// What to do with a request from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Answer as usual.
    Open,
    /// Answer, but only after this delay.
    Throttled(Duration),
    /// Refuse with 403 until then.
    Banned(Time),
}

#[derive(Debug, Default)]
struct Source {
    /// Failure times within the window, oldest first (at most `ban_after`).
    failures: VecDeque<Time>,
    banned_until: Option<Time>,
}

/// A banned source, for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// The address.
    pub source: IpAddr,
    /// Until when.
    pub until: Time,
}

/// Failure counts and bans by source address.
#[derive(Debug)]
pub struct Guard {
    window: Duration,
    throttle_after: usize,
    throttle: Duration,
    ban_after: usize,
    ban: Duration,
    sources: HashMap<IpAddr, Source>,
    /// Failed authentications since start.
    pub failures: u64,
    /// Answers delayed since start.
    pub throttled: u64,
    /// Requests refused from banned sources since start.
    pub refused: u64,
    /// Bans imposed since start.
    pub bans: u64,
}

impl Guard {
    /// The rules of `[auth]`.
    pub fn new(auth: &Auth) -> Guard {
        let n = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        Guard {
            window: Duration::from_secs(u64::from(auth.window_s)),
            throttle_after: n(auth.throttle_after),
            throttle: Duration::from_millis(u64::from(auth.throttle_ms)),
            ban_after: n(auth.ban_after),
            ban: Duration::from_secs(u64::from(auth.ban_s)),
            sources: HashMap::new(),
            failures: 0,
            throttled: 0,
            refused: 0,
            bans: 0,
        }
    }

    /// How to treat a request from `ip` now (counted in `throttled`/`refused`).
    pub fn admit(&mut self, now: Time, ip: IpAddr) -> Admission {
        let a = self.peek(now, ip);
        match a {
            Admission::Open => {}
            Admission::Throttled(_) => self.throttled += 1,
            Admission::Banned(_) => self.refused += 1,
        }
        a
    }

    /// [`Guard::admit`] without counting.
    pub fn peek(&self, now: Time, ip: IpAddr) -> Admission {
        let Some(s) = self.sources.get(&ip) else { return Admission::Open };
        if let Some(until) = s.banned_until.filter(|&u| u > now) {
            return Admission::Banned(until);
        }
        let recent = s.failures.iter().filter(|&&t| now - t < self.window).count();
        if recent >= self.throttle_after {
            Admission::Throttled(self.throttle)
        } else {
            Admission::Open
        }
    }

    /// Records a failed authentication from `ip`; returns the ban's end when this
    /// failure imposes one (the caller logs it).
    pub fn failure(&mut self, now: Time, ip: IpAddr) -> Option<Time> {
        self.failures += 1;
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.forget(now);
        }
        let window = self.window;
        let s = self.sources.entry(ip).or_default();
        while s.failures.front().is_some_and(|&t| now - t >= window) {
            s.failures.pop_front();
        }
        s.failures.push_back(now);
        if s.failures.len() >= self.ban_after && s.banned_until.is_none_or(|u| u <= now) {
            let until = now + self.ban;
            s.banned_until = Some(until);
            s.failures.clear();
            self.bans += 1;
            return Some(until);
        }
        None
    }

    /// Sources refused now.
    pub fn bans(&self, now: Time) -> Vec<Ban> {
        let mut v: Vec<Ban> =
            self.sources.iter().filter_map(|(&source, s)| s.banned_until.filter(|&u| u > now).map(|until| Ban { source, until })).collect();
        v.sort_by_key(|b| b.source);
        v
    }

    /// Drops sources with nothing left to remember; if none, the one whose last
    /// failure is oldest.
    fn forget(&mut self, now: Time) {
        let window = self.window;
        self.sources.retain(|_, s| s.banned_until.is_some_and(|u| u > now) || s.failures.back().is_some_and(|&t| now - t < window));
        if self.sources.len() >= MAX_SOURCES {
            let oldest = self
                .sources
                .iter()
                .filter(|(_, s)| s.banned_until.is_none())
                .min_by_key(|(_, s)| s.failures.back().copied())
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.sources.remove(&ip);
            }
        }
    }

    /// Periodic clean-up; call now and then (every minute is plenty).
    pub fn prune(&mut self, now: Time) {
        let window = self.window;
        self.sources.retain(|_, s| s.banned_until.is_some_and(|u| u > now) || s.failures.back().is_some_and(|&t| now - t < window));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn auth() -> Auth {
        Auth { throttle_after: 3, throttle_ms: 1000, ban_after: 5, ban_s: 60, window_s: 30, ..Auth::default() }
    }

    fn at(s: u64) -> Time {
        Time::from_millis(s * 1000)
    }

    #[test]
    fn throttles_then_bans_then_forgives() {
        let mut g = Guard::new(&auth());
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        for i in 0..2 {
            assert_eq!(g.admit(at(i), ip), Admission::Open);
            assert_eq!(g.failure(at(i), ip), None);
        }
        assert_eq!(g.admit(at(2), ip), Admission::Open);
        g.failure(at(2), ip);
        // Three failures: slowed down.
        assert_eq!(g.admit(at(3), ip), Admission::Throttled(Duration::from_secs(1)));
        assert_eq!(g.admit(at(3), other), Admission::Open, "per source");
        g.failure(at(3), ip);
        assert_eq!(g.failure(at(4), ip), Some(at(64)), "the fifth failure bans");
        assert_eq!(g.admit(at(5), ip), Admission::Banned(at(64)));
        assert_eq!(g.bans(at(5)), [Ban { source: ip, until: at(64) }]);
        assert_eq!(g.admit(at(63), ip), Admission::Banned(at(64)));
        // The ban ends, and the count starts again.
        assert_eq!(g.admit(at(64), ip), Admission::Open);
        assert!(g.bans(at(64)).is_empty());
        assert_eq!((g.failures, g.bans, g.refused, g.throttled), (5, 1, 2, 1));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut g = Guard::new(&auth());
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        for i in 0..10 {
            // One failure every 16 s: never three within 30 s.
            assert_eq!(g.failure(at(i * 16), ip), None);
            assert_eq!(g.admit(at(i * 16), ip), Admission::Open, "at {} s", i * 16);
        }
        g.prune(at(200));
        assert!(g.sources.is_empty());
    }
}
