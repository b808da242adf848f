//! Term overflow: messages of term u64::MAX, and a node at term u64::MAX.

use crate::fixtures::{candidate, follower, leader, meta, msg, Node, State};
use raft_core::eraftpb::{Entry, HardState, Message, MessageType, Snapshot};
use raft_core::{Error, StateRole};
use storage_mem::{conf_state, MemStorage};

/// Every peer message type at term u64::MAX, into each role: no arithmetic overflows. A message
/// of a higher term is adopted (§5.1) unless refused up front, and then nothing changes.
#[test]
fn messages_of_term_u64_max_never_overflow_and_are_adopted_or_refused_cleanly() {
    let types = [
        MessageType::MsgPropose,
        MessageType::MsgAppend,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgSnapshot,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
    ];
    for (name, build) in [
        ("leader", leader as fn() -> Node),
        ("follower", follower),
        ("candidate", candidate),
    ] {
        for t in types {
            let mut n = build();
            let id = n.raw.raft.id;
            let from = if id == 3 { 2 } else { 3 };
            let mut m = Message {
                index: 4,
                log_term: u64::MAX,
                commit: 3,
                ..msg(t, from, id, u64::MAX)
            };
            if matches!(t, MessageType::MsgReadIndex | MessageType::MsgReadIndexResp) {
                m.entries = vec![Entry::default()];
            }
            if t == MessageType::MsgSnapshot {
                m.snapshot = Some(Box::new(Snapshot {
                    metadata: Some(meta(20, u64::MAX, &[1, 2, 3])),
                    ..Default::default()
                }));
            }
            let before = State::of(&n);
            let result = n.raw.step(m);
            let r = &n.raw.raft;
            match &result {
                Err(Error::ProposalDropped) | Err(Error::ReadIndexDropped) | Ok(()) => {}
                Err(e) => {
                    assert_eq!(
                        State::of(&n),
                        before,
                        "{name}: {t:?} refused with {e} changed state"
                    )
                }
            }
            // Proposals and reads travel without a term and depose no one; a pre-vote request and
            // a granted pre-vote do not start a term (thesis §9.6).
            let keeps_term = matches!(
                t,
                MessageType::MsgPropose
                    | MessageType::MsgReadIndex
                    | MessageType::MsgRequestPreVote
                    | MessageType::MsgRequestPreVoteResponse
            );
            if result.is_ok() && !keeps_term {
                assert_eq!(
                    r.term,
                    u64::MAX,
                    "{name}: {t:?} of term u64::MAX not adopted"
                );
            }
            for m in n.queued() {
                assert!(
                    m.term == 0 || m.term == u64::MAX || m.term == r.term,
                    "{name}: after {t:?} a message with a wrapped term: {}",
                    raft_proto::describe_message(&m)
                );
            }
            // The Ready cycle works at term u64::MAX.
            n.settle();
        }
    }
}

/// A node at term u64::MAX cannot start a new term: campaigning, an election timeout and a
/// transfer's MsgTimeoutNow all leave it a follower at u64::MAX, asking no one for votes.
#[test]
fn a_node_at_term_u64_max_refuses_to_campaign() {
    for pre_vote in [false, true] {
        let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
        store.wl().set_hardstate(HardState {
            term: u64::MAX,
            vote: 0,
            commit: 0,
        });
        let mut n = Node::over(2, store, |c| c.pre_vote = pre_vote);
        let before = State::of(&n);
        n.raw.campaign().expect("campaign is refused quietly");
        assert_eq!(
            State::of(&n),
            before,
            "campaign at u64::MAX changed the node"
        );
        for _ in 0..100 {
            n.raw.tick();
        }
        let r = &n.raw.raft;
        assert_eq!(
            (r.state, r.term, r.vote),
            (StateRole::Follower, u64::MAX, 0),
            "an election timeout at u64::MAX started a campaign (pre_vote {pre_vote})"
        );
        assert!(
            n.queued().is_empty(),
            "vote requests sent: {:?}",
            n.queued()
        );
        n.raw
            .step(msg(MessageType::MsgTimeoutNow, 1, 2, u64::MAX))
            .expect("MsgTimeoutNow is accepted");
        let r = &n.raw.raft;
        assert_eq!(
            (r.state, r.term),
            (StateRole::Follower, u64::MAX),
            "MsgTimeoutNow at u64::MAX started a campaign"
        );
        assert!(
            n.queued().is_empty(),
            "vote requests sent: {:?}",
            n.queued()
        );
    }
}
