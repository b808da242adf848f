//! `MemStorageCore::append`: extending the log, overwriting a conflicting suffix in place, and
//! refusing a gap, entries below the first index or non-consecutive entries.

use super::*;

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
