//! The faulty phase: each event is drawn by weight from what can happen now (a node ticks, an
//! envelope arrives, a node takes or syncs a Ready batch, a client writes, a node campaigns or is
//! woken, a node crashes or restarts, a node on the shared log loses power while it writes a
//! batch, the network splits or heals).

use raft_core::Error as RaftError;
use raft_multi::Error;
use rand::RngExt;

use super::MultiSim;

/// One event in this many switches between a storm and a calm stretch.
const CALM_TOGGLE: u32 = 400;

/// The kinds of event of the faulty phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tick,
    Deliver,
    TakeReady,
    Fsync,
    Propose,
    Campaign,
    Wake,
    Crash,
    PowerCut,
    Restart,
    Partition,
    Heal,
}

impl MultiSim {
    /// Runs one random event.
    pub(crate) fn step_random(&mut self) -> Result<(), String> {
        let up = self.up_ids();
        let down: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| !n.is_up())
            .map(|n| n.id)
            .collect();
        let readies: Vec<u64> = up
            .iter()
            .copied()
            .filter(|id| {
                let node = &self.nodes[*id as usize - 1];
                node.pending.is_none() && node.multi.as_ref().is_some_and(|m| m.has_ready())
            })
            .collect();
        let pendings: Vec<u64> = up
            .iter()
            .copied()
            .filter(|id| self.nodes[*id as usize - 1].pending.is_some())
            .collect();
        // Nodes on the shared log whose batch waits for its write and fsync.
        let writing: Vec<u64> = pendings
            .iter()
            .copied()
            .filter(|id| self.nodes[*id as usize - 1].disk.is_some())
            .collect();
        // Faults come in storms with calm stretches between them, in which idle groups fall
        // asleep; the next storm then strikes groups that sleep (a leader crashes, a link is cut)
        // and only the failure detector can wake them.
        if self.rng.random_range(0..CALM_TOGGLE) == 0 {
            self.calm = !self.calm;
            self.log(
                if self.calm {
                    "a calm stretch begins"
                } else {
                    "a storm begins"
                }
                .to_string(),
            );
        }
        let chaos = if self.calm { 0.0 } else { self.f.chaos };
        let may_crash = !self.calm
            && self.opts.crashes
            && !up.is_empty()
            && (self.f.crash_any || up.len() > self.checker.majority);
        let weights = [
            (
                Kind::Tick,
                if up.is_empty() { 0 } else { self.f.tick_weight },
            ),
            // The network and the disks keep up with the clocks: the more there is to deliver
            // or write, the likelier the next event does it (a slow network only makes
            // elections split their votes for ever).
            (Kind::Deliver, 150 * self.wire.in_flight.len().min(8) as u32),
            (Kind::TakeReady, 150 * readies.len() as u32),
            (Kind::Fsync, 150 * pendings.len() as u32),
            (Kind::Propose, if up.is_empty() { 0 } else { 40 }),
            (Kind::Campaign, if up.is_empty() { 0 } else { 2 }),
            (Kind::Wake, if up.is_empty() { 0 } else { 2 }),
            (
                Kind::Crash,
                if may_crash {
                    (chaos * 5.0) as u32 + 1
                } else {
                    0
                },
            ),
            (
                Kind::PowerCut,
                if may_crash && !writing.is_empty() {
                    (chaos * 5.0) as u32 + 1
                } else {
                    0
                },
            ),
            (Kind::Restart, if down.is_empty() { 0 } else { 12 }),
            (
                Kind::Partition,
                if !self.calm && self.opts.partitions && self.wire.cut.is_empty() {
                    (chaos * 4.0) as u32 + 1
                } else {
                    0
                },
            ),
            (Kind::Heal, if self.wire.cut.is_empty() { 0 } else { 8 }),
        ];
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Ok(());
        }
        let mut draw = self.rng.random_range(0..total);
        let mut kind = Kind::Tick;
        for (k, w) in weights {
            if draw < w {
                kind = k;
                break;
            }
            draw -= w;
        }
        match kind {
            Kind::Tick => {
                let id = self.pick(&up);
                self.tick(id)?;
                self.log(format!("node {id} ticks"));
            }
            Kind::Deliver => self.deliver_one(self.f.reordering)?,
            Kind::TakeReady => {
                let id = self.pick(&readies);
                self.take_ready(id)?;
            }
            Kind::Fsync => {
                let id = self.pick(&pendings);
                self.fsync(id)?;
            }
            Kind::Propose => {
                let id = self.pick(&up);
                let group = self.pick_group();
                self.propose(id, group)?;
            }
            Kind::Campaign => {
                let id = self.pick(&up);
                let group = self.rng.random_range(1..=self.opts.groups);
                self.node(id)
                    .multi()
                    .campaign(group)
                    .map_err(|e| format!("node {id} could not campaign in group {group}: {e}"))?;
                self.touched.push((id, group));
                self.log(format!("node {id} campaigns in group {group}"));
            }
            Kind::Wake => {
                let id = self.pick(&up);
                if self.rng.random_bool(0.5) {
                    // A false alarm of the failure detector.
                    let others: Vec<u64> = (1..=self.f.nodes).filter(|n| *n != id).collect();
                    let other = self.pick(&others);
                    self.node_down(id, other);
                } else {
                    let group = self.rng.random_range(1..=self.opts.groups);
                    self.node(id)
                        .multi()
                        .wake(group)
                        .map_err(|e| format!("node {id} could not wake group {group}: {e}"))?;
                    self.log(format!("node {id} wakes group {group}"));
                }
            }
            Kind::Crash => {
                let id = self.pick(&up);
                self.crash(id)?;
            }
            Kind::PowerCut => {
                let id = self.pick(&writing);
                self.report.crashes += 1;
                self.power_loss(id, true)?;
            }
            Kind::Restart => {
                let id = self.pick(&down);
                self.restart(id)?;
            }
            Kind::Partition => self.partition(),
            Kind::Heal => {
                self.wire.cut.clear();
                self.log("the network heals".to_string());
            }
        }
        Ok(())
    }

    /// A client writes a new value into `group` through node `id` (forwarded to the leader).
    pub(crate) fn propose(&mut self, id: u64, group: u64) -> Result<(), String> {
        self.next_value += 1;
        let data = format!("{group}:{}", self.next_value).into_bytes();
        let node = self.node(id);
        let proposed = node.core_reads(|multi| multi.propose(group, Vec::new(), data));
        match proposed {
            Ok(()) => {
                self.log(format!(
                    "node {id} proposes value {} in group {group}",
                    self.next_value
                ));
            }
            Err(Error::Raft {
                source: RaftError::ProposalDropped,
                ..
            }) => {
                self.log(format!("node {id} drops a proposal in group {group}"));
            }
            Err(Error::Raft { source, .. }) if self.transient_read_error(id, &source) => {
                if let Some(disk) = self.node(id).disk.as_mut() {
                    disk.read_error_reported();
                }
                self.log(format!(
                    "node {id} drops a proposal in group {group}: a read error of its disk"
                ));
            }
            Err(error) => return Err(format!("node {id} proposing in group {group}: {error}")),
        }
        self.touched.push((id, group));
        Ok(())
    }

    /// Cuts the network: one node off both ways, one link one way, or a split in two sides. Each
    /// node that stops hearing another has its failure detector report it in time.
    fn partition(&mut self) {
        let nodes: Vec<u64> = (1..=self.f.nodes).collect();
        let cut: Vec<(u64, u64)> = match self.rng.random_range(0..3) {
            0 => {
                let alone = self.pick(&nodes);
                nodes
                    .iter()
                    .filter(|n| **n != alone)
                    .flat_map(|n| [(alone, *n), (*n, alone)])
                    .collect()
            }
            1 => {
                let from = self.pick(&nodes);
                let others: Vec<u64> = nodes.iter().copied().filter(|n| *n != from).collect();
                let to = self.pick(&others);
                vec![(from, to)]
            }
            _ => {
                let side: Vec<bool> = nodes.iter().map(|_| self.rng.random_bool(0.5)).collect();
                let mut cut = Vec::new();
                for (a, side_a) in nodes.iter().zip(&side) {
                    for (b, side_b) in nodes.iter().zip(&side) {
                        if side_a != side_b {
                            cut.push((*a, *b));
                        }
                    }
                }
                cut
            }
        };
        self.report.partitions += 1;
        self.log(format!("the network is cut: {cut:?}"));
        for (from, to) in &cut {
            self.wire.cut.insert((*from, *to));
            // `to` no longer hears `from`.
            self.schedule_notice(*to, *from);
        }
    }

    /// A group for a write: one of the hot groups mostly, now and then any group.
    fn pick_group(&mut self) -> u64 {
        if self.rng.random_bool(0.85) {
            self.rng.random_range(1..=self.f.hot_groups)
        } else {
            self.rng.random_range(1..=self.opts.groups)
        }
    }

    pub(crate) fn pick(&mut self, items: &[u64]) -> u64 {
        items[self.rng.random_range(0..items.len())]
    }
}
