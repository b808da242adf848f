//! A five-node group on threads, talking over std channels.
//!
//! Run it with `cargo run -p raft-core --example threads_cluster`. It takes about a second,
//! prints a few lines of progress, and exits non-zero with a message if anything goes wrong.
//!
//! What it shows, top to bottom:
//! - one thread per node, each owning a `RawNode<MemStorage>`: it waits on its channel for
//!   messages and proposals, ticks every [`TICK`], and handles each `Ready` in the documented
//!   order ([`Node::handle_ready`]);
//! - a [`Router`] carrying messages between the threads. A message for a stopped node is
//!   reported to its sender with `report_unreachable`; the first message for a node expected to
//!   join starts it, with an empty `MemStorage::new()`;
//! - node 1 starting alone (`MemStorage::bootstrap([1], [])`), then nodes 2 to 5 added one at a
//!   time with `propose_conf_change`, each started by the first message the leader sends it;
//! - every node snapshotting its key/value map and compacting its log behind it, so joiners
//!   catch up through a snapshot, and the leader telling the library (`report_snapshot`) how
//!   sending one went;
//! - a follower stopped, the group writing on without it, and the follower restarted from the
//!   same storage with `Config::applied`, catching up;
//! - every node applying the same writes, and a shutdown that joins every thread.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use raft_core::prelude::*;
use raft_core::raft::decode_conf_change;
use raft_core::Result;
use slog::{Drain, Logger};
use storage_mem::MemStorage;

/// How often a node ticks. With the default `election_tick` of 10, a follower that hears nothing
/// from its leader for 100 to 200 ms campaigns.
const TICK: Duration = Duration::from_millis(10);
/// A node snapshots its state machine each time it has applied this many entries since its last
/// snapshot, and compacts its log behind the snapshot.
const SNAPSHOT_EVERY: u64 = 16;
/// Entries kept behind a snapshot, so that a follower a little behind is sent entries, not the
/// whole state machine.
const KEEP_ENTRIES: u64 = 4;
/// How long `main` waits for any one step before it gives up.
const STEP_DEADLINE: Duration = Duration::from_secs(10);
/// How long the whole run may take before the watchdog ends it.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// How long `main` waits for a proposal to be applied before making it again (a leader change
/// may have lost it).
const PROPOSE_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// What a node thread receives on its channel: a message from a peer, or from the client (here
/// `main`) a proposal or the order to stop.
#[derive(Clone, Debug)]
enum Input {
    /// A message from a peer, delivered by the router.
    Message(Box<Message>),
    /// A proposal to set a key to a value in the key/value map.
    Put(String, String),
    /// A proposal to add a voter to the group (a membership change).
    AddNode(u64),
    /// End the thread; its storage and state machine are kept for a restart.
    Stop,
}

/// What a node has applied, shared with `main` so that it can watch the run. A real application
/// keeps its state machine on disk; here it outlives a stopped node in memory.
#[derive(Default)]
struct NodeState {
    /// The state machine: every write applied, in log order.
    kv: HashMap<String, String>,
    /// The index of the last entry applied (or of the snapshot installed).
    applied_index: u64,
    /// The voters as of `applied_index`.
    voters: Vec<u64>,
    /// The node's term while it leads; `None` otherwise.
    leader_term: Option<u64>,
    /// The index of the last snapshot received from a leader and installed (0: none).
    installed_snapshot: u64,
}

/// A node's state, as its thread, the router and `main` share it.
type Shared = Arc<Mutex<NodeState>>;

/// One node, run on its own thread by [`Node::run`] until it is told to stop.
struct Node {
    /// The Raft node, over its storage (which it reads; the thread writes it).
    raw: RawNode<MemStorage>,
    /// Where the router and `main` send this node's input.
    inbox: Receiver<Input>,
    /// Where this node sends its messages.
    router: Arc<Router>,
    /// What this node has applied.
    state: Shared,
}

