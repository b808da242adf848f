//! [`Network`]: a cluster of [`RawNode`]s over [`MemStorage`] that exchange messages in one thread.
//!
//! Each node's Readys are handled the way an application would handle them: entries and hard state
//! are persisted to its `MemStorage`, committed entries are applied (recorded in [`Node::applied`]),
//! and messages are queued for delivery. Delivery is FIFO and synchronous, so a test is deterministic.

use raft_core::eraftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, RawNode, ReadState, Result, SnapshotStatus, StateRole};
use raft_proto::prost::Message as _;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, HashSet, VecDeque};
use storage_mem::{conf_state, MemStorage};

/// One node of the network: its RawNode, its storage and what it applied.
pub struct Node {
    /// The node.
    pub raw: RawNode<MemStorage>,
    /// Its persistent storage (shared with `raw`).
    pub storage: MemStorage,
    /// Every normal entry with data it applied, in order.
    pub applied: Vec<Entry>,
    /// The index of the last entry it applied (of any kind).
    pub applied_index: u64,
    /// Every conf change it applied: the entry's index and the configuration that resulted.
    pub conf_log: Vec<(u64, ConfState)>,
    /// Every confirmed read handed to it, in order (with the applied index at the time it came, so
    /// tests can check the read was served at or after its index).
    pub read_states: Vec<ReadState>,
    /// Contexts of its own read requests dropped on a leadership change.
    pub dropped_reads: Vec<bytes::Bytes>,
    /// How many snapshots from a leader it restored (its state machine was replaced each time).
    pub snapshots_restored: u64,
    /// The indexes of conf change entries whose change could not be applied (only possible with
    /// `disable_conf_change_validation`); the application skips them, as every node does.
    pub refused_conf_changes: Vec<u64>,
}

impl Node {
    /// The node's role.
    pub fn state(&self) -> StateRole {
        self.raw.raft.state
    }

    /// The node's term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The payloads it applied, in order.
    pub fn applied_data(&self) -> Vec<Vec<u8>> {
        self.applied.iter().map(|e| e.data.to_vec()).collect()
    }

    /// Handles one Ready if there is one, returning the messages to deliver.
    pub fn handle_ready(&mut self) -> Result<Vec<Message>> {
        if !self.raw.has_ready() {
            return Ok(Vec::new());
        }
        let mut rd = self.raw.ready()?;
        let mut out = rd.take_messages();
        self.read_states.extend(rd.take_read_states());
        self.dropped_reads
            .extend(rd.dropped_read_requests().iter().cloned());
        if !rd.snapshot().is_empty() {
            self.restore(rd.snapshot())?;
        }
        {
            let mut store = self.storage.wl();
            store.append(rd.entries())?;
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(&committed);
        let mut light = self.raw.advance(rd)?;
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().commit = commit;
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
                self.applied_index + 1,
                "node {} applied out of order",
                self.raw.raft.id
            );
            self.applied_index = e.index;
            if e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty() {
                self.applied.push(e.clone());
            }
            if let Some(cc) = decode_conf_change(e) {
                let cc = cc.expect("conf change entries in tests decode");
                match self.raw.apply_conf_change(&cc) {
                    Ok(cs) => {
                        // The stored membership is the one as of the applied index: what a
                        // restart with `Config::applied` starts from.
                        self.storage.wl().set_conf_state(cs.clone());
                        self.conf_log.push((e.index, cs));
                    }
                    Err(_) => self.refused_conf_changes.push(e.index),
                }
            }
        }
    }

    /// Installs a snapshot received from the leader: storage takes it, and the state machine
    /// (the applied payloads) is rebuilt from its data.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.storage.wl().apply_snapshot(snapshot.clone())?;
        let state = Message::decode(snapshot.data.clone())
            .map_err(|_| raft_core::Error::Invariant("a test snapshot's data does not decode"))?;
        self.applied = state.entries;
        self.applied_index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        self.snapshots_restored += 1;
        Ok(())
    }

    /// Makes a snapshot of the state machine at the applied index and compacts the log up to it,
    /// keeping the last `keep` applied entries readable (so followers lagging by at most that much
    /// still get entries; anything older needs the snapshot).
    pub fn snapshot_and_compact(&mut self, keep: u64) -> Result<()> {
        let index = self.applied_index;
        // The state machine is the list of applied payloads, carried in a message's entries.
        let data = Message {
            entries: self.applied.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut store = self.storage.wl();
        // The stored membership is the one as of the applied index (see `apply`).
        store.create_snapshot(index, None, data.into())?;
        store.compact((index + 1).saturating_sub(keep).max(1))?;
        Ok(())
    }

    /// The node's current membership.
    pub fn conf_state(&self) -> ConfState {
        self.raw.raft.prs.conf_state()
    }
}

