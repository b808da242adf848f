//! `raft-sim`: runs the deterministic simulator of [`rafttest::sim`] over a range of seeds and
//! prints what the runs did; on a safety or liveness violation, prints the seed, the event, the
//! features the seed drew, the last events and the command that replays the run, and exits with
//! status 1. `raft-sim --help` lists every option with its default.
//!
//! `raft-sim --multi` runs the multi-raft simulator of [`rafttest::multisim`] instead: 3-5 nodes
//! each holding a replica of every group (`--groups`, a thousand by default).

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use raft_core::ReadOnlyOption;
use rafttest::multisim::{self, MultiOptions};
use rafttest::sim::{run, SimOptions};
use std::process::ExitCode;
use std::time::Instant;

/// Which faults to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Faults {
    /// Network faults, crashes and membership churn.
    All,
    /// Network faults only (no crashes, no membership changes).
    Network,
    /// Crashes and membership churn on a reliable network.
    Crashes,
    /// No faults at all.
    None,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    /// Enabled on every node.
    On,
    /// Disabled on every node.
    Off,
}

/// How reads are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReadMode {
    /// A heartbeat round acknowledged by a quorum (ReadIndex).
    Safe,
    /// The leader lease (needs check-quorum; runs on a shared clock).
    Lease,
}

/// Deterministic simulation of a Raft cluster under faults, checking safety after every event and
/// liveness after healing. Options left unset are drawn per seed (swarm testing); set ones are
/// pinned for every seed. The same options give the same run.
#[derive(Debug, Parser)]
#[command(name = "raft-sim", version)]
struct Args {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many consecutive seeds to run [default: 1000; with --multi, 10].
    #[arg(long)]
    seeds: Option<u64>,
    /// Events in each run's faulty phase.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Initial voters, 1-9 [default: drawn per seed from 1-7; with --multi, 3-5].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: Option<u64>,
    /// Simulate many Raft groups per node (`raft-multi`): every node holds a replica of every
    /// group, most of them idle and asleep, with crashes, partitions, quiescence and the failure
    /// detector's wake-ups; `--disk` sets the share of nodes whose groups live in one shared log
    /// on a simulated disk (power losses, failed fsyncs and read errors, drawn per seed).
    /// Options about membership, reads, pre-vote, check-quorum, spares and other disk faults
    /// do not apply (pre-vote and check-quorum are drawn per seed).
    #[arg(long)]
    multi: bool,
    /// With --multi, keep sleeping groups live instead of frozen (a run goes exactly as with
    /// freezing: thawing restores the node).
    #[arg(long)]
    no_freeze: bool,
    /// Groups with --multi.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    groups: u64,
    /// Spare nodes that membership changes bring in and out.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=4))]
    spares: u64,
    /// Which faults to inject.
    #[arg(long, value_enum, default_value_t = Faults::All)]
    faults: Faults,
    /// Probability that a message is lost, 0-0.5 [default: drawn per seed].
    #[arg(long, value_parser = probability)]
    loss: Option<f64>,
    /// Probability that a message is delivered twice, 0-0.5 [default: drawn per seed].
    #[arg(long, value_parser = probability)]
    duplication: Option<f64>,
    /// Probability that a delivery picks a random message in flight, 0-0.5 [default: drawn].
    #[arg(long, value_parser = probability)]
    reordering: Option<f64>,
    /// Pre-vote on every node [default: drawn per seed].
    #[arg(long, value_enum)]
    pre_vote: Option<Switch>,
    /// Check-quorum on every node [default: drawn per seed].
    #[arg(long, value_enum)]
    check_quorum: Option<Switch>,
    /// How reads are confirmed [default: drawn per seed].
    #[arg(long, value_enum)]
    read_mode: Option<ReadMode>,
    /// The share of nodes whose durable state is `storage-disk` on a simulated disk that loses,
    /// tears and reorders unsynced writes at a crash, 0-1 [default: drawn per seed; with
    /// --multi, half the nodes or all, drawn per seed].
    #[arg(long, value_parser = share)]
    disk: Option<f64>,
    /// Whether those disks fail reads (transient I/O errors) and, on one node of at least three
    /// voters, corrupt what they hold (bits flipped at rest, misdirected writes) while the
    /// nemesis runs [default: drawn per seed]. With --multi: whether the core's reads of the
    /// shared log fail (`on`: one read in ten, with no entry cache).
    #[arg(long, value_enum)]
    disk_faults: Option<Switch>,
    /// Same as `--pre-vote off`.
    #[arg(long, conflicts_with = "pre_vote")]
    no_pre_vote: bool,
    /// Same as `--check-quorum off`.
    #[arg(long, conflicts_with = "check_quorum")]
    no_check_quorum: bool,
    /// No crashes or restarts.
    #[arg(long)]
    no_crashes: bool,
    /// No membership changes.
    #[arg(long)]
    no_membership: bool,
    /// One fixed feature set for every seed instead of drawing one per seed.
    #[arg(long)]
    no_swarm: bool,
    /// Stop after this event (replays a failure; implies one seed).
    #[arg(long, default_value_t = 0)]
    stop_after: u64,
    /// Print every event (implies one seed).
    #[arg(short, long)]
    verbose: bool,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=0.5).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not within 0-0.5"))
    }
}

