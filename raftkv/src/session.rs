//! Exactly-once writes across retries (Raft thesis §6.3, client sessions): each write a node
//! proposes carries a [`WriteId`] (the node, its incarnation, a sequence number, and the lowest
//! sequence number it still waits on), and the state machine keeps the reply of every write at or
//! above that floor. A node may then propose a write again whenever it cannot tell whether the
//! first proposal survived (a leader change, a dropped forward): a copy applies once, and any
//! later copy gets the stored reply without touching the map.

use std::collections::BTreeMap;

use crate::kv::DecodeError;
use crate::resp::Reply;

/// Who proposed a write, carried in the entry's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteId {
    /// The node that took the client's request.
    pub node: u64,
    /// A number the node drew when its process started: sequence numbers restart with it.
    pub incarnation: u64,
    /// The write's sequence number, unique within the incarnation.
    pub seq: u64,
    /// Every write of this incarnation below this sequence number has been answered: their
    /// replies may be forgotten.
    pub floor: u64,
}

/// The encoded length of a [`WriteId`].
const WRITE_ID_LEN: usize = 32;

impl WriteId {
    /// The encoding stored in an entry's context.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(WRITE_ID_LEN);
        for n in [self.node, self.incarnation, self.seq, self.floor] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }

    /// Decodes a context; `None` for any other (an older node's 16-byte context, or none).
    pub fn decode(ctx: &[u8]) -> Option<WriteId> {
        if ctx.len() != WRITE_ID_LEN {
            return None;
        }
        let n = |i: usize| {
            let bytes: [u8; 8] = ctx[i * 8..(i + 1) * 8].try_into().ok()?;
            Some(u64::from_be_bytes(bytes))
        };
        Some(WriteId {
            node: n(0)?,
            incarnation: n(1)?,
            seq: n(2)?,
            floor: n(3)?,
        })
    }
}

/// How many incarnations of one node keep their sessions.
pub const INCARNATIONS_KEPT: usize = 8;

/// One proposer incarnation's writes: the floor it announced and the replies at or above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    floor: u64,
    replies: BTreeMap<u64, Reply>,
}

/// Every proposer incarnation's session, part of the replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sessions {
    by_proposer: BTreeMap<(u64, u64), Session>,
}

impl Sessions {
    /// Applies the write `id` with `apply` unless a copy of it was applied already: returns the
    /// reply, the stored one for a copy. A copy below the floor (its proposer no longer waits on
    /// it) is refused without effect.
    pub fn apply_once(&mut self, id: WriteId, apply: impl FnOnce() -> Reply) -> Reply {
        if !self.by_proposer.contains_key(&(id.node, id.incarnation)) {
            self.forget_old_incarnations(id.node, id.incarnation);
        }
        let session = self
            .by_proposer
            .entry((id.node, id.incarnation))
            .or_default();
        if id.floor > session.floor {
            session.floor = id.floor;
            session.replies = session.replies.split_off(&id.floor);
        }
        if id.seq < session.floor {
            return Reply::err("a copy of a write already answered; not applied again");
        }
        if let Some(reply) = session.replies.get(&id.seq) {
            return reply.clone();
        }
        let reply = apply();
        session.replies.insert(id.seq, reply.clone());
        reply
    }

    /// Keeps the sessions of at most [`INCARNATIONS_KEPT`] incarnations of `node`, counting
    /// `incarnation` (about to begin): the oldest go. A copy of one of their writes delayed past
    /// that many restarts of its node would apply again.
    fn forget_old_incarnations(&mut self, node: u64, incarnation: u64) {
        let mut of_node: Vec<u64> = self
            .by_proposer
            .range((node, 0)..=(node, u64::MAX))
            .map(|((_, inc), _)| *inc)
            .filter(|inc| *inc < incarnation)
            .collect();
        while of_node.len() >= INCARNATIONS_KEPT {
            let oldest = of_node.remove(0);
            self.by_proposer.remove(&(node, oldest));
        }
    }

    /// How many replies are kept (for INFO and tests).
    pub fn replies_kept(&self) -> usize {
        self.by_proposer.values().map(|s| s.replies.len()).sum()
    }

