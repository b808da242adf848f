//! The leader's side: when a snapshot is sent, what the follower's progress becomes, how
//! `report_snapshot` and the follower's answers move it on, and when nothing is sent.

use bytes::Bytes;
use raft_core::eraftpb::MessageType;
use raft_core::tracker::ProgressState;
use raft_core::{SnapshotStatus, StateRole};
use rafttest::network::default_config;
use rafttest::Network;

use crate::common::{append_ack, config, persist};
use crate::support::*;

/// The leader's log starts after its snapshot at 10 and follower 2's log ends at 5: the entries it
/// needs are gone, so the leader sends its snapshot and holds back appends (Raft paper §7).
#[test]
fn sending_a_snapshot_puts_the_follower_in_snapshot_state_with_the_pending_index() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    let msgs = follower_2_lags(&mut node);
    let r = &node.raft;

    let snaps = sent(&msgs, 2, MessageType::MsgSnapshot);
    assert_eq!(snaps.len(), 1, "one snapshot to 2, got {msgs:?}");
    let snap = snaps[0]
        .snapshot
        .as_ref()
        .expect("a MsgSnapshot carries a snapshot");
    assert_eq!(
        snap_point(snap),
        (SNAP_INDEX, SNAP_TERM),
        "the storage's snapshot is sent"
    );
    assert_eq!(snap_conf(snap).voters, VOTERS.to_vec());
    assert_eq!(
        &snap.data[..],
        SNAP_DATA,
        "the snapshot's data travels with it"
    );
    assert_eq!(snaps[0].term, LEADER_TERM);
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "no append next to the snapshot: {msgs:?}"
    );

    let p = pr(r, 2);
    assert_eq!(p.state, ProgressState::Snapshot);
    assert_eq!(
        p.pending_snapshot, SNAP_INDEX,
        "pending_snapshot is the snapshot's index"
    );
    assert_eq!(p.matched, 0, "nothing is known to match yet");
    assert!(p.is_paused(), "a follower receiving a snapshot is paused");
}

/// While the snapshot is in flight the leader sends that follower no appends, however much is
/// proposed, but keeps sending it heartbeats (which carry no commit beyond what it matched).
#[test]
fn a_pending_snapshot_pauses_appends_but_not_heartbeats() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    follower_2_lags(&mut node);
    for i in 0..3 {
        node.propose(vec![], format!("p{i}").into_bytes()).unwrap();
        let msgs = node.raft.read_messages();
        assert!(
            sent(&msgs, 2, MessageType::MsgAppend).is_empty()
                && sent(&msgs, 2, MessageType::MsgSnapshot).is_empty(),
            "proposal {i}: nothing may go to the follower in snapshot state: {msgs:?}"
        );
        assert_eq!(
            sent(&msgs, 3, MessageType::MsgAppend).len(),
            1,
            "proposal {i}: the replicating follower 3 still gets it: {msgs:?}"
        );
    }

    node.tick();
    let msgs = node.raft.read_messages();
    let hbs = sent(&msgs, 2, MessageType::MsgHeartbeat);
    assert_eq!(hbs.len(), 1, "a heartbeat still goes to 2: {msgs:?}");
    assert_eq!(
        hbs[0].commit, 0,
        "heartbeat commit = min(matched 0, committed) (etcd-io/raft#138)"
    );

    // Its answer un-pauses nothing while the snapshot is pending.
    node.raft
        .step(heartbeat_response(2, 1, LEADER_TERM))
        .unwrap();
    let msgs = node.raft.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty()
            && sent(&msgs, 2, MessageType::MsgSnapshot).is_empty(),
        "a heartbeat response does not end the snapshot state: {msgs:?}"
    );
    let p = pr(&node.raft, 2);
    assert_eq!(
        (p.state, p.pending_snapshot),
        (ProgressState::Snapshot, SNAP_INDEX)
    );
}

