//! `RawNode::request_snapshot` (raft-rs semantics): a follower that lost or distrusts its state
//! machine asks the leader for a snapshot covering its last entry.

use raft_core::eraftpb::{Message, MessageType};
use raft_core::tracker::ProgressState;
use raft_core::{Error, RawNode, SnapshotStatus};
use rafttest::Network;
use storage_mem::MemStorage;

use crate::common::{append_msg, config, ent, logger, msg, storage_with};
use crate::support::*;

/// Node 2 of {1, 2, 3} following leader 1 in term 2: entries 1..=5 of term 1, then entry 6 of
/// term 2 from the leader, with the leader's commit `commit`. Messages drained.
fn follower_of_term_2(commit: u64) -> RawNode<MemStorage> {
    let storage = storage_with(&VOTERS, &payload_entries(1, 5, 1), 1, 5);
    let mut node = RawNode::new(&config(2), storage, &logger()).unwrap();
    node.step(append_msg(1, 2, 2, (5, 1), vec![ent(6, 2)], commit))
        .unwrap();
    node.raft.read_messages();
    assert_eq!((node.raft.leader_id, node.raft.term), (1, 2));
    node
}

fn heartbeat(from: u64, to: u64, term: u64, commit: u64) -> Message {
    Message {
        commit,
        ..msg(MessageType::MsgHeartbeat, from, to, term)
    }
}

/// Asserts `m` is the snapshot request of [`follower_of_term_2`] (commit 5, last entry (6, 2)).
fn assert_is_request(m: &Message, what: &str) {
    assert_eq!(
        m.msg_type,
        MessageType::MsgAppendResponse as i32,
        "{what}: {m:?}"
    );
    assert!(m.reject, "{what}: a request is a rejection: {m:?}");
    assert_eq!(
        m.request_snapshot, 6,
        "{what}: it names the last index: {m:?}"
    );
}

#[test]
fn request_snapshot_is_refused_on_a_leader() {
    let mut node = RawNode::new(&config(1), storage_with(&VOTERS, &[], 0, 0), &logger()).unwrap();
    elect(&mut node.raft);
    assert_eq!(node.request_snapshot(), Err(Error::RequestSnapshotDropped));
    assert!(node.raft.read_messages().is_empty(), "nothing is sent");
}

#[test]
fn request_snapshot_is_refused_without_a_leader() {
    let storage = storage_with(&VOTERS, &payload_entries(1, 5, 1), 1, 5);
    let mut node = RawNode::new(&config(2), storage, &logger()).unwrap();
    assert_eq!(node.raft.leader_id, 0);
    assert_eq!(node.request_snapshot(), Err(Error::RequestSnapshotDropped));
    assert!(node.raft.read_messages().is_empty(), "nothing is sent");
}

#[test]
fn request_snapshot_is_refused_while_a_request_is_pending() {
    let mut node = follower_of_term_2(5);
    node.request_snapshot().unwrap();
    node.raft.read_messages();
    assert_eq!(node.request_snapshot(), Err(Error::RequestSnapshotDropped));
    assert!(
        node.raft.read_messages().is_empty(),
        "no second request is sent"
    );
}

#[test]
fn request_snapshot_is_refused_while_a_received_snapshot_is_not_persisted() {
    let mut node = follower_of_term_2(5);
    node.step(snapshot_msg(
        1,
        2,
        2,
        snapshot(20, 2, voters_cs(&VOTERS), b"s"),
    ))
    .unwrap();
    node.raft.read_messages();
    assert!(node.raft.raft_log.unstable_snapshot().is_some());
    assert_eq!(node.request_snapshot(), Err(Error::RequestSnapshotDropped));
}

/// raft-rs refuses too: the request names the last index, which must be of the current term so
/// the leader is known to have it.
#[test]
fn request_snapshot_is_refused_when_the_last_entry_is_not_of_the_current_term() {
    let storage = storage_with(&VOTERS, &payload_entries(1, 5, 1), 1, 5);
    let mut node = RawNode::new(&config(2), storage, &logger()).unwrap();
    node.step(heartbeat(1, 2, 2, 5)).unwrap();
    node.raft.read_messages();
    assert_eq!((node.raft.leader_id, node.raft.term), (1, 2));
    assert_eq!(node.request_snapshot(), Err(Error::RequestSnapshotDropped));
    assert!(node.raft.read_messages().is_empty());
}

/// The raft-rs wire form: a rejecting MsgAppendResponse with index = commit, reject_hint = last
/// index, log_term = its term and request_snapshot = the index to cover; it promises nothing
/// durable but travels with the persisted messages like every append response.
#[test]
fn the_snapshot_request_message_carries_commit_last_index_and_term() {
    let mut node = follower_of_term_2(5);
    assert_eq!(node.raft.raft_log.committed, 5);
    node.request_snapshot().unwrap();
    let rd = node.ready().unwrap();
    assert!(rd.messages().is_empty(), "{:?}", rd.messages());
    assert_eq!(rd.persisted_messages().len(), 1);
    let m = &rd.persisted_messages()[0];
    let want = Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        from: 2,
        to: 1,
        term: 2,
        index: 5,
        reject: true,
        reject_hint: 6,
        log_term: 2,
        request_snapshot: 6,
        ..Default::default()
    };
    assert_eq!(*m, want);
}

