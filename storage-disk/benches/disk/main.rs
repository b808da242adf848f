//! storage-disk benchmarks, workloads W8, W9 and W10 of the repository's `WORKLOADS.md`:
//! `cargo bench -p storage-disk --bench disk [--features bench-raft-engine] -- [flags]`.
//!
//! Flags: `--dir PATH` (default: the system temp dir; the bare loop writes in the same
//! directory as the engines), `--rounds N` (3), `--mib N` payload MiB per run (32),
//! `--recovery-mib A,B` log sizes (256,1024), `--recovery-payload N` (4096),
//! `--drop-caches` (cold-cache recovery; needs root), `--write-log DIR` (writes the W9 log of
//! the first `--recovery-mib` size into DIR and exits; `--recover-only DIR` then measures it in
//! this process, so that two builds can be measured on one log), `--batches 1,64,1024`
//! entries per Ready, `--payloads 128,4096` bytes per entry, `--skip-append`,
//! `--skip-recovery`; W10 (group commit across groups): `--groups 1,100,10000` groups per log,
//! `--multi-payload N` (128) bytes per group per round, `--multi-mib N` (8) payload MiB per
//! run, `--skip-multi`.
//! Every figure is a line `RESULT lib=<ours|bare|bare-log|per-group|raft-engine> name=<workload> value=<v> unit=<u>`;
//! a table of medians closes the run, with the median of the per-round ratios ours / bare.

mod append;
mod multi;
mod recovery;

use std::path::PathBuf;

use append::{Contender, Shape};

struct Args {
    dir: PathBuf,
    rounds: usize,
    mib: u64,
    recovery_mib: Vec<u64>,
    recovery_payload: usize,
    drop_caches: bool,
    batches: Vec<usize>,
    payloads: Vec<usize>,
    skip_append: bool,
    skip_recovery: bool,
    groups: Vec<usize>,
    multi_payload: usize,
    multi_mib: u64,
    skip_multi: bool,
    write_log: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: std::env::temp_dir().join("storage-disk-bench"),
        rounds: 3,
        mib: 32,
        recovery_mib: vec![256, 1024],
        recovery_payload: 4096,
        drop_caches: false,
        batches: vec![1, 64, 1024],
        payloads: vec![128, 4096],
        skip_append: false,
        skip_recovery: false,
        groups: vec![1, 100, 10_000],
        multi_payload: 128,
        multi_mib: 8,
        skip_multi: false,
        write_log: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--recover-only" => {
                recovery::recover_only(&PathBuf::from(value()));
                std::process::exit(0);
            }
            "--dir" => args.dir = PathBuf::from(value()),
            "--rounds" => args.rounds = value().parse().expect("--rounds N"),
            "--mib" => args.mib = value().parse().expect("--mib N"),
            "--recovery-mib" => {
                args.recovery_mib = value()
                    .split(',')
                    .map(|v| v.parse().expect("--recovery-mib A,B"))
                    .collect()
            }
            "--recovery-payload" => {
                args.recovery_payload = value().parse().expect("--recovery-payload N")
            }
            "--drop-caches" => args.drop_caches = true,
            "--write-log" => args.write_log = Some(PathBuf::from(value())),
            "--batches" => args.batches = list(&value()),
            "--payloads" => args.payloads = list(&value()),
            "--skip-append" => args.skip_append = true,
            "--skip-recovery" => args.skip_recovery = true,
            "--groups" => args.groups = list(&value()),
            "--multi-payload" => args.multi_payload = value().parse().expect("--multi-payload N"),
            "--multi-mib" => args.multi_mib = value().parse().expect("--multi-mib N"),
            "--skip-multi" => args.skip_multi = true,
            // Cargo passes --bench to harness-less benches.
            "--bench" => {}
            other => panic!("unknown flag {other} (see the module docs)"),
        }
    }
    args
}

fn list(value: &str) -> Vec<usize> {
    value
        .split(',')
        .map(|v| v.parse().expect("a list of numbers: A,B,C"))
        .collect()
}

