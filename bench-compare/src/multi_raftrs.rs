//! raft-rs 0.7 under [`MultiNode`]: one `RawNode` per group (the nodes of W1-W4's harness), each
//! message on the wire on its own, tagged with its group. Only groups ticked or stepped since
//! the last pass are asked for a Ready (as a raft-rs application tracking touched groups does).

use raft::eraftpb::{Message, MessageType};

use crate::common::{Lib, Settings};
use crate::multi::MultiNode;
use crate::raftrs::{Node, RaftRs};

/// One node of raft-rs groups.
pub struct RaftRsMulti {
    node_id: u64,
    groups: Vec<Node>,
    dirty: Vec<u32>,
    in_dirty: Vec<bool>,
    sent: Vec<Message>,
}

/// A group's message on the wire.
pub struct Unit {
    group: u64,
    message: Message,
}

fn answer_message(m: &Message) -> Option<Message> {
    let reply = |msg_type: MessageType| Message {
        msg_type,
        from: m.to,
        to: m.from,
        term: m.term,
        ..Default::default()
    };
    match m.msg_type {
        MessageType::MsgAppend => Some(Message {
            index: m.entries.last().map_or(m.index, |e| e.index),
            commit: m.commit,
            ..reply(MessageType::MsgAppendResponse)
        }),
        MessageType::MsgHeartbeat => Some(Message {
            commit: m.commit,
            context: m.context.clone(),
            ..reply(MessageType::MsgHeartbeatResponse)
        }),
        MessageType::MsgRequestVote => Some(reply(MessageType::MsgRequestVoteResponse)),
        _ => None,
    }
}

impl RaftRsMulti {
    fn touch(&mut self, index: usize) {
        if !self.in_dirty[index] {
            self.in_dirty[index] = true;
            self.dirty.push(index as u32);
        }
    }

    fn node(&mut self, group: u64) -> &mut Node {
        &mut self.groups[group as usize - 1]
    }
}

impl MultiNode for RaftRsMulti {
    const NAME: &'static str = "raftrs";
    type Unit = Unit;

    fn new(node_id: u64) -> RaftRsMulti {
        RaftRsMulti {
            node_id,
            groups: Vec::new(),
            dirty: Vec::new(),
            in_dirty: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn add_groups(&mut self, range: std::ops::Range<u64>) {
        assert_eq!(
            range.start,
            self.groups.len() as u64 + 1,
            "groups come in order"
        );
        for _ in range {
            self.groups
                .push(RaftRs::new_node(self.node_id, Settings::COMMON));
            self.in_dirty.push(false);
        }
    }

    fn tick_new(&mut self, range: std::ops::Range<u64>) {
        for group in range {
            let index = group as usize - 1;
            RaftRs::tick(&mut self.groups[index]);
            self.touch(index);
        }
    }

    fn campaign(&mut self, group: u64) {
        RaftRs::campaign(self.node(group));
        self.touch(group as usize - 1);
    }

    fn propose(&mut self, group: u64, data: Vec<u8>) {
        RaftRs::propose(self.node(group), data);
        self.touch(group as usize - 1);
    }

    fn tick(&mut self) {
        for index in 0..self.groups.len() {
            RaftRs::tick(&mut self.groups[index]);
            self.touch(index);
        }
    }

    fn process(&mut self, out: &mut Vec<Unit>) {
        let dirty = std::mem::take(&mut self.dirty);
        for index in &dirty {
            let index = *index as usize;
            self.in_dirty[index] = false;
            let node = &mut self.groups[index];
            while RaftRs::has_ready(node) {
                RaftRs::handle_ready(node, &mut self.sent);
            }
            let group = index as u64 + 1;
            out.extend(self.sent.drain(..).map(|message| Unit { group, message }));
        }
        if self.dirty.is_empty() {
            self.dirty = dirty;
            self.dirty.clear();
        }
    }

    fn unit_to(unit: &Unit) -> u64 {
        unit.message.to
    }

    fn unit_messages(_: &Unit) -> usize {
        1
    }

    fn deliver(&mut self, unit: Unit) {
        RaftRs::step(self.node(unit.group), unit.message);
        self.touch(unit.group as usize - 1);
    }

    fn answer(unit: Unit) -> Option<Unit> {
        let message = answer_message(&unit.message)?;
        Some(Unit {
            group: unit.group,
            message,
        })
    }

    fn leads(&self, group: u64) -> bool {
        RaftRs::is_leader(&self.groups[group as usize - 1])
    }

    fn indexes(&self, group: u64) -> (u64, u64, u64) {
        let inspect = RaftRs::inspect(&self.groups[group as usize - 1]);
        (inspect.last_index, inspect.committed, inspect.applied)
    }

    fn quiesced(&self) -> usize {
        0
    }
}
