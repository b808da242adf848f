//! One library leads, the other follows: elections across libraries use the vote messages both
//! expect, and the leader's log replicates and applies identically on followers of the other
//! library.

use crate::support::{
    assert_all_applied, assert_everyone_follows, assert_no_refusals, propose_batch, propose_each,
    staggered, O, R,
};
use interop::{Lib, MixedCluster};
use raft_core::eraftpb::MessageType;

/// Node 1 campaigns and wins; 60 proposals (30 one by one, 30 in batches) commit and apply
/// identically on every node.
fn leader_replicates_to_other_library(libs: &[Lib]) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    assert_everyone_follows(&c, 1);
    let leader_term = c.node(1).term();
    let mut expected = propose_each(&mut c, 1, "one", 30);
    for round in 0..3 {
        expected.extend(propose_batch(&mut c, 1, &format!("batch{round}"), 10));
    }
    assert_all_applied(&c, &expected);
    for e in &c.node(1).applied {
        assert_eq!(e.term, leader_term, "entry {} has a foreign term", e.index);
    }
    // The leader's empty entry at index 1, then the proposals in order.
    let indexes: Vec<u64> = c.node(2).applied.iter().map(|e| e.index).collect();
    assert_eq!(indexes, (2..2 + expected.len() as u64).collect::<Vec<_>>());
    assert_no_refusals(&c);
}

#[test]
fn our_leader_replicates_to_raft_rs_followers() {
    leader_replicates_to_other_library(&[O, R, R]);
}

#[test]
fn raft_rs_leader_replicates_to_our_followers() {
    leader_replicates_to_other_library(&[R, O, O]);
}

/// The first message a follower of the other library gets from a new leader decodes into the
/// election it expects: the vote request carries last index/term and a term one above.
#[test]
fn elections_across_libraries_use_the_expected_vote_messages() {
    for libs in [[O, R, R], [R, O, O]] {
        let mut c = MixedCluster::new(&libs, staggered);
        c.campaign(1);
        let votes = c.delivered_of(MessageType::MsgRequestVote);
        assert_eq!(votes.len(), 2, "{libs:?}: one vote request per peer");
        for v in votes {
            assert_eq!((v.msg.term, v.msg.index, v.msg.log_term), (1, 0, 0));
        }
        let grants = c.delivered_of(MessageType::MsgRequestVoteResponse);
        assert!(
            grants.iter().all(|g| !g.msg.reject && g.msg.term == 1),
            "{libs:?}: both peers grant in term 1:\n{}",
            c.transcript()
        );
        assert_everyone_follows(&c, 1);
    }
}
