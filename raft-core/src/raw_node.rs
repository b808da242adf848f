//! [`RawNode`]: the application's handle on a node, and the [`Ready`] batches it hands out.
//!
//! Methods fall into the families of a sans-I/O protocol object: input handlers ([`RawNode::tick`],
//! [`RawNode::step`]), commands ([`RawNode::propose`], [`RawNode::campaign`]), and outputs to drain
//! ([`RawNode::has_ready`], [`RawNode::ready`], [`RawNode::advance`]).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::raft::{is_local_msg, is_response_msg, Raft, SoftState};
use crate::read_only::ReadState;
use crate::status::{BasicStatus, Status};
use crate::storage::Storage;
use bytes::Bytes;
use raft_proto::eraftpb::{ConfState, Entry, HardState, Message, MessageType, Snapshot};
use raft_proto::ConfChangeI;
use slog::{warn, Logger};
use std::sync::Arc;

/// A batch of work for the application: state to persist, messages to send, entries to apply.
///
/// Handle it in this order: send [`messages`](Ready::messages); persist the
/// [`snapshot`](Ready::snapshot) (and restore the state machine from it), the
/// [`entries`](Ready::entries) and the [`hard_state`](Ready::hard_state) (durably when
/// [`must_sync`](Ready::must_sync)); then send [`persisted_messages`](Ready::persisted_messages);
/// apply [`committed_entries`](Ready::committed_entries) (calling [`RawNode::apply_conf_change`]
/// for conf change entries); serve [`read_states`](Ready::read_states) once applied up to their
/// index; finally call [`RawNode::advance`].
#[derive(Debug, Default, PartialEq)]
pub struct Ready {
    number: u64,
    soft_state: Option<SoftState>,
    hard_state: Option<HardState>,
    snapshot: Snapshot,
    /// Shared with the node's unstable log until they are reported durable (see
    /// [`Ready::take_entries`]).
    entries: Option<Arc<Vec<Entry>>>,
    committed_entries: Vec<Entry>,
    messages: Vec<Message>,
    persisted_messages: Vec<Message>,
    read_states: Vec<ReadState>,
    dropped_read_requests: Vec<Bytes>,
    must_sync: bool,
    /// The index of the last committed entry handed out in this Ready (0 if none); recorded apart
    /// from `committed_entries` because the application may take those.
    last_committed_index: u64,
}

impl Ready {
    /// The number of this Ready: 1 for the first, increasing by one each time.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The new soft state, when it changed since the previous Ready.
    pub fn soft_state(&self) -> Option<&SoftState> {
        self.soft_state.as_ref()
    }

    /// The hard state to persist, when it changed since the previous Ready.
    pub fn hard_state(&self) -> Option<&HardState> {
        self.hard_state.as_ref()
    }

    /// A snapshot to persist (empty when there is none).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Entries to append to stable storage.
    pub fn entries(&self) -> &[Entry] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Takes the entries to append. The node shares them (it keeps reading them until they are
    /// reported durable), so this copies them; a caller that persists before advancing can use
    /// [`Ready::entries`] instead and copy nothing.
    pub fn take_entries(&mut self) -> Vec<Entry> {
        self.entries
            .take()
            .map(|shared| Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()))
            .unwrap_or_default()
    }

    /// Takes the entries to append without copying them: the node keeps reading the same entries
    /// until they are reported durable. For persisting in the background (see the asynchronous
    /// guide): drop the handle once written, before reporting with
    /// [`RawNode::on_persist_ready`], and the node then takes the entries back without a copy.
    pub fn take_shared_entries(&mut self) -> Option<Arc<Vec<Entry>>> {
        self.entries.take()
    }

    /// Committed entries to apply to the state machine, in order.
    pub fn committed_entries(&self) -> &[Entry] {
        &self.committed_entries
    }

