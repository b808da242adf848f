//! The three files of a node's data directory and their formats.
//!
//! - `wal`: the write-ahead log, a sequence of records `[len: u32 LE][crc32: u32 LE][payload]`.
//!   The first record is the log's *base* (the index and term of the entry just before the first
//!   one it holds); every later record is one entry (protobuf `Entry`). A record for an index at
//!   or below the previous one replaces the log from that index on, exactly as `append` does in
//!   memory, so an overwrite by a new leader is one more append, never an in-place edit. On
//!   recovery the first record that is cut short or fails its checksum ends the log, and the file
//!   is truncated there: it was being written when the process died, so it was never fsync'd and
//!   never acknowledged.
//! - `hardstate`: two 64-byte slots written alternately, each `[crc32][seq][term][vote][commit]`;
//!   the valid slot with the higher sequence number wins, so a torn write leaves the previous
//!   hard state readable.
//! - `snapshot`: `[crc32: u32 LE][len: u64 LE][protobuf Snapshot]`, replaced atomically (write a
//!   temporary file, fsync, rename, fsync the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message as _;
use raft_core::eraftpb::{Entry, HardState, Snapshot};

/// The file name of the write-ahead log.
pub const WAL_FILE: &str = "wal";
/// The file name of the hard state.
pub const HARD_STATE_FILE: &str = "hardstate";
/// The file name of the latest snapshot.
pub const SNAPSHOT_FILE: &str = "snapshot";

/// A record larger than this is taken for garbage (a torn length field).
const MAX_RECORD_BYTES: usize = 1 << 30;
const RECORD_HEADER_BYTES: usize = 8;
const KIND_BASE: u8 = 1;
const KIND_ENTRY: u8 = 2;
const HARD_STATE_SLOT_BYTES: u64 = 64;

/// CRC-32 (IEEE 802.3, the one zlib and Ethernet use) of `data` (crc32fast: the same values the
/// files have always carried, computed with SIMD where the CPU has it).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// One record of the write-ahead log.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// The log holds the entries after `(index, term)`.
    Base {
        /// The index of the entry just before the first one in the log.
        index: u64,
        /// Its term.
        term: u64,
    },
    /// An entry.
    Entry(Entry),
}

/// Appends the encoding of `record` to `out`.
pub fn encode_record(record: &WalRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    match record {
        WalRecord::Base { index, term } => {
            out.push(KIND_BASE);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&term.to_le_bytes());
        }
        WalRecord::Entry(entry) => {
            out.push(KIND_ENTRY);
            entry.encode(out).expect("a Vec grows as needed");
        }
    }
    let payload_len = (out.len() - start - RECORD_HEADER_BYTES) as u32;
    let crc = crc32(&out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The records of a WAL's bytes, up to the first one that is incomplete or corrupt, and the
/// length of the valid prefix they fill.
pub fn decode_records(data: &[u8]) -> (Vec<WalRecord>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(header) = data.get(at..at + RECORD_HEADER_BYTES) {
        let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().unwrap_or_default());
        if len == 0 || len > MAX_RECORD_BYTES {
            break;
        }
        let start = at + RECORD_HEADER_BYTES;
        let Some(payload) = data.get(start..start + len) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        let body = &payload[1..];
        let record = match payload[0] {
            KIND_BASE if body.len() == 16 => WalRecord::Base {
                index: u64::from_le_bytes(body[..8].try_into().unwrap_or_default()),
                term: u64::from_le_bytes(body[8..].try_into().unwrap_or_default()),
            },
            KIND_ENTRY => match Entry::decode(body) {
                Ok(entry) => WalRecord::Entry(entry),
                Err(_) => break,
            },
            _ => break,
        };
        records.push(record);
        at = start + len;
    }
    (records, at)
}

/// Writes `bytes` to `dir/name` atomically: a temporary file, fsync, rename, fsync of `dir`.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_synced(dir, &format!("{name}.tmp"), bytes)?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// The temporary name of a snapshot made on a background thread, until the storage adopts it
/// (see `DiskStorageCore::adopt_snapshot`). Distinct from the temporary file of
/// [`write_atomically`], which installing a leader's snapshot may be using meanwhile.
pub const MADE_SNAPSHOT_TMP: &str = "snapshot.made.tmp";

/// The temporary name of the compacted WAL written with a snapshot made on a background thread.
pub const MADE_WAL_TMP: &str = "wal.made.tmp";

/// How much of a large file [`write_synced`] writes between two fsyncs.
const SYNC_EVERY: usize = 4 << 20;

/// Writes `bytes` to `dir/name` and fsyncs the file; no rename. A large file is fsynced every
/// few megabytes as it is written (as Redis does with `rdb-save-incremental-fsync`): the page
/// cache then never holds hundreds of megabytes of it at once, which a file system journal
/// commit (an fsync of the WAL, on ext4 in ordered mode) would otherwise have to flush first.
pub fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(name);
    let mut file = File::create(&path)?;
    for chunk in bytes.chunks(SYNC_EVERY) {
        file.write_all(chunk)?;
        file.sync_data()?;
    }
    file.sync_all()?;
    Ok(path)
}

/// The data directory's lock file: holds the pid of the process using the directory.
pub const LOCK_FILE: &str = "LOCK";

