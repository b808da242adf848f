//! Unit tests of [`Unstable`]: the not-yet-persisted tail of the log.

use super::*;
use raft_proto::eraftpb::SnapshotMetadata;

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

/// Entries `lo..=hi`, all of `term`.
fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term)).collect()
}

fn snap(index: u64, term: u64) -> Snapshot {
    Snapshot {
        metadata: Some(SnapshotMetadata {
            index,
            term,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An unstable tail holding `entries` (which start at `offset`) and optionally a snapshot.
fn unstable(offset: u64, entries: Vec<Entry>, snapshot: Option<Snapshot>) -> Unstable {
    Unstable {
        snapshot: snapshot.map(Box::new),
        entries,
        offset,
        ..Default::default()
    }
}

/// (index, term) pairs, for readable comparisons.
fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

#[test]
fn maybe_first_index_is_known_only_from_a_snapshot() {
    // (entries, offset, snapshot, expected)
    let cases = vec![
        (vec![ent(5, 1)], 5, None, None),
        (vec![], 0, None, None),
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), Some(5)),
        (vec![], 5, Some(snap(4, 1)), Some(5)),
    ];
    for (i, (entries, offset, snapshot, want)) in cases.into_iter().enumerate() {
        let u = unstable(offset, entries, snapshot);
        assert_eq!(u.maybe_first_index(), want, "case {i}: maybe_first_index");
    }
}

#[test]
fn maybe_last_index_is_the_last_entry_else_the_snapshot_index() {
    let cases = vec![
        // last in entries
        (vec![ent(5, 1)], 5, None, Some(5)),
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), Some(5)),
        // last in snapshot
        (vec![], 5, Some(snap(4, 1)), Some(4)),
        // empty unstable
        (vec![], 0, None, None),
    ];
    for (i, (entries, offset, snapshot, want)) in cases.into_iter().enumerate() {
        let u = unstable(offset, entries, snapshot);
        assert_eq!(u.maybe_last_index(), want, "case {i}: maybe_last_index");
    }
}

#[test]
fn maybe_term_knows_its_entries_and_the_snapshot_index_only() {
    // (entries, offset, snapshot, index, expected term)
    let cases = vec![
        // term from entries
        (vec![ent(5, 1)], 5, None, 5, Some(1)),
        (vec![ent(5, 1)], 5, None, 6, None),
        (vec![ent(5, 1)], 5, None, 4, None),
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), 5, Some(1)),
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), 6, None),
        // term from the snapshot
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), 4, Some(1)),
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), 3, None),
        (vec![], 5, Some(snap(4, 1)), 5, None),
        (vec![], 5, Some(snap(4, 1)), 4, Some(1)),
        (vec![], 0, None, 5, None),
        // an index so far away it does not fit in a usize offset on 32-bit
        (vec![ent(5, 1)], 5, None, u64::MAX, None),
    ];
    for (i, (entries, offset, snapshot, index, want)) in cases.into_iter().enumerate() {
        let u = unstable(offset, entries, snapshot);
        assert_eq!(u.maybe_term(index), want, "case {i}: maybe_term({index})");
    }
}

#[test]
fn stable_entries_drops_everything_up_to_a_matching_index() {
    let mut u = unstable(5, ents(5, 7, 1), None);
    u.mark_all_in_progress();
    assert!(
        u.stable_entries(7, 1),
        "entry (7, 1) is held: must be accepted"
    );
    assert!(u.is_empty(), "all entries were persisted");
    assert_eq!(u.offset, 8, "offset moves past the persisted entries");
    assert_eq!(u.in_progress(), 0);
    assert_eq!(u.maybe_last_index(), None);
}

#[test]
fn stable_entries_keeps_the_part_after_a_partial_persist() {
    let mut u = unstable(5, ents(5, 8, 1), None);
    u.lend_first(3); // 5, 6, 7 handed out
    assert!(u.stable_entries(6, 1));
    assert_eq!(ids(&u.all_entries()), vec![(7, 1), (8, 1)]);
    assert_eq!(u.offset, 7);
    assert_eq!(u.in_progress(), 1, "entry 7 is still being persisted");
    assert_eq!(ids(u.not_in_progress()), vec![(8, 1)]);
}

