//! Differential test of the multi-group log: several groups share one `MultiLog`, each driven
//! with the same random operations as its own `MemStorage`; every group's reads must answer as
//! its `MemStorage` does, on the simulated disk (with crashes after syncs) and on real files.
//! Writes of several groups go in one `MultiLogCore::write` call.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::reads::assert_same_reads;
use common::*;
use raft_core::eraftpb::HardState;
use raft_core::Storage;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use storage_disk::io::{Fs, RealFs, SimFs};
use storage_disk::{MultiLog, MultiOptions, WriteBatch};
use storage_mem::MemStorage;

const GROUPS: [u64; 4] = [3, 7, 11, 1 << 40];

/// Small segments, a small cache and an eager copy of lagging groups, so that rotation,
/// checkpoints, segment deletion, entry copies and disk reads all happen.
fn options() -> MultiOptions {
    MultiOptions {
        segment_bytes: 2048,
        cache_bytes_per_group: 512,
        rewrite_lag_segments: 3,
    }
}

/// How the log under test is reopened.
enum Disk {
    Sim(SimFs),
    Real(tempfile::TempDir),
}

impl Disk {
    fn open(&self) -> MultiLog {
        let (fs, dir): (Arc<dyn Fs>, _) = match self {
            Disk::Sim(fs) => (Arc::new(fs.clone()), dir()),
            Disk::Real(tmp) => (Arc::new(RealFs::new()), tmp.path().join("raft")),
        };
        MultiLog::open(fs, dir, options()).expect("reopening a synced log")
    }

    fn crash(&mut self) {
        if let Disk::Sim(fs) = self {
            *fs = fs.crash();
        }
    }
}

/// One group: its reference storage and its term.
struct Reference {
    mem: MemStorage,
    term: u64,
}

fn new_reference() -> Reference {
    Reference {
        mem: MemStorage::new(),
        term: 1,
    }
}

/// A random append for `r` (usually valid, sometimes compacted or leaving a gap), with a hard
/// state now and then.
fn random_batch(r: &mut Reference, rng: &mut Xoshiro256PlusPlus) -> WriteBatch {
    let first = r.mem.first_index().unwrap();
    let last = r.mem.last_index().unwrap();
    let commit = r.mem.rl().hard_state().commit;
    let start = match rng.random_range(0..12) {
        0 if first > 1 => first - 1,
        1 => last + 2,
        _ => rng.random_range((commit + 1).max(first)..=last + 1),
    };
    if rng.random_bool(0.2) {
        r.term += 1;
    }
    let n = rng.random_range(0..6);
    let entries: Vec<_> = (start..start + n).map(|i| ent(i, r.term)).collect();
    // Never a commit past the log's end after the append (raft never asks for one).
    let new_last = entries.last().map_or(last, |e| e.index).max(commit);
    let hard_state = rng.random_bool(0.5).then(|| HardState {
        term: r.term,
        vote: rng.random_range(0..4),
        commit: rng.random_range(commit..=new_last),
    });
    WriteBatch {
        entries,
        hard_state,
        ..Default::default()
    }
}

/// Applies `batch` to the reference as `MultiLogCore::write` applies it to a group.
fn apply_to_mem(mem: &MemStorage, batch: &WriteBatch) -> raft_core::Result<()> {
    mem.wl().append(&batch.entries)?;
    if let Some(hs) = batch.hard_state {
        mem.wl().set_hardstate(hs);
    }
    Ok(())
}

