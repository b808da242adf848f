//! [`SegmentLog`]: the segment files of a log and the rules for writing them, shared by the
//! single-group engine ([`DiskStorageCore`](super::DiskStorageCore)) and the multi-group log
//! ([`MultiLog`](crate::MultiLog)): appending encoded records with one `write`, zeros written
//! ahead (preallocation), fsync followed by a sync mark, segment rotation; and the positions
//! that the readers of old entries found in them (`anchors`, read by `scan`).
//!
//! Ordering rules that recovery relies on (see `open` and `tail`):
//! - a segment is fsynced before the next one is started, so only the last segment can hold
//!   unsynced records (a torn tail);
//! - a new segment's header is fsynced and its directory entry made durable before any record is
//!   written to it, so every segment a durable checkpoint refers to exists after a crash;
//! - right after every successful fsync of the log a sync mark is written (not fsynced): once it
//!   reaches the disk, with the next fsync or the kernel's writeback, damage before it is
//!   corruption, not a torn write. It is a `write` of its own, never part of the next batch's:
//!   written at once, it reaches the disk even if no other write follows (after a process
//!   crash, the page cache still carries it), which the next batch's `write` would not;
//! - zeros are written ahead of the records (preallocation) and never over them: a record's
//!   sector that a crash lost reads as zeros, or the file ends before it, as `tail` assumes.
//!
//! Any I/O error marks the log failed ([`SegmentLog::failure`]): after a failed fsync the file's
//! unsynced pages may be lost even though reads still return them, so the only honest
//! continuation is to reopen and let recovery decide what survived.
//!
//! The fsyncs of segments go through one [`SyncGate`], because one of them may run without the
//! storage's lock (`sync_ticket`): the gate runs them one at a time and records a failure before
//! the next one starts, so that no fsync after a failed one is taken as proof of the pages that
//! failure lost (Linux reports a writeback error to one fsync of a file description only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message as _;
use raft_core::eraftpb::Entry;

use super::anchors::AnchorCache;
use crate::error::DiskError;
use crate::files::{segment_header, segment_name, SEGMENT_HEADER_LEN};
use crate::io::{Fs, FsFile};
use crate::log_index::RecordAt;
use crate::record::{self, RecordKind, HEADER_LEN};

/// The zeros written ahead of the records of a segment, at a time (see
/// [`SegmentLog::preallocate`]).
pub(crate) const PREALLOCATE_BYTES: u64 = 1 << 20;

/// Writes of at least this many bytes do not zero-fill ahead of themselves (see
/// [`SegmentLog::preallocate`]).
const PREALLOCATE_BELOW_WRITE_BYTES: usize = 64 << 10;

/// One segment file of the log.
pub(crate) struct Segment {
    pub path: PathBuf,
    /// Shared with the sync tickets that fsync it off the storage's lock.
    pub file: Arc<dyn FsFile>,
    /// The bytes written to it so far (the next record's offset).
    pub len: u64,
    /// The file's length: past `len` it holds zeros written ahead (see preallocation).
    pub allocated: u64,
}

/// Records encoded for the end of the last segment, not yet written.
pub(crate) struct Pending {
    pub segment: u64,
    pub start: u64,
    pub buf: Vec<u8>,
}

