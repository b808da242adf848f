//! Helpers shared by the scenarios: the library shorthands, node configurations, proposing, and
//! the assertions every scenario ends with.

use interop::{Lib, MixedCluster, NodeConfig, StateRole};

/// Shorthand for a node of ours in a cluster's library list.
pub const O: Lib = Lib::Ours;
/// Shorthand for a raft-rs node in a cluster's library list.
pub const R: Lib = Lib::RaftRs;

/// No check-quorum, no pre-vote, election timeouts staggered by id ([`NodeConfig::staggered`]).
pub fn staggered(id: u64) -> NodeConfig {
    NodeConfig::staggered(id)
}

/// Check-quorum and pre-vote on, election timeouts staggered by id.
pub fn check_quorum_and_pre_vote(id: u64) -> NodeConfig {
    NodeConfig {
        check_quorum: true,
        pre_vote: true,
        ..NodeConfig::staggered(id)
    }
}

/// A payload that names where and when it was proposed.
fn payload(tag: &str, i: usize) -> Vec<u8> {
    format!("{tag}-{i}").into_bytes()
}

/// Proposes `count` payloads at node `at`, one delivery round each, asserting each is accepted.
pub fn propose_each(c: &mut MixedCluster, at: u64, tag: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let data = payload(tag, i);
            let result = c.propose(at, &data);
            assert!(
                result.is_ok(),
                "node {at} ({:?}) refused proposal {tag}-{i}: {result:?}",
                c.lib(at)
            );
            data
        })
        .collect()
}

/// Proposes `count` payloads at node `at` before delivering anything, so they travel in batches.
pub fn propose_batch(c: &mut MixedCluster, at: u64, tag: &str, count: usize) -> Vec<Vec<u8>> {
    let batch: Vec<Vec<u8>> = (0..count).map(|i| payload(tag, i)).collect();
    for data in &batch {
        let result = c.node_mut(at).propose(data);
        assert!(
            result.is_ok(),
            "node {at} refused a batched proposal: {result:?}"
        );
    }
    c.stabilize();
    batch
}

/// No node refused a message: a refusal between libraries means they disagree about the protocol.
pub fn assert_no_refusals(c: &MixedCluster) {
    let refusals: Vec<String> = c.refusals.iter().map(|r| r.to_string()).collect();
    assert!(
        refusals.is_empty(),
        "messages were refused:\n{}",
        refusals.join("\n")
    );
}

/// Node `leader` leads, and every node (itself included) follows it in its term.
pub fn assert_everyone_follows(c: &MixedCluster, leader: u64) {
    let term = c.node(leader).term();
    assert_eq!(
        c.node(leader).role(),
        StateRole::Leader,
        "node {leader} ({:?}) should lead",
        c.lib(leader)
    );
    for id in c.ids() {
        let node = c.node(id);
        assert_eq!(
            (node.leader_id(), node.term()),
            (leader, term),
            "node {id} ({:?}) should follow node {leader} in term {term}",
            node.lib()
        );
    }
}

/// Every node applied exactly `expected` (after the leaders' empty entries), at the same indexes
/// and terms, and all logs are identical.
pub fn assert_all_applied(c: &MixedCluster, expected: &[Vec<u8>]) {
    let ids = c.ids();
    c.assert_logs_identical(&ids);
    c.assert_applied_identical(&ids);
    for id in &ids {
        let node = c.node(*id);
        assert_eq!(
            node.applied_data(),
            expected,
            "node {id} ({:?}) applied the wrong payloads",
            node.lib()
        );
        assert_eq!(
            node.commit(),
            node.last_index(),
            "node {id} ({:?}) has uncommitted entries at quiescence",
            node.lib()
        );
        assert_eq!(
            node.applied_index,
            node.commit(),
            "node {id} ({:?}) did not apply everything committed",
            node.lib()
        );
    }
}
