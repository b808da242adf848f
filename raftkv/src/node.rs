//! The node: one thread that owns the `RawNode`, its storage and the state machine, and runs the
//! Ready loop over events from the network, the clients and a clock.
//!
//! Everything that touches Raft happens on this thread, in this order each turn: take the events
//! that arrived (peer messages are stepped, client requests become proposals or reads), tick if a
//! tick is due, ask for one ReadIndex covering the reads that arrived this turn, then handle Readys
//! until there are none: send `messages`, persist the snapshot, entries and hard state (fsync when
//! `must_sync`), send `persisted_messages`, apply committed entries (answering the clients whose
//! writes they carry), serve reads whose index is applied, `advance`. Last, make a snapshot and
//! compact the log if enough was applied since the previous one.
//!
//! A write is acknowledged only once it is applied on the node that took it, which is after a
//! quorum persisted it: a `kill -9` of any node loses no acknowledged write.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raft_core::eraftpb::{
    ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, Snapshot,
    SnapshotMetadata,
};
use raft_core::raft::decode_conf_change;
use raft_core::{
    Config, Error as RaftError, RawNode, ReadOnlyOption, ReadState, SnapshotStatus, StateRole,
    Storage as _,
};
use slog::{debug, error, info, warn, Logger};

use crate::command::{Command, ReadCommand};
use crate::kv::{Op, StateMachine};
use crate::resp::Reply;
use crate::storage::DiskStorage;
use crate::transport::Transport;

/// How writes sent to a follower are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The follower proposes them; Raft forwards the proposal to the leader.
    Forward,
    /// The follower answers `-MOVED 0 <leader address>` (what `redis-cli -c` follows).
    Redirect,
}

/// How reads are made linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex confirmed by a heartbeat round with a quorum (thesis §6.4).
    Safe,
    /// ReadIndex confirmed by the leader's check-quorum lease (assumes bounded clock drift).
    Lease,
}

/// Everything a node is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (not 0).
    pub id: u64,
    /// The address it listens on, for clients and peers alike.
    pub addr: String,
    /// Where its storage lives.
    pub data_dir: PathBuf,
    /// The members of a new cluster (used only when the storage is empty and `join` is off).
    pub peers: Vec<(u64, String)>,
    /// Start empty and wait to be added to an existing cluster (`RAFT.ADDNODE`).
    pub join: bool,
    /// Writes on a follower: forwarded or redirected.
    pub write_mode: WriteMode,
    /// Reads: ReadIndex with a heartbeat round, or with the leader lease.
    pub read_mode: ReadMode,
    /// The length of one logical clock tick.
    pub tick: Duration,
    /// Ticks without a leader before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Entries applied between two snapshots.
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot, for followers that are only a little behind.
    pub keep_entries: u64,
    /// How long a client request may wait for a leader, a commit or a read confirmation.
    pub request_timeout: Duration,
}

