//! The `raft-sim` demo as a library: a seeded, deterministic run of a simulated cluster.
//!
//! Elects a leader in an N-node cluster, then commits proposals made at random nodes while links
//! lose messages and the leader is cut off from time to time. After every round it checks election
//! safety (at most one leader per term) and state machine safety (no two nodes applied different
//! entries at one position); at the end, with the faults healed, every proposal must be applied on
//! every node exactly once (liveness within a bound). The same options give the same run.

use crate::network::default_config;
use crate::Network;
use raft_core::StateRole;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Seeds every random choice (schedule, losses, election timeouts).
    pub seed: u64,
    /// Cluster size (voters `1..=nodes`).
    pub nodes: u64,
    /// How many proposals to commit.
    pub proposals: u64,
    /// The fraction of messages each link loses while faults are on.
    pub drop_rate: f64,
    /// Whether nodes run pre-vote (check-quorum is always on).
    pub pre_vote: bool,
    /// Print the cluster state before each retry round.
    pub verbose: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 1,
            nodes: 5,
            proposals: 500,
            drop_rate: 0.05,
            pre_vote: true,
            verbose: false,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The first leader elected.
    pub first_leader: u64,
    /// Ticks until the first leader was elected.
    pub election_ticks: u64,
    /// Ticks in the whole run.
    pub ticks: u64,
    /// The leader of each term that had one.
    pub leaders: BTreeMap<u64, u64>,
    /// How many times the leader was cut off.
    pub partitions: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost to faults.
    pub dropped: u64,
    /// Proposals applied (on every node).
    pub applied: u64,
    /// The leader at the end.
    pub final_leader: u64,
    /// Its term.
    pub final_term: u64,
    /// Its commit index.
    pub final_commit: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// What the checker has seen so far.
#[derive(Default)]
struct History {
    leaders: BTreeMap<u64, u64>,
    /// The entry (term, data) applied at each index by any node.
    applied: Vec<(u64, Vec<u8>)>,
}

impl History {
    fn check(&mut self, net: &Network) -> Result<(), String> {
        for (id, node) in &net.nodes {
            if node.state() == StateRole::Leader {
                let leader = *self.leaders.entry(node.term()).or_insert(*id);
                if leader != *id {
                    return Err(format!(
                        "election safety: nodes {leader} and {id} both led term {}",
                        node.term()
                    ));
                }
            }
            for (i, e) in node.applied.iter().enumerate() {
                match self.applied.get(i) {
                    Some((term, data)) if (*term, &data[..]) != (e.term, &e.data[..]) => {
                        return Err(format!(
                            "state machine safety: node {id} applied a different entry as its \
                             payload #{i}"
                        ))
                    }
                    Some(_) => {}
                    None => self.applied.push((e.term, e.data.to_vec())),
                }
            }
        }
        Ok(())
    }
}

