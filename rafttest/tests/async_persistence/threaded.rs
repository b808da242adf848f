//! A 3-node group where every node runs on threads of its own, as an asynchronous application
//! would: a driver thread owns the RawNode, a persist thread writes Readys to the node's storage
//! and then sends their persisted messages, an apply thread applies committed entries. Channels
//! are the network (one inbox per node). No timing is asserted: the deadline only turns a hang
//! into a failure.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use raft_core::eraftpb::{Entry, HardState, Message};
use raft_core::{Error, RawNode, StateRole, Storage, NO_LIMIT};
use storage_mem::{conf_state, MemStorage};

use crate::harness::{config, logger};

/// Proposals the leader makes in all.
const PROPOSALS: usize = 10_000;
/// Proposals made between two Readys.
const BATCH: usize = 250;
/// Proposals the leader keeps in flight (proposed, not yet applied by itself).
const WINDOW: usize = 2_000;
/// Fails the test instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

/// What a driver thread receives.
enum Event {
    /// A message from a peer.
    Msg(Box<Message>),
    /// The persist thread wrote every Ready up to this number.
    Persisted(u64),
    /// The apply thread applied everything up to this index.
    Applied(u64),
    /// The test is over.
    Stop,
}

/// What a driver thread hands back: every entry its node applied, and the node's storage.
type NodeResult = (Vec<Entry>, MemStorage);

/// One Ready's worth of work for the persist thread.
struct PersistJob {
    number: u64,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    persisted_messages: Vec<Message>,
}

/// Writes Readys in number order, then releases their persisted messages and reports.
fn persist_thread(
    storage: MemStorage,
    jobs: Receiver<PersistJob>,
    me: Sender<Event>,
    peers: BTreeMap<u64, Sender<Event>>,
) {
    while let Ok(first) = jobs.recv() {
        // Group commit: write every job waiting, in order, then report the last number once.
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        {
            let mut store = storage.wl();
            for job in &batch {
                store.append(&job.entries).expect("write entries");
                if let Some(hs) = job.hard_state {
                    store.set_hardstate(hs);
                }
            }
        }
        let last = batch.last().map_or(0, |job| job.number);
        // Only now may a vote or an append acknowledgement leave.
        for m in batch.into_iter().flat_map(|job| job.persisted_messages) {
            if let Some(peer) = peers.get(&m.to) {
                let _ = peer.send(Event::Msg(Box::new(m)));
            }
        }
        let _ = me.send(Event::Persisted(last));
    }
}

/// Applies committed entries in order, reports each batch, and says when it has applied
/// `PROPOSALS` payloads. Returns every entry it applied.
fn apply_thread(
    id: u64,
    batches: Receiver<Vec<Entry>>,
    me: Sender<Event>,
    done: Sender<u64>,
) -> Vec<Entry> {
    let mut applied: Vec<Entry> = Vec::new();
    let mut payloads = 0;
    for batch in batches {
        for e in batch {
            let expected = applied.last().map_or(e.index, |last| last.index + 1);
            assert_eq!(
                e.index, expected,
                "node {id} was handed index {} out of order",
                e.index
            );
            payloads += usize::from(!e.data.is_empty());
            applied.push(e);
        }
        if let Some(last) = applied.last() {
            let _ = me.send(Event::Applied(last.index));
        }
        if payloads == PROPOSALS {
            let _ = done.send(id);
        }
    }
    applied
}

