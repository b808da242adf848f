//! Membership changes across libraries: conf changes (v1 `ConfChange` and joint `ConfChangeV2`)
//! proposed by a leader or forwarded by a follower of either library are written by one library,
//! decoded and applied by the other, and every node switches to the same configurations at the
//! same log indexes; nodes of either library join by appends, learners are promoted, followers are
//! removed, and joint configurations are left automatically by leaders of both libraries.

use crate::support::{assert_everyone_follows, assert_no_refusals, propose_each, staggered, O, R};
use interop::{
    describe_log, ConfChangeForm, ConfRecord, EntrySummary, Lib, MixedCluster, StateRole,
};
use prost::Message as _;
use protobuf::{Message as _, ProtobufEnum as _};
use raft::eraftpb as theirs;
use raft_core::eraftpb as ours;
use raft_core::eraftpb::{ConfChangeTransition, EntryType, MessageType};

/// The configuration `voters` / `learners` (not joint) switched to at `index`.
fn simple(index: u64, voters: &[u64], learners: &[u64]) -> ConfRecord {
    ConfRecord {
        index,
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        voters_outgoing: vec![],
        learners_next: vec![],
        auto_leave: false,
    }
}

/// The joint configuration `incoming && outgoing` switched to at `index`.
fn joint(index: u64, incoming: &[u64], outgoing: &[u64], auto_leave: bool) -> ConfRecord {
    ConfRecord {
        index,
        voters: incoming.to_vec(),
        learners: vec![],
        voters_outgoing: outgoing.to_vec(),
        learners_next: vec![],
        auto_leave,
    }
}

/// The conf change `changes` (compact text) as `form`, encoded by each library:
/// `(prost bytes, rust-protobuf bytes)`.
fn encodings(changes: &str, form: ConfChangeForm) -> (Vec<u8>, Vec<u8>) {
    let singles = raft_proto::conf_changes_from_string(changes).expect("valid conf change text");
    let theirs_singles: Vec<theirs::ConfChangeSingle> = singles
        .iter()
        .map(|s| {
            let mut t = theirs::ConfChangeSingle::default();
            t.set_change_type(theirs::ConfChangeType::from_i32(s.change_type).expect("known"));
            t.node_id = s.node_id;
            t
        })
        .collect();
    match form {
        ConfChangeForm::V1 => {
            let ours = ours::ConfChange {
                change_type: singles[0].change_type,
                node_id: singles[0].node_id,
                ..Default::default()
            };
            let mut theirs = theirs::ConfChange::default();
            theirs.set_change_type(theirs_singles[0].get_change_type());
            theirs.node_id = theirs_singles[0].node_id;
            (
                ours.encode_to_vec(),
                theirs.write_to_bytes().expect("raft-rs encodes"),
            )
        }
        ConfChangeForm::V2(transition) => {
            let ours = ours::ConfChangeV2 {
                transition: transition as i32,
                changes: singles,
                ..Default::default()
            };
            let mut theirs = theirs::ConfChangeV2::default();
            theirs.set_transition(
                theirs::ConfChangeTransition::from_i32(transition as i32).expect("known"),
            );
            theirs.set_changes(theirs_singles.into());
            (
                ours.encode_to_vec(),
                theirs.write_to_bytes().expect("raft-rs encodes"),
            )
        }
    }
}

/// The entries of node `id`'s log carrying a conf change (of either type), in order.
fn conf_entries(c: &MixedCluster, id: u64) -> Vec<EntrySummary> {
    c.node(id)
        .log()
        .into_iter()
        .filter(|e| e.entry_type != EntryType::EntryNormal as i32)
        .collect()
}

