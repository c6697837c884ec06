//! Packet loss from RTP sequence numbers: the algorithm of RFC 3550 Appendix A.1, with the
//! extended highest sequence number and the expected/received counts of A.3.

/// A jump forward of at least this many is not plain loss (RFC 3550 A.1 `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// A step back of at most this many is reordering, not a restart (A.1 `MAX_MISORDER`).
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// One source's sequence state (RFC 3550 A.1 `source`), without the probation of A.1:
/// the relay counts only sources it already accepted, so the first packet starts the
/// count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqState {
    pub(crate) ssrc: u32,
    max_seq: u16,
    /// Shifted count of sequence number wraps (A.1: `cycles`, a multiple of 2^16).
    cycles: u64,
    base_seq: u64,
    /// The sequence number after a large jump; a packet with it confirms a restart.
    bad_seq: u32,
    received: u64,
}

/// What [`SeqState::update`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// Counted (in order, late, duplicate or after a gap).
    Counted,
    /// A large jump, not counted yet: the next packet in sequence after it restarts the
    /// count (A.1: the sender restarted without changing SSRC).
    Jump,
    /// The second packet after a large jump: the caller folds the old count away and
    /// starts a new state at this packet.
    Restart,
}

impl SeqState {
    /// A new source whose first packet has sequence `seq` (A.1 `init_seq`, then counted).
    pub(crate) fn new(ssrc: u32, seq: u16) -> SeqState {
        SeqState { ssrc, max_seq: seq, cycles: 0, base_seq: u64::from(seq), bad_seq: RTP_SEQ_MOD + 1, received: 1 }
    }

    /// A.1 `update_seq` for a packet of this source with sequence `seq`.
    pub(crate) fn update(&mut self, seq: u16) -> Update {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += u64::from(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // The sequence number made a very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: assume the other side restarted.
                return Update::Restart;
            }
            self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
            return Update::Jump;
        }
        // else: a duplicate or reordered packet, counted.
        self.received += 1;
        Update::Counted
    }

    /// A.3: extended highest sequence number received.
    fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// A.3: packets expected minus packets received, never below zero (duplicates can
    /// make it negative; the relay reports loss, not duplication).
    pub(crate) fn lost(&self) -> u64 {
        let expected = self.extended_max() - self.base_seq + 1;
        expected.saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u16]) -> SeqState {
        let mut s = SeqState::new(1, seqs[0]);
        for &q in &seqs[1..] {
            s.update(q);
        }
        s
    }

    #[test]
    fn in_order_is_no_loss() {
        assert_eq!(feed(&[10, 11, 12, 13]).lost(), 0);
    }

    #[test]
    fn gaps_count_and_late_packets_are_forgiven() {
        assert_eq!(feed(&[10, 11, 14, 15]).lost(), 2);
        assert_eq!(feed(&[10, 11, 14, 12, 15, 13]).lost(), 0, "reordered, all arrived");
        assert_eq!(feed(&[10, 12, 11, 11, 13]).lost(), 0, "a duplicate does not make loss negative");
    }

    #[test]
    fn wraparound() {
        assert_eq!(feed(&[65533, 65534, 65535, 0, 1]).lost(), 0);
        assert_eq!(feed(&[65534, 1, 2]).lost(), 2, "65535 and 0 lost across the wrap");
        assert_eq!(feed(&[65535, 1, 0, 2]).lost(), 0, "reordered across the wrap");
        let s = feed(&[65535, 1, 0, 2]);
        assert_eq!(s.extended_max(), 65536 + 2);
    }

    #[test]
    fn a_large_jump_needs_a_second_packet_to_restart() {
        let mut s = SeqState::new(1, 100);
        assert_eq!(s.update(20000), Update::Jump);
        assert_eq!(s.lost(), 0, "a stray jump is ignored");
        assert_eq!(s.update(101), Update::Counted);
        assert_eq!(s.update(30000), Update::Jump);
        assert_eq!(s.update(30001), Update::Restart);
    }
}
