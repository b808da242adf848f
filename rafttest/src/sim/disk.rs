//! Nodes whose durable state lives on `storage-disk` over a simulated disk (issue 16).
//!
//! Such a node writes every Ready it persists to a [`DiskStorage`] on its own seeded [`SimFs`]
//! as well as to a `MemStorage`, and fsyncs exactly when the Ready asks (`must_sync`). Its core
//! reads the disk storage itself (see [`super::store`]): terms and recent entries from memory,
//! older entries and snapshots from the disk, checksums verified, with a small entry cache so
//! that catching up a lagging follower or applying after a restart does read the disk. The
//! `MemStorage` holds what was written: every answer of the disk is checked against it, and the
//! checker's durability properties read it.
//!
//! When the node crashes, the disk loses what a power loss may lose (every unsynced write, torn
//! and reordered at sector granularity), the storage is recovered from what is left and checked
//! against what the last fsync made durable, and the `MemStorage` is rebuilt from it. Whatever
//! `storage-disk` gets wrong about durability (an acknowledged entry, a vote or a term lost, a
//! log cut short) thus reaches the core as it would in a real process, and the checker's safety
//! properties catch its consequences.
//!
//! While the nemesis runs, a disk fails now and then:
//! - an fsync (`Features::disk_sync_errors`): the storage then refuses every write, and the node
//!   stops as a real one must (nothing acknowledged since its last good fsync; etcd exits on a
//!   failed fsync too) and restarts from the recovered disk;
//! - a read (`Features::disk_read_errors`, an I/O error, transient): the core gives up on that
//!   read and tries again later;
//! - on at most one node per run (`Features::damaged_disk`, see `sim::damage`), the medium: bits
//!   flip at rest in records already written, in sealed segments, the live segment or the
//!   snapshot, or writes land one sector away from where they were aimed, or the state file's
//!   writes are misdirected or lost. The storage must detect the damage when it reads it (the
//!   node then stops for good) or when it recovers (the node does not come back), and never
//!   serve it; a state file write that never landed it must repair from the log's witness of
//!   the checkpoint, and come back whole.

use std::path::Path;
use std::sync::{Arc, Mutex};

use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Storage, NO_LIMIT};
use rand::rngs::Xoshiro256PlusPlus;
use rand::RngExt;
use storage_disk::io::{DamagedWrite, FaultConfig, Fs, SimFs};
use storage_disk::{DiskStorage, Options};
use storage_mem::MemStorage;

use super::store::{DiskReads, Observer, ReadWatch, SimStore};

/// Where each node's storage lives on its simulated disk.
const DIR: &str = "/raft";

/// The state file of the storage in [`DIR`].
const STATE_FILE: &str = "/raft/state";

/// Small segments, so that rotation and whole-segment compaction happen in short runs.
const SEGMENT_BYTES: u64 = 4 << 10;

/// The header at the start of every segment (`storage-disk`'s segment format): flips at rest
/// land in the records after it.
const SEGMENT_HEADER_BYTES: u64 = 24;

/// How far back from the end of the live segment a flip among its newest records may land.
const RECENT_BYTES: u64 = 1024;

/// What the last successful fsync made durable (of a node, or of one group in a shared log).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Synced {
    pub hard_state: HardState,
    pub last_index: u64,
    pub last_term: u64,
    pub snapshot_index: u64,
}

/// What recovery from a power loss made of a node's disk.
pub(crate) enum Recovered {
    /// The storage came back with everything the last fsync made durable: the node restarts
    /// from this `MemStorage`, rebuilt from it.
    Rebuilt(MemStorage),
    /// The disk was damaged, and the node must not come back: recovery refused it (`detected`),
    /// or, which `storage-disk` documents it cannot always tell, came back without state the last
    /// fsync made durable (the damage hit the last synced batch, and the crash its sync mark).
    Condemned {
        /// Why, in words.
        reason: String,
        /// Whether recovery itself refused the disk.
        detected: bool,
    },
}

