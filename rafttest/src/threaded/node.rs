//! A node's driver thread: it receives the Readys of a [`raft_node::Node`] and handles them as
//! an application would (send, persist into a [`MemStorage`], apply, advance), and ticks the node
//! on its own timer. The node's thread is raft-node's; messages come in on the inbox thread.

use super::gate::Gate;
use super::router::Router;
use raft_core::eraftpb::{Entry, EntryType, Message, Snapshot};
use raft_core::raft::decode_conf_change;
use raft_core::{Ready, StateRole};
use raft_node::{Node, NodeError};
use raft_proto::prost::Message as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
use storage_mem::MemStorage;

/// What the cluster can see of a node from outside its threads.
#[derive(Debug, Default)]
pub(crate) struct NodeView {
    /// The role, leader and term of the last Ready handled (the application's view, as with
    /// etcd's `SoftState`).
    pub(crate) role: StateRole,
    pub(crate) term: u64,
    pub(crate) leader_id: u64,
    /// The payloads of the normal entries it applied, in order (its state machine).
    pub(crate) applied: Vec<Vec<u8>>,
    /// The index of the last entry it applied, of any kind.
    pub(crate) applied_index: u64,
}

/// A node's view, shared between its driver thread and the cluster.
pub(crate) type SharedView = Arc<Mutex<NodeView>>;

/// Locks a view, ignoring poisoning: a panicked driver thread is reported when it is joined.
pub(crate) fn lock(view: &SharedView) -> MutexGuard<'_, NodeView> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a stopped driver thread hands back: what a restart starts from.
pub(crate) struct Stopped {
    pub(crate) storage: MemStorage,
    pub(crate) applied_index: u64,
}

/// One node's driver thread state.
pub(crate) struct Driver {
    pub(crate) id: u64,
    pub(crate) node: Node<MemStorage>,
    pub(crate) storage: MemStorage,
    pub(crate) router: Arc<Router>,
    pub(crate) view: SharedView,
    pub(crate) gate: Arc<Gate>,
    /// Set by the cluster to end the thread; looked at least once a tick.
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) tick_interval: Duration,
    pub(crate) applied_index: u64,
}

impl Driver {
    /// Runs until told to stop, then stops the node and hands back the storage.
    ///
    /// # Panics
    ///
    /// If handling a Ready fails or the node's thread ends (a failed invariant), with the reason.
    pub(crate) fn run(mut self) -> Stopped {
        let mut next_tick = Instant::now() + self.tick_interval;
        // A Ready received while paused, handled on resume.
        let mut parked: Option<Ready> = None;
        let gate = Arc::clone(&self.gate);
        while !self.stop.load(Ordering::SeqCst) {
            if parked.is_none() {
                let wait = next_tick.saturating_duration_since(Instant::now());
                parked = match self.node.ready().recv_timeout(wait) {
                    Ok(rd) => Some(rd.unwrap_or_else(|e| self.fail("receiving a Ready", e))),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.fail("receiving a Ready", NodeError::Stopped)
                    }
                };
            }
            let Some(_open) = gate.enter() else {
                // Paused: nothing is handled and the clock stands still.
                if parked.is_some() {
                    thread::sleep(self.tick_interval);
                }
                next_tick = Instant::now() + self.tick_interval;
                continue;
            };
            if let Some(rd) = parked.take() {
                if let Err(e) = self.handle_ready(rd) {
                    self.fail("handling a Ready", e);
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                if let Err(e) = self.node.tick() {
                    self.fail("ticking", e);
                }
                next_tick += self.tick_interval;
                // After a long stall, tick once and start afresh rather than in a burst.
                if next_tick < now {
                    next_tick = now + self.tick_interval;
                }
            }
        }
        let raw = match self.node.stop() {
            Ok(raw) => raw,
            Err(e) => panic!("node {}: stopping the node: {e}", self.id),
        };
        // Every Ready handled was advanced and its entries applied before `advance_apply`.
        assert_eq!(
            raw.raft.raft_log.applied, self.applied_index,
            "node {}: the RawNode's applied index differs from what the harness applied",
            self.id
        );
        Stopped {
            storage: self.storage,
            applied_index: self.applied_index,
        }
    }

    fn fail(&self, doing: &str, e: NodeError) -> ! {
        panic!("node {}: {doing} failed: {e}", self.id)
    }

    /// Handles one Ready the way raft-node's documentation says; every write to storage is
    /// durable at once, so nothing a Ready asked to persist is ever lost.
    fn handle_ready(&mut self, mut rd: Ready) -> Result<(), NodeError> {
        self.observe(&rd);
        self.router.send_all(rd.take_messages());
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
        self.router.send_all(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(&committed)?;
        let mut light = self.node.advance(rd)?;
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().commit = commit;
        }
        self.router.send_all(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(&committed)?;
        self.node.advance_apply()
    }

    /// Copies the role, leader and term a Ready reports where the cluster can see them.
    fn observe(&self, rd: &Ready) {
        if rd.soft_state().is_none() && rd.hard_state().is_none() {
            return;
        }
        let mut view = lock(&self.view);
        if let Some(ss) = rd.soft_state() {
            view.role = ss.raft_state;
            view.leader_id = ss.leader_id;
        }
        if let Some(hs) = rd.hard_state() {
            view.term = hs.term;
        }
    }

    /// Applies committed entries to the state machine (the view's payload list) and conf changes
    /// to the node, recording the resulting membership in storage for restarts.
    fn apply(&mut self, entries: &[Entry]) -> Result<(), NodeError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut payloads = Vec::new();
        for e in entries {
            assert_eq!(
                e.index,
                self.applied_index + 1,
                "node {} was handed entry {} to apply after applying {}",
                self.id,
                e.index,
                self.applied_index
            );
            self.applied_index = e.index;
            if e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty() {
                payloads.push(e.data.to_vec());
            }
            if let Some(cc) = decode_conf_change(e) {
                let cc = cc.unwrap_or_else(|err| {
                    panic!(
                        "node {}: conf change entry {} does not decode: {err}",
                        self.id, e.index
                    )
                });
                match self.node.apply_conf_change(cc) {
                    Ok(cs) => self.storage.wl().set_conf_state(cs),
                    // A change that cannot be applied is skipped, as every node skips it.
                    Err(NodeError::Raft(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Published together, once per batch.
        let mut view = lock(&self.view);
        view.applied.extend(payloads);
        view.applied_index = self.applied_index;
        Ok(())
    }

    /// Installs a snapshot from the leader: storage takes it and the state machine is rebuilt
    /// from its data (a `Message` whose entries are the applied payloads, as in
    /// [`Node::snapshot_and_compact`](crate::network::Node::snapshot_and_compact)).
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        self.storage.wl().apply_snapshot(snapshot.clone())?;
        let state = Message::decode(snapshot.data.clone()).map_err(|_| {
            raft_core::Error::Invariant("a threaded cluster snapshot's data does not decode")
        })?;
        self.applied_index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        let mut view = lock(&self.view);
        view.applied = state.entries.iter().map(|e| e.data.to_vec()).collect();
        view.applied_index = self.applied_index;
        Ok(())
    }
}
