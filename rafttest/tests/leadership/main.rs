//! Leadership (issue #5): leadership transfer (thesis §3.10: `transfer_leader`, `MsgTimeoutNow`,
//! the refusal of proposals meanwhile, and every way a transfer is ignored, replaced or aborted),
//! `forget_leader` (etcd's ForgetLeader under PreVote + CheckQuorum), priority elections (raft-rs),
//! and what `status()` / `basic_status()` report.
//!
//! End-to-end behaviour runs on a `rafttest::Network`; rules about exact messages drive a single
//! `Raft` with hand-made messages (helpers from `tests/common`).

#[path = "../common/mod.rs"]
mod common;

mod forget_leader;
mod priority;
mod status;
mod transfer;

use common::*;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{Config, Raft, StateRole};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

/// The network's default config with pre-vote and check-quorum on.
pub(crate) fn pv_cq_config(id: u64) -> Config {
    Config {
        pre_vote: true,
        check_quorum: true,
        ..default_config(id)
    }
}

/// A network of voters `1..=n` configured by `config`, in which node 1 won the election at term 1
/// and every node applied the leader's empty entry (index 1).
pub(crate) fn elected_with(n: u64, config: impl Fn(u64) -> Config) -> Network {
    let mut net = Network::with_config(n, config);
    net.campaign(1);
    assert_eq!(net.leader(), Some(1), "node 1 should have won the election");
    for id in 1..=n {
        assert_eq!(net.node(id).term(), 1, "node {id} is not at term 1");
        assert_eq!(
            net.node(id).applied_index,
            1,
            "node {id} did not apply the leader's empty entry"
        );
    }
    net
}

/// [`elected_with`] and the network's default config.
pub(crate) fn elected(n: u64) -> Network {
    elected_with(n, default_config)
}

/// A network whose members are `voters` and `learners` (ids `1..=max`), each configured by
/// `config`, nobody elected yet.
pub(crate) fn network_with_members(
    voters: &[u64],
    learners: &[u64],
    config: impl Fn(u64) -> Config,
) -> Network {
    let n = voters.iter().chain(learners).copied().max().unwrap_or(0);
    let mut net = Network::with_config(n, &config);
    for id in 1..=n {
        let storage =
            MemStorage::new_with_conf_state(conf_state(voters.to_vec(), learners.to_vec()));
        replace_node(&mut net, &config(id), storage);
    }
    net
}

/// The messages node `id` produced and has not handed out in a Ready yet (both queues), in order.
pub(crate) fn queued(net: &Network, id: u64) -> Vec<Message> {
    let raft = &net.node(id).raw.raft;
    raft.msgs
        .iter()
        .chain(&raft.msgs_after_append)
        .cloned()
        .collect()
}

/// The messages of `msg_type` among `msgs`.
pub(crate) fn of_type(msgs: &[Message], msg_type: MessageType) -> Vec<Message> {
    msgs.iter()
        .filter(|m| m.msg_type == msg_type as i32)
        .cloned()
        .collect()
}

/// The messages delivered by `net` since `mark` (a former `net.delivered.len()`).
pub(crate) fn delivered_since(net: &Network, mark: usize) -> &[Message] {
    &net.delivered[mark..]
}

/// Each message as (type, from, to, term).
pub(crate) fn summary(msgs: &[Message]) -> Vec<(MessageType, u64, u64, u64)> {
    msgs.iter()
        .map(|m| (mtype(m), m.from, m.to, m.term))
        .collect()
}

/// The request a leader gets (from its application or forwarded by a follower) to hand leadership
/// to `transferee`: raft-rs names the transferee as the sender.
pub(crate) fn transfer_request(transferee: u64) -> Message {
    Message {
        msg_type: MessageType::MsgTransferLeader as i32,
        from: transferee,
        ..Default::default()
    }
}

/// `Raft` leader 1 of {1, 2, 3} at term 1 whose log ends at index 2 (its empty entry and `x`,
/// both committed and persisted), where follower 2 has matched index 2 and follower 3 only index 1
/// (the append carrying `x` to it is in flight). Its messages are drained.
pub(crate) fn leader_with_lagging_3() -> Raft<MemStorage> {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    r.step(propose_msg(1, b"x")).expect("proposal accepted");
    persist(&mut r);
    r.read_messages();
    r.step(append_ack(2, 1, 1, 2)).expect("ack from 2");
    r.read_messages();
    assert_eq!(r.state, StateRole::Leader);
    assert_eq!(r.raft_log.committed, 2, "x should be committed by 1 and 2");
    assert_eq!(r.prs.get(2).map(|p| p.matched), Some(2));
    assert_eq!(r.prs.get(3).map(|p| p.matched), Some(1));
    r
}
