//! Writes the seed corpus under `corpus/<target>/` (run from `fuzz/`:
//! `cargo run --example gen_corpus`). Deterministic: the same files every time.
//!
//! `step_bytes`: real messages recorded from cluster runs (elections with and without pre-vote,
//! replication, heartbeats, snapshots after compaction, reads, leadership transfer), a few of each
//! type, each prefixed by the flags byte; the local-only types, which never travel, are written
//! as the messages the node would build for itself. `step_sequence`: short operation scripts that
//! reach elections, replication, reads, membership changes, compaction and snapshots.

use prost::Message as _;
use raft_core::eraftpb::{Message, MessageType};
use raft_fuzz::Op;
use raft_testkit::Flags;
use std::collections::BTreeMap;
use std::path::Path;

/// Records the messages of a cluster run covering every peer message type.
fn recorded_messages(flags: Flags) -> Vec<Message> {
    let mut c = raft_fuzz::history_cluster(flags);
    c.recorded = Some(Vec::new());
    // Reads through the leader and through a follower.
    let _ = c.peer(1).raw.read_index(b"r1".to_vec());
    let _ = c.peer(2).raw.read_index(b"r2".to_vec());
    c.stabilize(10_000);
    // Leadership transfer to node 2, asked through node 3.
    c.peer(3).raw.transfer_leader(2);
    c.stabilize(10_000);
    // Node 3 falls behind, the leader compacts, node 3 gets a snapshot.
    let leader = c
        .peers
        .values()
        .find(|p| p.raw.raft.state == raft_core::StateRole::Leader)
        .map(|p| p.id())
        .expect("a leader after the transfer");
    c.isolated.insert(3);
    for data in [b"f".as_slice(), b"g", b"h"] {
        c.propose(leader, data);
    }
    c.peer(leader).compact();
    c.isolated.clear();
    for _ in 0..4 {
        c.peer(leader).raw.tick();
        c.stabilize(10_000);
    }
    // A forwarded proposal.
    let follower = if leader == 1 { 2 } else { 1 };
    c.propose(follower, b"fwd");
    // One more election (a pre-vote round first when pre-vote is on).
    c.elect(3);
    c.recorded.take().unwrap_or_default()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write corpus file");
}

fn step_bytes_corpus(dir: &Path) {
    let mut by_type: BTreeMap<i32, Vec<(u8, Message)>> = BTreeMap::new();
    for flags_byte in 0..4u8 {
        for m in recorded_messages(Flags::from_byte(flags_byte)) {
            let list = by_type.entry(m.msg_type).or_default();
            // A few of each type, from different runs or with different shapes.
            let shape = |f: u8, m: &Message| (f, m.entries.len().min(2), m.reject);
            let new_shape = !list
                .iter()
                .any(|(f, o)| shape(*f, o) == shape(flags_byte, &m));
            if list.len() < 3 && new_shape {
                list.push((flags_byte, m));
            }
        }
    }
    // Local-only types never travel; seed them as the node builds them.
    for (t, from) in [
        (MessageType::MsgHup, 0),
        (MessageType::MsgBeat, 0),
        (MessageType::MsgUnreachable, 3),
        (MessageType::MsgSnapStatus, 3),
        (MessageType::MsgCheckQuorum, 0),
    ] {
        by_type.entry(t as i32).or_default().push((
            0,
            Message {
                msg_type: t as i32,
                from,
                ..Default::default()
            },
        ));
    }
    let mut count = 0;
    for (t, list) in &by_type {
        let name = MessageType::try_from(*t)
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|_| format!("type{t}"));
        for (i, (flags, m)) in list.iter().enumerate() {
            let mut bytes = vec![*flags];
            bytes.extend(m.encode_to_vec());
            write(dir, &format!("{name}-{i}"), &bytes);
            count += 1;
        }
    }
    let missing: Vec<i32> = (0..=18).filter(|t| !by_type.contains_key(t)).collect();
    assert!(missing.is_empty(), "no seed for message types {missing:?}");
    println!("step_bytes: {count} files, {} types", by_type.len());
}

/// An operation script for `step_sequence`.
struct Script(Vec<u8>);

impl Script {
    fn new(flags: u8) -> Script {
        Script(vec![flags])
    }
    fn op(mut self, op: Op, operands: &[u8]) -> Script {
        self.0.push(op as u8);
        self.0.extend_from_slice(operands);
        self
    }
    /// Node `id` (1..=4) as the harness encodes it.
    fn elect(self, id: u8) -> Script {
        self.op(Op::Campaign, &[id - 1]).op(Op::Stabilize, &[])
    }
    fn propose(self, id: u8, data: &[u8]) -> Script {
        let mut operands = vec![id - 1, data.len() as u8];
        operands.extend_from_slice(data);
        self.op(Op::Propose, &operands).op(Op::Stabilize, &[])
    }
}

