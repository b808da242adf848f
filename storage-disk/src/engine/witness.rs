//! Checkpoint witnesses: proof in the log that the state file was written, so that a state file
//! write that never landed is found on recovery and repaired from the log.
//!
//! # The hazard
//!
//! The state file (`state_file`) is written only when the log's shape changes (a snapshot is
//! created or installed, the log is compacted), and it alone records that change: where the log
//! starts, which segment comes first, which snapshot is current. A slot write that the device
//! acknowledged but put one sector away (a misdirected write) or never made (a lost write)
//! leaves the older valid slot winning on recovery, with nothing in the slots to say a newer one
//! was ever written. Recovery would then come back from the checkpoint before: a snapshot that
//! `create_snapshot` or `apply_snapshot` had reported durable gone, and, once the files behind
//! the newer checkpoint were removed, a log that starts at a segment or snapshot that no longer
//! exists.
//!
//! # The witness
//!
//! So after the slot's fsync has returned, the engine appends a *checkpoint witness* record to
//! the log (kind 9) holding the slot's payload (its sequence number and the whole checkpoint)
//! and fsyncs the log, before the call returns and before any file behind the checkpoint is
//! removed. The witness costs one `write` and one fsync per checkpoint, never one on the
//! per-`Ready` path. A witness in the log therefore proves that its checkpoint's slot write
//! was fsynced, and that everything the checkpoint refers to (its segments, its snapshot file)
//! was durable when it was written: the files are made durable before the slot is written, and
//! removed only after the witness is durable.
//!
//! # Recovery
//!
//! Recovery replays the log from the newest valid slot's checkpoint, noting the newest witness
//! (the highest sequence number) it meets, and compares:
//! - no witness, or an older one: the slot is the latest checkpoint (the witness of the slot
//!   may be missing: a crash came after the slot's fsync and before the witness was durable,
//!   while the call that wrote it had not returned). Logs written before witnesses existed
//!   have none, and open as they always did;
//! - a witness of the slot's sequence: it must hold the same checkpoint, or the state file and
//!   the log contradict each other ([`DiskError::Corrupt`] naming the state file);
//! - a newer witness: the state file lost that checkpoint's write. Recovery *rolls forward*:
//!   it replays the log again from the witnessed checkpoint, which is exactly what it would have
//!   done had the slot write landed (the files the checkpoint needs are all there, see above),
//!   rewrites the state file with it, and reports it in
//!   [`Recovery::rolled_forward`](super::Recovery::rolled_forward). If that replay fails, the
//!   storage is refused with an error naming the state file and the witness.
//!
//! A checkpoint older than the witnessed one may refer to files removed since (the segments
//! behind a compaction, the snapshot replaced), so the replay from it can fail before it ever
//! reaches the witness; likewise, if neither slot is valid there is nothing to replay from.
//! Then every segment in the directory is scanned for witnesses (each up to its first record
//! that fails its checksums), and the newest one, if it is newer than the slot, is rolled forward
//! as above. Only when none is does the original error stand.
//!
//! A witness always lies in the log of its checkpoint: it is written in the last segment, at or
//! after the segment the checkpoint starts the log at, and a segment goes only behind a later
//! checkpoint whose own witness is written after it. So the newest witness is never in a
//! segment that recovery removes as a leftover.
//!
//! # What it cannot tell
//!
//! A witness is a log record like any other, under the same torn-tail rules: a witness that a
//! crash tore before it was fsynced is cut with the tail (the call writing it had not returned,
//! so nothing it promised is lost). The one case left is the log's own (see the crate
//! documentation, "What recovery cannot tell"): the witness was fsynced, the power failed before
//! its sync mark reached the disk, the device lost a sector of it, **and** the slot write it
//! witnesses was lost too. Recovery then cuts the witness as a torn tail, reported in
//! [`Recovery::torn_tail`](super::Recovery::torn_tail), and comes back from the checkpoint
//! before.

use std::path::Path;

