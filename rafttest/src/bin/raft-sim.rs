//! `raft-sim`: runs the demo of [`rafttest::demo`] and prints a summary.
//!
//! Usage: `raft-sim [--seed N] [--nodes N] [--proposals N] [--drop RATE] [--no-pre-vote] [--verbose]`

use rafttest::demo::{run, DemoOptions};
use std::process::ExitCode;

fn parse_options() -> Result<DemoOptions, String> {
    let mut opts = DemoOptions::default();
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

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(s) => {
            println!(
                "elected node {} as leader after {} ticks",
                s.first_leader, s.election_ticks
            );
            println!("seed:               {}", opts.seed);
            println!(
                "nodes:              {} (pre-vote {}, check-quorum on)",
                opts.nodes, opts.pre_vote
            );
            println!("ticks:              {}", s.ticks);
            println!("leader terms:       {} ({:?})", s.leaders.len(), s.leaders);
            println!("leader partitions:  {}", s.partitions);
            println!("messages delivered: {}", s.delivered);
            println!(
                "messages dropped:   {} (link loss {:.0}%)",
                s.dropped,
                opts.drop_rate * 100.0
            );
            println!(
                "proposals applied:  {} of {} on every node",
                s.applied, opts.proposals
            );
            println!(
                "final leader:       node {}, term {}, commit {}",
                s.final_leader, s.final_term, s.final_commit
            );
            println!(
                "checks:             election safety, state machine safety, exactly-once apply: OK"
            );
            println!("elapsed:            {:.2?}", s.elapsed);
            ExitCode::SUCCESS
        }
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
