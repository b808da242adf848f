//! The liveness phase: every fault healed, the cluster must, within a bound, elect a leader, commit
//! a new write on every member of its configuration, serve a linearizable read on every member,
//! carry out a membership change, and hand leadership over on request.
//!
//! Time advances in hops: each tick delivers the messages that were in flight when it began (one
//! network hop), lets every node write and apply what it has, then ticks every clock. So the bound
//! counts round trips, and a bug that makes recovery slow (a reject hint that backs off one entry
//! per round trip, a probe that never speeds up, a transfer that never finishes) fails it even
//! though the cluster would get there eventually.

use super::node::encode_write;
use super::Sim;
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};
use std::collections::{BTreeMap, BTreeSet};

/// Round trips (ticks) the healed cluster gets to commit a write everywhere, beyond catching up:
/// elections take a few randomized timeouts, fast backtracking a few round trips per node.
pub const LIVENESS_BOUND: u64 = 500;

/// Round trips allowed per entry a member lags behind when the cluster heals: with one entry per
/// message and one message in flight, catching up takes one round trip (two hops) per entry.
pub const LIVENESS_PER_ENTRY: u64 = 4;

/// Round trips a client waits for a read's answer before it asks again.
const READ_RETRY: u64 = 20;

/// Round trips an operator waits for a membership change to take effect before asking again.
const MEMBERSHIP_RETRY: u64 = 30;

/// What the liveness phase waits for, in order.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// A write committed and applied on every member, then a read served on every member.
    Write,
    /// A membership change (add as a learner: `true`, or remove) of a node, asked at a tick.
    Membership { change: (bool, u64), asked: u64 },
    /// A leadership transfer to `target`, asked in `from_term` at a tick.
    Transfer {
        target: u64,
        from_term: u64,
        asked: u64,
    },
}

