//! Snapshots older than the log, contradicting it, or malformed.

use crate::fixtures::{assert_invalid, follower, meta, msg, snapshot_msg, State};
use raft_core::eraftpb::{ConfState, MessageType, SnapshotMetadata};
use raft_core::StateRole;

/// A snapshot that ends before our commit index carries nothing new: it is ignored and answered
/// with our commit index so the leader resumes appending from there (etcd `handleSnapshot`).
#[test]
fn snapshot_older_than_the_commit_index_is_ignored_and_answered_with_the_commit_index() {
    for index in [1, 2] {
        let mut n = follower();
        let before = State::of(&n);
        n.raw
            .step(snapshot_msg(2, Some(meta(index, 1, &[1, 2, 3]))))
            .expect("a stale snapshot is answered, not refused");
        let after = State::of(&n);
        assert_eq!(
            (&after.log, after.committed, after.persisted, after.applied),
            (
                &before.log,
                before.committed,
                before.persisted,
                before.applied
            ),
            "a snapshot at {index} (commit 3) changed the log"
        );
        assert!(
            n.raw.raft.raft_log.unstable_snapshot().is_none(),
            "the stale snapshot was kept for persisting"
        );
        let answers = n.queued();
        assert!(
            matches!(answers.as_slice(), [a] if a.msg_type() == MessageType::MsgAppendResponse
                && !a.reject && a.index == 3 && a.to == 1),
            "expected one acknowledgement of index 3 (the commit index), got {answers:?}"
        );
    }
}

/// A snapshot whose last entry is our committed entry with another term contradicts what a
/// quorum committed (§5.4 Leader Completeness): no honest leader sends it. It must be ignored
/// like a stale one (etcd ignores every snapshot at or below the commit index). The core
/// restores it instead, replacing the committed entry; over a storage compacted at that index
/// (found by `fuzz_messages` with `RAFT_FUZZ_SCALE=100`), the Ready's snapshot is then refused
/// by `MemStorage::apply_snapshot` (not newer than its own) and the node cannot go on.
#[test]
fn snapshot_at_the_commit_index_contradicting_the_committed_entry_is_ignored() {
    let mut n = follower();
    // The follower compacts behind its applied (= committed) index, as applications do.
    {
        let mut s = n.store.wl();
        s.create_snapshot(3, None, Default::default())
            .expect("snapshot");
        s.compact(3).expect("compact");
    }
    let before = State::of(&n);
    // Committed entry 3 has term 2; this snapshot claims term 3 there.
    n.raw
        .step(snapshot_msg(3, Some(meta(3, 3, &[1, 2, 3]))))
        .expect("a snapshot at the commit index is answered, not refused");
    let after = State::of(&n);
    assert_eq!(
        (&after.log, after.committed),
        (&before.log, before.committed),
        "the committed entry at 3 (term 2) was replaced by a snapshot claiming term 3"
    );
    assert!(
        n.raw.raft.raft_log.unstable_snapshot().is_none(),
        "the contradicting snapshot is waiting to be persisted"
    );
    // Whatever the node decided, its Ready must be persistable.
    n.settle();
}

#[test]
fn snapshot_at_index_0_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(0, 1, &[1, 2, 3]))),
        "snapshot",
    );
}

#[test]
fn snapshot_without_a_snapshot_or_its_metadata_is_rejected() {
    let mut n = follower();
    assert_invalid(&mut n, snapshot_msg(2, None), "metadata");
    let mut m = snapshot_msg(2, None);
    m.snapshot = None;
    assert_invalid(&mut n, m, "metadata");
}

/// Every group at a snapshot has at least one voter; a snapshot without one would leave the node
/// unable to count any quorum.
#[test]
fn snapshot_without_voters_is_rejected() {
    let mut n = follower();
    let mut no_conf = meta(10, 2, &[]);
    no_conf.conf_state = None;
    assert_invalid(&mut n, snapshot_msg(2, Some(no_conf)), "membership");
    let learners_only = SnapshotMetadata {
        conf_state: Some(ConfState {
            learners: vec![2],
            ..Default::default()
        }),
        index: 10,
        term: 2,
    };
    assert_invalid(&mut n, snapshot_msg(2, Some(learners_only)), "membership");
}

#[test]
fn snapshot_at_index_u64_max_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(u64::MAX, 2, &[1, 2, 3]))),
        "overflow",
    );
}

/// Index arithmetic near u64::MAX (issue 8: "integer overflow on terms and indexes is handled").
/// A snapshot at u64::MAX - 1 passes validation (only u64::MAX is refused) and is restored; the
/// node then wins an election and its empty entry takes index u64::MAX, so the next proposal's
/// index overflows: a panic in debug builds, a wrapped index 0 (last index 0, commit and
/// persisted above it) in release builds. Found by `fuzz_messages` (a mutated snapshot index).
/// Expected: refused up front, or the proposal refused; never an overflow.
#[test]
fn snapshot_near_u64_max_never_leads_to_an_index_overflow() {
    let mut n = follower();
    let index = u64::MAX - 1;
    let restored = n
        .raw
        .step(snapshot_msg(2, Some(meta(index, 2, &[1, 2, 3]))));
    if restored.is_ok() {
        n.settle();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            n.raw.campaign().expect("campaign");
            n.settle();
            let term = n.raw.raft.term;
            n.raw
                .step(msg(MessageType::MsgRequestVoteResponse, 1, 2, term))
                .expect("vote");
            n.settle();
            assert_eq!(n.raw.raft.state, StateRole::Leader, "node 2 leads");
            let proposal = n.raw.propose(vec![], b"x".to_vec());
            n.settle();
            proposal
        }));
        let proposal = result.expect("an index overflowed (panic in a debug build)");
        let log = &n.raw.raft.raft_log;
        assert!(
            log.committed <= log.last_index() && log.last_index() >= index,
            "the log wrapped around: last index {}, commit {} (proposal: {proposal:?})",
            log.last_index(),
            log.committed
        );
    }
}

/// A snapshot's last entry cannot be of a term later than the leader sending it, nor of term 0.
#[test]
fn snapshot_of_term_0_or_above_the_message_term_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(10, 0, &[1, 2, 3]))),
        "term",
    );
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(10, 3, &[1, 2, 3]))),
        "term",
    );
}
