//! The storage a simulated node's core reads ([`SimStore`]): its `MemStorage`, or, on a node whose
//! durable state lives on `storage-disk`, the [`DiskStorage`] itself, so that what the disk does
//! to a read (an I/O error, a checksum that fails, data that comes back wrong) reaches the core
//! as it would in a real process.
//!
//! On such a node every answer of the disk is compared with the `MemStorage` the node wrote the
//! same things to (see `sim::disk`): an answer that differs is corrupt data served, a violation
//! the simulator reports ("a node never serves corrupt data"), whether or not anything the core
//! then sends or applies shows it. Errors are sorted as a real node sorts them:
//!
//! - an I/O error on a read ([`DiskError::Io`]) is transient: the core gives up on that read
//!   (a leader skips the append and retries at the next heartbeat answer, `ready` fails and
//!   hands out the same work next time), and the node keeps running;
//! - anything else the disk reports ([`DiskError::Corrupt`]: a checksum that fails, a record
//!   that is not the entry the index says) means the disk no longer holds what was written: the
//!   node must stop serving, and the simulator takes it down for good (see `sim::damage`).
//!
//! Each is counted in a [`ReadWatch`] the node's driver consults after every call into the core,
//! since the core returns some errors and only logs others (a leader that cannot read a
//! follower's next entries sends it nothing).
//!
//! The simulator's own checks read a node's log through its core too; while they do
//! ([`Observer`]), the reads go to what was written instead, so that checking neither meets the
//! disk's faults nor counts as the node's reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use raft_core::eraftpb::{Entry, Snapshot};
use raft_core::{RaftState, Result, Storage};
use storage_disk::{DiskError, DiskStorage};
use storage_mem::MemStorage;

/// What the core reads.
#[derive(Clone)]
pub enum SimStore {
    /// A node whose durable state is this `MemStorage`.
    Mem(MemStorage),
    /// A node on `storage-disk`: the core reads the disk.
    Disk(DiskReads),
}

/// The disk storage of a node, as its core reads it, checked against what was written.
#[derive(Clone)]
pub struct DiskReads {
    disk: DiskStorage,
    /// What the node wrote, held by `MemStorage`: every answer of `disk` must be this one's.
    written: MemStorage,
    watch: Arc<Mutex<ReadWatch>>,
    /// Set while the simulator's checks read (see [`Observer`]).
    observing: Observer,
    /// The planted bug `ReadErrorAsEmptyPayload`.
    empty_on_error: bool,
}

/// Whether the simulator's checks are reading a node's log: its storage then answers from what
/// was written, without faults and without counting.
#[derive(Clone, Default)]
pub struct Observer(Arc<AtomicBool>);

impl Observer {
    /// Runs `f` (a check reading the node's log) with reads going to what was written.
    pub fn observe<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.store(true, Ordering::Relaxed);
        let result = f();
        self.0.store(false, Ordering::Relaxed);
        result
    }

    fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The read faults a node's storage reported to its core, and any answer that was wrong.
#[derive(Debug, Default)]
pub struct ReadWatch {
    /// Transient read errors returned to the core.
    pub read_errors: u64,
    /// The first corruption the storage reported (the node must stop).
    pub corruption: Option<String>,
    /// The first answer that differed from what was written: corrupt data served (a violation).
    pub served_wrong: Option<String>,
}

/// How a node treats an error its disk storage returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFault {
    /// An I/O error on a read: retried later.
    Transient(String),
    /// The disk does not hold what was written: the node must stop.
    Corrupt(String),
}

/// The fault a storage error stands for, if it is one of the disk's (not an answer such as
/// `Compacted` or `Unavailable` that every storage gives).
pub fn classify(error: &raft_core::Error) -> Option<ReadFault> {
    let disk = DiskError::from_raft(error)?;
    Some(match disk {
        DiskError::Io { source, .. } if source.kind() == std::io::ErrorKind::Other => {
            ReadFault::Transient(disk.to_string())
        }
        _ => ReadFault::Corrupt(disk.to_string()),
    })
}

impl DiskReads {
    /// Reads of `disk`, checked against `written`, reported to `watch`.
    pub fn new(
        disk: DiskStorage,
        written: MemStorage,
        watch: Arc<Mutex<ReadWatch>>,
        observing: Observer,
        empty_on_error: bool,
    ) -> DiskReads {
        DiskReads {
            disk,
            written,
            watch,
            observing,
            empty_on_error,
        }
    }