impl NodeConfig {
    /// A configuration with the defaults for node `id` listening on `addr`.
    pub fn new(id: u64, addr: impl Into<String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            addr: addr.into(),
            data_dir: data_dir.into(),
            peers: Vec::new(),
            join: false,
            write_mode: WriteMode::Forward,
            read_mode: ReadMode::Safe,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 10_000,
            keep_entries: 1_000,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The Raft core or the storage failed.
    #[error("raft: {0}")]
    Raft(#[from] RaftError),
    /// A socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration or the stored state is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// What the node's loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A message from a peer (boxed: it is much larger than the other events).
    Peer(Box<Message>),
    /// A peer connected and named itself.
    Hello {
        /// Its id.
        id: u64,
        /// The address it listens on.
        addr: String,
    },
    /// A message to this peer could not be delivered.
    Unreachable(u64),
    /// How sending a snapshot to this peer ended.
    SnapshotStatus(u64, SnapshotStatus),
    /// A client's request.
    Client(Request),
}

/// A client's command and where its reply goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The reply channel (the connection thread waits on it).
    pub reply: Sender<Reply>,
}

/// The most events handled before the node looks at its Readys again.
const MAX_EVENTS_PER_TURN: usize = 4096;

/// A request that is not yet proposed (no leader known, or the proposal was dropped).
struct Waiting {
    command: Command,
    reply: Sender<Reply>,
    deadline: Instant,
}

/// A write or conf change proposed and not yet applied here.
struct Proposed {
    reply: Sender<Reply>,
    deadline: Instant,
}

/// A read waiting for its read index, or for the state machine to reach it.
struct PendingRead {
    command: ReadCommand,
    reply: Sender<Reply>,
    deadline: Instant,
}

/// The reads covered by one `read_index` request.
struct ReadBatch {
    reads: Vec<PendingRead>,
    /// When `read_index` last accepted it (`None`: it must be asked again).
    sent_at: Option<Instant>,
}

/// The context of a proposal or read: this node's id and a sequence number.
fn request_context(id: u64, seq: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&id.to_be_bytes());
    ctx.extend_from_slice(&seq.to_be_bytes());
    ctx
}

/// The sequence number in a context made by node `id`, if it is one of its own.
fn own_sequence(id: u64, ctx: &[u8]) -> Option<u64> {
    let (origin, seq) = ctx.split_first_chunk::<8>()?;
    let seq: [u8; 8] = seq.try_into().ok()?;
    (u64::from_be_bytes(*origin) == id).then_some(u64::from_be_bytes(seq))
}

fn role_name(role: StateRole) -> &'static str {
    match role {
        StateRole::Follower => "follower",
        StateRole::Candidate => "candidate",
        StateRole::Leader => "leader",
        StateRole::PreCandidate => "pre-candidate",
    }
}

fn join_ids(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// The first state of a new cluster of `peers`, which every initial member installs alike: a
/// snapshot at index 1, term 1, holding the membership and the address book. Starting from a
/// snapshot rather than an empty log means a node added later is always sent a snapshot first,
/// so it learns the initial members (which no log entry names) from it.
pub fn bootstrap_snapshot(peers: &[(u64, String)]) -> Result<Snapshot, NodeError> {
    let conf_state = raft_core::confchange::bootstrap(peers.iter().map(|(id, _)| *id), [])?;
    let sm = StateMachine {
        members: peers.iter().cloned().collect(),
        ..Default::default()
    };
    Ok(Snapshot {
        data: sm.encode(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state),
            index: 1,
            term: 1,
        }),
    })
}

/// A running node.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<DiskStorage>,
    storage: DiskStorage,
    sm: StateMachine,
    transport: Transport,
    logger: Logger,
    next_seq: u64,
    waiting: VecDeque<Waiting>,
    proposed: HashMap<u64, Proposed>,
    new_reads: Vec<PendingRead>,
    reads_in_flight: HashMap<u64, ReadBatch>,
    reads_confirmed: Vec<(u64, Vec<PendingRead>)>,
    /// This node applied its own removal: it stops ticking and refuses requests.
    removed: bool,
    snapshots_installed: u64,
    snapshots_made: u64,
}

