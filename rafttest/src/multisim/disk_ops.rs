//! What a node whose groups live in the shared log (`disk.rs`) does at its batch's fsync and at
//! a crash: one write and at most one fsync for the whole batch, checked like any synced write;
//! a failed fsync stops the node before it acknowledges anything; a power loss, perhaps in the
//! middle of the batch's write, is followed by the log's recovery and its checks.

use raft_core::Ready;
use raft_multi::ReadyBatch;
use rand::RngExt;

use super::disk::WriteFailure;
use super::MultiSim;

/// Mutating disk operations after which a crash during a batch's write cuts the power: from the
/// batch's first `write` to past its fsync and sync mark.
const POWER_CUT_WITHIN: u64 = 4;

impl MultiSim {
    /// Persists node `id`'s `batch` into its shared log: one write, one fsync if the batch must
    /// sync. Returns whether the batch is persisted (the caller then acknowledges it) and the
    /// group a planted bug left out; if the disk failed, the node is stopped and nothing is
    /// acknowledged.
    pub(crate) fn persist_on_disk(
        &mut self,
        id: u64,
        batch: &ReadyBatch,
    ) -> Result<(bool, Option<u64>), String> {
        let skipped = self.planted_skip(batch);
        let readys: Vec<(u64, &Ready)> = batch
            .groups()
            .iter()
            .filter(|group| Some(group.group_id()) != skipped)
            .map(|group| (group.group_id(), group.ready()))
            .collect();
        let node = &mut self.nodes[id as usize - 1];
        let held: Vec<Vec<u64>> = readys
            .iter()
            .map(|(group_id, ready)| {
                let store = &node.stores[*group_id as usize - 1];
                self.checker.before_write(*group_id, store, ready.entries())
            })
            .collect();
        let disk = node.disk.as_mut().expect("a node on the shared log");
        match disk.write(&readys, batch.must_sync()) {
            Ok(()) => {}
            Err(WriteFailure::Refused(why)) => return Err(format!("node {id}: {why}")),
            Err(WriteFailure::Stop(why)) => {
                self.log(format!(
                    "node {id}'s disk fails ({why}): the node stops without acknowledging its \
                     batch of {} groups",
                    readys.len()
                ));
                self.power_loss(id, false)?;
                return Ok((false, None));
            }
        }
        for ((group_id, _), held) in readys.iter().zip(&held) {
            let store = &self.nodes[id as usize - 1].stores[*group_id as usize - 1];
            self.checker.after_write(*group_id, id, store, held)?;
        }
        Ok((true, skipped))
    }

    /// Node `id`, on the shared log, loses its power: its driver stops; a batch it took and did
    /// not sync is written now with the power cut somewhere in its write or fsync if `cut`, else
    /// it was not written at all; then the disk keeps what a
    /// power loss may keep and the log recovers, checked against what the last fsync made
    /// durable. Each other node's failure detector notices in its own time.
    pub(crate) fn power_loss(&mut self, id: u64, cut: bool) -> Result<(), String> {
        let node = &mut self.nodes[id as usize - 1];
        node.stop();
        let pending = node.pending.take();
        let groups = pending.as_ref().map_or(0, |batch| batch.groups().len());
        let cut_after = match (pending, cut) {
            (Some(batch), true) => {
                let operations = self.rng.random_range(0..POWER_CUT_WITHIN);
                let readys: Vec<(u64, &Ready)> = batch
                    .groups()
                    .iter()
                    .map(|group| (group.group_id(), group.ready()))
                    .collect();
                let disk = self.nodes[id as usize - 1].disk.as_mut();
                let disk = disk.expect("a node on the shared log");
                disk.write_cut_by_power(&readys, batch.must_sync(), operations)
                    .map_err(|why| format!("node {id}: {why}"))?;
                Some(operations)
            }
            _ => None,
        };
        let node = &mut self.nodes[id as usize - 1];
        let disk = node.disk.as_mut().expect("a node on the shared log");
        disk.crash_and_recover()
            .map_err(|why| format!("node {id}: {why}"))?;
        node.reattach_stores();
        self.log(match cut_after {
            Some(operations) => format!(
                "node {id} loses power {operations} disk operations into the write of its batch \
                 of {groups} groups; its shared log recovers"
            ),
            None => format!(
                "node {id} loses power ({groups} groups of an unwritten batch lost); its shared \
                 log recovers"
            ),
        });
        for other in self.up_ids() {
            self.schedule_notice(other, id);
        }
        Ok(())
    }

    /// Turns the faults of every node's disk on or off.
    pub(crate) fn set_disk_faults(&mut self, on: bool) {
        for disk in self.nodes.iter_mut().filter_map(|n| n.disk.as_mut()) {
            disk.set_faults(on);
        }
    }
}