/// While the request is pending the follower appends nothing and answers appends and heartbeats
/// with the request again (raft-rs), though it still learns the commit from heartbeats.
#[test]
fn a_pending_request_is_repeated_in_answer_to_appends_and_heartbeats() {
    let mut node = follower_of_term_2(5);
    node.request_snapshot().unwrap();
    node.raft.read_messages();

    node.step(append_msg(1, 2, 2, (6, 2), vec![ent(7, 2)], 6))
        .unwrap();
    let msgs = node.raft.read_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_is_request(&msgs[0], "answer to an append");
    assert_eq!(
        node.raft.raft_log.last_index(),
        6,
        "the append was not taken"
    );

    node.step(heartbeat(1, 2, 2, 6)).unwrap();
    let msgs = node.raft.read_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_is_request(&msgs[0], "answer to a heartbeat");
    assert_eq!(
        node.raft.raft_log.committed, 6,
        "the heartbeat's commit is taken"
    );
}

/// A group of 3 where node 1 leads and entries 1..=6 are applied everywhere; node 2 has asked for
/// a snapshot, which the leader could not send yet (its storage has none).
fn requested() -> Network {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 0..5u8 {
        net.propose(1, &[b'a' + i]).unwrap();
    }
    net.node_mut(2).raw.request_snapshot().unwrap();
    net.delivered.clear();
    net.stabilize();
    net
}

/// The leader takes the request (probe state, `pending_request_snapshot` = the follower's last
/// index), finds no snapshot covering it (`SnapshotTemporarilyUnavailable`), and retries when the
/// follower repeats the request in answer to a heartbeat, once the application made one. The
/// follower restores it and its request is cleared on both sides.
#[test]
fn the_leader_sends_a_snapshot_covering_the_requested_index_once_storage_has_one() {
    let mut net = requested();
    let p = pr(&net.node(1).raw.raft, 2);
    assert_eq!(p.pending_request_snapshot, 6, "the leader took the request");
    assert_eq!(p.state, ProgressState::Probe);
    assert!(
        !net.delivered
            .iter()
            .any(|m| m.msg_type == MessageType::MsgSnapshot as i32),
        "no snapshot exists yet"
    );

    // Now the leader's application snapshots its state machine at 6 (compacting nothing).
    let data = network_snapshot_data(&net.node(1).applied);
    net.node(1)
        .storage
        .wl()
        .create_snapshot(6, None, data.into())
        .unwrap();
    net.delivered.clear();
    net.tick(1);
    let snaps: Vec<&Message> = net
        .delivered
        .iter()
        .filter(|m| m.msg_type == MessageType::MsgSnapshot as i32)
        .collect();
    assert_eq!(snaps.len(), 1, "retried after the heartbeat round");
    assert_eq!(snaps[0].to, 2);
    assert!(
        snap_point(snaps[0].snapshot.as_ref().unwrap()).0 >= 6,
        "the snapshot covers the requested index"
    );

    let n2 = net.node(2);
    assert_eq!(n2.snapshots_restored, 1, "the follower restored it");
    assert_eq!(n2.applied_data(), net.node(1).applied_data());
    assert_eq!(pr(&net.node(1).raw.raft, 2).pending_request_snapshot, 0);

    // The follower's request is cleared: heartbeats get ordinary answers again.
    net.delivered.clear();
    net.tick(1);
    assert!(
        net.delivered
            .iter()
            .any(|m| m.from == 2 && m.msg_type == MessageType::MsgHeartbeatResponse as i32),
        "2 answers heartbeats normally: {:?}",
        net.delivered
    );
    assert!(
        !net.delivered
            .iter()
            .any(|m| m.from == 2 && m.request_snapshot != 0),
        "2 no longer asks"
    );
    // And it may ask again.
    assert_eq!(net.node_mut(2).raw.request_snapshot(), Ok(()));
}

/// raft-rs rule, kept for mixed clusters: a request carries the follower's commit index as the
/// rejected index; while replicating, one below the matched index is taken as stale and ignored.
/// The follower repeats it with a higher commit once heartbeats bring its commit up.
#[test]
fn a_request_carrying_a_commit_below_the_matched_index_is_ignored_as_stale() {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 0..5u8 {
        net.propose(1, &[i]).unwrap();
    }
    let leader = &mut net.node_mut(1).raw;
    assert_eq!(pr(&leader.raft, 2).matched, 6);
    let request = |commit: u64| {
        let mut m = msg(MessageType::MsgAppendResponse, 2, 1, 1);
        m.reject = true;
        m.index = commit;
        m.reject_hint = 6;
        m.log_term = 1;
        m.request_snapshot = 6;
        m
    };
    leader.step(request(5)).unwrap();
    let p = pr(&leader.raft, 2);
    assert_eq!(
        (p.state, p.pending_request_snapshot),
        (ProgressState::Replicate, 0),
        "commit 5 < matched 6: stale"
    );
    leader.step(request(6)).unwrap();
    let p = pr(&leader.raft, 2);
    assert_eq!(
        (p.state, p.pending_request_snapshot),
        (ProgressState::Probe, 6)
    );
}

