//! Robustness of `RawNode::step` against untrusted input (DESIGN.md §5, testing strategy §7.5).
//!
//! Every message type (and unknown type values), with arbitrary field values, is stepped into a node
//! in every role: a follower with a known leader and unpersisted entries, a follower with a divergent
//! uncommitted tail, a candidate, a pre-candidate, a leader with followers in Probe and Replicate, a
//! learner, a node removed from the configuration and an uninitialised node, each with check-quorum
//! and pre-vote on and off. The nodes get there by driving a real cluster of `RawNode`s over
//! `MemStorage`, and their logs span several terms. The properties:
//!
//! 1. neither `step` nor the Ready cycle (`ready`, persisting, `advance`) ever panics, for single
//!    messages and for sequences interleaved with ticks, proposals, campaigns and Readys;
//! 2. a `step` that fails (other than `ProposalDropped`) leaves the node's observable state unchanged;
//! 3. the log's safety invariants hold after every input.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use raft_core::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use raft_core::tracker::{Progress, ProgressState};
use raft_core::{Config, Error, RawNode, StateRole, INVALID_ID};
use raft_proto::describe_message;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// A node and the way an application drives it.
// ---------------------------------------------------------------------------------------------

/// One node with its storage and the index of the last entry it applied.
struct Peer {
    raw: RawNode<MemStorage>,
    store: MemStorage,
    applied: u64,
}

impl Peer {
    fn new(config: &Config, store: MemStorage) -> Peer {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(config, store.clone(), &logger).expect("valid test config");
        let applied = raw.raft.raft_log.applied;
        Peer {
            raw,
            store,
            applied,
        }
    }

    fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Handles one Ready (if any) as an application would: persist entries and hard state, apply
    /// committed entries, advance. Returns the messages to send, or what went wrong.
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
                store.apply_snapshot(rd.snapshot().clone()).map_err(|e| {
                    format!("the Ready's snapshot cannot be applied to storage ({e})")
                })?;
                // Restoring the snapshot applies everything it covers.
                self.applied = rd.snapshot().metadata.as_ref().map_or(0, |m| m.index);
            }
            store.append(rd.entries()).map_err(|e| {
                format!(
                    "the Ready's entries cannot be appended to storage ({e}): {:?}",
                    rd.entries()
                )
            })?;
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(&committed)?;
        let mut light = self
            .raw
            .advance(rd)
            .map_err(|e| format!("advance() failed: {e}"))?;
        if let Some(commit) = light.commit_index() {
            self.store.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(&committed)?;
        self.raw.advance_apply();

        let id = self.id();
        for m in &out {
            // Forwarded requests keep their sender (raft-rs): a transfer names the transferee.
            let transfer = [
                MessageType::MsgTransferLeader,
                MessageType::MsgReadIndex,
                MessageType::MsgPropose,
            ]
            .iter()
            .any(|t| m.msg_type == *t as i32);
            if (m.from != id && !transfer) || m.to == INVALID_ID {
                return Err(format!(
                    "node {id} emitted a message with a wrong sender or no recipient: {}",
                    describe_message(m)
                ));
            }
        }
        let store = self.store.rl();
        let (commit, last) = (store.hard_state().commit, self.store_last_index());
        if commit > last {
            return Err(format!(
                "the persisted hard state commits {commit}, beyond the persisted log's last index \
                 {last}: a restart would fail"
            ));
        }
        Ok(out)
    }

    fn store_last_index(&self) -> u64 {
        use raft_core::Storage;
        self.store.last_index().unwrap_or(0)
    }

    /// Applies committed entries, checking they come in order, once, and are durable locally.
    fn apply(&mut self, entries: &[Entry]) -> Result<(), String> {
        let persisted = self.store_last_index();
        for e in entries {
            if e.index != self.applied + 1 {
                return Err(format!(
                    "node {} was handed entry {} to apply after applying {}",
                    self.id(),
                    e.index,
                    self.applied
                ));
            }
            if e.index > persisted {
                return Err(format!(
                    "node {} was handed entry {} to apply before it was persisted (storage ends at \
                     {persisted})",
                    self.id(),
                    e.index
                ));
            }
            self.applied = e.index;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny cluster, to bring nodes into realistic states.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flags {
    check_quorum: bool,
    pre_vote: bool,
}

fn config(id: u64, flags: Flags) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        // Randomised timeouts of 15..20 ticks: ticking a follower 10 times ends its leader lease
        // (check-quorum counts `election_tick`) without making it campaign on its own.
        min_election_tick: 15,
        max_election_tick: 20,
        // A small window, so that replicating followers can be paused.
        max_inflight_msgs: 4,
        check_quorum: flags.check_quorum,
        pre_vote: flags.pre_vote,
        ..Default::default()
    }
}

/// Nodes that exchange messages synchronously, with isolation and dropped message types.
struct Cluster {
    peers: BTreeMap<u64, Peer>,
    isolated: BTreeSet<u64>,
    dropped_types: Vec<MessageType>,
}

