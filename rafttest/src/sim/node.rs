//! One simulated node: a `RawNode` over durable storage (`MemStorage`, or `storage-disk` on a
//! simulated disk), with the application's pipeline modelled explicitly. Readys are taken, then persisted later (a slow disk), and committed entries
//! are applied later still, so a crash can strike between any two steps and lose exactly what was
//! not yet durable.

use bytes::Bytes;
use raft_core::eraftpb::{ConfState, Entry, EntryType, HardState, Message, Snapshot};
use raft_core::proposal::{ProposalOutcome, ProposalTracker};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, RawNode, ReadState};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use storage_mem::MemStorage;

use super::disk::Recovered;
use super::store::{classify, SimStore};

/// A Ready taken from the node whose contents are not yet durable.
#[derive(Debug)]
pub(crate) struct Unpersisted {
    pub number: u64,
    pub snapshot: Option<Snapshot>,
    /// Shared with the node's unstable log (`Ready::take_shared_entries`).
    pub entries: Option<Arc<Vec<Entry>>>,
    pub hard_state: Option<HardState>,
    /// Messages that may only leave once this Ready is durable.
    pub persisted_msgs: Vec<Message>,
    /// The Ready itself, for a node that reports it with `advance_append`.
    pub ready: Option<raft_core::Ready>,
    /// Whether the Ready asked for a synced write (a node on `storage-disk` fsyncs then).
    pub must_sync: bool,
}

/// The replicated state machine: a small key-value map. Writes are `key:u8` + `value:u64`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// The index of the last entry applied (or restored from a snapshot).
    pub applied_index: u64,
    /// The membership as of `applied_index`.
    pub conf_state: ConfState,
    /// The current value of each key.
    pub kv: BTreeMap<u8, u64>,
}

impl StateMachine {
    /// The encoding stored as snapshot data: index, then (key, value) pairs.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(8 + self.kv.len() * 9);
        out.extend_from_slice(&self.applied_index.to_be_bytes());
        for (k, v) in &self.kv {
            out.push(*k);
            out.extend_from_slice(&v.to_be_bytes());
        }
        Bytes::from(out)
    }

    /// The state machine a snapshot carries.
    pub fn decode(snapshot: &Snapshot) -> Option<StateMachine> {
        let data = &snapshot.data[..];
        let meta = snapshot.metadata.as_ref()?;
        if data.is_empty() {
            // The bootstrap snapshot: the empty state machine.
            return Some(StateMachine {
                applied_index: meta.index,
                conf_state: meta.conf_state.clone().unwrap_or_default(),
                kv: BTreeMap::new(),
            });
        }
        let (index, mut rest) = data.split_first_chunk::<8>()?;
        let mut kv = BTreeMap::new();
        while let Some((k, tail)) = rest.split_first() {
            let (v, tail) = tail.split_first_chunk::<8>()?;
            kv.insert(*k, u64::from_be_bytes(*v));
            rest = tail;
        }
        if u64::from_be_bytes(*index) != meta.index {
            return None;
        }
        Some(StateMachine {
            applied_index: meta.index,
            conf_state: meta.conf_state.clone().unwrap_or_default(),
            kv,
        })
    }
}

/// A write as proposed: key and a value unique in the run.
pub fn encode_write(key: u8, value: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(9);
    data.push(key);
    data.extend_from_slice(&value.to_be_bytes());
    data
}

/// The (key, value) of a write entry's data.
pub fn decode_write(data: &[u8]) -> Option<(u8, u64)> {
    let (key, rest) = data.split_first()?;
    let value = rest.try_into().ok().map(u64::from_be_bytes)?;
    Some((*key, value))
}

