//! Bytes -> `eraftpb::Message` (prost) -> `step` into a follower, candidate, pre-candidate, leader
//! and learner; byte 0 selects check-quorum and pre-vote. See `raft_fuzz::step_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raft_fuzz::step_bytes(data));
