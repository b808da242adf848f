//! [`Raft`]: the consensus state machine of one node.
//!
//! The role dispatch lives here ([`Raft::step`]); each concern has its own file: `election`
//! (campaigns, votes, pre-votes), `replication` (the leader sending entries and heartbeats, commit),
//! `follower` (accepting appends and heartbeats), `validate` (refusing impossible input).

mod election;
mod follower;
mod forward;
pub(crate) mod frozen;
mod leader;
mod membership;
mod quiesce;
mod read;
mod replication;
mod runtime;
mod snapshot;
mod transfer;
mod validate;

pub use election::CAMPAIGN_TRANSFER;
pub use membership::decode_conf_change;
pub use validate::{is_local_msg, is_response_msg};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::read_only::{ReadOnly, ReadState};
use crate::storage::Storage;
use crate::tracker::ProgressTracker;
use raft_proto::eraftpb::{HardState, Message, MessageType};
use rand::rngs::Xoshiro128PlusPlus;
use rand::{RngExt, SeedableRng};
use slog::{debug, info, o, Logger};
use std::borrow::Cow;

/// "No node": the value of `leader_id` and `vote` when there is none.
pub const INVALID_ID: u64 = 0;

/// A tick count from the config, which `Config::validate` keeps within u32.
fn ticks_u32(ticks: usize) -> u32 {
    u32::try_from(ticks).unwrap_or(u32::MAX)
}

/// The role a node plays in its current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateRole {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Campaigns for votes in a new term.
    Candidate,
    /// Leads the group in its term.
    Leader,
    /// Asks whether it could win before starting a real campaign (thesis §9.6).
    PreCandidate,
}

/// The volatile state an application may want to observe: who leads and what this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftState {
    /// The leader known to this node, or `INVALID_ID`.
    pub leader_id: u64,
    /// This node's role.
    pub raft_state: StateRole,
}

/// The consensus state machine of one node. Drive it through [`RawNode`](crate::RawNode) unless you
/// need its internals (tests do).
///
/// The fields are laid out by hand (`repr(C)`): what every tick reads comes first and together, so
/// that a tick pass over many idle groups touches one or two cache lines per group, and the small
/// fields are packed without padding.
#[repr(C)]
pub struct Raft<T: Storage> {
    // Read by every tick.
    /// This node's clock: 1 plus the ticks since it started (so 0 can mean "never"); the leader's
    /// clock for heartbeat contexts and its lease.
    pub(crate) ticks: u64,
    pub(crate) election_elapsed: u32,
    pub(crate) randomized_election_timeout: u32,
    pub(crate) heartbeat_elapsed: u32,
    pub(crate) heartbeat_timeout: u32,
    /// This node's role.
    pub state: StateRole,
    pub(crate) check_quorum: bool,
    pub(crate) pre_vote: bool,
    pub(crate) disable_proposal_forwarding: bool,
    pub(crate) skip_bcast_commit: bool,
    /// Set when the leader has something to send in its next flush (new entries, a moved commit).
    pub(crate) appends_pending: bool,
    pub(crate) step_down_on_removal: bool,
    /// This leader sent `MsgTimeoutNow` in its term: the transferee may campaign past the
    /// followers' leases at any later time, so the lease is void for the rest of the term.
    pub(crate) timeout_now_sent: bool,

    pub(crate) election_timeout: u32,
    min_election_timeout: u32,
    max_election_timeout: u32,
    pub(crate) disable_conf_change_validation: bool,
    /// A single voter that won its election at once leads before its new term and vote are
    /// durable: until the Ready carrying them is persisted, everything it sends waits with the
    /// persisted messages. Otherwise a learner could hold entries of a term that a crash makes
    /// this node forget, and the node would lead that term again with other entries (found by
    /// the simulator: a single voter with learners broke log matching).
    pub(crate) term_not_durable: bool,
    rng: Xoshiro128PlusPlus,

