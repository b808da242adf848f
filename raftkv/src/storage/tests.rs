//! `NodeStorage`'s tests, and fixtures the node's tests share.

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, Storage, StorageError, NO_LIMIT};

use super::*;

/// A data directory path (not created yet) inside a temp dir removed when dropped.
pub(crate) struct TempDir(
    pub std::path::PathBuf,
    #[allow(dead_code)] tempfile::TempDir,
);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("raftkv-storage-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        TempDir(dir.path().join("data"), dir)
    }
}

/// Entries `range` of `term`, each with a payload naming it.
pub(crate) fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range
        .map(|index| Entry {
            index,
            term,
            data: Bytes::from(format!("e{index}t{term}")),
            ..Default::default()
        })
        .collect()
}

/// A membership of the voters `ids`.
pub(crate) fn voters(ids: &[u64]) -> ConfState {
    ConfState {
        voters: ids.to_vec(),
        ..Default::default()
    }
}

/// A snapshot at (`index`, `term`) of the voters `ids` holding `data`.
pub(crate) fn snapshot(index: u64, term: u64, ids: &[u64], data: &'static str) -> Snapshot {
    Snapshot {
        data: Bytes::from_static(data.as_bytes()),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(voters(ids)),
            index,
            term,
        }),
    }
}

/// A storage bootstrapped with {1, 2, 3}, entries 2..=40 of term 2, committed and synced.
fn with_log(dir: &TempDir) -> NodeStorage {
    let storage = NodeStorage::open(&dir.0).unwrap();
    storage
        .initialize(snapshot(1, 1, &[1, 2, 3], "initial state"))
        .unwrap();
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 40,
    };
    storage.write(&entries(2..=40, 2), Some(hs)).unwrap();
    storage.sync().unwrap();
    storage
}

#[test]
fn a_new_storage_is_initialised_once_and_keeps_its_state_across_a_reopen() {
    let dir = TempDir::new("init");
    let storage = NodeStorage::open(&dir.0).unwrap();
    assert!(!storage.is_initialized());
    assert_eq!(storage.latest_snapshot(), None);
    storage
        .initialize(snapshot(1, 1, &[1, 2, 3], "initial state"))
        .unwrap();
    assert!(storage.is_initialized());
    assert!(storage.initialize(snapshot(1, 1, &[1], "again")).is_err());
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 4,
    };
    storage.write(&entries(2..=5, 2), Some(hs)).unwrap();
    storage.sync().unwrap();
    drop(storage);

    let reopened = NodeStorage::open(&dir.0).unwrap();
    let state = reopened.initial_state().unwrap();
    assert_eq!((state.hard_state.term, state.hard_state.vote), (2, 3));
    assert_eq!(state.conf_state, voters(&[1, 2, 3]));
    assert_eq!(reopened.entries(2, 6, NO_LIMIT).unwrap(), entries(2..=5, 2));
    assert_eq!(reopened.latest_snapshot().unwrap().data, "initial state");
}

#[test]
fn a_data_directory_in_use_is_refused_with_the_holders_pid() {
    let dir = TempDir::new("lock");
    let _first = NodeStorage::open(&dir.0).unwrap();
    let second = NodeStorage::open(&dir.0).unwrap_err().to_string();
    assert!(
        second.contains(&format!(
            "is in use by another process (pid {})",
            std::process::id()
        )),
        "{second}"
    );
}

#[test]
fn a_data_directory_of_the_older_format_is_refused_not_started_empty() {
    let dir = TempDir::new("old-format");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("wal"), b"old").unwrap();
    let error = NodeStorage::open(&dir.0).unwrap_err().to_string();
    assert!(error.contains("older raftkv (wal)"), "{error}");
    assert!(!dir.0.join(RAFT_DIR).exists(), "nothing was created");
}

