//! Opening a storage: creating a new one, or recovering an existing one.
//!
//! Recovery reads the checkpoint (the state file's newer valid slot, or a newer one the log
//! witnesses, see `witness`), checks the snapshot file it
//! names, and replays the segments from the checkpoint's first segment on: entries, and the hard
//! state and membership records written after the checkpoint (the last one wins). It accepts
//! exactly one kind of damage, a torn tail: damage of a shape a crash leaves (see `tail`) in the
//! last segment after its last proof of sync (the last sync mark, or the checkpoint's position),
//! which it cuts off and reports in [`Recovery::torn_tail`]. Everything else is an error naming
//! the file and byte offset: a bad record anywhere else or of another shape, a missing segment or
//! snapshot, a gap in the indexes, a log that ends before the checkpoint's position, a commit
//! index beyond the entries before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::eraftpb::SnapshotMetadata;

use super::replay::{
    content_len, has_sync_mark_after, replay_segment, GroupReplay, RecordSink, ReplayState,
};
use super::segments::{Segment, SegmentLog};
use super::tail::is_torn_sync_mark;
use super::witness::{recover, NewestWitness, Recovered, Witness};
use super::{DiskStorageCore, Options, Recovery, TornTail};
use crate::error::DiskError;
use crate::files::{
    decode_snapshot, is_snapshot_name, parse_segment_name, segment_name, snapshot_name,
    SEGMENT_HEADER_LEN, STATE_FILE, STATE_TMP, TMP_SUFFIX,
};
use crate::io::{Fs, FsFile};
use crate::log_index::LogIndex;
use crate::state_file::{encode_slot, newest_slot, PersistedState, SLOT_LEN};

impl DiskStorageCore {
    /// Opens (creating or recovering) the storage in `dir`.
    pub(super) fn open(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        options: Options,
    ) -> Result<DiskStorageCore, DiskError> {
        fs.create_dir_all(&dir)
            .map_err(|e| DiskError::io("create directory", &dir, e))?;
        let mut names = list(&*fs, &dir)?;
        let mut segment_ids: Vec<u64> =
            names.iter().filter_map(|n| parse_segment_name(n)).collect();
        let state_path = dir.join(STATE_FILE);
        let mut recovery = Recovery::default();
        if !names.iter().any(|n| n == STATE_FILE) {
            // A storage is made by writing its first segment, then the state file under a
            // temporary name that is renamed into place: without the state file, it was never
            // made, unless some segment holds records.
            for &id in &segment_ids {
                let path = dir.join(segment_name(id));
                let len = open_file(&*fs, &path)?
                    .len()
                    .map_err(|e| DiskError::io("stat", &path, e))?;
                if len > SEGMENT_HEADER_LEN {
                    return Err(DiskError::corrupt(
                        &state_path,
                        0,
                        "the state file is missing but the log holds records",
                    ));
                }
            }
            for &id in &segment_ids {
                let path = dir.join(segment_name(id));
                fs.remove(&path)
                    .map_err(|e| DiskError::io("remove", &path, e))?;
            }
            create_new(&*fs, &dir)?;
            recovery.created = true;
            names = list(&*fs, &dir)?;
            segment_ids = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        }
        let state_file = open_file(&*fs, &state_path)?;
        let contents = read_all(&*state_file, &state_path)?;
        // What the page cache holds need not be durable (after a failed fsync, say): make it so
        // before trusting it.
        state_file
            .sync()
            .map_err(|e| DiskError::io("fsync", &state_path, e))?;
        let Recovered {
            slot,
            sequence,
            state,
            replayed,
        } = recover(
            &*fs,
            &dir,
            &state_path,
            &segment_ids,
            newest_slot(&contents),
            &options,
        )?;
        let FromCheckpoint {
            snapshot,
            segments,
            group,
            recovery: replay_recovery,
            witness: _,
        } = replayed;
        let GroupReplay {
            log,
            hard_state,
            conf_state,
        } = group;
        segments.seal()?;
        let segments = segments.segments;
        recovery.torn_tail = replay_recovery.torn_tail;
        recovery.torn_sync_mark = replay_recovery.torn_sync_mark;
        recovery.rolled_forward = replay_recovery.rolled_forward;
        recovery.segments = segments.len();
        recovery.entries = log.last_index() - log.start().0;
        recovery.removed = remove_leftovers(&*fs, &dir, &names, &state)?;
        let seg = SegmentLog::recovered(fs.clone(), dir.clone(), segments, options.segment_bytes);
        Ok(DiskStorageCore {
            fs,
            dir,
            options,
            state_file,
            state_slot: slot,
            state_sequence: sequence,
            logged_hard_state: hard_state,
            logged_conf_state: conf_state.clone(),
            hard_state,
            conf_state,
            first_segment: state.first_segment,
            log,
            seg,
            snapshot,
            recovery,
        })
    }
}

