//! Leader election in 3- and 5-node clusters driven through `rafttest::Network`: with and without
//! pre-vote, across partitions, split votes, check-quorum step-down and the leader lease, disruption
//! by a rejoining node (with pre-vote: none), and nodes that are not voters.

mod common;

use common::*;
use raft_core::eraftpb::MessageType;
use raft_core::raft::CAMPAIGN_TRANSFER;
use raft_core::{Config, RawNode, StateRole};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

/// Election timeout of the network's default config, in ticks.
const ELECTION_TICK: usize = 10;

fn net_with(n: u64, pre_vote: bool, check_quorum: bool) -> Network {
    Network::with_config(n, |id| Config {
        pre_vote,
        check_quorum,
        ..default_config(id)
    })
}

/// Cuts every link between the two sides.
fn partition(net: &mut Network, a: &[u64], b: &[u64]) {
    for &x in a {
        for &y in b {
            net.cut(x, y);
        }
    }
}

/// Asserts that `leader` leads `term` and that every node in `followers` follows it in that term.
fn assert_leads(net: &Network, leader: u64, term: u64, followers: &[u64]) {
    let l = net.node(leader);
    assert_eq!(
        (l.state(), l.term()),
        (StateRole::Leader, term),
        "node {leader} should lead term {term}"
    );
    for &id in followers {
        let n = net.node(id);
        assert_eq!(
            (n.state(), n.term(), n.raw.raft.leader_id),
            (StateRole::Follower, term, leader),
            "node {id} should follow {leader} in term {term}"
        );
    }
}

/// Election safety: at most one leader per term.
fn assert_one_leader_per_term(net: &Network) {
    let mut leaders: Vec<(u64, u64)> = net
        .nodes
        .iter()
        .filter(|(_, n)| n.state() == StateRole::Leader)
        .map(|(id, n)| (n.term(), *id))
        .collect();
    leaders.sort_unstable();
    for w in leaders.windows(2) {
        assert_ne!(w[0].0, w[1].0, "two leaders in one term: {leaders:?}");
    }
}

/// Ticks every node until some node leads, at most `max_ticks` times; returns the leader.
fn tick_until_leader(net: &mut Network, ids: &[u64], max_ticks: usize) -> u64 {
    for _ in 0..max_ticks {
        for &id in ids {
            net.node_mut(id).raw.tick();
        }
        net.stabilize();
        assert_one_leader_per_term(net);
        if let Some(l) = ids
            .iter()
            .copied()
            .find(|id| net.node(*id).state() == StateRole::Leader)
        {
            return l;
        }
    }
    panic!("no leader among {ids:?} after {max_ticks} ticks");
}

fn elects_leader(n: u64, pre_vote: bool) {
    let mut net = net_with(n, pre_vote, false);
    net.campaign(1);
    let others: Vec<u64> = (2..=n).collect();
    // Pre-vote does not spend a term: the election still happens in term 1.
    assert_leads(&net, 1, 1, &others);
    for id in 1..=n {
        assert_eq!(net.node(id).raw.raft.raft_log.committed, 1, "node {id}");
    }
}

// §5.2
#[test]
fn three_node_cluster_elects_leader_without_prevote() {
    elects_leader(3, false);
}

// §5.2
#[test]
fn five_node_cluster_elects_leader_without_prevote() {
    elects_leader(5, false);
}

// thesis §9.6
#[test]
fn three_node_cluster_elects_leader_with_prevote() {
    elects_leader(3, true);
}

// thesis §9.6
#[test]
fn five_node_cluster_elects_leader_with_prevote() {
    elects_leader(5, true);
}

