//! Elections: timeouts, pre-votes (thesis §9.6), campaigns and vote handling (§5.2, §5.4.1).

use super::{Raft, StateRole, INVALID_ID};
use crate::error::Result;
use crate::quorum::VoteResult;
use crate::storage::Storage;
use raft_proto::eraftpb::{Message, MessageType};
use slog::{debug, info, warn};

/// Context of a campaign started by `MsgTimeoutNow` during a leadership transfer; such vote requests
/// bypass the leader lease. The bytes match raft-rs so mixed clusters agree.
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// What kind of campaign to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CampaignType {
    /// A pre-vote round: ask without bumping the term.
    PreElection,
    /// A real election.
    Election,
    /// A real election forced by a leadership transfer.
    Transfer,
}

impl<T: Storage> Raft<T> {
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        // The cheap comparison first: an idle tick must not touch the voter list.
        if self.election_elapsed >= self.randomized_election_timeout && self.promotable() {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    /// Starts an election (or a pre-vote round when pre-vote is on and this is not a transfer).
    pub(crate) fn hup(&mut self, transfer: bool) {
        if self.state == StateRole::Leader {
            debug!(self.log(), "ignoring MsgHup: already leader");
            return;
        }
        if !self.promotable() {
            warn!(self.log(), "not a voter: cannot campaign");
            return;
        }
        if self.has_unapplied_conf_change() {
            // It would lead with a configuration about to change (etcd-io/raft `hup`).
            warn!(self.log(), "committed conf changes are not applied yet: cannot campaign";
                "applied" => self.raft_log.applied, "committed" => self.raft_log.committed);
            return;
        }
        if self.term == u64::MAX {
            warn!(
                self.log(),
                "the term cannot grow any further: refusing to campaign"
            );
            return;
        }
        info!(self.log(), "starting a new election"; "term" => self.term);
        let kind = if transfer {
            CampaignType::Transfer
        } else if self.pre_vote {
            CampaignType::PreElection
        } else {
            CampaignType::Election
        };
        self.campaign(kind);
    }

    fn become_pre_candidate(&mut self) {
        // A pre-candidate keeps its term and vote: it only asks whether it could win.
        self.prs.stop_tracking();
        self.state = StateRole::PreCandidate;
        self.prs.reset_votes();
        self.leader_id = INVALID_ID;
        info!(self.log(), "became pre-candidate"; "term" => self.term);
    }

    fn become_candidate(&mut self) {
        let term = self.term + 1;
        self.prs.stop_tracking();
        self.reset(term);
        self.vote = self.id;
        self.state = StateRole::Candidate;
        info!(self.log(), "became candidate"; "term" => term);
    }

    pub(crate) fn campaign(&mut self, kind: CampaignType) {
        let (vote_type, term) = if kind == CampaignType::PreElection {
            self.become_pre_candidate();
            (MessageType::MsgRequestPreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::MsgRequestVote, self.term)
        };
        let id = self.id;
        if self.poll(id, vote_type, true) == VoteResult::Won {
            // A single voter wins at once.
            if kind == CampaignType::PreElection {
                self.campaign(CampaignType::Election);
            } else {
                // It has not persisted its new term and vote yet: hold back what it sends.
                self.term_not_durable = true;
                self.become_leader();
            }
            return;
        }
        let (last_index, last_term) = match self.raft_log.last_index_and_term() {
            Ok(last) => last,
            Err(e) => {
                // Asking with term 0 only makes this candidacy look less up to date: safe.
                warn!(self.log(), "cannot read the term of the last entry"; "error" => %e);
                (self.raft_log.last_index(), 0)
            }
        };
        let (commit, commit_term) = self.commit_and_term();
        let context = if kind == CampaignType::Transfer {
            bytes::Bytes::from_static(CAMPAIGN_TRANSFER)
        } else {
            bytes::Bytes::new()
        };
        let voters: Vec<u64> = self.prs.conf().voters.ids();
        for to in voters.into_iter().filter(|v| *v != id) {
            info!(self.log(), "requesting vote"; "to" => to, "term" => term, "msg" => ?vote_type);
            self.send(Message {
                msg_type: vote_type as i32,
                to,
                term,
                index: last_index,
                log_term: last_term,
                commit,
                commit_term,
                priority: self.priority,
                context: context.clone(),
                ..Default::default()
            });
        }
    }

    /// The commit index and the term of the entry there (both 0 if that term cannot be read), as
    /// raft-rs sends them with votes.
    fn commit_and_term(&self) -> (u64, u64) {
        let commit = self.raft_log.committed;
        match self.raft_log.term(commit) {
            Ok(term) => (commit, term),
            Err(_) => (0, 0),
        }
    }

    /// Records a vote and returns the election's outcome so far.
    fn poll(&mut self, from: u64, vote_type: MessageType, granted: bool) -> VoteResult {
        self.prs.record_vote(from, granted);
        let (yes, no, result) = self.prs.tally_votes();
        info!(self.log(), "vote tally"; "from" => from, "granted" => granted,
            "msg" => ?vote_type, "approvals" => yes, "rejections" => no);
        result
    }

    /// A rejection that tells the requester our term, commit index and its term.
    pub(super) fn vote_rejection(&self, to: u64, response_type: MessageType) -> Message {
        let (commit, commit_term) = self.commit_and_term();
        Message {
            msg_type: response_type as i32,
            to,
            term: self.term,
            reject: true,
            commit,
            commit_term,
            ..Default::default()
        }
    }

    pub(super) fn handle_vote_request(&mut self, m: &Message, msg_type: MessageType) -> Result<()> {
        let response_type = if msg_type == MessageType::MsgRequestVote {
            MessageType::MsgRequestVoteResponse
        } else {
            MessageType::MsgRequestPreVoteResponse
        };
        // We can vote for a candidate we already voted for (a retry), for anyone when we have not
        // voted and follow no leader, and in a pre-vote for anyone asking about a later term.
        let can_vote = self.vote == m.from
            || (self.vote == INVALID_ID && self.leader_id == INVALID_ID)
            || (msg_type == MessageType::MsgRequestPreVote && m.term > self.term);
        let up_to_date = match self.raft_log.is_up_to_date(m.index, m.log_term) {
            Ok(up_to_date) => up_to_date,
            Err(e) => {
                // Without our own last entry we cannot judge the candidate: neither grant nor
                // reject, and report the storage failure.
                warn!(self.log(), "cannot read our last entry to judge a vote request";
                    "from" => m.from, "error" => %e);
                return Err(e);
            }
        };
        // Priority elections (raft-rs): among equally up-to-date logs, a lower-priority candidate is
        // refused so the higher-priority node wins. Only among equal ones: raft-rs compares the
        // last indexes alone, so a voter of higher priority whose last entry is of an older term
        // (same index) refuses a candidate with a strictly better log, and when that voter cannot
        // win itself the group never elects again (found by the simulator).
        let priority_ok = match self.raft_log.last_index_and_term() {
            Ok((our_index, our_term)) => {
                (m.log_term, m.index) > (our_term, our_index) || self.priority <= priority_of(m)
            }
            Err(_) => false, // unreachable: `is_up_to_date` read the same entry just above
        };
        if can_vote && up_to_date && priority_ok {
            info!(self.log(), "granting vote"; "to" => m.from, "term" => m.term, "msg" => ?msg_type);
            self.send(Message {
                msg_type: response_type as i32,
                to: m.from,
                term: m.term,
                ..Default::default()
            });
            if msg_type == MessageType::MsgRequestVote {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
            Ok(())
        } else {
            info!(self.log(), "rejecting vote"; "to" => m.from, "term" => m.term,
                "msg" => ?msg_type, "can_vote" => can_vote, "up_to_date" => up_to_date,
                "priority_ok" => priority_ok);
            if self.term == 0 {
                // A rejection carries our own term, and a vote response of term 0 is invalid on the
                // wire (etcd and raft-rs would panic building it). At term 0 a rejection tells the
                // candidate nothing it can act on, so stay silent: it will time out.
                return Ok(());
            }
            let msg = self.vote_rejection(m.from, response_type);
            self.send(msg);
            self.commit_by_vote(m);
            self.back_off_for_a_better_candidate(m, msg_type, up_to_date);
            Ok(())
        }
    }

    /// A candidate that refused a vote only because it voted for itself in this term, to a
    /// candidate whose log is strictly more up to date than its own, restarts its election timer.
    /// Its log will not get that candidate's vote, and without pre-vote two candidates that time
    /// out in lockstep can hold each other off for hundreds of terms (found by the simulator: a
    /// new voter with an empty log, unaware of its configuration, campaigned a few ticks ahead of
    /// the only candidate that could win, term after term). Waiting a fresh timeout lets the
    /// better candidate's next term reach it first, and then it grants. Only a timer changes.
    fn back_off_for_a_better_candidate(
        &mut self,
        m: &Message,
        msg_type: MessageType,
        up_to_date: bool,
    ) {
        if msg_type != MessageType::MsgRequestVote
            || self.state != StateRole::Candidate
            || self.vote != self.id
            || m.term != self.term
            || !up_to_date
        {
            return;
        }
        let Ok((our_index, our_term)) = self.raft_log.last_index_and_term() else {
            return;
        };
        if (m.log_term, m.index) > (our_term, our_index) {
            info!(self.log(), "a candidate with a better log asked for our vote: restarting our election timer";
                "candidate" => m.from, "term" => self.term);
            self.election_elapsed = 0;
            self.reset_randomized_election_timeout();
        }
    }

    /// Moves the commit index up to the (commit, commit term) a vote request or a vote response
    /// carries, when our log holds that entry (raft-rs `maybe_commit_by_vote`): by log matching
    /// our log then agrees with the sender's up to it, and the sender only ever names a committed
    /// entry. Without it a voter can stall for good: a leader that removed itself steps down as
    /// soon as it applies its removal, and the remaining voter that never heard of that commit
    /// still counts the old leader, which refuses it a vote as its log is longer; the refusal
    /// carries the commit that lets it apply the removal and win alone. A candidate that finds a
    /// membership change among the entries it now knows committed steps down, as it does not
    /// campaign with one unapplied.
    fn commit_by_vote(&mut self, m: &Message) {
        if m.commit == 0 || m.commit_term == 0 || self.state == StateRole::Leader {
            return;
        }
        let before = self.raft_log.committed;
        if m.commit <= before || m.commit > self.raft_log.last_index() {
            return;
        }
        if !self.raft_log.maybe_commit(m.commit, m.commit_term) {
            return;
        }
        info!(self.log(), "commit index moved by a vote message";
            "from" => m.from, "commit" => self.raft_log.committed, "was" => before);
        if matches!(self.state, StateRole::Candidate | StateRole::PreCandidate)
            && self.has_unapplied_conf_change()
        {
            info!(
                self.log(),
                "a newly committed membership change is not applied: stepping down"
            );
            let term = self.term;
            self.become_follower(term, INVALID_ID);
        }
    }

    pub(super) fn handle_vote_response(&mut self, m: &Message, msg_type: MessageType) {
        let expected = match self.state {
            StateRole::PreCandidate => MessageType::MsgRequestPreVoteResponse,
            _ => MessageType::MsgRequestVoteResponse,
        };
        if msg_type != expected {
            debug!(self.log(), "ignored a vote response of the wrong kind"; "msg" => ?msg_type);
            return;
        }
        match self.poll(m.from, msg_type, !m.reject) {
            VoteResult::Won => {
                if self.state == StateRole::PreCandidate {
                    self.campaign(CampaignType::Election);
                } else {
                    self.become_leader();
                }
            }
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, INVALID_ID);
            }
            VoteResult::Pending => {}
        }
        self.commit_by_vote(m);
    }
}

/// A message's priority, falling back to the deprecated unsigned field that older raft-rs sends.
fn priority_of(m: &Message) -> i64 {
    if m.priority == 0 && m.deprecated_priority != 0 {
        i64::try_from(m.deprecated_priority).unwrap_or(i64::MAX)
    } else {
        m.priority
    }
}
