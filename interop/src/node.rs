//! One node of a mixed cluster, running either library: its accessors, its inputs (tick, campaign,
//! propose, propose a conf change, step), and its Ready handling in the order its own library
//! documents, including the application of committed conf changes.

use crate::{EntrySummary, Envelope, Lib, NodeConfig, StateRole};
use prost::Message as _;
use protobuf::{Message as _, ProtobufEnum as _};
use raft::eraftpb as theirs;
use raft::Storage as _;
use raft_core::eraftpb as ours;
use raft_core::Storage as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// How a conf change is proposed: as a v1 `ConfChange` (exactly one change, entry type
/// `EntryConfChange`) or as a `ConfChangeV2` with a transition (entry type `EntryConfChangeV2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfChangeForm {
    /// A v1 `ConfChange`: the text must hold exactly one change.
    V1,
    /// A `ConfChangeV2` with this transition. Two or more changes, or a transition other than
    /// `Auto`, enter a joint configuration; no change at all (with `Auto`) is the leave-joint change.
    V2(ours::ConfChangeTransition),
}

/// The configuration a node switched to when it applied a conf change entry: the `ConfState` its
/// library's `apply_conf_change` returned (and the harness stored), with every id list sorted
/// (raft-rs lists ids in hash-set order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfRecord {
    /// The index of the conf change entry.
    pub index: u64,
    /// The voters (of the incoming configuration when joint).
    pub voters: Vec<u64>,
    /// The learners.
    pub learners: Vec<u64>,
    /// The voters of the outgoing configuration (empty unless joint).
    pub voters_outgoing: Vec<u64>,
    /// Voters of the outgoing configuration that become learners when the joint one is left.
    pub learners_next: Vec<u64>,
    /// Whether the joint configuration is left automatically.
    pub auto_leave: bool,
}

impl ConfRecord {
    fn new(
        index: u64,
        mut voters: Vec<u64>,
        mut learners: Vec<u64>,
        mut voters_outgoing: Vec<u64>,
        mut learners_next: Vec<u64>,
        auto_leave: bool,
    ) -> ConfRecord {
        for ids in [
            &mut voters,
            &mut learners,
            &mut voters_outgoing,
            &mut learners_next,
        ] {
            ids.sort_unstable();
        }
        ConfRecord {
            index,
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave,
        }
    }

    fn of_ours(index: u64, cs: &ours::ConfState) -> ConfRecord {
        ConfRecord::new(
            index,
            cs.voters.clone(),
            cs.learners.clone(),
            cs.voters_outgoing.clone(),
            cs.learners_next.clone(),
            cs.auto_leave,
        )
    }

    fn of_theirs(index: u64, cs: &theirs::ConfState) -> ConfRecord {
        ConfRecord::new(
            index,
            cs.voters.clone(),
            cs.learners.clone(),
            cs.voters_outgoing.clone(),
            cs.learners_next.clone(),
            cs.auto_leave,
        )
    }
}

impl std::fmt::Display for ConfRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{} voters={:?}", self.index, self.voters)?;
        if !self.voters_outgoing.is_empty() {
            write!(f, "&&{:?}", self.voters_outgoing)?;
        }
        write!(f, " learners={:?}", self.learners)?;
        if !self.learners_next.is_empty() {
            write!(f, " learners_next={:?}", self.learners_next)?;
        }
        if self.auto_leave {
            write!(f, " auto_leave")?;
        }
        Ok(())
    }
}

/// What applying a batch of committed entries produced.
#[derive(Default)]
struct Applied {
    entries: Vec<EntrySummary>,
    confs: Vec<ConfRecord>,
    conf_refusals: Vec<(u64, String)>,
}

