//! Memory: buffers that a burst grew are given back once the burst is over (DESIGN.md §6; raft-rs
//! keeps its unstable buffer forever). The figures are printed: run with `--nocapture`.

use raft_core::tracker::Inflights;
use raft_core::{Config, RawNode};
use storage_mem::MemStorage;

use crate::common::{
    append_ack, config, logger, make_leader, propose_msg, raft_with, storage_with,
};
use crate::support::*;

const BURST: usize = 10_000;
const PAYLOAD: usize = 100;

/// A single-voter leader with its first Readys handled.
fn single_voter_leader() -> (RawNode<MemStorage>, MemStorage) {
    let storage = storage_with(&[1], &[], 0, 0);
    let mut node = RawNode::new(&config(1), storage.clone(), &logger()).unwrap();
    node.campaign().unwrap();
    while node.has_ready() {
        let rd = node.ready().unwrap();
        persist_ready(&storage, &rd);
        node.advance(rd).unwrap();
        node.advance_apply();
    }
    (node, storage)
}

fn persist_ready(storage: &MemStorage, rd: &raft_core::Ready) {
    storage.wl().append(rd.entries()).unwrap();
    if let Some(hs) = rd.hard_state() {
        storage.wl().set_hardstate(*hs);
    }
}

/// (len, capacity) of the unstable entry buffer.
fn unstable_buffer(node: &RawNode<MemStorage>) -> (usize, usize) {
    let entries = &node.raft.raft_log.unstable.entries;
    (entries.len(), entries.capacity())
}

/// 10,000 proposals of 100 bytes grow the unstable buffer; once the Ready carrying them is
/// persisted (`advance`), the buffer is released.
#[test]
fn the_unstable_log_releases_its_buffer_once_persisted() {
    let (mut node, storage) = single_voter_leader();
    for _ in 0..BURST {
        node.propose(vec![], vec![7; PAYLOAD]).unwrap();
    }
    let (len_before, cap_before) = unstable_buffer(&node);
    assert_eq!(len_before, BURST);
    let rd = node.ready().unwrap();
    assert_eq!(rd.entries().len(), BURST);
    persist_ready(&storage, &rd);
    node.advance(rd).unwrap();
    node.advance_apply();
    let (len_after, cap_after) = unstable_buffer(&node);
    println!(
        "unstable log after {BURST} entries of {PAYLOAD} bytes: before persisting len {len_before} \
         capacity {cap_before}; after advance len {len_after} capacity {cap_after}"
    );
    assert!(cap_before >= BURST);
    assert_eq!(len_after, 0, "every entry is persisted");
    assert!(
        cap_after <= 1024,
        "the emptied buffer keeps {cap_after} slots (was {cap_before})"
    );
    assert_eq!(node.raft.raft_log.applied, BURST as u64 + 1);
}

/// Asynchronous persistence: more entries arrive while the burst is being written. The burst was
/// handed out in a chunk of its own; once it is reported persisted (`on_persist_ready`) the unstable
/// log holds only the tail, in a buffer sized for a batch, not for the burst.
#[test]
fn the_unstable_log_shrinks_when_a_persisted_burst_leaves_a_small_tail() {
    let (mut node, storage) = single_voter_leader();
    for _ in 0..BURST {
        node.propose(vec![], vec![7; PAYLOAD]).unwrap();
    }
    let rd = node.ready().unwrap();
    persist_ready(&storage, &rd);
    let number = rd.number();
    const TAIL: usize = 100;
    for _ in 0..TAIL {
        node.propose(vec![], vec![8; PAYLOAD]).unwrap();
    }
    let len_before = node.raft.raft_log.unstable.len();
    drop(rd);
    node.on_persist_ready(number);
    let len_after = node.raft.raft_log.unstable.len();
    let (tail_len, tail_cap) = unstable_buffer(&node);
    println!(
        "unstable log with a {TAIL}-entry tail: before on_persist_ready {len_before} entries; \
         after {len_after} entries, in a buffer of {tail_cap} slots"
    );
    assert_eq!(len_before, BURST + TAIL);
    assert_eq!(len_after, TAIL, "the tail is still unstable");
    assert_eq!(tail_len, TAIL);
    assert_eq!(
        node.raft.raft_log.unstable.in_progress(),
        0,
        "the burst left"
    );
    assert!(
        tail_cap <= 1024,
        "{tail_cap} slots kept for {TAIL} entries after a burst of {BURST}"
    );
}

/// The number of slots of an inflight window's buffer. `Inflights` has no accessor for it, so it
/// is read from the derived `Debug` form (`buffer: [(last index, bytes), ...]`).
fn inflight_slots(ins: &Inflights) -> usize {
    let debug = format!("{ins:?}");
    let buffer = debug
        .split("buffer: [")
        .nth(1)
        .expect("Debug form has the buffer");
    let buffer = &buffer[..buffer.find(']').expect("closing bracket")];
    buffer.matches('(').count()
}

/// A burst of 500 one-entry appends to follower 2 grows its inflight window; once they are all
/// acknowledged the window is empty and its buffer is released: it equals a fresh window.
#[test]
fn an_inflight_window_releases_its_buffer_after_a_burst() {
    const MSGS: usize = 500;
    let cfg = Config {
        max_inflight_msgs: 1024,
        max_size_per_msg: 1,
        ..config(1)
    };
    let mut r = raft_with(&cfg, storage_with(&VOTERS, &[], 0, 0));
    make_leader(&mut r, &VOTERS);
    for _ in 0..MSGS {
        r.step(propose_msg(1, &[9; PAYLOAD])).unwrap();
    }
    let msgs = r.read_messages();
    assert_eq!(
        sent(&msgs, 2, raft_core::eraftpb::MessageType::MsgAppend).len(),
        MSGS
    );
    let ins = &pr(&r, 2).ins;
    let (count_before, bytes_before, slots_before) =
        (ins.count(), ins.bytes(), inflight_slots(ins));
    assert_eq!(count_before, MSGS);
    assert_eq!(bytes_before, (MSGS * PAYLOAD) as u64);
    assert!(slots_before >= MSGS);

    let last = r.raft_log.last_index();
    r.step(append_ack(2, 1, 1, last)).unwrap();
    let ins = &pr(&r, 2).ins;
    let (count_after, bytes_after, slots_after) = (ins.count(), ins.bytes(), inflight_slots(ins));
    println!(
        "inflight window to a follower after a burst of {MSGS} appends: before acknowledgement \
         count {count_before} bytes {bytes_before} buffer slots {slots_before}; after count \
         {count_after} bytes {bytes_after} buffer slots {slots_after}"
    );
    assert_eq!((count_after, bytes_after), (0, 0));
    assert_eq!(
        slots_after, 0,
        "the emptied window keeps {slots_after} slots"
    );
    assert_eq!(*ins, Inflights::new(1024), "the window is as good as new");
}
