//! The harness behind the fuzz targets in `fuzz_targets/`, kept in a library so that the targets
//! stay one line each and the corpus generator (`examples/gen_corpus.rs`) and the corpus replay
//! test (`tests/corpus.rs`) run exactly the same code on a stable toolchain.
//!
//! Everything here panics on a finding: libFuzzer reports a panic as a crash and saves the input.
//! The checks after every input are those of `raft-core/tests/step_never_panics.rs`: `step` never
//! panics, a refused message (other than a dropped proposal) leaves the node's observable state as
//! it was, the log's invariants hold (commit <= last index, applied <= commit, persisted <= last
//! index, log terms never decrease and never exceed the node's term), the node's term never
//! decreases, and every Ready can be persisted into `MemStorage` and advanced.

#![forbid(unsafe_code)]

use prost::Message as _;
use raft_core::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, Message, MessageType,
};
use raft_core::raft::decode_conf_change;
use raft_core::tracker::Progress;
use raft_core::{Config, Error, RawNode, SnapshotStatus, StateRole, Storage, INVALID_ID};
use std::collections::{BTreeMap, VecDeque};
use storage_mem::{conf_state, MemStorage};

/// A logger that drops everything.
pub fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Whether `RAFT_FUZZ_TRACE` is set: the targets then print every operation and delivered
/// message to stderr (for reading a crash input: `RAFT_FUZZ_TRACE=1 cargo fuzz run <target> <file>`).
pub fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("RAFT_FUZZ_TRACE").is_some())
}

// ---------------------------------------------------------------------------------------------
// One node and the application around it.
// ---------------------------------------------------------------------------------------------

/// One node with its storage and the index of the last entry it applied.
pub struct Peer {
    /// The node.
    pub raw: RawNode<MemStorage>,
    /// Its storage (shared with the node).
    pub store: MemStorage,
    /// The last index applied by the (empty) state machine.
    pub applied: u64,
}

impl Peer {
    /// A node over `store`.
    pub fn new(config: &Config, store: MemStorage) -> Peer {
        let raw = RawNode::new(config, store.clone(), &logger()).expect("fixture config is valid");
        let applied = raw.raft.raft_log.applied;
        Peer {
            raw,
            store,
            applied,
        }
    }

