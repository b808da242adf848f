//! Checks of the rules that rest on time, kept in each node's own ticks (what its clock says):
//!
//! - check-quorum, leader side: a leader that has not heard from a quorum of its voters for two
//!   election timeouts has stepped down (thesis §6.2: it checks every election timeout), and a new
//!   leader that no quorum answered within its first election timeout has too;
//! - check-quorum, follower side (the leader lease, thesis §4.2.3 and §6.4.1): a follower that
//!   heard from its leader less than an election timeout ago neither adopts the term of a vote
//!   request nor grants the vote, unless the candidate campaigns for a leadership transfer.

use super::node::SimNode;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::raft::CAMPAIGN_TRANSFER;
use raft_core::StateRole;
use std::collections::BTreeMap;

/// What a node looked like just before a message was stepped.
#[derive(Debug, Clone, Copy)]
pub(super) struct Before {
    /// The term before the step.
    pub(super) term: u64,
    vote: u64,
    leader: u64,
    state: StateRole,
}

/// The per-node clocks and the last contacts they saw.
#[derive(Debug, Default)]
pub(super) struct Timing {
    /// Ticks each node's clock has made (over all its lives).
    ticks: BTreeMap<u64, u64>,
    /// Per follower: the tick at which it last heard from the leader of its term (append,
    /// heartbeat, snapshot), and that term.
    heard_leader: BTreeMap<u64, (u64, u64)>,
    /// Per leader: the term it leads and the tick it was first seen leading it.
    leading: BTreeMap<u64, (u64, u64)>,
    /// Per (leader, voter): the tick at which the leader last heard a response from it, and the
    /// leader's term then.
    heard_peer: BTreeMap<(u64, u64), (u64, u64)>,
    /// Per leader: the voters it had at the last check.
    voters: BTreeMap<u64, Vec<u64>>,
    /// Per node that did not lead at the last check: its voters then.
    voters_before: BTreeMap<u64, Vec<u64>>,
}

impl Timing {
    /// Node `id`'s clock ticked.
    pub(super) fn tick(&mut self, id: u64) {
        *self.ticks.entry(id).or_default() += 1;
    }

    /// Node `id`'s clock.
    pub(super) fn now(&self, id: u64) -> u64 {
        self.ticks.get(&id).copied().unwrap_or(0)
    }

    /// Leader `id` was asked to transfer leadership: like etcd, it restarts its check-quorum
    /// window then, so every voter counts as heard from now on.
    pub(super) fn transfer_requested(&mut self, id: u64, term: u64, voters: &[u64]) {
        let now = self.now(id);
        for v in voters {
            self.heard_peer.insert((id, *v), (now, term));
        }
    }

    /// Node `id` restarted: it remembers no leader and no contact.
    pub(super) fn restarted(&mut self, id: u64) {
        self.heard_leader.remove(&id);
        self.leading.remove(&id);
    }

    /// The receiver's state before `m` is stepped.
    pub(super) fn before(node: &SimNode) -> Option<Before> {
        let r = &node.raw.as_ref()?.raft;
        Some(Before {
            term: r.term,
            vote: r.vote,
            leader: r.leader_id,
            state: r.state,
        })
    }

