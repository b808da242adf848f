//! [`Config`]: everything that tunes a node, and [`Config::validate`].

use crate::error::{Error, Result};
use crate::storage::NO_LIMIT;

/// How read-only requests (`read_index`) are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// Confirm leadership with a round of heartbeats acknowledged by a quorum (thesis §6.4).
    #[default]
    Safe,
    /// Rely on the leader lease (requires `check_quorum`); fast, but assumes bounded clock drift.
    LeaseBased,
}

/// The configuration of one Raft node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id; must not be 0.
    pub id: u64,
    /// Ticks without hearing from a leader before a follower campaigns. The actual timeout is
    /// randomised in `[min_election_tick, max_election_tick)`.
    pub election_tick: usize,
    /// Ticks between heartbeats sent by a leader; must be below `election_tick`.
    pub heartbeat_tick: usize,
    /// The last index the application has already applied (for restarts); entries at or below it
    /// are never handed out again.
    pub applied: u64,
    /// The largest total size in bytes of the entries in one append message (at least one entry is
    /// always sent).
    pub max_size_per_msg: u64,
    /// The most append messages in flight to one follower while replicating.
    pub max_inflight_msgs: usize,
    /// The most entry payload bytes in flight to one follower while replicating (`NO_LIMIT` for
    /// none); one message is always allowed, however large.
    pub max_inflight_bytes: u64,
    /// A leader steps down if it has not heard from a quorum within an election timeout.
    pub check_quorum: bool,
    /// Run a pre-vote round (thesis §9.6) before bumping the term to campaign.
    pub pre_vote: bool,
    /// Lower bound of the randomised election timeout; 0 means `election_tick`.
    pub min_election_tick: usize,
    /// Upper bound (exclusive) of the randomised election timeout; 0 means `2 * election_tick`.
    pub max_election_tick: usize,
    /// How `read_index` requests are confirmed.
    pub read_only_option: ReadOnlyOption,
    /// Do not broadcast an append to every follower just because the commit index moved.
    pub skip_bcast_commit: bool,
    /// Accepted for compatibility with raft-rs; this core always batches: one append per follower
    /// per Ready carrying everything proposed since the last one.
    pub batch_append: bool,
    /// This node's election priority (raft-rs priority elections); higher wins ties.
    pub priority: i64,
    /// The largest total payload size in bytes of uncommitted entries a leader accepts before it drops
    /// proposals with `Error::ProposalDropped`.
    pub max_uncommitted_size: u64,
    /// The largest total size in bytes of committed entries in one Ready (at least one entry is always
    /// returned).
    pub max_committed_size_per_ready: u64,
    /// The most payload bytes (data plus context) of persisted, not yet applied entries kept in
    /// memory so that they are handed out for applying without being read back from storage
    /// (`raft_core::log::DEFAULT_APPLY_CACHE_BYTES`, 4 MiB, by default). Entries past it are
    /// read from storage as usual; 0 turns the cache off. It bounds what a group whose entries
    /// persist but do not commit (a leader cut off from its quorum, a follower far ahead of the
    /// commit index) holds beyond its storage; under normal load it holds about one round trip's
    /// worth of entries.
    pub max_apply_cache_bytes: u64,
    /// Followers drop proposals instead of forwarding them to the leader.
    pub disable_proposal_forwarding: bool,
    /// The seed of this node's random election timeouts; `None` derives one from `id`.
    pub seed: Option<u64>,
    /// A leader that applies a configuration without itself as a voter (removed, or demoted to
    /// learner) steps down at once. When off, it keeps leading without counting itself: it
    /// replicates and commits what the remaining voters acknowledge but accepts no new proposals,
    /// until the application transfers leadership or the group elects another leader.
    pub step_down_on_removal: bool,
    /// Accept every proposed conf change without checking that it can be applied (one pending
    /// change at a time, joint state, the change itself). For applications that validate changes
    /// themselves; a change that then fails to apply is reported by `apply_conf_change`.
    pub disable_conf_change_validation: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            election_tick: 10,
            heartbeat_tick: 2,
            applied: 0,
            max_size_per_msg: 0,
            max_inflight_msgs: 256,
            max_inflight_bytes: NO_LIMIT,
            check_quorum: false,
            pre_vote: false,
            min_election_tick: 0,
            max_election_tick: 0,
            read_only_option: ReadOnlyOption::Safe,
            skip_bcast_commit: false,
            batch_append: false,
            priority: 0,
            max_uncommitted_size: NO_LIMIT,
            max_committed_size_per_ready: NO_LIMIT,
            max_apply_cache_bytes: crate::log::DEFAULT_APPLY_CACHE_BYTES,
            disable_proposal_forwarding: false,
            seed: None,
            step_down_on_removal: true,
            disable_conf_change_validation: false,
        }
    }
}