    /// This node's id.
    pub id: u64,
    /// The current term.
    pub term: u64,
    /// Whom this node voted for in the current term, or `INVALID_ID`.
    pub vote: u64,
    /// The leader this node follows, or `INVALID_ID`.
    pub leader_id: u64,
    pub(crate) priority: i64,
    pub(crate) max_msg_size: u64,
    pub(crate) max_uncommitted_size: u64,
    pub(crate) uncommitted_size: u64,
    pub(crate) max_committed_size_per_ready: u64,
    /// The index of the last conf change this leader appended (or, right after election, the last
    /// index of its log, which may hold one): no other conf change is accepted until the applied
    /// index reaches it.
    pub(crate) pending_conf_index: u64,
    /// The index this follower asked the leader to cover with a snapshot (0: none asked).
    pub(crate) pending_request_snapshot: u64,
    /// The follower leadership is being transferred to, if any (leader only).
    pub lead_transferee: Option<u64>,

    /// Messages that may be sent at once.
    pub msgs: Vec<Message>,
    /// Messages that may be sent only after the entries and hard state produced with them are durable
    /// (append responses, votes, vote requests of a candidate).
    pub msgs_after_append: Vec<Message>,
    /// The log.
    pub raft_log: RaftLog<T>,
    /// Membership and, on a leader, each follower's progress.
    pub prs: ProgressTracker,
    /// Read requests waiting for confirmation (leader only).
    pub read_only: ReadOnly,

    /// The application's logger; records go through [`Raft::logger`], which adds `raft_id`.
    logger: Logger,
    /// Whether the group sleeps on this node, and the peers that cannot (see `quiesce`).
    pub(crate) quiescence: quiesce::Quiescence,
    /// Proposals this node forwarded with a stamp, and the leaders' answers (see `forward`);
    /// `None` until the first.
    pub(crate) forwards: Option<Box<forward::Forwards>>,
    /// The last term this node led (0: none since it started); what it answers to a stamp of
    /// that term after stepping down comes from its ledger (see `forward`).
    pub(crate) led_term: u64,
}

impl<T: Storage> Raft<T> {
    /// Builds a node from `config` over `store`, restoring the persisted hard state and membership.
    pub fn new(config: &Config, store: T, logger: &Logger) -> Result<Raft<T>> {
        config.validate()?;
        let logger = logger.clone();
        let state = store.initial_state()?;
        let mut raft_log = RaftLog::new(store)?;
        raft_log.set_apply_cache_limit(config.max_apply_cache_bytes);
        let mut r = Raft {
            id: config.id,
            term: 0,
            vote: INVALID_ID,
            raft_log,
            prs: ProgressTracker::new(config.max_inflight_msgs)
                .with_max_inflight_bytes(config.max_inflight_bytes),
            state: StateRole::Follower,
            leader_id: INVALID_ID,
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            ticks: 1,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            // Ticks fit in u32 (validated): the timers share one cache line with the clock.
            election_timeout: ticks_u32(config.election_tick),
            heartbeat_timeout: ticks_u32(config.heartbeat_tick),
            randomized_election_timeout: ticks_u32(config.min_election_tick()),
            min_election_timeout: ticks_u32(config.min_election_tick()),
            max_election_timeout: ticks_u32(config.max_election_tick()),
            rng: Xoshiro128PlusPlus::seed_from_u64(config.effective_seed()),
            check_quorum: config.check_quorum,
            pre_vote: config.pre_vote,
            priority: config.priority,
            max_msg_size: config.max_size_per_msg,
            max_uncommitted_size: config.max_uncommitted_size,
            uncommitted_size: 0,
            disable_proposal_forwarding: config.disable_proposal_forwarding,
            skip_bcast_commit: config.skip_bcast_commit,
            max_committed_size_per_ready: config.max_committed_size_per_ready,
            appends_pending: false,
            pending_conf_index: 0,
            step_down_on_removal: config.step_down_on_removal,
            pending_request_snapshot: 0,
            read_only: ReadOnly::new(config.read_only_option),
            lead_transferee: None,
            timeout_now_sent: false,
            disable_conf_change_validation: config.disable_conf_change_validation,
            term_not_durable: false,
            logger,
            quiescence: Default::default(),
            forwards: None,
            led_term: 0,
        };
        let next_idx = r.raft_log.last_index() + 1;
        // The stored membership is authoritative on restart: the log entries after it that
        // change it are applied again by the application, through `apply_conf_change`.
        let conf = crate::confchange::restore(&state.conf_state)?;
        r.prs.apply_conf(conf, next_idx);
        let hs = state.hard_state;
        if hs != HardState::default() {
            r.load_hard_state(&hs)?;
        }
        if config.applied > 0 {
            if config.applied > r.raft_log.committed {
                // Entries are handed out for applying only once committed and durable here, so
                // an applied index within the stored log is committed: the application applied
                // them before the hard state that says so was written (an asynchronous apply).
                if config.applied > r.raft_log.last_index() {
                    return Err(Error::ConfigInvalid {
                        field: "applied",
                        rule: format!(
                            "must not be beyond the stored log ({} > last index {})",
                            config.applied,
                            r.raft_log.last_index()
                        ),
                    });
                }
                info!(r.log(), "raising the commit index to the applied index";
                    "commit" => r.raft_log.committed, "applied" => config.applied);
                r.raft_log.commit_to(config.applied);
            }
            r.raft_log.applied_to(config.applied);
        }
        let term = r.term;
        r.become_follower(term, INVALID_ID);
        info!(r.log(), "newRaft";
            "term" => r.term, "commit" => r.raft_log.committed, "applied" => r.raft_log.applied,
            "last_index" => r.raft_log.last_index(), "last_term" => r.raft_log.last_term(),
            "voters" => ?r.prs.conf().voters.ids());
        Ok(r)
    }

