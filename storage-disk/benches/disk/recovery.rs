//! W9 `disk-recovery`: how long `DiskStorage::open` takes on a log of a given size, the
//! resident memory while holding it, then the time of a first read of one entry in the middle of
//! the log, and the time and memory to read every entry back (all of them but the cached ones
//! from disk), measured in a fresh child process.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use raft_core::eraftpb::{Entry, HardState};
use raft_core::Storage as _;
use storage_disk::io::{Fs, RealFs};
use storage_disk::{DiskStorage, Options, WriteBatch};

use crate::append::payloads;

/// Entries per Ready while writing the log.
const BATCH: usize = 256;

/// Writes a log of about `bytes` payload bytes of `payload`-byte entries into `dir` (fsynced
/// every 64 Readys and at the end), and returns the number of entries.
pub fn write_log(dir: &Path, bytes: u64, payload: usize) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    let fs: Arc<dyn Fs> = Arc::new(RealFs::new());
    let storage = DiskStorage::open(fs, dir, Options::default()).expect("open");
    let pool = payloads(BATCH, payload);
    let total = bytes / payload as u64;
    let mut next = 1u64;
    let mut readys = 0u64;
    while next <= total {
        let n = (BATCH as u64).min(total + 1 - next) as usize;
        let entries = (0..n)
            .map(|j| Entry {
                index: next + j as u64,
                term: 1,
                data: pool[j].clone(),
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
        readys += 1;
        storage
            .wl()
            .write(batch, readys.is_multiple_of(64))
            .expect("a write");
        next += n as u64;
    }
    storage.wl().sync().expect("the last sync");
    total
}

/// What a child process measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub open_ms: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub hwm_kib: u64,
    pub entries: u64,
    pub read_ms: f64,
    pub middle_read_ms: f64,
    pub rss_read_kib: u64,
}

/// Reopens the log in `dir` in a child process (this binary with `--recover-only`), after
/// dropping the page cache if `drop_caches`.
pub fn measure(dir: &Path, drop_caches: bool) -> Measured {
    if drop_caches {
        let synced = Command::new("sync").status().is_ok_and(|s| s.success());
        let dropped = std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok();
        assert!(
            synced && dropped,
            "--drop-caches needs root (sync; echo 1 > drop_caches)"
        );
    }
    let exe = std::env::current_exe().expect("this binary");
    let out = Command::new(exe)
        .arg("--recover-only")
        .arg(dir)
        .output()
        .expect("the child process");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut measured = Measured::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        match key {
            "open_ms" => measured.open_ms = value.parse().unwrap(),
            "rss_before_kib" => measured.rss_before_kib = value.parse().unwrap(),
            "rss_after_kib" => measured.rss_after_kib = value.parse().unwrap(),
            "hwm_kib" => measured.hwm_kib = value.parse().unwrap(),
            "entries" => measured.entries = value.parse().unwrap(),
            "read_ms" => measured.read_ms = value.parse().unwrap(),
            "middle_read_ms" => measured.middle_read_ms = value.parse().unwrap(),
            "rss_read_kib" => measured.rss_read_kib = value.parse().unwrap(),
            _ => {}
        }
    }
    measured
}

/// The entries read at a time when reading the whole log back (the size limit of
/// `Storage::entries`, as a leader sending to a follower far behind would use).
const READ_PAGE_BYTES: u64 = 1 << 20;

/// The child's side: open `dir`, report the time and memory, then read every entry back in
/// pages of [`READ_PAGE_BYTES`] and report the time and memory again.
pub fn recover_only(dir: &Path) {
    let rss_before = status_kib("VmRSS");
    let fs: Arc<dyn Fs> = Arc::new(RealFs::new());
    let start = Instant::now();
    let storage = DiskStorage::open(fs, dir, Options::default()).expect("recovery");
    let took = start.elapsed();
    let rss_after = status_kib("VmRSS");
    let hwm_open = status_kib("VmHWM");
    let last = storage.last_index().unwrap();
    let first = storage.first_index().unwrap();
    // One entry from the middle of the log, the first read there: the worst case of a sparse
    // index, which scans its piece from the start.
    let middle = first + (last - first) / 2;
    let start = Instant::now();
    assert_eq!(storage.entries(middle, middle + 1, 0).unwrap().len(), 1);
    let middle_read = start.elapsed();
    let start = Instant::now();
    let mut next = first;
    while next <= last {
        let page = storage.entries(next, last + 1, READ_PAGE_BYTES).unwrap();
        assert_eq!(page.first().map(|e| e.index), Some(next));
        next += page.len() as u64;
    }
    let read = start.elapsed();
    println!("open_ms {}", took.as_secs_f64() * 1e3);
    println!("rss_before_kib {rss_before}");
    println!("rss_after_kib {rss_after}");
    println!("hwm_kib {hwm_open}");
    println!("entries {}", last + 1 - first);
    println!("middle_read_ms {}", middle_read.as_secs_f64() * 1e3);
    println!("read_ms {}", read.as_secs_f64() * 1e3);
    println!("rss_read_kib {}", status_kib("VmRSS"));
}

/// A `kB` field of /proc/self/status.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
