//! Divergent suffixes repaired with rejection hints: a follower of either library holding a
//! longer divergent suffix is brought back to the common prefix in one step.

use crate::support::{
    assert_all_applied, assert_everyone_follows, assert_no_refusals, propose_batch, propose_each,
    staggered, O, R,
};
use interop::{describe_log, Lib, MixedCluster};
use raft_core::eraftpb::MessageType;

/// Node 1 leads term 1 and commits 3 entries everywhere, then, cut off with only node 2, appends 40
/// entries that reach node 2 alone. Node 4 leads term 2 among {3, 4, 5} and commits 20 entries at
/// the same indexes; node 3 leads term 3. When the partition heals, nodes 1 and 2 hold a divergent
/// term-1 suffix that is longer than the leader's log. Their rejection hint (largest index whose
/// term is at most the probe's, INTEROP.md) must let leader 3 jump straight back to the common
/// prefix in one step (raft-rs fast backtracking), instead of one index per round trip.
fn divergent_suffix_is_repaired(libs: &[Lib; 5]) {
    let mut c = MixedCluster::new(libs, staggered);
    c.campaign(1);
    let mut expected = propose_each(&mut c, 1, "committed", 3);
    let common_prefix = c.node(1).last_index();
    assert_eq!(c.node(5).commit(), common_prefix);

    for other in [3, 4, 5] {
        c.cut(1, other);
        c.cut(2, other);
    }
    propose_batch(&mut c, 1, "divergent", 40);
    let divergent_last = c.node(2).last_index();
    assert_eq!(
        divergent_last,
        common_prefix + 40,
        "node 2 holds the suffix"
    );
    assert_eq!(
        c.node(2).commit(),
        common_prefix,
        "the suffix is uncommitted"
    );

    c.campaign(4);
    assert_eq!(c.leader(), Some(4), "node 4 should win term 2 with 3 and 5");
    expected.extend(propose_batch(&mut c, 4, "term2", 20));
    c.campaign(3);
    assert_eq!(c.leader(), Some(3), "node 3 should win term 3 with 4 and 5");
    expected.extend(propose_each(&mut c, 3, "term3", 3));
    let leader_term = c.node(3).term();
    assert!(c.node(3).last_index() < divergent_last);

    c.recover();
    let mark = c.delivered.len();
    for _ in 0..5 {
        c.tick_all();
    }
    assert_everyone_follows(&c, 3);
    assert_eq!(c.node(3).term(), leader_term);
    assert_all_applied(&c, &expected);

    for divergent in [1, 2] {
        let traffic: Vec<_> = c.delivered[mark..]
            .iter()
            .filter(|d| {
                (d.msg.from == divergent && d.msg.to == 3)
                    || (d.msg.from == 3 && d.msg.to == divergent)
            })
            .collect();
        let rejections: Vec<_> = traffic
            .iter()
            .filter(|d| d.msg.msg_type == MessageType::MsgAppendResponse as i32 && d.msg.reject)
            .collect();
        let describe = || {
            traffic
                .iter()
                .map(|d| raft_proto::describe_message(&d.msg))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            rejections.len(),
            1,
            "node {divergent} ({:?}) should reject exactly once before leader 3 ({:?}) finds the \
             common prefix:\n{}",
            c.lib(divergent),
            c.lib(3),
            describe()
        );
        let rej = &rejections[0].msg;
        assert_eq!(
            (rej.reject_hint, rej.log_term),
            (rej.index.min(divergent_last), 1),
            "node {divergent} ({:?}): the hint is the largest index <= min(probe, last) whose term \
             is <= the probe's term, with its term:\n{}",
            c.lib(divergent),
            describe()
        );
        // The append right after the rejection starts at the common prefix.
        let pos = traffic
            .iter()
            .position(|d| d.msg.reject)
            .expect("found above");
        let next_append = traffic[pos..]
            .iter()
            .find(|d| d.msg.msg_type == MessageType::MsgAppend as i32)
            .unwrap_or_else(|| panic!("no append after the rejection:\n{}", describe()));
        assert_eq!(
            (next_append.msg.index, next_append.msg.log_term),
            (common_prefix, 1),
            "leader 3 ({:?}) should probe node {divergent} ({:?}) right after the common prefix:\n{}",
            c.lib(3),
            c.lib(divergent),
            describe()
        );
    }
    let log = c.node(2).log();
    assert!(
        log.iter().all(|e| !e.data.starts_with(b"divergent")),
        "node 2 kept divergent entries:\n{}",
        describe_log(&log)
    );
    assert_no_refusals(&c);
}

#[test]
fn raft_rs_follower_with_suffix_from_raft_rs_old_leader_is_repaired_by_our_leader() {
    divergent_suffix_is_repaired(&[R, R, O, R, O]);
}

#[test]
fn raft_rs_follower_with_suffix_from_our_old_leader_is_repaired_by_our_leader() {
    divergent_suffix_is_repaired(&[O, R, O, R, O]);
}

#[test]
fn our_follower_with_suffix_from_our_old_leader_is_repaired_by_raft_rs_leader() {
    divergent_suffix_is_repaired(&[O, O, R, O, R]);
}

#[test]
fn our_follower_with_suffix_from_raft_rs_old_leader_is_repaired_by_raft_rs_leader() {
    divergent_suffix_is_repaired(&[R, O, R, O, R]);
}
