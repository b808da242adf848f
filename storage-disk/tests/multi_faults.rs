//! Disk faults in the multi-group log: a torn tail is cut and reported, a failed fsync is
//! returned and stops every write until the log is reopened, and damage anywhere else (a flipped
//! bit in a synced record or in the checkpoint, a missing snapshot) is an error naming the file
//! and offset, for all groups alike.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use raft_core::eraftpb::HardState;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{Fs, SimFs};
use storage_disk::{DiskError, DiskStorage, MultiLog, MultiOptions, WriteBatch};

const GROUPS: [u64; 3] = [1, 2, 3];

fn options() -> MultiOptions {
    MultiOptions {
        segment_bytes: 64 << 10,
        cache_bytes_per_group: 0,
        rewrite_lag_segments: 8,
    }
}

fn open_log(fs: &SimFs) -> Result<MultiLog, DiskError> {
    MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options())
}

/// Entries `[lo, hi]` of term 1 and a hard state committing `commit`, for every group.
fn readys(lo: u64, hi: u64, commit: u64) -> Vec<(u64, WriteBatch)> {
    GROUPS.iter().map(|g| (*g, ready(lo, hi, commit))).collect()
}

/// A log on a fresh simulated disk whose groups hold entries 1..=`n`, synced 5 at a time.
fn synced_log(n: u64) -> (SimFs, MultiLog) {
    let fs = sim(5);
    let log = open_log(&fs).unwrap();
    log.wl().create_groups(&GROUPS).unwrap();
    let mut lo = 1;
    while lo <= n {
        let hi = (lo + 4).min(n);
        log.wl().write(readys(lo, hi, lo - 1), true).unwrap();
        lo = hi + 1;
    }
    (fs, log)
}

fn reopen_error(fs: &SimFs) -> DiskError {
    match open_log(fs) {
        Ok(_) => panic!("recovery accepted a damaged log"),
        Err(e) => e,
    }
}

fn all_entries(log: &MultiLog, group: u64) -> Vec<raft_core::eraftpb::Entry> {
    let storage = log.group(group);
    let last = storage.last_index().unwrap();
    storage.entries(1, last + 1, NO_LIMIT).unwrap()
}

#[test]
fn one_write_and_one_fsync_carry_the_readys_of_every_group() {
    let (fs, log) = synced_log(5);
    let (syncs, writes) = (fs.sync_count(), fs.write_count());
    log.wl().write(readys(6, 8, 5), true).unwrap();
    assert_eq!(fs.sync_count() - syncs, 1, "one fsync for three groups");
    assert_eq!(
        fs.write_count() - writes,
        2,
        "one write for the three groups' records, one for the sync mark"
    );
    drop(log);
    let log = open_log(&fs.crash()).unwrap();
    for g in GROUPS {
        assert_eq!(
            all_entries(&log, g),
            (1..=8).map(|i| ent(i, 1)).collect::<Vec<_>>()
        );
        assert_eq!(log.rl().hard_state(g).unwrap().commit, 5);
    }
}

#[test]
fn a_bit_flip_in_a_synced_record_is_an_error_naming_the_segment_and_offset() {
    let (fs, log) = synced_log(12);
    assert!(fs.flip_bit(&segment(1), 200, 3));
    // A read that reaches the record fails, naming the place (no cache: every read is a disk
    // read).
    let reads: Vec<_> = GROUPS
        .iter()
        .map(|g| log.group(*g).entries(1, 13, NO_LIMIT))
        .collect();
    let err = reads
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("some group's read reaches byte 200");
    let (path, offset) = corrupt_at(disk_error(err));
    assert_eq!(path, segment(1));
    assert!(
        offset <= 200,
        "the damaged record starts at or before byte 200"
    );
    drop(log);
    let (path, offset) = corrupt_at(&reopen_error(&fs));
    assert_eq!(path, segment(1));
    assert!((24..=200).contains(&offset), "offset {offset}");
}

#[test]
fn a_torn_tail_of_a_multi_group_write_is_cut_and_reported() {
    let (fs, log) = synced_log(10);
    log.wl().write(readys(11, 13, 10), false).unwrap();
    drop(log);
    // The last unsynced record (group 3's entry 13: an unsynced write records no hard state)
    // lost its last 7 bytes in the crash.
    let path = segment(1);
    let mut bytes = fs.contents(&path).unwrap();
    let torn_len = log_end(&bytes) - 7;
    bytes.truncate(torn_len);
    fs.set_contents(&path, bytes);
    let log = open_log(&fs).expect("a torn tail is not corruption");
    let tail = log.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.path, path);
    assert!(tail.offset < torn_len as u64 && tail.bytes_dropped > 0);
    for g in GROUPS {
        let last = if g == 3 { 12 } else { 13 };
        assert_eq!(
            all_entries(&log, g),
            (1..=last).map(|i| ent(i, 1)).collect::<Vec<_>>(),
            "group {g}"
        );
        assert_eq!(log.rl().hard_state(g).unwrap().commit, 5, "group {g}");
    }
    // The log appends after the cut, and that survives a reopen.
    log.wl().write(readys(13, 14, 12), true).unwrap();
    drop(log);
    let log = open_log(&fs).unwrap();
    assert_eq!(log.rl().recovery().torn_tail, None);
    for g in GROUPS {
        assert_eq!(all_entries(&log, g).len(), 14);
    }
}

