//! [`Unstable`]: the tail of the log that the application has not yet persisted.

use raft_proto::eraftpb::{Entry, Snapshot};
use std::sync::Arc;

/// Entries (and possibly an incoming snapshot) accepted by the node but not yet reported persisted.
///
/// The tail holds the entries from `offset` on, in two parts: first those *lent* out, handed to
/// the application in a `Ready` for persisting and shared with it (so handing them out copies no
/// entry), then `entries`, which have not been handed out yet.
#[derive(Debug, Default, Clone)]
pub struct Unstable {
    /// An incoming snapshot not yet persisted (boxed: rare, and large inline in every node).
    pub snapshot: Option<Box<Snapshot>>,
    /// The entries handed out for persisting, oldest first: allocated only while some are out.
    lent: Option<Box<Lent>>,
    /// The entries after the lent ones, not handed out yet.
    pub entries: Vec<Entry>,
    /// The index of the first entry held, lent or not (or where the next entry would go when the
    /// tail is empty).
    pub offset: u64,
    /// Whether `snapshot` has already been handed out for persistence.
    pub snapshot_in_progress: bool,
    /// How many entries the last buffer held when it was handed out: the next buffer starts with
    /// room for as many, rather than growing through 4, 8, 16... every batch.
    pub(crate) batch_hint: u32,
}

/// Lent entries: each chunk is one `Ready`'s entries (with that Ready's number), shared with the
/// `Ready` until it is dropped. `len` is the total.
#[derive(Debug, Default, Clone)]
struct Lent {
    chunks: Vec<LentChunk>,
    len: usize,
}

/// The entries one `Ready` carried, and its number: only a report that this Ready (or a later
/// one) was persisted may mark them durable.
#[derive(Debug, Clone)]
struct LentChunk {
    ready: u64,
    entries: Arc<Vec<Entry>>,
}

/// The most room a new buffer starts with (see `Unstable::batch_hint`).
const MAX_BATCH_HINT: usize = 1024;

/// The entries of a chunk, moved out if nothing else holds the chunk, copied otherwise.
fn unwrap_chunk(chunk: Arc<Vec<Entry>>) -> Vec<Entry> {
    Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone())
}

impl Unstable {
    /// An empty unstable log whose next entry will have index `offset`.
    pub fn new(offset: u64) -> Unstable {
        Unstable {
            offset,
            ..Default::default()
        }
    }

    /// How many entries are handed out for persisting and not yet reported durable.
    #[inline]
    pub fn in_progress(&self) -> usize {
        self.lent.as_ref().map_or(0, |l| l.len)
    }

