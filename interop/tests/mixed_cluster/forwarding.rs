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

/// Our follower's tracked proposals carry a stamp in the `MsgPropose` context (issue 18). A raft-rs
/// leader does not read it: it appends and commits them like any forwarded proposal and sends no
/// answer, so our follower's tracker waits until a later term's entry is applied and then
/// reports them unanswered (never a wrong outcome).
#[test]
fn tracked_proposals_at_our_follower_commit_at_a_raft_rs_leader_which_does_not_answer() {
    use raft_core::proposal::{ProposalOutcome, ProposalTracker, Proposed};
    let mut c = MixedCluster::new(&[R, O, O], staggered);
    c.campaign(1);
    let mut tracker = ProposalTracker::new();
    let mut expected = Vec::new();
    for i in 0..5 {
        let data = format!("tracked-{i}").into_bytes();
        let interop::Raw::Ours { raw, .. } = &mut c.node_mut(2).raw else {
            panic!("node 2 is ours");
        };
        match raw.propose_tracked(vec![], data.clone()) {
            Ok(Proposed::Forwarded {
                leader: 1,
                id,
                term,
            }) => tracker.track_forwarded(i, id, term),
            other => panic!("node 2 should forward to node 1: {other:?}"),
        }
        expected.push(data);
        c.stabilize();
    }
    let stamped = c.delivered_of(MessageType::MsgPropose);
    assert_eq!(stamped.len(), 5);
    assert!(stamped
        .iter()
        .all(|f| f.msg.context.starts_with(b"\xA6fwd")));
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
    let interop::Raw::Ours { raw, .. } = &mut c.node_mut(2).raw else {
        unreachable!()
    };
    assert!(
        raw.take_forward_answers().is_empty(),
        "raft-rs does not answer"
    );
    assert_eq!(
        tracker.len(),
        5,
        "still waiting while the raft-rs leader's term lasts"
    );
    let (term, before) = (raw.raft.term, raw.raft.raft_log.committed);
    // Leadership moves to node 3 (ours): node 2 applies an entry of its term, ending the wait.
    c.campaign(3);
    let interop::Raw::Ours { raw, storage } = &mut c.node_mut(2).raw else {
        unreachable!()
    };
    let committed = raw.raft.raft_log.committed;
    assert!(committed > before);
    let entries =
        raft_core::Storage::entries(storage, before + 1, committed + 1, u64::MAX).unwrap();
    assert!(entries.iter().any(|e| e.term > term));
    let outcomes = tracker.on_committed(&entries);
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes
        .iter()
        .all(|(_, o)| *o == ProposalOutcome::Unanswered { term }));
}
