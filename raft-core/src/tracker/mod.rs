//! [`ProgressTracker`]: the configuration, each member's [`Progress`], and the votes of an election.

mod inflights;
mod progress;

pub use inflights::Inflights;
pub use progress::{Progress, ProgressState};

use crate::quorum::{AckedIndexer, JointConfig, VoteResult};
use raft_proto::eraftpb::ConfState;

/// The membership of a group as the tracker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// The voters (joint while a membership change is in progress).
    pub voters: JointConfig,
    /// The learners: replicated to, never counted.
    pub learners: Vec<u64>,
    /// Voters of the outgoing config that become learners when the joint config is left.
    pub learners_next: Vec<u64>,
    /// Leave the joint configuration automatically once it is committed.
    pub auto_leave: bool,
}

impl Configuration {
    /// The configuration described by a `ConfState`.
    pub fn from_conf_state(cs: &ConfState) -> Configuration {
        let mut learners = cs.learners.clone();
        learners.sort_unstable();
        learners.dedup();
        let mut learners_next = cs.learners_next.clone();
        learners_next.sort_unstable();
        learners_next.dedup();
        Configuration {
            voters: JointConfig {
                incoming: crate::quorum::MajorityConfig::new(cs.voters.iter().copied()),
                outgoing: crate::quorum::MajorityConfig::new(cs.voters_outgoing.iter().copied()),
            },
            learners,
            learners_next,
            auto_leave: cs.auto_leave,
        }
    }

    /// This configuration as a `ConfState`.
    pub fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.ids().to_vec(),
            learners: self.learners.clone(),
            voters_outgoing: self.voters.outgoing.ids().to_vec(),
            learners_next: self.learners_next.clone(),
            auto_leave: self.auto_leave,
        }
    }
}

/// Progress of every member, kept in a vector sorted by id (groups are small, and a sorted vector is
/// faster and smaller than a hash map at these sizes).
#[derive(Debug, Clone, Default)]
pub struct ProgressTracker {
    pub(crate) conf: Configuration,
    pub(crate) progress: Vec<(u64, Progress)>,
    pub(crate) votes: Vec<(u64, bool)>,
    pub(crate) max_inflight: usize,
    pub(crate) max_inflight_bytes: u64,
    /// Progress is not kept (the node does not lead): the configuration alone is.
    pub(crate) untracked: bool,
}

/// Groups up to this many members are searched linearly: a few compares of adjacent ids beat a
/// binary search's chain of dependent loads (a leader looks a member up on every response).
const LINEAR_SEARCH_MAX: usize = 8;

/// Where `id` is in `progress` (sorted by id).
#[inline]
fn position(progress: &[(u64, Progress)], id: u64) -> Option<usize> {
    if progress.len() <= LINEAR_SEARCH_MAX {
        progress.iter().position(|(i, _)| *i == id)
    } else {
        progress.binary_search_by_key(&id, |(i, _)| *i).ok()
    }
}

struct MatchIndexes<'a>(&'a [(u64, Progress)]);

impl AckedIndexer for MatchIndexes<'_> {
    fn acked_index(&self, id: u64) -> Option<u64> {
        position(self.0, id).map(|pos| self.0[pos].1.matched)
    }
}

impl ProgressTracker {
    /// An empty tracker whose followers get an inflight window of `max_inflight` messages.
    pub fn new(max_inflight: usize) -> ProgressTracker {
        ProgressTracker {
            max_inflight,
            max_inflight_bytes: crate::storage::NO_LIMIT,
            ..Default::default()
        }
    }

    /// Also limits each follower's window to `max_bytes` of payload in flight (for progress
    /// created from now on).
    pub fn with_max_inflight_bytes(mut self, max_bytes: u64) -> ProgressTracker {
        self.max_inflight_bytes = max_bytes;
        self
    }

    /// Replaces the configuration and rebuilds progress: members kept keep their progress, new ones
    /// start probing from `next_idx`.
    pub fn apply_conf(&mut self, conf: Configuration, next_idx: u64) {
        if self.untracked {
            self.conf = conf;
            return;
        }
        let mut ids = conf.voters.ids();
        ids.extend(conf.learners.iter().copied());
        ids.extend(conf.learners_next.iter().copied());
        ids.sort_unstable();
        ids.dedup();
        let mut old = std::mem::take(&mut self.progress).into_iter().peekable();
        let mut progress = Vec::with_capacity(ids.len());
        for id in ids {
            while old.peek().is_some_and(|(i, _)| *i < id) {
                old.next();
            }
            let mut pr = match old.peek() {
                Some((i, _)) if *i == id => old.next().map(|(_, pr)| pr),
                _ => None,
            }
            .unwrap_or_else(|| {
                // A new member counts as recently active, so that a leader under check-quorum does
                // not step down before the newcomer had a chance to answer.
                let mut pr = Progress::new(next_idx, self.max_inflight);
                pr.ins.set_max_bytes(self.max_inflight_bytes);
                pr.recent_active = true;
                pr
            });
            pr.is_learner = !conf.voters.contains(id);
            progress.push((id, pr));
        }
        self.progress = progress;
        self.conf = conf;
    }

