//! [`RaftLog`]: the node's view of its log: what storage holds plus the [`Unstable`] tail, and the
//! commit/apply cursors.

mod unstable;

pub use unstable::Unstable;

use crate::error::{Error, Result};
use crate::storage::{Storage, NO_LIMIT};
use crate::StorageError;
use raft_proto::eraftpb::{Entry, Snapshot};
use raft_proto::{entry_size, payload_size};

/// The log of one node.
///
/// Indexes move in this order: `applied <= applying <= committed`, and `persisted <= last_index()`.
/// Entries are handed to the application for applying only once committed and persisted locally.
pub struct RaftLog<T: Storage> {
    /// What the application has persisted.
    pub store: T,
    /// What the node has accepted but the application has not yet persisted.
    pub unstable: Unstable,
    /// The highest index known to be committed by a quorum.
    pub committed: u64,
    /// The highest index known to be durable in `store`.
    pub persisted: u64,
    /// The highest index handed to the application to apply.
    pub applying: u64,
    /// The highest index the application reported applied.
    pub applied: u64,
    /// Persisted entries kept until they are handed out for applying (allocated only while some
    /// are held; see [`ApplyCache`]).
    apply_cache: Option<Box<ApplyCache>>,
    /// The most payload bytes `apply_cache` holds.
    pub(crate) apply_cache_limit: u64,
}

/// The default of `Config::max_apply_cache_bytes`: at most this many payload bytes (data plus
/// context) of persisted, not yet applied entries are kept in a log's memory. Past the limit,
/// persisted entries are dropped and committed ones are read back from storage.
pub const DEFAULT_APPLY_CACHE_BYTES: u64 = 4 << 20;

/// Entries that became durable and are not yet handed out for applying, in index order with no
/// gaps.
///
/// Without it, an entry is copied out of the unstable tail into the `Ready` for persisting, dropped
/// from the tail once persisted, and copied back out of storage when it commits. With it, the
/// tail's own entries (its buffer, when the whole tail was persisted) move here and then move on
/// into `Ready::committed_entries`: one copy and one reference-count round trip less per entry,
/// and no storage read on the apply path. TiKV keeps a similar entry cache in front of its
/// storage; raft-rs and etcd-io/raft read committed entries back from storage.
#[derive(Debug, Default)]
struct ApplyCache {
    entries: Vec<Entry>,
    /// Payload bytes held (data plus context of every entry).
    bytes: u64,
}

fn payload_bytes(entries: &[Entry]) -> u64 {
    entries.iter().map(payload_size).sum()
}

impl<T: Storage> RaftLog<T> {
    /// A log over `store`, starting with everything in it persisted and nothing beyond the snapshot
    /// committed or applied.
    pub fn new(store: T) -> Result<RaftLog<T>> {
        let first_index = store.first_index()?;
        let last_index = store.last_index()?;
        Ok(RaftLog {
            store,
            unstable: Unstable::new(last_index + 1),
            committed: first_index.saturating_sub(1),
            persisted: last_index,
            applying: first_index.saturating_sub(1),
            applied: first_index.saturating_sub(1),
            apply_cache: None,
            apply_cache_limit: DEFAULT_APPLY_CACHE_BYTES,
        })
    }

    /// A log over `store` whose state the caller sets (a frozen node thawing): `unstable` as
    /// given, every index 0 until set, no storage read.
    pub(crate) fn new_unchecked(store: T, unstable: Unstable) -> RaftLog<T> {
        RaftLog {
            store,
            unstable,
            committed: 0,
            persisted: 0,
            applying: 0,
            applied: 0,
            apply_cache: None,
            apply_cache_limit: DEFAULT_APPLY_CACHE_BYTES,
        }
    }

    /// Whether no entry is kept in memory for applying.
    pub(crate) fn apply_cache_is_empty(&self) -> bool {
        self.apply_cache
            .as_ref()
            .is_none_or(|cache| cache.entries.is_empty())
    }

    /// Sets the most payload bytes kept in memory for applying (`Config::max_apply_cache_bytes`);
    /// 0 keeps nothing. Entries already kept stay until handed out.
    pub fn set_apply_cache_limit(&mut self, bytes: u64) {
        self.apply_cache_limit = bytes;
    }

