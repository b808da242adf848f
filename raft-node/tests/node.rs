//! `Node` in a three-node group driven from the test's thread: each node's thread handles its
//! commands, the test carries messages between them (dropping what a partition cuts), persists
//! and applies. Proposal outcomes, forwarding, refusals and stopping; and a `Node` shared
//! between threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raft_core::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, MessageType,
};
use raft_core::proposal::{ProposalOutcome, Proposed};
use raft_core::raft::decode_conf_change;
use raft_core::{Config, StateRole};
use raft_node::{Node, NodeError, NodeHandle};
use storage_mem::MemStorage;

/// A member: its node, its storage and what it applied.
struct Member {
    id: u64,
    node: Node<MemStorage>,
    storage: MemStorage,
    applied: Vec<Entry>,
}

/// A group of members and the messages in flight between them.
struct Group {
    members: Vec<Member>,
    in_flight: VecDeque<Message>,
    /// Nodes cut off from everyone (their messages, both ways, are dropped).
    cut: Vec<u64>,
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl Group {
    fn new(voters: &[u64]) -> Group {
        let members = voters
            .iter()
            .map(|&id| {
                let storage = MemStorage::bootstrap(voters.iter().copied(), []).unwrap();
                let config = Config {
                    election_tick: 10,
                    heartbeat_tick: 1,
                    ..Config::new(id)
                };
                let node = Node::start(&config, storage.clone(), &logger()).unwrap();
                Member {
                    id,
                    node,
                    storage,
                    applied: Vec::new(),
                }
            })
            .collect();
        Group {
            members,
            in_flight: VecDeque::new(),
            cut: Vec::new(),
        }
    }

    fn member(&self, id: u64) -> &Member {
        self.members.iter().find(|m| m.id == id).expect("a member")
    }

    /// Handles every Ready and delivers every message until the group is quiet.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut busy = false;
            for m in &mut self.members {
                // A call's Ready is on the channel when the call returns.
                while let Ok(rd) = m.node.ready().try_recv() {
                    busy = true;
                    let mut rd = rd.expect("a Ready");
                    self.in_flight.extend(rd.take_messages());
                    m.storage.wl().append(rd.entries()).unwrap();
                    if let Some(hs) = rd.hard_state() {
                        m.storage.wl().set_hardstate(*hs);
                    }
                    self.in_flight.extend(rd.take_persisted_messages());
                    let committed = rd.take_committed_entries();
                    apply(m, &committed);
                    let mut light = m.node.advance(rd).expect("advance");
                    if let Some(commit) = light.commit_index() {
                        m.storage.wl().mut_hard_state().commit = commit;
                    }
                    self.in_flight.extend(light.take_messages());
                    apply(m, &light.take_committed_entries());
                    m.node.advance_apply().expect("advance_apply");
                }
            }
            while let Some(msg) = self.in_flight.pop_front() {
                busy = true;
                if self.cut.contains(&msg.from) || self.cut.contains(&msg.to) {
                    continue;
                }
                let to = self
                    .members
                    .iter()
                    .find(|m| m.id == msg.to)
                    .expect("a member");
                to.node.step(msg).expect("a message of the group");
            }
            if !busy {
                return;
            }
        }
        panic!("the group never settled");
    }

    /// Makes `id` campaign, lets the group settle, and checks that `id` leads.
    fn elect(&mut self, id: u64) {
        self.member(id).node.campaign().unwrap();
        self.settle();
        assert_eq!(role(self.member(id)), StateRole::Leader, "{id} leads");
    }
}

/// Applies committed entries, conf changes included.
fn apply(m: &mut Member, entries: &[Entry]) {
    for e in entries {
        if let Some(cc) = decode_conf_change(e) {
            let cs = m.node.apply_conf_change(cc.unwrap()).unwrap();
            m.storage.wl().set_conf_state(cs);
        }
        m.applied.push(e.clone());
    }
}

fn role(m: &Member) -> StateRole {
    m.node.status().unwrap().basic.soft_state.raft_state
}

fn data_applied(m: &Member) -> Vec<&[u8]> {
    m.applied
        .iter()
        .filter(|e| e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty())
        .map(|e| &e.data[..])
        .collect()
}

