//! Each running node's own state must be consistent with itself and with its storage, after every
//! event: the orderings of its log indexes, what its role implies (a leader voted for itself and
//! knows itself as leader; only a leader holds read rounds or a transfer), and on a leader, the
//! shape of every follower's progress (etcd-io/raft keeps `Match < Next` and an empty inflight
//! window while probing as invariants of its `tracker.Progress`). A mutant that breaks one of these
//! often shows nothing outside until a rare schedule; inside it shows at once.

use super::node::SimNode;
use raft_core::tracker::ProgressState;
use raft_core::StateRole;
use std::collections::{BTreeMap, BTreeSet};

/// What the checks remember between events.
#[derive(Debug, Default)]
pub(super) struct Invariants {
    /// Per leader: its term, and the payload bytes of earlier terms' entries it had not handed
    /// out for applying when it was elected. Handing them out later lowers its count of
    /// uncommitted bytes, which it never counted (etcd-io/raft's `reduceUncommittedSize` lets the
    /// count underestimate the same way), so its limit may be passed by that much.
    leaders: BTreeMap<u64, (u64, u64)>,
}

impl Invariants {
    /// Checks one running node; `Err` names the node and what is inconsistent.
    pub(super) fn check(&mut self, node: &SimNode) -> Result<(), String> {
        let slack = self.slack(node)?;
        check(node, slack)
    }

    fn slack(&mut self, node: &SimNode) -> Result<u64, String> {
        let Some(r) = node.raw.as_ref().map(|raw| &raw.raft) else {
            // A restarted single voter may lead the same term again (its term was not durable):
            // that is a new leadership.
            self.leaders.remove(&node.id);
            return Ok(0);
        };
        if r.state != StateRole::Leader || node.config.max_uncommitted_size == raft_core::NO_LIMIT {
            return Ok(0);
        }
        if let Some(&(term, slack)) = self.leaders.get(&node.id) {
            if term == r.term {
                return Ok(slack);
            }
        }
        let log = &r.raft_log;
        let last = log.last_index();
        let slack = if log.applying < last {
            node.observe(|| log.slice(log.applying + 1, last + 1, raft_core::NO_LIMIT))
                .map_err(|e| format!("node {}: reading its log failed: {e}", node.id))?
                .iter()
                .filter(|e| e.term < r.term)
                .map(raft_proto::payload_size)
                .sum()
        } else {
            0
        };
        self.leaders.insert(node.id, (r.term, slack));
        Ok(slack)
    }
}

