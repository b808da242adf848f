//! Wire types of the Raft core, wire-compatible with raft-rs 0.7's `eraftpb` (proto3).
//!
//! The types are generated from `proto/eraftpb.proto` by prost; `bytes` fields are [`bytes::Bytes`], so a
//! payload fanned out to several followers shares one buffer. Beside them: [`ConfChangeI`] (v1 and v2
//! membership changes behind one trait) with the compact text form, one-line describers for logs and
//! transcripts, and the entry size measures used by flow control.

/// The generated protobuf types (package `eraftpb`). Their docs come from the comments in the `.proto`.
pub mod eraftpb {
    include!(concat!(env!("OUT_DIR"), "/eraftpb.rs"));
}

pub mod conf_change;
pub mod describe;
pub mod util;

pub use conf_change::{
    conf_changes_from_string, conf_changes_to_string, new_conf_change_single, ConfChangeI,
};
pub use describe::{
    describe_conf_state, describe_entry, describe_hard_state, describe_message, describe_snapshot,
};
pub use util::{entry_size, payload_size};

pub use prost;
