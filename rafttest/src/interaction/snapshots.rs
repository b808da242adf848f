//! The application's snapshots of its state machine: `snapshot` and `compact`.

use super::{req_arg, take_one_id, CmdResult, Command, InteractionEnv, Node};
use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Message, Snapshot};
use raft_proto::describe_snapshot;
use raft_proto::prost::Message as _;

impl Node {
    /// The state machine as of `index` (at most the applied index), encoded as a snapshot's data:
    /// the applied entries with data, carried in a message's `entries`.
    fn state_at(&self, index: u64) -> Bytes {
        let entries = self
            .applied
            .iter()
            .filter(|e| e.index <= index)
            .cloned()
            .collect();
        Message {
            entries,
            ..Default::default()
        }
        .encode_to_vec()
        .into()
    }

    /// The membership as of `index`.
    fn conf_state_at(&self, index: u64) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map(|(_, cs)| cs.clone())
            .unwrap_or_default()
    }

    /// Snapshots the state machine at `index`, which it must have applied.
    fn snapshot_at(&self, index: u64) -> Result<Snapshot, String> {
        let id = self.raw.raft.id;
        if index > self.applied_index {
            return Err(format!(
                "node {id} has applied only up to {}, not {index}",
                self.applied_index
            ));
        }
        let data = self.state_at(index);
        let conf_state = self.conf_state_at(index);
        self.storage
            .wl()
            .create_snapshot(index, Some(conf_state), data)
            .map_err(|e| format!("node {id}: snapshot at {index}: {e}"))
    }
}

impl InteractionEnv {
    /// `snapshot ID`: snapshots the state machine at the applied index; the log is kept.
    pub(super) fn snapshot(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let node = self.node_mut(id)?;
        let snapshot = node.snapshot_at(node.applied_index)?;
        self.out
            .line(&format!("snapshot {}", describe_snapshot(&snapshot)));
        Ok(())
    }

    /// `compact ID index=I`: snapshots the state machine at `I`, then discards every entry up to
    /// and including `I`, so the log starts at `I + 1`.
    pub(super) fn compact(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let index: u64 = req_arg(cmd, "index")?;
        let node = self.node_mut(id)?;
        let snapshot = node.snapshot_at(index)?;
        let compacted = node.storage.wl().compact(index + 1);
        let first = node.raw.raft.raft_log.first_index();
        self.out
            .line(&format!("snapshot {}", describe_snapshot(&snapshot)));
        match compacted {
            Ok(()) => self.out.line(&format!("log starts at {first}")),
            Err(e) => self.out.error(&format!("error: {e}")),
        }
        Ok(())
    }
}
