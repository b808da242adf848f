//! The follower's side: which snapshots it restores, refuses or uses only to advance its commit,
//! what it answers, and how the Ready hands the snapshot to the application.

use raft_core::eraftpb::{ConfChange, ConfChangeType, ConfState, Message, MessageType, Snapshot};
use raft_core::{Error, Raft, RawNode, Storage};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::MemStorage;

use crate::common::{append_msg, config, index_terms, logger, raft_on, storage_with};
use crate::support::*;

/// Node 2 of {1, 2, 3} at term 1 holding entries `1..=last` of term 1, committed up to `commit`.
fn follower(last: u64, commit: u64) -> Raft<MemStorage> {
    raft_on(
        2,
        storage_with(&VOTERS, &payload_entries(1, last, 1), 1, commit),
    )
}

/// What a refused or ignored snapshot must leave untouched: the term, the log, the commit index,
/// the (absence of an) incoming snapshot and the membership.
#[derive(Debug, PartialEq)]
struct Observed {
    term: u64,
    log: Vec<(u64, u64)>,
    first_index: u64,
    committed: u64,
    has_snapshot: bool,
    conf: ConfState,
}

fn observe(r: &Raft<MemStorage>) -> Observed {
    Observed {
        term: r.term,
        log: index_terms(r),
        first_index: r.raft_log.first_index(),
        committed: r.raft_log.committed,
        has_snapshot: r.raft_log.unstable_snapshot().is_some(),
        conf: r.prs.conf_state(),
    }
}

/// The single append response `r` sent, which must wait for persistence.
fn the_response(r: &mut Raft<MemStorage>) -> Message {
    assert!(
        r.msgs.is_empty(),
        "nothing may go out before persisting: {:?}",
        r.msgs
    );
    let msgs = r.read_messages();
    assert_eq!(msgs.len(), 1, "exactly one answer: {msgs:?}");
    assert_eq!(msgs[0].msg_type, MessageType::MsgAppendResponse as i32);
    assert!(
        !msgs[0].reject,
        "a snapshot is never answered with a rejection"
    );
    msgs[0].clone()
}

/// The basic restore: the log and membership are replaced, everything up to the snapshot is
/// committed, and the follower acknowledges the snapshot's index once it is persisted.
#[test]
fn a_restored_snapshot_replaces_log_and_membership_and_is_acknowledged() {
    let mut r = follower(5, 3);
    let cs = voters_cs(&[1, 2, 3, 4]);
    r.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, cs.clone(), SNAP_DATA),
    ))
    .unwrap();
    assert_eq!(
        r.raft_log.committed, SNAP_INDEX,
        "everything the snapshot covers is committed"
    );
    assert_eq!(r.raft_log.first_index(), SNAP_INDEX + 1);
    assert_eq!(r.raft_log.last_index(), SNAP_INDEX);
    assert_eq!(
        r.raft_log.term(SNAP_INDEX).unwrap(),
        1,
        "the snapshot point keeps its term"
    );
    assert!(r.raft_log.unstable_entries().is_empty());
    let pending = r
        .raft_log
        .unstable_snapshot()
        .expect("the snapshot waits to be persisted");
    assert_eq!(snap_point(pending), (SNAP_INDEX, 1));
    assert_eq!(
        r.prs.conf_state(),
        cs,
        "the membership comes from the snapshot"
    );
    assert_eq!(r.leader_id, 1);
    let resp = the_response(&mut r);
    assert_eq!((resp.to, resp.index, resp.term), (1, SNAP_INDEX, 1));
}