    /// Takes the committed entries.
    pub fn take_committed_entries(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.committed_entries)
    }

    /// Messages that may be sent at once, before persisting anything (a leader's appends and
    /// heartbeats).
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Takes the messages that may be sent at once.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Messages that may be sent only after this Ready's entries and hard state are persisted
    /// (append acknowledgements, votes).
    pub fn persisted_messages(&self) -> &[Message] {
        &self.persisted_messages
    }

    /// Takes the messages to send after persisting.
    pub fn take_persisted_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.persisted_messages)
    }

    /// Confirmed reads: serve each from the state machine once it has applied up to its index.
    pub fn read_states(&self) -> &[ReadState] {
        &self.read_states
    }

    /// Takes the confirmed reads.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.read_states)
    }

    /// Contexts of this node's own `read_index` requests that were dropped because it lost
    /// leadership before confirming them. Retry them (a read has no effect, so retrying is safe).
    /// Requests a follower forwarded are not reported here: the leader cannot tell the follower,
    /// so the application retries those after a timeout of its own.
    pub fn dropped_read_requests(&self) -> &[Bytes] {
        &self.dropped_read_requests
    }

    /// Whether the entries and hard state must be written durably (fsync) before the persisted
    /// messages go out. False when only the commit index changed.
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }
}

/// A multi-line description of a Ready for logs and test transcripts: one line per part that is
/// present, one line per entry and message (empty parts are left out; an empty Ready gives
/// `<empty Ready>`).
pub fn describe_ready(rd: &Ready) -> String {
    use raft_proto::{describe_entry, describe_hard_state, describe_message};
    let mut lines = Vec::new();
    if let Some(ss) = &rd.soft_state {
        lines.push(format!("Lead:{} State:{:?}", ss.leader_id, ss.raft_state));
    }
    if let Some(hs) = &rd.hard_state {
        lines.push(format!("HardState {}", describe_hard_state(hs)));
    }
    if *rd.snapshot() != Snapshot::default() {
        lines.push(format!(
            "Snapshot {}",
            raft_proto::describe_snapshot(&rd.snapshot)
        ));
    }
    let mut list = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            lines.push(format!("{title}:"));
            lines.extend(items.into_iter().map(|item| format!("  {item}")));
        }
    };
    list("Entries", rd.entries().iter().map(describe_entry).collect());
    list(
        "CommittedEntries",
        rd.committed_entries.iter().map(describe_entry).collect(),
    );
    list(
        "Messages",
        rd.messages.iter().map(describe_message).collect(),
    );
    list(
        "PersistedMessages",
        rd.persisted_messages.iter().map(describe_message).collect(),
    );
    list(
        "ReadStates",
        rd.read_states
            .iter()
            .map(|rs| format!("index:{} ctx:{:?}", rs.index, rs.request_ctx))
            .collect(),
    );
    list(
        "DroppedReads",
        rd.dropped_read_requests
            .iter()
            .map(|ctx| format!("ctx:{ctx:?}"))
            .collect(),
    );
    if lines.is_empty() {
        return "<empty Ready>".to_string();
    }
    if rd.must_sync {
        lines.push("MustSync".to_string());
    }
    lines.join("\n")
}

/// What became available when a Ready was advanced: a new commit index, more committed entries and
/// messages.
#[derive(Debug, Default, PartialEq)]
pub struct LightReady {
    commit_index: Option<u64>,
    committed_entries: Vec<Entry>,
    messages: Vec<Message>,
}

impl LightReady {
    /// The new commit index, when it moved; persist it with the hard state.
    pub fn commit_index(&self) -> Option<u64> {
        self.commit_index
    }

    /// Committed entries to apply.
    pub fn committed_entries(&self) -> &[Entry] {
        &self.committed_entries
    }

    /// Takes the committed entries.
    pub fn take_committed_entries(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.committed_entries)
    }

    /// Messages to send at once.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Takes the messages.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }
}

/// What a handed-out Ready asked to persist, remembered until the application reports it done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyRecord {
    number: u64,
    /// The index of its snapshot, if it had one.
    snapshot_index: Option<u64>,
    /// The (index, term) of its last entry, if it had entries.
    last_entry: Option<(u64, u64)>,
    /// It carries the new term of a single voter that leads before that term is durable.
    new_term: bool,
}

