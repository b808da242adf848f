//! The harness of the single-threaded tests: an [`AsyncNode`] whose Readys are handed over with
//! `advance_append_async` and whose "disk" and "state machine" lag behind by as much as a test
//! wants, and a [`Group`] of such nodes with the messages they released.
//!
//! Every node checks the async contract as it goes: Ready numbers increase by one, committed
//! entries come in index order with no duplicate or gap and are already in the node's storage when
//! handed out, and persisted messages leave only once their Ready was written.

use std::collections::{BTreeMap, VecDeque};

use raft_core::eraftpb::{Entry, HardState, Message, MessageType, Snapshot};
use raft_core::{Config, Error, LightReady, RawNode, Ready, StateRole, Storage, NO_LIMIT};
use raft_proto::describe_message;
use storage_mem::{conf_state, MemStorage};

pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Election timeout 10 ticks, heartbeat 1 tick, no size limits, 256 appends in flight.
pub(crate) fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: 256,
        ..Default::default()
    }
}

/// The (type, to) of each message, for compact assertions.
pub(crate) fn types(msgs: &[Message]) -> Vec<(MessageType, u64)> {
    msgs.iter().map(|m| (m.msg_type(), m.to)).collect()
}

/// The (index, term) of each entry.
pub(crate) fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// The indexes of the entries.
pub(crate) fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

/// The non-empty payloads of the entries, in order.
pub(crate) fn payloads(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.data.to_vec())
        .collect()
}

/// What a Ready asked to persist, held by the node's "disk" until a test writes it.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub(crate) number: u64,
    pub(crate) entries: Vec<Entry>,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) persisted_messages: Vec<Message>,
}

/// A copy of what one Ready carried, for assertions.
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub(crate) number: u64,
    pub(crate) entries: Vec<Entry>,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) committed: Vec<Entry>,
    pub(crate) messages: Vec<Message>,
    pub(crate) persisted_messages: Vec<Message>,
}

/// A node driven asynchronously by hand.
pub(crate) struct AsyncNode {
    pub(crate) raw: RawNode<MemStorage>,
    pub(crate) storage: MemStorage,
    /// Readys handed over and not yet written to `storage`, oldest first.
    pub(crate) disk_queue: VecDeque<PendingWrite>,
    /// Committed entries handed out and not yet applied.
    pub(crate) to_apply: VecDeque<Entry>,
    /// The state machine: every entry applied, in order (it survives a crash).
    pub(crate) state_machine: Vec<Entry>,
    /// The last committed index handed out by the current RawNode (or the restart point).
    pub(crate) handed_out: u64,
    /// Messages released for sending and not yet delivered.
    pub(crate) outbox: Vec<Message>,
    /// The number of the last Ready taken from the current RawNode.
    pub(crate) last_number: u64,
}

