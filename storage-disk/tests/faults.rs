//! Disk faults: each is either tolerated exactly as the contract allows (a torn tail) or
//! reported as an error naming the file (and offset, for corruption); none is served as data.

mod common;

use common::*;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{FaultConfig, InjectedFaults, SimFs};
use storage_disk::{DiskError, DiskStorage};

/// A storage on a fresh simulated disk holding entries 1..=`n`, synced in Readys of 5.
fn synced_storage(n: u64) -> (SimFs, DiskStorage) {
    let fs = sim(11);
    let storage = open(&fs, &small_options()).unwrap();
    let mut lo = 1;
    while lo <= n {
        let hi = (lo + 4).min(n);
        storage.wl().write(ready(lo, hi, lo - 1), true).unwrap();
        lo = hi + 1;
    }
    (fs, storage)
}

/// The path of the highest-numbered segment on `fs`.
fn last_segment(fs: &SimFs) -> std::path::PathBuf {
    let id = (1..1000)
        .rev()
        .find(|id| fs.contents(&segment(*id)).is_some())
        .expect("a segment exists");
    segment(id)
}

fn reopen_error(fs: &SimFs) -> DiskError {
    match open(fs, &small_options()) {
        Ok(_) => panic!("recovery accepted a damaged storage"),
        Err(e) => e,
    }
}

#[test]
fn a_bit_flip_in_a_synced_record_is_an_error_naming_the_segment_and_offset() {
    let (fs, storage) = synced_storage(12);
    // Byte 100 of segment 1 lies in the second or third record, long synced.
    assert!(fs.flip_bit(&segment(1), 100, 3));
    // A read that reaches it (entry 1 is no longer cached) fails, naming the place.
    let err = storage.entries(1, 6, NO_LIMIT).unwrap_err();
    let (path, offset) = corrupt_at(disk_error(&err));
    assert_eq!(path, segment(1));
    assert!(
        offset <= 100,
        "the damaged record starts at or before byte 100"
    );
    drop(storage);
    let (path, offset) = corrupt_at(&reopen_error(&fs));
    assert_eq!(path, segment(1));
    assert!((24..=100).contains(&offset), "offset {offset}");
}

#[test]
fn a_torn_tail_is_cut_and_reported() {
    let (fs, storage) = synced_storage(10);
    storage.wl().write(ready(11, 13, 9), false).unwrap();
    drop(storage);
    // The last unsynced record lost its last 7 bytes in the crash.
    let path = last_segment(&fs);
    let mut bytes = fs.contents(&path).unwrap();
    let torn_len = log_end(&bytes) - 7;
    bytes.truncate(torn_len);
    fs.set_contents(&path, bytes);
    let storage = open(&fs, &small_options()).expect("a torn tail is not corruption");
    let tail = storage.rl().recovery().torn_tail.clone().expect("reported");
    assert_eq!(tail.path, path);
    assert!(tail.offset < torn_len as u64 && tail.bytes_dropped > 0);
    assert_eq!(
        storage.last_index().unwrap(),
        12,
        "entries 11 and 12 survived"
    );
    let entries = storage.entries(1, 13, NO_LIMIT).unwrap();
    assert_eq!(entries, (1..=12).map(|i| ent(i, 1)).collect::<Vec<_>>());
    // The storage appends after the cut, and that survives a reopen.
    storage.wl().write(ready(13, 13, 12), true).unwrap();
    drop(storage);
    let storage = open(&fs, &small_options()).unwrap();
    assert_eq!(storage.rl().recovery().torn_tail, None);
    assert_eq!(storage.entries(13, 14, NO_LIMIT).unwrap(), vec![ent(13, 1)]);
}

#[test]
fn damage_before_a_later_sync_mark_is_not_taken_for_a_torn_tail() {
    let fs = sim(3);
    let storage = open(&fs, &small_options()).unwrap();
    storage.wl().write(ready(1, 2, 0), true).unwrap();
    // The sync mark of that fsync is written right after it: the second write starts here.
    let synced_end = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    // Entries 3-4 are synced without a new hard state, so only the sync mark written after
    // their fsync proves it.
    storage.wl().append(&[ent(3, 1), ent(4, 1)]).unwrap();
    storage.wl().sync().unwrap();
    storage.wl().append(&[ent(5, 1)]).unwrap();
    drop(storage);
    assert!(fs.flip_bit(&segment(1), synced_end + 30, 0));
    let error = reopen_error(&fs);
    let (path, offset) = corrupt_at(&error);
    assert_eq!(path, segment(1));
    assert_eq!(
        offset, synced_end,
        "the first entry record of the second write"
    );
    assert!(
        error.to_string().contains("before a proof of sync"),
        "{error}"
    );
}