/// How sending a snapshot to a follower ended, as the application reports it with
/// [`RawNode::report_snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// The snapshot was delivered; the leader resumes appending once the follower answers.
    Finish,
    /// The snapshot could not be delivered; the leader probes again and may send another.
    Failure,
}

/// The application's handle on one Raft node.
pub struct RawNode<T: Storage> {
    /// The state machine. Exposed for inspection and tests; mutate it only through `RawNode`.
    pub raft: Raft<T>,
    pub(crate) prev_soft_state: SoftState,
    pub(crate) prev_hard_state: HardState,
    /// The number of the last Ready handed out.
    pub(crate) last_number: u64,
    /// Readys handed out and not yet reported persisted, oldest first.
    pub(crate) records: Vec<ReadyRecord>,
    /// The last committed index handed out in a Ready (applied once that Ready is advanced).
    pub(crate) committed_handed_out: u64,
}

impl<T: Storage> RawNode<T> {
    /// Creates a node over `store`, which holds whatever was persisted before (a restart) or the
    /// initial membership (a new node). Fails when the config is invalid or storage cannot be read.
    pub fn new(config: &Config, store: T, logger: &Logger) -> Result<RawNode<T>> {
        let raft = Raft::new(config, store, logger)?;
        let prev_hard_state = raft.hard_state();
        let prev_soft_state = raft.soft_state();
        let committed_handed_out = raft.raft_log.applied;
        Ok(RawNode {
            raft,
            prev_soft_state,
            prev_hard_state,
            last_number: 0,
            records: Vec::new(),
            committed_handed_out,
        })
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now (pre-vote first if configured).
    pub fn campaign(&mut self) -> Result<()> {
        self.raft.step(Message {
            msg_type: MessageType::MsgHup as i32,
            ..Default::default()
        })
    }

    /// Proposes `data` (with an application `context`) to be appended to the log. On a follower it
    /// is forwarded to the leader. Fails with `ProposalDropped` when it cannot be accepted now.
    pub fn propose(&mut self, context: Vec<u8>, data: Vec<u8>) -> Result<()> {
        self.propose_bytes(context.into(), data.into())
    }

    /// Like [`RawNode::propose`], taking shared buffers (no copy).
    pub fn propose_bytes(&mut self, context: bytes::Bytes, data: bytes::Bytes) -> Result<()> {
        let entry = Entry {
            data,
            context,
            ..Default::default()
        };
        if self.raft.state == crate::raft::StateRole::Leader {
            // The common case, without building and dispatching a message. A proposal wakes a
            // sleeping group as a stepped one does: asleep, this leader would not retry an
            // append that is lost.
            if self.raft.is_quiesced() {
                self.raft.wake();
            }
            return self.raft.propose_one(entry);
        }
        self.raft.step(Message {
            msg_type: MessageType::MsgPropose as i32,
            from: self.raft.id,
            entries: vec![entry],
            ..Default::default()
        })
    }

    /// Proposes a membership change (`ConfChange` or `ConfChangeV2`), carried by a log entry of the
    /// matching type. Once that entry is committed and handed out, the application applies it with
    /// [`RawNode::apply_conf_change`].
    ///
    /// On the leader the change is checked first (unless `Config::disable_conf_change_validation`):
    /// it is refused with [`Error::ConfChange`] while an earlier conf change is not applied, when
    /// the configuration is joint and this is not the leave, or when the change itself cannot be
    /// applied (for example it removes every voter, or is a leave while not joint). On a follower
    /// it is forwarded; the leader then checks it and drops it if it is refused.
    pub fn propose_conf_change(&mut self, context: Vec<u8>, cc: impl ConfChangeI) -> Result<()> {
        let entry = Entry {
            entry_type: cc.entry_type() as i32,
            data: cc.encode_to_bytes(),
            context: context.into(),
            ..Default::default()
        };
        self.raft.step(Message {
            msg_type: MessageType::MsgPropose as i32,
            from: self.raft.id,
            entries: vec![entry],
            ..Default::default()
        })
    }

    /// Applies a committed conf change (from an entry of type `EntryConfChange` or
    /// `EntryConfChangeV2` handed out in `committed_entries`) and returns the new configuration,
    /// which the application stores with its state (it is what a snapshot and a restart use).
    ///
    /// Call it for every conf change entry, in log order, when applying it. A leader removed or
    /// demoted by the change steps down (see `Config::step_down_on_removal`); a leader whose joint
    /// configuration has auto-leave proposes the leave once this entry is reported applied.
    pub fn apply_conf_change(&mut self, cc: &impl ConfChangeI) -> Result<ConfState> {
        self.raft.apply_conf_change(&cc.as_v2())
    }

    /// Handles a message from a peer. Local-only message types and responses from nodes outside the
    /// configuration are refused; impossible messages are refused and change nothing.
    pub fn step(&mut self, m: Message) -> Result<()> {
        let msg_type =
            MessageType::try_from(m.msg_type).map_err(|_| Error::UnknownMessageType(m.msg_type))?;
        if is_local_msg(msg_type) {
            warn!(self.raft.log(), "refused a local-only message from the network";
                "msg" => ?msg_type, "from" => m.from);
            return Err(Error::StepLocalMsg(msg_type));
        }
        if is_response_msg(msg_type) && !self.raft.prs.is_member(m.from) {
            warn!(self.raft.log(), "refused a response from a node outside the configuration";
                "msg" => ?msg_type, "from" => m.from);
            return Err(Error::StepPeerNotFound {
                msg_type,
                from: m.from,
            });
        }
        let result = self.raft.step(m);
        // A follower falls asleep on its leader's quiescing heartbeat.
        self.release_if_asleep();
        result
    }

    /// On a leader, sends every follower a heartbeat now (raft-rs `ping`); elsewhere nothing. A
    /// sleeping group is woken (see [`RawNode::quiesce`]).
    pub fn ping(&mut self) {
        if self.raft.is_quiesced() {
            self.raft.wake();
        } else {
            self.raft.ping();
        }
    }

    /// On a leader whose group is idle, puts the group to sleep: followers are told in a last
    /// heartbeat, and from then on `tick` does nothing on any member until something wakes it.
    /// Returns whether it did; [`RawNode::quiesce_blocker`] says why not.
    ///
    /// The group wakes on its own when any of its messages arrives, or a proposal, a read, a
    /// campaign or a `ping`. What it cannot do asleep is notice that its leader died: the
    /// application's failure detector must call [`RawNode::wake`] on the members when a node of
    /// the group goes down (CockroachDB wakes a range when a node's liveness lapses); woken, a
    /// follower campaigns after an election timeout as usual. A leader's lease does not survive a
    /// nap: after waking, lease reads wait for a quorum to answer a heartbeat. A peer that does
    /// not know quiescence (raft-rs) keeps the group awake while it is a member.
    pub fn quiesce(&mut self) -> bool {
        let asleep = self.raft.quiesce();
        self.release_if_asleep();
        asleep
    }

    /// A sleeping group keeps no buffer it does not need: a multi-raft process holds many.
    fn release_if_asleep(&mut self) {
        if self.raft.is_quiesced() && self.records.is_empty() && self.records.capacity() > 0 {
            self.records = Vec::new();
        }
    }

    /// Why [`RawNode::quiesce`] would refuse now, or `None` if it would put the group to sleep.
    pub fn quiesce_blocker(&self) -> Option<&'static str> {
        self.raft.quiesce_blocker()
    }

