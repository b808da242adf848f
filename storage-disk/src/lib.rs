//! `storage-disk`: a durable [`raft_core::Storage`] that survives power loss and detects
//! corruption, over a real file system or a deterministic simulated disk.
//!
//! # On disk
//!
//! One directory per Raft group (see [`DiskStorage::open`]; for many groups in one directory,
//! see [`MultiLog`] below):
//! - the **log**, append-only segment files of checksummed records (length, a header CRC-32C, a
//!   record CRC-32C, kind, group id, payload): entries (prost-encoded `Entry`), hard states,
//!   memberships, sync marks, and checkpoint witnesses (below). A new segment is started once
//!   one passes [`Options::segment_bytes`] (64 MiB by default). Every record names its group,
//!   so that the multi-group log ([`MultiLog`]) shares the format. Segments are
//!   zero-filled ahead of their records, 1 MiB at a time up to `segment_bytes`, so that the
//!   fsync of an append writes the data alone, not the inode of a growing file;
//! - the **state file**, a checkpoint in two checksummed slots: a sequence number, the hard
//!   state, the membership, where the log starts, the current snapshot, and the log position it
//!   was written at. A write goes to the older slot and is fsynced, the newer valid slot wins.
//!   It is written only when the log's shape changes (a snapshot is created or installed, the
//!   log is compacted), and each time its slot's payload is then appended to the log as a
//!   *checkpoint witness* (record kind 9) and fsynced: one more `write` and fsync per
//!   checkpoint, none per `Ready`;
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
//! A synced `Ready` costs **one fsync** and two `write`s: its entries and, when they changed, a
//! hard state record and a membership record are appended to the log with one `write`, the log
//! is fsynced, and a sync mark follows (below); the last hard state
//! and membership records after the checkpoint win on recovery. Snapshots and compaction cost
//! more (the snapshot file, the directory, the checkpoint), and so does starting a segment.
//!
//! ## Syncing off the lock
//!
//! [`DiskStorageCore::sync`] holds the storage's write lock through the fsync. An application
//! that persists in the background (`RawNode::advance_append_async`, `on_persist_ready`) syncs
//! without it: [`DiskStorageCore::begin_sync`] (under the lock: records the hard state and
//! membership, captures the last segment and its end) returns a [`SyncTicket`];
//! [`SyncTicket::run`] fsyncs on any thread with no lock held, while the storage is read and
//! written as usual; [`DiskStorageCore::finish_sync`] (under the lock) reports it, after which
//! everything written before the ticket began is durable. The sync mark is written only if
//! nothing was written after the ticket's position meanwhile (it would otherwise vouch for
//! records the fsync may have missed); a rotation, snapshot or compaction meanwhile is allowed;
//! several tickets may be outstanding; the fsyncs of the log run one at a time, and a failed one
//! fails the storage before any other can start, so no later fsync ever stands in for it.
//!
//! # Recovery and failures
//!
//! [`DiskStorage::open`] replays the log. Right after every successful fsync the engine appends
//! a *sync mark* (not fsynced itself: the next fsync or the kernel's writeback carries it to the
//! disk), which proves that everything before it was synced. Recovery cuts a damaged tail only
//! when both hold:
//! - the damage lies after the last proof of sync (the last sync mark, or the checkpoint's
//!   position) in the last segment, and no valid sync mark follows it;
//! - it has a shape that a crash leaves in a write that was not yet fsynced: the file ends inside
//!   the record, or a 512-byte sector piece of it reads as zeros. A flipped bit in a complete
//!   record, a record written somewhere else, an impossible header: none of these is what a
//!   crash does, and each is an error even where no sync mark proves the record was synced.
//!
//! Zeros from the first byte of a record to the end of a segment are its end, not damage: the
//! zero-filled space ahead of the records, or a crash that lost every sector written there. A
//! zeroed sector *inside* a record always has a non-zero byte after the record's start before
//! the end of the file (the record's header, its later sectors, later records) and is judged
//! by the rules above.
//!
//! A cut is reported in [`Recovery::torn_tail`] (with its [`TornShape`]), except the cut of a
//! sync mark that a crash tore, which loses nothing ([`Recovery::torn_sync_mark`]). Any other
//! damage (a bad record before a proof of sync or of another shape, a missing segment or
//! snapshot, a gap in the indexes, a log that ends before the checkpoint's position, a commit
//! index beyond the entries before it, a segment of another format version) is a
//! [`DiskError::Corrupt`] naming the file and byte offset. Nothing damaged is ever served.
//!
//! The state file's slots are checked the same way (a torn or flipped slot fails its checksum
//! and the other slot wins), but a slot write that the device acknowledged and put one sector
//! away (a misdirected write) or never made (a lost write) fails no checksum: the older slot
//! just wins, and would bring back the checkpoint before, without a snapshot that
//! `create_snapshot` or `apply_snapshot` reported durable, or starting the log at files removed
//! since. The checkpoint witness catches it: the witness is written only after the slot's fsync
//! returned, and made durable before the call returns and before any file behind the
//! checkpoint is removed. Recovery notes the newest witness in the log it replays:
//! - a witness newer than the newest valid slot (or one where neither slot is valid) means the
//!   state file lost that checkpoint's write. Recovery **rolls forward**: it replays the log from
//!   the witnessed checkpoint, exactly as it would have from the slot (every file that
//!   checkpoint needs was durable before its witness was written), rewrites the state file with
//!   it, and reports it in [`Recovery::rolled_forward`]. If the replay from the older slot
//!   fails first (its segments or snapshot are gone), every segment is scanned for the newest
//!   witness. If the replay from the witness fails too, the storage is refused with a
//!   [`DiskError::Corrupt`] naming the state file, the checkpoint it holds and the witness;
//! - a witness of the slot's own sequence number with another checkpoint is a
//!   [`DiskError::Corrupt`] naming the state file and the witness;
//! - a directory written before witnesses existed holds none, and opens as it always did (its
//!   first checkpoint after the upgrade writes one).
//!
//! The multi-group log needs no witness: its checkpoint file is replaced whole (temporary name,
//! fsync, rename, directory fsync), so a write of it that never landed leaves a new file that
//! fails its magic or checksum (on a file system that never shows a file stale blocks, as
//! below), a [`DiskError::Corrupt`] naming it, never an older checkpoint; and whatever its
//! checkpoint holds is also in the log's records, so even an older checkpoint could only replay
//! to the same state or find its segments missing (an error).
//!
//! ## What recovery cannot tell
//!
//! A torn write can only damage data written after the last completed fsync, and a sync mark
//! can only be written after that fsync returns; until the mark reaches the disk, nothing on
//! the disk says that the fsync happened. So one case is indistinguishable from a crash during
//! the write: the last batch was fsynced (and maybe acknowledged), the power failed before its
//! sync mark reached the disk, **and** the device lost or zeroed a sector of that batch (or
//! flipped a bit in a record that happens to hold a zeroed sector piece, or cut the file).
//! Recovery then cuts that batch and reports it in [`Recovery::torn_tail`] like any torn write.
//! Closing this would take a second fsync per `Ready`, which is what this design removes. An
//! application that must not run with a log that may have lost an acknowledged entry refuses to
//! start (or does not vote or acknowledge until a leader has caught it up) whenever
//! `torn_tail` is set, at the cost of doing so after every power loss that interrupted a write.
//!
//! The same holds for a checkpoint witness, which is a record like any other: the state file's
//! slot write was lost (or misdirected), its witness was fsynced, the power failed before the
//! witness's sync mark reached the disk, **and** the device lost a sector of the witness.
//! Recovery then cuts the witness as a torn tail ([`Recovery::torn_tail`] is set) and comes
//! back from the checkpoint before. A witness torn by a crash *before* its fsync returned loses
//! nothing: the call writing the checkpoint had not returned, and no file behind it was removed.
//!
//! Also not detected: a file system that shortens a segment exactly at a record boundary, or a
//! device that zeroes it from a record's first byte to its end, after the checkpoint's position
//! and the last sync mark left (this is never what a crash does to fsynced data, and a shorter
//! log before the checkpoint's position is an error). The model assumes that a crash
//! loses whole 512-byte sectors (a half-written sector reads back as an I/O error on real
//! disks) and that the file system never shows stale blocks after a crash (ext4
//! `data=ordered`, XFS, btrfs); a file system that does may make recovery refuse a log that a
//! mere crash damaged, never accept a damaged one.
//!
//! An I/O error while writing (a failed fsync, a full disk) is returned, and the storage then
//! refuses every write until it is reopened: after a failed fsync the kernel may have dropped the
//! unsynced pages, so retrying as if nothing happened could acknowledge lost data. This holds
//! for an fsync run off the lock too ([`SyncTicket`]): its failure is recorded before any other
//! fsync of the log may start.
//!
//! # Memory
//!
//! Memory while holding a log does not grow with its number of entries: besides the cache of
//! recent entries, which bounds it, it grows only with the segments and terms the log spans
//! (about 300 bytes per 64 MiB segment):
//! - the **cache** holds the most recent entries within [`Options::cache_bytes`] (their encoded
//!   sizes; at least the last entry appended);
//! - the **index** is sparse: one *term run* (16 bytes) per run of entries of one term, so
//!   that terms are answered from memory, never from the disk; one *piece* (64 bytes) per run
//!   of entries written one after the other in one segment (about one per segment, plus one
//!   per truncation of a conflicting suffix), with a resident *sample* (16 bytes) of a position
//!   in it every 4 MiB and 1,024 entries: about 300 bytes per 64 MiB segment, about 6 KiB for
//!   a log of 8 million 128-byte entries, where a table of 24 bytes per entry held 192 MiB;
//! - the **anchor tables**: positions in the segments read recently, left by earlier reads,
//!   at most 16 tables of at most `16 * (segment_bytes / 64 KiB + 2)` bytes (256 KiB in all
//!   with 64 MiB segments, 4 MiB with 1 GiB segments).
//!
//! Older entries are read back from their segment: the reader scans the records of the entry's
//! piece from the last position known before it (a sample, or where an earlier read stopped),
//! every record it meets checked (both checksums), the entries it serves checked once more
//! against the index and the term runs. A first read in a piece scans at most about 4 MiB (or
//! 1,024 of the group's records) before its entry; a read that goes on from where the last one
//! stopped scans only what it reads. [`DiskStorageCore::index_stats`] shows what is held.
//!
//! # Many groups in one log: [`MultiLog`]
//!
//! A multi-raft process (thousands to a million groups per node) cannot afford a directory and
//! an fsync per group. [`MultiLog`] keeps all groups in **one directory and one segmented log**,
//! their records interleaved, and writes the `Ready`s of many groups with one `write` and **one
//! fsync** ([`MultiLogCore::write`] takes `(group id, WriteBatch)` pairs). Each group reads
//! through its [`GroupStorage`], a [`Storage`](raft_core::Storage) that answers as `MemStorage`
//! would for that group alone (a differential test drives several groups against their own
//! `MemStorage`s). On disk:
//! - **segments** of the format above, each record naming its group. Besides entries, hard
//!   states, memberships and sync marks, a multi-group log writes *group created* (kind 6) and
//!   *group removed* (kind 7, empty payloads), *group shape* (kind 5: flags, bit 0 meaning a
//!   snapshot was installed and the log emptied, then the log start index and term as u64 LE,
//!   then the prost-encoded `SnapshotMetadata`; written when a group compacts, creates or
//!   installs a snapshot), and *entry copy* (kind 8: an entry's prost encoding, a live entry
//!   carried forward; it moves the entry and never truncates the group's log after it);
//! - the **`checkpoint`** file: header (magic `RDMC`, format version u32 1, CRC-32C u32 of the
//!   payload, 4 zero bytes, payload length u64), then sequence, first segment, synced segment,
//!   synced offset and group count (u64 LE each), then per group in increasing id order: id,
//!   term, vote, commit, log start index and term, the segment and offset of its first entry's
//!   record or of an earlier one from which its entry records follow without a gap (segment
//!   0: no entry), all u64 LE, then the prost-encoded `SnapshotMetadata` and
//!   `ConfState`, each after a u32 LE length. It is replaced whole (temporary name, fsync, rename,
//!   directory fsync);
//! - **`snap-<group>-<index>.snap`**, one per group with a snapshot, in the snapshot format
//!   above (20 digits each).
//!
//! A segment is deleted once no group's live entries are in it and a checkpoint written after it
//! holds every group's small state; the checkpoint (about 100 bytes per group) is written at most
//! once per segment freed. A group that never compacts would pin its first segment for ever, so
//! once the log holds more than [`MultiOptions::rewrite_lag_segments`] segments, the live entries
//! of the groups lagging further back are appended again as entry copies (as raft-engine rewrites
//! such groups) and the old segments go. Recovery replays the checkpoint and the segments with
//! the single-group code: the same torn-tail and corruption rules, errors naming file and
//! offset. Memory is each group's index (a few dozen bytes per segment it has entries in and
//! per term, see "Memory" above, never a per-entry table) and cache
//! ([`MultiOptions::cache_bytes_per_group`]), the anchor tables shared by all groups (at most
//! 256 KiB with 64 MiB segments), and at open one segment at a time.
//!
//! ```
//! use std::sync::Arc;
//! use raft_core::eraftpb::{Entry, HardState};
//! use raft_core::{Storage, NO_LIMIT};
//! use storage_disk::io::{FaultConfig, SimFs};
//! use storage_disk::{MultiLog, MultiOptions, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let disk = SimFs::new(3, FaultConfig::none());
//! let log = MultiLog::open(Arc::new(disk.clone()), "/raft", MultiOptions::default())?;
//! let groups: Vec<u64> = (1..=100).collect();
//! log.wl().create_groups(&groups)?;
//! // One round of a multi-raft loop: every group's Ready, one write and one fsync.
//! let syncs = disk.sync_count();
//! let batches = groups.iter().map(|&id| {
//!     let entry = Entry { index: 1, term: 1, data: vec![id as u8; 16].into(), ..Default::default() };
//!     let hard_state = HardState { term: 1, vote: 1, commit: 0 };
//!     (id, WriteBatch { entries: vec![entry], hard_state: Some(hard_state), ..Default::default() })
//! });
//! log.wl().write(batches, true)?;
//! assert_eq!(disk.sync_count() - syncs, 1);
//!
//! // After a power loss every group has its entry back.
//! drop(log);
//! let log = MultiLog::open(Arc::new(disk.crash()), "/raft", MultiOptions::default())?;
//! let group = log.group(42);
//! assert_eq!(group.last_index()?, 1);
//! assert_eq!(&group.entries(1, 2, NO_LIMIT)?[0].data[..], &[42u8; 16][..]);
//! # Ok(())
//! # }
//! ```
//!
//! # I/O
//!
//! All file access goes through the [`io::Fs`] trait: [`io::RealFs`] for the operating system,
//! [`io::SimFs`] for a seeded simulated disk that loses unsynced writes at a crash, tears and
//! reorders them at sector granularity, fails fsyncs and reads, flips bits, misdirects writes,
//! loses acknowledged writes and fills up.
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
mod multi;
mod record;
mod state_file;

pub use batch::WriteBatch;
pub use engine::{
    DiskStorage, DiskStorageCore, FinishedSync, Garbage, Options, Recovery, RolledForward,
    SnapshotWriter, SyncTicket, TornShape, TornTail, WrittenSnapshot,
};
pub use error::DiskError;
pub use log_index::IndexStats;
pub use multi::{GroupStorage, MultiLog, MultiLogCore, MultiOptions};
