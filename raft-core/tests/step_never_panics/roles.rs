//! The nodes under test: a real cluster driven until the node is in each role, and a check that
//! every fixture is what it claims to be (otherwise the properties test less than they say).

use raft_core::eraftpb::MessageType;
use raft_core::tracker::ProgressState;
use raft_core::{Config, StateRole};
use raft_testkit::{Cluster, Flags, Peer, SETTLE_BUDGET};
use storage_mem::{conf_state, MemStorage};

/// The configuration of these fixtures: the shared one, but one entry per append (the core's
/// default), which the Leader role's Probe and Replicate followers were built with.
pub fn config(id: u64, flags: Flags) -> Config {
    Config {
        max_size_per_msg: Config::default().max_size_per_msg,
        ..raft_testkit::config(id, flags)
    }
}

/// Voters 1, 2, 3 and learner 4 after the shared three-term history: every log is
/// `1:t1 2:t1 3:t1 4:t2 5:t2 6:t3 7:t3 8:t3`, committed to 8, node 1 leading in term 3.
fn with_history(flags: Flags) -> Cluster {
    let mut c = Cluster::with_config(|id| config(id, flags), &[1, 2, 3], &[4], &[]);
    c.play_history(None);
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Node 3, following leader 1 in term 3, holding an entry it has not persisted yet and an
    /// acknowledgement it has not sent yet.
    Follower,
    /// Node 1, an old leader of term 3 with two uncommitted entries of term 3, now following
    /// leader 2 of term 4 (whose log holds other entries at those indexes).
    DivergentFollower,
    /// Node 3, campaigning in term 4, no votes received yet.
    Candidate,
    /// Node 3, in a pre-vote round for term 4 (pre-vote is always on for this role).
    PreCandidate,
    /// Node 1, leader of term 3: node 2 replicating (with an unacknowledged append in flight),
    /// node 3 probing (paused), learner 4 replicating; an uncommitted entry at its last index.
    Leader,
    /// Node 4, a learner following leader 1.
    Learner,
    /// Node 4, restarted with a configuration that no longer contains it (its log is kept).
    Removed,
    /// Node 4 over an empty storage: no log, no members.
    Uninitialised,
}

/// Drives a cluster until the node under test is in `role`, and returns that node.
pub fn build(role: Role, flags: Flags) -> Peer {
    let flags = match role {
        Role::PreCandidate => Flags {
            pre_vote: true,
            ..flags
        },
        _ => flags,
    };
    match role {
        Role::Follower => {
            let mut c = with_history(flags);
            c.peer(1)
                .raw
                .propose(vec![], b"f".to_vec())
                .expect("leader accepts");
            let msgs = c.peer(1).handle_ready().expect("leader ready");
            let follower = c.peer(3);
            for m in msgs.into_iter().filter(|m| m.to == 3) {
                follower
                    .raw
                    .step(m)
                    .expect("follower accepts the leader's append");
            }
            c.take(3)
        }
        Role::DivergentFollower => {
            let mut c = with_history(flags);
            c.isolated.insert(1);
            for data in [b"x", b"y"] {
                c.peer(1)
                    .raw
                    .propose(vec![], data.to_vec())
                    .expect("leader accepts");
                c.stabilize(SETTLE_BUDGET);
            }
            c.elect(2);
            c.propose(2, b"z");
            // Leader 2's next heartbeat reaches node 1, which steps down; nothing else gets through,
            // so node 1 keeps its conflicting tail.
            for _ in 0..2 {
                c.peer(2).raw.tick();
            }
            let msgs = c.peer(2).handle_ready().expect("leader ready");
            let old_leader = c.peer(1);
            for m in msgs.into_iter().filter(|m| m.to == 1) {
                old_leader
                    .raw
                    .step(m)
                    .expect("old leader accepts the heartbeat");
            }
            old_leader.handle_ready().expect("old leader ready");
            c.take(1)
        }
        Role::Candidate => {
            let mut c = with_history(flags);
            c.isolated.insert(1);
            c.dropped_types.push(MessageType::MsgRequestVote);
            for _ in 0..10 {
                c.peer(2).raw.tick();
            }
            let _ = c.peer(3).raw.campaign();
            c.stabilize(SETTLE_BUDGET);
            c.take(3)
        }
        Role::PreCandidate => {
            let mut c = with_history(flags);
            c.isolated.insert(3);
            let _ = c.peer(3).raw.campaign();
            c.stabilize(SETTLE_BUDGET);
            c.take(3)
        }
        Role::Leader => {
            let mut c = with_history(flags);
            c.peer(1).raw.report_unreachable(3);
            c.isolated.insert(3);
            c.propose(1, b"h");
            c.isolated.insert(2);
            c.propose(1, b"i");
            c.take(1)
        }
        Role::Learner => with_history(flags).take(4),
        Role::Removed => {
            let old = with_history(flags).take(4);
            let store = old.store.clone();
            store.wl().set_conf_state(conf_state([1, 2, 3], []));
            let applied = old.applied;
            drop(old);
            let mut cfg = config(4, flags);
            cfg.applied = applied;
            Peer::new(&cfg, store)
        }
        Role::Uninitialised => Peer::new(&config(4, flags), MemStorage::new()),
    }
}

