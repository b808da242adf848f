//! Bytes -> a sequence of operations (step, mutated or raw messages, ticks, Readys, proposals,
//! reads, conf changes, campaigns, transfers, compactions) on a 3-node cluster. See
//! `raft_fuzz::step_sequence`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raft_fuzz::step_sequence(data));
