//! Opening a multi-group log: creating a new one, or recovering every group from the checkpoint
//! and the segments after it, with the single-group engine's segment rules (`open_segments`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checkpoint::{self, Checkpoint};
use super::replay::{MultiReplay, ReplayedGroup};
use super::{Group, MultiLogCore, MultiOptions};
use crate::engine::open::{list, open_file, open_segments, read_all};
use crate::engine::replay::GroupReplay;
use crate::engine::segments::{create_segment, SegmentLog};
use crate::engine::snapshots::write_file_durably;
use crate::engine::Recovery;
use crate::error::DiskError;
use crate::files::{
    group_snapshot_name, is_snapshot_name, parse_segment_name, segment_name, CHECKPOINT_FILE,
    SEGMENT_HEADER_LEN, STATE_FILE, TMP_SUFFIX,
};
use crate::io::Fs;
use crate::log_index::LogIndex;

impl MultiLogCore {
    /// Opens (creating or recovering) the log in `dir`.
    pub(super) fn open(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        options: MultiOptions,
    ) -> Result<MultiLogCore, DiskError> {
        fs.create_dir_all(&dir)
            .map_err(|e| DiskError::io("create directory", &dir, e))?;
        let mut names = list(&*fs, &dir)?;
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let mut recovery = Recovery::default();
        if names.iter().any(|n| n == STATE_FILE) {
            return Err(DiskError::corrupt(
                &dir.join(STATE_FILE),
                0,
                "a single-group storage's state file: this directory is not a multi-group log",
            ));
        }
        if !names.iter().any(|n| n == CHECKPOINT_FILE) {
            // A log is made by writing its first segment, then the checkpoint under a
            // temporary name that is renamed into place: without the checkpoint, it was never
            // made, unless some segment holds records.
            for id in names.iter().filter_map(|n| parse_segment_name(n)) {
                let path = dir.join(segment_name(id));
                let len = open_file(&*fs, &path)?
                    .len()
                    .map_err(|e| DiskError::io("stat", &path, e))?;
                if len > SEGMENT_HEADER_LEN {
                    return Err(DiskError::corrupt(
                        &checkpoint_path,
                        0,
                        "the checkpoint is missing but the log holds records",
                    ));
                }
                fs.remove(&path)
                    .map_err(|e| DiskError::io("remove", &path, e))?;
            }
            create_new(&*fs, &dir)?;
            recovery.created = true;
            names = list(&*fs, &dir)?;
        }
        let file = open_file(&*fs, &checkpoint_path)?;
        let ckpt = checkpoint::decode(&checkpoint_path, &read_all(&*file, &checkpoint_path)?)?;
        // What the page cache holds need not be durable (after a failed fsync, say).
        file.sync()
            .map_err(|e| DiskError::io("fsync", &checkpoint_path, e))?;
        let cache_bytes = options.cache_bytes_per_group;
        let mut replay = MultiReplay {
            groups: ckpt
                .groups
                .iter()
                .map(|g| {
                    let replayed = ReplayedGroup {
                        state: GroupReplay {
                            log: LogIndex::new(g.log_start.0, g.log_start.1, cache_bytes),
                            hard_state: g.hard_state,
                            conf_state: g.conf_state.clone(),
                        },
                        snapshot: g.snapshot.clone(),
                        first_entry_at: g.first_entry_at,
                    };
                    (g.id, replayed)
                })
                .collect(),
            checkpoint_at: ckpt.synced,
            cache_bytes,
        };
        let segment_ids: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        let opened = open_segments(
            &*fs,
            &dir,
            &segment_ids,
            ckpt.first_segment,
            ckpt.synced,
            &mut replay,
            &mut recovery,
        )?;
        opened.seal()?;
        let segments = opened.segments;
        let last = segments.values().next_back().expect("at least one segment");
        let mut groups = BTreeMap::new();
        let mut referenced = BTreeSet::new();
        for (id, replayed) in replay.groups {
            let GroupReplay {
                log,
                hard_state,
                conf_state,
            } = replayed.state;
            if hard_state.commit > log.last_index() {
                return Err(DiskError::corrupt(
                    &last.path,
                    last.len,
                    format!(
                        "group {id}'s log ends at index {} but its commit index is {}",
                        log.last_index(),
                        hard_state.commit
                    ),
                ));
            }
            let snapshot = replayed.snapshot;
            if snapshot.index > 0 {
                let name = group_snapshot_name(id, snapshot.index);
                if !names.contains(&name) {
                    return Err(DiskError::corrupt(
                        &dir.join(&name),
                        0,
                        format!("group {id}'s snapshot is missing"),
                    ));
                }
                referenced.insert(name);
            }
            recovery.entries += log.last_index() - log.start().0;
            groups.insert(
                id,
                Group {
                    log,
                    logged_hard_state: hard_state,
                    logged_conf_state: conf_state.clone(),
                    conf_changed: false,
                    hard_state,
                    conf_state,
                    snapshot,
                },
            );
        }
        recovery.segments = segments.len();
        recovery.removed = remove_leftovers(&*fs, &dir, &names, &ckpt, &referenced)?;
        let seg = SegmentLog::recovered(fs.clone(), dir.clone(), segments, options.segment_bytes);
        Ok(MultiLogCore {
            fs,
            dir,
            options,
            seg,
            groups,
            dirty: BTreeSet::new(),
            first_segment: ckpt.first_segment,
            checkpoint_sequence: ckpt.sequence,
            obsolete: Vec::new(),
            rotated: false,
            recovery,
        })
    }
}

/// Makes a new log in `dir`: segment 1, then the checkpoint (via a temporary name).
fn create_new(fs: &dyn Fs, dir: &Path) -> Result<(), DiskError> {
    create_segment(fs, dir, 1)?;
    let initial = Checkpoint {
        sequence: 1,
        first_segment: 1,
        synced: (1, SEGMENT_HEADER_LEN),
        groups: Vec::new(),
    };
    let path = dir.join(CHECKPOINT_FILE);
    let tmp = dir.join(format!("{CHECKPOINT_FILE}{TMP_SUFFIX}"));
    write_file_durably(fs, dir, &tmp, &path, &checkpoint::encode(&initial))
}

/// Removes what a crash may leave behind: segments before the first one, snapshot files no group
/// refers to, temporary files. Returns their names.
fn remove_leftovers(
    fs: &dyn Fs,
    dir: &Path,
    names: &[String],
    ckpt: &Checkpoint,
    referenced: &BTreeSet<String>,
) -> Result<Vec<String>, DiskError> {
    let mut removed = Vec::new();
    for name in names {
        let stale = match parse_segment_name(name) {
            Some(id) => id < ckpt.first_segment,
            None => {
                name.ends_with(TMP_SUFFIX) || (is_snapshot_name(name) && !referenced.contains(name))
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
