//! Sharing: a Ready's entries are lent to the application (an `Arc` chunk shared with the log, no
//! copy) and the node keeps reading them as its own log until they are reported durable, also
//! across chunks when a leader replicates before its own write.

use std::sync::Arc;

use raft_core::eraftpb::{Message, MessageType};
use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::{RawNode, StateRole, NO_LIMIT};
use storage_mem::MemStorage;

use crate::common::{entry_ids, logger, msg};
use crate::fixtures::{
    assert_handed_out_once_from_storage, config, log_view, settle, write_parts, write_ready,
};

/// A single voter's proposals: the Ready's entries are shared with the log (one extra reference,
/// no copy), the log still reads them, and once reported durable the log lets go of them.
#[test]
fn lent_entries_are_shared_with_the_log_until_reported_durable() {
    let storage = MemStorage::bootstrap([1], []).expect("bootstrap");
    let mut raw = RawNode::new(
        &config(1, DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT),
        storage.clone(),
        &logger(),
    )
    .expect("start");
    raw.campaign().expect("campaign");
    settle(&mut raw, &storage);
    assert_eq!(raw.raft.state, StateRole::Leader);
    let base = raw.raft.raft_log.last_index();
    for i in 0..3 {
        raw.propose(vec![], format!("p{i}").into_bytes())
            .expect("propose");
    }
    let mut rd = raw.ready().expect("ready");
    let shared = rd
        .take_shared_entries()
        .expect("the proposals are handed out");
    assert_eq!(
        entry_ids(&shared),
        vec![(base + 1, 2), (base + 2, 2), (base + 3, 2)]
    );
    assert_eq!(
        Arc::strong_count(&shared),
        2,
        "the handle and the log share one buffer (no copy)"
    );
    let view = log_view(&raw);
    assert_eq!(
        view[view.len() - 3..],
        shared[..],
        "the node reads the lent entries as its own log"
    );
    for e in shared.iter() {
        assert_eq!(raw.raft.raft_log.term(e.index).ok(), Some(e.term));
    }
    write_parts(&storage, None, &shared, rd.hard_state().copied());
    let number = rd.number();
    raw.advance_append_async(rd);
    raw.on_persist_ready(number);
    assert_eq!(
        Arc::strong_count(&shared),
        1,
        "once reported durable the log no longer holds the lent chunk"
    );
    assert_eq!(raw.raft.raft_log.persisted, base + 3);
    let handed = settle(&mut raw, &storage);
    assert_handed_out_once_from_storage(&handed, base + 1, &storage, "single voter");
    assert_eq!(handed.as_slice(), &shared[..]);
}

/// A leader whose proposals sit in three lent chunks, none written yet, sends a follower that
/// must be caught up from the start one MsgAppend read across all the chunks (thesis §10.2.1:
/// the leader replicates before its own write): exactly its log.
#[test]
fn a_leader_replicates_from_lent_chunks_before_writing_them() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = RawNode::new(
        &config(1, DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT),
        storage.clone(),
        &logger(),
    )
    .expect("start");
    raw.campaign().expect("campaign");
    let rd = raw.ready().expect("ready");
    write_ready(&storage, &rd);
    drop(raw.advance(rd).expect("advance"));
    raw.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 2))
        .expect("vote");
    assert_eq!(raw.raft.state, StateRole::Leader);
    let mut handles = Vec::new();
    for round in 0..3 {
        for i in 0..2 {
            raw.propose(vec![], format!("r{round}p{i}").into_bytes())
                .expect("propose");
        }
        let mut rd = raw.ready().expect("ready");
        handles.push(rd.take_shared_entries());
        raw.advance_append_async(rd);
    }
    let log = log_view(&raw);
    assert_eq!(
        log.len(),
        7,
        "the leader's empty entry and six proposals, all lent"
    );
    // Node 2 is still probed (its first append is unanswered); a heartbeat response resumes it.
    raw.step(msg(MessageType::MsgHeartbeatResponse, 2, 1, 2))
        .expect("heartbeat response");
    let rd = raw.ready().expect("ready");
    let to2: Vec<&Message> = rd
        .messages()
        .iter()
        .filter(|m| m.to == 2 && m.msg_type() == MessageType::MsgAppend)
        .collect();
    assert_eq!(to2.len(), 1, "one append to node 2: {:?}", rd.messages());
    assert_eq!((to2[0].index, to2[0].log_term), (1, 1));
    assert_eq!(
        to2[0].entries, log,
        "the append carries the leader's log, read across its lent chunks"
    );
    assert_eq!(
        raw.raft.raft_log.persisted, 1,
        "nothing of it is written yet"
    );
    drop(handles);
}
