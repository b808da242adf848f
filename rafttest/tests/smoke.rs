//! Smoke test: a 3-node cluster elects a leader and replicates proposals from leader and follower.

use raft_core::StateRole;
use rafttest::Network;

#[test]
fn three_nodes_elect_and_replicate() {
    let mut net = Network::new(3);
    net.campaign(1);
    assert_eq!(net.node(1).state(), StateRole::Leader);
    for id in 1..=3 {
        assert_eq!(net.node(id).raw.raft.leader_id, 1);
        assert_eq!(net.node(id).applied_index, 1, "node {id}");
    }
    net.propose(1, b"a").unwrap();
    net.propose(2, b"b").unwrap();
    for id in 1..=3 {
        assert_eq!(
            net.node(id).applied_data(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
    }
}
