//! What the two libraries' runs share: node settings, the payloads, the rolling hash of applied
//! data, the application ([`App`]), and the [`Lib`] trait every workload is written against, so
//! both libraries run exactly the same harness code (monomorphised, no dynamic dispatch).

use std::sync::LazyLock;

/// The starting state of the rolling hash (FNV-1a's offset basis).
pub const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// The logger every node of either library gets: `slog::Discard`, as WORKLOADS.md asks.
pub static LOGGER: LazyLock<slog::Logger> =
    LazyLock::new(|| slog::Logger::root(slog::Discard, slog::o!()));

/// The payload of proposal number `seq`, `p` bytes long: bytes `0..8` are `seq` as a
/// little-endian u64 (truncated when `p < 8`), byte `j >= 8` is `(seq + j) mod 256`. A fresh
/// `Vec` each call, as the workloads define.
pub fn payload(seq: u64, p: usize) -> Vec<u8> {
    let mut v = vec![0u8; p];
    let le = seq.to_le_bytes();
    let n = p.min(8);
    v[..n].copy_from_slice(&le[..n]);
    for (j, b) in v.iter_mut().enumerate().skip(8) {
        *b = seq.wrapping_add(j as u64) as u8;
    }
    v
}

/// One step of the rolling hash: `(rotate_left(h, 5) ^ w) * 0x9E3779B97F4A7C15`, wrapping.
#[inline]
pub fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Feeds one applied payload into the rolling hash: each 8-byte little-endian chunk (the last one
/// zero-padded), then the length.
#[inline]
pub fn hash_data(mut h: u64, d: &[u8]) -> u64 {
    let mut chunks = d.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(b));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(b));
    }
    mix(h, d.len() as u64)
}

/// The hash an application must end with after applying `payload(0..n, p)` in order.
pub fn expected_hash(n: u64, p: usize) -> u64 {
    (0..n).fold(HASH_SEED, |h, seq| hash_data(h, &payload(seq, p)))
}

/// The settings a workload varies; everything else is the common configuration of WORKLOADS.md
/// (`heartbeat_tick = 1`, `max_size_per_msg = 1 MiB`, `max_inflight_msgs = 256`, the rest default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `election_tick`: 10, except 1000 in W3.
    pub election_tick: usize,
    /// `batch_append` (raft-rs's option; our core always batches and accepts the flag).
    pub batch_append: bool,
}

impl Settings {
    /// The common configuration: `election_tick = 10`, `batch_append = false`.
    pub const COMMON: Settings = Settings {
        election_tick: 10,
        batch_append: false,
    };
}

/// `max_size_per_msg` of every node: 1 MiB.
pub const MAX_SIZE_PER_MSG: u64 = 1 << 20;
/// `max_inflight_msgs` of every node.
pub const MAX_INFLIGHT_MSGS: usize = 256;
/// `heartbeat_tick` of every node.
pub const HEARTBEAT_TICK: usize = 1;

/// The application of one node: receives committed entries in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App {
    /// The index of the last entry handed to it.
    pub last_applied: u64,
    /// How many proposals (entries with data) it applied.
    pub applied: u64,
    /// The rolling hash over the applied proposals' data.
    pub hash: u64,
}

impl Default for App {
    fn default() -> Self {
        App {
            last_applied: 0,
            applied: 0,
            hash: HASH_SEED,
        }
    }
}

impl App {
    /// Applies one committed entry: it must be the next index; an entry without data (a new
    /// leader's empty entry) is otherwise skipped; any other entry must be a normal entry and
    /// counts as one applied proposal.
    #[inline]
    pub fn apply(&mut self, index: u64, data: &[u8], normal: bool) {
        assert_eq!(
            index,
            self.last_applied + 1,
            "a committed entry was handed out of order"
        );
        self.last_applied = index;
        if data.is_empty() {
            return;
        }
        assert!(normal, "entry {index} is not a normal entry");
        self.applied += 1;
        self.hash = hash_data(self.hash, data);
    }
}

/// A node's role, in terms both libraries share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follower.
    Follower,
    /// Candidate.
    Candidate,
    /// Leader.
    Leader,
    /// Pre-candidate (pre-vote round).
    PreCandidate,
}