fn invalid(field: &'static str, rule: impl Into<String>) -> Error {
    Error::ConfigInvalid {
        field,
        rule: rule.into(),
    }
}

impl Config {
    /// A default configuration for node `id`.
    pub fn new(id: u64) -> Self {
        Config {
            id,
            ..Default::default()
        }
    }

    /// The effective lower bound of the randomised election timeout.
    pub fn min_election_tick(&self) -> usize {
        if self.min_election_tick == 0 {
            self.election_tick
        } else {
            self.min_election_tick
        }
    }

    /// The effective upper bound (exclusive) of the randomised election timeout.
    pub fn max_election_tick(&self) -> usize {
        if self.max_election_tick == 0 {
            2 * self.election_tick
        } else {
            self.max_election_tick
        }
    }

    /// The seed of the election-timeout generator: `seed` if set, else one derived from `id`.
    pub fn effective_seed(&self) -> u64 {
        self.seed
            .unwrap_or_else(|| self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5241_4654_u64)
    }

    /// Checks every rule; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<()> {
        if self.id == 0 {
            return Err(invalid("id", "must not be 0 (0 means \"no node\")"));
        }
        let max_ticks = u32::MAX as usize;
        if self.election_tick > max_ticks || self.max_election_tick() > max_ticks {
            return Err(invalid(
                "election_tick",
                format!("must keep max_election_tick within {max_ticks} ticks"),
            ));
        }
        if self.heartbeat_tick == 0 {
            return Err(invalid("heartbeat_tick", "must be greater than 0"));
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(invalid(
                "election_tick",
                format!(
                    "must be greater than heartbeat_tick ({} <= {})",
                    self.election_tick, self.heartbeat_tick
                ),
            ));
        }
        let (min, max) = (self.min_election_tick(), self.max_election_tick());
        if min < self.election_tick {
            return Err(invalid(
                "min_election_tick",
                format!(
                    "must be at least election_tick ({min} < {})",
                    self.election_tick
                ),
            ));
        }
        if min >= max {
            return Err(invalid(
                "max_election_tick",
                format!("must be greater than min_election_tick ({max} <= {min})"),
            ));
        }
        if self.max_inflight_bytes == 0 {
            return Err(invalid(
                "max_inflight_bytes",
                "must be greater than 0 (NO_LIMIT for none)",
            ));
        }
        if self.max_inflight_msgs == 0 {
            return Err(invalid("max_inflight_msgs", "must be greater than 0"));
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return Err(invalid(
                "read_only_option",
                "LeaseBased requires check_quorum = true (the lease is only sound when a leader \
                 that lost its quorum steps down)",
            ));
        }
        if self.max_uncommitted_size == 0 {
            return Err(invalid(
                "max_uncommitted_size",
                "must be greater than 0 (use NO_LIMIT for no limit)",
            ));
        }
        if self.max_committed_size_per_ready == 0 {
            return Err(invalid(
                "max_committed_size_per_ready",
                "must be greater than 0 (use NO_LIMIT for no limit)",
            ));
        }
        Ok(())
    }
}
