//! §5.3 Log replication: appending proposals, the AppendEntries consistency check and its
//! rejection hint, replacing conflicting suffixes, committing on a majority and learning the commit
//! index, and the leader forcing followers' logs to match its own.

use crate::common::*;
use raft_core::eraftpb::MessageType;
use raft_core::StateRole;

/// An (index, term) pair naming a log entry.
type IndexTerm = (u64, u64);

// §5.3: the leader appends a proposal to its log as a new entry of its term, then issues
// AppendEntries to every follower (at the next flush: one append per follower).
#[test]
fn leader_appends_proposal_to_its_log_then_replicates() {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    r.step(propose_msg(1, b"x")).unwrap();
    let last = log_entries(&r).pop().unwrap();
    assert_eq!((last.index, last.term, &last.data[..]), (2, 1, &b"x"[..]));
    assert_eq!(r.raft_log.committed, 1, "committed before replication");
    assert!(
        r.msgs.iter().all(|m| mtype(m) != MessageType::MsgAppend),
        "appends must wait for the flush"
    );
    let mut apps = take_of(&mut r, MessageType::MsgAppend);
    apps.sort_by_key(|m| m.to);
    assert_eq!(apps.len(), 2, "one append per follower: {apps:?}");
    for (m, to) in apps.iter().zip(2..) {
        assert_eq!(
            (m.to, m.term, m.index, m.log_term, m.commit),
            (to, 1, 1, 1, 1)
        );
        assert_eq!(m.entries.len(), 1);
        assert_eq!((m.entries[0].index, &m.entries[0].data[..]), (2, &b"x"[..]));
    }
}

// §5.3: a follower accepts entries after the entry (prevLogIndex, prevLogTerm) it holds; entries
// already present are kept, conflicting ones replaced. The success answer names the last index the
// append covered (INTEROP.md).
#[test]
fn follower_appends_entries_after_matching_entry() {
    let cases: Vec<(IndexTerm, Vec<IndexTerm>, Vec<IndexTerm>, u64)> = vec![
        ((2, 2), vec![(3, 3)], vec![(1, 1), (2, 2), (3, 3)], 3),
        (
            (1, 1),
            vec![(2, 3), (3, 4)],
            vec![(1, 1), (2, 3), (3, 4)],
            3,
        ),
        ((0, 0), vec![(1, 1)], vec![(1, 1), (2, 2)], 1),
        ((0, 0), vec![(1, 3)], vec![(1, 3)], 1),
        ((2, 2), vec![], vec![(1, 1), (2, 2)], 2),
    ];
    for (prev, entries, want_log, want_index) in cases {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &[ent(1, 1), ent(2, 2)], 2, 0));
        r.become_follower(2, 2);
        let ents = entries.iter().map(|&(i, t)| ent(i, t)).collect();
        r.step(append_msg(2, 1, 4, prev, ents, 0)).unwrap();
        assert_eq!(
            index_terms(&r),
            want_log,
            "after append at {prev:?} of {entries:?}"
        );
        let resp = take_of(&mut r, MessageType::MsgAppendResponse);
        assert_eq!(resp.len(), 1);
        assert!(!resp[0].reject, "append at {prev:?} was rejected");
        assert_eq!(
            resp[0].index, want_index,
            "success index after append at {prev:?}"
        );
    }
}

