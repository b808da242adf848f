//! [`MultiLog`]: one log shared by many Raft groups (multi-raft), written with one `write` and
//! one fsync for the `Ready`s of many groups (group commit), and [`GroupStorage`], one group's
//! [`Storage`].
//!
//! # On disk
//!
//! One directory for all groups:
//! - the **log**, segment files of the single-group format (`record`, `files`), the records of
//!   all groups interleaved, each naming its group: entries, hard states and memberships as in
//!   a single-group log, plus *group created*, *group removed*, *group shape* (where a group's
//!   log starts and its latest snapshot's metadata, written when it compacts, creates or
//!   installs a snapshot, see `shape`) and *entry copy* (a live entry carried forward, below);
//! - the **checkpoint** file (see `checkpoint`): every group's small state (hard state,
//!   membership, log start, snapshot metadata, where its first entry's record is) at one synced
//!   position of the log, replaced whole (temporary name, fsync, rename, directory fsync);
//! - one **snapshot file** per group that has a snapshot, `snap-<group>-<index>.snap`, in the
//!   single-group snapshot format.
//!
//! # Writing
//!
//! [`MultiLogCore::write`] takes `(group, WriteBatch)` pairs: the entries, hard state and
//! membership records of all of them are encoded into one buffer and written with one `write`,
//! then the log is fsynced once and a sync mark follows, as in the single-group log. A batch
//! holding a snapshot, or a second batch of a group already in the buffer, writes the buffer
//! first (one more `write`, still one fsync). Creating, removing, compacting a group and
//! creating a snapshot append their records and fsync: each is durable when it returns.
//!
//! # Deleting segments
//!
//! A segment is needed while a group's live entries are in it, or while the checkpoint's
//! position is after it (its other records are not yet in a checkpoint). When a group compacts,
//! is removed, or the log starts a segment, the log computes the first segment any group's
//! first entry lies in; if that moved past the current first segment, it writes a checkpoint
//! (after an fsync of the log) and deletes the segments before it. The checkpoint is written at
//! most once per segment freed, and costs about 100 bytes per group.
//!
//! A group that never compacts would pin the segment of its first entry for ever. So when the
//! log has more than [`MultiOptions::rewrite_lag_segments`] segments, the live entries of every
//! group whose first entry lies further back than that are appended again as *entry copy*
//! records (raft-engine rewrites such groups the same way), and the freed segments go. An entry
//! copy moves an entry, it never truncates the log after it, so a crash that keeps only a prefix
//! of the copies loses nothing. The cost is bounded by the lagging groups' live entries, which
//! the log copies once per `rewrite_lag_segments` segments written: a group that keeps a large
//! log without compacting makes the log copy it over and over (the price of not compacting;
//! raft-engine has the same trade-off, and bounds it with its compaction hints to TiKV).
//!
//! # Recovery
//!
//! [`MultiLog::open`] reads the checkpoint and replays the segments from its first one with the
//! single-group engine's code (`open_segments`): the same torn-tail and corruption rules, the
//! same errors naming the file and offset. Records are dispatched to their groups (see
//! `replay`). Memory is each group's sparse index (its pieces, samples and term runs: nothing
//! per entry, see `log_index`) and cache of recent entries
//! ([`MultiOptions::cache_bytes_per_group`]), the anchor tables that all groups' reads share
//! (`engine::anchors`), and at open one segment at a time.
//!
//! Unlike the single-group state file, the checkpoint needs no witness in the log (see the
//! crate documentation, "Recovery and failures"): it is replaced whole, so a write of it that
//! the device misdirected or lost leaves a checkpoint that fails its magic or checksum (an
//! error naming it), never an older valid one; and it only folds records the log already holds
//! (the log is fsynced, with every group's changed hard state and membership recorded, before
//! it is written), so an older checkpoint, were one ever read, would replay the same records
//! to the same state, or find a segment it needs deleted (an error).
//!
//! # Concurrency
//!
//! One lock guards the whole log: [`MultiLog::wl`] for writes, and the [`GroupStorage`] reads of
//! all groups take it shared. A multi-raft process drives all its groups' `Ready`s from one
//! thread per log and writes them together, which is what makes one fsync per round possible.

mod checkpoint;
mod open;
mod replay;
mod shape;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{RaftState, Result, Storage, StorageError};

use crate::engine::read::{read_entries, read_snapshot_file, read_term};
use crate::engine::segments::SegmentLog;
use crate::engine::Recovery;
use crate::error::DiskError;
use crate::files::group_snapshot_name;
use crate::io::Fs;
use crate::log_index::{IndexStats, LogIndex};

