//! Wire types of the Raft core, wire-compatible with raft-rs 0.7's `eraftpb` (proto3).
//!
//! The types are generated from `proto/eraftpb.proto` by prost; `bytes` fields are [`bytes::Bytes`], so a
//! payload fanned out to several followers shares one buffer.

/// The generated protobuf types (package `eraftpb`).
#[allow(missing_docs)]
pub mod eraftpb {
    include!(concat!(env!("OUT_DIR"), "/eraftpb.rs"));
}

pub use prost;
