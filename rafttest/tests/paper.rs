//! Raft paper conformance: one test per rule of §5.1-§5.4 of "In Search of an Understandable
//! Consensus Algorithm", named for the rule. Most drive a single `Raft` with hand-made messages;
//! log-repair rules that need a whole cluster use `rafttest::Network`.

mod common;

use common::*;
use raft_core::eraftpb::{EntryType, Message, MessageType};
use raft_core::{Raft, StateRole};
use storage_mem::MemStorage;

/// Vote responses as (voter, granted).
type Votes = &'static [(u64, bool)];

/// An (index, term) pair naming a log entry.
type IndexTerm = (u64, u64);

/// A node of the cluster {1, 2, 3} in `role` at term 1 with its messages drained. A pre-candidate
/// has pre-vote on; nobody has check-quorum.
fn node_in_role(role: StateRole) -> Raft<MemStorage> {
    let mut cfg = config(1);
    cfg.pre_vote = role == StateRole::PreCandidate;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[], 0, 0));
    match role {
        StateRole::Follower => r.become_follower(1, 2),
        StateRole::Candidate => r.step(hup()).unwrap(),
        StateRole::PreCandidate => {
            r.become_follower(1, 0);
            r.step(hup()).unwrap();
        }
        StateRole::Leader => make_leader(&mut r, &[1, 2, 3]),
    }
    assert_eq!(r.state, role, "could not put the node in role {role:?}");
    assert_eq!(r.term, 1, "the node in role {role:?} is not at term 1");
    r.read_messages();
    r
}

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
        assert!(out.is_empty(), "a stale {kind:?} was answered: {out:?}");
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

// §5.3: the leader appends a proposal to its log as a new entry of its term, then issues
// AppendEntries to every follower (at the next flush: one append per follower).
#[test]
fn leader_appends_proposal_to_its_log_then_replicates() {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    r.step(propose_msg(1, b"x")).unwrap();
    let last = log_entries(&r).pop().unwrap();
    assert_eq!((last.index, last.term, &last.data[..]), (2, 1, &b"x"[..]));
    assert_eq!(r.raft_log.committed, 1, "committed before replication");
    assert!(
        r.msgs.iter().all(|m| mtype(m) != MessageType::MsgAppend),
        "appends must wait for the flush"
    );
    let mut apps = take_of(&mut r, MessageType::MsgAppend);
    apps.sort_by_key(|m| m.to);
    assert_eq!(apps.len(), 2, "one append per follower: {apps:?}");
    for (m, to) in apps.iter().zip(2..) {
        assert_eq!(
            (m.to, m.term, m.index, m.log_term, m.commit),
            (to, 1, 1, 1, 1)
        );
        assert_eq!(m.entries.len(), 1);
        assert_eq!((m.entries[0].index, &m.entries[0].data[..]), (2, &b"x"[..]));
    }
}

// §5.3: a follower accepts entries after the entry (prevLogIndex, prevLogTerm) it holds; entries
// already present are kept, conflicting ones replaced. The success answer names the last index the
// append covered (INTEROP.md).
#[test]
fn follower_appends_entries_after_matching_entry() {
    let cases: Vec<(IndexTerm, Vec<IndexTerm>, Vec<IndexTerm>, u64)> = vec![
        ((2, 2), vec![(3, 3)], vec![(1, 1), (2, 2), (3, 3)], 3),
        (
            (1, 1),
            vec![(2, 3), (3, 4)],
            vec![(1, 1), (2, 3), (3, 4)],
            3,
        ),
        ((0, 0), vec![(1, 1)], vec![(1, 1), (2, 2)], 1),
        ((0, 0), vec![(1, 3)], vec![(1, 3)], 1),
        ((2, 2), vec![], vec![(1, 1), (2, 2)], 2),
    ];
    for (prev, entries, want_log, want_index) in cases {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &[ent(1, 1), ent(2, 2)], 2, 0));
        r.become_follower(2, 2);
        let ents = entries.iter().map(|&(i, t)| ent(i, t)).collect();
        r.step(append_msg(2, 1, 4, prev, ents, 0)).unwrap();
        assert_eq!(
            index_terms(&r),
            want_log,
            "after append at {prev:?} of {entries:?}"
        );
        let resp = take_of(&mut r, MessageType::MsgAppendResponse);
        assert_eq!(resp.len(), 1);
        assert!(!resp[0].reject, "append at {prev:?} was rejected");
        assert_eq!(
            resp[0].index, want_index,
            "success index after append at {prev:?}"
        );
    }
}