/// Runs `steps` random operations; returns how many multi-group writes, compactions, installed
/// snapshots and reopenings succeeded.
fn run(seed: u64, mut disk: Disk, steps: usize) -> [u32; 4] {
    let mut done = [0u32; 4];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut log = disk.open();
    log.wl().create_groups(&GROUPS).unwrap();
    let mut refs: Vec<Reference> = GROUPS.iter().map(|_| new_reference()).collect();
    let mut max_segments = 0;
    for step in 0..steps {
        let op = rng.random_range(0..100);
        let gi = rng.random_range(0..GROUPS.len());
        let id = GROUPS[gi];
        let context = format!("seed {seed} step {step} (op {op}, group {id})");
        if op < 45 {
            // One write for the batches of several groups; the first failing batch stops it.
            let mut order: Vec<usize> = (0..GROUPS.len()).collect();
            order.retain(|_| rng.random_bool(0.7));
            let mut batches = Vec::new();
            let mut expected = Ok(());
            for &i in &order {
                let batch = random_batch(&mut refs[i], &mut rng);
                batches.push((GROUPS[i], batch.clone()));
                expected = apply_to_mem(&refs[i].mem, &batch);
                if expected.is_err() {
                    break;
                }
            }
            let got = log.wl().write(batches, rng.random_bool(0.5));
            assert_eq!(kind(&expected), kind(&got), "write: {context}");
            done[0] += u32::from(got.is_ok() && order.len() > 1);
        } else if op < 52 {
            let mem = &refs[gi].mem;
            let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
            let index = rng.random_range(first.saturating_sub(1)..=last + 1);
            let (m, d) = (mem.wl().commit_to(index), log.wl().commit_to(id, index));
            assert_eq!(kind(&m), kind(&d), "commit_to({index}): {context}");
        } else if op < 62 {
            let mem = &refs[gi].mem;
            let commit = mem.rl().hard_state().commit;
            let index = if rng.random_bool(0.7) {
                rng.random_range(mem.rl().snapshot_metadata().index.min(commit)..=commit)
            } else {
                rng.random_range(0..=mem.last_index().unwrap() + 1)
            };
            let data = Bytes::from(format!("sm {id} at {index}"));
            let m = mem.wl().create_snapshot(index, None, data.clone());
            let d = log.wl().create_snapshot(id, index, None, data);
            assert_eq!(kind(&m), kind(&d), "create_snapshot({index}): {context}");
            if let (Ok(m), Ok(d)) = (m, d) {
                assert_eq!(m, d, "create_snapshot({index}): {context}");
            }
        } else if op < 74 {
            let mem = &refs[gi].mem;
            let (first, last) = (mem.first_index().unwrap(), mem.last_index().unwrap());
            let covered = mem.rl().snapshot_metadata().index + 1;
            let index = if rng.random_bool(0.7) && covered >= first {
                rng.random_range(first..=covered)
            } else {
                rng.random_range(first..=last + 2)
            };
            let (m, d) = (mem.wl().compact(index), log.wl().compact(id, index));
            assert_eq!(kind(&m), kind(&d), "compact({index}): {context}");
            done[1] += u32::from(m.is_ok() && index > first);
        } else if op < 79 {
            let r = &mut refs[gi];
            let (first, last) = (r.mem.first_index().unwrap(), r.mem.last_index().unwrap());
            let commit = r.mem.rl().hard_state().commit;
            let index = rng.random_range(first.max(commit)..=last + 5);
            r.term += rng.random_range(0..2);
            let s = snap(index, r.term, &[1, 2, 3, 4]);
            let m = r.mem.wl().apply_snapshot(s.clone());
            let batch = WriteBatch {
                snapshot: Some(s),
                ..Default::default()
            };
            let d = log.wl().write([(id, batch)], false);
            assert_eq!(kind(&m), kind(&d), "apply_snapshot({index}): {context}");
            done[2] += u32::from(m.is_ok());
        } else if op < 83 {
            let cs = conf(&[1, 2, 3, rng.random_range(4..9)]);
            refs[gi].mem.wl().set_conf_state(cs.clone());
            log.wl().set_conf_state(id, cs).unwrap();
        } else if op < 86 {
            // The group goes away and a new one of the same id starts empty.
            log.wl().remove_group(id).unwrap();
            assert!(log.group(id).first_index().is_err(), "{context}");
            log.wl().create_groups(&[id]).unwrap();
            refs[gi] = new_reference();
        } else if op < 93 {
            log.wl().sync().unwrap();
        } else {
            log.wl().sync().unwrap();
            drop(log);
            disk.crash();
            log = disk.open();
            assert_eq!(log.rl().recovery().torn_tail, None, "{context}");
            done[3] += 1;
        }
        max_segments = max_segments.max(log.rl().segment_ids().len());
        for (i, r) in refs.iter().enumerate() {
            let group = log.group(GROUPS[i]);
            let snapshot = log.rl().snapshot_metadata(GROUPS[i]).unwrap().clone();
            let context = format!("{context}, reading group {}", GROUPS[i]);
            assert_same_reads(&r.mem, &group, &snapshot, &mut rng, &context);
        }
    }
    // Some groups go hundreds of steps without compacting: the copies of their entries and the
    // checkpoints keep the log to a few segments of 2 KiB all the same.
    assert!(
        max_segments <= 12,
        "seed {seed}: the log grew to {max_segments} segments"
    );
    done
}

fn assert_exercised(counts: impl Iterator<Item = [u32; 4]>) {
    let total = counts.fold([0; 4], |a, c| {
        [a[0] + c[0], a[1] + c[1], a[2] + c[2], a[3] + c[3]]
    });
    let [writes, compactions, installs, reopens] = total;
    assert!(
        writes > 100 && compactions > 10 && installs > 5 && reopens > 5,
        "the random operations barely ran: {writes} multi-group writes, {compactions} \
         compactions, {installs} installed snapshots, {reopens} reopenings"
    );
}

#[test]
fn every_group_of_a_shared_log_answers_like_its_mem_storage_on_the_simulated_disk() {
    assert_exercised((0..24).map(|seed| run(seed, Disk::Sim(sim(seed)), 300)));
}

#[test]
fn every_group_of_a_shared_log_answers_like_its_mem_storage_on_real_files() {
    assert_exercised((200..203).map(|seed| {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        run(seed, Disk::Real(tmp), 200)
    }));
}
