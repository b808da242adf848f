//! Fixtures shared by the Raft core's robustness tests (`raft-core/tests/step_never_panics`,
//! `fuzz_messages`, `rejected_inputs`, `storage_fault_each_method`) and the fuzz targets in
//! `fuzz/`, so that all of them drive nodes and judge them by the same rules.
//!
//! - [`Peer`]: a `RawNode` over `MemStorage` and the application around it, which persists and
//!   applies every Ready and reports what it could not ([`Peer::handle_ready`]);
//! - [`Flags`] and [`config`]: the configuration the harnesses give their nodes;
//! - [`Cluster`]: a few nodes exchanging messages through a queue, with isolation, dropped
//!   message types and a three-term history ([`Cluster::play_history`]), to bring nodes into
//!   the states a real cluster reaches;
//! - [`check_invariants`], [`check_refusal`] and [`step_checked`]: the rules checked after every
//!   input (the log's safety invariants; a refused input changes nothing [`Observed`]);
//! - [`NodeState`]: the complete state a refused or failed call must leave unchanged.
//!
//! ```
//! use raft_core::eraftpb::{Message, MessageType};
//! use raft_testkit::{check_invariants, step_checked, Cluster, Flags};
//!
//! let flags = Flags { check_quorum: true, pre_vote: true };
//! let mut cluster = Cluster::new(flags, &[1, 2, 3], &[4], &[]);
//! cluster.play_history(None);
//! let mut learner = cluster.take(4);
//! // A vote request from a node outside the group is refused, and changes nothing.
//! let forged = Message {
//!     msg_type: MessageType::MsgRequestVote as i32,
//!     from: 9,
//!     to: 4,
//!     term: 9,
//!     ..Default::default()
//! };
//! let _ = step_checked(&mut learner, forged);
//! learner.handle_ready().expect("the Ready can be persisted");
//! check_invariants(&learner, 3).expect("the invariants hold");
//! ```

mod checks;
mod cluster;
mod config;
mod node_state;
mod peer;

pub use checks::{
    assert_invariants, check_invariants, check_refusal, step_checked, Observed, MAX_LOG_SPAN,
};
pub use cluster::{Cluster, SETTLE_BUDGET};
pub use config::{config, logger, Flags};
pub use node_state::NodeState;
pub use peer::{fork_store, Peer};
