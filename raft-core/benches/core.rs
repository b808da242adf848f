//! Criterion benchmarks of raft-core's hot paths: a leader's propose + Ready/advance per entry
//! (one at a time and in batches of 64), a follower stepping a 1-entry `MsgAppend` + Ready/advance,
//! a leader stepping a heartbeat response, `has_ready` / `ready` + `advance` / `tick` of an idle
//! node, the quorum committed index of 1..=11 voters (majority and joint), creating a `Raft` and a
//! `RawNode`, and `Status` / `BasicStatus`.
//!
//! Run: `cargo bench -p raft-core --bench core` (a filter narrows it: `-- quorum`). The nodes use
//! the configuration of `shared/bench/WORKLOADS.md` (`heartbeat_tick = 1`, 1 MiB messages, 256
//! inflight) and a `slog::Discard` logger.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raft_core::eraftpb::{Entry, EntryType, Message, MessageType};
use raft_core::quorum::{AckedIndexer, JointConfig, MajorityConfig};
use raft_core::{Config, Raft, RawNode, StateRole};
use std::hint::black_box;
use std::time::{Duration, Instant};
use storage_mem::MemStorage;

/// Payload bytes of every proposal and appended entry.
const PAYLOAD: usize = 128;
/// A benchmark that grows a log starts over with fresh nodes (untimed) after this many entries,
/// so memory does not grow with the number of iterations criterion picks.
const RESET_EVERY: u64 = 4096;

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn config(id: u64, election_tick: usize) -> Config {
    Config {
        id,
        election_tick,
        heartbeat_tick: 1,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        ..Default::default()
    }
}

fn storage() -> MemStorage {
    MemStorage::new_with_conf_state(storage_mem::conf_state(vec![1, 2, 3], vec![]))
}

/// A node and the application's handle on its storage.
struct Node {
    raw: RawNode<MemStorage>,
    store: MemStorage,
}

impl Node {
    fn new(id: u64) -> Node {
        let store = storage();
        let raw = RawNode::new(&config(id, 10), store.clone(), &logger()).expect("new node");
        Node { raw, store }
    }

    /// Handles one Ready (if any) the way the application would: send, persist, apply (the
    /// payload bytes are summed, so the work is not optimised away), advance. Sent messages are
    /// pushed on `out`.
    fn handle_ready(&mut self, out: &mut Vec<Message>) {
        if !self.raw.has_ready() {
            return;
        }
        let mut rd = self.raw.ready().expect("ready");
        out.append(&mut rd.take_messages());
        let mut applied = 0;
        for e in rd.take_committed_entries() {
            applied += e.data.len();
        }
        {
            let mut store = self.store.wl();
            store.append(rd.entries()).expect("persist");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.append(&mut rd.take_persisted_messages());
        let mut light = self.raw.advance(rd).expect("advance");
        if let Some(c) = light.commit_index() {
            self.store.wl().mut_hard_state().commit = c;
        }
        out.append(&mut light.take_messages());
        for e in light.take_committed_entries() {
            applied += e.data.len();
        }
        black_box(applied);
        self.raw.advance_apply();
    }
}

/// Three nodes with node 1 elected and its empty entry committed everywhere.
fn elected_cluster() -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    nodes[0].raw.campaign().expect("campaign");
    let mut queue = Vec::new();
    loop {
        for n in nodes.iter_mut() {
            n.handle_ready(&mut queue);
        }
        if queue.is_empty() && !nodes.iter().any(|n| n.raw.has_ready()) {
            break;
        }
        for m in std::mem::take(&mut queue) {
            let to = m.to as usize;
            nodes[to - 1].raw.step(m).expect("step");
        }
    }
    assert_eq!(nodes[0].raw.raft.state, StateRole::Leader);
    nodes
}

fn payload(seq: u64) -> Vec<u8> {
    let mut v = vec![0u8; PAYLOAD];
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v
}

fn append_response(from: u64, term: u64, index: u64) -> Message {
    Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        from,
        to: 1,
        term,
        index,
        ..Default::default()
    }
}

/// The leader's side of replicating `batch` proposals: propose them, handle the Ready (which sends
/// one append per follower), step both followers' acknowledgements, handle the Ready that commits
/// and applies them. Timed per entry; fresh nodes every [`RESET_EVERY`] entries (untimed).
fn leader_propose(c: &mut Criterion) {
    let mut group = c.benchmark_group("leader_propose");
    for batch in [1u64, 64] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut nodes = elected_cluster();
                let mut since_reset = 0;
                let mut out = Vec::new();
                for i in 0..iters {
                    if since_reset >= RESET_EVERY {
                        drop(std::mem::replace(&mut nodes, elected_cluster()));
                        since_reset = 0;
                    }
                    let leader = &mut nodes[0];
                    let term = leader.raw.raft.term;
                    let start = Instant::now();
                    for j in 0..batch {
                        leader
                            .raw
                            .propose(Vec::new(), payload(i * batch + j))
                            .expect("propose");
                    }
                    leader.handle_ready(&mut out);
                    let last = leader.raw.raft.raft_log.last_index();
                    leader
                        .raw
                        .step(append_response(2, term, last))
                        .expect("ack");
                    leader
                        .raw
                        .step(append_response(3, term, last))
                        .expect("ack");
                    leader.handle_ready(&mut out);
                    out.clear();
                    timed += start.elapsed();
                    since_reset += batch;
                }
                timed
            })
        });
    }
    group.finish();
}

