//! Reading through the `Storage` trait: first and last index and terms (before and after the
//! snapshot point), and `entries` ranges: compacted or unavailable bounds, the size limit at its
//! boundaries, and payloads shared with the storage rather than copied.

use super::*;

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