impl Cluster {
    /// Voters 1, 2, 3 and learner 4.
    fn new(flags: Flags) -> Cluster {
        let peers = (1..=4)
            .map(|id| {
                let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], [4]));
                (id, Peer::new(&config(id, flags), store))
            })
            .collect();
        Cluster {
            peers,
            isolated: BTreeSet::new(),
            dropped_types: Vec::new(),
        }
    }

    fn peer(&mut self, id: u64) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such peer")
    }

    fn passes(&self, m: &Message) -> bool {
        !self.isolated.contains(&m.from)
            && !self.isolated.contains(&m.to)
            && !self.dropped_types.iter().any(|t| *t as i32 == m.msg_type)
            && self.peers.contains_key(&m.to)
    }

    /// Delivers `msgs` and everything they cause until nothing is left to do.
    fn deliver(&mut self, msgs: Vec<Message>) {
        let mut queue: VecDeque<Message> = msgs.into();
        loop {
            while let Some(m) = queue.pop_front() {
                if !self.passes(&m) {
                    continue;
                }
                let peer = self.peer(m.to);
                let _ = peer.raw.step(m);
                queue.extend(peer.handle_ready().expect("cluster node failed"));
            }
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                queue.extend(self.peer(id).handle_ready().expect("cluster node failed"));
            }
            if queue.is_empty() {
                return;
            }
        }
    }

    fn stabilize(&mut self) {
        self.deliver(Vec::new());
    }

    /// Node `id` wins an election. Every other follower is first ticked past its leader lease so
    /// that, with check-quorum, it listens to the candidate (thesis §4.2.3).
    fn elect(&mut self, id: u64) {
        let others: Vec<u64> = self
            .peers
            .iter()
            .filter(|(pid, p)| **pid != id && p.raw.raft.state != StateRole::Leader)
            .map(|(pid, _)| *pid)
            .collect();
        for other in others {
            let peer = self.peer(other);
            for _ in 0..10 {
                peer.raw.tick();
            }
            assert_eq!(
                peer.raw.raft.state,
                StateRole::Follower,
                "node {other} campaigned on its own while its lease was being expired"
            );
        }
        let _ = self.peer(id).raw.campaign();
        self.stabilize();
        assert_eq!(
            self.peers[&id].raw.raft.state,
            StateRole::Leader,
            "node {id} did not win the election"
        );
    }

    fn propose(&mut self, id: u64, data: &[u8]) {
        self.peer(id)
            .raw
            .propose(vec![], data.to_vec())
            .expect("proposal accepted");
        self.stabilize();
    }

    /// Leaders 1 (term 1), 2 (term 2), 1 (term 3), each committing entries: every log is
    /// `1:t1 2:t1 3:t1 4:t2 5:t2 6:t3 7:t3 8:t3`, committed to 8.
    fn with_history(flags: Flags) -> Cluster {
        let mut c = Cluster::new(flags);
        c.elect(1);
        c.propose(1, b"a");
        c.propose(1, b"b");
        c.elect(2);
        c.propose(2, b"c");
        c.elect(1);
        c.propose(1, b"d");
        c.propose(1, b"e");
        c
    }

    fn take(mut self, id: u64) -> Peer {
        self.peers.remove(&id).expect("no such peer")
    }
}

// ---------------------------------------------------------------------------------------------
// The nodes under test.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Node 3, following leader 1 in term 3, holding an entry it has not persisted yet and an
    /// acknowledgement it has not sent yet.
    Follower,
    /// Node 1, an old leader of term 3 with two uncommitted entries of term 3, now following
    /// leader 2 of term 4 (whose log holds other entries at those indexes).
    DivergentFollower,
    /// Node 3, campaigning in term 4, no votes received yet.
    Candidate,
    /// Node 3, in a pre-vote round for term 4 (pre-vote is always on for this role).
    PreCandidate,
    /// Node 1, leader of term 3: node 2 replicating (with an unacknowledged append in flight),
    /// node 3 probing (paused), learner 4 replicating; an uncommitted entry at its last index.
    Leader,
    /// Node 4, a learner following leader 1.
    Learner,
    /// Node 4, restarted with a configuration that no longer contains it (its log is kept).
    Removed,
    /// Node 4 over an empty storage: no log, no members.
    Uninitialised,
}

