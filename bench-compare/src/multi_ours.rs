//! This library under [`MultiNode`]: one `raft_multi::MultiRaft` per node over `MemStorage`
//! groups, envelopes on the wire.

use raft_core::eraftpb::{Message, MessageType};
use raft_core::StateRole;
use raft_multi::{Envelope, GroupMessage, MultiConfig, MultiRaft};
use storage_mem::MemStorage;

use crate::common::{Settings, LOGGER};
use crate::multi::MultiNode;

/// The context of our quiescing heartbeat (raft-core's `QUIESCE_CTX`): a follower of ours that
/// is caught up sleeps on it without answering.
const QUIESCE_CTX: &[u8] = b"\xA6quiesce";

/// One node of ours: the multi-group driver.
pub struct OursMulti {
    multi: MultiRaft<MemStorage>,
}

/// A caught-up follower's answer to `m`, if it gives one.
fn answer_message(m: &Message) -> Option<Message> {
    let reply = |msg_type: MessageType| Message {
        msg_type: msg_type as i32,
        from: m.to,
        to: m.from,
        term: m.term,
        ..Default::default()
    };
    match MessageType::try_from(m.msg_type).ok()? {
        MessageType::MsgAppend => Some(Message {
            index: m.entries.last().map_or(m.index, |e| e.index),
            commit: m.commit,
            ..reply(MessageType::MsgAppendResponse)
        }),
        MessageType::MsgHeartbeat if m.context.as_ref() == QUIESCE_CTX => None,
        MessageType::MsgHeartbeat => Some(Message {
            commit: m.commit,
            context: m.context.clone(),
            ..reply(MessageType::MsgHeartbeatResponse)
        }),
        MessageType::MsgRequestVote => Some(reply(MessageType::MsgRequestVoteResponse)),
        _ => None,
    }
}

impl MultiNode for OursMulti {
    const NAME: &'static str = "ours";
    type Unit = Envelope;

    fn new(node_id: u64) -> OursMulti {
        let multi = MultiRaft::new(MultiConfig::new(node_id), &LOGGER).expect("driver");
        OursMulti { multi }
    }

    fn add_groups(&mut self, range: std::ops::Range<u64>) {
        let config = crate::ours::config(self.multi.node_id(), Settings::COMMON);
        for group in range {
            self.multi
                .add_group(group, &config, crate::ours::storage())
                .expect("add group");
        }
    }

    fn tick_new(&mut self, _: std::ops::Range<u64>) {
        self.multi.tick();
    }

    fn campaign(&mut self, group: u64) {
        self.multi.campaign(group).expect("campaign");
    }

    fn propose(&mut self, group: u64, data: Vec<u8>) {
        self.multi
            .propose(group, Vec::new(), data)
            .expect("propose");
    }

    fn tick(&mut self) {
        self.multi.tick();
    }

    fn process(&mut self, out: &mut Vec<Envelope>) {
        loop {
            let mut batch = self.multi.ready();
            if batch.is_empty() {
                break;
            }
            for group in batch.groups_mut() {
                let store = self.multi.store(group.group_id()).expect("group");
                let ready = group.ready_mut();
                assert!(ready.snapshot().metadata.is_none(), "unexpected snapshot");
                let mut core = store.wl();
                core.append(ready.entries()).expect("persist entries");
                if let Some(hard_state) = ready.hard_state() {
                    core.set_hardstate(*hard_state);
                }
            }
            // One fsync for the whole batch would go here.
            self.multi.advance(batch);
        }
        out.extend(self.multi.flush());
    }

    fn unit_to(unit: &Envelope) -> u64 {
        unit.to_node
    }

    fn unit_messages(unit: &Envelope) -> usize {
        unit.messages.len()
    }

    fn deliver(&mut self, unit: Envelope) {
        let report = self
            .multi
            .step_envelope(unit)
            .expect("a well-formed envelope");
        assert_eq!(
            report.dropped + report.unknown_group,
            0,
            "every message stepped"
        );
    }

    fn answer(unit: Envelope) -> Option<Envelope> {
        let messages: Vec<GroupMessage> = unit
            .messages
            .iter()
            .filter_map(|gm| {
                let answer = answer_message(gm.message.as_ref()?)?;
                Some(GroupMessage {
                    group_id: gm.group_id,
                    message: Some(answer),
                })
            })
            .collect();
        (!messages.is_empty()).then_some(Envelope {
            from_node: unit.to_node,
            to_node: unit.from_node,
            messages,
        })
    }

    fn leads(&self, group: u64) -> bool {
        self.multi.group_status(group).expect("group").role == StateRole::Leader
    }

    fn indexes(&self, group: u64) -> (u64, u64, u64) {
        let status = self.multi.group_status(group).expect("group");
        (status.last_index, status.commit, status.applied)
    }

    fn quiesced(&self) -> usize {
        self.multi.status().quiesced_groups
    }
}
