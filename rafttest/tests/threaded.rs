//! The core and raft-node under real concurrency: a [`ThreadedCluster`] of three nodes, each a
//! `raft_node::Node` with a driver thread and its own timer, exchanging messages through
//! channels. Tests check progress (a leader is elected, proposals made on it are answered
//! `Committed`), the outcomes raft-node gives (`Dropped` only for an entry a later leader
//! replaced, never applied) and state machine safety (§5.4.3: every node applies the same
//! sequence) through restarts, a paused leader, a cut-off leader, message loss and random
//! delays. Every wait has a deadline, so a test fails instead of hanging; nothing asserts on
//! timing.

use raft_core::proposal::{ProposalOutcome, Proposed};
use raft_core::StateRole;
use raft_node::Proposal;
use rafttest::threaded::{ThreadedCluster, ThreadedError, ThreadedOptions};
use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

/// The time a whole test may take before it fails.
const TEST_BUDGET: Duration = Duration::from_secs(12);
/// How many proposals wait for their outcome at once.
const WINDOW: usize = 20;
/// How long `commit_all` waits on an outcome before it looks whether its proposer still leads.
const OUTCOME_POLL: Duration = Duration::from_millis(10);
const POLL: Duration = Duration::from_millis(2);

fn payloads(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// A proposal a leader appended, waiting for its outcome.
struct Waiting<'a> {
    payload: &'a [u8],
    leader: u64,
    /// Where the leader appended it.
    index: u64,
    term: u64,
    outcome: Receiver<ProposalOutcome>,
    /// Proposed again elsewhere since its leader lost leadership (its outcome still counts).
    superseded: bool,
}

/// How the proposals of [`commit_all`] were answered.
#[derive(Debug, Default)]
struct Outcomes {
    committed: usize,
    dropped: usize,
    /// Proposals made again: refused or forwarded (leadership was moving), dropped, lost with a
    /// restarted node, or undecided when their leader lost leadership.
    retried: usize,
}

/// Proposes `payloads` at the current leader, up to `WINDOW` waiting at once, until each one is
/// answered `Committed`. A payload is proposed again when its proposal is answered `Dropped`, is
/// refused or forwarded (no outcome to wait for), loses its outcome (its node restarted), or when
/// its leader no longer leads in the term it appended it in (its first copy may still commit, so
/// a payload may be applied more than once). Every answer is checked ([`check_answer`]).
fn commit_all(
    c: &ThreadedCluster,
    payloads: &[Vec<u8>],
    deadline: Instant,
) -> Result<Outcomes, String> {
    let mut to_propose: VecDeque<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut committed: HashSet<&[u8]> = HashSet::new();
    let mut outcomes = Outcomes::default();
    while committed.len() < payloads.len() {
        if Instant::now() >= deadline || c.any_thread_died() {
            return Err(format!(
                "{} of {} payloads never answered committed ({} waiting, {outcomes:?}); \
                 a node thread died (its panic is printed above): {}",
                payloads.len() - committed.len(),
                payloads.len(),
                waiting.len(),
                c.any_thread_died()
            ));
        }
        to_propose.retain(|p| !committed.contains(p));
        if !to_propose.is_empty() && waiting.iter().filter(|w| !w.superseded).count() < WINDOW {
            let Some(leader) = c.wait_for_leader(remaining(deadline)) else {
                continue; // the deadline passed, or a thread died: reported above
            };
            while waiting.iter().filter(|w| !w.superseded).count() < WINDOW {
                let Some(payload) = to_propose.pop_front() else {
                    break;
                };
                match c.propose(leader, payload.to_vec()) {
                    Ok(Proposal {
                        proposed: Proposed::Appended { index, term },
                        outcome,
                    }) => {
                        waiting.push(Waiting {
                            payload,
                            leader,
                            index,
                            term,
                            outcome,
                            superseded: false,
                        });
                        continue;
                    }
                    // Forwarded (`leader` just stepped down) or refused (it knows no leader, or
                    // another thread paused it): leadership is moving.
                    Ok(_) | Err(ThreadedError::Raft(_) | ThreadedError::Paused(_)) => {}
                    Err(e) => return Err(format!("proposing at node {leader}: {e}")),
                }
                // Propose it again once the cluster names a leader.
                to_propose.push_front(payload);
                outcomes.retried += 1;
                thread::sleep(POLL);
                break;
            }
        }
        // Waits on the oldest proposal's outcome; then takes every outcome decided by now.
        let first = match waiting.first() {
            Some(w) => Some(w.outcome.recv_timeout(OUTCOME_POLL)),
            None => {
                thread::sleep(POLL);
                None
            }
        };
        let leader_now = c.leader();
        let mut still_waiting = Vec::new();
        for (i, mut w) in waiting.drain(..).enumerate() {
            let answer = match (i, &first) {
                (0, Some(Ok(outcome))) => Ok(*outcome),
                (0, Some(Err(RecvTimeoutError::Timeout))) => Err(TryRecvError::Empty),
                (0, Some(Err(RecvTimeoutError::Disconnected))) => Err(TryRecvError::Disconnected),
                _ => w.outcome.try_recv(),
            };
            match check_answer(c, &w, answer)? {
                Fate::Committed => {
                    outcomes.committed += 1;
                    committed.insert(w.payload);
                }
                Fate::Lost { dropped } => {
                    outcomes.dropped += usize::from(dropped);
                    if !w.superseded {
                        to_propose.push_back(w.payload);
                        outcomes.retried += 1;
                    }
                }
                Fate::Undecided => {
                    let leads = leader_now == Some(w.leader) && c.status(w.leader).term == w.term;
                    if !w.superseded && !leads {
                        // Its leader lost leadership (perhaps to win it again in a later term):
                        // the entry is decided only once a later leader's log reaches its
                        // index, which may take new proposals.
                        w.superseded = true;
                        to_propose.push_back(w.payload);
                        outcomes.retried += 1;
                    }
                    still_waiting.push(w);
                }
            }
        }
        waiting = still_waiting;
    }
    Ok(outcomes)
}