impl Node {
    /// Opens (or bootstraps) the storage and builds the node. `events` is the sender the node's
    /// transport reports on (the same channel its loop reads).
    pub fn new(cfg: NodeConfig, events: Sender<Event>, logger: Logger) -> Result<Node, NodeError> {
        let storage = DiskStorage::open(&cfg.data_dir)?;
        let recovery = storage.rl().recovery().clone();
        if recovery.truncated_bytes > 0 || recovery.log_reset {
            warn!(logger, "recovered storage"; "truncated_bytes" => recovery.truncated_bytes,
                "log_reset" => recovery.log_reset);
        }
        if !storage.is_initialized() {
            if cfg.join {
                info!(
                    logger,
                    "empty storage: waiting for a leader to add this node"
                );
            } else {
                if !cfg.peers.iter().any(|(id, _)| *id == cfg.id) {
                    return Err(NodeError::Invalid(format!(
                        "a new cluster's --peers must include this node ({})",
                        cfg.id
                    )));
                }
                info!(logger, "bootstrapping a new cluster"; "peers" => ?cfg.peers);
                storage.initialize(bootstrap_snapshot(&cfg.peers)?)?;
            }
        }
        let sm = match storage.rl().latest_snapshot() {
            Some(snapshot) => StateMachine::decode(&snapshot)
                .map_err(|e| NodeError::Invalid(format!("stored snapshot: {e}")))?,
            None => StateMachine::default(),
        };
        let config = Config {
            id: cfg.id,
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            // The state machine restarts from the snapshot; the log after it is applied again.
            applied: sm.applied_index,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            read_only_option: match cfg.read_mode {
                ReadMode::Safe => ReadOnlyOption::Safe,
                ReadMode::Lease => ReadOnlyOption::LeaseBased,
            },
            max_committed_size_per_ready: 16 * 1024 * 1024,
            ..Config::default()
        };
        let raw = RawNode::new(&config, storage.clone(), &logger)?;
        let transport = Transport::new(cfg.id, cfg.addr.clone(), events, logger.clone());
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut node = Node {
            cfg,
            raw,
            storage,
            sm,
            transport,
            logger,
            // Sequence numbers of a new incarnation never repeat those of an earlier one, so an
            // old entry applied after a restart cannot answer a new request.
            next_seq: epoch,
            waiting: VecDeque::new(),
            proposed: HashMap::new(),
            new_reads: Vec::new(),
            reads_in_flight: HashMap::new(),
            reads_confirmed: Vec::new(),
            removed: false,
            snapshots_installed: 0,
            snapshots_made: 0,
        };
        node.sync_peers();
        if node.raw.raft.prs.conf().voters.ids() == [node.cfg.id] {
            // A single voter need not wait an election timeout to lead.
            node.raw.campaign()?;
        }
        Ok(node)
    }

