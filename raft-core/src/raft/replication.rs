//! The leader sending entries and heartbeats, handling their responses, and advancing the commit
//! index.

use super::{Raft, StateRole};
use crate::error::Error;
use crate::storage::Storage;
use crate::tracker::ProgressState;
use crate::StorageError;
use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, warn};

impl<T: Storage> Raft<T> {
    /// Sends what each follower is missing: new entries (as many size-limited appends as its window
    /// allows) or, when only the commit index moved, one empty append carrying it. A leader defers
    /// sending to this flush (run when a Ready is built), so all proposals and acknowledgements handled
    /// since the last Ready travel in one append per follower.
    pub fn flush_appends(&mut self) {
        if self.state != StateRole::Leader || !self.appends_pending {
            return;
        }
        self.appends_pending = false;
        let ids: Vec<u64> = self.prs.ids().filter(|id| *id != self.id).collect();
        for to in ids {
            let due = self
                .prs
                .get_mut(to)
                .is_some_and(|pr| std::mem::take(&mut pr.append_due));
            let mut allow_empty = self.commit_news_for(to) || due;
            while self.maybe_send_append(to, allow_empty) {
                allow_empty = false;
            }
        }
    }

    /// Whether `to` has not yet been sent the current commit index (and commits are broadcast).
    fn commit_news_for(&self, to: u64) -> bool {
        !self.skip_bcast_commit
            && self
                .prs
                .get(to)
                .is_some_and(|pr| pr.commit_sent < self.raft_log.committed)
    }

    /// Whether a flush would send anything.
    pub fn has_pending_appends(&self) -> bool {
        if self.state != StateRole::Leader || !self.appends_pending {
            return false;
        }
        let last_index = self.raft_log.last_index();
        self.prs.iter().any(|(id, pr)| {
            id != self.id
                && (!pr.is_paused()
                    || (pr.state == ProgressState::Replicate && self.commit_news_for(id)))
                && (pr.next_idx <= last_index
                    || pr.pending_request_snapshot != 0
                    || self.commit_news_for(id)
                    || pr.append_due)
        })
    }

    /// Sends one append to `to` if it is not paused and there is something to send (or
    /// `allow_empty`). Returns whether a message was sent.
    pub(crate) fn maybe_send_append(&mut self, to: u64, allow_empty: bool) -> bool {
        let Some(pr) = self.prs.get(to) else {
            return false;
        };
        if pr.is_paused() {
            if allow_empty
                && pr.state == ProgressState::Replicate
                && pr.commit_sent < self.raft_log.committed
            {
                return self.send_commit_only(to);
            }
            return false;
        }
        let next_idx = pr.next_idx;
        if pr.pending_request_snapshot != 0 || next_idx < self.raft_log.first_index() {
            // What it needs next was compacted away, or it asked: only a snapshot will do.
            return self.send_snapshot(to);
        }
        let prev_index = next_idx - 1;
        let entries = match self
            .raft_log
            .entries_for_append(next_idx, self.max_msg_size, to)
        {
            Ok(entries) => entries,
            Err(Error::Store(StorageError::Compacted)) => return self.send_snapshot(to),
            Err(Error::Store(StorageError::LogTemporarilyUnavailable)) => {
                // The storage loads them and calls `RawNode::on_entries_fetched(to)` when done.
                debug!(self.log(), "entries for a follower are being fetched"; "to" => to,
                    "next" => next_idx);
                return false;
            }
            Err(e) => {
                warn!(self.log(), "cannot read entries for a follower"; "to" => to,
                    "next" => next_idx, "error" => %e);
                return false;
            }
        };
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let log_term = match self.raft_log.term(prev_index) {
            Ok(term) => term,
            Err(Error::Store(StorageError::Compacted)) => return self.send_snapshot(to),
            Err(e) => {
                warn!(self.log(), "cannot read the term before a follower's next entry";
                    "to" => to, "index" => prev_index, "error" => %e);
                return false;
            }
        };
        let committed = self.raft_log.committed;
        let bytes: u64 = entries.iter().map(raft_proto::payload_size).sum();
        let Some(pr) = self.prs.get_mut(to) else {
            return false;
        };
        if let Some(last) = entries.last() {
            match pr.state {
                ProgressState::Replicate => {
                    pr.optimistic_update(last.index);
                    pr.ins.add(last.index, bytes);
                }
                ProgressState::Probe => pr.pause(),
                ProgressState::Snapshot => return false,
            }
        }
        pr.commit_sent = committed;
        self.send(Message {
            msg_type: MessageType::MsgAppend as i32,
            to,
            index: prev_index,
            log_term,
            entries,
            commit: committed,
            ..Default::default()
        });
        true
    }

