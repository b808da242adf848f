//! Outcomes of forwarded proposals (issue 18): a follower's tracked proposal carries a stamp that
//! the leader answers, saying where it appended it or that it did not.
//!
//! raft-rs's wire has no message for this, so both directions ride in the `context` of a
//! `MsgPropose`, a field no implementation reads on that message type:
//! - the **stamp**, on the forwarded proposal: [`STAMP_MAGIC`], then the origin node, the term of
//!   the leader it was meant for, and the origin's id for it (three little-endian `u64`s). Only
//!   the leader of that very term appends a stamped proposal; any other node that holds it answers
//!   that it was not appended (the stamp then travels nowhere else, so it can never be appended
//!   later). A follower of that term passes it on to its leader unchanged.
//! - the **answer**, a `MsgPropose` without entries from the leader to the origin: [`ANSWER_MAGIC`],
//!   then the id, the term, and the index of its (first) entry, or 0 when it was not appended.
//!
//! Two hazards shape the ids and the leader's bookkeeping:
//! - **A node restarts** and forwards again in the same term, while answers to its previous life's
//!   proposals are still on the way. Its ids mix a counter with a digest of the proposal and of
//!   the node's state, so an old answer names an id the new life is not waiting for (unless it
//!   proposed the very same bytes at the same count from the same state).
//! - **The network duplicates** a forwarded proposal. A leader remembers the last
//!   [`LEDGER_LEN`] stamps it handled in its term, with their answer: a duplicate is answered
//!   again the same way and never appended twice, and one refused stays refused, so that
//!   "not appended" stays true. (A duplicate delayed past that many later forwarded proposals is
//!   handled afresh, as raft-rs handles every duplicate.)
//!
//! Answers go only to the origin named by a stamp, and only our nodes write stamps, so a raft-rs
//! peer never receives one. A raft-rs leader appends a stamped proposal as any other and does not
//! answer; the origin learns nothing more until the term ends (see
//! [`ProposalTracker`](crate::proposal::ProposalTracker)).

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::Hasher;

use raft_proto::eraftpb::{Entry, Message, MessageType};
use slog::debug;

use super::Raft;
use crate::error::{Error, Result};
use crate::proposal::ForwardAnswer;
use crate::storage::Storage;

/// The start of a stamped forwarded proposal's context.
pub(crate) const STAMP_MAGIC: &[u8] = b"\xA6fwd";
/// The start of a leader's answer to a stamped proposal.
pub(crate) const ANSWER_MAGIC: &[u8] = b"\xA6fwa";
/// Answers kept for the application at most; past it the oldest are dropped (a peer flooding
/// answers must not grow memory without bound).
const MAX_ANSWERS: usize = 1 << 16;
/// Stamps a leader remembers in its term, with their answers (see the module docs).
pub(crate) const LEDGER_LEN: usize = 1024;

/// A forwarded proposal's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The node that proposed it (and waits for the answer).
    pub(crate) origin: u64,
    /// The term of the only leader that may append it.
    pub(crate) term: u64,
    /// The origin's id for it.
    pub(crate) id: u64,
}

fn encode(magic: &[u8], words: [u64; 3]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(magic.len() + 24);
    out.extend_from_slice(magic);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.into()
}

