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

/// A storage whose snapshot point is (3, 2), followed by entries 4, 5, 6 of terms 3, 4, 5.
///
/// Compaction arrives with the snapshot issue; until then the test sets the snapshot point directly.
fn storage_after_snapshot() -> MemStorage {
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    {
        let mut core = s.wl();
        core.snapshot_index = 3;
        core.snapshot_term = 2;
        core.entries = vec![ent(4, 3), ent(5, 4), ent(6, 5)];
    }
    s
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
    let (ptr, cap) = (core.entries.as_ptr(), core.entries.capacity());
    core.append(&ents(5, 8, 2)).unwrap();
    assert_eq!(core.entries.as_ptr(), ptr);
    assert_eq!(core.entries.capacity(), cap);
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

// ---- snapshot ----

#[test]
fn snapshot_reports_the_snapshot_point_and_membership() {
    let s = storage_with(&ents(1, 3, 1));
    let snap = s.snapshot(0, 2).unwrap();
    assert!(snap.data.is_empty());
    let meta = snap.metadata.unwrap();
    assert_eq!((meta.index, meta.term), (0, 0));
    assert_eq!(meta.conf_state, Some(conf_state(vec![1, 2, 3], vec![])));

    let s = storage_after_snapshot();
    let meta = s.snapshot(0, 2).unwrap().metadata.unwrap();
    assert_eq!((meta.index, meta.term), (3, 2));
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
