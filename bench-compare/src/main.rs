//! `bench-compare`: runs the workloads of `shared/bench/WORKLOADS.md` (W1 replicate, W2 follower
//! append, W2b heartbeat responses and its plain-loop variant W2c, W3 idle groups, W4 elections, W5
//! many mostly idle groups on one node, W6 many busy groups on three nodes, and the W1 data-movement
//! floor)
//! against this library and against raft-rs 0.7 in one run, alternating the two libraries round
//! after round, and prints each library's median, the ratio and the target.
//!
//! `cargo run -p bench-compare --release [-- --quick]`; `--help` lists the flags. See README.md.

mod cli;
mod common;
mod multi;
mod multi_ours;
mod multi_raftrs;
mod ours;
mod raftrs;
mod workloads;

use clap::Parser as _;
use cli::{Args, Options};
use common::Lib;
use multi_ours::OursMulti;
use multi_raftrs::RaftRsMulti;
use ours::Ours;
use raftrs::RaftRs;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use workloads::{
    Figure, Outcome,
    ReadyLoop::{Always, IfReady},
    ReplicateParams,
    Responses::{Built, Echoed},
};

/// W2b's figure name.
const W2B: &str = "step-hb-resp";
/// W2c's figure name.
const W2C: &str = "step-hb-resp-plain";

/// Every run's figures: (lib, figure name) -> (unit, values in run order).
#[derive(Default)]
struct Results {
    run_ours: bool,
    run_theirs: bool,
    values: BTreeMap<(String, String), (&'static str, Vec<f64>)>,
    diagnostics: BTreeMap<(String, String), String>,
}

impl Results {
    fn record(&mut self, lib: &str, workload: &str, outcome: Outcome) {
        for Figure { name, value, unit } in outcome.figures {
            let slot = self
                .values
                .entry((lib.to_string(), name))
                .or_insert((unit, Vec::new()));
            slot.1.push(value);
        }
        if !outcome.diagnostics.is_empty() {
            self.diagnostics
                .insert((workload.to_string(), lib.to_string()), outcome.diagnostics);
        }
    }

    fn values(&self, lib: &str, name: &str) -> Option<(&[f64], &'static str)> {
        let (unit, values) = self.values.get(&(lib.to_string(), name.to_string()))?;
        Some((values, unit))
    }

    /// The median of `lib`'s figure `name` over the rounds, and its unit.
    fn median(&self, lib: &str, name: &str) -> Option<(f64, &'static str)> {
        self.values(lib, name).map(|(v, unit)| (median(v), unit))
    }

    /// The median over the rounds of the ratio `ours / other` of figure `name`, each ratio taken
    /// within one round (the two runs were made back to back, so machine drift between rounds
    /// cancels out); the ratio of the medians if the rounds do not pair up.
    fn paired_ratio(&self, other: &str, name: &str) -> Option<f64> {
        let (ours, _) = self.values(Ours::NAME, name)?;
        let (theirs, _) = self.values(other, name)?;
        if ours.len() == theirs.len() {
            let ratios: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
            Some(median(&ratios))
        } else {
            Some(median(ours) / median(theirs))
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs one workload for one library (in this process, or for W3 in a child) and prints its
/// figures as a progress line on stderr.
fn run_one(
    results: &mut Results,
    round: u32,
    lib: &str,
    workload: &str,
    f: impl FnOnce() -> Outcome,
) {
    let outcome = f();
    let figs: Vec<String> = outcome
        .figures
        .iter()
        .map(|f| format!("{}={} {}", f.name, fmt_value(f.value), f.unit))
        .collect();
    eprintln!("  round {round} {workload:<5} {lib:<6} {}", figs.join("  "));
    results.record(lib, workload, outcome);
}

/// Runs W3 for library `lib` in a fresh child process and reads back its figures.
fn idle_groups_in_child(lib: &str, groups: usize, rounds: u32) -> Outcome {
    let args = ["--w3-child", lib, &groups.to_string(), &rounds.to_string()];
    in_child(&args, 3)
}

/// Runs W5 for library `lib` in a fresh child process and reads back its figures.
fn multi_idle_in_child(lib: &str, groups: u64, rounds: u32) -> Outcome {
    let args = ["--w5-child", lib, &groups.to_string(), &rounds.to_string()];
    in_child(&args, 4)
}

/// Runs this binary with `args` (a child mode) and reads back its RESULT and DIAG lines; it
/// must print `figures` results.
fn in_child(args: &[&str], figures: usize) -> Outcome {
    let exe = std::env::current_exe().expect("path of this binary");
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outcome = Outcome {
        figures: Vec::new(),
        diagnostics: String::new(),
    };
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let field = |key: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key))
                    .unwrap_or_default()
                    .to_string()
            };
            let unit = ["bytes/group", "us", "msgs", "ns"]
                .into_iter()
                .find(|u| *u == field("unit="))
                .expect("a known unit");
            let value = field("value=").parse().expect("a RESULT value");
            outcome
                .figures
                .push(Figure::new(field("name="), value, unit));
        } else if let Some(d) = line.strip_prefix("DIAG ") {
            outcome.diagnostics = d.to_string();
        }
    }
    assert_eq!(outcome.figures.len(), figures, "child output: {stdout}");
    outcome
}

