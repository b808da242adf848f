//! The apply cache: durable entries kept in memory until they are handed out as committed. It
//! never hands out an entry that differs from the log's and storage's at that index (after a
//! conflicting append, after a snapshot restore), and every index goes out once, in order, also
//! when the cache fills mid-batch, when a page limit splits the batches, across restarts and
//! when a storage read behind it fails.

use std::sync::atomic::Ordering;

use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::{Config, RawNode, NO_LIMIT};

use crate::common::{entry_ids, logger};
use crate::fixtures::{
    append, assert_handed_out_once_from_storage, config, follower, hold_ready, run, settle,
    snapshot_msg, write_parts, write_ready, Handle, Hold, HOLDS,
};
use crate::probe::{probe_batch, probe_follower};

/// The cache sizes every apply-cache test runs with: off, too small for a batch, the default.
const CACHES: [u64; 3] = [0, 6, DEFAULT_APPLY_CACHE_BYTES];

/// Entries 2..=6 (term 2) are durable with only 2 committed (so 3..=6 wait in the cache); leader 3
/// of term 3 replaces 4.. and commits up to 5 before the replacement is durable. Only 3 may be
/// handed out then (the new entries are not durable); once they are, 4 and 5 are term 3's,
/// never the cached term-2 entries.
#[test]
fn a_conflict_inside_the_apply_cache_hands_out_the_new_leaders_entries() {
    for cache in CACHES {
        let (mut raw, storage) = follower(cache, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 6, 2), 2))
            .expect("append");
        let handed = settle(&mut raw, &storage);
        assert_eq!(entry_ids(&handed), vec![(2, 2)], "cache {cache}");
        assert_eq!(raw.raft.raft_log.persisted, 6);

        raw.step(append(3, 3, (3, 2), run(4, 5, 3), 5))
            .expect("conflict at 4");
        assert_eq!(
            raw.raft.raft_log.persisted, 3,
            "cache {cache}: durable entries being replaced no longer count as persisted"
        );
        let rd = raw.ready().expect("ready");
        assert_eq!(
            entry_ids(rd.committed_entries()),
            vec![(3, 2)],
            "cache {cache}: committed 5 but only 3 is durable: 4 and 5 must wait"
        );
        assert_handed_out_once_from_storage(rd.committed_entries(), 3, &storage, "before");
        assert_eq!(entry_ids(rd.entries()), vec![(4, 3), (5, 3)]);
        write_ready(&storage, &rd);
        let light = raw.advance(rd).expect("advance");
        assert_eq!(
            entry_ids(light.committed_entries()),
            vec![(4, 3), (5, 3)],
            "cache {cache}: the new leader's entries, not the cached ones"
        );
        assert_handed_out_once_from_storage(light.committed_entries(), 4, &storage, "after");
        raw.advance_apply();
        assert!(
            settle(&mut raw, &storage).is_empty(),
            "cache {cache}: nothing more"
        );
    }
}

/// Entries 2..=6 are durable, 2 handed out, 3..=6 cached; entries 7..=8 are lent and written but
/// not reported when a snapshot at (7, 3) from leader 3 replaces the log. The lent report marks
/// nothing, nothing at or below 7 is handed out after the snapshot, and 8 and 9 are term 3's.
#[test]
fn a_snapshot_restore_drops_cached_and_lent_entries() {
    for cache in CACHES {
        for hold in HOLDS {
            let what = format!("cache {cache}, {hold:?}");
            let (mut raw, storage) = follower(cache, NO_LIMIT);
            raw.step(append(1, 2, (1, 1), run(2, 6, 2), 2))
                .expect("append");
            assert_eq!(entry_ids(&settle(&mut raw, &storage)), vec![(2, 2)]);
            raw.step(append(1, 2, (6, 2), run(7, 8, 2), 2))
                .expect("append");
            let rd1 = raw.ready().expect("ready 1");
            let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
            let h1 = hold_ready(&mut raw, rd1, hold);
            write_parts(&storage, None, h1.entries(), hs1);

            raw.step(snapshot_msg(3, 3, 7, 3)).expect("snapshot");
            assert_eq!(raw.raft.raft_log.last_index(), 7, "{what}");
            assert_eq!(raw.raft.raft_log.term(7).ok(), Some(3), "{what}");
            let rd2 = raw.ready().expect("ready 2");
            assert_eq!(rd2.snapshot().metadata.as_ref().map(|m| m.index), Some(7));
            assert!(rd2.committed_entries().is_empty(), "{what}");
            write_ready(&storage, &rd2);
            match h1 {
                Handle::Whole(rd1) => {
                    let light = raw.advance_append(*rd1).expect("advance_append(ready 1)");
                    assert!(light.committed_entries().is_empty(), "{what}");
                }
                h1 => {
                    raw.on_persist_ready(n1);
                    if hold != Hold::SharedDroppedWhenWritten {
                        assert_eq!(h1.entries(), run(7, 8, 2).as_slice(), "{what}: handle");
                    }
                }
            }
            assert!(
                raw.raft.raft_log.persisted <= 7,
                "{what}: (8, 2) was replaced by the snapshot; persisted {}",
                raw.raft.raft_log.persisted
            );
            let light = raw.advance(rd2).expect("advance(ready 2)");
            assert!(light.committed_entries().is_empty(), "{what}");
            assert_eq!(raw.raft.raft_log.persisted, 7, "{what}");

            raw.step(append(3, 3, (7, 3), run(8, 9, 3), 9))
                .expect("append after");
            let handed = settle(&mut raw, &storage);
            assert_handed_out_once_from_storage(&handed, 8, &storage, &what);
            assert_eq!(entry_ids(&handed), vec![(8, 3), (9, 3)], "{what}");
        }
    }
}

