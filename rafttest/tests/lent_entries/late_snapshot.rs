//! Found by these tests: a snapshot older than the one a follower requested arrives late. Restoring
//! it would erase entries the follower already acknowledged.

use raft_core::eraftpb::MessageType;
use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::{Storage, NO_LIMIT};

use crate::fixtures::{append, follower, run, snapshot_msg, write_parts, write_ready};

/// Node 2 hands out 2..=6 (term 2) in Ready 1 and writes them; Ready 1's acknowledgement of 6
/// leaves once it is reported. The node then asks for a snapshot covering 6
/// (`request_snapshot`), and a snapshot at (4, 2), sent before the request, arrives late. It must
/// not be restored: that would erase 5..=6 from storage after the node acknowledged them. (An
/// earlier version restored it; the simulator's progress check found the leader counting entries
/// the follower no longer held, and the stale report of Ready 1 could then also count the
/// re-sent 5..=6 as durable.) Nothing the node acknowledges or hands out may be missing from
/// storage afterwards.
#[test]
fn a_late_snapshot_older_than_the_one_requested_is_not_restored() {
    let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
    raw.step(append(1, 2, (1, 1), run(2, 6, 2), 1))
        .expect("append");
    let mut rd1 = raw.ready().expect("ready 1");
    let n1 = rd1.number();
    let shared = rd1.take_shared_entries().expect("entries");
    write_parts(&storage, None, &shared, rd1.hard_state().copied());
    let acks = rd1.take_persisted_messages();
    raw.advance_append_async(rd1);
    drop(shared);

    raw.request_snapshot().expect("request a snapshot");
    raw.step(snapshot_msg(1, 2, 4, 2)).expect("snapshot at 4");
    assert!(
        raw.raft.raft_log.unstable_snapshot().is_none(),
        "a snapshot below the requested index was restored"
    );
    assert_eq!(raw.raft.raft_log.last_index(), 6, "5..=6 must stay");
    raw.on_persist_ready(n1);
    for m in &acks {
        if m.msg_type() == MessageType::MsgAppendResponse && !m.reject {
            assert_eq!(m.index, 6, "Ready 1 acknowledges what it wrote");
        }
    }
    for _ in 0..5 {
        if !raw.has_ready() {
            break;
        }
        let rd = raw.ready().expect("ready");
        write_ready(&storage, &rd);
        let stored_last = storage.last_index().expect("last index");
        assert!(
            stored_last >= 6,
            "storage lost the acknowledged 5..=6: it ends at {stored_last}"
        );
        for e in rd.committed_entries() {
            assert_eq!(
                storage.entries(e.index, e.index + 1, NO_LIMIT).ok(),
                Some(vec![e.clone()]),
                "node 2 hands out {:?} for applying, which storage does not hold",
                (e.index, e.term)
            );
        }
        raw.advance(rd).expect("advance");
    }
    assert!(
        raw.raft.raft_log.persisted <= storage.last_index().expect("last index"),
        "node 2 counts more as durable than storage holds"
    );
}
