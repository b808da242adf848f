//! A checkpoint write that never landed (issue 16): the device acknowledged the state file slot
//! write of a checkpoint, and its fsync, but put the bytes one sector away (misdirected) or
//! nowhere (lost). The log's witness of the checkpoint brings it back at recovery, for every
//! kind of checkpoint (a snapshot created, adopted from another thread or installed from a
//! leader; a compaction removing its segments or handing them to the caller) and whichever slot
//! the write was aimed at. A witness that contradicts the state file is an error naming it; a
//! directory written before witnesses existed opens as before; and the multi-group log, whose
//! checkpoint file is replaced whole, refuses a lost checkpoint write with an error naming the
//! file, never coming back from an older state.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::model::{model_of, Model};
use common::*;
use raft_core::eraftpb::HardState;
use raft_core::Storage;
use storage_disk::io::{Fs, SimFs};
use storage_disk::{DiskStorage, MultiLog, MultiOptions, WriteBatch};

fn state_path() -> PathBuf {
    dir().join("state")
}

/// How the device mishandles a write.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Misdirected,
    Lost,
}

impl Fault {
    /// Arms the fault for the next write to the file at `path`.
    fn arm(self, fs: &SimFs, path: &Path) {
        match self {
            Fault::Misdirected => fs.misdirect_next_write(path),
            Fault::Lost => fs.lose_next_write(path),
        }
    }
}

/// A call that writes a checkpoint, durable when it returns.
#[derive(Debug, Clone, Copy)]
enum Checkpoint {
    CreateSnapshot,
    AdoptSnapshot,
    Compact,
    CompactDeferred,
    ApplySnapshot,
}

const CHECKPOINTS: [Checkpoint; 5] = [
    Checkpoint::CreateSnapshot,
    Checkpoint::AdoptSnapshot,
    Checkpoint::Compact,
    Checkpoint::CompactDeferred,
    Checkpoint::ApplySnapshot,
];

/// Entries `lo..=hi` of `term`, committed, as one synced Ready.
fn write(s: &DiskStorage, lo: u64, hi: u64, term: u64) {
    let batch = WriteBatch {
        entries: (lo..=hi).map(|i| ent(i, term)).collect(),
        hard_state: Some(HardState {
            term,
            vote: 1,
            commit: hi,
        }),
        ..Default::default()
    };
    s.wl().write(batch, true).unwrap();
}

/// A storage holding entries 1..=40 of term 1, committed, over several segments, after `prior`
/// checkpoints: none, a snapshot at 5, or that snapshot and the log compacted to it. The state
/// file's slots alternate, so the next checkpoint goes to slot 1, 0 or 1.
fn storage_with(fs: &SimFs, prior: usize) -> DiskStorage {
    let s = open(fs, &small_options()).unwrap();
    s.wl().set_conf_state(conf(&[1, 2, 3]));
    s.wl().sync().unwrap();
    for lo in (1..=40).step_by(4) {
        write(&s, lo, lo + 3, 1);
    }
    if prior >= 1 {
        s.wl()
            .create_snapshot(5, None, "state at 5".into())
            .unwrap();
    }
    if prior >= 2 {
        s.wl().compact(5).unwrap();
    }
    s
}

/// Makes the checkpointing call `kind` on `s`, with `fault` armed for its state file write
/// (calls that need a snapshot to compact behind take one first, unharmed).
fn checkpoint(s: &DiskStorage, fs: &SimFs, kind: Checkpoint, fault: Fault) {
    let snapshot_at_30 = || {
        s.wl()
            .create_snapshot(30, None, "state at 30".into())
            .unwrap()
    };
    match kind {
        Checkpoint::CreateSnapshot => {
            fault.arm(fs, &state_path());
            snapshot_at_30();
        }
        Checkpoint::AdoptSnapshot => {
            let writer = s.rl().snapshot_writer(30, None).unwrap();
            let written = writer.write("state at 30".into()).unwrap();
            fault.arm(fs, &state_path());
            assert!(s.wl().adopt_snapshot(written).unwrap());
        }
        Checkpoint::Compact => {
            snapshot_at_30();
            fault.arm(fs, &state_path());
            s.wl().compact(30).unwrap();
            assert!(fs.contents(&segment(1)).is_none(), "segment 1 was removed");
        }
        Checkpoint::CompactDeferred => {
            snapshot_at_30();
            fault.arm(fs, &state_path());
            let garbage = s.wl().compact_deferred(30).unwrap();
            assert!(!garbage.paths().is_empty());
            assert!(garbage.remove().is_empty());
        }
        Checkpoint::ApplySnapshot => {
            fault.arm(fs, &state_path());
            let batch = WriteBatch {
                snapshot: Some(snap(50, 2, &[1, 2, 3])),
                entries: (51..=53).map(|i| ent(i, 2)).collect(),
                hard_state: Some(HardState {
                    term: 2,
                    vote: 0,
                    commit: 53,
                }),
                ..Default::default()
            };
            s.wl().write(batch, true).unwrap();
        }
    }
}

