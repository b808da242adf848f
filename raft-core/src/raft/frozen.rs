//! A sleeping node packed small (issue 17): what a multi-raft process holds for each of its many
//! quiesced groups.
//!
//! A group asleep on this node with nothing in flight (no Ready handed out and unacknowledged, no
//! message queued, no unpersisted entry, nothing waiting to be applied or read) is a handful of
//! numbers: its term, vote, leader, commit and apply indexes, its clock and random generator, its
//! membership and its settings. Everything else a live [`Raft`] carries is an empty buffer, or a
//! setting every group of the process shares. [`FrozenRaft`] keeps the numbers, shares the
//! settings and the membership through a [`FreezePool`] (a process with a million groups has a
//! few distinct ones), and drops the logger (the driver gives it back on thawing). Thawing
//! rebuilds exactly the node that was frozen, still asleep: the same state, clock and random
//! sequence, so that a run with freezing behaves exactly as one without (the tests check it
//! message for message).

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::rngs::Xoshiro128PlusPlus;
use slog::Logger;

use super::{quiesce, Raft, StateRole};
use crate::config::ReadOnlyOption;
use crate::log::{RaftLog, Unstable};
use crate::read_only::ReadOnly;
use crate::storage::Storage;
use crate::tracker::{Configuration, ProgressTracker};

/// How many distinct settings and memberships a [`FreezePool`] shares; beyond that a frozen
/// node keeps its own copy (correct, only larger).
const POOL_LIMIT: usize = 64;

/// Everything a node takes from its [`Config`](crate::Config) or from the runtime setters: the
/// same for every group of a typical multi-raft process, so frozen nodes share one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    id: u64,
    heartbeat_timeout: u32,
    election_timeout: u32,
    min_election_timeout: u32,
    max_election_timeout: u32,
    check_quorum: bool,
    pre_vote: bool,
    disable_proposal_forwarding: bool,
    skip_bcast_commit: bool,
    step_down_on_removal: bool,
    disable_conf_change_validation: bool,
    read_only_option: ReadOnlyOption,
    priority: i64,
    max_msg_size: u64,
    max_uncommitted_size: u64,
    max_committed_size_per_ready: u64,
    max_inflight: usize,
    max_inflight_bytes: u64,
    apply_cache_limit: u64,
}

/// The settings and memberships that frozen nodes share (see [`RawNode::freeze`]): a driver of
/// many groups keeps one and passes it to every `freeze`.
///
/// [`RawNode::freeze`]: crate::RawNode::freeze
#[derive(Debug, Default)]
pub struct FreezePool {
    settings: Vec<Arc<Settings>>,
    confs: Vec<Arc<Configuration>>,
}

/// The shared copy of `value` in `pool` (added if new; a full pool first forgets the copies no
/// frozen node holds any more, so memberships that changed do not crowd out new ones).
fn intern<V: PartialEq>(pool: &mut Vec<Arc<V>>, value: V) -> Arc<V> {
    if let Some(shared) = pool.iter().find(|shared| ***shared == value) {
        return Arc::clone(shared);
    }
    let shared = Arc::new(value);
    if pool.len() >= POOL_LIMIT {
        pool.retain(|old| Arc::strong_count(old) > 1);
    }
    if pool.len() < POOL_LIMIT {
        pool.push(Arc::clone(&shared));
    }
    shared
}

impl FreezePool {
    /// An empty pool.
    pub fn new() -> FreezePool {
        FreezePool::default()
    }

    /// How many distinct settings and memberships it shares now.
    pub fn shared(&self) -> (usize, usize) {
        (self.settings.len(), self.confs.len())
    }

    /// Forgets the shared copies no frozen node uses any more.
    pub fn prune(&mut self) {
        self.settings.retain(|shared| Arc::strong_count(shared) > 1);
        self.confs.retain(|shared| Arc::strong_count(shared) > 1);
    }
}

/// Flags of a frozen node, one bit each.
const TIMEOUT_NOW_SENT: u8 = 1;
const TERM_NOT_DURABLE: u8 = 2;
const APPENDS_PENDING: u8 = 4;

