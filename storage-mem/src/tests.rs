//! Unit tests of `MemStorage` and `MemStorageCore`.

use super::*;
use bytes::Bytes;

/// An entry at `index` with `term` and a small payload (so that entries have a non-trivial size).
fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(format!("data-{index}")),
        ..Default::default()
    }
}

/// Entries `[lo, hi]`, all with `term`.
fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term)).collect()
}

/// The total encoded size of `es`, as `entries` counts it.
fn size_of(es: &[Entry]) -> u64 {
    es.iter().map(|e| e.encoded_len() as u64).sum()
}

/// A storage holding the given entries (appended at index 1).
fn storage_with(es: &[Entry]) -> MemStorage {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    s.wl().append(es).unwrap();
    s
}

/// A snapshot at (`index`, `term`) with membership `voters` and data `data`.
fn snap(index: u64, term: u64, voters: &[u64], data: &'static str) -> Snapshot {
    Snapshot {
        data: Bytes::from_static(data.as_bytes()),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state(voters.to_vec(), vec![])),
            index,
            term,
        }),
    }
}

/// A storage that installed a snapshot at (3, 2), then got entries 4, 5, 6 of terms 3, 4, 5.
fn storage_after_snapshot() -> MemStorage {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    {
        let mut core = s.wl();
        core.apply_snapshot(snap(3, 2, &[1, 2, 3], "state at 3"))
            .unwrap();
        core.append(&[ent(4, 3), ent(5, 4), ent(6, 5)]).unwrap();
    }
    s
}

/// A storage for {1, 2, 3} holding entries 1..=10 (term 1 up to 5, term 2 after), all committed.
fn committed_storage() -> MemStorage {
    let mut es = ents(1, 5, 1);
    es.extend(ents(6, 10, 2));
    let s = storage_with(&es);
    s.wl().set_hardstate(HardState {
        term: 2,
        vote: 1,
        commit: 10,
    });
    s
}

/// Everything the storage holds, printed (`MemStorageCore` has no `PartialEq`); for "unchanged"
/// checks.
fn dump(s: &MemStorage) -> String {
    format!("{:?}", *s.rl())
}

fn snapshot_unavailable<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(
        r.unwrap_err(),
        Error::Store(StorageError::SnapshotTemporarilyUnavailable)
    );
}

fn out_of_date<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(
        r.unwrap_err(),
        Error::Store(StorageError::SnapshotOutOfDate)
    );
}

fn compacted<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(r.unwrap_err(), Error::Store(StorageError::Compacted));
}

fn unavailable<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(r.unwrap_err(), Error::Store(StorageError::Unavailable));
}

fn invariant<T: std::fmt::Debug>(r: Result<T>) {
    assert!(matches!(r.unwrap_err(), Error::Invariant(_)));
}

fn all_entries(s: &MemStorage) -> Vec<Entry> {
    s.entries(
        s.first_index().unwrap(),
        s.last_index().unwrap() + 1,
        NO_LIMIT,
    )
    .unwrap()
}

// ---- indexes and terms ----

#[test]
fn empty_storage_indexes_and_terms() {
    let s = MemStorage::new();
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 0);
    assert_eq!(s.term(0).unwrap(), 0);
    unavailable(s.term(1));
    unavailable(s.term(u64::MAX));
    assert_eq!(s.entries(1, 1, NO_LIMIT).unwrap(), vec![]);
    unavailable(s.entries(1, 2, NO_LIMIT));
    compacted(s.entries(0, 1, NO_LIMIT));
    let state = s.initial_state().unwrap();
    assert_eq!(state, RaftState::default());
    assert!(!state.initialized());
}

#[test]
fn non_empty_storage_indexes_and_terms() {
    let s = storage_with(&[ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 3), ent(5, 3)]);
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 5);
    let terms: Vec<u64> = (0..=5).map(|i| s.term(i).unwrap()).collect();
    assert_eq!(terms, vec![0, 1, 1, 2, 3, 3]);
    unavailable(s.term(6));
}

#[test]
fn indexes_and_terms_after_snapshot_point() {
    let s = storage_after_snapshot();
    assert_eq!(s.first_index().unwrap(), 4);
    assert_eq!(s.last_index().unwrap(), 6);
    compacted(s.term(0));
    compacted(s.term(2));
    assert_eq!(s.term(3).unwrap(), 2);
    assert_eq!(s.term(4).unwrap(), 3);
    assert_eq!(s.term(6).unwrap(), 5);
    unavailable(s.term(7));

    // With an empty log the last index is the snapshot's.
    s.wl().entries.clear();
    assert_eq!(s.first_index().unwrap(), 4);
    assert_eq!(s.last_index().unwrap(), 3);
    assert_eq!(s.term(3).unwrap(), 2);
    unavailable(s.term(4));
}

