//! Writing a multi-group log: many groups' batches with one `write` and one fsync, group
//! creation and removal, snapshots and compaction, and the collection of segments no group needs
//! (copying lagging groups' entries forward, then a checkpoint).
//!
//! Ordering rules that recovery relies on, besides the segment-level ones (`segments`) and the
//! single-group ones (a hard state record follows the entries it commits and never commits past
//! them): a compaction's shape record follows the group's hard state record in the same write,
//! so a recovered group never starts after its commit index; an old snapshot file is removed
//! only after the record that replaces it is fsynced; the checkpoint is written only after the
//! log is fsynced, at the synced position, and segments are deleted only after it is durable.

use std::collections::HashSet;

use bytes::Bytes;
use prost::Message as _;
use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft_core::{Result, StorageError};

use super::checkpoint::{self, Checkpoint, GroupCheckpoint};
use super::shape::GroupShape;
use super::{Group, MultiLogCore};
use crate::batch::WriteBatch;
use crate::engine::read::read_entries;
use crate::engine::segments::Pending;
use crate::engine::snapshots::{
    check_compact, check_install, check_new_snapshot, installed_hard_state, write_file_durably,
};
use crate::engine::write::check_append;
use crate::error::DiskError;
use crate::files::{encode_snapshot, CHECKPOINT_FILE, TMP_SUFFIX};
use crate::log_index::RecordAt;
use crate::record::{self, RecordKind};

/// The most entries copied forward with one `write` (see `copy_lagging_groups`), in encoded
/// bytes; at most a segment's worth.
const COPY_BYTES: u64 = 4 << 20;

/// What a batch changes in its group once the buffer holding its records is written.
struct Staged {
    group: u64,
    locations: Vec<RecordAt>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    conf_state: Option<ConfState>,
    /// The hard state recorded by the batch, if it recorded one.
    logged_hard_state: Option<HardState>,
    /// The batch recorded the membership.
    logged_conf_state: bool,
}

/// The records of several batches encoded for one `write`, and what they change.
#[derive(Default)]
struct Buffer {
    pending: Option<Pending>,
    staged: Vec<Staged>,
    groups: HashSet<u64>,
    /// A snapshot was installed: the call fsyncs whatever happens next.
    installed: bool,
}

impl MultiLogCore {
    /// Group commit across groups: applies each `(group, batch)` in order (as
    /// [`DiskStorageCore::write`](crate::DiskStorageCore::write) applies one group's batch, with
    /// the same checks and errors), writing the records of all of them with one `write`, then
    /// fsyncs once if `sync` (pass `true` if any group's `Ready::must_sync`).
    ///
    /// A batch holding a snapshot, or a second batch of a group, first writes the records
    /// buffered so far (one more `write`); an installed snapshot is durable when the call
    /// returns (it fsyncs). Stops at the first batch that fails, without syncing (unless a
    /// snapshot was installed); the batches before it stay applied. A write that
    /// started a segment then collects garbage ([`collect_garbage`](Self::collect_garbage));
    /// an error there is returned although the batches are applied (and durable, if synced).
    pub fn write(
        &mut self,
        batches: impl IntoIterator<Item = (u64, WriteBatch)>,
        sync: bool,
    ) -> Result<()> {
        self.seg.check_writable()?;
        let mut buffer = Buffer::default();
        let mut result = Ok(());
        for (group, batch) in batches {
            if let Err(e) = self.buffer_batch(&mut buffer, group, batch, sync) {
                result = Err(e);
                break;
            }
        }
        self.flush(&mut buffer)?;
        if let Err(e) = result {
            // A snapshot installed before the failing batch is durable all the same.
            if buffer.installed {
                self.sync()?;
            }
            return Err(e);
        }
        if sync || buffer.installed {
            self.sync()?;
        }
        if self.rotated {
            self.collect_garbage_after()?;
        }
        Ok(())
    }

