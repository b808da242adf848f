//! Issue 16, "corruption is detected, never served", in the simulator: nodes whose core reads
//! `storage-disk` on a simulated disk that fails reads, flips bits at rest, misdirects writes
//! and misdirects or loses state file writes stay safe and recover, the faults are really
//! injected and really met (a lost checkpoint is rolled forward from the log), and the checker
//! notices corrupt data when an application lets it through.

use rafttest::sim::{run, PlantedBug, SimOptions};
use std::collections::BTreeMap;

/// Runs `seeds` with `opts`; returns the summed counts of the runs' events.
fn counts(seeds: std::ops::Range<u64>, opts: &SimOptions) -> BTreeMap<&'static str, u64> {
    let mut total = BTreeMap::new();
    for seed in seeds {
        let opts = SimOptions {
            seed,
            ..opts.clone()
        };
        let report = run(&opts).unwrap_or_else(|f| panic!("seed {seed}: {f}"));
        for (kind, n) in report.counts {
            *total.entry(kind).or_default() += n;
        }
    }
    total
}

#[test]
fn nodes_on_failing_and_damaged_disks_detect_corruption_and_never_serve_it() {
    let opts = SimOptions {
        disk: Some(1.0),
        disk_faults: Some(true),
        events: 10_000,
        ..Default::default()
    };
    let total = counts(1..41, &opts);
    let count = |kind: &str| total.get(kind).copied().unwrap_or(0);
    // Every run above passed every check, "never served" included; the faults were real.
    assert!(count("read error injected") > 10, "{total:?}");
    assert!(
        count("read error met") > 10,
        "reads reached the disk: {total:?}"
    );
    assert!(count("damaged disk") > 20, "{total:?}");
    for kind in ["flip sealed segment", "flip live segment", "flip snapshot"] {
        assert!(count(kind) > 0, "{kind}: {total:?}");
    }
    let flips = count("flip sealed segment") + count("flip live segment") + count("flip snapshot");
    assert!(flips > 50, "bits flipped at rest: {total:?}");
    assert!(count("misdirected write") > 0, "{total:?}");
    assert!(count("lost write") > 0, "{total:?}");
    assert!(count("state file write damaged") > 5, "{total:?}");
    // A disk whose only damage was to its state file came back whole, the lost checkpoint
    // rolled forward from the log (a refusal or a miss would have failed the run).
    assert!(count("checkpoint rolled forward") > 0, "{total:?}");
    // And detected, both while running (the node stopped) and at recovery (it stayed down).
    assert!(count("corruption detected") > 0, "{total:?}");
    assert!(count("corruption detected at recovery") > 10, "{total:?}");
    // The nemesis never damaged more nodes than a quorum can lose.
    assert_eq!(count("liveness not checked"), 0, "{total:?}");
}

#[test]
fn the_checker_catches_read_errors_served_as_empty_payloads() {
    let mut other = Vec::new();
    for seed in 1..=100 {
        let opts = SimOptions {
            seed,
            disk: Some(1.0),
            disk_faults: Some(true),
            planted_bug: Some(PlantedBug::ReadErrorAsEmptyPayload),
            ..Default::default()
        };
        match run(&opts) {
            Ok(_) => {}
            Err(failure) if failure.reason.starts_with("entry identity") => {
                println!("seed {seed}: {failure}");
                return;
            }
            Err(failure) => other.push((seed, failure.reason)),
        }
    }
    panic!(
        "no seed showed a payload lost to a read error as an entry identity violation; {other:?}"
    );
}
