//! [`NodeStorage`]: a node's durable `raft_core::Storage`, the `storage-disk` crate's
//! [`DiskStorage`] in `DIR/raft`, plus what the node adds around it:
//!
//! - the data directory's lock ([`lock`]): one process at a time;
//! - the latest snapshot kept in memory, so that sending one to a follower never reads a file of
//!   hundreds of megabytes on the node's thread (`storage-disk` reads its snapshot file on every
//!   `Storage::snapshot` call);
//! - the snapshot requests `Storage::snapshot` could not serve ([`NodeStorage::take_snapshot_request`]):
//!   a follower needs a newer snapshot than the latest, so the node makes one;
//! - snapshots made on another thread ([`SnapshotJob`]): `storage-disk` writes the file off the
//!   node's thread, the node adopts it and compacts the log (no log rewrite: the segments it
//!   frees are removed on another thread);
//! - the membership it reports is the latest snapshot's: the node restarts its state machine from
//!   that snapshot (`Config::applied` at its index) and applies the log after it again,
//!   membership changes included, which is the contract raft-core asks for.
//!
//! Durability is `storage-disk`'s: entries and the hard state are durable after [`sync`], or
//! after a sync begun with [`begin_sync`] is finished ([`finish_sync`]: the fsync itself runs on
//! another thread, without the storage's lock), snapshots and compaction when they return;
//! recovery cuts only a torn tail and names the file and offset of any other damage (see the
//! crate docs).
//!
//! A data directory of an older raftkv (its own `wal`, `hardstate` and `snapshot` files) is
//! refused rather than silently started empty: a node that forgot its vote and log could break
//! the cluster's safety.
//!
//! [`sync`]: NodeStorage::sync
//! [`begin_sync`]: NodeStorage::begin_sync
//! [`finish_sync`]: NodeStorage::finish_sync

pub mod lock;
#[cfg(test)]
pub(crate) mod tests;

use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, RaftState, Result, Storage, StorageError};
use storage_disk::io::{Fs, RealFs};
use storage_disk::{
    DiskStorage, FinishedSync, Garbage, Options, Recovery, SnapshotWriter, SyncTicket,
    WrittenSnapshot,
};

/// Where `storage-disk` keeps its files inside the data directory.
pub const RAFT_DIR: &str = "raft";

/// The files an older raftkv kept in the data directory itself.
const OLD_FORMAT_FILES: [&str; 3] = ["wal", "hardstate", "snapshot"];

fn invalid(message: String) -> Error {
    Error::Store(StorageError::Other(Box::new(std::io::Error::other(
        message,
    ))))
}

/// A node's durable storage: a cheap-to-clone handle, shared by the `RawNode` (which reads it
/// through [`Storage`]) and the node's loop (which writes it).
#[derive(Clone)]
pub struct NodeStorage {
    inner: Arc<Inner>,
}

struct Inner {
    disk: DiskStorage,
    /// The latest snapshot (index 0 in its metadata: none yet).
    latest: RwLock<Snapshot>,
    /// The highest index a `Storage::snapshot` caller asked for that the latest snapshot does not
    /// cover: the node should make a newer one.
    wanted: AtomicU64,
    /// The data directory's lock, held while the storage is open.
    _lock: File,
}

impl std::fmt::Debug for NodeStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStorage")
            .field("snapshot", &self.snapshot_metadata())
            .finish()
    }
}

/// A snapshot being made on another thread: see [`NodeStorage::snapshot_job`].
#[derive(Debug)]
pub struct SnapshotJob {
    writer: SnapshotWriter,
    keep_entries: u64,
}

/// A snapshot written by [`SnapshotJob::write`], for [`NodeStorage::adopt_snapshot`].
#[derive(Debug)]
pub struct MadeSnapshot {
    written: WrittenSnapshot,
    data: Bytes,
    keep_entries: u64,
}

impl SnapshotJob {
    /// The snapshot's metadata.
    pub fn metadata(&self) -> &SnapshotMetadata {
        self.writer.metadata()
    }

    /// Writes the snapshot with `data` (the state machine as of the job's index) to a temporary
    /// file and fsyncs it, without touching the storage: for a background thread.
    pub fn write(self, data: Bytes) -> Result<MadeSnapshot> {
        let written = self.writer.write(data.clone())?;
        Ok(MadeSnapshot {
            written,
            data,
            keep_entries: self.keep_entries,
        })
    }
}

impl MadeSnapshot {
    /// The snapshot's metadata.
    pub fn metadata(&self) -> &SnapshotMetadata {
        self.written.metadata()
    }
}

