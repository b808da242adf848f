//! The groups of one node: a slab of slots found by group id, and the two work lists the driver
//! keeps so that it never walks every group: the awake list (ticked) and the dirty list (asked
//! for a Ready). A group asleep with nothing in flight is kept frozen ([`FrozenNode`]), about a
//! third of a live node's size, and thawed when anything reaches it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use raft_core::{FreezePool, FrozenNode, RawNode, StateRole, Storage};
use slog::{o, Logger};

use crate::status::GroupStatus;

/// A group's Raft node: live, or frozen while it sleeps.
pub(crate) enum Replica<S: Storage> {
    /// Awake, or asleep with something in flight.
    Live(Box<RawNode<S>>),
    /// Asleep with nothing in flight, packed.
    Frozen(FrozenNode<S>),
    /// Only for the moment of changing from one to the other.
    Moving,
}

/// One group's replica on this node and the driver's bookkeeping for it.
pub(crate) struct Group<S: Storage> {
    pub(crate) id: u64,
    /// Distinguishes this group from an earlier one that had the same id and slot, so that an
    /// acknowledgement for a removed group never reaches its successor.
    pub(crate) incarnation: u64,
    node: Replica<S>,
    /// In the awake list.
    pub(crate) in_awake: bool,
    /// In the dirty list.
    pub(crate) in_dirty: bool,
    /// What the quiescence policy keeps for the group.
    pub(crate) policy: Policy,
}

/// The quiescence policy's bookkeeping for one group.
pub(crate) struct Policy {
    /// The application allows the quiescence policy to put this group to sleep.
    pub(crate) may_quiesce: bool,
    /// Consecutive ticks this leader was idle (see `MultiConfig::quiesce_after_idle_ticks`).
    pub(crate) idle_ticks: u32,
    /// The commit index seen at the previous tick: a new commit means the group is busy.
    pub(crate) committed_seen: u64,
}

impl<S: Storage> Group<S> {
    /// The live node, thawed first if it was frozen (`logger` is the driver's: the group's own
    /// logger is made from it).
    pub(crate) fn node_mut(&mut self, logger: &Logger) -> &mut RawNode<S> {
        if matches!(self.node, Replica::Frozen(_)) {
            let Replica::Frozen(frozen) = std::mem::replace(&mut self.node, Replica::Moving) else {
                unreachable!("matched just above")
            };
            let logger = logger.new(o!("group" => self.id));
            self.node = Replica::Live(Box::new(frozen.thaw(&logger)));
        }
        match &mut self.node {
            Replica::Live(node) => node,
            Replica::Frozen(_) | Replica::Moving => unreachable!("thawed above"),
        }
    }

    /// The live node (thawed first if it was frozen) and the policy's bookkeeping.
    pub(crate) fn node_and_policy(&mut self, logger: &Logger) -> (&mut RawNode<S>, &mut Policy) {
        self.node_mut(logger);
        match &mut self.node {
            Replica::Live(node) => (node, &mut self.policy),
            Replica::Frozen(_) | Replica::Moving => unreachable!("thawed above"),
        }
    }

    /// The node if it is live.
    pub(crate) fn live(&self) -> Option<&RawNode<S>> {
        match &self.node {
            Replica::Live(node) => Some(node),
            Replica::Frozen(_) | Replica::Moving => None,
        }
    }

    /// Takes the node out, thawed.
    pub(crate) fn into_node(mut self, logger: &Logger) -> RawNode<S> {
        self.node_mut(logger);
        match self.node {
            Replica::Live(node) => *node,
            Replica::Frozen(_) | Replica::Moving => unreachable!("thawed above"),
        }
    }

    /// Freezes the node if it sleeps with nothing in flight; returns whether it is frozen.
    pub(crate) fn try_freeze(&mut self, pool: &mut FreezePool) -> bool {
        match std::mem::replace(&mut self.node, Replica::Moving) {
            Replica::Live(node) => match node.freeze(pool) {
                Ok(frozen) => {
                    self.node = Replica::Frozen(frozen);
                    true
                }
                Err(node) => {
                    self.node = Replica::Live(Box::new(node));
                    false
                }
            },
            other => {
                let frozen = matches!(other, Replica::Frozen(_));
                self.node = other;
                frozen
            }
        }
    }

