//! The randomized follower run: node 2 under a sequence of fake leaders of rising terms that
//! replace each other's uncommitted entries at random places of its lent, persisted and cached
//! entries, with every invariant checked after each step.

use std::collections::HashMap;

use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::{Storage, NO_LIMIT};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use storage_mem::MemStorage;

use crate::async_node::{random_limits, Node};
use crate::common::{ent_data, entry_ids};
use crate::fixtures::{append, config, snapshot_msg, HOLDS};

/// The leaders node 2 follows in the randomized follower run, one per term (alternately nodes 1
/// and 3). A new leader keeps the committed prefix and some of its predecessor's uncommitted
/// entries and drops the rest (§5.4.1: it holds every committed entry), so node 2 sees conflicts
/// at random places of its lent, persisted and cached entries.
struct Leaders {
    term: u64,
    leader: u64,
    /// The current leader's log: `log[i]` is the entry at index `i + 1`; `log[0]` is the bootstrap
    /// point (1, 1).
    log: Vec<Entry>,
    committed: u64,
    /// Each term's leader's log, as terms by index (`[i - 1]` is index `i`): append-only.
    term_logs: HashMap<u64, Vec<u64>>,
    /// Every entry any leader made, by (index, term).
    made: HashMap<(u64, u64), Entry>,
    made_count: u64,
}

impl Leaders {
    fn new() -> Leaders {
        let mut leaders = Leaders {
            term: 1,
            leader: 3,
            log: vec![ent_data(1, 1, b"")],
            committed: 1,
            term_logs: HashMap::new(),
            made: HashMap::new(),
            made_count: 0,
        };
        leaders.made.insert((1, 1), ent_data(1, 1, b""));
        leaders.new_term(1);
        leaders
    }

