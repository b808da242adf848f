//! The I/O the engine needs, behind a trait: [`Fs`] (a directory tree) and [`FsFile`] (one open
//! file). [`RealFs`] is the operating system's file system; [`SimFs`] is a deterministic simulated
//! disk with injected faults, so that a seed replays a whole run, disk faults included.
//!
//! The contract the engine relies on, and which [`SimFs`] models strictly:
//! - a write is durable only after a successful [`FsFile::sync`] of its file; until then a crash
//!   may keep any subset of its sectors (torn and reordered writes);
//! - a file's creation, rename or removal is durable only after [`Fs::sync_dir`] of its directory;
//! - after a failed [`FsFile::sync`] the unsynced writes of that file may be lost even though
//!   reads still return them (Linux marks the dirty pages clean: "fsyncgate"), so the caller must
//!   treat the file as failed and never retry the sync as if nothing happened.

mod real;
mod sim;
mod sim_faults;

pub use real::RealFs;
pub use sim::SimFs;
pub use sim_faults::{DamagedWrite, FaultConfig, InjectedFaults};

use std::io;
use std::path::Path;

/// One open file: positioned reads and writes, truncation and fsync.
///
/// Writes never extend a file past a hole on purpose: the engine writes at the end or inside the
/// file. A read past the end is an error of kind `UnexpectedEof`.
pub trait FsFile: Send + Sync {
    /// The current length of the file in bytes (including writes not yet synced).
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `data` at `offset` (not durable until [`sync`](Self::sync)).
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Cuts or extends (with zeros) the file to `len` bytes (not durable until `sync`).
    fn truncate(&self, len: u64) -> io::Result<()>;

    /// Makes every write and truncation of this file durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;

    /// Extends the file to `len` bytes that read as zeros, its blocks allocated and written
    /// (unlike the sparse extension of [`truncate`](Self::truncate)), so that writes inside it
    /// later change no file metadata: an `fdatasync` of them then writes no inode (the file's
    /// size does not change). Does nothing if the file is at least `len` bytes long. Durable
    /// after [`sync`](Self::sync); until then a crash keeps any subset of its sectors, as for a
    /// write.
    ///
    /// The default writes zeros with [`write_at`](Self::write_at). `fallocate` (mode 0) is not
    /// a substitute on ext4 or XFS: it leaves *unwritten* extents, and the first write into each
    /// one converts it, a metadata change that `fdatasync` must then write.
    fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut at = self.len()?;
        let zeros = [0u8; 64 << 10];
        while at < len {
            let piece = (len - at).min(zeros.len() as u64);
            self.write_at(at, &zeros[..piece as usize])?;
            at += piece;
        }
        Ok(())
    }
}

/// A file system: opening files and changing directory entries.
pub trait Fs: Send + Sync {
    /// Creates the directory `dir` and its parents if they are missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Creates an empty file at `path`, replacing (emptying) an existing one. The name is durable
    /// only after [`sync_dir`](Self::sync_dir).
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;

    /// Opens the existing file at `path` for reading and writing (`NotFound` if there is none).
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;

    /// Renames `from` to `to`, replacing `to` atomically. Durable after `sync_dir`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file at `path`. Durable after `sync_dir`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// The names (not paths) of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Makes the creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}