/// A snapshot at (10, term 2) conflicts with the follower's entry 10 of term 1: the whole log,
/// including the entries after 10, is replaced (they belong to a log being overwritten).
#[test]
fn a_snapshot_that_conflicts_with_the_log_replaces_it_entirely() {
    let mut r = follower(12, 3);
    r.step(snapshot_msg(
        1,
        2,
        2,
        snapshot(SNAP_INDEX, 2, voters_cs(&VOTERS), SNAP_DATA),
    ))
    .unwrap();
    assert_eq!(
        r.raft_log.last_index(),
        SNAP_INDEX,
        "entries 11 and 12 are gone"
    );
    assert_eq!(r.raft_log.term(SNAP_INDEX).unwrap(), 2);
    assert_eq!(r.raft_log.committed, SNAP_INDEX);
    assert_eq!(the_response(&mut r).index, SNAP_INDEX);
}

/// A snapshot below the follower's commit index says nothing new: it is ignored, and the answer
/// carries the commit index so the leader can skip ahead (etcd, raft-rs).
#[test]
fn a_follower_ignores_a_snapshot_below_its_commit_and_answers_with_its_commit() {
    let mut r = follower(12, 12);
    let before = observe(&r);
    r.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, voters_cs(&VOTERS), SNAP_DATA),
    ))
    .unwrap();
    assert_eq!(observe(&r), before, "a stale snapshot changes nothing");
    let resp = the_response(&mut r);
    assert_eq!(resp.index, 12, "answered with the commit index");
}

/// The follower's log already holds the snapshot's last entry (index and term): nothing needs
/// replacing, but everything up to it is committed now.
#[test]
fn a_follower_whose_log_has_the_snapshot_entry_fast_forwards_its_commit() {
    let mut r = follower(12, 3);
    let before = observe(&r);
    r.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, voters_cs(&VOTERS), SNAP_DATA),
    ))
    .unwrap();
    let after = observe(&r);
    assert_eq!(
        after.committed, SNAP_INDEX,
        "the commit index jumps to the snapshot"
    );
    assert_eq!(
        Observed {
            committed: before.committed,
            ..after
        },
        before,
        "the log, membership and term are kept, no snapshot is pending"
    );
    assert_eq!(
        the_response(&mut r).index,
        SNAP_INDEX,
        "answered with the new commit"
    );
}

/// A membership that no group can have (node 3 both voter and learner) is refused: the log, the
/// commit index and the membership stay as they were.
#[test]
fn a_snapshot_with_an_impossible_conf_state_is_refused_and_changes_nothing() {
    let mut r = follower(5, 3);
    let before = observe(&r);
    let impossible = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![3],
        ..Default::default()
    };
    r.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, impossible, SNAP_DATA),
    ))
    .unwrap();
    assert_eq!(
        observe(&r),
        before,
        "the impossible snapshot changed the follower"
    );
    assert_eq!(
        the_response(&mut r).index,
        3,
        "answered with the unchanged commit index"
    );
}

/// Snapshot messages whose fields are impossible are refused with an error before anything
/// changes (DESIGN.md §5): not even the higher term of the message is taken.
#[test]
fn malformed_snapshot_messages_are_refused_and_change_nothing() {
    let good = || snapshot(20, 2, voters_cs(&VOTERS), b"x");
    let with_meta = |f: &dyn Fn(&mut raft_core::eraftpb::SnapshotMetadata)| {
        let mut s = good();
        f(s.metadata.as_mut().unwrap());
        Some(s)
    };
    let cases: Vec<(&str, Option<Snapshot>)> = vec![
        ("no snapshot", None),
        (
            "no metadata",
            Some(Snapshot {
                metadata: None,
                ..good()
            }),
        ),
        ("index 0", with_meta(&|m| m.index = 0)),
        ("term 0", with_meta(&|m| m.term = 0)),
        ("index u64::MAX", with_meta(&|m| m.index = u64::MAX)),
        ("term above the message's", with_meta(&|m| m.term = 3)),
        ("no membership", with_meta(&|m| m.conf_state = None)),
        (
            "no voters",
            with_meta(&|m| {
                m.conf_state = Some(ConfState {
                    learners: vec![1, 2],
                    ..Default::default()
                })
            }),
        ),
    ];
    for (what, snap) in cases {
        let mut r = follower(5, 3);
        let before = observe(&r);
        let m = Message {
            snapshot: snap.map(Box::new),
            ..crate::common::msg(MessageType::MsgSnapshot, 1, 2, 2)
        };
        let result = r.step(m);
        assert!(
            matches!(
                result,
                Err(Error::InvalidMessage {
                    msg_type: MessageType::MsgSnapshot,
                    ..
                })
            ),
            "{what}: expected InvalidMessage, got {result:?}"
        );
        assert_eq!(
            observe(&r),
            before,
            "{what}: the refused message changed the follower"
        );
        assert_eq!(r.leader_id, 0, "{what}: the sender was taken as leader");
        assert!(
            r.read_messages().is_empty(),
            "{what}: a refused message is not answered"
        );
    }
}

