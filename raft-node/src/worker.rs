//! The node's thread: it owns the `RawNode`, takes one command at a time from its channel, and
//! hands out a `Ready` whenever the previous one was advanced and there is work.

use std::sync::mpsc::{Receiver, Sender};

use raft_core::eraftpb::{ConfChange, ConfChangeV2, ConfState, Message};
use raft_core::proposal::{ProposalOutcome, ProposalTracker, Proposed};
use raft_core::{LightReady, RawNode, Ready, SnapshotStatus, Status, Storage};
use slog::{warn, Logger};

use crate::{NodeError, Proposal};

/// A reply to one command.
pub(crate) type Reply<T> = Sender<Result<T, NodeError>>;

/// A membership change of either kind.
#[derive(Debug, Clone)]
pub enum AnyConfChange {
    /// A v1 change (one node).
    V1(ConfChange),
    /// A v2 change (several nodes, possibly joint).
    V2(ConfChangeV2),
}

impl From<ConfChange> for AnyConfChange {
    fn from(cc: ConfChange) -> Self {
        AnyConfChange::V1(cc)
    }
}

impl From<ConfChangeV2> for AnyConfChange {
    fn from(cc: ConfChangeV2) -> Self {
        AnyConfChange::V2(cc)
    }
}

/// What the application asks of the node's thread.
pub(crate) enum Command {
    Tick(Reply<()>),
    Campaign(Reply<()>),
    Propose(Vec<u8>, Vec<u8>, Reply<Proposal>),
    ProposeConfChange(Vec<u8>, AnyConfChange, Reply<Proposal>),
    Step(Message, Reply<()>),
    Advance(Ready, Reply<LightReady>),
    AdvanceApply(Reply<()>),
    ApplyConfChange(AnyConfChange, Reply<ConfState>),
    Status(Reply<Status>),
    ReportUnreachable(u64),
    ReportSnapshot(u64, SnapshotStatus),
    TransferLeader(u64),
    ReadIndex(Vec<u8>, Reply<()>),
    Stop,
}

/// The thread's state besides the node.
pub(crate) struct Worker<S: Storage> {
    pub(crate) raw: RawNode<S>,
    pub(crate) readys: Sender<Result<Ready, NodeError>>,
    pub(crate) logger: Logger,
    /// The number of the Ready handed out and not advanced yet.
    outstanding: Option<u64>,
    /// The outstanding Ready's snapshot point, if it carries one, and the (index, term) of its
    /// committed entries: decided when it is advanced (the application applied them by then).
    ready_snapshot: Option<(u64, u64)>,
    ready_ids: Vec<(u64, u64)>,
    /// The (index, term) of the committed entries LightReadys handed out: decided at
    /// `advance_apply`.
    light_ids: Vec<(u64, u64)>,
    proposals: ProposalTracker<Sender<ProposalOutcome>>,
}

impl<S: Storage> Worker<S> {
    pub(crate) fn new(
        raw: RawNode<S>,
        readys: Sender<Result<Ready, NodeError>>,
        logger: Logger,
    ) -> Self {
        Worker {
            raw,
            readys,
            logger,
            outstanding: None,
            ready_snapshot: None,
            ready_ids: Vec::new(),
            light_ids: Vec::new(),
            proposals: ProposalTracker::new(),
        }
    }

    /// Runs until `Stop` or until every handle on the node is gone; returns the node.
    pub(crate) fn run(mut self, commands: Receiver<Command>) -> RawNode<S> {
        while let Ok(command) = commands.recv() {
            if matches!(command, Command::Stop) {
                break;
            }
            let answer = self.handle(command);
            // The Ready goes out before the answer, so when a call returns, the Ready it led to
            // (if any) is already waiting on the channel.
            let receiving = self.hand_out_ready();
            if let Some(answer) = answer {
                answer();
            }
            if !receiving {
                break; // the application dropped the Ready receiver: nobody drives the node
            }
        }
        self.raw
    }

