//! The group shape record of a multi-group log: where a group's log starts and which snapshot is
//! its latest, from this point of the log on.
//!
//! ```text
//! payload: flags u64 LE (bit 0: a snapshot was installed, the log was emptied),
//!          log start index u64 LE, log start term u64 LE,
//!          the prost encoding of the group's eraftpb::SnapshotMetadata
//! ```
//!
//! Written when a group compacts (the start moves forward over entries it holds), creates a
//! snapshot (the start stays) or installs one (the log is emptied and starts after it).

use prost::Message as _;
use raft_core::eraftpb::SnapshotMetadata;

use crate::log_index::LogIndex;

const RESET: u64 = 1;

/// A group's log start and snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupShape {
    /// A snapshot was installed: every entry is discarded.
    pub reset: bool,
    /// The index and term of the entry before the first one.
    pub start: (u64, u64),
    /// The latest snapshot (index 0: none).
    pub snapshot: SnapshotMetadata,
}

impl GroupShape {
    /// The record's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.snapshot.encoded_len());
        let flags = if self.reset { RESET } else { 0 };
        for v in [flags, self.start.0, self.start.1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        self.snapshot.encode(&mut out).expect("encoding into a Vec");
        out
    }

    /// Decodes a record's payload.
    pub fn decode(payload: &[u8]) -> Result<GroupShape, String> {
        if payload.len() < 24 {
            return Err(format!("a group shape record of {} bytes", payload.len()));
        }
        let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8"));
        let flags = word(0);
        if flags & !RESET != 0 {
            return Err(format!(
                "a group shape record with unknown flags {flags:#x}"
            ));
        }
        let snapshot = SnapshotMetadata::decode(&payload[24..])
            .map_err(|e| format!("a group shape's snapshot metadata does not decode: {e}"))?;
        Ok(GroupShape {
            reset: flags & RESET != 0,
            start: (word(8), word(16)),
            snapshot,
        })
    }

    /// Applies the shape to a group's replayed log: empties it (an installed snapshot) or
    /// discards the entries up to the start, which the log must hold with the start's term.
    pub fn replay(&self, log: &mut LogIndex) -> Result<(), String> {
        let (index, term) = self.start;
        if self.reset {
            log.reset(index, term);
            return Ok(());
        }
        let (current, _) = log.start();
        if index < current {
            return Err(format!(
                "the log start moves back from {current} to {index}"
            ));
        }
        if index > current {
            if log.term(index) != Some(term) {
                return Err(format!(
                    "a compaction to entry {index} of term {term}, which the log does not hold"
                ));
            }
            log.compact_to(index, term);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_round_trips() {
        let shape = GroupShape {
            reset: true,
            start: (10, 3),
            snapshot: SnapshotMetadata {
                index: 10,
                term: 3,
                conf_state: None,
            },
        };
        assert_eq!(GroupShape::decode(&shape.encode()), Ok(shape));
        assert!(GroupShape::decode(&[0; 10]).is_err());
        let mut bad_flags = vec![0u8; 24];
        bad_flags[0] = 2;
        assert!(GroupShape::decode(&bad_flags).is_err());
    }
}