// ---- entries ----

#[test]
fn entries_ranges() {
    let all = ents(1, 5, 1);
    let s = storage_with(&all);
    assert_eq!(s.entries(1, 6, NO_LIMIT).unwrap(), all);
    assert_eq!(s.entries(2, 4, NO_LIMIT).unwrap(), all[1..3].to_vec());
    assert_eq!(s.entries(5, 6, NO_LIMIT).unwrap(), all[4..].to_vec());
    assert_eq!(s.entries(3, 3, NO_LIMIT).unwrap(), vec![]);
    assert_eq!(s.entries(6, 6, NO_LIMIT).unwrap(), vec![]);
}

#[test]
fn entries_compacted_and_unavailable() {
    let s = storage_after_snapshot();
    compacted(s.entries(3, 5, NO_LIMIT));
    compacted(s.entries(0, 0, NO_LIMIT));
    unavailable(s.entries(4, 8, NO_LIMIT));
    unavailable(s.entries(8, 8, NO_LIMIT));
    unavailable(s.entries(5, u64::MAX, NO_LIMIT));
    assert_eq!(s.entries(4, 7, NO_LIMIT).unwrap().len(), 3);
    assert_eq!(s.entries(7, 7, NO_LIMIT).unwrap(), vec![]);
}

#[test]
fn entries_low_above_high_is_an_error() {
    let s = storage_with(&ents(1, 5, 1));
    invariant(s.entries(4, 3, NO_LIMIT));
    invariant(s.entries(u64::MAX, 0, NO_LIMIT));
}

#[test]
fn entries_max_size_smaller_than_one_entry_returns_one() {
    let all = ents(1, 5, 1);
    let s = storage_with(&all);
    assert_eq!(s.entries(1, 6, 0).unwrap(), all[..1].to_vec());
    assert_eq!(s.entries(3, 6, 1).unwrap(), all[2..3].to_vec());
    let one = size_of(&all[..1]);
    assert_eq!(s.entries(1, 6, one - 1).unwrap(), all[..1].to_vec());
}

#[test]
fn entries_max_size_exact_fit_boundaries() {
    let all = ents(1, 5, 1);
    let s = storage_with(&all);
    for n in 1..=all.len() {
        let exact = size_of(&all[..n]);
        // Exactly the size of n entries: n entries.
        assert_eq!(
            s.entries(1, 6, exact).unwrap(),
            all[..n].to_vec(),
            "n = {n}"
        );
        // One byte short of n entries: n - 1 of them (but never fewer than one).
        let short = s.entries(1, 6, exact - 1).unwrap();
        assert_eq!(short, all[..(n - 1).max(1)].to_vec(), "n = {n}");
        // One byte more than n entries: still n (the next entry does not fit).
        if n < all.len() {
            assert_eq!(s.entries(1, 6, exact + 1).unwrap(), all[..n].to_vec());
        }
    }
    // The limit applies from `low`, not from the first index.
    let two_from_3 = size_of(&all[2..4]);
    assert_eq!(s.entries(3, 6, two_from_3).unwrap(), all[2..4].to_vec());
    // And `high` still bounds the result when the limit would allow more.
    assert_eq!(s.entries(2, 4, size_of(&all)).unwrap(), all[1..3].to_vec());
}

#[test]
fn entries_no_limit_returns_all() {
    let all = ents(1, 100, 7);
    let s = storage_with(&all);
    assert_eq!(s.entries(1, 101, NO_LIMIT).unwrap(), all);
    assert_eq!(s.entries(1, 101, NO_LIMIT - 1).unwrap(), all);
    assert_eq!(s.entries(1, 101, size_of(&all)).unwrap(), all);
}

#[test]
fn entries_share_payloads_with_the_storage() {
    let s = storage_with(&ents(1, 3, 1));
    let a = s.entries(2, 3, NO_LIMIT).unwrap();
    let b = s.entries(2, 3, NO_LIMIT).unwrap();
    assert_eq!(a[0].data.as_ptr(), b[0].data.as_ptr());
}

// ---- append ----

#[test]
fn append_extends_the_log() {
    let s = storage_with(&ents(1, 3, 1));
    s.wl().append(&ents(4, 6, 2)).unwrap();
    assert_eq!(s.last_index().unwrap(), 6);
    let mut want = ents(1, 3, 1);
    want.extend(ents(4, 6, 2));
    assert_eq!(all_entries(&s), want);
}

