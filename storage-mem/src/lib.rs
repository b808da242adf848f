//! `MemStorage`: the reference in-memory implementation of [`raft_core::Storage`].
//!
//! [`MemStorage`] is a cheap-to-clone handle (an `Arc<RwLock<MemStorageCore>>`): every clone sees the
//! same log, hard state and membership, and it may be shared between threads. The Raft core reads it
//! through the [`Storage`] trait; the application writes to it through [`MemStorage::wl`] (the write
//! guard dereferences to [`MemStorageCore`], whose methods append entries and set the hard state and
//! membership), exactly as with raft-rs's `MemStorage`.
//!
//! # Log layout: the snapshot point instead of a dummy entry
//!
//! etcd's `MemoryStorage` and raft-rs's `MemStorage` keep a "dummy entry" at offset 0 of their entry
//! vector whose only use is to remember the index and term of the last entry the snapshot covers.
//! [`MemStorageCore`] stores that pair as two fields instead, the *snapshot point*
//! `(snapshot_index, snapshot_term)` (`(0, 0)` for a new storage), followed by the entries after it.
//! What the core sees through [`Storage`] is the same as with the dummy entry:
//!
//! - `first_index() == snapshot_index + 1` and `last_index() == snapshot_index + entries.len()`
//!   (so an empty log has `last_index() == first_index() - 1`);
//! - `term(snapshot_index)` answers `snapshot_term` (the core needs it to check that an append
//!   continues the log right after the snapshot); a lower index returns `StorageError::Compacted`
//!   and an index past `last_index()` returns `StorageError::Unavailable`;
//! - `entries(low, high, _)` returns `StorageError::Compacted` if `low < first_index()` and
//!   `StorageError::Unavailable` if `high > last_index() + 1`.
//!
//! # Snapshots and compaction
//!
//! The storage also holds the *latest snapshot*: the one the application made with
//! [`MemStorageCore::create_snapshot`] or installed with [`MemStorageCore::apply_snapshot`], which
//! [`Storage::snapshot`] hands to the core when a follower is too far behind. Making a snapshot and
//! discarding log entries are separate steps, as in raft-rs: the application creates a snapshot of
//! its state machine at an applied index, then calls [`MemStorageCore::compact`]. The storage never
//! discards an entry that no snapshot covers (Raft paper §7: a server deletes the log entries up
//! through the last index its snapshot includes), so the snapshot point never passes the latest
//! snapshot's index, and a follower that needs a compacted entry can always be sent the snapshot.
//!
//! # Example
//!
//! ```
//! use raft_core::eraftpb::Entry;
//! use raft_core::{Storage, NO_LIMIT};
//! use storage_mem::{conf_state, MemStorage};
//!
//! // A storage for a node of the cluster {1, 2, 3}.
//! let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
//! assert_eq!(storage.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
//!
//! // The application persists entries (from a `Ready`) through the write guard.
//! let entries: Vec<Entry> = (1..=3)
//!     .map(|index| Entry { index, term: 1, data: b"put x".to_vec().into(), ..Default::default() })
//!     .collect();
//! storage.wl().append(&entries).unwrap();
//!
//! // The core reads them back through the `Storage` trait.
//! assert_eq!(storage.first_index().unwrap(), 1);
//! assert_eq!(storage.last_index().unwrap(), 3);
//! assert_eq!(storage.term(2).unwrap(), 1);
//! assert_eq!(storage.entries(1, 4, NO_LIMIT).unwrap(), entries);
//! // A size limit smaller than one entry still returns one entry.
//! assert_eq!(storage.entries(1, 4, 0).unwrap().len(), 1);
//! ```
//!
//! # Example: snapshot, then compact
//!
//! ```
//! use bytes::Bytes;
//! use raft_core::eraftpb::Entry;
//! use raft_core::{Error, Storage, StorageError, NO_LIMIT};
//! use storage_mem::{conf_state, MemStorage};
//!
//! let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
//! let entries: Vec<Entry> =
//!     (1..=5).map(|index| Entry { index, term: 1, ..Default::default() }).collect();
//! storage.wl().append(&entries).unwrap();
//! storage.wl().commit_to(5).unwrap();
//!
//! // The application has applied up to 3: it snapshots its state machine there...
//! let snap = storage.wl().create_snapshot(3, None, Bytes::from("state at 3")).unwrap();
//! assert_eq!(snap.metadata.as_ref().unwrap().index, 3);
//! // ...and then discards the entries the snapshot covers: entry 4 becomes the first one.
//! storage.wl().compact(4).unwrap();
//! assert_eq!(storage.first_index().unwrap(), 4);
//! assert_eq!(storage.term(3).unwrap(), 1); // the snapshot point keeps its term
//! assert_eq!(storage.entries(3, 6, NO_LIMIT), Err(Error::Store(StorageError::Compacted)));
//!
//! // The core asks for a snapshot covering at least index 2 for node 3: it gets this one.
//! assert_eq!(storage.snapshot(2, 3).unwrap(), snap);
//! ```

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod chunked;

