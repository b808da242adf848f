//! The deterministic simulator: a cluster of [`RawNode`](raft_core::RawNode)s driven by one seeded
//! random generator through every fault a real deployment meets (message loss, duplication and
//! reordering, symmetric and one-way partitions, crashes that lose whatever was not yet durable,
//! slow disks, clock skew) while clients write, read (ReadIndex), transfer leadership and change
//! the membership. After every event a [`checker::Checker`] verifies Raft's safety
//! properties; at the end, with every fault healed, the cluster must elect a leader and commit a
//! new write within a bound (liveness). The same options give the same run, bit for bit.
//!
//! A violation stops the run with the seed, the event number, the last events and a command line
//! that replays exactly that run with verbose output.

pub mod checker;
pub mod node;

use checker::Checker;
use node::{encode_write, SimNode, StateMachine, Unpersisted};
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, Message, MessageType};
use raft_core::{Config, SnapshotStatus, StateRole};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use storage_mem::MemStorage;

/// A bug planted in the simulated application, to show that the checker catches what it claims
/// to (a test-only hook: the core is untouched, the application around it misbehaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// A restarted node's storage has lost the term and vote it persisted: it may vote again in a
    /// term it already voted in.
    ForgetVoteOnRestart,
    /// The application sends the messages that must wait for persistence (acknowledgements,
    /// votes) as soon as it takes the Ready: a crash then loses state others rely on.
    AckBeforePersist,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seeds every choice of the run.
    pub seed: u64,
    /// Initial voters `1..=nodes`.
    pub nodes: u64,
    /// Spare ids that membership churn may add (`nodes+1..=nodes+spares`).
    pub spares: u64,
    /// Events in the faulty phase.
    pub events: u64,
    /// Probability that a sent message is lost.
    pub loss: f64,
    /// Probability that a sent message is delivered twice.
    pub duplication: f64,
    /// Probability that delivery picks a random in-flight message instead of the oldest.
    pub reordering: f64,
    /// Run crashes and restarts.
    pub crashes: bool,
    /// Run membership changes.
    pub membership: bool,
    /// Nodes run pre-vote.
    pub pre_vote: bool,
    /// Nodes run check-quorum.
    pub check_quorum: bool,
    /// Print every event.
    pub verbose: bool,
    /// Stop after this event (for replays); 0 means run them all.
    pub stop_after: u64,
    /// A bug to plant in the application (tests of the checker only).
    pub planted_bug: Option<PlantedBug>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            nodes: 5,
            spares: 2,
            events: 20_000,
            loss: 0.05,
            duplication: 0.02,
            reordering: 0.2,
            crashes: true,
            membership: true,
            pre_vote: true,
            check_quorum: true,
            verbose: false,
            stop_after: 0,
            planted_bug: None,
        }
    }
}

impl SimOptions {
    /// The command that replays this run with verbose output up to `event`.
    pub fn replay_command(&self, event: u64) -> String {
        let mut cmd = format!(
            "cargo run -p rafttest --release --bin raft-sim -- --seed {} --nodes {} --events {} \
             --loss {} --duplication {} --reordering {} --stop-after {event} --verbose",
            self.seed, self.nodes, self.events, self.loss, self.duplication, self.reordering
        );
        for (on, flag) in [
            (self.crashes, "--no-crashes"),
            (self.membership, "--no-membership"),
            (self.pre_vote, "--no-pre-vote"),
            (self.check_quorum, "--no-check-quorum"),
        ] {
            if !on {
                cmd.push(' ');
                cmd.push_str(flag);
            }
        }
        cmd
    }
}

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
    /// Ticks the healed cluster needed to commit a new write on every member.
    pub recovery_ticks: u64,
    /// A hash of every event of the run: equal for equal runs (determinism checks).
    pub fingerprint: u64,
}

/// A failed run: what broke, where, and how to replay it.
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The violated property.
    pub reason: String,
    /// The event at which it was detected.
    pub event: u64,
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
    rng: Xoshiro256PlusPlus,
    nodes: BTreeMap<u64, SimNode>,
    lives: BTreeMap<u64, u64>,
    in_flight: VecDeque<Message>,
    /// Directed links that drop everything.
    cut: BTreeSet<(u64, u64)>,
    checker: Checker,
    reads: BTreeMap<u64, PendingRead>,
    next_read: u64,
    next_value: u64,
    event: u64,
    history: VecDeque<String>,
    report: SimReport,
    logger: slog::Logger,
    faults: bool,
    /// How often disruptive events (crashes, partitions, transfers, membership changes) happen in
    /// this run, from 0.1 (mostly calm) to 1.0; drawn from the seed so runs cover both.
    chaos: f64,
}

