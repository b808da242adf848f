//! The Ready handling: send, hand the writes to `persist` (which sends what waited for them once
//! their fsync returns), apply committed entries (answering the writes they carry) and membership
//! changes, serve the reads they make possible.

use raft_core::eraftpb::{ConfChangeType, Entry, EntryType};
use raft_core::raft::decode_conf_change;
use slog::{info, warn};

use super::persist::ReadyWrite;
use super::requests::own_sequence;
use super::{Node, NodeError};
use crate::kv::WriteEntry;
use crate::resp::Reply;

impl Node {
    /// Handles every Ready the node has, without waiting for any fsync: Readys are pipelined
    /// (`RawNode::advance_append_async`), and reported persisted when the sync thread says so.
    pub(super) fn handle_readies(&mut self) -> Result<(), NodeError> {
        while self.raw.has_ready() {
            let mut rd = self.raw.ready()?;
            let new_leader = rd
                .soft_state()
                .map(|ss| ss.leader_id)
                .filter(|leader| *leader != 0 && *leader != self.last_leader);
            // A leader's appends and heartbeats may leave before its own write (thesis §10.2.1).
            self.transport.send(rd.take_messages());
            if !rd.snapshot().is_empty() {
                // Installing stays synchronous: the Readys before it are made durable first.
                if let Some(durable) = self.persistence.flush()? {
                    self.on_durable(durable);
                }
                self.install_snapshot(rd.snapshot().clone())?;
            }
            let write = ReadyWrite {
                number: rd.number(),
                entries: rd.take_shared_entries(),
                hard_state: rd.hard_state().copied(),
                must_sync: rd.must_sync(),
                // Votes and append acknowledgements promise durable state: they wait for it.
                messages: rd.take_persisted_messages(),
            };
            let durable = self.persistence.submit(write)?;
            // Committed entries are handed out only once durable here: apply them now.
            self.apply_entries(rd.take_committed_entries());
            self.on_read_states(rd.take_read_states());
            let dropped: Vec<u64> = rd
                .dropped_read_requests()
                .iter()
                .filter_map(|ctx| own_sequence(self.cfg.id, ctx))
                .collect();
            self.raw.advance_append_async(rd);
            if let Some(durable) = durable {
                self.on_durable(durable);
            }
            self.raw.advance_apply();
            // Reads this node led and lost with its leadership: ask again (the next leader, or
            // at the next tick if none is known yet).
            for seq in dropped {
                self.send_read(seq);
            }
            if let Some(leader) = new_leader {
                // A new leader: a write forwarded to the old one, or appended by it and not
                // committed, may be lost. Propose every write not applied yet again at once
                // (the write sessions apply each once) rather than wait for its deadline.
                self.last_leader = leader;
                self.propose_again(|_| true);
            }
            // The replies this Ready made leave now.
            self.outbox.flush();
        }
        Ok(())
    }

    /// Applies committed entries not applied yet (a restart applies the log after the snapshot
    /// again), answering the writes this node took, then serves the reads now reachable.
    fn apply_entries(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.index <= self.sm.applied_index {
                continue;
            }
            match EntryType::try_from(entry.entry_type) {
                Ok(EntryType::EntryNormal) if entry.data.is_empty() => {}
                Ok(EntryType::EntryNormal) => {
                    let reply = match WriteEntry::decode(&entry.data) {
                        Ok(write) => self.sm.apply_write(&entry.context, write),
                        Err(e) => Reply::err(e),
                    };
                    self.answer(&entry.context, reply);
                }
                _ => self.apply_conf_change(&entry),
            }
            self.sm.applied_index = entry.index;
        }
        self.serve_confirmed_reads();
    }

    /// Applies a membership change: the Raft configuration, the address book and the transport
    /// follow it; a node that removed itself fails every request waiting on it.
    fn apply_conf_change(&mut self, entry: &Entry) {
        let cc = match decode_conf_change(entry) {
            Some(Ok(cc)) => cc,
            _ => {
                warn!(self.logger, "a conf change entry does not decode"; "index" => entry.index);
                self.answer(&entry.context, Reply::err("malformed membership change"));
                return;
            }
        };
        let cs = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => {
                // Every replica refuses it alike; the membership is unchanged.
                warn!(self.logger, "membership change refused"; "error" => %e);
                self.answer(&entry.context, Reply::err(e));
                return;
            }
        };
        info!(self.logger, "membership changed"; "voters" => ?cs.voters, "learners" => ?cs.learners);
        self.sm.conf_state = cs;
        for change in &cc.changes {
            let id = change.node_id;
            match ConfChangeType::try_from(change.change_type) {
                Ok(ConfChangeType::AddNode | ConfChangeType::AddLearnerNode) => {
                    if let Ok(addr) = String::from_utf8(cc.context.to_vec()) {
                        if !addr.is_empty() {
                            self.transport.set_peer(id, &addr);
                            self.sm.members.insert(id, addr);
                        }
                    }
                }
                Ok(ConfChangeType::RemoveNode) => {
                    self.sm.members.remove(&id);
                    self.transport.remove_peer(id);
                    if id == self.cfg.id {
                        info!(self.logger, "this node was removed from the cluster");
                        self.removed = true;
                    }
                }
                Err(_) => {}
            }
        }
        self.answer(&entry.context, Reply::ok());
        if self.removed {
            self.fail_everything("this node was removed from the cluster");
        }
    }
}