    /// The first index that can be read (one past the latest snapshot).
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(index) => index,
            None => self.store.first_index().unwrap_or(1),
        }
    }

    /// The index of the last entry.
    #[inline]
    pub fn last_index(&self) -> u64 {
        self.unstable.last_index()
    }

    /// The term of the entry at `index`, 0 when `index` is outside `[first_index - 1, last_index]`.
    pub fn term(&self, index: u64) -> Result<u64> {
        Ok(self.stored_term(index)?.unwrap_or(0))
    }

    /// The term at `index`, `None` outside `[first_index - 1, last_index]`. Asks storage once at
    /// most (its `Compacted` answer says "below the snapshot point"), and not at all for the
    /// unstable tail: this sits on the append and vote paths.
    fn stored_term(&self, index: u64) -> Result<Option<u64>> {
        if let Some(term) = self.unstable.maybe_term(index) {
            return Ok(Some(term));
        }
        if index > self.last_index() {
            return Ok(None);
        }
        if let Some(first) = self.unstable.maybe_first_index() {
            // Below an incoming snapshot: storage may still hold the entries it replaces.
            if index < first.saturating_sub(1) {
                return Ok(None);
            }
        }
        // Inside the log an unreadable term is an error, never 0: a 0 would make a vote or an
        // append be judged against a term the log does not have.
        match self.store.term(index) {
            Ok(term) => Ok(Some(term)),
            // Truly below the snapshot point (checked only on this rare path), or a storage
            // failing for an index it holds, which must surface.
            Err(Error::Store(StorageError::Compacted))
                if index < self.store.first_index()?.saturating_sub(1) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The term of the last entry, 0 if storage cannot say (for logging; decisions use
    /// [`RaftLog::last_index_and_term`], which returns the error).
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index()).unwrap_or(0)
    }

    /// Whether the entry at `index` exists and has `term`. An index outside
    /// `[first_index - 1, last_index]` never matches: its term is unknown, not 0, so an append that
    /// claims to follow it cannot leave a gap in the log.
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.try_match_term(index, term).unwrap_or(false)
    }

    /// [`RaftLog::match_term`], failing instead of answering "no" when storage cannot be read.
    pub fn try_match_term(&self, index: u64, term: u64) -> Result<bool> {
        Ok(self.stored_term(index)? == Some(term))
    }

    /// The index and term of the last entry, failing if storage cannot say (unlike
    /// [`RaftLog::last_index`] and [`RaftLog::last_term`], which fall back to 0 for logging).
    pub fn last_index_and_term(&self) -> Result<(u64, u64)> {
        let last_index = self.last_index();
        Ok((last_index, self.term(last_index)?))
    }

    /// Whether a log ending at (`last_index`, `term`) is at least as up to date as ours (§5.4.1).
    /// Fails when our own last entry cannot be read: a vote must never be granted on a guess.
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> Result<bool> {
        let (our_index, our_term) = self.last_index_and_term()?;
        Ok(term > our_term || (term == our_term && last_index >= our_index))
    }

    /// The index of the first entry of `entries` that is missing or conflicts with ours, or 0 when all
    /// of them are already here with the same terms.
    pub fn find_conflict(&self, entries: &[Entry]) -> u64 {
        self.try_find_conflict(entries)
            .unwrap_or_else(|_| entries.first().map_or(0, |e| e.index))
    }

    /// [`RaftLog::find_conflict`], failing when storage cannot be read.
    pub fn try_find_conflict(&self, entries: &[Entry]) -> Result<u64> {
        for e in entries {
            if !self.try_match_term(e.index, e.term)? {
                return Ok(e.index);
            }
        }
        Ok(0)
    }

    /// The largest index `<= index` whose term is `<= term`, with that term if it could be read.
    ///
    /// This is the rejection hint raft-rs uses for fast backtracking: a follower answers a mismatching
    /// append with it, and the leader uses it on its own log to pick the next index to probe.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, Option<u64>) {
        // Terms never decrease along a log (and read as 0 below the snapshot point), so "term at
        // i <= term" holds for a prefix of indexes: binary search its end. A crafted probe far
        // beyond our log then costs O(log n) term reads, not one per index (etcd and raft-rs walk).
        let high = index.min(self.last_index());
        let term_at = |i: u64| self.term(i).map_err(|_| i);
        match term_at(high) {
            Ok(t) if t <= term => return (high, Some(t)),
            Ok(_) => {}
            Err(i) => return (i, None),
        }
        if high == 0 {
            return (0, Some(0));
        }
        // Invariant: term_at(hi) > term; the answer is below hi.
        let (mut lo, mut hi) = (0u64, high);
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            match term_at(mid) {
                Ok(t) if t <= term => lo = mid,
                Ok(_) => hi = mid,
                Err(i) => return (i, None),
            }
        }
        match term_at(lo) {
            Ok(t) => (lo, Some(t)),
            Err(i) => (i, None),
        }
    }

    /// Appends `entries` after the entry (`index`, `term`) if we hold that entry, and commits up to
    /// `min(committed, index + len)`. Returns the last index of the new entries, or `None` when our
    /// log does not contain (`index`, `term`). Fails, changing nothing, if the entries would overwrite
    /// a committed entry (impossible from a correct leader).
    pub fn maybe_append(
        &mut self,
        index: u64,
        term: u64,
        committed: u64,
        entries: &[Entry],
    ) -> Result<Option<u64>> {
        self.maybe_append_owned(index, term, committed, entries.to_vec())
    }

    /// [`RaftLog::maybe_append`] taking the entries by value, so they are moved into the log
    /// rather than copied (the follower's hot path: the message is consumed anyway).
    pub fn maybe_append_owned(
        &mut self,
        index: u64,
        term: u64,
        committed: u64,
        mut entries: Vec<Entry>,
    ) -> Result<Option<u64>> {
        // A storage failure is reported, not mistaken for a mismatch (nothing changes).
        if !self.try_match_term(index, term)? {
            return Ok(None);
        }
        let last_new_index = index + entries.len() as u64;
        let conflict = self.try_find_conflict(&entries)?;
        if conflict != 0 {
            if conflict <= self.committed {
                return Err(Error::Invariant(
                    "an append would overwrite a committed entry",
                ));
            }
            let start = (conflict - (index + 1)) as usize;
            entries.drain(..start);
            self.append_owned(entries);
        }
        self.commit_to(committed.min(last_new_index));
        Ok(Some(last_new_index))
    }

    /// Appends `entries` to the unstable tail, truncating anything at or after the first new index.
    /// Returns the new last index. The caller guarantees the first new index is above `committed`.
    pub fn append(&mut self, entries: &[Entry]) -> u64 {
        self.append_owned(entries.to_vec())
    }

    /// [`RaftLog::append`] taking the entries by value (moved, not copied).
    pub fn append_owned(&mut self, entries: Vec<Entry>) -> u64 {
        let Some(first) = entries.first() else {
            return self.last_index();
        };
        debug_assert!(
            first.index > self.committed,
            "append below the commit index"
        );
        if first.index <= self.persisted {
            // Durable entries are being replaced: they no longer count as persisted.
            self.persisted = first.index - 1;
            self.truncate_apply_cache(first.index);
        }
        self.unstable.truncate_and_append_owned(entries);
        self.last_index()
    }

    /// Raises the commit index to `to` (never lowers it). The caller guarantees `to <= last_index`.
    pub fn commit_to(&mut self, to: u64) {
        if to > self.committed {
            debug_assert!(to <= self.last_index(), "commit beyond the last index");
            self.committed = to;
        }
    }

    /// Commits up to `max_index` if the entry there is of `term` (only entries of the leader's own
    /// term are committed by counting replicas, §5.4.2). Returns whether the commit index moved.
    pub fn maybe_commit(&mut self, max_index: u64, term: u64) -> bool {
        if max_index > self.committed && self.term(max_index).is_ok_and(|t| t == term) {
            self.commit_to(max_index);
            true
        } else {
            false
        }
    }

    /// Records that the application has applied everything up to `index`.
    pub fn applied_to(&mut self, index: u64) {
        if index <= self.applied {
            return;
        }
        let index = index.min(self.committed);
        self.applied = index;
        self.applying = self.applying.max(index);
    }

    /// Entries up to (`index`, `term`) are durable. Returns false when the entry there was replaced
    /// since it was handed out, in which case nothing is marked durable.
    pub fn stable_entries(&mut self, index: u64, term: u64) -> bool {
        self.stable_entries_of(index, term, u64::MAX)
    }

    /// [`RaftLog::stable_entries`] for the report that the Readys numbered up to `ready` are
    /// persisted: only entries those Readys handed out count (see
    /// [`Unstable::take_stable_entries`]).
    pub fn stable_entries_of(&mut self, index: u64, term: u64, ready: u64) -> bool {
        match self.unstable.take_stable_entries(index, term, ready) {
            Some(durable) => {
                self.persisted = self.persisted.max(index);
                self.cache_durable(durable);
                true
            }
            None => false,
        }
    }

    /// Keeps newly durable entries for applying, if they extend the cache without a gap and fit
    /// within the cache's byte limit; otherwise they are dropped (storage has them).
    fn cache_durable(&mut self, durable: Vec<Entry>) {
        let Some(first) = durable.first().map(|e| e.index) else {
            return;
        };
        if first <= self.applying || self.apply_cache_limit == 0 {
            return;
        }
        let bytes = payload_bytes(&durable);
        match &mut self.apply_cache {
            None => {
                if bytes <= self.apply_cache_limit {
                    self.apply_cache = Some(Box::new(ApplyCache {
                        entries: durable,
                        bytes,
                    }));
                }
            }
            Some(cache) => {
                let next = cache.entries.last().map_or(first, |e| e.index + 1);
                if next == first && cache.bytes + bytes <= self.apply_cache_limit {
                    cache.entries.extend(durable);
                    cache.bytes += bytes;
                }
            }
        }
    }

    /// Forgets cached entries at and after `index` (a new leader is replacing them).
    fn truncate_apply_cache(&mut self, index: u64) {
        let Some(cache) = &mut self.apply_cache else {
            return;
        };
        let keep = cache.entries.partition_point(|e| e.index < index);
        if keep == 0 {
            self.apply_cache = None;
        } else {
            cache.bytes -= payload_bytes(&cache.entries[keep..]);
            cache.entries.truncate(keep);
        }
    }

    /// How many cached entries, starting at `low`, make the next batch to apply: those up to
    /// `high`, within `max_size` bytes (at least one). `None` when the cache does not start at `low`.
    fn cached_to_apply(&mut self, low: u64, high: u64, max_size: u64) -> Option<usize> {
        let cache = self.apply_cache.as_mut()?;
        // Entries a snapshot (or storage, when the cache once had a gap) already covered.
        let stale = cache.entries.partition_point(|e| e.index < low);
        if stale > 0 {
            if stale == cache.entries.len() {
                self.apply_cache = None;
                return None;
            }
            cache.bytes -= payload_bytes(&cache.entries[..stale]);
            cache.entries.drain(..stale);
        }
        if cache.entries.first()?.index != low {
            return None;
        }
        let mut n = cache.entries.len().min((high - low + 1) as usize);
        if max_size != NO_LIMIT {
            let mut size = 0u64;
            for (i, e) in cache.entries[..n].iter().enumerate() {
                size = size.saturating_add(entry_size(e));
                if i > 0 && size > max_size {
                    n = i;
                    break;
                }
            }
        }
        Some(n)
    }

    /// Moves the first `n` cached entries out.
    fn take_cached(&mut self, n: usize) -> Vec<Entry> {
        let Some(cache) = &mut self.apply_cache else {
            return Vec::new();
        };
        if n >= cache.entries.len() {
            let cache = self.apply_cache.take().expect("checked above");
            return cache.entries;
        }
        let rest = cache.entries.split_off(n);
        let taken = std::mem::replace(&mut cache.entries, rest);
        cache.bytes -= payload_bytes(&taken);
        taken
    }

    /// The snapshot at `index` is durable, and with it everything up to `index` is applied (the
    /// application restores its state machine from the snapshot as it persists it), so those
    /// entries are never handed out.
    pub fn stable_snapshot(&mut self, index: u64) {
        let pending = self
            .unstable
            .snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.index);
        if pending != Some(index) {
            return;
        }
        self.unstable.stable_snapshot(index);
        self.persisted = self.persisted.max(index);
        self.applying = self.applying.max(index);
        // Persisting a snapshot includes restoring the state machine from it (the Ready
        // contract), so everything it covers is applied now, whether or not the application
        // also reports it (etcd-io/raft moves `applied` when the snapshot's Ready is accepted).
        self.applied = self.applied.max(index);
    }

    /// Replaces the log with an incoming snapshot: everything up to its index is committed, the
    /// entries after it will come from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        // The durable log no longer describes this log past the old commit index: up to it the
        // stored entries are committed ones, which every leader's log, and so the snapshot, shares;
        // beyond it they may be an old leader's entries, and until the snapshot is durable they
        // are what a restart would find. Counting them as persisted would let a commit index up
        // to the snapshot's be reported (a LightReady's) and stored over them.
        self.persisted = self.persisted.min(self.committed).min(index);
        self.committed = index;
        self.apply_cache = None;
        self.unstable.restore(snapshot);
    }

    /// The most recent snapshot: the incoming one not yet persisted, or the one storage makes,
    /// covering at least `request_index`, for node `to`.
    pub fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot> {
        if let Some(s) = &self.unstable.snapshot {
            if s.metadata.as_ref().map_or(0, |m| m.index) >= request_index {
                return Ok((**s).clone());
            }
        }
        self.store.snapshot(request_index, to)
    }

    /// The highest index that may be handed out for applying.
    fn max_appliable_index(&self) -> u64 {
        self.committed.min(self.persisted)
    }

    /// Whether committed, persisted entries are waiting to be handed out for applying.
    pub fn has_next_committed_entries(&self) -> bool {
        // Entries after a snapshot wait until the snapshot itself is persisted and applied.
        self.unstable.snapshot.is_none() && self.applying < self.max_appliable_index()
    }

    /// The next committed entries to apply (at most `max_size` bytes, at least one entry), marking
    /// them as being applied so they are never handed out twice.
    pub fn next_committed_entries(&mut self, max_size: u64) -> Result<Vec<Entry>> {
        let high = self.max_appliable_index();
        if self.applying >= high || self.unstable.snapshot.is_some() {
            return Ok(Vec::new());
        }
        let low = self.applying + 1;
        let entries = match self.cached_to_apply(low, high, max_size) {
            Some(n) => {
                let cached_high = low + n as u64;
                // Entries past the cache (it stopped at its byte limit) come from storage in the
                // same batch when no size limit applies; that read goes first, so a failure moves
                // nothing.
                let rest = if max_size == NO_LIMIT && cached_high <= high {
                    self.slice(cached_high, high + 1, NO_LIMIT)?
                } else {
                    Vec::new()
                };
                let mut entries = self.take_cached(n);
                entries.extend(rest);
                entries
            }
            // Entries not yet applied that were compacted away fail with `Compacted` in `slice`:
            // skipping them silently would corrupt the application's state machine.
            None => self.slice(low, high + 1, max_size)?,
        };
        if let Some(last) = entries.last() {
            self.applying = last.index;
        }
        Ok(entries)
    }

    /// Entries from `index` to the end, at most `max_size` bytes (at least one).
    pub fn entries(&self, index: u64, max_size: u64) -> Result<Vec<Entry>> {
        let last = self.last_index();
        if index > last {
            return Ok(Vec::new());
        }
        self.slice(index, last + 1, max_size)
    }

    /// [`RaftLog::entries`] for an append to follower `to`: the stored part is read with
    /// [`Storage::entries_for_append`], which may answer `LogTemporarilyUnavailable`.
    pub fn entries_for_append(&self, index: u64, max_size: u64, to: u64) -> Result<Vec<Entry>> {
        let last = self.last_index();
        if index > last {
            return Ok(Vec::new());
        }
        self.slice_with(index, last + 1, max_size, |store, low, high, max| {
            store.entries_for_append(low, high, max, to)
        })
    }

    /// The entries in `[low, high)`, at most `max_size` bytes (at least one when the range is not
    /// empty). Fails with `Compacted` when `low` is below the first index.
    pub fn slice(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.slice_with(low, high, max_size, |store, low, high, max| {
            store.entries(low, high, max)
        })
    }

    /// [`RaftLog::slice`], reading the stored part with `read`.
    fn slice_with(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
        read: impl FnOnce(&T, u64, u64, u64) -> Result<Vec<Entry>>,
    ) -> Result<Vec<Entry>> {
        if low >= high {
            return Ok(Vec::new());
        }
        // Below the first index is `Compacted`: an incoming snapshot says so here, and storage
        // answers so for its own range (the `Storage::entries` contract), which spares a lock.
        if self
            .unstable
            .maybe_first_index()
            .is_some_and(|first| low < first)
        {
            return Err(Error::Store(StorageError::Compacted));
        }
        if high > self.last_index() + 1 {
            return Err(Error::Store(StorageError::Unavailable));
        }
        let offset = self.unstable.offset;
        let mut entries = if low < offset {
            let stored = read(&self.store, low, high.min(offset), max_size)?;
            if (stored.len() as u64) < high.min(offset) - low {
                // Storage stopped at the size limit.
                return Ok(stored);
            }
            stored
        } else {
            Vec::new()
        };
        if high > offset {
            // Count first, then copy each part in one go.
            let mut size: u64 = if max_size == NO_LIMIT {
                0
            } else {
                entries.iter().map(entry_size).sum()
            };
            for part in self.unstable.slices(low.max(offset), high) {
                let mut n = part.len();
                if max_size != NO_LIMIT {
                    for (i, e) in part.iter().enumerate() {
                        size = size.saturating_add(entry_size(e));
                        if (i > 0 || !entries.is_empty()) && size > max_size {
                            n = i;
                            break;
                        }
                    }
                }
                entries.extend_from_slice(&part[..n]);
                if n < part.len() {
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// The entries not yet handed out for persistence.
    pub fn unstable_entries(&self) -> &[Entry] {
        self.unstable.not_in_progress()
    }

    /// The pending incoming snapshot, if any (handed out or not).
    pub fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.snapshot.as_deref()
    }
}

#[cfg(test)]
mod tests;