/// A cluster connected by a lossless, in-order, synchronous network with injectable faults.
pub struct Network {
    /// The nodes, by id.
    pub nodes: BTreeMap<u64, Node>,
    cut: HashSet<(u64, u64)>,
    drop_rate: BTreeMap<(u64, u64), f64>,
    ignored: HashSet<i32>,
    rng: Xoshiro256PlusPlus,
    /// Every message delivered so far, in order (for assertions on traffic).
    pub delivered: Vec<Message>,
    /// How many messages the faults dropped.
    pub dropped: u64,
    /// How many messages were delivered.
    pub delivered_count: u64,
    /// Keep a copy of every delivered message in `delivered` (on by default; long runs turn it off).
    pub record_delivered: bool,
}

/// The configuration the network gives node `id` unless told otherwise: election timeout 10 ticks,
/// heartbeat 1 tick, up to 256 inflight appends, no size limit per message.
pub fn default_config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        ..Default::default()
    }
}

impl Network {
    /// A network of voters `1..=n` with the default config.
    pub fn new(n: u64) -> Network {
        Network::with_config(n, default_config)
    }

    /// A network of voters `1..=n`, configuring each node with `config(id)`.
    pub fn with_config(n: u64, config: impl Fn(u64) -> Config) -> Network {
        let ids: Vec<u64> = (1..=n).collect();
        let mut nodes = BTreeMap::new();
        for &id in &ids {
            let storage = MemStorage::new_with_conf_state(conf_state(ids.clone(), vec![]));
            nodes.insert(id, Network::start_node(&config(id), storage));
        }
        Network {
            nodes,
            cut: HashSet::new(),
            drop_rate: BTreeMap::new(),
            ignored: HashSet::new(),
            rng: Xoshiro256PlusPlus::seed_from_u64(n),
            delivered: Vec::new(),
            dropped: 0,
            delivered_count: 0,
            record_delivered: true,
        }
    }

    /// Reseeds the generator that decides which messages `drop_link` drops.
    pub fn seed(&mut self, seed: u64) {
        self.rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    }

    /// A node over `storage` (which holds whatever it persisted before) with `config`.
    pub fn start_node(config: &Config, storage: MemStorage) -> Node {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(config, storage.clone(), &logger).expect("valid test config");
        let applied_index = raw.raft.raft_log.applied;
        Node {
            raw,
            storage,
            applied: Vec::new(),
            applied_index,
            conf_log: Vec::new(),
            read_states: Vec::new(),
            dropped_reads: Vec::new(),
            snapshots_restored: 0,
            refused_conf_changes: Vec::new(),
        }
    }

    /// Starts a new node `id` that is not (yet) a member, to be added by a conf change. Its storage
    /// holds `initial` (the group's bootstrap membership) and an empty log: it catches up from the
    /// leader's log from index 1 and replays every conf change on top of `initial`, so it ends with
    /// the group's configuration. (A log compacted past index 1 needs a snapshot instead.)
    pub fn add_node(&mut self, config: &Config, initial: ConfState) {
        let storage = MemStorage::new_with_conf_state(initial);
        let node = Network::start_node(config, storage);
        self.nodes.insert(config.id, node);
    }

    /// Stops node `id` and takes it out of the network (messages to it are dropped from now on).
    pub fn remove_node(&mut self, id: u64) -> Node {
        self.nodes.remove(&id).expect("no such node")
    }

