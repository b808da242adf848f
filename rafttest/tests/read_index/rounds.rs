//! The confirmation rounds of Safe reads: numbered by the leader, released only by a quorum of
//! acknowledgements of that round or a later one, never by a duplicate, forged or minority
//! acknowledgement, and retried by the regular heartbeat when acknowledgements are lost.

use bytes::Bytes;
use raft_core::eraftpb::{ConfChangeTransition, Message, MessageType};
use raft_core::Error;
use rafttest::network::default_config;

use crate::support::*;

/// Starts a read with `ctx` on the leader `at` and holds back every heartbeat response to it.
/// Returns the held responses (one per follower that got the round's heartbeat).
fn read_holding_acks(net: &mut rafttest::Network, at: u64, ctx: &[u8]) -> Vec<Message> {
    request_read(net, at, ctx);
    run(net, vec![], |m| is_hb_resp_to(m, at))
}

/// The held acknowledgement sent by `from`.
fn ack_from(held: &[Message], from: u64) -> Message {
    held.iter()
        .find(|m| m.from == from)
        .unwrap_or_else(|| panic!("no heartbeat response from node {from} was held"))
        .clone()
}

#[test]
fn two_reads_with_the_same_context_get_two_read_states() {
    let mut net = elected(3);
    let w = put(&mut net, 1, b"a");
    request_read(&mut net, 1, b"dup");
    request_read(&mut net, 1, b"dup");
    request_read(&mut net, 2, b"dup-f");
    request_read(&mut net, 2, b"dup-f");
    net.stabilize();
    assert_eq!(read_states(&net, 1), [rs(w, b"dup"), rs(w, b"dup")]);
    assert_eq!(read_states(&net, 2), [rs(w, b"dup-f"), rs(w, b"dup-f")]);
}

// etcd-io/etcd#20418: when rounds were named by the request context, an acknowledgement of an old
// round, delivered again, could confirm a newer request with the same context that was made after
// a write, and hand out a read point that had not been confirmed.
#[test]
fn duplicated_ack_of_an_old_round_does_not_release_a_newer_read_with_the_same_context() {
    let mut net = elected(3);
    let acks_a = read_holding_acks(&mut net, 1, b"same");
    assert_eq!(acks_a.len(), 2);
    deliver(&mut net, acks_a.clone());
    let index_a = committed(&net, 1);
    assert_eq!(read_states(&net, 1), [rs(index_a, b"same")]);

    let w = put(&mut net, 1, b"w");
    assert!(w > index_a);
    let acks_b = read_holding_acks(&mut net, 1, b"same");
    assert_eq!(acks_b.len(), 2);
    assert_ne!(
        acks_a[0].context, acks_b[0].context,
        "a new request must start a new round"
    );

    // The old round's acknowledgements arrive again.
    deliver(&mut net, acks_a);
    assert_eq!(
        read_states(&net, 1),
        [rs(index_a, b"same")],
        "an acknowledgement of an old round released a newer read"
    );
    assert_eq!(pending_reads(&net, 1), 1, "read B must still be pending");

    deliver(&mut net, acks_b);
    assert_eq!(read_states(&net, 1), [rs(index_a, b"same"), rs(w, b"same")]);
}

#[test]
fn heartbeat_context_is_leader_generated_and_increases_per_request() {
    let mut net = elected(3);
    // The last context looks like a round context itself: the leader must still use its own.
    let contexts: [&[u8]; 4] = [b"a", b"a", b"", &round_ctx(7, 1)];
    let mut rounds = Vec::new();
    for ctx in contexts {
        request_read(&mut net, 1, ctx);
        let out = net.node_mut(1).handle_ready().expect("ready");
        let hb_ctx = single_heartbeat_ctx(&out);
        assert_ne!(
            hb_ctx.as_ref(),
            ctx,
            "the heartbeat context must not be the request context"
        );
        rounds.push(single_round(&out));
        net.send(out);
    }
    assert!(
        rounds.windows(2).all(|w| w[0] < w[1]),
        "round numbers must increase with every request: {rounds:?}"
    );
    let got: Vec<&[u8]> = read_states(&net, 1)
        .iter()
        .map(|r| r.request_ctx.as_ref())
        .collect();
    assert_eq!(got, contexts, "each read state carries its request context");
}