// §5.3: a follower that does not hold (prevLogIndex, prevLogTerm) refuses the append and keeps its
// log; the rejection echoes the index and hints the largest index <= min(index, last) whose term is
// <= the leader's log_term, with that term (INTEROP.md "Appends").
#[test]
fn follower_rejects_append_on_log_mismatch_with_hint() {
    // (follower log terms, commit, probe (index, log_term), hint, hint term)
    let cases: Vec<(Vec<u64>, u64, IndexTerm, u64, u64)> = vec![
        (vec![1, 2], 0, (2, 3), 2, 2), // term mismatch at the last entry
        (vec![1, 2], 0, (3, 2), 2, 2), // index beyond the log
        (vec![1, 2], 0, (2, 1), 1, 1), // skip back over the conflicting term
        (vec![], 0, (1, 1), 0, 0),     // empty log
        (vec![1, 1, 2, 2, 2], 1, (6, 4), 5, 2), // beyond the log, terms below
        (vec![1, 3, 3, 3, 5], 1, (5, 4), 4, 3), // term 5 > 4 skipped
        (vec![1, 3, 3, 3, 5], 1, (5, 2), 1, 1), // terms 5 and 3 skipped
    ];
    for (terms, commit, (index, log_term), hint, hint_term) in cases {
        let log = ents_with_terms(&terms);
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 5, commit));
        let before = index_terms(&r);
        r.step(append_msg(
            2,
            1,
            6,
            (index, log_term),
            vec![ent(index + 1, 6)],
            0,
        ))
        .unwrap();
        assert_eq!(
            index_terms(&r),
            before,
            "a rejected append changed the log {terms:?}"
        );
        let resp = take_of(&mut r, MessageType::MsgAppendResponse);
        assert_eq!(resp.len(), 1, "log {terms:?}, probe ({index}, {log_term})");
        let m = &resp[0];
        assert!(
            m.reject,
            "log {terms:?} accepted a mismatching probe ({index}, {log_term})"
        );
        assert_eq!(m.index, index, "the rejection must echo the probed index");
        assert_eq!(
            (m.reject_hint, m.log_term),
            (hint, hint_term),
            "hint for log {terms:?}, probe ({index}, {log_term})"
        );
        assert_eq!((m.request_snapshot, m.commit), (0, commit));
    }
}

// §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete the
// existing entry and all that follow it" — only uncommitted entries can conflict.
#[test]
fn follower_replaces_conflicting_uncommitted_suffix() {
    let log = ents_with_terms(&[1, 2, 2, 2]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 2, 1));
    r.step(append_msg(2, 1, 3, (1, 1), vec![ent(2, 3), ent(3, 3)], 1))
        .unwrap();
    assert_eq!(
        index_terms(&r),
        vec![(1, 1), (2, 3), (3, 3)],
        "the conflicting suffix (2..=4 of term 2) must be replaced"
    );
    persist(&mut r);
    let stored: Vec<u64> = (1..=3)
        .map(|i| raft_core::Storage::term(&r.raft_log.store, i).unwrap())
        .collect();
    assert_eq!(stored, vec![1, 3, 3], "the stored log keeps the old suffix");
    assert_eq!(
        raft_core::Storage::last_index(&r.raft_log.store).unwrap(),
        3
    );
}

// §5.3: an append whose entries all match (a delayed, shorter duplicate) truncates nothing, and its
// success index is what it covered, not our last index (INTEROP.md).
#[test]
fn follower_keeps_suffix_when_append_entries_already_match() {
    let log = ents_with_terms(&[1, 1, 1]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 1, 0));
    r.step(append_msg(2, 1, 1, (1, 1), vec![ent(2, 1)], 0))
        .unwrap();
    assert_eq!(
        index_terms(&r),
        vec![(1, 1), (2, 1), (3, 1)],
        "a matching append truncated the log"
    );
    let resp = take_of(&mut r, MessageType::MsgAppendResponse);
    assert_eq!((resp[0].reject, resp[0].index), (false, 2));
}

// §5.3 / INTEROP.md: an append below the follower's commit index is answered with success at the
// commit index (everything up to it matches the leader's log).
#[test]
fn follower_answers_append_below_commit_with_its_commit_index() {
    let log = ents_with_terms(&[1, 1, 1]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 1, 2));
    r.step(append_msg(2, 1, 1, (1, 1), vec![ent(2, 1)], 0))
        .unwrap();
    let resp = take_of(&mut r, MessageType::MsgAppendResponse);
    assert_eq!(resp.len(), 1);
    assert_eq!(
        (resp[0].reject, resp[0].index, resp[0].commit),
        (false, 2, 2),
        "answer to an append below commit"
    );
    assert_eq!(r.raft_log.committed, 2);
}

// §5.3: an entry is committed once the leader has replicated it on a majority; the leader then
// tells every follower the new commit index in its next append.
#[test]
fn leader_commits_entry_once_replicated_on_majority() {
    let voters = [1, 2, 3, 4, 5];
    let mut r = new_raft(1, &voters);
    make_leader(&mut r, &voters);
    r.step(propose_msg(1, b"x")).unwrap();
    persist(&mut r);
    r.read_messages();
    r.step(append_ack(2, 1, 1, 2)).unwrap();
    assert_eq!(r.raft_log.committed, 1, "committed with 2 of 5 replicas");
    r.step(append_ack(3, 1, 1, 2)).unwrap();
    assert_eq!(
        r.raft_log.committed, 2,
        "not committed with 3 of 5 replicas"
    );
    let apps = take_of(&mut r, MessageType::MsgAppend);
    let mut to: Vec<u64> = apps
        .iter()
        .filter(|m| m.commit == 2)
        .map(|m| m.to)
        .collect();
    to.sort_unstable();
    assert_eq!(
        to,
        vec![2, 3, 4, 5],
        "every follower must learn the new commit: {apps:?}"
    );
}