/// The child side of W3 and W5: run the workload for one library and print its RESULT and DIAG
/// lines.
fn child(workload: &str, args: &[String]) -> ExitCode {
    let (Some(lib), Some(g), Some(r)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("--{workload}-child LIB GROUPS ROUNDS");
        return ExitCode::FAILURE;
    };
    let (Ok(g), Ok(r)) = (g.parse::<usize>(), r.parse::<u32>()) else {
        eprintln!("--{workload}-child: GROUPS and ROUNDS must be numbers");
        return ExitCode::FAILURE;
    };
    let outcome = match (workload, lib.as_str()) {
        ("w3", Ours::NAME) => workloads::idle_groups::<Ours>(g, r),
        ("w3", RaftRs::NAME) => workloads::idle_groups::<RaftRs>(g, r),
        ("w5", Ours::NAME) => multi::multi_idle::<OursMulti>(g as u64, r),
        ("w5", RaftRs::NAME) => multi::multi_idle::<RaftRsMulti>(g as u64, r),
        _ => {
            eprintln!("--{workload}-child: unknown library {lib}");
            return ExitCode::FAILURE;
        }
    };
    for f in &outcome.figures {
        println!(
            "RESULT lib={lib} name={} value={} unit={}",
            f.name, f.value, f.unit
        );
    }
    println!("DIAG {}", outcome.diagnostics);
    ExitCode::SUCCESS
}

/// Runs `ours` then `theirs` for one workload in one round (only one of them with `--lib`).
fn pair<O, T>(results: &mut Results, round: u32, workload: &str, ours: O, theirs: T)
where
    O: FnOnce() -> Outcome,
    T: FnOnce() -> Outcome,
{
    if results.run_ours {
        run_one(results, round, Ours::NAME, workload, ours);
    }
    if results.run_theirs {
        run_one(results, round, RaftRs::NAME, workload, theirs);
    }
}

