//! Nodes whose durable state lives on `storage-disk` over a simulated disk (issue 16).
//!
//! Such a node writes every Ready it persists to a [`DiskStorage`] on its own seeded [`SimFs`]
//! as well as to the `MemStorage` the core reads, and fsyncs exactly when the Ready asks
//! (`must_sync`). Its `MemStorage` is then only a view: when the node crashes, the disk loses
//! what a power loss may lose (every unsynced write, torn and reordered at sector granularity),
//! the storage is recovered from what is left, and the node restarts from a `MemStorage` rebuilt
//! from the recovered storage. Whatever `storage-disk` gets wrong about durability (an
//! acknowledged entry, a vote or a term lost, a log cut short) thus reaches the core as it would
//! in a real process, and the checker's safety properties catch its consequences. Recovery is
//! also checked directly against what the last fsync made durable.
//!
//! An fsync fails now and then (`Features::disk_sync_errors`); the storage then refuses every
//! write, and the node stops as a real one must (nothing acknowledged since its last good
//! fsync; etcd exits on a failed fsync too) and restarts from the recovered disk.
//!
//! Not modelled here: the core reads the rebuilt `MemStorage`, not the disk storage, so disk read
//! errors, bit flips and misdirected writes are left to `storage-disk`'s own fault tests (they
//! must be detected at recovery, and a node whose disk is damaged must not come back at all,
//! which this simulator's fixed membership does not model).

use std::sync::Arc;

use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{FaultConfig, SimFs};
use storage_disk::{DiskStorage, Options};
use storage_mem::MemStorage;

/// Where each node's storage lives on its simulated disk.
const DIR: &str = "/raft";

/// Small segments, so that rotation and whole-segment compaction happen in short runs.
const SEGMENT_BYTES: u64 = 4 << 10;

/// What the last successful fsync made durable.
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    hard_state: HardState,
    last_index: u64,
    last_term: u64,
    snapshot_index: u64,
}

/// A node's storage on its simulated disk.
pub(crate) struct SimDisk {
    fs: SimFs,
    /// The faults its disk injects while the nemesis runs.
    faults: FaultConfig,
    /// Whether they are on (off while the cluster heals).
    faults_on: bool,
    storage: DiskStorage,
    synced: Synced,
    /// Why the storage refuses writes (an fsync failed), until the node crashes.
    pub failed: Option<String>,
    /// Prints every operation (`RAFT_SIM_DISK_TRACE=<node id>`).
    trace: bool,
    /// The planted bug `IgnoreMustSync`: writes are never fsynced.
    pub ignore_sync: bool,
}

fn open(fs: &SimFs) -> Result<DiskStorage, String> {
    let options = Options {
        segment_bytes: SEGMENT_BYTES,
        ..Options::default()
    };
    DiskStorage::open(Arc::new(fs.clone()), DIR, options).map_err(|e| e.to_string())
}

impl SimDisk {
    /// A new disk holding `initial` (a bootstrap state: a snapshot and a membership), fsynced.
    /// Its faults follow `faults` from then on.
    pub fn new(
        id: u64,
        seed: u64,
        faults: FaultConfig,
        initial: &MemStorage,
    ) -> Result<SimDisk, String> {
        let fs = SimFs::new(seed, FaultConfig::none());
        let storage = open(&fs)?;
        let meta = initial.rl().snapshot_metadata().clone();
        {
            let mut core = storage.wl();
            if meta.index > 0 {
                let snapshot = initial.snapshot(meta.index, 0).map_err(|e| e.to_string())?;
                core.apply_snapshot(snapshot).map_err(|e| e.to_string())?;
            }
            core.set_conf_state(initial.rl().conf_state().clone());
            core.set_hard_state(*initial.rl().hard_state());
            core.sync().map_err(|e| e.to_string())?;
        }
        fs.set_config(faults.clone());
        let mut disk = SimDisk {
            fs,
            faults,
            faults_on: true,
            storage,
            synced: Synced::default(),
            failed: None,
            trace: std::env::var("RAFT_SIM_DISK_TRACE").ok() == Some(id.to_string()),
            ignore_sync: false,
        };
        disk.mark_synced()?;
        Ok(disk)
    }