/// Takes the lock of the data directory `dir` (an exclusive `flock` on `dir/LOCK`, released when
/// the returned file is closed, however the process ends) and writes this process's pid in it.
/// Two processes writing one WAL would corrupt it: a second one is refused with the pid of the
/// first.
pub fn lock_dir(dir: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "the data directory {} is in use by another process (pid {})",
                    dir.display(),
                    pid.trim()
                ),
            ));
        }
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    Ok(file)
}

/// The pid of the live process holding the lock of the data directory `dir`, if one does.
/// A pid left in the file by a process that died is not reported: its lock died with it.
pub fn lock_holder(dir: &Path) -> Option<u32> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid).ok()?;
            pid.trim().parse().ok()
        }
        Err(fs::TryLockError::Error(_)) => None,
    }
}

/// Fsyncs a directory, so that a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The snapshot file's bytes for `snapshot`.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let body = snapshot.encode_to_vec();
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&crc32(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The snapshot in the snapshot file's bytes, or `None` if they are damaged.
pub fn decode_snapshot(data: &[u8]) -> Option<Snapshot> {
    let crc = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
    let len = u64::from_le_bytes(data.get(4..12)?.try_into().ok()?);
    let body = data.get(12..)?;
    if body.len() as u64 != len || crc32(body) != crc {
        return None;
    }
    Snapshot::decode(body).ok()
}

/// The hard-state file: two slots written alternately.
#[derive(Debug)]
pub struct HardStateFile {
    file: File,
    /// The sequence number of the last slot written.
    seq: u64,
    /// Written since the last fsync.
    dirty: bool,
}

impl HardStateFile {
    /// Opens (or creates) the file and reads the newest valid hard state in it.
    pub fn open(path: &Path) -> io::Result<(HardStateFile, HardState)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let mut best: Option<(u64, HardState)> = None;
        for slot in data.chunks(HARD_STATE_SLOT_BYTES as usize) {
            if let Some((seq, hs)) = decode_slot(slot) {
                if best.as_ref().is_none_or(|(s, _)| seq > *s) {
                    best = Some((seq, hs));
                }
            }
        }
        let (seq, hs) = best.unwrap_or_default();
        let file = HardStateFile {
            file,
            seq,
            dirty: false,
        };
        Ok((file, hs))
    }

    /// Writes `hs` into the older slot (not fsync'd; see [`HardStateFile::sync`]).
    pub fn write(&mut self, hs: &HardState) -> io::Result<()> {
        self.seq += 1;
        let mut slot = [0u8; HARD_STATE_SLOT_BYTES as usize];
        slot[4..12].copy_from_slice(&self.seq.to_le_bytes());
        slot[12..20].copy_from_slice(&hs.term.to_le_bytes());
        slot[20..28].copy_from_slice(&hs.vote.to_le_bytes());
        slot[28..36].copy_from_slice(&hs.commit.to_le_bytes());
        let crc = crc32(&slot[4..36]);
        slot[..4].copy_from_slice(&crc.to_le_bytes());
        self.file
            .seek(SeekFrom::Start((self.seq % 2) * HARD_STATE_SLOT_BYTES))?;
        self.file.write_all(&slot)?;
        self.dirty = true;
        Ok(())
    }

    /// Fsyncs what was written since the last call.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn decode_slot(slot: &[u8]) -> Option<(u64, HardState)> {
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(slot.get(at..at + 8)?.try_into().ok()?))
    };
    let crc = u32::from_le_bytes(slot.get(..4)?.try_into().ok()?);
    if crc != crc32(slot.get(4..36)?) {
        return None;
    }
    let hs = HardState {
        term: word(12)?,
        vote: word(20)?,
        commit: word(28)?,
    };
    Some((word(4)?, hs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The check value of CRC-32/ISO-HDLC for the ASCII digits 1 to 9.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_decode_up_to_a_torn_or_corrupt_one() {
        let mut bytes = Vec::new();
        encode_record(&WalRecord::Base { index: 5, term: 2 }, &mut bytes);
        let entry = Entry {
            index: 6,
            term: 2,
            data: bytes::Bytes::from_static(b"x"),
            ..Default::default()
        };
        encode_record(&WalRecord::Entry(entry.clone()), &mut bytes);
        let whole = bytes.len();
        let (records, valid) = decode_records(&bytes);
        assert_eq!(records.len(), 2);
        assert_eq!(valid, whole);
        assert_eq!(records[1], WalRecord::Entry(entry));

        for cut in 0..whole {
            let (records, valid) = decode_records(&bytes[..cut]);
            assert!(valid <= cut, "never more than was given");
            assert!(
                records.len() < 2,
                "a cut record is not returned ({cut} bytes)"
            );
        }
        let mut flipped = bytes.clone();
        flipped[whole - 1] ^= 0x40;
        let (records, valid) = decode_records(&flipped);
        assert_eq!(records.len(), 1, "a checksum mismatch ends the log");
        assert!(valid < whole);
    }

    #[test]
    fn snapshot_file_bytes_round_trip_and_detect_damage() {
        let snapshot = Snapshot {
            data: bytes::Bytes::from_static(b"state"),
            ..Default::default()
        };
        let bytes = encode_snapshot(&snapshot);
        assert_eq!(decode_snapshot(&bytes), Some(snapshot));
        let mut damaged = bytes.clone();
        damaged[14] ^= 1;
        assert_eq!(decode_snapshot(&damaged), None);
        assert_eq!(decode_snapshot(&bytes[..bytes.len() - 1]), None);
    }
}
