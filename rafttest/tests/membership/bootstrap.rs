//! Joining a group bootstrapped with `MemStorage::bootstrap`: the membership is a snapshot at
//! index 1, so a node that starts with an empty storage gets it before any conf change and can
//! never mistake itself for the whole group (found by the raftkv example: replaying "add me" on an
//! empty membership made the joiner a group of one).

use raft_core::eraftpb::{ConfChange, ConfChangeType};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::MemStorage;

fn bootstrapped(voters: &[u64]) -> Network {
    let mut net = Network::new(voters.len() as u64);
    for &id in voters {
        let storage = MemStorage::bootstrap(voters.iter().copied(), []).expect("valid membership");
        net.nodes
            .insert(id, Network::start_node(&default_config(id), storage));
    }
    net
}

#[test]
fn a_joiner_with_an_empty_storage_learns_the_membership_from_the_bootstrap_snapshot() {
    let mut net = bootstrapped(&[1, 2, 3]);
    net.campaign(1);
    assert_eq!(net.leader(), Some(1));
    net.propose(1, b"before").unwrap();
    // Node 4 starts with nothing at all: no log, no membership.
    let storage = MemStorage::new();
    net.nodes
        .insert(4, Network::start_node(&default_config(4), storage));
    let add = ConfChange {
        change_type: ConfChangeType::AddNode as i32,
        node_id: 4,
        ..Default::default()
    };
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], add)
        .unwrap();
    net.stabilize();
    for _ in 0..3 {
        net.tick(1);
    }
    let joiner = net.node(4);
    assert!(
        joiner.snapshots_restored >= 1,
        "the log starts at index 2, so the joiner must be sent the bootstrap snapshot"
    );
    assert_eq!(
        joiner.conf_state().voters,
        vec![1, 2, 3, 4],
        "the joiner replays its addition on the bootstrap membership"
    );
    assert_eq!(net.node(4).applied_data(), net.node(1).applied_data());

    // Cut off, the joiner is one voter of four: it can never win alone.
    net.isolate(4);
    for _ in 0..100 {
        net.tick(4);
    }
    assert_ne!(
        net.node(4).state(),
        raft_core::StateRole::Leader,
        "an isolated voter of a four-node group must not elect itself"
    );
}
