//! A leader cut off from the group while the others elect a new leader and commit a write: it
//! must never hand out a read point below that write (thesis §6.4: a deposed leader that does not
//! know it yet would serve stale data).

use raft_core::StateRole;

use crate::support::*;

/// Every read state node `id` received has an index at or above `w`.
fn assert_no_read_state_below(net: &rafttest::Network, id: u64, w: u64) {
    for r in read_states(net, id) {
        assert!(
            r.index >= w,
            "node {id} got a stale read point {r:?}: the write at {w} committed before"
        );
    }
}

// Thesis §6.4: the heartbeat round cannot be acknowledged by a majority that elected a newer
// leader, so a partitioned leader never confirms a Safe read.
#[test]
fn partitioned_leader_never_serves_a_safe_read() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    net.isolate(1);
    net.campaign(2);
    assert!(is_leader(&net, 2), "nodes 2 and 3 should elect node 2");
    let w = put(&mut net, 2, b"b");
    assert!(
        is_leader(&net, 1),
        "node 1 has heard of no newer term: it still thinks it leads"
    );

    request_read(&mut net, 1, b"stale");
    for _ in 0..50 {
        net.tick_all();
        assert_no_read_state(&net, 1, "it cannot reach a quorum to confirm leadership");
    }
    assert_eq!(
        pending_reads(&net, 1),
        1,
        "the read should still be pending"
    );

    // Rejoining: node 2's heartbeat (a higher term) deposes node 1, which reports its read as
    // dropped; retried as a follower it is forwarded to node 2 and sees the write.
    net.recover();
    net.tick(2);
    assert_eq!(net.node(1).state(), StateRole::Follower);
    assert_eq!(net.node(1).raw.raft.leader_id, 2);
    assert_no_read_state(&net, 1, "its leadership was never confirmed");
    assert_eq!(
        net.node(1).dropped_reads,
        [bytes::Bytes::from_static(b"stale")]
    );

    request_read(&mut net, 1, b"stale");
    net.stabilize();
    assert_eq!(
        read_states(&net, 1).len(),
        1,
        "the retried read is answered"
    );
    assert_no_read_state_below(&net, 1, w);
    assert!(
        net.node(1).applied_index >= read_states(&net, 1)[0].index,
        "node 1 caught up to the read point"
    );
    assert_eq!(
        net.node(1).applied_data(),
        [b"a".to_vec(), b"b".to_vec()],
        "what node 1 serves includes the new leader's write"
    );
}

// etcd ReadOnlyLeaseBased: the lease is the check-quorum round. A leader that has heard from no
// quorum for an election timeout steps down, and from then on answers no read by itself.
#[test]
fn lease_based_partitioned_leader_steps_down_and_never_answers_after() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    net.isolate(1);
    let election_tick = lease_cfg(1).election_tick;
    let mut ticks = 0;
    while is_leader(&net, 1) {
        net.tick(1);
        ticks += 1;
        assert!(
            ticks <= 2 * election_tick,
            "node 1 still leads after {ticks} ticks without hearing from a quorum"
        );
    }

    // The others elect a leader and commit a write.
    let mut new_leader = None;
    for _ in 0..100 {
        net.tick(2);
        net.tick(3);
        new_leader = [2, 3].into_iter().find(|id| is_leader(&net, *id));
        if new_leader.is_some() {
            break;
        }
    }
    let new_leader = new_leader.expect("nodes 2 and 3 should elect a leader");
    let w = put(&mut net, new_leader, b"b");

    // Node 1 knows no leader: its reads are refused, however long it waits. (It is ticked less
    // than an election timeout, so it stays a follower; a candidate refuses reads as well.)
    for _ in 0..election_tick - 1 {
        let r = net.node_mut(1).raw.read_index(b"stale".to_vec());
        assert!(
            is_read_dropped(&r),
            "node 1 (no longer leader, no leader known) should refuse the read, got {r:?}"
        );
        net.tick(1);
        assert_no_read_state(&net, 1, "it no longer leads");
    }
    for _ in 0..3 * election_tick {
        net.tick(1);
        let _ = net.node_mut(1).raw.read_index(b"stale".to_vec());
        net.stabilize();
        assert_no_read_state(&net, 1, "it is cut off and no longer leads");
    }

    // Rejoining, it follows the group again and a retried read sees the write.
    net.recover();
    let mut answered = false;
    for _ in 0..100 {
        net.tick_all();
        let Some(leader) = net.leader().filter(|l| *l != 1) else {
            continue;
        };
        if net.node(1).raw.raft.leader_id != leader {
            continue;
        }
        if net.node_mut(1).raw.read_index(b"retry".to_vec()).is_ok() {
            net.stabilize();
            if !read_states(&net, 1).is_empty() {
                answered = true;
                break;
            }
        }
    }
    assert!(answered, "node 1's read was never answered after rejoining");
    assert_no_read_state_below(&net, 1, w);
}

