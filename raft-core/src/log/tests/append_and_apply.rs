//! Unit tests of [`RaftLog`]'s write side: `maybe_append`, `append`, commit, persistence, handing out
//! committed entries, and `slice` across storage and the unstable tail.

use super::*;

#[test]
fn maybe_append_follows_the_append_rules() {
    // The log is (1,1) (2,2) (3,3), committed 1. §5.3: append only after a matching entry,
    // truncate at the first conflict, commit min(leader commit, index of last new entry).
    // (prev term, prev index, leader commit, entries, expected result, commit, log afterwards)
    type Case = (u64, u64, u64, Vec<Entry>, Option<u64>, u64, Vec<(u64, u64)>);
    let orig = vec![(1, 1), (2, 2), (3, 3)];
    let cases: Vec<Case> = vec![
        // the previous entry does not match: refused, nothing changes
        (2, 3, 3, vec![ent(4, 4)], None, 1, orig.clone()),
        (3, 4, 3, vec![ent(5, 4)], None, 1, orig.clone()),
        // match with the last entry, no new entries
        (3, 3, 3, vec![], Some(3), 3, orig.clone()),
        (3, 3, 4, vec![], Some(3), 3, orig.clone()),
        (3, 3, 2, vec![], Some(3), 2, orig.clone()),
        (3, 3, 0, vec![], Some(3), 1, orig.clone()),
        (0, 0, 3, vec![], Some(0), 1, orig.clone()),
        // match with the last entry, new entries
        (
            3,
            3,
            3,
            vec![ent(4, 4)],
            Some(4),
            3,
            vec![(1, 1), (2, 2), (3, 3), (4, 4)],
        ),
        (
            3,
            3,
            4,
            vec![ent(4, 4)],
            Some(4),
            4,
            vec![(1, 1), (2, 2), (3, 3), (4, 4)],
        ),
        (
            3,
            3,
            5,
            vec![ent(4, 4)],
            Some(4),
            4,
            vec![(1, 1), (2, 2), (3, 3), (4, 4)],
        ),
        (
            3,
            3,
            5,
            vec![ent(4, 4), ent(5, 4)],
            Some(5),
            5,
            vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 4)],
        ),
        // matching entries already here: nothing is truncated, commit stops at the last new one
        (1, 1, 3, vec![ent(2, 2)], Some(2), 2, orig.clone()),
        // conflicts after the commit index: truncate and replace
        (
            2,
            2,
            3,
            vec![ent(3, 4)],
            Some(3),
            3,
            vec![(1, 1), (2, 2), (3, 4)],
        ),
        (1, 1, 3, vec![ent(2, 4)], Some(2), 2, vec![(1, 1), (2, 4)]),
        (
            1,
            1,
            3,
            vec![ent(2, 4), ent(3, 4)],
            Some(3),
            3,
            vec![(1, 1), (2, 4), (3, 4)],
        ),
    ];
    for (i, (term, index, commit, entries, want, want_commit, want_log)) in
        cases.into_iter().enumerate()
    {
        let mut log = log_123();
        log.commit_to(1);
        let got = log.maybe_append(index, term, commit, &entries);
        assert_eq!(got, Ok(want), "case {i}: result");
        assert_eq!(log.committed, want_commit, "case {i}: committed");
        assert_eq!(contents(&log), want_log, "case {i}: log");
    }
}

#[test]
fn maybe_append_refuses_to_overwrite_a_committed_entry_and_changes_nothing() {
    let mut log = new_log(0, 0, vec![ent(1, 1), ent(2, 2)], &[ent(3, 3)]);
    log.commit_to(2);
    let before = (
        contents(&log),
        log.committed,
        log.persisted,
        ids(log.unstable_entries()),
    );
    let got = log.maybe_append(1, 1, 3, &[ent(2, 4), ent(3, 4)]);
    assert!(
        matches!(got, Err(Error::Invariant(_))),
        "overwriting committed entry 2 must fail, got {got:?}"
    );
    let after = (
        contents(&log),
        log.committed,
        log.persisted,
        ids(log.unstable_entries()),
    );
    assert_eq!(
        after, before,
        "a refused append must leave the log unchanged"
    );
}

