use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;

use super::*;

/// A data directory path (not created yet) inside a temp dir removed when dropped (`tempfile`).
struct TempDir(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("raftkv-storage-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        TempDir(dir.path().join("data"), dir)
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(format!("e{index}t{term}")),
        ..Default::default()
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn voters(ids: &[u64]) -> ConfState {
    ConfState {
        voters: ids.to_vec(),
        ..Default::default()
    }
}

/// The first state of a new cluster {1, 2, 3}: a snapshot at index 1, term 1.
fn bootstrap_snapshot() -> Snapshot {
    Snapshot {
        data: Bytes::from_static(b"initial state"),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(voters(&[1, 2, 3])),
            index: 1,
            term: 1,
        }),
    }
}

fn open_initialized(dir: &TempDir) -> DiskStorage {
    let storage = DiskStorage::open(&dir.0).expect("open");
    storage
        .initialize(bootstrap_snapshot())
        .expect("initialize");
    storage
}

fn all_entries(storage: &DiskStorage) -> Vec<Entry> {
    let (first, last) = (
        storage.first_index().unwrap(),
        storage.last_index().unwrap(),
    );
    storage.entries(first, last + 1, NO_LIMIT).unwrap()
}

#[test]
fn new_storage_is_uninitialised_with_an_empty_log() {
    let dir = TempDir::new("new");
    let storage = DiskStorage::open(&dir.0).unwrap();
    assert!(!storage.is_initialized());
    let state = storage.initial_state().unwrap();
    assert!(!state.initialized(), "no membership before a snapshot");
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!(storage.first_index().unwrap(), 1);
    assert_eq!(storage.last_index().unwrap(), 0);
    assert_eq!(storage.term(0).unwrap(), 0);
}

#[test]
fn initialize_installs_the_first_snapshot_and_survives_reopen() {
    let dir = TempDir::new("init");
    open_initialized(&dir);
    let storage = DiskStorage::open(&dir.0).unwrap();
    assert!(storage.is_initialized());
    let state = storage.initial_state().unwrap();
    assert_eq!(state.conf_state, voters(&[1, 2, 3]));
    assert_eq!(
        state.hard_state,
        HardState {
            term: 1,
            vote: 0,
            commit: 1
        }
    );
    assert_eq!(storage.first_index().unwrap(), 2);
    assert_eq!(storage.last_index().unwrap(), 1);
    assert_eq!(
        storage.term(1).unwrap(),
        1,
        "the snapshot point keeps its term"
    );
    assert_eq!(storage.snapshot(0, 2).unwrap(), bootstrap_snapshot());
    assert!(matches!(
        storage.initialize(bootstrap_snapshot()),
        Err(Error::Invariant(_))
    ));
}

#[test]
fn appended_entries_and_hard_state_survive_reopen() {
    let dir = TempDir::new("reopen");
    let storage = open_initialized(&dir);
    let written = entries(2..=6, 2);
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 4,
    };
    {
        let mut core = storage.wl();
        core.append(&written).unwrap();
        core.set_hard_state(hs).unwrap();
        core.sync().unwrap();
    }
    drop(storage);
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(all_entries(&reopened), written);
    assert_eq!(reopened.initial_state().unwrap().hard_state, hs);
    assert_eq!(
        reopened.rl().recovery(),
        &Recovery::default(),
        "a clean log"
    );
}

#[test]
fn entries_reports_compacted_and_unavailable_and_honours_max_size() {
    let dir = TempDir::new("entries");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=5, 2)).unwrap();
    assert_eq!(
        storage.entries(1, 3, NO_LIMIT),
        Err(Error::Store(StorageError::Compacted))
    );
    assert_eq!(
        storage.entries(2, 7, NO_LIMIT),
        Err(Error::Store(StorageError::Unavailable))
    );
    assert_eq!(
        storage.entries(2, 6, 0).unwrap(),
        entries(2..=2, 2),
        "at least one"
    );
    let two = entries(2..=3, 2)
        .iter()
        .map(|e| e.encoded_len() as u64)
        .sum();
    assert_eq!(storage.entries(2, 6, two).unwrap(), entries(2..=3, 2));
    assert_eq!(storage.term(0), Err(Error::Store(StorageError::Compacted)));
    assert_eq!(
        storage.term(6),
        Err(Error::Store(StorageError::Unavailable))
    );
}