/// Proposes `changes` as `form` at node `at`, asserts it is accepted, and returns the conf change
/// entry it became in the leader's log (the last conf change entry there), after checking that
/// the bytes in the log are what both libraries encode for that change.
fn propose_conf_change(
    c: &mut MixedCluster,
    at: u64,
    leader: u64,
    changes: &str,
    form: ConfChangeForm,
) -> EntrySummary {
    let before = conf_entries(c, leader).len();
    let result = c.propose_conf_change(at, changes, form);
    assert!(
        result.is_ok(),
        "node {at} ({:?}) refused the conf change {changes:?} ({form:?}): {result:?}",
        c.lib(at)
    );
    // The leader may have appended its auto-leave after it: the change is the first new one.
    let entries = conf_entries(c, leader);
    let Some(entry) = entries.get(before).cloned() else {
        panic!(
            "the conf change {changes:?} is not in leader {leader}'s log:\n{}",
            describe_log(&c.node(leader).log())
        )
    };
    let expected_type = match form {
        ConfChangeForm::V1 => EntryType::EntryConfChange,
        ConfChangeForm::V2(_) => EntryType::EntryConfChangeV2,
    };
    assert_eq!(
        entry.entry_type, expected_type as i32,
        "entry type of {changes:?}"
    );
    let (by_ours, by_theirs) = encodings(changes, form);
    assert_eq!(
        by_ours, by_theirs,
        "prost and rust-protobuf encode {changes:?} differently"
    );
    assert_eq!(
        entry.data, by_ours,
        "the entry data of {changes:?} is not the canonical encoding"
    );
    entry
}

/// Every node of `ids` switched to exactly `expected` (same indexes, same configurations), stored
/// the last one, and its library's tracker holds it now.
fn assert_conf_log(c: &MixedCluster, ids: &[u64], expected: &[ConfRecord]) {
    c.assert_conf_logs_identical(ids);
    let first = ids[0];
    assert_eq!(
        c.node(first).conf_log,
        expected,
        "node {first} ({:?}) switched to the wrong configurations:\n{}",
        c.lib(first),
        interop::describe_conf_log(&c.node(first).conf_log)
    );
    let last = expected.last().expect("a configuration");
    for &id in ids {
        let now = c.node(id).conf();
        assert_eq!(
            (
                &now.voters,
                &now.learners,
                &now.voters_outgoing,
                now.auto_leave
            ),
            (
                &last.voters,
                &last.learners,
                &last.voters_outgoing,
                last.auto_leave
            ),
            "node {id} ({:?}) runs another configuration than the last one it applied",
            c.lib(id)
        );
    }
}

/// No snapshot travelled: joining nodes caught up by appends alone (neither side compacts).
fn assert_no_snapshots(c: &MixedCluster) {
    assert!(
        c.delivered_of(MessageType::MsgSnapshot).is_empty(),
        "a snapshot was sent:\n{}",
        c.transcript()
    );
}

/// Nodes `ids` hold identical logs, applied identical payloads (`expected`), and have committed
/// and applied everything they hold.
fn assert_members_applied(c: &MixedCluster, ids: &[u64], expected: &[Vec<u8>]) {
    c.assert_logs_identical(ids);
    c.assert_applied_identical(ids);
    for &id in ids {
        let node = c.node(id);
        assert_eq!(
            node.applied_data(),
            expected,
            "node {id} ({:?}) applied the wrong payloads",
            node.lib()
        );
        assert_eq!(
            (node.commit(), node.applied_index),
            (node.last_index(), node.last_index()),
            "node {id} ({:?}) has not committed and applied its whole log",
            node.lib()
        );
    }
}

/// Ticks node `id` (alone) until `done` holds, at most `max` times; returns how many ticks it took.
fn tick_until(
    c: &mut MixedCluster,
    id: u64,
    max: usize,
    mut done: impl FnMut(&MixedCluster) -> bool,
) -> Option<usize> {
    for ticks in 0..=max {
        if done(c) {
            return Some(ticks);
        }
        if ticks < max {
            c.tick(id);
        }
    }
    None
}

