//! The follower's side of replication: accepting appends and heartbeats, forwarding proposals.

use super::{forward, Raft, INVALID_ID};
use crate::error::{Error, Result};
use crate::storage::Storage;
use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, info};

impl<T: Storage> Raft<T> {
    /// Accepts an append from the leader if our log holds the entry before its entries (§5.3), and
    /// answers with what matched or with a rejection hint for fast backtracking.
    pub(super) fn handle_append_entries(&mut self, m: Message) -> Result<()> {
        if self.pending_request_snapshot != 0 {
            // Waiting for a snapshot: remind the leader instead of appending (raft-rs).
            self.send_request_snapshot();
            return Ok(());
        }
        let committed = self.raft_log.committed;
        if m.index < committed {
            // Everything up to our commit index matches the leader's log already (Log Matching):
            // report it so the leader can skip ahead.
            self.send(Message {
                msg_type: MessageType::MsgAppendResponse as i32,
                to: m.from,
                index: committed,
                commit: committed,
                ..Default::default()
            });
            return Ok(());
        }
        let (index, log_term, commit) = (m.index, m.log_term, m.commit);
        match self
            .raft_log
            .maybe_append_owned(index, log_term, commit, m.entries)
        {
            Ok(Some(last_new_index)) => {
                let commit = self.raft_log.committed;
                self.send_append_ack(m.from, last_new_index, commit);
                Ok(())
            }
            Ok(None) => {
                // Hint: our largest index at or below the probe whose term is at most the probe's
                // term. The leader resumes from there, skipping whole conflicting terms (raft-rs).
                let start = m.index.min(self.raft_log.last_index());
                let (hint_index, hint_term) =
                    self.raft_log.find_conflict_by_term(start, m.log_term);
                debug!(self.log(), "rejecting append: log mismatch";
                    "index" => m.index, "log_term" => m.log_term,
                    "hint_index" => hint_index, "hint_term" => ?hint_term);
                let commit = self.raft_log.committed;
                self.send(Message {
                    msg_type: MessageType::MsgAppendResponse as i32,
                    to: m.from,
                    index: m.index,
                    reject: true,
                    reject_hint: hint_index,
                    log_term: hint_term.unwrap_or(0),
                    commit,
                    ..Default::default()
                });
                Ok(())
            }
            Err(Error::Invariant(reason)) => Err(Error::InvalidMessage {
                msg_type: MessageType::MsgAppend,
                from: m.from,
                reason,
            }),
            Err(e) => Err(e),
        }
    }

    /// Learns the commit index from a heartbeat (validation has checked it is within our log).
    pub(super) fn handle_heartbeat(&mut self, m: &Message) {
        self.raft_log.commit_to(m.commit);
        if self.pending_request_snapshot != 0 {
            self.send_request_snapshot();
            return;
        }
        let commit = self.raft_log.committed;
        self.send(Message {
            msg_type: MessageType::MsgHeartbeatResponse as i32,
            to: m.from,
            commit,
            context: m.context.clone(),
            ..Default::default()
        });
    }

    /// Forwards a proposal to the leader, or drops it when there is none or forwarding is off.
    /// A stamped proposal (see `forward`) goes on only to the leader of its stamp's term; where it
    /// stops, its origin is told it was not appended.
    pub(super) fn forward_proposal(&mut self, mut m: Message) -> Result<()> {
        if self.leader_id == INVALID_ID {
            info!(self.log(), "no leader: dropping proposal"; "term" => self.term);
            self.refuse_forward(&m);
            return Err(Error::ProposalDropped);
        }
        if self.disable_proposal_forwarding {
            info!(self.log(), "proposal forwarding is disabled: dropping proposal";
                "leader" => self.leader_id);
            self.refuse_forward(&m);
            return Err(Error::ProposalDropped);
        }
        if forward::Stamp::of(&m).is_some_and(|s| s.term != self.term) {
            debug!(self.log(), "dropping a proposal stamped for another term's leader";
                "term" => self.term);
            self.refuse_forward(&m);
            return Err(Error::ProposalDropped);
        }
        m.to = self.leader_id;
        // Forwarded proposals travel with term 0 whatever the sender put there (raft-rs rejects
        // anything else).
        m.term = 0;
        self.send(m);
        Ok(())
    }
}