#[test]
fn append_at_last_plus_one() {
    let s = MemStorage::new();
    s.wl().append(&[ent(1, 1)]).unwrap();
    s.wl().append(&[ent(2, 1)]).unwrap();
    s.wl().append(&[ent(3, 2), ent(4, 2)]).unwrap();
    assert_eq!(
        all_entries(&s),
        vec![ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]
    );

    let s = storage_after_snapshot();
    s.wl().append(&[ent(7, 5)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 7);
    assert_eq!(s.term(7).unwrap(), 5);
}

#[test]
fn append_overwrites_a_conflicting_suffix_in_the_middle() {
    let s = storage_with(&ents(1, 5, 1));
    s.wl().append(&[ent(3, 2), ent(4, 2)]).unwrap();
    // Entry 5 (term 1) is gone, replaced by nothing: the log ends at the last new entry.
    assert_eq!(s.last_index().unwrap(), 4);
    assert_eq!(
        all_entries(&s),
        vec![ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]
    );
    unavailable(s.term(5));
}

#[test]
fn append_can_replace_the_whole_log() {
    let s = storage_with(&ents(1, 3, 1));
    s.wl().append(&ents(1, 2, 2)).unwrap();
    assert_eq!(all_entries(&s), ents(1, 2, 2));

    let s = storage_after_snapshot();
    s.wl().append(&[ent(4, 9)]).unwrap();
    assert_eq!(all_entries(&s), vec![ent(4, 9)]);
}

#[test]
fn append_truncates_in_place() {
    let s = storage_with(&ents(1, 10, 1));
    let mut core = s.wl();
    let chunks = core.entries.chunk_buffers();
    core.append(&ents(5, 8, 2)).unwrap();
    assert_eq!(
        core.entries.chunk_buffers(),
        chunks,
        "no chunk was reallocated"
    );
    assert_eq!(core.last_index(), 8);
}

#[test]
fn append_with_a_gap_is_unavailable() {
    let s = storage_with(&ents(1, 3, 1));
    unavailable(s.wl().append(&[ent(5, 1)]));
    assert_eq!(all_entries(&s), ents(1, 3, 1));

    let s = MemStorage::new();
    unavailable(s.wl().append(&[ent(2, 1)]));
    assert_eq!(s.last_index().unwrap(), 0);
}

#[test]
fn append_below_the_first_index_is_compacted() {
    let s = MemStorage::new();
    compacted(s.wl().append(&[ent(0, 0), ent(1, 1)]));
    assert_eq!(s.last_index().unwrap(), 0);

    let s = storage_after_snapshot();
    compacted(s.wl().append(&[ent(3, 2), ent(4, 3)]));
    compacted(s.wl().append(&[ent(1, 1)]));
    assert_eq!(all_entries(&s), vec![ent(4, 3), ent(5, 4), ent(6, 5)]);
}

#[test]
fn append_of_non_consecutive_entries_is_an_error() {
    let s = storage_with(&ents(1, 3, 1));
    invariant(s.wl().append(&[ent(2, 2), ent(4, 2)]));
    invariant(s.wl().append(&[ent(2, 2), ent(2, 2)]));
    invariant(s.wl().append(&[ent(3, 2), ent(2, 2)]));
    invariant(s.wl().append(&[ent(3, 2), ent(u64::MAX, 2)]));
    // Nothing was truncated.
    assert_eq!(all_entries(&s), ents(1, 3, 1));
}

#[test]
fn append_of_an_empty_slice_is_a_noop() {
    let s = storage_with(&ents(1, 3, 1));
    s.wl().append(&[]).unwrap();
    assert_eq!(all_entries(&s), ents(1, 3, 1));

    let s = MemStorage::new();
    s.wl().append(&[]).unwrap();
    assert_eq!(s.last_index().unwrap(), 0);
}

// ---- hard state, conf state, commit ----

#[test]
fn set_hardstate_is_reflected_in_initial_state() {
    let s = MemStorage::new();
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 0,
    };
    s.wl().set_hardstate(hs);
    assert_eq!(*s.rl().hard_state(), hs);
    assert_eq!(s.initial_state().unwrap().hard_state, hs);

    s.wl().mut_hard_state().vote = 1;
    assert_eq!(s.initial_state().unwrap().hard_state.vote, 1);
    assert_eq!(s.initial_state().unwrap().hard_state.term, 3);
}

#[test]
fn set_conf_state_is_reflected_in_initial_state() {
    let s = MemStorage::new();
    let cs = ConfState {
        voters: vec![1, 2],
        learners: vec![3],
        voters_outgoing: vec![1, 2, 4],
        learners_next: vec![4],
        auto_leave: true,
    };
    s.wl().set_conf_state(cs.clone());
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state, cs);
    assert!(state.initialized());
}