/// Node 1 leads a 3-node group; node 4 of `new_lib` starts from the bootstrap membership and an
/// empty log; the leader adds it as a voter with a v1 `ConfChange` (simple protocol, §4.1 of the
/// thesis). Node 4 catches up by appends, every node switches to `{1,2,3,4}` at the same index,
/// the leader's quorum becomes 3 of 4, and node 4 can then be elected by the others.
fn leader_adds_voter_of_other_library_with_v1(libs: &[Lib], new_lib: Lib) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 2);
    c.add_node(4, new_lib, staggered(4));
    let cc = propose_conf_change(&mut c, 1, 1, "v4", ConfChangeForm::V1);
    let all = [1, 2, 3, 4];
    assert_conf_log(&c, &all, &[simple(cc.index, &all, &[])]);
    assert_members_applied(&c, &all, &expected);

    // The new quorum is 3 of 4: with nodes 3 and 4 cut off, nodes 1 and 2 commit nothing
    // (they would under {1,2,3}); once node 4 is back, it completes the quorum.
    let commit = c.node(1).commit();
    c.isolate(3);
    c.isolate(4);
    assert!(c.propose(1, b"needs-node-4").is_ok(), "leader 1 accepts");
    assert_eq!(
        c.node(1).commit(),
        commit,
        "leader 1 ({:?}) committed with 2 acknowledgements of 4 voters",
        c.lib(1)
    );
    c.recover();
    c.isolate(3);
    let caught_up = tick_until(&mut c, 1, 3, |c| c.node(4).commit() > commit);
    assert!(
        caught_up.is_some(),
        "node 4 ({new_lib:?}) should complete the quorum of leader 1:\n{}",
        c.transcript()
    );
    expected.push(b"needs-node-4".to_vec());
    c.recover();
    let caught_up = tick_until(&mut c, 1, 3, |c| c.node(3).commit() == c.node(1).commit());
    assert!(
        caught_up.is_some(),
        "node 3 should catch up once reconnected"
    );
    assert_members_applied(&c, &all, &expected);

    // Node 4 is a voter in everyone's eyes: it campaigns and the other library elects it.
    c.campaign(4);
    assert_everyone_follows(&c, 4);
    expected.extend(propose_each(&mut c, 4, "led-by-4", 2));
    assert_members_applied(&c, &all, &expected);
    assert_no_snapshots(&c);
    assert_no_refusals(&c);
}

#[test]
fn our_leader_adds_raft_rs_voter_with_conf_change_v1() {
    leader_adds_voter_of_other_library_with_v1(&[O, R, O], R);
}

#[test]
fn raft_rs_leader_adds_our_voter_with_conf_change_v1() {
    leader_adds_voter_of_other_library_with_v1(&[R, O, R], O);
}

/// Node 1 leads; node 4 of `new_lib` joins as a learner (v1 `AddLearnerNode`), catches up without
/// campaigning, then is promoted (v1 `AddNode`) and can lead. Every node records the learner
/// configuration and then the promoted one, at the same indexes.
fn leader_adds_learner_then_promotes_it(libs: &[Lib], new_lib: Lib) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 2);
    c.add_node(4, new_lib, staggered(4));
    let learner = propose_conf_change(&mut c, 1, 1, "l4", ConfChangeForm::V1);
    let all = [1, 2, 3, 4];
    assert_conf_log(&c, &all, &[simple(learner.index, &[1, 2, 3], &[4])]);
    expected.extend(propose_each(&mut c, 1, "with-learner", 2));
    assert_members_applied(&c, &all, &expected);

    // A learner never campaigns (thesis §4.2.1: it is not a voter), however long it is left alone.
    let term = c.node(4).term();
    c.isolate(4);
    for _ in 0..40 {
        c.tick(4);
    }
    assert_eq!(
        (c.node(4).role(), c.node(4).term()),
        (StateRole::Follower, term),
        "learner 4 ({new_lib:?}) campaigned"
    );
    c.recover();

    let voter = propose_conf_change(&mut c, 1, 1, "v4", ConfChangeForm::V1);
    assert_conf_log(
        &c,
        &all,
        &[
            simple(learner.index, &[1, 2, 3], &[4]),
            simple(voter.index, &all, &[]),
        ],
    );
    c.campaign(4);
    assert_everyone_follows(&c, 4);
    expected.extend(propose_each(&mut c, 4, "led-by-4", 2));
    assert_members_applied(&c, &all, &expected);
    assert_no_snapshots(&c);
    assert_no_refusals(&c);
}

