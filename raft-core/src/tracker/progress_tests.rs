//! Unit tests of [`Progress`]: the leader's view of one follower and its state transitions.

use super::*;

/// A progress in `state` with the given matched and next indexes.
fn progress(state: ProgressState, matched: u64, next_idx: u64) -> Progress {
    let mut pr = Progress::new(next_idx, 256);
    pr.matched = matched;
    pr.state = state;
    pr
}

#[test]
fn new_progress_probes_from_next_with_nothing_matched() {
    let pr = Progress::new(7, 16);
    assert_eq!(
        (pr.state, pr.matched, pr.next_idx),
        (ProgressState::Probe, 0, 7)
    );
    assert!(!pr.probe_sent && !pr.recent_active && !pr.is_learner);
    assert_eq!(pr.ins.capacity(), 16);
    assert!(!pr.is_paused());
}

#[test]
fn become_probe_from_replicate_restarts_after_matched() {
    let mut pr = progress(ProgressState::Replicate, 1, 5);
    pr.ins.add(4, 0);
    pr.become_probe();
    assert_eq!(pr.state, ProgressState::Probe);
    assert_eq!(pr.next_idx, 2, "probe from matched + 1");
    assert_eq!(pr.ins.count(), 0, "the inflight window is cleared");
    assert!(!pr.probe_sent);
}

#[test]
fn become_probe_from_probe_restarts_after_matched() {
    let mut pr = progress(ProgressState::Probe, 1, 5);
    pr.pause();
    pr.become_probe();
    assert_eq!(pr.next_idx, 2);
    assert!(!pr.is_paused(), "a fresh probe may be sent");
}

#[test]
fn become_probe_from_snapshot_resumes_after_the_snapshot() {
    // next = max(matched + 1, pending snapshot + 1), as in etcd and raft-rs.
    // (matched, pending snapshot, expected next)
    for (matched, pending, want) in [(1, 10, 11), (1, 0, 2), (12, 10, 13), (10, 10, 11)] {
        let mut pr = progress(ProgressState::Replicate, matched, matched + 1);
        pr.become_snapshot(pending);
        assert_eq!(pr.pending_snapshot, pending);
        assert_eq!(pr.state, ProgressState::Snapshot);
        pr.become_probe();
        assert_eq!(pr.state, ProgressState::Probe);
        assert_eq!(
            pr.next_idx, want,
            "matched {matched}, pending snapshot {pending}"
        );
        assert_eq!(pr.pending_snapshot, 0, "the pending snapshot is forgotten");
    }
}

#[test]
fn become_replicate_streams_from_matched_plus_one() {
    let mut pr = progress(ProgressState::Probe, 1, 5);
    pr.pause();
    pr.become_replicate();
    assert_eq!(pr.state, ProgressState::Replicate);
    assert_eq!((pr.matched, pr.next_idx), (1, 2));
    assert!(!pr.probe_sent);
    assert_eq!(pr.ins.count(), 0);
}

#[test]
fn maybe_update_moves_matched_and_next_forward_only() {
    // Starting from matched 3, next 5: (update index, expected result, matched, next)
    let cases = [
        (2, false, 3, 5),
        (3, false, 3, 5),
        (4, true, 4, 5),
        (5, true, 5, 6),
        (8, true, 8, 9),
    ];
    for (index, want, want_matched, want_next) in cases {
        let mut pr = progress(ProgressState::Probe, 3, 5);
        assert_eq!(pr.maybe_update(index), want, "maybe_update({index})");
        assert_eq!(
            (pr.matched, pr.next_idx),
            (want_matched, want_next),
            "maybe_update({index})"
        );
    }
}

#[test]
fn maybe_update_resumes_a_paused_probe_only_on_progress() {
    let mut pr = progress(ProgressState::Probe, 3, 5);
    pr.pause();
    assert!(!pr.maybe_update(2), "stale acknowledgement");
    assert!(
        pr.is_paused(),
        "a stale acknowledgement must not resume probing"
    );
    assert!(pr.maybe_update(4));
    assert!(!pr.is_paused(), "the follower answered: probing resumes");
}

#[test]
fn maybe_decr_to_in_replicate_ignores_stale_rejections() {
    // Replicating with matched 5, next 10. (rejected index, expected result, expected next)
    for (rejected, want, want_next) in [
        (5, false, 10),
        (4, false, 10),
        (0, false, 10),
        (6, true, 6),
        (9, true, 6),
    ] {
        let mut pr = progress(ProgressState::Replicate, 5, 10);
        assert_eq!(pr.maybe_decr_to(rejected, 0), want, "reject of {rejected}");
        assert_eq!(
            pr.next_idx, want_next,
            "reject of {rejected}: next = matched + 1 or unchanged"
        );
        assert_eq!(pr.matched, 5, "a rejection never changes matched");
    }
}