// §5.2: with a partition, the side with a majority can elect a leader.
#[test]
fn majority_side_of_partition_elects_leader() {
    for pre_vote in [false, true] {
        for (n, minority, majority) in [(3, vec![1], vec![2, 3]), (5, vec![1, 2], vec![3, 4, 5])] {
            let mut net = net_with(n, pre_vote, false);
            partition(&mut net, &minority, &majority);
            let candidate = majority[0];
            net.campaign(candidate);
            let want_followers = &majority[1..];
            assert_leads(&net, candidate, 1, want_followers);
            for id in &minority {
                assert_eq!(
                    (net.node(*id).term(), net.node(*id).raw.raft.leader_id),
                    (0, 0),
                    "pre_vote={pre_vote}, n={n}: minority node {id} heard of the election"
                );
            }
        }
    }
}

// §5.2: the minority side cannot elect a leader; without pre-vote its candidate spends a term, with
// pre-vote it does not even do that (thesis §9.6).
#[test]
fn minority_side_of_partition_cannot_elect_leader() {
    for pre_vote in [false, true] {
        for (n, minority, majority) in [(3, vec![1], vec![2, 3]), (5, vec![1, 2], vec![3, 4, 5])] {
            let mut net = net_with(n, pre_vote, false);
            partition(&mut net, &minority, &majority);
            net.campaign(minority[0]);
            for _ in 0..5 * ELECTION_TICK {
                for &id in &minority {
                    net.node_mut(id).raw.tick();
                }
                net.stabilize();
            }
            for &id in &minority {
                let node = net.node(id);
                assert_ne!(
                    node.state(),
                    StateRole::Leader,
                    "pre_vote={pre_vote}, n={n}: minority node {id} became leader"
                );
                if pre_vote {
                    assert_eq!(
                        node.term(),
                        0,
                        "pre_vote: minority node {id} bumped its term"
                    );
                } else {
                    assert!(node.term() > 0, "minority node {id} never campaigned");
                }
            }
            assert!(net.leader().is_none(), "somebody leads: {:?}", net.leader());
        }
    }
}

/// Every node campaigns at once, so each votes for itself and nobody wins term 1.
fn split_vote(n: u64) -> Network {
    let mut net = net_with(n, false, false);
    for id in 1..=n {
        net.node_mut(id).raw.campaign().unwrap();
    }
    net.stabilize();
    for id in 1..=n {
        let node = net.node(id);
        assert_eq!(node.term(), 1, "node {id}");
        assert_ne!(
            node.state(),
            StateRole::Leader,
            "node {id} won a split vote"
        );
    }
    net
}

// §5.2: split votes are resolved by randomized election timeouts: ticking every node eventually
// elects one leader that everybody follows.
#[test]
fn split_vote_resolves_by_ticking_all_nodes() {
    for n in [3, 5] {
        let mut net = split_vote(n);
        let ids: Vec<u64> = (1..=n).collect();
        let leader = tick_until_leader(&mut net, &ids, 20 * ELECTION_TICK);
        let term = net.node(leader).term();
        assert!(term > 1, "n={n}: the split term 1 cannot have a leader");
        let followers: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
        assert_leads(&net, leader, term, &followers);
    }
}

// Thesis §6.2 (check-quorum): a leader that hears from no quorum for an election timeout steps
// down, and the connected majority elects a new leader.
#[test]
fn check_quorum_isolated_leader_steps_down() {
    let mut net = net_with(3, false, true);
    net.campaign(1);
    net.isolate(1);
    // Activity from before the partition may count for the first round; two rounds cannot pass.
    for _ in 0..2 * ELECTION_TICK {
        net.tick(1);
    }
    let old = net.node(1);
    assert_eq!(
        old.state(),
        StateRole::Follower,
        "an isolated leader kept office"
    );
    assert_eq!(old.term(), 1, "stepping down must not change the term");
    let leader = tick_until_leader(&mut net, &[2, 3], 20 * ELECTION_TICK);
    assert!(net.node(leader).term() > 1);
}

// Thesis §6.2: a leader that hears from a quorum keeps office however long it runs.
#[test]
fn check_quorum_leader_with_quorum_stays_leader() {
    let mut net = net_with(3, false, true);
    net.campaign(1);
    for _ in 0..10 * ELECTION_TICK {
        net.tick_all();
    }
    assert_leads(&net, 1, 1, &[2, 3]);
}

