//! [`NodeHandle`]: the calls on a node, each a message to its thread, from any thread.

use std::sync::mpsc::{self, Sender};

use raft_core::eraftpb::{ConfState, Message};
use raft_core::{LightReady, Ready, SnapshotStatus, Status};

use crate::worker::{AnyConfChange, Command, Reply};
use crate::{NodeError, Proposal};

/// The calls on a [`Node`](crate::Node) but `ready` and `stop`: cheap to clone, `Send` and
/// `Sync`, for the threads that propose, step messages or tick while another handles the Readys.
/// Calls after the node stopped fail with [`NodeError::Stopped`].
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(crate) commands: Sender<Command>,
}

impl NodeHandle {
    pub(crate) fn send(&self, command: Command) -> Result<(), NodeError> {
        self.commands.send(command).map_err(|_| NodeError::Stopped)
    }

    fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (reply, answer) = mpsc::channel();
        self.send(command(reply))?;
        answer.recv().map_err(|_| NodeError::Stopped)?
    }

    /// Advances the node's logical clock by one tick (and waits until the thread has).
    pub fn tick(&self) -> Result<(), NodeError> {
        self.call(Command::Tick)
    }

    /// Starts an election now.
    pub fn campaign(&self) -> Result<(), NodeError> {
        self.call(Command::Campaign)
    }

    /// Proposes `data` (with `context`) to be appended to the log. See [`Proposal`].
    pub fn propose(&self, context: Vec<u8>, data: Vec<u8>) -> Result<Proposal, NodeError> {
        self.call(|reply| Command::Propose(context, data, reply))
    }

    /// Proposes a membership change. See [`Proposal`].
    pub fn propose_conf_change(
        &self,
        context: Vec<u8>,
        cc: impl Into<AnyConfChange>,
    ) -> Result<Proposal, NodeError> {
        let cc = cc.into();
        self.call(|reply| Command::ProposeConfChange(context, cc, reply))
    }

    /// Steps a message from a peer into the node. An impossible message is refused with an error
    /// and changes nothing.
    pub fn step(&self, m: Message) -> Result<(), NodeError> {
        self.call(|reply| Command::Step(m, reply))
    }

    /// Gives back the Ready handed out last, handled (sent, persisted, its committed entries
    /// applied). Returns the LightReady it led to; apply its entries, then call
    /// [`NodeHandle::advance_apply`].
    pub fn advance(&self, rd: Ready) -> Result<LightReady, NodeError> {
        self.call(|reply| Command::Advance(rd, reply))
    }

    /// Every committed entry handed out so far has been applied.
    pub fn advance_apply(&self) -> Result<(), NodeError> {
        self.call(Command::AdvanceApply)
    }

    /// Applies a committed membership change and returns the new configuration (store it).
    pub fn apply_conf_change(&self, cc: impl Into<AnyConfChange>) -> Result<ConfState, NodeError> {
        let cc = cc.into();
        self.call(|reply| Command::ApplyConfChange(cc, reply))
    }

    /// The node's status (with every member's progress on a leader).
    pub fn status(&self) -> Result<Status, NodeError> {
        self.call(Command::Status)
    }

    /// Tells the leader that `id` could not be reached.
    pub fn report_unreachable(&self, id: u64) -> Result<(), NodeError> {
        self.send(Command::ReportUnreachable(id))
    }

    /// Tells the leader how sending a snapshot to `id` went.
    pub fn report_snapshot(&self, id: u64, status: SnapshotStatus) -> Result<(), NodeError> {
        self.send(Command::ReportSnapshot(id, status))
    }

    /// Asks the leader to hand leadership to `to`.
    pub fn transfer_leadership(&self, to: u64) -> Result<(), NodeError> {
        self.send(Command::TransferLeader(to))
    }

    /// Requests a linearizable read point; it comes in a Ready's read states.
    pub fn read_index(&self, context: Vec<u8>) -> Result<(), NodeError> {
        self.call(|reply| Command::ReadIndex(context, reply))
    }
}