#[test]
fn a_proposal_is_answered_committed_once_applied_on_the_leader_and_on_a_follower() {
    let mut g = Group::new(&[1, 2, 3]);
    g.elect(1);
    let p = g.member(1).node.propose(vec![], b"a".to_vec()).unwrap();
    let Proposed::Appended { index, term } = p.proposed else {
        panic!("the leader appends: {:?}", p.proposed);
    };
    let outcome = p.outcome;
    assert!(
        outcome.try_recv().is_err(),
        "no outcome before it is applied"
    );
    g.settle();
    assert_eq!(
        outcome.try_recv().unwrap(),
        ProposalOutcome::Committed { index, term }
    );

    let f = g.member(2).node.propose(vec![], b"b".to_vec()).unwrap();
    assert!(
        matches!(f.proposed, Proposed::Forwarded { leader: 1, term: t, .. } if t == term),
        "{:?}",
        f.proposed
    );
    g.settle();
    // The leader answered where it appended it, and node 2 applied it there.
    assert_eq!(
        f.outcome.try_recv().unwrap(),
        ProposalOutcome::Committed {
            index: index + 1,
            term
        }
    );
    for id in [1, 2, 3] {
        assert_eq!(
            data_applied(g.member(id)),
            vec![&b"a"[..], b"b"],
            "node {id}"
        );
    }
}

#[test]
fn a_proposal_overwritten_by_a_later_leader_is_answered_dropped() {
    let mut g = Group::new(&[1, 2, 3]);
    g.elect(1);
    // Leader 1 is cut off, appends a proposal no one receives, and 2 takes over.
    g.cut.push(1);
    let p = g.member(1).node.propose(vec![], b"lost".to_vec()).unwrap();
    let Proposed::Appended { index, term } = p.proposed else {
        panic!("the leader appends");
    };
    g.settle();
    g.elect(2);
    g.member(2).node.propose(vec![], b"kept".to_vec()).unwrap();
    g.settle();
    // 1 comes back: leader 2's heartbeats reach it, its entry at `index` is replaced, and the
    // outcome says so.
    g.cut.clear();
    for _ in 0..3 {
        g.member(2).node.tick().unwrap();
        g.settle();
    }
    g.member(2).node.propose(vec![], b"after".to_vec()).unwrap();
    g.settle();
    let outcome = p.outcome.try_recv().expect("decided");
    assert!(
        matches!(outcome, ProposalOutcome::Dropped { index: i, term: t, committed_term }
            if (i, t) == (index, term) && committed_term > term),
        "{outcome:?}"
    );
    for id in [1, 2, 3] {
        let data = data_applied(g.member(id));
        assert!(
            !data.contains(&&b"lost"[..]),
            "node {id} applied the dropped write"
        );
        assert_eq!(data, vec![&b"kept"[..], b"after"], "node {id}");
    }
}

#[test]
fn bad_input_gets_an_error_and_the_node_keeps_working() {
    let mut g = Group::new(&[1, 2, 3]);
    g.elect(1);
    let leader = &g.member(1).node;
    // A local-only message type from the network, and a response from a stranger.
    let local = Message {
        msg_type: MessageType::MsgHup as i32,
        from: 2,
        to: 1,
        term: 1,
        ..Default::default()
    };
    assert!(matches!(leader.step(local), Err(NodeError::Raft(_))));
    let stranger = Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        from: 9,
        to: 1,
        term: 2,
        ..Default::default()
    };
    assert!(matches!(leader.step(stranger), Err(NodeError::Raft(_))));
    // A conf change that cannot be applied (no voter left) is refused at once.
    let remove_all = ConfChangeV2 {
        changes: raft_proto::conf_changes_from_string("r1 r2 r3").unwrap(),
        ..Default::default()
    };
    assert!(matches!(
        leader.propose_conf_change(vec![], remove_all),
        Err(NodeError::Raft(_))
    ));
    assert_eq!(role(g.member(1)), StateRole::Leader);
    g.member(1).node.propose(vec![], b"still".to_vec()).unwrap();
    g.settle();
    assert_eq!(data_applied(g.member(3)), vec![&b"still"[..]]);
}

#[test]
fn a_membership_change_is_proposed_and_applied_through_the_node() {
    let mut g = Group::new(&[1, 2, 3]);
    g.elect(1);
    let demote = ConfChange {
        change_type: ConfChangeType::AddLearnerNode as i32,
        node_id: 3,
        ..Default::default()
    };
    let p = g
        .member(1)
        .node
        .propose_conf_change(vec![], demote)
        .unwrap();
    g.settle();
    assert!(matches!(
        p.outcome.try_recv().unwrap(),
        ProposalOutcome::Committed { .. }
    ));
    for id in [1, 2, 3] {
        let cs = g.member(id).storage.rl().conf_state().clone();
        assert_eq!((cs.voters, cs.learners), (vec![1, 2], vec![3]), "node {id}");
    }
}

#[test]
fn stop_hands_the_raw_node_back_and_a_restarted_thread_goes_on() {
    let mut g = Group::new(&[1, 2, 3]);
    g.elect(1);
    g.member(1).node.propose(vec![], b"a".to_vec()).unwrap();
    g.settle();
    let Member {
        id,
        node,
        storage,
        applied,
    } = g.members.remove(0);
    let raw = node.stop().unwrap();
    assert_eq!(raw.raft.state, StateRole::Leader);
    let node = Node::start_with(raw, &logger()).unwrap();
    g.members.insert(
        0,
        Member {
            id,
            node,
            storage,
            applied,
        },
    );
    g.member(1).node.propose(vec![], b"b".to_vec()).unwrap();
    g.settle();
    assert_eq!(data_applied(g.member(2)), vec![&b"a"[..], b"b"]);
}