    /// Whether the group sleeps on this node.
    pub fn is_quiesced(&self) -> bool {
        self.raft.is_quiesced()
    }

    /// Wakes the group on this node (the application's failure detector calls it on the members
    /// when a node goes down); nothing if it is awake. See [`RawNode::quiesce`].
    pub fn wake(&mut self) {
        self.raft.wake();
    }

    /// Sets this node's election priority (`Config::priority`) from now on.
    pub fn set_priority(&mut self, priority: i64) {
        self.raft.set_priority(priority);
    }

    /// Sets `Config::skip_bcast_commit` from now on.
    pub fn skip_bcast_commit(&mut self, skip: bool) {
        self.raft.skip_bcast_commit(skip);
    }

    /// Accepted for raft-rs compatibility (`Config::batch_append`): this core always batches.
    pub fn set_batch_append(&mut self, batch_append: bool) {
        self.raft.set_batch_append(batch_append);
    }

    /// The storage (raft-rs `RawNode::store`).
    pub fn store(&self) -> &T {
        self.raft.store()
    }

    /// The storage, mutably (raft-rs `RawNode::mut_store`). The core reads it between calls; the
    /// application writes only what a `Ready` handed it, as with any other handle on it.
    pub fn mut_store(&mut self) -> &mut T {
        self.raft.mut_store()
    }

