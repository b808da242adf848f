//! Reading: the [`Storage`] trait, answered from memory (terms, indexes, the cache of recent
//! entries) or, for older entries, from their records on disk, checksums verified.

use prost::Message as _;
use raft_core::eraftpb::{Entry, Snapshot};
use raft_core::{Error, RaftState, Result, Storage, StorageError, NO_LIMIT};

use super::{DiskStorage, DiskStorageCore};
use crate::error::DiskError;
use crate::files::{decode_snapshot, snapshot_name};
use crate::log_index::Location;
use crate::record::{self, RecordKind, HEADER_LEN};

impl DiskStorageCore {
    /// `Storage::entries`, with `MemStorage`'s checks and size limit.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        if low > high {
            return Err(Error::Invariant("DiskStorage::entries: low > high"));
        }
        if low < self.log.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if high - 1 > self.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        // The encoded size of an entry is its record's payload length, so the limit is applied
        // before anything is read from disk.
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut index = low;
        while index < high {
            let Some(location) = self.log.location(index) else {
                return Err(Error::Invariant(
                    "DiskStorage::entries: an entry in range is missing",
                ));
            };
            let entry_size = u64::from(location.len) - HEADER_LEN as u64;
            size = size.saturating_add(entry_size);
            if max_size != NO_LIMIT && index > low && size > max_size {
                break;
            }
            out.push(index);
            index += 1;
        }
        let mut entries = Vec::with_capacity(out.len());
        let mut pending: Vec<(u64, Location)> = Vec::new();
        for index in out {
            if let Some(entry) = self.log.cached(index) {
                self.read_run(&mut pending, &mut entries)?;
                entries.push(entry.clone());
            } else {
                let location = *self.log.location(index).expect("checked above");
                let contiguous = pending.last().is_some_and(|(_, last)| {
                    last.segment == location.segment
                        && last.offset + u64::from(last.len) == location.offset
                });
                if !contiguous {
                    self.read_run(&mut pending, &mut entries)?;
                }
                pending.push((index, location));
            }
        }
        self.read_run(&mut pending, &mut entries)?;
        Ok(entries)
    }

    /// Reads a run of records that lie back to back in one segment with one read, checks them
    /// and appends their entries to `out`. Empties `run`.
    fn read_run(&self, run: &mut Vec<(u64, Location)>, out: &mut Vec<Entry>) -> Result<()> {
        let (Some((_, first)), Some((_, last))) = (run.first(), run.last()) else {
            return Ok(());
        };
        let segment_id = u64::from(first.segment);
        let Some(segment) = self.segments.get(&segment_id) else {
            return Err(Error::Invariant(
                "DiskStorage::entries: an entry's segment is not open",
            ));
        };
        let start = first.offset;
        let end = last.offset + u64::from(last.len);
        let mut buf = vec![0u8; (end - start) as usize];
        segment
            .file
            .read_at(start, &mut buf)
            .map_err(|e| DiskError::io("read", &segment.path, e))?;
        for (index, location) in run.drain(..) {
            let at = (location.offset - start) as usize;
            let bytes = &buf[at..at + location.len as usize];
            let corrupt =
                |reason: String| DiskError::corrupt(&segment.path, location.offset, reason);
            let rec = record::decode(bytes, segment_id, location.offset)
                .map_err(|e| corrupt(format!("reading entry {index}: {e:?}")))?;
            if rec.kind != RecordKind::Entry {
                return Err(corrupt(format!("entry {index}'s record is not an entry")).into());
            }
            let entry = Entry::decode(rec.payload)
                .map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))?;
            if entry.index != index || entry.term != location.term {
                return Err(corrupt(format!(
                    "expected entry {index} of term {}, found {} of term {}",
                    location.term, entry.index, entry.term
                ))
                .into());
            }
            out.push(entry);
        }
        Ok(())
    }

    /// `Storage::snapshot`: the latest snapshot if it covers `request_index`, read from its file.
    fn snapshot_for(&self, request_index: u64) -> Result<Snapshot> {
        let index = self.snapshot.index;
        if index == 0 || index < request_index {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        let path = self.path(&snapshot_name(index));
        let file = self
            .fs
            .open(&path)
            .map_err(|e| DiskError::io("open", &path, e))?;
        let len = file.len().map_err(|e| DiskError::io("stat", &path, e))?;
        let mut bytes = vec![0u8; len as usize];
        file.read_at(0, &mut bytes)
            .map_err(|e| DiskError::io("read", &path, e))?;
        let snapshot = decode_snapshot(&path, &bytes)?;
        if snapshot.metadata.as_ref() != Some(&self.snapshot) {
            return Err(
                DiskError::corrupt(&path, 0, "the snapshot is not the one recorded").into(),
            );
        }
        Ok(snapshot)
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
        self.rl().entries(low, high, max_size)
    }

    /// The term at `index`, from memory.
    fn term(&self, index: u64) -> Result<u64> {
        let core = self.rl();
        let (start, _) = core.log.start();
        if index < start {
            return Err(StorageError::Compacted.into());
        }
        if index > core.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        core.log.term(index).ok_or(Error::Invariant(
            "DiskStorage::term: an entry in range is missing",
        ))
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
