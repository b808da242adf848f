//! One node over `MemStorage` and the application around it: persisting and applying what each
//! Ready hands out, and compacting now and then.

use crate::config::logger;
use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, RawNode, Storage, INVALID_ID};
use storage_mem::MemStorage;

/// One node with its storage and the index of the last entry its (empty) state machine applied.
pub struct Peer {
    /// The node.
    pub raw: RawNode<MemStorage>,
    /// Its storage (shared with the node).
    pub store: MemStorage,
    /// The last index applied by the state machine.
    pub applied: u64,
    /// Whether committed conf changes are handed to [`RawNode::apply_conf_change`] as an
    /// application does (the default); when off the node keeps its configuration, whatever
    /// entries commit.
    pub applies_conf_changes: bool,
}

impl Peer {
    /// A node with `config` over `store`, having applied what the node says it applied.
    pub fn new(config: &Config, store: MemStorage) -> Peer {
        let raw = RawNode::new(config, store.clone(), &logger()).expect("fixture config is valid");
        let applied = raw.raft.raft_log.applied;
        Peer {
            raw,
            store,
            applied,
            applies_conf_changes: true,
        }
    }

    /// The node's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Handles one Ready (if any) as an application does: persist snapshot, entries and hard
    /// state, apply committed entries, advance. Returns the messages to send, or what the core
    /// handed out that an application could not persist, apply or send: a Ready that fails, a
    /// snapshot or entries the storage refuses, an entry to apply out of order or before it is
    /// stored, a message with a wrong sender or no recipient, a stored commit index beyond the
    /// stored log (a restart would fail).
    pub fn handle_ready(&mut self) -> Result<Vec<Message>, String> {
        if !self.raw.has_ready() {
            return Ok(Vec::new());
        }
        let mut rd = self
            .raw
            .ready()
            .map_err(|e| format!("ready() failed: {e}"))?;
        let mut out = rd.take_messages();
        {
            let mut store = self.store.wl();
            if !rd.snapshot().is_empty() {
                store
                    .apply_snapshot(rd.snapshot().clone())
                    .map_err(|e| format!("the Ready's snapshot cannot be stored: {e}"))?;
                // Restoring the snapshot applies everything it covers.
                self.applied = rd.snapshot().metadata.as_ref().map_or(0, |m| m.index);
            }
            store.append(rd.entries()).map_err(|e| {
                format!(
                    "the Ready's entries cannot be stored ({e}): {:?}",
                    rd.entries()
                        .iter()
                        .map(|e| (e.index, e.term))
                        .collect::<Vec<_>>()
                )
            })?;
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(committed)?;
        let mut light = self
            .raw
            .advance(rd)
            .map_err(|e| format!("advance() failed: {e}"))?;
        if let Some(commit) = light.commit_index() {
            self.store.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed)?;
        self.raw.advance_apply();

        let id = self.id();
        for m in &out {
            // Forwarded requests keep their sender (raft-rs): a transfer names the transferee.
            let forwarded = [
                MessageType::MsgTransferLeader,
                MessageType::MsgReadIndex,
                MessageType::MsgPropose,
            ]
            .iter()
            .any(|t| m.msg_type == *t as i32);
            if (m.from != id && !forwarded) || m.to == INVALID_ID {
                return Err(format!(
                    "node {id} emitted a message with a wrong sender or no recipient: {}",
                    raft_proto::describe_message(m)
                ));
            }
        }
        let commit = self.store.rl().hard_state().commit;
        let last = self.stored_last_index();
        if commit > last {
            return Err(format!(
                "the stored hard state commits {commit} beyond the stored log's end {last}: a \
                 restart would fail"
            ));
        }
        Ok(out)
    }

    /// The last index in storage (0 for an empty one).
    fn stored_last_index(&self) -> u64 {
        self.store.last_index().unwrap_or(0)
    }

    /// Applies committed entries, checking they come in order, once each, and are stored
    /// locally; conf changes go to the node if [`Peer::applies_conf_changes`].
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let id = self.id();
        let stored = self.stored_last_index();
        for e in entries {
            if e.index != self.applied + 1 {
                return Err(format!(
                    "node {id} was handed entry {} to apply after applying {}",
                    e.index, self.applied
                ));
            }
            if e.index > stored {
                return Err(format!(
                    "node {id} was handed entry {} to apply before it was stored (storage ends \
                     at {stored})",
                    e.index
                ));
            }
            self.applied = e.index;
            if self.applies_conf_changes {
                if let Some(Ok(cc)) = decode_conf_change(&e) {
                    // A refused change is skipped by every node alike.
                    let _ = self.raw.apply_conf_change(&cc);
                }
            }
        }
        Ok(())
    }

    /// Snapshots storage at the applied index and compacts the log behind it, as an application
    /// does from time to time; nothing happens when there is nothing new to snapshot.
    pub fn compact(&mut self) {
        let index = self.applied;
        let conf = self.raw.raft.prs.conf().to_conf_state();
        let mut store = self.store.wl();
        if index == 0
            || index > store.hard_state().commit
            || index <= store.snapshot_metadata().index
        {
            return;
        }
        store
            .create_snapshot(index, Some(conf), bytes::Bytes::new())
            .expect("snapshot at the applied index");
        store
            .compact(index)
            .expect("compaction behind the snapshot");
    }
}

/// A deep copy of a storage (clones of a `MemStorage` share their data): what a node restarted
/// from a copy of another's disk starts over.
pub fn fork_store(store: &MemStorage) -> MemStorage {
    let copy = MemStorage::new();
    *copy.wl() = store.rl().clone();
    copy
}
