//! [`CowMap`]: the key-value map, split into shards that are shared copy-on-write, so a snapshot
//! takes a consistent view of the whole map in microseconds and encodes it on another thread
//! while the node goes on applying writes (issue 19: a 180 MB snapshot used to freeze every node
//! for seconds).
//!
//! Taking a [`MapView`] clones one `Arc` per shard. The first write to a shard while a view still
//! holds it copies that shard alone (1/[`SHARDS`] of the map), the way a forked Redis copies a
//! page on write; once the view is dropped, writes go in place again. At most one view is taken
//! at a time, so the map costs at most twice its size, and only for the shards written while a
//! snapshot is being encoded.
//!
//! Keys are hashed with foldhash, keyed by seeds drawn once per process: as keyed as std's
//! SipHash (and Redis's), so a client cannot pick keys that collide in one shard or one bucket
//! without knowing the seeds, at a fraction of SipHash's cost on short keys. The shard and the
//! bucket within it come from two differently seeded hashers, so the keys of one shard spread
//! over its buckets. Iteration order, like std's `HashMap`'s, differs from process to process.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// The number of shards: a write during a snapshot copies at most 1/`SHARDS` of the map.
pub const SHARDS: usize = 512;

type Shard<V> = HashMap<Vec<u8>, V, SeedableRandomState>;

/// The process's two hashers: which shard a key is in, and where in its shard.
struct Hashers {
    shard: SeedableRandomState,
    bucket: SeedableRandomState,
}

fn hashers() -> &'static Hashers {
    static HASHERS: OnceLock<Hashers> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let seed = SharedSeed::global_random();
        Hashers {
            shard: SeedableRandomState::with_seed(rand::random(), seed),
            bucket: SeedableRandomState::with_seed(rand::random(), seed),
        }
    })
}

fn new_shard<V>() -> Shard<V> {
    HashMap::with_hasher(hashers().bucket)
}

/// A map of byte strings to values (byte strings by default) whose [`view`](CowMap::view) is
/// cheap. The state machine keeps its values in one and its keys' expiry deadlines in another.
#[derive(Debug, Clone)]
pub struct CowMap<V = Vec<u8>> {
    shards: Vec<Arc<Shard<V>>>,
    len: usize,
}

/// A consistent, immutable view of a [`CowMap`] as it was when the view was taken.
#[derive(Debug, Clone)]
pub struct MapView<V = Vec<u8>> {
    shards: Vec<Arc<Shard<V>>>,
    len: usize,
}

fn shard_of(key: &[u8]) -> usize {
    (hashers().shard.hash_one(key) % SHARDS as u64) as usize
}

impl<V> Default for CowMap<V> {
    fn default() -> CowMap<V> {
        CowMap {
            shards: (0..SHARDS).map(|_| Arc::new(new_shard())).collect(),
            len: 0,
        }
    }
}

impl<V: PartialEq> PartialEq for CowMap<V> {
    fn eq(&self, other: &CowMap<V>) -> bool {
        self.len == other.len && self.shards == other.shards
    }
}

impl<V: Eq> Eq for CowMap<V> {}

impl<V: Clone> CowMap<V> {
    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map has no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        // An empty map (the deadlines, mostly) answers without hashing.
        if self.len == 0 {
            return None;
        }
        self.shards[shard_of(key)].get(key)
    }

    /// The shard of `key`, copied first if a view shares it.
    fn shard_mut(&mut self, key: &[u8]) -> &mut Shard<V> {
        Arc::make_mut(&mut self.shards[shard_of(key)])
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        let old = self.shard_mut(&key).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        // Looking first spares a shard copy when the key is absent.
        self.get(key)?;
        let old = self.shard_mut(key).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    /// A consistent view of the map as it is now (one `Arc` clone per shard).
    pub fn view(&self) -> MapView<V> {
        MapView {
            shards: self.shards.clone(),
            len: self.len,
        }
    }
}

impl<V: Clone> Extend<(Vec<u8>, V)> for CowMap<V> {
    fn extend<I: IntoIterator<Item = (Vec<u8>, V)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl<V: Clone> FromIterator<(Vec<u8>, V)> for CowMap<V> {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, V)>>(pairs: I) -> CowMap<V> {
        let mut map = CowMap::default();
        map.extend(pairs);
        map
    }
}

impl<V> MapView<V> {
    /// The number of keys in the view.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view has no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key and value of the view, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(pairs: impl Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<_> = pairs.collect();
        v.sort();
        v
    }

    #[test]
    fn a_view_keeps_the_map_as_it_was_while_the_map_changes() {
        let mut map: CowMap = (0..1000u32)
            .map(|i| (i.to_be_bytes().to_vec(), vec![1]))
            .collect();
        let view = map.view();
        for i in 0..500u32 {
            map.insert(i.to_be_bytes().to_vec(), vec![2]);
        }
        for i in 500..600u32 {
            assert!(map.remove(&i.to_be_bytes()).is_some());
        }
        map.insert(b"new".to_vec(), vec![3]);
        assert_eq!(view.len(), 1000);
        let seen = sorted(view.iter().map(|(k, v)| (k.clone(), v.clone())));
        let expected = sorted((0..1000u32).map(|i| (i.to_be_bytes().to_vec(), vec![1])));
        assert_eq!(seen, expected, "the view changed under writes to the map");
        assert_eq!(map.len(), 901);
        assert_eq!(map.get(&7u32.to_be_bytes()), Some(&vec![2]));
        assert_eq!(map.get(&550u32.to_be_bytes()), None);
        assert_eq!(map.get(&700u32.to_be_bytes()), Some(&vec![1]));
        assert_eq!(map.iter().count(), 901);
    }

    #[test]
    fn writes_copy_only_the_shards_a_view_shares_and_only_once() {
        let mut map: CowMap = (0..10_000u32)
            .map(|i| (i.to_be_bytes().to_vec(), vec![0]))
            .collect();
        let view = map.view();
        let key = 5u32.to_be_bytes();
        map.insert(key.to_vec(), vec![1]);
        let shard = shard_of(&key);
        let copied = |map: &CowMap| {
            (0..SHARDS)
                .filter(|s| !Arc::ptr_eq(&map.shards[*s], &view.shards[*s]))
                .collect::<Vec<_>>()
        };
        assert_eq!(copied(&map), vec![shard]);
        let before = Arc::as_ptr(&map.shards[shard]);
        map.insert(key.to_vec(), vec![2]);
        assert_eq!(Arc::as_ptr(&map.shards[shard]), before, "copied twice");
        // Removing an absent key copies nothing.
        let absent = 99_999u32.to_be_bytes();
        map.remove(&absent);
        assert_eq!(copied(&map), vec![shard]);
        drop(view);
        // With no view left, writes go in place.
        let other = 6u32.to_be_bytes();
        let before = Arc::as_ptr(&map.shards[shard_of(&other)]);
        map.insert(other.to_vec(), vec![3]);
        assert_eq!(Arc::as_ptr(&map.shards[shard_of(&other)]), before);
    }

    #[test]
    fn len_counts_keys_not_writes() {
        let mut map = CowMap::default();
        assert!(map.is_empty());
        map.insert(b"a".to_vec(), b"1".to_vec());
        map.insert(b"a".to_vec(), b"2".to_vec());
        map.insert(b"b".to_vec(), b"3".to_vec());
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove(b"a"), Some(b"2".to_vec()));
        assert_eq!(map.remove(b"a"), None);
        assert_eq!(map.len(), 1);
        assert_eq!(map, [(b"b".to_vec(), b"3".to_vec())].into_iter().collect());
    }
}
