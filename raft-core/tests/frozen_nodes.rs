//! Frozen nodes (issue 17): a sleeping node packed with `RawNode::freeze` thaws into exactly the
//! node that was frozen. Two clusters run the same script; in one, every node that can be is
//! frozen and thawed after every step. Their messages and states must not differ in anything.

use raft_core::eraftpb::Message;
use raft_core::{FreezePool, RawNode, StateRole};
use raft_testkit::{Cluster, Flags, Peer, SETTLE_BUDGET};
use storage_mem::MemStorage;

/// Freezes and thaws every node of `c` that may be frozen now; returns how many were.
fn refreeze(c: &mut Cluster, pool: &mut FreezePool) -> usize {
    let ids: Vec<u64> = c.peers.keys().copied().collect();
    let mut frozen = 0;
    for id in ids {
        let Peer {
            raw,
            store,
            applied,
            applies_conf_changes,
        } = c.peers.remove(&id).expect("listed");
        let raw: RawNode<MemStorage> = match raw.freeze(pool) {
            Ok(node) => {
                frozen += 1;
                assert_eq!(node.id(), id);
                node.thaw(&raft_testkit::logger())
            }
            Err(raw) => raw,
        };
        let peer = Peer {
            raw,
            store,
            applied,
            applies_conf_changes,
        };
        c.peers.insert(id, peer);
    }
    frozen
}

/// Everything observable about each node.
fn states(c: &Cluster) -> Vec<String> {
    c.peers
        .values()
        .map(|p| {
            let r = &p.raw.raft;
            format!(
                "{:?} asleep={} last={} applied={} {:?}",
                p.raw.status(),
                p.raw.is_quiesced(),
                r.raft_log.last_index(),
                p.applied,
                r.soft_state(),
            )
        })
        .collect()
}

/// One side of the comparison: a cluster, whether it refreezes, and what it delivered.
struct Side {
    c: Cluster,
    pool: Option<FreezePool>,
    frozen: usize,
}

impl Side {
    fn new(flags: Flags, freeze: bool) -> Side {
        let mut c = Cluster::new(flags, &[1, 2, 3], &[], &[]);
        c.recorded = Some(Vec::new());
        Side {
            c,
            pool: freeze.then(FreezePool::new),
            frozen: 0,
        }
    }

    fn settle(&mut self) {
        if let Some(pool) = &mut self.pool {
            self.frozen += refreeze(&mut self.c, pool);
        }
    }

    /// Runs `op`, delivers everything, and refreezes between every two deliveries.
    fn run(&mut self, op: impl FnOnce(&mut Cluster)) {
        op(&mut self.c);
        self.settle();
        for _ in 0..SETTLE_BUDGET {
            let ids: Vec<u64> = self.c.peers.keys().copied().collect();
            for id in ids {
                self.c.ready(id);
                self.settle();
            }
            let Some(m) = self.c.queue.pop_front() else {
                break;
            };
            self.c.deliver(m);
            self.settle();
        }
    }

    fn recorded(&self) -> &[Message] {
        self.c.recorded.as_deref().expect("recording")
    }
}

/// `n` tick rounds of the nodes `ids`.
fn ticks(side: &mut Side, n: usize, ids: &[u64]) {
    for _ in 0..n {
        side.run(|c| {
            for id in ids {
                c.peer(*id).raw.tick();
            }
        });
    }
}

/// The leader puts the group to sleep; it must be allowed to.
fn sleep(side: &mut Side) {
    side.run(|c| {
        let why = c.peer(1).raw.quiesce_blocker();
        assert!(c.peer(1).raw.quiesce(), "the leader quiesces ({why:?})");
    });
}

