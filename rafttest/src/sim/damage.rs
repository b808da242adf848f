//! A damaged disk, and what a node does when its storage reports damage (issue 16: "corruption
//! is detected, never served").
//!
//! In a seed with `Features::damaged_disk`, one node on `storage-disk` among the initial voters
//! (of at least three) is the *victim*: while the nemesis runs, bits flip at rest in what its
//! disk holds (a sealed segment, the live segment or the snapshot, at random), or its writes now
//! and then land one sector away from where they were aimed, or both; or, now and then, the
//! next write to its state file (a checkpoint: a snapshot created or installed, a compaction)
//! is misdirected or lost by the device, acknowledged and fsynced all the same. It keeps no
//! entry cache, so that what it applies and sends comes from its disk, and small segments, so
//! that it has sealed ones.
//!
//! A node whose storage reports corruption stops serving at once, as a real process exits: what
//! its core was building when the read failed is dropped, nothing more leaves it. It does not
//! come back. Its disk no longer holds what it promised (votes, acknowledged entries), and with
//! a fixed identity a node that returned with less would let a quorum that counted its promises
//! be undone (a shorter log that votes, thesis §3.8 and "Protocol-Aware Recovery for
//! Consensus-Based Storage", Alagappan et al., FAST '18). Repairing it would mean that protocol's
//! recovery, or rejoining under a new identity through a membership change (not done here). A
//! damaged disk that recovery refuses after a crash is condemned the same way; one that recovery
//! accepts without noticing that it lost synced state (the cases `storage-disk` documents it
//! cannot always tell: the damage hit the last synced batch and the crash its sync mark, or
//! zeroed a segment from a record's start to its end) is condemned too, and counted apart,
//! since a real node would have come back from it.
//!
//! Damage to the state file's writes alone is different: `storage-disk` writes a witness of each
//! checkpoint to the log, and must roll a checkpoint whose slot write never landed forward from
//! it. So a disk whose only damage was to its state file must come back whole (counted when it
//! rolled a checkpoint forward); recovery refusing it, or missing what it lost, is a violation.
//!
//! So a run may lose one node for good. The nemesis keeps a quorum of healthy nodes: it damages at
//! most one node, and every membership change it proposes leaves a majority of healthy voters in
//! each half of the new configuration, counting the victim as lost from the start. The liveness
//! phase then waits only for the healthy members, and demands progress only while a quorum of
//! them remains (which the rule above guarantees; a run where it did not would be counted as
//! "liveness not checked" rather than pass unnoticed).

use std::collections::BTreeSet;

use rand::RngExt;

use super::Sim;

/// The chance, per event, that the victim's disk has a bit flipped at rest.
const FLIPS_PER_EVENT: f64 = 0.002;

/// The chance, per write, that a write to the victim's disk is misdirected.
const MISDIRECTED_WRITES: f64 = 0.01;

/// The chance, per event, that the next write to the victim's state file is damaged (if no
/// damage waits for it already).
const STATE_FILE_DAMAGE_PER_EVENT: f64 = 0.005;

/// The victim's segments are small, so that its log has sealed segments to damage.
const VICTIM_SEGMENT_BYTES: u64 = 1024;

/// What damages the victim's disk: bits flipped at rest, misdirected writes, or both; or lost
/// and misdirected writes of its state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Damage {
    /// Bits flip at rest.
    Flips,
    /// Writes are misdirected.
    Misdirected,
    /// Both.
    Both,
    /// The state file's writes are now and then misdirected or lost.
    StateFile,
}

impl Sim {
    /// Picks the victim, if the seed has a damaged disk: a node on `storage-disk` among the
    /// initial voters, of whom there are at least three. It keeps no entry cache, in its disk
    /// storage or for applying, so that what it applies and sends is read back from its disk,
    /// and its segments are small, so that it has sealed ones.
    pub(super) fn choose_victim(&mut self) -> Result<(), String> {
        if !self.f.damaged_disk || self.f.nodes < 3 {
            return Ok(());
        }
        let candidates: Vec<u64> = (1..=self.f.nodes)
            .filter(|id| self.nodes[id].disk.is_some())
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let victim = candidates[self.damage_rng.random_range(0..candidates.len())];
        let damage = [
            Damage::Flips,
            Damage::Misdirected,
            Damage::Both,
            Damage::StateFile,
        ][self.damage_rng.random_range(0..4)];
        let logger = self.logger.clone();
        let node = self.nodes.get_mut(&victim).expect("a candidate");
        node.stop();
        node.config.max_apply_cache_bytes = 0;
        if let Some(disk) = node.disk.as_mut() {
            disk.reopen(0, VICTIM_SEGMENT_BYTES)?;
            if matches!(damage, Damage::Misdirected | Damage::Both) {
                disk.set_misdirected_writes(MISDIRECTED_WRITES);
            }
        }
        node.start(&logger)
            .map_err(|e| format!("start {victim}: {e}"))?;
        self.victim = Some((victim, damage));
        self.count("damaged disk");
        if self.opts.verbose {
            println!("node {victim}'s disk will be damaged ({damage:?})");
        }
        Ok(())
    }

    /// Now and then, flips a bit at rest on the victim's disk while it runs.
    pub(super) fn damage_at_rest(&mut self) {
        let Some((victim, Damage::Flips | Damage::Both)) = self.victim else {
            return;
        };
        if !self.faults || !self.nodes[&victim].is_up() {
            return;
        }
        if !self.damage_rng.random_bool(FLIPS_PER_EVENT) {
            return;
        }
        let rng = &mut self.damage_rng;
        let flipped = self
            .nodes
            .get_mut(&victim)
            .and_then(|n| n.disk.as_mut())
            .and_then(|disk| disk.flip_at_rest(rng));
        if let Some(what) = flipped {
            self.log(format!("node {victim}'s disk: {what}"));
        }
    }