#[test]
fn conflicting_append_replaces_the_suffix_in_memory_and_after_reopen() {
    let dir = TempDir::new("conflict");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=6, 2)).unwrap();
    // A new leader of term 3 overwrites from index 4 on (§5.3).
    storage.wl().append(&entries(4..=5, 3)).unwrap();
    storage.wl().sync().unwrap();
    let mut expected = entries(2..=3, 2);
    expected.extend(entries(4..=5, 3));
    assert_eq!(all_entries(&storage), expected);
    drop(storage);
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(
        all_entries(&reopened),
        expected,
        "the WAL replays the overwrite"
    );
}

#[test]
fn append_refuses_gaps_compacted_indexes_and_non_consecutive_entries() {
    let dir = TempDir::new("refuse");
    let storage = open_initialized(&dir);
    let mut core = storage.wl();
    assert_eq!(
        core.append(&entries(4..=4, 2)),
        Err(Error::Store(StorageError::Unavailable))
    );
    assert_eq!(
        core.append(&entries(1..=2, 1)),
        Err(Error::Store(StorageError::Compacted))
    );
    assert!(matches!(
        core.append(&[entry(2, 2), entry(4, 2)]),
        Err(Error::Invariant(_))
    ));
    assert_eq!(core.last_index(), 1, "nothing was appended");
}

#[test]
fn torn_tail_record_is_truncated_on_recovery() {
    let dir = TempDir::new("torn");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=4, 2)).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);
    let wal = dir.0.join(files::WAL_FILE);
    let intact_len = fs::metadata(&wal).unwrap().len();
    // A process killed while writing entry 5: only part of its record reached the file.
    let mut record = Vec::new();
    files::encode_record(&WalRecord::Entry(entry(5, 2)), &mut record);
    let mut file = OpenOptions::new().append(true).open(&wal).unwrap();
    file.write_all(&record[..record.len() - 3]).unwrap();
    drop(file);

    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(
        all_entries(&reopened),
        entries(2..=4, 2),
        "entry 5 was never whole"
    );
    assert_eq!(
        reopened.rl().recovery().truncated_bytes,
        record.len() as u64 - 3
    );
    assert_eq!(
        fs::metadata(&wal).unwrap().len(),
        intact_len,
        "the file is cut back"
    );
    // The log goes on where it was cut.
    reopened.wl().append(&entries(5..=5, 2)).unwrap();
    reopened.wl().sync().unwrap();
    drop(reopened);
    let again = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(all_entries(&again), entries(2..=5, 2));
    assert_eq!(again.rl().recovery().truncated_bytes, 0);
}

#[test]
fn corrupt_record_ends_the_log_at_the_record_before_it() {
    let dir = TempDir::new("corrupt");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=3, 2)).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);
    let wal = dir.0.join(files::WAL_FILE);
    let mut bytes = fs::read(&wal).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    fs::write(&wal, &bytes).unwrap();
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(all_entries(&reopened), entries(2..=2, 2));
    assert!(reopened.rl().recovery().truncated_bytes > 0);
}

#[test]
fn snapshot_then_compact_discards_covered_entries_durably() {
    let dir = TempDir::new("compact");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=10, 2)).unwrap();
    storage.wl().set_commit(8).unwrap();
    let snap = storage
        .wl()
        .create_snapshot(8, voters(&[1, 2, 3, 4]), Bytes::from_static(b"state at 8"))
        .unwrap();
    assert_eq!(snap.metadata.as_ref().unwrap().term, 2);
    // Keep two entries behind the snapshot for followers that are just a little behind.
    storage.wl().compact(7).unwrap();
    assert_eq!(storage.first_index().unwrap(), 7);
    assert_eq!(storage.term(6).unwrap(), 2);
    assert_eq!(
        storage.entries(6, 8, NO_LIMIT),
        Err(Error::Store(StorageError::Compacted))
    );
    drop(storage);

    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(reopened.first_index().unwrap(), 7);
    assert_eq!(all_entries(&reopened), entries(7..=10, 2));
    assert_eq!(reopened.snapshot(0, 2).unwrap(), snap);
    let state = reopened.initial_state().unwrap();
    assert_eq!(
        state.conf_state,
        voters(&[1, 2, 3, 4]),
        "the membership is the snapshot's"
    );
    assert_eq!(state.hard_state.commit, 8);
}