    /// Records what delivering `m` (of which only the header is kept, `m.entries` may be empty)
    /// to `node` showed, and checks the follower's side of the lease. `accepted`: the step did
    /// not refuse it and `m` came from the leader of its term.
    pub(super) fn delivered(
        &mut self,
        node: &SimNode,
        before: Option<Before>,
        m: &Message,
        accepted: bool,
        check_quorum: bool,
        election_tick: u64,
    ) -> Result<(), String> {
        let (Some(before), Some(raw)) = (before, node.raw.as_ref()) else {
            return Ok(());
        };
        let r = &raw.raft;
        let to = node.id;
        let now = self.now(to);
        match m.msg_type() {
            MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
                if accepted && m.term == r.term =>
            {
                // Knowing the leader is what the lease, forwarding and read redirection rest on.
                if r.state == StateRole::Follower && r.leader_id != m.from {
                    return Err(format!(
                        "leader knowledge: node {to} took a {:?} from {}, the leader of its term                          {}, yet names {} as its leader",
                        m.msg_type(),
                        m.from,
                        r.term,
                        r.leader_id
                    ));
                }
                self.heard_leader.insert(to, (now, r.term));
            }
            MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
                if r.state == StateRole::Leader && m.term == r.term =>
            {
                self.heard_peer.insert((to, m.from), (now, r.term));
            }
            MessageType::MsgRequestVote
                if check_quorum
                    && before.state == StateRole::Follower
                    && before.leader != 0
                    && before.leader != m.from
                    && m.term > before.term
                    && &m.context[..] != CAMPAIGN_TRANSFER =>
            {
                // Heard from the leader of its current term less than an election timeout ago,
                // and still follows it.
                let heard = self
                    .heard_leader
                    .get(&to)
                    .filter(|(_, term)| *term == before.term)
                    .map(|(tick, _)| *tick);
                let in_lease = heard.is_some_and(|h| now.saturating_sub(h) + 1 < election_tick);
                if in_lease && (r.term != before.term || r.vote != before.vote) {
                    return Err(format!(
                        "check-quorum lease: node {to} heard from leader {} {} ticks ago (election \
                         timeout {election_tick}) yet took candidate {}'s term {} (now term {} \
                         vote {})",
                        before.leader,
                        now - heard.unwrap_or(now),
                        m.from,
                        m.term,
                        r.term,
                        r.vote
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After an event: a leader with check-quorum that has not heard from a quorum of its voters
    /// for more than two election timeouts must have stepped down.
    pub(super) fn check_leaders(
        &mut self,
        nodes: &BTreeMap<u64, SimNode>,
        check_quorum: bool,
        election_tick: u64,
    ) -> Result<(), String> {
        if !check_quorum {
            // Everything below serves the check-quorum rules.
            return Ok(());
        }
        for (id, node) in nodes {
            let Some(r) = node.raw.as_ref().map(|raw| &raw.raft) else {
                continue;
            };
            let cs = r.prs.conf_state();
            let mut all: Vec<u64> = cs
                .voters
                .iter()
                .chain(&cs.voters_outgoing)
                .copied()
                .collect();
            all.sort_unstable();
            all.dedup();
            if r.state != StateRole::Leader {
                self.voters_before.insert(*id, all);
                continue;
            }
            let now = self.now(*id);
            let since = match self.leading.get(id) {
                Some(&(term, since)) if term == r.term => since,
                _ => {
                    // Voters that joined since the node last did not lead (it became leader and
                    // applied a membership change within one event) are newcomers: the leader
                    // counts them as active, as etcd does.
                    let before = self.voters_before.remove(id).unwrap_or_default();
                    for v in all.iter().filter(|v| !before.contains(v)) {
                        self.heard_peer.insert((*id, *v), (now, r.term));
                    }
                    self.voters.insert(*id, all);
                    self.leading.insert(*id, (r.term, now));
                    continue;
                }
            };
            if self.voters.get(id) != Some(&all) {
                // A new configuration is judged from now on: the leader's next checks count its
                // quorums, and a newcomer counts as active (as etcd has it).
                for v in &all {
                    self.heard_peer.insert((*id, *v), (now, r.term));
                }
                self.voters.insert(*id, all);
            }
            for voters in [&cs.voters, &cs.voters_outgoing] {
                if voters.is_empty() {
                    continue;
                }
                let heard = |v: &u64| {
                    if v == id {
                        Some(now)
                    } else {
                        self.heard_peer
                            .get(&(*id, *v))
                            .filter(|(_, term)| *term == r.term)
                            .map(|(tick, _)| *tick)
                    }
                };
                // The first check, an election timeout after the election: a quorum must have
                // answered in this term by then (a new leader counts no follower as active
                // before it hears from it, etcd-io/raft `becomeLeader`).
                let answered = voters.iter().filter(|v| heard(v).is_some()).count();
                if answered <= voters.len() / 2 && now.saturating_sub(since) > election_tick + 1 {
                    return Err(format!(
                        "check-quorum: leader {id} of term {} has heard from only {answered} of                          {voters:?} in the {} ticks since its election (election timeout                          {election_tick}) and still leads",
                        r.term,
                        now - since
                    ));
                }
                let mut last: Vec<u64> = voters
                    .iter()
                    .map(|v| heard(v).unwrap_or(0).max(since))
                    .collect();
                last.sort_unstable_by(|a, b| b.cmp(a));
                let quorum_heard = last[voters.len() / 2];
                if now.saturating_sub(quorum_heard) > 2 * election_tick + 2 {
                    return Err(format!(
                        "check-quorum: leader {id} of term {} has heard from no quorum of {voters:?} \
                         for {} ticks (election timeout {election_tick}) and still leads",
                        r.term,
                        now - quorum_heard
                    ));
                }
            }
        }
        Ok(())
    }
}
