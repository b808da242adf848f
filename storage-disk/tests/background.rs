//! Snapshots written on another thread ([`SnapshotWriter`]) and adopted under the lock.

mod common;

use common::*;
use raft_core::eraftpb::HardState;
use raft_core::Storage;
use storage_disk::DiskStorage;

fn names(fs: &storage_disk::io::SimFs) -> Vec<String> {
    use storage_disk::io::Fs;
    let mut names = fs.list(&dir()).unwrap();
    names.sort();
    names
}

/// A storage holding entries 2..=40 (term 2), committed, synced, and a snapshot at 1.
fn with_log(fs: &storage_disk::io::SimFs) -> DiskStorage {
    let s = open(fs, &small_options()).unwrap();
    s.wl().apply_snapshot(snap(1, 1, &[1, 2, 3])).unwrap();
    let ents: Vec<_> = (2..=40).map(|i| ent(i, 2)).collect();
    // In several batches, so that the small segments rotate.
    for chunk in ents.chunks(4) {
        s.wl().append(chunk).unwrap();
        s.wl().sync().unwrap();
    }
    s.wl().set_hard_state(HardState {
        term: 2,
        vote: 1,
        commit: 40,
    });
    s.wl().sync().unwrap();
    s
}

#[test]
fn a_snapshot_written_on_another_thread_becomes_the_latest_when_adopted() {
    let fs = sim(1);
    let s = with_log(&fs);
    let writer = s.rl().snapshot_writer(30, Some(conf(&[1, 2, 3]))).unwrap();
    assert_eq!(writer.metadata().term, 2);
    let written = std::thread::spawn(move || writer.write("state at 30".into()))
        .join()
        .unwrap()
        .unwrap();
    assert!(
        names(&fs).iter().any(|n| n.ends_with(".background.tmp")),
        "written beside the storage's files: {:?}",
        names(&fs)
    );
    // The node went on meanwhile.
    s.wl().append(&[ent(41, 3)]).unwrap();
    s.wl().sync().unwrap();
    assert_eq!(s.snapshot(0, 2).unwrap().metadata.unwrap().index, 1);

    assert!(s.wl().adopt_snapshot(written).unwrap());
    let got = s.snapshot(30, 2).unwrap();
    assert_eq!(got.data, "state at 30");
    assert_eq!(got.metadata.unwrap().index, 30);
    s.wl().compact(25).unwrap();
    assert_eq!(s.first_index().unwrap(), 25);
    assert!(!names(&fs).iter().any(|n| n.ends_with(".tmp")));

    // Durable: a power loss right after keeps it.
    let after = fs.crash();
    let r = open(&after, &small_options()).unwrap();
    assert_eq!(r.snapshot(0, 2).unwrap().data, "state at 30");
    assert_eq!(r.first_index().unwrap(), 25);
    assert_eq!(r.last_index().unwrap(), 41);
}

#[test]
fn a_snapshot_overtaken_by_an_installed_one_is_dropped_with_its_file() {
    let fs = sim(2);
    let s = with_log(&fs);
    let writer = s.rl().snapshot_writer(30, None).unwrap();
    s.wl().apply_snapshot(snap(50, 4, &[1, 2, 3])).unwrap();
    let written = writer.write("state at 30".into()).unwrap();
    assert!(!s.wl().adopt_snapshot(written).unwrap());
    assert!(
        !names(&fs).iter().any(|n| n.ends_with(".tmp")),
        "{:?}",
        names(&fs)
    );
    assert_eq!(s.snapshot(0, 2).unwrap().metadata.unwrap().index, 50);
}

#[test]
fn a_crash_before_adoption_leaves_the_storage_as_it_was() {
    let fs = sim(3);
    let s = with_log(&fs);
    let writer = s.rl().snapshot_writer(30, None).unwrap();
    let _written = writer.write("state at 30".into()).unwrap();
    let after = fs.crash();
    let r = open(&after, &small_options()).unwrap();
    assert_eq!(r.snapshot(0, 2).unwrap().metadata.unwrap().index, 1);
    assert_eq!(r.last_index().unwrap(), 40);
    assert!(
        !names(&after).iter().any(|n| n.ends_with(".tmp")),
        "leftover removed on open"
    );
}

#[test]
fn a_writer_is_refused_where_create_snapshot_would_be() {
    let fs = sim(4);
    let s = with_log(&fs);
    assert!(s.rl().snapshot_writer(0, None).is_err());
    assert!(s.rl().snapshot_writer(41, None).is_err(), "beyond the log");
    s.wl().set_hard_state(HardState {
        term: 2,
        vote: 1,
        commit: 20,
    });
    assert!(
        s.rl().snapshot_writer(30, None).is_err(),
        "beyond the commit index"
    );
    s.wl().apply_snapshot(snap(50, 4, &[1, 2, 3])).unwrap();
    assert!(
        s.rl().snapshot_writer(45, None).is_err(),
        "older than the latest"
    );
}

#[test]
fn a_failed_fsync_while_writing_fails_the_write_and_leaves_the_storage_usable() {
    let fs = sim(5);
    let s = with_log(&fs);
    let writer = s.rl().snapshot_writer(30, None).unwrap();
    fs.fail_next_sync();
    assert!(writer.write("state at 30".into()).is_err());
    // The storage itself saw no failure: it goes on.
    s.wl().append(&[ent(41, 3)]).unwrap();
    s.wl().sync().unwrap();
    let writer = s.rl().snapshot_writer(30, None).unwrap();
    let written = writer.write("state at 30".into()).unwrap();
    assert!(s.wl().adopt_snapshot(written).unwrap());
}

#[test]
fn a_deferred_compaction_leaves_the_freed_segments_to_the_caller() {
    let fs = sim(6);
    let s = with_log(&fs);
    s.wl()
        .create_snapshot(35, None, "state at 35".into())
        .unwrap();
    let before = names(&fs).iter().filter(|n| n.ends_with(".log")).count();
    let garbage = s.wl().compact_deferred(36).unwrap();
    assert!(
        !garbage.paths().is_empty(),
        "small segments: some are freed"
    );
    assert_eq!(s.first_index().unwrap(), 36);
    assert_eq!(
        names(&fs).iter().filter(|n| n.ends_with(".log")).count(),
        before,
        "nothing removed yet"
    );
    let freed = garbage.paths().len();
    assert!(std::thread::spawn(move || garbage.remove())
        .join()
        .unwrap()
        .is_empty());
    assert_eq!(
        names(&fs).iter().filter(|n| n.ends_with(".log")).count(),
        before - freed
    );
    assert_eq!(s.entries(36, 41, u64::MAX).unwrap().len(), 5);
}

#[test]
fn segments_a_deferred_compaction_freed_are_removed_by_the_next_open() {
    let fs = sim(7);
    let s = with_log(&fs);
    s.wl()
        .create_snapshot(35, None, "state at 35".into())
        .unwrap();
    let garbage = s.wl().compact_deferred(36).unwrap();
    let freed: Vec<String> = garbage
        .paths()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!freed.is_empty());
    // The process dies before removing them.
    drop(garbage);
    let after = fs.crash();
    let r = open(&after, &small_options()).unwrap();
    assert_eq!(r.first_index().unwrap(), 36);
    for name in &freed {
        assert!(!names(&after).contains(name), "{name} left behind");
        assert!(
            r.rl().recovery().removed.contains(name),
            "{name} not reported"
        );
    }
}
