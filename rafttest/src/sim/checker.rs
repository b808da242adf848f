//! The invariant checker: Raft's safety properties (thesis §3.6.3, Figure 3.2), evaluated after
//! every event of a simulation.

use super::durability;
use super::node::SimNode;
use bytes::Bytes;
use raft_core::eraftpb::ConfState;
use raft_core::{StateRole, Storage};
use std::collections::BTreeMap;

/// What the checker has learned so far.
#[derive(Debug, Default)]
pub struct Checker {
    /// The leader of each term seen.
    leaders: BTreeMap<u64, u64>,
    /// The term of every entry known to be committed, by index.
    committed: BTreeMap<u64, u64>,
    /// What was applied at each index, by any node: (term, data).
    applied: BTreeMap<u64, (u64, Bytes)>,
    /// Per node: (life, commit, applied, the term it led or 0) last seen, for monotonicity within
    /// a life and to tell a leader's own commits from learned ones.
    cursors: BTreeMap<u64, (u64, u64, u64, u64)>,
    /// The term of every entry a leader committed (by counting a quorum), by index: every other
    /// node may only learn of these.
    leader_committed: BTreeMap<u64, u64>,
    /// Per node: its membership at the last check (a node applying a membership change in the
    /// same event as it commits counted the quorum in the one before).
    confs: BTreeMap<u64, ConfState>,
    /// Per node: the term it led last checked (to run the completeness check once per term).
    led: BTreeMap<u64, u64>,
    /// The largest commit index any node knew.
    max_commit: u64,
    /// Per node: the commit index its storage held at the last check.
    stored: BTreeMap<u64, u64>,
    /// The outcomes of tracked proposals, checked against what was applied.
    pub outcomes: super::outcomes::Outcomes,
}

impl Checker {
    /// The largest commit index known anywhere: every read started now must be answered at an
    /// index at least this high.
    pub fn max_commit(&self) -> u64 {
        self.max_commit
    }

    /// The node that led `term`, if any did.
    pub fn leader_of(&self, term: u64) -> Option<u64> {
        self.leaders.get(&term).copied()
    }

    /// What was applied at each index, by any node: (term, payload).
    pub fn applied(&self) -> &BTreeMap<u64, (u64, Bytes)> {
        &self.applied
    }

    /// How many terms had a leader.
    pub fn terms_with_leader(&self) -> u64 {
        self.leaders.len() as u64
    }

