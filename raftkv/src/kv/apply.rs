//! What each [`Op`] does to the key space, and the reply it gets: the same on every replica, since
//! it depends only on the state and the replicated clock, never on the replica's own clock.

use super::expiry::Expiries;
use super::op::{Op, SetCondition, SetExpiry};
use crate::cow_map::CowMap;
use crate::resp::{parse_integer, Reply, MAX_BULK_BYTES};

/// The map and its expiries, borrowed together to apply a write.
pub(super) struct Keyspace<'a> {
    pub(super) data: &'a mut CowMap,
    pub(super) expiries: &'a mut Expiries,
}

impl Keyspace<'_> {
    /// Applies `op` (the clock already moved to its entry's stamp) and returns the client's reply.
    pub(super) fn apply(&mut self, op: Op) -> Reply {
        match op {
            Op::Set {
                key,
                value,
                condition,
                get,
                expiry,
            } => {
                self.drop_if_expired(&key);
                let old = self.data.get(&key);
                let exists = old.is_some();
                let old = if get {
                    old.map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
                } else {
                    Reply::Nil
                };
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => !exists,
                    SetCondition::IfPresent => exists,
                };
                if allowed {
                    self.put(key, value, expiry);
                }
                match (get, allowed) {
                    (true, _) => old,
                    (false, true) => Reply::ok(),
                    (false, false) => Reply::Nil,
                }
            }
            Op::SetNx(key, value) => {
                self.drop_if_expired(&key);
                if self.data.get(&key).is_some() {
                    return Reply::Integer(0);
                }
                self.put(key, value, SetExpiry::Clear);
                Reply::Integer(1)
            }
            Op::Del(keys) => {
                let removed = keys.iter().filter(|k| self.remove(k)).count();
                Reply::Integer(removed as i64)
            }
            Op::IncrBy(key, by) => self.incr_by(key, by),
            Op::Append(key, value) => {
                self.drop_if_expired(&key);
                let mut joined = self.data.get(&key).cloned().unwrap_or_default();
                if (joined.len() + value.len()) as u64 > MAX_BULK_BYTES as u64 {
                    return Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)");
                }
                joined.extend_from_slice(&value);
                let len = joined.len();
                // APPEND keeps the key's deadline, as in Redis.
                self.data.insert(key, joined);
                Reply::Integer(len as i64)
            }
            Op::MSet(pairs) => {
                for (key, value) in pairs {
                    self.put(key, value, SetExpiry::Clear);
                }
                Reply::ok()
            }
            Op::ExpireAt(key, at_ms) => {
                self.drop_if_expired(&key);
                if self.data.get(&key).is_none() {
                    return Reply::Integer(0);
                }
                if at_ms <= self.expiries.clock_ms() {
                    // A deadline already passed deletes the key, as in Redis.
                    self.remove(&key);
                } else {
                    self.expiries.set(&key, at_ms);
                }
                Reply::Integer(1)
            }
            Op::Persist(key) => {
                self.drop_if_expired(&key);
                let persisted = self.data.get(&key).is_some() && self.expiries.clear(&key);
                Reply::Integer(persisted as i64)
            }
            Op::ExpireSweep => Reply::ok(),
        }
    }

    /// Removes from memory up to `budget` keys the clock has expired.
    pub(super) fn sweep(&mut self, budget: usize) {
        for key in self.expiries.expired_keys(budget) {
            self.remove(&key);
        }
    }

    fn incr_by(&mut self, key: Vec<u8>, by: i64) -> Reply {
        self.drop_if_expired(&key);
        let current = match self.data.get(&key) {
            None => 0,
            Some(value) => match parse_integer(value) {
                Some(n) => n,
                None => return Reply::err("value is not an integer or out of range"),
            },
        };
        let Some(next) = current.checked_add(by) else {
            return Reply::err("increment or decrement would overflow");
        };
        // INCR keeps the key's deadline, as in Redis.
        self.data.insert(key, next.to_string().into_bytes());
        Reply::Integer(next)
    }

    /// Removes `key` if the clock has expired it, so that the write sees it absent.
    fn drop_if_expired(&mut self, key: &[u8]) {
        if self.expiries.is_expired(key) {
            self.remove(key);
        }
    }

    /// Sets `key` to `value`, its deadline as `expiry` says (a deadline already passed deletes
    /// the key instead).
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>, expiry: SetExpiry) {
        match expiry {
            SetExpiry::Clear => {
                self.expiries.clear(&key);
            }
            // The caller dropped the key if it had expired: a deadline left is a live one.
            SetExpiry::Keep => {}
            SetExpiry::At(at_ms) if at_ms <= self.expiries.clock_ms() => {
                self.remove(&key);
                return;
            }
            SetExpiry::At(at_ms) => self.expiries.set(&key, at_ms),
        }
        self.data.insert(key, value);
    }

    /// Removes `key` and its deadline; returns whether it existed and had not expired.
    fn remove(&mut self, key: &[u8]) -> bool {
        let live = !self.expiries.is_expired(key);
        self.expiries.clear(key);
        self.data.remove(key).is_some() && live
    }
}
