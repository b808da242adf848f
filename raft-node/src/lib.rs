//! An etcd-style `Node`: a thread owns a [`RawNode`] and the application talks to it over
//! channels, as with etcd's `raft.Node` (`Tick`, `Propose`, `Step`, `Ready()`, `Advance`,
//! `ApplyConfChange`, `Status`, `ReportUnreachable`, `ReportSnapshot`, `TransferLeadership`,
//! `ReadIndex`, `Stop`).
//!
//! Every call is a message to the node's thread; those that return something (and `tick`) wait
//! for its answer. The thread hands out one [`Ready`] at a time on [`Node::ready`], the next once
//! the application gave the previous one back with [`advance`](NodeHandle::advance); when a call
//! returns, the Ready it led to, if any, is already on that channel. The contract is the
//! `RawNode`'s: send `messages` at once, persist the snapshot, entries and hard state, then send
//! `persisted_messages`, apply `committed_entries`, call `advance`, handle the returned
//! [`LightReady`](raft_core::LightReady) the same way, and call
//! [`advance_apply`](NodeHandle::advance_apply). One thread handles the Readys; others propose,
//! step messages or tick through their own [`NodeHandle`] ([`Node::handle`]).
//!
//! Every proposal comes back with a receiver of its outcome ([`ProposalOutcome`]): committed at
//! (index, term), or dropped because a later leader overwrote it, decided when the application
//! has applied that index. A proposal made on a follower is forwarded to the leader, whose
//! answer says where it was appended (then it is decided the same way) or that it was not
//! (`NotAppended`); if the answer is lost, it is `Unanswered` once an entry of a later term is
//! applied (see `raft_core::proposal`).
//!
//! Bad input (an impossible message, a Ready given back twice) gets an error back; the thread
//! keeps running. [`Node::stop`] ends the thread after the commands sent before it and gives the
//! `RawNode` back: nothing the application was told is durable or committed is lost, since only
//! the application's storage makes anything durable.
//!
//! ```
//! use raft_core::eraftpb::Entry;
//! use raft_core::proposal::{ProposalOutcome, Proposed};
//! use raft_core::Config;
//! use raft_node::{Node, NodeError};
//! use storage_mem::MemStorage;
//!
//! /// Handles Readys until there is none: persist, apply, advance. (When a call returns, the
//! /// Ready it led to is already on the channel.)
//! fn drive(node: &Node<MemStorage>, storage: &MemStorage, applied: &mut Vec<Entry>)
//!     -> Result<(), NodeError> {
//!     while let Ok(rd) = node.ready().try_recv() {
//!         let mut rd = rd?;
//!         // (send rd.take_messages() to the peers here)
//!         storage.wl().append(rd.entries())?;
//!         if let Some(hs) = rd.hard_state() {
//!             storage.wl().set_hardstate(*hs);
//!         }
//!         // (send rd.take_persisted_messages() here)
//!         applied.extend(rd.take_committed_entries());
//!         let mut light = node.advance(rd)?;
//!         if let Some(commit) = light.commit_index() {
//!             storage.wl().mut_hard_state().commit = commit;
//!         }
//!         applied.extend(light.take_committed_entries());
//!         node.advance_apply()?;
//!     }
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), NodeError> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let storage = MemStorage::bootstrap([1], [])?;
//! let node = Node::start(&Config::new(1), storage.clone(), &logger)?;
//! let mut applied = Vec::new();
//! node.campaign()?;
//! drive(&node, &storage, &mut applied)?; // a single voter elects itself
//!
//! let proposal = node.propose(vec![], b"x=1".to_vec())?;
//! assert!(matches!(proposal.proposed, Proposed::Appended { .. }));
//! drive(&node, &storage, &mut applied)?;
//! let outcome = proposal.outcome.recv().unwrap();
//! assert!(matches!(outcome, ProposalOutcome::Committed { .. }));
//! assert!(applied.iter().any(|e| &e.data[..] == b"x=1"));
//!
//! let raw = node.stop()?; // the RawNode, to inspect or to start again
//! assert_eq!(raw.raft.raft_log.applied, raw.raft.raft_log.committed);
//! # Ok(())
//! # }
//! ```

