//! The complete state of a node that a refused or failed call must leave unchanged, for the tests
//! that check "refused, so nothing changed" one input at a time (`rejected_inputs`,
//! `storage_fault_each_method`).

use raft_core::eraftpb::Message;
use raft_core::tracker::Progress;
use raft_core::{RawNode, StateRole, Storage};

/// Term, vote, role, the log and its cursors, pending messages, progress and read state.
#[derive(Debug, PartialEq)]
pub struct NodeState {
    /// The current term.
    pub term: u64,
    /// The vote in the current term (0 for none).
    pub vote: u64,
    /// Follower, candidate, pre-candidate or leader.
    pub role: StateRole,
    /// The leader the node knows of (0 for none).
    pub leader_id: u64,
    /// (index, term) of every entry from the first index to the last.
    pub log: Vec<(u64, u64)>,
    /// The commit index.
    pub committed: u64,
    /// The last index known to be persisted.
    pub persisted: u64,
    /// The last index handed out to apply.
    pub applying: u64,
    /// The last index applied.
    pub applied: u64,
    /// Messages queued to send now.
    pub msgs: Vec<Message>,
    /// Messages queued to send once the Ready's entries are persisted.
    pub msgs_after_append: Vec<Message>,
    /// The progress the node tracks for each peer.
    pub progress: Vec<(u64, Progress)>,
    /// How many read states wait to be taken.
    pub read_states: usize,
    /// The node leadership is being transferred to, if any.
    pub lead_transferee: Option<u64>,
    /// Whether a Ready is pending.
    pub has_ready: bool,
}

impl NodeState {
    /// What `raw` looks like now (every term in its log must be readable).
    pub fn of<T: Storage>(raw: &RawNode<T>) -> NodeState {
        let r = &raw.raft;
        let log = &r.raft_log;
        NodeState {
            term: r.term,
            vote: r.vote,
            role: r.state,
            leader_id: r.leader_id,
            log: (log.first_index()..=log.last_index())
                .map(|i| (i, log.term(i).expect("term readable")))
                .collect(),
            committed: log.committed,
            persisted: log.persisted,
            applying: log.applying,
            applied: log.applied,
            msgs: r.msgs.clone(),
            msgs_after_append: r.msgs_after_append.clone(),
            progress: r.prs.iter().map(|(id, pr)| (id, pr.clone())).collect(),
            read_states: r.read_states().len(),
            lead_transferee: r.lead_transferee,
            has_ready: raw.has_ready(),
        }
    }
}
