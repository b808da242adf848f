//! Helpers shared by the paper, election and replication tests: building single nodes with a given
//! log, hand-made messages, persisting a directly driven `Raft`, and comparing logs.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use raft_core::eraftpb::{ConfState, Entry, HardState, Message, MessageType};
use raft_core::{Config, Raft, StateRole, NO_LIMIT};
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

/// A logger that drops everything.
pub fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// The config these tests use unless told otherwise: election timeout 10 ticks, heartbeat 1 tick,
/// no size limit per message.
pub fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        max_inflight_msgs: 256,
        ..Default::default()
    }
}

/// An entry at `index` of `term` with no payload.
pub fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

/// An entry at `index` of `term` carrying `data`.
pub fn ent_data(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

/// Entries at indexes `1..=terms.len()` with the given terms.
pub fn ents_with_terms(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| ent(i as u64 + 1, *t))
        .collect()
}

/// A storage for a member of `voters` holding `entries`, with hard state term `term`, no vote, and
/// commit `commit`.
pub fn storage_with(voters: &[u64], entries: &[Entry], term: u64, commit: u64) -> MemStorage {
    let storage = MemStorage::new_with_conf_state(conf_state(voters.to_vec(), vec![]));
    {
        let mut core = storage.wl();
        core.append(entries).expect("test entries are contiguous");
        core.set_hardstate(HardState {
            term,
            vote: 0,
            commit,
        });
    }
    storage
}

/// A `Raft` with the default test config over `storage`.
pub fn raft_on(id: u64, storage: MemStorage) -> Raft<MemStorage> {
    raft_with(&config(id), storage)
}

/// A `Raft` with `config` over `storage`.
pub fn raft_with(config: &Config, storage: MemStorage) -> Raft<MemStorage> {
    Raft::new(config, storage, &logger()).expect("valid test node")
}

/// A fresh `Raft` (empty log, term 0) that is one of `voters`.
pub fn new_raft(id: u64, voters: &[u64]) -> Raft<MemStorage> {
    raft_on(id, storage_with(voters, &[], 0, 0))
}

