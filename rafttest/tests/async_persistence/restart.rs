//! Restarts of asynchronously driven nodes: `Config::applied` on restart, and crashes at every
//! point of the pipeline (a Ready taken but not written, written but not applied, applied but not
//! reported). Whatever was not written is lost, and that must be safe.

use crate::harness::*;
use raft_core::eraftpb::MessageType;
use raft_core::{Config, Error, RawNode, StateRole, Storage, NO_LIMIT};

fn data(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// A group where node 1 leads term 1 and p1..=p5 (indexes 2..=6) are committed and applied
/// everywhere.
fn committed_group() -> Group {
    let mut g = elected_group();
    for i in 1..=5 {
        g.node(1)
            .raw
            .propose(vec![], format!("p{i}").into_bytes())
            .unwrap();
    }
    g.stabilize();
    for id in 1..=3 {
        assert_eq!(g.node(id).sm_applied(), 6, "node {id}");
        assert_eq!(g.node(id).storage.rl().hard_state().commit, 6, "node {id}");
    }
    g
}

#[test]
fn restart_with_applied_k_hands_out_k_plus_one_up_to_the_stored_commit_only() {
    let mut g = committed_group();
    // p6 (index 7) reaches node 3's disk, but node 3 never learns it is committed.
    g.node(1).raw.propose(vec![], b"p6".to_vec()).unwrap();
    g.node(1).settle();
    let to3: Vec<_> = g.outbox(1).into_iter().filter(|m| m.to == 3).collect();
    g.deliver_all(to3);
    g.node(3).settle();
    g.outbox(3);
    assert_eq!(g.node(3).storage.last_index().unwrap(), 7);
    assert_eq!(g.node(3).storage.rl().hard_state().commit, 6);

    // Node 3's state machine had durably reached index 3 only when it crashed.
    g.node(3).state_machine.truncate(3);
    g.node(3).crash_and_restart();
    let node3 = g.node(3);
    assert_eq!(node3.raw.raft.raft_log.applied, 3);
    let rd = node3.take_ready();
    assert_eq!(
        indexes(&rd.committed),
        vec![4, 5, 6],
        "exactly the entries after Config::applied, up to the stored commit index (not index 7, \
         whose commit this node never persisted)"
    );
    node3.persist(rd.number);
    node3.apply(u64::MAX);
    node3.report_applied();
    assert!(!node3.raw.has_ready(), "nothing is handed out twice");

    // Rejoining, it learns index 7 is committed and gets it once.
    g.node(1).raw.tick();
    g.stabilize();
    g.assert_same_state_machines(&data(&["p1", "p2", "p3", "p4", "p5", "p6"]));
}

#[test]
fn restart_refuses_applied_beyond_the_stored_commit() {
    let mut g = committed_group();
    let storage = g.node(3).storage.clone();
    let cfg = Config {
        applied: 7,
        ..config(3)
    };
    match RawNode::new(&cfg, storage.clone(), &logger()) {
        Err(Error::ConfigInvalid { field, .. }) => assert_eq!(field, "applied"),
        Err(e) => panic!("expected a ConfigInvalid error naming `applied`, got {e}"),
        Ok(_) => panic!("a restart claiming index 7 applied with commit 6 stored must be refused"),
    }
    let cfg = Config {
        applied: 6,
        ..config(3)
    };
    let mut raw = RawNode::new(&cfg, storage, &logger()).expect("applied == stored commit");
    assert!(!raw.has_ready(), "everything stored is applied");
    assert!(raw.ready().unwrap().committed_entries().is_empty());
}

/// Where in the pipeline the victim crashes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Point {
    /// Its Readys were taken (messages sent) but nothing was written.
    BeforePersist,
    /// Its Readys were written and reported, committed entries handed out but not applied.
    AfterPersistBeforeApply,
    /// Committed entries were applied but `advance_apply_to` was never called.
    AfterApplyBeforeReport,
}

/// Runs the group to quiescence with `victim` stopping at `point` (the others are synchronous).
fn drive(g: &mut Group, victim: u64, point: Point) {
    for _ in 0..50 {
        let mut moved = false;
        for id in 1..=3 {
            if id != victim {
                moved |= g.node(id).settle();
                continue;
            }
            let node = g.node(id);
            while node.raw.has_ready() {
                moved = true;
                let n = node.take_ready().number;
                if point != Point::BeforePersist {
                    node.persist(n);
                }
                if point == Point::AfterApplyBeforeReport {
                    node.apply(u64::MAX);
                }
            }
        }
        for id in 1..=3 {
            let msgs = g.outbox(id);
            moved |= !msgs.is_empty();
            g.deliver_all(msgs);
        }
        if !moved {
            return;
        }
    }
    panic!("the group did not settle");
}

