//! Mixed clusters: nodes of this library (`raft_core::RawNode<storage_mem::MemStorage>`) and nodes of
//! raft-rs 0.7 (`raft::RawNode<raft::storage::MemStorage>`) in one Raft group.
//!
//! Messages cross between nodes **only as protobuf bytes**: a node of ours encodes with
//! `prost::Message::encode_to_vec`, a raft-rs node with `protobuf::Message::write_to_bytes`, and the
//! receiver decodes with its own library (`prost::Message::decode` or
//! `protobuf::Message::parse_from_bytes`). So everything that travels has gone through the wire
//! format, and a node never sees the other library's Rust types.
//!
//! [`MixedCluster`] is driven like `rafttest::Network`: delivery is synchronous and FIFO and runs to
//! quiescence; each node's `Ready` is handled the way its own library documents (for raft-rs, the
//! ordering of its `examples/five_mem_node`); committed normal entries are recorded per node. Links
//! can be cut ([`MixedCluster::cut`], [`MixedCluster::isolate`]) and healed
//! ([`MixedCluster::recover`]). Election timeouts are pinned per node ([`NodeConfig`]) so a test
//! knows which node times out first; raft-rs draws its timeouts from a thread-local generator, so a
//! pinned `[t, t + 1)` range is the only way to make it deterministic.
//!
//! Every delivered message is also decoded into our wire type and kept in
//! [`MixedCluster::delivered`] (with what the receiver had before handling it), and every message a
//! node refused is kept in [`MixedCluster::refusals`], so tests can assert on the traffic.
//!
//! Set `INTEROP_LOG=1` to see both libraries' logs on stderr.

use bytes::Bytes;
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb as theirs;
use raft::Storage as _;
use raft_core::eraftpb as ours;
use raft_core::Storage as _;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use raft_core::StateRole;

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

    fn ours(&self, id: u64) -> raft_core::Config {
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

    fn raft_rs(&self, id: u64) -> raft::Config {
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

/// An entry as both libraries can describe it: what tests compare across nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    /// The entry's index.
    pub index: u64,
    /// The entry's term.
    pub term: u64,
    /// The entry type's wire value (`EntryNormal` = 0).
    pub entry_type: i32,
    /// The payload.
    pub data: Vec<u8>,
}

impl EntrySummary {
    fn of_ours(e: &ours::Entry) -> EntrySummary {
        EntrySummary {
            index: e.index,
            term: e.term,
            entry_type: e.entry_type,
            data: e.data.to_vec(),
        }
    }

    fn of_theirs(e: &theirs::Entry) -> EntrySummary {
        EntrySummary {
            index: e.index,
            term: e.term,
            entry_type: protobuf::ProtobufEnum::value(&e.get_entry_type()),
            data: e.data.to_vec(),
        }
    }
}

/// One node's library-specific half: the `RawNode` and the storage it shares with the application.
pub enum Raw {
    /// A node of ours.
    Ours {
        /// The node.
        raw: Box<raft_core::RawNode<storage_mem::MemStorage>>,
        /// Its storage (shared with `raw`).
        storage: storage_mem::MemStorage,
    },
    /// A raft-rs node.
    RaftRs {
        /// The node.
        raw: Box<raft::RawNode<raft::storage::MemStorage>>,
        /// Its storage (shared with `raw`).
        storage: raft::storage::MemStorage,
    },
}

/// A message on the wire between two nodes.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The sender's id.
    pub from: u64,
    /// The receiver's id.
    pub to: u64,
    /// The library that encoded it.
    pub from_lib: Lib,
    /// The protobuf encoding of the message.
    pub bytes: Vec<u8>,
}

impl Envelope {
    /// Decodes the bytes as our wire type (for tracing and assertions).
    pub fn decode(&self) -> ours::Message {
        ours::Message::decode(&self.bytes[..]).unwrap_or_else(|e| {
            panic!(
                "a message from node {} ({:?}) does not decode as eraftpb.Message: {e}",
                self.from, self.from_lib
            )
        })
    }
}

