//! [`DiskStorage`]: the engine, and [`DiskStorageCore`], the data behind it.
//!
//! One concern per file: `open` (recovery), `replay` (reading segments back), `tail` (torn
//! write or corruption?), `witness` (the log's proof of each checkpoint, and rolling a lost one
//! forward), `segments` (the segment files: appends, fsync and sync marks,
//! rotation, reading records back), `write` (batches, hard state records, group commit, the
//! checkpoint), `sync_ticket` (an fsync of the log run off the lock), `snapshots` (install, create, compact), `background` (snapshots written on another
//! thread), `read` (the [`Storage`] trait), `scan` (old entries read back from their segment)
//! and `anchors` (positions found by earlier scans, in a small bounded cache). The multi-group
//! log (`crate::multi`) shares `segments`, `open`'s segment replay, `replay`'s per-group rules,
//! `read`, `scan` and the checks of `write` and `snapshots`.

pub use background::{Garbage, SnapshotWriter, WrittenSnapshot};
pub use sync_ticket::{FinishedSync, SyncTicket};

pub(crate) mod anchors;
mod background;
pub(crate) mod open;
pub(crate) mod read;
pub(crate) mod replay;
mod scan;
pub(crate) mod segments;
pub(crate) mod snapshots;
mod sync_ticket;
mod tail;
mod witness;
pub(crate) mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft_core::eraftpb::{ConfState, HardState, SnapshotMetadata};

use crate::error::DiskError;
use crate::io::{Fs, FsFile};
use crate::log_index::{IndexStats, LogIndex};
use segments::SegmentLog;

/// Settings of a [`DiskStorage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The Raft group written in every record header. Records of other groups are skipped on
    /// replay (for many groups sharing one log, see [`MultiLog`](crate::MultiLog)).
    pub group_id: u64,
    /// A segment is closed (fsynced) and a new one started once it holds this many bytes. A
    /// batch is never split, so a segment may exceed it by one batch. At most 1 GiB.
    pub segment_bytes: u64,
    /// The budget of the cache of recent entries, in encoded bytes. Older entries are read from
    /// disk. The last entry appended is always cached.
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            group_id: 1,
            segment_bytes: 64 << 20,
            cache_bytes: 16 << 20,
        }
    }
}

/// How the first record of a cut tail was damaged. Both shapes are what a crash leaves in a write
/// that was not yet fsynced; any other damage is a [`DiskError::Corrupt`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornShape {
    /// The segment ends inside the record (the crash lost the sectors at the end of the file).
    ShortFile,
    /// A piece of the record between two 512-byte boundaries reads as zeros, starting at this
    /// byte offset (the crash lost a sector inside the file).
    ZeroedSector {
        /// The first byte of the zeroed piece.
        offset: u64,
    },
}

/// A torn tail that recovery cut off the log.
///
/// A cut is always damage of a crash's shape ([`TornShape`]) after the last proof that the log
/// was synced (a sync mark, or the checkpoint's position). Recovery cannot rule out one case: a
/// batch that was fsynced (and so may have been acknowledged), whose sync mark the same power
/// loss took before it reached the disk, and which the device then lost or zeroed a sector of.
/// An application that must not run with that risk refuses to start, or does not vote or
/// acknowledge until it has caught up with a leader, whenever [`Recovery::torn_tail`] is set.
/// See the crate documentation, "What recovery cannot tell".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment, which held it.
    pub path: PathBuf,
    /// Where the damage started: the segment now ends here.
    pub offset: u64,
    /// How many bytes were cut (a partial record, and any unsynced records after it).
    pub bytes_dropped: u64,
    /// How the first cut record was damaged.
    pub shape: TornShape,
}

/// A checkpoint that the state file lost and recovery rolled forward from the log: the state
/// file's newest valid slot held an older checkpoint (or none), while the log held a *witness*
/// of a newer one, written right after that checkpoint's slot write was fsynced. The slot
/// write never landed (the device put it elsewhere, or lost it); recovery replayed the log from
/// the witnessed checkpoint instead, as if it had, and rewrote the state file with it. Nothing
/// durable was lost. See the crate documentation, "Recovery and failures".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledForward {
    /// The state file.
    pub state_file: PathBuf,
    /// The sequence number of the checkpoint in its newest valid slot (`None`: neither slot
    /// was valid).
    pub slot_sequence: Option<u64>,
    /// The sequence number of the checkpoint the log witnessed, which recovery went on from.
    pub witnessed_sequence: u64,
    /// The segment holding the witness.
    pub witness_path: PathBuf,
    /// The witness record's byte offset in it.
    pub witness_offset: u64,
}