impl Sim {
    /// Heals every fault, restarts every crashed member, and requires the cluster to elect a
    /// leader and commit a new write on every running member of its configuration within a bound.
    pub(super) fn heal_and_check_liveness(&mut self) -> Result<(), String> {
        self.faults = false;
        for node in self.nodes.values_mut() {
            if let Some(disk) = node.disk.as_mut() {
                disk.set_faults(false);
            }
        }
        // The failure detector sees every node that went down.
        self.wake_at.clear();
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.wake(id, "while healing");
        }
        self.cut.clear();
        self.delayed.clear();
        let down: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(id, n)| {
                !n.is_up() && self.lives.contains_key(id) && !self.condemned.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in down {
            self.restart(id)?;
        }
        if !self.healthy_quorum_remains() {
            // Nodes stopped for good left no quorum of healthy ones: no progress can be demanded
            // (the nemesis's budget should make this impossible; it is counted, not hidden).
            self.count("liveness not checked");
            self.log("healed: no quorum of healthy nodes remains".to_string());
            return self.finish_without_leader();
        }
        self.log("healed: liveness phase".to_string());
        let logs: Vec<(u64, u64)> = self
            .nodes
            .values()
            .filter_map(|n| n.raw.as_ref())
            .map(|r| (r.raft.raft_log.last_index(), r.raft.raft_log.committed))
            .collect();
        let max_last = logs.iter().map(|l| l.0).max().unwrap_or(0);
        let min_commit = logs.iter().map(|l| l.1).min().unwrap_or(0);
        let lag = max_last.saturating_sub(min_commit);
        let bound = LIVENESS_BOUND + LIVENESS_PER_ENTRY * lag;
        self.report.recovery_bound = bound;
        // The write, and the leader and term that accepted it (a client retries with a new
        // leader: a write in flight when leadership changes may be lost, as in any Raft).
        let mut proposed: Option<(u64, u64, u64)> = None;
        // Per member: the read it has outstanding and the tick it was issued (a client retries
        // a read that gets no answer for a while, or that was dropped), or 0 once one was served.
        let mut reads: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut stage = Stage::Write;
        // When the operator last asked a leader that is no voter to hand over.
        let mut handover = 0;
        for tick in 0..bound {
            if tick % 25 == 24 {
                // Applications snapshot periodically; a follower that asked for a snapshot
                // (`request_snapshot`) waits for one newer than its log.
                for id in self.up_ids() {
                    let node = self.nodes.get_mut(&id).expect("known id");
                    node.compact(10)
                        .map_err(|e| format!("node {id}: compaction failed: {e}"))?;
                }
            }
            self.hop()?;
            self.tick_all()?;
            self.event += 1;
            self.check()?;
            let Some(leader) = self.leader() else {
                continue;
            };
            self.operate_membership(leader)?;
            let term = self.nodes[&leader].raw.as_ref().map_or(0, |r| r.raft.term);
            if self.leads_without_vote(leader) {
                // A leader that is no voter any more (`step_down_on_removal` off) leads until the
                // operator hands leadership to a voter.
                if tick >= handover + self.f.election_tick as u64 + 5 {
                    if let Some(target) = self.transfer_target(leader, term) {
                        self.request_transfer(leader, target, "liveness");
                        handover = tick;
                    }
                }
                continue;
            }
            let done = match stage {
                Stage::Write => {
                    if proposed.is_none_or(|(_, l, t)| (l, t) != (leader, term)) {
                        self.next_value += 1;
                        let value = self.next_value;
                        let raw = self.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut());
                        if let Some(raw) = raw {
                            if raw.propose(vec![], encode_write(255, value)).is_ok() {
                                proposed = Some((value, leader, term));
                            }
                        }
                    }
                    // Then every member serves a linearizable read: it knows its leader, and
                    // the read's round reaches the leader and back.
                    proposed.is_some_and(|(value, ..)| self.all_members_applied(leader, value))
                        && self.all_members_read(leader, tick, &mut reads)?
                }
                Stage::Membership { change, asked } => {
                    // A membership change takes effect on every member.
                    if self.membership_changed(leader, change, term) {
                        true
                    } else {
                        if tick >= asked + MEMBERSHIP_RETRY {
                            self.propose_membership(leader, change)?;
                            stage = Stage::Membership {
                                change,
                                asked: tick,
                            };
                        }
                        false
                    }
                }
                Stage::Transfer {
                    target,
                    from_term,
                    asked,
                } => {
                    // Leadership moves to another voter on request, and the new leader commits.
                    let raw = self.nodes[&leader].raw.as_ref().expect("leader is up");
                    let log = &raw.raft.raft_log;
                    let committed_own = log.term(log.committed).ok() == Some(raw.raft.term);
                    if leader == target && term > from_term && committed_own {
                        true
                    } else {
                        if leader != target && tick >= asked + self.f.election_tick as u64 + 5 {
                            // An unfinished transfer is aborted after an election timeout.
                            self.request_transfer(leader, target, "liveness");
                            stage = Stage::Transfer {
                                target,
                                from_term,
                                asked: tick,
                            };
                        }
                        false
                    }
                }
            };
            if !done {
                continue;
            }
            if matches!(stage, Stage::Write) {
                if let Some(change) = self.membership_change(leader) {
                    self.propose_membership(leader, change)?;
                    stage = Stage::Membership {
                        change,
                        asked: tick,
                    };
                    continue;
                }
            }
            if !matches!(stage, Stage::Transfer { .. }) {
                if let Some(target) = self.transfer_target(leader, term) {
                    self.request_transfer(leader, target, "liveness");
                    stage = Stage::Transfer {
                        target,
                        from_term: term,
                        asked: tick,
                    };
                    continue;
                }
            }
            self.report.recovery_ticks = tick;
            return self.finish(leader);
        }
        let stage = match stage {
            Stage::Write => "no write committed and no read served on every member".to_string(),
            Stage::Membership {
                change: (add, id), ..
            } => format!(
                "the {} of node {id} never took effect on every member",
                if add {
                    "addition as a learner"
                } else {
                    "removal"
                }
            ),
            Stage::Transfer { target, .. } => {
                format!("leadership never moved to {target} on request")
            }
        };
        Err(format!(
            "liveness: after healing, {stage} within {bound} round trips ({LIVENESS_BOUND} + \
             {LIVENESS_PER_ENTRY} per entry of the {lag} the most behind lagged; leader {:?})",
            self.leader()
        ))
    }

    /// What an operator does once a leader is known: every member of its configuration runs, and
    /// every node the group removed is stopped. (Without pre-vote and check-quorum a removed node
    /// that never learned of its removal disrupts the group forever with campaigns of ever higher
    /// terms, thesis §4.2.3; no Raft implementation prevents that, operators stop such nodes.)
    fn operate_membership(&mut self, leader: u64) -> Result<(), String> {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return Ok(());
        };
        let members: BTreeSet<u64> = raw.raft.prs.ids().collect();
        // A removed node is stopped only once every running member applied a configuration
        // without it, and never while it leads: until then it may be the only one that can tell
        // the others its removal was committed (a leader that removed itself hands over first).
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let up = self.nodes[&id].is_up();
            let known_removed = members.iter().all(|m| {
                self.nodes.get(m).is_none_or(|n| {
                    let cs = &n.sm.conf_state;
                    !n.is_up()
                        || !cs.voters.contains(&id)
                            && !cs.voters_outgoing.contains(&id)
                            && !cs.learners.contains(&id)
                })
            });
            if members.contains(&id) && !up && !self.condemned.contains(&id) {
                self.lives.entry(id).or_insert(0);
                self.restart(id)?;
            } else if !members.contains(&id) && up && id != leader && known_removed {
                let node = self.nodes.get_mut(&id).expect("known id");
                let condemned = node.crash()?;
                let durable_term = node.storage.rl().hard_state().term;
                self.canonical.forget_undurable(id, durable_term);
                *self.lives.entry(id).or_default() += 1;
                self.log(format!("node {id} stopped: no longer a member"));
                if let Some((why, _)) = condemned {
                    // Stopped anyway; it stays stopped.
                    self.condemn(
                        id,
                        &format!("its damaged disk: {why}"),
                        "damage found at stop",
                    );
                }
            }
        }
        Ok(())
    }

    /// The membership change the liveness phase asks for: a spare that never ran joins as a
    /// learner (`true`), or else a learner leaves (`false`).
    fn membership_change(&mut self, leader: u64) -> Option<(bool, u64)> {
        let raw = self.nodes[&leader].raw.as_ref()?;
        let members: BTreeSet<u64> = raw.raft.prs.ids().collect();
        let learners = raw.raft.prs.conf().learners.clone();
        let fresh: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| !members.contains(id) && !self.lives.contains_key(id))
            .collect();
        if let Some(id) = fresh.first() {
            return Some((true, *id));
        }
        learners.first().map(|id| (false, *id))
    }

    fn propose_membership(&mut self, leader: u64, (add, id): (bool, u64)) -> Result<(), String> {
        if add && !self.nodes[&id].is_up() && !self.lives.contains_key(&id) {
            self.lives.insert(id, 0);
            self.restart(id)?;
        }
        let change_type = if add {
            ConfChangeType::AddLearnerNode
        } else {
            ConfChangeType::RemoveNode
        };
        let cc = ConfChangeV2 {
            changes: vec![ConfChangeSingle {
                change_type: change_type as i32,
                node_id: id,
            }],
            ..Default::default()
        };
        if let Some(raw) = self.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut()) {
            let result = raw.propose_conf_change(vec![], cc);
            self.log(format!(
                "leader {leader} proposes {change_type:?} {id} (liveness): {result:?}"
            ));
        }
        Ok(())
    }

    /// Whether the change shows in the leader's configuration and every running member applied
    /// the same configuration.
    fn membership_changed(&self, leader: u64, (add, id): (bool, u64), term: u64) -> bool {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return false;
        };
        let conf = raw.raft.prs.conf();
        if add != conf.learners.contains(&id) || conf.voters.is_joint() {
            return false;
        }
        let sorted = |cs: &ConfState| {
            let mut v = cs.voters.clone();
            v.sort_unstable();
            let mut l = cs.learners.clone();
            l.sort_unstable();
            (v, l)
        };
        let want = sorted(&raw.raft.prs.conf_state());
        raw.raft.prs.ids().all(|m| {
            self.nodes.get(&m).is_some_and(|n| {
                !n.is_up() || self.silent(n, term) || sorted(&n.sm.conf_state) == want
            })
        })
    }

    /// Whether `leader` leads a plain configuration in which it is no voter.
    fn leads_without_vote(&self, leader: u64) -> bool {
        self.nodes[&leader].raw.as_ref().is_some_and(|r| {
            let voters = &r.raft.prs.conf().voters;
            !voters.is_joint() && !voters.contains(leader)
        })
    }

    /// A running voter other than `leader` to hand leadership to, if there is one.
    fn transfer_target(&mut self, leader: u64, term: u64) -> Option<u64> {
        let raw = self.nodes[&leader].raw.as_ref()?;
        let voters = raw.raft.prs.conf().voters.ids();
        // A voter refuses a candidate of lower priority whose log is no longer than its own
        // (raft-rs priority elections, transfers included): only a top-priority voter can take
        // over on request.
        let top = voters.iter().map(|id| self.f.priority(*id)).max()?;
        let candidates: Vec<u64> = voters
            .into_iter()
            .filter(|id| *id != leader && self.f.priority(*id) == top)
            .filter(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| n.is_up() && !self.silent(n, term))
            })
            .collect();
        self.pick(&candidates)
    }

    /// Asks `leader` to hand leadership to `target` (logged with `why`); the check-quorum window
    /// restarts then.
    pub(super) fn request_transfer(&mut self, leader: u64, target: u64, why: &str) {
        let Some(raw) = self.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut()) else {
            return;
        };
        let term = raw.raft.term;
        let cs = raw.raft.prs.conf_state();
        raw.transfer_leader(target);
        let voters: Vec<u64> = cs
            .voters
            .iter()
            .chain(&cs.voters_outgoing)
            .copied()
            .collect();
        self.timing.transfer_requested(leader, term, &voters);
        self.log(format!("leader {leader} transfers to {target} ({why})"));
    }

    /// Whether every running member of the leader's configuration has served a read issued
    /// since its write was applied everywhere; issues (and reissues) the reads still wanted.
    fn all_members_read(
        &mut self,
        leader: u64,
        tick: u64,
        reads: &mut BTreeMap<u64, (u64, u64)>,
    ) -> Result<bool, String> {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return Ok(false);
        };
        let members: Vec<u64> = raw.raft.prs.ids().collect();
        let term = raw.raft.term;
        let mut done = true;
        for id in members {
            if !self
                .nodes
                .get(&id)
                .is_some_and(|n| n.is_up() && !self.silent(n, term))
            {
                continue;
            }
            match reads.get(&id) {
                Some(&(0, _)) => continue,
                Some(&(read_id, _)) if !self.reads.contains_key(&read_id) => {
                    reads.insert(id, (0, tick));
                    continue;
                }
                Some(&(_, issued)) if tick < issued + READ_RETRY => {}
                _ => {
                    let read_id = self.start_read(id);
                    reads.insert(id, (read_id, tick));
                }
            }
            done = false;
        }
        Ok(done)
    }

    fn all_members_applied(&self, leader: u64, value: u64) -> bool {
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return false;
        };
        if raw.raft.prs.conf().voters.is_joint() {
            // A joint configuration is left (automatically, or by the leave the simulator never
            // proposes explicitly): recovery includes leaving it.
            return false;
        }
        let members: Vec<u64> = raw.raft.prs.ids().collect();
        let term = raw.raft.term;
        members.iter().all(|id| {
            self.condemned.contains(id)
                || self
                    .nodes
                    .get(id)
                    .is_some_and(|n| n.sm.kv.get(&255) == Some(&value) || self.silent(n, term))
        })
    }

    /// Without check-quorum and pre-vote, a member that reached a higher term than the leader's
    /// `term` (it voted in an election the leader never heard of) silently ignores the leader's
    /// messages, and if it cannot campaign itself (it is no voter in the configuration it knows)
    /// nothing ever tells the leader: etcd and raft-rs behave alike, and an operator has to step
    /// in. Such a member is not waited for.
    fn silent(&self, n: &super::node::SimNode, term: u64) -> bool {
        !self.f.check_quorum
            && !self.f.pre_vote
            && n.raw.as_ref().is_some_and(|r| r.raft.term > term)
    }

    /// One network hop with no faults: delivers what is in flight now, then lets every node take
    /// its Readys, write and apply (what they send goes out in the next hop).
    fn hop(&mut self) -> Result<(), String> {
        let in_flight: Vec<_> = self.in_flight.drain(..).collect();
        for m in in_flight {
            self.deliver(m)?;
            self.check()?;
        }
        for id in self.up_ids() {
            for _ in 0..100 {
                let has_ready = self.nodes[&id].raw.as_ref().is_some_and(|r| r.has_ready());
                if !has_ready && self.nodes[&id].unpersisted.is_empty() {
                    break;
                }
                // Checked after every step, as in the faulty phase: a leader's commit must be
                // seen while it still leads (applying its own removal next may end that).
                if has_ready {
                    self.take_ready(id)?;
                    self.check()?;
                }
                while !self.nodes[&id].unpersisted.is_empty() {
                    self.persist(id)?;
                    self.check()?;
                }
            }
            let node = &self.nodes[&id];
            let servable = node.reads.iter().any(|r| r.index <= node.sm.applied_index);
            if !node.to_apply.is_empty() || servable {
                self.apply(id, usize::MAX)?;
            }
            self.check()?;
        }
        Ok(())
    }

    /// Ends a run whose liveness could not be demanded, with the safety checks that still apply.
    fn finish_without_leader(&mut self) -> Result<(), String> {
        self.checker.check_log_matching(&self.nodes)?;
        self.report.events = self.event;
        self.report.terms_with_leader = self.checker.terms_with_leader();
        Ok(())
    }

    fn finish(&mut self, leader: u64) -> Result<(), String> {
        self.checker.check_log_matching(&self.nodes)?;
        let raw = self.nodes[&leader].raw.as_ref().expect("leader is up");
        self.report.final_leader = (leader, raw.raft.term);
        self.report.final_voters = raw.raft.prs.conf().voters.ids();
        self.report.events = self.event;
        self.report.writes_committed = self.nodes[&leader].sm.applied_index;
        self.report.terms_with_leader = self.checker.terms_with_leader();
        Ok(())
    }
}
