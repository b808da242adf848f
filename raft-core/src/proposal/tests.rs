//! Unit tests of the proposal tracker.

use super::*;

fn e(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

#[test]
fn each_proposal_is_decided_once_by_the_entry_committed_at_its_index() {
    let mut t = ProposalTracker::new();
    t.track('a', 5, 2);
    t.track('b', 6, 2);
    t.track('c', 7, 2);
    assert_eq!(t.on_committed(&[e(4, 1)]), vec![], "nothing tracked yet");
    assert_eq!(
        t.on_committed(&[e(5, 2), e(6, 3)]),
        vec![
            ('a', ProposalOutcome::Committed { index: 5, term: 2 }),
            (
                'b',
                ProposalOutcome::Dropped {
                    index: 6,
                    term: 2,
                    committed_term: 3
                }
            ),
        ]
    );
    assert_eq!(t.len(), 1);
    assert_eq!(t.on_committed(&[]), vec![]);
    assert_eq!(
        t.on_committed(&[e(7, 3), e(8, 3)]),
        vec![(
            'c',
            ProposalOutcome::Dropped {
                index: 7,
                term: 2,
                committed_term: 3
            }
        )]
    );
    assert!(t.is_empty());
}

#[test]
fn a_proposal_at_an_index_already_tracked_keeps_index_order() {
    let mut t = ProposalTracker::new();
    t.track('a', 5, 2);
    t.track('b', 6, 2);
    // Leading again in term 4 after losing entries 5 and 6 of term 2.
    t.track('c', 5, 4);
    let outcomes = t.on_committed(&[e(5, 4), e(6, 4)]);
    assert_eq!(
        outcomes,
        vec![
            (
                'a',
                ProposalOutcome::Dropped {
                    index: 5,
                    term: 2,
                    committed_term: 4
                }
            ),
            ('c', ProposalOutcome::Committed { index: 5, term: 4 }),
            (
                'b',
                ProposalOutcome::Dropped {
                    index: 6,
                    term: 2,
                    committed_term: 4
                }
            ),
        ]
    );
}

#[test]
fn a_snapshot_decides_what_its_term_can_tell() {
    let mut t = ProposalTracker::new();
    t.track('a', 5, 2);
    t.track('b', 6, 3);
    t.track('c', 7, 4);
    t.track('d', 9, 3);
    assert_eq!(
        t.on_snapshot(7, 3),
        vec![
            ('a', ProposalOutcome::Unknown { index: 5, term: 2 }),
            ('b', ProposalOutcome::Committed { index: 6, term: 3 }),
            (
                'c',
                ProposalOutcome::Dropped {
                    index: 7,
                    term: 4,
                    committed_term: 3
                }
            ),
        ]
    );
    assert_eq!(t.len(), 1, "index 9 is past the snapshot");
}

#[test]
fn a_proposal_below_the_batch_handed_out_is_unknown() {
    let mut t = ProposalTracker::new();
    t.track('a', 3, 1);
    assert_eq!(
        t.on_committed(&[e(5, 2)]),
        vec![('a', ProposalOutcome::Unknown { index: 3, term: 1 })]
    );
}

#[test]
fn ids_decide_as_entries_do() {
    let mut by_entries = ProposalTracker::new();
    let mut by_ids = ProposalTracker::new();
    for t in [&mut by_entries, &mut by_ids] {
        t.track('a', 5, 2);
        t.track('b', 6, 2);
    }
    let batch = [e(5, 2), e(6, 3)];
    let ids: Vec<(u64, u64)> = batch.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(
        by_entries.on_committed(&batch),
        by_ids.on_committed_ids(&ids)
    );
    assert!(by_ids.is_empty());
}

#[test]
fn a_forwarded_proposal_is_decided_by_its_answer_then_its_index() {
    let mut t = ProposalTracker::new();
    t.on_committed(&[e(1, 1), e(2, 1)]);
    t.track_forwarded('a', 1, 1);
    t.track_forwarded('b', 2, 1);
    t.track_forwarded('c', 3, 1);
    assert_eq!(t.len(), 3);
    let answers = [
        ForwardAnswer::Appended {
            id: 1,
            term: 1,
            index: 3,
        },
        ForwardAnswer::NotAppended { id: 2, term: 1 },
        // Not waiting: ignored.
        ForwardAnswer::NotAppended { id: 9, term: 1 },
        ForwardAnswer::Appended {
            id: 3,
            term: 2,
            index: 4,
        },
    ];
    assert_eq!(
        t.on_forward_answers(answers),
        vec![('b', ProposalOutcome::NotAppended { term: 1 })]
    );
    assert_eq!(
        t.len(),
        2,
        "a waits at index 3, c for an answer of its own term"
    );
    assert_eq!(
        t.on_committed(&[e(3, 1)]),
        vec![('a', ProposalOutcome::Committed { index: 3, term: 1 })]
    );
}

#[test]
fn an_answer_arriving_after_its_entry_was_applied_is_decided_from_the_history() {
    let mut t = ProposalTracker::new();
    t.on_committed(&[e(1, 1)]);
    t.track_forwarded('a', 1, 2);
    t.track_forwarded('b', 2, 2);
    t.on_committed(&[e(2, 2), e(3, 2), e(4, 2)]);
    let outcomes = t.on_forward_answers([
        ForwardAnswer::Appended {
            id: 2,
            term: 2,
            index: 4,
        },
        ForwardAnswer::Appended {
            id: 1,
            term: 2,
            index: 3,
        },
    ]);
    assert_eq!(
        outcomes,
        vec![
            ('b', ProposalOutcome::Committed { index: 4, term: 2 }),
            ('a', ProposalOutcome::Committed { index: 3, term: 2 }),
        ]
    );
    assert!(t.is_empty());
}

#[test]
fn an_answered_index_overwritten_by_a_later_term_is_dropped() {
    let mut t = ProposalTracker::new();
    t.track_forwarded('a', 1, 2);
    t.track_forwarded('b', 2, 3);
    // Index 2 of term 2 lost to term 3's leader; the answer for 'a' comes late.
    t.on_committed(&[e(1, 1), e(2, 3)]);
    assert_eq!(
        t.on_forward_answers([ForwardAnswer::Appended {
            id: 1,
            term: 2,
            index: 2
        }]),
        vec![],
        "a was decided unanswered when term 3 was applied"
    );
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.on_forward_answers([ForwardAnswer::Appended {
            id: 2,
            term: 3,
            index: 2
        }]),
        vec![('b', ProposalOutcome::Committed { index: 2, term: 3 })]
    );
}

