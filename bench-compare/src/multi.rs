//! W5 `multi-idle` and W6 `multi-busy` (WORKLOADS.md): many groups per node, written once
//! against [`MultiNode`] so both libraries run the same harness. Ours is driven through
//! `raft-multi` (quiescence, one envelope per destination per flush, one Ready batch per node);
//! raft-rs through its `RawNode`s, one message per group on the wire, as a raft-rs application
//! without a multi-raft layer of its own sends them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::payload;
use crate::workloads::{resident_bytes, Figure, Outcome};

/// Every tick round of W5, this share of the groups proposes (1 in 100: 1 %).
pub const W5_BUSY_EVERY: u64 = 100;
/// W5 creates and elects its groups in batches of this many, each settled before the next
/// (groups come into being over time; electing a million at once would measure the allocator's
/// fragmentation by a million simultaneous elections rather than what a group keeps).
pub const W5_BATCH: u64 = 1000;
/// Ticks for each new batch of W5 after its election: enough for an idle leader of ours to
/// quiesce (`MultiConfig::quiesce_after_idle_ticks` = 10).
pub const W5_SETTLE_TICKS: u32 = 15;
/// W5's untimed tick rounds of the whole node before memory is read.
pub const W5_WARMUP_ROUNDS: u32 = 10;
/// Payload bytes of W5's and W6's proposals.
pub const MULTI_PAYLOAD: usize = 128;

/// One node holding groups `1..=groups` (voters 1, 2, 3, common configuration), as one
/// library's multi-group application sees it.
pub trait MultiNode: Sized {
    /// The name in `RESULT` lines.
    const NAME: &'static str;
    /// What goes on the wire as one unit: an envelope (ours) or one group's message (raft-rs).
    type Unit;

    /// Node `node_id` without groups.
    fn new(node_id: u64) -> Self;
    /// Adds the groups `range` (voters 1, 2, 3, fresh storage).
    fn add_groups(&mut self, range: std::ops::Range<u64>);
    /// One tick for the groups of `range`, just created and elected (ours: `MultiRaft::tick`,
    /// which ticks the awake groups: the others sleep already).
    fn tick_new(&mut self, range: std::ops::Range<u64>);
    /// `campaign()` in the group.
    fn campaign(&mut self, group: u64);
    /// `propose(data)` in the group (this node leads it).
    fn propose(&mut self, group: u64, data: Vec<u8>);
    /// One tick for the node: every group that needs one.
    fn tick(&mut self);
    /// Handles every Ready (persist into the group's MemStorage, apply, advance) and pushes
    /// what goes on the wire onto `out`.
    fn process(&mut self, out: &mut Vec<Self::Unit>);
    /// The node a unit goes to.
    fn unit_to(unit: &Self::Unit) -> u64;
    /// The Raft messages a unit carries.
    fn unit_messages(unit: &Self::Unit) -> usize;
    /// Receives a unit.
    fn deliver(&mut self, unit: Self::Unit);
    /// W5's stand-ins for nodes 2 and 3: what a caught-up follower answers (append and
    /// heartbeat acknowledgements, granted votes; ours: nothing to a quiescing heartbeat,
    /// since our follower sleeps without answering).
    fn answer(unit: Self::Unit) -> Option<Self::Unit>;
    /// Whether this node leads the group.
    fn leads(&self, group: u64) -> bool;
    /// (last index, commit index, applied index) of the group here.
    fn indexes(&self, group: u64) -> (u64, u64, u64);
    /// Groups asleep here (raft-rs: none).
    fn quiesced(&self) -> usize;
}

/// W5: handles node 1's Readys and answers for nodes 2 and 3 until nothing moves. Returns
/// (units, messages) node 1 sent.
fn pump_w5<N: MultiNode>(node: &mut N, out: &mut Vec<N::Unit>) -> (u64, u64) {
    let (mut units, mut messages) = (0, 0);
    loop {
        node.process(out);
        if out.is_empty() {
            return (units, messages);
        }
        units += out.len() as u64;
        for unit in out.drain(..) {
            messages += N::unit_messages(&unit) as u64;
            if let Some(answer) = N::answer(unit) {
                node.deliver(answer);
            }
        }
    }
}

