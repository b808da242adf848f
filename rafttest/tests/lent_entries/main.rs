//! Lent Ready entries and the apply cache, at the `RawNode` level over `MemStorage`.
//!
//! The unstable log *lends* each Ready's entries (an `Arc` chunk shared with the Ready) until
//! they are reported durable, and then keeps durable entries in an *apply cache* from which they
//! are handed out as committed without a storage read (`raft-core/src/log/unstable.rs`,
//! `raft-core/src/log/mod.rs`). These tests pin what must hold whatever the application does with
//! its Ready handles (`take_entries`, `take_shared_entries`, keeping the whole `Ready`, dropping it
//! before or after reporting) and whatever a newer leader or a snapshot does to lent or cached
//! entries meanwhile:
//!
//! - an application's handle on lent entries never changes under it, and the node keeps reading
//!   lent entries, across chunks, as its own log;
//! - a report for a Ready whose entries were since replaced (the ABA case of async writes, split
//!   inside a lent chunk or across chunks) marks nothing durable;
//! - the apply cache never hands out an entry that differs from the log's (and storage's) entry at
//!   that index: after a conflicting append from a newer leader, after a snapshot restore, after
//!   `persisted` moved back; every index is handed out exactly once and in order, also when the
//!   cache hits its byte limit mid-way (part cache, part storage), when
//!   `max_committed_size_per_ready` pages out of it, and across restarts; a failing storage read
//!   moves nothing;
//! - two seeded randomized runs: one follower under a sequence of conflicting fake leaders
//!   (pipelining, handle modes, snapshots, restarts, random cache sizes), and a three-node group of
//!   real nodes with asynchronous persistence and a lossy, reordering network. Both check the
//!   invariants after every step;
//! - a stale report after a snapshot restore must not count entries durable that were never
//!   handed out (or were handed out again by a later Ready) and that the snapshot's write erases
//!   (found by these tests; the fix tags each lent chunk with its Ready's number).
//!
//! The files:
//!
//! - `fixtures`: the follower and its config, hand-made appends and snapshots, writing and
//!   reporting Readys, the ways an application holds a Ready's entries ([`fixtures::Hold`]), and
//!   the check that committed entries are handed out once each, equal to storage;
//! - `probe`: a storage that records its reads and can fail them;
//! - `sharing`: the Ready and the log share lent entries, and a leader replicates from them;
//! - `aba`: reports for lent entries a newer leader replaced (inside a chunk, across chunks);
//! - `apply_cache`: conflicts, snapshots, the byte limit, failing reads, paging and restarts;
//! - `late_snapshot`: a late snapshot older than the one requested is not restored;
//! - `async_node`: the asynchronously driven node both randomized runs use;
//! - `random_follower` and `random_group`: the two randomized runs.

#[path = "../common/mod.rs"]
mod common;

mod aba;
mod apply_cache;
mod async_node;
mod fixtures;
mod late_snapshot;
mod probe;
mod random_follower;
mod random_group;
mod sharing;
