//! Segments are zero-filled ahead of their records (preallocation), so that an fsync of an
//! append writes no inode. Recovery reads zeros from a record's start to the end of the file as
//! the end of the log, and still tells a torn write from corruption inside that zero-filled
//! region. Also what a Ready costs in `write`s.

mod common;

use std::path::Path;

use common::*;
use raft_core::eraftpb::{Entry, HardState};
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{Fs, SimFs};
use storage_disk::{DiskStorage, Options, TornShape, WriteBatch};

/// Segments of 1 MiB: every test below stays inside the first one's zeros.
fn options() -> Options {
    Options {
        segment_bytes: 1 << 20,
        ..small_options()
    }
}

/// An entry at `index` with a 1,000-byte payload of non-zero bytes.
fn big(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![0x5A; 1000].into(),
        ..Default::default()
    }
}

/// Entries `lo..=hi` and a hard state committing the ones before them.
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

/// A storage holding entries 1..=6, synced three at a time. Returns where its records end.
fn synced(fs: &SimFs) -> (DiskStorage, u64) {
    let storage = open(fs, &options()).unwrap();
    storage.wl().write(batch(1, 3), true).unwrap();
    storage.wl().write(batch(4, 6), true).unwrap();
    let end = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    (storage, end)
}

/// Zeroes bytes `from..to` of segment 1 (whole sectors: what a crash does to a lost write).
fn zero(fs: &SimFs, from: u64, to: u64) {
    let mut bytes = fs.contents(&segment(1)).unwrap();
    bytes[from as usize..to as usize].fill(0);
    fs.set_contents(&segment(1), bytes);
}

fn all(storage: &DiskStorage) -> Vec<Entry> {
    let last = storage.last_index().unwrap();
    storage.entries(1, last + 1, NO_LIMIT).unwrap()
}

#[test]
fn the_zeros_after_the_last_record_are_the_end_of_the_log_not_a_torn_tail() {
    for power_loss in [false, true] {
        let fs = sim(1);
        let (storage, end) = synced(&fs);
        drop(storage);
        let file_len = fs.contents(&segment(1)).unwrap().len() as u64;
        assert_eq!(file_len, 1 << 20, "the segment is zero-filled to its size");
        assert!(end < file_len);
        let disk = if power_loss { fs.crash() } else { fs };
        let storage = open(&disk, &options()).expect("zeros after the records are no damage");
        let recovery = storage.rl().recovery().clone();
        assert_eq!(recovery.torn_tail, None);
        assert!(!recovery.torn_sync_mark);
        assert_eq!(all(&storage), (1..=6).map(big).collect::<Vec<_>>());
        // Appends go on inside the zeros and survive a power loss once synced.
        storage.wl().write(batch(7, 7), true).unwrap();
        drop(storage);
        let storage = open(&disk.crash(), &options()).unwrap();
        assert_eq!(storage.rl().recovery().torn_tail, None);
        assert_eq!(all(&storage), (1..=7).map(big).collect::<Vec<_>>());
    }
}

#[test]
fn a_crash_inside_a_preallocated_segment_loses_only_unsynced_writes() {
    for seed in 0..40 {
        let fs = sim(seed);
        let (storage, _) = synced(&fs);
        storage.wl().write(batch(7, 9), false).unwrap();
        drop(storage);
        let after = fs.crash();
        let storage = open(&after, &options())
            .unwrap_or_else(|e| panic!("seed {seed}: a crash is not corruption: {e}"));
        let last = storage.last_index().unwrap();
        assert!((6..=9).contains(&last), "seed {seed}: last index {last}");
        assert_eq!(all(&storage), (1..=last).map(big).collect::<Vec<_>>());
        let torn_tail = storage.rl().recovery().torn_tail.clone();
        if let Some(tail) = torn_tail {
            // Inside the zeros a lost sector reads as zeros: the file never ends early.
            assert!(
                matches!(tail.shape, TornShape::ZeroedSector { .. }),
                "seed {seed}: {tail:?}"
            );
        }
    }
}

