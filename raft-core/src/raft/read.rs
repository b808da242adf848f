//! Linearizable reads (thesis §6.4): `read_index` on the leader (confirmed by a heartbeat round,
//! or by the lease), forwarded by followers, and answered with a [`ReadState`].

use super::{Raft, StateRole, INVALID_ID};
use crate::config::ReadOnlyOption;
use crate::error::{Error, Result};
use crate::quorum::VoteResult;
use crate::read_only::ReadState;
use crate::storage::Storage;
use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, info};

impl<T: Storage> Raft<T> {
    /// Whether the commit index is at an entry of this leader's term: only then is it known to
    /// cover everything any earlier leader committed (thesis §6.4 step 1).
    pub(super) fn committed_in_current_term(&self) -> bool {
        self.raft_log
            .term(self.raft_log.committed)
            .is_ok_and(|t| t == self.term)
    }

    /// A leader receives a read request, its own or forwarded by a follower.
    pub(super) fn leader_read_index(&mut self, m: Message) {
        // A single voter waits for its first commit too: after a restart its commit index is the
        // stored one, which may lag entries it committed (and the application applied) before the
        // crash; only its first commit in the new term covers them again. (etcd answers a single
        // voter at once; the simulator found the stale read that allows.)
        if !self.committed_in_current_term() {
            debug!(self.log(), "read request waits for the leader's first commit in its term";
                "from" => m.from);
            self.read_only.wait_for_commit(m);
            return;
        }
        self.start_read(m);
    }

    fn start_read(&mut self, m: Message) {
        let committed = self.raft_log.committed;
        if self.prs.is_singleton(self.id) {
            // A single voter confirms its leadership by itself.
            self.answer_read(m, committed);
            return;
        }
        if self.read_only.option == ReadOnlyOption::LeaseBased && self.lease_valid() {
            self.answer_read(m, committed);
            return;
        }
        // Safe reads, and lease reads while the lease cannot be vouched for: a round of
        // heartbeats acknowledged by a quorum confirms leadership.
        let seq = self.read_only.add_request(committed, m, self.id);
        self.bcast_heartbeat_for_round(seq);
    }

    /// Whether this leader's lease holds now: a quorum of voters acknowledged a heartbeat sent
    /// less than an election timeout ago (minus a tick of rounding), so none of them has voted for
    /// anyone else since; and no `MsgTimeoutNow` went out in this term (the transferee's campaign
    /// passes leases). Rests on clocks running at the same rate, as every lease does.
    fn lease_valid(&self) -> bool {
        if self.lead_transferee.is_some() || self.timeout_now_sent {
            // A transferee told to campaign may do so past the leases at any time, even after
            // the transfer was abandoned here: fresh acknowledgements prove nothing any more.
            return false;
        }
        let now = self.ticks;
        let timeout = self.election_timeout as u64;
        self.prs.conf().voters.vote_result(|id| {
            if id == self.id {
                return Some(true);
            }
            let sent = self.prs.get(id)?.heartbeat_acked_at;
            (sent > 0 && now + 1 < sent.saturating_add(timeout)).then_some(true)
        }) == VoteResult::Won
    }

    /// Starts the reads that waited for the leader's first commit in its term.
    pub(super) fn release_reads_waiting_for_commit(&mut self) {
        if !self.read_only.has_waiting() || !self.committed_in_current_term() {
            return;
        }
        for m in self.read_only.take_waiting() {
            self.start_read(m);
        }
    }

    /// A heartbeat response acknowledging a read round: once a quorum of voters acknowledged it,
    /// that round's requests and every earlier one are answered.
    pub(super) fn ack_read_round(&mut self, from: u64, seq: u64) {
        let Some(acks) = self.read_only.recv_ack(from, seq).map(<[u64]>::to_vec) else {
            return;
        };
        if self.quorum_of(&acks) {
            self.release_reads_up_to(seq);
        }
    }

    fn quorum_of(&self, acks: &[u64]) -> bool {
        self.prs
            .conf()
            .voters
            .vote_result(|id| acks.binary_search(&id).is_ok().then_some(true))
            == VoteResult::Won
    }