/// What [`DiskStorage::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The directory held no storage: a new one was made.
    pub created: bool,
    /// The segments replayed.
    pub segments: usize,
    /// The entries in the log after replay.
    pub entries: u64,
    /// The torn tail cut off the last segment, if there was one: damage of a crash's shape
    /// after the last proof of sync. Damage before a proof of sync, or of a shape no crash leaves,
    /// is an error instead. See [`TornTail`] for the one case recovery cannot rule out.
    pub torn_tail: Option<TornTail>,
    /// The log ended in a sync mark that a crash tore, which recovery cut. The engine writes a
    /// sync mark on its own right after an fsync succeeded, so no record was lost and everything
    /// before it is synced: unlike [`torn_tail`](Self::torn_tail), this needs no action.
    pub torn_sync_mark: bool,
    /// The state file had lost the write of the latest checkpoint, which recovery found
    /// witnessed in the log and rolled forward (see [`RolledForward`]): the storage is whole,
    /// and the state file repaired. A damaged disk's sign nonetheless.
    pub rolled_forward: Option<RolledForward>,
    /// Files removed as leftovers: segments behind the log start, unreferenced snapshots,
    /// temporary files.
    pub removed: Vec<String>,
}

/// The data behind a [`DiskStorage`]: open files, the in-memory index of the log and the state.
///
/// Reach it through [`DiskStorage::rl`] and [`DiskStorage::wl`]. The write methods follow
/// `MemStorage`'s (same checks, same errors, same results); what differs is durability, described
/// on each method, and I/O failures, after which the storage refuses every write until reopened.
pub struct DiskStorageCore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: Options,
    state_file: Box<dyn FsFile>,
    /// The slot of the state file that holds the last durable state, and its sequence number.
    state_slot: usize,
    state_sequence: u64,
    /// The hard state and membership last recorded in the log or the checkpoint (the hard
    /// state's commit capped as it was written): a sync records the current ones if they differ.
    logged_hard_state: HardState,
    logged_conf_state: ConfState,
    hard_state: HardState,
    conf_state: ConfState,
    log: LogIndex,
    /// The segment files (and whether the storage failed).
    seg: SegmentLog,
    /// Segments below this are no longer part of the log.
    first_segment: u64,
    /// The latest snapshot's metadata (index 0: none); its data stays in its file.
    snapshot: SnapshotMetadata,
    recovery: Recovery,
}

impl std::fmt::Debug for DiskStorageCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStorageCore")
            .field("dir", &self.dir)
            .field("hard_state", &self.hard_state)
            .field("first_index", &self.log.first_index())
            .field("last_index", &self.log.last_index())
            .field("segments", &self.seg.segments.len())
            .field("failed", &self.seg.failure())
            .finish_non_exhaustive()
    }
}

impl DiskStorageCore {
    /// The current hard state (possibly not yet durable: see [`sync`](Self::sync)).
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The current membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The latest snapshot's metadata; index 0 if there is none (as `MemStorage`).
    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        &self.snapshot
    }

    /// What recovery found when the storage was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Why the storage refuses writes, if an I/O operation failed (reopen it to go on).
    pub fn failure(&self) -> Option<&str> {
        self.seg.failure()
    }

    /// What the in-memory index of the log holds (see the crate documentation, "Memory").
    pub fn index_stats(&self) -> IndexStats {
        let (anchor_tables, anchors) = self.seg.anchors.size();
        IndexStats {
            anchor_tables,
            anchors,
            ..self.log.stats()
        }
    }

    /// The storage's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file of the directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fails if an earlier write failed.
    fn check_writable(&self) -> Result<(), DiskError> {
        self.seg.check_writable()
    }

    /// Records an I/O failure: from now on every write is refused. Returns the error.
    fn fail(&mut self, error: DiskError) -> DiskError {
        self.seg.fail(error)
    }
}

/// A durable Raft [`Storage`](raft_core::Storage): a cheap-to-clone, thread-safe handle to a
/// [`DiskStorageCore`], as `MemStorage` is to its core.
///
/// The core reads it through the `Storage` trait; the application writes through
/// [`wl`](Self::wl) (see [`DiskStorageCore::write`]).
#[derive(Debug, Clone)]
pub struct DiskStorage {
    core: Arc<RwLock<DiskStorageCore>>,
}

impl DiskStorage {
    /// Opens the storage in `dir` on `fs`, creating it if the directory holds none, and recovers
    /// it (see [`Recovery`]). Errors name the file and, for corruption, the byte offset.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: impl Into<PathBuf>,
        options: Options,
    ) -> Result<DiskStorage, DiskError> {
        let core = DiskStorageCore::open(fs, dir.into(), options)?;
        Ok(DiskStorage {
            core: Arc::new(RwLock::new(core)),
        })
    }

    /// Takes the read lock.
    pub fn rl(&self) -> RwLockReadGuard<'_, DiskStorageCore> {
        // A panic while holding the lock cannot leave the core half-updated in a way the next
        // write would not refuse (I/O failures mark it failed first), as in `MemStorage`.
        self.core.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the write lock. Do not call it while holding a guard on the same thread.
    pub fn wl(&self) -> RwLockWriteGuard<'_, DiskStorageCore> {
        self.core.write().unwrap_or_else(|e| e.into_inner())
    }
}
