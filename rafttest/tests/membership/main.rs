//! Membership changes on a running group (issue #3): adding and removing voters, removing the
//! leader (with and without `step_down_on_removal`), joint consensus with automatic and explicit
//! leave, learners and their promotion, the refusals of a leader validating proposed conf changes
//! (and what happens when validation is off), forwarding, v1 and v2 changes, and membership changes
//! under faults (partitions, a leader crash inside a joint configuration, restarts, message loss).
//!
//! Each test runs a `rafttest::Network` whose nodes apply conf change entries as an application
//! would, and compares what every node applied: its conf changes (`Node::conf_log`), its
//! configuration, its payloads and its commit index.

mod add_remove;
mod bootstrap;
mod faults;
mod joint;
mod leader_removal;
mod learners;
mod support;
mod validation;
