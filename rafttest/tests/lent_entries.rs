//! Lent Ready entries and the apply cache, at the `RawNode` level over `MemStorage`.
//!
//! The unstable log *lends* each Ready's entries (an `Arc` chunk shared with the Ready) until
//! they are reported durable, and then keeps durable entries in an *apply cache* from which they
//! are handed out as committed without a storage read (`raft-core/src/log/unstable.rs`,
//! `raft-core/src/log/mod.rs`). These tests pin what must hold whatever the application does with
//! its Ready handles (`take_entries`, `take_shared_entries`, keeping the whole `Ready`, dropping it
//! before or after reporting) and whatever a newer leader or a snapshot does to lent or cached
//! entries meanwhile:
//!
//! - an application's handle on lent entries never changes under it, and the node keeps reading
//!   lent entries, across chunks, as its own log;
//! - a report for a Ready whose entries were since replaced (the ABA case of async writes, split
//!   inside a lent chunk or across chunks) marks nothing durable;
//! - the apply cache never hands out an entry that differs from the log's (and storage's) entry at
//!   that index: after a conflicting append from a newer leader, after a snapshot restore, after
//!   `persisted` moved back; every index is handed out exactly once and in order, also when the
//!   cache hits its byte limit mid-way (part cache, part storage), when
//!   `max_committed_size_per_ready` pages out of it, and across restarts; a failing storage read
//!   moves nothing;
//! - two seeded randomized runs: one follower under a sequence of conflicting fake leaders
//!   (pipelining, handle modes, snapshots, restarts, random cache sizes), and a three-node group of
//!   real nodes with asynchronous persistence and a lossy, reordering network. Both check the
//!   invariants after every step;
//! - a stale report after a snapshot restore must not count entries durable that were never
//!   handed out (or were handed out again by a later Ready) and that the snapshot's write erases
//!   (found by this file; the fix tags each lent chunk with its Ready's number).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raft_core::eraftpb::{Entry, HardState, Message, MessageType, Snapshot, SnapshotMetadata};
use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::{
    Config, Error, LightReady, RaftState, RawNode, Ready, StateRole, Storage, StorageError,
    NO_LIMIT,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Election timeout 10 ticks, heartbeat 1, no message size limit; the apply cache and the
/// committed page size as given.
fn config(id: u64, cache_bytes: u64, page: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: 256,
        max_apply_cache_bytes: cache_bytes,
        max_committed_size_per_ready: page,
        ..Default::default()
    }
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    }
}

/// Entries `lo..=hi` of `term`, each with a 4-byte payload naming it.
fn run(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|i| entry(i, term, format!("{i:02}t{term}").as_bytes()))
        .collect()
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// A MsgAppend from `from` (leading `term`) to node 2.
fn append(from: u64, term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from,
        to: 2,
        term,
        index: prev.0,
        log_term: prev.1,
        entries,
        commit,
        ..Default::default()
    }
}

/// A MsgSnapshot from `from` (leading `term`) to node 2, of the group {1, 2, 3} at
/// (`index`, `snap_term`).
fn snapshot_msg(from: u64, term: u64, index: u64, snap_term: u64) -> Message {
    Message {
        msg_type: MessageType::MsgSnapshot as i32,
        from,
        to: 2,
        term,
        snapshot: Some(Box::new(Snapshot {
            data: Bytes::from(format!("state@{index}")),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(conf_state([1, 2, 3], [])),
                index,
                term: snap_term,
            }),
        })),
        ..Default::default()
    }
}

fn stored(storage: &MemStorage, lo: u64, hi: u64) -> Vec<Entry> {
    storage
        .entries(lo, hi, NO_LIMIT)
        .unwrap_or_else(|e| panic!("storage cannot read [{lo}, {hi}): {e}"))
}

/// Writes what a Ready asks to persist: snapshot, entries, hard state (in that order).
fn write_parts(
    storage: &MemStorage,
    snapshot: Option<&Snapshot>,
    entries: &[Entry],
    hs: Option<HardState>,
) {
    let mut s = storage.wl();
    if let Some(snap) = snapshot {
        s.apply_snapshot(snap.clone()).expect("write the snapshot");
    }
    s.append(entries).expect("write the entries");
    if let Some(hs) = hs {
        s.set_hardstate(hs);
    }
}

fn write_ready(storage: &MemStorage, rd: &Ready) {
    let snap = (!rd.snapshot().is_empty()).then(|| rd.snapshot());
    write_parts(storage, snap, rd.entries(), rd.hard_state().copied());
}

/// Node 2 of the group {1, 2, 3}, bootstrapped (the log proper starts at index 2).
fn follower(cache_bytes: u64, page: u64) -> (RawNode<MemStorage>, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let raw = RawNode::new(&config(2, cache_bytes, page), storage.clone(), &logger())
        .expect("start node 2");
    (raw, storage)
}

/// The log as the node sees it, first index to last.
fn log_view<S: Storage>(raw: &RawNode<S>) -> Vec<Entry> {
    let log = &raw.raft.raft_log;
    let (first, last) = (log.first_index(), log.last_index());
    if first > last {
        return Vec::new();
    }
    log.slice(first, last + 1, NO_LIMIT)
        .unwrap_or_else(|e| panic!("the node cannot read its own log [{first}, {last}]: {e}"))
}

