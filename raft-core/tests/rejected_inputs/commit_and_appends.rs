//! A commit index past the last index, and appends far beyond the log or with impossible entries.

use crate::fixtures::{append, assert_invalid, entry, follower, msg, State};
use raft_core::eraftpb::{Message, MessageType};

/// raft-rs and etcd panic here ("to_commit X is out of range"); we refuse the heartbeat, whether
/// it is of our term or of a higher one (the higher term is not adopted either).
#[test]
fn heartbeat_committing_past_the_last_index_is_rejected_and_changes_nothing() {
    for term in [2, 3, u64::MAX] {
        let mut n = follower();
        let m = Message {
            commit: 5,
            ..msg(MessageType::MsgHeartbeat, 1, 2, term)
        };
        assert_invalid(&mut n, m, "commit");
        let m = Message {
            commit: u64::MAX,
            ..msg(MessageType::MsgHeartbeat, 1, 2, term)
        };
        assert_invalid(&mut n, m, "commit");
    }
}

/// §5.3: a follower sets its commit index to min(leaderCommit, index of the last new entry); a
/// larger commit in an append is not an error but never commits entries the append did not cover.
#[test]
fn append_committing_past_its_last_entry_commits_only_what_it_covers() {
    let mut n = follower();
    // Entry 5 follows (4, t2); the leader claims commit 1000.
    let mut m = append(1, 2, 2, 4, 2, 1000);
    m.entries = vec![entry(5, 2)];
    n.raw.step(m).expect("a matching append is accepted");
    assert_eq!(n.raw.raft.raft_log.committed, 5, "commit is capped at 5");
    // An empty append matching at 3: commit may reach 3 at most (already 3), not 4 or beyond.
    let mut n = follower();
    n.raw
        .step(append(1, 2, 2, 3, 2, u64::MAX))
        .expect("a matching empty append is accepted");
    assert_eq!(
        n.raw.raft.raft_log.committed, 3,
        "an empty append at 3 commits nothing past 3"
    );
}

/// A follower lagging the leader's leader-side state: an append whose previous entry is far past
/// our log is answered with a rejection and a hint (our last index), never stored with a gap and
/// never committing anything.
#[test]
fn append_far_beyond_the_log_is_answered_with_a_rejection_and_changes_no_log() {
    // The hint is our largest index whose term is at most the append's previous term (raft-rs).
    for (index, log_term, hint) in [(1_000_000, 2, 4), (u64::MAX / 2 - 10, 2, 4), (6, 1, 2)] {
        let mut n = follower();
        let before = State::of(&n);
        let mut m = append(1, 2, 2, index, log_term, index + 1);
        m.entries = vec![entry(index + 1, 2)];
        n.raw
            .step(m)
            .expect("a non-matching append is answered, not refused");
        let after = State::of(&n);
        assert_eq!(
            (&after.log, after.committed, after.persisted),
            (&before.log, before.committed, before.persisted),
            "an append after index {index} changed the log or commit index"
        );
        let answers = n.queued();
        assert_eq!(answers.len(), 1, "one answer expected: {answers:?}");
        let a = &answers[0];
        assert!(
            a.msg_type() == MessageType::MsgAppendResponse && a.reject && a.to == 1,
            "expected a rejection to the leader, got {}",
            raft_proto::describe_message(a)
        );
        assert_eq!(
            a.reject_hint, hint,
            "rejection hint for an append after {index}"
        );
    }
}

/// Entry indexes that overflow u64 cannot be a real log.
#[test]
fn append_whose_entry_indexes_overflow_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 2, u64::MAX - 1, 2, 0);
    m.entries = vec![entry(u64::MAX, 2)];
    assert_invalid(&mut n, m, "overflow");
    let mut m = append(1, 2, 2, u64::MAX, 2, 0);
    m.entries = vec![entry(0, 2)];
    assert_invalid(&mut n, m, "overflow");
}

#[test]
fn append_with_entries_not_contiguous_after_the_previous_index_is_rejected() {
    for entries in [
        vec![entry(6, 2)],              // a gap after 4
        vec![entry(5, 2), entry(7, 2)], // a gap inside
        vec![entry(5, 2), entry(5, 2)], // a duplicate
        vec![entry(6, 2), entry(5, 2)], // reordered
        vec![entry(4, 2), entry(5, 2)], // starts at the previous index
    ] {
        let mut n = follower();
        let mut m = append(1, 2, 2, 4, 2, 3);
        m.entries = entries;
        assert_invalid(&mut n, m, "contiguous");
    }
}

/// Log terms never decrease along a log (§5.3 Log Matching follows from it).
#[test]
fn append_whose_entry_terms_decrease_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 3, 4, 2, 3);
    m.entries = vec![entry(5, 3), entry(6, 2)];
    assert_invalid(&mut n, m, "terms");
    // Below the previous entry's term.
    let mut m = append(1, 2, 3, 4, 2, 3);
    m.entries = vec![entry(5, 1)];
    assert_invalid(&mut n, m, "terms");
}

/// A leader only sends entries of its term or older (§5.3); an entry of a later term is forged.
#[test]
fn append_with_an_entry_term_above_the_message_term_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 2, 4, 2, 3);
    m.entries = vec![entry(5, 3)];
    assert_invalid(&mut n, m, "term");
    let mut m = append(1, 2, 2, 4, 2, 3);
    m.entries = vec![entry(5, u64::MAX)];
    assert_invalid(&mut n, m, "term");
}

#[test]
fn append_whose_previous_entry_term_is_above_the_message_term_is_rejected() {
    let mut n = follower();
    assert_invalid(&mut n, append(1, 2, 2, 4, 3, 3), "previous");
}
