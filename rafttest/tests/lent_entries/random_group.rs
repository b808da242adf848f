//! The randomized group run: three real nodes persisting asynchronously over a lossy, reordering,
//! duplicating network, with State Machine Safety, Log Matching and commit durability checked
//! after every step.

use std::collections::HashMap;

use bytes::Bytes;
use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::{StateRole, Storage};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use storage_mem::MemStorage;

use crate::async_node::{random_limits, Node};
use crate::common::entry_ids;
use crate::fixtures::{config, HOLDS};

/// A group of three real nodes, each persisting asynchronously (see [`Node`]), over a network that
/// delays, reorders, duplicates and drops messages.
struct Group {
    nodes: Vec<Node>,
    /// Messages in flight.
    net: Vec<Message>,
    /// The first entry handed out for applying at each index, by any node.
    applied: HashMap<u64, Entry>,
    /// Every entry seen in any node's log, by (index, term).
    seen: HashMap<(u64, u64), Entry>,
    /// How many of each node's handed-out entries were checked.
    checked: Vec<usize>,
    /// The (term, commit index) each node last had while leading.
    led: Vec<(u64, u64)>,
    proposals: u64,
}

impl Group {
    fn new(cache: u64, page: u64) -> Group {
        let nodes = (1..=3)
            .map(|id| {
                let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
                Node::start(config(id, cache, page), storage)
            })
            .collect();
        Group {
            nodes,
            net: Vec::new(),
            applied: HashMap::new(),
            seen: HashMap::new(),
            checked: vec![0; 3],
            led: vec![(0, 0); 3],
            proposals: 0,
        }
    }

    fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn collect(&mut self) {
        for n in &mut self.nodes {
            self.net.append(&mut n.outbox);
        }
    }

    fn deliver(&mut self, m: Message) {
        let (from, to, is_snapshot) = (m.from, m.to, m.msg_type() == MessageType::MsgSnapshot);
        let what = format!(
            "recv {:?} from {from} t{} idx {} {:?} commit {}",
            m.msg_type(),
            m.term,
            m.index,
            entry_ids(&m.entries),
            m.commit
        );
        let node = self.node(to);
        node.note(what);
        // Refusals of impossible input are allowed; the checks below catch any damage.
        let _ = node.raw.step(m);
        if is_snapshot {
            self.node(from)
                .raw
                .report_snapshot(to, raft_core::SnapshotStatus::Finish);
        }
    }

    fn step(&mut self, rng: &mut Xoshiro256PlusPlus) {
        let id = rng.random_range(1..=3u64);
        match rng.random_range(0..100) {
            0..=7 => {
                // Mostly to the leader (a follower forwards, and forwarded proposals get lost).
                let leader = self
                    .nodes
                    .iter()
                    .find(|n| n.raw.raft.state == StateRole::Leader)
                    .map(|n| n.id);
                let id = match leader {
                    Some(l) if rng.random_bool(0.8) => l,
                    _ => id,
                };
                for _ in 0..rng.random_range(1..=3) {
                    self.proposals += 1;
                    let mut data = format!("p{}", self.proposals).into_bytes();
                    data.resize(data.len() + rng.random_range(0..6usize), b'.');
                    let _ = self.node(id).raw.propose(vec![], data);
                }
            }
            8..=42 => {
                for _ in 0..rng.random_range(1..=6) {
                    if self.net.is_empty() {
                        break;
                    }
                    let k = rng.random_range(0..self.net.len());
                    let m = if rng.random_bool(0.05) {
                        self.net[k].clone()
                    } else {
                        self.net.swap_remove(k)
                    };
                    if rng.random_bool(0.04) {
                        if m.msg_type() == MessageType::MsgSnapshot {
                            self.node(m.from)
                                .raw
                                .report_snapshot(m.to, raft_core::SnapshotStatus::Failure);
                        }
                        continue;
                    }
                    self.deliver(m);
                }
            }
            43..=45 => {
                self.node(id).raw.tick();
            }
            46..=51 => {
                // Heartbeats: a leader's tick.
                if let Some(n) = self
                    .nodes
                    .iter_mut()
                    .find(|n| n.raw.raft.state == StateRole::Leader)
                {
                    n.raw.tick();
                }
            }
            52 => {
                if rng.random_bool(0.5) {
                    let _ = self.node(id).raw.campaign();
                }
            }
            53..=72 => {
                let node = self.node(id);
                if node.has_ready() {
                    node.take_ready(HOLDS[rng.random_range(0..HOLDS.len())]);
                }
            }
            73..=90 => {
                let node = self.node(id);
                if !node.unwritten.is_empty() {
                    let k = rng.random_range(1..=node.unwritten.len());
                    node.write(k, &mut |_, _| {});
                }
                if rng.random_bool(0.7) {
                    node.report(rng.random_range(0..4));
                }
            }
            91..=94 => self.node(id).apply_report(),
            95..=96 => {
                // Compaction: snapshot the state machine and drop the log it covers.
                let node = self.node(id);
                let last = node.storage.last_index().expect("last index");
                let mut s = node.storage.wl();
                let index = node.sm_applied.min(s.hard_state().commit).min(last);
                if index > s.snapshot_metadata().index + 2 {
                    s.create_snapshot(index, None, Bytes::new())
                        .expect("create snapshot");
                    s.compact(index).expect("compact");
                }
            }
            97 => self.node(id).restart(),
            _ => self.node(id).report(rng.random_range(0..4)),
        }
        self.collect();
    }

