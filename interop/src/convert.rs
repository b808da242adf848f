//! Crossing between the two libraries: messages travel as protobuf bytes in an [`Envelope`] (prost
//! on our side, rust-protobuf 2 on raft-rs's), and entries of either library are compared as an
//! [`EntrySummary`].

use crate::Lib;
use bytes::Bytes;
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb as theirs;
use raft_core::eraftpb as ours;

/// An entry as both libraries can describe it: what tests compare across nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    /// The entry's index.
    pub index: u64,
    /// The entry's term.
    pub term: u64,
    /// The entry type's wire value (`EntryNormal` = 0).
    pub entry_type: i32,
    /// The payload.
    pub data: Vec<u8>,
}

impl EntrySummary {
    /// The summary of one of our entries.
    pub(crate) fn of_ours(e: &ours::Entry) -> EntrySummary {
        EntrySummary {
            index: e.index,
            term: e.term,
            entry_type: e.entry_type,
            data: e.data.to_vec(),
        }
    }

    /// The summary of a raft-rs entry.
    pub(crate) fn of_theirs(e: &theirs::Entry) -> EntrySummary {
        EntrySummary {
            index: e.index,
            term: e.term,
            entry_type: protobuf::ProtobufEnum::value(&e.get_entry_type()),
            data: e.data.to_vec(),
        }
    }
}

/// A message on the wire between two nodes.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The sender's id.
    pub from: u64,
    /// The receiver's id.
    pub to: u64,
    /// The library that encoded it.
    pub from_lib: Lib,
    /// The protobuf encoding of the message.
    pub bytes: Vec<u8>,
}

impl Envelope {
    /// Decodes the bytes as our wire type (for tracing and assertions).
    pub fn decode(&self) -> ours::Message {
        ours::Message::decode(&self.bytes[..]).unwrap_or_else(|e| {
            panic!(
                "a message from node {} ({:?}) does not decode as eraftpb.Message: {e}",
                self.from, self.from_lib
            )
        })
    }

    /// Encodes a message of ours with prost.
    pub(crate) fn from_ours(m: &ours::Message) -> Envelope {
        Envelope {
            from: m.from,
            to: m.to,
            from_lib: Lib::Ours,
            bytes: m.encode_to_vec(),
        }
    }

    /// Encodes a raft-rs message with rust-protobuf.
    pub(crate) fn from_raft_rs(m: &theirs::Message) -> Envelope {
        Envelope {
            from: m.from,
            to: m.to,
            from_lib: Lib::RaftRs,
            bytes: m.write_to_bytes().expect("raft-rs encodes its message"),
        }
    }

    /// Decodes the bytes with prost for our node `receiver`; a failure panics (the wire formats
    /// disagree).
    pub(crate) fn decode_for_ours(&self, receiver: u64) -> ours::Message {
        ours::Message::decode(&self.bytes[..]).unwrap_or_else(|e| {
            panic!(
                "node {receiver} (ours) cannot decode a message from node {} ({:?}): {e}",
                self.from, self.from_lib
            )
        })
    }

    /// Decodes the bytes with rust-protobuf for raft-rs node `receiver`; a failure panics (the wire
    /// formats disagree).
    pub(crate) fn decode_for_raft_rs(&self, receiver: u64) -> theirs::Message {
        theirs::Message::parse_from_bytes(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "node {receiver} (raft-rs) cannot decode a message from node {} ({:?}): {e}",
                self.from, self.from_lib
            )
        })
    }
}

/// One entry per line: `index/term type data`.
pub fn describe_log(log: &[EntrySummary]) -> String {
    log.iter()
        .map(|e| {
            format!(
                "  {}/{} type={} {:?}",
                e.index,
                e.term,
                e.entry_type,
                Bytes::copy_from_slice(&e.data)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
