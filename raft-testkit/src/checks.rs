//! The rules checked after every input a harness gives a node: a refused input changes nothing
//! observable, and the log's safety invariants hold.

use crate::peer::Peer;
use raft_core::eraftpb::Message;
use raft_core::tracker::Progress;
use raft_core::{Error, StateRole};

/// The observable state of a node: what a refused input (other than a dropped proposal) must
/// leave as it was. Cheap enough to take around every fuzzed step; [`crate::NodeState`] is the
/// complete state, for the tests that refuse one input at a time.
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

/// The longest log any harness builds is far shorter; a longer one means an index ran away.
pub const MAX_LOG_SPAN: u64 = 10_000;

/// The safety invariants of `p` (§5.3, §5.4), and that its term is not below `min_term` (terms
/// never go down). Returns the first broken one, described.
///
/// Checked: commit <= last index; applied and applying <= commit; persisted <= last index; the
/// log holds at most [`MAX_LOG_SPAN`] entries, every term in it is readable, terms never
/// decrease along it and never exceed the node's term; a leader names itself as leader and a
/// candidate voted for itself.
pub fn check_invariants(p: &Peer, min_term: u64) -> Result<(), String> {
    let r = &p.raw.raft;
    let log = &r.raft_log;
    let last = log.last_index();
    if r.term < min_term {
        return Err(format!("the term went down from {min_term} to {}", r.term));
    }
    if log.committed > last {
        return Err(format!(
            "committed {} is beyond the last index {last}",
            log.committed
        ));
    }
    if log.applied > log.committed || log.applying > log.committed {
        return Err(format!(
            "applied {} / applying {} is beyond committed {}",
            log.applied, log.applying, log.committed
        ));
    }
    if log.persisted > last {
        return Err(format!(
            "persisted {} is beyond the last index {last}",
            log.persisted
        ));
    }
    let first = log.first_index();
    if last.saturating_sub(first) >= MAX_LOG_SPAN {
        return Err(format!("the log spans {first}..={last}"));
    }
    let mut prev = log.term(first - 1).unwrap_or(0);
    for index in first..=last {
        let term = log
            .term(index)
            .map_err(|e| format!("the term at {index} cannot be read: {e}"))?;
        // Log terms only grow (each leader appends after everything of earlier terms), and no
        // node holds an entry of a term it has not reached; for a leader this is the rule that it
        // only appends entries of its own term on top of older ones.
        if term < prev || term > r.term {
            return Err(format!(
                "term {term} at index {index} follows term {prev} (node term {})",
                r.term
            ));
        }
        prev = term;
    }
    match r.state {
        StateRole::Leader if r.leader_id != r.id => {
            Err(format!("it leads but names leader {}", r.leader_id))
        }
        StateRole::Candidate if r.vote != r.id => Err(format!(
            "it is a candidate that voted for {}, not for itself",
            r.vote
        )),
        _ => Ok(()),
    }
}

/// The rule for a refused input: when `result` is an error other than a dropped proposal, `p`'s
/// observable state is still `before`. Returns the change, described.
pub fn check_refusal<T>(
    before: &Observed,
    p: &Peer,
    result: &raft_core::Result<T>,
) -> Result<(), String> {
    let Err(e) = result else {
        return Ok(());
    };
    if *e == Error::ProposalDropped {
        return Ok(());
    }
    let after = Observed::of(p);
    if after == *before {
        return Ok(());
    }
    Err(format!(
        "failed with `{e}` but changed the state:\nbefore {before:?}\nafter  {after:?}"
    ))
}

/// Panics unless [`check_invariants`] holds for `p` after the input named `after`.
pub fn assert_invariants(p: &Peer, min_term: u64, after: &str) {
    if let Err(e) = check_invariants(p, min_term) {
        panic!("node {} after {after}: {e}", p.id());
    }
}

/// Steps `m` into `p` and returns the step's result; panics if a refusal changed the node
/// ([`check_refusal`]) or an invariant broke ([`check_invariants`], the term not below the one
/// before the step).
pub fn step_checked(p: &mut Peer, m: Message) -> raft_core::Result<()> {
    let before = Observed::of(p);
    let name = raft_proto::describe_message(&m);
    let result = p.raw.step(m);
    if let Err(e) = check_refusal(&before, p, &result) {
        panic!("node {}: step({name}) {e}", p.id());
    }
    assert_invariants(p, before.term, &name);
    result
}
