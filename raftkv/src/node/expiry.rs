//! Time enters the log here, and only here: a write is stamped with this node's wall clock when
//! it is proposed (its relative TTL becomes a deadline), and the leader proposes an
//! `ExpireSweep` entry when keys are due to expire or the replicated clock lags. Replicas never
//! expire a key by their own clock ([`crate::kv::expiry`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raft_core::StateRole;

use super::Node;
use crate::kv::{Op, WriteEntry};

/// The least time between two sweeps this leader proposes: a key lingers past its deadline by
/// about this much (plus a tick and a commit) when no write moves the clock.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// While keys have deadlines, the leader keeps the replicated clock within this many ms of its
/// own, so `TTL` answers lag by about a second at most.
pub(super) const CLOCK_REFRESH_MS: u64 = 1000;

/// This node's wall clock, in ms since the Unix epoch (0 if it reads before the epoch).
pub(super) fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Node {
    /// At a tick, on the leader: proposes an `ExpireSweep` stamped with its wall clock if the
    /// state machine wants one ([`crate::kv::StateMachine::sweep_due`]) and none was proposed in
    /// the last [`SWEEP_INTERVAL`]. A lost sweep costs nothing: the next tick proposes another.
    pub(super) fn maybe_propose_sweep(&mut self, now: Instant) {
        if self.removed || self.raw.raft.state != StateRole::Leader {
            return;
        }
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        let now_ms = wall_clock_ms();
        if !self.sm.sweep_due(now_ms, CLOCK_REFRESH_MS) {
            return;
        }
        let sweep = WriteEntry {
            now_ms,
            op: Op::ExpireSweep,
        };
        // No context: no client waits on it, and applying it twice changes nothing.
        if self.raw.propose(Vec::new(), sweep.encode()).is_ok() {
            self.last_sweep = Some(now);
        }
    }
}
