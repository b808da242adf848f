//! Membership changes: the [`Changer`], which computes the configuration that a conf change leads
//! to and refuses every change that would break a safety rule, and [`restore`], which rebuilds a
//! configuration from a snapshot's `ConfState`.
//!
//! A configuration moves in one of two ways (thesis §4.1 and §4.3):
//! - a *simple* change alters at most one voter, so any majority of the old voters overlaps any
//!   majority of the new ones and the change can take effect at once;
//! - a *joint* change first enters a joint configuration, in which both the outgoing and the
//!   incoming voters must agree on every decision, and later leaves it for the incoming voters alone.
//!
//! The rules follow etcd-io/raft's `confchange` package: a node is never both voter and learner;
//! a voter of the outgoing half that is demoted to learner waits in `learners_next` until the joint
//! configuration is left; changes naming node 0 are ignored (applications use that to cancel a
//! change downstream of Raft); repeating a change is harmless.

use crate::error::{Error, Result};
use crate::quorum::MajorityConfig;
use crate::tracker::Configuration;
use raft_proto::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};

#[cfg(test)]
mod tests;

fn refuse<T>(reason: impl Into<String>) -> Result<T> {
    Err(Error::ConfChange(reason.into()))
}

/// Computes configurations that result from membership changes, starting from a base
/// configuration. Pure: it never modifies the base, it returns the new configuration.
#[derive(Debug, Clone)]
pub struct Changer<'a> {
    base: &'a Configuration,
}