/// The Ready carries the snapshot (to persist, must_sync) and no committed entries: neither the
/// ones the snapshot covers (never handed out) nor the ones after it, which wait until the
/// snapshot is persisted. The applied index then jumps to the snapshot's.
#[test]
fn the_ready_carries_the_snapshot_and_no_committed_entries_until_it_is_persisted() {
    // Entries 1..=3 are committed but not yet handed out when the snapshot arrives.
    let storage = storage_with(&VOTERS, &payload_entries(1, 3, 1), 1, 3);
    let mut node = RawNode::new(&config(2), storage.clone(), &logger()).unwrap();
    node.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, voters_cs(&VOTERS), SNAP_DATA),
    ))
    .unwrap();

    let rd1 = node.ready().unwrap();
    assert!(!rd1.snapshot().is_empty(), "the Ready carries the snapshot");
    assert_eq!(snap_point(rd1.snapshot()), (SNAP_INDEX, 1));
    assert_eq!(&rd1.snapshot().data[..], SNAP_DATA);
    assert!(rd1.must_sync(), "a snapshot must be persisted durably");
    assert!(
        rd1.committed_entries().is_empty(),
        "entries covered by the snapshot are never handed out: {:?}",
        rd1.committed_entries()
    );
    assert_eq!(rd1.hard_state().map(|hs| hs.commit), Some(SNAP_INDEX));
    assert!(
        rd1.messages().is_empty(),
        "the acknowledgement waits for persistence"
    );
    assert_eq!(rd1.persisted_messages().len(), 1);
    assert_eq!(rd1.persisted_messages()[0].index, SNAP_INDEX);

    // The leader goes on before the snapshot is persisted: entries 11 and 12, committed.
    node.step(append_msg(
        1,
        2,
        1,
        (SNAP_INDEX, 1),
        payload_entries(11, 12, 1),
        12,
    ))
    .unwrap();
    let rd2 = node.ready().unwrap();
    assert!(rd2.snapshot().is_empty(), "the snapshot is handed out once");
    assert_eq!(indexes_of(rd2.entries()), vec![11, 12]);
    assert_eq!(rd2.hard_state().map(|hs| hs.commit), Some(12));
    assert!(
        rd2.committed_entries().is_empty(),
        "nothing is applied before the snapshot is persisted: {:?}",
        rd2.committed_entries()
    );

    storage.wl().apply_snapshot(rd1.snapshot().clone()).unwrap();
    storage.wl().append(rd2.entries()).unwrap();
    let light1 = node.advance(rd1).unwrap();
    assert!(
        light1.committed_entries().is_empty(),
        "entries 11, 12 are not persisted yet"
    );
    assert_eq!(
        node.raft.raft_log.applied, SNAP_INDEX,
        "applied jumps to the snapshot"
    );
    let light2 = node.advance(rd2).unwrap();
    assert_eq!(
        indexes_of(light2.committed_entries()),
        vec![11, 12],
        "once everything is persisted the entries after the snapshot are handed out"
    );
    node.advance_apply();
    assert_eq!(node.raft.raft_log.applied, 12);
    assert!(!node.has_ready(), "nothing is handed out twice");
}

