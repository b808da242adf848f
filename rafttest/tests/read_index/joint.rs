//! Reads while the configuration changes: in a joint configuration (thesis §4.3) a read round
//! needs a quorum of both halves, and a configuration that shrinks to the leader alone leaves no
//! read waiting for acknowledgements that will never come.

use raft_core::eraftpb::{ConfChangeTransition, ConfChangeType, Message};
use rafttest::network::default_config;

use crate::support::*;

/// The held heartbeat response sent by `from`.
fn ack_from(held: &[Message], from: u64) -> Message {
    held.iter()
        .find(|m| m.from == from)
        .unwrap_or_else(|| panic!("no heartbeat response from node {from} was held"))
        .clone()
}

// Thesis §4.3: in C_old,new every decision needs separate majorities of C_old and C_new, and a
// read confirms leadership by such a decision.
#[test]
fn read_in_a_joint_configuration_needs_a_quorum_of_both_halves() {
    let mut net = elected(3);
    net.add_node(&default_config(4), bootstrap(3));
    // Replace 3 by 4 and stay joint: incoming {1, 2, 4}, outgoing {1, 2, 3}.
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "r3 v4"));
    let cs = net.node(1).conf_state();
    assert_eq!(cs.voters, [1, 2, 4]);
    assert_eq!(cs.voters_outgoing, [1, 2, 3]);
    let w = put(&mut net, 1, b"a");

    // Node 3 completes a majority of the outgoing half only.
    request_read(&mut net, 1, b"A");
    let held = run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    assert_eq!(held.len(), 3, "nodes 2, 3 and 4 get the round");
    deliver(&mut net, vec![ack_from(&held, 3)]);
    assert_no_read_state(
        &net,
        1,
        "the incoming half {1, 2, 4} has only the leader's ack",
    );
    deliver(&mut net, vec![ack_from(&held, 4)]);
    assert_eq!(read_states(&net, 1), [rs(w, b"A")]);

    // Node 4 completes a majority of the incoming half only.
    request_read(&mut net, 1, b"B");
    let held = run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    deliver(&mut net, vec![ack_from(&held, 4)]);
    assert_eq!(
        read_states(&net, 1).len(),
        1,
        "the outgoing half {{1, 2, 3}} has only the leader's ack"
    );
    deliver(&mut net, vec![ack_from(&held, 3)]);
    assert_eq!(read_states(&net, 1), [rs(w, b"A"), rs(w, b"B")]);

    // Node 2 is in both halves: its ack alone completes both majorities.
    request_read(&mut net, 1, b"C");
    let held = run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    deliver(&mut net, vec![ack_from(&held, 2)]);
    assert_eq!(
        read_states(&net, 1),
        [rs(w, b"A"), rs(w, b"B"), rs(w, b"C")]
    );
}

// Once the leader is the only voter its own acknowledgement is a quorum: a round that was waiting
// for the removed follower's acknowledgement is answered as soon as the change applies, and later
// reads at once by the single-voter path.
#[test]
fn pending_read_is_answered_when_a_removal_leaves_the_leader_the_only_voter() {
    let mut net = elected(2);
    let w = put(&mut net, 1, b"a");
    request_read(&mut net, 1, b"before-removal");
    run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    assert_eq!(pending_reads(&net, 1), 1);

    let cc = raft_core::eraftpb::ConfChange {
        change_type: ConfChangeType::RemoveNode as i32,
        node_id: 2,
        ..Default::default()
    };
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], cc)
        .expect("the removal is accepted");
    net.stabilize();
    assert_eq!(net.node(1).conf_state().voters, [1]);
    assert_eq!(
        read_states(&net, 1),
        [rs(w, b"before-removal")],
        "the read made before the removal should be answered once the removal applied \
         (still pending: {})",
        pending_reads(&net, 1)
    );
    assert_eq!(pending_reads(&net, 1), 0);

    request_read(&mut net, 1, b"after-removal");
    let after = committed(&net, 1);
    net.stabilize();
    assert_eq!(
        read_states(&net, 1),
        [rs(w, b"before-removal"), rs(after, b"after-removal")],
        "the read after the removal should be answered at once"
    );
}
