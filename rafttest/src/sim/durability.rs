//! Checks of what the nodes promise about durable state, read from every node's storage (which is
//! what survives a crash) rather than from the core's own bookkeeping:
//!
//! - a vote is granted, a candidacy announced and an append acknowledged only once the vote, the
//!   candidate's own term and vote, or the acknowledged entries are durable on the sender;
//! - a transfer target is told to campaign only when its log holds the leader's last entry;
//! - committed entries reach the application only once they are durable locally;
//! - an entry is committed only once it is durable on a quorum of the configuration that commits
//!   it, counted here independently of the core's quorum code (joint configurations need both
//!   halves);
//! - a leader's progress never claims more of a follower's log than the follower holds durably.

use super::node::SimNode;
use raft_core::eraftpb::{ConfState, Entry, Message, MessageType};
use raft_core::{StateRole, Storage};
use std::collections::BTreeMap;
use storage_mem::MemStorage;

/// The term of `index` in `storage` as it would survive a crash: `Some(0)` for an index covered
/// by its snapshot (compacted: committed there), `None` for an index beyond its log.
fn durable_term(storage: &MemStorage, index: u64) -> Option<u64> {
    match storage.term(index) {
        Ok(term) => Some(term),
        Err(_) => {
            let first = storage.first_index().ok()?;
            (index < first).then_some(0)
        }
    }
}

/// Whether `storage` durably holds `index` with `term` (or covers it with its snapshot; any term
/// when `term` is 0, unknown).
fn holds(storage: &MemStorage, index: u64, term: u64) -> bool {
    durable_term(storage, index).is_some_and(|t| t == term || t == 0 || term == 0)
}