use super::open::{read_all, replay_from, FromCheckpoint};
use super::{Options, RolledForward};
use crate::error::DiskError;
use crate::files::{is_segment_header, segment_name, SEGMENT_HEADER_LEN};
use crate::io::Fs;
use crate::record::{self, RecordKind};
use crate::state_file::{decode_payload, PersistedState, SlotError, SLOT_LEN};

/// A checkpoint witness found in the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Witness {
    /// The sequence number of the slot it witnesses.
    pub sequence: u64,
    /// The checkpoint.
    pub state: PersistedState,
    /// Where the record is: (segment, byte offset).
    pub at: (u64, u64),
}

/// The newest checkpoint witness met so far.
#[derive(Debug, Default)]
pub(crate) struct NewestWitness(pub Option<Witness>);

impl NewestWitness {
    /// Notes the witness record with `payload` at `at`. A witness that does not decode, or one
    /// of the same sequence number as another but a different checkpoint, is corruption, in
    /// words.
    pub fn note(&mut self, payload: &[u8], at: (u64, u64)) -> Result<(), String> {
        let Ok((sequence, state)) = decode_payload(payload) else {
            return Err("a checkpoint witness that does not decode".to_string());
        };
        match &self.0 {
            Some(newest) if newest.sequence > sequence => Ok(()),
            Some(newest) if newest.sequence == sequence && newest.state != state => Err(format!(
                "two checkpoint witnesses of sequence {sequence} that differ (the other at \
                 segment {} byte {})",
                newest.at.0, newest.at.1
            )),
            Some(newest) if newest.sequence == sequence => Ok(()),
            _ => {
                self.0 = Some(Witness {
                    sequence,
                    state,
                    at,
                });
                Ok(())
            }
        }
    }
}

/// What recovery makes of the state file's newest valid slot and the log's newest witness.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The slot holds the latest checkpoint.
    Slot,
    /// The witness holds a newer checkpoint than the slot (or there is no valid slot): the
    /// state file lost its write.
    RollForward(Witness),
    /// The witness holds another checkpoint under the slot's sequence number.
    Contradiction(Witness),
}

/// Judges the newest valid slot (`None`: neither slot is valid) against the newest witness.
pub(crate) fn judge(slot: Option<(u64, &PersistedState)>, witness: Option<Witness>) -> Verdict {
    let Some(witness) = witness else {
        return Verdict::Slot;
    };
    match slot {
        Some((sequence, _)) if witness.sequence < sequence => Verdict::Slot,
        Some((sequence, state)) if witness.sequence == sequence => {
            if witness.state == *state {
                Verdict::Slot
            } else {
                Verdict::Contradiction(witness)
            }
        }
        _ => Verdict::RollForward(witness),
    }
}

/// The newest valid slot of the state file: (slot number, sequence, checkpoint), or the errors
/// of both slots.
pub(crate) type NewestSlot = Result<(usize, u64, PersistedState), (SlotError, SlotError)>;

/// The checkpoint recovery goes on from, and the log replayed from it.
pub(crate) struct Recovered {
    /// The slot that holds the checkpoint (the one to write next is the other).
    pub slot: usize,
    /// Its sequence number.
    pub sequence: u64,
    /// The checkpoint.
    pub state: PersistedState,
    /// The log, replayed from it.
    pub replayed: FromCheckpoint,
}