use bytes::Bytes;
use chunked::ChunkedLog;
use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, RaftState, Result, Storage, StorageError, NO_LIMIT};
use raft_proto::prost::Message as _;

#[cfg(test)]
mod tests;

/// Builds a [`ConfState`] with the given voters and learners (no joint configuration).
///
/// A shorthand for tests and examples: `MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]))`.
/// Both arguments accept anything that yields node ids: a `Vec<u64>`, an array, a range.
pub fn conf_state(
    voters: impl IntoIterator<Item = u64>,
    learners: impl IntoIterator<Item = u64>,
) -> ConfState {
    ConfState {
        voters: voters.into_iter().collect(),
        learners: learners.into_iter().collect(),
        ..Default::default()
    }
}

/// One entry as the log keeps it: an [`Entry`] without its index (implied by its position) and with
/// its rarely used context boxed, so the log holds 56 bytes per entry instead of 88. A log that
/// grows by millions of entries spends much of its time faulting in fresh pages; this cuts the
/// pages by more than a third.
#[derive(Debug, Clone, Default)]
struct StoredEntry {
    term: u64,
    data: Bytes,
    context: Option<Box<Bytes>>,
    entry_type: i32,
    sync_log: bool,
}

impl StoredEntry {
    fn new(e: &Entry) -> StoredEntry {
        StoredEntry {
            term: e.term,
            data: e.data.clone(),
            context: (!e.context.is_empty()).then(|| Box::new(e.context.clone())),
            entry_type: e.entry_type,
            sync_log: e.sync_log,
        }
    }

    fn to_entry(&self, index: u64) -> Entry {
        Entry {
            entry_type: self.entry_type,
            term: self.term,
            index,
            data: self.data.clone(),
            sync_log: self.sync_log,
            context: self.context.as_deref().cloned().unwrap_or_default(),
        }
    }
}

/// Entries per chunk of the log (56 bytes each: 224 KiB).
const LOG_CHUNK: usize = 4096;

/// The data behind a [`MemStorage`]: the hard state and membership, the log, the point the log
/// starts after, and the latest snapshot.
///
/// Reach it through [`MemStorage::rl`] (read) and [`MemStorage::wl`] (write). Every method leaves the
/// data consistent or, on bad input, returns an error and leaves it unchanged; none panics.
///
/// Invariants kept by every method: `entries[i].index == snapshot_index + 1 + i`, and
/// `snapshot_index <= snapshot_metadata.index` (no entry is discarded unless a snapshot covers it).
#[derive(Debug, Clone, Default)]
pub struct MemStorageCore {
    /// The persisted hard state and membership, handed out by `initial_state`.
    raft_state: RaftState,
    /// The entries after the snapshot point: `entries[i]` is the entry at `snapshot_index + 1 + i`.
    entries: ChunkedLog<StoredEntry, LOG_CHUNK>,
    /// The snapshot point: the index of the last entry discarded from the log (0 for a new storage).
    snapshot_index: u64,
    /// The term of the entry at `snapshot_index` (0 for a new storage).
    snapshot_term: u64,
    /// The latest snapshot (created or applied), if any: boxed, since most storages of a
    /// multi-raft process hold one rarely and it is large inline.
    latest: Option<Box<LatestSnapshot>>,
    /// Test hook: the next `Storage::snapshot` call returns `SnapshotTemporarilyUnavailable`.
    trigger_snap_unavailable: bool,
}