    /// The node's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Handles one Ready (if any) as an application does: persist snapshot, entries and hard
    /// state, apply committed entries (conf changes included), advance. Returns the messages to
    /// send. Panics when the core hands out something an application cannot persist or apply.
    pub fn handle_ready(&mut self) -> Vec<Message> {
        if !self.raw.has_ready() {
            return Vec::new();
        }
        let id = self.id();
        let mut rd = self
            .raw
            .ready()
            .unwrap_or_else(|e| panic!("node {id}: ready() failed over a healthy storage: {e}"));
        let mut out = rd.take_messages();
        {
            let mut store = self.store.wl();
            if !rd.snapshot().is_empty() {
                store
                    .apply_snapshot(rd.snapshot().clone())
                    .unwrap_or_else(|e| {
                        panic!("node {id}: the Ready's snapshot cannot be stored: {e}")
                    });
                self.applied = rd.snapshot().metadata.as_ref().map_or(0, |m| m.index);
            }
            store.append(rd.entries()).unwrap_or_else(|e| {
                panic!(
                    "node {id}: the Ready's entries cannot be stored ({e}): {:?}",
                    rd.entries()
                )
            });
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(committed);
        let mut light = self
            .raw
            .advance(rd)
            .unwrap_or_else(|e| panic!("node {id}: advance() failed: {e}"));
        if let Some(commit) = light.commit_index() {
            self.store.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed);
        self.raw.advance_apply();
        let store = self.store.rl();
        let last = self.store.last_index().unwrap_or(0);
        assert!(
            store.hard_state().commit <= last,
            "node {id}: the stored hard state commits {} beyond the stored log's end {last}",
            store.hard_state().commit
        );
        out
    }

    /// Applies committed entries, in order and once each; conf changes go to the node.
    fn apply(&mut self, entries: Vec<Entry>) {
        let id = self.id();
        let persisted = self.store.last_index().unwrap_or(0);
        for e in entries {
            assert_eq!(
                e.index,
                self.applied + 1,
                "node {id} was handed entry {} to apply after applying {}",
                e.index,
                self.applied
            );
            assert!(
                e.index <= persisted,
                "node {id} was handed entry {} to apply before it was stored (storage ends at \
                 {persisted})",
                e.index
            );
            self.applied = e.index;
            if let Some(Ok(cc)) = decode_conf_change(&e) {
                // A refused change is skipped by every node alike.
                let _ = self.raw.apply_conf_change(&cc);
            }
        }
    }

    /// Snapshots storage at the applied index and compacts the log behind it (keeping one entry),
    /// as an application does from time to time.
    pub fn compact(&mut self) {
        let index = self.applied;
        let conf = self.raw.raft.prs.conf().to_conf_state();
        let mut store = self.store.wl();
        if index == 0
            || index > store.hard_state().commit
            || index <= store.snapshot_metadata().index
        {
            return;
        }
        store
            .create_snapshot(index, Some(conf), bytes::Bytes::new())
            .expect("snapshot at the applied index");
        store
            .compact(index)
            .expect("compaction behind the snapshot");
    }
}

/// A deep copy of a storage (clones of a `MemStorage` share their data).
pub fn fork_store(store: &MemStorage) -> MemStorage {
    let copy = MemStorage::new();
    *copy.wl() = store.rl().clone();
    copy
}

// ---------------------------------------------------------------------------------------------
// What a refused message must not change, and the invariants checked after every input.
// ---------------------------------------------------------------------------------------------

/// The observable state of a node.
#[derive(Debug, PartialEq)]
pub struct Observed {
    term: u64,
    vote: u64,
    state: StateRole,
    leader_id: u64,
    committed: u64,
    last_index: u64,
    last_term: u64,
    persisted: u64,
    applied: u64,
    msgs: usize,
    msgs_after_append: usize,
    progress: Vec<(u64, Progress)>,
}

impl Observed {
    /// Observes `p`.
    pub fn of(p: &Peer) -> Observed {
        let r = &p.raw.raft;
        Observed {
            term: r.term,
            vote: r.vote,
            state: r.state,
            leader_id: r.leader_id,
            committed: r.raft_log.committed,
            last_index: r.raft_log.last_index(),
            last_term: r.raft_log.last_term(),
            persisted: r.raft_log.persisted,
            applied: r.raft_log.applied,
            msgs: r.msgs.len(),
            msgs_after_append: r.msgs_after_append.len(),
            progress: r.prs.iter().map(|(id, pr)| (id, pr.clone())).collect(),
        }
    }
}

/// The log invariants of `p` (§5.3, §5.4), and that its term did not go below `min_term`.
pub fn check_invariants(p: &Peer, min_term: u64, after: &str) {
    let r = &p.raw.raft;
    let log = &r.raft_log;
    let id = r.id;
    let last = log.last_index();
    assert!(
        r.term >= min_term,
        "node {id} after {after}: its term went down from {min_term} to {}",
        r.term
    );
    assert!(
        log.committed <= last,
        "node {id} after {after}: committed {} beyond last index {last}",
        log.committed
    );
    assert!(
        log.applied <= log.committed && log.applying <= log.committed,
        "node {id} after {after}: applied {} / applying {} beyond committed {}",
        log.applied,
        log.applying,
        log.committed
    );
    assert!(
        log.persisted <= last,
        "node {id} after {after}: persisted {} beyond last index {last}",
        log.persisted
    );
    let first = log.first_index();
    assert!(
        last.saturating_sub(first) < 100_000,
        "node {id} after {after}: the log spans {first}..={last}"
    );
    let mut prev = log.term(first - 1).unwrap_or(0);
    for index in first..=last {
        let term = log
            .term(index)
            .unwrap_or_else(|e| panic!("node {id} after {after}: term at {index} unreadable: {e}"));
        assert!(
            term >= prev && term <= r.term,
            "node {id} after {after}: term {term} at index {index} after term {prev}, node term {}",
            r.term
        );
        prev = term;
    }
    if r.state == StateRole::Leader {
        assert_eq!(r.leader_id, id, "node {id} leads but names another leader");
    }
}

/// Steps `m` into `p` and checks that a refusal changed nothing. Returns the step's result.
pub fn step_checked(p: &mut Peer, m: Message) -> raft_core::Result<()> {
    let before = Observed::of(p);
    let min_term = before.term;
    let name = raft_proto::describe_message(&m);
    let result = p.raw.step(m);
    if let Err(e) = &result {
        if *e != Error::ProposalDropped {
            let after = Observed::of(p);
            assert_eq!(
                after,
                before,
                "node {}: step({name}) failed with `{e}` but changed the state",
                p.id()
            );
        }
    }
    check_invariants(p, min_term, &name);
    result
}

// ---------------------------------------------------------------------------------------------
// A tiny cluster over a controllable network.
// ---------------------------------------------------------------------------------------------

/// Check-quorum and pre-vote, the two settings that change the shape of elections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// `Config::check_quorum`.
    pub check_quorum: bool,
    /// `Config::pre_vote`.
    pub pre_vote: bool,
}

