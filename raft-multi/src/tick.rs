//! Time: ticking the awake groups, the quiescence policy, and waking the groups a failed node
//! leaves without a leader or a quorum.

use raft_core::{StateRole, Storage};
use slog::debug;

use crate::registry::Group;
use crate::MultiRaft;

impl<S: Storage> MultiRaft<S> {
    /// Advances every awake group's clock by one tick. Sleeping groups cost nothing: a group
    /// found asleep leaves the awake list here and comes back when something wakes it.
    ///
    /// The quiescence policy runs here: a leader idle for `MultiConfig::quiesce_after_idle_ticks`
    /// consecutive ticks puts its group to sleep instead of ticking it (its last heartbeats go
    /// out with the next batch).
    pub fn tick(&mut self) {
        self.metrics.ticks += 1;
        let threshold = self.config.quiesce_after_idle_ticks;
        let mut position = 0;
        while position < self.groups.awake.len() {
            let slot = self.groups.awake[position];
            let group = self
                .groups
                .at_mut(slot)
                .expect("the awake list holds live slots only");
            if !group.node.is_quiesced() {
                // The policy judges the group as the last round left it, before this tick: a
                // tick may start a check-quorum round, which forgets who answered lately until
                // the answers to this tick's heartbeats come in.
                if threshold > 0 && apply_policy(group, threshold) {
                    self.metrics.quiesced_by_policy += 1;
                } else {
                    group.node.tick();
                    self.metrics.group_ticks += 1;
                }
            }
            if group.node.is_quiesced() {
                group.in_awake = false;
                self.groups.awake.swap_remove(position);
            } else {
                position += 1;
            }
            // A tick may have produced messages, and a group put to sleep just now has its last
            // heartbeats to send.
            self.groups.mark_dirty(slot);
        }
    }

    /// The application's failure detector says `node` is down: wakes every sleeping group on
    /// this node that would otherwise not notice (see [`RawNode::quiesce`](raft_core::RawNode)):
    /// the groups this node follows with `node` as leader (woken, they campaign after an
    /// election timeout) and the groups this node leads with `node` as a member (woken, the
    /// leader heartbeats and, with check-quorum, steps down if it lost its quorum). Followers of
    /// a live leader are left asleep: waking them alone would make them campaign against it.
    /// Returns how many groups it woke.
    ///
    /// This walks every group: call it when liveness changes, not per tick.
    pub fn node_down(&mut self, node: u64) -> usize {
        let slots: Vec<u32> = self
            .groups
            .slots()
            .filter(|slot| {
                let raft = &self.groups.at(*slot).expect("an occupied slot").node.raft;
                raft.is_quiesced()
                    && (raft.leader_id == node
                        || (raft.state == StateRole::Leader && raft.prs.is_member(node)))
            })
            .collect();
        for slot in &slots {
            let group = self.groups.at_mut(*slot).expect("an occupied slot");
            group.node.wake();
            group.idle_ticks = 0;
            self.groups.touch(*slot);
        }
        self.metrics.woken_by_node_down += slots.len() as u64;
        debug!(self.logger, "woke groups for a node down"; "down" => node, "woken" => slots.len());
        slots.len()
    }
}

/// Counts an awake leader's idle ticks and puts its group to sleep at the threshold. A tick is
/// idle when nothing was committed since the previous one and nothing blocks quiescence (every
/// member caught up, nothing pending). Returns whether it put the group to sleep.
fn apply_policy<S: Storage>(group: &mut Group<S>, threshold: u32) -> bool {
    let node = &mut group.node;
    if node.raft.state != StateRole::Leader || !group.may_quiesce {
        group.idle_ticks = 0;
        return false;
    }
    // The commit index is a field of the node (the last index may need the storage): it moves
    // whenever a busy group commits, and a group with an entry not yet committed is blocked below.
    let committed = node.raft.raft_log.committed;
    if committed != group.committed_seen {
        group.committed_seen = committed;
        group.idle_ticks = 0;
        return false;
    }
    if node.quiesce_blocker().is_some() {
        group.idle_ticks = 0;
        return false;
    }
    group.idle_ticks += 1;
    if group.idle_ticks < threshold {
        return false;
    }
    group.idle_ticks = 0;
    node.quiesce()
}
