//! [`DiskStorage`]: durable Raft storage in one directory, implementing raft-core's [`Storage`].
//!
//! Three files (formats in [`files`]): a write-ahead log of entries, the hard state, and the
//! latest snapshot. The log is also kept in memory (it is compacted behind each snapshot, so it
//! stays small); the files are what survives a crash.
//!
//! What is durable when:
//! - [`DiskStorageCore::append`] and [`DiskStorageCore::set_hard_state`] write without fsync;
//!   [`DiskStorageCore::sync`] fsyncs both. The node calls it before sending the messages that
//!   promise durability (`Ready::persisted_messages`) whenever `Ready::must_sync` is set, so an
//!   entry is acknowledged to the leader, and so counted towards commit, only once it is on disk.
//! - [`DiskStorageCore::apply_snapshot`], [`DiskStorageCore::create_snapshot`] and
//!   [`DiskStorageCore::compact`] are durable when they return (they replace whole files
//!   atomically).
//!
//! The layout follows `storage-mem`'s `MemStorage`: the log is the entries after a *base* (the
//! index and term of the entry just before the first one, at or below the latest snapshot's
//! index), `entries` answers `Compacted` below the first index and `Unavailable` past the last,
//! and the latest snapshot is what [`Storage::snapshot`] hands out.
//!
//! The membership [`Storage::initial_state`] reports is the latest snapshot's: the node restarts
//! its state machine from that snapshot (with `Config::applied` at its index) and applies the log
//! after it again, conf changes included, which is the contract raft-core asks for.

pub mod files;
#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use prost::Message as _;
use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, RaftState, Result, Storage, StorageError, NO_LIMIT};

use files::{HardStateFile, WalRecord, HARD_STATE_FILE, SNAPSHOT_FILE, WAL_FILE};

/// What recovery found when a storage was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the WAL: a record that was being written when the process died.
    pub truncated_bytes: u64,
    /// The log did not continue the snapshot (a crash while installing one) and was reset to it.
    pub log_reset: bool,
}

/// The data behind a [`DiskStorage`]. Reach it through [`DiskStorage::rl`] and
/// [`DiskStorage::wl`].
#[derive(Debug)]
pub struct DiskStorageCore {
    dir: PathBuf,
    wal: File,
    /// WAL bytes written since the last fsync.
    wal_dirty: bool,
    hard_state_file: HardStateFile,
    /// The data directory's lock, held while the storage is open ([`files::lock_dir`]).
    _lock: File,
    hard_state: HardState,
    /// The index and term of the entry just before `entries[0]`.
    base_index: u64,
    base_term: u64,
    entries: Vec<Entry>,
    /// The latest snapshot; index 0 in its metadata means there is none.
    snapshot: Snapshot,
    /// The highest index a `Storage::snapshot` caller asked for that the latest snapshot does not
    /// cover: the application should make a newer one.
    snapshot_wanted: AtomicU64,
    recovery: Recovery,
}

fn io_error(e: io::Error) -> Error {
    Error::Store(StorageError::Other(Box::new(e)))
}

fn corrupt(what: &str) -> Error {
    io_error(io::Error::new(io::ErrorKind::InvalidData, what.to_string()))
}

