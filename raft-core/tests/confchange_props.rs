//! Property tests of membership changes (`raft_core::confchange::Changer`): random sequences of
//! simple changes, joint changes (with and without auto-leave) and leaves, applied to a bootstrapped
//! group of 1 to 5 voters (ids 1..=7, plus learners). Each step is applied through the `Changer`
//! and replaces the configuration when accepted. After every step:
//!
//! 1. the incoming voters are never empty; no node is both learner and voter (either half); every
//!    `learners_next` id is an outgoing voter and neither an incoming voter nor a learner; outside a
//!    joint configuration `learners_next` is empty and `auto_leave` off (etcd-io/raft's
//!    `checkInvariants`);
//! 2. the configuration round-trips through `to_conf_state` and `restore`;
//! 3. a simple change never moves more than one incoming voter (thesis §4.1);
//! 4. the `Changer` is pure: the base is untouched, and a refusal (`Error::ConfChange`) changes
//!    nothing;
//! 5. the outcome is exactly what a declarative statement of the rules predicts (each change sets
//!    a node's role outright, so the last change naming a node decides its role; node 0 is ignored;
//!    refusals exactly when a rule is broken), and `Changer::apply` on the equivalent `ConfChangeV2`
//!    agrees with the direct call.
//!
//! Changes name ids 0..=7, so that node 0 (always ignored) shows up too.

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use raft_core::confchange::{bootstrap, restore, Changer};
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};
use raft_core::quorum::{JointConfig, MajorityConfig};
use raft_core::tracker::Configuration;
use raft_core::Error;
use raft_proto::{conf_changes_to_string, new_conf_change_single};

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Op {
    /// `Changer::simple` with these changes.
    Simple(Vec<ConfChangeSingle>),
    /// `Changer::enter_joint(auto_leave, changes)`.
    EnterJoint(bool, Vec<ConfChangeSingle>),
    /// `Changer::leave_joint`.
    Leave,
}

impl Op {
    /// A one-line form for failure messages: `simple v1 l2`, `enter-joint autoleave r3`, `leave`.
    fn describe(&self) -> String {
        match self {
            Op::Simple(cc) => format!("simple {}", conf_changes_to_string(cc)),
            Op::EnterJoint(auto, cc) => {
                let flag = if *auto { " autoleave" } else { "" };
                format!("enter-joint{flag} {}", conf_changes_to_string(cc))
            }
            Op::Leave => "leave".to_string(),
        }
    }
}

fn single() -> impl Strategy<Value = ConfChangeSingle> {
    let change_type = prop_oneof![
        Just(ConfChangeType::AddNode),
        Just(ConfChangeType::AddLearnerNode),
        Just(ConfChangeType::RemoveNode),
    ];
    (change_type, 0..=7u64).prop_map(|(t, id)| new_conf_change_single(id, t))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => vec(single(), 1..=3).prop_map(Op::Simple),
        3 => (any::<bool>(), vec(single(), 0..=4)).prop_map(|(a, cc)| Op::EnterJoint(a, cc)),
        2 => Just(Op::Leave),
    ]
}

/// A bootstrapped group: 1..=5 voters and 0..=3 learners that are not voters, ids 1..=7.
fn start() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (btree_set(1..=7u64, 1..=5), btree_set(1..=7u64, 0..=3)).prop_map(|(voters, learners)| {
        let learners = learners.difference(&voters).copied().collect();
        (voters.into_iter().collect(), learners)
    })
}

fn scenario() -> impl Strategy<Value = ((Vec<u64>, Vec<u64>), Vec<Op>)> {
    (start(), vec(op(), 0..=30))
}

/// The configuration of a bootstrapped group.
fn bootstrapped(voters: &[u64], learners: &[u64]) -> Configuration {
    let cs = bootstrap(voters.iter().copied(), learners.iter().copied())
        .unwrap_or_else(|e| panic!("bootstrap({voters:?}, {learners:?}) refused: {e}"));
    restore(&cs).unwrap_or_else(|e| panic!("restore of bootstrapped {cs:?} refused: {e}"))
}

/// The number of ids in exactly one of `a` and `b`.
fn symmetric_difference(a: &[u64], b: &[u64]) -> usize {
    a.iter().filter(|id| !b.contains(id)).count() + b.iter().filter(|id| !a.contains(id)).count()
}