/// The faults injected into a disk, over all its lives.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DiskFaults {
    /// Transient read errors.
    pub read_errors: u64,
    /// Bits flipped at rest in a sealed segment, the live segment, and the snapshot file.
    pub flips: [u64; 3],
    /// Writes that landed one sector away.
    pub misdirected_writes: u64,
    /// Writes the device lost.
    pub lost_writes: u64,
    /// Of the writes misdirected or lost, those to the state file.
    pub state_file_writes: u64,
    /// Recoveries that rolled a checkpoint the state file lost forward from the log.
    pub rolled_forward: u64,
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
    /// The planted bug `ReadErrorAsEmptyPayload`.
    pub empty_on_error: bool,
    /// The budget of the entry cache (`Options::cache_bytes`).
    cache_bytes: usize,
    /// When a segment is full (`Options::segment_bytes`).
    segment_bytes: u64,
    /// The faults the core's reads met, and the corruption they found (a node whose storage
    /// reported corruption never starts again).
    watch: Arc<Mutex<ReadWatch>>,
    /// Set while the simulator's checks read the node's log.
    pub observer: Observer,
    /// The faults injected in earlier lives.
    past: DiskFaults,
    /// The writes misdirected or lost in earlier lives.
    past_writes: Vec<DamagedWrite>,
    /// The bits flipped at rest, in words (empty: none).
    pub damage: Vec<String>,
}

fn open(fs: &SimFs, cache_bytes: usize, segment_bytes: u64) -> Result<DiskStorage, String> {
    let options = Options {
        segment_bytes,
        cache_bytes,
        ..Options::default()
    };
    DiskStorage::open(Arc::new(fs.clone()), DIR, options).map_err(|e| e.to_string())
}

impl SimDisk {
    /// A new disk holding `initial` (a bootstrap state: a snapshot and a membership), fsynced,
    /// with an entry cache of `cache_bytes`. Its faults follow `faults` from then on.
    pub fn new(
        id: u64,
        seed: u64,
        faults: FaultConfig,
        cache_bytes: usize,
        initial: &MemStorage,
    ) -> Result<SimDisk, String> {
        let fs = SimFs::new(seed, FaultConfig::none());
        let storage = open(&fs, cache_bytes, SEGMENT_BYTES)?;
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
            empty_on_error: false,
            cache_bytes,
            segment_bytes: SEGMENT_BYTES,
            watch: Arc::default(),
            observer: Observer::default(),
            past: DiskFaults::default(),
            past_writes: Vec::new(),
            damage: Vec::new(),
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
        if !on {
            self.fs.disarm_writes();
        }
    }

    fn fault_config(&self) -> FaultConfig {
        if self.faults_on {
            self.faults.clone()
        } else {
            FaultConfig::none()
        }
    }