/// A 10-byte cache takes the first durable batch (2..=3, 8 bytes) but not the second (4..=5) nor,
/// having a gap then, the third (6). Committing all of them hands out 2..=6 in one batch, 2..=3
/// from the cache (storage is read from 4 only) and the rest from storage.
#[test]
fn a_full_apply_cache_hands_out_the_rest_from_storage_in_the_same_batch() {
    let (mut raw, probe, storage) = probe_follower(10, NO_LIMIT);
    assert!(probe_batch(&mut raw, &storage, 2, 3, 1).is_empty());
    assert!(probe_batch(&mut raw, &storage, 4, 5, 1).is_empty());
    assert!(probe_batch(&mut raw, &storage, 6, 6, 1).is_empty());
    probe.take_reads();
    raw.step(append(1, 2, (6, 2), vec![], 6)).expect("commit");
    let rd = raw.ready().expect("ready");
    assert_handed_out_once_from_storage(rd.committed_entries(), 2, &storage, "mixed batch");
    assert_eq!(
        rd.committed_entries().len(),
        5,
        "2..=6 in one batch (no size limit)"
    );
    let reads = probe.take_reads();
    assert!(
        reads.iter().all(|&(lo, _)| lo >= 4),
        "2..=3 were cached: storage must be read only from 4, read {reads:?}"
    );
    assert!(
        reads.iter().any(|&(lo, hi)| lo == 4 && hi == 7),
        "4..=6 come from storage, read {reads:?}"
    );
}

/// Storage fails while a batch is put together partly from the cache and partly from storage:
/// first in `ready`, then in `advance_append`. Either way nothing moves: once storage recovers,
/// the same entries are handed out, each once.
#[test]
fn a_failing_storage_read_behind_the_apply_cache_moves_nothing() {
    // In `ready`: the cache holds 2..=3, storage must supply 4..=6.
    let (mut raw, probe, storage) = probe_follower(10, NO_LIMIT);
    probe_batch(&mut raw, &storage, 2, 3, 1);
    probe_batch(&mut raw, &storage, 4, 5, 1);
    probe_batch(&mut raw, &storage, 6, 6, 1);
    raw.step(append(1, 2, (6, 2), vec![], 6)).expect("commit");
    probe.fail_entries.store(true, Ordering::SeqCst);
    assert!(raw.ready().is_err(), "the storage read fails");
    assert_eq!(
        raw.raft.raft_log.applying, 1,
        "a failed read hands out nothing"
    );
    assert!(raw.has_ready());
    probe.fail_entries.store(false, Ordering::SeqCst);
    let rd = raw.ready().expect("ready after recovery");
    assert_handed_out_once_from_storage(rd.committed_entries(), 2, &storage, "in ready");
    assert_eq!(
        rd.committed_entries().len(),
        5,
        "the cached entries were not lost"
    );

    // In `advance_append`: a 6-byte cache holds 6 (4 bytes); 7 does not fit.
    let (mut raw, probe, storage) = probe_follower(6, NO_LIMIT);
    assert_eq!(
        entry_ids(&probe_batch(&mut raw, &storage, 2, 5, 5)).len(),
        4
    );
    raw.advance_apply();
    probe_batch(&mut raw, &storage, 6, 6, 5);
    raw.step(append(1, 2, (6, 2), run(7, 7, 2), 5))
        .expect("append 7");
    let rd = raw.ready().expect("ready");
    assert!(rd.committed_entries().is_empty());
    write_ready(&storage, &rd);
    raw.step(append(1, 2, (7, 2), vec![], 7)).expect("commit 7");
    probe.fail_entries.store(true, Ordering::SeqCst);
    assert!(
        raw.advance_append(rd).is_err(),
        "reading 7 from storage fails in advance_append"
    );
    assert_eq!(
        raw.raft.raft_log.persisted, 7,
        "the persistence itself is recorded"
    );
    assert_eq!(raw.raft.raft_log.applying, 5, "nothing was handed out");
    probe.fail_entries.store(false, Ordering::SeqCst);
    let rd = raw.ready().expect("ready after recovery");
    assert_handed_out_once_from_storage(rd.committed_entries(), 6, &storage, "in advance_append");
    assert_eq!(entry_ids(rd.committed_entries()), vec![(6, 2), (7, 2)]);
}

