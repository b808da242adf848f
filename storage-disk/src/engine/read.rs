//! Reading: the [`Storage`] trait, answered from memory (terms, indexes, the cache of recent
//! entries) or, for older entries, from their records on disk (`scan`), checksums verified.

use std::path::Path;

use prost::Message as _;

use raft_core::eraftpb::{Entry, Snapshot, SnapshotMetadata};
use raft_core::{Error, RaftState, Result, Storage, StorageError};

use super::scan::{read_piece, SizeLimit};
use super::segments::SegmentLog;
use super::{DiskStorage, DiskStorageCore};
use crate::error::DiskError;
use crate::files::{decode_snapshot, snapshot_name};
use crate::io::Fs;
use crate::log_index::LogIndex;

/// `Storage::entries` over `log`, the entries of `group` whose records are in `seg`, with
/// `MemStorage`'s checks and size limit: recent entries from the cache, older ones scanned
/// from their pieces on disk (`scan`), checksums verified.
pub(crate) fn read_entries(
    log: &LogIndex,
    seg: &SegmentLog,
    group: u64,
    low: u64,
    high: u64,
    max_size: u64,
) -> Result<Vec<Entry>> {
    if low > high {
        return Err(Error::Invariant("DiskStorage::entries: low > high"));
    }
    if low < log.first_index() {
        return Err(StorageError::Compacted.into());
    }
    if high - 1 > log.last_index() {
        return Err(StorageError::Unavailable.into());
    }
    let mut limit = SizeLimit::new(max_size);
    let mut entries = Vec::with_capacity((high - low).min(1024) as usize);
    // The cache holds a suffix of the log: what is before it is on disk.
    let cache_first = log.cache_first();
    for piece in log.pieces_in(low, high.min(cache_first)) {
        if !read_piece(seg, group, log, piece, &mut limit, &mut entries)? {
            return Ok(entries);
        }
    }
    for index in low.max(cache_first)..high {
        let Some(entry) = log.cached(index) else {
            return Err(Error::Invariant(
                "DiskStorage::entries: an entry in range is missing",
            ));
        };
        if !limit.admit(entry.encoded_len() as u64) {
            break;
        }
        entries.push(entry.clone());
    }
    Ok(entries)
}

/// `Storage::term` over `log`, with `MemStorage`'s errors.
pub(crate) fn read_term(log: &LogIndex, index: u64) -> Result<u64> {
    let (start, _) = log.start();
    if index < start {
        return Err(StorageError::Compacted.into());
    }
    if index > log.last_index() {
        return Err(StorageError::Unavailable.into());
    }
    log.term(index).ok_or(Error::Invariant(
        "DiskStorage::term: an entry in range is missing",
    ))
}

/// Reads the snapshot file at `path` and checks that it holds the snapshot of `metadata`.
pub(crate) fn read_snapshot_file(
    fs: &dyn Fs,
    path: &Path,
    metadata: &SnapshotMetadata,
) -> Result<Snapshot> {
    let file = fs.open(path).map_err(|e| DiskError::io("open", path, e))?;
    let len = file.len().map_err(|e| DiskError::io("stat", path, e))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_at(0, &mut bytes)
        .map_err(|e| DiskError::io("read", path, e))?;
    let snapshot = decode_snapshot(path, &bytes)?;
    if snapshot.metadata.as_ref() != Some(metadata) {
        return Err(DiskError::corrupt(path, 0, "the snapshot is not the one recorded").into());
    }
    Ok(snapshot)
}

impl DiskStorageCore {
    /// `Storage::snapshot`: the latest snapshot if it covers `request_index`, read from its file.
    fn snapshot_for(&self, request_index: u64) -> Result<Snapshot> {
        let index = self.snapshot.index;
        if index == 0 || index < request_index {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        let path = self.path(&snapshot_name(index));
        read_snapshot_file(&*self.fs, &path, &self.snapshot)
    }
}

impl Storage for DiskStorage {
    /// The current hard state and membership (including changes not yet synced).
    fn initial_state(&self) -> Result<RaftState> {
        let core = self.rl();
        Ok(RaftState::new(core.hard_state, core.conf_state.clone()))
    }

    /// The entries in `[low, high)` within `max_size`, as `MemStorage` answers; recent entries
    /// come from the cache, older ones from disk (a checksum failure is an error naming the
    /// segment and offset).
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        let core = self.rl();
        read_entries(
            &core.log,
            &core.seg,
            core.options.group_id,
            low,
            high,
            max_size,
        )
    }

    /// The term at `index`, from memory.
    fn term(&self, index: u64) -> Result<u64> {
        read_term(&self.rl().log, index)
    }

    /// One past the log's start point.
    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().log.first_index())
    }

    /// The last entry's index, or the start point's if the log is empty.
    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().log.last_index())
    }

    /// The latest snapshot if its index is at least `request_index`, else
    /// `SnapshotTemporarilyUnavailable` (also when there is none), as `MemStorage` answers.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        self.rl().snapshot_for(request_index)
    }
}
