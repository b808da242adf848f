//! §5.2 Leader election: starting as follower, heartbeats, randomized election timeouts,
//! campaigning, counting votes and granting at most one vote per term.

use crate::common::*;
use crate::node_in_role;
use raft_core::eraftpb::MessageType;
use raft_core::{Raft, StateRole};
use storage_mem::MemStorage;

/// Vote responses as (voter, granted).
type Votes = &'static [(u64, bool)];

// §5.2: "When servers start up, they begin as followers."
#[test]
fn node_starts_as_follower_without_leader() {
    let r = new_raft(1, &[1, 2, 3]);
    assert_eq!(r.state, StateRole::Follower);
    assert_eq!((r.term, r.vote, r.leader_id), (0, 0, 0));
}

// §5.2: a leader sends periodic heartbeats to every follower to maintain its authority.
#[test]
fn leader_broadcasts_heartbeat_every_heartbeat_interval() {
    let mut cfg = config(1);
    cfg.heartbeat_tick = 2;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[], 0, 0));
    make_leader(&mut r, &[1, 2, 3]);
    r.tick();
    assert!(
        take_of(&mut r, MessageType::MsgHeartbeat).is_empty(),
        "heartbeat sent before the heartbeat interval elapsed"
    );
    r.tick();
    let mut to: Vec<u64> = take_of(&mut r, MessageType::MsgHeartbeat)
        .iter()
        .map(|m| m.to)
        .collect();
    to.sort_unstable();
    assert_eq!(to, vec![2, 3], "one heartbeat to each follower");
}

// §5.2: a follower that hears nothing for its election timeout becomes candidate, bumps its term,
// votes for itself and asks every other voter for a vote.
#[test]
fn follower_starts_election_after_randomized_timeout() {
    let mut r = new_raft(1, &[1, 2, 3]);
    let timeout = r.randomized_election_timeout();
    for _ in 1..timeout {
        r.tick();
    }
    assert_eq!(
        r.state,
        StateRole::Follower,
        "campaigned before its election timeout"
    );
    assert!(r.read_messages().is_empty());
    r.tick();
    assert_eq!(
        r.state,
        StateRole::Candidate,
        "no election after the timeout"
    );
    assert_eq!((r.term, r.vote), (1, 1));
    let mut to: Vec<u64> = take_of(&mut r, MessageType::MsgRequestVote)
        .iter()
        .map(|m| m.to)
        .collect();
    to.sort_unstable();
    assert_eq!(to, vec![2, 3]);
}

// §5.2: a candidate that neither wins nor loses times out and starts a new election in a new term.
#[test]
fn candidate_starts_new_election_after_timeout() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.step(hup()).unwrap();
    r.read_messages();
    assert_eq!((r.state, r.term), (StateRole::Candidate, 1));
    let timeout = r.randomized_election_timeout();
    for _ in 0..timeout {
        r.tick();
    }
    assert_eq!(
        (r.state, r.term, r.vote),
        (StateRole::Candidate, 2, 1),
        "no new election after a candidate's timeout"
    );
    let reqs = take_of(&mut r, MessageType::MsgRequestVote);
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs.iter().all(|m| m.term == 2),
        "new requests must carry the new term"
    );
}

// §5.2: a candidate votes for itself and sends RequestVote, carrying its last log index and term,
// to every other voter; the requests promise durable state, so they wait for persistence.
#[test]
fn candidate_votes_for_itself_and_requests_votes_from_all() {
    let storage = storage_with(&[1, 2, 3, 4, 5], &[ent(1, 1), ent(2, 2)], 2, 1);
    let mut r = raft_on(1, storage);
    r.step(hup()).unwrap();
    assert_eq!((r.state, r.term, r.vote), (StateRole::Candidate, 3, 1));
    assert!(
        r.msgs
            .iter()
            .all(|m| mtype(m) != MessageType::MsgRequestVote),
        "vote requests must wait for the candidate's term and vote to be persisted"
    );
    let mut reqs = r.msgs_after_append.clone();
    reqs.sort_by_key(|m| m.to);
    assert_eq!(reqs.len(), 4, "one request per other voter: {reqs:?}");
    for (m, to) in reqs.iter().zip(2..) {
        assert_eq!(mtype(m), MessageType::MsgRequestVote);
        assert_eq!((m.from, m.to, m.term), (1, to, 3));
        assert_eq!(
            (m.index, m.log_term),
            (2, 2),
            "last index and term of the log"
        );
        assert_eq!((m.commit, m.commit_term), (1, 1), "commit and its term");
    }
}

