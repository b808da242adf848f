//! `Config::validate` errors naming the offending field, and `RawNode::step` refusing messages it
//! must not accept, leaving the node unchanged.

use crate::harness::*;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{Config, Error, RawNode, ReadOnlyOption, StateRole};
use raft_proto::describe_message;
use rafttest::network::default_config;
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// Config validation.
// ---------------------------------------------------------------------------------------------

fn assert_config_invalid(cfg: Config, expected_field: &str) {
    match cfg.validate() {
        Err(Error::ConfigInvalid { field, rule }) => {
            assert_eq!(
                field, expected_field,
                "validate named the wrong field ({rule})"
            )
        }
        other => {
            panic!("validate: expected ConfigInvalid naming `{expected_field}`, got {other:?}")
        }
    }
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1], vec![]));
    match RawNode::new(&cfg, storage, &logger()).err() {
        Some(Error::ConfigInvalid { field, .. }) => assert_eq!(field, expected_field),
        other => {
            panic!("RawNode::new: expected ConfigInvalid naming `{expected_field}`, got {other:?}")
        }
    }
}

#[test]
fn config_defaults_with_a_node_id_are_valid() {
    assert_eq!(Config::new(1).validate(), Ok(()));
    assert_eq!(config(1).validate(), Ok(()));
    assert_eq!(default_config(1).validate(), Ok(()));
}

#[test]
fn config_rejects_id_zero() {
    assert_config_invalid(Config::default(), "id");
}

#[test]
fn config_rejects_zero_heartbeat_tick() {
    assert_config_invalid(
        Config {
            heartbeat_tick: 0,
            ..Config::new(1)
        },
        "heartbeat_tick",
    );
}

#[test]
fn config_rejects_election_tick_not_above_heartbeat_tick() {
    for election_tick in [1, 2] {
        assert_config_invalid(
            Config {
                election_tick,
                heartbeat_tick: 2,
                ..Config::new(1)
            },
            "election_tick",
        );
    }
    assert_eq!(
        Config {
            election_tick: 3,
            heartbeat_tick: 2,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_min_election_tick_below_election_tick() {
    assert_config_invalid(
        Config {
            min_election_tick: 9,
            ..Config::new(1)
        },
        "min_election_tick",
    );
}

#[test]
fn config_rejects_max_election_tick_not_above_min() {
    assert_config_invalid(
        Config {
            min_election_tick: 15,
            max_election_tick: 15,
            ..Config::new(1)
        },
        "max_election_tick",
    );
    // Only max set, at election_tick: the effective minimum (election_tick) is not below it.
    assert_config_invalid(
        Config {
            max_election_tick: 10,
            ..Config::new(1)
        },
        "max_election_tick",
    );
    assert_eq!(
        Config {
            min_election_tick: 15,
            max_election_tick: 16,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_zero_max_inflight_msgs() {
    assert_config_invalid(
        Config {
            max_inflight_msgs: 0,
            ..Config::new(1)
        },
        "max_inflight_msgs",
    );
}

#[test]
fn config_rejects_lease_based_reads_without_check_quorum() {
    assert_config_invalid(
        Config {
            read_only_option: ReadOnlyOption::LeaseBased,
            ..Config::new(1)
        },
        "read_only_option",
    );
    assert_eq!(
        Config {
            read_only_option: ReadOnlyOption::LeaseBased,
            check_quorum: true,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_zero_max_uncommitted_size() {
    assert_config_invalid(
        Config {
            max_uncommitted_size: 0,
            ..Config::new(1)
        },
        "max_uncommitted_size",
    );
}

#[test]
fn config_rejects_zero_max_committed_size_per_ready() {
    assert_config_invalid(
        Config {
            max_committed_size_per_ready: 0,
            ..Config::new(1)
        },
        "max_committed_size_per_ready",
    );
}

// ---------------------------------------------------------------------------------------------
// RawNode::step refusals.
// ---------------------------------------------------------------------------------------------

const LOCAL_ONLY: [MessageType; 5] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
];

/// Steps `m` into node `id` expecting `expected`, and checks nothing changed.
fn assert_refused(c: &mut Cluster, id: u64, m: Message, expected: Error) {
    let node = &mut c.peer(id).node;
    let before = (
        node.raft.hard_state(),
        node.raft.soft_state(),
        node.raft.raft_log.last_index(),
    );
    assert!(
        !node.has_ready(),
        "node {id} should be idle before the test"
    );
    let desc = describe_message(&m);
    assert_eq!(node.step(m), Err(expected), "node {id} stepping {desc}");
    let after = (
        node.raft.hard_state(),
        node.raft.soft_state(),
        node.raft.raft_log.last_index(),
    );
    assert_eq!(
        before, after,
        "node {id}: a refused {desc} changed the state"
    );
    assert!(
        !node.has_ready(),
        "node {id}: a refused {desc} produced work"
    );
}

#[test]
fn step_refuses_local_only_message_types_from_the_network() {
    let mut c = elected_cluster();
    for t in LOCAL_ONLY {
        // On the leader (MsgBeat would broadcast heartbeats, MsgCheckQuorum could depose it) and
        // on a follower (MsgHup would start an election).
        for (id, from) in [(1, 2), (2, 1)] {
            let term = c.peer(id).node.raft.term;
            assert_refused(&mut c, id, msg(t, from, id, term), Error::StepLocalMsg(t));
            assert_refused(&mut c, id, msg(t, 0, 0, 0), Error::StepLocalMsg(t));
        }
    }
}

#[test]
fn step_refuses_responses_from_nodes_outside_the_configuration() {
    let mut c = elected_cluster();
    for t in [
        MessageType::MsgAppendResponse,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVoteResponse,
    ] {
        for id in [1, 2] {
            let expected = Error::StepPeerNotFound {
                msg_type: t,
                from: 9,
            };
            let m = Message {
                index: 1,
                ..msg(t, 9, id, 1)
            };
            assert_refused(&mut c, id, m, expected);
        }
    }
}

#[test]
fn step_refuses_a_vote_response_from_outside_the_configuration_while_campaigning() {
    let mut c = Cluster::new(3, config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    c.peer(1).process(rd);
    assert_refused(
        &mut c,
        1,
        msg(MessageType::MsgRequestVoteResponse, 9, 1, 1),
        Error::StepPeerNotFound {
            msg_type: MessageType::MsgRequestVoteResponse,
            from: 9,
        },
    );
    assert_eq!(
        c.peer(1).node.raft.state,
        StateRole::Candidate,
        "an outsider's vote must not count"
    );
}

#[test]
fn step_refuses_unknown_message_type_values() {
    let mut c = elected_cluster();
    for value in [19, 99, -1, i32::MAX, i32::MIN] {
        for id in [1, 2] {
            let m = Message {
                msg_type: value,
                from: 3,
                to: id,
                term: 1,
                ..Default::default()
            };
            assert_refused(&mut c, id, m, Error::UnknownMessageType(value));
        }
    }
}