fn crash_at(victim: u64, point: Point) {
    let ctx = format!("victim {victim} crashing {point:?}");
    let mut g = elected_group();
    for d in ["a", "b"] {
        g.node(1)
            .raw
            .propose(vec![], d.as_bytes().to_vec())
            .unwrap();
    }
    drive(&mut g, victim, point);
    // a and b (indexes 2, 3) are committed: the other two nodes applied them.
    for id in (1..=3).filter(|id| *id != victim) {
        assert_eq!(
            payloads(&g.node(id).state_machine),
            data(&["a", "b"]),
            "{ctx}: node {id}"
        );
    }
    let node = g.node(victim);
    match point {
        Point::BeforePersist => {
            assert!(
                !node.disk_queue.is_empty(),
                "{ctx}: Readys are waiting for the disk"
            );
            assert_eq!(node.storage.last_index().unwrap(), 1, "{ctx}");
        }
        Point::AfterPersistBeforeApply => {
            assert_eq!(
                indexes(node.to_apply.make_contiguous()),
                vec![2, 3],
                "{ctx}"
            );
            assert_eq!(node.sm_applied(), 1, "{ctx}");
        }
        Point::AfterApplyBeforeReport => {
            assert_eq!(node.sm_applied(), 3, "{ctx}");
            assert_eq!(node.raw.raft.raft_log.applied, 1, "{ctx}: never reported");
        }
    }

    node.crash_and_restart();
    let stored_commit = node.storage.rl().hard_state().commit;
    let rd = node.take_ready();
    let expected_again: Vec<u64> = match point {
        // Nothing was written: the node restarts without a and b, knowing only index 1.
        Point::BeforePersist => vec![],
        // Written but not applied: handed out again, from storage.
        Point::AfterPersistBeforeApply => vec![2, 3],
        // Applied: Config::applied = 3 says so, nothing comes again.
        Point::AfterApplyBeforeReport => vec![],
    };
    assert_eq!(
        indexes(&rd.committed),
        expected_again,
        "{ctx}: the first Ready after the restart (stored commit {stored_commit})"
    );
    node.persist(rd.number);
    node.apply(u64::MAX);
    node.report_applied();

    // Heal: a new leader if the leader crashed, else a heartbeat to find the restarted node.
    if victim == 1 {
        g.node(2).raw.campaign().unwrap();
    } else {
        g.node(1).raw.tick();
    }
    g.stabilize();
    let leader = g
        .leader()
        .unwrap_or_else(|| panic!("{ctx}: no leader after healing"));
    g.node(leader).raw.propose(vec![], b"c".to_vec()).unwrap();
    g.stabilize();
    g.assert_same_state_machines(&data(&["a", "b", "c"]));
    let last = g.node(leader).raw.raft.raft_log.last_index();
    for id in 1..=3 {
        let node = g.node(id);
        assert_eq!(
            node.sm_applied(),
            last,
            "{ctx}: node {id} applied everything"
        );
        let stored = node.storage.entries(1, last + 1, NO_LIMIT).unwrap();
        assert_eq!(
            ids(&stored),
            ids(&node.state_machine),
            "{ctx}: node {id}'s durable log is what it applied"
        );
    }
}

#[test]
fn follower_crashing_before_its_readys_are_written_rejoins_safely() {
    crash_at(3, Point::BeforePersist);
}

#[test]
fn follower_crashing_after_persisting_before_applying_gets_the_entries_again() {
    crash_at(3, Point::AfterPersistBeforeApply);
}

#[test]
fn follower_crashing_after_applying_before_reporting_gets_nothing_twice() {
    crash_at(3, Point::AfterApplyBeforeReport);
}

#[test]
fn leader_crashing_before_writing_what_it_replicated_loses_nothing_committed() {
    // The leader sent its appends before writing them (allowed); the followers' quorum committed
    // a and b. The restarted node lacks them and gets them back from the new leader (§5.4).
    crash_at(1, Point::BeforePersist);
}

#[test]
fn leader_crashing_after_persisting_before_applying_gets_the_entries_again() {
    crash_at(1, Point::AfterPersistBeforeApply);
}

#[test]
fn leader_crashing_after_applying_before_reporting_gets_nothing_twice() {
    crash_at(1, Point::AfterApplyBeforeReport);
}

