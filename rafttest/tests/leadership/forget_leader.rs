//! `forget_leader` (etcd-io/raft `ForgetLeader`): a follower drops its leader so that, under
//! PreVote + CheckQuorum, it stops honouring the old leader's lease.

use crate::common::*;
use crate::*;
use raft_core::eraftpb::MessageType;
use raft_core::{ReadOnlyOption, SoftState, StateRole};

/// A pre-vote (or vote) request from `from` to `to` for `term`, with `to`'s own last entry: an
/// equally up-to-date candidate.
fn up_to_date_request(
    net: &Network,
    msg_type: MessageType,
    from: u64,
    to: u64,
    term: u64,
) -> Message {
    let log = &net.node(to).raw.raft.raft_log;
    vote_request(msg_type, from, to, term, log.last_index(), log.last_term())
}

// etcd ForgetLeader: within the leader lease (CheckQuorum) a follower ignores a pre-vote; once it
// forgot its leader it grants an up-to-date candidate's pre-vote at once (without bumping its term).
#[test]
fn pre_vote_inside_the_lease_is_ignored_until_the_follower_forgets_its_leader() {
    let mut net = elected_with(3, pv_cq_config);
    let pre_vote = up_to_date_request(&net, MessageType::MsgRequestPreVote, 2, 3, 2);
    let _ = net.node_mut(3).raw.step(pre_vote.clone());
    assert!(
        queued(&net, 3).is_empty(),
        "3 answered a pre-vote inside its leader's lease: {:?}",
        summary(&queued(&net, 3))
    );

    assert!(
        net.node_mut(3).raw.forget_leader(),
        "a follower with a leader may forget it"
    );
    assert_eq!(net.node(3).raw.raft.leader_id, 0);
    net.node_mut(3).raw.step(pre_vote).unwrap();
    let sent = queued(&net, 3);
    assert_eq!(
        summary(&sent),
        vec![(MessageType::MsgRequestPreVoteResponse, 3, 2, 2)],
        "3 should answer the pre-vote once it forgot its leader"
    );
    assert!(
        !sent[0].reject,
        "3 should grant the up-to-date pre-candidate"
    );
    let hs = net.node(3).raw.basic_status().hard_state;
    assert_eq!(
        (hs.term, hs.vote),
        (1, 1),
        "a pre-vote must not change term or vote"
    );
}

// etcd ForgetLeader: once the leader is known to be gone, the followers forget it and a new leader
// is elected at once instead of after the lease runs out.
#[test]
fn after_forget_leader_a_follower_wins_while_the_old_leader_is_down_without_waiting_for_the_lease()
{
    let mut net = elected_with(3, pv_cq_config);
    net.isolate(1);
    // Without forgetting, 3 keeps honouring the lease and 2 cannot get past pre-vote.
    net.campaign(2);
    assert_eq!(net.node(2).state(), StateRole::PreCandidate);
    assert_eq!((net.node(2).term(), net.node(3).term()), (1, 1));
    assert_eq!(net.node(3).raw.raft.leader_id, 1);

    assert!(net.node_mut(3).raw.forget_leader());
    net.campaign(2);
    assert_eq!(
        net.leader(),
        Some(2),
        "2 should win once 3 forgot the old leader"
    );
    assert_eq!((net.node(2).term(), net.node(3).term()), (2, 2));
    assert_eq!(net.node(3).raw.raft.leader_id, 2);
    net.propose(2, b"x")
        .expect("the new leader accepts proposals");
    assert_eq!(net.node(3).applied_data(), vec![b"x".to_vec()]);

    // The old leader comes back, learns of term 2 and follows.
    net.recover();
    net.tick(2);
    assert_eq!(net.leader(), Some(2));
    assert_eq!(net.node(1).state(), StateRole::Follower);
    assert_eq!((net.node(1).term(), net.node(1).raw.raft.leader_id), (2, 2));
    assert_eq!(net.node(1).applied_data(), vec![b"x".to_vec()]);
}

