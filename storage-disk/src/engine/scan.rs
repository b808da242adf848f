//! Reading entries that are not cached back from their segment: a scan of their piece's records
//! from the best known position (see `log_index` for the piece's invariant, `anchors` for the
//! positions kept).
//!
//! The scan reads the span forward in chunks (64 KiB, doubling up to 1 MiB, and not much more
//! than the size limit of the read still allows), decodes every
//! record it meets with both checksums verified, whichever group or kind it is, and counts the
//! group's entry records: the `n`-th after an anchor of entry `i` is entry `i + n`. Each entry
//! served is checked once more against the index (its index, and its term against the term
//! runs). A record that fails a check, a record that runs past the end of its piece, or a piece
//! that ends before the entry is an error naming the segment and the record's byte offset:
//! nothing damaged is served, and nothing read from the disk can make the scan panic.

use std::path::Path;

use prost::Message as _;
use raft_core::eraftpb::Entry;
use raft_core::{Error, Result, NO_LIMIT};

use super::anchors::{SpanKey, ANCHOR_BYTES};
use super::segments::SegmentLog;
use crate::error::DiskError;
use crate::io::FsFile;
use crate::log_index::{Anchor, LogIndex, Piece};
use crate::record::{self, DecodeError, RecordKind, HEADER_LEN};

/// The first read of a scan, in bytes; each further read doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: u64 = 64 << 10;

/// The largest read of a scan (a longer record is read whole).
const MAX_CHUNK: u64 = 1 << 20;

/// `MemStorage`'s size limit on `entries`: entries are taken while their total encoded size
/// stays within the limit, and the first one always.
#[derive(Debug)]
pub(crate) struct SizeLimit {
    max: u64,
    total: u64,
    taken: usize,
}

impl SizeLimit {
    /// A limit of `max` bytes ([`NO_LIMIT`]: none).
    pub fn new(max: u64) -> SizeLimit {
        SizeLimit {
            max,
            total: 0,
            taken: 0,
        }
    }

    /// How many more encoded bytes may be taken (beyond the first entry, which always is), or
    /// `None` without a limit.
    pub fn remaining(&self) -> Option<u64> {
        (self.max != NO_LIMIT).then(|| self.max.saturating_sub(self.total))
    }

    /// Whether an entry of `size` encoded bytes may be taken after those taken so far; if so,
    /// it is counted.
    pub fn admit(&mut self, size: u64) -> bool {
        self.total = self.total.saturating_add(size);
        if self.max != NO_LIMIT && self.taken > 0 && self.total > self.max {
            return false;
        }
        self.taken += 1;
        true
    }
}

/// The bytes of one span of a segment, read forward in growing chunks.
struct SpanReader<'a> {
    file: &'a dyn FsFile,
    path: &'a Path,
    /// One past the span's last byte: nothing after it is read.
    end: u64,
    buf: Vec<u8>,
    /// The segment offset of `buf[0]`.
    buf_start: u64,
    chunk: u64,
    /// About how many more bytes the read needs, if it has a size limit.
    wanted: Option<u64>,
}

impl SpanReader<'_> {
    /// The bytes `[at, at + len)` of the segment, read if the buffer does not hold them; an
    /// error if they run past the span's end.
    fn bytes(&mut self, at: u64, len: u64) -> std::result::Result<&[u8], DiskError> {
        let held = self.buf_start + self.buf.len() as u64;
        if at < self.buf_start || at + len > held {
            let chunk = self.wanted.map_or(self.chunk, |w| w.min(self.chunk));
            let read = len.max(chunk).min(self.end.saturating_sub(at));
            if read < len {
                return Err(DiskError::corrupt(
                    self.path,
                    at,
                    "a record runs past the end of its piece's records",
                ));
            }
            self.fill(at, read, len)?;
        }
        let from = (at - self.buf_start) as usize;
        Ok(&self.buf[from..from + len as usize])
    }

    /// Reads `read` bytes from `at` into the buffer, at least the `needed` first ones: fewer
    /// if the file ends sooner, which is an error naming `at` if it ends before `needed`.
    fn fill(&mut self, at: u64, read: u64, needed: u64) -> std::result::Result<(), DiskError> {
        self.buf.clear();
        self.buf.resize(read as usize, 0);
        if let Err(e) = self.file.read_at(at, &mut self.buf) {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                return Err(DiskError::io("read", self.path, e));
            }
            // The segment is shorter than the records the index knows in it: cut after
            // it was written.
            let file_len = self
                .file
                .len()
                .map_err(|e| DiskError::io("stat", self.path, e))?;
            if file_len < at + needed {
                let why = format!("the segment ends at byte {file_len}, inside this record");
                return Err(DiskError::corrupt(self.path, at, why));
            }
            self.buf.truncate((file_len - at) as usize);
            self.file
                .read_at(at, &mut self.buf)
                .map_err(|e| DiskError::io("read", self.path, e))?;
        }
        self.buf_start = at;
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Ok(())
    }
}

