//! The multi-raft simulator (`raft-sim --multi`) in CI: a few seeds of nodes holding many groups
//! under crashes, partitions, quiescence and wake-ups pass every safety and liveness check, with
//! nodes persisting their Ready batches into a shared `MultiLog` on a simulated disk that loses
//! power and fails fsyncs; runs replay exactly, and the checker catches the bugs planted in the
//! application around the driver.

use rafttest::multisim::{run, DiskCounters, MultiOptions, MultiPlantedBug};

fn options(seed: u64) -> MultiOptions {
    MultiOptions {
        seed,
        groups: 200,
        events: 2000,
        ..MultiOptions::default()
    }
}

#[test]
fn seeds_with_many_groups_pass_every_safety_and_liveness_check() {
    let mut naps = 0;
    let mut wakeups = 0;
    let mut crashes = 0;
    let mut partitions = 0;
    let mut disk = DiskCounters::default();
    for seed in 1..=4 {
        let report = run(&options(seed)).unwrap_or_else(|failure| panic!("seed {seed}: {failure}"));
        assert!(
            report.entries_applied >= report.groups * 2,
            "seed {seed}: every group applies at least the writes of the liveness phase: {report:?}"
        );
        naps += report.naps;
        wakeups += report.wakeups;
        crashes += report.crashes;
        partitions += report.partitions;
        assert!(
            report.disk_nodes > 0,
            "seed {seed}: no node on the shared log"
        );
        disk.add(&report.disk);
    }
    // The seeds exercise what the mode is for, or passing them proves little.
    assert!(naps >= 200, "groups fell asleep only {naps} times");
    assert!(wakeups > 0, "the failure detector never woke a group");
    assert!(
        crashes > 0 && partitions > 0,
        "{crashes} crashes, {partitions} partitions"
    );
    // The disk path ran: batches went into the shared log with an fsync each, power losses
    // (some in the middle of a batch's write) were recovered from and checked.
    assert!(
        disk.synced_batches > 0 && disk.fsyncs >= disk.synced_batches,
        "the shared logs synced {} batches with {} fsyncs",
        disk.synced_batches,
        disk.fsyncs
    );
    assert!(
        disk.recoveries > 0 && disk.power_cuts > 0,
        "the shared logs recovered {} times, {} of them from a power cut mid-write",
        disk.recoveries,
        disk.power_cuts
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let opts = MultiOptions {
        groups: 50,
        events: 1500,
        ..options(7)
    };
    let first = run(&opts).expect("seed 7 passes");
    let second = run(&opts).expect("seed 7 passes again");
    assert_eq!(first.fingerprint, second.fingerprint);
    assert_eq!(first.envelopes_sent, second.envelopes_sent);
}

/// Runs seeds with `bug` planted until one fails; returns the first failure's reason and seed.
fn caught(bug: MultiPlantedBug) -> (String, u64) {
    caught_with(bug, None)
}

/// [`caught`] with the disks' read errors pinned (`disk_faults`).
fn caught_with(bug: MultiPlantedBug, disk_faults: Option<bool>) -> (String, u64) {
    for seed in 1..=20 {
        let opts = MultiOptions {
            planted_bug: Some(bug),
            groups: 50,
            events: 1500,
            disk_faults,
            ..options(seed)
        };
        if let Err(failure) = run(&opts) {
            eprintln!("{bug:?} caught at seed {seed}: {}", failure.reason);
            return (failure.reason, seed);
        }
    }
    panic!("the checker never caught {bug:?} in 20 seeds");
}

#[test]
fn the_checker_catches_a_node_that_acknowledges_a_group_it_did_not_write() {
    let (reason, seed) = caught(MultiPlantedBug::SkipPersistOneGroup);
    // Either a commit rests on entries a node only claimed to hold, or the node itself, reading
    // back what it acknowledged, finds its storage without it.
    assert!(
        reason.starts_with("durability") || reason.contains("a storage error stepping"),
        "seed {seed}: a durability violation, not {reason}"
    );
}

#[test]
fn the_checker_catches_a_failure_detector_that_never_reports() {
    let (reason, seed) = caught(MultiPlantedBug::NoFailureDetector);
    assert!(
        reason.starts_with("liveness") && reason.contains("crashed"),
        "seed {seed}: the failover must fail for lack of wake-ups, not {reason}"
    );
}

#[test]
fn the_checker_catches_a_node_on_the_shared_log_that_never_fsyncs() {
    let (reason, seed) = caught(MultiPlantedBug::DiskSkipsFsync);
    // Recovery finds the group's synced state gone, or the checker sees a commit or an applied
    // entry lost.
    assert!(
        reason.contains("recovery of the shared log lost") || reason.starts_with("durability"),
        "seed {seed}: a durability violation, not {reason}"
    );
}

#[test]
fn the_checker_catches_a_shared_log_that_swallows_read_errors() {
    let (reason, seed) = caught_with(MultiPlantedBug::ReadErrorAsEmptyPayload, Some(true));
    // An empty entry applied where another node applied the written one, or where it was
    // never written.
    assert!(
        reason.starts_with("state machine safety"),
        "seed {seed}: an entry applied that is not the one written, not {reason}"
    );
}
