//! Key expiry decided by the log, never by a replica's own clock.
//!
//! The state machine keeps a replicated clock, [`Expiries::clock_ms`]: the largest stamp of the
//! entries applied so far (each write entry carries its proposer's wall clock, and the leader
//! proposes an `ExpireSweep` entry while keys wait to expire). A key whose deadline is at or
//! before that clock is expired: every read and write treats it as absent from the moment such
//! an entry is applied, on every replica alike, since they apply the same entries in the same
//! order. Removing the expired keys from memory is bounded per entry
//! ([`SWEEP_KEYS_PER_ENTRY`]): a million keys expiring at once do not stall the node; those not
//! removed yet are already invisible.

use std::collections::BTreeSet;

use crate::cow_map::{CowMap, MapView};

/// The most expired keys one applied entry removes from memory (a deterministic budget, the
/// same on every replica); the rest are invisible until later entries remove them.
pub const SWEEP_KEYS_PER_ENTRY: usize = 1000;

/// Every key's deadline and the replicated clock they are compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expiries {
    /// Each expiring key's deadline, in ms since the Unix epoch (copy-on-write, as the map, so a
    /// snapshot's view of it is cheap).
    deadlines: CowMap<u64>,
    /// The same pairs ordered by deadline, to find the keys to sweep (rebuilt from `deadlines`
    /// when a snapshot is decoded).
    by_deadline: BTreeSet<(u64, Vec<u8>)>,
    /// The largest stamp applied, in ms since the Unix epoch: the state machine's "now".
    clock_ms: u64,
}

impl Expiries {
    /// The expiries a snapshot held: its clock and its keys' deadlines.
    pub fn restore(clock_ms: u64, deadlines: CowMap<u64>) -> Expiries {
        let by_deadline = deadlines.iter().map(|(k, at)| (*at, k.clone())).collect();
        Expiries {
            deadlines,
            by_deadline,
            clock_ms,
        }
    }

    /// The replicated clock: the largest stamp of the entries applied, in ms since the epoch.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Moves the clock to `now_ms` if that is later (it never goes back: a key once expired
    /// stays expired).
    pub fn advance(&mut self, now_ms: u64) {
        self.clock_ms = self.clock_ms.max(now_ms);
    }

    /// The deadline of `key`, if it has one (expired or not).
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.deadlines.get(key).copied()
    }

    /// Whether `key` has a deadline the clock has reached.
    pub fn is_expired(&self, key: &[u8]) -> bool {
        self.deadline(key).is_some_and(|at| at <= self.clock_ms)
    }

    /// Gives `key` the deadline `at_ms`.
    pub fn set(&mut self, key: &[u8], at_ms: u64) {
        if let Some(old) = self.deadlines.insert(key.to_vec(), at_ms) {
            self.by_deadline.remove(&(old, key.to_vec()));
        }
        self.by_deadline.insert((at_ms, key.to_vec()));
    }

    /// Removes the deadline of `key`; returns whether it had one.
    pub fn clear(&mut self, key: &[u8]) -> bool {
        match self.deadlines.remove(key) {
            Some(old) => {
                self.by_deadline.remove(&(old, key.to_vec()));
                true
            }
            None => false,
        }
    }

    /// The number of keys with a deadline, the expired ones not removed yet included.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// The number of keys expired by the clock and not removed from memory yet.
    pub fn expired_len(&self) -> usize {
        self.by_deadline
            .range(..(self.clock_ms.saturating_add(1), Vec::new()))
            .count()
    }

    /// The earliest deadline of any key.
    pub fn earliest(&self) -> Option<u64> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Up to `budget` expired keys, earliest deadline first (ties by key): the same on every
    /// replica.
    pub fn expired_keys(&self, budget: usize) -> Vec<Vec<u8>> {
        self.by_deadline
            .iter()
            .take_while(|(at, _)| *at <= self.clock_ms)
            .take(budget)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// A view of the deadlines, for a snapshot.
    pub fn view(&self) -> MapView<u64> {
        self.deadlines.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_expires_when_the_clock_reaches_its_deadline_and_the_clock_never_goes_back() {
        let mut e = Expiries::default();
        e.set(b"k", 100);
        e.advance(99);
        assert!(!e.is_expired(b"k"));
        e.advance(100);
        assert!(
            e.is_expired(b"k"),
            "a deadline equal to the clock has passed"
        );
        e.advance(50);
        assert_eq!(
            e.clock_ms(),
            100,
            "a stale stamp does not move the clock back"
        );
        assert!(e.is_expired(b"k"));
    }

    #[test]
    fn the_deadline_index_follows_sets_and_clears() {
        let mut e = Expiries::default();
        e.set(b"b", 30);
        e.set(b"a", 30);
        e.set(b"c", 10);
        e.set(b"c", 50);
        assert_eq!(e.earliest(), Some(30));
        e.advance(40);
        assert_eq!(e.expired_len(), 2);
        assert_eq!(e.expired_keys(10), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(e.expired_keys(1), vec![b"a".to_vec()], "the budget holds");
        assert!(e.clear(b"a"));
        assert!(!e.clear(b"a"));
        assert_eq!(e.len(), 2);
        let restored = Expiries::restore(e.clock_ms(), e.deadlines.clone());
        assert_eq!(restored, e, "the index is rebuilt from the deadlines");
    }
}