    /// Now and then, damages the next write to the victim's state file, if its damage is that:
    /// misdirected or lost, at random.
    pub(super) fn damage_state_file(&mut self) {
        let Some((victim, Damage::StateFile)) = self.victim else {
            return;
        };
        if !self.faults || !self.nodes[&victim].is_up() {
            return;
        }
        if !self.damage_rng.random_bool(STATE_FILE_DAMAGE_PER_EVENT) {
            return;
        }
        let lost = self.damage_rng.random_bool(0.5);
        let armed = self
            .nodes
            .get_mut(&victim)
            .and_then(|n| n.disk.as_mut())
            .is_some_and(|disk| disk.damage_next_state_file_write(lost));
        if armed {
            let what = if lost { "lost" } else { "misdirected" };
            self.log(format!(
                "node {victim}'s disk: its next state file write will be {what}"
            ));
        }
    }

    /// Stops node `id` for good if its storage reported corruption to its core; fails if the
    /// storage served data other than what was written, or reported corruption on a disk that
    /// was never damaged. Returns whether it stopped the node.
    pub(super) fn stop_if_corrupt(&mut self, id: u64) -> Result<bool, String> {
        let Some(node) = self.nodes.get(&id) else {
            return Ok(false);
        };
        let Some(disk) = node.disk.as_ref() else {
            return Ok(false);
        };
        let (wrong, corrupt) = {
            let watch = disk.watch();
            (watch.served_wrong.clone(), watch.corruption.clone())
        };
        if let Some(wrong) = wrong {
            return Err(format!(
                "corrupt data served: node {id}'s disk storage {wrong} (damage: {})",
                disk.describe_damage()
            ));
        }
        let Some(why) = corrupt else {
            return Ok(false);
        };
        if !node.is_up() {
            return Ok(false);
        }
        if !disk.damaged() {
            return Err(format!(
                "false corruption: node {id}'s disk storage reports corruption though nothing \
                 damaged its disk: {why}"
            ));
        }
        self.condemn(
            id,
            &format!("its storage reported corruption ({why})"),
            "corruption detected",
        );
        Ok(true)
    }

    /// [`Sim::stop_if_corrupt`] for every node.
    pub(super) fn stop_corrupt_nodes(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.disk.is_some() && n.is_up())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.stop_if_corrupt(id)?;
        }
        Ok(())
    }

    /// Takes node `id` down for good, as a process that exits on corruption, counted as `kind`.
    pub(super) fn condemn(&mut self, id: u64, why: &str, kind: &'static str) {
        if let Some(node) = self.nodes.get_mut(&id) {
            if node.is_up() {
                node.stop();
                *self.lives.entry(id).or_default() += 1;
            }
        }
        self.condemned.insert(id);
        self.reads.retain(|_, r| r.node != id);
        self.count(kind);
        self.log(format!("node {id} stopped for good: {why}"));
        self.failure_detector_notices();
    }

    /// The nodes counted as lost: the victim from the start (its disk may be damaged any time),
    /// and every node condemned.
    fn unhealthy(&self) -> BTreeSet<u64> {
        let mut lost = self.condemned.clone();
        lost.extend(self.victim.map(|(id, _)| id));
        lost
    }

    /// Whether a configuration with these voters keeps a majority of healthy ones.
    pub(super) fn keeps_healthy_majority(&self, voters: &[u64]) -> bool {
        let lost = self.unhealthy();
        let healthy = voters.iter().filter(|v| !lost.contains(v)).count();
        healthy * 2 > voters.len()
    }

    /// Whether every configuration a node that may still run knows of (both halves of a joint
    /// one) has a majority of nodes not condemned: only then can the liveness phase demand
    /// progress.
    pub(super) fn healthy_quorum_remains(&self) -> bool {
        self.nodes
            .iter()
            .filter(|(id, _)| !self.condemned.contains(id))
            .filter_map(|(_, n)| n.raw.as_ref())
            .all(|raw| {
                let voters = &raw.raft.prs.conf().voters;
                [&voters.incoming, &voters.outgoing].iter().all(|half| {
                    let ids = half.ids();
                    let healthy = ids.iter().filter(|v| !self.condemned.contains(v)).count();
                    ids.is_empty() || healthy * 2 > ids.len()
                })
            })
    }

    /// Adds each disk's fault counts to the report.
    pub(super) fn tally_disk_faults(&mut self) {
        let mut totals = [0u64; 9];
        for node in self.nodes.values() {
            let Some(disk) = node.disk.as_ref() else {
                continue;
            };
            let faults = disk.faults();
            totals[0] += faults.read_errors;
            totals[1] += disk.watch().read_errors;
            totals[2] += faults.flips[0];
            totals[3] += faults.flips[1];
            totals[4] += faults.flips[2];
            totals[5] += faults.misdirected_writes;
            totals[6] += faults.lost_writes;
            totals[7] += faults.state_file_writes;
            totals[8] += faults.rolled_forward;
        }
        let kinds = [
            "read error injected",
            "read error met",
            "flip sealed segment",
            "flip live segment",
            "flip snapshot",
            "misdirected write",
            "lost write",
            "state file write damaged",
            "checkpoint rolled forward",
        ];
        for (kind, n) in kinds.into_iter().zip(totals) {
            if n > 0 {
                *self.report.counts.entry(kind).or_default() += n;
            }
        }
    }
}
