//! The leader lease of `ReadOnlyOption::LeaseBased` (thesis §6.4.1): a lease read is answered at
//! once only while a quorum of voters acknowledged a heartbeat sent less than an election timeout
//! ago (by the leader's clock, carried in the heartbeat context) and no leadership transfer is
//! pending; otherwise it falls back to a heartbeat round, whose acknowledgement renews the lease.

use raft_core::eraftpb::{ConfChangeTransition, Message, MessageType};
use rafttest::Network;

use crate::support::*;

/// The election timeout of [`lease_cfg`], which bounds the lease.
fn election_tick() -> u64 {
    lease_cfg(1).election_tick as u64
}

/// Ticks `leader` once (a heartbeat tick: the lease config sends a heartbeat every tick) and runs
/// to quiescence, holding back every message for which `hold` is true. Returns the leader's tick
/// carried by the heartbeats it sent and the held messages.
fn tick_holding(
    net: &mut Network,
    leader: u64,
    hold: impl Fn(&Message) -> bool,
) -> (u64, Vec<Message>) {
    let mark = net.delivered.len();
    net.node_mut(leader).raw.tick();
    let held = run(net, vec![], hold);
    let from_leader: Vec<Message> = delivered_since(net, mark)
        .iter()
        .filter(|m| m.from == leader && m.msg_type() == MessageType::MsgHeartbeat)
        .cloned()
        .collect();
    let now = sent_tick_of(&single_heartbeat_ctx(&from_leader));
    assert!(is_leader(net, leader), "node {leader} lost leadership");
    (now, held)
}

/// Whether `m` is a heartbeat response to node 1.
fn hb_resp_to_1(m: &Message) -> bool {
    is_hb_resp_to(m, 1)
}

/// Requests a lease read `ctx` on `leader` and asserts it is answered at once, at the leader's
/// commit index, without a heartbeat; `why` says why the lease holds.
fn assert_answered_at_once(net: &mut Network, leader: u64, ctx: &[u8], why: &str) {
    let before = read_states(net, leader).len();
    let index = committed(net, leader);
    request_read(net, leader, ctx);
    let out = net.node_mut(leader).handle_ready().expect("ready");
    assert!(
        of_type(&out, MessageType::MsgHeartbeat).is_empty(),
        "lease read {ctx:?} started a heartbeat round although {why}: {out:?}"
    );
    assert_eq!(
        &read_states(net, leader)[before..],
        [rs(index, ctx)],
        "lease read {ctx:?} was not answered at once although {why}"
    );
    net.send(out);
}

/// Requests a lease read `ctx` on `leader` and asserts it is not answered but starts a heartbeat
/// round; `why` says why the lease does not hold. Returns the round's heartbeats, undelivered.
fn assert_starts_a_round(net: &mut Network, leader: u64, ctx: &[u8], why: &str) -> Vec<Message> {
    let before = read_states(net, leader).len();
    request_read(net, leader, ctx);
    let out = net.node_mut(leader).handle_ready().expect("ready");
    assert_eq!(
        read_states(net, leader).len(),
        before,
        "lease read {ctx:?} was answered at once although {why}"
    );
    assert!(
        out.iter().any(is_read_heartbeat),
        "lease read {ctx:?} started no heartbeat round although {why}: {out:?}"
    );
    out
}

// Thesis §6.4.1: a new leader has no lease until a quorum acknowledged one of its heartbeats, so
// its first lease read is confirmed like a Safe one, by a quorum (the leader counts).
#[test]
fn first_lease_read_of_a_new_leader_starts_a_heartbeat_round_confirmed_by_a_quorum() {
    let mut net = elected_with(5, lease_cfg);
    let w = put(&mut net, 1, b"a");
    let out = assert_starts_a_round(&mut net, 1, b"first", "the new leader has no lease yet");
    let held = run(&mut net, out, hb_resp_to_1);
    assert_eq!(held.len(), 4, "every follower acknowledges the round");
    let ack = |from: u64| {
        held.iter()
            .find(|m| m.from == from)
            .cloned()
            .unwrap_or_else(|| panic!("no acknowledgement from node {from} was held"))
    };
    deliver(&mut net, vec![ack(2)]);
    assert_no_read_state(&net, 1, "only 2 of 5 voters acknowledged the round");
    deliver(&mut net, vec![ack(3)]);
    assert_eq!(read_states(&net, 1), [rs(w, b"first")]);
    // The quorum's acknowledgements gave the leader its lease.
    assert_answered_at_once(
        &mut net,
        1,
        b"second",
        "the first round was just acknowledged",
    );
}