    /// Runs the loop until the event channel closes. Returns an error only for a failure that
    /// makes going on unsafe (the disk failed).
    pub fn run(mut self, events: Receiver<Event>) -> Result<(), NodeError> {
        let mut next_tick = Instant::now() + self.cfg.tick;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            match events.recv_timeout(timeout) {
                Ok(event) => {
                    self.on_event(event);
                    for event in events.try_iter().take(MAX_EVENTS_PER_TURN) {
                        self.on_event(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            if now >= next_tick {
                self.on_tick(now);
                next_tick += self.cfg.tick;
                if next_tick < now {
                    // The loop stalled (a slow fsync): skip the missed ticks rather than fire
                    // them at once, which could start a needless election.
                    next_tick = now + self.cfg.tick;
                }
            }
            self.flush_reads();
            self.handle_readies()?;
            self.maybe_snapshot()?;
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Peer(msg) => {
                if msg.to != self.cfg.id {
                    debug!(self.logger, "dropped a message for another node"; "to" => msg.to);
                    return;
                }
                if let Err(e) = self.raw.step(*msg) {
                    debug!(self.logger, "step refused a message"; "error" => %e);
                }
            }
            Event::Hello { id, addr } => {
                // An address the address book lacks (say, the leader of a cluster this node is
                // joining, before the snapshot arrives) is learnt from the peer itself.
                if !self.sm.members.contains_key(&id) && self.transport.peer_addr(id).is_none() {
                    self.transport.set_peer(id, &addr);
                }
            }
            Event::Unreachable(id) => self.raw.report_unreachable(id),
            Event::SnapshotStatus(id, status) => self.raw.report_snapshot(id, status),
            Event::Client(request) => {
                let deadline = Instant::now() + self.cfg.request_timeout;
                self.on_request(request, deadline);
            }
        }
    }

    fn on_request(&mut self, request: Request, deadline: Instant) {
        let Request { command, reply } = request;
        if self.removed {
            let _ = reply.send(Reply::err("this node was removed from the cluster"));
            return;
        }
        match command {
            Command::Ping(None) => send(&reply, Reply::Status("PONG".to_string())),
            Command::Ping(Some(message)) | Command::Echo(message) => {
                send(&reply, Reply::Bulk(message))
            }
            Command::Quit => send(&reply, Reply::ok()),
            Command::Info => send(&reply, Reply::Bulk(self.info().into_bytes())),
            Command::Status => send(&reply, Reply::Bulk(self.status().into_bytes())),
            Command::Read(command) => self.new_reads.push(PendingRead {
                command,
                reply,
                deadline,
            }),
            Command::Transfer(id) => {
                if !self.raw.raft.prs.conf().voters.contains(id) {
                    send(&reply, Reply::err(format!("node {id} is not a voter")));
                    return;
                }
                // Asynchronous: the leader brings `id` up to date, then tells it to campaign.
                self.raw.transfer_leader(id);
                send(&reply, Reply::ok());
            }
            command @ (Command::Write(_) | Command::AddNode { .. } | Command::RemoveNode(_)) => {
                let w = Waiting {
                    command,
                    reply,
                    deadline,
                };
                // Behind any write already waiting, so that writes keep their order.
                if !self.waiting.is_empty() {
                    self.waiting.push_back(w);
                } else if let Some(w) = self.start_write(w) {
                    self.waiting.push_back(w);
                }
            }
        }
    }

    /// The leader's address, if a leader is known.
    fn leader_addr(&self) -> Option<String> {
        let leader = self.raw.raft.leader_id;
        if leader == 0 {
            return None;
        }
        if leader == self.cfg.id {
            return Some(self.cfg.addr.clone());
        }
        self.sm
            .members
            .get(&leader)
            .cloned()
            .or_else(|| self.transport.peer_addr(leader).map(str::to_string))
    }

    /// Proposes a write or conf change, or answers a redirect. Returns the request if it must
    /// wait (no leader known, or the proposal was dropped) to be tried again at the next tick.
    fn start_write(&mut self, w: Waiting) -> Option<Waiting> {
        let is_leader = self.raw.raft.state == StateRole::Leader;
        if matches!(w.command, Command::Write(_))
            && self.cfg.write_mode == WriteMode::Redirect
            && !is_leader
        {
            return match self.leader_addr() {
                Some(addr) => {
                    send(&w.reply, Reply::Error(format!("MOVED 0 {addr}")));
                    None
                }
                None => Some(w),
            };
        }
        let seq = self.next_seq();
        let ctx = request_context(self.cfg.id, seq);
        let change = |change_type: ConfChangeType, node_id: u64, context: Vec<u8>| ConfChangeV2 {
            changes: vec![ConfChangeSingle {
                change_type: change_type as i32,
                node_id,
            }],
            context: context.into(),
            ..Default::default()
        };
        let result = match &w.command {
            Command::Write(op) => self.raw.propose(ctx, op.encode()),
            Command::AddNode { id, addr } => self.raw.propose_conf_change(
                ctx,
                change(ConfChangeType::AddNode, *id, addr.as_bytes().to_vec()),
            ),
            Command::RemoveNode(id) => self
                .raw
                .propose_conf_change(ctx, change(ConfChangeType::RemoveNode, *id, Vec::new())),
            _ => Err(RaftError::Invariant(
                "start_write of a command that is not a write",
            )),
        };
        match result {
            Ok(()) => {
                self.proposed.insert(
                    seq,
                    Proposed {
                        reply: w.reply,
                        deadline: w.deadline,
                    },
                );
                None
            }
            // No leader known, or one is being transferred to: try again at the next tick.
            Err(RaftError::ProposalDropped) => Some(w),
            Err(e) => {
                send(&w.reply, Reply::err(e));
                None
            }
        }
    }

    /// Asks for one read index covering every read that arrived this turn.
    fn flush_reads(&mut self) {
        if self.new_reads.is_empty() {
            return;
        }
        let seq = self.next_seq();
        let batch = ReadBatch {
            reads: std::mem::take(&mut self.new_reads),
            sent_at: None,
        };
        self.reads_in_flight.insert(seq, batch);
        self.send_read(seq);
    }

    fn send_read(&mut self, seq: u64) {
        let ctx = request_context(self.cfg.id, seq);
        let accepted = self.raw.read_index(ctx).is_ok();
        if let Some(batch) = self.reads_in_flight.get_mut(&seq) {
            // When refused (no leader known) it is asked again at the next tick.
            batch.sent_at = accepted.then(Instant::now);
        }
    }

    fn on_read_states(&mut self, states: Vec<ReadState>) {
        for state in states {
            let Some(seq) = own_sequence(self.cfg.id, &state.request_ctx) else {
                continue;
            };
            if let Some(batch) = self.reads_in_flight.remove(&seq) {
                self.reads_confirmed.push((state.index, batch.reads));
            }
        }
        self.serve_confirmed_reads();
    }

    /// Answers the confirmed reads whose index the state machine has reached (thesis §6.4: the
    /// read sees every write committed before it was received).
    fn serve_confirmed_reads(&mut self) {
        let applied = self.sm.applied_index;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_confirmed)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_confirmed = later;
        for read in ready.into_iter().flat_map(|(_, reads)| reads) {
            let reply = self.execute_read(&read.command);
            send(&read.reply, reply);
        }
    }

    fn execute_read(&self, command: &ReadCommand) -> Reply {
        let value = |key: &Vec<u8>| {
            self.sm
                .get(key)
                .map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
        };
        match command {
            ReadCommand::Get(key) => value(key),
            ReadCommand::MGet(keys) => Reply::Array(keys.iter().map(value).collect()),
            ReadCommand::Exists(keys) => {
                Reply::Integer(keys.iter().filter(|k| self.sm.get(k).is_some()).count() as i64)
            }
            ReadCommand::DbSize => Reply::Integer(self.sm.data.len() as i64),
        }
    }

    fn on_tick(&mut self, now: Instant) {
        if !self.removed {
            self.raw.tick();
        }
        let mut queue = std::mem::take(&mut self.waiting);
        while let Some(w) = queue.pop_front() {
            if now >= w.deadline {
                send(
                    &w.reply,
                    Reply::Error("CLUSTERDOWN no leader is known; try again".into()),
                );
            } else if let Some(w) = self.start_write(w) {
                // Still no way through: it and everything behind it wait for the next tick.
                self.waiting.push_back(w);
                self.waiting.append(&mut queue);
            }
        }
        self.proposed.retain(|_, p| {
            let keep = now < p.deadline;
            if !keep {
                send(
                    &p.reply,
                    Reply::Error(
                        "TIMEOUT the write was not applied in time; it may still take effect"
                            .into(),
                    ),
                );
            }
            keep
        });
        let expire = |reads: &mut Vec<PendingRead>| {
            reads.retain(|r| {
                let keep = now < r.deadline;
                if !keep {
                    send(
                        &r.reply,
                        Reply::Error(
                            "CLUSTERDOWN the read was not confirmed by a leader in time".into(),
                        ),
                    );
                }
                keep
            })
        };
        self.reads_in_flight
            .values_mut()
            .for_each(|b| expire(&mut b.reads));
        self.reads_in_flight.retain(|_, b| !b.reads.is_empty());
        self.reads_confirmed
            .iter_mut()
            .for_each(|(_, reads)| expire(reads));
        self.reads_confirmed.retain(|(_, reads)| !reads.is_empty());
        // A forwarded read is lost if the leader changes; ask again after an election timeout
        // (a read has no effect, so asking twice is harmless).
        let retry_after = self.cfg.tick * self.cfg.election_ticks as u32;
        let resend: Vec<u64> = self
            .reads_in_flight
            .iter()
            .filter(|(_, b)| {
                b.sent_at
                    .is_none_or(|at| now.duration_since(at) >= retry_after)
            })
            .map(|(seq, _)| *seq)
            .collect();
        for seq in resend {
            self.send_read(seq);
        }
    }

    /// Handles every Ready the node has.
    fn handle_readies(&mut self) -> Result<(), NodeError> {
        while self.raw.has_ready() {
            let mut rd = self.raw.ready()?;
            // A leader's appends and heartbeats may leave before its own write (thesis §10.2.1).
            self.transport.send(rd.take_messages());
            if !rd.snapshot().is_empty() {
                self.install_snapshot(rd.snapshot().clone())?;
            }
            {
                let mut store = self.storage.wl();
                store.append(rd.entries())?;
                if let Some(hs) = rd.hard_state() {
                    store.set_hard_state(*hs)?;
                }
                if rd.must_sync() {
                    store.sync()?;
                }
            }
            // Votes and append acknowledgements promise durable state: only now.
            self.transport.send(rd.take_persisted_messages());
            self.apply_entries(rd.take_committed_entries());
            self.on_read_states(rd.take_read_states());
            let dropped: Vec<u64> = rd
                .dropped_read_requests()
                .iter()
                .filter_map(|ctx| own_sequence(self.cfg.id, ctx))
                .collect();
            let mut light = self.raw.advance(rd)?;
            if let Some(commit) = light.commit_index() {
                self.storage.wl().set_commit(commit)?;
            }
            self.transport.send(light.take_messages());
            self.apply_entries(light.take_committed_entries());
            self.raw.advance_apply();
            // Reads this node led and lost with its leadership: ask again (the next leader, or
            // at the next tick if none is known yet).
            for seq in dropped {
                self.send_read(seq);
            }
        }
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), NodeError> {
        let sm = StateMachine::decode(&snapshot)
            .map_err(|e| NodeError::Invalid(format!("snapshot from the leader: {e}")))?;
        self.storage.wl().apply_snapshot(snapshot)?;
        info!(self.logger, "installed a snapshot"; "index" => sm.applied_index,
            "keys" => sm.data.len());
        self.sm = sm;
        self.snapshots_installed += 1;
        self.sync_peers();
        self.serve_confirmed_reads();
        Ok(())
    }

    /// Makes the transport's peers the address book's.
    fn sync_peers(&mut self) {
        let members: Vec<(u64, String)> = self
            .sm
            .members
            .iter()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        for (id, addr) in members {
            self.transport.set_peer(id, &addr);
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.index <= self.sm.applied_index {
                continue;
            }
            match EntryType::try_from(entry.entry_type) {
                Ok(EntryType::EntryNormal) if entry.data.is_empty() => {}
                Ok(EntryType::EntryNormal) => {
                    let reply = match Op::decode(&entry.data) {
                        Ok(op) => self.sm.apply_op(op),
                        Err(e) => Reply::err(e),
                    };
                    self.answer(&entry.context, reply);
                }
                _ => self.apply_conf_change(&entry),
            }
            self.sm.applied_index = entry.index;
        }
        self.serve_confirmed_reads();
    }

    fn apply_conf_change(&mut self, entry: &Entry) {
        let cc = match decode_conf_change(entry) {
            Some(Ok(cc)) => cc,
            _ => {
                warn!(self.logger, "a conf change entry does not decode"; "index" => entry.index);
                self.answer(&entry.context, Reply::err("malformed membership change"));
                return;
            }
        };
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => {
                // Every replica refuses it alike; the membership is unchanged.
                warn!(self.logger, "membership change refused"; "error" => %e);
                self.answer(&entry.context, Reply::err(e));
                return;
            }
        };
        info!(self.logger, "membership changed"; "voters" => ?cs.voters, "learners" => ?cs.learners);
        self.sm.conf_state = cs;
        for change in &cc.changes {
            let id = change.node_id;
            match ConfChangeType::try_from(change.change_type) {
                Ok(ConfChangeType::AddNode | ConfChangeType::AddLearnerNode) => {
                    if let Ok(addr) = String::from_utf8(cc.context.to_vec()) {
                        if !addr.is_empty() {
                            self.transport.set_peer(id, &addr);
                            self.sm.members.insert(id, addr);
                        }
                    }
                }
                Ok(ConfChangeType::RemoveNode) => {
                    self.sm.members.remove(&id);
                    self.transport.remove_peer(id);
                    if id == self.cfg.id {
                        info!(self.logger, "this node was removed from the cluster");
                        self.removed = true;
                    }
                }
                Err(_) => {}
            }
        }
        self.answer(&entry.context, Reply::ok());
        if self.removed {
            self.fail_everything("this node was removed from the cluster");
        }
    }

    /// Sends `reply` to the client whose proposal carried `ctx`, if it is waiting on this node.
    fn answer(&mut self, ctx: &[u8], reply: Reply) {
        if let Some(seq) = own_sequence(self.cfg.id, ctx) {
            if let Some(proposed) = self.proposed.remove(&seq) {
                send(&proposed.reply, reply);
            }
        }
    }

    fn fail_everything(&mut self, why: &str) {
        let reply = Reply::err(why);
        for (_, p) in self.proposed.drain() {
            send(&p.reply, reply.clone());
        }
        for w in self.waiting.drain(..) {
            send(&w.reply, reply.clone());
        }
        let reads = self.reads_in_flight.drain().flat_map(|(_, b)| b.reads);
        let reads = reads.chain(self.reads_confirmed.drain(..).flat_map(|(_, r)| r));
        for r in reads.chain(self.new_reads.drain(..)) {
            send(&r.reply, reply.clone());
        }
    }

    /// Snapshots the state machine and compacts the log once enough was applied since the last
    /// snapshot, or when a follower needs a newer one than storage has.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let applied = self.sm.applied_index;
        let (snapshot_index, commit, wanted) = {
            let store = self.storage.rl();
            (
                store.snapshot_metadata().index,
                store.hard_state().commit,
                store.take_snapshot_request(),
            )
        };
        let due = applied >= snapshot_index + self.cfg.snapshot_entries.max(1);
        if !(due || wanted.is_some()) || applied <= snapshot_index || applied > commit {
            return Ok(());
        }
        let mut store = self.storage.wl();
        store.create_snapshot(applied, self.sm.conf_state.clone(), self.sm.encode())?;
        let first_kept = (applied + 1).saturating_sub(self.cfg.keep_entries).max(1);
        store.compact(first_kept)?;
        self.snapshots_made += 1;
        debug!(self.logger, "snapshot made"; "index" => applied, "first_index" => store.first_log_index());
        Ok(())
    }