fn check(node: &SimNode, slack: u64) -> Result<(), String> {
    let Some(raw) = node.raw.as_ref() else {
        return Ok(());
    };
    let id = node.id;
    let r = &raw.raft;
    let log = &r.raft_log;
    let (first, last) = (log.first_index(), log.last_index());
    let bad = |what: String| {
        Err(format!(
            "node state: node {id} ({:?}, term {}): {what}",
            r.state, r.term
        ))
    };
    if !(log.applied <= log.applying && log.applying <= log.committed) {
        return bad(format!(
            "applied {} <= applying {} <= committed {} does not hold",
            log.applied, log.applying, log.committed
        ));
    }
    if log.committed > last || log.persisted > last || log.committed + 1 < first {
        return bad(format!(
            "committed {} and persisted {} must lie within the log {first}..={last} (committed at \
             least the snapshot)",
            log.committed, log.persisted
        ));
    }
    let hs = *node.storage.rl().hard_state();
    if hs.term > r.term {
        return bad(format!("its storage holds the later term {}", hs.term));
    }
    if hs.term == r.term && hs.vote != 0 && hs.vote != r.vote {
        return bad(format!(
            "it votes for {} though its storage holds a vote for {} in the same term",
            r.vote, hs.vote
        ));
    }
    match r.state {
        StateRole::Leader if r.vote != id || r.leader_id != id => {
            return bad(format!(
                "a leader with vote {} and leader {} (itself for both)",
                r.vote, r.leader_id
            ));
        }
        StateRole::Candidate if r.vote != id || r.leader_id != 0 => {
            return bad(format!(
                "a candidate with vote {} and leader {} (itself, and none)",
                r.vote, r.leader_id
            ));
        }
        StateRole::PreCandidate if r.leader_id != 0 => {
            return bad(format!("a pre-candidate following leader {}", r.leader_id));
        }
        _ => {}
    }
    if r.state != StateRole::Leader {
        if r.read_only.pending_count() != 0 {
            return bad(format!(
                "{} read rounds pending though only a leader confirms reads",
                r.read_only.pending_count()
            ));
        }
        if let Some(t) = r.lead_transferee {
            return bad(format!(
                "transferring leadership to {t} though it does not lead"
            ));
        }
        return Ok(());
    }
    // A leader: one progress per member, each consistent with its role and its own log. Asleep,
    // it keeps none (quiescence frees it: every member had matched and learned the last entry),
    // and rebuilds it on waking.
    if r.is_quiesced() {
        let tracked = r.prs.ids().count();
        if tracked != 0 {
            return bad(format!(
                "asleep, it still tracks the progress of {tracked} members"
            ));
        }
        return Ok(());
    }
    let conf = r.prs.conf();
    let members: BTreeSet<u64> = conf
        .voters
        .ids()
        .into_iter()
        .chain(conf.learners.iter().copied())
        .chain(conf.learners_next.iter().copied())
        .collect();
    let tracked: BTreeSet<u64> = r.prs.ids().collect();
    if tracked != members {
        return bad(format!(
            "it tracks progress of {tracked:?}, its configuration has {members:?}"
        ));
    }
    // Flow control of proposals: what this leader appended and has not committed stays within
    // `max_uncommitted_size`, unless it is one proposal accepted when nothing was uncommitted (the
    // simulator proposes one entry at a time).
    let limit = node.config.max_uncommitted_size;
    if limit != raft_core::NO_LIMIT && log.committed < last {
        let pending = node
            .observe(|| log.slice(log.committed + 1, last + 1, raft_core::NO_LIMIT))
            .map_err(|e| format!("node {id}: reading its uncommitted tail failed: {e}"))?;
        let own: Vec<u64> = pending
            .iter()
            .filter(|e| e.term == r.term)
            .map(raft_proto::payload_size)
            .filter(|size| *size > 0)
            .collect();
        let total: u64 = own.iter().sum();
        if total > limit.saturating_add(slack) && own.len() > 1 {
            return bad(format!(
                "{} proposals of {total} bytes uncommitted, above max_uncommitted_size {limit} \
                 (plus {slack} bytes of earlier terms it handed out since its election)",
                own.len()
            ));
        }
    }
    for (peer, pr) in r.prs.iter() {
        let learner = conf.learners.contains(&peer) || conf.learners_next.contains(&peer);
        let voter = conf.voters.ids().contains(&peer);
        if pr.is_learner != (learner && !voter) {
            return bad(format!(
                "progress of {peer} says learner {} against the configuration",
                pr.is_learner
            ));
        }
        if pr.matched >= pr.next_idx || pr.next_idx > last + 1 {
            return bad(format!(
                "progress of {peer}: match {} < next {} <= last index + 1 ({}) does not hold",
                pr.matched,
                pr.next_idx,
                last + 1
            ));
        }
        if pr.ins.count() > pr.ins.capacity() {
            return bad(format!(
                "progress of {peer}: {} appends in flight, window {}",
                pr.ins.count(),
                pr.ins.capacity()
            ));
        }
        if pr.state != ProgressState::Replicate && pr.ins.count() != 0 {
            return bad(format!(
                "progress of {peer}: {} appends in flight while in {:?}",
                pr.ins.count(),
                pr.state
            ));
        }
        if pr.state == ProgressState::Snapshot && pr.pending_snapshot == 0 {
            return bad(format!("progress of {peer}: sending a snapshot of index 0"));
        }
        if peer == id && pr.matched > log.persisted {
            return bad(format!(
                "its own progress matches {} beyond its durable log ({})",
                pr.matched, log.persisted
            ));
        }
    }
    Ok(())
}
