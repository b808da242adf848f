//! The leader's side of the protocol: taking office, proposals, heartbeat ticks, check-quorum.

use super::{forward, Raft, StateRole, INVALID_ID};
use crate::error::{Error, Result};
use crate::storage::{Storage, NO_LIMIT};
use crate::tracker::ProgressState;
use raft_proto::eraftpb::{Entry, Message, MessageType};
use raft_proto::payload_size;
use slog::{debug, info, warn};

impl<T: Storage> Raft<T> {
    /// Becomes leader of the current term and appends the term's empty entry, whose commit tells
    /// everyone which entries of earlier terms are committed (§5.4.2, thesis §6.4).
    pub fn become_leader(&mut self) {
        debug_assert!(
            self.state != StateRole::Follower,
            "follower cannot become leader"
        );
        let term = self.term;
        let next_idx = self.raft_log.last_index() + 1;
        self.prs.start_tracking(next_idx);
        self.reset(term);
        self.leader_id = self.id;
        self.state = StateRole::Leader;
        self.led_term = term;
        let id = self.id;
        if let Some(pr) = self.prs.get_mut(id) {
            // The leader trivially has its own log: it is "replicating" to itself.
            pr.become_replicate();
        }
        // Entries of earlier terms in the log may hold a conf change not applied yet: accept no
        // new one until everything this leader inherited is applied.
        self.pending_conf_index = self.raft_log.last_index();
        let empty = Entry {
            term,
            index: self.raft_log.last_index() + 1,
            ..Default::default()
        };
        self.raft_log.append(std::slice::from_ref(&empty));
        self.appends_pending = true;
        info!(self.log(), "became leader"; "term" => term);
    }

    pub(super) fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout {
            self.election_elapsed = 0;
            if self.check_quorum {
                self.check_quorum_active();
            }
            if self.state != StateRole::Leader {
                return;
            }
            if let Some(transferee) = self.lead_transferee {
                // It did not win within an election timeout: accept proposals again.
                info!(self.log(), "leadership transfer timed out"; "to" => transferee);
                self.abort_leader_transfer();
            }
        }
        if self.heartbeat_elapsed >= self.heartbeat_timeout {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    /// Steps down unless a quorum was heard from during the last election timeout (thesis §6.2).
    fn check_quorum_active(&mut self) {
        let id = self.id;
        if !self.prs.quorum_recently_active(id) {
            warn!(
                self.log(),
                "stepping down: a quorum was not active in the last election timeout"
            );
            let term = self.term;
            self.become_follower(term, INVALID_ID);
        }
    }

    pub(super) fn step_leader(&mut self, m: Message, msg_type: MessageType) -> Result<()> {
        match msg_type {
            MessageType::MsgBeat => {
                self.bcast_heartbeat();
                return Ok(());
            }
            MessageType::MsgCheckQuorum => {
                self.check_quorum_active();
                return Ok(());
            }
            MessageType::MsgPropose => {
                if forward::is_stamped(&m) {
                    return self.propose_stamped(m);
                }
                if let Some(transferee) = self.lead_transferee {
                    debug!(self.log(), "dropping proposal: leadership transfer in progress";
                        "to" => transferee);
                    return Err(Error::ProposalDropped);
                }
                return self.propose_entries(m.entries);
            }
            MessageType::MsgReadIndex => {
                if !self.prs.is_voter(self.id) {
                    // A leader kept on after its removal cannot confirm anything by a quorum.
                    return Err(Error::ReadIndexDropped);
                }
                self.leader_read_index(m);
                return Ok(());
            }
            _ => {}
        }
        if self.prs.get(m.from).is_none() {
            debug!(self.log(), "no progress for the sender"; "from" => m.from, "msg" => ?msg_type);
            return match msg_type {
                MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse => {
                    Err(Error::StepPeerNotFound {
                        msg_type,
                        from: m.from,
                    })
                }
                _ => Ok(()),
            };
        }
        match msg_type {
            MessageType::MsgAppendResponse => self.handle_append_response(&m),
            MessageType::MsgHeartbeatResponse => self.handle_heartbeat_response(&m),
            MessageType::MsgSnapStatus => self.handle_snapshot_status(&m),
            MessageType::MsgTransferLeader => self.handle_transfer_leader(&m),
            MessageType::MsgUnreachable => {
                if let Some(pr) = self.prs.get_mut(m.from) {
                    if pr.state == ProgressState::Replicate {
                        pr.become_probe();
                    }
                }
                debug!(self.log(), "follower unreachable: probing it again"; "to" => m.from);
            }
            _ => {
                debug!(self.log(), "leader ignored message"; "msg" => ?msg_type, "from" => m.from);
            }
        }
        Ok(())
    }

    /// Appends proposed entries to the leader's log. They are sent at the next flush, together with
    /// everything else proposed since the last one.
    pub(super) fn propose_entries(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Err(Error::InvalidMessage {
                msg_type: MessageType::MsgPropose,
                from: self.id,
                reason: "a proposal must carry at least one entry",
            });
        }
        if !self.prs.is_voter(self.id) {
            // Removed or demoted (a leader kept on by `step_down_on_removal = false`): it must not
            // grow a log it no longer leads for as a member.
            debug!(
                self.log(),
                "dropping proposal: this leader is no longer a voter"
            );
            return Err(Error::ProposalDropped);
        }
        let conf_change = self
            .check_proposed_conf_changes(&entries)
            .inspect_err(|e| {
                info!(self.log(), "refused a conf change proposal"; "error" => %e);
            })?;
        if !self.increase_uncommitted_size(&entries) {
            debug!(self.log(), "dropping proposal: the uncommitted size limit is reached";
                "uncommitted" => self.uncommitted_size, "limit" => self.max_uncommitted_size);
            return Err(Error::ProposalDropped);
        }
        let mut index = self.raft_log.last_index();
        for e in entries.iter_mut() {
            index += 1;
            e.term = self.term;
            e.index = index;
        }
        if let Some(pos) = conf_change {
            self.pending_conf_index = entries[pos].index;
        }
        self.raft_log.append(&entries);
        self.appends_pending = true;
        Ok(())
    }