/// Runs the demo described by `opts`. Returns a summary, or the first safety or liveness violation.
pub fn run(opts: &DemoOptions) -> Result<Summary, String> {
    let started = Instant::now();
    let pre_vote = opts.pre_vote;
    let mut net = Network::with_config(opts.nodes, |id| {
        let mut cfg = default_config(id);
        cfg.pre_vote = pre_vote;
        cfg.check_quorum = true;
        cfg.seed = Some(opts.seed.wrapping_mul(1000).wrapping_add(id));
        cfg
    });
    net.record_delivered = false;
    net.seed(opts.seed);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut history = History::default();
    let ids: Vec<u64> = (1..=opts.nodes).collect();

    let mut ticks = 0u64;
    while net.leader().is_none() {
        net.tick_all();
        ticks += 1;
        history.check(&net)?;
        if ticks > 1000 {
            return Err("no leader elected within 1000 ticks".into());
        }
    }
    let first_leader = net.leader().unwrap_or(0);
    let election_ticks = ticks;

    for &a in &ids {
        for &b in &ids {
            if a != b {
                net.drop_link(a, b, opts.drop_rate);
            }
        }
    }
    let mut pending: BTreeSet<u64> = (0..opts.proposals).collect();
    let mut next = 0u64;
    let mut partitions = 0u64;
    let mut healed_at = None;
    while next < opts.proposals {
        let at = ids[rng.random_range(0..ids.len())];
        if net
            .node_mut(at)
            .raw
            .propose(vec![], next.to_le_bytes().to_vec())
            .is_ok()
        {
            next += 1;
        }
        if rng.random_range(0..4) == 0 {
            net.tick_all();
            ticks += 1;
        }
        if rng.random_range(0..100) == 0 && healed_at.is_none() {
            if let Some(leader) = net.leader() {
                net.isolate(leader);
                partitions += 1;
                healed_at = Some(ticks + rng.random_range(5..40));
            }
        }
        if healed_at.is_some_and(|t| ticks >= t) {
            net.recover();
            for &a in &ids {
                for &b in &ids {
                    if a != b {
                        net.drop_link(a, b, opts.drop_rate);
                    }
                }
            }
            healed_at = None;
        }
        net.stabilize();
        history.check(&net)?;
    }

    // Heal everything, then re-propose what was lost (dropped forwards, truncated entries) until
    // every node has applied every payload.
    net.recover();
    let mut rounds = 0;
    loop {
        for _ in 0..30 {
            net.tick_all();
            ticks += 1;
            history.check(&net)?;
        }
        for node in net.nodes.values() {
            for e in &node.applied {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&e.data[..8]);
                pending.remove(&u64::from_le_bytes(seq));
            }
        }
        let complete = net
            .nodes
            .values()
            .all(|n| n.applied.len() == history.applied.len());
        if pending.is_empty() && complete {
            break;
        }
        rounds += 1;
        if rounds > 50 {
            return Err(format!(
                "liveness: {} proposals never committed",
                pending.len()
            ));
        }
        if let Some(leader) = net.leader() {
            if opts.verbose {
                dump_state(&net, leader, &pending);
            }
            for seq in pending.clone() {
                let _ = net
                    .node_mut(leader)
                    .raw
                    .propose(vec![], seq.to_le_bytes().to_vec());
            }
            net.stabilize();
            history.check(&net)?;
        }
    }
    let mut seen = BTreeSet::new();
    for (i, (term, data)) in history.applied.iter().enumerate() {
        if !seen.insert(data.clone()) {
            return Err(format!(
                "a proposal was applied twice (payload #{i}, term {term}, data {data:?}, first at #{:?})",
                history.applied.iter().position(|(_, d)| d == data)
            ));
        }
    }

    let leader = net.leader().unwrap_or(0);
    let node = net.node(leader);
    Ok(Summary {
        first_leader,
        election_ticks,
        ticks,
        leaders: history.leaders,
        partitions,
        delivered: net.delivered_count,
        dropped: net.dropped,
        applied: history.applied.len() as u64,
        final_leader: leader,
        final_term: node.term(),
        final_commit: node.raw.raft.raft_log.committed,
        elapsed: started.elapsed(),
    })
}

/// Prints every node's state and the leader's view of its followers (with `--verbose`).
fn dump_state(net: &Network, leader: u64, pending: &BTreeSet<u64>) {
    for (id, n) in &net.nodes {
        let log = &n.raw.raft.raft_log;
        eprintln!(
            "node {id}: {:?} term {} leader {} commit {} last {} persisted {} applied {}",
            n.state(),
            n.term(),
            n.raw.raft.leader_id,
            log.committed,
            log.last_index(),
            log.persisted,
            log.applied
        );
    }
    for (id, pr) in net.node(leader).raw.raft.prs.iter() {
        eprintln!("  progress of {id} at leader {leader}: {pr:?}");
    }
    eprintln!("re-proposing {} lost proposals: {pending:?}", pending.len());
}
