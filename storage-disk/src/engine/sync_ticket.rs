//! Syncing the log without holding the storage's lock: [`DiskStorageCore::begin_sync`] (under
//! the lock), [`SyncTicket::run`] (the fsync, on any thread, no lock) and
//! [`DiskStorageCore::finish_sync`] (under the lock again).
//!
//! [`DiskStorageCore::sync`] holds the write lock through the fsync, about a millisecond on an
//! SSD, during which the application's Raft loop can neither read the storage nor write to it.
//! With a ticket the loop writes a `Ready` (the `write` system call, quick), begins a sync, hands
//! the ticket to a thread of its own, and goes on stepping messages and taking proposals while
//! the fsync runs; once it returns, the loop finishes the sync and only then reports the `Ready`
//! persisted (`RawNode::on_persist_ready`) and sends its persisted messages. This is the
//! pipelined persistence of etcd's raft (`AsyncStorageWrites`) and raft-rs's
//! `advance_append_async`, with the fsync as the only part off the loop's thread.
//!
//! The rules:
//! - **What a ticket covers.** [`begin_sync`](DiskStorageCore::begin_sync) records the hard
//!   state and membership if they changed (as [`sync`](DiskStorageCore::sync) does) and captures
//!   the last segment and its end: everything written before it returns is durable once
//!   [`finish_sync`](DiskStorageCore::finish_sync) of that ticket returns `Ok`. Records written
//!   after it may or may not be.
//! - **Reads meanwhile** see everything written, durable or not, as they do between a write and
//!   `sync` (the log index and the hard state change when a write returns, not when it is
//!   synced).
//! - **Writes meanwhile** are allowed. The sync mark is written at the end of the segment, so
//!   `finish_sync` writes it only if nothing was written after the ticket's position; otherwise
//!   it would vouch for records the fsync may have missed, and a crash that tore them would read
//!   as corruption instead of a torn tail. Those records stay owed to the next fsync, whose mark
//!   proves them. An application that wants every fsync proven by a mark (recovery then tells
//!   damage from a torn write as closely as with `sync`) writes nothing between `begin_sync` and
//!   `finish_sync`, holding the `Ready`s that arrive meanwhile until the ticket is finished, as
//!   raftkv does.
//! - **Rotation, snapshots, compaction meanwhile** are allowed: a rotation fsyncs the segment
//!   before starting the next one, and a checkpoint fsyncs the log first, each under the lock.
//!   Finishing a ticket whose segment is no longer the last one, or whose position a later fsync
//!   covered, changes nothing.
//! - **Several tickets** may be outstanding and finished in any order; their fsyncs, and the
//!   fsyncs made under the lock, run one at a time (the `SyncGate` of `segments`).
//! - **Failures are never retried as if fine.** A failed fsync marks the storage failed before
//!   any other fsync of the log can start, so a later fsync that reports success for pages the
//!   kernel already dropped ("fsyncgate") is never taken for proof: it is not even attempted.
//!   `finish_sync` of the failed ticket returns the error, and so does every later write,
//!   until the storage is reopened and recovery decides what survived. A [`FinishedSync`] can
//!   only come from [`SyncTicket::run`], so no caller can report an fsync it did not make.

use std::fmt;
use std::sync::Arc;

use raft_core::{Error, Result};

use super::segments::SyncTarget;
use super::DiskStorageCore;
use crate::error::DiskError;

/// A sync of the log begun with [`DiskStorageCore::begin_sync`]: run it with
/// [`run`](Self::run) on any thread, without the storage's lock, then pass the result to
/// [`DiskStorageCore::finish_sync`]. Dropping it unrun syncs nothing (the next sync covers what
/// it would have).
pub struct SyncTicket {
    /// `None`: everything written was durable already.
    target: Option<SyncTarget>,
}

/// A [`SyncTicket`] that ran: its fsync's result, for [`DiskStorageCore::finish_sync`].
pub struct FinishedSync {
    target: Option<SyncTarget>,
    result: std::result::Result<(), DiskError>,
}

impl fmt::Debug for SyncTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SyncTicket");
        if let Some(target) = &self.target {
            d.field("path", &target.path)
                .field("position", &target.position);
        }
        d.finish()
    }
}

impl fmt::Debug for FinishedSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishedSync")
            .field("position", &self.target.as_ref().map(|t| t.position))
            .field("result", &self.result)
            .finish()
    }
}

impl SyncTicket {
    /// Whether the ticket has nothing to sync: everything written before it was durable already.
    pub fn is_empty(&self) -> bool {
        self.target.is_none()
    }

    /// Fsyncs the log up to the ticket's position (no lock held). Waits for any other fsync of
    /// the log in progress, and fsyncs nothing if the storage failed meanwhile.
    pub fn run(self) -> FinishedSync {
        let result = match &self.target {
            Some(target) => target.gate.sync(&*target.file, &target.path),
            None => Ok(()),
        };
        FinishedSync {
            target: self.target,
            result,
        }
    }
}

impl FinishedSync {
    /// Whether the fsync succeeded (the storage may still have failed since: see
    /// [`DiskStorageCore::finish_sync`]).
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }
}

impl DiskStorageCore {
    /// Begins a sync of everything written so far, to be run off the lock (see the module
    /// documentation): records the hard state and membership if they changed since they were
    /// last recorded (one `write`), and returns a ticket for the fsync. The ticket is empty if
    /// nothing needs an fsync.
    pub fn begin_sync(&mut self) -> Result<SyncTicket> {
        self.check_writable()?;
        self.record_state()?;
        Ok(SyncTicket {
            target: self.seg.sync_target(),
        })
    }

    /// Finishes a sync begun with [`begin_sync`](Self::begin_sync): once this returns `Ok`,
    /// everything written before that call is durable. Writes the sync mark that proves it, if
    /// nothing was written after the ticket's position.
    ///
    /// Fails if the fsync failed (the storage is then failed, as after a failed
    /// [`sync`](Self::sync)), if the storage failed meanwhile, or if the ticket was begun on
    /// another storage.
    pub fn finish_sync(&mut self, finished: FinishedSync) -> Result<()> {
        if let Err(e) = finished.result {
            // The gate recorded it already; this keeps the first failure's message.
            return Err(self.fail(e).into());
        }
        self.check_writable()?;
        let Some(target) = finished.target else {
            return Ok(());
        };
        if !Arc::ptr_eq(&target.gate, &self.seg.gate) {
            return Err(Error::Invariant(
                "DiskStorageCore::finish_sync: the ticket was begun on another storage",
            ));
        }
        self.seg.finish_sync(&target);
        Ok(())
    }
}
