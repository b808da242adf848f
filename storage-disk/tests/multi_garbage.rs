//! Disk use of the multi-group log stays bounded: segments go once no group needs them, a removed
//! group's records become garbage, and a group that never compacts is carried forward instead of
//! pinning the log, with all its entries intact across a reopen.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{FaultConfig, Fs, SimFs};
use storage_disk::{MultiLog, MultiOptions};

fn options(rewrite_lag_segments: u64) -> MultiOptions {
    MultiOptions {
        segment_bytes: 4096,
        cache_bytes_per_group: 1024,
        rewrite_lag_segments,
    }
}

fn open_log(fs: &SimFs, options: &MultiOptions) -> MultiLog {
    MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options.clone()).unwrap()
}

/// Appends entry `index` (term 1) to each of `groups`, committing it, with one synced write.
fn round(log: &MultiLog, groups: &[u64], index: u64) {
    let batches = groups.iter().map(|&g| (g, ready(index, index, index)));
    log.wl().write(batches, true).unwrap();
}

/// Snapshots `group` at `index` and compacts its log up to it.
fn compact(log: &MultiLog, group: u64, index: u64) {
    log.wl()
        .create_snapshot(group, index, None, Bytes::from("sm"))
        .unwrap();
    log.wl().compact(group, index).unwrap();
}

/// The bytes of the segment files on `fs`.
fn segment_bytes(fs: &SimFs, log: &MultiLog) -> usize {
    log.rl()
        .segment_ids()
        .iter()
        .map(|id| fs.contents(&segment(*id)).map_or(0, |c| c.len()))
        .sum()
}

#[test]
fn groups_that_compact_keep_the_log_to_a_few_segments() {
    let fs = sim(1);
    let log = open_log(&fs, &options(1000));
    let groups = [1, 2, 3, 4];
    log.wl().create_groups(&groups).unwrap();
    let mut most = 0;
    for index in 1..=400 {
        round(&log, &groups, index);
        if index % 20 == 0 {
            for g in groups {
                compact(&log, g, index - 5);
            }
        }
        most = most.max(log.rl().segment_ids().len());
    }
    // 400 rounds of 4 entries (~130 B records) are about 60 segments of 4 KiB.
    let first = log.rl().segment_ids()[0];
    assert!(first > 40, "old segments were deleted (first is {first})");
    assert!(most <= 6, "the log held up to {most} segments");
}

#[test]
fn a_group_that_never_compacts_is_carried_forward_not_pinning_the_log() {
    let fs = sim(2);
    let opts = options(3);
    let log = open_log(&fs, &opts);
    let groups = [1, 2, 3];
    log.wl().create_groups(&groups).unwrap();
    let mut most = 0;
    for index in 1..=300 {
        round(&log, &groups, index);
        // Groups 1 and 2 compact; group 3 keeps its whole log.
        if index % 20 == 0 {
            compact(&log, 1, index - 5);
            compact(&log, 2, index - 5);
        }
        most = most.max(log.rl().segment_ids().len());
    }
    let first = log.rl().segment_ids()[0];
    assert!(
        first > 20,
        "the lagging group did not pin segment 1 (first is {first})"
    );
    // Group 3's 300 entries (about 40 KiB of records) are copied forward once every few
    // segments: the log stays within a small multiple of them.
    assert!(most <= 30, "the log held up to {most} segments");
    let expect: Vec<_> = (1..=300).map(|i| ent(i, 1)).collect();
    assert_eq!(log.group(3).entries(1, 301, NO_LIMIT).unwrap(), expect);
    drop(log);
    let log = open_log(&fs.crash(), &opts);
    assert_eq!(log.group(3).entries(1, 301, NO_LIMIT).unwrap(), expect);
    assert_eq!(log.group(1).first_index().unwrap(), 295);
}

#[test]
fn a_removed_groups_records_become_garbage() {
    let fs = sim(3);
    let log = open_log(&fs, &options(1000));
    log.wl().create_groups(&[1, 2]).unwrap();
    for index in 1..=100 {
        round(&log, &[1, 2], index);
        if index % 10 == 0 {
            compact(&log, 1, index);
        }
    }
    // Group 2 never compacted: it holds segment 1 and everything after it.
    assert_eq!(log.rl().segment_ids()[0], 1);
    let before = segment_bytes(&fs, &log);
    log.wl().remove_group(2).unwrap();
    let after = segment_bytes(&fs, &log);
    assert!(
        log.rl().segment_ids()[0] > 1 && after * 4 < before,
        "removing group 2 freed its segments: {before} bytes before, {after} after"
    );
    assert!(log.group(2).last_index().is_err());
    drop(log);
    let log = open_log(&fs.crash(), &options(1000));
    assert_eq!(log.rl().group_ids().collect::<Vec<_>>(), vec![1]);
    let snapshots = fs
        .crash()
        .contents(&dir().join(format!("snap-{:020}-{:020}.snap", 1, 100)));
    assert!(snapshots.is_some(), "group 1's snapshot is there");
    assert_eq!(log.group(1).last_index().unwrap(), 100);
}

