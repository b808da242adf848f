//! Who sent a message and to whom: responses from unknown peers, local-only message types,
//! unknown type values, messages for another node, vote requests from node 0, and messages that
//! lack what their type needs (one entry for reads, a term for peers' messages, an acknowledged
//! index the leader has).

use crate::fixtures::{
    append, assert_invalid, assert_refused, candidate, entry, follower, leader, msg, Node, State,
};
use raft_core::eraftpb::{Message, MessageType};
use raft_core::Error;

#[test]
fn responses_from_a_node_outside_the_configuration_are_refused_with_step_peer_not_found() {
    let types = [
        MessageType::MsgAppendResponse,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVoteResponse,
    ];
    for (name, build, term) in [
        ("leader", leader as fn() -> Node, 1),
        ("follower", follower, 2),
        ("candidate", candidate, 1),
    ] {
        for t in types {
            for from in [4, 99, u64::MAX] {
                let mut n = build();
                let m = Message {
                    index: 1,
                    ..msg(t, from, n.raw.raft.id, term)
                };
                let before = State::of(&n);
                let result = n.raw.step(m);
                assert_eq!(
                    result,
                    Err(Error::StepPeerNotFound { msg_type: t, from }),
                    "{name}: {t:?} from unknown node {from}"
                );
                assert_eq!(
                    State::of(&n),
                    before,
                    "{name}: refusing {t:?} changed state"
                );
            }
        }
    }
}

/// `MsgHup`, `MsgBeat`, `MsgUnreachable`, `MsgSnapStatus` and `MsgCheckQuorum` are built by the
/// node for itself; from the network they would let anyone start elections or reset progress.
#[test]
fn local_message_types_from_the_network_are_refused_with_step_local_msg() {
    let local = [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
        MessageType::MsgCheckQuorum,
    ];
    for build in [leader as fn() -> Node, follower, candidate] {
        for t in local {
            for (from, term) in [(0, 0), (2, 1), (3, 7)] {
                let mut n = build();
                let to = n.raw.raft.id;
                assert_refused(&mut n, msg(t, from, to, term), &Error::StepLocalMsg(t));
            }
        }
    }
}

#[test]
fn unknown_message_type_values_are_refused() {
    for value in [19, 20, 100, -1, i32::MAX, i32::MIN] {
        let mut n = follower();
        let m = Message {
            msg_type: value,
            from: 1,
            to: 2,
            term: 2,
            ..Default::default()
        };
        assert_refused(&mut n, m, &Error::UnknownMessageType(value));
    }
}

#[test]
fn message_addressed_to_another_node_is_rejected() {
    for to in [1, 3, 99, u64::MAX] {
        let mut n = follower();
        let mut m = append(1, to, 2, 4, 2, 4);
        m.entries = vec![entry(5, 2)];
        assert_invalid(&mut n, m, "another node");
        // A vote request for someone else must not earn our vote either.
        let m = Message {
            index: 10,
            log_term: 5,
            ..msg(MessageType::MsgRequestVote, 3, to, 5)
        };
        assert_invalid(&mut n, m, "another node");
    }
}

#[test]
fn vote_requests_from_node_0_are_rejected() {
    for t in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        for n in [follower(), leader(), candidate()] {
            let mut n = n;
            let id = n.raw.raft.id;
            let term = n.raw.raft.term + 1;
            let m = Message {
                index: 10,
                log_term: term,
                ..msg(t, 0, id, term)
            };
            assert_invalid(&mut n, m, "sender");
        }
    }
}

#[test]
fn read_index_messages_without_exactly_one_entry_are_rejected() {
    for t in [MessageType::MsgReadIndex, MessageType::MsgReadIndexResp] {
        for entries in [vec![], vec![entry(0, 0), entry(0, 0)]] {
            for n in [follower(), leader()] {
                let mut n = n;
                let id = n.raw.raft.id;
                let from = if id == 1 { 2 } else { 1 };
                // Requests travel without a term, answers with the leader's.
                let term = if t == MessageType::MsgReadIndex {
                    0
                } else {
                    n.raw.raft.term
                };
                let m = Message {
                    entries: entries.clone(),
                    index: 1,
                    ..msg(t, from, id, term)
                };
                assert_invalid(&mut n, m, "one entry");
            }
        }
    }
}

/// Messages of peers (not proposals or reads, which are forwarded without one) carry a term.
#[test]
fn peer_messages_without_a_term_are_rejected() {
    for t in [
        MessageType::MsgAppend,
        MessageType::MsgHeartbeat,
        MessageType::MsgRequestVote,
        MessageType::MsgTimeoutNow,
        MessageType::MsgSnapshot,
    ] {
        let mut n = follower();
        assert_invalid(&mut n, msg(t, 1, 2, 0), "term");
    }
}

#[test]
fn append_response_acknowledging_past_the_leaders_last_index_is_rejected() {
    let mut n = leader();
    for index in [4, 1_000, u64::MAX] {
        let m = Message {
            index,
            ..msg(MessageType::MsgAppendResponse, 2, 1, 1)
        };
        assert_invalid(&mut n, m, "beyond");
    }
}