#[test]
fn commit_to_sets_the_commit_index_only() {
    let s = storage_with(&ents(1, 5, 1));
    s.wl().set_hardstate(HardState {
        term: 4,
        vote: 2,
        commit: 1,
    });
    s.wl().commit_to(5).unwrap();
    let hs = s.initial_state().unwrap().hard_state;
    assert_eq!((hs.term, hs.vote, hs.commit), (4, 2, 5));
    s.wl().commit_to(0).unwrap();
    assert_eq!(s.rl().hard_state().commit, 0);

    unavailable(s.wl().commit_to(6));
    assert_eq!(s.rl().hard_state().commit, 0);
}

#[test]
fn commit_to_below_the_snapshot_is_compacted() {
    let s = storage_after_snapshot();
    compacted(s.wl().commit_to(2));
    s.wl().commit_to(3).unwrap();
    s.wl().commit_to(6).unwrap();
    unavailable(s.wl().commit_to(7));
    assert_eq!(s.rl().hard_state().commit, 6);
}

#[test]
fn new_with_conf_state_and_the_conf_state_helper() {
    assert_eq!(
        conf_state(vec![1, 2, 3], vec![4]),
        ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        }
    );
    assert_eq!(conf_state(1..=3, []), conf_state(vec![1, 2, 3], vec![]));

    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let state = s.initial_state().unwrap();
    assert!(state.initialized());
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
}

#[test]
fn initialize_with_conf_state_only_once() {
    let s = MemStorage::new();
    s.initialize_with_conf_state(conf_state(vec![1], vec![2]))
        .unwrap();
    assert_eq!(
        s.initial_state().unwrap().conf_state,
        conf_state(vec![1], vec![2])
    );
    invariant(s.initialize_with_conf_state(conf_state(vec![7], vec![])));
    assert_eq!(
        s.initial_state().unwrap().conf_state,
        conf_state(vec![1], vec![2])
    );
}

// ---- compaction ----

#[test]
fn compact_makes_compact_index_the_first_index() {
    let s = committed_storage();
    let full = all_entries(&s);
    s.wl().create_snapshot(7, None, Bytes::new()).unwrap();
    s.wl().compact(4).unwrap();
    // raft-rs semantics: compact(i) keeps entry i as the first readable entry.
    assert_eq!(s.first_index().unwrap(), 4, "first index after compact(4)");
    assert_eq!(
        s.last_index().unwrap(),
        10,
        "compaction moved the last index"
    );
    assert_eq!(all_entries(&s), full[3..].to_vec());
    // The snapshot point (3) still answers its term; below it everything is compacted.
    assert_eq!(s.term(3).unwrap(), 1, "term of the snapshot point");
    compacted(s.term(2));
    compacted(s.entries(3, 5, NO_LIMIT));
    assert_eq!(s.entries(4, 5, NO_LIMIT).unwrap(), vec![ent(4, 1)]);

    // Compacting further takes the new point's term from the log (entry 6 has term 2).
    s.wl().compact(7).unwrap();
    assert_eq!(s.first_index().unwrap(), 7);
    assert_eq!(s.term(6).unwrap(), 2, "term of the new snapshot point");
    compacted(s.term(5));
    assert_eq!(all_entries(&s), full[6..].to_vec());
}

#[test]
fn compact_at_or_below_the_first_index_is_a_noop() {
    let s = committed_storage();
    let before = dump(&s);
    s.wl().compact(0).unwrap();
    s.wl().compact(1).unwrap();
    assert_eq!(
        dump(&s),
        before,
        "compact(0) / compact(1) changed a fresh log"
    );

    s.wl().create_snapshot(8, None, Bytes::new()).unwrap();
    s.wl().compact(5).unwrap();
    let before = dump(&s);
    for i in [5, 4, 1, 0] {
        s.wl().compact(i).unwrap();
        assert_eq!(
            dump(&s),
            before,
            "compact({i}) at or below first index 5 changed the storage"
        );
    }
}