// Thesis §6.4.1: the lease lasts an election timeout from when the acknowledged heartbeat was sent,
// less a tick of rounding: followers may have received it up to a tick later by their own clocks.
#[test]
fn lease_read_after_the_lease_expired_starts_a_heartbeat_round() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    let sent = establish_lease(&mut net, 1);
    let mut now = sent;
    while now + 2 < sent + election_tick() {
        now = tick_holding(&mut net, 1, hb_resp_to_1).0;
    }
    assert_answered_at_once(
        &mut net,
        1,
        b"last-in-lease",
        &format!("tick {now}: the heartbeat of tick {sent} was acknowledged by all"),
    );
    let (now, _) = tick_holding(&mut net, 1, hb_resp_to_1);
    assert_eq!(now + 1, sent + election_tick());
    let out = assert_starts_a_round(
        &mut net,
        1,
        b"expired",
        &format!(
            "tick {now}: no heartbeat since tick {sent} was acknowledged, an election timeout of \
             {} ago",
            election_tick()
        ),
    );
    // Once the round is acknowledged the read is answered and the lease renewed.
    let w = committed(&net, 1);
    deliver(&mut net, out);
    assert_eq!(read_states(&net, 1).last(), Some(&rs(w, b"expired")));
    assert_answered_at_once(&mut net, 1, b"renewed", "the round renewed the lease");
}

// The lease rests on when the follower received the heartbeat (it refuses votes for an election
// timeout after), which is no earlier than when the leader sent it: a late acknowledgement extends
// the lease from the heartbeat's sending, not from its own arrival.
#[test]
fn late_acknowledgement_extends_the_lease_from_when_its_heartbeat_was_sent() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    let sent = establish_lease(&mut net, 1);
    let (first, late_acks) = tick_holding(&mut net, 1, hb_resp_to_1);
    assert_eq!(late_acks.len(), 2);
    let mut now = first;
    while now + 1 < sent + election_tick() {
        now = tick_holding(&mut net, 1, hb_resp_to_1).0;
    }
    // The lease of tick `sent` has just expired; the late acknowledgements of tick `first` arrive.
    deliver(&mut net, late_acks);
    assert_answered_at_once(
        &mut net,
        1,
        b"late-ack",
        &format!("tick {now}: a quorum acknowledged the heartbeat of tick {first}"),
    );
    let (now, _) = tick_holding(&mut net, 1, hb_resp_to_1);
    assert_starts_a_round(
        &mut net,
        1,
        b"late-ack-expired",
        &format!(
            "tick {now}: the newest acknowledged heartbeat was sent at tick {first}, an election \
             timeout of {} ago, however late its acknowledgements arrived",
            election_tick()
        ),
    );
}

// Acknowledgements may arrive out of order: an older one arriving after a newer one must not pull
// the lease back to when the older heartbeat was sent.
#[test]
fn older_acknowledgement_arriving_after_a_newer_one_does_not_shorten_the_lease() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    let sent = establish_lease(&mut net, 1);
    let (older, older_acks) = tick_holding(&mut net, 1, hb_resp_to_1);
    assert_eq!(older_acks.len(), 2);
    let (newer, none) = tick_holding(&mut net, 1, |_| false);
    assert!(none.is_empty());
    deliver(&mut net, older_acks);
    let mut now = newer;
    while now + 1 < older + election_tick() {
        now = tick_holding(&mut net, 1, hb_resp_to_1).0;
    }
    assert!(now > sent);
    assert_answered_at_once(
        &mut net,
        1,
        b"reordered",
        &format!(
            "tick {now}: a quorum acknowledged the heartbeat of tick {newer} (the lease of tick \
             {older}, acknowledged later, has expired)"
        ),
    );
}

// Regular heartbeats carry the leader's tick too, so their acknowledgements keep the lease alive
// with no read round at all.
#[test]
fn lease_is_renewed_by_regular_heartbeat_responses() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    let mark = net.delivered.len();
    for _ in 0..3 * election_tick() {
        net.tick(1);
        assert!(is_leader(&net, 1));
    }
    assert!(
        !delivered_since(&net, mark).iter().any(is_read_heartbeat),
        "no read was pending, yet a heartbeat named a read round"
    );
    assert_answered_at_once(
        &mut net,
        1,
        b"renewed",
        "every regular heartbeat was acknowledged, the last one a tick ago",
    );
}

