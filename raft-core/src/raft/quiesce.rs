//! Quiescence (issue 17): a group with nothing to do stops ticking and heartbeating.
//!
//! A leader may put its group to sleep ([`Raft::quiesce`]) once every member has matched,
//! learned its last entry and answered lately, and nothing is pending (proposals, reads, a
//! membership change, a
//! transfer, a snapshot). It tells each follower in a last heartbeat whose context is
//! [`QUIESCE_CTX`]; a follower whose log and commit index then match the leader's sleeps too,
//! without answering (an answer would wake the leader). A sleeping node's `tick` does nothing at
//! all. Any message of the group, a proposal, a read, a campaign or [`Raft::wake`] wakes it,
//! except a caught-up follower's answer to a heartbeat that crossed the quiescing one.
//!
//! Why this is safe:
//! - Quiescence only stops timers. Every message is handled exactly as before, after waking, so
//!   votes, appends and commits follow the usual rules and nothing committed can be lost.
//! - A sleeping follower cannot notice that its leader died: the application's failure detector
//!   must call [`Raft::wake`] (CockroachDB wakes a range when a node's liveness lapses). Woken,
//!   the follower waits one election timeout, as if it had just heard from the leader, and then
//!   campaigns as usual.
//! - Lease reads do not survive a nap: the leader's logical clock stops while it sleeps, so its
//!   lease (counted in ticks since followers last acknowledged it) could otherwise outlive a
//!   real-time election elsewhere. Waking, a leader forgets every acknowledgement, moves its clock
//!   an election timeout on (so a late answer to a heartbeat from before the nap is too old to
//!   count) and sends a heartbeat round; until a quorum answers it, reads go through ReadIndex
//!   confirmation.
//! - A peer that does not know quiescence (raft-rs) answers the last heartbeat like any other,
//!   echoing its context: the leader wakes, and never puts the group to sleep again while that
//!   peer is a member, since it would time out and campaign.

use std::collections::BTreeSet;

use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, info};

use super::Raft;
use crate::storage::Storage;
use crate::tracker::ProgressState;
use crate::StateRole;

/// The context of the heartbeat by which a leader puts a follower to sleep. Distinct from the
/// contexts of read rounds (`read_only::encode_heartbeat_ctx`).
pub(crate) const QUIESCE_CTX: &[u8] = b"\xA6quiesce";

/// What quiescence keeps beside the core state.
#[derive(Debug, Default, Clone)]
pub(crate) struct Quiescence {
    /// Sleeping: ticks do nothing.
    pub(crate) asleep: bool,
    /// Peers that answered a quiescing heartbeat: they do not know quiescence.
    pub(crate) unsupported: BTreeSet<u64>,
}

/// Whether `m` is a leader's quiescing heartbeat.
pub(crate) fn is_quiesce_heartbeat(m: &Message) -> bool {
    m.msg_type == MessageType::MsgHeartbeat as i32 && m.context.as_ref() == QUIESCE_CTX
}

impl<T: Storage> Raft<T> {
    /// Whether the group is asleep on this node (see [`Raft::quiesce`]).
    pub fn is_quiesced(&self) -> bool {
        self.quiescence.asleep
    }