#[test]
fn a_read_error_while_copying_a_lagging_group_forward_fails_no_write() {
    let fs = sim(4);
    let opts = options(3);
    let log = open_log(&fs, &opts);
    let groups = [1, 2, 3];
    log.wl().create_groups(&groups).unwrap();
    // Reads fail often; writes and fsyncs never do. Group 3's old entries are read from the disk
    // (its cache holds the last kilobyte) each time it is carried forward.
    fs.set_config(FaultConfig {
        read_error: 0.3,
        ..FaultConfig::none()
    });
    for index in 1..=300 {
        // Every batch is written and synced: a failed copy is tried again after a later write.
        round(&log, &groups, index);
        if index % 20 == 0 {
            compact(&log, 1, index - 5);
            compact(&log, 2, index - 5);
        }
    }
    assert!(fs.injected().read_errors > 0, "no read failed");
    fs.set_config(FaultConfig::none());
    let first = log.rl().segment_ids()[0];
    assert!(
        first > 20,
        "the lagging group was still carried forward (first segment {first})"
    );
    let expect: Vec<_> = (1..=300).map(|i| ent(i, 1)).collect();
    assert_eq!(log.group(3).entries(1, 301, NO_LIMIT).unwrap(), expect);
    drop(log);
    let log = open_log(&fs.crash(), &opts);
    assert_eq!(log.group(3).entries(1, 301, NO_LIMIT).unwrap(), expect);
}

/// Appends the next entry (term 1) to each of `groups`, committing it, with one synced write.
fn next_round(log: &MultiLog, groups: &[u64]) -> raft_core::Result<()> {
    let batches: Vec<_> = groups
        .iter()
        .map(|&g| {
            (g, {
                let next = log.group(g).last_index().unwrap() + 1;
                ready(next, next, next)
            })
        })
        .collect();
    log.wl().write(batches, true)
}

/// Rounds on groups 1-3 where 1 and 2 compact every 20 entries and 3 never does (so it is
/// carried forward); stops at the first failure (the power cut). Returns the rounds acked.
fn carry_forward_workload(log: &MultiLog, rounds: u64) -> u64 {
    for done in 0..rounds {
        if next_round(log, &[1, 2, 3]).is_err() {
            return done;
        }
        let last = log.group(1).last_index().unwrap();
        if last.is_multiple_of(20) {
            for g in [1, 2] {
                let mut core = log.wl();
                let compacted = core
                    .create_snapshot(g, last - 5, None, Bytes::from("sm"))
                    .and_then(|_| core.compact(g, last - 5));
                drop(core);
                if compacted.is_err() {
                    return done + 1;
                }
            }
        }
    }
    rounds
}

#[test]
fn a_copy_forward_cut_by_a_crash_leaves_no_entry_to_a_later_collection() {
    let opts = options(3);
    let full = sim(5);
    let log = open_log(&full, &opts);
    log.wl().create_groups(&[1, 2, 3]).unwrap();
    let start = full.points();
    assert_eq!(carry_forward_workload(&log, 120), 120);
    let points = full.points() - start;
    drop(log);
    // About 100 crash points spread over the workload: recovery, then 60 more rounds that keep
    // collecting garbage, must leave group 3 with every entry it ever acknowledged.
    let mut checked = 0;
    for point in (start..start + points).step_by((points as usize / 100).max(1)) {
        let fs = sim(5);
        let log = open_log(&fs, &opts);
        log.wl().create_groups(&[1, 2, 3]).unwrap();
        fs.halt_at_point(point);
        let acked = carry_forward_workload(&log, 120);
        drop(log);
        let context = format!("crash at point {point} (after {acked} rounds)");
        let after = fs.crash();
        let log = open_log(&after, &opts);
        let last = log.group(3).last_index().unwrap();
        assert!(last >= acked, "{context}: group 3 ends at {last}");
        assert_eq!(carry_forward_workload(&log, 60), 60, "{context}");
        let expect: Vec<_> = (1..=last + 60).map(|i| ent(i, 1)).collect();
        let read = log.group(3).entries(1, last + 61, NO_LIMIT);
        assert_eq!(read.as_ref().ok(), Some(&expect), "{context}: {read:?}");
        drop(log);
        let reopened = open_log(&after.crash(), &opts);
        let read = reopened.group(3).entries(1, last + 61, NO_LIMIT);
        assert_eq!(read.as_ref().ok(), Some(&expect), "{context} and a reopen");
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} crash points");
}
