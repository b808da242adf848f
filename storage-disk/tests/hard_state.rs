//! The hard state and membership live in the log: a synced Ready costs one fsync, the last
//! record wins on recovery, and the checkpoint (the state file) supersedes older records.

mod common;

use common::*;
use raft_core::eraftpb::HardState;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::{TornShape, WriteBatch};

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

/// Entries `[lo, hi]` of term 1 and the hard state `state`, as one Ready.
fn ready(lo: u64, hi: u64, state: HardState) -> WriteBatch {
    WriteBatch {
        entries: (lo..=hi).map(|i| ent(i, 1)).collect(),
        hard_state: Some(state),
        ..Default::default()
    }
}

/// The highest-numbered segment on `fs`.
fn last_segment_id(fs: &storage_disk::io::SimFs) -> u64 {
    (1..1000)
        .rev()
        .find(|id| fs.contents(&segment(*id)).is_some())
        .expect("a segment exists")
}

#[test]
fn a_synced_ready_costs_one_fsync() {
    let fs = sim(1);
    let storage = open(&fs, &small_options()).unwrap();
    let mut commit = 0;
    for lo in (1..60).step_by(3) {
        let before = fs.sync_count();
        storage
            .wl()
            .write(ready(lo, lo + 2, hs(1, 1, commit)), true)
            .unwrap();
        let syncs = fs.sync_count() - before;
        // Passing a segment's size starts a new one (closing the old: two more fsyncs).
        let rotated = fs.contents(&segment(2)).is_some() && syncs > 1;
        assert!(
            syncs == 1 || rotated,
            "entries and a new hard state at {lo} cost {syncs} fsyncs"
        );
        commit = lo + 2;
    }
    let before = fs.sync_count();
    let segments_before = last_segment_id(&fs);
    storage
        .wl()
        .write(
            WriteBatch {
                hard_state: Some(hs(2, 3, commit)),
                ..Default::default()
            },
            true,
        )
        .unwrap();
    // Unless the last batch filled its segment: then this record starts the next one.
    let rotated = last_segment_id(&fs) > segments_before;
    assert_eq!(
        fs.sync_count() - before,
        if rotated { 3 } else { 1 },
        "a vote alone costs one fsync"
    );
    let before = fs.sync_count();
    storage.wl().sync().unwrap();
    storage
        .wl()
        .write(ready(61, 60, hs(2, 3, commit)), true)
        .unwrap();
    assert_eq!(fs.sync_count() - before, 0, "nothing new costs nothing");
}

#[test]
fn the_last_hard_state_and_membership_recorded_win_on_recovery() {
    let fs = sim(2);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().set_conf_state(conf(&[1, 2, 3]));
    for lo in 1..=20 {
        storage
            .wl()
            .write(ready(lo, lo, hs(lo, 2, lo - 1)), true)
            .unwrap();
    }
    storage.wl().set_conf_state(conf(&[1, 2, 3, 4]));
    storage
        .wl()
        .write(ready(21, 21, hs(21, 0, 21)), true)
        .unwrap();
    // Written but never synced: a power loss may take it, and recovery must not invent it.
    storage
        .wl()
        .write(ready(22, 22, hs(22, 1, 22)), false)
        .unwrap();
    drop(storage);
    let storage = open(&fs.crash(), &small_options()).unwrap();
    let state = storage.initial_state().unwrap();
    assert_eq!(state.hard_state, hs(21, 0, 21));
    assert_eq!(state.conf_state, conf(&[1, 2, 3, 4]));
    assert!(storage.last_index().unwrap() >= 21);
}

