//! The fate of each proposal, without timeouts: [`RawNode::propose_tracked`] says where a
//! proposal went, and a [`ProposalTracker`] turns the committed entries the application applies
//! (and the leaders' answers to forwarded proposals) into one [`ProposalOutcome`] per proposal,
//! in the spirit of hashicorp/raft's `ApplyFuture` but without threads.
//!
//! The rule behind it: an entry is named by its (index, term), since only one leader ever
//! existed in a term and it appended each index once. When the entry committed at that index has
//! that term, the proposal is committed; when it has another term, the proposal was overwritten
//! by a later leader and will never be applied anywhere (no other copy of it exists at another
//! index). Committed entries are handed out in index order, so every tracked proposal is decided
//! as soon as the application applies its index, whichever node leads by then.
//!
//! # Proposals made on a follower
//!
//! A follower forwards a tracked proposal to its leader with a *stamp*: its own id for the
//! proposal and the leader's term ([`Proposed::Forwarded`]). Only the leader of that term may
//! append it, and it answers where it did (its index), or that it did not; any other node that
//! holds it answers that it was not appended. The application takes the answers with
//! [`RawNode::take_forward_answers`] and gives them to the tracker
//! ([`ProposalTracker::on_forward_answers`]); an appended proposal is then decided by its (index,
//! term) like a leader's own. The stamp and the answer travel in the `context` of a `MsgPropose`,
//! which raft-rs neither reads nor sends, so the wire stays raft-rs's.
//!
//! A proposal or an answer can be lost on the way, and a raft-rs leader does not answer. The
//! tracker then decides [`ProposalOutcome::Unanswered`] once the application applies an entry of
//! a later term: by then the leader of the stamp's term can no longer commit anything new, but
//! whether it committed this proposal is known only to the state machine (an application that must
//! know identifies its writes, Raft thesis §6.3, or proposes on the leader).
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
//!             Proposed::Forwarded { id, term, .. } => {
//!                 tracker.track_forwarded("client 7, write 1", id, term)
//!             }
//!         }
//!     }
//!     // After stepping messages: the leaders' answers to proposals forwarded from here.
//!     outcomes.extend(tracker.on_forward_answers(node.take_forward_answers()));
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

mod tracker;

pub use tracker::ProposalTracker;

use crate::error::{Error, Result};
use crate::raft::{StateRole, INVALID_ID};
use crate::raw_node::RawNode;
use crate::storage::Storage;
use raft_proto::eraftpb::{Entry, Message, MessageType};
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
    /// This node follows and forwarded it to `leader`, the leader of `term`, stamped with `id`:
    /// track it with [`ProposalTracker::track_forwarded`].
    Forwarded {
        /// The leader it was sent to.
        leader: u64,
        /// This node's id for it, which the leader's answer names.
        id: u64,
        /// The term of the leader it was sent to: no other leader appends it.
        term: u64,
    },
}

/// A leader's answer to a proposal this node forwarded ([`Proposed::Forwarded`]), taken with
/// [`RawNode::take_forward_answers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAnswer {
    /// The leader of `term` appended it at `index`.
    Appended {
        /// The id the proposal was forwarded with.
        id: u64,
        /// The term of the leader that appended it (the stamp's).
        term: u64,
        /// The index of its entry.
        index: u64,
    },
    /// It was not appended and never will be: the leader of `term` refused it (it no longer
    /// leads, a transfer is under way, the uncommitted-size limit is reached, a conf change is
    /// refused), or a node on the way found no leader of that term to pass it to.
    NotAppended {
        /// The id the proposal was forwarded with.
        id: u64,
        /// The stamp's term.
        term: u64,
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
    /// A forwarded proposal that was never appended ([`ForwardAnswer::NotAppended`]): it will
    /// never be applied anywhere. Safe to retry.
    NotAppended {
        /// The term of the leader it was forwarded to.
        term: u64,
    },
    /// A forwarded proposal whose answer did not come before the application applied an entry
    /// of a later term: the proposal or the answer was lost, or the leader does not answer
    /// (raft-rs). It may have been committed in `term`; only the state machine can tell.
    Unanswered {
        /// The term of the leader it was forwarded to.
        term: u64,
    },
}

impl<T: Storage> RawNode<T> {
    /// [`RawNode::propose`], saying where the proposal went: appended at (index, term) on a
    /// leader, forwarded with a stamp on a follower (see the [module docs](crate::proposal)).
    /// Errors as `propose` (`Error::ProposalDropped` when no leader can take it now: none is
    /// known, forwarding is off, a transfer is under way, the uncommitted-size limit is reached).
    pub fn propose_tracked(&mut self, context: Vec<u8>, data: Vec<u8>) -> Result<Proposed> {
        if self.raft.state == StateRole::Leader {
            return self.appended(|node| node.propose(context, data));
        }
        self.forward_tracked(Entry {
            data: data.into(),
            context: context.into(),
            ..Default::default()
        })
    }

    /// [`RawNode::propose_conf_change`], saying where the proposal went (see
    /// [`RawNode::propose_tracked`]).
    pub fn propose_conf_change_tracked(
        &mut self,
        context: Vec<u8>,
        cc: impl ConfChangeI,
    ) -> Result<Proposed> {
        if self.raft.state == StateRole::Leader {
            return self.appended(|node| node.propose_conf_change(context, cc));
        }
        self.forward_tracked(Entry {
            entry_type: cc.entry_type() as i32,
            data: cc.encode_to_bytes(),
            context: context.into(),
            ..Default::default()
        })
    }

    /// The leaders' answers to the proposals this node forwarded, received since the last call
    /// (in arrival order; give them to [`ProposalTracker::on_forward_answers`]). Call it after
    /// stepping messages, before handing the committed entries of the next `Ready` to the
    /// tracker, so that an answer is not overtaken by the end of its term.
    pub fn take_forward_answers(&mut self) -> Vec<ForwardAnswer> {
        self.raft.take_forward_answers()
    }

    fn appended(&mut self, propose: impl FnOnce(&mut Self) -> Result<()>) -> Result<Proposed> {
        let before = self.raft.raft_log.last_index();
        propose(self)?;
        let last = self.raft.raft_log.last_index();
        if last > before {
            return Ok(Proposed::Appended {
                index: last,
                term: self.raft.term,
            });
        }
        // A leader's accepted proposal is in its log: nothing else can happen.
        Err(Error::Invariant("an accepted proposal was not appended"))
    }

    fn forward_tracked(&mut self, entry: Entry) -> Result<Proposed> {
        let stamp = (self.raft.state == StateRole::Follower && self.raft.leader_id != INVALID_ID)
            .then(|| self.raft.new_stamp(&entry));
        self.raft.step(Message {
            msg_type: MessageType::MsgPropose as i32,
            from: self.raft.id,
            entries: vec![entry],
            context: stamp.map(|s| s.encode()).unwrap_or_default(),
            ..Default::default()
        })?;
        let stamp = stamp.ok_or(Error::Invariant(
            "a proposal was forwarded without a leader",
        ))?;
        Ok(Proposed::Forwarded {
            leader: self.raft.leader_id,
            id: stamp.id,
            term: stamp.term,
        })
    }
}

#[cfg(test)]
mod tests;
