//! Leadership transfer (thesis §3.10, etcd-io/raft and raft-rs `MsgTransferLeader` /
//! `MsgTimeoutNow`).

use crate::common::*;
use crate::*;
use raft_core::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, MessageType};
use raft_core::raft::CAMPAIGN_TRANSFER;
use raft_core::{BasicStatus, Error, StateRole};
use raft_proto::conf_changes_from_string;
use rafttest::network::default_config;
use storage_mem::conf_state;

/// The network's default config with pre-vote on.
fn pre_vote_config(id: u64) -> raft_core::Config {
    raft_core::Config {
        pre_vote: true,
        ..default_config(id)
    }
}

/// Asserts that node `id` of `net` leads at `term` and every other node follows it at `term`.
fn assert_leads(net: &Network, id: u64, term: u64) {
    assert_eq!(net.leader(), Some(id), "node {id} should lead");
    for (other, node) in &net.nodes {
        assert_eq!(node.term(), term, "node {other} is not at term {term}");
        let ss = node.raw.raft.soft_state();
        assert_eq!(ss.leader_id, id, "node {other} does not know {id} leads");
        let want = if *other == id {
            StateRole::Leader
        } else {
            StateRole::Follower
        };
        assert_eq!(ss.raft_state, want, "node {other} has the wrong role");
    }
}

/// The `MsgTimeoutNow` messages among `msgs`, as (from, to, term).
fn timeout_nows(msgs: &[Message]) -> Vec<(u64, u64, u64)> {
    of_type(msgs, MessageType::MsgTimeoutNow)
        .iter()
        .map(|m| (m.from, m.to, m.term))
        .collect()
}

/// Asserts that the leader `id` of `net` has no transfer pending and accepts a proposal that then
/// commits on every node it reaches.
fn assert_accepts_proposals(net: &mut Network, id: u64, data: &[u8]) {
    assert_eq!(
        net.node(id).raw.basic_status().lead_transferee,
        None,
        "leader {id} still has a transfer pending"
    );
    assert_eq!(
        net.propose(id, data),
        Ok(()),
        "leader {id} refused a proposal with no transfer pending"
    );
    let data = data.to_vec();
    assert!(
        net.node(id).applied_data().contains(&data),
        "the proposal was not committed and applied on leader {id}"
    );
}

// §3.10: an up-to-date transferee is told to campaign at once; it wins the next term, skipping
// pre-vote, and its vote requests say they are a transfer (raft-rs `CampaignTransfer`).
#[test]
fn transfer_to_up_to_date_follower_sends_timeout_now_at_once_and_transferee_wins() {
    let mut net = elected_with(3, pre_vote_config);
    net.node_mut(1).raw.transfer_leader(2);
    assert_eq!(
        summary(&queued(&net, 1)),
        vec![(MessageType::MsgTimeoutNow, 1, 2, 1)],
        "the leader should send exactly one MsgTimeoutNow to the up-to-date transferee, at once"
    );
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(2));

    let mark = net.delivered.len();
    net.stabilize();
    assert_leads(&net, 2, 2);
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "the old leader still records a transfer after stepping down"
    );
    let traffic = delivered_since(&net, mark);
    assert!(
        of_type(traffic, MessageType::MsgRequestPreVote).is_empty(),
        "a transfer campaign must skip pre-vote: {:?}",
        summary(traffic)
    );
    let votes = of_type(traffic, MessageType::MsgRequestVote);
    assert_eq!(
        summary(&votes),
        vec![
            (MessageType::MsgRequestVote, 2, 1, 2),
            (MessageType::MsgRequestVote, 2, 3, 2),
        ],
        "the transferee should ask both other voters for term 2"
    );
    for v in &votes {
        assert_eq!(
            &v.context[..],
            CAMPAIGN_TRANSFER,
            "a transfer vote request must carry the CampaignTransfer context"
        );
    }
    assert_accepts_proposals(&mut net, 2, b"after");
    assert_logs_equal(&net, 2);
}