#[test]
fn compact_to_last_plus_one_empties_the_log() {
    let s = committed_storage();
    s.wl().create_snapshot(10, None, Bytes::new()).unwrap();
    s.wl().compact(11).unwrap();
    assert_eq!(s.first_index().unwrap(), 11);
    assert_eq!(
        s.last_index().unwrap(),
        10,
        "an empty log ends at the snapshot point"
    );
    assert_eq!(s.term(10).unwrap(), 2, "term of the snapshot point");
    assert_eq!(s.entries(11, 11, NO_LIMIT).unwrap(), vec![]);
    unavailable(s.entries(11, 12, NO_LIMIT));
    compacted(s.entries(10, 11, NO_LIMIT));

    // The log continues right after the snapshot point.
    s.wl().append(&[ent(11, 3)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 11);
    assert_eq!(s.term(11).unwrap(), 3);
}

#[test]
fn compact_beyond_last_plus_one_is_unavailable_and_changes_nothing() {
    let s = committed_storage();
    s.wl().create_snapshot(10, None, Bytes::new()).unwrap();
    let before = dump(&s);
    unavailable(s.wl().compact(12));
    unavailable(s.wl().compact(u64::MAX));
    assert_eq!(dump(&s), before, "a refused compact changed the storage");
}

#[test]
fn compact_past_the_commit_index_is_refused() {
    let s = committed_storage();
    s.wl().create_snapshot(10, None, Bytes::new()).unwrap();
    s.wl().commit_to(5).unwrap();
    let before = dump(&s);
    // compact(7) would discard entry 6, which (as far as the storage knows) is not committed.
    invariant(s.wl().compact(7));
    assert_eq!(dump(&s), before, "a refused compact changed the storage");
    // Discarding up to the commit index itself is fine.
    s.wl().compact(6).unwrap();
    assert_eq!(s.first_index().unwrap(), 6);
}

#[test]
fn compact_past_the_latest_snapshot_is_refused() {
    let s = committed_storage();
    let before = dump(&s);
    // No snapshot yet: no entry may be discarded, else a lagging follower could never catch up.
    invariant(s.wl().compact(2));
    assert_eq!(dump(&s), before, "a refused compact changed the storage");

    s.wl().create_snapshot(4, None, Bytes::new()).unwrap();
    // compact(6) would discard entry 5, which snapshot 4 does not cover.
    invariant(s.wl().compact(6));
    assert_eq!(s.first_index().unwrap(), 1);
    s.wl().compact(5).unwrap();
    assert_eq!(s.first_index().unwrap(), 5);
}

#[test]
fn entries_max_size_at_the_compaction_boundary() {
    let s = committed_storage();
    s.wl().create_snapshot(5, None, Bytes::new()).unwrap();
    s.wl().compact(6).unwrap();
    let all = all_entries(&s);
    assert_eq!(all.first().map(|e| e.index), Some(6));
    // Reading from the first index with a limit too small for one entry still returns one.
    assert_eq!(s.entries(6, 11, 0).unwrap(), all[..1].to_vec());
    assert_eq!(
        s.entries(6, 11, size_of(&all[..2])).unwrap(),
        all[..2].to_vec()
    );
    // One below the first index is compacted whatever the limit.
    compacted(s.entries(5, 11, 0));
    compacted(s.entries(5, 11, NO_LIMIT));
}

// ---- create_snapshot ----

#[test]
fn create_snapshot_records_index_term_membership_and_data() {
    let s = committed_storage();
    let given = ConfState {
        voters: vec![1, 2],
        learners: vec![3],
        ..Default::default()
    };
    let snap = s
        .wl()
        .create_snapshot(7, Some(given.clone()), Bytes::from_static(b"state at 7"))
        .unwrap();
    assert_eq!(snap.data, Bytes::from_static(b"state at 7"));
    let meta = snap.metadata.clone().unwrap();
    assert_eq!((meta.index, meta.term), (7, 2), "index and term of entry 7");
    assert_eq!(meta.conf_state, Some(given), "the given membership");
    assert_eq!(*s.rl().snapshot_metadata(), meta);
    // The stored current membership is not replaced by the snapshot's.
    assert_eq!(*s.rl().conf_state(), conf_state(vec![1, 2, 3], vec![]));
    assert_eq!(s.snapshot(0, 2).unwrap(), snap);
}

#[test]
fn create_snapshot_defaults_to_the_stored_membership() {
    let s = committed_storage();
    let meta = s
        .wl()
        .create_snapshot(5, None, Bytes::new())
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!((meta.index, meta.term), (5, 1));
    assert_eq!(meta.conf_state, Some(conf_state(vec![1, 2, 3], vec![])));
}

#[test]
fn create_snapshot_does_not_compact() {
    let s = committed_storage();
    let full = all_entries(&s);
    s.wl().create_snapshot(7, None, Bytes::new()).unwrap();
    assert_eq!(
        s.first_index().unwrap(),
        1,
        "create_snapshot compacted the log"
    );
    assert_eq!(all_entries(&s), full);
}

#[test]
fn create_snapshot_index_checks() {
    let s = committed_storage();
    s.wl().commit_to(8).unwrap();
    let before = dump(&s);
    invariant(s.wl().create_snapshot(0, None, Bytes::new()));
    unavailable(s.wl().create_snapshot(11, None, Bytes::new()));
    // 9 exists but is not committed: a snapshot holds committed state only.
    invariant(s.wl().create_snapshot(9, None, Bytes::new()));
    assert_eq!(
        dump(&s),
        before,
        "a refused create_snapshot changed the storage"
    );

    s.wl()
        .create_snapshot(6, None, Bytes::from_static(b"old"))
        .unwrap();
    let before = dump(&s);
    out_of_date(s.wl().create_snapshot(5, None, Bytes::new()));
    assert_eq!(
        dump(&s),
        before,
        "a refused create_snapshot changed the storage"
    );

    // The same index again replaces the snapshot (e.g. with fresher data or membership).
    let again = s
        .wl()
        .create_snapshot(6, None, Bytes::from_static(b"new"))
        .unwrap();
    assert_eq!(again.data, Bytes::from_static(b"new"));
    assert_eq!(s.snapshot(0, 2).unwrap(), again);
    // Up to the commit index is fine.
    s.wl().create_snapshot(8, None, Bytes::new()).unwrap();
    assert_eq!(s.rl().snapshot_metadata().index, 8);
}

#[test]
fn create_snapshot_at_the_snapshot_point_takes_its_term() {
    let s = committed_storage();
    s.wl().create_snapshot(7, None, Bytes::new()).unwrap();
    s.wl().compact(8).unwrap();
    // Entry 7 is gone from the log, but the snapshot point remembers its term.
    let meta = s
        .wl()
        .create_snapshot(7, None, Bytes::from_static(b"again"))
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!((meta.index, meta.term), (7, 2));
}

// ---- apply_snapshot ----

#[test]
fn apply_snapshot_replaces_the_log_membership_and_commit() {
    let s = committed_storage();
    let incoming = snap(15, 3, &[1, 2, 3, 4], "state at 15");
    s.wl().apply_snapshot(incoming.clone()).unwrap();
    assert_eq!(s.first_index().unwrap(), 16);
    assert_eq!(s.last_index().unwrap(), 15);
    assert_eq!(s.term(15).unwrap(), 3, "term of the snapshot point");
    compacted(s.term(10));
    compacted(s.entries(10, 11, NO_LIMIT));
    assert_eq!(s.entries(16, 16, NO_LIMIT).unwrap(), vec![]);

    let state = s.initial_state().unwrap();
    assert_eq!(
        state.hard_state.commit, 15,
        "commit moves up to the snapshot"
    );
    assert_eq!(state.hard_state.term, 3, "term moves up to the snapshot's");
    assert_eq!(
        state.hard_state.vote, 0,
        "a vote of an older term is cleared"
    );
    assert_eq!(state.conf_state, conf_state(vec![1, 2, 3, 4], vec![]));
    assert_eq!(
        *s.rl().snapshot_metadata(),
        incoming.metadata.clone().unwrap()
    );
    assert_eq!(s.snapshot(0, 1).unwrap(), incoming);
}

#[test]
fn apply_snapshot_discards_entries_after_its_index() {
    let s = committed_storage();
    s.wl().commit_to(5).unwrap();
    // Entry 7 has term 2, so the snapshot matches the log, yet the entries after it go too
    // (raft-rs does the same; the leader sends them again).
    s.wl()
        .apply_snapshot(snap(7, 2, &[1, 2, 3], "state at 7"))
        .unwrap();
    assert_eq!(s.last_index().unwrap(), 7);
    unavailable(s.term(8));
    assert_eq!(s.rl().hard_state().commit, 7);
}

#[test]
fn apply_snapshot_keeps_a_higher_term_and_its_vote() {
    let s = committed_storage();
    s.wl().set_hardstate(HardState {
        term: 5,
        vote: 3,
        commit: 10,
    });
    s.wl()
        .apply_snapshot(snap(12, 3, &[1, 2, 3], "state at 12"))
        .unwrap();
    let hs = *s.rl().hard_state();
    assert_eq!((hs.term, hs.vote, hs.commit), (5, 3, 12));
}

#[test]
fn apply_snapshot_not_newer_than_the_latest_is_out_of_date_and_changes_nothing() {
    let s = storage_after_snapshot();
    let before = dump(&s);
    out_of_date(s.wl().apply_snapshot(snap(2, 2, &[1, 2, 3], "older")));
    // Same index: nothing new to install (etcd refuses it too).
    out_of_date(s.wl().apply_snapshot(snap(3, 2, &[1, 2, 3], "same")));
    assert_eq!(
        dump(&s),
        before,
        "a refused apply_snapshot changed the storage"
    );

    let s = MemStorage::new();
    out_of_date(s.wl().apply_snapshot(snap(0, 0, &[1], "")));
}

#[test]
fn apply_snapshot_behind_the_commit_index_is_out_of_date() {
    let s = committed_storage();
    s.wl().create_snapshot(2, None, Bytes::new()).unwrap();
    let before = dump(&s);
    // Newer than the latest snapshot (2) but below commit (10): installing it would discard
    // committed entries.
    out_of_date(s.wl().apply_snapshot(snap(9, 2, &[1, 2, 3], "behind")));
    assert_eq!(
        dump(&s),
        before,
        "a refused apply_snapshot changed the storage"
    );
    // At the commit index it is accepted.
    s.wl()
        .apply_snapshot(snap(10, 2, &[1, 2, 3], "at commit"))
        .unwrap();
    assert_eq!(s.first_index().unwrap(), 11);
}

#[test]
fn apply_snapshot_with_malformed_metadata_is_refused() {
    let s = storage_after_snapshot();
    let before = dump(&s);
    invariant(s.wl().apply_snapshot(Snapshot {
        data: Bytes::from_static(b"x"),
        metadata: None,
    }));
    let mut no_members = snap(10, 3, &[1], "x");
    no_members.metadata.as_mut().unwrap().conf_state = None;
    invariant(s.wl().apply_snapshot(no_members));
    invariant(s.wl().apply_snapshot(snap(10, 0, &[1], "term 0")));
    invariant(s.wl().apply_snapshot(snap(u64::MAX, 9, &[1], "max index")));
    assert_eq!(
        dump(&s),
        before,
        "a refused apply_snapshot changed the storage"
    );
}

#[test]
fn apply_snapshot_initialises_an_empty_storage() {
    let s = MemStorage::new();
    assert!(!s.initial_state().unwrap().initialized());
    s.wl()
        .apply_snapshot(snap(20, 4, &[1, 2, 3], "state at 20"))
        .unwrap();
    let state = s.initial_state().unwrap();
    assert!(
        state.initialized(),
        "the snapshot's membership was not stored"
    );
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (21, 20)
    );
}

