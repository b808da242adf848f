//! A new leader answers no read before it has committed an entry of its own term (thesis §6.4
//! step 1): until then its commit index may be behind what an earlier leader committed.

use raft_core::eraftpb::MessageType;
use raft_core::Config;
use rafttest::Network;

use crate::support::*;

/// Node 2 becomes leader with its empty entry uncommitted; a read on it and one forwarded by
/// node 3 must wait; once the held append responses arrive both are answered at an index at or
/// beyond the empty entry.
fn reads_wait_for_the_first_commit_in_the_term(config: impl Fn(u64) -> Config) {
    let mut net = elected_with(3, config);
    let w = put(&mut net, 1, b"a");
    let held = leader_with_uncommitted_entry(&mut net);
    let empty = last_index(&net, 2);
    assert!(empty > w);

    let mark = net.delivered.len();
    request_read(&mut net, 2, b"on-leader");
    request_read(&mut net, 3, b"on-follower");
    let more = run(&mut net, vec![], |m| is_append_resp_to(m, 2));
    assert_no_read_state(&net, 2, "the leader has not committed an entry of its term");
    assert_no_read_state(&net, 3, "its leader has not committed an entry of its term");
    let traffic = delivered_since(&net, mark);
    assert!(
        !traffic.iter().any(is_read_heartbeat),
        "no read round may start before the first commit in the term: {traffic:?}"
    );
    assert!(
        of_type(traffic, MessageType::MsgReadIndexResp).is_empty(),
        "the forwarded read was answered before the first commit in the term: {traffic:?}"
    );
    assert_eq!(pending_reads(&net, 2), 2, "both reads should be waiting");

    let mut all = held;
    all.extend(more);
    deliver(&mut net, all);
    assert!(committed(&net, 2) >= empty, "the held responses commit it");
    let on_leader = read_states(&net, 2);
    assert_eq!(on_leader.len(), 1, "the leader's read: {on_leader:?}");
    assert_eq!(on_leader[0].request_ctx.as_ref(), b"on-leader");
    assert!(
        on_leader[0].index >= empty,
        "read index {} is below the leader's first entry of its term {empty}",
        on_leader[0].index
    );
    let on_follower = read_states(&net, 3);
    assert_eq!(on_follower.len(), 1, "the follower's read: {on_follower:?}");
    assert_eq!(on_follower[0].request_ctx.as_ref(), b"on-follower");
    assert!(
        on_follower[0].index >= empty,
        "read index {} is below the leader's first entry of its term {empty}",
        on_follower[0].index
    );
}

#[test]
fn safe_read_waits_for_the_new_leaders_first_commit_in_its_term() {
    reads_wait_for_the_first_commit_in_the_term(safe_cfg);
}

#[test]
fn lease_based_read_waits_for_the_new_leaders_first_commit_in_its_term() {
    reads_wait_for_the_first_commit_in_the_term(lease_cfg);
}

// Thesis §6.4 step 1 holds for a single voter too: after a restart its commit index is the stored
// one, which can lag entries it committed (and its application applied) before the crash, since
// the commit index is stored lazily. Only the first commit of the new term covers them again.
// (etcd answers a single voter at once; the simulator found the stale read that allows.)
#[test]
fn singleton_leader_waits_for_its_first_commit_in_its_term() {
    let mut net = Network::new(1);
    put_through_first_term(&mut net);
    // Restarted, it campaigns for a second term; read before the new empty entry is persisted.
    let applied = net.node(1).applied_index;
    net.restart(
        1,
        &Config {
            applied,
            ..safe_cfg(1)
        },
    );
    net.node_mut(1).raw.campaign().expect("campaign");
    assert_eq!(net.node(1).term(), 2);
    assert!(is_leader(&net, 1));
    assert!(
        committed(&net, 1) < last_index(&net, 1),
        "the new term's empty entry should not be committed before it is persisted"
    );
    request_read(&mut net, 1, b"early");
    assert_eq!(
        net.node(1).raw.raft.read_states(),
        [],
        "a single voter must not answer before its first commit in the term"
    );
    net.stabilize();
    let first_commit = last_index(&net, 1);
    assert_eq!(committed(&net, 1), first_commit);
    assert_eq!(read_states(&net, 1), [rs(first_commit, b"early")]);
}

/// Elects the single voter of `net` and commits one write.
fn put_through_first_term(net: &mut Network) {
    net.campaign(1);
    put(net, 1, b"a");
}