// §3.10: "the prior leader sends its log entries to the target server" first; MsgTimeoutNow only
// once the transferee's acknowledgement shows it holds the leader's whole log.
#[test]
fn transfer_to_lagging_follower_catches_it_up_before_timeout_now() {
    let mut net = elected(3);
    net.isolate(3);
    for data in [b"a", b"b", b"c"] {
        net.propose(1, data).expect("proposal accepted");
    }
    let last = net.node(1).raw.raft.raft_log.last_index();
    assert_eq!(last, 4);
    net.recover();

    net.node_mut(1).raw.transfer_leader(3);
    assert!(
        timeout_nows(&queued(&net, 1)).is_empty(),
        "MsgTimeoutNow sent to a transferee that lags"
    );
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));

    let mark = net.delivered.len();
    net.stabilize();
    let traffic = delivered_since(&net, mark).to_vec();
    let to_3: Vec<&Message> = traffic
        .iter()
        .filter(|m| m.from == 1 && m.to == 3)
        .collect();
    assert_eq!(
        to_3.first().map(|m| mtype(m)),
        Some(MessageType::MsgAppend),
        "the transferee should first get an append: {:?}",
        summary(&traffic)
    );
    let tn = traffic
        .iter()
        .position(|m| m.msg_type == MessageType::MsgTimeoutNow as i32)
        .expect("the leader never sent MsgTimeoutNow");
    assert_eq!(
        timeout_nows(&traffic),
        vec![(1, 3, 1)],
        "exactly one MsgTimeoutNow, to 3"
    );
    let caught_up = traffic[..tn].iter().any(|m| {
        m.msg_type == MessageType::MsgAppendResponse as i32
            && m.from == 3
            && !m.reject
            && m.index == last
    });
    assert!(
        caught_up,
        "MsgTimeoutNow went out before 3 acknowledged index {last}: {:?}",
        summary(&traffic)
    );
    assert_leads(&net, 3, 2);
    assert_eq!(
        net.node(3).applied_data(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
        "the new leader does not hold every entry of the old one"
    );
    assert_logs_equal(&net, 3);
}

// etcd/raft-rs: a transfer that does not finish within an election timeout is abandoned, and the
// leader accepts proposals again.
#[test]
fn transfer_aborts_after_an_election_timeout_when_the_transferee_never_answers() {
    let mut net = elected(3);
    let election_tick = default_config(1).election_tick;
    // The timeout counts from the transfer's start, not from the leader's last election tick.
    for _ in 0..election_tick / 2 + 1 {
        net.tick(1);
    }
    net.isolate(3);
    net.node_mut(1).raw.transfer_leader(3);
    net.stabilize();
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));
    for _ in 1..election_tick {
        net.tick(1);
    }
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        Some(3),
        "the transfer was abandoned before a whole election timeout passed"
    );
    assert_eq!(net.propose(1, b"early"), Err(Error::ProposalDropped));
    net.tick(1);
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "the transfer is still pending after an election timeout"
    );
    assert_eq!(net.leader(), Some(1));
    assert_eq!(
        net.node(1).term(),
        1,
        "an aborted transfer must not change the term"
    );
    assert_accepts_proposals(&mut net, 1, b"late");
    assert_eq!(net.node(2).applied_data(), vec![b"late".to_vec()]);
}

// etcd/raft-rs: a learner cannot become leader, so a transfer to it is ignored.
#[test]
fn transfer_to_a_learner_is_ignored() {
    let mut net = network_with_members(&[1, 2, 3], &[4], default_config);
    net.campaign(1);
    assert_eq!(net.leader(), Some(1));
    net.node_mut(1).raw.transfer_leader(4);
    assert!(
        timeout_nows(&queued(&net, 1)).is_empty(),
        "MsgTimeoutNow sent to a learner"
    );
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, None);
    net.stabilize();
    assert_leads(&net, 1, 1);
    assert_accepts_proposals(&mut net, 1, b"x");
    assert_eq!(net.node(4).applied_data(), vec![b"x".to_vec()]);
}