/// A failed snapshot: probe again from what is known to match, forget the pending snapshot, and
/// wait for the follower to be heard from (a heartbeat response) before trying again, which
/// needs a new snapshot since the entries are still compacted.
#[test]
fn snapshot_failure_probes_again_after_a_heartbeat_response_with_a_new_snapshot() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    follower_2_lags(&mut node);

    node.report_snapshot(2, SnapshotStatus::Failure);
    let p = pr(&node.raft, 2);
    assert_eq!(
        p.state,
        ProgressState::Probe,
        "Failure moves the follower to probe"
    );
    assert_eq!(
        p.pending_snapshot, 0,
        "Failure forgets the pending snapshot"
    );
    assert_eq!(
        p.next_idx,
        p.matched + 1,
        "probing restarts after what is known to match"
    );
    assert!(p.is_paused(), "paused until the follower is heard from");

    node.propose(vec![], b"p".to_vec()).unwrap();
    let msgs = node.raft.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty()
            && sent(&msgs, 2, MessageType::MsgSnapshot).is_empty(),
        "paused after a failure: {msgs:?}"
    );
    node.tick();
    let msgs = node.raft.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgSnapshot).is_empty(),
        "a heartbeat tick alone does not retry: {msgs:?}"
    );

    node.raft
        .step(heartbeat_response(2, 1, LEADER_TERM))
        .unwrap();
    let msgs = node.raft.read_messages();
    let snaps = sent(&msgs, 2, MessageType::MsgSnapshot);
    assert_eq!(
        snaps.len(),
        1,
        "a new snapshot attempt follows the heartbeat response: {msgs:?}"
    );
    assert_eq!(
        snap_point(snaps[0].snapshot.as_ref().unwrap()),
        (SNAP_INDEX, SNAP_TERM)
    );
    let p = pr(&node.raft, 2);
    assert_eq!(
        (p.state, p.pending_snapshot),
        (ProgressState::Snapshot, SNAP_INDEX)
    );
}

/// A delivered snapshot: probe from just after it, paused until the follower answers; its
/// acknowledgement of the snapshot's index starts replication of what follows.
#[test]
fn snapshot_finish_probes_after_the_snapshot_and_waits_for_the_follower() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    follower_2_lags(&mut node);

    node.report_snapshot(2, SnapshotStatus::Finish);
    let p = pr(&node.raft, 2);
    assert_eq!(
        p.state,
        ProgressState::Probe,
        "Finish moves the follower to probe"
    );
    assert_eq!(
        p.next_idx,
        SNAP_INDEX + 1,
        "next = max(matched + 1, pending + 1)"
    );
    assert_eq!(p.matched, 0, "the follower has not answered yet");
    assert!(p.is_paused(), "paused until the follower answers");

    node.propose(vec![], b"p".to_vec()).unwrap();
    let msgs = node.raft.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "no append before the follower answers: {msgs:?}"
    );

    // What a follower that restored the snapshot answers: its last index, the snapshot's.
    node.raft
        .step(append_ack(2, 1, LEADER_TERM, SNAP_INDEX))
        .unwrap();
    let p = pr(&node.raft, 2);
    assert_eq!(
        p.state,
        ProgressState::Replicate,
        "the answer starts replication"
    );
    assert_eq!(p.matched, SNAP_INDEX);
    let msgs = node.raft.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(
        apps.len(),
        1,
        "the entries after the snapshot follow: {msgs:?}"
    );
    assert_eq!((apps[0].index, apps[0].log_term), (SNAP_INDEX, SNAP_TERM));
    assert_eq!(
        indexes(apps[0]),
        vec![11, 12],
        "the empty entry 11 and the proposal 12"
    );
}

/// etcd-io/etcd#10308: an acknowledgement that arrives while the snapshot is in flight and shows
/// the follower already has the snapshot's index ends the snapshot state at once.
#[test]
fn an_append_response_covering_the_pending_snapshot_aborts_it() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    follower_2_lags(&mut node);
    assert_eq!(pr(&node.raft, 2).state, ProgressState::Snapshot);

    // An acknowledgement of entry 11 (say, of an append sent before the snapshot was needed).
    node.raft
        .step(append_ack(2, 1, LEADER_TERM, SNAP_INDEX + 1))
        .unwrap();
    let p = pr(&node.raft, 2);
    assert_eq!(p.state, ProgressState::Replicate, "Snapshot -> Replicate");
    assert_eq!(p.matched, SNAP_INDEX + 1);
    assert_eq!(p.next_idx, SNAP_INDEX + 2);
    assert_eq!(p.pending_snapshot, 0);

    node.propose(vec![], b"p".to_vec()).unwrap();
    let msgs = node.raft.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(apps.len(), 1, "appends flow again: {msgs:?}");
    assert_eq!(indexes(apps[0]), vec![12]);
    // A late report of the aborted snapshot changes nothing.
    node.report_snapshot(2, SnapshotStatus::Finish);
    assert_eq!(pr(&node.raft, 2).state, ProgressState::Replicate);
}

