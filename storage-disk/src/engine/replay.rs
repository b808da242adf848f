//! Replaying segments: rebuilding the log index, the hard state and the membership from the
//! records, and finding where the valid records stop.
//!
//! # The end of a segment
//!
//! The engine writes zeros ahead of the records of a segment (preallocation, see `write`), so
//! a segment's records are followed by zeros to the end of its file. Replay stops at the first
//! record that does not decode, at byte `D`, and:
//! - if every byte from `D` to the end of the file is zero, `D` is the end of the segment's
//!   records, not damage: that is what a preallocated segment holds after its last record, and
//!   what a crash leaves when it lost every sector of the writes after the last complete record
//!   (in a segment without zeros ahead, the file then ends at `D`, which was always the end);
//! - otherwise the record at `D` is damaged, and `tail` judges its shape as before.
//!
//! A zeroed sector *inside* a record is told apart from the zeros ahead by what follows it: the
//! bytes from the record's start to the end of the file are not all zeros, because the record
//! itself holds a non-zero byte before the zeroed piece (its header: kind and checksums are
//! never all zeros) or after it (its later sectors, or later records). So the rules of `tail`
//! still decide every damage that leaves a non-zero byte after `D`, and the one case they never
//! saw before, zeros from a record's first byte to the end of the file, is exactly the case
//! "the file ends at `D`", which they always accepted as the end. The end found must still lie
//! at or after the last proof of sync (`open` checks it, as it checked the file's length).

use std::path::Path;

use prost::Message as _;
use raft_core::eraftpb::{ConfState, Entry, HardState};

use super::tail::{crash_shape, header_crash_shape};
use super::witness::NewestWitness;
use super::TornShape;
use crate::error::DiskError;
use crate::files::{foreign_segment_version, is_segment_header, SEGMENT_HEADER_LEN};
use crate::log_index::{LogIndex, RecordAt};
use crate::record::{self, decode_hard_state, Decoded, RecordKind, HEADER_LEN};

/// The state of one group that replay rebuilds from its records.
pub struct GroupReplay {
    /// The group's entries.
    pub log: LogIndex,
    /// The hard state: the checkpoint's, then each later hard state record's.
    pub hard_state: HardState,
    /// The membership: the checkpoint's, then each later membership record's.
    pub conf_state: ConfState,
}

impl GroupReplay {
    /// Replays an entry record at `at` (see [`replay_entry`] for `may_be_stale`).
    pub fn entry(
        &mut self,
        payload: &[u8],
        at: RecordAt,
        may_be_stale: bool,
    ) -> Result<(), String> {
        let entry = Entry::decode(payload).map_err(|e| format!("entry does not decode: {e}"))?;
        replay_entry(entry, at, may_be_stale, &mut self.log)
    }

    /// Replays an entry copy record at `at` (multi-group logs): the entry moves to the
    /// copy if the log holds it (with the same term), or the copy is appended if it follows the
    /// log's last entry (the copies of a group's entries from its first one on, replayed from
    /// the checkpoint's first entry position); anything else is a gap or a changed entry.
    pub fn entry_copy(&mut self, payload: &[u8], at: RecordAt) -> Result<(), String> {
        let entry = Entry::decode(payload).map_err(|e| format!("entry does not decode: {e}"))?;
        let index = entry.index;
        if index <= self.log.start().0 {
            return Ok(());
        }
        match self.log.term(index) {
            Some(term) if term == entry.term => {
                self.log.relocate(index, at);
                Ok(())
            }
            Some(term) => Err(format!(
                "a copy of entry {index} of term {} but the log holds it with term {term}",
                entry.term
            )),
            None if index == self.log.last_index() + 1 => {
                self.log.push(at, entry);
                Ok(())
            }
            None => Err(format!(
                "gap in the log: a copy of entry {index} follows entry {}",
                self.log.last_index()
            )),
        }
    }

    /// Replays a hard state record: its commit index must not pass the entries before it.
    pub fn hard_state(&mut self, payload: &[u8]) -> Result<(), String> {
        let Some(hs) = decode_hard_state(payload) else {
            return Err(format!("a hard state record of {} bytes", payload.len()));
        };
        if hs.commit > self.log.last_index() {
            return Err(format!(
                "the hard state commits index {} but the log before it ends at {}",
                hs.commit,
                self.log.last_index()
            ));
        }
        self.hard_state = hs;
        Ok(())
    }

    /// Replays a membership record.
    pub fn conf_state(&mut self, payload: &[u8]) -> Result<(), String> {
        self.conf_state =
            ConfState::decode(payload).map_err(|e| format!("membership does not decode: {e}"))?;
        Ok(())
    }
}

