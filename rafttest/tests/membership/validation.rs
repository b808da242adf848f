//! What a leader accepts as a conf change proposal (etcd-io/raft `stepLeader` on `MsgProp`): one
//! change in flight at a time (also across an election), only the leave while joint, no leave when
//! not joint, nothing that removes every voter; with `disable_conf_change_validation` everything is
//! appended and an inapplicable change is skipped identically by every node. Also: forwarding from
//! followers, v1 and v2 changes, and no campaign while a committed conf change is unapplied.

use raft_core::eraftpb::{
    ConfChangeTransition, ConfChangeType, Entry, EntryType, HardState, Message, MessageType,
};
use raft_core::{Config, Error, RawNode, StateRole};
use raft_proto::ConfChangeI;
use rafttest::network::default_config;
use storage_mem::MemStorage;

use crate::support::*;

/// Asserts that `result` is a conf change refusal.
fn assert_refused(result: raft_core::Result<()>, what: &str) {
    match result {
        Err(Error::ConfChange(_)) => {}
        other => panic!("{what}: expected Err(Error::ConfChange(_)), got {other:?}"),
    }
}

// etcd: `pendingConfIndex`: a second change is refused until the first is applied; the refusal
// appends nothing, and once the first is applied a new one is accepted.
#[test]
fn second_conf_change_while_one_is_pending_is_refused() {
    let mut net = elected(3);
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], auto("l4"))
        .expect("the first change is valid"); // index 2
    let last = last_index(&net, 1);
    assert_refused(
        net.node_mut(1).raw.propose_conf_change(vec![], auto("l5")),
        "a second change while the first is unapplied",
    );
    assert_refused(
        net.node_mut(1)
            .raw
            .propose_conf_change(vec![], v1(ConfChangeType::AddLearnerNode, 5)),
        "a second (v1) change while the first is unapplied",
    );
    assert_eq!(last_index(&net, 1), last, "a refused change was appended");
    // Normal proposals are not held back by a pending conf change.
    net.node_mut(1)
        .raw
        .propose(vec![], b"a".to_vec())
        .expect("a normal proposal while a conf change is pending"); // index 3
    net.stabilize();
    assert_conf_logs(&net, &[1, 2, 3], &[(2, cs(&[1, 2, 3], &[4]))]);
    assert_applied(&net, &[1, 2, 3], &[b"a"]);

    change(&mut net, 1, auto("l5")); // index 4, now that index 2 is applied
    assert_conf_logs(
        &net,
        &[1, 2, 3],
        &[(2, cs(&[1, 2, 3], &[4])), (4, cs(&[1, 2, 3], &[4, 5]))],
    );
}

// etcd `becomeLeader`: pendingConfIndex = last index, because the inherited log may end with a
// conf change that is not applied yet; no new change until it is.
#[test]
fn new_leader_refuses_conf_changes_until_its_inherited_log_is_applied() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], auto("l4"))
        .expect("valid"); // index 2
                          // Only node 2 receives it and its acknowledgement is lost: entry 2 stays uncommitted.
    pump(&mut net, vec![], |m| {
        m.to == 3 || m.from == 3 || (m.from == 2 && m.to == 1)
    });
    assert_eq!(last_index(&net, 2), 2);
    assert_eq!(committed(&net, 2), 1);
    net.remove_node(1);

    // Node 2 wins with node 3's vote; its appends are lost, so it applies nothing new yet.
    net.node_mut(2).raw.campaign().expect("campaign");
    pump(&mut net, vec![], |m| {
        matches!(
            m.msg_type(),
            MessageType::MsgAppend | MessageType::MsgAppendResponse
        )
    });
    assert!(is_leader(&net, 2), "node 2 should have won");
    assert_eq!(net.node(2).applied_index, 1);
    assert_refused(
        net.node_mut(2).raw.propose_conf_change(vec![], auto("v4")),
        "a change while the inherited entries (ending with a conf change) are unapplied",
    );
    assert_eq!(last_index(&net, 2), 3, "the refused change was appended");

    heal(&mut net, 2); // the inherited change commits and is applied
    assert_conf_logs(&net, &[2, 3, 4], &[(2, cs(&[1, 2, 3], &[4]))]);
    change(&mut net, 2, auto("v4")); // index 4
    assert_conf_logs(
        &net,
        &[2, 3, 4],
        &[(2, cs(&[1, 2, 3], &[4])), (4, cs(&[1, 2, 3, 4], &[]))],
    );
}

// etcd confchange: leaving a joint configuration that does not exist is refused.
#[test]
fn leave_joint_when_not_joint_is_refused() {
    let mut net = elected(3);
    assert_refused(propose_cc(&mut net, 1, leave()), "a leave while not joint");
    assert_eq!(last_index(&net, 1), 1, "the refused leave was appended");
    assert_conf(&net, &[1, 2, 3], &cs(&[1, 2, 3], &[]));
    assert_conf_logs(&net, &[1, 2, 3], &[]);
}

