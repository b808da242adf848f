//! The in-memory view of a log: a sparse index of where its entries are on disk, their terms,
//! and a bounded cache of the most recent entries.
//!
//! # What is kept, and what it costs
//!
//! Nothing is kept per entry. The index holds:
//! - **term runs**: one `(first index, term)` pair per run of entries of the same term, so
//!   [`LogIndex::term`] answers from memory (a binary search), never from the disk. A term
//!   changes when a leader is elected, rarely;
//! - **pieces**: one [`Piece`] per run of entries whose records lie in one segment, written one
//!   after the other: in practice one per segment the log spans, plus one per truncation of a
//!   conflicting suffix and per run of copied entries (multi-group logs). A piece names its
//!   segment and the byte span of its records, not where each record is, and keeps a few
//!   resident *samples* of positions in the span, at most one per [`SAMPLE_BYTES`] (4 MiB) of
//!   it and per [`SAMPLE_ENTRIES`] (1,024) of its entries: at most 16 in a 64 MiB segment;
//! - the **cache** of the most recent entries, which never holds more than its byte budget
//!   (counted as the entries' encoded sizes) but always at least the last entry appended.
//!
//! So memory is 16 bytes per term run, 64 bytes per piece and 16 per sample (about 300 bytes
//! for a full 64 MiB segment), plus the cache, whatever the number of entries: a log of 8
//! million 128-byte entries (21 segments of 64 MiB, one term) holds 21 pieces, about 300
//! samples, one term run and its cache, about 6 KiB besides the cache, where an index of 24
//! bytes per entry held 192 MiB.
//!
//! Reading an entry that is not cached finds its piece here and scans the piece's records on
//! disk (`engine::scan`) from the last sample before it, or from a position that an earlier
//! scan found (kept in a small bounded cache, `engine::anchors`): a first read anywhere scans
//! at most about 4 MiB (or 1,024 of the group's records) of its segment, and reading on from
//! where a read stopped scans only what it reads.
//!
//! Why samples every 4 MiB and 1,024 entries, and not every `K` entries: a sample every `K`
//! entries would grow with the number of entries, which is what this index removes; one every
//! 4 MiB alone would, in a multi-group log, sample a group with few entries spread over a
//! segment at almost every record. Bounded both ways, a piece keeps at most
//! `min(span / 4 MiB, entries / 1024)` samples: a constant per segment, and never more than
//! 1/64 byte per entry.
//!
//! # The invariant a piece keeps
//!
//! Within bytes `[start, end)` of its segment, the group's entry records (entries and entry
//! copies) are exactly those of `origin, origin + 1, ...`, one each, in this order. A piece is
//! extended by a record only if that record is the next entry record the group writes after the
//! piece's last one, in the same segment, at the next index (see [`LogIndex::push`]); anything
//! else (a truncation, a copy, another segment) starts a new piece, so no other record of the
//! group's entries ever lands inside a piece's span. Truncating or compacting narrows the live
//! entries of a piece (`first` and the next piece's `first`) without touching its span: the
//! scan counts records from `origin` and serves only the live ones.

use std::collections::VecDeque;

use prost::Message as _;
use raft_core::eraftpb::Entry;

/// Where a record is: its segment, byte offset and length (header and payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAt {
    /// The segment id.
    pub segment: u64,
    /// The byte offset of the record in its segment.
    pub offset: u64,
    /// The record's length (header and payload) in bytes.
    pub len: u64,
}

impl RecordAt {
    /// One past the record's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A position in a piece's span: the first of the group's entry records at or after `offset`
/// is entry `index`'s. A scan for an entry starts at the last known position before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The entry.
    pub index: u64,
    /// The byte offset in the segment.
    pub offset: u64,
}

/// A piece keeps a resident sample at the first of its records that lies at least this many
/// bytes and [`SAMPLE_ENTRIES`] entries after the previous sample (or the span's start).
pub const SAMPLE_BYTES: u64 = 4 << 20;