/// Drives a cluster until the node under test is in `role`, and returns that node.
fn build(role: Role, flags: Flags) -> Peer {
    let flags = match role {
        Role::PreCandidate => Flags {
            pre_vote: true,
            ..flags
        },
        _ => flags,
    };
    match role {
        Role::Follower => {
            let mut c = Cluster::with_history(flags);
            c.peer(1)
                .raw
                .propose(vec![], b"f".to_vec())
                .expect("leader accepts");
            let msgs = c.peer(1).handle_ready().expect("leader ready");
            let follower = c.peer(3);
            for m in msgs.into_iter().filter(|m| m.to == 3) {
                follower
                    .raw
                    .step(m)
                    .expect("follower accepts the leader's append");
            }
            c.take(3)
        }
        Role::DivergentFollower => {
            let mut c = Cluster::with_history(flags);
            c.isolated.insert(1);
            for data in [b"x", b"y"] {
                c.peer(1)
                    .raw
                    .propose(vec![], data.to_vec())
                    .expect("leader accepts");
                c.stabilize();
            }
            c.elect(2);
            c.propose(2, b"z");
            // Leader 2's next heartbeat reaches node 1, which steps down; nothing else gets through,
            // so node 1 keeps its conflicting tail.
            for _ in 0..2 {
                c.peer(2).raw.tick();
            }
            let msgs = c.peer(2).handle_ready().expect("leader ready");
            let old_leader = c.peer(1);
            for m in msgs.into_iter().filter(|m| m.to == 1) {
                old_leader
                    .raw
                    .step(m)
                    .expect("old leader accepts the heartbeat");
            }
            old_leader.handle_ready().expect("old leader ready");
            c.take(1)
        }
        Role::Candidate => {
            let mut c = Cluster::with_history(flags);
            c.isolated.insert(1);
            c.dropped_types.push(MessageType::MsgRequestVote);
            for _ in 0..10 {
                c.peer(2).raw.tick();
            }
            let _ = c.peer(3).raw.campaign();
            c.stabilize();
            c.take(3)
        }
        Role::PreCandidate => {
            let mut c = Cluster::with_history(flags);
            c.isolated.insert(3);
            let _ = c.peer(3).raw.campaign();
            c.stabilize();
            c.take(3)
        }
        Role::Leader => {
            let mut c = Cluster::with_history(flags);
            c.peer(1).raw.report_unreachable(3);
            c.isolated.insert(3);
            c.propose(1, b"h");
            c.isolated.insert(2);
            c.propose(1, b"i");
            c.take(1)
        }
        Role::Learner => Cluster::with_history(flags).take(4),
        Role::Removed => {
            let old = Cluster::with_history(flags).take(4);
            let store = old.store.clone();
            store.wl().set_conf_state(conf_state([1, 2, 3], []));
            let applied = old.applied;
            drop(old);
            let mut cfg = config(4, flags);
            cfg.applied = applied;
            Peer::new(&cfg, store)
        }
        Role::Uninitialised => Peer::new(&config(4, flags), MemStorage::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary messages. Numbers are generated as templates resolved against the node's state at the
// moment of stepping, so that "around the current term / last index / commit" stays meaningful
// along a sequence in which those move.
// ---------------------------------------------------------------------------------------------

/// The ids messages name: no node, the members, a non-member, absurd ones.
const IDS: [u64; 7] = [0, 1, 2, 3, 4, 99, u64::MAX];

#[derive(Debug, Clone, Copy)]
enum Num {
    Lit(u64),
    /// The node's term, plus an offset.
    Term(i8),
    /// The node's last index, plus an offset.
    Last(i8),
    /// The node's commit index, plus an offset.
    Commit(i8),
    /// The term of the node's entry at the message's `index` (0 if there is none): appends that
    /// match.
    TermAtIndex,
    /// The term of the node's entry at the message's `commit`.
    TermAtCommit,
}

impl Num {
    fn resolve(self, p: &Peer, m: &Message) -> u64 {
        let r = &p.raw.raft;
        let term_at = |i: u64| r.raft_log.term(i).unwrap_or(0);
        match self {
            Num::Lit(v) => v,
            Num::Term(d) => r.term.saturating_add_signed(d.into()),
            Num::Last(d) => r.raft_log.last_index().saturating_add_signed(d.into()),
            Num::Commit(d) => r.raft_log.committed.saturating_add_signed(d.into()),
            Num::TermAtIndex => term_at(m.index),
            Num::TermAtCommit => term_at(m.commit),
        }
    }
}

fn extreme() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), Just(u64::MAX - 1)]
}

fn literal() -> BoxedStrategy<Num> {
    prop_oneof![
        3 => extreme().prop_map(Num::Lit),
        2 => (0u64..12).prop_map(Num::Lit),
        1 => any::<u64>().prop_map(Num::Lit),
    ]
    .boxed()
}

fn term_num() -> BoxedStrategy<Num> {
    prop_oneof![2 => literal(), 5 => (-2i8..=2).prop_map(Num::Term)].boxed()
}

fn index_num() -> BoxedStrategy<Num> {
    prop_oneof![
        2 => literal(),
        4 => (-4i8..=3).prop_map(Num::Last),
        2 => (-3i8..=2).prop_map(Num::Commit),
    ]
    .boxed()
}

fn log_term_num() -> BoxedStrategy<Num> {
    prop_oneof![2 => literal(), 2 => (-2i8..=1).prop_map(Num::Term), 4 => Just(Num::TermAtIndex)]
        .boxed()
}

fn commit_term_num() -> BoxedStrategy<Num> {
    prop_oneof![2 => literal(), 1 => (-2i8..=0).prop_map(Num::Term), 2 => Just(Num::TermAtCommit)]
        .boxed()
}

