//! The nemesis: partitions of every shape, crashes and restarts, leadership transfers and
//! membership changes, some at random moments and some aimed at the moments bugs hide in (a
//! leader just elected, a membership change just proposed).

use super::options::{Clock, PlantedBug};
use super::Sim;
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use raft_core::StateRole;
use rand::RngExt;

impl Sim {
    /// Heals the network, or cuts it: one node off (both ways or outgoing only), a random split
    /// into two sides, or a bridge (two sides that only one node hears both of).
    pub(super) fn partition_or_heal(&mut self) -> Result<(), String> {
        if !self.cut.is_empty() {
            self.cut.clear();
            self.count("heal");
            self.log("network healed".to_string());
            return Ok(());
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        match self.rng.random_range(0..4u32) {
            0 | 1 => {
                // With quiescence, a sleeping leader is the victim of choice: cut off asleep, it
                // is the node whose stopped clock a lease could wrongly trust.
                let sleeping = self.sleeping_leader().filter(|_| self.rng.random_bool(0.5));
                let Some(victim) = sleeping.or_else(|| self.pick(&ids)) else {
                    return Ok(());
                };
                let one_way = self.rng.random_bool(0.3);
                self.isolate(victim, one_way);
            }
            shape => {
                let mut side: Vec<bool> = ids.iter().map(|_| self.rng.random_bool(0.5)).collect();
                let bridge = if shape == 3 { self.pick(&ids) } else { None };
                for (i, a) in ids.iter().enumerate() {
                    for (j, b) in ids.iter().enumerate() {
                        if side[i] != side[j] && bridge != Some(*a) && bridge != Some(*b) {
                            self.cut.insert((*a, *b));
                        }
                    }
                }
                side.retain(|s| *s);
                self.log(format!(
                    "network split {} / {}{}",
                    side.len(),
                    ids.len() - side.len(),
                    bridge.map_or(String::new(), |b| format!(", node {b} bridges"))
                ));
            }
        }
        self.count("partition");
        self.failure_detector_notices();
        Ok(())
    }

    /// A node went down or out of reach: each node's failure detector notices after a while of
    /// its own and wakes it (until then a sleeping group cannot notice). The contract bounds no
    /// delay, so some detectors are slow: a node may sleep on long after the others woke, elected
    /// and committed.
    pub(super) fn failure_detector_notices(&mut self) {
        if !self.f.quiescence {
            return;
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            if !self.wake_at.contains_key(&id) {
                let delay = if self.rng.random_bool(0.3) {
                    self.rng.random_range(1000..5000)
                } else {
                    self.rng.random_range(20..1000)
                };
                self.wake_at.insert(id, self.event + delay);
            }
        }
    }

    /// A running leader whose group sleeps on it, if any.
    pub(super) fn sleeping_leader(&self) -> Option<u64> {
        self.nodes.iter().find_map(|(id, n)| {
            n.raw
                .as_ref()
                .filter(|r| r.raft.state == StateRole::Leader && r.is_quiesced())
                .map(|_| *id)
        })
    }

    /// A running leader asleep while a newer index was committed elsewhere (it was cut off and
    /// the others elected and committed): a read it serves from before its nap would be stale.
    pub(super) fn stale_sleeping_leader(&self) -> Option<u64> {
        let newest = self.checker.max_commit();
        self.nodes.iter().find_map(|(id, n)| {
            n.raw
                .as_ref()
                .filter(|r| r.raft.state == StateRole::Leader && r.is_quiesced())
                .filter(|r| r.raft.raft_log.committed < newest)
                .map(|_| *id)
        })
    }

    /// A leader just put its group to sleep: now and then it is cut off at once, both ways, while
    /// it sleeps (the others then wake, elect and commit without it; a read may wake it first).
    pub(super) fn maybe_cut_off_sleeping_leader(&mut self, id: u64) {
        if self.faults && self.cut.is_empty() && self.rng.random_bool(0.5) {
            self.isolate(id, false);
            self.count("partition");
            self.failure_detector_notices();
        }
    }

    fn isolate(&mut self, victim: u64, one_way: bool) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids.into_iter().filter(|o| *o != victim) {
            self.cut.insert((victim, other));
            if !one_way {
                self.cut.insert((other, victim));
            }
        }
        self.log(format!(
            "node {victim} cut off ({})",
            if one_way {
                "outgoing only"
            } else {
                "both ways"
            }
        ));
    }

    pub(super) fn crash_or_restart(&mut self) -> Result<(), String> {
        if let Some(restarted) = self.restart_one() {
            return restarted;
        }
        let up = self.up_ids();
        if !self.f.crash_any && up.len() * 2 <= self.f.nodes as usize {
            return Ok(()); // keep a majority of the original size running
        }
        let Some(id) = self.pick(&up) else {
            return Ok(());
        };
        self.crash(id, "")
    }

