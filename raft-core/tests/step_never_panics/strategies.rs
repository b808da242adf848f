//! Arbitrary messages and inputs. Numbers are generated as templates resolved against the node's
//! state at the moment of stepping, so that "around the current term / last index / commit" stays
//! meaningful along a sequence in which those move.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use raft_core::eraftpb::{ConfState, Entry, Message, Snapshot, SnapshotMetadata};
use raft_testkit::{Flags, Peer};

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
pub struct MsgT {
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
    pub fn resolve(&self, p: &Peer) -> Message {
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
pub fn msg() -> BoxedStrategy<MsgT> {
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

/// Check-quorum and pre-vote, on and off.
pub fn flags() -> impl Strategy<Value = Flags> {
    (any::<bool>(), any::<bool>()).prop_map(|(check_quorum, pre_vote)| Flags {
        check_quorum,
        pre_vote,
    })
}

/// One input to the node under test.
#[derive(Debug, Clone)]
pub enum Op {
    Step(Box<MsgT>),
    Tick(u8),
    Propose(Vec<u8>),
    Campaign,
    Ready,
    ReportUnreachable(u64),
}

pub fn op() -> BoxedStrategy<Op> {
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