/// Takes a Ready, writes it, reports it with `advance` and returns every committed entry handed
/// out (the Ready's and the LightReady's).
fn sync_round(raw: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Entry> {
    let rd = raw.ready().expect("ready");
    write_ready(storage, &rd);
    let mut out = rd.committed_entries().to_vec();
    let light = raw.advance(rd).expect("advance");
    out.extend_from_slice(light.committed_entries());
    raw.advance_apply();
    out
}

/// Runs sync rounds until nothing is ready; returns every committed entry handed out.
fn settle(raw: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Entry> {
    let mut out = Vec::new();
    for _ in 0..50 {
        if !raw.has_ready() {
            return out;
        }
        out.extend(sync_round(raw, storage));
    }
    panic!("the node keeps producing Readys");
}

/// Asserts that `handed` are exactly indexes `from..` in order and equal storage's entries.
fn assert_handed_out_once_from_storage(
    handed: &[Entry],
    from: u64,
    storage: &MemStorage,
    what: &str,
) {
    for (k, e) in handed.iter().enumerate() {
        assert_eq!(
            e.index,
            from + k as u64,
            "{what}: committed entries must be handed out once each, in order: got {:?}",
            ids(handed)
        );
    }
    if let (Some(first), Some(last)) = (handed.first(), handed.last()) {
        assert_eq!(
            handed,
            stored(storage, first.index, last.index + 1).as_slice(),
            "{what}: the committed entries handed out differ from what storage holds"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A storage wrapper that records reads and can fail them
// ---------------------------------------------------------------------------------------------

/// `MemStorage` behind a switch that makes `entries` fail, recording every `entries` range read.
#[derive(Clone)]
struct Probe {
    inner: MemStorage,
    reads: Arc<Mutex<Vec<(u64, u64)>>>,
    fail_entries: Arc<AtomicBool>,
}

impl Probe {
    fn new(inner: MemStorage) -> Probe {
        Probe {
            inner,
            reads: Arc::default(),
            fail_entries: Arc::default(),
        }
    }

    fn take_reads(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.reads.lock().expect("reads"))
    }
}

impl Storage for Probe {
    fn initial_state(&self) -> raft_core::Result<RaftState> {
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        self.reads.lock().expect("reads").push((low, high));
        if self.fail_entries.load(Ordering::SeqCst) {
            return Err(Error::Store(StorageError::Unavailable));
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

// ---------------------------------------------------------------------------------------------
// Sharing: the Ready and the log read the same entries until they are durable
// ---------------------------------------------------------------------------------------------

/// A single voter's proposals: the Ready's entries are shared with the log (one extra reference,
/// no copy), the log still reads them, and once reported durable the log lets go of them.
#[test]
fn lent_entries_are_shared_with_the_log_until_reported_durable() {
    let storage = MemStorage::bootstrap([1], []).expect("bootstrap");
    let mut raw = RawNode::new(
        &config(1, DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT),
        storage.clone(),
        &logger(),
    )
    .expect("start");
    raw.campaign().expect("campaign");
    settle(&mut raw, &storage);
    assert_eq!(raw.raft.state, StateRole::Leader);
    let base = raw.raft.raft_log.last_index();
    for i in 0..3 {
        raw.propose(vec![], format!("p{i}").into_bytes())
            .expect("propose");
    }
    let mut rd = raw.ready().expect("ready");
    let shared = rd
        .take_shared_entries()
        .expect("the proposals are handed out");
    assert_eq!(
        ids(&shared),
        vec![(base + 1, 2), (base + 2, 2), (base + 3, 2)]
    );
    assert_eq!(
        Arc::strong_count(&shared),
        2,
        "the handle and the log share one buffer (no copy)"
    );
    let view = log_view(&raw);
    assert_eq!(
        view[view.len() - 3..],
        shared[..],
        "the node reads the lent entries as its own log"
    );
    for e in shared.iter() {
        assert_eq!(raw.raft.raft_log.term(e.index).ok(), Some(e.term));
    }
    write_parts(&storage, None, &shared, rd.hard_state().copied());
    let number = rd.number();
    raw.advance_append_async(rd);
    raw.on_persist_ready(number);
    assert_eq!(
        Arc::strong_count(&shared),
        1,
        "once reported durable the log no longer holds the lent chunk"
    );
    assert_eq!(raw.raft.raft_log.persisted, base + 3);
    let handed = settle(&mut raw, &storage);
    assert_handed_out_once_from_storage(&handed, base + 1, &storage, "single voter");
    assert_eq!(handed.as_slice(), &shared[..]);
}

// ---------------------------------------------------------------------------------------------
// The ABA case: lent entries replaced by a newer leader before their write is reported
// ---------------------------------------------------------------------------------------------

/// How the application holds a Ready's entries while it writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// `take_shared_entries`, the handle dropped as soon as the entries are written.
    SharedDroppedWhenWritten,
    /// `take_shared_entries`, the handle kept until after the report (the log must copy).
    SharedKeptPastReport,
    /// `take_entries` (a copy).
    Copied,
    /// The whole `Ready` kept until written and reported (with `advance_append` or `advance`).
    WholeReady,
}

const HOLDS: [Hold; 4] = [
    Hold::SharedDroppedWhenWritten,
    Hold::SharedKeptPastReport,
    Hold::Copied,
    Hold::WholeReady,
];

/// What the application keeps of a Ready while writing it.
enum Handle {
    Shared(Option<Arc<Vec<Entry>>>),
    Copied(Vec<Entry>),
    Whole(Box<Ready>),
}

impl Handle {
    fn entries(&self) -> &[Entry] {
        match self {
            Handle::Shared(Some(arc)) => arc,
            Handle::Shared(None) => &[],
            Handle::Copied(v) => v,
            Handle::Whole(rd) => rd.entries(),
        }
    }
}

/// Takes `rd`'s entries as `hold` says; hands the Ready over with `advance_append_async` unless
/// it is kept whole.
fn hold_ready<S: Storage>(raw: &mut RawNode<S>, mut rd: Ready, hold: Hold) -> Handle {
    match hold {
        Hold::SharedDroppedWhenWritten | Hold::SharedKeptPastReport => {
            let shared = rd.take_shared_entries();
            raw.advance_append_async(rd);
            Handle::Shared(shared)
        }
        Hold::Copied => {
            let copied = rd.take_entries();
            raw.advance_append_async(rd);
            Handle::Copied(copied)
        }
        Hold::WholeReady => Handle::Whole(Box::new(rd)),
    }
}

/// Node 2 receives entries 2..=5 of term 2 and hands them out in Ready 1, which the application
/// writes; before it reports the write, leader 3 of term 3 overwrites 4..: the application's handle
/// is untouched, Ready 1's report marks nothing durable (§5.3 with async writes: the ABA case),
/// Ready 2's report does, and the committed entries are the log's, once each.
#[test]
fn a_report_for_entries_replaced_inside_a_lent_chunk_marks_nothing_durable() {
    for hold in HOLDS {
        let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 5, 2), 1))
            .expect("append");
        let rd1 = raw.ready().expect("ready 1");
        let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
        let mut h1 = hold_ready(&mut raw, rd1, hold);
        write_parts(&storage, None, h1.entries(), hs1);
        if hold == Hold::SharedDroppedWhenWritten {
            h1 = Handle::Shared(None);
        }

        raw.step(append(3, 3, (3, 2), run(4, 6, 3), 1))
            .expect("a newer leader's conflicting append");
        assert_eq!(
            ids(&log_view(&raw)),
            vec![(2, 2), (3, 2), (4, 3), (5, 3), (6, 3)],
            "{hold:?}: the log reads the kept part of the lent chunk and the new entries"
        );
        if hold != Hold::SharedDroppedWhenWritten {
            assert_eq!(
                h1.entries(),
                run(2, 5, 2).as_slice(),
                "{hold:?}: the application's handle on Ready 1 must not change under it"
            );
        }
        let rd2 = raw.ready().expect("ready 2");
        assert_eq!(ids(rd2.entries()), vec![(4, 3), (5, 3), (6, 3)], "{hold:?}");
        write_ready(&storage, &rd2);

        match h1 {
            Handle::Whole(rd1) => {
                let light = raw.advance_append(*rd1).expect("advance_append(ready 1)");
                assert!(light.committed_entries().is_empty(), "{hold:?}");
            }
            other => {
                raw.on_persist_ready(n1);
                drop(other);
            }
        }
        assert_eq!(
            raw.raft.raft_log.persisted, 1,
            "{hold:?}: Ready 1's (5, 2) is gone, so its report must mark nothing durable"
        );
        let light = raw.advance_append(rd2).expect("advance_append(ready 2)");
        assert!(light.committed_entries().is_empty(), "{hold:?}");
        assert_eq!(raw.raft.raft_log.persisted, 6, "{hold:?}: Ready 2's report");
        assert_eq!(
            log_view(&raw),
            stored(&storage, 2, 7),
            "{hold:?}: the durable log is what storage holds"
        );

        raw.step(append(3, 3, (6, 3), vec![], 6)).expect("commit");
        let handed = settle(&mut raw, &storage);
        assert_handed_out_once_from_storage(&handed, 2, &storage, &format!("{hold:?}"));
        assert_eq!(
            ids(&handed),
            vec![(2, 2), (3, 2), (4, 3), (5, 3), (6, 3)],
            "{hold:?}"
        );
    }
}

/// Two Readys lend two chunks (2..=3 and 4..=5); leader 3 replaces the log from 5 (inside the
/// second chunk), from 4 (at its start) or from 2 (everything lent). A report still counts the
/// chunks the log kept (2..=3 unless replaced), never a replaced one; the Ready carrying the
/// replacement makes everything durable; the application's handles stay as handed out.
#[test]
fn reports_across_lent_chunks_count_only_entries_still_in_the_log() {
    for conflict in [5, 4, 2] {
        for hold in HOLDS {
            let what = format!("conflict at {conflict}, {hold:?}");
            let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
            raw.step(append(1, 2, (1, 1), run(2, 3, 2), 1))
                .expect("append");
            let rd1 = raw.ready().expect("ready 1");
            let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
            let h1 = hold_ready(&mut raw, rd1, hold);
            raw.step(append(1, 2, (3, 2), run(4, 5, 2), 1))
                .expect("append");
            let rd2 = raw.ready().expect("ready 2");
            let (n2, hs2) = (rd2.number(), rd2.hard_state().copied());
            let h2 = hold_ready(&mut raw, rd2, hold);
            write_parts(&storage, None, h1.entries(), hs1);
            write_parts(&storage, None, h2.entries(), hs2);

            let prev_term = if conflict == 2 { 1 } else { 2 };
            raw.step(append(
                3,
                3,
                (conflict - 1, prev_term),
                run(conflict, 6, 3),
                1,
            ))
            .expect("a newer leader's conflicting append");
            let expected: Vec<(u64, u64)> = (2..=6)
                .map(|i| (i, if i < conflict { 2 } else { 3 }))
                .collect();
            assert_eq!(ids(&log_view(&raw)), expected, "{what}");
            let rd3 = raw.ready().expect("ready 3");
            assert_eq!(
                ids(rd3.entries()),
                expected[(conflict - 2) as usize..],
                "{what}"
            );
            write_ready(&storage, &rd3);

            raw.on_persist_ready(n1);
            let kept = if conflict > 3 { 3 } else { 1 };
            assert_eq!(
                raw.raft.raft_log.persisted, kept,
                "{what}: Ready 1's report counts its entries only if the log still has them"
            );
            raw.on_persist_ready(n2);
            assert_eq!(
                raw.raft.raft_log.persisted, kept,
                "{what}: Ready 2's (5, 2) was replaced: its report marks nothing more"
            );
            if hold != Hold::SharedDroppedWhenWritten {
                assert_eq!(h1.entries(), run(2, 3, 2).as_slice(), "{what}: handle 1");
                assert_eq!(h2.entries(), run(4, 5, 2).as_slice(), "{what}: handle 2");
            }
            drop((h1, h2));
            drop(raw.advance_append(rd3).expect("advance_append(ready 3)"));
            assert_eq!(raw.raft.raft_log.persisted, 6, "{what}");
            assert_eq!(log_view(&raw), stored(&storage, 2, 7), "{what}");
            raw.step(append(3, 3, (6, 3), vec![], 6)).expect("commit");
            let handed = settle(&mut raw, &storage);
            assert_handed_out_once_from_storage(&handed, 2, &storage, &what);
            assert_eq!(ids(&handed), expected, "{what}");
        }
    }
}

/// A leader whose proposals sit in three lent chunks, none written yet, sends a follower that
/// must be caught up from the start one MsgAppend read across all the chunks (thesis §10.2.1:
/// the leader replicates before its own write): exactly its log.
#[test]
fn a_leader_replicates_from_lent_chunks_before_writing_them() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = RawNode::new(
        &config(1, DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT),
        storage.clone(),
        &logger(),
    )
    .expect("start");
    raw.campaign().expect("campaign");
    let rd = raw.ready().expect("ready");
    write_ready(&storage, &rd);
    drop(raw.advance(rd).expect("advance"));
    raw.step(Message {
        msg_type: MessageType::MsgRequestVoteResponse as i32,
        from: 2,
        to: 1,
        term: 2,
        ..Default::default()
    })
    .expect("vote");
    assert_eq!(raw.raft.state, StateRole::Leader);
    let mut handles = Vec::new();
    for round in 0..3 {
        for i in 0..2 {
            raw.propose(vec![], format!("r{round}p{i}").into_bytes())
                .expect("propose");
        }
        let mut rd = raw.ready().expect("ready");
        handles.push(rd.take_shared_entries());
        raw.advance_append_async(rd);
    }
    let log = log_view(&raw);
    assert_eq!(
        log.len(),
        7,
        "the leader's empty entry and six proposals, all lent"
    );
    // Node 2 is still probed (its first append is unanswered); a heartbeat response resumes it.
    raw.step(Message {
        msg_type: MessageType::MsgHeartbeatResponse as i32,
        from: 2,
        to: 1,
        term: 2,
        ..Default::default()
    })
    .expect("heartbeat response");
    let rd = raw.ready().expect("ready");
    let to2: Vec<&Message> = rd
        .messages()
        .iter()
        .filter(|m| m.to == 2 && m.msg_type() == MessageType::MsgAppend)
        .collect();
    assert_eq!(to2.len(), 1, "one append to node 2: {:?}", rd.messages());
    assert_eq!((to2[0].index, to2[0].log_term), (1, 1));
    assert_eq!(
        to2[0].entries, log,
        "the append carries the leader's log, read across its lent chunks"
    );
    assert_eq!(
        raw.raft.raft_log.persisted, 1,
        "nothing of it is written yet"
    );
    drop(handles);
}

// ---------------------------------------------------------------------------------------------
// The apply cache
// ---------------------------------------------------------------------------------------------

/// The cache sizes every apply-cache test runs with: off, too small for a batch, the default.
const CACHES: [u64; 3] = [0, 6, DEFAULT_APPLY_CACHE_BYTES];

/// Entries 2..=6 (term 2) are durable with only 2 committed (so 3..=6 wait in the cache); leader 3
/// of term 3 replaces 4.. and commits up to 5 before the replacement is durable. Only 3 may be
/// handed out then (the new entries are not durable); once they are, 4 and 5 are term 3's,
/// never the cached term-2 entries.
#[test]
fn a_conflict_inside_the_apply_cache_hands_out_the_new_leaders_entries() {
    for cache in CACHES {
        let (mut raw, storage) = follower(cache, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 6, 2), 2))
            .expect("append");
        let handed = settle(&mut raw, &storage);
        assert_eq!(ids(&handed), vec![(2, 2)], "cache {cache}");
        assert_eq!(raw.raft.raft_log.persisted, 6);

        raw.step(append(3, 3, (3, 2), run(4, 5, 3), 5))
            .expect("conflict at 4");
        assert_eq!(
            raw.raft.raft_log.persisted, 3,
            "cache {cache}: durable entries being replaced no longer count as persisted"
        );
        let rd = raw.ready().expect("ready");
        assert_eq!(
            ids(rd.committed_entries()),
            vec![(3, 2)],
            "cache {cache}: committed 5 but only 3 is durable: 4 and 5 must wait"
        );
        assert_handed_out_once_from_storage(rd.committed_entries(), 3, &storage, "before");
        assert_eq!(ids(rd.entries()), vec![(4, 3), (5, 3)]);
        write_ready(&storage, &rd);
        let light = raw.advance(rd).expect("advance");
        assert_eq!(
            ids(light.committed_entries()),
            vec![(4, 3), (5, 3)],
            "cache {cache}: the new leader's entries, not the cached ones"
        );
        assert_handed_out_once_from_storage(light.committed_entries(), 4, &storage, "after");
        raw.advance_apply();
        assert!(
            settle(&mut raw, &storage).is_empty(),
            "cache {cache}: nothing more"
        );
    }
}