/// One node's library-specific half: the `RawNode` and the storage it shares with the application.
pub enum Raw {
    /// A node of ours.
    Ours {
        /// The node.
        raw: Box<raft_core::RawNode<storage_mem::MemStorage>>,
        /// Its storage (shared with `raw`).
        storage: storage_mem::MemStorage,
    },
    /// A raft-rs node.
    RaftRs {
        /// The node.
        raw: Box<raft::RawNode<raft::storage::MemStorage>>,
        /// Its storage (shared with `raw`).
        storage: raft::storage::MemStorage,
    },
}

/// One node of a [`MixedCluster`](crate::MixedCluster): its library-specific half and what it applied.
pub struct MixedNode {
    /// The node's id.
    pub id: u64,
    /// The library-specific node and storage.
    pub raw: Raw,
    /// Every committed normal entry with a payload it applied, in order.
    pub applied: Vec<EntrySummary>,
    /// The index of the last entry it applied (of any kind).
    pub applied_index: u64,
    /// The read states (`(index, request context)`) its Readys carried (recorded for raft-rs nodes
    /// only: the interop tests check raft-rs's reads against leaders of either library).
    pub read_states: Vec<(u64, Vec<u8>)>,
    /// Every configuration it switched to by applying a conf change entry, in log order.
    pub conf_log: Vec<ConfRecord>,
    /// Conf change entries its library refused to apply (`(index, error)`); the configuration
    /// stayed as it was.
    pub conf_refusals: Vec<(u64, String)>,
}

/// The logger both libraries write to: stderr if `INTEROP_LOG` is set, otherwise nowhere.
fn logger() -> slog::Logger {
    use slog::Drain as _;
    if std::env::var_os("INTEROP_LOG").is_some() {
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        let drain = slog_term::FullFormat::new(decorator).build().fuse();
        slog::Logger::root(drain, slog::o!())
    } else {
        slog::Logger::root(slog::Discard, slog::o!())
    }
}

/// The text of a panic payload (a `&str` or a `String`).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Our name for a raft-rs role.
fn role_of(role: raft::StateRole) -> StateRole {
    match role {
        raft::StateRole::Follower => StateRole::Follower,
        raft::StateRole::Candidate => StateRole::Candidate,
        raft::StateRole::Leader => StateRole::Leader,
        raft::StateRole::PreCandidate => StateRole::PreCandidate,
    }
}

impl MixedNode {
    /// Starts node `id` of `lib` in a group of `voters`, configured with `config`.
    pub(crate) fn start(id: u64, lib: Lib, voters: &[u64], config: &NodeConfig) -> MixedNode {
        let logger = logger();
        let raw = match lib {
            Lib::Ours => {
                let storage = storage_mem::MemStorage::new_with_conf_state(
                    storage_mem::conf_state(voters.to_vec(), vec![]),
                );
                let raw = raft_core::RawNode::new(&config.ours(id), storage.clone(), &logger)
                    .expect("valid config for our node");
                Raw::Ours {
                    raw: Box::new(raw),
                    storage,
                }
            }
            Lib::RaftRs => {
                let storage =
                    raft::storage::MemStorage::new_with_conf_state((voters.to_vec(), vec![]));
                let raw = raft::RawNode::new(&config.raft_rs(id), storage.clone(), &logger)
                    .expect("valid config for the raft-rs node");
                Raw::RaftRs {
                    raw: Box::new(raw),
                    storage,
                }
            }
        };
        MixedNode {
            id,
            raw,
            applied: Vec::new(),
            applied_index: 0,
            read_states: Vec::new(),
            conf_log: Vec::new(),
            conf_refusals: Vec::new(),
        }
    }

    /// The node's library.
    pub fn lib(&self) -> Lib {
        match self.raw {
            Raw::Ours { .. } => Lib::Ours,
            Raw::RaftRs { .. } => Lib::RaftRs,
        }
    }

