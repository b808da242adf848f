//! Helpers of the membership tests: building conf changes and `ConfState`s, running a group with a
//! leader, comparing what every node applied, and a message pump that can drop messages by content.

use std::collections::VecDeque;

use raft_core::eraftpb::{
    ConfChange, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType,
    Message, MessageType,
};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, Result, StateRole, NO_LIMIT};
use raft_proto::{conf_changes_from_string, ConfChangeI};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::conf_state;

/// A group of voters `1..=n` with the network's default config, in which node 1 won the election
/// and its empty entry (index 1) is committed and applied everywhere.
pub(crate) fn elected(n: u64) -> Network {
    elected_with(n, default_config)
}

/// Like [`elected`], configuring each node with `config(id)`.
pub(crate) fn elected_with(n: u64, config: impl Fn(u64) -> Config) -> Network {
    let mut net = Network::with_config(n, config);
    net.campaign(1);
    assert_eq!(net.leader(), Some(1), "node 1 should have won the election");
    for id in 1..=n {
        assert_eq!(
            net.node(id).applied_index,
            1,
            "node {id} did not apply the leader's empty entry"
        );
    }
    net
}

/// The bootstrap membership of a group of voters `1..=n`.
pub(crate) fn bootstrap(n: u64) -> ConfState {
    conf_state(1..=n, [])
}

/// Starts node `id` as a non-member that will catch up from the leader, with the default config.
pub(crate) fn join(net: &mut Network, id: u64, group_size: u64) {
    join_with(net, &default_config(id), group_size);
}

/// Starts node `config.id` as a non-member of a group bootstrapped with voters `1..=group_size`.
pub(crate) fn join_with(net: &mut Network, config: &Config, group_size: u64) {
    net.add_node(config, bootstrap(group_size));
}

/// A plain `ConfState` with `voters` and `learners`.
pub(crate) fn cs(voters: &[u64], learners: &[u64]) -> ConfState {
    conf_state(voters.to_vec(), learners.to_vec())
}

/// A joint `ConfState`: `incoming` and `outgoing` voters, no learners.
pub(crate) fn joint(incoming: &[u64], outgoing: &[u64], auto_leave: bool) -> ConfState {
    ConfState {
        voters: incoming.to_vec(),
        voters_outgoing: outgoing.to_vec(),
        auto_leave,
        ..Default::default()
    }
}

/// A v2 change with `transition` and the changes in compact text form (`"r3 v4 l5"`).
pub(crate) fn v2(transition: ConfChangeTransition, changes: &str) -> ConfChangeV2 {
    ConfChangeV2 {
        transition: transition as i32,
        changes: conf_changes_from_string(changes).expect("valid change text"),
        ..Default::default()
    }
}

/// A v2 change with the `Auto` transition (simple for one change, joint with auto-leave for more).
pub(crate) fn auto(changes: &str) -> ConfChangeV2 {
    v2(ConfChangeTransition::Auto, changes)
}

/// The v2 change that leaves a joint configuration (the empty `ConfChangeV2`).
pub(crate) fn leave() -> ConfChangeV2 {
    ConfChangeV2::default()
}

/// A v1 change of `change_type` for `node_id`.
pub(crate) fn v1(change_type: ConfChangeType, node_id: u64) -> ConfChange {
    ConfChange {
        change_type: change_type as i32,
        node_id,
        ..Default::default()
    }
}

/// Proposes `cc` at node `at` and runs the network to quiescence; returns the proposal's result.
pub(crate) fn propose_cc(net: &mut Network, at: u64, cc: impl ConfChangeI) -> Result<()> {
    let result = net.node_mut(at).raw.propose_conf_change(vec![], cc);
    net.stabilize();
    result
}

/// Like [`propose_cc`], failing the test if the proposal is refused.
pub(crate) fn change(net: &mut Network, at: u64, cc: impl ConfChangeI) {
    let text = raft_proto::conf_changes_to_string(&cc.as_v2().changes);
    if let Err(e) = propose_cc(net, at, cc) {
        panic!("conf change [{text}] proposed at node {at} was refused: {e}");
    }
}

/// Proposes `data` at node `at` and runs to quiescence, failing the test if it is refused.
pub(crate) fn put(net: &mut Network, at: u64, data: &[u8]) {
    if let Err(e) = net.propose(at, data) {
        panic!(
            "proposal {:?} at node {at} was refused: {e}",
            String::from_utf8_lossy(data)
        );
    }
}

/// Node `id`'s last log index.
pub(crate) fn last_index(net: &Network, id: u64) -> u64 {
    net.node(id).raw.raft.raft_log.last_index()
}

/// Node `id`'s commit index.
pub(crate) fn committed(net: &Network, id: u64) -> u64 {
    net.node(id).raw.raft.raft_log.committed
}

/// Every entry of node `id`'s log.
pub(crate) fn log_of(net: &Network, id: u64) -> Vec<Entry> {
    let log = &net.node(id).raw.raft.raft_log;
    log.slice(log.first_index(), log.last_index() + 1, NO_LIMIT)
        .expect("the whole log is readable")
}

