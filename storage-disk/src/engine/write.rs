//! Writing: appends, hard state and membership records, fsync and group commit, segment
//! rotation, the checkpoint (the state file).
//!
//! A synced `Ready` costs one fsync: its entries and, if they changed, the hard state and
//! membership are records of the log, written and fsynced together. The state file is only a
//! checkpoint, written when the log's shape changes (a snapshot is created or installed, the log
//! is compacted), because it records what the log alone cannot: where the log starts, which
//! segment comes first, which snapshot is current. It also records its own position in the log:
//! hard state and membership records before that position are older than the checkpoint and
//! replay skips them.
//!
//! Ordering rules that recovery relies on (the segment-level ones are in `segments`):
//! - a hard state record is written after the entries it commits, and its commit index never
//!   passes the log's last index, so replay (which stops at the first damaged record) never
//!   finds a commit beyond the entries before it;
//! - the checkpoint is written only after the log is fsynced, and its commit never passes the
//!   log's last index, so a durable checkpoint never refers to entries that are not durable;
//! - once the checkpoint's slot is fsynced, a witness of it is appended to the log and fsynced
//!   before the call returns and before any file behind the checkpoint is removed, so that a
//!   slot write that never landed is found and rolled forward on recovery (see `witness`).
//!
//! Each batch is one `write` (entries, then hard state and membership records), and the log
//! index and state change only once that write succeeded.
//!
//! Any I/O error marks the storage failed (see [`DiskStorageCore::failure`]).

use prost::Message as _;
use raft_core::eraftpb::{ConfState, Entry, HardState};
use raft_core::{Error, Result, StorageError};