// etcd/raft-rs: a leader asked to transfer to itself has nothing to do.
#[test]
fn transfer_to_self_is_ignored() {
    let mut net = elected(3);
    net.node_mut(1).raw.transfer_leader(1);
    assert!(
        queued(&net, 1).is_empty(),
        "a transfer to self sent {:?}",
        queued(&net, 1)
    );
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, None);
    net.stabilize();
    assert_leads(&net, 1, 1);
    assert_accepts_proposals(&mut net, 1, b"x");
}

// etcd/raft-rs: a transfer to self while another is pending abandons the pending one (the leader
// already is where the caller wants leadership to be).
#[test]
fn transfer_to_self_cancels_a_pending_transfer() {
    let mut net = elected(3);
    net.isolate(3);
    net.node_mut(1).raw.transfer_leader(3);
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));
    net.node_mut(1).raw.transfer_leader(1);
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "a transfer to self should abandon the pending transfer"
    );
    assert_accepts_proposals(&mut net, 1, b"x");
}

// etcd/raft-rs: a transfer to a node outside the configuration is ignored.
#[test]
fn transfer_to_a_non_member_is_ignored() {
    let mut net = elected(3);
    net.node_mut(1).raw.transfer_leader(9);
    assert!(
        queued(&net, 1).is_empty(),
        "a transfer to a non-member sent {:?}",
        queued(&net, 1)
    );
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, None);
    net.stabilize();
    assert_leads(&net, 1, 1);
    assert_accepts_proposals(&mut net, 1, b"x");
}

// §3.10: "the prior leader stops accepting new client requests" during the transfer; local and
// forwarded proposals are dropped, and the new leader accepts them once the transfer is done.
#[test]
fn proposals_are_dropped_during_a_transfer_and_accepted_after_it() {
    let mut net = elected(3);
    net.isolate(3);
    net.propose(1, b"a").expect("proposal accepted");
    net.node_mut(1).raw.transfer_leader(3);
    net.stabilize();
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));
    assert_eq!(
        net.propose(1, b"refused"),
        Err(Error::ProposalDropped),
        "the leader accepted a proposal during a transfer"
    );
    let last = net.node(1).raw.raft.raft_log.last_index();
    // Node 2 forwards its proposal (Ok for it); the leader must drop it too.
    net.propose(2, b"forwarded")
        .expect("a follower forwards proposals");
    assert_eq!(
        net.node(1).raw.raft.raft_log.last_index(),
        last,
        "the leader appended a forwarded proposal during a transfer"
    );

    net.recover();
    // The next heartbeat shows 3 lagging; it catches up and takes over.
    net.tick(1);
    assert_leads(&net, 3, 2);
    assert_accepts_proposals(&mut net, 3, b"b");
    for id in 1..=3 {
        assert_eq!(
            net.node(id).applied_data(),
            vec![b"a".to_vec(), b"b".to_vec()],
            "node {id} applied a dropped proposal or missed an accepted one"
        );
    }
}

// etcd/raft-rs: a transfer to another node replaces the pending one; the first transferee no
// longer gets MsgTimeoutNow even once it catches up.
#[test]
fn a_second_transfer_to_another_node_replaces_the_first() {
    let mut r = leader_with_lagging_3();
    r.step(transfer_request(3)).unwrap();
    assert_eq!(r.lead_transferee, Some(3));
    let msgs = r.read_messages();
    assert!(
        timeout_nows(&msgs).is_empty(),
        "3 lags: no MsgTimeoutNow yet"
    );
    assert!(
        msgs.iter()
            .any(|m| m.msg_type == MessageType::MsgAppend as i32 && m.to == 3),
        "the lagging transferee should get an append: {:?}",
        summary(&msgs)
    );

    r.step(transfer_request(2)).unwrap();
    assert_eq!(
        r.lead_transferee,
        Some(2),
        "the new transfer should replace the pending one"
    );
    assert_eq!(
        timeout_nows(&r.read_messages()),
        vec![(1, 2, 1)],
        "the up-to-date new transferee should get MsgTimeoutNow at once"
    );

    r.step(append_ack(3, 1, 1, 2)).unwrap();
    assert!(
        timeout_nows(&r.read_messages()).is_empty(),
        "the replaced transferee got MsgTimeoutNow when it caught up"
    );
    assert_eq!(r.lead_transferee, Some(2));
}