// §5.3: a follower that does not hold (prevLogIndex, prevLogTerm) refuses the append and keeps its
// log; the rejection echoes the index and hints the largest index <= min(index, last) whose term is
// <= the leader's log_term, with that term (INTEROP.md "Appends").
#[test]
fn follower_rejects_append_on_log_mismatch_with_hint() {
    // (follower log terms, commit, probe (index, log_term), hint, hint term)
    let cases: Vec<(Vec<u64>, u64, IndexTerm, u64, u64)> = vec![
        (vec![1, 2], 0, (2, 3), 2, 2), // term mismatch at the last entry
        (vec![1, 2], 0, (3, 2), 2, 2), // index beyond the log
        (vec![1, 2], 0, (2, 1), 1, 1), // skip back over the conflicting term
        (vec![], 0, (1, 1), 0, 0),     // empty log
        (vec![1, 1, 2, 2, 2], 1, (6, 4), 5, 2), // beyond the log, terms below
        (vec![1, 3, 3, 3, 5], 1, (5, 4), 4, 3), // term 5 > 4 skipped
        (vec![1, 3, 3, 3, 5], 1, (5, 2), 1, 1), // terms 5 and 3 skipped
    ];
    for (terms, commit, (index, log_term), hint, hint_term) in cases {
        let log = ents_with_terms(&terms);
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 5, commit));
        let before = index_terms(&r);
        r.step(append_msg(
            2,
            1,
            6,
            (index, log_term),
            vec![ent(index + 1, 6)],
            0,
        ))
        .unwrap();
        assert_eq!(
            index_terms(&r),
            before,
            "a rejected append changed the log {terms:?}"
        );
        let resp = take_of(&mut r, MessageType::MsgAppendResponse);
        assert_eq!(resp.len(), 1, "log {terms:?}, probe ({index}, {log_term})");
        let m = &resp[0];
        assert!(
            m.reject,
            "log {terms:?} accepted a mismatching probe ({index}, {log_term})"
        );
        assert_eq!(m.index, index, "the rejection must echo the probed index");
        assert_eq!(
            (m.reject_hint, m.log_term),
            (hint, hint_term),
            "hint for log {terms:?}, probe ({index}, {log_term})"
        );
        assert_eq!((m.request_snapshot, m.commit), (0, commit));
    }
}

// §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete the
// existing entry and all that follow it" — only uncommitted entries can conflict.
#[test]
fn follower_replaces_conflicting_uncommitted_suffix() {
    let log = ents_with_terms(&[1, 2, 2, 2]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 2, 1));
    r.step(append_msg(2, 1, 3, (1, 1), vec![ent(2, 3), ent(3, 3)], 1))
        .unwrap();
    assert_eq!(
        index_terms(&r),
        vec![(1, 1), (2, 3), (3, 3)],
        "the conflicting suffix (2..=4 of term 2) must be replaced"
    );
    persist(&mut r);
    let stored: Vec<u64> = (1..=3)
        .map(|i| raft_core::Storage::term(&r.raft_log.store, i).unwrap())
        .collect();
    assert_eq!(stored, vec![1, 3, 3], "the stored log keeps the old suffix");
    assert_eq!(
        raft_core::Storage::last_index(&r.raft_log.store).unwrap(),
        3
    );
}

