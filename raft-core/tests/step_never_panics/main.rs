//! Robustness of `RawNode::step` against untrusted input (DESIGN.md §5, testing strategy §7.5).
//!
//! Every message type (and unknown type values), with arbitrary field values, is stepped into a node
//! in every role: a follower with a known leader and unpersisted entries, a follower with a divergent
//! uncommitted tail, a candidate, a pre-candidate, a leader with followers in Probe and Replicate, a
//! learner, a node removed from the configuration and an uninitialised node, each with check-quorum
//! and pre-vote on and off. The nodes get there by driving a real cluster of `RawNode`s over
//! `MemStorage`, and their logs span several terms. The properties:
//!
//! 1. neither `step` nor the Ready cycle (`ready`, persisting, `advance`) ever panics, for single
//!    messages and for sequences interleaved with ticks, proposals, campaigns and Readys;
//! 2. a `step` that fails (other than `ProposalDropped`) leaves the node's observable state unchanged;
//! 3. the log's safety invariants hold after every input, the node's term never goes down, and it
//!    votes only for a node that asked.
//!
//! Where things are: `roles.rs` builds the node in each role (and checks the fixtures are what
//! they claim), `strategies.rs` generates the messages and inputs, `subject.rs` steps them and
//! checks the properties (the node and its application, the invariants and "refused, so nothing
//! changed" are `raft-testkit`'s, shared with `fuzz_messages` and `fuzz/`), `regressions.rs` holds
//! the minimised failures; this file runs the properties for every role.

mod regressions;
mod roles;
mod strategies;
mod subject;

use proptest::collection::vec;
use proptest::prelude::*;
use roles::Role;
use strategies::{flags, msg, op};
use subject::{sequence, single_message};

const SINGLE_CASES: u32 = 2000;
const SEQUENCE_CASES: u32 = 2000;

macro_rules! role_properties {
    ($($module:ident => $role:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: SINGLE_CASES, failure_persistence: None, ..ProptestConfig::default() })]

                #[test]
                fn any_single_message_is_refused_cleanly_or_handled_safely(
                    flags in flags(),
                    m in msg(),
                ) {
                    single_message($role, flags, &m)?;
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig { cases: SEQUENCE_CASES, failure_persistence: None, ..ProptestConfig::default() })]

                #[test]
                fn message_sequences_with_ticks_proposals_and_readys_keep_invariants(
                    flags in flags(),
                    ops in vec(op(), 1..20),
                ) {
                    sequence($role, flags, &ops)?;
                }
            }
        }
    )*};
}

role_properties! {
    follower => Role::Follower,
    divergent_follower => Role::DivergentFollower,
    candidate => Role::Candidate,
    pre_candidate => Role::PreCandidate,
    leader => Role::Leader,
    learner => Role::Learner,
    removed => Role::Removed,
    uninitialised => Role::Uninitialised,
}