// etcd/raft-rs: a second request for the transfer in progress is ignored: nothing is sent again and
// its deadline is not extended.
#[test]
fn the_same_transfer_requested_twice_sends_nothing_new() {
    let mut r = leader_with_lagging_3();
    r.step(transfer_request(3)).unwrap();
    let first = r.read_messages();
    assert_eq!(
        summary(&of_type(&first, MessageType::MsgAppend))
            .iter()
            .filter(|s| s.2 == 3)
            .count(),
        1,
        "one append should go to the lagging transferee: {:?}",
        summary(&first)
    );
    r.step(transfer_request(3)).unwrap();
    assert_eq!(
        summary(&r.read_messages()),
        vec![],
        "a repeated transfer request sent messages again"
    );

    let mut r = leader_with_lagging_3();
    r.step(transfer_request(2)).unwrap();
    assert_eq!(timeout_nows(&r.read_messages()), vec![(1, 2, 1)]);
    let half = default_config(1).election_tick / 2;
    for _ in 0..half {
        r.tick();
    }
    r.read_messages();
    r.step(transfer_request(2)).unwrap();
    assert!(
        timeout_nows(&r.read_messages()).is_empty(),
        "a repeated transfer request sent MsgTimeoutNow again"
    );
    for _ in half..default_config(1).election_tick {
        r.tick();
    }
    assert_eq!(
        r.lead_transferee, None,
        "the repeated request extended the transfer's deadline"
    );
}

// raft-rs `CampaignTransfer`: voters that heard from the leader within the election timeout ignore
// ordinary higher-term vote requests (check-quorum lease), but grant a transfer's.
#[test]
fn transfer_wins_under_pre_vote_and_check_quorum_despite_the_leader_lease() {
    let mut net = elected_with(3, pv_cq_config);
    // An ordinary vote request for term 2 is ignored by 3: it is within its leader's lease.
    let (li, lt) = {
        let log = &net.node(2).raw.raft.raft_log;
        (log.last_index(), log.last_term())
    };
    let plain = vote_request(MessageType::MsgRequestVote, 2, 3, 2, li, lt);
    let _ = net.node_mut(3).raw.step(plain);
    assert!(
        queued(&net, 3).is_empty(),
        "3 answered a vote request inside the lease"
    );
    assert_eq!((net.node(3).term(), net.node(3).raw.raft.vote), (1, 1));

    net.node_mut(1).raw.transfer_leader(2);
    net.stabilize();
    assert_leads(&net, 2, 2);
    assert_eq!(
        net.node(3).raw.raft.vote,
        2,
        "3 should have granted the transfer campaign its vote inside the lease"
    );
    assert_accepts_proposals(&mut net, 2, b"x");
}

// raft-rs: a follower forwards MsgTransferLeader to its leader with `from` = the transferee.
#[test]
fn a_follower_forwards_transfer_leader_to_the_leader_naming_the_transferee() {
    let mut net = elected(3);
    net.node_mut(3).raw.transfer_leader(2);
    let sent = queued(&net, 3);
    assert_eq!(
        summary(&sent),
        vec![(MessageType::MsgTransferLeader, 2, 1, 1)],
        "the follower should forward the request to leader 1 as if from transferee 2"
    );
    net.stabilize();
    assert_leads(&net, 2, 2);

    // A follower may ask for leadership for itself the same way.
    net.node_mut(3).raw.transfer_leader(3);
    assert_eq!(
        summary(&queued(&net, 3)),
        vec![(MessageType::MsgTransferLeader, 3, 2, 2)]
    );
    net.stabilize();
    assert_leads(&net, 3, 3);
}

// etcd/raft-rs: a follower that knows no leader drops a transfer request.
#[test]
fn a_follower_without_a_leader_drops_transfer_leader() {
    let mut net = Network::new(3);
    net.node_mut(2).raw.transfer_leader(3);
    assert!(
        queued(&net, 2).is_empty(),
        "sent {:?}",
        summary(&queued(&net, 2))
    );
    net.stabilize();
    assert_eq!(net.leader(), None);
}

