//! Persistence with the fsync off the node's thread (issue 20): [`Persistence`].
//!
//! The node's thread writes each Ready's entries and hard state (the `write` system call, quick)
//! and begins a sync of the log ([`NodeStorage::begin_sync`]); one sync thread runs the fsync
//! (about a millisecond) without the storage's lock and posts [`Event::Synced`] to the node's
//! loop, which meanwhile steps acknowledgements, takes proposals, applies what is committed and
//! answers clients. When the event arrives the loop finishes the sync, and only then reports
//! the Readys it covered with `RawNode::on_persist_ready` and sends their persisted messages
//! (append acknowledgements and votes promise durable state). This is raft-core's asynchronous
//! persistence (`raft-core/docs/async.md`) with the fsync as the only part off the thread.
//!
//! One sync is in flight at a time. The Readys that arrive meanwhile are held, in order, and
//! written together once it is finished, followed at once by the next sync, which covers them
//! all (group commit). Holding them rather than writing them during the fsync keeps every fsync
//! proven by a sync mark right after the records it covered (`storage-disk`'s `sync_ticket`
//! rules): recovery then tells a torn write from corruption exactly as with a synchronous sync.
//! The disk is kept busy anyway: the next fsync starts as soon as the loop sees the last one end.
//!
//! A Ready's hard state is written after its entries and after every earlier Ready's, so a
//! stored commit index never covers entries that a later Ready replaces. A Ready that needs no
//! fsync (only its commit index moved) is reported at once if nothing is in flight, and
//! otherwise with the Readys before it.
//!
//! Installing a leader's snapshot stays synchronous ([`Persistence::flush`]): the Readys before
//! it are written and synced first, on the node's thread, then the snapshot. So does adopting a
//! snapshot made on another thread (a rename and a checkpoint, which fsyncs the log under the
//! storage's lock, after the fsync in flight).
//!
//! A failed fsync fails the storage: the error reaches the loop with the event, the loop stops
//! the node, and nothing the failed sync covered is ever reported persisted or acknowledged.

use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread;

use raft_core::eraftpb::{Entry, HardState, Message};
use storage_disk::{FinishedSync, SyncTicket};

use super::NodeError;
use crate::event::Event;
use crate::storage::NodeStorage;

/// What one Ready hands over for persisting.
#[derive(Debug, Default)]
pub(super) struct ReadyWrite {
    /// The Ready's number.
    pub number: u64,
    /// Its entries (`Ready::take_shared_entries`), if it has any.
    pub entries: Option<Arc<Vec<Entry>>>,
    /// Its hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// Whether it must be durable before its persisted messages leave (`Ready::must_sync`).
    pub must_sync: bool,
    /// Its persisted messages.
    pub messages: Vec<Message>,
}

/// Readys now durable: report every Ready up to `number` with `RawNode::on_persist_ready`, then
/// send `messages` (theirs, in Ready order).
#[derive(Debug)]
pub(super) struct Durable {
    pub number: u64,
    pub messages: Vec<Message>,
}

/// The sync in flight and what it makes durable.
#[derive(Debug)]
struct InFlight {
    id: u64,
    number: u64,
    messages: Vec<Message>,
}

/// The node's persistence: see the module documentation.
pub(super) struct Persistence {
    storage: NodeStorage,
    /// To the sync thread: the syncs to run, each with its id.
    syncs: Sender<(u64, SyncTicket)>,
    in_flight: Option<InFlight>,
    /// Readys handed over while a sync was in flight, not written yet, in order.
    held: Vec<ReadyWrite>,
    last_id: u64,
    /// Fsyncs handed to the sync thread (`INFO`'s `log_fsyncs`).
    pub(super) syncs_run: u64,
    /// Entries written (`INFO`'s `log_entries_written`).
    pub(super) entries_written: u64,
}

impl Persistence {
    /// Starts the sync thread, which reports on `events` (the node's loop).
    pub fn new(storage: NodeStorage, events: Sender<Event>) -> Result<Persistence, NodeError> {
        let (syncs, jobs) = channel::<(u64, SyncTicket)>();
        thread::Builder::new().name("sync".into()).spawn(move || {
            for (id, ticket) in jobs {
                let finished = Box::new(ticket.run());
                if events.send(Event::Synced { id, finished }).is_err() {
                    return;
                }
            }
        })?;
        Ok(Persistence {
            storage,
            syncs,
            in_flight: None,
            held: Vec::new(),
            last_id: 0,
            syncs_run: 0,
            entries_written: 0,
        })
    }

