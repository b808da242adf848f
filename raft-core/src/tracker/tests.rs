//! Unit tests of [`ProgressTracker`] and [`Configuration`]: membership, progress bookkeeping,
//! committed index, vote tallying and the check-quorum activity round.

use super::*;
use crate::quorum::MajorityConfig;

/// A non-joint configuration of `voters` and `learners`.
fn conf(voters: &[u64], learners: &[u64]) -> Configuration {
    Configuration {
        voters: JointConfig::new(voters.iter().copied()),
        learners: learners.to_vec(),
        ..Default::default()
    }
}

/// A joint configuration leaving `outgoing` for `incoming`.
fn joint(
    incoming: &[u64],
    outgoing: &[u64],
    learners: &[u64],
    learners_next: &[u64],
) -> Configuration {
    Configuration {
        voters: JointConfig {
            incoming: MajorityConfig::new(incoming.iter().copied()),
            outgoing: MajorityConfig::new(outgoing.iter().copied()),
        },
        learners: learners.to_vec(),
        learners_next: learners_next.to_vec(),
        auto_leave: false,
    }
}

/// A tracker of `c` whose members were not heard from yet (as after a leader's reset).
fn tracker(c: Configuration) -> ProgressTracker {
    let mut t = ProgressTracker::new(256);
    t.apply_conf(c, 1);
    for (_, pr) in t.iter_mut() {
        pr.recent_active = false;
    }
    t
}

fn set_matched(t: &mut ProgressTracker, matched: &[(u64, u64)]) {
    for &(id, m) in matched {
        t.get_mut(id)
            .unwrap_or_else(|| panic!("no progress for {id}"))
            .matched = m;
    }
}

#[test]
fn apply_conf_keeps_progress_of_kept_members_and_adds_new_ones() {
    let mut t = tracker(conf(&[1, 2, 3], &[]));
    set_matched(&mut t, &[(1, 9), (2, 4), (3, 7)]);
    t.get_mut(2).unwrap().become_replicate();
    t.apply_conf(conf(&[2, 3, 4], &[5]), 10);
    assert_eq!(
        t.ids().collect::<Vec<_>>(),
        vec![2, 3, 4, 5],
        "members after the change"
    );
    assert!(t.get(1).is_none(), "a removed member has no progress");
    let pr2 = t.get(2).unwrap();
    assert_eq!(
        (pr2.matched, pr2.next_idx, pr2.state),
        (4, 5, ProgressState::Replicate),
        "2 keeps its progress"
    );
    assert_eq!(t.get(3).unwrap().matched, 7, "3 keeps its progress");
    for id in [4, 5] {
        let pr = t.get(id).unwrap();
        assert_eq!(
            (pr.matched, pr.next_idx, pr.state),
            (0, 10, ProgressState::Probe),
            "new member {id}"
        );
        assert_eq!(
            pr.ins.capacity(),
            256,
            "new member {id} gets the tracker's window"
        );
    }
    assert!(t.get(5).unwrap().is_learner, "5 is a learner");
    assert!(!t.get(4).unwrap().is_learner);
    assert!(t.is_voter(4) && !t.is_voter(5) && !t.is_voter(1));
}

#[test]
fn apply_conf_reflags_members_that_change_role() {
    let mut t = tracker(conf(&[1, 2], &[3]));
    set_matched(&mut t, &[(2, 6), (3, 8)]);
    // 2 is demoted to learner, 3 promoted to voter.
    t.apply_conf(conf(&[1, 3], &[2]), 10);
    let (pr2, pr3) = (t.get(2).unwrap(), t.get(3).unwrap());
    assert!(pr2.is_learner, "demoted voter must be flagged as a learner");
    assert!(
        !pr3.is_learner,
        "promoted learner must no longer be flagged"
    );
    assert_eq!(
        (pr2.matched, pr3.matched),
        (6, 8),
        "a role change keeps the progress"
    );
}