/// Checks what a message about to leave node `m.from` promises. `transfers` holds, per (leader,
/// target, term), the (last index, last term) of the leader's log while it was transferring
/// leadership to that target (a leader appends nothing then, and may append again once a transfer
/// is abandoned, before the `MsgTimeoutNow` it generated leaves with a Ready).
pub(super) fn check_sent(
    nodes: &BTreeMap<u64, SimNode>,
    transfers: &BTreeMap<(u64, u64, u64), (u64, u64)>,
    m: &Message,
) -> Result<(), String> {
    let Some(sender) = nodes.get(&m.from) else {
        return Ok(());
    };
    let hs = *sender.storage.rl().hard_state();
    let kind = m.msg_type();
    if matches!(
        kind,
        MessageType::MsgAppend
            | MessageType::MsgHeartbeat
            | MessageType::MsgSnapshot
            | MessageType::MsgTimeoutNow
    ) && hs.term < m.term
    {
        return Err(format!(
            "term durability: node {} sends {kind:?} of term {} while its storage holds term {}: \
             a crash would let it lead that term again with other entries",
            m.from, m.term, hs.term
        ));
    }
    if kind == MessageType::MsgAppend {
        let mut last_term = m.log_term;
        for (expect, e) in (m.index + 1..).zip(&m.entries) {
            if e.index != expect || e.term < last_term || e.term > m.term {
                return Err(format!(
                    "append shape: node {} sends an append after {}/{} whose entries are not a \
                     run of increasing indexes and non-decreasing terms up to {}: {:?}",
                    m.from,
                    m.index,
                    m.log_term,
                    m.term,
                    m.entries
                        .iter()
                        .map(|e| (e.index, e.term))
                        .collect::<Vec<_>>()
                ));
            }
            last_term = e.term;
        }
        if let Some(raw) = sender.raw.as_ref() {
            let log = &raw.raft.raft_log;
            for e in m
                .entries
                .iter()
                .chain(std::iter::once(&raft_core::eraftpb::Entry {
                    index: m.index,
                    term: m.log_term,
                    ..Default::default()
                }))
            {
                if let Ok(t) = log.term(e.index) {
                    if t != 0 && t != e.term && raw.raft.term == m.term {
                        return Err(format!(
                            "append shape: leader {} sends entry {}/{} but holds term {t} there",
                            m.from, e.index, e.term
                        ));
                    }
                }
            }
        }
    }
    match kind {
        MessageType::MsgRequestVoteResponse
            if !m.reject && (hs.term < m.term || (hs.term == m.term && hs.vote != m.to)) =>
        {
            return Err(format!(
                "vote durability: node {} grants its term {} vote to {} while its storage \
                     holds term {} vote {}",
                m.from, m.term, m.to, hs.term, hs.vote
            ));
        }
        MessageType::MsgRequestVote
            if hs.term < m.term || (hs.term == m.term && hs.vote != m.from) =>
        {
            return Err(format!(
                "vote durability: candidate {} asks for votes in term {} while its storage \
                     holds term {} vote {}",
                m.from, m.term, hs.term, hs.vote
            ));
        }
        MessageType::MsgAppendResponse if !m.reject => {
            let durable = durable_term(&sender.storage, m.index);
            let Some(term) = durable else {
                return Err(format!(
                    "ack durability: node {} acknowledges index {} in term {} but its storage \
                     ends at {}",
                    m.from,
                    m.index,
                    m.term,
                    sender.storage.last_index().unwrap_or(0)
                ));
            };
            if term > m.term {
                return Err(format!(
                    "ack durability: node {} acknowledges index {} in term {}, but its storage \
                     holds an entry of the later term {term} there: the entries it acknowledges \
                     were replaced before they were ever written",
                    m.from, m.index, m.term
                ));
            }
            // The leader's entry there must be the one stored.
            if let Some(leader) = nodes.get(&m.to).and_then(|n| n.raw.as_ref()) {
                let r = &leader.raft;
                if r.state == StateRole::Leader
                    && r.term == m.term
                    && m.index > r.raft_log.last_index()
                {
                    return Err(format!(
                        "ack durability: node {} acknowledges index {} to leader {} of term {}, \
                         whose log ends at {}: it claims entries the leader never sent",
                        m.from,
                        m.index,
                        m.to,
                        m.term,
                        r.raft_log.last_index()
                    ));
                }
                if r.state == StateRole::Leader && r.term == m.term && term != 0 {
                    if let Ok(lt) = r.raft_log.term(m.index) {
                        if lt != term && lt != 0 {
                            return Err(format!(
                                "ack durability: node {} acknowledges index {} to leader {} of \
                                 term {}, which holds term {lt} there; the storage holds term \
                                 {term}",
                                m.from, m.index, m.to, m.term
                            ));
                        }
                    }
                }
            }
        }
        MessageType::MsgTimeoutNow => {
            let (Some(leader), Some(target)) = (
                sender.raw.as_ref(),
                nodes.get(&m.to).and_then(|n| n.raw.as_ref()),
            ) else {
                return Ok(());
            };
            let (l, t) = (&leader.raft, &target.raft);
            if t.term > m.term {
                // The target has moved past the message's term and will ignore it; its log may
                // have moved on too, legitimately (a stale leader's queued message goes out in a
                // Ready taken after it stepped down: found by the soak, seed 302246).
                return Ok(());
            }
            let (last, last_term) = match transfers.get(&(m.from, m.to, m.term)) {
                Some(&kept) => kept,
                None => (l.raft_log.last_index(), l.raft_log.last_term()),
            };
            let target_term = t.raft_log.term(last).ok();
            if t.raft_log.last_index() < last
                || target_term.is_some_and(|x| x != last_term && x != 0)
            {
                return Err(format!(
                    "transfer: leader {} tells {} to campaign while {} holds up to {}/{} and the \
                     leader's log ends at {last}/{last_term}",
                    m.from,
                    m.to,
                    m.to,
                    t.raft_log.last_index(),
                    t.raft_log.last_term()
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Committed entries handed to the application must be durable on that node already.
pub(super) fn check_handed_out(id: u64, node: &SimNode, committed: &[Entry]) -> Result<(), String> {
    for e in committed {
        if !holds(&node.storage, e.index, e.term) {
            return Err(format!(
                "apply durability: node {id} hands out committed entry {}/{} which its storage \
                 does not hold (storage ends at {})",
                e.index,
                e.term,
                node.storage.last_index().unwrap_or(0)
            ));
        }
    }
    Ok(())
}

/// A hard state about to be written names a commit index its storage holds (after the write).
pub(super) fn check_commit_written(
    id: u64,
    storage: &MemStorage,
    commit: u64,
) -> Result<(), String> {
    let last = storage.last_index().unwrap_or(0);
    if commit > last {
        return Err(format!(
            "commit durability: node {id} writes commit index {commit} while its storage ends at \
             {last}: a restart could not even read its own commit"
        ));
    }
    Ok(())
}

/// Whether `index`/`term` is durable on a quorum of the leader's configuration `cs`: a majority of
/// the incoming voters and, in a joint configuration, of the outgoing ones too. Returns the
/// complaint if not.
pub(super) fn durable_on_quorum(
    nodes: &BTreeMap<u64, SimNode>,
    cs: &ConfState,
    index: u64,
    term: u64,
) -> Result<(), String> {
    for (half, voters) in [("incoming", &cs.voters), ("outgoing", &cs.voters_outgoing)] {
        if voters.is_empty() {
            continue;
        }
        let holders: Vec<u64> = voters
            .iter()
            .copied()
            .filter(|v| nodes.get(v).is_some_and(|n| holds(&n.storage, index, term)))
            .collect();
        if holders.len() * 2 <= voters.len() {
            return Err(format!(
                "only {holders:?} of the {half} voters {voters:?} hold it durably"
            ));
        }
    }
    Ok(())
}

/// A leader's progress never claims more of a log than is durable there: each tracked node
/// (itself included) that has not moved to a newer term holds the matched entry in storage.
pub(super) fn check_progress(
    nodes: &BTreeMap<u64, SimNode>,
    leader: &SimNode,
) -> Result<(), String> {
    let Some(raw) = leader.raw.as_ref() else {
        return Ok(());
    };
    let r = &raw.raft;
    for (id, pr) in r.prs.iter() {
        if pr.matched == 0 {
            continue;
        }
        let Some(node) = nodes.get(&id) else {
            continue;
        };
        if node.storage.rl().hard_state().term > r.term {
            continue; // a newer leader may have replaced its log since
        }
        let term = match r.raft_log.term(pr.matched) {
            Ok(term) if term != 0 => term,
            // Compacted on the leader: only the index can be checked.
            _ => 0,
        };
        if !holds(&node.storage, pr.matched, term) {
            return Err(format!(
                "progress: leader {} of term {} counts index {} (term {term}) as matched on node \
                 {id}, whose storage does not hold it (it ends at {})",
                leader.id,
                r.term,
                pr.matched,
                node.storage.last_index().unwrap_or(0)
            ));
        }
    }
    Ok(())
}