/// Appends the entries `[from, to)` of `piece` (entries of `group`, whose terms `log` knows) to
/// `out`, read from the piece's segment in `seg`, within `limit`. Returns `false` if the limit
/// stopped it before `to`.
pub(crate) fn read_piece(
    seg: &SegmentLog,
    group: u64,
    log: &LogIndex,
    (piece, from, to): (&Piece, u64, u64),
    limit: &mut SizeLimit,
    out: &mut Vec<Entry>,
) -> Result<bool> {
    let Some(segment) = seg.segments.get(&piece.segment) else {
        return Err(Error::Invariant(
            "DiskStorage::entries: an entry's segment is not open",
        ));
    };
    let key = SpanKey {
        group,
        segment: piece.segment,
        start: piece.start,
    };
    // Start at the last position known before `from`: the piece's resident sample, or one
    // that an earlier scan left in the cache, whichever is further.
    let sample = piece.sample_for(from);
    let (anchor, spaced) = match seg.anchors.find(key, from) {
        Some((found, spaced)) if (found.index, found.offset) >= (sample.index, sample.offset) => {
            (found, spaced)
        }
        _ => (sample, None),
    };
    let path = segment.path.as_path();
    let corrupt = |offset: u64, reason: String| DiskError::corrupt(path, offset, reason);
    let mut reader = SpanReader {
        file: &*segment.file,
        path,
        end: piece.end,
        buf: Vec::new(),
        buf_start: 0,
        chunk: FIRST_CHUNK,
        wanted: None,
    };
    let (mut index, mut pos) = (anchor.index, anchor.offset);
    let mut anchors = Vec::new();
    // The next anchor goes `ANCHOR_BYTES` after the last one (or the sample).
    let mut last_anchor = spaced.unwrap_or(piece.start).max(sample.offset);
    let finished = loop {
        if index >= to {
            break true;
        }
        if pos >= piece.end {
            let why = format!("entry {index} is missing: the records of its piece end here");
            return Err(corrupt(pos, why).into());
        }
        // The payloads still allowed, a quarter more for headers and other records, and a
        // header to read past the last one.
        reader.wanted = limit
            .remaining()
            .map(|r| r.saturating_add(r / 4).saturating_add(FIRST_CHUNK));
        let unreadable =
            |e: DecodeError| corrupt(pos, format!("reading entry {index}: {}", e.reason()));
        let header =
            record::decode_header(reader.bytes(pos, HEADER_LEN as u64)?, piece.segment, pos)
                .map_err(unreadable)?;
        let len = header.total_len;
        let rec =
            record::decode_payload(reader.bytes(pos, len as u64)?, &header).map_err(unreadable)?;
        if rec.group == group && matches!(rec.kind, RecordKind::Entry | RecordKind::EntryCopy) {
            if index >= from {
                if !limit.admit(rec.payload.len() as u64) {
                    break false;
                }
                let entry = Entry::decode(rec.payload)
                    .map_err(|e| corrupt(pos, format!("entry {index} does not decode: {e}")))?;
                let term = log.term(index);
                if entry.index != index || Some(entry.term) != term {
                    let why = format!(
                        "expected entry {index} of term {term:?}, found {} of term {}",
                        entry.index, entry.term
                    );
                    return Err(corrupt(pos, why).into());
                }
                out.push(entry);
            }
            if pos >= last_anchor + ANCHOR_BYTES {
                anchors.push(Anchor { index, offset: pos });
                last_anchor = pos;
            }
            index += 1;
        }
        pos += len as u64;
    };
    let cursor = Anchor { index, offset: pos };
    seg.anchors.record(key, &anchors, cursor);
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_limit_takes_the_first_entry_always_and_then_what_fits() {
        let mut limit = SizeLimit::new(100);
        assert!(limit.admit(150), "the first entry, however large");
        assert!(!limit.admit(1));
        let mut limit = SizeLimit::new(100);
        assert!(limit.admit(60) && limit.admit(40));
        assert!(!limit.admit(1));
        let mut limit = SizeLimit::new(NO_LIMIT);
        assert!(limit.admit(u64::MAX) && limit.admit(u64::MAX));
    }
}
