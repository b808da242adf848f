//! `MemStorageCore::compact`: the compact index becomes the first index; compaction never passes
//! the commit index or the latest snapshot, and a refused one changes nothing.

use super::*;

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
