//! Crash-point sweep of the multi-group log: a scripted workload of several groups (writes of
//! all groups with one fsync, snapshots and compactions, a leader's snapshot, a group created
//! and removed, a group that never compacts and is carried forward by entry copies, segments
//! rotated, checkpointed and deleted) is run once to count its crash points; then, for every
//! point, it runs again with the disk halting there, the disk loses power, and the log is
//! reopened. Recovery must succeed, and every group must hold everything synced before the
//! crash and nothing that was never written.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::model::{check, model_of, Model};
use common::*;
use raft_core::eraftpb::{Entry, HardState, SnapshotMetadata};
use storage_disk::io::{Fs, SimFs};
use storage_disk::{DiskError, MultiLog, MultiOptions, WriteBatch};
use storage_mem::MemStorage;

fn options() -> MultiOptions {
    MultiOptions {
        segment_bytes: 2048,
        cache_bytes_per_group: 256,
        rewrite_lag_segments: 3,
    }
}

fn open_log(fs: &SimFs) -> Result<MultiLog, DiskError> {
    MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options())
}

#[derive(Debug, Clone)]
enum Step {
    /// Several groups' Readys in one write, synced or not.
    Write(Vec<(u64, WriteBatch)>, bool),
    Sync,
    Snapshot(u64, u64),
    Compact(u64, u64),
    Install(u64, u64, u64),
    Create(u64),
    Remove(u64),
}

impl Step {
    fn syncs(&self) -> bool {
        !matches!(self, Step::Write(_, false))
    }
}

/// Where a scripted group's log stands while the script is built.
#[derive(Default, Clone, Copy)]
struct Cursor {
    last: u64,
    term: u64,
    commit: u64,
}

const LAGGING: u64 = 3;
const TRANSIENT: u64 = 9;

fn script() -> Vec<Step> {
    let mut steps = vec![Step::Create(1), Step::Create(2), Step::Create(LAGGING)];
    let mut cursors: BTreeMap<u64, Cursor> = [1, 2, LAGGING]
        .into_iter()
        .map(|g| {
            (
                g,
                Cursor {
                    term: 1,
                    ..Default::default()
                },
            )
        })
        .collect();
    for round in 0..20u64 {
        if round == 5 {
            steps.push(Step::Create(TRANSIENT));
            cursors.insert(
                TRANSIENT,
                Cursor {
                    term: 1,
                    ..Default::default()
                },
            );
        }
        if round == 14 {
            steps.push(Step::Remove(TRANSIENT));
            cursors.remove(&TRANSIENT);
        }
        let mut batches = Vec::new();
        for (&g, c) in cursors.iter_mut() {
            let mut start = c.last + 1;
            if g == 1 && round % 6 == 3 && c.last > c.commit + 1 {
                // A new leader replaces the last uncommitted entry.
                start = c.last;
                c.term += 1;
            }
            let n = 1 + (round + g) % 3;
            let entries: Vec<Entry> = (start..start + n).map(|i| ent(i, c.term)).collect();
            c.last = start + n - 1;
            let hard_state = Some(HardState {
                term: c.term,
                vote: 1,
                commit: c.commit,
            });
            let conf_state = (round % 4 == g % 4).then(|| conf(&[1, 2, 3, 10 + round]));
            batches.push((
                g,
                WriteBatch {
                    entries,
                    hard_state,
                    conf_state,
                    ..Default::default()
                },
            ));
            c.commit = c.last - 1;
        }
        steps.push(Step::Write(batches, round % 3 != 1));
        if round % 3 == 1 {
            steps.push(Step::Sync);
        }
        for (g, every) in [(1, 5), (2, 7)] {
            if round % every == every - 1 {
                // Make the commit durable first, as an application does before snapshotting.
                let c = cursors[&g];
                let hs = HardState {
                    term: c.term,
                    vote: 1,
                    commit: c.commit,
                };
                let batch = WriteBatch {
                    hard_state: Some(hs),
                    ..Default::default()
                };
                steps.push(Step::Write(vec![(g, batch)], true));
                steps.push(Step::Snapshot(g, c.commit));
                steps.push(Step::Compact(g, c.commit - 1));
            }
        }
        if round == 10 {
            let c = cursors.get_mut(&2).expect("group 2");
            c.term += 1;
            c.last += 4;
            c.commit = c.last;
            steps.push(Step::Install(2, c.last, c.term));
        }
    }
    steps
}

/// The groups' references: what each holds after the steps so far.
type Refs = BTreeMap<u64, MemStorage>;

