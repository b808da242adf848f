//! The workloads of `shared/bench/WORKLOADS.md`, written once against [`Lib`] so both libraries
//! run the same code: W1 `replicate`, W2 `step-heartbeat`, W2b `step-hb-resp`, W2c `step-hb-resp-plain`, W3 `idle-groups`,
//! W4 `election`, and the data-movement floor under W1.

use crate::common::{expected_hash, hash_data, payload, Lib, Role, Settings, HASH_SEED};
use std::time::{Duration, Instant};

/// One measured figure: a `RESULT` line's name, value and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// `<workload>[.<metric>]`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// The unit.
    pub unit: &'static str,
}

impl Figure {
    /// A figure.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
        }
    }
}

/// What one run of a workload produced: its figures and a line of diagnostics (message counts and
/// the like, for comparing what the two libraries did).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The measured figures.
    pub figures: Vec<Figure>,
    /// Diagnostics, human-readable.
    pub diagnostics: String,
}

/// Message and iteration counters of a [`Cluster`]'s pump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// Messages delivered.
    pub messages: u64,
    /// Pump iterations, counting the last one that finds nothing to do (as WORKLOADS.md counts:
    /// electing node 1 takes 7).
    pub iterations: u64,
}

/// Three nodes (ids 1, 2, 3) and the FIFO queue of messages between them.
pub struct Cluster<L: Lib> {
    /// Nodes 1, 2, 3 at positions 0, 1, 2.
    pub nodes: Vec<L::Node>,
    queue: Vec<L::Msg>,
    batch: Vec<L::Msg>,
    /// Counters of everything pumped so far.
    pub stats: PumpStats,
}

impl<L: Lib> Cluster<L> {
    /// Nodes 1, 2, 3, each on its own fresh storage.
    pub fn new(settings: Settings) -> Cluster<L> {
        Cluster {
            nodes: (1..=3).map(|id| L::new_node(id, settings)).collect(),
            queue: Vec::new(),
            batch: Vec::new(),
            stats: PumpStats::default(),
        }
    }

    /// Pumps to quiescence: handle one Ready of nodes 1, 2, 3 in that order (sent messages go to
    /// the back of the queue); stop when the queue is empty and no node has a Ready; otherwise
    /// deliver every message now queued, in FIFO order, and repeat.
    pub fn pump(&mut self) {
        loop {
            self.stats.iterations += 1;
            for node in self.nodes.iter_mut() {
                L::handle_ready(node, &mut self.queue);
            }
            if self.queue.is_empty() && !self.nodes.iter().any(L::has_ready) {
                return;
            }
            self.stats.messages += self.queue.len() as u64;
            std::mem::swap(&mut self.queue, &mut self.batch);
            for m in self.batch.drain(..) {
                let to = L::msg_to(&m);
                L::step(&mut self.nodes[(to - 1) as usize], m);
            }
        }
    }

    /// Elects node 1: `campaign()`, pump to quiescence, and check that node 1 leads, every node
    /// follows it, and every node applied up to the leader's last index (its empty entry).
    pub fn elect_node_1(&mut self) {
        L::campaign(&mut self.nodes[0]);
        self.pump();
        assert!(
            L::is_leader(&self.nodes[0]),
            "{}: node 1 did not win",
            L::NAME
        );
        let last = L::last_index(&self.nodes[0]);
        for node in &self.nodes {
            assert_eq!(
                L::leader_id(node),
                1,
                "{}: a node does not follow 1",
                L::NAME
            );
            assert_eq!(
                L::app(node).last_applied,
                last,
                "{}: a node did not apply the leader's empty entry",
                L::NAME
            );
        }
    }
}

impl<L: Lib> Cluster<L> {
    /// The heartbeat responses followers 2 and 3 send, in that order, to one heartbeat broadcast
    /// of leader 1: node 1 ticks once (`heartbeat_tick = 1`), its Ready's heartbeats are stepped
    /// into the followers, and what the followers' Readys send is returned instead of delivered.
    pub fn echoed_heartbeat_responses(&mut self) -> Vec<L::Msg> {
        L::tick(&mut self.nodes[0]);
        L::handle_ready(&mut self.nodes[0], &mut self.queue);
        std::mem::swap(&mut self.queue, &mut self.batch);
        for m in self.batch.drain(..) {
            let to = L::msg_to(&m);
            assert!(to == 2 || to == 3, "{}: leader sent to {to}", L::NAME);
            L::step(&mut self.nodes[(to - 1) as usize], m);
        }
        let mut responses = Vec::new();
        for node in &mut self.nodes[1..] {
            L::handle_ready(node, &mut responses);
        }
        responses.sort_by_key(L::msg_from);
        assert!(
            responses.len() == 2
                && responses.iter().all(L::is_heartbeat_response)
                && L::msg_from(&responses[0]) == 2
                && L::msg_from(&responses[1]) == 3,
            "{}: expected one heartbeat response from each follower",
            L::NAME
        );
        responses
    }
}

