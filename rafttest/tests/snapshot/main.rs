//! Snapshots, log compaction and flow control (issue #4).
//!
//! - `sending`: a leader sending a snapshot to a follower whose next entries were compacted away:
//!   the Snapshot progress state and its pending index, paused appends, `report_snapshot`
//!   (Finish / Failure), aborting when the follower catches up by appends (etcd-io/etcd#10308),
//!   no snapshot to a follower that is not recently active, `SnapshotTemporarilyUnavailable`, and a
//!   slow follower recovering through a snapshot in a whole network.
//! - `receiving`: a follower restoring a snapshot: stale snapshots, fast-forward, impossible
//!   memberships, malformed messages, the Ready that carries the snapshot, joint configurations,
//!   and a node being added that receives a snapshot older than its addition.
//! - `restart`: a node restarted over a storage holding a snapshot and the log after it.
//! - `request`: `RawNode::request_snapshot` (raft-rs semantics).
//! - `flow_control`: the inflight window (messages and bytes), probing, the empty commit-carrying
//!   append, `max_committed_size_per_ready` and `max_uncommitted_size`.
//! - `memory`: buffers released after bursts (the unstable log, the inflight window).
//!
//! Leader-side rules are driven on a single node with hand-made messages, so that each test can
//! check the follower's `Progress` (state, `pending_snapshot`, `next_idx`, `matched`) and exactly
//! which messages were sent; end-to-end behaviour runs in a `rafttest::Network`.

#[path = "../common/mod.rs"]
mod common;

mod flow_control;
mod memory;
mod receiving;
mod request;
mod restart;
mod sending;
mod support;
