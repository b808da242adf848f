//! Leadership transfer and ReadIndex across libraries (issue #5): a raft-rs leader transferring to
//! our follower, and our leader serving a raft-rs follower's read.

use crate::support::{
    assert_all_applied, assert_no_refusals, check_quorum_and_pre_vote, propose_each, staggered, O,
    R,
};
use interop::MixedCluster;
use raft_core::eraftpb::MessageType;

/// A raft-rs leader asked to hand leadership to our caught-up follower sends it `MsgTimeoutNow`;
/// INTEROP.md: the target campaigns at once, without pre-vote, with context `CampaignTransfer`
/// (so peers in the old leader's lease still answer), and wins the next term.
#[test]
fn raft_rs_leader_transfers_leadership_to_our_follower() {
    let mut c = MixedCluster::new(&[R, O, R], check_quorum_and_pre_vote);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 3);
    let term = c.node(1).term();
    match &mut c.node_mut(1).raw {
        interop::Raw::RaftRs { raw, .. } => raw.transfer_leader(2),
        interop::Raw::Ours { .. } => unreachable!("node 1 runs raft-rs"),
    }
    c.stabilize();
    let timeout_now = c.delivered_of(MessageType::MsgTimeoutNow);
    assert_eq!(
        timeout_now.len(),
        1,
        "raft-rs should send one MsgTimeoutNow to its caught-up follower:\n{}",
        c.transcript()
    );
    assert_eq!(
        c.leader(),
        Some(2),
        "our node 2 should have campaigned on MsgTimeoutNow and won; it got {} and the traffic \
         was:\n{}",
        raft_proto::describe_message(&timeout_now[0].msg),
        c.transcript()
    );
    assert_eq!(c.node(2).term(), term + 1);
    let votes = c.delivered_of(MessageType::MsgRequestVote);
    assert!(
        votes
            .iter()
            .filter(|v| v.msg.term > term)
            .all(|v| v.msg.context[..] == raft_core::raft::CAMPAIGN_TRANSFER[..]),
        "a transfer campaign carries the CampaignTransfer context:\n{}",
        c.transcript()
    );
    expected.extend(propose_each(&mut c, 2, "after", 3));
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

/// A raft-rs follower's `read_index` is forwarded to our leader as `MsgReadIndex` (term 0); the
/// leader confirms its leadership with a heartbeat round carrying the request context and answers
/// with `MsgReadIndexResp` at its commit index, which becomes a read state on the follower
/// (INTEROP.md "Heartbeats", thesis §6.4).
#[test]
fn raft_rs_follower_read_index_is_served_by_our_leader() {
    let mut c = MixedCluster::new(&[O, R, R], staggered);
    c.campaign(1);
    propose_each(&mut c, 1, "before", 3);
    let commit = c.node(1).commit();
    match &mut c.node_mut(2).raw {
        interop::Raw::RaftRs { raw, .. } => raw.read_index(b"read-ctx".to_vec()),
        interop::Raw::Ours { .. } => unreachable!("node 2 runs raft-rs"),
    }
    c.stabilize();
    let forwarded = c.delivered_of(MessageType::MsgReadIndex);
    assert_eq!(
        forwarded.len(),
        1,
        "raft-rs forwards the read to the leader"
    );
    assert_eq!(forwarded[0].msg.term, 0, "forwarded reads carry term 0");
    assert_eq!(
        c.node(2).read_states,
        vec![(commit, b"read-ctx".to_vec())],
        "our leader should answer the forwarded read at its commit index; traffic:\n{}",
        c.transcript()
    );
    assert_no_refusals(&c);
}
