//! Adding and removing voters one at a time (thesis §4.1): a new voter catches up from the
//! leader's log and then counts for commit; a removed follower stops receiving and stops counting.

use raft_core::eraftpb::{ConfChangeType, MessageType};
use raft_core::{Config, StateRole};
use rafttest::network::default_config;

use crate::support::*;

// Thesis §4.1/§4.2.1: the new server replicates the whole log, then its acknowledgement is needed
// like any other voter's (a group of 4 needs 3).
#[test]
fn added_voter_catches_up_and_then_counts_for_commit() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    put(&mut net, 1, b"b");
    join(&mut net, 4, 3);
    change(&mut net, 1, v1(ConfChangeType::AddNode, 4)); // index 4

    let all = [1, 2, 3, 4];
    assert_conf_logs(&net, &all, &[(4, cs(&[1, 2, 3, 4], &[]))]);
    assert_conf(&net, &all, &cs(&[1, 2, 3, 4], &[]));
    assert_applied(&net, &all, &[b"a", b"b"]);
    assert_committed(&net, &all, 4);

    // Two of four voters cut off: the leader and node 2 hold the entry, 2 of 4 is no majority.
    net.cut(1, 3);
    net.cut(1, 4);
    put(&mut net, 1, b"c"); // index 5
    assert_eq!(last_index(&net, 2), 5, "node 2 should hold entry 5");
    assert_eq!(
        committed(&net, 1),
        4,
        "entry 5 committed with acks from 2 of 4 voters"
    );

    // Node 4 back (node 3 still cut): 3 acks of 4, and node 4's is the one that made the difference.
    net.recover();
    net.cut(1, 3);
    for _ in 0..3 {
        net.tick(1);
    }
    assert_committed(&net, &[1, 2, 4], 5);
    assert_applied(&net, &[1, 2, 4], &[b"a", b"b", b"c"]);
    assert_eq!(last_index(&net, 3), 4, "node 3 was cut off and must lag");

    heal(&mut net, 1);
    assert_committed(&net, &all, 5);
    assert_applied(&net, &all, &[b"a", b"b", b"c"]);
}

// etcd-io/raft: a newcomer's progress starts at the leader's last index and the leader sends to
// it as soon as it applies the change, not at the next heartbeat.
#[test]
fn leader_probes_a_new_member_at_once_from_its_last_index() {
    let mut net = elected(3);
    put(&mut net, 1, b"a"); // index 2
    join(&mut net, 4, 3);
    change(&mut net, 1, v1(ConfChangeType::AddNode, 4)); // index 3

    let to_4: Vec<_> = net.delivered.iter().filter(|m| m.to == 4).collect();
    let first = to_4
        .first()
        .expect("the leader never sent anything to node 4");
    assert_eq!(
        first.msg_type(),
        MessageType::MsgAppend,
        "the first message to the new member must be an append, not a heartbeat"
    );
    assert_eq!(
        first.index, 2,
        "the first append to the new member must start at the leader's last index (3)"
    );
    assert!(
        net.delivered
            .iter()
            .all(|m| m.msg_type() != MessageType::MsgHeartbeat),
        "no tick happened, so no heartbeat may have been sent"
    );
    assert_conf_logs(&net, &[1, 2, 3, 4], &[(3, cs(&[1, 2, 3, 4], &[]))]);
    assert_applied(&net, &[1, 2, 3, 4], &[b"a"]);
    assert_committed(&net, &[1, 2, 3, 4], 3);
}

// etcd-io/raft confchange: a new member is marked recently active, so a check-quorum round right
// after the change does not depose the leader before the newcomer could answer; the next does.
#[test]
fn new_member_counts_as_recently_active_for_one_check_quorum_round() {
    let cfg = |id| Config {
        check_quorum: true,
        ..default_config(id)
    };
    let mut net = elected_with(1, cfg);
    join_with(&mut net, &cfg(2), 1);
    net.cut(1, 2);
    change(&mut net, 1, v1(ConfChangeType::AddNode, 2)); // the single voter commits it alone
    assert_conf(&net, &[1], &cs(&[1, 2], &[]));

    let timeout = 10; // default_config's election_tick
    for _ in 0..timeout {
        net.tick(1);
    }
    assert_eq!(
        net.node(1).state(),
        StateRole::Leader,
        "the first check-quorum round must count the unheard newcomer as active"
    );
    for _ in 0..timeout {
        net.tick(1);
    }
    assert_eq!(
        net.node(1).state(),
        StateRole::Follower,
        "node 2 was never heard from: the second check-quorum round must depose the leader"
    );
}