fn indexes_of(entries: &[raft_core::eraftpb::Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

/// A snapshot taken inside a joint configuration (demoting 3, adding 4) restores the joint
/// configuration itself, and a restart from the persisted snapshot finds it again.
#[test]
fn a_joint_conf_state_in_a_snapshot_restores_a_joint_config() {
    let joint = ConfState {
        voters: vec![1, 2, 4],
        voters_outgoing: vec![1, 2, 3],
        learners_next: vec![3],
        auto_leave: true,
        ..Default::default()
    };
    let storage = storage_with(&VOTERS, &payload_entries(1, 3, 1), 1, 3);
    let mut node = RawNode::new(&config(2), storage.clone(), &logger()).unwrap();
    node.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, joint.clone(), SNAP_DATA),
    ))
    .unwrap();
    let conf = node.raft.prs.conf();
    assert!(
        conf.voters.is_joint(),
        "the follower is in a joint configuration"
    );
    assert_eq!(node.raft.prs.conf_state(), joint);
    let members: Vec<u64> = (1..=4).filter(|id| node.raft.prs.is_member(*id)).collect();
    assert_eq!(
        members,
        vec![1, 2, 3, 4],
        "every member of both halves is a member"
    );
    assert!(node.raft.promotable(), "2 is a voter in both halves");

    let rd = node.ready().unwrap();
    assert_eq!(
        snap_conf(rd.snapshot()),
        joint,
        "the Ready's snapshot carries it"
    );
    storage.wl().apply_snapshot(rd.snapshot().clone()).unwrap();
    node.advance(rd).unwrap();

    let restarted = RawNode::new(&config(2), storage, &logger()).unwrap();
    assert!(restarted.raft.prs.conf().voters.is_joint());
    assert_eq!(
        restarted.raft.prs.conf_state(),
        joint,
        "a restart restores it too"
    );
    assert_eq!(restarted.raft.raft_log.committed, SNAP_INDEX);
}

/// Our departure from etcd and raft-rs (which refuse a snapshot whose membership lacks the
/// receiver): node 4 is added at index 7, but the leader's snapshot is at 6, without it. Node 4
/// restores it anyway and learns its own addition from the entries that follow.
#[test]
fn a_node_being_added_restores_a_snapshot_older_than_its_addition() {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 0..5u8 {
        net.propose(1, &[i]).unwrap();
    }
    net.node_mut(1).snapshot_and_compact(0).unwrap();
    assert_eq!(net.node(1).storage.rl().snapshot_metadata().index, 6);
    // A brand-new node with an empty storage, as an application starts one to be added.
    net.nodes.insert(
        4,
        Network::start_node(&default_config(4), MemStorage::new()),
    );
    let add = ConfChange {
        change_type: ConfChangeType::AddNode as i32,
        node_id: 4,
        ..Default::default()
    };
    net.delivered.clear();
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], add)
        .unwrap();
    net.stabilize();

    let snaps: Vec<&Message> = net
        .delivered
        .iter()
        .filter(|m| m.to == 4 && m.msg_type == MessageType::MsgSnapshot as i32)
        .collect();
    assert_eq!(snaps.len(), 1, "4 needed the snapshot");
    let snap = snaps[0].snapshot.as_ref().unwrap();
    assert_eq!(snap_point(snap).0, 6, "older than the addition at 7");
    assert_eq!(
        snap_conf(snap).voters,
        vec![1, 2, 3],
        "its membership lacks node 4"
    );

    let n4 = net.node(4);
    assert_eq!(
        n4.snapshots_restored, 1,
        "node 4 restored the older snapshot"
    );
    assert_eq!(
        n4.conf_state().voters,
        vec![1, 2, 3, 4],
        "and then applied its addition"
    );
    assert_eq!(n4.conf_log.last().map(|(i, _)| *i), Some(7));
    assert_eq!(
        n4.storage.initial_state().unwrap().conf_state.voters,
        vec![1, 2, 3, 4]
    );
    assert!(n4.raw.raft.promotable(), "node 4 is a voter now");
    assert_eq!(n4.applied_data(), net.node(1).applied_data());

    // Node 4 counts: with 3 cut off, the leader needs it for a quorum of {1, 2, 3, 4}.
    net.isolate(3);
    net.propose(1, b"after").unwrap();
    let leader = &net.node(1).raw.raft;
    assert_eq!(leader.raft_log.committed, 8, "1, 2 and 4 commit");
    for id in [1, 2, 4] {
        assert_eq!(
            net.node(id).applied_data(),
            net.node(1).applied_data(),
            "node {id}'s state machine"
        );
        assert_eq!(net.node(id).applied_index, 8, "node {id}'s applied index");
    }
}