#[test]
fn append_truncates_and_forgets_persistence_of_replaced_entries() {
    let mut log = log_123();
    assert_eq!(
        log.append(&[]),
        3,
        "appending nothing returns the last index"
    );
    assert_eq!(log.persisted, 3);
    assert_eq!(
        log.append(&[ent(2, 5)]),
        2,
        "a conflicting append truncates the tail"
    );
    assert_eq!(
        log.persisted, 1,
        "entries 2 and 3 were replaced: no longer durable"
    );
    assert_eq!(contents(&log), vec![(1, 1), (2, 5)]);
    assert_eq!(ids(log.unstable_entries()), vec![(2, 5)]);
    assert_eq!(log.append(&[ent(3, 5), ent(4, 5)]), 4);
    assert_eq!(log.persisted, 1, "extending leaves persisted alone");
    assert!(persist(&mut log, 4, 5));
    assert_eq!(log.persisted, 4);
    assert_eq!(contents(&log), vec![(1, 1), (2, 5), (3, 5), (4, 5)]);
}

#[test]
fn commit_to_never_decreases() {
    let mut log = log_123();
    log.commit_to(3);
    assert_eq!(log.committed, 3);
    log.commit_to(2);
    assert_eq!(log.committed, 3, "the commit index must never go back");
    log.commit_to(0);
    assert_eq!(log.committed, 3);
}

#[test]
fn maybe_commit_only_commits_an_entry_of_the_given_term() {
    // §5.4.2: a leader commits by counting replicas only entries of its current term.
    let mut log = new_log(0, 0, vec![ent(1, 1), ent(2, 1)], &[ent(3, 2), ent(4, 2)]);
    assert!(!log.maybe_commit(2, 2), "entry 2 is of term 1, not 2");
    assert_eq!(log.committed, 0);
    assert!(log.maybe_commit(3, 2));
    assert_eq!(log.committed, 3);
    assert!(!log.maybe_commit(3, 2), "no move: already committed");
    assert!(!log.maybe_commit(1, 1), "never lowers the commit index");
    assert!(!log.maybe_commit(5, 2), "beyond the log: unknown term");
    assert_eq!(log.committed, 3);
    assert!(log.maybe_commit(4, 2));
    assert_eq!(log.committed, 4);
}

#[test]
fn stable_entries_moves_persisted_only_for_a_matching_unstable_entry() {
    let mut log = new_log(
        0,
        0,
        vec![ent(1, 1), ent(2, 1)],
        &[ent(3, 2), ent(4, 2), ent(5, 2)],
    );
    assert_eq!(log.persisted, 2);
    assert!(
        !log.stable_entries(4, 1),
        "entry 4 has term 2: a stale report is refused"
    );
    assert_eq!(log.persisted, 2);
    assert!(
        !log.stable_entries(2, 1),
        "entry 2 is not in the unstable tail"
    );
    assert!(persist(&mut log, 4, 2));
    assert_eq!(log.persisted, 4);
    assert_eq!(ids(&log.unstable.entries), vec![(5, 2)]);
    assert!(persist(&mut log, 5, 2));
    assert_eq!(log.persisted, 5);
    assert!(log.unstable.entries.is_empty());
}

#[test]
fn next_committed_entries_waits_for_local_persistence() {
    // Committed 5, persisted 3: only 1..=3 may be applied yet.
    let mut log = new_log(
        0,
        0,
        vec![ent(1, 1), ent(2, 1), ent(3, 1)],
        &[ent(4, 1), ent(5, 1), ent(6, 1)],
    );
    log.commit_to(5);
    assert!(log.has_next_committed_entries());
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1), (3, 1)]
    );
    assert_eq!(log.applying, 3);
    assert!(
        !log.has_next_committed_entries(),
        "4 and 5 are committed but not durable here"
    );
    assert!(
        log.next_committed_entries(NO_LIMIT).unwrap().is_empty(),
        "entries 1..=3 must not be handed out twice"
    );
    assert!(persist(&mut log, 6, 1));
    assert!(log.has_next_committed_entries());
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(4, 1), (5, 1)],
        "6 is not committed"
    );
    assert!(log.next_committed_entries(NO_LIMIT).unwrap().is_empty());
    log.applied_to(5);
    assert!(
        log.next_committed_entries(NO_LIMIT).unwrap().is_empty(),
        "applying does not re-offer entries"
    );
}

