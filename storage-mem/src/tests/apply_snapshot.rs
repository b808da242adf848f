//! `MemStorageCore::apply_snapshot`: a received snapshot replaces the log, the membership and the
//! commit index; one not newer than the latest or behind the commit index is out of date, and
//! malformed metadata is refused, each leaving the storage unchanged.

use super::*;

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

/// raft-rs parity (issue 18): the parts of one Ready (a snapshot at 15, entries 16 and 17 after
/// it, a hard state committing 17) may be stored in any order that writes the entries after the
/// snapshot they continue; every such order leaves the same storage.
#[test]
fn a_readys_hard_state_may_be_stored_before_or_after_its_snapshot() {
    let incoming = snap(15, 3, &[1, 2, 3], "state at 15");
    let hard_state = HardState {
        term: 3,
        vote: 2,
        commit: 17,
    };
    let tail = [ent(16, 3), ent(17, 3)];
    let write = |order: &str| {
        let s = committed_storage();
        for part in order.split(',') {
            let mut core = s.wl();
            match part {
                "hs" => core.set_hardstate(hard_state),
                "snap" => core.apply_snapshot(incoming.clone()).unwrap(),
                "ents" => core.append(&tail).unwrap(),
                _ => unreachable!(),
            }
        }
        s
    };
    let expected = dump(&write("snap,ents,hs"));
    for order in ["hs,snap,ents", "snap,hs,ents"] {
        let s = write(order);
        assert_eq!(dump(&s), expected, "order {order}");
        assert_eq!(*s.rl().hard_state(), hard_state, "order {order}");
        assert_eq!(
            (s.first_index().unwrap(), s.last_index().unwrap()),
            (16, 17)
        );
    }
}

/// A hard state stored first whose commit passes the snapshot is no reason to refuse it when the
/// log's entry at the snapshot's index is of another term: those entries are not the committed
/// ones (they are replaced).
#[test]
fn apply_snapshot_over_a_conflicting_tail_keeps_a_commit_stored_first() {
    let s = committed_storage();
    s.wl().commit_to(5).unwrap();
    s.wl().set_hardstate(HardState {
        term: 4,
        vote: 0,
        commit: 9,
    });
    // Entry 8 is of term 2; the snapshot's is of term 4.
    s.wl()
        .apply_snapshot(snap(8, 4, &[1, 2, 3], "state at 8"))
        .unwrap();
    assert_eq!(s.last_index().unwrap(), 8);
    assert_eq!(
        s.rl().hard_state().commit,
        9,
        "the commit stored first is kept"
    );
}
