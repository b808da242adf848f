//! [`ProposalTracker`]: pending proposals decided by what the application applies.

use std::collections::VecDeque;

use super::{ForwardAnswer, ProposalOutcome};
use raft_proto::eraftpb::Entry;

/// Pending proposals by (index, term), decided by the committed entries the application applies;
/// forwarded proposals wait for their leader's answer first.
///
/// Pure bookkeeping, owned by the application next to its state machine (it is lost with it in a
/// crash, like any callback waiting on a proposal). `K` is whatever the application answers to: a
/// channel, a request id.
#[derive(Debug)]
pub struct ProposalTracker<K> {
    /// Ordered by index: a leader appends in index order, and a later leader's proposals start
    /// after what it holds, which includes every committed index.
    pending: VecDeque<(u64, u64, K)>,
    /// Forwarded proposals without an answer: (stamp id, stamp term, key), in the order forwarded,
    /// and so by term too (a node's term never goes down).
    forwarded: VecDeque<(u64, u64, K)>,
    /// The last index handed to the tracker (committed entries, or a snapshot).
    applied: u64,
    /// While forwarded proposals wait, the terms applied since the oldest was forwarded, so that
    /// an answer arriving after its entry was applied is still decided.
    history: History,
}

/// The terms of the indexes applied lately: runs of `(first index, term)` after `floor`.
#[derive(Debug, Default)]
struct History {
    /// Indexes up to `floor.0` are covered only by a snapshot of term `floor.1`, if any.
    floor: (u64, Option<u64>),
    /// Increasing first indexes; each run lasts until the next one starts, the last until
    /// `ProposalTracker::applied`.
    runs: Vec<(u64, u64)>,
}

impl History {
    fn term_at(&self, index: u64) -> Option<u64> {
        let at = self.runs.partition_point(|(first, _)| *first <= index);
        at.checked_sub(1).map(|i| self.runs[i].1)
    }
}

impl<K> Default for ProposalTracker<K> {
    fn default() -> Self {
        ProposalTracker {
            pending: VecDeque::new(),
            forwarded: VecDeque::new(),
            applied: 0,
            history: History::default(),
        }
    }
}