// §5.3: an append whose entries all match (a delayed, shorter duplicate) truncates nothing, and its
// success index is what it covered, not our last index (INTEROP.md).
#[test]
fn follower_keeps_suffix_when_append_entries_already_match() {
    let log = ents_with_terms(&[1, 1, 1]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 1, 0));
    r.step(append_msg(2, 1, 1, (1, 1), vec![ent(2, 1)], 0))
        .unwrap();
    assert_eq!(
        index_terms(&r),
        vec![(1, 1), (2, 1), (3, 1)],
        "a matching append truncated the log"
    );
    let resp = take_of(&mut r, MessageType::MsgAppendResponse);
    assert_eq!((resp[0].reject, resp[0].index), (false, 2));
}

// §5.3 / INTEROP.md: an append below the follower's commit index is answered with success at the
// commit index (everything up to it matches the leader's log).
#[test]
fn follower_answers_append_below_commit_with_its_commit_index() {
    let log = ents_with_terms(&[1, 1, 1]);
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, 1, 2));
    r.step(append_msg(2, 1, 1, (1, 1), vec![ent(2, 1)], 0))
        .unwrap();
    let resp = take_of(&mut r, MessageType::MsgAppendResponse);
    assert_eq!(resp.len(), 1);
    assert_eq!(
        (resp[0].reject, resp[0].index, resp[0].commit),
        (false, 2, 2),
        "answer to an append below commit"
    );
    assert_eq!(r.raft_log.committed, 2);
}

// §5.3: an entry is committed once the leader has replicated it on a majority; the leader then
// tells every follower the new commit index in its next append.
#[test]
fn leader_commits_entry_once_replicated_on_majority() {
    let voters = [1, 2, 3, 4, 5];
    let mut r = new_raft(1, &voters);
    make_leader(&mut r, &voters);
    r.step(propose_msg(1, b"x")).unwrap();
    persist(&mut r);
    r.read_messages();
    r.step(append_ack(2, 1, 1, 2)).unwrap();
    assert_eq!(r.raft_log.committed, 1, "committed with 2 of 5 replicas");
    r.step(append_ack(3, 1, 1, 2)).unwrap();
    assert_eq!(
        r.raft_log.committed, 2,
        "not committed with 3 of 5 replicas"
    );
    let apps = take_of(&mut r, MessageType::MsgAppend);
    let mut to: Vec<u64> = apps
        .iter()
        .filter(|m| m.commit == 2)
        .map(|m| m.to)
        .collect();
    to.sort_unstable();
    assert_eq!(
        to,
        vec![2, 3, 4, 5],
        "every follower must learn the new commit: {apps:?}"
    );
}

// §5.3: a follower learns the commit index from the leader's next append and commits
// min(leader commit, last entry of that append) (INTEROP.md).
#[test]
fn follower_learns_commit_index_from_append() {
    // (leader commit, entries appended after (1, 1), expected follower commit)
    for (commit, n, want) in [(1, 2, 1), (2, 2, 2), (3, 2, 3), (9, 2, 3), (9, 0, 1)] {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 0));
        let ents = (0..n).map(|i| ent(2 + i, 1)).collect();
        r.step(append_msg(2, 1, 1, (1, 1), ents, commit)).unwrap();
        assert_eq!(
            r.raft_log.committed, want,
            "leader commit {commit} with {n} entries after index 1"
        );
    }
}

// §5.3: heartbeats (empty AppendEntries) carry the commit index too.
#[test]
fn follower_learns_commit_index_from_heartbeat() {
    let mut r = raft_on(
        1,
        storage_with(&[1, 2, 3], &ents_with_terms(&[1, 1, 1]), 1, 0),
    );
    let mut hb = msg(MessageType::MsgHeartbeat, 2, 1, 1);
    hb.commit = 2;
    r.step(hb).unwrap();
    assert_eq!(r.raft_log.committed, 2, "commit from heartbeat");
    let resp = take_of(&mut r, MessageType::MsgHeartbeatResponse);
    assert_eq!(resp.len(), 1);
    assert_eq!(
        (resp[0].to, resp[0].commit),
        (2, 2),
        "heartbeat response carries our commit"
    );
}

