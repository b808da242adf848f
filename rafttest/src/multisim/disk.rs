//! Nodes whose groups all live in one shared [`MultiLog`] on a simulated disk (issues 16 and 17).
//!
//! Such a node persists every Ready batch into its log with one `write` and, when any group of
//! the batch asks for it (`ReadyBatch::must_sync`), exactly one fsync, and acknowledges the batch
//! only after that. The core reads each group from the log itself (a [`GroupStorage`]), so what
//! the log gets wrong reaches the core as it would in a real process. The disk is a seeded
//! [`SimFs`]: a power loss keeps any subset of the sectors written since the last fsync (torn
//! and reordered writes), and an fsync fails now and then (`MultiFeatures::disk_sync_errors`);
//! the log then refuses every write and the node stops as a real one must (it acknowledges
//! nothing after the failure) and restarts from what its disk kept.
//!
//! A crash recovers the log from the disk a power loss leaves, then checks every group against
//! what the last successful fsync made durable (the same checks as the single-group simulator's
//! `sim::disk`): its term and vote, its commit index, its snapshot, and its last synced entry
//! unless a later write replaced it. A crash while a batch waits for its fsync may cut the power
//! in the middle of that batch's write or fsync (`SimFs::halt_at_point`), which is what leaves
//! torn tails for recovery to cut.
//!
//! While the core runs (a Ready taken, an envelope stepped, a tick, a proposal), a read of the
//! disk fails now and then with an I/O error (`MultiFeatures::disk_read_errors`), which the core
//! meets as a real one would: the driver reports it for that group (`ReadyBatch::failures`,
//! `StepReport::storage_errors`), the group is left as it was and tries again later. The
//! simulator's own checks read without faults. A read error reported as anything but a
//! transient I/O error is a violation (see `MultiSim::take_ready`).
//!
//! Not modelled here: bit flips and misdirected writes (the single-group simulator injects them
//! on `DiskStorage`, and `storage-disk`'s own fault tests cover `MultiLog`'s checksums), and log
//! compaction (this simulator's groups never compact, so the log frees segments only by copying
//! lagging groups' entries forward).

use std::sync::Arc;

use raft_core::{Ready, Storage};
use storage_disk::io::{FaultConfig, SimFs};
use storage_disk::{MultiLog, MultiOptions as LogOptions, WriteBatch};
use storage_mem::MemStorage;

use super::node::DiskGroup;
use super::options::{MultiFeatures, MultiPlantedBug};
use crate::sim::disk::Synced;

/// Where each node's log lives on its simulated disk.
const DIR: &str = "/multi";

/// What a node's disk did, over all its lives.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskCounters {
    /// Batches written into the log.
    pub batches: u64,
    /// Of those, the batches written with an fsync (some group asked for `must_sync`).
    pub synced_batches: u64,
    /// The groups in those synced batches.
    pub synced_groups: u64,
    /// Every successful file fsync: the batches', and those of segment rotations, checkpoints
    /// and snapshot files.
    pub fsyncs: u64,
    /// Logs recovered after a power loss.
    pub recoveries: u64,
    /// Recoveries that cut a torn tail off the log.
    pub torn_tails: u64,
    /// Fsyncs that failed (each stopped the node).
    pub failed_fsyncs: u64,
    /// Reads of the disk that failed with an injected I/O error while the core ran.
    pub read_errors: u64,
    /// Those errors as the driver reported them to the application, per group (a failed read
    /// that the core only logs, such as a leader's read of entries to send, is not reported).
    pub read_errors_reported: u64,
    /// Crashes that cut the power in the middle of a batch's write or fsync.
    pub power_cuts: u64,
}

impl DiskCounters {
    /// Adds `other` to these counters.
    pub fn add(&mut self, other: &DiskCounters) {
        self.batches += other.batches;
        self.synced_batches += other.synced_batches;
        self.synced_groups += other.synced_groups;
        self.fsyncs += other.fsyncs;
        self.recoveries += other.recoveries;
        self.torn_tails += other.torn_tails;
        self.failed_fsyncs += other.failed_fsyncs;
        self.read_errors += other.read_errors;
        self.read_errors_reported += other.read_errors_reported;
        self.power_cuts += other.power_cuts;
    }
}

/// Why a batch was not persisted.
pub(crate) enum WriteFailure {
    /// The disk failed (an fsync, or the power): the node must stop.
    Stop(String),
    /// The log refused the batch without any I/O failure: the core asked for something the
    /// storage contract forbids, or the log is wrong. A violation.
    Refused(String),
}

