//! `first_index()` and `last_index()` failing at run time, after the node started.

use crate::cluster::{cluster_needing_a_snapshot, history, Cluster};
use crate::faulty::{Method, KINDS};

/// A leader whose storage cannot say where its log starts still never sends wrong entries: the
/// follower behind the compacted log gets nothing wrong and catches up once storage recovers.
#[test]
fn first_index_failing_while_a_leader_serves_a_lagging_follower_corrupts_nothing() {
    for kind in KINDS {
        let what = format!("first_index() failing with {kind:?} on the leader");
        let mut c = cluster_needing_a_snapshot();
        let leader_before = c.nodes[&1].observe();
        c.node(1).store.fail(Method::FirstIndex, kind);
        c.heartbeat_rounds(3);
        assert!(c.nodes[&1].store.hits.get() > 0, "{what}: never called");
        let after = c.nodes[&1].observe();
        assert_eq!(
            (&after.log, after.committed, after.term, after.role),
            (
                &leader_before.log,
                leader_before.committed,
                leader_before.term,
                leader_before.role
            ),
            "{what}: the leader changed"
        );
        let log3 = &c.nodes[&3].raw.raft.raft_log;
        assert!(
            log3.last_index() <= 1 || log3.first_index() > 1,
            "{what}: node 3 got entries past its log without the snapshot"
        );
        c.node(1).store.heal();
        c.commits_again(&what);
    }
}

/// The core reads `last_index` from storage when it starts and keeps its own view after that.
/// Whether or not it consults storage again, a failing `last_index` must never misplace an entry:
/// with it failing on every node, a candidate wins (its empty entry follows its log, §5.4.2),
/// proposals take the next indexes, and the group commits the same log everywhere.
#[test]
fn last_index_failing_after_start_never_misplaces_an_entry() {
    for kind in KINDS {
        let what = format!("last_index() failing with {kind:?} after start");
        let mut c = Cluster::restarted(&history(), 4);
        for n in c.nodes.values() {
            n.store.fail(Method::LastIndex, kind);
        }
        let log_before = c.nodes[&1].observe().log.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.elect(1);
            for i in 0..3 {
                let _ = c.node(1).raw.propose(vec![], vec![i]);
                c.stabilize();
            }
        }));
        assert!(outcome.is_ok(), "{what}: the cluster panicked");
        let log = c.nodes[&1].observe().log.clone();
        assert_eq!(
            &log[..log_before.len()],
            &log_before[..],
            "{what}: the leader's log was rewritten"
        );
        let new_indexes: Vec<u64> = log[log_before.len()..].iter().map(|e| e.0).collect();
        assert_eq!(
            new_indexes,
            [6, 7, 8, 9],
            "{what}: the new leader's entry and the proposals must follow index 5"
        );
        c.commits_again(&what);
        for n in c.nodes.values() {
            n.store.heal();
        }
    }
}