fn run_all(opts: &Options) -> Results {
    let mut results = Results {
        run_ours: opts.run_ours,
        run_theirs: opts.run_theirs,
        ..Results::default()
    };
    let w1 = |batch_append| ReplicateParams {
        n: opts.n,
        b: opts.batch,
        p: opts.payload,
        batch_append,
    };
    for round in 1..=opts.rounds {
        if opts.runs("w1") {
            pair(
                &mut results,
                round,
                "w1",
                || workloads::replicate::<Ours>(w1(false), "replicate"),
                || workloads::replicate::<RaftRs>(w1(false), "replicate"),
            );
        }
        if opts.runs("floor") {
            run_one(&mut results, round, "floor", "floor", || {
                workloads::floor(opts.n, opts.batch, opts.payload)
            });
        }
        if opts.runs("w1ba") {
            let name = "replicate-batch-append";
            pair(
                &mut results,
                round,
                "w1ba",
                || workloads::replicate::<Ours>(w1(true), name),
                || workloads::replicate::<RaftRs>(w1(true), name),
            );
        }
        if opts.runs("w2") {
            pair(
                &mut results,
                round,
                "w2",
                || workloads::follower_append::<Ours>(opts.w2_n, opts.chunk, opts.payload),
                || workloads::follower_append::<RaftRs>(opts.w2_n, opts.chunk, opts.payload),
            );
        }
        let (hb_n, k) = (opts.w2b_n, opts.chunk);
        if opts.runs("w2b") {
            pair(
                &mut results,
                round,
                "w2b",
                || workloads::heartbeat_responses::<Ours>(hb_n, k, Built, IfReady, W2B),
                || workloads::heartbeat_responses::<RaftRs>(hb_n, k, Built, IfReady, W2B),
            );
        }
        if opts.runs("w2c") {
            pair(
                &mut results,
                round,
                "w2c",
                || workloads::heartbeat_responses::<Ours>(hb_n, k, Echoed, Always, W2C),
                || workloads::heartbeat_responses::<RaftRs>(hb_n, k, Echoed, Always, W2C),
            );
        }
        if opts.runs("w3") {
            pair(
                &mut results,
                round,
                "w3",
                || idle_groups_in_child(Ours::NAME, opts.groups, opts.tick_rounds),
                || idle_groups_in_child(RaftRs::NAME, opts.groups, opts.tick_rounds),
            );
        }
        if opts.runs("w5") {
            pair(
                &mut results,
                round,
                "w5",
                || multi_idle_in_child(Ours::NAME, opts.w5_groups, opts.w5_rounds),
                || multi_idle_in_child(RaftRs::NAME, opts.w5_groups, opts.w5_rounds),
            );
        }
        if opts.runs("w6") {
            pair(
                &mut results,
                round,
                "w6",
                || multi::multi_busy::<OursMulti>(opts.w6_groups, opts.w6_rounds),
                || multi::multi_busy::<RaftRsMulti>(opts.w6_groups, opts.w6_rounds),
            );
        }
        if opts.runs("w4") {
            pair(
                &mut results,
                round,
                "w4",
                || workloads::elections::<Ours>(opts.clusters),
                || workloads::elections::<RaftRs>(opts.clusters),
            );
        }
    }
    results
}

/// A number for humans: thousands separated, at most a few significant decimals.
fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Issue 17's bound on W5's resident bytes per group of ours (nearly all of them asleep).
const W5_MAX_BYTES_PER_GROUP: f64 = 700.0;

/// One row of the table: a figure of ours against raft-rs's (or the floor's), and the issue's
/// target for `ours / other` (`>=` or `<=` a factor), if any.
struct Row {
    label: &'static str,
    name: &'static str,
    other_lib: &'static str,
    target: Option<(&'static str, f64)>,
}

const ROWS: [Row; 20] = [
    Row {
        label: "W1 replicate (batch_append=false)",
        name: "replicate",
        other_lib: RaftRs::NAME,
        target: Some((">=", 3.0)),
    },
    Row {
        label: "W1 replicate (batch_append=true)",
        name: "replicate-batch-append",
        other_lib: RaftRs::NAME,
        target: Some((">=", 1.5)),
    },
    Row {
        label: "W1 replicate vs data-movement floor",
        name: "replicate",
        other_lib: "floor",
        target: Some((">=", 0.8)),
    },
    Row {
        label: "W1 loop time (batch_append=false)",
        name: "replicate.total_time",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W1 loop time (batch_append=true)",
        name: "replicate-batch-append.total_time",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W2 step-heartbeat (follower append)",
        name: "step-heartbeat",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.5)),
    },
    Row {
        label: "W2b step-hb-resp (leader)",
        name: "step-hb-resp",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.7)),
    },
    Row {
        label: "W2b step-hb-resp, median chunk",
        name: "step-hb-resp.chunk_median",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W2c step-hb-resp-plain (leader, ready() every chunk)",
        name: "step-hb-resp-plain",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.7)),
    },
    Row {
        label: "W2c step-hb-resp-plain, median chunk",
        name: "step-hb-resp-plain.chunk_median",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W3 idle-groups memory",
        name: "idle-groups",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.5)),
    },
    Row {
        label: "W3 idle-groups tick pass",
        name: "idle-groups.tick_round",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 1.0)),
    },
    Row {
        label: "W3 idle-groups tick per group",
        name: "idle-groups.tick_per_group",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 1.0)),
    },
    Row {
        label: "W5 multi-idle tick pass",
        name: "multi-idle.tick_pass",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.05)),
    },
    Row {
        label: "W5 multi-idle messages per round",
        name: "multi-idle.messages",
        other_lib: RaftRs::NAME,
        target: Some(("<=", 0.05)),
    },
    Row {
        label: "W5 multi-idle round (tick + Readys + steps)",
        name: "multi-idle.round",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W5 multi-idle memory",
        name: "multi-idle",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W6 multi-busy",
        name: "multi-busy",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W6 wire units per node pair per flush",
        name: "multi-busy.units_per_pair_flush",
        other_lib: RaftRs::NAME,
        target: None,
    },
    Row {
        label: "W4 election",
        name: "election",
        other_lib: RaftRs::NAME,
        target: Some((">=", 1.5)),
    },
];