/// A sleeping [`Raft`] with nothing in flight, packed (see the module documentation).
pub(crate) struct FrozenRaft<T: Storage> {
    pub(crate) store: T,
    settings: Arc<Settings>,
    pub(crate) conf: Arc<Configuration>,
    ticks: u64,
    rng: Xoshiro128PlusPlus,
    pub(crate) term: u64,
    pub(crate) vote: u64,
    pub(crate) leader_id: u64,
    pub(crate) committed: u64,
    persisted: u64,
    applying: u64,
    pub(crate) applied: u64,
    /// One past the last index (the unstable tail's offset: it is empty).
    pub(crate) next_index: u64,
    uncommitted_size: u64,
    pending_conf_index: u64,
    pending_request_snapshot: u64,
    last_read_seq: u64,
    led_term: u64,
    /// Peers that do not know quiescence (rare: boxed so the usual empty set costs 8 bytes,
    /// not a set's 24).
    #[allow(clippy::box_collection)]
    unsupported: Option<Box<BTreeSet<u64>>>,
    forwards: Option<Box<super::forward::Forwards>>,
    election_elapsed: u32,
    randomized_election_timeout: u32,
    heartbeat_elapsed: u32,
    batch_hint: u32,
    pub(crate) state: StateRole,
    flags: u8,
}

impl<T: Storage> Raft<T> {
    /// Why this node cannot be frozen now, or `None` if it can: it must be asleep, a leader or a
    /// follower, with every buffer empty (messages, unstable entries, snapshot, reads, entries
    /// kept for applying) and no transfer under way.
    pub(crate) fn freeze_blocker(&self) -> Option<&'static str> {
        if !self.quiescence.asleep {
            return Some("awake");
        }
        if !matches!(self.state, StateRole::Leader | StateRole::Follower) {
            return Some("neither leader nor follower");
        }
        if !self.msgs.is_empty() || !self.msgs_after_append.is_empty() {
            return Some("messages to send");
        }
        if !self.raft_log.unstable.is_idle() {
            return Some("entries or a snapshot not persisted");
        }
        if !self.raft_log.apply_cache_is_empty() {
            return Some("entries kept for applying");
        }
        if !self.read_only.is_idle() {
            return Some("reads in flight");
        }
        if self.lead_transferee.is_some() {
            return Some("a transfer is under way");
        }
        if !self.prs.untracked || !self.prs.votes.is_empty() {
            return Some("progress is tracked");
        }
        None
    }

    /// Packs this node (see [`Raft::freeze_blocker`]); the logger is dropped.
    pub(crate) fn freeze(self, pool: &mut FreezePool) -> FrozenRaft<T> {
        debug_assert_eq!(self.freeze_blocker(), None);
        let settings = Settings {
            id: self.id,
            heartbeat_timeout: self.heartbeat_timeout,
            election_timeout: self.election_timeout,
            min_election_timeout: self.min_election_timeout,
            max_election_timeout: self.max_election_timeout,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            disable_proposal_forwarding: self.disable_proposal_forwarding,
            skip_bcast_commit: self.skip_bcast_commit,
            step_down_on_removal: self.step_down_on_removal,
            disable_conf_change_validation: self.disable_conf_change_validation,
            read_only_option: self.read_only.option,
            priority: self.priority,
            max_msg_size: self.max_msg_size,
            max_uncommitted_size: self.max_uncommitted_size,
            max_committed_size_per_ready: self.max_committed_size_per_ready,
            max_inflight: self.prs.max_inflight,
            max_inflight_bytes: self.prs.max_inflight_bytes,
            apply_cache_limit: self.raft_log.apply_cache_limit,
        };
        let flags = (if self.timeout_now_sent {
            TIMEOUT_NOW_SENT
        } else {
            0
        }) | (if self.term_not_durable {
            TERM_NOT_DURABLE
        } else {
            0
        }) | (if self.appends_pending {
            APPENDS_PENDING
        } else {
            0
        });
        let unsupported = (!self.quiescence.unsupported.is_empty())
            .then(|| Box::new(self.quiescence.unsupported));
        let log = self.raft_log;
        FrozenRaft {
            settings: intern(&mut pool.settings, settings),
            conf: intern(&mut pool.confs, self.prs.conf),
            ticks: self.ticks,
            rng: self.rng,
            term: self.term,
            vote: self.vote,
            leader_id: self.leader_id,
            committed: log.committed,
            persisted: log.persisted,
            applying: log.applying,
            applied: log.applied,
            next_index: log.unstable.offset,
            batch_hint: log.unstable.batch_hint,
            store: log.store,
            uncommitted_size: self.uncommitted_size,
            pending_conf_index: self.pending_conf_index,
            pending_request_snapshot: self.pending_request_snapshot,
            last_read_seq: self.read_only.last_seq,
            led_term: self.led_term,
            unsupported,
            forwards: self.forwards,
            election_elapsed: self.election_elapsed,
            randomized_election_timeout: self.randomized_election_timeout,
            heartbeat_elapsed: self.heartbeat_elapsed,
            state: self.state,
            flags,
        }
    }
}