/// Entries 2..=6 are durable, 2 handed out, 3..=6 cached; entries 7..=8 are lent and written but
/// not reported when a snapshot at (7, 3) from leader 3 replaces the log. The lent report marks
/// nothing, nothing at or below 7 is handed out after the snapshot, and 8 and 9 are term 3's.
#[test]
fn a_snapshot_restore_drops_cached_and_lent_entries() {
    for cache in CACHES {
        for hold in HOLDS {
            let what = format!("cache {cache}, {hold:?}");
            let (mut raw, storage) = follower(cache, NO_LIMIT);
            raw.step(append(1, 2, (1, 1), run(2, 6, 2), 2))
                .expect("append");
            assert_eq!(ids(&settle(&mut raw, &storage)), vec![(2, 2)]);
            raw.step(append(1, 2, (6, 2), run(7, 8, 2), 2))
                .expect("append");
            let rd1 = raw.ready().expect("ready 1");
            let (n1, hs1) = (rd1.number(), rd1.hard_state().copied());
            let h1 = hold_ready(&mut raw, rd1, hold);
            write_parts(&storage, None, h1.entries(), hs1);

            raw.step(snapshot_msg(3, 3, 7, 3)).expect("snapshot");
            assert_eq!(raw.raft.raft_log.last_index(), 7, "{what}");
            assert_eq!(raw.raft.raft_log.term(7).ok(), Some(3), "{what}");
            let rd2 = raw.ready().expect("ready 2");
            assert_eq!(rd2.snapshot().metadata.as_ref().map(|m| m.index), Some(7));
            assert!(rd2.committed_entries().is_empty(), "{what}");
            write_ready(&storage, &rd2);
            match h1 {
                Handle::Whole(rd1) => {
                    let light = raw.advance_append(*rd1).expect("advance_append(ready 1)");
                    assert!(light.committed_entries().is_empty(), "{what}");
                }
                h1 => {
                    raw.on_persist_ready(n1);
                    if hold != Hold::SharedDroppedWhenWritten {
                        assert_eq!(h1.entries(), run(7, 8, 2).as_slice(), "{what}: handle");
                    }
                }
            }
            assert!(
                raw.raft.raft_log.persisted <= 7,
                "{what}: (8, 2) was replaced by the snapshot; persisted {}",
                raw.raft.raft_log.persisted
            );
            let light = raw.advance(rd2).expect("advance(ready 2)");
            assert!(light.committed_entries().is_empty(), "{what}");
            assert_eq!(raw.raft.raft_log.persisted, 7, "{what}");

            raw.step(append(3, 3, (7, 3), run(8, 9, 3), 9))
                .expect("append after");
            let handed = settle(&mut raw, &storage);
            assert_handed_out_once_from_storage(&handed, 8, &storage, &what);
            assert_eq!(ids(&handed), vec![(8, 3), (9, 3)], "{what}");
        }
    }
}

/// Appends one batch (`run(lo, hi, 2)`, commit `commit`) to a follower over a `Probe` storage and
/// writes and reports it synchronously; returns the committed entries handed out.
fn probe_batch(
    raw: &mut RawNode<Probe>,
    storage: &MemStorage,
    lo: u64,
    hi: u64,
    commit: u64,
) -> Vec<Entry> {
    raw.step(append(
        1,
        2,
        (lo - 1, if lo == 2 { 1 } else { 2 }),
        run(lo, hi, 2),
        commit,
    ))
    .expect("append");
    let rd = raw.ready().expect("ready");
    write_ready(storage, &rd);
    let mut out = rd.committed_entries().to_vec();
    let light = raw.advance(rd).expect("advance");
    out.extend_from_slice(light.committed_entries());
    out
}