fn apply(step: &Step, refs: &mut Refs, log: &MultiLog) -> raft_core::Result<()> {
    match step {
        Step::Write(batches, sync) => {
            for (g, batch) in batches {
                let mem = &refs[g];
                mem.wl().append(&batch.entries).unwrap();
                if let Some(hs) = batch.hard_state {
                    mem.wl().set_hardstate(hs);
                }
                if let Some(cs) = &batch.conf_state {
                    mem.wl().set_conf_state(cs.clone());
                }
            }
            log.wl().write(batches.clone(), *sync)
        }
        Step::Sync => log.wl().sync(),
        Step::Snapshot(g, index) => {
            let data = Bytes::from(format!("sm {g} {index}"));
            refs[g]
                .wl()
                .create_snapshot(*index, None, data.clone())
                .unwrap();
            log.wl().create_snapshot(*g, *index, None, data).map(|_| ())
        }
        Step::Compact(g, index) => {
            refs[g].wl().compact(*index).unwrap();
            log.wl().compact(*g, *index)
        }
        Step::Install(g, index, term) => {
            let s = snap(*index, *term, &[1, 2, 3]);
            refs[g].wl().apply_snapshot(s.clone()).unwrap();
            log.wl().apply_snapshot(*g, s)
        }
        Step::Create(g) => {
            refs.insert(*g, MemStorage::new());
            log.wl().create_groups(&[*g])
        }
        Step::Remove(g) => {
            refs.remove(g);
            log.wl().remove_group(*g)
        }
    }
}

/// The models of every group after a step.
type Models = BTreeMap<u64, Model>;

fn models_of(refs: &Refs) -> Models {
    refs.iter()
        .map(|(g, mem)| (*g, model_of(mem, mem.rl().snapshot_metadata().clone())))
        .collect()
}

/// Runs the workload until the disk fails: the models after each step (index 0: the new log),
/// whether each step was acknowledged as synced, and the index of the failed step's model.
fn run(fs: &SimFs, steps: &[Step]) -> (Vec<Models>, Vec<bool>, usize) {
    let mut refs = Refs::new();
    let mut models = vec![Models::new()];
    let mut acked = vec![true];
    let Ok(log) = open_log(fs) else {
        return (models, acked, 0);
    };
    for (n, step) in steps.iter().enumerate() {
        let result = apply(step, &mut refs, &log);
        models.push(models_of(&refs));
        acked.push(result.is_ok() && step.syncs());
        if result.is_err() {
            return (models, acked, n + 1);
        }
    }
    let end = models.len();
    (models, acked, end)
}

/// Checks every group of the recovered log against the models from the last synced one to
/// the failed one: a group exists only if it did in one of them, and holds what `check` asks.
fn check_all(log: &MultiLog, models: &[Models], from: usize, to: usize, context: &str) {
    let window = &models[from..=to.min(models.len() - 1)];
    let ids: Vec<u64> = log.rl().group_ids().collect();
    for id in window[0].keys() {
        let kept_by_all = window.iter().all(|m| m.contains_key(id));
        assert!(
            !kept_by_all || ids.contains(id),
            "{context}: group {id} was lost"
        );
    }
    for id in ids {
        let group_models: Vec<Model> = window.iter().filter_map(|m| m.get(&id).cloned()).collect();
        assert!(
            !group_models.is_empty(),
            "{context}: group {id} never existed"
        );
        // A group created after the last sync may come back empty (its creation was synced
        // when it returned).
        let synced = window[0]
            .get(&id)
            .cloned()
            .unwrap_or_else(|| model_of(&MemStorage::new(), SnapshotMetadata::default()));
        let mut ms = vec![synced];
        ms.extend(group_models);
        let got = model_of(
            &log.group(id),
            log.rl().snapshot_metadata(id).unwrap().clone(),
        );
        check(
            &got,
            &ms,
            0,
            ms.len() - 1,
            &format!("{context}, group {id}"),
        );
    }
}

fn sweep(seed: u64) -> u64 {
    let steps = script();
    let full = sim(seed);
    let (_, _, failed) = run(&full, &steps);
    assert_eq!(
        failed,
        steps.len() + 1,
        "the workload runs on a healthy disk"
    );
    let log = open_log(&full).unwrap();
    assert!(
        log.rl().segment_ids()[0] > 1,
        "the workload deletes segments: {:?}",
        log.rl().segment_ids()
    );
    drop(log);
    let points = full.points();
    for point in 0..points {
        let fs = sim(seed);
        fs.halt_at_point(point);
        let (models, acked, failed) = run(&fs, &steps);
        let last_synced = acked.iter().rposition(|a| *a).expect("model 0 is acked");
        let after = fs.crash();
        let context = format!("seed {seed}, crash at point {point} of {points} (step {failed})");
        let recovered = open_log(&after)
            .unwrap_or_else(|e| panic!("{context}: recovery failed after a mere crash: {e}"));
        check_all(&recovered, &models, last_synced, failed, &context);
        // It takes writes again and survives a second crash.
        recovered.wl().sync().unwrap();
        drop(recovered);
        let again = open_log(&after.crash())
            .unwrap_or_else(|e| panic!("{context}: the second recovery failed: {e}"));
        check_all(&again, &models, last_synced, failed, &context);
    }
    points
}

#[test]
fn every_crash_point_of_a_multi_group_workload_recovers_what_each_group_synced() {
    let mut total = 0;
    for seed in 0..6 {
        total += sweep(seed);
    }
    assert!(total > 1000, "the sweep covered only {total} crash points");
}
