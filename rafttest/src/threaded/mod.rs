//! [`ThreadedCluster`]: a cluster whose nodes run concurrently, each a [`raft_node::Node`] on its
//! own threads, talking through channels, as a real deployment would (the idea of etcd-io/raft's
//! `rafttest` package, which drives its `raft.Node` the same way).
//!
//! Where [`Network`](crate::Network) delivers messages synchronously in one thread, so that a
//! test is deterministic, this cluster exercises the core and raft-node under real concurrency.
//! Each node is a `Node` over a [`MemStorage`] (raft-node's thread owns the `RawNode`) with two
//! threads of the harness around it: a driver that receives its Readys and handles them as an
//! application would (send, persist, apply, `advance`, `advance_apply`) and ticks it on its own
//! timer (one tick every [`ThreadedOptions::tick_interval`]), and an inbox thread that steps the
//! messages the network delivers (an `std::sync::mpsc` channel) through a
//! [`NodeHandle`], while the driver works. Proposals are made on the node
//! from the caller's thread and come back with raft-node's [`Proposal`]: on the leader, a
//! receiver of the proposal's outcome. Messages go through a shared router that can drop them (a
//! probability per directed link) or hold them for a random delay (a range per directed link); a
//! network thread hands held messages over when they fall due.
//!
//! Nodes can be paused (they stop ticking and handling Readys, messages and proposals; messages
//! to them wait in their inbox, up to a bound), resumed, and restarted (the node stops and a new
//! one starts from the same storage, with `Config::applied` set to what the node had applied).
//!
//! Thread scheduling is not deterministic, so neither is a run: the seed
//! ([`ThreadedOptions::seed`]) only fixes the sequence of random drop and delay decisions. Tests
//! on this cluster wait for outcomes with generous deadlines and never assert on timing.
//!
//! ```
//! use raft_core::proposal::ProposalOutcome;
//! use rafttest::threaded::ThreadedCluster;
//! use std::time::Duration;
//!
//! let mut cluster = ThreadedCluster::new(3);
//! let leader = cluster.wait_for_leader(Duration::from_secs(10)).expect("a leader is elected");
//! let proposal = cluster.propose(leader, b"x=1".to_vec()).expect("the leader accepts a proposal");
//! assert!(matches!(
//!     proposal.outcome.recv_timeout(Duration::from_secs(10)),
//!     Ok(ProposalOutcome::Committed { .. })
//! ));
//! assert!(cluster.wait_until_applied(&[1, 2, 3], 1, Duration::from_secs(10)));
//! assert_eq!(cluster.applied(2), vec![b"x=1".to_vec()]);
//! cluster.shutdown();
//! ```

mod gate;
mod inbox;
mod node;
mod router;

use gate::Gate;
use inbox::Input;
use node::{lock, Driver, NodeView, SharedView, Stopped};
use raft_core::{Config, RawNode, StateRole};
use raft_node::{Node, NodeError, NodeHandle, Proposal};
use router::Router;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use storage_mem::{conf_state, MemStorage};

/// How often the `wait_*` methods look at the nodes.
const POLL: Duration = Duration::from_millis(2);

/// Why a request to a node of a [`ThreadedCluster`] failed.
#[derive(Debug)]
pub enum ThreadedError {
    /// The node refused it (for a proposal: e.g. `ProposalDropped` when it knows no leader).
    Raft(raft_core::Error),
    /// The node with this id is paused and processes nothing.
    Paused(u64),
    /// The node with this id has no running threads (it stopped or panicked).
    Stopped(u64),
    /// There is no node with this id.
    NoSuchNode(u64),
}

impl fmt::Display for ThreadedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadedError::Raft(e) => write!(f, "refused by the node: {e}"),
            ThreadedError::Paused(id) => write!(f, "node {id} is paused"),
            ThreadedError::Stopped(id) => write!(f, "node {id} is not running"),
            ThreadedError::NoSuchNode(id) => write!(f, "there is no node {id}"),
        }
    }
}

