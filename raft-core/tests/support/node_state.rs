//! The part of a node's state that a refused or failed call must leave unchanged, shared by the
//! test crates that check "refused, so nothing changed" (`rejected_inputs`,
//! `storage_fault_each_method`).

use raft_core::eraftpb::Message;
use raft_core::tracker::Progress;
use raft_core::{RawNode, StateRole, Storage};

/// Term, vote, role, the log and its cursors, pending messages, progress and read state.
#[derive(Debug, PartialEq)]
pub struct NodeState {
    pub term: u64,
    pub vote: u64,
    pub role: StateRole,
    pub leader_id: u64,
    /// (index, term) of every entry from the first index to the last.
    pub log: Vec<(u64, u64)>,
    pub committed: u64,
    pub persisted: u64,
    pub applying: u64,
    pub applied: u64,
    pub msgs: Vec<Message>,
    pub msgs_after_append: Vec<Message>,
    pub progress: Vec<(u64, Progress)>,
    pub read_states: usize,
    pub lead_transferee: Option<u64>,
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
