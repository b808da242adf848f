//! The fate of each proposal, without timeouts: [`RawNode::propose_tracked`] says where a
//! leader appended a proposal, and a [`ProposalTracker`] turns the committed entries the
//! application applies into one [`ProposalOutcome`] per proposal, in the spirit of hashicorp/raft's
//! `ApplyFuture` but without threads.
//!
//! The rule behind it: an entry is named by its (index, term), since only one leader ever
//! existed in a term and it appended each index once. When the entry committed at that index has
//! that term, the proposal is committed; when it has another term, the proposal was overwritten
//! by a later leader and will never be applied anywhere (no other copy of it exists at another
//! index). Committed entries are handed out in index order, so every tracked proposal is decided
//! as soon as the application applies its index, whichever node leads by then.
//!
//! Proposals made on a follower are forwarded to the leader ([`Proposed::Forwarded`]); where the
//! leader puts them is not reported back on raft-rs's wire, so they cannot be tracked by index.
//! Applications that need every outcome propose on the leader (with
//! `Config::disable_proposal_forwarding`, a follower refuses at once with
//! `Error::ProposalDropped`), or identify their writes in the entry (a client id and sequence
//! number, Raft thesis §6.3).
//!
//! ```
//! use raft_core::proposal::{ProposalOutcome, ProposalTracker, Proposed};
//! use raft_core::{Config, RawNode};
//! use storage_mem::MemStorage;
//!
//! # fn main() -> Result<(), raft_core::Error> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let storage = MemStorage::bootstrap([1], [])?;
//! let mut node = RawNode::new(&Config::new(1), storage.clone(), &logger)?;
//! node.campaign()?;
//! let mut tracker = ProposalTracker::new();
//! let mut outcomes = Vec::new();
//! for round in 0..3 {
//!     if round == 1 {
//!         match node.propose_tracked(vec![], b"x=1".to_vec())? {
//!             Proposed::Appended { index, term } => tracker.track("client 7, write 1", index, term),
//!             Proposed::Forwarded { .. } => unreachable!("a single voter leads"),
//!         }
//!     }
//!     while node.has_ready() {
//!         let mut rd = node.ready()?;
//!         storage.wl().append(rd.entries())?;
//!         if let Some(hs) = rd.hard_state() {
//!             storage.wl().set_hardstate(*hs);
//!         }
//!         let committed = rd.take_committed_entries();
//!         outcomes.extend(tracker.on_committed(&committed)); // after applying them
//!         let mut light = node.advance(rd)?;
//!         outcomes.extend(tracker.on_committed(&light.take_committed_entries()));
//!         node.advance_apply();
//!     }
//! }
//! assert_eq!(
//!     outcomes,
//!     vec![("client 7, write 1", ProposalOutcome::Committed { index: 3, term: 2 })]
//! );
//! assert!(tracker.is_empty());
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;

use crate::error::Result;
use crate::raft::StateRole;
use crate::raw_node::RawNode;
use crate::storage::Storage;
use raft_proto::eraftpb::Entry;
use raft_proto::ConfChangeI;

/// Where a proposal went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposed {
    /// This node leads and appended it at (index, term): track it with
    /// [`ProposalTracker::track`].
    Appended {
        /// The index of its entry.
        index: u64,
        /// The term of its entry (this leader's).
        term: u64,
    },
    /// This node follows and forwarded it to `leader`; its outcome is not tracked by index.
    Forwarded {
        /// The leader it was sent to.
        leader: u64,
    },
}

/// What became of a tracked proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// Committed at (index, term): applied by every member in log order.
    Committed {
        /// The index of its entry.
        index: u64,
        /// The term of its entry.
        term: u64,
    },
    /// Overwritten by a later leader: another entry (of term `committed_term`) was committed at
    /// its index, and the proposal will never be applied anywhere. Safe to retry.
    Dropped {
        /// The index it had been appended at.
        index: u64,
        /// The term it had been appended in.
        term: u64,
        /// The term of the entry committed there instead.
        committed_term: u64,
    },
    /// A snapshot of a later term replaced the log past its index before its entry was handed
    /// out here, so the log cannot tell whether it was committed; only the state machine can
    /// (an application that must know identifies its writes, Raft thesis §6.3).
    Unknown {
        /// The index it had been appended at.
        index: u64,
        /// The term it had been appended in.
        term: u64,
    },
}