impl Flags {
    /// The flags encoded in the low two bits of `b`.
    pub fn from_byte(b: u8) -> Flags {
        Flags {
            check_quorum: b & 1 != 0,
            pre_vote: b & 2 != 0,
        }
    }
}

/// The configuration of node `id` in the fuzzed clusters.
pub fn config(id: u64, flags: Flags) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        // Ticking a follower 10 times ends its leader lease without making it campaign.
        min_election_tick: 15,
        max_election_tick: 20,
        max_inflight_msgs: 4,
        max_size_per_msg: 64,
        check_quorum: flags.check_quorum,
        pre_vote: flags.pre_vote,
        ..Default::default()
    }
}

/// Nodes exchanging messages through a queue the fuzzer controls.
pub struct Cluster {
    /// The nodes by id.
    pub peers: BTreeMap<u64, Peer>,
    /// Messages in flight, in sending order.
    pub queue: VecDeque<Message>,
    /// Nodes whose messages are dropped (both ways) while building fixtures.
    pub isolated: Vec<u64>,
    /// Every message delivered so far (for the corpus generator), if recording.
    pub recorded: Option<Vec<Message>>,
    flags: Flags,
}

impl Cluster {
    /// Voters `voters` and learners `learners`, plus `spare` nodes outside the membership.
    pub fn new(flags: Flags, voters: &[u64], learners: &[u64], spare: &[u64]) -> Cluster {
        let mut peers = BTreeMap::new();
        for &id in voters.iter().chain(learners) {
            let store = MemStorage::new_with_conf_state(conf_state(
                voters.iter().copied(),
                learners.iter().copied(),
            ));
            peers.insert(id, Peer::new(&config(id, flags), store));
        }
        for &id in spare {
            // A spare starts from the bootstrap membership, which does not include it, as the
            // simulator's spares do: a node on an empty storage that joins by replaying the log
            // from index 1 would never learn the bootstrap voters (they are in no log entry),
            // believe itself alone once added, and elect itself.
            let store = MemStorage::new_with_conf_state(conf_state(
                voters.iter().copied(),
                learners.iter().copied(),
            ));
            peers.insert(id, Peer::new(&config(id, flags), store));
        }
        Cluster {
            peers,
            queue: VecDeque::new(),
            isolated: Vec::new(),
            recorded: None,
            flags,
        }
    }

