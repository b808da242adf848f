//! How a leader may confirm a read (thesis §6.4), checked from what the simulator saw on the
//! network rather than from the core's bookkeeping: when a leader answers a read (a `ReadState`
//! for its own request, a `MsgReadIndexResp` for a follower's), a quorum of its voters must have
//! acknowledged a heartbeat the leader sent after the request reached it (ReadIndex), or, with
//! lease reads, a quorum must have acknowledged heartbeats sent less than an election timeout ago
//! (by the leader's clock) and the leader must not have told anyone to campaign in its term.

use super::node::SimNode;
use bytes::Bytes;
use raft_core::eraftpb::Message;
use raft_core::ReadOnlyOption;
use std::collections::{BTreeMap, BTreeSet};

/// Per leader and term, what the simulator saw of its heartbeats and the reads it got.
#[derive(Debug, Default)]
pub(super) struct Confirmations {
    /// (leader, term, context) of each heartbeat put on the network -> (event, leader's tick).
    sent: BTreeMap<(u64, u64, Bytes), (u64, u64)>,
    /// (leader, term, voter) -> the latest (event, tick) of a heartbeat that voter acknowledged.
    acked: BTreeMap<(u64, u64, u64), (u64, u64)>,
    /// (leader, read id, term) -> the first time the request reached the leader in that term
    /// (a duplicate may reach it again later): the event, its voters then, and whether its lease
    /// held then.
    arrived: BTreeMap<(u64, u64, u64), Arrival>,
    /// (leader, term) pairs in which the leader sent `MsgTimeoutNow`.
    timeout_now: BTreeSet<(u64, u64)>,
    /// (leader, read id, term) answers already judged.
    judged: BTreeSet<(u64, u64, u64)>,
    /// Per leader: its voters at the last scan (a release can come from applying a change).
    last_voters: BTreeMap<u64, (Vec<u64>, Vec<u64>)>,
}

/// A read request as it reached a leader.
#[derive(Debug)]
struct Arrival {
    event: u64,
    term: u64,
    voters: Vec<u64>,
    outgoing: Vec<u64>,
    lease: bool,
}

/// Whether a quorum of each non-empty half says yes (the leader always does).
fn quorum(halves: [&[u64]; 2], leader: u64, ok: &dyn Fn(u64) -> bool) -> bool {
    halves.iter().filter(|h| !h.is_empty()).all(|h| {
        let yes = h.iter().filter(|v| **v == leader || ok(**v)).count();
        yes * 2 > h.len()
    })
}