    /// Records what is durable now.
    fn mark_synced(&mut self) -> Result<(), String> {
        let last_index = self.storage.last_index().map_err(|e| e.to_string())?;
        let last_term = self.storage.term(last_index).map_err(|e| e.to_string())?;
        let core = self.storage.rl();
        self.synced = Synced {
            hard_state: *core.hard_state(),
            last_index,
            last_term,
            snapshot_index: core.snapshot_metadata().index,
        };
        Ok(())
    }

    /// Runs a write; a failure marks the storage failed (the node must stop).
    fn run(
        &mut self,
        write: impl FnOnce(&DiskStorage) -> raft_core::Result<()>,
    ) -> raft_core::Result<()> {
        if let Some(why) = &self.failed {
            return Err(store_error(format!("the disk failed earlier: {why}")));
        }
        let result = write(&self.storage);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }

    /// Writes what a Ready persists, and fsyncs when `sync` (the Ready's `must_sync`).
    pub fn write(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
        sync: bool,
    ) -> raft_core::Result<()> {
        let sync = sync && !self.ignore_sync;
        if self.trace {
            let snap = snapshot.and_then(|s| s.metadata.as_ref().map(|m| (m.index, m.term)));
            let ents: Vec<_> = entries.iter().map(|e| (e.index, e.term)).collect();
            eprintln!("disk: write snapshot {snap:?} entries {ents:?} {hard_state:?} sync {sync}");
        }
        self.run(|storage| {
            let mut core = storage.wl();
            if let Some(snapshot) = snapshot {
                core.apply_snapshot(snapshot.clone())?;
            }
            core.append(entries)?;
            if let Some(hs) = hard_state {
                core.set_hard_state(hs);
            }
            if sync {
                core.sync()?;
            }
            Ok(())
        })?;
        if sync || snapshot.is_some() {
            self.mark_synced().map_err(store_error)?;
        }
        Ok(())
    }

    /// Turns the disk's faults off (the healing phase: a cluster left alone must recover), or
    /// back on. Crashes still lose unsynced writes.
    pub fn set_faults(&mut self, on: bool) {
        self.faults_on = on;
        self.fs.set_config(self.fault_config());
    }

    fn fault_config(&self) -> FaultConfig {
        if self.faults_on {
            self.faults.clone()
        } else {
            FaultConfig::none()
        }
    }

    /// Stores a new commit index (durable with the next fsync).
    pub fn set_commit(&mut self, commit: u64) {
        if self.trace {
            eprintln!("disk: commit {commit}");
        }
        let mut core = self.storage.wl();
        let mut hs = *core.hard_state();
        hs.commit = commit;
        core.set_hard_state(hs);
    }

    /// Snapshots at `index` with membership `conf_state` and compacts the log to start at
    /// `first_kept`; durable when it returns.
    pub fn compact(
        &mut self,
        index: u64,
        conf_state: &ConfState,
        data: bytes::Bytes,
        first_kept: u64,
    ) -> raft_core::Result<()> {
        if self.trace {
            eprintln!("disk: snapshot at {index}, compact to {first_kept}");
        }
        self.run(|storage| {
            let mut core = storage.wl();
            // The membership stored beside the snapshot must be the one as of its index (a
            // restart resumes from it), so it goes first.
            core.set_conf_state(conf_state.clone());
            core.create_snapshot(index, Some(conf_state.clone()), data)?;
            core.compact(first_kept)?;
            core.sync()
        })?;
        self.mark_synced().map_err(store_error)
    }

    /// Power loss and recovery: the disk keeps what it may keep, the storage is reopened, checked
    /// against what the last fsync made durable (`before` is the node's view just before the
    /// crash), and returned as a rebuilt `MemStorage` for the node to restart from.
    pub fn crash_and_recover(&mut self, before: &MemStorage) -> Result<MemStorage, String> {
        if self.trace {
            eprintln!("disk: crash");
        }
        let fs = self.fs.crash();
        // Recovery itself runs on a disk without faults (an fsync failing during recovery would
        // only stop the node again).
        fs.set_config(FaultConfig::none());
        let storage = open(&fs).map_err(|e| format!("recovery failed: {e}"))?;
        self.check_recovered(&storage, before)?;
        let rebuilt = rebuild(&storage)?;
        fs.set_config(self.fault_config());
        self.fs = fs;
        self.storage = storage;
        self.failed = None;
        self.mark_synced()?;
        Ok(rebuilt)
    }

