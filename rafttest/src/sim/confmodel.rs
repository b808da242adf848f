//! An independent model of membership changes: the configuration a change must lead to, computed
//! from the rules rather than by the core (etcd-io/raft's `confchange` semantics, thesis §4.3 for
//! joint consensus). Every node checks each change it applies against it.
//!
//! - A change of one voter at most is simple: voters and learners change in place.
//! - Otherwise (several changes, or an explicit transition) it enters a joint configuration: the
//!   old voters become the outgoing half, the changes apply to the incoming half, and a voter
//!   demoted to learner waits in `learners_next` while it is still an outgoing voter.
//! - An empty change leaves the joint configuration: the outgoing half goes, and the nodes
//!   waiting in `learners_next` become learners.

use raft_core::eraftpb::{ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState};
use std::collections::BTreeSet;

/// A configuration as sets, so that order does not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Conf {
    voters: BTreeSet<u64>,
    outgoing: BTreeSet<u64>,
    learners: BTreeSet<u64>,
    learners_next: BTreeSet<u64>,
    auto_leave: bool,
}

impl Conf {
    pub(super) fn of(cs: &ConfState) -> Conf {
        Conf {
            voters: cs.voters.iter().copied().collect(),
            outgoing: cs.voters_outgoing.iter().copied().collect(),
            learners: cs.learners.iter().copied().collect(),
            learners_next: cs.learners_next.iter().copied().collect(),
            auto_leave: cs.auto_leave,
        }
    }

    fn joint(&self) -> bool {
        !self.outgoing.is_empty()
    }
}

/// The configuration `cc` turns `before` into, or why the change must be refused.
pub(super) fn apply(before: &ConfState, cc: &ConfChangeV2) -> Result<Conf, &'static str> {
    let mut c = Conf::of(before);
    if cc.changes.is_empty() {
        if !c.joint() {
            return Err("an empty change leaves a joint configuration, and there is none");
        }
        c.outgoing.clear();
        let next = std::mem::take(&mut c.learners_next);
        c.learners.extend(next);
        c.auto_leave = false;
        return Ok(c);
    }
    let transition = cc.transition();
    let joint = transition != ConfChangeTransition::Auto || cc.changes.len() > 1;
    if c.joint() {
        return Err("the configuration is joint: it must be left first");
    }
    if joint {
        if c.voters.is_empty() {
            return Err("a configuration without voters cannot become joint");
        }
        c.outgoing = c.voters.clone();
        c.auto_leave = transition != ConfChangeTransition::Explicit;
    }
    for change in &cc.changes {
        let id = change.node_id;
        if id == 0 {
            continue; // etcd skips changes of node 0
        }
        match change.change_type() {
            ConfChangeType::AddNode => {
                c.voters.insert(id);
                c.learners.remove(&id);
                c.learners_next.remove(&id);
            }
            ConfChangeType::AddLearnerNode => {
                c.voters.remove(&id);
                c.learners.remove(&id);
                c.learners_next.remove(&id);
                if c.outgoing.contains(&id) {
                    c.learners_next.insert(id);
                } else {
                    c.learners.insert(id);
                }
            }
            ConfChangeType::RemoveNode => {
                c.voters.remove(&id);
                c.learners.remove(&id);
                c.learners_next.remove(&id);
            }
        }
    }
    if c.voters.is_empty() {
        return Err("the change removes every voter");
    }
    if !joint {
        let before: BTreeSet<u64> = before.voters.iter().copied().collect();
        if before.symmetric_difference(&c.voters).count() > 1 {
            return Err("more than one voter changed without a joint configuration");
        }
    }
    Ok(c)
}

/// Checks what node `id` applied: the core's configuration after `cc` (`after`, or the core's
/// refusal) against the model's.
pub(super) fn check(
    id: u64,
    before: &ConfState,
    cc: &ConfChangeV2,
    after: Result<&ConfState, String>,
) -> Result<(), String> {
    let text = raft_proto::conf_changes_to_string(&cc.changes);
    match (apply(before, cc), after) {
        (Ok(want), Ok(got)) if want == Conf::of(got) => Ok(()),
        (Ok(want), Ok(got)) => Err(format!(
            "membership: node {id} applied [{text}] to {before:?} and got {got:?}; the rules give \
             {want:?}"
        )),
        (Ok(want), Err(e)) => Err(format!(
            "membership: node {id} refused [{text}] on {before:?} ({e}), a valid change leading to \
             {want:?}; the leader accepted it when proposed"
        )),
        (Err(why), Ok(got)) => Err(format!(
            "membership: node {id} applied [{text}] to {before:?} and got {got:?}, though {why}"
        )),
        (Err(_), Err(_)) => Err(format!(
            "membership: node {id} refused a committed change [{text}] on {before:?}: the leader \
             should have refused it when proposed"
        )),
    }
}
