//! The sparse log index: terms from memory, entries outside the cache read back from their
//! segments across segments, term runs, truncations and copies, damage met while scanning
//! reported, and an index whose size follows the segments and terms, not the entries.

mod common;

use std::sync::Arc;

use common::*;
use raft_core::eraftpb::{Entry, HardState};
use raft_core::{Storage, NO_LIMIT};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use storage_disk::io::{Fs, SimFs};
use storage_disk::{DiskStorage, MultiLog, MultiOptions, Options, WriteBatch};
use storage_mem::MemStorage;

/// Segments of 4 KiB and a cache of the last entry only: almost every read goes to the disk.
fn uncached() -> Options {
    Options {
        group_id: 1,
        segment_bytes: 4096,
        cache_bytes: 0,
    }
}

/// The term of entry `index` in the logs these tests write: a new term every 37 entries.
fn term_of(index: u64) -> u64 {
    1 + index / 37
}

/// Appends `entries` to both storages as one synced Ready (with a hard state).
fn append_both(mem: &MemStorage, disk: &DiskStorage, entries: Vec<Entry>) {
    let commit = mem.rl().hard_state().commit;
    let last = entries.last().map_or(0, |e| e.index);
    mem.wl().append(&entries).unwrap();
    let hard_state = HardState {
        term: last,
        vote: 1,
        commit,
    };
    let batch = WriteBatch {
        entries,
        hard_state: Some(hard_state),
        ..Default::default()
    };
    disk.wl().write(batch, true).unwrap();
}

/// Entries `[lo, hi]` with the terms of [`term_of`], or all of term `term` if given.
fn entries(lo: u64, hi: u64, term: Option<u64>) -> Vec<Entry> {
    (lo..=hi)
        .map(|i| ent(i, term.unwrap_or_else(|| term_of(i))))
        .collect()
}