#[test]
fn applying_before_the_commit_index_is_written_is_recovered_at_restart() {
    // A Ready may carry committed entries together with the hard state that commits them. An
    // application that applies them before that Ready's write completes, then crashes, has a
    // state machine ahead of its stored commit index.
    let mut g = elected_group();
    for d in ["a", "b"] {
        g.node(1)
            .raw
            .propose(vec![], d.as_bytes().to_vec())
            .unwrap();
    }
    g.node(1).settle();
    let out = g.outbox(1);
    g.deliver_all(out);
    g.node(3).settle(); // a and b are on node 3's disk, not yet known committed
    g.node(2).settle();
    let acks: Vec<_> = [g.outbox(2), g.outbox(3)].concat();
    g.deliver_all(acks);
    g.node(1).settle();
    let commit_news: Vec<_> = g.outbox(1).into_iter().filter(|m| m.to == 3).collect();
    g.deliver_all(commit_news);
    let node3 = g.node(3);
    let rd = node3.take_ready();
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(3));
    assert_eq!(
        indexes(&rd.committed),
        vec![2, 3],
        "a and b are durable locally, so they come with the commit index that covers them"
    );
    node3.apply(u64::MAX); // the apply thread is faster than the disk
    assert_eq!(node3.storage.rl().hard_state().commit, 1);

    // Crash before the write: Config::applied = 3 is beyond the stored commit 1. The entries the
    // state machine applied are in the stored log (committed entries are handed out only once
    // durable locally), so the restart raises the commit index to the applied index.
    let storage = node3.storage.clone();
    let cfg = Config {
        applied: 3,
        ..config(3)
    };
    let restarted = RawNode::new(&cfg, storage.clone(), &logger())
        .expect("a restart with applied beyond the stored commit but within the stored log");
    assert_eq!(
        restarted.raft.raft_log.committed, 3,
        "commit raised to applied"
    );
    assert!(
        matches!(
            RawNode::new(
                &Config {
                    applied: 4,
                    ..config(3)
                },
                storage.clone(),
                &logger()
            ),
            Err(Error::ConfigInvalid { .. })
        ),
        "applied beyond the stored log is refused"
    );
    node3.crash_and_restart();
    let node3 = g.node(3);
    assert_eq!(node3.raw.raft.raft_log.committed, 3);
    assert!(
        !node3.raw.has_ready() || node3.take_ready().committed.is_empty(),
        "nothing applied is handed out again"
    );
    g.node(1).raw.tick();
    g.stabilize();
    g.assert_same_state_machines(&data(&["a", "b"]));
}

#[test]
fn candidate_crashing_before_its_ready_is_written_never_sent_its_vote_requests() {
    let mut g = Group::new(3);
    g.node(2).raw.campaign().unwrap();
    let rd = g.node(2).take_ready();
    assert_eq!(rd.hard_state.map(|hs| (hs.term, hs.vote)), Some((1, 2)));
    assert!(
        rd.messages.is_empty(),
        "a candidate's vote requests wait for its term and self-vote to be durable"
    );
    assert_eq!(
        types(&rd.persisted_messages),
        vec![
            (MessageType::MsgRequestVote, 1),
            (MessageType::MsgRequestVote, 3)
        ]
    );
    g.node(2).crash_and_restart();
    assert!(g.node(2).outbox.is_empty());
    assert_eq!((g.node(2).raw.raft.term, g.node(2).raw.raft.vote), (0, 0));
    // Nobody heard of term 1 from node 2: node 1 can be elected in term 1.
    g.node(1).raw.campaign().unwrap();
    g.stabilize();
    assert_eq!(g.leader(), Some(1));
    assert_eq!(g.node(1).raw.raft.term, 1);
}

#[test]
fn voter_crashing_before_writing_its_vote_never_sent_it_and_may_vote_again() {
    let mut g = Group::new(3);
    g.node(2).raw.campaign().unwrap();
    g.node(2).settle();
    let to3: Vec<_> = g.outbox(2).into_iter().filter(|m| m.to == 3).collect();
    g.deliver_all(to3);
    let rd = g.node(3).take_ready();
    assert_eq!(rd.hard_state.map(|hs| (hs.term, hs.vote)), Some((1, 2)));
    assert!(
        rd.messages.is_empty(),
        "a vote never leaves before it is durable"
    );
    assert_eq!(
        types(&rd.persisted_messages),
        vec![(MessageType::MsgRequestVoteResponse, 2)]
    );
    // §5.2 (one vote per term) holds across the crash because the vote was never sent.
    g.node(3).crash_and_restart();
    assert_eq!(g.node(3).raw.raft.vote, 0);
    g.node(1).raw.campaign().unwrap();
    g.node(1).settle();
    let to3: Vec<_> = g.outbox(1).into_iter().filter(|m| m.to == 3).collect();
    g.deliver_all(to3);
    g.node(3).settle();
    let grant = g.outbox(3);
    assert_eq!(
        types(&grant),
        vec![(MessageType::MsgRequestVoteResponse, 1)]
    );
    assert!(!grant[0].reject, "node 3 may grant its term-1 vote again");
    g.deliver_all(grant);
    g.node(1).settle();
    assert_eq!(g.node(1).raw.raft.state, StateRole::Leader);
    assert_ne!(
        g.node(2).raw.raft.state,
        StateRole::Leader,
        "one leader per term"
    );
    g.stabilize();
    assert_eq!(g.leader(), Some(1));
}
