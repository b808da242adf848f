//! What the simulated application does with a node's driver: take a Ready batch, sync it, apply
//! it and acknowledge it, flush and deliver envelopes, tick, crash and restart, and the failure
//! detector's notices. Each operation feeds the checker what it saw.

use prost::Message as _;
use raft_core::eraftpb::EntryType;
use raft_core::{Ready, StateRole, Storage};
use raft_multi::{EnvelopeError, ReadyBatch};
use rand::RngExt;
use storage_disk::DiskError;

use super::network::InFlight;
use super::node::write_ready;
use super::{MultiPlantedBug, MultiSim};

impl MultiSim {
    /// Takes a Ready batch from node `id` and sends its early messages; the batch waits for its
    /// fsync. A group whose Ready could not be built must have met a transient read error of
    /// the node's disk.
    pub(crate) fn take_ready(&mut self, id: u64) -> Result<(), String> {
        let node = self.node(id);
        let batch = node.core_reads(|multi| multi.ready());
        self.read_failures(id, batch.failures(), "building its Ready")?;
        if batch.is_empty() {
            return Ok(());
        }
        let groups = batch.groups().len();
        self.node(id).pending = Some(batch);
        self.log(format!("node {id} takes a batch of {groups} groups"));
        self.flush(id);
        Ok(())
    }

    /// Checks the storage failures node `id`'s driver reported while `what`: each must be a read
    /// of the node's shared log that failed with an I/O error (injected by its disk; transient,
    /// the group tries again later). Anything else is a violation: a `MemStorage` never fails,
    /// and a log that reports damage or refuses a read the core may make is wrong.
    pub(crate) fn read_failures(
        &mut self,
        id: u64,
        failures: &[(u64, raft_core::Error)],
        what: &str,
    ) -> Result<(), String> {
        for (group, error) in failures {
            if !self.transient_read_error(id, error) {
                return Err(format!(
                    "node {id} group {group}: a storage error {what}: {error}"
                ));
            }
            if let Some(disk) = self.node(id).disk.as_mut() {
                disk.read_error_reported();
            }
            self.log(format!(
                "node {id} group {group}: {what} met a read error of its disk: {error}"
            ));
        }
        Ok(())
    }

    /// Whether `error`, met by node `id`'s core, is a read of its shared log that failed with an
    /// I/O error.
    pub(crate) fn transient_read_error(&self, id: u64, error: &raft_core::Error) -> bool {
        self.nodes[id as usize - 1].disk.is_some()
            && matches!(
                DiskError::from_raft(error),
                Some(DiskError::Io { op, source, .. })
                    if *op == "read" && source.kind() == std::io::ErrorKind::Other
            )
    }

    /// Syncs node `id`'s pending batch: writes each group into its storage, persists the state
    /// machine's applied index, applies the committed entries, acknowledges the batch and sends
    /// what may leave now.
    pub(crate) fn fsync(&mut self, id: u64) -> Result<(), String> {
        let Some(mut batch) = self.node(id).pending.take() else {
            return Ok(());
        };
        let on_disk = self.node(id).disk.is_some();
        let skipped = if on_disk {
            let (persisted, skipped) = self.persist_on_disk(id, &batch)?;
            if !persisted {
                return Ok(());
            }
            skipped
        } else {
            self.persist_in_memory(id, &batch)?
        };
        let node = self.node(id);
        // The state machine's applied index is synced with the batch's fsync: what was applied
        // before. (A batch in `MemStorage`s is synced whole; the shared log fsyncs only when the
        // batch must sync.)
        if !on_disk || batch.must_sync() {
            node.durable_applied.copy_from_slice(&node.applied);
        }
        let mut applied_entries = 0;
        for position in 0..batch.groups().len() {
            let group_id = batch.groups()[position].group_id();
            let entries = batch.groups_mut()[position]
                .ready_mut()
                .take_committed_entries();
            for entry in &entries {
                if entry.entry_type != EntryType::EntryNormal as i32 {
                    return Err(format!(
                        "node {id} group {group_id}: a conf change entry at {} (this mode changes \
                         no membership)",
                        entry.index
                    ));
                }
                let before = self.nodes[id as usize - 1].applied[group_id as usize - 1];
                let nodes = &self.nodes;
                self.checker.saw_apply(group_id, id, before, entry, || {
                    nodes
                        .iter()
                        .filter(|n| {
                            n.stores[group_id as usize - 1].term(entry.index).ok()
                                == Some(entry.term)
                        })
                        .count()
                })?;
                self.nodes[id as usize - 1].applied[group_id as usize - 1] = entry.index;
                applied_entries += 1;
            }
            self.touched.push((id, group_id));
        }
        let groups = batch.groups().len();
        let node = self.node(id);
        node.core_reads(|multi| multi.advance(batch));
        self.log(format!(
            "node {id} syncs {groups} groups, applies {applied_entries} entries{}",
            skipped.map_or(String::new(), |g| format!(
                " (PLANTED: group {g} not written)"
            ))
        ));
        self.flush(id);
        Ok(())
    }