/// Pending proposals by (index, term), decided by the committed entries the application applies.
///
/// Pure bookkeeping, owned by the application next to its state machine (it is lost with it in a
/// crash, like any callback waiting on a proposal). `K` is whatever the application answers to: a
/// channel, a request id.
#[derive(Debug)]
pub struct ProposalTracker<K> {
    /// Ordered by index: a leader appends in index order, and a later leader's proposals start
    /// after what it holds, which includes every committed index.
    pending: VecDeque<(u64, u64, K)>,
}

impl<K> Default for ProposalTracker<K> {
    fn default() -> Self {
        ProposalTracker {
            pending: VecDeque::new(),
        }
    }
}

impl<K> ProposalTracker<K> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tracks `key`, a proposal appended at (index, term) ([`Proposed::Appended`]).
    ///
    /// A proposal at an index at or below one tracked already comes from a later leader that
    /// overwrote the uncommitted tail (this node lost leadership and won it back): the tracked
    /// ones from there on can no longer commit with their terms, but they are decided as usual,
    /// when their index is applied.
    pub fn track(&mut self, key: K, index: u64, term: u64) {
        let at = self.pending.partition_point(|(i, ..)| *i <= index);
        self.pending.insert(at, (index, term, key));
    }

    /// How many proposals wait for their outcome.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no proposal waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Decides the proposals whose indexes `entries` (committed entries, in the order handed out)
    /// cover. Call it with every batch of committed entries the application applies.
    pub fn on_committed(&mut self, entries: &[Entry]) -> Vec<(K, ProposalOutcome)> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Vec::new();
        };
        self.decide(first.index, last.index, |index| {
            entries
                .get((index - first.index) as usize)
                .filter(|e| e.index == index)
                .map(|e| e.term)
        })
    }

    /// [`ProposalTracker::on_committed`] for an application that kept only the (index, term) of
    /// each committed entry it applied, in order.
    pub fn on_committed_ids(&mut self, ids: &[(u64, u64)]) -> Vec<(K, ProposalOutcome)> {
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Vec::new();
        };
        self.decide(first.0, last.0, |index| {
            ids.get((index - first.0) as usize)
                .filter(|(i, _)| *i == index)
                .map(|(_, t)| *t)
        })
    }

    /// Decides the proposals up to `last`, given the term committed at each index from `first`
    /// on (`term_at`, called only with indexes in `first..=last`).
    fn decide(
        &mut self,
        first: u64,
        last: u64,
        term_at: impl Fn(u64) -> Option<u64>,
    ) -> Vec<(K, ProposalOutcome)> {
        let mut outcomes = Vec::new();
        while let Some((index, term, _)) = self.pending.front() {
            let (index, term) = (*index, *term);
            if index > last {
                break;
            }
            let (.., key) = self.pending.pop_front().expect("a front entry");
            let committed_term = if index >= first { term_at(index) } else { None };
            let outcome = match committed_term {
                Some(t) if t == term => ProposalOutcome::Committed { index, term },
                Some(committed_term) => ProposalOutcome::Dropped {
                    index,
                    term,
                    committed_term,
                },
                // Below this batch: handed out before it was tracked (not by this node's log).
                None => ProposalOutcome::Unknown { index, term },
            };
            outcomes.push((key, outcome));
        }
        outcomes
    }

    /// Decides the proposals a snapshot at (index, term) covers, when the application restores
    /// it (`Ready::snapshot`): the log up to it is replaced, so their entries are not handed out.
    /// A proposal of the snapshot's term is committed (the leader of that term created the
    /// snapshot's last entry after it); one of an older term is decided only by the state
    /// machine ([`ProposalOutcome::Unknown`]); one of a later term cannot be below the snapshot
    /// and is dropped.
    pub fn on_snapshot(&mut self, index: u64, term: u64) -> Vec<(K, ProposalOutcome)> {
        let mut outcomes = Vec::new();
        while self.pending.front().is_some_and(|(i, ..)| *i <= index) {
            let (i, t, key) = self.pending.pop_front().expect("a front entry");
            let outcome = if t == term {
                ProposalOutcome::Committed { index: i, term: t }
            } else if t < term {
                ProposalOutcome::Unknown { index: i, term: t }
            } else {
                ProposalOutcome::Dropped {
                    index: i,
                    term: t,
                    committed_term: term,
                }
            };
            outcomes.push((key, outcome));
        }
        outcomes
    }
}

