//! The ABA race of asynchronous writes: a node hands out entries for writing, a newer leader
//! overwrites them before the write is reported, and the report of the old write must not mark
//! the new entries (or the gone ones) durable.

use crate::harness::*;
use raft_core::eraftpb::MessageType;
use raft_core::{StateRole, Storage, NO_LIMIT};

/// Node 1 leads term 1 and hands out entries 2 and 3 (term 1) without writing them; node 2 wins
/// term 2 without them (node 3's vote), makes `new_leader_proposals` proposals and replicates its
/// log to node 1, which hands the overwriting entries out in a second Ready. Returns the group,
/// the number of node 1's stale Ready and of the overwriting one.
fn overwritten_group(new_leader_proposals: usize) -> (Group, u64, u64) {
    let mut g = elected_group();
    for data in [b"x1", b"x2"] {
        g.node(1).raw.propose(vec![], data.to_vec()).unwrap();
    }
    let stale = g.node(1).take_ready();
    assert_eq!(ids(&stale.entries), vec![(2, 1), (3, 1)]);
    // Its appends are lost: nobody else ever sees x1 and x2.
    g.outbox(1);

    g.node(2).raw.campaign().unwrap();
    g.node(2).settle();
    let votes: Vec<_> = g.outbox(2).into_iter().filter(|m| m.to == 3).collect();
    g.deliver_all(votes);
    g.node(3).settle();
    let granted = g.outbox(3);
    g.deliver_all(granted);
    assert_eq!(
        g.node(2).raw.raft.state,
        StateRole::Leader,
        "node 3's vote elects node 2"
    );
    for i in 0..new_leader_proposals {
        let data = format!("y{}", i + 1).into_bytes();
        g.node(2).raw.propose(vec![], data).unwrap();
    }
    g.node(2).settle();
    let to1 = to_node1_delivering_the_rest(&mut g);
    assert!(!to1.is_empty(), "node 2 replicates to node 1");
    // Node 1 answers a rejection first if node 2 probed too high; settle that exchange but keep
    // node 1's own Readys unwritten.
    let mut overwrite = None;
    let mut pending = to1;
    for _ in 0..4 {
        g.deliver_all(pending);
        let rd = g.node(1).take_ready();
        if !rd.entries.is_empty() {
            overwrite = Some(rd);
            break;
        }
        // A rejection: release it (it promises nothing about the stale entries) and let node 2
        // answer.
        let n = rd.number;
        g.node(1).persist(n);
        let back = g.outbox(1);
        g.deliver_all(back);
        g.node(2).settle();
        pending = to_node1_delivering_the_rest(&mut g);
    }
    let overwrite = overwrite.expect("node 1 receives node 2's entries");
    let expected: Vec<(u64, u64)> = (2..=2 + new_leader_proposals as u64)
        .map(|i| (i, 2))
        .collect();
    assert_eq!(
        ids(&overwrite.entries),
        expected,
        "node 1's second Ready replaces index 2.. with node 2's term-2 entries"
    );
    assert_eq!(node_state(&mut g), (StateRole::Follower, 2));
    (g, stale.number, overwrite.number)
}

/// Takes node 2's outbox: delivers what goes to node 3 and returns what goes to node 1.
fn to_node1_delivering_the_rest(g: &mut Group) -> Vec<raft_core::eraftpb::Message> {
    let (to1, rest): (Vec<_>, Vec<_>) = g.outbox(2).into_iter().partition(|m| m.to == 1);
    g.deliver_all(rest);
    to1
}

fn node_state(g: &mut Group) -> (StateRole, u64) {
    let raft = &g.node(1).raw.raft;
    (raft.state, raft.term)
}

