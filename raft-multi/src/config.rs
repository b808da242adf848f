//! [`MultiConfig`]: the driver's own settings (each group has its own `raft_core::Config`).

/// Settings of a [`MultiRaft`](crate::MultiRaft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiConfig {
    /// This node's id. Every group's replica on this node has this id as its Raft id
    /// (`Config::id`), so a message's `to` names the node it goes to. Must not be 0.
    pub node_id: u64,
    /// The quiescence policy: a leader whose group was idle (nothing newly committed and nothing that
    /// [`RawNode::quiesce_blocker`](raft_core::RawNode::quiesce_blocker) names) for this many
    /// consecutive ticks puts the group to sleep, unless the application vetoed it for that
    /// group ([`MultiRaft::set_may_quiesce`](crate::MultiRaft::set_may_quiesce)). 0 turns the
    /// policy off (the application may still call `quiesce` on a group itself). Default 10.
    pub quiesce_after_idle_ticks: u32,
    /// Keep sleeping groups frozen ([`raft_core::FrozenNode`]): a group asleep with nothing in
    /// flight is packed to about a third of a live node's memory at the first tick that finds it
    /// so, and thawed when anything reaches it. Thawing restores exactly the node that was
    /// frozen, so this changes memory, never behaviour. Default true.
    pub freeze_sleeping_groups: bool,
}

impl MultiConfig {
    /// The default settings for node `node_id`.
    pub fn new(node_id: u64) -> MultiConfig {
        MultiConfig {
            node_id,
            quiesce_after_idle_ticks: 10,
            freeze_sleeping_groups: true,
        }
    }

    /// Checks the settings; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), raft_core::Error> {
        if self.node_id == 0 {
            return Err(raft_core::Error::ConfigInvalid {
                field: "node_id",
                rule: "must not be 0".to_string(),
            });
        }
        Ok(())
    }
}