/// A node's shared log on its simulated disk.
pub(crate) struct NodeDisk {
    fs: SimFs,
    /// The faults the disk injects while the faulty phase runs.
    faults: FaultConfig,
    faults_on: bool,
    /// The core is reading (read errors are injected only then, see
    /// [`core_reading`](Self::core_reading)).
    core_reads: bool,
    options: LogOptions,
    log: MultiLog,
    /// Per group (group `g` at `g - 1`).
    synced: Vec<Synced>,
    /// Groups written since the last successful fsync, and a flag per group for them.
    unsynced: Vec<u64>,
    is_unsynced: Vec<bool>,
    /// Counters of this and earlier lives; `fsyncs` and `read_errors` leave out the current
    /// disk's.
    counters: DiskCounters,
    /// The current disk's fsyncs that made the bootstrap state durable (not counted).
    bootstrap_fsyncs: u64,
    /// The planted bug `DiskSkipsFsync`.
    skip_fsync: bool,
    /// The planted bug `ReadErrorAsEmptyPayload`.
    empty_on_read_error: bool,
}

fn open(fs: &SimFs, options: &LogOptions) -> Result<MultiLog, String> {
    MultiLog::open(Arc::new(fs.clone()), DIR, options.clone()).map_err(|e| e.to_string())
}

impl NodeDisk {
    /// A new disk holding every group `1..=groups` as `MemStorage::bootstrap` makes it (the
    /// bootstrap snapshot at index 1 with `nodes` voters), fsynced. Its faults follow the
    /// features from then on.
    pub fn new(
        seed: u64,
        f: &MultiFeatures,
        groups: u64,
        planted_bug: Option<MultiPlantedBug>,
    ) -> Result<NodeDisk, String> {
        let bootstrap = MemStorage::bootstrap(1..=f.nodes, []).map_err(|e| e.to_string())?;
        let snapshot = bootstrap.snapshot(1, 0).map_err(|e| e.to_string())?;
        let options = LogOptions {
            segment_bytes: f.disk_segment_bytes,
            cache_bytes_per_group: f.disk_cache_bytes,
            rewrite_lag_segments: f.disk_rewrite_lag,
        };
        let fs = SimFs::new(seed, FaultConfig::none());
        let log = open(&fs, &options)?;
        {
            let ids: Vec<u64> = (1..=groups).collect();
            let mut core = log.wl();
            core.create_groups(&ids).map_err(|e| e.to_string())?;
            let batches = ids.iter().map(|id| {
                let batch = WriteBatch {
                    snapshot: Some(snapshot.clone()),
                    ..WriteBatch::default()
                };
                (*id, batch)
            });
            core.write(batches, true).map_err(|e| e.to_string())?;
        }
        let expected = bootstrap.initial_state().map_err(|e| e.to_string())?;
        let got = log.group(1).initial_state().map_err(|e| e.to_string())?;
        if got != expected {
            return Err(format!(
                "a group bootstrapped in the shared log starts from {got:?}, in a MemStorage \
                 from {expected:?}"
            ));
        }
        let faults = FaultConfig {
            sync_error: f.disk_sync_errors,
            keep_unsynced: f.disk_keep_unsynced,
            read_error: f.disk_read_errors,
            ..FaultConfig::none()
        };
        let bootstrap_fsyncs = fs.sync_count();
        let mut disk = NodeDisk {
            fs,
            faults,
            faults_on: true,
            core_reads: false,
            options,
            log,
            synced: vec![Synced::default(); groups as usize],
            unsynced: (1..=groups).collect(),
            is_unsynced: vec![true; groups as usize],
            counters: DiskCounters::default(),
            bootstrap_fsyncs,
            skip_fsync: planted_bug == Some(MultiPlantedBug::DiskSkipsFsync),
            empty_on_read_error: planted_bug == Some(MultiPlantedBug::ReadErrorAsEmptyPayload),
        };
        disk.fs.set_config(disk.fault_config());
        disk.mark_synced()?;
        Ok(disk)
    }

    /// Group `id`'s storage in the current log, as the core reads it.
    pub fn group(&self, id: u64) -> DiskGroup {
        DiskGroup {
            storage: self.log.group(id),
            empty_on_read_error: self.empty_on_read_error,
        }
    }

    /// The counters of every life so far.
    pub fn counters(&self) -> DiskCounters {
        let mut counters = self.counters;
        counters.fsyncs += self.fs.sync_count() - self.bootstrap_fsyncs;
        counters.read_errors += self.fs.injected().read_errors;
        counters
    }