// Thesis §6.4.1: the lease needs a quorum; fresh acknowledgements from a minority do not keep it.
#[test]
fn lease_is_not_kept_by_a_minority_of_acknowledgements() {
    let mut net = elected_with(5, lease_cfg);
    put(&mut net, 1, b"a");
    let sent = establish_lease(&mut net, 1);
    let only_2 = |m: &Message| hb_resp_to_1(m) && m.from != 2;
    let mut now = sent;
    let mut held = Vec::new();
    while now + 1 < sent + election_tick() {
        (now, held) = tick_holding(&mut net, 1, only_2);
    }
    let out = assert_starts_a_round(
        &mut net,
        1,
        b"minority",
        &format!(
            "tick {now}: only node 2 of 5 acknowledged a heartbeat since tick {sent}, an \
             election timeout ago"
        ),
    );
    let round_acks = run(&mut net, out, only_2);
    assert_no_read_state(&net, 1, "only nodes 1 and 2 acknowledged the round");
    // Node 3's acknowledgement of the last regular heartbeat and of the round make a quorum.
    let from_3 = |msgs: &[Message]| -> Vec<Message> {
        msgs.iter().filter(|m| m.from == 3).cloned().collect()
    };
    deliver(&mut net, from_3(&held));
    deliver(&mut net, from_3(&round_acks));
    assert_eq!(
        read_states(&net, 1).len(),
        1,
        "nodes 1, 2 and 3 acknowledged the round"
    );
    assert_answered_at_once(&mut net, 1, b"quorum", "nodes 1, 2 and 3 acknowledged");
}

// Thesis §3.10 / etcd-io/etcd#12704: the transferee campaigns past the followers' lease, so no
// lease can be trusted while a transfer is pending; the read is confirmed by a round instead.
#[test]
fn lease_read_during_a_pending_transfer_starts_a_heartbeat_round() {
    let mut net = elected_with(3, lease_cfg);
    let w = put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    assert_answered_at_once(&mut net, 1, b"before", "the lease was just established");

    net.node_mut(1).raw.transfer_leader(2);
    let timeout_now = run(&mut net, vec![], |m| {
        m.msg_type() == MessageType::MsgTimeoutNow
    });
    assert_eq!(
        timeout_now.len(),
        1,
        "node 1 should have sent MsgTimeoutNow"
    );
    assert_eq!(net.node(1).raw.raft.lead_transferee, Some(2));

    let out = assert_starts_a_round(&mut net, 1, b"during", "a transfer to node 2 is pending");
    deliver(&mut net, out);
    assert_eq!(
        read_states(&net, 1),
        [rs(w, b"before"), rs(w, b"during")],
        "the round confirms the read"
    );
    // The round's acknowledgements are fresh, yet the transfer still forbids the lease.
    let out = assert_starts_a_round(
        &mut net,
        1,
        b"still",
        "the transfer to node 2 is still pending",
    );
    deliver(&mut net, out);
    assert_eq!(
        read_states(&net, 1).len(),
        3,
        "the second round confirms its read"
    );

    // Abandoning the transfer does not restore the lease: the MsgTimeoutNow already sent may
    // still make node 2 campaign past the followers' leases, so for the rest of the term reads
    // are confirmed by rounds.
    net.node_mut(1).raw.raft.abort_leader_transfer();
    let out = assert_starts_a_round(
        &mut net,
        1,
        b"after",
        "a MsgTimeoutNow went out in this term",
    );
    deliver(&mut net, out);
    assert_eq!(read_states(&net, 1).len(), 4, "the round confirms the read");
}

// A heartbeat context whose sent tick lies in the leader's future was not sent by this leader
// (forged, or from an earlier incarnation): it must not grant a lease, which it would for ever.
#[test]
fn acknowledgement_with_a_sent_tick_in_the_leaders_future_grants_no_lease() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    let (now, held) = tick_holding(&mut net, 1, hb_resp_to_1);
    assert_eq!(held.len(), 2);
    for sent in [now + 1, now + 1000, u64::MAX] {
        let forged = held
            .iter()
            .map(|m| Message {
                context: round_ctx(0, sent),
                ..m.clone()
            })
            .collect();
        deliver(&mut net, forged);
    }
    assert_starts_a_round(
        &mut net,
        1,
        b"forged",
        &format!("tick {now}: the only acknowledgements named ticks the leader has not reached"),
    );
}