    /// Restarts a node that is down and may restart now, if there is one.
    pub(super) fn restart_one(&mut self) -> Option<Result<(), String>> {
        let lease_wait = 2 * self.f.election_tick as u64;
        let down: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(id, n)| {
                !n.is_up() && self.lives.contains_key(id) && !self.condemned.contains(id)
            })
            // On a shared clock a restart takes at least two election timeouts, as a real one
            // does: the leases this node granted have lapsed (lease reads rest on that).
            .filter(|(_, n)| self.f.clock == Clock::Skewed || self.now >= n.crashed_at + lease_wait)
            .map(|(id, _)| *id)
            .collect();
        let id = self.pick(&down)?;
        Some(self.restart(id))
    }

    /// Crashes a node: everything it had not persisted is lost.
    pub(super) fn crash(&mut self, id: u64, when: &str) -> Result<(), String> {
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("known id");
        let disk = node.disk.is_some();
        let condemned = node.crash()?;
        node.crashed_at = now;
        let durable_term = node.storage.rl().hard_state().term;
        self.canonical.forget_undurable(id, durable_term);
        if disk {
            self.count("disk recovery");
        }
        *self.lives.entry(id).or_default() += 1;
        self.reads.retain(|_, r| r.node != id);
        self.count("crash");
        self.log(format!("node {id} crashed {when}"));
        if let Some((why, detected)) = condemned {
            let kind = if detected {
                "corruption detected at recovery"
            } else {
                "damage missed by recovery"
            };
            self.condemn(id, &format!("its damaged disk: {why}"), kind);
        }
        self.failure_detector_notices();
        Ok(())
    }

    pub(super) fn restart(&mut self, id: u64) -> Result<(), String> {
        let logger = self.logger.clone();
        let node = self.nodes.get_mut(&id).expect("known id");
        if self.opts.planted_bug == Some(PlantedBug::ForgetVoteOnRestart) {
            let mut store = node.storage.wl();
            let hs = store.mut_hard_state();
            hs.vote = 0;
            hs.term = 0;
            let forgotten = *hs;
            drop(store);
            if let Some(disk) = node.disk.as_mut() {
                disk.forget_vote(forgotten);
            }
        }
        if let Err(e) = node.start(&logger) {
            use raft_core::Storage;
            let hs = *node.storage.rl().hard_state();
            return Err(format!(
                "node {id}: restart failed: {e} (stored hard state {hs:?}, log {:?}..={:?})",
                node.storage.first_index(),
                node.storage.last_index()
            ));
        }
        self.timing.restarted(id);
        self.count("restart");
        let (applied, conf, snap) = {
            let n = &self.nodes[&id];
            (
                n.sm.applied_index,
                raft_proto::describe_conf_state(&n.sm.conf_state),
                n.storage.rl().snapshot_metadata().index,
            )
        };
        self.log(format!(
            "node {id} restarted (applied {applied}, snapshot {snap}, conf {conf})"
        ));
        Ok(())
    }

    /// Strikes a leader elected since the last event (with the run's `targeted` probability):
    /// cuts it off, in one direction or both, or crashes it before its first writes are durable.
    pub(super) fn strike_new_leader(&mut self) -> Result<(), String> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let term = self.nodes[&leader].raw.as_ref().map_or(0, |r| r.raft.term);
        if (term, leader) == self.last_leader {
            return Ok(());
        }
        self.last_leader = (term, leader);
        if !self.faults || !self.rng.random_bool(self.f.targeted) {
            return Ok(());
        }
        self.strike(leader, "new leader")
    }

    fn strike(&mut self, id: u64, why: &str) -> Result<(), String> {
        self.log(format!("nemesis strikes {why} {id}"));
        match self.rng.random_range(0..4u32) {
            3 => {
                // The leader keeps its learners and the nodes outside the group, and loses
                // every other voter: only voters may confirm anything now.
                let voters: Vec<u64> = self.nodes[&id]
                    .raw
                    .as_ref()
                    .map(|r| r.raft.prs.conf().voters.ids())
                    .unwrap_or_default();
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                self.cut.clear();
                for a in &ids {
                    for b in &ids {
                        let a_side = *a == id || !voters.contains(a);
                        let b_side = *b == id || !voters.contains(b);
                        if a_side != b_side {
                            self.cut.insert((*a, *b));
                        }
                    }
                }
                self.log(format!("leader {id} keeps only its learners and outsiders"));
                Ok(())
            }
            0 if self.opts.crashes => self.crash(id, "(struck)"),
            1 => {
                self.cut.clear();
                self.isolate(id, true);
                Ok(())
            }
            _ => {
                self.cut.clear();
                self.isolate(id, false);
                Ok(())
            }
        }
    }

    pub(super) fn transfer_something(&mut self) -> Result<(), String> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let voters: Vec<u64> = self.nodes[&leader]
            .raw
            .as_ref()
            .map(|r| r.raft.prs.conf().voters.ids())
            .unwrap_or_default();
        let Some(target) = self.pick(&voters) else {
            return Ok(());
        };
        self.request_transfer(leader, target, "nemesis");
        self.count("transfer");
        Ok(())
    }

    pub(super) fn change_membership(&mut self) -> Result<(), String> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let Some(raw) = self.nodes[&leader].raw.as_ref() else {
            return Ok(());
        };
        let conf = raw.raft.prs.conf();
        let voters = conf.voters.ids();
        let incoming_now: Vec<u64> = conf.voters.incoming.ids().to_vec();
        let learners = conf.learners.clone();
        let all: Vec<u64> = self.nodes.keys().copied().collect();
        let outside: Vec<u64> = all
            .iter()
            .copied()
            .filter(|id| !voters.contains(id) && !learners.contains(id))
            .collect();
        let single = |t: ConfChangeType, id: u64| ConfChangeSingle {
            change_type: t as i32,
            node_id: id,
        };
        let choice = self.rng.random_range(0..8u32);
        let changes = match choice {
            0 => self
                .pick(&outside)
                .map(|id| vec![single(ConfChangeType::AddLearnerNode, id)]),
            1 => self
                .pick(&learners)
                .map(|id| vec![single(ConfChangeType::AddNode, id)]),
            2 if voters.len() > 3 => self
                .pick(&voters)
                .filter(|id| *id != leader)
                .map(|id| vec![single(ConfChangeType::RemoveNode, id)]),
            3 => self
                .pick(&learners)
                .map(|id| vec![single(ConfChangeType::RemoveNode, id)]),
            4 if voters.len() >= 3 => {
                // Replace a voter in one joint change; the one replaced leaves, or stays on as a
                // learner (it waits in learners_next until the joint configuration is left).
                let out = self.pick(&voters).filter(|id| *id != leader);
                let inn = self.pick(&outside).or(self.pick(&learners));
                let demote = self.rng.random_bool(0.5);
                match (out, inn) {
                    (Some(o), Some(i)) => Some(vec![
                        if demote {
                            single(ConfChangeType::AddLearnerNode, o)
                        } else {
                            single(ConfChangeType::RemoveNode, o)
                        },
                        single(ConfChangeType::AddNode, i),
                    ]),
                    _ => None,
                }
            }
            // A small cluster grows by a voter directly.
            5 if voters.len() < 3 => self
                .pick(&outside)
                .map(|id| vec![single(ConfChangeType::AddNode, id)]),
            // The leader removes itself, or demotes itself to a learner: it steps down once the
            // change applies (`step_down_on_removal`), or keeps leading as a non-voter until
            // leadership is handed over.
            6 if voters.len() >= 2 && self.rng.random_bool(0.5) => {
                Some(vec![single(ConfChangeType::RemoveNode, leader)])
            }
            7 if voters.len() >= 2 && self.rng.random_bool(0.5) => {
                Some(vec![single(ConfChangeType::AddLearnerNode, leader)])
            }
            _ => None,
        };
        let Some(changes) = changes else {
            return Ok(());
        };
        // With a damaged disk in the run, a configuration must keep a majority of healthy voters.
        let mut incoming = incoming_now;
        for c in &changes {
            incoming.retain(|id| *id != c.node_id);
            if c.change_type == ConfChangeType::AddNode as i32 {
                incoming.push(c.node_id);
            }
        }
        if !self.keeps_healthy_majority(&incoming) {
            return Ok(());
        }
        // Members being added must be running to catch up.
        for c in &changes {
            if c.change_type != ConfChangeType::RemoveNode as i32
                && !self.nodes[&c.node_id].is_up()
                && !self.lives.contains_key(&c.node_id)
            {
                self.lives.insert(c.node_id, 0);
                self.restart(c.node_id)?;
            }
        }
        let cc = ConfChangeV2 {
            changes,
            ..Default::default()
        };
        let text = raft_proto::conf_changes_to_string(&cc.changes);
        let raw = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.raw.as_mut())
            .expect("leader is up");
        let result = raw.propose_conf_change(vec![], cc);
        let still_leads = raw.raft.state == StateRole::Leader;
        self.count("conf change");
        self.log(format!(
            "leader {leader} proposes conf change {text}: {result:?}"
        ));
        if result.is_ok() && still_leads && self.rng.random_bool(self.f.targeted / 2.0) {
            self.strike(leader, "leader changing membership")?;
        }
        Ok(())
    }
}
