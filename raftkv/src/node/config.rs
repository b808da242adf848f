//! What a node is started with: [`NodeConfig`], the write and read modes, and the Raft
//! configuration they make.

use std::path::PathBuf;
use std::time::Duration;

use crate::peer_auth::ClusterSecret;

use raft_core::{Config, ReadOnlyOption};

/// How writes sent to a follower are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The follower proposes them; Raft forwards the proposal to the leader.
    Forward,
    /// The follower answers `-MOVED 0 <leader address>` (what `redis-cli -c` follows).
    Redirect,
}

/// How reads are made linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex confirmed by a heartbeat round with a quorum (thesis §6.4).
    Safe,
    /// ReadIndex confirmed by the leader's check-quorum lease (assumes bounded clock drift).
    Lease,
}

/// Everything a node is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (not 0).
    pub id: u64,
    /// The address it listens on, for clients and peers alike.
    pub addr: String,
    /// Where its storage lives.
    pub data_dir: PathBuf,
    /// The members of a new cluster (used only when the storage is empty and `join` is off).
    pub peers: Vec<(u64, String)>,
    /// Start empty and wait to be added to an existing cluster (`RAFT.ADDNODE`).
    pub join: bool,
    /// Writes on a follower: forwarded or redirected.
    pub write_mode: WriteMode,
    /// Reads: ReadIndex with a heartbeat round, or with the leader lease.
    pub read_mode: ReadMode,
    /// The length of one logical clock tick.
    pub tick: Duration,
    /// Ticks without a leader before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Entries applied between two snapshots.
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot, for followers that are only a little behind.
    pub keep_entries: u64,
    /// How long a client request may wait for a leader, a commit or a read confirmation.
    pub request_timeout: Duration,
    /// The secret peers must prove they know before this node takes their messages; `None`
    /// accepts any peer (a trusted network only).
    pub cluster_secret: Option<ClusterSecret>,
    /// The most client connections served at once; one more is answered
    /// `-ERR max number of clients reached` and closed (Redis's `maxclients`).
    pub max_clients: usize,
    /// A client connection idle this long is closed; `None` never closes one (Redis's
    /// `timeout`, 0 by default).
    pub client_idle_timeout: Option<Duration>,
    /// The stored settings given on the command line, by name (`write-mode`, `tick-ms`, ...):
    /// on a restart, these must agree with the data directory's, and the others are taken from
    /// it (see `options_file`).
    pub explicit_options: Vec<String>,
}

impl NodeConfig {
    /// A configuration with the defaults for node `id` listening on `addr`.
    pub fn new(id: u64, addr: impl Into<String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            addr: addr.into(),
            data_dir: data_dir.into(),
            peers: Vec::new(),
            join: false,
            write_mode: WriteMode::Forward,
            read_mode: ReadMode::Safe,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 10_000,
            keep_entries: 1_000,
            request_timeout: Duration::from_secs(5),
            cluster_secret: None,
            max_clients: 10_000,
            client_idle_timeout: None,
            explicit_options: Vec::new(),
        }
    }

    /// The Raft configuration of this node, whose state machine restarts at `applied` (the index
    /// of its latest snapshot; the log after it is applied again).
    pub(super) fn raft_config(&self, applied: u64) -> Config {
        Config {
            id: self.id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            read_only_option: match self.read_mode {
                ReadMode::Safe => ReadOnlyOption::Safe,
                ReadMode::Lease => ReadOnlyOption::LeaseBased,
            },
            max_committed_size_per_ready: 16 * 1024 * 1024,
            ..Config::default()
        }
    }
}