impl std::error::Error for ThreadedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ThreadedError::Raft(e) => Some(e),
            _ => None,
        }
    }
}

/// Counts of what the network did with the messages the nodes sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages put in their destination's inbox.
    pub delivered: u64,
    /// Messages lost: dropped by a link's fault, or addressed to a node with no running threads.
    pub dropped: u64,
    /// Messages held for a delay before delivery (counted when held).
    pub delayed: u64,
}

/// A node as seen from outside its threads, at one moment: its role, term and leader are those
/// of the last Ready its driver handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its role.
    pub role: StateRole,
    /// Its term.
    pub term: u64,
    /// The leader it knows, or 0.
    pub leader_id: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// The index of the last entry it applied.
    pub applied_index: u64,
}

/// How a [`ThreadedCluster`] is set up.
#[derive(Debug, Clone)]
pub struct ThreadedOptions {
    /// The time between two ticks of a node's logical clock.
    pub tick_interval: Duration,
    /// The seed of the generator that decides which messages are dropped and how long they wait.
    pub seed: u64,
    /// The configuration of node `id` (its `applied` field is overwritten on restart).
    pub config: fn(u64) -> Config,
}

impl Default for ThreadedOptions {
    /// Ticks every 5 ms, seed 1, [`default_threaded_config`].
    fn default() -> Self {
        ThreadedOptions {
            tick_interval: Duration::from_millis(5),
            seed: 1,
            config: default_threaded_config,
        }
    }
}

/// The configuration a threaded cluster gives node `id` by default: election timeout 20 ticks,
/// heartbeat every 2 ticks (100-200 ms and 10 ms at the default tick interval, generous enough
/// for a loaded two-core machine), pre-vote and check-quorum on, up to 256 appends in flight.
pub fn default_threaded_config(id: u64) -> Config {
    Config {
        id,
        election_tick: 20,
        heartbeat_tick: 2,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        pre_vote: true,
        check_quorum: true,
        ..Default::default()
    }
}

/// The cluster's hold on one node: a handle on it and its two threads.
struct Member {
    /// For proposals.
    node: NodeHandle,
    /// Its inbox thread's inbox (the router holds a clone).
    inbox: Sender<Input>,
    gate: Arc<Gate>,
    /// Tells the driver to stop.
    stop: Arc<AtomicBool>,
    /// Its driver thread; `None` once joined.
    driver: Option<JoinHandle<Stopped>>,
    /// Its inbox thread; `None` once joined.
    receiver: Option<JoinHandle<()>>,
    view: SharedView,
}

impl Member {
    /// Whether both its threads are still running.
    fn running(&self) -> bool {
        finished(&self.driver) == Some(false) && finished(&self.receiver) == Some(false)
    }

    /// Whether one of its threads ended without being told to (it panicked).
    fn died(&self) -> bool {
        finished(&self.driver) == Some(true) || finished(&self.receiver) == Some(true)
    }
}

/// Whether a thread not joined yet has ended.
fn finished<T>(thread: &Option<JoinHandle<T>>) -> Option<bool> {
    thread.as_ref().map(JoinHandle::is_finished)
}

/// A cluster of voters `1..=n`, each node on its own threads, connected by a router with
/// injectable loss and delay. Dropping it shuts it down (see [`ThreadedCluster::shutdown`]).
pub struct ThreadedCluster {
    router: Arc<Router>,
    network: Option<JoinHandle<()>>,
    nodes: BTreeMap<u64, Member>,
    options: ThreadedOptions,
}

impl ThreadedCluster {
    /// Starts a cluster of voters `1..=n` with the default options.
    pub fn new(n: u64) -> ThreadedCluster {
        ThreadedCluster::with_options(n, ThreadedOptions::default())
    }

