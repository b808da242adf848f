//! Read-only requests (thesis §6.4): the leader's bookkeeping of `read_index` requests waiting for
//! a heartbeat round to confirm that it still leads, and the [`ReadState`] handed to the application.
//!
//! Each confirmation round is named by a sequence number that the leader generates and sends in the
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
    /// The last round number handed out: never reused in the node's life.
    pub(crate) last_seq: u64,
    /// The queues, allocated on the first request (most nodes of a multi-raft process never
    /// serve a read as leader) and freed when emptied by a loss of leadership.
    pub(crate) queues: Option<Box<Queues>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Queues {
    pending: VecDeque<PendingRead>,
    /// Requests that arrived before the leader committed an entry of its term; they are started
    /// once it has (the commit index before that may be stale, thesis §6.4 step 1).
    waiting_for_commit: Vec<Message>,
    /// Confirmed reads for the application, taken by the next Ready.
    confirmed: Vec<ReadState>,
    /// Contexts of this node's own requests dropped on losing leadership, for the next Ready.
    dropped: Vec<Bytes>,
}

impl Queues {
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
            && self.waiting_for_commit.is_empty()
            && self.confirmed.is_empty()
            && self.dropped.is_empty()
    }
}

impl ReadOnly {
    /// An empty queue confirming reads by `option`.
    pub fn new(option: ReadOnlyOption) -> ReadOnly {
        ReadOnly {
            option,
            ..Default::default()
        }
    }

    fn queues(&mut self) -> &mut Queues {
        self.queues.get_or_insert_with(Box::default)
    }