impl<'a> Changer<'a> {
    /// A changer starting from `base`.
    pub fn new(base: &'a Configuration) -> Changer<'a> {
        Changer { base }
    }

    /// Applies `cc` as the core does when its entry is applied: an empty v2 change leaves a joint
    /// configuration, a change that needs joint consensus (several voters, or an explicit or
    /// implicit transition) enters one, anything else is a simple change.
    pub fn apply(&self, cc: &ConfChangeV2) -> Result<Configuration> {
        if cc.leave_joint() {
            self.leave_joint()
        } else if let Some(auto_leave) = cc.enter_joint() {
            self.enter_joint(auto_leave, &cc.changes)
        } else {
            self.simple(&cc.changes)
        }
    }

    /// Enters a joint configuration: the current voters become the outgoing half, `changes` are
    /// applied to the incoming half. With `auto_leave` the leader leaves the joint configuration by
    /// itself once it is applied; otherwise the application proposes the leave explicitly.
    pub fn enter_joint(
        &self,
        auto_leave: bool,
        changes: &[ConfChangeSingle],
    ) -> Result<Configuration> {
        let mut cfg = self.base.clone();
        if cfg.voters.is_joint() {
            return refuse("the configuration is already joint");
        }
        if cfg.voters.incoming.is_empty() {
            // A joint configuration with an empty outgoing half would look like a plain one.
            return refuse("a configuration without voters cannot become joint");
        }
        cfg.voters.outgoing = cfg.voters.incoming.clone();
        apply_changes(&mut cfg, changes)?;
        cfg.auto_leave = auto_leave;
        check(&cfg)?;
        Ok(cfg)
    }

    /// Leaves a joint configuration: the outgoing half is dropped, voters waiting in
    /// `learners_next` become learners, and outgoing voters that are in no other set leave.
    pub fn leave_joint(&self) -> Result<Configuration> {
        let mut cfg = self.base.clone();
        if !cfg.voters.is_joint() {
            return refuse("the configuration is not joint, so it cannot be left");
        }
        for id in std::mem::take(&mut cfg.learners_next) {
            insert_sorted(&mut cfg.learners, id);
        }
        cfg.voters.outgoing = MajorityConfig::default();
        cfg.auto_leave = false;
        check(&cfg)?;
        Ok(cfg)
    }

    /// Applies `changes` directly, without a joint configuration. Refused when the configuration
    /// is joint or when more than one voter would be added or removed: only a single-voter change
    /// keeps every old majority overlapping every new one.
    pub fn simple(&self, changes: &[ConfChangeSingle]) -> Result<Configuration> {
        let mut cfg = self.base.clone();
        if cfg.voters.is_joint() {
            return refuse("a simple change cannot be applied to a joint configuration");
        }
        apply_changes(&mut cfg, changes)?;
        let (before, after) = (self.base.voters.incoming.ids(), cfg.voters.incoming.ids());
        let changed = before.iter().filter(|id| !after.contains(id)).count()
            + after.iter().filter(|id| !before.contains(id)).count();
        if changed > 1 {
            return refuse("more than one voter changed without entering a joint configuration");
        }
        check(&cfg)?;
        Ok(cfg)
    }
}

/// Whether `id` belongs to the configuration in any role.
fn is_member(cfg: &Configuration, id: u64) -> bool {
    cfg.voters.contains(id) || cfg.learners.contains(&id) || cfg.learners_next.contains(&id)
}

fn insert_sorted(ids: &mut Vec<u64>, id: u64) {
    if let Err(pos) = ids.binary_search(&id) {
        ids.insert(pos, id);
    }
}

fn remove_sorted(ids: &mut Vec<u64>, id: u64) {
    if let Ok(pos) = ids.binary_search(&id) {
        ids.remove(pos);
    }
}

/// Applies each change to the incoming half (and the learner sets), in order.
fn apply_changes(cfg: &mut Configuration, changes: &[ConfChangeSingle]) -> Result<()> {
    for cc in changes {
        if cc.node_id == 0 {
            // Node 0 does not exist: applications zero a change's id to cancel it.
            continue;
        }
        let Ok(change_type) = ConfChangeType::try_from(cc.change_type) else {
            return refuse(format!("unknown change type value {}", cc.change_type));
        };
        match change_type {
            ConfChangeType::AddNode => make_voter(cfg, cc.node_id),
            ConfChangeType::AddLearnerNode => make_learner(cfg, cc.node_id),
            ConfChangeType::RemoveNode => remove(cfg, cc.node_id),
        }
    }
    if cfg.voters.incoming.is_empty() {
        return refuse("the change removes every voter");
    }
    Ok(())
}

fn make_voter(cfg: &mut Configuration, id: u64) {
    remove_sorted(&mut cfg.learners, id);
    remove_sorted(&mut cfg.learners_next, id);
    cfg.voters.incoming.insert(id);
}

fn make_learner(cfg: &mut Configuration, id: u64) {
    if cfg.learners.contains(&id) {
        return;
    }
    cfg.voters.incoming.remove(id);
    remove_sorted(&mut cfg.learners_next, id);
    if cfg.voters.outgoing.contains(id) {
        // Still a voter of the outgoing half: it becomes a learner only when the joint
        // configuration is left, or a node would be voter and learner at once.
        insert_sorted(&mut cfg.learners_next, id);
    } else {
        insert_sorted(&mut cfg.learners, id);
    }
}

fn remove(cfg: &mut Configuration, id: u64) {
    if !is_member(cfg, id) {
        return;
    }
    cfg.voters.incoming.remove(id);
    remove_sorted(&mut cfg.learners, id);
    remove_sorted(&mut cfg.learners_next, id);
}

/// Checks the invariants every configuration must keep.
fn check(cfg: &Configuration) -> Result<()> {
    for id in &cfg.learners {
        if cfg.voters.contains(*id) {
            return refuse(format!("node {id} would be both learner and voter"));
        }
    }
    for id in &cfg.learners_next {
        if !cfg.voters.outgoing.contains(*id) {
            return refuse(format!(
                "node {id} waits in learners_next but is not an outgoing voter"
            ));
        }
        if cfg.voters.incoming.contains(*id) || cfg.learners.contains(id) {
            return refuse(format!(
                "node {id} waits in learners_next but is already an incoming voter or a learner"
            ));
        }
    }
    if !cfg.voters.is_joint() {
        if !cfg.learners_next.is_empty() {
            return refuse("learners_next must be empty outside a joint configuration");
        }
        if cfg.auto_leave {
            return refuse("auto_leave must be off outside a joint configuration");
        }
    }
    Ok(())
}

/// Rebuilds the configuration a `ConfState` describes (from a snapshot or from storage at start),
/// by replaying it as a sequence of changes from the empty configuration, so that a `ConfState` no
/// sequence of valid changes could produce is refused.
///
/// The outgoing voters are added first, one simple change each; if the state is joint, a joint
/// change then removes them again from the incoming half and adds the incoming voters, the
/// learners and the learners waiting for the leave. An empty `ConfState` gives the empty
/// configuration (a node that waits to be added to a group).
pub fn restore(cs: &ConfState) -> Result<Configuration> {
    let all_ids = || {
        cs.voters
            .iter()
            .chain(&cs.voters_outgoing)
            .chain(&cs.learners)
            .chain(&cs.learners_next)
    };
    if all_ids().any(|id| *id == 0) {
        return refuse("a ConfState names node 0");
    }
    if cs.voters.is_empty() && cs.voters_outgoing.is_empty() {
        if all_ids().next().is_some() {
            return refuse("a ConfState has learners but no voters");
        }
        return Ok(Configuration::default());
    }
    let single = |change_type: ConfChangeType, node_id: &u64| ConfChangeSingle {
        change_type: change_type as i32,
        node_id: *node_id,
    };
    let add_voters = cs
        .voters
        .iter()
        .map(|id| single(ConfChangeType::AddNode, id));
    let mut cfg = Configuration::default();
    if cs.voters_outgoing.is_empty() {
        if !cs.learners_next.is_empty() || cs.auto_leave {
            return refuse("a ConfState that is not joint has learners_next or auto_leave set");
        }
        // The common case (every node start): voters and learners that do not overlap replay into
        // exactly these sets, so build them directly rather than one change at a time.
        let voters = MajorityConfig::new(cs.voters.iter().copied());
        if !cs.learners.iter().any(|id| voters.contains(*id)) {
            let mut learners = cs.learners.clone();
            learners.sort_unstable();
            learners.dedup();
            cfg.voters.incoming = voters;
            cfg.learners = learners;
            return Ok(cfg);
        }
        let add_learners = cs
            .learners
            .iter()
            .map(|id| single(ConfChangeType::AddLearnerNode, id));
        for cc in add_voters.chain(add_learners) {
            cfg = Changer::new(&cfg).simple(&[cc])?;
        }
        return same_as(cfg, cs);
    }
    for id in &cs.voters_outgoing {
        cfg = Changer::new(&cfg).simple(&[single(ConfChangeType::AddNode, id)])?;
    }
    let incoming: Vec<ConfChangeSingle> = cs
        .voters_outgoing
        .iter()
        .map(|id| single(ConfChangeType::RemoveNode, id))
        .chain(add_voters)
        .chain(
            cs.learners
                .iter()
                .chain(&cs.learners_next)
                .map(|id| single(ConfChangeType::AddLearnerNode, id)),
        )
        .collect();
    let cfg = Changer::new(&cfg).enter_joint(cs.auto_leave, &incoming)?;
    same_as(cfg, cs)
}

/// `cfg` if it describes exactly `cs` (a `ConfState` that lists a node in two roles replays into a
/// configuration where the later role won: refused rather than silently reinterpreted).
fn same_as(cfg: Configuration, cs: &ConfState) -> Result<Configuration> {
    let sorted = |ids: &[u64]| {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let wanted = ConfState {
        voters: sorted(&cs.voters),
        learners: sorted(&cs.learners),
        voters_outgoing: sorted(&cs.voters_outgoing),
        learners_next: sorted(&cs.learners_next),
        auto_leave: cs.auto_leave,
    };
    if cfg.to_conf_state() != wanted {
        return refuse("a ConfState lists a node in two roles that cannot be held together");
    }
    Ok(cfg)
}

/// The membership of a brand-new group: `voters` (at least one) and `learners`, checked like any
/// configuration (no node 0, no node both voter and learner). Put the result into every initial
/// member's storage (as `RaftState::conf_state`) before creating its node; a node that joins later
/// starts from the same bootstrap membership, or from a snapshot, and learns the rest from the log.
///
/// This is for the first start only. On a restart the node uses the membership found in storage,
/// which the application keeps up to date with what `apply_conf_change` returned (and with the
/// `ConfState` of any snapshot it applied): bootstrapping again would lose membership changes.
pub fn bootstrap(
    voters: impl IntoIterator<Item = u64>,
    learners: impl IntoIterator<Item = u64>,
) -> Result<ConfState> {
    let cs = ConfState {
        voters: voters.into_iter().collect(),
        learners: learners.into_iter().collect(),
        ..Default::default()
    };
    if cs.voters.is_empty() {
        return refuse("a new group needs at least one voter");
    }
    Ok(restore(&cs)?.to_conf_state())
}
