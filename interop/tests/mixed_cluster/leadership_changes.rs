//! Leadership changes between libraries and the terms they bring: leadership moves across
//! libraries under check-quorum and pre-vote, and a stale leader of one library learns of a newer
//! term from followers of the other.

use crate::support::{
    assert_all_applied, assert_everyone_follows, assert_no_refusals, check_quorum_and_pre_vote,
    propose_each, O, R,
};
use interop::{Lib, MixedCluster, NodeConfig, StateRole};
use raft_core::eraftpb::MessageType;

/// Ticks until node `expected` leads a term above `above_term`; panics if another node wins or
/// nobody does within 100 ticks.
fn tick_until_leader(c: &mut MixedCluster, expected: u64, above_term: u64) {
    let ticks = c.tick_all_until(100, |c| {
        c.leader().is_some_and(|l| c.node(l).term() > above_term)
    });
    assert!(ticks.is_some(), "no new leader after 100 ticks");
    let leader = c.leader().expect("a leader");
    assert_eq!(
        leader,
        expected,
        "node {expected} ({:?}) should have won; node {leader} ({:?}) did",
        c.lib(expected),
        c.lib(leader)
    );
}

/// Election timeouts 10, 12, 14, 16, 18: with the leader (and one more node) cut off, the connected
/// node with the shortest timeout wins. Check-quorum deposes the cut-off leader; pre-vote keeps the
/// cut-off nodes from bumping their terms, so they rejoin without disrupting anyone (thesis §9.6).
#[test]
fn leadership_moves_between_libraries_with_check_quorum_and_pre_vote() {
    let libs = [O, R, O, R, O];
    let mut c = MixedCluster::new(&libs, check_quorum_and_pre_vote);
    tick_until_leader(&mut c, 1, 0);
    let mut expected = propose_each(&mut c, 1, "term-of-1", 5);
    assert_all_applied(&c, &expected);

    // (cut off, expected new leader): every change crosses libraries.
    let rounds: [(&[u64], u64); 4] = [(&[1], 2), (&[1, 2], 3), (&[1, 3], 2), (&[2, 3], 1)];
    let mut previous = 1;
    for (round, (cut_off, next)) in rounds.iter().enumerate() {
        let old_term = c.node(previous).term();
        for &id in *cut_off {
            c.isolate(id);
        }
        tick_until_leader(&mut c, *next, old_term);
        assert_ne!(
            c.lib(previous),
            c.lib(*next),
            "round {round}: leadership should cross libraries"
        );
        // Check-quorum: within two election timeouts a leader that hears from no quorum steps down
        // (the first check may still count acknowledgements from before the cut).
        let stepped_down = c.tick_all_until(2 * interop::ELECTION_TICK, |c| {
            c.node(previous).role() != StateRole::Leader
        });
        assert!(
            stepped_down.is_some(),
            "round {round}: the cut-off leader {previous} ({:?}) did not step down (check-quorum)",
            c.lib(previous)
        );
        assert_eq!(
            c.leader(),
            Some(*next),
            "round {round}: node {next} still leads"
        );
        for &id in *cut_off {
            assert!(
                c.node(id).term() <= old_term,
                "round {round}: cut-off node {id} ({:?}) bumped its term to {} despite pre-vote",
                c.lib(id),
                c.node(id).term()
            );
        }
        expected.extend(propose_each(&mut c, *next, &format!("round{round}"), 5));
        let connected: Vec<u64> = c
            .ids()
            .into_iter()
            .filter(|i| !cut_off.contains(i))
            .collect();
        c.assert_logs_identical(&connected);

        c.recover();
        let term = c.node(*next).term();
        for _ in 0..30 {
            c.tick_all();
        }
        assert_eq!(
            (c.leader(), c.node(*next).term()),
            (Some(*next), term),
            "round {round}: rejoining nodes disrupted the leader:\n{}",
            c.transcript()
        );
        assert_everyone_follows(&c, *next);
        assert_all_applied(&c, &expected);
        previous = *next;
    }
    assert_no_refusals(&c);
}

/// With pre-vote on and check-quorum off, cut-off leader 1 keeps leading its old term while node 2
/// (the other library) wins the next one. Healed, except for the link between the two leaders,
/// leader 1's heartbeats reach followers of both libraries in the newer term, who answer with an
/// empty `MsgAppendResponse` carrying that term; it deposes the stale leader (INTEROP.md "Terms",
/// etcd/raft-rs: otherwise it would never learn of the new term).
fn stale_leader_is_deposed_by_lower_term_answers(libs: &[Lib; 5]) {
    let mut c = MixedCluster::new(libs, |id| NodeConfig {
        pre_vote: true,
        ..NodeConfig::staggered(id)
    });
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "term-of-1", 3);
    let old_term = c.node(1).term();
    c.isolate(1);
    c.campaign(2);
    assert_eq!(c.leader(), Some(2), "node 2 should win the next term");
    let new_term = c.node(2).term();
    assert!(new_term > old_term);
    expected.extend(propose_each(&mut c, 2, "term-of-2", 3));
    assert_eq!(
        c.node(1).role(),
        StateRole::Leader,
        "without check-quorum the cut-off leader keeps leading its term"
    );

    c.recover();
    c.cut(1, 2);
    let mark = c.delivered.len();
    c.tick(1);
    let answers: Vec<_> = c.delivered[mark..]
        .iter()
        .filter(|d| d.msg.to == 1 && d.msg.msg_type == MessageType::MsgAppendResponse as i32)
        .collect();
    assert!(
        !answers.is_empty() && answers.iter().all(|d| d.msg.term == new_term),
        "followers should answer the stale heartbeat with term {new_term}:\n{}",
        c.transcript()
    );
    assert!(
        answers.iter().any(|d| d.from_lib != c.lib(1)),
        "an answer must come from the other library"
    );
    assert_eq!(
        (c.node(1).role(), c.node(1).term()),
        (StateRole::Follower, new_term),
        "stale leader 1 ({:?}) was not deposed by the higher-term answers:\n{}",
        c.lib(1),
        c.transcript()
    );
    c.recover();
    for _ in 0..3 {
        c.tick_all();
    }
    assert_everyone_follows(&c, 2);
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

#[test]
fn our_stale_leader_is_deposed_by_lower_term_answers_from_raft_rs_followers() {
    stale_leader_is_deposed_by_lower_term_answers(&[O, R, O, R, O]);
}

#[test]
fn raft_rs_stale_leader_is_deposed_by_lower_term_answers_from_our_followers() {
    stale_leader_is_deposed_by_lower_term_answers(&[R, O, R, O, R]);
}