fn probe_follower(cache: u64, page: u64) -> (RawNode<Probe>, Probe, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let probe = Probe::new(storage.clone());
    let raw = RawNode::new(&config(2, cache, page), probe.clone(), &logger()).expect("start");
    (raw, probe, storage)
}

/// A 10-byte cache takes the first durable batch (2..=3, 8 bytes) but not the second (4..=5) nor,
/// having a gap then, the third (6). Committing all of them hands out 2..=6 in one batch, 2..=3
/// from the cache (storage is read from 4 only) and the rest from storage.
#[test]
fn a_full_apply_cache_hands_out_the_rest_from_storage_in_the_same_batch() {
    let (mut raw, probe, storage) = probe_follower(10, NO_LIMIT);
    assert!(probe_batch(&mut raw, &storage, 2, 3, 1).is_empty());
    assert!(probe_batch(&mut raw, &storage, 4, 5, 1).is_empty());
    assert!(probe_batch(&mut raw, &storage, 6, 6, 1).is_empty());
    probe.take_reads();
    raw.step(append(1, 2, (6, 2), vec![], 6)).expect("commit");
    let rd = raw.ready().expect("ready");
    assert_handed_out_once_from_storage(rd.committed_entries(), 2, &storage, "mixed batch");
    assert_eq!(
        rd.committed_entries().len(),
        5,
        "2..=6 in one batch (no size limit)"
    );
    let reads = probe.take_reads();
    assert!(
        reads.iter().all(|&(lo, _)| lo >= 4),
        "2..=3 were cached: storage must be read only from 4, read {reads:?}"
    );
    assert!(
        reads.iter().any(|&(lo, hi)| lo == 4 && hi == 7),
        "4..=6 come from storage, read {reads:?}"
    );
}

/// Storage fails while a batch is put together partly from the cache and partly from storage:
/// first in `ready`, then in `advance_append`. Either way nothing moves: once storage recovers,
/// the same entries are handed out, each once.
#[test]
fn a_failing_storage_read_behind_the_apply_cache_moves_nothing() {
    // In `ready`: the cache holds 2..=3, storage must supply 4..=6.
    let (mut raw, probe, storage) = probe_follower(10, NO_LIMIT);
    probe_batch(&mut raw, &storage, 2, 3, 1);
    probe_batch(&mut raw, &storage, 4, 5, 1);
    probe_batch(&mut raw, &storage, 6, 6, 1);
    raw.step(append(1, 2, (6, 2), vec![], 6)).expect("commit");
    probe.fail_entries.store(true, Ordering::SeqCst);
    assert!(raw.ready().is_err(), "the storage read fails");
    assert_eq!(
        raw.raft.raft_log.applying, 1,
        "a failed read hands out nothing"
    );
    assert!(raw.has_ready());
    probe.fail_entries.store(false, Ordering::SeqCst);
    let rd = raw.ready().expect("ready after recovery");
    assert_handed_out_once_from_storage(rd.committed_entries(), 2, &storage, "in ready");
    assert_eq!(
        rd.committed_entries().len(),
        5,
        "the cached entries were not lost"
    );

    // In `advance_append`: a 6-byte cache holds 6 (4 bytes); 7 does not fit.
    let (mut raw, probe, storage) = probe_follower(6, NO_LIMIT);
    assert_eq!(ids(&probe_batch(&mut raw, &storage, 2, 5, 5)).len(), 4);
    raw.advance_apply();
    probe_batch(&mut raw, &storage, 6, 6, 5);
    raw.step(append(1, 2, (6, 2), run(7, 7, 2), 5))
        .expect("append 7");
    let rd = raw.ready().expect("ready");
    assert!(rd.committed_entries().is_empty());
    write_ready(&storage, &rd);
    raw.step(append(1, 2, (7, 2), vec![], 7)).expect("commit 7");
    probe.fail_entries.store(true, Ordering::SeqCst);
    assert!(
        raw.advance_append(rd).is_err(),
        "reading 7 from storage fails in advance_append"
    );
    assert_eq!(
        raw.raft.raft_log.persisted, 7,
        "the persistence itself is recorded"
    );
    assert_eq!(raw.raft.raft_log.applying, 5, "nothing was handed out");
    probe.fail_entries.store(false, Ordering::SeqCst);
    let rd = raw.ready().expect("ready after recovery");
    assert_handed_out_once_from_storage(rd.committed_entries(), 6, &storage, "in advance_append");
    assert_eq!(ids(rd.committed_entries()), vec![(6, 2), (7, 2)]);
}

/// With `max_committed_size_per_ready` small, committed entries are paged out of the cache (and
/// out of storage past it): every index once, in order, equal to storage.
#[test]
fn paging_out_of_the_apply_cache_hands_every_index_once() {
    for cache in [0, 12, 40, DEFAULT_APPLY_CACHE_BYTES] {
        for page in [1, 40, NO_LIMIT] {
            let (mut raw, storage) = follower(cache, page);
            for lo in (2..=22).step_by(4) {
                raw.step(append(
                    1,
                    2,
                    (lo - 1, if lo == 2 { 1 } else { 2 }),
                    run(lo, lo + 3, 2),
                    1,
                ))
                .expect("append");
                assert!(settle(&mut raw, &storage).is_empty());
            }
            raw.step(append(1, 2, (25, 2), vec![], 25)).expect("commit");
            let (mut handed, mut batches) = (Vec::new(), Vec::new());
            for _ in 0..100 {
                if !raw.has_ready() {
                    break;
                }
                let rd = raw.ready().expect("ready");
                batches.push(rd.committed_entries().len());
                handed.extend_from_slice(rd.committed_entries());
                let light = raw.advance(rd).expect("advance");
                batches.push(light.committed_entries().len());
                handed.extend_from_slice(light.committed_entries());
                raw.advance_apply();
            }
            let what = format!("cache {cache}, page {page}");
            assert_handed_out_once_from_storage(&handed, 2, &storage, &what);
            assert_eq!(handed.len(), 24, "{what}: 2..=25");
            if page == 1 {
                assert!(
                    batches.iter().all(|&n| n <= 1),
                    "{what}: a 1-byte page hands out one entry per batch, got {batches:?}"
                );
            }
        }
    }
}

/// A restart loses the cache: entries durable and committed after the restart point come from
/// storage, each once; those applied before the restart never again.
#[test]
fn a_restart_hands_out_cached_entries_again_from_storage_once() {
    for cache in CACHES {
        let (mut raw, storage) = follower(cache, NO_LIMIT);
        raw.step(append(1, 2, (1, 1), run(2, 8, 2), 3))
            .expect("append");
        assert_eq!(ids(&settle(&mut raw, &storage)), vec![(2, 2), (3, 2)]);
        // Entries 9..=10 are handed out but never written: lost in the crash.
        raw.step(append(1, 2, (8, 2), run(9, 10, 2), 3))
            .expect("append");
        let lost = raw.ready().expect("ready");
        assert_eq!(ids(lost.entries()), vec![(9, 2), (10, 2)]);
        drop((raw, lost));

        let cfg = Config {
            applied: 3,
            ..config(2, cache, NO_LIMIT)
        };
        let mut raw = RawNode::new(&cfg, storage.clone(), &logger()).expect("restart");
        assert_eq!(
            raw.raft.raft_log.last_index(),
            8,
            "cache {cache}: 9..=10 were lost"
        );
        raw.step(append(1, 2, (8, 2), vec![], 8)).expect("commit");
        let handed = settle(&mut raw, &storage);
        assert_handed_out_once_from_storage(&handed, 4, &storage, &format!("cache {cache}"));
        assert_eq!(handed.len(), 5, "cache {cache}: 4..=8");
    }
}

// ---------------------------------------------------------------------------------------------
// Found: a late snapshot older than the one requested
// ---------------------------------------------------------------------------------------------

