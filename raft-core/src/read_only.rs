//! Read-only requests (thesis §6.4): the leader's bookkeeping of `read_index` requests waiting for
//! a heartbeat round to confirm that it still leads, and the [`ReadState`] handed to the application.
//!
//! Each confirmation round is named by a sequence number that the leader generates and sends as the
//! heartbeat context, never by the application's request context. Two requests with the same
//! context (a retry, a duplicate) are therefore two different rounds, and a heartbeat response
//! from an old round can only release requests registered before that round began: the stale-read
//! hazard of etcd-io/etcd#20418 cannot arise.

use crate::config::ReadOnlyOption;
use bytes::Bytes;
use raft_proto::eraftpb::Message;
use std::collections::VecDeque;

/// A linearizable read point: once the application has applied up to `index`, it may serve the
/// read identified by `request_ctx` from its state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadState {
    /// The commit index at the time the read was requested (and leadership then confirmed).
    pub index: u64,
    /// The context the application passed to `read_index`.
    pub request_ctx: Bytes,
}

/// One request waiting for its round to be acknowledged by a quorum.
#[derive(Debug, Clone)]
pub(crate) struct PendingRead {
    /// The round (heartbeat context) that confirms it.
    pub seq: u64,
    /// The request (its `from` is who gets the answer; its first entry's data is the context).
    pub req: Message,
    /// The leader's commit index when the request arrived.
    pub index: u64,
    /// Voters that acknowledged this round (sorted ids).
    pub acks: Vec<u64>,
}

/// The leader's queue of read requests awaiting confirmation.
#[derive(Debug, Clone, Default)]
pub struct ReadOnly {
    /// How reads are confirmed.
    pub option: ReadOnlyOption,
    pub(crate) pending: VecDeque<PendingRead>,
    /// Requests that arrived before the leader committed an entry of its term; they are started
    /// once it has (the commit index before that may be stale, thesis §6.4 step 1).
    pub(crate) waiting_for_commit: Vec<Message>,
    last_seq: u64,
}

impl ReadOnly {
    /// An empty queue confirming reads by `option`.
    pub fn new(option: ReadOnlyOption) -> ReadOnly {
        ReadOnly {
            option,
            ..Default::default()
        }
    }

    /// Registers a request at commit index `index` in a new round; returns the round's context,
    /// to be sent with the heartbeats that confirm it.
    pub(crate) fn add_request(&mut self, index: u64, req: Message, self_id: u64) -> Bytes {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.pending.push_back(PendingRead {
            seq,
            req,
            index,
            acks: vec![self_id],
        });
        encode_seq(seq)
    }

    /// Records that `from` acknowledged the round named by `ctx`. Returns the round's acks if the
    /// round is still pending, so the caller can check for a quorum.
    pub(crate) fn recv_ack(&mut self, from: u64, ctx: &[u8]) -> Option<&[u64]> {
        let seq = decode_seq(ctx)?;
        let read = self.pending.iter_mut().find(|r| r.seq == seq)?;
        if let Err(pos) = read.acks.binary_search(&from) {
            read.acks.insert(pos, from);
        }
        Some(&read.acks)
    }

    /// Releases the round named by `ctx` and every earlier one (a quorum confirming leadership now
    /// confirms it for every request that arrived before).
    pub(crate) fn advance(&mut self, ctx: &[u8]) -> Vec<PendingRead> {
        let Some(seq) = decode_seq(ctx) else {
            return Vec::new();
        };
        if !self.pending.iter().any(|r| r.seq == seq) {
            return Vec::new();
        }
        let mut released = Vec::new();
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            released.extend(self.pending.pop_front());
        }
        released
    }

    /// The context of the newest pending round, if any.
    pub fn last_pending_ctx(&self) -> Option<Bytes> {
        self.pending.back().map(|r| encode_seq(r.seq))
    }

    /// How many requests wait for confirmation (or for the leader's first commit).
    pub fn pending_count(&self) -> usize {
        self.pending.len() + self.waiting_for_commit.len()
    }

    /// Forgets every pending request (leadership is lost); returns them.
    pub(crate) fn clear(&mut self) -> Vec<Message> {
        let mut dropped: Vec<Message> = self.pending.drain(..).map(|r| r.req).collect();
        dropped.append(&mut self.waiting_for_commit);
        dropped
    }
}

/// The heartbeat context of round `seq`: a marker byte and the big-endian sequence number, so it
/// cannot be mistaken for an application context or for the empty context of plain heartbeats.
fn encode_seq(seq: u64) -> Bytes {
    let mut ctx = Vec::with_capacity(9);
    ctx.push(READ_ROUND_MARKER);
    ctx.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(ctx)
}

fn decode_seq(ctx: &[u8]) -> Option<u64> {
    match ctx {
        [READ_ROUND_MARKER, rest @ ..] if rest.len() == 8 => {
            Some(u64::from_be_bytes(rest.try_into().ok()?))
        }
        _ => None,
    }
}

const READ_ROUND_MARKER: u8 = 0xA5;