// Thesis §6.4: leadership is confirmed only by a majority of the voters (the leader counts).
#[test]
fn acks_from_a_minority_do_not_release_a_read() {
    let mut net = elected(5);
    let w = put(&mut net, 1, b"a");
    let held = read_holding_acks(&mut net, 1, b"r");
    assert_eq!(held.len(), 4);
    let ack2 = ack_from(&held, 2);
    // The same follower acknowledging three times is still one acknowledgement.
    deliver(&mut net, vec![ack2.clone(), ack2.clone(), ack2]);
    assert_no_read_state(&net, 1, "only 2 of 5 voters acknowledged the round");
    deliver(&mut net, vec![ack_from(&held, 3)]);
    assert_eq!(read_states(&net, 1), [rs(w, b"r")]);
}

#[test]
fn acks_with_unknown_or_garbage_contexts_are_ignored() {
    let mut net = elected(3);
    let w = put(&mut net, 1, b"a");
    let held = read_holding_acks(&mut net, 1, b"user-ctx");
    let genuine = held[0].context.clone();
    let (seq, sent) = decode_ctx(&genuine);
    let mut too_long = genuine.to_vec();
    too_long.push(0);
    let mut wrong_marker = genuine.to_vec();
    wrong_marker[0] = 0x5A;
    let forged: Vec<Bytes> = vec![
        Bytes::from_static(b"user-ctx"),
        Bytes::new(),
        Bytes::from_static(&[0xA5]),
        genuine.slice(..8),
        // The round alone, without the sent tick (the earlier 9-byte encoding).
        genuine.slice(..9),
        genuine.slice(..16),
        too_long.into(),
        wrong_marker.into(),
        round_ctx(seq + 1, sent),
        round_ctx(seq + 1000, sent),
        round_ctx(0, sent),
        round_ctx(u64::MAX, sent),
        // The right round, but "sent" at ticks the leader has not reached: not its heartbeat.
        round_ctx(seq, sent + 1000),
        round_ctx(seq, u64::MAX),
    ];
    for ctx in forged {
        let acks: Vec<Message> = held
            .iter()
            .map(|m| Message {
                context: ctx.clone(),
                ..m.clone()
            })
            .collect();
        deliver(&mut net, acks);
        assert_no_read_state(
            &net,
            1,
            &format!("the acknowledgements carried the context {ctx:?}, not the round's"),
        );
        assert_eq!(pending_reads(&net, 1), 1);
    }
    deliver(&mut net, held);
    assert_eq!(read_states(&net, 1), [rs(w, b"user-ctx")]);
}

#[test]
fn ack_from_a_node_outside_the_configuration_is_refused() {
    let mut net = elected(3);
    let held = read_holding_acks(&mut net, 1, b"r");
    let forged = Message {
        from: 9,
        ..ack_from(&held, 2)
    };
    let r = net.node_mut(1).raw.step(forged);
    assert!(
        matches!(r, Err(Error::StepPeerNotFound { from: 9, .. })),
        "a response from a non-member should be refused, got {r:?}"
    );
    net.stabilize();
    assert_no_read_state(&net, 1, "only a non-member acknowledged the round");
    assert_eq!(pending_reads(&net, 1), 1);
}

// Only voters confirm leadership; a learner's acknowledgement does not count towards the quorum.
#[test]
fn ack_from_a_learner_does_not_count() {
    let mut net = elected(3);
    net.add_node(&default_config(4), bootstrap(3));
    change(&mut net, 1, v2(ConfChangeTransition::Auto, "l4"));
    assert_eq!(net.node(1).conf_state().learners, [4]);
    let w = put(&mut net, 1, b"a");
    let held = read_holding_acks(&mut net, 1, b"r");
    assert_eq!(held.len(), 3, "the learner gets the round's heartbeat too");
    deliver(&mut net, vec![ack_from(&held, 4)]);
    assert_no_read_state(
        &net,
        1,
        "only the leader and a learner acknowledged the round",
    );
    deliver(&mut net, vec![ack_from(&held, 3)]);
    assert_eq!(read_states(&net, 1), [rs(w, b"r")]);
}

