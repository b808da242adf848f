//! Differential test: `MemStorage` and `DiskStorage` driven by the same random operations must
//! answer every read the same way, on the simulated disk (with crashes after each sync) and on
//! real files.

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
use storage_disk::{DiskStorage, Options, WriteBatch};
use storage_mem::MemStorage;

/// How the disk storage under test is reopened.
enum Disk {
    Sim(SimFs),
    Real(tempfile::TempDir),
}

impl Disk {
    fn open(&self, options: &Options) -> DiskStorage {
        match self {
            Disk::Sim(fs) => open(fs, options).expect("reopening a synced storage"),
            Disk::Real(tmp) => DiskStorage::open(
                Arc::new(RealFs::new()) as Arc<dyn Fs>,
                tmp.path().join("raft"),
                options.clone(),
            )
            .expect("reopening a synced storage"),
        }
    }

    /// A power loss (simulated disk) or a plain close (real files).
    fn crash(&mut self) {
        if let Disk::Sim(fs) = self {
            *fs = fs.crash();
        }
    }
}

/// Runs `steps` random operations on both storages, comparing after each. Returns how many
/// appends, compactions, installed snapshots and reopenings succeeded.
fn run(seed: u64, mut disk_kind: Disk, steps: usize) -> [u32; 4] {
    let mut done = [0u32; 4];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let options = small_options();
    let mem = MemStorage::new_with_conf_state(conf(&[1, 2, 3]));
    let mut disk = disk_kind.open(&options);
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    disk.wl().sync().unwrap();
    let mut term = 1;
    for step in 0..steps {
        let first = mem.first_index().unwrap();
        let last = mem.last_index().unwrap();
        let commit = mem.rl().hard_state().commit;
        let op = rng.random_range(0..100);
        let context = format!("seed {seed} step {step} (op {op})");
        if op < 40 {
            // Append, usually valid (after the commit index, possibly replacing a suffix),
            // sometimes compacted or leaving a gap.
            let start = match rng.random_range(0..10) {
                0 if first > 1 => first - 1,
                1 => last + 2,
                _ => rng.random_range((commit + 1).max(first)..=last + 1),
            };
            if rng.random_bool(0.3) {
                term += 1;
            }
            let n = rng.random_range(1..8);
            let entries: Vec<_> = (start..start + n).map(|i| ent(i, term)).collect();
            let m = mem.wl().append(&entries);
            let batch = WriteBatch {
                entries,
                ..Default::default()
            };
            let d = disk.wl().write(batch, rng.random_bool(0.5));
            assert_eq!(kind(&m), kind(&d), "append at {start}: {context}");
            done[0] += u32::from(m.is_ok());
        } else if op < 55 {
            let last = mem.last_index().unwrap();
            let hs = HardState {
                term,
                vote: rng.random_range(0..4),
                commit: rng.random_range(commit..=last),
            };
            mem.wl().set_hardstate(hs);
            let batch = WriteBatch {
                hard_state: Some(hs),
                ..Default::default()
            };
            disk.wl().write(batch, rng.random_bool(0.5)).unwrap();
        } else if op < 62 {
            let index = rng.random_range(first.saturating_sub(1)..=last + 1);
            let (m, d) = (mem.wl().commit_to(index), disk.wl().commit_to(index));
            assert_eq!(kind(&m), kind(&d), "commit_to({index}): {context}");
        } else if op < 72 {
            let index = rng.random_range(0..=last + 1);
            let data = Bytes::from(format!("sm at {index}"));
            let m = mem.wl().create_snapshot(index, None, data.clone());
            let d = disk.wl().create_snapshot(index, None, data);
            assert_eq!(kind(&m), kind(&d), "create_snapshot({index}): {context}");
            if let (Ok(m), Ok(d)) = (m, d) {
                assert_eq!(m, d, "create_snapshot({index}): {context}");
            }
        } else if op < 82 {
            let index = rng.random_range(first..=last + 2);
            let (m, d) = (mem.wl().compact(index), disk.wl().compact(index));
            assert_eq!(kind(&m), kind(&d), "compact({index}): {context}");
            done[1] += u32::from(m.is_ok() && index > first);
        } else if op < 87 {
            // A leader's snapshot, ahead of the log or inside it.
            let index = rng.random_range(first.max(commit)..=last + 5);
            term += rng.random_range(0..2);
            let s = snap(index, term, &[1, 2, 3, 4]);
            let m = mem.wl().apply_snapshot(s.clone());
            let batch = WriteBatch {
                snapshot: Some(s),
                ..Default::default()
            };
            let d = disk.wl().write(batch, false);
            assert_eq!(kind(&m), kind(&d), "apply_snapshot({index}): {context}");
            done[2] += u32::from(m.is_ok());
        } else if op < 90 {
            let cs = conf(&[1, 2, 3, rng.random_range(4..9)]);
            mem.wl().set_conf_state(cs.clone());
            disk.wl().set_conf_state(cs);
        } else if op < 95 {
            disk.wl().sync().unwrap();
        } else {
            // Sync, lose power (or close), reopen: nothing may change.
            disk.wl().sync().unwrap();
            drop(disk);
            disk_kind.crash();
            disk = disk_kind.open(&options);
            assert_eq!(disk.rl().recovery().torn_tail, None, "{context}");
            done[3] += 1;
        }
        let snapshot = disk.rl().snapshot_metadata().clone();
        assert_same_reads(&mem, &disk, &snapshot, &mut rng, &context);
    }
    done
}

/// Adds up the counts of several runs and checks that every kind of operation happened.
fn assert_exercised(counts: impl Iterator<Item = [u32; 4]>) {
    let total = counts.fold([0; 4], |a, c| {
        [a[0] + c[0], a[1] + c[1], a[2] + c[2], a[3] + c[3]]
    });
    let [appends, compactions, installs, reopens] = total;
    assert!(
        appends > 100 && compactions > 2 && installs > 5 && reopens > 5,
        "the random operations barely ran: {appends} appends, {compactions} compactions, \
         {installs} installed snapshots, {reopens} reopenings"
    );
}

#[test]
fn disk_storage_answers_like_mem_storage_on_the_simulated_disk() {
    assert_exercised((0..40).map(|seed| run(seed, Disk::Sim(sim(seed)), 300)));
}

#[test]
fn disk_storage_answers_like_mem_storage_on_real_files() {
    assert_exercised((100..104).map(|seed| {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        run(seed, Disk::Real(tmp), 150)
    }));
}