// §5.3: committing an entry also commits all preceding entries, including those of earlier terms.
#[test]
fn leader_commit_includes_preceding_entries() {
    for terms in [vec![], vec![2], vec![1, 1], vec![1, 2, 2]] {
        let last_term = terms.last().copied().unwrap_or(0);
        let log = ents_with_terms(&terms);
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &log, last_term, 0));
        r.step(hup()).unwrap();
        r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, r.term))
            .unwrap();
        assert_eq!(r.state, StateRole::Leader);
        persist(&mut r);
        r.read_messages();
        let last = r.raft_log.last_index();
        r.step(append_ack(2, 1, r.term, last)).unwrap();
        assert_eq!(
            r.raft_log.committed, last,
            "log {terms:?}: preceding entries not committed"
        );
    }
}

// §5.3, Figure 7: whatever a follower's log looks like (missing entries, extra uncommitted entries,
// both), the leader forces it to duplicate its own log.
#[test]
fn leader_brings_every_follower_log_in_line_with_its_own() {
    let leader = vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers = [
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6],
        vec![1, 1, 1, 4],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        vec![1, 1, 1, 4, 4, 4, 4],
        vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for follower in followers {
        // Node 3 holds the leader's log, so node 1 wins whatever node 2 votes.
        let logs = [leader.clone(), follower.clone(), leader.clone()];
        let mut net = network_with_logs(&logs, 8, rafttest::network::default_config);
        net.campaign(1);
        assert_eq!(
            net.node(1).state(),
            StateRole::Leader,
            "follower log {follower:?}"
        );
        assert_logs_equal(&net, 1);
        let terms: Vec<u64> = net_log(&net, 2).iter().map(|e| e.1).collect();
        let mut want = leader.clone();
        want.push(9);
        assert_eq!(terms, want, "follower log {follower:?} was not repaired");
    }
}

// §5.4.1: a voter denies its vote to a candidate whose last entry has an older term, however long
// that candidate's log is.
#[test]
fn voter_rejects_candidate_whose_last_term_is_older() {
    // Voter log ends at (2, 2); candidates (last index, last term) and whether they are granted.
    for (index, term, granted) in [
        (1, 1, false),
        (3, 1, false),
        (10, 1, false),
        (1, 3, true),
        (2, 2, true),
    ] {
        let mut r = raft_on(1, storage_with(&[1, 2, 3], &ents_with_terms(&[1, 2]), 2, 1));
        r.step(vote_request(
            MessageType::MsgRequestVote,
            2,
            1,
            3,
            index,
            term,
        ))
        .unwrap();
        let resp = take_of(&mut r, MessageType::MsgRequestVoteResponse);
        assert_eq!(resp.len(), 1);
        assert_eq!(
            !resp[0].reject, granted,
            "candidate log ending at ({index}, {term}) vs voter (2, 2)"
        );
        assert_eq!(resp[0].term, 3, "the answer must carry the request's term");
        if !granted {
            assert_eq!(
                (resp[0].commit, resp[0].commit_term),
                (1, 1),
                "rejection fields"
            );
            assert_eq!(r.vote, 0, "voted although it rejected");
        }
    }
}

// §5.4.1: with equal last terms, the longer log is more up to date: a shorter candidate is refused.
#[test]
fn voter_rejects_candidate_with_shorter_log_in_same_last_term() {
    // Voter log ends at (3, 2).
    for (index, granted) in [(1, false), (2, false), (3, true), (4, true)] {
        let mut r = raft_on(
            1,
            storage_with(&[1, 2, 3], &ents_with_terms(&[1, 2, 2]), 2, 0),
        );
        r.step(vote_request(MessageType::MsgRequestVote, 2, 1, 3, index, 2))
            .unwrap();
        let resp = take_of(&mut r, MessageType::MsgRequestVoteResponse);
        assert_eq!(
            !resp[0].reject, granted,
            "candidate ending at ({index}, 2) vs voter ending at (3, 2)"
        );
        assert_eq!(r.vote, if granted { 2 } else { 0 });
    }
}

