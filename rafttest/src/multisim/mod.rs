//! The multi-raft simulator (issue 17): 3-5 nodes, each a [`MultiRaft`](raft_multi::MultiRaft)
//! holding a replica of every group (a thousand by default, most of them idle), driven by one
//! seeded generator through crashes that lose what was not synced, envelope loss, duplication
//! and reordering, and partitions (both ways, one way, splits), with quiescence on: idle groups
//! fall asleep and a failure detector wakes them, some (random, sometimes long) time after a crash
//! or a partition, through `node_down`.
//!
//! Everything goes through the driver's real paths: Ready batches (one fsync each, see
//! `node.rs`), envelopes encoded to bytes and stepped with `step_encoded`, ticks that only touch
//! awake groups. Some nodes or all (`MultiOptions::disk`) keep their groups in one shared
//! `storage_disk::MultiLog` on a simulated disk that tears unsynced writes and fails fsyncs
//! (`disk.rs`): each batch goes in with one write and one fsync, a crash recovers the log, and
//! every group restarts from it, checked against what the last fsync made durable. After every event the checker (`checker.rs`) verifies the safety of the groups the event
//! touched (one leader per term, the same entry applied at each index everywhere, commits held
//! by a majority of synced logs and never lost by a crash) and that a sleeping group was not
//! ticked. After the faulty phase (`liveness.rs`) the network heals, every node restarts and the
//! failure detector's notices arrive; then every group must elect a leader and apply a new write
//! on every node within a bound, fall asleep again when idle, and, when the node leading the most
//! groups then crashes, every group must elect a new leader among the others (a group asleep
//! when its leader died only wakes through the failure detector) and apply another write.
//!
//! The same options give the same run; a violation reports the seed, the event, the drawn
//! features, the last events and a command that replays the run with verbose output.

mod checker;
mod detector;
mod disk;
mod disk_ops;
mod events;
mod liveness;
mod network;
mod node;
mod ops;
pub mod options;

pub use disk::DiskCounters;
pub use options::{MultiFeatures, MultiOptions, MultiPlantedBug};

use std::collections::VecDeque;

use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;

use checker::Checker;
use detector::Detector;
use network::Wire;
use node::MultiNode;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct MultiReport {
    /// Nodes.
    pub nodes: u64,
    /// Groups (each with a replica on every node).
    pub groups: u64,
    /// Events of the faulty phase plus rounds of the healed phases.
    pub events: u64,
    /// Distinct (group, term) pairs that had a leader.
    pub elections: u64,
    /// Distinct (group, index) entries applied, leaders' empty entries included.
    pub entries_applied: u64,
    /// Client writes applied (distinct entries with data).
    pub writes_applied: u64,
    /// Crashes.
    pub crashes: u64,
    /// Partitions (each cut or split of the network).
    pub partitions: u64,
    /// Naps the quiescence policy started, on every node over every life.
    pub naps: u64,
    /// Of those, the naps started during the faulty phase.
    pub faulty_naps: u64,
    /// Groups woken by the failure detector (`node_down`).
    pub wakeups: u64,
    /// Sleeping groups frozen (`MultiConfig::freeze_sleeping_groups`), on every node over every
    /// life; each was thawed again when something reached it.
    pub frozen: u64,
    /// Envelopes sent.
    pub envelopes_sent: u64,
    /// Messages inside them.
    pub messages_sent: u64,
    /// Nodes whose groups live in a shared log on a simulated disk.
    pub disk_nodes: u64,
    /// What their disks did (summed over them).
    pub disk: DiskCounters,
    /// Rounds the healed cluster needed until every group had a leader and a write applied on
    /// every node.
    pub recovery_rounds: u64,
    /// Rounds the cluster needed, after the node leading the most groups crashed, until every
    /// group had a new leader and a write applied on every other node.
    pub failover_rounds: u64,
    /// A hash of every event of the run: equal for equal runs.
    pub fingerprint: u64,
    /// The features the seed drew.
    pub features: String,
}

