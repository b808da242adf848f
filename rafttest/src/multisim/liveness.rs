//! After the faulty phase: the network heals, every node restarts, the failure detector's pending
//! notices arrive, and then, in rounds (every running node ticks once, then Readys are synced and
//! envelopes delivered until nothing moves):
//! 1. within a bound every group has a leader that every node follows, and a new write proposed
//!    in every group is applied on every node;
//! 2. left idle, every group falls asleep again on every node within a bound;
//! 3. the node leading the most groups crashes while they sleep; its followers learn it only from
//!    their failure detectors (each in its own time) and must then, within a bound, elect new
//!    leaders among the other nodes and apply another write in every group on each of them.

use std::collections::BTreeSet;

use raft_core::{StateRole, Storage};
use rand::RngExt;

use super::{MultiPlantedBug, MultiSim};

/// Passes of syncing and delivering after which a round that still moves is a livelock.
const SETTLE_PASSES: usize = 500;

impl MultiSim {
    pub(crate) fn heal_and_check_liveness(&mut self) -> Result<(), String> {
        self.wire.cut.clear();
        self.healed = true;
        // Disks stop failing fsyncs too (a crash still loses what was not synced).
        self.set_disk_faults(false);
        self.report.faulty_naps = self.nodes.iter().map(|n| n.naps()).sum();

        self.log("the network heals for good".to_string());
        let down: Vec<u64> = (1..=self.f.nodes)
            .filter(|id| !self.node(*id).is_up())
            .collect();
        for id in down {
            self.restart(id)?;
        }
        for notice in self.detector.take_all() {
            self.node_down(notice.on, notice.down);
        }
        let everyone: Vec<u64> = (1..=self.f.nodes).collect();
        let election = self.f.election_tick as u64;
        self.report.recovery_rounds =
            self.until_led_and_written(&everyone, 30 * election + 100, "after healing")?;
        let sleep_bound = u64::from(self.f.quiesce_after) + 10 * election + 50;
        self.until_asleep(sleep_bound)?;

        let victim = self.node_leading_most_groups();
        self.crash(victim)?;
        let rest: Vec<u64> = everyone
            .iter()
            .copied()
            .filter(|id| *id != victim)
            .collect();
        // The notices come within two election timeouts (in rounds); the crash's own notices,
        // scheduled in events, are replaced by these.
        self.detector.due.clear();
        if self.opts.planted_bug != Some(MultiPlantedBug::NoFailureDetector) {
            for on in &rest {
                let delay = self.rng.random_range(0..=2 * election);
                self.detector.due.push(super::detector::Notice {
                    event: self.event + delay,
                    on: *on,
                    down: victim,
                });
            }
        }
        let context = format!("after node {victim}, leading the most groups, crashed");
        self.report.failover_rounds =
            self.until_led_and_written(&rest, 30 * election + 100, &context)?;
        self.restart(victim)?;
        Ok(())
    }

    /// One round: every running node ticks once, then the cluster settles.
    fn round(&mut self) -> Result<(), String> {
        self.event += 1;
        self.deliver_notices()?;
        for id in self.up_ids() {
            self.tick(id)?;
        }
        self.log("every running node ticks".to_string());
        for _ in 0..SETTLE_PASSES {
            let mut moved = false;
            for id in self.up_ids() {
                if self.node(id).pending.is_some() {
                    self.fsync(id)?;
                    moved = true;
                }
                if self.node(id).multi().has_ready() {
                    self.take_ready(id)?;
                    self.fsync(id)?;
                    moved = true;
                }
            }
            while !self.wire.in_flight.is_empty() {
                self.deliver_one(0.0)?;
                moved = true;
            }
            if !moved {
                return self.check_all_groups();
            }
        }
        Err(format!(
            "liveness: the healed cluster still exchanged messages after {SETTLE_PASSES} passes \
             without a tick"
        ))
    }

    /// Runs rounds until every group has a leader that all of `nodes` follow and a write
    /// proposed in it is applied on all of them; returns the rounds it took.
    fn until_led_and_written(
        &mut self,
        nodes: &[u64],
        bound: u64,
        context: &str,
    ) -> Result<u64, String> {
        let groups = self.opts.groups;
        let mut unled: BTreeSet<u64> = (1..=groups).collect();
        // Per group: the values proposed and the round of the last proposal, until one of them
        // is applied on every node.
        let mut writes: Vec<(Vec<Vec<u8>>, u64)> = vec![(Vec::new(), 0); groups as usize];
        let mut unwritten: BTreeSet<u64> = (1..=groups).collect();
        let retry = 3 * self.f.election_tick as u64;
        for round in 1..=bound {
            self.round()?;
            unled.retain(|group| !self.is_led(*group, nodes));
            let pending: Vec<u64> = unwritten.iter().copied().collect();
            for group in pending {
                let (values, proposed_at) = &writes[group as usize - 1];
                if self.applied_everywhere(group, values, nodes) {
                    unwritten.remove(&group);
                    continue;
                }
                // Proposed once the group has a leader (before, it would only be dropped), and
                // again if a proposal was lost with a leader that failed.
                let led = !unled.contains(&group);
                if led && (values.is_empty() || round >= proposed_at + retry) {
                    let id = self.pick(nodes);
                    self.propose(id, group)?;
                    let value = format!("{group}:{}", self.next_value).into_bytes();
                    let slot = &mut writes[group as usize - 1];
                    slot.0.push(value);
                    slot.1 = round;
                }
            }
            self.check_touched()?;
            if unled.is_empty() && unwritten.is_empty() {
                return Ok(round);
            }
        }
        let example = unled.first().or(unwritten.first()).copied().unwrap_or(0);
        Err(format!(
            "liveness: {context}, within {bound} rounds {} groups never had a leader that nodes \
             {nodes:?} all follow and {} groups did not apply a new write on all of them; group \
             {example}: {}",
            unled.len(),
            unwritten.len(),
            self.describe_group(example)
        ))
    }