/// A message that reached its receiver, decoded into our wire type.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The sender's library.
    pub from_lib: Lib,
    /// The receiver's library.
    pub to_lib: Lib,
    /// The message (decoded from the bytes that travelled).
    pub msg: ours::Message,
    /// The receiver's last log index just before it handled the message.
    pub receiver_last_index: u64,
    /// The receiver's commit index just before it handled the message.
    pub receiver_commit: u64,
}

/// A message a node's `step` refused with an error.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The receiver.
    pub to: u64,
    /// The receiver's library.
    pub to_lib: Lib,
    /// The message.
    pub msg: ours::Message,
    /// The error, as text.
    pub error: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} ({:?}) refused {}: {}",
            self.to,
            self.to_lib,
            raft_proto::describe_message(&self.msg),
            self.error
        )
    }
}

/// One node of a [`MixedCluster`]: its library-specific half and what it applied.
pub struct MixedNode {
    /// The node's id.
    pub id: u64,
    /// The library-specific node and storage.
    pub raw: Raw,
    /// Every committed normal entry with a payload it applied, in order.
    pub applied: Vec<EntrySummary>,
    /// The index of the last entry it applied (of any kind).
    pub applied_index: u64,
    /// The read states (`(index, request context)`) its Readys carried (raft-rs nodes only; ours
    /// have no read-index support yet).
    pub read_states: Vec<(u64, Vec<u8>)>,
}

