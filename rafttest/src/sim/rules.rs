//! Rules checked where they are decided, on the node that decides them:
//!
//! - a vote or pre-vote is granted only to a candidate whose log is at least as up to date as the
//!   voter's (§5.4.1; thesis §9.6 for pre-votes);
//! - a pre-vote request never changes the voter's term (thesis §9.6);
//! - a leader appends a membership change only once every earlier one in its log is applied
//!   (thesis §4.1: one change at a time);
//! - a leader transferring leadership appends nothing (thesis §3.10);
//! - a follower accepting an append moves its commit index at most to the smaller of the
//!   leader's commit index and the append's last new entry (Figure 2, AppendEntries rule 5).

use super::node::SimNode;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::raft::decode_conf_change;
use raft_core::StateRole;
use std::collections::BTreeMap;

/// How many grants of `m`'s vote (or pre-vote) to its candidate `node` has waiting to be sent.
pub(super) fn grants(node: &SimNode, m: &Message) -> usize {
    let Some(raw) = node.raw.as_ref() else {
        return 0;
    };
    let response = match m.msg_type() {
        MessageType::MsgRequestVote => MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVote => MessageType::MsgRequestPreVoteResponse,
        _ => return 0,
    };
    let r = &raw.raft;
    r.msgs
        .iter()
        .chain(&r.msgs_after_append)
        .filter(|out| {
            out.msg_type() == response && out.to == m.from && out.term == m.term && !out.reject
        })
        .count()
}

/// Checks what stepping a vote or pre-vote request `m` (its header) did on `node`; `term_before`
/// is the voter's term and `grants_before` its [`grants`] before the step.
pub(super) fn vote_request_handled(
    node: &SimNode,
    m: &Message,
    term_before: u64,
    grants_before: usize,
) -> Result<(), String> {
    let Some(raw) = node.raw.as_ref() else {
        return Ok(());
    };
    let r = &raw.raft;
    match m.msg_type() {
        MessageType::MsgRequestVote => {}
        MessageType::MsgRequestPreVote if r.term != term_before => {
            return Err(format!(
                "pre-vote: node {} moved from term {term_before} to {} on node {}'s pre-vote \
                 request (a pre-vote changes no term)",
                node.id, r.term, m.from
            ));
        }
        MessageType::MsgRequestPreVote => {}
        _ => return Ok(()),
    }
    let response = if m.msg_type() == MessageType::MsgRequestVote {
        MessageType::MsgRequestVoteResponse
    } else {
        MessageType::MsgRequestPreVoteResponse
    };
    if let Some(bad) = r.msgs.iter().chain(&r.msgs_after_append).find(|out| {
        out.msg_type() == response && out.to == m.from && out.reject && out.term > r.term
    }) {
        return Err(format!(
            "term handling: node {} (term {}) rejects {}'s request with term {}: a rejection \
             carries the voter's own term, or the candidate adopts a term nobody is in",
            node.id, r.term, m.from, bad.term
        ));
    }
    if grants(node, m) <= grants_before {
        return Ok(());
    }
    let mine = (r.raft_log.last_term(), r.raft_log.last_index());
    if (m.log_term, m.index) < mine {
        return Err(format!(
            "up-to-date check: node {} grants a {:?} to {} whose log ends at {}/{}, behind its own \
             {}/{} (§5.4.1)",
            node.id,
            m.msg_type(),
            m.from,
            m.index,
            m.log_term,
            mine.1,
            mine.0
        ));
    }
    Ok(())
}

/// Checks the commit index of `node` after it accepted the append `m` (its header):
/// `commit_before` is its commit index before, `last_new` the index of the append's last entry.
pub(super) fn append_handled(
    node: &SimNode,
    m: &Message,
    commit_before: u64,
    last_new: u64,
) -> Result<(), String> {
    let Some(raw) = node.raw.as_ref() else {
        return Ok(());
    };
    let commit = raw.raft.raft_log.committed;
    let allowed = m.commit.min(last_new);
    if commit > commit_before && commit > allowed {
        return Err(format!(
            "follower commit rule: node {} moved its commit index from {commit_before} to {commit} \
             on an append from {} whose last new entry is {last_new} and whose commit is {} (at \
             most {allowed}, Figure 2)",
            node.id, m.from, m.commit
        ));
    }
    Ok(())
}

/// What a leader looked like at the last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeaderMark {
    term: u64,
    last: u64,
    transferee: Option<u64>,
}

/// After an event: checks what each leader appended since the last check.
pub(super) fn check_appends(
    nodes: &BTreeMap<u64, SimNode>,
    marks: &mut BTreeMap<u64, LeaderMark>,
) -> Result<(), String> {
    for (id, node) in nodes {
        let Some(r) = node.raw.as_ref().map(|raw| &raw.raft) else {
            marks.remove(id);
            continue;
        };
        if r.state != StateRole::Leader {
            marks.remove(id);
            continue;
        }
        if node.config.step_down_on_removal && !r.prs.conf().voters.contains(*id) {
            return Err(format!(
                "membership: node {id} still leads term {} though it is no voter of its \
                 configuration {:?} (step_down_on_removal)",
                r.term,
                r.prs.conf().voters.ids()
            ));
        }
        let log = &r.raft_log;
        let now = LeaderMark {
            term: r.term,
            last: log.last_index(),
            transferee: r.lead_transferee,
        };
        let Some(before) = marks.insert(*id, now).filter(|b| b.term == now.term) else {
            continue;
        };
        if now.last <= before.last {
            continue;
        }
        if before.transferee.is_some() && before.transferee == now.transferee {
            return Err(format!(
                "transfer: leader {id} appended {}..={} while transferring leadership to {:?}",
                before.last + 1,
                now.last,
                now.transferee
            ));
        }
        let Ok(appended) = log.slice(before.last + 1, now.last + 1, u64::MAX) else {
            continue;
        };
        let Some(cc) = appended
            .iter()
            .find(|e| decode_conf_change(e).is_some())
            .map(|e| e.index)
        else {
            continue;
        };
        // Every membership change before it must be applied (the leader's own applied index).
        let applied = node.sm.applied_index.max(log.first_index() - 1);
        if applied + 1 >= cc {
            continue;
        }
        let Ok(earlier) = log.slice(applied + 1, cc, u64::MAX) else {
            continue;
        };
        if let Some(e) = earlier.iter().find(|e| decode_conf_change(e).is_some()) {
            return Err(format!(
                "one change at a time: leader {id} appended a membership change at {cc} while the \
                 one at {} is not applied (applied index {applied})",
                e.index
            ));
        }
    }
    Ok(())
}
