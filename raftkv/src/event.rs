//! What the node's loop reacts to: [`Event`]s from the transport and the client connections.

use raft_core::eraftpb::Message;
use raft_core::SnapshotStatus;
use storage_disk::FinishedSync;

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
    /// The sync thread ran the fsync of sync `id` (or it failed).
    Synced {
        /// Which sync.
        id: u64,
        /// Its result, for `NodeStorage::finish_sync`.
        finished: Box<FinishedSync>,
    },
}

/// A client's command and where its reply goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// Where the reply goes.
    pub reply: ReplyTo,
}

/// The replies a connection receives: (slot, reply) pairs, those of one batch together.
pub type ReplyQueue = tokio::sync::mpsc::UnboundedSender<Vec<(u64, Reply)>>;

/// Where one request's reply goes: its slot on its connection's reply queue. The connection
/// puts replies back in request order, whatever order they come in.
///
/// Dropped unanswered (a request the node lost track of), it answers `-ERR the node stopped`,
/// so that the connection never waits for it for ever.
#[derive(Debug)]
pub struct ReplyTo {
    slot: u64,
    /// `None` once the reply was sent or handed over.
    queue: Option<ReplyQueue>,
}

impl ReplyTo {
    /// The reply to the request in `slot` of the connection that reads `queue`.
    pub fn new(slot: u64, queue: ReplyQueue) -> ReplyTo {
        ReplyTo {
            slot,
            queue: Some(queue),
        }
    }

    /// Sends the reply. The client may have gone away: its reply is then simply not wanted.
    pub fn send(mut self, reply: Reply) {
        if let Some((slot, queue)) = self.hand_over() {
            let _ = queue.send(vec![(slot, reply)]);
        }
    }

    /// Marks the reply sent and returns where it goes, for an [`Outbox`] to deliver.
    fn hand_over(&mut self) -> Option<(u64, ReplyQueue)> {
        self.queue.take().map(|queue| (self.slot, queue))
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if let Some((slot, queue)) = self.hand_over() {
            let _ = queue.send(vec![(slot, Reply::err("the node stopped"))]);
        }
    }
}

/// One reply on its way, with where it goes.
type Outgoing = (ReplyTo, Reply);

/// The node thread's replies, handed to the I/O thread in batches.
///
/// Sending a reply straight to its connection's queue from the node thread wakes that
/// connection's task from another thread, and tokio then wakes the I/O thread's event loop with
/// a write to its eventfd: one system call (and often a context switch) per connection per
/// Ready, about one per 12 requests at `-P 16` (issue 20's profile). The outbox keeps the
/// replies of a Ready and [`flush`](Outbox::flush)es them as one message to a task on the I/O
/// thread, which puts them on their connections' queues, the consecutive replies to one
/// connection (the reads of one batch, say) as one message: one wake-up of the I/O thread per
/// flush, one of a connection's task per connection. The node thread only moves the replies'
/// addresses; the I/O thread, which made them, also drops them.
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
                deliver(batch);
            }
        });
        Outbox {
            pending: Vec::new(),
            to_io,
        }
    }

    /// Queues `reply` for `to`; it leaves at the next [`flush`](Outbox::flush).
    pub fn send(&mut self, to: ReplyTo, reply: Reply) {
        self.pending.push((to, reply));
    }

    /// Hands every queued reply to the I/O thread (one wake-up).
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(tokio::sync::mpsc::error::SendError(batch)) = self.to_io.send(batch) {
            // The I/O thread is gone (the process is stopping): deliver from here.
            deliver(batch);
        }
    }
}

/// Puts each reply on its connection's queue, the consecutive ones to one connection as one
/// message. The client may have gone away: its replies are then simply not wanted.
fn deliver(batch: Vec<Outgoing>) {
    let mut group: Vec<(u64, Reply)> = Vec::new();
    let mut current: Option<ReplyQueue> = None;
    for (mut to, reply) in batch {
        let Some((slot, queue)) = to.hand_over() else {
            continue;
        };
        if !current.as_ref().is_some_and(|c| c.same_channel(&queue)) {
            if let Some(previous) = current.replace(queue) {
                let _ = previous.send(std::mem::take(&mut group));
            }
        }
        group.push((slot, reply));
    }
    if let Some(last) = current {
        let _ = last.send(group);
    }
}