/// The script: elect, write, sleep, stay asleep through many ticks, wake for reads on the
/// leader and a follower, for a follower's proposal and for the leader's own, sleeping between
/// each; then lose the leader while asleep, fail over on the failure detector's `wake`, and
/// write under the new leader. The leader skips broadcasting commits (set at run time, so not
/// in any config): the followers learn them from the next append or heartbeat.
fn script(side: &mut Side) {
    let all = [1, 2, 3];
    side.run(|c| c.elect(1));
    side.run(|c| {
        c.peer(1).raw.skip_bcast_commit(true);
        c.peer(2).raw.set_priority(5);
        c.peer(3).raw.set_priority(2);
    });
    side.run(|c| c.propose(1, b"a"));
    ticks(side, 4, &all);
    sleep(side);
    ticks(side, 30, &all);
    // Two reads, a nap apart: the second round must not reuse the first one's number.
    for _ in 0..2 {
        side.run(|c| {
            c.peer(1)
                .raw
                .read_index(b"r1".to_vec())
                .expect("read on the leader");
            c.peer(3)
                .raw
                .read_index(b"r3".to_vec())
                .expect("read on a follower");
        });
        ticks(side, 4, &all);
        sleep(side);
    }
    side.run(|c| {
        c.peer(2)
            .raw
            .propose(vec![], b"b".to_vec())
            .expect("forwarded");
    });
    ticks(side, 4, &all);
    sleep(side);
    side.run(|c| c.propose(1, b"c"));
    ticks(side, 4, &all);
    sleep(side);
    side.run(|c| {
        c.isolated.insert(1);
        c.peer(2).raw.wake();
        c.peer(3).raw.wake();
    });
    ticks(side, 60, &[2, 3]);
    side.run(|c| {
        let leader = [2, 3]
            .into_iter()
            .find(|id| c.peers[id].raw.raft.state == StateRole::Leader)
            .expect("a new leader after the old one was lost asleep");
        c.propose(leader, b"d");
    });
}

#[test]
fn a_thawed_node_behaves_exactly_as_the_node_frozen() {
    for flags in Flags::ALL {
        let mut plain = Side::new(flags, false);
        let mut freezing = Side::new(flags, true);
        script(&mut plain);
        script(&mut freezing);
        assert!(
            freezing.frozen > 100,
            "{flags:?}: nodes were frozen ({} times)",
            freezing.frozen
        );
        assert_eq!(
            plain.recorded().len(),
            freezing.recorded().len(),
            "{flags:?}: as many messages"
        );
        for (i, (a, b)) in plain.recorded().iter().zip(freezing.recorded()).enumerate() {
            assert_eq!(a, b, "{flags:?}: message {i} differs");
        }
        assert_eq!(
            states(&plain.c),
            states(&freezing.c),
            "{flags:?}: final states"
        );
        let new_leader = [2, 3]
            .into_iter()
            .find(|id| plain.c.peers[id].raw.raft.state == StateRole::Leader);
        assert!(new_leader.is_some(), "{flags:?}: the failover happened");
    }
}

#[test]
fn only_a_sleeping_node_with_nothing_in_flight_freezes() {
    let mut pool = FreezePool::new();
    let mut c = Cluster::new(Flags::ALL[3], &[1, 2, 3], &[], &[]);
    c.elect(1);
    c.stabilize(SETTLE_BUDGET);
    assert_eq!(c.peer(1).raw.freeze_blocker(), Some("awake"));
    assert!(c.peer(1).raw.quiesce());
    // The quiescing heartbeats wait in the leader's Ready.
    assert_eq!(c.peer(1).raw.freeze_blocker(), Some("messages to send"));
    c.ready(1);
    assert_eq!(c.peer(1).raw.freeze_blocker(), None);
    // A follower asleep with a Ready handed out and not acknowledged keeps its node.
    let m = c.queue.pop_front().expect("a quiescing heartbeat");
    let to = m.to;
    c.deliver(m);
    assert!(c.peer(to).raw.is_quiesced());
    assert_eq!(
        refreeze(&mut c, &mut pool),
        2,
        "the leader and the follower told"
    );
    // Two nodes of one process with the same settings share one copy of them and of the
    // membership.
    assert_eq!(
        pool.shared(),
        (2, 1),
        "ids differ, so two settings; one membership"
    );
}
