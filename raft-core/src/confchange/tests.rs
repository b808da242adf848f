//! Unit tests of the [`Changer`] and [`restore`]; the transcripts under `testdata/confchange`
//! cover the same ground case by case.

use super::*;
use raft_proto::conf_changes_from_string;

fn cfg_of(cs: ConfState) -> Configuration {
    restore(&cs).expect("a valid ConfState")
}

fn cs(voters: &[u64], learners: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        ..Default::default()
    }
}

fn changes(s: &str) -> Vec<ConfChangeSingle> {
    conf_changes_from_string(s).expect("valid compact conf change text")
}

#[test]
fn simple_change_of_one_voter_is_accepted_and_of_two_is_refused() {
    let base = cfg_of(cs(&[1, 2, 3], &[]));
    let added = Changer::new(&base).simple(&changes("v4")).unwrap();
    assert_eq!(added.voters.incoming.ids(), &[1, 2, 3, 4]);
    let err = Changer::new(&base).simple(&changes("v4 v5")).unwrap_err();
    assert!(matches!(err, Error::ConfChange(_)), "{err}");
    // Replacing a voter is two voter changes: it needs joint consensus.
    assert!(Changer::new(&base).simple(&changes("r3 v4")).is_err());
    // Adding learners alongside one voter change is fine: learners never count.
    let mixed = Changer::new(&base).simple(&changes("v4 l5 l6")).unwrap();
    assert_eq!(mixed.learners, vec![5, 6]);
}

#[test]
fn removing_every_voter_is_refused_in_both_protocols() {
    let base = cfg_of(cs(&[1], &[2]));
    assert!(Changer::new(&base).simple(&changes("r1")).is_err());
    assert!(Changer::new(&base).simple(&changes("l1")).is_err());
    let base = cfg_of(cs(&[1, 2], &[]));
    assert!(Changer::new(&base)
        .enter_joint(true, &changes("r1 r2"))
        .is_err());
}

#[test]
fn joint_replace_demotes_through_learners_next_and_leave_finishes_it() {
    let base = cfg_of(cs(&[1, 2, 3], &[]));
    let joint = Changer::new(&base)
        .enter_joint(true, &changes("l3 v4"))
        .unwrap();
    assert!(joint.voters.is_joint());
    assert_eq!(joint.voters.incoming.ids(), &[1, 2, 4]);
    assert_eq!(joint.voters.outgoing.ids(), &[1, 2, 3]);
    assert_eq!(
        joint.learners_next,
        vec![3],
        "3 still votes in the outgoing half"
    );
    assert!(joint.learners.is_empty());
    assert!(joint.auto_leave);
    assert!(Changer::new(&joint)
        .enter_joint(false, &changes("v5"))
        .is_err());
    assert!(Changer::new(&joint).simple(&changes("v5")).is_err());

    let left = Changer::new(&joint).leave_joint().unwrap();
    assert!(!left.voters.is_joint());
    assert_eq!(left.voters.incoming.ids(), &[1, 2, 4]);
    assert_eq!(left.learners, vec![3]);
    assert!(left.learners_next.is_empty());
    assert!(!left.auto_leave);
    assert!(Changer::new(&left).leave_joint().is_err());
}

#[test]
fn repeated_changes_and_node_zero_change_nothing() {
    let base = cfg_of(cs(&[1, 2], &[3]));
    assert_eq!(
        Changer::new(&base).simple(&changes("v1 v2 l3")).unwrap(),
        base
    );
    assert_eq!(Changer::new(&base).simple(&changes("r9")).unwrap(), base);
    assert_eq!(
        Changer::new(&base).simple(&changes("v0 r0 l0")).unwrap(),
        base
    );
}

#[test]
fn promoting_a_learner_removes_it_from_the_learners() {
    let base = cfg_of(cs(&[1, 2], &[3]));
    let promoted = Changer::new(&base).simple(&changes("v3")).unwrap();
    assert_eq!(promoted.voters.incoming.ids(), &[1, 2, 3]);
    assert!(promoted.learners.is_empty());
}

#[test]
fn restore_round_trips_plain_and_joint_conf_states() {
    let plain = cs(&[1, 2, 3], &[4, 5]);
    assert_eq!(cfg_of(plain.clone()).to_conf_state(), plain);
    let joint = ConfState {
        voters: vec![1, 2, 4],
        voters_outgoing: vec![1, 2, 3],
        learners: vec![5],
        learners_next: vec![3],
        auto_leave: true,
    };
    assert_eq!(cfg_of(joint.clone()).to_conf_state(), joint);
    assert_eq!(
        restore(&ConfState::default()).unwrap(),
        Configuration::default()
    );
}

#[test]
fn restore_refuses_impossible_conf_states() {
    let bad = [
        cs(&[1, 2], &[2]),
        cs(&[], &[1]),
        cs(&[0, 1], &[]),
        ConfState {
            voters: vec![1],
            learners_next: vec![2],
            ..Default::default()
        },
        ConfState {
            voters: vec![1],
            auto_leave: true,
            ..Default::default()
        },
        ConfState {
            voters: vec![1, 2],
            voters_outgoing: vec![1],
            learners_next: vec![2],
            ..Default::default()
        },
    ];
    for cs in bad {
        assert!(restore(&cs).is_err(), "accepted {cs:?}");
    }
}

#[test]
fn bootstrap_sorts_and_checks_the_initial_membership() {
    let cs = bootstrap([3, 1, 2, 1], [5, 4]).unwrap();
    assert_eq!(cs.voters, vec![1, 2, 3]);
    assert_eq!(cs.learners, vec![4, 5]);
    assert!(bootstrap([], [1]).is_err(), "no voters");
    assert!(bootstrap([1, 2], [2]).is_err(), "2 both voter and learner");
    assert!(bootstrap([0, 1], []).is_err(), "node 0");
}