/// The other catch-up rule of etcd-io/etcd#10308: the snapshot (at 10) is newer than the leader's
/// compaction point (first index 9), and an acknowledgement of 8 shows the follower can get
/// everything else as entries, so the snapshot is no longer needed.
#[test]
fn an_append_response_reaching_the_leaders_first_index_aborts_the_snapshot() {
    let first_index = SNAP_INDEX - 1;
    let mut node = compacted_leader(&config(1), first_index);
    assert_eq!(node.raft.raft_log.first_index(), first_index);
    follower_2_lags(&mut node);
    let p = pr(&node.raft, 2);
    assert_eq!(
        (p.state, p.pending_snapshot),
        (ProgressState::Snapshot, SNAP_INDEX)
    );

    node.raft
        .step(append_ack(2, 1, LEADER_TERM, first_index - 1))
        .unwrap();
    let p = pr(&node.raft, 2);
    assert_eq!(
        p.state,
        ProgressState::Replicate,
        "matched + 1 >= first index: entries can be sent again"
    );
    assert_eq!((p.matched, p.next_idx), (first_index - 1, first_index));
    let msgs = node.raft.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(
        apps.len(),
        1,
        "the missing entries go as an append: {msgs:?}"
    );
    assert_eq!(apps[0].index, first_index - 1);
    assert_eq!(
        indexes(apps[0]),
        (first_index..=SNAP_INDEX + 1).collect::<Vec<_>>()
    );
}

/// A snapshot may be large: the leader sends one only to a follower it heard from since the last
/// check-quorum round (raft-rs, etcd), and sends it once the follower answers again.
#[test]
fn no_snapshot_is_sent_to_a_follower_that_is_not_recently_active() {
    let mut cfg = config(1);
    cfg.check_quorum = true;
    let mut node = compacted_leader(&cfg, SNAP_INDEX + 1);
    let r = &mut node.raft;
    // Follower 2 catches up with entry 11; then it misses the appends of 12..=16, which 3 commits.
    r.step(append_ack(2, 1, LEADER_TERM, 11)).unwrap();
    assert_eq!(pr(r, 2).state, ProgressState::Replicate);
    for i in 12..=16 {
        node.propose(vec![], format!("e{i}").into_bytes()).unwrap();
    }
    let r = &mut node.raft;
    r.read_messages();
    persist(r);
    r.step(append_ack(3, 1, LEADER_TERM, 16)).unwrap();
    assert_eq!(r.raft_log.committed, 16);
    persist(r);
    {
        let mut store = r.raft_log.store.wl();
        store
            .create_snapshot(16, None, Bytes::from_static(b"at 16"))
            .unwrap();
        store.compact(17).unwrap();
    }
    // A check-quorum round passes (1 and 3 were active) and clears every activity mark.
    for _ in 0..cfg.election_tick {
        node.tick();
    }
    let r = &mut node.raft;
    r.read_messages();
    assert_eq!(r.state, StateRole::Leader);
    assert!(
        !pr(r, 2).recent_active,
        "2 was not heard from in the last round"
    );
    // The transport reports 2 unreachable: probe from after its matched entry, 11, compacted.
    node.report_unreachable(2);
    assert_eq!(pr(&node.raft, 2).next_idx, 12);

    node.propose(vec![], b"p".to_vec()).unwrap();
    let msgs = node.raft.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgSnapshot).is_empty()
            && sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "nothing to a follower not recently active: {msgs:?}"
    );
    let p = pr(&node.raft, 2);
    assert_eq!((p.state, p.pending_snapshot), (ProgressState::Probe, 0));

    node.raft
        .step(heartbeat_response(2, 1, LEADER_TERM))
        .unwrap();
    let msgs = node.raft.read_messages();
    let snaps = sent(&msgs, 2, MessageType::MsgSnapshot);
    assert_eq!(
        snaps.len(),
        1,
        "once heard from, it gets the snapshot: {msgs:?}"
    );
    assert_eq!(snap_point(snaps[0].snapshot.as_ref().unwrap()).0, 16);
    let p = pr(&node.raft, 2);
    assert_eq!((p.state, p.pending_snapshot), (ProgressState::Snapshot, 16));
}