/// See [`SAMPLE_BYTES`].
pub const SAMPLE_ENTRIES: u64 = 1024;

/// A run of entries whose records lie in one segment (see the module docs for its invariant):
/// 64 bytes, plus 16 per sample (at most `span / 4 MiB` and `entries / 1024` of them: 16 in a
/// 64 MiB segment), whatever the number of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The first live entry of the piece; the live entries run up to the next piece's `first`
    /// (or the log's last entry).
    pub first: u64,
    /// The entry whose record opens the span (at most `first`).
    pub origin: u64,
    /// The segment that holds the records.
    pub segment: u64,
    /// The byte offset of `origin`'s record.
    pub start: u64,
    /// One past the last byte of the last record appended to the piece.
    pub end: u64,
    /// Positions inside the span, [`SAMPLE_BYTES`] and [`SAMPLE_ENTRIES`] apart at least, in
    /// increasing order, recorded as the records were appended: a first read anywhere in the
    /// piece scans at most about [`SAMPLE_BYTES`] (or 1,024 of the group's records) of it.
    samples: Vec<Anchor>,
}

impl Piece {
    /// A piece of the one entry `index`, whose record is `at`.
    fn new(index: u64, at: RecordAt) -> Piece {
        Piece {
            first: index,
            origin: index,
            segment: at.segment,
            start: at.offset,
            end: at.end(),
            samples: Vec::new(),
        }
    }

    /// Appends the record of entry `index` (the one after the span's last) at `at`.
    fn extend(&mut self, index: u64, at: RecordAt) {
        debug_assert!(at.offset >= self.end);
        let last = self.samples.last().copied().unwrap_or(Anchor {
            index: self.origin,
            offset: self.start,
        });
        if at.offset >= last.offset + SAMPLE_BYTES && index >= last.index + SAMPLE_ENTRIES {
            self.samples.push(Anchor {
                index,
                offset: at.offset,
            });
        }
        self.end = at.end();
    }

    /// The best resident position to scan from for entry `index` of the piece: the last sample
    /// at or before it, or the span's start.
    pub fn sample_for(&self, index: u64) -> Anchor {
        let below = self.samples.partition_point(|s| s.index <= index);
        below.checked_sub(1).map_or(
            Anchor {
                index: self.origin,
                offset: self.start,
            },
            |at| self.samples[at],
        )
    }

    /// Drops the samples no entry in `[first, last]` scans from.
    fn keep_samples_for(&mut self, first: u64, last: u64) {
        self.samples.retain(|s| s.index <= last);
        let useless = self
            .samples
            .partition_point(|s| s.index <= first)
            .saturating_sub(1);
        self.samples.drain(..useless);
    }
}

/// What the in-memory index of a log holds (see the crate documentation, "Memory"): about 40
/// bytes per piece and 16 per term run, the cached entries, and the anchor tables (16 bytes per
/// anchor), whatever the number of entries in the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Runs of entries whose records lie in one segment, written one after the other: about one
    /// per segment the log spans, plus one per truncation and per run of copied entries.
    pub pieces: usize,
    /// Runs of entries of one term.
    pub term_runs: usize,
    /// Entries in the cache of recent entries.
    pub cached_entries: usize,
    /// Their encoded size, within the cache's budget (but at least the last entry).
    pub cached_bytes: usize,
    /// Tables of positions inside the pieces read recently, for reading old entries (in a
    /// multi-group log, shared by all its groups).
    pub anchor_tables: usize,
    /// The positions in those tables.
    pub anchors: usize,
}

/// A run of entries of one term: from `first` to the next run's `first` (or the last entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TermRun {
    first: u64,
    term: u64,
}

