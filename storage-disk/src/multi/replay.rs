//! Replaying a multi-group log: records of many groups, interleaved, dispatched by their group id
//! to each group's [`GroupReplay`] (the single-group rules: entries replace the suffix from
//! their index on, a hard state never commits past the entries before it).
//!
//! Before the checkpoint's position, the checkpoint holds every group's state: only entry
//! records are replayed there, and of each group only those from the record the checkpoint
//! names on: its first entry's record, or an earlier record of the same piece (the records
//! between are of entries behind the log start, which replay skips; see
//! `LogIndex::first_record`). Earlier ones are stale: replaced, compacted, or of a removed
//! group. From that record on, a group's entries replay exactly as they were written, without
//! gaps.
//! After the checkpoint's position every record applies in order, and a record of a group that
//! does not exist at that point is corruption.

use std::collections::BTreeMap;

use raft_core::eraftpb::SnapshotMetadata;

use crate::engine::replay::{GroupReplay, RecordSink};
use crate::log_index::{LogIndex, RecordAt};
use crate::record::{Decoded, RecordKind};

use super::shape::GroupShape;

/// One group as replay rebuilds it.
pub struct ReplayedGroup {
    /// Its entries, hard state and membership.
    pub state: GroupReplay,
    /// Its latest snapshot.
    pub snapshot: SnapshotMetadata,
    /// Where its entry records start to count, as the checkpoint says: its first live entry's
    /// record or an earlier one of the same piece (`None` after the checkpoint's position, or
    /// if it had no entry).
    pub first_entry_at: Option<(u64, u64)>,
}

impl ReplayedGroup {
    /// A group created empty.
    pub fn new(cache_bytes: usize) -> ReplayedGroup {
        ReplayedGroup {
            state: GroupReplay {
                log: LogIndex::new(0, 0, cache_bytes),
                hard_state: Default::default(),
                conf_state: Default::default(),
            },
            snapshot: SnapshotMetadata::default(),
            first_entry_at: None,
        }
    }
}

/// What the replay of a multi-group log has rebuilt so far.
pub struct MultiReplay {
    /// Every group that exists at this point of the log.
    pub groups: BTreeMap<u64, ReplayedGroup>,
    /// The position (segment, offset) the checkpoint was written at.
    pub checkpoint_at: (u64, u64),
    /// The cache budget of a group created during replay.
    pub cache_bytes: usize,
}

impl RecordSink for MultiReplay {
    fn record(&mut self, segment: u64, offset: u64, rec: &Decoded<'_>) -> Result<(), String> {
        let record = RecordAt {
            segment,
            offset,
            len: rec.total_len as u64,
        };
        if (segment, offset) < self.checkpoint_at {
            if !matches!(rec.kind, RecordKind::Entry | RecordKind::EntryCopy) {
                return Ok(());
            }
            let Some(group) = self.groups.get_mut(&rec.group) else {
                return Ok(());
            };
            return match group.first_entry_at {
                Some(first) if (segment, offset) >= first => {
                    if rec.kind == RecordKind::Entry {
                        group.state.entry(rec.payload, record, false)
                    } else {
                        group.state.entry_copy(rec.payload, record)
                    }
                }
                _ => Ok(()),
            };
        }
        match rec.kind {
            RecordKind::GroupCreated => {
                if self.groups.contains_key(&rec.group) {
                    return Err(format!("group {} created while it exists", rec.group));
                }
                self.groups
                    .insert(rec.group, ReplayedGroup::new(self.cache_bytes));
                Ok(())
            }
            RecordKind::GroupRemoved => match self.groups.remove(&rec.group) {
                Some(_) => Ok(()),
                None => Err(format!("group {} removed but it does not exist", rec.group)),
            },
            RecordKind::SyncMark => Ok(()),
            RecordKind::CheckpointWitness => Err(
                "a checkpoint witness (single-group logs only) in a multi-group log".to_string(),
            ),
            kind => {
                let Some(group) = self.groups.get_mut(&rec.group) else {
                    return Err(format!(
                        "a {kind:?} record of group {}, which does not exist",
                        rec.group
                    ));
                };
                match kind {
                    RecordKind::Entry => group.state.entry(rec.payload, record, false),
                    RecordKind::EntryCopy => group.state.entry_copy(rec.payload, record),
                    RecordKind::HardState => group.state.hard_state(rec.payload),
                    RecordKind::ConfState => group.state.conf_state(rec.payload),
                    _ => {
                        let shape = GroupShape::decode(rec.payload)?;
                        shape.replay(&mut group.state.log)?;
                        group.snapshot = shape.snapshot;
                        Ok(())
                    }
                }
            }
        }
    }
}
