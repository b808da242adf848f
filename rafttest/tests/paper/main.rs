//! Raft paper conformance: one test per rule of §5.1-§5.4 of "In Search of an Understandable
//! Consensus Algorithm", named for the rule. Most drive a single `Raft` with hand-made messages;
//! log-repair rules that need a whole cluster use `rafttest::Network`.

#[path = "../common/mod.rs"]
mod common;

mod s5_1_terms;
mod s5_2_election;
mod s5_3_replication;
mod s5_4_safety;

use common::*;
use raft_core::{Raft, StateRole};
use storage_mem::MemStorage;

/// A node of the cluster {1, 2, 3} in `role` at term 1 with its messages drained. A pre-candidate
/// has pre-vote on; nobody has check-quorum.
pub(crate) fn node_in_role(role: StateRole) -> Raft<MemStorage> {
    let mut cfg = config(1);
    cfg.pre_vote = role == StateRole::PreCandidate;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[], 0, 0));
    match role {
        StateRole::Follower => r.become_follower(1, 2),
        StateRole::Candidate => r.step(hup()).unwrap(),
        StateRole::PreCandidate => {
            r.become_follower(1, 0);
            r.step(hup()).unwrap();
        }
        StateRole::Leader => make_leader(&mut r, &[1, 2, 3]),
    }
    assert_eq!(r.state, role, "could not put the node in role {role:?}");
    assert_eq!(r.term, 1, "the node in role {role:?} is not at term 1");
    r.read_messages();
    r
}