    /// Stops keeping each member's progress and frees it (and the votes of the last election):
    /// only a leader needs progress, and most groups of a multi-raft process are followers or
    /// asleep (their memory is what scales).
    pub fn stop_tracking(&mut self) {
        self.untracked = true;
        self.progress = Vec::new();
        // The votes of an election are counted on a fresh list by whoever campaigns next.
        self.votes = Vec::new();
    }

    /// Keeps each member's progress again (a node becoming leader): every member starts to be
    /// probed from `next_idx`.
    pub fn start_tracking(&mut self, next_idx: u64) {
        if !self.untracked {
            return;
        }
        self.untracked = false;
        let conf = std::mem::take(&mut self.conf);
        self.apply_conf(conf, next_idx);
    }

    /// Whether `id` belongs to the configuration in any role (voter of either half, learner).
    pub fn is_member(&self, id: u64) -> bool {
        let in_conf = || {
            self.conf.voters.contains(id)
                || self.conf.learners.contains(&id)
                || self.conf.learners_next.contains(&id)
        };
        if self.untracked {
            return in_conf();
        }
        // A leader keeps progress for exactly the members (`apply_conf`): one scan answers, where
        // the configuration takes up to four (a leader asks on every response it steps).
        let member = position(&self.progress, id).is_some();
        debug_assert_eq!(
            member,
            in_conf(),
            "progress and configuration disagree on {id}"
        );
        member
    }

    /// The current configuration.
    pub fn conf(&self) -> &Configuration {
        &self.conf
    }

    /// The current configuration as a `ConfState`.
    pub fn conf_state(&self) -> ConfState {
        self.conf.to_conf_state()
    }

    /// Whether `id` is a voter.
    #[inline]
    pub fn is_voter(&self, id: u64) -> bool {
        self.conf.voters.contains(id)
    }

    /// Whether there is exactly one voter and it is `id`.
    pub fn is_singleton(&self, id: u64) -> bool {
        !self.conf.voters.is_joint()
            && self.conf.voters.incoming.len() == 1
            && self.conf.voters.incoming.contains(id)
    }

    /// The progress of `id`.
    #[inline]
    pub fn get(&self, id: u64) -> Option<&Progress> {
        let pos = position(&self.progress, id)?;
        Some(&self.progress[pos].1)
    }

    /// The progress of `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Progress> {
        let pos = position(&self.progress, id)?;
        Some(&mut self.progress[pos].1)
    }

    /// Every member and its progress, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Progress)> {
        self.progress.iter().map(|(id, pr)| (*id, pr))
    }

    /// Every member and its progress, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Progress)> {
        self.progress.iter_mut().map(|(id, pr)| (*id, pr))
    }

    /// The ids of every member, sorted.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.progress.iter().map(|(id, _)| *id)
    }

    /// The largest index replicated on a quorum of voters.
    pub fn maximal_committed_index(&self) -> u64 {
        self.conf
            .voters
            .committed_index(&MatchIndexes(&self.progress))
    }

    /// Forgets every vote.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s vote unless it already voted in this election.
    pub fn record_vote(&mut self, id: u64, granted: bool) {
        if let Err(pos) = self.votes.binary_search_by_key(&id, |(i, _)| *i) {
            self.votes.insert(pos, (id, granted));
        }
    }

    /// The (granted, rejected) counts and the election outcome so far.
    pub fn tally_votes(&self) -> (usize, usize, VoteResult) {
        let (mut granted, mut rejected) = (0, 0);
        for (id, vote) in &self.votes {
            if !self.conf.voters.contains(*id) {
                continue;
            }
            if *vote {
                granted += 1;
            } else {
                rejected += 1;
            }
        }
        let result = self.conf.voters.vote_result(|id| {
            self.votes
                .binary_search_by_key(&id, |(i, _)| *i)
                .ok()
                .map(|pos| self.votes[pos].1)
        });
        (granted, rejected, result)
    }

    /// Whether a quorum of voters was active since the last call (`leader_id` always counts), and
    /// clears the activity marks of everyone else for the next round.
    pub fn quorum_recently_active(&mut self, leader_id: u64) -> bool {
        let progress = &self.progress;
        let result = self.conf.voters.vote_result(|id| {
            let pos = position(progress, id)?;
            Some(id == leader_id || progress[pos].1.recent_active)
        });
        for (id, pr) in self.progress.iter_mut() {
            pr.recent_active = *id == leader_id;
        }
        result == VoteResult::Won
    }
}

#[cfg(test)]
mod tests;
