//! One simulated node: a [`MultiRaft`] over one `MemStorage` per group, and the application's
//! pipeline around it.
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

use raft_core::{Config, Ready};
use raft_multi::{MultiConfig, MultiRaft, ReadyBatch};
use storage_mem::MemStorage;

use super::options::MultiFeatures;

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
    pub multi: Option<MultiRaft<MemStorage>>,
    /// Per group (group `g` at `g - 1`): everything this node synced.
    pub stores: Vec<MemStorage>,
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
    /// A node holding a bootstrapped replica of every group, not yet started.
    pub fn new(id: u64, nodes: u64, groups: u64) -> Result<MultiNode, String> {
        let mut stores = Vec::with_capacity(groups as usize);
        for _ in 0..groups {
            stores
                .push(MemStorage::bootstrap(1..=nodes, []).map_err(|e| format!("bootstrap: {e}"))?);
        }
        Ok(MultiNode {
            id,
            multi: None,
            stores,
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

    /// The running driver. Only called for nodes known to be up.
    pub fn multi(&mut self) -> &mut MultiRaft<MemStorage> {
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

    /// Stops the node: the driver and everything in memory are gone. Of a batch taken and not
    /// synced, the first `torn_prefix` groups reached the disk anyway; they are returned so the
    /// caller writes them (with its checks) and nothing else survives.
    pub fn crash(&mut self, torn_prefix: usize) -> Vec<(u64, Ready)> {
        if let Some(multi) = self.multi.take() {
            let metrics = multi.metrics();
            self.carried.naps += metrics.quiesced_by_policy;
            self.carried.group_ticks += metrics.group_ticks;
            self.carried.frozen += metrics.groups_frozen;
        }
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

/// Writes one group's Ready into its storage (what an fsync makes durable): the snapshot, the
/// entries, then the hard state.
pub(crate) fn write_ready(store: &MemStorage, ready: &Ready) -> Result<(), String> {
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