/// Node 2 hands out 2..=6 (term 2) in Ready 1 and writes them; Ready 1's acknowledgement of 6
/// leaves once it is reported. The node then asks for a snapshot covering 6
/// (`request_snapshot`), and a snapshot at (4, 2), sent before the request, arrives late. It must
/// not be restored: that would erase 5..=6 from storage after the node acknowledged them. (An
/// earlier version restored it; the simulator's progress check found the leader counting entries
/// the follower no longer held, and the stale report of Ready 1 could then also count the
/// re-sent 5..=6 as durable.) Nothing the node acknowledges or hands out may be missing from
/// storage afterwards.
#[test]
fn a_late_snapshot_older_than_the_one_requested_is_not_restored() {
    let (mut raw, storage) = follower(DEFAULT_APPLY_CACHE_BYTES, NO_LIMIT);
    raw.step(append(1, 2, (1, 1), run(2, 6, 2), 1))
        .expect("append");
    let mut rd1 = raw.ready().expect("ready 1");
    let n1 = rd1.number();
    let shared = rd1.take_shared_entries().expect("entries");
    write_parts(&storage, None, &shared, rd1.hard_state().copied());
    let acks = rd1.take_persisted_messages();
    raw.advance_append_async(rd1);
    drop(shared);

    raw.request_snapshot().expect("request a snapshot");
    raw.step(snapshot_msg(1, 2, 4, 2)).expect("snapshot at 4");
    assert!(
        raw.raft.raft_log.unstable_snapshot().is_none(),
        "a snapshot below the requested index was restored"
    );
    assert_eq!(raw.raft.raft_log.last_index(), 6, "5..=6 must stay");
    raw.on_persist_ready(n1);
    for m in &acks {
        if m.msg_type() == MessageType::MsgAppendResponse && !m.reject {
            assert_eq!(m.index, 6, "Ready 1 acknowledges what it wrote");
        }
    }
    for _ in 0..5 {
        if !raw.has_ready() {
            break;
        }
        let rd = raw.ready().expect("ready");
        write_ready(&storage, &rd);
        let stored_last = storage.last_index().expect("last index");
        assert!(
            stored_last >= 6,
            "storage lost the acknowledged 5..=6: it ends at {stored_last}"
        );
        for e in rd.committed_entries() {
            assert_eq!(
                storage.entries(e.index, e.index + 1, NO_LIMIT).ok(),
                Some(vec![e.clone()]),
                "node 2 hands out {:?} for applying, which storage does not hold",
                (e.index, e.term)
            );
        }
        raw.advance(rd).expect("advance");
    }
    assert!(
        raw.raft.raft_log.persisted <= storage.last_index().expect("last index"),
        "node 2 counts more as durable than storage holds"
    );
}

// ---------------------------------------------------------------------------------------------
// The randomized runs: a node driven asynchronously, with every invariant checked as it goes
// ---------------------------------------------------------------------------------------------

/// A Ready handed over and not yet reported durable.
struct Pending {
    number: u64,
    hold: Hold,
    handle: Handle,
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    persisted_messages: Vec<Message>,
}

/// A `RawNode` over `MemStorage` driven the asynchronous way: Readys are taken while earlier ones
/// wait to be written, written in order, reported later (by `on_persist_ready`, `advance_append` or
/// `advance`). It checks as it goes that committed entries come once each, in order, already in
/// storage; it releases a Ready's persisted messages only once that Ready is written.
struct Node {
    id: u64,
    raw: RawNode<MemStorage>,
    storage: MemStorage,
    cfg: Config,
    /// Readys taken and not written yet, oldest first.
    unwritten: VecDeque<Pending>,
    /// Readys written and not reported yet, oldest first.
    written: Vec<Pending>,
    last_number: u64,
    /// The last index handed out for applying (or restored from a snapshot).
    handed_out: u64,
    /// How far the state machine is (it survives a crash): applied entries and written snapshots.
    sm_applied: u64,
    /// Messages released for sending.
    outbox: Vec<Message>,
    /// Every committed entry handed out, in order (checked against the group by the caller).
    applied_log: Vec<Entry>,
    /// A short trace of the last actions (printed on failure).
    trace: VecDeque<String>,
}

impl Node {
    fn start(cfg: Config, storage: MemStorage) -> Node {
        let raw = RawNode::new(&cfg, storage.clone(), &logger())
            .unwrap_or_else(|e| panic!("node {} cannot start: {e}", cfg.id));
        let applied = raw.raft.raft_log.applied;
        Node {
            id: cfg.id,
            raw,
            storage,
            cfg,
            unwritten: VecDeque::new(),
            written: Vec::new(),
            last_number: 0,
            handed_out: applied,
            sm_applied: applied,
            outbox: Vec::new(),
            applied_log: Vec::new(),
            trace: VecDeque::new(),
        }
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(what);
    }

    fn trace(&self) -> String {
        self.trace.iter().cloned().collect::<Vec<_>>().join("\n  ")
    }

    /// Records committed entries handed out: the next index each, and already in storage.
    fn hand_out(&mut self, entries: &[Entry], origin: &str) {
        for e in entries {
            assert_eq!(
                e.index,
                self.handed_out + 1,
                "node {}: a {origin} handed out index {} but the next one due is {} (a duplicate \
                 or a gap); trace:\n  {}",
                self.id,
                e.index,
                self.handed_out + 1,
                self.trace()
            );
            let in_storage = self.storage.entries(e.index, e.index + 1, NO_LIMIT);
            assert_eq!(
                in_storage.as_deref().ok(),
                Some(std::slice::from_ref(e)),
                "node {}: a {origin} handed out {:?} for applying, which storage does not hold \
                 (it holds {:?}); trace:\n  {}",
                self.id,
                (e.index, e.term),
                in_storage.as_ref().map(|v| ids(v)),
                self.trace()
            );
            self.handed_out = e.index;
            self.sm_applied = e.index;
            self.applied_log.push(e.clone());
        }
        if !entries.is_empty() {
            let what = format!("{origin} committed {:?}", ids(entries));
            self.note(what);
        }
    }

    fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Takes a Ready and holds it as `hold` says. Returns its committed entries and snapshot
    /// (index, term), for the caller's checks against the group.
    fn take_ready(&mut self, hold: Hold) -> (Vec<Entry>, Option<(u64, u64)>) {
        let mut rd = self.raw.ready().expect("ready");
        assert_eq!(
            rd.number(),
            self.last_number + 1,
            "node {}: Ready numbers",
            self.id
        );
        self.last_number = rd.number();
        let committed = rd.committed_entries().to_vec();
        self.hand_out(&committed, "Ready");
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let snap_id = snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| (m.index, m.term));
        if let Some((index, _)) = snap_id {
            assert!(
                committed.is_empty() && index >= self.handed_out,
                "node {}: a snapshot at {index} comes after {} was handed out for applying",
                self.id,
                self.handed_out
            );
            self.handed_out = index;
        }
        let what = format!(
            "ready {} {hold:?}: entries {:?} snapshot {snap_id:?} hs {:?}",
            rd.number(),
            ids(rd.entries()),
            rd.hard_state().map(|h| (h.term, h.vote, h.commit))
        );
        self.note(what);
        self.outbox.extend(rd.take_messages());
        let number = rd.number();
        let hard_state = rd.hard_state().copied();
        let persisted_messages = rd.take_persisted_messages();
        let handle = hold_ready(&mut self.raw, rd, hold);
        self.unwritten.push_back(Pending {
            number,
            hold,
            handle,
            hard_state,
            snapshot,
            persisted_messages,
        });
        (committed, snap_id)
    }

    /// Writes the `k` oldest Readys not written yet, in order. After each, `released` sees the
    /// storage and the persisted messages that may now leave.
    fn write(&mut self, k: usize, released: &mut dyn FnMut(&MemStorage, &[Message])) {
        for _ in 0..k {
            let Some(mut p) = self.unwritten.pop_front() else {
                return;
            };
            {
                let mut s = self.storage.wl();
                if let Some(snap) = &p.snapshot {
                    s.apply_snapshot(snap.clone()).unwrap_or_else(|e| {
                        panic!(
                            "node {}: writing Ready {}'s snapshot: {e}",
                            self.id, p.number
                        )
                    });
                }
                s.append(p.handle.entries()).unwrap_or_else(|e| {
                    panic!(
                        "node {}: writing Ready {}'s entries {:?}: {e}",
                        self.id,
                        p.number,
                        ids(p.handle.entries())
                    )
                });
                if let Some(hs) = p.hard_state {
                    s.set_hardstate(hs);
                }
            }
            if let Some(meta) = p.snapshot.as_ref().and_then(|s| s.metadata.as_ref()) {
                // Restoring the state machine from the snapshot goes with writing it.
                self.sm_applied = self.sm_applied.max(meta.index);
            }
            released(&self.storage, &p.persisted_messages);
            self.outbox.append(&mut p.persisted_messages);
            if p.hold == Hold::SharedDroppedWhenWritten {
                p.handle = Handle::Shared(None);
            }
            let what = format!("wrote ready {}", p.number);
            self.note(what);
            self.written.push(p);
        }
    }

    /// Reports every written Ready durable: with `advance_append` / `advance` when the last one is
    /// kept whole and `how` says so, else with `on_persist_ready`. Handles kept past the report are
    /// dropped after it.
    fn report(&mut self, how: u32) {
        let Some(last) = self.written.pop() else {
            return;
        };
        let mut linger: Vec<Handle> = Vec::new();
        for p in self.written.drain(..) {
            if p.hold == Hold::SharedKeptPastReport || how == 3 {
                linger.push(p.handle);
            }
        }
        let number = last.number;
        let light = match last.handle {
            Handle::Whole(rd) if how == 1 => {
                Some(self.raw.advance_append(*rd).expect("advance_append"))
            }
            Handle::Whole(rd) if how == 2 => Some(self.raw.advance(*rd).expect("advance")),
            handle => {
                if last.hold == Hold::SharedKeptPastReport || how == 3 {
                    linger.push(handle);
                } else {
                    drop(handle);
                }
                self.raw.on_persist_ready(number);
                None
            }
        };
        drop(linger);
        self.note(format!("reported up to ready {number} (how {how})"));
        if let Some(mut light) = light {
            self.take_light(&mut light, "LightReady");
        }
    }

    fn take_light(&mut self, light: &mut LightReady, origin: &str) {
        let committed = light.take_committed_entries();
        self.hand_out(&committed, origin);
        if let Some(commit) = light.commit_index() {
            let mut s = self.storage.wl();
            let hs = s.mut_hard_state();
            hs.commit = hs.commit.max(commit);
        }
        self.outbox.extend(light.take_messages());
    }

    fn apply_report(&mut self) {
        self.raw.advance_apply_to(self.handed_out);
    }

    /// Crashes: every Ready not written is lost (the written ones are in storage), and a new
    /// `RawNode` starts over the storage from the state machine's applied index.
    fn restart(&mut self) {
        self.unwritten.clear();
        self.written.clear();
        let cfg = Config {
            applied: self.sm_applied,
            ..self.cfg.clone()
        };
        self.raw = RawNode::new(&cfg, self.storage.clone(), &logger()).unwrap_or_else(|e| {
            panic!(
                "node {}: restart at applied {} refused: {e} (storage last index {:?}, hard \
                 state {:?}); trace:\n  {}",
                self.id,
                self.sm_applied,
                self.storage.last_index(),
                self.storage.rl().hard_state(),
                self.trace()
            )
        });
        self.last_number = 0;
        self.handed_out = self.sm_applied;
        self.note(format!("restarted at applied {}", self.sm_applied));
    }

    /// Checks the log's own invariants and returns the log as the node reads it.
    fn check_log(&self) -> Vec<Entry> {
        let id = self.id;
        let log = &self.raw.raft.raft_log;
        let u = &log.unstable;
        let tail = u.all_entries();
        assert_eq!(tail.len(), u.len(), "node {id}: unstable length");
        for (k, e) in tail.iter().enumerate() {
            assert_eq!(e.index, u.offset + k as u64, "node {id}: unstable indexes");
            assert_eq!(
                u.maybe_term(e.index),
                Some(e.term),
                "node {id}: unstable term"
            );
        }
        let (first, last) = (log.first_index(), log.last_index());
        if let Some(e) = tail.last() {
            assert_eq!(
                last, e.index,
                "node {id}: last_index is the tail's last entry"
            );
        }
        let view = log_view(&self.raw);
        for (k, e) in view.iter().enumerate() {
            assert_eq!(e.index, first + k as u64, "node {id}: log indexes");
            assert_eq!(
                log.term(e.index).ok(),
                Some(e.term),
                "node {id}: term({}) disagrees with the entry read",
                e.index
            );
            if k > 0 {
                assert!(
                    e.term >= view[k - 1].term,
                    "node {id}: terms decrease at {}",
                    e.index
                );
            }
        }
        assert_eq!(
            view.last().map_or(first - 1, |e| e.index),
            last,
            "node {id}: last_index"
        );
        assert_eq!(log.term(last + 1).ok(), Some(0), "node {id}: past the end");
        if u.offset >= first {
            assert_eq!(
                &view[(u.offset - first) as usize..],
                tail.as_slice(),
                "node {id}: the tail as read equals the unstable entries"
            );
        }
        assert!(log.applied <= log.applying && log.applying <= log.committed);
        assert!(log.committed <= last, "node {id}: committed beyond the log");
        assert!(
            log.persisted < u.offset && log.persisted <= last,
            "node {id}: persisted {} must lie before the unstable offset {}; trace:\n  {}",
            log.persisted,
            u.offset,
            self.trace()
        );
        // Whatever the node counts as durable is in storage, as the node reads it.
        let stored_first = self.storage.first_index().expect("first index");
        let lo = first.max(stored_first);
        if lo <= log.persisted {
            let stored_part = self.storage.entries(lo, log.persisted + 1, NO_LIMIT);
            assert_eq!(
                stored_part.as_deref().ok(),
                Some(&view[(lo - first) as usize..=(log.persisted - first) as usize]),
                "node {id}: entries {lo}..={} count as durable but storage differs; trace:\n  {}",
                log.persisted,
                self.trace()
            );
        }
        if u.snapshot.is_none() {
            assert_eq!(
                log.applying, self.handed_out,
                "node {id}: applying is the last index handed out"
            );
        }
        view
    }
}

/// The leaders node 2 follows in the randomized follower run, one per term (alternately nodes 1
/// and 3). A new leader keeps the committed prefix and some of its predecessor's uncommitted
/// entries and drops the rest (§5.4.1: it holds every committed entry), so node 2 sees conflicts
/// at random places of its lent, persisted and cached entries.
struct Leaders {
    term: u64,
    leader: u64,
    /// The current leader's log: `log[i]` is the entry at index `i + 1`; `log[0]` is the bootstrap
    /// point (1, 1).
    log: Vec<Entry>,
    committed: u64,
    /// Each term's leader's log, as terms by index (`[i - 1]` is index `i`): append-only.
    term_logs: HashMap<u64, Vec<u64>>,
    /// Every entry any leader made, by (index, term).
    made: HashMap<(u64, u64), Entry>,
    made_count: u64,
}

impl Leaders {
    fn new() -> Leaders {
        let mut leaders = Leaders {
            term: 1,
            leader: 3,
            log: vec![entry(1, 1, b"")],
            committed: 1,
            term_logs: HashMap::new(),
            made: HashMap::new(),
            made_count: 0,
        };
        leaders.made.insert((1, 1), entry(1, 1, b""));
        leaders.new_term(1);
        leaders
    }

