//! The fixtures of these tests: node 2 of the group {1, 2, 3} as a follower, hand-made appends
//! and snapshots addressed to it, writing and reporting Readys synchronously, and the ways an
//! application may hold a Ready's entries while it writes them.

use std::sync::Arc;

use bytes::Bytes;
use raft_core::eraftpb::{Entry, HardState, Message, MessageType, Snapshot, SnapshotMetadata};
use raft_core::{Config, RawNode, Ready, Storage, NO_LIMIT};
use storage_mem::{conf_state, MemStorage};

use crate::common::{self, append_msg, ent_data, entry_ids, logger};

/// The shared test config (election timeout 10 ticks, heartbeat 1, no message size limit) with
/// the apply cache and the committed page size as given.
pub(crate) fn config(id: u64, cache_bytes: u64, page: u64) -> Config {
    Config {
        max_apply_cache_bytes: cache_bytes,
        max_committed_size_per_ready: page,
        ..common::config(id)
    }
}

/// Entries `lo..=hi` of `term`, each with a 4-byte payload naming it.
pub(crate) fn run(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|i| ent_data(i, term, format!("{i:02}t{term}").as_bytes()))
        .collect()
}

/// A MsgAppend from `from` (leading `term`) to node 2.
pub(crate) fn append(
    from: u64,
    term: u64,
    prev: (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    append_msg(from, 2, term, prev, entries, commit)
}

/// A MsgSnapshot from `from` (leading `term`) to node 2, of the group {1, 2, 3} at
/// (`index`, `snap_term`).
pub(crate) fn snapshot_msg(from: u64, term: u64, index: u64, snap_term: u64) -> Message {
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

/// Storage's entries `[lo, hi)`, or a panic naming the range.
pub(crate) fn stored(storage: &MemStorage, lo: u64, hi: u64) -> Vec<Entry> {
    storage
        .entries(lo, hi, NO_LIMIT)
        .unwrap_or_else(|e| panic!("storage cannot read [{lo}, {hi}): {e}"))
}

/// Writes what a Ready asks to persist: snapshot, entries, hard state (in that order).
pub(crate) fn write_parts(
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

/// Writes everything `rd` asks to persist.
pub(crate) fn write_ready(storage: &MemStorage, rd: &Ready) {
    let snap = (!rd.snapshot().is_empty()).then(|| rd.snapshot());
    write_parts(storage, snap, rd.entries(), rd.hard_state().copied());
}

/// Node 2 of the group {1, 2, 3}, bootstrapped (the log proper starts at index 2).
pub(crate) fn follower(cache_bytes: u64, page: u64) -> (RawNode<MemStorage>, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let raw = RawNode::new(&config(2, cache_bytes, page), storage.clone(), &logger())
        .expect("start node 2");
    (raw, storage)
}

/// The log as the node sees it, first index to last.
pub(crate) fn log_view<S: Storage>(raw: &RawNode<S>) -> Vec<Entry> {
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
pub(crate) fn sync_round(raw: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Entry> {
    let rd = raw.ready().expect("ready");
    write_ready(storage, &rd);
    let mut out = rd.committed_entries().to_vec();
    let light = raw.advance(rd).expect("advance");
    out.extend_from_slice(light.committed_entries());
    raw.advance_apply();
    out
}

/// Runs sync rounds until nothing is ready; returns every committed entry handed out.
pub(crate) fn settle(raw: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Entry> {
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
pub(crate) fn assert_handed_out_once_from_storage(
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
            entry_ids(handed)
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

/// How the application holds a Ready's entries while it writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// `take_shared_entries`, the handle dropped as soon as the entries are written.
    SharedDroppedWhenWritten,
    /// `take_shared_entries`, the handle kept until after the report (the log must copy).
    SharedKeptPastReport,
    /// `take_entries` (a copy).
    Copied,
    /// The whole `Ready` kept until written and reported (with `advance_append` or `advance`).
    WholeReady,
}

/// Every way of holding a Ready's entries, for the tests that try each.
pub(crate) const HOLDS: [Hold; 4] = [
    Hold::SharedDroppedWhenWritten,
    Hold::SharedKeptPastReport,
    Hold::Copied,
    Hold::WholeReady,
];

/// What the application keeps of a Ready while writing it.
pub(crate) enum Handle {
    /// The shared entries (`None` once dropped, or if the Ready had none).
    Shared(Option<Arc<Vec<Entry>>>),
    /// A copy of the entries.
    Copied(Vec<Entry>),
    /// The whole Ready, not yet handed back to the node.
    Whole(Box<Ready>),
}

impl Handle {
    /// The entries the application holds (none once a shared handle is dropped).
    pub(crate) fn entries(&self) -> &[Entry] {
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
pub(crate) fn hold_ready<S: Storage>(raw: &mut RawNode<S>, mut rd: Ready, hold: Hold) -> Handle {
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
