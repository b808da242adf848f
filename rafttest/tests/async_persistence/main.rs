//! Asynchronous persistence and apply (issue #6): a node keeps producing Readys while earlier ones
//! are still being written (`advance_append_async` + `on_persist_ready`) and applied
//! (`advance_apply_to`).
//!
//! Covered: pipelined Readys of depth 2 and 3 on leader and followers (what goes to `messages()`
//! versus `persisted_messages()`, when the leader counts its own entries, when commits and
//! committed entries appear, out-of-step persistence acknowledgements); the ABA race where a newer
//! leader overwrites entries whose write is still in flight; a multi-threaded group with a persist
//! thread and an apply thread per node; and restarts at every point of the pipeline (before
//! persisting, after persisting before applying, after applying before reporting it).

mod aba;
mod harness;
mod pipelining;
mod restart;
mod threaded;