/// A simulated node.
pub struct SimNode {
    /// Its id.
    pub id: u64,
    /// The node, while it is up.
    pub raw: Option<RawNode<SimStore>>,
    /// Durable storage: survives crashes. On a node on `storage-disk`, what it wrote there, which
    /// the disk's answers are checked against (its core reads the disk).
    pub storage: MemStorage,
    /// Its configuration (restarts reuse it with `applied` set).
    pub config: Config,
    pub(crate) unpersisted: VecDeque<Unpersisted>,
    /// Committed entries handed out and not yet applied.
    pub(crate) to_apply: VecDeque<Entry>,
    /// The state machine (volatile: rebuilt from the snapshot and the log after a crash).
    pub sm: StateMachine,
    /// Read states received and not yet served.
    pub(crate) reads: Vec<ReadState>,
    /// How often this node's clock ticks relative to the others (clock skew).
    pub tick_weight: f64,
    /// How often its disk completes a write relative to the others (slow disks).
    pub disk_weight: f64,
    /// Handles each Ready at once and synchronously (`advance`), instead of pipelining Readys and
    /// reporting them with `on_persist_ready` and `advance_apply_to`.
    pub sync: bool,
    /// A pipelining node that reports each written Ready with `advance_append` (taking the
    /// LightReady it returns) instead of `on_persist_ready`.
    pub advance_append: bool,
    /// The hard state of the last Ready taken (what `must_sync` is judged against).
    pub(crate) last_hard_state: HardState,
    /// The global tick at which it last crashed (a restart in a lease run waits an election
    /// timeout, as a real process restart does, so a lease it acknowledged can lapse).
    pub crashed_at: u64,
    /// The client writes it appended as leader, by value, waiting for their outcome (volatile).
    pub(crate) proposals: ProposalTracker<u64>,
    /// Outcomes decided and not yet checked: (write value, outcome).
    pub(crate) outcomes: Vec<(u64, ProposalOutcome)>,
    /// Its storage on a simulated disk, for a node whose durable state lives on `storage-disk`
    /// (see [`super::disk`]); `storage` is then rebuilt from it after every crash.
    pub(crate) disk: Option<super::disk::SimDisk>,
}

impl SimNode {
    /// Whether it is running.
    pub fn is_up(&self) -> bool {
        self.raw.is_some()
    }

    /// Starts (or restarts) the node from its durable storage: the state machine restarts from the
    /// storage's snapshot and the log after it is applied again.
    pub fn start(&mut self, logger: &slog::Logger) -> raft_core::Result<()> {
        let snapshot = self.storage.rl().snapshot_metadata().clone();
        let sm = if snapshot.index > 0 {
            let snap = {
                use raft_core::Storage;
                self.storage.snapshot(snapshot.index, self.id)?
            };
            StateMachine::decode(&snap).ok_or(raft_core::Error::Invariant(
                "a snapshot's data does not decode",
            ))?
        } else {
            StateMachine {
                conf_state: self.storage.rl().conf_state().clone(),
                ..Default::default()
            }
        };
        let mut config = self.config.clone();
        config.applied = sm.applied_index;
        let store = match self.disk.as_ref() {
            Some(disk) => disk.reader(&self.storage),
            None => SimStore::Mem(self.storage.clone()),
        };
        self.raw = Some(RawNode::new(&config, store, logger)?);
        self.last_hard_state = *self.storage.rl().hard_state();
        self.sm = sm;
        self.unpersisted.clear();
        self.to_apply.clear();
        self.reads.clear();
        self.proposals = ProposalTracker::new();
        self.outcomes.clear();
        Ok(())
    }

    /// Crashes the node: everything not durable is lost. A node on `storage-disk` loses what a
    /// power loss may lose and comes back with what recovery finds; an error says what recovery
    /// got wrong. Returns why the node must stay down for good, if it must (its disk was
    /// damaged: recovery refused it, or lost durable state, see `sim::disk`), and whether recovery
    /// noticed.
    pub fn crash(&mut self) -> Result<Option<(String, bool)>, String> {
        let mut condemned = None;
        if let Some(disk) = self.disk.as_mut() {
            match disk
                .crash_and_recover(&self.storage)
                .map_err(|e| format!("node {}: {e}", self.id))?
            {
                Recovered::Rebuilt(storage) => self.storage = storage,
                Recovered::Condemned { reason, detected } => condemned = Some((reason, detected)),
            }
        }
        self.stop();
        Ok(condemned)
    }