#[test]
fn a_snapshot_made_on_another_thread_is_adopted_served_from_memory_and_compacts_the_log() {
    let dir = TempDir::new("made");
    let storage = with_log(&dir);
    let job = storage.snapshot_job(30, voters(&[1, 2, 3, 4]), 5).unwrap();
    assert_eq!(job.metadata().term, 2);
    let made = std::thread::spawn(move || job.write(Bytes::from_static(b"state at 30")))
        .join()
        .unwrap()
        .unwrap();
    // The loop went on meanwhile.
    storage.write(&entries(41..=42, 3), None).unwrap();
    storage.sync().unwrap();
    assert!(storage.adopt_snapshot(made).unwrap());
    assert_eq!(storage.snapshot_metadata().index, 30);
    assert_eq!(storage.snapshot(30, 2).unwrap().data, "state at 30");
    assert_eq!(storage.first_log_index(), 26, "keeps 5 entries up to 30");
    assert_eq!(storage.last_log_index(), 42);
    assert_eq!(
        storage.initial_state().unwrap().conf_state,
        voters(&[1, 2, 3, 4]),
        "the membership is the latest snapshot's"
    );
    drop(storage);

    let reopened = NodeStorage::open(&dir.0).unwrap();
    assert_eq!(reopened.latest_snapshot().unwrap().data, "state at 30");
    assert_eq!(reopened.first_log_index(), 26);
    assert_eq!(
        reopened.entries(41, 43, NO_LIMIT).unwrap(),
        entries(41..=42, 3)
    );
}

#[test]
fn a_snapshot_overtaken_by_one_from_the_leader_is_dropped() {
    let dir = TempDir::new("overtaken");
    let storage = with_log(&dir);
    let job = storage.snapshot_job(30, voters(&[1, 2, 3]), 5).unwrap();
    let incoming = snapshot(50, 4, &[1, 2, 3], "leader state at 50");
    storage.apply_snapshot(incoming.clone()).unwrap();
    let made = job.write(Bytes::from_static(b"state at 30")).unwrap();
    assert!(!storage.adopt_snapshot(made).unwrap());
    assert_eq!(storage.snapshot(0, 2).unwrap(), incoming);
    assert_eq!(storage.first_log_index(), 51);
}

#[test]
fn a_snapshot_request_beyond_the_latest_is_remembered_for_the_node() {
    let dir = TempDir::new("request");
    let storage = with_log(&dir);
    assert_eq!(storage.take_snapshot_request(), None);
    assert_eq!(
        storage.snapshot(20, 2),
        Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    );
    assert_eq!(storage.snapshot(1, 2).unwrap().data, "initial state");
    assert_eq!(storage.take_snapshot_request(), Some(20));
    assert_eq!(storage.take_snapshot_request(), None, "taken once");
}

#[test]
fn a_raised_commit_is_never_moved_back_and_a_sync_run_on_another_thread_keeps_it() {
    let dir = TempDir::new("commit");
    let storage = with_log(&dir);
    let hs = |term, vote, commit| HardState { term, vote, commit };
    storage
        .write(&entries(41..=45, 2), Some(hs(2, 1, 40)))
        .unwrap();
    // The node applied up to 44 before the Ready whose hard state commits it was written.
    storage.raise_commit(44).unwrap();
    storage.raise_commit(30).unwrap();
    assert_eq!(storage.hard_state().commit, 44, "never lowered");
    assert!(storage.raise_commit(46).is_err(), "not beyond the log");
    // That Ready (a new term, commit 42) is written after.
    storage.write(&[], Some(hs(3, 0, 42))).unwrap();
    assert_eq!(storage.hard_state(), hs(3, 0, 44));
    let ticket = storage.begin_sync().unwrap();
    assert!(!ticket.is_empty());
    let finished = std::thread::spawn(move || ticket.run()).join().unwrap();
    storage.finish_sync(finished).unwrap();
    drop(storage);

    let reopened = NodeStorage::open(&dir.0).unwrap();
    assert_eq!(reopened.hard_state(), hs(3, 0, 44));
    assert_eq!(reopened.last_log_index(), 45);
}