/// Where the records of a segment go during replay: one group's state, or many groups'.
pub trait RecordSink {
    /// Replays the valid record `rec` (never a sync mark) found at byte `offset` of segment
    /// `segment`; an error is corruption at that record, in words.
    fn record(&mut self, segment: u64, offset: u64, rec: &Decoded<'_>) -> Result<(), String>;
}

/// What the replay of a single-group log has rebuilt so far, segment after segment.
pub struct ReplayState {
    /// The group's log, hard state and membership.
    pub group: GroupReplay,
    /// The log position (segment, offset) the checkpoint was written at: hard state and
    /// membership records before it are older than the checkpoint.
    pub checkpoint_at: (u64, u64),
    /// The first segment of the log (the one of its first entry at the checkpoint).
    pub first_segment: u64,
    /// The group whose records are replayed.
    pub group_id: u64,
    /// The newest checkpoint witness met (see `witness`).
    pub witness: NewestWitness,
}

impl RecordSink for ReplayState {
    fn record(&mut self, id: u64, offset: u64, rec: &Decoded<'_>) -> Result<(), String> {
        if rec.group != self.group_id {
            return Ok(());
        }
        let after_checkpoint = (id, offset) >= self.checkpoint_at;
        match rec.kind {
            RecordKind::Entry => {
                let at = RecordAt {
                    segment: id,
                    offset,
                    len: rec.total_len as u64,
                };
                // See `replay_entry` for when a record may be stale.
                let may_be_stale = id == self.first_segment && !after_checkpoint;
                self.group.entry(rec.payload, at, may_be_stale)
            }
            RecordKind::HardState if after_checkpoint => self.group.hard_state(rec.payload),
            RecordKind::ConfState if after_checkpoint => self.group.conf_state(rec.payload),
            RecordKind::HardState | RecordKind::ConfState | RecordKind::SyncMark => Ok(()),
            RecordKind::CheckpointWitness => self.witness.note(rec.payload, (id, offset)),
            other => Err(format!(
                "a {other:?} record (multi-group logs only) in a single-group log"
            )),
        }
    }
}

/// Where the valid records of a segment stop before its end.
pub struct Damage {
    /// The first damaged byte.
    pub offset: u64,
    /// What is wrong, in words.
    pub reason: &'static str,
    /// The shape of the damage if a crash can leave it (see `tail`).
    pub shape: Option<TornShape>,
}

/// What the replay of one segment found.
pub struct Replayed {
    /// Where the valid records end.
    pub end: u64,
    /// The damage the records stop at, if they stop before the end of the file.
    pub damage: Option<Damage>,
    /// The end of the last sync mark: every byte before it was synced.
    pub synced_end: u64,
}

/// Replays the records of segment `id` (its whole contents in `bytes`) into `sink`.
pub fn replay_segment(
    path: &Path,
    id: u64,
    bytes: &[u8],
    sink: &mut impl RecordSink,
) -> Result<Replayed, DiskError> {
    if !is_segment_header(bytes, id) {
        if let Some(version) = foreign_segment_version(bytes, id) {
            return Err(DiskError::corrupt(
                path,
                4,
                format!("segment format version {version}; this build reads version 2 only"),
            ));
        }
        return Ok(Replayed {
            end: 0,
            damage: Some(Damage {
                offset: 0,
                reason: "bad segment header",
                shape: header_crash_shape(bytes, SEGMENT_HEADER_LEN),
            }),
            synced_end: 0,
        });
    }
    let mut offset = SEGMENT_HEADER_LEN;
    let mut synced_end = SEGMENT_HEADER_LEN;
    while (offset as usize) < bytes.len() {
        let rec = match record::decode(&bytes[offset as usize..], id, offset) {
            Ok(rec) => rec,
            Err(_) if is_zero(&bytes[offset as usize..]) => break,
            Err(error) => {
                let damage = Damage {
                    offset,
                    reason: error.reason(),
                    shape: crash_shape(bytes, offset, &error),
                };
                return Ok(Replayed {
                    end: offset,
                    damage: Some(damage),
                    synced_end,
                });
            }
        };
        let total = rec.total_len as u64;
        if rec.kind == RecordKind::SyncMark {
            synced_end = offset + total;
        } else {
            sink.record(id, offset, &rec)
                .map_err(|reason| DiskError::corrupt(path, offset, reason))?;
        }
        offset += total;
    }
    Ok(Replayed {
        end: offset,
        damage: None,
        synced_end,
    })
}

/// Adds `entry`, whose record is `at`, to `log`: it replaces every entry from its
/// index on, as the append that wrote it did. Entries behind the start are skipped.
///
/// An entry that does not follow the log (a gap) is corruption, except for a stale record
/// (`may_be_stale`: in the first segment, before the checkpoint's position) while the log holds
/// no entry yet. The first segment is the one that held the log's first entry (`start + 1`) at
/// the checkpoint, and records before that entry's record may belong to appends whose earlier
/// entries lay in segments deleted since. The append of the first entry came after them and
/// replaced them all; from it on, the log replays exactly as it was written, without gaps.
pub fn replay_entry(
    entry: Entry,
    at: RecordAt,
    may_be_stale: bool,
    log: &mut LogIndex,
) -> Result<(), String> {
    let index = entry.index;
    let (start, _) = log.start();
    if index <= start {
        return Ok(());
    }
    if index > log.last_index() + 1 {
        if may_be_stale && log.last_index() == start {
            return Ok(());
        }
        return Err(format!(
            "gap in the log: entry {index} follows entry {}",
            log.last_index()
        ));
    }
    log.truncate_after(index - 1);
    log.push(at, entry);
    Ok(())
}

/// Whether every byte of `bytes` is zero.
pub fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// The length of `bytes` without its trailing zeros: what a preallocated segment holds before
/// the zeros written ahead.
pub fn content_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1)
}