    /// Runs `f`, a check that reads the node's log through its core: on a node on
    /// `storage-disk`, the reads go to what was written (no faults, not counted as the node's).
    pub(crate) fn observe<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.disk.as_ref() {
            Some(disk) => disk.observer.observe(f),
            None => f(),
        }
    }

    /// Stops the node: its volatile state is gone, its storage stays as it is.
    pub(crate) fn stop(&mut self) {
        self.raw = None;
        self.unpersisted.clear();
        self.to_apply.clear();
        self.reads.clear();
        self.sm = StateMachine::default();
        self.proposals = ProposalTracker::new();
        self.outcomes.clear();
    }

    /// Whether its disk failed (an fsync did): the node must stop.
    pub(crate) fn disk_failed(&self) -> Option<&str> {
        self.disk.as_ref().and_then(|d| d.failed.as_deref())
    }

    /// Stores a new commit index (a LightReady's).
    pub(crate) fn store_commit(&mut self, commit: u64) {
        self.storage.wl().mut_hard_state().commit = commit;
        if let Some(disk) = self.disk.as_mut() {
            disk.set_commit(commit);
        }
    }

    /// Persists the oldest Ready taken: writes it to storage, reports it durable. Returns the
    /// messages that may now be sent and the committed entries a LightReady handed out.
    pub(crate) fn persist_one(&mut self) -> raft_core::Result<(Vec<Message>, Vec<Entry>)> {
        if self.raw.is_none() {
            return Ok((Vec::new(), Vec::new()));
        }
        let Some(mut u) = self.unpersisted.pop_front() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let entries: &[Entry] = u.entries.as_deref().map_or(&[], |e| &e[..]);
        self.write(u.snapshot.as_ref(), entries, u.hard_state, u.must_sync)?;
        let Some(raw) = self.raw.as_mut() else {
            return Ok((Vec::new(), Vec::new()));
        };
        if let Some(rd) = u.ready.take() {
            drop(u.entries);
            let mut light = match raw.advance_append(rd) {
                Ok(light) => light,
                // The persistence is recorded; the committed entries it could not read come in a
                // later Ready (a read error), or the node stops (corruption).
                Err(e) if classify(&e).is_some() => return Ok((u.persisted_msgs, Vec::new())),
                Err(e) => return Err(e),
            };
            if let Some(commit) = light.commit_index() {
                self.store_commit(commit);
            }
            let mut msgs = u.persisted_msgs;
            msgs.extend(light.take_messages());
            return Ok((msgs, light.take_committed_entries()));
        }
        // Even nodes let go of the written entries before reporting (the node takes them back
        // without a copy); odd ones still hold them (the node copies what it keeps).
        let entries = u.entries;
        if self.id.is_multiple_of(2) {
            drop(entries);
            raw.on_persist_ready(u.number);
        } else {
            raw.on_persist_ready(u.number);
            drop(entries);
        }
        Ok((u.persisted_msgs, Vec::new()))
    }

    /// Applies up to `max` committed entries and reports them applied (`advance_apply_to`);
    /// returns the applied entries for the checker.
    pub(crate) fn apply_some(&mut self, max: usize) -> Result<Vec<Entry>, String> {
        let applied = self.apply_entries(max)?;
        if let Some(raw) = self.raw.as_mut() {
            raw.advance_apply_to(self.sm.applied_index);
        }
        Ok(applied)
    }

    /// Applies up to `max` queued committed entries to the state machine (conf changes to the
    /// node too) without reporting them.
    pub(crate) fn apply_entries(&mut self, max: usize) -> Result<Vec<Entry>, String> {
        let Some(raw) = self.raw.as_mut() else {
            return Ok(Vec::new());
        };
        let mut applied = Vec::new();
        for _ in 0..max {
            let Some(e) = self.to_apply.pop_front() else {
                break;
            };
            if e.index <= self.sm.applied_index {
                continue;
            }
            if e.index != self.sm.applied_index + 1 {
                return Err("committed entries were handed out with a gap".to_string());
            }
            self.sm.applied_index = e.index;
            if let Some(cc) = decode_conf_change(&e) {
                let cc = cc.map_err(|e| format!("a committed conf change does not decode: {e}"))?;
                // The outcome must be what the rules give (the leader validated the change
                // against this same configuration: one change at a time).
                let before = raw.raft.prs.conf_state();
                let result = raw.apply_conf_change(&cc);
                super::confmodel::check(
                    self.id,
                    &before,
                    &cc,
                    result.as_ref().map_err(|e| e.to_string()),
                )
                .map_err(|err| format!("entry {}/{}: {err}", e.term, e.index))?;
                if let Ok(cs) = result {
                    self.sm.conf_state = cs;
                }
            } else if e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty() {
                if let Some((k, v)) = decode_write(&e.data) {
                    self.sm.kv.insert(k, v);
                }
            }
            applied.push(e);
        }
        let decided = self.proposals.on_committed(&applied);
        self.outcomes.extend(decided);
        Ok(applied)
    }

    /// Writes a Ready's snapshot, entries and hard state to durable storage (fsynced when
    /// `sync`, for a node on `storage-disk`), and restores the state machine from the snapshot.
    pub(crate) fn write(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
        sync: bool,
    ) -> raft_core::Result<()> {
        let installed = {
            let mut store = self.storage.wl();
            let mut installed = None;
            if let Some(snapshot) = snapshot {
                let meta = snapshot.metadata.clone().unwrap_or_default();
                let own = store.snapshot_metadata();
                // A snapshot this node asked for (`request_snapshot`) may sit at the very index
                // of one it took itself since: the same committed state, nothing to install.
                if (own.index, own.term) != (meta.index, meta.term) {
                    store.apply_snapshot(snapshot.clone())?;
                    installed = Some(snapshot);
                }
            }
            store.append(entries)?;
            if let Some(hs) = hard_state {
                store.set_hardstate(hs);
            }
            installed
        };
        if let Some(disk) = self.disk.as_mut() {
            disk.write(installed, entries, hard_state, sync)?;
        }
        if let Some(snapshot) = snapshot {
            // The state machine is replaced by the snapshot's; queued older entries are moot.
            let sm = StateMachine::decode(snapshot).ok_or(raft_core::Error::Invariant(
                "a snapshot's data does not decode",
            ))?;
            self.to_apply.retain(|e| e.index > sm.applied_index);
            if sm.applied_index > self.sm.applied_index {
                if let Some(meta) = snapshot.metadata.as_ref() {
                    let decided = self.proposals.on_snapshot(meta.index, meta.term);
                    self.outcomes.extend(decided);
                }
                self.sm = sm;
            }
        }
        Ok(())
    }

    /// Snapshots the state machine into storage and compacts the log behind it, keeping `keep`
    /// entries. Only possible when the state machine is not ahead of the durable commit index.
    pub(crate) fn compact(&mut self, keep: u64) -> raft_core::Result<bool> {
        let index = self.sm.applied_index;
        let mut store = self.storage.wl();
        if index == 0
            || index > store.hard_state().commit
            || index <= store.snapshot_metadata().index
        {
            return Ok(false);
        }
        let data = self.sm.encode();
        let first_kept = (index + 1).saturating_sub(keep).max(1);
        store.create_snapshot(index, Some(self.sm.conf_state.clone()), data.clone())?;
        store.compact(first_kept)?;
        // A restart resumes from this snapshot (`Config::applied` = its index), so the stored
        // membership must be the one as of that index: the contract of `initial_state`.
        store.set_conf_state(self.sm.conf_state.clone());
        drop(store);
        if let Some(disk) = self.disk.as_mut() {
            disk.compact(index, &self.sm.conf_state, data, first_kept)?;
        }
        Ok(true)
    }
}

/// A Ready that carries entries, a snapshot, or a new term or vote must ask for a synced write
/// (`must_sync`): a buffered write of a vote could be lost in a crash after the vote left. `last`
/// is the hard state of node `id`'s previous Ready (updated).
pub(crate) fn check_must_sync(
    id: u64,
    last: &mut HardState,
    rd: &raft_core::Ready,
) -> Result<(), String> {
    let hs = rd.hard_state().copied();
    let changed = hs.is_some_and(|hs| (hs.term, hs.vote) != (last.term, last.vote));
    let needed = changed || !rd.entries().is_empty() || !rd.snapshot().is_empty();
    if needed && !rd.must_sync() {
        return Err(format!(
            "must_sync: node {id}'s Ready {} carries {} entries, snapshot {}, hard state {:?} \
             after {:?}, yet does not ask for a synced write",
            rd.number(),
            rd.entries().len(),
            !rd.snapshot().is_empty(),
            hs,
            last
        ));
    }
    if let Some(hs) = hs {
        *last = hs;
    }
    Ok(())
}