impl Node {
    /// The node's loop: wait for input until the next tick is due, tick, handle what is ready.
    /// Returns the storage when told to stop; any error from the library is a bug here.
    fn run(mut self) -> Result<MemStorage> {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(wait) {
                Ok(Input::Message(m)) => self.raw.step(*m)?,
                Ok(Input::Put(key, value)) => {
                    let data = format!("{key}={value}").into_bytes();
                    retried_if_dropped(self.raw.propose(vec![], data))?;
                }
                Ok(Input::AddNode(id)) => {
                    let mut change = ConfChange::default();
                    change.set_change_type(ConfChangeType::AddNode);
                    change.node_id = id;
                    retried_if_dropped(self.raw.propose_conf_change(vec![], change))?;
                }
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                // Counted from now, not from the tick missed: after a stall (a loaded machine)
                // a burst of ticks would fire every timeout at once.
                next_tick = now + TICK;
            }
            while self.raw.has_ready() {
                self.handle_ready()?;
            }
            self.compact_if_due()?;
            let leads = self.raw.raft.state == StateRole::Leader;
            lock(&self.state).leader_term = leads.then_some(self.raw.raft.term);
        }
        Ok(self.raw.store().clone())
    }

    /// Handles one `Ready`, in the order the library documents. `MemStorage` stands for the disk:
    /// a real application writes (and fsyncs, if `rd.must_sync()`) where this one calls it.
    fn handle_ready(&mut self) -> Result<()> {
        let mut rd = self.raw.ready()?;
        // 1. These messages promise nothing about this node's disk (a leader's appends and
        //    heartbeats): they leave at once, so the followers write while the leader does.
        self.send(rd.take_messages());
        // 2. Persist the snapshot, then the entries, then the hard state.
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone())?;
        }
        self.raw.store().wl().append(rd.entries())?;
        if let Some(hard_state) = rd.hard_state() {
            self.raw.store().wl().set_hardstate(*hard_state);
        }
        // 3. These promise what was just written (votes, append acknowledgements): only now.
        self.send(rd.take_persisted_messages());
        // 4. Apply what is committed, then tell the node the Ready is done.
        self.apply(rd.take_committed_entries())?;
        let mut light = self.raw.advance(rd)?;
        // 5. What that made available: a commit index to store, messages, entries to apply.
        if let Some(commit) = light.commit_index() {
            self.raw.store().wl().mut_hard_state().commit = commit;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        Ok(())
    }

    /// Installs a snapshot from the leader: the log is replaced by it, and the state machine is
    /// restored from its data.
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let metadata = snapshot.metadata.clone().unwrap_or_default();
        let kv = decode_kv(&snapshot.data);
        self.raw.store().wl().apply_snapshot(snapshot)?;
        let mut state = lock(&self.state);
        state.kv = kv;
        state.applied_index = metadata.index;
        state.voters = metadata.conf_state.unwrap_or_default().voters;
        state.installed_snapshot = metadata.index;
        Ok(())
    }

    /// Applies committed entries in log order: writes to the map, membership changes to the node,
    /// storing the membership they produce (a restart starts from it).
    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut state = lock(&self.state);
        for entry in entries {
            if let Some(change) = decode_conf_change(&entry) {
                let change = change.expect("a conf change the leader accepted decodes");
                let conf_state = self.raw.apply_conf_change(&change)?;
                state.voters = conf_state.voters.clone();
                self.raw.store().wl().set_conf_state(conf_state);
            } else if !entry.data.is_empty() {
                // A write: every normal entry but the empty one a new leader appends.
                let (key, value) = decode_put(&entry.data);
                state.kv.insert(key, value);
            }
            state.applied_index = entry.index;
        }
        Ok(())
    }

    /// Every [`SNAPSHOT_EVERY`] applied entries, records the state machine as a snapshot and
    /// discards the log it covers but the last [`KEEP_ENTRIES`]. As leader, the node then sends
    /// a follower that needs a discarded entry (a joiner, a restarted node) the snapshot instead.
    fn compact_if_due(&mut self) -> Result<()> {
        let state = lock(&self.state);
        let mut store = self.raw.store().wl();
        let applied = state.applied_index;
        if applied < store.snapshot_metadata().index + SNAPSHOT_EVERY {
            return Ok(());
        }
        // `None`: the stored membership, which is the one as of `applied`.
        store.create_snapshot(applied, None, encode_kv(&state.kv).into())?;
        store.compact(applied + 1 - KEEP_ENTRIES)
    }

    /// Sends messages through the router. The node is told when a peer cannot be reached, so it
    /// probes that peer again later rather than streaming to it, and how sending a snapshot
    /// went, since it sends that peer nothing else until it knows.
    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            let (to, is_snapshot) = (m.to, m.msg_type() == MessageType::MsgSnapshot);
            let delivered = self.router.send(m);
            if !delivered {
                self.raw.report_unreachable(to);
            }
            if is_snapshot && delivered {
                self.raw.report_snapshot(to, SnapshotStatus::Finish);
            } else if is_snapshot {
                self.raw.report_snapshot(to, SnapshotStatus::Failure);
            }
        }
    }
}

