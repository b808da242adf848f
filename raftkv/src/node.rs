//! The node: one thread that owns the `RawNode`, its storage and the state machine, and runs the
//! Ready loop over events from the network, the clients and a clock.
//!
//! Everything that touches Raft happens on this thread, in this order each turn: take the events
//! that arrived (peer messages are stepped, client requests become proposals or reads, a sync
//! that ended reports its Readys persisted), tick if a tick is due, ask for one ReadIndex
//! covering the reads that arrived this turn, then handle Readys until there are none: send
//! `messages`, write the entries and hard state and hand their fsync to the sync thread
//! (`persist`), apply committed entries (answering the clients whose writes they carry), serve
//! reads whose index is applied. A Ready's `persisted_messages` leave when the fsync that covers
//! it has returned. Last, make a snapshot and compact the log if enough was applied since the
//! previous one.
//!
//! A write is acknowledged only once it is applied on the node that took it, which is after a
//! quorum persisted it: a `kill -9` of any node loses no acknowledged write.
//!
//! The loop and its state are here; the rest is split by concern: [`NodeConfig`] and the modes
//! (`config`), the [`Event`]s the loop reacts to (`event`), client requests and writes
//! (`requests`), linearizable reads (`reads`), the Ready handling and applying (`ready`),
//! persisting with the fsync on another thread (`persist`), snapshots (`snapshot`), the wall
//! clock's way into the log (`expiry`: write stamps and the leader's expiry sweeps) and the
//! `INFO` / `RAFT.STATUS` texts (`info`).

mod config;
mod expiry;
mod info;
pub(crate) mod options_file;
mod persist;
mod reads;
mod ready;
mod requests;
mod snapshot;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raft_core::{Error as RaftError, RawNode, StateRole};
use slog::{debug, error, info, warn, Logger};

use crate::event::Outbox;
use crate::kv::StateMachine;
use crate::storage::NodeStorage;
use crate::transport::Transport;
use persist::{Durable, Persistence};
use reads::{PendingRead, ReadBatch};
use requests::{Proposed, Waiting};

pub use crate::event::{Event, Request};
pub use config::{NodeConfig, ReadMode, WriteMode};
pub use snapshot::bootstrap_snapshot;

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

/// The most events handled before the node looks at its Readys again.
const MAX_EVENTS_PER_TURN: usize = 4096;

/// A running node.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<NodeStorage>,
    storage: NodeStorage,
    sm: StateMachine,
    transport: Transport,
    logger: Logger,
    next_seq: u64,
    /// Drawn when the process started (the first sequence number): names this incarnation in
    /// the write sessions.
    incarnation: u64,
    /// The leader last seen: when it changes, the writes not applied yet are proposed again.
    last_leader: u64,
    waiting: VecDeque<Waiting>,
    proposed: BTreeMap<u64, Proposed>,
    new_reads: Vec<PendingRead>,
    reads_in_flight: HashMap<u64, ReadBatch>,
    reads_confirmed: Vec<(u64, Vec<PendingRead>)>,
    /// This node applied its own removal: it stops ticking and refuses requests.
    removed: bool,
    snapshots_installed: u64,
    snapshots_made: u64,
    /// Linearizable reads answered, and the `read_index` requests made for them (`INFO`).
    reads_served: u64,
    read_rounds: u64,
    /// The index of the snapshot being made on a background thread, if one is.
    snapshot_in_progress: Option<u64>,
    /// Where the snapshot thread reports (the loop's own channel).
    events: Sender<Event>,
    /// When this node, leading, last proposed an `ExpireSweep`.
    last_sweep: Option<Instant>,
    /// Replies on their way to the I/O thread, flushed after each Ready and each turn.
    outbox: Outbox,
    /// Writes the Readys and runs their fsyncs on the sync thread.
    persistence: Persistence,
}