const HISTORY: usize = 30;

/// Runs the simulation `opts` describes.
pub fn run(opts: &SimOptions) -> Result<SimReport, SimFailure> {
    let mut sim = Sim::new(opts.clone()).map_err(|reason| SimFailure {
        reason,
        event: 0,
        history: Vec::new(),
        nodes: Vec::new(),
        replay: opts.replay_command(0),
    })?;
    let result = sim.run_all();
    match result {
        Ok(()) => Ok(sim.report),
        Err(reason) => Err(SimFailure {
            reason,
            event: sim.event,
            history: sim.history.iter().cloned().collect(),
            nodes: sim.describe_nodes(),
            replay: opts.replay_command(sim.event),
        }),
    }
}

impl Sim {
    fn new(opts: SimOptions) -> Result<Sim, String> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (1..=opts.nodes).collect();
        let mut sim = Sim {
            rng: Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0x5eed),
            nodes: BTreeMap::new(),
            lives: BTreeMap::new(),
            in_flight: VecDeque::new(),
            cut: BTreeSet::new(),
            checker: Checker::default(),
            reads: BTreeMap::new(),
            next_read: 0,
            next_value: 0,
            event: 0,
            history: VecDeque::new(),
            report: SimReport {
                fingerprint: 0xcbf2_9ce4_8422_2325,
                ..Default::default()
            },
            logger,
            faults: true,
            chaos: 0.0,
            opts,
        };
        sim.chaos = sim.rng.random_range(0.1..1.0);
        for id in 1..=sim.opts.nodes + sim.opts.spares {
            // Spares start with the bootstrap membership too: they are not in it, and learn the
            // group's membership from the log or a snapshot once added.
            let storage = MemStorage::bootstrap(voters.iter().copied(), [])
                .map_err(|e| format!("bootstrap: {e}"))?;
            let config = Config {
                id,
                election_tick: 10,
                heartbeat_tick: 2,
                pre_vote: sim.opts.pre_vote,
                check_quorum: sim.opts.check_quorum,
                max_size_per_msg: 4096,
                max_inflight_msgs: 8,
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
                disk_weight: rng.random_range(0.3..1.5),
            };
            if id <= sim.opts.nodes {
                node.start(&sim.logger)
                    .map_err(|e| format!("start {id}: {e}"))?;
            }
            sim.nodes.insert(id, node);
        }
        Ok(sim)
    }

    /// One line per node: role, term, vote, commit, applied, last index and membership.
    fn describe_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(id, n)| match n.raw.as_ref() {
                None => format!("{id}: down"),
                Some(raw) => {
                    let r = &raw.raft;
                    format!(
                        "{id}: {:?} term {} vote {} lead {} commit {} applied {} last {}/{} \
                         first {} conf {}",
                        r.state,
                        r.term,
                        r.vote,
                        r.leader_id,
                        r.raft_log.committed,
                        n.sm.applied_index,
                        r.raft_log.last_index(),
                        r.raft_log.last_term(),
                        r.raft_log.first_index(),
                        raft_proto::describe_conf_state(&r.prs.conf_state())
                    )
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
            self.check()?;
            if self.opts.stop_after != 0 && self.event >= self.opts.stop_after {
                return Ok(());
            }
        }
        self.heal_and_check_liveness()
    }

    fn check(&mut self) -> Result<(), String> {
        self.checker.check(&self.nodes, &self.lives)?;
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

    /// One random event of the faulty phase.
    fn step_random(&mut self) -> Result<(), String> {
        let mut roll = self.rng.random_range(0..1000u32);
        if (935..967).contains(&roll) && !self.rng.random_bool(self.chaos) {
            roll = 0; // a calm moment: deliver instead of disrupting
        }
        match roll {
            0..=299 => self.deliver_one(),
            300..=459 => self.tick_someone(),
            460..=589 => self.ready_someone(),
            590..=719 => self.persist_someone(),
            720..=819 => self.apply_someone(),
            820..=889 => self.propose_something(),
            890..=919 => self.read_something(),
            920..=934 => self.compact_someone(),
            935..=944 => self.partition_or_heal(),
            945..=951 if self.opts.crashes => self.crash_or_restart(),
            952..=956 => self.transfer_something(),
            957..=966 if self.opts.membership => self.change_membership(),
            _ => self.tick_someone(),
        }
    }

    fn deliver_one(&mut self) -> Result<(), String> {
        if self.in_flight.is_empty() {
            return self.tick_someone();
        }
        let pos = if self.faults && self.rng.random_bool(self.opts.reordering) {
            self.rng.random_range(0..self.in_flight.len())
        } else {
            0
        };
        let Some(m) = self.in_flight.remove(pos) else {
            return Ok(());
        };
        self.deliver(m)
    }

    fn deliver(&mut self, m: Message) -> Result<(), String> {
        self.count("deliver");
        let is_snapshot = m.msg_type == MessageType::MsgSnapshot as i32;
        let (from, to) = (m.from, m.to);
        let lost = self.cut.contains(&(from, to))
            || !self.nodes.get(&to).is_some_and(|n| n.is_up())
            || (self.faults && self.rng.random_bool(self.opts.loss));
        if lost {
            self.log(format!("lost {}", raft_proto::describe_message(&m)));
            if is_snapshot {
                self.report_snapshot(from, to, SnapshotStatus::Failure);
            }
            return Ok(());
        }
        self.log(format!("deliver {}", raft_proto::describe_message(&m)));
        let node = self.nodes.get_mut(&to).expect("checked above");
        if let Some(raw) = node.raw.as_mut() {
            if let Err(e) = raw.step(m) {
                let line = format!("  node {to} refused it: {e}");
                self.log(line);
            }
        }
        if is_snapshot {
            self.report_snapshot(from, to, SnapshotStatus::Finish);
        }
        Ok(())
    }

    fn report_snapshot(&mut self, from: u64, to: u64, status: SnapshotStatus) {
        if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut()) {
            raw.report_snapshot(to, status);
        }
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if self.faults && self.rng.random_bool(self.opts.duplication) {
                self.in_flight.push_back(m.clone());
            }
            self.in_flight.push_back(m);
        }
    }

    fn tick_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let weight = self.nodes[&id].tick_weight;
        if self.rng.random_range(0.0..1.3) > weight {
            return Ok(());
        }
        self.count("tick");
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            raw.tick();
        }
        Ok(())
    }

    /// Takes a Ready from a node: messages that may leave at once go out, the rest waits for the
    /// (simulated) disk.
    fn ready_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        self.take_ready(id)
    }

    fn take_ready(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let Some(raw) = node.raw.as_mut() else {
            return Ok(());
        };
        if !raw.has_ready() {
            return Ok(());
        }
        let mut rd = raw
            .ready()
            .map_err(|e| format!("node {id}: ready() failed: {e}"))?;
        let msgs = rd.take_messages();
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let unpersisted = Unpersisted {
            number: rd.number(),
            snapshot,
            entries: rd.take_shared_entries(),
            hard_state: rd.hard_state().copied(),
            persisted_msgs: rd.take_persisted_messages(),
        };
        let committed = rd.take_committed_entries();
        let read_states = rd.take_read_states();
        raw.advance_append_async(rd);
        let mut unpersisted = unpersisted;
        let early = if self.opts.planted_bug == Some(PlantedBug::AckBeforePersist) {
            std::mem::take(&mut unpersisted.persisted_msgs)
        } else {
            Vec::new()
        };
        node.unpersisted.push_back(unpersisted);
        node.to_apply.extend(committed);
        node.reads.extend(read_states);
        self.count("ready");
        self.log(format!("node {id} took a Ready ({} messages)", msgs.len()));
        self.send(msgs);
        self.send(early);
        Ok(())
    }

    fn persist_someone(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up() && !n.unpersisted.is_empty())
            .map(|(id, _)| *id)
            .collect();
        let Some(id) = self.pick(&ids) else {
            return self.ready_someone();
        };
        let weight = self.nodes[&id].disk_weight;
        if self.faults && self.rng.random_range(0.0..1.5) > weight {
            return Ok(()); // a slow disk
        }
        self.persist(id)
    }

    fn persist(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let msgs = node
            .persist_one()
            .map_err(|e| format!("node {id}: persisting failed: {e}"))?;
        self.count("persist");
        self.log(format!(
            "node {id} persisted a Ready ({} messages)",
            msgs.len()
        ));
        self.send(msgs);
        Ok(())
    }

    fn apply_someone(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up() && (!n.to_apply.is_empty() || !n.reads.is_empty()))
            .map(|(id, _)| *id)
            .collect();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let max = self.rng.random_range(1..=16);
        self.apply(id, max)
    }

    fn apply(&mut self, id: u64, max: usize) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let applied = node
            .apply_some(max)
            .map_err(|e| format!("node {id}: applying failed: {e}"))?;
        for (index, term, data) in &applied {
            self.checker.on_apply(id, *index, *term, data)?;
        }
        self.count("apply");
        self.serve_reads(id)
    }

    /// Serves the node's reads whose index it has applied, checking linearizability: the read
    /// point is at or above every index committed anywhere when the read started (thesis §6.4).
    fn serve_reads(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let applied = node.sm.applied_index;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            node.reads.drain(..).partition(|rs| rs.index <= applied);
        node.reads = waiting;
        for rs in ready {
            let Some(read_id) = rs.request_ctx.get(..8).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let read_id = u64::from_be_bytes(read_id);
            let Some(read) = self.reads.remove(&read_id) else {
                continue; // a duplicate answer
            };
            if read.node != id {
                return Err(format!(
                    "read {read_id} of node {} was answered on node {id}",
                    read.node
                ));
            }
            if rs.index < read.floor {
                return Err(format!(
                    "linearizability: read {read_id} on node {id} was answered at index {} \
                     below index {} committed before it started",
                    rs.index, read.floor
                ));
            }
            self.report.reads_served += 1;
        }
        Ok(())
    }

    fn propose_something(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        self.next_value += 1;
        let key = self.rng.random_range(0..8u8);
        let data = encode_write(key, self.next_value);
        let node = self.nodes.get_mut(&id).expect("known id");
        if let Some(raw) = node.raw.as_mut() {
            let result = raw.propose(vec![], data);
            self.count("propose");
            self.log(format!(
                "node {id} proposes #{}: {result:?}",
                self.next_value
            ));
        }
        Ok(())
    }

    fn read_something(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        self.next_read += 1;
        let read_id = self.next_read;
        let floor = self.checker.max_commit();
        let node = self.nodes.get_mut(&id).expect("known id");
        if let Some(raw) = node.raw.as_mut() {
            if raw.read_index(read_id.to_be_bytes().to_vec()).is_ok() {
                self.reads.insert(read_id, PendingRead { node: id, floor });
            }
            self.count("read");
            self.log(format!("node {id} reads (read {read_id}, floor {floor})"));
        }
        Ok(())
    }

    fn compact_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let keep = self.rng.random_range(0..20);
        let node = self.nodes.get_mut(&id).expect("known id");
        if node
            .compact(keep)
            .map_err(|e| format!("node {id}: compaction failed: {e}"))?
        {
            self.count("compact");
            self.log(format!("node {id} snapshotted and compacted (keep {keep})"));
        }
        Ok(())
    }

    fn partition_or_heal(&mut self) -> Result<(), String> {
        if !self.cut.is_empty() {
            self.cut.clear();
            self.count("heal");
            self.log("network healed".to_string());
            return Ok(());
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        let Some(victim) = self.pick(&ids) else {
            return Ok(());
        };
        let one_way = self.rng.random_bool(0.3);
        for other in ids.into_iter().filter(|o| *o != victim) {
            self.cut.insert((victim, other));
            if !one_way {
                self.cut.insert((other, victim));
            }
        }
        self.count("partition");
        self.log(format!(
            "node {victim} cut off ({})",
            if one_way {
                "outgoing only"
            } else {
                "both ways"
            }
        ));
        Ok(())
    }

    fn crash_or_restart(&mut self) -> Result<(), String> {
        let down: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(id, n)| !n.is_up() && self.lives.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        if let Some(id) = self.pick(&down) {
            return self.restart(id);
        }
        let up = self.up_ids();
        if up.len() * 2 <= self.opts.nodes as usize {
            return Ok(()); // keep a majority of the original size running
        }
        let Some(id) = self.pick(&up) else {
            return Ok(());
        };
        self.nodes.get_mut(&id).expect("known id").crash();
        *self.lives.entry(id).or_default() += 1;
        self.reads.retain(|_, r| r.node != id);
        self.count("crash");
        self.log(format!("node {id} crashed"));
        Ok(())
    }

    fn restart(&mut self, id: u64) -> Result<(), String> {
        let logger = self.logger.clone();
        let node = self.nodes.get_mut(&id).expect("known id");
        if self.opts.planted_bug == Some(PlantedBug::ForgetVoteOnRestart) {
            let mut store = node.storage.wl();
            let hs = store.mut_hard_state();
            hs.vote = 0;
            hs.term = 0;
        }
        node.start(&logger)
            .map_err(|e| format!("node {id}: restart failed: {e}"))?;
        self.count("restart");
        self.log(format!("node {id} restarted"));
        Ok(())
    }

    fn transfer_something(&mut self) -> Result<(), String> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let voters: Vec<u64> = self.nodes[&leader]
            .raw
            .as_ref()
            .map(|r| r.raft.prs.conf().voters.ids())
            .unwrap_or_default();
        let Some(target) = self.pick(&voters) else {
            return Ok(());
        };
        if let Some(raw) = self.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut()) {
            raw.transfer_leader(target);
        }
        self.count("transfer");
        self.log(format!("leader {leader} transfers to {target}"));
        Ok(())
    }

    fn change_membership(&mut self) -> Result<(), String> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return Ok(());
        };
        let conf = raw.raft.prs.conf();
        let voters = conf.voters.ids();
        let learners = conf.learners.clone();
        let all: Vec<u64> = self.nodes.keys().copied().collect();
        let outside: Vec<u64> = all
            .iter()
            .copied()
            .filter(|id| !voters.contains(id) && !learners.contains(id))
            .collect();
        let single = |t: ConfChangeType, id: u64| ConfChangeSingle {
            change_type: t as i32,
            node_id: id,
        };
        let choice = self.rng.random_range(0..5u32);
        let changes = match choice {
            0 => self
                .pick(&outside)
                .map(|id| vec![single(ConfChangeType::AddLearnerNode, id)]),
            1 => self
                .pick(&learners)
                .map(|id| vec![single(ConfChangeType::AddNode, id)]),
            2 if voters.len() > 3 => self
                .pick(&voters)
                .filter(|id| *id != leader)
                .map(|id| vec![single(ConfChangeType::RemoveNode, id)]),
            3 => self
                .pick(&learners)
                .map(|id| vec![single(ConfChangeType::RemoveNode, id)]),
            4 if voters.len() >= 3 => {
                // Replace a voter in one joint change.
                let out = self.pick(&voters).filter(|id| *id != leader);
                let inn = self.pick(&outside).or(self.pick(&learners));
                match (out, inn) {
                    (Some(o), Some(i)) => Some(vec![
                        single(ConfChangeType::RemoveNode, o),
                        single(ConfChangeType::AddNode, i),
                    ]),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(changes) = changes else {
            return Ok(());
        };
        // Members being added must be running to catch up.
        for c in &changes {
            if c.change_type != ConfChangeType::RemoveNode as i32
                && !self.nodes[&c.node_id].is_up()
                && !self.lives.contains_key(&c.node_id)
            {
                self.lives.insert(c.node_id, 0);
                self.restart(c.node_id)?;
            }
        }
        let cc = ConfChangeV2 {
            changes,
            ..Default::default()
        };
        let text = raft_proto::conf_changes_to_string(&cc.changes);
        let raw = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.raw.as_mut())
            .expect("leader is up");
        let result = raw.propose_conf_change(vec![], cc);
        self.count("conf change");
        self.log(format!(
            "leader {leader} proposes conf change {text}: {result:?}"
        ));
        Ok(())
    }

    /// Heals every fault, restarts every crashed member, and requires the cluster to elect a
    /// leader and commit a new write on every running member of its configuration within a bound.
    fn heal_and_check_liveness(&mut self) -> Result<(), String> {
        self.faults = false;
        self.cut.clear();
        let down: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(id, n)| !n.is_up() && self.lives.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in down {
            self.restart(id)?;
        }
        self.log("healed: liveness phase".to_string());
        const BOUND: u64 = 3_000;
        // The write, and the leader and term that accepted it (a client retries with a new
        // leader: a write in flight when leadership changes may be lost, as in any Raft).
        let mut proposed: Option<(u64, u64, u64)> = None;
        for tick in 0..BOUND {
            self.settle()?;
            let ids = self.up_ids();
            for id in ids {
                if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
                    raw.tick();
                }
            }
            self.event += 1;
            self.check()?;
            let Some(leader) = self.leader() else {
                continue;
            };
            self.operate_membership(leader)?;
            let term = self.nodes[&leader].raw.as_ref().map_or(0, |r| r.raft.term);
            if let Some((value, _, _)) = proposed {
                if self.all_members_applied(leader, value) {
                    self.report.recovery_ticks = tick;
                    return self.finish(leader);
                }
            }
            if proposed.is_none_or(|(_, l, t)| (l, t) != (leader, term)) {
                self.next_value += 1;
                let value = self.next_value;
                let raw = self.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut());
                if let Some(raw) = raw {
                    if raw.propose(vec![], encode_write(255, value)).is_ok() {
                        proposed = Some((value, leader, term));
                    }
                }
            }
        }
        Err(format!(
            "liveness: after healing, no write committed on every member within {BOUND} ticks \
             (leader {:?})",
            self.leader()
        ))
    }

    /// What an operator does once a leader is known: every member of its configuration runs, and
    /// every node the group removed is stopped. (Without pre-vote and check-quorum a removed node
    /// that never learned of its removal disrupts the group forever with campaigns of ever higher
    /// terms, thesis §4.2.3; no Raft implementation prevents that, operators stop such nodes.)
    fn operate_membership(&mut self, leader: u64) -> Result<(), String> {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return Ok(());
        };
        let members: BTreeSet<u64> = raw.raft.prs.ids().collect();
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let up = self.nodes[&id].is_up();
            if members.contains(&id) && !up {
                self.lives.entry(id).or_insert(0);
                self.restart(id)?;
            } else if !members.contains(&id) && up {
                self.nodes.get_mut(&id).expect("known id").crash();
                *self.lives.entry(id).or_default() += 1;
                self.log(format!("node {id} stopped: no longer a member"));
            }
        }
        Ok(())
    }

    fn all_members_applied(&self, leader: u64, value: u64) -> bool {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return false;
        };
        let members: Vec<u64> = raw.raft.prs.ids().collect();
        members.iter().all(|id| {
            self.nodes
                .get(id)
                .is_some_and(|n| n.sm.kv.get(&255) == Some(&value))
        })
    }

    /// Delivers, persists and applies everything pending, with no faults, until quiet.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(m) = self.in_flight.pop_front() {
                busy = true;
                self.deliver(m)?;
                self.check()?;
            }
            for id in self.up_ids() {
                let has_ready = self.nodes[&id].raw.as_ref().is_some_and(|r| r.has_ready());
                if has_ready {
                    busy = true;
                    self.take_ready(id)?;
                }
                while !self.nodes[&id].unpersisted.is_empty() {
                    busy = true;
                    self.persist(id)?;
                }
                let node = &self.nodes[&id];
                let servable = node.reads.iter().any(|r| r.index <= node.sm.applied_index);
                if !node.to_apply.is_empty() || servable {
                    busy = true;
                    self.apply(id, usize::MAX)?;
                }
                self.check()?;
            }
            if !busy {
                return Ok(());
            }
        }
        Err("the healed cluster never went quiet".to_string())
    }

    fn finish(&mut self, leader: u64) -> Result<(), String> {
        self.checker.check_log_matching(&self.nodes)?;
        let raw = self.nodes[&leader].raw.as_ref().expect("leader is up");
        self.report.final_leader = (leader, raw.raft.term);
        self.report.final_voters = raw.raft.prs.conf().voters.ids();
        self.report.events = self.event;
        self.report.writes_committed = self.nodes[&leader].sm.applied_index;
        self.report.terms_with_leader = self.checker.terms_with_leader();
        Ok(())
    }
}
