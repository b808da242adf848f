//! What the node reports about itself: the `INFO` and `RAFT.STATUS` texts.

use std::fmt::Write as _;

use raft_core::{StateRole, Storage as _};

use super::Node;
use crate::connection::REDIS_VERSION;

/// The role as `INFO` and `RAFT.STATUS` spell it.
fn role_name(role: StateRole) -> &'static str {
    match role {
        StateRole::Follower => "follower",
        StateRole::Candidate => "candidate",
        StateRole::Leader => "leader",
        StateRole::PreCandidate => "pre-candidate",
    }
}

/// Node ids separated by commas.
fn join_ids(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

impl Node {
    /// The `INFO` text: `# Section` headers and `field:value` lines, as Redis writes it. With
    /// `sections` named (lower case), only those (`server`, `raft`, `keyspace`); none, or
    /// `default`, `all` or `everything`, gives every one.
    pub(super) fn info(&self, sections: &[String]) -> String {
        let every = sections.is_empty()
            || sections
                .iter()
                .any(|s| matches!(s.as_str(), "default" | "all" | "everything"));
        let status = self.raw.basic_status();
        let store = &self.storage;
        let conf = &self.sm.conf_state;
        let role = if self.removed {
            "removed"
        } else {
            role_name(status.soft_state.raft_state)
        };
        let members: Vec<String> = self
            .sm
            .members
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let mut out = String::new();
        let mut section = |name: &str, fields: &[(&str, String)]| {
            if !every && !sections.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                return;
            }
            let _ = write!(out, "# {name}\r\n");
            for (key, value) in fields {
                let _ = write!(out, "{key}:{value}\r\n");
            }
        };
        section(
            "Server",
            &[
                ("raftkv_version", env!("CARGO_PKG_VERSION").to_string()),
                // The Redis whose commands and replies raftkv follows, for tools that check.
                ("redis_version", REDIS_VERSION.to_string()),
                ("redis_mode", "standalone".to_string()),
                ("process_id", std::process::id().to_string()),
                ("node_id", self.cfg.id.to_string()),
                ("address", self.cfg.addr.clone()),
            ],
        );
        section(
            "Raft",
            &[
                ("role", role.to_string()),
                ("term", status.hard_state.term.to_string()),
                ("voted_for", status.hard_state.vote.to_string()),
                ("leader_id", status.soft_state.leader_id.to_string()),
                ("leader_address", self.leader_addr().unwrap_or_default()),
                ("commit_index", status.hard_state.commit.to_string()),
                ("applied_index", self.sm.applied_index.to_string()),
                ("first_index", store.first_log_index().to_string()),
                ("last_index", store.last_log_index().to_string()),
                (
                    "snapshot_index",
                    store.snapshot_metadata().index.to_string(),
                ),
                ("snapshots_made", self.snapshots_made.to_string()),
                ("snapshots_installed", self.snapshots_installed.to_string()),
                // Linearizable reads served, and the read index rounds they took.
                ("reads_served", self.reads_served.to_string()),
                ("read_rounds", self.read_rounds.to_string()),
                // Fsyncs run on the sync thread and entries written: entries per fsync.
                ("log_fsyncs", self.persistence.syncs_run.to_string()),
                (
                    "log_entries_written",
                    self.persistence.entries_written.to_string(),
                ),
                ("voters", join_ids(&conf.voters)),
                ("learners", join_ids(&conf.learners)),
                ("members", members.join(",")),
                (
                    "read_mode",
                    format!("{:?}", self.cfg.read_mode).to_lowercase(),
                ),
                (
                    "write_mode",
                    format!("{:?}", self.cfg.write_mode).to_lowercase(),
                ),
            ],
        );
        // Redis's line for database 0, left out when it is empty, as Redis does. The counts
        // are by the replicated clock (expired keys not swept yet are not counted).
        let keys = self.sm.len();
        let keyspace = (keys > 0).then(|| {
            let expires = self.sm.expiring_len();
            ("db0", format!("keys={keys},expires={expires},avg_ttl=0"))
        });
        section("Keyspace", keyspace.as_slice());
        out
    }

    /// The `RAFT.STATUS` text: the Raft state, and every member's progress on the leader.
    pub(super) fn status(&self) -> String {
        let status = self.raw.status();
        let basic = status.basic;
        let mut out = String::new();
        let _ = write!(
            out,
            "id:{}\r\nrole:{}\r\nterm:{}\r\nvote:{}\r\nleader_id:{}\r\ncommit:{}\r\napplied:{}\r\n",
            basic.id,
            role_name(basic.soft_state.raft_state),
            basic.hard_state.term,
            basic.hard_state.vote,
            basic.soft_state.leader_id,
            basic.hard_state.commit,
            basic.applied,
        );
        let _ = write!(
            out,
            "last_index:{}\r\nlead_transferee:{}\r\n",
            self.storage.last_index().unwrap_or_default(),
            basic.lead_transferee.unwrap_or_default()
        );
        for (id, pr) in &status.progress {
            let _ = write!(
                out,
                "progress_{id}:match={},next={},state={},recent_active={},learner={}\r\n",
                pr.matched, pr.next_idx, pr.state, pr.recent_active as u8, pr.is_learner as u8
            );
        }
        out
    }
}
