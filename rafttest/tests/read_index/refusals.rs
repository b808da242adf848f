//! Reads that cannot be served: no leader known, a candidate or pre-candidate, a leader kept on
//! after its removal, and malformed read requests and responses (refused, nothing changed).

use raft_core::eraftpb::{ConfChangeTransition, Entry, Message, MessageType};
use raft_core::{Config, Error, StateRole};
use rafttest::network::default_config;
use rafttest::Network;

use crate::support::*;

/// Asserts that node `id` has nothing to send and no read state or pending read.
fn assert_untouched(net: &Network, id: u64) {
    let raft = &net.node(id).raw.raft;
    assert!(
        raft.msgs.is_empty() && raft.msgs_after_append.is_empty(),
        "node {id} queued messages: {:?} {:?}",
        raft.msgs,
        raft.msgs_after_append
    );
    assert!(raft.read_states().is_empty(), "node {id} made a read state");
    assert_eq!(raft.read_only.pending_count(), 0, "node {id} holds a read");
}

#[test]
fn read_index_on_a_follower_without_a_leader_is_dropped() {
    let mut net = Network::new(3);
    net.stabilize();
    assert_eq!(net.node(2).raw.raft.leader_id, 0);
    let r = net.node_mut(2).raw.read_index(b"r".to_vec());
    assert!(is_read_dropped(&r), "expected ReadIndexDropped, got {r:?}");
    assert_untouched(&net, 2);
}

#[test]
fn read_index_on_a_candidate_is_dropped() {
    let mut net = Network::new(3);
    net.node_mut(2).raw.campaign().expect("campaign");
    assert_eq!(net.node(2).state(), StateRole::Candidate);
    net.node_mut(2).raw.raft.read_messages();
    let r = net.node_mut(2).raw.read_index(b"r".to_vec());
    assert!(is_read_dropped(&r), "expected ReadIndexDropped, got {r:?}");
    assert_untouched(&net, 2);
}

#[test]
fn read_index_on_a_pre_candidate_is_dropped() {
    let mut net = Network::with_config(3, |id| Config {
        pre_vote: true,
        ..default_config(id)
    });
    net.node_mut(2).raw.campaign().expect("campaign");
    assert_eq!(net.node(2).state(), StateRole::PreCandidate);
    net.node_mut(2).raw.raft.read_messages();
    let r = net.node_mut(2).raw.read_index(b"r".to_vec());
    assert!(is_read_dropped(&r), "expected ReadIndexDropped, got {r:?}");
    assert_untouched(&net, 2);
}

/// Whether `r` is the InvalidMessage refusal of a message of `msg_type`.
fn is_invalid(r: &raft_core::Result<()>, msg_type: MessageType) -> bool {
    matches!(r, Err(Error::InvalidMessage { msg_type: t, .. }) if *t == msg_type)
}

/// Two entries carrying contexts (a malformed read request or response).
fn two_entries() -> Vec<Entry> {
    vec![ctx_entry(b"x"), ctx_entry(b"y")]
}

#[test]
fn malformed_read_request_with_zero_or_two_entries_is_refused_and_changes_nothing() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    for entries in [vec![], two_entries()] {
        let n = entries.len();
        // Forwarded by a follower, to the leader.
        let r = net
            .node_mut(1)
            .raw
            .step(read_request(2, 1, entries.clone()));
        assert!(
            is_invalid(&r, MessageType::MsgReadIndex),
            "a read request with {n} entries reached the leader and got {r:?}"
        );
        assert_untouched(&net, 1);
        assert!(!net.node(1).raw.has_ready(), "the refusal left work behind");
        // Made locally on the leader and on a follower (which must not forward it).
        for id in [1, 2] {
            let r = net
                .node_mut(id)
                .raw
                .step(read_request(id, id, entries.clone()));
            assert!(
                is_invalid(&r, MessageType::MsgReadIndex),
                "a local read request with {n} entries on node {id} got {r:?}"
            );
            assert_untouched(&net, id);
        }
    }
    net.stabilize();
    for id in 1..=3 {
        assert_no_read_state(&net, id, "every request was malformed");
    }
    assert!(is_leader(&net, 1));
}

#[test]
fn malformed_read_response_with_zero_or_two_entries_is_refused_and_changes_nothing() {
    let mut net = elected(3);
    let commit = put(&mut net, 1, b"a");
    for entries in [vec![], two_entries()] {
        let n = entries.len();
        let resp = Message {
            msg_type: MessageType::MsgReadIndexResp as i32,
            from: 1,
            to: 2,
            term: net.node(1).term(),
            index: commit,
            entries,
            ..Default::default()
        };
        let r = net.node_mut(2).raw.step(resp);
        assert!(
            is_invalid(&r, MessageType::MsgReadIndexResp),
            "a read response with {n} entries got {r:?}"
        );
        assert_untouched(&net, 2);
    }
    net.stabilize();
    assert_no_read_state(&net, 2, "every response was malformed");
}

// etcd/raft-rs: a leader kept on after its removal (step_down_on_removal = false) is not a voter,
// so no quorum it counts itself in can confirm a read.
#[test]
fn leader_kept_on_after_removal_refuses_reads() {
    let mut net = elected_with(3, |id| Config {
        step_down_on_removal: false,
        ..default_config(id)
    });
    put(&mut net, 1, b"a");
    change(&mut net, 1, v2(ConfChangeTransition::Auto, "r1"));
    assert!(
        is_leader(&net, 1),
        "node 1 should lead on after its removal"
    );
    assert_eq!(net.node(1).conf_state().voters, [2, 3]);

    let r = net.node_mut(1).raw.read_index(b"removed".to_vec());
    assert!(is_read_dropped(&r), "expected ReadIndexDropped, got {r:?}");
    assert_untouched(&net, 1);

    // A follower's read forwarded to it gets no answer either.
    request_read(&mut net, 2, b"fwd");
    net.stabilize();
    for id in 1..=3 {
        assert_no_read_state(&net, id, "the leader is no longer a voter");
    }
}