mod handle;
mod worker;

use std::ops::Deref;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

use raft_core::proposal::{ProposalOutcome, Proposed};
use raft_core::{Config, RawNode, Ready, Storage};
use slog::Logger;

pub use handle::NodeHandle;
pub use worker::AnyConfChange;
use worker::{Command, Worker};

/// Why a call on a [`Node`] failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The core refused the request (or its storage failed).
    #[error(transparent)]
    Raft(#[from] raft_core::Error),
    /// The node's thread has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// `advance` was given a Ready that is not the one handed out last.
    #[error("Ready {number} was advanced, but the Ready handed out is {outstanding:?}")]
    NotOutstanding {
        /// The number of the Ready given back.
        number: u64,
        /// The number of the Ready handed out and not advanced yet, if any.
        outstanding: Option<u64>,
    },
    /// The node's thread could not be started.
    #[error("cannot start the node's thread: {0}")]
    Spawn(std::io::Error),
}

/// Where a proposal went, and its outcome to come.
#[derive(Debug)]
pub struct Proposal {
    /// Appended at (index, term) on the leader, or forwarded to the leader.
    pub proposed: Proposed,
    /// Receives its outcome once the application has applied its index (or restored a snapshot
    /// past it), or once the leader it was forwarded to answered that it did not append it (or
    /// the term ended without an answer).
    pub outcome: Receiver<ProposalOutcome>,
}

/// A Raft node on its own thread. Cheap calls, each a message to the thread; see the crate docs.
///
/// The calls other than [`Node::ready`] and [`Node::stop`] are [`NodeHandle`]'s, reached through
/// `Deref`; [`Node::handle`] gives other threads their own, as with etcd's `raft.Node`, whose
/// `Propose` and `Step` any goroutine calls while one handles the Readys.
pub struct Node<S: Storage + Send + 'static> {
    handle: NodeHandle,
    readys: Receiver<Result<Ready, NodeError>>,
    thread: Option<JoinHandle<RawNode<S>>>,
}

impl<S: Storage + Send + 'static> Node<S> {
    /// Creates the node (errors of `RawNode::new` are returned here) and starts its thread.
    pub fn start(config: &Config, storage: S, logger: &Logger) -> Result<Self, NodeError> {
        let raw = RawNode::new(config, storage, logger)?;
        Self::start_with(raw, logger)
    }

    /// Starts a thread for a `RawNode` built by the application (or given back by
    /// [`Node::stop`]).
    pub fn start_with(raw: RawNode<S>, logger: &Logger) -> Result<Self, NodeError> {
        let (commands, inbox) = mpsc::channel();
        let (ready_tx, readys) = mpsc::channel();
        let worker = Worker::new(raw, ready_tx, logger.clone());
        let id = worker.raw.raft.id;
        let thread = std::thread::Builder::new()
            .name(format!("raft-node-{id}"))
            .spawn(move || worker.run(inbox))
            .map_err(NodeError::Spawn)?;
        Ok(Node {
            handle: NodeHandle { commands },
            readys,
            thread: Some(thread),
        })
    }

    /// The channel the node hands out its Readys on, one at a time; an error says the node
    /// could not build one (its storage failed).
    pub fn ready(&self) -> &Receiver<Result<Ready, NodeError>> {
        &self.readys
    }

    /// A handle through which other threads call the node (every call but `ready` and `stop`;
    /// the `Node` makes the same calls itself, through `Deref`).
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops the thread once it has handled every command sent before, and returns the node.
    pub fn stop(mut self) -> Result<RawNode<S>, NodeError> {
        let _ = self.handle.send(Command::Stop);
        let thread = self.thread.take().ok_or(NodeError::Stopped)?;
        thread.join().map_err(|_| NodeError::Stopped)
    }
}

impl<S: Storage + Send + 'static> Deref for Node<S> {
    type Target = NodeHandle;

    fn deref(&self) -> &NodeHandle {
        &self.handle
    }
}

impl<S: Storage + Send + 'static> Drop for Node<S> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.handle.send(Command::Stop);
            let _ = thread.join();
        }
    }
}
