//! The in-memory view of the log: where each entry is on disk, and a bounded cache of the most
//! recent entries.
//!
//! Memory: one [`Location`] (24 bytes) per entry in the log, plus the cache, which never holds
//! more than its byte budget (counted as the entries' encoded sizes) but always at least the last
//! entry appended. So memory grows with the number of entries kept between compactions (24 bytes
//! each, about 24 MiB per million entries), not with their size; compaction releases it.

use std::collections::VecDeque;

use prost::Message as _;
use raft_core::eraftpb::Entry;

/// Where an entry's record is: 24 bytes per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The entry's term (kept here so `term()` never reads the disk).
    pub term: u64,
    /// The byte offset of the record in its segment.
    pub offset: u64,
    /// The segment id.
    pub segment: u32,
    /// The record's length (header and payload) in bytes.
    pub len: u32,
}

/// The log's entries after the start point `(start_index, start_term)`, located on disk, the
/// latest ones also cached.
#[derive(Debug, Default)]
pub struct LogIndex {
    start_index: u64,
    start_term: u64,
    locations: VecDeque<Location>,
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
        self.start_index + self.locations.len() as u64
    }

    /// The term of the entry at `index`, if the log knows it (the start point included).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.start_index {
            return Some(self.start_term);
        }
        self.location(index).map(|l| l.term)
    }

    /// Where the entry at `index` is, if it is in the log.
    pub fn location(&self, index: u64) -> Option<&Location> {
        let offset = index.checked_sub(self.first_index())?;
        self.locations.get(usize::try_from(offset).ok()?)
    }

    /// The segment of the first entry, if the log is not empty.
    pub fn first_segment(&self) -> Option<u64> {
        self.locations.front().map(|l| u64::from(l.segment))
    }

    /// The cached entry at `index`, if the cache holds it.
    pub fn cached(&self, index: u64) -> Option<&Entry> {
        let cache_first = self.last_index() + 1 - self.cache.len() as u64;
        if index < cache_first || index > self.last_index() {
            return None;
        }
        self.cache.get((index - cache_first) as usize)
    }

    /// Removes every entry after `last_kept` (a conflicting suffix).
    pub fn truncate_after(&mut self, last_kept: u64) {
        let keep = last_kept.saturating_sub(self.start_index) as usize;
        let removed = self.locations.len().saturating_sub(keep);
        self.locations.truncate(keep);
        for _ in 0..removed.min(self.cache.len()) {
            if let Some(e) = self.cache.pop_back() {
                self.cache_bytes -= e.encoded_len();
            }
        }
    }

    /// Appends the entry at `last_index() + 1`, stored at `location`.
    pub fn push(&mut self, location: Location, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.locations.push_back(location);
        self.cache_bytes += entry.encoded_len();
        self.cache.push_back(entry);
        while self.cache.len() > 1 && self.cache_bytes > self.cache_limit {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.encoded_len();
            }
        }
    }

    /// Moves the record of the entry at `index` to `location` (a copy of it, with the same
    /// term). Returns whether the log holds the entry.
    pub fn relocate(&mut self, index: u64, location: Location) -> bool {
        let Some(offset) = index.checked_sub(self.first_index()) else {
            return false;
        };
        match usize::try_from(offset)
            .ok()
            .and_then(|at| self.locations.get_mut(at))
        {
            Some(slot) => {
                *slot = location;
                true
            }
            None => false,
        }
    }

    /// Discards the entries up to `index` (which must be in the log), making it the start point.
    pub fn compact_to(&mut self, index: u64, term: u64) {
        let drop = (index - self.start_index) as usize;
        let cache_first = self.last_index() + 1 - self.cache.len() as u64;
        let cached_drop = (index + 1).saturating_sub(cache_first) as usize;
        for _ in 0..cached_drop.min(self.cache.len()) {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.encoded_len();
            }
        }
        self.locations.drain(..drop.min(self.locations.len()));
        self.start_index = index;
        self.start_term = term;
    }

    /// Empties the log and sets a new start point (a snapshot was installed).
    pub fn reset(&mut self, index: u64, term: u64) {
        self.locations.clear();
        self.cache.clear();
        self.cache_bytes = 0;
        self.start_index = index;
        self.start_term = term;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            index,
            term: 1,
            data: vec![0u8; 100].into(),
            ..Default::default()
        }
    }

    fn loc(index: u64) -> Location {
        Location {
            term: 1,
            offset: index * 200,
            segment: 1,
            len: 150,
        }
    }

    #[test]
    fn the_cache_keeps_the_latest_entries_within_its_budget() {
        let mut log = LogIndex::new(0, 0, 350);
        for i in 1..=10 {
            log.push(loc(i), entry(i));
        }
        assert_eq!(log.last_index(), 10);
        assert!(log.cached(10).is_some() && log.cached(8).is_some());
        assert!(
            log.cached(7).is_none(),
            "three entries of ~105 bytes fit in 350"
        );
        assert_eq!(log.location(1), Some(&loc(1)));
    }

    #[test]
    fn truncating_and_compacting_keep_the_cache_a_suffix() {
        let mut log = LogIndex::new(0, 0, 10_000);
        for i in 1..=10 {
            log.push(loc(i), entry(i));
        }
        log.truncate_after(6);
        assert_eq!(log.last_index(), 6);
        assert!(log.cached(7).is_none());
        assert_eq!(log.cached(6).unwrap().index, 6);
        log.compact_to(3, 1);
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(1));
        assert!(log.cached(3).is_none());
        assert_eq!(log.cached(4).unwrap().index, 4);
        log.push(loc(7), entry(7));
        assert_eq!(log.cached(7).unwrap().index, 7);
    }
}