    /// The flags the nodes run with.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Node `id`.
    pub fn peer(&mut self, id: u64) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such node")
    }

    /// Handles node `id`'s Ready and queues what it sends.
    pub fn ready(&mut self, id: u64) {
        if let Some(p) = self.peers.get_mut(&id) {
            let out = p.handle_ready();
            self.queue.extend(out);
        }
    }

    /// Delivers one message (unless its sender or recipient is isolated); returns the result of
    /// the step, if it was delivered.
    pub fn deliver(&mut self, m: Message) -> Option<raft_core::Result<()>> {
        if self.isolated.contains(&m.from) || self.isolated.contains(&m.to) {
            return None;
        }
        if let Some(rec) = &mut self.recorded {
            rec.push(m.clone());
        }
        if tracing() {
            eprintln!("  deliver {}", raft_proto::describe_message(&m));
        }
        let p = self.peers.get_mut(&m.to)?;
        Some(step_checked(p, m))
    }

    /// Delivers messages and handles Readys until nothing is left (or `budget` deliveries).
    pub fn stabilize(&mut self, mut budget: usize) {
        loop {
            while let Some(m) = self.queue.pop_front() {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let to = m.to;
                self.deliver(m);
                self.ready(to);
            }
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                self.ready(id);
            }
            if self.queue.is_empty() {
                return;
            }
        }
    }

    /// Node `id` wins an election (others are ticked past their leader lease first).
    pub fn elect(&mut self, id: u64) {
        // The leader is not ticked: its heartbeats would renew the followers' leases.
        let others: Vec<u64> = self
            .peers
            .iter()
            .filter(|(o, p)| **o != id && p.raw.raft.state != StateRole::Leader)
            .map(|(o, _)| *o)
            .collect();
        for o in others {
            for _ in 0..10 {
                self.peer(o).raw.tick();
            }
        }
        let _ = self.peer(id).raw.campaign();
        self.stabilize(10_000);
        assert_eq!(
            self.peers[&id].raw.raft.state,
            StateRole::Leader,
            "fixture: node {id} did not win"
        );
    }

    /// A proposal on node `id`, delivered to quiescence.
    pub fn propose(&mut self, id: u64, data: &[u8]) {
        let _ = self.peer(id).raw.propose(vec![], data.to_vec());
        self.stabilize(10_000);
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes in every role, for the `step_bytes` target.
// ---------------------------------------------------------------------------------------------

/// The roles a message is stepped into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Node 2, following leader 1 in term 3.
    Follower,
    /// Node 3, restarted, campaigning in term 4 (its vote requests unanswered).
    Candidate,
    /// Node 3, restarted with pre-vote, asking for pre-votes in term 3.
    PreCandidate,
    /// Node 1, leading in term 3 with node 2 replicating and node 3 lagging.
    Leader,
    /// Node 4, a learner following leader 1.
    Learner,
}

/// A cluster of voters 1, 2, 3 and learner 4 through leaders 1 (term 1), 2 (term 2), 1 (term 3),
/// with entries committed in each term, then node 3 cut off while node 1 commits one more.
pub fn history_cluster(flags: Flags) -> Cluster {
    let mut c = Cluster::new(flags, &[1, 2, 3], &[4], &[]);
    c.elect(1);
    c.propose(1, b"a");
    c.propose(1, b"b");
    c.elect(2);
    c.propose(2, b"c");
    c.elect(1);
    c.propose(1, b"d");
    c.isolated.push(3);
    c.propose(1, b"e");
    c.isolated.clear();
    c
}

/// A restarted copy of `p` (over a copy of its storage) with `flags`, which then campaigns.
fn campaigning_copy(p: &Peer, flags: Flags) -> Peer {
    let mut cfg = config(p.id(), flags);
    cfg.applied = p.applied;
    let mut copy = Peer::new(&cfg, fork_store(&p.store));
    copy.applied = p.applied;
    let _ = copy.raw.campaign();
    copy
}

/// One node in each [`Role`], built from a real cluster run.
pub fn role_fixtures(flags: Flags) -> Vec<(Role, Peer)> {
    let mut c = history_cluster(flags);
    let lagging = c.peers.remove(&3).expect("node 3");
    let candidate = campaigning_copy(
        &lagging,
        Flags {
            pre_vote: false,
            ..flags
        },
    );
    let pre_candidate = campaigning_copy(
        &lagging,
        Flags {
            pre_vote: true,
            ..flags
        },
    );
    vec![
        (Role::Follower, c.peers.remove(&2).expect("node 2")),
        (Role::Candidate, candidate),
        (Role::PreCandidate, pre_candidate),
        (Role::Leader, c.peers.remove(&1).expect("node 1")),
        (Role::Learner, c.peers.remove(&4).expect("node 4")),
    ]
}

/// The `step_bytes` target: byte 0 selects the flags, the rest is a protobuf `Message`, stepped
/// into a node in every role, followed by two rounds of the Ready cycle.
pub fn step_bytes(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(m) = Message::decode(rest) else {
        return;
    };
    for (role, mut p) in role_fixtures(Flags::from_byte(flags)) {
        let term = p.raw.raft.term;
        check_invariants(&p, term, &format!("building the {role:?} fixture"));
        let _ = step_checked(&mut p, m.clone());
        let term = p.raw.raft.term;
        p.handle_ready();
        p.handle_ready();
        check_invariants(&p, term, &format!("{role:?}: the Ready cycle"));
    }
}