#[test]
fn maybe_decr_to_in_probe_counts_only_the_latest_probe() {
    // Probing with next 10, so the outstanding probe rejected index is 9.
    // (rejected, hint, expected result, expected next)
    let cases = [
        // a rejection of an older probe is stale
        (5, 5, false, 10),
        (10, 5, false, 10),
        // next = min(rejected, hint + 1)
        (9, 9, true, 9),
        (9, 20, true, 9),
        (9, 4, true, 5),
        (9, 0, true, 1),
        (9, u64::MAX, true, 9),
    ];
    for (rejected, hint, want, want_next) in cases {
        let mut pr = progress(ProgressState::Probe, 0, 10);
        pr.pause();
        assert_eq!(
            pr.maybe_decr_to(rejected, hint),
            want,
            "reject of {rejected} hint {hint}"
        );
        assert_eq!(
            pr.next_idx, want_next,
            "reject of {rejected} hint {hint}: next"
        );
        assert_eq!(
            pr.is_paused(),
            !want,
            "reject of {rejected} hint {hint}: a counted rejection resumes probing"
        );
    }
}

#[test]
fn maybe_decr_to_in_probe_never_goes_below_one() {
    let mut pr = progress(ProgressState::Probe, 0, 1);
    assert!(
        pr.maybe_decr_to(0, 0),
        "the probe after index 0 was rejected"
    );
    assert_eq!(pr.next_idx, 1, "next index is at least 1");
}

#[test]
fn maybe_decr_to_in_probe_never_goes_at_or_below_matched() {
    // A hint below what is known to match would only cost round trips: probe just after matched.
    let mut pr = progress(ProgressState::Probe, 5, 10);
    assert!(pr.maybe_decr_to(9, 2));
    assert_eq!(pr.next_idx, 6, "next is clamped to matched + 1");
}

#[test]
fn maybe_decr_to_in_snapshot_state_ignores_a_stale_rejection() {
    // In snapshot state the probe rule applies (etcd): only a rejection of next - 1 counts.
    let mut pr = progress(ProgressState::Replicate, 3, 4);
    pr.become_snapshot(10);
    let before = pr.clone();
    assert!(!pr.maybe_decr_to(1, 0));
    assert_eq!(
        pr, before,
        "a stale rejection must leave the progress unchanged"
    );
}

#[test]
fn is_paused_in_each_state() {
    let mut pr = progress(ProgressState::Probe, 0, 1);
    assert!(!pr.is_paused(), "probe, nothing sent");
    pr.pause();
    assert!(pr.is_paused(), "probe, a probe is outstanding");
    pr.resume();
    assert!(!pr.is_paused(), "probe, resumed");

    let mut pr = progress(ProgressState::Replicate, 0, 1);
    pr.ins = Inflights::new(4);
    pr.pause();
    assert!(!pr.is_paused(), "replicate ignores the probe flag");
    for i in 1..=3 {
        pr.ins.add(i, 0);
        assert!(
            !pr.is_paused(),
            "replicate, {i} of 4 in flight: window not full"
        );
    }
    pr.ins.add(4, 0);
    assert!(pr.is_paused(), "replicate, window full");
    pr.ins.free_to(1);
    assert!(!pr.is_paused(), "replicate, a slot was freed");

    let mut pr = progress(ProgressState::Replicate, 0, 1);
    pr.become_snapshot(5);
    assert!(pr.is_paused(), "snapshot state is always paused");
    pr.resume();
    assert!(pr.is_paused(), "resume does not un-pause snapshot state");
}

#[test]
fn optimistic_update_moves_next_only() {
    let mut pr = progress(ProgressState::Replicate, 3, 4);
    pr.optimistic_update(9);
    assert_eq!((pr.matched, pr.next_idx), (3, 10));
    pr.optimistic_update(12);
    assert_eq!(pr.next_idx, 13);
}

#[test]
fn reset_starts_probing_over() {
    let mut pr = progress(ProgressState::Replicate, 5, 9);
    pr.ins.add(8, 0);
    pr.recent_active = true;
    pr.update_committed(4);
    pr.commit_sent = 4;
    pr.reset(12);
    assert_eq!(
        (pr.state, pr.matched, pr.next_idx),
        (ProgressState::Probe, 0, 12)
    );
    assert_eq!((pr.committed_index, pr.commit_sent), (0, 0));
    assert!(!pr.recent_active);
    assert_eq!(pr.ins.count(), 0);
}

#[test]
fn update_committed_never_decreases() {
    let mut pr = Progress::new(1, 4);
    pr.update_committed(5);
    pr.update_committed(3);
    assert_eq!(pr.committed_index, 5);
    pr.update_committed(6);
    assert_eq!(pr.committed_index, 6);
}

#[test]
fn state_names_match_etcd_and_raft_rs() {
    assert_eq!(ProgressState::Probe.to_string(), "StateProbe");
    assert_eq!(ProgressState::Replicate.to_string(), "StateReplicate");
    assert_eq!(ProgressState::Snapshot.to_string(), "StateSnapshot");
}