/// Runs an election at node 1 of a `size`-node cluster in which `votes` answer; returns its role.
fn election_outcome(size: u64, votes: &[(u64, bool)]) -> StateRole {
    let voters: Vec<u64> = (1..=size).collect();
    let mut r = new_raft(1, &voters);
    r.step(hup()).unwrap();
    for &(from, granted) in votes {
        let mut resp = msg(MessageType::MsgRequestVoteResponse, from, 1, 1);
        resp.reject = !granted;
        r.step(resp).unwrap();
    }
    assert_eq!(r.term, 1, "counting votes changed the term");
    r.state
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers."
#[test]
fn candidate_wins_with_majority_of_votes() {
    let cases: &[(u64, Votes)] = &[
        (1, &[]),
        (3, &[(2, true)]),
        (3, &[(2, true), (3, true)]),
        (3, &[(2, false), (3, true)]),
        (5, &[(2, true), (3, true)]),
        (5, &[(2, false), (3, true), (4, false), (5, true)]),
    ];
    for (size, votes) in cases {
        assert_eq!(
            election_outcome(*size, votes),
            StateRole::Leader,
            "{size} nodes, votes {votes:?}: a majority must win"
        );
    }
}

// §5.2: a candidate rejected by a majority cannot win and returns to follower in the same term; with
// neither majority it stays candidate.
#[test]
fn candidate_loses_with_majority_of_rejections() {
    let cases: &[(u64, Votes, StateRole)] = &[
        (3, &[(2, false), (3, false)], StateRole::Follower),
        (
            5,
            &[(2, false), (3, false), (4, false)],
            StateRole::Follower,
        ),
        (
            5,
            &[(2, true), (3, false), (4, false), (5, false)],
            StateRole::Follower,
        ),
        (3, &[], StateRole::Candidate),
        (3, &[(2, false)], StateRole::Candidate),
        (5, &[(2, true)], StateRole::Candidate),
        (
            5,
            &[(2, true), (3, false), (4, false)],
            StateRole::Candidate,
        ),
    ];
    for (size, votes, want) in cases {
        assert_eq!(
            election_outcome(*size, votes),
            *want,
            "{size} nodes, votes {votes:?}"
        );
    }
}

// §5.2: a candidate that receives AppendEntries (or a heartbeat) from a leader of its own term
// recognises it and returns to follower.
#[test]
fn candidate_steps_down_on_append_from_leader_of_same_term() {
    for role in [StateRole::Candidate, StateRole::PreCandidate] {
        for m in [
            append_msg(2, 1, 1, (0, 0), vec![], 0),
            msg(MessageType::MsgHeartbeat, 2, 1, 1),
        ] {
            let kind = mtype(&m);
            let mut r = node_in_role(role);
            r.step(m).unwrap();
            assert_eq!(
                (r.state, r.term, r.leader_id),
                (StateRole::Follower, 1, 2),
                "{role:?} did not follow the leader of its term after a {kind:?}"
            );
            let answered = r.read_messages().iter().any(|m| {
                m.to == 2
                    && matches!(
                        mtype(m),
                        MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
                    )
            });
            assert!(answered, "{role:?} did not answer the leader's {kind:?}");
        }
    }
}

/// Steps a vote request of `term` from `from` (with an empty log) into `r` and returns whether it
/// was granted, checking the answer's shape.
fn ask_vote(r: &mut Raft<MemStorage>, from: u64, term: u64) -> bool {
    let last_index = r.raft_log.last_index();
    let last_term = r.raft_log.last_term();
    r.step(vote_request(
        MessageType::MsgRequestVote,
        from,
        r.id,
        term,
        last_index,
        last_term,
    ))
    .unwrap();
    let out = r.read_messages();
    assert_eq!(out.len(), 1, "one answer per vote request: {out:?}");
    assert_eq!(mtype(&out[0]), MessageType::MsgRequestVoteResponse);
    assert_eq!(out[0].to, from);
    !out[0].reject
}

// §5.2: "each server will vote for at most one candidate in a given term, on a first-come-first-
// served basis"; a retry from the candidate it voted for is granted again.
#[test]
fn node_grants_at_most_one_vote_per_term() {
    let mut r = new_raft(1, &[1, 2, 3]);
    assert!(
        ask_vote(&mut r, 2, 1),
        "the first request of term 1 must be granted"
    );
    assert_eq!(r.vote, 2);
    assert!(
        !ask_vote(&mut r, 3, 1),
        "a second candidate of term 1 got a vote"
    );
    assert_eq!(r.vote, 2, "the vote changed within a term");
    assert!(
        ask_vote(&mut r, 2, 1),
        "a retry from the same candidate must be granted"
    );
    assert!(ask_vote(&mut r, 3, 2), "a new term allows a new vote");
    assert_eq!((r.term, r.vote), (2, 3));
}

// §5.2: a follower that knows the leader of its term does not vote for another candidate of it.
#[test]
fn follower_with_known_leader_refuses_vote_in_same_term() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_follower(1, 2);
    assert!(
        !ask_vote(&mut r, 3, 1),
        "voted for a candidate while following a leader of the same term"
    );
    assert_eq!(r.vote, 0);
}