    /// The `INFO` text: `# Section` headers and `field:value` lines, as Redis writes it.
    fn info(&self) -> String {
        let status = self.raw.basic_status();
        let store = self.storage.rl();
        let conf = &self.sm.conf_state;
        let role = if self.removed {
            "removed"
        } else {
            role_name(status.soft_state.raft_state)
        };
        let members: Vec<String> = self
            .sm
            .members
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let mut out = String::new();
        let mut section = |name: &str, fields: &[(&str, String)]| {
            let _ = write!(out, "# {name}\r\n");
            for (key, value) in fields {
                let _ = write!(out, "{key}:{value}\r\n");
            }
        };
        section(
            "Server",
            &[
                ("raftkv_version", env!("CARGO_PKG_VERSION").to_string()),
                ("process_id", std::process::id().to_string()),
                ("node_id", self.cfg.id.to_string()),
                ("address", self.cfg.addr.clone()),
            ],
        );
        section(
            "Raft",
            &[
                ("role", role.to_string()),
                ("term", status.hard_state.term.to_string()),
                ("voted_for", status.hard_state.vote.to_string()),
                ("leader_id", status.soft_state.leader_id.to_string()),
                ("leader_address", self.leader_addr().unwrap_or_default()),
                ("commit_index", status.hard_state.commit.to_string()),
                ("applied_index", self.sm.applied_index.to_string()),
                ("first_index", store.first_log_index().to_string()),
                ("last_index", store.last_log_index().to_string()),
                (
                    "snapshot_index",
                    store.snapshot_metadata().index.to_string(),
                ),
                ("snapshots_made", self.snapshots_made.to_string()),
                ("snapshots_installed", self.snapshots_installed.to_string()),
                ("voters", join_ids(&conf.voters)),
                ("learners", join_ids(&conf.learners)),
                ("members", members.join(",")),
                (
                    "read_mode",
                    format!("{:?}", self.cfg.read_mode).to_lowercase(),
                ),
                (
                    "write_mode",
                    format!("{:?}", self.cfg.write_mode).to_lowercase(),
                ),
            ],
        );
        section("Keyspace", &[("keys", self.sm.data.len().to_string())]);
        out
    }

