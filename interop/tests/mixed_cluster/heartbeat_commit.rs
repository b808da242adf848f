//! Heartbeat commit to a lagging follower: a heartbeat never tells a follower to commit beyond
//! its log, and a raft-rs panic in the harness names the node and the message.

use crate::support::{
    assert_all_applied, assert_everyone_follows, assert_no_refusals, propose_each, staggered, O, R,
};
use interop::{Lib, MixedCluster};
use prost::Message as _;
use raft_core::eraftpb as ours;
use raft_core::eraftpb::MessageType;

/// Node 3 is cut off while leader 1 commits 20 entries; it rejoins and gets heartbeats before it
/// has caught up. A heartbeat carries `min(matched, commit)` (INTEROP.md): a raft-rs follower told
/// to commit past its last index panics.
fn lagging_follower_survives_heartbeats_and_catches_up(libs: &[Lib]) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "before", 5);
    c.isolate(3);
    expected.extend(propose_each(&mut c, 1, "while-cut", 20));
    let lag = c.node(3).last_index();
    assert!(
        lag < c.node(1).commit(),
        "node 3 should lag: last index {lag}, leader commit {}",
        c.node(1).commit()
    );
    c.recover();
    let mark = c.delivered.len();
    c.tick_all();
    let heartbeats: Vec<_> = c.delivered[mark..]
        .iter()
        .filter(|d| d.msg.msg_type == MessageType::MsgHeartbeat as i32 && d.msg.to == 3)
        .collect();
    assert!(
        heartbeats
            .iter()
            .any(|d| d.receiver_last_index < c.node(1).commit()),
        "the test needs a heartbeat reaching node 3 while it lags:\n{}",
        c.transcript()
    );
    for d in &heartbeats {
        assert!(
            d.msg.commit <= d.receiver_last_index,
            "heartbeat to node 3 carries commit {} beyond its last index {}",
            d.msg.commit,
            d.receiver_last_index
        );
    }
    for _ in 0..3 {
        c.tick_all();
    }
    assert_everyone_follows(&c, 1);
    assert_all_applied(&c, &expected);
    assert_no_refusals(&c);
}

#[test]
fn lagging_raft_rs_follower_survives_our_heartbeats_and_catches_up() {
    lagging_follower_survives_heartbeats_and_catches_up(&[O, R, R]);
}

#[test]
fn lagging_follower_of_ours_survives_raft_rs_heartbeats_and_catches_up() {
    lagging_follower_survives_heartbeats_and_catches_up(&[R, O, O]);
}

/// The harness turns a raft-rs panic into a failure that names the node and the message, which is
/// how a heartbeat commit beyond a follower's log would show up in the tests above.
#[test]
#[should_panic(expected = "node 2 (RaftRs) panicked while step(")]
fn harness_reports_a_raft_rs_panic_on_a_heartbeat_commit_beyond_its_log() {
    let mut c = MixedCluster::new(&[O, R, R], staggered);
    c.campaign(1);
    let bad = ours::Message {
        msg_type: MessageType::MsgHeartbeat as i32,
        from: 1,
        to: 2,
        term: c.node(1).term(),
        commit: c.node(2).last_index() + 5,
        ..Default::default()
    };
    c.send(vec![interop::Envelope {
        from: 1,
        to: 2,
        from_lib: O,
        bytes: bad.encode_to_vec(),
    }]);
}