    /// Records what the groups written since the last fsync hold now: the fsync made it durable.
    fn mark_synced(&mut self) -> Result<(), String> {
        let err = |e: raft_core::Error| format!("reading the shared log: {e}");
        for id in self.unsynced.drain(..) {
            let position = id as usize - 1;
            self.is_unsynced[position] = false;
            let storage = self.log.group(id);
            let last_index = storage.last_index().map_err(err)?;
            let last_term = storage.term(last_index).map_err(err)?;
            let core = self.log.rl();
            let mut hard_state = *core.hard_state(id).map_err(|e| e.to_string())?;
            // The log records the commit index capped at the group's last entry.
            hard_state.commit = hard_state.commit.min(last_index);
            let snapshot_index = core.snapshot_metadata(id).map_err(|e| e.to_string())?.index;
            drop(core);
            self.synced[position] = Synced {
                hard_state,
                last_index,
                last_term,
                snapshot_index,
            };
        }
        Ok(())
    }

    /// Writes the groups' Readys of one batch with one `write`, and fsyncs once if `sync`. A
    /// write that starts no segment, frees none and installs no snapshot must make exactly one
    /// fsync if `sync` and it wrote records, none if not `sync`.
    pub fn write(&mut self, readys: &[(u64, &Ready)], sync: bool) -> Result<(), WriteFailure> {
        let result = self.write_batch(readys, sync);
        if let Err(WriteFailure::Stop(_)) = &result {
            self.counters.failed_fsyncs += 1;
        }
        result
    }

    /// Writes a batch as [`write`](Self::write) does, but the power fails after `operations`
    /// more mutating disk operations (see `SimFs::halt_at_point`): the write or its fsync stops
    /// there, or, if it needs fewer, the batch is durable and the power fails right after.
    /// [`crash_and_recover`](Self::crash_and_recover) must follow.
    pub fn write_cut_by_power(
        &mut self,
        readys: &[(u64, &Ready)],
        sync: bool,
        operations: u64,
    ) -> Result<(), String> {
        self.counters.power_cuts += 1;
        self.fs.halt_at_point(self.fs.points() + operations);
        match self.write_batch(readys, sync) {
            Ok(()) | Err(WriteFailure::Stop(_)) => Ok(()),
            // Once the power is gone every operation fails, reads included, and the log may
            // report the failed read (which does not poison it) rather than a failed write.
            Err(WriteFailure::Refused(_)) if self.fs.is_halted() => Ok(()),
            Err(WriteFailure::Refused(why)) => Err(why),
        }
    }

    fn write_batch(&mut self, readys: &[(u64, &Ready)], sync: bool) -> Result<(), WriteFailure> {
        let sync = sync && !self.skip_fsync;
        let batches: Vec<(u64, WriteBatch)> = readys
            .iter()
            .map(|(id, ready)| (*id, WriteBatch::from_ready(ready)))
            .collect();
        let installs = batches.iter().any(|(_, b)| b.snapshot.is_some());
        for (id, _) in &batches {
            let position = *id as usize - 1;
            if !std::mem::replace(&mut self.is_unsynced[position], true) {
                self.unsynced.push(*id);
            }
        }
        let (fsyncs, writes) = (self.fs.sync_count(), self.fs.write_count());
        let segments = self.segment_range();
        let result = self.log.wl().write(batches, sync);
        if let Err(error) = result {
            return Err(match self.log.rl().failure() {
                Some(_) => WriteFailure::Stop(error.to_string()),
                None => WriteFailure::Refused(format!("the shared log refused a batch: {error}")),
            });
        }
        self.counters.batches += 1;
        if sync {
            self.counters.synced_batches += 1;
            self.counters.synced_groups += readys.len() as u64;
            self.mark_synced().map_err(WriteFailure::Refused)?;
        }
        // A new segment (its predecessor is closed with an fsync), and segments freed (after an
        // fsync and a checkpoint) cost fsyncs of their own.
        if self.segment_range() == segments && !installs {
            // One fsync for the whole batch when it asks for one and wrote records (none if it
            // wrote nothing new, unless earlier unsynced writes are waiting), none otherwise.
            let fsyncs = self.fs.sync_count() - fsyncs;
            let wrote = self.fs.write_count() > writes;
            let right = if sync {
                fsyncs <= 1 && (fsyncs == 1 || !wrote)
            } else {
                fsyncs == 0
            };
            if !right {
                return Err(WriteFailure::Refused(format!(
                    "the shared log made {fsyncs} fsyncs for one batch of {} groups (sync {sync}, \
                     records written {wrote})",
                    readys.len()
                )));
            }
        }
        Ok(())
    }

    /// The log's first and last segment.
    fn segment_range(&self) -> (Option<u64>, Option<u64>) {
        let ids = self.log.rl().segment_ids();
        (ids.first().copied(), ids.last().copied())
    }