/// Sizes of W1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicateParams {
    /// Proposals.
    pub n: u64,
    /// Proposals per batch (between two pumps).
    pub b: u64,
    /// Payload bytes.
    pub p: usize,
    /// `batch_append`.
    pub batch_append: bool,
}

/// W1 `replicate`: 3 voters, node 1 leads; `n` proposals of `p` bytes in batches of `b`, each batch
/// pumped to quiescence and checked applied on every node; throughput of the whole loop. The
/// figures are named `name` and `name.total_time`.
pub fn replicate<L: Lib>(params: ReplicateParams, name: &str) -> Outcome {
    let ReplicateParams {
        n,
        b,
        p,
        batch_append,
    } = params;
    let mut c = Cluster::<L>::new(Settings {
        batch_append,
        ..Settings::COMMON
    });
    c.elect_node_1();
    let before = c.stats;

    let start = Instant::now();
    let mut seq = 0;
    while seq < n {
        let end = (seq + b).min(n);
        for s in seq..end {
            L::propose(&mut c.nodes[0], payload(s, p));
        }
        c.pump();
        for node in &c.nodes {
            assert_eq!(L::app(node).applied, end, "{}: batch not applied", L::NAME);
        }
        seq = end;
    }
    let secs = start.elapsed().as_secs_f64();

    let expected = expected_hash(n, p);
    let last = L::last_index(&c.nodes[0]);
    for node in &c.nodes {
        let app = L::app(node);
        let s = L::inspect(node);
        assert_eq!(app.applied, n, "{}: proposals applied", L::NAME);
        assert_eq!(app.last_applied, last, "{}: last applied index", L::NAME);
        assert_eq!(app.hash, expected, "{}: rolling hash", L::NAME);
        assert_eq!(s.committed, last, "{}: raft's committed", L::NAME);
        assert_eq!(s.applied, last, "{}: raft's applied", L::NAME);
        assert_eq!(s.stored_commit, last, "{}: stored commit", L::NAME);
    }
    let messages = c.stats.messages - before.messages;
    let iterations = c.stats.iterations - before.iterations;
    let batches = n.div_ceil(b).max(1);
    drop(c);
    Outcome {
        figures: vec![
            Figure::new(name, n as f64 / secs, "entries/s"),
            Figure::new(format!("{name}.total_time"), secs, "s"),
        ],
        diagnostics: format!(
            "{messages} messages ({:.3} per proposal), {:.2} pump iterations per batch, last index {last}",
            messages as f64 / n as f64,
            iterations as f64 / batches as f64,
        ),
    }
}

/// W2 `step-heartbeat`: a lone follower (id 2) steps `n` 1-entry `MsgAppend`s in chunks of `k`,
/// handling one Ready per chunk; the outgoing acknowledgements are counted and dropped.
pub fn follower_append<L: Lib>(n: u64, k: u64, p: usize) -> Outcome {
    let mut node = L::new_node(2, Settings::COMMON);
    let mut chunk = Vec::with_capacity(k as usize);
    let mut out = Vec::new();
    let mut timed = Duration::ZERO;
    let (mut responses, mut last_ack, mut rejects, mut chunks) = (0u64, 0u64, 0u64, 0u64);
    let mut i = 1;
    while i <= n {
        let end = (i + k - 1).min(n);
        chunk.extend((i..=end).map(|i| L::w2_append(i, p)));
        let start = Instant::now();
        for m in chunk.drain(..) {
            L::step(&mut node, m);
        }
        L::handle_ready(&mut node, &mut out);
        let mut in_chunk = 0;
        for m in out.drain(..) {
            in_chunk += 1;
            if let Some(ack) = L::append_ack(&m) {
                rejects += u64::from(ack.reject);
                last_ack = ack.index;
            }
        }
        timed += start.elapsed();
        assert!(in_chunk > 0, "{}: no response to a chunk", L::NAME);
        responses += in_chunk;
        chunks += 1;
        i = end + 1;
    }
    let s = L::inspect(&node);
    assert_eq!(s.last_index, n, "{}: last index", L::NAME);
    assert_eq!(s.persisted, n, "{}: persisted index", L::NAME);
    assert_eq!(s.stored_last_index, n, "{}: stored last index", L::NAME);
    assert_eq!(s.stored_term, 1, "{}: stored term", L::NAME);
    assert_eq!(last_ack, n, "{}: last acknowledgement", L::NAME);
    assert_eq!(rejects, 0, "{}: rejections", L::NAME);
    assert_eq!(s.role, Role::Follower, "{}: role", L::NAME);
    assert_eq!(s.leader_id, 1, "{}: leader", L::NAME);
    Outcome {
        figures: vec![Figure::new(
            "step-heartbeat",
            timed.as_nanos() as f64 / n as f64,
            "ns/step",
        )],
        diagnostics: format!(
            "{responses} responses ({:.2} per chunk of {k})",
            responses as f64 / chunks as f64
        ),
    }
}