fn logger() -> slog::Logger {
    use slog::Drain as _;
    if std::env::var_os("INTEROP_LOG").is_some() {
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        let drain = slog_term::FullFormat::new(decorator).build().fuse();
        slog::Logger::root(drain, slog::o!())
    } else {
        slog::Logger::root(slog::Discard, slog::o!())
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

fn role_of(role: raft::StateRole) -> StateRole {
    match role {
        raft::StateRole::Follower => StateRole::Follower,
        raft::StateRole::Candidate => StateRole::Candidate,
        raft::StateRole::Leader => StateRole::Leader,
        raft::StateRole::PreCandidate => StateRole::PreCandidate,
    }
}

impl MixedNode {
    fn start(id: u64, lib: Lib, voters: &[u64], config: &NodeConfig) -> MixedNode {
        let logger = logger();
        let raw = match lib {
            Lib::Ours => {
                let storage = storage_mem::MemStorage::new_with_conf_state(
                    storage_mem::conf_state(voters.to_vec(), vec![]),
                );
                let raw = raft_core::RawNode::new(&config.ours(id), storage.clone(), &logger)
                    .expect("valid config for our node");
                Raw::Ours {
                    raw: Box::new(raw),
                    storage,
                }
            }
            Lib::RaftRs => {
                let storage =
                    raft::storage::MemStorage::new_with_conf_state((voters.to_vec(), vec![]));
                let raw = raft::RawNode::new(&config.raft_rs(id), storage.clone(), &logger)
                    .expect("valid config for the raft-rs node");
                Raw::RaftRs {
                    raw: Box::new(raw),
                    storage,
                }
            }
        };
        MixedNode {
            id,
            raw,
            applied: Vec::new(),
            applied_index: 0,
            read_states: Vec::new(),
        }
    }

    /// The node's library.
    pub fn lib(&self) -> Lib {
        match self.raw {
            Raw::Ours { .. } => Lib::Ours,
            Raw::RaftRs { .. } => Lib::RaftRs,
        }
    }

    /// The node's role.
    pub fn role(&self) -> StateRole {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.state,
            Raw::RaftRs { raw, .. } => role_of(raw.raft.state),
        }
    }

    /// The node's current term.
    pub fn term(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.term,
            Raw::RaftRs { raw, .. } => raw.raft.term,
        }
    }

    /// The leader the node follows (0 for none).
    pub fn leader_id(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.leader_id,
            Raw::RaftRs { raw, .. } => raw.raft.leader_id,
        }
    }

    /// The node's commit index.
    pub fn commit(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.raft_log.committed,
            Raw::RaftRs { raw, .. } => raw.raft.raft_log.committed,
        }
    }

    /// The node's last log index.
    pub fn last_index(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.raft_log.last_index(),
            Raw::RaftRs { raw, .. } => raw.raft.raft_log.last_index(),
        }
    }

    /// The persisted hard state as `(term, vote, commit)`.
    pub fn hard_state(&self) -> (u64, u64, u64) {
        match &self.raw {
            Raw::Ours { storage, .. } => {
                let hs = *storage.rl().hard_state();
                (hs.term, hs.vote, hs.commit)
            }
            Raw::RaftRs { storage, .. } => {
                let core = storage.rl();
                let hs = core.hard_state();
                (hs.term, hs.vote, hs.commit)
            }
        }
    }

    /// The persisted log (every entry the storage holds). The harness persists each Ready as it
    /// handles it, so this is the node's whole log whenever the cluster is quiescent.
    pub fn log(&self) -> Vec<EntrySummary> {
        match &self.raw {
            Raw::Ours { storage, .. } => {
                let (first, last) = (
                    storage.first_index().expect("first index"),
                    storage.last_index().expect("last index"),
                );
                storage
                    .entries(first, last + 1, raft_core::NO_LIMIT)
                    .expect("read our log")
                    .iter()
                    .map(EntrySummary::of_ours)
                    .collect()
            }
            Raw::RaftRs { storage, .. } => {
                let (first, last) = (
                    storage.first_index().expect("first index"),
                    storage.last_index().expect("last index"),
                );
                storage
                    .entries(
                        first,
                        last + 1,
                        raft::NO_LIMIT,
                        raft::GetEntriesContext::empty(false),
                    )
                    .expect("read the raft-rs log")
                    .iter()
                    .map(EntrySummary::of_theirs)
                    .collect()
            }
        }
    }

    /// The payloads the node applied, in order.
    pub fn applied_data(&self) -> Vec<Vec<u8>> {
        self.applied.iter().map(|e| e.data.clone()).collect()
    }

    /// Ticks the node once.
    pub fn tick(&mut self) {
        let id = self.id;
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw.tick(),
            Raw::RaftRs { raw, .. } => {
                guard(id, Lib::RaftRs, "tick", || {
                    raw.tick();
                });
            }
        }
    }

    /// Starts a campaign (a pre-vote round first if configured). The error, if any, as text.
    pub fn campaign(&mut self) -> Result<(), String> {
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw.campaign().map_err(|e| e.to_string()),
            Raw::RaftRs { raw, .. } => raw.campaign().map_err(|e| e.to_string()),
        }
    }

    /// Proposes `data`; a follower forwards it to its leader. The error, if any, as text.
    pub fn propose(&mut self, data: &[u8]) -> Result<(), String> {
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw
                .propose(vec![], data.to_vec())
                .map_err(|e| e.to_string()),
            Raw::RaftRs { raw, .. } => raw
                .propose(vec![], data.to_vec())
                .map_err(|e| e.to_string()),
        }
    }

    /// Decodes `env` with this node's library and steps it. A decode failure panics (the wire
    /// formats disagree); a refusal is returned as text.
    fn step(&mut self, env: &Envelope) -> Result<(), String> {
        let id = self.id;
        match &mut self.raw {
            Raw::Ours { raw, .. } => {
                let m = ours::Message::decode(&env.bytes[..]).unwrap_or_else(|e| {
                    panic!(
                        "node {id} (ours) cannot decode a message from node {} ({:?}): {e}",
                        env.from, env.from_lib
                    )
                });
                raw.step(m).map_err(|e| e.to_string())
            }
            Raw::RaftRs { raw, .. } => {
                let m = theirs::Message::parse_from_bytes(&env.bytes).unwrap_or_else(|e| {
                    panic!(
                        "node {id} (raft-rs) cannot decode a message from node {} ({:?}): {e}",
                        env.from, env.from_lib
                    )
                });
                let what = format!("step({})", raft_proto::describe_message(&env.decode()));
                guard(id, Lib::RaftRs, &what, || raw.step(m)).map_err(|e| e.to_string())
            }
        }
    }

    /// Handles one Ready if there is one, returning the messages to send, encoded.
    pub fn handle_ready(&mut self) -> Vec<Envelope> {
        match self.lib() {
            Lib::Ours => self.handle_ready_ours(),
            Lib::RaftRs => self.handle_ready_raft_rs(),
        }
    }

    fn handle_ready_ours(&mut self) -> Vec<Envelope> {
        let Raw::Ours { raw, storage } = &mut self.raw else {
            unreachable!("called for our nodes only")
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let id = raw.raft.id;
        let mut rd = raw.ready().expect("our ready");
        let mut out = rd.take_messages();
        assert!(
            rd.snapshot() == &ours::Snapshot::default(),
            "node {id} (ours) produced a snapshot; this harness does not compact logs"
        );
        {
            let mut store = storage.wl();
            store.append(rd.entries()).expect("persist our entries");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let mut committed: Vec<EntrySummary> = rd
            .take_committed_entries()
            .iter()
            .map(EntrySummary::of_ours)
            .collect();
        let mut light = raw.advance(rd).expect("our advance");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        committed.extend(
            light
                .take_committed_entries()
                .iter()
                .map(EntrySummary::of_ours),
        );
        raw.advance_apply();
        self.apply(committed);
        out.into_iter()
            .map(|m| Envelope {
                from: m.from,
                to: m.to,
                from_lib: Lib::Ours,
                bytes: m.encode_to_vec(),
            })
            .collect()
    }

    /// The order of raft-rs's `examples/five_mem_node`: messages, snapshot, committed entries,
    /// entries + hard state, persisted messages, advance, then the LightReady's commit index,
    /// messages and committed entries, and `advance_apply`.
    fn handle_ready_raft_rs(&mut self) -> Vec<Envelope> {
        let id = self.id;
        let Raw::RaftRs { raw, storage } = &mut self.raw else {
            unreachable!("called for raft-rs nodes only")
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let (out, committed, read_states) = guard(id, Lib::RaftRs, "handling a Ready", || {
            let mut rd = raw.ready();
            let mut out = rd.take_messages();
            let read_states: Vec<(u64, Vec<u8>)> = rd
                .take_read_states()
                .into_iter()
                .map(|rs| (rs.index, rs.request_ctx))
                .collect();
            if *rd.snapshot() != theirs::Snapshot::default() {
                storage
                    .wl()
                    .apply_snapshot(rd.snapshot().clone())
                    .expect("raft-rs apply snapshot");
            }
            let mut committed: Vec<EntrySummary> = rd
                .take_committed_entries()
                .iter()
                .map(EntrySummary::of_theirs)
                .collect();
            storage
                .wl()
                .append(rd.entries())
                .expect("persist raft-rs entries");
            if let Some(hs) = rd.hs() {
                storage.wl().set_hardstate(hs.clone());
            }
            out.extend(rd.take_persisted_messages());
            let mut light = raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                storage.wl().mut_hard_state().set_commit(commit);
            }
            out.extend(light.take_messages());
            committed.extend(
                light
                    .take_committed_entries()
                    .iter()
                    .map(EntrySummary::of_theirs),
            );
            raw.advance_apply();
            (out, committed, read_states)
        });
        self.read_states.extend(read_states);
        self.apply(committed);
        out.into_iter()
            .map(|m| Envelope {
                from: m.from,
                to: m.to,
                from_lib: Lib::RaftRs,
                bytes: m.write_to_bytes().expect("raft-rs encodes its message"),
            })
            .collect()
    }

    fn apply(&mut self, entries: Vec<EntrySummary>) {
        for e in entries {
            assert_eq!(
                e.index,
                self.applied_index + 1,
                "node {} ({:?}) applied out of order",
                self.id,
                self.lib()
            );
            self.applied_index = e.index;
            if e.entry_type == ours::EntryType::EntryNormal as i32 && !e.data.is_empty() {
                self.applied.push(e);
            }
        }
    }
}

/// Runs `f`; if it panics, panics again naming the node and what it was doing.
fn guard<R>(id: u64, lib: Lib, what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => panic!(
            "node {id} ({lib:?}) panicked while {what}: {}",
            panic_text(payload.as_ref())
        ),
    }
}

