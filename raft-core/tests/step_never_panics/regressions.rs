//! Minimised failures the properties found: regression tests for fixed core bugs, and ignored
//! tests for open ones.

use crate::roles::config;
use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_testkit::{Flags, Peer};
use storage_mem::{conf_state, MemStorage};

/// Node 2 of {1, 2, 3} with an empty log.
fn fresh_follower() -> Peer {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    Peer::new(
        &config(
            2,
            Flags {
                check_quorum: false,
                pre_vote: false,
            },
        ),
        store,
    )
}

fn append(index: u64, log_term: u64, commit: u64, entries: &[(u64, u64)]) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 1,
        to: 2,
        term: 1,
        index,
        log_term,
        commit,
        entries: entries
            .iter()
            .map(|&(index, term)| Entry {
                index,
                term,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// An append must name an entry the follower holds (§5.3 consistency check); one whose previous
/// index lies beyond the log can never match, whatever term it claims.
#[test]
fn append_whose_previous_index_is_beyond_the_log_is_rejected_not_stored_with_a_gap() {
    let mut p = fresh_follower();
    // The previous entry (1, term 0) does not exist: the log is empty.
    let result = p.raw.step(append(1, 0, 0, &[(2, 1)]));
    let r = &p.raw.raft;
    assert_eq!(
        r.raft_log.last_index(),
        0,
        "an append after missing index 1 was stored (result {result:?}); the log now claims term \
         {:?} at index 1",
        r.raft_log.term(1)
    );
    let acked = r.msgs_after_append.iter().any(|m| !m.reject);
    assert!(
        !acked,
        "the impossible append was acknowledged: {:?}",
        r.msgs_after_append
    );
}

/// Same root cause, through the conflict search: a new entry "of term 0" beyond the log is taken
/// for one the follower already holds, and the entries after it are stored with a gap.
#[test]
fn append_of_an_entry_of_term_0_beyond_the_log_is_not_skipped_over() {
    let mut p = fresh_follower();
    // (1, term 0) cannot be a real entry; (2, term 1) must not be stored without an entry at 1.
    let result = p.raw.step(append(0, 0, 0, &[(1, 0), (2, 1)]));
    let log = &p.raw.raft.raft_log;
    let stored: Vec<_> = log
        .unstable_entries()
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    let contiguous = stored
        .iter()
        .enumerate()
        .all(|(i, &(index, _))| index == log.first_index() + i as u64);
    assert!(
        contiguous,
        "the unstable log holds {stored:?} starting at index {} (result {result:?}): a gap",
        log.first_index()
    );
}

/// Same root cause, without entries: the commit index moves past the end of the log (a
/// `debug_assert!` panic in debug builds, a corrupt commit index in release builds).
#[test]
fn empty_append_whose_previous_index_is_beyond_the_log_does_not_move_the_commit_index() {
    let mut p = fresh_follower();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.raw.step(append(5, 0, 5, &[]))
    }));
    assert!(result.is_ok(), "step panicked on an append beyond the log");
    let log = &p.raw.raft.raft_log;
    assert_eq!(
        (log.committed, log.last_index()),
        (0, 0),
        "an append beyond the (empty) log moved the commit index"
    );
}

/// A node refusing a pre-vote answers with a rejection (thesis §9.6); it must not panic because its
/// own term is still 0 (a fresh cluster), which is where priority elections refuse equal logs.
#[test]
fn pre_vote_refused_for_priority_at_term_0_never_sends_a_term_0_response() {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    let mut cfg = config(
        2,
        Flags {
            check_quorum: false,
            pre_vote: true,
        },
    );
    cfg.priority = 5;
    let mut p = Peer::new(&cfg, store);
    let request = Message {
        msg_type: MessageType::MsgRequestPreVote as i32,
        from: 1,
        to: 2,
        term: 1,
        priority: 1,
        ..Default::default()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.raw.step(request)));
    assert!(
        matches!(result, Ok(Ok(()))),
        "stepping a pre-vote request of a lower-priority candidate into a node at term 0 panicked \
         or failed"
    );
    // No vote response may carry term 0 (invalid on the wire); at term 0 the refusal is silent.
    let r = &p.raw.raft;
    let queued: Vec<&Message> = r.msgs.iter().chain(&r.msgs_after_append).collect();
    assert!(
        queued.iter().all(|m| m.term != 0),
        "a message with term 0 was queued: {queued:?}"
    );
    assert!(
        !queued
            .iter()
            .any(|m| m.msg_type == MessageType::MsgRequestPreVoteResponse as i32 && !m.reject),
        "the lower-priority candidate was granted a pre-vote: {queued:?}"
    );
    assert_eq!(r.term, 0, "refusing a pre-vote must not change the term");
}