impl<K> ProposalTracker<K> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tracks `key`, a proposal appended at (index, term) ([`Proposed::Appended`](super::Proposed)).
    ///
    /// A proposal at an index at or below one tracked already comes from a later leader that
    /// overwrote the uncommitted tail (this node lost leadership and won it back): the tracked
    /// ones from there on can no longer commit with their terms, but they are decided as usual,
    /// when their index is applied.
    pub fn track(&mut self, key: K, index: u64, term: u64) {
        let at = self.pending.partition_point(|(i, ..)| *i <= index);
        self.pending.insert(at, (index, term, key));
    }

    /// Tracks `key`, a proposal forwarded with stamp `id` to the leader of `term`
    /// ([`Proposed::Forwarded`](super::Proposed)): the leader's answer
    /// ([`ProposalTracker::on_forward_answers`]) says where it went.
    pub fn track_forwarded(&mut self, key: K, id: u64, term: u64) {
        if self.forwarded.is_empty() {
            self.history = History {
                floor: (self.applied, None),
                runs: Vec::new(),
            };
        }
        let at = self.forwarded.partition_point(|(_, t, _)| *t <= term);
        self.forwarded.insert(at, (id, term, key));
    }

    /// How many proposals wait for their outcome (forwarded ones included).
    pub fn len(&self) -> usize {
        self.pending.len() + self.forwarded.len()
    }

    /// Whether no proposal waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.forwarded.is_empty()
    }

    /// Decides the proposals whose indexes `entries` (committed entries, in the order handed out)
    /// cover, and the forwarded ones left unanswered when a later term's entry is applied. Call
    /// it with every batch of committed entries the application applies.
    pub fn on_committed(&mut self, entries: &[Entry]) -> Vec<(K, ProposalOutcome)> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Vec::new();
        };
        let mut outcomes = self.decide(first.index, last.index, |index| {
            entries
                .get((index - first.index) as usize)
                .filter(|e| e.index == index)
                .map(|e| e.term)
        });
        self.record(entries.iter().map(|e| (e.index, e.term)));
        self.fence(last.term, &mut outcomes);
        outcomes
    }

    /// [`ProposalTracker::on_committed`] for an application that kept only the (index, term) of
    /// each committed entry it applied, in order.
    pub fn on_committed_ids(&mut self, ids: &[(u64, u64)]) -> Vec<(K, ProposalOutcome)> {
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Vec::new();
        };
        let mut outcomes = self.decide(first.0, last.0, |index| {
            ids.get((index - first.0) as usize)
                .filter(|(i, _)| *i == index)
                .map(|(_, t)| *t)
        });
        self.record(ids.iter().copied());
        self.fence(last.1, &mut outcomes);
        outcomes
    }

    /// Decides the proposals up to `last`, given the term committed at each index from `first`
    /// on (`term_at`, called only with indexes in `first..=last`).
    fn decide(
        &mut self,
        first: u64,
        last: u64,
        term_at: impl Fn(u64) -> Option<u64>,
    ) -> Vec<(K, ProposalOutcome)> {
        let mut outcomes = Vec::new();
        while let Some((index, term, _)) = self.pending.front() {
            let (index, term) = (*index, *term);
            if index > last {
                break;
            }
            let (.., key) = self.pending.pop_front().expect("a front entry");
            let committed_term = if index >= first { term_at(index) } else { None };
            outcomes.push((key, by_committed_term(index, term, committed_term)));
        }
        outcomes
    }

    /// Notes the terms of indexes applied while forwarded proposals wait for answers.
    fn record(&mut self, ids: impl Iterator<Item = (u64, u64)>) {
        for (index, term) in ids {
            if self.forwarded.is_empty() || index <= self.applied {
                self.applied = self.applied.max(index);
                continue;
            }
            if index != self.applied + 1 {
                // A gap (nothing is handed out that way, but be sure): what came before is unknown.
                self.history = History {
                    floor: (index - 1, None),
                    runs: Vec::new(),
                };
            }
            if self.history.runs.last().is_none_or(|(_, t)| *t != term) {
                self.history.runs.push((index, term));
            }
            self.applied = index;
        }
    }

    /// Decides `Unanswered` the forwarded proposals of terms below `term`, which was applied: the
    /// leader of their term can no longer commit anything it did not already.
    fn fence(&mut self, term: u64, outcomes: &mut Vec<(K, ProposalOutcome)>) {
        while self.forwarded.front().is_some_and(|(_, t, _)| *t < term) {
            let (_, t, key) = self.forwarded.pop_front().expect("a front entry");
            outcomes.push((key, ProposalOutcome::Unanswered { term: t }));
        }
        if self.forwarded.is_empty() {
            self.history = History::default();
        }
    }

    /// Decides the proposals a snapshot at (index, term) covers, when the application restores
    /// it (`Ready::snapshot`): the log up to it is replaced, so their entries are not handed out.
    /// A proposal of the snapshot's term is committed (the leader of that term created the
    /// snapshot's last entry after it); one of an older term is decided only by the state
    /// machine ([`ProposalOutcome::Unknown`]); one of a later term cannot be below the snapshot
    /// and is dropped. Forwarded proposals of older terms without an answer are unanswered.
    pub fn on_snapshot(&mut self, index: u64, term: u64) -> Vec<(K, ProposalOutcome)> {
        let mut outcomes = Vec::new();
        while self.pending.front().is_some_and(|(i, ..)| *i <= index) {
            let (i, t, key) = self.pending.pop_front().expect("a front entry");
            outcomes.push((key, by_snapshot(i, t, term)));
        }
        self.applied = self.applied.max(index);
        self.history = History {
            floor: (index, Some(term)),
            runs: Vec::new(),
        };
        self.fence(term, &mut outcomes);
        outcomes
    }

    /// Takes the leaders' answers to forwarded proposals ([`RawNode::take_forward_answers`](
    /// crate::RawNode::take_forward_answers)): a proposal not appended is decided at once, an
    /// appended one is tracked at its (index, term), or decided if its index is applied already.
    /// Answers to proposals not waiting (decided already, or not tracked) are ignored.
    pub fn on_forward_answers(
        &mut self,
        answers: impl IntoIterator<Item = ForwardAnswer>,
    ) -> Vec<(K, ProposalOutcome)> {
        let mut outcomes = Vec::new();
        for answer in answers {
            let (ForwardAnswer::Appended { id, term, .. }
            | ForwardAnswer::NotAppended { id, term }) = answer;
            let Some(at) = self
                .forwarded
                .iter()
                .position(|(i, t, _)| (*i, *t) == (id, term))
            else {
                continue;
            };
            let (.., key) = self.forwarded.remove(at).expect("a found entry");
            match answer {
                ForwardAnswer::NotAppended { term, .. } => {
                    outcomes.push((key, ProposalOutcome::NotAppended { term }));
                }
                ForwardAnswer::Appended { index, term, .. } if index > self.applied => {
                    self.track(key, index, term);
                }
                ForwardAnswer::Appended { index, term, .. } => {
                    let outcome = match self.history.floor {
                        (floor, snapshot) if index <= floor => match snapshot {
                            Some(snapshot_term) => by_snapshot(index, term, snapshot_term),
                            None => ProposalOutcome::Unknown { index, term },
                        },
                        _ => by_committed_term(index, term, self.history.term_at(index)),
                    };
                    outcomes.push((key, outcome));
                }
            }
        }
        if self.forwarded.is_empty() {
            self.history = History::default();
        }
        outcomes
    }
}

/// The outcome of a proposal at (index, term) where an entry of `committed_term` was applied
/// (`None`: that entry was not handed out here).
fn by_committed_term(index: u64, term: u64, committed_term: Option<u64>) -> ProposalOutcome {
    match committed_term {
        Some(t) if t == term => ProposalOutcome::Committed { index, term },
        Some(committed_term) => ProposalOutcome::Dropped {
            index,
            term,
            committed_term,
        },
        None => ProposalOutcome::Unknown { index, term },
    }
}

/// The outcome of a proposal at (index, term) covered by a snapshot of `snapshot_term`.
fn by_snapshot(index: u64, term: u64, snapshot_term: u64) -> ProposalOutcome {
    if term == snapshot_term {
        ProposalOutcome::Committed { index, term }
    } else if term < snapshot_term {
        ProposalOutcome::Unknown { index, term }
    } else {
        ProposalOutcome::Dropped {
            index,
            term,
            committed_term: snapshot_term,
        }
    }
}