    /// The node with `id`.
    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    /// The node with `id`, mutably.
    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.get_mut(&id).expect("no such node")
    }

    /// Restarts node `id` from its storage with `config` (everything it persisted survives; here
    /// every Ready is persisted as soon as it is handled, so nothing is lost). What it had applied
    /// before the restart is kept, and `config.applied` should say how far that was.
    pub fn restart(&mut self, id: u64, config: &Config) {
        let old = self.nodes.remove(&id).expect("no such node");
        let mut node = Network::start_node(config, old.storage);
        node.applied = old.applied;
        node.conf_log = old.conf_log;
        node.read_states = old.read_states;
        node.dropped_reads = old.dropped_reads;
        node.snapshots_restored = old.snapshots_restored;
        node.refused_conf_changes = old.refused_conf_changes;
        node.applied_index = node.raw.raft.raft_log.applied;
        self.nodes.insert(id, node);
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts every link of `id`.
    pub fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids.into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    /// Drops a fraction `rate` (0..=1) of the messages from `from` to `to`.
    pub fn drop_link(&mut self, from: u64, to: u64, rate: f64) {
        self.drop_rate.insert((from, to), rate);
    }

    /// Drops every message of `msg_type`.
    pub fn ignore(&mut self, msg_type: MessageType) {
        self.ignored.insert(msg_type as i32);
    }

    /// Heals every fault.
    pub fn recover(&mut self) {
        self.cut.clear();
        self.drop_rate.clear();
        self.ignored.clear();
    }

    fn passes(&mut self, m: &Message) -> bool {
        if self.ignored.contains(&m.msg_type) || self.cut.contains(&(m.from, m.to)) {
            return false;
        }
        if !self.nodes.contains_key(&m.to) {
            return false;
        }
        match self.drop_rate.get(&(m.from, m.to)) {
            Some(rate) => self.rng.random_range(0.0..1.0) >= *rate,
            None => true,
        }
    }

    /// Delivers `msgs` and everything they cause, until no node has anything more to do.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut queue: VecDeque<Message> = msgs.into();
        loop {
            while let Some(m) = queue.pop_front() {
                if !self.passes(&m) {
                    self.dropped += 1;
                    if m.msg_type == MessageType::MsgSnapshot as i32 {
                        if let Some(sender) = self.nodes.get_mut(&m.from) {
                            sender.raw.report_snapshot(m.to, SnapshotStatus::Failure);
                        }
                    }
                    continue;
                }
                self.delivered_count += 1;
                if self.record_delivered {
                    self.delivered.push(m.clone());
                }
                let (from, to) = (m.from, m.to);
                let is_snapshot = m.msg_type == MessageType::MsgSnapshot as i32;
                let node = self.node_mut(to);
                // Refusals are part of what tests exercise; the node logs them and stays unchanged.
                let _ = node.raw.step(m);
                queue.extend(
                    node.handle_ready()
                        .expect("storage failure in test network"),
                );
                if is_snapshot {
                    // The transport delivered it: tell the sender, as an application would.
                    if let Some(sender) = self.nodes.get_mut(&from) {
                        sender.raw.report_snapshot(to, SnapshotStatus::Finish);
                    }
                }
            }
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                queue.extend(self.node_mut(id).handle_ready().expect("storage failure"));
            }
            // A Ready can leave work that sends nothing (a single voter's read answered when its
            // entry became durable): quiet means no message and no Ready anywhere.
            if queue.is_empty() && !self.nodes.values().any(|n| n.raw.has_ready()) {
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
        let _ = self.node_mut(id).raw.campaign();
        self.stabilize();
    }

    /// Proposes `data` at node `id` and runs to quiescence. Returns the proposal's result.
    pub fn propose(&mut self, id: u64, data: &[u8]) -> Result<()> {
        let result = self.node_mut(id).raw.propose(vec![], data.to_vec());
        self.stabilize();
        result
    }

    /// Ticks node `id` once and runs to quiescence.
    pub fn tick(&mut self, id: u64) {
        self.node_mut(id).raw.tick();
        self.stabilize();
    }

    /// Ticks every node once (in id order) and runs to quiescence.
    pub fn tick_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.node_mut(id).raw.tick();
        }
        self.stabilize();
    }

    /// The id of the node that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.state() == StateRole::Leader)
            .max_by_key(|(_, n)| n.term())
            .map(|(id, _)| *id)
    }
}
