//! A few nodes exchanging messages through a queue, to bring nodes into the states a real
//! cluster reaches.

use crate::checks::step_checked;
use crate::config::{config, Flags};
use crate::peer::Peer;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{Config, StateRole};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use storage_mem::{conf_state, MemStorage};

/// More deliveries than any fixture needs to settle.
pub const SETTLE_BUDGET: usize = 10_000;

/// Nodes exchanging messages through a queue: delivered in sending order by
/// [`Cluster::stabilize`], or one by one by whoever drives the cluster.
pub struct Cluster {
    /// The nodes by id.
    pub peers: BTreeMap<u64, Peer>,
    /// Messages in flight, in sending order.
    pub queue: VecDeque<Message>,
    /// Nodes whose messages are dropped, both ways.
    pub isolated: BTreeSet<u64>,
    /// Message types that are dropped.
    pub dropped_types: Vec<MessageType>,
    /// Every message delivered so far, if recording.
    pub recorded: Option<Vec<Message>>,
    /// Whether every delivered message is printed to stderr.
    pub trace: bool,
}

impl Cluster {
    /// Voters `voters` and learners `learners`, plus `spare` nodes outside the membership, each
    /// with [`config`] and `flags`.
    pub fn new(flags: Flags, voters: &[u64], learners: &[u64], spare: &[u64]) -> Cluster {
        Cluster::with_config(|id| config(id, flags), voters, learners, spare)
    }

    /// Like [`Cluster::new`], node `id` configured with `config(id)`.
    pub fn with_config(
        config: impl Fn(u64) -> Config,
        voters: &[u64],
        learners: &[u64],
        spare: &[u64],
    ) -> Cluster {
        // A spare starts from the bootstrap membership, which does not include it, as the
        // simulator's spares do: a node on an empty storage that joins by replaying the log from
        // index 1 would never learn the bootstrap voters (they are in no log entry), believe
        // itself alone once added, and elect itself.
        let peers = voters
            .iter()
            .chain(learners)
            .chain(spare)
            .map(|&id| {
                let store = MemStorage::new_with_conf_state(conf_state(
                    voters.iter().copied(),
                    learners.iter().copied(),
                ));
                (id, Peer::new(&config(id), store))
            })
            .collect();
        Cluster {
            peers,
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            dropped_types: Vec::new(),
            recorded: None,
            trace: false,
        }
    }

