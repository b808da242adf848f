//! The writes the log carries: [`Op`], stamped with the proposer's clock in a [`WriteEntry`], and
//! [`Write`], a client's write whose times may still be relative to the moment it is proposed.
//!
//! Times in the log are absolute, in milliseconds since the Unix epoch: the node that proposes a
//! write turns `EX 10` into a deadline with its own wall clock ([`Write::at`]), so every replica
//! applies the same deadline whenever it applies the entry.

use super::codec::{put_bytes, put_u32, put_u64, DecodeError, Reader};

/// When a `SET` applies, as its `NX` / `XX` options say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Always (no option).
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a `SET` does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the key no longer expires.
    Clear,
    /// `KEEPTTL`: the key keeps its deadline, if it had one.
    Keep,
    /// `EXAT`, `PXAT`, or `EX` / `PX` made absolute: the key expires at this time (ms since the
    /// Unix epoch).
    At(u64),
}

/// A write, as carried by a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `SET key value [NX|XX] [GET] [EXAT|PXAT|KEEPTTL]` (and `GETSET`, `SET ... EX` made
    /// absolute, plain `SET`).
    Set {
        /// The key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
        /// `NX` / `XX`.
        condition: SetCondition,
        /// `GET`: the reply is the old value rather than `OK`.
        get: bool,
        /// What becomes of the key's deadline.
        expiry: SetExpiry,
    },
    /// `SETNX key value`: `:1` if set, `:0` if the key existed.
    SetNx(Vec<u8>, Vec<u8>),
    /// `DEL key [key ...]`.
    Del(Vec<Vec<u8>>),
    /// `INCR`, `INCRBY`, `DECR`, `DECRBY`: adds this to the key's integer value.
    IncrBy(Vec<u8>, i64),
    /// `APPEND key value`.
    Append(Vec<u8>, Vec<u8>),
    /// `MSET key value [key value ...]`.
    MSet(Vec<(Vec<u8>, Vec<u8>)>),
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` made absolute: the key expires at this time
    /// (ms since the Unix epoch); a time not after the replicated clock deletes it.
    ExpireAt(Vec<u8>, u64),
    /// `PERSIST key`: the key no longer expires.
    Persist(Vec<u8>),
    /// No client's write: the leader's periodic entry that moves the replicated clock (by its
    /// stamp) and so expires the keys whose deadline it passes.
    ExpireSweep,
}

/// The tag of an operation's encoding. 1 to 4 are the first version's and still decode.
const OP_SET_PLAIN: u8 = 1;
const OP_DEL: u8 = 2;
const OP_INCR: u8 = 3;
const OP_MSET: u8 = 4;
const OP_SET: u8 = 5;
const OP_SETNX: u8 = 6;
const OP_INCRBY: u8 = 7;
const OP_APPEND: u8 = 8;
const OP_EXPIRE_AT: u8 = 9;
const OP_PERSIST: u8 = 10;
const OP_EXPIRE_SWEEP: u8 = 11;

/// The first byte of a [`WriteEntry`] that carries a clock stamp. An entry without it (written
/// before expiry existed) is an operation alone and moves no clock.
const STAMPED: u8 = 0x80;

impl Op {
    /// The encoding of the operation alone.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding of the operation to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Op::Set {
                key,
                value,
                condition,
                get,
                expiry,
            } => encode_set(out, key, value, *condition, *get, *expiry),
            Op::SetNx(key, value) => {
                out.push(OP_SETNX);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Op::Del(keys) => {
                out.push(OP_DEL);
                put_u32(out, keys.len() as u32);
                keys.iter().for_each(|k| put_bytes(out, k));
            }
            Op::IncrBy(key, by) => {
                out.push(OP_INCRBY);
                put_bytes(out, key);
                out.extend_from_slice(&by.to_be_bytes());
            }
            Op::Append(key, value) => {
                out.push(OP_APPEND);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Op::MSet(pairs) => {
                out.push(OP_MSET);
                put_u32(out, pairs.len() as u32);
                for (key, value) in pairs {
                    put_bytes(out, key);
                    put_bytes(out, value);
                }
            }
            Op::ExpireAt(key, at) => {
                out.push(OP_EXPIRE_AT);
                put_bytes(out, key);
                put_u64(out, *at);
            }
            Op::Persist(key) => {
                out.push(OP_PERSIST);
                put_bytes(out, key);
            }
            Op::ExpireSweep => out.push(OP_EXPIRE_SWEEP),
        }
    }

    /// Decodes an operation's encoding (the first version's included).
    pub fn decode(data: &[u8]) -> Result<Op, DecodeError> {
        let mut r = Reader { data };
        let op = decode_op(&mut r).ok_or(DecodeError("write entry"))?;
        if !r.data.is_empty() {
            return Err(DecodeError("write entry"));
        }
        Ok(op)
    }
}

/// Appends the encoding of an [`Op::Set`] made of these parts.
fn encode_set(
    out: &mut Vec<u8>,
    key: &[u8],
    value: &[u8],
    condition: SetCondition,
    get: bool,
    expiry: SetExpiry,
) {
    out.push(OP_SET);
    put_bytes(out, key);
    put_bytes(out, value);
    let condition = match condition {
        SetCondition::Always => 0,
        SetCondition::IfAbsent => 1,
        SetCondition::IfPresent => 2,
    };
    out.push(condition | if get { 4 } else { 0 });
    match expiry {
        SetExpiry::Clear => out.push(0),
        SetExpiry::Keep => out.push(1),
        SetExpiry::At(at) => {
            out.push(2);
            put_u64(out, at);
        }
    }
}

fn decode_op(r: &mut Reader<'_>) -> Option<Op> {
    Some(match r.u8()? {
        OP_SET_PLAIN => Op::Set {
            key: r.bytes()?,
            value: r.bytes()?,
            condition: SetCondition::Always,
            get: false,
            expiry: SetExpiry::Clear,
        },
        OP_SET => {
            let (key, value) = (r.bytes()?, r.bytes()?);
            let flags = r.u8()?;
            let condition = match flags & 3 {
                0 => SetCondition::Always,
                1 => SetCondition::IfAbsent,
                2 => SetCondition::IfPresent,
                _ => return None,
            };
            if flags & !7 != 0 {
                return None;
            }
            let expiry = match r.u8()? {
                0 => SetExpiry::Clear,
                1 => SetExpiry::Keep,
                2 => SetExpiry::At(r.u64()?),
                _ => return None,
            };
            Op::Set {
                key,
                value,
                condition,
                get: flags & 4 != 0,
                expiry,
            }
        }
        OP_SETNX => Op::SetNx(r.bytes()?, r.bytes()?),
        OP_DEL => {
            let n = r.u32()?;
            Op::Del((0..n).map(|_| r.bytes()).collect::<Option<_>>()?)
        }
        OP_INCR => Op::IncrBy(r.bytes()?, 1),
        OP_INCRBY => Op::IncrBy(r.bytes()?, r.u64()? as i64),
        OP_APPEND => Op::Append(r.bytes()?, r.bytes()?),
        OP_MSET => {
            let n = r.u32()?;
            let pairs = (0..n).map(|_| Some((r.bytes()?, r.bytes()?)));
            Op::MSet(pairs.collect::<Option<_>>()?)
        }
        OP_EXPIRE_AT => Op::ExpireAt(r.bytes()?, r.u64()?),
        OP_PERSIST => Op::Persist(r.bytes()?),
        OP_EXPIRE_SWEEP => Op::ExpireSweep,
        _ => return None,
    })
}

/// A log entry's write: the operation and the proposer's wall clock when it proposed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEntry {
    /// The proposer's wall clock at proposal, in ms since the Unix epoch; 0 for an entry written
    /// before expiry existed. Applying the entry moves the replicated clock up to it.
    pub now_ms: u64,
    /// The operation.
    pub op: Op,
}

/// A buffer holding the stamp of a [`WriteEntry`] made at `now_ms`, with room for `more` bytes.
fn stamped(now_ms: u64, more: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + more);
    out.push(STAMPED);
    put_u64(&mut out, now_ms);
    out
}

impl WriteEntry {
    /// The encoding stored in a log entry's data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = stamped(self.now_ms, 0);
        self.op.encode_into(&mut out);
        out
    }

    /// Decodes a log entry's data: a stamped operation, or a bare one of the first version
    /// (stamped 0: it moves no clock).
    pub fn decode(data: &[u8]) -> Result<WriteEntry, DecodeError> {
        match data.split_first() {
            Some((&STAMPED, rest)) => {
                let mut r = Reader { data: rest };
                let now_ms = r.u64().ok_or(DecodeError("write entry"))?;
                Ok(WriteEntry {
                    now_ms,
                    op: Op::decode(r.data)?,
                })
            }
            _ => Ok(WriteEntry {
                now_ms: 0,
                op: Op::decode(data)?,
            }),
        }
    }
}

/// A client's write as parsed: its times may be relative to the moment it is proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A write with no relative time in it.
    Op(Op),
    /// `SET ... EX|PX`: the key expires `ttl_ms` (positive) after the proposal.
    SetFor {
        /// The key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
        /// `NX` / `XX`.
        condition: SetCondition,
        /// `GET`.
        get: bool,
        /// The time to live, in ms.
        ttl_ms: u64,
    },
    /// `EXPIRE` / `PEXPIRE`: the key expires `ttl_ms` after the proposal (at once if it is not
    /// positive).
    ExpireIn(Vec<u8>, i64),
}

impl Write {
    /// The log entry for this write proposed at `now_ms` (ms since the Unix epoch, the
    /// proposer's wall clock): relative times become deadlines.
    pub fn at(self, now_ms: u64) -> WriteEntry {
        let op = match self {
            Write::Op(op) => op,
            Write::SetFor {
                key,
                value,
                condition,
                get,
                ttl_ms,
            } => Op::Set {
                key,
                value,
                condition,
                get,
                expiry: SetExpiry::At(now_ms.saturating_add(ttl_ms)),
            },
            Write::ExpireIn(key, ttl_ms) => Op::ExpireAt(key, deadline_in(now_ms, ttl_ms)),
        };
        WriteEntry { now_ms, op }
    }

    /// The encoding of `self.clone().at(now_ms)` (the log entry's data), without the copy: the
    /// proposer keeps the write for as long as the proposal may have to wait.
    pub fn encode_at(&self, now_ms: u64) -> Vec<u8> {
        match self {
            Write::Op(op) => {
                let mut out = stamped(now_ms, 0);
                op.encode_into(&mut out);
                out
            }
            Write::SetFor {
                key,
                value,
                condition,
                get,
                ttl_ms,
            } => {
                // The tag, two lengths, the flags, the expiry's tag and deadline.
                let mut out = stamped(now_ms, key.len() + value.len() + 20);
                let expiry = SetExpiry::At(now_ms.saturating_add(*ttl_ms));
                encode_set(&mut out, key, value, *condition, *get, expiry);
                out
            }
            Write::ExpireIn(key, ttl_ms) => {
                let mut out = stamped(now_ms, key.len() + 13);
                Op::ExpireAt(key.clone(), deadline_in(now_ms, *ttl_ms)).encode_into(&mut out);
                out
            }
        }
    }
}

/// `now_ms` moved by `ttl_ms`, which may be negative (a time already passed).
fn deadline_in(now_ms: u64, ttl_ms: i64) -> u64 {
    if ttl_ms >= 0 {
        now_ms.saturating_add(ttl_ms.unsigned_abs())
    } else {
        now_ms.saturating_sub(ttl_ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ops() -> Vec<Op> {
        let k = || b"k".to_vec();
        vec![
            Op::Set {
                key: k(),
                value: b"\x00v".to_vec(),
                condition: SetCondition::Always,
                get: false,
                expiry: SetExpiry::Clear,
            },
            Op::Set {
                key: k(),
                value: Vec::new(),
                condition: SetCondition::IfAbsent,
                get: true,
                expiry: SetExpiry::At(u64::MAX),
            },
            Op::Set {
                key: k(),
                value: b"v".to_vec(),
                condition: SetCondition::IfPresent,
                get: false,
                expiry: SetExpiry::Keep,
            },
            Op::SetNx(k(), b"v".to_vec()),
            Op::Del(vec![b"a".to_vec(), Vec::new()]),
            Op::IncrBy(b"n".to_vec(), i64::MIN + 1),
            Op::Append(k(), b"tail".to_vec()),
            Op::MSet(vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
            ]),
            Op::ExpireAt(k(), 1_700_000_000_000),
            Op::Persist(k()),
            Op::ExpireSweep,
        ]
    }

    #[test]
    fn ops_and_stamped_entries_round_trip_through_their_encoding() {
        for op in all_ops() {
            assert_eq!(Op::decode(&op.encode()), Ok(op.clone()), "{op:?}");
            let entry = WriteEntry {
                now_ms: 1_700_000_000_123,
                op,
            };
            assert_eq!(WriteEntry::decode(&entry.encode()), Ok(entry.clone()));
            let mut trailing = entry.encode();
            trailing.push(0);
            assert!(WriteEntry::decode(&trailing).is_err(), "trailing bytes");
            let cut = entry.encode();
            assert!(WriteEntry::decode(&cut[..cut.len() - 1]).is_err(), "cut");
        }
        assert!(Op::decode(&[99]).is_err(), "an unknown op tag is refused");
        assert!(Op::decode(&[]).is_err());
        assert!(WriteEntry::decode(&[STAMPED, 0, 0]).is_err());
    }

    #[test]
    fn encode_at_is_the_encoding_of_the_entry_at_that_time() {
        let mut writes: Vec<Write> = all_ops().into_iter().map(Write::Op).collect();
        for ttl_ms in [1, 10_000, u64::MAX] {
            writes.push(Write::SetFor {
                key: b"k".to_vec(),
                value: b"value".to_vec(),
                condition: SetCondition::IfAbsent,
                get: true,
                ttl_ms,
            });
        }
        for ttl_ms in [i64::MIN, -5, 0, 5, i64::MAX] {
            writes.push(Write::ExpireIn(b"k".to_vec(), ttl_ms));
        }
        for write in writes {
            for now_ms in [0, 1_700_000_000_123, u64::MAX - 1] {
                assert_eq!(
                    write.encode_at(now_ms),
                    write.clone().at(now_ms).encode(),
                    "{write:?} at {now_ms}"
                );
            }
        }
    }

    #[test]
    fn first_version_entries_decode_unstamped() {
        // SET k v and INCR n as the first version wrote them: tag, then length-prefixed bytes.
        let set = [&[OP_SET_PLAIN, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v'][..]].concat();
        assert_eq!(
            WriteEntry::decode(&set),
            Ok(WriteEntry {
                now_ms: 0,
                op: Op::Set {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                    condition: SetCondition::Always,
                    get: false,
                    expiry: SetExpiry::Clear,
                }
            })
        );
        let incr = [OP_INCR, 0, 0, 0, 1, b'n'];
        assert_eq!(
            WriteEntry::decode(&incr).map(|e| e.op),
            Ok(Op::IncrBy(b"n".to_vec(), 1))
        );
    }

    #[test]
    fn relative_times_become_deadlines_at_proposal() {
        let set = Write::SetFor {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            get: false,
            ttl_ms: 10_000,
        };
        let entry = set.at(1_000);
        assert_eq!(entry.now_ms, 1_000);
        assert!(matches!(
            entry.op,
            Op::Set {
                expiry: SetExpiry::At(11_000),
                ..
            }
        ));
        let at = |ttl| Write::ExpireIn(b"k".to_vec(), ttl).at(1_000).op;
        assert_eq!(at(500), Op::ExpireAt(b"k".to_vec(), 1_500));
        assert_eq!(at(-5_000), Op::ExpireAt(b"k".to_vec(), 0), "saturates");
        assert_eq!(
            Write::ExpireIn(b"k".to_vec(), i64::MAX).at(u64::MAX - 1).op,
            Op::ExpireAt(b"k".to_vec(), u64::MAX)
        );
    }
}
