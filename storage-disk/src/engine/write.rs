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
//! Ordering rules that recovery relies on:
//! - a hard state record is written after the entries it commits, and its commit index never
//!   passes the log's last index, so replay (which stops at the first damaged record) never
//!   finds a commit beyond the entries before it;
//! - the checkpoint is written only after the log is fsynced, and its commit never passes the
//!   log's last index, so a durable checkpoint never refers to entries that are not durable;
//! - a segment is fsynced before the next one is started, so only the last segment can hold
//!   unsynced records (a torn tail);
//! - a new segment's header is fsynced and its directory entry made durable before any record is
//!   written to it, so every segment a durable checkpoint refers to exists after a crash;
//! - right after every successful fsync of the log a sync mark is written (not fsynced): once it
//!   reaches the disk, with the next fsync or the kernel's writeback, damage before it is
//!   corruption, not a torn write. It is a `write` of its own, never part of the next batch's:
//!   written at once, it reaches the disk even if no other write follows (after a process
//!   crash, the page cache still carries it), which the next batch's `write` would not;
//! - zeros are written ahead of the records (preallocation) and never over them: a record's
//!   sector that a crash lost reads as zeros, or the file ends before it, as `tail` assumes.
//!
//! Each batch is one `write` (entries, then hard state and membership records), and the log
//! index and state change only once that write succeeded.
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

/// The zeros written ahead of the records of a segment, at a time (see
/// [`DiskStorageCore::preallocate`]).
pub(super) const PREALLOCATE_BYTES: u64 = 1 << 20;

/// Writes of at least this many bytes do not zero-fill ahead of themselves (see
/// [`DiskStorageCore::preallocate`]).
const PREALLOCATE_BELOW_WRITE_BYTES: usize = 64 << 10;

/// Records encoded for the end of the last segment, not yet written.
struct Pending {
    segment: u64,
    start: u64,
    buf: Vec<u8>,
}