/// Whether a valid sync mark lies anywhere after `damage` in a segment: then the damaged bytes
/// were synced before it was written, and the damage is corruption, not a torn write.
pub fn has_sync_mark_after(bytes: &[u8], id: u64, damage: u64) -> bool {
    let start = (damage as usize + 1).max(SEGMENT_HEADER_LEN as usize);
    // A mark ends in the upper bytes of its kind and its group id, all 0: it may end up to 11
    // bytes into the trailing zeros.
    let end = (content_len(bytes) + HEADER_LEN).min(bytes.len());
    (start..end.saturating_sub(HEADER_LEN - 1)).any(|at| {
        // Cheap filter first: a sync mark has length 0 and kind 2.
        bytes[at..at + 4] == [0; 4]
            && bytes[at + 12..at + 16] == 2u32.to_le_bytes()
            && matches!(
                record::decode(&bytes[at..], id, at as u64),
                Ok(rec) if rec.kind == RecordKind::SyncMark
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::segment_header;

    /// A segment 1 holding `records` (kind, payload), and where each starts.
    fn segment(records: &[(RecordKind, Vec<u8>)]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = segment_header(1).to_vec();
        let mut offsets = Vec::new();
        for (kind, payload) in records {
            offsets.push(bytes.len() as u64);
            let offset = bytes.len() as u64;
            record::encode(&mut bytes, 1, offset, *kind, 1, payload);
        }
        (bytes, offsets)
    }

    fn entry(index: u64) -> (RecordKind, Vec<u8>) {
        let entry = Entry {
            index,
            term: 1,
            ..Default::default()
        };
        (RecordKind::Entry, entry.encode_to_vec())
    }

    fn hard_state(commit: u64) -> (RecordKind, Vec<u8>) {
        let hs = HardState {
            term: 1,
            vote: 1,
            commit,
        };
        (
            RecordKind::HardState,
            record::encode_hard_state(&hs).to_vec(),
        )
    }

    fn state(checkpoint_at: u64) -> ReplayState {
        ReplayState {
            group: GroupReplay {
                log: LogIndex::new(0, 0, 1 << 20),
                hard_state: HardState::default(),
                conf_state: ConfState::default(),
            },
            checkpoint_at: (1, checkpoint_at),
            first_segment: 1,
            group_id: 1,
            witness: NewestWitness::default(),
        }
    }

    #[test]
    fn a_hard_state_committing_past_the_entries_before_it_is_corruption() {
        let (bytes, offsets) = segment(&[entry(1), entry(2), hard_state(3)]);
        let Err(error) = replay_segment(Path::new("seg"), 1, &bytes, &mut state(0)) else {
            panic!("a commit beyond the log was accepted");
        };
        assert_eq!(error.corrupt_at(), Some((Path::new("seg"), offsets[2])));
        let (bytes, _) = segment(&[entry(1), entry(2), hard_state(2)]);
        let mut replayed = state(0);
        replay_segment(Path::new("seg"), 1, &bytes, &mut replayed).unwrap();
        assert_eq!(replayed.group.hard_state.commit, 2);
    }

    #[test]
    fn hard_states_before_the_checkpoint_are_skipped() {
        let (bytes, offsets) = segment(&[entry(1), hard_state(1), entry(2)]);
        let mut replayed = state(offsets[2]);
        replay_segment(Path::new("seg"), 1, &bytes, &mut replayed).unwrap();
        assert_eq!(
            replayed.group.hard_state,
            HardState::default(),
            "the checkpoint's"
        );
        assert_eq!(replayed.group.log.last_index(), 2);
    }

    #[test]
    fn a_gap_is_a_stale_record_before_the_checkpoint_and_corruption_after_it() {
        // Entry 7 was written when entries 1-6 were in a segment deleted since; the append of
        // entry 1 at the next record replaced it.
        let (bytes, offsets) = segment(&[entry(7), entry(1), entry(2)]);
        let mut replayed = state(offsets[2] + 1);
        replay_segment(Path::new("seg"), 1, &bytes, &mut replayed).unwrap();
        assert_eq!(replayed.group.log.last_index(), 2);
        let Err(error) = replay_segment(Path::new("seg"), 1, &bytes, &mut state(0)) else {
            panic!("a gap after the checkpoint was accepted");
        };
        assert_eq!(error.corrupt_at(), Some((Path::new("seg"), offsets[0])));
        // Once the log holds an entry, a gap is corruption even before the checkpoint.
        let (bytes, offsets) = segment(&[entry(1), entry(3), entry(2)]);
        let Err(error) = replay_segment(Path::new("seg"), 1, &bytes, &mut state(u64::MAX)) else {
            panic!("a gap after the first entry was accepted");
        };
        assert_eq!(error.corrupt_at(), Some((Path::new("seg"), offsets[1])));
    }
}