/// W5 `multi-idle`: node 1 leads `groups` groups whose followers (nodes 2 and 3) answer as
/// caught-up followers; after warm-up, 1 % of the groups propose once per tick round.
pub fn multi_idle<N: MultiNode>(groups: u64, rounds: u32) -> Outcome {
    resident_bytes();
    let r0 = resident_bytes();
    let mut node = N::new(1);
    let mut out = Vec::new();
    for first in (1..=groups).step_by(W5_BATCH as usize) {
        let batch = first..(first + W5_BATCH).min(groups + 1);
        node.add_groups(batch.clone());
        for group in batch.clone() {
            node.campaign(group);
        }
        pump_w5(&mut node, &mut out);
        for _ in 0..W5_SETTLE_TICKS {
            node.tick_new(batch.clone());
            pump_w5(&mut node, &mut out);
        }
    }
    assert!(
        (1..=groups).all(|g| node.leads(g)),
        "{}: node 1 leads every group",
        N::NAME
    );
    for _ in 0..W5_WARMUP_ROUNDS {
        node.tick();
        pump_w5(&mut node, &mut out);
    }
    let r1 = resident_bytes();
    let quiesced = node.quiesced();

    let busy: Vec<u64> = (1..=groups).filter(|g| g % W5_BUSY_EVERY == 0).collect();
    let before: Vec<u64> = busy.iter().map(|g| node.indexes(*g).0).collect();
    let (mut tick_time, mut round_time) = (Duration::ZERO, Duration::ZERO);
    let (mut units, mut messages) = (0, 0);
    let mut seq = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        for group in &busy {
            node.propose(*group, payload(seq, MULTI_PAYLOAD));
            seq += 1;
        }
        let tick_start = Instant::now();
        node.tick();
        tick_time += tick_start.elapsed();
        let (u, m) = pump_w5(&mut node, &mut out);
        round_time += start.elapsed();
        units += u;
        messages += m;
    }
    for (group, last_before) in busy.iter().zip(before) {
        let (last, committed, applied) = node.indexes(*group);
        assert!(
            last >= last_before + u64::from(rounds) && committed == last && applied == last,
            "{}: busy group {group} did not commit and apply its proposals",
            N::NAME
        );
    }
    let rounds_f = f64::from(rounds.max(1));
    Outcome {
        figures: vec![
            Figure::new(
                "multi-idle",
                r1.saturating_sub(r0) as f64 / groups as f64,
                "bytes/group",
            ),
            Figure::new(
                "multi-idle.tick_pass",
                tick_time.as_secs_f64() * 1e6 / rounds_f,
                "us",
            ),
            Figure::new(
                "multi-idle.round",
                round_time.as_secs_f64() * 1e6 / rounds_f,
                "us",
            ),
            Figure::new("multi-idle.messages", messages as f64 / rounds_f, "msgs"),
        ],
        diagnostics: format!(
            "{groups} groups, {} busy; {quiesced} asleep after warm-up; per round {:.1} units \
             on the wire carrying {:.1} messages; resident {r0} -> {r1} bytes",
            busy.len(),
            units as f64 / rounds_f,
            messages as f64 / rounds_f,
        ),
    }
}

/// W6's three nodes and their wire.
struct Cluster<N: MultiNode> {
    nodes: Vec<N>,
    out: Vec<N::Unit>,
    /// (from, to) -> (flushes that sent that pair anything, units, messages).
    pairs: BTreeMap<(u64, u64), (u64, u64, u64)>,
}

impl<N: MultiNode> Cluster<N> {
    /// Every node processes and its units are delivered, until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for from in 0..self.nodes.len() {
                self.nodes[from].process(&mut self.out);
                let mut per_pair: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
                for unit in self.out.drain(..) {
                    moved = true;
                    let to = N::unit_to(&unit);
                    let pair = per_pair.entry(to).or_default();
                    pair.0 += 1;
                    pair.1 += N::unit_messages(&unit) as u64;
                    self.nodes[to as usize - 1].deliver(unit);
                }
                for (to, (units, messages)) in per_pair {
                    let stats = self.pairs.entry((from as u64 + 1, to)).or_default();
                    stats.0 += 1;
                    stats.1 += units;
                    stats.2 += messages;
                }
            }
            if !moved {
                return;
            }
        }
    }
}

/// W6 `multi-busy`: three nodes with `groups` groups each, leaders spread evenly; every tick
/// round each group proposes once on its leader, every node ticks, and the cluster is pumped
/// until nothing moves.
pub fn multi_busy<N: MultiNode>(groups: u64, rounds: u32) -> Outcome {
    let mut cluster = Cluster {
        nodes: (1..=3)
            .map(|id| {
                let mut node = N::new(id);
                node.add_groups(1..groups + 1);
                node
            })
            .collect(),
        out: Vec::new(),
        pairs: BTreeMap::new(),
    };
    let leader_of = |group: u64| (group % 3) as usize;
    for group in 1..=groups {
        cluster.nodes[leader_of(group)].campaign(group);
    }
    cluster.pump();
    for group in 1..=groups {
        assert!(
            cluster.nodes[leader_of(group)].leads(group),
            "{}: group {group} elected its leader",
            N::NAME
        );
    }
    let before: Vec<u64> = (1..=groups)
        .map(|g| cluster.nodes[leader_of(g)].indexes(g).0)
        .collect();
    cluster.pairs.clear();
    let mut seq = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        for group in 1..=groups {
            cluster.nodes[leader_of(group)].propose(group, payload(seq, MULTI_PAYLOAD));
            seq += 1;
        }
        for node in &mut cluster.nodes {
            node.tick();
        }
        cluster.pump();
    }
    let secs = start.elapsed().as_secs_f64();
    for group in 1..=groups {
        let expected = before[group as usize - 1] + u64::from(rounds);
        for node in &cluster.nodes {
            let (last, committed, applied) = node.indexes(group);
            assert!(
                last >= expected && committed == last && applied == last,
                "{}: group {group} did not commit and apply everywhere",
                N::NAME
            );
        }
    }
    let (flushes, units, messages) = cluster
        .pairs
        .values()
        .fold((0, 0, 0), |acc, p| (acc.0 + p.0, acc.1 + p.1, acc.2 + p.2));
    let rounds_f = f64::from(rounds.max(1));
    Outcome {
        figures: vec![
            Figure::new(
                "multi-busy",
                (groups * u64::from(rounds)) as f64 / secs,
                "entries/s",
            ),
            Figure::new(
                "multi-busy.units_per_pair_flush",
                units as f64 / flushes.max(1) as f64,
                "units",
            ),
        ],
        diagnostics: format!(
            "{groups} groups x 3 nodes; per round {:.0} units on the wire carrying {:.0} \
             messages; {:.1} messages per unit",
            units as f64 / rounds_f,
            messages as f64 / rounds_f,
            messages as f64 / units.max(1) as f64,
        ),
    }
}
