//! Opening a storage: creating a new one, or recovering an existing one.
//!
//! Recovery reads the state file (the newer valid slot), checks the snapshot file it names, and
//! replays the segments from the state's first segment on. It accepts exactly one kind of damage:
//! a torn tail, that is damage in the last segment after its last known synced position (the
//! last sync mark, or the position the state file recorded), which it cuts off and reports.
//! Everything else is an error naming the file and byte offset: a bad record anywhere else, a
//! missing segment or snapshot, a gap in the indexes, a log that ends before a position or a
//! commit index the state file recorded. The storage never comes back with a silently shorter
//! log.

use std::path::PathBuf;
use std::sync::Arc;

use prost::Message as _;
use raft_core::eraftpb::{Entry, SnapshotMetadata};

use super::{DiskStorageCore, Options, Recovery, Segment, TornTail};
use crate::error::DiskError;
use crate::files::{
    decode_snapshot, is_segment_header, is_snapshot_name, parse_segment_name, segment_name,
    snapshot_name, SEGMENT_HEADER_LEN, STATE_FILE, STATE_TMP, TMP_SUFFIX,
};
use crate::io::{Fs, FsFile};
use crate::log_index::{Location, LogIndex};
use crate::record::{self, DecodeError, RecordKind, HEADER_LEN};
use crate::state_file::{encode_slot, newest_slot, PersistedState, SLOT_LEN};

/// What the replay of one segment found.
struct Replayed {
    /// Where the valid records end.
    end: u64,
    /// The first damaged byte, if the records stop before the end of the file.
    damage: Option<(u64, &'static str)>,
    /// The end of the last sync mark: every byte before it was synced.
    synced_end: u64,
}

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
        let (slot, sequence, state) = newest_slot(&contents).map_err(|(a, b)| {
            DiskError::corrupt(
                &state_path,
                0,
                format!("no valid slot in the state file (slot 0: {a:?}, slot 1: {b:?})"),
            )
        })?;
        // What the page cache holds need not be durable (after a failed fsync, say): make it so
        // before trusting it.
        state_file
            .sync()
            .map_err(|e| DiskError::io("fsync", &state_path, e))?;
        let snapshot = read_snapshot_metadata(&*fs, &dir, state.snapshot_index)?;

        let mut log = LogIndex::new(state.log_start.0, state.log_start.1, options.cache_bytes);
        let mut segments = std::collections::BTreeMap::new();
        let live: Vec<u64> = segment_ids
            .iter()
            .copied()
            .filter(|id| *id >= state.first_segment)
            .collect();
        for (i, expected) in (state.first_segment..).take(live.len().max(1)).enumerate() {
            if live.get(i) != Some(&expected) {
                return Err(DiskError::corrupt(
                    &dir.join(segment_name(expected)),
                    0,
                    "segment missing from the log",
                ));
            }
        }
        let last_id = *live.last().expect("checked above: at least one");
        if state.synced.0 > last_id {
            return Err(DiskError::corrupt(
                &dir.join(segment_name(state.synced.0)),
                0,
                "the state file records a synced position in a segment that is missing",
            ));
        }
        for &id in &live {
            let path = dir.join(segment_name(id));
            let file = open_file(&*fs, &path)?;
            let bytes = read_all(&*file, &path)?;
            let is_last = id == last_id;
            let replayed = replay_segment(&path, id, &bytes, &options, &mut log)?;
            let mut synced_floor = replayed.synced_end;
            if state.synced.0 == id {
                synced_floor = synced_floor.max(state.synced.1);
            }
            let mut len = bytes.len() as u64;
            if let Some((offset, why)) = replayed.damage {
                if !is_last || offset < synced_floor || has_sync_mark_after(&bytes, id, offset) {
                    return Err(DiskError::corrupt(&path, offset, why));
                }
                let cut = if offset < SEGMENT_HEADER_LEN {
                    0
                } else {
                    offset
                };
                file.truncate(cut)
                    .map_err(|e| DiskError::io("truncate", &path, e))?;
                if cut == 0 {
                    file.write_at(0, &crate::files::segment_header(id))
                        .map_err(|e| DiskError::io("write", &path, e))?;
                }
                recovery.torn_tail = Some(TornTail {
                    path: path.clone(),
                    offset,
                    bytes_dropped: len - offset,
                });
                len = replayed.end.max(SEGMENT_HEADER_LEN);
            } else if len < synced_floor {
                return Err(DiskError::corrupt(
                    &path,
                    len,
                    format!("the segment ends before its synced position {synced_floor}"),
                ));
            }
            if is_last {
                file.sync().map_err(|e| DiskError::io("fsync", &path, e))?;
            }
            segments.insert(id, Segment { path, file, len });
        }
        let hard_state = state.hard_state;
        if hard_state.commit > log.last_index() {
            let last = &segments[&last_id];
            return Err(DiskError::corrupt(
                &last.path,
                last.len,
                format!(
                    "the log ends at index {} but the state file's commit index is {}",
                    log.last_index(),
                    hard_state.commit
                ),
            ));
        }
        recovery.segments = segments.len();
        recovery.entries = log.last_index() - log.start().0;
        recovery.removed = remove_leftovers(&*fs, &dir, &names, &state)?;
        Ok(DiskStorageCore {
            fs,
            dir,
            options,
            state_file,
            state_slot: slot,
            state_sequence: sequence,
            hard_state,
            conf_state: state.conf_state.clone(),
            first_segment: state.first_segment,
            persisted: state,
            log,
            segments,
            needs_sync: false,
            mark_pending: true,
            snapshot,
            failed: None,
            recovery,
        })
    }
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

