//! The `step_sequence` target: bytes as operations on a cluster of voters 1, 2, 3 and a spare
//! node 4.

use crate::mutate::mutate;
use crate::reader::Reader;
use crate::tracing;
use prost::Message as _;
use raft_core::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, Message, MessageType,
};
use raft_core::{SnapshotStatus, StateRole, INVALID_ID};
use raft_testkit::{assert_invariants, step_checked, Cluster, Flags, Peer};
use std::collections::BTreeMap;

/// The operations of `step_sequence`, one byte each (modulo their count) followed by operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `node`: one tick.
    Tick = 0,
    /// `node`: handle its Ready, queue its messages.
    Ready,
    /// `slot`: deliver the queued message at `slot % len`.
    Deliver,
    /// `slot`: drop a queued message.
    Drop,
    /// `slot`: deliver a copy of a queued message, keeping it queued.
    Duplicate,
    /// `node len bytes`: propose.
    Propose,
    /// `node`: read_index.
    ReadIndex,
    /// `node kind`: propose a conf change.
    ConfChange,
    /// `node`: campaign.
    Campaign,
    /// `node target`: transfer leadership.
    Transfer,
    /// `node`: snapshot and compact its storage.
    Compact,
    /// `slot mutation...`: deliver a mutated copy of a queued message (forged input).
    Mutate,
    /// `node len bytes`: decode bytes as a message and step it into `node` (forged input).
    Raw,
    /// `node target kind`: report_unreachable / report_snapshot(Finish|Failure).
    Report,
    /// Deliver and handle Readys until quiet (bounded).
    Stabilize,
    /// `node n`: tick `n % 32` times.
    Ticks,
}

const OPS: [Op; 16] = [
    Op::Tick,
    Op::Ready,
    Op::Deliver,
    Op::Drop,
    Op::Duplicate,
    Op::Propose,
    Op::ReadIndex,
    Op::ConfChange,
    Op::Campaign,
    Op::Transfer,
    Op::Compact,
    Op::Mutate,
    Op::Raw,
    Op::Report,
    Op::Stabilize,
    Op::Ticks,
];

impl Op {
    /// The operation byte `b` stands for.
    pub fn from_byte(b: u8) -> Op {
        OPS[usize::from(b) % OPS.len()]
    }
}

/// The node ids of the `step_sequence` cluster: voters 1, 2, 3 and node 4, not yet a member.
pub const NODES: [u64; 4] = [1, 2, 3, 4];

fn pick_node(r: &mut Reader) -> u64 {
    NODES[usize::from(r.u8()) % NODES.len()]
}