fn entry_type() -> impl Strategy<Value = i32> {
    prop_oneof![6 => Just(0), 1 => Just(1), 1 => Just(2), 1 => any::<i32>()]
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..8)
}

#[derive(Debug, Clone)]
enum EntriesT {
    /// Entries right after the message's `index`, terms starting at its `log_term` and growing by
    /// the given steps (capped at the message's term): what a leader sends.
    Plausible(Vec<(u8, i32, Vec<u8>)>),
    /// Entries with any index and term.
    Absurd(Vec<(Num, Num, i32, Vec<u8>)>),
}

fn entries_t() -> BoxedStrategy<EntriesT> {
    prop_oneof![
        3 => vec((0u8..3, entry_type(), small_bytes()), 0..5).prop_map(EntriesT::Plausible),
        1 => vec((index_num(), term_num(), entry_type(), small_bytes()), 0..5)
            .prop_map(EntriesT::Absurd),
    ]
    .boxed()
}

impl EntriesT {
    fn resolve(&self, p: &Peer, m: &Message) -> Vec<Entry> {
        match self {
            EntriesT::Plausible(specs) => {
                let mut term = m.log_term;
                specs
                    .iter()
                    .enumerate()
                    .map(|(i, (step, entry_type, data))| {
                        let prev = term;
                        term = term.saturating_add((*step).into());
                        if term > m.term {
                            term = m.term.max(prev);
                        }
                        Entry {
                            entry_type: *entry_type,
                            term,
                            index: m.index.wrapping_add(1 + i as u64),
                            data: data.clone().into(),
                            ..Default::default()
                        }
                    })
                    .collect()
            }
            EntriesT::Absurd(specs) => specs
                .iter()
                .map(|(index, term, entry_type, data)| Entry {
                    entry_type: *entry_type,
                    term: term.resolve(p, m),
                    index: index.resolve(p, m),
                    data: data.clone().into(),
                    context: data.clone().into(),
                    sync_log: data.len() % 2 == 1,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
struct SnapshotT {
    metadata: Option<(Num, Num, Option<ConfState>)>,
    data: Vec<u8>,
}

fn id_list() -> impl Strategy<Value = Vec<u64>> {
    vec(select(IDS.to_vec()), 0..4)
}

fn conf_state_t() -> BoxedStrategy<ConfState> {
    (id_list(), id_list(), id_list(), id_list(), any::<bool>())
        .prop_map(
            |(voters, learners, voters_outgoing, learners_next, auto_leave)| ConfState {
                voters,
                learners,
                voters_outgoing,
                learners_next,
                auto_leave,
            },
        )
        .boxed()
}

fn snapshot_t() -> BoxedStrategy<Option<SnapshotT>> {
    let metadata = proptest::option::of((
        index_num(),
        term_num(),
        proptest::option::of(conf_state_t()),
    ));
    prop_oneof![
        1 => Just(None),
        1 => (metadata, small_bytes()).prop_map(|(metadata, data)| Some(SnapshotT { metadata, data })),
    ]
    .boxed()
}

#[derive(Debug, Clone, Copy)]
enum To {
    /// The node under test.
    Me,
    Id(u64),
}

/// A message whose numbers are resolved against the node when it is stepped.
#[derive(Debug, Clone)]
struct MsgT {
    msg_type: i32,
    to: To,
    from: u64,
    term: Num,
    log_term: Num,
    index: Num,
    commit: Num,
    commit_term: Num,
    reject_hint: Num,
    request_snapshot: Num,
    entries: EntriesT,
    snapshot: Option<SnapshotT>,
    reject: bool,
    context: Vec<u8>,
    priority: i64,
    deprecated_priority: u64,
}

impl MsgT {
    fn resolve(&self, p: &Peer) -> Message {
        let mut m = Message {
            msg_type: self.msg_type,
            to: match self.to {
                To::Me => p.id(),
                To::Id(id) => id,
            },
            from: self.from,
            reject: self.reject,
            context: self.context.clone().into(),
            priority: self.priority,
            deprecated_priority: self.deprecated_priority,
            ..Default::default()
        };
        // In dependency order: `log_term` may name the term at `index`, `commit_term` the term at
        // `commit`, and plausible entries follow `index`, `log_term` and `term`.
        m.term = self.term.resolve(p, &m);
        m.index = self.index.resolve(p, &m);
        m.log_term = self.log_term.resolve(p, &m);
        m.commit = self.commit.resolve(p, &m);
        m.commit_term = self.commit_term.resolve(p, &m);
        m.reject_hint = self.reject_hint.resolve(p, &m);
        m.request_snapshot = self.request_snapshot.resolve(p, &m);
        m.entries = self.entries.resolve(p, &m);
        m.snapshot = self.snapshot.as_ref().map(|s| {
            Box::new(Snapshot {
                data: s.data.clone().into(),
                metadata: s
                    .metadata
                    .as_ref()
                    .map(|(index, term, conf_state)| SnapshotMetadata {
                        conf_state: conf_state.clone(),
                        index: index.resolve(p, &m),
                        term: term.resolve(p, &m),
                    }),
            })
        });
        m
    }
}

fn msg_type() -> impl Strategy<Value = i32> {
    prop_oneof![
        19 => 0i32..=18,
        1 => prop_oneof![Just(-1), Just(19), Just(i32::MAX), Just(i32::MIN), any::<i32>()],
    ]
}

fn context() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(Vec::new()),
        1 => vec(any::<u8>(), 1..8),
        1 => Just(b"CampaignTransfer".to_vec()),
    ]
}

/// Any message: arbitrary fields half of the time; otherwise fields coherent with the node's state
/// (addressed to it, from a member, the current or next term, an index between its commit and last
/// index with the term it has there), so that appends, votes and responses are often accepted and
/// the deeper paths get exercised too.
fn msg() -> BoxedStrategy<MsgT> {
    prop_oneof![1 => arbitrary_msg(), 1 => plausible_msg()].boxed()
}

fn plausible_msg() -> BoxedStrategy<MsgT> {
    let near_log = || {
        prop_oneof![
            (-3i8..=1).prop_map(Num::Last),
            (0i8..=2).prop_map(Num::Commit),
        ]
    };
    // The types a peer sends (the local-only ones are refused up front; `arbitrary_msg` has them).
    let peer_types = select(vec![2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18]);
    let addressing = (
        peer_types,
        1u64..=4,
        prop_oneof![3 => Just(Num::Term(0)), 1 => Just(Num::Term(1))],
    );
    let numbers = (
        near_log(),
        prop_oneof![4 => Just(Num::TermAtIndex), 1 => (-1i8..=0).prop_map(Num::Term)],
        near_log(),
        prop_oneof![Just(Num::TermAtCommit), Just(Num::Lit(0))],
        near_log(),
    );
    let payload = (
        vec((0u8..2, entry_type(), small_bytes()), 0..5).prop_map(EntriesT::Plausible),
        prop::bool::weighted(0.2),
        context(),
        prop_oneof![3 => Just(0i64), 1 => -2i64..=2],
    );
    (addressing, numbers, payload)
        .prop_map(
            |(
                (msg_type, from, term),
                (index, log_term, commit, commit_term, reject_hint),
                (entries, reject, context, priority),
            )| MsgT {
                msg_type,
                to: To::Me,
                from,
                term,
                log_term,
                index,
                commit,
                commit_term,
                reject_hint,
                request_snapshot: Num::Lit(0),
                entries,
                snapshot: None,
                reject,
                context,
                priority,
                deprecated_priority: 0,
            },
        )
        .boxed()
}

fn arbitrary_msg() -> BoxedStrategy<MsgT> {
    let addressing = (
        msg_type(),
        prop_oneof![
            4 => Just(To::Me),
            2 => Just(To::Id(0)),
            1 => select(IDS.to_vec()).prop_map(To::Id),
        ],
        prop_oneof![6 => 1u64..=4, 1 => select(IDS.to_vec())],
    );
    let numbers = (
        term_num(),
        log_term_num(),
        index_num(),
        index_num(),
        commit_term_num(),
        index_num(),
        prop_oneof![4 => Just(Num::Lit(0)), 1 => index_num()],
    );
    let payload = (
        entries_t(),
        snapshot_t(),
        any::<bool>(),
        context(),
        prop_oneof![3 => Just(0i64), 1 => any::<i64>(), 1 => Just(i64::MIN), 1 => Just(i64::MAX)],
        prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
    );
    (addressing, numbers, payload)
        .prop_map(
            |(
                (msg_type, to, from),
                (term, log_term, index, commit, commit_term, reject_hint, request_snapshot),
                (entries, snapshot, reject, context, priority, deprecated_priority),
            )| MsgT {
                msg_type,
                to,
                from,
                term,
                log_term,
                index,
                commit,
                commit_term,
                reject_hint,
                request_snapshot,
                entries,
                snapshot,
                reject,
                context,
                priority,
                deprecated_priority,
            },
        )
        .boxed()
}

fn flags() -> impl Strategy<Value = Flags> {
    (any::<bool>(), any::<bool>()).prop_map(|(check_quorum, pre_vote)| Flags {
        check_quorum,
        pre_vote,
    })
}

/// One input to the node under test.
#[derive(Debug, Clone)]
enum Op {
    Step(Box<MsgT>),
    Tick(u8),
    Propose(Vec<u8>),
    Campaign,
    Ready,
    ReportUnreachable(u64),
}

fn op() -> BoxedStrategy<Op> {
    prop_oneof![
        10 => msg().prop_map(|m| Op::Step(Box::new(m))),
        // Up to 25 ticks: enough for heartbeats, elections and check-quorum rounds.
        2 => (1u8..=25).prop_map(Op::Tick),
        1 => small_bytes().prop_map(Op::Propose),
        1 => Just(Op::Campaign),
        3 => Just(Op::Ready),
        1 => select(IDS.to_vec()).prop_map(Op::ReportUnreachable),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// The properties.
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

/// The node under test, with the ids it may legitimately have voted for.
struct Subject {
    peer: Peer,
    role: Role,
    votable: BTreeSet<u64>,
}

impl Subject {
    fn new(role: Role, flags: Flags) -> Subject {
        let peer = build(role, flags);
        let votable = [peer.id(), peer.raw.raft.vote].into_iter().collect();
        Subject {
            peer,
            role,
            votable,
        }
    }

    /// Safety invariants of the node's state (§5.3, §5.4).
    fn check_invariants(&self, after: &str) -> Result<(), TestCaseError> {
        let r = &self.peer.raw.raft;
        let log = &r.raft_log;
        let (role, id) = (self.role, r.id);
        let last = log.last_index();
        prop_assert!(
            log.committed <= last,
            "{role:?} node {id} after {after}: committed {} is beyond the last index {last}",
            log.committed
        );
        prop_assert!(
            log.applied <= log.committed,
            "{role:?} node {id} after {after}: applied {} is beyond committed {}",
            log.applied,
            log.committed
        );
        prop_assert!(
            log.applying <= log.committed,
            "{role:?} node {id} after {after}: applying {} is beyond committed {}",
            log.applying,
            log.committed
        );
        prop_assert!(
            log.persisted <= last,
            "{role:?} node {id} after {after}: persisted {} is beyond the last index {last}",
            log.persisted
        );
        let first = log.first_index();
        prop_assert!(
            last.saturating_sub(first) < 10_000,
            "{role:?} node {id} after {after}: the log spans {first}..={last}"
        );
        let mut prev = log.term(first - 1).unwrap_or(0);
        for index in first..=last {
            let term = log.term(index).map_err(|e| {
                TestCaseError::fail(format!(
                    "{role:?} node {id} after {after}: the term at {index} cannot be read: {e}"
                ))
            })?;
            // Log terms only grow (each leader appends after everything of earlier terms).
            prop_assert!(
                term >= prev,
                "{role:?} node {id} after {after}: term {term} at index {index} follows term {prev}"
            );
            // No node holds an entry of a term it has not reached; for a leader this is the rule
            // that it only appends entries of its own term on top of older ones.
            prop_assert!(
                term <= r.term,
                "{role:?} node {id} ({:?}) after {after}: its log holds term {term} at index \
                 {index}, above its current term {}",
                r.state,
                r.term
            );
            prev = term;
        }
        prop_assert!(
            r.vote == INVALID_ID || self.votable.contains(&r.vote),
            "{role:?} node {id} after {after}: voted for {}, which never asked for a vote",
            r.vote
        );
        match r.state {
            StateRole::Leader => prop_assert_eq!(
                r.leader_id,
                id,
                "{:?} node {} is leader but names another leader, after {}",
                role,
                id,
                after
            ),
            StateRole::Candidate => prop_assert_eq!(
                r.vote,
                id,
                "{:?} node {} is a candidate that did not vote for itself, after {}",
                role,
                id,
                after
            ),
            _ => {}
        }
        Ok(())
    }

    /// Steps one message; a refusal must leave the node as it was.
    fn step(&mut self, t: &MsgT) -> Result<(), TestCaseError> {
        let m = t.resolve(&self.peer);
        if m.msg_type == MessageType::MsgRequestVote as i32 {
            self.votable.insert(m.from);
        }
        let name = format!("step({})", describe_message(&m));
        self.command(&name, |raw| raw.step(m))
    }

    /// A local command; if it fails other than by dropping a proposal, nothing may change.
    fn command(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut RawNode<MemStorage>) -> raft_core::Result<()>,
    ) -> Result<(), TestCaseError> {
        let before = Observed::of(&self.peer);
        let result = f(&mut self.peer.raw);
        if let Err(e) = &result {
            if *e != Error::ProposalDropped {
                let after = Observed::of(&self.peer);
                prop_assert_eq!(
                    &after,
                    &before,
                    "{:?} node {}: {} failed with `{}` but changed the state",
                    self.role,
                    self.peer.id(),
                    name,
                    e
                );
            }
        }
        self.check_invariants(&format!("{name} -> {result:?}"))
    }

    fn ready(&mut self) -> Result<(), TestCaseError> {
        let (role, id) = (self.role, self.peer.id());
        self.peer
            .handle_ready()
            .map_err(|e| TestCaseError::fail(format!("{role:?} node {id}: {e}")))?;
        self.check_invariants("handling a Ready")
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Step(t) => self.step(t),
            Op::Tick(n) => {
                // A tick may start a campaign, in which the node votes for itself (already votable).
                for _ in 0..*n {
                    self.peer.raw.tick();
                }
                self.check_invariants(&format!("{n} ticks"))
            }
            Op::Propose(data) => self.command("propose", |raw| raw.propose(vec![], data.clone())),
            Op::Campaign => self.command("campaign", |raw| raw.campaign()),
            Op::Ready => self.ready(),
            Op::ReportUnreachable(id) => self.command("report_unreachable", |raw| {
                raw.report_unreachable(*id);
                Ok(())
            }),
        }
    }
}

/// Property 1-3 for one message: step it, then run the node's Ready cycle.
fn single_message(role: Role, flags: Flags, t: &MsgT) -> Result<(), TestCaseError> {
    let mut s = Subject::new(role, flags);
    s.check_invariants("building the fixture")?;
    s.step(t)?;
    s.ready()?;
    // The Ready's acknowledgements may be followed by a second Ready (e.g. newly committed entries).
    s.ready()
}

/// Property 1-3 for a sequence of inputs, ending with the Ready cycle.
fn sequence(role: Role, flags: Flags, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut s = Subject::new(role, flags);
    for op in ops {
        s.run(op)?;
    }
    s.ready()
}

const SINGLE_CASES: u32 = 2000;
const SEQUENCE_CASES: u32 = 2000;

macro_rules! role_properties {
    ($($module:ident => $role:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: SINGLE_CASES, failure_persistence: None, ..ProptestConfig::default() })]

                #[test]
                fn any_single_message_is_refused_cleanly_or_handled_safely(
                    flags in flags(),
                    m in msg(),
                ) {
                    single_message($role, flags, &m)?;
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig { cases: SEQUENCE_CASES, failure_persistence: None, ..ProptestConfig::default() })]

                #[test]
                fn message_sequences_with_ticks_proposals_and_readys_keep_invariants(
                    flags in flags(),
                    ops in vec(op(), 1..20),
                ) {
                    sequence($role, flags, &ops)?;
                }
            }
        }
    )*};
}

