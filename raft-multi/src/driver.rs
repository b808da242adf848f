//! [`MultiRaft`]: the registry of groups on one node and the commands the application gives them.

use raft_core::eraftpb::Message;
use raft_core::{ConfChangeI, Config, RawNode, Storage};
use slog::{info, o, Logger};

use crate::config::MultiConfig;
use crate::error::Error;
use crate::outbox::Outbox;
use crate::registry::{GroupIdSet, Registry};
use crate::status::{GroupStatus, Metrics, MultiStatus};

/// What the application decides for a message that names a group this node does not have.
pub enum NewGroup<S> {
    /// Create the group's replica here from this config (its `id` must be this node's id) and
    /// storage (usually empty, so that the leader sends it a snapshot), then step the message.
    Create(Config, S),
    /// Drop the message (it is logged and counted).
    Refuse,
}

/// The application's hook for messages of unknown groups: called with the group id, the sending
/// node and the message. TiKV creates a region's peer from the first message a leader sends it
/// in the same way; an application checks that it expects this group here (for instance from
/// its own metadata) before accepting.
pub type GroupCreator<S> = Box<dyn FnMut(u64, u64, &Message) -> NewGroup<S> + Send>;

/// Many Raft groups on one node: each a [`RawNode`] found by its group id.
///
/// The driver does no I/O. The application feeds it time ([`MultiRaft::tick`]), envelopes from
/// other nodes ([`MultiRaft::step_envelope`]) and commands ([`MultiRaft::propose`], ...); it takes
/// out one [`ReadyBatch`](crate::ReadyBatch) for all groups ([`MultiRaft::ready`]), persists it
/// with one fsync, acknowledges it ([`MultiRaft::advance`]) and sends one envelope per
/// destination node ([`MultiRaft::flush`]).
///
/// Sleeping groups (see [`RawNode::quiesce`]) cost nothing per tick: the driver ticks only the
/// groups on its awake list, drops a group from it at the first tick that finds it asleep, and
/// puts it back whenever something may wake it (a message, a command, [`MultiRaft::wake`],
/// [`MultiRaft::node_down`], [`MultiRaft::group_mut`]). Likewise only groups touched since the
/// last batch are asked for a Ready.
pub struct MultiRaft<S: Storage> {
    pub(crate) config: MultiConfig,
    pub(crate) groups: Registry<S>,
    pub(crate) outbox: Outbox,
    pub(crate) creator: Option<GroupCreator<S>>,
    pub(crate) tombstones: GroupIdSet,
    pub(crate) logger: Logger,
    pub(crate) metrics: Metrics,
    /// The number of the last Ready batch handed out.
    pub(crate) last_batch: u64,
    /// The emptied list of the last acknowledged batch, for the next one.
    pub(crate) spare_ready_groups: Vec<crate::ready::GroupReady>,
}