#[test]
fn raft_rs_leader_adds_our_node_as_learner_then_promotes_it() {
    leader_adds_learner_then_promotes_it(&[R, O, R], O);
}

#[test]
fn our_leader_adds_raft_rs_node_as_learner_then_promotes_it() {
    leader_adds_learner_then_promotes_it(&[O, R, O], R);
}

/// Node 1 leads `{1,2,3}` and replaces voter 3 by node 4 of the other library with one
/// `ConfChangeV2` "v4 r3" (transition Auto, so joint consensus with auto-leave, thesis §4.3).
/// Every node enters `{1,2,4} && {1,2,3}` at the same index and leaves it at the next one, the
/// leave being the empty `ConfChangeV2` the leader appends by itself. Returns the cluster and the
/// number of leader heartbeat ticks it took for every node to apply the leave.
fn joint_replace_with_auto_leave(libs: &[Lib], new_lib: Lib) -> (MixedCluster, usize) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let leader_term = c.node(1).term();
    let mut expected = propose_each(&mut c, 1, "before", 2);
    c.add_node(4, new_lib, staggered(4));
    let enter = propose_conf_change(
        &mut c,
        1,
        1,
        "v4 r3",
        ConfChangeForm::V2(ConfChangeTransition::Auto),
    );
    let all = [1, 2, 3, 4];
    let ticks = tick_until(&mut c, 1, 5, |c| {
        all.iter().all(|&id| c.node(id).conf_log.len() == 2)
    });
    let Some(ticks) = ticks else {
        panic!(
            "not every node left the joint configuration within 5 heartbeats of leader 1 ({:?}):\n{}",
            c.lib(1),
            all.iter()
                .map(|&id| format!(
                    "node {id}:\n{}",
                    interop::describe_conf_log(&c.node(id).conf_log)
                ))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    // The leave is the leader's own entry right after the enter, in its term, with empty data
    // (an empty ConfChangeV2 encodes to nothing in both libraries); nobody proposed it.
    let confs = conf_entries(&c, 1);
    assert_eq!(confs.len(), 2, "enter and leave:\n{}", describe_log(&confs));
    let leave = &confs[1];
    assert_eq!(
        (
            leave.index,
            leave.term,
            leave.entry_type,
            leave.data.as_slice()
        ),
        (
            enter.index + 1,
            leader_term,
            EntryType::EntryConfChangeV2 as i32,
            &[][..]
        ),
        "the leave entry of leader 1 ({:?})",
        c.lib(1)
    );
    let (by_ours, by_theirs) = encodings("", ConfChangeForm::V2(ConfChangeTransition::Auto));
    assert!(
        by_ours.is_empty() && by_theirs.is_empty(),
        "the leave encodes to nothing"
    );
    assert!(
        c.delivered_of(MessageType::MsgPropose).is_empty(),
        "no proposal travelled: the leader appended the leave itself"
    );
    assert_conf_log(
        &c,
        &all,
        &[
            joint(enter.index, &[1, 2, 4], &[1, 2, 3], true),
            simple(leave.index, &[1, 2, 4], &[]),
        ],
    );

    // Node 3 is out: the new members commit without it and send it nothing more.
    let to_3 = c.delivered.iter().filter(|d| d.msg.to == 3).count();
    expected.extend(propose_each(&mut c, 1, "after", 2));
    for _ in 0..3 {
        c.tick(1);
    }
    assert_members_applied(&c, &[1, 2, 4], &expected);
    assert_eq!(
        c.delivered.iter().filter(|d| d.msg.to == 3).count(),
        to_3,
        "removed node 3 still gets messages:\n{}",
        c.transcript()
    );
    assert_no_snapshots(&c);
    assert_only_removed_node_refused(&c, 3);
    (c, ticks)
}

#[test]
fn our_leader_replaces_a_voter_jointly_and_leaves_automatically_with_raft_rs_followers() {
    let (_, ticks) = joint_replace_with_auto_leave(&[O, R, R], R);
    // Ours proposes the leave through its proposal path, so it goes out with the next Ready.
    assert_eq!(ticks, 0, "our leader should send the leave at once");
}

#[test]
fn raft_rs_leader_replaces_a_voter_jointly_and_leaves_automatically_with_our_followers() {
    let (_, ticks) = joint_replace_with_auto_leave(&[R, O, O], O);
    // raft-rs 0.7 `commit_apply` appends the leave with `append_entry` and broadcasts nothing:
    // followers get it with whatever append goes to them next (here the probes of the new
    // configuration and the commit broadcast of the catching-up node's acknowledgement), at the
    // latest with the append that answers the next heartbeat response.
    assert!(ticks <= 1, "the leave should go out by the first heartbeat");
}

/// Node 1 leads `{1,2,3}` where node 3 runs the other library; a v1 `RemoveNode` for node 3
/// commits everywhere (node 3 included) and then node 3 gets nothing more and, no longer a voter,
/// never campaigns.
fn leader_removes_follower_of_other_library(libs: &[Lib]) {
    assert_ne!(
        libs[0], libs[2],
        "the removed node must run the other library"
    );
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 2);
    let cc = propose_conf_change(&mut c, 1, 1, "r3", ConfChangeForm::V1);
    assert_conf_log(&c, &[1, 2, 3], &[simple(cc.index, &[1, 2], &[])]);
    assert_members_applied(&c, &[1, 2, 3], &expected);

    let to_3 = c.delivered.iter().filter(|d| d.msg.to == 3).count();
    expected.extend(propose_each(&mut c, 1, "after", 3));
    for _ in 0..3 {
        c.tick(1);
    }
    assert_members_applied(&c, &[1, 2], &expected);
    assert_eq!(
        c.delivered.iter().filter(|d| d.msg.to == 3).count(),
        to_3,
        "removed node 3 still gets messages:\n{}",
        c.transcript()
    );
    let term = c.node(3).term();
    c.isolate(3);
    for _ in 0..40 {
        c.tick(3);
    }
    assert_eq!(
        (c.node(3).role(), c.node(3).term()),
        (StateRole::Follower, term),
        "removed node 3 ({:?}) campaigned",
        c.lib(3)
    );
    assert_only_removed_node_refused(&c, 3);
}