#[test]
fn a_checkpoint_supersedes_the_hard_state_records_before_it() {
    let fs = sim(3);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().write(ready(1, 6, hs(1, 1, 6)), true).unwrap();
    // A newer hard state, not synced, then a snapshot: its checkpoint makes it durable, while
    // the log's last hard state record (term 1) stays in the segment, before the checkpoint.
    storage.wl().set_hard_state(hs(4, 2, 6));
    storage
        .wl()
        .create_snapshot(5, None, bytes::Bytes::from_static(b"at 5"))
        .unwrap();
    drop(storage);
    let fs = fs.crash();
    let storage = open(&fs, &small_options()).unwrap();
    assert_eq!(storage.initial_state().unwrap().hard_state, hs(4, 2, 6));
    // And a record after the checkpoint wins over it.
    storage.wl().write(ready(7, 7, hs(5, 0, 7)), true).unwrap();
    drop(storage);
    let storage = open(&fs.crash(), &small_options()).unwrap();
    assert_eq!(storage.initial_state().unwrap().hard_state, hs(5, 0, 7));
}

#[test]
fn the_hard_state_survives_a_compaction_that_deletes_the_segments_of_its_records() {
    let fs = sim(4);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().set_conf_state(conf(&[1, 2]));
    storage.wl().write(ready(1, 1, hs(3, 1, 0)), true).unwrap();
    // The hard state does not change again while the log moves on by several segments.
    let mut lo = 2;
    while fs.contents(&segment(4)).is_none() {
        storage.wl().append(&[ent(lo, 1)]).unwrap();
        storage.wl().sync().unwrap();
        lo += 1;
    }
    storage.wl().commit_to(lo - 1).unwrap();
    storage.wl().sync().unwrap();
    let committed = storage.initial_state().unwrap().hard_state;
    storage
        .wl()
        .create_snapshot(lo - 2, None, bytes::Bytes::from_static(b"sm"))
        .unwrap();
    storage.wl().compact(lo - 2).unwrap();
    assert!(fs.contents(&segment(1)).is_none(), "segment 1 was deleted");
    drop(storage);
    let storage = open(&fs.crash(), &small_options()).unwrap();
    let state = storage.initial_state().unwrap();
    assert_eq!(state.hard_state, committed);
    assert_eq!(state.conf_state, conf(&[1, 2]));
    assert_eq!(storage.first_index().unwrap(), lo - 2);
}

#[test]
fn a_torn_hard_state_record_is_cut_and_the_one_before_it_wins() {
    let fs = sim(5);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().write(ready(1, 3, hs(1, 1, 2)), true).unwrap();
    let before = log_end(&fs.contents(&segment(1)).unwrap());
    storage
        .wl()
        .write(
            WriteBatch {
                hard_state: Some(hs(2, 2, 3)),
                ..Default::default()
            },
            true,
        )
        .unwrap();
    drop(storage);
    // As if the power went before that fsync and took the end of the 48-byte record (and the
    // sync mark that would have followed the fsync).
    let mut bytes = records(&fs, 1);
    assert_eq!(
        bytes.len(),
        before + 48 + 24,
        "a hard state record and a mark"
    );
    bytes.truncate(before + 30);
    fs.set_contents(&segment(1), bytes);
    let storage = open(&fs, &small_options()).unwrap();
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.shape, TornShape::ShortFile);
    assert_eq!(tail.offset, before as u64);
    assert_eq!(storage.initial_state().unwrap().hard_state, hs(1, 1, 2));
    assert_eq!(storage.entries(1, 4, NO_LIMIT).unwrap().len(), 3);
}

#[test]
fn a_hard_state_record_damaged_before_a_sync_mark_is_an_error() {
    let fs = sim(6);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().write(ready(1, 1, hs(1, 1, 0)), true).unwrap();
    let hs_record = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    storage
        .wl()
        .write(
            WriteBatch {
                hard_state: Some(hs(1, 1, 1)),
                ..Default::default()
            },
            true,
        )
        .unwrap();
    drop(storage);
    assert!(fs.flip_bit(&segment(1), hs_record + 30, 2));
    let error = open(&fs, &small_options()).expect_err("a damaged synced hard state");
    assert_eq!(error.corrupt_at(), Some((segment(1).as_path(), hs_record)));
}