/// The log's entries after the start point `(start_index, start_term)`: their terms, the pieces
/// their records are in, and the latest ones cached.
#[derive(Debug, Default)]
pub struct LogIndex {
    start_index: u64,
    start_term: u64,
    last_index: u64,
    /// In index order, covering `first_index()..=last_index` without gaps.
    terms: VecDeque<TermRun>,
    /// In index order, covering `first_index()..=last_index` without gaps.
    pieces: VecDeque<Piece>,
    /// The entry (index, segment) whose record is the last entry record of the group written,
    /// while the piece holding it still ends with that record: the next record may extend that
    /// piece. `None` once a truncation, compaction or reset removed the entry.
    open: Option<(u64, u64)>,
    /// The last `cache.len()` entries of the log.
    cache: VecDeque<Entry>,
    cache_bytes: usize,
    cache_limit: usize,
}

impl LogIndex {
    /// An empty log after `(start_index, start_term)` with a cache of `cache_limit` bytes.
    pub fn new(start_index: u64, start_term: u64, cache_limit: usize) -> LogIndex {
        LogIndex {
            start_index,
            start_term,
            last_index: start_index,
            cache_limit,
            ..Default::default()
        }
    }

    /// The index and term of the entry before the first one.
    pub fn start(&self) -> (u64, u64) {
        (self.start_index, self.start_term)
    }

    /// One past the start point.
    pub fn first_index(&self) -> u64 {
        self.start_index + 1
    }

