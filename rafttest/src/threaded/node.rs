//! The body of a node thread: a `RawNode<MemStorage>` driven by its own timer and its inbox.

use super::router::{Input, Router};
use super::ThreadedError;
use raft_core::eraftpb::{Entry, EntryType, Message, Snapshot};
use raft_core::raft::decode_conf_change;
use raft_core::{RawNode, StateRole};
use raft_proto::prost::Message as _;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use storage_mem::MemStorage;

/// How many messages a paused node holds for later; the ones beyond are lost, as a full socket
/// buffer would lose them.
const HELD_CAP: usize = 4096;

/// How many inputs a node handles before it looks at its timer again, so that a flood of messages
/// cannot starve its ticks.
const BATCH: usize = 256;

/// What the cluster can see of a node from outside its thread.
#[derive(Debug, Default)]
pub(crate) struct NodeView {
    pub(crate) role: StateRole,
    pub(crate) term: u64,
    pub(crate) leader_id: u64,
    pub(crate) paused: bool,
    /// The payloads of the normal entries it applied, in order (its state machine).
    pub(crate) applied: Vec<Vec<u8>>,
    /// The index of the last entry it applied, of any kind.
    pub(crate) applied_index: u64,
}

/// A node's view, shared between its thread and the cluster.
pub(crate) type SharedView = Arc<Mutex<NodeView>>;

/// Locks a view, ignoring poisoning: a panicked node thread is reported when it is joined.
pub(crate) fn lock(view: &SharedView) -> MutexGuard<'_, NodeView> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a stopped node thread hands back: what a restart starts from.
pub(crate) struct Stopped {
    pub(crate) storage: MemStorage,
    pub(crate) applied_index: u64,
}

/// One node's thread state.
pub(crate) struct NodeRunner {
    pub(crate) id: u64,
    pub(crate) raw: RawNode<MemStorage>,
    pub(crate) storage: MemStorage,
    pub(crate) inbox: Receiver<Input>,
    pub(crate) router: Arc<Router>,
    pub(crate) view: SharedView,
    pub(crate) tick_interval: Duration,
    pub(crate) paused: bool,
    /// Messages that arrived while paused, handled on resume.
    pub(crate) held: VecDeque<Message>,
    pub(crate) applied_index: u64,
}

impl NodeRunner {
    /// Runs until told to stop (or until the cluster is gone), then hands back the storage.
    pub(crate) fn run(mut self) -> Stopped {
        let mut next_tick = Instant::now() + self.tick_interval;
        'outer: loop {
            let wait = if self.paused {
                Duration::from_millis(50)
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            let first = match self.inbox.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut inputs: Vec<Input> = first.into_iter().collect();
            while inputs.len() < BATCH {
                match self.inbox.try_recv() {
                    Ok(input) => inputs.push(input),
                    Err(_) => break,
                }
            }
            for input in inputs {
                if !self.handle_input(input) {
                    break 'outer;
                }
            }
            if !self.paused {
                let now = Instant::now();
                if now >= next_tick {
                    self.raw.tick();
                    next_tick += self.tick_interval;
                    // After a long stall, tick once and start afresh rather than in a burst.
                    if next_tick < now {
                        next_tick = now + self.tick_interval;
                    }
                }
                self.process_readys();
            } else {
                next_tick = Instant::now() + self.tick_interval;
            }
            self.publish();
        }
        Stopped {
            storage: self.storage,
            applied_index: self.applied_index,
        }
    }

    /// Handles one input; false means stop.
    fn handle_input(&mut self, input: Input) -> bool {
        match input {
            Input::Msg(m) => {
                if self.paused {
                    if self.held.len() < HELD_CAP {
                        self.held.push_back(m);
                    }
                } else {
                    // Refusals of impossible messages are part of the protocol: the node logs
                    // them and stays unchanged.
                    let _ = self.raw.step(m);
                }
            }
            Input::Propose(data, reply) => {
                let result = if self.paused {
                    Err(ThreadedError::Paused(self.id))
                } else {
                    self.raw.propose(vec![], data).map_err(ThreadedError::Raft)
                };
                let _ = reply.send(result);
            }
            Input::SnapshotStatus(to, status) => self.raw.report_snapshot(to, status),
            Input::Pause(ack) => {
                self.paused = true;
                lock(&self.view).paused = true;
                let _ = ack.send(());
            }
            Input::Resume(ack) => {
                self.paused = false;
                lock(&self.view).paused = false;
                let _ = ack.send(());
                for m in std::mem::take(&mut self.held) {
                    let _ = self.raw.step(m);
                }
            }
            Input::Stop => return false,
        }
        true
    }

    /// Copies the node's role and term where the cluster can see them.
    fn publish(&self) {
        let mut view = lock(&self.view);
        view.role = self.raw.raft.state;
        view.term = self.raw.raft.term;
        view.leader_id = self.raw.raft.leader_id;
    }

    fn process_readys(&mut self) {
        while self.raw.has_ready() {
            if let Err(e) = self.handle_ready() {
                panic!("node {}: handling a Ready failed: {e}", self.id);
            }
        }
    }

    /// Handles one Ready the way the crate documentation's Ready loop does; every write to
    /// storage is durable at once, so nothing a Ready asked to persist is ever lost.
    fn handle_ready(&mut self) -> raft_core::Result<()> {
        let mut rd = self.raw.ready()?;
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
        self.apply(&committed);
        let mut light = self.raw.advance(rd)?;
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().commit = commit;
        }
        self.router.send_all(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(&committed);
        self.raw.advance_apply();
        Ok(())
    }

    /// Applies committed entries to the state machine (the view's payload list) and conf changes
    /// to the node, recording the resulting membership in storage for restarts.
    fn apply(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let mut view = lock(&self.view);
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
                view.applied.push(e.data.to_vec());
            }
            if let Some(cc) = decode_conf_change(e) {
                let cc = cc.unwrap_or_else(|err| {
                    panic!(
                        "node {}: conf change entry {} does not decode: {err}",
                        self.id, e.index
                    )
                });
                // A change that cannot be applied is skipped, as every node skips it.
                if let Ok(cs) = self.raw.apply_conf_change(&cc) {
                    self.storage.wl().set_conf_state(cs);
                }
            }
        }
        view.applied_index = self.applied_index;
    }

    /// Installs a snapshot from the leader: storage takes it and the state machine is rebuilt
    /// from its data (a `Message` whose entries are the applied payloads, as in
    /// [`Node::snapshot_and_compact`](crate::network::Node::snapshot_and_compact)).
    fn restore(&mut self, snapshot: &Snapshot) -> raft_core::Result<()> {
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
