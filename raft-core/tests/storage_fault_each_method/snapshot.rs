//! `snapshot()` failing while a leader sends a snapshot to a follower behind its compacted log.

use crate::cluster::cluster_needing_a_snapshot;
use crate::faulty::{Method, KINDS};
use raft_core::eraftpb::MessageType;
use raft_core::tracker::ProgressState;

/// SnapshotTemporarilyUnavailable is what a storage says while it builds one; any other error
/// is treated the same way: no snapshot is sent, node 3 is not marked as receiving one, and it
/// gets one when storage answers.
#[test]
fn snapshot_failing_sends_nothing_and_a_later_attempt_sends_the_snapshot() {
    for kind in KINDS {
        let what = format!("snapshot() failing with {kind:?}");
        let mut c = cluster_needing_a_snapshot();
        c.node(1).store.fail(Method::Snapshot, kind);
        let follower_before = c.nodes[&3].observe();
        let delivered = c.heartbeat_rounds(4);
        assert!(
            c.nodes[&1].store.hits.get() > 0,
            "{what}: snapshot() was never called"
        );
        assert!(
            !delivered
                .iter()
                .any(|m| m.msg_type == MessageType::MsgSnapshot as i32),
            "{what}: a snapshot was sent"
        );
        let pr3 = c.nodes[&1].raw.raft.prs.get(3).expect("progress").clone();
        assert_ne!(
            pr3.state,
            ProgressState::Snapshot,
            "{what}: node 3 is marked as receiving a snapshot that was never sent"
        );
        let after = c.nodes[&3].observe();
        assert_eq!(
            (&after.log, after.committed),
            (&follower_before.log, follower_before.committed),
            "{what}: node 3 changed"
        );
        c.node(1).store.heal();
        let delivered = c.heartbeat_rounds(3);
        assert!(
            delivered
                .iter()
                .any(|m| m.msg_type == MessageType::MsgSnapshot as i32 && m.to == 3),
            "{what}: no snapshot was sent after recovery"
        );
        c.commits_again(&what);
    }
}