#[test]
fn append_after_apply_snapshot_continues_at_index_plus_one() {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    s.wl()
        .apply_snapshot(snap(20, 4, &[1, 2, 3], "state at 20"))
        .unwrap();
    unavailable(s.wl().append(&[ent(22, 4)]));
    compacted(s.wl().append(&[ent(20, 4), ent(21, 4)]));
    assert_eq!(
        s.last_index().unwrap(),
        20,
        "a refused append changed the log"
    );

    s.wl().append(&[ent(21, 5), ent(22, 5)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 22);
    assert_eq!(s.term(21).unwrap(), 5);
    assert_eq!(
        s.entries(21, 23, NO_LIMIT).unwrap(),
        vec![ent(21, 5), ent(22, 5)]
    );
}

// ---- Storage::snapshot ----

#[test]
fn snapshot_before_any_snapshot_is_temporarily_unavailable() {
    let s = storage_with(&ents(1, 3, 1));
    snapshot_unavailable(s.snapshot(0, 2));
    // Committed entries are not enough: the storage never builds a snapshot by itself (it does not
    // hold the state machine's data).
    s.wl().commit_to(3).unwrap();
    snapshot_unavailable(s.snapshot(0, 2));
    snapshot_unavailable(s.snapshot(3, 2));
    assert_eq!(*s.rl().snapshot_metadata(), SnapshotMetadata::default());
}

#[test]
fn snapshot_covering_the_request_index_is_returned() {
    let s = committed_storage();
    let made = s
        .wl()
        .create_snapshot(7, None, Bytes::from_static(b"state at 7"))
        .unwrap();
    for request_index in [0, 1, 6, 7] {
        assert_eq!(
            s.snapshot(request_index, 2).unwrap(),
            made,
            "request index {request_index}"
        );
    }
    // The data is shared with the storage, not copied.
    assert_eq!(s.snapshot(0, 2).unwrap().data.as_ptr(), made.data.as_ptr());
}

#[test]
fn snapshot_older_than_the_request_index_is_temporarily_unavailable() {
    let s = committed_storage();
    s.wl().create_snapshot(7, None, Bytes::new()).unwrap();
    snapshot_unavailable(s.snapshot(8, 2));
    snapshot_unavailable(s.snapshot(u64::MAX, 2));
    // Once the application makes a newer snapshot, the same request succeeds.
    s.wl().create_snapshot(9, None, Bytes::new()).unwrap();
    let meta = s.snapshot(8, 2).unwrap().metadata.unwrap();
    assert_eq!(meta.index, 9);
}

#[test]
fn trigger_snap_unavailable_fails_the_next_call_only() {
    let s = committed_storage();
    s.wl().create_snapshot(7, None, Bytes::new()).unwrap();
    s.wl().trigger_snap_unavailable();
    snapshot_unavailable(s.snapshot(0, 2));
    assert_eq!(s.snapshot(0, 2).unwrap().metadata.unwrap().index, 7);

    // Triggering twice before a call still fails one call only.
    s.wl().trigger_snap_unavailable();
    s.wl().trigger_snap_unavailable();
    snapshot_unavailable(s.snapshot(0, 2));
    assert_eq!(s.snapshot(0, 2).unwrap().metadata.unwrap().index, 7);
}

#[test]
fn snapshot_after_apply_snapshot_serves_the_received_one() {
    let s = storage_after_snapshot();
    assert_eq!(
        s.snapshot(3, 1).unwrap(),
        snap(3, 2, &[1, 2, 3], "state at 3")
    );
    snapshot_unavailable(s.snapshot(4, 1));
}

#[test]
fn conf_state_and_snapshot_metadata_getters() {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2], vec![3]));
    assert_eq!(*s.rl().conf_state(), conf_state(vec![1, 2], vec![3]));
    assert_eq!(*s.rl().snapshot_metadata(), SnapshotMetadata::default());
    s.wl().set_conf_state(conf_state(vec![1], vec![]));
    assert_eq!(*s.rl().conf_state(), conf_state(vec![1], vec![]));

    let s = storage_after_snapshot();
    let meta = s.rl().snapshot_metadata().clone();
    assert_eq!((meta.index, meta.term), (3, 2));
    assert_eq!(meta.conf_state, Some(conf_state(vec![1, 2, 3], vec![])));
}