role_properties! {
    follower => Role::Follower,
    divergent_follower => Role::DivergentFollower,
    candidate => Role::Candidate,
    pre_candidate => Role::PreCandidate,
    leader => Role::Leader,
    learner => Role::Learner,
    removed => Role::Removed,
    uninitialised => Role::Uninitialised,
}

// ---------------------------------------------------------------------------------------------
// The fixtures are what they claim to be (otherwise the properties test less than they say).
// ---------------------------------------------------------------------------------------------

fn all_flags() -> [Flags; 4] {
    [(false, false), (false, true), (true, false), (true, true)].map(|(check_quorum, pre_vote)| {
        Flags {
            check_quorum,
            pre_vote,
        }
    })
}

fn log_terms(p: &Peer) -> Vec<u64> {
    let log = &p.raw.raft.raft_log;
    (log.first_index()..=log.last_index())
        .map(|i| log.term(i).expect("term readable"))
        .collect()
}

#[test]
fn fixtures_reach_the_intended_roles_with_multi_term_logs() {
    let history = [1, 1, 1, 2, 2, 3, 3, 3];
    for flags in all_flags() {
        let p = build(Role::Follower, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.leader_id, r.term),
            (StateRole::Follower, 1, 3),
            "{flags:?}"
        );
        assert_eq!(
            log_terms(&p),
            [&history[..], &[3]].concat(),
            "follower log, {flags:?}"
        );
        assert!(
            !r.raft_log.unstable_entries().is_empty() && !r.msgs_after_append.is_empty(),
            "the follower should hold an unpersisted entry and an unsent ack, {flags:?}"
        );

        let p = build(Role::DivergentFollower, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.leader_id, r.term),
            (StateRole::Follower, 2, 4),
            "{flags:?}"
        );
        assert_eq!(
            log_terms(&p),
            [&history[..], &[3, 3]].concat(),
            "divergent log, {flags:?}"
        );
        assert_eq!(
            r.raft_log.committed, 8,
            "divergent follower commit, {flags:?}"
        );

        let p = build(Role::Candidate, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.term, r.vote),
            (StateRole::Candidate, 4, 3),
            "{flags:?}"
        );

        let p = build(Role::PreCandidate, flags);
        let r = &p.raw.raft;
        assert_eq!((r.state, r.term), (StateRole::PreCandidate, 3), "{flags:?}");

        let p = build(Role::Leader, flags);
        let r = &p.raw.raft;
        assert_eq!((r.state, r.term), (StateRole::Leader, 3), "{flags:?}");
        let state_of = |id| r.prs.get(id).map(|pr| pr.state);
        assert_eq!(state_of(2), Some(ProgressState::Replicate), "{flags:?}");
        assert_eq!(state_of(3), Some(ProgressState::Probe), "{flags:?}");
        assert!(
            r.prs.get(3).is_some_and(|pr| pr.probe_sent),
            "node 3 paused, {flags:?}"
        );
        assert_eq!(state_of(4), Some(ProgressState::Replicate), "{flags:?}");
        assert_eq!(
            (r.raft_log.committed, r.raft_log.last_index()),
            (9, 10),
            "leader commit and last index, {flags:?}"
        );

        let p = build(Role::Learner, flags);
        let r = &p.raw.raft;
        assert!(!r.promotable() && r.prs.conf().learners.contains(&4));
        assert_eq!(
            (r.state, r.leader_id),
            (StateRole::Follower, 1),
            "{flags:?}"
        );
        assert_eq!(log_terms(&p), history, "learner log, {flags:?}");

        let p = build(Role::Removed, flags);
        let r = &p.raw.raft;
        assert!(
            r.prs.get(4).is_none(),
            "node 4 should be outside its configuration"
        );
        assert_eq!(log_terms(&p), history, "removed node's log, {flags:?}");
        assert_eq!(r.raft_log.committed, 8, "removed node's commit, {flags:?}");

        let p = build(Role::Uninitialised, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.prs.ids().count(), r.raft_log.last_index()),
            (0, 0),
            "{flags:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Minimised failures the properties found: regression tests for fixed core bugs, and ignored
