//! W8 `disk-append`: append throughput with an fsync per Ready, for storage-disk, for a bare
//! `write` + `fdatasync` loop over the same payload bytes (the disk's limit, as issue 16 defines
//! it), for the same loop over as many bytes as storage-disk writes per Ready (`bare-log`:
//! record headers, entry encoding, the hard state record and the sync mark), and for TiKV's
//! raft-engine (feature `bench-raft-engine`). Both bare loops append to a growing file.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_core::eraftpb::{Entry, HardState};
use storage_disk::io::{Fs, RealFs};
use storage_disk::{DiskStorage, Options, WriteBatch};

/// One configuration: `entries` entries per Ready (their payloads are passed along), `readys`
/// Readys.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub entries: usize,
    pub readys: usize,
}

impl Shape {
    /// Entries appended in one run.
    pub fn total_entries(&self) -> u64 {
        (self.entries * self.readys) as u64
    }
}

/// The engines measured side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    Ours,
    Bare,
    BareLog,
    #[cfg(feature = "bench-raft-engine")]
    RaftEngine,
}

impl Contender {
    /// Every engine this build measures.
    pub fn all() -> Vec<Contender> {
        #[allow(unused_mut)]
        let mut all = vec![Contender::Ours, Contender::Bare, Contender::BareLog];
        #[cfg(feature = "bench-raft-engine")]
        all.push(Contender::RaftEngine);
        all
    }

    /// The `lib=` name in RESULT lines.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            Contender::Bare => "bare",
            Contender::BareLog => "bare-log",
            #[cfg(feature = "bench-raft-engine")]
            Contender::RaftEngine => "raft-engine",
        }
    }
}

/// `count` incompressible payloads of `len` bytes (xorshift64*, fixed seed), made before timing.
pub fn payloads(count: usize, len: usize) -> Vec<Bytes> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..count)
        .map(|_| {
            let mut data = Vec::with_capacity(len);
            while data.len() < len {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                let take = (len - data.len()).min(8);
                data.extend_from_slice(&word[..take]);
            }
            Bytes::from(data)
        })
        .collect()
}

/// Runs `shape` on `engine` in a fresh directory under `dir` (removed afterwards) and returns
/// the time of the append loop (opening and removing are not timed).
pub fn run(engine: Contender, dir: &Path, shape: Shape, payloads: &[Bytes]) -> Duration {
    let dir = dir.join(engine.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a bench directory");
    let took = match engine {
        Contender::Ours => ours(&dir, shape, payloads),
        Contender::Bare => bare(&dir, shape, payloads),
        Contender::BareLog => bare_log(&dir, shape, payloads),
        #[cfg(feature = "bench-raft-engine")]
        Contender::RaftEngine => raft_engine::run(&dir, shape, payloads),
    };
    std::fs::remove_dir_all(&dir).expect("removing the bench directory");
    took
}

/// storage-disk: each Ready is `entries` entries and a hard state, written with an fsync.
fn ours(dir: &Path, shape: Shape, payloads: &[Bytes]) -> Duration {
    let fs: Arc<dyn Fs> = Arc::new(RealFs::new());
    let storage = DiskStorage::open(fs, dir, Options::default()).expect("open");
    let start = Instant::now();
    let mut next = 1u64;
    for _ in 0..shape.readys {
        let entries: Vec<Entry> = payloads
            .iter()
            .enumerate()
            .map(|(j, data)| Entry {
                index: next + j as u64,
                term: 1,
                data: data.clone(),
                ..Default::default()
            })
            .collect();
        let batch = WriteBatch {
            entries,
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: next - 1,
            }),
            ..Default::default()
        };
        storage.wl().write(batch, true).expect("a synced write");
        next += shape.entries as u64;
    }
    let took = start.elapsed();
    assert_eq!(
        raft_core::Storage::last_index(&storage).unwrap(),
        shape.total_entries()
    );
    took
}

