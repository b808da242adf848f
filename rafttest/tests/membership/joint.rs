//! Joint consensus (thesis §4.3): replacing voters through a joint configuration that the leader
//! leaves by itself (`Auto` with several changes, `Implicit`) or that the application leaves
//! (`Explicit`); while joint, both commitment and elections need majorities of both halves.

use raft_core::eraftpb::{ConfChangeTransition, ConfState, EntryType};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, StateRole};
use rafttest::network::default_config;

use crate::support::*;

/// Replaces voter 3 by voter 4 with `transition` (which must leave by itself), checking that every
/// node applied the joint configuration and then the leave, which the leader proposed itself.
fn replace_voter_with_auto_leave(transition: ConfChangeTransition) {
    let mut net = elected(3);
    put(&mut net, 1, b"a"); // index 2
    join(&mut net, 4, 3);
    change(&mut net, 1, v2(transition, "r3 v4")); // index 3 enters, index 4 leaves

    let want = [
        (3, joint(&[1, 2, 4], &[1, 2, 3], true)),
        (4, cs(&[1, 2, 4], &[])),
    ];
    assert_conf_logs(&net, &[1, 2, 4], &want);
    assert_conf_log_prefix(&net, 3, 1);
    assert_conf(&net, &[1, 2, 4], &cs(&[1, 2, 4], &[]));
    let leave_entry = &log_of(&net, 1)[3];
    assert_eq!(leave_entry.index, 4);
    assert_eq!(leave_entry.entry_type(), EntryType::EntryConfChangeV2);
    let cc = decode_conf_change(leave_entry)
        .expect("entry 4 should be a conf change")
        .expect("entry 4 should decode");
    assert!(cc.leave_joint(), "entry 4 should be the empty leave change");

    put(&mut net, 1, b"b"); // index 5
    assert_applied(&net, &[1, 2, 4], &[b"a", b"b"]);
    assert_committed(&net, &[1, 2, 4], 5);
}

// Thesis §4.3 / etcd: `Auto` with more than one change goes through a joint configuration with
// auto-leave; the leader proposes the leave as soon as it applied the entering entry.
#[test]
fn replace_voter_with_auto_transition_leaves_joint_by_itself() {
    replace_voter_with_auto_leave(ConfChangeTransition::Auto);
}

// etcd: `Implicit` always uses a joint configuration and leaves it automatically.
#[test]
fn replace_voter_with_implicit_transition_leaves_joint_by_itself() {
    replace_voter_with_auto_leave(ConfChangeTransition::Implicit);
}

// etcd: `Implicit` makes even a single change joint (and auto-leaving).
#[test]
fn single_change_with_implicit_transition_still_goes_through_joint() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v2(ConfChangeTransition::Implicit, "v4")); // index 2, leave at 3
    let want = [
        (2, joint(&[1, 2, 3, 4], &[1, 2, 3], true)),
        (3, cs(&[1, 2, 3, 4], &[])),
    ];
    assert_conf_logs(&net, &[1, 2, 3, 4], &want);
    assert_committed(&net, &[1, 2, 3, 4], 3);
}

/// A group of voters 1..3 in which node 4 joined and the explicit joint change "r3 v4" (index 2)
/// was applied everywhere: incoming {1, 2, 4}, outgoing {1, 2, 3}.
fn explicitly_joint() -> rafttest::Network {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "r3 v4"));
    assert_conf_logs(
        &net,
        &[1, 2, 3, 4],
        &[(2, joint(&[1, 2, 4], &[1, 2, 3], false))],
    );
    net
}

// etcd: with `Explicit` the leader never leaves by itself; the application proposes the empty
// ConfChangeV2 when it wants to.
#[test]
fn explicit_transition_stays_joint_until_the_application_leaves() {
    let mut net = explicitly_joint();
    for _ in 0..30 {
        net.tick(1);
    }
    assert_eq!(
        last_index(&net, 1),
        2,
        "the leader appended something (a leave?) on its own in an explicit joint configuration"
    );
    assert_conf(&net, &[1, 2, 3, 4], &joint(&[1, 2, 4], &[1, 2, 3], false));

    change(&mut net, 1, leave()); // index 3
    let want = [
        (2, joint(&[1, 2, 4], &[1, 2, 3], false)),
        (3, cs(&[1, 2, 4], &[])),
    ];
    assert_conf_logs(&net, &[1, 2, 4], &want);
    assert_conf_log_prefix(&net, 3, 1);
    put(&mut net, 1, b"a");
    assert_applied(&net, &[1, 2, 4], &[b"a"]);
    assert_committed(&net, &[1, 2, 4], 4);
}