// etcd `applyConfChange`: a conf change that removes the transferee from the voters aborts the
// transfer, and the leader accepts proposals again.
#[test]
fn a_conf_change_removing_the_transferee_aborts_the_transfer() {
    let mut net = elected(4);
    net.isolate(3);
    let remove_3 = ConfChange {
        change_type: ConfChangeType::RemoveNode as i32,
        node_id: 3,
        ..Default::default()
    };
    // Proposed before the transfer (proposals are refused during one), committed after it starts.
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], remove_3)
        .expect("conf change accepted");
    net.node_mut(1).raw.transfer_leader(3);
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));
    net.stabilize();
    assert_eq!(net.node(1).conf_state(), conf_state(vec![1, 2, 4], vec![]));
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "removing the transferee should abort the transfer"
    );
    assert_eq!(net.leader(), Some(1));
    assert_eq!(net.node(1).term(), 1);
    assert_accepts_proposals(&mut net, 1, b"x");
}

// etcd `applyConfChange`: demoting the transferee to a learner aborts the transfer; it catches up
// as a learner and is never told to campaign.
#[test]
fn a_conf_change_demoting_the_transferee_to_learner_aborts_the_transfer() {
    let mut net = elected(4);
    net.isolate(3);
    let demote_3 = ConfChangeV2 {
        changes: conf_changes_from_string("l3").unwrap(),
        ..Default::default()
    };
    net.node_mut(1)
        .raw
        .propose_conf_change(vec![], demote_3)
        .expect("conf change accepted");
    net.node_mut(1).raw.transfer_leader(3);
    assert_eq!(net.node(1).raw.basic_status().lead_transferee, Some(3));
    net.stabilize();
    assert_eq!(net.node(1).conf_state(), conf_state(vec![1, 2, 4], vec![3]));
    assert_eq!(
        net.node(1).raw.basic_status().lead_transferee,
        None,
        "demoting the transferee should abort the transfer"
    );

    let mark = net.delivered.len();
    net.recover();
    net.tick(1);
    assert!(
        timeout_nows(delivered_since(&net, mark)).is_empty(),
        "the demoted transferee was told to campaign"
    );
    assert_leads(&net, 1, 1);
    assert_accepts_proposals(&mut net, 1, b"x");
    assert_eq!(net.node(3).applied_data(), vec![b"x".to_vec()]);
}

// etcd/raft-rs `reset`: a leader that steps down for a higher term forgets its transfer.
#[test]
fn a_leader_stepping_down_for_a_higher_term_clears_the_transfer() {
    let mut r = leader_with_lagging_3();
    r.step(transfer_request(3)).unwrap();
    r.read_messages();
    assert_eq!(BasicStatus::new(&r).lead_transferee, Some(3));
    let heartbeat = msg(MessageType::MsgHeartbeat, 2, 1, 2);
    r.step(heartbeat).unwrap();
    assert_eq!(
        (r.state, r.term, r.leader_id),
        (StateRole::Follower, 2, 2),
        "the leader should follow 2 in term 2"
    );
    assert_eq!(
        BasicStatus::new(&r).lead_transferee,
        None,
        "a deposed leader still records a transfer"
    );
    // Its late acknowledgement from 3 cannot trigger a MsgTimeoutNow either.
    let _ = r.step(append_ack(3, 1, 1, 2));
    assert!(timeout_nows(&r.read_messages()).is_empty());
}

// §3.10: MsgTimeoutNow makes a voter campaign at once for the next term, without pre-vote and
// without waiting for its election timeout.
#[test]
fn timeout_now_makes_a_voter_campaign_at_once_without_pre_vote() {
    let mut cfg = config(2);
    cfg.pre_vote = true;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 1));
    r.become_follower(1, 1);
    r.step(msg(MessageType::MsgTimeoutNow, 1, 2, 1)).unwrap();
    assert_eq!((r.state, r.term, r.vote), (StateRole::Candidate, 2, 2));
    let msgs = r.read_messages();
    assert_eq!(
        summary(&msgs),
        vec![
            (MessageType::MsgRequestVote, 2, 1, 2),
            (MessageType::MsgRequestVote, 2, 3, 2),
        ]
    );
    assert!(msgs
        .iter()
        .all(|m| &m.context[..] == CAMPAIGN_TRANSFER && (m.index, m.log_term) == (1, 1)));
}