fn share(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not within 0-1"))
    }
}

fn options(args: &Args) -> (SimOptions, u64) {
    let switch = |s: Option<Switch>, off: bool| {
        if off {
            Some(false)
        } else {
            s.map(|s| s == Switch::On)
        }
    };
    let mut opts = SimOptions {
        seed: args.seed,
        nodes: args.nodes,
        spares: args.spares,
        events: args.events,
        loss: args.loss,
        duplication: args.duplication,
        reordering: args.reordering,
        crashes: !args.no_crashes,
        membership: !args.no_membership,
        disk: args.disk,
        disk_faults: args.disk_faults.map(|s| s == Switch::On),
        pre_vote: switch(args.pre_vote, args.no_pre_vote),
        check_quorum: switch(args.check_quorum, args.no_check_quorum),
        read_mode: args.read_mode.map(|m| match m {
            ReadMode::Safe => ReadOnlyOption::Safe,
            ReadMode::Lease => ReadOnlyOption::LeaseBased,
        }),
        swarm: !args.no_swarm,
        verbose: args.verbose,
        stop_after: args.stop_after,
        planted_bug: None,
    };
    match args.faults {
        Faults::All => {}
        Faults::Network => {
            opts.crashes = false;
            opts.membership = false;
        }
        Faults::Crashes | Faults::None => {
            opts.loss = Some(0.0);
            opts.duplication = Some(0.0);
            opts.reordering = Some(0.0);
            if args.faults == Faults::None {
                opts.crashes = false;
                opts.membership = false;
            }
        }
    }
    (opts, seeds(args, 1000))
}

/// The seeds to run: one when replaying or printing every event.
fn seeds(args: &Args, default: u64) -> u64 {
    if args.verbose || args.stop_after != 0 {
        1
    } else {
        args.seeds.unwrap_or(default).max(1)
    }
}

fn multi_options(args: &Args) -> Result<(MultiOptions, u64), String> {
    let nodes = match args.nodes {
        Some(n) if !(3..=5).contains(&n) => {
            return Err(format!(
                "--nodes {n}: with --multi, nodes must be within 3-5"
            ))
        }
        nodes => nodes,
    };
    let mut opts = MultiOptions {
        seed: args.seed,
        nodes,
        groups: args.groups,
        events: args.events,
        loss: args.loss,
        duplication: args.duplication,
        reordering: args.reordering,
        crashes: true,
        partitions: true,
        disk: args.disk,
        disk_faults: args.disk_faults.map(|s| s == Switch::On),
        verbose: args.verbose,
        stop_after: args.stop_after,
        planted_bug: None,
        no_freeze: args.no_freeze,
    };
    match args.faults {
        Faults::All => {}
        Faults::Network => opts.crashes = false,
        Faults::Crashes | Faults::None => {
            opts.loss = Some(0.0);
            opts.duplication = Some(0.0);
            opts.reordering = Some(0.0);
            opts.partitions = false;
            opts.crashes = args.faults == Faults::Crashes;
        }
    }
    Ok((opts, seeds(args, 10)))
}

