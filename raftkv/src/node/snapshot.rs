//! Snapshots: the first state of a new cluster, installing a leader's snapshot, and making one
//! (then compacting the log) once enough was applied or a follower needs a newer one.

use raft_core::eraftpb::{Snapshot, SnapshotMetadata};
use slog::{debug, info};

use super::{Node, NodeError};
use crate::kv::StateMachine;

/// The first state of a new cluster of `peers`, which every initial member installs alike: a
/// snapshot at index 1, term 1, holding the membership and the address book. Starting from a
/// snapshot rather than an empty log means a node added later is always sent a snapshot first,
/// so it learns the initial members (which no log entry names) from it.
pub fn bootstrap_snapshot(peers: &[(u64, String)]) -> Result<Snapshot, NodeError> {
    let conf_state = raft_core::confchange::bootstrap(peers.iter().map(|(id, _)| *id), [])?;
    let sm = StateMachine {
        members: peers.iter().cloned().collect(),
        ..Default::default()
    };
    Ok(Snapshot {
        data: sm.encode(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state),
            index: 1,
            term: 1,
        }),
    })
}

impl Node {
    /// Installs a snapshot from the leader: storage, state machine and address book become the
    /// snapshot's, and the reads its index makes possible are served.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), NodeError> {
        let sm = StateMachine::decode(&snapshot)
            .map_err(|e| NodeError::Invalid(format!("snapshot from the leader: {e}")))?;
        self.storage.wl().apply_snapshot(snapshot)?;
        info!(self.logger, "installed a snapshot"; "index" => sm.applied_index,
            "keys" => sm.data.len());
        self.sm = sm;
        self.snapshots_installed += 1;
        self.sync_peers();
        self.serve_confirmed_reads();
        Ok(())
    }

    /// Snapshots the state machine and compacts the log once enough was applied since the last
    /// snapshot, or when a follower needs a newer one than storage has.
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let applied = self.sm.applied_index;
        let (snapshot_index, commit, wanted) = {
            let store = self.storage.rl();
            (
                store.snapshot_metadata().index,
                store.hard_state().commit,
                store.take_snapshot_request(),
            )
        };
        let due = applied >= snapshot_index + self.cfg.snapshot_entries.max(1);
        if !(due || wanted.is_some()) || applied <= snapshot_index || applied > commit {
            return Ok(());
        }
        let mut store = self.storage.wl();
        store.create_snapshot(applied, self.sm.conf_state.clone(), self.sm.encode())?;
        let first_kept = (applied + 1).saturating_sub(self.cfg.keep_entries).max(1);
        store.compact(first_kept)?;
        self.snapshots_made += 1;
        debug!(self.logger, "snapshot made"; "index" => applied, "first_index" => store.first_log_index());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_snapshot_carries_membership_and_addresses() {
        let peers = vec![
            (1, "127.0.0.1:1".to_string()),
            (2, "127.0.0.1:2".to_string()),
        ];
        let snapshot = bootstrap_snapshot(&peers).unwrap();
        let sm = StateMachine::decode(&snapshot).unwrap();
        assert_eq!(sm.applied_index, 1);
        assert_eq!(sm.conf_state.voters, vec![1, 2]);
        assert_eq!(sm.members.into_iter().collect::<Vec<_>>(), peers);
        assert!(bootstrap_snapshot(&[]).is_err(), "a cluster needs a voter");
    }
}
