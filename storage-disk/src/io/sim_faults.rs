//! [`FaultConfig`]: the probabilities with which [`SimFs`](super::SimFs) injects faults,
//! [`InjectedFaults`]: how many it injected, and [`DamagedWrite`]: which writes it misdirected
//! or lost.

use std::path::PathBuf;

/// How often the simulated disk misbehaves. Every probability is per operation, in `[0, 1]`.
///
/// The one-shot triggers on [`SimFs`](super::SimFs) (`fail_next_sync`, `halt_at_point`, ...)
/// work whatever this says; tests that want exact control use them with [`FaultConfig::none`].
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// The unit of torn writes: a crash keeps or loses each unsynced sector as a whole.
    pub sector_size: u64,
    /// The chance that one unsynced sector write (or truncation) survives a crash. Kept sectors
    /// need not be a prefix: a later sector may survive while an earlier one is lost.
    pub keep_unsynced: f64,
    /// The chance that an fsync fails; the file's unsynced writes are then lost at the next crash
    /// although reads still return them.
    pub sync_error: f64,
    /// The chance that a read fails with an I/O error (a transient error: the data is intact).
    pub read_error: f64,
    /// The chance that a write reaches the medium with one bit flipped.
    pub bit_flip: f64,
    /// The chance that a write lands one sector away from where it was aimed (the aimed-at
    /// sectors keep their old contents).
    pub misdirected_write: f64,
    /// The disk's capacity in bytes, over all files: a write or extension past it fails like
    /// `ENOSPC` and writes nothing.
    pub capacity_bytes: u64,
}

impl FaultConfig {
    /// A disk without faults: only crashes (which keep each unsynced sector with probability ½).
    pub fn none() -> FaultConfig {
        FaultConfig {
            sector_size: 512,
            keep_unsynced: 0.5,
            sync_error: 0.0,
            read_error: 0.0,
            bit_flip: 0.0,
            misdirected_write: 0.0,
            capacity_bytes: u64::MAX,
        }
    }
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig::none()
    }
}

/// How many faults a [`SimFs`](super::SimFs) injected since it was made (a disk returned by
/// [`SimFs::crash`](super::SimFs::crash) starts again from none), one-shot triggers included, so
/// that a test can tell a fault that was never injected from one that went unnoticed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedFaults {
    /// Reads that failed with an I/O error.
    pub read_errors: u64,
    /// Fsyncs that failed.
    pub sync_errors: u64,
    /// Writes that reached the medium with one bit flipped.
    pub bit_flips: u64,
    /// Writes that landed one sector away from where they were aimed.
    pub misdirected_writes: u64,
    /// Writes the device lost: acknowledged, read back until a crash, never on the medium.
    pub lost_writes: u64,
}

/// A write that did not reach the medium where it was aimed: misdirected (by
/// [`FaultConfig::misdirected_write`] or
/// [`SimFs::misdirect_next_write`](super::SimFs::misdirect_next_write)) or lost
/// ([`SimFs::lose_next_write`](super::SimFs::lose_next_write)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedWrite {
    /// The file's path when it was written (`None` if it had none: removed while open).
    pub path: Option<PathBuf>,
    /// The byte offset it was aimed at.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Where it landed: the byte offset it was misdirected to, or `None` if it was lost.
    pub landed: Option<u64>,
}
