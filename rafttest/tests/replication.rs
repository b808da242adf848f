//! Log replication: proposals committing everywhere in one order, forwarding, dropped proposals,
//! catching up a lagging follower, repairing a divergent one, append batching and size limits, the
//! uncommitted-size limit, heartbeat commit and un-pausing, and what a Ready separates by durability.

mod common;

use common::*;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::tracker::ProgressState;
use raft_core::{Config, Error, RawNode, StateRole};
use raft_proto::entry_size;
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::MemStorage;

/// The payloads `prefix0, prefix1, ...` of `n` proposals.
fn payloads(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

/// The MsgAppends among `msgs` addressed to `to`.
fn appends_to(msgs: &[Message], to: u64) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| mtype(m) == MessageType::MsgAppend && m.to == to)
        .collect()
}

/// Asserts that every node applied exactly `want`, in order.
fn assert_applied(net: &Network, want: &[Vec<u8>]) {
    for (id, node) in &net.nodes {
        assert_eq!(
            node.applied_data(),
            want,
            "node {id} applied something else"
        );
    }
}

// §5.3: proposals made at the leader and at followers (forwarded) commit on every node in the same
// order.
#[test]
fn proposals_commit_on_all_nodes_in_same_order() {
    let mut net = Network::new(5);
    net.campaign(1);
    let data = payloads("p", 30);
    for (i, d) in data.iter().enumerate() {
        let at = i as u64 % 5 + 1;
        net.propose(at, d)
            .unwrap_or_else(|e| panic!("proposal {i} at node {at} failed: {e}"));
    }
    assert_applied(&net, &data);
    assert_logs_equal(&net, 1);
    assert_eq!(net.node(1).raw.raft.raft_log.committed, 31);
}

// §5.3: proposals made at several nodes before anything is delivered still commit in one order,
// the same on every node, and none is lost or duplicated.
#[test]
fn interleaved_proposals_from_several_nodes_apply_in_one_order() {
    let mut net = Network::new(3);
    net.campaign(1);
    let data = payloads("q", 24);
    for (i, d) in data.iter().enumerate() {
        let at = i as u64 % 3 + 1;
        net.node_mut(at).raw.propose(vec![], d.clone()).unwrap();
        if i % 4 == 3 {
            net.stabilize();
        }
    }
    net.stabilize();
    let order = net.node(1).applied_data();
    let mut sorted = order.clone();
    sorted.sort();
    let mut want = data.clone();
    want.sort();
    assert_eq!(sorted, want, "a proposal was lost or applied twice");
    assert_applied(&net, &order);
    assert_logs_equal(&net, 1);
}

// INTEROP.md "Forwarding": a follower forwards a proposal to the leader with term 0.
#[test]
fn follower_forwards_proposal_to_leader_with_term_zero() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.propose(2, b"fwd").unwrap();
    let fwd: Vec<&Message> = net
        .delivered
        .iter()
        .filter(|m| mtype(m) == MessageType::MsgPropose)
        .collect();
    assert_eq!(fwd.len(), 1, "one forwarded proposal: {fwd:?}");
    assert_eq!((fwd[0].from, fwd[0].to, fwd[0].term), (2, 1, 0));
    assert_eq!(&fwd[0].entries[0].data[..], b"fwd");
    assert_applied(&net, &[b"fwd".to_vec()]);
}