    /// Writes every group of node `id`'s `batch` into its `MemStorage` (what the batch's fsync
    /// makes durable). Returns the group a planted bug left out.
    fn persist_in_memory(&mut self, id: u64, batch: &ReadyBatch) -> Result<Option<u64>, String> {
        let skipped = self.planted_skip(batch);
        for group in batch.groups() {
            if Some(group.group_id()) != skipped {
                self.write_checked(id, group.group_id(), group.ready())?;
            }
        }
        Ok(skipped)
    }

    /// The group of `batch` that the planted bug `SkipPersistOneGroup` leaves out: the first
    /// with entries.
    pub(crate) fn planted_skip(&self, batch: &ReadyBatch) -> Option<u64> {
        if self.opts.planted_bug != Some(MultiPlantedBug::SkipPersistOneGroup) {
            return None;
        }
        batch
            .groups()
            .iter()
            .find(|group| !group.ready().entries().is_empty())
            .map(|group| group.group_id())
    }

    /// Writes one group's Ready into node `id`'s synced storage, checking that the write removes
    /// no entry that was applied.
    pub(crate) fn write_checked(
        &self,
        id: u64,
        group_id: u64,
        ready: &Ready,
    ) -> Result<(), String> {
        let store = &self.nodes[id as usize - 1].stores[group_id as usize - 1];
        let held = self.checker.before_write(group_id, store, ready.entries());
        write_ready(store, ready).map_err(|e| format!("node {id} group {group_id}: {e}"))?;
        self.checker.after_write(group_id, id, store, &held)
    }

    /// Sends node `id`'s queued envelopes, encoded.
    pub(crate) fn flush(&mut self, id: u64) {
        let node = self.node(id);
        let envelopes = node.core_reads(|multi| multi.flush());
        for envelope in envelopes {
            let messages = envelope.messages.len();
            let groups = envelope.messages.iter().map(|m| m.group_id).collect();
            let in_flight = InFlight {
                from: envelope.from_node,
                to: envelope.to_node,
                groups,
                bytes: envelope.encode_to_vec(),
            };
            let (loss, duplication) = if self.healed {
                (0.0, 0.0)
            } else {
                (self.f.loss, self.f.duplication)
            };
            self.wire
                .send(in_flight, messages, loss, duplication, &mut self.rng);
        }
    }

    /// Delivers one envelope (with `reordering`, possibly not the oldest); lost on a cut link or
    /// to a node that is down.
    pub(crate) fn deliver_one(&mut self, reordering: f64) -> Result<(), String> {
        let Some(taken) = self.wire.take(reordering, &mut self.rng) else {
            return Ok(());
        };
        let Some(envelope) = taken else {
            self.log("an envelope is dropped on a cut link".to_string());
            return Ok(());
        };
        let (from, to) = (envelope.from, envelope.to);
        if !self.node(to).is_up() {
            self.log(format!(
                "an envelope {from}->{to} is lost: node {to} is down"
            ));
            return Ok(());
        }
        let node = self.node(to);
        let stepped = node.core_reads(|multi| multi.step_encoded(&envelope.bytes));
        let report = match stepped {
            Ok(report) => report,
            Err(EnvelopeError::Decode(error)) => {
                return Err(format!("node {to} refused a well-formed envelope: {error}"))
            }
            Err(error) => {
                return Err(format!(
                    "node {to} refused an envelope from {from}: {error}"
                ))
            }
        };
        if report.unknown_group != 0 {
            return Err(format!(
                "node {to}: an envelope from {from} had {} messages for unknown groups (every \
                 node holds every group)",
                report.unknown_group
            ));
        }
        self.read_failures(to, &report.storage_errors, "stepping a message")?;
        self.log(format!(
            "node {to} steps an envelope from {from}: {} messages, {} refused",
            report.stepped, report.dropped
        ));
        for group in envelope.groups {
            self.touched.push((to, group));
        }
        Ok(())
    }