// etcd `stepLeader`: while joint, only the leave may be proposed (v1 or v2, simple or joint).
#[test]
fn non_leave_change_while_joint_is_refused() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "v4")); // index 2
    let joint_cs = joint(&[1, 2, 3, 4], &[1, 2, 3], false);
    assert_conf(&net, &[1, 2, 3, 4], &joint_cs);

    assert_refused(
        propose_cc(&mut net, 1, auto("l5")),
        "a simple v2 change while joint",
    );
    assert_refused(
        propose_cc(&mut net, 1, v1(ConfChangeType::RemoveNode, 3)),
        "a v1 change while joint",
    );
    assert_refused(
        propose_cc(&mut net, 1, v2(ConfChangeTransition::Explicit, "v5")),
        "entering a joint configuration while joint",
    );
    assert_eq!(last_index(&net, 1), 2, "a refused change was appended");

    change(&mut net, 1, leave()); // index 3
    assert_conf_logs(
        &net,
        &[1, 2, 3, 4],
        &[(2, joint_cs), (3, cs(&[1, 2, 3, 4], &[]))],
    );
}

// etcd confchange: a configuration without voters could never commit again.
#[test]
fn removing_every_voter_is_refused() {
    let mut single = elected(1);
    assert_refused(
        propose_cc(&mut single, 1, auto("r1")),
        "removing the only voter",
    );
    assert_refused(
        propose_cc(&mut single, 1, v1(ConfChangeType::AddLearnerNode, 1)),
        "demoting the only voter",
    );
    assert_eq!(last_index(&single, 1), 1);

    let mut net = elected(3);
    assert_refused(
        propose_cc(&mut net, 1, auto("r1 r2 r3")),
        "removing every voter through a joint configuration",
    );
    assert_refused(
        propose_cc(
            &mut net,
            1,
            v2(ConfChangeTransition::Explicit, "r1 l2 r3 l4"),
        ),
        "removing and demoting every voter",
    );
    assert_eq!(last_index(&net, 1), 1, "a refused change was appended");
    assert_conf_logs(&net, &[1, 2, 3], &[]);
}

// `disable_conf_change_validation` (etcd `DisableConfChangeValidation`): everything is appended;
// a change that cannot be applied is refused by `apply_conf_change` on every node alike, and the
// group goes on.
#[test]
fn without_validation_inapplicable_changes_are_skipped_identically_everywhere() {
    let cfg = |id| Config {
        disable_conf_change_validation: true,
        ..default_config(id)
    };
    let mut net = elected_with(3, cfg);
    join_with(&mut net, &cfg(4), 3);
    let raw = &mut net.node_mut(1).raw;
    raw.propose_conf_change(vec![], leave())
        .expect("a leave while not joint is accepted without validation"); // index 2
    raw.propose_conf_change(vec![], auto("r1 r2 r3"))
        .expect("removing every voter is accepted without validation"); // index 3
    raw.propose_conf_change(vec![], auto("l4"))
        .expect("a third change while two are pending is accepted without validation"); // index 4
    net.stabilize();

    let all = [1, 2, 3, 4];
    for id in all {
        assert_eq!(
            net.node(id).refused_conf_changes,
            vec![2, 3],
            "node {id} did not refuse exactly the inapplicable changes"
        );
    }
    assert_conf_logs(&net, &all, &[(4, cs(&[1, 2, 3], &[4]))]);
    assert!(is_leader(&net, 1));
    put(&mut net, 1, b"a"); // index 5

    // While joint, a change other than the leave is accepted too, and skipped everywhere.
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "v4")); // index 6
    change(&mut net, 1, auto("l5")); // index 7, inapplicable while joint
    change(&mut net, 1, leave()); // index 8
    for id in all {
        assert_eq!(
            net.node(id).refused_conf_changes,
            vec![2, 3, 7],
            "node {id} did not refuse exactly the inapplicable changes"
        );
    }
    let want = [
        (4, cs(&[1, 2, 3], &[4])),
        (6, joint(&[1, 2, 3, 4], &[1, 2, 3], false)),
        (8, cs(&[1, 2, 3, 4], &[])),
    ];
    assert_conf_logs(&net, &all, &want);
    put(&mut net, 1, b"b"); // index 9
    assert_applied(&net, &all, &[b"a", b"b"]);
    assert_committed(&net, &all, 9);
}

