//! Helpers of the snapshot tests: snapshots and snapshot messages, a leader whose log was
//! compacted behind a snapshot, the responses a follower sends, and message filters.

// Each test module uses a different subset of these helpers.
#![allow(dead_code)]

use bytes::Bytes;
use raft_core::eraftpb::SnapshotMetadata;
use raft_core::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
use raft_core::tracker::Progress;
use raft_core::{Config, Raft, RawNode, StateRole};
use raft_proto::prost::Message as _;
use storage_mem::MemStorage;

use crate::common::{self, hup, logger, msg, persist, voters_conf};

/// The index of the snapshot the compacted fixtures hold (entries `1..=SNAP_INDEX` of term 1).
pub(crate) const SNAP_INDEX: u64 = 10;
/// The term of the entry at `SNAP_INDEX`.
pub(crate) const SNAP_TERM: u64 = 1;
/// The application data of the fixtures' snapshot.
pub(crate) const SNAP_DATA: &[u8] = b"state machine at 10";
/// The voters of the fixtures.
pub(crate) const VOTERS: [u64; 3] = [1, 2, 3];

/// A snapshot at (`index`, `term`) with membership `cs` and application data `data`.
pub(crate) fn snapshot(index: u64, term: u64, cs: ConfState, data: &[u8]) -> Snapshot {
    Snapshot {
        data: Bytes::copy_from_slice(data),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(cs),
            index,
            term,
        }),
    }
}

/// A MsgSnapshot from `from` to `to` in `term` carrying `snap`.
pub(crate) fn snapshot_msg(from: u64, to: u64, term: u64, snap: Snapshot) -> Message {
    Message {
        snapshot: Some(Box::new(snap)),
        ..msg(MessageType::MsgSnapshot, from, to, term)
    }
}

/// The (index, term) of a snapshot's metadata, (0, 0) without one.
pub(crate) fn snap_point(s: &Snapshot) -> (u64, u64) {
    s.metadata.as_ref().map_or((0, 0), |m| (m.index, m.term))
}

/// The membership in a snapshot's metadata.
pub(crate) fn snap_conf(s: &Snapshot) -> ConfState {
    s.metadata
        .as_ref()
        .and_then(|m| m.conf_state.clone())
        .unwrap_or_default()
}

/// Entries `lo..=hi` of `term`, entry `i` carrying the payload `e<i>`.
pub(crate) fn payload_entries(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|i| common::ent_data(i, term, format!("e{i}").as_bytes()))
        .collect()
}

/// The storage of a member of `voters`: entries `1..=SNAP_INDEX` of term 1, all committed, a
/// snapshot at `SNAP_INDEX`, and the log compacted so that `first_index` is `first_index`
/// (`SNAP_INDEX + 1` discards every entry the snapshot covers).
pub(crate) fn compacted_storage(voters: &[u64], first_index: u64) -> MemStorage {
    let storage = common::storage_with(
        voters,
        &payload_entries(1, SNAP_INDEX, SNAP_TERM),
        SNAP_TERM,
        SNAP_INDEX,
    );
    {
        let mut core = storage.wl();
        core.create_snapshot(SNAP_INDEX, None, Bytes::from_static(SNAP_DATA))
            .expect("snapshot at the commit index");
        core.compact(first_index)
            .expect("compaction behind the snapshot");
    }
    storage
}

/// Makes `r` leader of the next term: it campaigns, every other voter grants, its own entries are
/// persisted and its messages drained. Followers are left in probe state, each with one probe (the
/// leader's empty entry) in flight.
pub(crate) fn elect(r: &mut Raft<MemStorage>) {
    r.step(hup()).expect("campaign");
    let (id, term) = (r.id, r.term);
    for v in r.prs.conf().voters.ids().into_iter().filter(|v| *v != id) {
        if r.state == StateRole::Leader {
            break;
        }
        r.step(msg(MessageType::MsgRequestVoteResponse, v, id, term))
            .expect("vote response");
    }
    assert_eq!(r.state, StateRole::Leader, "node {id} did not win");
    persist(r);
    r.read_messages();
}

/// The leader term of [`compacted_leader`].
pub(crate) const LEADER_TERM: u64 = 2;

/// Node 1 of {1, 2, 3} over [`compacted_storage`] (first index `first_index`), elected leader of
/// term 2: its empty entry is at `SNAP_INDEX + 1` = 11. Follower 3 acknowledged it (replicate
/// state, entry 11 committed); follower 2 has not answered its probe yet (probe state, paused).
/// Messages are drained.
pub(crate) fn compacted_leader(cfg: &Config, first_index: u64) -> RawNode<MemStorage> {
    let storage = compacted_storage(&VOTERS, first_index);
    let mut node = RawNode::new(cfg, storage, &logger()).expect("valid test node");
    let r = &mut node.raft;
    elect(r);
    assert_eq!(r.term, LEADER_TERM);
    let last = r.raft_log.last_index();
    assert_eq!(
        last,
        SNAP_INDEX + 1,
        "the leader's empty entry follows the snapshot"
    );
    r.step(common::append_ack(3, 1, LEADER_TERM, last))
        .expect("ack from 3");
    assert_eq!(
        r.raft_log.committed, last,
        "entry 11 is committed by 1 and 3"
    );
    r.read_messages();
    node
}

/// Follower `from` rejects the append after `rejected`, hinting that its log matches up to
/// (`hint`, `hint_term`) (the raft-rs rejection form).
pub(crate) fn reject(from: u64, to: u64, term: u64, rejected: u64, hint: (u64, u64)) -> Message {
    Message {
        index: rejected,
        reject: true,
        reject_hint: hint.0,
        log_term: hint.1,
        ..msg(MessageType::MsgAppendResponse, from, to, term)
    }
}

/// A heartbeat response from `from` to `to` in `term`.
pub(crate) fn heartbeat_response(from: u64, to: u64, term: u64) -> Message {
    msg(MessageType::MsgHeartbeatResponse, from, to, term)
}

/// Follower 2 of [`compacted_leader`] rejects the leader's probe: its log ends at index 5 (term
/// 1), far below the leader's first index. Returns what the leader sends next.
pub(crate) fn follower_2_lags(node: &mut RawNode<MemStorage>) -> Vec<Message> {
    let r = &mut node.raft;
    r.step(reject(2, 1, LEADER_TERM, SNAP_INDEX, (5, 1)))
        .expect("rejection from 2");
    r.read_messages()
}

/// The messages of `msg_type` to `to` among `msgs`.
pub(crate) fn sent(msgs: &[Message], to: u64, msg_type: MessageType) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.to == to && m.msg_type == msg_type as i32)
        .collect()
}

/// The leader's progress of follower `id`.
pub(crate) fn pr(r: &Raft<MemStorage>, id: u64) -> &Progress {
    r.prs.get(id).expect("a member")
}

/// The indexes of the entries an append carries.
pub(crate) fn indexes(m: &Message) -> Vec<u64> {
    m.entries.iter().map(|e| e.index).collect()
}

/// The state machine data of a `rafttest::Network` snapshot holding `entries` (the network encodes
/// its applied payloads as the entries of a message).
pub(crate) fn network_snapshot_data(entries: &[Entry]) -> Vec<u8> {
    Message {
        entries: entries.to_vec(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The membership of a cluster of `voters` (re-exported for the test modules).
pub(crate) fn voters_cs(voters: &[u64]) -> ConfState {
    voters_conf(voters)
}