/// A Raft group whose nodes run either library, connected by a synchronous in-order network that
/// carries protobuf bytes.
pub struct MixedCluster {
    /// The nodes, by id (`1..=n`).
    pub nodes: BTreeMap<u64, MixedNode>,
    cut: HashSet<(u64, u64)>,
    ignored: HashSet<i32>,
    /// Every message delivered so far, in order, decoded into our wire type.
    pub delivered: Vec<Delivered>,
    /// Every message a receiver refused with an error.
    pub refusals: Vec<Refusal>,
}

impl MixedCluster {
    /// A new group of voters `1..=libs.len()`; node `i` runs `libs[i - 1]` configured with
    /// `config(i)`.
    pub fn new(libs: &[Lib], config: impl Fn(u64) -> NodeConfig) -> MixedCluster {
        let voters: Vec<u64> = (1..=libs.len() as u64).collect();
        let nodes = voters
            .iter()
            .zip(libs)
            .map(|(&id, &lib)| (id, MixedNode::start(id, lib, &voters, &config(id))))
            .collect();
        MixedCluster {
            nodes,
            cut: HashSet::new(),
            ignored: HashSet::new(),
            delivered: Vec::new(),
            refusals: Vec::new(),
        }
    }

    /// The node with `id`.
    pub fn node(&self, id: u64) -> &MixedNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The node with `id`, mutably.
    pub fn node_mut(&mut self, id: u64) -> &mut MixedNode {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The library of node `id`.
    pub fn lib(&self, id: u64) -> Lib {
        self.node(id).lib()
    }

    /// The ids of all nodes.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts every link of `id`.
    pub fn isolate(&mut self, id: u64) {
        for other in self.ids().into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    /// Drops every message of `msg_type` until [`recover`](Self::recover).
    pub fn ignore(&mut self, msg_type: ours::MessageType) {
        self.ignored.insert(msg_type as i32);
    }

    /// Heals every cut link and stops ignoring message types.
    pub fn recover(&mut self) {
        self.cut.clear();
        self.ignored.clear();
    }

    /// Delivers `msgs` and everything they cause, until no node has anything more to do.
    pub fn send(&mut self, msgs: Vec<Envelope>) {
        let mut queue: VecDeque<Envelope> = msgs.into();
        loop {
            while let Some(env) = queue.pop_front() {
                let msg = env.decode();
                if self.cut.contains(&(env.from, env.to))
                    || self.ignored.contains(&msg.msg_type)
                    || !self.nodes.contains_key(&env.to)
                {
                    continue;
                }
                let node = self.nodes.get_mut(&env.to).expect("checked above");
                self.delivered.push(Delivered {
                    from_lib: env.from_lib,
                    to_lib: node.lib(),
                    msg: msg.clone(),
                    receiver_last_index: node.last_index(),
                    receiver_commit: node.commit(),
                });
                if let Err(error) = node.step(&env) {
                    self.refusals.push(Refusal {
                        to: env.to,
                        to_lib: node.lib(),
                        msg,
                        error,
                    });
                }
                queue.extend(node.handle_ready());
            }
            for node in self.nodes.values_mut() {
                queue.extend(node.handle_ready());
            }
            if queue.is_empty() {
                break;
            }
        }
    }

    /// Handles every pending Ready and delivers the results to quiescence.
    pub fn stabilize(&mut self) {
        self.send(Vec::new());
    }

    /// Node `id` campaigns; the election runs to completion.
    pub fn campaign(&mut self, id: u64) {
        let result = self.node_mut(id).campaign();
        assert!(result.is_ok(), "node {id} could not campaign: {result:?}");
        self.stabilize();
    }

    /// Proposes `data` at node `id` and runs to quiescence. Returns the proposal's result.
    pub fn propose(&mut self, id: u64, data: &[u8]) -> Result<(), String> {
        let result = self.node_mut(id).propose(data);
        self.stabilize();
        result
    }

    /// Ticks node `id` once and runs to quiescence.
    pub fn tick(&mut self, id: u64) {
        self.node_mut(id).tick();
        self.stabilize();
    }

    /// Ticks every node once (in id order) and runs to quiescence.
    pub fn tick_all(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick();
        }
        self.stabilize();
    }

    /// Ticks every node until `done` holds, at most `max_ticks` times. Returns how many ticks it
    /// took, or `None` if `done` never held.
    pub fn tick_all_until(
        &mut self,
        max_ticks: usize,
        mut done: impl FnMut(&MixedCluster) -> bool,
    ) -> Option<usize> {
        for ticks in 0..=max_ticks {
            if done(self) {
                return Some(ticks);
            }
            if ticks < max_ticks {
                self.tick_all();
            }
        }
        None
    }

    /// The node that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.role() == StateRole::Leader)
            .max_by_key(|n| n.term())
            .map(|n| n.id)
    }