    fn check(&mut self, seed: u64) {
        for k in 0..3 {
            let node = &self.nodes[k];
            for e in &node.applied_log[self.checked[k]..] {
                let first = self.applied.entry(e.index).or_insert_with(|| e.clone());
                assert_eq!(
                    first,
                    e,
                    "seed {seed}: node {} applied {:?} at {}, another node applied {:?} (State \
                     Machine Safety); trace:\n  {}",
                    node.id,
                    (e.index, e.term),
                    e.index,
                    (first.index, first.term),
                    node.trace()
                );
            }
            self.checked[k] = node.applied_log.len();
            for e in node.check_log() {
                let seen = self
                    .seen
                    .entry((e.index, e.term))
                    .or_insert_with(|| e.clone());
                assert_eq!(
                    *seen,
                    e,
                    "seed {seed}: two different entries at {:?} (Log Matching)",
                    (e.index, e.term)
                );
            }
            let raft = &node.raw.raft;
            if raft.state == StateRole::Leader {
                let c = raft.raft_log.committed;
                if (raft.term, c) > self.led[k] && c > self.led[k].1.max(1) {
                    let term_c = raft.raft_log.term(c).expect("term of the commit index");
                    let holders = self
                        .nodes
                        .iter()
                        .filter(|n| {
                            let first = n.storage.first_index().expect("first");
                            c + 1 < first || n.storage.term(c).ok() == Some(term_c)
                        })
                        .count();
                    assert!(
                        holders >= 2,
                        "seed {seed}: leader {} committed {c} (term {term_c}) but only {holders} \
                         node(s) store it; trace:\n  {}",
                        node.id,
                        node.trace()
                    );
                }
                self.led[k] = (raft.term, c);
            }
        }
    }
}

/// Runs one seed of the randomized group (see the test below).
fn group_run(seed: u64, steps: usize) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (cache, page) = random_limits(&mut rng);
    let mut g = Group::new(cache, page);
    let _ = g.node(1).raw.campaign();
    g.collect();
    for _ in 0..steps {
        g.step(&mut rng);
        g.check(seed);
    }
    // Heal: deliver everything, persist everything, tick until every node applied the same.
    for round in 0..400 {
        while !g.net.is_empty() {
            let m = g.net.remove(0);
            g.deliver(m);
        }
        for k in 0..3 {
            let node = &mut g.nodes[k];
            while node.has_ready() {
                node.take_ready(HOLDS[rng.random_range(0..HOLDS.len())]);
            }
            node.write(usize::MAX, &mut |_, _| {});
            node.report(rng.random_range(0..4));
            node.apply_report();
            if round % 3 == 0 {
                node.raw.tick();
            }
        }
        g.collect();
        g.check(seed);
        let done = g
            .nodes
            .iter()
            .any(|n| n.raw.raft.state == StateRole::Leader)
            && g.nodes
                .iter()
                .all(|n| n.handed_out == g.nodes[0].handed_out)
            && g.nodes
                .iter()
                .all(|n| n.raw.raft.raft_log.committed == n.raw.raft.raft_log.last_index());
        if done {
            return;
        }
    }
    panic!(
        "seed {seed}: the healed group never converged: handed out {:?}, committed {:?}",
        g.nodes.iter().map(|n| n.handed_out).collect::<Vec<_>>(),
        g.nodes
            .iter()
            .map(|n| n.raw.raft.raft_log.committed)
            .collect::<Vec<_>>()
    );
}

/// Three real nodes persisting asynchronously (random pipelining depth and handle modes, late
/// reports, crashes that lose unwritten Readys, compaction and snapshots) over a lossy,
/// reordering, duplicating network, with elections on timeouts. After every step: no two nodes
/// apply different entries at an index and none applies an index twice or skips one, the logs
/// agree on every (index, term), each node's log reads consistently and what it counts durable is
/// in its storage, and every index a leader commits is stored by a quorum (§5.4, commit
/// durability with async writes). At the end the healed group converges.
#[test]
fn random_async_group_applies_each_entry_once_and_commits_only_stored_entries() {
    for seed in 0..24 {
        group_run(seed, 1000);
    }
}
