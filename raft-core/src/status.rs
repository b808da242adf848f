//! [`Status`] and [`BasicStatus`]: what an application or operator may want to know about a node.

use crate::raft::{Raft, SoftState};
use crate::storage::Storage;
use crate::tracker::Progress;
use raft_proto::eraftpb::HardState;

/// A node's state without its peers' progress: cheap enough to read on every request (it is
/// `Copy` and built without allocating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicStatus {
    /// The node's id.
    pub id: u64,
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// Leader and role.
    pub soft_state: SoftState,
    /// The applied index the application reported.
    pub applied: u64,
    /// The node leadership is being transferred to, if any.
    pub lead_transferee: Option<u64>,
}

impl BasicStatus {
    /// The basic status of `raft`.
    pub fn new<T: Storage>(raft: &Raft<T>) -> BasicStatus {
        BasicStatus {
            id: raft.id,
            hard_state: raft.hard_state(),
            soft_state: raft.soft_state(),
            applied: raft.raft_log.applied,
            lead_transferee: raft.lead_transferee,
        }
    }
}

/// A node's state, with every member's replication progress when the node leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Everything in [`BasicStatus`].
    pub basic: BasicStatus,
    /// Each member's progress, by id, on a leader; empty on other nodes (whose view of their
    /// peers' logs is meaningless).
    pub progress: Vec<(u64, Progress)>,
}

impl Status {
    /// The status of `raft`.
    pub fn new<T: Storage>(raft: &Raft<T>) -> Status {
        let progress = if raft.is_leader() {
            raft.prs.iter().map(|(id, pr)| (id, pr.clone())).collect()
        } else {
            Vec::new()
        };
        Status {
            basic: BasicStatus::new(raft),
            progress,
        }
    }
}