/// The conf changes the `ConfChange` operation proposes.
fn conf_change_entry(kind: u8) -> Entry {
    use raft_core::eraftpb::EntryType;
    let single = |node_id, change_type: ConfChangeType| ConfChangeSingle {
        change_type: change_type as i32,
        node_id,
    };
    let v1 = |node_id, change_type: ConfChangeType| ConfChange {
        change_type: change_type as i32,
        node_id,
        ..Default::default()
    };
    let (entry_type, data) = match kind % 7 {
        0 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::AddLearnerNode).encode_to_vec(),
        ),
        1 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::AddNode).encode_to_vec(),
        ),
        2 => (
            EntryType::EntryConfChange,
            v1(4, ConfChangeType::RemoveNode).encode_to_vec(),
        ),
        3 => (
            EntryType::EntryConfChange,
            v1(3, ConfChangeType::RemoveNode).encode_to_vec(),
        ),
        4 => (
            // Enter a joint configuration: promote 4, demote 3.
            EntryType::EntryConfChangeV2,
            ConfChangeV2 {
                changes: vec![
                    single(4, ConfChangeType::AddNode),
                    single(3, ConfChangeType::AddLearnerNode),
                ],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        5 => (
            // Leave the joint configuration.
            EntryType::EntryConfChangeV2,
            ConfChangeV2::default().encode_to_vec(),
        ),
        _ => (
            EntryType::EntryConfChangeV2,
            ConfChangeV2 {
                changes: vec![single(3, ConfChangeType::AddNode)],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    };
    Entry {
        entry_type: entry_type as i32,
        data: data.into(),
        ..Default::default()
    }
}

/// The `step_sequence` target. Byte 0 selects the flags; the rest is a sequence of [`Op`]s on a
/// cluster of voters 1, 2, 3 and a spare node 4. After every operation every node's invariants
/// are checked; at the end, if no forged message was stepped, so are election safety (one leader
/// per term) and agreement on committed entries (§5.2, §5.4.3).
pub fn step_sequence(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = Flags::from_byte(r.u8());
    let mut c = Cluster::new(flags, &[1, 2, 3], &[], &[4]);
    c.trace = tracing();
    let mut terms: BTreeMap<u64, u64> = NODES.iter().map(|id| (*id, 0)).collect();
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
    let mut forged = false;
    let mut ops = 0;
    while !r.done() && ops < 2_000 {
        ops += 1;
        let op = Op::from_byte(r.u8());
        if tracing() {
            eprintln!("op {ops}: {op:?}");
        }
        match op {
            Op::Tick => {
                let id = pick_node(&mut r);
                c.peer(id).raw.tick();
            }
            Op::Ticks => {
                let id = pick_node(&mut r);
                for _ in 0..r.u8() % 32 {
                    c.peer(id).raw.tick();
                }
            }
            Op::Ready => {
                let id = pick_node(&mut r);
                c.ready(id);
            }
            Op::Deliver | Op::Drop | Op::Duplicate | Op::Mutate => {
                let slot = usize::from(r.u8());
                if c.queue.is_empty() {
                    continue;
                }
                let slot = slot % c.queue.len();
                let m = match op {
                    Op::Deliver | Op::Drop => c.queue.remove(slot).expect("slot in range"),
                    _ => c.queue[slot].clone(),
                };
                match op {
                    Op::Drop => {}
                    Op::Mutate => {
                        let mut m = m;
                        mutate(&mut m, &mut r);
                        forged = true;
                        c.deliver(m);
                    }
                    _ => {
                        c.deliver(m);
                    }
                }
            }
            Op::Propose => {
                let id = pick_node(&mut r);
                let n = usize::from(r.u8() % 8);
                let data = r.bytes(n).to_vec();
                let _ = c.peer(id).raw.propose(vec![], data);
            }
            Op::ReadIndex => {
                let id = pick_node(&mut r);
                let ctx = vec![r.u8()];
                let _ = c.peer(id).raw.read_index(ctx);
            }
            Op::ConfChange => {
                let id = pick_node(&mut r);
                let e = conf_change_entry(r.u8());
                let p = c.peer(id);
                let _ = p.raw.raft.step(Message {
                    msg_type: MessageType::MsgPropose as i32,
                    from: id,
                    entries: vec![e],
                    ..Default::default()
                });
            }
            Op::Campaign => {
                let id = pick_node(&mut r);
                let _ = c.peer(id).raw.campaign();
            }
            Op::Transfer => {
                let id = pick_node(&mut r);
                let target = pick_node(&mut r);
                c.peer(id).raw.transfer_leader(target);
            }
            Op::Compact => {
                let id = pick_node(&mut r);
                c.peer(id).compact();
            }
            Op::Raw => {
                let id = pick_node(&mut r);
                let n = usize::from(r.u8());
                if let Ok(mut m) = Message::decode(r.bytes(n)) {
                    if m.to == INVALID_ID {
                        m.to = id;
                    }
                    if tracing() {
                        eprintln!("  raw into {id}: {}", raft_proto::describe_message(&m));
                    }
                    forged = true;
                    let p = c.peer(id);
                    let _ = step_checked(p, m);
                }
            }
            Op::Report => {
                let id = pick_node(&mut r);
                let target = pick_node(&mut r);
                let p = c.peer(id);
                match r.u8() % 3 {
                    0 => p.raw.report_unreachable(target),
                    1 => p.raw.report_snapshot(target, SnapshotStatus::Finish),
                    _ => p.raw.report_snapshot(target, SnapshotStatus::Failure),
                }
            }
            Op::Stabilize => c.stabilize(200),
        }
        for id in NODES {
            let p = &c.peers[&id];
            let min = terms[&id];
            assert_invariants(p, min, &format!("{op:?} (op {ops})"));
            terms.insert(id, p.raw.raft.term);
            if p.raw.raft.state == StateRole::Leader {
                let prev = *leaders.entry(p.raw.raft.term).or_insert(id);
                assert!(
                    forged || prev == id,
                    "two leaders in term {}: {prev} and {id} (§5.2 election safety)",
                    p.raw.raft.term
                );
            }
        }
    }
    if !forged {
        check_committed_agreement(&c);
    }
}

/// Committed entries agree between every two nodes where both still hold them (§5.4.3).
fn check_committed_agreement(c: &Cluster) {
    let peers: Vec<&Peer> = c.peers.values().collect();
    for (i, a) in peers.iter().enumerate() {
        for b in &peers[i + 1..] {
            let (la, lb) = (&a.raw.raft.raft_log, &b.raw.raft.raft_log);
            let hi = la.committed.min(lb.committed);
            let lo = la.first_index().max(lb.first_index());
            for index in lo..=hi {
                let (ta, tb) = (la.term(index), lb.term(index));
                if let (Ok(ta), Ok(tb)) = (ta, tb) {
                    assert_eq!(
                        ta,
                        tb,
                        "nodes {} and {} both committed index {index} with different terms",
                        a.id(),
                        b.id()
                    );
                }
            }
        }
    }
}