#[test]
fn a_torn_write_into_the_zeros_is_cut_and_reported() {
    let fs = sim(2);
    let (storage, end) = synced(&fs);
    storage.wl().write(batch(7, 9), false).unwrap();
    drop(storage);
    let written = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    // The crash lost a sector in the middle of the unsynced write: zeros, then its later
    // sectors, then the zeros ahead.
    let lost = (end + 1200) / 512 * 512;
    zero(&fs, lost, lost + 512);
    let storage = open(&fs, &options()).expect("a torn write is not corruption");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert!(
        matches!(tail.shape, TornShape::ZeroedSector { .. }),
        "{tail:?}"
    );
    assert!(tail.offset >= end && tail.offset < lost);
    assert_eq!(
        tail.bytes_dropped,
        written - tail.offset,
        "the zeros are not counted"
    );
    assert!(storage.last_index().unwrap() < 9);
    assert_eq!(all(&storage).len() as u64, storage.last_index().unwrap());
}

#[test]
fn a_write_whose_first_sector_was_lost_is_torn_even_in_the_zeros() {
    let fs = sim(3);
    let (storage, end) = synced(&fs);
    storage.wl().write(batch(7, 9), false).unwrap();
    drop(storage);
    // The sector holding the first record's header was lost; later sectors were kept.
    let first_piece_end = (end / 512 + 1) * 512;
    zero(&fs, end, first_piece_end);
    let storage = open(&fs, &options()).expect("a torn write is not corruption");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.offset, end);
    assert_eq!(tail.shape, TornShape::ZeroedSector { offset: end });
    assert_eq!(storage.last_index().unwrap(), 6);
}

#[test]
fn a_write_that_lost_every_sector_leaves_the_log_as_it_was_synced() {
    let fs = sim(4);
    let (storage, end) = synced(&fs);
    storage.wl().write(batch(7, 9), false).unwrap();
    drop(storage);
    let written = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    zero(&fs, end, written);
    let storage = open(&fs, &options()).expect("nothing of the write reached the disk");
    assert_eq!(storage.rl().recovery().torn_tail, None);
    assert_eq!(all(&storage), (1..=6).map(big).collect::<Vec<_>>());
}

#[test]
fn zeros_from_inside_a_record_to_the_end_are_a_torn_tail_not_the_end() {
    let fs = sim(5);
    let (storage, end) = synced(&fs);
    storage.wl().write(batch(7, 9), false).unwrap();
    drop(storage);
    // The first record of the write keeps its first sector; everything after it is zeros.
    let first_piece_end = (end / 512 + 1) * 512;
    let file_len = fs.contents(&segment(1)).unwrap().len() as u64;
    zero(&fs, first_piece_end, file_len);
    let storage = open(&fs, &options()).expect("a torn write is not corruption");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.offset, end);
    assert_eq!(
        tail.shape,
        TornShape::ZeroedSector {
            offset: first_piece_end
        }
    );
    assert_eq!(storage.last_index().unwrap(), 6);
}

#[test]
fn zeros_over_a_synced_record_before_a_sync_mark_are_corruption() {
    let fs = sim(6);
    let (storage, end) = synced(&fs);
    drop(storage);
    // A sector of the second synced batch reads as zeros; its sync mark follows it.
    let lost = (end - 1500) / 512 * 512;
    zero(&fs, lost, lost + 512);
    let error = open(&fs, &options()).expect_err("damage before a sync mark");
    assert!(
        error.to_string().contains("before a proof of sync"),
        "{error}"
    );
}

