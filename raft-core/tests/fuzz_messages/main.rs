//! The CI-bounded fuzzer of `RawNode::step` (issue 8; the unbounded one is `fuzz/`, run with
//! `cargo fuzz`). Two harnesses, run by one test that counts the messages they step (at least
//! 100,000 per run):
//!
//! (a) bytes decoded as a protobuf `Message` (random bytes, and encodings of real messages with
//!     bytes flipped, inserted, removed or cut), whatever decodes is stepped into a follower, a
//!     candidate, a pre-candidate, a leader and a learner;
//! (b) a structured fuzzer: a short deterministic simulation of a 3-voter cluster (plus a node
//!     that joins, is promoted and removed) records each node's life (the messages it received,
//!     its ticks, Readys, proposals, reads, conf changes, transfers, compactions); a case replays
//!     one node's life into a fresh node with mutations: fields off by one, zeroed or maxed;
//!     entries dropped, duplicated, reordered or with tweaked terms and indexes; types swapped;
//!     senders and recipients swapped; snapshot metadata mangled; messages dropped, duplicated or
//!     delivered again later.
//!
//! After every step: no panic; a refused message (other than a dropped proposal) changes nothing;
//! commit <= last index, applied <= commit, persisted <= last index, log terms never decrease and
//! never exceed the node's term, a leader names itself and a candidate voted for itself, the
//! node's term never decreases; and at every Ready of the life (and at the end), and right after
//! every mutated or decoded message, the Ready can be taken, persisted into `MemStorage`, applied
//! in order and advanced, and its messages name the node as sender and a recipient.
//!
//! The run is reproducible: its seed is fixed unless `RAFT_FUZZ_SEED=<u64>` (replay a reported
//! failure) or `RAFT_FUZZ_SEED=random` (explore) says otherwise; `RAFT_FUZZ_SCALE=<n>` multiplies
//! the number of cases. A long run:
//! `RAFT_FUZZ_SEED=random RAFT_FUZZ_SCALE=200 cargo test --release -p raft-core --test fuzz_messages`.
//!
//! Where things are: `recording.rs` records the lives, `subject.rs` steps a node and checks it
//! (the node and its application, the invariants and "refused, so nothing changed" are
//! `raft-testkit`'s, shared with `step_never_panics` and `fuzz/`), `bytes.rs` is harness (a),
//! `replay.rs` harness (b); this file runs both and checks the recordings are what the harnesses
//! claim.

mod bytes;
mod recording;
mod replay;
mod subject;

use bytes::{bytes_input, role_points, step_bytes, ROLES};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestError, TestRng, TestRunner};
use raft_core::eraftpb::{EntryType, MessageType};
use recording::{recorded_messages, traces};
use replay::{replay, replay_case};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use subject::{Subject, REFUSED, STEPPED_BYTES, STEPPED_STRUCTURED};

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

fn scale() -> u32 {
    std::env::var("RAFT_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The seed of this run: fixed, so that CI runs are reproducible, unless `RAFT_FUZZ_SEED` says.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("RAFT_FUZZ_SEED") {
        Ok(s) if s == "random" => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        }
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("RAFT_FUZZ_SEED must be a u64 or `random`, not {s:?}")),
        Err(_) => 0x8F22_2024,
    })
}

fn run<S: Strategy>(
    name: &str,
    stream: u64,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = PtConfig {
        cases,
        failure_persistence: None,
        ..PtConfig::default()
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed().wrapping_add(stream) ^ (i as u64).wrapping_mul(0x9E37_79B9);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!(
            "{name}: {reason}\nminimal failing input: {input:#?}\nreplay: RAFT_FUZZ_SEED={} \
             RAFT_FUZZ_SCALE={}",
            self::seed(),
            scale()
        ),
        Err(TestError::Abort(reason)) => panic!("{name} aborted: {reason}"),
    }
}