    /// The `RAFT.STATUS` text: the Raft state, and every member's progress on the leader.
    fn status(&self) -> String {
        let status = self.raw.status();
        let basic = status.basic;
        let mut out = String::new();
        let _ = write!(
            out,
            "id:{}\r\nrole:{}\r\nterm:{}\r\nvote:{}\r\nleader_id:{}\r\ncommit:{}\r\napplied:{}\r\n",
            basic.id,
            role_name(basic.soft_state.raft_state),
            basic.hard_state.term,
            basic.hard_state.vote,
            basic.soft_state.leader_id,
            basic.hard_state.commit,
            basic.applied,
        );
        let _ = write!(
            out,
            "last_index:{}\r\nlead_transferee:{}\r\n",
            self.storage.last_index().unwrap_or_default(),
            basic.lead_transferee.unwrap_or_default()
        );
        for (id, pr) in &status.progress {
            let _ = write!(
                out,
                "progress_{id}:match={},next={},state={},recent_active={},learner={}\r\n",
                pr.matched, pr.next_idx, pr.state, pr.recent_active as u8, pr.is_learner as u8
            );
        }
        out
    }
}

fn send(to: &Sender<Reply>, reply: Reply) {
    // The client may have gone away; its reply is simply not wanted any more.
    let _ = to.send(reply);
}