    /// Turns the disk's faults off (the healed phase: a cluster left alone must recover), or
    /// back on. Crashes still lose unsynced writes.
    pub fn set_faults(&mut self, on: bool) {
        self.faults_on = on;
        self.fs.set_config(self.fault_config());
    }

    /// Counts a read error that the driver reported for a group.
    pub fn read_error_reported(&mut self) {
        self.counters.read_errors_reported += 1;
    }

    /// The core starts (`true`) or stops reading the disk: read errors are injected only while
    /// it does, never into the simulator's own checks nor into a write.
    pub fn core_reading(&mut self, on: bool) {
        if self.core_reads != on {
            self.core_reads = on;
            if self.faults_on && self.faults.read_error > 0.0 {
                self.fs.set_config(self.fault_config());
            }
        }
    }

    fn fault_config(&self) -> FaultConfig {
        if self.faults_on {
            FaultConfig {
                read_error: if self.core_reads {
                    self.faults.read_error
                } else {
                    0.0
                },
                ..self.faults.clone()
            }
        } else {
            FaultConfig {
                keep_unsynced: self.faults.keep_unsynced,
                ..FaultConfig::none()
            }
        }
    }

    /// Power loss and recovery: the disk keeps what it may keep, the log is reopened from it and
    /// every group is checked against what the last fsync made durable.
    pub fn crash_and_recover(&mut self) -> Result<(), String> {
        // Before the crash: the term the log held at each group's last synced entry (a later,
        // unsynced write may have replaced it, and then either version may survive).
        let before: Vec<Option<u64>> = self
            .synced
            .iter()
            .enumerate()
            .map(|(position, synced)| {
                self.log
                    .group(position as u64 + 1)
                    .term(synced.last_index)
                    .ok()
            })
            .collect();
        self.counters.fsyncs += self.fs.sync_count() - self.bootstrap_fsyncs;
        self.counters.read_errors += self.fs.injected().read_errors;
        self.bootstrap_fsyncs = 0;
        let fs = self.fs.crash();
        // Recovery runs on a disk without faults (a failing fsync there would only stop the
        // node again).
        fs.set_config(FaultConfig::none());
        let log = open(&fs, &self.options).map_err(|e| format!("recovery failed: {e}"))?;
        self.counters.recoveries += 1;
        if log.rl().recovery().torn_tail.is_some() {
            self.counters.torn_tails += 1;
        }
        self.check_recovered(&log, &before)?;
        fs.set_config(self.fault_config());
        self.fs = fs;
        self.log = log;
        // What recovery found is what the disk holds for sure now.
        self.unsynced = (1..=self.synced.len() as u64).collect();
        self.is_unsynced.fill(true);
        self.mark_synced()
    }

    /// Nothing the last fsync made durable is missing from any group of `recovered`.
    fn check_recovered(&self, recovered: &MultiLog, before: &[Option<u64>]) -> Result<(), String> {
        for (position, synced) in self.synced.iter().enumerate() {
            let id = position as u64 + 1;
            let lost =
                |what: String| format!("recovery of the shared log lost group {id}'s {what}");
            let storage = recovered.group(id);
            let snapshot_index = recovered.rl().snapshot_metadata(id).map(|m| m.index);
            let (Ok(state), Ok(snapshot_index)) = (storage.initial_state(), snapshot_index) else {
                return Err(lost("whole state: the group is gone".to_string()));
            };
            let (hs, was) = (state.hard_state, synced.hard_state);
            if hs.term < was.term || (hs.term == was.term && was.vote != 0 && hs.vote != was.vote) {
                return Err(lost(format!(
                    "synced term or vote: recovered {hs:?}, synced {was:?}"
                )));
            }
            if hs.commit < was.commit {
                return Err(lost(format!(
                    "synced commit index: recovered {hs:?}, synced {was:?}"
                )));
            }
            if snapshot_index < synced.snapshot_index {
                return Err(lost(format!(
                    "snapshot: recovered one at {snapshot_index}, synced one at {}",
                    synced.snapshot_index
                )));
            }
            let replaced_later = before[position] != Some(synced.last_term);
            if synced.last_index > snapshot_index && !replaced_later {
                let term = storage.term(synced.last_index).ok();
                if term != Some(synced.last_term) {
                    return Err(lost(format!(
                        "synced entry: index {} had term {} when synced, recovered {term:?} \
                         (log {:?}..={:?})",
                        synced.last_index,
                        synced.last_term,
                        storage.first_index(),
                        storage.last_index()
                    )));
                }
            }
        }
        Ok(())
    }
}