    fn last(&self) -> u64 {
        self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> u64 {
        self.log[(index - 1) as usize].term
    }

    fn push(&mut self, data: Vec<u8>) {
        let e = ent_data(self.last() + 1, self.term, &data);
        self.made.insert((e.index, e.term), e.clone());
        self.term_logs
            .get_mut(&self.term)
            .expect("this term's log")
            .push(e.term);
        self.log.push(e);
    }

    /// A new leader whose log is the current one up to `keep` (at least the committed prefix),
    /// starting its term with an empty entry.
    fn new_term(&mut self, keep: u64) {
        assert!(keep >= self.committed && keep <= self.last());
        self.log.truncate(keep as usize);
        self.term += 1;
        self.leader = if self.leader == 1 { 3 } else { 1 };
        self.term_logs
            .insert(self.term, self.log.iter().map(|e| e.term).collect());
        self.push(Vec::new());
    }

    fn propose(&mut self, rng: &mut Xoshiro256PlusPlus) {
        for _ in 0..rng.random_range(1..=4) {
            self.made_count += 1;
            let mut data = format!("e{}", self.made_count).into_bytes();
            data.resize(data.len() + rng.random_range(0..8usize), b'.');
            self.push(data);
        }
    }

    /// The highest index at which `node`'s log agrees with the current leader's (its commit index
    /// at least).
    fn match_point(&self, node: &Node) -> u64 {
        let log = &node.raw.raft.raft_log;
        let hi = log.last_index().min(self.last());
        for i in (log.committed..=hi).rev() {
            if log.term(i).ok() == Some(self.term_at(i)) {
                return i;
            }
        }
        panic!(
            "node {}'s committed entry {} is not the leaders' ({:?} vs {})",
            node.id,
            log.committed,
            log.term(log.committed),
            self.term_at(log.committed)
        );
    }

    /// A MsgAppend to node 2 from a point its log matches (or just past it, which is refused),
    /// carrying up to `max` entries and the leader's commit index.
    fn append_to(&self, node: &Node, max: u64, rng: &mut Xoshiro256PlusPlus) -> Message {
        let m = self.match_point(node);
        let committed = node.raw.raft.raft_log.committed;
        let mut prev = rng.random_range(m.saturating_sub(3).max(committed)..=m);
        if m < self.last() && rng.random_bool(0.05) {
            prev = m + 1;
        }
        let hi = prev.saturating_add(max).min(self.last());
        let entries = self.log[prev as usize..hi as usize].to_vec();
        append(
            self.leader,
            self.term,
            (prev, self.term_at(prev)),
            entries,
            self.committed,
        )
    }

    /// Checks a committed entry node 2 handed out: committed by the leaders, and theirs.
    fn check_committed(&self, e: &Entry, node: &Node) {
        assert!(
            e.index <= self.committed && self.log[(e.index - 1) as usize] == *e,
            "node 2 handed out {:?} for applying, but the leaders committed up to {} with {:?} \
             there; trace:\n  {}",
            (e.index, e.term),
            self.committed,
            self.log
                .get((e.index - 1) as usize)
                .map(|l| (l.index, l.term)),
            node.trace()
        );
    }

    /// Checks node 2's acknowledgements as they are released: the entries up to the acknowledged
    /// index are in storage, with the terms of the log of the leader acknowledged. Returns what
    /// is wrong.
    fn check_acks(&self, storage: &MemStorage, msgs: &[Message]) -> Vec<String> {
        let mut wrong = Vec::new();
        for m in msgs {
            if m.msg_type() != MessageType::MsgAppendResponse || m.reject {
                continue;
            }
            let Some(tl) = self.term_logs.get(&m.term) else {
                continue;
            };
            let idx = (m.index - 1) as usize;
            if self.log.get(idx).map(|e| e.term) != tl.get(idx).copied() {
                // A later leader replaced what this acknowledges: its election excluded every
                // node that held those entries (§5.4.1), so term `m.term` can no longer commit
                // them and a stale acknowledgement is harmless (etcd and raft-rs send such
                // acknowledgements too, after the next write).
                continue;
            }
            let last = storage.last_index().expect("last index");
            if last < m.index {
                wrong.push(format!(
                    "node 2 releases an acknowledgement of {} (term {}) while storage holds only \
                     up to {last}",
                    m.index, m.term
                ));
                continue;
            }
            let first = storage.first_index().expect("first index");
            for i in m.index.saturating_sub(6).max(first - 1).max(1)..=m.index {
                if storage.term(i).ok() != tl.get((i - 1) as usize).copied() {
                    wrong.push(format!(
                        "node 2 acknowledges {} to the leader of term {} but stores term {:?} at \
                         {i}, where that leader has {:?}",
                        m.index,
                        m.term,
                        storage.term(i).ok(),
                        tl.get((i - 1) as usize)
                    ));
                }
            }
        }
        wrong
    }

    /// Writes `k` of node 2's Readys, checking the acknowledgements each releases.
    fn write(&self, node: &mut Node, k: usize, seed: u64) {
        let mut wrong = Vec::new();
        node.write(k, &mut |s, msgs| wrong.extend(self.check_acks(s, msgs)));
        assert!(
            wrong.is_empty(),
            "seed {seed}: {}; trace:\n  {}",
            wrong.join("; "),
            node.trace()
        );
    }
}

/// Runs one seed of the randomized follower: node 2 under a sequence of leaders of rising terms
/// that propose, commit, replace each other's uncommitted entries, and send snapshots; node 2
/// pipelines Readys (any depth), holds their entries every way, writes and reports them late,
/// and crashes now and then. Checked after every step: each index is handed out at most once, in
/// order, equal to storage's and to the leaders' committed entry; the log as read agrees with
/// `last_index`/`term`, holds only entries some leader made, and what it counts durable is in
/// storage; acknowledgements leave only for entries stored. At the end everything committed is
/// handed out.
fn follower_run(seed: u64, steps: usize) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (cache, page) = random_limits(&mut rng);
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut node = Node::start(config(2, cache, page), storage);
    let mut leaders = Leaders::new();
    let mut checked = 0;
    for step in 0..steps {
        let r = rng.random_range(0..100);
        match r {
            0..=19 => leaders.propose(&mut rng),
            20..=27 => leaders.committed = rng.random_range(leaders.committed..=leaders.last()),
            28..=51 => {
                let m = leaders.append_to(&node, rng.random_range(0..=6), &mut rng);
                node.note(format!(
                    "step MsgAppend t{} prev ({}, {}) {:?} commit {}",
                    m.term,
                    m.index,
                    m.log_term,
                    entry_ids(&m.entries),
                    m.commit
                ));
                if let Err(e) = node.raw.step(m) {
                    panic!("seed {seed} step {step}: a valid append was refused: {e}");
                }
            }
            52..=55 => {
                let keep = rng.random_range(leaders.committed..=leaders.last());
                leaders.new_term(keep);
            }
            56..=57 if leaders.committed >= 2 => {
                let index = rng.random_range(2..=leaders.committed);
                let m = snapshot_msg(leaders.leader, leaders.term, index, leaders.term_at(index));
                node.note(format!("step MsgSnapshot t{} at {index}", leaders.term));
                node.raw.step(m).expect("snapshot");
            }
            58..=79 => {
                if node.has_ready() {
                    let hold = HOLDS[rng.random_range(0..HOLDS.len())];
                    let (_, snap) = node.take_ready(hold);
                    if let Some((index, term)) = snap {
                        assert!(
                            index <= leaders.committed && leaders.term_at(index) == term,
                            "seed {seed}: node 2 restored a snapshot the leaders did not commit"
                        );
                    }
                }
            }
            80..=93 => {
                if !node.unwritten.is_empty() {
                    let k = rng.random_range(1..=node.unwritten.len());
                    leaders.write(&mut node, k, seed);
                }
                if rng.random_bool(0.7) {
                    node.report(rng.random_range(0..4));
                }
            }
            94..=96 => node.apply_report(),
            97 => node.restart(),
            _ => node.report(rng.random_range(0..4)),
        }
        node.outbox.clear();
        follower_checks(&node, &leaders, &mut checked);
    }

