//! Linearizable reads (thesis §6.4): the reads that arrive in one turn share one `read_index`
//! request; once confirmed, each is served when the state machine reaches its read index. A read
//! not confirmed in time fails; one whose request was lost is asked again.

use std::time::Instant;

use raft_core::ReadState;

use super::requests::{own_sequence, request_context};
use super::Node;
use crate::command::ReadCommand;
use crate::event::ReplyTo;
use crate::kv::Ttl;
use crate::resp::Reply;

/// A read waiting for its read index, or for the state machine to reach it.
pub(super) struct PendingRead {
    pub(super) command: ReadCommand,
    pub(super) reply: ReplyTo,
    pub(super) deadline: Instant,
}

/// The reads covered by one `read_index` request.
pub(super) struct ReadBatch {
    pub(super) reads: Vec<PendingRead>,
    /// When `read_index` last accepted it (`None`: it must be asked again).
    sent_at: Option<Instant>,
}

impl Node {
    /// Asks for one read index covering every read that arrived this turn.
    pub(super) fn flush_reads(&mut self) {
        if self.new_reads.is_empty() {
            return;
        }
        let seq = self.next_seq();
        let batch = ReadBatch {
            reads: std::mem::take(&mut self.new_reads),
            sent_at: None,
        };
        self.reads_in_flight.insert(seq, batch);
        self.send_read(seq);
    }

    /// Asks for the read index of the batch `seq` (again, if it was lost or refused).
    pub(super) fn send_read(&mut self, seq: u64) {
        let ctx = request_context(self.cfg.id, seq);
        self.read_rounds += 1;
        let accepted = self.raw.read_index(ctx).is_ok();
        if let Some(batch) = self.reads_in_flight.get_mut(&seq) {
            // When refused (no leader known) it is asked again at the next tick.
            batch.sent_at = accepted.then(Instant::now);
        }
    }

    /// Moves the batches whose read index was confirmed to wait for the state machine, and
    /// serves those it has already reached.
    pub(super) fn on_read_states(&mut self, states: Vec<ReadState>) {
        for state in states {
            let Some(seq) = own_sequence(self.cfg.id, &state.request_ctx) else {
                continue;
            };
            if let Some(batch) = self.reads_in_flight.remove(&seq) {
                self.reads_confirmed.push((state.index, batch.reads));
            }
        }
        self.serve_confirmed_reads();
    }

    /// Answers the confirmed reads whose index the state machine has reached (thesis §6.4: the
    /// read sees every write committed before it was received).
    pub(super) fn serve_confirmed_reads(&mut self) {
        if self.reads_confirmed.is_empty() {
            return;
        }
        let applied = self.sm.applied_index;
        let mut confirmed = std::mem::take(&mut self.reads_confirmed);
        for (_, reads) in confirmed.extract_if(.., |(index, _)| *index <= applied) {
            self.reads_served += reads.len() as u64;
            for read in reads {
                let reply = self.execute_read(&read.command);
                self.outbox.send(read.reply, reply);
            }
        }
        self.reads_confirmed = confirmed;
    }

    /// The answer to a read, from the state machine as it is now: a function of the entries
    /// applied, expiry included (never of this node's clock).
    fn execute_read(&self, command: &ReadCommand) -> Reply {
        let value = |key: &Vec<u8>| {
            self.sm
                .get(key)
                .map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
        };
        match command {
            ReadCommand::Get(key) => value(key),
            ReadCommand::MGet(keys) => Reply::Array(keys.iter().map(value).collect()),
            ReadCommand::Exists(keys) => {
                Reply::Integer(keys.iter().filter(|k| self.sm.get(k).is_some()).count() as i64)
            }
            ReadCommand::Strlen(key) => Reply::Integer(self.sm.get(key).map_or(0, Vec::len) as i64),
            ReadCommand::Ttl(key) | ReadCommand::Pttl(key) => {
                let in_ms = matches!(command, ReadCommand::Pttl(_));
                Reply::Integer(match self.sm.ttl(key) {
                    Ttl::Missing => -2,
                    Ttl::Persistent => -1,
                    Ttl::Remaining(ms) if in_ms => i64::try_from(ms).unwrap_or(i64::MAX),
                    // Redis rounds to the nearest second.
                    Ttl::Remaining(ms) => {
                        i64::try_from(ms.saturating_add(500) / 1000).unwrap_or(i64::MAX)
                    }
                })
            }
            ReadCommand::DbSize => Reply::Integer(self.sm.len() as i64),
        }
    }

    /// At a tick: fails the reads not confirmed in time and asks again for the read indexes that
    /// were refused or may have been lost.
    pub(super) fn expire_and_resend_reads(&mut self, now: Instant) {
        let mut expire = |reads: &mut Vec<PendingRead>| {
            for r in reads.extract_if(.., |r| now >= r.deadline) {
                self.outbox.send(
                    r.reply,
                    Reply::Error(
                        "CLUSTERDOWN the read was not confirmed by a leader in time".into(),
                    ),
                );
            }
        };
        self.reads_in_flight
            .values_mut()
            .for_each(|b| expire(&mut b.reads));
        self.reads_in_flight.retain(|_, b| !b.reads.is_empty());
        self.reads_confirmed
            .iter_mut()
            .for_each(|(_, reads)| expire(reads));
        self.reads_confirmed.retain(|(_, reads)| !reads.is_empty());
        // A forwarded read is lost if the leader changes; ask again after an election timeout
        // (a read has no effect, so asking twice is harmless).
        let retry_after = self.cfg.tick * self.cfg.election_ticks as u32;
        let resend: Vec<u64> = self
            .reads_in_flight
            .iter()
            .filter(|(_, b)| {
                b.sent_at
                    .is_none_or(|at| now.duration_since(at) >= retry_after)
            })
            .map(|(seq, _)| *seq)
            .collect();
        for seq in resend {
            self.send_read(seq);
        }
    }
}
