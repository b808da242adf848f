//! What a `Ready` holds: its number, `messages` versus `persisted_messages`, `must_sync`, and
//! hard and soft state reported only when they change.

use crate::harness::*;
use raft_core::eraftpb::MessageType;
use raft_core::{Config, SoftState, StateRole};

// ---------------------------------------------------------------------------------------------
// Ready numbering.
// ---------------------------------------------------------------------------------------------

#[test]
fn ready_numbers_start_at_one_and_increase_by_one() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let mut numbers = Vec::new();
    for i in 0..5u8 {
        let rd = p.node.ready().unwrap();
        numbers.push(rd.number());
        p.node.advance(rd).unwrap();
        p.node.propose(vec![], vec![i]).unwrap();
    }
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
}

#[test]
fn ready_numbers_increase_while_readys_are_not_yet_advanced() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd1 = p.node.ready().unwrap();
    p.node.propose(vec![], b"a".to_vec()).unwrap();
    let rd2 = p.node.ready().unwrap();
    p.node.propose(vec![], b"b".to_vec()).unwrap();
    let rd3 = p.node.ready().unwrap();
    assert_eq!((rd1.number(), rd2.number(), rd3.number()), (1, 2, 3));
    // Each Ready hands out only what was not handed out before.
    assert_eq!(indexes(rd1.entries()), vec![1]);
    assert_eq!(indexes(rd2.entries()), vec![2]);
    assert_eq!(indexes(rd3.entries()), vec![3]);
}

// ---------------------------------------------------------------------------------------------
// messages() versus persisted_messages().
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_appends_are_in_messages_not_persisted_messages() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(
        types(rd.messages()),
        vec![(MessageType::MsgAppend, 2), (MessageType::MsgAppend, 3)]
    );
    for m in rd.messages() {
        assert_eq!(m.entries, vec![ent(2, 1, b"x")], "append to {}", m.to);
    }
    assert!(
        rd.persisted_messages().is_empty(),
        "a leader's appends may leave before it persists (thesis §10.2.1): {:?}",
        rd.persisted_messages()
    );
    c.process(1, rd);
    c.stabilize();
}

#[test]
fn leader_heartbeats_are_in_messages() {
    let mut c = elected_cluster();
    c.peer(1).node.tick(); // heartbeat_tick is 1
    let rd = c.peer(1).ready();
    assert_eq!(
        types(rd.messages()),
        vec![
            (MessageType::MsgHeartbeat, 2),
            (MessageType::MsgHeartbeat, 3)
        ]
    );
    assert!(rd.persisted_messages().is_empty());
    assert!(!rd.must_sync(), "heartbeats need no persistence");
    assert_eq!(rd.hard_state(), None);
}

#[test]
fn follower_append_response_is_in_persisted_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgAppendResponse, 1)],
        "an append acknowledgement promises durable entries"
    );
    assert_eq!(rd.persisted_messages()[0].index, 1);
    assert!(!rd.persisted_messages()[0].reject);
}

#[test]
fn follower_heartbeat_response_is_in_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    p.drain();
    p.step(heartbeat(1, 2, 1, 0));
    let rd = p.ready();
    assert_eq!(
        types(rd.messages()),
        vec![(MessageType::MsgHeartbeatResponse, 1)]
    );
    assert!(rd.persisted_messages().is_empty());
}

#[test]
fn voter_vote_response_is_in_persisted_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(vote_request(1, 2, 1, (0, 0)));
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgRequestVoteResponse, 1)],
        "a vote must be durable before it is sent (§5.2)"
    );
    assert!(!rd.persisted_messages()[0].reject);
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.must_sync());
}

#[test]
fn candidate_vote_requests_are_in_persisted_messages() {
    let mut p = Peer::fresh(&config(1), &[1, 2, 3]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![
            (MessageType::MsgRequestVote, 2),
            (MessageType::MsgRequestVote, 3)
        ],
        "a candidate's own term and vote must be durable before it asks for votes"
    );
    assert!(rd.persisted_messages().iter().all(|m| m.term == 1));
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 0,
            raft_state: StateRole::Candidate
        })
    );
    assert!(rd.must_sync());
}

fn pre_vote_config(id: u64) -> Config {
    Config {
        pre_vote: true,
        ..config(id)
    }
}

#[test]
fn pre_candidate_requests_are_in_messages_and_persist_nothing() {
    let mut p = Peer::fresh(&pre_vote_config(1), &[1, 2, 3]);
    p.node.campaign().unwrap();
    assert_eq!(p.node.raft.state, StateRole::PreCandidate);
    let rd = p.ready();
    assert_eq!(
        types(rd.messages()),
        vec![
            (MessageType::MsgRequestPreVote, 2),
            (MessageType::MsgRequestPreVote, 3)
        ]
    );
    // A pre-vote asks about the next term without moving to it (thesis §9.6).
    assert!(rd.messages().iter().all(|m| m.term == 1));
    assert!(rd.persisted_messages().is_empty());
    assert_eq!(
        rd.hard_state(),
        None,
        "a pre-candidate keeps its term and vote"
    );
    assert!(!rd.must_sync());
}

