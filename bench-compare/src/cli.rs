//! The command line of `bench-compare` (clap derive), turned into the [`Options`] of one run.

use clap::{Parser, ValueEnum};

/// Every workload the harness knows, by its `--only` key.
pub const WORKLOADS: [&str; 10] = [
    "w1", "w1ba", "floor", "w2", "w2b", "w2c", "w3", "w4", "w5", "w6",
];

/// The sizes and choices of one harness run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Rounds of (ours, raft-rs) per workload.
    pub rounds: u32,
    /// W1: proposals.
    pub n: u64,
    /// W1: proposals per batch.
    pub batch: u64,
    /// W1, W2: payload bytes.
    pub payload: usize,
    /// W2: MsgAppends stepped.
    pub w2_n: u64,
    /// W2b, W2c: heartbeat responses stepped.
    pub w2b_n: u64,
    /// W2 / W2b / W2c: messages per Ready.
    pub chunk: u64,
    /// W3: idle groups.
    pub groups: usize,
    /// W3: tick passes over all groups.
    pub tick_rounds: u32,
    /// W4: clusters (elections).
    pub clusters: u64,
    /// W5: groups on the node.
    pub w5_groups: u64,
    /// W5: timed tick rounds.
    pub w5_rounds: u32,
    /// W6: groups on each of the three nodes.
    pub w6_groups: u64,
    /// W6: timed tick rounds.
    pub w6_rounds: u32,
    /// The workloads to run (keys of [`WORKLOADS`]).
    pub only: Vec<String>,
    /// Run our library.
    pub run_ours: bool,
    /// Run raft-rs.
    pub run_theirs: bool,
}

impl Options {
    /// The default sizes.
    pub fn default_run() -> Options {
        Options {
            rounds: 5,
            n: 1_000_000,
            batch: 64,
            payload: 128,
            w2_n: 500_000,
            w2b_n: 1_000_000,
            chunk: 64,
            groups: 10_000,
            tick_rounds: 100,
            clusters: 1000,
            w5_groups: 100_000,
            w5_rounds: 10,
            w6_groups: 10_000,
            w6_rounds: 20,
            only: WORKLOADS.iter().map(|s| s.to_string()).collect(),
            run_ours: true,
            run_theirs: true,
        }
    }

    /// The sizes of `--quick`.
    pub fn quick() -> Options {
        Options {
            rounds: 3,
            n: 100_000,
            w2_n: 100_000,
            w2b_n: 200_000,
            clusters: 500,
            w5_groups: 20_000,
            w5_rounds: 5,
            w6_groups: 2_000,
            w6_rounds: 5,
            ..Options::default_run()
        }
    }

    /// Whether workload `key` runs.
    pub fn runs(&self, key: &str) -> bool {
        self.only.iter().any(|k| k == key)
    }
}

/// Which library or libraries run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LibChoice {
    /// This library only (no ratios).
    Ours,
    /// raft-rs only (no ratios).
    #[value(alias = "raft-rs")]
    Raftrs,
    /// Both, alternating round after round.
    Both,
}

/// A workload, by its `--only` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// W1 replicate.
    W1,
    /// W1 with raft-rs's `batch_append = true`.
    W1ba,
    /// W1's data-movement floor.
    Floor,
    /// W2 follower append.
    W2,
    /// W2b heartbeat responses.
    W2b,
    /// W2c heartbeat responses, `ready()`/`advance()` after every chunk.
    W2c,
    /// W3 idle groups (memory and tick pass).
    W3,
    /// W4 elections.
    W4,
    /// W5 many groups on one node, 1 % busy (quiescence).
    W5,
    /// W6 many busy groups on three nodes (batched envelopes).
    W6,
}

const AFTER_HELP: &str = "\
Sizes given override those of --quick, in any order. Each median is printed as a line
`RESULT lib=<ours|raftrs|floor> name=<workload>[.<metric>] value=<number> unit=<unit>`,
followed by a table. W3 and W5 run in a child process per measurement (this binary with
--w3-child or --w5-child), so that memory freed by earlier workloads cannot hide a run's growth.";