    /// Why this leader may not put its group to sleep now, or `None` if it may: it leads, every
    /// member (learners included) has matched its last entry and been told it is committed,
    /// everything is applied, and nothing is pending.
    pub fn quiesce_blocker(&self) -> Option<&'static str> {
        if self.state != StateRole::Leader {
            return Some("not the leader");
        }
        if self.quiescence.asleep {
            return Some("already asleep");
        }
        if self.lead_transferee.is_some() || self.timeout_now_sent {
            return Some("a leadership transfer is under way");
        }
        let last = self.raft_log.last_index();
        if self.raft_log.committed != last {
            return Some("entries are not committed");
        }
        if self.raft_log.applied != last {
            return Some("committed entries are not applied");
        }
        if self.read_only.pending_count() != 0 {
            return Some("reads are pending");
        }
        let conf = self.prs.conf();
        if !conf.voters.outgoing.is_empty() || !conf.learners_next.is_empty() {
            return Some("the configuration is joint");
        }
        if !self.raft_log.unstable_entries().is_empty() || self.has_pending_appends() {
            return Some("entries are not written yet");
        }
        for (id, pr) in self.prs.iter() {
            if id == self.id {
                continue;
            }
            if self.quiescence.unsupported.contains(&id) {
                return Some("a member does not know quiescence");
            }
            if pr.state != ProgressState::Replicate
                || pr.matched != last
                || pr.committed_index < last
                || pr.pending_request_snapshot != 0
            {
                return Some("a member is behind");
            }
            if !pr.recent_active {
                // Asleep, this leader would not notice it lost its quorum (check-quorum stops
                // with its clock), and napping again after every wake-up would keep it from ever
                // stepping down (found by the simulator, seed 5066).
                return Some("a member was not heard from lately");
            }
        }
        None
    }

    /// Puts the group to sleep if this leader may ([`Raft::quiesce_blocker`]): every follower is
    /// sent the quiescing heartbeat, and this node's ticks do nothing until it wakes. Returns
    /// whether it did.
    pub fn quiesce(&mut self) -> bool {
        if let Some(why) = self.quiesce_blocker() {
            debug!(self.log(), "cannot quiesce"; "reason" => why);
            return false;
        }
        let commit = self.raft_log.committed;
        let ids: Vec<u64> = self.prs.ids().filter(|id| *id != self.id).collect();
        for to in ids {
            self.send(Message {
                msg_type: MessageType::MsgHeartbeat as i32,
                to,
                commit,
                context: bytes::Bytes::from_static(QUIESCE_CTX),
                ..Default::default()
            });
        }
        self.quiescence.asleep = true;
        // Every member's progress is known (all matched the last entry and learned the commit)
        // and cannot change while asleep: free it, and rebuild it on waking (memory is what a
        // process of a million sleeping groups pays for).
        self.prs.stop_tracking();
        debug!(self.log(), "quiesced"; "commit" => commit);
        true
    }

    /// Wakes the group on this node: timers restart as if the leader had just been heard from;
    /// a leader forgets its followers' acknowledgements (its lease) and sends a heartbeat round.
    /// Does nothing if it is awake.
    pub fn wake(&mut self) {
        if !self.quiescence.asleep {
            return;
        }
        self.quiescence.asleep = false;
        // The logical clock stood still while asleep, however long the nap: move it a whole
        // election timeout on, so that an acknowledgement of a heartbeat sent before the nap,
        // arriving late, cannot pass for a fresh one and renew the lease (leases are measured
        // from a heartbeat's sending tick).
        self.ticks += u64::from(self.election_timeout);
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        if self.state == StateRole::Leader {
            // The progress freed by `quiesce`: when it fell asleep every member had matched the
            // last entry and learned the commit index, and any message since woke the group.
            // Acknowledgements (the lease) are not restored.
            let (last, committed) = (self.raft_log.last_index(), self.raft_log.committed);
            self.prs.start_tracking(last + 1);
            let id = self.id;
            for (peer, pr) in self.prs.iter_mut() {
                pr.matched = last;
                pr.become_replicate();
                pr.committed_index = committed;
                pr.commit_sent = committed;
                if peer != id {
                    pr.heartbeat_acked_at = 0;
                    pr.recent_active = false;
                }
            }
            self.bcast_heartbeat();
        }
        debug!(self.log(), "woke up");
    }

    /// Whether a sleeping leader may ignore `m` without waking: a caught-up member's answer to
    /// a heartbeat that crossed the quiescing one (a leader that quiesces on a heartbeat tick
    /// sends both in one flush). It asks for nothing (no read round) and reports nothing new
    /// (every member had matched the last entry and learned its commit when the leader fell
    /// asleep); the acknowledgement it carries would be forgotten on waking anyway.
    pub(super) fn is_idle_heartbeat_ack(&self, m: &Message, msg_type: MessageType) -> bool {
        self.state == StateRole::Leader
            && msg_type == MessageType::MsgHeartbeatResponse
            && m.term == self.term
            && m.context.as_ref() != QUIESCE_CTX
            && crate::read_only::decode_heartbeat_ctx(&m.context).is_none_or(|(seq, _)| seq == 0)
            && m.commit >= self.raft_log.committed
            && self.prs.is_member(m.from)
    }

    /// A follower receives its leader's quiescing heartbeat: it learns the commit index and
    /// sleeps if its log and commit index then match the leader's; otherwise it answers like any
    /// heartbeat, without the quiescing context, which wakes the leader.
    pub(super) fn handle_quiesce_heartbeat(&mut self, m: &Message) {
        self.raft_log.commit_to(m.commit);
        let caught_up = self.raft_log.committed == m.commit
            && self.raft_log.last_index() == m.commit
            && self.pending_request_snapshot == 0;
        if caught_up && m.from == self.leader_id {
            self.quiescence.asleep = true;
            debug!(self.log(), "quiesced by the leader"; "leader" => m.from, "commit" => m.commit);
            return;
        }
        let mut answer = m.clone();
        answer.context = bytes::Bytes::new();
        self.handle_heartbeat(&answer);
    }

    /// A leader hears a quiescing heartbeat echoed back: that follower does not know
    /// quiescence. It is remembered, so the group is not put to sleep again while it is a member.
    pub(super) fn note_quiesce_unsupported(&mut self, from: u64) {
        if self.quiescence.unsupported.insert(from) {
            info!(self.log(), "a peer does not know quiescence: the group stays awake";
                "peer" => from);
        }
    }
}