/// One seed's line of `raft-sim --multi`.
fn print_multi_seed(seed: u64, millis: u128, r: &multisim::MultiReport) {
    println!(
        "seed {seed:>4}: ok in {millis:>5} ms | {} nodes | {:>5} elections | {:>5} entries \
         applied | {:>2} crashes | {:>2} partitions | {:>5} naps ({} under faults) | {:>5} \
         wake-ups | {:>6} envelopes, {:.1} messages each | recovered in {} rounds, failover in {} \
         | {} nodes on disk: {} fsyncs, {} synced batches of {:.1} groups, {} recoveries ({} \
         torn tails, {} power cuts mid-write, {} failed fsyncs)",
        r.nodes,
        r.elections,
        r.entries_applied,
        r.crashes,
        r.partitions,
        r.naps,
        r.faulty_naps,
        r.wakeups,
        r.envelopes_sent,
        r.messages_sent as f64 / r.envelopes_sent.max(1) as f64,
        r.recovery_rounds,
        r.failover_rounds,
        r.disk_nodes,
        r.disk.fsyncs,
        r.disk.synced_batches,
        r.disk.synced_groups as f64 / r.disk.synced_batches.max(1) as f64,
        r.disk.recoveries,
        r.disk.torn_tails,
        r.disk.power_cuts,
        r.disk.failed_fsyncs,
    );
}

