//! Quiescence (issue 17): an idle group sleeps (its ticks do nothing), wakes on any message, a
//! proposal, a read or `wake()`, elects a new leader once woken after its leader died asleep,
//! never serves a lease read from before its nap, and stays awake while a member does not know
//! quiescence.

use bytes::Bytes;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{Config, ReadOnlyOption, StateRole};
use rafttest::network::default_config;
use rafttest::Network;

/// The context of a quiescing heartbeat on the wire.
const QUIESCE_CTX: &[u8] = b"\xA6quiesce";

fn net(n: u64, lease: bool) -> Network {
    Network::with_config(n, |id| Config {
        pre_vote: true,
        check_quorum: true,
        read_only_option: if lease {
            ReadOnlyOption::LeaseBased
        } else {
            ReadOnlyOption::Safe
        },
        ..default_config(id)
    })
}

/// A 3-node group led by node 1, with one write applied everywhere.
fn idle_group(lease: bool) -> Network {
    let mut net = net(3, lease);
    net.campaign(1);
    net.propose(1, b"first").unwrap();
    net
}

/// Wakes nodes 2 and 3 (node 1 is cut off) and ticks them until one of them leads; returns it.
fn wake_and_elect_2_or_3(net: &mut Network) -> u64 {
    net.node_mut(2).raw.wake();
    net.node_mut(3).raw.wake();
    for _ in 0..50 {
        net.tick(2);
        net.tick(3);
        if let Some(leader @ (2 | 3)) = net.leader() {
            return leader;
        }
    }
    panic!("nodes 2 and 3 elected no leader within 50 ticks");
}

fn asleep(net: &Network) -> Vec<u64> {
    (1..=3)
        .filter(|id| net.node(*id).raw.is_quiesced())
        .collect()
}

#[test]
fn an_idle_group_sleeps_and_its_ticks_do_nothing() {
    let mut net = idle_group(false);
    assert_eq!(net.node(1).raw.quiesce_blocker(), None);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    assert_eq!(asleep(&net), [1, 2, 3]);
    let delivered = net.delivered_count;
    for _ in 0..100 {
        net.tick_all();
    }
    assert_eq!(
        net.delivered_count, delivered,
        "a sleeping group sends nothing: no heartbeat, no election"
    );
    assert_eq!(asleep(&net), [1, 2, 3]);
    assert_eq!(net.leader(), Some(1));
    assert!((1..=3).all(|id| net.node(id).term() == net.node(1).term()));
}

#[test]
fn a_proposal_on_a_follower_wakes_the_group_and_commits() {
    let mut net = idle_group(false);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    net.propose(3, b"second").unwrap();
    assert!(asleep(&net).is_empty(), "asleep: {:?}", asleep(&net));
    for id in 1..=3 {
        assert_eq!(
            net.node(id).applied_data(),
            [b"first".to_vec(), b"second".to_vec()],
            "node {id}"
        );
    }
    // Awake again, the group ticks and heartbeats as usual.
    let delivered = net.delivered_count;
    net.tick_all();
    assert!(net.delivered_count > delivered);
}

#[test]
fn a_leader_does_not_quiesce_with_work_pending() {
    let mut net = idle_group(false);
    assert_eq!(net.node(2).raw.quiesce_blocker(), Some("not the leader"));
    assert!(!net.node_mut(2).raw.quiesce());

    // A follower that has not got the last entry.
    net.cut(1, 3);
    net.propose(1, b"second").unwrap();
    assert_eq!(
        net.node(1).raw.quiesce_blocker(),
        Some("a member is behind")
    );
    assert!(!net.node_mut(1).raw.quiesce());
    net.recover();
    net.tick(1);
    assert_eq!(net.node(1).raw.quiesce_blocker(), None);

    // A read waiting for its confirmation round.
    net.cut(1, 2);
    net.cut(1, 3);
    net.node_mut(1).raw.read_index(b"r".to_vec()).unwrap();
    net.stabilize();
    assert_eq!(net.node(1).raw.quiesce_blocker(), Some("reads are pending"));
    net.recover();
    net.tick(1);
    assert_eq!(net.node(1).raw.quiesce_blocker(), None);
}