#[test]
fn stable_entries_with_a_replaced_term_is_refused_and_keeps_entries() {
    // The ABA case of async writes: (6, 1) was handed out, then a new leader replaced it with
    // (6, 2) before the write of (6, 1) was reported.
    let mut u = unstable(5, vec![ent(5, 1), ent(6, 2)], None);
    assert!(!u.stable_entries(6, 1), "(6, 1) is no longer in the log");
    assert_eq!(
        ids(&u.entries),
        vec![(5, 1), (6, 2)],
        "nothing may be dropped"
    );
    assert_eq!(u.offset, 5);
}

#[test]
fn stable_entries_outside_the_tail_is_refused() {
    // (entries, offset, snapshot, index, term)
    let cases = vec![
        (vec![], 0, None, 5, 1),
        (vec![ent(5, 1)], 5, None, 4, 1),
        (vec![ent(5, 1)], 5, None, 6, 1),
        (vec![ent(5, 1)], 5, None, 4, 2),
        // the snapshot index is not an entry of the tail
        (vec![ent(5, 1)], 5, Some(snap(4, 1)), 4, 1),
        (vec![], 5, Some(snap(4, 1)), 4, 1),
    ];
    for (i, (entries, offset, snapshot, index, term)) in cases.into_iter().enumerate() {
        let mut u = unstable(offset, entries.clone(), snapshot);
        assert!(
            !u.stable_entries(index, term),
            "case {i}: must refuse ({index}, {term})"
        );
        assert_eq!(ids(&u.entries), ids(&entries), "case {i}: entries changed");
        assert_eq!(u.offset, offset, "case {i}: offset changed");
    }
}

#[test]
fn stable_entries_releases_a_large_buffer_once_empty() {
    // DESIGN.md §6: the unstable log must not pin the memory of a burst forever (a raft-rs leak).
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 5000, 1));
    assert!(u.entries.capacity() >= 5000);
    u.mark_all_in_progress();
    assert!(u.stable_entries(2500, 1));
    assert!(u.stable_entries(5000, 1));
    assert!(u.entries.is_empty());
    assert_eq!(
        u.entries.capacity(),
        0,
        "capacity {} kept after every entry was persisted",
        u.entries.capacity()
    );
    // The tail keeps working after the release.
    u.truncate_and_append(&[ent(5001, 1)]);
    assert_eq!(u.maybe_last_index(), Some(5001));
}

#[test]
fn take_stable_entries_hands_over_the_buffer() {
    // A fully persisted tail moves out with its buffer: no entry is copied and the tail pins no
    // memory afterwards.
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 10, 1));
    let cap = u.entries.capacity();
    let ptr = u.entries.as_ptr();
    u.mark_all_in_progress();
    let taken = u
        .take_stable_entries(10, 1, u64::MAX)
        .expect("term matches");
    assert_eq!(ids(&taken), ids(&ents(1, 10, 1)));
    assert_eq!(
        (taken.capacity(), taken.as_ptr()),
        (cap, ptr),
        "the buffer itself moved"
    );
    assert_eq!((u.entries.len(), u.entries.capacity()), (0, 0));
    assert_eq!(u.offset, 11);
    // A partly persisted tail hands out the durable prefix and keeps the rest, in order.
    u.truncate_and_append(&ents(11, 20, 2));
    u.mark_all_in_progress();
    let taken = u
        .take_stable_entries(14, 2, u64::MAX)
        .expect("term matches");
    assert_eq!(ids(&taken), ids(&ents(11, 14, 2)));
    assert_eq!(ids(&u.all_entries()), ids(&ents(15, 20, 2)));
    assert_eq!(u.offset, 15);
    assert_eq!(
        u.take_stable_entries(20, 1, u64::MAX),
        None,
        "wrong term: nothing moves"
    );
    assert_eq!(u.len(), 6);
}

#[test]
fn stable_snapshot_drops_only_the_matching_snapshot() {
    let mut u = unstable(5, vec![], Some(snap(4, 1)));
    u.stable_snapshot(3);
    assert!(
        u.snapshot.is_some(),
        "a different index must not drop the snapshot"
    );
    u.stable_snapshot(4);
    assert!(u.snapshot.is_none());
    assert_eq!(u.offset, 5, "offset is unchanged");
    u.stable_snapshot(4); // no snapshot: no effect, no panic
    assert!(u.snapshot.is_none());
}