    /// Nothing the last fsync made durable is missing from `recovered`.
    fn check_recovered(&self, recovered: &DiskStorage, before: &MemStorage) -> Result<(), String> {
        let synced = self.synced;
        let core = recovered.rl();
        let hs = *core.hard_state();
        let was = synced.hard_state;
        if hs.term < was.term || (hs.term == was.term && was.vote != 0 && hs.vote != was.vote) {
            return Err(format!(
                "recovery lost a synced term or vote: recovered {hs:?}, synced {was:?}"
            ));
        }
        if hs.commit < was.commit {
            return Err(format!(
                "recovery lost a synced commit index: recovered {hs:?}, synced {was:?}"
            ));
        }
        let snapshot_index = core.snapshot_metadata().index;
        if snapshot_index < synced.snapshot_index {
            return Err(format!(
                "recovery lost a snapshot: recovered one at {snapshot_index}, synced one at {}",
                synced.snapshot_index
            ));
        }
        drop(core);
        // The last synced entry, unless a later (unsynced) write replaced it: then either
        // version may survive, and the checker judges what the node does with it.
        let replaced_later = before.term(synced.last_index).ok() != Some(synced.last_term);
        if synced.last_index > snapshot_index && !replaced_later {
            let term = recovered.term(synced.last_index).ok();
            if term != Some(synced.last_term) {
                return Err(format!(
                    "recovery lost a synced entry: index {} had term {} when synced, recovered \
                     {term:?} (log {:?}..={:?})",
                    synced.last_index,
                    synced.last_term,
                    recovered.first_index(),
                    recovered.last_index()
                ));
            }
        }
        Ok(())
    }
}

/// A `MemStorage` holding exactly what `storage` holds: snapshot, log, hard state, membership.
fn rebuild(storage: &DiskStorage) -> Result<MemStorage, String> {
    let err = |e: raft_core::Error| format!("reading the recovered storage: {e}");
    let (meta, hs, cs) = {
        let core = storage.rl();
        (
            core.snapshot_metadata().clone(),
            *core.hard_state(),
            core.conf_state().clone(),
        )
    };
    let first = storage.first_index().map_err(err)?;
    let last = storage.last_index().map_err(err)?;
    let mem = MemStorage::new();
    let mut core = mem.wl();
    if meta.index > 0 {
        let snapshot = storage.snapshot(meta.index, 0).map_err(err)?;
        if first == meta.index + 1 {
            core.apply_snapshot(snapshot).map_err(err)?;
        } else {
            // The log keeps entries behind the snapshot: start it at its real base, then take
            // the snapshot over the log as the node did.
            let base = Snapshot {
                data: Default::default(),
                metadata: Some(SnapshotMetadata {
                    conf_state: Some(cs.clone()),
                    index: first - 1,
                    term: storage.term(first - 1).map_err(err)?,
                }),
            };
            core.apply_snapshot(base).map_err(err)?;
            let entries = storage.entries(first, last + 1, NO_LIMIT).map_err(err)?;
            core.append(&entries).map_err(err)?;
            core.set_hardstate(hs);
            let snap_cs = meta.conf_state.clone();
            core.create_snapshot(meta.index, snap_cs, snapshot.data)
                .map_err(err)?;
            core.set_conf_state(cs);
            drop(core);
            return Ok(mem);
        }
    }
    if last >= first {
        let entries = storage.entries(first, last + 1, NO_LIMIT).map_err(err)?;
        core.append(&entries).map_err(err)?;
    }
    core.set_hardstate(hs);
    core.set_conf_state(cs);
    drop(core);
    Ok(mem)
}

/// A storage error carrying `message`.
fn store_error(message: String) -> raft_core::Error {
    raft_core::Error::Store(raft_core::StorageError::Other(Box::new(
        std::io::Error::other(message),
    )))
}