    /// The node's role.
    pub fn role(&self) -> StateRole {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.state,
            Raw::RaftRs { raw, .. } => role_of(raw.raft.state),
        }
    }

    /// The node's current term.
    pub fn term(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.term,
            Raw::RaftRs { raw, .. } => raw.raft.term,
        }
    }

    /// The leader the node follows (0 for none).
    pub fn leader_id(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.leader_id,
            Raw::RaftRs { raw, .. } => raw.raft.leader_id,
        }
    }

    /// The node's commit index.
    pub fn commit(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.raft_log.committed,
            Raw::RaftRs { raw, .. } => raw.raft.raft_log.committed,
        }
    }

    /// The node's last log index.
    pub fn last_index(&self) -> u64 {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.raft.raft_log.last_index(),
            Raw::RaftRs { raw, .. } => raw.raft.raft_log.last_index(),
        }
    }

    /// The persisted hard state as `(term, vote, commit)`.
    pub fn hard_state(&self) -> (u64, u64, u64) {
        match &self.raw {
            Raw::Ours { storage, .. } => {
                let hs = *storage.rl().hard_state();
                (hs.term, hs.vote, hs.commit)
            }
            Raw::RaftRs { storage, .. } => {
                let core = storage.rl();
                let hs = core.hard_state();
                (hs.term, hs.vote, hs.commit)
            }
        }
    }

    /// The persisted log (every entry the storage holds). The harness persists each Ready as it
    /// handles it, so this is the node's whole log whenever the cluster is quiescent.
    pub fn log(&self) -> Vec<EntrySummary> {
        match &self.raw {
            Raw::Ours { storage, .. } => {
                let (first, last) = (
                    storage.first_index().expect("first index"),
                    storage.last_index().expect("last index"),
                );
                storage
                    .entries(first, last + 1, raft_core::NO_LIMIT)
                    .expect("read our log")
                    .iter()
                    .map(EntrySummary::of_ours)
                    .collect()
            }
            Raw::RaftRs { storage, .. } => {
                let (first, last) = (
                    storage.first_index().expect("first index"),
                    storage.last_index().expect("last index"),
                );
                storage
                    .entries(
                        first,
                        last + 1,
                        raft::NO_LIMIT,
                        raft::GetEntriesContext::empty(false),
                    )
                    .expect("read the raft-rs log")
                    .iter()
                    .map(EntrySummary::of_theirs)
                    .collect()
            }
        }
    }

    /// The payloads the node applied, in order.
    pub fn applied_data(&self) -> Vec<Vec<u8>> {
        self.applied.iter().map(|e| e.data.clone()).collect()
    }

    /// Ticks the node once.
    pub fn tick(&mut self) {
        let id = self.id;
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw.tick(),
            Raw::RaftRs { raw, .. } => {
                guard(id, Lib::RaftRs, "tick", || {
                    raw.tick();
                });
            }
        }
    }

    /// Starts a campaign (a pre-vote round first if configured). The error, if any, as text.
    pub fn campaign(&mut self) -> Result<(), String> {
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw.campaign().map_err(|e| e.to_string()),
            Raw::RaftRs { raw, .. } => raw.campaign().map_err(|e| e.to_string()),
        }
    }

    /// Proposes `data`; a follower forwards it to its leader. The error, if any, as text.
    pub fn propose(&mut self, data: &[u8]) -> Result<(), String> {
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw
                .propose(vec![], data.to_vec())
                .map_err(|e| e.to_string()),
            Raw::RaftRs { raw, .. } => raw
                .propose(vec![], data.to_vec())
                .map_err(|e| e.to_string()),
        }
    }

    /// Proposes the conf change `changes`, written in the compact text form ("v4", "r3 v5", "l6":
    /// add voter, remove, add learner; "" with `V2(Auto)` is the leave-joint change), as `form`.
    /// The node's own library builds and encodes the change. A follower forwards it to its
    /// leader. The error, if any, as text (also for text that does not parse, or a v1 form that
    /// does not hold exactly one change).
    pub fn propose_conf_change(
        &mut self,
        changes: &str,
        form: ConfChangeForm,
    ) -> Result<(), String> {
        let singles = raft_proto::conf_changes_from_string(changes)?;
        if form == ConfChangeForm::V1 && singles.len() != 1 {
            return Err(format!(
                "a v1 ConfChange holds exactly one change, not {:?}",
                changes
            ));
        }
        let id = self.id;
        match &mut self.raw {
            Raw::Ours { raw, .. } => {
                let result = match form {
                    ConfChangeForm::V1 => raw.propose_conf_change(
                        vec![],
                        ours::ConfChange {
                            change_type: singles[0].change_type,
                            node_id: singles[0].node_id,
                            ..Default::default()
                        },
                    ),
                    ConfChangeForm::V2(transition) => raw.propose_conf_change(
                        vec![],
                        ours::ConfChangeV2 {
                            transition: transition as i32,
                            changes: singles,
                            ..Default::default()
                        },
                    ),
                };
                result.map_err(|e| e.to_string())
            }
            Raw::RaftRs { raw, .. } => {
                let theirs_singles: Vec<theirs::ConfChangeSingle> = singles
                    .iter()
                    .map(|s| {
                        let mut single = theirs::ConfChangeSingle::default();
                        single.set_change_type(change_type_of(s.change_type));
                        single.node_id = s.node_id;
                        single
                    })
                    .collect();
                let what = format!("proposing the conf change {changes:?}");
                guard(id, Lib::RaftRs, &what, || match form {
                    ConfChangeForm::V1 => {
                        let mut cc = theirs::ConfChange::default();
                        cc.set_change_type(theirs_singles[0].get_change_type());
                        cc.node_id = theirs_singles[0].node_id;
                        raw.propose_conf_change(vec![], cc)
                    }
                    ConfChangeForm::V2(transition) => {
                        let mut cc = theirs::ConfChangeV2::default();
                        cc.set_transition(
                            theirs::ConfChangeTransition::from_i32(transition as i32)
                                .expect("the transition values agree"),
                        );
                        cc.set_changes(theirs_singles.into());
                        raw.propose_conf_change(vec![], cc)
                    }
                })
                .map_err(|e| e.to_string())
            }
        }
    }

    /// Whether the node has a Ready to handle.
    pub fn has_ready(&self) -> bool {
        match &self.raw {
            Raw::Ours { raw, .. } => raw.has_ready(),
            Raw::RaftRs { raw, .. } => raw.has_ready(),
        }
    }

    /// The node's current configuration, as its library's tracker reports it (ids sorted; the
    /// index is the node's applied index).
    pub fn conf(&self) -> ConfRecord {
        match &self.raw {
            Raw::Ours { raw, .. } => {
                ConfRecord::of_ours(raw.raft.raft_log.applied, &raw.raft.prs.conf_state())
            }
            Raw::RaftRs { raw, .. } => ConfRecord::of_theirs(
                raw.raft.raft_log.applied,
                &raw.raft.prs().conf().to_conf_state(),
            ),
        }
    }

    /// The configuration persisted in the node's storage (what a restart would use; ids sorted;
    /// the index is the storage's commit index).
    pub fn stored_conf(&self) -> ConfRecord {
        match &self.raw {
            Raw::Ours { storage, .. } => {
                let state = storage.initial_state().expect("our initial state");
                ConfRecord::of_ours(state.hard_state.commit, &state.conf_state)
            }
            Raw::RaftRs { storage, .. } => {
                let state = storage.initial_state().expect("raft-rs initial state");
                ConfRecord::of_theirs(state.hard_state.commit, &state.conf_state)
            }
        }
    }

    /// Decodes `env` with this node's library and steps it. A decode failure panics (the wire
    /// formats disagree); a refusal is returned as text.
    pub(crate) fn step(&mut self, env: &Envelope) -> Result<(), String> {
        let id = self.id;
        match &mut self.raw {
            Raw::Ours { raw, .. } => raw.step(env.decode_for_ours(id)).map_err(|e| e.to_string()),
            Raw::RaftRs { raw, .. } => {
                let m = env.decode_for_raft_rs(id);
                let what = format!("step({})", raft_proto::describe_message(&env.decode()));
                guard(id, Lib::RaftRs, &what, || raw.step(m)).map_err(|e| e.to_string())
            }
        }
    }

    /// Handles one Ready if there is one, returning the messages to send, encoded.
    pub fn handle_ready(&mut self) -> Vec<Envelope> {
        match self.lib() {
            Lib::Ours => self.handle_ready_ours(),
            Lib::RaftRs => self.handle_ready_raft_rs(),
        }
    }

    /// The order of our `Ready` documentation: messages; entries + hard state; persisted
    /// messages; committed entries (conf changes applied with `apply_conf_change` and the new
    /// `ConfState` stored); `advance`; then the LightReady's commit index, messages and committed
    /// entries, and `advance_apply` (where a leader with auto-leave proposes the leave).
    fn handle_ready_ours(&mut self) -> Vec<Envelope> {
        let Raw::Ours { raw, storage } = &mut self.raw else {
            unreachable!("called for our nodes only")
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let id = raw.raft.id;
        let mut rd = raw.ready().expect("our ready");
        let mut out = rd.take_messages();
        assert!(
            rd.snapshot() == &ours::Snapshot::default(),
            "node {id} (ours) produced a snapshot; this harness does not compact logs"
        );
        {
            let mut store = storage.wl();
            store.append(rd.entries()).expect("persist our entries");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.extend(rd.take_persisted_messages());
        let mut applied = Applied::default();
        apply_ours(raw, storage, &rd.take_committed_entries(), &mut applied);
        let mut light = raw.advance(rd).expect("our advance");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        apply_ours(raw, storage, &light.take_committed_entries(), &mut applied);
        raw.advance_apply();
        self.record(applied);
        out.iter().map(Envelope::from_ours).collect()
    }

    /// The order of raft-rs's `examples/five_mem_node`: messages, snapshot, committed entries
    /// (conf changes applied with `apply_conf_change` and the new `ConfState` stored), entries +
    /// hard state, persisted messages, advance, then the LightReady's commit index, messages and
    /// committed entries, and `advance_apply` (where a leader with auto-leave appends the leave).
    fn handle_ready_raft_rs(&mut self) -> Vec<Envelope> {
        let id = self.id;
        let Raw::RaftRs { raw, storage } = &mut self.raw else {
            unreachable!("called for raft-rs nodes only")
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let (out, applied, read_states) = guard(id, Lib::RaftRs, "handling a Ready", || {
            let mut rd = raw.ready();
            let mut out = rd.take_messages();
            let read_states: Vec<(u64, Vec<u8>)> = rd
                .take_read_states()
                .into_iter()
                .map(|rs| (rs.index, rs.request_ctx))
                .collect();
            if *rd.snapshot() != theirs::Snapshot::default() {
                storage
                    .wl()
                    .apply_snapshot(rd.snapshot().clone())
                    .expect("raft-rs apply snapshot");
            }
            let mut applied = Applied::default();
            apply_theirs(raw, storage, &rd.take_committed_entries(), &mut applied);
            storage
                .wl()
                .append(rd.entries())
                .expect("persist raft-rs entries");
            if let Some(hs) = rd.hs() {
                storage.wl().set_hardstate(hs.clone());
            }
            out.extend(rd.take_persisted_messages());
            let mut light = raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                storage.wl().mut_hard_state().set_commit(commit);
            }
            out.extend(light.take_messages());
            apply_theirs(raw, storage, &light.take_committed_entries(), &mut applied);
            raw.advance_apply();
            (out, applied, read_states)
        });
        self.read_states.extend(read_states);
        self.record(applied);
        out.iter().map(Envelope::from_raft_rs).collect()
    }

    /// Records what applying committed entries produced, checking they came in log order.
    fn record(&mut self, applied: Applied) {
        for e in applied.entries {
            assert_eq!(
                e.index,
                self.applied_index + 1,
                "node {} ({:?}) applied out of order",
                self.id,
                self.lib()
            );
            self.applied_index = e.index;
            if e.entry_type == ours::EntryType::EntryNormal as i32 && !e.data.is_empty() {
                self.applied.push(e);
            }
        }
        self.conf_log.extend(applied.confs);
        self.conf_refusals.extend(applied.conf_refusals);
    }
}

/// Applies our committed `entries`: a conf change entry is decoded with prost, applied with
/// `RawNode::apply_conf_change`, and the `ConfState` it returns is stored in `storage`.
fn apply_ours(
    raw: &mut raft_core::RawNode<storage_mem::MemStorage>,
    storage: &storage_mem::MemStorage,
    entries: &[ours::Entry],
    applied: &mut Applied,
) {
    for e in entries {
        applied.entries.push(EntrySummary::of_ours(e));
        let result = match ours::EntryType::try_from(e.entry_type) {
            Ok(ours::EntryType::EntryConfChange) => ours::ConfChange::decode(&e.data[..])
                .map_err(|err| format!("the ConfChange does not decode: {err}"))
                .and_then(|cc| raw.apply_conf_change(&cc).map_err(|err| err.to_string())),
            Ok(ours::EntryType::EntryConfChangeV2) => ours::ConfChangeV2::decode(&e.data[..])
                .map_err(|err| format!("the ConfChangeV2 does not decode: {err}"))
                .and_then(|cc| raw.apply_conf_change(&cc).map_err(|err| err.to_string())),
            _ => continue,
        };
        match result {
            Ok(cs) => {
                applied.confs.push(ConfRecord::of_ours(e.index, &cs));
                storage.wl().set_conf_state(cs);
            }
            Err(err) => applied.conf_refusals.push((e.index, err)),
        }
    }
}

/// Applies raft-rs's committed `entries`: a conf change entry is decoded with rust-protobuf,
/// applied with `RawNode::apply_conf_change`, and the `ConfState` it returns is stored in
/// `storage` (`wl().set_conf_state`), as raft-rs's `examples/five_mem_node` does.
fn apply_theirs(
    raw: &mut raft::RawNode<raft::storage::MemStorage>,
    storage: &raft::storage::MemStorage,
    entries: &[theirs::Entry],
    applied: &mut Applied,
) {
    for e in entries {
        applied.entries.push(EntrySummary::of_theirs(e));
        let result = match e.get_entry_type() {
            theirs::EntryType::EntryConfChange => theirs::ConfChange::parse_from_bytes(&e.data)
                .map_err(|err| format!("the ConfChange does not decode: {err}"))
                .and_then(|cc| raw.apply_conf_change(&cc).map_err(|err| err.to_string())),
            theirs::EntryType::EntryConfChangeV2 => theirs::ConfChangeV2::parse_from_bytes(&e.data)
                .map_err(|err| format!("the ConfChangeV2 does not decode: {err}"))
                .and_then(|cc| raw.apply_conf_change(&cc).map_err(|err| err.to_string())),
            theirs::EntryType::EntryNormal => continue,
        };
        match result {
            Ok(cs) => {
                applied.confs.push(ConfRecord::of_theirs(e.index, &cs));
                storage.wl().set_conf_state(cs);
            }
            Err(err) => applied.conf_refusals.push((e.index, err)),
        }
    }
}

/// raft-rs's change type for our wire value (the values come from our parser, so they are known).
fn change_type_of(value: i32) -> theirs::ConfChangeType {
    theirs::ConfChangeType::from_i32(value).expect("the change type values agree")
}

/// Runs `f`; if it panics, panics again naming the node and what it was doing.
fn guard<R>(id: u64, lib: Lib, what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => panic!(
            "node {id} ({lib:?}) panicked while {what}: {}",
            panic_text(payload.as_ref())
        ),
    }
}
