//! The per-node settings a test chooses ([`NodeConfig`]), the fixed ones every node shares, and
//! how both libraries' `Config`s are built from them.

/// Which library a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lib {
    /// This workspace's `raft_core::RawNode` over `storage_mem::MemStorage`.
    Ours,
    /// crates.io `raft` 0.7: `raft::RawNode` over `raft::storage::MemStorage`.
    RaftRs,
}

/// The settings a test chooses per node; both libraries get the same values. The rest is fixed:
/// `election_tick = 10`, `heartbeat_tick = 1`, up to 256 inflight appends, no message size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// Leaders step down without a quorum; followers in a leader's lease ignore vote requests.
    pub check_quorum: bool,
    /// Campaign with a pre-vote round first (thesis §9.6).
    pub pre_vote: bool,
    /// The node's election timeout in ticks, pinned: `min_election_tick = election_timeout`,
    /// `max_election_tick = election_timeout + 1`. At least [`ELECTION_TICK`].
    pub election_timeout: usize,
}

/// `election_tick` of every node (the base timeout; leases and check-quorum use it).
pub const ELECTION_TICK: usize = 10;
/// `heartbeat_tick` of every node.
pub const HEARTBEAT_TICK: usize = 1;

impl NodeConfig {
    /// No check-quorum, no pre-vote, and an election timeout of `10 + 2 * (id - 1)` ticks, so node 1
    /// times out first, then node 2, and so on.
    pub fn staggered(id: u64) -> NodeConfig {
        NodeConfig {
            check_quorum: false,
            pre_vote: false,
            election_timeout: ELECTION_TICK + 2 * (id.saturating_sub(1) as usize),
        }
    }

    /// Our library's `Config` for node `id`.
    pub(crate) fn ours(&self, id: u64) -> raft_core::Config {
        raft_core::Config {
            id,
            election_tick: ELECTION_TICK,
            heartbeat_tick: HEARTBEAT_TICK,
            min_election_tick: self.election_timeout,
            max_election_tick: self.election_timeout + 1,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            max_size_per_msg: raft_core::NO_LIMIT,
            max_inflight_msgs: 256,
            ..Default::default()
        }
    }

    /// raft-rs's `Config` for node `id`, with the same values as [`ours`](Self::ours).
    pub(crate) fn raft_rs(&self, id: u64) -> raft::Config {
        raft::Config {
            id,
            election_tick: ELECTION_TICK,
            heartbeat_tick: HEARTBEAT_TICK,
            min_election_tick: self.election_timeout,
            max_election_tick: self.election_timeout + 1,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            max_size_per_msg: raft::NO_LIMIT,
            max_inflight_msgs: 256,
            ..Default::default()
        }
    }
}