// ---------------------------------------------------------------------------------------------
// The `step_sequence` target: bytes as operations on a 3-node cluster.
// ---------------------------------------------------------------------------------------------

/// Reads the fuzzer's bytes; past the end every read is 0.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Whether every byte was read.
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }

    /// A small signed offset in -2..=2.
    pub fn delta(&mut self) -> i64 {
        i64::from(self.u8() % 5) - 2
    }
}

/// The operations of `step_sequence`, one byte each (modulo their count) followed by operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `node`: one tick.
    Tick = 0,
    /// `node`: handle its Ready, queue its messages.
    Ready,
    /// `slot`: deliver the queued message at `slot % len`.
    Deliver,
    /// `slot`: drop a queued message.
    Drop,
    /// `slot`: deliver a copy of a queued message, keeping it queued.
    Duplicate,
    /// `node len bytes`: propose.
    Propose,
    /// `node`: read_index.
    ReadIndex,
    /// `node kind`: propose a conf change.
    ConfChange,
    /// `node`: campaign.
    Campaign,
    /// `node target`: transfer leadership.
    Transfer,
    /// `node`: snapshot and compact its storage.
    Compact,
    /// `slot mutation...`: deliver a mutated copy of a queued message (forged input).
    Mutate,
    /// `node len bytes`: decode bytes as a message and step it into `node` (forged input).
    Raw,
    /// `node target kind`: report_unreachable / report_snapshot(Finish|Failure).
    Report,
    /// Deliver and handle Readys until quiet (bounded).
    Stabilize,
    /// `node n`: tick `n % 32` times.
    Ticks,
}

const OPS: [Op; 16] = [
    Op::Tick,
    Op::Ready,
    Op::Deliver,
    Op::Drop,
    Op::Duplicate,
    Op::Propose,
    Op::ReadIndex,
    Op::ConfChange,
    Op::Campaign,
    Op::Transfer,
    Op::Compact,
    Op::Mutate,
    Op::Raw,
    Op::Report,
    Op::Stabilize,
    Op::Ticks,
];

impl Op {
    /// The operation byte `b` stands for.
    pub fn from_byte(b: u8) -> Op {
        OPS[usize::from(b) % OPS.len()]
    }
}

/// The node ids of the `step_sequence` cluster: voters 1, 2, 3 and node 4, not yet a member.
pub const NODES: [u64; 4] = [1, 2, 3, 4];

fn pick_node(r: &mut Reader) -> u64 {
    NODES[usize::from(r.u8()) % NODES.len()]
}

/// Ids a mutation may put in `from` / `to`.
const IDS: [u64; 7] = [0, 1, 2, 3, 4, 99, u64::MAX];

fn tweak(v: u64, r: &mut Reader) -> u64 {
    match r.u8() % 6 {
        0 => v.saturating_add_signed(r.delta()),
        1 => 0,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => v.saturating_add(1 << (r.u8() % 64)),
        _ => v.saturating_sub(1),
    }
}

