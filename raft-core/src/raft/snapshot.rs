//! Snapshots: a leader sending one to a follower whose next entries were compacted away, a
//! follower restoring from one, the application's report on a sent snapshot, and a follower asking
//! for one (raft-rs `request_snapshot`).

use super::{Raft, StateRole, INVALID_ID};
use crate::confchange;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tracker::{Configuration, ProgressState};
use crate::StorageError;
use raft_proto::eraftpb::{Message, MessageType, Snapshot};
use slog::{debug, info, warn};

impl<T: Storage> Raft<T> {
    /// Sends `to` a snapshot instead of entries it can no longer get from the log (or that it
    /// asked for), and holds back appends to it until the snapshot is reported. Returns whether a
    /// snapshot was sent.
    pub(super) fn send_snapshot(&mut self, to: u64) -> bool {
        let Some(pr) = self.prs.get(to) else {
            return false;
        };
        if !pr.recent_active {
            // It may be down: a snapshot can be large, wait until it answers (raft-rs, etcd).
            debug!(self.log(), "not sending a snapshot to a peer not recently active"; "to" => to);
            return false;
        }
        let request_index = pr.pending_request_snapshot;
        let snapshot = match self.raft_log.snapshot(request_index, to) {
            Ok(snapshot) => snapshot,
            Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable)) => {
                debug!(self.log(), "snapshot temporarily unavailable; will retry"; "to" => to);
                return false;
            }
            Err(e) => {
                warn!(self.log(), "cannot get a snapshot for a follower"; "to" => to, "error" => %e);
                return false;
            }
        };
        let (index, term) = snapshot
            .metadata
            .as_ref()
            .map_or((0, 0), |m| (m.index, m.term));
        if index == 0 || index < request_index {
            warn!(self.log(), "storage returned an unusable snapshot"; "to" => to,
                "index" => index, "requested" => request_index);
            return false;
        }
        let Some(pr) = self.prs.get_mut(to) else {
            return false;
        };
        pr.become_snapshot(index);
        debug!(self.log(), "sending snapshot; appends paused"; "to" => to, "index" => index,
            "term" => term, "first_index" => self.raft_log.first_index(),
            "commit" => self.raft_log.committed);
        self.send(Message {
            msg_type: MessageType::MsgSnapshot as i32,
            to,
            snapshot: Some(Box::new(snapshot)),
            ..Default::default()
        });
        true
    }

    /// The application reports on a snapshot sent to `m.from` (`reject` means it failed).
    pub(super) fn handle_snapshot_status(&mut self, m: &Message) {
        let Some(pr) = self.prs.get_mut(m.from) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        if m.reject {
            // Probe again from what is known to match; a new snapshot follows if still needed.
            pr.pending_snapshot = 0;
        }
        pr.become_probe();
        // After a success wait for the follower's answer, after a failure for a heartbeat.
        pr.pause();
        pr.pending_request_snapshot = 0;
        let next = pr.next_idx;
        if m.reject {
            debug!(self.log(), "snapshot failed; probing again"; "to" => m.from);
        } else {
            debug!(self.log(), "snapshot sent; probing after it"; "to" => m.from,
                "next" => next);
        }
    }

    /// A follower (or candidate, which became one) receives a snapshot from the leader.
    pub(super) fn handle_snapshot(&mut self, m: &Message) {
        let Some(snapshot) = m.snapshot.clone() else {
            return;
        };
        let (index, term) = snapshot
            .metadata
            .as_ref()
            .map_or((0, 0), |meta| (meta.index, meta.term));
        let restored = self.restore(*snapshot);
        let answer = if restored {
            info!(self.log(), "restored from a snapshot"; "index" => index, "term" => term,
                "from" => m.from);
            self.raft_log.last_index()
        } else {
            info!(self.log(), "ignored a snapshot"; "index" => index, "term" => term,
                "commit" => self.raft_log.committed);
            self.raft_log.committed
        };
        // An acknowledgement of a restored snapshot promises it is durable, so it is sent after
        // the Ready carrying the snapshot is persisted (MsgAppendResponse always is).
        self.send(Message {
            msg_type: MessageType::MsgAppendResponse as i32,
            to: m.from,
            index: answer,
            ..Default::default()
        });
    }

    /// Replaces the log and membership with `snapshot`. Returns false, changing at most the commit
    /// index, when the snapshot is stale, already matched by the log, or describes an impossible
    /// membership.
    ///
    /// Unlike etcd and raft-rs, a snapshot whose membership does not include this node is accepted:
    /// a node being added can be sent a snapshot older than its addition, and it learns of the
    /// addition from the entries that follow. It simply cannot campaign until then.
    pub fn restore(&mut self, snapshot: Snapshot) -> bool {
        let Some(meta) = snapshot.metadata.as_ref() else {
            return false;
        };
        let (index, term) = (meta.index, meta.term);
        let committed = self.raft_log.committed;
        if index < committed {
            return false;
        }
        // Only a snapshot covering the index this node asked for answers its request. An older
        // one (sent before the request, delivered late) must not replace the log: the entries
        // past it may already be acknowledged, and wiping them would lose what a quorum was
        // counted on (found by the simulator's progress check).
        let requested =
            self.pending_request_snapshot != 0 && index >= self.pending_request_snapshot;
        if index == committed && (!requested || !self.raft_log.match_term(index, term)) {
            // Nothing new: the log already holds everything up to the commit index, and a snapshot
            // contradicting a committed entry must never replace it (etcd ignores any snapshot at
            // or below the commit index). Only a snapshot the node asked for is taken at it.
            return false;
        }
        if self.state != StateRole::Follower {
            warn!(self.log(), "only a follower restores a snapshot"; "state" => ?self.state);
            return false;
        }
        if !requested && self.raft_log.match_term(index, term) {
            // The log already holds the snapshot's last entry: everything up to it is committed.
            info!(self.log(), "fast-forwarded the commit index to the snapshot";
                "commit" => self.raft_log.committed, "index" => index, "term" => term);
            self.raft_log.commit_to(index);
            return false;
        }
        if self.has_unapplied_conf_change() {
            // The application still has to apply a membership change it was handed (or will be):
            // it calls `apply_conf_change` against the configuration of the moment, which a
            // restore would already have replaced with the snapshot's (found by the simulator,
            // whose nodes apply in the background). The leader sends the snapshot again later.
            info!(self.log(), "a committed membership change is not applied yet: snapshot deferred";
                "index" => index, "applied" => self.raft_log.applied);
            return false;
        }
        // Validation refused a snapshot without voters; anything else must be a possible one.
        let conf = match confchange::restore(&meta.conf_state.clone().unwrap_or_default()) {
            Ok(conf) => conf,
            Err(e) => {
                warn!(self.log(), "refused a snapshot with an impossible membership"; "error" => %e);
                return false;
            }
        };
        self.raft_log.restore(snapshot);
        let next_idx = self.raft_log.last_index() + 1;
        // Start the tracker afresh: nothing known about anyone's log survives a restore.
        self.prs.apply_conf(Configuration::default(), next_idx);
        self.prs.apply_conf(conf, next_idx);
        self.pending_request_snapshot = 0;
        true
    }

    /// Asks the leader for a snapshot covering at least this node's last index (raft-rs
    /// `request_snapshot`, used by applications that lost their state machine). Refused with
    /// [`Error::RequestSnapshotDropped`] on a leader, without a known leader, while a snapshot is
    /// pending or already requested, or when the last entry is not of the current term.
    pub fn request_snapshot(&mut self) -> Result<()> {
        let refuse = |reason: &str| {
            info!(self.log(), "dropping the snapshot request"; "reason" => reason);
            Err(Error::RequestSnapshotDropped)
        };
        if self.state == StateRole::Leader {
            return refuse("a leader cannot request a snapshot");
        }
        if self.leader_id == INVALID_ID {
            return refuse("no leader");
        }
        if self.raft_log.unstable_snapshot().is_some() || self.pending_request_snapshot != 0 {
            return refuse("a snapshot is already pending");
        }
        let (last_index, last_term) = self.raft_log.last_index_and_term()?;
        if last_term != self.term {
            return refuse("the last entry is not of the current term");
        }
        self.pending_request_snapshot = last_index;
        self.send_request_snapshot();
        Ok(())
    }

    /// Sends the pending snapshot request: a rejection whose `request_snapshot` names the index
    /// to cover (the raft-rs wire form).
    pub(super) fn send_request_snapshot(&mut self) {
        let last_index = self.raft_log.last_index();
        let log_term = self.raft_log.term(last_index).unwrap_or(0);
        self.send(Message {
            msg_type: MessageType::MsgAppendResponse as i32,
            to: self.leader_id,
            index: self.raft_log.committed,
            reject: true,
            reject_hint: last_index,
            log_term,
            request_snapshot: self.pending_request_snapshot,
            ..Default::default()
        });
    }
}