impl NodeStorage {
    /// Opens (creating if needed) the storage of the data directory `dir`, after taking its lock.
    pub fn open(dir: &Path) -> Result<NodeStorage> {
        NodeStorage::open_on(dir, Arc::new(RealFs::new()))
    }

    /// [`open`](Self::open), with the Raft log on the file system `fs` (the lock is a real file
    /// in `dir` whatever `fs` is): tests put the log on a simulated disk with faults.
    pub(crate) fn open_on(dir: &Path, fs: Arc<dyn Fs>) -> Result<NodeStorage> {
        fs::create_dir_all(dir).map_err(|e| invalid(format!("{}: {e}", dir.display())))?;
        let lock = lock::lock_dir(dir).map_err(|e| invalid(e.to_string()))?;
        if let Some(old) = OLD_FORMAT_FILES.iter().find(|f| dir.join(f).exists()) {
            return Err(invalid(format!(
                "{} holds the storage of an older raftkv ({old}); this version keeps its log in \
                 {}/{RAFT_DIR} and cannot read that one: start the node with a new data \
                 directory and add it to the cluster again",
                dir.display(),
                dir.display()
            )));
        }
        let disk = DiskStorage::open(fs, dir.join(RAFT_DIR), Options::default())?;
        let index = disk.rl().snapshot_metadata().index;
        let latest = if index > 0 {
            disk.snapshot(index, 0)?
        } else {
            Snapshot::default()
        };
        Ok(NodeStorage {
            inner: Arc::new(Inner {
                disk,
                latest: RwLock::new(latest),
                wanted: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }

    fn disk(&self) -> &DiskStorage {
        &self.inner.disk
    }

    /// What recovery found when the storage was opened.
    pub fn recovery(&self) -> Recovery {
        self.disk().rl().recovery().clone()
    }

    /// Whether the storage holds a membership (a snapshot): a new node's has none until the
    /// cluster's first snapshot, or a leader's, is installed.
    pub fn is_initialized(&self) -> bool {
        self.snapshot_metadata().index > 0
    }

    /// Installs the first state of a new cluster (refused if there is one already).
    pub fn initialize(&self, snapshot: Snapshot) -> Result<()> {
        if self.is_initialized() || self.disk().last_index()? > 0 {
            return Err(Error::Invariant(
                "NodeStorage::initialize: the storage is already initialised",
            ));
        }
        self.apply_snapshot(snapshot)
    }

    /// Writes what one or several `Ready`s hand over, in order: `entries` (a conflicting suffix
    /// is replaced), then `hard_state`. Durable after the next sync.
    ///
    /// The commit index is never moved back: [`raise_commit`](Self::raise_commit) may have
    /// moved it past the one of a `Ready` written later.
    pub fn write(&self, entries: &[Entry], hard_state: Option<HardState>) -> Result<()> {
        let mut core = self.disk().wl();
        core.append(entries)?;
        if let Some(mut hs) = hard_state {
            hs.commit = hs.commit.max(core.hard_state().commit);
            core.set_hard_state(hs);
        }
        Ok(())
    }

    /// Raises the commit index to `index` if it is lower: for the applied index, whose entries
    /// are durable and committed, when the `Ready` whose hard state commits them is not written
    /// yet (persistence is pipelined) and a snapshot at it is wanted (the storage refuses a
    /// snapshot beyond its commit index). Durable after the next sync or checkpoint.
    pub fn raise_commit(&self, index: u64) -> Result<()> {
        let mut core = self.disk().wl();
        if index > core.hard_state().commit {
            core.commit_to(index)?;
        }
        Ok(())
    }

    /// Makes everything written so far durable (one fsync of the log), holding the storage's
    /// lock through the fsync.
    pub fn sync(&self) -> Result<()> {
        self.disk().wl().sync()
    }

    /// Begins a sync of everything written so far: the fsync runs with [`SyncTicket::run`], on
    /// any thread, without the storage's lock; [`finish_sync`](Self::finish_sync) then reports
    /// it. The ticket is empty if everything is durable already.
    pub fn begin_sync(&self) -> Result<SyncTicket> {
        self.disk().wl().begin_sync()
    }

    /// Finishes a sync begun with [`begin_sync`](Self::begin_sync): once this returns `Ok`,
    /// everything written before it began is durable. A failed fsync fails the storage for
    /// good (every later write is refused): the node must stop.
    pub fn finish_sync(&self, finished: FinishedSync) -> Result<()> {
        self.disk().wl().finish_sync(finished)
    }

    /// Installs a snapshot (from the leader, or the first state of a new cluster): the log is
    /// reset to start after it. Durable when it returns.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.disk().wl().apply_snapshot(snapshot.clone())?;
        *self.inner.latest.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
        Ok(())
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        *self.disk().rl().hard_state()
    }

    /// The metadata of the latest snapshot (index 0 if there is none).
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        let latest = self.inner.latest.read().unwrap_or_else(|e| e.into_inner());
        latest.metadata.clone().unwrap_or_default()
    }

    /// The latest snapshot, if there is one.
    pub fn latest_snapshot(&self) -> Option<Snapshot> {
        let latest = self.inner.latest.read().unwrap_or_else(|e| e.into_inner());
        latest
            .metadata
            .as_ref()
            .is_some_and(|m| m.index > 0)
            .then(|| latest.clone())
    }

    /// The first index still in the log.
    pub fn first_log_index(&self) -> u64 {
        self.disk().first_index().unwrap_or_default()
    }

    /// The last index in the log.
    pub fn last_log_index(&self) -> u64 {
        self.disk().last_index().unwrap_or_default()
    }

    /// The highest index a follower needed a snapshot for that the latest one does not cover, if
    /// any since the last call: the node should make a newer snapshot.
    pub fn take_snapshot_request(&self) -> Option<u64> {
        let wanted = self.inner.wanted.swap(0, Ordering::Relaxed);
        (wanted > self.snapshot_metadata().index).then_some(wanted)
    }

    /// Starts a snapshot at `index` (committed, in the log) with membership `conf_state`, to be
    /// written on another thread; adopting it keeps `keep_entries` entries up to `index` in the
    /// log, for followers a little behind.
    pub fn snapshot_job(
        &self,
        index: u64,
        conf_state: ConfState,
        keep_entries: u64,
    ) -> Result<SnapshotJob> {
        let writer = self.disk().rl().snapshot_writer(index, Some(conf_state))?;
        Ok(SnapshotJob {
            writer,
            keep_entries,
        })
    }

    /// Makes a snapshot written by [`SnapshotJob::write`] the latest one and compacts the log
    /// behind it. Returns `false` (and drops it) if it was overtaken meanwhile, say by one
    /// installed from the leader. Durable when it returns.
    pub fn adopt_snapshot(&self, made: MadeSnapshot) -> Result<bool> {
        let meta = made.metadata().clone();
        let mut core = self.disk().wl();
        if !core.adopt_snapshot(made.written)? {
            return Ok(false);
        }
        core.set_conf_state(meta.conf_state.clone().unwrap_or_default());
        let first_kept = (meta.index + 1).saturating_sub(made.keep_entries).max(1);
        let garbage = core.compact_deferred(first_kept)?;
        drop(core);
        remove_in_background(garbage);
        *self.inner.latest.write().unwrap_or_else(|e| e.into_inner()) = Snapshot {
            data: made.data,
            metadata: Some(meta),
        };
        Ok(true)
    }
}

/// Removes the segment files a compaction freed on another thread: freeing the blocks of
/// hundreds of megabytes takes tens of milliseconds, which the node's loop must not wait for. A
/// file left behind (no thread could start, or the process died first) is removed by the next
/// open.
fn remove_in_background(garbage: Garbage) {
    if garbage.paths().is_empty() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("remove-segments".into())
        .spawn(move || garbage.remove());
}

impl Storage for NodeStorage {
    /// The hard state, and the latest snapshot's membership (see the module docs).
    fn initial_state(&self) -> Result<RaftState> {
        let conf_state = self.snapshot_metadata().conf_state.unwrap_or_default();
        Ok(RaftState::new(self.hard_state(), conf_state))
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.disk().entries(low, high, max_size)
    }

    fn term(&self, index: u64) -> Result<u64> {
        self.disk().term(index)
    }

    fn first_index(&self) -> Result<u64> {
        self.disk().first_index()
    }

    fn last_index(&self) -> Result<u64> {
        self.disk().last_index()
    }

    /// The latest snapshot, from memory, if it covers `request_index`; otherwise
    /// `SnapshotTemporarilyUnavailable`, and the request is remembered for
    /// [`NodeStorage::take_snapshot_request`].
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        if let Some(latest) = self.latest_snapshot() {
            if latest
                .metadata
                .as_ref()
                .is_some_and(|m| m.index >= request_index)
            {
                return Ok(latest);
            }
        }
        self.inner
            .wanted
            .fetch_max(request_index.max(1), Ordering::Relaxed);
        Err(StorageError::SnapshotTemporarilyUnavailable.into())
    }
}