    /// Whether the group sleeps on this node.
    pub(crate) fn is_quiesced(&self) -> bool {
        match &self.node {
            Replica::Live(node) => node.is_quiesced(),
            Replica::Frozen(_) => true,
            Replica::Moving => false,
        }
    }

    /// Whether the node has a Ready (a frozen one never has).
    pub(crate) fn has_ready(&self) -> bool {
        self.live().is_some_and(|node| node.has_ready())
    }

    /// Whether `id` is a member of the group's configuration.
    pub(crate) fn is_member(&self, id: u64) -> bool {
        match &self.node {
            Replica::Live(node) => node.raft.prs.is_member(id),
            Replica::Frozen(frozen) => frozen.is_member(id),
            Replica::Moving => false,
        }
    }

    /// The storage the group's node reads.
    pub(crate) fn store(&self) -> &S {
        match &self.node {
            Replica::Live(node) => node.store(),
            Replica::Frozen(frozen) => frozen.store(),
            Replica::Moving => unreachable!("never seen outside a change"),
        }
    }

    /// The group's state on this node.
    pub(crate) fn status(&self) -> GroupStatus {
        match &self.node {
            Replica::Live(node) => {
                let raft = &node.raft;
                GroupStatus {
                    group_id: self.id,
                    role: raft.state,
                    term: raft.term,
                    vote: raft.vote,
                    leader_id: raft.leader_id,
                    commit: raft.raft_log.committed,
                    applied: raft.raft_log.applied,
                    last_index: raft.raft_log.last_index(),
                    asleep: raft.is_quiesced(),
                    frozen: false,
                }
            }
            Replica::Frozen(frozen) => GroupStatus {
                group_id: self.id,
                role: frozen.role(),
                term: frozen.term(),
                vote: frozen.vote(),
                leader_id: frozen.leader_id(),
                commit: frozen.committed(),
                applied: frozen.applied(),
                last_index: frozen.last_index(),
                asleep: true,
                frozen: true,
            },
            Replica::Moving => GroupStatus {
                group_id: self.id,
                role: StateRole::Follower,
                term: 0,
                vote: 0,
                leader_id: 0,
                commit: 0,
                applied: 0,
                last_index: 0,
                asleep: false,
                frozen: false,
            },
        }
    }
}

/// A hasher for group ids: the splitmix64 finalizer, deterministic (no random seed, so a run
/// replays exactly) and a bijection on `u64`, so distinct ids never share a full hash.
#[derive(Default)]
pub(crate) struct GroupIdHasher(u64);

impl Hasher for GroupIdHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

type GroupIndex = HashMap<u64, u32, BuildHasherDefault<GroupIdHasher>>;

/// A set of group ids hashed like the index (deterministic, no random seed).
pub(crate) type GroupIdSet = std::collections::HashSet<u64, BuildHasherDefault<GroupIdHasher>>;

/// The groups by slot, with the index from group id to slot and the work lists.
pub(crate) struct Registry<S: Storage> {
    slots: Vec<Option<Group<S>>>,
    /// The driver's logger, from which a thawed group's own is made.
    logger: Logger,
    /// The settings and memberships frozen groups share.
    pool: FreezePool,
    free: Vec<u32>,
    index: GroupIndex,
    /// Slots of groups that may be awake: every group that is not asleep is here (a sleeping
    /// one may be too, until the next tick drops it).
    pub(crate) awake: Vec<u32>,
    /// Slots of groups touched since the last Ready collection: only they can have a Ready.
    pub(crate) dirty: Vec<u32>,
    next_incarnation: u64,
}

impl<S: Storage> Registry<S> {
    pub(crate) fn new(logger: Logger) -> Registry<S> {
        Registry {
            slots: Vec::new(),
            logger,
            pool: FreezePool::new(),
            free: Vec::new(),
            index: GroupIndex::default(),
            awake: Vec::new(),
            dirty: Vec::new(),
            next_incarnation: 1,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// Adds a group (the id must be new) and returns its slot; it starts awake and dirty.
    pub(crate) fn insert(&mut self, id: u64, node: RawNode<S>) -> u32 {
        debug_assert!(!self.index.contains_key(&id), "group {id} added twice");
        let committed_seen = node.raft.raft_log.committed;
        let group = Group {
            id,
            incarnation: self.next_incarnation,
            node: Replica::Live(Box::new(node)),
            in_awake: false,
            in_dirty: false,
            policy: Policy {
                may_quiesce: true,
                idle_ticks: 0,
                committed_seen,
            },
        };
        self.next_incarnation += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(group);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 groups");
                self.slots.push(Some(group));
                slot
            }
        };
        self.index.insert(id, slot);
        self.touch(slot);
        slot
    }

