//! [`WriteBatch`]: what one `Ready` asks to persist.

use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft_core::Ready;

/// The writes of one `Ready`, applied in this order by
/// [`DiskStorageCore::write`](crate::DiskStorageCore::write): the snapshot, the entries, the hard
/// state, the membership.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    /// A snapshot to install (`Ready::snapshot` when it is not empty).
    pub snapshot: Option<Snapshot>,
    /// Entries to append, replacing any conflicting suffix (`Ready::entries`).
    pub entries: Vec<Entry>,
    /// The new hard state (`Ready::hard_state`).
    pub hard_state: Option<HardState>,
    /// A new membership (after applying a conf change).
    pub conf_state: Option<ConfState>,
}

impl WriteBatch {
    /// The snapshot, entries and hard state a `Ready` asks to persist (the entries' payloads are
    /// shared, not copied).
    pub fn from_ready(ready: &Ready) -> WriteBatch {
        let snapshot = ready.snapshot();
        let has_snapshot = snapshot.metadata.as_ref().is_some_and(|m| m.index > 0);
        WriteBatch {
            snapshot: has_snapshot.then(|| snapshot.clone()),
            entries: ready.entries().to_vec(),
            hard_state: ready.hard_state().copied(),
            conf_state: None,
        }
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.conf_state.is_none()
    }
}
