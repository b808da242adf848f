//! The replicated state machine: a map of byte strings with expiry deadlines, the membership and
//! every member's address.
//!
//! Writes travel through the Raft log as [`WriteEntry`]s (an [`Op`] stamped with its proposer's
//! clock, in a small binary encoding in an entry's `data`); every node applies them in log order
//! with [`StateMachine::apply_write`], which computes the reply deterministically (an `INCR` of a
//! non-integer fails the same way everywhere) and applies a write proposed twice only once (see
//! [`crate::session`]). Expiry follows the replicated clock, never a replica's own ([`expiry`]).
//! A snapshot's data is [`StateMachine::encode`]: the address book, the map, the write sessions,
//! the clock and the deadlines; its metadata carries the index and the membership.
//!
//! The pieces: [`op`] (the writes and their encoding), `apply` (what each write does),
//! [`expiry`] (deadlines and the replicated clock), `codec` (the byte encoding).

mod apply;
mod codec;
pub mod expiry;
pub mod op;

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Snapshot};

use crate::cow_map::{CowMap, MapView};
use crate::resp::Reply;
use crate::session::{Sessions, WriteId};
use apply::Keyspace;
pub use codec::DecodeError;
use codec::{put_bytes, put_u32, put_u64, Reader};
use expiry::{Expiries, SWEEP_KEYS_PER_ENTRY};
pub use op::{Op, SetCondition, SetExpiry, Write, WriteEntry};

/// The encoding version of snapshot data: 3 adds the replicated clock and the keys' deadlines;
/// 2 (without them) and 1 (without the write sessions either) still decode.
const SNAPSHOT_VERSION: u8 = 3;

/// What `TTL` and `PTTL` report about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired): Redis answers -2.
    Missing,
    /// The key exists and does not expire: Redis answers -1.
    Persistent,
    /// The key expires this many ms after the replicated clock (at least 1).
    Remaining(u64),
}

/// The state every node replicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// The index of the last entry applied (or restored from a snapshot).
    pub applied_index: u64,
    /// The membership as of `applied_index`.
    pub conf_state: ConfState,
    /// Each member's address (`host:port`, for both peers and clients), by node id.
    pub members: BTreeMap<u64, String>,
    /// The key-value map (shared copy-on-write with a snapshot being encoded). It may still hold
    /// keys that have expired and are not removed yet: read through [`Self::get`].
    pub data: CowMap,
    /// The keys' deadlines and the replicated clock.
    pub expiries: Expiries,
    /// The replies of recent writes, by proposer: a write proposed again applies once.
    pub sessions: Sessions,
}

impl StateMachine {
    /// Applies the write of a committed entry whose context is `ctx`: moves the replicated clock
    /// to the entry's stamp, applies the operation once per [`WriteId`] (a copy proposed again
    /// gets the first reply), or plainly for a context without one, then removes from memory a
    /// bounded number of expired keys.
    pub fn apply_write(&mut self, ctx: &[u8], entry: WriteEntry) -> Reply {
        self.expiries.advance(entry.now_ms);
        let mut keyspace = Keyspace {
            data: &mut self.data,
            expiries: &mut self.expiries,
        };
        let reply = match WriteId::decode(ctx) {
            Some(id) => self.sessions.apply_once(id, || keyspace.apply(entry.op)),
            None => keyspace.apply(entry.op),
        };
        keyspace.sweep(SWEEP_KEYS_PER_ENTRY);
        reply
    }

    /// Applies an operation without a stamp or a session (the clock stays where it is) and
    /// returns the reply for the client that sent it.
    pub fn apply_op(&mut self, op: Op) -> Reply {
        self.apply_write(&[], WriteEntry { now_ms: 0, op })
    }

