//! A storage that fails must never make the node promise what it has not done: no acknowledgement
//! for entries that were not handed out for persisting, no vote granted on a log it could not read,
//! and the same work handed out again once storage recovers.

use raft_core::eraftpb::{Entry, Message, MessageType, Snapshot};
use raft_core::{Config, Error, RaftState, RawNode, Ready, Storage, StorageError};
use std::cell::Cell;
use std::rc::Rc;
use storage_mem::{conf_state, MemStorage};

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn append(
    from: u64,
    term: u64,
    index: u64,
    log_term: u64,
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from,
        to: 2,
        term,
        index,
        log_term,
        entries,
        commit,
        ..Default::default()
    }
}

fn persist(storage: &MemStorage, rd: &Ready) {
    let mut core = storage.wl();
    core.append(rd.entries()).expect("append to storage");
    if let Some(hs) = rd.hard_state() {
        core.set_hardstate(*hs);
    }
}

/// A MemStorage whose `entries` can fail once and whose `term` can fail until disarmed.
#[derive(Clone)]
struct Flaky {
    inner: MemStorage,
    fail_entries_once: Rc<Cell<bool>>,
    fail_term: Rc<Cell<bool>>,
}

fn io_error() -> Error {
    Error::Store(StorageError::Other("injected I/O failure".into()))
}

impl Storage for Flaky {
    fn initial_state(&self) -> raft_core::Result<RaftState> {
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        if self.fail_entries_once.replace(false) {
            return Err(io_error());
        }
        self.inner.entries(low, high, max_size)
    }
    fn term(&self, index: u64) -> raft_core::Result<u64> {
        if self.fail_term.get() {
            return Err(io_error());
        }
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

/// Follower 2 of {1, 2, 3} over a flaky storage, restarted with entries 1..=3 of term `term`
/// persisted.
fn follower_with_three_entries(term: u64) -> (RawNode<Flaky>, Flaky, MemStorage) {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let flaky = Flaky {
        inner: storage.clone(),
        fail_entries_once: Rc::new(Cell::new(false)),
        fail_term: Rc::new(Cell::new(false)),
    };
    let mut node = RawNode::new(&Config::new(2), flaky.clone(), &logger()).unwrap();
    let entries = (1..=3).map(|i| entry(i, term)).collect();
    node.step(append(1, term, 0, 0, entries, 0)).unwrap();
    let rd = node.ready().unwrap();
    persist(&storage, &rd);
    node.advance(rd).unwrap();
    // Restart over the same storage, so the entries live only there (a running node keeps
    // durable entries in memory until applied and would not read them back).
    let node = RawNode::new(&Config::new(2), flaky.clone(), &logger()).unwrap();
    (node, flaky, storage)
}

#[test]
fn a_failed_ready_changes_nothing_and_the_retry_hands_out_the_same_work() {
    let (mut node, flaky, _storage) = follower_with_three_entries(1);
    // Entry 4 arrives with commit 3, so the Ready must read entries 1..=3 from storage to apply them.
    node.step(append(1, 1, 3, 1, vec![entry(4, 1)], 3)).unwrap();
    flaky.fail_entries_once.set(true);
    assert!(
        node.ready().is_err(),
        "the injected storage failure must surface"
    );
    let rd = node.ready().expect("storage recovered");
    let acks_4 = rd
        .persisted_messages()
        .iter()
        .any(|m| m.msg_type == MessageType::MsgAppendResponse as i32 && m.index == 4 && !m.reject);
    assert!(
        acks_4,
        "the retried Ready must carry the acknowledgement of entry 4"
    );
    assert_eq!(
        rd.entries().iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![4],
        "an acknowledgement of entry 4 may only leave with entry 4 handed out for persisting"
    );
    assert_eq!(
        rd.hard_state().map(|hs| hs.commit),
        Some(3),
        "commit 3 must be persisted"
    );
    assert_eq!(
        rd.committed_entries()
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn a_vote_is_never_granted_when_our_last_term_cannot_be_read() {
    // §5.4.1: judging the candidate needs our last entry; a storage failure is not "an empty log".
    let (mut node, flaky, _storage) = follower_with_three_entries(5);
    flaky.fail_term.set(true);
    let request = Message {
        msg_type: MessageType::MsgRequestVote as i32,
        from: 3,
        to: 2,
        term: 7,
        index: 1,
        log_term: 1,
        ..Default::default()
    };
    let result = node.step(request);
    assert!(
        matches!(result, Err(Error::Store(_))),
        "the storage failure must be reported, got {result:?}"
    );
    assert_eq!(node.raft.vote, 0, "no vote may be recorded");
    flaky.fail_term.set(false);
    let rd = node.ready().unwrap();
    let granted = rd
        .persisted_messages()
        .iter()
        .chain(rd.messages())
        .any(|m| m.msg_type == MessageType::MsgRequestVoteResponse as i32 && !m.reject);
    assert!(
        !granted,
        "a vote was granted to a candidate with a stale log"
    );
}

#[test]
fn advancing_a_ready_whose_entries_a_newer_leader_replaced_succeeds() {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let mut node = RawNode::new(&Config::new(2), storage.clone(), &logger()).unwrap();
    let entries = (1..=3).map(|i| entry(i, 1)).collect();
    node.step(append(1, 1, 0, 0, entries, 0)).unwrap();
    let rd1 = node.ready().unwrap();
    // Before Ready 1 is persisted, leader 3 of term 2 overwrites the log from index 1.
    node.step(append(3, 2, 0, 0, vec![entry(1, 2)], 0)).unwrap();
    assert_eq!(node.raft.raft_log.last_index(), 1);
    persist(&storage, &rd1);
    node.advance(rd1)
        .expect("advancing a Ready of replaced entries is legal");
    assert_eq!(
        node.raft.raft_log.persisted, 0,
        "the replaced entries must not count as persisted"
    );
    let rd2 = node.ready().unwrap();
    assert_eq!(
        rd2.entries()
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        vec![(1, 2)],
        "the newer leader's entry is handed out for persisting"
    );
}
