//! One Ready for many groups: the driver collects the Readys of every group that has one into a
//! [`ReadyBatch`], the application persists the whole batch with one fsync and acknowledges it,
//! and the driver advances every group in it.

use raft_core::eraftpb::Message;
use raft_core::{Ready, Storage};
use slog::warn;

use crate::error::Error;
use crate::MultiRaft;

/// One group's Ready in a batch.
#[derive(Debug)]
pub struct GroupReady {
    group_id: u64,
    slot: u32,
    incarnation: u64,
    /// The last index this Ready hands out to apply (its last committed entry, or its
    /// snapshot's index), 0 if none.
    applies_through: u64,
    ready: Ready,
}

impl GroupReady {
    /// The group.
    pub fn group_id(&self) -> u64 {
        self.group_id
    }

    /// The group's Ready. Its early [`messages`](Ready::messages) are already queued for the next
    /// [`MultiRaft::flush`] (so this shows none); its
    /// [`persisted_messages`](Ready::persisted_messages) are queued when the batch is
    /// acknowledged.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The group's Ready, to take its parts out (entries, committed entries, read states).
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }
}

/// The Readys of every group that had one, handed out together so that the application writes
/// them all and syncs once.
///
/// For each group, in any order between groups but in batch order for one group: persist its
/// snapshot, entries and hard state; after the one fsync (if [`ReadyBatch::must_sync`]), apply
/// its committed entries and serve its read states. Then acknowledge the batch with
/// [`MultiRaft::advance`] (or, persisting in the background, [`MultiRaft::advance_append_async`]
/// now and [`MultiRaft::on_persisted`] once written).
#[derive(Debug, Default)]
pub struct ReadyBatch {
    number: u64,
    groups: Vec<GroupReady>,
    failures: Vec<(u64, raft_core::Error)>,
}

impl ReadyBatch {
    /// The batch's number: 1 for the first non-empty batch, then increasing by one.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Whether no group had a Ready (and none failed).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.failures.is_empty()
    }

    /// The groups' Readys.
    pub fn groups(&self) -> &[GroupReady] {
        &self.groups
    }

    /// The groups' Readys, to take their parts out.
    pub fn groups_mut(&mut self) -> &mut [GroupReady] {
        &mut self.groups
    }

    /// Whether anything in the batch must be written durably before the batch is acknowledged:
    /// one fsync covers every group.
    pub fn must_sync(&self) -> bool {
        self.groups.iter().any(|group| group.ready.must_sync())
    }

    /// Groups whose storage failed while their Ready was built: they are not in the batch, are
    /// left as they were, and are asked again at the next [`MultiRaft::ready`].
    pub fn failures(&self) -> &[(u64, raft_core::Error)] {
        &self.failures
    }
}

/// A batch handed over for persisting in the background, to report with
/// [`MultiRaft::on_persisted`] once it is durable. It holds the messages that may leave only
/// then.
#[derive(Debug)]
#[must_use = "report it with MultiRaft::on_persisted once the batch is durable"]
pub struct PendingBatch {
    number: u64,
    groups: Vec<PendingGroup>,
}

impl PendingBatch {
    /// The number of the batch it came from.
    pub fn number(&self) -> u64 {
        self.number
    }
}

#[derive(Debug)]
struct PendingGroup {
    slot: u32,
    incarnation: u64,
    ready_number: u64,
    persisted_messages: Vec<Message>,
}

impl<S: Storage> MultiRaft<S> {
    /// Whether any group has work for the application (only groups touched since the last batch
    /// are asked).
    pub fn has_ready(&self) -> bool {
        self.groups
            .dirty
            .iter()
            .any(|slot| self.groups.at(*slot).is_some_and(|group| group.has_ready()))
    }