    fn load_hard_state(&mut self, hs: &HardState) -> Result<()> {
        let (first, last) = (self.raft_log.first_index(), self.raft_log.last_index());
        if hs.commit > last {
            return Err(Error::Invariant(
                "the stored hard state's commit index is beyond the stored log",
            ));
        }
        // A stored commit index below the snapshot is only late, not wrong: the commit index is
        // volatile state in Raft (§5, Figure 2), and a snapshot holds committed entries alone. An
        // application that pipelines its Readys may apply, snapshot and compact entries whose
        // commit index is still in a Ready it has not written yet (etcd-io/raft and raft-rs
        // refuse to start from such a store; we start from the snapshot).
        let snapshot_index = first.saturating_sub(1);
        if hs.commit < snapshot_index {
            info!(self.log(), "the stored commit index is behind the snapshot; starting from the snapshot";
                "commit" => hs.commit, "snapshot_index" => snapshot_index);
        }
        self.raft_log.committed = hs.commit.max(snapshot_index);
        self.raft_log.applying = self.raft_log.applying.max(first.saturating_sub(1));
        self.term = hs.term;
        self.vote = hs.vote;
        Ok(())
    }

    /// Confirmed reads not yet handed out in a Ready.
    pub fn read_states(&self) -> &[ReadState] {
        self.read_only.confirmed()
    }

