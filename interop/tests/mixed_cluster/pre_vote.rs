//! Pre-vote across libraries: a partitioned node of one library does not disrupt a leader of the
//! other when it rejoins, with or without check-quorum.

use crate::support::{
    assert_all_applied, assert_everyone_follows, assert_no_refusals, propose_each, O, R,
};
use interop::{Lib, MixedCluster, NodeConfig, StateRole};
use raft_core::eraftpb::MessageType;

/// Leader 1 and node 2 run different libraries, in a 5-node cluster of alternating libraries, all
/// with pre-vote. Node 2 is cut off and ticked until it pre-campaigns repeatedly, then rejoins
/// exactly as it times out again, so its pre-vote reaches nodes of both libraries. It must not
/// bump its term while cut off, and must not depose the leader on rejoin (thesis §9.6): with
/// check-quorum the peers are in the leader's lease and ignore it; without, its log is behind
/// because the leader committed while it was away, so they refuse.
fn partitioned_node_does_not_disrupt_leader(libs: &[Lib; 5], check_quorum: bool) {
    let mut c = MixedCluster::new(libs, |id| NodeConfig {
        check_quorum,
        pre_vote: true,
        ..NodeConfig::staggered(id)
    });
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 3);
    let term = c.node(1).term();
    c.isolate(2);
    if !check_quorum {
        expected.extend(propose_each(&mut c, 1, "while-cut", 3));
    }
    let timeout = NodeConfig::staggered(2).election_timeout;
    for _ in 0..3 * timeout - 1 {
        c.tick_all();
    }
    let node2 = c.node(2);
    assert_eq!(
        (node2.role(), node2.term()),
        (StateRole::PreCandidate, term),
        "cut-off node 2 ({:?}) should be pre-campaigning in its old term",
        node2.lib()
    );

    c.recover();
    let mark = c.delivered.len();
    for _ in 0..3 * timeout {
        c.tick_all();
    }
    let pre_votes = c.delivered[mark..]
        .iter()
        .filter(|d| d.msg.msg_type == MessageType::MsgRequestPreVote as i32 && d.msg.from == 2)
        .count();
    assert!(
        pre_votes >= 4,
        "the test needs node 2's pre-vote to reach every peer after rejoining:\n{}",
        c.transcript()
    );
    let responses: Vec<_> = c.delivered[mark..]
        .iter()
        .filter(|d| d.msg.msg_type == MessageType::MsgRequestPreVoteResponse as i32)
        .collect();
    if check_quorum {
        // In the leader's lease, a pre-vote of a higher term is ignored without an answer.
        assert!(
            responses.is_empty(),
            "peers in the lease must ignore node 2's pre-vote:\n{}",
            c.transcript()
        );
    } else {
        // A rejection carries the responder's term, commit and the term at commit (INTEROP.md).
        assert!(!responses.is_empty(), "peers must answer node 2's pre-vote");
        for r in &responses {
            assert!(
                r.msg.reject && r.msg.term == term,
                "pre-vote of a stale log must be rejected in term {term}: {}",
                raft_proto::describe_message(&r.msg)
            );
            assert_eq!(
                (r.msg.commit, r.msg.commit_term),
                (c.node(1).commit(), term),
                "rejection from {} ({:?}) must carry its commit and the term there",
                r.msg.from,
                r.from_lib
            );
        }
    }
    assert_eq!(
        (c.leader(), c.node(1).term()),
        (Some(1), term),
        "node 2 ({:?}) disrupted leader 1 ({:?}):\n{}",
        c.lib(2),
        c.lib(1),
        c.transcript()
    );
    assert_everyone_follows(&c, 1);
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

#[test]
fn partitioned_raft_rs_node_does_not_disrupt_our_leader_with_pre_vote_and_check_quorum() {
    partitioned_node_does_not_disrupt_leader(&[O, R, O, R, O], true);
}

#[test]
fn partitioned_raft_rs_node_with_stale_log_does_not_disrupt_our_leader_with_pre_vote() {
    partitioned_node_does_not_disrupt_leader(&[O, R, O, R, O], false);
}

#[test]
fn partitioned_node_of_ours_does_not_disrupt_raft_rs_leader_with_pre_vote_and_check_quorum() {
    partitioned_node_does_not_disrupt_leader(&[R, O, R, O, R], true);
}

#[test]
fn partitioned_node_of_ours_with_stale_log_does_not_disrupt_raft_rs_leader_with_pre_vote() {
    partitioned_node_does_not_disrupt_leader(&[R, O, R, O, R], false);
}