// etcd ReadOnly.advance: a quorum for a round confirms leadership for every request made before it.
#[test]
fn ack_of_a_later_round_releases_every_earlier_round() {
    let mut net = elected(3);
    let index_a = committed(&net, 1);
    let _acks_a = read_holding_acks(&mut net, 1, b"A");
    let w = put(&mut net, 1, b"w");
    let acks_b = read_holding_acks(&mut net, 1, b"B");
    deliver(&mut net, vec![ack_from(&acks_b, 2)]);
    assert_eq!(
        read_states(&net, 1),
        [rs(index_a, b"A"), rs(w, b"B")],
        "the later round's quorum should answer both reads, in order"
    );
    assert_eq!(pending_reads(&net, 1), 0);
}

#[test]
fn ack_of_an_earlier_round_does_not_release_a_later_one() {
    let mut net = elected(3);
    let index_a = committed(&net, 1);
    let acks_a = read_holding_acks(&mut net, 1, b"A");
    let w = put(&mut net, 1, b"w");
    let acks_b = read_holding_acks(&mut net, 1, b"B");
    deliver(&mut net, acks_a);
    assert_eq!(
        read_states(&net, 1),
        [rs(index_a, b"A")],
        "round A's quorum must not answer read B, made after it"
    );
    deliver(&mut net, acks_b);
    assert_eq!(read_states(&net, 1), [rs(index_a, b"A"), rs(w, b"B")]);
}

/// A read whose round's `lost` messages are all dropped is answered after the leader's next
/// heartbeat tick, whose heartbeats carry the pending round's context.
fn lost_round_is_retried_by_the_next_heartbeat(lost: MessageType) {
    let mut net = elected(3);
    let w = put(&mut net, 1, b"a");
    let mark = net.delivered.len();
    request_read(&mut net, 1, b"retry");
    let dropped = run(&mut net, vec![], |m| m.msg_type() == lost);
    assert_eq!(
        dropped.len(),
        2,
        "the round's {lost:?}s should have been dropped"
    );
    let round = if lost == MessageType::MsgHeartbeat {
        single_round(&dropped)
    } else {
        single_round(delivered_since(&net, mark))
    };
    assert_no_read_state(&net, 1, "every message of the round was lost");

    let mark = net.delivered.len();
    net.tick(1);
    assert_eq!(
        single_round(delivered_since(&net, mark)),
        round,
        "the regular heartbeat should name the pending round"
    );
    assert_eq!(read_states(&net, 1), [rs(w, b"retry")]);
}

#[test]
fn lost_heartbeat_acks_are_retried_by_the_next_regular_heartbeat() {
    lost_round_is_retried_by_the_next_heartbeat(MessageType::MsgHeartbeatResponse);
}

#[test]
fn lost_read_heartbeats_are_retried_by_the_next_regular_heartbeat() {
    lost_round_is_retried_by_the_next_heartbeat(MessageType::MsgHeartbeat);
}

// Under Safe reads the context is only the read round: with none pending, heartbeats go without
// one (as raft-rs's do), and nothing comes back to decode.
#[test]
fn safe_heartbeats_carry_no_context_when_no_read_is_pending() {
    let mut net = elected(3);
    let traffic = heartbeat_after_a_read(&mut net);
    for msg_type in [MessageType::MsgHeartbeat, MessageType::MsgHeartbeatResponse] {
        let msgs = of_type(&traffic, msg_type);
        assert_eq!(msgs.len(), 2, "two {msg_type:?}s expected: {traffic:?}");
        for m in msgs {
            assert!(
                m.context.is_empty(),
                "no read is pending, yet a {msg_type:?} carried a context: {m:?}"
            );
        }
    }
}
