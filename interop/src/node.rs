//! One node of a mixed cluster, running either library: its accessors, its inputs (tick, campaign,
//! propose, step), and its Ready handling in the order its own library documents.

use crate::{EntrySummary, Envelope, Lib, NodeConfig, StateRole};
use raft::eraftpb as theirs;
use raft::Storage as _;
use raft_core::eraftpb as ours;
use raft_core::Storage as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

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
    /// The read states (`(index, request context)`) its Readys carried (raft-rs nodes only; ours
    /// have no read-index support yet).
    pub read_states: Vec<(u64, Vec<u8>)>,
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
        let mut committed: Vec<EntrySummary> = rd
            .take_committed_entries()
            .iter()
            .map(EntrySummary::of_ours)
            .collect();
        let mut light = raw.advance(rd).expect("our advance");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        committed.extend(
            light
                .take_committed_entries()
                .iter()
                .map(EntrySummary::of_ours),
        );
        raw.advance_apply();
        self.apply(committed);
        out.iter().map(Envelope::from_ours).collect()
    }

    /// The order of raft-rs's `examples/five_mem_node`: messages, snapshot, committed entries,
    /// entries + hard state, persisted messages, advance, then the LightReady's commit index,
    /// messages and committed entries, and `advance_apply`.
    fn handle_ready_raft_rs(&mut self) -> Vec<Envelope> {
        let id = self.id;
        let Raw::RaftRs { raw, storage } = &mut self.raw else {
            unreachable!("called for raft-rs nodes only")
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let (out, committed, read_states) = guard(id, Lib::RaftRs, "handling a Ready", || {
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
            let mut committed: Vec<EntrySummary> = rd
                .take_committed_entries()
                .iter()
                .map(EntrySummary::of_theirs)
                .collect();
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
            committed.extend(
                light
                    .take_committed_entries()
                    .iter()
                    .map(EntrySummary::of_theirs),
            );
            raw.advance_apply();
            (out, committed, read_states)
        });
        self.read_states.extend(read_states);
        self.apply(committed);
        out.iter().map(Envelope::from_raft_rs).collect()
    }

    fn apply(&mut self, entries: Vec<EntrySummary>) {
        for e in entries {
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
    }
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