    fn last(&self) -> u64 {
        self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> u64 {
        self.log[(index - 1) as usize].term
    }

    fn push(&mut self, data: Vec<u8>) {
        let e = entry(self.last() + 1, self.term, &data);
        self.made.insert((e.index, e.term), e.clone());
        self.term_logs
            .get_mut(&self.term)
            .expect("this term's log")
            .push(e.term);
        self.log.push(e);
    }

    /// A new leader whose log is the current one up to `keep` (at least the committed prefix),
    /// starting its term with an empty entry.
    fn new_term(&mut self, keep: u64) {
        assert!(keep >= self.committed && keep <= self.last());
        self.log.truncate(keep as usize);
        self.term += 1;
        self.leader = if self.leader == 1 { 3 } else { 1 };
        self.term_logs
            .insert(self.term, self.log.iter().map(|e| e.term).collect());
        self.push(Vec::new());
    }

    fn propose(&mut self, rng: &mut Xoshiro256PlusPlus) {
        for _ in 0..rng.random_range(1..=4) {
            self.made_count += 1;
            let mut data = format!("e{}", self.made_count).into_bytes();
            data.resize(data.len() + rng.random_range(0..8usize), b'.');
            self.push(data);
        }
    }

    /// The highest index at which `node`'s log agrees with the current leader's (its commit index
    /// at least).
    fn match_point(&self, node: &Node) -> u64 {
        let log = &node.raw.raft.raft_log;
        let hi = log.last_index().min(self.last());
        for i in (log.committed..=hi).rev() {
            if log.term(i).ok() == Some(self.term_at(i)) {
                return i;
            }
        }
        panic!(
            "node {}'s committed entry {} is not the leaders' ({:?} vs {})",
            node.id,
            log.committed,
            log.term(log.committed),
            self.term_at(log.committed)
        );
    }

    /// A MsgAppend to node 2 from a point its log matches (or just past it, which is refused),
    /// carrying up to `max` entries and the leader's commit index.
    fn append_to(&self, node: &Node, max: u64, rng: &mut Xoshiro256PlusPlus) -> Message {
        let m = self.match_point(node);
        let committed = node.raw.raft.raft_log.committed;
        let mut prev = rng.random_range(m.saturating_sub(3).max(committed)..=m);
        if m < self.last() && rng.random_bool(0.05) {
            prev = m + 1;
        }
        let hi = prev.saturating_add(max).min(self.last());
        let entries = self.log[prev as usize..hi as usize].to_vec();
        append(
            self.leader,
            self.term,
            (prev, self.term_at(prev)),
            entries,
            self.committed,
        )
    }

    /// Checks a committed entry node 2 handed out: committed by the leaders, and theirs.
    fn check_committed(&self, e: &Entry, node: &Node) {
        assert!(
            e.index <= self.committed && self.log[(e.index - 1) as usize] == *e,
            "node 2 handed out {:?} for applying, but the leaders committed up to {} with {:?} \
             there; trace:\n  {}",
            (e.index, e.term),
            self.committed,
            self.log
                .get((e.index - 1) as usize)
                .map(|l| (l.index, l.term)),
            node.trace()
        );
    }

    /// Checks node 2's acknowledgements as they are released: the entries up to the acknowledged
    /// index are in storage, with the terms of the log of the leader acknowledged. Returns what
    /// is wrong.
    fn check_acks(&self, storage: &MemStorage, msgs: &[Message]) -> Vec<String> {
        let mut wrong = Vec::new();
        for m in msgs {
            if m.msg_type() != MessageType::MsgAppendResponse || m.reject {
                continue;
            }
            let Some(tl) = self.term_logs.get(&m.term) else {
                continue;
            };
            let idx = (m.index - 1) as usize;
            if self.log.get(idx).map(|e| e.term) != tl.get(idx).copied() {
                // A later leader replaced what this acknowledges: its election excluded every
                // node that held those entries (§5.4.1), so term `m.term` can no longer commit
                // them and a stale acknowledgement is harmless (etcd and raft-rs send such
                // acknowledgements too, after the next write).
                continue;
            }
            let last = storage.last_index().expect("last index");
            if last < m.index {
                wrong.push(format!(
                    "node 2 releases an acknowledgement of {} (term {}) while storage holds only \
                     up to {last}",
                    m.index, m.term
                ));
                continue;
            }
            let first = storage.first_index().expect("first index");
            for i in m.index.saturating_sub(6).max(first - 1).max(1)..=m.index {
                if storage.term(i).ok() != tl.get((i - 1) as usize).copied() {
                    wrong.push(format!(
                        "node 2 acknowledges {} to the leader of term {} but stores term {:?} at \
                         {i}, where that leader has {:?}",
                        m.index,
                        m.term,
                        storage.term(i).ok(),
                        tl.get((i - 1) as usize)
                    ));
                }
            }
        }
        wrong
    }

    /// Writes `k` of node 2's Readys, checking the acknowledgements each releases.
    fn write(&self, node: &mut Node, k: usize, seed: u64) {
        let mut wrong = Vec::new();
        node.write(k, &mut |s, msgs| wrong.extend(self.check_acks(s, msgs)));
        assert!(
            wrong.is_empty(),
            "seed {seed}: {}; trace:\n  {}",
            wrong.join("; "),
            node.trace()
        );
    }
}

/// Picks one of the config values the randomized runs use: the apply cache off, tiny (it fills
/// mid-batch) or the default, and pages of committed entries unlimited or small.
fn random_limits(rng: &mut Xoshiro256PlusPlus) -> (u64, u64) {
    let cache = match rng.random_range(0..3) {
        0 => 0,
        1 => rng.random_range(1..=24),
        _ => DEFAULT_APPLY_CACHE_BYTES,
    };
    let page = if rng.random_bool(0.5) {
        NO_LIMIT
    } else {
        rng.random_range(1..=80)
    };
    (cache, page)
}

/// Runs one seed of the randomized follower: node 2 under a sequence of leaders of rising terms
/// that propose, commit, replace each other's uncommitted entries, and send snapshots; node 2
/// pipelines Readys (any depth), holds their entries every way, writes and reports them late,
/// and crashes now and then. Checked after every step: each index is handed out at most once, in
/// order, equal to storage's and to the leaders' committed entry; the log as read agrees with
/// `last_index`/`term`, holds only entries some leader made, and what it counts durable is in
/// storage; acknowledgements leave only for entries stored. At the end everything committed is
/// handed out.
fn follower_run(seed: u64, steps: usize) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (cache, page) = random_limits(&mut rng);
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut node = Node::start(config(2, cache, page), storage);
    let mut leaders = Leaders::new();
    let mut checked = 0;
    for step in 0..steps {
        let r = rng.random_range(0..100);
        match r {
            0..=19 => leaders.propose(&mut rng),
            20..=27 => leaders.committed = rng.random_range(leaders.committed..=leaders.last()),
            28..=51 => {
                let m = leaders.append_to(&node, rng.random_range(0..=6), &mut rng);
                node.note(format!(
                    "step MsgAppend t{} prev ({}, {}) {:?} commit {}",
                    m.term,
                    m.index,
                    m.log_term,
                    ids(&m.entries),
                    m.commit
                ));
                if let Err(e) = node.raw.step(m) {
                    panic!("seed {seed} step {step}: a valid append was refused: {e}");
                }
            }
            52..=55 => {
                let keep = rng.random_range(leaders.committed..=leaders.last());
                leaders.new_term(keep);
            }
            56..=57 if leaders.committed >= 2 => {
                let index = rng.random_range(2..=leaders.committed);
                let m = snapshot_msg(leaders.leader, leaders.term, index, leaders.term_at(index));
                node.note(format!("step MsgSnapshot t{} at {index}", leaders.term));
                node.raw.step(m).expect("snapshot");
            }
            58..=79 => {
                if node.has_ready() {
                    let hold = HOLDS[rng.random_range(0..HOLDS.len())];
                    let (_, snap) = node.take_ready(hold);
                    if let Some((index, term)) = snap {
                        assert!(
                            index <= leaders.committed && leaders.term_at(index) == term,
                            "seed {seed}: node 2 restored a snapshot the leaders did not commit"
                        );
                    }
                }
            }
            80..=93 => {
                if !node.unwritten.is_empty() {
                    let k = rng.random_range(1..=node.unwritten.len());
                    leaders.write(&mut node, k, seed);
                }
                if rng.random_bool(0.7) {
                    node.report(rng.random_range(0..4));
                }
            }
            94..=96 => node.apply_report(),
            97 => node.restart(),
            _ => node.report(rng.random_range(0..4)),
        }
        node.outbox.clear();
        follower_checks(&node, &leaders, &mut checked);
    }

    // Drain: the leader commits everything and replicates it; node 2 must hand it all out.
    leaders.committed = leaders.last();
    for _ in 0..100 {
        if node.handed_out >= leaders.committed {
            break;
        }
        let m = leaders.append_to(&node, NO_LIMIT, &mut rng);
        node.raw.step(m).expect("append");
        while node.has_ready() {
            let hold = HOLDS[rng.random_range(0..HOLDS.len())];
            node.take_ready(hold);
        }
        leaders.write(&mut node, usize::MAX, seed);
        node.report(rng.random_range(0..4));
        node.apply_report();
        node.outbox.clear();
        follower_checks(&node, &leaders, &mut checked);
    }
    assert_eq!(
        node.handed_out,
        leaders.committed,
        "seed {seed}: node 2 never handed out everything committed; trace:\n  {}",
        node.trace()
    );
}

fn follower_checks(node: &Node, leaders: &Leaders, checked: &mut usize) {
    for e in &node.applied_log[*checked..] {
        leaders.check_committed(e, node);
    }
    *checked = node.applied_log.len();
    let view = node.check_log();
    let log = &node.raw.raft.raft_log;
    for e in &view {
        assert_eq!(
            leaders.made.get(&(e.index, e.term)),
            Some(e),
            "node 2's log holds {:?}, which no leader made (Log Matching); trace:\n  {}",
            (e.index, e.term),
            node.trace()
        );
        if e.index <= log.committed {
            leaders.check_committed(e, node);
        }
    }
}

/// The randomized follower run over 60 seeds (see `follower_run`).
#[test]
fn random_follower_under_conflicting_leaders_hands_out_each_committed_entry_once() {
    for seed in 0..60 {
        follower_run(seed, 400);
    }
}

/// A group of three real nodes, each persisting asynchronously (see [`Node`]), over a network that
/// delays, reorders, duplicates and drops messages.
struct Group {
    nodes: Vec<Node>,
    /// Messages in flight.
    net: Vec<Message>,
    /// The first entry handed out for applying at each index, by any node.
    applied: HashMap<u64, Entry>,
    /// Every entry seen in any node's log, by (index, term).
    seen: HashMap<(u64, u64), Entry>,
    /// How many of each node's handed-out entries were checked.
    checked: Vec<usize>,
    /// The (term, commit index) each node last had while leading.
    led: Vec<(u64, u64)>,
    proposals: u64,
}

