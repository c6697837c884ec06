//! Parallel forking on the outbound leg: a call to a registered endpoint rings all its
//! contacts at once (RFC 3261 §10 registrar use), one INVITE client transaction per
//! contact, with the same Call-ID, From tag, CSeq and SDP offer, like a forking proxy's
//! branches downstream (§16.6). The first 2xx wins and the other branches are cancelled
//! (§16.7 step 10); the call fails only when every branch has a final answer, and the
//! caller then gets the best of them (§16.7 step 6, [`better`]).
//!
//! Only a forking call carries a [`Forks`] (boxed, `None` otherwise), so a call to one
//! contact costs no more than before.

use crate::transaction::TransactionId;
use crate::transport::Flow;
use bytes::Bytes;

/// One contact being rung: its INVITE client transaction and where it went.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub tx: TransactionId,
    /// The flow its INVITE went over (early dialogs and the dialog it wins start there).
    pub flow: Flow,
    /// Its dialog's requests always go over `flow` (a contact behind NAT).
    pub pin_flow: bool,
    /// Its transaction is over: a final response, a timeout or a transport failure.
    pub done: bool,
    /// The To tags of the early dialogs its 18x's created, dropped when it fails (§12.1:
    /// a non-2xx final response ends the early dialogs of its transaction).
    pub tags: Vec<String>,
}

/// The branches of a forking call (the first is the INVITE to `Target::uri`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Forks {
    pub branches: Vec<Branch>,
    /// The best final failure so far, already mapped for the caller ([`better`]).
    pub best: Option<u16>,
    /// 2xx responses from branches that lost the race, which we ACKed and BYE'd: their
    /// To tag and ACK, sent again when the 2xx is retransmitted (§13.2.2.4), without a
    /// second BYE.
    pub killed: Vec<(String, Bytes, Flow)>,
}

impl Forks {
    pub fn branch(&self, tx: TransactionId) -> Option<&Branch> {
        self.branches.iter().find(|b| b.tx == tx)
    }

    pub fn branch_mut(&mut self, tx: TransactionId) -> Option<&mut Branch> {
        self.branches.iter_mut().find(|b| b.tx == tx)
    }

    /// Transactions still waiting for a final response.
    pub fn pending(&self) -> impl Iterator<Item = TransactionId> + '_ {
        self.branches.iter().filter(|b| !b.done).map(|b| b.tx)
    }

    pub fn all_done(&self) -> bool {
        self.branches.iter().all(|b| b.done)
    }

    /// Records a branch's final failure (mapped for the caller): kept when it is the best.
    pub fn offer(&mut self, mapped: u16) {
        if self.best.is_none_or(|b| better(mapped, b)) {
            self.best = Some(mapped);
        }
    }
}

/// RFC 3261 §16.7 step 6 on statuses already mapped for the caller: a 6xx beats anything;
/// otherwise the lowest class wins; within a class an answer beats "not available" (480),
/// which beats "no answer" (408), so 486 from one phone and 480 from another give 486.
/// A 503 never reaches here as such (`map_status` makes it 500, §16.7's rule). Ties keep
/// the first.
pub(crate) fn better(new: u16, old: u16) -> bool {
    rank(new) < rank(old)
}

fn rank(s: u16) -> (u16, u8) {
    let class = match s / 100 {
        6 => 0,
        c => c,
    };
    let within = match s {
        408 => 2,
        480 => 1,
        _ => 0,
    };
    (class, within)
}

#[cfg(test)]
mod tests {
    use super::better;

    #[test]
    fn best_response_rules() {
        assert!(better(603, 486), "6xx wins over everything");
        assert!(better(600, 480), "6xx wins over 480");
        assert!(!better(486, 603));
        assert!(better(486, 480), "busy over unavailable");
        assert!(better(480, 408), "unavailable over no answer");
        assert!(better(486, 408));
        assert!(better(404, 500), "lowest class");
        assert!(better(408, 500), "a 4xx, even a timeout, over a 5xx");
        assert!(!better(404, 486), "ties keep the first");
        assert!(!better(500, 500));
    }
}
