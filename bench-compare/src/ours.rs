//! This library under the [`Lib`] trait: `raft_core::RawNode` over `storage_mem::MemStorage`.

use crate::common::{
    Ack, App, Inspect, Lib, Role, Settings, HEARTBEAT_TICK, LOGGER, MAX_INFLIGHT_MSGS,
    MAX_SIZE_PER_MSG,
};
use bytes::Bytes;
use raft_core::eraftpb::{Entry, EntryType, Message, MessageType};
use raft_core::{Config, RawNode, StateRole, Storage as _};
use storage_mem::MemStorage;

/// Marker type: this workspace's library.
pub struct Ours;

/// One node of ours: the `RawNode`, a handle on its storage, and its application.
pub struct Node {
    raw: RawNode<MemStorage>,
    store: MemStorage,
    app: App,
}

pub(crate) fn config(id: u64, settings: Settings) -> Config {
    Config {
        id,
        election_tick: settings.election_tick,
        heartbeat_tick: HEARTBEAT_TICK,
        max_size_per_msg: MAX_SIZE_PER_MSG,
        max_inflight_msgs: MAX_INFLIGHT_MSGS,
        batch_append: settings.batch_append,
        ..Default::default()
    }
}

pub(crate) fn storage() -> MemStorage {
    MemStorage::new_with_conf_state(storage_mem::conf_state(vec![1, 2, 3], vec![]))
}

fn role(r: StateRole) -> Role {
    match r {
        StateRole::Follower => Role::Follower,
        StateRole::Candidate => Role::Candidate,
        StateRole::Leader => Role::Leader,
        StateRole::PreCandidate => Role::PreCandidate,
    }
}

fn apply(app: &mut App, entries: Vec<Entry>) {
    for e in &entries {
        app.apply(
            e.index,
            &e.data,
            e.entry_type == EntryType::EntryNormal as i32,
        );
    }
}

impl Lib for Ours {
    const NAME: &'static str = "ours";
    type Node = Node;
    type Raw = RawNode<MemStorage>;
    type Msg = Message;

    fn raw_size() -> usize {
        std::mem::size_of::<RawNode<MemStorage>>()
    }

    fn msg_size() -> usize {
        std::mem::size_of::<Message>()
    }

    fn new_node(id: u64, settings: Settings) -> Node {
        let store = storage();
        let raw = RawNode::new(&config(id, settings), store.clone(), &LOGGER).expect("new node");
        Node {
            raw,
            store,
            app: App::default(),
        }
    }

    fn new_raw(id: u64, settings: Settings) -> RawNode<MemStorage> {
        RawNode::new(&config(id, settings), storage(), &LOGGER).expect("new node")
    }

    fn tick_raw(raw: &mut RawNode<MemStorage>) {
        raw.tick();
    }

    fn raw_is_idle_follower(raw: &RawNode<MemStorage>) -> bool {
        raw.raft.state == StateRole::Follower && !raw.has_ready()
    }

    fn tick(node: &mut Node) {
        node.raw.tick();
    }

    fn campaign(node: &mut Node) {
        node.raw.campaign().expect("campaign");
    }

    fn propose(node: &mut Node, data: Vec<u8>) {
        node.raw.propose(Vec::new(), data).expect("propose");
    }

    fn step(node: &mut Node, m: Message) {
        node.raw.step(m).expect("step");
    }

    fn has_ready(node: &Node) -> bool {
        node.raw.has_ready()
    }

    fn handle_ready_unconditionally(node: &mut Node, out: &mut Vec<Message>) {
        let mut rd = node.raw.ready().expect("ready");
        out.append(&mut rd.take_messages());
        assert!(rd.snapshot().is_empty(), "unexpected snapshot");
        apply(&mut node.app, rd.take_committed_entries());
        {
            let mut store = node.store.wl();
            store.append(rd.entries()).expect("persist entries");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        out.append(&mut rd.take_persisted_messages());
        let mut light = node.raw.advance(rd).expect("advance");
        if let Some(c) = light.commit_index() {
            node.store.wl().mut_hard_state().commit = c;
        }
        out.append(&mut light.take_messages());
        apply(&mut node.app, light.take_committed_entries());
        node.raw.advance_apply();
    }

    fn app(node: &Node) -> &App {
        &node.app
    }

    fn is_leader(node: &Node) -> bool {
        node.raw.raft.state == StateRole::Leader
    }

    fn leader_id(node: &Node) -> u64 {
        node.raw.raft.leader_id
    }

    fn last_index(node: &Node) -> u64 {
        node.raw.raft.raft_log.last_index()
    }

    fn inspect(node: &Node) -> Inspect {
        let raft = &node.raw.raft;
        let hs = *node.store.rl().hard_state();
        Inspect {
            role: role(raft.state),
            term: raft.term,
            leader_id: raft.leader_id,
            last_index: raft.raft_log.last_index(),
            committed: raft.raft_log.committed,
            applied: raft.raft_log.applied,
            persisted: raft.raft_log.persisted,
            stored_term: hs.term,
            stored_commit: hs.commit,
            stored_last_index: node.store.last_index().expect("stored last index"),
        }
    }

    fn msg_to(m: &Message) -> u64 {
        m.to
    }

    fn msg_from(m: &Message) -> u64 {
        m.from
    }

    fn is_heartbeat_response(m: &Message) -> bool {
        m.msg_type == MessageType::MsgHeartbeatResponse as i32
    }

    fn w2_append(i: u64, p: usize) -> Message {
        Message {
            msg_type: MessageType::MsgAppend as i32,
            from: 1,
            to: 2,
            term: 1,
            index: i - 1,
            log_term: if i == 1 { 0 } else { 1 },
            commit: 0,
            entries: vec![Entry {
                entry_type: EntryType::EntryNormal as i32,
                term: 1,
                index: i,
                data: Bytes::from(crate::common::payload(i - 1, p)),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn heartbeat_response(from: u64, term: u64, commit: u64) -> Message {
        Message {
            msg_type: MessageType::MsgHeartbeatResponse as i32,
            from,
            to: 1,
            term,
            commit,
            ..Default::default()
        }
    }

    fn append_ack(m: &Message) -> Option<Ack> {
        (m.msg_type == MessageType::MsgAppendResponse as i32).then_some(Ack {
            index: m.index,
            reject: m.reject,
        })
    }
}