/// What `s` holds, and its snapshot's data.
fn contents(s: &DiskStorage) -> (Model, bytes::Bytes) {
    let model = model_of(s, s.rl().snapshot_metadata().clone());
    (model, s.snapshot(0, 0).unwrap().data)
}

#[test]
fn a_lost_or_misdirected_state_file_write_is_rolled_forward_from_the_log() {
    for kind in CHECKPOINTS {
        for fault in [Fault::Misdirected, Fault::Lost] {
            for prior in [0, 1] {
                let context = format!("{fault:?} state file write at {kind:?} after {prior}");
                let fs = sim(3);
                let s = storage_with(&fs, prior);
                checkpoint(&s, &fs, kind, fault);
                let damaged = fs.damaged_writes();
                assert_eq!(damaged.len(), 1, "{context}: {damaged:?}");
                assert_eq!(damaged[0].path.as_deref(), Some(state_path().as_path()));
                // The node goes on; then the power fails.
                let (next, term) = (s.last_index().unwrap() + 1, s.rl().hard_state().term);
                write(&s, next, next + 2, term);
                let before = contents(&s);
                drop(s);
                let after = fs.crash();
                let recovered = open(&after, &small_options())
                    .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
                let rolled = recovered.rl().recovery().rolled_forward.clone();
                let rolled = rolled.unwrap_or_else(|| panic!("{context}: nothing rolled forward"));
                assert_eq!(rolled.state_file, state_path(), "{context}");
                assert!(
                    rolled.slot_sequence < Some(rolled.witnessed_sequence),
                    "{context}: the state file alone was behind: {rolled:?}"
                );
                assert!(in_dir(&rolled.witness_path), "{context}: {rolled:?}");
                assert_eq!(contents(&recovered), before, "{context}");
                // The state file was repaired: a second power loss needs no witness.
                drop(recovered);
                let second = after.crash();
                let again = open(&second, &small_options()).unwrap();
                assert_eq!(again.rl().recovery().rolled_forward, None, "{context}");
                assert_eq!(contents(&again), before, "{context}");
                // And the storage goes on checkpointing from there.
                let last = again.last_index().unwrap();
                again
                    .wl()
                    .create_snapshot(last, None, "the last".into())
                    .unwrap();
                drop(again);
                let last_open = open(&second.crash(), &small_options()).unwrap();
                assert_eq!(last_open.rl().snapshot_metadata().index, last, "{context}");
                assert_eq!(last_open.rl().recovery().rolled_forward, None, "{context}");
            }
        }
    }
}

#[test]
fn a_checkpoint_costs_one_more_fsync_for_its_witness_and_a_ready_none() {
    let fs = sim(4);
    let s = storage_with(&fs, 0);
    let syncs = fs.sync_count();
    s.wl()
        .create_snapshot(30, None, "state at 30".into())
        .unwrap();
    // The snapshot file, the state file's slot, the witness.
    assert_eq!(fs.sync_count() - syncs, 3);
    let last = (1..100)
        .rev()
        .find(|id| fs.contents(&segment(*id)).is_some());
    let records = walk_records(&records(&fs, last.unwrap()));
    let kinds: Vec<u32> = records.iter().rev().take(2).map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [2, 9],
        "the witness, then the sync mark of its fsync"
    );
    let syncs = fs.sync_count();
    write(&s, 41, 42, 1);
    assert_eq!(
        fs.sync_count() - syncs,
        1,
        "a Ready costs one fsync, as before"
    );
}

