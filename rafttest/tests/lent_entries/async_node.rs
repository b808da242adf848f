//! The node both randomized runs drive: a `RawNode` over `MemStorage` whose Readys are taken,
//! held every way an application may hold them, written and reported late, and lost in crashes,
//! with the log's own invariants checked after every step.

use std::collections::VecDeque;

use raft_core::eraftpb::{Entry, HardState, Message, Snapshot};
use raft_core::log::DEFAULT_APPLY_CACHE_BYTES;
use raft_core::{Config, LightReady, RawNode, Storage, NO_LIMIT};
use rand::rngs::Xoshiro256PlusPlus;
use rand::RngExt;
use storage_mem::MemStorage;

use crate::common::{entry_ids, logger};
use crate::fixtures::{hold_ready, log_view, Handle, Hold};

/// A Ready handed over and not yet reported durable.
pub(crate) struct Pending {
    number: u64,
    hold: Hold,
    handle: Handle,
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    persisted_messages: Vec<Message>,
}

/// A `RawNode` over `MemStorage` driven the asynchronous way: Readys are taken while earlier ones
/// wait to be written, written in order, reported later (by `on_persist_ready`, `advance_append` or
/// `advance`). It checks as it goes that committed entries come once each, in order, already in
/// storage; it releases a Ready's persisted messages only once that Ready is written.
pub(crate) struct Node {
    /// The node's id.
    pub(crate) id: u64,
    /// The node itself.
    pub(crate) raw: RawNode<MemStorage>,
    /// Its storage (it survives a crash).
    pub(crate) storage: MemStorage,
    cfg: Config,
    /// Readys taken and not written yet, oldest first.
    pub(crate) unwritten: VecDeque<Pending>,
    /// Readys written and not reported yet, oldest first.
    written: Vec<Pending>,
    last_number: u64,
    /// The last index handed out for applying (or restored from a snapshot).
    pub(crate) handed_out: u64,
    /// How far the state machine is (it survives a crash): applied entries and written snapshots.
    pub(crate) sm_applied: u64,
    /// Messages released for sending.
    pub(crate) outbox: Vec<Message>,
    /// Every committed entry handed out, in order (checked against the group by the caller).
    pub(crate) applied_log: Vec<Entry>,
    /// A short trace of the last actions (printed on failure).
    trace: VecDeque<String>,
}

impl Node {
    /// Starts node `cfg.id` over `storage`.
    pub(crate) fn start(cfg: Config, storage: MemStorage) -> Node {
        let raw = RawNode::new(&cfg, storage.clone(), &logger())
            .unwrap_or_else(|e| panic!("node {} cannot start: {e}", cfg.id));
        let applied = raw.raft.raft_log.applied;
        Node {
            id: cfg.id,
            raw,
            storage,
            cfg,
            unwritten: VecDeque::new(),
            written: Vec::new(),
            last_number: 0,
            handed_out: applied,
            sm_applied: applied,
            outbox: Vec::new(),
            applied_log: Vec::new(),
            trace: VecDeque::new(),
        }
    }

    /// Adds `what` to the trace, which keeps the last 40 actions.
    pub(crate) fn note(&mut self, what: String) {
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(what);
    }

    /// The trace, one action a line (for failure messages).
    pub(crate) fn trace(&self) -> String {
        self.trace.iter().cloned().collect::<Vec<_>>().join("\n  ")
    }

    /// Records committed entries handed out: the next index each, and already in storage.
    fn hand_out(&mut self, entries: &[Entry], origin: &str) {
        for e in entries {
            assert_eq!(
                e.index,
                self.handed_out + 1,
                "node {}: a {origin} handed out index {} but the next one due is {} (a duplicate \
                 or a gap); trace:\n  {}",
                self.id,
                e.index,
                self.handed_out + 1,
                self.trace()
            );
            let in_storage = self.storage.entries(e.index, e.index + 1, NO_LIMIT);
            assert_eq!(
                in_storage.as_deref().ok(),
                Some(std::slice::from_ref(e)),
                "node {}: a {origin} handed out {:?} for applying, which storage does not hold \
                 (it holds {:?}); trace:\n  {}",
                self.id,
                (e.index, e.term),
                in_storage.as_ref().map(|v| entry_ids(v)),
                self.trace()
            );
            self.handed_out = e.index;
            self.sm_applied = e.index;
            self.applied_log.push(e.clone());
        }
        if !entries.is_empty() {
            let what = format!("{origin} committed {:?}", entry_ids(entries));
            self.note(what);
        }
    }