/// Payloads applied, shared between a driver thread and the test.
type Applied = Arc<Mutex<Vec<Vec<u8>>>>;

/// Handles `node`'s Readys until `stop`: persists, applies, and steps each message into its peer
/// through `peers` (from this thread, while the peer's own driver handles its Readys).
fn drive(
    node: Node<MemStorage>,
    storage: MemStorage,
    peers: Vec<NodeHandle>,
    applied: Applied,
    stop: Arc<AtomicBool>,
) {
    let send = |msgs: Vec<Message>| {
        for m in msgs {
            match peers[m.to as usize - 1].step(m) {
                Ok(()) => {}
                // A peer whose driver stopped first has stopped its node.
                Err(NodeError::Stopped) if stop.load(Ordering::SeqCst) => {}
                Err(e) => panic!("a message of the group was refused: {e}"),
            }
        }
    };
    let apply = |entries: Vec<Entry>| {
        let data = entries.into_iter().filter_map(|e| {
            (e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty())
                .then(|| e.data.to_vec())
        });
        applied.lock().unwrap().extend(data);
    };
    while !stop.load(Ordering::SeqCst) {
        let mut rd = match node.ready().recv_timeout(Duration::from_millis(10)) {
            Ok(rd) => rd.expect("a Ready"),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => panic!("the node's thread stopped"),
        };
        send(rd.take_messages());
        storage.wl().append(rd.entries()).unwrap();
        if let Some(hs) = rd.hard_state() {
            storage.wl().set_hardstate(*hs);
        }
        send(rd.take_persisted_messages());
        apply(rd.take_committed_entries());
        let mut light = node.advance(rd).expect("advance");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        send(light.take_messages());
        apply(light.take_committed_entries());
        node.advance_apply().expect("advance_apply");
    }
}

#[test]
fn handles_let_other_threads_propose_and_step_while_one_thread_handles_the_readys() {
    fn shareable<T: Clone + Send + Sync>() {}
    shareable::<NodeHandle>();
    let voters = [1, 2, 3];
    let mut nodes = Vec::new();
    for &id in &voters {
        let storage = MemStorage::bootstrap(voters, []).unwrap();
        let node = Node::start(&Config::new(id), storage.clone(), &logger()).unwrap();
        nodes.push((node, storage));
    }
    let handles: Vec<NodeHandle> = nodes.iter().map(|(node, _)| node.handle()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let applied: Vec<Applied> = voters.iter().map(|_| Applied::default()).collect();
    let drivers: Vec<_> = nodes
        .into_iter()
        .zip(&applied)
        .map(|((node, storage), applied)| {
            let (peers, applied, stop) = (handles.clone(), Arc::clone(applied), Arc::clone(&stop));
            thread::spawn(move || drive(node, storage, peers, applied, stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let leader = &handles[0];
    leader.campaign().unwrap();
    while leader.status().unwrap().basic.soft_state.raft_state != StateRole::Leader {
        assert!(Instant::now() < deadline, "node 1 was not elected");
        thread::sleep(Duration::from_millis(1));
    }

    // Two threads propose on the leader at once, each waiting for its proposals' outcomes.
    let proposers: Vec<_> = (0..2)
        .map(|t| {
            let leader = leader.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    let p = leader.propose(vec![], format!("{t}-{i}").into_bytes());
                    let outcome = p.unwrap().outcome;
                    let outcome = outcome.recv_timeout(Duration::from_secs(10));
                    assert!(
                        matches!(outcome, Ok(ProposalOutcome::Committed { .. })),
                        "proposal {t}-{i}: {outcome:?}"
                    );
                }
            })
        })
        .collect();
    for p in proposers {
        p.join().expect("a proposer thread");
    }
    for (id, applied) in voters.iter().zip(&applied) {
        while applied.lock().unwrap().len() < 40 {
            assert!(Instant::now() < deadline, "node {id} did not apply all 40");
            thread::sleep(Duration::from_millis(1));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for d in drivers {
        d.join().expect("a driver thread");
    }
    let on_leader = applied[0].lock().unwrap().clone();
    for (id, applied) in voters.iter().zip(&applied) {
        assert_eq!(*applied.lock().unwrap(), on_leader, "node {id}");
    }
    assert!(
        matches!(handles[1].status(), Err(NodeError::Stopped)),
        "a handle outlives its node and says so"
    );
}