    /// Encodes `batch` of `group` into `buffer` (see [`write`](Self::write)); a snapshot in it is
    /// installed first.
    fn buffer_batch(
        &mut self,
        buffer: &mut Buffer,
        id: u64,
        batch: WriteBatch,
        sync: bool,
    ) -> Result<()> {
        self.group(id)?;
        if buffer.groups.contains(&id) || batch.snapshot.is_some() {
            self.flush(buffer)?;
        }
        if let Some(snapshot) = batch.snapshot {
            self.install(id, snapshot)?;
            buffer.installed = true;
        }
        let group = self.group(id)?;
        let entries = batch.entries;
        check_append(&group.log, &entries)?;
        let last_index = entries.last().map_or(group.log.last_index(), |e| e.index);
        let mut hard_state = batch.hard_state.unwrap_or(group.hard_state);
        hard_state.commit = hard_state.commit.min(last_index);
        let conf_state = batch.conf_state.as_ref().unwrap_or(&group.conf_state);
        let hs_record = sync && hard_state != group.logged_hard_state;
        let cs_record = sync
            && match &batch.conf_state {
                Some(cs) => *cs != group.logged_conf_state,
                None => group.conf_unrecorded(),
            };
        let mut locations = Vec::new();
        if !entries.is_empty() || hs_record || cs_record {
            let conf_payload = cs_record.then(|| conf_state.encode_to_vec());
            if buffer.pending.is_none() {
                self.rotated |= self.seg.rotate_if_full()?;
                buffer.pending = Some(self.seg.pending());
            }
            let pending = buffer.pending.as_mut().expect("set above");
            locations = pending.push_entries(id, &entries)?;
            if hs_record {
                let payload = record::encode_hard_state(&hard_state);
                pending.push(RecordKind::HardState, id, &payload);
            }
            if let Some(payload) = conf_payload {
                pending.push(RecordKind::ConfState, id, &payload);
            }
        }
        buffer.groups.insert(id);
        buffer.staged.push(Staged {
            group: id,
            locations,
            entries,
            hard_state: batch.hard_state,
            conf_state: batch.conf_state,
            logged_hard_state: hs_record.then_some(hard_state),
            logged_conf_state: cs_record,
        });
        Ok(())
    }

