//! W10 `disk-multi`: group commit across Raft groups. Each round, every one of N groups appends
//! one small Ready (one entry and a hard state), and all N are written to one shared
//! [`MultiLog`] with one `write` and one fsync. Measured side by side, same run:
//! - `bare`: the same payload bytes per round, one `write` + `fdatasync` (the disk's limit for
//!   one fsync per round);
//! - `per-group`: one `write` + `fdatasync` per group per round, the fsyncs a log per group
//!   would cost at the least (a bare loop, no engine). Above [`PER_GROUP_SAMPLE`] groups it
//!   times that many fsyncs and scales the time to N (saying so in the table).

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_core::eraftpb::{Entry, HardState};
use storage_disk::io::{Fs, RealFs};
use storage_disk::{MultiLog, MultiOptions, WriteBatch};

/// The most per-group fsyncs timed per round; above it the time is scaled to N.
pub const PER_GROUP_SAMPLE: usize = 256;

/// Group ids start here (any u64 is a valid id; these are not 1, 2, 3, ...).
const FIRST_GROUP: u64 = 1_000_000;

/// Time for `rounds` rounds of `groups` groups' Readys of one `payload` entry on the shared
/// log (opening and creating the groups not timed).
pub fn ours(dir: &Path, groups: usize, rounds: usize, payload: &Bytes) -> Duration {
    let fs: Arc<dyn Fs> = Arc::new(RealFs::new());
    let log = MultiLog::open(fs, dir, MultiOptions::default()).expect("open");
    let ids: Vec<u64> = (0..groups as u64).map(|g| FIRST_GROUP + g).collect();
    log.wl().create_groups(&ids).expect("create the groups");
    let start = Instant::now();
    for round in 0..rounds as u64 {
        let index = round + 1;
        let batches = ids.iter().map(|&id| {
            let batch = WriteBatch {
                entries: vec![Entry {
                    index,
                    term: 1,
                    data: payload.clone(),
                    ..Default::default()
                }],
                hard_state: Some(HardState {
                    term: 1,
                    vote: 1,
                    commit: round,
                }),
                ..Default::default()
            };
            (id, batch)
        });
        log.wl().write(batches, true).expect("a synced write");
    }
    let took = start.elapsed();
    let last = raft_core::Storage::last_index(&log.group(ids[groups - 1])).unwrap();
    assert_eq!(last, rounds as u64);
    took
}

/// The same payload bytes per round with one `write` + `fdatasync`.
pub fn bare(dir: &Path, groups: usize, rounds: usize, payload: &Bytes) -> Duration {
    let buf: Vec<u8> = payload
        .iter()
        .copied()
        .cycle()
        .take(groups * payload.len())
        .collect();
    let mut file = File::create(dir.join("bare.log")).expect("create");
    let start = Instant::now();
    for _ in 0..rounds {
        file.write_all(&buf).expect("write");
        file.sync_data().expect("fdatasync");
    }
    start.elapsed()
}

/// The time per round of one `write` + `fdatasync` of one payload per group: at most
/// [`PER_GROUP_SAMPLE`] groups' fsyncs of at most 5 rounds are timed, and the time per round
/// is scaled to `groups`. Returns it and whether it was scaled.
pub fn per_group_round(
    dir: &Path,
    groups: usize,
    rounds: usize,
    payload: &Bytes,
) -> (Duration, bool) {
    let timed = groups.min(PER_GROUP_SAMPLE);
    let rounds = rounds.clamp(1, 5);
    let mut file = File::create(dir.join("per-group.log")).expect("create");
    let start = Instant::now();
    for _ in 0..rounds {
        for _ in 0..timed {
            file.write_all(payload).expect("write");
            file.sync_data().expect("fdatasync");
        }
    }
    let per_round = start.elapsed().div_f64(rounds as f64);
    (
        per_round.mul_f64(groups as f64 / timed as f64),
        timed < groups,
    )
}
