//! `advance`, `advance_append` and `advance_apply`: what they mark applied and what the returned
//! `LightReady` reports.

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// advance semantics.
// ---------------------------------------------------------------------------------------------

#[test]
fn has_ready_is_false_after_advance_when_nothing_else_happened() {
    let mut c = elected_cluster();
    for id in 1..=3 {
        assert!(!c.peer(id).node.has_ready(), "node {id} after stabilize");
    }
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    assert!(c.peer(1).node.has_ready());
    let rd = c.peer(1).ready();
    c.process(1, rd);
    assert!(
        !c.peer(1).node.has_ready(),
        "the leader has nothing more to do until followers answer"
    );
}

#[test]
fn advance_append_leaves_entries_unapplied_until_advance_apply() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance_append(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert_eq!(
        p.node.raft.raft_log.applied, 0,
        "advance_append must not mark anything applied"
    );
    assert!(
        !p.node.has_ready(),
        "entries being applied are not handed out again"
    );
    p.node.advance_apply();
    assert_eq!(p.node.raft.raft_log.applied, 1);
}

#[test]
fn advance_apply_to_is_capped_at_what_was_handed_out() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for d in [b"a", b"b", b"c"] {
        p.node.propose(vec![], d.to_vec()).unwrap();
    }
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance_append(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![2, 3, 4]);
    p.node.advance_apply_to(3);
    assert_eq!(p.node.raft.raft_log.applied, 3);
    p.node.advance_apply_to(100);
    assert_eq!(
        p.node.raft.raft_log.applied, 4,
        "applied cannot pass what was handed out"
    );
    assert!(!p.node.has_ready());
}

#[test]
fn advance_marks_only_the_readys_own_committed_entries_applied() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert_eq!(
        p.node.raft.raft_log.applied, 0,
        "the LightReady's entries are applied only when advance_apply says so"
    );
    p.node.advance_apply();
    assert_eq!(p.node.raft.raft_log.applied, 1);
}

#[test]
fn light_ready_commit_index_is_none_when_commit_did_not_move() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd);
    let light = c.peer(1).node.advance(rd).unwrap();
    assert_eq!(
        light.commit_index(),
        None,
        "the leader alone is no quorum of three"
    );
    assert!(light.committed_entries().is_empty());
}