/// How a heartbeat-response workload handles the leader's Ready after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyLoop {
    /// W2b: handle one Ready only if `has_ready()`; messages go to one reused `Vec`.
    IfReady,
    /// W2c, the plain scheduled loop: `ready()` and `advance()` after every chunk whether or not
    /// anything is pending, its messages going to a fresh `Vec` each time.
    Always,
}

/// Which heartbeat responses a heartbeat-response workload steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responses {
    /// W2b: built by the harness, `{from, to: 1, term, commit}` and no context.
    Built,
    /// W2c: copies of what followers 2 and 3 really answered to one heartbeat of the leader
    /// (see [`Cluster::echoed_heartbeat_responses`]), context included.
    Echoed,
}

/// W2b `step-hb-resp` (built responses, [`ReadyLoop::IfReady`]) and W2c `step-hb-resp-plain`
/// (echoed responses, [`ReadyLoop::Always`]): the leader of an up-to-date 3-voter group steps `n`
/// heartbeat responses (alternately from 2 and 3) in chunks of `k`, handling a Ready of its own
/// per chunk. The figures are `name` (total time per step) and `name.chunk_median` (the median
/// over chunks of a chunk's time per step).
pub fn heartbeat_responses<L: Lib>(
    n: u64,
    k: u64,
    responses: Responses,
    style: ReadyLoop,
    name: &str,
) -> Outcome {
    let mut c = Cluster::<L>::new(Settings::COMMON);
    c.elect_node_1();
    let s = L::inspect(&c.nodes[0]);
    let (term, commit) = (s.term, s.committed);
    let echoed = match responses {
        Responses::Built => Vec::new(),
        Responses::Echoed => c.echoed_heartbeat_responses(),
    };
    let response = |i: u64| match responses {
        Responses::Built => L::heartbeat_response(2 + i % 2, term, commit),
        Responses::Echoed => echoed[(i % 2) as usize].clone(),
    };
    let leader = &mut c.nodes[0];
    let mut chunk = Vec::with_capacity(k as usize);
    let mut reused = Vec::new();
    let mut timed = Duration::ZERO;
    // Each chunk's time per step: their median is not moved by the few chunks another process
    // preempted, which on a shared machine inflate the total of the faster library the most.
    let mut per_step = Vec::with_capacity(n.div_ceil(k) as usize);
    let mut sent = 0u64;
    let mut i = 0;
    while i < n {
        let end = (i + k).min(n);
        chunk.extend((i..end).map(response));
        let start = Instant::now();
        for m in chunk.drain(..) {
            L::step(leader, m);
        }
        match style {
            ReadyLoop::IfReady => {
                L::handle_ready(leader, &mut reused);
                sent += reused.len() as u64;
                reused.clear();
            }
            ReadyLoop::Always => {
                let mut out = Vec::new();
                L::handle_ready_unconditionally(leader, &mut out);
                sent += out.len() as u64;
            }
        }
        let elapsed = start.elapsed();
        timed += elapsed;
        per_step.push(elapsed.as_nanos() as f64 / (end - i) as f64);
        i = end;
    }
    assert!(L::is_leader(leader), "{}: node 1 lost leadership", L::NAME);
    per_step.sort_by(f64::total_cmp);
    Outcome {
        figures: vec![
            Figure::new(name, timed.as_nanos() as f64 / n as f64, "ns/step"),
            Figure::new(
                format!("{name}.chunk_median"),
                per_step[per_step.len() / 2],
                "ns/step",
            ),
        ],
        diagnostics: format!(
            "{sent} messages sent by the leader (expected 0); size_of Message = {} bytes",
            L::msg_size()
        ),
    }
}

/// The resident memory of this process in bytes: the 2nd field of `/proc/self/statm` times the
/// page size.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * *PAGE_SIZE
}

/// The page size, read once.
static PAGE_SIZE: std::sync::LazyLock<u64> = std::sync::LazyLock::new(page_size);

/// The page size, from the `KernelPageSize` of the first mapping in `/proc/self/smaps` (4 KiB if
/// that cannot be read).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("KernelPageSize:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