impl DiskStorageCore {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.metadata.as_ref().map_or(0, |m| m.index)
    }

    fn first_index(&self) -> u64 {
        self.base_index + 1
    }

    fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    fn term_of(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        if index < self.base_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.first_index()) as usize].term)
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The metadata of the latest snapshot (index 0 if there is none).
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.snapshot.metadata.clone().unwrap_or_default()
    }

    /// The latest snapshot, if there is one.
    pub fn latest_snapshot(&self) -> Option<Snapshot> {
        (self.snapshot_index() > 0).then(|| self.snapshot.clone())
    }

    /// The first index still in the log.
    pub fn first_log_index(&self) -> u64 {
        self.first_index()
    }

    /// The last index in the log.
    pub fn last_log_index(&self) -> u64 {
        self.last_index()
    }

    /// What recovery found when the storage was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Takes the index a `Storage::snapshot` caller needed and the latest snapshot did not cover,
    /// if any: the application should make a snapshot at or above it.
    pub fn take_snapshot_request(&self) -> Option<u64> {
        let wanted = self.snapshot_wanted.swap(0, Ordering::Relaxed);
        (wanted > 0).then_some(wanted)
    }

    /// Appends entries, replacing every existing entry at or after `ents[0].index` (written to the
    /// WAL, not fsync'd: see [`sync`](Self::sync)). The same checks as `MemStorage::append`:
    /// consecutive indexes, not below the first index (`Compacted`), no gap (`Unavailable`).
    pub fn append(&mut self, ents: &[Entry]) -> Result<()> {
        let Some(first_new) = ents.first() else {
            return Ok(());
        };
        if ents
            .windows(2)
            .any(|w| w[0].index.checked_add(1) != Some(w[1].index))
        {
            return Err(Error::Invariant(
                "DiskStorage::append: the entries to append do not have consecutive indexes",
            ));
        }
        if first_new.index < self.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if first_new.index - 1 > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        let mut buf = Vec::with_capacity(ents.iter().map(|e| e.encoded_len() + 16).sum());
        for entry in ents {
            files::encode_record(&WalRecord::Entry(entry.clone()), &mut buf);
        }
        self.wal.write_all(&buf).map_err(io_error)?;
        self.wal_dirty = true;
        let keep = (first_new.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    /// Replaces the hard state (written, not fsync'd: see [`sync`](Self::sync)).
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<()> {
        self.hard_state_file.write(&hs).map_err(io_error)?;
        self.hard_state = hs;
        Ok(())
    }

    /// Sets the commit index of the hard state (written, not fsync'd: a commit index that is lost
    /// in a crash is learnt again from the leader).
    pub fn set_commit(&mut self, commit: u64) -> Result<()> {
        let hs = HardState {
            commit,
            ..self.hard_state
        };
        self.set_hard_state(hs)
    }

    /// Fsyncs the WAL and the hard state written since the last call.
    pub fn sync(&mut self) -> Result<()> {
        if self.wal_dirty {
            self.wal.sync_data().map_err(io_error)?;
            self.wal_dirty = false;
        }
        self.hard_state_file.sync().map_err(io_error)
    }

    /// Installs a snapshot (from `Ready::snapshot`, or the first one of a new cluster) durably:
    /// the snapshot file is replaced, then the log is reset to start right after it (every entry
    /// is discarded, as `MemStorage` does; the leader sends the ones after it again). The hard
    /// state's commit becomes the snapshot's index, and its term is raised to the snapshot's
    /// (clearing the vote) if it was lower.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let meta = snapshot.metadata.clone().ok_or(Error::Invariant(
            "DiskStorage::apply_snapshot: the snapshot has no metadata",
        ))?;
        if meta.conf_state.is_none() || meta.term == 0 || meta.index == 0 {
            return Err(Error::Invariant(
                "DiskStorage::apply_snapshot: the snapshot has no membership, or index or term 0",
            ));
        }
        if meta.index <= self.snapshot_index() || meta.index < self.hard_state.commit {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        files::write_atomically(&self.dir, SNAPSHOT_FILE, &files::encode_snapshot(&snapshot))
            .map_err(io_error)?;
        self.snapshot = snapshot;
        self.rewrite_wal(meta.index, meta.term, Vec::new())?;
        let mut hs = self.hard_state;
        if meta.term > hs.term {
            hs.term = meta.term;
            hs.vote = 0;
        }
        hs.commit = meta.index;
        self.set_hard_state(hs)?;
        self.sync()
    }

    /// Records a snapshot of the state machine at `index` (committed, in the log) with the
    /// membership as of `index` and the state machine's `data`, durably, and returns it. It does
    /// not compact the log: call [`compact`](Self::compact) afterwards.
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: ConfState,
        data: Bytes,
    ) -> Result<Snapshot> {
        if index <= self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        if index > self.hard_state.commit {
            return Err(Error::Invariant(
                "DiskStorage::create_snapshot: the index is beyond the commit index",
            ));
        }
        let term = self.term_of(index).ok_or(StorageError::Unavailable)?;
        let snapshot = Snapshot {
            data,
            metadata: Some(SnapshotMetadata {
                conf_state: Some(conf_state),
                index,
                term,
            }),
        };
        files::write_atomically(&self.dir, SNAPSHOT_FILE, &files::encode_snapshot(&snapshot))
            .map_err(io_error)?;
        self.snapshot = snapshot.clone();
        Ok(snapshot)
    }

    /// What a background thread needs to write a snapshot at `metadata.index` and the log it
    /// compacts to (the `keep_entries` entries up to that index, so followers a little behind
    /// still catch up from the log): see [`SnapshotJob`]. Cheap: entries share their payloads.
    pub fn snapshot_job(&self, metadata: SnapshotMetadata, keep_entries: u64) -> SnapshotJob {
        let index = metadata.index;
        let first_kept = (index + 1).saturating_sub(keep_entries).max(1);
        let log = (first_kept > self.first_index() && index <= self.last_index()).then(|| {
            let from = (first_kept - self.first_index()) as usize;
            let to = (index - self.first_index()) as usize;
            KeptLog {
                base_index: first_kept - 1,
                base_term: self.term_of(first_kept - 1).unwrap_or_default(),
                entries: self.entries[from..=to].to_vec(),
            }
        });
        SnapshotJob {
            dir: self.dir.clone(),
            metadata,
            log,
        }
    }

    /// Makes a snapshot written by [`SnapshotJob::write`] the latest one, and the log it
    /// compacts to the WAL: the entries appended since the job was taken are added to the new
    /// WAL, it is fsynced, the snapshot file then the WAL are renamed into place (in that order:
    /// a crash between leaves the new snapshot with the old, longer WAL) and the directory is
    /// fsynced. The loop only writes what was appended meanwhile. Returns `false`, and removes
    /// the files, when the snapshot is no longer of use: the storage has one as new (say, one
    /// installed from the leader meanwhile) or no longer holds the entry it ends at.
    pub fn adopt_snapshot(&mut self, made: MadeSnapshot) -> Result<bool> {
        let meta = made.snapshot.metadata.clone().unwrap_or_default();
        let usable = meta.index > self.snapshot_index()
            && meta.index <= self.hard_state.commit
            && self.term_of(meta.index) == Some(meta.term)
            && made
                .log
                .as_ref()
                .is_none_or(|log| log.base_index >= self.base_index);
        if !usable {
            let _ = fs::remove_file(&made.path);
            if let Some(log) = &made.log {
                let _ = fs::remove_file(&log.path);
            }
            return Ok(false);
        }
        if let Some(log) = &made.log {
            let mut wal = open_append(&log.path).map_err(io_error)?;
            let mut buf = Vec::new();
            for entry in &self.entries[(log.last_index - self.base_index) as usize..] {
                files::encode_record(&WalRecord::Entry(entry.clone()), &mut buf);
            }
            wal.write_all(&buf).map_err(io_error)?;
            wal.sync_data().map_err(io_error)?;
        }
        fs::rename(&made.path, self.dir.join(SNAPSHOT_FILE)).map_err(io_error)?;
        if let Some(log) = &made.log {
            fs::rename(&log.path, self.dir.join(WAL_FILE)).map_err(io_error)?;
        }
        files::sync_dir(&self.dir).map_err(io_error)?;
        self.snapshot = made.snapshot;
        if let Some(log) = made.log {
            let wal = open_append(&self.dir.join(WAL_FILE)).map_err(io_error)?;
            close_in_background(std::mem::replace(&mut self.wal, wal));
            self.wal_dirty = false;
            self.entries
                .drain(..(log.base_index - self.base_index) as usize);
            self.base_index = log.base_index;
            self.base_term = log.base_term;
        }
        Ok(true)
    }

    /// Discards the entries before `compact_index` durably (the WAL is rewritten without them).
    /// A no-op at or below the first index. Refused (`Error::Invariant`) beyond the latest
    /// snapshot's index + 1 (an entry no snapshot covers is never discarded) and `Unavailable`
    /// beyond the last index + 1.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.first_index() {
            return Ok(());
        }
        let point = compact_index - 1;
        if point > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        if point > self.snapshot_index() {
            return Err(Error::Invariant(
                "DiskStorage::compact: the entries to discard are not all covered by a snapshot",
            ));
        }
        let term = self.term_of(point).ok_or(StorageError::Compacted)?;
        let keep = self.entries[(point - self.base_index) as usize..].to_vec();
        self.rewrite_wal(point, term, keep)
    }

    /// Replaces the WAL with one holding `entries` after the base `(index, term)`, durably.
    fn rewrite_wal(&mut self, index: u64, term: u64, entries: Vec<Entry>) -> Result<()> {
        let mut buf = Vec::new();
        files::encode_record(&WalRecord::Base { index, term }, &mut buf);
        for entry in &entries {
            files::encode_record(&WalRecord::Entry(entry.clone()), &mut buf);
        }
        files::write_atomically(&self.dir, WAL_FILE, &buf).map_err(io_error)?;
        let wal = open_append(&self.dir.join(WAL_FILE)).map_err(io_error)?;
        close_in_background(std::mem::replace(&mut self.wal, wal));
        self.wal_dirty = false;
        self.base_index = index;
        self.base_term = term;
        self.entries = entries;
        Ok(())
    }
}

