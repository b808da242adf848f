//! Checks the outcome a node's `ProposalTracker` reports for each client write it appended as
//! leader or forwarded as follower (issue 18): `Committed` at (index, term) only if that very
//! write was applied there, `Dropped` only if another entry was applied at its index and the
//! write is never applied anywhere, before or after the report, and `NotAppended` only if the
//! write is never applied anywhere.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raft_core::proposal::ProposalOutcome;

use super::node::decode_write;

/// What the outcome checks have learned.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Values of writes reported dropped: none may ever be applied.
    dropped: BTreeSet<u64>,
    /// The index each write value was applied at (by any node).
    applied_at: BTreeMap<u64, u64>,
}

impl Outcomes {
    /// Records an applied entry; a write reported dropped must never be applied.
    pub fn on_apply(&mut self, node: u64, index: u64, data: &Bytes) -> Result<(), String> {
        let Some((_, value)) = decode_write(data) else {
            return Ok(());
        };
        if self.dropped.contains(&value) {
            return Err(format!(
                "proposal outcome: node {node} applied write #{value} at index {index}, which \
                 was reported dropped"
            ));
        }
        self.applied_at.entry(value).or_insert(index);
        Ok(())
    }

    /// Checks the outcome `node` reported for write `value`, against what was applied at each
    /// index (`applied`: index -> (term, data)). The node has applied the index it names (or
    /// restored a snapshot past it) before reporting.
    pub fn check(
        &mut self,
        node: u64,
        value: u64,
        outcome: ProposalOutcome,
        applied: &BTreeMap<u64, (u64, Bytes)>,
    ) -> Result<(), String> {
        let write_at = |index: u64| {
            applied
                .get(&index)
                .map(|(term, data)| (*term, decode_write(data).map(|(_, v)| v)))
        };
        match outcome {
            ProposalOutcome::Committed { index, term } => {
                // A snapshot may have carried it: then no node applied that index itself.
                if let Some(found) = write_at(index) {
                    if found != (term, Some(value)) {
                        return Err(format!(
                            "proposal outcome: node {node} reported write #{value} committed at \
                             {term}/{index}, where term {} write {:?} was applied",
                            found.0, found.1
                        ));
                    }
                }
                if let Some(at) = self.applied_at.get(&value).filter(|at| **at != index) {
                    return Err(format!(
                        "proposal outcome: node {node} reported write #{value} committed at \
                         index {index}, but it was applied at index {at}"
                    ));
                }
            }
            ProposalOutcome::Dropped {
                index,
                committed_term,
                ..
            } => {
                if let Some(at) = self.applied_at.get(&value) {
                    return Err(format!(
                        "proposal outcome: node {node} reported write #{value} dropped, but it \
                         was applied at index {at}"
                    ));
                }
                if let Some((term, _)) = write_at(index).filter(|(t, _)| *t != committed_term) {
                    return Err(format!(
                        "proposal outcome: node {node} reported write #{value} dropped for an \
                         entry of term {committed_term} at index {index}, where term {term} was \
                         applied"
                    ));
                }
                self.dropped.insert(value);
            }
            ProposalOutcome::NotAppended { term } => {
                if let Some(at) = self.applied_at.get(&value) {
                    return Err(format!(
                        "proposal outcome: node {node} reported write #{value} not appended by \
                         the leader of term {term}, but it was applied at index {at}"
                    ));
                }
                self.dropped.insert(value);
            }
            ProposalOutcome::Unknown { .. } | ProposalOutcome::Unanswered { .. } => {}
        }
        Ok(())
    }
}