#[test]
fn our_leader_removes_a_raft_rs_follower() {
    leader_removes_follower_of_other_library(&[O, O, R]);
}

#[test]
fn raft_rs_leader_removes_our_follower() {
    leader_removes_follower_of_other_library(&[R, R, O]);
}

/// The only refusals are responses from removed node `removed` that reached the leader after it
/// applied the removal; both libraries refuse a response from outside the configuration.
fn assert_only_removed_node_refused(c: &MixedCluster, removed: u64) {
    for r in &c.refusals {
        let msg_type = MessageType::try_from(r.msg.msg_type);
        assert!(
            r.msg.from == removed
                && matches!(
                    msg_type,
                    Ok(MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse)
                ),
            "unexpected refusal: {r}"
        );
    }
}

/// The `MsgPropose` follower `from` forwarded for a conf change: it crossed libraries, carries term
/// 0 and one entry whose type and bytes are exactly those of `entry` in the leader's log.
fn assert_forwarded(c: &MixedCluster, from: u64, entry: &EntrySummary) {
    let forwarded: Vec<_> = c
        .delivered_of(MessageType::MsgPropose)
        .into_iter()
        .filter(|d| d.msg.from == from && d.msg.entries.len() == 1)
        .filter(|d| d.msg.entries[0].data.as_ref() == entry.data.as_slice())
        .collect();
    assert_eq!(
        forwarded.len(),
        1,
        "follower {from} should have forwarded the conf change once:\n{}",
        c.transcript()
    );
    let f = forwarded[0];
    assert_ne!(f.from_lib, f.to_lib, "the forward must cross libraries");
    assert_eq!(f.msg.term, 0, "forwarded proposals carry term 0");
    assert_eq!(
        f.msg.entries[0].entry_type, entry.entry_type,
        "the forwarded entry type"
    );
}