/// What the replay of the log from a checkpoint rebuilt.
pub(crate) struct FromCheckpoint {
    /// The checkpoint's snapshot's metadata (index 0: none), from its file.
    pub snapshot: SnapshotMetadata,
    /// The segments, open, as replay found them (not yet sealed).
    pub segments: OpenedSegments,
    /// The group's log, hard state and membership.
    pub group: GroupReplay,
    /// The torn tail or sync mark the replay cut, if any.
    pub recovery: Recovery,
    /// The newest checkpoint witness in the log replayed.
    pub witness: Option<Witness>,
}

/// Checks the snapshot file that checkpoint `state` names and replays the log of `dir` (its
/// segments `segment_ids`) from it: the rules of the module documentation. Changes no file (a
/// torn tail found is cut when the segments are sealed), so that recovery may replay again from
/// a newer checkpoint the log witnesses (see `witness`). Fails naming the file and offset.
pub(crate) fn replay_from(
    fs: &dyn Fs,
    dir: &Path,
    segment_ids: &[u64],
    state: &PersistedState,
    options: &Options,
) -> Result<FromCheckpoint, DiskError> {
    let snapshot = read_snapshot_metadata(fs, dir, state.snapshot_index)?;
    let mut replay = ReplayState {
        group: GroupReplay {
            log: LogIndex::new(state.log_start.0, state.log_start.1, options.cache_bytes),
            hard_state: state.hard_state,
            conf_state: state.conf_state.clone(),
        },
        checkpoint_at: state.synced,
        first_segment: state.first_segment,
        group_id: options.group_id,
        witness: NewestWitness::default(),
    };
    let mut recovery = Recovery::default();
    let segments = open_segments(
        fs,
        dir,
        segment_ids,
        state.first_segment,
        state.synced,
        &mut replay,
        &mut recovery,
    )?;
    let group = replay.group;
    if group.hard_state.commit > group.log.last_index() {
        let last = (segments.segments.values().next_back()).expect("at least one segment");
        return Err(DiskError::corrupt(
            &last.path,
            last.len,
            format!(
                "the log ends at index {} but the hard state's commit index is {}",
                group.log.last_index(),
                group.hard_state.commit
            ),
        ));
    }
    Ok(FromCheckpoint {
        snapshot,
        segments,
        group,
        recovery,
        witness: replay.witness.0,
    })
}

/// The segments of a log as replay found them, not yet changed on disk (see
/// [`OpenedSegments::seal`]).
pub(crate) struct OpenedSegments {
    /// The open segments, the last one ending where its valid records do.
    pub segments: BTreeMap<u64, Segment>,
    /// Where the torn tail of the last segment is to be cut, if it has one.
    cut: Option<u64>,
}

impl OpenedSegments {
    /// Makes the log on disk what replay found: cuts the torn tail of the last segment, if
    /// any (rewriting its header if the cut reached it), and fsyncs the last segment.
    pub fn seal(&self) -> Result<(), DiskError> {
        let Some(last) = self.segments.values().next_back() else {
            return Ok(());
        };
        let path = &last.path;
        if let Some(cut) = self.cut {
            last.file
                .truncate(cut)
                .map_err(|e| DiskError::io("truncate", path, e))?;
            if cut == 0 {
                let id = *self.segments.keys().next_back().expect("a last segment");
                last.file
                    .write_at(0, &crate::files::segment_header(id))
                    .map_err(|e| DiskError::io("write", path, e))?;
            }
        }
        last.file
            .sync()
            .map_err(|e| DiskError::io("fsync", path, e))
    }
}