impl<S: Storage> MultiRaft<S> {
    /// A driver with no groups. Fails when `config` is invalid.
    pub fn new(config: MultiConfig, logger: &Logger) -> Result<MultiRaft<S>, raft_core::Error> {
        config.validate()?;
        let logger = logger.new(o!("node" => config.node_id));
        Ok(MultiRaft {
            config,
            groups: Registry::new(logger.clone()),
            outbox: Outbox::default(),
            creator: None,
            tombstones: GroupIdSet::default(),
            logger,
            metrics: Metrics::default(),
            last_batch: 0,
            spare_ready_groups: Vec::new(),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    /// Sets the hook that decides on messages for unknown groups. Without one they are refused.
    pub fn set_group_creator(&mut self, creator: GroupCreator<S>) {
        self.creator = Some(creator);
    }

    /// Adds the replica of group `group_id` on this node, built from `config` over `storage`
    /// (which holds what was persisted before, or the group's initial membership). It starts
    /// awake.
    pub fn add_group(&mut self, group_id: u64, config: &Config, storage: S) -> Result<(), Error> {
        if self.groups.contains(group_id) {
            return Err(Error::GroupExists(group_id));
        }
        if self.tombstones.contains(&group_id) {
            return Err(Error::Tombstoned(group_id));
        }
        if config.id != self.config.node_id {
            return Err(Error::WrongReplicaId {
                group_id,
                config_id: config.id,
                node_id: self.config.node_id,
            });
        }
        let logger = self.logger.new(o!("group" => group_id));
        let node = RawNode::new(config, storage, &logger)
            .map_err(|source| Error::Raft { group_id, source })?;
        self.groups.insert(group_id, node);
        Ok(())
    }

    /// Removes the group from this node and returns its Raft node (the application destroys
    /// its storage). Its id is remembered as a tombstone: late messages for it are dropped
    /// without asking the creator hook, and `add_group` refuses it, until
    /// [`MultiRaft::forget_tombstone`]. Messages of the group still queued are sent at the
    /// next flush; an unacknowledged Ready batch that holds it is acknowledged without it.
    pub fn remove_group(&mut self, group_id: u64) -> Option<RawNode<S>> {
        let node = self.groups.remove(group_id)?;
        self.tombstones.insert(group_id);
        info!(self.logger, "group removed"; "group" => group_id);
        Some(node)
    }

    /// Forgets a removed group's tombstone: the id may be used again. Returns whether there was
    /// one.
    pub fn forget_tombstone(&mut self, group_id: u64) -> bool {
        self.tombstones.remove(&group_id)
    }

    /// Whether a group was removed and is still remembered as a tombstone.
    pub fn is_tombstoned(&self, group_id: u64) -> bool {
        self.tombstones.contains(&group_id)
    }

    /// Whether the group lives on this node.
    pub fn contains(&self, group_id: u64) -> bool {
        self.groups.contains(group_id)
    }

    /// The group's Raft node, for reading anything [`MultiRaft::group_status`] does not give. A
    /// frozen group is thawed for it (it stays asleep, and the next tick freezes it again).
    pub fn group(&mut self, group_id: u64) -> Option<&RawNode<S>> {
        self.groups.thaw_id(group_id).map(|node| &*node)
    }

    /// The group's Raft node if it is live; `None` if the group is unknown or kept frozen
    /// ([`MultiRaft::group_status`] says which, and [`MultiRaft::group`] thaws it).
    pub fn live_group(&self, group_id: u64) -> Option<&RawNode<S>> {
        self.groups.get(group_id)?.live()
    }

    /// The group's state on this node (role, term, leader, indexes, asleep or frozen), without
    /// thawing it.
    pub fn group_status(&self, group_id: u64) -> Option<GroupStatus> {
        self.groups.get(group_id).map(|group| group.status())
    }

    /// The storage of the group's node (the application persists the group's Readys into it),
    /// without thawing it.
    pub fn store(&self, group_id: u64) -> Option<&S> {
        self.groups.get(group_id).map(|group| group.store())
    }

    /// The group's Raft node, for any command this driver has no method for (membership changes,
    /// leadership transfer, snapshots, ...). The group is put on the awake and dirty lists, so
    /// whatever the call does is ticked and collected: always go through this method, never keep
    /// the reference across driver calls.
    pub fn group_mut(&mut self, group_id: u64) -> Option<&mut RawNode<S>> {
        self.groups.touch_id(group_id)
    }

    /// The ids of every group on this node, in no particular order.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.iter().map(|group| group.id)
    }

    fn node_mut(&mut self, group_id: u64) -> Result<&mut RawNode<S>, Error> {
        self.group_mut(group_id)
            .ok_or(Error::UnknownGroup(group_id))
    }

    /// Proposes `data` to the group (forwarded to its leader when this replica follows). Wakes
    /// the group.
    pub fn propose(&mut self, group_id: u64, context: Vec<u8>, data: Vec<u8>) -> Result<(), Error> {
        self.propose_bytes(group_id, context.into(), data.into())
    }

    /// Like [`MultiRaft::propose`], taking shared buffers.
    pub fn propose_bytes(
        &mut self,
        group_id: u64,
        context: bytes::Bytes,
        data: bytes::Bytes,
    ) -> Result<(), Error> {
        self.node_mut(group_id)?
            .propose_bytes(context, data)
            .map_err(|source| Error::Raft { group_id, source })
    }

    /// Proposes a membership change to the group (see [`RawNode::propose_conf_change`]).
    pub fn propose_conf_change(
        &mut self,
        group_id: u64,
        context: Vec<u8>,
        change: impl ConfChangeI,
    ) -> Result<(), Error> {
        self.node_mut(group_id)?
            .propose_conf_change(context, change)
            .map_err(|source| Error::Raft { group_id, source })
    }

    /// Requests a linearizable read point in the group (see [`RawNode::read_index`]). Wakes the
    /// group.
    pub fn read_index(&mut self, group_id: u64, context: Vec<u8>) -> Result<(), Error> {
        self.node_mut(group_id)?
            .read_index(context)
            .map_err(|source| Error::Raft { group_id, source })
    }

    /// Starts an election in the group now.
    pub fn campaign(&mut self, group_id: u64) -> Result<(), Error> {
        self.node_mut(group_id)?
            .campaign()
            .map_err(|source| Error::Raft { group_id, source })
    }

    /// Wakes the group on this node (see [`RawNode::wake`]).
    pub fn wake(&mut self, group_id: u64) -> Result<(), Error> {
        self.node_mut(group_id)?.wake();
        Ok(())
    }

    /// Allows or forbids the quiescence policy to put this group to sleep (allowed by default).
    /// Forbidding does not wake a sleeping group.
    pub fn set_may_quiesce(&mut self, group_id: u64, allowed: bool) -> Result<(), Error> {
        let (_, group) = self.groups.slot_and_group(group_id)?;
        group.policy.may_quiesce = allowed;
        group.policy.idle_ticks = 0;
        Ok(())
    }

    /// The driver's counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// The driver's state; counting sleeping groups walks every group.
    pub fn status(&self) -> MultiStatus {
        MultiStatus {
            node_id: self.config.node_id,
            groups: self.groups.len(),
            awake_groups: self.groups.awake.len(),
            quiesced_groups: self
                .groups
                .iter()
                .filter(|group| group.is_quiesced())
                .count(),
            frozen_groups: self
                .groups
                .iter()
                .filter(|group| group.status().frozen)
                .count(),
            tombstones: self.tombstones.len(),
            queued_messages: self.outbox.queued(),
            metrics: self.metrics,
        }
    }
}