impl AsyncNode {
    pub(crate) fn start(cfg: &Config, storage: MemStorage) -> AsyncNode {
        let raw = match RawNode::new(cfg, storage.clone(), &logger()) {
            Ok(raw) => raw,
            Err(e) => panic!("node {} cannot start: {e}", cfg.id),
        };
        let handed_out = raw.raft.raft_log.applied;
        AsyncNode {
            raw,
            storage,
            disk_queue: VecDeque::new(),
            to_apply: VecDeque::new(),
            state_machine: Vec::new(),
            handed_out,
            outbox: Vec::new(),
            last_number: 0,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// The index the state machine has applied.
    pub(crate) fn sm_applied(&self) -> u64 {
        self.state_machine.last().map_or(0, |e| e.index)
    }

    /// The leader's record of its own matched index.
    pub(crate) fn own_matched(&self) -> u64 {
        let id = self.id();
        self.raw.raft.prs.get(id).expect("own progress").matched
    }

    /// What the leader records as `id`'s matched index.
    pub(crate) fn matched_of(&self, id: u64) -> u64 {
        self.raw.raft.prs.get(id).expect("progress").matched
    }

    pub(crate) fn committed(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    pub(crate) fn persisted(&self) -> u64 {
        self.raw.raft.raft_log.persisted
    }

    /// Records committed entries handed out, checking each is the next index and already durable
    /// in this node's storage.
    fn hand_out(&mut self, entries: &[Entry], origin: &str) {
        for e in entries {
            assert_eq!(
                e.index,
                self.handed_out + 1,
                "node {}: a {origin} handed out index {} but the next index not yet handed out \
                 is {} (a duplicate or a gap)",
                self.id(),
                e.index,
                self.handed_out + 1
            );
            let stored = self.storage.entries(e.index, e.index + 1, NO_LIMIT);
            assert_eq!(
                stored.as_deref().ok(),
                Some(std::slice::from_ref(e)),
                "node {}: a {origin} handed out index {} as committed before it was persisted \
                 locally",
                self.id(),
                e.index
            );
            self.handed_out = e.index;
            self.to_apply.push_back(e.clone());
        }
    }

    /// Takes the next Ready, sends its `messages` at once, queues what it asks to persist on the
    /// disk and its committed entries for the state machine, and hands it over with
    /// `advance_append_async`. Returns a copy of what it carried.
    pub(crate) fn take_ready(&mut self) -> Taken {
        let mut rd: Ready = self.raw.ready().expect("ready");
        assert_eq!(
            rd.number(),
            self.last_number + 1,
            "node {}: Ready numbers must increase by one",
            self.id()
        );
        self.last_number = rd.number();
        assert_eq!(
            *rd.snapshot(),
            Snapshot::default(),
            "node {}: these tests never send snapshots",
            self.id()
        );
        let taken = Taken {
            number: rd.number(),
            entries: rd.entries().to_vec(),
            hard_state: rd.hard_state().copied(),
            committed: rd.committed_entries().to_vec(),
            messages: rd.messages().to_vec(),
            persisted_messages: rd.persisted_messages().to_vec(),
        };
        self.hand_out(&taken.committed, "Ready");
        self.outbox.extend(rd.take_messages());
        self.disk_queue.push_back(PendingWrite {
            number: rd.number(),
            entries: rd.take_entries(),
            hard_state: rd.hard_state().copied(),
            persisted_messages: rd.take_persisted_messages(),
        });
        self.raw.advance_append_async(rd);
        taken
    }

    /// Writes every queued Ready up to `number` to storage, in order, and releases their
    /// persisted messages; does not tell the node.
    pub(crate) fn write(&mut self, number: u64) {
        while self.disk_queue.front().is_some_and(|w| w.number <= number) {
            let w = self.disk_queue.pop_front().expect("front");
            let mut store = self.storage.wl();
            store.append(&w.entries).expect("write entries");
            if let Some(hs) = w.hard_state {
                store.set_hardstate(hs);
            }
            drop(store);
            self.outbox.extend(w.persisted_messages);
        }
    }

    /// Writes every queued Ready up to `number` and reports it with `on_persist_ready`.
    pub(crate) fn persist(&mut self, number: u64) {
        self.write(number);
        self.raw.on_persist_ready(number);
    }

    /// Writes every queued Ready up to `number`, reports it with `advance_append` (which takes
    /// the Ready itself, so the test passes a fresh one) and records the LightReady's commit
    /// index and committed entries.
    pub(crate) fn advance_append(&mut self, rd: Ready) -> LightReady {
        let number = rd.number();
        self.write(number);
        let light = self.raw.advance_append(rd).expect("advance_append");
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().commit = commit;
        }
        self.hand_out(light.committed_entries(), "LightReady");
        self.outbox.extend(light.messages().iter().cloned());
        light
    }

    /// Applies the handed-out entries up to `index` to the state machine (not reported yet).
    pub(crate) fn apply(&mut self, index: u64) {
        while self.to_apply.front().is_some_and(|e| e.index <= index) {
            let e = self.to_apply.pop_front().expect("front");
            assert_eq!(
                e.index,
                self.sm_applied() + 1,
                "node {}: the state machine applied out of order",
                self.id()
            );
            self.state_machine.push(e);
        }
    }

    /// Reports the state machine's applied index with `advance_apply_to`.
    pub(crate) fn report_applied(&mut self) {
        let applied = self.sm_applied();
        self.raw.advance_apply_to(applied);
    }

    /// Writes and reports every queued Ready, then handles every new Ready synchronously
    /// (persist at once, apply at once, report) until there is none. Returns whether anything
    /// was done.
    pub(crate) fn settle(&mut self) -> bool {
        let mut any = !self.disk_queue.is_empty() || !self.to_apply.is_empty();
        if !self.disk_queue.is_empty() {
            let last = self.last_number;
            self.persist(last);
        }
        self.apply(u64::MAX);
        self.report_applied();
        while self.raw.has_ready() {
            any = true;
            let n = self.take_ready().number;
            self.persist(n);
            self.apply(u64::MAX);
            self.report_applied();
        }
        any
    }

    /// The node crashes: what was not written is lost (queued writes, handed-out entries not
    /// applied, messages not sent). It restarts over its storage with `Config::applied` set to
    /// the state machine's applied index.
    pub(crate) fn crash_and_restart(&mut self) {
        self.disk_queue.clear();
        self.to_apply.clear();
        self.outbox.clear();
        let cfg = Config {
            applied: self.sm_applied(),
            ..config(self.id())
        };
        let storage = self.storage.clone();
        let state_machine = std::mem::take(&mut self.state_machine);
        *self = AsyncNode::start(&cfg, storage);
        self.state_machine = state_machine;
        assert_eq!(
            self.handed_out, cfg.applied,
            "node {}: a restarted node resumes after Config::applied",
            cfg.id
        );
    }
}

/// Voters `1..=n`, each an [`AsyncNode`].
pub(crate) struct Group {
    pub(crate) nodes: BTreeMap<u64, AsyncNode>,
}

impl Group {
    pub(crate) fn new(n: u64) -> Group {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let storage = MemStorage::new_with_conf_state(conf_state(voters.clone(), vec![]));
                (id, AsyncNode::start(&config(id), storage))
            })
            .collect();
        Group { nodes }
    }