#[test]
fn apply_conf_of_a_joint_config_tracks_both_halves() {
    let t = tracker(joint(&[1, 2, 4], &[1, 2, 3], &[5], &[3]));
    assert_eq!(t.ids().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(
        !t.get(3).unwrap().is_learner,
        "3 is an outgoing voter until the joint config is left"
    );
    assert!(t.get(5).unwrap().is_learner);
    assert!(t.is_voter(3) && t.is_voter(4));
    assert!(!t.is_singleton(1));
}

#[test]
fn configuration_round_trips_through_conf_state() {
    let cs = ConfState {
        voters: vec![3, 1, 2, 1],
        learners: vec![5, 4, 5],
        voters_outgoing: vec![2, 1],
        learners_next: vec![7, 6],
        auto_leave: true,
    };
    let c = Configuration::from_conf_state(&cs);
    let want = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4, 5],
        voters_outgoing: vec![1, 2],
        learners_next: vec![6, 7],
        auto_leave: true,
    };
    assert_eq!(c.to_conf_state(), want, "sorted, without duplicates");
    let t = tracker(c);
    assert_eq!(t.conf_state(), want);
}

#[test]
fn is_singleton_only_for_one_voter() {
    assert!(tracker(conf(&[1], &[])).is_singleton(1));
    assert!(!tracker(conf(&[1], &[])).is_singleton(2));
    assert!(
        tracker(conf(&[1], &[2])).is_singleton(1),
        "learners do not count"
    );
    assert!(!tracker(conf(&[1, 2], &[])).is_singleton(1));
    assert!(
        !tracker(joint(&[1], &[1, 2], &[], &[])).is_singleton(1),
        "a joint config is never a singleton"
    );
}

#[test]
fn maximal_committed_index_counts_voters_only() {
    let mut t = tracker(conf(&[1, 2, 3], &[4, 5]));
    set_matched(&mut t, &[(1, 5), (2, 3), (3, 1), (4, 10), (5, 10)]);
    assert_eq!(t.maximal_committed_index(), 3);
    set_matched(&mut t, &[(2, 1)]);
    assert_eq!(
        t.maximal_committed_index(),
        1,
        "learners 4 and 5 at 10 must not help"
    );
}

#[test]
fn maximal_committed_index_of_a_joint_config_needs_both_majorities() {
    let mut t = tracker(joint(&[1, 2, 3], &[3, 4, 5], &[], &[]));
    set_matched(&mut t, &[(1, 9), (2, 9), (3, 2), (4, 6), (5, 6)]);
    assert_eq!(
        t.maximal_committed_index(),
        6,
        "incoming at 9, outgoing at 6"
    );
    set_matched(&mut t, &[(4, 1)]);
    assert_eq!(
        t.maximal_committed_index(),
        2,
        "outgoing {{3, 4, 5}} at 2, 1, 6"
    );
}

#[test]
fn record_vote_keeps_the_first_vote_of_each_node() {
    let mut t = tracker(conf(&[1, 2, 3], &[]));
    t.record_vote(1, true);
    t.record_vote(1, false);
    assert_eq!(
        t.tally_votes(),
        (1, 0, VoteResult::Pending),
        "a second vote from 1 must be ignored"
    );
    t.record_vote(2, false);
    t.record_vote(2, true);
    assert_eq!(
        t.tally_votes(),
        (1, 1, VoteResult::Pending),
        "2's first vote (reject) stands"
    );
}

#[test]
fn tally_votes_ignores_non_voters() {
    let mut t = tracker(conf(&[1, 2, 3], &[4]));
    t.record_vote(1, true);
    t.record_vote(4, true);
    t.record_vote(9, true);
    assert_eq!(
        t.tally_votes(),
        (1, 0, VoteResult::Pending),
        "learner 4 and stranger 9 must not count"
    );
    t.record_vote(5, false);
    t.record_vote(2, true);
    assert_eq!(t.tally_votes(), (2, 0, VoteResult::Won));
}