/// A message of `msg_type` from `from` to `to` in `term`.
pub fn msg(msg_type: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        msg_type: msg_type as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

/// A local MsgHup (start an election).
pub fn hup() -> Message {
    msg(MessageType::MsgHup, 0, 0, 0)
}

/// A local proposal of one entry carrying `data`, made at node `id`.
pub fn propose_msg(id: u64, data: &[u8]) -> Message {
    Message {
        msg_type: MessageType::MsgPropose as i32,
        from: id,
        to: id,
        entries: vec![ent_data(0, 0, data)],
        ..Default::default()
    }
}

/// A MsgAppend from `from` to `to` in `term`, after entry (`index`, `log_term`), with `entries` and
/// the leader commit `commit`.
pub fn append_msg(
    from: u64,
    to: u64,
    term: u64,
    (index, log_term): (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from,
        to,
        term,
        index,
        log_term,
        entries,
        commit,
        ..Default::default()
    }
}

/// A vote (or pre-vote) request from `from` to `to` for `term`, with a log ending at
/// (`last_index`, `last_term`).
pub fn vote_request(
    msg_type: MessageType,
    from: u64,
    to: u64,
    term: u64,
    last_index: u64,
    last_term: u64,
) -> Message {
    Message {
        msg_type: msg_type as i32,
        from,
        to,
        term,
        index: last_index,
        log_term: last_term,
        ..Default::default()
    }
}

/// A successful append response from `from` to `to` acknowledging everything up to `index`.
pub fn append_ack(from: u64, to: u64, term: u64, index: u64) -> Message {
    Message {
        index,
        ..msg(MessageType::MsgAppendResponse, from, to, term)
    }
}

/// The message type of `m`, or a panic naming the bad value.
pub fn mtype(m: &Message) -> MessageType {
    MessageType::try_from(m.msg_type).expect("known message type")
}

/// Persists what a directly driven `Raft` has not persisted yet (its unstable entries and hard
/// state), the way an application handling a Ready would, and reports it durable.
pub fn persist(r: &mut Raft<MemStorage>) {
    let entries = r.raft_log.unstable_entries().to_vec();
    r.raft_log.unstable.mark_all_in_progress();
    let hs = r.hard_state();
    {
        let mut core = r.raft_log.store.wl();
        core.append(&entries).expect("persisting unstable entries");
        core.set_hardstate(hs);
    }
    if let Some(last) = entries.last() {
        r.on_persist_entries(last.index, last.term);
    }
}

/// Every entry of the log, stable and unstable, from the first index to the last.
pub fn log_entries(r: &Raft<MemStorage>) -> Vec<Entry> {
    let log = &r.raft_log;
    log.slice(log.first_index(), log.last_index() + 1, NO_LIMIT)
        .expect("the whole log is readable")
}

/// The (index, term) of each of `entries`.
pub fn entry_ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// The (index, term) of every entry of the log.
pub fn index_terms(r: &Raft<MemStorage>) -> Vec<(u64, u64)> {
    entry_ids(&log_entries(r))
}

/// Drains a directly driven node's messages, keeping only those of `msg_type`.
pub fn take_of(r: &mut Raft<MemStorage>, msg_type: MessageType) -> Vec<Message> {
    r.read_messages()
        .into_iter()
        .filter(|m| m.msg_type == msg_type as i32)
        .collect()
}

/// Makes the node `r` (one of `voters`) leader of the next term: it campaigns, every other voter
/// grants, its entries are persisted, every follower acknowledges its log (so its empty entry is
/// committed and the followers are replicating), and its messages are drained.
pub fn make_leader(r: &mut Raft<MemStorage>, voters: &[u64]) {
    r.step(hup()).expect("campaign");
    let (id, term) = (r.id, r.term);
    for &v in voters.iter().filter(|v| **v != id) {
        if r.state == StateRole::Leader {
            break;
        }
        r.step(msg(MessageType::MsgRequestVoteResponse, v, id, term))
            .expect("vote response");
    }
    assert_eq!(r.state, StateRole::Leader, "node {id} did not win");
    persist(r);
    r.read_messages();
    // Every follower acknowledges the leader's empty entry, so it is committed and every follower
    // is in replicate state.
    let last = r.raft_log.last_index();
    for &v in voters.iter().filter(|v| **v != id) {
        r.step(append_ack(v, id, term, last)).expect("append ack");
    }
    assert_eq!(
        r.raft_log.committed, last,
        "the leader's empty entry is not committed"
    );
    r.read_messages();
}

/// Replaces node `id` of `net` with a node over `storage` configured by `cfg`.
pub fn replace_node(net: &mut Network, cfg: &Config, storage: MemStorage) {
    net.nodes.insert(cfg.id, Network::start_node(cfg, storage));
}

/// A network whose node `i` starts from `logs[i - 1]` (entries at indexes 1.., with the given terms)
/// at hard-state term `term`, nothing committed.
pub fn network_with_logs(logs: &[Vec<u64>], term: u64, cfg: impl Fn(u64) -> Config) -> Network {
    let n = logs.len() as u64;
    let voters: Vec<u64> = (1..=n).collect();
    let mut net = Network::with_config(n, &cfg);
    for (i, terms) in logs.iter().enumerate() {
        let id = i as u64 + 1;
        let storage = storage_with(&voters, &ents_with_terms(terms), term, 0);
        replace_node(&mut net, &cfg(id), storage);
    }
    net
}

/// The (index, term, data) of every entry in node `id`'s log.
pub fn net_log(net: &Network, id: u64) -> Vec<(u64, u64, Vec<u8>)> {
    log_entries(&net.node(id).raw.raft)
        .iter()
        .map(|e| (e.index, e.term, e.data.to_vec()))
        .collect()
}

/// Asserts that every node of `net` holds the same log and the same commit index as node `of`.
pub fn assert_logs_equal(net: &Network, of: u64) {
    let want = net_log(net, of);
    let commit = net.node(of).raw.raft.raft_log.committed;
    for id in net.nodes.keys().copied() {
        assert_eq!(
            net_log(net, id),
            want,
            "node {id}'s log differs from node {of}'s"
        );
        assert_eq!(
            net.node(id).raw.raft.raft_log.committed,
            commit,
            "node {id}'s commit index differs from node {of}'s"
        );
    }
}

/// The ConfState of a cluster of `voters` and no learners.
pub fn voters_conf(voters: &[u64]) -> ConfState {
    conf_state(voters.to_vec(), vec![])
}