#[test]
fn won_pre_vote_moves_on_to_vote_requests_in_persisted_messages() {
    let mut c = Cluster::new(3, pre_vote_config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    let pre_votes = rd.messages().to_vec();
    c.process(1, rd);
    c.net.clear();
    // One granted pre-vote makes a quorum of three.
    c.deliver(pre_votes[0].clone());
    let rd = c.peer(2).ready();
    let grants = rd.persisted_messages().to_vec();
    assert_eq!(
        types(&grants),
        vec![(MessageType::MsgRequestPreVoteResponse, 1)]
    );
    c.process(2, rd);
    c.net.clear();
    c.deliver(grants[0].clone());
    assert_eq!(c.peer(1).node.raft.state, StateRole::Candidate);
    let rd = c.peer(1).ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![
            (MessageType::MsgRequestVote, 2),
            (MessageType::MsgRequestVote, 3)
        ]
    );
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.must_sync());
}

// ---------------------------------------------------------------------------------------------
// must_sync.
// ---------------------------------------------------------------------------------------------

/// Follower 2 of {1, 2, 3} that holds entries 1..=2 of term 1 (persisted), commit 0.
fn follower_with_two_entries() -> Peer {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(
        1,
        2,
        1,
        (0, 0),
        vec![ent(1, 1, b"a"), ent(2, 1, b"b")],
        0,
    ));
    let rd = p.ready();
    assert!(rd.must_sync(), "a Ready with entries must sync");
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 0)));
    p.process(rd);
    assert!(!p.node.has_ready());
    p
}

#[test]
fn must_sync_when_the_ready_has_entries_even_if_hard_state_is_unchanged() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![ent(3, 1, b"c")], 0));
    let rd = p.ready();
    assert_eq!(indexes(rd.entries()), vec![3]);
    assert_eq!(rd.hard_state(), None);
    assert!(rd.must_sync());
}

#[test]
fn must_sync_when_only_the_term_changes() {
    let mut p = follower_with_two_entries();
    p.step(heartbeat(3, 2, 2, 0));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(2, 0, 0)));
    assert!(rd.must_sync(), "a new term must be durable");
}

#[test]
fn must_sync_when_only_the_vote_changes() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    // A response of a higher term moves node 2 to term 1 with no vote and no leader.
    p.step(msg(MessageType::MsgAppendResponse, 3, 2, 1));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 0)));
    p.process(rd);
    p.step(vote_request(1, 2, 1, (0, 0)));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.entries().is_empty());
    assert!(rd.must_sync(), "a vote must be durable (§5.2)");
}

#[test]
fn must_sync_is_false_when_a_heartbeat_only_advances_commit() {
    let mut p = follower_with_two_entries();
    p.step(heartbeat(1, 2, 1, 2));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    assert!(
        !rd.must_sync(),
        "the commit index can be recovered from a quorum: no fsync needed"
    );
    // The entries were persisted by an earlier Ready, so they are handed out now.
    assert_eq!(indexes(rd.committed_entries()), vec![1, 2]);
}

#[test]
fn must_sync_is_false_when_an_empty_append_only_advances_commit() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![], 2));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    assert!(!rd.must_sync());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgAppendResponse, 1)]
    );
    assert_eq!(indexes(rd.committed_entries()), vec![1, 2]);
}

// ---------------------------------------------------------------------------------------------
// hard_state and soft_state are reported only when they change.
// ---------------------------------------------------------------------------------------------

#[test]
fn hard_state_is_present_only_when_it_changed() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![ent(3, 1, b"c")], 0));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), None, "term, vote and commit are unchanged");
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 2));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 2));
    assert!(p.node.has_ready(), "the heartbeat response must go out");
    let rd = p.ready();
    assert_eq!(
        rd.hard_state(),
        None,
        "the same commit index again is no change"
    );
}

#[test]
fn soft_state_is_present_only_when_leader_or_role_changed() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    let rd = p.ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 1,
            raft_state: StateRole::Follower
        }),
        "the leader became known"
    );
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 1));
    let rd = p.ready();
    assert_eq!(rd.soft_state(), None, "same leader, same role");
    p.process(rd);

    // A vote request of a higher term: still a follower, but of no known leader.
    p.step(vote_request(3, 2, 2, (1, 1)));
    let rd = p.ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 0,
            raft_state: StateRole::Follower
        })
    );
    assert_eq!(rd.hard_state(), Some(&hs(2, 3, 1)));
}

#[test]
fn leader_soft_state_reports_election_and_step_down() {
    let mut c = Cluster::new(3, config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(
        rd.soft_state().map(|s| s.raft_state),
        Some(StateRole::Candidate)
    );
    c.process(1, rd);
    c.stabilize();
    // The Readys handled during stabilize reported leadership; check the node agrees.
    assert_eq!(c.peer(1).node.raft.state, StateRole::Leader);

    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(rd.soft_state(), None, "still the leader");
    c.process(1, rd);
    c.stabilize();

    // Node 3 wins term 2 without node 1; node 1 learns of it from a heartbeat.
    c.peer(1).step(heartbeat(3, 1, 2, 0));
    let rd = c.peer(1).ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 3,
            raft_state: StateRole::Follower
        })
    );
    assert_eq!(rd.hard_state().map(|h| h.term), Some(2));
}