    /// Registers a request at commit index `index` in a new round; returns the round's number,
    /// to be sent in the context of the heartbeats that confirm it.
    pub(crate) fn add_request(&mut self, index: u64, req: Message, self_id: u64) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.queues().pending.push_back(PendingRead {
            seq,
            req,
            index,
            acks: vec![self_id],
        });
        seq
    }

    /// Keeps a request until the leader has committed an entry of its term.
    pub(crate) fn wait_for_commit(&mut self, req: Message) {
        self.queues().waiting_for_commit.push(req);
    }

    /// Whether requests wait for the leader's first commit in its term.
    pub(crate) fn has_waiting(&self) -> bool {
        self.queues
            .as_ref()
            .is_some_and(|q| !q.waiting_for_commit.is_empty())
    }

    /// Takes the requests that waited for the leader's first commit in its term.
    pub(crate) fn take_waiting(&mut self) -> Vec<Message> {
        self.queues
            .as_mut()
            .map(|q| std::mem::take(&mut q.waiting_for_commit))
            .unwrap_or_default()
    }

    /// Records that `from` acknowledged round `seq`. Returns the round's acks if the round is
    /// still pending, so the caller can check for a quorum.
    pub(crate) fn recv_ack(&mut self, from: u64, seq: u64) -> Option<&[u64]> {
        let queues = self.queues.as_mut()?;
        let read = queues.pending.iter_mut().find(|r| r.seq == seq)?;
        if let Err(pos) = read.acks.binary_search(&from) {
            read.acks.insert(pos, from);
        }
        Some(&read.acks)
    }

    /// Releases round `seq` and every earlier one (a quorum confirming leadership now confirms it
    /// for every request that arrived before).
    pub(crate) fn advance(&mut self, seq: u64) -> Vec<PendingRead> {
        let Some(queues) = self.queues.as_mut() else {
            return Vec::new();
        };
        if !queues.pending.iter().any(|r| r.seq == seq) {
            return Vec::new();
        }
        let mut released = Vec::new();
        while queues.pending.front().is_some_and(|r| r.seq <= seq) {
            released.extend(queues.pending.pop_front());
        }
        released
    }

    /// The number of the newest pending round (0 when none is pending).
    pub fn last_pending_seq(&self) -> u64 {
        self.queues
            .as_ref()
            .and_then(|q| q.pending.back())
            .map_or(0, |r| r.seq)
    }

    /// The pending rounds, oldest first: (number, acknowledging voters).
    pub(crate) fn rounds(&self) -> impl DoubleEndedIterator<Item = (u64, &[u64])> {
        self.queues
            .iter()
            .flat_map(|q| q.pending.iter())
            .map(|r| (r.seq, &r.acks[..]))
    }

    /// How many requests wait for confirmation (or for the leader's first commit).
    pub fn pending_count(&self) -> usize {
        self.queues
            .as_ref()
            .map_or(0, |q| q.pending.len() + q.waiting_for_commit.len())
    }

    /// Forgets every pending request (leadership is lost); returns them.
    pub(crate) fn clear(&mut self) -> Vec<Message> {
        let Some(queues) = self.queues.as_mut() else {
            return Vec::new();
        };
        let mut dropped: Vec<Message> = queues.pending.drain(..).map(|r| r.req).collect();
        dropped.append(&mut queues.waiting_for_commit);
        self.shrink();
        dropped
    }

    /// Hands a confirmed read to the application (through the next Ready).
    pub(crate) fn push_confirmed(&mut self, rs: ReadState) {
        self.queues().confirmed.push(rs);
    }

    /// Reports a dropped request of this node's own to the application (next Ready).
    pub(crate) fn push_dropped(&mut self, ctx: Bytes) {
        self.queues().dropped.push(ctx);
    }

    /// The confirmed reads not yet handed out.
    pub fn confirmed(&self) -> &[ReadState] {
        self.queues.as_ref().map_or(&[], |q| &q.confirmed)
    }

    /// Whether confirmed reads or dropped requests wait for the next Ready.
    /// No request in any queue and no output waiting for a Ready.
    pub(crate) fn is_idle(&self) -> bool {
        self.queues.as_ref().is_none_or(|q| q.is_empty())
    }

    pub(crate) fn has_output(&self) -> bool {
        self.queues
            .as_ref()
            .is_some_and(|q| !q.confirmed.is_empty() || !q.dropped.is_empty())
    }

    /// Takes the confirmed reads and the dropped requests for a Ready.
    pub(crate) fn take_output(&mut self) -> (Vec<ReadState>, Vec<Bytes>) {
        let Some(queues) = self.queues.as_mut() else {
            return (Vec::new(), Vec::new());
        };
        let out = (
            std::mem::take(&mut queues.confirmed),
            std::mem::take(&mut queues.dropped),
        );
        self.shrink();
        out
    }

    /// Frees the queues once nothing is in them.
    fn shrink(&mut self) {
        if self.queues.as_ref().is_some_and(|q| q.is_empty()) {
            self.queues = None;
        }
    }
}

/// The context a leader puts in its heartbeats: a marker byte, the newest pending read round (0 for
/// none) and the leader's tick when it sent the heartbeat, both big-endian. Followers echo it, so a
/// response tells which read round it confirms and how fresh the follower's acknowledgement of
/// this leader is (for the lease). It cannot be mistaken for an application context: applications
/// never see it.
pub(crate) fn encode_heartbeat_ctx(seq: u64, sent_tick: u64) -> Bytes {
    let mut ctx = Vec::with_capacity(HEARTBEAT_CTX_LEN);
    ctx.push(HEARTBEAT_CTX_MARKER);
    ctx.extend_from_slice(&seq.to_be_bytes());
    ctx.extend_from_slice(&sent_tick.to_be_bytes());
    Bytes::from(ctx)
}

/// The (read round, sent tick) of a heartbeat context, or `None` for anything else.
pub(crate) fn decode_heartbeat_ctx(ctx: &[u8]) -> Option<(u64, u64)> {
    if ctx.len() != HEARTBEAT_CTX_LEN || ctx[0] != HEARTBEAT_CTX_MARKER {
        return None;
    }
    let seq = u64::from_be_bytes(ctx[1..9].try_into().ok()?);
    let sent = u64::from_be_bytes(ctx[9..17].try_into().ok()?);
    Some((seq, sent))
}

const HEARTBEAT_CTX_MARKER: u8 = 0xA5;
const HEARTBEAT_CTX_LEN: usize = 17;
