//! Helpers of the read-index tests: configs, a group with an elected leader, writes that return
//! their index, a message pump that can hold messages back, and predicates and decoders for the
//! messages of a read (heartbeat rounds, forwarded requests, responses).

use std::collections::VecDeque;

use bytes::Bytes;
use raft_core::eraftpb::{ConfChangeTransition, ConfChangeV2, Entry, Message, MessageType};
use raft_core::{Config, Error, ReadOnlyOption, ReadState, StateRole};
use raft_proto::conf_changes_from_string;
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::conf_state;

/// The network's default config (ReadOnlyOption::Safe, no check-quorum, no pre-vote).
pub(crate) fn safe_cfg(id: u64) -> Config {
    default_config(id)
}

/// Lease-based reads, which require check-quorum.
pub(crate) fn lease_cfg(id: u64) -> Config {
    Config {
        check_quorum: true,
        read_only_option: ReadOnlyOption::LeaseBased,
        ..default_config(id)
    }
}

/// A group of voters `1..=n` configured by `config` in which node 1 won the election and its empty
/// entry (index 1) is committed and applied everywhere.
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

/// [`elected_with`] the default (Safe) config.
pub(crate) fn elected(n: u64) -> Network {
    elected_with(n, safe_cfg)
}

/// The bootstrap membership of voters `1..=n`.
pub(crate) fn bootstrap(n: u64) -> raft_core::eraftpb::ConfState {
    conf_state(1..=n, [])
}

/// Proposes `data` at the leader `at`, runs to quiescence, and returns the entry's index once the
/// leader applied it (a write acknowledged to its client).
pub(crate) fn put(net: &mut Network, at: u64, data: &[u8]) -> u64 {
    if let Err(e) = net.propose(at, data) {
        panic!("write {data:?} at node {at} was refused: {e}");
    }
    written_index(net, at, data)
}

/// The index at which node `at` applied the write `data`; fails if it did not apply it.
pub(crate) fn written_index(net: &Network, at: u64, data: &[u8]) -> u64 {
    net.node(at)
        .applied
        .iter()
        .rev()
        .find(|e| e.data.as_ref() == data)
        .map(|e| e.index)
        .unwrap_or_else(|| panic!("node {at} did not apply the write {data:?}"))
}

/// A v2 conf change with `transition` and the changes in compact text form (`"r3 v4 l5"`).
pub(crate) fn v2(transition: ConfChangeTransition, changes: &str) -> ConfChangeV2 {
    ConfChangeV2 {
        transition: transition as i32,
        changes: conf_changes_from_string(changes).expect("valid change text"),
        ..Default::default()
    }
}

/// Proposes `cc` at node `at` and runs to quiescence, failing the test if it is refused.
pub(crate) fn change(net: &mut Network, at: u64, cc: ConfChangeV2) {
    if let Err(e) = net.node_mut(at).raw.propose_conf_change(vec![], cc) {
        panic!("conf change proposed at node {at} was refused: {e}");
    }
    net.stabilize();
}

/// Calls `read_index(ctx)` on node `at`, failing the test if it is refused. Nothing is delivered.
pub(crate) fn request_read(net: &mut Network, at: u64, ctx: &[u8]) {
    if let Err(e) = net.node_mut(at).raw.read_index(ctx.to_vec()) {
        panic!("read_index({ctx:?}) on node {at} was refused: {e}");
    }
}

/// Delivers `msgs` and everything they cause (after handling every node's Ready) until no node has
/// anything left to do, like `Network::send`, except that every message for which `hold` is true
/// is not delivered but returned. Network cuts are not consulted; delivered messages are recorded
/// in `net.delivered`.
pub(crate) fn run(
    net: &mut Network,
    msgs: Vec<Message>,
    hold: impl Fn(&Message) -> bool,
) -> Vec<Message> {
    let mut held = Vec::new();
    let mut queue: VecDeque<Message> = msgs.into();
    loop {
        while let Some(m) = queue.pop_front() {
            if hold(&m) {
                held.push(m);
                continue;
            }
            if !net.nodes.contains_key(&m.to) {
                continue;
            }
            net.delivered.push(m.clone());
            let node = net.node_mut(m.to);
            // Refusals are logged by the node and change nothing; tests check the outcome.
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
            return held;
        }
    }
}

