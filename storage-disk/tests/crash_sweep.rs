//! Crash-point sweep: a scripted workload is run once to count its crash points (every write,
//! truncation, fsync, creation, rename, removal and directory fsync of the simulated disk); then,
//! for every point, it is run again with the disk halting there, the disk loses power, and the
//! storage is reopened. Recovery must succeed (a crash alone never corrupts), everything synced
//! before the crash must be there, and nothing may be served that the workload did not write.
//!
//! The same holds when the state file write of one checkpoint (a snapshot created or installed,
//! a compaction) is misdirected or lost by the device: the log's witness of the checkpoint must
//! bring it back, whichever point the crash comes at.

mod common;

use common::model::{check, model_of, reshape, Model, Reshape};
use common::*;
use raft_core::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use std::path::Path;
use storage_disk::io::SimFs;
use storage_disk::{DiskStorage, WriteBatch};
use storage_mem::MemStorage;

/// One step of the workload, applied to both the disk storage and the reference.
#[derive(Debug, Clone)]
enum Step {
    /// Entries and a hard state (and a membership), as one Ready, synced or not.
    Ready(Box<WriteBatch>, bool),
    Sync,
    Snapshot(u64),
    Compact(u64),
    Install(u64, u64),
}

impl Step {
    /// Whether the step, once it returns Ok, has made everything before it durable.
    fn syncs(&self) -> bool {
        !matches!(self, Step::Ready(_, false))
    }
}

/// The scripted workload: appends (some replacing an uncommitted suffix), hard states, syncs,
/// snapshots and compactions, a leader's snapshot. Small segments make it rotate.
fn script() -> Vec<Step> {
    let mut steps = Vec::new();
    let (mut last, mut term, mut commit) = (0u64, 1u64, 0u64);
    for round in 0..24u64 {
        let mut start = last + 1;
        if round % 7 == 3 && last > commit + 1 {
            // A new leader replaces the last uncommitted entry.
            start = last;
            term += 1;
        }
        let entries: Vec<Entry> = (start..start + 3).map(|i| ent(i, term)).collect();
        last = start + 2;
        let hs = HardState {
            term,
            vote: 1,
            commit,
        };
        // Now and then a membership change rides along (a hard state and a membership record).
        let conf_state = (round % 5 == 2).then(|| conf(&[1, 2, 3, 4 + round]));
        steps.push(Step::Ready(
            Box::new(WriteBatch {
                entries,
                hard_state: Some(hs),
                conf_state,
                ..Default::default()
            }),
            round % 3 != 1,
        ));
        commit = last - 1;
        if round % 3 == 1 {
            steps.push(Step::Sync);
        }
        if round % 6 == 5 {
            steps.push(Step::Ready(
                Box::new(WriteBatch {
                    hard_state: Some(HardState {
                        term,
                        vote: 1,
                        commit,
                    }),
                    ..Default::default()
                }),
                true,
            ));
            steps.push(Step::Snapshot(commit));
            steps.push(Step::Compact(commit - 2));
        }
        if round == 15 {
            term += 1;
            last += 4;
            commit = last;
            steps.push(Step::Install(last, term));
        }
    }
    steps
}

/// Applies `step` to the reference and to the disk storage (whose result is returned).
fn apply(step: &Step, mem: &MemStorage, disk: &DiskStorage) -> raft_core::Result<()> {
    match step {
        Step::Ready(batch, sync) => {
            mem.wl().append(&batch.entries).unwrap();
            if let Some(hs) = batch.hard_state {
                mem.wl().set_hardstate(hs);
            }
            if let Some(cs) = &batch.conf_state {
                mem.wl().set_conf_state(cs.clone());
            }
            disk.wl().write((**batch).clone(), *sync)
        }
        Step::Sync => disk.wl().sync(),
        Step::Snapshot(index) => reshape(mem, disk, Reshape::Snapshot(*index)),
        Step::Compact(index) => reshape(mem, disk, Reshape::Compact(*index)),
        Step::Install(index, term) => reshape(mem, disk, Reshape::Install(*index, *term)),
    }
}

impl Step {
    /// Whether the step writes a checkpoint (a compaction that moves the log start does).
    fn checkpoints(&self) -> bool {
        matches!(
            self,
            Step::Snapshot(_) | Step::Compact(_) | Step::Install(..)
        )
    }
}

/// How the device mishandles a state file write.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Misdirected,
    Lost,
}

/// A fault armed for the first state file write of step `step` (counted in `steps`).
#[derive(Debug, Clone, Copy)]
struct Armed {
    step: usize,
    fault: Fault,
}

/// Runs the workload on `fs` until the disk fails. Returns the models after each step (index 0:
/// the new storage, 1: after its membership is set, then one per step), whether each was
/// acknowledged as synced, and the index of the model whose step failed (`models.len()` if none
/// did).
fn run(fs: &SimFs, steps: &[Step]) -> (Vec<Model>, Vec<bool>, usize) {
    let (models, acked, failed, _) = run_armed(fs, steps, None);
    (models, acked, failed)
}

