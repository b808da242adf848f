//! Snapshots written off the storage's lock: [`SnapshotWriter`] and
//! [`DiskStorageCore::adopt_snapshot`].
//!
//! [`DiskStorageCore::create_snapshot`] encodes, writes and fsyncs the snapshot while the caller
//! holds the storage's write lock, which for a state of hundreds of megabytes stops the node for
//! seconds. Instead, an application takes a [`SnapshotWriter`] (cheap, under the read lock),
//! hands it and the encoded state to another thread, which writes a temporary file and fsyncs it
//! without touching the storage, and then adopts the result under the write lock: a rename, a
//! directory fsync and a checkpoint. A snapshot overtaken meanwhile (the storage installed a newer
//! one from the leader, or the log no longer holds its entry) is dropped instead.
//!
//! Likewise [`DiskStorageCore::compact_deferred`] compacts the log but leaves the removal of the
//! segments it frees to the caller ([`Garbage::remove`], on any thread): freeing the blocks of
//! hundreds of megabytes of files takes tens of milliseconds on ext4. Recovery removes segments
//! behind the log start it finds, so a crash before the removal leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Snapshot, SnapshotMetadata};
use raft_core::Result;

use super::DiskStorageCore;
use crate::error::DiskError;
use crate::files::{encode_snapshot, snapshot_name, TMP_SUFFIX};
use crate::io::{Fs, FsFile};

/// Written between two fsyncs of a large snapshot file (made here or installed from a leader):
/// the page cache then never holds hundreds of megabytes of it, which a journal commit (another
/// file's fsync, the log's) would have to flush first. Redis does the same
/// (`rdb-save-incremental-fsync`).
const SYNC_EVERY: usize = 4 << 20;

/// A snapshot to write on another thread: taken with [`DiskStorageCore::snapshot_writer`],
/// written with [`SnapshotWriter::write`], made the latest with
/// [`DiskStorageCore::adopt_snapshot`].
#[derive(Clone)]
pub struct SnapshotWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    metadata: SnapshotMetadata,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("dir", &self.dir)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// A snapshot written to its temporary file and fsynced, not yet the storage's.
#[derive(Debug)]
pub struct WrittenSnapshot {
    metadata: SnapshotMetadata,
    tmp: PathBuf,
}

/// Segment files a compaction freed, to remove on any thread: see
/// [`DiskStorageCore::compact_deferred`].
#[must_use = "the files stay on disk until removed (or until the storage is next opened)"]
pub struct Garbage {
    fs: Arc<dyn Fs>,
    paths: Vec<PathBuf>,
}

impl std::fmt::Debug for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garbage")
            .field("paths", &self.paths)
            .finish()
    }
}

impl Garbage {
    /// The files to remove.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Removes the files; returns those it could not remove (the next open removes them).
    pub fn remove(self) -> Vec<(PathBuf, std::io::Error)> {
        let mut failed = Vec::new();
        for path in self.paths {
            if let Err(e) = self.fs.remove(&path) {
                failed.push((path, e));
            }
        }
        failed
    }
}

/// Writes `bytes` to `file` (at `path`) from its start, fsyncing every [`SYNC_EVERY`] bytes and
/// at the end.
pub(super) fn write_synced_in_chunks(
    file: &dyn FsFile,
    path: &Path,
    bytes: &[u8],
) -> std::result::Result<(), DiskError> {
    let mut offset = 0u64;
    for chunk in bytes.chunks(SYNC_EVERY) {
        file.write_at(offset, chunk)
            .map_err(|e| DiskError::io("write", path, e))?;
        offset += chunk.len() as u64;
        file.sync().map_err(|e| DiskError::io("fsync", path, e))?;
    }
    if bytes.is_empty() {
        file.sync().map_err(|e| DiskError::io("fsync", path, e))?;
    }
    Ok(())
}

