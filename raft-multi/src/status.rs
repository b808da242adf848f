//! Counters and a snapshot of the driver's state, for metrics and tests.

/// Counters since the driver was created.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// Calls of [`MultiRaft::tick`](crate::MultiRaft::tick).
    pub ticks: u64,
    /// Group ticks those calls made (sleeping groups cost none).
    pub group_ticks: u64,
    /// Groups the quiescence policy put to sleep.
    pub quiesced_by_policy: u64,
    /// Sleeping groups woken by [`MultiRaft::node_down`](crate::MultiRaft::node_down).
    pub woken_by_node_down: u64,
    /// Sleeping groups frozen (see `MultiConfig::freeze_sleeping_groups`).
    pub groups_frozen: u64,
    /// Ready batches handed out (empty ones not counted).
    pub ready_batches: u64,
    /// Group Readys in those batches.
    pub readys: u64,
    /// Calls of [`MultiRaft::flush`](crate::MultiRaft::flush) that sent anything.
    pub flushes: u64,
    /// Envelopes sent.
    pub envelopes_sent: u64,
    /// Messages sent (inside those envelopes).
    pub messages_sent: u64,
    /// Envelopes in the last flush that sent anything.
    pub last_flush_envelopes: u64,
    /// Messages in the last flush that sent anything.
    pub last_flush_messages: u64,
    /// Envelopes received and accepted.
    pub envelopes_received: u64,
    /// Envelopes refused whole (malformed, for another node, impossible sender).
    pub envelopes_refused: u64,
    /// Messages stepped into a group.
    pub messages_stepped: u64,
    /// Groups created because a message for them arrived and the application accepted it.
    pub groups_created_on_message: u64,
    /// Messages for unknown groups that were dropped (the application refused, the group was
    /// removed, or the message could not start a group).
    pub unknown_group_dropped: u64,
    /// Messages dropped as impossible (no message, wrong addressee or sender, refused by the
    /// group's Raft node).
    pub messages_dropped: u64,
}

/// The driver's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiStatus {
    /// This node.
    pub node_id: u64,
    /// Groups on this node.
    pub groups: usize,
    /// Groups on the awake list: the ones the next tick touches (every group not asleep, and any
    /// that fell asleep since the last tick).
    pub awake_groups: usize,
    /// Groups that are asleep (counted by walking every group: not for a hot path).
    pub quiesced_groups: usize,
    /// Sleeping groups kept frozen (counted likewise).
    pub frozen_groups: usize,
    /// Removed groups remembered so that a late message does not create them again.
    pub tombstones: usize,
    /// Messages waiting for the next flush.
    pub queued_messages: usize,
    /// Counters.
    pub metrics: Metrics,
}

/// One group's state on this node, readable whether the group is live or frozen (see
/// [`MultiRaft::group_status`](crate::MultiRaft::group_status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group_id: u64,
    /// This replica's role.
    pub role: raft_core::StateRole,
    /// Its current term.
    pub term: u64,
    /// Whom it voted for in that term (0: nobody).
    pub vote: u64,
    /// The leader it knows (0: none).
    pub leader_id: u64,
    /// Its commit index.
    pub commit: u64,
    /// Its applied index.
    pub applied: u64,
    /// The index of the last entry of its log.
    pub last_index: u64,
    /// Whether the group sleeps on this node.
    pub asleep: bool,
    /// Whether it is kept frozen (asleep with nothing in flight, packed small).
    pub frozen: bool,
}