/// The indexes of the conf change entries in node `id`'s log, with their entry types.
pub(crate) fn conf_entries(net: &Network, id: u64) -> Vec<(u64, EntryType)> {
    log_of(net, id)
        .iter()
        .filter(|e| decode_conf_change(e).is_some())
        .map(|e| (e.index, e.entry_type()))
        .collect()
}

/// Asserts that each node of `ids` applied exactly the conf changes `want` (index, result).
pub(crate) fn assert_conf_logs(net: &Network, ids: &[u64], want: &[(u64, ConfState)]) {
    for &id in ids {
        assert_eq!(
            net.node(id).conf_log,
            want,
            "node {id} applied other conf changes than expected"
        );
    }
}

/// Asserts that each node of `ids` is in configuration `want`.
pub(crate) fn assert_conf(net: &Network, ids: &[u64], want: &ConfState) {
    for &id in ids {
        assert_eq!(
            &net.node(id).conf_state(),
            want,
            "node {id} is in another configuration than expected"
        );
    }
}

/// Asserts that each node of `ids` applied exactly the payloads `want`, in order.
pub(crate) fn assert_applied(net: &Network, ids: &[u64], want: &[&[u8]]) {
    let want: Vec<Vec<u8>> = want.iter().map(|d| d.to_vec()).collect();
    for &id in ids {
        assert_eq!(
            net.node(id).applied_data(),
            want,
            "node {id} applied other payloads than expected"
        );
    }
}

/// Asserts that each node of `ids` has commit index `want` and applied everything up to it.
pub(crate) fn assert_committed(net: &Network, ids: &[u64], want: u64) {
    for &id in ids {
        assert_eq!(
            committed(net, id),
            want,
            "node {id}'s commit index is not the expected one"
        );
        assert_eq!(
            net.node(id).applied_index,
            want,
            "node {id} did not apply everything committed"
        );
    }
}

/// Asserts that node `id`'s applied conf changes are a prefix of node `of`'s (a node removed by
/// a change may or may not learn that the change committed).
pub(crate) fn assert_conf_log_prefix(net: &Network, id: u64, of: u64) {
    let (mine, theirs) = (&net.node(id).conf_log, &net.node(of).conf_log);
    assert!(
        theirs.starts_with(mine),
        "node {id}'s conf changes {mine:?} are not a prefix of node {of}'s {theirs:?}"
    );
}

/// Heals every fault and ticks `leader` until it has re-sent what the faults dropped (its
/// heartbeats reveal lagging followers, which then get appends).
pub(crate) fn heal(net: &mut Network, leader: u64) {
    net.recover();
    for _ in 0..3 {
        net.tick(leader);
    }
}

/// Ticks every node until a node other than the ones in `excluded` leads; returns it. Fails after
/// `max_ticks` rounds.
pub(crate) fn elect_among_others(net: &mut Network, excluded: &[u64], max_ticks: usize) -> u64 {
    for _ in 0..max_ticks {
        net.tick_all();
        if let Some(leader) = net.leader().filter(|l| !excluded.contains(l)) {
            return leader;
        }
    }
    panic!("no node outside {excluded:?} became leader within {max_ticks} ticks");
}

/// How many vote or pre-vote requests from node `id` the network delivered since the first
/// `since` deliveries (a mark taken from `net.delivered.len()`).
pub(crate) fn sent_vote_requests(net: &Network, id: u64, since: usize) -> usize {
    net.delivered[since..]
        .iter()
        .filter(|m| {
            m.from == id
                && matches!(
                    m.msg_type(),
                    MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
                )
        })
        .count()
}

/// Whether `m` is a MsgAppend carrying an entry with index above `index`.
pub(crate) fn carries_entries_after(m: &Message, index: u64) -> bool {
    m.msg_type() == MessageType::MsgAppend && m.entries.iter().any(|e| e.index > index)
}

/// Delivers `msgs` and everything they cause until no node has anything left to do, like
/// [`Network::send`], but drops every message for which `drop` holds (and those to nodes that are
/// not in the network). Cuts set on the network are not consulted.
pub(crate) fn pump(net: &mut Network, msgs: Vec<Message>, drop: impl Fn(&Message) -> bool) {
    let mut queue: VecDeque<Message> = msgs.into();
    loop {
        while let Some(m) = queue.pop_front() {
            if drop(&m) || !net.nodes.contains_key(&m.to) {
                continue;
            }
            let node = net.node_mut(m.to);
            // Refusals are logged by the node and change nothing; the test checks the outcome.
            let _ = node.raw.step(m);
            queue.extend(node.handle_ready().expect("MemStorage does not fail"));
        }
        let ids: Vec<u64> = net.nodes.keys().copied().collect();
        for id in ids {
            queue.extend(
                net.node_mut(id)
                    .handle_ready()
                    .expect("MemStorage does not fail"),
            );
        }
        if queue.is_empty() {
            return;
        }
    }
}

/// Whether node `id` is leader.
pub(crate) fn is_leader(net: &Network, id: u64) -> bool {
    net.node(id).state() == StateRole::Leader
}