fn check_stale_ack_marks_nothing_durable(new_leader_proposals: usize) {
    let (mut g, stale, overwrite) = overwritten_group(new_leader_proposals);
    let new_last = 2 + new_leader_proposals as u64;
    assert!(stale < overwrite);
    assert_eq!(g.node(1).persisted(), 1);
    // The disk writes the stale Ready (in order, as it must) and reports it.
    g.node(1).write(stale);
    assert_eq!(
        ids(&g.node(1).storage.entries(2, 4, NO_LIMIT).unwrap()),
        vec![(2, 1), (3, 1)],
        "the disk now holds the stale entries"
    );
    g.node(1).raw.on_persist_ready(stale);
    let node1 = g.node(1);
    assert_eq!(
        node1.persisted(),
        1,
        "the report of the stale write must not mark the entries that replaced them durable"
    );
    let log = &node1.raw.raft.raft_log;
    assert_eq!(
        ids(&log.unstable.all_entries()),
        (2..=new_last).map(|i| (i, 2)).collect::<Vec<_>>(),
        "node 2's entries stay unstable until their own write is reported"
    );
    assert_eq!(
        log.term(2).unwrap(),
        2,
        "the log still shows node 2's entry at index 2"
    );
    assert_eq!(log.last_index(), new_last);
    assert!(
        !node1.raw.has_ready(),
        "nothing new to hand out: no commit, and nothing claims index 2.. is durable"
    );
    for m in &node1.outbox {
        assert!(
            !(m.msg_type() == MessageType::MsgAppendResponse && !m.reject && m.term == 1),
            "an acknowledgement claims the stale term-1 entries: {m:?}"
        );
        assert!(
            !(m.msg_type() == MessageType::MsgAppendResponse && !m.reject && m.index > 1),
            "an acknowledgement of index {} left before node 2's entries were written: {m:?}",
            m.index
        );
    }

    // The overwriting Ready is written and reported: now everything is consistent.
    g.node(1).persist(overwrite);
    let node1 = g.node(1);
    assert_eq!(node1.persisted(), new_last);
    assert!(node1.raw.raft.raft_log.unstable.is_empty());
    let stored = node1.storage.entries(2, new_last + 1, NO_LIMIT).unwrap();
    assert_eq!(
        ids(&stored),
        (2..=new_last).map(|i| (i, 2)).collect::<Vec<_>>(),
        "the later write truncated the stale suffix"
    );
    let acks: Vec<_> = node1
        .outbox
        .iter()
        .filter(|m| m.msg_type() == MessageType::MsgAppendResponse && !m.reject)
        .map(|m| (m.to, m.term, m.index))
        .collect();
    assert_eq!(
        acks,
        vec![(2, 2, new_last)],
        "exactly one acknowledgement, for node 2's entries, in term 2"
    );

    g.stabilize();
    let leader = g.leader().expect("a leader");
    assert_eq!(leader, 2);
    for id in 1..=3 {
        assert_eq!(
            g.node(id).committed(),
            new_last,
            "node {id} commits node 2's log"
        );
    }
    let expected: Vec<Vec<u8>> = (1..=new_leader_proposals)
        .map(|i| format!("y{i}").into_bytes())
        .collect();
    g.assert_same_state_machines(&expected);
}

#[test]
fn stale_write_report_after_a_longer_overwrite_marks_nothing_durable() {
    // Index 3 now holds term 2: only the term check tells the stale (3, 1) apart.
    check_stale_ack_marks_nothing_durable(2);
}

#[test]
fn stale_write_report_after_a_shorter_overwrite_marks_nothing_durable() {
    // Node 2's log ends at index 2: the stale Ready's last entry (3, 1) no longer exists.
    check_stale_ack_marks_nothing_durable(0);
}

#[test]
fn one_report_covering_the_stale_and_the_overwriting_ready_marks_only_the_new_entries() {
    let (mut g, _stale, overwrite) = overwritten_group(1);
    // The disk writes both in order and reports once, with the later number.
    g.node(1).persist(overwrite);
    let node1 = g.node(1);
    assert_eq!(node1.persisted(), 3);
    assert_eq!(
        ids(&node1.storage.entries(2, 4, NO_LIMIT).unwrap()),
        vec![(2, 2), (3, 2)]
    );
    assert!(node1.raw.raft.raft_log.unstable.is_empty());
    g.stabilize();
    g.assert_same_state_machines(&[b"y1".to_vec()]);
}

#[test]
fn node_that_wrote_only_the_stale_entries_before_crashing_has_them_replaced_on_rejoin() {
    // Node 1 wrote the stale entries, then crashed before writing the overwriting Ready: it
    // restarts with x1 and x2 in its log (term 1), and node 2's log must replace them.
    let (mut g, stale, _overwrite) = overwritten_group(2);
    g.node(1).write(stale);
    g.node(1).crash_and_restart();
    assert_eq!(
        ids(&g.node(1).storage.entries(2, 4, NO_LIMIT).unwrap()),
        vec![(2, 1), (3, 1)]
    );
    // Node 2 heartbeats; node 1 answers, gets a probe, and its stale suffix is replaced.
    for _ in 0..3 {
        g.node(2).raw.tick();
        g.stabilize();
    }
    for id in 1..=3 {
        assert_eq!(g.node(id).committed(), 4, "node {id}");
    }
    g.assert_same_state_machines(&[b"y1".to_vec(), b"y2".to_vec()]);
}