/// What the untimed verifications read from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspect {
    /// Role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader it follows (0 for none).
    pub leader_id: u64,
    /// Last log index.
    pub last_index: u64,
    /// Commit index.
    pub committed: u64,
    /// Applied index (as raft knows it).
    pub applied: u64,
    /// Persisted index (as raft knows it).
    pub persisted: u64,
    /// Stored hard state's term.
    pub stored_term: u64,
    /// Stored hard state's commit.
    pub stored_commit: u64,
    /// Last index in storage.
    pub stored_last_index: u64,
}

/// An append acknowledgement seen among a follower's outgoing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The index it acknowledges (or, when rejecting, the index rejected).
    pub index: u64,
    /// Whether it rejects.
    pub reject: bool,
}

/// One library under test, seen through the calls the workloads need. Both implementations follow
/// WORKLOADS.md's "Handling one Ready" to the letter, in their library's own API.
pub trait Lib {
    /// The name in `RESULT` lines: `ours` or `raftrs`.
    const NAME: &'static str;
    /// A node: the `RawNode`, its storage handle and its [`App`].
    type Node;
    /// Just a `RawNode` over its storage (W3 keeps only these).
    type Raw;
    /// The library's message type.
    type Msg: Clone;

    /// `size_of` the library's `RawNode<MemStorage>`.
    fn raw_size() -> usize;
    /// `size_of` the library's `Message` (what every move of a message copies).
    fn msg_size() -> usize;
    /// A new node `id` of voters 1, 2, 3 (fresh storage, empty log, term 0).
    fn new_node(id: u64, settings: Settings) -> Self::Node;
    /// A new bare `RawNode` of voters 1, 2, 3 (W3).
    fn new_raw(id: u64, settings: Settings) -> Self::Raw;
    /// Ticks a bare `RawNode` once.
    fn tick_raw(raw: &mut Self::Raw);
    /// Whether a bare `RawNode` is a follower with no Ready pending.
    fn raw_is_idle_follower(raw: &Self::Raw) -> bool;

    /// `tick()` of a node.
    fn tick(node: &mut Self::Node);
    /// `campaign()`; must succeed.
    fn campaign(node: &mut Self::Node);
    /// `propose(context = empty, data)`; must succeed.
    fn propose(node: &mut Self::Node, data: Vec<u8>);
    /// `step(m)`; must succeed.
    fn step(node: &mut Self::Node, m: Self::Msg);
    /// `has_ready()`.
    fn has_ready(node: &Self::Node) -> bool;
    /// Handles one Ready if the node has one (WORKLOADS.md's six steps); every message it sends
    /// is pushed onto the back of `out`, in the order sent.
    fn handle_ready(node: &mut Self::Node, out: &mut Vec<Self::Msg>) {
        if Self::has_ready(node) {
            Self::handle_ready_unconditionally(node, out);
        }
    }
    /// Takes and handles one Ready (WORKLOADS.md's six steps) without asking `has_ready()` first,
    /// as a loop that calls `ready()`/`advance()` on a schedule does (W2c); every message it
    /// sends is pushed onto the back of `out`, in the order sent.
    fn handle_ready_unconditionally(node: &mut Self::Node, out: &mut Vec<Self::Msg>);

    /// The node's application.
    fn app(node: &Self::Node) -> &App;
    /// Whether the node leads.
    fn is_leader(node: &Self::Node) -> bool;
    /// The leader the node follows.
    fn leader_id(node: &Self::Node) -> u64;
    /// The node's last log index.
    fn last_index(node: &Self::Node) -> u64;
    /// Everything the verifications check (reads storage; not for timed code).
    fn inspect(node: &Self::Node) -> Inspect;

    /// The receiver of a message.
    fn msg_to(m: &Self::Msg) -> u64;
    /// The sender of a message.
    fn msg_from(m: &Self::Msg) -> u64;
    /// Whether `m` is a `MsgHeartbeatResponse`.
    fn is_heartbeat_response(m: &Self::Msg) -> bool;
    /// W2's message `i` (1-based): a 1-entry `MsgAppend` from 1 to 2 at term 1.
    fn w2_append(i: u64, p: usize) -> Self::Msg;
    /// W2b's `MsgHeartbeatResponse` from `from` to 1.
    fn heartbeat_response(from: u64, term: u64, commit: u64) -> Self::Msg;
    /// The acknowledgement in `m`, if it is a `MsgAppendResponse`.
    fn append_ack(m: &Self::Msg) -> Option<Ack>;
}