/// The temporary name of a snapshot written in the background: distinct from the one
/// [`DiskStorageCore::apply_snapshot`] writes, which may be at work on the same index meanwhile.
fn background_tmp(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{}.background{TMP_SUFFIX}", snapshot_name(index)))
}

impl SnapshotWriter {
    /// The metadata the snapshot will have.
    pub fn metadata(&self) -> &SnapshotMetadata {
        &self.metadata
    }

    /// Writes the snapshot with `data` (the application's state as of the writer's index) to a
    /// temporary file in the storage directory and fsyncs it, fsyncing every few megabytes on the
    /// way. Touches nothing the storage uses; call from any thread, then
    /// [`DiskStorageCore::adopt_snapshot`].
    pub fn write(self, data: Bytes) -> std::result::Result<WrittenSnapshot, DiskError> {
        let snapshot = Snapshot {
            data,
            metadata: Some(self.metadata.clone()),
        };
        let bytes = encode_snapshot(&snapshot);
        drop(snapshot);
        let tmp = background_tmp(&self.dir, self.metadata.index);
        let file = self
            .fs
            .create(&tmp)
            .map_err(|e| DiskError::io("create", &tmp, e))?;
        write_synced_in_chunks(file.as_ref(), &tmp, &bytes)?;
        Ok(WrittenSnapshot {
            metadata: self.metadata,
            tmp,
        })
    }
}

impl WrittenSnapshot {
    /// The snapshot's metadata.
    pub fn metadata(&self) -> &SnapshotMetadata {
        &self.metadata
    }
}

impl DiskStorageCore {
    /// A writer for a snapshot at `index` whose membership is `conf_state` (the current one when
    /// `None`), with [`create_snapshot`](Self::create_snapshot)'s checks and errors.
    pub fn snapshot_writer(
        &self,
        index: u64,
        conf_state: Option<ConfState>,
    ) -> Result<SnapshotWriter> {
        Ok(SnapshotWriter {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            metadata: self.new_snapshot_metadata(index, conf_state)?,
        })
    }

    /// Makes a snapshot written by [`SnapshotWriter::write`] the latest one: its file is renamed
    /// into place, the directory fsynced and a checkpoint written; the previous snapshot's file
    /// is removed. Durable when it returns. Does not compact the log (call
    /// [`compact`](Self::compact)).
    ///
    /// Returns `false`, and removes the temporary file, when the snapshot is no longer of use:
    /// the storage has one at least as new (say, installed from the leader meanwhile), or no
    /// longer holds the entry it ends at with its term.
    pub fn adopt_snapshot(&mut self, written: WrittenSnapshot) -> Result<bool> {
        let meta = written.metadata;
        let usable = meta.index > self.snapshot.index
            && meta.index <= self.hard_state.commit
            && self.log.term(meta.index) == Some(meta.term);
        if !usable || self.check_writable().is_err() {
            let _ = self.fs.remove(&written.tmp);
            self.check_writable()?;
            return Ok(false);
        }
        let path = self.path(&snapshot_name(meta.index));
        if let Err(e) = self.fs.rename(&written.tmp, &path) {
            return Err(self.fail(DiskError::io("rename", &written.tmp, e)).into());
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            return Err(self
                .fail(DiskError::io("fsync directory", &self.dir, e))
                .into());
        }
        let old_snapshot = self.snapshot.index;
        self.snapshot = meta;
        self.checkpoint()?;
        self.remove_snapshot_file(old_snapshot)?;
        Ok(true)
    }

    /// [`compact`](Self::compact), except that the segment files it frees are returned to be
    /// removed by the caller, on another thread if it likes, instead of removed here. The log
    /// start is durable when it returns, as with `compact`.
    pub fn compact_deferred(&mut self, compact_index: u64) -> Result<Garbage> {
        let mut paths = Vec::new();
        if self.compact_log(compact_index)? {
            paths = self.seg.take_below(self.first_segment);
        }
        Ok(Garbage {
            fs: self.fs.clone(),
            paths,
        })
    }
}