/// The disk's limit: the same payload bytes, one `write` and one `fdatasync` per Ready.
fn bare(dir: &Path, shape: Shape, payloads: &[Bytes]) -> Duration {
    let buf: Vec<u8> = payloads.iter().flat_map(|p| p.iter().copied()).collect();
    let mut file = File::create(dir.join("bare.log")).expect("create");
    let start = Instant::now();
    for _ in 0..shape.readys {
        file.write_all(&buf).expect("write");
        file.sync_data().expect("fdatasync");
    }
    start.elapsed()
}

/// The bytes storage-disk writes for Ready number `ready` (from 0) of `shape`: a 24-byte header
/// and the prost encoding per entry, a hard state record (24 + 24) and a sync mark (24).
fn log_bytes(shape: Shape, payloads: &[Bytes], ready: usize) -> usize {
    use prost::Message as _;
    let first = (ready * shape.entries) as u64 + 1;
    let entries: usize = payloads
        .iter()
        .enumerate()
        .map(|(j, data)| {
            let entry = Entry {
                index: first + j as u64,
                term: 1,
                data: data.clone(),
                ..Default::default()
            };
            24 + entry.encoded_len()
        })
        .sum();
    entries + 48 + 24
}

/// `bare` over as many bytes per Ready as storage-disk writes (see [`log_bytes`]), in one
/// `write`.
fn bare_log(dir: &Path, shape: Shape, payloads: &[Bytes]) -> Duration {
    let sizes: Vec<usize> = (0..shape.readys)
        .map(|ready| log_bytes(shape, payloads, ready))
        .collect();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let buf: Vec<u8> = payloads
        .iter()
        .flat_map(|p| p.iter().copied())
        .cycle()
        .take(largest)
        .collect();
    let mut file = File::create(dir.join("bare.log")).expect("create");
    let start = Instant::now();
    for size in sizes {
        file.write_all(&buf[..size]).expect("write");
        file.sync_data().expect("fdatasync");
    }
    start.elapsed()
}

#[cfg(feature = "bench-raft-engine")]
mod raft_engine {
    //! TiKV's raft-engine 0.4 with its defaults, except compression off (the payloads are
    //! incompressible; LZ4 would only cost time): one `LogBatch` per Ready holding the entries
    //! and the hard state (as TiKV stores it, a message under a key), `Engine::write(.., true)`.

    use super::*;
    use ::raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};
    use raft::eraftpb;

    struct Entries;

    impl MessageExt for Entries {
        type Entry = eraftpb::Entry;

        fn index(e: &eraftpb::Entry) -> u64 {
            e.index
        }
    }

    pub fn run(dir: &Path, shape: Shape, payloads: &[Bytes]) -> Duration {
        let config = Config {
            dir: dir.to_string_lossy().into_owned(),
            batch_compression_threshold: ReadableSize(0),
            ..Default::default()
        };
        let engine = Engine::open(config).expect("open raft-engine");
        let start = Instant::now();
        let mut next = 1u64;
        for _ in 0..shape.readys {
            let entries: Vec<eraftpb::Entry> = payloads
                .iter()
                .enumerate()
                .map(|(j, data)| eraftpb::Entry {
                    index: next + j as u64,
                    term: 1,
                    data: data.clone(),
                    ..Default::default()
                })
                .collect();
            let hs = eraftpb::HardState {
                term: 1,
                vote: 1,
                commit: next - 1,
                ..Default::default()
            };
            let mut batch = LogBatch::with_capacity(shape.entries);
            batch
                .add_entries::<Entries>(1, &entries)
                .expect("add entries");
            batch
                .put_message(1, b"hard_state".to_vec(), &hs)
                .expect("put hard state");
            engine.write(&mut batch, true).expect("a synced write");
            next += shape.entries as u64;
        }
        let took = start.elapsed();
        assert_eq!(engine.last_index(1), Some(shape.total_entries()));
        took
    }
}