// INTEROP.md "Forwarding": a proposal that reached a follower with a term set is still forwarded
// with term 0 (raft-rs refuses a forwarded proposal that carries a term).
#[test]
fn follower_forwards_a_proposal_received_with_a_term_with_term_zero() {
    let mut net = Network::new(3);
    net.campaign(1);
    let term = net.node(2).term();
    let proposal = Message {
        msg_type: MessageType::MsgPropose as i32,
        from: 3,
        to: 2,
        term,
        entries: vec![raft_core::eraftpb::Entry {
            data: b"relayed".to_vec().into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    net.node_mut(2).raw.step(proposal).unwrap();
    let forwarded = net.node_mut(2).handle_ready().unwrap();
    let fwd: Vec<&Message> = forwarded
        .iter()
        .filter(|m| mtype(m) == MessageType::MsgPropose)
        .collect();
    assert_eq!(fwd.len(), 1, "one forwarded proposal: {forwarded:?}");
    assert_eq!(
        (fwd[0].to, fwd[0].term),
        (1, 0),
        "forwarded to the leader with term 0"
    );
}

// raft-rs `disable_proposal_forwarding`: a follower drops proposals instead of forwarding them.
#[test]
fn disable_proposal_forwarding_makes_follower_proposal_fail() {
    let mut net = Network::with_config(3, |id| Config {
        disable_proposal_forwarding: true,
        ..default_config(id)
    });
    net.campaign(1);
    let last = net.node(1).raw.raft.raft_log.last_index();
    assert_eq!(net.propose(2, b"x"), Err(Error::ProposalDropped));
    assert!(
        net.delivered
            .iter()
            .all(|m| mtype(m) != MessageType::MsgPropose),
        "the proposal was forwarded"
    );
    assert_eq!(net.node(1).raw.raft.raft_log.last_index(), last);
    // The leader itself still accepts proposals.
    net.propose(1, b"y").unwrap();
    assert_applied(&net, &[b"y".to_vec()]);
}

// A node that knows no leader (a follower before any election, a candidate, a pre-candidate)
// cannot place a proposal and reports ProposalDropped.
#[test]
fn proposal_without_leader_is_dropped() {
    let mut net = Network::new(3);
    assert_eq!(
        net.propose(1, b"x"),
        Err(Error::ProposalDropped),
        "follower without leader"
    );
    for pre_vote in [false, true] {
        let mut net = Network::with_config(3, |id| Config {
            pre_vote,
            ..default_config(id)
        });
        net.isolate(1);
        net.campaign(1);
        let role = net.node(1).state();
        let want = if pre_vote {
            StateRole::PreCandidate
        } else {
            StateRole::Candidate
        };
        assert_eq!(role, want);
        assert_eq!(
            net.propose(1, b"x"),
            Err(Error::ProposalDropped),
            "{role:?}"
        );
        assert_eq!(
            net.node(1).raw.raft.raft_log.last_index(),
            0,
            "{role:?} grew its log"
        );
    }
    assert_eq!(net.node(1).raw.raft.raft_log.last_index(), 0);
}

/// A 3-node cluster led by node 1 in which node 3 missed ten committed proposals while isolated and
/// is now reconnected.
fn cluster_with_lagging_follower() -> (Network, Vec<Vec<u8>>) {
    let mut net = Network::new(3);
    net.campaign(1);
    net.isolate(3);
    let data = payloads("lag", 10);
    for d in &data {
        net.propose(1, d).unwrap();
    }
    assert_eq!(net.node(1).raw.raft.raft_log.committed, 11);
    assert_eq!(
        net.node(3).raw.raft.raft_log.last_index(),
        1,
        "setup: node 3 got entries"
    );
    net.recover();
    (net, data)
}

// §5.3 / raft-rs: a follower whose appends were lost catches up once it is reachable again: the
// heartbeat response makes the leader send an append, the follower rejects it, and the leader probes
// back to where the logs match.
/// Whether node 3 rejected an append among the messages delivered since `since`.
fn node_3_rejected_since(net: &Network, since: usize) -> bool {
    net.delivered[since..]
        .iter()
        .any(|m| mtype(m) == MessageType::MsgAppendResponse && m.from == 3 && m.reject)
}

#[test]
fn lagging_follower_catches_up_after_heartbeats() {
    let (mut net, data) = cluster_with_lagging_follower();
    let before = net.delivered.len();
    for _ in 0..3 {
        net.tick(1);
    }
    assert!(
        node_3_rejected_since(&net, before),
        "node 3 was not probed after the heartbeat response"
    );
    assert_logs_equal(&net, 1);
    assert_applied(&net, &data);
}

// §5.3: once the leader sends new entries, the lagging follower rejects them and the leader probes
// back until the logs match; the follower ends with the same log and applied data.
#[test]
fn lagging_follower_catches_up_via_probing_on_next_append() {
    let (mut net, mut data) = cluster_with_lagging_follower();
    let before = net.delivered.len();
    net.propose(1, b"after").unwrap();
    data.push(b"after".to_vec());
    assert!(
        node_3_rejected_since(&net, before),
        "node 3 never rejected an append: it cannot have been probed"
    );
    assert_logs_equal(&net, 1);
    assert_applied(&net, &data);
}

// §5.3, Figure 7 (f): an old leader that appended entries it never committed, then was cut off while
// a new leader took over, has that suffix replaced when it rejoins; it never applies it.
#[test]
fn divergent_uncommitted_suffix_is_replaced_after_rejoin() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.propose(1, b"a").unwrap();
    net.isolate(1);
    net.propose(1, b"x").unwrap();
    net.propose(1, b"y").unwrap();
    assert_eq!(
        net.node(1).raw.raft.raft_log.last_index(),
        4,
        "setup: old leader's suffix"
    );
    assert_eq!(
        net.node(1).raw.raft.raft_log.committed,
        2,
        "setup: x and y uncommitted"
    );
    net.campaign(2);
    assert_eq!(
        net.node(2).state(),
        StateRole::Leader,
        "setup: node 2 leads term 2"
    );
    net.propose(2, b"b").unwrap();
    net.recover();
    net.tick(2);
    assert_eq!(
        (net.node(1).state(), net.node(1).term()),
        (StateRole::Follower, 2)
    );
    assert_logs_equal(&net, 2);
    let terms: Vec<(u64, u64)> = net_log(&net, 1).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(terms, vec![(1, 1), (2, 1), (3, 2), (4, 2)], "node 1's log");
    assert_applied(&net, &[b"a".to_vec(), b"b".to_vec()]);
}

// raft-rs fast backtracking (INTEROP.md "Appends"): the reject hint lets the leader skip a whole
// conflicting term per round trip instead of one entry.
#[test]
fn leader_skips_a_conflicting_term_per_rejection() {
    let leader = vec![1, 1, 1, 4, 4, 4, 4];
    let logs = [
        leader.clone(),
        vec![1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3],
        leader.clone(),
    ];
    let mut net = network_with_logs(&logs, 4, default_config);
    net.campaign(1);
    let rejections = net
        .delivered
        .iter()
        .filter(|m| mtype(m) == MessageType::MsgAppendResponse && m.from == 2 && m.reject)
        .count();
    assert_eq!(
        rejections, 1,
        "terms 3 and 2 should be skipped with one rejection"
    );
    assert_logs_equal(&net, 1);
}

// DESIGN.md §6: with `max_size_per_msg`, one flush to a replicating follower is split into several
// appends, each within the limit (or a single entry), together carrying every new entry in order.
#[test]
fn max_size_per_msg_splits_one_flush_into_several_appends() {
    let probe = ent_data(10, 1, &[0u8; 20]);
    let limit = 2 * entry_size(&probe) + 4;
    let mut net = Network::with_config(3, |id| Config {
        max_size_per_msg: limit,
        ..default_config(id)
    });
    net.campaign(1);
    assert_eq!(
        net.node(1).raw.raft.prs.get(2).unwrap().state,
        ProgressState::Replicate
    );
    for i in 0..7u8 {
        net.node_mut(1).raw.propose(vec![], vec![i; 20]).unwrap();
    }
    let msgs = net.node_mut(1).handle_ready().unwrap();
    for to in [2, 3] {
        let apps = appends_to(&msgs, to);
        assert!(
            apps.len() >= 3,
            "to {to}: expected several appends, got {}",
            apps.len()
        );
        let mut next = 2;
        for m in &apps {
            assert!(
                !m.entries.is_empty(),
                "to {to}: an empty append in the batch"
            );
            let size: u64 = m.entries.iter().map(entry_size).sum();
            assert!(
                size <= limit || m.entries.len() == 1,
                "to {to}: append of {size} bytes over the {limit}-byte limit"
            );
            assert_eq!(m.index + 1, next, "to {to}: appends not contiguous");
            next += m.entries.len() as u64;
        }
        assert_eq!(next, 9, "to {to}: not every entry was sent");
    }
    net.send(msgs);
    assert_logs_equal(&net, 1);
    assert_eq!(net.node(3).applied.len(), 7);
}

// DESIGN.md §6: every proposal made between two Readys travels in ONE append per follower.
#[test]
fn leader_sends_one_append_per_follower_for_all_proposals_between_readys() {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 0..5u8 {
        net.node_mut(1).raw.propose(vec![], vec![i]).unwrap();
    }
    let msgs = net.node_mut(1).handle_ready().unwrap();
    for to in [2, 3] {
        let apps = appends_to(&msgs, to);
        assert_eq!(apps.len(), 1, "to {to}: {apps:?}");
        let idx: Vec<u64> = apps[0].entries.iter().map(|e| e.index).collect();
        assert_eq!(idx, vec![2, 3, 4, 5, 6], "to {to}: the batch");
    }
    net.send(msgs);
    assert_logs_equal(&net, 1);
}

// Flow control: a replicating follower has at most `max_inflight_msgs` appends in flight; the rest
// follow as acknowledgements arrive.
#[test]
fn inflight_window_limits_appends_to_a_follower() {
    let mut net = Network::with_config(3, |id| Config {
        max_inflight_msgs: 2,
        max_size_per_msg: 1,
        ..default_config(id)
    });
    net.campaign(1);
    for i in 0..5u8 {
        net.node_mut(1).raw.propose(vec![], vec![i]).unwrap();
    }
    let msgs = net.node_mut(1).handle_ready().unwrap();
    for to in [2, 3] {
        let apps = appends_to(&msgs, to);
        assert_eq!(apps.len(), 2, "to {to}: the window is 2 appends: {apps:?}");
        assert!(apps.iter().all(|m| m.entries.len() == 1));
    }
    net.send(msgs);
    assert_logs_equal(&net, 1);
    assert_eq!(net.node(2).applied.len(), 5);
}

// raft-rs `max_uncommitted_size`: once the uncommitted payload would pass the limit the leader drops
// proposals with ProposalDropped; after they commit it accepts again.
#[test]
fn max_uncommitted_size_drops_proposals_until_entries_commit() {
    let mut net = Network::with_config(3, |id| Config {
        max_uncommitted_size: 10,
        ..default_config(id)
    });
    net.campaign(1);
    let raw = &mut net.node_mut(1).raw;
    raw.propose(vec![], b"aaaa".to_vec()).unwrap();
    raw.propose(vec![], b"bbbb".to_vec()).unwrap();
    assert_eq!(
        raw.propose(vec![], b"cccc".to_vec()),
        Err(Error::ProposalDropped),
        "12 uncommitted bytes accepted with a limit of 10"
    );
    assert_eq!(
        raw.raft.raft_log.last_index(),
        3,
        "the dropped proposal reached the log"
    );
    net.stabilize();
    assert_eq!(net.node(1).raw.raft.raft_log.committed, 3);
    net.propose(1, b"cccc")
        .expect("proposal refused after the uncommitted entries committed");
    assert_applied(
        &net,
        &[b"aaaa".to_vec(), b"bbbb".to_vec(), b"cccc".to_vec()],
    );
}

// raft-rs parity (issue 18): a proposal without payload is never dropped for the uncommitted size
// (raft-rs: "we should never drop an entry without any data"), so the empty entries the
// application or the core proposes (a joint configuration's leave among them) go through while
// an oversized entry waits to commit.
#[test]
fn max_uncommitted_size_never_drops_an_empty_proposal() {
    let mut net = Network::with_config(3, |id| Config {
        max_uncommitted_size: 10,
        ..default_config(id)
    });
    net.campaign(1);
    net.isolate(2);
    net.isolate(3);
    let raw = &mut net.node_mut(1).raw;
    raw.propose(vec![], vec![b'x'; 64]).unwrap();
    assert_eq!(
        raw.propose(vec![], b"a".to_vec()),
        Err(Error::ProposalDropped),
        "a payload over the limit is dropped"
    );
    let last = raw.raft.raft_log.last_index();
    assert_eq!(
        raw.propose(vec![], Vec::new()),
        Ok(()),
        "an empty one is not"
    );
    assert_eq!(raw.raft.raft_log.last_index(), last + 1);
}

// INTEROP.md "Heartbeats": a heartbeat carries min(that follower's matched index, leader commit),
// never more than the follower is known to hold.
#[test]
fn heartbeat_commit_is_min_of_follower_match_and_leader_commit() {
    let mut net = Network::new(5);
    net.campaign(1);
    net.isolate(5);
    net.propose(1, b"a").unwrap();
    net.isolate(3);
    net.isolate(4);
    net.propose(1, b"b").unwrap();
    let leader = &net.node(1).raw.raft;
    assert_eq!(leader.raft_log.committed, 2, "setup: b is uncommitted");
    assert_eq!(
        leader.prs.get(2).unwrap().matched,
        3,
        "setup: node 2 holds b"
    );
    assert_eq!(leader.prs.get(5).unwrap().matched, 1, "setup: node 5 lags");
    net.node_mut(1).raw.tick();
    let msgs = net.node_mut(1).handle_ready().unwrap();
    let mut commits: Vec<(u64, u64)> = msgs
        .iter()
        .filter(|m| mtype(m) == MessageType::MsgHeartbeat)
        .map(|m| (m.to, m.commit))
        .collect();
    commits.sort_unstable();
    assert_eq!(
        commits,
        vec![(2, 2), (3, 2), (4, 2), (5, 1)],
        "heartbeat commit per follower"
    );
}

// INTEROP.md "Heartbeats": a heartbeat response un-pauses a probing follower, so the leader sends
// it the next append at once.
#[test]
fn heartbeat_response_unpauses_probing_follower() {
    let mut r = new_raft(1, &[1, 2, 3]);
    make_leader(&mut r, &[1, 2, 3]);
    // The application reports node 2 unreachable: the leader goes back to probing it.
    r.step(msg(MessageType::MsgUnreachable, 2, 1, 0)).unwrap();
    assert_eq!(r.prs.get(2).unwrap().state, ProgressState::Probe);
    r.step(propose_msg(1, b"a")).unwrap();
    assert_eq!(appends_to(&r.read_messages(), 2).len(), 1, "the probe");
    assert!(
        r.prs.get(2).unwrap().is_paused(),
        "a probing follower is paused after a probe"
    );
    r.step(propose_msg(1, b"b")).unwrap();
    assert!(
        appends_to(&r.read_messages(), 2).is_empty(),
        "a paused follower was sent another append"
    );
    let mut resp = msg(MessageType::MsgHeartbeatResponse, 2, 1, 1);
    resp.commit = 1;
    r.step(resp).unwrap();
    assert!(
        !r.prs.get(2).unwrap().is_paused(),
        "the heartbeat response did not un-pause"
    );
    let apps = r.read_messages();
    let apps = appends_to(&apps, 2);
    assert_eq!(apps.len(), 1, "no append after the heartbeat response");
    assert_eq!(apps[0].index, 1, "probe from just after the matched index");
    assert_eq!(apps[0].entries.len(), 2);
}

// §5.4.2 / thesis §6.4: the new leader's empty entry is replicated and committed on every node as
// part of the election.
#[test]
fn leader_empty_entry_is_committed_on_all_nodes_after_election() {
    for n in [3, 5] {
        let mut net = Network::new(n);
        net.campaign(1);
        for id in 1..=n {
            let node = net.node(id);
            assert_eq!(
                net_log(&net, id),
                vec![(1, 1, vec![])],
                "n={n}: node {id}'s log"
            );
            assert_eq!(node.raw.raft.raft_log.committed, 1, "n={n}: node {id}");
            assert_eq!(node.applied_index, 1, "n={n}: node {id} did not apply it");
            assert!(node.applied.is_empty());
        }
    }
}

// INTEROP.md "Appends": after every commit advance the leader sends an append (empty if the follower
// has every entry) carrying the new commit, without waiting for a heartbeat.
#[test]
fn followers_learn_new_commit_from_an_append_without_heartbeat() {
    let mut net = Network::new(3);
    net.campaign(1);
    let before = net.delivered.len();
    net.propose(1, b"x").unwrap();
    for to in [2, 3] {
        let news = net.delivered[before..].iter().any(|m| {
            mtype(m) == MessageType::MsgAppend
                && m.to == to
                && m.entries.is_empty()
                && m.commit == 2
        });
        assert!(news, "node {to} was not sent the new commit");
        assert_eq!(net.node(to).raw.raft.raft_log.committed, 2, "node {to}");
    }
    assert!(
        net.delivered[before..]
            .iter()
            .all(|m| mtype(m) != MessageType::MsgHeartbeat),
        "a heartbeat was needed"
    );
}

/// Persists `rd` into `storage` the way an application would.
fn persist_ready(storage: &MemStorage, rd: &raft_core::Ready) {
    let mut core = storage.wl();
    core.append(rd.entries()).unwrap();
    if let Some(hs) = rd.hard_state() {
        core.set_hardstate(*hs);
    }
}

// DESIGN.md §4: messages that promise durable state (append acknowledgements, vote requests of a
// candidate) are in `persisted_messages`; a leader's appends may leave before it persists.
#[test]
fn ready_separates_messages_by_durability() {
    let storage = storage_with(&[1, 2, 3], &[], 0, 0);
    let mut leader = RawNode::new(&config(1), storage.clone(), &logger()).unwrap();
    leader.campaign().unwrap();
    let rd = leader.ready().unwrap();
    assert!(
        rd.messages().is_empty(),
        "vote requests left early: {:?}",
        rd.messages()
    );
    assert_eq!(rd.persisted_messages().len(), 2);
    assert!(rd
        .persisted_messages()
        .iter()
        .all(|m| mtype(m) == MessageType::MsgRequestVote));
    persist_ready(&storage, &rd);
    leader.advance(rd).unwrap();
    leader
        .step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1))
        .unwrap();
    let rd = leader.ready().unwrap();
    assert_eq!(
        rd.entries().len(),
        1,
        "the leader's empty entry is to be persisted"
    );
    assert_eq!(
        appends_to(rd.messages(), 2).len(),
        1,
        "append to 2 must go out at once"
    );
    assert_eq!(
        appends_to(rd.messages(), 3).len(),
        1,
        "append to 3 must go out at once"
    );

    let fstorage = storage_with(&[1, 2, 3], &[], 0, 0);
    let mut follower = RawNode::new(&config(2), fstorage, &logger()).unwrap();
    let app = rd.messages().iter().find(|m| m.to == 2).unwrap().clone();
    follower.step(app).unwrap();
    let frd = follower.ready().unwrap();
    assert_eq!(frd.entries().len(), 1);
    assert!(frd.must_sync());
    assert!(
        frd.messages()
            .iter()
            .all(|m| mtype(m) != MessageType::MsgAppendResponse),
        "an append acknowledgement left before persisting"
    );
    assert_eq!(frd.persisted_messages().len(), 1);
    assert_eq!(
        mtype(&frd.persisted_messages()[0]),
        MessageType::MsgAppendResponse
    );
}

// §5.3: in a single-voter cluster the leader alone is a majority: a proposal commits once it is
// persisted locally.
#[test]
fn single_node_cluster_commits_proposals_alone() {
    let mut net = Network::new(1);
    net.campaign(1);
    assert_eq!(net.node(1).state(), StateRole::Leader);
    net.propose(1, b"solo").unwrap();
    assert_eq!(net.node(1).raw.raft.raft_log.committed, 2);
    assert_applied(&net, &[b"solo".to_vec()]);
}
