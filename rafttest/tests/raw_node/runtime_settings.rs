//! raft-rs's runtime setters and helpers on `RawNode` (issue 18): `ping`, `set_priority`,
//! `skip_bcast_commit`, `set_batch_append`, `store`/`mut_store`, and the checked setters of
//! `Raft` that refuse a setting the configuration would refuse.

use raft_core::eraftpb::MessageType;
use raft_core::{Config, Error, ReadOnlyOption, StateRole};
use rafttest::network::default_config;
use rafttest::Network;

use crate::harness::{config, vote_request};

#[test]
fn ping_sends_every_follower_a_heartbeat_on_a_leader_only() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.delivered.clear();
    net.node_mut(1).raw.ping();
    net.stabilize();
    let heartbeats: Vec<u64> = net
        .delivered
        .iter()
        .filter(|m| m.msg_type == MessageType::MsgHeartbeat as i32 && m.from == 1)
        .map(|m| m.to)
        .collect();
    assert_eq!(heartbeats, vec![2, 3], "one heartbeat to each follower");

    net.delivered.clear();
    net.node_mut(2).raw.ping();
    net.stabilize();
    assert!(net.delivered.is_empty(), "a follower pings no one");
}

#[test]
fn set_priority_changes_which_equal_candidate_a_voter_refuses() {
    let storage = storage_mem::MemStorage::bootstrap([1, 2, 3], []).unwrap();
    let mut node = raft_core::RawNode::new(&config(2), storage, &crate::harness::logger()).unwrap();
    let last = node.raft.raft_log.last_index_and_term().unwrap();
    node.set_priority(5);
    // Candidate 3, as up to date as node 2 and of priority 0, is refused.
    node.step(vote_request(3, 2, 2, last)).unwrap();
    assert_eq!(
        node.raft.vote, 0,
        "a lower-priority equal candidate is refused"
    );
    node.set_priority(0);
    node.step(vote_request(3, 2, 3, last)).unwrap();
    assert_eq!(node.raft.vote, 3, "with equal priorities it is granted");
}

#[test]
fn skip_bcast_commit_set_at_runtime_stops_commit_only_appends() {
    let appends_after_commit = |skip: bool| {
        let mut net = Network::new(3);
        net.campaign(1);
        net.node_mut(1).raw.skip_bcast_commit(skip);
        net.node_mut(1).raw.set_batch_append(true); // accepted, changes nothing
        net.delivered.clear();
        net.propose(1, b"x").unwrap();
        net.delivered
            .iter()
            .filter(|m| m.msg_type == MessageType::MsgAppend as i32 && m.entries.is_empty())
            .count()
    };
    assert!(
        appends_after_commit(false) > 0,
        "the moved commit index is broadcast"
    );
    assert_eq!(
        appends_after_commit(true),
        0,
        "skipped: followers learn it with the next append or heartbeat"
    );
}

#[test]
fn store_and_mut_store_reach_the_nodes_storage() {
    let mut net = Network::new(1);
    net.campaign(1);
    net.propose(1, b"x").unwrap();
    let node = &mut net.node_mut(1).raw;
    let last = node.raft.raft_log.last_index();
    assert_eq!(raft_core::Storage::last_index(node.store()).unwrap(), last);
    node.mut_store().wl().commit_to(last).unwrap();
    assert_eq!(node.store().rl().hard_state().commit, last);
}

#[test]
fn the_checked_setters_refuse_what_the_configuration_refuses() {
    let lease = |id| Config {
        check_quorum: true,
        read_only_option: ReadOnlyOption::LeaseBased,
        ..default_config(id)
    };
    let mut net = Network::with_config(1, lease);
    let raft = &mut net.node_mut(1).raw.raft;
    assert!(matches!(
        raft.set_check_quorum(false),
        Err(Error::ConfigInvalid {
            field: "check_quorum",
            ..
        })
    ));
    assert!(matches!(
        raft.set_max_committed_size_per_ready(0),
        Err(Error::ConfigInvalid {
            field: "max_committed_size_per_ready",
            ..
        })
    ));
    assert_eq!(raft.set_max_committed_size_per_ready(1024), Ok(()));

    let mut net = Network::new(1);
    net.campaign(1);
    let raft = &mut net.node_mut(1).raw.raft;
    assert_eq!(raft.set_check_quorum(false), Ok(()));
    assert_eq!(raft.set_check_quorum(true), Ok(()));
    assert_eq!(raft.state, StateRole::Leader);
}
