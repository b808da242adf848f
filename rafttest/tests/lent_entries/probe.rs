//! A storage wrapper for the apply-cache tests: it records every `entries` range read (to show
//! which entries came from the cache) and can make those reads fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use raft_core::eraftpb::{Entry, Snapshot};
use raft_core::{Error, RaftState, RawNode, Storage, StorageError};
use storage_mem::MemStorage;

use crate::common::logger;
use crate::fixtures::{append, config, run, write_ready};

/// `MemStorage` behind a switch that makes `entries` fail, recording every `entries` range read.
#[derive(Clone)]
pub(crate) struct Probe {
    inner: MemStorage,
    reads: Arc<Mutex<Vec<(u64, u64)>>>,
    /// While set, every `entries` read fails with `StorageError::Unavailable`.
    pub(crate) fail_entries: Arc<AtomicBool>,
}

impl Probe {
    fn new(inner: MemStorage) -> Probe {
        Probe {
            inner,
            reads: Arc::default(),
            fail_entries: Arc::default(),
        }
    }

    /// The `entries` ranges read since the last call, `[low, high)` each.
    pub(crate) fn take_reads(&self) -> Vec<(u64, u64)> {
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

/// Appends one batch (`run(lo, hi, 2)`, commit `commit`) to a follower over a `Probe` storage and
/// writes and reports it synchronously; returns the committed entries handed out.
pub(crate) fn probe_batch(
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

/// Node 2 (as `fixtures::follower` makes it) over a `Probe` of a bootstrapped `MemStorage`; returns the node,
/// the probe and the storage behind it.
pub(crate) fn probe_follower(cache: u64, page: u64) -> (RawNode<Probe>, Probe, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let probe = Probe::new(storage.clone());
    let raw = RawNode::new(&config(2, cache, page), probe.clone(), &logger()).expect("start");
    (raw, probe, storage)
}
