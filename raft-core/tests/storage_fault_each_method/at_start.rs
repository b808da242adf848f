//! `RawNode::new`: `initial_state`, `first_index` and `last_index` failing at start.

use crate::cluster::{assert_store_error, history, Cluster, Node};
use crate::faulty::{Method, KINDS};

/// A node cannot start from a storage it cannot read; once storage recovers, it starts with
/// exactly what was persisted and takes part in the group again.
#[test]
fn initial_state_first_index_and_last_index_failing_at_new_surface_and_a_retry_starts_the_node() {
    for method in [Method::InitialState, Method::FirstIndex, Method::LastIndex] {
        for kind in KINDS {
            let what = format!("{method:?} failing with {kind:?} at RawNode::new");
            let mut c = Cluster::restarted(&history(), 0);
            let store = c.nodes[&1].store.clone();
            store.fail(method, kind);
            let result = Node::new(1, store.clone(), 0).map(|_| ());
            assert_store_error(&result, kind, &what);
            assert!(store.hits.get() > 0, "{what}: the method was never called");
            store.heal();
            let n = Node::new(1, store, 0).expect("storage recovered");
            let r = &n.raw.raft;
            assert_eq!(
                (
                    r.term,
                    r.vote,
                    r.raft_log.committed,
                    r.raft_log.last_index()
                ),
                (2, 1, 4, 5),
                "{what}: the retried start does not restore the persisted state"
            );
            c.nodes.insert(1, n);
            c.elect(1);
            c.commits_again(&what);
        }
    }
}
