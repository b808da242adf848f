//! Leadership transfer (thesis §3.10): the leader brings the chosen follower up to date, then tells
//! it to campaign at once with `MsgTimeoutNow`; proposals are refused meanwhile, and the transfer
//! is abandoned after an election timeout.

use super::{Raft, StateRole, INVALID_ID};
use crate::storage::Storage;
use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, info};

impl<T: Storage> Raft<T> {
    /// The leader handles a transfer request to `m.from` (its own, or forwarded by a follower).
    pub(super) fn handle_transfer_leader(&mut self, m: &Message) {
        let transferee = m.from;
        let Some(pr) = self.prs.get(transferee) else {
            debug!(self.log(), "ignored a transfer to a node outside the configuration";
                "to" => transferee);
            return;
        };
        if pr.is_learner {
            debug!(self.log(), "ignored a transfer to a learner"; "to" => transferee);
            return;
        }
        if let Some(current) = self.lead_transferee {
            if current == transferee {
                info!(self.log(), "transfer already in progress"; "to" => transferee);
                return;
            }
            info!(self.log(), "replacing the pending transfer"; "from" => current,
                "to" => transferee);
            self.abort_leader_transfer();
        }
        if transferee == self.id {
            debug!(self.log(), "already leader: ignored a transfer to self");
            return;
        }
        info!(self.log(), "transferring leadership"; "to" => transferee, "term" => self.term);
        // The transfer must finish within one election timeout.
        self.election_elapsed = 0;
        self.lead_transferee = Some(transferee);
        self.maybe_send_timeout_now(transferee);
    }

    /// Sends `MsgTimeoutNow` to the transferee if its log is up to date; otherwise makes sure it
    /// gets the missing entries first.
    pub(super) fn maybe_send_timeout_now(&mut self, transferee: u64) {
        let last_index = self.raft_log.last_index();
        let Some(matched) = self.prs.get(transferee).map(|pr| pr.matched) else {
            return;
        };
        if matched == last_index {
            info!(self.log(), "transferee is up to date: telling it to campaign";
                "to" => transferee);
            self.timeout_now_sent = true;
            self.send(Message {
                msg_type: MessageType::MsgTimeoutNow as i32,
                to: transferee,
                ..Default::default()
            });
        } else {
            self.mark_append_due(transferee);
            self.appends_pending = true;
        }
    }

    /// Abandons a pending leadership transfer.
    pub fn abort_leader_transfer(&mut self) {
        self.lead_transferee = None;
    }

    /// A follower is told by its leader to campaign now (the transfer's last step).
    pub(super) fn handle_timeout_now(&mut self, m: &Message) {
        if !self.promotable() {
            info!(self.log(), "ignored MsgTimeoutNow: not a voter"; "from" => m.from);
            return;
        }
        info!(self.log(), "received MsgTimeoutNow: campaigning for the transfer";
            "from" => m.from, "term" => self.term);
        // A transfer campaign skips pre-vote, and its vote requests pass the leader lease.
        self.hup(true);
    }

    /// Forgets the current leader (etcd's `ForgetLeader`): a follower that knows its leader is
    /// gone (say, the leader was removed or the application saw it fail) lets other candidates
    /// win at once instead of waiting out the lease that PreVote with CheckQuorum gives the old
    /// leader. Refused under lease-based reads, where forgetting the leader early could let a
    /// new leader serve writes while the old one still serves lease reads. Only a follower
    /// forgets; returns whether it did.
    pub fn forget_leader(&mut self) -> bool {
        if self.state != StateRole::Follower || self.leader_id == INVALID_ID {
            return false;
        }
        if self.read_only.option == crate::config::ReadOnlyOption::LeaseBased {
            info!(self.log(), "refused to forget the leader under lease-based reads";
                "leader" => self.leader_id);
            return false;
        }
        info!(self.log(), "forgetting the leader"; "leader" => self.leader_id, "term" => self.term);
        self.leader_id = INVALID_ID;
        true
    }
}