    /// Panics, showing both logs, unless nodes `ids` hold identical logs (same indexes, terms, types
    /// and payloads).
    pub fn assert_logs_identical(&self, ids: &[u64]) {
        let Some((&first, rest)) = ids.split_first() else {
            return;
        };
        let reference = self.node(first).log();
        for &id in rest {
            let log = self.node(id).log();
            assert!(
                log == reference,
                "logs differ: node {first} ({:?}) has\n{}\nnode {id} ({:?}) has\n{}",
                self.lib(first),
                describe_log(&reference),
                self.lib(id),
                describe_log(&log)
            );
        }
    }

    /// Panics unless nodes `ids` applied identical normal entries (same indexes, terms, payloads)
    /// and have the same commit index.
    pub fn assert_applied_identical(&self, ids: &[u64]) {
        let Some((&first, rest)) = ids.split_first() else {
            return;
        };
        let reference = &self.node(first).applied;
        for &id in rest {
            let node = self.node(id);
            assert_eq!(
                &node.applied,
                reference,
                "node {id} ({:?}) applied different entries than node {first} ({:?})",
                node.lib(),
                self.lib(first)
            );
            assert_eq!(
                node.commit(),
                self.node(first).commit(),
                "node {id} ({:?}) and node {first} ({:?}) disagree on the commit index",
                node.lib(),
                self.lib(first)
            );
        }
    }

    /// The delivered messages of `msg_type`, in order.
    pub fn delivered_of(&self, msg_type: ours::MessageType) -> Vec<&Delivered> {
        self.delivered
            .iter()
            .filter(|d| d.msg.msg_type == msg_type as i32)
            .collect()
    }

    /// Every delivered message described on one line each (for failure messages).
    pub fn transcript(&self) -> String {
        self.delivered
            .iter()
            .map(|d| {
                format!(
                    "{:?}->{:?} {}",
                    d.from_lib,
                    d.to_lib,
                    raft_proto::describe_message(&d.msg)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One entry per line: `index/term type data`.
pub fn describe_log(log: &[EntrySummary]) -> String {
    log.iter()
        .map(|e| {
            format!(
                "  {}/{} type={} {:?}",
                e.index,
                e.term,
                e.entry_type,
                Bytes::copy_from_slice(&e.data)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