    /// The planted bug `ForgetVoteOnRestart`: the storage holds `hard_state` (term and vote
    /// forgotten) from now on, as if it had never stored them.
    pub fn forget_vote(&mut self, hard_state: HardState) {
        self.storage.wl().set_hard_state(hard_state);
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

    /// What the core reads: this disk's storage, checked against `written` (what the node wrote).
    pub fn reader(&self, written: &MemStorage) -> SimStore {
        SimStore::Disk(DiskReads::new(
            self.storage.clone(),
            written.clone(),
            self.watch.clone(),
            self.observer.clone(),
            self.empty_on_error,
        ))
    }

    /// The faults and corruption the core's reads met.
    pub fn watch(&self) -> std::sync::MutexGuard<'_, ReadWatch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The faults injected into this disk so far.
    pub fn faults(&self) -> DiskFaults {
        let now = self.fs.injected();
        let state_file_writes = self
            .damaged_writes()
            .iter()
            .filter(|w| is_state_file(w))
            .count() as u64;
        DiskFaults {
            read_errors: self.past.read_errors + now.read_errors,
            flips: self.past.flips,
            misdirected_writes: self.past.misdirected_writes + now.misdirected_writes,
            lost_writes: self.past.lost_writes + now.lost_writes,
            state_file_writes,
            rolled_forward: self.past.rolled_forward,
        }
    }

    /// The writes misdirected or lost so far, over all lives.
    fn damaged_writes(&self) -> Vec<DamagedWrite> {
        let mut writes = self.past_writes.clone();
        writes.extend(self.fs.damaged_writes());
        writes
    }

    /// Unless a fault armed earlier still waits for one, the next write to the state file is
    /// lost (`lost`) or misdirected (while faults are on). Returns whether it armed one.
    pub fn damage_next_state_file_write(&mut self, lost: bool) -> bool {
        if !self.faults_on || self.fs.armed_writes() > 0 {
            return false;
        }
        if lost {
            self.fs.lose_next_write(Path::new(STATE_FILE));
        } else {
            self.fs.misdirect_next_write(Path::new(STATE_FILE));
        }
        true
    }

    /// Reopens the storage with an entry cache of `cache_bytes` and segments of
    /// `segment_bytes` (before the node starts).
    pub fn reopen(&mut self, cache_bytes: usize, segment_bytes: u64) -> Result<(), String> {
        self.fs.set_config(FaultConfig::none());
        self.cache_bytes = cache_bytes;
        self.segment_bytes = segment_bytes;
        self.storage = open(&self.fs, cache_bytes, segment_bytes)?;
        self.fs.set_config(self.fault_config());
        self.mark_synced()
    }

    /// From now on, each write lands one sector away from where it was aimed with probability
    /// `p` while faults are on.
    pub fn set_misdirected_writes(&mut self, p: f64) {
        self.faults.misdirected_write = p;
        self.fs.set_config(self.fault_config());
    }

    /// The damage done to the medium, in words.
    pub fn describe_damage(&self) -> String {
        let mut damage = self.damage.clone();
        for write in self.damaged_writes() {
            let path = write
                .path
                .as_ref()
                .map_or("a removed file".to_string(), |p| p.display().to_string());
            damage.push(match write.landed {
                Some(at) => format!(
                    "a write of {} bytes to {path} at byte {} landed at byte {at}",
                    write.len, write.offset
                ),
                None => format!(
                    "a write of {} bytes to {path} at byte {} was lost",
                    write.len, write.offset
                ),
            });
        }
        if damage.is_empty() {
            "none injected".to_string()
        } else {
            damage.join("; ")
        }
    }

    /// Whether the medium was damaged (bits flipped, writes misdirected or lost): only then may
    /// the storage report corruption.
    pub fn damaged(&self) -> bool {
        !self.damage.is_empty() || !self.damaged_writes().is_empty()
    }

    /// Whether the medium was damaged anywhere but in the state file's writes.
    fn damaged_beyond_the_state_file(&self) -> bool {
        !self.damage.is_empty() || self.damaged_writes().iter().any(|w| !is_state_file(w))
    }

    /// Why the disk must have come back whole, in words.
    fn only_state_file_damage(&self) -> String {
        format!(
            "its only damage was to its state file ({}), which the log's checkpoint witnesses \
             repair",
            self.describe_damage()
        )
    }

    /// Whether a write to the state file was misdirected or lost.
    fn state_file_damaged(&self) -> bool {
        self.damaged_writes().iter().any(is_state_file)
    }

    /// Flips one bit at rest, on the medium and in the page cache (silent corruption): in the
    /// snapshot file one time in four, else in the records of a sealed segment one time in two
    /// (if there is one), else in the live segment's. Returns where, in words.
    pub fn flip_at_rest(&mut self, rng: &mut Xoshiro256PlusPlus) -> Option<String> {
        let dir = Path::new(DIR);
        let names = self.fs.list(dir).ok()?;
        let snapshot = names.iter().find(|n| n.ends_with(".snap"));
        let segments: Vec<&String> = names.iter().filter(|n| n.ends_with(".log")).collect();
        let live = segments.iter().max().copied();
        // Only bytes written count: segments are zero-filled ahead of their records.
        let written = |name: &String| {
            let contents = self.fs.contents(&dir.join(name))?;
            Some(contents.iter().rposition(|b| *b != 0)? as u64 + 1)
        };
        // A segment's records: what follows its header, up to the zeros ahead.
        let records = |name: &String| {
            let end = written(name)?;
            (end > SEGMENT_HEADER_BYTES).then_some((SEGMENT_HEADER_BYTES, end))
        };
        let sealed: Vec<&String> = segments
            .iter()
            .copied()
            .filter(|n| Some(*n) != live)
            .collect();
        let (name, offset) = match snapshot {
            Some(snap) if rng.random_bool(0.25) => (snap, rng.random_range(0..written(snap)?)),
            _ if !sealed.is_empty() && rng.random_bool(0.5) => {
                // A byte drawn over every sealed segment's records.
                let extents: Vec<(&String, (u64, u64))> = sealed
                    .iter()
                    .filter_map(|n| Some((*n, records(n)?)))
                    .collect();
                let total: u64 = extents.iter().map(|(_, (from, to))| to - from).sum();
                if total == 0 {
                    return None;
                }
                let mut at = rng.random_range(0..total);
                let mut chosen = None;
                for (name, (from, to)) in extents {
                    if at < to - from {
                        chosen = Some((name, from + at));
                        break;
                    }
                    at -= to - from;
                }
                chosen?
            }
            _ => {
                let live = live?;
                let (from, to) = records(live)?;
                // Half the time among the newest records, which a lagging follower or the
                // application is the likeliest to read back soon.
                let start = if rng.random_bool(0.5) {
                    to.saturating_sub(RECENT_BYTES).max(from)
                } else {
                    from
                };
                (live, rng.random_range(start..to))
            }
        };
        let bit = rng.random_range(0..8u8);
        if !self.fs.flip_bit(&dir.join(name), offset, bit) {
            return None;
        }
        let kind = if name.ends_with(".snap") {
            2
        } else if Some(name) == live {
            1
        } else {
            0
        };
        self.past.flips[kind] += 1;
        let what = format!(
            "bit {bit} of byte {offset} of {} {name} flipped at rest",
            ["sealed segment", "live segment", "snapshot"][kind]
        );
        self.damage.push(what.clone());
        Some(what)
    }

    /// Power loss and recovery: the disk keeps what it may keep, the storage is reopened, checked
    /// against what the last fsync made durable (`before` is the node's view just before the
    /// crash), and returned as a rebuilt `MemStorage` for the node to restart from. A damaged
    /// disk that recovery refuses, or that comes back without durable state, is condemned; an
    /// undamaged one, or one whose only damage was to its state file's writes (which the log's
    /// checkpoint witnesses repair), must come back whole (an error otherwise).
    pub fn crash_and_recover(&mut self, before: &MemStorage) -> Result<Recovered, String> {
        if self.trace {
            eprintln!("disk: crash");
        }
        let injected = self.fs.injected();
        self.past.read_errors += injected.read_errors;
        self.past.misdirected_writes += injected.misdirected_writes;
        self.past.lost_writes += injected.lost_writes;
        self.past_writes.extend(self.fs.damaged_writes());
        self.fs = self.fs.crash();
        // Recovery itself runs on a disk without faults (an fsync failing during recovery would
        // only stop the node again).
        self.fs.set_config(FaultConfig::none());
        // Damage to the state file alone (a slot write that never landed) is what the log's
        // checkpoint witnesses repair: recovery must neither refuse the disk nor miss it.
        let elsewhere = self.damaged_beyond_the_state_file();
        let state_file = self.state_file_damaged();
        let condemned =
            |reason: String, detected: bool| Ok(Recovered::Condemned { reason, detected });
        let storage = match open(&self.fs, self.cache_bytes, self.segment_bytes) {
            Ok(storage) => storage,
            Err(e) if elsewhere => return condemned(format!("recovery refused it: {e}"), true),
            Err(e) if state_file => {
                return Err(format!(
                    "recovery refused a disk although {}: {e}",
                    self.only_state_file_damage()
                ))
            }
            Err(e) => return Err(format!("recovery failed: {e}")),
        };
        let rolled_forward = storage.rl().recovery().rolled_forward.clone();
        if let Some(rolled) = rolled_forward {
            if !state_file {
                return Err(format!(
                    "recovery rolled a checkpoint forward though no write to the state file was \
                     damaged: {rolled:?}"
                ));
            }
            self.past.rolled_forward += 1;
        }
        match self.check_recovered(&storage, before) {
            Ok(()) => {}
            Err(e) if !elsewhere && state_file => {
                return Err(format!(
                    "recovery missed a lost state file write ({e}), although {}",
                    self.only_state_file_damage()
                ))
            }
            Err(e) if elsewhere => {
                let torn = match &storage.rl().recovery().torn_tail {
                    Some(t) => format!(
                        "; it cut a torn tail of {} bytes at byte {} of {} ({:?})",
                        t.bytes_dropped,
                        t.offset,
                        t.path.display(),
                        t.shape
                    ),
                    None => String::new(),
                };
                return condemned(
                    format!(
                        "recovery did not notice the damage ({e}{torn}; the damage: {})",
                        self.describe_damage()
                    ),
                    false,
                );
            }
            Err(e) => return Err(e),
        }
        let rebuilt = rebuild(&storage)?;
        self.fs.set_config(self.fault_config());
        self.storage = storage;
        self.failed = None;
        self.mark_synced()?;
        Ok(Recovered::Rebuilt(rebuilt))
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

/// Whether `write` was aimed at the state file.
fn is_state_file(write: &DamagedWrite) -> bool {
    write.path.as_deref() == Some(Path::new(STATE_FILE))
}

/// A storage error carrying `message`.
fn store_error(message: String) -> raft_core::Error {
    raft_core::Error::Store(raft_core::StorageError::Other(Box::new(
        std::io::Error::other(message),
    )))
}
