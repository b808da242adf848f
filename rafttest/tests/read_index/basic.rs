//! The basic paths of a linearizable read (thesis §6.4): Safe reads on the leader and on a follower,
//! lease-based reads while the lease holds, and a single-voter leader.

use raft_core::eraftpb::MessageType;
use rafttest::Network;

use crate::support::*;

// Thesis §6.4: the leader records its commit index, confirms it still leads by a heartbeat round
// acknowledged by a majority, and only then hands out the read point.
#[test]
fn safe_read_on_leader_is_answered_at_its_commit_index_after_a_quorum_heartbeat_round() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    let w = put(&mut net, 1, b"b");
    assert_eq!(committed(&net, 1), w);

    request_read(&mut net, 1, b"leader-read");
    let out = net.node_mut(1).handle_ready().expect("ready");
    assert_no_read_state(&net, 1, "no follower has acknowledged the read round yet");
    let hbs = of_type(&out, MessageType::MsgHeartbeat);
    let mut to: Vec<u64> = hbs.iter().map(|m| m.to).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        [2, 3],
        "the read round must be broadcast to every follower"
    );
    let ctx = single_heartbeat_ctx(&out);
    assert_ne!(
        ctx.as_ref(),
        b"leader-read",
        "the heartbeat context must be the leader's round, not the request context"
    );
    assert_ne!(
        round_of(&ctx),
        0,
        "the heartbeats must name the read's round"
    );

    net.send(out);
    assert_eq!(read_states(&net, 1), [rs(w, b"leader-read")]);
    assert!(
        net.node(1).applied_index >= w,
        "the leader can serve the read only once it applied up to the read index"
    );
}

// Thesis §6.4: a follower asks the leader for the read index and serves the read once it has
// applied up to that index, which is the leader's commit index and may be beyond its own.
#[test]
fn safe_read_on_follower_is_forwarded_and_answered_with_the_leaders_commit_index() {
    let mut net = elected(3);
    put(&mut net, 1, b"a");
    // Node 3 misses the next write: the leader commits it with node 2 alone.
    net.node_mut(1)
        .raw
        .propose(vec![], b"b".to_vec())
        .expect("proposal");
    let appends_to_3 =
        |m: &raft_core::eraftpb::Message| m.msg_type() == MessageType::MsgAppend && m.to == 3;
    run(&mut net, vec![], appends_to_3);
    let w = written_index(&net, 1, b"b");
    assert!(
        net.node(3).applied_index < w,
        "node 3 should not have the write yet"
    );

    let mark = net.delivered.len();
    request_read(&mut net, 3, b"follower-read");
    run(&mut net, vec![], appends_to_3);
    let traffic = delivered_since(&net, mark);
    let fwd = of_type(traffic, MessageType::MsgReadIndex);
    assert_eq!(
        fwd.len(),
        1,
        "node 3 should forward its read once: {traffic:?}"
    );
    assert_eq!((fwd[0].from, fwd[0].to, fwd[0].term), (3, 1, 0));
    assert_eq!(fwd[0].entries.len(), 1);
    assert_eq!(fwd[0].entries[0].data.as_ref(), b"follower-read");
    let resp = of_type(traffic, MessageType::MsgReadIndexResp);
    assert_eq!(resp.len(), 1, "the leader should answer once: {traffic:?}");
    assert_eq!((resp[0].from, resp[0].to, resp[0].index), (1, 3, w));
    assert_eq!(resp[0].entries[0].data.as_ref(), b"follower-read");

    assert_eq!(read_states(&net, 3), [rs(w, b"follower-read")]);
    assert_no_read_state(&net, 1, "the read was node 3's, not the leader's");
    assert!(
        net.node(3).applied_index < w,
        "node 3 must wait before serving: it has not applied up to the read index yet"
    );

    // Once node 3 catches up it can serve the read, and what it serves includes the write.
    net.tick(1);
    assert!(
        net.node(3).applied_index >= w,
        "node 3 did not catch up after a heartbeat"
    );
    assert_eq!(net.node(3).applied_data(), [b"a".to_vec(), b"b".to_vec()]);
}

// Thesis §6.4.1: while a quorum acknowledged a heartbeat sent less than an election timeout ago,
// the leader answers a lease-based read at once, without a heartbeat round.
#[test]
fn lease_based_read_on_leader_is_answered_without_a_heartbeat_round_while_the_lease_holds() {
    let mut net = elected_with(3, lease_cfg);
    let w = put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    let mark = net.delivered.len();
    request_read(&mut net, 1, b"lease");
    let out = net.node_mut(1).handle_ready().expect("ready");
    assert_eq!(
        read_states(&net, 1),
        [rs(w, b"lease")],
        "a lease-based read is answered in the leader's next Ready while the lease holds"
    );
    assert!(
        of_type(&out, MessageType::MsgHeartbeat).is_empty(),
        "a lease-based read must not start a heartbeat round while the lease holds: {out:?}"
    );
    net.send(out);
    assert!(
        of_type(delivered_since(&net, mark), MessageType::MsgHeartbeat).is_empty(),
        "a lease-based read must not start a heartbeat round while the lease holds"
    );
    assert_eq!(read_states(&net, 1).len(), 1);
}

#[test]
fn lease_based_read_on_follower_is_forwarded_and_answered_without_a_heartbeat_round() {
    let mut net = elected_with(3, lease_cfg);
    let w = put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    let mark = net.delivered.len();
    request_read(&mut net, 2, b"lease-f");
    net.stabilize();
    let traffic = delivered_since(&net, mark);
    assert!(
        of_type(traffic, MessageType::MsgHeartbeat).is_empty(),
        "a lease-based read must not start a heartbeat round while the lease holds: {traffic:?}"
    );
    let resp = of_type(traffic, MessageType::MsgReadIndexResp);
    assert_eq!(resp.len(), 1, "the leader should answer once: {traffic:?}");
    assert_eq!((resp[0].to, resp[0].index), (2, w));
    assert_eq!(read_states(&net, 2), [rs(w, b"lease-f")]);
    assert_no_read_state(&net, 1, "the read was node 2's");
}

// Thesis §6.4: with a single voter there is no one to confirm leadership with.
#[test]
fn singleton_leader_answers_a_read_at_once() {
    let mut net = Network::new(1);
    net.campaign(1);
    assert!(is_leader(&net, 1));
    let w = put(&mut net, 1, b"a");
    request_read(&mut net, 1, b"solo");
    let out = net.node_mut(1).handle_ready().expect("ready");
    assert_eq!(read_states(&net, 1), [rs(w, b"solo")]);
    assert!(
        out.is_empty(),
        "a single voter needs no message to answer: {out:?}"
    );
}

// etcd and raft-rs send MsgReadIndex without a term; one carrying a term is no evidence of a new
// term and must not depose the leader.
#[test]
fn read_request_carrying_a_higher_term_is_treated_as_termless() {
    let mut net = elected(3);
    let w = put(&mut net, 1, b"a");
    let mut m = read_request(2, 1, vec![ctx_entry(b"termful")]);
    m.term = 7;
    net.node_mut(1)
        .raw
        .step(m)
        .expect("the leader accepts the read");
    net.stabilize();
    assert!(is_leader(&net, 1), "a read request deposed the leader");
    assert_eq!(net.node(1).term(), 1, "a read request changed the term");
    assert_eq!(read_states(&net, 2), [rs(w, b"termful")]);
}