/// bench-compare: the workloads of shared/bench/WORKLOADS.md, this library vs raft-rs 0.7, same run.
#[derive(Debug, Parser)]
#[command(name = "bench-compare", after_help = AFTER_HELP)]
pub struct Args {
    /// Short run: 3 rounds, W1 100k proposals, W2 100k, W2b 200k, W4 500 clusters
    #[arg(long)]
    pub quick: bool,
    /// Rounds of (ours, raft-rs) per workload; medians are reported [default: 5; --quick: 3]
    #[arg(long, value_parser = positive::<u32>)]
    pub rounds: Option<u32>,
    /// W1 proposals [default: 1000000; --quick: 100000]
    #[arg(long, value_parser = positive::<u64>)]
    pub n: Option<u64>,
    /// W1 proposals per batch [default: 64]
    #[arg(long, value_parser = positive::<u64>)]
    pub batch: Option<u64>,
    /// Payload bytes (W1, W2) [default: 128]
    #[arg(long, value_parser = number::<usize>)]
    pub payload: Option<usize>,
    /// W2 MsgAppends stepped [default: 500000; --quick: 100000]
    #[arg(long = "w2-n", value_parser = positive::<u64>)]
    pub w2_n: Option<u64>,
    /// W2b/W2c heartbeat responses stepped [default: 1000000; --quick: 200000]
    #[arg(long = "w2b-n", value_parser = positive::<u64>)]
    pub w2b_n: Option<u64>,
    /// W2/W2b/W2c messages per Ready [default: 64]
    #[arg(long, value_parser = positive::<u64>)]
    pub chunk: Option<u64>,
    /// W3 idle groups [default: 10000]
    #[arg(long, value_parser = positive::<usize>)]
    pub groups: Option<usize>,
    /// W3 tick passes over all groups [default: 100]
    #[arg(long = "tick-rounds", value_parser = positive::<u32>)]
    pub tick_rounds: Option<u32>,
    /// W4 elections [default: 1000; --quick: 500]
    #[arg(long, value_parser = positive::<u64>)]
    pub clusters: Option<u64>,
    /// W5 groups on the node (issue 17's scale: 1000000) [default: 100000; --quick: 20000]
    #[arg(long = "w5-groups", value_parser = positive::<u64>)]
    pub w5_groups: Option<u64>,
    /// W5 timed tick rounds [default: 10; --quick: 5]
    #[arg(long = "w5-rounds", value_parser = positive::<u32>)]
    pub w5_rounds: Option<u32>,
    /// W6 groups on each of the 3 nodes [default: 10000; --quick: 2000]
    #[arg(long = "w6-groups", value_parser = positive::<u64>)]
    pub w6_groups: Option<u64>,
    /// W6 timed tick rounds [default: 20; --quick: 5]
    #[arg(long = "w6-rounds", value_parser = positive::<u32>)]
    pub w6_rounds: Option<u32>,
    /// Comma-separated subset of the workloads [default: all]
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    pub only: Vec<Workload>,
    /// Run one library only (for profiling one side; no ratios then)
    #[arg(long, value_enum, default_value_t = LibChoice::Both)]
    pub lib: LibChoice,
}

/// Parses a number, allowing `_` separators (`1_000_000`).
fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))
}

/// Parses a number that must be greater than 0.
fn positive<T: std::str::FromStr + Default + PartialEq>(value: &str) -> Result<T, String> {
    let n: T = number(value)?;
    if n == T::default() {
        return Err("must be greater than 0".to_string());
    }
    Ok(n)
}

impl Args {
    /// The run these arguments ask for: `--quick` or the default sizes, then each size given.
    pub fn options(&self) -> Options {
        let base = if self.quick {
            Options::quick()
        } else {
            Options::default_run()
        };
        let only = if self.only.is_empty() {
            base.only.clone()
        } else {
            let mut keys: Vec<String> = Vec::new();
            for w in &self.only {
                let key = w
                    .to_possible_value()
                    .expect("no workload is skipped")
                    .get_name()
                    .to_string();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            keys
        };
        let (run_ours, run_theirs) = match self.lib {
            LibChoice::Ours => (true, false),
            LibChoice::Raftrs => (false, true),
            LibChoice::Both => (true, true),
        };
        Options {
            rounds: self.rounds.unwrap_or(base.rounds),
            n: self.n.unwrap_or(base.n),
            batch: self.batch.unwrap_or(base.batch),
            payload: self.payload.unwrap_or(base.payload),
            w2_n: self.w2_n.unwrap_or(base.w2_n),
            w2b_n: self.w2b_n.unwrap_or(base.w2b_n),
            chunk: self.chunk.unwrap_or(base.chunk),
            groups: self.groups.unwrap_or(base.groups),
            tick_rounds: self.tick_rounds.unwrap_or(base.tick_rounds),
            clusters: self.clusters.unwrap_or(base.clusters),
            w5_groups: self.w5_groups.unwrap_or(base.w5_groups),
            w5_rounds: self.w5_rounds.unwrap_or(base.w5_rounds),
            w6_groups: self.w6_groups.unwrap_or(base.w6_groups),
            w6_rounds: self.w6_rounds.unwrap_or(base.w6_rounds),
            only,
            run_ours,
            run_theirs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Options, clap::Error> {
        let words = std::iter::once("bench-compare").chain(line.split_whitespace());
        Args::try_parse_from(words).map(|a| a.options())
    }

    #[test]
    fn no_flags_give_the_default_run() {
        assert_eq!(parse("").unwrap(), Options::default_run());
    }

    #[test]
    fn sizes_given_override_quick_in_any_order() {
        let o = parse("--n 1_000 --quick --only W2b,w4,w2b --lib raft-rs").unwrap();
        assert_eq!(o.n, 1000);
        assert_eq!(o.rounds, 3, "--quick's rounds");
        assert_eq!(o.only, vec!["w2b".to_string(), "w4".to_string()]);
        assert!(!o.run_ours && o.run_theirs);
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        for (line, flag) in [
            ("--rounds 0", "--rounds"),
            ("--n x", "--n"),
            ("--only w9", "--only"),
            ("--lib neither", "--lib"),
            ("--bogus", "--bogus"),
        ] {
            let err = parse(line).expect_err(line);
            assert_eq!(err.exit_code(), 2, "{line}");
            assert!(err.to_string().contains(flag), "{line}: {err}");
        }
    }

    #[test]
    fn help_is_not_an_error_exit() {
        let err = parse("--help").unwrap_err();
        assert_eq!(err.exit_code(), 0);
        let text = err.to_string();
        for flag in [
            "--quick",
            "--rounds",
            "--w2b-n",
            "--tick-rounds",
            "--only",
            "--lib",
        ] {
            assert!(text.contains(flag), "{flag} missing from --help");
        }
    }
}