/// The metadata and data of a storage's latest snapshot.
#[derive(Debug, Clone, Default)]
struct LatestSnapshot {
    metadata: SnapshotMetadata,
    data: Bytes,
}

/// What `snapshot_metadata` answers when there is no snapshot.
static NO_SNAPSHOT: SnapshotMetadata = SnapshotMetadata {
    conf_state: None,
    index: 0,
    term: 0,
};

impl MemStorageCore {
    /// Replaces the persisted hard state (term, vote, commit).
    pub fn set_hardstate(&mut self, hs: HardState) {
        self.raft_state.hard_state = hs;
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.raft_state.hard_state
    }

    /// Mutable access to the persisted hard state.
    pub fn mut_hard_state(&mut self) -> &mut HardState {
        &mut self.raft_state.hard_state
    }

    /// Replaces the persisted membership.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.raft_state.conf_state = cs;
    }

    /// The persisted (current) membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.raft_state.conf_state
    }

    /// The metadata (index, term, membership) of the latest snapshot, made by
    /// [`create_snapshot`](Self::create_snapshot) or installed by
    /// [`apply_snapshot`](Self::apply_snapshot).
    ///
    /// A storage that has never had a snapshot answers `SnapshotMetadata::default()` (index 0,
    /// term 0, no membership). The snapshot point (where the log starts) is at or below this index:
    /// it is `Storage::first_index() - 1`.
    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        self.latest.as_ref().map_or(&NO_SNAPSHOT, |l| &l.metadata)
    }

    /// Sets the commit index of the hard state to `index` (the term and vote are left alone).
    ///
    /// `index` must name an entry the storage knows the term of, `[first_index - 1, last_index]`:
    /// returns `StorageError::Unavailable` above `last_index` and `StorageError::Compacted` below the
    /// snapshot point (the entries up to it are committed, so the commit index cannot be below it).
    /// On error the hard state is unchanged. Moving the commit index backwards within the range is
    /// allowed (the storage records what it is told; the core never does it).
    pub fn commit_to(&mut self, index: u64) -> Result<()> {
        if index < self.snapshot_index {
            return Err(StorageError::Compacted.into());
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        self.raft_state.hard_state.commit = index;
        Ok(())
    }

    /// Appends `ents` to the log, first removing every existing entry at or after `ents[0].index`
    /// (a conflicting suffix from an older leader).
    ///
    /// Requirements, checked before anything is changed (on error the log is untouched):
    /// - the indexes of `ents` are consecutive, else `Error::Invariant`;
    /// - `ents[0].index >= first_index`, else `StorageError::Compacted` (the entries it would replace
    ///   are covered by the snapshot);
    /// - `ents[0].index <= last_index + 1`, else `StorageError::Unavailable` (the log would have a gap).
    ///
    /// An empty `ents` is a no-op. Terms are not checked. The existing entries are truncated in
    /// place (no reallocation of the whole log) and the new ones cloned in; an entry's payload is
    /// `Bytes`, so cloning it copies a reference count, not the data.
    pub fn append(&mut self, ents: &[Entry]) -> Result<()> {
        let Some(first_new) = ents.first() else {
            return Ok(());
        };
        if ents
            .windows(2)
            .any(|w| w[0].index.checked_add(1) != Some(w[1].index))
        {
            return Err(Error::Invariant(
                "MemStorage::append: the entries to append do not have consecutive indexes",
            ));
        }
        let first = self.first_index();
        if first_new.index < first {
            return Err(StorageError::Compacted.into());
        }
        // `first_new.index >= first >= 1`, so subtracting one cannot underflow.
        if first_new.index - 1 > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        // In `[0, entries.len()]` by the two checks above.
        let keep = (first_new.index - first) as usize;
        self.entries.truncate(keep);
        for e in ents {
            self.entries.push(StoredEntry::new(e));
        }
        Ok(())
    }

    /// Discards the entries before `compact_index`, so that `compact_index` becomes the first index;
    /// the entry at `compact_index - 1` becomes the snapshot point and its term stays answerable.
    ///
    /// This is raft-rs's `compact`: call it after [`create_snapshot`](Self::create_snapshot) to
    /// free the entries the snapshot covers. `compact_index <= first_index` is a no-op (those entries
    /// are already gone). Otherwise, checked in this order, and on error nothing changes:
    /// - `compact_index > last_index + 1` returns `StorageError::Unavailable` (raft-rs panics);
    /// - `compact_index - 1 > hard_state.commit` returns `Error::Invariant`: an entry that is not
    ///   committed may still be replaced by a leader, so it must never be discarded (raft-rs does
    ///   not check this);
    /// - `compact_index - 1 > snapshot_metadata().index` returns `Error::Invariant`: the storage
    ///   never discards an entry that no snapshot covers, else a follower that needs it could never
    ///   catch up (raft-rs does not check this; create the snapshot first).
    ///
    /// `compact(last_index + 1)` empties the log; the next append starts at `last_index + 1`.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.first_index() {
            return Ok(());
        }
        // `compact_index > first_index >= 1`, so subtracting one cannot underflow.
        let point = compact_index - 1;
        if point > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        if point > self.raft_state.hard_state.commit {
            return Err(Error::Invariant(
                "MemStorage::compact: the entries to discard are not all committed",
            ));
        }
        if point > self.snapshot_metadata().index {
            return Err(Error::Invariant(
                "MemStorage::compact: the entries to discard are not all covered by a snapshot \
                 (call create_snapshot first)",
            ));
        }
        // `point` is in `[first_index, last_index]` by the checks above.
        let offset = self.offset(point);
        let Some(term) = self.entries.get(offset).map(|e| e.term) else {
            return Err(Error::Invariant(
                "MemStorage::compact: an entry in range is missing",
            ));
        };
        self.snapshot_term = term;
        self.snapshot_index = point;
        self.entries.discard_front(offset + 1);
        Ok(())
    }

    /// Records a snapshot of the application's state machine at `index` and returns it; it becomes
    /// the one [`Storage::snapshot`] hands out. It does not compact the log: call
    /// [`compact`](Self::compact) afterwards to discard the entries it covers.
    ///
    /// The metadata's term is the term of the entry at `index`; its membership is `conf_state`, or
    /// the stored current membership ([`conf_state`](Self::conf_state)) when `None`: pass the
    /// membership as of `index` if it has changed since. `data` is the state machine at `index`.
    ///
    /// Errors, checked in this order, and on error nothing changes:
    /// - `index == 0` returns `Error::Invariant` (there is nothing to snapshot);
    /// - `index < snapshot_metadata().index` returns `StorageError::SnapshotOutOfDate` (a newer
    ///   snapshot exists; `index` equal to it replaces it);
    /// - `index > last_index` returns `StorageError::Unavailable`;
    /// - `index > hard_state.commit` returns `Error::Invariant` (a snapshot holds committed state
    ///   only).
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: Option<ConfState>,
        data: Bytes,
    ) -> Result<Snapshot> {
        if index == 0 {
            return Err(Error::Invariant(
                "MemStorage::create_snapshot: index 0 covers no entry",
            ));
        }
        if index < self.snapshot_metadata().index {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        if index > self.raft_state.hard_state.commit {
            return Err(Error::Invariant(
                "MemStorage::create_snapshot: the index is beyond the commit index",
            ));
        }
        // `snapshot_index <= snapshot_metadata.index <= index <= last_index`.
        let term = if index == self.snapshot_index {
            self.snapshot_term
        } else {
            match self.entries.get(self.offset(index)) {
                Some(e) => e.term,
                None => {
                    return Err(Error::Invariant(
                        "MemStorage::create_snapshot: an entry in range is missing",
                    ))
                }
            }
        };
        let metadata = SnapshotMetadata {
            conf_state: Some(conf_state.unwrap_or_else(|| self.raft_state.conf_state.clone())),
            index,
            term,
        };
        self.latest = Some(Box::new(LatestSnapshot { metadata, data }));
        Ok(self.latest_snapshot())
    }

    /// Installs a snapshot received from the leader (from `Ready::snapshot`): the whole log is
    /// replaced by it.
    ///
    /// On success: every entry is discarded (even ones after the snapshot's index, as raft-rs does;
    /// the leader sends them again), the snapshot point becomes the metadata's (index, term), the
    /// membership becomes the metadata's, the hard state's commit is raised to the snapshot's
    /// index (never lowered), and if the snapshot's term is above the hard state's term, the term
    /// is raised to it and the vote cleared (no vote was cast in that term; raft-rs keeps the
    /// vote). The snapshot becomes the latest one, which this node hands out if it leads later.
    ///
    /// Within one Ready, the hard state may be stored before or after the snapshot: a hard state
    /// stored first may already commit past the snapshot (entries the same Ready carries after
    /// it), and keeps that commit. The Ready's entries follow the snapshot they continue
    /// ([`append`](Self::append) refuses a gap).
    ///
    /// Errors, and on error nothing changes:
    /// - `StorageError::SnapshotOutOfDate` if the snapshot's index is not above the latest
    ///   snapshot's ([`snapshot_metadata`](Self::snapshot_metadata)), or if the log holds the
    ///   snapshot's last entry and committed entries after it (installing the snapshot would
    ///   discard them; the core never asks this);
    /// - `Error::Invariant` if the metadata or its membership is missing, its term is 0, or its
    ///   index is `u64::MAX`.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let Snapshot { data, metadata } = snapshot;
        let Some(meta) = metadata else {
            return Err(Error::Invariant(
                "MemStorage::apply_snapshot: the snapshot has no metadata",
            ));
        };
        let Some(conf_state) = meta.conf_state.clone() else {
            return Err(Error::Invariant(
                "MemStorage::apply_snapshot: the snapshot has no membership",
            ));
        };
        if meta.index <= self.snapshot_metadata().index || self.holds_committed_after(&meta) {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        // `meta.index > 0` here, and every entry above index 0 has a term of at least 1.
        if meta.term == 0 {
            return Err(Error::Invariant(
                "MemStorage::apply_snapshot: the snapshot's term is 0",
            ));
        }
        if meta.index == u64::MAX {
            return Err(Error::Invariant(
                "MemStorage::apply_snapshot: the snapshot's index is u64::MAX",
            ));
        }
        self.entries.clear();
        self.snapshot_index = meta.index;
        self.snapshot_term = meta.term;
        let hs = &mut self.raft_state.hard_state;
        if meta.term > hs.term {
            hs.term = meta.term;
            hs.vote = 0;
        }
        hs.commit = hs.commit.max(meta.index);
        self.raft_state.conf_state = conf_state;
        self.latest = Some(Box::new(LatestSnapshot {
            metadata: meta,
            data,
        }));
        Ok(())
    }

    /// Test hook: the next [`Storage::snapshot`] call returns
    /// `StorageError::SnapshotTemporarilyUnavailable`, whatever the storage holds; the calls after
    /// it behave normally again.
    pub fn trigger_snap_unavailable(&mut self) {
        self.trigger_snap_unavailable = true;
    }

    /// The latest snapshot as a `Snapshot` (the data is shared, not copied).
    fn latest_snapshot(&self) -> Snapshot {
        Snapshot {
            data: self
                .latest
                .as_ref()
                .map(|l| l.data.clone())
                .unwrap_or_default(),
            metadata: Some(self.snapshot_metadata().clone()),
        }
    }

    /// What `Storage::snapshot(request_index, _)` answers, the test hook aside.
    fn snapshot_for(&self, request_index: u64) -> Result<Snapshot> {
        let index = self.snapshot_metadata().index;
        if index == 0 || index < request_index {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        Ok(self.latest_snapshot())
    }

    /// Whether the log agrees with a snapshot at `meta` (it holds its last entry) and holds
    /// committed entries after it, which installing the snapshot would discard. A commit index
    /// past the snapshot with the snapshot's entry absent (or of another term) is the same Ready's
    /// hard state, stored first: the entries it commits come after the snapshot.
    fn holds_committed_after(&self, meta: &SnapshotMetadata) -> bool {
        let commit = self.raft_state.hard_state.commit;
        if commit <= meta.index || self.last_index() <= meta.index {
            return false;
        }
        let term_at = if meta.index == self.snapshot_index {
            Some(self.snapshot_term)
        } else if meta.index > self.snapshot_index {
            self.entries.get(self.offset(meta.index)).map(|e| e.term)
        } else {
            None
        };
        term_at == Some(meta.term)
    }

    /// The index of the first entry that can be read: one past the snapshot point.
    fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// The index of the last entry, or the snapshot point when the log is empty.
    fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// The position in `entries` of the entry at `index`, which must be in `[first_index, last_index]`.
    fn offset(&self, index: u64) -> usize {
        debug_assert!(index >= self.first_index() && index <= self.last_index());
        (index - self.first_index()) as usize
    }
}

/// The reference in-memory [`Storage`]: a cheap-to-clone, thread-safe handle to a [`MemStorageCore`].
///
/// Clones share the data. The core reads through the [`Storage`] impl (each call takes the read lock
/// once); the application writes through [`MemStorage::wl`].
///
/// # Lock poisoning
///
/// If a thread panics while holding the lock, the lock is "poisoned". `MemStorage` ignores poisoning
/// and keeps using the data: no method of [`MemStorageCore`] can panic half-way through an update, so
/// the data behind a poisoned lock is still consistent, and recovering keeps one panicking thread
/// (say, a failed assertion in a test) from turning every other user of the storage into a panic too.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    core: Arc<RwLock<MemStorageCore>>,
}

