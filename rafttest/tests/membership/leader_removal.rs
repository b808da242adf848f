//! Removing the leader (thesis §4.2.2): with `step_down_on_removal` it steps down when it applies
//! its removal and the rest elect a new leader; without it, it keeps leading a group it does not
//! belong to, is not counted for commit and accepts no proposals.

use raft_core::eraftpb::{ConfChangeType, ConfState, EntryType, MessageType};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, Error, StateRole};
use raft_proto::ConfChangeI;
use rafttest::network::default_config;

use crate::support::*;

// Thesis §4.2.2 / etcd `StepDownOnRemoval`: the leader leaves office once its removal is applied;
// the remaining voters elect a leader among themselves and go on committing.
#[test]
fn removed_leader_steps_down_when_it_applies_its_removal() {
    let mut net = elected(3);
    put(&mut net, 1, b"a"); // index 2
    change(&mut net, 1, v1(ConfChangeType::RemoveNode, 1)); // index 3
    assert_eq!(
        net.node(1).state(),
        StateRole::Follower,
        "the leader applied its own removal but did not step down"
    );
    assert_eq!(
        net.node(1).term(),
        1,
        "stepping down must not change the term"
    );
    assert_conf_logs(&net, &[1], &[(3, cs(&[2, 3], &[]))]);

    let mark = net.delivered.len();
    let leader = elect_among_others(&mut net, &[1], 200);
    assert!(leader == 2 || leader == 3);
    assert_eq!(
        sent_vote_requests(&net, 1, mark),
        0,
        "the removed node campaigned although it is no voter"
    );
    assert_eq!(net.node(1).state(), StateRole::Follower);

    put(&mut net, leader, b"b"); // index 4 is the new leader's empty entry, 5 is "b"
    assert_conf_logs(&net, &[1, 2, 3], &[(3, cs(&[2, 3], &[]))]);
    assert_applied(&net, &[2, 3], &[b"a", b"b"]);
    assert_committed(&net, &[2, 3], 5);
    assert_applied(&net, &[1], &[b"a"]);
    assert_eq!(
        last_index(&net, 1),
        3,
        "the removed node still receives entries"
    );
}

/// With `step_down_on_removal = false`, leader 1 of voters 1..3 applies `cc` (which leaves it
/// outside the voters, in configuration `after`): it keeps leading, but an entry that it and node 2
/// hold (a majority of the old voters) waits for node 3, and it accepts no proposal.
fn leader_outside_the_voters_keeps_leading_uncounted(cc: impl ConfChangeI, after: ConfState) {
    let mut net = elected_with(3, |id| Config {
        step_down_on_removal: false,
        ..default_config(id)
    });
    // Both accepted: the leader is still a voter when it appends them.
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], cc)
        .expect("the change is valid"); // index 2
    net.node_mut(1)
        .raw
        .propose(vec![], b"x".to_vec())
        .expect("the leader is still a voter"); // index 3

    // Node 2 receives only the change at first, so the leader commits and applies index 2 before
    // anyone acknowledges index 3; node 3 is cut off.
    let msgs = net.node_mut(1).handle_ready().expect("ready");
    let to_2: Vec<_> = msgs
        .into_iter()
        .filter(|m| m.to == 2 && m.msg_type() == MessageType::MsgAppend)
        .map(|mut m| {
            m.entries.retain(|e| e.index <= 2);
            m
        })
        .collect();
    assert_eq!(
        to_2.len(),
        1,
        "expected one append from the leader to node 2"
    );
    net.cut(1, 3);
    net.send(to_2);

    assert_eq!(
        net.node(1).state(),
        StateRole::Leader,
        "without step_down_on_removal the leader must keep leading"
    );
    assert_conf_logs(&net, &[1, 2], &[(2, after.clone())]);
    assert_eq!(last_index(&net, 2), 3, "node 2 should hold entry 3 by now");
    assert_eq!(
        committed(&net, 1),
        2,
        "entry 3 committed with the leader's own ack counted"
    );

    // It accepts no proposals, neither its own nor forwarded ones.
    assert_eq!(
        net.node_mut(1).raw.propose(vec![], b"y".to_vec()),
        Err(Error::ProposalDropped),
        "the leader outside the voters accepted a proposal"
    );
    let _ = net.propose(2, b"z"); // forwarded to node 1, which drops it
    assert_eq!(
        last_index(&net, 1),
        3,
        "a proposal reached the log of the leader outside the voters"
    );

    // Node 3 back: the voters 2 and 3 now commit entry 3.
    heal(&mut net, 1);
    assert_eq!(net.node(1).state(), StateRole::Leader);
    assert_committed(&net, &[1, 2, 3], 3);
    assert_applied(&net, &[1, 2, 3], &[b"x"]);
    assert_conf_logs(&net, &[1, 2, 3], &[(2, after)]);
}

// etcd `StepDownOnRemoval = false`: the removed leader keeps its role, no longer tracks itself,
// is not counted and accepts no proposals.
#[test]
fn removed_leader_without_step_down_keeps_leading_without_counting_itself() {
    leader_outside_the_voters_keeps_leading_uncounted(
        v1(ConfChangeType::RemoveNode, 1),
        cs(&[2, 3], &[]),
    );
}

// The same for a leader demoted to learner: it is still tracked (as a learner), but not counted,
// and it accepts no proposals.
#[test]
fn demoted_leader_without_step_down_keeps_leading_without_counting_itself() {
    leader_outside_the_voters_keeps_leading_uncounted(auto("l1"), cs(&[2, 3], &[1]));
}

// Thesis §4.2.2 with joint consensus: the leader is in the outgoing half only, so it keeps leading
// through the joint phase, proposes the leave itself, and steps down when the leave is applied.
#[test]
fn leader_replaced_through_joint_consensus_steps_down_at_the_leave() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, auto("r1 v4")); // index 2 enters, index 3 leaves

    let want = [
        (2, joint(&[2, 3, 4], &[1, 2, 3], true)),
        (3, cs(&[2, 3, 4], &[])),
    ];
    // Node 4 may still be catching up: the leave commits with 2 and 3 in both halves.
    assert_conf_logs(&net, &[1, 2, 3], &want);
    let leave_entry = &log_of(&net, 1)[2];
    assert_eq!(leave_entry.index, 3);
    assert_eq!(leave_entry.entry_type(), EntryType::EntryConfChangeV2);
    assert_eq!(
        leave_entry.term, 1,
        "the leave must be proposed by the leader of term 1, still in office while joint"
    );
    assert!(
        decode_conf_change(leave_entry)
            .expect("a conf change")
            .expect("decodes")
            .leave_joint(),
        "entry 3 is not the leave"
    );
    assert_eq!(
        net.node(1).state(),
        StateRole::Follower,
        "the replaced leader must step down once it applies the leave"
    );

    let leader = elect_among_others(&mut net, &[1], 200);
    put(&mut net, leader, b"after"); // index 4 is the new leader's empty entry
    assert_conf_logs(&net, &[2, 3, 4], &want);
    assert_applied(&net, &[2, 3, 4], &[b"after"]);
    assert_committed(&net, &[2, 3, 4], 5);
}
