//! What the node's loop reacts to: [`Event`]s from the transport and the client connections.

use std::sync::mpsc::Sender;

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
    /// A client's request.
    Client(Request),
    /// The snapshot thread finished writing a snapshot (or failed to).
    SnapshotMade(Box<Result<MadeSnapshot, raft_core::Error>>),
}

/// A client's command and where its reply goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The reply channel (the connection thread waits on it).
    pub reply: Sender<Reply>,
}