// Thesis §6.2 and §4.2.3: with one follower cut off the leader still has a quorum, and the cut-off
// node's higher-term vote requests are ignored by the follower that hears from the leader.
#[test]
fn check_quorum_leader_keeps_office_when_one_follower_is_cut_off() {
    let mut net = net_with(3, false, true);
    net.campaign(1);
    net.cut(1, 3);
    for _ in 0..10 * ELECTION_TICK {
        net.tick_all();
    }
    assert!(net.node(3).term() > 1, "the cut-off node never campaigned");
    assert_leads(&net, 1, 1, &[2]);
}

/// A 3-node cluster led by node 1 in which node 3 is partitioned for a while (ticking alone), then
/// rejoins and everybody ticks. Returns the network and node 3's term just before it rejoined.
fn partition_and_rejoin(pre_vote: bool, check_quorum: bool) -> (Network, u64) {
    let mut net = net_with(3, pre_vote, check_quorum);
    net.campaign(1);
    net.isolate(3);
    for _ in 0..5 * ELECTION_TICK {
        net.tick(3);
    }
    let term_while_partitioned = net.node(3).term();
    net.recover();
    for _ in 0..5 * ELECTION_TICK {
        net.tick_all();
    }
    (net, term_while_partitioned)
}

// Thesis §9.6: with pre-vote a partitioned node cannot win a pre-vote, so it never bumps its term,
// and when it rejoins it follows the leader without disrupting it.
#[test]
fn prevote_partitioned_node_keeps_term_and_does_not_disrupt_on_rejoin() {
    for check_quorum in [false, true] {
        let (net, term) = partition_and_rejoin(true, check_quorum);
        assert_eq!(
            term, 1,
            "check_quorum={check_quorum}: the partitioned pre-vote node bumped its term"
        );
        assert_leads(&net, 1, 1, &[2, 3]);
    }
}

// §5.1 without pre-vote (the contrast to the test above): the partitioned node keeps bumping its term
// and, when it rejoins, its higher term deposes the leader.
#[test]
fn without_prevote_partitioned_node_disrupts_leader_on_rejoin() {
    let (net, term) = partition_and_rejoin(false, false);
    assert!(term > 1, "the partitioned node never campaigned");
    assert!(
        net.node(1).term() > 1,
        "the rejoining node's higher term did not reach the leader"
    );
    assert_one_leader_per_term(&net);
}

// Thesis §9.6 / §5.4.1: a node that missed committed entries cannot win a pre-vote, so its campaign
// after rejoining changes no term anywhere.
#[test]
fn prevote_lagging_node_fails_prevote_and_keeps_all_terms() {
    let mut net = net_with(3, true, false);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, b"a").unwrap();
    net.recover();
    net.campaign(3);
    assert_eq!(net.node(3).term(), 1, "the lagging node bumped its term");
    assert_ne!(net.node(3).state(), StateRole::Leader);
    assert_eq!(
        net.node(1).state(),
        StateRole::Leader,
        "the leader was disrupted"
    );
    assert_eq!(net.node(1).term(), 1);
    assert_eq!(net.node(2).term(), 1);
}

// §5.4.1 without pre-vote: a node with a stale log can bump terms but not win.
#[test]
fn candidate_with_stale_log_cannot_win() {
    let mut net = net_with(3, false, false);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, b"a").unwrap();
    net.recover();
    net.campaign(3);
    assert_eq!(net.node(3).term(), 2);
    assert_ne!(net.node(3).state(), StateRole::Leader, "a stale log won");
    assert_eq!(
        (net.node(1).term(), net.node(2).term()),
        (2, 2),
        "the vote request's term is adopted"
    );
    assert_eq!(net.node(1).raw.raft.vote, 0, "node 1 voted for a stale log");
    assert_eq!(net.node(2).raw.raft.vote, 0, "node 2 voted for a stale log");
    let leader = tick_until_leader(&mut net, &[1, 2, 3], 20 * ELECTION_TICK);
    assert_ne!(leader, 3, "the stale node won after ticking");
}