    /// Tells a replicating follower whose window is full the new commit index, in an empty append
    /// that takes no window slot, so commits keep flowing while its acknowledgements are on the way
    /// (etcd-io/etcd#14633). Unlike etcd it names the follower's matched entry as the previous
    /// one, which the follower is known to hold, so even a reordered delivery is never rejected;
    /// the follower commits only up to that entry, the rule of etcd-io/raft#138.
    fn send_commit_only(&mut self, to: u64) -> bool {
        let Some(matched) = self.prs.get(to).map(|pr| pr.matched) else {
            return false;
        };
        let log_term = match self.raft_log.term(matched) {
            Ok(term) if matched >= self.raft_log.first_index().saturating_sub(1) => term,
            _ => return false,
        };
        let committed = self.raft_log.committed;
        if let Some(pr) = self.prs.get_mut(to) {
            pr.commit_sent = committed;
        }
        self.send(Message {
            msg_type: MessageType::MsgAppend as i32,
            to,
            index: matched,
            log_term,
            commit: committed,
            ..Default::default()
        });
        true
    }

    /// Makes sure `id` gets an append at the next flush, even an empty one.
    pub(crate) fn mark_append_due(&mut self, id: u64) {
        if let Some(pr) = self.prs.get_mut(id) {
            pr.append_due = true;
        }
        self.appends_pending = true;
    }

    /// Sends a heartbeat to every follower, carrying the newest pending read round so a round
    /// whose heartbeats or responses were lost is confirmed by the next one.
    pub(crate) fn bcast_heartbeat(&mut self) {
        let seq = self.read_only.last_pending_seq();
        self.bcast_heartbeat_for_round(seq);
    }

    /// Sends every follower a heartbeat whose context names read round `seq` (0: none) and this
    /// leader's current tick (see `read_only::encode_heartbeat_ctx`), when the leader will use
    /// them: for a read round, or under lease-based reads (the tick dates the lease). Otherwise
    /// the heartbeat carries no context, as raft-rs's does: no allocation per broadcast, and no
    /// shared buffer whose count every heartbeat and response would touch (the leader of every
    /// group of a multi-raft process steps these responses on every heartbeat).
    pub(crate) fn bcast_heartbeat_for_round(&mut self, seq: u64) {
        let ctx = if seq != 0 || self.read_only.option == crate::config::ReadOnlyOption::LeaseBased
        {
            crate::read_only::encode_heartbeat_ctx(seq, self.ticks)
        } else {
            bytes::Bytes::new()
        };
        let ids: Vec<u64> = self.prs.ids().filter(|id| *id != self.id).collect();
        for to in ids {
            self.send_heartbeat(to, ctx.clone());
        }
    }

    fn send_heartbeat(&mut self, to: u64, context: bytes::Bytes) {
        // Never tell a follower to commit past what it is known to hold: raft-rs followers panic on
        // a commit index beyond their log (INTEROP.md).
        let commit = self
            .prs
            .get(to)
            .map_or(0, |pr| pr.matched.min(self.raft_log.committed));
        self.send(Message {
            msg_type: MessageType::MsgHeartbeat as i32,
            to,
            commit,
            context,
            ..Default::default()
        });
    }