/// Logs a fatal error and its context; used by the binary before exiting.
pub fn log_fatal(logger: &Logger, e: &NodeError) {
    error!(logger, "node stopped"; "error" => %e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_contexts_are_recognised_only_by_their_origin() {
        let ctx = request_context(3, 42);
        assert_eq!(own_sequence(3, &ctx), Some(42));
        assert_eq!(own_sequence(4, &ctx), None, "another node's request");
        assert_eq!(own_sequence(3, &ctx[..15]), None, "a truncated context");
        assert_eq!(
            own_sequence(3, b""),
            None,
            "the empty context of a leader's own entry"
        );
    }

    #[test]
    fn bootstrap_snapshot_carries_membership_and_addresses() {
        let peers = vec![
            (1, "127.0.0.1:1".to_string()),
            (2, "127.0.0.1:2".to_string()),
        ];
        let snapshot = bootstrap_snapshot(&peers).unwrap();
        let sm = StateMachine::decode(&snapshot).unwrap();
        assert_eq!(sm.applied_index, 1);
        assert_eq!(sm.conf_state.voters, vec![1, 2]);
        assert_eq!(sm.members.into_iter().collect::<Vec<_>>(), peers);
        assert!(bootstrap_snapshot(&[]).is_err(), "a cluster needs a voter");
    }
}