// Thesis §6.4.1: a lease lasts an election timeout from the sending of a heartbeat a majority
// acknowledged (less a tick of rounding); followers refuse votes for that long (§4.2.3), so with
// clocks in step no other leader can be elected while it holds. Here every node ticks in lockstep;
// the cut-off leader had a lease when it was cut off and still believes it leads after the others
// elected a leader and committed a write (check-quorum steps it down only at the end of a period in
// which it heard from no quorum, etcd-io/raft#166), but its lease has expired by then: it must
// answer no lease read.
#[test]
fn lease_based_cut_off_leader_answers_no_read_after_a_newer_leader_committed() {
    let mut net = elected_with(3, lease_cfg);
    establish_lease(&mut net, 1);
    net.isolate(1);
    let mut w = None;
    let mut probes = 0;
    for round in 0..100 {
        net.tick_all();
        if w.is_none() {
            if let Some(l) = [2, 3].into_iter().find(|id| is_leader(&net, *id)) {
                w = Some(put(&mut net, l, b"new"));
            }
        }
        let Some(w) = w else { continue };
        if is_leader(&net, 1) {
            request_read(&mut net, 1, b"stale?");
            probes += 1;
            net.stabilize();
            let got = read_states(&net, 1);
            assert!(
                got.iter().all(|r| r.index >= w),
                "tick {round}: the cut-off leader answered {got:?} although a newer leader \
                 committed a write at {w}"
            );
        }
    }
    assert!(w.is_some(), "nodes 2 and 3 never elected a leader");
    assert!(
        probes > 0,
        "node 1 stepped down before the write committed: the stale window was never probed"
    );
}

// Thesis §3.10 / §6.4.1: MsgTimeoutNow lets the transferee's votes pass the followers' lease
// (etcd-io/etcd#12704), so the leader that sent it no longer holds a lease it may read under.
// Here node 1 holds a fresh lease, hands off to node 2 and is cut off right after; node 2 wins with
// node 3 and commits a write; node 1, still leader in its own view and within its lease, must not
// answer a lease read below that write (it falls back to a heartbeat round no one acknowledges).
#[test]
fn lease_based_leader_that_sent_timeout_now_answers_no_stale_read() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    request_read(&mut net, 1, b"in-lease");
    assert_eq!(
        net.node(1).raw.raft.read_states().len(),
        1,
        "node 1 should hold a lease before the transfer (read answered at once)"
    );
    net.stabilize();
    net.node_mut(1).read_states.clear();

    net.node_mut(1).raw.transfer_leader(2);
    let touches_1 = |m: &raft_core::eraftpb::Message| {
        (m.from == 1 || m.to == 1) && m.msg_type() != raft_core::eraftpb::MessageType::MsgTimeoutNow
    };
    run(&mut net, vec![], touches_1);
    assert!(
        is_leader(&net, 2),
        "node 2 should have won the transfer campaign"
    );
    assert!(
        is_leader(&net, 1),
        "node 1 heard nothing of it: it still leads"
    );
    net.node_mut(2)
        .raw
        .propose(vec![], b"b".to_vec())
        .expect("proposal");
    run(&mut net, vec![], touches_1);
    let w = written_index(&net, 2, b"b");

    let r = net.node_mut(1).raw.read_index(b"stale?".to_vec());
    run(&mut net, vec![], touches_1);
    assert!(
        read_states(&net, 1).iter().all(|s| s.index >= w),
        "node 1 answered {:?} (read_index returned {r:?}) after node 2 committed a write at {w}",
        read_states(&net, 1)
    );
    assert_no_read_state(
        &net,
        1,
        "a transfer is pending, so the read needs a heartbeat round no one can acknowledge",
    );
}

// A leadership transfer that timed out is abandoned (thesis §3.10), but the MsgTimeoutNow it sent
// may still be in flight: delivered late, it makes the transferee campaign past the followers'
// lease (etcd-io/etcd#12704) and win while the old leader's lease looks valid again. The old leader
// must then not answer a lease read below the new leader's write.
#[test]
fn lease_based_leader_whose_timeout_now_arrives_after_the_transfer_was_abandoned_answers_no_stale_read(
) {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    net.node_mut(1).raw.transfer_leader(2);
    let timeout_now = run(&mut net, vec![], |m| {
        m.msg_type() == raft_core::eraftpb::MessageType::MsgTimeoutNow
    });
    assert_eq!(
        timeout_now.len(),
        1,
        "node 1 should have sent MsgTimeoutNow"
    );
    // The transfer times out after an election timeout of the leader's ticks, acknowledged all along.
    for _ in 0..lease_cfg(1).election_tick {
        net.tick(1);
    }
    assert!(is_leader(&net, 1));
    assert_eq!(
        net.node(1).raw.raft.lead_transferee,
        None,
        "the transfer should have been abandoned after an election timeout"
    );

    // The late MsgTimeoutNow arrives; node 1 is cut off from then on.
    let touches_1 = |m: &raft_core::eraftpb::Message| {
        (m.from == 1 || m.to == 1) && m.msg_type() != raft_core::eraftpb::MessageType::MsgTimeoutNow
    };
    run(&mut net, timeout_now, touches_1);
    assert!(is_leader(&net, 2), "node 2 should have won the campaign");
    assert!(is_leader(&net, 1), "node 1 heard nothing of it");
    net.node_mut(2)
        .raw
        .propose(vec![], b"b".to_vec())
        .expect("proposal");
    run(&mut net, vec![], touches_1);
    let w = written_index(&net, 2, b"b");

    let r = net.node_mut(1).raw.read_index(b"stale?".to_vec());
    run(&mut net, vec![], touches_1);
    assert!(
        read_states(&net, 1).iter().all(|s| s.index >= w),
        "node 1 answered {:?} (read_index returned {r:?}) after node 2 committed a write at {w}",
        read_states(&net, 1)
    );
}
