//! Refusing impossible input before it can change any state (DESIGN.md §5).
//!
//! Every check here looks only at the message and at state that handling it would not have changed
//! yet, so a refused message leaves the node exactly as it was.

use super::{Raft, StateRole, INVALID_ID};
use crate::error::{Error, Result};
use crate::storage::Storage;
use raft_proto::eraftpb::{Message, MessageType};
use slog::warn;

/// Message types that only the local node creates; they never arrive from the network.
pub fn is_local_msg(msg_type: MessageType) -> bool {
    matches!(
        msg_type,
        MessageType::MsgHup
            | MessageType::MsgBeat
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
            | MessageType::MsgCheckQuorum
    )
}

/// Message types that answer a request of this node.
pub fn is_response_msg(msg_type: MessageType) -> bool {
    matches!(
        msg_type,
        MessageType::MsgAppendResponse
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgUnreachable
            | MessageType::MsgRequestPreVoteResponse
    )
}

/// The largest log index a message may name. No real log comes near it, and the room above it keeps
/// every `index + 1` of the core from overflowing, whatever a peer claims.
pub const MAX_INDEX: u64 = u64::MAX / 2;

/// Message types that may travel without a term (local messages, forwarded proposals and reads).
fn may_lack_term(msg_type: MessageType) -> bool {
    is_local_msg(msg_type)
        || matches!(
            msg_type,
            MessageType::MsgPropose | MessageType::MsgReadIndex | MessageType::MsgTransferLeader
        )
}

impl<T: Storage> Raft<T> {
    pub(super) fn validate(&self, m: &Message, msg_type: MessageType) -> Result<()> {
        let reject = |reason: &'static str| {
            warn!(self.log(), "rejected message"; "msg" => ?msg_type, "from" => m.from,
                "term" => m.term, "reason" => reason);
            Err(Error::InvalidMessage {
                msg_type,
                from: m.from,
                reason,
            })
        };
        if m.from == INVALID_ID && !is_local_msg(msg_type) {
            return reject("the sender id is 0");
        }
        if m.to != INVALID_ID && m.to != self.id {
            return reject("addressed to another node");
        }
        if m.term == 0 && !may_lack_term(msg_type) {
            return reject("this message type must carry a term");
        }
        match msg_type {
            MessageType::MsgAppend => self.validate_append(m).or_else(reject),
            MessageType::MsgHeartbeat
                if m.term >= self.term && m.commit > self.raft_log.last_index() =>
            {
                reject("heartbeat commit index is beyond our last index")
            }
            MessageType::MsgAppendResponse
                if self.state == StateRole::Leader
                    && m.term == self.term
                    && !m.reject
                    && m.index > self.raft_log.last_index() =>
            {
                reject("acknowledges an index beyond the leader's last index")
            }
            MessageType::MsgReadIndex | MessageType::MsgReadIndexResp if m.entries.len() != 1 => {
                reject("a read request or response carries exactly one entry (its context)")
            }
            MessageType::MsgSnapshot => match m.snapshot.as_ref().and_then(|s| s.metadata.as_ref())
            {
                None => reject("snapshot message without a snapshot or its metadata"),
                Some(meta) if meta.index == 0 || meta.term == 0 => {
                    reject("a snapshot must cover at least one entry of a real term")
                }
                Some(meta) if meta.index > MAX_INDEX => {
                    reject("the snapshot index overflows the index space (above u64::MAX / 2)")
                }
                Some(meta)
                    if meta
                        .conf_state
                        .as_ref()
                        .is_none_or(|cs| cs.voters.is_empty()) =>
                {
                    reject("the snapshot has no membership: a group at a snapshot has voters")
                }
                Some(meta) if meta.term > m.term => {
                    reject("the snapshot's term is above the message term")
                }
                Some(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn validate_append(&self, m: &Message) -> core::result::Result<(), &'static str> {
        if m.log_term > m.term {
            return Err("the previous entry's term is above the message term");
        }
        let count = m.entries.len() as u64;
        if m.index.checked_add(count).is_none_or(|end| end > MAX_INDEX) {
            return Err("entry indexes overflow the index space (above u64::MAX / 2)");
        }
        let mut prev_term = m.log_term;
        for (i, e) in m.entries.iter().enumerate() {
            if e.index != m.index + 1 + i as u64 {
                return Err("entries are not contiguous after the previous index");
            }
            if e.term < prev_term || e.term > m.term {
                return Err("entry terms must not decrease and must not exceed the message term");
            }
            prev_term = e.term;
        }
        Ok(())
    }
}
