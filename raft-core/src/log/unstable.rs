//! [`Unstable`]: the tail of the log that the application has not yet persisted.

use raft_proto::eraftpb::{Entry, Snapshot};

/// Entries (and possibly an incoming snapshot) accepted by the node but not yet reported persisted.
///
/// `entries[i]` has index `offset + i`. The first `in_progress` entries have been handed to the
/// application in a `Ready` and are being persisted; the rest have not been handed out yet.
#[derive(Debug, Default, Clone)]
pub struct Unstable {
    /// An incoming snapshot not yet persisted (boxed: rare, and large inline in every node).
    pub snapshot: Option<Box<Snapshot>>,
    /// The unpersisted entries.
    pub entries: Vec<Entry>,
    /// The index of `entries[0]` (or where the next entry would go when `entries` is empty).
    pub offset: u64,
    /// How many leading entries have already been handed out for persistence.
    pub in_progress: usize,
    /// Whether `snapshot` has already been handed out for persistence.
    pub snapshot_in_progress: bool,
    /// How many entries the last buffer held when it left with persisted entries: the next buffer
    /// starts with room for as many, rather than growing through 4, 8, 16... every batch.
    batch_hint: u32,
}

/// The most room a new buffer starts with (see `Unstable::batch_hint`).
const MAX_BATCH_HINT: usize = 1024;

impl Unstable {
    /// An empty unstable log whose next entry will have index `offset`.
    pub fn new(offset: u64) -> Unstable {
        Unstable {
            offset,
            ..Default::default()
        }
    }

    /// The first index, if the unstable log holds a snapshot (one past the snapshot's index).
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot
            .as_ref()
            .map(|s| s.metadata.as_ref().map_or(0, |m| m.index) + 1)
    }

    /// The last index held here (last entry, else the snapshot's index), if any.
    pub fn maybe_last_index(&self) -> Option<u64> {
        match self.entries.len() {
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
        match self.entries.len() {
            0 => match &self.snapshot {
                Some(s) => s.metadata.as_ref().map_or(0, |m| m.index),
                None => self.offset.saturating_sub(1),
            },
            n => self.offset + n as u64 - 1,
        }
    }

    /// The term of the entry at `index`, if this tail knows it.
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let meta = self.snapshot.as_ref()?.metadata.as_ref()?;
            return (meta.index == index).then_some(meta.term);
        }
        let pos = usize::try_from(index - self.offset).ok()?;
        self.entries.get(pos).map(|e| e.term)
    }

    /// The entries not yet handed out for persistence.
    pub fn not_in_progress(&self) -> &[Entry] {
        &self.entries[self.in_progress.min(self.entries.len())..]
    }

    /// The snapshot, if it has not been handed out for persistence yet.
    pub fn snapshot_not_in_progress(&self) -> Option<&Snapshot> {
        self.snapshot
            .as_deref()
            .filter(|_| !self.snapshot_in_progress)
    }

    /// Marks every entry, and the snapshot, handed out for persistence.
    pub fn mark_all_in_progress(&mut self) {
        self.in_progress = self.entries.len();
        self.snapshot_in_progress = self.snapshot.is_some();
    }

    /// The entries are durable up to `index`, which had `term` when it was written: drop them.
    /// Returns false (and keeps everything) when the entry at `index` no longer has `term`, because a
    /// newer leader overwrote it after it was handed out (the ABA case of async storage writes).
    pub fn stable_entries(&mut self, index: u64, term: u64) -> bool {
        self.take_stable_entries(index, term).is_some()
    }

    /// [`Unstable::stable_entries`], giving the now durable entries to the caller instead of
    /// dropping them (`None` in the ABA case). When the whole tail became durable its buffer goes
    /// with it, so neither side copies an entry.
    pub fn take_stable_entries(&mut self, index: u64, term: u64) -> Option<Vec<Entry>> {
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return None;
        }
        let count = (index - self.offset + 1) as usize;
        let taken = if count >= self.entries.len() {
            self.batch_hint = self.entries.len().min(MAX_BATCH_HINT) as u32;
            std::mem::take(&mut self.entries)
        } else {
            // The rest gets a buffer of its own size: under steady load the tail never empties,
            // and a burst must not pin its buffer for the life of the group.
            let rest = self.entries.split_off(count);
            std::mem::replace(&mut self.entries, rest)
        };
        self.offset = index + 1;
        self.in_progress = self.in_progress.saturating_sub(count);
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
        self.entries.clear();
        self.offset = index + 1;
        self.in_progress = 0;
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
        debug_assert_eq!(entry.index, self.offset + self.entries.len() as u64);
        if self.entries.capacity() == 0 {
            self.entries.reserve(self.batch_hint.max(4) as usize);
        }
        self.entries.push(entry);
    }

    /// [`Unstable::truncate_and_append`] taking the entries by value (moved, not copied).
    pub fn truncate_and_append_owned(&mut self, mut entries: Vec<Entry>) {
        let Some(first) = entries.first() else {
            return;
        };
        let after = first.index;
        let end = self.offset + self.entries.len() as u64;
        if after == end {
            // The common case: a plain extension.
        } else if after <= self.offset {
            // Everything held here is replaced.
            self.offset = after;
            self.entries.clear();
            self.in_progress = 0;
        } else {
            let keep = (after - self.offset) as usize;
            self.entries.truncate(keep);
            self.in_progress = self.in_progress.min(keep);
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

    /// The entries in `[low, high)`; the caller has checked the range lies within this tail.
    pub fn slice(&self, low: u64, high: u64) -> &[Entry] {
        let start = (low - self.offset) as usize;
        let end = (high - self.offset) as usize;
        &self.entries[start..end]
    }
}

#[cfg(test)]
#[path = "unstable_tests.rs"]
mod tests;
