//! The CI-bounded fuzzer of `RawNode::step` (issue 8; the unbounded one is `fuzz/`, run with
//! `cargo fuzz`). Two harnesses, run by one test that counts the messages they step (at least
//! 100,000 per run):
//!
//! (a) bytes decoded as a protobuf `Message` (random bytes, and encodings of real messages with
//!     bytes flipped, inserted, removed or cut), whatever decodes is stepped into a follower, a
//!     candidate, a pre-candidate, a leader and a learner;
//! (b) a structured fuzzer: a short deterministic simulation of a 3-voter cluster (plus a node
//!     that joins, is promoted and removed) records each node's life (the messages it received,
//!     its ticks, Readys, proposals, reads, conf changes, transfers, compactions); a case replays
//!     one node's life into a fresh node with mutations: fields off by one, zeroed or maxed;
//!     entries dropped, duplicated, reordered or with tweaked terms and indexes; types swapped;
//!     senders and recipients swapped; snapshot metadata mangled; messages dropped, duplicated or
//!     delivered again later.
//!
//! After every step: no panic; a refused message (other than a dropped proposal) changes nothing;
//! commit <= last index, applied <= commit, persisted <= last index, log terms never decrease and
//! never exceed the node's term, the node's term never decreases; and at every Ready of the life
//! (and at the end), and right after every mutated or decoded message, the Ready can be taken,
//! persisted into `MemStorage` and advanced.
//!
//! The run is reproducible: its seed is fixed unless `RAFT_FUZZ_SEED=<u64>` (replay a reported
//! failure) or `RAFT_FUZZ_SEED=random` (explore) says otherwise; `RAFT_FUZZ_SCALE=<n>` multiplies
//! the number of cases. A long run:
//! `RAFT_FUZZ_SEED=random RAFT_FUZZ_SCALE=200 cargo test --release -p raft-core --test fuzz_messages`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestError, TestRng, TestRunner};
use prost::Message as _;
use raft_core::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType,
};
use raft_core::raft::decode_conf_change;
use raft_core::tracker::Progress;
use raft_core::{Config, Error, RawNode, SnapshotStatus, StateRole, Storage};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// One node and the application around it.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flags {
    check_quorum: bool,
    pre_vote: bool,
}

const ALL_FLAGS: [Flags; 4] = [
    Flags {
        check_quorum: false,
        pre_vote: false,
    },
    Flags {
        check_quorum: true,
        pre_vote: false,
    },
    Flags {
        check_quorum: false,
        pre_vote: true,
    },
    Flags {
        check_quorum: true,
        pre_vote: true,
    },
];

fn config(id: u64, flags: Flags) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        min_election_tick: 15,
        max_election_tick: 20,
        // Small windows and messages: pauses, several appends per flush, probes.
        max_inflight_msgs: 4,
        max_size_per_msg: 64,
        check_quorum: flags.check_quorum,
        pre_vote: flags.pre_vote,
        ..Default::default()
    }
}

/// One input in a node's life.
#[derive(Debug, Clone)]
enum Event {
    Tick,
    Step(Message),
    Ready,
    Propose(Vec<u8>),
    Campaign,
    ReadIndex(Vec<u8>),
    ProposeConfChange(ConfChange),
    Transfer(u64),
    Compact,
    ReportUnreachable(u64),
    ReportSnapshot(u64, bool),
}

/// Term, vote, role, leader, commit, last index, last term, applied.
type Summary = (u64, u64, StateRole, u64, u64, u64, u64, u64);

/// A node, its storage and the last index its (empty) state machine applied.
struct Peer {
    raw: RawNode<MemStorage>,
    store: MemStorage,
    applied: u64,
}

