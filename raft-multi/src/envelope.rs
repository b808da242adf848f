//! The wire type between two nodes of a multi-raft deployment: one [`Envelope`] carries the
//! messages of every group from one node to another, each tagged with its group id.
//!
//! It is a protobuf message of this crate (not part of `eraftpb`): raft-rs peers never see it. A
//! transport encodes it with [`prost::Message::encode_to_vec`] and the receiver hands the bytes
//! to [`MultiRaft::step_encoded`](crate::MultiRaft::step_encoded).

use raft_core::eraftpb::Message;

/// The messages of many groups from one node to another, sent as one unit per flush.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// The sending node.
    #[prost(uint64, tag = "1")]
    pub from_node: u64,
    /// The receiving node.
    #[prost(uint64, tag = "2")]
    pub to_node: u64,
    /// The messages, in the order their groups produced them.
    #[prost(message, repeated, tag = "3")]
    pub messages: Vec<GroupMessage>,
}

/// One Raft message of one group.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupMessage {
    /// The group the message belongs to.
    #[prost(uint64, tag = "1")]
    pub group_id: u64,
    /// The message (raft-rs 0.7's `eraftpb.Message`). Always present when sent by this crate; a
    /// received one without it is dropped.
    #[prost(message, optional, tag = "2")]
    pub message: Option<Message>,
}
