//! Client requests: dispatching each command, proposing writes and membership changes (or
//! redirecting them to the leader), answering them once applied here, and failing them when they
//! time out or the node is removed. Each proposal and read carries a context naming this node and
//! a sequence number, so that only the node that took a request answers it.

use std::time::Instant;

use bytes::Bytes;
use raft_core::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use raft_core::{Error as RaftError, StateRole};

use super::expiry::wall_clock_ms;
use super::reads::PendingRead;
use super::{Node, Request, WriteMode};
use crate::command::Command;
use crate::event::ReplyTo;
use crate::resp::Reply;
use crate::session::WriteId;

/// A request that is not yet proposed (no leader known, or the proposal was dropped).
pub(super) struct Waiting {
    command: Command,
    reply: ReplyTo,
    deadline: Instant,
}

/// A write or conf change proposed and not yet applied here.
pub(super) struct Proposed {
    reply: ReplyTo,
    deadline: Instant,
    /// For a write: its context (a [`WriteId`]) and data, to propose it again when the first
    /// proposal may have been lost; the write sessions apply it once. Shared with the proposal's
    /// entry, not copied.
    again: Option<(Bytes, Bytes)>,
    /// When it was last proposed.
    sent_at: Instant,
}

/// The context of a proposal or read: this node's id and a sequence number.
pub(super) fn request_context(id: u64, seq: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&id.to_be_bytes());
    ctx.extend_from_slice(&seq.to_be_bytes());
    ctx
}

/// The sequence number in a context made by node `id` (a read's, or a write's [`WriteId`]), if it
/// is one of its own. Sequence numbers never repeat across the node's restarts.
pub(super) fn own_sequence(id: u64, ctx: &[u8]) -> Option<u64> {
    if let Some(w) = WriteId::decode(ctx) {
        return (w.node == id).then_some(w.seq);
    }
    let (origin, seq) = ctx.split_first_chunk::<8>()?;
    let seq: [u8; 8] = seq.try_into().ok()?;
    (u64::from_be_bytes(*origin) == id).then_some(u64::from_be_bytes(seq))
}

impl Node {
    /// Handles a client's command that arrived with `deadline`: answers it at once, queues a read,
    /// or proposes a write (or makes it wait, behind the writes already waiting).
    pub(super) fn on_request(&mut self, request: Request, deadline: Instant) {
        let Request { command, reply } = request;
        // A removed node still answers what it can answer alone (INFO says it was removed).
        let local = matches!(
            command,
            Command::Ping(_)
                | Command::Echo(_)
                | Command::Quit
                | Command::Info(_)
                | Command::Status
        );
        if self.removed && !local {
            self.outbox
                .send(reply, Reply::err("this node was removed from the cluster"));
            return;
        }
        match command {
            Command::Ping(None) => self.outbox.send(reply, Reply::Status("PONG".to_string())),
            Command::Ping(Some(message)) | Command::Echo(message) => {
                self.outbox.send(reply, Reply::Bulk(message))
            }
            Command::Quit => self.outbox.send(reply, Reply::ok()),
            Command::Info(sections) => self
                .outbox
                .send(reply, Reply::Bulk(self.info(&sections).into_bytes())),
            // The connection answers these itself; one sent here has no connection state.
            Command::Connection(_) => self
                .outbox
                .send(reply, Reply::err("not a command for the node")),
            Command::Status => self
                .outbox
                .send(reply, Reply::Bulk(self.status().into_bytes())),
            Command::Read(command) => self.new_reads.push(PendingRead {
                command,
                reply,
                deadline,
            }),
            Command::Transfer(id) => {
                if !self.raw.raft.prs.conf().voters.contains(id) {
                    self.outbox
                        .send(reply, Reply::err(format!("node {id} is not a voter")));
                    return;
                }
                // Asynchronous: the leader brings `id` up to date, then tells it to campaign.
                self.raw.transfer_leader(id);
                self.outbox.send(reply, Reply::ok());
            }
            command @ (Command::Write(_) | Command::AddNode { .. } | Command::RemoveNode(_)) => {
                let w = Waiting {
                    command,
                    reply,
                    deadline,
                };
                // Behind any write already waiting, so that writes keep their order.
                if !self.waiting.is_empty() {
                    self.waiting.push_back(w);
                } else if let Some(w) = self.start_write(w) {
                    self.waiting.push_back(w);
                }
            }
        }
    }

    /// The leader's address, if a leader is known.
    pub(super) fn leader_addr(&self) -> Option<String> {
        let leader = self.raw.raft.leader_id;
        if leader == 0 {
            return None;
        }
        if leader == self.cfg.id {
            return Some(self.cfg.addr.clone());
        }
        self.sm
            .members
            .get(&leader)
            .cloned()
            .or_else(|| self.transport.peer_addr(leader).map(str::to_string))
    }

