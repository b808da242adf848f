//! `raft-sim`: runs the deterministic simulator of [`rafttest::sim`] over a range of seeds and
//! prints what each run did; on a safety or liveness violation, prints the seed, the event, the
//! last events and the command that replays the run, and exits with status 1.
//!
//! Usage: `raft-sim [--seed N] [--seeds COUNT] [--nodes N] [--events N] [--loss P]
//! [--duplication P] [--reordering P] [--stop-after EVENT] [--no-crashes] [--no-membership]
//! [--no-pre-vote] [--no-check-quorum] [--verbose]`

use rafttest::sim::{run, SimOptions};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: raft-sim [--seed N] [--seeds COUNT] [--nodes N] [--events N] \
    [--loss P] [--duplication P] [--reordering P] [--stop-after EVENT] [--no-crashes] \
    [--no-membership] [--no-pre-vote] [--no-check-quorum] [--verbose]";

fn parse_options() -> Result<(SimOptions, u64), String> {
    let mut opts = SimOptions::default();
    let mut seeds = 10;
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

fn main() -> ExitCode {
    let (opts, seeds) = match parse_options() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "raft-sim: {} nodes (+{} spares), {} events per seed, loss {}, duplication {}, \
         reordering {}, crashes {}, membership churn {}, pre-vote {}, check-quorum {}",
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
    let started = Instant::now();
    let mut totals = (0u64, 0u64, 0u64, 0u64);
    for seed in opts.seed..opts.seed + seeds {
        let run_opts = SimOptions {
            seed,
            ..opts.clone()
        };
        let t = Instant::now();
        match run(&run_opts) {
            Ok(r) => {
                let count = |k: &str| r.counts.get(k).copied().unwrap_or(0);
                println!(
                    "seed {seed:>4}: ok in {:>5} ms | leaders in {:>3} terms | {:>5} entries \
                     applied | {:>4} reads checked | {:>3} crashes | {:>3} partitions | {:>3} \
                     conf changes | {:>3} transfers | final leader {} (term {}) of voters {:?} | \
                     recovered in {} ticks",
                    t.elapsed().as_millis(),
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
                totals.0 += 1;
                totals.1 += r.events;
                totals.2 += r.writes_committed;
                totals.3 += r.reads_served;
            }
            Err(failure) => {
                println!("seed {seed:>4}: FAILED");
                println!("{failure}");
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "all {} seeds passed every safety check after every event and recovered after healing: \
         {} events, {} entries applied, {} linearizable reads checked, in {:.1} s",
        totals.0,
        totals.1,
        totals.2,
        totals.3,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