impl Pending {
    /// The segment offset the next record appended to the buffer will have.
    fn next_offset(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    fn push(&mut self, kind: RecordKind, group: u64, payload: &[u8]) {
        let offset = self.next_offset();
        record::encode(&mut self.buf, self.segment, offset, kind, group, payload);
    }
}

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
        self.check_append(&entries)?;
        // The hard state as it is recorded: its commit capped at the last index after the batch.
        let last_index = entries.last().map_or(self.log.last_index(), |e| e.index);
        let mut hard_state = batch.hard_state.unwrap_or(self.hard_state);
        hard_state.commit = hard_state.commit.min(last_index);
        let conf_state = batch.conf_state.as_ref().unwrap_or(&self.conf_state);
        let hs_record = record_state && hard_state != self.logged_hard_state;
        let cs_record = record_state && *conf_state != self.logged_conf_state;
        if !entries.is_empty() || hs_record || cs_record {
            self.check_writable()?;
            self.rotate_if_full()?;
            let mut pending = self.pending();
            let locations = self.encode_entries(&mut pending, &entries)?;
            let group = self.options.group_id;
            if hs_record {
                let payload = record::encode_hard_state(&hard_state);
                pending.push(RecordKind::HardState, group, &payload);
            }
            if cs_record {
                let conf_state = batch.conf_state.as_ref().unwrap_or(&self.conf_state);
                pending.push(RecordKind::ConfState, group, &conf_state.encode_to_vec());
            }
            self.write_out(pending)?;
            if let Some(first) = entries.first() {
                self.log.truncate_after(first.index - 1);
            }
            for (location, entry) in locations.into_iter().zip(entries) {
                self.log.push(location, entry);
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

    /// `MemStorage::append`'s checks of `entries` against the log.
    fn check_append(&self, entries: &[Entry]) -> Result<()> {
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
        if first_index < self.log.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if first_index - 1 > self.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        Ok(())
    }

    /// Encodes the records of `entries` into `pending` and returns where each one goes.
    fn encode_entries(
        &self,
        pending: &mut Pending,
        entries: &[Entry],
    ) -> std::result::Result<Vec<Location>, DiskError> {
        let mut locations = Vec::with_capacity(entries.len());
        let group = self.options.group_id;
        pending.buf.reserve(
            entries
                .iter()
                .map(|e| record::HEADER_LEN + e.encoded_len())
                .sum(),
        );
        for entry in entries {
            let offset = pending.next_offset();
            let payload_len = record::encode_with(
                &mut pending.buf,
                pending.segment,
                offset,
                RecordKind::Entry,
                group,
                // A Vec grows as needed: encoding into one cannot run out of room.
                |out| entry.encode(out).expect("encoding into a Vec"),
            );
            let len = u32::try_from(pending.next_offset() - offset)
                .map_err(|_| DiskError::TooLarge(format!("an entry of {payload_len} bytes")))?;
            locations.push(Location {
                term: entry.term,
                offset,
                segment: pending.segment as u32,
                len,
            });
        }
        Ok(locations)
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
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.record_state()?;
        self.sync_log()?;
        Ok(())
    }

    /// Appends a hard state record and a membership record (one `write`), each only if it
    /// differs from the one last recorded (in the log or the checkpoint).
    fn record_state(&mut self) -> std::result::Result<(), DiskError> {
        let hard_state = self.capped_hard_state();
        let hs_changed = hard_state != self.logged_hard_state;
        let cs_changed = self.conf_state != self.logged_conf_state;
        if !hs_changed && !cs_changed {
            return Ok(());
        }
        self.rotate_if_full()?;
        let mut pending = self.pending();
        let group = self.options.group_id;
        if hs_changed {
            let payload = record::encode_hard_state(&hard_state);
            pending.push(RecordKind::HardState, group, &payload);
        }
        if cs_changed {
            let payload = self.conf_state.encode_to_vec();
            pending.push(RecordKind::ConfState, group, &payload);
        }
        self.write_out(pending)?;
        self.logged_hard_state = hard_state;
        self.logged_conf_state = self.conf_state.clone();
        Ok(())
    }

    /// An empty buffer for the end of the last segment, starting with the sync mark that could
    /// not be written after the last fsync, if any.
    fn pending(&self) -> Pending {
        let mut pending = Pending {
            segment: self.active_id(),
            start: self.active().len,
            buf: Vec::new(),
        };
        if self.mark_pending {
            pending.push(RecordKind::SyncMark, 0, &[]);
        }
        pending
    }

    /// Starts a new segment if the last one is full: a batch is never split across segments.
    fn rotate_if_full(&mut self) -> std::result::Result<(), DiskError> {
        let active_len = self.active().len;
        if active_len >= self.segment_limit() && active_len > SEGMENT_HEADER_LEN {
            self.rotate()?;
        }
        Ok(())
    }

    /// The size past which a segment is full.
    fn segment_limit(&self) -> u64 {
        self.options.segment_bytes.min(1 << 30)
    }

    /// Writes `pending` at the end of the last segment with one `write` (not durable until
    /// [`sync`](Self::sync)), then, if the records passed the zeros written so far, zero-fills
    /// the segment ahead of them (see [`preallocate`](Self::preallocate)).
    fn write_out(&mut self, pending: Pending) -> std::result::Result<(), DiskError> {
        let end = pending.next_offset();
        if end > u64::from(u32::MAX) {
            return Err(DiskError::TooLarge("a segment past 4 GiB".into()));
        }
        let path = self.active().path.clone();
        if let Err(e) = self.active().file.write_at(pending.start, &pending.buf) {
            return Err(self.fail(DiskError::io("write", &path, e)));
        }
        let segment = self.active_mut();
        segment.len = end;
        let passed_zeros = end > segment.allocated;
        segment.allocated = segment.allocated.max(end);
        self.mark_pending = false;
        self.needs_sync = true;
        if passed_zeros && pending.buf.len() < PREALLOCATE_BELOW_WRITE_BYTES {
            self.preallocate(end)?;
        }
        Ok(())
    }

    /// After records were written up to byte `end` of the last segment, past the zeros written
    /// ahead: writes zeros from `end` up to the next multiple of [`PREALLOCATE_BYTES`] (at most
    /// to the segment's limit). Zeros are written after the records, never over them.
    ///
    /// On ext4 (and XFS, btrfs), an `fdatasync` after a write that grows a file must also write
    /// the inode (its size changed, and its new blocks were allocated); a write inside blocks
    /// already written changes no metadata and `fdatasync` writes the data alone. Measured on
    /// this repository's benchmark machine, that doubles the fsyncs per second of 8 KiB writes.
    /// `fallocate` does not help: it leaves unwritten extents, converted at the first write into
    /// each. The zeros are written in chunks as the log grows, not for a whole segment when it
    /// is created, so that no single `Ready` pays for 64 MiB of them; they reach the disk with
    /// the next fsync of the log. Recovery reads zeros from a record's start to the end of the
    /// file as the end of the log (see `replay`).
    ///
    /// Zeros cost as many bytes as the records that later replace them, while the inode an
    /// append saves costs about as much as writing 100 KiB on that machine (about 90 µs per
    /// fsync, at about 0.7 µs per KiB): so writes of [`PREALLOCATE_BELOW_WRITE_BYTES`] or more
    /// grow the file instead.
    fn preallocate(&mut self, end: u64) -> std::result::Result<(), DiskError> {
        let segment = self.active();
        let target = end
            .div_ceil(PREALLOCATE_BYTES)
            .saturating_mul(PREALLOCATE_BYTES)
            .min(self.segment_limit());
        if target <= end {
            // The segment's limit: the records grow the file past its zeros.
            return Ok(());
        }
        let path = segment.path.clone();
        if let Err(e) = segment.file.preallocate(target) {
            return Err(self.fail(DiskError::io("preallocate", &path, e)));
        }
        self.active_mut().allocated = target;
        Ok(())
    }

    /// Fsyncs the last segment if records were written to it since its last fsync, then writes
    /// the sync mark that proves it (without an fsync of its own: the next one, or the kernel's
    /// writeback, makes it durable). A mark that cannot be written is written with the next
    /// records instead; the fsync succeeded, so the data is durable either way.
    pub(super) fn sync_log(&mut self) -> std::result::Result<(), DiskError> {
        if !self.needs_sync {
            return Ok(());
        }
        let path = self.active().path.clone();
        if let Err(e) = self.active().file.sync() {
            return Err(self.fail(DiskError::io("fsync", &path, e)));
        }
        self.needs_sync = false;
        self.synced_len = self.active().len;
        let mut mark = Pending {
            segment: self.active_id(),
            start: self.active().len,
            buf: Vec::with_capacity(record::HEADER_LEN),
        };
        mark.push(RecordKind::SyncMark, 0, &[]);
        match self.active().file.write_at(mark.start, &mark.buf) {
            Ok(()) => {
                let segment = self.active_mut();
                segment.len = mark.next_offset();
                segment.allocated = segment.allocated.max(segment.len);
                self.mark_pending = false;
            }
            Err(_) => self.mark_pending = true,
        }
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
        self.sync_log()?;
        let state = PersistedState {
            hard_state: self.capped_hard_state(),
            conf_state: self.conf_state.clone(),
            first_segment: self.first_segment,
            log_start: self.log.start(),
            snapshot_index: self.snapshot.index,
            synced: (self.active_id(), self.synced_len),
        };
        self.write_checkpoint(state)
    }

    /// Writes the checkpoint `state` to the slot that does not hold the last durable one and
    /// fsyncs it. The log must be synced up to the checkpoint's position, which must be the end
    /// of the log's records (only the sync mark of that fsync may follow it): the hard state and
    /// membership records before it are older than the checkpoint. The hard state and
    /// membership it holds count as recorded from then on.
    fn write_checkpoint(&mut self, state: PersistedState) -> std::result::Result<(), DiskError> {
        let sequence = self.state_sequence + 1;
        let Some(slot_bytes) = encode_slot(&state, sequence) else {
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
        self.synced_len = SEGMENT_HEADER_LEN;
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
            allocated: SEGMENT_HEADER_LEN,
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