// Thesis §4.3: while joint, an entry commits only with a majority of the outgoing AND of the
// incoming voters; either half alone is not enough.
#[test]
fn joint_configuration_commits_only_with_majorities_of_both_halves() {
    let mut net = explicitly_joint();

    // Acks from 1 and 4: a majority of incoming {1, 2, 4}, one of three in outgoing {1, 2, 3}.
    net.cut(1, 2);
    net.cut(1, 3);
    put(&mut net, 1, b"x"); // index 3
    assert_eq!(last_index(&net, 4), 3, "node 4 should hold entry 3");
    assert_eq!(
        committed(&net, 1),
        2,
        "committed with a majority of the incoming half only"
    );

    // Node 3 back, node 4 cut: x now has majorities of both halves (1, 4 and 1, 3) and commits,
    // but y gets acks from 1 and 3 only: a majority of outgoing {1, 2, 3}, one of incoming.
    net.recover();
    net.cut(1, 2);
    net.cut(1, 4);
    for _ in 0..3 {
        net.tick(1);
    }
    put(&mut net, 1, b"y"); // index 4
    assert_eq!(last_index(&net, 3), 4, "node 3 should hold entry 4");
    assert_eq!(
        committed(&net, 1),
        3,
        "entry 3 should commit with both halves, entry 4 must not with the outgoing half only"
    );

    // Node 4 back too (node 2 still cut): 1, 3 and 4 are a majority of each half.
    net.recover();
    net.cut(1, 2);
    for _ in 0..3 {
        net.tick(1);
    }
    assert_committed(&net, &[1, 3, 4], 4);
    assert_applied(&net, &[1, 3, 4], &[b"x", b"y"]);

    heal(&mut net, 1);
    assert_committed(&net, &[1, 2, 3, 4], 4);
    assert_applied(&net, &[1, 2, 3, 4], &[b"x", b"y"]);
}

// Thesis §4.3: a candidate in a joint configuration needs a majority of each half; votes that
// would win the incoming configuration alone are not enough.
#[test]
fn joint_election_needs_majorities_of_both_halves() {
    let mut net = explicitly_joint();
    net.remove_node(1);
    net.cut(2, 3);
    // Votes of 2 and 4: a majority of incoming {1, 2, 4}, but only 2 of outgoing {1, 2, 3}.
    net.campaign(2);
    assert_ne!(
        net.node(2).state(),
        StateRole::Leader,
        "node 2 won with a majority of the incoming half only"
    );
    // Votes of 2, 3 and 4: a majority of each half.
    net.recover();
    net.campaign(2);
    assert_eq!(
        net.node(2).state(),
        StateRole::Leader,
        "node 2 should win with a majority of both halves"
    );
}

// etcd confchange: a voter of the outgoing half demoted to learner waits in `learners_next` while
// joint, becomes a learner at the leave, and is still replicated to afterwards.
#[test]
fn voter_demoted_in_a_joint_change_becomes_learner_at_the_leave() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "l3 v4")); // index 2
    let joint_cs = ConfState {
        voters: vec![1, 2, 4],
        voters_outgoing: vec![1, 2, 3],
        learners_next: vec![3],
        ..Default::default()
    };
    assert_conf_logs(&net, &[1, 2, 3, 4], &[(2, joint_cs.clone())]);

    change(&mut net, 1, leave()); // index 3
    let want = [(2, joint_cs), (3, cs(&[1, 2, 4], &[3]))];
    assert_conf_logs(&net, &[1, 2, 3, 4], &want);

    put(&mut net, 1, b"a"); // index 4
    assert_applied(&net, &[1, 2, 3, 4], &[b"a"]);
    assert_committed(&net, &[1, 2, 3, 4], 4);
}

// Thesis §4.3 with check-quorum (§6.2): while joint, the leader stays in office only if it heard
// from a majority of each half within an election timeout.
#[test]
fn check_quorum_in_a_joint_configuration_needs_both_halves() {
    let cfg = |id| Config {
        check_quorum: true,
        ..default_config(id)
    };
    let run = |cut_off: &[u64]| {
        let mut net = elected_with(3, cfg);
        join_with(&mut net, &cfg(4), 3);
        change(&mut net, 1, v2(ConfChangeTransition::Explicit, "r3 v4"));
        assert_conf(&net, &[1], &joint(&[1, 2, 4], &[1, 2, 3], false));
        for &id in cut_off {
            net.cut(1, id);
        }
        for _ in 0..3 * 10 {
            net.tick(1);
        }
        net.node(1).state()
    };
    // Heard from 4 only: a majority of incoming {1, 2, 4}, not of outgoing {1, 2, 3}. Once
    // deposed it may campaign again (as a candidate), but it cannot win without both halves.
    assert_ne!(
        run(&[2, 3]),
        StateRole::Leader,
        "the leader stayed with an active majority of the incoming half only"
    );
    // Heard from 3 only: a majority of outgoing, not of incoming.
    assert_ne!(
        run(&[2, 4]),
        StateRole::Leader,
        "the leader stayed with an active majority of the outgoing half only"
    );
    // Heard from 3 and 4: a majority of each half.
    assert_eq!(
        run(&[2]),
        StateRole::Leader,
        "the leader stepped down although both halves had an active majority"
    );
}
