//! [`FrozenNode`]: a sleeping [`RawNode`] packed small, for processes that hold many groups.
//!
//! A quiesced group ([`RawNode::quiesce`]) does no work, but a live `RawNode` still holds its
//! empty buffers, its settings and its logger: most of its bytes. [`RawNode::freeze`] packs a
//! sleeping node with nothing in flight into a [`FrozenNode`] of about a third of the size, with
//! the settings and the membership shared through a [`FreezePool`]; [`FrozenNode::thaw`] gives
//! back exactly the node that was frozen, still asleep (same state, same logical clock, same
//! random sequence). A multi-raft driver freezes the groups that fall asleep and thaws one when
//! anything reaches it; `raft-multi` does.
//!
//! ```
//! use raft_core::{Config, FreezePool, RawNode};
//! use raft_core::eraftpb::{Message, MessageType};
//! use slog::{o, Discard, Logger};
//! use storage_mem::{conf_state, MemStorage};
//!
//! let logger = Logger::root(Discard, o!());
//! let store = MemStorage::new_with_conf_state(conf_state(vec![1, 2], vec![]));
//! let config = Config { id: 2, ..Config::default() };
//! let mut node = RawNode::new(&config, store, &logger).unwrap();
//!
//! // Node 1 leads term 1 and puts the group to sleep with its quiescing heartbeat.
//! let quiescing = Message {
//!     msg_type: MessageType::MsgHeartbeat as i32,
//!     from: 1,
//!     to: 2,
//!     term: 1,
//!     context: bytes::Bytes::from_static(b"\xA6quiesce"),
//!     ..Default::default()
//! };
//! node.step(quiescing).unwrap();
//! assert!(node.is_quiesced());
//! // The Ready carrying the new term is persisted first: nothing may be in flight.
//! let ready = node.ready().unwrap();
//! node.raft.raft_log.store.wl().set_hardstate(ready.hard_state().copied().unwrap());
//! node.advance(ready);
//!
//! let mut pool = FreezePool::new();
//! let frozen = node.freeze(&mut pool).ok().expect("asleep with nothing in flight");
//! assert_eq!((frozen.term(), frozen.leader_id()), (1, 1));
//!
//! let node = frozen.thaw(&logger);
//! assert!(node.is_quiesced());
//! assert_eq!(node.raft.term, 1);
//! ```

use slog::Logger;

pub use crate::raft::frozen::FreezePool;
use crate::raft::frozen::FrozenRaft;
use crate::storage::Storage;
use crate::{RawNode, SoftState, StateRole};

/// A sleeping [`RawNode`] with nothing in flight, packed: see the [module documentation](self).
pub struct FrozenNode<T: Storage> {
    raft: FrozenRaft<T>,
    last_number: u64,
    committed_handed_out: u64,
}

impl<T: Storage> RawNode<T> {
    /// Why [`RawNode::freeze`] would refuse now, or `None` if it would pack the node: the group
    /// must be asleep on this node ([`RawNode::quiesce`]) as its leader or a follower, with no
    /// Ready to hand out, none handed out and unacknowledged, and nothing in a buffer.
    pub fn freeze_blocker(&self) -> Option<&'static str> {
        if let Some(why) = self.raft.freeze_blocker() {
            return Some(why);
        }
        if !self.records.is_empty() {
            return Some("a Ready is not acknowledged");
        }
        if self.has_ready() {
            return Some("a Ready is waiting");
        }
        None
    }

    /// Packs this sleeping node small (see the [module documentation](crate::frozen)), sharing
    /// its settings and membership through `pool`; gives the node back unchanged if it cannot
    /// ([`RawNode::freeze_blocker`] says why). The logger is dropped: [`FrozenNode::thaw`] takes
    /// one.
    #[allow(clippy::result_large_err)]
    pub fn freeze(self, pool: &mut FreezePool) -> std::result::Result<FrozenNode<T>, RawNode<T>> {
        if self.freeze_blocker().is_some() {
            return Err(self);
        }
        Ok(FrozenNode {
            raft: self.raft.freeze(pool),
            last_number: self.last_number,
            committed_handed_out: self.committed_handed_out,
        })
    }
}

impl<T: Storage> FrozenNode<T> {
    /// The node that was frozen, asleep as it was, logging to `logger`. Thawing does not wake
    /// the group: whatever is then done to the node (a message, a proposal, `wake`) does.
    pub fn thaw(self, logger: &Logger) -> RawNode<T> {
        let raft = self.raft.thaw(logger);
        RawNode {
            prev_soft_state: raft.soft_state(),
            prev_hard_state: raft.hard_state(),
            raft,
            last_number: self.last_number,
            records: Vec::new(),
            committed_handed_out: self.committed_handed_out,
        }
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.raft.id()
    }

    /// The term it sleeps in.
    pub fn term(&self) -> u64 {
        self.raft.term
    }

    /// Whom it voted for in that term, or `INVALID_ID`.
    pub fn vote(&self) -> u64 {
        self.raft.vote
    }

    /// The leader it sleeps under (itself when it leads).
    pub fn leader_id(&self) -> u64 {
        self.raft.leader_id
    }

    /// Its role: leader or follower.
    pub fn role(&self) -> StateRole {
        self.raft.state
    }

    /// Its role and leader, as [`RawNode`]'s `soft_state` reports them.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.raft.leader_id,
            raft_state: self.raft.state,
        }
    }

    /// The commit index.
    pub fn committed(&self) -> u64 {
        self.raft.committed
    }

    /// The index of the last entry of its log.
    pub fn last_index(&self) -> u64 {
        self.raft.next_index - 1
    }

    /// The applied index.
    pub fn applied(&self) -> u64 {
        self.raft.applied
    }

    /// Whether `id` is a member of the group's configuration (a voter or a learner).
    pub fn is_member(&self, id: u64) -> bool {
        let conf = &*self.raft.conf;
        conf.voters.contains(id) || conf.learners.contains(&id) || conf.learners_next.contains(&id)
    }

    /// The storage it reads.
    pub fn store(&self) -> &T {
        &self.raft.store
    }
}