    /// Proposes a write or conf change, or answers a redirect. Returns the request if it must
    /// wait (no leader known, or the proposal was dropped) to be tried again at the next tick.
    fn start_write(&mut self, w: Waiting) -> Option<Waiting> {
        let is_leader = self.raw.raft.state == StateRole::Leader;
        if matches!(w.command, Command::Write(_))
            && self.cfg.write_mode == WriteMode::Redirect
            && !is_leader
        {
            return match self.leader_addr() {
                Some(addr) => {
                    self.outbox
                        .send(w.reply, Reply::Error(format!("MOVED 0 {addr}")));
                    None
                }
                None => Some(w),
            };
        }
        let seq = self.next_seq();
        // Every write this node still waits on is at or above the floor: the state machine may
        // forget the replies below it.
        let floor = self.proposed.keys().next().copied().unwrap_or(seq).min(seq);
        let ctx = WriteId {
            node: self.cfg.id,
            incarnation: self.incarnation,
            seq,
            floor,
        }
        .encode();
        let ctx = Bytes::from(ctx);
        // The proposal's moment: a relative TTL becomes a deadline by this node's clock, and the
        // stamp moves the replicated clock (a copy proposed again keeps both).
        let data = match &w.command {
            Command::Write(write) => Some(Bytes::from(write.encode_at(wall_clock_ms()))),
            _ => None,
        };
        let again = data.clone().map(|data| (ctx.clone(), data));
        let change = |change_type: ConfChangeType, node_id: u64, context: Vec<u8>| ConfChangeV2 {
            changes: vec![ConfChangeSingle {
                change_type: change_type as i32,
                node_id,
            }],
            context: context.into(),
            ..Default::default()
        };
        let result = match (&w.command, data) {
            (Command::Write(_), Some(data)) => self.raw.propose_bytes(ctx, data),
            (Command::AddNode { id, addr }, _) => self.raw.propose_conf_change(
                ctx.to_vec(),
                change(ConfChangeType::AddNode, *id, addr.as_bytes().to_vec()),
            ),
            (Command::RemoveNode(id), _) => self.raw.propose_conf_change(
                ctx.to_vec(),
                change(ConfChangeType::RemoveNode, *id, Vec::new()),
            ),
            _ => Err(RaftError::Invariant(
                "start_write of a command that is not a write",
            )),
        };
        match result {
            Ok(()) => {
                self.proposed.insert(
                    seq,
                    Proposed {
                        reply: w.reply,
                        deadline: w.deadline,
                        again,
                        sent_at: Instant::now(),
                    },
                );
                None
            }
            // No leader known, or one is being transferred to: try again at the next tick.
            Err(RaftError::ProposalDropped) => Some(w),
            Err(e) => {
                self.outbox.send(w.reply, Reply::err(e));
                None
            }
        }
    }

    /// At a tick: proposes the writes still waiting (in order; those past their deadline fail),
    /// and fails the proposed writes not applied in time.
    pub(super) fn retry_and_expire_writes(&mut self, now: Instant) {
        let mut queue = std::mem::take(&mut self.waiting);
        while let Some(w) = queue.pop_front() {
            if now >= w.deadline {
                self.outbox.send(
                    w.reply,
                    Reply::Error("CLUSTERDOWN no leader is known; try again".into()),
                );
            } else if let Some(w) = self.start_write(w) {
                // Still no way through: it and everything behind it wait for the next tick.
                self.waiting.push_back(w);
                self.waiting.append(&mut queue);
            }
        }
        // A write proposed two election timeouts ago and not applied: its forward may have been
        // dropped (by a leader transferring leadership or at its uncommitted-size limit).
        let stale = self.cfg.tick * (2 * self.cfg.election_ticks) as u32;
        self.propose_again(|p| now.saturating_duration_since(p.sent_at) >= stale);
        let timed_out: Vec<u64> = self
            .proposed
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in timed_out {
            if let Some(p) = self.proposed.remove(&seq) {
                self.outbox.send(
                    p.reply,
                    Reply::Error(
                        "TIMEOUT the write was not applied in time; it may still take effect"
                            .into(),
                    ),
                );
            }
        }
    }

    /// Proposes again, with the same context, the writes waiting here that `which` picks (a
    /// refused proposal waits for the next occasion). The write sessions apply each write once.
    pub(super) fn propose_again(&mut self, which: impl Fn(&Proposed) -> bool) {
        let now = Instant::now();
        // In sequence order: the order the clients sent them.
        let again: Vec<(u64, Bytes, Bytes)> = self
            .proposed
            .iter()
            .filter(|(_, p)| which(p))
            .filter_map(|(seq, p)| p.again.clone().map(|(ctx, data)| (*seq, ctx, data)))
            .collect();
        for (seq, ctx, data) in again {
            if self.raw.propose_bytes(ctx, data).is_ok() {
                if let Some(p) = self.proposed.get_mut(&seq) {
                    p.sent_at = now;
                }
            }
        }
    }

    /// Sends `reply` to the client whose proposal carried `ctx`, if it is waiting on this node.
    pub(super) fn answer(&mut self, ctx: &[u8], reply: Reply) {
        if let Some(seq) = own_sequence(self.cfg.id, ctx) {
            if let Some(proposed) = self.proposed.remove(&seq) {
                self.outbox.send(proposed.reply, reply);
            }
        }
    }

    /// Fails every request waiting on this node with `why` (it was removed from the cluster).
    pub(super) fn fail_everything(&mut self, why: &str) {
        let reply = Reply::err(why);
        for (_, p) in std::mem::take(&mut self.proposed) {
            self.outbox.send(p.reply, reply.clone());
        }
        for w in self.waiting.drain(..) {
            self.outbox.send(w.reply, reply.clone());
        }
        let reads = self.reads_in_flight.drain().flat_map(|(_, b)| b.reads);
        let reads = reads.chain(self.reads_confirmed.drain(..).flat_map(|(_, r)| r));
        for r in reads.chain(self.new_reads.drain(..)) {
            self.outbox.send(r.reply, reply.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_contexts_are_recognised_only_by_their_origin() {
        let ctx = request_context(3, 42);
        assert_eq!(own_sequence(3, &ctx), Some(42));
        assert_eq!(own_sequence(4, &ctx), None, "another node's request");
        assert_eq!(own_sequence(3, &ctx[..15]), None, "a truncated context");
        assert_eq!(
            own_sequence(3, b""),
            None,
            "the empty context of a leader's own entry"
        );
    }
}