    /// The value of `key`, unless it is absent or has expired by the replicated clock.
    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        if self.expiries.is_expired(key) {
            return None;
        }
        self.data.get(key)
    }

    /// How long `key` has to live by the replicated clock.
    pub fn ttl(&self, key: &[u8]) -> Ttl {
        if self.get(key).is_none() {
            return Ttl::Missing;
        }
        match self.expiries.deadline(key) {
            None => Ttl::Persistent,
            Some(at) => Ttl::Remaining(at.saturating_sub(self.expiries.clock_ms())),
        }
    }

    /// The number of keys that exist (expired keys not removed yet do not count).
    pub fn len(&self) -> usize {
        self.data.len().saturating_sub(self.expiries.expired_len())
    }

    /// Whether no key exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of keys that exist and have a deadline.
    pub fn expiring_len(&self) -> usize {
        self.expiries
            .len()
            .saturating_sub(self.expiries.expired_len())
    }

    /// Whether the leader, whose wall clock reads `now_ms`, should propose an
    /// [`Op::ExpireSweep`]: some key has a deadline, and either a deadline has passed (by its
    /// clock or the replicated one: keys to expire, or expired keys to remove from memory) or
    /// the replicated clock lags `now_ms` by `refresh_ms` or more (so `TTL` answers stay
    /// within about `refresh_ms` of the leader's clock).
    pub fn sweep_due(&self, now_ms: u64, refresh_ms: u64) -> bool {
        let Some(earliest) = self.expiries.earliest() else {
            return false;
        };
        let clock = self.expiries.clock_ms();
        earliest <= now_ms.max(clock) || now_ms >= clock.saturating_add(refresh_ms)
    }

    /// The snapshot data for this state (the index and membership travel in the snapshot's
    /// metadata). Encodes on this thread; see [`Self::snapshot_view`] to encode on another.
    pub fn encode(&self) -> Bytes {
        self.snapshot_view().encode()
    }

    /// A consistent view of what [`Self::encode`] would encode now, taken in microseconds
    /// whatever the size of the map, to encode on another thread while writes go on.
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            members: self.members.clone(),
            data: self.data.view(),
            sessions: self.sessions.clone(),
            clock_ms: self.expiries.clock_ms(),
            deadlines: self.expiries.view(),
        }
    }

    /// The state a snapshot holds (any of the versions 1 to 3).
    pub fn decode(snapshot: &Snapshot) -> Result<StateMachine, DecodeError> {
        let err = DecodeError("snapshot data");
        let meta = snapshot.metadata.clone().unwrap_or_default();
        let mut r = Reader {
            data: &snapshot.data,
        };
        let version = r.u8().ok_or(err.clone())?;
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(err);
        }
        let mut members = BTreeMap::new();
        for _ in 0..r.u32().ok_or(err.clone())? {
            let id = r.u64().ok_or(err.clone())?;
            let addr = r.bytes().and_then(|a| String::from_utf8(a).ok());
            members.insert(id, addr.ok_or(err.clone())?);
        }
        let count = r.u64().ok_or(err.clone())?;
        let mut data = CowMap::default();
        for _ in 0..count {
            let key = r.bytes().ok_or(err.clone())?;
            data.insert(key, r.bytes().ok_or(err.clone())?);
        }
        let mut sessions = Sessions::default();
        if version >= 2 {
            let (decoded, rest) = Sessions::decode(r.data)?;
            sessions = decoded;
            r.data = rest;
        }
        let mut expiries = Expiries::default();
        if version >= 3 {
            let clock_ms = r.u64().ok_or(err.clone())?;
            let mut deadlines = CowMap::default();
            for _ in 0..r.u64().ok_or(err.clone())? {
                let key = r.bytes().ok_or(err.clone())?;
                let at = r.u64().ok_or(err.clone())?;
                // A deadline belongs to a key of the map.
                if data.get(&key).is_none() || deadlines.insert(key, at).is_some() {
                    return Err(DecodeError("snapshot deadline"));
                }
            }
            expiries = Expiries::restore(clock_ms, deadlines);
        }
        if !r.data.is_empty() {
            return Err(err);
        }
        Ok(StateMachine {
            applied_index: meta.index,
            conf_state: meta.conf_state.unwrap_or_default(),
            members,
            data,
            expiries,
            sessions,
        })
    }
}

/// The state a snapshot encodes, frozen by [`StateMachine::snapshot_view`].
#[derive(Debug, Clone)]
pub struct SnapshotView {
    members: BTreeMap<u64, String>,
    data: MapView,
    sessions: Sessions,
    clock_ms: u64,
    deadlines: MapView<u64>,
}

impl SnapshotView {
    /// The snapshot data: the address book, the map, the write sessions, the replicated clock
    /// and the deadlines.
    pub fn encode(&self) -> Bytes {
        let size: usize = self.data.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(48 + size + 12 * self.deadlines.len());
        out.push(SNAPSHOT_VERSION);
        put_u32(&mut out, self.members.len() as u32);
        for (id, addr) in &self.members {
            put_u64(&mut out, *id);
            put_bytes(&mut out, addr.as_bytes());
        }
        put_u64(&mut out, self.data.len() as u64);
        for (key, value) in self.data.iter() {
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        self.sessions.encode(&mut out);
        put_u64(&mut out, self.clock_ms);
        put_u64(&mut out, self.deadlines.len() as u64);
        for (key, at) in self.deadlines.iter() {
            put_bytes(&mut out, key);
            put_u64(&mut out, *at);
        }
        Bytes::from(out)
    }

    /// The number of keys (expired keys not removed yet included).
    pub fn keys(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests;