    pub(super) fn handle_append_response(&mut self, m: &Message) {
        let last_index = self.raft_log.last_index();
        let first_index = self.raft_log.first_index();
        let Some(pr) = self.prs.get_mut(m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.update_committed(m.commit);
        if m.reject {
            debug!(self.log(), "append rejected"; "from" => m.from, "index" => m.index,
                "hint" => m.reject_hint, "hint_term" => m.log_term);
            // The hint is the follower's last index whose term is at most the rejected entry's
            // term; looking that term up in our own log lets us skip whole terms at once (raft-rs).
            // A snapshot request's reminder names the follower's last entry (`reject_hint`,
            // `log_term`) and, like any acknowledgement, leaves only once that is durable. When
            // the entry is this leader's own, the follower holds everything up to it.
            let holds_own = m.request_snapshot != 0
                && m.log_term == self.term
                && self
                    .raft_log
                    .term(m.reject_hint)
                    .is_ok_and(|t| t == m.log_term);
            let mut next_probe = m.reject_hint;
            if m.log_term > 0 {
                next_probe = self
                    .raft_log
                    .find_conflict_by_term(m.reject_hint, m.log_term)
                    .0;
            }
            let Some(pr) = self.prs.get_mut(m.from) else {
                return;
            };
            if m.request_snapshot != 0 {
                // Counted as matched: a follower the quorum needs refuses appends until its
                // snapshot arrives, so without this the commit index (and any snapshot the
                // application can take) might never reach the index it asked for, and the group
                // would stall for good (found by the simulator).
                // raft-rs `request_snapshot`: the follower wants a snapshot covering this index.
                if pr.maybe_request_snapshot(m.index, m.request_snapshot) {
                    if pr.state == ProgressState::Replicate {
                        pr.become_probe();
                    }
                    self.appends_pending = true;
                }
                if holds_own && pr.maybe_update(m.reject_hint.min(last_index)) {
                    self.maybe_commit();
                }
                return;
            }
            if pr.maybe_decr_to(m.index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.appends_pending = true;
            }
            return;
        }
        let index = m.index.min(last_index);
        let updated = pr.maybe_update(index);
        // An answer at the matched index still tells a paused prober where it stands, so
        // replication resumes now instead of a heartbeat later (etcd-io/raft `stepLeader`). Only a
        // prober: for a follower in snapshot state it is no news (it may be a duplicate from
        // before the snapshot was sent), and only news ends that state (raft-rs and etcd agree).
        let resumes = pr.matched == index && pr.state == ProgressState::Probe;
        if !updated && !resumes {
            // A duplicate or stale acknowledgement.
            return;
        }
        if updated && pr.pending_request_snapshot != 0 && pr.matched >= pr.pending_request_snapshot
        {
            // The follower now holds what it asked a snapshot for (it installed one): the
            // request is met, whether or not the application reported the snapshot yet. An
            // answer that tells nothing new leaves a request alone.
            pr.pending_request_snapshot = 0;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Replicate => pr.ins.free_to(m.index),
            ProgressState::Snapshot => {
                if pr.snapshot_caught_up(first_index) {
                    // It applied the snapshot, or caught up by appends meanwhile: entries can
                    // flow again (etcd-io/etcd#10308).
                    pr.become_probe();
                    pr.become_replicate();
                }
            }
        }
        self.appends_pending = true;
        self.maybe_commit();
        if self.lead_transferee == Some(m.from) {
            // The transferee may have just caught up.
            self.maybe_send_timeout_now(m.from);
        }
    }

    pub(super) fn handle_heartbeat_response(&mut self, m: &Message) {
        if m.context.as_ref() == super::quiesce::QUIESCE_CTX {
            // Our followers never answer a quiescing heartbeat with its context.
            self.note_quiesce_unsupported(m.from);
        }
        let last_index = self.raft_log.last_index();
        // The echoed context: the read round it confirms and when the heartbeat was sent (a
        // context this leader could not have sent, from its future, is ignored).
        let round = crate::read_only::decode_heartbeat_ctx(&m.context)
            .filter(|(_, sent)| *sent <= self.ticks);
        let Some(pr) = self.prs.get_mut(m.from) else {
            return;
        };
        if let Some((_, sent)) = round {
            pr.heartbeat_acked_at = pr.heartbeat_acked_at.max(sent);
        }
        pr.update_committed(m.commit);
        pr.recent_active = true;
        pr.resume();
        // A full window may hide a lost message: free one slot so replication cannot stall.
        if pr.state == ProgressState::Replicate && pr.ins.full() {
            pr.ins.free_first_one();
        }
        if pr.matched < last_index || pr.pending_request_snapshot != 0 {
            // Lagging: send an append even if it carries nothing new (raft-rs and etcd do the same),
            // so an append or acknowledgement lost while replicating is noticed and repaired.
            pr.append_due = true;
            self.appends_pending = true;
        } else if pr.commit_sent < self.raft_log.committed {
            self.appends_pending = true;
        }
        if let Some((seq, _)) = round.filter(|(seq, _)| *seq != 0) {
            self.ack_read_round(m.from, seq);
        }
    }

    /// Advances the commit index to what a quorum has matched, if that entry is of this term.
    /// Returns whether it moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let index = self.prs.maximal_committed_index();
        let moved = self.raft_log.maybe_commit(index, self.term);
        if moved {
            // The leader's own progress reports the commit index it reached (raft-rs does the
            // same; `Status` shows it).
            let (id, committed) = (self.id, self.raft_log.committed);
            if let Some(pr) = self.prs.get_mut(id) {
                pr.update_committed(committed);
            }
            self.appends_pending = true;
            self.release_reads_waiting_for_commit();
        }
        moved
    }

    /// Entries up to (`index`, `term`) were persisted by the application.
    /// If those entries were replaced or truncated since they were handed out (a newer leader
    /// overwrote them), nothing is marked durable.
    pub fn on_persist_entries(&mut self, index: u64, term: u64) {
        self.on_persist_ready_entries(index, term, u64::MAX);
    }

    /// [`Raft::on_persist_entries`] for the report that the Readys numbered up to `ready` are
    /// persisted: entries handed out by a later Ready do not count.
    pub(crate) fn on_persist_ready_entries(&mut self, index: u64, term: u64, ready: u64) {
        if !self.raft_log.stable_entries_of(index, term, ready) {
            debug!(self.log(), "persisted entries were replaced meanwhile; not marking them stable";
                "index" => index, "term" => term);
            return;
        }
        if self.state == StateRole::Leader {
            let id = self.id;
            let persisted = self.raft_log.persisted;
            if let Some(pr) = self.prs.get_mut(id) {
                pr.maybe_update(persisted);
            }
            self.maybe_commit();
        }
    }
}
