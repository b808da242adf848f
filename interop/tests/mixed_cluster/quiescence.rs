//! Quiescence (issue 17) next to real raft-rs peers: raft-rs does not know it, answers the
//! quiescing heartbeat like any other (echoing its context), and our leader then keeps the group
//! awake for as long as that peer is a member. Nobody campaigns and the group keeps committing.

use crate::support::{assert_all_applied, assert_no_refusals, propose_each, staggered, O, R};
use interop::{MixedCluster, Raw};
use raft_core::eraftpb::MessageType;

fn our_raw(c: &mut MixedCluster, id: u64) -> &mut raft_core::RawNode<storage_mem::MemStorage> {
    match &mut c.node_mut(id).raw {
        Raw::Ours { raw, .. } => raw,
        Raw::RaftRs { .. } => panic!("node {id} is raft-rs"),
    }
}

fn our_leader_stays_awake_next_to(libs: &[interop::Lib]) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 3);
    // Idle for a while: every member has matched, learned the commit and answered lately.
    for _ in 0..3 {
        c.tick_all();
    }
    let term = c.node(1).term();
    assert!(
        our_raw(&mut c, 1).quiesce(),
        "the leader may put the group to sleep"
    );
    c.stabilize();
    let echoed = c
        .delivered_of(MessageType::MsgHeartbeatResponse)
        .iter()
        .filter(|d| d.msg.context.as_ref() == b"\xA6quiesce")
        .count();
    assert!(
        echoed >= 1,
        "a raft-rs follower echoes the quiescing context"
    );
    let leader = our_raw(&mut c, 1);
    assert!(!leader.is_quiesced(), "the echo woke the leader");
    assert!(!leader.quiesce(), "the group is not put to sleep again");
    assert_eq!(
        leader.quiesce_blocker(),
        Some("a member does not know quiescence"),
    );
    // Far past every election timeout: the leader heartbeats, nobody campaigns.
    for _ in 0..100 {
        c.tick_all();
    }
    assert_eq!(c.leader(), Some(1));
    for id in c.ids() {
        assert_eq!(c.node(id).term(), term, "node {id} changed term");
    }
    expected.extend(propose_each(&mut c, 1, "after", 3));
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

#[test]
fn our_leader_with_raft_rs_followers_stays_awake_and_leads() {
    our_leader_stays_awake_next_to(&[O, R, R]);
}

#[test]
fn our_leader_with_one_raft_rs_follower_stays_awake_and_leads() {
    our_leader_stays_awake_next_to(&[O, O, R]);
}