/// The read id a request or answer carries (the first 8 bytes of its context).
pub(super) fn read_id(ctx: &[u8]) -> Option<u64> {
    ctx.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

impl Confirmations {
    /// A heartbeat (or `MsgTimeoutNow`) leaves leader `m.from` at `event`, its clock at `tick`.
    pub(super) fn sent(&mut self, m: &Message, event: u64, tick: u64) {
        match m.msg_type() {
            raft_core::eraftpb::MessageType::MsgHeartbeat => {
                self.sent
                    .entry((m.from, m.term, m.context.clone()))
                    .or_insert((event, tick));
            }
            raft_core::eraftpb::MessageType::MsgTimeoutNow => {
                self.timeout_now.insert((m.from, m.term));
            }
            _ => {}
        }
    }

    /// A heartbeat response was delivered to `m.to`, which leads `m.term`.
    pub(super) fn acked(&mut self, m: &Message) {
        let Some(&(event, tick)) = self.sent.get(&(m.to, m.term, m.context.clone())) else {
            return;
        };
        let latest = self.acked.entry((m.to, m.term, m.from)).or_insert((0, 0));
        latest.0 = latest.0.max(event);
        latest.1 = latest.1.max(tick);
    }

    /// Read `id` reached `node` at `event` (its own `read_index`, or a follower's request), its
    /// clock at `now`, when it leads.
    pub(super) fn arrived(&mut self, node: &SimNode, id: u64, event: u64, now: u64, et: u64) {
        let Some(r) = node.raw.as_ref().map(|raw| &raw.raft) else {
            return;
        };
        if r.state != raft_core::StateRole::Leader {
            return;
        }
        let cs = r.prs.conf_state();
        let (leader, term) = (node.id, r.term);
        let lease = !self.timeout_now.contains(&(leader, term))
            && r.lead_transferee.is_none()
            && quorum([&cs.voters, &cs.voters_outgoing], leader, &|v| {
                self.acked
                    .get(&(leader, term, v))
                    .is_some_and(|(_, tick)| now + 1 < tick + et)
            });
        self.arrived.entry((leader, id, term)).or_insert(Arrival {
            event,
            term,
            voters: cs.voters,
            outgoing: cs.voters_outgoing,
            lease,
        });
    }

    /// After every event: judges every answer a leader produced since the last scan (its
    /// confirmed read states and its `MsgReadIndexResp`s not yet handed out), at the moment it
    /// produced them.
    pub(super) fn scan(
        &mut self,
        nodes: &BTreeMap<u64, SimNode>,
        now_of: impl Fn(u64) -> u64,
        mode: ReadOnlyOption,
        election_tick: u64,
    ) -> Result<(), String> {
        for (id, node) in nodes {
            let Some(r) = node.raw.as_ref().map(|raw| &raw.raft) else {
                continue;
            };
            let own = r.read_states().iter().map(|rs| read_id(&rs.request_ctx));
            let forwarded = r
                .msgs
                .iter()
                .filter(|m| m.msg_type() == raft_core::eraftpb::MessageType::MsgReadIndexResp)
                .map(|m| m.entries.first().and_then(|e| read_id(&e.data)));
            let answers: Vec<u64> = own.chain(forwarded).flatten().collect();
            for read in answers {
                if self.judged.insert((*id, read, r.term)) {
                    self.answered(node, read, now_of(*id), mode, election_tick)?;
                }
            }
            if r.state == raft_core::StateRole::Leader {
                let cs = r.prs.conf_state();
                self.last_voters
                    .insert(*id, (cs.voters, cs.voters_outgoing));
            }
        }
        Ok(())
    }

    /// `leader` (node `node`, its clock at `now`) answers read `id`: checks that it was entitled
    /// to.
    fn answered(
        &self,
        node: &SimNode,
        id: u64,
        now: u64,
        mode: ReadOnlyOption,
        election_tick: u64,
    ) -> Result<(), String> {
        let Some(raw) = node.raw.as_ref() else {
            return Ok(());
        };
        let r = &raw.raft;
        let leader = node.id;
        let Some(a) = self.arrived.get(&(leader, id, r.term)) else {
            return Ok(()); // it did not lead when the request came: not its answer to judge
        };
        let (arrived, term) = (a.event, a.term);
        let cs = r.prs.conf_state();
        let last = self.last_voters.get(&leader);
        let confirmed = |ok: &dyn Fn(u64) -> bool| {
            quorum([&cs.voters, &cs.voters_outgoing], leader, ok)
                || quorum([&a.voters, &a.outgoing], leader, ok)
                || last.is_some_and(|(i, o)| quorum([i, o], leader, ok))
        };
        let round = |v: u64| {
            self.acked
                .get(&(leader, term, v))
                .is_some_and(|(event, _)| *event >= arrived)
        };
        if confirmed(&round) {
            return Ok(());
        }
        if mode == ReadOnlyOption::LeaseBased && !self.timeout_now.contains(&(leader, term)) {
            let lease = |v: u64| {
                self.acked
                    .get(&(leader, term, v))
                    .is_some_and(|(_, tick)| now + 1 < tick + election_tick)
            };
            if a.lease || confirmed(&lease) {
                return Ok(());
            }
        }
        Err(format!(
            "read confirmation: leader {leader} (term {term}) answers read {id} without a quorum of \
             {:?}{} acknowledging a heartbeat sent after the request arrived (event {arrived}){}",
            cs.voters,
            if cs.voters_outgoing.is_empty() {
                String::new()
            } else {
                format!(" and {:?}", cs.voters_outgoing)
            },
            if mode == ReadOnlyOption::LeaseBased {
                " nor a valid lease"
            } else {
                ""
            }
        ))
    }
}