    /// Node `id`.
    pub fn peer(&mut self, id: u64) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such node")
    }

    /// Takes node `id` out of the cluster, for a test to drive on its own.
    pub fn take(mut self, id: u64) -> Peer {
        self.peers.remove(&id).expect("no such node")
    }

    /// Handles node `id`'s Ready (if it exists) and queues what it sends; panics when the Ready
    /// cannot be handled ([`Peer::handle_ready`]).
    pub fn ready(&mut self, id: u64) {
        if let Some(p) = self.peers.get_mut(&id) {
            let out = p
                .handle_ready()
                .unwrap_or_else(|e| panic!("node {id}: {e}"));
            self.queue.extend(out);
        }
    }

    /// Delivers one message with [`step_checked`], unless its sender or recipient is isolated,
    /// its type is dropped, or its recipient does not exist; returns the result of the step, if
    /// it was delivered.
    pub fn deliver(&mut self, m: Message) -> Option<raft_core::Result<()>> {
        if self.isolated.contains(&m.from)
            || self.isolated.contains(&m.to)
            || self.dropped_types.iter().any(|t| *t as i32 == m.msg_type)
        {
            return None;
        }
        if let Some(rec) = &mut self.recorded {
            rec.push(m.clone());
        }
        if self.trace {
            eprintln!("  deliver {}", raft_proto::describe_message(&m));
        }
        let p = self.peers.get_mut(&m.to)?;
        Some(step_checked(p, m))
    }

    /// Delivers the queued messages in order, each recipient handling its Ready right after, and
    /// then every node's Ready, until nothing is left or `budget` messages were taken off the
    /// queue.
    pub fn stabilize(&mut self, mut budget: usize) {
        loop {
            while let Some(m) = self.queue.pop_front() {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let to = m.to;
                if self.deliver(m).is_some() {
                    self.ready(to);
                }
            }
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                self.ready(id);
            }
            if self.queue.is_empty() {
                return;
            }
        }
    }

    /// Node `id` wins an election. Every other node but a leader is first ticked past its leader
    /// lease, so that with check-quorum it listens to the candidate (thesis §4.2.3); the leader
    /// is not ticked, as its heartbeats would renew the leases.
    pub fn elect(&mut self, id: u64) {
        let others: Vec<u64> = self
            .peers
            .iter()
            .filter(|(other, p)| **other != id && p.raw.raft.state != StateRole::Leader)
            .map(|(other, _)| *other)
            .collect();
        for other in others {
            let peer = self.peer(other);
            for _ in 0..10 {
                peer.raw.tick();
            }
            assert_eq!(
                peer.raw.raft.state,
                StateRole::Follower,
                "fixture: node {other} campaigned on its own while its lease was being expired"
            );
        }
        let _ = self.peer(id).raw.campaign();
        self.stabilize(SETTLE_BUDGET);
        assert_eq!(
            self.peers[&id].raw.raft.state,
            StateRole::Leader,
            "fixture: node {id} did not win the election"
        );
    }

    /// A proposal on node `id`, which must accept it, delivered until the cluster settles.
    pub fn propose(&mut self, id: u64, data: &[u8]) {
        self.peer(id)
            .raw
            .propose(vec![], data.to_vec())
            .unwrap_or_else(|e| panic!("fixture: node {id} refused a proposal: {e}"));
        self.stabilize(SETTLE_BUDGET);
    }

    /// Drives voters 1, 2, 3 through three terms: leaders 1 (term 1), 2 (term 2) and 1 (term 3),
    /// each committing entries, so that every log is `1:t1 2:t1 3:t1 4:t2 5:t2 6:t3 7:t3 8:t3`,
    /// committed to 8. Entry 8 is proposed while `lagging` (if any) is cut off: that node's log
    /// ends at 7.
    pub fn play_history(&mut self, lagging: Option<u64>) {
        self.elect(1);
        self.propose(1, b"a");
        self.propose(1, b"b");
        self.elect(2);
        self.propose(2, b"c");
        self.elect(1);
        self.propose(1, b"d");
        self.isolated.extend(lagging);
        self.propose(1, b"e");
        if let Some(id) = lagging {
            self.isolated.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork_store;

    fn log_terms(p: &Peer) -> Vec<u64> {
        let log = &p.raw.raft.raft_log;
        (log.first_index()..=log.last_index())
            .map(|i| log.term(i).expect("term readable"))
            .collect()
    }

    #[test]
    fn play_history_leaves_the_documented_logs_and_the_lagging_node_behind() {
        for flags in Flags::ALL {
            let mut c = Cluster::new(flags, &[1, 2, 3], &[4], &[]);
            c.play_history(Some(3));
            for id in [1, 2, 4] {
                assert_eq!(
                    log_terms(&c.peers[&id]),
                    [1, 1, 1, 2, 2, 3, 3, 3],
                    "node {id}, {flags:?}"
                );
            }
            assert_eq!(
                log_terms(&c.peers[&3]),
                [1, 1, 1, 2, 2, 3, 3],
                "lagging node 3, {flags:?}"
            );
            let leader = &c.peers[&1].raw.raft;
            assert_eq!(
                (leader.state, leader.term, leader.raft_log.committed),
                (StateRole::Leader, 3, 8),
                "{flags:?}"
            );
            assert!(c.isolated.is_empty(), "the lagging node is reconnected");
        }
    }

    #[test]
    fn a_forked_store_does_not_share_data_with_the_original() {
        let mut c = Cluster::new(Flags::ALL[0], &[1, 2, 3], &[], &[]);
        c.play_history(None);
        let store = &c.peers[&1].store;
        let fork = fork_store(store);
        fork.wl().mut_hard_state().term = 99;
        assert_eq!(
            (store.rl().hard_state().term, fork.rl().hard_state().term),
            (3, 99),
            "changing the fork must leave the original alone"
        );
    }
}