/// A vote request from node 3 for `term`, claiming an up-to-date log.
fn vote_from_3(net: &Network, msg_type: MessageType, term: u64) -> raft_core::eraftpb::Message {
    let log = &net.node(1).raw.raft.raft_log;
    vote_request(msg_type, 3, 2, term, log.last_index(), log.last_term())
}

// Thesis §4.2.3 (INTEROP.md "Votes"): with check-quorum, a follower that heard from its leader within
// the election timeout ignores higher-term votes and pre-votes: no answer, no new term.
#[test]
fn check_quorum_lease_follower_ignores_higher_term_vote_requests() {
    let mut net = net_with(3, false, true);
    net.campaign(1);
    net.tick_all();
    for kind in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        let m = vote_from_3(&net, kind, 5);
        let raw = &mut net.node_mut(2).raw;
        raw.step(m).unwrap();
        assert_eq!(
            raw.raft.term, 1,
            "a {kind:?} within the lease changed the term"
        );
        assert_eq!(
            raw.raft.leader_id, 1,
            "a {kind:?} within the lease dropped the leader"
        );
        assert_eq!(raw.raft.vote, 1);
        assert!(
            raw.raft.msgs.is_empty() && raw.raft.msgs_after_append.is_empty(),
            "a {kind:?} within the lease was answered"
        );
    }
}

// Thesis §3.10 / INTEROP.md: a vote request of a leadership transfer (context CampaignTransfer)
// bypasses the lease; and without check-quorum there is no lease at all.
#[test]
fn lease_is_bypassed_by_transfer_campaign_and_absent_without_check_quorum() {
    let mut net = net_with(3, false, true);
    net.campaign(1);
    net.tick_all();
    let mut m = vote_from_3(&net, MessageType::MsgRequestVote, 5);
    m.context = CAMPAIGN_TRANSFER.to_vec().into();
    net.node_mut(2).raw.step(m).unwrap();
    assert_eq!(
        net.node(2).term(),
        5,
        "a transfer campaign was blocked by the lease"
    );
    assert_eq!(
        net.node(2).raw.raft.vote,
        3,
        "the transfer candidate did not get the vote"
    );

    let mut net = net_with(3, false, false);
    net.campaign(1);
    net.tick_all();
    let m = vote_from_3(&net, MessageType::MsgRequestVote, 5);
    net.node_mut(2).raw.step(m).unwrap();
    assert_eq!(
        net.node(2).term(),
        5,
        "without check-quorum a higher-term vote request must be heard"
    );
}

// INTEROP.md "Terms": with pre-vote, a stale leader that comes back learns the newer term from the
// answers to its heartbeats and steps down; the new leader is undisturbed.
#[test]
fn prevote_stale_leader_is_deposed_by_answers_carrying_newer_term() {
    let mut net = net_with(3, true, false);
    net.campaign(1);
    net.isolate(1);
    net.campaign(2);
    assert_leads(&net, 2, 2, &[3]);
    assert_eq!(
        net.node(1).state(),
        StateRole::Leader,
        "setup: node 1 still leads term 1"
    );
    net.recover();
    net.tick(1);
    assert_eq!(
        (net.node(1).state(), net.node(1).term()),
        (StateRole::Follower, 2),
        "the stale leader was not deposed"
    );
    assert_leads(&net, 2, 2, &[3]);
}

// §5.1 (contrast): without pre-vote or check-quorum a stale leader's heartbeats are simply ignored,
// so it keeps believing it leads its old term until it hears the new one.
#[test]
fn without_prevote_or_check_quorum_stale_leader_heartbeats_are_ignored() {
    let mut net = net_with(3, false, false);
    net.campaign(1);
    net.isolate(1);
    net.campaign(2);
    net.recover();
    let before = net.delivered.len();
    net.tick(1);
    let answers = net.delivered[before..].iter().filter(|m| m.to == 1).count();
    assert_eq!(answers, 0, "the stale leader's heartbeats were answered");
    assert_eq!(
        (net.node(1).state(), net.node(1).term()),
        (StateRole::Leader, 1)
    );
    assert_leads(&net, 2, 2, &[3]);
    // The new leader's next heartbeat tells it.
    net.tick(2);
    assert_leads(&net, 2, 2, &[1, 3]);
}

