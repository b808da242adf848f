//! Reads in progress when leadership changes: the old leader's own requests are reported dropped
//! (the application retries), requests it was confirming for followers get no answer (the
//! followers time out and retry), and a retried read on the new leader sees everything committed.

use bytes::Bytes;
use raft_core::eraftpb::MessageType;
use raft_core::StateRole;

use crate::support::*;

/// Every read state node `id` has received carries an index at or above `w`.
fn assert_read_states_at_or_above(net: &rafttest::Network, id: u64, w: u64) {
    assert!(
        !read_states(net, id).is_empty(),
        "node {id} got no read state"
    );
    for r in read_states(net, id) {
        assert!(
            r.index >= w,
            "node {id} got the read point {r:?} below {w}, which was committed before"
        );
    }
}

#[test]
fn pending_local_reads_are_reported_dropped_when_the_leader_steps_down() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    request_read(&mut net, 1, b"lost-1");
    request_read(&mut net, 1, b"lost-2");
    run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    assert_eq!(pending_reads(&net, 1), 2);

    net.campaign(2);
    assert!(is_leader(&net, 2), "node 2 should have won");
    assert_eq!(net.node(1).state(), StateRole::Follower);
    assert_eq!(
        net.node(1).dropped_reads,
        [Bytes::from_static(b"lost-1"), Bytes::from_static(b"lost-2")],
        "the old leader should report its unconfirmed reads as dropped"
    );
    assert_no_read_state(&net, 1, "its reads were never confirmed");
    assert_eq!(pending_reads(&net, 1), 0);

    // Retried on the new leader's watch, the read sees everything committed, including the new
    // leader's empty entry and a write it commits.
    let w = put(&mut net, 2, b"b");
    request_read(&mut net, 1, b"lost-1");
    net.stabilize();
    assert_eq!(read_states(&net, 1), [rs(w, b"lost-1")]);
}

#[test]
fn read_waiting_for_the_first_commit_is_reported_dropped_when_the_leader_steps_down() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    let _held = leader_with_uncommitted_entry(&mut net);
    request_read(&mut net, 2, b"early");
    run(&mut net, vec![], |m| is_append_resp_to(m, 2));
    assert_eq!(pending_reads(&net, 2), 1);

    // Node 3 holds node 2's empty entry too, so it can win the next term.
    net.campaign(3);
    assert!(is_leader(&net, 3), "node 3 should have won");
    assert_eq!(net.node(2).state(), StateRole::Follower);
    assert_eq!(net.node(2).dropped_reads, [Bytes::from_static(b"early")]);
    assert_no_read_state(&net, 2, "its leadership never got to confirm the read");
}

#[test]
fn read_forwarded_to_a_leader_that_steps_down_gets_no_answer_and_a_retry_succeeds() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    request_read(&mut net, 3, b"fwd");
    let held = run(&mut net, vec![], |m| is_hb_resp_to(m, 1));
    assert_eq!(pending_reads(&net, 1), 1, "node 1 holds node 3's read");

    net.campaign(2);
    assert!(is_leader(&net, 2), "node 2 should have won");
    // The old round's acknowledgements reach node 1 after it stepped down: nothing comes of them.
    let mark = net.delivered.len();
    deliver(&mut net, held);
    for _ in 0..5 {
        net.tick_all();
    }
    assert!(
        of_type(delivered_since(&net, mark), MessageType::MsgReadIndexResp).is_empty(),
        "the read forwarded to the deposed leader was answered"
    );
    for id in 1..=3 {
        assert_no_read_state(
            &net,
            id,
            "the only read was dropped with the old leadership",
        );
    }
    assert!(
        net.node(3).dropped_reads.is_empty(),
        "node 3 forwarded its read; it is not told of the drop, it times out"
    );
    assert!(
        net.node(1).dropped_reads.is_empty(),
        "the dropped read was node 3's, not node 1's own"
    );

    let w = put(&mut net, 2, b"b");
    request_read(&mut net, 3, b"fwd");
    net.stabilize();
    assert_eq!(read_states(&net, 3), [rs(w, b"fwd")]);
    assert_read_states_at_or_above(&net, 3, w);
}

// The new leader answers only once it committed an entry of its term (thesis §6.4 step 1), so a
// retry sees everything any earlier leader committed.
#[test]
fn retried_reads_after_a_leader_change_see_everything_committed() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    let last_of_old_leader = put(&mut net, 1, b"b");
    net.campaign(3);
    assert!(is_leader(&net, 3));
    let empty = last_index(&net, 3);
    assert!(empty > last_of_old_leader);
    for id in 1..=3 {
        request_read(&mut net, id, format!("retry-{id}").as_bytes());
    }
    net.stabilize();
    for id in 1..=3 {
        assert_eq!(
            read_states(&net, id),
            [rs(empty, format!("retry-{id}").as_bytes())]
        );
        assert_read_states_at_or_above(&net, id, last_of_old_leader);
    }
}