/// A raft-rs follower forwards a v1 `AddNode` to our leader, which appends the very bytes the
/// raft-rs follower wrote; every node, the new one included, applies it.
#[test]
fn conf_change_v1_at_raft_rs_follower_is_forwarded_to_our_leader() {
    let mut c = MixedCluster::new(&[O, R, R], staggered);
    c.campaign(1);
    c.add_node(4, R, staggered(4));
    let cc = propose_conf_change(&mut c, 2, 1, "v4", ConfChangeForm::V1);
    assert_forwarded(&c, 2, &cc);
    let all = [1, 2, 3, 4];
    assert_conf_log(&c, &all, &[simple(cc.index, &all, &[])]);
    let expected = propose_each(&mut c, 3, "from-3", 2);
    assert_members_applied(&c, &all, &expected);
    assert_no_snapshots(&c);
    assert_no_refusals(&c);
}

/// Our follower forwards a joint `ConfChangeV2` with the Explicit transition to a raft-rs leader
/// (which then stays joint: explicit means the application leaves), and later forwards the
/// leave too. Every node enters and leaves at the same indexes.
#[test]
fn explicit_joint_change_and_leave_at_our_follower_are_forwarded_to_raft_rs_leader() {
    let mut c = MixedCluster::new(&[R, O, O], staggered);
    c.campaign(1);
    c.add_node(4, O, staggered(4));
    c.add_node(5, R, staggered(5));
    let explicit = ConfChangeForm::V2(ConfChangeTransition::Explicit);
    let enter = propose_conf_change(&mut c, 2, 1, "v4 l5", explicit);
    assert_forwarded(&c, 2, &enter);
    let all = [1, 2, 3, 4, 5];
    let entered = ConfRecord {
        learners: vec![5],
        ..joint(enter.index, &[1, 2, 3, 4], &[1, 2, 3], false)
    };
    // Explicit: nobody leaves on their own, not even after heartbeats.
    for _ in 0..3 {
        c.tick(1);
    }
    assert_conf_log(&c, &all, std::slice::from_ref(&entered));

    let leave = propose_conf_change(
        &mut c,
        3,
        1,
        "",
        ConfChangeForm::V2(ConfChangeTransition::Auto),
    );
    assert!(leave.data.is_empty(), "the leave encodes to nothing");
    assert_eq!(
        c.delivered_of(MessageType::MsgPropose)
            .iter()
            .filter(|d| d.msg.from == 3 && d.msg.entries.len() == 1)
            .count(),
        1,
        "follower 3 forwarded the leave"
    );
    assert_conf_log(
        &c,
        &all,
        &[
            entered,
            ConfRecord {
                learners: vec![5],
                ..simple(leave.index, &[1, 2, 3, 4], &[])
            },
        ],
    );
    let expected = propose_each(&mut c, 4, "from-4", 2);
    assert_members_applied(&c, &all, &expected);
    assert_no_snapshots(&c);
    assert_no_refusals(&c);
}

