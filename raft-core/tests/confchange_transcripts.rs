//! Datadriven transcripts of membership changes (`raft_core::confchange`): what the `Changer`
//! accepts and refuses, the configuration it produces, and which members get fresh progress in the
//! `ProgressTracker`; one file per topic under `testdata/confchange/`. Regenerate the expected
//! outputs with `REWRITE=1` and review the diff.
//!
//! Every file starts from the empty configuration and an empty tracker. Each command first bumps a
//! fake "last index" (so the first command uses 1); a member that is new after the command starts
//! probing at that index (`next=<last index>`), so the output shows whose progress is new and whose
//! was kept. Directives:
//!
//! - `simple`: a simple change; the input is the changes in the compact text form (`v1 l2 r3`).
//! - `enter-joint [autoleave=true]`: enters a joint configuration with the changes of the input.
//! - `leave-joint`: leaves the joint configuration (no input).
//! - `restore [voters=(1,2)] [learners=(3)] [voters_outgoing=(1)] [learners_next=(..)]
//!   [autoleave=true]`: replaces the configuration by the one the `ConfState` describes (missing
//!   lists are empty) and the tracker by a fresh one.
//!
//! After a success the output is the configuration, e.g.
//! `voters=(1 2 4)&&(1 2 3) learners=(5) learners_next=(3) autoleave=true` (empty parts left out),
//! then one line per member: `1: StateProbe match=0 next=3`, with ` learner` for learners. After a
//! refusal it is the error, and the configuration stays what it was.
//!
//! Besides comparing against the transcript, the runner asserts after every command that the
//! configuration keeps the invariants of etcd-io/raft's `confchange` (at least one incoming voter,
//! no node both voter and learner, `learners_next` only holds outgoing voters and only while
//! joint), that it round-trips through `ConfState` and `restore`, that `Changer::apply` on the
//! equivalent `ConfChangeV2` agrees with the direct call, that a simple change moved at most one
//! voter, that the base configuration was not touched, and that the tracker kept the progress of
//! every member that stayed.

use std::fmt::Write;

use datadriven::TestCase;
use raft_core::confchange::{restore, Changer};
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState};
use raft_core::tracker::{Configuration, Progress, ProgressTracker};
use raft_core::Error;
use raft_proto::conf_changes_from_string;

/// The inflight window of the tracker's followers (irrelevant to membership, but required).
const MAX_INFLIGHT: usize = 256;

/// The state one transcript file runs against.
struct Session {
    cfg: Configuration,
    tracker: ProgressTracker,
    last_index: u64,
}

impl Session {
    fn new() -> Session {
        Session {
            cfg: Configuration::default(),
            tracker: ProgressTracker::new(MAX_INFLIGHT),
            last_index: 0,
        }
    }
}

/// `(1 2 3)`, `()` when empty.
fn ids(ids: &[u64]) -> String {
    let strs: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("({})", strs.join(" "))
}

/// The configuration line followed by one line per member of the tracker.
fn describe(cfg: &Configuration, tracker: &ProgressTracker) -> String {
    let mut out = format!("voters={}", cfg.voters);
    if !cfg.learners.is_empty() {
        let _ = write!(out, " learners={}", ids(&cfg.learners));
    }
    if !cfg.learners_next.is_empty() {
        let _ = write!(out, " learners_next={}", ids(&cfg.learners_next));
    }
    if cfg.auto_leave {
        out.push_str(" autoleave=true");
    }
    out.push('\n');
    for (id, pr) in tracker.iter() {
        let _ = write!(
            out,
            "{id}: {} match={} next={}",
            pr.state, pr.matched, pr.next_idx
        );
        if pr.is_learner {
            out.push_str(" learner");
        }
        out.push('\n');
    }
    out
}

/// Every id the configuration names in any role, sorted, without duplicates.
fn members(cfg: &Configuration) -> Vec<u64> {
    let mut all = cfg.voters.ids();
    all.extend(&cfg.learners);
    all.extend(&cfg.learners_next);
    all.sort_unstable();
    all.dedup();
    all
}

/// The invariants every configuration the `Changer` returns must keep (etcd's `checkInvariants`,
/// plus a non-empty incoming half unless `allow_empty`, which only the empty `ConfState` gives).
fn check_invariants(cfg: &Configuration, allow_empty: bool) -> Result<(), String> {
    if cfg.voters.incoming.is_empty() && !(allow_empty && *cfg == Configuration::default()) {
        return Err(format!("no incoming voter in {cfg:?}"));
    }
    for id in &cfg.learners {
        if cfg.voters.contains(*id) {
            return Err(format!("node {id} is both learner and voter in {cfg:?}"));
        }
    }
    for id in &cfg.learners_next {
        if !cfg.voters.outgoing.contains(*id) {
            return Err(format!(
                "node {id} is in learners_next but not an outgoing voter in {cfg:?}"
            ));
        }
        if cfg.voters.incoming.contains(*id) || cfg.learners.contains(id) {
            return Err(format!(
                "node {id} is in learners_next and also an incoming voter or learner in {cfg:?}"
            ));
        }
    }
    if !cfg.voters.is_joint() && (!cfg.learners_next.is_empty() || cfg.auto_leave) {
        return Err(format!(
            "learners_next or auto_leave set outside a joint configuration in {cfg:?}"
        ));
    }
    let sorted = |v: &[u64]| v.windows(2).all(|w| w[0] < w[1]);
    if !sorted(&cfg.learners) || !sorted(&cfg.learners_next) {
        return Err(format!("learner lists not sorted and unique in {cfg:?}"));
    }
    let back = restore(&cfg.to_conf_state());
    if back.as_ref() != Ok(cfg) {
        return Err(format!(
            "{cfg:?} does not round-trip through ConfState and restore: got {back:?}"
        ));
    }
    Ok(())
}

