//! The harness behind the fuzz targets in `fuzz_targets/`, kept in a library so that the targets
//! stay one line each and the corpus generator (`examples/gen_corpus.rs`) and the corpus replay
//! test (`tests/corpus.rs`) run exactly the same code on a stable toolchain.
//!
//! Everything here panics on a finding: libFuzzer reports a panic as a crash and saves the input.
//! The checks after every input are `raft-testkit`'s, the same as `raft-core`'s
//! `step_never_panics` and `fuzz_messages` tests: `step` never panics, a refused message (other
//! than a dropped proposal) leaves the node's observable state as it was, the log's invariants
//! hold (commit <= last index, applied <= commit, persisted <= last index, log terms never
//! decrease and never exceed the node's term; a leader names itself, a candidate voted for
//! itself), the node's term never decreases, and every Ready can be persisted into `MemStorage`,
//! applied in order and advanced, sending only messages with the node as sender and a recipient.
//!
//! Where things are: `roles.rs` is the `step_bytes` target (nodes in every role), `sequence.rs`
//! the `step_sequence` target (operations on a small cluster), `reader.rs` reads the fuzzer's
//! bytes, `mutate.rs` forges messages from them. The nodes, the cluster and the checks are in
//! `raft-testkit`.

#![forbid(unsafe_code)]

mod mutate;
mod reader;
mod roles;
mod sequence;

pub use mutate::mutate;
pub use reader::Reader;
pub use roles::{history_cluster, role_fixtures, step_bytes, Role};
pub use sequence::{step_sequence, Op, NODES};

/// Whether `RAFT_FUZZ_TRACE` is set: the targets then print every operation and delivered
/// message to stderr (for reading a crash input: `RAFT_FUZZ_TRACE=1 cargo fuzz run <target> <file>`).
pub fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("RAFT_FUZZ_TRACE").is_some())
}
