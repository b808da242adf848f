//! `MemStorage`: the reference in-memory implementation of [`raft_core::Storage`].
//!
//! [`MemStorage`] is a cheap-to-clone handle (an `Arc<RwLock<MemStorageCore>>`): every clone sees the
//! same log, hard state and membership, and it may be shared between threads. The Raft core reads it
//! through the [`Storage`] trait; the application writes to it through [`MemStorage::wl`] (the write
//! guard dereferences to [`MemStorageCore`], whose methods append entries and set the hard state and
//! membership), exactly as with raft-rs's `MemStorage`.
//!
//! The log follows the "dummy entry" convention: the storage remembers the index and term of the last
//! entry covered by its snapshot (`(0, 0)` for a new storage), the first readable entry is the one
//! after it, and `term(first_index - 1)` is still answered.
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

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// The data behind a [`MemStorage`]: the hard state and membership, the log, and the point the
/// snapshot covers.
///
/// Reach it through [`MemStorage::rl`] (read) and [`MemStorage::wl`] (write). Every method leaves the
/// data consistent or, on bad input, returns an error and leaves it unchanged; none panics.
#[derive(Debug, Clone, Default)]
pub struct MemStorageCore {
    /// The persisted hard state and membership, handed out by `initial_state`.
    raft_state: RaftState,
    /// The entries after the snapshot point: `entries[i].index == snapshot_index + 1 + i`.
    entries: Vec<Entry>,
    /// The index of the last entry covered by the snapshot (0 for a new storage).
    snapshot_index: u64,
    /// The term of the entry at `snapshot_index` (0 for a new storage).
    snapshot_term: u64,
}

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

    /// Sets the commit index of the hard state to `index` (the term and vote are left alone).
    ///
    /// `index` must name an entry the storage knows the term of, `[first_index - 1, last_index]`:
    /// returns `StorageError::Unavailable` above `last_index` and `StorageError::Compacted` below the
    /// snapshot's index (the snapshot is committed, so the commit index cannot be below it). On error
    /// the hard state is unchanged. Moving the commit index backwards within the range is allowed
    /// (the storage records what it is told; the core never does it).
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
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    /// The index of the first entry that can be read: one past the snapshot's index.
    fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// The index of the last entry, or the snapshot's index when the log is empty.
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
    pub fn bootstrap(
        voters: impl IntoIterator<Item = u64>,
        learners: impl IntoIterator<Item = u64>,
    ) -> Result<MemStorage> {
        let cs = raft_core::confchange::bootstrap(voters, learners)?;
        Ok(MemStorage::new_with_conf_state(cs))
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
        let range = &core.entries[core.offset(low)..=core.offset(high - 1)];
        let count = if max_size == NO_LIMIT {
            range.len()
        } else {
            // The first entry is always taken; each later one only if the total still fits.
            let mut size = range[0].encoded_len() as u64;
            1 + range[1..]
                .iter()
                .take_while(|e| {
                    size = size.saturating_add(e.encoded_len() as u64);
                    size <= max_size
                })
                .count()
        };
        let mut out = Vec::with_capacity(count);
        out.extend_from_slice(&range[..count]);
        Ok(out)
    }

    /// The term of the entry at `index`; the snapshot's index answers with the snapshot's term.
    ///
    /// Errors: `StorageError::Compacted` below the snapshot's index, `StorageError::Unavailable`
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
        Ok(core.entries[core.offset(index)].term)
    }

    /// One past the snapshot's index (1 for a new storage).
    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().first_index())
    }

    /// The index of the last entry, or the snapshot's index if the log is empty.
    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().last_index())
    }

    /// A snapshot with empty data whose metadata is the storage's snapshot point (index and term;
    /// `(0, 0)` for a new storage) and its current membership.
    ///
    /// Until compaction and snapshot creation exist, the storage never holds a real snapshot: it
    /// never needs to, since its log starts at index 1, so the core has no reason to ask for one.
    /// `request_index` and `to` are ignored.
    fn snapshot(&self, _request_index: u64, _to: u64) -> Result<Snapshot> {
        let core = self.rl();
        Ok(Snapshot {
            data: Default::default(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(core.raft_state.conf_state.clone()),
                index: core.snapshot_index,
                term: core.snapshot_term,
            }),
        })
    }
}
