//! Received envelopes: checked, split, and each message stepped into its group; a message for an
//! unknown group goes through the application's creator hook.
//!
//! Everything here is untrusted input from the network: nothing in it may panic the driver. An
//! envelope that is malformed or not for this node is refused whole; a message inside it that is
//! impossible is dropped, logged and counted, and the rest are stepped.

use prost::Message as _;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{RawNode, Storage};
use slog::{debug, o, warn};

use crate::driver::NewGroup;
use crate::envelope::Envelope;
use crate::error::EnvelopeError;
use crate::MultiRaft;

/// What became of the messages of one received envelope.
#[derive(Debug, Default, PartialEq)]
pub struct InboundReport {
    /// Messages stepped into their group.
    pub stepped: usize,
    /// Groups created for a message (the creator hook accepted them).
    pub created: usize,
    /// Messages for unknown groups that were dropped: the hook refused, the group is
    /// tombstoned, there is no hook, or the message could not start a group (a response).
    pub unknown_group: usize,
    /// Messages dropped as impossible: missing, addressed to another node, claiming a sender
    /// other than the envelope's, refused by the group's Raft node, or a group the hook
    /// accepted that could not be created.
    pub dropped: usize,
    /// Storage failures of groups while stepping (group id, error): the message is lost, as if
    /// the network had dropped it, and the application decides what to do with the group.
    pub storage_errors: Vec<(u64, raft_core::Error)>,
}

/// Whether a message may be the first a new replica receives: something a leader or a candidate
/// sends to a member. Responses answer something this node sent, so they never create a group.
fn may_start_group(message: &Message) -> bool {
    match MessageType::try_from(message.msg_type) {
        Ok(msg_type) => matches!(
            msg_type,
            MessageType::MsgAppend
                | MessageType::MsgHeartbeat
                | MessageType::MsgSnapshot
                | MessageType::MsgRequestVote
                | MessageType::MsgRequestPreVote
        ),
        Err(_) => false,
    }
}

impl<S: Storage> MultiRaft<S> {
    /// Decodes an envelope received from the network and steps it (see
    /// [`MultiRaft::step_envelope`]). Malformed bytes are refused with an error.
    pub fn step_encoded(&mut self, bytes: &[u8]) -> Result<InboundReport, EnvelopeError> {
        match Envelope::decode(bytes) {
            Ok(envelope) => self.step_envelope(envelope),
            Err(error) => {
                warn!(self.logger, "refused a malformed envelope"; "error" => %error);
                self.metrics.envelopes_refused += 1;
                Err(EnvelopeError::Decode(error))
            }
        }
    }

    /// Splits a received envelope and steps each message into its group, waking it. An envelope
    /// for another node or from an impossible sender is refused whole; impossible messages
    /// inside are dropped and counted (see [`InboundReport`]).
    pub fn step_envelope(&mut self, envelope: Envelope) -> Result<InboundReport, EnvelopeError> {
        let node_id = self.config.node_id;
        if envelope.to_node != node_id {
            warn!(self.logger, "refused an envelope for another node";
                "to" => envelope.to_node, "from" => envelope.from_node);
            self.metrics.envelopes_refused += 1;
            return Err(EnvelopeError::WrongNode {
                to_node: envelope.to_node,
                node_id,
            });
        }
        if envelope.from_node == 0 || envelope.from_node == node_id {
            warn!(self.logger, "refused an envelope from an impossible sender";
                "from" => envelope.from_node);
            self.metrics.envelopes_refused += 1;
            return Err(EnvelopeError::BadSender(envelope.from_node));
        }
        self.metrics.envelopes_received += 1;
        let from_node = envelope.from_node;
        let mut report = InboundReport::default();
        let mut messages = envelope.messages;
        for group_message in messages.drain(..) {
            let group_id = group_message.group_id;
            let Some(message) = group_message.message else {
                warn!(self.logger, "dropped an empty group message"; "group" => group_id);
                report.dropped += 1;
                continue;
            };
            if message.to != node_id || message.from != from_node {
                warn!(self.logger, "dropped a message with the wrong addressee or sender";
                    "group" => group_id, "to" => message.to, "from" => message.from,
                    "envelope_from" => from_node);
                report.dropped += 1;
                continue;
            }
            self.step_one(group_id, from_node, message, &mut report);
        }
        // The emptied buffer carries this node's next envelope (no allocation per flush).
        self.outbox.recycle(messages);
        self.metrics.messages_stepped += report.stepped as u64;
        self.metrics.groups_created_on_message += report.created as u64;
        self.metrics.unknown_group_dropped += report.unknown_group as u64;
        self.metrics.messages_dropped += report.dropped as u64;
        Ok(report)
    }

    fn step_one(
        &mut self,
        group_id: u64,
        from_node: u64,
        message: Message,
        report: &mut InboundReport,
    ) {
        let slot = match self.groups.slot_of(group_id) {
            Some(slot) => slot,
            None => match self.create_for(group_id, from_node, &message, report) {
                Some(slot) => slot,
                None => return,
            },
        };
        self.groups.touch(slot);
        let node = self
            .groups
            .node_at(slot)
            .expect("an indexed slot holds its group");
        match node.step(message) {
            Ok(()) => report.stepped += 1,
            Err(raft_core::Error::Store(error)) => {
                warn!(self.logger, "storage failed while stepping a message";
                    "group" => group_id, "error" => %error);
                report
                    .storage_errors
                    .push((group_id, raft_core::Error::Store(error)));
            }
            Err(error) => {
                debug!(self.logger, "the group refused a message";
                    "group" => group_id, "error" => %error);
                report.dropped += 1;
            }
        }
    }

    /// Asks the creator hook about a message for an unknown group; returns the new group's slot
    /// if it was created.
    fn create_for(
        &mut self,
        group_id: u64,
        from_node: u64,
        message: &Message,
        report: &mut InboundReport,
    ) -> Option<u32> {
        if self.tombstones.contains(&group_id) {
            debug!(self.logger, "dropped a message for a removed group"; "group" => group_id);
            report.unknown_group += 1;
            return None;
        }
        if !may_start_group(message) {
            debug!(self.logger, "dropped a message that cannot start a group";
                "group" => group_id, "type" => message.msg_type);
            report.unknown_group += 1;
            return None;
        }
        let decision = match self.creator.as_mut() {
            Some(creator) => creator(group_id, from_node, message),
            None => NewGroup::Refuse,
        };
        let NewGroup::Create(config, storage) = decision else {
            debug!(self.logger, "refused a message for an unknown group";
                "group" => group_id, "from" => from_node);
            report.unknown_group += 1;
            return None;
        };
        if config.id != self.config.node_id {
            warn!(self.logger, "the creator hook gave a config for another replica";
                "group" => group_id, "config_id" => config.id);
            report.dropped += 1;
            return None;
        }
        let logger = self.logger.new(o!("group" => group_id));
        match RawNode::new(&config, storage, &logger) {
            Ok(node) => {
                report.created += 1;
                debug!(self.logger, "created a group for its first message";
                    "group" => group_id, "from" => from_node);
                Some(self.groups.insert(group_id, node))
            }
            Err(error) => {
                warn!(self.logger, "could not create a group for a message";
                    "group" => group_id, "error" => %error);
                if matches!(error, raft_core::Error::Store(_)) {
                    report.storage_errors.push((group_id, error));
                } else {
                    report.dropped += 1;
                }
                None
            }
        }
    }
}
