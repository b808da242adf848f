//! [`AnchorCache`]: positions inside pieces found by earlier scans, so that a read of old
//! entries resumes where the previous one stopped instead of scanning again from the piece's
//! nearest resident sample.
//!
//! # Why a small cache of positions on top of the samples
//!
//! The log index keeps no per-entry position (see `log_index`): a piece names the span of its
//! records and keeps a resident sample every 4 MiB (and 1,024 entries) of it. To read entry `i`,
//! a reader scans the span's records from a known position, counting the group's entry records
//! (the `n`-th one after a position of entry `j` is entry `j + n`). The samples bound a first
//! read to about 4 MiB of scanning, but a follower catching up, or an application reading its
//! committed entries after a restart, reads page after page (a megabyte each, say): scanning
//! from the sample every time would read each page about twice over on average, and a page of
//! one small entry would cost a scan of megabytes. So the scans leave positions behind, and
//! the next read starts from the closest one. The two ways the issue named were weighed:
//! - a denser resident sample (one every `K` entries) grows with the number of entries, which
//!   is what the sparse index removes;
//! - a per-segment table of every entry's offset, built by a scan and kept in a small LRU,
//!   costs 8 bytes per entry of the segments read recently (3.5 MiB for a 64 MiB segment of
//!   128-byte entries, far more with 1 GiB segments) and a scan of the whole segment to build.
//!
//! What is kept instead is a table per span of a few *anchors* `(index, offset)`: the first of
//! the group's entry records at or after `offset` in the span is entry `index`. A scan records
//! one at the first of the group's records it meets at least [`ANCHOR_BYTES`] after the
//! previous one, and one *cursor* where it stopped, so that the next read of the following
//! entries resumes there. Anchors in a table are at least [`ANCHOR_BYTES`] apart, so once a
//! stretch was scanned, a read starts within about twice that of its first entry's record
//! (plus, in a multi-group log, the other groups' records between two of the group's own), and
//! a table holds at most `span / ANCHOR_BYTES + 2` anchors of 16 bytes.
//!
//! Memory: at most [`ANCHOR_TABLES`] tables, each at most `16 * (segment_bytes / 64 KiB + 2)`
//! bytes: 16 KiB per table and 256 KiB in all with 64 MiB segments, 4 MiB in all with the
//! largest segments (1 GiB). The least recently used table goes first; the tables of deleted
//! segments go with them.

use std::sync::{Mutex, MutexGuard};

use crate::log_index::Anchor;

/// Anchors in a table are at least this many bytes apart.
pub const ANCHOR_BYTES: u64 = 64 << 10;

/// The most spans whose anchors are kept.
pub const ANCHOR_TABLES: usize = 16;

/// Which span a table belongs to: the group, the segment and the offset of the span's first
/// record (a piece split in two keeps its span, and both parts share the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanKey {
    /// The group whose entry records are counted.
    pub group: u64,
    /// The segment.
    pub segment: u64,
    /// The offset of the span's first record.
    pub start: u64,
}

#[derive(Debug)]
struct Table {
    key: SpanKey,
    /// In increasing order of index (and offset), at least `ANCHOR_BYTES` apart.
    anchors: Vec<Anchor>,
    /// Where the last scan of the span stopped.
    cursor: Option<Anchor>,
}

/// The anchor tables of the spans read most recently (see the module docs). Shared by the
/// readers of a log, behind a lock of its own: reads take it twice, briefly, and never while
/// reading the disk.
#[derive(Debug, Default)]
pub struct AnchorCache {
    /// Most recently used last.
    tables: Mutex<Vec<Table>>,
}

impl AnchorCache {
    fn lock(&self) -> MutexGuard<'_, Vec<Table>> {
        // A panic while holding the lock leaves at worst a table with fewer anchors, each
        // inserted whole: still valid.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The best known position to scan from for entry `index` of span `key`: the anchor or
    /// cursor of the greatest index at most `index`, if the table knows one, with the offset of
    /// the last anchor at or before it (the next anchor goes [`ANCHOR_BYTES`] after that one).
    pub fn find(&self, key: SpanKey, index: u64) -> Option<(Anchor, Option<u64>)> {
        let mut tables = self.lock();
        let at = tables.iter().position(|t| t.key == key)?;
        let table = tables.remove(at);
        let below = table.anchors.partition_point(|a| a.index <= index);
        let anchor = below.checked_sub(1).map(|b| table.anchors[b]);
        let best = match (anchor, table.cursor) {
            (Some(a), Some(c)) if c.index <= index && c.index >= a.index => {
                // The last anchor at or before the cursor may lie past `index`'s.
                let spaced = table.anchors.partition_point(|x| x.offset <= c.offset);
                Some((c, spaced.checked_sub(1).map(|s| table.anchors[s].offset)))
            }
            (None, Some(c)) if c.index <= index => Some((c, None)),
            (a, _) => a.map(|a| (a, Some(a.offset))),
        };
        tables.push(table);
        best
    }