    /// Removes a group and returns its node; its slot leaves both work lists.
    pub(crate) fn remove(&mut self, id: u64) -> Option<RawNode<S>> {
        let slot = self.index.remove(&id)?;
        let group = self.slots[slot as usize].take()?;
        if group.in_awake {
            self.awake.retain(|s| *s != slot);
        }
        if group.in_dirty {
            self.dirty.retain(|s| *s != slot);
        }
        self.free.push(slot);
        Some(group.into_node(&self.logger))
    }

    pub(crate) fn slot_of(&self, id: u64) -> Option<u32> {
        self.index.get(&id).copied()
    }

    /// The group in `slot`, if that slot holds one.
    pub(crate) fn at(&self, slot: u32) -> Option<&Group<S>> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The group in `slot`, mutably, if that slot holds one.
    pub(crate) fn at_mut(&mut self, slot: u32) -> Option<&mut Group<S>> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The slot of the group with this id and the group itself (not marked awake or dirty), or
    /// `UnknownGroup`.
    pub(crate) fn slot_and_group(
        &mut self,
        id: u64,
    ) -> Result<(u32, &mut Group<S>), crate::error::Error> {
        let slot = self
            .slot_of(id)
            .ok_or(crate::error::Error::UnknownGroup(id))?;
        let group = self.at_mut(slot).expect("an indexed slot holds its group");
        Ok((slot, group))
    }

    /// The group in `slot` with its node live (thawed if it was frozen).
    pub(crate) fn node_at(&mut self, slot: u32) -> Option<&mut RawNode<S>> {
        let group = self.slots.get_mut(slot as usize)?.as_mut()?;
        Some(group.node_mut(&self.logger))
    }

    /// Freezes the group in `slot` if it sleeps with nothing in flight; returns whether it is
    /// frozen.
    pub(crate) fn freeze_at(&mut self, slot: u32) -> bool {
        let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        group.try_freeze(&mut self.pool)
    }

    /// Takes the group at `position` of the awake list off it.
    pub(crate) fn leave_awake(&mut self, position: usize) {
        let slot = self.awake.swap_remove(position);
        if let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            group.in_awake = false;
        }
    }

    /// The group in `slot` and the logger its node is thawed with.
    pub(crate) fn with_logger(&mut self, slot: u32) -> Option<(&mut Group<S>, &Logger)> {
        let group = self.slots.get_mut(slot as usize)?.as_mut()?;
        Some((group, &self.logger))
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Group<S>> {
        self.at(self.slot_of(id)?)
    }

    /// The node of the group with this id, live and marked awake and dirty: whoever asks for it
    /// mutably may give it work.
    pub(crate) fn touch_id(&mut self, id: u64) -> Option<&mut RawNode<S>> {
        let slot = self.slot_of(id)?;
        self.touch(slot);
        self.node_at(slot)
    }

    /// The node of the group with this id, live (thawed if it was frozen) and on the awake list,
    /// so that the next tick freezes it again if it still sleeps.
    pub(crate) fn thaw_id(&mut self, id: u64) -> Option<&mut RawNode<S>> {
        let slot = self.slot_of(id)?;
        let group = self.slots.get_mut(slot as usize)?.as_mut()?;
        if !group.in_awake {
            group.in_awake = true;
            self.awake.push(slot);
        }
        self.node_at(slot)
    }

    /// Puts the group in `slot` on both work lists (if not there yet).
    pub(crate) fn touch(&mut self, slot: u32) {
        if let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            if !group.in_awake {
                group.in_awake = true;
                self.awake.push(slot);
            }
            if !group.in_dirty {
                group.in_dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Puts the group in `slot` on the dirty list (if not there yet).
    pub(crate) fn mark_dirty(&mut self, slot: u32) {
        if let Some(group) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            if !group.in_dirty {
                group.in_dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Every group, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Group<S>> {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Every occupied slot, in order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, group)| group.is_some())
            .map(|(slot, _)| slot as u32)
    }
}