/// Settings of a [`MultiLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiOptions {
    /// A segment is closed (fsynced) and a new one started once it holds this many bytes. A
    /// write is never split, so a segment may exceed it by one write. At most 1 GiB.
    pub segment_bytes: u64,
    /// The budget of each group's cache of recent entries, in encoded bytes (the last entry
    /// appended is always cached). Older entries are read from disk.
    pub cache_bytes_per_group: usize,
    /// When the log holds more segments than this, the live entries of groups whose first entry
    /// lies further back are copied forward so the old segments can go (at least 1).
    pub rewrite_lag_segments: u64,
}

impl Default for MultiOptions {
    fn default() -> MultiOptions {
        MultiOptions {
            segment_bytes: 64 << 20,
            cache_bytes_per_group: 64 << 10,
            rewrite_lag_segments: 8,
        }
    }
}

/// One group's state in memory.
struct Group {
    log: LogIndex,
    hard_state: HardState,
    conf_state: ConfState,
    /// The hard state (its commit capped) and membership last recorded in the log or the
    /// checkpoint: a sync records the current ones if they differ.
    logged_hard_state: HardState,
    logged_conf_state: ConfState,
    /// The membership was replaced since it was last recorded (it may still be equal): spares
    /// comparing memberships for every group of every write.
    conf_changed: bool,
    snapshot: SnapshotMetadata,
}

impl Group {
    fn new(cache_bytes: usize) -> Group {
        Group {
            log: LogIndex::new(0, 0, cache_bytes),
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            logged_hard_state: HardState::default(),
            logged_conf_state: ConfState::default(),
            conf_changed: false,
            snapshot: SnapshotMetadata::default(),
        }
    }

    /// The hard state with its commit capped at the last index, as it is recorded.
    fn capped_hard_state(&self) -> HardState {
        let mut hard_state = self.hard_state;
        hard_state.commit = hard_state.commit.min(self.log.last_index());
        hard_state
    }

    /// Whether the hard state or membership differ from the ones last recorded.
    fn is_dirty(&self) -> bool {
        self.capped_hard_state() != self.logged_hard_state || self.conf_unrecorded()
    }

    /// Whether the membership differs from the one last recorded.
    fn conf_unrecorded(&self) -> bool {
        self.conf_changed && self.conf_state != self.logged_conf_state
    }

    /// Notes that the current hard state (capped) and membership are recorded.
    fn recorded(&mut self, hard_state: HardState) {
        self.logged_hard_state = hard_state;
        if self.conf_changed {
            self.logged_conf_state = self.conf_state.clone();
            self.conf_changed = false;
        }
    }
}

/// The data behind a [`MultiLog`]: the segment files, every group's state, the checkpoint.
///
/// Reach it through [`MultiLog::rl`] and [`MultiLog::wl`]. Each group's write methods follow
/// `MemStorage`'s (same checks, same errors); a group that does not exist is
/// [`DiskError::NoSuchGroup`]. After an I/O failure the log refuses every write until reopened.
pub struct MultiLogCore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: MultiOptions,
    seg: SegmentLog,
    groups: BTreeMap<u64, Group>,
    /// Groups whose hard state or membership may differ from the ones last recorded.
    dirty: BTreeSet<u64>,
    /// Segments below this are no longer part of the log.
    first_segment: u64,
    checkpoint_sequence: u64,
    /// Snapshot files replaced or of removed groups: removed after the next fsync of the log.
    obsolete: Vec<PathBuf>,
    /// A segment was started since garbage was last collected.
    rotated: bool,
    recovery: Recovery,
}

impl std::fmt::Debug for MultiLogCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiLogCore")
            .field("dir", &self.dir)
            .field("groups", &self.groups.len())
            .field("segments", &self.seg.segments.len())
            .field("failed", &self.seg.failure())
            .finish_non_exhaustive()
    }
}

