//! [`MixedCluster`]: the nodes, the synchronous network between them (delivery to quiescence, cut
//! links, ignored message types), ticking, membership (proposing conf changes, adding nodes), and
//! the recorded traffic ([`Delivered`], [`Refusal`]).

use crate::{
    describe_log, ConfChangeForm, ConfRecord, Envelope, Lib, MixedNode, NodeConfig, StateRole,
};
use raft_core::eraftpb as ours;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// A message that reached its receiver, decoded into our wire type.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The sender's library.
    pub from_lib: Lib,
    /// The receiver's library.
    pub to_lib: Lib,
    /// The message (decoded from the bytes that travelled).
    pub msg: ours::Message,
    /// The receiver's last log index just before it handled the message.
    pub receiver_last_index: u64,
    /// The receiver's commit index just before it handled the message.
    pub receiver_commit: u64,
}

/// A message a node's `step` refused with an error.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The receiver.
    pub to: u64,
    /// The receiver's library.
    pub to_lib: Lib,
    /// The message.
    pub msg: ours::Message,
    /// The error, as text.
    pub error: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} ({:?}) refused {}: {}",
            self.to,
            self.to_lib,
            raft_proto::describe_message(&self.msg),
            self.error
        )
    }
}

/// A Raft group whose nodes run either library, connected by a synchronous in-order network that
/// carries protobuf bytes.
pub struct MixedCluster {
    /// The nodes, by id (`1..=n`).
    pub nodes: BTreeMap<u64, MixedNode>,
    cut: HashSet<(u64, u64)>,
    ignored: HashSet<i32>,
    /// Every message delivered so far, in order, decoded into our wire type.
    pub delivered: Vec<Delivered>,
    /// Every message a receiver refused with an error.
    pub refusals: Vec<Refusal>,
    /// The voters every node starts from (`1..=n` of [`MixedCluster::new`]), also those added later.
    bootstrap_voters: Vec<u64>,
}

impl MixedCluster {
    /// A new group of voters `1..=libs.len()`; node `i` runs `libs[i - 1]` configured with
    /// `config(i)`.
    pub fn new(libs: &[Lib], config: impl Fn(u64) -> NodeConfig) -> MixedCluster {
        let voters: Vec<u64> = (1..=libs.len() as u64).collect();
        let nodes = voters
            .iter()
            .zip(libs)
            .map(|(&id, &lib)| (id, MixedNode::start(id, lib, &voters, &config(id))))
            .collect();
        MixedCluster {
            nodes,
            cut: HashSet::new(),
            ignored: HashSet::new(),
            delivered: Vec::new(),
            refusals: Vec::new(),
            bootstrap_voters: voters,
        }
    }

    /// Starts node `id` of `lib`, configured with `config`, the way the initial members started:
    /// with the bootstrap voters as its membership and an empty log. It is not a member until a
    /// conf change adding it is applied; it catches up from the leader by appends (from index 1,
    /// which neither library compacts here), applying every conf change of the log in turn.
    pub fn add_node(&mut self, id: u64, lib: Lib, config: NodeConfig) {
        assert!(
            !self.nodes.contains_key(&id),
            "node {id} is already in the cluster"
        );
        let node = MixedNode::start(id, lib, &self.bootstrap_voters, &config);
        self.nodes.insert(id, node);
    }

    /// Proposes the conf change `changes` (compact text form, see
    /// [`MixedNode::propose_conf_change`]) at node `id` as `form`, and runs to quiescence. Returns
    /// the proposal's result.
    pub fn propose_conf_change(
        &mut self,
        id: u64,
        changes: &str,
        form: ConfChangeForm,
    ) -> Result<(), String> {
        let result = self.node_mut(id).propose_conf_change(changes, form);
        self.stabilize();
        result
    }

    /// The node with `id`.
    pub fn node(&self, id: u64) -> &MixedNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The node with `id`, mutably.
    pub fn node_mut(&mut self, id: u64) -> &mut MixedNode {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The library of node `id`.
    pub fn lib(&self, id: u64) -> Lib {
        self.node(id).lib()
    }

    /// The ids of all nodes.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts every link of `id`.
    pub fn isolate(&mut self, id: u64) {
        for other in self.ids().into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    /// Drops every message of `msg_type` until [`recover`](Self::recover).
    pub fn ignore(&mut self, msg_type: ours::MessageType) {
        self.ignored.insert(msg_type as i32);
    }

    /// Heals every cut link and stops ignoring message types.
    pub fn recover(&mut self) {
        self.cut.clear();
        self.ignored.clear();
    }

    /// Delivers `msgs` and everything they cause, until no node has anything more to do.
    pub fn send(&mut self, msgs: Vec<Envelope>) {
        let mut queue: VecDeque<Envelope> = msgs.into();
        loop {
            while let Some(env) = queue.pop_front() {
                let msg = env.decode();
                if self.cut.contains(&(env.from, env.to))
                    || self.ignored.contains(&msg.msg_type)
                    || !self.nodes.contains_key(&env.to)
                {
                    continue;
                }
                let node = self.nodes.get_mut(&env.to).expect("checked above");
                self.delivered.push(Delivered {
                    from_lib: env.from_lib,
                    to_lib: node.lib(),
                    msg: msg.clone(),
                    receiver_last_index: node.last_index(),
                    receiver_commit: node.commit(),
                });
                if let Err(error) = node.step(&env) {
                    self.refusals.push(Refusal {
                        to: env.to,
                        to_lib: node.lib(),
                        msg,
                        error,
                    });
                }
                queue.extend(node.handle_ready());
            }
            for node in self.nodes.values_mut() {
                queue.extend(node.handle_ready());
            }
            // A Ready may produce no message and still leave work (a raft-rs leader appends its
            // auto-leave entry in `advance_apply`, to be persisted in the next Ready).
            if queue.is_empty() && !self.nodes.values().any(MixedNode::has_ready) {
                break;
            }
        }
    }

    /// Handles every pending Ready and delivers the results to quiescence.
    pub fn stabilize(&mut self) {
        self.send(Vec::new());
    }

    /// Node `id` campaigns; the election runs to completion.
    pub fn campaign(&mut self, id: u64) {
        let result = self.node_mut(id).campaign();
        assert!(result.is_ok(), "node {id} could not campaign: {result:?}");
        self.stabilize();
    }

    /// Proposes `data` at node `id` and runs to quiescence. Returns the proposal's result.
    pub fn propose(&mut self, id: u64, data: &[u8]) -> Result<(), String> {
        let result = self.node_mut(id).propose(data);
        self.stabilize();
        result
    }

    /// Ticks node `id` once and runs to quiescence.
    pub fn tick(&mut self, id: u64) {
        self.node_mut(id).tick();
        self.stabilize();
    }

    /// Ticks every node once (in id order) and runs to quiescence.
    pub fn tick_all(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick();
        }
        self.stabilize();
    }

    /// Ticks every node until `done` holds, at most `max_ticks` times. Returns how many ticks it
    /// took, or `None` if `done` never held.
    pub fn tick_all_until(
        &mut self,
        max_ticks: usize,
        mut done: impl FnMut(&MixedCluster) -> bool,
    ) -> Option<usize> {
        for ticks in 0..=max_ticks {
            if done(self) {
                return Some(ticks);
            }
            if ticks < max_ticks {
                self.tick_all();
            }
        }
        None
    }

    /// The node that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.role() == StateRole::Leader)
            .max_by_key(|n| n.term())
            .map(|n| n.id)
    }

