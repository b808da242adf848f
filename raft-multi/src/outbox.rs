//! Outgoing messages of every group, queued per destination node until the next flush, which
//! sends one [`Envelope`] per destination.

use std::collections::BTreeMap;

use raft_core::eraftpb::Message;

use crate::envelope::{Envelope, GroupMessage};
use crate::MultiRaft;
use raft_core::Storage;

/// Messages waiting for the next flush, by destination node.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Ordered by node, so a flush hands out envelopes in a replayable order.
    queues: BTreeMap<u64, Vec<GroupMessage>>,
    /// How many messages the last flush sent each node: a new queue starts with that much room,
    /// so a busy node's envelopes do not grow by doubling (and copying) every flush.
    last_sizes: BTreeMap<u64, usize>,
    /// Emptied buffers of received envelopes, reused for the next queues.
    spare: Vec<Vec<GroupMessage>>,
    queued: usize,
}

/// Spare buffers kept at most: one per destination of a typical cluster is plenty.
const MAX_SPARE: usize = 8;

impl Outbox {
    /// Queues the messages of `group_id` for their destinations (each message's `to`).
    pub(crate) fn push_all(&mut self, group_id: u64, messages: Vec<Message>) {
        for message in messages {
            self.queued += 1;
            let to = message.to;
            let queue = self.queues.entry(to).or_insert_with(|| {
                let want = self.last_sizes.get(&to).copied().unwrap_or(0);
                let mut queue = self.spare.pop().unwrap_or_default();
                queue.reserve(want);
                queue
            });
            queue.push(GroupMessage {
                group_id,
                message: Some(message),
            });
        }
    }

    /// Keeps an emptied buffer for a later queue.
    pub(crate) fn recycle(&mut self, mut buffer: Vec<GroupMessage>) {
        if self.spare.len() < MAX_SPARE && buffer.capacity() > 0 {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// One envelope per destination with everything queued for it.
    fn take(&mut self, from_node: u64) -> Vec<Envelope> {
        self.queued = 0;
        let mut envelopes = Vec::with_capacity(self.queues.len());
        for (to_node, messages) in std::mem::take(&mut self.queues) {
            self.last_sizes.insert(to_node, messages.len());
            envelopes.push(Envelope {
                from_node,
                to_node,
                messages,
            });
        }
        envelopes
    }
}

impl<S: Storage> MultiRaft<S> {
    /// Takes every queued message: one [`Envelope`] per destination node, in node order, each
    /// holding the messages of all groups for that node. Send each to its `to_node`.
    ///
    /// A message is queued when it may be sent: a Ready's early messages when the batch is
    /// taken ([`MultiRaft::ready`]), its persisted messages when the batch is acknowledged
    /// ([`MultiRaft::advance`], [`MultiRaft::on_persisted`]). So flushing right after `ready`
    /// sends a leader's appends while this node is still writing (thesis §10.2.1), and flushing
    /// after `advance` sends the rest.
    pub fn flush(&mut self) -> Vec<Envelope> {
        let messages = self.outbox.queued() as u64;
        let envelopes = self.outbox.take(self.config.node_id);
        if !envelopes.is_empty() {
            let metrics = &mut self.metrics;
            metrics.flushes += 1;
            metrics.envelopes_sent += envelopes.len() as u64;
            metrics.messages_sent += messages;
            metrics.last_flush_envelopes = envelopes.len() as u64;
            metrics.last_flush_messages = messages;
        }
        envelopes
    }
}