impl Group {
    fn new(cache: u64, page: u64) -> Group {
        let nodes = (1..=3)
            .map(|id| {
                let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
                Node::start(config(id, cache, page), storage)
            })
            .collect();
        Group {
            nodes,
            net: Vec::new(),
            applied: HashMap::new(),
            seen: HashMap::new(),
            checked: vec![0; 3],
            led: vec![(0, 0); 3],
            proposals: 0,
        }
    }

    fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn collect(&mut self) {
        for n in &mut self.nodes {
            self.net.append(&mut n.outbox);
        }
    }

    fn deliver(&mut self, m: Message) {
        let (from, to, is_snapshot) = (m.from, m.to, m.msg_type() == MessageType::MsgSnapshot);
        let what = format!(
            "recv {:?} from {from} t{} idx {} {:?} commit {}",
            m.msg_type(),
            m.term,
            m.index,
            ids(&m.entries),
            m.commit
        );
        let node = self.node(to);
        node.note(what);
        // Refusals of impossible input are allowed; the checks below catch any damage.
        let _ = node.raw.step(m);
        if is_snapshot {
            self.node(from)
                .raw
                .report_snapshot(to, raft_core::SnapshotStatus::Finish);
        }
    }

    fn step(&mut self, rng: &mut Xoshiro256PlusPlus) {
        let id = rng.random_range(1..=3u64);
        match rng.random_range(0..100) {
            0..=7 => {
                // Mostly to the leader (a follower forwards, and forwarded proposals get lost).
                let leader = self
                    .nodes
                    .iter()
                    .find(|n| n.raw.raft.state == StateRole::Leader)
                    .map(|n| n.id);
                let id = match leader {
                    Some(l) if rng.random_bool(0.8) => l,
                    _ => id,
                };
                for _ in 0..rng.random_range(1..=3) {
                    self.proposals += 1;
                    let mut data = format!("p{}", self.proposals).into_bytes();
                    data.resize(data.len() + rng.random_range(0..6usize), b'.');
                    let _ = self.node(id).raw.propose(vec![], data);
                }
            }
            8..=42 => {
                for _ in 0..rng.random_range(1..=6) {
                    if self.net.is_empty() {
                        break;
                    }
                    let k = rng.random_range(0..self.net.len());
                    let m = if rng.random_bool(0.05) {
                        self.net[k].clone()
                    } else {
                        self.net.swap_remove(k)
                    };
                    if rng.random_bool(0.04) {
                        if m.msg_type() == MessageType::MsgSnapshot {
                            self.node(m.from)
                                .raw
                                .report_snapshot(m.to, raft_core::SnapshotStatus::Failure);
                        }
                        continue;
                    }
                    self.deliver(m);
                }
            }
            43..=45 => {
                self.node(id).raw.tick();
            }
            46..=51 => {
                // Heartbeats: a leader's tick.
                if let Some(n) = self
                    .nodes
                    .iter_mut()
                    .find(|n| n.raw.raft.state == StateRole::Leader)
                {
                    n.raw.tick();
                }
            }
            52 => {
                if rng.random_bool(0.5) {
                    let _ = self.node(id).raw.campaign();
                }
            }
            53..=72 => {
                let node = self.node(id);
                if node.has_ready() {
                    node.take_ready(HOLDS[rng.random_range(0..HOLDS.len())]);
                }
            }
            73..=90 => {
                let node = self.node(id);
                if !node.unwritten.is_empty() {
                    let k = rng.random_range(1..=node.unwritten.len());
                    node.write(k, &mut |_, _| {});
                }
                if rng.random_bool(0.7) {
                    node.report(rng.random_range(0..4));
                }
            }
            91..=94 => self.node(id).apply_report(),
            95..=96 => {
                // Compaction: snapshot the state machine and drop the log it covers.
                let node = self.node(id);
                let last = node.storage.last_index().expect("last index");
                let mut s = node.storage.wl();
                let index = node.sm_applied.min(s.hard_state().commit).min(last);
                if index > s.snapshot_metadata().index + 2 {
                    s.create_snapshot(index, None, Bytes::new())
                        .expect("create snapshot");
                    s.compact(index).expect("compact");
                }
            }
            97 => self.node(id).restart(),
            _ => self.node(id).report(rng.random_range(0..4)),
        }
        self.collect();
    }

    fn check(&mut self, seed: u64) {
        for k in 0..3 {
            let node = &self.nodes[k];
            for e in &node.applied_log[self.checked[k]..] {
                let first = self.applied.entry(e.index).or_insert_with(|| e.clone());
                assert_eq!(
                    first,
                    e,
                    "seed {seed}: node {} applied {:?} at {}, another node applied {:?} (State \
                     Machine Safety); trace:\n  {}",
                    node.id,
                    (e.index, e.term),
                    e.index,
                    (first.index, first.term),
                    node.trace()
                );
            }
            self.checked[k] = node.applied_log.len();
            for e in node.check_log() {
                let seen = self
                    .seen
                    .entry((e.index, e.term))
                    .or_insert_with(|| e.clone());
                assert_eq!(
                    *seen,
                    e,
                    "seed {seed}: two different entries at {:?} (Log Matching)",
                    (e.index, e.term)
                );
            }
            let raft = &node.raw.raft;
            if raft.state == StateRole::Leader {
                let c = raft.raft_log.committed;
                if (raft.term, c) > self.led[k] && c > self.led[k].1.max(1) {
                    let term_c = raft.raft_log.term(c).expect("term of the commit index");
                    let holders = self
                        .nodes
                        .iter()
                        .filter(|n| {
                            let first = n.storage.first_index().expect("first");
                            c + 1 < first || n.storage.term(c).ok() == Some(term_c)
                        })
                        .count();
                    assert!(
                        holders >= 2,
                        "seed {seed}: leader {} committed {c} (term {term_c}) but only {holders} \
                         node(s) store it; trace:\n  {}",
                        node.id,
                        node.trace()
                    );
                }
                self.led[k] = (raft.term, c);
            }
        }
    }
}

/// Runs one seed of the randomized group (see the test below).
fn group_run(seed: u64, steps: usize) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (cache, page) = random_limits(&mut rng);
    let mut g = Group::new(cache, page);
    let _ = g.node(1).raw.campaign();
    g.collect();
    for _ in 0..steps {
        g.step(&mut rng);
        g.check(seed);
    }
    // Heal: deliver everything, persist everything, tick until every node applied the same.
    for round in 0..400 {
        while !g.net.is_empty() {
            let m = g.net.remove(0);
            g.deliver(m);
        }
        for k in 0..3 {
            let node = &mut g.nodes[k];
            while node.has_ready() {
                node.take_ready(HOLDS[rng.random_range(0..HOLDS.len())]);
            }
            node.write(usize::MAX, &mut |_, _| {});
            node.report(rng.random_range(0..4));
            node.apply_report();
            if round % 3 == 0 {
                node.raw.tick();
            }
        }
        g.collect();
        g.check(seed);
        let done = g
            .nodes
            .iter()
            .any(|n| n.raw.raft.state == StateRole::Leader)
            && g.nodes
                .iter()
                .all(|n| n.handed_out == g.nodes[0].handed_out)
            && g.nodes
                .iter()
                .all(|n| n.raw.raft.raft_log.committed == n.raw.raft.raft_log.last_index());
        if done {
            return;
        }
    }
    panic!(
        "seed {seed}: the healed group never converged: handed out {:?}, committed {:?}",
        g.nodes.iter().map(|n| n.handed_out).collect::<Vec<_>>(),
        g.nodes
            .iter()
            .map(|n| n.raw.raft.raft_log.committed)
            .collect::<Vec<_>>()
    );
}

/// Three real nodes persisting asynchronously (random pipelining depth and handle modes, late
/// reports, crashes that lose unwritten Readys, compaction and snapshots) over a lossy,
/// reordering, duplicating network, with elections on timeouts. After every step: no two nodes
/// apply different entries at an index and none applies an index twice or skips one, the logs
/// agree on every (index, term), each node's log reads consistently and what it counts durable is
/// in its storage, and every index a leader commits is stored by a quorum (§5.4, commit
/// durability with async writes). At the end the healed group converges.
#[test]
fn random_async_group_applies_each_entry_once_and_commits_only_stored_entries() {
    for seed in 0..24 {
        group_run(seed, 1000);
    }
}