/// Recovers the checkpoint and the log of the storage in `dir`, whose state file `state_path`
/// has the newest valid slot `newest` and whose segments are `segment_ids`: from the slot, or
/// rolled forward from the log's newest witness (see the module documentation). A checkpoint
/// rolled forward is written back to the state file (fsynced) before this returns.
pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    state_path: &Path,
    segment_ids: &[u64],
    newest: NewestSlot,
    options: &Options,
) -> Result<Recovered, DiskError> {
    let first = newest
        .as_ref()
        .ok()
        .map(|(_, _, state)| replay_from(fs, dir, segment_ids, state, options));
    let witness = match &first {
        Some(Ok(replayed)) => replayed.witness.clone(),
        // The replay from the slot failed, or there is no valid slot: look for a witness in
        // every segment there is. This only looks for a way out: if a segment cannot be read,
        // the error of the replay from the slot stands.
        _ => scan(fs, dir, segment_ids, options.group_id).unwrap_or(None),
    };
    let slot = newest.as_ref().ok().map(|(_, seq, state)| (*seq, state));
    match judge(slot, witness) {
        Verdict::Slot => {
            let (slot, sequence, state) = newest.map_err(|(a, b)| {
                DiskError::corrupt(
                    state_path,
                    0,
                    format!("no valid slot in the state file (slot 0: {a:?}, slot 1: {b:?})"),
                )
            })?;
            let replayed = first.expect("there is a valid slot")?;
            Ok(Recovered {
                slot,
                sequence,
                state,
                replayed,
            })
        }
        Verdict::Contradiction(witness) => {
            let (slot, sequence, _) = newest.expect("a contradiction needs a valid slot");
            Err(DiskError::corrupt(
                state_path,
                (slot * SLOT_LEN) as u64,
                format!(
                    "slot {slot} holds checkpoint {sequence}, but the log's witness of \
                     checkpoint {sequence} ({}) holds another",
                    describe_at(dir, witness.at)
                ),
            ))
        }
        Verdict::RollForward(witness) => {
            let held = match &newest {
                Ok((slot, sequence, _)) => format!("slot {slot} holds checkpoint {sequence}"),
                Err(_) => "neither slot is valid".to_string(),
            };
            let lost = |why: String| {
                let offset = newest
                    .as_ref()
                    .map_or(0, |(slot, ..)| (slot * SLOT_LEN) as u64);
                DiskError::corrupt(
                    state_path,
                    offset,
                    format!(
                        "{held}, but the log witnesses checkpoint {} ({}): the state file lost \
                         its write, and {why}",
                        witness.sequence,
                        describe_at(dir, witness.at)
                    ),
                )
            };
            let mut replayed =
                replay_from(fs, dir, segment_ids, &witness.state, options).map_err(|e| {
                    lost(format!(
                        "recovery from the witnessed checkpoint failed: {e}"
                    ))
                })?;
            let newest_again = replayed.witness.as_ref().map(|w| (w.sequence, &w.state));
            if newest_again != Some((witness.sequence, &witness.state)) {
                return Err(lost(
                    "the newest witness of the log replayed from it is another".to_string(),
                ));
            }
            let slot = match &newest {
                Ok((slot, ..)) => 1 - slot,
                Err(_) => 0,
            };
            let repair = rewrite_slot(fs, state_path, slot, witness.sequence, &witness.state);
            repair.map_err(|e| lost(format!("rewriting the state file failed: {e}")))?;
            replayed.recovery.rolled_forward = Some(RolledForward {
                state_file: state_path.to_path_buf(),
                slot_sequence: newest.as_ref().ok().map(|(_, sequence, _)| *sequence),
                witnessed_sequence: witness.sequence,
                witness_path: dir.join(segment_name(witness.at.0)),
                witness_offset: witness.at.1,
            });
            Ok(Recovered {
                slot,
                sequence: witness.sequence,
                state: witness.state,
                replayed,
            })
        }
    }
}

/// "segment S byte O", naming the segment file.
fn describe_at(dir: &Path, at: (u64, u64)) -> String {
    format!("{} byte {}", dir.join(segment_name(at.0)).display(), at.1)
}