#[test]
fn zeros_from_a_record_to_the_end_before_the_checkpoint_are_corruption() {
    let fs = sim(7);
    let (storage, _) = synced(&fs);
    let start = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    storage.wl().write(batch(7, 9), true).unwrap();
    // The checkpoint records the log's synced end, after entry 9.
    storage
        .wl()
        .create_snapshot(3, None, bytes::Bytes::from_static(b"state at 3"))
        .unwrap();
    drop(storage);
    let file_len = fs.contents(&segment(1)).unwrap().len() as u64;
    zero(&fs, start, file_len);
    let error = open(&fs, &options()).expect_err("the log ends before the checkpoint");
    assert_eq!(
        error.corrupt_at().map(|(p, _)| p),
        Some(segment(1).as_path())
    );
    assert!(error.to_string().contains("ends before"), "{error}");
}

#[test]
fn a_flipped_bit_in_the_zeros_is_cut_as_a_torn_tail_and_never_served() {
    let fs = sim(8);
    let (storage, end) = synced(&fs);
    drop(storage);
    assert!(fs.flip_bit(&segment(1), end + 5000, 3));
    let storage = open(&fs, &options()).expect("nothing of the log was damaged");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.offset, end);
    assert_eq!(all(&storage), (1..=6).map(big).collect::<Vec<_>>());
    drop(storage);
    let storage = open(&fs, &options()).unwrap();
    assert_eq!(
        storage.rl().recovery().torn_tail,
        None,
        "the cut was durable"
    );
}

#[test]
fn a_ready_costs_one_write_and_a_synced_one_a_sync_mark_more() {
    let fs = sim(9);
    let storage = open(&fs, &options()).unwrap();
    let mut next = 1;
    for round in 0..30 {
        let (writes, syncs) = (fs.write_count(), fs.sync_count());
        let sync = round % 3 != 0;
        storage.wl().write(batch(next, next + 2), sync).unwrap();
        next += 3;
        let expected = if sync { 2 } else { 1 };
        assert_eq!(
            fs.write_count() - writes,
            expected,
            "round {round}, sync {sync}"
        );
        assert_eq!(fs.sync_count() - syncs, u64::from(sync), "round {round}");
    }
    // Group commit: one write per batch, one fsync, one sync mark.
    let (writes, syncs) = (fs.write_count(), fs.sync_count());
    let batches = (0..3)
        .map(|k| batch(next + k, next + k))
        .collect::<Vec<_>>();
    storage.wl().write_all(batches, true).unwrap();
    assert_eq!(fs.write_count() - writes, 4, "3 batches and a sync mark");
    assert_eq!(fs.sync_count() - syncs, 1);
    assert_eq!(
        fs.preallocation_count(),
        1,
        "the segment was zero-filled once"
    );
}

#[test]
fn the_simulated_disk_keeps_a_preallocation_only_once_synced() {
    let mut shortened = 0;
    for seed in 0..8 {
        let fs = sim(seed);
        fs.create_dir_all(Path::new("/d")).unwrap();
        let synced = fs.create(Path::new("/d/synced")).unwrap();
        synced.write_at(0, b"head").unwrap();
        synced.preallocate(4096).unwrap();
        synced.sync().unwrap();
        synced.preallocate(2048).unwrap();
        assert_eq!(
            synced.len().unwrap(),
            4096,
            "preallocation never shrinks a file"
        );
        let unsynced = fs.create(Path::new("/d/unsynced")).unwrap();
        unsynced.preallocate(64 << 10).unwrap();
        assert_eq!(unsynced.len().unwrap(), 64 << 10);
        fs.sync_dir(Path::new("/d")).unwrap();
        assert_eq!(fs.preallocation_count(), 2);
        assert_eq!(
            fs.write_count(),
            1,
            "preallocations are not counted as writes"
        );
        let after = fs.crash();
        let mut expected = b"head".to_vec();
        expected.resize(4096, 0);
        assert_eq!(after.contents(Path::new("/d/synced")), Some(expected));
        let kept = after.contents(Path::new("/d/unsynced")).unwrap();
        assert!(kept.iter().all(|b| *b == 0), "seed {seed}");
        shortened += usize::from(kept.len() < 64 << 10);
    }
    assert!(
        shortened > 0,
        "an unsynced preallocation may lose its last sectors"
    );
}
