//! Calls an application makes on one node: campaign, proposals, reads, leadership transfer,
//! reports, and the passing of time.

use super::{opt_arg, payload_arg, req_arg, take_one_id, CmdResult, Command, InteractionEnv};
use raft_core::eraftpb::{ConfChange, ConfChangeTransition, ConfChangeV2};
use raft_core::SnapshotStatus;
use raft_proto::conf_changes_from_string;

impl InteractionEnv {
    /// Writes `error: <e>` when a call on the node failed.
    fn report<E: std::fmt::Display>(&mut self, result: Result<(), E>) {
        if let Err(e) = result {
            self.out.error(&format!("error: {e}"));
        }
    }

    /// `campaign ID`.
    pub(super) fn campaign(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let result = self.node_mut(id)?.raw.campaign();
        self.report(result);
        Ok(())
    }

    /// `propose ID data=X`.
    pub(super) fn propose(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let data = payload_arg(cmd, "data")?;
        let result = self.node_mut(id)?.raw.propose(Vec::new(), data);
        self.report(result);
        Ok(())
    }

    /// `propose-conf-change ID [v1=true] [transition=..]` with the changes as input.
    pub(super) fn propose_conf_change(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let v1 = opt_arg::<bool>(cmd, "v1")?.unwrap_or(false);
        let transition = match opt_arg::<String>(cmd, "transition")?.as_deref() {
            None | Some("auto") => ConfChangeTransition::Auto,
            Some("implicit") => ConfChangeTransition::Implicit,
            Some("explicit") => ConfChangeTransition::Explicit,
            Some(other) => {
                return Err(format!(
                    "transition={other}: expected auto, implicit or explicit"
                ))
            }
        };
        let changes = conf_changes_from_string(&cmd.input)?;
        let node = self.node_mut(id)?;
        let result = if v1 {
            let [change] = changes.as_slice() else {
                return Err(format!(
                    "v1=true takes exactly one change, got {}",
                    changes.len()
                ));
            };
            if transition != ConfChangeTransition::Auto {
                return Err("v1=true has no transition".to_string());
            }
            let cc = ConfChange {
                change_type: change.change_type,
                node_id: change.node_id,
                ..Default::default()
            };
            node.raw.propose_conf_change(Vec::new(), cc)
        } else {
            let cc = ConfChangeV2 {
                transition: transition as i32,
                changes,
                ..Default::default()
            };
            node.raw.propose_conf_change(Vec::new(), cc)
        };
        self.report(result);
        Ok(())
    }

    /// `read-index ID ctx=X`.
    pub(super) fn read_index(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let ctx = payload_arg(cmd, "ctx")?;
        let result = self.node_mut(id)?.raw.read_index(ctx);
        self.report(result);
        Ok(())
    }

    /// `transfer-leader ID to=T`: the call is made on node `ID` (a follower forwards it).
    pub(super) fn transfer_leader(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let to: u64 = req_arg(cmd, "to")?;
        self.node_mut(id)?.raw.transfer_leader(to);
        Ok(())
    }

    /// `forget-leader ID`: prints `refused` when the node keeps its leader.
    pub(super) fn forget_leader(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        if !self.node_mut(id)?.raw.forget_leader() {
            self.out.line("refused");
        }
        Ok(())
    }

    /// `request-snapshot ID`.
    pub(super) fn request_snapshot(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let result = self.node_mut(id)?.raw.request_snapshot();
        self.report(result);
        Ok(())
    }

    /// `report-unreachable ID peer=T`.
    pub(super) fn report_unreachable(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let peer: u64 = req_arg(cmd, "peer")?;
        self.node_mut(id)?.raw.report_unreachable(peer);
        Ok(())
    }

    /// `report-snapshot ID peer=T [status=finish|failure]`.
    pub(super) fn report_snapshot(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let peer: u64 = req_arg(cmd, "peer")?;
        let status = match opt_arg::<String>(cmd, "status")?.as_deref() {
            None | Some("finish") => SnapshotStatus::Finish,
            Some("failure") => SnapshotStatus::Failure,
            Some(other) => return Err(format!("status={other}: expected finish or failure")),
        };
        self.node_mut(id)?.raw.report_snapshot(peer, status);
        Ok(())
    }

    /// `tick ID [n=K]`.
    pub(super) fn tick(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let n: usize = opt_arg(cmd, "n")?.unwrap_or(1);
        self.tick_n(id, n)
    }

    /// `tick-election ID`: as many ticks as the node's election timeout.
    pub(super) fn tick_election(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let n = self.node_mut(id)?.config.election_tick;
        self.tick_n(id, n)
    }

    /// `tick-heartbeat ID`: as many ticks as the node's heartbeat interval.
    pub(super) fn tick_heartbeat(&mut self, cmd: &mut Command) -> CmdResult {
        let id = take_one_id(cmd)?;
        let n = self.node_mut(id)?.config.heartbeat_tick;
        self.tick_n(id, n)
    }

    fn tick_n(&mut self, id: u64, n: usize) -> CmdResult {
        let node = self.node_mut(id)?;
        for _ in 0..n {
            node.raw.tick();
        }
        Ok(())
    }
}