#[test]
fn a_group_whose_leader_died_asleep_elects_a_new_one_once_woken() {
    let mut net = idle_group(false);
    let term = net.node(1).term();
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    // The leader dies; asleep, the followers cannot notice.
    net.isolate(1);
    for _ in 0..100 {
        net.tick(2);
        net.tick(3);
    }
    assert_eq!(
        asleep(&net),
        [1, 2, 3],
        "nobody noticed: the failure detector must"
    );
    // The application's failure detector sees node 1 down and wakes the others.
    let leader = wake_and_elect_2_or_3(&mut net);
    assert!(net.node(leader).term() > term);
    net.propose(leader, b"after").unwrap();
    let other = 5 - leader;
    assert_eq!(
        net.node(other).applied_data(),
        [b"first".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn a_lease_read_is_not_served_from_a_lease_held_before_the_nap() {
    let mut net = idle_group(true);
    // With the lease fresh, a read is served at once.
    net.node_mut(1).raw.read_index(b"fresh".to_vec()).unwrap();
    net.stabilize();
    assert_eq!(net.node(1).read_states.len(), 1);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    // A long nap; meanwhile the leader is cut off, the others are woken and elect a new leader
    // that commits a write.
    net.isolate(1);
    let leader = wake_and_elect_2_or_3(&mut net);
    net.propose(leader, b"newer").unwrap();
    // The old leader's clock stopped while it slept: its lease, counted in ticks, would still
    // look valid. A read wakes it, and must wait for a quorum that never answers.
    net.node_mut(1).raw.read_index(b"stale?".to_vec()).unwrap();
    net.stabilize();
    assert_eq!(
        net.node(1).read_states.len(),
        1,
        "no read served from a lease held before the nap"
    );
    assert!(!net.node(1).raw.is_quiesced());
}

#[test]
fn a_member_that_answers_the_quiescing_heartbeat_keeps_the_group_awake() {
    let mut net = idle_group(false);
    assert!(net.node_mut(1).raw.quiesce());
    // What a raft-rs follower does with an unknown heartbeat context: it echoes it.
    let term = net.node(1).term();
    net.send(vec![Message {
        msg_type: MessageType::MsgHeartbeatResponse as i32,
        from: 3,
        to: 1,
        term,
        commit: net.node(1).raw.raft.raft_log.committed,
        context: Bytes::from_static(QUIESCE_CTX),
        ..Default::default()
    }]);
    assert!(!net.node(1).raw.is_quiesced(), "the answer woke the leader");
    assert_eq!(
        net.node(1).raw.quiesce_blocker(),
        Some("a member does not know quiescence")
    );
    assert!(!net.node_mut(1).raw.quiesce());
}

#[test]
fn a_lost_quiescing_heartbeat_costs_one_election_timeout_and_no_term() {
    let mut net = idle_group(false);
    let term = net.node(1).term();
    net.cut(1, 3);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    net.recover();
    assert_eq!(asleep(&net), [1, 2]);
    // Node 3 never heard: it times out and asks for a pre-vote, which wakes the leader, whose
    // heartbeats keep everybody following it.
    for _ in 0..30 {
        net.tick(3);
    }
    assert!(asleep(&net).is_empty(), "asleep: {:?}", asleep(&net));
    for _ in 0..30 {
        net.tick_all();
    }
    assert_eq!(net.leader(), Some(1));
    assert!((1..=3).all(|id| net.node(id).term() == term));
    assert_eq!(net.node(3).state(), StateRole::Follower);
}

#[test]
fn a_leader_does_not_quiesce_while_a_member_is_silent() {
    // Asleep, a leader cut off from its quorum would never step down (found by the simulator,
    // seed 5066: it napped again after every wake-up).
    let mut net = idle_group(false);
    net.isolate(3);
    for _ in 0..25 {
        net.tick(1);
        net.tick(2);
    }
    assert_eq!(net.leader(), Some(1), "1 and 2 still make a quorum");
    assert_eq!(
        net.node(1).raw.quiesce_blocker(),
        Some("a member was not heard from lately")
    );
    assert!(!net.node_mut(1).raw.quiesce());
    net.recover();
    for _ in 0..3 {
        net.tick(1);
    }
    assert_eq!(net.node(1).raw.quiesce_blocker(), None);
}

#[test]
fn a_heartbeat_round_crossing_the_quiescing_heartbeat_leaves_the_group_asleep() {
    let mut net = idle_group(false);
    // The leader heartbeats on this tick (heartbeat_tick 1) and quiesces right after: both go
    // out together, and the followers' answers to the first reach a sleeping leader.
    net.node_mut(1).raw.tick();
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    assert_eq!(
        asleep(&net),
        [1, 2, 3],
        "an answer that asks for nothing wakes no one"
    );
    let delivered = net.delivered_count;
    for _ in 0..50 {
        net.tick_all();
    }
    assert_eq!(net.delivered_count, delivered);
}

#[test]
fn a_proposal_on_a_sleeping_leader_wakes_it() {
    let mut net = idle_group(false);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    // Asleep, the leader would never retry an append that is lost.
    net.node_mut(1)
        .raw
        .propose(vec![], b"second".to_vec())
        .unwrap();
    assert!(!net.node(1).raw.is_quiesced());
    net.stabilize();
    assert_eq!(
        net.node(3).applied_data(),
        [b"first".to_vec(), b"second".to_vec()]
    );
}

#[test]
fn a_sleeping_leader_frees_its_progress_and_a_woken_one_replicates_at_once() {
    let mut net = idle_group(false);
    assert!(net.node_mut(1).raw.quiesce());
    net.stabilize();
    assert!(
        net.node(1).raw.status().progress.is_empty(),
        "asleep, the leader keeps no progress"
    );
    net.node_mut(1).raw.wake();
    let last = net.node(1).raw.raft.raft_log.last_index();
    for id in 1..=3 {
        let pr = net.node(1).raw.raft.prs.get(id).expect("progress rebuilt");
        assert_eq!((pr.matched, pr.next_idx), (last, last + 1), "peer {id}");
        assert_eq!(pr.state, raft_core::tracker::ProgressState::Replicate);
    }
    net.propose(1, b"second").unwrap();
    for id in 2..=3 {
        assert_eq!(
            net.node(id).applied_data(),
            [b"first".to_vec(), b"second".to_vec()]
        );
    }
}

#[test]
fn an_answer_to_a_heartbeat_from_before_the_nap_does_not_renew_the_lease() {
    let mut net = idle_group(true);
    // The leader heartbeats and quiesces in the same tick; the followers' answers to that
    // heartbeat are held back (a slow network) while the followers fall asleep.
    net.node_mut(1).raw.tick();
    assert!(net.node_mut(1).raw.quiesce());
    let sent = net.node_mut(1).handle_ready().unwrap();
    let mut held = Vec::new();
    for m in sent {
        let to = m.to;
        net.node_mut(to).raw.step(m).unwrap();
        held.extend(net.node_mut(to).handle_ready().unwrap());
    }
    assert!(
        held.iter()
            .all(|m| m.msg_type == MessageType::MsgHeartbeatResponse as i32),
        "{held:?}"
    );
    assert_eq!(asleep(&net), [1, 2, 3]);
    // A long nap; the leader is cut off, the others are woken and elect a new leader that
    // commits a write.
    net.isolate(1);
    let leader = wake_and_elect_2_or_3(&mut net);
    net.propose(leader, b"newer").unwrap();
    // The old leader wakes (a read), then the held answers finally arrive. They acknowledge a
    // heartbeat sent before the nap: the time they vouch for is long gone, though the leader's
    // clock, stopped while asleep, says otherwise.
    net.node_mut(1).raw.read_index(b"woke".to_vec()).unwrap();
    for m in held {
        net.node_mut(1).raw.step(m).unwrap();
    }
    net.node_mut(1).raw.read_index(b"stale?".to_vec()).unwrap();
    net.stabilize();
    assert!(
        net.node(1).read_states.is_empty(),
        "a read was served from a lease renewed by answers from before the nap: {:?}",
        net.node(1).read_states
    );
}