// §5.3: a follower learns the commit index from the leader's next append and commits
// min(leader commit, last entry of that append) (INTEROP.md).
#[test]
fn follower_learns_commit_index_from_append() {
    // (leader commit, entries appended after (1, 1), expected follower commit)
    for (commit, n, want) in [(1, 2, 1), (2, 2, 2), (3, 2, 3), (9, 2, 3), (9, 0, 1)] {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 0));
        let ents = (0..n).map(|i| ent(2 + i, 1)).collect();
        r.step(append_msg(2, 1, 1, (1, 1), ents, commit)).unwrap();
        assert_eq!(
            r.raft_log.committed, want,
            "leader commit {commit} with {n} entries after index 1"
        );
    }
}

// §5.3: heartbeats (empty AppendEntries) carry the commit index too.
#[test]
fn follower_learns_commit_index_from_heartbeat() {
    let mut r = raft_on(
        1,
        storage_with(&[1, 2, 3], &ents_with_terms(&[1, 1, 1]), 1, 0),
    );
    let mut hb = msg(MessageType::MsgHeartbeat, 2, 1, 1);
    hb.commit = 2;
    r.step(hb).unwrap();
    assert_eq!(r.raft_log.committed, 2, "commit from heartbeat");
    let resp = take_of(&mut r, MessageType::MsgHeartbeatResponse);
    assert_eq!(resp.len(), 1);
    assert_eq!(
        (resp[0].to, resp[0].commit),
        (2, 2),
        "heartbeat response carries our commit"
    );
}

// §5.3: committing an entry also commits all preceding entries, including those of earlier terms.
#[test]
fn leader_commit_includes_preceding_entries() {
    for terms in [vec![], vec![2], vec![1, 1], vec![1, 2, 2]] {
        let last_term = terms.last().copied().unwrap_or(0);
        let log = ents_with_terms(&terms);
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, last_term, 0));
        r.step(hup()).unwrap();
        r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, r.term))
            .unwrap();
        assert_eq!(r.state, StateRole::Leader);
        persist(&mut r);
        r.read_messages();
        let last = r.raft_log.last_index();
        r.step(append_ack(2, 1, r.term, last)).unwrap();
        assert_eq!(
            r.raft_log.committed, last,
            "log {terms:?}: preceding entries not committed"
        );
    }
}

// §5.3, Figure 7: whatever a follower's log looks like (missing entries, extra uncommitted entries,
// both), the leader forces it to duplicate its own log.
#[test]
fn leader_brings_every_follower_log_in_line_with_its_own() {
    let leader = vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers = [
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6],
        vec![1, 1, 1, 4],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        vec![1, 1, 1, 4, 4, 4, 4],
        vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for follower in followers {
        // Node 3 holds the leader's log, so node 1 wins whatever node 2 votes.
        let logs = [leader.clone(), follower.clone(), leader.clone()];
        let mut net = network_with_logs(&logs, 8, rafttest::network::default_config);
        net.campaign(1);
        assert_eq!(
            net.node(1).state(),
            StateRole::Leader,
            "follower log {follower:?}"
        );
        assert_logs_equal(&net, 1);
        let terms: Vec<u64> = net_log(&net, 2).iter().map(|e| e.1).collect();
        let mut want = leader.clone();
        want.push(9);
        assert_eq!(terms, want, "follower log {follower:?} was not repaired");
    }
}

// §5.3, Figure 3 "Leader Append-Only": a leader never overwrites or deletes entries in its log, even
// when a (buggy or confused) peer sends it an append of the same term.
#[test]
fn leader_never_overwrites_its_own_log() {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    r.step(propose_msg(1, b"x")).unwrap();
    let before = log_entries(&r);
    let _ = r.step(append_msg(
        2,
        1,
        1,
        (0, 0),
        vec![ent(1, 1), ent(2, 1), ent(3, 1)],
        0,
    ));
    assert_eq!(log_entries(&r), before, "the leader's log changed");
    assert_eq!(r.state, StateRole::Leader);
}