// §5.2 / raft-rs `promotable`: a node that is not a voter (no membership yet, not listed, or a
// learner) never campaigns, however long it ticks, and ignores a campaign request.
#[test]
fn node_that_is_not_a_voter_does_not_campaign() {
    let cases = [
        ("empty ConfState", MemStorage::new()),
        (
            "not listed",
            MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![])),
        ),
        (
            "learner",
            MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![4])),
        ),
    ];
    for (what, storage) in cases {
        let mut raw = RawNode::new(&default_config(4), storage, &logger()).unwrap();
        for _ in 0..10 * ELECTION_TICK {
            raw.tick();
        }
        let _ = raw.campaign();
        assert_eq!(
            (raw.raft.state, raw.raft.term, raw.raft.vote),
            (StateRole::Follower, 0, 0),
            "{what}: the non-voter campaigned"
        );
        assert!(
            raw.raft.msgs.is_empty() && raw.raft.msgs_after_append.is_empty(),
            "{what}: the non-voter sent messages"
        );
    }
}

// §5.2: a node of a running cluster that is not a voter does not start elections even when the
// leader is gone, while the voters do.
#[test]
fn learner_in_cluster_never_campaigns_when_leader_is_gone() {
    let voters = [1, 2, 3];
    let mut net = Network::new(4);
    for id in 1..=4 {
        let storage = MemStorage::new_with_conf_state(conf_state(voters.to_vec(), vec![4]));
        replace_node(&mut net, &default_config(id), storage);
    }
    net.campaign(1);
    assert_leads(&net, 1, 1, &[2, 3, 4]);
    net.isolate(1);
    let before = net.delivered.len();
    for _ in 0..5 * ELECTION_TICK {
        net.tick(4);
    }
    assert!(
        net.delivered[before..].iter().all(|m| m.from != 4),
        "the learner sent messages while ticking alone"
    );
    assert_eq!(net.node(4).term(), 1, "the learner bumped its term");
    let leader = tick_until_leader(&mut net, &[2, 3, 4], 20 * ELECTION_TICK);
    assert_ne!(leader, 4, "the learner became leader");
}

// Thesis §9.6: granting a pre-vote changes nothing at the voter: no new term, no vote, same leader;
// the grant carries the requested term (INTEROP.md "Votes").
#[test]
fn prevote_grant_changes_no_state_at_voter() {
    let mut net = net_with(3, true, false);
    net.campaign(1);
    let m = vote_from_3(&net, MessageType::MsgRequestPreVote, 2);
    let raw = &mut net.node_mut(2).raw;
    raw.step(m).unwrap();
    let out = raw.raft.read_messages();
    assert_eq!(out.len(), 1, "one answer: {out:?}");
    assert_eq!(mtype(&out[0]), MessageType::MsgRequestPreVoteResponse);
    assert!(
        !out[0].reject,
        "an up-to-date pre-vote for a later term was refused"
    );
    assert_eq!(out[0].term, 2, "the grant must carry the requested term");
    assert_eq!(
        (raw.raft.term, raw.raft.vote, raw.raft.leader_id),
        (1, 1, 1),
        "granting a pre-vote changed the voter"
    );
}

// §5.2 with learners: only voters' votes count; a learner's grant does not make a majority.
#[test]
fn learner_vote_does_not_count_toward_majority() {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![4]));
    let mut r = raft_on(1, storage);
    r.step(hup()).unwrap();
    r.step(msg(MessageType::MsgRequestVoteResponse, 4, 1, 1))
        .unwrap();
    assert_eq!(
        r.state,
        StateRole::Candidate,
        "a learner's vote made a majority"
    );
    r.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1))
        .unwrap();
    assert_eq!(r.state, StateRole::Leader);
}
