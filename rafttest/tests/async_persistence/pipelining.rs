//! Pipelined Readys: several Readys taken before the first is persisted, and persistence reported
//! out of step with `ready()` calls.

use crate::harness::*;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::Storage;

/// (to, index, commit, reject) of an append response.
fn ack(m: &Message) -> (u64, u64, u64, bool) {
    assert_eq!(
        m.msg_type(),
        MessageType::MsgAppendResponse,
        "not an ack: {m:?}"
    );
    (m.to, m.index, m.commit, m.reject)
}

fn acks(msgs: &[Message]) -> Vec<(u64, u64, u64, bool)> {
    msgs.iter().map(ack).collect()
}

/// Splits the leader's appends by follower.
fn appends_to(msgs: &[Message], to: u64) -> Vec<Message> {
    msgs.iter()
        .filter(|m| m.to == to && m.msg_type() == MessageType::MsgAppend)
        .cloned()
        .collect()
}

#[test]
fn leader_sends_appends_before_persisting_and_counts_itself_only_after_its_ack() {
    let mut g = elected_group();
    g.node(1).raw.propose(vec![], b"a".to_vec()).unwrap();
    let l1 = g.node(1).take_ready();
    g.node(1).raw.propose(vec![], b"b".to_vec()).unwrap();
    let l2 = g.node(1).take_ready();
    assert_eq!(l2.number, l1.number + 1);

    // Ready 1 and 2 each carry the new entry and the appends that replicate it; the leader may
    // send those before its own write (thesis §10.2.1: the leader writes in parallel).
    for (rd, index) in [(&l1, 2), (&l2, 3)] {
        assert_eq!(ids(&rd.entries), vec![(index, 1)], "Ready {}", rd.number);
        assert_eq!(
            types(&rd.messages),
            vec![(MessageType::MsgAppend, 2), (MessageType::MsgAppend, 3)],
            "Ready {}: the leader's appends go out at once",
            rd.number
        );
        for m in &rd.messages {
            assert_eq!(
                (m.index, ids(&m.entries)),
                (index - 1, vec![(index, 1)]),
                "Ready {}: the append carries only what is new since the previous Ready",
                rd.number
            );
        }
        assert!(
            rd.persisted_messages.is_empty(),
            "Ready {}: a leader's own appends promise nothing durable: {:?}",
            rd.number,
            rd.persisted_messages
        );
        assert!(rd.committed.is_empty() && rd.hard_state.is_none());
    }
    assert_eq!(
        g.node(1).own_matched(),
        1,
        "nothing of Ready 1/2 is durable yet"
    );
    assert_eq!(g.node(1).persisted(), 1);

    // Node 2 receives the appends one at a time and pipelines two Readys of its own.
    let out = g.outbox(1);
    let to2 = appends_to(&out, 2);
    g.deliver(to2[0].clone());
    let f1 = g.node(2).take_ready();
    g.deliver(to2[1].clone());
    let f2 = g.node(2).take_ready();
    for (rd, index) in [(&f1, 2), (&f2, 3)] {
        assert_eq!(
            ids(&rd.entries),
            vec![(index, 1)],
            "node 2 Ready {}",
            rd.number
        );
        assert!(
            rd.messages.is_empty(),
            "node 2 Ready {}: a follower's ack never leaves before persisting: {:?}",
            rd.number,
            rd.messages
        );
        assert_eq!(
            acks(&rd.persisted_messages),
            vec![(1, index, 1, false)],
            "node 2 Ready {}: one ack naming the last index its append matched",
            rd.number
        );
    }
    assert!(
        g.outbox(2).is_empty(),
        "acks are held until their Ready is written"
    );

    g.node(2).persist(f1.number);
    let released = g.outbox(2);
    assert_eq!(
        acks(&released),
        vec![(1, 2, 1, false)],
        "only Ready 1's ack is released by Ready 1's write"
    );
    g.deliver_all(released);
    assert_eq!(g.node(1).matched_of(2), 2, "the leader took node 2's ack");
    assert_eq!(
        g.node(1).committed(),
        1,
        "node 2 alone is no quorum of 3: the leader must count itself, and it has persisted nothing"
    );

    // The leader's disk reports Ready 1 only, after Ready 2 was taken.
    g.node(1).persist(l1.number);
    assert_eq!(
        g.node(1).own_matched(),
        2,
        "the leader's own match follows its persist ack"
    );
    assert_eq!(g.node(1).committed(), 2, "leader + node 2 hold index 2");
    let l3 = g.node(1).take_ready();
    assert_eq!(l3.hard_state.map(|hs| hs.commit), Some(2));
    assert_eq!(
        indexes(&l3.committed),
        vec![2],
        "index 2 is committed and durable locally"
    );
    assert!(l3.entries.is_empty());
    assert!(!l3.messages.is_empty());
    for m in &l3.messages {
        assert_eq!(
            (m.msg_type(), m.commit),
            (MessageType::MsgAppend, 2),
            "the new commit index goes to every follower"
        );
    }

    // Node 2 acks index 3, but the leader has not written it: the commit stays at 2.
    g.node(2).persist(f2.number);
    let released = g.outbox(2);
    assert_eq!(acks(&released), vec![(1, 3, 1, false)]);
    g.deliver_all(released);
    assert_eq!(g.node(1).matched_of(2), 3);
    assert_eq!(g.node(1).own_matched(), 2);
    assert_eq!(g.node(1).committed(), 2, "index 3 is on node 2 only");

    // Ready 3's report covers Ready 2 as well.
    g.node(1).persist(l3.number);
    assert_eq!(g.node(1).own_matched(), 3);
    assert_eq!(g.node(1).committed(), 3);
    let l4 = g.node(1).take_ready();
    assert_eq!(
        indexes(&l4.committed),
        vec![3],
        "index 3 follows in the next Ready, once"
    );
    g.node(1).persist(l4.number);
    g.node(1).apply(u64::MAX);
    g.node(1).report_applied();
    assert_eq!(
        payloads(&g.node(1).state_machine),
        vec![b"a".to_vec(), b"b".to_vec()]
    );

    g.deliver_all(appends_to(&out, 3));
    g.stabilize();
    g.assert_same_state_machines(&[b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn follower_pipelines_three_readys_and_releases_each_ack_with_its_ready() {
    let mut g = elected_group();
    // Three Readys' worth of appends for node 3: entries 2, entry 3, then the commit of 2.
    g.node(1).raw.propose(vec![], b"a".to_vec()).unwrap();
    g.node(1).take_ready();
    g.node(1).raw.propose(vec![], b"b".to_vec()).unwrap();
    g.node(1).take_ready();
    let out = g.outbox(1);
    let to3 = appends_to(&out, 3);
    assert_eq!(to3.len(), 2);
    g.deliver_all(appends_to(&out, 2));
    g.node(2).settle();
    let acks2 = g.outbox(2);
    g.deliver_all(acks2);
    g.node(1).settle();
    assert_eq!(g.node(1).committed(), 3);
    let commit_msgs = appends_to(&g.outbox(1), 3);
    assert_eq!(
        commit_msgs.len(),
        1,
        "one append tells node 3 the new commit index"
    );
    assert_eq!(commit_msgs[0].commit, 3);

    let node3 = g.node(3);
    node3.raw.step(to3[0].clone()).unwrap();
    let f1 = node3.take_ready();
    node3.raw.step(to3[1].clone()).unwrap();
    let f2 = node3.take_ready();
    node3.raw.step(commit_msgs[0].clone()).unwrap();
    let f3 = node3.take_ready();

    assert_eq!(ids(&f1.entries), vec![(2, 1)]);
    assert_eq!(ids(&f2.entries), vec![(3, 1)]);
    assert!(f3.entries.is_empty());
    for rd in [&f1, &f2, &f3] {
        assert!(
            rd.messages.is_empty(),
            "Ready {}: nothing a follower says here may leave before persisting: {:?}",
            rd.number,
            rd.messages
        );
        assert!(
            rd.committed.is_empty(),
            "Ready {}: nothing is persisted locally yet, so nothing may be applied",
            rd.number
        );
    }
    assert_eq!(acks(&f1.persisted_messages), vec![(1, 2, 1, false)]);
    assert_eq!(acks(&f2.persisted_messages), vec![(1, 3, 1, false)]);
    assert_eq!(
        acks(&f3.persisted_messages),
        vec![(1, 3, 3, false)],
        "the commit-only append is acked with the commit index it taught"
    );
    assert_eq!(
        f3.hard_state.map(|hs| hs.commit),
        Some(3),
        "the commit index is persisted after the entries it covers (Ready order)"
    );
    assert_eq!(node3.committed(), 3);
    assert!(node3.outbox.is_empty());

    // Out of step: Ready 1 is reported after Ready 3 was taken.
    node3.persist(f1.number);
    assert_eq!(node3.persisted(), 2);
    assert_eq!(
        acks(&std::mem::take(&mut node3.outbox)),
        vec![(1, 2, 1, false)]
    );
    let f4 = node3.take_ready();
    assert_eq!(
        indexes(&f4.committed),
        vec![2],
        "committed entries are capped at what is persisted locally: min(commit 3, persisted 2)"
    );
    assert!(f4.persisted_messages.is_empty() && f4.entries.is_empty());

    // Then Ready 3 (covering 2 and 3) in one report.
    node3.persist(f3.number);
    assert_eq!(node3.persisted(), 3);
    assert_eq!(
        acks(&std::mem::take(&mut node3.outbox)),
        vec![(1, 3, 1, false), (1, 3, 3, false)],
        "the acks of Ready 2 and 3 leave once both are written, in order"
    );
    let f5 = node3.take_ready();
    assert_eq!(
        indexes(&f5.committed),
        vec![3],
        "index 3 once, after index 2"
    );
    node3.persist(f5.number);
    assert!(!node3.raw.has_ready(), "nothing is handed out twice");
    node3.apply(u64::MAX);
    node3.report_applied();
    assert_eq!(node3.raw.raft.raft_log.applied, 3);
    assert_eq!(
        payloads(&node3.state_machine),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
}

#[test]
fn leader_pipeline_of_depth_three_reports_commit_and_entries_in_the_light_ready() {
    let mut g = elected_group();
    let mut readys = Vec::new();
    for data in [b"a", b"b", b"c"] {
        g.node(1).raw.propose(vec![], data.to_vec()).unwrap();
        let rd = g.node(1).take_ready();
        readys.push(rd);
    }
    let numbers: Vec<u64> = readys.iter().map(|r| r.number).collect();
    assert_eq!(numbers, vec![numbers[0], numbers[0] + 1, numbers[0] + 2]);
    // Both followers persist and ack everything at once.
    let out = g.outbox(1);
    g.deliver_all(out);
    for id in [2, 3] {
        g.node(id).settle();
    }
    let acks2 = g.outbox(2);
    let acks3 = g.outbox(3);
    g.deliver_all(acks2);
    g.deliver_all(acks3);
    // Thesis §10.2.1: a quorum of followers holds 2..=4, so the leader commits them without its
    // own write;
    // but it hands none of them out until it has written them itself.
    assert_eq!(g.node(1).committed(), 4);
    assert_eq!(g.node(1).own_matched(), 1);
    let l4 = g.node(1).take_ready();
    assert_eq!(l4.hard_state.map(|hs| hs.commit), Some(4));
    assert!(
        l4.committed.is_empty(),
        "committed but not persisted by the leader: nothing may be applied"
    );

    // Ready 1 is reported after Ready 4 was taken: only index 2 becomes appliable.
    g.node(1).persist(numbers[0]);
    assert_eq!(g.node(1).own_matched(), 2);
    let l5 = g.node(1).take_ready();
    assert_eq!(indexes(&l5.committed), vec![2]);

    // advance_append on a new Ready reports all earlier ones too (Ready 2..=6): the LightReady
    // hands out the rest, once.
    g.node(1).raw.propose(vec![], b"d".to_vec()).unwrap();
    let mut rd6 = g.node(1).raw.ready().unwrap();
    g.node(1).last_number += 1;
    assert_eq!(ids(rd6.entries()), vec![(5, 1)]);
    assert!(
        rd6.committed_entries().is_empty(),
        "3 and 4 are not persisted yet"
    );
    let to_send = rd6.take_messages();
    g.node(1).disk_queue.push_back(PendingWrite {
        number: rd6.number(),
        entries: rd6.take_entries(),
        hard_state: rd6.hard_state().copied(),
        persisted_messages: rd6.take_persisted_messages(),
    });
    let light = g.node(1).advance_append(rd6);
    assert_eq!(
        indexes(light.committed_entries()),
        vec![3, 4],
        "the LightReady hands out what became appliable, after what Ready 5 handed out"
    );
    assert_eq!(g.node(1).own_matched(), 5);
    assert_eq!(
        light.commit_index(),
        None,
        "the commit index (4) was already reported by Ready 4's hard state"
    );
    g.deliver_all(to_send);
    g.stabilize();
    let expected: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d"]
        .iter()
        .map(|d| d.to_vec())
        .collect();
    g.assert_same_state_machines(&expected);
}

/// A schedule where every node's disk lags `lag` Readys behind and its state machine lags
/// further: every proposal is still applied once, in order, everywhere.
fn run_with_lagging_disks(lag: usize) {
    let mut g = elected_group();
    let mut expected = Vec::new();
    let mut in_flight: std::collections::BTreeMap<u64, std::collections::VecDeque<u64>> =
        Default::default();
    for round in 0..60u32 {
        if round < 40 {
            let data = format!("p{round}").into_bytes();
            g.node(1).raw.propose(vec![], data.clone()).unwrap();
            expected.push(data);
        }
        for id in 1..=3u64 {
            let node = g.node(id);
            if node.raw.has_ready() {
                let n = node.take_ready().number;
                in_flight.entry(id).or_default().push_back(n);
            }
            let q = in_flight.entry(id).or_default();
            let drain = round >= 40;
            while q.len() > lag || (drain && !q.is_empty()) {
                let n = q.pop_front().unwrap();
                g.node(id).persist(n);
            }
            // The state machine applies one entry per round, and reports every other round.
            let node = g.node(id);
            let next = node.sm_applied() + 1;
            node.apply(next);
            if round % 2 == 0 {
                node.report_applied();
            }
        }
        for id in 1..=3u64 {
            let msgs = g.outbox(id);
            g.deliver_all(msgs);
        }
    }
    g.stabilize();
    g.assert_same_state_machines(&expected);
}

#[test]
fn pipelines_of_depth_one_to_three_apply_every_proposal_once_in_order() {
    for lag in 1..=3 {
        run_with_lagging_disks(lag);
    }
}

/// Whatever a LightReady reports as the commit index must be storable (leader side: followers
/// committed entries the leader has handed out in a later Ready that is not written yet): the application writes
/// it into the hard state, and a restart refuses a commit index beyond the stored log.
#[test]
fn light_ready_commit_index_never_exceeds_the_persisted_log() {
    let mut g = elected_group();
    g.node(1).raw.propose(vec![], b"a".to_vec()).unwrap();
    let l1 = g.node(1).raw.ready().unwrap();
    g.node(1).last_number += 1;
    g.node(1).raw.propose(vec![], b"b".to_vec()).unwrap();
    let l2 = g.node(1).take_ready();
    assert_eq!(ids(l1.entries()), vec![(2, 1)]);
    assert_eq!(ids(&l2.entries), vec![(3, 1)]);
    // Followers hold 2 and 3: the leader commits 3 before writing anything.
    let out: Vec<Message> = l1.messages().iter().cloned().chain(g.outbox(1)).collect();
    g.deliver_all(out);
    for id in [2, 3] {
        g.node(id).settle();
        let acks = g.outbox(id);
        g.deliver_all(acks);
    }
    assert_eq!(g.node(1).committed(), 3);
    // The leader's disk has written Ready 1 (entry 2) only, and reports it with advance_append.
    {
        let mut store = g.node(1).storage.wl();
        store.append(l1.entries()).unwrap();
    }
    g.node(1).disk_queue.retain(|w| w.number != l1.number());
    let light = g.node(1).raw.advance_append(l1).unwrap();
    assert_eq!(g.node(1).storage.last_index().unwrap(), 2);
    assert_light_commit_survives_a_crash(g.node(1), &light);
}

/// Persists the LightReady's commit index as its documentation says, crashes, and restarts.
fn assert_light_commit_survives_a_crash(node: &mut AsyncNode, light: &raft_core::LightReady) {
    let stored_last = node.storage.last_index().unwrap();
    if let Some(commit) = light.commit_index() {
        node.storage.wl().mut_hard_state().commit = commit;
    }
    let restarted = raft_core::RawNode::new(&config(node.id()), node.storage.clone(), &logger());
    if let Err(e) = restarted {
        panic!(
            "the LightReady reported commit index {:?} while the log written so far ends at \
             {stored_last}; after persisting it, a crash-restart fails: {e}",
            light.commit_index()
        );
    }
}

/// The same on a follower used synchronously: a message stepped between `ready()` and
/// `advance_append(rd)` brings a new entry and a commit index covering it; the LightReady reports
/// that commit although the entry is in no Ready yet.
#[test]
fn light_ready_commit_index_after_a_step_between_ready_and_advance_is_storable() {
    let mut g = elected_group();
    g.node(1).raw.propose(vec![], b"a".to_vec()).unwrap();
    g.node(1).settle();
    let first = appends_to(&g.outbox(1), 3);
    g.node(1).raw.propose(vec![], b"b".to_vec()).unwrap();
    g.node(1).settle();
    let second = appends_to(&g.outbox(1), 3);
    assert_eq!(ids(&second[0].entries), vec![(3, 1)]);
    // The leader commits 2 and 3 with node 3's help later; here node 3 simply learns commit 3
    // together with entry 3 (a leader whose commit moved since it built the append would send
    // exactly this).
    let mut with_commit = second[0].clone();
    with_commit.commit = 3;

    let node3 = g.node(3);
    node3.raw.step(first[0].clone()).unwrap();
    let rd = node3.raw.ready().unwrap();
    node3.last_number += 1;
    assert_eq!(ids(rd.entries()), vec![(2, 1)]);
    node3.storage.wl().append(rd.entries()).unwrap();
    // While Ready 1 is being written, the next append arrives.
    node3.raw.step(with_commit).unwrap();
    let light = node3.raw.advance_append(rd).unwrap();
    assert_eq!(node3.storage.last_index().unwrap(), 2);
    assert_eq!(
        ids(node3.raw.raft.raft_log.unstable_entries()),
        vec![(3, 1)],
        "entry 3 is not even handed out for writing yet"
    );
    assert_light_commit_survives_a_crash(node3, &light);
}