    /// Carries out one command; returns the answer to send once any Ready it led to is out.
    fn handle(&mut self, command: Command) -> Option<Answer> {
        match command {
            Command::Tick(reply) => {
                self.raw.tick();
                return answer(reply, Ok(()));
            }
            Command::Campaign(reply) => {
                return answer(reply, self.raw.campaign().map_err(NodeError::from));
            }
            Command::Propose(context, data, reply) => {
                let proposed = self.raw.propose_tracked(context, data);
                return answer(reply, self.track(proposed));
            }
            Command::ProposeConfChange(context, cc, reply) => {
                let proposed = match cc {
                    AnyConfChange::V1(cc) => self.raw.propose_conf_change_tracked(context, cc),
                    AnyConfChange::V2(cc) => self.raw.propose_conf_change_tracked(context, cc),
                };
                return answer(reply, self.track(proposed));
            }
            Command::Step(m, reply) => {
                let stepped = self.raw.step(m).map_err(NodeError::from);
                // Answers to proposals this node forwarded come in messages.
                decide(
                    self.proposals
                        .on_forward_answers(self.raw.take_forward_answers()),
                );
                return answer(reply, stepped);
            }
            Command::Advance(rd, reply) => {
                return answer(reply, self.advance(rd));
            }
            Command::AdvanceApply(reply) => {
                let ids = std::mem::take(&mut self.light_ids);
                decide(self.proposals.on_committed_ids(&ids));
                self.raw.advance_apply();
                return answer(reply, Ok(()));
            }
            Command::ApplyConfChange(cc, reply) => {
                let cs = match cc {
                    AnyConfChange::V1(cc) => self.raw.apply_conf_change(&cc),
                    AnyConfChange::V2(cc) => self.raw.apply_conf_change(&cc),
                };
                return answer(reply, cs.map_err(NodeError::from));
            }
            Command::Status(reply) => {
                return answer(reply, Ok(self.raw.status()));
            }
            Command::ReportUnreachable(id) => self.raw.report_unreachable(id),
            Command::ReportSnapshot(id, status) => self.raw.report_snapshot(id, status),
            Command::TransferLeader(to) => self.raw.transfer_leader(to),
            Command::ReadIndex(context, reply) => {
                return answer(reply, self.raw.read_index(context).map_err(NodeError::from));
            }
            Command::Stop => {}
        }
        None
    }

    /// Registers a proposal appended here or forwarded; its outcome comes on the returned
    /// receiver.
    fn track(&mut self, proposed: raft_core::Result<Proposed>) -> Result<Proposal, NodeError> {
        let proposed = proposed?;
        let (tx, outcome) = std::sync::mpsc::channel();
        match proposed {
            Proposed::Appended { index, term } => self.proposals.track(tx, index, term),
            Proposed::Forwarded { id, term, .. } => self.proposals.track_forwarded(tx, id, term),
        }
        Ok(Proposal { proposed, outcome })
    }

    fn advance(&mut self, rd: Ready) -> Result<LightReady, NodeError> {
        if self.outstanding != Some(rd.number()) {
            return Err(NodeError::NotOutstanding {
                number: rd.number(),
                outstanding: self.outstanding,
            });
        }
        self.outstanding = None;
        // The application restored the snapshot and applied the committed entries.
        if let Some((index, term)) = self.ready_snapshot.take() {
            let decided = self.proposals.on_snapshot(index, term);
            decide(decided);
        }
        let ids = std::mem::take(&mut self.ready_ids);
        let decided = self.proposals.on_committed_ids(&ids);
        decide(decided);
        let light = self.raw.advance(rd)?;
        self.light_ids
            .extend(light.committed_entries().iter().map(|e| (e.index, e.term)));
        Ok(light)
    }

    /// Hands out the next Ready if the previous one was advanced and there is work. Returns false
    /// when nobody receives Readys any more.
    fn hand_out_ready(&mut self) -> bool {
        if self.outstanding.is_some() || !self.raw.has_ready() {
            return true;
        }
        let ready = match self.raw.ready() {
            Ok(rd) => {
                self.outstanding = Some(rd.number());
                let snap = rd.snapshot();
                self.ready_snapshot = snap
                    .metadata
                    .as_ref()
                    .filter(|_| !snap.is_empty())
                    .map(|m| (m.index, m.term));
                self.ready_ids = rd
                    .committed_entries()
                    .iter()
                    .map(|e| (e.index, e.term))
                    .collect();
                Ok(rd)
            }
            Err(e) => {
                warn!(self.logger, "cannot build a Ready"; "error" => %e);
                Err(NodeError::from(e))
            }
        };
        self.readys.send(ready).is_ok()
    }
}

/// An answer to send to a caller.
type Answer = Box<dyn FnOnce() + Send>;

/// The answer `result` to the caller waiting on `reply` (who may have given up waiting).
fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, NodeError>) -> Option<Answer> {
    Some(Box::new(move || {
        let _ = reply.send(result);
    }))
}

/// Sends each decided outcome to its proposer (who may have stopped waiting).
fn decide(outcomes: Vec<(Sender<ProposalOutcome>, ProposalOutcome)>) {
    for (waiter, outcome) in outcomes {
        let _ = waiter.send(outcome);
    }
}