    /// Collects the Ready of every group that has one. Their early messages go to the outbox at
    /// once (a leader's appends may leave before its own write). An empty batch means there is
    /// nothing to do.
    pub fn ready(&mut self) -> ReadyBatch {
        let mut dirty = std::mem::take(&mut self.groups.dirty);
        let mut groups = std::mem::take(&mut self.spare_ready_groups);
        groups.reserve(dirty.len());
        let mut batch = ReadyBatch {
            groups,
            ..ReadyBatch::default()
        };
        for slot in dirty.drain(..) {
            let Some((group, logger)) = self.groups.with_logger(slot) else {
                continue;
            };
            group.in_dirty = false;
            if !group.has_ready() {
                continue;
            }
            match group.node_mut(logger).ready() {
                Ok(mut ready) => {
                    self.outbox.push_all(group.id, ready.take_messages());
                    let last_committed = ready.committed_entries().last().map(|e| e.index);
                    let snapshot_index = ready.snapshot().metadata.as_ref().map(|m| m.index);
                    let applies_through = last_committed.or(snapshot_index).unwrap_or(0);
                    batch.groups.push(GroupReady {
                        group_id: group.id,
                        slot,
                        incarnation: group.incarnation,
                        applies_through,
                        ready,
                    });
                }
                Err(error) => {
                    warn!(self.logger, "a group's Ready could not be built";
                        "group" => group.id, "error" => %error);
                    batch.failures.push((group.id, error));
                    // Asked again next time: the node is left as it was.
                    self.groups.mark_dirty(slot);
                }
            }
        }
        if self.groups.dirty.is_empty() {
            // Keep the list's capacity for the next round.
            self.groups.dirty = dirty;
        }
        if batch.is_empty() {
            // Keep the list's room for the next call instead of freeing it with the batch.
            self.spare_ready_groups = std::mem::take(&mut batch.groups);
        } else {
            self.last_batch += 1;
            batch.number = self.last_batch;
            self.metrics.ready_batches += 1;
            self.metrics.readys += batch.groups.len() as u64;
        }
        batch
    }

    /// The batch was persisted (synced, if [`ReadyBatch::must_sync`]) and its committed entries
    /// applied: every group in it advances, and their persisted messages are queued for the
    /// next flush. What this makes available (a leader's new commit index, entries now
    /// committed) comes in the next batch.
    pub fn advance(&mut self, mut batch: ReadyBatch) {
        for mut group in batch.groups.drain(..) {
            let Some((live, logger)) = self.groups.with_logger(group.slot) else {
                continue;
            };
            if live.incarnation != group.incarnation {
                continue;
            }
            let group_id = live.id;
            let node = live.node_mut(logger);
            if group.applies_through > 0 {
                node.advance_apply_to(group.applies_through);
            }
            let persisted_messages = group.ready.take_persisted_messages();
            let number = group.ready.number();
            // Dropped before reporting, so the node takes its entries back without a copy.
            drop(group.ready);
            node.on_persist_ready(number);
            self.outbox.push_all(group_id, persisted_messages);
            self.groups.mark_dirty(group.slot);
        }
        // The emptied list holds the next batch.
        self.spare_ready_groups = batch.groups;
    }

    /// Hands a batch over for persisting in the background (the asynchronous style of
    /// `raft_core`'s guide): the application writes batches in number order and, once this one
    /// is durable, reports it with [`MultiRaft::on_persisted`]; it applies committed entries in
    /// the background too and reports them per group with [`MultiRaft::advance_apply_to`].
    /// Later batches may be taken meanwhile.
    pub fn advance_append_async(&mut self, batch: ReadyBatch) -> PendingBatch {
        let mut groups = Vec::with_capacity(batch.groups.len());
        for mut group in batch.groups {
            groups.push(PendingGroup {
                slot: group.slot,
                incarnation: group.incarnation,
                ready_number: group.ready.number(),
                persisted_messages: group.ready.take_persisted_messages(),
            });
        }
        PendingBatch {
            number: batch.number,
            groups,
        }
    }

    /// A batch handed over with [`MultiRaft::advance_append_async`] (and every earlier one) is
    /// durable: its groups count what it carried as persisted, and its persisted messages are
    /// queued for the next flush. Groups removed since are skipped.
    pub fn on_persisted(&mut self, pending: PendingBatch) {
        for group in pending.groups {
            let Some((live, logger)) = self.groups.with_logger(group.slot) else {
                continue;
            };
            if live.incarnation != group.incarnation {
                continue;
            }
            let group_id = live.id;
            live.node_mut(logger).on_persist_ready(group.ready_number);
            self.outbox.push_all(group_id, group.persisted_messages);
            self.groups.mark_dirty(group.slot);
        }
    }

    /// The application applied the group's committed entries up to `index` (asynchronous
    /// style; [`MultiRaft::advance`] does this itself).
    pub fn advance_apply_to(&mut self, group_id: u64, index: u64) -> Result<(), Error> {
        let (slot, _) = self.groups.slot_and_group(group_id)?;
        self.groups
            .node_at(slot)
            .expect("an indexed slot holds its group")
            .advance_apply_to(index);
        self.groups.mark_dirty(slot);
        Ok(())
    }
}
