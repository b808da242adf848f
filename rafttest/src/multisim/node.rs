//! One simulated node: a [`MultiRaft`] over one storage per group, and the application's
//! pipeline around it. A node keeps its groups either in one shared log on a simulated disk
//! (see `disk.rs`; the core reads each group from the log) or, as described here, in one
//! `MemStorage` per group that holds exactly what the node synced.
//!
//! Durability is modelled with two steps per Ready batch. Taking the batch (`ready`) writes
//! nothing: its early messages leave at once (a leader's appends go out while it writes), and the
//! batch is held as written but not synced. The batch's fsync (a later event) writes every group
//! of it into that group's `MemStorage`, which therefore holds exactly what the node synced: it
//! is the durable copy, and a restart rebuilds the `MultiRaft` from it. A crash before the fsync
//! keeps a random prefix of the batch's groups (a log file written in order and torn at a record
//! boundary) and loses the rest.
//!
//! The state machine persists its applied index with each fsync: what a batch's fsync records is
//! the index applied before that batch, so a restart re-applies the last batch's entries (and
//! `Config::applied` is always at or below the durable commit index).

use raft_core::eraftpb::{Entry, Snapshot};
use raft_core::{Config, RaftState, Ready, Storage};
use raft_multi::{MultiConfig, MultiRaft, ReadyBatch};
use storage_disk::{DiskError, GroupStorage};
use storage_mem::MemStorage;

use super::disk::NodeDisk;
use super::options::MultiFeatures;

/// A group's storage on a node: a `MemStorage` holding what the node synced, or the group in the
/// node's shared log. The core reads it directly.
#[derive(Clone)]
pub(crate) enum GroupStore {
    Mem(MemStorage),
    Disk(DiskGroup),
}

/// A group in a node's shared log.
#[derive(Clone)]
pub(crate) struct DiskGroup {
    pub storage: GroupStorage,
    /// The planted bug `ReadErrorAsEmptyPayload`.
    pub empty_on_read_error: bool,
}

impl DiskGroup {
    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        match self.storage.entries(low, high, max_size) {
            Err(error) if self.empty_on_read_error && DiskError::from_raft(&error).is_some() => {
                // PLANTED: the read error is swallowed, the entries come back empty.
                (low..high)
                    .map(|index| {
                        Ok(Entry {
                            index,
                            term: self.storage.term(index)?,
                            ..Entry::default()
                        })
                    })
                    .collect()
            }
            answer => answer,
        }
    }
}

impl Storage for GroupStore {
    fn initial_state(&self) -> raft_core::Result<RaftState> {
        match self {
            GroupStore::Mem(s) => s.initial_state(),
            GroupStore::Disk(s) => s.storage.initial_state(),
        }
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        match self {
            GroupStore::Mem(s) => s.entries(low, high, max_size),
            GroupStore::Disk(s) => s.entries(low, high, max_size),
        }
    }

    fn term(&self, index: u64) -> raft_core::Result<u64> {
        match self {
            GroupStore::Mem(s) => s.term(index),
            GroupStore::Disk(s) => s.storage.term(index),
        }
    }

    fn first_index(&self) -> raft_core::Result<u64> {
        match self {
            GroupStore::Mem(s) => s.first_index(),
            GroupStore::Disk(s) => s.storage.first_index(),
        }
    }

    fn last_index(&self) -> raft_core::Result<u64> {
        match self {
            GroupStore::Mem(s) => s.last_index(),
            GroupStore::Disk(s) => s.storage.last_index(),
        }
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft_core::Result<Snapshot> {
        match self {
            GroupStore::Mem(s) => s.snapshot(request_index, to),
            GroupStore::Disk(s) => s.storage.snapshot(request_index, to),
        }
    }
}

/// Counters a node keeps across its lives (a restart starts a new `MultiRaft`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Carried {
    /// Naps the quiescence policy started.
    pub naps: u64,
    /// Group ticks.
    pub group_ticks: u64,
    /// Sleeping groups frozen.
    pub frozen: u64,
}

/// One node of the simulated deployment.
pub(crate) struct MultiNode {
    pub id: u64,
    /// The running driver; `None` while the node is down.
    pub multi: Option<MultiRaft<GroupStore>>,
    /// Per group (group `g` at `g - 1`): everything this node synced (a `MemStorage`), or the
    /// group in the shared log (which holds exactly that too between the node's events, apart
    /// from commit indexes written without an fsync).
    pub stores: Vec<GroupStore>,
    /// The node's shared log on its simulated disk, if its groups live there.
    pub disk: Option<NodeDisk>,
    /// A batch taken from the driver and not yet synced.
    pub pending: Option<ReadyBatch>,
    /// Per group: the last index its state machine applied (in memory).
    pub applied: Vec<u64>,
    /// Per group: the applied index the state machine persisted.
    pub durable_applied: Vec<u64>,
    /// Counters of earlier lives.
    pub carried: Carried,
}

impl MultiNode {
    /// A node holding a bootstrapped replica of every group, not yet started: in a
    /// `MemStorage` per group, or in a shared log on a disk (`disk`).
    pub fn new(
        id: u64,
        nodes: u64,
        groups: u64,
        disk: Option<NodeDisk>,
    ) -> Result<MultiNode, String> {
        let stores = match &disk {
            Some(disk) => (1..=groups)
                .map(|group| GroupStore::Disk(disk.group(group)))
                .collect(),
            None => (0..groups)
                .map(|_| MemStorage::bootstrap(1..=nodes, []).map(GroupStore::Mem))
                .collect::<raft_core::Result<_>>()
                .map_err(|e| format!("bootstrap: {e}"))?,
        };
        Ok(MultiNode {
            id,
            multi: None,
            stores,
            disk,
            pending: None,
            // The bootstrap snapshot (index 1) is the empty state machine.
            applied: vec![1; groups as usize],
            durable_applied: vec![1; groups as usize],
            carried: Carried::default(),
        })
    }

