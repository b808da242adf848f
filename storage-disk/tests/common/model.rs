//! The model of a storage's contents that the crash sweeps compare a recovered storage with.

use std::collections::BTreeMap;

use raft_core::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use raft_core::{Storage, NO_LIMIT};

/// What a storage holds, as the reads show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub first: u64,
    pub entries: BTreeMap<u64, Entry>,
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub snapshot: SnapshotMetadata,
}

/// What `s` holds, as its reads show it, with its latest snapshot's metadata `snapshot`.
pub fn model_of(s: &impl Storage, snapshot: SnapshotMetadata) -> Model {
    let first = s.first_index().unwrap();
    let last = s.last_index().unwrap();
    let entries = s
        .entries(first, last + 1, NO_LIMIT)
        .expect("every entry of the log reads back")
        .into_iter()
        .map(|e| (e.index, e))
        .collect();
    let state = s.initial_state().unwrap();
    Model {
        first,
        entries,
        hard_state: state.hard_state,
        conf_state: state.conf_state,
        snapshot,
    }
}

/// Checks what a recovered storage holds (`got`) against the models from the last synced one
/// (`from`) to the one whose step failed (`to`), inclusive: everything recovered was written at
/// or after the last sync, and every synced entry that no later step replaced or compacted is
/// there.
pub fn check(got: &Model, models: &[Model], from: usize, to: usize, context: &str) {
    let window = &models[from..=to.min(models.len() - 1)];
    let synced = &models[from];
    assert!(
        window.iter().any(|m| m.hard_state == got.hard_state),
        "{context}: recovered hard state {:?} was never written at or after the last sync ({:?})",
        got.hard_state,
        synced.hard_state
    );
    assert!(
        window.iter().any(|m| m.conf_state == got.conf_state),
        "{context}: recovered membership {:?} was never set at or after the last sync ({:?})",
        got.conf_state,
        synced.conf_state
    );
    assert!(
        window.iter().any(|m| m.snapshot == got.snapshot),
        "{context}: recovered snapshot {:?} is not one written at or after the last sync",
        got.snapshot
    );
    assert!(
        got.first >= synced.first && window.iter().any(|m| m.first == got.first),
        "{context}: recovered first index {} (synced: {})",
        got.first,
        synced.first
    );
    for (index, entry) in &got.entries {
        assert!(
            window.iter().any(|m| m.entries.get(index) == Some(entry)),
            "{context}: entry {index} (term {}) was never written",
            entry.term
        );
    }
    // Every synced entry that no later step replaced or compacted must be there.
    for (index, entry) in &synced.entries {
        let kept_by_all = window
            .iter()
            .all(|m| m.entries.get(index) == Some(entry) || *index < m.first);
        if kept_by_all && *index >= got.first {
            assert_eq!(
                got.entries.get(index),
                Some(entry),
                "{context}: synced entry {index} is missing or changed"
            );
        }
    }
}

/// A change of the log's shape that a sweep makes to the model storage and the disk storage
/// alike.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub enum Reshape {
    /// A snapshot of the state machine at this index.
    Snapshot(u64),
    /// Compaction up to this index.
    Compact(u64),
    /// A leader's snapshot at (index, term), installed with an unsynced write.
    Install(u64, u64),
}

/// Applies `step` to `mem` (which must accept it) and to `disk`, returning the disk's answer.
#[allow(dead_code)]
pub fn reshape(
    mem: &storage_mem::MemStorage,
    disk: &storage_disk::DiskStorage,
    step: Reshape,
) -> raft_core::Result<()> {
    match step {
        Reshape::Snapshot(index) => {
            let data = bytes::Bytes::from(format!("sm {index}"));
            mem.wl().create_snapshot(index, None, data.clone()).unwrap();
            disk.wl().create_snapshot(index, None, data).map(|_| ())
        }
        Reshape::Compact(index) => {
            mem.wl().compact(index).unwrap();
            disk.wl().compact(index)
        }
        Reshape::Install(index, term) => {
            let s = super::snap(index, term, &[1, 2, 3]);
            mem.wl().apply_snapshot(s.clone()).unwrap();
            let batch = storage_disk::WriteBatch {
                snapshot: Some(s),
                ..Default::default()
            };
            disk.wl().write(batch, false)
        }
    }
}