    /// A leader's own proposal of one entry, without building a message: the same checks as a
    /// `MsgPropose` (transfer, membership, conf change validation, uncommitted size), then the entry
    /// is moved into the log.
    pub(crate) fn propose_one(&mut self, mut entry: Entry) -> Result<()> {
        if self.lead_transferee.is_some() || !self.prs.is_voter(self.id) {
            return Err(Error::ProposalDropped);
        }
        if super::decode_conf_change(&entry).is_some() {
            return self.propose_entries(vec![entry]);
        }
        if !self.increase_uncommitted_size(std::slice::from_ref(&entry)) {
            debug!(self.log(), "dropping proposal: the uncommitted size limit is reached";
                "uncommitted" => self.uncommitted_size, "limit" => self.max_uncommitted_size);
            return Err(Error::ProposalDropped);
        }
        entry.term = self.term;
        entry.index = self.raft_log.last_index() + 1;
        if self.raft_log.unstable.snapshot.is_none()
            && entry.index == self.raft_log.unstable.offset + self.raft_log.unstable.len() as u64
        {
            self.raft_log.unstable.push(entry);
        } else {
            self.raft_log.append_owned(vec![entry]);
        }
        self.appends_pending = true;
        Ok(())
    }

    /// Accounts for proposed payloads; false when they would pass `max_uncommitted_size`. A proposal
    /// is always accepted when nothing is uncommitted, so one oversized entry cannot block forever,
    /// and one without payload always is (raft-rs: the empty entries of elections and of leaving
    /// a joint configuration must never be dropped).
    fn increase_uncommitted_size(&mut self, entries: &[Entry]) -> bool {
        if self.max_uncommitted_size == NO_LIMIT {
            return true;
        }
        let size: u64 = entries.iter().map(payload_size).sum();
        if size > 0
            && self.uncommitted_size > 0
            && self.uncommitted_size.saturating_add(size) > self.max_uncommitted_size
        {
            return false;
        }
        self.uncommitted_size = self.uncommitted_size.saturating_add(size);
        true
    }

    /// Releases the uncommitted-size budget of entries that have been committed.
    pub(crate) fn reduce_uncommitted_size(&mut self, entries: &[Entry]) {
        if self.state != StateRole::Leader || self.max_uncommitted_size == NO_LIMIT {
            return;
        }
        let size: u64 = entries.iter().map(payload_size).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(size);
    }
}
