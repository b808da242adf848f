//! Writing: appends, the hard state, fsync and group commit, segment rotation, the state file.
//!
//! Ordering rules that recovery relies on:
//! - the state file is written only after the log is fsynced, and its commit index never passes
//!   the log's last index, so a durable state never refers to entries that are not durable;
//! - a segment is fsynced before the next one is started, so only the last segment can hold
//!   unsynced records (a torn tail);
//! - a new segment's header is fsynced and its directory entry made durable before any record is
//!   written to it, so every segment a durable state refers to exists after a crash;
//! - after a successful fsync of the log, the next record written is a sync mark: damage before
//!   it is corruption, not a torn write.
//!
//! Any I/O error marks the storage failed (see [`DiskStorageCore::failure`]): after a failed fsync
//! the file's unsynced pages may be lost even though reads still return them, so the only honest
//! continuation is to reopen and let recovery decide what survived.

use std::path::PathBuf;

use prost::Message as _;
use raft_core::eraftpb::{ConfState, Entry, HardState};
use raft_core::{Error, Result, StorageError};

use super::{DiskStorageCore, Segment};
use crate::batch::WriteBatch;
use crate::error::DiskError;
use crate::files::{segment_header, segment_name, SEGMENT_HEADER_LEN};
use crate::log_index::Location;
use crate::record::{self, RecordKind};
use crate::state_file::{encode_slot, PersistedState, SLOT_LEN};

impl DiskStorageCore {
    /// Applies one `Ready`'s writes in the order of [`WriteBatch`]'s fields, then fsyncs if `sync`
    /// (pass `Ready::must_sync`). Each part is checked just before it is applied, as the
    /// `MemStorage` call it stands for would check it; a part that fails leaves the storage as
    /// the parts before it left it, and returns the error without syncing.
    ///
    /// Without `sync`, the entries and hard state are written (entries) or kept (hard state) but
    /// a crash may lose them; the next [`sync`](Self::sync) makes them durable. A snapshot in the
    /// batch is always durable when this returns.
    pub fn write(&mut self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.write_all([batch], sync)
    }

    /// Group commit: applies several batches in order (one or several `Ready`s, and later several
    /// groups' ones) and then fsyncs once if `sync`. Stops at the first batch that fails, without
    /// syncing; the batches before it stay applied.
    pub fn write_all(
        &mut self,
        batches: impl IntoIterator<Item = WriteBatch>,
        sync: bool,
    ) -> Result<()> {
        for batch in batches {
            if let Some(snapshot) = batch.snapshot {
                self.apply_snapshot(snapshot)?;
            }
            self.append(&batch.entries)?;
            if let Some(hs) = batch.hard_state {
                self.set_hard_state(hs);
            }
            if let Some(cs) = batch.conf_state {
                self.set_conf_state(cs);
            }
        }
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Appends `entries`, first removing every entry at or after `entries[0].index` (a
    /// conflicting suffix), with `MemStorage::append`'s checks and errors. The entries are
    /// written to the log at once but are durable only after [`sync`](Self::sync).
    ///
    /// A conflicting suffix is not erased from the segment: the new records follow it and
    /// replay lets a record at index `i` replace every entry from `i` on, as this call does.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(first_new) = entries.first() else {
            return Ok(());
        };
        if entries
            .windows(2)
            .any(|w| w[0].index.checked_add(1) != Some(w[1].index))
        {
            return Err(Error::Invariant(
                "DiskStorage::append: the entries to append do not have consecutive indexes",
            ));
        }
        if first_new.index < self.log.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if first_new.index - 1 > self.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        self.check_writable()?;
        let active_len = self.active().len;
        if active_len >= self.options.segment_bytes.min(1 << 30) && active_len > SEGMENT_HEADER_LEN
        {
            self.rotate()?;
        }
        let segment_id = self.active_id();
        let start = self.active().len;
        let mut buf = Vec::new();
        if self.mark_pending {
            record::encode(&mut buf, segment_id, start, RecordKind::SyncMark, 0, &[]);
        }
        let mut locations = Vec::with_capacity(entries.len());
        for entry in entries {
            let offset = start + buf.len() as u64;
            let before = buf.len();
            let payload = entry.encode_to_vec();
            let group = self.options.group_id;
            record::encode(
                &mut buf,
                segment_id,
                offset,
                RecordKind::Entry,
                group,
                &payload,
            );
            let len = u32::try_from(buf.len() - before)
                .map_err(|_| DiskError::TooLarge(format!("an entry of {} bytes", payload.len())))?;
            locations.push(Location {
                term: entry.term,
                offset,
                segment: segment_id as u32,
                len,
            });
        }
        if start + buf.len() as u64 > u64::from(u32::MAX) {
            return Err(DiskError::TooLarge("a segment past 4 GiB".into()).into());
        }
        let path = self.active().path.clone();
        if let Err(e) = self.active().file.write_at(start, &buf) {
            return Err(self.fail(DiskError::io("write", &path, e)).into());
        }
        self.active_mut().len = start + buf.len() as u64;
        self.mark_pending = false;
        self.needs_sync = true;
        self.log.truncate_after(first_new.index - 1);
        for (location, entry) in locations.into_iter().zip(entries) {
            self.log.push(location, entry.clone());
        }
        Ok(())
    }