/// Point 1 of the module doc, for any configuration reached from a bootstrap.
fn check_invariants(cfg: &Configuration) -> Result<(), TestCaseError> {
    prop_assert!(
        !cfg.voters.incoming.is_empty(),
        "no incoming voter in {cfg:?}"
    );
    for id in &cfg.learners {
        prop_assert!(
            !cfg.voters.contains(*id),
            "node {id} is both learner and voter in {cfg:?}"
        );
    }
    for id in &cfg.learners_next {
        prop_assert!(
            cfg.voters.outgoing.contains(*id),
            "learners_next holds {id}, which is not an outgoing voter, in {cfg:?}"
        );
        prop_assert!(
            !cfg.voters.incoming.contains(*id) && !cfg.learners.contains(id),
            "learners_next holds {id}, which is also an incoming voter or a learner, in {cfg:?}"
        );
    }
    if !cfg.voters.is_joint() {
        prop_assert!(
            cfg.learners_next.is_empty() && !cfg.auto_leave,
            "learners_next or auto_leave set outside a joint configuration: {cfg:?}"
        );
    }
    let back = restore(&cfg.to_conf_state());
    prop_assert_eq!(
        back.as_ref(),
        Ok(cfg),
        "the configuration does not round-trip through ConfState and restore"
    );
    Ok(())
}

/// What the rules say `op` does to `base`: `None` when it must be refused.
///
/// Each single change sets the role of its node outright (voter: incoming voter; learner: learner,
/// or `learners_next` while it still votes in the outgoing half; remove: no role in the incoming
/// configuration), independently of its previous role and of other nodes, so the last change that
/// names a node decides its role. Node 0 is ignored.
fn predicted(base: &Configuration, op: &Op) -> Option<Configuration> {
    let joint = base.voters.is_joint();
    let (auto_leave, changes, outgoing) = match op {
        Op::Leave => {
            if !joint {
                return None;
            }
            let mut learners: BTreeSet<u64> = base.learners.iter().copied().collect();
            learners.extend(&base.learners_next);
            return Some(Configuration {
                voters: JointConfig::new(base.voters.incoming.ids().iter().copied()),
                learners: learners.into_iter().collect(),
                learners_next: Vec::new(),
                auto_leave: false,
            });
        }
        Op::Simple(changes) => {
            if joint {
                return None;
            }
            (false, changes, MajorityConfig::default())
        }
        Op::EnterJoint(auto_leave, changes) => {
            if joint || base.voters.incoming.is_empty() {
                return None;
            }
            (*auto_leave, changes, base.voters.incoming.clone())
        }
    };
    let mut incoming: BTreeSet<u64> = base.voters.incoming.ids().iter().copied().collect();
    let mut learners: BTreeSet<u64> = base.learners.iter().copied().collect();
    let mut learners_next: BTreeSet<u64> = base.learners_next.iter().copied().collect();
    let last_change = |id: u64| changes.iter().rev().find(|cc| cc.node_id == id);
    let named: BTreeSet<u64> = changes.iter().map(|cc| cc.node_id).collect();
    for id in named.into_iter().filter(|id| *id != 0) {
        let cc = last_change(id).expect("a named node has a change");
        incoming.remove(&id);
        learners.remove(&id);
        learners_next.remove(&id);
        match ConfChangeType::try_from(cc.change_type).expect("generated types are valid") {
            ConfChangeType::AddNode => {
                incoming.insert(id);
            }
            ConfChangeType::AddLearnerNode if outgoing.contains(id) => {
                learners_next.insert(id);
            }
            ConfChangeType::AddLearnerNode => {
                learners.insert(id);
            }
            ConfChangeType::RemoveNode => {}
        }
    }
    if incoming.is_empty() {
        return None;
    }
    let before = base.voters.incoming.ids();
    let after: Vec<u64> = incoming.iter().copied().collect();
    if matches!(op, Op::Simple(_)) && symmetric_difference(before, &after) > 1 {
        return None;
    }
    Some(Configuration {
        voters: JointConfig {
            incoming: MajorityConfig::new(after),
            outgoing,
        },
        learners: learners.into_iter().collect(),
        learners_next: learners_next.into_iter().collect(),
        auto_leave,
    })
}

/// The `ConfChangeV2` that `Changer::apply` must treat as `op`, if there is one (a simple change
/// of several singles is joint in the v2 form).
fn v2_equivalent(op: &Op) -> Option<ConfChangeV2> {
    let (transition, changes) = match op {
        Op::Simple(cc) if cc.len() == 1 => (ConfChangeTransition::Auto, cc.clone()),
        Op::Simple(_) => return None,
        Op::EnterJoint(true, cc) => (ConfChangeTransition::Implicit, cc.clone()),
        Op::EnterJoint(false, cc) => (ConfChangeTransition::Explicit, cc.clone()),
        Op::Leave => (ConfChangeTransition::Auto, Vec::new()),
    };
    Some(ConfChangeV2 {
        transition: transition as i32,
        changes,
        context: Default::default(),
    })
}