/// A failed run: what broke, where, and how to replay it.
#[derive(Debug, Clone)]
pub struct MultiFailure {
    /// The violated property.
    pub reason: String,
    /// The event at which it was detected.
    pub event: u64,
    /// The features the seed drew.
    pub features: String,
    /// The last events before it.
    pub history: Vec<String>,
    /// The command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for MultiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "VIOLATION at event {}: {}", self.event, self.reason)?;
        writeln!(f, "features: {}", self.features)?;
        writeln!(f, "last events:")?;
        for line in &self.history {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

const HISTORY: usize = 30;

/// Runs the multi-raft simulation `opts` describes.
pub fn run(opts: &MultiOptions) -> Result<MultiReport, Box<MultiFailure>> {
    let features = MultiFeatures::draw(opts);
    let described = features.describe();
    let fail = |reason: String, event: u64, history: Vec<String>| {
        Box::new(MultiFailure {
            reason,
            event,
            features: described.clone(),
            history,
            replay: opts.replay_command(event),
        })
    };
    let mut sim = MultiSim::new(opts.clone(), features).map_err(|r| fail(r, 0, Vec::new()))?;
    match sim.run_all() {
        Ok(()) => Ok(sim.finish()),
        Err(reason) => {
            let history = sim.history.iter().cloned().collect();
            Err(fail(reason, sim.event, history))
        }
    }
}

/// The simulation's state.
pub(crate) struct MultiSim {
    opts: MultiOptions,
    f: MultiFeatures,
    rng: Xoshiro256PlusPlus,
    /// Node `id` at `id - 1`.
    nodes: Vec<MultiNode>,
    wire: Wire,
    detector: Detector,
    checker: Checker,
    event: u64,
    next_value: u64,
    /// (node, group) pairs the current event touched: their leadership is checked after it.
    touched: Vec<(u64, u64)>,
    history: VecDeque<String>,
    report: MultiReport,
    logger: slog::Logger,
    /// The faulty phase is over: the network no longer loses or duplicates envelopes.
    healed: bool,
    /// A calm stretch of the faulty phase: no new crashes or partitions.
    calm: bool,
}

impl MultiSim {
    fn new(opts: MultiOptions, f: MultiFeatures) -> Result<MultiSim, String> {
        if opts.groups == 0 {
            return Err("groups: must be at least 1".to_string());
        }
        // RAFT_SIM_LOG=1 prints the nodes' own warnings (to stderr) while replaying a failure.
        let logger = if std::env::var_os("RAFT_SIM_LOG").is_some() {
            use slog::Drain;
            let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            let drain = slog::LevelFilter::new(drain, slog::Level::Warning).fuse();
            slog::Logger::root(drain, slog::o!())
        } else {
            slog::Logger::root(slog::Discard, slog::o!())
        };
        let mut nodes = Vec::new();
        for id in 1..=f.nodes {
            let disk = if f.disk_nodes.contains(&id) {
                // Each disk its own seed, apart from every other stream of the run.
                let seed = opts.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ id;
                let disk = disk::NodeDisk::new(seed, &f, opts.groups, opts.planted_bug)
                    .map_err(|e| format!("node {id}: a new shared log: {e}"))?;
                Some(disk)
            } else {
                None
            };
            let mut node = MultiNode::new(id, f.nodes, opts.groups, disk)?;
            node.start(&f, opts.seed, &logger)?;
            nodes.push(node);
        }
        if opts.verbose {
            println!("features: {}", f.describe());
        }
        Ok(MultiSim {
            rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0x6d75_6c74),
            nodes,
            wire: Wire::default(),
            detector: Detector::default(),
            checker: Checker::new(opts.groups, f.nodes),
            event: 0,
            next_value: 0,
            touched: Vec::new(),
            history: VecDeque::new(),
            report: MultiReport {
                nodes: f.nodes,
                groups: opts.groups,
                disk_nodes: f.disk_nodes.len() as u64,
                fingerprint: 0xcbf2_9ce4_8422_2325,
                features: f.describe(),
                ..MultiReport::default()
            },
            logger,
            healed: false,
            calm: false,
            opts,
            f,
        })
    }

    fn run_all(&mut self) -> Result<(), String> {
        while self.event < self.opts.events {
            self.event += 1;
            self.deliver_notices()?;
            self.step_random()?;
            self.check_touched()?;
            if self.opts.stop_after != 0 && self.event >= self.opts.stop_after {
                return Ok(());
            }
        }
        self.heal_and_check_liveness()
    }

    /// The report, with the counters gathered from every node and the checker.
    fn finish(mut self) -> MultiReport {
        let report = &mut self.report;
        report.events = self.event;
        report.elections = self.checker.elections;
        report.entries_applied = self
            .checker
            .groups
            .iter()
            .map(|g| g.applied.len() as u64)
            .sum();
        report.writes_applied = self
            .checker
            .groups
            .iter()
            .map(|g| {
                g.applied
                    .values()
                    .filter(|(_, data)| !data.is_empty())
                    .count() as u64
            })
            .sum();
        report.naps = self.nodes.iter().map(MultiNode::naps).sum();
        report.frozen = self.nodes.iter().map(MultiNode::frozen).sum();
        for disk in self.nodes.iter().filter_map(|n| n.disk.as_ref()) {
            report.disk.add(&disk.counters());
        }
        report.envelopes_sent = self.wire.envelopes_sent;
        report.messages_sent = self.wire.messages_sent;
        self.report
    }

    fn log(&mut self, line: String) {
        // FNV-1a over every event line: two runs with equal fingerprints did the same things.
        for byte in line.bytes() {
            self.report.fingerprint =
                (self.report.fingerprint ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if self.opts.verbose {
            println!("[{:>6}] {line}", self.event);
        }
        self.history.push_back(format!("#{} {line}", self.event));
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn up_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.is_up())
            .map(|n| n.id)
            .collect()
    }

    fn node(&mut self, id: u64) -> &mut MultiNode {
        &mut self.nodes[id as usize - 1]
    }
}