    /// Replaces the hard state. Durable after the next [`sync`](Self::sync).
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Replaces the membership. Durable after the next [`sync`](Self::sync).
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// Sets the hard state's commit index, with `MemStorage::commit_to`'s checks. Durable after
    /// the next [`sync`](Self::sync).
    pub fn commit_to(&mut self, index: u64) -> Result<()> {
        if index < self.log.start().0 {
            return Err(StorageError::Compacted.into());
        }
        if index > self.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        self.hard_state.commit = index;
        Ok(())
    }

    /// Makes everything written so far durable: fsyncs the log, then writes and fsyncs the state
    /// file if the hard state or membership changed since it was last written.
    ///
    /// On failure the storage is marked failed and refuses every later write: the unsynced data
    /// may or may not be on disk, and a retried fsync could report success for pages the kernel
    /// already dropped.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.sync_log()?;
        let state = self.state_to_persist();
        if state.hard_state != self.persisted.hard_state
            || state.conf_state != self.persisted.conf_state
        {
            self.store_state(state)?;
        }
        Ok(())
    }

    /// Fsyncs the last segment if entries were written to it since its last fsync.
    pub(super) fn sync_log(&mut self) -> std::result::Result<(), DiskError> {
        if !self.needs_sync {
            return Ok(());
        }
        let path = self.active().path.clone();
        if let Err(e) = self.active().file.sync() {
            return Err(self.fail(DiskError::io("fsync", &path, e)));
        }
        self.needs_sync = false;
        self.mark_pending = true;
        Ok(())
    }

    /// The state as it would be written now: the commit index is capped at the last index, so
    /// that a durable state never commits entries the durable log does not hold.
    pub(super) fn state_to_persist(&self) -> PersistedState {
        let mut hard_state = self.hard_state;
        hard_state.commit = hard_state.commit.min(self.log.last_index());
        PersistedState {
            hard_state,
            conf_state: self.conf_state.clone(),
            first_segment: self.first_segment,
            log_start: self.log.start(),
            snapshot_index: self.snapshot.index,
            synced: (self.active_id(), self.active().len),
        }
    }

    /// Writes `state` to the slot that does not hold the last durable state and fsyncs it. The
    /// log must be synced first (the state's synced position and commit refer to it).
    pub(super) fn store_state(
        &mut self,
        state: PersistedState,
    ) -> std::result::Result<(), DiskError> {
        self.check_writable()?;
        self.sync_log()?;
        let sequence = self.state_sequence + 1;
        let Some(slot_bytes) = encode_slot(&state, sequence) else {
            return Err(DiskError::TooLarge(format!(
                "the membership does not fit in a {SLOT_LEN}-byte state slot"
            )));
        };
        let slot = 1 - self.state_slot;
        let path = self.path(crate::files::STATE_FILE);
        let offset = (slot * SLOT_LEN) as u64;
        if let Err(e) = self.state_file.write_at(offset, &slot_bytes) {
            return Err(self.fail(DiskError::io("write", &path, e)));
        }
        if let Err(e) = self.state_file.sync() {
            return Err(self.fail(DiskError::io("fsync", &path, e)));
        }
        self.state_slot = slot;
        self.state_sequence = sequence;
        self.persisted = state;
        Ok(())
    }

    /// Closes the last segment (fsync) and starts the next one, durably.
    pub(super) fn rotate(&mut self) -> std::result::Result<(), DiskError> {
        self.check_writable()?;
        let path = self.active().path.clone();
        // Always fsync, even without new entries: a sync mark may be unsynced in it.
        if let Err(e) = self.active().file.sync() {
            return Err(self.fail(DiskError::io("fsync", &path, e)));
        }
        self.needs_sync = false;
        let id = self.active_id() + 1;
        let segment = match self.create_segment(id) {
            Ok(segment) => segment,
            Err(e) => return Err(self.fail(e)),
        };
        self.segments.insert(id, segment);
        self.mark_pending = false;
        Ok(())
    }

    /// Creates segment `id` with its header, fsynced, and its directory entry durable.
    pub(super) fn create_segment(&self, id: u64) -> std::result::Result<Segment, DiskError> {
        let path: PathBuf = self.path(&segment_name(id));
        let file = self
            .fs
            .create(&path)
            .map_err(|e| DiskError::io("create", &path, e))?;
        file.write_at(0, &segment_header(id))
            .map_err(|e| DiskError::io("write", &path, e))?;
        file.sync().map_err(|e| DiskError::io("fsync", &path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| DiskError::io("fsync directory", &self.dir, e))?;
        Ok(Segment {
            path,
            file,
            len: SEGMENT_HEADER_LEN,
        })
    }

    /// Removes the segments below `first_segment` (after a durable state no longer refers to
    /// them). Their removal need not be durable: recovery removes leftovers.
    pub(super) fn remove_old_segments(&mut self) -> std::result::Result<(), DiskError> {
        let keep = self.segments.split_off(&self.first_segment);
        let old = std::mem::replace(&mut self.segments, keep);
        for (_, segment) in old {
            if let Err(e) = self.fs.remove(&segment.path) {
                return Err(self.fail(DiskError::io("remove", &segment.path, e)));
            }
        }
        Ok(())
    }

    pub(super) fn active_id(&self) -> u64 {
        self.segments.keys().next_back().copied().unwrap_or(0)
    }

    pub(super) fn active(&self) -> &Segment {
        let id = self.active_id();
        &self.segments[&id]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let id = self.active_id();
        self.segments.get_mut(&id).expect("the last segment exists")
    }
}