impl MemStorage {
    /// Creates an empty, uninitialised storage: no entries, default hard state, no members.
    ///
    /// A node started on it waits to learn its membership from a leader (or from
    /// [`initialize_with_conf_state`](Self::initialize_with_conf_state)).
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Creates a storage whose persisted membership is `conf_state` (a node of a new cluster).
    ///
    /// All nodes of a new cluster must start from the same membership; the log starts empty at index 0
    /// with term 0.
    pub fn new_with_conf_state(conf_state: impl Into<ConfState>) -> MemStorage {
        let storage = MemStorage::new();
        storage.wl().set_conf_state(conf_state.into());
        storage
    }

    /// Creates the storage of an initial member of a brand-new group of `voters` and `learners`,
    /// refusing a membership that no group can have (no voter, node 0, a node both voter and
    /// learner); see [`raft_core::confchange::bootstrap`]. Every initial member starts from the
    /// same call. On restart, reopen the storage instead: the membership it holds then is the one
    /// the application stored after applying conf changes.
    ///
    /// The membership is recorded as a snapshot at index 1, term 1 (with empty data, the empty
    /// state machine), so the log proper starts at index 2 and never holds entry 1. A node that
    /// joins the group later with an empty storage therefore always receives a snapshot first,
    /// which carries the membership it must replay later conf changes on. Starting a joiner from
    /// an empty membership and letting it replay the log instead would be unsafe: it would apply
    /// "add me" to nothing and believe it forms the whole group.
    pub fn bootstrap(
        voters: impl IntoIterator<Item = u64>,
        learners: impl IntoIterator<Item = u64>,
    ) -> Result<MemStorage> {
        let cs = raft_core::confchange::bootstrap(voters, learners)?;
        let storage = MemStorage::new();
        storage.wl().apply_snapshot(Snapshot {
            data: Default::default(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(cs),
                index: 1,
                term: 1,
            }),
        })?;
        Ok(storage)
    }

    /// Sets the membership of a storage that has none yet.
    ///
    /// Returns `Error::Invariant`, and changes nothing, if the storage is already initialised
    /// (its membership is not empty, see [`RaftState::initialized`]).
    pub fn initialize_with_conf_state(&self, conf_state: impl Into<ConfState>) -> Result<()> {
        let mut core = self.wl();
        if core.raft_state.initialized() {
            return Err(Error::Invariant(
                "MemStorage::initialize_with_conf_state: the storage is already initialised",
            ));
        }
        core.set_conf_state(conf_state.into());
        Ok(())
    }

    /// Takes the read lock. Hold it briefly: writers wait while it is held.
    pub fn rl(&self) -> RwLockReadGuard<'_, MemStorageCore> {
        // Poisoning is ignored on purpose; see the type's documentation.
        self.core.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the write lock. Do not call it while holding a guard from [`rl`](Self::rl) or `wl` on
    /// the same thread: that deadlocks.
    pub fn wl(&self) -> RwLockWriteGuard<'_, MemStorageCore> {
        // Poisoning is ignored on purpose; see the type's documentation.
        self.core.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemStorage {
    /// A copy of the persisted hard state and membership.
    fn initial_state(&self) -> Result<RaftState> {
        Ok(self.rl().raft_state.clone())
    }

    /// The entries in `[low, high)`, limited by `max_size` (the sum of `prost::Message::encoded_len`
    /// of the returned entries stays within it) but never fewer than one when `low < high`;
    /// [`NO_LIMIT`] returns them all.
    ///
    /// Errors: `StorageError::Compacted` if `low < first_index`, `StorageError::Unavailable` if
    /// `high > last_index + 1`, `Error::Invariant` if `low > high`. `low == high` (within range)
    /// returns an empty vector.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        let core = self.rl();
        if low > high {
            return Err(Error::Invariant("MemStorage::entries: low > high"));
        }
        if low < core.first_index() {
            return Err(StorageError::Compacted.into());
        }
        // `high >= low >= first_index >= 1`, so subtracting one cannot underflow.
        if high - 1 > core.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        if low == high {
            return Ok(Vec::new());
        }
        let range = core
            .entries
            .range(core.offset(low), core.offset(high - 1) + 1);
        let entries = range.zip(low..).map(|(e, index)| e.to_entry(index));
        if max_size == NO_LIMIT {
            return Ok(entries.collect());
        }
        // The first entry is always taken; each later one only if the total still fits.
        let mut out = Vec::new();
        let mut size = 0u64;
        for e in entries {
            size = size.saturating_add(e.encoded_len() as u64);
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The term of the entry at `index`; the snapshot point's index answers with its term.
    ///
    /// Errors: `StorageError::Compacted` below the snapshot point, `StorageError::Unavailable`
    /// above `last_index`.
    fn term(&self, index: u64) -> Result<u64> {
        let core = self.rl();
        if index == core.snapshot_index {
            return Ok(core.snapshot_term);
        }
        if index < core.snapshot_index {
            return Err(StorageError::Compacted.into());
        }
        if index > core.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        core.entries
            .get(core.offset(index))
            .map(|e| e.term)
            .ok_or(Error::Invariant(
                "MemStorage::term: an entry in range is missing",
            ))
    }

    /// One past the snapshot point (1 for a new storage).
    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().first_index())
    }

    /// The index of the last entry, or the snapshot point if the log is empty.
    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().last_index())
    }

    /// The latest snapshot (see [`MemStorageCore::create_snapshot`] and
    /// [`MemStorageCore::apply_snapshot`]) if its index is at least `request_index`.
    ///
    /// Returns `StorageError::SnapshotTemporarilyUnavailable`, so that the core asks again later,
    /// when the storage has no snapshot yet, when its latest snapshot is older than
    /// `request_index`, or once after [`MemStorageCore::trigger_snap_unavailable`]. The storage
    /// never makes a snapshot by itself (it does not hold the state machine's data): the
    /// application must call `create_snapshot`. `to` is ignored.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        {
            let core = self.rl();
            if !core.trigger_snap_unavailable {
                return core.snapshot_for(request_index);
            }
        }
        // The hook is set: consume it under the write lock (another caller may have done so
        // between the two locks, in which case this call answers normally).
        let mut core = self.wl();
        if std::mem::take(&mut core.trigger_snap_unavailable) {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        core.snapshot_for(request_index)
    }
}
