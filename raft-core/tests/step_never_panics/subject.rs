//! The node under test and the properties checked after each of its inputs.

use crate::roles::{build, Role};
use crate::strategies::{MsgT, Op};
use proptest::prelude::*;
use raft_core::eraftpb::MessageType;
use raft_core::{RawNode, INVALID_ID};
use raft_proto::describe_message;
use raft_testkit::{check_invariants, check_refusal, Flags, Observed, Peer};
use std::collections::BTreeSet;
use storage_mem::MemStorage;

/// The node under test, with the ids it may legitimately have voted for.
struct Subject {
    peer: Peer,
    role: Role,
    votable: BTreeSet<u64>,
    /// The node's highest term so far: terms never go down.
    max_term: u64,
}

impl Subject {
    fn new(role: Role, flags: Flags) -> Subject {
        let mut peer = build(role, flags);
        // The node keeps the configuration of its role, whatever conf change entries commit.
        peer.applies_conf_changes = false;
        let votable = [peer.id(), peer.raw.raft.vote].into_iter().collect();
        let max_term = peer.raw.raft.term;
        Subject {
            peer,
            role,
            votable,
            max_term,
        }
    }

    /// Safety invariants of the node's state (`raft_testkit::check_invariants`: §5.3, §5.4,
    /// terms never go down), and that it voted only for a node that asked.
    fn check_invariants(&mut self, after: &str) -> Result<(), TestCaseError> {
        let r = &self.peer.raw.raft;
        let (role, id) = (self.role, r.id);
        if let Err(e) = check_invariants(&self.peer, self.max_term) {
            return Err(TestCaseError::fail(format!(
                "{role:?} node {id} ({:?}) after {after}: {e}",
                r.state
            )));
        }
        self.max_term = r.term;
        prop_assert!(
            r.vote == INVALID_ID || self.votable.contains(&r.vote),
            "{role:?} node {id} after {after}: voted for {}, which never asked for a vote",
            r.vote
        );
        Ok(())
    }

    /// Steps one message; a refusal must leave the node as it was.
    fn step(&mut self, t: &MsgT) -> Result<(), TestCaseError> {
        let m = t.resolve(&self.peer);
        if m.msg_type == MessageType::MsgRequestVote as i32 {
            self.votable.insert(m.from);
        }
        let name = format!("step({})", describe_message(&m));
        self.command(&name, |raw| raw.step(m))
    }

    /// A local command; if it fails other than by dropping a proposal, nothing may change.
    fn command(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut RawNode<MemStorage>) -> raft_core::Result<()>,
    ) -> Result<(), TestCaseError> {
        let before = Observed::of(&self.peer);
        let result = f(&mut self.peer.raw);
        if let Err(e) = check_refusal(&before, &self.peer, &result) {
            return Err(TestCaseError::fail(format!(
                "{:?} node {}: {name} {e}",
                self.role,
                self.peer.id()
            )));
        }
        self.check_invariants(&format!("{name} -> {result:?}"))
    }

    fn ready(&mut self) -> Result<(), TestCaseError> {
        let (role, id) = (self.role, self.peer.id());
        self.peer
            .handle_ready()
            .map_err(|e| TestCaseError::fail(format!("{role:?} node {id}: {e}")))?;
        self.check_invariants("handling a Ready")
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Step(t) => self.step(t),
            Op::Tick(n) => {
                // A tick may start a campaign, in which the node votes for itself (already votable).
                for _ in 0..*n {
                    self.peer.raw.tick();
                }
                self.check_invariants(&format!("{n} ticks"))
            }
            Op::Propose(data) => self.command("propose", |raw| raw.propose(vec![], data.clone())),
            Op::Campaign => self.command("campaign", |raw| raw.campaign()),
            Op::Ready => self.ready(),
            Op::ReportUnreachable(id) => self.command("report_unreachable", |raw| {
                raw.report_unreachable(*id);
                Ok(())
            }),
        }
    }
}

/// Property 1-3 for one message: step it, then run the node's Ready cycle.
pub fn single_message(role: Role, flags: Flags, t: &MsgT) -> Result<(), TestCaseError> {
    let mut s = Subject::new(role, flags);
    s.check_invariants("building the fixture")?;
    s.step(t)?;
    s.ready()?;
    // The Ready's acknowledgements may be followed by a second Ready (e.g. newly committed entries).
    s.ready()
}

/// Property 1-3 for a sequence of inputs, ending with the Ready cycle.
pub fn sequence(role: Role, flags: Flags, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut s = Subject::new(role, flags);
    for op in ops {
        s.run(op)?;
    }
    s.ready()
}