/// Replaces the tracker's configuration and checks that members that stayed kept their progress,
/// new members start at `next_idx`, and exactly the learners are flagged as learners.
fn apply_to_tracker(
    tracker: &mut ProgressTracker,
    cfg: &Configuration,
    next_idx: u64,
) -> Result<(), String> {
    let before: Vec<(u64, Progress)> = tracker.iter().map(|(id, pr)| (id, pr.clone())).collect();
    tracker.apply_conf(cfg.clone(), next_idx);
    let tracked: Vec<u64> = tracker.ids().collect();
    if tracked != members(cfg) {
        return Err(format!(
            "tracker holds {tracked:?} but the configuration's members are {:?}",
            members(cfg)
        ));
    }
    for (id, pr) in tracker.iter() {
        if pr.is_learner != cfg.learners.contains(&id) {
            return Err(format!(
                "progress of {id} has is_learner={} but learners are {:?}",
                pr.is_learner, cfg.learners
            ));
        }
        match before.iter().find(|(old_id, _)| *old_id == id) {
            Some((_, old)) => {
                let mut old = old.clone();
                old.is_learner = pr.is_learner;
                if old != *pr {
                    return Err(format!("{id} stayed a member but lost its progress"));
                }
            }
            None => {
                if pr.next_idx != next_idx || pr.matched != 0 {
                    return Err(format!(
                        "new member {id} starts at next={} match={}, wanted next={next_idx} match=0",
                        pr.next_idx, pr.matched
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The number of ids in exactly one of `a` and `b`.
fn symmetric_difference(a: &[u64], b: &[u64]) -> usize {
    a.iter().filter(|id| !b.contains(id)).count() + b.iter().filter(|id| !a.contains(id)).count()
}

/// The changes in the case's input; a malformed input is an error of the test file.
fn changes_of(tc: &TestCase) -> Result<Vec<ConfChangeSingle>, String> {
    conf_changes_from_string(tc.input.trim())
}

/// The `ConfChangeV2` that `Changer::apply` must treat exactly as the directive, if there is one (a
/// simple change of several singles or of none has no v2 equivalent: v2 makes it joint or a leave).
fn v2_equivalent(
    directive: &str,
    auto_leave: bool,
    changes: &[ConfChangeSingle],
) -> Option<ConfChangeV2> {
    let transition = match directive {
        "simple" if changes.len() == 1 => ConfChangeTransition::Auto,
        "enter-joint" if auto_leave => ConfChangeTransition::Implicit,
        "enter-joint" => ConfChangeTransition::Explicit,
        "leave-joint" => ConfChangeTransition::Auto,
        _ => return None,
    };
    Some(ConfChangeV2 {
        transition: transition as i32,
        changes: changes.to_vec(),
        context: Default::default(),
    })
}

/// Runs one `simple`, `enter-joint` or `leave-joint` command.
fn change(session: &mut Session, tc: &mut TestCase) -> Result<String, String> {
    let auto_leave = if tc.directive == "enter-joint" {
        tc.try_take_arg::<bool>("autoleave")
            .map_err(|e| e.to_string())?
            .unwrap_or(false)
    } else {
        false
    };
    let changes = changes_of(tc)?;
    let base = session.cfg.clone();
    let changer = Changer::new(&session.cfg);
    let result = match tc.directive.as_str() {
        "simple" => changer.simple(&changes),
        "enter-joint" => changer.enter_joint(auto_leave, &changes),
        "leave-joint" => {
            if !changes.is_empty() {
                return Err("leave-joint takes no changes".to_string());
            }
            changer.leave_joint()
        }
        other => return Err(format!("unknown directive {other:?}")),
    };
    if let Some(cc) = v2_equivalent(&tc.directive, auto_leave, &changes) {
        let via_apply = Changer::new(&session.cfg).apply(&cc);
        assert_eq!(
            via_apply,
            result,
            "{}: Changer::apply({cc:?}) disagrees with the direct call",
            case_name(tc)
        );
    }
    assert_eq!(
        session.cfg,
        base,
        "{}: the Changer modified its base configuration",
        case_name(tc)
    );
    let new = match result {
        Ok(new) => new,
        Err(err @ Error::ConfChange(_)) => return Ok(format!("{err}\n")),
        Err(other) => panic!(
            "{}: a refusal must be Error::ConfChange, got {other:?}",
            case_name(tc)
        ),
    };
    check_invariants(&new, false).map_err(|e| format!("{}: {e}", case_name(tc)))?;
    if tc.directive == "simple" {
        // Thesis §4.1: one voter at a time keeps every old majority overlapping every new one.
        let moved = symmetric_difference(base.voters.incoming.ids(), new.voters.incoming.ids());
        assert!(
            moved <= 1 && !new.voters.is_joint(),
            "{}: a simple change moved {moved} voters from {base:?} to {new:?}",
            case_name(tc)
        );
    }
    apply_to_tracker(&mut session.tracker, &new, session.last_index)?;
    session.cfg = new;
    Ok(describe(&session.cfg, &session.tracker))
}

/// Runs one `restore` command.
fn restore_cmd(session: &mut Session, tc: &mut TestCase) -> Result<String, String> {
    let list = |tc: &mut TestCase, name: &str| -> Result<Vec<u64>, String> {
        Ok(tc
            .try_take_args::<u64>(name)
            .map_err(|e| e.to_string())?
            .unwrap_or_default())
    };
    let cs = ConfState {
        voters: list(tc, "voters")?,
        learners: list(tc, "learners")?,
        voters_outgoing: list(tc, "voters_outgoing")?,
        learners_next: list(tc, "learners_next")?,
        auto_leave: tc
            .try_take_arg::<bool>("autoleave")
            .map_err(|e| e.to_string())?
            .unwrap_or(false),
    };
    if !tc.input.trim().is_empty() {
        return Err("restore takes no input".to_string());
    }
    let cfg = match restore(&cs) {
        Ok(cfg) => cfg,
        Err(err @ Error::ConfChange(_)) => return Ok(format!("{err}\n")),
        Err(other) => panic!("restore({cs:?}) must refuse with Error::ConfChange, got {other:?}"),
    };
    check_invariants(&cfg, true).map_err(|e| format!("restore({cs:?}): {e}"))?;
    let normalize = |ids: &[u64]| {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let wanted = ConfState {
        voters: normalize(&cs.voters),
        learners: normalize(&cs.learners),
        voters_outgoing: normalize(&cs.voters_outgoing),
        learners_next: normalize(&cs.learners_next),
        auto_leave: cs.auto_leave,
    };
    assert_eq!(
        cfg.to_conf_state(),
        wanted,
        "restore({cs:?}) accepted but describes another ConfState"
    );
    session.tracker = ProgressTracker::new(MAX_INFLIGHT);
    apply_to_tracker(&mut session.tracker, &cfg, session.last_index)?;
    session.cfg = cfg;
    Ok(describe(&session.cfg, &session.tracker))
}

/// The directive and input of a case on one line, for failure messages.
fn case_name(tc: &TestCase) -> String {
    format!("{} {}", tc.directive, tc.input.trim())
}

/// Runs one transcript file from the empty configuration.
fn run_transcript(name: &str) {
    let path = format!("testdata/confchange/{name}");
    let mut cases = 0;
    let mut session = Session::new();
    datadriven::walk(&path, |f| {
        f.run(|tc: &mut TestCase| -> Result<String, String> {
            cases += 1;
            session.last_index += 1;
            let out = match tc.directive.as_str() {
                "simple" | "enter-joint" | "leave-joint" => change(&mut session, tc)?,
                "restore" => restore_cmd(&mut session, tc)?,
                other => return Err(format!("unknown directive {other:?}")),
            };
            tc.expect_empty().map_err(|e| e.to_string())?;
            Ok(out)
        })
    });
    assert!(cases > 0, "{path} holds no test case (or does not exist)");
}

/// The transcript files, each run by the test named after it.
const FILES: [&str; 9] = [
    "simple_safety.txt",
    "simple_idempotency.txt",
    "simple_promote_demote.txt",
    "joint_safety.txt",
    "joint_idempotency.txt",
    "joint_learners_next.txt",
    "joint_autoleave.txt",
    "zero.txt",
    "restore.txt",
];

#[test]
fn simple_safety_transcript() {
    run_transcript("simple_safety.txt");
}

#[test]
fn simple_idempotency_transcript() {
    run_transcript("simple_idempotency.txt");
}

#[test]
fn simple_promote_demote_transcript() {
    run_transcript("simple_promote_demote.txt");
}

#[test]
fn joint_safety_transcript() {
    run_transcript("joint_safety.txt");
}

#[test]
fn joint_idempotency_transcript() {
    run_transcript("joint_idempotency.txt");
}

#[test]
fn joint_learners_next_transcript() {
    run_transcript("joint_learners_next.txt");
}

#[test]
fn joint_autoleave_transcript() {
    run_transcript("joint_autoleave.txt");
}

#[test]
fn zero_transcript() {
    run_transcript("zero.txt");
}

#[test]
fn restore_transcript() {
    run_transcript("restore.txt");
}

#[test]
fn every_confchange_transcript_file_is_run() {
    let mut found: Vec<String> = std::fs::read_dir("testdata/confchange")
        .expect("testdata/confchange must exist")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.starts_with('.') && !name.ends_with('~'))
        .collect();
    found.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        found, expected,
        "testdata/confchange holds a file no test runs, or a listed file is missing (keep FILES and the tests in step)"
    );
}
