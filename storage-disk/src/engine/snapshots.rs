//! Snapshots and compaction: installing a leader's snapshot, recording the application's own,
//! and discarding the log behind one. Each is durable when it returns.
//!
//! A snapshot file is written under a temporary name, fsynced, renamed to its final name and the
//! directory fsynced; only then does the state file point at it. A crash at any step leaves
//! either the old snapshot in force or the new one, and recovery removes the other.

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, Result, StorageError};

use super::background::write_synced_in_chunks;
use super::DiskStorageCore;
use crate::error::DiskError;
use crate::files::{encode_snapshot, snapshot_name, TMP_SUFFIX};
use crate::io::Fs;
use crate::log_index::LogIndex;
use std::path::Path;

impl DiskStorageCore {
    /// Installs a snapshot received from the leader, with `MemStorage::apply_snapshot`'s checks,
    /// errors and effects: every entry is discarded, the log starts after the snapshot, the
    /// membership becomes the snapshot's, the commit is raised to its index and, if its term is
    /// newer, the term is raised and the vote cleared.
    ///
    /// Durable when it returns: the snapshot file, a new segment for the log that follows, and
    /// the state file pointing at both. The old segments and snapshot are then removed.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let (meta, conf_state) =
            check_install(&self.log, &self.hard_state, &self.snapshot, &snapshot)?;
        self.check_writable()?;
        self.write_snapshot_file(&snapshot)?;
        self.seg.rotate()?;
        let old_snapshot = self.snapshot.index;
        self.log.reset(meta.index, meta.term);
        self.first_segment = self.seg.active_id();
        self.hard_state = installed_hard_state(self.hard_state, &meta);
        self.conf_state = conf_state;
        self.snapshot = meta;
        self.checkpoint()?;
        self.seg.remove_below(self.first_segment)?;
        self.remove_snapshot_file(old_snapshot)?;
        Ok(())
    }

    /// Records a snapshot of the application's state machine at `index`, with
    /// `MemStorage::create_snapshot`'s checks and errors, and returns it. Durable when it returns;
    /// it does not compact the log (call [`compact`](Self::compact)).
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: Option<ConfState>,
        data: Bytes,
    ) -> Result<Snapshot> {
        let metadata = self.new_snapshot_metadata(index, conf_state)?;
        let snapshot = Snapshot {
            data,
            metadata: Some(metadata.clone()),
        };
        self.write_snapshot_file(&snapshot)?;
        let old_snapshot = self.snapshot.index;
        self.snapshot = metadata;
        self.checkpoint()?;
        if old_snapshot != index {
            self.remove_snapshot_file(old_snapshot)?;
        }
        Ok(snapshot)
    }

    /// The metadata of a new snapshot at `index` whose membership is `conf_state` (the current one
    /// when `None`), after `MemStorage::create_snapshot`'s checks (with its errors), shared by
    /// [`create_snapshot`](Self::create_snapshot) and
    /// [`snapshot_writer`](Self::snapshot_writer).
    pub(super) fn new_snapshot_metadata(
        &self,
        index: u64,
        conf_state: Option<ConfState>,
    ) -> Result<SnapshotMetadata> {
        let metadata = check_new_snapshot(
            &self.log,
            &self.hard_state,
            &self.conf_state,
            &self.snapshot,
            index,
            conf_state,
        )?;
        self.check_writable()?;
        Ok(metadata)
    }

    /// Discards the entries before `compact_index`, with `MemStorage::compact`'s checks and
    /// errors. Durable when it returns; the segments that then hold no entry of the log are
    /// deleted (whole segments only: entries behind the start point that share a segment with
    /// live ones stay on disk, unread, until their segment goes).
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if self.compact_log(compact_index)? {
            self.seg.remove_below(self.first_segment)?;
        }
        Ok(())
    }

    /// [`compact`](Self::compact) up to the checkpoint, without removing a file: returns whether
    /// the log start moved.
    pub(super) fn compact_log(&mut self, compact_index: u64) -> Result<bool> {
        let Some((point, term)) =
            check_compact(&self.log, &self.hard_state, &self.snapshot, compact_index)?
        else {
            return Ok(false);
        };
        self.check_writable()?;
        self.log.compact_to(point, term);
        self.first_segment = self.log.first_segment().unwrap_or(self.seg.active_id());
        self.checkpoint()?;
        Ok(true)
    }

    /// Writes `snapshot` durably under its final name (temporary file, fsync, rename, directory
    /// fsync).
    fn write_snapshot_file(&mut self, snapshot: &Snapshot) -> std::result::Result<(), DiskError> {
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        let name = snapshot_name(index);
        let path = self.path(&name);
        let tmp = self.path(&format!("{name}{TMP_SUFFIX}"));
        let bytes = encode_snapshot(snapshot);
        let result = write_file_durably(&*self.fs, &self.dir, &tmp, &path, &bytes);
        result.map_err(|e| self.fail(e))
    }

    /// Removes the snapshot file at `index` (0: none).
    pub(super) fn remove_snapshot_file(
        &mut self,
        index: u64,
    ) -> std::result::Result<(), DiskError> {
        if index == 0 {
            return Ok(());
        }
        let path = self.path(&snapshot_name(index));
        match self.fs.remove(&path) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(DiskError::io("remove", &path, e))),
        }
    }
}

