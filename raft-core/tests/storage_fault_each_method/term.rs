//! `term()` failing: while deciding a vote, and while handling an append.

use crate::cluster::{assert_store_error, entry, history, Cluster};
use crate::faulty::{Kind, Method, KINDS, KINDS_BUT_UNAVAILABLE};
use raft_core::eraftpb::{Message, MessageType};

fn vote_request(msg_type: MessageType, term: u64, index: u64, log_term: u64) -> Message {
    Message {
        msg_type: msg_type as i32,
        from: 3,
        to: 2,
        term,
        index,
        log_term,
        ..Default::default()
    }
}

/// §5.4.1: a vote needs our last entry's term; without it no vote is granted or refused, the
/// error surfaces and the node is as before. Once storage recovers the same request is decided.
#[test]
fn term_failing_during_a_vote_of_our_term_surfaces_and_changes_nothing() {
    for kind in KINDS_BUT_UNAVAILABLE {
        for msg_type in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
            let what = format!("term() failing with {kind:?} on a {msg_type:?} of our term");
            // Node 2 restarted at term 2, its vote for 1 forgotten, no leader: it may vote.
            let store = history();
            store.wl().mut_hard_state().vote = 0;
            let mut c = Cluster::restarted(&store, 4);
            let n = c.node(2);
            n.store.fail(Method::Term, kind);
            let before = n.observe();
            let result = n.raw.step(vote_request(msg_type, 2, 5, 2));
            assert_store_error(&result, kind, &what);
            assert!(n.store.hits.get() > 0, "{what}: term() was never called");
            assert_eq!(
                n.observe(),
                before,
                "{what}: the failed step changed the node"
            );
            n.store.heal();
            n.raw
                .step(vote_request(msg_type, 2, 5, 2))
                .expect("storage recovered");
            let granted = n.queued().iter().any(|m| !m.reject);
            assert!(
                granted,
                "{what}: the retried request of an up-to-date log is granted"
            );
            c.commits_again(&what);
        }
    }
}

/// A pre-vote of a later term does not move our term (thesis §9.6), so a failure leaves nothing
/// changed.
#[test]
fn term_failing_during_a_pre_vote_of_a_later_term_surfaces_and_changes_nothing() {
    for kind in KINDS_BUT_UNAVAILABLE {
        let what = format!("term() failing with {kind:?} on a later-term pre-vote");
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        n.store.fail(Method::Term, kind);
        let before = n.observe();
        let result = n
            .raw
            .step(vote_request(MessageType::MsgRequestPreVote, 3, 5, 2));
        assert_store_error(&result, kind, &what);
        assert_eq!(
            n.observe(),
            before,
            "{what}: the failed step changed the node"
        );
        n.store.heal();
        c.commits_again(&what);
    }
}

/// Whatever a failed vote does to the term, it never grants a vote: the candidate's log could
/// not be compared with ours (§5.4.1).
#[test]
fn term_failing_during_a_vote_of_a_later_term_grants_no_vote() {
    for kind in KINDS_BUT_UNAVAILABLE {
        let what = format!("term() failing with {kind:?} on a later-term vote request");
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        n.store.fail(Method::Term, kind);
        let vote_before = n.raw.raft.vote;
        // A stale candidate: granting it would be a safety violation.
        let result = n
            .raw
            .step(vote_request(MessageType::MsgRequestVote, 3, 1, 1));
        assert_store_error(&result, kind, &what);
        assert_eq!(
            n.raw.raft.vote, vote_before,
            "{what}: the vote changed (to the candidate or cleared by a term change)"
        );
        let granted = n.queued().iter().any(|m| !m.reject);
        assert!(!granted, "{what}: a vote was granted");
        n.store.heal();
        c.commits_again(&what);
    }
}

/// DESIGN.md §5 and `Error::Store`: a call that fails with a storage error leaves the node's
/// state unchanged. A vote request of a later term is refused with the error, but the node has
/// already adopted the term (and forgotten its vote and leader) before reading its log.
#[test]
fn term_failing_during_a_vote_of_a_later_term_changes_nothing() {
    for kind in KINDS_BUT_UNAVAILABLE {
        let what = format!("term() failing with {kind:?} on a later-term vote request");
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        n.store.fail(Method::Term, kind);
        let before = n.observe();
        let result = n
            .raw
            .step(vote_request(MessageType::MsgRequestVote, 3, 5, 2));
        assert_store_error(&result, kind, &what);
        assert_eq!(
            n.observe(),
            before,
            "{what}: the failed step changed the node"
        );
    }
}