#[test]
fn a_failed_fsync_is_returned_and_the_log_refuses_writes_until_reopened() {
    let (fs, log) = synced_log(5);
    fs.fail_next_sync();
    let err = log.wl().write(readys(6, 8, 5), true).unwrap_err();
    assert!(
        matches!(disk_error(&err), DiskError::Io { op: "fsync", .. }),
        "{err}"
    );
    assert!(log.rl().failure().is_some());
    let err = log.wl().write(readys(9, 9, 5), true).unwrap_err();
    assert!(matches!(disk_error(&err), DiskError::Failed(_)), "{err}");
    let err = log.wl().create_groups(&[4]).unwrap_err();
    assert!(matches!(disk_error(&err), DiskError::Failed(_)), "{err}");
    drop(log);
    // After a power loss every group holds at least what was synced before the failure.
    let log = open_log(&fs.crash()).unwrap();
    for g in GROUPS {
        let entries = all_entries(&log, g);
        assert!(entries.len() >= 5, "group {g} lost synced entries");
        assert_eq!(
            entries[..5],
            (1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>()[..]
        );
    }
}

#[test]
fn damage_to_the_checkpoint_or_a_missing_snapshot_is_an_error_naming_it() {
    // Small segments: the log rotates and writes a checkpoint once group 1 compacts.
    let fs = sim(9);
    let small = MultiOptions {
        segment_bytes: 1024,
        ..options()
    };
    let log = MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), small.clone()).unwrap();
    log.wl().create_groups(&[1]).unwrap();
    for lo in (1..40).step_by(4) {
        let batch = WriteBatch {
            entries: (lo..lo + 4).map(|i| ent(i, 1)).collect(),
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: lo + 3,
            }),
            ..Default::default()
        };
        log.wl().write([(1, batch)], true).unwrap();
    }
    log.wl()
        .create_snapshot(1, 30, None, Bytes::from_static(b"sm"))
        .unwrap();
    log.wl().compact(1, 30).unwrap();
    assert!(log.rl().segment_ids()[0] > 1, "segments were deleted");
    drop(log);
    let checkpoint = dir().join("checkpoint");
    let reopen = |fs: &SimFs| {
        MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), small.clone()).unwrap_err()
    };
    let flipped = fs.crash();
    assert!(flipped.flip_bit(&checkpoint, 40, 1));
    assert_eq!(corrupt_at(&reopen(&flipped)).0, checkpoint);
    let no_snapshot = fs.crash();
    let snapshot = dir().join(format!("snap-{:020}-{:020}.snap", 1, 30));
    assert!(no_snapshot.remove_durably(&snapshot));
    assert_eq!(corrupt_at(&reopen(&no_snapshot)).0, snapshot);
}

#[test]
fn a_single_group_storage_and_a_multi_group_log_never_open_each_other() {
    let fs = sim(2);
    let single = open(&fs, &small_options()).unwrap();
    single
        .wl()
        .write(
            WriteBatch {
                entries: vec![ent(1, 1)],
                ..Default::default()
            },
            true,
        )
        .unwrap();
    drop(single);
    let (path, _) = corrupt_at(&reopen_error(&fs));
    assert_eq!(path, dir().join("state"));

    let fs = sim(2);
    let (multi_fs, log) = synced_log(3);
    drop(log);
    let err =
        DiskStorage::open(Arc::new(multi_fs) as Arc<dyn Fs>, dir(), small_options()).unwrap_err();
    assert_eq!(corrupt_at(&err).0, dir().join("state"));
    drop(fs);
}

#[test]
fn random_faults_never_serve_wrong_data_from_any_group() {
    // Under every fault at once, with segments rotated, checkpointed, copied forward and
    // deleted, each read of each group either errors or returns what was written.
    let small = MultiOptions {
        segment_bytes: 2048,
        cache_bytes_per_group: 256,
        rewrite_lag_segments: 2,
    };
    let mut reads_checked = 0;
    let mut collected = 0;
    for seed in 0..80 {
        let fs = SimFs::new(
            seed,
            storage_disk::io::FaultConfig {
                sync_error: 0.02,
                read_error: 0.05,
                bit_flip: 0.02,
                misdirected_write: 0.01,
                ..storage_disk::io::FaultConfig::none()
            },
        );
        let open =
            |fs: &SimFs| MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), small.clone());
        let Ok(log) = open(&fs) else {
            continue;
        };
        if log.wl().create_groups(&GROUPS).is_err() {
            continue;
        }
        let expect = |log: &MultiLog, g: u64, checked: &mut u32| {
            let storage = log.group(g);
            let (first, last) = (
                storage.first_index().unwrap(),
                storage.last_index().unwrap(),
            );
            if let Ok(entries) = storage.entries(first, last + 1, NO_LIMIT) {
                assert_eq!(
                    entries,
                    (first..=last).map(|i| ent(i, 1)).collect::<Vec<_>>(),
                    "seed {seed}, group {g}"
                );
                *checked += 1;
            }
        };
        for lo in (1..120).step_by(4) {
            // Group 1 compacts as it goes; groups 2 and 3 never do (they are carried forward).
            if log
                .wl()
                .write(readys(lo, lo + 3, lo + 3), lo % 8 == 1)
                .is_err()
            {
                break;
            }
            if lo % 16 == 13 {
                let snapshot = log.wl().create_snapshot(1, lo, None, Bytes::from("sm"));
                if snapshot.is_err() || log.wl().compact(1, lo).is_err() {
                    break;
                }
            }
            for g in GROUPS {
                expect(&log, g, &mut reads_checked);
            }
        }
        collected += u32::from(log.rl().segment_ids()[0] > 1);
        drop(log);
        if let Ok(log) = open(&fs.crash()) {
            for g in log.rl().group_ids().collect::<Vec<_>>() {
                expect(&log, g, &mut reads_checked);
            }
        }
    }
    assert!(
        reads_checked > 800,
        "only {reads_checked} reads were checked"
    );
    assert!(
        collected > 5,
        "segments were deleted in only {collected} runs"
    );
}