/// Delivers `msgs` (and what they cause) to quiescence without holding anything back.
pub(crate) fn deliver(net: &mut Network, msgs: Vec<Message>) {
    let held = run(net, msgs, |_| false);
    debug_assert!(held.is_empty());
}

/// Whether `m` is a heartbeat response addressed to `to`.
pub(crate) fn is_hb_resp_to(m: &Message, to: u64) -> bool {
    m.msg_type() == MessageType::MsgHeartbeatResponse && m.to == to
}

/// Whether `m` is an append response addressed to `to`.
pub(crate) fn is_append_resp_to(m: &Message, to: u64) -> bool {
    m.msg_type() == MessageType::MsgAppendResponse && m.to == to
}

/// Whether `m` is a heartbeat of a read round: its context names a pending round (not 0). A
/// heartbeat carries a leader-generated context while a read round is pending, and always under
/// lease-based reads (round 0 when none is pending); otherwise none.
pub(crate) fn is_read_heartbeat(m: &Message) -> bool {
    m.msg_type() == MessageType::MsgHeartbeat && !m.context.is_empty() && round_of(&m.context) != 0
}

/// The messages among `msgs` of `msg_type`.
pub(crate) fn of_type(msgs: &[Message], msg_type: MessageType) -> Vec<&Message> {
    msgs.iter().filter(|m| m.msg_type() == msg_type).collect()
}

/// The messages delivered since the mark `since` (taken from `net.delivered.len()`).
pub(crate) fn delivered_since(net: &Network, since: usize) -> &[Message] {
    &net.delivered[since..]
}

/// Splits a leader-generated heartbeat context into (read round, sent tick): a marker byte 0xA5,
/// the newest pending read round (0 when none is pending) and the leader's tick when it sent the
/// heartbeat, both big-endian u64. Fails if `ctx` is not one.
pub(crate) fn decode_ctx(ctx: &[u8]) -> (u64, u64) {
    match ctx {
        [0xA5, rest @ ..] if rest.len() == 16 => (
            u64::from_be_bytes(rest[..8].try_into().expect("eight bytes")),
            u64::from_be_bytes(rest[8..].try_into().expect("eight bytes")),
        ),
        _ => panic!("heartbeat context {ctx:?} is not a leader-generated heartbeat context"),
    }
}

/// The read round a heartbeat context names (0: none pending); fails if it is not one.
pub(crate) fn round_of(ctx: &[u8]) -> u64 {
    decode_ctx(ctx).0
}

/// The leader's tick at which the heartbeat with context `ctx` was sent; fails if it is not one.
pub(crate) fn sent_tick_of(ctx: &[u8]) -> u64 {
    decode_ctx(ctx).1
}

/// The heartbeat context naming read round `seq` sent at the leader's tick `sent` (the encoding
/// [`decode_ctx`] decodes).
pub(crate) fn round_ctx(seq: u64, sent: u64) -> Bytes {
    let mut ctx = vec![0xA5];
    ctx.extend_from_slice(&seq.to_be_bytes());
    ctx.extend_from_slice(&sent.to_be_bytes());
    ctx.into()
}

/// The one read round named by all read-round heartbeats among `msgs`; fails if there are none or
/// they name different rounds.
pub(crate) fn single_round(msgs: &[Message]) -> u64 {
    let rounds: Vec<u64> = msgs
        .iter()
        .filter(|m| is_read_heartbeat(m))
        .map(|m| round_of(&m.context))
        .collect();
    assert!(
        !rounds.is_empty(),
        "no heartbeat of a read round was sent: {msgs:?}"
    );
    assert!(
        rounds.iter().all(|r| *r == rounds[0]),
        "the read-round heartbeats name different rounds: {rounds:?}"
    );
    rounds[0]
}

/// The context shared by the heartbeats among `msgs` (one broadcast); fails if there are none or
/// they disagree.
pub(crate) fn single_heartbeat_ctx(msgs: &[Message]) -> Bytes {
    let hbs = of_type(msgs, MessageType::MsgHeartbeat);
    assert!(!hbs.is_empty(), "no heartbeat was sent: {msgs:?}");
    let ctx = hbs[0].context.clone();
    for m in &hbs {
        assert_eq!(
            m.context, ctx,
            "heartbeats of one broadcast carry different contexts"
        );
    }
    ctx
}

