//! Unit tests of `MemStorage` and `MemStorageCore`, one file per concern; the fixtures they share
//! are here.

mod append;
mod apply_snapshot;
mod compaction;
mod create_snapshot;
mod reads;
mod serve_snapshot;
mod sharing;
mod state;

use super::*;
use bytes::Bytes;

/// An entry at `index` with `term` and a small payload (so that entries have a non-trivial size).
fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(format!("data-{index}")),
        ..Default::default()
    }
}

/// Entries `[lo, hi]`, all with `term`.
fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term)).collect()
}

/// The total encoded size of `es`, as `entries` counts it.
fn size_of(es: &[Entry]) -> u64 {
    es.iter().map(|e| e.encoded_len() as u64).sum()
}

/// A storage holding the given entries (appended at index 1).
fn storage_with(es: &[Entry]) -> MemStorage {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    s.wl().append(es).unwrap();
    s
}

/// A snapshot at (`index`, `term`) with membership `voters` and data `data`.
fn snap(index: u64, term: u64, voters: &[u64], data: &'static str) -> Snapshot {
    Snapshot {
        data: Bytes::from_static(data.as_bytes()),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state(voters.to_vec(), vec![])),
            index,
            term,
        }),
    }
}

/// A storage that installed a snapshot at (3, 2), then got entries 4, 5, 6 of terms 3, 4, 5.
fn storage_after_snapshot() -> MemStorage {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    {
        let mut core = s.wl();
        core.apply_snapshot(snap(3, 2, &[1, 2, 3], "state at 3"))
            .unwrap();
        core.append(&[ent(4, 3), ent(5, 4), ent(6, 5)]).unwrap();
    }
    s
}

/// A storage for {1, 2, 3} holding entries 1..=10 (term 1 up to 5, term 2 after), all committed.
fn committed_storage() -> MemStorage {
    let mut es = ents(1, 5, 1);
    es.extend(ents(6, 10, 2));
    let s = storage_with(&es);
    s.wl().set_hardstate(HardState {
        term: 2,
        vote: 1,
        commit: 10,
    });
    s
}

/// Everything the storage holds, printed (`MemStorageCore` has no `PartialEq`); for "unchanged"
/// checks.
fn dump(s: &MemStorage) -> String {
    format!("{:?}", *s.rl())
}

/// Asserts that `r` failed with `StorageError::SnapshotTemporarilyUnavailable`.
fn snapshot_unavailable<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(
        r.unwrap_err(),
        Error::Store(StorageError::SnapshotTemporarilyUnavailable)
    );
}

/// Asserts that `r` failed with `StorageError::SnapshotOutOfDate`.
fn out_of_date<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(
        r.unwrap_err(),
        Error::Store(StorageError::SnapshotOutOfDate)
    );
}

/// Asserts that `r` failed with `StorageError::Compacted`.
fn compacted<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(r.unwrap_err(), Error::Store(StorageError::Compacted));
}

/// Asserts that `r` failed with `StorageError::Unavailable`.
fn unavailable<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(r.unwrap_err(), Error::Store(StorageError::Unavailable));
}

/// Asserts that `r` failed with an `Error::Invariant` (bad input refused).
fn invariant<T: std::fmt::Debug>(r: Result<T>) {
    assert!(matches!(r.unwrap_err(), Error::Invariant(_)));
}

/// Every entry the storage holds, first index to last.
fn all_entries(s: &MemStorage) -> Vec<Entry> {
    s.entries(
        s.first_index().unwrap(),
        s.last_index().unwrap() + 1,
        NO_LIMIT,
    )
    .unwrap()
}