/// Closes a file replaced by a rename on another thread: closing the last handle of a large
/// unlinked file frees its blocks, which takes tens of milliseconds for a few hundred megabytes
/// on ext4, and the loop must not wait for it.
fn close_in_background(file: File) {
    let closer = std::thread::Builder::new().name("close".into());
    // If no thread can be started, the file is closed here (the spawn error drops it).
    let _ = closer.spawn(move || drop(file));
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// The entries a snapshot keeps in the log, after a base.
#[derive(Debug)]
struct KeptLog {
    base_index: u64,
    base_term: u64,
    entries: Vec<Entry>,
}

/// A snapshot to write on a background thread, so that encoding and writing a large one never
/// holds up the node: taken with [`DiskStorageCore::snapshot_job`], written with
/// [`SnapshotJob::write`], adopted with [`DiskStorageCore::adopt_snapshot`]. One at a time: the
/// temporary files have fixed names.
#[derive(Debug)]
pub struct SnapshotJob {
    dir: PathBuf,
    metadata: SnapshotMetadata,
    log: Option<KeptLog>,
}

/// A snapshot written to temporary files, with the compacted WAL, not yet the storage's.
#[derive(Debug)]
pub struct MadeSnapshot {
    snapshot: Snapshot,
    path: PathBuf,
    log: Option<MadeWal>,
}

/// The compacted WAL of a [`MadeSnapshot`]: its temporary file and the last index in it.
#[derive(Debug)]
struct MadeWal {
    path: PathBuf,
    base_index: u64,
    base_term: u64,
    last_index: u64,
}

impl SnapshotJob {
    /// Writes the snapshot with `data` (the application's state at the job's index) and the
    /// compacted WAL to temporary files, fsynced, without touching the storage.
    pub fn write(self, data: Bytes) -> Result<MadeSnapshot> {
        let snapshot = Snapshot {
            data,
            metadata: Some(self.metadata),
        };
        let bytes = files::encode_snapshot(&snapshot);
        let path = files::write_synced(&self.dir, files::MADE_SNAPSHOT_TMP, &bytes);
        let path = path.map_err(io_error)?;
        let log = match self.log {
            None => None,
            Some(kept) => {
                let mut buf = Vec::new();
                let (base_index, base_term) = (kept.base_index, kept.base_term);
                let base = WalRecord::Base {
                    index: base_index,
                    term: base_term,
                };
                files::encode_record(&base, &mut buf);
                let last_index = base_index + kept.entries.len() as u64;
                for entry in kept.entries {
                    files::encode_record(&WalRecord::Entry(entry), &mut buf);
                }
                let path = files::write_synced(&self.dir, files::MADE_WAL_TMP, &buf);
                Some(MadeWal {
                    path: path.map_err(io_error)?,
                    base_index,
                    base_term,
                    last_index,
                })
            }
        };
        Ok(MadeSnapshot {
            snapshot,
            path,
            log,
        })
    }
}

impl MadeSnapshot {
    /// The snapshot's metadata.
    pub fn metadata(&self) -> SnapshotMetadata {
        self.snapshot.metadata.clone().unwrap_or_default()
    }
}

/// Durable [`Storage`] in a directory: a cheap-to-clone handle, shared between the node (which
/// reads through the trait) and the application loop (which writes through [`DiskStorage::wl`]).
#[derive(Debug, Clone)]
pub struct DiskStorage {
    core: Arc<RwLock<DiskStorageCore>>,
}

impl DiskStorage {
    /// Opens the storage in `dir` (creating the directory and empty files if needed) and recovers
    /// it: the newest valid hard state, the snapshot, and the WAL up to its first torn or corrupt
    /// record (the file is truncated there). A storage that has never been initialised has no
    /// snapshot and an empty membership; see [`DiskStorage::initialize`].
    pub fn open(dir: impl AsRef<Path>) -> Result<DiskStorage> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_error)?;
        let lock = files::lock_dir(&dir).map_err(io_error)?;
        let _ = fs::remove_file(dir.join(format!("{SNAPSHOT_FILE}.tmp")));
        let _ = fs::remove_file(dir.join(format!("{WAL_FILE}.tmp")));
        let _ = fs::remove_file(dir.join(files::MADE_SNAPSHOT_TMP));
        let _ = fs::remove_file(dir.join(files::MADE_WAL_TMP));

        let snapshot = match fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => files::decode_snapshot(&bytes)
                .ok_or_else(|| corrupt("the snapshot file is damaged"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(io_error(e)),
        };
        let (hard_state_file, hard_state) =
            HardStateFile::open(&dir.join(HARD_STATE_FILE)).map_err(io_error)?;
        let meta = snapshot.metadata.clone().unwrap_or_default();

        let wal_path = dir.join(WAL_FILE);
        let mut recovery = Recovery::default();
        let (mut base_index, mut base_term, mut entries) = (meta.index, meta.term, Vec::new());
        // A WAL that does not start with its base record is unusable: start the log afresh at
        // the snapshot (only a crash while the very first WAL was created can leave one).
        let mut wal_usable = false;
        match File::open(&wal_path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(io_error)?;
                let (records, valid) = files::decode_records(&bytes);
                if valid < bytes.len() {
                    recovery.truncated_bytes = (bytes.len() - valid) as u64;
                    let file = OpenOptions::new().write(true).open(&wal_path);
                    let file = file.map_err(io_error)?;
                    file.set_len(valid as u64).map_err(io_error)?;
                    file.sync_all().map_err(io_error)?;
                }
                let mut records = records.into_iter();
                if let Some(WalRecord::Base { index, term }) = records.next() {
                    (base_index, base_term) = (index, term);
                    wal_usable = true;
                }
                for record in records {
                    let WalRecord::Entry(entry) = record else {
                        return Err(corrupt("a base record in the middle of the WAL"));
                    };
                    let last = base_index + entries.len() as u64;
                    if entry.index <= base_index || entry.index > last + 1 {
                        return Err(corrupt("a WAL entry out of sequence"));
                    }
                    // A record at or below the last index replaces the log from there on.
                    entries.truncate((entry.index - base_index - 1) as usize);
                    entries.push(entry);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
        if !wal_usable {
            (base_index, base_term) = (meta.index, meta.term);
            let mut buf = Vec::new();
            files::encode_record(
                &WalRecord::Base {
                    index: base_index,
                    term: base_term,
                },
                &mut buf,
            );
            files::write_atomically(&dir, WAL_FILE, &buf).map_err(io_error)?;
        }
        if base_index > meta.index {
            return Err(corrupt("the WAL starts after the snapshot"));
        }

        let mut core = DiskStorageCore {
            wal: open_append(&wal_path).map_err(io_error)?,
            dir: dir.clone(),
            wal_dirty: false,
            hard_state_file,
            _lock: lock,
            hard_state,
            base_index,
            base_term,
            entries,
            snapshot,
            snapshot_wanted: AtomicU64::new(0),
            recovery: Recovery::default(),
        };
        // The log must continue the snapshot: after a crash while installing one it may not.
        if meta.index > 0 && core.term_of(meta.index) != Some(meta.term) {
            recovery.log_reset = true;
            core.rewrite_wal(meta.index, meta.term, Vec::new())?;
        }
        // The commit index is written without fsync, so it may lag the snapshot; and it can
        // never usefully pass the log's end (committed entries are handed out only once in the
        // log, and the leader tells the commit index again).
        let mut repaired = hard_state;
        repaired.commit = hard_state.commit.max(meta.index).min(core.last_index());
        if repaired.term < meta.term {
            repaired.term = meta.term;
            repaired.vote = 0;
        }
        if repaired != hard_state {
            core.set_hard_state(repaired)?;
            core.sync()?;
        }
        files::sync_dir(&dir).map_err(io_error)?;
        core.recovery = recovery;
        Ok(DiskStorage {
            core: Arc::new(RwLock::new(core)),
        })
    }

    /// Whether the storage holds a snapshot (so a membership): false for a new node that waits to
    /// be sent one by a leader.
    pub fn is_initialized(&self) -> bool {
        self.rl().snapshot_index() > 0
    }

    /// Makes an empty storage the storage of a member of a new cluster: installs `snapshot`, the
    /// cluster's first state, which every initial member installs alike.
    pub fn initialize(&self, snapshot: Snapshot) -> Result<()> {
        let mut core = self.wl();
        if core.snapshot_index() > 0 || core.last_index() > 0 {
            return Err(Error::Invariant(
                "DiskStorage::initialize: the storage is already initialised",
            ));
        }
        core.apply_snapshot(snapshot)
    }

    /// Takes the read lock.
    pub fn rl(&self) -> RwLockReadGuard<'_, DiskStorageCore> {
        // A panic while holding the lock leaves the data consistent (no method panics half-way).
        self.core.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the write lock. Do not call it while holding a guard on the same thread.
    pub fn wl(&self) -> RwLockWriteGuard<'_, DiskStorageCore> {
        self.core.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for DiskStorage {
    /// The hard state, and the latest snapshot's membership (empty if there is no snapshot).
    fn initial_state(&self) -> Result<RaftState> {
        let core = self.rl();
        let conf_state = core
            .snapshot
            .metadata
            .as_ref()
            .and_then(|m| m.conf_state.clone())
            .unwrap_or_default();
        Ok(RaftState::new(core.hard_state, conf_state))
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        let core = self.rl();
        if low > high {
            return Err(Error::Invariant("DiskStorage::entries: low > high"));
        }
        if low < core.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if high - 1 > core.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        let range = &core.entries
            [(low - core.first_index()) as usize..(high - core.first_index()) as usize];
        let Some(first) = range.first() else {
            return Ok(Vec::new());
        };
        let count = if max_size == NO_LIMIT {
            range.len()
        } else {
            let mut size = first.encoded_len() as u64;
            1 + range[1..]
                .iter()
                .take_while(|e| {
                    size = size.saturating_add(e.encoded_len() as u64);
                    size <= max_size
                })
                .count()
        };
        Ok(range[..count].to_vec())
    }

    fn term(&self, index: u64) -> Result<u64> {
        let core = self.rl();
        if index < core.base_index {
            return Err(StorageError::Compacted.into());
        }
        core.term_of(index)
            .ok_or_else(|| StorageError::Unavailable.into())
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().first_index())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().last_index())
    }

    /// The latest snapshot if it covers `request_index`; otherwise
    /// `SnapshotTemporarilyUnavailable`, and the request is remembered for
    /// [`DiskStorageCore::take_snapshot_request`] so that the application makes a newer one.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        let core = self.rl();
        let index = core.snapshot_index();
        if index == 0 || index < request_index {
            core.snapshot_wanted
                .fetch_max(request_index.max(1), Ordering::Relaxed);
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        Ok(core.snapshot.clone())
    }
}