use super::DiskStorageCore;
use crate::batch::WriteBatch;
use crate::error::DiskError;
use crate::log_index::LogIndex;
use crate::record::{self, RecordKind};
use crate::state_file::{encode_payload, slot_of_payload, PersistedState, SLOT_LEN};

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
    ///
    /// Each batch costs one `write`: its entry records and, for the last batch when `sync`, the
    /// hard state and membership records, encoded into one buffer. Then one fsync, after which
    /// the sync mark is written with a `write` of its own: it must never reach the disk before
    /// the fsync it proves has succeeded, so it cannot join the batch it proves. A snapshot in
    /// a batch costs its own writes and fsyncs.
    pub fn write_all(
        &mut self,
        batches: impl IntoIterator<Item = WriteBatch>,
        sync: bool,
    ) -> Result<()> {
        let mut batches = batches.into_iter().peekable();
        while let Some(batch) = batches.next() {
            let last = batches.peek().is_none();
            self.write_batch(batch, sync && last)?;
        }
        if sync {
            // The hard state and membership are recorded by now (unless there was no batch).
            self.sync()?;
        }
        Ok(())
    }

    /// Applies one batch with one `write` (see [`write_all`](Self::write_all)): its snapshot,
    /// then its entries and, if `record_state`, the hard state and membership records that
    /// follow from it. The log index and the state change only once the write has succeeded, so
    /// a batch that fails leaves the storage as the batches before it left it.
    fn write_batch(&mut self, batch: WriteBatch, record_state: bool) -> Result<()> {
        if let Some(snapshot) = batch.snapshot {
            self.apply_snapshot(snapshot)?;
        }
        let entries = batch.entries;
        check_append(&self.log, &entries)?;
        // The hard state as it is recorded: its commit capped at the last index after the batch.
        let last_index = entries.last().map_or(self.log.last_index(), |e| e.index);
        let mut hard_state = batch.hard_state.unwrap_or(self.hard_state);
        hard_state.commit = hard_state.commit.min(last_index);
        let conf_state = batch.conf_state.as_ref().unwrap_or(&self.conf_state);
        let hs_record = record_state && hard_state != self.logged_hard_state;
        let cs_record = record_state && *conf_state != self.logged_conf_state;
        if !entries.is_empty() || hs_record || cs_record {
            self.check_writable()?;
            self.seg.rotate_if_full()?;
            let mut pending = self.seg.pending();
            let locations = pending.push_entries(self.options.group_id, &entries)?;
            let group = self.options.group_id;
            if hs_record {
                let payload = record::encode_hard_state(&hard_state);
                pending.push(RecordKind::HardState, group, &payload);
            }
            if cs_record {
                let conf_state = batch.conf_state.as_ref().unwrap_or(&self.conf_state);
                pending.push(RecordKind::ConfState, group, &conf_state.encode_to_vec());
            }
            self.seg.write_out(pending)?;
            if let Some(first) = entries.first() {
                self.log.truncate_after(first.index - 1);
            }
            for (at, entry) in locations.into_iter().zip(entries) {
                self.log.push(at, entry);
            }
        }
        if let Some(hs) = batch.hard_state {
            self.set_hard_state(hs);
        }
        if let Some(cs) = batch.conf_state {
            self.set_conf_state(cs);
        }
        if hs_record {
            self.logged_hard_state = hard_state;
        }
        if cs_record {
            self.logged_conf_state = self.conf_state.clone();
        }
        Ok(())
    }

    /// Appends `entries`, first removing every entry at or after `entries[0].index` (a
    /// conflicting suffix), with `MemStorage::append`'s checks and errors. The entries are
    /// written to the log at once (one `write`) but are durable only after
    /// [`sync`](Self::sync).
    ///
    /// A conflicting suffix is not erased from the segment: the new records follow it and
    /// replay lets a record at index `i` replace every entry from `i` on, as this call does.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let batch = WriteBatch {
            entries: entries.to_vec(),
            ..WriteBatch::default()
        };
        self.write_batch(batch, false)
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

    /// Makes everything written so far durable with one fsync of the log: if the hard state or
    /// membership changed since they were last recorded, a record of each is appended first.
    ///
    /// On failure the storage is marked failed and refuses every later write: the unsynced data
    /// may or may not be on disk, and a retried fsync could report success for pages the kernel
    /// already dropped.
    ///
    /// The lock is held through the fsync; [`begin_sync`](Self::begin_sync) runs it without.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.record_state()?;
        self.seg.sync_log()?;
        Ok(())
    }

    /// Appends a hard state record and a membership record (one `write`), each only if it
    /// differs from the one last recorded (in the log or the checkpoint).
    pub(super) fn record_state(&mut self) -> std::result::Result<(), DiskError> {
        let hard_state = self.capped_hard_state();
        let hs_changed = hard_state != self.logged_hard_state;
        let cs_changed = self.conf_state != self.logged_conf_state;
        if !hs_changed && !cs_changed {
            return Ok(());
        }
        self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        let group = self.options.group_id;
        if hs_changed {
            let payload = record::encode_hard_state(&hard_state);
            pending.push(RecordKind::HardState, group, &payload);
        }
        if cs_changed {
            let payload = self.conf_state.encode_to_vec();
            pending.push(RecordKind::ConfState, group, &payload);
        }
        self.seg.write_out(pending)?;
        self.logged_hard_state = hard_state;
        self.logged_conf_state = self.conf_state.clone();
        Ok(())
    }

    /// The hard state with its commit capped at the last index, as it is recorded: a durable
    /// record never commits entries that the durable log before it does not hold.
    fn capped_hard_state(&self) -> HardState {
        let mut hard_state = self.hard_state;
        hard_state.commit = hard_state.commit.min(self.log.last_index());
        hard_state
    }

    /// Writes a checkpoint of the current state (see [`write_checkpoint`](Self::write_checkpoint)).
    pub(super) fn checkpoint(&mut self) -> std::result::Result<(), DiskError> {
        self.check_writable()?;
        self.seg.sync_log()?;
        let state = PersistedState {
            hard_state: self.capped_hard_state(),
            conf_state: self.conf_state.clone(),
            first_segment: self.first_segment,
            log_start: self.log.start(),
            snapshot_index: self.snapshot.index,
            synced: self.seg.synced_position(),
        };
        self.write_checkpoint(state)
    }

    /// Writes the checkpoint `state` to the slot that does not hold the last durable one and
    /// fsyncs it, then appends its witness to the log and fsyncs the log. The log must be synced
    /// up to the checkpoint's position, which must be the end of the log's records (only the
    /// sync mark of that fsync may follow it): the hard state and membership records before it
    /// are older than the checkpoint. The hard state and membership it holds count as recorded
    /// from then on.
    fn write_checkpoint(&mut self, state: PersistedState) -> std::result::Result<(), DiskError> {
        let sequence = self.state_sequence + 1;
        let payload = encode_payload(&state, sequence);
        let Some(slot_bytes) = slot_of_payload(&payload) else {
            // The caller already changed the log in memory: refuse writes from now on.
            return Err(self.fail(DiskError::TooLarge(format!(
                "the membership does not fit in a {SLOT_LEN}-byte state slot"
            ))));
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
        self.logged_hard_state = state.hard_state;
        self.logged_conf_state = state.conf_state;
        self.write_witness(&payload)
    }

    /// Appends the witness of the checkpoint whose slot payload is `payload` to the log (one
    /// `write`, in the last segment whatever its size: the record is small) and fsyncs the log,
    /// which writes the sync mark after it. Only once this returns may the files behind the
    /// checkpoint be removed (see `witness`).
    fn write_witness(&mut self, payload: &[u8]) -> std::result::Result<(), DiskError> {
        let mut pending = self.seg.pending();
        pending.push(
            RecordKind::CheckpointWitness,
            self.options.group_id,
            payload,
        );
        self.seg.write_out(pending)?;
        self.seg.sync_log()
    }
}

/// `MemStorage::append`'s checks of `entries` against `log`.
pub(crate) fn check_append(log: &LogIndex, entries: &[Entry]) -> Result<()> {
    let Some(first_index) = entries.first().map(|e| e.index) else {
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
    if first_index < log.first_index() {
        return Err(StorageError::Compacted.into());
    }
    if first_index - 1 > log.last_index() {
        return Err(StorageError::Unavailable.into());
    }
    Ok(())
}
