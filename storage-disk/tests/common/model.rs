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
