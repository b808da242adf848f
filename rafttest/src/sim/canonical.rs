//! The entry at each (index, term) is the one its leader appended, wherever it shows up: in a
//! Ready handed out for persisting, in an append sent, in the entries applied. And a snapshot
//! sent holds the state machine of the entries committed up to its index.
//!
//! A leader appends exactly one entry at each index of its term, so an (index, term) names one
//! entry for the whole run (but for a singleton that led a term it crashed before persisting:
//! its entries of that term never left it, and it may lead that term again after restarting, so
//! they are forgotten when it crashes). The first time the simulator sees one is in the Ready of the leader
//! that appended it, or in an append that leader sends before any Ready hands the entry out (a
//! LightReady's messages, after an automatic proposal such as leaving a joint configuration):
//! either way it comes from that leader's memory, since an entry reaches a disk only through a
//! Ready, and that copy is the canonical one. A copy read back from a disk that flipped a bit,
//! lost a payload or returned another record differs from it, even when it still decodes, has the
//! right index and term and is a well-formed write: the checksums of `storage-disk` must stop it,
//! and this check notices if they did not (the entries are compared whole: type, payload,
//! context).

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::eraftpb::{Entry, EntryType, Snapshot};

use super::node::{decode_write, StateMachine};
use super::Sim;
use raft_core::eraftpb::{Message, MessageType};

/// The canonical entry of every (index, term) seen, and the node it was first seen on.
#[derive(Debug, Default)]
pub(super) struct Canonical {
    entries: BTreeMap<(u64, u64), (Entry, u64)>,
}

/// A short form of an entry for a report.
fn show(e: &Entry) -> String {
    format!(
        "{}/{} type {} data {:02x?} context {:02x?}",
        e.index,
        e.term,
        e.entry_type,
        &e.data[..e.data.len().min(32)],
        &e.context[..e.context.len().min(32)]
    )
}

impl Canonical {
    /// Entries node `id` hands out for persisting: the first copy of each is the canonical one,
    /// every later copy must equal it.
    pub fn on_ready(&mut self, id: u64, entries: &[Entry]) -> Result<(), String> {
        for e in entries {
            self.entries
                .entry((e.index, e.term))
                .or_insert_with(|| (e.clone(), id));
        }
        self.check(id, "hands out for persisting", entries)
    }

    /// Node `id` crashed holding durably the term `durable_term`: entries of later terms it
    /// was the first to hand out never left it (a leader sends nothing of a term before the term
    /// is durable), and it may append others at the same indexes and terms after restarting.
    pub fn forget_undurable(&mut self, id: u64, durable_term: u64) {
        self.entries
            .retain(|&(_, term), (_, origin)| *origin != id || term <= durable_term);
    }

    /// The entries of an append node `id` sends (described by `does`): each must be the
    /// canonical one, or, if the entry was never seen, be of the append's own term (the leader
    /// that appended it sends it from memory; anyone else must have had it from a Ready or an
    /// append).
    pub fn on_append(
        &mut self,
        id: u64,
        does: &str,
        term: u64,
        entries: &[Entry],
    ) -> Result<(), String> {
        for e in entries {
            if e.term == term {
                self.entries
                    .entry((e.index, e.term))
                    .or_insert_with(|| (e.clone(), id));
            }
        }
        self.check(id, does, entries)
    }

    /// Entries node `id` hands out or applies (`does` says which): each must be the canonical
    /// one.
    pub fn check(&self, id: u64, does: &str, entries: &[Entry]) -> Result<(), String> {
        for e in entries {
            match self.entries.get(&(e.index, e.term)) {
                Some((canonical, _)) if canonical == e => {}
                Some((canonical, origin)) => {
                    return Err(format!(
                        "entry identity: node {id} {does} {}, where {} was appended at that \
                         index in that term (first seen on node {origin})",
                        show(e),
                        show(canonical)
                    ))
                }
                None => {
                    return Err(format!(
                        "entry identity: node {id} {does} {}, which no leader appended",
                        show(e)
                    ))
                }
            }
        }
        Ok(())
    }
}

impl Canonical {
    /// A snapshot node `id` sends holds the state machine that applying the committed entries up
    /// to its index gives (`applied` holds the term and payload applied at each index, by any
    /// node). Indexes nobody applied yet (below an older snapshot) leave it unchecked.
    pub fn check_snapshot(
        &self,
        id: u64,
        snapshot: &Snapshot,
        applied: &BTreeMap<u64, (u64, Bytes)>,
    ) -> Result<(), String> {
        let Some(meta) = snapshot.metadata.as_ref() else {
            return Ok(());
        };
        let Some(sm) = StateMachine::decode(snapshot) else {
            return Err(format!(
                "corrupt snapshot: node {id} sends a snapshot at {}/{} whose data does not decode",
                meta.index, meta.term
            ));
        };
        // The bootstrap snapshot (index 1) holds the empty state machine.
        let mut kv = BTreeMap::new();
        for index in 2..=meta.index {
            let Some((term, _)) = applied.get(&index) else {
                return Ok(());
            };
            let Some((e, _)) = self.entries.get(&(index, *term)) else {
                return Ok(());
            };
            if e.entry_type == EntryType::EntryNormal as i32 {
                if let Some((key, value)) = decode_write(&e.data) {
                    kv.insert(key, value);
                }
            }
        }
        if sm.kv != kv {
            return Err(format!(
                "corrupt snapshot: node {id} sends a snapshot at {}/{} holding {:?}, where the \
                 entries committed up to it give {kv:?}",
                meta.index, meta.term, sm.kv
            ));
        }
        Ok(())
    }
}

impl Sim {
    /// The entries of an append are the ones their leaders appended, and a snapshot holds the
    /// state machine of the entries committed up to its index: corrupt data is never sent.
    pub(super) fn check_payload_sent(&mut self, m: &Message) -> Result<(), String> {
        match m.msg_type() {
            MessageType::MsgAppend if !m.entries.is_empty() => {
                let does = format!("sends to node {} in an append", m.to);
                self.canonical.on_append(m.from, &does, m.term, &m.entries)
            }
            MessageType::MsgSnapshot => match m.snapshot.as_deref() {
                Some(snapshot) => {
                    self.canonical
                        .check_snapshot(m.from, snapshot, self.checker.applied())
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
