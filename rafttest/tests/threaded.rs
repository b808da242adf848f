//! The core under real concurrency: a [`ThreadedCluster`] of three nodes, each on its own thread
//! with its own timer, exchanging messages through channels. Tests check progress (a leader is
//! elected, proposals commit) and state machine safety (§5.4.3: every node applies the same
//! sequence) through restarts, a paused leader, message loss and random delays. Every wait has a
//! deadline, so a test fails instead of hanging; nothing asserts on timing.

use raft_core::StateRole;
use rafttest::threaded::{ThreadedCluster, ThreadedError, ThreadedOptions};
use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

/// The time a whole test may take before it fails.
const TEST_BUDGET: Duration = Duration::from_secs(12);
/// How many proposals are in flight at once.
const WINDOW: usize = 20;
/// How long a proposal may take to show up at the leader before it is proposed again.
const RETRY_AFTER: Duration = Duration::from_millis(500);
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

/// Proposes `payloads` at the current leader, `WINDOW` at a time, until each one appears among
/// the leader's applied payloads; one that has not appeared after `RETRY_AFTER` (lost with a
/// message or a leader change) is proposed again, so it may be applied more than once.
fn commit_all(c: &ThreadedCluster, payloads: &[Vec<u8>], deadline: Instant) -> Result<(), String> {
    let mut pending: Vec<&Vec<u8>> = payloads.iter().collect();
    while !pending.is_empty() {
        let Some(leader) = c.wait_for_leader(remaining(deadline)) else {
            return Err(format!(
                "no leader before the deadline with {} of {} payloads not committed",
                pending.len(),
                payloads.len()
            ));
        };
        let window: Vec<&Vec<u8>> = pending.iter().take(WINDOW).copied().collect();
        for p in &window {
            // A refusal (e.g. leadership just moved) is handled like a loss: retried below.
            let _ = c.propose(leader, p.to_vec());
        }
        let retry_at = Instant::now() + RETRY_AFTER;
        loop {
            let applied: HashSet<Vec<u8>> = c.applied(leader).into_iter().collect();
            pending.retain(|p| !applied.contains(*p));
            if window.iter().all(|p| applied.contains(*p)) || Instant::now() >= retry_at {
                break;
            }
            if Instant::now() >= deadline || c.any_thread_died() {
                break;
            }
            thread::sleep(POLL);
        }
        if !pending.is_empty() && (Instant::now() >= deadline || c.any_thread_died()) {
            return Err(format!(
                "{} of {} payloads never committed (first: {}); a node thread died (its panic is printed above): {}",
                pending.len(),
                payloads.len(),
                show(pending[0]),
                c.any_thread_died()
            ));
        }
    }
    Ok(())
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
