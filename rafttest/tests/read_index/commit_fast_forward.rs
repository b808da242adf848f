//! raft-rs parity (issue 18): a follower's answer to a forwarded read carries the leader's commit
//! index (`index`) in the leader's term (`term`); a follower whose log holds that entry commits up
//! to it at once, as raft-rs does, instead of waiting for the next append or heartbeat.

use bytes::Bytes;
use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::RawNode;
use storage_mem::MemStorage;

use crate::support::*;

/// Follower 2 of {1, 2, 3}: leader 1 of term 2 appended entries 1..=3 of term 2 and told it
/// commit 1.
fn follower_with_uncommitted_tail() -> RawNode<MemStorage> {
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let storage = MemStorage::new_with_conf_state(bootstrap(3));
    let mut node = RawNode::new(&safe_cfg(2), storage, &logger).unwrap();
    let entries = (1..=3)
        .map(|index| Entry {
            index,
            term: 2,
            data: Bytes::from_static(b"x"),
            ..Default::default()
        })
        .collect();
    node.step(Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 1,
        to: 2,
        term: 2,
        entries,
        commit: 1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(node.raft.raft_log.committed, 1);
    assert_eq!(node.raft.raft_log.last_index(), 3);
    node
}

/// The leader's answer to 2's forwarded read: its commit index `index` in `term`.
fn read_response(term: u64, index: u64) -> Message {
    Message {
        msg_type: MessageType::MsgReadIndexResp as i32,
        from: 1,
        to: 2,
        term,
        index,
        entries: vec![ctx_entry(b"read")],
        ..Default::default()
    }
}

#[test]
fn a_read_answer_moves_the_followers_commit_index_to_the_leaders() {
    let mut node = follower_with_uncommitted_tail();
    node.step(read_response(2, 3)).unwrap();
    assert_eq!(
        node.raft.raft_log.committed, 3,
        "the answer's index commits"
    );
    let rd = node.ready().unwrap();
    assert_eq!(rd.read_states().len(), 1, "the read is answered as before");
    assert_eq!(rd.read_states()[0].index, 3);
}

#[test]
fn a_read_answer_commits_nothing_the_follower_cannot_match() {
    // Past the follower's log: nothing to commit yet.
    let mut node = follower_with_uncommitted_tail();
    node.step(read_response(2, 5)).unwrap();
    assert_eq!(node.raft.raft_log.committed, 1, "index 5 is not in the log");

    // An entry of another term at that index: the leader's entry is not the follower's.
    let mut node = follower_with_uncommitted_tail();
    node.step(read_response(3, 3)).unwrap();
    assert_eq!(node.raft.term, 3, "the higher term is taken");
    assert_eq!(
        node.raft.raft_log.committed, 1,
        "entry 3 is of term 2, the answer names term 3"
    );

    // Behind the commit index: the commit index never goes back.
    let mut node = follower_with_uncommitted_tail();
    node.step(read_response(2, 3)).unwrap();
    node.step(read_response(2, 2)).unwrap();
    assert_eq!(node.raft.raft_log.committed, 3);
}