// §5.2: election timeouts are chosen randomly from a fixed interval, here
// [election_tick, 2 * election_tick) unless min/max_election_tick pin it.
#[test]
fn randomized_election_timeout_lies_in_configured_range() {
    let cases = [
        (10, 0, 0, 10, 20),
        (5, 0, 0, 5, 10),
        (10, 12, 17, 12, 17),
        (10, 10, 11, 10, 11),
    ];
    for (election_tick, min, max, lo, hi) in cases {
        let mut cfg = config(1);
        cfg.election_tick = election_tick;
        cfg.min_election_tick = min;
        cfg.max_election_tick = max;
        let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[], 0, 0));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            r.reset_randomized_election_timeout();
            let t = r.randomized_election_timeout();
            assert!(
                (lo..hi).contains(&t),
                "timeout {t} outside [{lo}, {hi}) for election_tick={election_tick} min={min} max={max}"
            );
            seen.insert(t);
        }
        assert_eq!(
            seen.len(),
            hi - lo,
            "1000 draws did not cover [{lo}, {hi}): the timeout is not randomised"
        );
    }
}

/// The first `n` election timeouts node `id` draws with `seed`.
fn timeout_sequence(id: u64, seed: Option<u64>, n: usize) -> Vec<usize> {
    let mut cfg = config(id);
    cfg.seed = seed;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3, 4, 5], &[], 0, 0));
    (0..n)
        .map(|_| {
            r.reset_randomized_election_timeout();
            r.randomized_election_timeout()
        })
        .collect()
}

// §5.2: different nodes draw different timeouts (so split votes are rare), yet a given config always
// draws the same ones (runs are replayable, DESIGN.md §3).
#[test]
fn randomized_election_timeouts_differ_across_nodes_and_are_deterministic() {
    let seqs: Vec<Vec<usize>> = (1..=5).map(|id| timeout_sequence(id, None, 20)).collect();
    for a in 0..seqs.len() {
        for b in a + 1..seqs.len() {
            assert_ne!(
                seqs[a],
                seqs[b],
                "nodes {} and {} draw the same timeouts",
                a + 1,
                b + 1
            );
        }
    }
    for id in 1..=5 {
        assert_eq!(
            timeout_sequence(id, None, 20),
            seqs[id as usize - 1],
            "node {id} drew different timeouts with the same config"
        );
    }
    assert_eq!(
        timeout_sequence(1, Some(42), 20),
        timeout_sequence(2, Some(42), 20),
        "an explicit seed must fix the sequence whatever the id"
    );
}

// §5.2, Figure 2 "Followers": the election timer restarts when the follower grants a vote, so it does
// not campaign while an election it took part in is under way.
#[test]
fn follower_granting_vote_restarts_election_timer() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_follower(1, 0);
    let timeout = r.randomized_election_timeout();
    for _ in 1..timeout {
        r.tick();
    }
    assert!(ask_vote(&mut r, 2, 1), "setup: the vote must be granted");
    for _ in 1..timeout {
        r.tick();
    }
    assert_eq!(
        (r.state, r.term),
        (StateRole::Follower, 1),
        "campaigned although it granted a vote less than a timeout ago"
    );
    for _ in 0..2 * timeout {
        r.tick();
    }
    assert_eq!(
        r.state,
        StateRole::Candidate,
        "never campaigned without a leader"
    );
}

// §5.2: a follower keeps following as long as it hears from the leader within each timeout.
#[test]
fn follower_hearing_from_leader_does_not_campaign() {
    let mut r = new_raft(1, &[1, 2, 3]);
    r.become_follower(1, 2);
    let timeout = r.randomized_election_timeout();
    for _ in 0..10 {
        for _ in 1..timeout {
            r.tick();
        }
        r.step(msg(MessageType::MsgHeartbeat, 2, 1, 1)).unwrap();
    }
    assert_eq!((r.state, r.term, r.leader_id), (StateRole::Follower, 1, 2));
    assert!(take_of(&mut r, MessageType::MsgRequestVote).is_empty());
}

// §5.2: a voter's vote counts once, however many times its response arrives.
#[test]
fn candidate_counts_each_voter_once() {
    let mut r = new_raft(1, &[1, 2, 3, 4, 5]);
    r.step(hup()).unwrap();
    for _ in 0..3 {
        r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1))
            .unwrap();
    }
    assert_eq!(
        r.state,
        StateRole::Candidate,
        "a repeated vote was counted twice"
    );
    r.step(msg(MessageType::MsgRequestVoteResponse, 3, 1, 1))
        .unwrap();
    assert_eq!(r.state, StateRole::Leader);
}