    /// Panics, showing both logs, unless nodes `ids` hold identical logs (same indexes, terms, types
    /// and payloads).
    pub fn assert_logs_identical(&self, ids: &[u64]) {
        let Some((&first, rest)) = ids.split_first() else {
            return;
        };
        let reference = self.node(first).log();
        for &id in rest {
            let log = self.node(id).log();
            assert!(
                log == reference,
                "logs differ: node {first} ({:?}) has\n{}\nnode {id} ({:?}) has\n{}",
                self.lib(first),
                describe_log(&reference),
                self.lib(id),
                describe_log(&log)
            );
        }
    }

    /// Panics unless nodes `ids` applied identical normal entries (same indexes, terms, payloads)
    /// and have the same commit index.
    pub fn assert_applied_identical(&self, ids: &[u64]) {
        let Some((&first, rest)) = ids.split_first() else {
            return;
        };
        let reference = &self.node(first).applied;
        for &id in rest {
            let node = self.node(id);
            assert_eq!(
                &node.applied,
                reference,
                "node {id} ({:?}) applied different entries than node {first} ({:?})",
                node.lib(),
                self.lib(first)
            );
            assert_eq!(
                node.commit(),
                self.node(first).commit(),
                "node {id} ({:?}) and node {first} ({:?}) disagree on the commit index",
                node.lib(),
                self.lib(first)
            );
        }
    }

    /// Panics, showing every conf log, unless nodes `ids` switched to identical configurations at
    /// identical indexes ([`MixedNode::conf_log`]), refused no conf change, and the configuration
    /// each stored is the last one it switched to.
    pub fn assert_conf_logs_identical(&self, ids: &[u64]) {
        let Some((&first, rest)) = ids.split_first() else {
            return;
        };
        let describe = |ids: &[u64]| {
            ids.iter()
                .map(|&id| {
                    format!(
                        "node {id} ({:?}):\n{}",
                        self.lib(id),
                        describe_conf_log(&self.node(id).conf_log)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        for &id in ids {
            let node = self.node(id);
            assert!(
                node.conf_refusals.is_empty(),
                "node {id} ({:?}) refused to apply conf changes: {:?}",
                node.lib(),
                node.conf_refusals
            );
            if let Some(last) = node.conf_log.last() {
                let stored = node.stored_conf();
                assert_eq!(
                    (
                        &stored.voters,
                        &stored.learners,
                        &stored.voters_outgoing,
                        &stored.learners_next,
                        stored.auto_leave
                    ),
                    (
                        &last.voters,
                        &last.learners,
                        &last.voters_outgoing,
                        &last.learners_next,
                        last.auto_leave
                    ),
                    "node {id} ({:?}) stored another configuration than the last one it applied",
                    node.lib()
                );
            }
        }
        let reference = &self.node(first).conf_log;
        for &id in rest {
            assert!(
                &self.node(id).conf_log == reference,
                "conf logs differ between node {first} and node {id}:\n{}",
                describe(ids)
            );
        }
    }

    /// The delivered messages of `msg_type`, in order.
    pub fn delivered_of(&self, msg_type: ours::MessageType) -> Vec<&Delivered> {
        self.delivered
            .iter()
            .filter(|d| d.msg.msg_type == msg_type as i32)
            .collect()
    }

    /// Every delivered message described on one line each (for failure messages).
    pub fn transcript(&self) -> String {
        self.delivered
            .iter()
            .map(|d| {
                format!(
                    "{:?}->{:?} {}",
                    d.from_lib,
                    d.to_lib,
                    raft_proto::describe_message(&d.msg)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One configuration per line (for failure messages).
pub fn describe_conf_log(log: &[ConfRecord]) -> String {
    if log.is_empty() {
        return "  <no conf change applied>".to_string();
    }
    log.iter()
        .map(|c| format!("  {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}