// A node that joins late replays every conf change from index 1 on top of the bootstrap
// membership, and ends with the group's configuration and the same conf change history.
#[test]
fn late_joiner_replays_every_earlier_conf_change() {
    let mut net = elected(3);
    join(&mut net, 5, 3);
    change(&mut net, 1, auto("l5")); // index 2
    put(&mut net, 1, b"a"); // index 3
    change(&mut net, 1, v1(ConfChangeType::RemoveNode, 3)); // index 4
    join(&mut net, 4, 3);
    change(&mut net, 1, auto("v4")); // index 5

    let want = [
        (2, cs(&[1, 2, 3], &[5])),
        (4, cs(&[1, 2], &[5])),
        (5, cs(&[1, 2, 4], &[5])),
    ];
    assert_conf_logs(&net, &[1, 2, 4, 5], &want);
    assert_conf_log_prefix(&net, 3, 1);
    assert_applied(&net, &[1, 2, 4, 5], &[b"a"]);
    assert_committed(&net, &[1, 2, 4, 5], 5);
}

// Thesis §4.1: a removed server no longer receives entries or heartbeats, and the remaining group
// (here 2 voters, so both are needed) commits without it.
#[test]
fn removed_follower_stops_receiving_and_the_rest_commit() {
    let mut net = elected(3);
    put(&mut net, 1, b"a"); // index 2
    change(&mut net, 1, v1(ConfChangeType::RemoveNode, 3)); // index 3
    assert_conf_logs(&net, &[1, 2], &[(3, cs(&[1, 2], &[]))]);
    assert_conf_log_prefix(&net, 3, 1);

    let mark = net.delivered.len();
    let frozen = last_index(&net, 3);
    put(&mut net, 1, b"b"); // index 4
    for _ in 0..3 {
        net.tick(1);
    }
    let to_3: Vec<_> = net.delivered[mark..]
        .iter()
        .filter(|m| m.to == 3)
        .map(raft_proto::describe_message)
        .collect();
    assert!(to_3.is_empty(), "the removed node still receives: {to_3:?}");
    assert_eq!(last_index(&net, 3), frozen, "the removed node's log grew");
    assert_applied(&net, &[1, 2], &[b"a", b"b"]);
    assert_committed(&net, &[1, 2], 4);

    // Two voters left: the leader alone is no majority.
    net.cut(1, 2);
    put(&mut net, 1, b"c"); // index 5
    assert_eq!(
        committed(&net, 1),
        4,
        "a 2-voter group committed with the leader's ack alone"
    );
    heal(&mut net, 1);
    assert_committed(&net, &[1, 2], 5);
    assert_applied(&net, &[1, 2], &[b"a", b"b", b"c"]);
    assert_eq!(last_index(&net, 3), frozen, "the removed node's log grew");
}

// etcd: a removed node may be added back under the same id; the leader tracks it afresh and it
// catches up on what it missed, ending with the same history as the others.
#[test]
fn removed_follower_can_be_added_back() {
    let mut net = elected(3);
    change(&mut net, 1, auto("r3")); // index 2
    put(&mut net, 1, b"a"); // index 3, not sent to node 3
    assert_eq!(last_index(&net, 3), 2, "the removed node received entry 3");
    change(&mut net, 1, auto("v3")); // index 4
    put(&mut net, 1, b"b"); // index 5

    let want = [(2, cs(&[1, 2], &[])), (4, cs(&[1, 2, 3], &[]))];
    assert_conf_logs(&net, &[1, 2], &want);
    assert_conf_log_prefix(&net, 3, 1);
    assert_conf(&net, &[1, 2, 3], &cs(&[1, 2, 3], &[]));
    assert_applied(&net, &[1, 2, 3], &[b"a", b"b"]);
    assert_committed(&net, &[1, 2, 3], 5);

    // Node 3 counts again: with node 2 cut off, 1 and 3 commit.
    net.cut(1, 2);
    put(&mut net, 1, b"c"); // index 6
    assert_committed(&net, &[1, 3], 6);
}
