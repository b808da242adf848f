//! Fixtures shared by the integration tests.

#![allow(dead_code)]

pub mod model;
pub mod reads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft_core::{Error, Result};
use storage_disk::io::{FaultConfig, Fs, SimFs};
use storage_disk::{DiskError, DiskStorage, Options, WriteBatch};

/// The directory the simulated tests keep their storage in.
pub fn dir() -> PathBuf {
    PathBuf::from("/raft")
}

/// An entry at `index` with `term` and a payload whose size varies with the index.
pub fn ent(index: u64, term: u64) -> Entry {
    let len = (index * 37 % 200) as usize;
    Entry {
        index,
        term,
        data: vec![(index % 251) as u8; len].into(),
        ..Default::default()
    }
}

/// Entries `[lo, hi]` of term 1 and a hard state committing `commit`, as one Ready.
pub fn ready(lo: u64, hi: u64, commit: u64) -> WriteBatch {
    WriteBatch {
        entries: (lo..=hi).map(|i| ent(i, 1)).collect(),
        hard_state: Some(HardState {
            term: 1,
            vote: 1,
            commit,
        }),
        ..Default::default()
    }
}

/// Small segments and a small cache, so that rotation, compaction and disk reads all happen.
pub fn small_options() -> Options {
    Options {
        group_id: 1,
        segment_bytes: 2048,
        cache_bytes: 1024,
    }
}

/// Opens the storage at [`dir`] on `fs`.
pub fn open(fs: &SimFs, options: &Options) -> std::result::Result<DiskStorage, DiskError> {
    DiskStorage::open(Arc::new(fs.clone()) as Arc<dyn Fs>, dir(), options.clone())
}

/// A disk without faults (crashes keep each unsynced sector with probability ½).
pub fn sim(seed: u64) -> SimFs {
    SimFs::new(seed, FaultConfig::none())
}

/// A membership of `voters`.
pub fn conf(voters: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    }
}

/// A snapshot at (`index`, `term`).
pub fn snap(index: u64, term: u64, voters: &[u64]) -> Snapshot {
    Snapshot {
        data: format!("state at {index}").into_bytes().into(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf(voters)),
            index,
            term,
        }),
    }
}

/// The kind of a result: "ok" or the error's kind, comparable between storages whose
/// messages differ.
pub fn kind<T>(r: &Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(Error::Invariant(_)) => "invariant".to_string(),
        Err(Error::Store(e)) => format!("{:?}", std::mem::discriminant(e)),
        Err(e) => format!("{e}"),
    }
}

/// The disk error inside `e`, or a panic naming what arrived instead.
pub fn disk_error(e: &Error) -> &DiskError {
    DiskError::from_raft(e).unwrap_or_else(|| panic!("expected a DiskError, got {e:?}"))
}

/// The file and offset a corruption error names.
pub fn corrupt_at(e: &DiskError) -> (PathBuf, u64) {
    let (path, offset) = e
        .corrupt_at()
        .unwrap_or_else(|| panic!("expected a corruption error, got {e}"));
    (path.to_path_buf(), offset)
}

/// The segment file `id` in [`dir`].
pub fn segment(id: u64) -> PathBuf {
    dir().join(format!("{id:020}.log"))
}

/// Whether `path` is under the test directory.
pub fn in_dir(path: &Path) -> bool {
    path.starts_with(dir())
}

/// Where the records in a segment's contents end: the engine writes zeros ahead of them
/// (preallocation), so the file is longer. Walks the record headers (payload length at bytes
/// 0-3, a header checksum at bytes 4-7 that is never 0 in a written record).
pub fn log_end(bytes: &[u8]) -> usize {
    let mut at = 24;
    while at + 24 <= bytes.len() && bytes[at + 4..at + 8] != [0; 4] {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        at += 24 + len as usize;
    }
    at.min(bytes.len())
}

/// The contents of segment `id` up to the end of its records (see [`log_end`]).
pub fn records(fs: &SimFs, id: u64) -> Vec<u8> {
    let mut bytes = fs.contents(&segment(id)).expect("the segment exists");
    bytes.truncate(log_end(&bytes));
    bytes
}

/// A record found by [`walk_records`]: where it starts, its kind code, group and payload.
#[derive(Debug, Clone)]
pub struct RecordSeen {
    /// Its byte offset in the segment.
    pub offset: u64,
    /// Its kind (1 entry, 2 sync mark, 3 hard state, ..., 8 entry copy).
    pub kind: u32,
    /// Its group.
    pub group: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// The records of a segment's contents, walking their headers as [`log_end`] does (checksums
/// not checked).
pub fn walk_records(bytes: &[u8]) -> Vec<RecordSeen> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut records = Vec::new();
    let end = log_end(bytes);
    let mut at = 24;
    while at + 24 <= end {
        let len = word(at) as usize;
        records.push(RecordSeen {
            offset: at as u64,
            kind: word(at + 12),
            group: u64::from_le_bytes(bytes[at + 16..at + 24].try_into().expect("8 bytes")),
            payload: bytes[at + 24..(at + 24 + len).min(end)].to_vec(),
        });
        at += 24 + len;
    }
    records
}

/// The offset of the entry record of `index` of `group` in a segment's contents (the last one,
/// if the entry was written more than once).
pub fn entry_record(bytes: &[u8], group: u64, index: u64) -> Option<u64> {
    use prost::Message as _;
    walk_records(bytes)
        .into_iter()
        .filter(|r| r.group == group && (r.kind == 1 || r.kind == 8))
        .filter(|r| Entry::decode(&r.payload[..]).is_ok_and(|e| e.index == index))
        .map(|r| r.offset)
        .next_back()
}