#[test]
fn next_committed_entries_pages_by_size_and_always_returns_one() {
    let all: Vec<Entry> = (1..=6).map(|i| big(i, 1)).collect();
    let size = entry_size(&all[0]);
    let mut log = new_log(0, 0, all[..3].to_vec(), &all[3..]);
    assert!(persist(&mut log, 6, 1));
    log.commit_to(6);
    // A limit below one entry still makes progress.
    assert_eq!(ids(&log.next_committed_entries(0).unwrap()), vec![(1, 1)]);
    assert_eq!(
        ids(&log.next_committed_entries(size).unwrap()),
        vec![(2, 1)]
    );
    // Two entries fit exactly; a byte more still does not fit a third.
    assert_eq!(
        ids(&log.next_committed_entries(2 * size).unwrap()),
        vec![(3, 1), (4, 1)]
    );
    assert_eq!(
        ids(&log.next_committed_entries(2 * size + 1).unwrap()),
        vec![(5, 1), (6, 1)]
    );
    assert!(
        log.next_committed_entries(0).unwrap().is_empty(),
        "everything was handed out once"
    );
    assert_eq!(log.applying, 6);
}

#[test]
fn next_committed_entries_starts_after_the_snapshot() {
    let mut log = new_log(5, 2, vec![ent(6, 2), ent(7, 2)], &[]);
    log.commit_to(7);
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(6, 2), (7, 2)]
    );
}

#[test]
fn applied_to_never_goes_back_and_is_clamped_to_committed() {
    let mut log = new_log(0, 0, (1..=5).map(|i| ent(i, 1)).collect(), &[]);
    log.commit_to(3);
    log.applied_to(2);
    assert_eq!(
        (log.applied, log.applying),
        (2, 2),
        "applying follows applied"
    );
    log.applied_to(1);
    assert_eq!(log.applied, 2, "applied must never go back");
    log.applied_to(9);
    assert_eq!(log.applied, 3, "applied is clamped to committed");
    assert_eq!(log.applying, 3);
    assert!(
        log.next_committed_entries(NO_LIMIT).unwrap().is_empty(),
        "applied entries are never re-offered"
    );
}

#[test]
fn slice_spans_storage_and_unstable_within_a_size_limit() {
    // 1..=5 in storage, 6..=10 unstable, every entry the same size.
    let all: Vec<Entry> = (1..=10).map(|i| big(i, 1)).collect();
    let size = entry_size(&all[0]);
    let log = new_log(0, 0, all[..5].to_vec(), &all[5..]);
    let range = |lo: u64, hi: u64| -> Vec<(u64, u64)> { (lo..=hi).map(|i| (i, 1)).collect() };
    // (low, high, max_size, expected)
    let cases = [
        (3, 9, NO_LIMIT, range(3, 8)),
        (1, 11, NO_LIMIT, range(1, 10)),
        (3, 6, NO_LIMIT, range(3, 5)),
        (6, 9, NO_LIMIT, range(6, 8)),
        (3, 9, 0, range(3, 3)),
        (7, 9, 0, range(7, 7)),
        (3, 9, 2 * size, range(3, 4)),
        (3, 9, 3 * size, range(3, 5)),
        (3, 9, 3 * size + 1, range(3, 5)),
        (3, 9, 4 * size, range(3, 6)),
        (3, 9, 5 * size, range(3, 7)),
        (3, 9, 100 * size, range(3, 8)),
        (6, 9, 2 * size, range(6, 7)),
        (4, 4, NO_LIMIT, vec![]),
        (6, 5, NO_LIMIT, vec![]),
    ];
    for (low, high, max_size, want) in cases {
        let got = log.slice(low, high, max_size).map(|es| ids(&es));
        assert_eq!(got, Ok(want), "slice({low}, {high}, {max_size})");
    }
    assert_eq!(ids(&log.entries(8, NO_LIMIT).unwrap()), range(8, 10));
    assert!(
        log.entries(11, NO_LIMIT).unwrap().is_empty(),
        "nothing past the last index"
    );
}

