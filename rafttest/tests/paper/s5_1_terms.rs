//! §5.1 Raft basics: terms. A node adopts any higher term it sees and steps down; messages of
//! a stale term are ignored or answered with the newer term.

use crate::common::*;
use crate::node_in_role;
use raft_core::eraftpb::MessageType;
use raft_core::StateRole;

/// §5.1: whatever its role, a node that sees a higher term adopts it and becomes a follower (of the
/// sender if the message comes from a leader, of nobody otherwise).
fn assert_steps_down_on_higher_term(role: StateRole) {
    let kinds = [
        MessageType::MsgAppend,
        MessageType::MsgHeartbeat,
        MessageType::MsgRequestVote,
        MessageType::MsgAppendResponse,
    ];
    for kind in kinds {
        let mut r = node_in_role(role);
        r.step(msg(kind, 2, 1, 2))
            .unwrap_or_else(|e| panic!("{role:?} refused a higher-term {kind:?}: {e}"));
        assert_eq!(r.term, 2, "{role:?} did not adopt the term of a {kind:?}");
        assert_eq!(
            r.state,
            StateRole::Follower,
            "{role:?} did not become follower on a higher-term {kind:?}"
        );
        let want_leader = match kind {
            MessageType::MsgAppend | MessageType::MsgHeartbeat => 2,
            _ => 0,
        };
        assert_eq!(
            r.leader_id, want_leader,
            "{role:?} followed the wrong leader after a higher-term {kind:?}"
        );
        // A vote request may have been granted in the new term; any other vote is from the old one.
        let fresh_vote = r.vote == 0 || (kind == MessageType::MsgRequestVote && r.vote == 2);
        assert!(
            fresh_vote,
            "{role:?} kept vote {} of an older term after a {kind:?}",
            r.vote
        );
    }
}

// §5.1
#[test]
fn follower_adopts_higher_term_and_stays_follower() {
    assert_steps_down_on_higher_term(StateRole::Follower);
}

// §5.1
#[test]
fn candidate_adopts_higher_term_and_becomes_follower() {
    assert_steps_down_on_higher_term(StateRole::Candidate);
}

// §5.1 (and thesis §9.6 for the pre-candidate)
#[test]
fn pre_candidate_adopts_higher_term_and_becomes_follower() {
    assert_steps_down_on_higher_term(StateRole::PreCandidate);
}

// §5.1
#[test]
fn leader_adopts_higher_term_and_becomes_follower() {
    assert_steps_down_on_higher_term(StateRole::Leader);
}

// §5.1: "If a server receives a request with a stale term number, it rejects the request."
// Without pre-vote or check-quorum, etcd and raft-rs stay silent; so does this core, except that
// a stale vote request is rejected in the voter's term, as the paper's RequestVote answers (a
// candidate that could win must learn the term it has to pass: found by the simulator, seed 1922).
#[test]
fn stale_term_messages_are_ignored_without_prevote_or_check_quorum() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_follower(2, 2);
    let stale = [
        append_msg(3, 1, 1, (0, 0), vec![ent(1, 1)], 1),
        msg(MessageType::MsgHeartbeat, 3, 1, 1),
        vote_request(MessageType::MsgRequestVote, 3, 1, 1, 5, 1),
        msg(MessageType::MsgAppendResponse, 3, 1, 1),
    ];
    for m in stale {
        let kind = mtype(&m);
        r.step(m).unwrap();
        assert_eq!(r.term, 2, "a stale {kind:?} changed the term");
        assert_eq!(
            r.state,
            StateRole::Follower,
            "a stale {kind:?} changed the role"
        );
        assert_eq!(r.leader_id, 2, "a stale {kind:?} changed the leader");
        assert_eq!(r.vote, 0, "a stale {kind:?} got a vote");
        assert_eq!(
            r.raft_log.last_index(),
            0,
            "a stale {kind:?} changed the log"
        );
        let out = r.read_messages();
        if kind == MessageType::MsgRequestVote {
            assert_eq!(out.len(), 1, "{out:?}");
            let answer = &out[0];
            assert_eq!(
                (mtype(answer), answer.to, answer.term, answer.reject),
                (MessageType::MsgRequestVoteResponse, 3, 2, true),
                "a stale vote request is rejected in the voter's term"
            );
        } else {
            assert!(out.is_empty(), "a stale {kind:?} was answered: {out:?}");
        }
    }
}

// §5.1 with check-quorum or pre-vote (INTEROP.md "Terms"): a stale leader's append or heartbeat is
// answered with an empty MsgAppendResponse carrying the newer term, which deposes it.
#[test]
fn stale_append_and_heartbeat_answered_with_newer_term_under_prevote_or_check_quorum() {
    for (pre_vote, check_quorum) in [(true, false), (false, true), (true, true)] {
        let mut cfg = config(1);
        cfg.pre_vote = pre_vote;
        cfg.check_quorum = check_quorum;
        let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[], 0, 0));
        r.become_follower(2, 2);
        for stale in [
            append_msg(3, 1, 1, (0, 0), vec![ent(1, 1)], 0),
            msg(MessageType::MsgHeartbeat, 3, 1, 1),
        ] {
            let kind = mtype(&stale);
            r.step(stale).unwrap();
            let out = r.read_messages();
            assert_eq!(
                out.len(),
                1,
                "pre_vote={pre_vote} check_quorum={check_quorum}: a stale {kind:?} must get one answer, got {out:?}"
            );
            let resp = &out[0];
            assert_eq!(mtype(resp), MessageType::MsgAppendResponse);
            assert_eq!((resp.to, resp.term), (3, 2), "answer to a stale {kind:?}");
            assert!(!resp.reject && resp.entries.is_empty() && resp.index == 0);
            assert_eq!(
                (r.term, r.leader_id),
                (2, 2),
                "a stale {kind:?} changed the node"
            );
            assert_eq!(
                r.raft_log.last_index(),
                0,
                "a stale {kind:?} changed the log"
            );
        }
    }
}

// §5.1 with pre-vote (INTEROP.md "Terms"): a lower-term pre-vote is rejected with our term.
#[test]
fn stale_pre_vote_is_rejected_with_own_term() {
    let mut cfg = config(1);
    cfg.pre_vote = true;
    let mut r = raft_with(
        &cfg,
        storage_with(&[1, 2, 3], &[ent(1, 1), ent(2, 2)], 3, 1),
    );
    r.step(vote_request(MessageType::MsgRequestPreVote, 2, 1, 2, 9, 2))
        .unwrap();
    let out = r.read_messages();
    assert_eq!(out.len(), 1, "a stale pre-vote must be answered: {out:?}");
    let resp = &out[0];
    assert_eq!(mtype(resp), MessageType::MsgRequestPreVoteResponse);
    assert!(resp.reject, "a stale pre-vote was granted");
    assert_eq!(
        (resp.to, resp.term),
        (2, 3),
        "the rejection must carry our term"
    );
    assert_eq!(
        (resp.commit, resp.commit_term),
        (1, 1),
        "the rejection must carry our commit and its term"
    );
    assert_eq!(r.term, 3, "a stale pre-vote changed our term");
}