// tests for open ones.
// ---------------------------------------------------------------------------------------------

/// Node 2 of {1, 2, 3} with an empty log.
fn fresh_follower() -> Peer {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    Peer::new(
        &config(
            2,
            Flags {
                check_quorum: false,
                pre_vote: false,
            },
        ),
        store,
    )
}

fn append(index: u64, log_term: u64, commit: u64, entries: &[(u64, u64)]) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 1,
        to: 2,
        term: 1,
        index,
        log_term,
        commit,
        entries: entries
            .iter()
            .map(|&(index, term)| Entry {
                index,
                term,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// An append must name an entry the follower holds (§5.3 consistency check); one whose previous
/// index lies beyond the log can never match, whatever term it claims.
#[test]
fn append_whose_previous_index_is_beyond_the_log_is_rejected_not_stored_with_a_gap() {
    let mut p = fresh_follower();
    // The previous entry (1, term 0) does not exist: the log is empty.
    let result = p.raw.step(append(1, 0, 0, &[(2, 1)]));
    let r = &p.raw.raft;
    assert_eq!(
        r.raft_log.last_index(),
        0,
        "an append after missing index 1 was stored (result {result:?}); the log now claims term \
         {:?} at index 1",
        r.raft_log.term(1)
    );
    let acked = r.msgs_after_append.iter().any(|m| !m.reject);
    assert!(
        !acked,
        "the impossible append was acknowledged: {:?}",
        r.msgs_after_append
    );
}

/// Same root cause, through the conflict search: a new entry "of term 0" beyond the log is taken
/// for one the follower already holds, and the entries after it are stored with a gap.
#[test]
fn append_of_an_entry_of_term_0_beyond_the_log_is_not_skipped_over() {
    let mut p = fresh_follower();
    // (1, term 0) cannot be a real entry; (2, term 1) must not be stored without an entry at 1.
    let result = p.raw.step(append(0, 0, 0, &[(1, 0), (2, 1)]));
    let log = &p.raw.raft.raft_log;
    let stored: Vec<_> = log
        .unstable_entries()
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    let contiguous = stored
        .iter()
        .enumerate()
        .all(|(i, &(index, _))| index == log.first_index() + i as u64);
    assert!(
        contiguous,
        "the unstable log holds {stored:?} starting at index {} (result {result:?}): a gap",
        log.first_index()
    );
}

/// Same root cause, without entries: the commit index moves past the end of the log (a
/// `debug_assert!` panic in debug builds, a corrupt commit index in release builds).
#[test]
fn empty_append_whose_previous_index_is_beyond_the_log_does_not_move_the_commit_index() {
    let mut p = fresh_follower();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.raw.step(append(5, 0, 5, &[]))
    }));
    assert!(result.is_ok(), "step panicked on an append beyond the log");
    let log = &p.raw.raft.raft_log;
    assert_eq!(
        (log.committed, log.last_index()),
        (0, 0),
        "an append beyond the (empty) log moved the commit index"
    );
}