#[test]
fn slice_after_a_truncation_reads_the_new_tail_not_the_stale_storage() {
    let mut log = new_log(0, 0, vec![ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)], &[]);
    log.append(&[ent(3, 2), ent(4, 2), ent(5, 2)]);
    let got = ids(&log.slice(1, 6, NO_LIMIT).unwrap());
    assert_eq!(got, vec![(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]);
}

#[test]
fn slice_outside_the_log_fails_with_compacted_or_unavailable() {
    let log = new_log(3, 1, vec![ent(4, 1), ent(5, 1)], &[ent(6, 1)]);
    let compacted = Err(Error::Store(StorageError::Compacted));
    let unavailable = Err(Error::Store(StorageError::Unavailable));
    assert_eq!(
        log.slice(3, 5, NO_LIMIT),
        compacted,
        "index 3 is covered by the snapshot"
    );
    assert_eq!(log.slice(1, 7, NO_LIMIT), compacted);
    assert_eq!(
        log.slice(4, 8, NO_LIMIT),
        unavailable,
        "index 7 does not exist"
    );
    assert_eq!(log.slice(7, 9, NO_LIMIT), unavailable);
    assert_eq!(log.entries(3, NO_LIMIT), compacted);
    assert_eq!(
        ids(&log.slice(4, 7, NO_LIMIT).unwrap()),
        vec![(4, 1), (5, 1), (6, 1)]
    );
}

#[test]
fn slice_propagates_storage_failures() {
    let mut log = new_log(0, 0, vec![ent(1, 1), ent(2, 1)], &[ent(3, 1)]);
    log.store.broken = true;
    let want = Err(Error::Store(StorageError::LogTemporarilyUnavailable));
    assert_eq!(log.slice(1, 4, NO_LIMIT), want);
    assert_eq!(
        ids(&log.slice(3, 4, NO_LIMIT).unwrap()),
        vec![(3, 1)],
        "the unstable tail needs no storage"
    );
    log.commit_to(2);
    assert_eq!(log.next_committed_entries(NO_LIMIT), want);
    assert_eq!(
        log.applying, 0,
        "a failed read must not mark entries as handed out"
    );
}

#[test]
fn a_pending_snapshot_sets_first_and_last_index() {
    let mut log = new_log(0, 0, vec![ent(1, 1)], &[ent(2, 1)]);
    log.unstable.restore(snap(20, 3));
    assert_eq!((log.first_index(), log.last_index()), (21, 20));
    assert_eq!(
        log.unstable_snapshot()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.index),
        Some(20)
    );
    assert!(
        log.unstable_entries().is_empty(),
        "the snapshot replaced the unstable entries"
    );
    assert_eq!(
        log.slice(2, 3, NO_LIMIT),
        Err(Error::Store(StorageError::Compacted))
    );
    log.stable_snapshot(20);
    assert!(log.unstable_snapshot().is_none());
}

#[test]
fn maybe_append_after_an_index_beyond_the_log_never_matches() {
    // term() reports 0 for an unknown index; an append claiming to follow such an index with
    // log_term 0 must be rejected, or it would leave a gap in the log.
    let mut log = log_123();
    let before = contents(&log);
    let got = log.maybe_append(100, 0, 0, &[ent(101, 1)]).unwrap();
    assert_eq!(got, None, "an append after an unknown index must not match");
    assert_eq!(contents(&log), before, "the log must be unchanged");
}

/// The (index, term) of the entries in the apply cache (none when it is not allocated).
fn cached(log: &RaftLog<TestStorage>) -> Vec<(u64, u64)> {
    log.apply_cache
        .as_ref()
        .map_or_else(Vec::new, |c| ids(&c.entries))
}

#[test]
fn durable_entries_are_handed_out_from_memory_without_reading_storage() {
    let mut log = new_log(0, 0, vec![], &[ent(1, 1), ent(2, 1), ent(3, 1)]);
    assert!(persist(&mut log, 3, 1));
    assert_eq!(cached(&log), vec![(1, 1), (2, 1), (3, 1)]);
    log.commit_to(2);
    // Storage would fail any read: the entries must come from memory.
    log.store.broken = true;
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1)]
    );
    assert_eq!(cached(&log), vec![(3, 1)], "3 is not committed yet");
    log.commit_to(3);
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(3, 1)]
    );
    assert!(log.apply_cache.is_none(), "an emptied cache is released");
}