    /// Whether the node is running.
    pub fn is_up(&self) -> bool {
        self.multi.is_some()
    }

    /// Runs `call` on the driver with the disk's read errors on (see
    /// `NodeDisk::core_reading`): the core's reads may fail, the simulator's never do. Only
    /// called for nodes known to be up.
    pub fn core_reads<R>(&mut self, call: impl FnOnce(&mut MultiRaft<GroupStore>) -> R) -> R {
        if let Some(disk) = &mut self.disk {
            disk.core_reading(true);
        }
        let result = call(self.multi.as_mut().expect("the node is up"));
        if let Some(disk) = &mut self.disk {
            disk.core_reading(false);
        }
        result
    }

    /// The running driver. Only called for nodes known to be up.
    pub fn multi(&mut self) -> &mut MultiRaft<GroupStore> {
        self.multi.as_mut().expect("the node is up")
    }

    /// Starts (or restarts) the node from its durable state: a new driver with every group
    /// rebuilt from its storage and the state machine's durable applied index.
    pub fn start(
        &mut self,
        f: &MultiFeatures,
        seed: u64,
        logger: &slog::Logger,
    ) -> Result<(), String> {
        let config = MultiConfig {
            node_id: self.id,
            quiesce_after_idle_ticks: f.quiesce_after,
            freeze_sleeping_groups: f.freeze,
        };
        let mut multi =
            MultiRaft::new(config, logger).map_err(|e| format!("node {}: {e}", self.id))?;
        for (position, store) in self.stores.iter().enumerate() {
            let group_id = position as u64 + 1;
            let config = Config {
                id: self.id,
                election_tick: f.election_tick,
                heartbeat_tick: f.heartbeat_tick,
                pre_vote: f.pre_vote,
                check_quorum: f.check_quorum,
                applied: self.durable_applied[position],
                max_size_per_msg: 4096,
                max_inflight_msgs: 16,
                // Every group on a node its own election timeouts: with one seed per node, all
                // its groups would time out at the same tick.
                seed: Some(
                    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        ^ group_id.wrapping_mul(0xbf58_476d_1ce4_e5b9)
                        ^ self.id,
                ),
                ..Config::default()
            };
            multi
                .add_group(group_id, &config, store.clone())
                .map_err(|e| format!("node {} restarting group {group_id}: {e}", self.id))?;
        }
        self.applied.copy_from_slice(&self.durable_applied);
        self.multi = Some(multi);
        Ok(())
    }

    /// Stops the driver: it and everything in memory are gone (the batch taken and not synced
    /// stays in `pending` for the caller to decide what of it reached the disk).
    pub fn stop(&mut self) {
        if let Some(multi) = self.multi.take() {
            let metrics = multi.metrics();
            self.carried.naps += metrics.quiesced_by_policy;
            self.carried.group_ticks += metrics.group_ticks;
            self.carried.frozen += metrics.groups_frozen;
        }
    }

    /// Stops a node whose groups live in `MemStorage`s. Of a batch taken and not synced, the
    /// first `torn_prefix` groups reached the disk anyway; they are returned so the caller
    /// writes them (with its checks) and nothing else survives.
    pub fn crash(&mut self, torn_prefix: usize) -> Vec<(u64, Ready)> {
        self.stop();
        let Some(mut batch) = self.pending.take() else {
            return Vec::new();
        };
        let mut written = Vec::new();
        for group in batch.groups_mut().iter_mut().take(torn_prefix) {
            let ready = std::mem::replace(group.ready_mut(), empty_ready());
            written.push((group.group_id(), ready));
        }
        written
    }

    /// The sleeping groups frozen over every life so far.
    pub fn frozen(&self) -> u64 {
        self.carried.frozen
            + self
                .multi
                .as_ref()
                .map_or(0, |multi| multi.metrics().groups_frozen)
    }

    /// After the shared log was recovered from a crashed disk: every group's storage is its
    /// handle in the recovered log.
    pub fn reattach_stores(&mut self) {
        if let Some(disk) = &self.disk {
            for (position, store) in self.stores.iter_mut().enumerate() {
                *store = GroupStore::Disk(disk.group(position as u64 + 1));
            }
        }
    }

    /// The naps started over every life so far.
    pub fn naps(&self) -> u64 {
        self.carried.naps
            + self
                .multi
                .as_ref()
                .map_or(0, |multi| multi.metrics().quiesced_by_policy)
    }
}

/// A Ready with nothing in it, left behind when a crash takes a group's Ready out of a batch
/// (the batch is dropped right after).
fn empty_ready() -> Ready {
    Ready::default()
}

/// Writes one group's Ready into its `MemStorage` (what an fsync makes durable): the snapshot,
/// the entries, then the hard state.
pub(crate) fn write_ready(store: &GroupStore, ready: &Ready) -> Result<(), String> {
    let GroupStore::Mem(store) = store else {
        return Err("a group in the shared log written as a MemStorage".to_string());
    };
    let mut core = store.wl();
    if *ready.snapshot() != Default::default() {
        core.apply_snapshot(ready.snapshot().clone())
            .map_err(|e| format!("storage refused a snapshot: {e}"))?;
    }
    core.append(ready.entries())
        .map_err(|e| format!("storage refused entries: {e}"))?;
    if let Some(hard_state) = ready.hard_state() {
        core.set_hardstate(*hard_state);
    }
    Ok(())
}