// ---- sharing and threads ----

#[test]
fn clones_share_state() {
    let a = MemStorage::new();
    let b = a.clone();
    b.wl().append(&ents(1, 2, 1)).unwrap();
    a.wl().set_hardstate(HardState {
        term: 1,
        vote: 1,
        commit: 2,
    });
    assert_eq!(a.last_index().unwrap(), 2);
    assert_eq!(b.initial_state().unwrap().hard_state.commit, 2);
    assert_eq!(all_entries(&a), all_entries(&b));
}

#[test]
fn memstorage_is_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<MemStorage>();
}

#[test]
fn usage_from_two_threads() {
    const N: u64 = 500;
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let writer = s.clone();
    let reader = s.clone();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for i in 1..=N {
                let mut core = writer.wl();
                core.append(&[ent(i, 1 + i / 100)]).unwrap();
                core.commit_to(i).unwrap();
            }
        });
        scope.spawn(move || {
            let mut seen = 0;
            while seen < N {
                // Each call takes the lock once, so `last` may move between calls, but what one
                // call returns is always consistent.
                let last = reader.last_index().unwrap();
                assert!(last >= seen);
                seen = last;
                let es = reader.entries(1, last + 1, NO_LIMIT).unwrap();
                assert_eq!(es.len() as u64, last);
                assert!(es.iter().zip(1..).all(|(e, i)| e.index == i));
                assert!(reader.initial_state().unwrap().hard_state.commit >= last);
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(s.last_index().unwrap(), N);
    assert_eq!(s.term(N).unwrap(), 1 + N / 100);
    assert_eq!(s.rl().hard_state().commit, N);
}

#[test]
fn a_poisoned_lock_is_recovered() {
    let s = storage_with(&ents(1, 3, 1));
    let t = s.clone();
    let joined = std::thread::spawn(move || {
        let _guard = t.wl();
        panic!("panic while holding the write lock (expected by this test)");
    })
    .join();
    assert!(joined.is_err());
    assert!(s.core.is_poisoned());
    assert_eq!(all_entries(&s), ents(1, 3, 1));
    s.wl().append(&[ent(4, 1)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 4);
}

#[test]
fn bootstrap_stores_a_checked_membership() {
    let s = MemStorage::bootstrap([2, 1, 3], [4]).unwrap();
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state, conf_state(vec![1, 2, 3], vec![4]));
    assert!(MemStorage::bootstrap([], [1]).is_err());
    assert!(MemStorage::bootstrap([1], [1]).is_err());
}