#[test]
fn a_conflicting_append_replaces_cached_entries() {
    // 1..=4 of term 1 are durable and cached; only 1..=2 commit before a new leader replaces 3..=4.
    let mut log = new_log(0, 0, vec![], &[ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)]);
    assert!(persist(&mut log, 4, 1));
    log.commit_to(2);
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1)]
    );
    log.append(&[ent(3, 2), ent(4, 2)]);
    assert!(
        log.apply_cache.is_none(),
        "the replaced entries are forgotten"
    );
    log.commit_to(4);
    assert!(
        log.next_committed_entries(NO_LIMIT).unwrap().is_empty(),
        "the replacements are not durable yet"
    );
    assert!(persist(&mut log, 4, 2));
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(3, 2), (4, 2)],
        "the new leader's entries are applied, never the replaced ones"
    );

    // A conflict inside the cache keeps the prefix before it.
    let mut log = new_log(0, 0, vec![], &[ent(1, 1), ent(2, 1), ent(3, 1)]);
    assert!(persist(&mut log, 3, 1));
    log.append(&[ent(3, 2)]);
    assert_eq!(cached(&log), vec![(1, 1), (2, 1)]);
    assert!(persist(&mut log, 3, 2));
    assert_eq!(cached(&log), vec![(1, 1), (2, 1), (3, 2)]);
    log.commit_to(3);
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1), (3, 2)]
    );
}

#[test]
fn entries_past_the_cache_byte_limit_come_from_storage() {
    let mut huge = ent(2, 1);
    huge.data = Bytes::from(vec![1u8; DEFAULT_APPLY_CACHE_BYTES as usize + 1]);
    let mut log = new_log(0, 0, vec![], &[ent(1, 1)]);
    assert!(persist(&mut log, 1, 1));
    log.append(&[huge, ent(3, 1)]);
    assert!(persist(&mut log, 3, 1));
    assert_eq!(cached(&log), vec![(1, 1)], "2..=3 would pass the limit");
    log.commit_to(3);
    // Without a size limit the rest is read from storage in the same batch.
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1), (3, 1)]
    );
    // A failing storage read moves nothing: the cached entry is handed out on the retry.
    let mut log = new_log(0, 0, vec![], &[ent(1, 1)]);
    assert!(persist(&mut log, 1, 1));
    log.append(&[Entry {
        data: Bytes::from(vec![1u8; DEFAULT_APPLY_CACHE_BYTES as usize + 1]),
        ..ent(2, 1)
    }]);
    assert!(persist(&mut log, 2, 1));
    log.commit_to(2);
    log.store.broken = true;
    assert!(log.next_committed_entries(NO_LIMIT).is_err());
    assert_eq!((log.applying, cached(&log)), (0, vec![(1, 1)]));
    log.store.broken = false;
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1)]
    );
}

#[test]
fn restoring_a_snapshot_forgets_cached_entries() {
    let mut log = new_log(0, 0, vec![], &[ent(1, 1), ent(2, 1)]);
    assert!(persist(&mut log, 2, 1));
    log.restore(snap(5, 2));
    assert!(log.apply_cache.is_none());
}

#[test]
fn a_zero_cache_limit_keeps_nothing_and_reads_storage() {
    let mut log = new_log(0, 0, vec![], &[ent(1, 1), ent(2, 1)]);
    log.set_apply_cache_limit(0);
    assert!(persist(&mut log, 2, 1));
    assert!(
        log.apply_cache.is_none(),
        "empty entries are not kept either"
    );
    log.commit_to(2);
    log.store.broken = true;
    assert!(
        log.next_committed_entries(NO_LIMIT).is_err(),
        "the entries come from storage"
    );
    log.store.broken = false;
    assert_eq!(
        ids(&log.next_committed_entries(NO_LIMIT).unwrap()),
        vec![(1, 1), (2, 1)]
    );
}
