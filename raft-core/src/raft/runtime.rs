//! Settings an application changes while the node runs (raft-rs's runtime setters), and `ping`.
//! Each takes effect from the next message or tick.

use super::{Raft, StateRole};
use crate::config::{invalid, ReadOnlyOption};
use crate::error::Result;
use crate::storage::Storage;

impl<T: Storage> Raft<T> {
    /// Sets this node's election priority (`Config::priority`).
    pub fn set_priority(&mut self, priority: i64) {
        self.priority = priority;
    }

    /// Sets `Config::skip_bcast_commit`: whether a moved commit index alone sends appends.
    pub fn skip_bcast_commit(&mut self, skip: bool) {
        self.skip_bcast_commit = skip;
    }

    /// Accepted for raft-rs compatibility (`Config::batch_append`): this core always batches.
    pub fn set_batch_append(&mut self, _batch_append: bool) {}

    /// Sets `Config::max_committed_size_per_ready`; 0 is refused, like in the configuration.
    pub fn set_max_committed_size_per_ready(&mut self, size: u64) -> Result<()> {
        if size == 0 {
            return Err(invalid(
                "max_committed_size_per_ready",
                "must be greater than 0 (use NO_LIMIT for no limit)",
            ));
        }
        self.max_committed_size_per_ready = size;
        Ok(())
    }

    /// Sets `Config::check_quorum`. Turning it off is refused while reads use the leader lease
    /// (`ReadOnlyOption::LeaseBased`), which is only sound when a leader that lost its quorum
    /// steps down.
    pub fn set_check_quorum(&mut self, check_quorum: bool) -> Result<()> {
        if !check_quorum && self.read_only.option == ReadOnlyOption::LeaseBased {
            return Err(invalid(
                "check_quorum",
                "must stay true while read_only_option is LeaseBased",
            ));
        }
        self.check_quorum = check_quorum;
        Ok(())
    }

    /// On a leader, sends every follower a heartbeat now (raft-rs `ping`); elsewhere nothing.
    pub fn ping(&mut self) {
        if self.state == StateRole::Leader {
            self.bcast_heartbeat();
        }
    }

    /// The storage (raft-rs `Raft::store`).
    pub fn store(&self) -> &T {
        &self.raft_log.store
    }

    /// The storage, mutably (raft-rs `Raft::mut_store`).
    pub fn mut_store(&mut self) -> &mut T {
        &mut self.raft_log.store
    }
}
