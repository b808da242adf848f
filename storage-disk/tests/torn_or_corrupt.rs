//! A damaged end of the log: cut as a torn tail only when a crash can have left it (after the
//! last proof of sync, and of a crash's shape), an error otherwise. Also the one case recovery
//! cannot tell apart, pinned so that the documentation stays true.

mod common;

use common::*;
use raft_core::eraftpb::{Entry, HardState};
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::SimFs;
use storage_disk::{DiskError, DiskStorage, TornShape, WriteBatch};

/// The sync mark written after each fsync is a 24-byte record.
const MARK_LEN: usize = 24;

/// An entry at `index` with a 1,000-byte payload of non-zero bytes.
fn big(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![0x5A; 1000].into(),
        ..Default::default()
    }
}

/// A storage holding entries 1..=4, each synced in its own Ready; then entries 5..=7 as one
/// synced Ready. Returns the disk, the storage and where that last batch starts in segment 1.
fn last_batch_synced() -> (SimFs, DiskStorage, u64) {
    let fs = sim(21);
    let options = storage_disk::Options {
        segment_bytes: 1 << 20,
        ..small_options()
    };
    let storage = open(&fs, &options).unwrap();
    for index in 1..=4 {
        storage.wl().write(batch(index, index), true).unwrap();
    }
    let start = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    storage.wl().write(batch(5, 7), true).unwrap();
    (fs, storage, start)
}

fn batch(lo: u64, hi: u64) -> WriteBatch {
    WriteBatch {
        entries: (lo..=hi).map(big).collect(),
        hard_state: Some(HardState {
            term: 1,
            vote: 1,
            commit: lo - 1,
        }),
        ..Default::default()
    }
}

/// Removes the sync mark at the end of segment 1: what a power loss right after the fsync,
/// before the mark reached the disk, leaves.
fn lose_the_last_sync_mark(fs: &SimFs) {
    let mut bytes = records(fs, 1);
    bytes.truncate(bytes.len() - MARK_LEN);
    fs.set_contents(&segment(1), bytes);
}

/// Zeroes the 512-byte sector that holds byte `at` of segment 1.
fn zero_sector(fs: &SimFs, at: u64) {
    let mut bytes = fs.contents(&segment(1)).unwrap();
    let start = (at / 512 * 512) as usize;
    bytes[start..start + 512].fill(0);
    fs.set_contents(&segment(1), bytes);
}

fn reopen(fs: &SimFs) -> Result<DiskStorage, DiskError> {
    open(fs, &small_options())
}

#[test]
fn a_bit_flip_in_the_last_synced_batch_is_an_error_even_when_its_sync_mark_was_lost() {
    let (fs, storage, start) = last_batch_synced();
    drop(storage);
    lose_the_last_sync_mark(&fs);
    // No sync mark proves the batch was synced, but a complete record with a flipped bit is
    // not what a crash leaves.
    assert!(fs.flip_bit(&segment(1), start + 700, 4));
    let error = reopen(&fs).expect_err("a flipped bit is never cut as a torn tail");
    assert_eq!(error.corrupt_at(), Some((segment(1).as_path(), start)));
    assert!(error.to_string().contains("no crash leaves"), "{error}");
}

#[test]
fn after_a_process_crash_the_sync_mark_proves_the_last_batch() {
    let (fs, storage, start) = last_batch_synced();
    // The process dies; the page cache (and the mark in it) survives. Then the device loses a
    // sector of the batch: crash-shaped damage, but before a sync mark.
    drop(storage);
    zero_sector(&fs, start + 1200);
    let error = reopen(&fs).expect_err("damage before a sync mark");
    let (path, offset) = error.corrupt_at().expect("corruption");
    assert_eq!(path, segment(1));
    assert!(offset >= start, "{error}");
    assert!(
        error.to_string().contains("before a proof of sync"),
        "{error}"
    );
}

#[test]
fn a_lost_sector_in_the_last_batch_without_its_sync_mark_is_cut_and_reported() {
    // The one case recovery cannot tell from a crash during the write: the batch was synced,
    // the power loss took its sync mark, and the device lost one of its sectors. It is cut,
    // and reported so that an application can refuse to start on it.
    let (fs, storage, start) = last_batch_synced();
    drop(storage);
    lose_the_last_sync_mark(&fs);
    zero_sector(&fs, start + 1200);
    let storage = reopen(&fs).expect("indistinguishable from a torn write");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert!(matches!(tail.shape, TornShape::ZeroedSector { .. }));
    assert!(tail.offset >= start);
    assert!(!storage.rl().recovery().torn_sync_mark);
    assert!(storage.last_index().unwrap() < 7, "the batch was cut");
}

#[test]
fn a_sync_mark_torn_by_a_crash_loses_nothing_and_is_not_a_torn_tail() {
    for keep in [0, 5, 23] {
        let (fs, storage, _) = last_batch_synced();
        drop(storage);
        let mut bytes = records(&fs, 1);
        bytes.truncate(bytes.len() - MARK_LEN + keep);
        fs.set_contents(&segment(1), bytes);
        let storage = reopen(&fs).expect("a torn sync mark is not corruption");
        let recovery = storage.rl().recovery().clone();
        assert_eq!(recovery.torn_tail, None, "keeping {keep} bytes of the mark");
        assert_eq!(recovery.torn_sync_mark, keep > 0, "keeping {keep} bytes");
        assert_eq!(
            storage.entries(1, 8, NO_LIMIT).unwrap(),
            (1..=7).map(big).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_torn_write_of_an_unsynced_batch_is_still_cut() {
    let (fs, storage, _) = last_batch_synced();
    let start = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    storage.wl().write(batch(8, 10), false).unwrap();
    drop(storage);
    zero_sector(&fs, start + 1600);
    let storage = reopen(&fs).expect("a torn write is not corruption");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert!(matches!(tail.shape, TornShape::ZeroedSector { .. }));
    assert_eq!(
        storage.last_index().unwrap(),
        8,
        "entry 8 lies before the lost sector"
    );
}

#[test]
fn a_segment_of_the_previous_format_version_is_refused() {
    let (fs, storage, _) = last_batch_synced();
    drop(storage);
    let mut bytes = fs.contents(&segment(1)).unwrap();
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..16]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    fs.set_contents(&segment(1), bytes);
    let error = reopen(&fs).expect_err("a version 1 segment");
    assert_eq!(error.corrupt_at(), Some((segment(1).as_path(), 4)));
    assert!(error.to_string().contains("version 1"), "{error}");
}