    /// The last entry's index, or the start point's if the log is empty.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The term of the entry at `index`, if the log knows it (the start point included), from
    /// memory.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.start_index {
            return Some(self.start_term);
        }
        if index < self.first_index() || index > self.last_index {
            return None;
        }
        let after = self.terms.partition_point(|run| run.first <= index);
        after.checked_sub(1).map(|at| self.terms[at].term)
    }

    /// The oldest segment holding a record of an entry of the log, if the log is not empty.
    ///
    /// Usually the first entry's, but not always: the multi-group log copies a lagging group's
    /// entries forward a chunk at a time, relocating each chunk, so a copy cut short (a failed
    /// read, a crash whose replay relocates the copies that reached the disk) leaves the first
    /// entries in a new segment and the later ones still in old segments. Those must not be
    /// deleted, and the group still counts as lagging.
    pub fn first_segment(&self) -> Option<u64> {
        self.pieces.iter().map(|p| p.segment).min()
    }

    /// A record position (segment, offset) at or before the record of every entry of the log,
    /// from which replay finds them all: the earliest start of a piece (the records before a
    /// piece's first entry from its start on are all behind the start point, or copied
    /// elsewhere; see [`first_segment`](Self::first_segment) for why the first piece is not
    /// always the earliest). `None` if the log is empty.
    pub fn first_record(&self) -> Option<(u64, u64)> {
        self.pieces.iter().map(|p| (p.segment, p.start)).min()
    }

    /// The pieces holding the entries in `[low, high)`, each with the part of the range it
    /// holds: `(piece, from, to)` for entries `[from, to)`, in index order.
    pub fn pieces_in(&self, low: u64, high: u64) -> impl Iterator<Item = (&Piece, u64, u64)> + '_ {
        let high = high.min(self.last_index + 1);
        let low = low.max(self.first_index());
        let first = match self.piece_at(low) {
            Some(at) if low < high => at,
            _ => self.pieces.len(),
        };
        self.pieces
            .iter()
            .enumerate()
            .skip(first)
            .take_while(move |(_, p)| p.first < high)
            .map(move |(at, p)| {
                let to = self.piece_last(at).saturating_add(1).min(high);
                (p, p.first.max(low), to)
            })
    }

    /// The position in `pieces` of the piece holding `index`, if the log holds it.
    fn piece_at(&self, index: u64) -> Option<usize> {
        if index < self.first_index() || index > self.last_index {
            return None;
        }
        self.pieces
            .partition_point(|p| p.first <= index)
            .checked_sub(1)
    }

    /// The last live entry of the piece at position `at`.
    fn piece_last(&self, at: usize) -> u64 {
        self.pieces
            .get(at + 1)
            .map_or(self.last_index, |next| next.first - 1)
    }

    /// What the index holds (the anchor tables are the reader's: left at 0 here).
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            pieces: self.pieces.len(),
            term_runs: self.terms.len(),
            cached_entries: self.cache.len(),
            cached_bytes: self.cache_bytes,
            ..IndexStats::default()
        }
    }

    #[cfg(test)]
    fn shape(&self) -> (usize, usize) {
        (self.pieces.len(), self.terms.len())
    }

    /// The index of the first cached entry (one past the last entry if none is cached).
    pub fn cache_first(&self) -> u64 {
        self.last_index + 1 - self.cache.len() as u64
    }

    /// The cached entry at `index`, if the cache holds it.
    pub fn cached(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.cache_first())?;
        self.cache.get(usize::try_from(offset).ok()?)
    }

    /// Removes every entry after `last_kept` (a conflicting suffix).
    pub fn truncate_after(&mut self, last_kept: u64) {
        let keep = last_kept.max(self.start_index);
        if keep >= self.last_index {
            return;
        }
        let removed = self.last_index - keep;
        while self.pieces.back().is_some_and(|p| p.first > keep) {
            self.pieces.pop_back();
        }
        if let Some(piece) = self.pieces.back_mut() {
            piece.keep_samples_for(piece.first, keep);
        }
        while self.terms.back().is_some_and(|run| run.first > keep) {
            self.terms.pop_back();
        }
        if self.open.is_some_and(|(index, _)| index > keep) {
            self.open = None;
        }
        self.last_index = keep;
        for _ in 0..removed.min(self.cache.len() as u64) {
            if let Some(e) = self.cache.pop_back() {
                self.cache_bytes -= e.encoded_len();
            }
        }
    }

    /// Appends `entry`, at `last_index() + 1`, whose record is `at`.
    pub fn push(&mut self, at: RecordAt, entry: Entry) {
        let index = entry.index;
        debug_assert_eq!(index, self.last_index + 1);
        match self.pieces.back_mut() {
            // The last record of the group's entries is the previous entry's, which ends the
            // last piece, in the same segment: this record is the piece's next one.
            Some(piece) if self.open == Some((index - 1, at.segment)) => piece.extend(index, at),
            _ => self.pieces.push_back(Piece::new(index, at)),
        }
        self.open = Some((index, at.segment));
        if self.terms.back().map(|run| run.term) != Some(entry.term) {
            self.terms.push_back(TermRun {
                first: index,
                term: entry.term,
            });
        }
        self.last_index = index;
        self.cache_bytes += entry.encoded_len();
        self.cache.push_back(entry);
        while self.cache.len() > 1 && self.cache_bytes > self.cache_limit {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.encoded_len();
            }
        }
    }

    /// Moves the record of the entry at `index` to `at` (a copy of it, with the same term,
    /// written after every record of the log). Returns whether the log holds the entry.
    pub fn relocate(&mut self, index: u64, at: RecordAt) -> bool {
        let Some(p) = self.piece_at(index) else {
            return false;
        };
        let (first, last) = (self.pieces[p].first, self.piece_last(p));
        // The piece holding `index - 1` may end with its record only if that piece is the
        // previous one: within one piece, `index`'s record follows `index - 1`'s.
        let extend_previous = p > 0 && first == index && self.open == Some((index - 1, at.segment));
        // Take `index` out of its piece; the parts keep the span, narrowed to their entries.
        let insert_at = if first == index && last == index {
            self.pieces.remove(p);
            p
        } else if first == index {
            let piece = &mut self.pieces[p];
            piece.first = index + 1;
            piece.keep_samples_for(index + 1, last);
            p
        } else {
            if last > index {
                let mut right = self.pieces[p].clone();
                right.first = index + 1;
                right.keep_samples_for(index + 1, last);
                self.pieces.insert(p + 1, right);
            }
            self.pieces[p].keep_samples_for(first, index - 1);
            p + 1
        };
        if extend_previous {
            self.pieces[p - 1].extend(index, at);
        } else {
            self.pieces.insert(insert_at, Piece::new(index, at));
        }
        self.open = Some((index, at.segment));
        true
    }

    /// Discards the entries up to `index` (which must be in the log), making it the start point.
    pub fn compact_to(&mut self, index: u64, term: u64) {
        debug_assert!(index >= self.start_index && index <= self.last_index);
        let first = index + 1;
        if first > self.last_index {
            self.pieces.clear();
            self.terms.clear();
        } else {
            while self.pieces.get(1).is_some_and(|p| p.first <= first) {
                self.pieces.pop_front();
            }
            while self.terms.get(1).is_some_and(|run| run.first <= first) {
                self.terms.pop_front();
            }
            let last = self.piece_last(0);
            if let Some(piece) = self.pieces.front_mut() {
                piece.first = piece.first.max(first);
                piece.keep_samples_for(piece.first, last);
            }
            if let Some(run) = self.terms.front_mut() {
                run.first = run.first.max(first);
            }
        }
        if self.open.is_some_and(|(open, _)| open <= index) {
            self.open = None;
        }
        let cached_drop = first.saturating_sub(self.cache_first());
        for _ in 0..cached_drop.min(self.cache.len() as u64) {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.encoded_len();
            }
        }
        self.start_index = index;
        self.start_term = term;
        self.last_index = self.last_index.max(index);
    }

    /// Empties the log and sets a new start point (a snapshot was installed).
    pub fn reset(&mut self, index: u64, term: u64) {
        self.pieces.clear();
        self.terms.clear();
        self.open = None;
        self.cache.clear();
        self.cache_bytes = 0;
        self.start_index = index;
        self.start_term = term;
        self.last_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![0u8; 100].into(),
            ..Default::default()
        }
    }

    /// Record `n` of a segment, 200 bytes apart.
    fn at(segment: u64, n: u64) -> RecordAt {
        RecordAt {
            segment,
            offset: 24 + n * 200,
            len: 150,
        }
    }

    /// A log of entries `1..=n` of `term`, `per_segment` to a segment (segments 1, 2, ...).
    fn log_of(n: u64, term: u64, per_segment: u64, cache: usize) -> LogIndex {
        let mut log = LogIndex::new(0, 0, cache);
        for i in 1..=n {
            log.push(
                at(1 + (i - 1) / per_segment, (i - 1) % per_segment),
                entry(i, term),
            );
        }
        log
    }

    fn pieces(log: &LogIndex) -> Vec<(u64, u64, u64, u64)> {
        log.pieces_in(0, u64::MAX)
            .map(|(p, from, to)| (p.segment, p.origin, from, to))
            .collect()
    }

    #[test]
    fn the_cache_keeps_the_latest_entries_within_its_budget() {
        let log = log_of(10, 1, 100, 350);
        assert_eq!(log.last_index(), 10);
        assert!(log.cached(10).is_some() && log.cached(8).is_some());
        assert!(
            log.cached(7).is_none(),
            "three entries of ~105 bytes fit in 350"
        );
        assert_eq!(log.cache_first(), 8);
    }

    #[test]
    fn memory_does_not_grow_with_the_number_of_entries() {
        let mut log = LogIndex::new(0, 0, 0);
        for i in 1..=300_000u64 {
            let term = if i <= 100_000 { 1 } else { 2 };
            log.push(at(1 + (i - 1) / 100_000, (i - 1) % 100_000), entry(i, term));
        }
        assert_eq!(
            log.shape(),
            (3, 2),
            "one piece per segment, one run per term"
        );
        assert_eq!(log.term(100_000), Some(1));
        assert_eq!(log.term(100_001), Some(2));
        assert_eq!(log.cache_first(), 300_000, "only the last entry is cached");
    }

    #[test]
    fn terms_are_answered_across_runs_and_segments() {
        let mut log = LogIndex::new(5, 3, 0);
        let terms = [3, 3, 4, 4, 4, 7, 9, 9];
        for (n, term) in terms.iter().enumerate() {
            let index = 6 + n as u64;
            log.push(at(1 + n as u64 / 3, n as u64 % 3), entry(index, *term));
        }
        assert_eq!(log.term(4), None, "behind the start");
        assert_eq!(log.term(5), Some(3), "the start point");
        for (n, term) in terms.iter().enumerate() {
            assert_eq!(log.term(6 + n as u64), Some(*term), "entry {}", 6 + n);
        }
        assert_eq!(log.term(14), None, "past the end");
        assert_eq!(log.shape(), (3, 4));
    }

    #[test]
    fn truncating_in_the_middle_of_a_run_and_of_a_piece() {
        let mut log = log_of(10, 1, 4, 10_000);
        assert_eq!(pieces(&log), [(1, 1, 1, 5), (2, 5, 5, 9), (3, 9, 9, 11)]);
        // Entry 6 is replaced (inside segment 2's piece and the run of term 1).
        log.truncate_after(5);
        assert_eq!(log.last_index(), 5);
        assert!(log.cached(6).is_none());
        assert_eq!(log.cached(5).unwrap().index, 5);
        assert_eq!(pieces(&log), [(1, 1, 1, 5), (2, 5, 5, 6)]);
        log.push(at(3, 2), entry(6, 2));
        log.push(at(3, 3), entry(7, 2));
        assert_eq!(
            pieces(&log),
            [(1, 1, 1, 5), (2, 5, 5, 6), (3, 6, 6, 8)],
            "a new piece after a truncation, although the segment is the same as before"
        );
        assert_eq!(log.term(5), Some(1));
        assert_eq!(log.term(6), Some(2));
        // A truncation that keeps everything keeps the open piece open.
        log.truncate_after(7);
        log.push(at(3, 4), entry(8, 2));
        assert_eq!(log.shape(), (3, 2));
    }

    #[test]
    fn a_truncation_back_to_the_open_piece_does_not_extend_it() {
        // Entries 1-4 in segment 1; entry 3 is replaced in the same segment: the new record
        // of 3 follows the old ones of 3 and 4, so it cannot join the piece of 1-4.
        let mut log = log_of(4, 1, 10, 0);
        log.truncate_after(2);
        log.push(at(1, 4), entry(3, 2));
        assert_eq!(pieces(&log), [(1, 1, 1, 3), (1, 3, 3, 4)]);
    }

    #[test]
    fn compacting_keeps_the_spans_and_drops_what_is_behind() {
        let mut log = log_of(10, 1, 4, 10_000);
        log.truncate_after(6);
        log.push(at(3, 5), entry(7, 2));
        log.compact_to(3, 1);
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(1));
        assert!(log.cached(3).is_none());
        assert_eq!(log.cached(4).unwrap().index, 4);
        assert_eq!(
            pieces(&log),
            [(1, 1, 4, 5), (2, 5, 5, 7), (3, 7, 7, 8)],
            "the first piece's span still starts at entry 1's record"
        );
        assert_eq!(log.first_record(), Some((1, 24)));
        log.compact_to(6, 1);
        assert_eq!(pieces(&log), [(3, 7, 7, 8)]);
        assert_eq!(log.shape(), (1, 1), "the run of term 1 is gone");
        assert_eq!(log.term(7), Some(2));
        log.compact_to(7, 2);
        assert_eq!(log.shape(), (0, 0));
        assert_eq!(log.first_segment(), None);
        log.push(at(4, 0), entry(8, 2));
        assert_eq!(pieces(&log), [(4, 8, 8, 9)]);
    }

    #[test]
    fn copies_move_entries_into_pieces_of_their_own() {
        let mut log = log_of(9, 1, 3, 0);
        // Entries 4-6 (segment 2) are copied to segment 5, one after the other.
        for (n, index) in (4..=6).enumerate() {
            assert!(log.relocate(index, at(5, n as u64)));
        }
        assert_eq!(
            pieces(&log),
            [(1, 1, 1, 4), (5, 4, 4, 7), (3, 7, 7, 10)],
            "one piece for the three copies"
        );
        // A copy of the middle of a piece splits it; its parts keep their span.
        assert!(log.relocate(8, at(6, 0)));
        assert_eq!(
            pieces(&log),
            [
                (1, 1, 1, 4),
                (5, 4, 4, 7),
                (3, 7, 7, 8),
                (6, 8, 8, 9),
                (3, 7, 9, 10)
            ]
        );
        // The next entry appended after a copy of the last one extends the copy's piece.
        assert!(log.relocate(9, at(6, 1)));
        log.push(at(6, 2), entry(10, 1));
        assert_eq!(pieces(&log)[3..], [(6, 8, 8, 11)]);
        assert!(!log.relocate(11, at(6, 3)), "not in the log");
        assert!(!log.relocate(0, at(6, 3)), "behind the start");
        assert_eq!(log.shape().1, 1, "copies keep the terms");
    }

    #[test]
    fn a_copy_of_the_first_entry_of_a_piece_does_not_join_an_unrelated_piece() {
        let mut log = log_of(6, 1, 3, 0);
        // The last record written is entry 6's (segment 2); entry 4 is copied to segment 2:
        // entry 3's record is not the group's last record, so the copy starts a piece.
        assert!(log.relocate(4, at(2, 3)));
        assert_eq!(pieces(&log), [(1, 1, 1, 4), (2, 4, 4, 5), (2, 4, 5, 7)]);
    }

    /// Record `n` of segment 1, 8 KiB apart.
    fn far(n: u64) -> RecordAt {
        RecordAt {
            segment: 1,
            offset: 24 + n * 8192,
            len: 8000,
        }
    }

    fn samples(log: &LogIndex) -> Vec<Vec<u64>> {
        log.pieces
            .iter()
            .map(|p| p.samples.iter().map(|s| s.index).collect())
            .collect()
    }

    #[test]
    fn a_piece_samples_its_records_every_4_mib_and_1024_entries() {
        let mut log = LogIndex::new(0, 0, 0);
        for i in 1..=5000 {
            log.push(far(i - 1), entry(i, 1));
        }
        // 8 KiB records: 512 of them make 4 MiB, so the 1,024 entries decide.
        assert_eq!(samples(&log), [vec![1025, 2049, 3073, 4097]]);
        let piece = &log.pieces[0];
        assert_eq!(
            piece.sample_for(1024),
            Anchor {
                index: 1,
                offset: 24
            }
        );
        assert_eq!(
            piece.sample_for(2048),
            Anchor {
                index: 1025,
                offset: far(1024).offset
            }
        );
        assert_eq!(piece.sample_for(9999).index, 4097);
        log.truncate_after(3000);
        assert_eq!(samples(&log), [vec![1025, 2049]], "after the truncation");
        log.compact_to(2100, 1);
        assert_eq!(
            samples(&log),
            [vec![2049]],
            "the last sample before the first entry stays"
        );
        // A copy of entry 2500 splits the piece: each part keeps the samples it can use.
        let copy = RecordAt {
            segment: 2,
            offset: 24,
            len: 8000,
        };
        assert!(log.relocate(2500, copy));
        assert_eq!(samples(&log), [vec![2049], vec![], vec![2049]]);
    }

    #[test]
    fn a_reset_empties_the_log() {
        let mut log = log_of(6, 1, 3, 10_000);
        log.reset(20, 4);
        assert_eq!((log.first_index(), log.last_index()), (21, 20));
        assert_eq!(log.shape(), (0, 0));
        assert_eq!(log.term(20), Some(4));
        assert!(log.cached(6).is_none());
        log.push(at(3, 0), entry(21, 4));
        assert_eq!(pieces(&log), [(3, 21, 21, 22)]);
    }
}