fn decode(magic: &[u8], context: &[u8]) -> Option<[u64; 3]> {
    let rest = context.strip_prefix(magic)?;
    if rest.len() != 24 {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(rest[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Some([word(0), word(1), word(2)])
}

impl Stamp {
    /// The context carrying this stamp.
    pub(crate) fn encode(&self) -> bytes::Bytes {
        encode(STAMP_MAGIC, [self.origin, self.term, self.id])
    }

    /// The stamp of a proposal, if it carries one.
    pub(crate) fn of(m: &Message) -> Option<Stamp> {
        let [origin, term, id] = decode(STAMP_MAGIC, &m.context)?;
        Some(Stamp { origin, term, id })
    }
}

/// Whether `m` carries a stamp (cheap: the start of its context).
pub(crate) fn is_stamped(m: &Message) -> bool {
    m.context.starts_with(STAMP_MAGIC)
}

/// The leader's answer carried by `m`, if it is one (a `MsgPropose` whose context is an answer).
#[cold]
pub(crate) fn answer_of(m: &Message) -> Option<ForwardAnswer> {
    if m.msg_type != MessageType::MsgPropose as i32 || !m.entries.is_empty() {
        return None;
    }
    let [id, term, index] = decode(ANSWER_MAGIC, &m.context)?;
    Some(if index == 0 {
        ForwardAnswer::NotAppended { id, term }
    } else {
        ForwardAnswer::Appended { id, term, index }
    })
}

/// What a node keeps for the proposals it forwarded with a stamp, and as leader for the stamps
/// it handled; allocated on first use.
#[derive(Debug, Default)]
pub(crate) struct Forwards {
    /// Stamps issued by this node (the counter mixed into their ids).
    issued: u64,
    /// A digest of this node's state when it issued its first stamp (mixed into the ids).
    nonce: u64,
    /// Answers received, not yet taken by the application.
    answers: Vec<ForwardAnswer>,
    /// As leader: the term of `ledger`, and the last stamps handled in it (origin, id, index
    /// appended at or 0).
    ledger_term: u64,
    ledger: VecDeque<(u64, u64, u64)>,
    /// Whether stamps of `ledger_term` were forgotten to keep the ledger bounded.
    evicted: bool,
}

/// Mixes `words` into one 64-bit digest (not cryptographic: it tells apart, it does not hide).
fn digest(words: impl IntoIterator<Item = u64>, bytes: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for w in words {
        h.write_u64(w);
    }
    for b in bytes {
        h.write(b);
        h.write_usize(b.len());
    }
    h.finish()
}

impl<T: Storage> Raft<T> {
    /// A new stamp for `entry`, proposed by this node for the leader of the current term.
    pub(crate) fn new_stamp(&mut self, entry: &Entry) -> Stamp {
        let state = [
            self.id,
            self.term,
            self.vote,
            self.raft_log.committed,
            self.raft_log.last_index(),
        ];
        let forwards = self.forwards.get_or_insert_with(Default::default);
        if forwards.issued == 0 {
            forwards.nonce = digest(state, &[]);
        }
        forwards.issued += 1;
        let id = digest(
            [forwards.nonce, forwards.issued, entry.entry_type as u64],
            &[&entry.data, &entry.context],
        )
        .max(1);
        Stamp {
            origin: self.id,
            term: self.term,
            id,
        }
    }

    /// What this node knows it answered a stamp as leader of the stamp's term: `Some(index)`
    /// (0: not appended), or `None` if it cannot tell (it did not lead that term since it
    /// started, led another since, or forgot the stamp among too many).
    pub(crate) fn stamp_answer(&self, stamp: Stamp) -> Option<u64> {
        if stamp.term != self.led_term {
            return None;
        }
        match self.ledger_entry(stamp) {
            Some(index) => Some(index),
            None if self
                .forwards
                .as_ref()
                .is_some_and(|f| f.ledger_term == stamp.term && f.evicted) =>
            {
                None
            }
            None => Some(0),
        }
    }

    /// The answer recorded in the ledger for `stamp` (index, 0: not appended), if it is there.
    pub(crate) fn ledger_entry(&self, stamp: Stamp) -> Option<u64> {
        let f = self
            .forwards
            .as_ref()
            .filter(|f| f.ledger_term == stamp.term)?;
        f.ledger
            .iter()
            .find(|(origin, id, _)| (*origin, *id) == (stamp.origin, stamp.id))
            .map(|(.., index)| *index)
    }

    /// Remembers this leader's answer to a stamp of its term (`index` 0: not appended).
    fn remember_stamp(&mut self, stamp: Stamp, index: u64) {
        let term = self.term;
        let f = self.forwards.get_or_insert_with(Default::default);
        if f.ledger_term != term {
            f.ledger_term = term;
            f.ledger.clear();
            f.evicted = false;
        }
        if f.ledger.len() >= LEDGER_LEN {
            f.ledger.pop_front();
            f.evicted = true;
        }
        f.ledger.push_back((stamp.origin, stamp.id, index));
    }

    /// A leader handles a stamped proposal: only one of its own term is appended, a duplicate
    /// is answered again the same way (never appended twice, and one refused stays refused), and
    /// the origin is told where it went. Kept out of the leader's step so that its common path
    /// stays small.
    #[inline(never)]
    pub(crate) fn propose_stamped(&mut self, m: Message) -> Result<()> {
        let Some(stamp) = Stamp::of(&m).filter(|s| s.term == self.term) else {
            debug!(self.log(), "dropping a proposal forwarded to another term's leader";
                "context" => ?m.context);
            self.refuse_forward(&m);
            return Err(Error::ProposalDropped);
        };
        if let Some(index) = self.ledger_entry(stamp) {
            self.answer_forward(stamp, (index > 0).then_some(index));
            return if index > 0 {
                Ok(())
            } else {
                Err(Error::ProposalDropped)
            };
        }
        let first = self.raft_log.last_index() + 1;
        let result = match self.lead_transferee {
            Some(transferee) => {
                debug!(self.log(), "dropping proposal: leadership transfer in progress";
                    "to" => transferee);
                Err(Error::ProposalDropped)
            }
            None => self.propose_entries(m.entries),
        };
        let index = result.is_ok().then_some(first);
        self.remember_stamp(stamp, index.unwrap_or(0));
        self.answer_forward(stamp, index);
        result
    }

    /// Answers the origin of a stamped proposal: appended with its first entry at `index` in this
    /// leader's term, or not appended (`None`).
    pub(crate) fn answer_forward(&mut self, stamp: Stamp, index: Option<u64>) {
        let answer = match index {
            Some(index) => ForwardAnswer::Appended {
                id: stamp.id,
                term: stamp.term,
                index,
            },
            None => ForwardAnswer::NotAppended {
                id: stamp.id,
                term: stamp.term,
            },
        };
        debug!(self.log(), "answering a forwarded proposal";
            "origin" => stamp.origin, "answer" => ?answer);
        if stamp.origin == self.id {
            self.receive_forward_answer(answer);
            return;
        }
        self.send(Message {
            msg_type: MessageType::MsgPropose as i32,
            to: stamp.origin,
            context: encode(ANSWER_MAGIC, [stamp.id, stamp.term, index.unwrap_or(0)]),
            ..Default::default()
        });
    }

    /// Answers the origin of a stamped proposal `m` of another node that this node does not
    /// append or pass on (its own proposals fail synchronously instead): with what it answered
    /// as leader of the stamp's term if it remembers, since a duplicate of an appended proposal
    /// must not be called not appended; not at all if it cannot tell (the origin then decides
    /// `Unanswered` when the term is over).
    pub(crate) fn refuse_forward(&mut self, m: &Message) {
        let Some(stamp) = Stamp::of(m).filter(|s| s.origin != self.id) else {
            return;
        };
        match self.stamp_answer(stamp) {
            Some(index) => self.answer_forward(stamp, (index > 0).then_some(index)),
            None => debug!(self.log(), "dropping a forwarded proposal of a term this node cannot \
                answer for"; "stamp" => ?stamp, "led_term" => self.led_term),
        }
    }

    /// Keeps a leader's answer for the application, if it answers a stamp of this node.
    pub(crate) fn receive_forward_answer(&mut self, answer: ForwardAnswer) {
        let Some(forwards) = self.forwards.as_mut().filter(|f| f.issued > 0) else {
            debug!(self.log(), "ignored an answer to a proposal this node did not forward";
                "answer" => ?answer);
            return;
        };
        if forwards.answers.len() >= MAX_ANSWERS {
            forwards.answers.remove(0);
        }
        forwards.answers.push(answer);
    }

    /// Takes the answers received since the last call.
    pub(crate) fn take_forward_answers(&mut self) -> Vec<ForwardAnswer> {
        self.forwards
            .as_mut()
            .map(|f| std::mem::take(&mut f.answers))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_answers_round_trip_and_reject_other_contexts() {
        let stamp = Stamp {
            origin: 3,
            term: 7,
            id: 42,
        };
        let m = Message {
            msg_type: MessageType::MsgPropose as i32,
            context: stamp.encode(),
            ..Default::default()
        };
        assert_eq!(Stamp::of(&m), Some(stamp));
        assert_eq!(answer_of(&m), None, "a stamp is not an answer");
        let mut answer = Message {
            msg_type: MessageType::MsgPropose as i32,
            context: encode(ANSWER_MAGIC, [42, 7, 9]),
            ..Default::default()
        };
        assert_eq!(
            answer_of(&answer),
            Some(ForwardAnswer::Appended {
                id: 42,
                term: 7,
                index: 9
            })
        );
        answer.context = encode(ANSWER_MAGIC, [42, 7, 0]);
        assert_eq!(
            answer_of(&answer),
            Some(ForwardAnswer::NotAppended { id: 42, term: 7 })
        );
        let mut short = answer.context.to_vec();
        short.pop();
        answer.context = short.into();
        assert_eq!(answer_of(&answer), None, "a truncated answer is ignored");
        answer.context = b"\xA6quiesce".to_vec().into();
        assert_eq!(answer_of(&answer), None);
    }
}
