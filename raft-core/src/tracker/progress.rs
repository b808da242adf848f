//! [`Progress`]: what a leader knows about one follower's log, and how it sends to it.

use super::Inflights;
use std::fmt;

/// How the leader is sending entries to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressState {
    /// Looking for where the logs match: one append per heartbeat interval, then wait for a reply.
    #[default]
    Probe,
    /// Streaming entries optimistically, limited by the inflight window.
    Replicate,
    /// A snapshot is being sent; appends wait until it is reported.
    Snapshot,
}

impl fmt::Display for ProgressState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ProgressState::Probe => "StateProbe",
            ProgressState::Replicate => "StateReplicate",
            ProgressState::Snapshot => "StateSnapshot",
        };
        f.write_str(name)
    }
}

/// The leader's view of one follower (or of itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    pub matched: u64,
    /// The index of the next entry to send.
    pub next_idx: u64,
    /// How entries are being sent.
    pub state: ProgressState,
    /// In probe state: an append was sent and no reply came yet.
    pub probe_sent: bool,
    /// The index of the snapshot being sent (snapshot state only).
    pub pending_snapshot: u64,
    /// The follower asked for a snapshot covering at least this index (raft-rs `request_snapshot`);
    /// 0 when it did not. The next send to it is a snapshot.
    pub pending_request_snapshot: u64,
    /// The follower was heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The leader's tick at which it sent the newest heartbeat this follower acknowledged in this
    /// term: the follower refuses other candidates for an election timeout after receiving it,
    /// which is what a leader lease rests on.
    pub heartbeat_acked_at: u64,
    /// The follower's own commit index, as last reported.
    pub committed_index: u64,
    /// The highest commit index this leader has sent to the follower in an append.
    pub commit_sent: u64,
    /// Whether the follower is a learner (replicated to, never counted).
    pub is_learner: bool,
    /// The follower must get an append at the leader's next flush even if it carries no entries
    /// (a heartbeat response showed it lags, it is new, or it is a transfer's target lagging).
    pub append_due: bool,
    /// The appends in flight to this follower.
    pub ins: Inflights,
}

impl Progress {
    /// A follower to be probed from `next_idx`, with an inflight window of `max_inflight` messages.
    pub fn new(next_idx: u64, max_inflight: usize) -> Progress {
        Progress {
            matched: 0,
            next_idx,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            pending_request_snapshot: 0,
            recent_active: false,
            heartbeat_acked_at: 0,
            committed_index: 0,
            commit_sent: 0,
            is_learner: false,
            append_due: false,
            ins: Inflights::new(max_inflight),
        }
    }

    /// Starts over for a new term: probe from `next_idx`, nothing known to be matched.
    pub fn reset(&mut self, next_idx: u64) {
        self.matched = 0;
        self.next_idx = next_idx;
        self.committed_index = 0;
        self.commit_sent = 0;
        self.heartbeat_acked_at = 0;
        self.append_due = false;
        self.recent_active = false;
        self.pending_request_snapshot = 0;
        self.reset_state(ProgressState::Probe);
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.ins.reset();
    }

    /// Moves to probe state, probing from just after what is known to match (or after the snapshot
    /// being sent, if it was the snapshot state).
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next_idx = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next_idx = self.matched + 1;
        }
    }

    /// Moves to replicate state, streaming from just after what is known to match.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_idx = self.matched + 1;
    }

    /// Moves to snapshot state for a snapshot at `snapshot_index`.
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// Records that the follower has everything up to `index`. Returns whether `matched` moved.
    /// Clears the probe pause, since the follower answered.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next_idx = self.next_idx.max(index + 1);
        updated
    }

    /// Records an append of entries up to `last_index` sent while replicating.
    pub fn optimistic_update(&mut self, last_index: u64) {
        self.next_idx = last_index + 1;
    }

    /// Handles a rejection of the append that followed `rejected`, with the follower's hint that its
    /// log may match up to `match_hint`. Returns false when the rejection is stale and was ignored.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            // Stale if it rejects something at or below what is already known to match.
            if rejected <= self.matched {
                return false;
            }
            self.next_idx = self.matched + 1;
            return true;
        }
        // In probe state only a rejection of the latest probe (the one after next_idx - 1) counts.
        if self.next_idx.checked_sub(1) != Some(rejected) {
            return false;
        }
        // Never probe at or below what is known to match (newer etcd clamps the same way).
        self.next_idx = rejected
            .min(match_hint.saturating_add(1))
            .max(self.matched + 1);
        self.probe_sent = false;
        true
    }

    /// Handles the follower's request for a snapshot covering `request_index`, carried by a
    /// rejection of `rejected` (its commit index). Returns false when the request is stale: while
    /// replicating, it rejects less than what is known to match (raft-rs applies the same rule, so
    /// mixed clusters agree). A request already pending is kept.
    pub fn maybe_request_snapshot(&mut self, rejected: u64, request_index: u64) -> bool {
        if self.state == ProgressState::Replicate && rejected < self.matched {
            return false;
        }
        if self.pending_request_snapshot == 0 {
            self.pending_request_snapshot = request_index;
        }
        self.probe_sent = false;
        true
    }

    /// Whether the follower has caught up with the leader's log through appends while a snapshot
    /// was in flight: everything it lacks can be sent as entries again (`first_index` is the
    /// leader's first readable index), so the snapshot is no longer needed (etcd-io/etcd#10308).
    pub fn snapshot_caught_up(&self, first_index: u64) -> bool {
        self.state == ProgressState::Snapshot
            && (self.matched >= self.pending_snapshot || self.matched + 1 >= first_index)
    }

    /// Whether the leader must hold back appends to this follower.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.ins.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// Notes that a probe was sent; no more until the follower answers or a heartbeat interval passes.
    pub fn pause(&mut self) {
        self.probe_sent = true;
    }

    /// Allows the next probe.
    pub fn resume(&mut self) {
        self.probe_sent = false;
    }

    /// Records the follower's reported commit index.
    pub fn update_committed(&mut self, committed_index: u64) {
        self.committed_index = self.committed_index.max(committed_index);
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
