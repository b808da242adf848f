//! Unit tests of [`RaftLog`] over a small in-test [`Storage`]: term lookups and conflict search here;
//! appending, committing, persisting, handing out committed entries and slicing in
//! [`append_and_apply`].

use super::*;
use crate::storage::RaftState;
use bytes::Bytes;
use raft_proto::eraftpb::SnapshotMetadata;

mod append_and_apply;

/// A minimal [`Storage`]: a snapshot point (index, term) followed by contiguous entries.
/// `broken` makes `term` and `entries` fail with `LogTemporarilyUnavailable`.
#[derive(Default)]
struct TestStorage {
    snap_index: u64,
    snap_term: u64,
    entries: Vec<Entry>,
    broken: bool,
}

impl TestStorage {
    fn last(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }
}

impl Storage for TestStorage {
    fn initial_state(&self) -> Result<RaftState> {
        Ok(RaftState::default())
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        if self.broken {
            return Err(StorageError::LogTemporarilyUnavailable.into());
        }
        if low <= self.snap_index {
            return Err(StorageError::Compacted.into());
        }
        if high > self.last() + 1 {
            return Err(StorageError::Unavailable.into());
        }
        let range = &self.entries
            [(low - self.snap_index - 1) as usize..(high - self.snap_index - 1) as usize];
        let mut out = Vec::new();
        let mut size = 0u64;
        for e in range {
            size = size.saturating_add(entry_size(e));
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, index: u64) -> Result<u64> {
        if self.broken {
            return Err(StorageError::LogTemporarilyUnavailable.into());
        }
        if index < self.snap_index {
            return Err(StorageError::Compacted.into());
        }
        if index == self.snap_index {
            return Ok(self.snap_term);
        }
        if index > self.last() {
            return Err(StorageError::Unavailable.into());
        }
        Ok(self.entries[(index - self.snap_index - 1) as usize].term)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.snap_index + 1)
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> Result<Snapshot> {
        Ok(snap(self.snap_index, self.snap_term))
    }
}

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

/// An entry with a 100-byte payload, so that size limits bite.
fn big(index: u64, term: u64) -> Entry {
    Entry {
        data: Bytes::from(vec![7u8; 100]),
        ..ent(index, term)
    }
}

fn snap(index: u64, term: u64) -> Snapshot {
    Snapshot {
        metadata: Some(SnapshotMetadata {
            index,
            term,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// A log whose storage holds the snapshot point (`snap_index`, `snap_term`) and `stored`, with
/// `unstable` appended after it (not yet persisted).
fn new_log(
    snap_index: u64,
    snap_term: u64,
    stored: Vec<Entry>,
    unstable: &[Entry],
) -> RaftLog<TestStorage> {
    let store = TestStorage {
        snap_index,
        snap_term,
        entries: stored,
        broken: false,
    };
    let mut log = RaftLog::new(store).expect("new log");
    log.append(unstable);
    log
}

/// The log (1,1) (2,2) (3,3), all in storage.
fn log_123() -> RaftLog<TestStorage> {
    new_log(0, 0, vec![ent(1, 1), ent(2, 2), ent(3, 3)], &[])
}

/// Does what the application does with a `Ready`: writes the unstable entries up to `index` to
/// storage, then reports (`index`, `term`) persisted. Returns what `stable_entries` returned.
fn persist(log: &mut RaftLog<TestStorage>, index: u64, term: u64) -> bool {
    let written: Vec<Entry> = log
        .unstable
        .entries
        .iter()
        .filter(|e| e.index <= index)
        .cloned()
        .collect();
    if let Some(first) = written.first() {
        let keep = (first.index - log.store.snap_index - 1) as usize;
        log.store.entries.truncate(keep);
        log.store.entries.extend(written);
    }
    // Hand them out first, as a Ready does: only entries handed out can become durable.
    let first_pending = log.unstable.offset + log.unstable.in_progress() as u64;
    if index >= first_pending {
        log.unstable
            .lend_first((index - first_pending + 1) as usize);
    }
    log.stable_entries(index, term)
}

/// Every (index, term) from the first index to the last, as the log reports them.
fn contents<T: Storage>(log: &RaftLog<T>) -> Vec<(u64, u64)> {
    (log.first_index()..=log.last_index())
        .map(|i| (i, log.term(i).expect("term")))
        .collect()
}

#[test]
fn new_log_starts_with_storage_persisted_and_nothing_committed() {
    let log = new_log(3, 2, vec![ent(4, 2), ent(5, 3), ent(6, 3)], &[]);
    assert_eq!((log.first_index(), log.last_index()), (4, 6));
    assert_eq!(log.persisted, 6, "what storage holds is durable");
    assert_eq!(
        (log.committed, log.applying, log.applied),
        (3, 3, 3),
        "the snapshot point"
    );
    assert_eq!(log.unstable.offset, 7);
    assert!(log.unstable_entries().is_empty());
}

#[test]
fn term_inside_and_outside_the_log() {
    // Snapshot at 100 (term 1), entries 101..=150 in storage and 151..=199 unstable, term == index.
    let stored: Vec<Entry> = (101..=150).map(|i| ent(i, i)).collect();
    let unstable: Vec<Entry> = (151..=199).map(|i| ent(i, i)).collect();
    let log = new_log(100, 1, stored, &unstable);
    // (index, expected term)
    let cases = [
        (0, 0),
        (99, 0),
        (100, 1),
        (101, 101),
        (150, 150),
        (151, 151),
        (199, 199),
        (200, 0),
        (u64::MAX, 0),
    ];
    for (index, want) in cases {
        assert_eq!(log.term(index), Ok(want), "term({index})");
    }
}

#[test]
fn term_with_a_pending_snapshot() {
    let mut log = new_log(0, 0, vec![ent(1, 1), ent(2, 1)], &[]);
    log.unstable.restore(snap(10, 4));
    assert_eq!((log.first_index(), log.last_index()), (11, 10));
    assert_eq!(
        log.term(10),
        Ok(4),
        "the snapshot point has the snapshot's term"
    );
    assert_eq!(
        log.term(2),
        Ok(0),
        "entries covered by the snapshot are gone"
    );
    assert_eq!(log.term(11), Ok(0));
    assert_eq!(log.last_term(), 4);
}

#[test]
fn term_propagates_storage_failures_other_than_unavailable() {
    let mut log = log_123();
    log.store.broken = true;
    assert_eq!(
        log.term(2),
        Err(Error::Store(StorageError::LogTemporarilyUnavailable))
    );
    assert!(!log.match_term(2, 2), "an unreadable term never matches");
    assert_eq!(
        log.last_term(),
        0,
        "last_term degrades to 0 rather than failing"
    );
}

#[test]
fn last_term_is_the_term_of_the_last_entry_or_snapshot() {
    assert_eq!(new_log(0, 0, vec![], &[]).last_term(), 0, "empty log");
    assert_eq!(new_log(5, 3, vec![], &[]).last_term(), 3, "only a snapshot");
    assert_eq!(log_123().last_term(), 3, "stored entries");
    assert_eq!(
        new_log(0, 0, vec![ent(1, 1)], &[ent(2, 5)]).last_term(),
        5,
        "unstable tail"
    );
}

#[test]
fn is_up_to_date_compares_last_term_then_last_index() {
    // §5.4.1: the log with the later last term is more up to date; with equal terms the longer one.
    let log = log_123();
    // (candidate last index, candidate last term, expected)
    let cases = [
        (2, 4, true),
        (3, 4, true),
        (4, 4, true),
        (2, 2, false),
        (3, 2, false),
        (4, 2, false),
        (2, 3, false),
        (3, 3, true),
        (4, 3, true),
    ];
    for (index, term, want) in cases {
        assert_eq!(
            log.is_up_to_date(index, term).unwrap(),
            want,
            "is_up_to_date({index}, {term})"
        );
    }
}

#[test]
fn find_conflict_returns_the_first_missing_or_mismatching_index() {
    let log = log_123();
    // (entries, expected)
    let cases: Vec<(Vec<Entry>, u64)> = vec![
        // no conflict, empty
        (vec![], 0),
        // no conflict
        (vec![ent(1, 1), ent(2, 2), ent(3, 3)], 0),
        (vec![ent(2, 2), ent(3, 3)], 0),
        (vec![ent(3, 3)], 0),
        // no conflict, but new entries
        (
            vec![ent(1, 1), ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 4)],
            4,
        ),
        (vec![ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 4)], 4),
        (vec![ent(3, 3), ent(4, 4), ent(5, 4)], 4),
        (vec![ent(4, 4), ent(5, 4)], 4),
        // conflicts with existing entries
        (vec![ent(1, 4), ent(2, 4)], 1),
        (vec![ent(2, 1), ent(3, 4), ent(4, 4)], 2),
        (vec![ent(3, 1), ent(4, 2), ent(5, 4), ent(6, 4)], 3),
    ];
    for (i, (entries, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            log.find_conflict(&entries),
            want,
            "case {i}: {:?}",
            ids(&entries)
        );
    }
}

#[test]
fn find_conflict_by_term_finds_the_last_index_with_a_term_not_above() {
    // raft-rs reject hint: the largest index <= min(index, last) whose term <= term.
    // Terms of 1..=10: 2 2 2 4 4 4 5 5 5 7; 1..=6 in storage, 7..=10 unstable.
    let terms = [2, 2, 2, 4, 4, 4, 5, 5, 5, 7];
    let all: Vec<Entry> = (1..=10).map(|i| ent(i, terms[i as usize - 1])).collect();
    let log = new_log(0, 0, all[..6].to_vec(), &all[6..]);
    // (index, term, expected)
    let cases = [
        (10, 7, (10, Some(7))),
        (10, 8, (10, Some(7))),
        (10, 6, (9, Some(5))),
        (10, 5, (9, Some(5))),
        (10, 4, (6, Some(4))),
        (10, 3, (3, Some(2))),
        (10, 2, (3, Some(2))),
        (10, 1, (0, Some(0))),
        (8, 5, (8, Some(5))),
        (8, 4, (6, Some(4))),
        (5, 4, (5, Some(4))),
        (5, 3, (3, Some(2))),
        (3, 9, (3, Some(2))),
        (0, 0, (0, Some(0))),
        // beyond the last index: the search starts at the last index
        (20, 6, (9, Some(5))),
        (20, 9, (10, Some(7))),
    ];
    for (index, term, want) in cases {
        assert_eq!(
            log.find_conflict_by_term(index, term),
            want,
            "find_conflict_by_term({index}, {term})"
        );
    }
    assert_eq!(
        new_log(0, 0, vec![], &[]).find_conflict_by_term(5, 1),
        (0, Some(0)),
        "empty log"
    );
}

#[test]
fn find_conflict_by_term_on_a_compacted_log_stops_at_or_below_the_snapshot() {
    // Snapshot (3, 2), then terms 4 4 5 5 7 7 7 at 4..=10.
    let stored = vec![
        ent(4, 4),
        ent(5, 4),
        ent(6, 5),
        ent(7, 5),
        ent(8, 7),
        ent(9, 7),
        ent(10, 7),
    ];
    let log = new_log(3, 2, stored, &[]);
    assert_eq!(log.find_conflict_by_term(10, 6), (7, Some(5)));
    assert_eq!(
        log.find_conflict_by_term(10, 3),
        (3, Some(2)),
        "the snapshot point matches"
    );
    assert_eq!(log.find_conflict_by_term(10, 2), (3, Some(2)));
    // Below the snapshot's term the terms are unknown: whatever is returned must not claim an
    // index above the snapshot point, nor a term above the one asked for.
    let (index, term) = log.find_conflict_by_term(10, 1);
    assert!(
        index <= 3,
        "hint {index} is above the snapshot point though every later term is > 1"
    );
    assert!(term.is_none_or(|t| t <= 1), "hint term {term:?} is above 1");
}

/// The hint by the definition: walk down from min(index, last) while the term is above `term`.
fn conflict_by_term_reference(
    log: &RaftLog<TestStorage>,
    index: u64,
    term: u64,
) -> (u64, Option<u64>) {
    let mut i = index.min(log.last_index());
    loop {
        match log.term(i) {
            Ok(t) if t > term && i > 0 => i -= 1,
            Ok(t) => return (i, Some(t)),
            Err(_) => return (i, None),
        }
    }
}

#[test]
fn find_conflict_by_term_agrees_with_a_walk_down_the_log() {
    // Logs with runs of terms, with and without a snapshot, split between storage and the
    // unstable tail; every (index, term) probe, including far beyond the log.
    let terms = [1, 1, 2, 2, 2, 5, 5, 6, 9, 9, 9, 9, 12];
    for snap in [0u64, 3, 7] {
        for split in [0usize, 4, terms.len()] {
            let all: Vec<Entry> = terms
                .iter()
                .enumerate()
                .map(|(i, t)| ent(i as u64 + 1, *t))
                .filter(|e| e.index > snap)
                .collect();
            let cut = split.min(all.len());
            let snap_term = if snap == 0 {
                0
            } else {
                terms[snap as usize - 1]
            };
            let log = new_log(snap, snap_term, all[..cut].to_vec(), &all[cut..]);
            for index in [0, 1, 2, 5, 8, 13, 14, 1_000, u64::MAX] {
                for term in 0..=13 {
                    assert_eq!(
                        log.find_conflict_by_term(index, term),
                        conflict_by_term_reference(&log, index, term),
                        "snapshot {snap}, split {split}: find_conflict_by_term({index}, {term})"
                    );
                }
            }
        }
    }
}