/// Compares every term and many windows of entries (forward, backward, random, with and
/// without a size limit) of the two storages.
fn assert_reads_match(mem: &MemStorage, disk: &DiskStorage, seed: u64, context: &str) {
    let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
    assert_eq!(disk.first_index().unwrap(), first, "{context}");
    assert_eq!(disk.last_index().unwrap(), last, "{context}");
    for index in first - 1..=last {
        assert_eq!(
            disk.term(index).unwrap(),
            mem.term(index).unwrap(),
            "term({index}) {context}"
        );
    }
    let check = |low: u64, high: u64, max: u64| {
        assert_eq!(
            disk.entries(low, high, max).unwrap(),
            mem.entries(low, high, max).unwrap(),
            "entries({low}, {high}, {max}) {context}"
        );
    };
    check(first, last + 1, NO_LIMIT);
    for low in (first..=last).rev().step_by(7) {
        check(low, (low + 5).min(last + 1), NO_LIMIT);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..60 {
        let low = rng.random_range(first..=last);
        let high = rng.random_range(low..=last + 1);
        let max = match rng.random_range(0..3) {
            0 => NO_LIMIT,
            1 => 0,
            _ => rng.random_range(0..3000),
        };
        check(low, high, max);
    }
}

fn reopen(fs: &SimFs, options: &Options) -> DiskStorage {
    open(fs, options).expect("reopening a synced storage")
}

#[test]
fn old_entries_are_read_back_across_segments_and_term_runs() {
    let fs = sim(1);
    let options = uncached();
    let disk = reopen(&fs, &options);
    let mem = MemStorage::new();
    let mut next = 1;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    while next <= 600 {
        let hi = next + rng.random_range(0..6);
        append_both(&mem, &disk, entries(next, hi, None));
        next = hi + 1;
    }
    assert_reads_match(&mem, &disk, 1, "after the appends");
    let stats = disk.rl().index_stats();
    let segments = (1..1000).filter(|id| fs.contents(&segment(*id)).is_some());
    assert_eq!(
        stats.pieces,
        segments.count(),
        "one piece per segment: {stats:?}"
    );
    assert_eq!(stats.term_runs, (term_of(next - 1)) as usize);
    assert_eq!(stats.cached_entries, 1);
    drop(disk);
    // Recovery rebuilds the same index from the records.
    let disk = reopen(&fs, &options);
    assert_eq!(
        (
            disk.rl().index_stats().pieces,
            disk.rl().index_stats().term_runs
        ),
        (stats.pieces, stats.term_runs)
    );
    assert_reads_match(&mem, &disk, 2, "after a reopen");
}

#[test]
fn terms_are_answered_from_memory_when_no_segment_can_be_read() {
    let fs = sim(2);
    let disk = reopen(&fs, &uncached());
    let mem = MemStorage::new();
    append_both(&mem, &disk, entries(1, 300, None));
    for id in (1..1000).filter(|id| fs.contents(&segment(*id)).is_some()) {
        fs.set_contents(&segment(id), vec![0; 24]);
    }
    for index in 0..=300 {
        assert_eq!(disk.term(index).unwrap(), mem.term(index).unwrap());
    }
    assert!(
        disk.entries(1, 2, NO_LIMIT).is_err(),
        "the entries themselves are gone from the disk"
    );
    assert_eq!(
        disk.entries(300, 301, NO_LIMIT).unwrap(),
        entries(300, 300, None),
        "the last entry is cached"
    );
}

#[test]
fn a_truncation_in_the_middle_of_a_run_and_of_a_segment_serves_the_new_suffix() {
    let fs = sim(3);
    let options = uncached();
    let disk = reopen(&fs, &options);
    let mem = MemStorage::new();
    for lo in (1..=400).step_by(10) {
        append_both(&mem, &disk, entries(lo, lo + 9, Some(1)));
    }
    let before = disk.rl().index_stats();
    // Entry 205 lies inside a segment (about 25 entries each) and inside the run of term 1.
    let first_of_205 = (1..1000)
        .filter(|id| fs.contents(&segment(*id)).is_some())
        .find_map(|id| entry_record(&records(&fs, id), 1, 205))
        .expect("entry 205 is on disk");
    assert!(
        first_of_205 > 24,
        "205 is not the first record of its segment"
    );
    append_both(&mem, &disk, entries(205, 230, Some(2)));
    assert_reads_match(&mem, &disk, 3, "after a truncation at 205");
    let after = disk.rl().index_stats();
    assert!(
        after.pieces < before.pieces,
        "the old pieces after 205 are gone"
    );
    assert_eq!(after.term_runs, 2);
    // A second truncation inside the run of term 2, in the last segment, then more appends.
    append_both(&mem, &disk, entries(220, 221, Some(3)));
    for lo in (222..=300).step_by(8) {
        append_both(&mem, &disk, entries(lo, lo + 7, Some(3)));
    }
    assert_reads_match(&mem, &disk, 4, "after a second truncation");
    drop(disk);
    let disk = reopen(&fs, &options);
    assert_reads_match(&mem, &disk, 5, "after a reopen");
    assert_eq!(disk.rl().index_stats().term_runs, 3);
}

#[test]
fn a_truncation_inside_the_segment_being_written_serves_the_new_entries() {
    // A new leader's entries replace the end of the last segment's piece: the old records stay
    // in the segment before the new ones and must never be served.
    let fs = sim(11);
    let disk = reopen(&fs, &big_segments());
    let mem = MemStorage::new();
    for lo in (1..=100).step_by(10) {
        append_both(&mem, &disk, entries(lo, lo + 9, Some(1)));
    }
    append_both(&mem, &disk, entries(51, 60, Some(2)));
    append_both(&mem, &disk, entries(55, 70, Some(3)));
    append_both(&mem, &disk, entries(71, 80, Some(3)));
    assert!(fs.contents(&segment(2)).is_none(), "one segment");
    assert_reads_match(&mem, &disk, 11, "after two truncations");
    assert_eq!(disk.rl().index_stats().pieces, 3);
    drop(disk);
    let disk = reopen(&fs, &big_segments());
    assert_reads_match(&mem, &disk, 12, "after a reopen");
}

#[test]
fn compaction_keeps_the_entries_after_it_readable() {
    let fs = sim(4);
    let options = uncached();
    let disk = reopen(&fs, &options);
    let mem = MemStorage::new();
    for lo in (1..=300).step_by(6) {
        append_both(&mem, &disk, entries(lo, lo + 5, None));
    }
    disk.wl().commit_to(250).unwrap();
    mem.wl().commit_to(250).unwrap();
    let data = bytes::Bytes::from_static(b"state at 200");
    disk.wl().create_snapshot(200, None, data.clone()).unwrap();
    mem.wl().create_snapshot(200, None, data).unwrap();
    for compact in [40, 41, 133] {
        disk.wl().compact(compact).unwrap();
        mem.wl().compact(compact).unwrap();
        assert_reads_match(&mem, &disk, compact, &format!("after compact({compact})"));
    }
    drop(disk);
    let disk = reopen(&fs, &options);
    assert_reads_match(&mem, &disk, 6, "after a reopen");
}

/// Segments of 1 MiB, nothing cached but the last entry.
fn big_segments() -> Options {
    Options {
        segment_bytes: 1 << 20,
        ..uncached()
    }
}

/// Writes entries `1..=n` of term 1 on `fs` into one segment, in Readys of 10 with a hard state
/// record after each.
fn write_one_segment(fs: &SimFs, n: u64) {
    let disk = reopen(fs, &big_segments());
    let mem = MemStorage::new();
    for lo in (1..=n).step_by(10) {
        append_both(&mem, &disk, entries(lo, (lo + 9).min(n), Some(1)));
    }
    assert!(fs.contents(&segment(2)).is_none(), "one segment");
}

#[test]
fn a_bit_flip_met_while_scanning_is_an_error_naming_the_segment_and_offset() {
    // The first scan for entry 1500 starts at the piece's first record and meets every record
    // before it: a flipped bit in one it only passes over is reported all the same.
    let fs = sim(5);
    write_one_segment(&fs, 2000);
    let bytes = records(&fs, 1);
    // Entry 1001 has a payload of 37 bytes (entry 1001's is empty).
    let entry_1001 = entry_record(&bytes, 1, 1001).unwrap();
    let hard_state = walk_records(&bytes)
        .into_iter()
        .find(|r| r.kind == 3 && r.offset > entry_1001)
        .unwrap()
        .offset;
    for (what, offset, byte) in [
        ("entry 1001's payload", entry_1001, 40),
        ("entry 1001's header", entry_1001, 2),
        ("a hard state record's payload", hard_state, 30),
    ] {
        // A fresh storage: no position near 1500 is known yet.
        let disk = reopen(&fs, &big_segments());
        assert!(fs.flip_bit(&segment(1), offset + byte, 4));
        let error = disk.entries(1500, 1501, NO_LIMIT).unwrap_err();
        assert_eq!(
            corrupt_at(disk_error(&error)),
            (segment(1), offset),
            "a flipped bit in {what}: {error}"
        );
        assert!(fs.flip_bit(&segment(1), offset + byte, 4), "repaired");
        assert_eq!(
            disk.entries(1500, 1501, NO_LIMIT).unwrap(),
            entries(1500, 1500, Some(1))
        );
    }
}

#[test]
fn a_bit_flip_in_the_entry_read_is_an_error_and_positions_found_before_stay_right() {
    let fs = sim(6);
    write_one_segment(&fs, 2000);
    let disk = reopen(&fs, &big_segments());
    // Reads through the whole segment leave positions (anchors) behind.
    for low in (1..2000).step_by(100) {
        assert_eq!(disk.entries(low, low + 100, NO_LIMIT).unwrap().len(), 100);
    }
    let stats = disk.rl().index_stats();
    assert_eq!(stats.anchor_tables, 1);
    assert!(stats.anchors > 2, "{stats:?}");
    let at = entry_record(&records(&fs, 1), 1, 1733).unwrap();
    assert!(fs.flip_bit(&segment(1), at + 30, 0));
    let error = disk.entries(1700, 1800, NO_LIMIT).unwrap_err();
    assert_eq!(corrupt_at(disk_error(&error)), (segment(1), at));
    assert_eq!(
        disk.entries(1600, 1733, NO_LIMIT).unwrap(),
        entries(1600, 1732, Some(1)),
        "the entries before it are still served"
    );
    assert!(fs.flip_bit(&segment(1), at + 30, 0), "repaired");
    assert_eq!(
        disk.entries(1700, 1800, NO_LIMIT).unwrap(),
        entries(1700, 1799, Some(1))
    );
}

#[test]
fn a_first_read_scans_from_the_nearest_resident_sample_not_from_the_segment_start() {
    // 3,000 entries of 4 KiB in one segment: the piece keeps a sample every 1,024 entries (and
    // 4 MiB), so the first read of entry 2,900 starts at entry 2,049's record.
    let fs = sim(12);
    let options = Options {
        segment_bytes: 64 << 20,
        ..uncached()
    };
    let big = |index: u64| Entry {
        index,
        term: 1,
        data: vec![(index % 251) as u8; 4096].into(),
        ..Default::default()
    };
    let disk = reopen(&fs, &options);
    for lo in (1..=3000).step_by(100) {
        let batch = WriteBatch {
            entries: (lo..lo + 100).map(big).collect(),
            ..Default::default()
        };
        disk.wl().write(batch, true).unwrap();
    }
    drop(disk);
    let bytes = records(&fs, 1);
    let (early, late) = (
        entry_record(&bytes, 1, 500).unwrap(),
        entry_record(&bytes, 1, 2500).unwrap(),
    );
    let disk = reopen(&fs, &options);
    assert!(fs.flip_bit(&segment(1), early + 100, 2));
    assert_eq!(
        disk.entries(2900, 2901, NO_LIMIT).unwrap(),
        vec![big(2900)],
        "the scan started after entry 500"
    );
    assert!(fs.flip_bit(&segment(1), early + 100, 2), "repaired");
    drop(disk);
    let fresh = reopen(&fs, &options);
    assert!(fs.flip_bit(&segment(1), late + 100, 2));
    let error = fresh.entries(2900, 2901, NO_LIMIT).unwrap_err();
    assert_eq!(corrupt_at(disk_error(&error)), (segment(1), late));
}

#[test]
fn a_segment_cut_short_is_an_error_at_the_record_it_cuts() {
    let fs = sim(7);
    write_one_segment(&fs, 2000);
    let disk = reopen(&fs, &big_segments());
    let bytes = records(&fs, 1);
    // Entry 1201's record is 24 + 45 bytes long.
    let at = entry_record(&bytes, 1, 1201).unwrap();
    fs.set_contents(&segment(1), bytes[..at as usize + 30].to_vec());
    let error = disk.entries(1500, 1501, NO_LIMIT).unwrap_err();
    assert_eq!(corrupt_at(disk_error(&error)), (segment(1), at), "{error}");
    assert_eq!(
        disk.entries(1100, 1201, NO_LIMIT).unwrap(),
        entries(1100, 1200, Some(1))
    );
}

#[test]
fn the_index_grows_with_the_segments_not_with_the_entries() {
    // Four times the entries in segments of the same size: one piece per segment, one term run,
    // a cache within its budget, and bounded anchor tables after reading everything.
    let mut shapes = Vec::new();
    for n in [2_000u64, 8_000] {
        let fs = sim(8);
        let options = Options {
            group_id: 1,
            segment_bytes: 256 << 10,
            cache_bytes: 4096,
        };
        let disk = reopen(&fs, &options);
        for lo in (1..=n).step_by(50) {
            let batch = WriteBatch {
                entries: entries(lo, lo + 49, Some(7)),
                ..Default::default()
            };
            disk.wl().write(batch, false).unwrap();
        }
        disk.wl().sync().unwrap();
        let segments = (1..1000)
            .filter(|id| fs.contents(&segment(*id)).is_some())
            .count();
        let mut read = 0;
        let mut low = 1;
        while low <= n {
            let page = disk.entries(low, n + 1, 16 << 10).unwrap();
            read += page.len() as u64;
            low += page.len() as u64;
        }
        assert_eq!(read, n);
        let stats = disk.rl().index_stats();
        assert_eq!(stats.pieces, segments, "{stats:?}");
        assert_eq!(stats.term_runs, 1);
        assert!(stats.cached_bytes <= 4096, "{stats:?}");
        // At most (256 KiB / 64 KiB + 2) anchors per table.
        assert!(stats.anchors <= stats.anchor_tables * 6, "{stats:?}");
        shapes.push(segments);
    }
    assert!(shapes[1] > shapes[0], "{shapes:?}");
}

/// A multi-group log of three groups, written in rounds (each group one to three entries a
/// round, records interleaved), small segments, nothing cached but each group's last entry,
/// and copies of lagging groups' entries after two segments.
#[test]
fn a_group_reads_its_old_entries_among_other_groups_records_and_copies() {
    let fs = sim(9);
    let options = MultiOptions {
        segment_bytes: 4096,
        cache_bytes_per_group: 0,
        rewrite_lag_segments: 2,
    };
    let open = |fs: &SimFs| {
        MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options.clone()).unwrap()
    };
    let log = open(&fs);
    let groups = [1u64, 2, 3];
    log.wl().create_groups(&groups).unwrap();
    let mems: Vec<MemStorage> = groups.iter().map(|_| MemStorage::new()).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut next = [1u64; 3];
    for round in 0..150 {
        let mut batches = Vec::new();
        for (g, &id) in groups.iter().enumerate() {
            let n = rng.random_range(1..=3);
            // Now and then a group replaces its last two entries (a new leader's).
            let lo = if round % 17 == 5 && next[g] > 3 {
                next[g] - 2
            } else {
                next[g]
            };
            let batch: Vec<Entry> = (lo..lo + n).map(|i| ent(i, 1 + round / 10)).collect();
            mems[g].wl().append(&batch).unwrap();
            next[g] = lo + n;
            batches.push((
                id,
                WriteBatch {
                    entries: batch,
                    ..Default::default()
                },
            ));
        }
        log.wl().write(batches, true).unwrap();
    }
    let check = |log: &MultiLog, context: &str| {
        for (g, &id) in groups.iter().enumerate() {
            let group = log.group(id);
            let mem = &mems[g];
            let last = mem.last_index().unwrap();
            for index in 1..=last {
                assert_eq!(group.term(index).unwrap(), mem.term(index).unwrap());
            }
            assert_eq!(
                group.entries(1, last + 1, NO_LIMIT).unwrap(),
                mem.entries(1, last + 1, NO_LIMIT).unwrap(),
                "group {id} {context}"
            );
            for low in (1..=last).rev().step_by(5) {
                assert_eq!(
                    group.entries(low, last + 1, 700).unwrap(),
                    mem.entries(low, last + 1, 700).unwrap(),
                    "group {id} from {low} {context}"
                );
            }
        }
    };
    check(&log, "while running");
    let segments = log.rl().segment_ids();
    assert!(
        segments[0] > 1,
        "old segments went, so entries were copied: {segments:?}"
    );
    let pieces = log.rl().index_stats(2).unwrap().pieces;
    assert!(pieces <= 2 * segments.len() + 20, "{pieces} pieces");
    drop(log);
    let log = open(&fs);
    check(&log, "after a reopen");
}