/// Mutates one field of `m` (or its entries or snapshot) as the bytes say.
pub fn mutate(m: &mut Message, r: &mut Reader) {
    match r.u8() % 16 {
        0 => m.term = tweak(m.term, r),
        1 => m.index = tweak(m.index, r),
        2 => m.log_term = tweak(m.log_term, r),
        3 => m.commit = tweak(m.commit, r),
        4 => m.reject_hint = tweak(m.reject_hint, r),
        5 => m.reject = !m.reject,
        6 => m.msg_type = i32::from(r.u8() % 21) - 1,
        7 => core::mem::swap(&mut m.from, &mut m.to),
        8 => m.from = IDS[usize::from(r.u8()) % IDS.len()],
        9 => m.to = IDS[usize::from(r.u8()) % IDS.len()],
        10 => {
            // Entries dropped, duplicated or reordered.
            let n = m.entries.len();
            if n > 0 {
                let i = usize::from(r.u8()) % n;
                match r.u8() % 4 {
                    0 => {
                        m.entries.remove(i);
                    }
                    1 => {
                        let e = m.entries[i].clone();
                        m.entries.insert(i, e);
                    }
                    2 => m.entries.swap(i, usize::from(r.u8()) % n),
                    _ => m.entries.truncate(i),
                }
            }
        }
        11 => {
            let n = m.entries.len();
            if n > 0 {
                let i = usize::from(r.u8()) % n;
                let e = &mut m.entries[i];
                if r.u8().is_multiple_of(2) {
                    e.term = tweak(e.term, r);
                } else {
                    e.index = tweak(e.index, r);
                }
            }
        }
        12 => {
            // Snapshot metadata mangled.
            let s = m.snapshot.get_or_insert_with(Default::default);
            match r.u8() % 6 {
                0 => s.metadata = None,
                1 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.index = tweak(meta.index, r);
                }
                2 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.term = tweak(meta.term, r);
                }
                3 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.conf_state = None;
                }
                4 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    let cs = meta.conf_state.get_or_insert_with(Default::default);
                    cs.voters.push(IDS[usize::from(r.u8()) % IDS.len()]);
                    cs.learners.push(IDS[usize::from(r.u8()) % IDS.len()]);
                }
                _ => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    let cs = meta.conf_state.get_or_insert_with(Default::default);
                    cs.voters_outgoing = cs.voters.clone();
                    cs.auto_leave = !cs.auto_leave;
                }
            }
        }
        13 => m.commit_term = tweak(m.commit_term, r),
        14 => m.request_snapshot = tweak(m.request_snapshot, r),
        _ => {
            let n = usize::from(r.u8() % 20);
            m.context = bytes::Bytes::copy_from_slice(r.bytes(n));
        }
    }
}