fn step_sequence_corpus(dir: &Path) {
    let mut scripts = Vec::new();
    for flags in 0..4u8 {
        // An election and replication.
        scripts.push(
            Script::new(flags)
                .elect(1)
                .propose(1, b"a")
                .propose(2, b"b"),
        );
        // Elections by timeout, then a competing campaign.
        scripts.push(
            Script::new(flags)
                .op(Op::Ticks, &[0, 31])
                .op(Op::Stabilize, &[])
                .op(Op::Ticks, &[1, 31])
                .op(Op::Ticks, &[2, 31])
                .op(Op::Stabilize, &[])
                .elect(3)
                .propose(3, b"c"),
        );
    }
    // Step-by-step delivery with drops, duplicates and mutations.
    scripts.push(
        Script::new(0)
            .op(Op::Campaign, &[0])
            .op(Op::Ready, &[0])
            .op(Op::Deliver, &[0])
            .op(Op::Duplicate, &[0])
            .op(Op::Drop, &[0])
            .op(Op::Ready, &[1])
            .op(Op::Ready, &[2])
            .op(Op::Deliver, &[0])
            .op(Op::Ready, &[0])
            .op(Op::Mutate, &[0, 0, 0, 1])
            .op(Op::Stabilize, &[]),
    );
    // Reads on the leader and a follower.
    scripts.push(
        Script::new(1)
            .elect(1)
            .propose(1, b"x")
            .op(Op::ReadIndex, &[0, 7])
            .op(Op::ReadIndex, &[1, 8])
            .op(Op::Stabilize, &[]),
    );
    // Membership: add learner 4, promote it, remove it; then a joint change and its leave.
    scripts.push(
        Script::new(0)
            .elect(1)
            .op(Op::ConfChange, &[0, 0])
            .op(Op::Stabilize, &[])
            .op(Op::ConfChange, &[0, 1])
            .op(Op::Stabilize, &[])
            .propose(1, b"y")
            .op(Op::ConfChange, &[0, 2])
            .op(Op::Stabilize, &[]),
    );
    scripts.push(
        Script::new(3)
            .elect(2)
            .op(Op::ConfChange, &[1, 0])
            .op(Op::Stabilize, &[])
            .op(Op::ConfChange, &[1, 4])
            .op(Op::Stabilize, &[])
            .op(Op::ConfChange, &[1, 5])
            .op(Op::Stabilize, &[]),
    );
    // Compaction and a snapshot to a lagging node; unreachable and snapshot reports.
    scripts.push(
        Script::new(0)
            .elect(1)
            .propose(1, b"p")
            .op(Op::Propose, &[0, 1, b'q'])
            .op(Op::Ready, &[0])
            .op(Op::Drop, &[0])
            .op(Op::Drop, &[0])
            .op(Op::Stabilize, &[])
            .propose(1, b"r")
            .op(Op::Compact, &[0])
            .op(Op::ConfChange, &[0, 0])
            .op(Op::Stabilize, &[])
            .op(Op::Ticks, &[0, 5])
            .op(Op::Stabilize, &[])
            .op(Op::Report, &[0, 3, 0])
            .op(Op::Report, &[0, 3, 1])
            .op(Op::Stabilize, &[]),
    );
    // Leadership transfer.
    scripts.push(
        Script::new(2)
            .elect(1)
            .propose(1, b"t")
            .op(Op::Transfer, &[0, 1])
            .op(Op::Stabilize, &[])
            .propose(2, b"u"),
    );
    // A raw message, then heartbeats.
    let raw = Message {
        msg_type: MessageType::MsgHeartbeat as i32,
        to: 2,
        from: 1,
        term: 5,
        commit: 1,
        ..Default::default()
    }
    .encode_to_vec();
    let mut operands = vec![1, raw.len() as u8];
    operands.extend(raw);
    scripts.push(
        Script::new(0)
            .elect(1)
            .op(Op::Raw, &operands)
            .op(Op::Tick, &[0])
            .op(Op::Tick, &[0])
            .op(Op::Stabilize, &[]),
    );
    for (i, s) in scripts.iter().enumerate() {
        write(dir, &format!("script-{i:02}"), &s.0);
    }
    println!("step_sequence: {} files", scripts.len());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, generate) in [
        ("step_bytes", step_bytes_corpus as fn(&Path)),
        ("step_sequence", step_sequence_corpus),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        generate(&dir);
    }
}