/// The newest witness of group `group` in the segments `segment_ids` of `dir`, each read up to
/// its first record that fails its checksums.
fn scan(
    fs: &dyn Fs,
    dir: &Path,
    segment_ids: &[u64],
    group: u64,
) -> Result<Option<Witness>, DiskError> {
    let mut newest = NewestWitness::default();
    for &id in segment_ids {
        let path = dir.join(segment_name(id));
        let file = fs
            .open(&path)
            .map_err(|e| DiskError::io("open", &path, e))?;
        let bytes = read_all(&*file, &path)?;
        if !is_segment_header(&bytes, id) {
            continue;
        }
        let mut offset = SEGMENT_HEADER_LEN;
        while let Ok(rec) = record::decode(&bytes[offset as usize..], id, offset) {
            if rec.kind == RecordKind::CheckpointWitness && rec.group == group {
                // A witness of a sequence met before with another checkpoint: the replay from
                // the newest will judge the log; the scan only looks for candidates.
                let _ = newest.note(rec.payload, (id, offset));
            }
            offset += rec.total_len as u64;
        }
    }
    Ok(newest.0)
}

/// Writes checkpoint `state` with `sequence` to slot `slot` of the state file at `path`, and
/// fsyncs it.
fn rewrite_slot(
    fs: &dyn Fs,
    path: &Path,
    slot: usize,
    sequence: u64,
    state: &PersistedState,
) -> Result<(), DiskError> {
    let payload = crate::state_file::encode_payload(state, sequence);
    let Some(bytes) = crate::state_file::slot_of_payload(&payload) else {
        return Err(DiskError::TooLarge(
            "the witnessed checkpoint does not fit in a state slot".to_string(),
        ));
    };
    let file = fs.open(path).map_err(|e| DiskError::io("open", path, e))?;
    file.write_at((slot * SLOT_LEN) as u64, &bytes)
        .map_err(|e| DiskError::io("write", path, e))?;
    file.sync().map_err(|e| DiskError::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::eraftpb::HardState;

    fn checkpoint(commit: u64) -> PersistedState {
        PersistedState {
            hard_state: HardState {
                term: 2,
                vote: 1,
                commit,
            },
            first_segment: 1,
            synced: (1, 24),
            ..Default::default()
        }
    }

    fn witness(sequence: u64, commit: u64) -> Witness {
        Witness {
            sequence,
            state: checkpoint(commit),
            at: (3, 100),
        }
    }

    #[test]
    fn a_slot_without_a_newer_witness_stands() {
        let slot = checkpoint(5);
        assert_eq!(judge(Some((4, &slot)), None), Verdict::Slot);
        assert_eq!(judge(Some((4, &slot)), Some(witness(3, 1))), Verdict::Slot);
        assert_eq!(judge(Some((4, &slot)), Some(witness(4, 5))), Verdict::Slot);
    }

    #[test]
    fn a_newer_witness_rolls_the_checkpoint_forward() {
        let slot = checkpoint(5);
        assert_eq!(
            judge(Some((4, &slot)), Some(witness(5, 9))),
            Verdict::RollForward(witness(5, 9))
        );
        assert_eq!(
            judge(None, Some(witness(2, 9))),
            Verdict::RollForward(witness(2, 9))
        );
        assert_eq!(judge(None, None), Verdict::Slot);
    }

    #[test]
    fn a_witness_of_the_slots_sequence_with_another_checkpoint_is_a_contradiction() {
        let slot = checkpoint(5);
        assert_eq!(
            judge(Some((4, &slot)), Some(witness(4, 6))),
            Verdict::Contradiction(witness(4, 6))
        );
    }

    #[test]
    fn the_newest_witness_is_kept_and_two_that_differ_under_one_sequence_are_corruption() {
        let payload =
            |sequence, commit| crate::state_file::encode_payload(&checkpoint(commit), sequence);
        let mut newest = NewestWitness::default();
        newest.note(&payload(3, 1), (1, 24)).unwrap();
        newest.note(&payload(5, 2), (2, 24)).unwrap();
        newest.note(&payload(4, 3), (2, 500)).unwrap();
        assert_eq!(
            newest.0.as_ref().map(|w| (w.sequence, w.at)),
            Some((5, (2, 24)))
        );
        newest.note(&payload(5, 2), (2, 900)).unwrap();
        assert!(newest.note(&payload(5, 7), (3, 24)).is_err());
        assert!(newest.note(b"short", (3, 24)).is_err());
    }
}