/// A proposal the node dropped (it no longer leads, or as a new leader it has not applied the
/// previous membership change yet) is made again by `main`; any other error is a bug.
fn retried_if_dropped(result: Result<()>) -> Result<()> {
    match result {
        Err(Error::ProposalDropped | Error::ConfChange(_)) => Ok(()),
        other => other,
    }
}

/// Carries messages between the node threads, and starts and stops nodes. `main` reaches the
/// nodes through it too.
struct Router {
    /// The nodes that run, by id.
    running: Mutex<HashMap<u64, RunningNode>>,
    /// Nodes that start, with an empty storage, when the first message for them arrives.
    joiners: Mutex<HashSet<u64>>,
    /// The log every node writes to.
    logger: Logger,
}

/// The handles of a running node.
struct RunningNode {
    /// The sending end of the node's channel.
    inbox: Sender<Input>,
    /// What the node has applied.
    state: Shared,
    /// The node's thread, which hands back the storage when it ends.
    thread: JoinHandle<MemStorage>,
}

impl Router {
    /// Sends a message; false if its destination does not run (the sender then reports it
    /// unreachable). The first message for an expected joiner starts it.
    fn send(self: &Arc<Self>, m: Message) -> bool {
        let to = m.to;
        if lock(&self.joiners).remove(&to) {
            let kind = m.msg_type();
            println!("node {to} starts on its first message, a {kind:?}");
            self.start(to, MemStorage::new(), Shared::default());
        }
        self.deliver(to, Input::Message(Box::new(m)))
    }

    /// Puts `input` in node `id`'s channel; false if the node does not run.
    fn deliver(&self, id: u64, input: Input) -> bool {
        let running = lock(&self.running);
        running
            .get(&id)
            .is_some_and(|node| node.inbox.send(input).is_ok())
    }

    /// Starts node `id` on a thread of its own, over `storage` (what it persisted before, or its
    /// initial membership) and `state` (what it applied before, or nothing).
    fn start(self: &Arc<Self>, id: u64, storage: MemStorage, state: Shared) {
        let config = Config {
            // Entries applied before a restart are not handed out again.
            applied: lock(&state).applied_index,
            // A node that missed a few heartbeats (a loaded machine) cannot depose a leader the
            // others still hear (thesis §9.6), and a leader that hears nobody steps down.
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            ..Config::new(id)
        };
        let raw = RawNode::new(&config, storage, &self.logger).expect("a valid config");
        let (inbox_sender, inbox) = channel();
        let (router, shared) = (Arc::clone(self), Arc::clone(&state));
        let node = Node {
            raw,
            inbox,
            router,
            state: shared,
        };
        let run = move || node.run().unwrap_or_else(|e| panic!("node {id}: {e}"));
        let thread = thread::Builder::new().name(format!("node {id}")).spawn(run);
        let thread = thread.expect("a thread can be started");
        let node = RunningNode {
            inbox: inbox_sender,
            state,
            thread,
        };
        lock(&self.running).insert(id, node);
    }