#[test]
fn restore_replaces_everything_with_the_snapshot() {
    let mut u = unstable(5, ents(5, 7, 1), Some(snap(4, 1)));
    u.lend_first(2);
    u.restore(snap(6, 2));
    assert!(u.is_empty());
    assert_eq!(u.offset, 7);
    assert_eq!(u.in_progress(), 0);
    assert_eq!(u.maybe_first_index(), Some(7));
    assert_eq!(u.maybe_last_index(), Some(6));
    assert_eq!(u.maybe_term(6), Some(2));
    assert_eq!(
        u.maybe_term(5),
        None,
        "entries before the snapshot are gone"
    );
}

#[test]
fn truncate_and_append_extends_replaces_or_truncates() {
    // (offset, entries, to append, expected offset, expected entries)
    type Case = (u64, Vec<Entry>, Vec<Entry>, u64, Vec<(u64, u64)>);
    let cases: Vec<Case> = vec![
        // append to the end
        (
            5,
            vec![ent(5, 1)],
            vec![ent(6, 1), ent(7, 1)],
            5,
            vec![(5, 1), (6, 1), (7, 1)],
        ),
        // replace the whole tail, at its offset
        (
            5,
            vec![ent(5, 1)],
            vec![ent(5, 2), ent(6, 2)],
            5,
            vec![(5, 2), (6, 2)],
        ),
        // replace the whole tail, from below its offset
        (
            5,
            vec![ent(5, 1)],
            vec![ent(4, 2), ent(5, 2), ent(6, 2)],
            4,
            vec![(4, 2), (5, 2), (6, 2)],
        ),
        // truncate in the middle and append
        (5, ents(5, 7, 1), vec![ent(6, 2)], 5, vec![(5, 1), (6, 2)]),
        (
            5,
            ents(5, 7, 1),
            vec![ent(7, 2), ent(8, 2)],
            5,
            vec![(5, 1), (6, 1), (7, 2), (8, 2)],
        ),
        // appending to an empty tail
        (5, vec![], vec![ent(5, 1)], 5, vec![(5, 1)]),
        // nothing to append: unchanged
        (5, ents(5, 6, 1), vec![], 5, vec![(5, 1), (6, 1)]),
    ];
    for (i, (offset, entries, append, want_offset, want)) in cases.into_iter().enumerate() {
        let mut u = unstable(offset, entries, None);
        u.truncate_and_append(&append);
        assert_eq!(u.offset, want_offset, "case {i}: offset");
        assert_eq!(ids(&u.entries), want, "case {i}: entries");
    }
}

#[test]
fn truncate_and_append_adjusts_in_progress() {
    // (entries 5..=8 with in_progress, append, expected in_progress)
    let cases = vec![
        // extension: the entries handed out stay handed out
        (2, vec![ent(9, 1)], 2),
        (4, vec![ent(9, 1)], 4),
        // truncation after the handed-out ones does not touch them
        (2, vec![ent(8, 2)], 2),
        // truncation inside the handed-out ones: the replaced ones must be handed out again
        (3, vec![ent(6, 2)], 1),
        (4, vec![ent(7, 2)], 2),
        // replacing everything
        (4, vec![ent(5, 2)], 0),
        (4, vec![ent(3, 2)], 0),
    ];
    for (i, (in_progress, append, want)) in cases.into_iter().enumerate() {
        let mut u = unstable(5, ents(5, 8, 1), None);
        u.lend_first(in_progress);
        u.truncate_and_append(&append);
        assert_eq!(u.in_progress(), want, "case {i}: in_progress");
        let first_new = append[0].index;
        assert!(
            u.not_in_progress()
                .first()
                .is_some_and(|e| e.index <= first_new),
            "case {i}: the new entry {first_new} must be among those not yet handed out"
        );
    }
}