    /// Runs idle rounds until every group sleeps on every node.
    fn until_asleep(&mut self, bound: u64) -> Result<(), String> {
        for _ in 0..bound {
            self.round()?;
            let all_asleep = self.up_ids().into_iter().all(|id| {
                let status = self.node(id).multi().status();
                status.quiesced_groups == status.groups
            });
            if all_asleep {
                return Ok(());
            }
        }
        let awake: Vec<(u64, usize)> = self
            .up_ids()
            .into_iter()
            .map(|id| {
                let status = self.node(id).multi().status();
                (id, status.groups - status.quiesced_groups)
            })
            .collect();
        let example = (1..=self.opts.groups)
            .find(|group| {
                self.nodes.iter().any(|n| {
                    n.multi
                        .as_ref()
                        .and_then(|m| m.group_status(*group))
                        .is_some_and(|status| !status.asleep)
                })
            })
            .unwrap_or(0);
        Err(format!(
            "liveness: idle for {bound} rounds after healing, groups are still awake (node, \
             awake groups): {awake:?}; group {example}: {}",
            self.describe_group(example)
        ))
    }

    /// Whether one of `nodes` leads `group` and all of them follow it in its term.
    fn is_led(&self, group: u64, nodes: &[u64]) -> bool {
        let replicas: Vec<_> = nodes
            .iter()
            .filter_map(|id| self.nodes[*id as usize - 1].multi.as_ref())
            .filter_map(|multi| Some((multi.node_id(), multi.group_status(group)?)))
            .collect();
        let Some((leader_id, leader)) = replicas.iter().find(|(_, r)| r.role == StateRole::Leader)
        else {
            return false;
        };
        replicas.len() == nodes.len()
            && replicas
                .iter()
                .all(|(_, r)| r.term == leader.term && r.leader_id == *leader_id)
    }

    /// Whether one of `values` was applied in `group` on every node of `nodes`.
    fn applied_everywhere(&self, group: u64, values: &[Vec<u8>], nodes: &[u64]) -> bool {
        let history = &self.checker.groups[group as usize - 1];
        let Some(index) = history
            .applied
            .iter()
            .rev()
            .find(|(_, (_, data))| values.iter().any(|v| v[..] == data[..]))
            .map(|(index, _)| *index)
        else {
            return false;
        };
        nodes
            .iter()
            .all(|id| self.nodes[*id as usize - 1].applied[group as usize - 1] >= index)
    }

    /// The running node that leads the most groups.
    fn node_leading_most_groups(&self) -> u64 {
        let mut best = (0, 1);
        for node in &self.nodes {
            let Some(multi) = node.multi.as_ref() else {
                continue;
            };
            let led = (1..=self.opts.groups)
                .filter(|g| {
                    multi
                        .group_status(*g)
                        .is_some_and(|status| status.role == StateRole::Leader)
                })
                .count();
            if led > best.0 {
                best = (led, node.id);
            }
        }
        best.1
    }

    /// One line per node about `group`: role, term, leader, commit, applied, asleep, and what
    /// keeps a leader from sleeping.
    fn describe_group(&self, group: u64) -> String {
        let mut lines = Vec::new();
        for node in &self.nodes {
            let store = &node.stores[group as usize - 1];
            let commit = store.initial_state().map(|state| state.hard_state.commit);
            let durable = format!(
                "synced last {} commit {}",
                store.last_index().unwrap_or(0),
                commit.unwrap_or(0)
            );
            let multi = node.multi.as_ref();
            let line = match multi.and_then(|m| m.group_status(group)) {
                None => format!("node {} down ({durable})", node.id),
                Some(status) => {
                    let blocker = multi
                        .and_then(|m| m.live_group(group))
                        .and_then(|raw| raw.quiesce_blocker());
                    format!(
                        "node {} {:?} term {} lead {} commit {} last {} applied {} asleep {} \
                         frozen {} blocker {:?} ({durable})",
                        node.id,
                        status.role,
                        status.term,
                        status.leader_id,
                        status.commit,
                        status.last_index,
                        node.applied[group as usize - 1],
                        status.asleep,
                        status.frozen,
                        blocker
                    )
                }
            };
            lines.push(line);
        }
        lines.join("; ")
    }
}
