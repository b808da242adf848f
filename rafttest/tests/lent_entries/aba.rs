//! The ABA case of asynchronous writes (§5.3): a newer leader replaces lent entries before their
//! write is reported. The application's handles never change under it, and a report counts only
//! the entries the log still holds, never a replaced one, inside one lent chunk or across chunks.

use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::NO_LIMIT;

use crate::common::entry_ids;
use crate::fixtures::{
    append, assert_handed_out_once_from_storage, follower, hold_ready, log_view, run, settle,
    stored, write_parts, write_ready, Handle, Hold, HOLDS,
};

/// Node 2 receives entries 2..=5 of term 2 and hands them out in Ready 1, which the application
/// writes; before it reports the write, leader 3 of term 3 overwrites 4..: the application's handle
/// is untouched, Ready 1's report marks nothing durable (§5.3 with async writes: the ABA case),
/// Ready 2's report does, and the committed entries are the log's, once each.
#[test]
fn a_report_for_entries_replaced_inside_a_lent_chunk_marks_nothing_durable() {
    for hold in HOLDS {
        let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 5, 2), 1))
            .expect("append");
        let rd1 = raw.ready().expect("ready 1");
        let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
        let mut h1 = hold_ready(&mut raw, rd1, hold);
        write_parts(&storage, None, h1.entries(), hs1);
        if hold == Hold::SharedDroppedWhenWritten {
            h1 = Handle::Shared(None);
        }

        raw.step(append(3, 3, (3, 2), run(4, 6, 3), 1))
            .expect("a newer leader's conflicting append");
        assert_eq!(
            entry_ids(&log_view(&raw)),
            vec![(2, 2), (3, 2), (4, 3), (5, 3), (6, 3)],
            "{hold:?}: the log reads the kept part of the lent chunk and the new entries"
        );
        if hold != Hold::SharedDroppedWhenWritten {
            assert_eq!(
                h1.entries(),
                run(2, 5, 2).as_slice(),
                "{hold:?}: the application's handle on Ready 1 must not change under it"
            );
        }
        let rd2 = raw.ready().expect("ready 2");
        assert_eq!(
            entry_ids(rd2.entries()),
            vec![(4, 3), (5, 3), (6, 3)],
            "{hold:?}"
        );
        write_ready(&storage, &rd2);

        match h1 {
            Handle::Whole(rd1) => {
                let light = raw.advance_append(*rd1).expect("advance_append(ready 1)");
                assert!(light.committed_entries().is_empty(), "{hold:?}");
            }
            other => {
                raw.on_persist_ready(n1);
                drop(other);
            }
        }
        assert_eq!(
            raw.raft.raft_log.persisted, 1,
            "{hold:?}: Ready 1's (5, 2) is gone, so its report must mark nothing durable"
        );
        let light = raw.advance_append(rd2).expect("advance_append(ready 2)");
        assert!(light.committed_entries().is_empty(), "{hold:?}");
        assert_eq!(raw.raft.raft_log.persisted, 6, "{hold:?}: Ready 2's report");
        assert_eq!(
            log_view(&raw),
            stored(&storage, 2, 7),
            "{hold:?}: the durable log is what storage holds"
        );

        raw.step(append(3, 3, (6, 3), vec![], 6)).expect("commit");
        let handed = settle(&mut raw, &storage);
        assert_handed_out_once_from_storage(&handed, 2, &storage, &format!("{hold:?}"));
        assert_eq!(
            entry_ids(&handed),
            vec![(2, 2), (3, 2), (4, 3), (5, 3), (6, 3)],
            "{hold:?}"
        );
    }
}

/// Two Readys lend two chunks (2..=3 and 4..=5); leader 3 replaces the log from 5 (inside the
/// second chunk), from 4 (at its start) or from 2 (everything lent). A report still counts the
/// chunks the log kept (2..=3 unless replaced), never a replaced one; the Ready carrying the
/// replacement makes everything durable; the application's handles stay as handed out.
#[test]
fn reports_across_lent_chunks_count_only_entries_still_in_the_log() {
    for conflict in [5, 4, 2] {
        for hold in HOLDS {
            let what = format!("conflict at {conflict}, {hold:?}");
            let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
            raw.step(append(1, 2, (1, 1), run(2, 3, 2), 1))
                .expect("append");
            let rd1 = raw.ready().expect("ready 1");
            let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
            let h1 = hold_ready(&mut raw, rd1, hold);
            raw.step(append(1, 2, (3, 2), run(4, 5, 2), 1))
                .expect("append");
            let rd2 = raw.ready().expect("ready 2");
            let (n2, hs2) = (rd2.number(), rd2.hard_state().copied());
            let h2 = hold_ready(&mut raw, rd2, hold);
            write_parts(&storage, None, h1.entries(), hs1);
            write_parts(&storage, None, h2.entries(), hs2);

            let prev_term = if conflict == 2 { 1 } else { 2 };
            raw.step(append(
                3,
                3,
                (conflict - 1, prev_term),
                run(conflict, 6, 3),
                1,
            ))
            .expect("a newer leader's conflicting append");
            let expected: Vec<(u64, u64)> = (2..=6)
                .map(|i| (i, if i < conflict { 2 } else { 3 }))
                .collect();
            assert_eq!(entry_ids(&log_view(&raw)), expected, "{what}");
            let rd3 = raw.ready().expect("ready 3");
            assert_eq!(
                entry_ids(rd3.entries()),
                expected[(conflict - 2) as usize..],
                "{what}"
            );
            write_ready(&storage, &rd3);

            raw.on_persist_ready(n1);
            let kept = if conflict > 3 { 3 } else { 1 };
            assert_eq!(
                raw.raft.raft_log.persisted, kept,
                "{what}: Ready 1's report counts its entries only if the log still has them"
            );
            raw.on_persist_ready(n2);
            assert_eq!(
                raw.raft.raft_log.persisted, kept,
                "{what}: Ready 2's (5, 2) was replaced: its report marks nothing more"
            );
            if hold != Hold::SharedDroppedWhenWritten {
                assert_eq!(h1.entries(), run(2, 3, 2).as_slice(), "{what}: handle 1");
                assert_eq!(h2.entries(), run(4, 5, 2).as_slice(), "{what}: handle 2");
            }
            drop((h1, h2));
            drop(raw.advance_append(rd3).expect("advance_append(ready 3)"));
            assert_eq!(raw.raft.raft_log.persisted, 6, "{what}");
            assert_eq!(log_view(&raw), stored(&storage, 2, 7), "{what}");
            raw.step(append(3, 3, (6, 3), vec![], 6)).expect("commit");
            let handed = settle(&mut raw, &storage);
            assert_handed_out_once_from_storage(&handed, 2, &storage, &what);
            assert_eq!(entry_ids(&handed), expected, "{what}");
        }
    }
}
