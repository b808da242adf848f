//! [`ChunkedLog`]: the vector of entries behind `MemStorageCore`, kept in fixed-size chunks.
//!
//! A single `Vec` holding millions of entries is reallocated every time it doubles, and each
//! reallocation copies the whole log and touches fresh pages for all of it. In chunks, appending
//! never moves an entry already stored, and discarding a compacted prefix frees whole chunks
//! instead of shifting the rest of the log down.

/// A log of `T` in chunks of `CHUNK` slots: the entry at position `i` lives in slot
/// `(skip + i) % CHUNK` of chunk `(skip + i) / CHUNK`. Every chunk but the last is full. The
/// first `skip` slots of the first chunk are the discarded front of the log (reset to
/// `T::default()`, so they hold no payload).
///
/// The first chunk grows like a `Vec` (a small log stays small); later chunks are allocated at
/// full size once.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedLog<T, const CHUNK: usize> {
    chunks: Vec<Vec<T>>,
    skip: usize,
}

impl<T, const CHUNK: usize> Default for ChunkedLog<T, CHUNK> {
    fn default() -> Self {
        ChunkedLog {
            chunks: Vec::new(),
            skip: 0,
        }
    }
}

impl<T: Default, const CHUNK: usize> ChunkedLog<T, CHUNK> {
    /// Slots in use, the discarded front included.
    fn slots(&self) -> usize {
        match self.chunks.last() {
            None => 0,
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
        }
    }

    /// How many entries the log holds.
    pub(crate) fn len(&self) -> usize {
        self.slots() - self.skip
    }

    /// The entry at position `i`, if there is one.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len() {
            return None;
        }
        let slot = self.skip + i;
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    /// The entries at positions `[start, end)`, in order (`end` is capped at `len`).
    pub(crate) fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &T> + '_ {
        let end = end.min(self.len());
        let start = start.min(end);
        let (first, last) = (self.skip + start, self.skip + end);
        self.chunks
            .iter()
            .enumerate()
            .skip(first / CHUNK)
            .take_while(move |(k, _)| k * CHUNK < last)
            .flat_map(move |(k, chunk)| {
                let lo = first.saturating_sub(k * CHUNK).min(chunk.len());
                let hi = (last - k * CHUNK).min(chunk.len());
                chunk[lo..hi].iter()
            })
    }

    /// Appends one entry after the last.
    pub(crate) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = if self.chunks.is_empty() {
                    // Room for exactly one: a group that is elected and then idle holds only
                    // its leader's empty entry (a plain push would make room for four).
                    Vec::with_capacity(1)
                } else {
                    Vec::with_capacity(CHUNK)
                };
                chunk.push(value);
                if self.chunks.capacity() == 0 {
                    self.chunks.reserve_exact(1);
                }
                self.chunks.push(chunk);
            }
        }
    }

    /// Keeps the first `len` entries and drops the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        let slots = self.skip + len;
        if slots == 0 {
            self.chunks.clear();
            return;
        }
        let keep_chunks = slots.div_ceil(CHUNK);
        self.chunks.truncate(keep_chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(slots - (keep_chunks - 1) * CHUNK);
        }
    }

    /// Discards the first `count` entries (all of them if `count >= len`).
    pub(crate) fn discard_front(&mut self, count: usize) {
        if count >= self.len() {
            self.clear();
            return;
        }
        let skip = self.skip + count;
        let whole = skip / CHUNK;
        self.chunks.drain(..whole);
        self.skip = skip % CHUNK;
        if let Some(first) = self.chunks.first_mut() {
            // Release the payloads of the discarded slots; the slots themselves go with the chunk.
            for slot in &mut first[..self.skip] {
                *slot = T::default();
            }
        }
    }

    /// Where each chunk's buffer lives and how large it is (tests check that nothing moved).
    #[cfg(test)]
    pub(crate) fn chunk_buffers(&self) -> Vec<(*const T, usize)> {
        self.chunks
            .iter()
            .map(|c| (c.as_ptr(), c.capacity()))
            .collect()
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.skip = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = ChunkedLog<u64, 4>;

    fn log_of(range: std::ops::Range<u64>) -> Log {
        let mut log = Log::default();
        for v in range {
            log.push(v);
        }
        log
    }

    fn all(log: &Log) -> Vec<u64> {
        log.range(0, log.len()).copied().collect()
    }

    #[test]
    fn push_get_and_range_across_chunks() {
        let log = log_of(1..11);
        assert_eq!(log.len(), 10);
        assert_eq!(log.chunks.len(), 3);
        assert_eq!(all(&log), (1..11).collect::<Vec<_>>());
        for i in 0..10 {
            assert_eq!(log.get(i), Some(&(i as u64 + 1)));
        }
        assert_eq!(log.get(10), None);
        for start in 0..=10 {
            for end in start..=12 {
                let got: Vec<u64> = log.range(start, end).copied().collect();
                let want: Vec<u64> = (start as u64 + 1..end.min(10) as u64 + 1).collect();
                assert_eq!(got, want, "range({start}, {end})");
            }
        }
    }

    #[test]
    fn later_chunks_are_allocated_whole_and_the_first_grows() {
        let log = log_of(1..2);
        assert!(log.chunks[0].capacity() < 4 || log.chunks[0].capacity() == 4);
        let log = log_of(1..6);
        assert_eq!(log.chunks[1].capacity(), 4);
    }

    #[test]
    fn truncate_at_every_length() {
        for len in 0..=11 {
            let mut log = log_of(1..11);
            log.truncate(len);
            assert_eq!(all(&log), (1..=len.min(10) as u64).collect::<Vec<_>>());
            log.push(100);
            assert_eq!(
                log.get(len.min(10)),
                Some(&100),
                "append after truncate({len})"
            );
        }
    }

    #[test]
    fn discard_front_at_every_count_then_truncate_and_push() {
        for count in 0..=11 {
            let mut log = log_of(1..11);
            log.discard_front(count);
            let rest: Vec<u64> = (count.min(10) as u64 + 1..11).collect();
            assert_eq!(all(&log), rest, "discard_front({count})");
            assert!(log
                .chunks
                .first()
                .is_none_or(|c| c[..log.skip].iter().all(|v| *v == 0)));
            log.push(100);
            assert_eq!(log.get(log.len() - 1), Some(&100));
            for keep in 0..=log.len() {
                let mut t = log.clone();
                t.truncate(keep);
                assert_eq!(t.len(), keep);
                t.push(7);
                assert_eq!(t.get(keep), Some(&7));
                assert_eq!(t.len(), keep + 1);
            }
        }
    }

    #[test]
    fn clear_empties() {
        let mut log = log_of(1..11);
        log.discard_front(3);
        log.clear();
        assert_eq!(log.len(), 0);
        log.push(5);
        assert_eq!(all(&log), vec![5]);
    }
}