/// With `max_committed_size_per_ready` small, committed entries are paged out of the cache (and
/// out of storage past it): every index once, in order, equal to storage.
#[test]
fn paging_out_of_the_apply_cache_hands_every_index_once() {
    for cache in [0, 12, 40, DEFAULT_APPLY_CACHE_BYTES] {
        for page in [1, 40, NO_LIMIT] {
            let (mut raw, storage) = follower(cache, page);
            for lo in (2..=22).step_by(4) {
                raw.step(append(
                    1,
                    2,
                    (lo - 1, if lo == 2 { 1 } else { 2 }),
                    run(lo, lo + 3, 2),
                    1,
                ))
                .expect("append");
                assert!(settle(&mut raw, &storage).is_empty());
            }
            raw.step(append(1, 2, (25, 2), vec![], 25)).expect("commit");
            let (mut handed, mut batches) = (Vec::new(), Vec::new());
            for _ in 0..100 {
                if !raw.has_ready() {
                    break;
                }
                let rd = raw.ready().expect("ready");
                batches.push(rd.committed_entries().len());
                handed.extend_from_slice(rd.committed_entries());
                let light = raw.advance(rd).expect("advance");
                batches.push(light.committed_entries().len());
                handed.extend_from_slice(light.committed_entries());
                raw.advance_apply();
            }
            let what = format!("cache {cache}, page {page}");
            assert_handed_out_once_from_storage(&handed, 2, &storage, &what);
            assert_eq!(handed.len(), 24, "{what}: 2..=25");
            if page == 1 {
                assert!(
                    batches.iter().all(|&n| n <= 1),
                    "{what}: a 1-byte page hands out one entry per batch, got {batches:?}"
                );
            }
        }
    }
}

/// A restart loses the cache: entries durable and committed after the restart point come from
/// storage, each once; those applied before the restart never again.
#[test]
fn a_restart_hands_out_cached_entries_again_from_storage_once() {
    for cache in CACHES {
        let (mut raw, storage) = follower(cache, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 8, 2), 3))
            .expect("append");
        assert_eq!(entry_ids(&settle(&mut raw, &storage)), vec![(2, 2), (3, 2)]);
        // Entries 9..=10 are handed out but never written: lost in the crash.
        raw.step(append(1, 2, (8, 2), run(9, 10, 2), 3))
            .expect("append");
        let lost = raw.ready().expect("ready");
        assert_eq!(entry_ids(lost.entries()), vec![(9, 2), (10, 2)]);
        drop((raw, lost));

        let cfg = Config {
            applied: 3,
            ..config(2, cache, NO_LIMIT)
        };
        let mut raw = RawNode::new(&cfg, storage.clone(), &logger()).expect("restart");
        assert_eq!(
            raw.raft.raft_log.last_index(),
            8,
            "cache {cache}: 9..=10 were lost"
        );
        raw.step(append(1, 2, (8, 2), vec![], 8)).expect("commit");
        let handed = settle(&mut raw, &storage);
        assert_handed_out_once_from_storage(&handed, 4, &storage, &format!("cache {cache}"));
        assert_eq!(handed.len(), 5, "cache {cache}: 4..=8");
    }
}