impl Pending {
    /// The segment offset the next record appended to the buffer will have.
    pub fn next_offset(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Appends a record of `kind` for `group` with `payload`.
    pub fn push(&mut self, kind: RecordKind, group: u64, payload: &[u8]) {
        let offset = self.next_offset();
        record::encode(&mut self.buf, self.segment, offset, kind, group, payload);
    }

    /// Appends the entry records of `entries` for `group` and returns where each one goes.
    pub fn push_entries(
        &mut self,
        group: u64,
        entries: &[Entry],
    ) -> std::result::Result<Vec<RecordAt>, DiskError> {
        let mut locations = Vec::with_capacity(entries.len());
        self.buf
            .reserve(entries.iter().map(|e| HEADER_LEN + e.encoded_len()).sum());
        for entry in entries {
            let offset = self.next_offset();
            let payload_len = record::encode_with(
                &mut self.buf,
                self.segment,
                offset,
                RecordKind::Entry,
                group,
                // A Vec grows as needed: encoding into one cannot run out of room.
                |out| entry.encode(out).expect("encoding into a Vec"),
            );
            let len = self.next_offset() - offset;
            if u32::try_from(len).is_err() {
                return Err(DiskError::TooLarge(format!(
                    "an entry of {payload_len} bytes"
                )));
            }
            locations.push(RecordAt {
                segment: self.segment,
                offset,
                len,
            });
        }
        Ok(locations)
    }
}

/// The segment files of a log: the open files, where the last one ends and what of it is synced.
pub(crate) struct SegmentLog {
    pub fs: Arc<dyn Fs>,
    pub dir: PathBuf,
    pub segments: BTreeMap<u64, Segment>,
    /// A segment is full past this many bytes (at most 1 GiB).
    pub segment_bytes: u64,
    /// Records were written to the last segment since its last fsync.
    pub needs_sync: bool,
    /// The length of the last segment at its last fsync (its sync mark, if written, follows).
    pub synced_len: u64,
    /// The sync mark of the last fsync could not be written after it: the next write to the last
    /// segment starts with it (see `record`).
    pub mark_pending: bool,
    /// Orders the fsyncs of the segments and holds why the log refuses writes, after an I/O
    /// failure (shared with the sync tickets).
    pub gate: Arc<SyncGate>,
    /// The buffer of the last write, kept for the next one: a write of megabytes then neither
    /// grows a fresh buffer by reallocation nor faults its pages in.
    pub spare: Vec<u8>,
    /// Positions inside the pieces read recently, for the readers of old entries (`scan`).
    pub anchors: AnchorCache,
}

/// The largest buffer kept for the next write.
const SPARE_MAX: usize = 64 << 20;

impl SegmentLog {
    /// The log of `segments` as recovery opened them: the last one was fsynced when opened, so
    /// all of it is durable, and a sync mark is owed before the next write.
    pub fn recovered(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        segments: BTreeMap<u64, Segment>,
        segment_bytes: u64,
    ) -> SegmentLog {
        let synced_len = segments.values().next_back().map_or(0, |s| s.len);
        SegmentLog {
            fs,
            dir,
            segments,
            segment_bytes,
            needs_sync: false,
            synced_len,
            mark_pending: true,
            gate: Arc::new(SyncGate::default()),
            spare: Vec::new(),
            anchors: AnchorCache::default(),
        }
    }

    /// Fails if an earlier write failed.
    pub fn check_writable(&self) -> std::result::Result<(), DiskError> {
        self.gate.check()
    }

    /// Why the log refuses writes, if an I/O operation failed.
    pub fn failure(&self) -> Option<&str> {
        self.gate.failure()
    }

    /// Records an I/O failure: from now on every write is refused. Returns the error.
    pub fn fail(&mut self, error: DiskError) -> DiskError {
        self.gate.fail(error)
    }

    /// An empty buffer for the end of the last segment, starting with the sync mark that could
    /// not be written after the last fsync, if any.
    pub fn pending(&mut self) -> Pending {
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        let mut pending = Pending {
            segment: self.active_id(),
            start: self.active().len,
            buf,
        };
        if self.mark_pending {
            pending.push(RecordKind::SyncMark, 0, &[]);
        }
        pending
    }

