//! The [`Storage`] trait: how the core reads what the application has persisted.

use crate::error::Result;
use raft_proto::eraftpb::{ConfState, Entry, HardState, Snapshot};

/// A value meaning "no limit" for size limits such as `max_size`.
pub const NO_LIMIT: u64 = u64::MAX;

/// The state a node starts from: its persisted hard state and membership.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftState {
    /// The persisted term, vote and commit index.
    pub hard_state: HardState,
    /// The persisted membership.
    pub conf_state: ConfState,
}

impl RaftState {
    /// Builds a `RaftState` from its parts.
    pub fn new(hard_state: HardState, conf_state: ConfState) -> RaftState {
        RaftState {
            hard_state,
            conf_state,
        }
    }

    /// Whether the node has never been started (no persisted state and no members).
    pub fn initialized(&self) -> bool {
        self.conf_state != ConfState::default()
    }
}

/// Read access to the persisted Raft log, hard state and snapshot.
///
/// The application writes to its storage itself (from the `Ready` it handles); the core only reads.
/// The log is a contiguous range `[first_index, last_index]`; the entry just before `first_index`
/// (the last one covered by the snapshot) still has a known term, so `term(first_index - 1)` succeeds.
/// An empty log has `last_index == first_index - 1`.
pub trait Storage {
    /// The persisted hard state and membership the node starts from.
    fn initial_state(&self) -> Result<RaftState>;

    /// The entries in `[low, high)`, stopping once their total encoded size would pass `max_size`
    /// (but always returning at least one entry when the range is not empty).
    /// Returns `StorageError::Compacted` if `low` is below the first index and
    /// `StorageError::Unavailable` if `high` is past `last_index + 1`.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>>;

    /// The entries in `[low, high)` for an append to follower `to`, as [`Storage::entries`]. A
    /// storage that reads old entries from disk need not block the node here (raft-rs's
    /// asynchronous fetch): it may answer `StorageError::LogTemporarilyUnavailable`, load them in
    /// the background, and call `RawNode::on_entries_fetched(to)` once a retry will find them.
    /// Meanwhile the leader sends that follower nothing but heartbeats. The default reads at once.
    fn entries_for_append(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
        to: u64,
    ) -> Result<Vec<Entry>> {
        let _ = to;
        self.entries(low, high, max_size)
    }

    /// The term of the entry at `index`, valid for `[first_index - 1, last_index]`.
    /// Returns `StorageError::Compacted` below that range and `StorageError::Unavailable` above it.
    fn term(&self, index: u64) -> Result<u64>;

    /// The index of the first entry that may still be read (one past the snapshot's index).
    fn first_index(&self) -> Result<u64>;

    /// The index of the last entry in the log (the snapshot's index if the log is empty).
    fn last_index(&self) -> Result<u64>;

    /// The most recent snapshot, covering at least `request_index`, to be sent to node `to`.
    /// May return `StorageError::SnapshotTemporarilyUnavailable` while one is being made.
    fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot>;
}
