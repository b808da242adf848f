//! The faulty storage: a `MemStorage` whose chosen method fails with a chosen `StorageError`
//! until switched off.

use raft_core::eraftpb::{Entry, Snapshot};
use raft_core::{Error, RaftState, Storage, StorageError};
use std::cell::Cell;
use std::rc::Rc;
use storage_mem::MemStorage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    InitialState,
    Entries,
    Term,
    FirstIndex,
    LastIndex,
    Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Compacted,
    Unavailable,
    LogTemporarilyUnavailable,
    SnapshotOutOfDate,
    SnapshotTemporarilyUnavailable,
    Other,
}

pub const KINDS: [Kind; 6] = [
    Kind::Compacted,
    Kind::Unavailable,
    Kind::LogTemporarilyUnavailable,
    Kind::SnapshotOutOfDate,
    Kind::SnapshotTemporarilyUnavailable,
    Kind::Other,
];

/// The kinds for the term() tests: `Unavailable` from term() inside the log, which the core once
/// mistook for "term 0", has a test of its own in `term.rs`.
pub const KINDS_BUT_UNAVAILABLE: [Kind; 5] = [
    Kind::Compacted,
    Kind::LogTemporarilyUnavailable,
    Kind::SnapshotOutOfDate,
    Kind::SnapshotTemporarilyUnavailable,
    Kind::Other,
];

impl Kind {
    pub fn error(self) -> StorageError {
        match self {
            Kind::Compacted => StorageError::Compacted,
            Kind::Unavailable => StorageError::Unavailable,
            Kind::LogTemporarilyUnavailable => StorageError::LogTemporarilyUnavailable,
            Kind::SnapshotOutOfDate => StorageError::SnapshotOutOfDate,
            Kind::SnapshotTemporarilyUnavailable => StorageError::SnapshotTemporarilyUnavailable,
            Kind::Other => StorageError::Other("injected I/O failure".into()),
        }
    }
}

/// A `MemStorage` whose `method` fails with `kind` while a fault is set; `hits` counts the calls
/// that failed, so a test knows the failing method was really consulted.
#[derive(Clone)]
pub struct Faulty {
    pub inner: MemStorage,
    pub fault: Rc<Cell<Option<(Method, Kind)>>>,
    pub hits: Rc<Cell<u32>>,
}

impl Faulty {
    pub fn new(inner: MemStorage) -> Faulty {
        Faulty {
            inner,
            fault: Rc::new(Cell::new(None)),
            hits: Rc::new(Cell::new(0)),
        }
    }

    pub fn fail(&self, method: Method, kind: Kind) {
        self.hits.set(0);
        self.fault.set(Some((method, kind)));
    }

    pub fn heal(&self) {
        self.fault.set(None);
    }

    fn check(&self, method: Method) -> raft_core::Result<()> {
        match self.fault.get() {
            Some((m, kind)) if m == method => {
                self.hits.set(self.hits.get() + 1);
                Err(Error::Store(kind.error()))
            }
            _ => Ok(()),
        }
    }
}

impl Storage for Faulty {
    fn initial_state(&self) -> raft_core::Result<RaftState> {
        self.check(Method::InitialState)?;
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max_size: u64) -> raft_core::Result<Vec<Entry>> {
        self.check(Method::Entries)?;
        self.inner.entries(low, high, max_size)
    }
    fn term(&self, index: u64) -> raft_core::Result<u64> {
        self.check(Method::Term)?;
        self.inner.term(index)
    }
    fn first_index(&self) -> raft_core::Result<u64> {
        self.check(Method::FirstIndex)?;
        self.inner.first_index()
    }
    fn last_index(&self) -> raft_core::Result<u64> {
        self.check(Method::LastIndex)?;
        self.inner.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft_core::Result<Snapshot> {
        self.check(Method::Snapshot)?;
        self.inner.snapshot(request_index, to)
    }
}
