//! (b) The structured fuzzer: one node's recorded life replayed into a fresh node with mutations
//! (fields off by one, zeroed or maxed; entries dropped, duplicated, reordered or with tweaked
//! terms and indexes; types swapped; senders and recipients swapped; snapshot metadata mangled;
//! messages dropped, duplicated or delivered again later).

use crate::recording::{traces, Event, NODES};
use crate::subject::{Subject, STEPPED_STRUCTURED};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use raft_core::eraftpb::{ConfState, Message};
use std::collections::BTreeMap;

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
pub struct ReplayCase {
    trace: Index,
    node: Index,
    /// (which of the life's steps, mutation); several may hit the same step.
    mutations: Vec<(Index, Mutation)>,
}

pub fn replay_case() -> impl Strategy<Value = ReplayCase> {
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
pub fn replay(case: &ReplayCase) -> Result<(), TestCaseError> {
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