/// What an answer says of a waiting proposal.
enum Fate {
    Committed,
    /// Answered dropped, or its outcome was lost with its node (restarted).
    Lost {
        dropped: bool,
    },
    Undecided,
}

/// Checks an answer on a waiting proposal: `Committed` at the (index, term) its leader appended
/// it at, with the payload applied on that leader by then; `Dropped` only in favour of an entry
/// of a later term; never `Unknown` (this cluster sends no snapshots).
fn check_answer(
    c: &ThreadedCluster,
    w: &Waiting,
    answer: Result<ProposalOutcome, TryRecvError>,
) -> Result<Fate, String> {
    let what = format!("{} appended at ({}, {})", show(w.payload), w.index, w.term);
    match answer {
        Ok(ProposalOutcome::Committed { index, term }) => {
            if (index, term) != (w.index, w.term) {
                return Err(format!(
                    "{what} was answered committed at ({index}, {term})"
                ));
            }
            if !c.applied(w.leader).iter().any(|p| p == w.payload) {
                return Err(format!(
                    "{what} was answered committed before node {} applied it",
                    w.leader
                ));
            }
            Ok(Fate::Committed)
        }
        Ok(ProposalOutcome::Dropped {
            index,
            term,
            committed_term,
        }) => {
            if (index, term) != (w.index, w.term) || committed_term <= term {
                return Err(format!(
                    "{what} was answered dropped at ({index}, {term}) for an entry of term \
                     {committed_term}"
                ));
            }
            Ok(Fate::Lost { dropped: true })
        }
        Ok(outcome @ ProposalOutcome::Unknown { .. }) => Err(format!(
            "{what} was answered {outcome:?}, but this cluster sends no snapshots"
        )),
        Ok(
            outcome @ (ProposalOutcome::NotAppended { .. } | ProposalOutcome::Unanswered { .. }),
        ) => Err(format!(
            "{what} was answered {outcome:?}, which only a forwarded proposal can be"
        )),
        Err(TryRecvError::Disconnected) => Ok(Fate::Lost { dropped: false }),
        Err(TryRecvError::Empty) => Ok(Fate::Undecided),
    }
}