const BYTES_CASES: u32 = 2_000;
const REPLAY_CASES: u32 = 600;

#[test]
fn fuzzing_steps_100k_messages_without_panic_refusal_side_effects_or_broken_invariants() {
    // Build the shared recordings once, before the two harnesses run side by side.
    let _ = role_points();
    println!("fuzz_messages: seed {}, scale {}", seed(), scale());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let input = (
                proptest::sample::select(ROLES.to_vec()),
                any::<Index>(),
                vec(bytes_input(), 1..32),
            );
            run(
                "(a) bytes into every role",
                0,
                BYTES_CASES * scale(),
                input,
                |(role, fixture, inputs)| step_bytes(role, fixture, &inputs),
            );
        });
        scope.spawn(|| {
            run(
                "(b) mutated recorded lives",
                1,
                REPLAY_CASES * scale(),
                replay_case(),
                |case| replay(&case),
            );
        });
    });
    let (a, b) = (
        STEPPED_BYTES.load(Ordering::Relaxed),
        STEPPED_STRUCTURED.load(Ordering::Relaxed),
    );
    println!(
        "fuzz_messages: stepped {} messages ({a} decoded from bytes into every role, {b} in \
         mutated replays; {} refused with an error) in {:.1?}",
        a + b,
        REFUSED.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        a + b >= 100_000,
        "the harness stepped only {} messages; it must step at least 100,000",
        a + b
    );
}

// ---------------------------------------------------------------------------------------------
// The recordings are what the harness claims (otherwise it tests less than it says).
// ---------------------------------------------------------------------------------------------

#[test]
fn recorded_runs_carry_every_peer_message_type_and_reach_every_role() {
    let mut seen = BTreeSet::new();
    let mut with_entries = 0;
    let mut rejections = 0;
    for m in recorded_messages() {
        seen.insert(m.msg_type);
        with_entries += usize::from(!m.entries.is_empty());
        rejections += usize::from(m.reject);
    }
    let peer_types = [
        MessageType::MsgPropose,
        MessageType::MsgAppend,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgSnapshot,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
    ];
    let missing: Vec<_> = peer_types
        .iter()
        .filter(|t| !seen.contains(&(**t as i32)))
        .collect();
    assert!(
        missing.is_empty(),
        "the recorded runs never deliver {missing:?}"
    );
    assert!(
        with_entries > 100 && rejections > 10,
        "too few appends with entries ({with_entries}) or rejections ({rejections})"
    );
    let conf_changes = recorded_messages()
        .iter()
        .flat_map(|m| &m.entries)
        .filter(|e| e.entry_type == EntryType::EntryConfChange as i32)
        .count();
    assert!(conf_changes > 0, "no conf change was replicated");
    let points = role_points();
    for role in ROLES {
        assert!(
            points.get(&role).is_some_and(|p| !p.is_empty()),
            "no recorded life reaches {role:?}"
        );
    }
    for t in traces() {
        let max_commit = t.finals.values().map(|s| s.4).max().unwrap_or(0);
        assert!(
            max_commit > 50,
            "trace {:?}/{:#x}: the cluster committed only {max_commit} entries",
            t.flags,
            t.seed
        );
    }
}

/// A life replayed unmutated reproduces the recorded node exactly: the mutated replays start
/// from the states a real cluster reaches.
#[test]
fn replaying_a_recorded_life_unmutated_reproduces_the_node() {
    for t in traces() {
        for (&id, life) in &t.lives {
            let mut s = Subject::new(id, t.flags);
            let counter = AtomicU64::new(0);
            for ev in life {
                if let Err(e) = s.act(ev, &counter) {
                    panic!("unmutated replay of node {id} ({:?}) failed: {e}", t.flags);
                }
            }
            assert_eq!(
                recording::summary(&s.peer),
                t.finals[&id],
                "node {id} ({:?}, seed {:#x}) replayed differently",
                t.flags,
                t.seed
            );
        }
    }
}
