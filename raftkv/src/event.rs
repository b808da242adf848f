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

    /// Marks the reply sent and returns where it goes, for an [`Outbox`] to deliver.
    fn hand_over(&self) -> (u64, tokio::sync::mpsc::UnboundedSender<(u64, Reply)>) {
        self.sent.store(true, Ordering::Relaxed);
        (self.slot, self.queue.clone())
    }
}

/// One reply on its way: the slot, the connection's queue, the reply.
type Outgoing = (u64, tokio::sync::mpsc::UnboundedSender<(u64, Reply)>, Reply);

/// The node thread's replies, handed to the I/O thread in batches.
///
/// Sending a reply straight to its connection's queue from the node thread wakes that
/// connection's task from another thread, and tokio then wakes the I/O thread's event loop with
/// a write to its eventfd: one system call (and often a context switch) per connection per
/// Ready, about one per 12 requests at `-P 16` (issue 20's profile). The outbox keeps the
/// replies of a Ready and [`flush`](Outbox::flush)es them as one message to a task on the I/O
/// thread, which puts each on its connection's queue: the wake-ups of the connections are then
/// local to the I/O thread, and the node thread wakes it once per flush.
///
/// Nothing is answered earlier or differently: a reply is put in the outbox exactly where it
/// was sent before (a write once applied, a read once its index is applied), and the node
/// flushes the outbox after every Ready and at the end of every turn.
pub struct Outbox {
    pending: Vec<Outgoing>,
    to_io: tokio::sync::mpsc::UnboundedSender<Vec<Outgoing>>,
}

impl Outbox {
    /// An outbox whose batches are delivered by a task spawned on `io`.
    pub fn new(io: &tokio::runtime::Handle) -> Outbox {
        let (to_io, mut batches) = tokio::sync::mpsc::unbounded_channel::<Vec<Outgoing>>();
        io.spawn(async move {
            while let Some(batch) = batches.recv().await {
                for (slot, queue, reply) in batch {
                    // The client may have gone away: its reply is then simply not wanted.
                    let _ = queue.send((slot, reply));
                }
            }
        });
        Outbox {
            pending: Vec::new(),
            to_io,
        }
    }

    /// Queues `reply` for `to`; it leaves at the next [`flush`](Outbox::flush).
    pub fn send(&mut self, to: &ReplyTo, reply: Reply) {
        let (slot, queue) = to.hand_over();
        self.pending.push((slot, queue, reply));
    }

    /// Hands every queued reply to the I/O thread (one wake-up).
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(tokio::sync::mpsc::error::SendError(batch)) = self.to_io.send(batch) {
            // The I/O thread is gone (the process is stopping): deliver from here.
            for (slot, queue, reply) in batch {
                let _ = queue.send((slot, reply));
            }
        }
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if !self.sent.load(Ordering::Relaxed) {
            let _ = self.queue.send((self.slot, Reply::err("the node stopped")));
        }
    }
}
