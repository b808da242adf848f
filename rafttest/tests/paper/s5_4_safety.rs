//! §5.4 Safety: the election restriction (§5.4.1, a voter refuses a less up-to-date log) and
//! committing entries from previous terms (§5.4.2, only through an entry of the leader's term).

use crate::common::*;
use raft_core::eraftpb::{EntryType, Message, MessageType};
use raft_core::StateRole;

// §5.4.1: a voter denies its vote to a candidate whose last entry has an older term, however long
// that candidate's log is.
#[test]
fn voter_rejects_candidate_whose_last_term_is_older() {
    // Voter log ends at (2, 2); candidates (last index, last term) and whether they are granted.
    for (index, term, granted) in [
        (1, 1, false),
        (3, 1, false),
        (10, 1, false),
        (1, 3, true),
        (2, 2, true),
    ] {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &ents_with_terms(&[1, 2]), 2, 1));
        r.step(vote_request(
            MessageType::MsgRequestVote,
            2,
            1,
            3,
            index,
            term,
        ))
        .unwrap();
        let resp = take_of(&mut r, MessageType::MsgRequestVoteResponse);
        assert_eq!(resp.len(), 1);
        assert_eq!(
            !resp[0].reject, granted,
            "candidate log ending at ({index}, {term}) vs voter (2, 2)"
        );
        assert_eq!(resp[0].term, 3, "the answer must carry the request's term");
        if !granted {
            assert_eq!(
                (resp[0].commit, resp[0].commit_term),
                (1, 1),
                "rejection fields"
            );
            assert_eq!(r.vote, 0, "voted although it rejected");
        }
    }
}

// §5.4.1: with equal last terms, the longer log is more up to date: a shorter candidate is refused.
#[test]
fn voter_rejects_candidate_with_shorter_log_in_same_last_term() {
    // Voter log ends at (3, 2).
    for (index, granted) in [(1, false), (2, false), (3, true), (4, true)] {
        let mut r = raft_on(
            1,
            storage_with(&[1, 2, 3], &ents_with_terms(&[1, 2, 2]), 2, 0),
        );
        r.step(vote_request(MessageType::MsgRequestVote, 2, 1, 3, index, 2))
            .unwrap();
        let resp = take_of(&mut r, MessageType::MsgRequestVoteResponse);
        assert_eq!(
            !resp[0].reject, granted,
            "candidate ending at ({index}, 2) vs voter ending at (3, 2)"
        );
        assert_eq!(r.vote, if granted { 2 } else { 0 });
    }
}

// §5.4.2, Figure 8 (c): a leader never commits an entry of an earlier term by counting replicas, even
// once a majority holds it; it becomes committed only with an entry of the leader's own term.
#[test]
fn leader_does_not_commit_earlier_term_entry_by_counting_replicas() {
    let voters = [1, 2, 3, 4, 5];
    // S1 wrote index 2 in term 2 but did not commit it; it is now elected in term 4.
    let mut r = raft_on(1, storage_with(&voters, &ents_with_terms(&[1, 2]), 3, 1));
    r.step(hup()).unwrap();
    assert_eq!(r.term, 4);
    for v in [2, 3] {
        r.step(msg(MessageType::MsgRequestVoteResponse, v, 1, 4))
            .unwrap();
    }
    assert_eq!(r.state, StateRole::Leader);
    persist(&mut r);
    r.read_messages();
    assert_eq!(index_terms(&r), vec![(1, 1), (2, 2), (3, 4)]);
    // S2 and S3 hold index 2 (term 2): with S1, a majority.
    r.step(append_ack(2, 1, 4, 2)).unwrap();
    r.step(append_ack(3, 1, 4, 2)).unwrap();
    assert_eq!(
        r.raft_log.committed, 1,
        "an entry of term 2 was committed by counting replicas in term 4"
    );
    // One more replica of the term-4 entry is not yet a majority.
    r.step(append_ack(2, 1, 4, 3)).unwrap();
    assert_eq!(
        r.raft_log.committed, 1,
        "committed index 3 with 2 of 5 replicas"
    );
    r.step(append_ack(3, 1, 4, 3)).unwrap();
    assert_eq!(
        r.raft_log.committed, 3,
        "the term-4 entry on a majority must commit it and index 2 with it"
    );
}

// §5.4.2 / thesis §6.4: a new leader's first entry is an empty EntryNormal of its term, sent to all.
#[test]
fn new_leader_first_entry_is_empty_normal_entry_of_its_term() {
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &ents_with_terms(&[1]), 1, 1));
    r.step(hup()).unwrap();
    r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 2))
        .unwrap();
    assert_eq!((r.state, r.term), (StateRole::Leader, 2));
    let first = log_entries(&r).pop().unwrap();
    assert_eq!(
        (first.index, first.term),
        (2, 2),
        "the new entry's position"
    );
    assert_eq!(first.entry_type, EntryType::EntryNormal as i32);
    assert!(
        first.data.is_empty() && first.context.is_empty(),
        "entry not empty: {first:?}"
    );
    let apps: Vec<Message> = take_of(&mut r, MessageType::MsgAppend);
    assert_eq!(apps.len(), 2, "the empty entry goes to every follower");
    for m in &apps {
        assert_eq!((m.index, m.log_term), (1, 1));
        assert_eq!(m.entries, vec![first.clone()]);
    }
}
