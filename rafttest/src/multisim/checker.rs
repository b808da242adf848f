//! The safety properties of every group, checked as the events touch them.
//!
//! Per group the checker keeps who led each term and what was applied at each index (by anyone,
//! ever). From those:
//! - **Election safety**: at most one leader per term.
//! - **State machine safety**: every node applies the same entry (term and data) at each index,
//!   each node in order with no gap, and a restarted node re-applies the same entries.
//! - **Durability of commits**: when an index is applied for the first time, a majority of the
//!   nodes hold that entry in their synced storage (a leader commits only what a quorum has
//!   durably); no synced write ever removes or replaces an entry a node held that was applied
//!   somewhere, so the majority stays; on restart, a node's synced log holds its synced commit
//!   index, and its entries up to there are the ones applied.

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::eraftpb::Entry;
use raft_core::Storage;

/// What the checker knows of one group.
#[derive(Debug, Default)]
pub(crate) struct GroupHistory {
    /// The leader of each term that had one.
    pub leaders: BTreeMap<u64, u64>,
    /// The entry applied at each index: (term, data).
    pub applied: BTreeMap<u64, (u64, Bytes)>,
}

/// The checker: one history per group (group `g` at `g - 1`).
pub(crate) struct Checker {
    pub groups: Vec<GroupHistory>,
    /// Nodes needed for a majority.
    pub majority: usize,
    /// Distinct (group, term) pairs with a leader.
    pub elections: u64,
}

impl Checker {
    pub fn new(groups: u64, nodes: u64) -> Checker {
        Checker {
            groups: (0..groups).map(|_| GroupHistory::default()).collect(),
            majority: nodes as usize / 2 + 1,
            elections: 0,
        }
    }

    /// Node `node` leads `group` in `term`: no other node may have led that term.
    pub fn saw_leader(&mut self, group: u64, term: u64, node: u64) -> Result<(), String> {
        let history = &mut self.groups[group as usize - 1];
        match history.leaders.get(&term) {
            Some(other) if *other != node => Err(format!(
                "election safety: group {group} has two leaders in term {term}: nodes {other} and \
                 {node}"
            )),
            Some(_) => Ok(()),
            None => {
                history.leaders.insert(term, node);
                self.elections += 1;
                Ok(())
            }
        }
    }

    /// Node `node` applies `entry` of `group` after `applied_before`. `durable_holders` counts
    /// the nodes whose synced storage holds the entry; it is called only the first time the index
    /// is applied anywhere.
    pub fn saw_apply(
        &mut self,
        group: u64,
        node: u64,
        applied_before: u64,
        entry: &Entry,
        durable_holders: impl FnOnce() -> usize,
    ) -> Result<(), String> {
        if entry.index != applied_before + 1 {
            return Err(format!(
                "state machine safety: node {node} applied index {} of group {group} right after \
                 {applied_before}",
                entry.index
            ));
        }
        let history = &mut self.groups[group as usize - 1];
        match history.applied.get(&entry.index) {
            Some((term, data)) => {
                if *term != entry.term || *data != entry.data {
                    return Err(format!(
                        "state machine safety: node {node} applied {}/{} {:?} at index {} of \
                         group {group}, where {:?} (term {term}) was applied before",
                        entry.index, entry.term, entry.data, entry.index, data
                    ));
                }
            }
            None => {
                let holders = durable_holders();
                if holders < self.majority {
                    return Err(format!(
                        "durability: index {} (term {}) of group {group} is applied on node \
                         {node} while only {holders} nodes hold it synced (a majority is {})",
                        entry.index, entry.term, self.majority
                    ));
                }
                history
                    .applied
                    .insert(entry.index, (entry.term, entry.data.clone()));
            }
        }
        Ok(())
    }

    /// Before `entries` are written into `store` (a node's synced log of `group`): which applied
    /// indexes the store holds now, to compare after the write (see [`Checker::after_write`]).
    pub fn before_write(&self, group: u64, store: &impl Storage, entries: &[Entry]) -> Vec<u64> {
        let Some(first) = entries.first() else {
            return Vec::new();
        };
        let history = &self.groups[group as usize - 1];
        history
            .applied
            .range(first.index..)
            .filter(|(index, (term, _))| store.term(**index).ok() == Some(*term))
            .map(|(index, _)| *index)
            .collect()
    }

    /// After a write: every applied entry the store held before it still holds.
    pub fn after_write(
        &self,
        group: u64,
        node: u64,
        store: &impl Storage,
        held: &[u64],
    ) -> Result<(), String> {
        let history = &self.groups[group as usize - 1];
        for index in held {
            let term = history.applied[index].0;
            if store.term(*index).ok() != Some(term) {
                return Err(format!(
                    "durability: a synced write on node {node} removed or replaced index {index} \
                     (term {term}) of group {group}, which was applied"
                ));
            }
        }
        Ok(())
    }

    /// A node restarts `group` from `store` with `durable_applied`: its synced commit index is
    /// in its log, at or above what its state machine persisted, and its entries up to the
    /// commit index are the ones applied.
    pub fn check_restart(
        &self,
        group: u64,
        node: u64,
        store: &impl Storage,
        durable_applied: u64,
    ) -> Result<(), String> {
        let commit = store
            .initial_state()
            .map_err(|e| format!("node {node} cannot read group {group}'s state: {e}"))?
            .hard_state
            .commit;
        let first = store.first_index().unwrap_or(0);
        let last = store.last_index().unwrap_or(0);
        if commit > last {
            return Err(format!(
                "durability: node {node} restarts group {group} with commit {commit} beyond its \
                 synced log (last index {last})"
            ));
        }
        if durable_applied > commit.max(first.saturating_sub(1)) {
            return Err(format!(
                "durability: node {node}'s state machine of group {group} persisted applied \
                 index {durable_applied} above its synced commit {commit}"
            ));
        }
        if commit < first {
            return Ok(());
        }
        let history = &self.groups[group as usize - 1];
        for (index, (term, _)) in history.applied.range(first..=commit) {
            let held = store.term(*index).ok();
            if held != Some(*term) {
                return Err(format!(
                    "durability: node {node} restarts group {group} with term {held:?} at \
                     committed index {index}, where term {term} was applied"
                ));
            }
        }
        Ok(())
    }
}