// Every follower forgets the leader first (as an application that saw the leader fail would); a
// follower then wins at once.
#[test]
fn when_every_follower_forgot_the_leader_a_campaign_succeeds_first_time() {
    let mut net = elected_with(3, pv_cq_config);
    net.isolate(1);
    assert!(net.node_mut(2).raw.forget_leader());
    assert!(net.node_mut(3).raw.forget_leader());
    let mark = net.delivered.len();
    net.campaign(3);
    assert_eq!(net.leader(), Some(3));
    assert_eq!(net.node(3).term(), 2);
    let grants: Vec<_> = of_type(
        delivered_since(&net, mark),
        MessageType::MsgRequestPreVoteResponse,
    )
    .into_iter()
    .filter(|m| !m.reject)
    .collect();
    assert_eq!(
        summary(&grants),
        vec![(MessageType::MsgRequestPreVoteResponse, 2, 3, 2)]
    );
}

// etcd ForgetLeader: under lease-based reads the old leader may still serve reads from its lease,
// so forgetting it early is refused.
#[test]
fn forget_leader_is_refused_under_lease_based_reads() {
    let mut net = elected_with(3, |id| Config {
        read_only_option: ReadOnlyOption::LeaseBased,
        ..pv_cq_config(id)
    });
    let before = net.node(2).raw.basic_status();
    assert!(
        !net.node_mut(2).raw.forget_leader(),
        "forget_leader accepted under LeaseBased"
    );
    assert_eq!(
        net.node(2).raw.basic_status(),
        before,
        "a refused forget_leader changed state"
    );
    assert_eq!(net.node(2).raw.raft.leader_id, 1);
}

// etcd ForgetLeader is a follower's call: a leader, a candidate, a pre-candidate and a follower
// without a leader have nothing to forget.
#[test]
fn forget_leader_on_a_leader_candidate_or_leaderless_follower_returns_false() {
    let mut net = elected(3);
    let before = net.node(1).raw.basic_status();
    assert!(
        !net.node_mut(1).raw.forget_leader(),
        "a leader forgot itself"
    );
    assert_eq!(net.node(1).raw.basic_status(), before);

    net.isolate(2);
    net.campaign(2);
    assert_eq!(net.node(2).state(), StateRole::Candidate);
    let before = net.node(2).raw.basic_status();
    assert!(
        !net.node_mut(2).raw.forget_leader(),
        "a candidate forgot a leader"
    );
    assert_eq!(net.node(2).raw.basic_status(), before);

    let mut net = Network::with_config(3, pv_cq_config);
    net.isolate(2);
    net.campaign(2);
    assert_eq!(net.node(2).state(), StateRole::PreCandidate);
    assert!(
        !net.node_mut(2).raw.forget_leader(),
        "a pre-candidate forgot a leader"
    );

    let mut net = Network::new(3);
    assert!(
        !net.node_mut(1).raw.forget_leader(),
        "a follower without a leader forgot one"
    );
    assert_eq!(net.node(1).raw.raft.leader_id, 0);
}

// etcd ForgetLeader: the forgotten leader's next heartbeat makes the follower follow it again (and
// honour its lease again).
#[test]
fn after_forget_leader_the_old_leaders_heartbeat_restores_it() {
    let mut net = elected_with(3, pv_cq_config);
    let hs = net.node(3).raw.basic_status().hard_state;
    assert!(net.node_mut(3).raw.forget_leader());
    assert_eq!(net.node(3).raw.raft.leader_id, 0);
    assert_eq!(
        net.node(3).raw.basic_status().hard_state,
        hs,
        "forget_leader must not change term, vote or commit"
    );
    assert_eq!(net.node(3).state(), StateRole::Follower);
    let rd = net.node_mut(3).raw.ready().unwrap();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 0,
            raft_state: StateRole::Follower
        }),
        "the next Ready should tell the application the leader is forgotten"
    );
    net.node_mut(3).raw.advance(rd).unwrap();

    net.tick(1);
    assert_eq!(
        net.node(3).raw.raft.leader_id,
        1,
        "the old leader's heartbeat should restore it"
    );
    let pre_vote = up_to_date_request(&net, MessageType::MsgRequestPreVote, 2, 3, 2);
    let _ = net.node_mut(3).raw.step(pre_vote);
    assert!(
        queued(&net, 3).is_empty(),
        "3 should honour the lease again after its leader came back"
    );
}