    /// Writes the buffered records with one `write`, then applies what they change.
    fn flush(&mut self, buffer: &mut Buffer) -> std::result::Result<(), DiskError> {
        buffer.groups.clear();
        if let Some(pending) = buffer.pending.take() {
            if let Err(e) = self.seg.write_out(pending) {
                buffer.staged.clear();
                return Err(e);
            }
        }
        for staged in buffer.staged.drain(..) {
            let group = self
                .groups
                .get_mut(&staged.group)
                .expect("checked when buffered");
            if let Some(first) = staged.entries.first() {
                group.log.truncate_after(first.index - 1);
            }
            for (at, entry) in staged.locations.into_iter().zip(staged.entries) {
                group.log.push(at, entry);
            }
            if let Some(hs) = staged.hard_state {
                group.hard_state = hs;
            }
            if let Some(cs) = staged.conf_state {
                group.conf_state = cs;
                group.conf_changed = true;
            }
            if let Some(hs) = staged.logged_hard_state {
                group.logged_hard_state = hs;
            }
            if staged.logged_conf_state {
                group.logged_conf_state = group.conf_state.clone();
                group.conf_changed = false;
            }
            if group.is_dirty() {
                self.dirty.insert(staged.group);
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable with one fsync of the log: the hard state and
    /// membership of every group whose ones changed since they were last recorded are appended
    /// first (one `write`). Then removes the snapshot files that records now durable replaced.
    pub fn sync(&mut self) -> Result<()> {
        self.seg.check_writable()?;
        let dirty = std::mem::take(&mut self.dirty);
        if !dirty.is_empty() {
            self.rotated |= self.seg.rotate_if_full()?;
            let mut pending = self.seg.pending();
            let mut recorded = Vec::new();
            for id in dirty {
                if let Some(group) = self.groups.get(&id) {
                    recorded.push((id, push_state(&mut pending, id, group)));
                }
            }
            if !pending.buf.is_empty() {
                self.seg.write_out(pending)?;
            }
            for (id, hard_state) in recorded {
                let group = self.groups.get_mut(&id).expect("recorded above");
                group.recorded(hard_state);
            }
        }
        self.seg.sync_log()?;
        for path in std::mem::take(&mut self.obsolete) {
            if let Err(e) = self.fs.remove(&path) {
                return Err(self.seg.fail(DiskError::io("remove", &path, e)).into());
            }
        }
        Ok(())
    }

    /// Creates the groups `ids`, empty (no entry, default hard state and membership), with one
    /// `write` and one fsync. Fails with [`DiskError::GroupExists`] if one exists (or is named
    /// twice), creating none.
    pub fn create_groups(&mut self, ids: &[u64]) -> Result<()> {
        self.seg.check_writable()?;
        let mut seen = HashSet::new();
        for &id in ids {
            if self.groups.contains_key(&id) || !seen.insert(id) {
                return Err(DiskError::GroupExists(id).into());
            }
        }
        self.rotated |= self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        for &id in ids {
            pending.push(RecordKind::GroupCreated, id, &[]);
        }
        self.seg.write_out(pending)?;
        let cache = self.options.cache_bytes_per_group;
        for &id in ids {
            self.groups.insert(id, Group::new(cache));
        }
        self.sync()
    }

    /// Removes group `id`: its records become garbage and its snapshot file is removed. Durable
    /// when it returns.
    pub fn remove_group(&mut self, id: u64) -> Result<()> {
        self.group(id)?;
        self.seg.check_writable()?;
        self.rotated |= self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        pending.push(RecordKind::GroupRemoved, id, &[]);
        self.seg.write_out(pending)?;
        let group = self.groups.remove(&id).expect("checked above");
        self.dirty.remove(&id);
        if group.snapshot.index > 0 {
            self.obsolete
                .push(self.snapshot_path(id, group.snapshot.index));
        }
        self.sync()?;
        self.collect_garbage_after()
    }

    /// Replaces group `id`'s hard state. Durable after the next [`sync`](Self::sync).
    pub fn set_hard_state(&mut self, id: u64, hs: HardState) -> Result<()> {
        self.group_mut(id)?.hard_state = hs;
        self.dirty.insert(id);
        Ok(())
    }

    /// Replaces group `id`'s membership. Durable after the next [`sync`](Self::sync).
    pub fn set_conf_state(&mut self, id: u64, cs: ConfState) -> Result<()> {
        let group = self.group_mut(id)?;
        group.conf_state = cs;
        group.conf_changed = true;
        self.dirty.insert(id);
        Ok(())
    }

    /// Sets group `id`'s commit index, with `MemStorage::commit_to`'s checks. Durable after the
    /// next [`sync`](Self::sync).
    pub fn commit_to(&mut self, id: u64, index: u64) -> Result<()> {
        let group = self.group_mut(id)?;
        if index < group.log.start().0 {
            return Err(StorageError::Compacted.into());
        }
        if index > group.log.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        group.hard_state.commit = index;
        self.dirty.insert(id);
        Ok(())
    }

    /// Installs a leader's snapshot into group `id`, with `MemStorage::apply_snapshot`'s checks,
    /// errors and effects (see [`DiskStorageCore::apply_snapshot`](crate::DiskStorageCore::apply_snapshot)).
    /// Durable when it returns.
    pub fn apply_snapshot(&mut self, id: u64, snapshot: Snapshot) -> Result<()> {
        let batch = WriteBatch {
            snapshot: Some(snapshot),
            ..WriteBatch::default()
        };
        self.write([(id, batch)], true)
    }

    /// Writes the snapshot file and the records of an installed snapshot (not yet fsynced).
    fn install(&mut self, id: u64, snapshot: Snapshot) -> Result<()> {
        let group = self.group(id)?;
        let (meta, conf_state) =
            check_install(&group.log, &group.hard_state, &group.snapshot, &snapshot)?;
        let hard_state = installed_hard_state(group.hard_state, &meta);
        let old = group.snapshot.index;
        self.seg.check_writable()?;
        self.write_snapshot_file(id, &snapshot)?;
        let shape = GroupShape {
            reset: true,
            start: (meta.index, meta.term),
            snapshot: meta.clone(),
        };
        let mut logged = hard_state;
        logged.commit = logged.commit.min(meta.index);
        self.rotated |= self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        pending.push(RecordKind::GroupShape, id, &shape.encode());
        pending.push(
            RecordKind::HardState,
            id,
            &record::encode_hard_state(&logged),
        );
        pending.push(RecordKind::ConfState, id, &conf_state.encode_to_vec());
        self.seg.write_out(pending)?;
        let group = self.group_mut(id)?;
        group.log.reset(meta.index, meta.term);
        group.hard_state = hard_state;
        group.conf_state = conf_state.clone();
        group.logged_hard_state = logged;
        group.logged_conf_state = conf_state;
        group.conf_changed = false;
        group.snapshot = meta.clone();
        if old > 0 && old != meta.index {
            self.obsolete.push(self.snapshot_path(id, old));
        }
        Ok(())
    }

    /// Records a snapshot of group `id`'s state machine at `index`, with
    /// `MemStorage::create_snapshot`'s checks and errors, and returns it. Durable when it
    /// returns; it does not compact the group's log (call [`compact`](Self::compact)).
    pub fn create_snapshot(
        &mut self,
        id: u64,
        index: u64,
        conf_state: Option<ConfState>,
        data: Bytes,
    ) -> Result<Snapshot> {
        let group = self.group(id)?;
        let meta = check_new_snapshot(
            &group.log,
            &group.hard_state,
            &group.conf_state,
            &group.snapshot,
            index,
            conf_state,
        )?;
        let (start, old) = (group.log.start(), group.snapshot.index);
        self.seg.check_writable()?;
        let snapshot = Snapshot {
            data,
            metadata: Some(meta.clone()),
        };
        self.write_snapshot_file(id, &snapshot)?;
        let shape = GroupShape {
            reset: false,
            start,
            snapshot: meta.clone(),
        };
        self.rotated |= self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        pending.push(RecordKind::GroupShape, id, &shape.encode());
        self.seg.write_out(pending)?;
        self.group_mut(id)?.snapshot = meta;
        if old > 0 && old != index {
            self.obsolete.push(self.snapshot_path(id, old));
        }
        self.sync()?;
        Ok(snapshot)
    }

    /// Discards group `id`'s entries before `compact_index`, with `MemStorage::compact`'s checks
    /// and errors. Durable when it returns; the segments that no group needs any more are then
    /// deleted.
    pub fn compact(&mut self, id: u64, compact_index: u64) -> Result<()> {
        let group = self.group(id)?;
        let Some(start) = check_compact(
            &group.log,
            &group.hard_state,
            &group.snapshot,
            compact_index,
        )?
        else {
            return Ok(());
        };
        self.seg.check_writable()?;
        let shape = GroupShape {
            reset: false,
            start,
            snapshot: group.snapshot.clone(),
        };
        self.rotated |= self.seg.rotate_if_full()?;
        let mut pending = self.seg.pending();
        let group = self.group(id)?;
        // The hard state first: a recovered group never starts after its commit index.
        let recorded = push_state(&mut pending, id, group);
        pending.push(RecordKind::GroupShape, id, &shape.encode());
        self.seg.write_out(pending)?;
        let group = self.group_mut(id)?;
        group.log.compact_to(start.0, start.1);
        group.recorded(recorded);
        self.sync()?;
        self.collect_garbage_after()
    }

    /// [`collect_garbage`](Self::collect_garbage) after a write, removal or compaction that is
    /// durable: a read that fails while copying a lagging group's entries forward, with nothing
    /// written failing, does not fail the operation (it is done); the collection is tried again
    /// after the next write.
    fn collect_garbage_after(&mut self) -> Result<()> {
        match self.collect_garbage() {
            Err(e) if self.seg.failure().is_none() && is_failed_read(&e) => {
                self.rotated = true;
                Ok(())
            }
            result => result,
        }
    }

    /// Deletes the segments no group needs: first copies forward the live entries of groups whose
    /// first entry lies more than [`rewrite_lag_segments`](super::MultiOptions::rewrite_lag_segments)
    /// segments back, then, if the first segment any group needs moved, fsyncs the log, writes a
    /// checkpoint and deletes the segments before it. Runs on its own after compactions,
    /// removals and writes that started a segment.
    pub fn collect_garbage(&mut self) -> Result<()> {
        self.seg.check_writable()?;
        self.rotated = false;
        self.copy_lagging_groups()?;
        let active = self.seg.active_id();
        let needed = self
            .groups
            .values()
            .filter_map(|g| g.log.first_segment())
            .min()
            .unwrap_or(active)
            .min(active);
        if needed <= self.first_segment {
            return Ok(());
        }
        self.sync()?;
        self.write_checkpoint(needed)?;
        self.first_segment = needed;
        self.seg.remove_below(needed)?;
        Ok(())
    }

    /// Appends copies of the live entries of every group whose first entry lies more than
    /// `rewrite_lag_segments` segments before the last one (not fsynced here).
    fn copy_lagging_groups(&mut self) -> Result<()> {
        let active = self.seg.active_id();
        let lag = self.options.rewrite_lag_segments.max(1);
        let Some(oldest_allowed) = active.checked_sub(lag) else {
            return Ok(());
        };
        if self.first_segment >= oldest_allowed {
            return Ok(());
        }
        let lagging: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| g.log.first_segment().is_some_and(|s| s < oldest_allowed))
            .map(|(id, _)| *id)
            .collect();
        for id in lagging {
            let group = self.group(id)?;
            let (mut next, last) = (group.log.first_index(), group.log.last_index());
            // A few megabytes (at most a segment) at a time, each one `write`: memory stays
            // bounded whatever the size of the group's log.
            let chunk = COPY_BYTES.min(self.options.segment_bytes);
            while next <= last {
                let group = self.group(id)?;
                let entries = read_entries(&group.log, &self.seg, id, next, last + 1, chunk)?;
                self.rotated |= self.seg.rotate_if_full()?;
                let mut pending = self.seg.pending();
                let locations = push_copies(&mut pending, id, &entries)?;
                self.seg.write_out(pending)?;
                let group = self.group_mut(id)?;
                for (entry, at) in entries.iter().zip(locations) {
                    group.log.relocate(entry.index, at);
                }
                next += entries.len() as u64;
            }
        }
        Ok(())
    }

    /// Writes the checkpoint of every group's state at the synced end of the log, with
    /// `first_segment` as the log's first segment. The log must be synced.
    fn write_checkpoint(&mut self, first_segment: u64) -> std::result::Result<(), DiskError> {
        let sequence = self.checkpoint_sequence + 1;
        let groups = self
            .groups
            .iter()
            .map(|(id, g)| GroupCheckpoint {
                id: *id,
                hard_state: g.capped_hard_state(),
                conf_state: g.conf_state.clone(),
                log_start: g.log.start(),
                first_entry_at: g.log.first_record(),
                snapshot: g.snapshot.clone(),
            })
            .collect();
        let checkpoint = Checkpoint {
            sequence,
            first_segment,
            synced: self.seg.synced_position(),
            groups,
        };
        let path = self.dir.join(CHECKPOINT_FILE);
        let tmp = self.dir.join(format!("{CHECKPOINT_FILE}{TMP_SUFFIX}"));
        let bytes = checkpoint::encode(&checkpoint);
        if let Err(e) = write_file_durably(&*self.fs, &self.dir, &tmp, &path, &bytes) {
            return Err(self.seg.fail(e));
        }
        self.checkpoint_sequence = sequence;
        for group in self.groups.values_mut() {
            group.recorded(group.capped_hard_state());
        }
        self.dirty.clear();
        Ok(())
    }

    /// Writes group `id`'s snapshot file durably (temporary name, fsync, rename, directory
    /// fsync).
    fn write_snapshot_file(
        &mut self,
        id: u64,
        snapshot: &Snapshot,
    ) -> std::result::Result<(), DiskError> {
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        let path = self.snapshot_path(id, index);
        let tmp = path.with_extension(format!("snap{TMP_SUFFIX}"));
        let bytes = encode_snapshot(snapshot);
        if let Err(e) = write_file_durably(&*self.fs, &self.dir, &tmp, &path, &bytes) {
            return Err(self.seg.fail(e));
        }
        Ok(())
    }
}

/// Appends to `pending` the hard state and membership records of `group` that differ from the
/// ones last recorded, and returns the hard state recorded (capped).
/// Whether `error` is a read that failed with an I/O error (the disk may answer it next time).
fn is_failed_read(error: &raft_core::Error) -> bool {
    matches!(DiskError::from_raft(error), Some(DiskError::Io { op, .. }) if *op == "read")
}

fn push_state(pending: &mut Pending, id: u64, group: &Group) -> HardState {
    let hard_state = group.capped_hard_state();
    if hard_state != group.logged_hard_state {
        pending.push(
            RecordKind::HardState,
            id,
            &record::encode_hard_state(&hard_state),
        );
    }
    if group.conf_unrecorded() {
        pending.push(RecordKind::ConfState, id, &group.conf_state.encode_to_vec());
    }
    hard_state
}

/// Appends entry copy records of `entries` to `pending`; returns where each one goes.
fn push_copies(
    pending: &mut Pending,
    id: u64,
    entries: &[Entry],
) -> std::result::Result<Vec<RecordAt>, DiskError> {
    let mut locations = Vec::with_capacity(entries.len());
    for entry in entries {
        let offset = pending.next_offset();
        pending.push(RecordKind::EntryCopy, id, &entry.encode_to_vec());
        let len = pending.next_offset() - offset;
        if u32::try_from(len).is_err() {
            let why = format!("an entry of {} bytes", entry.encoded_len());
            return Err(DiskError::TooLarge(why));
        }
        locations.push(RecordAt {
            segment: pending.segment,
            offset,
            len,
        });
    }
    Ok(locations)
}