/// A follower stepping one 1-entry `MsgAppend` and handling its Ready (persist, acknowledge,
/// advance): the append-only path. Messages are built untimed; fresh node every [`RESET_EVERY`].
fn follower_append(c: &mut Criterion) {
    c.bench_function("follower_append", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut out = Vec::new();
            let mut done = 0;
            while done < iters {
                let mut node = Node::new(2);
                let count = (iters - done).min(RESET_EVERY);
                let msgs: Vec<Message> = (1..=count)
                    .map(|i| Message {
                        msg_type: MessageType::MsgAppend as i32,
                        from: 1,
                        to: 2,
                        term: 1,
                        index: i - 1,
                        log_term: u64::from(i > 1),
                        entries: vec![Entry {
                            entry_type: EntryType::EntryNormal as i32,
                            term: 1,
                            index: i,
                            data: Bytes::from(payload(i)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect();
                let start = Instant::now();
                for m in msgs {
                    node.raw.step(m).expect("step");
                    node.handle_ready(&mut out);
                    out.clear();
                }
                timed += start.elapsed();
                done += count;
            }
            timed
        })
    });
}

/// The leader of an up-to-date group stepping a heartbeat response (then handling a Ready, if the
/// response made one: it does not when the follower is up to date).
fn heartbeat_response(c: &mut Criterion) {
    let mut nodes = elected_cluster();
    let leader = &mut nodes[0];
    let (term, commit) = (leader.raw.raft.term, leader.raw.raft.raft_log.committed);
    let responses: Vec<Message> = [2, 3]
        .into_iter()
        .map(|from| Message {
            msg_type: MessageType::MsgHeartbeatResponse as i32,
            from,
            to: 1,
            term,
            commit,
            ..Default::default()
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    c.bench_function("heartbeat_response_step", |b| {
        b.iter(|| {
            i ^= 1;
            leader.raw.step(responses[i].clone()).expect("step");
            leader.handle_ready(&mut out);
            out.clear();
        })
    });
}

/// An idle follower of a settled group: `has_ready` (false), a forced `ready` + `advance` of the
/// empty Ready, and a `tick` (`election_tick = 1000`, fresh node every 500 ticks so it never
/// campaigns).
fn idle_node(c: &mut Criterion) {
    let mut group = c.benchmark_group("idle");
    let mut nodes = elected_cluster();
    let follower = &mut nodes[1];
    group.bench_function("has_ready", |b| {
        b.iter(|| black_box(follower.raw.has_ready()))
    });
    group.bench_function("ready_advance", |b| {
        b.iter(|| {
            let rd = follower.raw.ready().expect("ready");
            black_box(follower.raw.advance(rd).expect("advance"));
        })
    });
    group.bench_function("tick_follower", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let mut raw = RawNode::new(&config(1, 1000), storage(), &logger()).expect("node");
                let count = (iters - done).min(500);
                let start = Instant::now();
                for _ in 0..count {
                    raw.tick();
                }
                timed += start.elapsed();
                black_box(raw.has_ready());
                done += count;
            }
            timed
        })
    });
    group.finish();
}

/// Acknowledged indexes by voter id (ids `1..=32`).
struct Acked([u64; 33]);

impl AckedIndexer for Acked {
    fn acked_index(&self, id: u64) -> Option<u64> {
        self.0.get(id as usize).copied()
    }
}

/// `committed_index` of a majority configuration of `n` voters and of a joint one (`n` incoming,
/// `n` outgoing voters overlapping by half), for `n` in 1..=11, with scattered acknowledgements.
fn quorum(c: &mut Criterion) {
    let mut acked = [0u64; 33];
    for (id, slot) in acked.iter_mut().enumerate() {
        *slot = (id as u64 * 7919) % 101;
    }
    let acked = Acked(acked);
    let mut group = c.benchmark_group("quorum_committed_index");
    for n in 1..=11u64 {
        let majority = MajorityConfig::new(1..=n);
        group.bench_with_input(BenchmarkId::new("majority", n), &majority, |b, cfg| {
            b.iter(|| black_box(cfg.committed_index(black_box(&acked))))
        });
        let joint = JointConfig {
            incoming: MajorityConfig::new(1..=n),
            outgoing: MajorityConfig::new((n / 2 + 1)..=(n / 2 + n)),
        };
        group.bench_with_input(BenchmarkId::new("joint", n), &joint, |b, cfg| {
            b.iter(|| black_box(cfg.committed_index(black_box(&acked))))
        });
    }
    group.finish();
}

/// Creating a `Raft` and a `RawNode` of 3 voters over a fresh storage (the storage is made
/// untimed).
fn creation(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    let cfg = config(1, 10);
    let log = logger();
    group.bench_function("raft", |b| {
        b.iter_batched(
            storage,
            |store| Raft::new(&cfg, store, &log).expect("raft"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("raw_node", |b| {
        b.iter_batched(
            storage,
            |store| RawNode::new(&cfg, store, &log).expect("raw node"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// `Status` (with the progress of 3 peers) and `BasicStatus` of a leader.
fn status(c: &mut Criterion) {
    let nodes = elected_cluster();
    let leader = &nodes[0].raw;
    let mut group = c.benchmark_group("status");
    group.bench_function("status_leader", |b| b.iter(|| black_box(leader.status())));
    group.bench_function("basic_status", |b| {
        b.iter(|| black_box(leader.basic_status()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = leader_propose, follower_append, heartbeat_response, idle_node, quorum, creation,
        status
}
criterion_main!(benches);
