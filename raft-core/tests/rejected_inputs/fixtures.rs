//! The nodes the inputs are stepped into, the messages built for them, and the two ways a test
//! says "refused, so nothing changed" (`raft_testkit::NodeState` before and after).

use raft_core::eraftpb::{Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use raft_core::{Config, Error, RawNode, StateRole};
use raft_testkit::{logger, NodeState};
use storage_mem::{conf_state, MemStorage};

pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

pub fn msg(msg_type: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        msg_type: msg_type as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

pub fn append(from: u64, to: u64, term: u64, index: u64, log_term: u64, commit: u64) -> Message {
    Message {
        index,
        log_term,
        commit,
        ..msg(MessageType::MsgAppend, from, to, term)
    }
}

pub struct Node {
    pub raw: RawNode<MemStorage>,
    pub store: MemStorage,
}

impl Node {
    pub fn new(id: u64, cfg: impl FnOnce(&mut Config)) -> Node {
        let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
        Node::over(id, store, cfg)
    }

    pub fn over(id: u64, store: MemStorage, cfg: impl FnOnce(&mut Config)) -> Node {
        let mut config = Config::new(id);
        cfg(&mut config);
        let raw = RawNode::new(&config, store.clone(), &logger()).expect("valid config");
        Node { raw, store }
    }

    /// Persists and applies the pending Ready (if any); returns what it sent.
    pub fn settle(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while self.raw.has_ready() {
            let mut rd = self.raw.ready().expect("ready");
            out.extend(rd.take_messages());
            {
                let mut s = self.store.wl();
                if !rd.snapshot().is_empty() {
                    s.apply_snapshot(rd.snapshot().clone())
                        .expect("store snapshot");
                }
                s.append(rd.entries()).expect("store entries");
                if let Some(hs) = rd.hard_state() {
                    s.set_hardstate(*hs);
                }
            }
            out.extend(rd.take_persisted_messages());
            let mut light = self.raw.advance(rd).expect("advance");
            if let Some(c) = light.commit_index() {
                self.store.wl().mut_hard_state().commit = c;
            }
            out.extend(light.take_messages());
            self.raw.advance_apply();
        }
        out
    }

    pub fn step_ok(&mut self, m: Message) {
        let d = raft_proto::describe_message(&m);
        self.raw
            .step(m)
            .unwrap_or_else(|e| panic!("fixture step {d} failed: {e}"));
    }

    /// The messages queued by the last step (not yet taken by a Ready).
    pub fn queued(&self) -> Vec<Message> {
        let r = &self.raw.raft;
        r.msgs.iter().chain(&r.msgs_after_append).cloned().collect()
    }
}

/// Node 2 of {1, 2, 3}, following leader 1 in term 2; log `1:t1 2:t1 3:t2 4:t2`, committed and
/// applied up to 3, all persisted.
pub fn follower() -> Node {
    let mut n = Node::new(2, |_| {});
    let mut m = append(1, 2, 2, 0, 0, 3);
    m.entries = vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)];
    n.step_ok(m);
    n.settle();
    let r = &n.raw.raft;
    assert_eq!(
        (
            r.term,
            r.leader_id,
            r.raft_log.last_index(),
            r.raft_log.committed
        ),
        (2, 1, 4, 3),
        "follower fixture"
    );
    n
}

/// Node 1 of {1, 2, 3}, leader of term 1 with its empty entry and two proposals committed by node
/// 2's acknowledgement (last index 3, commit 3).
pub fn leader() -> Node {
    let mut n = Node::new(1, |_| {});
    n.raw.campaign().expect("campaign");
    n.settle();
    n.step_ok(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1));
    n.settle();
    n.raw.propose(vec![], b"a".to_vec()).expect("propose");
    n.raw.propose(vec![], b"b".to_vec()).expect("propose");
    n.settle();
    let ack = Message {
        index: 3,
        ..msg(MessageType::MsgAppendResponse, 2, 1, 1)
    };
    n.step_ok(ack);
    n.settle();
    let r = &n.raw.raft;
    assert_eq!(
        (
            r.state,
            r.term,
            r.raft_log.last_index(),
            r.raft_log.committed
        ),
        (StateRole::Leader, 1, 3, 3),
        "leader fixture"
    );
    n
}

/// Node 3 of {1, 2, 3}, a candidate of term 1 waiting for votes.
pub fn candidate() -> Node {
    let mut n = Node::new(3, |_| {});
    n.raw.campaign().expect("campaign");
    n.settle();
    assert_eq!(n.raw.raft.state, StateRole::Candidate, "candidate fixture");
    n
}

// ---------------------------------------------------------------------------------------------
// "Nothing changed": everything a refused message could touch.
// ---------------------------------------------------------------------------------------------

/// The state a refused message must leave unchanged.
pub struct State;

impl State {
    pub fn of(n: &Node) -> NodeState {
        NodeState::of(&n.raw)
    }
}

/// Steps `m` into `n`, expects exactly `expected`, and that nothing changed.
pub fn assert_refused(n: &mut Node, m: Message, expected: &Error) {
    let before = State::of(n);
    let d = raft_proto::describe_message(&m);
    let result = n.raw.step(m);
    assert_eq!(
        result.as_ref(),
        Err(expected),
        "stepping {d} should be refused with `{expected}`"
    );
    assert_eq!(
        State::of(n),
        before,
        "refusing {d} changed the node's state"
    );
}

/// Steps `m` into `n`, expects `InvalidMessage` of this type and sender whose reason mentions
/// `reason_has`, and that nothing changed.
pub fn assert_invalid(n: &mut Node, m: Message, reason_has: &str) {
    let before = State::of(n);
    let d = raft_proto::describe_message(&m);
    let (msg_type, from) = (m.msg_type(), m.from);
    match n.raw.step(m) {
        Err(Error::InvalidMessage {
            msg_type: t,
            from: f,
            reason,
        }) => {
            assert_eq!(
                (t, f),
                (msg_type, from),
                "{d}: the error names the wrong message"
            );
            assert!(
                reason.contains(reason_has),
                "{d}: refused for `{reason}`, expected a reason about `{reason_has}`"
            );
        }
        other => panic!("{d} should be refused as invalid ({reason_has}), got {other:?}"),
    }
    assert_eq!(
        State::of(n),
        before,
        "refusing {d} changed the node's state"
    );
}

/// A snapshot message from leader 1 to node 2 in `term`, with `metadata`.
pub fn snapshot_msg(term: u64, metadata: Option<SnapshotMetadata>) -> Message {
    Message {
        snapshot: Some(Box::new(Snapshot {
            data: Default::default(),
            metadata,
        })),
        ..msg(MessageType::MsgSnapshot, 1, 2, term)
    }
}

/// Snapshot metadata at (`index`, `term`) with `voters`.
pub fn meta(index: u64, term: u64, voters: &[u64]) -> SnapshotMetadata {
    SnapshotMetadata {
        conf_state: Some(conf_state(voters.iter().copied(), [])),
        index,
        term,
    }
}
