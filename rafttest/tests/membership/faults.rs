//! Membership changes under faults: a partitioned follower catching up on changes it missed, a
//! leader crashing inside a joint configuration (before its leave reached anyone, and after it
//! reached one follower), a deposed leader's uncommitted change, restarts, and message loss.

use raft_core::eraftpb::{ConfChangeTransition, ConfChangeType, EntryType};
use raft_core::raft::decode_conf_change;
use raft_core::Config;
use rafttest::network::default_config;
use rafttest::Network;

use crate::support::*;

// Thesis §4.1: configurations travel in the log, so a follower that missed several changes gets
// them, in order, when it catches up, and ends with the same configuration history.
#[test]
fn partitioned_follower_catches_up_on_missed_conf_changes_after_heal() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    join(&mut net, 5, 3);
    net.isolate(3);
    change(&mut net, 1, v1(ConfChangeType::AddNode, 4)); // index 2: 1, 2 and 4 of 4 voters
    put(&mut net, 1, b"a"); // index 3
    change(&mut net, 1, auto("l5")); // index 4
    change(&mut net, 1, auto("r2 v5")); // index 5 enters, index 6 leaves
    put(&mut net, 1, b"b"); // index 7
    assert_eq!(
        last_index(&net, 3),
        1,
        "the isolated node received something"
    );

    heal(&mut net, 1);
    let want = [
        (2, cs(&[1, 2, 3, 4], &[])),
        (4, cs(&[1, 2, 3, 4], &[5])),
        (5, joint(&[1, 3, 4, 5], &[1, 2, 3, 4], true)),
        (6, cs(&[1, 3, 4, 5], &[])),
    ];
    assert_conf_logs(&net, &[1, 3, 4, 5], &want);
    assert_conf_log_prefix(&net, 2, 1);
    assert_applied(&net, &[1, 3, 4, 5], &[b"a", b"b"]);
    assert_committed(&net, &[1, 3, 4, 5], 7);
}

/// A group of voters 1..3 plus a joining node 4, in which leader 1 proposed the auto-leave joint
/// change "r1 v4" at index 3 (after "a" at index 2) and ran it, losing every append of node 1
/// that carries an entry past index 3 to a node in `lose_leave_to`: its own leave (index 4) reaches
/// only the others. Checks that the joint entry was committed and applied on nodes 2 and 3.
fn joint_with_leader_leave_lost(lose_leave_to: &[u64]) -> Network {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    put(&mut net, 1, b"a"); // index 2
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], auto("r1 v4"))
        .expect("valid"); // index 3
    pump(&mut net, vec![], |m| {
        m.from == 1 && lose_leave_to.contains(&m.to) && carries_entries_after(m, 3)
    });
    assert_eq!(
        last_index(&net, 1),
        4,
        "leader 1 should have proposed the leave at index 4"
    );
    assert_eq!(committed(&net, 1), 3, "the leave must not be committed");
    assert_conf_logs(
        &net,
        &[1, 2, 3],
        &[(3, joint(&[2, 3, 4], &[1, 2, 3], true))],
    );
    net
}

/// Checks that nodes 2, 3, 4 left the joint configuration through the leave at `leave_index`
/// (one leave, no refused change) and commit a new entry.
fn assert_transition_finished(net: &mut Network, leave_index: u64) {
    let live = [2, 3, 4];
    let want = [
        (3, joint(&[2, 3, 4], &[1, 2, 3], true)),
        (leave_index, cs(&[2, 3, 4], &[])),
    ];
    assert_conf_logs(net, &live, &want);
    assert_conf(net, &live, &cs(&[2, 3, 4], &[]));
    for id in live {
        assert!(
            net.node(id).refused_conf_changes.is_empty(),
            "node {id} refused a conf change (a second leave?)"
        );
        assert_eq!(
            conf_entries(net, id),
            vec![
                (3, EntryType::EntryConfChangeV2),
                (leave_index, EntryType::EntryConfChangeV2)
            ],
            "node {id}'s log should hold exactly the joint entry and one leave"
        );
    }
    let leader = net.leader().expect("a leader");
    put(net, leader, b"b");
    let last = last_index(net, leader);
    assert_applied(net, &live, &[b"a", b"b"]);
    assert_committed(net, &live, last);
}

// Thesis §4.3: the joint configuration is durable once committed; if the leader that entered it
// crashes before its leave reached anyone, the next leader (elected by majorities of both halves)
// proposes the leave itself.
#[test]
fn leader_crash_before_its_leave_spreads_new_leader_leaves_joint() {
    let mut net = joint_with_leader_leave_lost(&[2, 3, 4]);
    net.remove_node(1);
    let leader = elect_among_others(&mut net, &[1], 300);
    assert!(
        leader == 2 || leader == 3,
        "leader {leader} was not a voter"
    );
    // The new leader's empty entry is index 4; the leave it proposes is index 5.
    let leave = &log_of(&net, leader)[4];
    assert_eq!(leave.index, 5);
    assert_eq!(
        leave.term,
        net.node(leader).term(),
        "the leave is not of the new term"
    );
    assert!(decode_conf_change(leave)
        .expect("a conf change")
        .expect("decodes")
        .leave_joint());
    assert_transition_finished(&mut net, 5);
}

// §5.4.2: the old leader's leave reached node 2 only, uncommitted (incoming {2, 3, 4} has one
// ack); node 2 wins, commits that leave through its own empty entry and proposes no second one.
#[test]
fn leader_crash_with_its_leave_on_one_follower_new_leader_commits_that_leave() {
    let mut net = joint_with_leader_leave_lost(&[3, 4]);
    assert_eq!(
        last_index(&net, 2),
        4,
        "node 2 should hold the old leader's leave"
    );
    net.remove_node(1);
    net.campaign(2);
    assert!(is_leader(&net, 2), "node 2 should win with the longest log");
    assert_transition_finished(&mut net, 4);
}

