//! Mixed clusters: nodes of this library (`raft_core::RawNode<storage_mem::MemStorage>`) and nodes of
//! raft-rs 0.7 (`raft::RawNode<raft::storage::MemStorage>`) in one Raft group.
//!
//! Messages cross between nodes **only as protobuf bytes**: a node of ours encodes with
//! `prost::Message::encode_to_vec`, a raft-rs node with `protobuf::Message::write_to_bytes`, and the
//! receiver decodes with its own library (`prost::Message::decode` or
//! `protobuf::Message::parse_from_bytes`). So everything that travels has gone through the wire
//! format, and a node never sees the other library's Rust types.
//!
//! [`MixedCluster`] is driven like `rafttest::Network`: delivery is synchronous and FIFO and runs to
//! quiescence; each node's `Ready` is handled the way its own library documents (for raft-rs, the
//! ordering of its `examples/five_mem_node`); committed normal entries are recorded per node, and
//! committed conf change entries are decoded with the node's own library, applied with its
//! `apply_conf_change`, the returned `ConfState` stored in its storage and recorded in
//! [`MixedNode::conf_log`]. Conf changes are proposed from the compact text form
//! ([`MixedCluster::propose_conf_change`]), and nodes of either library join a running group
//! ([`MixedCluster::add_node`]) from the bootstrap membership and an empty log, catching up by
//! appends (no snapshots: neither side compacts its log). Links
//! can be cut ([`MixedCluster::cut`], [`MixedCluster::isolate`]) and healed
//! ([`MixedCluster::recover`]). Election timeouts are pinned per node ([`NodeConfig`]) so a test
//! knows which node times out first; raft-rs draws its timeouts from a thread-local generator, so a
//! pinned `[t, t + 1)` range is the only way to make it deterministic.
//!
//! Every delivered message is also decoded into our wire type and kept in
//! [`MixedCluster::delivered`] (with what the receiver had before handling it), and every message a
//! node refused is kept in [`MixedCluster::refusals`], so tests can assert on the traffic.
//!
//! Set `INTEROP_LOG=1` to see both libraries' logs on stderr.

mod cluster;
mod config;
mod convert;
mod node;

pub use cluster::{describe_conf_log, Delivered, MixedCluster, Refusal};
pub use config::{Lib, NodeConfig, ELECTION_TICK, HEARTBEAT_TICK};
pub use convert::{describe_log, EntrySummary, Envelope};
pub use node::{ConfChangeForm, ConfRecord, MixedNode, Raw};
pub use raft_core::StateRole;