impl<T: Storage> FrozenRaft<T> {
    /// This node's id.
    pub(crate) fn id(&self) -> u64 {
        self.settings.id
    }

    /// The node that was frozen, asleep as it was, logging to `logger`.
    pub(crate) fn thaw(self, logger: &Logger) -> Raft<T> {
        let s = &*self.settings;
        let mut unstable = Unstable::new(self.next_index);
        unstable.batch_hint = self.batch_hint;
        let mut raft_log = RaftLog::new_unchecked(self.store, unstable);
        raft_log.committed = self.committed;
        raft_log.persisted = self.persisted;
        raft_log.applying = self.applying;
        raft_log.applied = self.applied;
        raft_log.apply_cache_limit = s.apply_cache_limit;
        let mut prs =
            ProgressTracker::new(s.max_inflight).with_max_inflight_bytes(s.max_inflight_bytes);
        prs.stop_tracking();
        prs.apply_conf(Arc::unwrap_or_clone(self.conf), self.next_index);
        let mut read_only = ReadOnly::new(s.read_only_option);
        read_only.last_seq = self.last_read_seq;
        Raft {
            ticks: self.ticks,
            election_elapsed: self.election_elapsed,
            randomized_election_timeout: self.randomized_election_timeout,
            heartbeat_elapsed: self.heartbeat_elapsed,
            heartbeat_timeout: s.heartbeat_timeout,
            state: self.state,
            check_quorum: s.check_quorum,
            pre_vote: s.pre_vote,
            disable_proposal_forwarding: s.disable_proposal_forwarding,
            skip_bcast_commit: s.skip_bcast_commit,
            appends_pending: self.flags & APPENDS_PENDING != 0,
            step_down_on_removal: s.step_down_on_removal,
            timeout_now_sent: self.flags & TIMEOUT_NOW_SENT != 0,
            election_timeout: s.election_timeout,
            min_election_timeout: s.min_election_timeout,
            max_election_timeout: s.max_election_timeout,
            disable_conf_change_validation: s.disable_conf_change_validation,
            term_not_durable: self.flags & TERM_NOT_DURABLE != 0,
            rng: self.rng,
            id: s.id,
            term: self.term,
            vote: self.vote,
            leader_id: self.leader_id,
            priority: s.priority,
            max_msg_size: s.max_msg_size,
            max_uncommitted_size: s.max_uncommitted_size,
            uncommitted_size: self.uncommitted_size,
            max_committed_size_per_ready: s.max_committed_size_per_ready,
            pending_conf_index: self.pending_conf_index,
            pending_request_snapshot: self.pending_request_snapshot,
            lead_transferee: None,
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            raft_log,
            prs,
            read_only,
            logger: logger.clone(),
            quiescence: quiesce::Quiescence {
                asleep: true,
                unsupported: self.unsupported.map(|set| *set).unwrap_or_default(),
            },
            forwards: self.forwards,
            led_term: self.led_term,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_forgets_copies_no_one_holds_and_shares_new_ones() {
        let mut pool: Vec<Arc<u64>> = Vec::new();
        let held: Vec<Arc<u64>> = (0..POOL_LIMIT as u64)
            .map(|v| intern(&mut pool, v))
            .collect();
        assert_eq!(pool.len(), POOL_LIMIT);
        // Full, and every copy held: a new value is not shared.
        let lone = intern(&mut pool, 1000);
        assert_eq!(Arc::strong_count(&lone), 1);
        assert!(
            Arc::ptr_eq(&intern(&mut pool, 5), &held[5]),
            "an equal value is shared"
        );
        // Once most copies are no longer held, a new value finds room.
        drop(held);
        let first = intern(&mut pool, 2000);
        let second = intern(&mut pool, 2000);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(pool.len(), 1);
    }
}