// Configurations take effect when applied (etcd), so a change the deposed leader appended but never
// committed changes nobody's configuration and is replaced by the new leader's log.
#[test]
fn uncommitted_conf_change_of_a_deposed_leader_never_applies() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    net.isolate(1);
    propose_cc(&mut net, 1, v1(ConfChangeType::AddNode, 4)).expect("accepted"); // only in node 1's log
    assert_eq!(last_index(&net, 1), 2);
    net.campaign(2);
    assert!(is_leader(&net, 2));
    put(&mut net, 2, b"x"); // index 2 is node 2's empty entry, 3 is "x"
    heal(&mut net, 2);

    assert_conf_logs(&net, &[1, 2, 3, 4], &[]);
    assert_conf(&net, &[1, 2, 3], &cs(&[1, 2, 3], &[]));
    assert_eq!(
        conf_entries(&net, 1),
        vec![],
        "node 1 kept its stale conf change"
    );
    assert_applied(&net, &[1, 2, 3], &[b"x"]);
    assert_committed(&net, &[1, 2, 3], 3);
    assert_eq!(last_index(&net, 4), 0, "node 4 was never a member");
}

// A restarted node starts from the membership stored with its applied state and goes on.
#[test]
fn restarted_node_resumes_with_its_stored_membership() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v1(ConfChangeType::AddNode, 4)); // index 2
    join(&mut net, 5, 3);
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "r3 v5")); // index 3
    let joint_cs = joint(&[1, 2, 4, 5], &[1, 2, 3, 4], false);

    for id in [2, 5] {
        let applied = net.node(id).applied_index;
        net.restart(
            id,
            &Config {
                applied,
                ..default_config(id)
            },
        );
        assert_eq!(
            net.node(id).conf_state(),
            joint_cs,
            "node {id} restarted with another configuration"
        );
    }
    change(&mut net, 1, leave()); // index 4
    put(&mut net, 1, b"a"); // index 5
    let want = [
        (2, cs(&[1, 2, 3, 4], &[])),
        (3, joint_cs),
        (4, cs(&[1, 2, 4, 5], &[])),
    ];
    assert_conf_logs(&net, &[1, 2, 4, 5], &want);
    assert_applied(&net, &[1, 2, 4, 5], &[b"a"]);
    assert_committed(&net, &[1, 2, 4, 5], 5);
}

// Lost messages delay a conf change but do not change its outcome: once the links are healthy,
// every member has the same configuration history.
#[test]
fn conf_changes_under_message_loss_converge() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    join(&mut net, 5, 3);
    net.seed(7);
    for a in 1..=5 {
        for b in 1..=5 {
            if a != b {
                net.drop_link(a, b, 0.4);
            }
        }
    }
    let changes = ["v4", "l5", "r2 v5"];
    for (i, text) in changes.iter().enumerate() {
        let before = net.node(1).conf_log.len();
        let mut accepted = false;
        for _ in 0..200 {
            if !accepted {
                accepted = propose_cc(&mut net, 1, auto(text)).is_ok();
            }
            if net.node(1).conf_log.len() > before {
                break;
            }
            net.tick(1);
        }
        assert!(
            net.node(1).conf_log.len() > before,
            "change {i} [{text}] was not applied by the leader within 200 ticks of loss"
        );
        // The joint change's auto-leave also has to go through before the next change.
        for _ in 0..200 {
            if !net.node(1).conf_state().voters_outgoing.is_empty() {
                net.tick(1);
            }
        }
    }
    assert!(
        net.dropped > 0,
        "the lossy links dropped nothing: the test proves nothing"
    );
    heal(&mut net, 1);
    let want = net.node(1).conf_log.clone();
    assert_eq!(
        want.last().map(|(_, c)| c.clone()),
        Some(cs(&[1, 3, 4, 5], &[])),
        "the leader did not end in the expected configuration"
    );
    assert_eq!(
        want.len(),
        4,
        "expected 4 applied conf changes, got {want:?}"
    );
    assert_conf_logs(&net, &[1, 3, 4, 5], &want);
    let last = last_index(&net, 1);
    assert_committed(&net, &[1, 3, 4, 5], last);
}

// §5.4.2: the leader committed and applied its own removal (and stepped down), but no follower
// learned of the commit; the next leader commits the removal through its own first entry.
#[test]
fn leader_removal_whose_commit_was_not_learned_is_completed_by_the_next_leader() {
    let mut net = elected(3);
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], v1(ConfChangeType::RemoveNode, 1))
        .expect("valid"); // index 2
    pump(&mut net, vec![], |m| m.from == 1 && m.commit >= 2);
    assert_eq!(net.node(1).state(), raft_core::StateRole::Follower);
    assert_conf_logs(&net, &[1], &[(2, cs(&[2, 3], &[]))]);
    for id in [2, 3] {
        assert_eq!(last_index(&net, id), 2, "node {id} should hold the removal");
        assert_eq!(
            committed(&net, id),
            1,
            "node {id} should not know it committed"
        );
    }

    let leader = elect_among_others(&mut net, &[1], 300);
    assert!(leader == 2 || leader == 3);
    put(&mut net, leader, b"a"); // index 3 is the new leader's empty entry, 4 is "a"
    assert_conf_logs(&net, &[2, 3], &[(2, cs(&[2, 3], &[]))]);
    assert_conf(&net, &[2, 3], &cs(&[2, 3], &[]));
    assert_applied(&net, &[2, 3], &[b"a"]);
    assert_committed(&net, &[2, 3], 4);
}