// §5.4.2, Figure 8 (c): a leader never commits an entry of an earlier term by counting replicas, even
// once a majority holds it; it becomes committed only with an entry of the leader's own term.
#[test]
fn leader_does_not_commit_earlier_term_entry_by_counting_replicas() {
    let voters = [1, 2, 3, 4, 5];
    // S1 wrote index 2 in term 2 but did not commit it; it is now elected in term 4.
    let mut r = raft_on(1, storage_with(&voters, &ents_with_terms(&[1, 2]), 3, 1));
    r.step(hup()).unwrap();
    assert_eq!(r.term, 4);
    for v in [2, 3] {
        r.step(msg(MessageType::MsgRequestVoteResponse, v, 1, 4))
            .unwrap();
    }
    assert_eq!(r.state, StateRole::Leader);
    persist(&mut r);
    r.read_messages();
    assert_eq!(index_terms(&r), vec![(1, 1), (2, 2), (3, 4)]);
    // S2 and S3 hold index 2 (term 2): with S1, a majority.
    r.step(append_ack(2, 1, 4, 2)).unwrap();
    r.step(append_ack(3, 1, 4, 2)).unwrap();
    assert_eq!(
        r.raft_log.committed, 1,
        "an entry of term 2 was committed by counting replicas in term 4"
    );
    // One more replica of the term-4 entry is not yet a majority.
    r.step(append_ack(2, 1, 4, 3)).unwrap();
    assert_eq!(
        r.raft_log.committed, 1,
        "committed index 3 with 2 of 5 replicas"
    );
    r.step(append_ack(3, 1, 4, 3)).unwrap();
    assert_eq!(
        r.raft_log.committed, 3,
        "the term-4 entry on a majority must commit it and index 2 with it"
    );
}

// §5.4.2 / thesis §6.4: a new leader's first entry is an empty EntryNormal of its term, sent to all.
#[test]
fn new_leader_first_entry_is_empty_normal_entry_of_its_term() {
    let mut r = raft_on(1, storage_with(&[1, 2, 3], &ents_with_terms(&[1]), 1, 1));
    r.step(hup()).unwrap();
    r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 2))
        .unwrap();
    assert_eq!((r.state, r.term), (StateRole::Leader, 2));
    let first = log_entries(&r).pop().unwrap();
    assert_eq!(
        (first.index, first.term),
        (2, 2),
        "the new entry's position"
    );
    assert_eq!(first.entry_type, EntryType::EntryNormal as i32);
    assert!(
        first.data.is_empty() && first.context.is_empty(),
        "entry not empty: {first:?}"
    );
    let apps: Vec<Message> = take_of(&mut r, MessageType::MsgAppend);
    assert_eq!(apps.len(), 2, "the empty entry goes to every follower");
    for m in &apps {
        assert_eq!((m.index, m.log_term), (1, 1));
        assert_eq!(m.entries, vec![first.clone()]);
    }
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

// §5.3, Figure 3 "Leader Append-Only": a leader never overwrites or deletes entries in its log, even
// when a (buggy or confused) peer sends it an append of the same term.
#[test]
fn leader_never_overwrites_its_own_log() {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    r.step(propose_msg(1, b"x")).unwrap();
    let before = log_entries(&r);
    let _ = r.step(append_msg(
        2,
        1,
        1,
        (0, 0),
        vec![ent(1, 1), ent(2, 1), ent(3, 1)],
        0,
    ));
    assert_eq!(log_entries(&r), before, "the leader's log changed");
    assert_eq!(r.state, StateRole::Leader);
}
