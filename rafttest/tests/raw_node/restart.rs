//! Restarting a node from `MemStorage` with `Config::applied`: restored state, committed entries
//! handed out again above `applied`, and rejoining the cluster.

use crate::harness::*;
use raft_core::eraftpb::MessageType;
use raft_core::{Config, Error, RawNode, StateRole, Storage, NO_LIMIT};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// Restarts.
// ---------------------------------------------------------------------------------------------

/// A 3-node network where node 1 leads term 1 and indexes 1..=6 are committed and applied
/// everywhere (the empty entry and "p1".."p5").
fn committed_network() -> Network {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 1..=5 {
        net.propose(1, format!("p{i}").as_bytes()).unwrap();
    }
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_index, 6, "node {id}");
        assert_eq!(
            net.node(id).storage.rl().hard_state().commit,
            6,
            "node {id}"
        );
    }
    net
}

fn restart_from(storage: &MemStorage, id: u64, applied: u64) -> Peer {
    let cfg = Config {
        applied,
        ..default_config(id)
    };
    let mut p = Peer::start(&cfg, storage.clone());
    p.handed_out = storage.entries(1, applied + 1, NO_LIMIT).unwrap();
    p
}

#[test]
fn restart_restores_term_vote_commit_and_log() {
    let net = committed_network();
    for id in 1..=3 {
        let p = restart_from(&net.node(id).storage, id, 0);
        let raft = &p.node.raft;
        assert_eq!(raft.term, 1, "node {id} term");
        assert_eq!(raft.vote, 1, "node {id} voted for 1 in term 1");
        assert_eq!(raft.raft_log.committed, 6, "node {id} commit");
        assert_eq!(raft.raft_log.last_index(), 6, "node {id} last index");
        assert_eq!(raft.raft_log.last_term(), 1, "node {id} last term");
        assert_eq!(
            raft.state,
            StateRole::Follower,
            "node {id} restarts as a follower"
        );
        assert_eq!(
            raft.leader_id, 0,
            "node {id} knows no leader after a restart"
        );
        assert_eq!(raft.hard_state(), hs(1, 1, 6));
    }
}

#[test]
fn restart_with_applied_zero_hands_out_committed_entries_again_exactly_once() {
    let net = committed_network();
    let mut p = restart_from(&net.node(2).storage, 2, 0);
    assert!(p.node.has_ready());
    let rd = p.ready();
    assert_eq!(rd.number(), 1, "a new RawNode numbers its Readys from 1");
    assert_eq!(indexes(rd.committed_entries()), (1..=6).collect::<Vec<_>>());
    assert_eq!(
        payloads(rd.committed_entries()),
        net.node(2).applied_data(),
        "the same entries as before the restart"
    );
    assert_eq!(rd.hard_state(), None, "the restored hard state is not news");
    assert_eq!(rd.soft_state(), None);
    assert!(rd.entries().is_empty());
    assert!(!rd.must_sync());
    assert!(rd.messages().is_empty() && rd.persisted_messages().is_empty());
    p.process(rd);
    assert!(!p.node.has_ready(), "nothing is handed out twice");
    assert_eq!(p.handed_out.len(), 6);
}

#[test]
fn restart_does_not_hand_out_entries_at_or_below_applied() {
    let net = committed_network();
    let mut p = restart_from(&net.node(3).storage, 3, 4);
    let rd = p.ready();
    assert_eq!(indexes(rd.committed_entries()), vec![5, 6]);
    p.process(rd);
    assert!(!p.node.has_ready());
    assert_eq!(p.node.raft.raft_log.applied, 6);
}

#[test]
fn restart_with_everything_applied_has_no_ready() {
    let net = committed_network();
    let p = restart_from(&net.node(1).storage, 1, 6);
    assert!(
        !p.node.has_ready(),
        "a node restarted with everything applied has nothing to do"
    );
    assert_eq!(p.node.raft.raft_log.applied, 6);
}

#[test]
fn restart_pages_committed_entries_again_with_max_committed_size_per_ready() {
    let net = committed_network();
    let cfg = Config {
        max_committed_size_per_ready: 1,
        ..default_config(2)
    };
    let mut p = Peer::start(&cfg, net.node(2).storage.clone());
    let pages = collect_pages(&mut p);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![1; 6]);
    assert_eq!(
        pages.iter().flat_map(|pg| indexes(pg)).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<u64>>()
    );
}

#[test]
fn restart_with_applied_beyond_commit_is_a_config_error_naming_applied() {
    let net = committed_network();
    let cfg = Config {
        applied: 7,
        ..default_config(1)
    };
    match RawNode::new(&cfg, net.node(1).storage.clone(), &logger()).err() {
        Some(Error::ConfigInvalid { field, .. }) => assert_eq!(field, "applied"),
        other => panic!("expected ConfigInvalid naming `applied`, got {other:?}"),
    }
    // A fresh storage has commit 0: any positive `applied` is beyond it.
    let fresh = MemStorage::new_with_conf_state(conf_state(vec![1], vec![]));
    let cfg = Config {
        applied: 1,
        ..default_config(1)
    };
    assert!(matches!(
        RawNode::new(&cfg, fresh, &logger()).err(),
        Some(Error::ConfigInvalid {
            field: "applied",
            ..
        })
    ));
}

