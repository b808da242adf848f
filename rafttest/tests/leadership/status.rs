//! `RawNode::status()` (with every member's progress on a leader, etcd `Status` / raft-rs
//! `Status`) and the allocation-free `basic_status()`.

use crate::common::*;
use crate::*;
use raft_core::eraftpb::HardState;
use raft_core::tracker::ProgressState;
use raft_core::{BasicStatus, RawNode, SoftState, StateRole};
use rafttest::network::default_config;

/// Each member's (id, matched, next_idx, state, is_learner) in a status.
fn progress_of(net: &Network, id: u64) -> Vec<(u64, u64, u64, ProgressState, bool)> {
    net.node(id)
        .raw
        .status()
        .progress
        .iter()
        .map(|(id, pr)| (*id, pr.matched, pr.next_idx, pr.state, pr.is_learner))
        .collect()
}

/// A hard state.
fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

/// A soft state.
fn ss(leader_id: u64, raft_state: StateRole) -> SoftState {
    SoftState {
        leader_id,
        raft_state,
    }
}

// etcd/raft-rs: a leader's status carries every member's progress, voters and learners.
#[test]
fn leader_status_lists_every_members_progress() {
    use ProgressState::Replicate;
    let mut net = network_with_members(&[1, 2, 3], &[4], default_config);
    net.campaign(1);
    net.propose(1, b"a").expect("proposal accepted");
    assert_eq!(
        progress_of(&net, 1),
        vec![
            (1, 2, 3, Replicate, false),
            (2, 2, 3, Replicate, false),
            (3, 2, 3, Replicate, false),
            (4, 2, 3, Replicate, true),
        ],
        "(id, matched, next, state, learner) of every member"
    );

    // A follower cut off: its appends go out optimistically but are never acknowledged.
    net.isolate(3);
    net.propose(1, b"b").expect("proposal accepted");
    assert_eq!(
        progress_of(&net, 1),
        vec![
            (1, 3, 4, Replicate, false),
            (2, 3, 4, Replicate, false),
            (3, 2, 4, Replicate, false),
            (4, 3, 4, Replicate, true),
        ]
    );
    let status = net.node(1).raw.status();
    assert_eq!(
        status.basic,
        BasicStatus {
            id: 1,
            hard_state: hs(1, 1, 3),
            soft_state: ss(1, StateRole::Leader),
            applied: 3,
            lead_transferee: None,
        }
    );
    assert_eq!(status.basic, net.node(1).raw.basic_status());
}

// etcd/raft-rs: only a leader reports progress; a follower's or candidate's status has none.
#[test]
fn follower_and_candidate_status_have_no_progress() {
    let mut net = elected(3);
    net.propose(1, b"a").expect("proposal accepted");
    let status = net.node(2).raw.status();
    assert!(status.progress.is_empty(), "a follower reported progress");
    assert_eq!(
        status.basic,
        BasicStatus {
            id: 2,
            hard_state: hs(1, 1, 2),
            soft_state: ss(1, StateRole::Follower),
            applied: 2,
            lead_transferee: None,
        }
    );

    net.isolate(2);
    net.campaign(2);
    let status = net.node(2).raw.status();
    assert!(status.progress.is_empty(), "a candidate reported progress");
    assert_eq!(
        status.basic,
        BasicStatus {
            id: 2,
            hard_state: hs(2, 2, 2),
            soft_state: ss(0, StateRole::Candidate),
            applied: 2,
            lead_transferee: None,
        }
    );
}

// raft-rs `BasicStatus`: the transferee shows while a transfer is pending, on the leader only.
#[test]
fn basic_status_shows_the_lead_transferee_during_a_transfer() {
    let mut net = elected(3);
    net.isolate(3);
    net.node_mut(1).raw.transfer_leader(3);
    net.stabilize();
    let basic = net.node(1).raw.basic_status();
    assert_eq!(basic.lead_transferee, Some(3));
    assert_eq!(net.node(1).raw.status().basic, basic);
    assert_eq!(net.node(2).raw.basic_status().lead_transferee, None);
    for _ in 0..default_config(1).election_tick {
        net.tick(1);
    }
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "the aborted transfer still shows"
    );
}

// raft-rs `BasicStatus`: `applied` is what the application reported applied, not the commit index.
#[test]
fn basic_status_applied_is_what_the_application_reported() {
    let storage = storage_with(&[1], &[], 0, 0);
    let mut node = RawNode::new(&config(1), storage.clone(), &logger()).unwrap();
    node.campaign().unwrap();
    let rd = node.ready().unwrap();
    storage.wl().append(rd.entries()).unwrap();
    if let Some(h) = rd.hard_state() {
        storage.wl().set_hardstate(*h);
    }
    let mut light = node.advance_append(rd).unwrap();
    assert_eq!(light.commit_index(), Some(1));
    assert_eq!(light.take_committed_entries().len(), 1);
    let basic = node.basic_status();
    assert_eq!(basic.hard_state, hs(1, 1, 1));
    assert_eq!(basic.soft_state, ss(1, StateRole::Leader));
    assert_eq!(basic.applied, 0, "nothing was reported applied yet");
    node.advance_apply();
    assert_eq!(node.basic_status().applied, 1);
    assert_eq!(
        node.status().progress.len(),
        1,
        "a single voter lists itself"
    );
}

/// raft-rs parity (issue 18): the leader's own progress reports the commit index it reached
/// (raft-rs updates it whenever the leader commits), from the election's empty entry on.
#[test]
fn the_leaders_own_progress_follows_its_commit_index() {
    let mut net = network_with_members(&[1, 2, 3], &[], default_config);
    net.campaign(1);
    for round in 0..3u8 {
        let status = net.node(1).raw.status();
        let committed = status.basic.hard_state.commit;
        assert!(committed > 0, "round {round}: the election's entry commits");
        let own = status
            .progress
            .iter()
            .find(|(id, _)| *id == 1)
            .expect("own progress");
        assert_eq!(
            own.1.committed_index, committed,
            "round {round}: the leader's own progress lags its commit index"
        );
        net.propose(1, &[round]).unwrap();
    }
}