/// `Storage::term` may answer `Unavailable` only above the last index; the core maps that answer
/// to "term 0" (`RaftLog::term`) even for an index inside its log. A node whose log ends at
/// (5, term 2) then judges a candidate whose log ends at (1, term 1) at least as up to date and
/// grants it the vote: the election restriction (§5.4.1) is broken, and the winner may lack
/// committed entries.
#[test]
fn term_answering_unavailable_inside_the_log_never_wins_a_stale_candidate_the_vote() {
    for msg_type in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        n.store.fail(Method::Term, Kind::Unavailable);
        let _ = n.raw.step(vote_request(msg_type, 3, 1, 1));
        assert!(n.store.hits.get() > 0, "term() was never called");
        let granted: Vec<_> = n.queued().into_iter().filter(|m| !m.reject).collect();
        assert!(
            granted.is_empty() && n.raw.raft.vote != 3,
            "{msg_type:?}: a candidate whose log ends at (1, t1) won the vote of a node whose log \
             ends at (5, t2): {granted:?}"
        );
    }
}

fn append_6(commit: u64) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 1,
        to: 2,
        term: 2,
        index: 5,
        log_term: 2,
        entries: vec![entry(6, 2)],
        commit,
        ..Default::default()
    }
}

/// A follower that cannot read the term of the append's previous entry cannot apply the §5.3
/// consistency check: it must neither store the entries nor acknowledge them, nor commit; the
/// leader's retry succeeds once storage recovers.
#[test]
fn term_failing_during_append_handling_never_acknowledges_or_changes_the_log() {
    for kind in KINDS {
        let what = format!("term() failing with {kind:?} on an append");
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        // Node 2 follows leader 1 in term 2 (a heartbeat of term 2 tells it).
        let hb = Message {
            msg_type: MessageType::MsgHeartbeat as i32,
            from: 1,
            to: 2,
            term: 2,
            commit: 4,
            ..Default::default()
        };
        n.raw.step(hb).expect("heartbeat");
        n.handle_ready().expect("ready");
        n.store.fail(Method::Term, kind);
        let before = n.observe();
        let result = n.raw.step(append_6(5));
        assert!(n.store.hits.get() > 0, "{what}: term() was never called");
        let after = n.observe();
        assert_eq!(
            (&after.log, after.committed, after.persisted, after.term),
            (&before.log, before.committed, before.persisted, before.term),
            "{what}: the log changed (step returned {result:?})"
        );
        let acked = n
            .queued()
            .iter()
            .any(|m| m.msg_type == MessageType::MsgAppendResponse as i32 && !m.reject);
        assert!(!acked, "{what}: entry 6 was acknowledged: {:?}", n.queued());
        n.store.heal();
        n.raw.step(append_6(5)).expect("storage recovered");
        assert_eq!(
            (
                n.raw.raft.raft_log.last_index(),
                n.raw.raft.raft_log.committed
            ),
            (6, 5),
            "{what}: the retried append is accepted"
        );
        n.handle_ready().expect("ready");
        // Node 1 never had entry 6 (the append was made up): node 2, holding it, leads next.
        c.elect(2);
        c.commits_again(&what);
    }
}

/// DESIGN.md §5: "Storage errors propagate as Error::Store". An append whose consistency check
/// cannot read the term is answered as a log mismatch instead (a rejection that tells the leader
/// the follower lacks an entry it has), and `step` returns Ok.
#[test]
fn term_failing_during_append_handling_surfaces_the_storage_error() {
    for kind in KINDS_BUT_UNAVAILABLE {
        let what = format!("term() failing with {kind:?} on an append");
        let mut c = Cluster::restarted(&history(), 4);
        let n = c.node(2);
        n.store.fail(Method::Term, kind);
        let before = n.observe();
        let result = n.raw.step(append_6(5));
        assert_store_error(&result, kind, &what);
        assert_eq!(
            n.observe(),
            before,
            "{what}: the failed step changed the node"
        );
    }
}