#[test]
fn restarted_voter_keeps_its_vote_for_the_term() {
    let net = committed_network();
    let mut p = restart_from(&net.node(2).storage, 2, 6);
    // §5.2: at most one vote per term, even across a crash.
    p.step(vote_request(3, 2, 1, (6, 1)));
    let rd = p.ready();
    let replies = rd.persisted_messages().to_vec();
    assert_eq!(
        types(&replies),
        vec![(MessageType::MsgRequestVoteResponse, 3)]
    );
    assert!(
        replies[0].reject,
        "node 2 voted for 1 in term 1 before restarting"
    );
    p.process(rd);
    // The same candidate in a new term gets the vote: the refusal above was about the term.
    p.step(vote_request(3, 2, 2, (6, 1)));
    let rd = p.ready();
    assert!(!rd.persisted_messages()[0].reject);
    assert_eq!(rd.hard_state(), Some(&hs(2, 3, 6)));
}

/// Ticks the leader until node `id` applied as much as the leader, at most `max` times.
fn tick_leader_until_caught_up(net: &mut Network, leader: u64, id: u64, max: usize) -> bool {
    for _ in 0..max {
        if net.node(id).applied_index == net.node(leader).applied_index {
            return true;
        }
        net.tick(leader);
    }
    net.node(id).applied_index == net.node(leader).applied_index
}

#[test]
fn restarted_follower_rejoins_and_catches_up_on_new_proposals() {
    let mut net = committed_network();
    net.isolate(3);
    for d in ["a", "b", "c"] {
        net.propose(1, d.as_bytes()).unwrap();
    }
    assert_eq!(net.node(1).applied_index, 9);
    assert_eq!(net.node(3).applied_index, 6);
    net.recover();
    let applied = net.node(3).applied_index;
    net.restart(
        3,
        &Config {
            applied,
            ..default_config(3)
        },
    );
    assert_eq!(net.node(3).raw.raft.raft_log.committed, 6);
    net.propose(1, b"d").unwrap();
    assert!(tick_leader_until_caught_up(&mut net, 1, 3, 20));
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
    assert_eq!(net.node(3).applied_index, 10);
}

#[test]
fn restarted_follower_rejoins_and_catches_up_on_heartbeats_alone() {
    let mut net = committed_network();
    net.isolate(3);
    for d in ["a", "b", "c"] {
        net.propose(1, d.as_bytes()).unwrap();
    }
    net.recover();
    let applied = net.node(3).applied_index;
    net.restart(
        3,
        &Config {
            applied,
            ..default_config(3)
        },
    );
    // No new proposal: an idle leader must still repair a follower whose appends were lost
    // (etcd and raft-rs answer a lagging heartbeat response with an append, even an empty one).
    assert!(
        tick_leader_until_caught_up(&mut net, 1, 3, 30),
        "node 3 is stuck at {} while the leader applied {}",
        net.node(3).applied_index,
        net.node(1).applied_index
    );
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
}

#[test]
fn restarted_leader_rejoins_as_follower_and_catches_up() {
    let mut net = committed_network();
    let applied = net.node(1).applied_index;
    net.restart(
        1,
        &Config {
            applied,
            ..default_config(1)
        },
    );
    assert_eq!(net.node(1).state(), StateRole::Follower);
    assert_eq!(net.node(1).term(), 1);
    net.campaign(2);
    assert_eq!(net.leader(), Some(2));
    assert_eq!(net.node(1).raw.raft.leader_id, 2);
    net.propose(2, b"after").unwrap();
    assert!(tick_leader_until_caught_up(&mut net, 2, 1, 20));
    let expected: Vec<Vec<u8>> = ["p1", "p2", "p3", "p4", "p5", "after"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_data(), expected, "node {id}");
    }
}

#[test]
fn restarted_node_in_a_hand_driven_cluster_continues_without_duplicates() {
    let mut c = elected_cluster();
    for i in 0..10u8 {
        c.peer(1).node.propose(vec![], vec![i]).unwrap();
    }
    c.stabilize();
    c.restart(2);
    // `Peer::restart` passes applied = what node 2 handed out, so nothing may come again.
    assert!(!c.peer(2).node.has_ready());
    for i in 10..20u8 {
        c.peer(1).node.propose(vec![], vec![i]).unwrap();
    }
    c.stabilize();
    for _ in 0..5 {
        c.peer(1).node.tick();
        c.stabilize();
    }
    let leader_log = c.peer(1).handed_out.clone();
    assert_eq!(leader_log.len(), 21);
    assert_eq!(c.peer(2).handed_out, leader_log);
}
