//! The hard state, the membership and the commit index: what `initial_state` reports after each
//! setter, `commit_to`, and the constructors that set a membership (`new_with_conf_state`,
//! `initialize_with_conf_state`, `bootstrap`).

use super::*;

#[test]
fn set_hardstate_is_reflected_in_initial_state() {
    let s = MemStorage::new();
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 0,
    };
    s.wl().set_hardstate(hs);
    assert_eq!(*s.rl().hard_state(), hs);
    assert_eq!(s.initial_state().unwrap().hard_state, hs);

    s.wl().mut_hard_state().vote = 1;
    assert_eq!(s.initial_state().unwrap().hard_state.vote, 1);
    assert_eq!(s.initial_state().unwrap().hard_state.term, 3);
}

#[test]
fn set_conf_state_is_reflected_in_initial_state() {
    let s = MemStorage::new();
    let cs = ConfState {
        voters: vec![1, 2],
        learners: vec![3],
        voters_outgoing: vec![1, 2, 4],
        learners_next: vec![4],
        auto_leave: true,
    };
    s.wl().set_conf_state(cs.clone());
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state, cs);
    assert!(state.initialized());
}

#[test]
fn commit_to_sets_the_commit_index_only() {
    let s = storage_with(&ents(1, 5, 1));
    s.wl().set_hardstate(HardState {
        term: 4,
        vote: 2,
        commit: 1,
    });
    s.wl().commit_to(5).unwrap();
    let hs = s.initial_state().unwrap().hard_state;
    assert_eq!((hs.term, hs.vote, hs.commit), (4, 2, 5));
    s.wl().commit_to(0).unwrap();
    assert_eq!(s.rl().hard_state().commit, 0);

    unavailable(s.wl().commit_to(6));
    assert_eq!(s.rl().hard_state().commit, 0);
}

#[test]
fn commit_to_below_the_snapshot_is_compacted() {
    let s = storage_after_snapshot();
    compacted(s.wl().commit_to(2));
    s.wl().commit_to(3).unwrap();
    s.wl().commit_to(6).unwrap();
    unavailable(s.wl().commit_to(7));
    assert_eq!(s.rl().hard_state().commit, 6);
}

#[test]
fn new_with_conf_state_and_the_conf_state_helper() {
    assert_eq!(
        conf_state(vec![1, 2, 3], vec![4]),
        ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        }
    );
    assert_eq!(conf_state(1..=3, []), conf_state(vec![1, 2, 3], vec![]));

    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let state = s.initial_state().unwrap();
    assert!(state.initialized());
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
}

#[test]
fn initialize_with_conf_state_only_once() {
    let s = MemStorage::new();
    s.initialize_with_conf_state(conf_state(vec![1], vec![2]))
        .unwrap();
    assert_eq!(
        s.initial_state().unwrap().conf_state,
        conf_state(vec![1], vec![2])
    );
    invariant(s.initialize_with_conf_state(conf_state(vec![7], vec![])));
    assert_eq!(
        s.initial_state().unwrap().conf_state,
        conf_state(vec![1], vec![2])
    );
}

#[test]
fn bootstrap_stores_a_checked_membership() {
    let s = MemStorage::bootstrap([2, 1, 3], [4]).unwrap();
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state, conf_state(vec![1, 2, 3], vec![4]));
    assert!(MemStorage::bootstrap([], [1]).is_err());
    assert!(MemStorage::bootstrap([1], [1]).is_err());
}