/// Waits until nodes `ids` have applied the same sequence and returns it. Fails at once if two
/// sequences diverge (one is not a prefix of the other): that breaks state machine safety
/// (§5.4.3), however long we wait.
fn wait_identical(
    c: &ThreadedCluster,
    ids: &[u64],
    deadline: Instant,
) -> Result<Vec<Vec<u8>>, String> {
    loop {
        let seqs: Vec<(u64, Vec<Vec<u8>>)> = ids.iter().map(|&id| (id, c.applied(id))).collect();
        let (longest_id, longest) = seqs
            .iter()
            .max_by_key(|(_, s)| s.len())
            .expect("at least one node");
        for (id, s) in &seqs {
            if let Some(i) = s.iter().zip(longest).position(|(a, b)| a != b) {
                return Err(format!(
                    "nodes {id} and {longest_id} applied different payloads at position {i}: \
                     {} vs {}",
                    show(&s[i]),
                    show(&longest[i])
                ));
            }
        }
        if seqs.iter().all(|(_, s)| s.len() == longest.len()) {
            return Ok(longest.clone());
        }
        if Instant::now() >= deadline || c.any_thread_died() {
            let lens: Vec<String> = seqs
                .iter()
                .map(|(id, s)| format!("node {id}: {}", s.len()))
                .collect();
            return Err(format!(
                "nodes did not converge on one applied sequence before the deadline ({})",
                lens.join(", ")
            ));
        }
        thread::sleep(POLL);
    }
}

/// Asserts that `seq` holds every payload of `expected`.
fn assert_contains_all(seq: &[Vec<u8>], expected: &[Vec<u8>]) {
    let have: HashSet<&Vec<u8>> = seq.iter().collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|p| !have.contains(p))
        .map(|p| show(p))
        .collect();
    assert!(
        missing.is_empty(),
        "the applied sequence lacks {} committed payloads: {missing:?}",
        missing.len()
    );
}

fn must<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn three_nodes_elect_a_leader_and_all_apply_the_same_100_proposals() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::new(3);
    assert!(
        c.wait_for_leader(remaining(deadline)).is_some(),
        "no leader elected"
    );
    let data = payloads("basic", 100);
    must(commit_all(&c, &data, deadline));
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    assert_contains_all(&seq, &data);
    c.shutdown();
}

#[test]
fn restarted_follower_and_leader_catch_up_with_identical_sequences() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 2,
            ..Default::default()
        },
    );
    let first = payloads("before", 20);
    must(commit_all(&c, &first, deadline));
    must(wait_identical(&c, &[1, 2, 3], deadline));

    let leader = c.wait_for_leader(remaining(deadline)).expect("a leader");
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let applied_before = c.status(follower).applied_index;
    c.restart(follower);
    // Config::applied carries the state machine's position over the restart.
    assert_eq!(
        c.status(follower).applied_index,
        applied_before,
        "the restarted follower must start from what it had applied"
    );
    let second = payloads("after-follower-restart", 20);
    must(commit_all(&c, &second, deadline));
    must(wait_identical(&c, &[1, 2, 3], deadline));

    let leader = c.wait_for_leader(remaining(deadline)).expect("a leader");
    c.restart(leader);
    let third = payloads("after-leader-restart", 20);
    must(commit_all(&c, &third, deadline));
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    for batch in [&first, &second, &third] {
        assert_contains_all(&seq, batch);
    }
    c.shutdown();
}

#[test]
fn paused_leader_is_replaced_and_catches_up_as_follower_after_resume() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 3,
            ..Default::default()
        },
    );
    let first = payloads("before-pause", 10);
    must(commit_all(&c, &first, deadline));
    let old = c.wait_for_leader(remaining(deadline)).expect("a leader");
    c.pause(old).expect("pause the leader");
    let frozen = c.applied(old);
    assert!(
        matches!(c.propose(old, b"to-paused".to_vec()), Err(ThreadedError::Paused(id)) if id == old),
        "a paused node must refuse proposals"
    );

    // §5.2: followers that stop hearing from the leader elect another one.
    let new = c
        .wait_for_leader(remaining(deadline))
        .expect("the remaining majority elects a new leader");
    assert_ne!(new, old, "leader() must not name the paused node");
    let during = payloads("during-pause", 20);
    must(commit_all(&c, &during, deadline));
    let others: Vec<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    must(wait_identical(&c, &others, deadline));
    assert_eq!(
        c.applied(old),
        frozen,
        "a paused node must not apply anything"
    );

    c.resume(old).expect("resume the old leader");
    // §5.1: the old leader sees the newer term and steps down.
    loop {
        let s = c.status(old);
        if s.role == StateRole::Follower && s.leader_id != 0 && s.leader_id != old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed old leader did not become a follower of another leader: {s:?}"
        );
        thread::sleep(POLL);
    }
    let after = payloads("after-resume", 10);
    must(commit_all(&c, &after, deadline));
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    for batch in [&first, &during, &after] {
        assert_contains_all(&seq, batch);
    }
    assert!(
        !seq.contains(&b"to-paused".to_vec()),
        "a proposal refused by a paused node was applied"
    );
    c.shutdown();
}

