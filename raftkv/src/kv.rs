//! The replicated state machine: a map of byte strings, the membership and every member's address.
//!
//! Writes travel through the Raft log as [`Op`]s (a small binary encoding in an entry's `data`);
//! every node applies them in log order with [`StateMachine::apply_write`], which computes the reply
//! deterministically (an `INCR` of a non-integer fails the same way everywhere) and applies a
//! write proposed twice only once (see [`crate::session`]). A snapshot's data
//! is [`StateMachine::encode`]: the address book and the map; its metadata carries the index and
//! the membership.

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Snapshot};

use crate::cow_map::{CowMap, MapView};
use crate::resp::Reply;
use crate::session::{Sessions, WriteId};

/// A write, as carried by a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `SET key value`.
    Set(Vec<u8>, Vec<u8>),
    /// `DEL key [key ...]`.
    Del(Vec<Vec<u8>>),
    /// `INCR key`.
    Incr(Vec<u8>),
    /// `MSET key value [key value ...]`.
    MSet(Vec<(Vec<u8>, Vec<u8>)>),
}

const OP_SET: u8 = 1;
const OP_DEL: u8 = 2;
const OP_INCR: u8 = 3;
const OP_MSET: u8 = 4;

/// The encoding version of snapshot data: 2 adds the write sessions; 1 (without them) still
/// decodes.
const SNAPSHOT_VERSION: u8 = 2;

/// Why stored data (an entry or a snapshot) does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct DecodeError(pub &'static str);

impl Op {
    /// The encoding stored in a log entry's data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Op::Set(key, value) => {
                out.push(OP_SET);
                put_bytes(&mut out, key);
                put_bytes(&mut out, value);
            }
            Op::Del(keys) => {
                out.push(OP_DEL);
                put_u32(&mut out, keys.len() as u32);
                keys.iter().for_each(|k| put_bytes(&mut out, k));
            }
            Op::Incr(key) => {
                out.push(OP_INCR);
                put_bytes(&mut out, key);
            }
            Op::MSet(pairs) => {
                out.push(OP_MSET);
                put_u32(&mut out, pairs.len() as u32);
                for (key, value) in pairs {
                    put_bytes(&mut out, key);
                    put_bytes(&mut out, value);
                }
            }
        }
        out
    }

    /// Decodes an entry's data.
    pub fn decode(data: &[u8]) -> Result<Op, DecodeError> {
        let err = DecodeError("write entry");
        let mut r = Reader { data };
        let op = match r.u8().ok_or(err.clone())? {
            OP_SET => Op::Set(r.bytes().ok_or(err.clone())?, r.bytes().ok_or(err.clone())?),
            OP_DEL => {
                let n = r.u32().ok_or(err.clone())?;
                let keys = (0..n).map(|_| r.bytes()).collect::<Option<_>>();
                Op::Del(keys.ok_or(err.clone())?)
            }
            OP_INCR => Op::Incr(r.bytes().ok_or(err.clone())?),
            OP_MSET => {
                let n = r.u32().ok_or(err.clone())?;
                let pairs = (0..n)
                    .map(|_| Some((r.bytes()?, r.bytes()?)))
                    .collect::<Option<_>>();
                Op::MSet(pairs.ok_or(err.clone())?)
            }
            _ => return Err(err),
        };
        if !r.data.is_empty() {
            return Err(err);
        }
        Ok(op)
    }
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
    /// The key-value map (shared copy-on-write with a snapshot being encoded).
    pub data: CowMap,
    /// The replies of recent writes, by proposer: a write proposed again applies once.
    pub sessions: Sessions,
}

impl StateMachine {
    /// Applies the write of a committed entry whose context is `ctx`: once per [`WriteId`]
    /// (a copy proposed again gets the first reply), or plainly for a context without one.
    pub fn apply_write(&mut self, ctx: &[u8], op: Op) -> Reply {
        let data = &mut self.data;
        match WriteId::decode(ctx) {
            Some(id) => self.sessions.apply_once(id, || apply_op(data, op)),
            None => apply_op(data, op),
        }
    }

