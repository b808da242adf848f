//! Time: ticking the awake groups, the quiescence policy, and waking the groups a failed node
//! leaves without a leader or a quorum.

use raft_core::{StateRole, Storage};
use slog::debug;

use crate::registry::Policy;
use crate::MultiRaft;
use raft_core::RawNode;

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
        let freeze = self.config.freeze_sleeping_groups;
        let mut position = 0;
        while position < self.groups.awake.len() {
            let slot = self.groups.awake[position];
            let (group, logger) = self
                .groups
                .with_logger(slot)
                .expect("the awake list holds live slots only");
            if !group.is_quiesced() {
                let (node, policy) = group.node_and_policy(logger);
                // The policy judges the group as the last round left it, before this tick: a
                // tick may start a check-quorum round, which forgets who answered lately until
                // the answers to this tick's heartbeats come in.
                if threshold > 0 && apply_policy(node, policy, threshold) {
                    self.metrics.quiesced_by_policy += 1;
                } else {
                    node.tick();
                    self.metrics.group_ticks += 1;
                }
            }
            // A sleeping group leaves the list; with freezing on, only once it is frozen (one
            // with its last heartbeats or a Ready still in flight is frozen at a later tick,
            // and one whose application holds back an acknowledgement stays live and listed).
            let asleep = group.is_quiesced();
            if asleep && (!freeze || self.groups.freeze_at(slot)) {
                self.metrics.groups_frozen += u64::from(freeze);
                self.groups.leave_awake(position);
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
                let group = self.groups.at(*slot).expect("an occupied slot");
                let status = group.status();
                status.asleep
                    && (status.leader_id == node
                        || (status.role == StateRole::Leader && group.is_member(node)))
            })
            .collect();
        for slot in &slots {
            let (group, logger) = self.groups.with_logger(*slot).expect("an occupied slot");
            let (raw, policy) = group.node_and_policy(logger);
            raw.wake();
            policy.idle_ticks = 0;
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
fn apply_policy<S: Storage>(node: &mut RawNode<S>, policy: &mut Policy, threshold: u32) -> bool {
    if node.raft.state != StateRole::Leader || !policy.may_quiesce {
        policy.idle_ticks = 0;
        return false;
    }
    // The commit index is a field of the node (the last index may need the storage): it moves
    // whenever a busy group commits, and a group with an entry not yet committed is blocked below.
    let committed = node.raft.raft_log.committed;
    if committed != policy.committed_seen {
        policy.committed_seen = committed;
        policy.idle_ticks = 0;
        return false;
    }
    if node.quiesce_blocker().is_some() {
        policy.idle_ticks = 0;
        return false;
    }
    policy.idle_ticks += 1;
    if policy.idle_ticks < threshold {
        return false;
    }
    policy.idle_ticks = 0;
    node.quiesce()
}