#[test]
fn no_valid_slot_is_rolled_forward_from_the_newest_witness_or_refused_without_one() {
    let fs = sim(5);
    let s = storage_with(&fs, 2);
    write(&s, 41, 44, 1);
    let before = contents(&s);
    drop(s);
    fs.set_contents(&state_path(), vec![0; 8192]);
    let recovered = open(&fs, &small_options()).unwrap();
    let rolled = recovered.rl().recovery().rolled_forward.clone().unwrap();
    assert_eq!(rolled.slot_sequence, None);
    assert_eq!(contents(&recovered), before);

    // A storage that never wrote a checkpoint has no witness to come back from.
    let fs = sim(6);
    let s = open(&fs, &small_options()).unwrap();
    write(&s, 1, 3, 1);
    drop(s);
    fs.set_contents(&state_path(), vec![0; 8192]);
    let error = open(&fs, &small_options()).unwrap_err();
    assert_eq!(corrupt_at(&error).0, state_path());
    assert!(error.to_string().contains("no valid slot"), "{error}");
}

#[test]
fn a_witness_that_contradicts_the_state_file_is_an_error_naming_it() {
    // Two storages with the same history up to a compaction, which differs: their checkpoints
    // have the same sequence number and different log starts.
    let (ours, theirs) = (sim(7), sim(7));
    for (fs, compact_to) in [(&ours, 3), (&theirs, 4)] {
        let s = storage_with(fs, 1);
        s.wl().compact(compact_to).unwrap();
    }
    ours.set_contents(&state_path(), theirs.contents(&state_path()).unwrap());
    let error = open(&ours, &small_options()).unwrap_err();
    let (path, offset) = corrupt_at(&error);
    assert_eq!(path, state_path());
    assert!(offset == 0 || offset == 4096, "a slot: {offset}");
    assert!(error.to_string().contains("holds another"), "{error}");
}

/// The files of a storage written by the engine before checkpoint witnesses existed (commit
/// 6ef3288, on a simulated disk with `small_options`): entries 1..=30 (term 1), a snapshot at
/// 20 and the log compacted to 18, entries 31..=40 (term 2), a leader's snapshot at 50 (term
/// 3), entries 51..=60, a snapshot at 55 and the log compacted to 53, entries 61..=85, each
/// Ready committing all but its last entry.
fn pre_witness_files() -> Vec<(String, Vec<u8>)> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pre-witness");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_directory_written_before_witnesses_opens_as_before_and_gains_them() {
    let fs = sim(8);
    for (name, bytes) in pre_witness_files() {
        fs.set_contents(&dir().join(name), bytes);
    }
    let s = open(&fs, &small_options()).unwrap();
    assert_eq!(
        *s.rl().recovery(),
        storage_disk::Recovery {
            segments: 3,
            entries: 33,
            ..Default::default()
        }
    );
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (53, 85)
    );
    let entries = s.entries(53, 86, raft_core::NO_LIMIT).unwrap();
    assert_eq!(entries, (53..=85).map(|i| ent(i, 3)).collect::<Vec<_>>());
    assert_eq!(
        *s.rl().hard_state(),
        HardState {
            term: 3,
            vote: 1,
            commit: 84
        }
    );
    assert_eq!(s.snapshot(0, 0).unwrap().data, "state at 55");
    for id in 4..=6 {
        assert!(walk_records(&records(&fs, id)).iter().all(|r| r.kind != 9));
    }
    // A checkpoint now writes a witness, and a state file write lost after the upgrade is
    // rolled forward from it.
    Fault::Lost.arm(&fs, &state_path());
    s.wl()
        .create_snapshot(80, None, "state at 80".into())
        .unwrap();
    drop(s);
    let s = open(&fs.crash(), &small_options()).unwrap();
    assert!(s.rl().recovery().rolled_forward.is_some());
    assert_eq!(s.snapshot(0, 0).unwrap().data, "state at 80");
}

fn multi_options() -> MultiOptions {
    MultiOptions {
        segment_bytes: 4096,
        cache_bytes_per_group: 1024,
        rewrite_lag_segments: 1000,
    }
}

fn open_multi(fs: &SimFs) -> Result<MultiLog, storage_disk::DiskError> {
    MultiLog::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), multi_options())
}

/// Appends entries `lo..=hi` (term 1, committed) to groups 1 and 2, each with a synced write.
fn multi_rounds(log: &MultiLog, lo: u64, hi: u64) {
    for index in lo..=hi {
        let batches = [1, 2].map(|g| (g, ready(index, index, index)));
        log.wl().write(batches, true).unwrap();
    }
}

/// Snapshots groups 1 and 2 at 50 and compacts their logs to it: a checkpoint is written and
/// the segments before it are removed.
fn multi_compact(fs: &SimFs, log: &MultiLog) {
    for group in [1, 2] {
        log.wl()
            .create_snapshot(group, 50, None, "state at 50".into())
            .unwrap();
        log.wl().compact(group, 50).unwrap();
    }
    assert!(fs.contents(&segment(1)).is_none(), "segment 1 was removed");
}