    /// Starts a new segment if the last one is full: a batch is never split across segments.
    /// Returns whether it did.
    pub fn rotate_if_full(&mut self) -> std::result::Result<bool, DiskError> {
        let active_len = self.active().len;
        if active_len >= self.segment_limit() && active_len > SEGMENT_HEADER_LEN {
            self.rotate()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The size past which a segment is full.
    fn segment_limit(&self) -> u64 {
        self.segment_bytes.min(1 << 30)
    }

    /// Writes `pending` at the end of the last segment with one `write` (not durable until
    /// [`sync_log`](Self::sync_log)), then, if the records passed the zeros written so far,
    /// zero-fills the segment ahead of them (see [`preallocate`](Self::preallocate)).
    pub fn write_out(&mut self, pending: Pending) -> std::result::Result<(), DiskError> {
        let end = pending.next_offset();
        if end > u64::from(u32::MAX) {
            return Err(DiskError::TooLarge("a segment past 4 GiB".into()));
        }
        let path = self.active().path.clone();
        if let Err(e) = self.active().file.write_at(pending.start, &pending.buf) {
            return Err(self.fail(DiskError::io("write", &path, e)));
        }
        let segment = self.active_mut();
        segment.len = end;
        let passed_zeros = end > segment.allocated;
        segment.allocated = segment.allocated.max(end);
        self.mark_pending = false;
        self.needs_sync = true;
        let small = pending.buf.len() < PREALLOCATE_BELOW_WRITE_BYTES;
        if pending.buf.capacity() <= SPARE_MAX {
            self.spare = pending.buf;
        }
        if passed_zeros && small {
            self.preallocate(end)?;
        }
        Ok(())
    }

    /// After records were written up to byte `end` of the last segment, past the zeros written
    /// ahead: writes zeros from `end` up to the next multiple of [`PREALLOCATE_BYTES`] (at most
    /// to the segment's limit). Zeros are written after the records, never over them.
    ///
    /// On ext4 (and XFS, btrfs), an `fdatasync` after a write that grows a file must also write
    /// the inode (its size changed, and its new blocks were allocated); a write inside blocks
    /// already written changes no metadata and `fdatasync` writes the data alone. Measured on
    /// this repository's benchmark machine, that doubles the fsyncs per second of 8 KiB writes.
    /// `fallocate` does not help: it leaves unwritten extents, converted at the first write into
    /// each. The zeros are written in chunks as the log grows, not for a whole segment when it
    /// is created, so that no single `Ready` pays for 64 MiB of them; they reach the disk with
    /// the next fsync of the log. Recovery reads zeros from a record's start to the end of the
    /// file as the end of the log (see `replay`).
    ///
    /// Zeros cost as many bytes as the records that later replace them, while the inode an
    /// append saves costs about as much as writing 100 KiB on that machine (about 90 µs per
    /// fsync, at about 0.7 µs per KiB): so writes of [`PREALLOCATE_BELOW_WRITE_BYTES`] or more
    /// grow the file instead.
    fn preallocate(&mut self, end: u64) -> std::result::Result<(), DiskError> {
        let segment = self.active();
        let target = end
            .div_ceil(PREALLOCATE_BYTES)
            .saturating_mul(PREALLOCATE_BYTES)
            .min(self.segment_limit());
        if target <= end {
            // The segment's limit: the records grow the file past its zeros.
            return Ok(());
        }
        let path = segment.path.clone();
        if let Err(e) = segment.file.preallocate(target) {
            return Err(self.fail(DiskError::io("preallocate", &path, e)));
        }
        self.active_mut().allocated = target;
        Ok(())
    }

    /// Fsyncs the last segment if records were written to it since its last fsync, then writes
    /// the sync mark that proves it (without an fsync of its own: the next one, or the kernel's
    /// writeback, makes it durable). A mark that cannot be written is written with the next
    /// records instead; the fsync succeeded, so the data is durable either way.
    pub fn sync_log(&mut self) -> std::result::Result<(), DiskError> {
        if !self.needs_sync {
            return Ok(());
        }
        let active = self.active();
        self.gate.sync(&*active.file, &active.path)?;
        self.needs_sync = false;
        self.synced_len = self.active().len;
        self.write_sync_mark();
        Ok(())
    }

    /// Writes a sync mark at the end of the last segment, right after an fsync that covered
    /// everything before it. A mark that cannot be written is owed: the next records start
    /// with it.
    fn write_sync_mark(&mut self) {
        let mut mark = Pending {
            segment: self.active_id(),
            start: self.active().len,
            buf: Vec::with_capacity(HEADER_LEN),
        };
        mark.push(RecordKind::SyncMark, 0, &[]);
        match self.active().file.write_at(mark.start, &mark.buf) {
            Ok(()) => {
                let segment = self.active_mut();
                segment.len = mark.next_offset();
                segment.allocated = segment.allocated.max(segment.len);
                self.mark_pending = false;
            }
            Err(_) => self.mark_pending = true,
        }
    }

    /// What a sync begun now must make durable: the last segment up to its end, or nothing if
    /// no record was written since its last fsync (see `sync_ticket`).
    pub fn sync_target(&self) -> Option<SyncTarget> {
        if !self.needs_sync {
            return None;
        }
        let active = self.active();
        Some(SyncTarget {
            segment: self.active_id(),
            position: active.len,
            file: active.file.clone(),
            path: active.path.clone(),
            gate: self.gate.clone(),
        })
    }

    /// A sync of `target` succeeded off the lock: the last segment is durable up to its
    /// position. The sync mark is written only if no record was written after that position
    /// meanwhile; otherwise a mark at the end would vouch for records the fsync may have missed
    /// (written after it started), and a crash that tore them would then read as corruption.
    /// Those records stay unsynced (`needs_sync`), and the next fsync's mark proves them.
    ///
    /// Nothing to do if the segment is no longer the last one (a rotation fsynced it before
    /// starting the next) or a later fsync already covered the position.
    pub fn finish_sync(&mut self, target: &SyncTarget) {
        if target.segment != self.active_id() || target.position <= self.synced_len {
            return;
        }
        self.synced_len = target.position;
        if self.active().len == target.position {
            self.needs_sync = false;
            self.write_sync_mark();
        }
    }

    /// The position the log is synced up to: (last segment, its length at its last fsync).
    pub fn synced_position(&self) -> (u64, u64) {
        (self.active_id(), self.synced_len)
    }

    /// Closes the last segment (fsync) and starts the next one, durably.
    pub fn rotate(&mut self) -> std::result::Result<(), DiskError> {
        self.check_writable()?;
        // Always fsync, even without new entries: a sync mark may be unsynced in it.
        let active = self.active();
        self.gate.sync(&*active.file, &active.path)?;
        self.needs_sync = false;
        let id = self.active_id() + 1;
        let segment = match create_segment(&*self.fs, &self.dir, id) {
            Ok(segment) => segment,
            Err(e) => return Err(self.fail(e)),
        };
        self.segments.insert(id, segment);
        self.synced_len = SEGMENT_HEADER_LEN;
        self.mark_pending = false;
        Ok(())
    }

    /// Takes the segments below `first` out of the log (after a durable state no longer refers
    /// to them) and returns their paths, to remove.
    pub fn take_below(&mut self, first: u64) -> Vec<PathBuf> {
        let keep = self.segments.split_off(&first);
        let old = std::mem::replace(&mut self.segments, keep);
        self.anchors.forget_below(first);
        old.into_values().map(|segment| segment.path).collect()
    }

    /// Removes the segments below `first` (after a durable state no longer refers to them).
    /// Their removal need not be durable: recovery removes leftovers.
    pub fn remove_below(&mut self, first: u64) -> std::result::Result<(), DiskError> {
        for path in self.take_below(first) {
            if let Err(e) = self.fs.remove(&path) {
                return Err(self.fail(DiskError::io("remove", &path, e)));
            }
        }
        Ok(())
    }

    /// The id of the last segment.
    pub fn active_id(&self) -> u64 {
        self.segments.keys().next_back().copied().unwrap_or(0)
    }

    /// The last segment.
    pub fn active(&self) -> &Segment {
        let id = self.active_id();
        &self.segments[&id]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let id = self.active_id();
        self.segments.get_mut(&id).expect("the last segment exists")
    }
}

/// Creates segment `id` in `dir` with its header, fsynced, and its directory entry durable.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    dir: &std::path::Path,
    id: u64,
) -> std::result::Result<Segment, DiskError> {
    let path: PathBuf = dir.join(segment_name(id));
    let file = fs
        .create(&path)
        .map_err(|e| DiskError::io("create", &path, e))?;
    file.write_at(0, &segment_header(id))
        .map_err(|e| DiskError::io("write", &path, e))?;
    file.sync().map_err(|e| DiskError::io("fsync", &path, e))?;
    fs.sync_dir(dir)
        .map_err(|e| DiskError::io("fsync directory", dir, e))?;
    Ok(Segment {
        path,
        file: file.into(),
        len: SEGMENT_HEADER_LEN,
        allocated: SEGMENT_HEADER_LEN,
    })
}

/// What a sync begun off the storage's lock makes durable: segment `segment` up to `position`.
pub(crate) struct SyncTarget {
    pub segment: u64,
    pub position: u64,
    pub file: Arc<dyn FsFile>,
    pub path: PathBuf,
    pub gate: Arc<SyncGate>,
}

/// The fsyncs of a log's segments, one at a time, and the log's failure (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct SyncGate {
    /// Held through each fsync of a segment.
    order: Mutex<()>,
    /// Why the log refuses writes: set once, by the first failure.
    failed: OnceLock<String>,
}

impl SyncGate {
    /// Fsyncs `file` (at `path`) after every earlier fsync of the log has returned, unless one
    /// of them (or any other write) failed. A failure is recorded before the next fsync starts.
    pub fn sync(&self, file: &dyn FsFile, path: &Path) -> std::result::Result<(), DiskError> {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        self.check()?;
        file.sync()
            .map_err(|e| self.fail(DiskError::io("fsync", path, e)))
    }

    /// Fails if an earlier write or fsync failed.
    pub fn check(&self) -> std::result::Result<(), DiskError> {
        match self.failed.get() {
            Some(why) => Err(DiskError::Failed(why.clone())),
            None => Ok(()),
        }
    }

    /// Why the log refuses writes, if something failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// Records a failure (the first one is kept). Returns the error.
    pub fn fail(&self, error: DiskError) -> DiskError {
        let _ = self.failed.set(error.to_string());
        error
    }
}
