//! Errors of the multi-group driver.

/// An error of a call on [`MultiRaft`](crate::MultiRaft).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// No group with this id lives on this node.
    #[error("group {0} is not on this node")]
    UnknownGroup(u64),
    /// A group with this id already lives on this node.
    #[error("group {0} is already on this node")]
    GroupExists(u64),
    /// The group was removed from this node (tombstoned): it is not created again until the
    /// application forgets the tombstone.
    #[error("group {0} was removed from this node")]
    Tombstoned(u64),
    /// A group's `Config::id` must be this node's id: a group's replica on a node is named by the
    /// node (messages are routed by their `to` field).
    #[error("group {group_id}: config id {config_id} is not this node's id {node_id}")]
    WrongReplicaId {
        /// The group.
        group_id: u64,
        /// The id its config named.
        config_id: u64,
        /// This node's id.
        node_id: u64,
    },
    /// The group's Raft node refused the call or its storage failed.
    #[error("group {group_id}: {source}")]
    Raft {
        /// The group.
        group_id: u64,
        /// What the core said.
        #[source]
        source: raft_core::Error,
    },
}

/// Why a received envelope was refused as a whole (nothing of it was stepped).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    /// The bytes are not an [`Envelope`](crate::Envelope).
    #[error("malformed envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The envelope is addressed to another node.
    #[error("envelope for node {to_node} arrived at node {node_id}")]
    WrongNode {
        /// The node it named.
        to_node: u64,
        /// This node.
        node_id: u64,
    },
    /// The envelope names no sender, or this node as its sender.
    #[error("envelope names an impossible sender {0}")]
    BadSender(u64),
}
