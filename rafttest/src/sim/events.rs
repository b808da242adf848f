//! The events of the faulty phase that every deployment has: messages delivered (or lost,
//! duplicated, reordered), clocks ticking, Readys taken, written and applied, clients writing and
//! reading on any node, snapshots taken.

use super::confirm;
use super::durability;
use super::node::encode_write;
use super::options::Clock;
use super::rules;
use super::store::SimStore;
use super::timing::Timing;
use super::{PendingRead, Sim};
use raft_core::eraftpb::{Message, MessageType};
use raft_core::proposal::Proposed;
use raft_core::{SnapshotStatus, StateRole};
use rand::RngExt;

/// Event kinds and their weights (per mille-ish; disruptive ones are also gated by the run's
/// chaos level).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Deliver,
    Tick,
    Ready,
    Persist,
    Apply,
    Propose,
    Read,
    Compact,
    Partition,
    Crash,
    Transfer,
    Membership,
    Campaign,
    RequestSnapshot,
    Quiesce,
    Wake,
}

impl Sim {
    /// One random event of the faulty phase.
    pub(super) fn step_random(&mut self) -> Result<(), String> {
        if self.wake_at.values().any(|at| *at <= self.event) {
            let event = self.event;
            let due: Vec<u64> = self
                .wake_at
                .iter()
                .filter(|(_, at)| **at <= event)
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                self.wake_at.remove(&id);
                self.wake(id, "by the failure detector");
            }
        }
        if self.f.quiescence && self.event >= self.idle_until && self.rng.random_bool(0.0002) {
            self.idle_until = self.event + self.rng.random_range(300..2000);
            self.log(format!("clients idle until event {}", self.idle_until));
        }
        if self.delayed.iter().any(|(at, _)| *at <= self.event) {
            let event = self.event;
            let (due, later): (Vec<_>, Vec<_>) =
                self.delayed.drain(..).partition(|(at, _)| *at <= event);
            self.delayed = later;
            self.in_flight.extend(due.into_iter().map(|(_, m)| m));
        }
        let table = [
            (Kind::Deliver, 300),
            (Kind::Tick, self.f.tick_weight),
            (Kind::Ready, self.f.ready_weight),
            (Kind::Persist, self.f.ready_weight),
            (Kind::Apply, 100),
            // Seeds with quiescence have a lighter load, so that groups fall idle now and then.
            (Kind::Propose, if self.f.quiescence { 12 } else { 70 }),
            (Kind::Read, if self.f.quiescence { 6 } else { 30 }),
            (Kind::Compact, 15),
            (Kind::Partition, 10),
            (Kind::Crash, if self.opts.crashes { 7 } else { 0 }),
            (Kind::Transfer, 5),
            (Kind::Membership, if self.opts.membership { 10 } else { 0 }),
            (Kind::Campaign, 3),
            (Kind::RequestSnapshot, 2),
            (Kind::Quiesce, if self.f.quiescence { 20 } else { 0 }),
            (Kind::Wake, if self.f.quiescence { 3 } else { 0 }),
        ];
        let total: u32 = table.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut kind = Kind::Deliver;
        for (k, w) in table {
            if roll < w {
                kind = k;
                break;
            }
            roll -= w;
        }
        let disruptive = matches!(
            kind,
            Kind::Partition
                | Kind::Crash
                | Kind::Transfer
                | Kind::Membership
                | Kind::Campaign
                | Kind::RequestSnapshot
        );
        if disruptive && !self.rng.random_bool(self.f.chaos) {
            kind = Kind::Deliver; // a calm moment: deliver instead of disrupting
        }
        if self.event < self.idle_until {
            // Idle clients and a calm nemesis, but for healing, restarts, and the cut that
            // meets a sleeping leader (see `maybe_cut_off_sleeping_leader`).
            match kind {
                Kind::Propose
                | Kind::Membership
                | Kind::Transfer
                | Kind::Campaign
                | Kind::RequestSnapshot => kind = Kind::Deliver,
                Kind::Read if self.stale_sleeping_leader().is_none() => kind = Kind::Deliver,
                Kind::Partition if self.cut.is_empty() => kind = Kind::Deliver,
                Kind::Crash => {
                    return self.restart_one().unwrap_or(Ok(()));
                }
                _ => {}
            }
        }
        match kind {
            Kind::Deliver => self.deliver_one(),
            Kind::Tick => self.tick_someone(),
            Kind::Ready => self.ready_someone(),
            Kind::Persist => self.persist_someone(),
            Kind::Apply => self.apply_someone(),
            Kind::Propose => self.propose_something(),
            Kind::Read => self.read_something(),
            Kind::Compact => self.compact_someone(),
            Kind::Partition => self.partition_or_heal(),
            Kind::Crash => self.crash_or_restart(),
            Kind::Transfer => self.transfer_something(),
            Kind::Membership => self.change_membership(),
            Kind::Campaign => self.campaign_someone(),
            Kind::RequestSnapshot => self.request_snapshot_someone(),
            Kind::Quiesce => self.quiesce_someone(),
            Kind::Wake => self.wake_someone(),
        }
    }

    /// A leader whose group is idle puts it to sleep, if the core lets it.
    fn quiesce_someone(&mut self) -> Result<(), String> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.raw
                    .as_ref()
                    .is_some_and(|r| r.raft.state == StateRole::Leader)
            })
            .map(|(id, _)| *id)
            .collect();
        let Some(id) = self.pick(&leaders) else {
            return Ok(());
        };
        let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) else {
            return Ok(());
        };
        match raw.quiesce_blocker() {
            None => {
                assert!(raw.quiesce(), "quiesce_blocker said it could");
                self.count("quiesce");
                self.log(format!("node {id} put the group to sleep"));
                self.maybe_cut_off_sleeping_leader(id);
            }
            Some(why) => self.log(format!("node {id} cannot quiesce: {why}")),
        }
        Ok(())
    }

    /// The failure detector wakes a node at random (a false suspicion costs only a wake-up).
    fn wake_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        if let Some(id) = self.pick(&ids) {
            self.wake(id, "by a false suspicion");
        }
        Ok(())
    }

    /// Wakes node `id` if it is running and asleep.
    pub(super) fn wake(&mut self, id: u64, why: &str) {
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            if raw.is_quiesced() {
                raw.wake();
                self.count("wake");
                self.log(format!("node {id} woken {why}"));
            }
        }
    }

    fn deliver_one(&mut self) -> Result<(), String> {
        if self.in_flight.is_empty() {
            return self.tick_someone();
        }
        let pos = if self.faults && self.rng.random_bool(self.f.reordering) {
            self.rng.random_range(0..self.in_flight.len())
        } else {
            0
        };
        let Some(m) = self.in_flight.remove(pos) else {
            return Ok(());
        };
        self.deliver(m)
    }

    pub(super) fn deliver(&mut self, m: Message) -> Result<(), String> {
        self.count("deliver");
        let is_snapshot = m.msg_type == MessageType::MsgSnapshot as i32;
        let (from, to) = (m.from, m.to);
        let cut = self.cut.contains(&(from, to));
        let lost = cut
            || !self.nodes.get(&to).is_some_and(|n| n.is_up())
            || (self.faults && self.rng.random_bool(self.f.loss));
        if lost {
            self.log(format!("lost {}", raft_proto::describe_message(&m)));
            if is_snapshot {
                self.report_snapshot(from, to, SnapshotStatus::Failure);
            } else if cut
                && m.msg_type == MessageType::MsgAppend as i32
                && self.rng.random_bool(0.5)
            {
                // The transport noticed the broken link.
                if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut()) {
                    raw.report_unreachable(to);
                }
            }
            return Ok(());
        }
        self.log(format!("deliver {}", raft_proto::describe_message(&m)));
        let header = Message {
            msg_type: m.msg_type,
            from: m.from,
            to: m.to,
            term: m.term,
            index: m.index,
            log_term: m.log_term,
            commit: m.commit,
            context: m.context.clone(),
            ..Default::default()
        };
        let last_new = m.index + m.entries.len() as u64;
        if m.msg_type() == MessageType::MsgReadIndex {
            if let Some(id) = m.entries.first().and_then(|e| confirm::read_id(&e.data)) {
                let (event, now) = (self.event, self.timing.now(to));
                let et = self.f.election_tick as u64;
                self.confirmations
                    .arrived(&self.nodes[&to], id, event, now, et);
            }
        }
        let node = self.nodes.get_mut(&to).expect("checked above");
        let before = Timing::before(node);
        let grants_before = rules::grants(node, &header);
        let commit_before = node.raw.as_ref().map_or(0, |r| r.raft.raft_log.committed);
        let mut accepted = true;
        let mut refused = None;
        if let Some(raw) = node.raw.as_mut() {
            if let Err(e) = raw.step(m) {
                accepted = false;
                refused = Some(format!("  node {to} refused it: {e}"));
            }
            // Leaders' answers to proposals it forwarded, before its next committed entries.
            let decided = node
                .proposals
                .on_forward_answers(raw.take_forward_answers());
            node.outcomes.extend(decided);
        }
        if let Some(line) = refused {
            self.log(line);
        }
        if accepted && header.msg_type() == MessageType::MsgHeartbeatResponse {
            let leads = self.nodes[&to]
                .raw
                .as_ref()
                .is_some_and(|r| r.raft.state == StateRole::Leader && r.raft.term == header.term);
            if leads {
                self.confirmations.acked(&header);
            }
        }
        if accepted && header.msg_type() == MessageType::MsgTimeoutNow {
            if let Some(b) = before {
                self.told_to_campaign.insert((to, b.term));
            }
        }
        let node = &self.nodes[&to];
        if let Some(before) = before {
            rules::vote_request_handled(node, &header, before.term, grants_before)?;
        }
        if accepted && header.msg_type() == MessageType::MsgAppend {
            rules::append_handled(node, &header, commit_before, last_new)?;
        }
        let from_leader = self.checker.leader_of(header.term) == Some(header.from);
        self.timing.delivered(
            node,
            before,
            &header,
            accepted && from_leader,
            self.f.check_quorum,
            self.f.election_tick as u64,
        )?;
        if is_snapshot {
            self.report_snapshot(from, to, SnapshotStatus::Finish);
        }
        Ok(())
    }

    fn report_snapshot(&mut self, from: u64, to: u64, status: SnapshotStatus) {
        if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut()) {
            raw.report_snapshot(to, status);
        }
    }

    /// Puts messages on the network, after checking what each one promises holds (a vote or an
    /// acknowledgement is durable, a transfer target is up to date).
    pub(super) fn send(&mut self, msgs: Vec<Message>) -> Result<(), String> {
        for m in msgs {
            durability::check_sent(&self.nodes, &self.transfers, &m)?;
            self.check_payload_sent(&m)?;
            self.check_transfer_campaign(&m)?;
            let tick = self.timing.now(m.from);
            self.confirmations.sent(&m, self.event, tick);

            if self.faults && self.rng.random_bool(self.f.duplication) {
                if self.rng.random_bool(0.5) {
                    self.in_flight.push_back(m.clone());
                } else {
                    // A copy that resurfaces much later, after leaders and logs have moved on (a
                    // retransmission from a stale connection, a delayed datagram).
                    let at = self.event + self.rng.random_range(50..3_000);
                    self.delayed.push((at, m.clone()));
                }
            }
            self.in_flight.push_back(m);
        }
        Ok(())
    }

    pub(super) fn tick_someone(&mut self) -> Result<(), String> {
        if self.f.clock == Clock::Shared {
            return self.tick_all();
        }
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let weight = self.nodes[&id].tick_weight;
        if self.rng.random_range(0.0..1.3) > weight {
            return Ok(());
        }
        self.count("tick");
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            // A sleeping node's clock does not move (its tick does nothing).
            let asleep = raw.is_quiesced();
            raw.tick();
            if !asleep {
                self.timing.tick(id);
            }
        }
        Ok(())
    }

    /// One tick of the shared clock: every running node ticks.
    pub(super) fn tick_all(&mut self) -> Result<(), String> {
        self.now += 1;
        self.count("tick");
        for (id, node) in self.nodes.iter_mut() {
            if let Some(raw) = node.raw.as_mut() {
                let asleep = raw.is_quiesced();
                raw.tick();
                if !asleep {
                    self.timing.tick(*id);
                }
            }
        }
        Ok(())
    }

    fn propose_something(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        self.next_value += 1;
        let key = self.rng.random_range(0..8u8);
        let data = encode_write(key, self.next_value);
        let node = self.nodes.get_mut(&id).expect("known id");
        if let Some(raw) = node.raw.as_mut() {
            let result = raw.propose_tracked(vec![], data);
            match result {
                Ok(Proposed::Appended { index, term }) => {
                    node.proposals.track(self.next_value, index, term)
                }
                Ok(Proposed::Forwarded { id, term, .. }) => {
                    node.proposals.track_forwarded(self.next_value, id, term)
                }
                Err(_) => {}
            }
            self.count("propose");
            self.log(format!(
                "node {id} proposes #{}: {result:?}",
                self.next_value
            ));
        }
        Ok(())
    }

    fn read_something(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        // A client may ask a leader that slept while the others moved on: its read wakes it, and
        // must not be served from a lease its stopped clock kept (issue 17).
        let sleeping = self
            .stale_sleeping_leader()
            .filter(|_| self.rng.random_bool(0.7));
        let Some(id) = sleeping.or_else(|| self.pick(&ids)) else {
            return Ok(());
        };
        let read_id = self.start_read(id);
        if self.nodes[&id].raw.is_some() {
            self.count("read");
            let floor = self.reads.get(&read_id).map_or(0, |r| r.floor);
            self.log(format!("node {id} reads (read {read_id}, floor {floor})"));
        }
        Ok(())
    }

    /// A client asks node `id` for a linearizable read (`read_index`): the read must see every
    /// index committed anywhere by now. Returns the read's id (pending until served).
    pub(super) fn start_read(&mut self, id: u64) -> u64 {
        self.next_read += 1;
        let read_id = self.next_read;
        let floor = self.checker.max_commit();
        let (event, now) = (self.event, self.timing.now(id));
        let et = self.f.election_tick as u64;
        self.confirmations
            .arrived(&self.nodes[&id], read_id, event, now, et);
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            if raw.read_index(read_id.to_be_bytes().to_vec()).is_ok() {
                self.reads.insert(read_id, PendingRead { node: id, floor });
            }
        }
        read_id
    }

    fn compact_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let keep = self.rng.random_range(0..20);
        let node = self.nodes.get_mut(&id).expect("known id");
        let result = node.compact(keep);
        if let Some(why) = node.disk_failed() {
            let why = why.to_string();
            self.count("disk failure");
            return self.crash(id, &format!("when its disk failed ({why})"));
        }
        if result.map_err(|e| format!("node {id}: compaction failed: {e}"))? {
            self.count("compact");
            self.log(format!("node {id} snapshotted and compacted (keep {keep})"));
        }
        Ok(())
    }

    /// An application-started election (etcd's `Campaign`, a node told to stand).
    fn campaign_someone(&mut self) -> Result<(), String> {
        self.call_someone("campaign", "campaigns", |raw| raw.campaign())
    }

    /// An application that distrusts its state machine asks the leader for a snapshot.
    fn request_snapshot_someone(&mut self) -> Result<(), String> {
        self.call_someone("request snapshot", "requests a snapshot", |raw| {
            raw.request_snapshot()
        })
    }

    /// Calls `call` on a random running node, counting it as `kind` and logging what it did.
    fn call_someone(
        &mut self,
        kind: &'static str,
        does: &str,
        call: impl FnOnce(&mut raft_core::RawNode<SimStore>) -> raft_core::Result<()>,
    ) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            let result = call(raw);
            self.count(kind);
            self.log(format!("node {id} {does}: {result:?}"));
        }
        Ok(())
    }
}

impl Sim {
    /// Only a node told to campaign by `MsgTimeoutNow` in the term before asks for votes with the
    /// transfer context, which passes the other nodes' leader leases.
    fn check_transfer_campaign(&self, m: &Message) -> Result<(), String> {
        let campaign = matches!(
            m.msg_type(),
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        );
        if !campaign || &m.context[..] != raft_core::raft::CAMPAIGN_TRANSFER {
            return Ok(());
        }
        if !self.told_to_campaign.contains(&(m.from, m.term - 1)) {
            return Err(format!(
                "transfer: node {} campaigns for term {} as a transfer target (passing leases), \
                 but no leader of term {} told it to",
                m.from,
                m.term,
                m.term - 1
            ));
        }
        Ok(())
    }
}