    fn watch(&self) -> MutexGuard<'_, ReadWatch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the disk's `answer` to `call` against `expected`, what `written` answers, and
    /// records what it was: returns whether it was a transient read error.
    fn judge<T: PartialEq + std::fmt::Debug>(
        &self,
        call: impl FnOnce() -> String,
        answer: &Result<T>,
        expected: &Result<T>,
        show: impl Fn(&T) -> String,
    ) -> bool {
        let fault = answer.as_ref().err().and_then(classify);
        let mut watch = self.watch();
        match fault {
            Some(ReadFault::Transient(_)) => {
                watch.read_errors += 1;
                return true;
            }
            Some(ReadFault::Corrupt(why)) => {
                watch.corruption.get_or_insert(why);
                return false;
            }
            None => {}
        }
        let same = match (answer, expected) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        if !same && watch.served_wrong.is_none() {
            watch.served_wrong = Some(format!(
                "{} answered {} where what was written gives {}",
                call(),
                brief(answer, &show),
                brief(expected, &show)
            ));
        }
        false
    }
}

/// A short form of an answer for a report.
fn brief<T>(answer: &Result<T>, show: &impl Fn(&T) -> String) -> String {
    match answer {
        Ok(value) => show(value),
        Err(e) => format!("error \"{e}\""),
    }
}

/// Entries as index/term and payload, for a report.
fn show_entries(entries: &[Entry]) -> String {
    let shown: Vec<String> = entries
        .iter()
        .take(8)
        .map(|e| format!("{}/{} {:02x?}", e.index, e.term, &e.data[..]))
        .collect();
    let more = entries.len().saturating_sub(8);
    if more > 0 {
        format!("[{} and {more} more]", shown.join(", "))
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// A snapshot as its index, term and data, for a report.
fn show_snapshot(snapshot: &Snapshot) -> String {
    let meta = snapshot.metadata.clone().unwrap_or_default();
    format!(
        "snapshot {}/{} data {:02x?}",
        meta.index,
        meta.term,
        &snapshot.data[..snapshot.data.len().min(64)]
    )
}

/// Any other answer, for a report.
fn show_debug<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

impl Storage for SimStore {
    fn initial_state(&self) -> Result<RaftState> {
        match self {
            SimStore::Mem(mem) => mem.initial_state(),
            SimStore::Disk(d) if d.observing.on() => d.written.initial_state(),
            SimStore::Disk(d) => {
                let answer = d.disk.initial_state();
                d.judge(
                    || "initial_state()".to_string(),
                    &answer,
                    &d.written.initial_state(),
                    show_debug,
                );
                answer
            }
        }
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        match self {
            SimStore::Mem(mem) => mem.entries(low, high, max_size),
            SimStore::Disk(d) if d.observing.on() => d.written.entries(low, high, max_size),
            SimStore::Disk(d) => {
                let answer = d.disk.entries(low, high, max_size);
                let call = || format!("entries({low}, {high}, {max_size})");
                let expected = d.written.entries(low, high, max_size);
                let transient = d.judge(call, &answer, &expected, |e: &Vec<Entry>| show_entries(e));
                if transient && d.empty_on_error {
                    // The planted bug: what could not be read is filled in from what the index
                    // knows, the payload left empty.
                    let last = d.disk.last_index()?.min(high.saturating_sub(1));
                    return (low..=last)
                        .map(|index| {
                            Ok(Entry {
                                index,
                                term: d.disk.term(index)?,
                                ..Default::default()
                            })
                        })
                        .collect();
                }
                answer
            }
        }
    }

    fn term(&self, index: u64) -> Result<u64> {
        match self {
            SimStore::Mem(mem) => mem.term(index),
            SimStore::Disk(d) if d.observing.on() => d.written.term(index),
            SimStore::Disk(d) => {
                let answer = d.disk.term(index);
                d.judge(
                    || format!("term({index})"),
                    &answer,
                    &d.written.term(index),
                    show_debug,
                );
                answer
            }
        }
    }

    fn first_index(&self) -> Result<u64> {
        match self {
            SimStore::Mem(mem) => mem.first_index(),
            SimStore::Disk(d) if d.observing.on() => d.written.first_index(),
            SimStore::Disk(d) => {
                let answer = d.disk.first_index();
                d.judge(
                    || "first_index()".to_string(),
                    &answer,
                    &d.written.first_index(),
                    show_debug,
                );
                answer
            }
        }
    }

    fn last_index(&self) -> Result<u64> {
        match self {
            SimStore::Mem(mem) => mem.last_index(),
            SimStore::Disk(d) if d.observing.on() => d.written.last_index(),
            SimStore::Disk(d) => {
                let answer = d.disk.last_index();
                d.judge(
                    || "last_index()".to_string(),
                    &answer,
                    &d.written.last_index(),
                    show_debug,
                );
                answer
            }
        }
    }

    fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot> {
        match self {
            SimStore::Mem(mem) => mem.snapshot(request_index, to),
            SimStore::Disk(d) if d.observing.on() => d.written.snapshot(request_index, to),
            SimStore::Disk(d) => {
                let answer = d.disk.snapshot(request_index, to);
                d.judge(
                    || format!("snapshot({request_index})"),
                    &answer,
                    &d.written.snapshot(request_index, to),
                    show_snapshot,
                );
                answer
            }
        }
    }
}
