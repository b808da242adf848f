//! Errors returned by the Raft core and by [`Storage`](crate::Storage) implementations.

use raft_proto::eraftpb::MessageType;

/// An error from a [`Storage`](crate::Storage) implementation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The requested index is below the first index: it was compacted away.
    #[error("log compacted: the requested index is below the first available index")]
    Compacted,
    /// The requested index is beyond the last index of the log.
    #[error("log unavailable: the requested index is beyond the last index")]
    Unavailable,
    /// The entries exist but cannot be read right now; try again later.
    #[error("log entries temporarily unavailable")]
    LogTemporarilyUnavailable,
    /// A snapshot older than the one already held was offered.
    #[error("snapshot out of date: the storage already holds a newer one")]
    SnapshotOutOfDate,
    /// The snapshot is being built; ask again later.
    #[error("snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// Any other failure of the storage (I/O, corruption, ...).
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PartialEq for StorageError {
    /// Two storage errors are equal when they are of the same kind (`Other` payloads are not compared).
    fn eq(&self, other: &Self) -> bool {
        core::mem::discriminant(self) == core::mem::discriminant(other)
    }
}

/// An error returned by the Raft core.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The storage failed; the node's state is unchanged by the call that returned this.
    #[error("{0}")]
    Store(#[from] StorageError),
    /// A [`Config`](crate::Config) field breaks a rule.
    #[error("invalid config: `{field}` {rule}")]
    ConfigInvalid {
        /// The name of the offending field.
        field: &'static str,
        /// The rule it breaks, in words.
        rule: String,
    },
    /// A proposal was not accepted (no leader known, forwarding disabled, leadership transfer under
    /// way, uncommitted-size limit reached, or this node is not a member). The application may retry.
    #[error("proposal dropped")]
    ProposalDropped,
    /// A message that only the local node may create (`MsgHup`, `MsgBeat`, ...) arrived through `step`.
    #[error("message type {0:?} is local-only and may not arrive from the network")]
    StepLocalMsg(MessageType),
    /// A response arrived from a node that is not in the configuration.
    #[error("response {msg_type:?} from node {from}, which is not in the configuration")]
    StepPeerNotFound {
        /// The type of the refused message.
        msg_type: MessageType,
        /// The sender it named.
        from: u64,
    },
    /// A message was refused because its fields are impossible for this node; the node's state is
    /// unchanged.
    #[error("rejected {msg_type:?} from node {from}: {reason}")]
    InvalidMessage {
        /// The type of the refused message.
        msg_type: MessageType,
        /// The sender it named.
        from: u64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A message carried a message-type value this library does not know.
    #[error("unknown message type value {0}")]
    UnknownMessageType(i32),
    /// A membership change cannot be applied to the current configuration (or, at proposal time,
    /// would not be applicable when its entry is applied); the configuration is unchanged.
    #[error("conf change refused: {0}")]
    ConfChange(String),
    /// A read request was dropped: no leader is known, or this node leads but is no longer a
    /// voter. The application may retry (reads have no effect, so retrying is always safe).
    #[error("read index request dropped")]
    ReadIndexDropped,
    /// A snapshot request was not sent (this node leads, knows no leader, already waits for a
    /// snapshot, or its last entry is not of the current term). The application may retry later.
    #[error("snapshot request dropped")]
    RequestSnapshotDropped,
    /// A broken local invariant was detected (a bug in this library or a misuse of its API).
    #[error("internal invariant broken: {0}")]
    Invariant(&'static str),
}

/// The result type of the Raft core.
pub type Result<T> = core::result::Result<T, Error>;