#[test]
fn a_damaged_record_of_another_group_met_while_scanning_is_an_error() {
    // Groups 1 and 2 write in turns into one segment: group 2's records lie inside the span of
    // group 1's piece, and a scan for group 1's entry 150 passes over them.
    let fs = sim(10);
    let options = MultiOptions {
        segment_bytes: 1 << 20,
        cache_bytes_per_group: 0,
        rewrite_lag_segments: 8,
    };
    let open =
        || MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options.clone()).unwrap();
    let log = open();
    log.wl().create_groups(&[1, 2]).unwrap();
    for index in 1..=200 {
        let batches = [1, 2].map(|id| {
            let batch = WriteBatch {
                entries: vec![ent(index, 1)],
                ..Default::default()
            };
            (id, batch)
        });
        log.wl().write(batches, index % 10 == 0).unwrap();
    }
    drop(log);
    let bytes = records(&fs, 1);
    let damaged = entry_record(&bytes, 2, 100).unwrap();
    let log = open();
    assert!(fs.flip_bit(&segment(1), damaged + 30, 1));
    let error = log.group(1).entries(150, 151, NO_LIMIT).unwrap_err();
    assert_eq!(corrupt_at(disk_error(&error)), (segment(1), damaged));
    assert!(
        log.group(1).entries(1, 100, NO_LIMIT).is_ok(),
        "group 1's entries before the damage are served"
    );
}