#[test]
fn not_in_progress_and_mark_all_in_progress() {
    let mut u = unstable(5, ents(5, 7, 1), None);
    assert_eq!(ids(u.not_in_progress()), vec![(5, 1), (6, 1), (7, 1)]);
    u.mark_all_in_progress();
    assert!(
        u.not_in_progress().is_empty(),
        "all entries were handed out"
    );
    u.truncate_and_append(&[ent(8, 1)]);
    assert_eq!(
        ids(u.not_in_progress()),
        vec![(8, 1)],
        "only the new entry is pending"
    );
    u.mark_all_in_progress();
    assert_eq!(u.in_progress(), 4);
    assert_eq!(ids(&u.all_entries()), ids(&ents(5, 8, 1)));
}

#[test]
fn slice_returns_the_requested_range() {
    let mut u = unstable(5, ents(5, 9, 1), None);
    let slice =
        |u: &Unstable, lo, hi| -> Vec<(u64, u64)> { u.slices(lo, hi).flat_map(ids).collect() };
    for lent in [0, 1, 2, 5] {
        // However the tail is split between lent chunks and the rest, a range reads the same.
        if lent > 0 {
            u.lend_first(lent - u.in_progress());
        }
        assert_eq!(slice(&u, 5, 10), ids(&ents(5, 9, 1)), "lent {lent}");
        assert_eq!(slice(&u, 6, 8), vec![(6, 1), (7, 1)], "lent {lent}");
        assert!(slice(&u, 7, 7).is_empty(), "lent {lent}");
        assert_eq!(slice(&u, 9, 10), vec![(9, 1)], "lent {lent}");
        for i in 5..=9 {
            assert_eq!(u.maybe_term(i), Some(1), "lent {lent}: term of {i}");
        }
    }
}

#[test]
fn a_new_buffer_starts_with_room_for_the_last_batch() {
    // A leader's proposals: after a batch of 64 was handed out with its buffer, the next one starts with
    // room for 64 instead of growing through 4, 8, 16, 32.
    let mut u = Unstable::new(1);
    for e in ents(1, 64, 1) {
        u.push(e);
    }
    u.mark_all_in_progress();
    assert_eq!(
        u.take_stable_entries(64, 1, u64::MAX).map(|t| t.len()),
        Some(64)
    );
    u.push(ent(65, 1));
    assert!(
        u.entries.capacity() >= 64,
        "capacity {}",
        u.entries.capacity()
    );

    // A follower's appends of one entry each: the first gets a buffer of the batch's size rather
    // than the message's one-slot buffer.
    let mut u = Unstable::new(1);
    for i in 1..=32 {
        u.truncate_and_append_owned(vec![ent(i, 1)]);
    }
    u.mark_all_in_progress();
    assert!(u.take_stable_entries(32, 1, u64::MAX).is_some());
    u.truncate_and_append_owned(vec![ent(33, 1)]);
    assert!(
        u.entries.capacity() >= 32,
        "capacity {}",
        u.entries.capacity()
    );
    assert_eq!(ids(&u.entries), vec![(33, 1)]);

    // The hint is capped, so one huge batch does not make every later buffer huge.
    let mut u = Unstable::new(1);
    u.truncate_and_append_owned(ents(1, 5000, 1));
    u.mark_all_in_progress();
    assert!(u.take_stable_entries(5000, 1, u64::MAX).is_some());
    u.push(ent(5001, 1));
    assert!(
        u.entries.capacity() <= 2 * MAX_BATCH_HINT,
        "capacity {}",
        u.entries.capacity()
    );
}

#[test]
fn a_lent_chunk_moves_out_without_a_copy_once_its_ready_is_gone() {
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 8, 1));
    let chunk = u.lend(1).expect("entries to lend");
    assert_eq!(ids(&chunk), ids(&ents(1, 8, 1)));
    assert!(u.not_in_progress().is_empty());
    assert_eq!((u.in_progress(), u.last_index()), (8, 8));
    let ptr = chunk.as_ptr();
    drop(chunk); // the Ready was handled and dropped
    let taken = u.take_stable_entries(8, 1, u64::MAX).expect("term matches");
    assert_eq!(taken.as_ptr(), ptr, "the lent buffer itself moved out");
    assert_eq!(ids(&taken), ids(&ents(1, 8, 1)));
    assert!(u.is_empty());
}