#[test]
fn tally_votes_reaches_each_outcome() {
    use VoteResult::{Lost, Pending, Won};
    // Five voters: (votes, expected (granted, rejected, result))
    type Case = (Vec<(u64, bool)>, (usize, usize, VoteResult));
    let cases: Vec<Case> = vec![
        (vec![], (0, 0, Pending)),
        (vec![(1, true), (2, true)], (2, 0, Pending)),
        (vec![(1, true), (2, true), (3, true)], (3, 0, Won)),
        (vec![(1, false), (2, false), (3, true)], (1, 2, Pending)),
        (vec![(1, false), (2, false), (3, false)], (0, 3, Lost)),
        (
            vec![(1, true), (2, true), (3, false), (4, false), (5, false)],
            (2, 3, Lost),
        ),
    ];
    for (i, (votes, want)) in cases.into_iter().enumerate() {
        let mut t = tracker(conf(&[1, 2, 3, 4, 5], &[]));
        for (id, granted) in votes {
            t.record_vote(id, granted);
        }
        assert_eq!(t.tally_votes(), want, "case {i}");
    }
}

#[test]
fn reset_votes_starts_a_new_election() {
    let mut t = tracker(conf(&[1, 2, 3], &[]));
    t.record_vote(1, true);
    t.record_vote(2, false);
    t.reset_votes();
    assert_eq!(t.tally_votes(), (0, 0, VoteResult::Pending));
    t.record_vote(2, true);
    assert_eq!(
        t.tally_votes(),
        (1, 0, VoteResult::Pending),
        "2 may vote again after a reset"
    );
}

#[test]
fn quorum_recently_active_counts_the_leader_and_resets_marks() {
    let mut t = tracker(conf(&[1, 2, 3], &[4]));
    assert!(
        !t.quorum_recently_active(1),
        "the leader alone is not a quorum of three"
    );
    t.get_mut(4).unwrap().recent_active = true;
    assert!(
        !t.quorum_recently_active(1),
        "an active learner does not count"
    );
    t.get_mut(2).unwrap().recent_active = true;
    assert!(t.quorum_recently_active(1), "leader and 2 are a quorum");
    for id in [2, 3, 4] {
        assert!(
            !t.get(id).unwrap().recent_active,
            "{id}'s mark must be cleared for the next round"
        );
    }
    assert!(
        t.get(1).unwrap().recent_active,
        "the leader is always active"
    );
    assert!(
        !t.quorum_recently_active(1),
        "no one was heard from since the last round"
    );
}

#[test]
fn quorum_recently_active_in_a_single_node_cluster() {
    let mut t = tracker(conf(&[1], &[]));
    for round in 0..3 {
        assert!(
            t.quorum_recently_active(1),
            "round {round}: the leader is a quorum of one"
        );
    }
}

#[test]
fn quorum_recently_active_in_a_joint_config_needs_both_halves() {
    let mut t = tracker(joint(&[1, 2, 3], &[1, 4, 5], &[], &[]));
    t.get_mut(2).unwrap().recent_active = true;
    assert!(
        !t.quorum_recently_active(1),
        "the outgoing half has only the leader"
    );
    t.get_mut(2).unwrap().recent_active = true;
    t.get_mut(5).unwrap().recent_active = true;
    assert!(t.quorum_recently_active(1));
}

#[test]
fn get_and_iter_cover_every_member_in_id_order() {
    let mut t = tracker(conf(&[3, 1], &[2]));
    assert_eq!(
        t.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for (id, pr) in t.iter_mut() {
        pr.matched = id * 10;
    }
    assert_eq!(t.get(2).map(|pr| pr.matched), Some(20));
    assert!(t.get(4).is_none() && t.get_mut(4).is_none());
}

#[test]
fn members_added_by_a_conf_change_count_as_recently_active() {
    let mut t = tracker(conf(&[1, 2, 3], &[]));
    t.apply_conf(conf(&[1, 2, 3, 4], &[5]), 7);
    for id in [4, 5] {
        let pr = t.get(id).unwrap();
        assert!(
            pr.recent_active,
            "{id} is new: check-quorum must give it a round to answer"
        );
        assert_eq!(pr.next_idx, 7);
    }
    assert!(!t.get(2).unwrap().recent_active, "2 keeps its progress");
}
