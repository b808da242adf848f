//! The node under test and the checks after every input: `raft-testkit`'s rules (a refusal
//! changes nothing observable; the log's invariants hold; terms never go down) and every Ready
//! can be persisted and advanced.

use crate::recording::{node, perform, Event};
use proptest::prelude::*;
use raft_core::eraftpb::Message;
use raft_core::Error;
use raft_testkit::{check_invariants, check_refusal, Flags, Observed, Peer};
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages stepped by harness (a) and (b), over the whole run.
pub static STEPPED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Messages stepped by harness (b), over the whole run.
pub static STEPPED_STRUCTURED: AtomicU64 = AtomicU64::new(0);
/// Of those, how many were refused with an error (proposals dropped aside).
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// A node and the highest term it reached.
pub struct Subject {
    /// The node.
    pub peer: Peer,
    /// The node's highest term so far: terms never go down.
    pub max_term: u64,
}

impl Subject {
    /// Node `id` of a fresh group (see [`node`]).
    pub fn new(id: u64, flags: Flags) -> Subject {
        Subject {
            peer: node(id, flags),
            max_term: 0,
        }
    }

    fn fail(&self, after: &dyn Fn() -> String, what: String) -> TestCaseError {
        let r = &self.peer.raw.raft;
        TestCaseError::fail(format!(
            "node {} ({:?}, term {}) after {}: {what}",
            r.id,
            r.state,
            r.term,
            after()
        ))
    }

    /// §5.3/§5.4 log invariants, cursor order, and that the term did not go down.
    pub fn check(&mut self, after: &dyn Fn() -> String) -> Result<(), TestCaseError> {
        if let Err(e) = check_invariants(&self.peer, self.max_term) {
            return Err(self.fail(after, e));
        }
        self.max_term = self.peer.raw.raft.term;
        Ok(())
    }

    /// Steps `m`; a refusal must leave the node as it was.
    pub fn step(&mut self, m: Message, counter: &AtomicU64) -> Result<(), TestCaseError> {
        counter.fetch_add(1, Ordering::Relaxed);
        let before = Observed::of(&self.peer);
        let shown = m.clone();
        let after = || format!("step({})", raft_proto::describe_message(&shown));
        let result = self.peer.raw.step(m);
        if matches!(&result, Err(e) if *e != Error::ProposalDropped) {
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = check_refusal(&before, &self.peer, &result) {
            return Err(self.fail(&after, e));
        }
        self.check(&after)
    }

    /// Handles the node's Ready, which must be possible to persist and advance.
    pub fn ready(&mut self) -> Result<(), TestCaseError> {
        if let Err(e) = self.peer.handle_ready() {
            return Err(self.fail(&|| "handling a Ready".to_string(), e));
        }
        self.check(&|| "handling a Ready".to_string())
    }

    /// Performs one recorded event (a step counted in `counter`).
    pub fn act(&mut self, ev: &Event, counter: &AtomicU64) -> Result<(), TestCaseError> {
        match ev {
            Event::Step(m) => self.step(m.clone(), counter),
            Event::Ready => self.ready(),
            ev => {
                perform(&mut self.peer, ev).map_err(TestCaseError::fail)?;
                self.check(&|| format!("{ev:?}"))
            }
        }
    }
}