#[test]
fn proposals_commit_everywhere_despite_twenty_percent_message_loss() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 4,
            ..Default::default()
        },
    );
    c.set_drop_all(0.2);
    let data = payloads("lossy", 100);
    must(commit_all(&c, &data, deadline));
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    assert_contains_all(&seq, &data);
    assert!(
        c.network_stats().dropped > 0,
        "the lossy links dropped nothing: the fault was not applied"
    );
    c.shutdown();
}

#[test]
fn random_message_delays_keep_progress_and_identical_sequences() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 5,
            ..Default::default()
        },
    );
    c.set_delay_all(Duration::from_millis(1), Duration::from_millis(10));
    let data = payloads("delayed", 100);
    must(commit_all(&c, &data, deadline));
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    assert_contains_all(&seq, &data);
    assert!(
        c.network_stats().delayed > 0,
        "no message was delayed: the fault was not applied"
    );
    c.shutdown();
}

/// Drops every message from and to `id` with probability `p`.
fn isolate(c: &ThreadedCluster, id: u64, p: f64) {
    for other in c.ids().into_iter().filter(|&o| o != id) {
        c.set_drop(id, other, p);
        c.set_drop(other, id, p);
    }
}

#[test]
fn a_cut_off_leaders_proposal_is_answered_dropped_and_applied_nowhere() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 6,
            ..Default::default()
        },
    );
    let before = payloads("before", 10);
    must(commit_all(&c, &before, deadline));

    // The leader is cut off and appends a proposal no other node ever sees.
    let (old, proposal) = loop {
        let old = c.wait_for_leader(remaining(deadline)).expect("a leader");
        isolate(&c, old, 1.0);
        match c.propose(old, b"lost".to_vec()) {
            Ok(p) if matches!(p.proposed, Proposed::Appended { .. }) => break (old, p),
            // It stepped down just before (its messages are dropped, a forwarded copy too).
            _ => c.heal(),
        }
        assert!(Instant::now() < deadline, "no leader appended the proposal");
    };
    let Proposed::Appended { index, term } = proposal.proposed else {
        unreachable!("matched above");
    };
    let outcome = proposal.outcome;

    // §5.2: the other two elect a leader of a later term, which commits other entries.
    loop {
        match c.leader() {
            Some(new) if new != old => break,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "no other node took over from {old}"
                );
                thread::sleep(POLL);
            }
        }
    }
    let during = payloads("during", 10);
    must(commit_all(&c, &during, deadline));
    assert!(
        outcome.try_recv().is_err(),
        "the cut-off node cannot have applied anything at index {index}"
    );

    // Back in touch, the old leader's entry is replaced, and the outcome says so.
    c.heal();
    let after = payloads("after", 10);
    must(commit_all(&c, &after, deadline));
    let answer = outcome.recv_timeout(remaining(deadline));
    assert!(
        matches!(answer, Ok(ProposalOutcome::Dropped { index: i, term: t, committed_term })
            if (i, t) == (index, term) && committed_term > term),
        "the proposal appended at ({index}, {term}) was answered {answer:?}"
    );
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    for batch in [&before, &during, &after] {
        assert_contains_all(&seq, batch);
    }
    assert!(
        !seq.contains(&b"lost".to_vec()),
        "a proposal answered dropped was applied"
    );
    c.shutdown();
}

#[test]
fn proposals_waiting_on_a_leader_paused_mid_flight_are_all_committed_after_all() {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut c = ThreadedCluster::with_options(
        3,
        ThreadedOptions {
            seed: 7,
            ..Default::default()
        },
    );
    must(commit_all(&c, &payloads("warm-up", 5), deadline));
    let old = c.wait_for_leader(remaining(deadline)).expect("a leader");
    let data = payloads("in-flight", 1000);
    // While the proposals stream in, the leader pauses long enough to be replaced (§5.2); the
    // ones waiting on it are answered once it resumes (dropped or committed), or made again at
    // its successor in the meantime.
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            c.pause(old).expect("pause the leader");
            thread::sleep(Duration::from_millis(400));
            c.resume(old).expect("resume the old leader");
        });
        must(commit_all(&c, &data, deadline));
    });
    let seq = must(wait_identical(&c, &[1, 2, 3], deadline));
    assert_contains_all(&seq, &data);
    c.shutdown();
}