/// Drives one node until told to stop (or the deadline passes). Returns what it applied and its
/// storage.
fn driver_thread(
    id: u64,
    inbox: Receiver<Event>,
    me: Sender<Event>,
    peers: BTreeMap<u64, Sender<Event>>,
    done: Sender<u64>,
    deadline: Instant,
) -> NodeResult {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let kept = storage.clone();
    let mut raw = RawNode::new(&config(id), storage.clone(), &logger()).expect("start");
    let (persist_tx, persist_rx) = channel();
    let (apply_tx, apply_rx) = channel();
    let persister = {
        let (me, peers) = (me.clone(), peers.clone());
        thread::spawn(move || persist_thread(storage, persist_rx, me, peers))
    };
    let applier = thread::spawn(move || apply_thread(id, apply_rx, me, done));

    if id == 1 {
        raw.campaign().expect("campaign");
    }
    let mut proposed = 0;
    let mut first_proposal_index = 0;
    let mut applied_index = 0;
    let mut stop = false;
    let handle = |raw: &mut RawNode<MemStorage>, ev: Event, applied_index: &mut u64| match ev {
        Event::Msg(m) => match raw.step(*m) {
            Ok(()) | Err(Error::ProposalDropped) => false,
            Err(e) => panic!("node {id} refused a message in a correct run: {e}"),
        },
        Event::Persisted(n) => {
            raw.on_persist_ready(n);
            false
        }
        Event::Applied(index) => {
            raw.advance_apply_to(index);
            *applied_index = index;
            false
        }
        Event::Stop => true,
    };
    while !stop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match inbox.recv_timeout((deadline - now).min(Duration::from_millis(100))) {
            Ok(ev) => stop |= handle(&mut raw, ev, &mut applied_index),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(ev) = inbox.try_recv() {
            stop |= handle(&mut raw, ev, &mut applied_index);
        }
        if raw.raft.state == StateRole::Leader && proposed < PROPOSALS {
            if first_proposal_index == 0 {
                first_proposal_index = raw.raft.raft_log.last_index() + 1;
            }
            let applied_proposals = (applied_index + 1).saturating_sub(first_proposal_index);
            if proposed - applied_proposals as usize <= WINDOW - BATCH {
                for _ in 0..BATCH {
                    let data = format!("{proposed:05}").into_bytes();
                    raw.propose(vec![], data)
                        .expect("the leader accepts proposals");
                    proposed += 1;
                }
            }
        }
        while raw.has_ready() {
            let mut rd = raw.ready().expect("ready");
            for m in rd.take_messages() {
                if let Some(peer) = peers.get(&m.to) {
                    let _ = peer.send(Event::Msg(Box::new(m)));
                }
            }
            let committed = rd.take_committed_entries();
            if !committed.is_empty() {
                apply_tx.send(committed).expect("apply thread alive");
            }
            persist_tx
                .send(PersistJob {
                    number: rd.number(),
                    entries: rd.take_entries(),
                    hard_state: rd.hard_state().copied(),
                    persisted_messages: rd.take_persisted_messages(),
                })
                .expect("persist thread alive");
            raw.advance_append_async(rd);
        }
    }
    drop(persist_tx);
    drop(apply_tx);
    persister.join().expect("persist thread");
    (applier.join().expect("apply thread"), kept)
}

#[test]
fn three_threaded_nodes_apply_ten_thousand_proposals_in_the_same_order() {
    let deadline = Instant::now() + LIMIT;
    let mut inboxes = BTreeMap::new();
    let mut senders = BTreeMap::new();
    for id in 1..=3u64 {
        let (tx, rx) = channel();
        senders.insert(id, tx);
        inboxes.insert(id, rx);
    }
    let (done_tx, done_rx) = channel();
    let drivers: Vec<(u64, JoinHandle<NodeResult>)> = inboxes
        .into_iter()
        .map(|(id, inbox)| {
            let me = senders[&id].clone();
            let peers = senders.clone();
            let done = done_tx.clone();
            let handle = thread::spawn(move || driver_thread(id, inbox, me, peers, done, deadline));
            (id, handle)
        })
        .collect();
    drop(done_tx);

    let mut finished = Vec::new();
    while finished.len() < 3 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match done_rx.recv_timeout(deadline - now) {
            Ok(id) => finished.push(id),
            Err(_) => break,
        }
    }
    for tx in senders.values() {
        let _ = tx.send(Event::Stop);
    }
    let mut results = BTreeMap::new();
    let mut storages = BTreeMap::new();
    for (id, handle) in drivers {
        match handle.join() {
            Ok((applied, storage)) => {
                results.insert(id, applied);
                storages.insert(id, storage);
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let counts: Vec<(u64, usize)> = results
        .iter()
        .map(|(id, a)| (*id, a.iter().filter(|e| !e.data.is_empty()).count()))
        .collect();
    assert_eq!(
        finished.len(),
        3,
        "not every node applied {PROPOSALS} proposals within {LIMIT:?}: payloads applied per \
         node {counts:?}"
    );
    let expected: Vec<Vec<u8>> = (0..PROPOSALS)
        .map(|i| format!("{i:05}").into_bytes())
        .collect();
    let reference = &results[&1];
    for (id, applied) in &results {
        let data: Vec<Vec<u8>> = applied
            .iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| e.data.to_vec())
            .collect();
        assert!(
            data == expected,
            "node {id} did not apply the proposals exactly once each, in proposal order"
        );
        let mine: Vec<(u64, u64)> = applied.iter().map(|e| (e.index, e.term)).collect();
        let theirs: Vec<(u64, u64)> = reference.iter().map(|e| (e.index, e.term)).collect();
        assert!(
            mine == theirs,
            "nodes 1 and {id} applied different (index, term) sequences"
        );
        // Everything applied is in the node's durable log, under a durable commit index: a
        // restart with `Config::applied` = the last applied index would be accepted.
        let last = applied.last().map_or(0, |e| e.index);
        let storage = &storages[id];
        let stored = storage.entries(1, last + 1, NO_LIMIT).expect("stored log");
        assert!(
            stored == *applied,
            "node {id}'s durable log differs from what it applied"
        );
        let commit = storage.rl().hard_state().commit;
        assert!(
            commit >= last,
            "node {id}: the durable commit index {commit} is below the applied index {last}"
        );
    }
}
