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

#[test]
fn describe_ready_lists_each_part_of_a_new_leaders_ready() {
    use raft_core::{describe_ready, Config, RawNode};
    use storage_mem::{conf_state, MemStorage};
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2], vec![]));
    let mut node = RawNode::new(&Config::new(1), storage, &logger).unwrap();
    node.campaign().unwrap();
    let rd = node.ready().unwrap();
    assert_eq!(
        describe_ready(&rd),
        "Lead:0 State:Candidate\n\
         HardState Term:1 Vote:1 Commit:0\n\
         PersistedMessages:\n  1->2 MsgRequestVote Term:1 Log:0/0\n\
         MustSync"
    );
    node.advance(rd).unwrap();
    assert_eq!(describe_ready(&node.ready().unwrap()), "<empty Ready>");
}