impl MultiLogCore {
    /// The ids of the groups, in increasing order.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.keys().copied()
    }

    /// Whether group `id` exists.
    pub fn contains(&self, id: u64) -> bool {
        self.groups.contains_key(&id)
    }

    /// Group `id`'s current hard state (possibly not yet durable).
    pub fn hard_state(&self, id: u64) -> std::result::Result<&HardState, DiskError> {
        Ok(&self.group(id)?.hard_state)
    }

    /// Group `id`'s current membership.
    pub fn conf_state(&self, id: u64) -> std::result::Result<&ConfState, DiskError> {
        Ok(&self.group(id)?.conf_state)
    }

    /// Group `id`'s latest snapshot's metadata; index 0 if it has none (as `MemStorage`).
    pub fn snapshot_metadata(&self, id: u64) -> std::result::Result<&SnapshotMetadata, DiskError> {
        Ok(&self.group(id)?.snapshot)
    }

    /// What the in-memory index of group `id`'s log holds (see the crate documentation,
    /// "Memory"); the anchor tables are the whole log's, shared by its groups.
    pub fn index_stats(&self, id: u64) -> std::result::Result<IndexStats, DiskError> {
        let (anchor_tables, anchors) = self.seg.anchors.size();
        Ok(IndexStats {
            anchor_tables,
            anchors,
            ..self.group(id)?.log.stats()
        })
    }

    /// What recovery found when the log was opened (`entries` counts all groups' entries).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Why the log refuses writes, if an I/O operation failed (reopen it to go on).
    pub fn failure(&self) -> Option<&str> {
        self.seg.failure()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ids of the segment files the log uses, oldest first.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.seg.segments.keys().copied().collect()
    }

    fn group(&self, id: u64) -> std::result::Result<&Group, DiskError> {
        self.groups.get(&id).ok_or(DiskError::NoSuchGroup(id))
    }

    fn group_mut(&mut self, id: u64) -> std::result::Result<&mut Group, DiskError> {
        self.groups.get_mut(&id).ok_or(DiskError::NoSuchGroup(id))
    }

    fn snapshot_path(&self, group: u64, index: u64) -> PathBuf {
        self.dir.join(group_snapshot_name(group, index))
    }
}

/// A log shared by many Raft groups: a cheap-to-clone, thread-safe handle to a
/// [`MultiLogCore`]. Each group reads through its [`GroupStorage`] ([`MultiLog::group`]); the
/// application writes all groups' `Ready`s through [`wl`](Self::wl) (see
/// [`MultiLogCore::write`]).
#[derive(Debug, Clone)]
pub struct MultiLog {
    core: Arc<RwLock<MultiLogCore>>,
}

impl MultiLog {
    /// Opens the log in `dir` on `fs`, creating it if the directory holds none, and recovers
    /// every group (see the module documentation). Errors name the file and, for corruption,
    /// the byte offset.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: impl Into<PathBuf>,
        options: MultiOptions,
    ) -> std::result::Result<MultiLog, DiskError> {
        let core = MultiLogCore::open(fs, dir.into(), options)?;
        Ok(MultiLog {
            core: Arc::new(RwLock::new(core)),
        })
    }

    /// Takes the read lock.
    pub fn rl(&self) -> RwLockReadGuard<'_, MultiLogCore> {
        // I/O failures mark the log failed before anything in memory changes (see `DiskStorage`).
        self.core.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the write lock. Do not call it while holding a guard on the same thread.
    pub fn wl(&self) -> RwLockWriteGuard<'_, MultiLogCore> {
        self.core.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The [`Storage`] of group `id`. Its reads fail with [`DiskError::NoSuchGroup`] while the
    /// group does not exist.
    pub fn group(&self, id: u64) -> GroupStorage {
        GroupStorage {
            log: self.clone(),
            id,
        }
    }
}

/// One group's durable Raft [`Storage`] in a [`MultiLog`]: answers every read as `MemStorage`
/// does for that group alone.
#[derive(Debug, Clone)]
pub struct GroupStorage {
    log: MultiLog,
    id: u64,
}

impl GroupStorage {
    /// The group's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The log the group lives in.
    pub fn log(&self) -> &MultiLog {
        &self.log
    }
}

impl Storage for GroupStorage {
    /// The group's current hard state and membership (including changes not yet synced).
    fn initial_state(&self) -> Result<RaftState> {
        let core = self.log.rl();
        let group = core.group(self.id)?;
        Ok(RaftState::new(group.hard_state, group.conf_state.clone()))
    }

    /// The group's entries in `[low, high)` within `max_size`, as `MemStorage` answers; recent
    /// entries from the group's cache, older ones from disk, checksums verified.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        let core = self.log.rl();
        let group = core.group(self.id)?;
        read_entries(&group.log, &core.seg, self.id, low, high, max_size)
    }

    /// The term at `index`, from memory.
    fn term(&self, index: u64) -> Result<u64> {
        let core = self.log.rl();
        read_term(&core.group(self.id)?.log, index)
    }

    /// One past the group's log start point.
    fn first_index(&self) -> Result<u64> {
        Ok(self.log.rl().group(self.id)?.log.first_index())
    }

    /// The group's last entry's index, or the start point's if its log is empty.
    fn last_index(&self) -> Result<u64> {
        Ok(self.log.rl().group(self.id)?.log.last_index())
    }

    /// The group's latest snapshot if its index is at least `request_index`, else
    /// `SnapshotTemporarilyUnavailable`, as `MemStorage` answers; read from its file.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        let core = self.log.rl();
        let group = core.group(self.id)?;
        let index = group.snapshot.index;
        if index == 0 || index < request_index {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        let path = core.snapshot_path(self.id, index);
        read_snapshot_file(&*core.fs, &path, &group.snapshot)
    }
}