    /// How many entries the tail holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.in_progress() + self.entries.len()
    }

    /// Whether the tail holds no entry (it may still hold a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nothing in it at all: no entry (handed out or not) and no snapshot.
    pub(crate) fn is_idle(&self) -> bool {
        self.is_empty() && self.snapshot.is_none() && !self.snapshot_in_progress
    }

    /// The first index, if the unstable log holds a snapshot (one past the snapshot's index).
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot
            .as_ref()
            .map(|s| s.metadata.as_ref().map_or(0, |m| m.index) + 1)
    }

    /// The last index held here (last entry, else the snapshot's index), if any.
    pub fn maybe_last_index(&self) -> Option<u64> {
        match self.len() {
            0 => self.maybe_first_index().map(|i| i - 1),
            n => Some(self.offset + n as u64 - 1),
        }
    }

    /// The last index of the whole log: this tail's last entry or snapshot, else the entry just
    /// before `offset`, which is the last stable entry (the offset always follows the stable log:
    /// it starts at storage's last index + 1 and moves only as entries are stabilised or the
    /// tail is replaced). Saves asking storage, which may take a lock, on every call.
    #[inline]
    pub fn last_index(&self) -> u64 {
        match self.len() {
            0 => match &self.snapshot {
                Some(s) => s.metadata.as_ref().map_or(0, |m| m.index),
                None => self.offset.saturating_sub(1),
            },
            n => self.offset + n as u64 - 1,
        }
    }

    /// The entry at position `pos` of the tail (index `offset + pos`), lent or not.
    fn get(&self, pos: usize) -> Option<&Entry> {
        let mut pos = pos;
        if let Some(lent) = &self.lent {
            if pos < lent.len {
                for chunk in &lent.chunks {
                    if pos < chunk.entries.len() {
                        return chunk.entries.get(pos);
                    }
                    pos -= chunk.entries.len();
                }
                return None;
            }
            pos -= lent.len;
        }
        self.entries.get(pos)
    }

    /// The term of the entry at `index`, if this tail knows it.
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let meta = self.snapshot.as_ref()?.metadata.as_ref()?;
            return (meta.index == index).then_some(meta.term);
        }
        let pos = usize::try_from(index - self.offset).ok()?;
        self.get(pos).map(|e| e.term)
    }

    /// The entries not yet handed out for persistence.
    pub fn not_in_progress(&self) -> &[Entry] {
        &self.entries
    }

    /// The snapshot, if it has not been handed out for persistence yet.
    pub fn snapshot_not_in_progress(&self) -> Option<&Snapshot> {
        self.snapshot
            .as_deref()
            .filter(|_| !self.snapshot_in_progress)
    }

    /// Hands out every entry not handed out yet (and the snapshot) for persistence in the Ready
    /// numbered `ready`. The entries are shared, not copied: the returned chunk is the `Ready`'s,
    /// and the tail keeps reading them until a report for that Ready (or a later one) says they
    /// are durable.
    pub fn lend(&mut self, ready: u64) -> Option<Arc<Vec<Entry>>> {
        self.snapshot_in_progress = self.snapshot.is_some();
        if self.entries.is_empty() {
            return None;
        }
        let entries = std::mem::take(&mut self.entries);
        self.batch_hint = entries.len().min(MAX_BATCH_HINT) as u32;
        let len = entries.len();
        let chunk = Arc::new(entries);
        let lent = self.lent.get_or_insert_with(Box::default);
        lent.chunks.push(LentChunk {
            ready,
            entries: chunk.clone(),
        });
        lent.len += len;
        Some(chunk)
    }

    /// Marks every entry, and the snapshot, handed out for persistence ([`Unstable::lend`]
    /// without keeping the chunk, as Ready number 0: any report may mark them durable).
    pub fn mark_all_in_progress(&mut self) {
        let _ = self.lend(0);
    }

    /// The entries are durable up to `index`, which had `term` when it was written: drop them.
    /// Returns false (and keeps everything) when the entry at `index` no longer has `term`, because a
    /// newer leader overwrote it after it was handed out (the ABA case of async storage writes).
    pub fn stable_entries(&mut self, index: u64, term: u64) -> bool {
        self.take_stable_entries(index, term, u64::MAX).is_some()
    }

    /// [`Unstable::stable_entries`] for a report that the Readys numbered up to `ready` were
    /// persisted, giving the now durable entries to the caller instead of dropping them. `None`,
    /// and nothing changes, unless the entry at `index` still has `term` *and* was lent by one of
    /// those Readys: an entry never handed out, or handed out again by a later Ready (after a
    /// snapshot or a newer leader replaced the log), is not on disk just because an earlier
    /// Ready's identical entry was written (the write that replaced it may come later). A lent
    /// chunk that its `Ready` no longer holds is moved out whole, so neither side copies an entry.
    pub fn take_stable_entries(&mut self, index: u64, term: u64, ready: u64) -> Option<Vec<Entry>> {
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return None;
        }
        let lent = self.lent.as_mut()?;
        let mut count = (index - self.offset + 1) as usize;
        if count > lent.len {
            return None;
        }
        // The chunk holding `index` (and so every one before it) must be this report's.
        let mut covered = 0;
        for chunk in &lent.chunks {
            covered += chunk.entries.len();
            if covered >= count {
                if chunk.ready > ready {
                    return None;
                }
                break;
            }
        }
        let mut taken: Vec<Entry> = Vec::new();
        let give = |part: Vec<Entry>, taken: &mut Vec<Entry>| {
            if taken.is_empty() {
                *taken = part;
            } else {
                taken.extend(part);
            }
        };
        let mut whole = 0;
        let mut covered = 0;
        for chunk in &lent.chunks {
            if covered + chunk.entries.len() > count {
                break;
            }
            covered += chunk.entries.len();
            whole += 1;
        }
        for chunk in lent.chunks.drain(..whole) {
            give(unwrap_chunk(chunk.entries), &mut taken);
        }
        lent.len -= covered;
        count -= covered;
        if count > 0 {
            // Durable up to the middle of a chunk: split it.
            let chunk = Arc::make_mut(&mut lent.chunks[0].entries);
            let rest = chunk.split_off(count);
            give(std::mem::replace(chunk, rest), &mut taken);
            lent.len -= count;
        }
        if lent.len == 0 {
            self.lent = None;
        }
        self.offset = index + 1;
        Some(taken)
    }

    /// The snapshot at `index` is durable: drop it.
    pub fn stable_snapshot(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.index)
            == Some(index)
        {
            self.snapshot = None;
            self.snapshot_in_progress = false;
        }
    }

    /// Replaces the whole tail with a snapshot.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        self.lent = None;
        self.entries.clear();
        self.offset = index + 1;
        self.snapshot = Some(Box::new(snapshot));
        self.snapshot_in_progress = false;
    }

    /// Appends `entries` (contiguous, non-empty), replacing whatever this tail holds at and after the
    /// first new index. The caller guarantees the first index is at most `last index + 1`.
    pub fn truncate_and_append(&mut self, entries: &[Entry]) {
        self.truncate_and_append_owned(entries.to_vec());
    }

    /// Appends one entry that directly follows the last one (a leader's proposal).
    #[inline]
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.offset + self.len() as u64);
        if self.entries.capacity() == 0 {
            self.entries.reserve(self.batch_hint.max(4) as usize);
        }
        self.entries.push(entry);
    }

    /// Keeps the first `keep` entries of the tail (`keep` at most its length).
    fn truncate(&mut self, keep: usize) {
        let lent_len = self.in_progress();
        if keep >= lent_len {
            self.entries.truncate(keep - lent_len);
            return;
        }
        // Lent entries are replaced: the Readys that carry them keep their own copies, and their
        // later reports of durability are refused by the term check in `take_stable_entries`.
        self.entries.clear();
        if keep == 0 {
            self.lent = None;
            return;
        }
        if let Some(lent) = &mut self.lent {
            let mut left = keep;
            let mut kept = 0;
            for chunk in &mut lent.chunks {
                kept += 1;
                let len = chunk.entries.len();
                if left <= len {
                    if left < len {
                        Arc::make_mut(&mut chunk.entries).truncate(left);
                    }
                    break;
                }
                left -= len;
            }
            lent.chunks.truncate(kept);
            lent.len = keep;
        }
    }

    /// [`Unstable::truncate_and_append`] taking the entries by value (moved, not copied).
    pub fn truncate_and_append_owned(&mut self, mut entries: Vec<Entry>) {
        let Some(first) = entries.first() else {
            return;
        };
        let after = first.index;
        let end = self.offset + self.len() as u64;
        if after == end {
            // The common case: a plain extension.
        } else if after <= self.offset {
            // Everything held here is replaced.
            self.offset = after;
            self.lent = None;
            self.entries.clear();
        } else {
            self.truncate((after - self.offset) as usize);
        }
        if self.entries.is_empty() && entries.capacity() >= self.batch_hint as usize {
            // Take the caller's buffer as is: no copy at all.
            self.entries = entries;
        } else {
            if self.entries.capacity() == 0 {
                self.entries
                    .reserve(entries.len().max(self.batch_hint as usize));
            }
            self.entries.append(&mut entries);
        }
    }

    /// The entries in `[low, high)`, as consecutive slices (a lent chunk each, then the entries not
    /// handed out); the caller has checked the range lies within this tail.
    pub fn slices(&self, low: u64, high: u64) -> impl Iterator<Item = &[Entry]> + '_ {
        let start = (low - self.offset) as usize;
        let end = (high - self.offset) as usize;
        let lent = self
            .lent
            .as_ref()
            .map(|l| l.chunks.as_slice())
            .unwrap_or(&[]);
        lent.iter()
            .map(|c| c.entries.as_slice())
            .chain(std::iter::once(self.entries.as_slice()))
            .scan(0usize, move |pos, part| {
                let (lo, hi) = (*pos, *pos + part.len());
                *pos = hi;
                let s = start.clamp(lo, hi) - lo;
                let e = end.clamp(lo, hi) - lo;
                Some(&part[s..e])
            })
            .filter(|part| !part.is_empty())
    }

    /// Lends the first `n` entries not handed out yet, as a Ready would (tests).
    #[cfg(test)]
    pub(crate) fn lend_first(&mut self, n: usize) -> Option<Arc<Vec<Entry>>> {
        let rest = self.entries.split_off(n.min(self.entries.len()));
        let chunk = self.lend(0);
        self.entries = rest;
        chunk
    }

    /// Every entry held, lent or not, in order (for tests and diagnostics; it copies them).
    pub fn all_entries(&self) -> Vec<Entry> {
        let mut all = Vec::with_capacity(self.len());
        if let Some(lent) = &self.lent {
            for chunk in &lent.chunks {
                all.extend_from_slice(&chunk.entries);
            }
        }
        all.extend_from_slice(&self.entries);
        all
    }
}

#[cfg(test)]
#[path = "unstable_tests.rs"]
mod tests;
