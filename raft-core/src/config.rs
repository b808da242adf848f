//! [`Config`]: everything that tunes a node, and [`Config::validate`].

use crate::error::{Error, Result};
use crate::storage::NO_LIMIT;

/// How read-only requests (`read_index`) are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// Confirm leadership with a round of heartbeats acknowledged by a quorum (thesis §6.4).
    #[default]
    Safe,
    /// Rely on the leader lease (requires `check_quorum`): a leader answers at once while a
    /// quorum acknowledged one of its heartbeats less than an election timeout ago, counted in
    /// its own ticks. Fast, but only as safe as the ticks are true to time. The caller must:
    /// - tick from a monotonic clock at the same rate on every node (bounded drift between
    ///   nodes' tick rates; `min_election_tick` leaves the margin);
    /// - after any pause of the process (SIGSTOP, a VM or GC stall, a slow disk), deliver every
    ///   tick that elapsed (at least an election timeout's worth) before stepping a message or
    ///   calling `read_index`: a loop that drops missed ticks keeps a lease that ran out while it
    ///   was stopped, and serves stale reads when it resumes (the raftkv example's node loop
    ///   shows the rule);
    /// - serve a read soon after `read_index` answers it, not after a pause of its own.
    LeaseBased,
}

/// The configuration of one Raft node.
///
/// [`Config::new`] gives the defaults below, which suit a small cluster on a LAN with a tick of
/// about 100 ms; [`Config::validate`] (called by `RawNode::new`) names the field and the rule
/// when a combination is refused. Every field says its default and when to change it. The
/// fields and their meanings match raft-rs's `Config`, with two differences (`election_tick`
/// defaults to 10 here, 20 in raft-rs; a `max_committed_size_per_ready` of 0 is refused), see
/// MIGRATING.md.
///
/// Most deployments change four things: `election_tick`/`heartbeat_tick` to fit their tick and
/// network, `pre_vote` and `check_quorum` (both recommended: a node that was cut off cannot
/// disrupt the group when it comes back, and a leader that lost its quorum steps down), and the
/// flow-control sizes (`max_size_per_msg`, `max_inflight_msgs`) for large or many entries.
///
/// ```
/// use raft_core::{Config, ReadOnlyOption};
///
/// let config = Config {
///     election_tick: 10,  // 1 s with a 100 ms tick
///     heartbeat_tick: 1,  // a heartbeat every tick
///     pre_vote: true,
///     check_quorum: true,
///     read_only_option: ReadOnlyOption::Safe,
///     max_size_per_msg: 1 << 20,  // up to 1 MiB of entries per append
///     max_inflight_msgs: 256,
///     ..Config::new(1)
/// };
/// config.validate().expect("a valid configuration");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id; must not be 0. No default (`Config::new(id)` sets it).
    pub id: u64,
    /// Ticks without hearing from a leader before a follower campaigns (default 10). The actual
    /// timeout is randomised in `[min_election_tick, max_election_tick)`. Raise it when the
    /// network or the disk is slow enough that heartbeats can be late by several ticks: a timeout
    /// that fires while the leader is alive causes needless elections.
    pub election_tick: usize,
    /// Ticks between heartbeats sent by a leader (default 2); must be below `election_tick`,
    /// and usually a tenth to a half of it.
    pub heartbeat_tick: usize,
    /// The last index the application has already applied (default 0). Set it on a restart to
    /// the applied index the state machine persisted: entries at or below it are never handed out
    /// again.
    pub applied: u64,
    /// The largest total size in bytes of the entries in one append message (default 0: one
    /// entry per message). At least one entry is always sent. Raise it (raft-rs examples use
    /// 1 MiB) for throughput when entries are small; `NO_LIMIT` sends everything in one message.
    pub max_size_per_msg: u64,
    /// The most append messages in flight to one follower while replicating (default 256). With
    /// `max_size_per_msg` it bounds the bytes in flight per follower; lower it to bound memory
    /// when entries are large.
    pub max_inflight_msgs: usize,
    /// The most entry payload bytes in flight to one follower while replicating (default
    /// `NO_LIMIT`); one message is always allowed, however large. Set it when entry sizes vary
    /// too much for `max_inflight_msgs` alone to bound memory.
    pub max_inflight_bytes: u64,
    /// A leader steps down if it has not heard from a quorum within an election timeout, and a
    /// follower that hears from its leader ignores candidates for that long (default off, as in
    /// etcd and raft-rs; recommended on). Required by `ReadOnlyOption::LeaseBased`.
    pub check_quorum: bool,
    /// Run a pre-vote round (thesis §9.6) before bumping the term to campaign (default off;
    /// recommended on): a node that was partitioned away cannot raise the term and depose a
    /// healthy leader when it returns.
    pub pre_vote: bool,
    /// Lower bound of the randomised election timeout; 0 (the default) means `election_tick`.
    pub min_election_tick: usize,
    /// Upper bound (exclusive) of the randomised election timeout; 0 (the default) means
    /// `2 * election_tick`. Widen the range if split votes are frequent.
    pub max_election_tick: usize,
    /// How `read_index` requests are confirmed (default `Safe`, a heartbeat round). `LeaseBased`
    /// saves the round but is only as safe as the clocks: see [`ReadOnlyOption::LeaseBased`].
    pub read_only_option: ReadOnlyOption,
    /// Do not broadcast an append to every follower just because the commit index moved
    /// (default off). Turn on to save messages under heavy load; followers then learn the
    /// commit index with the next append or heartbeat.
    pub skip_bcast_commit: bool,
    /// Accepted for compatibility with raft-rs (default off); this core always batches: one
    /// append per follower per Ready carrying everything proposed since the last one.
    pub batch_append: bool,
    /// This node's election priority (raft-rs priority elections; default 0). Between equally
    /// up-to-date logs, a voter refuses a candidate of lower priority than its own, so the group
    /// tends to elect high-priority nodes (for instance those close to the clients).
    pub priority: i64,
    /// The largest total payload size in bytes of uncommitted entries a leader accepts before it
    /// drops proposals with `Error::ProposalDropped` (default `NO_LIMIT`). Set it to bound a
    /// leader's memory when it cannot commit (a lost quorum).
    pub max_uncommitted_size: u64,
    /// The largest total size in bytes of committed entries in one Ready (default `NO_LIMIT`; at
    /// least one entry is always returned). Set it to bound the memory of one apply batch.
    pub max_committed_size_per_ready: u64,
    /// The most payload bytes (data plus context) of persisted, not yet applied entries kept in
    /// memory so that they are handed out for applying without being read back from storage
    /// (default `raft_core::log::DEFAULT_APPLY_CACHE_BYTES`, 4 MiB). Entries past it are
    /// read from storage as usual; 0 turns the cache off. It bounds what a group whose entries
    /// persist but do not commit (a leader cut off from its quorum, a follower far ahead of the
    /// commit index) holds beyond its storage; under normal load it holds about one round trip's
    /// worth of entries.
    pub max_apply_cache_bytes: u64,
    /// Followers drop proposals instead of forwarding them to the leader (default off: they
    /// forward). Turn on when the application routes writes to the leader itself.
    pub disable_proposal_forwarding: bool,
    /// The seed of this node's random election timeouts; `None` (the default) derives one from
    /// `id`. Set it to vary timeouts between runs; the core never reads global randomness.
    pub seed: Option<u64>,
    /// A leader that applies a configuration without itself as a voter (removed, or demoted to
    /// learner) steps down at once (default on). When off, it keeps leading without counting
    /// itself: it replicates and commits what the remaining voters acknowledge but accepts no
    /// new proposals, until the application transfers leadership or the group elects another
    /// leader.
    pub step_down_on_removal: bool,
    /// Accept every proposed conf change without checking that it can be applied (one pending
    /// change at a time, joint state, the change itself; default off). For applications that
    /// validate changes themselves; a change that then fails to apply is reported by
    /// `apply_conf_change`.
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

/// The error for `field` breaking `rule` (also used by the runtime setters of `Raft`).
pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Error {
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