/// Node 1 leads and removes itself with a v1 `RemoveNode`. Ours steps down once it applies the
/// removal (`Config::step_down_on_removal`, on by default, like etcd's `StepDownOnRemoval`); the
/// raft-rs followers then elect a successor among themselves, and node 1 never campaigns.
#[test]
fn our_leader_removing_itself_steps_down_and_raft_rs_followers_elect_a_successor() {
    let mut c = MixedCluster::new(&[O, R, R], staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 2);
    let cc = propose_conf_change(&mut c, 1, 1, "r1", ConfChangeForm::V1);
    assert_conf_log(&c, &[1, 2, 3], &[simple(cc.index, &[2, 3], &[])]);
    assert_eq!(
        c.node(1).role(),
        StateRole::Follower,
        "our leader should step down once it applied its own removal"
    );
    let elected = c.tick_all_until(40, |c| {
        c.leader()
            .is_some_and(|l| l != 1 && c.node(l).role() == StateRole::Leader)
    });
    assert!(elected.is_some(), "no successor:\n{}", c.transcript());
    assert_eq!(c.leader(), Some(2), "node 2 has the shortest timeout");
    assert_eq!(c.node(1).role(), StateRole::Follower, "node 1 campaigned");
    expected.extend(propose_each(&mut c, 2, "led-by-2", 2));
    assert_members_applied(&c, &[2, 3], &expected);
    assert_only_removed_node_refused(&c, 1);
}

/// Behaviour difference: a raft-rs 0.7 leader that removes itself keeps leading (its
/// `post_conf_change` leaves stepping down as a TODO): it goes on sending heartbeats, so our
/// followers never time out, but it drops every proposal, its own and forwarded ones, since it is
/// no longer in its progress tracker. The group makes progress again only once the application
/// stops node 1; then our followers elect a successor among themselves.
#[test]
fn raft_rs_leader_removing_itself_keeps_leading_but_drops_proposals_until_stopped() {
    let mut c = MixedCluster::new(&[R, O, O], staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 2);
    let cc = propose_conf_change(&mut c, 1, 1, "r1", ConfChangeForm::V1);
    assert_conf_log(&c, &[1, 2, 3], &[simple(cc.index, &[2, 3], &[])]);
    for _ in 0..30 {
        c.tick_all();
    }
    assert_everyone_follows(&c, 1);
    let result = c.propose(1, b"at-removed-leader");
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.contains("proposal dropped")),
        "the removed raft-rs leader drops proposals: {result:?}"
    );
    assert!(
        c.propose(2, b"forwarded-by-2").is_ok(),
        "our follower forwards"
    );
    assert!(
        c.refusals.len() == 1
            && c.refusals[0].to == 1
            && c.refusals[0].msg.msg_type == MessageType::MsgPropose as i32,
        "the removed raft-rs leader should drop the forwarded proposal: {:?}",
        c.refusals
    );
    assert_members_applied(&c, &[1, 2, 3], &expected);

    // The application stops node 1: its heartbeats stop, and node 2 times out first.
    c.isolate(1);
    let elected = c.tick_all_until(40, |c| c.node(2).role() == StateRole::Leader);
    assert!(elected.is_some(), "no successor:\n{}", c.transcript());
    expected.extend(propose_each(&mut c, 2, "led-by-2", 2));
    assert_members_applied(&c, &[2, 3], &expected);
}