    /// Starts a cluster of voters `1..=n` with `options`.
    ///
    /// # Panics
    ///
    /// If `options.config` gives an invalid configuration or a thread cannot be spawned.
    pub fn with_options(n: u64, options: ThreadedOptions) -> ThreadedCluster {
        let router = Arc::new(Router::new(options.seed));
        let network = {
            let router = Arc::clone(&router);
            thread::Builder::new()
                .name("raft-network".into())
                .spawn(move || router.run())
                .expect("spawn the network thread")
        };
        let mut cluster = ThreadedCluster {
            router,
            network: Some(network),
            nodes: BTreeMap::new(),
            options,
        };
        let ids: Vec<u64> = (1..=n).collect();
        for &id in &ids {
            let storage = MemStorage::new_with_conf_state(conf_state(ids.clone(), vec![]));
            let view = Arc::new(Mutex::new(NodeView::default()));
            let config = (cluster.options.config)(id);
            let member = cluster.spawn(id, &config, storage, view);
            cluster.nodes.insert(id, member);
        }
        cluster
    }

    /// Starts node `id` and its threads over `storage`, publishing what it does in `view`.
    fn spawn(&self, id: u64, config: &Config, storage: MemStorage, view: SharedView) -> Member {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(config, storage.clone(), &logger)
            .unwrap_or_else(|e| panic!("node {id}: cannot start a RawNode: {e}"));
        let applied_index = raw.raft.raft_log.applied;
        {
            let mut v = lock(&view);
            v.applied_index = applied_index;
            v.role = raw.raft.state;
            v.term = raw.raft.term;
            v.leader_id = raw.raft.leader_id;
        }
        let node = Node::start_with(raw, &logger)
            .unwrap_or_else(|e| panic!("node {id}: cannot start a Node: {e}"));
        let handle = node.handle();
        let gate = Arc::new(Gate::default());
        let stop = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            id,
            node,
            storage,
            router: Arc::clone(&self.router),
            view: Arc::clone(&view),
            gate: Arc::clone(&gate),
            stop: Arc::clone(&stop),
            tick_interval: self.options.tick_interval,
            applied_index,
        };
        let driver = thread::Builder::new()
            .name(format!("driver-{id}"))
            .spawn(move || driver.run())
            .expect("spawn a driver thread");
        let (tx, rx) = mpsc::channel();
        self.router.register(id, tx.clone());
        let receiver = {
            let (handle, gate) = (handle.clone(), Arc::clone(&gate));
            thread::Builder::new()
                .name(format!("inbox-{id}"))
                .spawn(move || inbox::run(rx, handle, &gate))
                .expect("spawn an inbox thread")
        };
        Member {
            node: handle,
            inbox: tx,
            gate,
            stop,
            driver: Some(driver),
            receiver: Some(receiver),
            view,
        }
    }

    fn member(&self, id: u64) -> &Member {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("there is no node {id} in the cluster"))
    }

    /// Node `id`, if its threads run.
    fn running(&self, id: u64) -> Result<&Member, ThreadedError> {
        let member = self.nodes.get(&id).ok_or(ThreadedError::NoSuchNode(id))?;
        if member.running() {
            Ok(member)
        } else {
            Err(ThreadedError::Stopped(id))
        }
    }

    /// Proposes `data` at node `id`, from the calling thread. On the leader, the [`Proposal`] is
    /// appended and its `outcome` receives `Committed` once the node applied it, or `Dropped` once
    /// a later leader's entry took its place (safe to propose again). A follower forwards it to
    /// its leader (if it knows one) with no outcome to wait for: a lost message or a leader
    /// change can lose it, so callers wait for it to be applied and propose again if it is not.
    pub fn propose(&self, id: u64, data: Vec<u8>) -> Result<Proposal, ThreadedError> {
        let member = self.running(id)?;
        let Some(_open) = member.gate.enter() else {
            return Err(ThreadedError::Paused(id));
        };
        member.node.propose(vec![], data).map_err(|e| match e {
            NodeError::Raft(e) => ThreadedError::Raft(e),
            // A proposal fails only in the core or because the node stopped.
            _ => ThreadedError::Stopped(id),
        })
    }

    /// The node that believes it leads in the highest term, among the running nodes that are not
    /// paused (a paused leader is not serving); `None` if there is none.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(_, m)| m.running())
            .filter(|(_, m)| !m.gate.is_paused())
            .filter_map(|(id, m)| {
                let v = lock(&m.view);
                (v.role == StateRole::Leader).then_some((v.term, *id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Waits up to `timeout` for [`leader`](Self::leader) to name a node, and returns it.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.leader() {
                return Some(id);
            }
            if Instant::now() >= deadline || self.any_thread_died() {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// The payloads node `id` applied, in order (the normal entries with data; its state
    /// machine, which survives restarts).
    ///
    /// # Panics
    ///
    /// If there is no node `id`.
    pub fn applied(&self, id: u64) -> Vec<Vec<u8>> {
        lock(&self.member(id).view).applied.clone()
    }

    /// Waits up to `timeout` until every node of `ids` has applied at least `count` payloads.
    /// Returns false on timeout, or at once if a node's thread has died.
    ///
    /// # Panics
    ///
    /// If a node of `ids` does not exist.
    pub fn wait_until_applied(&self, ids: &[u64], count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if ids
                .iter()
                .all(|id| lock(&self.member(*id).view).applied.len() >= count)
            {
                return true;
            }
            if Instant::now() >= deadline || self.any_thread_died() {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// What node `id` looks like now.
    ///
    /// # Panics
    ///
    /// If there is no node `id`.
    pub fn status(&self, id: u64) -> NodeStatus {
        let member = self.member(id);
        // Read before locking the view: a driver holds its gate while it waits for the view.
        let paused = member.gate.is_paused();
        let v = lock(&member.view);
        NodeStatus {
            role: v.role,
            term: v.term,
            leader_id: v.leader_id,
            paused,
            applied_index: v.applied_index,
        }
    }

    /// The ids of the nodes, in order.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Whether a node's thread ended without being told to (it panicked); its panic is
    /// reported by [`shutdown`](Self::shutdown).
    pub fn any_thread_died(&self) -> bool {
        self.nodes.values().any(Member::died)
    }

    /// Pauses node `id`: once this returns it neither ticks nor handles Readys, messages or
    /// proposals (proposals fail with [`ThreadedError::Paused`]); messages sent to it wait until
    /// it resumes (up to a few thousand; later ones are lost).
    pub fn pause(&self, id: u64) -> Result<(), ThreadedError> {
        let member = self.running(id)?;
        member.gate.pause();
        Ok(())
    }

    /// Resumes a paused node: it handles the messages that waited for it and ticks again.
    pub fn resume(&self, id: u64) -> Result<(), ThreadedError> {
        let member = self.running(id)?;
        member.gate.resume();
        member
            .inbox
            .send(Input::Resume)
            .map_err(|_| ThreadedError::Stopped(id))
    }

    /// Restarts node `id`: its node stops (its in-memory Raft state, inbox, held messages and
    /// undecided proposal outcomes are lost; their receivers disconnect) and a new one starts over
    /// the same storage with `Config::applied` set to the last index it applied. Every Ready is
    /// persisted before it is advanced, so the storage holds everything the node promised to
    /// keep. Its applied payloads (the state machine) are kept. A paused node restarts unpaused.
    ///
    /// # Panics
    ///
    /// If there is no node `id`, or one of its threads had panicked (with that panic's message).
    pub fn restart(&mut self, id: u64) {
        let mut member = self
            .nodes
            .remove(&id)
            .unwrap_or_else(|| panic!("there is no node {id} in the cluster"));
        let stopped = stop_member(id, &mut member).unwrap_or_else(|msg| panic!("{msg}"));
        let Some(stopped) = stopped else {
            panic!("node {id} was already shut down");
        };
        let config = Config {
            applied: stopped.applied_index,
            ..(self.options.config)(id)
        };
        let new = self.spawn(id, &config, stopped.storage, member.view);
        self.nodes.insert(id, new);
    }

    /// Drops each message from `from` to `to` with probability `p` (0 heals the link).
    pub fn set_drop(&self, from: u64, to: u64, p: f64) {
        self.router.set_drop(from, to, p);
    }

    /// Drops each message on every link between two distinct nodes with probability `p`.
    pub fn set_drop_all(&self, p: f64) {
        for (from, to) in self.links() {
            self.router.set_drop(from, to, p);
        }
    }

    /// Delays each message from `from` to `to` by a random time in `[min, max]`.
    ///
    /// # Panics
    ///
    /// If `min > max`.
    pub fn set_delay(&self, from: u64, to: u64, min: Duration, max: Duration) {
        assert!(min <= max, "delay range {min:?}..={max:?} is empty");
        self.router.set_delay(from, to, Some((min, max)));
    }

    /// Delays each message on every link between two distinct nodes by a random time in
    /// `[min, max]`.
    ///
    /// # Panics
    ///
    /// If `min > max`.
    pub fn set_delay_all(&self, min: Duration, max: Duration) {
        for (from, to) in self.links() {
            self.set_delay(from, to, min, max);
        }
    }

    /// Removes every drop and delay fault (messages already held still wait for their deadline).
    pub fn heal(&self) {
        self.router.heal();
    }

    /// What the network did with the messages so far.
    pub fn network_stats(&self) -> NetworkStats {
        self.router.stats()
    }

    fn links(&self) -> Vec<(u64, u64)> {
        let ids = self.ids();
        ids.iter()
            .flat_map(|&a| ids.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
            .collect()
    }

    /// Stops every node and the network thread and joins their threads. Called again (or by
    /// `Drop`) it does nothing.
    ///
    /// # Panics
    ///
    /// If a node's thread panicked (a failed invariant in the core, raft-node or the harness),
    /// with the panics' messages, unless the calling thread is already panicking.
    pub fn shutdown(&mut self) {
        for member in self.nodes.values() {
            member.stop.store(true, Ordering::SeqCst);
            let _ = member.inbox.send(Input::Stop);
        }
        let mut failures = Vec::new();
        for (id, member) in self.nodes.iter_mut() {
            if let Err(msg) = stop_member(*id, member) {
                failures.push(msg);
            }
        }
        self.router.shutdown();
        if let Some(network) = self.network.take() {
            if network.join().is_err() {
                failures.push("the network thread panicked".to_string());
            }
        }
        if !failures.is_empty() && !thread::panicking() {
            panic!("threaded cluster: {}", failures.join("; "));
        }
    }
}

impl Drop for ThreadedCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Tells a node's threads to stop and joins them (the driver stops the node): `Ok(None)` if they
/// were joined already, `Err` with a message if one panicked.
fn stop_member(id: u64, member: &mut Member) -> Result<Option<Stopped>, String> {
    member.stop.store(true, Ordering::SeqCst);
    let _ = member.inbox.send(Input::Stop);
    let receiver = member.receiver.take().map(|t| join(id, "inbox", t));
    let driver = member.driver.take().map(|t| join(id, "driver", t));
    match (receiver, driver) {
        (_, Some(Err(msg))) | (Some(Err(msg)), _) => Err(msg),
        (_, driver) => driver.transpose(),
    }
}

/// Joins one of node `id`'s threads: `Err` with a message if it panicked.
fn join<T>(id: u64, thread_name: &str, thread: JoinHandle<T>) -> Result<T, String> {
    thread.join().map_err(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a non-string panic".to_string());
        format!("node {id}'s {thread_name} thread panicked: {msg}")
    })
}