    /// Whether the node has a Ready to take.
    pub(crate) fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Takes a Ready and holds it as `hold` says. Returns its committed entries and snapshot
    /// (index, term), for the caller's checks against the group.
    pub(crate) fn take_ready(&mut self, hold: Hold) -> (Vec<Entry>, Option<(u64, u64)>) {
        let mut rd = self.raw.ready().expect("ready");
        assert_eq!(
            rd.number(),
            self.last_number + 1,
            "node {}: Ready numbers",
            self.id
        );
        self.last_number = rd.number();
        let committed = rd.committed_entries().to_vec();
        self.hand_out(&committed, "Ready");
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let snap_id = snapshot
            .as_ref()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| (m.index, m.term));
        if let Some((index, _)) = snap_id {
            assert!(
                committed.is_empty() && index >= self.handed_out,
                "node {}: a snapshot at {index} comes after {} was handed out for applying",
                self.id,
                self.handed_out
            );
            self.handed_out = index;
        }
        let what = format!(
            "ready {} {hold:?}: entries {:?} snapshot {snap_id:?} hs {:?}",
            rd.number(),
            entry_ids(rd.entries()),
            rd.hard_state().map(|h| (h.term, h.vote, h.commit))
        );
        self.note(what);
        self.outbox.extend(rd.take_messages());
        let number = rd.number();
        let hard_state = rd.hard_state().copied();
        let persisted_messages = rd.take_persisted_messages();
        let handle = hold_ready(&mut self.raw, rd, hold);
        self.unwritten.push_back(Pending {
            number,
            hold,
            handle,
            hard_state,
            snapshot,
            persisted_messages,
        });
        (committed, snap_id)
    }

    /// Writes the `k` oldest Readys not written yet, in order. After each, `released` sees the
    /// storage and the persisted messages that may now leave.
    pub(crate) fn write(&mut self, k: usize, released: &mut dyn FnMut(&MemStorage, &[Message])) {
        for _ in 0..k {
            let Some(mut p) = self.unwritten.pop_front() else {
                return;
            };
            {
                let mut s = self.storage.wl();
                if let Some(snap) = &p.snapshot {
                    s.apply_snapshot(snap.clone()).unwrap_or_else(|e| {
                        panic!(
                            "node {}: writing Ready {}'s snapshot: {e}",
                            self.id, p.number
                        )
                    });
                }
                s.append(p.handle.entries()).unwrap_or_else(|e| {
                    panic!(
                        "node {}: writing Ready {}'s entries {:?}: {e}",
                        self.id,
                        p.number,
                        entry_ids(p.handle.entries())
                    )
                });
                if let Some(hs) = p.hard_state {
                    s.set_hardstate(hs);
                }
            }
            if let Some(meta) = p.snapshot.as_ref().and_then(|s| s.metadata.as_ref()) {
                // Restoring the state machine from the snapshot goes with writing it.
                self.sm_applied = self.sm_applied.max(meta.index);
            }
            released(&self.storage, &p.persisted_messages);
            self.outbox.append(&mut p.persisted_messages);
            if p.hold == Hold::SharedDroppedWhenWritten {
                p.handle = Handle::Shared(None);
            }
            let what = format!("wrote ready {}", p.number);
            self.note(what);
            self.written.push(p);
        }
    }

    /// Reports every written Ready durable: with `advance_append` / `advance` when the last one is
    /// kept whole and `how` says so, else with `on_persist_ready`. Handles kept past the report are
    /// dropped after it.
    pub(crate) fn report(&mut self, how: u32) {
        let Some(last) = self.written.pop() else {
            return;
        };
        let mut linger: Vec<Handle> = Vec::new();
        for p in self.written.drain(..) {
            if p.hold == Hold::SharedKeptPastReport || how == 3 {
                linger.push(p.handle);
            }
        }
        let number = last.number;
        let light = match last.handle {
            Handle::Whole(rd) if how == 1 => {
                Some(self.raw.advance_append(*rd).expect("advance_append"))
            }
            Handle::Whole(rd) if how == 2 => Some(self.raw.advance(*rd).expect("advance")),
            handle => {
                if last.hold == Hold::SharedKeptPastReport || how == 3 {
                    linger.push(handle);
                } else {
                    drop(handle);
                }
                self.raw.on_persist_ready(number);
                None
            }
        };
        drop(linger);
        self.note(format!("reported up to ready {number} (how {how})"));
        if let Some(mut light) = light {
            self.take_light(&mut light, "LightReady");
        }
    }

    fn take_light(&mut self, light: &mut LightReady, origin: &str) {
        let committed = light.take_committed_entries();
        self.hand_out(&committed, origin);
        if let Some(commit) = light.commit_index() {
            let mut s = self.storage.wl();
            let hs = s.mut_hard_state();
            hs.commit = hs.commit.max(commit);
        }
        self.outbox.extend(light.take_messages());
    }

    /// Reports everything handed out as applied.
    pub(crate) fn apply_report(&mut self) {
        self.raw.advance_apply_to(self.handed_out);
    }

    /// Crashes: every Ready not written is lost (the written ones are in storage), and a new
    /// `RawNode` starts over the storage from the state machine's applied index.
    pub(crate) fn restart(&mut self) {
        self.unwritten.clear();
        self.written.clear();
        let cfg = Config {
            applied: self.sm_applied,
            ..self.cfg.clone()
        };
        self.raw = RawNode::new(&cfg, self.storage.clone(), &logger()).unwrap_or_else(|e| {
            panic!(
                "node {}: restart at applied {} refused: {e} (storage last index {:?}, hard \
                 state {:?}); trace:\n  {}",
                self.id,
                self.sm_applied,
                self.storage.last_index(),
                self.storage.rl().hard_state(),
                self.trace()
            )
        });
        self.last_number = 0;
        self.handed_out = self.sm_applied;
        self.note(format!("restarted at applied {}", self.sm_applied));
    }

    /// Checks the log's own invariants and returns the log as the node reads it.
    pub(crate) fn check_log(&self) -> Vec<Entry> {
        let id = self.id;
        let log = &self.raw.raft.raft_log;
        let u = &log.unstable;
        let tail = u.all_entries();
        assert_eq!(tail.len(), u.len(), "node {id}: unstable length");
        for (k, e) in tail.iter().enumerate() {
            assert_eq!(e.index, u.offset + k as u64, "node {id}: unstable indexes");
            assert_eq!(
                u.maybe_term(e.index),
                Some(e.term),
                "node {id}: unstable term"
            );
        }
        let (first, last) = (log.first_index(), log.last_index());
        if let Some(e) = tail.last() {
            assert_eq!(
                last, e.index,
                "node {id}: last_index is the tail's last entry"
            );
        }
        let view = log_view(&self.raw);
        for (k, e) in view.iter().enumerate() {
            assert_eq!(e.index, first + k as u64, "node {id}: log indexes");
            assert_eq!(
                log.term(e.index).ok(),
                Some(e.term),
                "node {id}: term({}) disagrees with the entry read",
                e.index
            );
            if k > 0 {
                assert!(
                    e.term >= view[k - 1].term,
                    "node {id}: terms decrease at {}",
                    e.index
                );
            }
        }
        assert_eq!(
            view.last().map_or(first - 1, |e| e.index),
            last,
            "node {id}: last_index"
        );
        assert_eq!(log.term(last + 1).ok(), Some(0), "node {id}: past the end");
        if u.offset >= first {
            assert_eq!(
                &view[(u.offset - first) as usize..],
                tail.as_slice(),
                "node {id}: the tail as read equals the unstable entries"
            );
        }
        assert!(log.applied <= log.applying && log.applying <= log.committed);
        assert!(log.committed <= last, "node {id}: committed beyond the log");
        assert!(
            log.persisted < u.offset && log.persisted <= last,
            "node {id}: persisted {} must lie before the unstable offset {}; trace:\n  {}",
            log.persisted,
            u.offset,
            self.trace()
        );
        // Whatever the node counts as durable is in storage, as the node reads it.
        let stored_first = self.storage.first_index().expect("first index");
        let lo = first.max(stored_first);
        if lo <= log.persisted {
            let stored_part = self.storage.entries(lo, log.persisted + 1, NO_LIMIT);
            assert_eq!(
                stored_part.as_deref().ok(),
                Some(&view[(lo - first) as usize..=(log.persisted - first) as usize]),
                "node {id}: entries {lo}..={} count as durable but storage differs; trace:\n  {}",
                log.persisted,
                self.trace()
            );
        }
        if u.snapshot.is_none() {
            assert_eq!(
                log.applying, self.handed_out,
                "node {id}: applying is the last index handed out"
            );
        }
        view
    }
}

/// Picks one of the config values the randomized runs use: the apply cache off, tiny (it fills
/// mid-batch) or the default, and pages of committed entries unlimited or small.
pub(crate) fn random_limits(rng: &mut Xoshiro256PlusPlus) -> (u64, u64) {
    let cache = match rng.random_range(0..3) {
        0 => 0,
        1 => rng.random_range(1..=24),
        _ => DEFAULT_APPLY_CACHE_BYTES,
    };
    let page = if rng.random_bool(0.5) {
        NO_LIMIT
    } else {
        rng.random_range(1..=80)
    };
    (cache, page)
}