impl Peer {
    /// Node `id` of a group bootstrapped as voters {1, 2, 3} (node 4 starts outside it).
    fn new(id: u64, flags: Flags) -> Peer {
        let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config(id, flags), store.clone(), &logger).expect("valid config");
        Peer {
            raw,
            store,
            applied: 0,
        }
    }

    fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Handles the Ready (if any) as an application does; the messages to send, or what made the
    /// Ready impossible to persist or advance.
    fn handle_ready(&mut self) -> Result<Vec<Message>, String> {
        if !self.raw.has_ready() {
            return Ok(Vec::new());
        }
        let mut rd = self
            .raw
            .ready()
            .map_err(|e| format!("ready() failed: {e}"))?;
        let mut out = rd.take_messages();
        {
            let mut store = self.store.wl();
            if !rd.snapshot().is_empty() {
                store
                    .apply_snapshot(rd.snapshot().clone())
                    .map_err(|e| format!("the Ready's snapshot cannot be stored: {e}"))?;
                self.applied = rd.snapshot().metadata.as_ref().map_or(0, |m| m.index);
            }
            store.append(rd.entries()).map_err(|e| {
                format!(
                    "the Ready's entries cannot be stored ({e}): {:?}",
                    rd.entries()
                        .iter()
                        .map(|e| (e.index, e.term))
                        .collect::<Vec<_>>()
                )
            })?;
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(committed)?;
        let mut light = self
            .raw
            .advance(rd)
            .map_err(|e| format!("advance() failed: {e}"))?;
        if let Some(commit) = light.commit_index() {
            self.store.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed)?;
        self.raw.advance_apply();
        let commit = self.store.rl().hard_state().commit;
        let last = self.store.last_index().unwrap_or(0);
        if commit > last {
            return Err(format!(
                "the stored hard state commits {commit} beyond the stored log's end {last}"
            ));
        }
        Ok(out)
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let stored = self.store.last_index().unwrap_or(0);
        for e in entries {
            if e.index != self.applied + 1 || e.index > stored {
                return Err(format!(
                    "handed entry {} to apply after {} (storage ends at {stored})",
                    e.index, self.applied
                ));
            }
            self.applied = e.index;
            if let Some(Ok(cc)) = decode_conf_change(&e) {
                // A refused change is skipped by every node alike.
                let _ = self.raw.apply_conf_change(&cc);
            }
        }
        Ok(())
    }

    /// Snapshot at the applied index, log compacted behind it (as an application does).
    fn compact(&mut self) {
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

    /// Performs a non-step event; the messages a Ready sends.
    fn act(&mut self, ev: &Event) -> Result<Vec<Message>, String> {
        match ev {
            Event::Tick => self.raw.tick(),
            Event::Step(_) => unreachable!("steps are performed by the caller"),
            Event::Ready => return self.handle_ready(),
            Event::Propose(data) => {
                let _ = self.raw.propose(vec![], data.clone());
            }
            Event::Campaign => {
                let _ = self.raw.campaign();
            }
            Event::ReadIndex(ctx) => {
                let _ = self.raw.read_index(ctx.clone());
            }
            Event::ProposeConfChange(cc) => {
                let _ = self.raw.propose_conf_change(vec![], cc.clone());
            }
            Event::Transfer(to) => self.raw.transfer_leader(*to),
            Event::Compact => self.compact(),
            Event::ReportUnreachable(id) => self.raw.report_unreachable(*id),
            Event::ReportSnapshot(id, ok) => {
                let status = if *ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(*id, status);
            }
        }
        Ok(Vec::new())
    }

    fn summary(&self) -> Summary {
        let r = &self.raw.raft;
        (
            r.term,
            r.vote,
            r.state,
            r.leader_id,
            r.raft_log.committed,
            r.raft_log.last_index(),
            r.raft_log.last_term(),
            self.applied,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Recording: a short deterministic simulation of a cluster.
// ---------------------------------------------------------------------------------------------

/// A recorded run: each node's life, and each node's state at the end.
struct Trace {
    flags: Flags,
    seed: u64,
    lives: BTreeMap<u64, Vec<Event>>,
    finals: BTreeMap<u64, Summary>,
}

/// The schedule's generator: `rand`'s Xoshiro256++, which gives the same runs on every machine.
struct Rng(Xoshiro256PlusPlus);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

const NODES: [u64; 4] = [1, 2, 3, 4];
const ROUNDS: usize = 6_000;

struct Sim {
    peers: BTreeMap<u64, Peer>,
    lives: BTreeMap<u64, Vec<Event>>,
    net: Vec<Message>,
    rng: Rng,
    /// A node cut off from everyone until the given round.
    isolated: Option<(u64, usize)>,
}

impl Sim {
    fn act(&mut self, id: u64, ev: Event) {
        self.lives.get_mut(&id).expect("node").push(ev.clone());
        let p = self.peers.get_mut(&id).expect("node");
        match ev {
            Event::Step(m) => {
                let _ = p.raw.step(m);
            }
            ev => {
                let out = p.act(&ev).expect("the recording run handles its Readys");
                self.net.extend(out);
            }
        }
    }

    fn leader(&self) -> Option<u64> {
        self.peers
            .values()
            .filter(|p| p.raw.raft.state == StateRole::Leader)
            .max_by_key(|p| p.raw.raft.term)
            .map(Peer::id)
    }

    fn random_node(&mut self) -> u64 {
        NODES[self.rng.below(NODES.len())]
    }
}

fn record(flags: Flags, seed: u64) -> Trace {
    let mut sim = Sim {
        peers: NODES.iter().map(|&id| (id, Peer::new(id, flags))).collect(),
        lives: NODES.iter().map(|&id| (id, Vec::new())).collect(),
        net: Vec::new(),
        rng: Rng(Xoshiro256PlusPlus::seed_from_u64(seed)),
        isolated: None,
    };
    for round in 0..ROUNDS {
        if sim.isolated.is_some_and(|(_, until)| until <= round) {
            sim.isolated = None;
        }
        // Weights per 1000: mostly ticks, deliveries and Readys, so that the cluster makes
        // progress between the rarer disruptions.
        let roll = sim.rng.below(1000);
        match roll {
            0..=199 => {
                let id = sim.random_node();
                sim.act(id, Event::Tick);
            }
            200..=659 => {
                if sim.net.is_empty() {
                    continue;
                }
                // Any message in flight: delivery out of order.
                let i = sim.rng.below(sim.net.len());
                let m = sim.net.swap_remove(i);
                if sim
                    .isolated
                    .is_some_and(|(id, _)| id == m.from || id == m.to)
                {
                    continue;
                }
                if sim.rng.below(40) == 0 {
                    sim.net.push(m.clone());
                }
                if sim.peers.contains_key(&m.to) {
                    sim.act(m.to, Event::Step(m));
                }
            }
            660..=889 => {
                let id = sim.random_node();
                sim.act(id, Event::Ready);
            }
            890..=939 => {
                let id = sim.random_node();
                let data = format!("p{round}").into_bytes();
                sim.act(id, Event::Propose(data));
            }
            940..=959 => {
                let id = sim.random_node();
                let ctx = format!("r{round}").into_bytes();
                sim.act(id, Event::ReadIndex(ctx));
            }
            960..=967 => {
                // Node 4 joins as a learner, is promoted, is removed, and so on.
                if let Some(l) = sim.leader() {
                    let prs = &sim.peers[&l].raw.raft.prs;
                    let change_type = match prs.get(4) {
                        None => ConfChangeType::AddLearnerNode,
                        Some(pr) if pr.is_learner => ConfChangeType::AddNode,
                        Some(_) => ConfChangeType::RemoveNode,
                    };
                    let cc = ConfChange {
                        change_type: change_type as i32,
                        node_id: 4,
                        ..Default::default()
                    };
                    sim.act(l, Event::ProposeConfChange(cc));
                }
            }
            968..=969 => {
                // Asked of any node: a follower forwards it to the leader.
                let (id, to) = (sim.random_node(), sim.random_node());
                sim.act(id, Event::Transfer(to));
            }
            970..=984 => {
                let id = sim.random_node();
                sim.act(id, Event::Compact);
            }
            985..=988 => {
                if sim.isolated.is_none() {
                    let id = sim.random_node();
                    let len = 100 + sim.rng.below(300);
                    sim.isolated = Some((id, round + len));
                }
            }
            989..=990 => {
                if let Some(l) = sim.leader() {
                    let id = sim.random_node();
                    sim.act(l, Event::ReportUnreachable(id));
                }
            }
            991..=992 => {
                if let Some(l) = sim.leader() {
                    let id = sim.random_node();
                    let ok = sim.rng.below(2) == 0;
                    sim.act(l, Event::ReportSnapshot(id, ok));
                }
            }
            993 => {
                let id = sim.random_node();
                sim.act(id, Event::Campaign);
            }
            _ => {
                if !sim.net.is_empty() {
                    let i = sim.rng.below(sim.net.len());
                    sim.net.swap_remove(i);
                }
            }
        }
        // A bounded network: the oldest messages are lost first.
        if sim.net.len() > 150 {
            sim.net.drain(..50);
        }
    }
    let finals = sim.peers.iter().map(|(id, p)| (*id, p.summary())).collect();
    Trace {
        flags,
        seed,
        lives: sim.lives,
        finals,
    }
}

/// The recorded runs: every flag combination, two seeds each.
fn traces() -> &'static [Trace] {
    static TRACES: OnceLock<Vec<Trace>> = OnceLock::new();
    TRACES.get_or_init(|| {
        ALL_FLAGS
            .iter()
            .enumerate()
            .flat_map(|(i, &flags)| {
                [1u64, 2].map(|s| record(flags, 0x5EED_0000 + 16 * i as u64 + s))
            })
            .collect()
    })
}

/// Every message delivered in the recorded runs.
fn recorded_messages() -> &'static [Message] {
    static MSGS: OnceLock<Vec<Message>> = OnceLock::new();
    MSGS.get_or_init(|| {
        traces()
            .iter()
            .flat_map(|t| t.lives.values().flatten())
            .filter_map(|ev| match ev {
                Event::Step(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// The node under test and the checks after every input.
// ---------------------------------------------------------------------------------------------

/// What a refused message must not change.
#[derive(Debug, PartialEq)]
struct Observed {
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
    fn of(p: &Peer) -> Observed {
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

/// Messages stepped by harness (a) and (b), over the whole run.
static STEPPED_BYTES: AtomicU64 = AtomicU64::new(0);
static STEPPED_STRUCTURED: AtomicU64 = AtomicU64::new(0);
/// Of those, how many were refused with an error (proposals dropped aside).
static REFUSED: AtomicU64 = AtomicU64::new(0);

struct Subject {
    peer: Peer,
    /// The node's highest term so far: terms never go down.
    max_term: u64,
}

impl Subject {
    fn new(id: u64, flags: Flags) -> Subject {
        Subject {
            peer: Peer::new(id, flags),
            max_term: 0,
        }
    }

    fn fail(&self, after: &dyn Fn() -> String, what: String) -> TestCaseError {
        let r = &self.peer.raw.raft;
        TestCaseError::fail(format!(
            "node {} ({:?}, term {}) after {}: {what}",
            r.id,
            r.state,
            r.term,
            after()
        ))
    }

    /// §5.3/§5.4 log invariants, cursor order, and that the term did not go down.
    fn check(&mut self, after: &dyn Fn() -> String) -> Result<(), TestCaseError> {
        let r = &self.peer.raw.raft;
        let log = &r.raft_log;
        let last = log.last_index();
        if r.term < self.max_term {
            return Err(self.fail(
                after,
                format!("the term went down from {} to {}", self.max_term, r.term),
            ));
        }
        self.max_term = r.term;
        if log.committed > last || log.persisted > last {
            return Err(self.fail(
                after,
                format!(
                    "committed {} / persisted {} beyond the last index {last}",
                    log.committed, log.persisted
                ),
            ));
        }
        if log.applied > log.committed || log.applying > log.committed {
            return Err(self.fail(
                after,
                format!(
                    "applied {} / applying {} beyond committed {}",
                    log.applied, log.applying, log.committed
                ),
            ));
        }
        let first = log.first_index();
        if last.saturating_sub(first) > 10_000 {
            return Err(self.fail(after, format!("the log spans {first}..={last}")));
        }
        let mut prev = log.term(first - 1).unwrap_or(0);
        for index in first..=last {
            let term = match log.term(index) {
                Ok(t) => t,
                Err(e) => return Err(self.fail(after, format!("term({index}) failed: {e}"))),
            };
            if term < prev || term > r.term {
                return Err(self.fail(
                    after,
                    format!(
                        "term {term} at index {index} follows term {prev} (node term {})",
                        r.term
                    ),
                ));
            }
            prev = term;
        }
        if r.state == StateRole::Leader && r.leader_id != r.id {
            return Err(self.fail(after, format!("leads but names leader {}", r.leader_id)));
        }
        Ok(())
    }

    /// Steps `m`; a refusal must leave the node as it was.
    fn step(&mut self, m: Message, counter: &AtomicU64) -> Result<(), TestCaseError> {
        counter.fetch_add(1, Ordering::Relaxed);
        let before = Observed::of(&self.peer);
        let shown = m.clone();
        let after = || format!("step({})", raft_proto::describe_message(&shown));
        let result = self.peer.raw.step(m);
        if let Err(e) = &result {
            if *e != Error::ProposalDropped {
                REFUSED.fetch_add(1, Ordering::Relaxed);
                let now = Observed::of(&self.peer);
                if now != before {
                    return Err(self.fail(
                        &after,
                        format!("refused with `{e}` but changed the state:\n{before:?}\n{now:?}"),
                    ));
                }
            }
        }
        self.check(&after)
    }

    fn ready(&mut self) -> Result<(), TestCaseError> {
        if let Err(e) = self.peer.handle_ready() {
            return Err(self.fail(&|| "handling a Ready".to_string(), e));
        }
        self.check(&|| "handling a Ready".to_string())
    }

    fn act(&mut self, ev: &Event, counter: &AtomicU64) -> Result<(), TestCaseError> {
        match ev {
            Event::Step(m) => self.step(m.clone(), counter),
            Event::Ready => self.ready(),
            ev => {
                self.peer.act(ev).map_err(TestCaseError::fail)?;
                self.check(&|| format!("{ev:?}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) The structured fuzzer: a recorded life replayed with mutations.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Tweak {
    Plus1,
    Minus1,
    Zero,
    Max,
    MaxMinus1,
    Huge,
}

impl Tweak {
    fn apply(self, v: u64) -> u64 {
        match self {
            Tweak::Plus1 => v.saturating_add(1),
            Tweak::Minus1 => v.saturating_sub(1),
            Tweak::Zero => 0,
            Tweak::Max => u64::MAX,
            Tweak::MaxMinus1 => u64::MAX - 1,
            Tweak::Huge => v.saturating_add(1 << 40),
        }
    }
}

fn tweak() -> impl Strategy<Value = Tweak> {
    prop_oneof![
        3 => Just(Tweak::Plus1),
        3 => Just(Tweak::Minus1),
        1 => Just(Tweak::Zero),
        1 => Just(Tweak::Max),
        1 => Just(Tweak::MaxMinus1),
        1 => Just(Tweak::Huge),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Term,
    Index,
    LogTerm,
    Commit,
    CommitTerm,
    RejectHint,
    RequestSnapshot,
}

#[derive(Debug, Clone, Copy)]
enum SnapMut {
    NoSnapshot,
    NoMetadata,
    Index(Tweak),
    Term(Tweak),
    NoConfState,
    NoVoters,
    AddVoter(u64),
    VoterAlsoLearner,
    Joint,
}

/// One mutation of the message at some point of a life.
#[derive(Debug, Clone)]
enum Mutation {
    Field(Field, Tweak),
    FlipReject,
    DropEntry(Index),
    DuplicateEntry(Index),
    SwapEntries(Index, Index),
    TruncateEntries(Index),
    EntryTerm(Index, Tweak),
    EntryIndex(Index, Tweak),
    EntryType(Index, i32),
    Type(i32),
    SwapFromTo,
    From(u64),
    To(u64),
    Snapshot(SnapMut),
    Context(Vec<u8>),
    /// The message is lost.
    Drop,
    /// The message arrives twice.
    Duplicate,
    /// The message arrives again, `n` steps later (a reordered duplicate).
    Later(u8),
}

const IDS: [u64; 7] = [0, 1, 2, 3, 4, 99, u64::MAX];

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        3 => Just(Field::Term),
        3 => Just(Field::Index),
        2 => Just(Field::LogTerm),
        3 => Just(Field::Commit),
        1 => Just(Field::CommitTerm),
        2 => Just(Field::RejectHint),
        1 => Just(Field::RequestSnapshot),
    ];
    let snap = prop_oneof![
        Just(SnapMut::NoSnapshot),
        Just(SnapMut::NoMetadata),
        tweak().prop_map(SnapMut::Index),
        tweak().prop_map(SnapMut::Term),
        Just(SnapMut::NoConfState),
        Just(SnapMut::NoVoters),
        proptest::sample::select(IDS.to_vec()).prop_map(SnapMut::AddVoter),
        Just(SnapMut::VoterAlsoLearner),
        Just(SnapMut::Joint),
    ];
    let id = || proptest::sample::select(IDS.to_vec());
    prop_oneof![
        12 => (field, tweak()).prop_map(|(f, t)| Mutation::Field(f, t)),
        2 => Just(Mutation::FlipReject),
        2 => any::<Index>().prop_map(Mutation::DropEntry),
        2 => any::<Index>().prop_map(Mutation::DuplicateEntry),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapEntries(a, b)),
        1 => any::<Index>().prop_map(Mutation::TruncateEntries),
        2 => (any::<Index>(), tweak()).prop_map(|(i, t)| Mutation::EntryTerm(i, t)),
        2 => (any::<Index>(), tweak()).prop_map(|(i, t)| Mutation::EntryIndex(i, t)),
        1 => (any::<Index>(), -1i32..=3).prop_map(|(i, t)| Mutation::EntryType(i, t)),
        4 => prop_oneof![9 => 2i32..=18, 1 => -1i32..=1, 1 => Just(19)].prop_map(Mutation::Type),
        1 => Just(Mutation::SwapFromTo),
        1 => id().prop_map(Mutation::From),
        1 => id().prop_map(Mutation::To),
        4 => snap.prop_map(Mutation::Snapshot),
        1 => vec(any::<u8>(), 0..20).prop_map(Mutation::Context),
        2 => Just(Mutation::Drop),
        2 => Just(Mutation::Duplicate),
        2 => (1u8..50).prop_map(Mutation::Later),
    ]
}

/// Applies a field-level mutation; `None` for the delivery mutations (handled by the replay).
fn mutate(m: &mut Message, mu: &Mutation) {
    let n = m.entries.len();
    match mu {
        Mutation::Field(f, t) => {
            let v = match f {
                Field::Term => &mut m.term,
                Field::Index => &mut m.index,
                Field::LogTerm => &mut m.log_term,
                Field::Commit => &mut m.commit,
                Field::CommitTerm => &mut m.commit_term,
                Field::RejectHint => &mut m.reject_hint,
                Field::RequestSnapshot => &mut m.request_snapshot,
            };
            *v = t.apply(*v);
        }
        Mutation::FlipReject => m.reject = !m.reject,
        Mutation::DropEntry(i) if n > 0 => {
            m.entries.remove(i.index(n));
        }
        Mutation::DuplicateEntry(i) if n > 0 => {
            let i = i.index(n);
            let e = m.entries[i].clone();
            m.entries.insert(i, e);
        }
        Mutation::SwapEntries(a, b) if n > 0 => m.entries.swap(a.index(n), b.index(n)),
        Mutation::TruncateEntries(i) if n > 0 => m.entries.truncate(i.index(n)),
        Mutation::EntryTerm(i, t) if n > 0 => {
            let e = &mut m.entries[i.index(n)];
            e.term = t.apply(e.term);
        }
        Mutation::EntryIndex(i, t) if n > 0 => {
            let e = &mut m.entries[i.index(n)];
            e.index = t.apply(e.index);
        }
        Mutation::EntryType(i, t) if n > 0 => m.entries[i.index(n)].entry_type = *t,
        Mutation::Type(t) => m.msg_type = *t,
        Mutation::SwapFromTo => core::mem::swap(&mut m.from, &mut m.to),
        Mutation::From(id) => m.from = *id,
        Mutation::To(id) => m.to = *id,
        Mutation::Snapshot(s) => mangle_snapshot(m, *s),
        Mutation::Context(c) => m.context = c.clone().into(),
        _ => {}
    }
}

fn mangle_snapshot(m: &mut Message, s: SnapMut) {
    if let SnapMut::NoSnapshot = s {
        m.snapshot = None;
        return;
    }
    let snap = m.snapshot.get_or_insert_with(Default::default);
    if let SnapMut::NoMetadata = s {
        snap.metadata = None;
        return;
    }
    let meta = snap.metadata.get_or_insert_with(Default::default);
    match s {
        SnapMut::Index(t) => meta.index = t.apply(meta.index),
        SnapMut::Term(t) => meta.term = t.apply(meta.term),
        SnapMut::NoConfState => meta.conf_state = None,
        _ => {
            let cs = meta.conf_state.get_or_insert_with(ConfState::default);
            match s {
                SnapMut::NoVoters => cs.voters.clear(),
                SnapMut::AddVoter(id) => cs.voters.push(id),
                SnapMut::VoterAlsoLearner => {
                    if let Some(&v) = cs.voters.first() {
                        cs.learners.push(v);
                    }
                }
                SnapMut::Joint => {
                    cs.voters_outgoing = vec![1, 2, 5];
                    cs.auto_leave = !cs.auto_leave;
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug, Clone)]
struct ReplayCase {
    trace: Index,
    node: Index,
    /// (which of the life's steps, mutation); several may hit the same step.
    mutations: Vec<(Index, Mutation)>,
}

fn replay_case() -> impl Strategy<Value = ReplayCase> {
    (
        any::<Index>(),
        any::<Index>(),
        prop_oneof![
            3 => vec((any::<Index>(), mutation()), 1..6),
            1 => vec((any::<Index>(), mutation()), 6..40),
        ],
    )
        .prop_map(|(trace, node, mutations)| ReplayCase {
            trace,
            node,
            mutations,
        })
}

/// Replays one node's recorded life with the case's mutations, checking after every input.
fn replay(case: &ReplayCase) -> Result<(), TestCaseError> {
    let traces = traces();
    let trace = &traces[case.trace.index(traces.len())];
    let id = NODES[case.node.index(NODES.len())];
    let life = &trace.lives[&id];
    let steps: Vec<usize> = (0..life.len())
        .filter(|&i| matches!(life[i], Event::Step(_)))
        .collect();
    if steps.is_empty() {
        return Ok(());
    }
    let mut plan: BTreeMap<usize, Vec<&Mutation>> = BTreeMap::new();
    for (at, mu) in &case.mutations {
        plan.entry(steps[at.index(steps.len())])
            .or_default()
            .push(mu);
    }
    let counter = &STEPPED_STRUCTURED;
    let mut s = Subject::new(id, trace.flags);
    // Messages to deliver again later: (event position, message).
    let mut later: Vec<(usize, Message)> = Vec::new();
    for (pos, ev) in life.iter().enumerate() {
        let mut due = Vec::new();
        later.retain(|(at, m)| {
            if *at <= pos {
                due.push(m.clone());
                false
            } else {
                true
            }
        });
        for m in due {
            s.step(m, counter)?;
        }
        let (Event::Step(m), Some(mutations)) = (ev, plan.get(&pos)) else {
            s.act(ev, counter)?;
            continue;
        };
        let mut m = m.clone();
        let mut copies = 1;
        for mu in mutations {
            match mu {
                Mutation::Drop => copies = 0,
                Mutation::Duplicate => copies += 1,
                Mutation::Later(n) => later.push((pos + usize::from(*n), m.clone())),
                mu => mutate(&mut m, mu),
            }
        }
        for _ in 0..copies {
            s.step(m.clone(), counter)?;
        }
        // Whatever a mutated message did, the Ready it leads to can be persisted and advanced.
        s.ready()?;
    }
    for m in later.into_iter().map(|(_, m)| m) {
        s.step(m, counter)?;
    }
    s.ready()?;
    s.ready()
}

// ---------------------------------------------------------------------------------------------
// (a) Bytes decoded as messages, into nodes in every role.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
    Learner,
}

const ROLES: [Role; 5] = [
    Role::Follower,
    Role::Candidate,
    Role::PreCandidate,
    Role::Leader,
    Role::Learner,
];

fn role_of(p: &Peer) -> Option<Role> {
    let r = &p.raw.raft;
    let is_learner = r.prs.conf().learners.contains(&r.id);
    match r.state {
        StateRole::Candidate => Some(Role::Candidate),
        StateRole::PreCandidate => Some(Role::PreCandidate),
        // A leader with followers to track.
        StateRole::Leader if r.prs.ids().count() >= 3 => Some(Role::Leader),
        StateRole::Follower if r.leader_id != 0 && is_learner => Some(Role::Learner),
        StateRole::Follower if r.leader_id != 0 && r.raft_log.last_index() > 2 => {
            Some(Role::Follower)
        }
        _ => None,
    }
}

/// A point in a recorded life: (trace, node, number of events replayed).
type RolePoint = (usize, u64, usize);

/// Where each role is reached in the recorded lives: (trace, node, events to replay), several
/// per role.
fn role_points() -> &'static BTreeMap<Role, Vec<RolePoint>> {
    static POINTS: OnceLock<BTreeMap<Role, Vec<RolePoint>>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut points: BTreeMap<Role, Vec<RolePoint>> = BTreeMap::new();
        for (ti, t) in traces().iter().enumerate() {
            for (&id, life) in &t.lives {
                let mut p = Peer::new(id, t.flags);
                let mut last_role = None;
                for (pos, ev) in life.iter().enumerate() {
                    match ev {
                        Event::Step(m) => {
                            let _ = p.raw.step(m.clone());
                        }
                        ev => {
                            p.act(ev).expect("replay of a recorded life");
                        }
                    }
                    let role = role_of(&p);
                    if role != last_role {
                        if let Some(role) = role {
                            let list = points.entry(role).or_default();
                            if list.len() < 40 {
                                list.push((ti, id, pos + 1));
                            }
                        }
                        last_role = role;
                    }
                }
            }
        }
        points
    })
}

/// Node `id` of trace `ti` after its first `len` events.
fn rebuild(ti: usize, id: u64, len: usize) -> Peer {
    let t = &traces()[ti];
    let mut p = Peer::new(id, t.flags);
    for ev in &t.lives[&id][..len] {
        match ev {
            Event::Step(m) => {
                let _ = p.raw.step(m.clone());
            }
            ev => {
                p.act(ev).expect("replay of a recorded life");
            }
        }
    }
    p
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
    Splice(Index, Vec<u8>),
}

#[derive(Debug, Clone)]
enum Bytes {
    Random(Vec<u8>),
    Mutated(Index, Vec<ByteEdit>),
}

fn bytes_input() -> impl Strategy<Value = Bytes> {
    let edit = prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        2 => any::<Index>().prop_map(ByteEdit::Remove),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..12)).prop_map(|(i, b)| ByteEdit::Splice(i, b)),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..80).prop_map(Bytes::Random),
        4 => (any::<Index>(), vec(edit, 0..4)).prop_map(|(i, e)| Bytes::Mutated(i, e)),
    ]
}

impl Bytes {
    fn render(&self) -> Vec<u8> {
        match self {
            Bytes::Random(b) => b.clone(),
            Bytes::Mutated(i, edits) => {
                let msgs = recorded_messages();
                let mut b = msgs[i.index(msgs.len())].encode_to_vec();
                for e in edits {
                    let n = b.len();
                    match e {
                        ByteEdit::Flip(i, bit) if n > 0 => b[i.index(n)] ^= 1 << bit,
                        ByteEdit::Set(i, v) if n > 0 => b[i.index(n)] = *v,
                        ByteEdit::Insert(i, v) => b.insert(i.index(n + 1), *v),
                        ByteEdit::Remove(i) if n > 0 => {
                            b.remove(i.index(n));
                        }
                        ByteEdit::Truncate(i) if n > 0 => b.truncate(i.index(n)),
                        ByteEdit::Splice(i, v) => {
                            let at = i.index(n + 1);
                            b.splice(at..at, v.iter().copied());
                        }
                        _ => {}
                    }
                }
                b
            }
        }
    }
}

/// Steps whatever decodes into a node in `role`, with a Ready now and then.
fn step_bytes(role: Role, fixture: Index, inputs: &[Bytes]) -> Result<(), TestCaseError> {
    let points = &role_points()[&role];
    let (ti, id, len) = points[fixture.index(points.len())];
    let mut s = Subject {
        peer: rebuild(ti, id, len),
        max_term: 0,
    };
    s.check(&|| format!("building the {role:?} fixture"))?;
    for (i, input) in inputs.iter().enumerate() {
        let Ok(m) = Message::decode(input.render().as_slice()) else {
            continue;
        };
        s.step(m, &STEPPED_BYTES)?;
        // Usually push each message's consequences through a Ready; sometimes let them pile up.
        if i % 4 != 3 {
            s.ready()?;
        }
    }
    s.ready()?;
    s.ready()
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

fn scale() -> u32 {
    std::env::var("RAFT_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The seed of this run: fixed, so that CI runs are reproducible, unless `RAFT_FUZZ_SEED` says.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("RAFT_FUZZ_SEED") {
        Ok(s) if s == "random" => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        }
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("RAFT_FUZZ_SEED must be a u64 or `random`, not {s:?}")),
        Err(_) => 0x8F22_2024,
    })
}

fn run<S: Strategy>(
    name: &str,
    stream: u64,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = PtConfig {
        cases,
        failure_persistence: None,
        ..PtConfig::default()
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed().wrapping_add(stream) ^ (i as u64).wrapping_mul(0x9E37_79B9);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!(
            "{name}: {reason}\nminimal failing input: {input:#?}\nreplay: RAFT_FUZZ_SEED={} \
             RAFT_FUZZ_SCALE={}",
            self::seed(),
            scale()
        ),
        Err(TestError::Abort(reason)) => panic!("{name} aborted: {reason}"),
    }
}

const BYTES_CASES: u32 = 2_000;
const REPLAY_CASES: u32 = 600;

#[test]
fn fuzzing_steps_100k_messages_without_panic_refusal_side_effects_or_broken_invariants() {
    // Build the shared recordings once, before the two harnesses run side by side.
    let _ = role_points();
    println!("fuzz_messages: seed {}, scale {}", seed(), scale());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let input = (
                proptest::sample::select(ROLES.to_vec()),
                any::<Index>(),
                vec(bytes_input(), 1..32),
            );
            run(
                "(a) bytes into every role",
                0,
                BYTES_CASES * scale(),
                input,
                |(role, fixture, inputs)| step_bytes(role, fixture, &inputs),
            );
        });
        scope.spawn(|| {
            run(
                "(b) mutated recorded lives",
                1,
                REPLAY_CASES * scale(),
                replay_case(),
                |case| replay(&case),
            );
        });
    });
    let (a, b) = (
        STEPPED_BYTES.load(Ordering::Relaxed),
        STEPPED_STRUCTURED.load(Ordering::Relaxed),
    );
    println!(
        "fuzz_messages: stepped {} messages ({a} decoded from bytes into every role, {b} in \
         mutated replays; {} refused with an error) in {:.1?}",
        a + b,
        REFUSED.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        a + b >= 100_000,
        "the harness stepped only {} messages; it must step at least 100,000",
        a + b
    );
}

// ---------------------------------------------------------------------------------------------
// The recordings are what the harness claims (otherwise it tests less than it says).
// ---------------------------------------------------------------------------------------------

#[test]
fn recorded_runs_carry_every_peer_message_type_and_reach_every_role() {
    let mut seen = BTreeSet::new();
    let mut with_entries = 0;
    let mut rejections = 0;
    for m in recorded_messages() {
        seen.insert(m.msg_type);
        with_entries += usize::from(!m.entries.is_empty());
        rejections += usize::from(m.reject);
    }
    let peer_types = [
        MessageType::MsgPropose,
        MessageType::MsgAppend,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgSnapshot,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
    ];
    let missing: Vec<_> = peer_types
        .iter()
        .filter(|t| !seen.contains(&(**t as i32)))
        .collect();
    assert!(
        missing.is_empty(),
        "the recorded runs never deliver {missing:?}"
    );
    assert!(
        with_entries > 100 && rejections > 10,
        "too few appends with entries ({with_entries}) or rejections ({rejections})"
    );
    let conf_changes = recorded_messages()
        .iter()
        .flat_map(|m| &m.entries)
        .filter(|e| e.entry_type == EntryType::EntryConfChange as i32)
        .count();
    assert!(conf_changes > 0, "no conf change was replicated");
    let points = role_points();
    for role in ROLES {
        assert!(
            points.get(&role).is_some_and(|p| !p.is_empty()),
            "no recorded life reaches {role:?}"
        );
    }
    for t in traces() {
        let max_commit = t.finals.values().map(|s| s.4).max().unwrap_or(0);
        assert!(
            max_commit > 50,
            "trace {:?}/{:#x}: the cluster committed only {max_commit} entries",
            t.flags,
            t.seed
        );
    }
}

/// A life replayed unmutated reproduces the recorded node exactly: the mutated replays start
/// from the states a real cluster reaches.
#[test]
fn replaying_a_recorded_life_unmutated_reproduces_the_node() {
    for t in traces() {
        for (&id, life) in &t.lives {
            let mut s = Subject::new(id, t.flags);
            let counter = AtomicU64::new(0);
            for ev in life {
                if let Err(e) = s.act(ev, &counter) {
                    panic!("unmutated replay of node {id} ({:?}) failed: {e}", t.flags);
                }
            }
            assert_eq!(
                s.peer.summary(),
                t.finals[&id],
                "node {id} ({:?}, seed {:#x}) replayed differently",
                t.flags,
                t.seed
            );
        }
    }
}