/// [`run`], with a fault armed for a state file write; also returns the disk's crash points
/// after each step that returned.
fn run_armed(
    fs: &SimFs,
    steps: &[Step],
    armed: Option<Armed>,
) -> (Vec<Model>, Vec<bool>, usize, Vec<u64>) {
    let options = small_options();
    let mem = MemStorage::new_with_conf_state(conf(&[1, 2, 3]));
    let created = Model {
        conf_state: ConfState::default(),
        ..model_of(&mem, SnapshotMetadata::default())
    };
    let mut models = vec![created, model_of(&mem, SnapshotMetadata::default())];
    let mut acked = vec![true, false];
    let mut ends = Vec::new();
    let Ok(disk) = open(fs, &options) else {
        return (models, acked, 0, ends);
    };
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    if disk.wl().sync().is_err() {
        return (models, acked, 1, ends);
    }
    acked[1] = true;
    for (n, step) in steps.iter().enumerate() {
        match armed {
            Some(Armed { step, fault }) if step == n => {
                let state = dir().join("state");
                match fault {
                    Fault::Misdirected => fs.misdirect_next_write(&state),
                    Fault::Lost => fs.lose_next_write(&state),
                }
            }
            _ => {}
        }
        let result = apply(step, &mem, &disk);
        models.push(model_of(&mem, mem.rl().snapshot_metadata().clone()));
        acked.push(result.is_ok() && step.syncs());
        if result.is_err() {
            return (models, acked, n + 2, ends);
        }
        ends.push(fs.points());
    }
    let end = models.len();
    (models, acked, end, ends)
}

fn sweep(seed: u64) -> u64 {
    let steps = script();
    let full = sim(seed);
    let (models, _, failed) = run(&full, &steps);
    assert_eq!(
        failed,
        steps.len() + 2,
        "the workload runs on a healthy disk"
    );
    let points = full.points();
    for point in 0..points {
        let fs = sim(seed);
        fs.halt_at_point(point);
        let (models, acked, failed) = run(&fs, &steps);
        let last_synced = acked.iter().rposition(|a| *a).expect("model 0 is acked");
        let after = fs.crash();
        let context = format!("seed {seed}, crash at point {point} of {points} (step {failed})");
        recover_twice(&after, &models, last_synced, failed, &context);
    }
    assert!(models.len() > 20);
    points
}

/// Recovers the storage on the disk `after` a crash left, checks it against `models`, then
/// recovers it again after a second crash (it survives one) and checks it again.
fn recover_twice(
    after: &SimFs,
    models: &[Model],
    last_synced: usize,
    failed: usize,
    context: &str,
) {
    let recovered = open(after, &small_options())
        .unwrap_or_else(|e| panic!("{context}: recovery failed after a crash: {e}"));
    let got = model_of(&recovered, recovered.rl().snapshot_metadata().clone());
    check(&got, models, last_synced, failed, context);
    drop(recovered);
    let again = open(&after.crash(), &small_options())
        .unwrap_or_else(|e| panic!("{context}: the second recovery failed: {e}"));
    let got = model_of(&again, again.rl().snapshot_metadata().clone());
    check(&got, models, last_synced, failed, context);
}

/// For each checkpointing step of the workload and each fault, with the step's state file write
/// mishandled: a crash at every point from the start of that step to the end of the next
/// checkpointing step (which supersedes the lost write) recovers what was synced. Returns the
/// crash points covered.
fn sweep_lost_state_writes(seed: u64) -> u64 {
    let steps = script();
    let mut covered = 0;
    let checkpointing: Vec<usize> = (0..steps.len())
        .filter(|n| steps[*n].checkpoints())
        .collect();
    for (k, &step) in checkpointing.iter().enumerate() {
        for fault in [Fault::Misdirected, Fault::Lost] {
            let armed = Some(Armed { step, fault });
            let full = sim(seed);
            let (models, _, failed, ends) = run_armed(&full, &steps, armed);
            assert_eq!(failed, steps.len() + 2, "the workload runs on this disk");
            let damaged = full.damaged_writes();
            if damaged.is_empty() {
                continue; // a compaction that did not move the log start wrote no checkpoint
            }
            assert!(
                damaged
                    .iter()
                    .all(|w| w.path.as_deref() == Some(Path::new("/raft/state"))),
                "{damaged:?}"
            );
            let first = if step == 0 { 0 } else { ends[step - 1] };
            let last = checkpointing
                .get(k + 1)
                .map_or(full.points(), |next| ends[*next]);
            for point in first..last {
                let fs = sim(seed);
                fs.halt_at_point(point);
                let (models, acked, failed, _) = run_armed(&fs, &steps, armed);
                let last_synced = acked.iter().rposition(|a| *a).expect("model 0 is acked");
                let after = fs.crash();
                let context = format!(
                    "seed {seed}, {fault:?} state file write in step {step} ({:?}), crash at \
                     point {point} (step {failed})",
                    steps[step]
                );
                recover_twice(&after, &models, last_synced, failed, &context);
                covered += 1;
            }
            assert!(models.len() > 20);
        }
    }
    covered
}

#[test]
fn every_crash_point_after_a_lost_or_misdirected_state_file_write_recovers_what_was_synced() {
    let mut total = 0;
    for seed in 0..3 {
        total += sweep_lost_state_writes(seed);
    }
    assert!(total > 500, "the sweep covered only {total} crash points");
}

#[test]
fn every_crash_point_of_the_workload_recovers_what_was_synced() {
    let mut total = 0;
    for seed in 0..10 {
        total += sweep(seed);
    }
    assert!(total > 1000, "the sweep covered only {total} crash points");
}