/// Opens and replays the segments of a log from `first_segment` on into `sink`, where the
/// checkpoint records the log as synced up to `synced` (segment, offset): the rules of the
/// module documentation, shared by the single-group engine and the multi-group log. Finds a
/// torn tail (recorded in `recovery`, cut by [`OpenedSegments::seal`]: nothing on disk changes
/// here); any other damage is an error naming the file and offset.
pub(crate) fn open_segments(
    fs: &dyn Fs,
    dir: &std::path::Path,
    segment_ids: &[u64],
    first_segment: u64,
    synced: (u64, u64),
    sink: &mut impl RecordSink,
    recovery: &mut Recovery,
) -> Result<OpenedSegments, DiskError> {
    let mut segments = BTreeMap::new();
    let mut cut_at = None;
    let live: Vec<u64> = segment_ids
        .iter()
        .copied()
        .filter(|id| *id >= first_segment)
        .collect();
    for (i, expected) in (first_segment..).take(live.len().max(1)).enumerate() {
        if live.get(i) != Some(&expected) {
            return Err(DiskError::corrupt(
                &dir.join(segment_name(expected)),
                0,
                "segment missing from the log",
            ));
        }
    }
    let last_id = *live.last().expect("checked above: at least one");
    if synced.0 > last_id {
        return Err(DiskError::corrupt(
            &dir.join(segment_name(synced.0)),
            0,
            "the checkpoint records a synced position in a segment that is missing",
        ));
    }
    for &id in &live {
        let path = dir.join(segment_name(id));
        let file = open_file(fs, &path)?;
        let bytes = read_all(&*file, &path)?;
        let is_last = id == last_id;
        let replayed = replay_segment(&path, id, &bytes, sink)?;
        let mut synced_floor = replayed.synced_end;
        if synced.0 == id {
            synced_floor = synced_floor.max(synced.1);
        }
        // Zeros after the records are space written ahead, not part of the log (`replay`).
        let mut len = replayed.end;
        let mut allocated = bytes.len() as u64;
        if let Some(damage) = replayed.damage {
            let offset = damage.offset;
            if !is_last {
                let why = format!("{} (in a segment that was closed)", damage.reason);
                return Err(DiskError::corrupt(&path, offset, why));
            }
            if offset < synced_floor || has_sync_mark_after(&bytes, id, offset) {
                let why = format!("{} (before a proof of sync)", damage.reason);
                return Err(DiskError::corrupt(&path, offset, why));
            }
            let Some(shape) = damage.shape else {
                let why = format!(
                    "{} (no crash leaves this shape: a flipped bit or a misplaced write)",
                    damage.reason
                );
                return Err(DiskError::corrupt(&path, offset, why));
            };
            cut_at = Some(if offset < SEGMENT_HEADER_LEN {
                0
            } else {
                offset
            });
            if is_torn_sync_mark(&bytes, id, offset) {
                recovery.torn_sync_mark = true;
            } else {
                let content_end = (content_len(&bytes) as u64).max(offset);
                recovery.torn_tail = Some(TornTail {
                    path: path.clone(),
                    offset,
                    bytes_dropped: content_end - offset,
                    shape,
                });
            }
            len = replayed.end.max(SEGMENT_HEADER_LEN);
            allocated = len;
        } else if len < synced_floor {
            return Err(DiskError::corrupt(
                &path,
                len,
                format!("the segment ends before its synced position {synced_floor}"),
            ));
        }
        segments.insert(
            id,
            Segment {
                path,
                file: file.into(),
                len,
                allocated,
            },
        );
    }
    Ok(OpenedSegments {
        segments,
        cut: cut_at,
    })
}