    pub(crate) fn node(&mut self, id: u64) -> &mut AsyncNode {
        self.nodes.get_mut(&id).expect("no such node")
    }

    /// Delivers one message (a refused proposal is fine; any other refusal is a bug in a correct
    /// run).
    pub(crate) fn deliver(&mut self, m: Message) {
        let desc = describe_message(&m);
        let node = self.node(m.to);
        match node.raw.step(m) {
            Ok(()) | Err(Error::ProposalDropped) => {}
            Err(e) => panic!("node {} refused {desc}: {e}", node.id()),
        }
    }

    /// Delivers every message in `msgs` in order.
    pub(crate) fn deliver_all(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            self.deliver(m);
        }
    }

    /// Takes the messages `id` released for sending.
    pub(crate) fn outbox(&mut self, id: u64) -> Vec<Message> {
        std::mem::take(&mut self.node(id).outbox)
    }

    /// Handles everything synchronously and delivers every message until nothing moves.
    pub(crate) fn stabilize(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for &id in &ids {
                moved |= self.node(id).settle();
            }
            for &id in &ids {
                let msgs = self.outbox(id);
                moved |= !msgs.is_empty();
                self.deliver_all(msgs);
            }
            if !moved {
                return;
            }
        }
    }

    /// A node that is leader in the highest term any node has reached, if there is one.
    pub(crate) fn leader(&self) -> Option<u64> {
        let top = self.nodes.values().map(|n| n.raw.raft.term).max()?;
        self.nodes
            .values()
            .find(|n| n.raw.raft.state == StateRole::Leader && n.raw.raft.term == top)
            .map(|n| n.id())
    }

    /// Asserts that every node applied the same entries, `expected` payloads among them.
    pub(crate) fn assert_same_state_machines(&self, expected: &[Vec<u8>]) {
        let mut reference: Option<(u64, Vec<(u64, u64)>)> = None;
        for (id, node) in &self.nodes {
            assert_eq!(
                payloads(&node.state_machine),
                expected,
                "node {id} applied different payloads"
            );
            let mine = ids(&node.state_machine);
            match &reference {
                None => reference = Some((*id, mine)),
                Some((first, theirs)) => assert_eq!(
                    &mine, theirs,
                    "nodes {first} and {id} applied different entries (index, term)"
                ),
            }
        }
    }
}

/// A 3-node group in which node 1 was elected in term 1 and everything settled: index 1 (the
/// leader's empty entry) is committed, persisted and applied everywhere.
pub(crate) fn elected_group() -> Group {
    let mut g = Group::new(3);
    g.node(1).raw.campaign().expect("campaign");
    g.stabilize();
    assert_eq!(g.leader(), Some(1), "node 1 should have won the election");
    for id in 1..=3 {
        assert_eq!(
            g.node(id).sm_applied(),
            1,
            "node {id} applied the empty entry"
        );
    }
    g
}