#[test]
fn a_later_term_applied_decides_unanswered_forwards() {
    let mut t = ProposalTracker::new();
    t.track_forwarded('a', 1, 2);
    t.track_forwarded('b', 2, 3);
    assert_eq!(t.on_committed(&[e(1, 2)]), vec![]);
    assert_eq!(
        t.on_committed(&[e(2, 3)]),
        vec![('a', ProposalOutcome::Unanswered { term: 2 })]
    );
    assert_eq!(
        t.on_snapshot(9, 4),
        vec![('b', ProposalOutcome::Unanswered { term: 3 })]
    );
    assert!(t.is_empty());
}

#[test]
fn an_answer_below_a_snapshot_is_decided_by_its_term() {
    let mut t = ProposalTracker::new();
    t.track_forwarded('a', 1, 5);
    t.track_forwarded('b', 2, 5);
    assert_eq!(t.on_snapshot(10, 5), vec![]);
    t.track_forwarded('c', 3, 6);
    let outcomes = t.on_forward_answers([
        ForwardAnswer::Appended {
            id: 1,
            term: 5,
            index: 8,
        },
        ForwardAnswer::Appended {
            id: 2,
            term: 5,
            index: 12,
        },
    ]);
    assert_eq!(
        outcomes,
        vec![('a', ProposalOutcome::Committed { index: 8, term: 5 })]
    );
    assert_eq!(t.len(), 2, "b waits for index 12, c for its answer");
}
