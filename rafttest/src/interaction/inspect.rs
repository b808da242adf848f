//! Looking at nodes without changing them: `raft-state`, `raft-log`, `status`.

use super::{take_one_id, CmdResult, Command, InteractionEnv, Node};
use raft_core::NO_LIMIT;
use raft_proto::describe_entry;

/// How the node is a member of its own view of the configuration.
fn membership(node: &Node) -> &'static str {
    let conf = node.raw.raft.prs.conf_state();
    let id = node.raw.raft.id;
    if conf.voters.contains(&id) || conf.voters_outgoing.contains(&id) {
        "Voter"
    } else if conf.learners.contains(&id) || conf.learners_next.contains(&id) {
        "Learner"
    } else {
        "not a member"
    }
}

impl InteractionEnv {
    /// `raft-state`: one line per node, as that node sees itself.
    pub(super) fn raft_state(&mut self) -> CmdResult {
        for (id, node) in &self.nodes {
            let raft = &node.raw.raft;
            self.out.line(&format!(
                "{id}: {:?} ({}) Term:{} Vote:{} Lead:{} Commit:{} Applied:{} Last:{}",
                raft.state,
                membership(node),
                raft.term,
                raft.vote,
                raft.leader_id,
                raft.raft_log.committed,
                raft.raft_log.applied,
                raft.raft_log.last_index()
            ));
        }
        Ok(())
    }

    /// `raft-log ID`: the node's log as it sees it (persisted and not yet persisted entries).
    pub(super) fn raft_log(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let log = &self.node_mut(id)?.raw.raft.raft_log;
        let (first, last) = (log.first_index(), log.last_index());
        let header = format!(
            "first:{first} last:{last} commit:{} applied:{}",
            log.committed, log.applied
        );
        let entries = if first <= last {
            log.slice(first, last + 1, NO_LIMIT)
                .map_err(|e| format!("node {id}: reading its log: {e}"))?
        } else {
            Vec::new()
        };
        self.out.line(&header);
        for e in &entries {
            self.out.line(&describe_entry(e));
        }
        Ok(())
    }

    /// `status ID`: the node's basic status and, on a leader, each member's progress.
    pub(super) fn status(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let status = self.node_mut(id)?.raw.status();
        let basic = &status.basic;
        let mut header = format!(
            "{id}: {:?} Term:{} Vote:{} Commit:{} Applied:{} Lead:{}",
            basic.soft_state.raft_state,
            basic.hard_state.term,
            basic.hard_state.vote,
            basic.hard_state.commit,
            basic.applied,
            basic.soft_state.leader_id
        );
        if let Some(transferee) = basic.lead_transferee {
            header.push_str(&format!(" Transferee:{transferee}"));
        }
        self.out.line(&header);
        let mut progress = status.progress;
        progress.sort_by_key(|(id, _)| *id);
        for (peer, pr) in progress {
            let mut line = format!(
                "  {peer}: {} match={} next={}",
                pr.state, pr.matched, pr.next_idx
            );
            if pr.is_learner {
                line.push_str(" learner");
            }
            if pr.probe_sent {
                line.push_str(" paused");
            }
            if pr.pending_snapshot != 0 {
                line.push_str(&format!(" pending-snapshot={}", pr.pending_snapshot));
            }
            if pr.ins.count() != 0 {
                line.push_str(&format!(" inflight={}", pr.ins.count()));
                if pr.ins.full() {
                    line.push_str("[full]");
                }
            }
            self.out.line(&line);
        }
        Ok(())
    }
}
