//! `raft-sim`: a seeded, deterministic run of a simulated cluster.
//!
//! Elects a leader in an N-node cluster (5 by default), then commits proposals made at random nodes
//! while links lose messages and the leader is cut off from time to time. After every round it checks
//! election safety (at most one leader per term) and state machine safety (no two nodes applied
//! different entries at one index); at the end, with the faults healed, every proposal must be
//! applied on every node exactly once. The same seed gives the same run.
//!
//! Usage: `raft-sim [--seed N] [--nodes N] [--proposals N] [--drop RATE] [--no-pre-vote] [--verbose]`

use raft_core::StateRole;
use rafttest::network::default_config;
use rafttest::Network;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Instant;

struct Options {
    seed: u64,
    nodes: u64,
    proposals: u64,
    drop_rate: f64,
    pre_vote: bool,
    verbose: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut opts = Options {
        seed: 1,
        nodes: 5,
        proposals: 500,
        drop_rate: 0.05,
        pre_vote: true,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => {
                opts.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--nodes" => {
                opts.nodes = value("--nodes")?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?
            }
            "--proposals" => {
                opts.proposals = value("--proposals")?
                    .parse()
                    .map_err(|e| format!("--proposals: {e}"))?
            }
            "--drop" => {
                opts.drop_rate = value("--drop")?
                    .parse()
                    .map_err(|e| format!("--drop: {e}"))?
            }
            "--pre-vote" => opts.pre_vote = true,
            "--no-pre-vote" => opts.pre_vote = false,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => {
                return Err(
                    "usage: raft-sim [--seed N] [--nodes N] [--proposals N] [--drop RATE] \
                            [--pre-vote | --no-pre-vote] [--verbose]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if !(1..=9).contains(&opts.nodes) {
        return Err("--nodes must be between 1 and 9".into());
    }
    if !(0.0..0.5).contains(&opts.drop_rate) {
        return Err("--drop must be in [0, 0.5)".into());
    }
    Ok(opts)
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

fn run(opts: &Options) -> Result<(), String> {
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
    println!("elected node {first_leader} as leader after {ticks} ticks");

    for &a in &ids {
        for &b in &ids {
            if a != b {
                net.drop_link(a, b, opts.drop_rate);
            }
        }
    }
    let mut pending: BTreeSet<u64> = (0..opts.proposals).collect();
    let mut next = 0u64;
    let mut partitions = 0;
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
    println!("seed:               {}", opts.seed);
    println!(
        "nodes:              {} (pre-vote {}, check-quorum on)",
        opts.nodes, opts.pre_vote
    );
    println!("ticks:              {ticks}");
    println!(
        "leader terms:       {} ({:?})",
        history.leaders.len(),
        history.leaders
    );
    println!("leader partitions:  {partitions}");
    println!("messages delivered: {}", net.delivered_count);
    println!(
        "messages dropped:   {} (link loss {:.0}%)",
        net.dropped,
        opts.drop_rate * 100.0
    );
    println!(
        "proposals applied:  {} of {} on every node",
        history.applied.len(),
        opts.proposals
    );
    println!(
        "final leader:       node {leader}, term {}, commit {}",
        node.term(),
        node.raw.raft.raft_log.committed
    );
    println!("checks:             election safety, state machine safety, exactly-once apply: OK");
    println!("elapsed:            {:.2?}", started.elapsed());
    Ok(())
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

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(violation) => {
            eprintln!("FAILED (seed {}): {violation}", opts.seed);
            eprintln!(
                "replay: cargo run -p rafttest --release --bin raft-sim -- --seed {} --nodes {} \
                 --proposals {} --drop {} {} --verbose",
                opts.seed,
                opts.nodes,
                opts.proposals,
                opts.drop_rate,
                if opts.pre_vote {
                    "--pre-vote"
                } else {
                    "--no-pre-vote"
                }
            );
            ExitCode::FAILURE
        }
    }
}
