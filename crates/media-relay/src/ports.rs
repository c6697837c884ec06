//! The relay's port pool.

use std::collections::VecDeque;

/// Even RTP ports from a range like `20000-29999`: RTP on the even port, RTCP on the odd
/// port above it (RFC 3550 §11). Ports come out least-recently-released first, so a port
/// freed by a call that just ended is handed out last: late packets of the old call do
/// not land in a new one.
///
/// Only pairs that fit whole in the range are used (`20000-29999` gives 5,000 pairs; an
/// odd `first` is rounded up; a `last` that is even cannot carry that pair's RTCP and is
/// left out).
#[derive(Debug, Clone)]
pub struct PortPool {
    /// The first even port of the range.
    base: u16,
    /// Free RTP ports, the next to allocate at the front.
    free: VecDeque<u16>,
    /// `is_free[(port - base) / 2]`: guards against a double release.
    is_free: Vec<bool>,
}

impl PortPool {
    /// A pool of every even port `p` with `first <= p` and `p + 1 <= last`, all free,
    /// in ascending order. An empty or inverted range gives an empty pool.
    pub fn new(first: u16, last: u16) -> PortPool {
        let base = u32::from(first) + u32::from(first & 1);
        let free: VecDeque<u16> = (base..u32::from(last)).step_by(2).filter_map(|p| u16::try_from(p).ok()).collect();
        let is_free = vec![true; free.len()];
        PortPool { base: u16::try_from(base).unwrap_or(u16::MAX), free, is_free }
    }

    /// The next free RTP port (even; its RTCP port is `port + 1`), or `None` when every
    /// pair is in use.
    pub fn allocate(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        if let Some(slot) = self.slot(port) {
            self.is_free[slot] = false;
        }
        Some(port)
    }

    /// Gives an RTP port back; it is reused after every other free port. A port that is
    /// not from this pool, odd, or already free is ignored.
    pub fn release(&mut self, rtp_port: u16) {
        if let Some(slot) = self.slot(rtp_port) {
            if !self.is_free[slot] {
                self.is_free[slot] = true;
                self.free.push_back(rtp_port);
            }
        }
    }

    /// How many RTP/RTCP pairs are free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// How many pairs the pool holds, free or not.
    pub fn capacity(&self) -> usize {
        self.is_free.len()
    }

    fn slot(&self, port: u16) -> Option<usize> {
        if port < self.base || port & 1 == 1 {
            return None;
        }
        let slot = usize::from((port - self.base) / 2);
        (slot < self.is_free.len()).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_pairs_inside_the_range() {
        let mut pool = PortPool::new(20000, 20009);
        assert_eq!(pool.available(), 5);
        let got: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(got, [20000, 20002, 20004, 20006, 20008]);
        assert_eq!(PortPool::new(20001, 20008).capacity(), 3, "20002, 20004, 20006: 20008's RTCP is outside");
        assert_eq!(PortPool::new(20000, 20000).capacity(), 0);
        assert_eq!(PortPool::new(30000, 20000).capacity(), 0);
        assert_eq!(PortPool::new(65534, 65535).capacity(), 1);
        assert_eq!(PortPool::new(0, 65535).capacity(), 32768);
    }

    #[test]
    fn exhaustion_and_least_recently_released_reuse() {
        let mut pool = PortPool::new(20000, 20005);
        let a = pool.allocate();
        let b = pool.allocate();
        let c = pool.allocate();
        assert_eq!((a, b, c), (Some(20000), Some(20002), Some(20004)));
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.available(), 0);
        pool.release(20002);
        pool.release(20000);
        pool.release(20000); // double release: ignored
        pool.release(20001); // odd: ignored
        pool.release(40000); // foreign: ignored
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.allocate(), Some(20002), "released first, reused first");
        pool.release(20004);
        assert_eq!(pool.allocate(), Some(20000));
        assert_eq!(pool.allocate(), Some(20004));
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn a_released_port_waits_behind_every_free_one() {
        let mut pool = PortPool::new(20000, 20009);
        let first = pool.allocate().expect("free");
        pool.release(first);
        let order: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(order, [20002, 20004, 20006, 20008, 20000]);
    }
}