    /// Takes a Ready's writes. Returns what is durable at once, if anything (a Ready that needs
    /// no fsync, with nothing in flight before it).
    pub fn submit(&mut self, ready: ReadyWrite) -> Result<Option<Durable>, NodeError> {
        if self.in_flight.is_some() {
            self.held.push(ready);
            return Ok(None);
        }
        self.write_and_sync(vec![ready])
    }

    /// The sync thread ran sync `id`. Finishes it; if it is the one in flight, returns what it
    /// made durable, after writing the Readys held meanwhile and starting their sync. A failed
    /// fsync is an error: the node must stop.
    pub fn on_synced(
        &mut self,
        id: u64,
        finished: FinishedSync,
    ) -> Result<Option<Durable>, NodeError> {
        if let Err(e) = self.storage.finish_sync(finished) {
            // Nothing it or the held Readys carried is ever reported: the storage refuses every
            // later write, and the node stops.
            self.in_flight = None;
            self.held.clear();
            return Err(e.into());
        }
        let Some(done) = self.in_flight.take_if(|f| f.id == id) else {
            // A sync that `flush` already covered.
            return Ok(None);
        };
        let mut durable = Durable {
            number: done.number,
            messages: done.messages,
        };
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            if let Some(more) = self.write_and_sync(held)? {
                durable.number = more.number;
                durable.messages.extend(more.messages);
            }
        }
        Ok(Some(durable))
    }

    /// Makes every Ready handed over durable now, on this thread: writes the held ones and
    /// syncs the log (after the fsync in flight, if any, which the sync thread still reports).
    /// For installing a snapshot, which must follow them.
    pub fn flush(&mut self) -> Result<Option<Durable>, NodeError> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(None);
        };
        let held = std::mem::take(&mut self.held);
        let mut durable = Durable {
            number: in_flight.number,
            messages: in_flight.messages,
        };
        if !held.is_empty() {
            self.write(&held)?;
        }
        self.storage.sync()?;
        for ready in held {
            durable.number = ready.number;
            durable.messages.extend(ready.messages);
        }
        Ok(Some(durable))
    }

    /// Writes `readys` (nothing in flight) and, if one of them must be durable before its
    /// messages leave, hands a sync to the sync thread; otherwise they are durable as the
    /// node's contract has it (a commit index alone is recorded with the next sync).
    fn write_and_sync(&mut self, readys: Vec<ReadyWrite>) -> Result<Option<Durable>, NodeError> {
        debug_assert!(self.in_flight.is_none());
        self.write(&readys)?;
        let must_sync = readys.iter().any(|r| r.must_sync);
        let mut number = 0;
        let mut messages = Vec::new();
        for ready in readys {
            number = ready.number;
            messages.extend(ready.messages);
        }
        if must_sync {
            let ticket = self.storage.begin_sync()?;
            if !ticket.is_empty() {
                self.last_id += 1;
                let id = self.last_id;
                self.syncs
                    .send((id, ticket))
                    .map_err(|_| NodeError::Invalid("the sync thread stopped".to_string()))?;
                self.in_flight = Some(InFlight {
                    id,
                    number,
                    messages,
                });
                self.syncs_run += 1;
                return Ok(None);
            }
        }
        Ok(Some(Durable { number, messages }))
    }

    /// Writes the entries of `readys` with one `write` (a later Ready's entries replace the
    /// suffix of an earlier one's they conflict with, as appending each in turn would), then
    /// the last hard state.
    fn write(&mut self, readys: &[ReadyWrite]) -> Result<(), NodeError> {
        let hard_state = readys.iter().rev().find_map(|r| r.hard_state);
        self.entries_written += readys
            .iter()
            .filter_map(|r| r.entries.as_ref())
            .map(|e| e.len() as u64)
            .sum::<u64>();
        let mut with_entries = readys.iter().filter_map(|r| r.entries.as_deref());
        match (with_entries.next(), with_entries.next()) {
            (None, _) => self.storage.write(&[], hard_state)?,
            (Some(only), None) => self.storage.write(only, hard_state)?,
            (Some(first), Some(second)) => {
                let mut merged: Vec<Entry> = first.clone();
                for entries in std::iter::once(second).chain(with_entries) {
                    if let (Some(head), Some(next)) = (merged.first(), entries.first()) {
                        let keep = next.index.saturating_sub(head.index);
                        merged.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                    }
                    merged.extend(entries.iter().cloned());
                }
                self.storage.write(&merged, hard_state)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
