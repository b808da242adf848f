//! An in-memory cluster of multi-raft nodes for the tests: each node a `MultiRaft` over
//! `MemStorage`, envelopes encoded and delivered through a router, nodes that can be stopped.

#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use raft_core::eraftpb::{EntryType, MessageType};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, SnapshotStatus, StateRole};
use raft_multi::{Envelope, MultiConfig, MultiRaft, ReadyBatch};
use storage_mem::MemStorage;

/// A node: the driver and what its state machine applied, per group.
pub struct Node {
    pub multi: MultiRaft<MemStorage>,
    pub applied: BTreeMap<u64, Vec<Vec<u8>>>,
}

/// Several nodes and the envelopes between them.
pub struct Cluster {
    pub nodes: BTreeMap<u64, Node>,
    /// Stopped nodes: not ticked, nothing delivered to or from them.
    pub down: BTreeSet<u64>,
    /// Envelopes sent and not yet delivered (encoded, as on a wire).
    pub in_flight: Vec<(u64, Vec<u8>)>,
    /// Envelopes each flush of each node produced, in order.
    pub flush_log: Vec<(u64, usize)>,
}

pub fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// The group config the tests use: pre-vote and check-quorum, as a multi-raft deployment runs.
pub fn group_config(node_id: u64) -> Config {
    Config {
        pre_vote: true,
        check_quorum: true,
        ..Config::new(node_id)
    }
}

impl Cluster {
    /// Nodes `node_ids`, each holding every group of `group_ids` with `node_ids` as voters.
    pub fn new(node_ids: &[u64], group_ids: impl IntoIterator<Item = u64> + Clone) -> Cluster {
        let mut cluster = Cluster::empty(node_ids);
        for node_id in node_ids {
            for group_id in group_ids.clone() {
                cluster.add_group(*node_id, group_id, node_ids);
            }
        }
        cluster
    }

    /// Nodes without groups.
    pub fn empty(node_ids: &[u64]) -> Cluster {
        let nodes = node_ids
            .iter()
            .map(|id| {
                let multi = MultiRaft::new(MultiConfig::new(*id), &logger()).unwrap();
                let node = Node {
                    multi,
                    applied: BTreeMap::new(),
                };
                (*id, node)
            })
            .collect();
        Cluster {
            nodes,
            down: BTreeSet::new(),
            in_flight: Vec::new(),
            flush_log: Vec::new(),
        }
    }

    /// Adds group `group_id` with `voters` on node `node_id`.
    pub fn add_group(&mut self, node_id: u64, group_id: u64, voters: &[u64]) {
        let storage = MemStorage::bootstrap(voters.iter().copied(), []).unwrap();
        self.node(node_id)
            .add_group(group_id, &group_config(node_id), storage)
            .unwrap();
    }

    pub fn node(&mut self, id: u64) -> &mut MultiRaft<MemStorage> {
        &mut self
            .nodes
            .get_mut(&id)
            .expect("a node of the cluster")
            .multi
    }

    pub fn multi(&self, id: u64) -> &MultiRaft<MemStorage> {
        &self.nodes[&id].multi
    }

    pub fn applied(&self, node_id: u64, group_id: u64) -> Vec<Vec<u8>> {
        self.nodes[&node_id]
            .applied
            .get(&group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Handles every Ready of a live node (persist, apply, advance) and flushes its envelopes.
    pub fn process(&mut self, node_id: u64) {
        if self.down.contains(&node_id) {
            return;
        }
        let node = self.nodes.get_mut(&node_id).unwrap();
        while node.multi.has_ready() {
            let batch = node.multi.ready();
            persist_and_apply(node, batch);
        }
        let envelopes = node.multi.flush();
        self.flush_log.push((node_id, envelopes.len()));
        for envelope in envelopes {
            report_snapshots(&mut node.multi, &envelope);
            self.in_flight
                .push((envelope.to_node, envelope.encode_to_vec()));
        }
    }

    /// Delivers every envelope in flight to live nodes (envelopes to stopped nodes are lost).
    pub fn deliver(&mut self) -> usize {
        let in_flight = std::mem::take(&mut self.in_flight);
        let count = in_flight.len();
        for (to_node, bytes) in in_flight {
            if self.down.contains(&to_node) {
                continue;
            }
            self.node(to_node)
                .step_encoded(&bytes)
                .expect("the cluster's envelopes are well formed");
        }
        count
    }

    /// Processes and delivers until nothing moves, without ticking.
    pub fn stabilize(&mut self) {
        for _ in 0..1000 {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                self.process(id);
            }
            if self.deliver() == 0 {
                return;
            }
        }
        panic!("the cluster did not settle within 1000 rounds");
    }

    /// One tick on every live node, then stabilize.
    pub fn tick(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            if !self.down.contains(&id) {
                self.node(id).tick();
            }
        }
        self.stabilize();
    }

    /// The leader of `group_id` among the live nodes, if exactly one live node leads it in the
    /// highest term.
    pub fn leader(&self, group_id: u64) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for (id, node) in &self.nodes {
            if self.down.contains(id) {
                continue;
            }
            let Some(status) = node.multi.group_status(group_id) else {
                continue;
            };
            if status.role == StateRole::Leader && best.is_none_or(|(_, term)| status.term > term) {
                best = Some((*id, status.term));
            }
        }
        best.map(|(id, _)| id)
    }

    /// Elects node `(group_id % nodes) + 1`'s replica in every group, all at once.
    pub fn elect_spread(&mut self, group_ids: impl IntoIterator<Item = u64>) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for group_id in group_ids {
            let leader = ids[(group_id % ids.len() as u64) as usize];
            self.node(leader).campaign(group_id).unwrap();
        }
        self.stabilize();
    }
}

/// Persists a batch into each group's MemStorage (one "fsync" for all), applies the committed
/// entries (conf changes included) and acknowledges the batch.
pub fn persist_and_apply(node: &mut Node, mut batch: ReadyBatch) {
    for group in batch.groups_mut() {
        let group_id = group.group_id();
        let store = node.multi.store(group_id).unwrap().clone();
        let ready = group.ready_mut();
        if *ready.snapshot() != Default::default() {
            store.wl().apply_snapshot(ready.snapshot().clone()).unwrap();
        }
        store.wl().append(ready.entries()).unwrap();
        if let Some(hard_state) = ready.hard_state() {
            store.wl().set_hardstate(*hard_state);
        }
        for entry in ready.take_committed_entries() {
            if entry.entry_type == EntryType::EntryNormal as i32 {
                if !entry.data.is_empty() {
                    node.applied
                        .entry(group_id)
                        .or_default()
                        .push(entry.data.to_vec());
                }
                continue;
            }
            let change = decode_conf_change(&entry)
                .expect("a conf change entry")
                .expect("it decodes");
            let raw = node.multi.group_mut(group_id).unwrap();
            let conf_state = raw.apply_conf_change(&change).unwrap();
            store.wl().set_conf_state(conf_state);
        }
    }
    node.multi.advance(batch);
}

/// The transport tells the sender that a snapshot it sent arrived (it is delivered in memory).
fn report_snapshots(multi: &mut MultiRaft<MemStorage>, envelope: &Envelope) {
    for group_message in &envelope.messages {
        let message = group_message.message.as_ref().unwrap();
        if message.msg_type == MessageType::MsgSnapshot as i32 {
            if let Some(raw) = multi.group_mut(group_message.group_id) {
                raw.report_snapshot(message.to, SnapshotStatus::Finish);
            }
        }
    }
}