#[test]
fn a_failed_fsync_is_returned_and_the_storage_refuses_writes_until_reopened() {
    let (fs, storage) = synced_storage(5);
    fs.fail_next_sync();
    let err = storage.wl().write(ready(6, 8, 5), true).unwrap_err();
    assert!(
        matches!(disk_error(&err), DiskError::Io { op: "fsync", .. }),
        "{err}"
    );
    // Never retried as if fine: every later write is refused, with the reason.
    let err = storage.wl().write(ready(9, 9, 5), true).unwrap_err();
    assert!(matches!(disk_error(&err), DiskError::Failed(_)), "{err}");
    assert!(storage.wl().sync().is_err());
    assert!(storage.rl().failure().is_some());
    // Reads still answer.
    assert_eq!(storage.entries(1, 6, NO_LIMIT).unwrap().len(), 5);
    drop(storage);
    // After a power loss the entries of the failed sync may be gone; the synced ones are not.
    let storage = open(&fs.crash(), &small_options()).unwrap();
    assert!(storage.last_index().unwrap() >= 5);
    assert_eq!(
        storage.entries(1, 6, NO_LIMIT).unwrap(),
        (1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>()
    );
}

#[test]
fn a_full_disk_is_an_error_and_stops_writes() {
    let (fs, storage) = synced_storage(3);
    fs.fail_next_write_no_space();
    let err = storage.wl().write(ready(4, 6, 3), true).unwrap_err();
    assert!(disk_error(&err).is_no_space(), "{err}");
    assert_eq!(storage.last_index().unwrap(), 3, "nothing was appended");
    assert!(storage.wl().write(ready(4, 4, 3), true).is_err());

    // The same from the capacity limit.
    let fs = SimFs::new(
        5,
        FaultConfig {
            capacity_bytes: 16 << 10,
            ..FaultConfig::none()
        },
    );
    let storage = open(&fs, &small_options()).unwrap();
    let mut index = 1;
    let err = loop {
        match storage.wl().write(ready(index, index + 4, 0), true) {
            Ok(()) => index += 5,
            Err(e) => break e,
        }
        assert!(index < 10_000, "the disk never filled");
    };
    assert!(disk_error(&err).is_no_space(), "{err}");
}

#[test]
fn a_read_error_is_returned_not_served() {
    let (fs, storage) = synced_storage(30);
    fs.fail_next_read();
    let err = storage.entries(1, 3, NO_LIMIT).unwrap_err();
    assert!(
        matches!(disk_error(&err), DiskError::Io { op: "read", .. }),
        "{err}"
    );
    assert_eq!(
        storage.entries(1, 3, NO_LIMIT).unwrap().len(),
        2,
        "transient"
    );
    // A read error during recovery fails the open, naming the file.
    drop(storage);
    fs.fail_next_read();
    assert!(matches!(
        reopen_error(&fs),
        DiskError::Io { op: "read", .. }
    ));
}

#[test]
fn a_missing_segment_is_an_error_naming_it() {
    let (fs, storage) = synced_storage(60);
    drop(storage);
    assert!(fs.contents(&segment(3)).is_some(), "the log spans segments");
    assert!(fs.remove_durably(&segment(2)));
    let (path, offset) = corrupt_at(&reopen_error(&fs));
    assert_eq!((path, offset), (segment(2), 0));
}

#[test]
fn a_log_shorter_than_the_checkpoint_records_is_an_error() {
    let (fs, storage) = synced_storage(8);
    // A snapshot writes a checkpoint, which records the log's synced length.
    storage
        .wl()
        .create_snapshot(5, None, bytes::Bytes::from_static(b"state at 5"))
        .unwrap();
    drop(storage);
    let last = last_segment(&fs);
    let mut bytes = fs.contents(&last).unwrap();
    bytes.truncate(24);
    fs.set_contents(&last, bytes);
    let error = reopen_error(&fs);
    let (path, _) = corrupt_at(&error);
    assert_eq!(path, last);
    assert!(error.to_string().contains("ends before"), "{error}");
}

#[test]
fn a_closed_segment_cut_at_a_record_boundary_is_an_error() {
    let (fs, storage) = synced_storage(60);
    drop(storage);
    assert!(fs.contents(&segment(3)).is_some(), "the log spans segments");
    // Segment 2 loses every record (its header is a record boundary): segment 3 then follows a
    // gap (an entry after it, or a commit beyond the log).
    let mut bytes = fs.contents(&segment(2)).unwrap();
    bytes.truncate(24);
    fs.set_contents(&segment(2), bytes);
    let error = reopen_error(&fs);
    assert_eq!(corrupt_at(&error).0, segment(3), "{error}");
}

#[test]
fn a_damaged_snapshot_file_is_an_error_naming_it() {
    let (fs, storage) = synced_storage(8);
    storage
        .wl()
        .create_snapshot(5, None, bytes::Bytes::from_static(b"state at 5"))
        .unwrap();
    drop(storage);
    let path = dir().join(format!("snap-{:020}.snap", 5));
    assert!(fs.flip_bit(&path, 20, 1));
    let (named, _) = corrupt_at(&reopen_error(&fs));
    assert_eq!(named, path);
}

#[test]
fn a_misdirected_write_is_caught_by_the_checksums() {
    let (fs, storage) = synced_storage(6);
    fs.set_config(FaultConfig {
        misdirected_write: 1.0,
        ..FaultConfig::none()
    });
    storage.wl().append(&[ent(7, 1), ent(8, 1)]).unwrap();
    fs.set_config(FaultConfig::none());
    drop(storage);
    assert!(corrupt_at(&reopen_error(&fs)).1 >= 24);
}

#[test]
fn a_bit_flip_on_the_way_to_the_disk_is_caught_once_a_later_sync_proves_it_synced() {
    let (fs, storage) = synced_storage(6);
    fs.set_config(FaultConfig {
        bit_flip: 1.0,
        ..FaultConfig::none()
    });
    storage.wl().append(&[ent(7, 1), ent(8, 1)]).unwrap();
    fs.set_config(FaultConfig::none());
    storage.wl().sync().unwrap();
    storage.wl().append(&[ent(9, 1)]).unwrap();
    drop(storage);
    let (path, _) = corrupt_at(&reopen_error(&fs));
    assert!(in_dir(&path));
}

#[test]
fn random_faults_never_serve_wrong_data() {
    // Under every fault at once, each read either errors or returns what was written.
    for seed in 0..20 {
        let fs = SimFs::new(
            seed,
            FaultConfig {
                sync_error: 0.02,
                read_error: 0.05,
                bit_flip: 0.02,
                misdirected_write: 0.01,
                ..FaultConfig::none()
            },
        );
        let Ok(storage) = open(&fs, &small_options()) else {
            continue;
        };
        for lo in (1..200).step_by(4) {
            if storage
                .wl()
                .write(ready(lo, lo + 3, 0), lo % 8 == 1)
                .is_err()
            {
                break;
            }
            if let Ok(entries) = storage.entries(1, lo + 4, NO_LIMIT) {
                assert_eq!(
                    entries,
                    (1..lo + 4).map(|i| ent(i, 1)).collect::<Vec<_>>(),
                    "seed {seed}"
                );
            }
        }
        drop(storage);
        if let Ok(storage) = open(&fs.crash(), &small_options()) {
            let last = storage.last_index().unwrap();
            if let Ok(entries) = storage.entries(1, last + 1, NO_LIMIT) {
                assert_eq!(
                    entries,
                    (1..=last).map(|i| ent(i, 1)).collect::<Vec<_>>(),
                    "seed {seed}"
                );
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_disk() {
    let image = |seed: u64| {
        let fs = SimFs::new(
            seed,
            FaultConfig {
                bit_flip: 0.05,
                misdirected_write: 0.05,
                ..FaultConfig::none()
            },
        );
        let storage = open(&fs, &small_options()).unwrap();
        for lo in (1..80).step_by(4) {
            let _ = storage.wl().write(ready(lo, lo + 3, 0), lo % 8 == 1);
        }
        drop(storage);
        let after = fs.crash();
        (1..20)
            .map(|id| after.contents(&segment(id)))
            .collect::<Vec<_>>()
    };
    assert_eq!(image(9), image(9), "same seed, same disk after the crash");
    assert_ne!(image(9), image(10), "another seed tears differently");
}

#[test]
fn the_simulated_disk_counts_the_faults_it_injects() {
    let (fs, storage) = synced_storage(10);
    assert_eq!(fs.injected(), InjectedFaults::default(), "none so far");
    fs.fail_next_read();
    storage.entries(1, 3, NO_LIMIT).unwrap_err();
    fs.fail_next_sync();
    storage.wl().write(ready(11, 11, 10), true).unwrap_err();
    let counted = fs.injected();
    assert_eq!((counted.read_errors, counted.sync_errors), (1, 1));
    // Every write flipped and misdirected: each one is counted.
    drop(storage);
    let fs = sim(12);
    let storage = open(&fs, &small_options()).unwrap();
    let writes = fs.write_count();
    fs.set_config(FaultConfig {
        bit_flip: 1.0,
        misdirected_write: 1.0,
        ..FaultConfig::none()
    });
    storage.wl().write(ready(1, 1, 0), false).unwrap();
    let written = fs.write_count() - writes;
    assert!(written > 0);
    let counted = fs.injected();
    assert!(
        counted.bit_flips >= written && counted.misdirected_writes >= written,
        "{counted:?} for {written} writes (and preallocations)"
    );
    // A crash gives a new disk, which has injected nothing yet.
    assert_eq!(fs.crash().injected(), InjectedFaults::default());
}
