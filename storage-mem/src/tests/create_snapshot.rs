//! `MemStorageCore::create_snapshot`: the index, term, membership and data it records, the
//! indexes it refuses, and that it does not compact.

use super::*;

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
