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
//!
//! # Persisting batches into one shared log
//!
//! `storage-disk`'s `MultiLog` (a separate crate: this one stays free of I/O) keeps every group
//! of a node in one log: the driver reads each group through its `GroupStorage`, and a whole
//! batch goes in with one `write` and, if any group asks for it, one fsync. After a crash,
//! every group restarts from what the log recovered.
//!
//! ```
//! use std::sync::Arc;
//!
//! use raft_core::eraftpb::ConfState;
//! use raft_core::{Config, StateRole, Storage};
//! use raft_multi::{MultiConfig, MultiRaft, ReadyBatch};
//! use storage_disk::io::RealFs;
//! use storage_disk::{GroupStorage, MultiLog, MultiOptions, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let dir = tempfile::tempdir()?;
//! let groups = [10, 20, 30];
//!
//! // A new log holding three single-voter groups of node 1.
//! let log = MultiLog::open(Arc::new(RealFs::new()), dir.path(), MultiOptions::default())?;
//! {
//!     let mut core = log.wl();
//!     core.create_groups(&groups)?;
//!     for group_id in groups {
//!         core.set_conf_state(group_id, ConfState::from((vec![1], vec![])))?;
//!     }
//!     core.sync()?;
//! }
//!
//! /// Persists a batch with one write and at most one fsync, applies it, acknowledges it.
//! /// Returns the data of the entries applied.
//! fn persist_and_apply(
//!     log: &MultiLog,
//!     node: &mut MultiRaft<GroupStorage>,
//!     mut batch: ReadyBatch,
//! ) -> raft_core::Result<Vec<Vec<u8>>> {
//!     let writes: Vec<(u64, WriteBatch)> = batch
//!         .groups()
//!         .iter()
//!         .map(|group| (group.group_id(), WriteBatch::from_ready(group.ready())))
//!         .collect();
//!     log.wl().write(writes, batch.must_sync())?;
//!     // Durable now: apply and acknowledge (on an error above, acknowledge nothing and stop).
//!     let mut applied = Vec::new();
//!     for group in batch.groups_mut() {
//!         for entry in group.ready_mut().take_committed_entries() {
//!             if !entry.data.is_empty() {
//!                 applied.push(entry.data.to_vec());
//!             }
//!         }
//!     }
//!     node.advance(batch);
//!     Ok(applied)
//! }
//!
//! let mut node = MultiRaft::new(MultiConfig::new(1), &logger)?;
//! for group_id in groups {
//!     node.add_group(group_id, &Config::new(1), log.group(group_id))?;
//!     node.campaign(group_id)?;
//! }
//! let mut applied = Vec::new();
//! for round in 0..5 {
//!     if round == 1 {
//!         for group_id in groups {
//!             node.propose(group_id, vec![], format!("into {group_id}").into_bytes())?;
//!         }
//!     }
//!     while node.has_ready() {
//!         let batch = node.ready();
//!         applied.extend(persist_and_apply(&log, &mut node, batch)?);
//!     }
//! }
//! assert_eq!(applied.len(), 3, "each group applied its write");
//!
//! // A restart: everything in memory is gone; the log recovers every group from the disk.
//! let last_index = log.group(20).last_index()?;
//! drop((node, log));
//! let log = MultiLog::open(Arc::new(RealFs::new()), dir.path(), MultiOptions::default())?;
//! let mut node = MultiRaft::new(MultiConfig::new(1), &logger)?;
//! for group_id in groups {
//!     let storage = log.group(group_id);
//!     let commit = storage.initial_state()?.hard_state.commit;
//!     let config = Config {
//!         applied: commit, // where this example's state machine is
//!         ..Config::new(1)
//!     };
//!     node.add_group(group_id, &config, storage)?;
//! }
//! assert_eq!(node.group(20).unwrap().raft.raft_log.last_index(), last_index);
//! node.campaign(20)?;
//! while node.has_ready() {
//!     let batch = node.ready();
//!     persist_and_apply(&log, &mut node, batch)?;
//! }
//! assert_eq!(node.group(20).unwrap().raft.state, StateRole::Leader);
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
