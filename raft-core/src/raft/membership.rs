//! Membership changes on a running node: validating a proposed conf change, switching to the
//! configuration an applied one produces, and leaving a joint configuration automatically.

use super::{Raft, StateRole, INVALID_ID};
use crate::confchange::Changer;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tracker::Configuration;
use prost::Message as _;
use raft_proto::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType,
};
use raft_proto::ConfChangeI;
use slog::{debug, info};

/// The conf change an entry carries, in the v2 form: `None` for a normal entry, an error when the
/// entry claims to be a conf change but its data does not decode.
pub fn decode_conf_change(
    e: &Entry,
) -> Option<std::result::Result<ConfChangeV2, prost::DecodeError>> {
    match EntryType::try_from(e.entry_type) {
        Ok(EntryType::EntryConfChange) => {
            Some(ConfChange::decode(e.data.clone()).map(ConfChangeI::into_v2))
        }
        Ok(EntryType::EntryConfChangeV2) => Some(ConfChangeV2::decode(e.data.clone())),
        _ => None,
    }
}

impl<T: Storage> Raft<T> {
    /// Checks the conf changes among proposed `entries` before a leader appends them, so that a
    /// change that could not be applied is refused now, with an error to the proposer, instead of
    /// being committed and failing on every node. Returns the position of the conf change, if any.
    ///
    /// The rules (etcd-io/raft `Step` on `MsgProp`, made strict): at most one conf change in flight,
    /// i.e. the previous one is applied (the current configuration is then exactly the one the new
    /// change will apply to); inside a joint configuration only the leave is accepted, outside it
    /// the leave is refused; and the change itself must pass the [`Changer`] against the current
    /// configuration. With `disable_conf_change_validation` nothing is checked.
    pub(super) fn check_proposed_conf_changes(&self, entries: &[Entry]) -> Result<Option<usize>> {
        let mut found = None;
        for (pos, e) in entries.iter().enumerate() {
            let Some(decoded) = decode_conf_change(e) else {
                continue;
            };
            if self.disable_conf_change_validation {
                found = Some(pos);
                continue;
            }
            if found.is_some() {
                return Err(Error::ConfChange(
                    "a proposal may carry at most one conf change".to_string(),
                ));
            }
            found = Some(pos);
            let cc = decoded.map_err(|e| {
                Error::ConfChange(format!("the proposed conf change does not decode: {e}"))
            })?;
            let applied = self.raft_log.applied;
            if self.pending_conf_index > applied {
                return Err(Error::ConfChange(format!(
                    "the conf change at index {} is not applied yet (applied index {applied})",
                    self.pending_conf_index
                )));
            }
            let joint = self.prs.conf().voters.is_joint();
            if joint && !cc.leave_joint() {
                return Err(Error::ConfChange(
                    "the configuration is joint: only the leave-joint change may be proposed"
                        .to_string(),
                ));
            }
            Changer::new(self.prs.conf()).apply(&cc)?;
        }
        Ok(found)
    }

    /// Applies a committed conf change: switches to the configuration it produces and returns that
    /// configuration. Refused, with the configuration unchanged, when the change cannot be applied
    /// to the current one.
    pub fn apply_conf_change(&mut self, cc: &ConfChangeV2) -> Result<ConfState> {
        let cfg = Changer::new(self.prs.conf()).apply(cc)?;
        Ok(self.switch_to_config(cfg))
    }

    /// Makes `cfg` the configuration and reacts to it: a leader no longer a voter steps down (if
    /// configured); a leader commits what the new quorum allows and probes new members at once.
    fn switch_to_config(&mut self, cfg: Configuration) -> ConfState {
        let last_index = self.raft_log.last_index();
        let before: Vec<u64> = self.prs.ids().collect();
        self.prs.apply_conf(cfg, last_index + 1);
        let cs = self.prs.conf_state();
        info!(self.log(), "switched to configuration"; "conf" => %raft_proto::describe_conf_state(&cs));
        if self.state != StateRole::Leader {
            return cs;
        }
        if let Some(transferee) = self.lead_transferee {
            if !self.prs.is_voter(transferee) {
                info!(self.log(), "the transferee left the voters: transfer aborted";
                    "to" => transferee);
                self.abort_leader_transfer();
            }
        }
        if !self.prs.is_voter(self.id) {
            if self.step_down_on_removal {
                info!(self.log(), "no longer a voter: stepping down"; "term" => self.term);
                let term = self.term;
                self.become_follower(term, INVALID_ID);
            } else {
                info!(self.log(), "no longer a voter: leading on without counting itself";
                    "term" => self.term);
            }
            return cs;
        }
        // The new quorum may already hold a larger index (a removed voter was the one lagging),
        // and may already have confirmed pending reads.
        self.maybe_commit();
        self.recheck_read_rounds();
        // Probe the newcomers now rather than a heartbeat later: with next at the last index,
        // their first append carries the last entry, usually this very conf change.
        let newcomers: Vec<u64> = self.prs.ids().filter(|id| !before.contains(id)).collect();
        for id in newcomers {
            if let Some(pr) = self.prs.get_mut(id) {
                pr.next_idx = last_index.max(1);
            }
            self.mark_append_due(id);
            self.appends_pending = true;
        }
        cs
    }

    /// Records that the application applied entries up to `index`; a leader in a joint
    /// configuration with auto-leave then proposes the leave once the entry that entered it is
    /// applied (thesis §4.3: the leader moves the group out of the joint configuration).
    pub fn applied_to(&mut self, index: u64) {
        self.raft_log.applied_to(index);
        let applied = self.raft_log.applied;
        if self.state != StateRole::Leader
            || !self.prs.conf().auto_leave
            || applied < self.pending_conf_index
        {
            return;
        }
        let leave = Entry {
            entry_type: EntryType::EntryConfChangeV2 as i32,
            data: ConfChangeV2::default().encode_to_bytes(),
            ..Default::default()
        };
        let proposal = Message {
            msg_type: MessageType::MsgPropose as i32,
            from: self.id,
            entries: vec![leave],
            ..Default::default()
        };
        match self.step(proposal) {
            Ok(()) => info!(self.log(), "proposed leaving the joint configuration";
                "index" => self.pending_conf_index),
            Err(e) => debug!(self.log(), "could not propose leaving the joint configuration yet";
                "error" => %e),
        }
    }

    /// Whether committed entries not applied yet include a conf change (a node must not campaign
    /// then: it would lead with a configuration about to change). A log that cannot be read counts
    /// as yes, the safe answer.
    pub(super) fn has_unapplied_conf_change(&self) -> bool {
        let (applied, committed) = (self.raft_log.applied, self.raft_log.committed);
        // Entries compacted away are covered by a snapshot the state machine holds: applied.
        let from = (applied + 1).max(self.raft_log.first_index());
        if committed < from {
            return false;
        }
        match self
            .raft_log
            .slice(from, committed + 1, crate::storage::NO_LIMIT)
        {
            Ok(entries) => entries.iter().any(|e| decode_conf_change(e).is_some()),
            Err(_) => true,
        }
    }
}
