//! raft-rs's asynchronous log fetch (issue 18): a storage may answer an append's read with
//! `LogTemporarilyUnavailable` instead of blocking on its disk, and call
//! `RawNode::on_entries_fetched` once the entries are loaded; the leader then sends the append.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use raft_core::eraftpb::{Entry, Message, MessageType, Snapshot};
use raft_core::{Config, Error, RaftState, RawNode, StateRole, Storage, StorageError};
use storage_mem::{conf_state, MemStorage};

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// A MemStorage whose appends' reads are "on disk": until `loaded`, each is answered
/// `LogTemporarilyUnavailable` and recorded as (low, high, to).
#[derive(Clone)]
struct Lazy {
    inner: MemStorage,
    loaded: Rc<Cell<bool>>,
    requests: Rc<RefCell<Vec<(u64, u64, u64)>>>,
}

impl Storage for Lazy {
    fn initial_state(&self) -> raft_core::Result<RaftState> {
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        self.inner.entries(low, high, max_size)
    }
    fn entries_for_append(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
        to: u64,
    ) -> raft_core::Result<Vec<Entry>> {
        if !self.loaded.get() {
            self.requests.borrow_mut().push((low, high, to));
            return Err(Error::Store(StorageError::LogTemporarilyUnavailable));
        }
        self.inner.entries(low, high, max_size)
    }
    fn term(&self, index: u64) -> raft_core::Result<u64> {
        self.inner.term(index)
    }
    fn first_index(&self) -> raft_core::Result<u64> {
        self.inner.first_index()
    }
    fn last_index(&self) -> raft_core::Result<u64> {
        self.inner.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft_core::Result<Snapshot> {
        self.inner.snapshot(request_index, to)
    }
}

/// Handles every Ready: persists into `storage`, returns the messages sent.
fn handle_readys(node: &mut RawNode<Lazy>, storage: &MemStorage) -> Vec<Message> {
    let mut sent = Vec::new();
    while node.has_ready() {
        let mut rd = node.ready().unwrap();
        sent.extend(rd.take_messages());
        storage.wl().append(rd.entries()).unwrap();
        if let Some(hs) = rd.hard_state() {
            storage.wl().set_hardstate(*hs);
        }
        sent.extend(rd.take_persisted_messages());
        let mut light = node.advance(rd).unwrap();
        sent.extend(light.take_messages());
        node.advance_apply();
    }
    sent
}

fn appends_to(msgs: &[Message], to: u64) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.msg_type == MessageType::MsgAppend as i32 && m.to == to)
        .collect()
}

/// Leader 1 of {1, 2, 3} in term 2 over a lazy storage holding entries 1..=5 of term 1 (so they
/// are read from storage, not memory) and its own empty entry 6, persisted too; follower 2 has
/// just rejected the probe at 6, hinting that it holds only up to entry 2.
fn leader_with_lagging_follower() -> (RawNode<Lazy>, Lazy, Vec<Message>) {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    {
        let mut core = storage.wl();
        let entries: Vec<Entry> = (1..=5)
            .map(|index| Entry {
                index,
                term: 1,
                ..Default::default()
            })
            .collect();
        core.append(&entries).unwrap();
        core.mut_hard_state().term = 1;
    }
    let lazy = Lazy {
        inner: storage.clone(),
        loaded: Rc::new(Cell::new(false)),
        requests: Rc::new(RefCell::new(Vec::new())),
    };
    let mut node = RawNode::new(&Config::new(1), lazy.clone(), &logger()).unwrap();
    node.campaign().unwrap();
    handle_readys(&mut node, &storage);
    let vote = |from| Message {
        msg_type: MessageType::MsgRequestVoteResponse as i32,
        from,
        to: 1,
        term: 2,
        ..Default::default()
    };
    node.step(vote(2)).unwrap();
    assert_eq!(node.raft.state, StateRole::Leader);
    handle_readys(&mut node, &storage);
    node.step(Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        from: 2,
        to: 1,
        term: 2,
        index: 5,
        reject: true,
        reject_hint: 2,
        log_term: 1,
        ..Default::default()
    })
    .unwrap();
    let sent = handle_readys(&mut node, &storage);
    (node, lazy, sent)
}

#[test]
fn an_append_waits_for_entries_being_fetched_and_goes_once_they_are() {
    let (mut node, lazy, sent) = leader_with_lagging_follower();
    assert!(
        appends_to(&sent, 2).is_empty(),
        "nothing can go to 2 while its entries load: {sent:?}"
    );
    assert_eq!(
        lazy.requests.borrow().last().copied(),
        Some((3, 7, 2)),
        "the storage was asked for entries 3..=6 (all persisted by now) for node 2"
    );

    lazy.loaded.set(true);
    node.on_entries_fetched(2);
    let storage = lazy.inner.clone();
    let sent = handle_readys(&mut node, &storage);
    let appends = appends_to(&sent, 2);
    assert_eq!(appends.len(), 1, "the append goes out now: {sent:?}");
    let indexes: Vec<u64> = appends[0].entries.iter().map(|e| e.index).collect();
    // One entry per append (`max_size_per_msg` is 0), from entry 3 after entry 2.
    assert_eq!((appends[0].index, indexes), (2, vec![3]));
}

#[test]
fn entries_fetched_on_a_node_that_no_longer_leads_change_nothing() {
    let (mut node, lazy, _) = leader_with_lagging_follower();
    node.step(Message {
        msg_type: MessageType::MsgHeartbeat as i32,
        from: 3,
        to: 1,
        term: 3,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(node.raft.state, StateRole::Follower);
    lazy.loaded.set(true);
    let storage = lazy.inner.clone();
    handle_readys(&mut node, &storage);
    node.on_entries_fetched(2);
    assert!(
        appends_to(&handle_readys(&mut node, &storage), 2).is_empty(),
        "a follower sends no appends"
    );
}
