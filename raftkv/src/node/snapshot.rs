//! Snapshots: the first state of a new cluster, installing a leader's snapshot, and making one
//! (then compacting the log) once enough was applied or a follower needs a newer one, on a
//! background thread from a copy-on-write view of the state.

use std::thread;

use raft_core::eraftpb::{Snapshot, SnapshotMetadata};
use slog::{debug, info, warn};

use super::{Node, NodeError};
use crate::event::Event;
use crate::kv::StateMachine;
use crate::storage::MadeSnapshot;

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
        self.storage.apply_snapshot(snapshot)?;
        info!(self.logger, "installed a snapshot"; "index" => sm.applied_index,
            "keys" => sm.data.len());
        self.sm = sm;
        self.snapshots_installed += 1;
        self.sync_peers();
        self.serve_confirmed_reads();
        Ok(())
    }

    /// Starts a snapshot of the state machine once enough was applied since the last snapshot,
    /// or when a follower needs a newer one than storage has, unless one is being made.
    ///
    /// The loop only takes a copy-on-write view of the state (microseconds, whatever its size);
    /// a background thread encodes it and writes it to a temporary file, and the loop adopts it
    /// when the thread reports ([`Event::SnapshotMade`]). Neither encoding nor the write of a
    /// large snapshot holds up ticks, messages or requests (issue 19).
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        if self.snapshot_in_progress.is_some() {
            return Ok(());
        }
        let applied = self.sm.applied_index;
        let store = &self.storage;
        let (snapshot_index, wanted) = (
            store.snapshot_metadata().index,
            store.take_snapshot_request(),
        );
        let due = applied >= snapshot_index + self.cfg.snapshot_entries.max(1);
        if !(due || wanted.is_some()) || applied <= snapshot_index {
            return Ok(());
        }
        if applied > store.hard_state().commit {
            if applied > store.last_log_index() {
                return Ok(());
            }
            // Applied entries are durable and committed, but the Ready whose hard state commits
            // them may still wait for the fsync in flight (`persist`), and the storage takes a
            // snapshot only up to its commit index.
            store.raise_commit(applied)?;
        }
        let job = self.storage.snapshot_job(
            applied,
            self.sm.conf_state.clone(),
            self.cfg.keep_entries,
        )?;
        let view = self.sm.snapshot_view();
        let events = self.events.clone();
        let spawned = thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let data = view.encode();
                // Release the view: writes no longer copy the shards they touch.
                drop(view);
                let made = job.write(data);
                let _ = events.send(Event::SnapshotMade(Box::new(made)));
            });
        if let Err(e) = spawned {
            // Try again at the next turn; the log keeps growing meanwhile, nothing is lost.
            warn!(self.logger, "cannot start the snapshot thread"; "error" => %e);
            return Ok(());
        }
        debug!(self.logger, "making a snapshot"; "index" => applied);
        self.snapshot_in_progress = Some(applied);
        Ok(())
    }

    /// The snapshot thread is done: the snapshot becomes storage's latest and the log is
    /// compacted behind it (keeping `keep_entries` for followers a little behind; whole segments
    /// are deleted, nothing is rewritten). A snapshot
    /// overtaken meanwhile (one installed from the leader is newer) is dropped. A failed write
    /// is a failed disk: the loop stops, as for any storage error.
    pub(super) fn on_snapshot_made(
        &mut self,
        made: Result<MadeSnapshot, raft_core::Error>,
    ) -> Result<(), NodeError> {
        self.snapshot_in_progress = None;
        let made = made?;
        let index = made.metadata().index;
        if !self.storage.adopt_snapshot(made)? {
            debug!(self.logger, "dropped an overtaken snapshot"; "index" => index);
            return Ok(());
        }
        self.snapshots_made += 1;
        debug!(self.logger, "snapshot made"; "index" => index,
            "first_index" => self.storage.first_log_index());
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
