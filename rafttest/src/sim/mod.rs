//! The deterministic simulator: a cluster of [`RawNode`](raft_core::RawNode)s driven by one seeded
//! random generator through every fault a real deployment meets (message loss, duplication and
//! reordering, symmetric, one-way and split partitions, crashes that lose whatever was not yet
//! durable, slow disks, disks that fail reads and corrupt what they hold, clock skew) while
//! clients write and read on any node, leadership is
//! transferred and the membership changes. Each seed draws its own feature set and fault mix
//! ([`options::Features`], swarm testing), and nemeses strike at the moments bugs hide in: right
//! after an election, right after a membership change, between a write and its messages.
//!
//! After every event a [`checker::Checker`] verifies Raft's safety properties and the rules that
//! lead to them (commit only what a quorum holds durably, commit by counting only entries of the
//! leader's term, never acknowledge or vote without persisting first, progress never overstates a
//! follower, linearizable reads); at the end, with every fault healed, the cluster must elect a
//! leader and commit a new write on every member within a bound (liveness). The same options give
//! the same run, bit for bit.
//!
//! A violation stops the run with the seed, the event number, the drawn features, the last events
//! and a command line that replays exactly that run with verbose output.

mod canonical;
pub mod checker;
mod confirm;
mod confmodel;
mod damage;
pub(crate) mod disk;
mod durability;
mod events;
mod heal;
mod invariants;
mod nemesis;
pub mod node;
pub mod options;
mod outcomes;
mod pipeline;
mod rules;
pub mod store;
mod timing;

pub use heal::{LIVENESS_BOUND, LIVENESS_PER_ENTRY};
pub use options::{Clock, Features, PlantedBug, SimOptions};

use checker::Checker;
use node::{SimNode, StateMachine};
use raft_core::eraftpb::Message;
use raft_core::{Config, StateRole};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use storage_mem::MemStorage;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    /// Events run (faulty phase and healing).
    pub events: u64,
    /// Counts of each kind of event.
    pub counts: BTreeMap<&'static str, u64>,
    /// Writes applied by the end (distinct indexes).
    pub writes_committed: u64,
    /// Reads served and checked for linearizability.
    pub reads_served: u64,
    /// Distinct terms that had a leader.
    pub terms_with_leader: u64,
    /// The final membership.
    pub final_voters: Vec<u64>,
    /// The final leader and its term.
    pub final_leader: (u64, u64),
    /// Ticks (round trips) the healed cluster needed to commit a new write on every member.
    pub recovery_ticks: u64,
    /// The bound it had for that.
    pub recovery_bound: u64,
    /// A hash of every event of the run: equal for equal runs (determinism checks).
    pub fingerprint: u64,
    /// The features the seed drew.
    pub features: String,
}