fn list(fs: &dyn Fs, dir: &std::path::Path) -> Result<Vec<String>, DiskError> {
    fs.list(dir).map_err(|e| DiskError::io("list", dir, e))
}

fn open_file(fs: &dyn Fs, path: &std::path::Path) -> Result<Box<dyn FsFile>, DiskError> {
    fs.open(path).map_err(|e| DiskError::io("open", path, e))
}

fn read_all(file: &dyn FsFile, path: &std::path::Path) -> Result<Vec<u8>, DiskError> {
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

/// Replays the records of segment `id` into `log`.
fn replay_segment(
    path: &std::path::Path,
    id: u64,
    bytes: &[u8],
    options: &Options,
    log: &mut LogIndex,
) -> Result<Replayed, DiskError> {
    if !is_segment_header(bytes, id) {
        return Ok(Replayed {
            end: 0,
            damage: Some((0, "bad segment header")),
            synced_end: 0,
        });
    }
    let mut offset = SEGMENT_HEADER_LEN;
    let mut synced_end = SEGMENT_HEADER_LEN;
    while (offset as usize) < bytes.len() {
        let rec = match record::decode(&bytes[offset as usize..], id, offset) {
            Ok(rec) => rec,
            Err(DecodeError::Truncated) => {
                return Ok(Replayed {
                    end: offset,
                    damage: Some((offset, "partial record at the end of the segment")),
                    synced_end,
                })
            }
            Err(DecodeError::Invalid(why)) => {
                return Ok(Replayed {
                    end: offset,
                    damage: Some((offset, why)),
                    synced_end,
                })
            }
        };
        let total = rec.total_len as u64;
        match rec.kind {
            RecordKind::SyncMark => synced_end = offset + total,
            RecordKind::Entry if rec.group != options.group_id => {}
            RecordKind::Entry => {
                let entry = Entry::decode(rec.payload).map_err(|e| {
                    DiskError::corrupt(path, offset, format!("entry does not decode: {e}"))
                })?;
                let index = entry.index;
                if index > log.start().0 {
                    if index > log.last_index() + 1 {
                        return Err(DiskError::corrupt(
                            path,
                            offset,
                            format!(
                                "gap in the log: entry {index} follows entry {}",
                                log.last_index()
                            ),
                        ));
                    }
                    log.truncate_after(index - 1);
                    let location = Location {
                        term: entry.term,
                        offset,
                        segment: id as u32,
                        len: total as u32,
                    };
                    log.push(location, entry);
                }
            }
        }
        offset += total;
    }
    Ok(Replayed {
        end: offset,
        damage: None,
        synced_end,
    })
}

/// Whether a valid sync mark lies anywhere after `damage` in a segment: then the damaged bytes
/// were synced before it was written, and the damage is corruption, not a torn write.
fn has_sync_mark_after(bytes: &[u8], id: u64, damage: u64) -> bool {
    let start = (damage as usize + 1).max(SEGMENT_HEADER_LEN as usize);
    (start..bytes.len().saturating_sub(HEADER_LEN - 1)).any(|at| {
        // Cheap filter first: a sync mark has length 0 and kind 2.
        bytes[at..at + 4] == [0; 4]
            && bytes[at + 8..at + 12] == 2u32.to_le_bytes()
            && matches!(
                record::decode(&bytes[at..], id, at as u64),
                Ok(rec) if rec.kind == RecordKind::SyncMark
            )
    })
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
