//! Many Raft groups on one node (multi-raft), without I/O: the driver a TiKV- or
//! CockroachDB-style system puts around `raft_core`.
//!
//! [`MultiRaft`] keeps one [`RawNode`](raft_core::RawNode) per group, found by a `u64` group id,
//! and makes the cost of a node follow its busy groups, not all of them:
//!
//! - **Quiescence.** [`MultiRaft::tick`] ticks only awake groups. A leader idle for a few ticks
//!   puts its group to sleep ([`RawNode::quiesce`](raft_core::RawNode::quiesce)): no ticks, no
//!   heartbeats on any member until a message, a proposal, a read or [`MultiRaft::wake`] wakes it.
//!   A sleeping follower cannot see its leader die: the application's failure detector calls
//!   [`MultiRaft::node_down`]. A sleeping group with nothing in flight is kept frozen
//!   ([`FrozenNode`](raft_core::FrozenNode)), about a third of a live node's memory, and thawed
//!   exactly as it was when anything reaches it; [`MultiRaft::group_status`] reads it without
//!   thawing.
//! - **One envelope per destination.** Messages of all groups are queued per destination node
//!   and [`MultiRaft::flush`] hands out one [`Envelope`] per node (a protobuf type of this crate;
//!   raft-rs peers never see it). [`MultiRaft::step_encoded`] splits a received one and steps each
//!   message into its group; a message for an unknown group goes through the application's
//!   [`GroupCreator`] hook, which creates the group ([`NewGroup::Create`]) or refuses it.
//! - **One fsync for many groups.** [`MultiRaft::ready`] collects the Readys of every group that
//!   has one into a [`ReadyBatch`]; the application writes all of them, syncs once, and
//!   acknowledges the batch ([`MultiRaft::advance`], or [`MultiRaft::advance_append_async`] and
//!   [`MultiRaft::on_persisted`] to persist in the background).
//!
//! A group's replica on a node has the node's id as its Raft id, so a message's `to` is the node
//! it goes to.
//!
//! # The loop
//!
//! Three nodes, each holding a replica of groups 10 and 20, exchange encoded envelopes. A real
//! application writes each batch to disk with one fsync and sends envelopes over its transport.
//!
//! ```
//! use prost::Message as _;
//! use raft_core::{Config, StateRole};
//! use raft_multi::{MultiConfig, MultiRaft, ReadyBatch};
//! use storage_mem::MemStorage;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let mut nodes = Vec::new();
//! for node_id in 1..=3 {
//!     let mut node = MultiRaft::new(MultiConfig::new(node_id), &logger)?;
//!     for group_id in [10, 20] {
//!         let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
//!         node.add_group(group_id, &Config::new(node_id), storage)?;
//!     }
//!     nodes.push(node);
//! }
//!
//! /// Persists a batch (a real application: one write and one fsync for all groups), applies
//! /// it, and acknowledges it. Returns the data of the entries applied.
//! fn persist_and_apply(node: &mut MultiRaft<MemStorage>, mut batch: ReadyBatch) -> Vec<Vec<u8>> {
//!     let mut applied = Vec::new();
//!     for group in batch.groups_mut() {
//!         let store = node.store(group.group_id()).unwrap().clone();
//!         let ready = group.ready_mut();
//!         store.wl().append(ready.entries()).unwrap();
//!         if let Some(hard_state) = ready.hard_state() {
//!             store.wl().set_hardstate(*hard_state);
//!         }
//!         for entry in ready.take_committed_entries() {
//!             if !entry.data.is_empty() {
//!                 applied.push(entry.data.to_vec());
//!             }
//!         }
//!     }
//!     // fsync here, once, if batch.must_sync()
//!     node.advance(batch);
//!     applied
//! }
//!
//! nodes[0].campaign(10)?;
//! nodes[1].campaign(20)?;
//! let mut applied = vec![Vec::new(); 3];
//! for round in 0..40 {
//!     if round == 10 {
//!         nodes[0].propose(10, vec![], b"in group 10".to_vec())?;
//!         nodes[1].propose(20, vec![], b"in group 20".to_vec())?;
//!     }
//!     let mut wire = Vec::new();
//!     for (index, node) in nodes.iter_mut().enumerate() {
//!         node.tick();
//!         while node.has_ready() {
//!             let batch = node.ready();
//!             applied[index].extend(persist_and_apply(node, batch));
//!         }
//!         for envelope in node.flush() {
//!             wire.push((envelope.to_node, envelope.encode_to_vec()));
//!         }
//!     }
//!     for (to_node, bytes) in wire {
//!         nodes[to_node as usize - 1].step_encoded(&bytes)?;
//!     }
//! }
//!
//! assert_eq!(nodes[0].group_status(10).unwrap().role, StateRole::Leader);
//! assert_eq!(nodes[1].group_status(20).unwrap().role, StateRole::Leader);
//! for node_applied in &applied {
//!     assert_eq!(node_applied.len(), 2, "every node applied both groups' entries");
//! }
//! // Idle since round 10, both groups went to sleep on every node: ticks now cost nothing, and
//! // each sleeping group is kept frozen, a third of a live node's memory.
//! for node in &nodes {
//!     assert_eq!(node.status().quiesced_groups, 2);
//!     assert_eq!(node.status().awake_groups, 0);
//!     assert!(node.group_status(10).unwrap().frozen);
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod driver;
mod envelope;
mod error;
mod inbound;
mod outbox;
mod ready;
mod registry;
mod status;
mod tick;

pub use config::MultiConfig;
pub use driver::{GroupCreator, MultiRaft, NewGroup};
pub use envelope::{Envelope, GroupMessage};
pub use error::{EnvelopeError, Error};
pub use inbound::InboundReport;
pub use ready::{GroupReady, PendingBatch, ReadyBatch};
pub use status::{GroupStatus, Metrics, MultiStatus};