/// W3 `idle-groups`: `g` bare RawNodes (`election_tick = 1000`) in a `Vec` made after the first
/// memory reading; resident bytes per group, then `rounds` timed passes of one `tick()` on every
/// group. Meant to run in a fresh process (see `--w3-child`), so memory freed by earlier workloads
/// cannot hide this one's growth.
pub fn idle_groups<L: Lib>(g: usize, rounds: u32) -> Outcome {
    let settings = Settings {
        election_tick: 1000,
        ..Settings::COMMON
    };
    resident_bytes(); // reads the page size and warms up the file reading before `R0`
    let r0 = resident_bytes();
    let mut groups = Vec::with_capacity(g);
    for _ in 0..g {
        groups.push(L::new_raw(1, settings));
    }
    let r1 = resident_bytes();
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let start = Instant::now();
        for raw in groups.iter_mut() {
            L::tick_raw(raw);
        }
        total += start.elapsed();
    }
    assert!(
        groups.iter().all(L::raw_is_idle_follower),
        "{}: a group is not an idle follower after {rounds} tick rounds",
        L::NAME
    );
    let round_us = total.as_secs_f64() * 1e6 / f64::from(rounds.max(1));
    Outcome {
        figures: vec![
            Figure::new(
                "idle-groups",
                r1.saturating_sub(r0) as f64 / g as f64,
                "bytes/group",
            ),
            Figure::new("idle-groups.tick_round", round_us, "us"),
            Figure::new(
                "idle-groups.tick_per_group",
                round_us * 1000.0 / g as f64,
                "ns",
            ),
        ],
        diagnostics: format!(
            "{g} groups, size_of RawNode<MemStorage> = {} bytes, resident {} -> {} bytes",
            L::raw_size(),
            r0,
            r1
        ),
    }
}

/// W4 `election`: `c` fresh 3-voter clusters one after another, each created, elected (node 1
/// campaigns; pump to quiescence; checked) and dropped inside the timing.
pub fn elections<L: Lib>(c: u64) -> Outcome {
    let mut stats = PumpStats::default();
    let start = Instant::now();
    for _ in 0..c {
        let mut cluster = Cluster::<L>::new(Settings::COMMON);
        cluster.elect_node_1();
        stats.messages += cluster.stats.messages;
        stats.iterations += cluster.stats.iterations;
    }
    let secs = start.elapsed().as_secs_f64();
    Outcome {
        figures: vec![Figure::new("election", c as f64 / secs, "elections/s")],
        diagnostics: format!(
            "{:.1} messages and {:.1} pump iterations per election",
            stats.messages as f64 / c as f64,
            stats.iterations as f64 / c as f64
        ),
    }
}

/// The data-movement floor under W1 (`shared/bench/floor`, run in the same process): per proposal,
/// build the payload, append an entry to the leader's log, hand a reference to each follower's log,
/// store each log's new entries and apply them on all three nodes; batches of `b`. No protocol.
pub fn floor(n: u64, b: u64, p: usize) -> Outcome {
    #[derive(Clone)]
    struct Entry {
        index: u64,
        data: bytes::Bytes,
    }
    let mut logs: Vec<Vec<Entry>> = vec![Vec::new(); 3];
    let mut stores: Vec<Vec<Entry>> = vec![Vec::new(); 3];
    let mut hashes = [HASH_SEED; 3];
    let mut applied = [0u64; 3];
    let start = Instant::now();
    let mut seq = 0;
    while seq < n {
        let end = (seq + b).min(n);
        let first = logs[0].len();
        for s in seq..end {
            logs[0].push(Entry {
                index: s + 1,
                data: bytes::Bytes::from(payload(s, p)),
            });
        }
        // One append message per follower.
        let batch: Vec<Entry> = logs[0][first..].to_vec();
        for log in &mut logs[1..] {
            log.extend(batch.iter().cloned());
        }
        for node in 0..3 {
            stores[node].extend(logs[node][first..].iter().cloned());
            for e in &logs[node][first..] {
                assert_eq!(e.index, applied[node] + 1);
                applied[node] = e.index;
                hashes[node] = hash_data(hashes[node], &e.data);
            }
        }
        seq = end;
    }
    let secs = start.elapsed().as_secs_f64();
    let expected = expected_hash(n, p);
    assert!(
        hashes.iter().all(|h| *h == expected) && applied.iter().all(|a| *a == n),
        "floor: wrong outcome"
    );
    drop((logs, stores));
    Outcome {
        figures: vec![Figure::new("replicate", n as f64 / secs, "entries/s")],
        diagnostics: String::new(),
    }
}