    /// Records an entry applied by `node` and checks state machine safety.
    pub fn on_apply(
        &mut self,
        node: u64,
        index: u64,
        term: u64,
        data: &Bytes,
    ) -> Result<(), String> {
        self.outcomes.on_apply(node, index, data)?;
        match self.applied.get(&index) {
            Some((t, d)) if (*t, d) != (term, data) => Err(format!(
                "state machine safety: node {node} applied term {term} at index {index}, where \
                 another node applied term {t}"
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(index, (term, data.clone()));
                Ok(())
            }
        }
    }

    /// Checks the outcome `node` reported for its client write `value` (issue 18).
    pub fn on_outcome(
        &mut self,
        node: u64,
        value: u64,
        outcome: raft_core::proposal::ProposalOutcome,
    ) -> Result<(), String> {
        self.outcomes.check(node, value, outcome, &self.applied)
    }

    /// Checks every property over the current state of the nodes. `lives` counts restarts per
    /// node, so monotonicity is checked within one life.
    pub fn check(
        &mut self,
        nodes: &BTreeMap<u64, SimNode>,
        lives: &BTreeMap<u64, u64>,
    ) -> Result<(), String> {
        for (id, node) in nodes {
            let Some(raw) = node.raw.as_ref() else {
                continue;
            };
            let raft = &raw.raft;
            // Election safety: at most one leader per term. A leadership counts once the
            // leader's term is durable: a singleton wins the moment it campaigns, and if it
            // crashes before the new term reaches its disk it never acted as leader (the core
            // holds back its messages until then, and nothing commits without its own write),
            // so it may vote for another candidate of that term after restarting, as a voter
            // that lost an unpersisted vote may.
            let term_durable = node.storage.rl().hard_state().term >= raft.term;
            if raft.state == StateRole::Leader && term_durable {
                let leader = *self.leaders.entry(raft.term).or_insert(*id);
                if leader != *id {
                    return Err(format!(
                        "election safety: nodes {leader} and {id} both led term {}",
                        raft.term
                    ));
                }
            }
            // Monotonic commit and applied within a life.
            let life = lives.get(id).copied().unwrap_or(0);
            let (commit, applied) = (raft.raft_log.committed, node.sm.applied_index);
            let led = if raft.state == StateRole::Leader {
                raft.term
            } else {
                0
            };
            let mut checked_up_to = 0;
            let mut own_commit = false;
            if let Some(&(l, c, a, was_leading)) = self.cursors.get(id) {
                if l == life {
                    if commit < c || applied < a {
                        return Err(format!(
                            "monotonicity: node {id} went from commit {c} applied {a} to \
                             commit {commit} applied {applied}"
                        ));
                    }
                    checked_up_to = c;
                    own_commit = led != 0 && was_leading == led;
                }
            }
            self.cursors.insert(*id, (life, commit, applied, led));
            if applied > commit {
                return Err(format!(
                    "node {id} applied {applied} beyond its commit index {commit}"
                ));
            }
            if commit > checked_up_to {
                if own_commit {
                    self.leader_commits(nodes, node, checked_up_to, commit)?;
                } else {
                    self.learned_commits(*id, node, checked_up_to, commit)?;
                }
            }
            if raft.state == StateRole::Leader {
                durability::check_progress(nodes, node)?;
            }
            let cs = raft.prs.conf_state();
            if self.confs.get(id) != Some(&cs) {
                self.confs.insert(*id, cs);
            }
            // Committed entries: their terms never change (log matching over the committed
            // prefix, and no committed entry is ever lost or replaced).
            let first = raft.raft_log.first_index();
            for index in (checked_up_to + 1).max(first)..=commit {
                let Ok(term) = raft.raft_log.term(index) else {
                    continue;
                };
                if term == 0 {
                    continue;
                }
                match self.committed.insert(index, term) {
                    Some(t) if t != term => {
                        return Err(format!(
                            "committed entry lost: index {index} was committed at term {t}, node \
                             {id} holds term {term} there"
                        ))
                    }
                    _ => {}
                }
            }
            self.max_commit = self.max_commit.max(commit);
            // Leader completeness: a leader holds every committed entry (checked once per term).
            if raft.state == StateRole::Leader && self.led.get(id) != Some(&raft.term) {
                self.led.insert(*id, raft.term);
                let last = raft.raft_log.last_index();
                if let Some((&max, _)) = self.committed.iter().next_back() {
                    if last < max {
                        return Err(format!(
                            "leader completeness: node {id} leads term {} with last index \
                             {last}, below committed index {max}",
                            raft.term
                        ));
                    }
                }
                for (&index, &term) in self.committed.range(first..) {
                    if let Ok(t) = raft.raft_log.term(index) {
                        if t != term {
                            return Err(format!(
                                "leader completeness: node {id} leads term {} holding term {t} \
                                 at committed index {index} (term {term})",
                                raft.term
                            ));
                        }
                    }
                }
            }
        }
        for (id, node) in nodes {
            self.stored_commit(*id, node)?;
        }
        Ok(())
    }

    /// What a node's storage calls committed (its hard state's commit index, up or down) is what
    /// the leaders committed: a restart would treat it so.
    fn stored_commit(&mut self, id: u64, node: &SimNode) -> Result<(), String> {
        let commit = node.storage.rl().hard_state().commit;
        // Storage survives crashes, and nothing committed becomes uncommitted. On a real disk
        // (`storage-disk`), a Ready that only moves the commit index is not fsynced (`must_sync`
        // does not ask it, as in etcd-raft and raft-rs), so a crash may take the stored commit
        // index back to the last synced one; `sim::disk` checks it never goes below that.
        let before = self.stored.insert(id, commit).unwrap_or(0);
        if commit < before && node.disk.is_none() {
            return Err(format!(
                "commit durability: node {id}'s stored commit index went back from {before} to \
                 {commit}"
            ));
        }
        if commit > self.max_commit {
            return Err(format!(
                "commit durability: node {id} stored commit index {commit}, beyond any leader's                  commit ({})",
                self.max_commit
            ));
        }
        let (Some(&term), Ok(stored)) = (self.committed.get(&commit), node.storage.term(commit))
        else {
            return Ok(());
        };
        if stored != term && stored != 0 {
            return Err(format!(
                "commit durability: node {id} stored commit index {commit} over an entry of term                  {stored}; the leaders committed term {term} there"
            ));
        }
        Ok(())
    }

    /// A leader moved its commit index from `from` to `to` in its term: by counting, so the entry
    /// there is of its own term (§5.4.2, the rule Figure 8 of the paper shows is needed) and is
    /// durable on a quorum of its configuration. Records what it committed.
    fn leader_commits(
        &mut self,
        nodes: &BTreeMap<u64, SimNode>,
        leader: &SimNode,
        from: u64,
        to: u64,
    ) -> Result<(), String> {
        let Some(raw) = leader.raw.as_ref() else {
            return Ok(());
        };
        let log = &raw.raft.raft_log;
        let term = raw.raft.term;
        let Ok(top) = log.term(to) else {
            return Ok(());
        };
        if top != term {
            return Err(format!(
                "commit rule: leader {} of term {term} committed index {to} of term {top} by \
                 counting replicas (only entries of the leader's own term may be, §5.4.2)",
                leader.id
            ));
        }
        let now = raw.raft.prs.conf_state();
        if let Err(now_short) = durability::durable_on_quorum(nodes, &now, to, top) {
            let before = self.confs.get(&leader.id).filter(|before| **before != now);
            if before.is_none_or(|cs| durability::durable_on_quorum(nodes, cs, to, top).is_err()) {
                return Err(format!(
                    "commit durability: leader {} committed index {to} (term {top}) but \
                     {now_short}",
                    leader.id
                ));
            }
        }
        for index in (from + 1).max(log.first_index())..=to {
            if let Ok(t) = log.term(index) {
                if let Some(old) = self.leader_committed.insert(index, t) {
                    if old != t {
                        return Err(format!(
                            "committed entry lost: leader {} committed term {t} at index {index}, \
                             where term {old} was committed before",
                            leader.id
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A node that did not count the quorum itself learned that `from+1..=to` are committed: each
    /// entry it holds there must be the one a leader committed.
    fn learned_commits(&self, id: u64, node: &SimNode, from: u64, to: u64) -> Result<(), String> {
        let Some(raw) = node.raw.as_ref() else {
            return Ok(());
        };
        let log = &raw.raft.raft_log;
        for index in (from + 1).max(log.first_index())..=to {
            let Ok(t) = log.term(index) else {
                continue;
            };
            match self.leader_committed.get(&index) {
                Some(&lt) if lt == t => {}
                other => {
                    return Err(format!(
                        "commit without a leader: node {id} ({:?}, term {}) treats index {index} \
                         (term {t}) as committed; {}",
                        raw.raft.state,
                        raw.raft.term,
                        match other {
                            Some(lt) => format!("the leaders committed term {lt} there"),
                            None => "no leader committed it".to_string(),
                        }
                    ))
                }
            }
        }
        Ok(())
    }

    /// Log matching (§5.3) between every pair of running nodes: if two logs hold an entry with
    /// the same index and term, they are identical up to it. Costlier, so run periodically.
    pub fn check_log_matching(&self, nodes: &BTreeMap<u64, SimNode>) -> Result<(), String> {
        let up: Vec<(u64, &SimNode)> = nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(id, n)| (*id, n))
            .collect();
        for (i, (a, na)) in up.iter().enumerate() {
            for (b, nb) in &up[i + 1..] {
                let (la, lb) = (
                    &na.raw.as_ref().expect("up").raft.raft_log,
                    &nb.raw.as_ref().expect("up").raft.raft_log,
                );
                let low = la.first_index().max(lb.first_index());
                let high = la.last_index().min(lb.last_index());
                // Find the highest index where both agree, then everything below must agree.
                let mut agree = None;
                for index in (low..=high).rev() {
                    if let (Ok(x), Ok(y)) = (la.term(index), lb.term(index)) {
                        if x == y && x != 0 {
                            agree = Some(index);
                            break;
                        }
                    }
                }
                let Some(top) = agree else {
                    continue;
                };
                for index in low..=top {
                    if let (Ok(x), Ok(y)) = (la.term(index), lb.term(index)) {
                        if x != y {
                            return Err(format!(
                                "log matching: nodes {a} and {b} agree at index {top} but hold \
                                 terms {x} and {y} at index {index}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