    /// Stops node `id`, and returns what a restart starts from: its storage and its state.
    fn stop(&self, id: u64) -> (MemStorage, Shared) {
        let node = lock(&self.running).remove(&id).expect("the node runs");
        let _ = node.inbox.send(Input::Stop);
        let storage = node.thread.join().expect("a panic ends the run");
        lock(&node.state).leader_term = None;
        (storage, node.state)
    }

    /// Looks at the state of node `id`, if it runs.
    fn with_state<R>(&self, id: u64, look: impl FnOnce(&NodeState) -> R) -> Option<R> {
        let state = lock(&self.running).get(&id).map(|n| Arc::clone(&n.state));
        state.map(|state| look(&lock(&state)))
    }

    /// The node leading in the highest term, as far as the running nodes know.
    fn leader(&self) -> Option<u64> {
        let running = lock(&self.running);
        let leaders = running
            .iter()
            .filter_map(|(id, n)| Some((lock(&n.state).leader_term?, *id)));
        leaders.max().map(|(_, id)| id)
    }
}

/// Proposes to the current leader until `done` holds on it. The proposal is made again when the
/// leader changes or after [`PROPOSE_AGAIN_AFTER`] (a leader change may have lost it), so it must
/// do no harm twice: writing the same value or adding the same voter again does none.
fn propose_until(router: &Router, proposal: Input, done: impl Fn(&NodeState) -> bool) {
    let mut last: Option<(u64, Instant)> = None;
    wait_for(&format!("{proposal:?} to be applied"), || {
        let leader = router.leader()?;
        if router.with_state(leader, &done)? {
            return Some(());
        }
        if last.is_none_or(|(to, at)| to != leader || at.elapsed() > PROPOSE_AGAIN_AFTER) {
            router.deliver(leader, proposal.clone());
            last = Some((leader, Instant::now()));
        }
        None
    })
}

/// Writes `count` more keys through the leader, one at a time, each applied on the leader before
/// the next; records them in `expected`.
fn write_keys(router: &Router, expected: &mut HashMap<String, String>, count: usize) {
    for _ in 0..count {
        let key = format!("key{}", expected.len());
        let value = format!("value{}", expected.len());
        let put = Input::Put(key.clone(), value.clone());
        propose_until(router, put, |state| state.kv.get(&key) == Some(&value));
        expected.insert(key, value);
    }
}

