//! Proposal forwarding: proposals at followers of one library reach a leader of the other and
//! commit everywhere.

use crate::support::{
    assert_all_applied, assert_no_refusals, propose_batch, propose_each, staggered, O, R,
};
use interop::{Lib, MixedCluster};
use raft_core::eraftpb::MessageType;

/// Proposals made at followers 2 and 3 (both of the other library) travel to leader 1 as
/// `MsgPropose` with term 0 (INTEROP.md) and commit everywhere.
fn follower_proposals_are_forwarded(libs: &[Lib]) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 2, "from-2", 5);
    expected.extend(propose_each(&mut c, 3, "from-3", 5));
    expected.extend(propose_batch(&mut c, 2, "batch-from-2", 5));
    let forwarded = c.delivered_of(MessageType::MsgPropose);
    assert_eq!(forwarded.len(), 15, "one forwarded proposal each");
    for f in &forwarded {
        assert_eq!(f.msg.to, 1, "forwarded to the leader");
        assert_eq!(f.msg.term, 0, "forwarded proposals carry term 0");
        assert_ne!(f.from_lib, f.to_lib, "the test must cross libraries");
    }
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

#[test]
fn proposal_at_raft_rs_follower_is_forwarded_to_our_leader_and_commits() {
    follower_proposals_are_forwarded(&[O, R, R]);
}

#[test]
fn proposal_at_our_follower_is_forwarded_to_raft_rs_leader_and_commits() {
    follower_proposals_are_forwarded(&[R, O, O]);
}