#[test]
fn compact_and_create_snapshot_refuse_what_they_must_not_do() {
    let dir = TempDir::new("refuse-compact");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=5, 2)).unwrap();
    storage.wl().set_commit(3).unwrap();
    let mut core = storage.wl();
    assert!(
        matches!(core.compact(4), Err(Error::Invariant(_))),
        "entries 2 and 3 are not covered by a snapshot"
    );
    assert!(
        matches!(
            core.create_snapshot(4, voters(&[1]), Bytes::new()),
            Err(Error::Invariant(_))
        ),
        "index 4 is not committed"
    );
    core.create_snapshot(3, voters(&[1]), Bytes::new()).unwrap();
    assert_eq!(
        core.create_snapshot(2, voters(&[1]), Bytes::new()),
        Err(Error::Store(StorageError::SnapshotOutOfDate))
    );
    assert_eq!(
        core.compact(7),
        Err(Error::Store(StorageError::Unavailable))
    );
    core.compact(4).unwrap();
    assert_eq!(core.first_log_index(), 4);
    core.compact(2).unwrap();
    assert_eq!(
        core.first_log_index(),
        4,
        "compacting below the first index is a no-op"
    );
}

#[test]
fn installed_snapshot_replaces_the_log_and_survives_reopen() {
    let dir = TempDir::new("install");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=4, 2)).unwrap();
    let incoming = Snapshot {
        data: Bytes::from_static(b"leader state at 20"),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(voters(&[1, 2, 3, 4])),
            index: 20,
            term: 5,
        }),
    };
    storage.wl().apply_snapshot(incoming.clone()).unwrap();
    assert_eq!(storage.first_index().unwrap(), 21);
    assert_eq!(storage.last_index().unwrap(), 20);
    assert_eq!(storage.term(20).unwrap(), 5);
    storage.wl().append(&entries(21..=22, 5)).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);

    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(reopened.snapshot(0, 1).unwrap(), incoming);
    assert_eq!(all_entries(&reopened), entries(21..=22, 5));
    let state = reopened.initial_state().unwrap();
    assert_eq!(state.hard_state.term, 5, "raised to the snapshot's term");
    assert_eq!(state.hard_state.commit, 20);
    assert_eq!(state.conf_state, voters(&[1, 2, 3, 4]));
}

#[test]
fn crash_between_snapshot_file_and_wal_reset_resets_the_log_on_recovery() {
    let dir = TempDir::new("half-install");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=4, 2)).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);
    // The snapshot file was replaced, then the process died before the WAL was rewritten.
    let incoming = Snapshot {
        data: Bytes::from_static(b"state at 9"),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(voters(&[1, 2, 3])),
            index: 9,
            term: 3,
        }),
    };
    files::write_atomically(
        &dir.0,
        files::SNAPSHOT_FILE,
        &files::encode_snapshot(&incoming),
    )
    .unwrap();
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert!(reopened.rl().recovery().log_reset);
    assert_eq!(reopened.first_index().unwrap(), 10);
    assert_eq!(reopened.last_index().unwrap(), 9);
    assert_eq!(reopened.term(9).unwrap(), 3);
    assert_eq!(reopened.initial_state().unwrap().hard_state.commit, 9);
}

#[test]
fn torn_hard_state_write_falls_back_to_the_previous_one() {
    let dir = TempDir::new("hardstate");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=3, 2)).unwrap();
    let first = HardState {
        term: 2,
        vote: 1,
        commit: 2,
    };
    let second = HardState {
        term: 3,
        vote: 2,
        commit: 3,
    };
    storage.wl().set_hard_state(first).unwrap();
    storage.wl().set_hard_state(second).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);
    assert_eq!(
        DiskStorage::open(&dir.0)
            .unwrap()
            .initial_state()
            .unwrap()
            .hard_state,
        second
    );
    // Damage the slot the newest write went to: the other slot's older state is used.
    let path = dir.0.join(files::HARD_STATE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let newest = (0..2)
        .max_by_key(|slot| {
            u64::from_le_bytes(bytes[slot * 64 + 4..slot * 64 + 12].try_into().unwrap())
        })
        .unwrap();
    bytes[newest * 64 + 13] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        DiskStorage::open(&dir.0)
            .unwrap()
            .initial_state()
            .unwrap()
            .hard_state,
        first
    );
}

#[test]
fn snapshot_request_beyond_the_latest_is_remembered_for_the_application() {
    let dir = TempDir::new("wanted");
    let storage = open_initialized(&dir);
    assert_eq!(storage.rl().take_snapshot_request(), None);
    assert_eq!(
        storage.snapshot(5, 2),
        Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    );
    assert_eq!(storage.rl().take_snapshot_request(), Some(5));
    assert_eq!(storage.rl().take_snapshot_request(), None, "taken once");

    let empty_dir = TempDir::new("wanted-empty");
    let empty = DiskStorage::open(&empty_dir.0).unwrap();
    assert_eq!(
        empty.snapshot(0, 2),
        Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable)),
        "a storage without a snapshot has none to give"
    );
    assert_eq!(empty.rl().take_snapshot_request(), Some(1));
}

mod background;
