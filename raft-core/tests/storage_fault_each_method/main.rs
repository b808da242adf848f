//! Storage faults, method by method (issue 8, DESIGN.md §5): a `Storage` wrapper over `MemStorage`
//! fails a chosen method (`initial_state`, `entries`, `term`, `first_index`, `last_index`,
//! `snapshot`) with a chosen `StorageError` until switched off. For each method, at the places the
//! core calls it: the node surfaces the error where the API can (`RawNode::new`, `ready`,
//! `advance`, `step`), never changes or corrupts its state on a failed call (compared before and
//! after), never promises what it could not check (no acknowledgement, no vote), and recovers
//! once storage does: the failure is switched off, the node goes on, and the cluster commits.
//!
//! Where things are: `faulty.rs` is the failing storage, `cluster.rs` the nodes and cluster over
//! it (the complete state compared before and after a failed call is `raft_testkit::NodeState`);
//! then one file per method: `at_start.rs` (`RawNode::new`: `initial_state`, `first_index`,
//! `last_index`), `entries.rs`, `term.rs`, `snapshot.rs`, and `indexes.rs` (`first_index` and
//! `last_index` at run time).

mod at_start;
mod cluster;
mod entries;
mod faulty;
mod indexes;
mod snapshot;
mod term;