/// A failed run: what broke, where, and how to replay it.
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The violated property.
    pub reason: String,
    /// The event at which it was detected.
    pub event: u64,
    /// The features the seed drew.
    pub features: String,
    /// The last events before it.
    pub history: Vec<String>,
    /// Each node's state when it was detected.
    pub nodes: Vec<String>,
    /// The command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "VIOLATION at event {}: {}", self.event, self.reason)?;
        writeln!(f, "features: {}", self.features)?;
        writeln!(f, "last events:")?;
        for line in &self.history {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "nodes:")?;
        for line in &self.nodes {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

/// A read in progress: who asked, and the floor its answer must reach.
#[derive(Debug, Clone)]
struct PendingRead {
    node: u64,
    /// Every index committed anywhere when the read started: a linearizable read sees them.
    floor: u64,
}

struct Sim {
    opts: SimOptions,
    f: Features,
    rng: Xoshiro256PlusPlus,
    nodes: BTreeMap<u64, SimNode>,
    lives: BTreeMap<u64, u64>,
    in_flight: VecDeque<Message>,
    /// Duplicates held back until the event they resurface at.
    delayed: Vec<(u64, Message)>,
    /// Per node: the event at which the failure detector, having noticed a crash or a partition,
    /// wakes it (each node's detector notices in its own time).
    wake_at: BTreeMap<u64, u64>,
    /// With quiescence: clients are idle until this event (no writes, no membership changes or
    /// transfers; reads only of a sleeping leader), so that groups sleep long enough for the
    /// faults that meet them asleep.
    idle_until: u64,
    /// Directed links that drop everything.
    cut: BTreeSet<(u64, u64)>,
    checker: Checker,
    invariants: invariants::Invariants,
    reads: BTreeMap<u64, PendingRead>,
    next_read: u64,
    next_value: u64,
    event: u64,
    /// Ticks of the shared clock (every node's, in `Clock::Shared` runs).
    now: u64,
    history: VecDeque<String>,
    report: SimReport,
    logger: slog::Logger,
    faults: bool,
    /// The newest (term, leader) the nemesis has seen, to strike new leaders.
    last_leader: (u64, u64),
    /// Per (leader, transfer target, term): the (last index, last term) of the leader's log
    /// while it transferred to that target.
    transfers: BTreeMap<(u64, u64, u64), (u64, u64)>,
    /// Each node's clock and the contacts the time-based rules rest on.
    timing: timing::Timing,
    /// What each leader's log looked like at the last check.
    leader_marks: BTreeMap<u64, rules::LeaderMark>,
    /// (node, term) for every `MsgTimeoutNow` a node accepted in that term.
    told_to_campaign: BTreeSet<(u64, u64)>,
    /// What read confirmations rest on: heartbeats sent and acknowledged, reads arrived.
    confirmations: confirm::Confirmations,
    /// The entry each leader appended at each (index, term): every copy must be it.
    canonical: canonical::Canonical,
    /// The node whose disk is damaged in this run, if any, and how (see `damage`).
    victim: Option<(u64, damage::Damage)>,
    /// Nodes stopped for good because their disk was found damaged.
    condemned: BTreeSet<u64>,
    /// Draws the damage done to the victim's disk (its own stream, so that runs without a
    /// damaged disk stay what they were).
    damage_rng: Xoshiro256PlusPlus,
}

const HISTORY: usize = 30;

/// Runs the simulation `opts` describes.
pub fn run(opts: &SimOptions) -> Result<SimReport, Box<SimFailure>> {
    let features = Features::draw(opts);
    let described = features.describe();
    let mut sim = Sim::new(opts.clone(), features).map_err(|reason| {
        Box::new(SimFailure {
            reason,
            event: 0,
            features: described.clone(),
            history: Vec::new(),
            nodes: Vec::new(),
            replay: opts.replay_command(0),
        })
    })?;
    let result = sim.run_all();
    match result {
        Ok(()) => Ok(sim.report),
        Err(reason) => Err(Box::new(SimFailure {
            reason,
            event: sim.event,
            features: described,
            history: sim.history.iter().cloned().collect(),
            nodes: sim.describe_nodes(),
            replay: opts.replay_command(sim.event),
        })),
    }
}

impl Sim {
    fn new(opts: SimOptions, f: Features) -> Result<Sim, String> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
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
        let voters: Vec<u64> = (1..=f.nodes).collect();
        let mut sim = Sim {
            rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0x5eed),
            nodes: BTreeMap::new(),
            lives: BTreeMap::new(),
            in_flight: VecDeque::new(),
            delayed: Vec::new(),
            wake_at: BTreeMap::new(),
            idle_until: 0,
            cut: BTreeSet::new(),
            checker: Checker::default(),
            invariants: invariants::Invariants::default(),
            reads: BTreeMap::new(),
            next_read: 0,
            next_value: 0,
            event: 0,
            now: 0,
            history: VecDeque::new(),
            report: SimReport {
                fingerprint: 0xcbf2_9ce4_8422_2325,
                features: f.describe(),
                ..Default::default()
            },
            logger,
            faults: true,
            last_leader: (0, 0),
            transfers: BTreeMap::new(),
            timing: timing::Timing::default(),
            leader_marks: BTreeMap::new(),
            told_to_campaign: BTreeSet::new(),
            confirmations: confirm::Confirmations::default(),
            canonical: canonical::Canonical::default(),
            victim: None,
            condemned: BTreeSet::new(),
            damage_rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0xda3a_6e00),
            opts,
            f,
        };
        for id in 1..=sim.f.nodes + sim.opts.spares {
            // Spares start with the bootstrap membership too: they are not in it, and learn the
            // group's membership from the log or a snapshot once added.
            let storage = MemStorage::bootstrap(voters.iter().copied(), [])
                .map_err(|e| format!("bootstrap: {e}"))?;
            let f = &sim.f;
            let config = Config {
                id,
                election_tick: f.election_tick,
                heartbeat_tick: f.heartbeat_tick,
                pre_vote: f.pre_vote,
                check_quorum: f.check_quorum,
                read_only_option: f.read_mode,
                max_size_per_msg: f.max_size_per_msg,
                max_inflight_msgs: f.max_inflight_msgs,
                max_committed_size_per_ready: f.max_committed_size_per_ready,
                skip_bcast_commit: f.skip_bcast_commit,
                batch_append: f.batch_append,
                disable_proposal_forwarding: f.no_forwarding,
                priority: f.priority(id),
                max_inflight_bytes: f.max_inflight_bytes,
                max_uncommitted_size: f.max_uncommitted_size,
                step_down_on_removal: f.step_down_on_removal,
                max_election_tick: f.election_tick * f.election_spread,
                seed: Some(sim.opts.seed.wrapping_mul(7919).wrapping_add(id)),
                // Nodes differ in how committed entries reach the application: all read back
                // from storage, a cache that fills after a few entries (so batches mix the cache
                // and storage), or the default cache.
                max_apply_cache_bytes: match id % 3 {
                    0 => 0,
                    1 => 64,
                    _ => raft_core::log::DEFAULT_APPLY_CACHE_BYTES,
                },
                ..Default::default()
            };
            config
                .validate()
                .map_err(|e| format!("node {id}: {e} ({})", sim.f.describe()))?;
            let mut node = SimNode {
                id,
                raw: None,
                storage,
                config,
                unpersisted: VecDeque::new(),
                to_apply: VecDeque::new(),
                sm: StateMachine::default(),
                reads: Vec::new(),
                tick_weight: rng.random_range(0.7..1.3),
                disk_weight: rng.random_range(0.3..1.5) * sim.f.disk_speed,
                sync: rng.random_bool(sim.f.sync_share),
                // Half the pipelined nodes report each written Ready with `advance_append`
                // (and store the commit index its LightReady returns), half with
                // `on_persist_ready`.
                advance_append: rng.random_bool(0.5),
                crashed_at: 0,
                proposals: raft_core::proposal::ProposalTracker::new(),
                outcomes: Vec::new(),
                last_hard_state: Default::default(),
                disk: None,
            };
            // Its own stream, so the draws above stay what they were before disks were added.
            let mut disk_rng =
                Xoshiro256PlusPlus::seed_from_u64(sim.opts.seed ^ 0xd15c_0000 ^ id.rotate_left(32));
            if disk_rng.random_bool(sim.f.disk_share) {
                let faults = storage_disk::io::FaultConfig {
                    sync_error: sim.f.disk_sync_errors,
                    read_error: sim.f.disk_read_errors,
                    ..storage_disk::io::FaultConfig::none()
                };
                let disk_seed = disk_rng.random();
                // A small entry cache on most disks, so that catching up a lagging follower and
                // applying after a restart read the disk.
                let cache_bytes = [0, 256, 4096, 1 << 20][disk_rng.random_range(0..4)];
                let mut disk =
                    disk::SimDisk::new(id, disk_seed, faults, cache_bytes, &node.storage)
                        .map_err(|e| format!("node {id}: a new disk: {e}"))?;
                disk.ignore_sync = sim.opts.planted_bug == Some(PlantedBug::IgnoreMustSync);
                disk.empty_on_error =
                    sim.opts.planted_bug == Some(PlantedBug::ReadErrorAsEmptyPayload);
                node.disk = Some(disk);
                *sim.report.counts.entry("disk node").or_default() += 1;
            }
            if id <= sim.f.nodes {
                node.start(&sim.logger)
                    .map_err(|e| format!("start {id}: {e}"))?;
            }
            sim.nodes.insert(id, node);
        }
        sim.choose_victim()?;
        if sim.f.quiescence {
            *sim.report.counts.entry("quiescence").or_default() += 1;
        }
        if sim.opts.verbose {
            println!("features: {}", sim.f.describe());
        }
        // The bootstrap state is the first thing checked (and what is committed to begin with).
        sim.checker.check(&sim.nodes, &sim.lives)?;
        Ok(sim)
    }

    /// One line per node: role, term, vote, commit, applied, last index and membership.
    fn describe_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let hs = *n.storage.rl().hard_state();
                let durable = format!(
                    "durable term {} vote {} commit {}",
                    hs.term, hs.vote, hs.commit
                );
                match n.raw.as_ref() {
                    None if self.condemned.contains(id) => {
                        format!("{id}: down for good (damaged disk); {durable}")
                    }
                    None => format!("{id}: down; {durable}"),
                    Some(raw) => {
                        let r = &raw.raft;
                        let progress = if r.state == StateRole::Leader {
                            let prs: Vec<String> = r
                                .prs
                                .iter()
                                .map(|(p, pr)| {
                                    format!(
                                        "{p}={} match {} next {} inflight {}{}",
                                        pr.state,
                                        pr.matched,
                                        pr.next_idx,
                                        pr.ins.count(),
                                        if pr.probe_sent { " probe sent" } else { "" }
                                    )
                                })
                                .collect();
                            format!("; progress {}", prs.join(", "))
                        } else {
                            String::new()
                        };
                        format!(
                            "{id}: {:?} term {} vote {} lead {} commit {} applied {} last {}/{} \
                             first {} conf {}{}; {durable}{progress}",
                            r.state,
                            r.term,
                            r.vote,
                            r.leader_id,
                            r.raft_log.committed,
                            n.sm.applied_index,
                            r.raft_log.last_index(),
                            r.raft_log.last_term(),
                            r.raft_log.first_index(),
                            raft_proto::describe_conf_state(&r.prs.conf_state()),
                            if n.sync {
                                " (sync)"
                            } else if n.advance_append {
                                " (advance_append)"
                            } else {
                                ""
                            }
                        )
                    }
                }
            })
            .collect()
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

    fn count(&mut self, kind: &'static str) {
        *self.report.counts.entry(kind).or_default() += 1;
    }

    fn run_all(&mut self) -> Result<(), String> {
        let events = self.opts.events;
        while self.event < events {
            self.event += 1;
            self.step_random()?;
            self.damage_at_rest();
            self.damage_state_file();
            self.check()?;
            self.strike_new_leader()?;
            if self.opts.stop_after != 0 && self.event >= self.opts.stop_after {
                return Ok(());
            }
        }
        self.heal_and_check_liveness()?;
        self.tally_disk_faults();
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        self.stop_corrupt_nodes()?;
        self.checker.check(&self.nodes, &self.lives)?;
        self.timing.check_leaders(
            &self.nodes,
            self.f.check_quorum,
            self.f.election_tick as u64,
        )?;
        rules::check_appends(&self.nodes, &mut self.leader_marks)?;
        let timing = &self.timing;
        self.confirmations.scan(
            &self.nodes,
            |id| timing.now(id),
            self.f.read_mode,
            self.f.election_tick as u64,
        )?;
        for (id, node) in &self.nodes {
            self.invariants.check(node)?;
            let Some(raw) = node.raw.as_ref() else {
                continue;
            };
            if let Some(target) = raw.raft.lead_transferee {
                // The leader appends nothing while it transfers; keep the shortest log seen for
                // this target in this term (a later transfer to it may follow new entries).
                let log = &raw.raft.raft_log;
                let seen = (log.last_index(), log.last_term());
                let key = (*id, target, raw.raft.term);
                let kept = self.transfers.entry(key).or_insert(seen);
                *kept = (*kept).min(seen);
            }
        }
        if self.event.is_multiple_of(64) {
            self.checker.check_log_matching(&self.nodes)?;
        }
        Ok(())
    }

    fn up_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(id, _)| *id)
            .collect()
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.raw.as_ref().map(|r| (*id, r)))
            .filter(|(_, r)| r.raft.state == StateRole::Leader)
            .max_by_key(|(_, r)| r.raft.term)
            .map(|(id, _)| id)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.rng.random_range(0..items.len())])
        }
    }
}
