//! Impossible input from the network, one test per class (DESIGN.md §5): the node refuses it with
//! the specific `Error` and its state is exactly as before, or, where the protocol has an answer
//! for it (an append that does not match, a stale snapshot), it answers and changes nothing else.
//!
//! Classes: commit past the last index, appends far beyond the log or with impossible entries,
//! snapshots older than the log or malformed, responses from unknown peers, local-only message
//! types, unknown type values, messages for another node, term overflow, read requests with the
//! wrong number of entries, vote requests from node 0.
//!
//! Where things are: `fixtures.rs` builds the nodes and messages and says "refused, so nothing
//! changed"; one file per group of classes: `commit_and_appends.rs`, `snapshots.rs`,
//! `senders.rs` (senders, recipients and message shapes), `term_overflow.rs`.

mod commit_and_appends;
mod fixtures;
mod senders;
mod snapshots;
mod term_overflow;
