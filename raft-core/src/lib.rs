//! A pure state-machine Raft consensus core.
//!
//! The core does no I/O, owns no threads, reads no clock and uses no global randomness: the
//! application drives it. It feeds in time ([`RawNode::tick`]), messages from peers
//! ([`RawNode::step`]) and commands ([`RawNode::propose`], [`RawNode::campaign`]); it takes out
//! [`Ready`] batches of work (entries and hard state to persist, messages to send, committed entries
//! to apply) and reports them done with [`RawNode::advance`]. A whole cluster can therefore run,
//! replay and be checked deterministically inside one test.
//!
//! Messages are wire-compatible with raft-rs 0.7 (`eraftpb`), re-exported as [`eraftpb`].
//!
//! # The Ready loop
//!
//! A single-voter group that elects itself and commits a proposal. A real application persists to
//! disk and sends messages over its transport where this example uses `MemStorage` and a `Vec`.
//!
//! ```
//! use raft_core::{Config, RawNode, StateRole};
//! use storage_mem::{conf_state, MemStorage};
//!
//! # fn main() -> Result<(), raft_core::Error> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let storage = MemStorage::new_with_conf_state(conf_state(vec![1], vec![]));
//! let mut node = RawNode::new(&Config::new(1), storage.clone(), &logger)?;
//! node.campaign()?;
//! let mut applied = Vec::new();
//! let mut outbox = Vec::new();
//! for round in 0..3 {
//!     if round == 1 {
//!         node.propose(vec![], b"hello".to_vec())?;
//!     }
//!     while node.has_ready() {
//!         let mut rd = node.ready()?;
//!         outbox.extend(rd.take_messages()); // may leave before persisting
//!         storage.wl().append(rd.entries())?; // persist (fsync if rd.must_sync())
//!         if let Some(hs) = rd.hard_state() {
//!             storage.wl().set_hardstate(*hs);
//!         }
//!         outbox.extend(rd.take_persisted_messages()); // only after persisting
//!         applied.extend(rd.take_committed_entries()); // apply to the state machine
//!         let mut light = node.advance(rd)?;
//!         if let Some(commit) = light.commit_index() {
//!             storage.wl().mut_hard_state().commit = commit;
//!         }
//!         outbox.extend(light.take_messages());
//!         applied.extend(light.take_committed_entries());
//!         node.advance_apply();
//!     }
//! }
//! assert_eq!(node.raft.state, StateRole::Leader);
//! assert!(outbox.is_empty(), "a single voter needs no messages");
//! let data: Vec<&[u8]> = applied.iter().map(|e| &e.data[..]).filter(|d| !d.is_empty()).collect();
//! assert_eq!(data, vec![&b"hello"[..]]);
//! # Ok(())
//! # }
//! ```
//!
//! # Membership changes
//!
//! A group starts from the membership in its members' storage ([`confchange::bootstrap`] checks
//! one). Members are added, removed, made learners or promoted by proposing a conf change
//! ([`RawNode::propose_conf_change`], a v1 `ConfChange` or a v2 `ConfChangeV2`); when its entry is
//! committed and handed out, the application applies it with [`RawNode::apply_conf_change`] and
//! stores the returned `ConfState` (a restart starts from it). A change of one voter takes effect
//! at once; a `ConfChangeV2` with several changes goes through a joint configuration (thesis
//! §4.3), which the leader leaves on its own unless the transition is `Explicit`. The leader
//! refuses a change that could not be applied, and any change while another is not applied yet.
//!
//! A node that joins later must never start from an empty membership and replay the log's conf
//! changes on it: it would apply "add me" to nothing and believe it forms the whole group.
//! `MemStorage::bootstrap` records the initial membership as a snapshot at index 1, so the log
//! starts at 2 and a joiner with an empty storage is always sent a snapshot (carrying the
//! membership) first; a custom `Storage` should do the same, or start joiners from the bootstrap
//! membership.
//!
//! ```
//! use raft_core::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2};
//! use raft_core::{raft::decode_conf_change, Config, Error, RawNode, Storage};
//! use storage_mem::MemStorage;
//!
//! # fn main() -> Result<(), Error> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let storage = MemStorage::bootstrap([1], [])?;
//! let mut node = RawNode::new(&Config::new(1), storage.clone(), &logger)?;
//! node.campaign()?;
//! // A learner 2 is replicated to but never counted: the single voter still commits alone.
//! let add_learner = ConfChange {
//!     change_type: ConfChangeType::AddLearnerNode as i32,
//!     node_id: 2,
//!     ..Default::default()
//! };
//! node.propose_conf_change(vec![], add_learner)?;
//! // Refused at once: the learner's change is not applied yet.
//! let promote = raft_proto::conf_changes_from_string("v2").unwrap();
//! let second = ConfChangeV2 { changes: promote, ..Default::default() };
//! assert!(matches!(node.propose_conf_change(vec![], second), Err(Error::ConfChange(_))));
//!
//! while node.has_ready() {
//!     let mut rd = node.ready()?;
//!     storage.wl().append(rd.entries())?;
//!     if let Some(hs) = rd.hard_state() {
//!         storage.wl().set_hardstate(*hs);
//!     }
//!     let mut committed = rd.take_committed_entries();
//!     let mut light = node.advance_append(rd)?;
//!     committed.extend(light.take_committed_entries());
//!     for entry in &committed {
//!         if let Some(cc) = decode_conf_change(entry) {
//!             let cs = node.apply_conf_change(&cc.expect("our own entry decodes"))?;
//!             storage.wl().set_conf_state(cs); // what a restart will start from
//!         }
//!     }
//!     node.advance_apply();
//! }
//! assert_eq!(storage.initial_state()?.conf_state.learners, vec![2]);
//! # Ok(())
//! # }
//! ```
//!
//! # Linearizable reads
//!
//! [`RawNode::read_index`] asks for a read point without writing to the log (thesis §6.4). The
//! leader records its commit index, confirms it still leads (a heartbeat round acknowledged by a
//! quorum with `ReadOnlyOption::Safe`, or its check-quorum lease with `LeaseBased`), and hands back
//! a [`ReadState`] carrying the request's context. The application serves the read once its state
//! machine has applied up to `ReadState::index`. A follower forwards the request and gets the
//! leader's answer the same way. A request in flight when leadership changes is dropped: the
//! leader's own appear in [`Ready::dropped_read_requests`], and the application retries those and,
//! after a timeout, any forwarded one (a read has no effect, so retrying is always safe).
//!
//! ```
//! use raft_core::{Config, RawNode};
//! use storage_mem::MemStorage;
//!
//! # fn main() -> Result<(), raft_core::Error> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let storage = MemStorage::bootstrap([1], [])?;
//! let mut node = RawNode::new(&Config::new(1), storage.clone(), &logger)?;
//! node.campaign()?;
//! node.propose(vec![], b"x=1".to_vec())?;
//! node.read_index(b"read x".to_vec())?;
//! let (mut applied, mut pending_reads) = (0, Vec::new());
//! while node.has_ready() {
//!     let mut rd = node.ready()?;
//!     storage.wl().append(rd.entries())?;
//!     if let Some(hs) = rd.hard_state() {
//!         storage.wl().set_hardstate(*hs);
//!     }
//!     pending_reads.extend(rd.take_read_states());
//!     let mut committed = rd.take_committed_entries();
//!     let mut light = node.advance_append(rd)?;
//!     committed.extend(light.take_committed_entries());
//!     if let Some(last) = committed.last() {
//!         applied = last.index; // apply to the state machine here
//!     }
//!     node.advance_apply();
//! }
//! // Serve each read once the state machine has caught up with its index.
//! let read = pending_reads.pop().expect("a single voter confirms its reads at once");
//! assert_eq!(&read.request_ctx[..], b"read x");
//! assert!(applied >= read.index, "the state machine has reached the read point");
//! # Ok(())
//! # }
//! ```
#![doc = include_str!("../docs/starting.md")]
#![doc = include_str!("../docs/async.md")]
#![cfg_attr(not(test), warn(missing_docs))]

pub mod confchange;
pub mod config;
pub mod error;
pub mod frozen;
pub mod log;
pub mod prelude;
pub mod proposal;
pub mod quorum;
pub mod raft;
pub mod raw_node;
pub mod read_only;
pub mod status;
pub mod storage;
pub mod tracker;

pub use config::{Config, ReadOnlyOption};
pub use error::{Error, Result, StorageError};
pub use frozen::{FreezePool, FrozenNode};
pub use raft::{Raft, SoftState, StateRole, INVALID_ID};
pub use raft_proto::eraftpb;
pub use raft_proto::{prost, ConfChangeI};
pub use raw_node::{describe_ready, LightReady, RawNode, Ready, SnapshotStatus};
pub use read_only::ReadState;
pub use status::{BasicStatus, Status};
pub use storage::{RaftState, Storage, NO_LIMIT};