/// What groups 1 and 2 of `log` hold.
fn multi_contents(log: &MultiLog) -> Vec<Model> {
    [1, 2]
        .map(|g| {
            model_of(
                &log.group(g),
                log.rl().snapshot_metadata(g).unwrap().clone(),
            )
        })
        .to_vec()
}

/// Writes entries to groups 1 and 2 over several segments, then compacts both with `fault`
/// armed for the checkpoint file that frees the old segments.
fn multi_log_with_a_damaged_checkpoint(fault: Fault) -> SimFs {
    let fs = sim(9);
    let log = open_multi(&fs).unwrap();
    log.wl().create_groups(&[1, 2]).unwrap();
    multi_rounds(&log, 1, 60);
    fault.arm(&fs, &dir().join("checkpoint.tmp"));
    multi_compact(&fs, &log);
    assert_eq!(fs.damaged_writes().len(), 1, "{:?}", fs.damaged_writes());
    fs
}

#[test]
fn a_lost_multi_log_checkpoint_write_is_refused_naming_the_checkpoint_never_an_older_state() {
    for fault in [Fault::Misdirected, Fault::Lost] {
        let fs = multi_log_with_a_damaged_checkpoint(fault);
        let error =
            open_multi(&fs.crash()).expect_err("recovery accepted a checkpoint that never landed");
        assert_eq!(
            corrupt_at(&error),
            (dir().join("checkpoint"), 0),
            "{fault:?}: {error}"
        );
    }
}

#[test]
fn an_older_multi_log_checkpoint_with_its_segments_replays_to_the_same_state() {
    // What the multi-group log's checkpoint holds is folded from records of the log: were an
    // older one ever read with the segments it needs, it would come back to the same state.
    let fs = sim(11);
    let log = open_multi(&fs).unwrap();
    log.wl().create_groups(&[1, 2]).unwrap();
    multi_rounds(&log, 1, 60);
    let older: Vec<(PathBuf, Vec<u8>)> = fs
        .list(&dir())
        .unwrap()
        .into_iter()
        .map(|name| dir().join(name))
        .map(|path| (path.clone(), fs.contents(&path).unwrap()))
        .collect();
    multi_compact(&fs, &log);
    multi_rounds(&log, 61, 70);
    let before = multi_contents(&log);
    drop(log);
    let checkpoint = dir().join("checkpoint");
    let mut restored = Vec::new();
    for (path, bytes) in older {
        if path == checkpoint || fs.contents(&path).is_none() {
            fs.set_contents(&path, bytes);
            restored.push(path);
        }
    }
    assert!(restored.contains(&segment(1)), "{restored:?}");
    let log = open_multi(&fs).unwrap();
    assert!(log.rl().recovery().removed.is_empty());
    assert_eq!(multi_contents(&log), before);
}

#[test]
fn the_simulated_disk_misdirects_or_loses_the_write_it_is_told_to() {
    let fs = sim(10);
    let path = dir().join("file");
    fs.create_dir_all(&dir()).unwrap();
    let file = fs.create(&path).unwrap();
    file.write_at(0, &[1; 2048]).unwrap();
    file.sync().unwrap();
    fs.sync_dir(&dir()).unwrap();
    fs.misdirect_next_write(&path);
    file.write_at(1024, &[2; 512]).unwrap();
    fs.lose_next_write(&path);
    file.write_at(0, &[3; 512]).unwrap();
    file.sync().unwrap();
    let seen = fs.contents(&path).unwrap();
    assert_eq!(&seen[512..1024], &[2; 512][..], "landed a sector before");
    assert_eq!(
        &seen[1024..1536],
        &[1; 512][..],
        "the aimed-at sector kept its bytes"
    );
    assert_eq!(
        &seen[..512],
        &[3; 512][..],
        "a lost write is read back until a crash"
    );
    let after = fs.crash().contents(&path).unwrap();
    assert_eq!(&after[..512], &[1; 512][..], "and gone after it");
    assert_eq!(&after[512..1024], &[2; 512][..]);
    let injected = fs.injected();
    assert_eq!((injected.misdirected_writes, injected.lost_writes), (1, 1));
    let landed: Vec<Option<u64>> = fs.damaged_writes().iter().map(|w| w.landed).collect();
    assert_eq!(landed, [Some(512), None]);
}