#[test]
fn a_lent_chunk_still_held_is_copied_and_both_sides_stay_whole() {
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 4, 1));
    let chunk = u.lend(1).expect("entries to lend");
    let taken = u.take_stable_entries(2, 1, u64::MAX).expect("term matches");
    assert_eq!(ids(&taken), ids(&ents(1, 2, 1)));
    assert_eq!(
        ids(&chunk),
        ids(&ents(1, 4, 1)),
        "the Ready's entries are untouched"
    );
    assert_eq!(ids(&u.all_entries()), ids(&ents(3, 4, 1)));
    assert_eq!(u.in_progress(), 2);
}

#[test]
fn pipelined_readys_lend_one_chunk_each_and_persist_in_order() {
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 3, 1));
    let first = u.lend(1).expect("first Ready");
    u.truncate_and_append(&ents(4, 5, 1));
    let second = u.lend(1).expect("second Ready");
    u.truncate_and_append(&ents(6, 6, 1));
    assert_eq!((u.in_progress(), u.entries.len()), (5, 1));
    assert_eq!(ids(&u.all_entries()), ids(&ents(1, 6, 1)));
    for i in 1..=6 {
        assert_eq!(u.maybe_term(i), Some(1), "term of {i}");
    }
    drop((first, second));
    assert_eq!(
        ids(&u.take_stable_entries(3, 1, u64::MAX).unwrap()),
        ids(&ents(1, 3, 1))
    );
    assert_eq!(u.in_progress(), 2);
    assert_eq!(
        ids(&u.take_stable_entries(5, 1, u64::MAX).unwrap()),
        ids(&ents(4, 5, 1))
    );
    assert_eq!((u.in_progress(), u.offset), (0, 6));
    assert_eq!(ids(u.not_in_progress()), vec![(6, 1)]);
}

#[test]
fn a_new_leader_replacing_lent_entries_leaves_the_ready_alone_and_refuses_its_report() {
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 4, 1));
    let chunk = u.lend(1).expect("entries to lend");
    // A newer leader replaces 3..=4 while the Ready is being persisted.
    u.truncate_and_append(&[ent(3, 2), ent(4, 2)]);
    assert_eq!(
        ids(&chunk),
        ids(&ents(1, 4, 1)),
        "the Ready keeps what it carried"
    );
    assert_eq!(u.in_progress(), 2, "1..=2 are still out");
    assert_eq!(ids(u.not_in_progress()), vec![(3, 2), (4, 2)]);
    drop(chunk);
    assert!(
        u.take_stable_entries(4, 1, u64::MAX).is_none(),
        "the Ready's (4, 1) is no longer in the log: nothing is durable"
    );
    assert_eq!(
        ids(&u.take_stable_entries(2, 1, u64::MAX).unwrap()),
        ids(&ents(1, 2, 1))
    );
    assert_eq!(ids(&u.all_entries()), vec![(3, 2), (4, 2)]);
}

#[test]
fn only_entries_handed_out_by_the_reported_readys_become_durable() {
    // Never handed out: not durable, whatever the report says.
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 3, 1));
    assert_eq!(u.take_stable_entries(3, 1, u64::MAX), None);
    assert_eq!(u.len(), 3);
    // Ready 1 lends 1..=3; after a snapshot replaced the tail, 4..=5 come back and Ready 3
    // lends them again with the same terms. A report for Ready 1 (whose copy of those entries a
    // later snapshot write erases) must not count them, nor may a report for Ready 2.
    let mut u = Unstable::new(1);
    u.truncate_and_append(&ents(1, 5, 1));
    let _ = u.lend(1);
    u.restore(snap(3, 1));
    u.truncate_and_append(&ents(4, 5, 1));
    assert_eq!(u.take_stable_entries(5, 1, 1), None, "not lent at all");
    let _ = u.lend(3);
    assert_eq!(
        u.take_stable_entries(5, 1, 2),
        None,
        "lent by a later Ready"
    );
    assert_eq!(u.in_progress(), 2);
    assert_eq!(
        ids(&u.take_stable_entries(5, 1, 3).unwrap()),
        vec![(4, 1), (5, 1)],
        "the Ready that carried them"
    );
}