    /// The current soft state.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.leader_id,
            raft_state: self.state,
        }
    }

    /// The current hard state.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// A logger for records about this node: the application's logger with `raft_id` added.
    ///
    /// Made per call rather than kept: a child logger holds its key-value list on the heap (about
    /// 100 bytes), which a process with a million mostly idle groups should not pay for every
    /// group.
    pub fn logger(&self) -> Logger {
        self.logger.new(o!("raft_id" => self.id))
    }

    /// The target of this node's own `slog` macros: [`Raft::logger`] when the application's drain
    /// takes records, and the application's logger itself when it takes none (`slog::Discard`),
    /// so that a node logging into nothing does not build a child logger per record.
    pub(crate) fn log(&self) -> Cow<'_, Logger> {
        if slog::Drain::is_enabled(&self.logger, slog::Level::Critical) {
            Cow::Owned(self.logger())
        } else {
            Cow::Borrowed(&self.logger)
        }
    }

    /// Whether this node may campaign (it is a voter).
    pub fn promotable(&self) -> bool {
        self.prs.is_voter(self.id)
    }

    fn reset(&mut self, term: u64) {
        self.drop_pending_reads();
        self.abort_leader_transfer();
        self.timeout_now_sent = false;
        if self.term != term {
            self.term = term;
            self.vote = INVALID_ID;
            // Acknowledgements to the old term's leader that no Ready has carried yet name
            // entries still in the unstable log, which the new term's leader may replace before
            // they are ever written: the next Ready would then release an acknowledgement of
            // entries this node never persisted (found by the simulator's ack durability check).
            // Dropping them is safe: to the old leader they look like lost messages.
            self.msgs_after_append
                .retain(|m| m.msg_type != MessageType::MsgAppendResponse as i32 || m.term >= term);
        }
        self.leader_id = INVALID_ID;
        // A snapshot asked of an earlier leader is forgotten (raft-rs does the same): the request
        // names this node's last index, which a newer leader's log may never reach (the node's
        // tail can be an uncommitted one the new leader replaces), so waiting on it could stall
        // the node for good (found by the simulator).
        self.pending_request_snapshot = 0;
        self.reset_randomized_election_timeout();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.prs.reset_votes();
        self.uncommitted_size = 0;
        self.appends_pending = false;
        let next_idx = self.raft_log.last_index() + 1;
        let (id, persisted, committed) =
            (self.id, self.raft_log.persisted, self.raft_log.committed);
        for (pid, pr) in self.prs.iter_mut() {
            pr.reset(next_idx);
            if pid == id {
                pr.matched = persisted;
                pr.committed_index = committed;
            }
        }
    }

    /// Draws a new randomised election timeout in `[min_election_tick, max_election_tick)`.
    pub fn reset_randomized_election_timeout(&mut self) {
        self.randomized_election_timeout = self
            .rng
            .random_range(self.min_election_timeout..self.max_election_timeout);
    }

    /// The current randomised election timeout, in ticks.
    pub fn randomized_election_timeout(&self) -> usize {
        self.randomized_election_timeout as usize
    }

    /// Becomes a follower of `leader_id` in `term`.
    pub fn become_follower(&mut self, term: u64, leader_id: u64) {
        self.prs.stop_tracking();
        self.reset(term);
        self.leader_id = leader_id;
        self.state = StateRole::Follower;
        info!(self.log(), "became follower"; "term" => term, "leader" => leader_id);
    }

    /// Emits a message. Requests and responses of elections carry an explicit term; everything else
    /// gets the current term, except forwarded proposals and reads, which travel with term 0.
    pub(crate) fn send(&mut self, mut m: Message) {
        let msg_type = m.msg_type();
        // A forwarded request keeps its sender (raft-rs): a transfer names the transferee, and a
        // read must be answered to the node that asked, even if it went through another follower.
        let forwarded = matches!(
            msg_type,
            MessageType::MsgTransferLeader | MessageType::MsgReadIndex | MessageType::MsgPropose
        );
        if !forwarded || m.from == INVALID_ID {
            m.from = self.id;
        }
        match msg_type {
            MessageType::MsgRequestVote
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVoteResponse => {
                debug_assert!(m.term != 0, "election message sent without a term");
            }
            MessageType::MsgPropose | MessageType::MsgReadIndex => {}
            _ => m.term = self.term,
        }
        debug!(self.log(), "send"; "msg" => %raft_proto::describe_message(&m));
        match msg_type {
            // These promise durable state (a vote, appended entries, this node's own term and
            // vote in a campaign), so they wait until the Ready that carries it is persisted.
            MessageType::MsgAppendResponse
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgRequestVote => {
                // Acknowledgements are cumulative: one that directly follows another to the same
                // leader in the same term supersedes it, so a follower that handled several
                // appends since the last Ready sends a single acknowledgement.
                if msg_type == MessageType::MsgAppendResponse
                    && !m.reject
                    && m.request_snapshot == 0
                    && self.fold_ack(m.to, m.term, m.index, m.commit)
                {
                    return;
                }
                self.msgs_after_append.push(m)
            }
            _ if self.term_not_durable => self.msgs_after_append.push(m),
            _ => self.msgs.push(m),
        }
    }

    /// Acknowledges entries up to `index` (and commit `commit`) to the leader `to`. Folded into
    /// the previous acknowledgement when that one directly precedes it (the rule in [`Raft::send`]),
    /// without building a message at all: a follower stepping many appends between two Readys
    /// does this once per append.
    pub(crate) fn send_append_ack(&mut self, to: u64, index: u64, commit: u64) {
        if self.fold_ack(to, self.term, index, commit) {
            return;
        }
        self.send(Message {
            msg_type: MessageType::MsgAppendResponse as i32,
            to,
            index,
            commit,
            ..Default::default()
        });
    }

    /// Folds an acknowledgement of entries up to `index` (to `to`, in `term`) into the last message
    /// waiting for persistence, if that is an acknowledgement to the same leader in the same term
    /// (acknowledgements are cumulative). Returns whether it did.
    fn fold_ack(&mut self, to: u64, term: u64, index: u64, commit: u64) -> bool {
        match self.msgs_after_append.last_mut() {
            Some(last)
                if last.msg_type == MessageType::MsgAppendResponse as i32
                    && !last.reject
                    && last.to == to
                    && last.term == term
                    && last.request_snapshot == 0 =>
            {
                last.index = last.index.max(index);
                last.commit = last.commit.max(commit);
                true
            }
            _ => false,
        }
    }

    /// Advances the logical clock by one tick: followers and candidates count towards an election,
    /// leaders towards heartbeats and the check-quorum round.
    pub fn tick(&mut self) {
        if self.quiescence.asleep {
            // A sleeping group does no work at all (see `quiesce`).
            return;
        }
        self.ticks += 1;
        match self.state {
            StateRole::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Handles one message: a message from a peer, or a local one (`MsgHup`, `MsgBeat`,
    /// `MsgPropose`, ...). Impossible input is refused with an error and leaves the state unchanged.
    pub fn step(&mut self, m: Message) -> Result<()> {
        let msg_type =
            MessageType::try_from(m.msg_type).map_err(|_| Error::UnknownMessageType(m.msg_type))?;
        self.validate(&m, msg_type)?;
        debug!(self.log(), "step"; "msg" => %raft_proto::describe_message(&m));
        if msg_type == MessageType::MsgPropose && m.entries.is_empty() {
            if let Some(answer) = forward::answer_of(&m) {
                // A leader's answer to a proposal this node forwarded: bookkeeping only.
                self.receive_forward_answer(answer);
                return Ok(());
            }
        }
        if self.quiescence.asleep && !quiesce::is_quiesce_heartbeat(&m) {
            if self.is_idle_heartbeat_ack(&m, msg_type) {
                // It tells a sleeping leader nothing it did not know when it fell asleep.
                return Ok(());
            }
            // Any message of the group, a proposal, a read or a campaign wakes it.
            self.wake();
        }
        if m.term > self.term
            && matches!(
                msg_type,
                MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
            )
        {
            // The vote will be judged on our last entry: if storage cannot say what it is, fail
            // now, before the higher term is adopted, so a refused step changes nothing.
            self.raft_log.last_index_and_term()?;
        }
        if m.term == 0
            || matches!(
                msg_type,
                MessageType::MsgPropose | MessageType::MsgReadIndex
            )
        {
            // Local messages, and proposals and reads: those travel without a term (etcd and
            // raft-rs send them so), and one that carries a term anyway is no evidence of a new
            // term, so it deposes no one on its way.
        } else if m.term > self.term {
            if !self.step_higher_term(&m, msg_type) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.step_lower_term(&m, msg_type);
            return Ok(());
        }

        match msg_type {
            MessageType::MsgHup => {
                self.hup(false);
                Ok(())
            }
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote => {
                self.handle_vote_request(&m, msg_type)
            }
            _ => match self.state {
                StateRole::Leader => self.step_leader(m, msg_type),
                StateRole::Candidate | StateRole::PreCandidate => self.step_candidate(m, msg_type),
                StateRole::Follower => self.step_follower(m, msg_type),
            },
        }
    }

    /// A message of a higher term. Returns whether to go on handling it.
    fn step_higher_term(&mut self, m: &Message, msg_type: MessageType) -> bool {
        let is_vote_request = matches!(
            msg_type,
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        );
        if is_vote_request {
            let forced = m.context.as_ref() == election::CAMPAIGN_TRANSFER;
            let in_lease = self.check_quorum
                && self.leader_id != INVALID_ID
                && self.election_elapsed < self.election_timeout;
            if !forced && in_lease {
                // A leader was heard from within the election timeout: this candidate cannot be
                // legitimate, and granting it would disrupt a working leader (thesis §4.2.3).
                info!(self.log(), "ignored a vote request of a higher term: leader lease still valid";
                    "from" => m.from, "term" => m.term, "msg" => ?msg_type,
                    "remaining_ticks" => self.election_timeout - self.election_elapsed);
                return false;
            }
        }
        let keeps_term = msg_type == MessageType::MsgRequestPreVote
            || (msg_type == MessageType::MsgRequestPreVoteResponse && !m.reject);
        if !keeps_term {
            info!(self.log(), "received a message of a higher term";
                "from" => m.from, "term" => m.term, "msg" => ?msg_type);
            let leader = match msg_type {
                MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot => {
                    m.from
                }
                _ => INVALID_ID,
            };
            // A vote request whose log is behind ours will be refused, and a refused candidate
            // does not restart the election timer (Raft paper, Figure 2: only the leader's
            // messages and a granted vote do; etcd and raft-rs restart it on any new term).
            // Otherwise a voter that cannot win, campaigning again and again in higher terms, can
            // hold off the one voter that can for as long as it keeps firing first (found by the
            // simulator: a two-voter group without pre-vote that elected no one for 500 round
            // trips).
            let refused_for_its_log = msg_type == MessageType::MsgRequestVote
                && matches!(self.raft_log.is_up_to_date(m.index, m.log_term), Ok(false));
            let timer = (self.election_elapsed, self.randomized_election_timeout);
            self.become_follower(m.term, leader);
            if refused_for_its_log {
                (self.election_elapsed, self.randomized_election_timeout) = timer;
            }
        }
        true
    }

    /// A message of a lower term: answered only where the sender needs to learn the newer term.
    fn step_lower_term(&mut self, m: &Message, msg_type: MessageType) {
        if (self.check_quorum || self.pre_vote || !self.promotable())
            && matches!(msg_type, MessageType::MsgHeartbeat | MessageType::MsgAppend)
        {
            // A leader cut off by a partition keeps its term while the rest moved on. With
            // check-quorum or pre-vote it would never learn of the new term (its followers ignore
            // it and it cannot win a vote), so tell it: the higher term in this reply deposes it.
            // Likewise when this node cannot campaign (a learner, or not a member, as far as it
            // has applied): without either option etcd and raft-rs count on the node's own vote
            // requests to carry its term to the leader, and this node sends none. A leader whose
            // configuration has already made it a voter again would otherwise wait on it for
            // good, unheard (found by the soak, seed 307324).
            self.send(Message {
                msg_type: MessageType::MsgAppendResponse as i32,
                to: m.from,
                ..Default::default()
            });
        } else if msg_type == MessageType::MsgRequestPreVote {
            // Reject explicitly so the pre-candidate learns the newer term instead of waiting.
            let msg = self.vote_rejection(m.from, MessageType::MsgRequestPreVoteResponse);
            self.send(msg);
        } else if msg_type == MessageType::MsgRequestVote {
            // Likewise a candidate (the Raft paper's RequestVote always answers with the current
            // term; etcd and raft-rs stay silent). Otherwise a voter that fell behind on a
            // membership change can sit in a higher term, campaigning in vain among members that
            // no longer count it, while the only candidate that could win keeps asking it in
            // lower terms and is never heard (found by the simulator, seed 1922: a two-voter
            // group whose members disagreed on the configuration elected no one for 600 round
            // trips).
            let msg = self.vote_rejection(m.from, MessageType::MsgRequestVoteResponse);
            self.send(msg);
        } else {
            debug!(self.log(), "ignored a message of a lower term";
                "from" => m.from, "msg_term" => m.term, "msg" => ?msg_type);
        }
    }

    fn step_candidate(&mut self, m: Message, msg_type: MessageType) -> Result<()> {
        match msg_type {
            MessageType::MsgPropose => {
                info!(self.log(), "no leader: dropping proposal"; "term" => self.term);
                self.refuse_forward(&m);
                Err(Error::ProposalDropped)
            }
            MessageType::MsgAppend => {
                self.become_follower(m.term, m.from);
                self.handle_append_entries(m)
            }
            MessageType::MsgHeartbeat => {
                self.become_follower(m.term, m.from);
                if quiesce::is_quiesce_heartbeat(&m) {
                    self.handle_quiesce_heartbeat(&m);
                } else {
                    self.handle_heartbeat(&m);
                }
                Ok(())
            }
            MessageType::MsgSnapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(&m);
                Ok(())
            }
            MessageType::MsgRequestVoteResponse | MessageType::MsgRequestPreVoteResponse => {
                self.handle_vote_response(&m, msg_type);
                Ok(())
            }
            MessageType::MsgReadIndex => self.drop_read_request(&m),
            _ => {
                debug!(self.log(), "candidate ignored message"; "msg" => ?msg_type, "from" => m.from);
                Ok(())
            }
        }
    }

    fn step_follower(&mut self, m: Message, msg_type: MessageType) -> Result<()> {
        match msg_type {
            MessageType::MsgPropose => self.forward_proposal(m),
            MessageType::MsgAppend => {
                let before = (self.election_elapsed, self.leader_id);
                self.election_elapsed = 0;
                self.leader_id = m.from;
                let result = self.handle_append_entries(m);
                if result.is_err() {
                    // A refused step changes nothing, not even the leader heard from.
                    (self.election_elapsed, self.leader_id) = before;
                }
                result
            }
            MessageType::MsgHeartbeat => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                if quiesce::is_quiesce_heartbeat(&m) {
                    self.handle_quiesce_heartbeat(&m);
                } else {
                    self.handle_heartbeat(&m);
                }
                Ok(())
            }
            MessageType::MsgSnapshot => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(&m);
                Ok(())
            }
            MessageType::MsgReadIndex => self.forward_read_index(m),
            MessageType::MsgReadIndexResp => {
                self.handle_read_index_resp(&m);
                Ok(())
            }
            MessageType::MsgTransferLeader => {
                if self.leader_id == INVALID_ID {
                    info!(self.log(), "no leader: dropping transfer request"; "term" => self.term);
                    return Ok(());
                }
                let mut m = m;
                m.to = self.leader_id;
                self.send(m);
                Ok(())
            }
            MessageType::MsgTimeoutNow => {
                self.handle_timeout_now(&m);
                Ok(())
            }
            _ => {
                debug!(self.log(), "follower ignored message"; "msg" => ?msg_type, "from" => m.from);
                Ok(())
            }
        }
    }

    /// Drains every message produced so far, flushing a leader's pending appends first. For drivers
    /// that use `Raft` directly; `RawNode` separates messages by durability instead.
    pub fn read_messages(&mut self) -> Vec<Message> {
        self.flush_appends();
        let mut msgs = std::mem::take(&mut self.msgs);
        msgs.append(&mut self.msgs_after_append);
        msgs
    }
}