fn result(lib: &str, name: &str, value: f64, unit: &str) {
    println!("RESULT lib={lib} name={name} value={value:.3} unit={unit}");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn append_benchmarks(args: &Args) -> Vec<String> {
    let engines = Contender::all();
    let mut table = vec![format!(
        "| batch x size | {} | ratio to bare |",
        engines
            .iter()
            .map(|e| format!("{} entries/s (MB/s)", e.name()))
            .collect::<Vec<_>>()
            .join(" | ")
    )];
    table.push(format!("|---|{}---|", "---|".repeat(engines.len())));
    for &payload in &args.payloads {
        for &entries in &args.batches {
            let per_ready = (entries * payload) as u64;
            let readys = ((args.mib << 20) / per_ready).clamp(50, 4000) as usize;
            let shape = Shape { entries, readys };
            let payloads = append::payloads(entries, payload);
            let name = format!("disk-append.b{entries}.p{payload}");
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
            for round in 0..args.rounds {
                // Each round starts with another engine, so none always runs first.
                for k in 0..engines.len() {
                    let e = (round + k) % engines.len();
                    let took = append::run(engines[e], &args.dir, shape, &payloads);
                    let rate = shape.total_entries() as f64 / took.as_secs_f64();
                    result(engines[e].name(), &name, rate, "entries/s");
                    rates[e].push(rate);
                }
            }
            // Ours over bare within each round (run back to back): steadier than the ratio of
            // medians when the disk's speed drifts between rounds (a shared, throttled disk).
            let mut round_ratios: Vec<f64> = rates[0]
                .iter()
                .zip(&rates[1])
                .map(|(ours, bare)| ours / bare)
                .collect();
            let round_ratio = median(&mut round_ratios);
            result(
                "ours",
                &format!("{name}.round_ratio"),
                round_ratio,
                "x bare",
            );
            let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
            let bare = medians[1];
            let mut cells = Vec::new();
            let mut ratios = Vec::new();
            for (e, engine) in engines.iter().enumerate() {
                let mb = medians[e] * payload as f64 / 1e6;
                let spread = {
                    let lo = rates[e].first().copied().unwrap_or(0.0);
                    let hi = rates[e].last().copied().unwrap_or(0.0);
                    format!("{lo:.0}-{hi:.0}")
                };
                result(engine.name(), &format!("{name}.mb"), mb, "MB/s");
                cells.push(format!("{:.0} ({mb:.1}) [{spread}]", medians[e]));
                if *engine != Contender::Bare {
                    let ratio = medians[e] / bare;
                    result(engine.name(), &format!("{name}.ratio"), ratio, "x bare");
                    ratios.push(format!("{}: {ratio:.2}x", engine.name()));
                }
            }
            ratios.push(format!(
                "ours / bare per round: {round_ratio:.2}x [{:.2}-{:.2}]",
                round_ratios.first().copied().unwrap_or(0.0),
                round_ratios.last().copied().unwrap_or(0.0)
            ));
            if let Some(log) = engines.iter().position(|e| *e == Contender::BareLog) {
                ratios.push(format!(
                    "ours / bare-log: {:.2}x",
                    medians[0] / medians[log]
                ));
            }
            table.push(format!(
                "| {entries} x {payload} B ({readys} Readys) | {} | {} |",
                cells.join(" | "),
                ratios.join(", ")
            ));
        }
    }
    table
}

fn multi_benchmarks(args: &Args) -> Vec<String> {
    let mut table = vec![
        "| groups x payload (rounds) | shared log: ms/round, fsyncs/round | bare write+fdatasync of the same bytes: ms/round | one fsync per group: ms/round, fsyncs/round | shared / bare (throughput) | per-group time / shared time |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let payload = append::payloads(1, args.multi_payload).remove(0);
    for &groups in &args.groups {
        let per_round = (groups * args.multi_payload) as u64;
        let rounds = ((args.multi_mib << 20) / per_round).clamp(20, 2000) as usize;
        let name = format!("disk-multi.g{groups}.p{}", args.multi_payload);
        let (mut ours, mut bare, mut per_group, mut ratios) = (vec![], vec![], vec![], vec![]);
        let mut scaled = false;
        for round in 0..args.rounds {
            let dir = args.dir.join("multi");
            let mut times = [0.0; 2];
            // Each round starts with the other contender.
            for k in 0..2 {
                let which = (round + k) % 2;
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("a bench directory");
                let took = if which == 0 {
                    multi::ours(&dir, groups, rounds, &payload)
                } else {
                    multi::bare(&dir, groups, rounds, &payload)
                };
                times[which] = took.as_secs_f64() * 1e3 / rounds as f64;
            }
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a bench directory");
            let (pg, was_scaled) = multi::per_group_round(&dir, groups, rounds, &payload);
            scaled |= was_scaled;
            std::fs::remove_dir_all(&dir).expect("removing the bench directory");
            result("ours", &format!("{name}.ms_per_round"), times[0], "ms");
            result("bare", &format!("{name}.ms_per_round"), times[1], "ms");
            let pg_ms = pg.as_secs_f64() * 1e3;
            result("per-group", &format!("{name}.ms_per_round"), pg_ms, "ms");
            ours.push(times[0]);
            bare.push(times[1]);
            per_group.push(pg_ms);
            ratios.push(times[1] / times[0]);
        }
        let ratio = median(&mut ratios);
        result("ours", &format!("{name}.round_ratio"), ratio, "x bare");
        let (ours, bare, per_group) =
            (median(&mut ours), median(&mut bare), median(&mut per_group));
        table.push(format!(
            "| {groups} x {} B ({rounds}) | {ours:.2}, 1 | {bare:.2} | {per_group:.2}{}, {groups} | {ratio:.2}x | {:.1}x |",
            args.multi_payload,
            if scaled {
                format!(" (scaled from {})", multi::PER_GROUP_SAMPLE)
            } else {
                String::new()
            },
            per_group / ours
        ));
    }
    table
}

fn recovery_benchmarks(args: &Args) -> Vec<String> {
    let mut table = vec![
        "| log | entries | open (ms) | RSS before open | RSS after open | peak RSS (open) | read one in the middle (ms) | read all (ms) | RSS after reading all |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for &mib in &args.recovery_mib {
        let dir = args.dir.join(format!("recovery-{mib}"));
        let written = recovery::write_log(&dir, mib << 20, args.recovery_payload);
        let m = recovery::measure(&dir, args.drop_caches);
        assert_eq!(m.entries, written, "recovery found every entry");
        let name = format!("disk-recovery.{mib}mib.p{}", args.recovery_payload);
        result("ours", &name, m.open_ms, "ms");
        result(
            "ours",
            &format!("{name}.rss_delta"),
            (m.rss_after_kib - m.rss_before_kib) as f64 / 1024.0,
            "MiB",
        );
        result(
            "ours",
            &format!("{name}.hwm"),
            m.hwm_kib as f64 / 1024.0,
            "MiB",
        );
        result(
            "ours",
            &format!("{name}.read_middle"),
            m.middle_read_ms,
            "ms",
        );
        result("ours", &format!("{name}.read_all"), m.read_ms, "ms");
        result(
            "ours",
            &format!("{name}.rss_read_delta"),
            (m.rss_read_kib - m.rss_before_kib) as f64 / 1024.0,
            "MiB",
        );
        table.push(format!(
            "| {mib} MiB of {} B entries{} | {written} | {:.0} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.2} | {:.0} | {:.1} MiB |",
            args.recovery_payload,
            if args.drop_caches { ", cold cache" } else { ", warm cache" },
            m.open_ms,
            m.rss_before_kib as f64 / 1024.0,
            m.rss_after_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0,
            m.middle_read_ms,
            m.read_ms,
            m.rss_read_kib as f64 / 1024.0,
        ));
        std::fs::remove_dir_all(&dir).expect("removing the log");
    }
    table
}

fn main() {
    let args = parse_args();
    if let Some(dir) = &args.write_log {
        let mib = args.recovery_mib.first().copied().unwrap_or(256);
        let entries = recovery::write_log(dir, mib << 20, args.recovery_payload);
        println!(
            "wrote {entries} entries of {} B to {}",
            args.recovery_payload,
            dir.display()
        );
        return;
    }
    std::fs::create_dir_all(&args.dir).expect("the bench directory");
    println!(
        "storage-disk bench: dir {} ({} cores), load average before: {}",
        args.dir.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let mut tables = Vec::new();
    if !args.skip_append {
        tables.extend(append_benchmarks(&args));
        tables.push(String::new());
    }
    if !args.skip_multi {
        tables.extend(multi_benchmarks(&args));
        tables.push(String::new());
    }
    if !args.skip_recovery {
        tables.extend(recovery_benchmarks(&args));
    }
    println!("load average after: {}", load_average());
    println!("medians of {} rounds, [min-max] per engine:", args.rounds);
    for line in tables {
        println!("{line}");
    }
}
