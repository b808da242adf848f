//! `raft-sim`: runs the deterministic simulator of [`rafttest::sim`] over a range of seeds and
//! prints what each run did; on a safety or liveness violation, prints the seed, the event, the
//! last events and the command that replays the run, and exits with status 1.
//!
//! Usage: `raft-sim [--seed N] [--seeds COUNT] [--nodes N] [--events N]
//! [--faults all|network|crashes|none] [--loss P] [--duplication P] [--reordering P]
//! [--stop-after EVENT] [--no-crashes] [--no-membership] [--no-pre-vote] [--no-check-quorum]
//! [--verbose]`

use indicatif::{ProgressBar, ProgressStyle};
use rafttest::sim::{run, SimOptions};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: raft-sim [--seed N] [--seeds COUNT] [--nodes N] [--events N] \
    [--faults all|network|crashes|none] [--loss P] [--duplication P] [--reordering P] \
    [--stop-after EVENT] [--no-crashes] [--no-membership] [--no-pre-vote] [--no-check-quorum] \
    [--verbose]";

fn parse_options() -> Result<(SimOptions, u64), String> {
    let mut opts = SimOptions::default();
    let mut seeds = 100;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| format!("{name}: {e}"))
        }
        match arg.as_str() {
            "--seed" => opts.seed = num("--seed", value("--seed")?)?,
            "--seeds" => seeds = num("--seeds", value("--seeds")?)?,
            "--nodes" => opts.nodes = num("--nodes", value("--nodes")?)?,
            "--events" => opts.events = num("--events", value("--events")?)?,
            "--loss" => opts.loss = num("--loss", value("--loss")?)?,
            "--duplication" => opts.duplication = num("--duplication", value("--duplication")?)?,
            "--reordering" => opts.reordering = num("--reordering", value("--reordering")?)?,
            "--stop-after" => {
                opts.stop_after = num("--stop-after", value("--stop-after")?)?;
                seeds = 1;
            }
            "--faults" => match value("--faults")?.as_str() {
                "all" => {}
                "network" => {
                    opts.crashes = false;
                    opts.membership = false;
                }
                "crashes" => {
                    opts.loss = 0.0;
                    opts.duplication = 0.0;
                    opts.reordering = 0.0;
                }
                "none" => {
                    opts.crashes = false;
                    opts.membership = false;
                    opts.loss = 0.0;
                    opts.duplication = 0.0;
                    opts.reordering = 0.0;
                }
                other => return Err(format!("--faults: unknown set {other:?}\n{USAGE}")),
            },
            "--no-crashes" => opts.crashes = false,
            "--no-membership" => opts.membership = false,
            "--no-pre-vote" => opts.pre_vote = false,
            "--no-check-quorum" => opts.check_quorum = false,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if !(3..=9).contains(&opts.nodes) {
        return Err("--nodes must be between 3 and 9".into());
    }
    for (name, p) in [
        ("--loss", opts.loss),
        ("--duplication", opts.duplication),
        ("--reordering", opts.reordering),
    ] {
        if !(0.0..=0.5).contains(&p) {
            return Err(format!("{name} must be in [0, 0.5]"));
        }
    }
    if opts.verbose {
        seeds = 1;
    }
    Ok((opts, seeds.max(1)))
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
}

fn main() -> ExitCode {
    let (opts, seeds) = match parse_options() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "raft-sim: {} seeds from {}, {} nodes (+{} spares), {} events each; loss {}, \
         duplication {}, reordering {}, partitions, slow disks, clock skew, crashes {}, \
         membership churn {}, pre-vote {}, check-quorum {}",
        seeds,
        opts.seed,
        opts.nodes,
        opts.spares,
        opts.events,
        opts.loss,
        opts.duplication,
        opts.reordering,
        opts.crashes,
        opts.membership,
        opts.pre_vote,
        opts.check_quorum
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
                         voters {:?} | recovered in {} ticks",
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
                        r.recovery_ticks
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
                bar.set_message(format!("{} events, 0 violations", t.events));
                bar.inc(1);
            }
            Err(failure) => {
                bar.abandon();
                println!("seed {seed:>4}: FAILED");
                println!("{failure}");
                return ExitCode::from(1);
            }
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!();
    println!("| seeds | events | leaders elected | entries applied | reads checked | crashes | partitions | conf changes | transfers | violations | events/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | 0 | {:.0} |",
        t.seeds,
        t.events,
        t.elections,
        t.entries,
        t.reads,
        t.crashes,
        t.partitions,
        t.conf_changes,
        t.transfers,
        t.events as f64 / secs.max(1e-9)
    );
    println!();
    println!(
        "all {} seeds passed every safety check after every event and recovered after healing \
         ({:.1} s)",
        t.seeds, secs
    );
    ExitCode::SUCCESS
}