/// What kind of step happened, for the coverage test.
#[derive(Debug, Default)]
struct Coverage {
    accepted_simple: usize,
    accepted_enter: usize,
    accepted_enter_with_learners_next: usize,
    accepted_leave: usize,
    refused: usize,
}

/// Applies `op` to `cfg` through the `Changer`, checks every property, and returns the new
/// configuration (the old one when refused).
fn step(
    cfg: &Configuration,
    op: &Op,
    coverage: &mut Coverage,
) -> Result<Configuration, TestCaseError> {
    let snapshot = cfg.clone();
    let changer = Changer::new(cfg);
    let result = match op {
        Op::Simple(cc) => changer.simple(cc),
        Op::EnterJoint(auto_leave, cc) => changer.enter_joint(*auto_leave, cc),
        Op::Leave => changer.leave_joint(),
    };
    prop_assert_eq!(cfg, &snapshot, "the Changer modified its base");
    if let Some(cc) = v2_equivalent(op) {
        let via_apply = Changer::new(cfg).apply(&cc);
        prop_assert_eq!(
            &via_apply,
            &result,
            "Changer::apply({:?}) disagrees with the direct call",
            cc
        );
    }
    let expected = predicted(cfg, op);
    let new = match result {
        Err(Error::ConfChange(reason)) => {
            prop_assert!(
                expected.is_none(),
                "refused ({reason}) but the rules allow it, giving {expected:?}"
            );
            coverage.refused += 1;
            return Ok(snapshot);
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "a refusal must be Error::ConfChange, got {other:?}"
            )))
        }
        Ok(new) => new,
    };
    prop_assert_eq!(
        Some(&new),
        expected.as_ref(),
        "the result differs from what the rules predict"
    );
    check_invariants(&new)?;
    match op {
        Op::Simple(_) => {
            // Thesis §4.1: at most one voter per simple change.
            let moved = symmetric_difference(cfg.voters.incoming.ids(), new.voters.incoming.ids());
            prop_assert!(
                moved <= 1 && !new.voters.is_joint(),
                "a simple change moved {moved} voters"
            );
            coverage.accepted_simple += 1;
        }
        Op::EnterJoint(auto_leave, _) => {
            prop_assert_eq!(&new.voters.outgoing, &cfg.voters.incoming);
            prop_assert_eq!(new.auto_leave, *auto_leave);
            coverage.accepted_enter += 1;
            if !new.learners_next.is_empty() {
                coverage.accepted_enter_with_learners_next += 1;
            }
        }
        Op::Leave => {
            prop_assert!(!new.voters.is_joint(), "still joint after a leave");
            coverage.accepted_leave += 1;
        }
    }
    Ok(new)
}

/// Runs one generated scenario, checking every step.
fn run_scenario(
    voters: &[u64],
    learners: &[u64],
    ops: &[Op],
    coverage: &mut Coverage,
) -> Result<(), TestCaseError> {
    let mut cfg = bootstrapped(voters, learners);
    check_invariants(&cfg)?;
    for (i, op) in ops.iter().enumerate() {
        cfg = step(&cfg, op, coverage).map_err(|e| {
            TestCaseError::fail(format!("step {i} `{}` from {cfg:?}: {e}", op.describe()))
        })?;
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        // Regressions are reported in the failure message; keep the source tree clean.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_change_sequences_keep_every_invariant(((voters, learners), ops) in scenario()) {
        run_scenario(&voters, &learners, &ops, &mut Coverage::default())?;
    }
}

/// The generator must reach the interesting states, or the property above proves little: joint
/// configurations with demoted voters waiting in `learners_next`, leaves, and refusals.
#[test]
fn random_sequences_reach_joint_states_with_learners_next() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut coverage = Coverage::default();
    for _ in 0..200 {
        let ((voters, learners), ops) = strategy
            .new_tree(&mut runner)
            .expect("the strategy generates values")
            .current();
        if let Err(e) = run_scenario(&voters, &learners, &ops, &mut coverage) {
            panic!("{e}");
        }
    }
    assert!(
        coverage.accepted_simple > 100
            && coverage.accepted_enter > 100
            && coverage.accepted_enter_with_learners_next > 20
            && coverage.accepted_leave > 100
            && coverage.refused > 100,
        "the generator misses interesting steps: {coverage:?}"
    );
}
