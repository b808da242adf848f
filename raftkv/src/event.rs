//! What the node's loop reacts to: [`Event`]s from the transport and the client connections.

use std::sync::atomic::{AtomicBool, Ordering};

use raft_core::eraftpb::Message;
use raft_core::SnapshotStatus;

use crate::command::Command;
use crate::resp::Reply;
use crate::storage::MadeSnapshot;

/// What the node's loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A message from a peer (boxed: it is much larger than the other events).
    Peer(Box<Message>),
    /// A peer connected and named itself.
    Hello {
        /// Its id.
        id: u64,
        /// The address it listens on.
        addr: String,
    },
    /// A message to this peer could not be delivered.
    Unreachable(u64),
    /// How sending a snapshot to this peer ended.
    SnapshotStatus(u64, SnapshotStatus),
    /// Client requests, in the order their connection sent them (one connection's batch).
    Clients(Vec<Request>),
    /// The snapshot thread finished writing a snapshot (or failed to).
    SnapshotMade(Box<Result<MadeSnapshot, raft_core::Error>>),
}

/// A client's command and where its reply goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// Where the reply goes.
    pub reply: ReplyTo,
}

/// Where one request's reply goes: its slot on its connection's reply queue. The connection
/// puts replies back in request order, whatever order they come in.
///
/// Dropped unanswered (a request the node lost track of), it answers `-ERR the node stopped`,
/// so that the connection never waits for it for ever.
#[derive(Debug)]
pub struct ReplyTo {
    slot: u64,
    queue: tokio::sync::mpsc::UnboundedSender<(u64, Reply)>,
    sent: AtomicBool,
}

impl ReplyTo {
    /// The reply to the request in `slot` of the connection that reads `queue`.
    pub fn new(slot: u64, queue: tokio::sync::mpsc::UnboundedSender<(u64, Reply)>) -> ReplyTo {
        ReplyTo {
            slot,
            queue,
            sent: AtomicBool::new(false),
        }
    }

    /// Sends the reply. The client may have gone away: its reply is then simply not wanted.
    pub fn send(&self, reply: Reply) {
        self.sent.store(true, Ordering::Relaxed);
        let _ = self.queue.send((self.slot, reply));
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if !self.sent.load(Ordering::Relaxed) {
            let _ = self.queue.send((self.slot, Reply::err("the node stopped")));
        }
    }
}
