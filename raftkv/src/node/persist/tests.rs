//! [`Persistence`] over a storage on a simulated disk: Readys reported in order and only after
//! the fsync that covers them, a failed fsync that acknowledges nothing, a flush that overtakes
//! the sync in flight.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use raft_core::eraftpb::MessageType;
use raft_core::{Storage, NO_LIMIT};
use storage_disk::io::{FaultConfig, SimFs};

use super::*;
use crate::storage::tests::{entries, snapshot, TempDir};

/// A node's storage with its log on a simulated disk, bootstrapped with {1, 2, 3}, and its
/// persistence, whose sync thread reports on the returned receiver.
struct Setup {
    dir: TempDir,
    disk: SimFs,
    storage: NodeStorage,
    persistence: Persistence,
    events: Receiver<Event>,
}

fn setup(name: &str) -> Setup {
    let dir = TempDir::new(name);
    let disk = SimFs::new(7, FaultConfig::none());
    let storage = NodeStorage::open_on(&dir.0, Arc::new(disk.clone())).unwrap();
    storage
        .initialize(snapshot(1, 1, &[1, 2, 3], "initial state"))
        .unwrap();
    let (tx, events) = channel();
    let persistence = Persistence::new(storage.clone(), tx).unwrap();
    Setup {
        dir,
        disk,
        storage,
        persistence,
        events,
    }
}

/// The acknowledgement of entries up to `index` that a Ready carries as persisted message.
fn ack(index: u64) -> Message {
    Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        to: 2,
        from: 1,
        index,
        ..Default::default()
    }
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: 1,
        commit,
    }
}

/// Ready `number` with entries `range` of `term` (if any), a hard state and an acknowledgement.
fn ready(number: u64, range: Option<(u64, u64)>, term: u64, commit: u64) -> ReadyWrite {
    ReadyWrite {
        number,
        entries: range.map(|(lo, hi)| Arc::new(entries(lo..=hi, term))),
        hard_state: Some(hs(term, commit)),
        must_sync: true,
        messages: range.map(|(_, hi)| vec![ack(hi)]).unwrap_or_default(),
    }
}

/// The next sync the sync thread reports.
fn next_synced(events: &Receiver<Event>) -> (u64, FinishedSync) {
    match events.recv_timeout(Duration::from_secs(60)) {
        Ok(Event::Synced { id, finished }) => (id, *finished),
        other => panic!("expected a sync's report, got {other:?}"),
    }
}

fn acked(durable: &Durable) -> Vec<u64> {
    durable.messages.iter().map(|m| m.index).collect()
}

#[test]
fn readys_are_reported_in_order_and_only_once_the_fsync_covering_them_returned() {
    let Setup {
        dir,
        disk,
        storage,
        mut persistence,
        events,
    } = setup("order");
    assert!(persistence
        .submit(ready(1, Some((2, 4)), 2, 1))
        .unwrap()
        .is_none());
    // Held while the first sync is in flight; the third replaces entry 6 (a new leader's).
    assert!(persistence
        .submit(ready(2, Some((5, 6)), 2, 4))
        .unwrap()
        .is_none());
    assert!(persistence
        .submit(ready(3, Some((6, 7)), 3, 5))
        .unwrap()
        .is_none());
    let commit_only = ReadyWrite {
        number: 4,
        hard_state: Some(hs(3, 6)),
        ..Default::default()
    };
    assert!(persistence.submit(commit_only).unwrap().is_none());
    assert_eq!(
        storage.last_log_index(),
        4,
        "held Readys are not written yet"
    );

    let (id, finished) = next_synced(&events);
    let durable = persistence.on_synced(id, finished).unwrap().unwrap();
    assert_eq!((durable.number, acked(&durable)), (1, vec![4]));
    // The held Readys are written at once, as appending each in turn would, and their sync is
    // in flight.
    let mut expected = entries(2..=5, 2);
    expected.extend(entries(6..=7, 3));
    assert_eq!(storage.entries(2, 8, NO_LIMIT).unwrap(), expected);
    assert_eq!(storage.hard_state(), hs(3, 6));

    let (id, finished) = next_synced(&events);
    let durable = persistence.on_synced(id, finished).unwrap().unwrap();
    assert_eq!((durable.number, acked(&durable)), (4, vec![6, 7]));
    assert_eq!((persistence.syncs_run, persistence.entries_written), (2, 7));

    // A power loss keeps all of it.
    drop((persistence, storage));
    let reopened = NodeStorage::open_on(&dir.0, Arc::new(disk.crash())).unwrap();
    assert_eq!(reopened.entries(2, 8, NO_LIMIT).unwrap(), expected);
    assert_eq!(reopened.hard_state(), hs(3, 6));
}

#[test]
fn a_ready_that_needs_no_fsync_is_durable_at_once_when_nothing_is_in_flight() {
    let mut s = setup("no-fsync");
    let commit_only = ReadyWrite {
        number: 1,
        hard_state: Some(hs(1, 1)),
        ..Default::default()
    };
    let durable = s.persistence.submit(commit_only).unwrap().unwrap();
    assert_eq!(durable.number, 1);
    assert_eq!(s.persistence.syncs_run, 0, "no fsync");
    assert_eq!(s.storage.hard_state(), hs(1, 1));
}

#[test]
fn a_failed_fsync_acknowledges_nothing_and_stops_the_node() {
    let mut s = setup("failed");
    s.disk.fail_next_sync();
    assert!(s
        .persistence
        .submit(ready(1, Some((2, 4)), 2, 1))
        .unwrap()
        .is_none());
    assert!(s
        .persistence
        .submit(ready(2, Some((5, 6)), 2, 4))
        .unwrap()
        .is_none());
    let (id, finished) = next_synced(&s.events);
    let error = s.persistence.on_synced(id, finished).unwrap_err();
    assert!(error.to_string().contains("fsync"), "{error}");
    // Nothing is reported persisted, ever: every later write and sync is refused.
    assert!(s.persistence.submit(ready(3, Some((7, 7)), 2, 4)).is_err());
    assert!(s.storage.sync().is_err());
}

#[test]
fn a_flush_makes_every_ready_durable_and_the_late_report_of_its_sync_acknowledges_nothing() {
    let mut s = setup("flush");
    assert!(s
        .persistence
        .submit(ready(1, Some((2, 4)), 2, 1))
        .unwrap()
        .is_none());
    assert!(s
        .persistence
        .submit(ready(2, Some((5, 6)), 2, 4))
        .unwrap()
        .is_none());
    let durable = s.persistence.flush().unwrap().unwrap();
    assert_eq!((durable.number, acked(&durable)), (2, vec![4, 6]));
    assert_eq!(s.storage.last_log_index(), 6);
    assert!(s
        .persistence
        .submit(ready(3, Some((7, 8)), 2, 6))
        .unwrap()
        .is_none());
    // The sync the flush overtook reports now: it must not stand for the new one.
    let (id, finished) = next_synced(&s.events);
    assert!(s.persistence.on_synced(id, finished).unwrap().is_none());
    let (id, finished) = next_synced(&s.events);
    let durable = s.persistence.on_synced(id, finished).unwrap().unwrap();
    assert_eq!((durable.number, acked(&durable)), (3, vec![8]));
}
