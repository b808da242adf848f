//! Nodes and a small cluster over faulty storages, the group's stored history, and how a test
//! recognises the injected error.

use crate::faulty::{Faulty, Kind};
use raft_core::eraftpb::{Entry, HardState, Message};
use raft_core::{Config, Error, RawNode, StateRole, Storage, StorageError};
use raft_testkit::{fork_store, logger, NodeState};
use std::collections::{BTreeMap, BTreeSet};
use storage_mem::{conf_state, MemStorage};

pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn config(id: u64, applied: u64) -> Config {
    Config {
        id,
        applied,
        election_tick: 10,
        heartbeat_tick: 2,
        ..Default::default()
    }
}

pub struct Node {
    pub raw: RawNode<Faulty>,
    pub store: Faulty,
    pub applied: u64,
}

impl Node {
    pub fn new(id: u64, store: Faulty, applied: u64) -> raft_core::Result<Node> {
        let raw = RawNode::new(&config(id, applied), store.clone(), &logger())?;
        Ok(Node {
            raw,
            store,
            applied,
        })
    }

    pub fn mem(&self) -> &MemStorage {
        &self.store.inner
    }

    /// The application's Ready cycle; a storage error stops it where it happened.
    pub fn handle_ready(&mut self) -> raft_core::Result<Vec<Message>> {
        if !self.raw.has_ready() {
            return Ok(Vec::new());
        }
        let mut rd = self.raw.ready()?;
        let mut out = rd.take_messages();
        {
            let mut s = self.store.inner.wl();
            if !rd.snapshot().is_empty() {
                s.apply_snapshot(rd.snapshot().clone())
                    .expect("store the Ready's snapshot");
                self.applied = rd.snapshot().metadata.as_ref().map_or(0, |m| m.index);
            }
            s.append(rd.entries()).expect("store the Ready's entries");
            if let Some(hs) = rd.hard_state() {
                s.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(&committed);
        let mut light = self.raw.advance(rd)?;
        if let Some(c) = light.commit_index() {
            self.mem().wl().mut_hard_state().commit = c;
        }
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(&committed);
        self.raw.advance_apply();
        Ok(out)
    }

    fn apply(&mut self, entries: &[Entry]) {
        for e in entries {
            assert_eq!(
                e.index,
                self.applied + 1,
                "node {} applies entry {} after {}",
                self.raw.raft.id,
                e.index,
                self.applied
            );
            self.applied = e.index;
        }
    }

    /// The node's state, read with the fault switched off for the duration (reading must not
    /// itself fail or count as a hit).
    pub fn observe(&self) -> State {
        let fault = self.store.fault.take();
        let hits = self.store.hits.get();
        let s = State::of(self);
        self.store.fault.set(fault);
        self.store.hits.set(hits);
        s
    }

    pub fn queued(&self) -> Vec<Message> {
        let r = &self.raw.raft;
        r.msgs.iter().chain(&r.msgs_after_append).cloned().collect()
    }
}

/// Everything a failed call could have changed: the node, and what it stored.
#[derive(Debug, PartialEq)]
pub struct State {
    pub node: NodeState,
    pub stored_hard_state: HardState,
    pub stored_last_index: u64,
}

impl std::ops::Deref for State {
    type Target = NodeState;

    fn deref(&self) -> &NodeState {
        &self.node
    }
}

impl State {
    pub fn of(n: &Node) -> State {
        State {
            node: NodeState::of(&n.raw),
            stored_hard_state: *n.mem().rl().hard_state(),
            stored_last_index: n.mem().last_index().expect("memstorage"),
        }
    }
}

pub struct Cluster {
    pub nodes: BTreeMap<u64, Node>,
    /// Nodes cut off from everyone.
    pub isolated: BTreeSet<u64>,
}

impl Cluster {
    /// Voters 1, 2, 3 over fresh storages.
    pub fn new() -> Cluster {
        let nodes = (1..=3)
            .map(|id| {
                let store = Faulty::new(MemStorage::new_with_conf_state(conf_state([1, 2, 3], [])));
                (id, Node::new(id, store, 0).expect("node"))
            })
            .collect();
        Cluster {
            nodes,
            isolated: BTreeSet::new(),
        }
    }

    /// Voters 1, 2, 3 each restarted over a copy of `store` (applied up to `applied`).
    pub fn restarted(store: &MemStorage, applied: u64) -> Cluster {
        let nodes = (1..=3)
            .map(|id| {
                let copy = fork_store(store);
                (id, Node::new(id, Faulty::new(copy), applied).expect("node"))
            })
            .collect();
        Cluster {
            nodes,
            isolated: BTreeSet::new(),
        }
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.get_mut(&id).expect("node")
    }

    /// Delivers messages and handles Readys until nothing moves (a node whose Ready fails is
    /// retried on the next round). Returns every message delivered.
    pub fn stabilize(&mut self) -> Vec<Message> {
        let mut delivered = Vec::new();
        for _ in 0..100 {
            let mut queue = Vec::new();
            for n in self.nodes.values_mut() {
                if let Ok(out) = n.handle_ready() {
                    queue.extend(out);
                }
            }
            if queue.is_empty() {
                return delivered;
            }
            for m in queue {
                if self.isolated.contains(&m.from) || self.isolated.contains(&m.to) {
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&m.to) {
                    delivered.push(m.clone());
                    let _ = n.raw.step(m);
                }
            }
        }
        panic!("the cluster did not settle");
    }

    pub fn elect(&mut self, id: u64) {
        self.node(id).raw.campaign().expect("campaign");
        self.stabilize();
        assert_eq!(
            self.nodes[&id].raw.raft.state,
            StateRole::Leader,
            "node {id} was not elected"
        );
    }

    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .find(|n| n.raw.raft.state == StateRole::Leader)
            .map(|n| n.raw.raft.id)
    }

    /// Ticks the leader (if any) and settles, `rounds` times.
    pub fn heartbeat_rounds(&mut self, rounds: usize) -> Vec<Message> {
        let mut delivered = Vec::new();
        for _ in 0..rounds {
            if let Some(l) = self.leader() {
                for _ in 0..2 {
                    self.node(l).raw.tick();
                }
            }
            delivered.extend(self.stabilize());
        }
        delivered
    }

    /// The storage has recovered: a new proposal commits on every node, and all logs agree.
    pub fn commits_again(&mut self, what: &str) {
        self.isolated.clear();
        if self.leader().is_none() {
            let id = *self.nodes.keys().next().expect("a node");
            let _ = self.node(id).raw.campaign();
            self.stabilize();
        }
        let l = self
            .leader()
            .unwrap_or_else(|| panic!("{what}: no leader after recovery"));
        self.node(l)
            .raw
            .propose(vec![], b"after recovery".to_vec())
            .unwrap_or_else(|e| panic!("{what}: the leader refused a proposal: {e}"));
        self.stabilize();
        self.heartbeat_rounds(3);
        let last = self.nodes[&l].raw.raft.raft_log.last_index();
        for (id, n) in &self.nodes {
            let log = &n.raw.raft.raft_log;
            assert_eq!(
                (log.committed, n.applied),
                (last, last),
                "{what}: node {id} did not commit and apply the leader's last entry {last}"
            );
            assert_eq!(
                log.term(last).ok(),
                self.nodes[&l].raw.raft.raft_log.term(last).ok(),
                "{what}: node {id} disagrees with the leader at {last}"
            );
        }
    }
}

/// A group's storage after some history: voters {1, 2, 3}, log `1:t1 2:t1 3:t2 4:t2 5:t2`, hard
/// state term 2, vote 1, commit 4.
pub fn history() -> MemStorage {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    let entries: Vec<Entry> = [1, 1, 2, 2, 2]
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect();
    store.wl().append(&entries).expect("append");
    store.wl().set_hardstate(HardState {
        term: 2,
        vote: 1,
        commit: 4,
    });
    store
}

fn store_error(result: &raft_core::Result<impl std::fmt::Debug>) -> Option<StorageError> {
    match result {
        Err(Error::Store(e)) => Some(match e {
            StorageError::Other(_) => StorageError::Other("".into()),
            StorageError::Compacted => StorageError::Compacted,
            StorageError::Unavailable => StorageError::Unavailable,
            StorageError::LogTemporarilyUnavailable => StorageError::LogTemporarilyUnavailable,
            StorageError::SnapshotOutOfDate => StorageError::SnapshotOutOfDate,
            StorageError::SnapshotTemporarilyUnavailable => {
                StorageError::SnapshotTemporarilyUnavailable
            }
        }),
        _ => None,
    }
}

/// Asserts that `result` is the injected error of kind `kind`.
pub fn assert_store_error<T: std::fmt::Debug>(
    result: &raft_core::Result<T>,
    kind: Kind,
    what: &str,
) {
    assert_eq!(
        store_error(result),
        Some(kind.error()),
        "{what}: expected the injected {kind:?} error to surface, got {result:?}"
    );
}

/// Node 3 falls behind while leader 1 commits and compacts its log past node 3's last entry.
pub fn cluster_needing_a_snapshot() -> Cluster {
    let mut c = Cluster::new();
    c.elect(1);
    c.isolated.insert(3);
    for i in 0..6 {
        c.node(1).raw.propose(vec![], vec![i]).expect("propose");
        c.stabilize();
    }
    let leader = c.node(1);
    let applied = leader.applied;
    let conf = leader.raw.raft.prs.conf().to_conf_state();
    let mut s = leader.mem().wl();
    s.create_snapshot(applied, Some(conf), bytes::Bytes::from_static(b"sm"))
        .expect("snapshot");
    s.compact(applied).expect("compact");
    drop(s);
    c.isolated.clear();
    c
}