/// The conf changes the `ConfChange` operation proposes.
fn conf_change_entry(kind: u8) -> Entry {
    use raft_core::eraftpb::EntryType;
    let single = |node_id, change_type: ConfChangeType| ConfChangeSingle {
        change_type: change_type as i32,
        node_id,
    };
    let v1 = |node_id, change_type: ConfChangeType| ConfChange {
        change_type: change_type as i32,
        node_id,
        ..Default::default()
    };
    let (entry_type, data) = match kind % 7 {
        0 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::AddLearnerNode).encode_to_vec(),
        ),
        1 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::AddNode).encode_to_vec(),
        ),
        2 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::RemoveNode).encode_to_vec(),
        ),
        3 => (
            EntryType::EntryConfChange,
            v1(3, ConfChangeType::RemoveNode).encode_to_vec(),
        ),
        4 => (
            // Enter a joint configuration: promote 4, demote 3.
            EntryType::EntryConfChangeV2,
            ConfChangeV2 {
                changes: vec![
                    single(4, ConfChangeType::AddNode),
                    single(3, ConfChangeType::AddLearnerNode),
                ],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        5 => (
            // Leave the joint configuration.
            EntryType::EntryConfChangeV2,
            ConfChangeV2::default().encode_to_vec(),
        ),
        _ => (
            EntryType::EntryConfChangeV2,
            ConfChangeV2 {
                changes: vec![single(3, ConfChangeType::AddNode)],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    };
    Entry {
        entry_type: entry_type as i32,
        data: data.into(),
        ..Default::default()
    }
}

/// The `step_sequence` target. Byte 0 selects the flags; the rest is a sequence of [`Op`]s on a
/// cluster of voters 1, 2, 3 and a spare node 4. After every operation every node's invariants
/// are checked; at the end, if no forged message was stepped, so are election safety (one leader
/// per term) and agreement on committed entries (§5.2, §5.4.3).
pub fn step_sequence(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = Flags::from_byte(r.u8());
    let mut c = Cluster::new(flags, &[1, 2, 3], &[], &[4]);
    let mut terms: BTreeMap<u64, u64> = NODES.iter().map(|id| (*id, 0)).collect();
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
    let mut forged = false;
    let mut ops = 0;
    while !r.done() && ops < 2_000 {
        ops += 1;
        let op = Op::from_byte(r.u8());
        if tracing() {
            eprintln!("op {ops}: {op:?}");
        }
        match op {
            Op::Tick => {
                let id = pick_node(&mut r);
                c.peer(id).raw.tick();
            }
            Op::Ticks => {
                let id = pick_node(&mut r);
                for _ in 0..r.u8() % 32 {
                    c.peer(id).raw.tick();
                }
            }
            Op::Ready => {
                let id = pick_node(&mut r);
                c.ready(id);
            }
            Op::Deliver | Op::Drop | Op::Duplicate | Op::Mutate => {
                let slot = usize::from(r.u8());
                if c.queue.is_empty() {
                    continue;
                }
                let slot = slot % c.queue.len();
                let m = match op {
                    Op::Deliver | Op::Drop => c.queue.remove(slot).expect("slot in range"),
                    _ => c.queue[slot].clone(),
                };
                match op {
                    Op::Drop => {}
                    Op::Mutate => {
                        let mut m = m;
                        mutate(&mut m, &mut r);
                        forged = true;
                        c.deliver(m);
                    }
                    _ => {
                        c.deliver(m);
                    }
                }
            }
            Op::Propose => {
                let id = pick_node(&mut r);
                let n = usize::from(r.u8() % 8);
                let data = r.bytes(n).to_vec();
                let _ = c.peer(id).raw.propose(vec![], data);
            }
            Op::ReadIndex => {
                let id = pick_node(&mut r);
                let ctx = vec![r.u8()];
                let _ = c.peer(id).raw.read_index(ctx);
            }
            Op::ConfChange => {
                let id = pick_node(&mut r);
                let e = conf_change_entry(r.u8());
                let p = c.peer(id);
                let _ = p.raw.raft.step(Message {
                    msg_type: MessageType::MsgPropose as i32,
                    from: id,
                    entries: vec![e],
                    ..Default::default()
                });
            }
            Op::Campaign => {
                let id = pick_node(&mut r);
                let _ = c.peer(id).raw.campaign();
            }
            Op::Transfer => {
                let id = pick_node(&mut r);
                let target = pick_node(&mut r);
                c.peer(id).raw.transfer_leader(target);
            }
            Op::Compact => {
                let id = pick_node(&mut r);
                c.peer(id).compact();
            }
            Op::Raw => {
                let id = pick_node(&mut r);
                let n = usize::from(r.u8());
                if let Ok(mut m) = Message::decode(r.bytes(n)) {
                    if m.to == INVALID_ID {
                        m.to = id;
                    }
                    if tracing() {
                        eprintln!("  raw into {id}: {}", raft_proto::describe_message(&m));
                    }
                    forged = true;
                    let p = c.peer(id);
                    let _ = step_checked(p, m);
                }
            }
            Op::Report => {
                let id = pick_node(&mut r);
                let target = pick_node(&mut r);
                let p = c.peer(id);
                match r.u8() % 3 {
                    0 => p.raw.report_unreachable(target),
                    1 => p.raw.report_snapshot(target, SnapshotStatus::Finish),
                    _ => p.raw.report_snapshot(target, SnapshotStatus::Failure),
                }
            }
            Op::Stabilize => c.stabilize(200),
        }
        for id in NODES {
            let p = &c.peers[&id];
            let min = terms[&id];
            check_invariants(p, min, &format!("{op:?} (op {ops})"));
            terms.insert(id, p.raw.raft.term);
            if p.raw.raft.state == StateRole::Leader {
                let prev = *leaders.entry(p.raw.raft.term).or_insert(id);
                assert!(
                    forged || prev == id,
                    "two leaders in term {}: {prev} and {id} (§5.2 election safety)",
                    p.raw.raft.term
                );
            }
        }
    }
    if !forged {
        check_committed_agreement(&c);
    }
}

/// Committed entries agree between every two nodes where both still hold them (§5.4.3).
fn check_committed_agreement(c: &Cluster) {
    let peers: Vec<&Peer> = c.peers.values().collect();
    for (i, a) in peers.iter().enumerate() {
        for b in &peers[i + 1..] {
            let (la, lb) = (&a.raw.raft.raft_log, &b.raw.raft.raft_log);
            let hi = la.committed.min(lb.committed);
            let lo = la.first_index().max(lb.first_index());
            for index in lo..=hi {
                let (ta, tb) = (la.term(index), lb.term(index));
                if let (Ok(ta), Ok(tb)) = (ta, tb) {
                    assert_eq!(
                        ta,
                        tb,
                        "nodes {} and {} both committed index {index} with different terms",
                        a.id(),
                        b.id()
                    );
                }
            }
        }
    }
}