/// The heartbeats and responses of one tick of leader 1, once a read was served and none is
/// pending.
pub(crate) fn heartbeat_after_a_read(net: &mut Network) -> Vec<Message> {
    request_read(net, 1, b"r");
    net.stabilize();
    assert_eq!(read_states(net, 1).len(), 1);
    let mark = net.delivered.len();
    net.tick(1);
    let traffic = delivered_since(net, mark).to_vec();
    assert_eq!(read_states(net, 1).len(), 1, "no read state appears twice");
    traffic
}

/// Establishes the lease of `leader` (LeaseBased, with no lease yet): a lease read there must start
/// a heartbeat round, which every follower acknowledges; the read is answered and its read state is
/// then forgotten so that callers see only their own. Returns the leader's tick at which the
/// round's heartbeats were sent (the lease runs from there).
pub(crate) fn establish_lease(net: &mut Network, leader: u64) -> u64 {
    request_read(net, leader, b"establish-lease");
    let out = net.node_mut(leader).handle_ready().expect("ready");
    assert_no_read_state(
        net,
        leader,
        "a leader without a lease must confirm a lease read by a heartbeat round",
    );
    single_round(&out);
    let sent = sent_tick_of(&single_heartbeat_ctx(&out));
    net.send(out);
    let got = std::mem::take(&mut net.node_mut(leader).read_states);
    assert_eq!(
        got.len(),
        1,
        "the read that establishes the lease was not answered once its round was acknowledged: \
         {got:?}"
    );
    sent
}

/// A `ReadState` at `index` for the request context `ctx`.
pub(crate) fn rs(index: u64, ctx: &[u8]) -> ReadState {
    ReadState {
        index,
        request_ctx: Bytes::copy_from_slice(ctx),
    }
}

/// The read states node `id` received so far.
pub(crate) fn read_states(net: &Network, id: u64) -> &[ReadState] {
    &net.node(id).read_states
}

/// Asserts that node `id` received no read state, saying `why` it must not have.
pub(crate) fn assert_no_read_state(net: &Network, id: u64, why: &str) {
    assert!(
        net.node(id).read_states.is_empty(),
        "node {id} got read states {:?} although {why}",
        net.node(id).read_states
    );
}

/// How many read requests node `id` (a leader) holds unanswered.
pub(crate) fn pending_reads(net: &Network, id: u64) -> usize {
    net.node(id).raw.raft.read_only.pending_count()
}

/// Node `id`'s commit index.
pub(crate) fn committed(net: &Network, id: u64) -> u64 {
    net.node(id).raw.raft.raft_log.committed
}

/// Node `id`'s last log index.
pub(crate) fn last_index(net: &Network, id: u64) -> u64 {
    net.node(id).raw.raft.raft_log.last_index()
}

/// Whether node `id` is leader.
pub(crate) fn is_leader(net: &Network, id: u64) -> bool {
    net.node(id).state() == StateRole::Leader
}

/// Whether `r` is the error `read_index` returns when the request is dropped.
pub(crate) fn is_read_dropped<T: std::fmt::Debug>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::ReadIndexDropped))
}

/// A MsgReadIndex from `from` to `to` (term 0, as forwarded) carrying `entries`.
pub(crate) fn read_request(from: u64, to: u64, entries: Vec<Entry>) -> Message {
    Message {
        msg_type: MessageType::MsgReadIndex as i32,
        from,
        to,
        entries,
        ..Default::default()
    }
}

/// An entry carrying `data` (the context of a read request or response).
pub(crate) fn ctx_entry(data: &[u8]) -> Entry {
    Entry {
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    }
}

/// In a group where node 1 leads and has applied everything, node 1 hands leadership to node 2
/// (thesis §3.10) while every append response to node 2 is held back: node 2 leads a new term and
/// its empty entry (its last index) is appended everywhere but not committed. Returns the held
/// responses.
pub(crate) fn leader_with_uncommitted_entry(net: &mut Network) -> Vec<Message> {
    net.node_mut(1).raw.transfer_leader(2);
    let held = run(net, vec![], |m| is_append_resp_to(m, 2));
    assert!(is_leader(net, 2), "node 2 did not take over leadership");
    let empty = last_index(net, 2);
    assert_eq!(
        net.node(2).raw.raft.raft_log.term(empty).ok(),
        Some(net.node(2).term()),
        "node 2's last entry is not its own term's empty entry"
    );
    assert!(
        committed(net, 2) < empty,
        "node 2 committed its empty entry although every append response was held back"
    );
    assert!(!held.is_empty(), "no append response to node 2 was held");
    held
}