    /// Appends the snapshot encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.by_proposer.len() as u32).to_be_bytes());
        for ((node, incarnation), session) in &self.by_proposer {
            for n in [*node, *incarnation, session.floor] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.extend_from_slice(&(session.replies.len() as u32).to_be_bytes());
            for (seq, reply) in &session.replies {
                out.extend_from_slice(&seq.to_be_bytes());
                let bytes = reply.to_bytes();
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
    }

    /// Decodes what [`Sessions::encode`] wrote at the front of `data`; returns the rest.
    pub fn decode(mut data: &[u8]) -> Result<(Sessions, &[u8]), DecodeError> {
        let err = DecodeError("snapshot sessions");
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            if data.len() < n {
                return Err(err.clone());
            }
            let (head, tail) = data.split_at(n);
            data = tail;
            Ok(head)
        };
        let u32_of = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or_default());
        let u64_of = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let mut sessions = Sessions::default();
        for _ in 0..u32_of(take(4)?) {
            let (node, incarnation, floor) = (u64_of(take(8)?), u64_of(take(8)?), u64_of(take(8)?));
            let mut session = Session {
                floor,
                replies: BTreeMap::new(),
            };
            for _ in 0..u32_of(take(4)?) {
                let seq = u64_of(take(8)?);
                let len = u32_of(take(4)?) as usize;
                let bytes = take(len)?;
                let reply = match Reply::parse(bytes) {
                    Ok(Some((reply, used))) if used == bytes.len() => reply,
                    _ => return Err(DecodeError("snapshot session reply")),
                };
                session.replies.insert(seq, reply);
            }
            sessions.by_proposer.insert((node, incarnation), session);
        }
        Ok((sessions, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64, floor: u64) -> WriteId {
        WriteId {
            node: 2,
            incarnation: 77,
            seq,
            floor,
        }
    }

    #[test]
    fn a_write_id_round_trips_and_other_contexts_are_none() {
        let w = id(5, 3);
        assert_eq!(WriteId::decode(&w.encode()), Some(w));
        assert_eq!(WriteId::decode(&[0; 16]), None);
        assert_eq!(WriteId::decode(&[]), None);
    }

    #[test]
    fn a_copy_of_a_write_gets_the_first_reply_and_applies_nothing() {
        let mut s = Sessions::default();
        let mut counter = 0;
        let mut incr = |s: &mut Sessions, w: WriteId| {
            s.apply_once(w, || {
                counter += 1;
                Reply::Integer(counter)
            })
        };
        assert_eq!(incr(&mut s, id(1, 1)), Reply::Integer(1));
        assert_eq!(incr(&mut s, id(1, 1)), Reply::Integer(1), "the copy");
        assert_eq!(incr(&mut s, id(2, 1)), Reply::Integer(2));
        // Write 1 answered: the floor moves to 2 and its reply is forgotten.
        assert_eq!(incr(&mut s, id(3, 2)), Reply::Integer(3));
        assert_eq!(s.replies_kept(), 2);
        assert!(
            matches!(incr(&mut s, id(1, 2)), Reply::Error(_)),
            "below the floor"
        );
        assert_eq!(incr(&mut s, id(2, 2)), Reply::Integer(2));
        assert_eq!(counter, 3, "three writes applied, whatever the copies");
    }

    #[test]
    fn only_the_newest_incarnations_of_a_node_keep_their_sessions() {
        let mut s = Sessions::default();
        for incarnation in 1..=10 {
            let w = WriteId {
                node: 4,
                incarnation,
                seq: 1,
                floor: 1,
            };
            s.apply_once(w, Reply::ok);
        }
        let kept: Vec<u64> = s.by_proposer.keys().map(|(_, inc)| *inc).collect();
        assert_eq!(kept, (3..=10).collect::<Vec<_>>());
    }

    #[test]
    fn sessions_round_trip_through_the_snapshot_encoding() {
        let mut s = Sessions::default();
        s.apply_once(id(4, 4), Reply::ok);
        s.apply_once(id(5, 4), || Reply::err("value is not an integer"));
        let mut out = Vec::new();
        s.encode(&mut out);
        out.extend_from_slice(b"rest");
        let (back, rest) = Sessions::decode(&out).unwrap();
        assert_eq!((back, rest), (s, &b"rest"[..]));
        assert!(Sessions::decode(&out[..out.len() - 10]).is_err());
    }
}
