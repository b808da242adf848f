//! [`ClientFeed`]: the client requests of one turn of the I/O thread's event loop, handed to the
//! node as one event.
//!
//! Each connection used to send its batch to the node on its own. When the event loop finds 50
//! connections readable at once, the first send wakes the node's thread (a futex wake and a
//! context switch), which takes that batch, asks for a read index covering it, and often goes
//! back to sleep before the next batch arrives, to be woken again: several wake-ups and several
//! heartbeat rounds for what arrived together (issue 20's profile of `GET -P 16`: about five
//! context switches of the node thread per 800 reads). The feed gathers the batches of the
//! connections served in one turn and a task of its own, which the event loop runs after them,
//! sends them as one [`Event::Clients`]: one wake-up, one read index for all of their reads.
//!
//! Each connection's requests stay in the order it sent them, and a batch is never held back
//! past the turn it arrived in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::event::{Event, Request};

/// The way from the client connections to the node (cheap to clone: one per connection).
#[derive(Clone)]
pub struct ClientFeed {
    shared: Arc<Shared>,
}

struct Shared {
    /// The requests not handed to the node yet.
    pending: Mutex<Vec<Request>>,
    /// Wakes the task that hands them over.
    ready: Notify,
    /// The node is gone: a batch is dropped at once (each request then answers that the node
    /// stopped) rather than wait for ever.
    closed: AtomicBool,
}

impl ClientFeed {
    /// A feed into the node's `events`, whose task runs on the I/O thread `io`.
    pub fn new(io: &Handle, events: Sender<Event>) -> ClientFeed {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let task = shared.clone();
        io.spawn(async move {
            // The size of the last turn's batch: the next one is about as large, so room for
            // it is made at once rather than grown request by request.
            let mut last_len = 0;
            loop {
                task.ready.notified().await;
                let batch = std::mem::replace(&mut *task.lock(), Vec::with_capacity(last_len));
                last_len = batch.len();
                if batch.is_empty() {
                    continue;
                }
                if let Err(lost) = events.send(Event::Clients(batch)) {
                    task.closed.store(true, Ordering::Release);
                    drop(lost);
                    // Whatever came in meanwhile is answered too.
                    drop(std::mem::take(&mut *task.lock()));
                    return;
                }
            }
        });
        ClientFeed { shared }
    }

    /// Queues one connection's batch, in its order, for the node; it leaves once the event
    /// loop has served the other connections that were ready.
    pub fn submit(&self, mut batch: Vec<Request>) {
        if self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        let mut pending = self.shared.lock();
        let first = pending.is_empty();
        pending.append(&mut batch);
        drop(pending);
        if first {
            self.shared.ready.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        // A panic while holding the lock leaves a plain vector behind: still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, ReadCommand};
    use crate::event::ReplyTo;
    use crate::resp::Reply;

    fn request(key: &str, queue: &crate::event::ReplyQueue, slot: u64) -> Request {
        Request {
            command: Command::Read(ReadCommand::Get(key.as_bytes().to_vec())),
            reply: ReplyTo::new(slot, queue.clone()),
        }
    }

    fn keys(event: Event) -> Vec<String> {
        let Event::Clients(requests) = event else {
            panic!("expected client requests, got {event:?}")
        };
        requests
            .iter()
            .map(|r| match &r.command {
                Command::Read(ReadCommand::Get(k)) => String::from_utf8_lossy(k).into_owned(),
                other => panic!("unexpected command {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_batches_of_one_turn_reach_the_node_as_one_event_in_order() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let (events, node) = std::sync::mpsc::channel();
        let feed = ClientFeed::new(runtime.handle(), events);
        let (queue, _replies) = tokio::sync::mpsc::unbounded_channel();
        runtime.block_on(async {
            // Two connections' batches in one turn, then a later one.
            let one = feed.clone();
            let two = feed.clone();
            let a = tokio::spawn({
                let q = queue.clone();
                async move { one.submit(vec![request("a1", &q, 0), request("a2", &q, 1)]) }
            });
            let b = tokio::spawn({
                let q = queue.clone();
                async move { two.submit(vec![request("b1", &q, 0)]) }
            });
            a.await.expect("first connection");
            b.await.expect("second connection");
            tokio::task::yield_now().await;
        });
        assert_eq!(
            keys(node.try_recv().expect("one event")),
            ["a1", "a2", "b1"]
        );
        assert!(
            node.try_recv().is_err(),
            "the two batches came as one event"
        );
        runtime.block_on(async {
            feed.submit(vec![request("c1", &queue, 2)]);
            tokio::task::yield_now().await;
        });
        assert_eq!(
            keys(node.try_recv().expect("the next turn's event")),
            ["c1"]
        );
    }

    #[test]
    fn a_batch_for_a_node_that_is_gone_is_answered_that_it_stopped() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let (events, node) = std::sync::mpsc::channel();
        drop(node);
        let feed = ClientFeed::new(runtime.handle(), events);
        let (queue, mut replies) = tokio::sync::mpsc::unbounded_channel();
        runtime.block_on(async {
            feed.submit(vec![request("a", &queue, 0)]);
            tokio::task::yield_now().await;
            feed.submit(vec![request("b", &queue, 1)]);
        });
        let mut answered = Vec::new();
        while let Ok(batch) = replies.try_recv() {
            answered.extend(batch);
        }
        assert_eq!(
            answered,
            [
                (0, Reply::err("the node stopped")),
                (1, Reply::err("the node stopped"))
            ]
        );
    }
}