    // Drain: the leader commits everything and replicates it; node 2 must hand it all out.
    leaders.committed = leaders.last();
    for _ in 0..100 {
        if node.handed_out >= leaders.committed {
            break;
        }
        let m = leaders.append_to(&node, NO_LIMIT, &mut rng);
        node.raw.step(m).expect("append");
        while node.has_ready() {
            let hold = HOLDS[rng.random_range(0..HOLDS.len())];
            node.take_ready(hold);
        }
        leaders.write(&mut node, usize::MAX, seed);
        node.report(rng.random_range(0..4));
        node.apply_report();
        node.outbox.clear();
        follower_checks(&node, &leaders, &mut checked);
    }
    assert_eq!(
        node.handed_out,
        leaders.committed,
        "seed {seed}: node 2 never handed out everything committed; trace:\n  {}",
        node.trace()
    );
}

fn follower_checks(node: &Node, leaders: &Leaders, checked: &mut usize) {
    for e in &node.applied_log[*checked..] {
        leaders.check_committed(e, node);
    }
    *checked = node.applied_log.len();
    let view = node.check_log();
    let log = &node.raw.raft.raft_log;
    for e in &view {
        assert_eq!(
            leaders.made.get(&(e.index, e.term)),
            Some(e),
            "node 2's log holds {:?}, which no leader made (Log Matching); trace:\n  {}",
            (e.index, e.term),
            node.trace()
        );
        if e.index <= log.committed {
            leaders.check_committed(e, node);
        }
    }
}

/// The randomized follower run over 60 seeds (see `follower_run`).
#[test]
fn random_follower_under_conflicting_leaders_hands_out_each_committed_entry_once() {
    for seed in 0..60 {
        follower_run(seed, 400);
    }
}