fn report(results: &Results, opts: &Options) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(out, "# medians of {} rounds", opts.rounds);
    for ((lib, name), (unit, values)) in &results.values {
        let _ = writeln!(
            out,
            "RESULT lib={lib} name={name} value={:.3} unit={unit}",
            median(values)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| workload | unit | ours | raft-rs (or floor) | ours/other (median of per-round ratios) | target | met |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
    for row in &ROWS {
        let (Some((ours, unit)), Some((other, _)), Some(ratio)) = (
            results.median(Ours::NAME, row.name),
            results.median(row.other_lib, row.name),
            results.paired_ratio(row.other_lib, row.name),
        ) else {
            continue;
        };
        let (target, met) = match row.target {
            Some((op, x)) => {
                let met = if op == ">=" { ratio >= x } else { ratio <= x };
                (format!("{op} {x}x"), if met { "yes" } else { "NO" })
            }
            None => (String::new(), ""),
        };
        let other_label = if row.other_lib == "floor" {
            format!("{} (floor)", fmt_value(other))
        } else {
            fmt_value(other)
        };
        let _ = writeln!(
            out,
            "| {} | {unit} | {} | {other_label} | {ratio:.2} | {target} | {met} |",
            row.label,
            fmt_value(ours),
        );
    }
    if let Some((bytes, _)) = results.median(Ours::NAME, "multi-idle") {
        let met = if bytes <= W5_MAX_BYTES_PER_GROUP {
            "yes"
        } else {
            "NO"
        };
        let _ = writeln!(
            out,
            "W5 resident bytes per group of ours (nearly all asleep): {bytes:.0}, target <= \
             {W5_MAX_BYTES_PER_GROUP:.0}: {met}"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Diagnostics (last round):");
    for ((workload, lib), d) in &results.diagnostics {
        let _ = writeln!(out, "  {workload:<5} {lib:<6} {d}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Sizes: W1 N={} B={} P={}; W2 N={}; W2b N={}; K={}; W3 G={} rounds={}; W4 C={}; \
         W5 G={} rounds={}; W6 G={} x 3 nodes rounds={}",
        opts.n,
        opts.batch,
        opts.payload,
        opts.w2_n,
        opts.w2b_n,
        opts.chunk,
        opts.groups,
        opts.tick_rounds,
        opts.clusters,
        opts.w5_groups,
        opts.w5_rounds,
        opts.w6_groups,
        opts.w6_rounds
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--w3-child") => return child("w3", &args[1..]),
        Some("--w5-child") => return child("w5", &args[1..]),
        _ => {}
    }
    let opts = Args::parse().options();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    eprintln!(
        "bench-compare: {} rounds of {}; ours vs raft-rs 0.7, alternating",
        opts.rounds,
        opts.only.join(",")
    );
    let results = run_all(&opts);
    report(&results, &opts);
    ExitCode::SUCCESS
}