    /// The entries a storage could not serve at once for an append to `to`
    /// (`Storage::entries_for_append` answered `LogTemporarilyUnavailable`) are loaded: the next
    /// Ready carries that append (raft-rs `on_entries_fetched`). Nothing happens if this node no
    /// longer leads or `to` left the group.
    pub fn on_entries_fetched(&mut self, to: u64) {
        if self.raft.state == crate::raft::StateRole::Leader && to != self.raft.id {
            self.raft.mark_append_due(to);
        }
    }

    /// Tells the leader that `id` could not be reached; it goes back to probing it.
    pub fn report_unreachable(&mut self, id: u64) {
        let _ = self.raft.step(Message {
            msg_type: MessageType::MsgUnreachable as i32,
            from: id,
            ..Default::default()
        });
    }

    /// Requests a linearizable read point (thesis §6.4). When the leader has confirmed it, a
    /// [`ReadState`] with this `context` and the commit index comes in a Ready's
    /// [`read_states`](Ready::read_states); the application serves the read once it has applied up
    /// to that index. On a follower the request is forwarded to the leader. Fails with
    /// `Error::ReadIndexDropped` when no leader is known.
    ///
    /// With `ReadOnlyOption::Safe` the leader confirms it still leads by a heartbeat round
    /// acknowledged by a quorum; with `LeaseBased` it relies on its check-quorum lease. Either way
    /// it first waits until it has committed an entry of its own term. A request in progress when
    /// leadership changes is dropped: see [`Ready::dropped_read_requests`].
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<()> {
        self.raft.step(Message {
            msg_type: MessageType::MsgReadIndex as i32,
            from: self.raft.id,
            entries: vec![Entry {
                data: context.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Asks the leader to hand leadership to `transferee` (thesis §3.10). The leader brings it up
    /// to date, tells it to campaign at once, and refuses proposals until the transfer ends or an
    /// election timeout passes. A transfer to a learner, to the leader itself or to a node outside
    /// the configuration is ignored; a new transfer replaces a pending one. On a follower the
    /// request is forwarded to the leader.
    pub fn transfer_leader(&mut self, transferee: u64) {
        let _ = self.raft.step(Message {
            msg_type: MessageType::MsgTransferLeader as i32,
            from: transferee,
            ..Default::default()
        });
    }

    /// Forgets the current leader (etcd's `ForgetLeader`, a local call, never a message): under
    /// PreVote and CheckQuorum this follower then grants pre-votes at once instead of honouring
    /// the old leader's lease. Useful when the application knows the leader is gone. Refused (false)
    /// under lease-based reads and on a node that is not a follower with a known leader.
    pub fn forget_leader(&mut self) -> bool {
        self.raft.forget_leader()
    }

    /// The node's state, with every peer's progress when it leads.
    pub fn status(&self) -> Status {
        Status::new(&self.raft)
    }

    /// The node's state without the progress map: no allocation.
    pub fn basic_status(&self) -> BasicStatus {
        BasicStatus::new(&self.raft)
    }

    /// Reports how sending a snapshot to `id` ended (the application's transport knows). Until
    /// then the leader sends that follower nothing but heartbeats.
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        let _ = self.raft.step(Message {
            msg_type: MessageType::MsgSnapStatus as i32,
            from: id,
            reject: status == SnapshotStatus::Failure,
            ..Default::default()
        });
    }

    /// Asks the leader for a snapshot covering at least this node's last entry (raft-rs
    /// `request_snapshot`), for an application that lost or distrusts its state machine. Until the
    /// snapshot arrives, this node answers appends and heartbeats with the request.
    pub fn request_snapshot(&mut self) -> Result<()> {
        self.raft.request_snapshot()
    }

    /// Whether there is anything for the application to do.
    pub fn has_ready(&self) -> bool {
        let raft = &self.raft;
        !raft.msgs.is_empty()
            || !raft.msgs_after_append.is_empty()
            || raft.has_pending_appends()
            || raft.soft_state() != self.prev_soft_state
            || raft.hard_state() != self.prev_hard_state
            || !raft.raft_log.unstable_entries().is_empty()
            || raft.raft_log.unstable.snapshot_not_in_progress().is_some()
            || raft.raft_log.has_next_committed_entries()
            || raft.read_only.has_output()
    }

    /// Takes the next batch of work. Call [`RawNode::advance`] once it is handled.
    ///
    /// All or nothing: if storage fails while the Ready is built, the error is returned and the node
    /// is left as it was, so the next call hands out the same work (never an acknowledgement for
    /// entries that were not handed out for persisting).
    ///
    /// Once returned, a Ready's work is never handed out again: if persisting it fails, retry the
    /// write until it succeeds or stop the node (and restart it from what storage holds). Calling
    /// `ready` again instead would carry on as if the failed write had happened.
    pub fn ready(&mut self) -> Result<Ready> {
        // The only fallible step goes first; it moves nothing when it fails.
        let max_size = self.raft.max_committed_size_per_ready;
        let committed_entries = self.raft.raft_log.next_committed_entries(max_size)?;
        self.raft.flush_appends();
        self.last_number += 1;
        let mut rd = Ready {
            number: self.last_number,
            committed_entries,
            ..Default::default()
        };
        let soft_state = self.raft.soft_state();
        if soft_state != self.prev_soft_state {
            rd.soft_state = Some(soft_state);
            self.prev_soft_state = soft_state;
        }
        let hard_state = self.raft.hard_state();
        if hard_state != self.prev_hard_state {
            rd.must_sync |= hard_state.term != self.prev_hard_state.term
                || hard_state.vote != self.prev_hard_state.vote;
            rd.hard_state = Some(hard_state);
            self.prev_hard_state = hard_state;
        }
        let log = &mut self.raft.raft_log;
        let mut snapshot_index = None;
        if let Some(snapshot) = log.unstable.snapshot_not_in_progress() {
            let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
            snapshot_index = Some(index);
            rd.snapshot = snapshot.clone();
            // Restoring the snapshot applies everything it covers.
            self.committed_handed_out = self.committed_handed_out.max(index);
            rd.last_committed_index = rd.last_committed_index.max(index);
        }
        rd.entries = log.unstable.lend(rd.number);
        rd.must_sync |= rd.entries.is_some() || snapshot_index.is_some();
        if let Some(last) = rd.committed_entries.last() {
            self.committed_handed_out = last.index;
            rd.last_committed_index = last.index;
        }
        self.raft.reduce_uncommitted_size(&rd.committed_entries);
        rd.messages = std::mem::take(&mut self.raft.msgs);
        rd.persisted_messages = std::mem::take(&mut self.raft.msgs_after_append);
        (rd.read_states, rd.dropped_read_requests) = self.raft.read_only.take_output();
        self.records.push(ReadyRecord {
            number: rd.number,
            snapshot_index,
            last_entry: rd.entries().last().map(|e| (e.index, e.term)),
            new_term: self.raft.term_not_durable && rd.hard_state.is_some(),
        });
        Ok(rd)
    }

    /// The Ready was handled completely (persisted, sent, applied). Returns what became available as
    /// a result: a new commit index, more committed entries and messages. Apply those, then call
    /// [`RawNode::advance_apply`].
    pub fn advance(&mut self, rd: Ready) -> Result<LightReady> {
        // The Ready's committed entries were applied whatever happens below.
        self.advance_apply_to(rd.last_committed_index);
        self.advance_append(rd)
    }

    /// The Ready's entries and hard state were persisted (its committed entries may not be applied
    /// yet). Returns what became available. If reading newly committed entries from storage fails,
    /// the persistence is still recorded and those entries come in a later Ready.
    ///
    /// Readys taken later may still be outstanding (pipelining); the LightReady's commit index is
    /// then left for the hard state of a later Ready, so that writing Readys in order never moves
    /// the stored commit index back.
    pub fn advance_append(&mut self, rd: Ready) -> Result<LightReady> {
        let number = rd.number;
        // Drop the Ready first: its entries are then the log's alone, and become durable without
        // a copy.
        drop(rd);
        self.on_persist_ready(number);
        let max_size = self.raft.max_committed_size_per_ready;
        let committed_entries = self.raft.raft_log.next_committed_entries(max_size)?;
        let mut light = LightReady {
            committed_entries,
            ..Default::default()
        };
        // Report only a commit index the stored log can hold: entries stepped in since the Ready
        // may already be committed but are not durable here yet, and a stored commit beyond the
        // stored log could not be restarted from. The rest comes in a later Ready's hard state.
        let log = &self.raft.raft_log;
        let committed = log.committed.min(log.persisted);
        // Only for the newest Ready taken: a later one, still to be written, carries an older
        // commit index in its hard state, and writing it after this would move the stored commit
        // back, while the newer one would never be reported again (found by the simulator).
        // Reporting the newest Ready gives it then.
        let newest = number == self.last_number;
        if newest && committed > self.prev_hard_state.commit {
            light.commit_index = Some(committed);
            self.prev_hard_state.commit = committed;
        }
        if let Some(last) = light.committed_entries.last() {
            self.committed_handed_out = last.index;
        }
        self.raft.reduce_uncommitted_size(&light.committed_entries);
        self.raft.flush_appends();
        light.messages = std::mem::take(&mut self.raft.msgs);
        Ok(light)
    }

    /// Hands a Ready over without waiting for its persistence (raft-rs `advance_append_async`): the
    /// application persists it in the background, in Ready order, and reports durability later
    /// with [`RawNode::on_persist_ready`]`(number)`; it applies the committed entries in the
    /// background too and reports them with [`RawNode::advance_apply_to`]. Until then the Ready's
    /// persisted messages must not be sent, and nothing it carried counts as durable (the leader
    /// does not count its own entries towards commit).
    ///
    /// Further Readys may be taken meanwhile ([`RawNode::ready`] pipelines them); each carries only
    /// what is new since the previous one.
    pub fn advance_append_async(&mut self, rd: Ready) {
        // Everything the Ready hands out was recorded when it was built; only its number matters
        // for `on_persist_ready`, and the caller keeps that.
        drop(rd);
    }

    /// Every Ready up to and including number `number` was persisted. Entries that a newer leader
    /// replaced since they were handed out are not marked durable.
    pub fn on_persist_ready(&mut self, number: u64) {
        let mut last_entry = None;
        // Records are in Ready order, and rarely more than one or two are outstanding.
        let done = self.records.partition_point(|r| r.number <= number);
        for record in self.records.drain(..done) {
            if let Some(index) = record.snapshot_index {
                // A Ready's snapshot comes before its entries, which follow it in the log.
                self.raft.raft_log.stable_snapshot(index);
            }
            last_entry = record.last_entry.or(last_entry);
            if record.new_term {
                self.raft.term_not_durable = false;
            }
        }
        if let Some((index, term)) = last_entry {
            self.raft.on_persist_ready_entries(index, term, number);
        }
        // The Ready carrying a leader's quiescing heartbeats is the last of its nap.
        self.release_if_asleep();
    }

    /// Every committed entry handed out so far has been applied.
    pub fn advance_apply(&mut self) {
        let applied = self.committed_handed_out;
        self.raft.applied_to(applied);
    }

    /// The application has applied everything up to `index` (at most what was handed out).
    pub fn advance_apply_to(&mut self, index: u64) {
        self.raft.applied_to(index.min(self.committed_handed_out));
    }
}