impl Node {
    /// Opens (or bootstraps) the storage and builds the node. `events` is the sender the node's
    /// transport reports on (the same channel its loop reads); its peer connections run on the
    /// I/O thread `io`.
    pub fn new(
        cfg: NodeConfig,
        events: Sender<Event>,
        io: tokio::runtime::Handle,
        logger: Logger,
    ) -> Result<Node, NodeError> {
        let storage = NodeStorage::open(&cfg.data_dir)?;
        let mut cfg = cfg;
        options_file::reconcile(&mut cfg, &logger)?;
        let recovery = storage.recovery();
        if let Some(torn) = &recovery.torn_tail {
            // A write the crash interrupted, never fsynced, so never acknowledged (storage-disk's
            // docs name the one case it cannot tell from a lost synced sector).
            warn!(logger, "recovered storage: cut a torn tail"; "file" => %torn.path.display(),
                "offset" => torn.offset, "bytes" => torn.bytes_dropped,
                "shape" => ?torn.shape);
        }
        if let Some(rolled) = &recovery.rolled_forward {
            // The storage is whole, but the disk lost a write it had acknowledged.
            warn!(logger, "recovered storage: the state file had lost its latest checkpoint, \
                rolled forward from the log's copy (a sign of a failing disk)";
                "state_file" => %rolled.state_file.display(),
                "slot_sequence" => ?rolled.slot_sequence,
                "witnessed_sequence" => rolled.witnessed_sequence,
                "witness" => %rolled.witness_path.display(),
                "offset" => rolled.witness_offset);
        }
        if !recovery.removed.is_empty() {
            info!(logger, "recovered storage: removed leftovers"; "files" => ?recovery.removed);
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
        let sm = match storage.latest_snapshot() {
            Some(snapshot) => StateMachine::decode(&snapshot)
                .map_err(|e| NodeError::Invalid(format!("stored snapshot: {e}")))?,
            None => StateMachine::default(),
        };
        // The state machine restarts from the snapshot; the log after it is applied again.
        let config = cfg.raft_config(sm.applied_index);
        let raw = RawNode::new(&config, storage.clone(), &logger)?;
        let outbox = Outbox::new(&io);
        let persistence = Persistence::new(storage.clone(), events.clone())?;
        let transport = Transport::new(
            cfg.id,
            cfg.addr.clone(),
            cfg.cluster_secret.clone(),
            events.clone(),
            io,
            logger.clone(),
        );
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
            incarnation: epoch,
            last_leader: 0,
            waiting: VecDeque::new(),
            proposed: BTreeMap::new(),
            new_reads: Vec::new(),
            reads_in_flight: HashMap::new(),
            reads_confirmed: Vec::new(),
            removed: false,
            snapshots_installed: 0,
            snapshots_made: 0,
            reads_served: 0,
            read_rounds: 0,
            snapshot_in_progress: None,
            events,
            last_sweep: None,
            outbox,
            persistence,
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
    ///
    /// The logical clock follows the monotonic clock: on a leader, every tick that elapsed is
    /// delivered before the next message is stepped or the next read is asked for, however long
    /// the loop was held up (a process pause, a VM stall, a slow fsync). A leader lease therefore
    /// never outlives a pause (issue 19); `raft_core::ReadOnlyOption::LeaseBased` states the
    /// rule. A follower steps the messages that arrived first, then gets its ticks (still before
    /// any read is asked for), so that being held up does not make it campaign.
    pub fn run(mut self, events: Receiver<Event>) -> Result<(), NodeError> {
        let mut clock = Clock::new(Instant::now(), self.cfg.tick, self.cfg.election_ticks);
        loop {
            let timeout = clock.next.saturating_duration_since(Instant::now());
            let first = match events.recv_timeout(timeout) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            if let Some(event) = first {
                self.leader_catch_up(&mut clock);
                self.on_event(event)?;
                for event in events.try_iter().take(MAX_EVENTS_PER_TURN) {
                    self.leader_catch_up(&mut clock);
                    self.on_event(event)?;
                }
            }
            self.catch_up(&mut clock);
            self.flush_reads();
            // Answers known without the log (refusals, timeouts, PING) do not wait for a fsync.
            self.outbox.flush();
            let handled = self.handle_readies();
            // Whatever was answered this turn leaves now, even when the disk failed.
            self.outbox.flush();
            handled?;
            self.maybe_snapshot()?;
            self.outbox.flush();
        }
    }

    /// On a leader, delivers the ticks that are due by now before the next event: its lease
    /// must not outlive the time the loop was held up. A follower instead hears first what
    /// arrived meanwhile (ticks follow at the end of the turn): a follower held up by its own
    /// work, say installing a large snapshot, would otherwise time out and campaign with the
    /// leader's heartbeats unread in its queue. Late ticks only delay a follower's timeout.
    fn leader_catch_up(&mut self, clock: &mut Clock) {
        if self.raw.raft.state == StateRole::Leader {
            self.catch_up(clock);
        }
    }

    /// Delivers the ticks that are due by now, if any.
    fn catch_up(&mut self, clock: &mut Clock) {
        let now = Instant::now();
        let due = clock.due(now);
        if due > 0 {
            self.on_tick(now, due);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Handles one event. Returns an error only when the disk failed.
    fn on_event(&mut self, event: Event) -> Result<(), NodeError> {
        match event {
            Event::Peer(msg) => {
                if msg.to != self.cfg.id {
                    debug!(self.logger, "dropped a message for another node"; "to" => msg.to);
                    return Ok(());
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
            Event::Clients(requests) => {
                let deadline = Instant::now() + self.cfg.request_timeout;
                for request in requests {
                    self.on_request(request, deadline);
                }
            }
            Event::SnapshotMade(made) => return self.on_snapshot_made(*made),
            Event::Synced { id, finished } => {
                if let Some(durable) = self.persistence.on_synced(id, *finished)? {
                    self.on_durable(durable);
                }
            }
        }
        Ok(())
    }

    /// Readys became durable: the node counts what they carried (a leader its own entries
    /// towards commit), and the messages that promised it leave.
    fn on_durable(&mut self, durable: Durable) {
        self.raw.on_persist_ready(durable.number);
        self.transport.send(durable.messages);
    }

    /// `ticks` ticks of the logical clock: Raft ticks (unless this node was removed), then the
    /// writes waiting for a leader are tried again, the requests past their deadline fail, and
    /// a leader proposes an expiry sweep if one is due.
    fn on_tick(&mut self, now: Instant, ticks: u64) {
        if !self.removed {
            for _ in 0..ticks {
                self.raw.tick();
            }
        }
        self.retry_and_expire_writes(now);
        self.expire_and_resend_reads(now);
        self.maybe_propose_sweep(now);
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
}

/// The logical clock's schedule on the monotonic clock.
struct Clock {
    /// When the next tick is due.
    next: Instant,
    tick: Duration,
    /// The most ticks delivered at once: past four election timeouts every timer of the node has
    /// run out (its lease, its election timeout, a leader's quorum check), so more would only
    /// send heartbeats nobody needs.
    max_burst: u64,
}

impl Clock {
    fn new(now: Instant, tick: Duration, election_ticks: usize) -> Clock {
        Clock {
            next: now + tick,
            tick,
            max_burst: 4 * election_ticks.max(1) as u64,
        }
    }

    /// How many ticks are due at `now` (capped at `max_burst`); schedules the next one.
    fn due(&mut self, now: Instant) -> u64 {
        if now < self.next {
            return 0;
        }
        let late = now.duration_since(self.next).as_nanos() / self.tick.as_nanos().max(1);
        let due = u64::try_from(late).unwrap_or(u64::MAX).saturating_add(1);
        // The next tick comes one period after the last one due, not `due` periods after the
        // schedule: a long pause does not leave the clock behind.
        self.next += self.tick * u32::try_from(due).unwrap_or(u32::MAX);
        if self.next <= now {
            self.next = now + self.tick;
        }
        due.min(self.max_burst)
    }
}

/// Logs a fatal error and its context; used by the binary before exiting.
pub fn log_fatal(logger: &Logger, e: &NodeError) {
    error!(logger, "node stopped"; "error" => %e);
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn every_elapsed_tick_is_due_up_to_the_burst_cap() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = Clock::new(start, ms(10), 5);
        assert_eq!(clock.due(start + ms(9)), 0, "not yet");
        assert_eq!(clock.due(start + ms(10)), 1);
        assert_eq!(clock.due(start + ms(15)), 0, "the next is at 20");
        // Held up for 95 ms: the ticks at 20, 30, ..., 100 are due at once.
        assert_eq!(clock.due(start + ms(105)), 9);
        assert_eq!(
            clock.next,
            start + ms(110),
            "and the schedule goes on from there"
        );
        // A pause of an hour delivers four election timeouts' worth, and the clock keeps up.
        let later = start + Duration::from_secs(3600);
        assert_eq!(clock.due(later), 20);
        assert!(clock.next > later && clock.next <= later + ms(10));
    }
}