/// `MemStorage::apply_snapshot`'s checks of `snapshot` against a group's log, hard state and
/// current snapshot (with its errors); returns the snapshot's metadata and membership.
pub(crate) fn check_install(
    log: &LogIndex,
    hard_state: &HardState,
    current: &SnapshotMetadata,
    snapshot: &Snapshot,
) -> Result<(SnapshotMetadata, ConfState)> {
    let Some(meta) = snapshot.metadata.clone() else {
        return Err(Error::Invariant(
            "DiskStorage::apply_snapshot: the snapshot has no metadata",
        ));
    };
    let Some(conf_state) = meta.conf_state.clone() else {
        return Err(Error::Invariant(
            "DiskStorage::apply_snapshot: the snapshot has no membership",
        ));
    };
    if meta.index <= current.index || holds_committed_after(log, hard_state, &meta) {
        return Err(StorageError::SnapshotOutOfDate.into());
    }
    if meta.term == 0 {
        return Err(Error::Invariant(
            "DiskStorage::apply_snapshot: the snapshot's term is 0",
        ));
    }
    if meta.index == u64::MAX {
        return Err(Error::Invariant(
            "DiskStorage::apply_snapshot: the snapshot's index is u64::MAX",
        ));
    }
    Ok((meta, conf_state))
}

/// The hard state after installing the snapshot of `meta`: the commit raised to its index and,
/// if its term is newer, the term raised and the vote cleared (as `MemStorage` does).
pub(crate) fn installed_hard_state(
    mut hard_state: HardState,
    meta: &SnapshotMetadata,
) -> HardState {
    if meta.term > hard_state.term {
        hard_state.term = meta.term;
        hard_state.vote = 0;
    }
    hard_state.commit = hard_state.commit.max(meta.index);
    hard_state
}

/// Whether installing a snapshot at `meta` would discard committed entries after it (see
/// `MemStorage::apply_snapshot`).
fn holds_committed_after(log: &LogIndex, hard_state: &HardState, meta: &SnapshotMetadata) -> bool {
    let commit = hard_state.commit;
    if commit <= meta.index || log.last_index() <= meta.index {
        return false;
    }
    log.term(meta.index) == Some(meta.term)
}

/// `MemStorage::create_snapshot`'s checks (with its errors) of a snapshot at `index` whose
/// membership is `conf_state` (the group's current one when `None`); returns its metadata.
pub(crate) fn check_new_snapshot(
    log: &LogIndex,
    hard_state: &HardState,
    current_conf_state: &ConfState,
    current: &SnapshotMetadata,
    index: u64,
    conf_state: Option<ConfState>,
) -> Result<SnapshotMetadata> {
    if index == 0 {
        return Err(Error::Invariant(
            "DiskStorage: a snapshot at index 0 covers no entry",
        ));
    }
    if index < current.index {
        return Err(StorageError::SnapshotOutOfDate.into());
    }
    if index > log.last_index() {
        return Err(StorageError::Unavailable.into());
    }
    if index > hard_state.commit {
        return Err(Error::Invariant(
            "DiskStorage: a snapshot's index is beyond the commit index",
        ));
    }
    let Some(term) = log.term(index) else {
        return Err(Error::Invariant(
            "DiskStorage: an entry a snapshot covers is missing",
        ));
    };
    Ok(SnapshotMetadata {
        conf_state: Some(conf_state.unwrap_or_else(|| current_conf_state.clone())),
        index,
        term,
    })
}

/// `MemStorage::compact`'s checks (with its errors) of a compaction before `compact_index`;
/// returns the new start point (index, term), or `None` if the log already starts there.
pub(crate) fn check_compact(
    log: &LogIndex,
    hard_state: &HardState,
    snapshot: &SnapshotMetadata,
    compact_index: u64,
) -> Result<Option<(u64, u64)>> {
    if compact_index <= log.first_index() {
        return Ok(None);
    }
    let point = compact_index - 1;
    if point > log.last_index() {
        return Err(StorageError::Unavailable.into());
    }
    if point > hard_state.commit {
        return Err(Error::Invariant(
            "DiskStorage::compact: the entries to discard are not all committed",
        ));
    }
    if point > snapshot.index {
        return Err(Error::Invariant(
            "DiskStorage::compact: the entries to discard are not all covered by a snapshot \
             (call create_snapshot first)",
        ));
    }
    let Some(term) = log.term(point) else {
        return Err(Error::Invariant(
            "DiskStorage::compact: an entry in range is missing",
        ));
    };
    Ok(Some((point, term)))
}

/// Writes `bytes` durably as the file `path` in `dir`: to `tmp`, fsynced (every few megabytes
/// on the way), renamed to `path`, and the directory fsynced.
pub(crate) fn write_file_durably(
    fs: &dyn Fs,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> std::result::Result<(), DiskError> {
    let file = fs
        .create(tmp)
        .map_err(|e| DiskError::io("create", tmp, e))?;
    write_synced_in_chunks(file.as_ref(), tmp, bytes)?;
    fs.rename(tmp, path)
        .map_err(|e| DiskError::io("rename", tmp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| DiskError::io("fsync directory", dir, e))
}