/// Behaviour difference: a second conf change proposed before the first is applied is refused by
/// our leader with an error and nothing is appended, while a raft-rs 0.7 leader accepts the
/// proposal and appends an empty `EntryNormal` in its place (as etcd does). Either way every node
/// applies the first change only, at the same index.
#[test]
fn second_conf_change_before_the_first_is_applied_is_refused_by_ours_and_blanked_by_raft_rs() {
    for libs in [[O, R, R], [R, O, O]] {
        let mut c = MixedCluster::new(&libs, staggered);
        c.campaign(1);
        let first = c.node_mut(1).propose_conf_change("l4", ConfChangeForm::V1);
        let second = c.node_mut(1).propose_conf_change("l5", ConfChangeForm::V1);
        c.stabilize();
        assert!(first.is_ok(), "{libs:?}: the first change: {first:?}");
        let log = c.node(1).log();
        let cc = conf_entries(&c, 1);
        assert_eq!(
            cc.len(),
            1,
            "{libs:?}: one conf change:\n{}",
            describe_log(&log)
        );
        let last = log.last().expect("entries");
        match libs[0] {
            Lib::Ours => {
                let err = second.expect_err("our leader should refuse the second change");
                assert!(err.contains("not applied yet"), "{libs:?}: {err}");
                assert_eq!(last.index, cc[0].index, "nothing appended after the first");
            }
            Lib::RaftRs => {
                assert!(second.is_ok(), "raft-rs accepts the proposal: {second:?}");
                assert_eq!(
                    (last.index, last.entry_type, last.data.is_empty()),
                    (cc[0].index + 1, EntryType::EntryNormal as i32, true),
                    "raft-rs appends an empty normal entry in place of the second change"
                );
            }
        }
        assert_conf_log(&c, &[1, 2, 3], &[simple(cc[0].index, &[1, 2, 3], &[4])]);
        assert_members_applied(&c, &[1, 2, 3], &[]);
        assert_no_refusals(&c);
    }
}

/// A change that removes every voter. A raft-rs 0.7 leader checks only for a pending change and
/// the joint state at proposal time, so it appends and commits it (proposed at the leader or
/// forwarded by our follower); then every node's `apply_conf_change` refuses it alike and the
/// configuration stays `{1,2,3}` everywhere. Our leader refuses it when proposed, with an error
/// or, when forwarded by a raft-rs follower, by refusing the `MsgPropose`.
#[test]
fn conf_change_removing_every_voter_is_refused_alike_by_both_libraries() {
    let remove_all = ConfChangeForm::V2(ConfChangeTransition::Auto);

    let mut c = MixedCluster::new(&[R, O, O], staggered);
    c.campaign(1);
    for at in [1, 2] {
        let result = c.propose_conf_change(at, "r1 r2 r3", remove_all);
        assert!(result.is_ok(), "node {at} ({:?}): {result:?}", c.lib(at));
    }
    let cc: Vec<u64> = conf_entries(&c, 1).iter().map(|e| e.index).collect();
    assert_eq!(cc.len(), 2, "raft-rs appends both");
    for id in [1, 2, 3] {
        let node = c.node(id);
        let refused: Vec<u64> = node.conf_refusals.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            refused,
            cc,
            "node {id} ({:?}) should refuse both: {:?}",
            node.lib(),
            node.conf_refusals
        );
        assert!(node.conf_log.is_empty(), "node {id} switched configuration");
        assert_eq!(node.conf().voters, vec![1, 2, 3], "node {id}'s voters");
    }
    let expected = propose_each(&mut c, 3, "still-working", 2);
    assert_members_applied(&c, &[1, 2, 3], &expected);
    assert_no_refusals(&c);

    let mut c = MixedCluster::new(&[O, R, R], staggered);
    c.campaign(1);
    let result = c.propose_conf_change(1, "r1 r2 r3", remove_all);
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.contains("removes every voter")),
        "our leader should refuse it: {result:?}"
    );
    assert!(c.propose_conf_change(2, "r1 r2 r3", remove_all).is_ok());
    assert!(
        c.refusals.len() == 1
            && c.refusals[0].msg.msg_type == MessageType::MsgPropose as i32
            && c.refusals[0].error.contains("removes every voter"),
        "our leader should refuse the forwarded proposal: {:?}",
        c.refusals
    );
    assert!(conf_entries(&c, 1).is_empty(), "nothing appended");
    let expected = propose_each(&mut c, 3, "still-working", 2);
    assert_members_applied(&c, &[1, 2, 3], &expected);
}