impl<T: Storage> RawNode<T> {
    /// [`RawNode::propose`], saying where the proposal went: appended at (index, term) on a
    /// leader, forwarded on a follower. Errors as `propose` (`Error::ProposalDropped` when no
    /// leader can take it now: none is known, forwarding is off, a transfer is under way, the
    /// uncommitted-size limit is reached).
    pub fn propose_tracked(&mut self, context: Vec<u8>, data: Vec<u8>) -> Result<Proposed> {
        self.tracked(|node| node.propose(context, data))
    }

    /// [`RawNode::propose_conf_change`], saying where the proposal went (see
    /// [`RawNode::propose_tracked`]).
    pub fn propose_conf_change_tracked(
        &mut self,
        context: Vec<u8>,
        cc: impl ConfChangeI,
    ) -> Result<Proposed> {
        self.tracked(|node| node.propose_conf_change(context, cc))
    }

    fn tracked(&mut self, propose: impl FnOnce(&mut Self) -> Result<()>) -> Result<Proposed> {
        let leader = self.raft.state == StateRole::Leader;
        let before = self.raft.raft_log.last_index();
        propose(self)?;
        let last = self.raft.raft_log.last_index();
        if leader && last > before {
            return Ok(Proposed::Appended {
                index: last,
                term: self.raft.term,
            });
        }
        Ok(Proposed::Forwarded {
            leader: self.raft.leader_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn each_proposal_is_decided_once_by_the_entry_committed_at_its_index() {
        let mut t = ProposalTracker::new();
        t.track('a', 5, 2);
        t.track('b', 6, 2);
        t.track('c', 7, 2);
        assert_eq!(t.on_committed(&[e(4, 1)]), vec![], "nothing tracked yet");
        assert_eq!(
            t.on_committed(&[e(5, 2), e(6, 3)]),
            vec![
                ('a', ProposalOutcome::Committed { index: 5, term: 2 }),
                (
                    'b',
                    ProposalOutcome::Dropped {
                        index: 6,
                        term: 2,
                        committed_term: 3
                    }
                ),
            ]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.on_committed(&[]), vec![]);
        assert_eq!(
            t.on_committed(&[e(7, 3), e(8, 3)]),
            vec![(
                'c',
                ProposalOutcome::Dropped {
                    index: 7,
                    term: 2,
                    committed_term: 3
                }
            )]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_proposal_at_an_index_already_tracked_keeps_index_order() {
        let mut t = ProposalTracker::new();
        t.track('a', 5, 2);
        t.track('b', 6, 2);
        // Leading again in term 4 after losing entries 5 and 6 of term 2.
        t.track('c', 5, 4);
        let outcomes = t.on_committed(&[e(5, 4), e(6, 4)]);
        assert_eq!(
            outcomes,
            vec![
                (
                    'a',
                    ProposalOutcome::Dropped {
                        index: 5,
                        term: 2,
                        committed_term: 4
                    }
                ),
                ('c', ProposalOutcome::Committed { index: 5, term: 4 }),
                (
                    'b',
                    ProposalOutcome::Dropped {
                        index: 6,
                        term: 2,
                        committed_term: 4
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_snapshot_decides_what_its_term_can_tell() {
        let mut t = ProposalTracker::new();
        t.track('a', 5, 2);
        t.track('b', 6, 3);
        t.track('c', 7, 4);
        t.track('d', 9, 3);
        assert_eq!(
            t.on_snapshot(7, 3),
            vec![
                ('a', ProposalOutcome::Unknown { index: 5, term: 2 }),
                ('b', ProposalOutcome::Committed { index: 6, term: 3 }),
                (
                    'c',
                    ProposalOutcome::Dropped {
                        index: 7,
                        term: 4,
                        committed_term: 3
                    }
                ),
            ]
        );
        assert_eq!(t.len(), 1, "index 9 is past the snapshot");
    }

    #[test]
    fn a_proposal_below_the_batch_handed_out_is_unknown() {
        let mut t = ProposalTracker::new();
        t.track('a', 3, 1);
        assert_eq!(
            t.on_committed(&[e(5, 2)]),
            vec![('a', ProposalOutcome::Unknown { index: 3, term: 1 })]
        );
    }

    #[test]
    fn ids_decide_as_entries_do() {
        let mut by_entries = ProposalTracker::new();
        let mut by_ids = ProposalTracker::new();
        for t in [&mut by_entries, &mut by_ids] {
            t.track('a', 5, 2);
            t.track('b', 6, 2);
        }
        let batch = [e(5, 2), e(6, 3)];
        let ids: Vec<(u64, u64)> = batch.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(
            by_entries.on_committed(&batch),
            by_ids.on_committed_ids(&ids)
        );
        assert!(by_ids.is_empty());
    }
}
