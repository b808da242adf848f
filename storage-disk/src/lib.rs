//! `storage-disk`: a durable [`raft_core::Storage`] that survives power loss and detects
//! corruption, over a real file system or a deterministic simulated disk.
//!
//! # On disk
//!
//! One directory per Raft group (see [`DiskStorage::open`]):
//! - the **log**, append-only segment files of checksummed records (length, CRC-32C, kind, group
//!   id, prost-encoded `Entry`), a new segment started once one passes
//!   [`Options::segment_bytes`] (64 MiB by default). Every record names its group, so that a
//!   future multi-raft log (issue 17) can share segments without a format change;
//! - the **state file**, two checksummed slots holding the hard state, the membership and where
//!   the log starts; a write goes to the older slot and is fsynced, the newer valid slot wins;
//! - the **snapshot**, one file written under a temporary name, fsynced, renamed, and the
//!   directory fsynced. Its data is read from the file when [`Storage::snapshot`](raft_core::Storage::snapshot)
//!   is asked for it, never kept in memory.
//!
//! # Semantics
//!
//! Every read and write answers as `storage-mem`'s `MemStorage` does (a differential test drives
//! both with the same random operations): the same first and last index, terms, entries with
//! the same size limits, the same snapshot rules, the same errors. What this crate adds is
//! durability: [`DiskStorageCore::write`] applies one `Ready`'s [`WriteBatch`] and fsyncs when
//! asked (`Ready::must_sync`), [`DiskStorageCore::write_all`] fsyncs several batches at once
//! (group commit), and snapshots and compaction are durable when they return.
//!
//! # Recovery and failures
//!
//! [`DiskStorage::open`] replays the log. A torn tail (damage after the last synced position of
//! the last segment: a write the crash interrupted) is cut and reported in [`Recovery`]; any other
//! damage (a bad checksum before a synced position, a missing segment or snapshot, a gap in the
//! indexes, a commit index beyond the log) is a [`DiskError::Corrupt`] naming the file and byte
//! offset. The storage never comes back with a silently shorter log.
//!
//! An I/O error while writing (a failed fsync, a full disk) is returned, and the storage then
//! refuses every write until it is reopened: after a failed fsync the kernel may have dropped the
//! unsynced pages, so retrying as if nothing happened could acknowledge lost data.
//!
//! # Memory
//!
//! Terms and indexes are answered from memory: 24 bytes per entry between the log start and the
//! end (so memory grows with the entries kept between compactions, not with their size). Entry
//! payloads are kept only for the most recent entries, within [`Options::cache_bytes`]; older
//! entries are read back from their segment, checksums verified.
//!
//! # I/O
//!
//! All file access goes through the [`io::Fs`] trait: [`io::RealFs`] for the operating system,
//! [`io::SimFs`] for a seeded simulated disk that loses unsynced writes at a crash, tears and
//! reorders them at sector granularity, fails fsyncs and reads, flips bits, misdirects writes and
//! fills up.
//!
//! # Example: a Ready loop
//!
//! A single-voter group on the simulated disk: it campaigns, proposes, persists each `Ready`
//! into the disk storage (fsyncing when the Ready asks), and comes back after a power loss with
//! everything it acknowledged.
//!
//! ```
//! use std::sync::Arc;
//! use raft_core::{Config, RawNode, StateRole, Storage};
//! use storage_disk::io::{FaultConfig, SimFs};
//! use storage_disk::{DiskStorage, Options, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let disk = SimFs::new(7, FaultConfig::none());
//! let storage = DiskStorage::open(Arc::new(disk.clone()), "/raft/1", Options::default())?;
//! storage.wl().set_conf_state(raft_core::eraftpb::ConfState {
//!     voters: vec![1],
//!     ..Default::default()
//! });
//! storage.wl().sync()?;
//!
//! let mut node = RawNode::new(&Config::new(1), storage.clone(), &logger)?;
//! node.campaign()?;
//! let mut applied = Vec::new();
//! for round in 0..3 {
//!     if round == 1 {
//!         node.propose(vec![], b"hello".to_vec())?;
//!     }
//!     while node.has_ready() {
//!         let mut rd = node.ready()?;
//!         // Messages in rd.take_messages() may be sent before persisting (none here).
//!         storage.wl().write(WriteBatch::from_ready(&rd), rd.must_sync())?;
//!         // rd.take_persisted_messages() may be sent only now.
//!         applied.extend(rd.take_committed_entries());
//!         let mut light = node.advance(rd)?;
//!         if let Some(commit) = light.commit_index() {
//!             storage.wl().commit_to(commit)?;
//!         }
//!         applied.extend(light.take_committed_entries());
//!         node.advance_apply();
//!     }
//! }
//! assert_eq!(node.raft.state, StateRole::Leader);
//! assert!(applied.iter().any(|e| &e.data[..] == b"hello"));
//! let last = storage.last_index()?;
//!
//! // Power loss: only what was fsynced survives, and that is everything acknowledged.
//! drop(node);
//! drop(storage);
//! let after = disk.crash();
//! let storage = DiskStorage::open(Arc::new(after), "/raft/1", Options::default())?;
//! assert_eq!(storage.last_index()?, last);
//! let entries = storage.entries(1, last + 1, raft_core::NO_LIMIT)?;
//! assert!(entries.iter().any(|e| &e.data[..] == b"hello"));
//! # Ok(())
//! # }
//! ```

mod batch;
mod engine;
mod error;
mod files;
pub mod io;
mod log_index;
mod record;
mod state_file;

pub use batch::WriteBatch;
pub use engine::{DiskStorage, DiskStorageCore, Options, Recovery, TornTail};
pub use error::DiskError;