/// Makes a new storage in `dir`: segment 1, then the state file (via a temporary name).
fn create_new(fs: &dyn Fs, dir: &std::path::Path) -> Result<(), DiskError> {
    let segment_path = dir.join(segment_name(1));
    let segment = fs
        .create(&segment_path)
        .map_err(|e| DiskError::io("create", &segment_path, e))?;
    segment
        .write_at(0, &crate::files::segment_header(1))
        .map_err(|e| DiskError::io("write", &segment_path, e))?;
    segment
        .sync()
        .map_err(|e| DiskError::io("fsync", &segment_path, e))?;
    let initial = PersistedState {
        first_segment: 1,
        synced: (1, SEGMENT_HEADER_LEN),
        ..Default::default()
    };
    let mut contents = encode_slot(&initial, 1).expect("an empty state fits a slot");
    contents.resize(2 * SLOT_LEN, 0);
    let tmp = dir.join(STATE_TMP);
    let file = fs
        .create(&tmp)
        .map_err(|e| DiskError::io("create", &tmp, e))?;
    file.write_at(0, &contents)
        .map_err(|e| DiskError::io("write", &tmp, e))?;
    file.sync().map_err(|e| DiskError::io("fsync", &tmp, e))?;
    let path = dir.join(STATE_FILE);
    fs.rename(&tmp, &path)
        .map_err(|e| DiskError::io("rename", &tmp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| DiskError::io("fsync directory", dir, e))
}

pub(crate) fn list(fs: &dyn Fs, dir: &std::path::Path) -> Result<Vec<String>, DiskError> {
    fs.list(dir).map_err(|e| DiskError::io("list", dir, e))
}

pub(crate) fn open_file(fs: &dyn Fs, path: &std::path::Path) -> Result<Box<dyn FsFile>, DiskError> {
    fs.open(path).map_err(|e| DiskError::io("open", path, e))
}

pub(crate) fn read_all(file: &dyn FsFile, path: &std::path::Path) -> Result<Vec<u8>, DiskError> {
    let len = file.len().map_err(|e| DiskError::io("stat", path, e))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_at(0, &mut bytes)
        .map_err(|e| DiskError::io("read", path, e))?;
    Ok(bytes)
}

/// The metadata of the snapshot at `index` (0: none), from its file, checksum verified.
fn read_snapshot_metadata(
    fs: &dyn Fs,
    dir: &std::path::Path,
    index: u64,
) -> Result<SnapshotMetadata, DiskError> {
    if index == 0 {
        return Ok(SnapshotMetadata::default());
    }
    let path = dir.join(snapshot_name(index));
    let file = fs.open(&path).map_err(|e| {
        DiskError::corrupt(
            &path,
            0,
            format!("the state file's snapshot is missing: {e}"),
        )
    })?;
    let snapshot = decode_snapshot(&path, &read_all(&*file, &path)?)?;
    match snapshot.metadata {
        Some(meta) if meta.index == index => Ok(meta),
        _ => Err(DiskError::corrupt(
            &path,
            0,
            format!("the snapshot file does not hold the snapshot at index {index}"),
        )),
    }
}

/// Removes what a crash may leave behind: segments before the first one, snapshot files other
/// than the current one, temporary files. Returns their names.
fn remove_leftovers(
    fs: &dyn Fs,
    dir: &std::path::Path,
    names: &[String],
    state: &PersistedState,
) -> Result<Vec<String>, DiskError> {
    let current_snapshot = snapshot_name(state.snapshot_index);
    let mut removed = Vec::new();
    for name in names {
        let stale = match parse_segment_name(name) {
            Some(id) => id < state.first_segment,
            None => {
                name.ends_with(TMP_SUFFIX) || (is_snapshot_name(name) && *name != current_snapshot)
            }
        };
        if stale {
            let path = dir.join(name);
            fs.remove(&path)
                .map_err(|e| DiskError::io("remove", &path, e))?;
            removed.push(name.clone());
        }
    }
    Ok(removed)
}
