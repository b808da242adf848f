//! Learners (thesis §4.2.1, non-voting members; etcd/raft-rs learners): replicated to like any
//! member, never counted for commit, never campaigning, ignored by a candidate's tally; promotion
//! makes them count, demotion makes a voter stop counting.

use raft_core::eraftpb::{ConfChangeType, Message, MessageType};
use raft_core::StateRole;

use crate::support::*;

// Thesis §4.2.1: a non-voting member receives the log but its acknowledgement never counts; once
// promoted, it does.
#[test]
fn learner_receives_entries_but_counts_only_after_promotion() {
    let mut net = elected(2);
    join(&mut net, 3, 2);
    change(&mut net, 1, auto("l3")); // index 2
    assert_conf_logs(&net, &[1, 2, 3], &[(2, cs(&[1, 2], &[3]))]);
    put(&mut net, 1, b"a"); // index 3
    assert_applied(&net, &[1, 2, 3], &[b"a"]);
    assert_committed(&net, &[1, 2, 3], 3);

    // Voter 2 cut off: the leader and the learner hold entry 4 and the learner acknowledged it.
    net.cut(1, 2);
    let mark = net.delivered.len();
    put(&mut net, 1, b"b"); // index 4
    assert!(
        net.delivered[mark..].iter().any(|m| m.from == 3
            && m.msg_type() == MessageType::MsgAppendResponse
            && !m.reject
            && m.index == 4),
        "the learner should have acknowledged entry 4"
    );
    assert_eq!(
        committed(&net, 1),
        3,
        "entry 4 committed with the learner's ack counted"
    );
    heal(&mut net, 1);
    assert_committed(&net, &[1, 2, 3], 4);

    change(&mut net, 1, auto("v3")); // index 5
    assert_conf_logs(
        &net,
        &[1, 2, 3],
        &[(2, cs(&[1, 2], &[3])), (5, cs(&[1, 2, 3], &[]))],
    );
    // Same cut: now 1 and 3 are a majority of {1, 2, 3}.
    net.cut(1, 2);
    put(&mut net, 1, b"c"); // index 6
    assert_committed(&net, &[1, 3], 6);
    assert_applied(&net, &[1, 3], &[b"a", b"b", b"c"]);
    heal(&mut net, 1);
    assert_committed(&net, &[1, 2, 3], 6);
    assert_applied(&net, &[1, 2, 3], &[b"a", b"b", b"c"]);
}

// etcd/raft-rs: a learner is not promotable: neither its election timer nor an explicit campaign
// makes it a candidate, however long it goes without a leader.
#[test]
fn learner_never_campaigns() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, auto("l4"));
    assert_conf(&net, &[4], &cs(&[1, 2, 3], &[4]));
    net.remove_node(1);

    let mark = net.delivered.len();
    let term = net.node(4).term();
    for tick in 0..300 {
        net.tick(4);
        assert_eq!(
            net.node(4).state(),
            StateRole::Follower,
            "the learner left the follower role after {} ticks",
            tick + 1
        );
    }
    net.campaign(4);
    assert_eq!(net.node(4).state(), StateRole::Follower);
    assert_eq!(net.node(4).term(), term, "the learner started a new term");
    assert_eq!(
        sent_vote_requests(&net, 4, mark),
        0,
        "the learner asked for votes"
    );
}

// etcd: a candidate asks only voters, and a grant from a learner does not count toward winning.
#[test]
fn candidate_tally_ignores_learner_votes() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, auto("l4"));
    net.cut(2, 1);
    net.cut(2, 3);
    let mark = net.delivered.len();
    net.campaign(2);
    assert_eq!(net.node(2).state(), StateRole::Candidate);
    let term = net.node(2).term();
    assert!(
        !net.delivered[mark..]
            .iter()
            .any(|m| m.to == 4 && m.msg_type() == MessageType::MsgRequestVote),
        "the candidate asked the learner for its vote"
    );

    let grant = |from| Message {
        msg_type: MessageType::MsgRequestVoteResponse as i32,
        from,
        to: 2,
        term,
        ..Default::default()
    };
    // A grant from the learner: 2 of 4 members granted, but only 1 of 3 voters.
    net.node_mut(2)
        .raw
        .step(grant(4))
        .expect("the learner is a member: its response is accepted");
    assert_eq!(
        net.node(2).state(),
        StateRole::Candidate,
        "the learner's grant made the candidate win"
    );
    // Control: the same grant from voter 3 wins.
    net.node_mut(2).raw.step(grant(3)).expect("accepted");
    assert_eq!(net.node(2).state(), StateRole::Leader);
}

// Thesis §4.1 (one voter changed at a time): demoting a voter to learner is a simple change; the
// demoted node then neither counts for commit nor campaigns.
#[test]
fn voter_demoted_to_learner_stops_counting_and_campaigning() {
    let mut net = elected(3);
    change(&mut net, 1, v1(ConfChangeType::AddLearnerNode, 3)); // index 2
    assert_conf_logs(&net, &[1, 2, 3], &[(2, cs(&[1, 2], &[3]))]);

    net.cut(1, 2);
    put(&mut net, 1, b"a"); // index 3
    assert_eq!(
        last_index(&net, 3),
        3,
        "the learner should still receive entries"
    );
    assert_eq!(
        committed(&net, 1),
        2,
        "committed with the demoted node's ack counted"
    );
    heal(&mut net, 1);
    assert_committed(&net, &[1, 2, 3], 3);
    assert_applied(&net, &[1, 2, 3], &[b"a"]);

    net.remove_node(1);
    let mark = net.delivered.len();
    for _ in 0..300 {
        net.tick(3);
    }
    assert_eq!(net.node(3).state(), StateRole::Follower);
    assert_eq!(
        sent_vote_requests(&net, 3, mark),
        0,
        "the demoted node campaigned"
    );
}