// Progress is reset with every term: acknowledgements of an earlier term's heartbeats say nothing
// about votes since (here the followers voted for node 2, and then for node 1 again).
#[test]
fn lease_from_an_earlier_term_does_not_carry_over() {
    let mut net = elected_with(3, lease_cfg);
    put(&mut net, 1, b"a");
    establish_lease(&mut net, 1);
    assert_answered_at_once(&mut net, 1, b"term-1", "the lease was just established");
    net.node_mut(1).raw.transfer_leader(2);
    net.stabilize();
    assert!(is_leader(&net, 2), "node 2 should have taken over");
    net.node_mut(2).raw.transfer_leader(1);
    net.stabilize();
    assert!(is_leader(&net, 1), "node 1 should have taken over again");
    assert_eq!(net.node(1).term(), 3);
    assert_starts_a_round(
        &mut net,
        1,
        b"term-3",
        "no heartbeat of term 3 was acknowledged yet",
    );
}

// Thesis §4.3: in a joint configuration the lease, like every decision, needs a quorum of both
// halves.
#[test]
fn lease_in_a_joint_configuration_needs_a_quorum_of_both_halves() {
    let mut net = elected_with(3, lease_cfg);
    net.add_node(&lease_cfg(4), bootstrap(3));
    // Replace 3 by 4 and stay joint: incoming {1, 2, 4}, outgoing {1, 2, 3}.
    change(&mut net, 1, v2(ConfChangeTransition::Explicit, "r3 v4"));
    let cs = net.node(1).conf_state();
    assert_eq!(
        (cs.voters, cs.voters_outgoing),
        (vec![1, 2, 4], vec![1, 2, 3])
    );
    put(&mut net, 1, b"a");

    // Only node 3 acknowledges: a majority of the outgoing half, not of the incoming one.
    let only_3 = |m: &Message| hb_resp_to_1(m) && m.from != 3;
    let (now, _) = tick_holding(&mut net, 1, only_3);
    let out = assert_starts_a_round(
        &mut net,
        1,
        b"joint",
        &format!("tick {now}: only node 3 acknowledged, not a majority of {{1, 2, 4}}"),
    );
    let held = run(&mut net, out, only_3);
    assert_no_read_state(
        &net,
        1,
        "the incoming half {1, 2, 4} has only the leader's ack",
    );
    // Node 4 completes a majority of the incoming half.
    deliver(&mut net, held.into_iter().filter(|m| m.from == 4).collect());
    assert_eq!(
        read_states(&net, 1).len(),
        1,
        "both halves acknowledged the round"
    );
    assert_answered_at_once(&mut net, 1, b"joint-lease", "nodes 3 and 4 acknowledged");
}

// Under lease-based reads every heartbeat carries the leader's tick, so it names round 0 when no
// read is pending.
#[test]
fn lease_heartbeats_carry_round_0_when_no_read_is_pending() {
    let mut net = elected_with(3, lease_cfg);
    let traffic = heartbeat_after_a_read(&mut net);
    let hbs = of_type(&traffic, MessageType::MsgHeartbeat);
    assert_eq!(
        hbs.len(),
        2,
        "the leader should have sent heartbeats: {traffic:?}"
    );
    for m in hbs {
        assert_eq!(
            round_of(&m.context),
            0,
            "no read is pending, yet a heartbeat named a read round: {m:?}"
        );
    }
}

// Under lease-based reads the leader's clock travels in every heartbeat context and comes back in
// the responses: it is what the lease is measured by (thesis §6.4.1), so it must advance with
// every tick of the leader.
#[test]
fn every_lease_heartbeat_carries_the_leaders_tick_and_responses_echo_it() {
    let mut net = elected_with(3, lease_cfg);
    let mut sent = Vec::new();
    for _ in 0..3 {
        let mark = net.delivered.len();
        net.tick(1);
        let traffic = delivered_since(&net, mark).to_vec();
        let ctx = single_heartbeat_ctx(&traffic);
        assert_eq!(round_of(&ctx), 0, "no read is pending");
        let resps = of_type(&traffic, MessageType::MsgHeartbeatResponse);
        assert_eq!(resps.len(), 2, "both followers should answer: {traffic:?}");
        for r in resps {
            assert_eq!(r.context, ctx, "node {} did not echo the context", r.from);
        }
        sent.push(sent_tick_of(&ctx));
    }
    assert!(sent[0] > 0, "tick 0 means \"never\" and must not be sent");
    assert!(
        sent.windows(2).all(|w| w[1] == w[0] + 1),
        "the leader's tick should advance by one per tick: {sent:?}"
    );
}