// §5.1/etcd: a follower forwards a proposal to the leader; a conf change is no exception, and it
// is the leader that appends it in its term.
#[test]
fn conf_change_proposed_on_a_follower_is_forwarded_and_applied() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    propose_cc(&mut net, 2, v1(ConfChangeType::AddNode, 4)).expect("forwarded");
    assert_conf_logs(&net, &[1, 2, 3, 4], &[(2, cs(&[1, 2, 3, 4], &[]))]);
    assert_eq!(
        conf_entries(&net, 1),
        vec![(2, EntryType::EntryConfChange)],
        "the forwarded change should be entry 2 of the leader's log"
    );
    assert_committed(&net, &[1, 2, 3, 4], 2);
}

// The follower cannot validate; the leader does, and a refused forwarded change appends nothing.
#[test]
fn forwarded_conf_change_refused_by_the_leader_appends_nothing() {
    let mut net = elected(3);
    let _ = propose_cc(&mut net, 2, leave()); // the follower only forwards
    for id in [1, 2, 3] {
        assert_eq!(
            last_index(&net, id),
            1,
            "node {id} appended a refused change"
        );
    }
    assert_conf_logs(&net, &[1, 2, 3], &[]);
}

// raft-rs `ConfChangeI`: a v1 `ConfChange` travels as EntryConfChange, a `ConfChangeV2` as
// EntryConfChangeV2, and both apply alike.
#[test]
fn v1_and_v2_conf_changes_both_apply() {
    let mut net = elected(3);
    join(&mut net, 4, 3);
    change(&mut net, 1, v1(ConfChangeType::AddLearnerNode, 4)); // index 2
    change(&mut net, 1, auto("v4")); // index 3
    change(&mut net, 1, v1(ConfChangeType::RemoveNode, 3)); // index 4
    change(&mut net, 1, auto("l3")); // index 5: a removed node may come back as learner

    assert_eq!(
        conf_entries(&net, 1),
        vec![
            (2, EntryType::EntryConfChange),
            (3, EntryType::EntryConfChangeV2),
            (4, EntryType::EntryConfChange),
            (5, EntryType::EntryConfChangeV2),
        ]
    );
    let want = [
        (2, cs(&[1, 2, 3], &[4])),
        (3, cs(&[1, 2, 3, 4], &[])),
        (4, cs(&[1, 2, 4], &[])),
        (5, cs(&[1, 2, 4], &[3])),
    ];
    assert_conf_logs(&net, &[1, 2, 4], &want);
    put(&mut net, 1, b"a"); // index 6
    assert_applied(&net, &[1, 2, 4], &[b"a"]);
    assert_committed(&net, &[1, 2, 4], 6);
}

// etcd `hup`: a node whose committed entries include an unapplied conf change must not campaign,
// since it would lead with a configuration that is about to change.
#[test]
fn node_with_committed_unapplied_conf_change_does_not_campaign() {
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let storage = MemStorage::new_with_conf_state(cs(&[1, 2, 3], &[]));
    let mut node = RawNode::new(&default_config(1), storage.clone(), &logger).expect("valid");
    let cc = auto("l4");
    let cc_entry = Entry {
        entry_type: EntryType::EntryConfChangeV2 as i32,
        term: 1,
        index: 2,
        data: cc.encode_to_bytes(),
        ..Default::default()
    };
    let empty = Entry {
        term: 1,
        index: 1,
        ..Default::default()
    };
    node.step(Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 2,
        to: 1,
        term: 1,
        entries: vec![empty, cc_entry],
        commit: 2,
        ..Default::default()
    })
    .expect("append accepted");
    // Persist, but do not apply: advance_append only.
    let rd = node.ready().expect("ready");
    {
        let mut store = storage.wl();
        store.append(rd.entries()).expect("persist");
        store.set_hardstate(HardState {
            term: 1,
            vote: 0,
            commit: 2,
        });
    }
    let light = node.advance_append(rd).expect("advance_append");
    assert_eq!(
        light.committed_entries().len(),
        2,
        "both entries should be handed out as committed"
    );
    assert_eq!(node.raft.raft_log.committed, 2);
    assert_eq!(node.raft.raft_log.applied, 0);

    node.campaign().expect("a refused campaign is not an error");
    for _ in 0..100 {
        node.tick();
    }
    assert_eq!(
        node.raft.state,
        StateRole::Follower,
        "campaigned with a committed conf change unapplied"
    );
    assert_eq!(node.raft.term, 1, "started a new term");
    assert!(
        node.raft.msgs_after_append.is_empty() && node.raft.msgs.is_empty(),
        "sent messages although it must not campaign"
    );

    // Control: once the change is applied, the same node campaigns.
    let conf = node.apply_conf_change(&cc).expect("applicable");
    assert_eq!(conf, cs(&[1, 2, 3], &[4]));
    node.advance_apply();
    assert_eq!(node.raft.raft_log.applied, 2);
    node.campaign().expect("campaign");
    assert_eq!(node.raft.state, StateRole::Candidate);
    assert_eq!(node.raft.term, 2);
}
