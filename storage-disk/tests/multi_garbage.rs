//! Disk use of the multi-group log stays bounded: segments go once no group needs them, a removed
//! group's records become garbage, and a group that never compacts is carried forward instead of
//! pinning the log, with all its entries intact across a reopen.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use raft_core::eraftpb::HardState;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{Fs, SimFs};
use storage_disk::{MultiLog, MultiOptions, WriteBatch};

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
    let batches = groups.iter().map(|&g| {
        let batch = WriteBatch {
            entries: vec![ent(index, 1)],
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: index,
            }),
            ..Default::default()
        };
        (g, batch)
    });
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