/// After the requested snapshot is delivered and reported, the follower's acknowledgement (of
/// the snapshot index, which the leader already knew it matched) must end the pause, so that new
/// entries reach it without waiting for a heartbeat. etcd-io/raft's `stepLeader` handles this case:
/// `pr.MaybeUpdate(m.Index) || (pr.Match == m.Index && pr.State == StateProbe)` moves the probe to
/// replicate (its transcript `heartbeat_rep_recovers_from_probing.txt`).
#[test]
fn after_a_requested_snapshot_new_entries_reach_the_follower_without_a_heartbeat() {
    let mut net = requested();
    net.node_mut(1).snapshot_and_compact(u64::MAX).unwrap();
    net.tick(1);
    assert_eq!(net.node(2).snapshots_restored, 1);
    net.propose(1, b"next").unwrap();
    let p = pr(&net.node(1).raw.raft, 2);
    assert_eq!(
        (p.state, p.matched),
        (ProgressState::Replicate, 7),
        "follower 2 should replicate the new entry"
    );
    assert_eq!(net.node(2).applied_data(), net.node(1).applied_data());
}

/// The same pause, shown on the leader alone: Finish, then the follower's answer of the index it
/// was already known to match.
#[test]
fn an_answer_at_the_matched_index_after_finish_resumes_the_probe() {
    let mut net = snapshot_sent_on_request();
    let leader = &mut net.node_mut(1).raw;
    leader.report_snapshot(2, SnapshotStatus::Finish);
    leader.step(crate::common::append_ack(2, 1, 1, 6)).unwrap();
    let p = pr(&leader.raft, 2);
    assert!(
        !p.is_paused(),
        "the follower answered: state {:?}, matched {}, paused",
        p.state,
        p.matched
    );
}

/// The leader of [`requested`], its log compacted, sends follower 2 the snapshot it asked for:
/// follower 2 is in snapshot state at index 6, which it was already known to match.
fn snapshot_sent_on_request() -> Network {
    let mut net = requested();
    net.node_mut(1).snapshot_and_compact(u64::MAX).unwrap();
    let leader = &mut net.node_mut(1).raw;
    let mut request = msg(MessageType::MsgAppendResponse, 2, 1, 1);
    request.reject = true;
    request.index = 6;
    request.reject_hint = 6;
    request.log_term = 1;
    request.request_snapshot = 6;
    leader.step(request).unwrap();
    let msgs = leader.raft.read_messages();
    assert_eq!(sent(&msgs, 2, MessageType::MsgSnapshot).len(), 1);
    let p = pr(&leader.raft, 2);
    assert_eq!(
        (p.state, p.matched, p.pending_snapshot),
        (ProgressState::Snapshot, 6, 6)
    );
    net
}

/// raft-rs parity (issue 18): an acknowledgement of the index the leader already knew follower 2
/// matched is no news (it may be a duplicate sent before the request), so it neither ends the
/// snapshot state nor forgets the snapshot being sent; `report_snapshot` or a higher match does.
#[test]
fn a_duplicate_answer_at_the_matched_index_keeps_the_follower_in_snapshot_state() {
    let mut net = snapshot_sent_on_request();
    let leader = &mut net.node_mut(1).raw;
    for _ in 0..2 {
        leader.step(crate::common::append_ack(2, 1, 1, 6)).unwrap();
        let p = pr(&leader.raft, 2);
        assert_eq!(
            (p.state, p.pending_snapshot),
            (ProgressState::Snapshot, 6),
            "a duplicate answer moved the follower out of snapshot state"
        );
        assert!(p.is_paused(), "still waiting for the snapshot");
        let msgs = leader.raft.read_messages();
        assert!(
            sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
            "no append while the snapshot is pending: {msgs:?}"
        );
    }
    leader.report_snapshot(2, SnapshotStatus::Finish);
    assert_eq!(pr(&leader.raft, 2).state, ProgressState::Probe);
}

/// raft-rs parity (issue 18): while the leader cannot send the snapshot follower 2 asked for yet,
/// a duplicate acknowledgement of the index it already matched does not cancel the request.
#[test]
fn a_duplicate_answer_at_the_matched_index_keeps_a_snapshot_request() {
    let mut net = requested();
    let leader = &mut net.node_mut(1).raw;
    let p = pr(&leader.raft, 2);
    assert_eq!((p.matched, p.pending_request_snapshot), (6, 6));
    leader.step(crate::common::append_ack(2, 1, 1, 6)).unwrap();
    assert_eq!(
        pr(&leader.raft, 2).pending_request_snapshot,
        6,
        "the request was forgotten on a duplicate answer"
    );
}