/// `raft-sim --multi`: runs the multi-raft simulator over the seeds and prints what they did.
fn main_multi(args: &Args) -> ExitCode {
    let (opts, seeds) = match multi_options(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("raft-sim: {error}");
            return ExitCode::from(2);
        }
    };
    let shown = |v: Option<String>| v.unwrap_or_else(|| "drawn per seed".to_string());
    println!(
        "raft-sim --multi: {} seeds from {}, {} events each; {} groups on nodes {}; loss {}, \
         duplication {}, reordering {}; crashes {}, partitions {}; nodes on disk {}",
        seeds,
        opts.seed,
        opts.events,
        opts.groups,
        shown(opts.nodes.map(|n| n.to_string())),
        shown(opts.loss.map(|p| p.to_string())),
        shown(opts.duplication.map(|p| p.to_string())),
        shown(opts.reordering.map(|p| p.to_string())),
        opts.crashes,
        opts.partitions,
        shown(opts.disk.map(|share| format!("{share} of them"))),
    );
    let started = Instant::now();
    let mut t = multisim::MultiReport::default();
    let mut slowest = (0, 0, 0);
    let mut passed = 0;
    for seed in opts.seed..opts.seed + seeds {
        let run_opts = MultiOptions {
            seed,
            ..opts.clone()
        };
        let run_started = Instant::now();
        match multisim::run(&run_opts) {
            Ok(r) => {
                if seeds <= 20 {
                    print_multi_seed(seed, run_started.elapsed().as_millis(), &r);
                }
                passed += 1;
                slowest = slowest.max((r.recovery_rounds.max(r.failover_rounds), seed, 0));
                t.events += r.events;
                t.elections += r.elections;
                t.entries_applied += r.entries_applied;
                t.writes_applied += r.writes_applied;
                t.crashes += r.crashes;
                t.partitions += r.partitions;
                t.naps += r.naps;
                t.faulty_naps += r.faulty_naps;
                t.wakeups += r.wakeups;
                t.envelopes_sent += r.envelopes_sent;
                t.messages_sent += r.messages_sent;
                t.disk_nodes += r.disk_nodes;
                t.disk.add(&r.disk);
            }
            Err(failure) => {
                println!("seed {seed:>4}: FAILED after {passed} passing seeds");
                println!("{failure}");
                return ExitCode::from(1);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!();
    println!("| seeds | groups | events | elections | entries applied | crashes | partitions | naps (under faults) | wake-ups | envelopes | messages per envelope | violations |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {:.1} | 0 |",
        passed,
        opts.groups,
        t.events,
        t.elections,
        t.entries_applied,
        t.crashes,
        t.partitions,
        t.naps,
        t.faulty_naps,
        t.wakeups,
        t.envelopes_sent,
        t.messages_sent as f64 / t.envelopes_sent.max(1) as f64,
    );
    println!();
    println!(
        "all {passed} seeds passed every safety check after every event, recovered after healing \
         (every group led and a new write applied on every node; slowest: {} rounds, seed {}), \
         fell asleep when idle, and failed over when the busiest leader crashed ({:.1} s)",
        slowest.0, slowest.1, secs
    );
    let d = &t.disk;
    println!(
        "{} nodes on a shared log on a simulated disk wrote {} Ready batches, {} of them with \
         one fsync ({:.1} groups per fsync; {} fsyncs of any file in all), and recovered {} \
         times from a power loss ({} torn tails cut, {} cuts in the middle of a batch's write, \
         {} failed fsyncs), every group checked against what its last fsync made durable; the \
         cores met {} read errors of their disks ({} reported to the application, the others \
         logged by the core) and tried again",
        t.disk_nodes,
        d.batches,
        d.synced_batches,
        d.synced_groups as f64 / d.synced_batches.max(1) as f64,
        d.fsyncs,
        d.recoveries,
        d.torn_tails,
        d.power_cuts,
        d.failed_fsyncs,
        d.read_errors,
        d.read_errors_reported,
    );
    ExitCode::SUCCESS
}

/// Totals over the seeds run.
#[derive(Default)]
struct Totals {
    seeds: u64,
    events: u64,
    elections: u64,
    entries: u64,
    reads: u64,
    crashes: u64,
    partitions: u64,
    conf_changes: u64,
    transfers: u64,
    /// Proposal outcomes checked: committed, dropped, unknown, not appended, unanswered.
    outcomes: [u64; 5],
    /// Seeds with nodes on `storage-disk`, their crash recoveries, and the nodes a failed fsync
    /// stopped.
    disk: [u64; 3],
    /// Disk faults: read errors injected and met by the core; damaged disks; bits flipped at
    /// rest in sealed segments, live segments and snapshots; misdirected writes; corruption
    /// detected on reads, at recovery, and missed by recovery; lost writes, writes to the state
    /// file misdirected or lost, and checkpoints rolled forward at recovery.
    disk_faults: [u64; 13],
    /// Seeds with quiescence, the naps leaders started, and the wake-ups by the failure detector.
    quiescence: [u64; 3],
    /// The longest recovery after healing, in round trips, its seed and its bound.
    slowest_recovery: (u64, u64, u64),
    /// Seeds whose damaged disks left no quorum of healthy nodes to demand progress from.
    liveness_unchecked: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.multi {
        return main_multi(&args);
    }
    let (opts, seeds) = options(&args);
    let shown = |v: Option<String>| v.unwrap_or_else(|| "drawn per seed".to_string());
    println!(
        "raft-sim: {} seeds from {}, {} events each; nodes {} (+{} spares); loss {}, \
         duplication {}, reordering {}; crashes {}, membership churn {}; share of nodes on \
         storage-disk {}, disk faults {}; swarm {}",
        seeds,
        opts.seed,
        opts.events,
        shown(opts.nodes.map(|n| n.to_string())),
        opts.spares,
        shown(opts.loss.map(|p| p.to_string())),
        shown(opts.duplication.map(|p| p.to_string())),
        shown(opts.reordering.map(|p| p.to_string())),
        opts.crashes,
        opts.membership,
        shown(opts.disk.map(|p| p.to_string())),
        shown(opts.disk_faults.map(|on| on.to_string())),
        opts.swarm,
    );
    let per_seed_lines = seeds <= 20;
    let bar = if per_seed_lines {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(seeds);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} seeds, {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let started = Instant::now();
    let mut t = Totals::default();
    for seed in opts.seed..opts.seed + seeds {
        let run_opts = SimOptions {
            seed,
            ..opts.clone()
        };
        let run_started = Instant::now();
        match run(&run_opts) {
            Ok(r) => {
                let count = |k: &str| r.counts.get(k).copied().unwrap_or(0);
                if per_seed_lines {
                    println!(
                        "seed {seed:>4}: ok in {:>5} ms | leaders in {:>3} terms | {:>5} entries \
                         applied | {:>4} reads checked | {:>3} crashes | {:>3} partitions | \
                         {:>3} conf changes | {:>3} transfers | final leader {} (term {}) of \
                         voters {:?} | recovered in {} ticks\n           {}",
                        run_started.elapsed().as_millis(),
                        r.terms_with_leader,
                        r.writes_committed,
                        r.reads_served,
                        count("crash"),
                        count("partition"),
                        count("conf change"),
                        count("transfer"),
                        r.final_leader.0,
                        r.final_leader.1,
                        r.final_voters,
                        r.recovery_ticks,
                        r.features
                    );
                }
                t.seeds += 1;
                t.events += r.events;
                t.elections += r.terms_with_leader;
                t.entries += r.writes_committed;
                t.reads += r.reads_served;
                t.crashes += count("crash");
                t.partitions += count("partition");
                t.conf_changes += count("conf change");
                t.transfers += count("transfer");
                t.outcomes[0] += count("outcome committed");
                t.outcomes[1] += count("outcome dropped");
                t.outcomes[2] += count("outcome unknown");
                t.outcomes[3] += count("outcome not appended");
                t.outcomes[4] += count("outcome unanswered");
                t.disk[0] += u64::from(count("disk node") > 0);
                t.disk[1] += count("disk recovery");
                t.disk[2] += count("disk failure");
                let faults = [
                    "read error injected",
                    "read error met",
                    "damaged disk",
                    "flip sealed segment",
                    "flip live segment",
                    "flip snapshot",
                    "misdirected write",
                    "corruption detected",
                    "corruption detected at recovery",
                    "damage missed by recovery",
                    "lost write",
                    "state file write damaged",
                    "checkpoint rolled forward",
                ];
                for (total, kind) in t.disk_faults.iter_mut().zip(faults) {
                    *total += count(kind);
                }
                t.liveness_unchecked += count("liveness not checked");
                t.quiescence[0] += u64::from(count("quiescence") > 0);
                t.quiescence[1] += count("quiesce");
                t.quiescence[2] += count("wake");
                t.slowest_recovery =
                    t.slowest_recovery
                        .max((r.recovery_ticks, seed, r.recovery_bound));
                bar.set_message(format!("{} events, 0 violations", t.events));
                bar.inc(1);
            }
            Err(failure) => {
                bar.abandon();
                println!("seed {seed:>4}: FAILED after {} passing seeds", t.seeds);
                println!("{failure}");
                return ExitCode::from(1);
            }
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!();
    println!("| seeds | events | leaders elected | entries applied | reads checked | crashes | partitions | conf changes | transfers | violations |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | 0 |",
        t.seeds,
        t.events,
        t.elections,
        t.entries,
        t.reads,
        t.crashes,
        t.partitions,
        t.conf_changes,
        t.transfers,
    );
    println!();
    println!(
        "slowest recovery after healing: {} round trips (seed {}, bound {}: {} + {} per entry \
         a member lagged)",
        t.slowest_recovery.0,
        t.slowest_recovery.1,
        t.slowest_recovery.2,
        rafttest::sim::LIVENESS_BOUND,
        rafttest::sim::LIVENESS_PER_ENTRY
    );
    println!(
        "proposal outcomes checked: {} committed, {} dropped, {} unknown, {} not appended, {} \
         unanswered",
        t.outcomes[0], t.outcomes[1], t.outcomes[2], t.outcomes[3], t.outcomes[4]
    );
    println!(
        "storage-disk on simulated disks: {} seeds, {} crash recoveries checked, {} nodes stopped \
         by a failed fsync",
        t.disk[0], t.disk[1], t.disk[2]
    );
    let d = &t.disk_faults;
    println!(
        "disk faults: {} read errors injected, {} met by the core and retried; {} damaged disks: \
         {} bits flipped at rest ({} in sealed segments, {} in live segments, {} in snapshots), \
         {} writes misdirected and {} lost ({} of them to a state file: {} checkpoints rolled \
         forward from the log at recovery); corruption detected {} times on reads and {} at \
         recovery (the node stopped for good), {} missed by recovery, none served{}",
        d[0],
        d[1],
        d[2],
        d[3] + d[4] + d[5],
        d[3],
        d[4],
        d[5],
        d[6],
        d[10],
        d[11],
        d[12],
        d[7],
        d[8],
        d[9],
        if t.liveness_unchecked > 0 {
            format!("; liveness not checked in {} seeds", t.liveness_unchecked)
        } else {
            String::new()
        }
    );
    println!(
        "quiescence: {} seeds, {} naps started by leaders, {} wake-ups by the failure detector",
        t.quiescence[0], t.quiescence[1], t.quiescence[2]
    );
    println!(
        "all {} seeds passed every safety check after every event and recovered after healing \
         ({:.1} s, {:.0} events/s)",
        t.seeds,
        secs,
        t.events as f64 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}
