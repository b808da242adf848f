//! `add-nodes`: creating nodes, each over a fresh `MemStorage`.

use super::{opt_arg, opt_args, take_one_id, CmdResult, Command, InteractionEnv, Node};
use raft_core::eraftpb::{ConfState, Message, Snapshot, SnapshotMetadata};
use raft_core::{Config, RawNode, ReadOnlyOption, NO_LIMIT};
use raft_proto::describe_conf_state;
use raft_proto::prost::Message as _;
use storage_mem::MemStorage;

/// The election timeout of a node unless `election-tick` says otherwise.
const ELECTION_TICK: usize = 3;
/// The heartbeat interval of a node unless `heartbeat-tick` says otherwise.
const HEARTBEAT_TICK: usize = 1;

impl InteractionEnv {
    /// `add-nodes N [voters=(..)] [learners=(..)] [index=I] [options]`.
    pub(super) fn add_nodes(&mut self, cmd: &mut Command) -> CmdResult {
        let count = take_one_id(cmd)?;
        let voters: Option<Vec<u64>> = opt_args(cmd, "voters")?;
        let learners: Option<Vec<u64>> = opt_args(cmd, "learners")?;
        let index: Option<u64> = opt_arg(cmd, "index")?;
        let (config, options) = take_config(cmd)?;
        let conf_state = ConfState {
            voters: voters.unwrap_or_default(),
            learners: learners.unwrap_or_default(),
            ..Default::default()
        };
        let first = self.nodes.keys().next_back().map_or(1, |last| last + 1);
        for id in first..first + count {
            let config = Config {
                id,
                applied: index.unwrap_or(0),
                ..config.clone()
            };
            let storage = new_storage(&conf_state, index)?;
            let raw = RawNode::new(&config, storage.clone(), &self.logger)
                .map_err(|e| format!("node {id}: {e}"))?;
            let log = &raw.raft.raft_log;
            let mut line = format!(
                "{id}: new node Term:{} Commit:{} Applied:{} First:{} Last:{} {}",
                raw.raft.term,
                log.committed,
                log.applied,
                log.first_index(),
                log.last_index(),
                describe_conf_state(&conf_state)
            );
            if !options.is_empty() {
                line.push_str(&format!(" [{}]", options.join(" ")));
            }
            self.out.line(&line);
            let start = index.unwrap_or(0);
            self.nodes.insert(
                id,
                Node {
                    raw,
                    storage,
                    config,
                    applied: Vec::new(),
                    applied_index: start,
                    conf_history: vec![(start, conf_state.clone())],
                },
            );
        }
        Ok(())
    }
}

/// The storage of a new node: the membership alone, or a snapshot at `index` (term 1) carrying it
/// and an empty state machine.
fn new_storage(conf_state: &ConfState, index: Option<u64>) -> Result<MemStorage, String> {
    let Some(index) = index else {
        return Ok(MemStorage::new_with_conf_state(conf_state.clone()));
    };
    let storage = MemStorage::new();
    let snapshot = Snapshot {
        data: Message::default().encode_to_vec().into(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state.clone()),
            index,
            term: 1,
        }),
    };
    storage
        .wl()
        .apply_snapshot(snapshot)
        .map_err(|e| format!("index={index}: {e}"))?;
    Ok(storage)
}

/// The node configuration from the options of `add-nodes`, and the options given (for the output).
///
/// The election timeout is pinned to exactly `election-tick` (no randomisation), so
/// `tick-election` makes a follower campaign every time.
fn take_config(cmd: &mut Command) -> Result<(Config, Vec<String>), String> {
    let mut options = Vec::new();
    let mut config = Config {
        election_tick: ELECTION_TICK,
        heartbeat_tick: HEARTBEAT_TICK,
        max_size_per_msg: NO_LIMIT,
        ..Default::default()
    };
    let mut note = |name: &str, value: &dyn std::fmt::Display| {
        options.push(format!("{name}={value}"));
    };
    if let Some(v) = opt_arg::<usize>(cmd, "election-tick")? {
        config.election_tick = v;
        note("election-tick", &v);
    }
    if let Some(v) = opt_arg::<usize>(cmd, "heartbeat-tick")? {
        config.heartbeat_tick = v;
        note("heartbeat-tick", &v);
    }
    config.min_election_tick = config.election_tick;
    config.max_election_tick = config.election_tick + 1;
    if let Some(v) = opt_arg::<bool>(cmd, "pre-vote")? {
        config.pre_vote = v;
        note("pre-vote", &v);
    }
    if let Some(v) = opt_arg::<bool>(cmd, "check-quorum")? {
        config.check_quorum = v;
        note("check-quorum", &v);
    }
    if let Some(v) = opt_arg::<String>(cmd, "read-only")? {
        config.read_only_option = match v.as_str() {
            "safe" => ReadOnlyOption::Safe,
            "lease" => ReadOnlyOption::LeaseBased,
            other => return Err(format!("read-only={other}: expected safe or lease")),
        };
        note("read-only", &v);
    }
    if let Some(v) = opt_arg::<bool>(cmd, "step-down-on-removal")? {
        config.step_down_on_removal = v;
        note("step-down-on-removal", &v);
    }
    if let Some(v) = opt_arg::<usize>(cmd, "max-inflight")? {
        config.max_inflight_msgs = v;
        note("max-inflight", &v);
    }
    if let Some(v) = opt_arg::<u64>(cmd, "max-inflight-bytes")? {
        config.max_inflight_bytes = v;
        note("max-inflight-bytes", &v);
    }
    if let Some(v) = opt_arg::<u64>(cmd, "max-size-per-msg")? {
        config.max_size_per_msg = v;
        note("max-size-per-msg", &v);
    }
    // The id is set per node later; any valid one will do for checking the options.
    Config {
        id: 1,
        ..config.clone()
    }
    .validate()
    .map_err(|e| format!("add-nodes options: {e}"))?;
    Ok((config, options))
}
