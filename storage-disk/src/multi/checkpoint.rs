//! The checkpoint file of a multi-group log: the small state of every group at one synced
//! position of the log, so that the segments before it can be deleted once no group's entries
//! live in them.
//!
//! ```text
//! header (24 bytes): magic "RDMC" | format version u32 (1) | CRC-32C u32 of the payload |
//!                    4 zero bytes | payload length u64
//! payload:           sequence, first segment, synced segment, synced offset, group count
//!                    (u64 LE each), then per group, in increasing id order:
//!   id, term, vote, commit, log start index, log start term,
//!   first entry segment, first entry offset (u64 LE each; segment 0: the log holds no entry;
//!   the position of the first entry's record, or of an earlier record of entries behind the
//!   log start from which the group's entry records follow without a gap),
//!   snapshot metadata length u32 LE, its prost encoding (`eraftpb::SnapshotMetadata`),
//!   membership length u32 LE, its prost encoding (`eraftpb::ConfState`)
//! ```
//!
//! The file is replaced whole: written as `checkpoint.tmp`, fsynced, renamed over `checkpoint`
//! and the directory fsynced, so a crash leaves the old checkpoint or the new one.

use std::path::Path;

use prost::Message as _;
use raft_core::eraftpb::{ConfState, HardState, SnapshotMetadata};

use crate::error::DiskError;

const MAGIC: &[u8; 4] = b"RDMC";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 24;

/// One group's state at the checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupCheckpoint {
    /// The group id.
    pub id: u64,
    /// Term, vote and commit (the commit never beyond the group's durable entries).
    pub hard_state: HardState,
    /// The membership.
    pub conf_state: ConfState,
    /// The index and term of the entry before the group's first entry.
    pub log_start: (u64, u64),
    /// Where the group's entry records start to count, (segment, offset), if it has an entry:
    /// its first entry's record, or an earlier one from which its entry records follow without
    /// a gap (those before the first entry's are behind the log start). Its entry records
    /// before that position are stale.
    pub first_entry_at: Option<(u64, u64)>,
    /// The group's latest snapshot (index 0: none).
    pub snapshot: SnapshotMetadata,
}

/// The contents of a checkpoint file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Increases with every checkpoint written.
    pub sequence: u64,
    /// Segments with a lower id are no longer part of the log.
    pub first_segment: u64,
    /// The log position (segment, offset) the checkpoint was written at: the log was synced up
    /// to it, and records other than entries before it are older than the checkpoint.
    pub synced: (u64, u64),
    /// Every group, in increasing id order.
    pub groups: Vec<GroupCheckpoint>,
}

/// The contents of the checkpoint file holding `checkpoint`.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut payload = Vec::with_capacity(40 + checkpoint.groups.len() * 100);
    let put = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
    put(&mut payload, checkpoint.sequence);
    put(&mut payload, checkpoint.first_segment);
    put(&mut payload, checkpoint.synced.0);
    put(&mut payload, checkpoint.synced.1);
    put(&mut payload, checkpoint.groups.len() as u64);
    for group in &checkpoint.groups {
        let hs = &group.hard_state;
        let (entry_segment, entry_offset) = group.first_entry_at.unwrap_or((0, 0));
        for v in [
            group.id,
            hs.term,
            hs.vote,
            hs.commit,
            group.log_start.0,
            group.log_start.1,
            entry_segment,
            entry_offset,
        ] {
            put(&mut payload, v);
        }
        for message in [
            group.snapshot.encode_to_vec(),
            group.conf_state.encode_to_vec(),
        ] {
            payload.extend_from_slice(&(message.len() as u32).to_le_bytes());
            payload.extend_from_slice(&message);
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// A reader over the payload that names the file and offset of what it cannot read.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], DiskError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(DiskError::corrupt(
                self.path,
                self.at as u64,
                format!("the checkpoint ends inside {what}"),
            ));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self, what: &str) -> Result<u64, DiskError> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(word))
    }

    fn message<M: prost::Message + Default>(&mut self, what: &str) -> Result<M, DiskError> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4, what)?);
        let len = u32::from_le_bytes(word) as usize;
        let at = self.at as u64;
        M::decode(self.take(len, what)?)
            .map_err(|e| DiskError::corrupt(self.path, at, format!("{what} does not decode: {e}")))
    }
}

/// Decodes the contents of the checkpoint file at `path`, naming the file and offset in errors.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, DiskError> {
    if bytes.len() < HEADER_LEN || &bytes[0..4] != MAGIC {
        return Err(DiskError::corrupt(
            path,
            0,
            "not a checkpoint file (bad magic)",
        ));
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if word(4) != VERSION {
        return Err(DiskError::corrupt(
            path,
            4,
            format!("checkpoint format version {}; this build reads 1", word(4)),
        ));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(DiskError::corrupt(
            path,
            16,
            format!("checkpoint length {len} but {} bytes follow", payload.len()),
        ));
    }
    if crc32c::crc32c(payload) != word(8) {
        return Err(DiskError::corrupt(path, 8, "checkpoint checksum mismatch"));
    }
    let mut cursor = Cursor {
        path,
        bytes,
        at: HEADER_LEN,
    };
    let mut checkpoint = Checkpoint {
        sequence: cursor.u64("the header")?,
        first_segment: cursor.u64("the header")?,
        synced: (cursor.u64("the header")?, cursor.u64("the header")?),
        groups: Vec::new(),
    };
    let count = cursor.u64("the header")?;
    let mut last_id = None;
    for _ in 0..count {
        let at = cursor.at as u64;
        let mut fields = [0u64; 8];
        for field in &mut fields {
            *field = cursor.u64("a group")?;
        }
        let [id, term, vote, commit, start_index, start_term, entry_segment, entry_offset] = fields;
        if last_id.is_some_and(|last| last >= id) {
            return Err(DiskError::corrupt(path, at, "groups out of order"));
        }
        last_id = Some(id);
        checkpoint.groups.push(GroupCheckpoint {
            id,
            hard_state: HardState { term, vote, commit },
            log_start: (start_index, start_term),
            first_entry_at: (entry_segment != 0).then_some((entry_segment, entry_offset)),
            snapshot: cursor.message("a snapshot metadata")?,
            conf_state: cursor.message("a membership")?,
        });
    }
    if cursor.at != bytes.len() {
        return Err(DiskError::corrupt(
            path,
            cursor.at as u64,
            "bytes after the last group",
        ));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            sequence: 4,
            first_segment: 3,
            synced: (7, 4096),
            groups: vec![
                GroupCheckpoint {
                    id: 1,
                    hard_state: HardState {
                        term: 2,
                        vote: 1,
                        commit: 9,
                    },
                    conf_state: ConfState {
                        voters: vec![1, 2, 3],
                        ..Default::default()
                    },
                    log_start: (5, 2),
                    first_entry_at: Some((3, 24)),
                    snapshot: SnapshotMetadata {
                        index: 5,
                        term: 2,
                        conf_state: None,
                    },
                },
                GroupCheckpoint {
                    id: 9,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let bytes = encode(&sample());
        assert_eq!(decode(Path::new("c"), &bytes).unwrap(), sample());
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_caught() {
        let bytes = encode(&sample());
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            if bit / 8 >= 12 && bit / 8 < 16 {
                continue; // the 4 zero bytes of the header are not read
            }
            assert!(decode(Path::new("c"), &damaged).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(
                decode(Path::new("c"), &bytes[..len]).is_err(),
                "cut at {len}"
            );
        }
    }
}
