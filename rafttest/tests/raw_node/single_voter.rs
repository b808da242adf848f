//! A single voter elects itself and commits its proposals without sending any message.

use crate::harness::*;
use raft_core::{SoftState, StateRole};

// ---------------------------------------------------------------------------------------------
// A single voter needs no messages.
// ---------------------------------------------------------------------------------------------

#[test]
fn single_voter_campaign_becomes_leader_without_any_message() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    assert_eq!(p.node.raft.state, StateRole::Leader);

    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert!(
        rd.persisted_messages().is_empty(),
        "persisted: {:?}",
        rd.persisted_messages()
    );
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 1,
            raft_state: StateRole::Leader
        })
    );
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    // The new leader's empty entry (§5.4.2) is to be persisted; it is not committed before that.
    assert_eq!(rd.entries(), &[ent(1, 1, b"")]);
    assert!(rd.committed_entries().is_empty());
    assert!(rd.must_sync());
}

#[test]
fn single_voter_proposal_commits_in_the_light_ready_without_any_message() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    // Persisting the leader's own entry is all the quorum a single voter needs.
    assert_eq!(light.commit_index(), Some(1));
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert!(light.messages().is_empty());
    p.node.advance_apply();

    p.node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = p.ready();
    assert_eq!(rd.entries(), &[ent(2, 1, b"x")]);
    assert!(
        rd.committed_entries().is_empty(),
        "the proposal is not committed before it is persisted"
    );
    assert!(rd.messages().is_empty() && rd.persisted_messages().is_empty());
    assert_eq!(rd.hard_state(), None, "nothing of the hard state changed");
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(light.commit_index(), Some(2));
    assert_eq!(light.committed_entries(), &[ent(2, 1, b"x")]);
    assert!(light.messages().is_empty());
    p.node.advance_apply();
    assert!(
        !p.node.has_ready(),
        "the committed proposal was handed out in the LightReady; no Ready may repeat it"
    );
    for _ in 0..5 {
        p.node.tick();
    }
    assert!(
        !p.node.has_ready(),
        "ticks of a lone leader must not produce work"
    );
}

#[test]
fn single_voter_hands_out_every_proposal_exactly_once() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    p.drain();
    let mut n = 0u32;
    for batch in 1..=8u32 {
        for _ in 0..batch {
            n += 1;
            p.node.propose(vec![], n.to_be_bytes().to_vec()).unwrap();
        }
        // `Peer::process` checks every handed-out index is the next one and is persisted.
        p.drain();
    }
    let expected: Vec<Vec<u8>> = (1..=n).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(payloads(&p.handed_out), expected);
    assert_eq!(p.handed_out.len() as u64, p.node.raft.raft_log.committed);
}