/// `SnapshotTemporarilyUnavailable` from storage: nothing is sent, the follower stays in probe
/// state, and the next heartbeat response retries.
#[test]
fn snapshot_temporarily_unavailable_sends_nothing_and_is_retried_later() {
    let mut node = compacted_leader(&config(1), SNAP_INDEX + 1);
    node.raft.raft_log.store.wl().trigger_snap_unavailable();
    let msgs = follower_2_lags(&mut node);
    assert!(
        sent(&msgs, 2, MessageType::MsgSnapshot).is_empty()
            && sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "nothing can be sent while the snapshot is unavailable: {msgs:?}"
    );
    let p = pr(&node.raft, 2);
    assert_eq!(p.state, ProgressState::Probe);
    assert_eq!(p.pending_snapshot, 0);
    assert_eq!(p.next_idx, 6, "the rejection hint was taken");

    node.raft
        .step(heartbeat_response(2, 1, LEADER_TERM))
        .unwrap();
    let msgs = node.raft.read_messages();
    let snaps = sent(&msgs, 2, MessageType::MsgSnapshot);
    assert_eq!(
        snaps.len(),
        1,
        "retried after the heartbeat response: {msgs:?}"
    );
    let p = pr(&node.raft, 2);
    assert_eq!(
        (p.state, p.pending_snapshot),
        (ProgressState::Snapshot, SNAP_INDEX)
    );
}

/// A follower cut off while the leader commits and compacts comes back: it gets the snapshot,
/// then the entries after it, and ends with the same state machine as everyone else.
#[test]
fn an_isolated_follower_recovers_by_snapshot_then_entries() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.isolate(3);
    for i in 0..10u8 {
        net.propose(1, &[b'a' + i]).unwrap();
    }
    // The leader snapshots at its applied index 11 and keeps the last 2 entries.
    net.node_mut(1).snapshot_and_compact(2).unwrap();
    let snap_index = net.node(1).storage.rl().snapshot_metadata().index;
    assert_eq!(snap_index, 11);
    assert_eq!(net.node(1).raw.raft.raft_log.first_index(), 10);
    assert_eq!(
        net.node(3).raw.raft.raft_log.last_index(),
        1,
        "3 missed everything"
    );

    net.recover();
    net.delivered.clear();
    net.propose(1, b"after").unwrap();
    for _ in 0..3 {
        net.tick(1);
    }

    let to_3: Vec<_> = net
        .delivered
        .iter()
        .filter(|m| m.to == 3 && m.from == 1)
        .collect();
    let snap_pos = to_3
        .iter()
        .position(|m| m.msg_type == MessageType::MsgSnapshot as i32)
        .expect("3 was sent a snapshot");
    assert_eq!(
        snap_point(to_3[snap_pos].snapshot.as_ref().unwrap()),
        (snap_index, 1)
    );
    let later_append = to_3[snap_pos..]
        .iter()
        .find(|m| m.msg_type == MessageType::MsgAppend as i32 && !m.entries.is_empty())
        .expect("entries follow the snapshot");
    assert_eq!(
        later_append.index, snap_index,
        "appends resume right after the snapshot"
    );

    let n3 = net.node(3);
    assert_eq!(n3.snapshots_restored, 1);
    let leader = &net.node(1).raw.raft;
    let p = pr(leader, 3);
    assert_eq!(p.state, ProgressState::Replicate);
    assert_eq!(p.matched, leader.raft_log.last_index());
    for id in 1..=3 {
        let n = net.node(id);
        assert_eq!(n.raw.raft.raft_log.committed, 12, "node {id}'s commit");
        assert_eq!(n.applied_index, 12, "node {id}'s applied index");
        assert_eq!(
            n.applied_data(),
            net.node(1).applied_data(),
            "node {id}'s state machine"
        );
    }
    assert_eq!(
        net.node(3).applied_data().len(),
        11,
        "10 payloads and \"after\""
    );
}

/// A snapshot lost on the way is reported as a failure (the network does what a transport
/// would); once the follower is heard from again, a new one is sent and the follower catches up.
#[test]
fn a_lost_snapshot_is_sent_again_and_the_follower_catches_up() {
    let mut net = Network::with_config(3, default_config);
    net.campaign(1);
    net.isolate(3);
    for i in 0..5u8 {
        net.propose(1, &[i]).unwrap();
    }
    net.node_mut(1).snapshot_and_compact(0).unwrap();
    net.recover();
    net.ignore(MessageType::MsgSnapshot);
    net.propose(1, b"x").unwrap();
    net.tick(1);
    let p = pr(&net.node(1).raw.raft, 3);
    assert_eq!(
        (p.state, p.pending_snapshot),
        (ProgressState::Probe, 0),
        "the dropped snapshot was reported as failed"
    );
    assert_eq!(net.node(3).snapshots_restored, 0);

    net.recover();
    net.tick(1);
    net.tick(1);
    assert_eq!(net.node(3).snapshots_restored, 1);
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
    assert_eq!(pr(&net.node(1).raw.raft, 3).state, ProgressState::Replicate);
}
