//! `Storage::snapshot`: which snapshot the core is handed for a follower, when it is temporarily
//! unavailable, and the getters of the latest snapshot's metadata.

use super::*;

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
