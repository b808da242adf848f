//! [`DiskError`]: what can go wrong on disk, naming the file and, for corruption, the byte offset.

use std::io;
use std::path::{Path, PathBuf};

/// A failure of the disk storage. Through the [`Storage`](raft_core::Storage) trait and the write
/// API it arrives as `raft_core::Error::Store(StorageError::Other(..))`; get it back with
/// [`DiskError::from_raft`].
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// An I/O operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation ("write", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The error the file system returned.
        #[source]
        source: io::Error,
    },
    /// A file holds something that cannot be what the engine wrote: a checksum mismatch, an
    /// impossible length, a gap in the log, a missing file. Recovery never repairs these.
    #[error("corrupt {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged (or missing) file.
        path: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown: the storage refuses to
    /// write until it is reopened (and recovery decides what survived).
    #[error("the storage refuses writes after an earlier failure ({0}); reopen it")]
    Failed(String),
    /// The multi-group log holds no group of this id (never created, or removed).
    #[error("no raft group {0} in the log")]
    NoSuchGroup(u64),
    /// The multi-group log already holds a group of this id.
    #[error("raft group {0} already exists")]
    GroupExists(u64),
    /// A value too large for its on-disk slot (for example a membership that does not fit in
    /// the state file's slot).
    #[error("{0}")]
    TooLarge(String),
}

impl DiskError {
    /// An I/O error of `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> DiskError {
        DiskError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Corruption in `path` at `offset`.
    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DiskError {
        DiskError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// The disk storage error inside a `raft_core::Error`, if there is one.
    pub fn from_raft(error: &raft_core::Error) -> Option<&DiskError> {
        match error {
            raft_core::Error::Store(raft_core::StorageError::Other(inner)) => {
                inner.downcast_ref::<DiskError>()
            }
            _ => None,
        }
    }

    /// Whether this is the file system reporting that the disk is full (`ENOSPC`).
    pub fn is_no_space(&self) -> bool {
        matches!(self, DiskError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }

    /// The file and byte offset of a [`DiskError::Corrupt`].
    pub fn corrupt_at(&self) -> Option<(&Path, u64)> {
        match self {
            DiskError::Corrupt { path, offset, .. } => Some((path, *offset)),
            _ => None,
        }
    }
}

impl From<DiskError> for raft_core::Error {
    fn from(e: DiskError) -> raft_core::Error {
        raft_core::Error::Store(raft_core::StorageError::Other(Box::new(e)))
    }
}