/// Persisting a snapshot restores the state machine from it, so everything it covers counts as
/// applied even if the application, applying in the background, never reports it: a follower
/// whose storage then holds nothing before the snapshot must still be able to campaign. (Found
/// by the simulator: the node took the compacted, unreadable range `(applied, committed]` for
/// unapplied conf changes and refused to campaign forever.)
#[test]
fn a_persisted_snapshot_counts_as_applied_and_the_node_can_campaign() {
    let storage = MemStorage::new_with_conf_state(voters_cs(&VOTERS));
    let mut node = RawNode::new(&config(2), storage.clone(), &logger()).unwrap();
    node.step(snapshot_msg(
        1,
        2,
        1,
        snapshot(SNAP_INDEX, 1, voters_cs(&VOTERS), SNAP_DATA),
    ))
    .unwrap();
    let rd = node.ready().unwrap();
    assert!(!rd.snapshot().is_empty());
    storage.wl().apply_snapshot(rd.snapshot().clone()).unwrap();
    if let Some(hs) = rd.hard_state() {
        storage.wl().set_hardstate(*hs);
    }
    let number = rd.number();
    node.advance_append_async(rd);
    node.on_persist_ready(number);
    assert_eq!(
        (node.raft.raft_log.applied, node.raft.raft_log.committed),
        (SNAP_INDEX, SNAP_INDEX),
        "the snapshot's entries are applied once it is persisted"
    );
    // The leader goes quiet: the follower campaigns (no advance_apply_to was ever called).
    assert_campaigns_once_the_leader_is_quiet(&mut node);
}

/// Ticks `node` through two election timeouts with no leader to hear from; it must campaign.
fn assert_campaigns_once_the_leader_is_quiet(node: &mut RawNode<MemStorage>) {
    for _ in 0..2 * 10 {
        node.tick();
    }
    assert_ne!(
        node.raft.state,
        raft_core::StateRole::Follower,
        "the follower never campaigned"
    );
}

/// An application applying in the background may snapshot and compact its log before it reports
/// the entries applied. Compacted entries are covered by its snapshot, so they are not "committed
/// conf changes not applied yet" that would forbid campaigning: the follower still campaigns.
#[test]
fn entries_compacted_before_being_reported_applied_do_not_stop_a_campaign() {
    let storage = storage_with(&VOTERS, &payload_entries(1, 20, 1), 1, 20);
    let mut node = RawNode::new(&config(2), storage.clone(), &logger()).unwrap();
    let rd = node.ready().unwrap();
    assert_eq!(
        rd.committed_entries().len(),
        20,
        "1..=20 handed out for applying"
    );
    let number = rd.number();
    node.advance_append_async(rd);
    node.on_persist_ready(number);
    // Applied through 20 in the background, snapshotted at 15, compacted: not reported yet.
    storage
        .wl()
        .create_snapshot(15, None, bytes::Bytes::from_static(b"sm@15"))
        .unwrap();
    storage.wl().compact(16).unwrap();
    assert_eq!(node.raft.raft_log.applied, 0);
    assert_campaigns_once_the_leader_is_quiet(&mut node);
}