fn log_terms(p: &Peer) -> Vec<u64> {
    let log = &p.raw.raft.raft_log;
    (log.first_index()..=log.last_index())
        .map(|i| log.term(i).expect("term readable"))
        .collect()
}

#[test]
fn fixtures_reach_the_intended_roles_with_multi_term_logs() {
    let history = [1, 1, 1, 2, 2, 3, 3, 3];
    for flags in Flags::ALL {
        let p = build(Role::Follower, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.leader_id, r.term),
            (StateRole::Follower, 1, 3),
            "{flags:?}"
        );
        assert_eq!(
            log_terms(&p),
            [&history[..], &[3]].concat(),
            "follower log, {flags:?}"
        );
        assert!(
            !r.raft_log.unstable_entries().is_empty() && !r.msgs_after_append.is_empty(),
            "the follower should hold an unpersisted entry and an unsent ack, {flags:?}"
        );

        let p = build(Role::DivergentFollower, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.leader_id, r.term),
            (StateRole::Follower, 2, 4),
            "{flags:?}"
        );
        assert_eq!(
            log_terms(&p),
            [&history[..], &[3, 3]].concat(),
            "divergent log, {flags:?}"
        );
        assert_eq!(
            r.raft_log.committed, 8,
            "divergent follower commit, {flags:?}"
        );

        let p = build(Role::Candidate, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.state, r.term, r.vote),
            (StateRole::Candidate, 4, 3),
            "{flags:?}"
        );

        let p = build(Role::PreCandidate, flags);
        let r = &p.raw.raft;
        assert_eq!((r.state, r.term), (StateRole::PreCandidate, 3), "{flags:?}");

        let p = build(Role::Leader, flags);
        let r = &p.raw.raft;
        assert_eq!((r.state, r.term), (StateRole::Leader, 3), "{flags:?}");
        let state_of = |id| r.prs.get(id).map(|pr| pr.state);
        assert_eq!(state_of(2), Some(ProgressState::Replicate), "{flags:?}");
        assert_eq!(state_of(3), Some(ProgressState::Probe), "{flags:?}");
        assert!(
            r.prs.get(3).is_some_and(|pr| pr.probe_sent),
            "node 3 paused, {flags:?}"
        );
        assert_eq!(state_of(4), Some(ProgressState::Replicate), "{flags:?}");
        assert_eq!(
            (r.raft_log.committed, r.raft_log.last_index()),
            (9, 10),
            "leader commit and last index, {flags:?}"
        );

        let p = build(Role::Learner, flags);
        let r = &p.raw.raft;
        assert!(!r.promotable() && r.prs.conf().learners.contains(&4));
        assert_eq!(
            (r.state, r.leader_id),
            (StateRole::Follower, 1),
            "{flags:?}"
        );
        assert_eq!(log_terms(&p), history, "learner log, {flags:?}");

        let p = build(Role::Removed, flags);
        let r = &p.raw.raft;
        assert!(
            r.prs.get(4).is_none(),
            "node 4 should be outside its configuration"
        );
        assert_eq!(log_terms(&p), history, "removed node's log, {flags:?}");
        assert_eq!(r.raft_log.committed, 8, "removed node's commit, {flags:?}");

        let p = build(Role::Uninitialised, flags);
        let r = &p.raw.raft;
        assert_eq!(
            (r.prs.ids().count(), r.raft_log.last_index()),
            (0, 0),
            "{flags:?}"
        );
    }
}