/// Polls until `poll` returns a value, or ends the run after [`STEP_DEADLINE`].
fn wait_for<T>(what: &str, mut poll: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        if let Some(value) = poll() {
            return value;
        }
        if Instant::now() > deadline {
            fail(&format!("gave up waiting for {what} ({STEP_DEADLINE:?})"));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The data of a write entry, `key=value` (the keys here contain no `=`), as a pair.
fn decode_put(data: &[u8]) -> (String, String) {
    let text = std::str::from_utf8(data).expect("a write is text");
    let (key, value) = text.split_once('=').expect("a write is key=value");
    (key.to_string(), value.to_string())
}

/// A snapshot's data: one `key=value` line per key.
fn encode_kv(kv: &HashMap<String, String>) -> Vec<u8> {
    let lines = kv.iter().map(|(key, value)| format!("{key}={value}\n"));
    lines.collect::<String>().into()
}

/// The map a snapshot's data holds.
fn decode_kv(data: &[u8]) -> HashMap<String, String> {
    let lines = data.split(|&byte| byte == b'\n');
    lines
        .filter(|line| !line.is_empty())
        .map(decode_put)
        .collect()
}

/// Locks a mutex. No thread panics while holding one: a panic ends the run (see [`main`]).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("no thread panics while holding a lock")
}

/// Ends the run with a message and a non-zero status.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// The library's log: to stderr, warnings and above only, so the output stays short.
fn logger() -> Logger {
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = slog::LevelFilter::new(drain, slog::Level::Warning).fuse();
    Logger::root(drain, slog::o!())
}

/// Runs the group through its steps, checking each.
fn main() {
    // A panic on any thread (a failed check, an error from the library) ends the run at once,
    // and a watchdog ends it if it takes too long: it never hangs. Dropping `finished` stops it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let (finished, watched) = channel::<()>();
    let watchdog = thread::spawn(move || {
        if watched.recv_timeout(RUN_DEADLINE) == Err(RecvTimeoutError::Timeout) {
            fail(&format!("the run did not finish within {RUN_DEADLINE:?}"));
        }
    });
    let started = Instant::now();
    let (running, joiners) = (Mutex::default(), Mutex::default());
    let router = Arc::new(Router {
        running,
        joiners,
        logger: logger(),
    });
    let mut expected = HashMap::new();

    // Node 1 alone: a group of one voter, which elects itself when its election timer fires.
    let storage = MemStorage::bootstrap([1], []).expect("a valid membership");
    router.start(1, storage, Shared::default());
    wait_for("node 1 to lead", || router.leader().filter(|&id| id == 1));
    println!("node 1 leads a group of one");
    write_keys(&router, &mut expected, 20);

    // Nodes 2 to 5 join one at a time. Each starts empty when the leader's first message reaches
    // it, and catches up through a snapshot: the leader's log no longer starts at the beginning.
    for id in 2..=5 {
        lock(&router.joiners).insert(id);
        let added = |state: &NodeState| state.voters.contains(&id);
        propose_until(&router, Input::AddNode(id), added);
        let caught_up = |s: &NodeState| s.voters.contains(&id).then_some(s.installed_snapshot);
        let what = format!("node {id} to catch up");
        let snapshot = wait_for(&what, || router.with_state(id, caught_up)?);
        assert!(
            snapshot > 1,
            "node {id} joined without a snapshot of the state machine"
        );
        println!("node {id} joined, through a snapshot at index {snapshot}");
        write_keys(&router, &mut expected, 5);
    }

    // A follower stops; the group writes on without it, compacting its logs past what it has.
    // It restarts from the same storage, with `Config::applied` set to what it had applied.
    let leader = router.leader().expect("a leader");
    let follower = (2..=5).find(|&id| id != leader).expect("a follower");
    let (storage, state) = router.stop(follower);
    let applied = lock(&state).applied_index;
    println!("node {follower} stopped, having applied up to index {applied}");
    write_keys(&router, &mut expected, 40);
    router.start(follower, storage, Arc::clone(&state));
    let what = format!("node {follower} to catch up after its restart");
    wait_for(&what, || (lock(&state).kv == expected).then_some(()));
    let snapshot = lock(&state).installed_snapshot;
    assert!(
        snapshot > applied,
        "node {follower} caught up without the snapshot it needed"
    );
    println!("node {follower} restarted and caught up, through a snapshot at index {snapshot}");

    // Every node applies every write, and they all agree.
    write_keys(&router, &mut expected, 10);
    for id in 1..=5 {
        let agrees = |state: &NodeState| (state.kv == expected).then_some(state.voters.clone());
        let what = format!("node {id} to apply every write");
        let mut voters = wait_for(&what, || router.with_state(id, agrees)?);
        voters.sort_unstable();
        assert_eq!(voters, [1, 2, 3, 4, 5], "the membership node {id} applied");
    }
    println!("ok: 5 nodes agree on {} keys", expected.len());

    for id in 1..=5 {
        router.stop(id);
    }
    drop(finished);
    watchdog.join().expect("the watchdog ends without a panic");
    let seconds = started.elapsed().as_secs_f64();
    println!("all threads joined after {seconds:.1} s");
}