/// A node refusing a pre-vote answers with a rejection (thesis §9.6); it must not panic because its
/// own term is still 0 (a fresh cluster), which is where priority elections refuse equal logs.
#[test]
fn pre_vote_refused_for_priority_at_term_0_never_sends_a_term_0_response() {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    let mut cfg = config(
        2,
        Flags {
            check_quorum: false,
            pre_vote: true,
        },
    );
    cfg.priority = 5;
    let mut p = Peer::new(&cfg, store);
    let request = Message {
        msg_type: MessageType::MsgRequestPreVote as i32,
        from: 1,
        to: 2,
        term: 1,
        priority: 1,
        ..Default::default()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.raw.step(request)));
    assert!(
        matches!(result, Ok(Ok(()))),
        "stepping a pre-vote request of a lower-priority candidate into a node at term 0 panicked \
         or failed"
    );
    // No vote response may carry term 0 (invalid on the wire); at term 0 the refusal is silent.
    let r = &p.raw.raft;
    let queued: Vec<&Message> = r.msgs.iter().chain(&r.msgs_after_append).collect();
    assert!(
        queued.iter().all(|m| m.term != 0),
        "a message with term 0 was queued: {queued:?}"
    );
    assert!(
        !queued
            .iter()
            .any(|m| m.msg_type == MessageType::MsgRequestPreVoteResponse as i32 && !m.reject),
        "the lower-priority candidate was granted a pre-vote: {queued:?}"
    );
    assert_eq!(r.term, 0, "refusing a pre-vote must not change the term");
}