    /// Records what a scan of span `key` found: `anchors` (in increasing order) and the
    /// `cursor` where it stopped.
    pub fn record(&self, key: SpanKey, anchors: &[Anchor], cursor: Anchor) {
        let mut tables = self.lock();
        let mut table = match tables.iter().position(|t| t.key == key) {
            Some(at) => tables.remove(at),
            None => Table {
                key,
                anchors: Vec::new(),
                cursor: None,
            },
        };
        for &anchor in anchors {
            let at = table.anchors.partition_point(|a| a.offset < anchor.offset);
            let far_from = |other: Option<&Anchor>| {
                other.is_none_or(|o| o.offset.abs_diff(anchor.offset) >= ANCHOR_BYTES)
            };
            let previous = at.checked_sub(1).and_then(|p| table.anchors.get(p));
            if far_from(previous) && far_from(table.anchors.get(at)) {
                table.anchors.insert(at, anchor);
            }
        }
        table.cursor = Some(cursor);
        if tables.len() >= ANCHOR_TABLES {
            tables.remove(0);
        }
        tables.push(table);
    }

    /// Forgets the tables of the segments below `first` (deleted).
    pub fn forget_below(&self, first: u64) {
        self.lock().retain(|t| t.key.segment >= first);
    }

    /// The number of tables and of anchors in them (cursors included).
    pub fn size(&self) -> (usize, usize) {
        let tables = self.lock();
        let anchors = tables
            .iter()
            .map(|t| t.anchors.len() + usize::from(t.cursor.is_some()))
            .sum();
        (tables.len(), anchors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(segment: u64) -> SpanKey {
        SpanKey {
            group: 1,
            segment,
            start: 24,
        }
    }

    fn anchor(index: u64, offset: u64) -> Anchor {
        Anchor { index, offset }
    }

    #[test]
    fn the_best_anchor_is_the_last_one_at_or_before_the_entry() {
        let cache = AnchorCache::default();
        assert_eq!(cache.find(key(1), 10), None);
        let anchors = [anchor(100, 70_000), anchor(200, 140_000)];
        cache.record(key(1), &anchors, anchor(250, 170_000));
        assert_eq!(cache.find(key(1), 99), None);
        assert_eq!(
            cache.find(key(1), 150),
            Some((anchor(100, 70_000), Some(70_000)))
        );
        assert_eq!(
            cache.find(key(1), 249),
            Some((anchor(200, 140_000), Some(140_000)))
        );
        assert_eq!(
            cache.find(key(1), 250),
            Some((anchor(250, 170_000), Some(140_000))),
            "the cursor, after the anchor of 200"
        );
        assert_eq!(cache.find(key(2), 250), None, "another span");
        cache.record(key(3), &[], anchor(7, 500));
        assert_eq!(
            cache.find(key(3), 7),
            Some((anchor(7, 500), None)),
            "a cursor alone"
        );
    }

    #[test]
    fn anchors_closer_than_anchor_bytes_are_not_kept() {
        let cache = AnchorCache::default();
        let far = [anchor(10, 100_000), anchor(20, 200_000)];
        cache.record(key(1), &far, anchor(20, 200_000));
        let near = [
            anchor(11, 110_000),
            anchor(15, 150_000),
            anchor(30, 300_000),
        ];
        cache.record(key(1), &near, anchor(31, 300_100));
        // 110,000 and 150,000 are within 64 KiB of 100,000 or 200,000; 300,000 is not.
        assert_eq!(cache.size(), (1, 4));
        assert_eq!(cache.find(key(1), 16).unwrap().0, anchor(10, 100_000));
        assert_eq!(cache.find(key(1), 30).unwrap().0, anchor(30, 300_000));
    }

    #[test]
    fn the_least_recently_used_table_goes_first_and_deleted_segments_go() {
        let cache = AnchorCache::default();
        for segment in 1..=ANCHOR_TABLES as u64 {
            cache.record(key(segment), &[], anchor(segment, 24));
        }
        assert!(cache.find(key(1), 1).is_some(), "used last");
        cache.record(key(100), &[], anchor(100, 24));
        assert_eq!(cache.size().0, ANCHOR_TABLES);
        assert!(cache.find(key(1), 1).is_some());
        assert!(cache.find(key(2), 2).is_none(), "the least recently used");
        cache.forget_below(10);
        assert!(cache.find(key(1), 1).is_none());
        assert!(cache.find(key(10), 10).is_some());
        assert_eq!(cache.size().0, ANCHOR_TABLES - 8);
    }
}