// etcd/raft-rs: a learner never campaigns, even when told to by MsgTimeoutNow.
#[test]
fn timeout_now_to_a_learner_is_ignored() {
    let storage = storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 1);
    storage
        .wl()
        .set_conf_state(conf_state(vec![1, 2, 3], vec![4]));
    let mut r = raft_on(4, storage);
    r.become_follower(1, 1);
    r.step(msg(MessageType::MsgTimeoutNow, 1, 4, 1)).unwrap();
    assert_eq!(
        (r.state, r.term, r.vote, r.leader_id),
        (StateRole::Follower, 1, 0, 1)
    );
    assert!(r.read_messages().is_empty(), "a learner campaigned");
}

// etcd/raft-rs: a node removed from the configuration is not promotable and ignores MsgTimeoutNow.
#[test]
fn timeout_now_to_a_removed_node_is_ignored() {
    let mut r = raft_on(3, storage_with(&[1, 2], &[ent(1, 1)], 1, 1));
    r.become_follower(1, 1);
    r.step(msg(MessageType::MsgTimeoutNow, 1, 3, 1)).unwrap();
    assert_eq!(
        (r.state, r.term, r.vote, r.leader_id),
        (StateRole::Follower, 1, 0, 1)
    );
    assert!(r.read_messages().is_empty(), "a removed node campaigned");
}

// §3.10 with a compacted log: a transferee too far behind for appends gets a snapshot first, then
// the missing entries, and only then MsgTimeoutNow.
#[test]
fn transfer_to_a_follower_that_needs_a_snapshot_completes_after_the_snapshot() {
    let mut net = elected(3);
    net.isolate(3);
    for i in 0..5u8 {
        net.propose(1, &[i]).expect("proposal accepted");
    }
    net.node_mut(1).snapshot_and_compact(1).unwrap();
    assert!(
        net.node(1).raw.raft.raft_log.first_index() > 2,
        "the log was not compacted"
    );
    net.recover();

    let mark = net.delivered.len();
    net.node_mut(1).raw.transfer_leader(3);
    net.stabilize();
    let election_tick = default_config(1).election_tick;
    for _ in 1..election_tick {
        if net.leader() == Some(3) {
            break;
        }
        net.tick(1);
    }
    let traffic = delivered_since(&net, mark).to_vec();
    let snap = traffic
        .iter()
        .position(|m| m.msg_type == MessageType::MsgSnapshot as i32 && m.to == 3)
        .expect("the transferee should get a snapshot");
    let tn = traffic
        .iter()
        .position(|m| m.msg_type == MessageType::MsgTimeoutNow as i32)
        .expect("the transfer did not finish within an election timeout");
    assert!(snap < tn, "MsgTimeoutNow went out before the snapshot");
    assert_eq!(timeout_nows(&traffic), vec![(1, 3, 1)]);
    assert_leads(&net, 3, 2);
    assert_eq!(net.node(3).snapshots_restored, 1);
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
    assert_eq!(net.node(3).applied_data().len(), 5);
}

// etcd/raft-rs: a candidate (or pre-candidate) already campaigning ignores MsgTimeoutNow.
#[test]
fn timeout_now_to_a_candidate_is_ignored() {
    let mut r = raft_on(2, storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 1));
    r.step(hup()).unwrap();
    r.read_messages();
    assert_eq!((r.state, r.term), (StateRole::Candidate, 2));
    r.step(msg(MessageType::MsgTimeoutNow, 1, 2, 2)).unwrap();
    assert_eq!((r.state, r.term, r.vote), (StateRole::Candidate, 2, 2));
    assert!(r.read_messages().is_empty(), "a candidate campaigned again");
}
