//! The harness of these tests: message and entry builders, a [`Peer`] handled by hand that
//! checks the Ready contract as it goes, and a [`Cluster`] of peers with the messages in flight
//! between them.

use std::collections::{BTreeMap, VecDeque};

use raft_core::eraftpb::{Entry, HardState, Message, MessageType};
use raft_core::{Config, Error, LightReady, RawNode, Ready, StateRole, Storage, NO_LIMIT};
use raft_proto::describe_message;
use storage_mem::{conf_state, MemStorage};

pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Election timeout 10 ticks, heartbeat 1 tick, no size limits.
pub(crate) fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        ..Default::default()
    }
}

pub(crate) fn ent(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

pub(crate) fn msg(msg_type: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        msg_type: msg_type as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

pub(crate) fn append(
    from: u64,
    to: u64,
    term: u64,
    (index, log_term): (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    Message {
        index,
        log_term,
        entries,
        commit,
        ..msg(MessageType::MsgAppend, from, to, term)
    }
}

pub(crate) fn heartbeat(from: u64, to: u64, term: u64, commit: u64) -> Message {
    Message {
        commit,
        ..msg(MessageType::MsgHeartbeat, from, to, term)
    }
}

pub(crate) fn vote_request(
    from: u64,
    to: u64,
    term: u64,
    (index, log_term): (u64, u64),
) -> Message {
    Message {
        index,
        log_term,
        ..msg(MessageType::MsgRequestVote, from, to, term)
    }
}

pub(crate) fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

pub(crate) fn types(msgs: &[Message]) -> Vec<(MessageType, u64)> {
    msgs.iter().map(|m| (m.msg_type(), m.to)).collect()
}

pub(crate) fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

pub(crate) fn payloads(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.data.to_vec())
        .collect()
}

/// Persists what a Ready asks to persist.
pub(crate) fn persist(storage: &MemStorage, rd: &Ready) {
    let mut store = storage.wl();
    store.append(rd.entries()).expect("persist entries");
    if let Some(hs) = rd.hard_state() {
        store.set_hardstate(*hs);
    }
}

/// Persists the commit index a LightReady reports.
pub(crate) fn persist_light(storage: &MemStorage, light: &LightReady) {
    if let Some(commit) = light.commit_index() {
        storage.wl().mut_hard_state().commit = commit;
    }
}

/// A node handled by hand, the way an application would: it checks the Ready contract as it goes.
pub(crate) struct Peer {
    pub(crate) node: RawNode<MemStorage>,
    pub(crate) storage: MemStorage,
    /// Every committed entry handed out (across restarts), in order: `handed_out[i].index == i + 1`.
    pub(crate) handed_out: Vec<Entry>,
    /// The number of the last Ready taken from the current RawNode.
    pub(crate) last_number: u64,
}

impl Peer {
    pub(crate) fn start(cfg: &Config, storage: MemStorage) -> Peer {
        let node = RawNode::new(cfg, storage.clone(), &logger()).expect("valid config");
        Peer {
            node,
            storage,
            handed_out: Vec::new(),
            last_number: 0,
        }
    }

    /// A new node `cfg.id` of a cluster whose voters are `voters`.
    pub(crate) fn fresh(cfg: &Config, voters: &[u64]) -> Peer {
        Peer::start(
            cfg,
            MemStorage::new_with_conf_state(conf_state(voters.to_vec(), vec![])),
        )
    }

    pub(crate) fn id(&self) -> u64 {
        self.node.raft.id
    }

    pub(crate) fn step(&mut self, m: Message) {
        let desc = describe_message(&m);
        if let Err(e) = self.node.step(m) {
            panic!("node {} refused {desc}: {e}", self.id());
        }
    }

    /// Takes the next Ready, checking its number follows the previous one.
    pub(crate) fn ready(&mut self) -> Ready {
        let rd = self.node.ready().expect("ready");
        assert_eq!(
            rd.number(),
            self.last_number + 1,
            "node {}: Ready numbers must increase by one",
            self.id()
        );
        self.last_number = rd.number();
        rd
    }

    /// Records committed entries handed out, checking each is the next index, is committed and is
    /// already in this node's storage.
    pub(crate) fn hand_out(&mut self, entries: &[Entry], origin: &str) {
        let committed = self.node.raft.raft_log.committed;
        for e in entries {
            let next = self.handed_out.len() as u64 + 1;
            assert_eq!(
                e.index,
                next,
                "node {}: a {origin} handed out index {} but the next index not yet handed out is \
                 {next} (a duplicate or a gap)",
                self.id(),
                e.index
            );
            assert!(
                e.index <= committed,
                "node {}: a {origin} handed out index {} beyond the commit index {committed}",
                self.id(),
                e.index
            );
            let stored = self.storage.entries(e.index, e.index + 1, NO_LIMIT);
            assert_eq!(
                stored.as_deref().ok(),
                Some(std::slice::from_ref(e)),
                "node {}: a {origin} handed out index {} as committed before it was persisted locally",
                self.id(),
                e.index
            );
            self.handed_out.push(e.clone());
        }
    }

    /// Handles `rd` synchronously (send, persist, send, apply, advance, apply) and returns the
    /// messages to send.
    pub(crate) fn process(&mut self, mut rd: Ready) -> Vec<Message> {
        // Checked before this Ready's own entries are written: committed entries must already be
        // durable.
        self.hand_out(rd.committed_entries(), "Ready");
        let mut out = rd.take_messages();
        persist(&self.storage, &rd);
        out.extend(rd.take_persisted_messages());
        let mut light = self.node.advance(rd).expect("advance");
        persist_light(&self.storage, &light);
        self.hand_out(light.committed_entries(), "LightReady");
        out.extend(light.take_messages());
        self.node.advance_apply();
        out
    }

    /// Handles one Ready if there is one.
    pub(crate) fn handle_ready(&mut self) -> Option<Vec<Message>> {
        if !self.node.has_ready() {
            return None;
        }
        let rd = self.ready();
        Some(self.process(rd))
    }

    /// Handles Readys until there is none, returning all messages.
    pub(crate) fn drain(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(msgs) = self.handle_ready() {
            out.extend(msgs);
        }
        out
    }

    /// Restarts the node over its storage, telling it everything handed out was applied.
    pub(crate) fn restart(&mut self, cfg: &Config) {
        let cfg = Config {
            applied: self.handed_out.len() as u64,
            ..cfg.clone()
        };
        self.node = match RawNode::new(&cfg, self.storage.clone(), &logger()) {
            Ok(node) => node,
            Err(e) => panic!("node {} cannot restart: {e}", cfg.id),
        };
        self.last_number = 0;
    }
}

/// Voters `1..=n`, each a [`Peer`], and the messages in flight between them.
pub(crate) struct Cluster {
    pub(crate) peers: BTreeMap<u64, Peer>,
    pub(crate) net: VecDeque<Message>,
    pub(crate) config: fn(u64) -> Config,
}

impl Cluster {
    pub(crate) fn new(n: u64, config: fn(u64) -> Config) -> Cluster {
        let ids: Vec<u64> = (1..=n).collect();
        let peers = ids
            .iter()
            .map(|&id| (id, Peer::fresh(&config(id), &ids)))
            .collect();
        Cluster {
            peers,
            net: VecDeque::new(),
            config,
        }
    }

    pub(crate) fn peer(&mut self, id: u64) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such peer")
    }

    /// Delivers one message. Refusals other than a dropped proposal are bugs in a correct run.
    pub(crate) fn deliver(&mut self, m: Message) {
        let Some(peer) = self.peers.get_mut(&m.to) else {
            return;
        };
        let desc = describe_message(&m);
        match peer.node.step(m) {
            Ok(()) | Err(Error::ProposalDropped) => {}
            Err(e) => panic!("node {} refused {desc}: {e}", peer.id()),
        }
    }

    /// Handles one Ready at `id` (if any) and puts its messages on the network.
    pub(crate) fn handle(&mut self, id: u64) -> bool {
        match self.peer(id).handle_ready() {
            Some(msgs) => {
                self.net.extend(msgs);
                true
            }
            None => false,
        }
    }

    /// Handles `rd`, taken from `id` by a test, and puts its messages on the network.
    pub(crate) fn process(&mut self, id: u64, rd: Ready) {
        let msgs = self.peer(id).process(rd);
        self.net.extend(msgs);
    }

    /// Delivers everything in order and handles every Ready until nothing moves.
    pub(crate) fn stabilize(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                while self.handle(id) {
                    moved = true;
                }
            }
            while let Some(m) = self.net.pop_front() {
                moved = true;
                let to = m.to;
                self.deliver(m);
                while self.peers.contains_key(&to) && self.handle(to) {}
            }
            if !moved {
                return;
            }
        }
    }

    pub(crate) fn campaign(&mut self, id: u64) {
        self.peer(id).node.campaign().expect("campaign");
        self.stabilize();
    }

    /// A node that is leader in the highest term any node has reached, if there is one.
    pub(crate) fn leader(&self) -> Option<u64> {
        let top = self.peers.values().map(|p| p.node.raft.term).max()?;
        self.peers
            .values()
            .find(|p| p.node.raft.state == StateRole::Leader && p.node.raft.term == top)
            .map(|p| p.id())
    }

    pub(crate) fn restart(&mut self, id: u64) {
        let cfg = (self.config)(id);
        self.peer(id).restart(&cfg);
    }
}

/// A 3-node cluster in which node 1 was elected and everything settled (index 1 committed).
pub(crate) fn elected_cluster() -> Cluster {
    let mut c = Cluster::new(3, config);
    c.campaign(1);
    assert_eq!(c.leader(), Some(1), "node 1 should have won the election");
    c
}

/// Hands out every committed entry of `p` page by page; returns the pages.
pub(crate) fn collect_pages(p: &mut Peer) -> Vec<Vec<Entry>> {
    let mut pages = Vec::new();
    while p.node.has_ready() {
        let rd = p.ready();
        let page = rd.committed_entries().to_vec();
        persist(&p.storage, &rd);
        if !page.is_empty() {
            pages.push(page);
        }
        let light = p.node.advance(rd).unwrap();
        persist_light(&p.storage, &light);
        if !light.committed_entries().is_empty() {
            pages.push(light.committed_entries().to_vec());
        }
        p.node.advance_apply();
    }
    pages
}