    /// Ticks node `id` and checks that exactly its awake groups were ticked or put to sleep: a
    /// sleeping group is never ticked, and no awake group is forgotten.
    pub(crate) fn tick(&mut self, id: u64) -> Result<(), String> {
        let node = self.node(id);
        let before = node.multi().status();
        let awake = before.groups - before.quiesced_groups;
        node.core_reads(|multi| multi.tick());
        let after = node.multi().metrics();
        let ticked = after.group_ticks - before.metrics.group_ticks;
        let napped = after.quiesced_by_policy - before.metrics.quiesced_by_policy;
        if ticked + napped != awake as u64 {
            return Err(format!(
                "quiescence: node {id} had {awake} awake groups ({} asleep) but its tick ticked \
                 {ticked} and put {napped} to sleep",
                before.quiesced_groups
            ));
        }
        if before.awake_groups < awake || before.groups != self.opts.groups as usize {
            return Err(format!(
                "node {id}'s status is inconsistent: {} groups, {} on the awake list, {} asleep",
                before.groups, before.awake_groups, before.quiesced_groups
            ));
        }
        Ok(())
    }

    /// Crashes node `id`: on the shared log, it loses power (see `power_loss`); in
    /// `MemStorage`s, of a batch it took and did not sync, a random prefix of groups reached
    /// the disk; everything else in memory is lost. Each other node's failure detector notices
    /// in its own time.
    pub(crate) fn crash(&mut self, id: u64) -> Result<(), String> {
        if self.node(id).disk.is_some() {
            self.report.crashes += 1;
            let cut = self.rng.random_bool(0.75);
            return self.power_loss(id, cut);
        }
        let pending = self
            .node(id)
            .pending
            .as_ref()
            .map_or(0, |batch| batch.groups().len());
        let torn = self.rng.random_range(0..=pending);
        let written = self.node(id).crash(torn);
        for (group_id, ready) in &written {
            self.write_checked(id, *group_id, ready)?;
        }
        self.report.crashes += 1;
        self.log(format!(
            "node {id} crashes; {torn} of {pending} groups of its unsynced batch reached the disk"
        ));
        for other in self.up_ids() {
            self.schedule_notice(other, id);
        }
        Ok(())
    }

    /// Restarts node `id` from its synced state, checking that state first.
    pub(crate) fn restart(&mut self, id: u64) -> Result<(), String> {
        let node = &self.nodes[id as usize - 1];
        for (position, store) in node.stores.iter().enumerate() {
            self.checker.check_restart(
                position as u64 + 1,
                id,
                store,
                node.durable_applied[position],
            )?;
        }
        let (f, seed) = (self.f.clone(), self.opts.seed);
        let logger = self.logger.clone();
        self.node(id).start(&f, seed, &logger)?;
        self.log(format!("node {id} restarts"));
        Ok(())
    }

    /// Node `on`'s failure detector will report `down` some time from now.
    pub(crate) fn schedule_notice(&mut self, on: u64, down: u64) {
        if self.opts.planted_bug == Some(MultiPlantedBug::NoFailureDetector) {
            return;
        }
        let delay = self.f.detector_delay;
        self.detector
            .schedule(self.event, on, down, delay, &mut self.rng);
    }

    /// Delivers the failure detector's notices that are due.
    pub(crate) fn deliver_notices(&mut self) -> Result<(), String> {
        for notice in self.detector.take_due(self.event) {
            self.node_down(notice.on, notice.down);
        }
        Ok(())
    }

    /// Node `on` reports `down` down to its driver (if `on` is up).
    pub(crate) fn node_down(&mut self, on: u64, down: u64) {
        if !self.node(on).is_up() {
            return;
        }
        let woken = self.node(on).multi().node_down(down);
        self.report.wakeups += woken as u64;
        self.log(format!(
            "node {on}'s failure detector reports node {down} down: {woken} groups woken"
        ));
    }

    /// Checks the groups the event touched: one leader per term.
    pub(crate) fn check_touched(&mut self) -> Result<(), String> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for (id, group) in touched.drain(..) {
            let Some(multi) = self.nodes[id as usize - 1].multi.as_ref() else {
                continue;
            };
            let Some(status) = multi.group_status(group) else {
                return Err(format!("node {id} lost group {group}"));
            };
            if status.role == StateRole::Leader {
                self.checker.saw_leader(group, status.term, id)?;
            }
        }
        self.touched = touched;
        Ok(())
    }

    /// Checks every group on every running node: one leader per term.
    pub(crate) fn check_all_groups(&mut self) -> Result<(), String> {
        for id in self.up_ids() {
            for group in 1..=self.opts.groups {
                self.touched.push((id, group));
            }
        }
        self.check_touched()
    }
}