    /// Applies a write and returns the reply for the client that sent it.
    pub fn apply_op(&mut self, op: Op) -> Reply {
        apply_op(&mut self.data, op)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.data.get(key)
    }

    /// The snapshot data for this state: the address book and the map (the index and membership
    /// travel in the snapshot's metadata). Encodes on this thread; see [`Self::snapshot_view`]
    /// to encode on another.
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
        }
    }

    /// The state a snapshot holds.
    pub fn decode(snapshot: &Snapshot) -> Result<StateMachine, DecodeError> {
        let err = DecodeError("snapshot data");
        let meta = snapshot.metadata.clone().unwrap_or_default();
        let mut r = Reader {
            data: &snapshot.data,
        };
        let version = r.u8().ok_or(err.clone())?;
        if version != 1 && version != SNAPSHOT_VERSION {
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
        if !r.data.is_empty() {
            return Err(err);
        }
        Ok(StateMachine {
            applied_index: meta.index,
            conf_state: meta.conf_state.unwrap_or_default(),
            members,
            data,
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
}

impl SnapshotView {
    /// The snapshot data: the address book, the map and the write sessions.
    pub fn encode(&self) -> Bytes {
        let size: usize = self.data.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(32 + size);
        out.push(SNAPSHOT_VERSION);
        put_u32(&mut out, self.members.len() as u32);
        for (id, addr) in &self.members {
            out.extend_from_slice(&id.to_be_bytes());
            put_bytes(&mut out, addr.as_bytes());
        }
        out.extend_from_slice(&(self.data.len() as u64).to_be_bytes());
        for (key, value) in self.data.iter() {
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        self.sessions.encode(&mut out);
        Bytes::from(out)
    }

    /// The number of keys.
    pub fn keys(&self) -> usize {
        self.data.len()
    }
}

/// Applies `op` to the map and returns the client's reply (the same on every node).
fn apply_op(data: &mut CowMap, op: Op) -> Reply {
    match op {
        Op::Set(key, value) => {
            data.insert(key, value);
            Reply::ok()
        }
        Op::Del(keys) => {
            let removed = keys.iter().filter(|k| data.remove(k).is_some()).count();
            Reply::Integer(removed as i64)
        }
        Op::Incr(key) => {
            let current = match data.get(&key) {
                None => 0,
                Some(value) => match parse_integer(value) {
                    Some(n) => n,
                    None => return Reply::err("value is not an integer or out of range"),
                },
            };
            let Some(next) = current.checked_add(1) else {
                return Reply::err("increment or decrement would overflow");
            };
            data.insert(key, next.to_string().into_bytes());
            Reply::Integer(next)
        }
        Op::MSet(pairs) => {
            data.extend(pairs);
            Reply::ok()
        }
    }
}

/// A value as Redis reads an integer: optional minus sign, decimal digits, no spaces, no leading
/// `+`, no leading zeros, within `i64`.
fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if !canonical {
        return None;
    }
    text.parse().ok()
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// A cursor over encoded data; every read returns `None` past the end.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::eraftpb::SnapshotMetadata;

    #[test]
    fn ops_round_trip_through_their_encoding() {
        let ops = vec![
            Op::Set(b"k".to_vec(), b"\x00v".to_vec()),
            Op::Del(vec![b"a".to_vec(), Vec::new()]),
            Op::Incr(b"n".to_vec()),
            Op::MSet(vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
            ]),
        ];
        for op in ops {
            assert_eq!(Op::decode(&op.encode()), Ok(op.clone()), "{op:?}");
        }
        assert!(Op::decode(&[9]).is_err(), "an unknown op tag is refused");
        let mut trailing = Op::Incr(b"n".to_vec()).encode();
        trailing.push(0);
        assert!(Op::decode(&trailing).is_err(), "trailing bytes are refused");
    }

    #[test]
    fn incr_counts_from_zero_and_refuses_non_integers() {
        let mut sm = StateMachine::default();
        assert_eq!(sm.apply_op(Op::Incr(b"n".to_vec())), Reply::Integer(1));
        assert_eq!(sm.apply_op(Op::Incr(b"n".to_vec())), Reply::Integer(2));
        for bad in ["abc", "", " 1", "01", "+1", "-0", "9223372036854775808"] {
            sm.apply_op(Op::Set(b"s".to_vec(), bad.as_bytes().to_vec()));
            assert_eq!(
                sm.apply_op(Op::Incr(b"s".to_vec())),
                Reply::err("value is not an integer or out of range"),
                "INCR of {bad:?}"
            );
            assert_eq!(sm.get(b"s"), Some(&bad.as_bytes().to_vec()), "unchanged");
        }
        sm.apply_op(Op::Set(b"m".to_vec(), i64::MAX.to_string().into_bytes()));
        assert_eq!(
            sm.apply_op(Op::Incr(b"m".to_vec())),
            Reply::err("increment or decrement would overflow")
        );
        sm.apply_op(Op::Set(b"neg".to_vec(), b"-5".to_vec()));
        assert_eq!(sm.apply_op(Op::Incr(b"neg".to_vec())), Reply::Integer(-4));
    }

    #[test]
    fn del_counts_only_keys_that_existed() {
        let mut sm = StateMachine::default();
        sm.apply_op(Op::MSet(vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ]));
        let del = Op::Del(vec![b"a".to_vec(), b"zz".to_vec(), b"a".to_vec()]);
        assert_eq!(sm.apply_op(del), Reply::Integer(1));
        assert_eq!(sm.data.len(), 1);
    }

    #[test]
    fn snapshot_data_restores_map_and_address_book() {
        let mut sm = StateMachine {
            applied_index: 9,
            conf_state: ConfState {
                voters: vec![1, 2],
                ..Default::default()
            },
            ..Default::default()
        };
        sm.members.insert(1, "127.0.0.1:1".to_string());
        sm.members.insert(2, "127.0.0.1:2".to_string());
        sm.apply_op(Op::Set(b"k".to_vec(), b"v".to_vec()));
        let id = WriteId {
            node: 2,
            incarnation: 5,
            seq: 8,
            floor: 8,
        };
        let reply = sm.apply_write(&id.encode(), Op::Incr(b"n".to_vec()));
        let snapshot = Snapshot {
            data: sm.encode(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(sm.conf_state.clone()),
                index: 9,
                term: 2,
            }),
        };
        let mut restored = StateMachine::decode(&snapshot).unwrap();
        assert_eq!(restored, sm);
        // The write session travels with it: a copy of the INCR gets the same reply, no effect.
        assert_eq!(
            restored.apply_write(&id.encode(), Op::Incr(b"n".to_vec())),
            reply
        );
        assert_eq!(restored.get(b"n"), Some(&b"1".to_vec()));
        let truncated = Snapshot {
            data: snapshot.data.slice(..snapshot.data.len() - 1),
            ..snapshot
        };
        assert!(StateMachine::decode(&truncated).is_err());
    }

    #[test]
    fn a_version_1_snapshot_without_sessions_still_decodes() {
        let mut sm = StateMachine::default();
        sm.apply_op(Op::Set(b"k".to_vec(), b"v".to_vec()));
        let mut data = sm.encode().to_vec();
        data[0] = 1;
        data.truncate(data.len() - 4); // version 2 ends with the session count, 0 here
        let snapshot = Snapshot {
            data: data.into(),
            metadata: Some(SnapshotMetadata::default()),
        };
        assert_eq!(StateMachine::decode(&snapshot), Ok(sm));
    }
}