    fn release_reads_up_to(&mut self, seq: u64) {
        for read in self.read_only.advance(seq) {
            self.answer_read(read.req, read.index);
        }
    }

    /// Re-checks pending read rounds after a configuration change: acknowledgements that were
    /// not a quorum of the old voters may be one of the new (a removal can leave the leader alone).
    pub(super) fn recheck_read_rounds(&mut self) {
        let confirmed = self
            .read_only
            .rounds()
            .rev()
            .find(|(_, acks)| self.quorum_of(acks))
            .map(|(seq, _)| seq);
        if let Some(seq) = confirmed {
            self.release_reads_up_to(seq);
        }
    }

    /// Answers a confirmed read at `index`: a `ReadState` for this node's own request, a
    /// `MsgReadIndexResp` for a follower's.
    fn answer_read(&mut self, req: Message, index: u64) {
        let ctx = req
            .entries
            .first()
            .map(|e| e.data.clone())
            .unwrap_or_default();
        if req.from == INVALID_ID || req.from == self.id {
            self.read_only.push_confirmed(ReadState {
                index,
                request_ctx: ctx,
            });
            return;
        }
        self.send(Message {
            msg_type: MessageType::MsgReadIndexResp as i32,
            to: req.from,
            index,
            entries: req.entries,
            ..Default::default()
        });
    }

    /// A follower forwards a read request to its leader.
    pub(super) fn forward_read_index(&mut self, mut m: Message) -> Result<()> {
        if self.leader_id == INVALID_ID {
            return self.drop_read_request(&m);
        }
        m.to = self.leader_id;
        m.term = 0;
        self.send(m);
        Ok(())
    }

    /// Drops a read request that cannot be served or forwarded: an error for this node's own
    /// request (the caller retries), silently for one from the network (its sender times out).
    pub(super) fn drop_read_request(&self, m: &Message) -> Result<()> {
        info!(self.log(), "no leader: dropping read request"; "term" => self.term,
            "from" => m.from);
        if m.from == self.id {
            Err(Error::ReadIndexDropped)
        } else {
            Ok(())
        }
    }

    /// A follower receives the leader's answer to a request it forwarded.
    pub(super) fn handle_read_index_resp(&mut self, m: &Message) {
        let ctx = m
            .entries
            .first()
            .map(|e| e.data.clone())
            .unwrap_or_default();
        self.read_only.push_confirmed(ReadState {
            index: m.index,
            request_ctx: ctx,
        });
        // The answer's index is the leader's commit index, and that entry is of the leader's term
        // (a leader answers reads only once it has committed an entry of its own term): if this
        // log holds that entry, everything up to it is committed (raft-rs does the same).
        let before = self.raft_log.committed;
        if m.term != 0
            && m.index > before
            && m.index <= self.raft_log.last_index()
            && self.raft_log.maybe_commit(m.index, m.term)
        {
            debug!(self.log(), "commit index moved by a read answer";
                "from" => m.from, "commit" => m.index, "was" => before);
        }
    }

    /// Forgets every pending read when leadership is lost. The node's own requests are reported
    /// back (`Ready::dropped_read_requests`) so the application can retry them; requests forwarded
    /// by followers are dropped, and those followers retry after their own timeout.
    pub(super) fn drop_pending_reads(&mut self) {
        if self.read_only.pending_count() == 0 {
            return;
        }
        let id = self.id;
        for req in self.read_only.clear() {
            if req.from == INVALID_ID || req.from == id {
                let ctx = req
                    .entries
                    .first()
                    .map(|e| e.data.clone())
                    .unwrap_or_default();
                self.read_only.push_dropped(ctx);
            }
        }
        debug!(self.log(), "dropped pending reads on losing leadership";
            "state" => ?self.state);
    }

    /// Whether this node can answer reads by itself right now (a leader). Followers forward.
    pub fn is_leader(&self) -> bool {
        self.state == StateRole::Leader
    }
}
