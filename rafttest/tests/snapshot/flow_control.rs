//! Flow control: the inflight window (messages and payload bytes), probing, the empty append that
//! carries a moved commit index past a full window, paging of committed entries, and the
//! uncommitted-size limit on proposals.

use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::tracker::ProgressState;
use raft_core::{Config, Error, Raft, RawNode};
use raft_proto::entry_size;
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::MemStorage;

use crate::common::{
    append_ack, config, ent, logger, make_leader, persist, propose_msg, raft_with, storage_with,
};
use crate::support::*;

/// Node 1 of {1, 2, 3} with `cfg`, leader of term 1: its empty entry 1 is committed and both
/// followers acknowledged it (replicate state, empty windows). Messages drained.
fn replicating_leader(cfg: &Config) -> Raft<MemStorage> {
    let mut r = raft_with(cfg, storage_with(&VOTERS, &[], 0, 0));
    make_leader(&mut r, &VOTERS);
    assert_eq!(pr(&r, 2).state, ProgressState::Replicate);
    r
}

fn propose(r: &mut Raft<MemStorage>, data: &[u8]) {
    r.step(propose_msg(1, data)).expect("proposal accepted");
}

fn payload(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

/// The window of 2 messages to follower 2 is full: the leader holds back further appends.
#[test]
fn a_full_inflight_window_pauses_replication() {
    let mut r = replicating_leader(&Config {
        max_inflight_msgs: 2,
        ..config(1)
    });
    for (i, data) in [b"a", b"b"].iter().enumerate() {
        propose(&mut r, *data);
        let msgs = r.read_messages();
        assert_eq!(
            sent(&msgs, 2, MessageType::MsgAppend).len(),
            1,
            "append {i}"
        );
    }
    let p = pr(&r, 2);
    assert_eq!(p.ins.count(), 2);
    assert!(
        p.ins.full() && p.is_paused(),
        "two messages fill a window of 2"
    );
    assert_eq!(p.next_idx, 4, "next is optimistic while replicating");

    propose(&mut r, b"c");
    propose(&mut r, b"d");
    let msgs = r.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "nothing past a full window: {msgs:?}"
    );
    assert_eq!(pr(&r, 2).ins.count(), 2);
}

/// An acknowledgement frees the messages it covers (`free_to`), and what waited goes out in one
/// append.
#[test]
fn acknowledging_frees_the_window() {
    let mut r = replicating_leader(&Config {
        max_inflight_msgs: 2,
        ..config(1)
    });
    for data in [b"a", b"b"] {
        propose(&mut r, data);
        r.read_messages();
    }
    propose(&mut r, b"c");
    propose(&mut r, b"d");
    r.read_messages();

    r.step(append_ack(2, 1, 1, 2)).unwrap();
    assert_eq!(pr(&r, 2).ins.count(), 1, "the append of entry 2 is freed");
    let msgs = r.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(apps.len(), 1, "one slot, one append: {msgs:?}");
    assert_eq!(indexes(apps[0]), vec![4, 5], "everything that waited");
    assert_eq!(pr(&r, 2).ins.count(), 2);

    r.step(append_ack(2, 1, 1, 5)).unwrap();
    let p = pr(&r, 2);
    assert_eq!(
        (p.ins.count(), p.ins.bytes()),
        (0, 0),
        "acknowledging the last frees all"
    );
    assert!(!p.is_paused());
    assert_eq!(p.matched, 5);
}

/// A heartbeat response frees one slot of a full window (an append or its acknowledgement may have
/// been lost), so exactly one more append goes out.
#[test]
fn a_heartbeat_response_frees_one_slot_of_a_full_window() {
    let mut r = replicating_leader(&Config {
        max_inflight_msgs: 2,
        ..config(1)
    });
    for data in [b"a", b"b"] {
        propose(&mut r, data);
        r.read_messages();
    }
    propose(&mut r, b"c");
    r.read_messages();
    assert!(pr(&r, 2).ins.full());

    r.step(heartbeat_response(2, 1, 1)).unwrap();
    assert_eq!(pr(&r, 2).ins.count(), 1, "one slot freed");
    let msgs = r.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(apps.len(), 1, "exactly one append: {msgs:?}");
    assert_eq!(indexes(apps[0]), vec![4]);
    let p = pr(&r, 2);
    assert!(p.ins.full(), "the window is full again");
    assert_eq!(p.matched, 1, "a heartbeat response acknowledges no entry");
}

/// `max_inflight_bytes` = 250 with 100-byte entries, one entry per message: three messages go
/// out (the third passes the limit: a message is allowed while the window is below it), then
/// nothing until an acknowledgement frees bytes.
#[test]
fn max_inflight_bytes_bounds_the_payload_in_flight() {
    let mut r = replicating_leader(&Config {
        max_inflight_bytes: 250,
        max_size_per_msg: 1,
        ..config(1)
    });
    for _ in 0..5 {
        propose(&mut r, &payload(100));
    }
    let msgs = r.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(apps.len(), 3, "100 + 100 + 100 bytes, then full: {msgs:?}");
    assert!(apps.iter().all(|m| m.entries.len() == 1));
    let p = pr(&r, 2);
    assert_eq!(p.ins.bytes(), 300);
    assert_eq!(p.ins.count(), 3);
    assert!(p.ins.full() && p.is_paused());

    r.step(append_ack(2, 1, 1, 2)).unwrap();
    assert_eq!(
        pr(&r, 2).ins.bytes(),
        200,
        "the acknowledged message's bytes are freed"
    );
    let msgs = r.read_messages();
    let apps = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(apps.len(), 1, "one more message fits: {msgs:?}");
    assert_eq!(indexes(apps[0]), vec![5]);
    assert_eq!(pr(&r, 2).ins.bytes(), 300);
}

/// However large, one message is always allowed, so a big entry cannot stall replication.
#[test]
fn one_append_is_allowed_whatever_its_size() {
    let mut r = replicating_leader(&Config {
        max_inflight_bytes: 250,
        ..config(1)
    });
    propose(&mut r, &payload(1000));
    let msgs = r.read_messages();
    assert_eq!(sent(&msgs, 2, MessageType::MsgAppend).len(), 1);
    let p = pr(&r, 2);
    assert_eq!((p.ins.count(), p.ins.bytes()), (1, 1000));
    assert!(p.ins.full());
}

/// etcd-io/etcd#14633: the commit index moves while follower 2's window is full. The leader still
/// tells it, in an empty append that names the follower's matched entry as the previous one (so it
/// is never rejected) and takes no window slot; the follower commits up to the leader's commit,
/// which it holds. Follower 3, known to match only entry 1, is told too but commits only to
/// 1 (etcd-io/raft#138: never past what the leader knows it holds).
#[test]
fn an_empty_append_carries_a_moved_commit_past_a_full_window() {
    let mut r = replicating_leader(&Config {
        max_inflight_msgs: 2,
        ..config(1)
    });
    let mut to_2: Vec<Message> = Vec::new();
    let mut to_3: Vec<Message> = Vec::new();
    let flush = |r: &mut Raft<MemStorage>, to_2: &mut Vec<Message>, to_3: &mut Vec<Message>| {
        let msgs = r.read_messages();
        to_2.extend(sent(&msgs, 2, MessageType::MsgAppend).into_iter().cloned());
        to_3.extend(sent(&msgs, 3, MessageType::MsgAppend).into_iter().cloned());
    };
    // The leader does not persist yet, so nothing commits.
    propose(&mut r, b"a");
    flush(&mut r, &mut to_2, &mut to_3);
    propose(&mut r, b"b");
    flush(&mut r, &mut to_2, &mut to_3);
    r.step(append_ack(2, 1, 1, 2)).unwrap();
    propose(&mut r, b"c");
    flush(&mut r, &mut to_2, &mut to_3);
    assert_eq!(to_2.len(), 3, "entries 2, 3, 4 went to 2");
    assert_eq!(to_3.len(), 2, "entries 2, 3 went to 3");
    assert!(pr(&r, 2).ins.full() && pr(&r, 3).ins.full());
    assert_eq!(r.raft_log.committed, 1);

    // The leader's own write completes: 1 and 2 hold entry 2, so it commits.
    persist(&mut r);
    assert_eq!(r.raft_log.committed, 2);
    let msgs = r.read_messages();
    let c2 = sent(&msgs, 2, MessageType::MsgAppend);
    assert_eq!(
        c2.len(),
        1,
        "an append to 2 despite its full window: {msgs:?}"
    );
    let c2 = c2[0].clone();
    assert_eq!(c2.index, pr(&r, 2).matched, "it names the matched entry");
    assert_eq!((c2.index, c2.log_term, c2.commit), (2, 1, 2));
    assert!(c2.entries.is_empty(), "it carries no entries");
    assert_eq!(pr(&r, 2).ins.count(), 2, "it takes no window slot");
    let c3 = sent(&msgs, 3, MessageType::MsgAppend);
    assert_eq!(c3.len(), 1, "{msgs:?}");
    let c3 = c3[0].clone();
    assert_eq!((c3.index, c3.commit), (1, 2));
    assert!(c3.entries.is_empty());

    // Follower 2 received everything before the commit.
    let mut f2 = follower(2);
    for m in to_2.into_iter().chain([c2]) {
        f2.step(m).unwrap();
    }
    assert_eq!(f2.raft_log.last_index(), 4);
    assert_eq!(
        f2.raft_log.committed, 2,
        "it commits the leader's commit, which it holds"
    );
    assert!(
        f2.read_messages().iter().all(|m| !m.reject),
        "nothing is rejected"
    );

    // Follower 3 got only the first append, then the commit (a reordered delivery).
    let mut f3 = follower(3);
    f3.step(to_3[0].clone()).unwrap();
    f3.step(c3).unwrap();
    assert_eq!(f3.raft_log.last_index(), 2);
    assert_eq!(f3.raft_log.committed, 1, "min(commit, the append's index)");
    assert!(
        f3.read_messages().iter().all(|m| !m.reject),
        "nothing is rejected"
    );
}

/// Node `id` of {1, 2, 3} holding the leader's empty entry (1, 1), committed.
fn follower(id: u64) -> Raft<MemStorage> {
    raft_with(&config(id), storage_with(&VOTERS, &[ent(1, 1)], 1, 1))
}

/// The window being full, a commit that did not move sends nothing.
#[test]
fn no_empty_append_when_the_window_is_full_and_the_commit_did_not_move() {
    let mut r = replicating_leader(&Config {
        max_inflight_msgs: 1,
        ..config(1)
    });
    propose(&mut r, b"a");
    r.read_messages();
    persist(&mut r);
    r.read_messages();
    propose(&mut r, b"b");
    persist(&mut r);
    let msgs = r.read_messages();
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "nothing new to tell 2: {msgs:?}"
    );
}

/// A follower in probe state gets one append, then nothing until it answers: heartbeat ticks alone
/// send only heartbeats, and each heartbeat response allows exactly one more append.
#[test]
fn a_probing_follower_gets_at_most_one_append_per_heartbeat_response() {
    let mut r = raft_with(&config(1), storage_with(&VOTERS, &[], 0, 0));
    elect(&mut r);
    let p = pr(&r, 2);
    assert_eq!(p.state, ProgressState::Probe);
    assert!(p.is_paused(), "the probe of the empty entry is in flight");
    for i in 0..3 {
        propose(&mut r, format!("p{i}").as_bytes());
        let msgs = r.read_messages();
        assert!(
            sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
            "proposal {i}: {msgs:?}"
        );
    }
    r.tick();
    let msgs = r.read_messages();
    assert_eq!(sent(&msgs, 2, MessageType::MsgHeartbeat).len(), 1);
    assert!(
        sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
        "{msgs:?}"
    );

    for round in 0..2 {
        r.step(heartbeat_response(2, 1, 1)).unwrap();
        let msgs = r.read_messages();
        let apps = sent(&msgs, 2, MessageType::MsgAppend);
        assert_eq!(apps.len(), 1, "round {round}: one probe: {msgs:?}");
        assert_eq!((apps[0].index, apps[0].entries.len()), (0, 4 + round));
        assert!(pr(&r, 2).is_paused(), "round {round}: paused again");
        propose(&mut r, b"more");
        let msgs = r.read_messages();
        assert!(
            sent(&msgs, 2, MessageType::MsgAppend).is_empty(),
            "round {round}: {msgs:?}"
        );
    }
    assert_eq!(pr(&r, 2).state, ProgressState::Probe);
}

/// A heartbeat carries commit = min(the follower's matched index, the leader's commit), never
/// more than the follower is known to hold (INTEROP.md, etcd-io/raft#138).
#[test]
fn heartbeats_carry_the_commit_capped_at_the_followers_matched_index() {
    let mut r = replicating_leader(&config(1));
    propose(&mut r, b"a");
    propose(&mut r, b"b");
    r.read_messages();
    persist(&mut r);
    r.step(append_ack(3, 1, 1, 3)).unwrap();
    assert_eq!(r.raft_log.committed, 3);
    r.read_messages();
    r.tick();
    let msgs = r.read_messages();
    let hb2 = sent(&msgs, 2, MessageType::MsgHeartbeat);
    let hb3 = sent(&msgs, 3, MessageType::MsgHeartbeat);
    assert_eq!(hb2.len(), 1);
    assert_eq!(hb2[0].commit, 1, "2 is known to hold entry 1 only");
    assert_eq!(hb3[0].commit, 3);
}

/// Committed entries come in pages of at most `max_committed_size_per_ready` bytes (entry
/// encoded size), each page as full as the limit allows, except that an entry bigger than the
/// limit comes alone. Nothing is skipped or handed out twice.
#[test]
fn max_committed_size_per_ready_pages_committed_entries() {
    const LIMIT: u64 = 300;
    let storage = storage_with(&[1], &[], 0, 0);
    let cfg = Config {
        max_committed_size_per_ready: LIMIT,
        ..config(1)
    };
    let mut node = RawNode::new(&cfg, storage.clone(), &logger()).unwrap();
    node.campaign().unwrap();
    let mut pages = drain(&mut node, &storage);
    assert_eq!(pages.concat().len(), 1, "the leader's empty entry");
    let mut sizes = vec![100; 6];
    sizes.push(1000);
    sizes.extend([100; 3]);
    for n in &sizes {
        node.propose(vec![], payload(*n)).unwrap();
    }
    pages = drain(&mut node, &storage);
    let all: Vec<Entry> = pages.concat();
    assert_eq!(
        all.iter().map(|e| e.index).collect::<Vec<_>>(),
        (2..=11).collect::<Vec<_>>(),
        "every entry once, in order"
    );
    assert!(pages.len() >= 6, "paged: {} pages", pages.len());
    for (i, page) in pages.iter().enumerate() {
        let size: u64 = page.iter().map(entry_size).sum();
        assert!(
            size <= LIMIT || page.len() == 1,
            "page {i} holds {} entries of {size} bytes",
            page.len()
        );
        if let Some(next) = pages.get(i + 1).and_then(|p| p.first()) {
            assert!(
                size + entry_size(next) > LIMIT,
                "page {i} ({size} bytes) could have taken entry {}",
                next.index
            );
        }
    }
    let big = pages
        .iter()
        .find(|p| p.iter().any(|e| e.data.len() == 1000))
        .unwrap();
    assert_eq!(big.len(), 1, "the oversized entry comes alone");
}

/// Handles every Ready of a single-voter node, returning the non-empty batches of committed
/// entries in the order they were handed out (Readys and LightReadys alike).
fn drain(node: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Vec<Entry>> {
    let mut pages = Vec::new();
    while node.has_ready() {
        let mut rd = node.ready().unwrap();
        storage.wl().append(rd.entries()).unwrap();
        if let Some(hs) = rd.hard_state() {
            storage.wl().set_hardstate(*hs);
        }
        let committed = rd.take_committed_entries();
        if !committed.is_empty() {
            pages.push(committed);
        }
        let mut light = node.advance(rd).unwrap();
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        let committed = light.take_committed_entries();
        if !committed.is_empty() {
            pages.push(committed);
        }
        node.advance_apply();
    }
    pages
}

/// `max_uncommitted_size` = 300: three 100-byte proposals are taken while nothing commits, the
/// fourth is dropped with `ProposalDropped`; once they commit, proposals are taken again (and one
/// bigger than the limit is taken when nothing is uncommitted).
#[test]
fn max_uncommitted_size_drops_proposals_until_entries_commit() {
    let mut net = Network::with_config(3, |id| Config {
        max_uncommitted_size: 300,
        ..default_config(id)
    });
    net.campaign(1);
    net.isolate(2);
    net.isolate(3);
    for i in 0..3 {
        assert_eq!(net.propose(1, &payload(100)), Ok(()), "proposal {i}");
    }
    assert_eq!(
        net.propose(1, &payload(100)),
        Err(Error::ProposalDropped),
        "the fourth would pass the limit"
    );
    let leader = &net.node(1).raw.raft;
    assert_eq!(
        leader.raft_log.last_index(),
        4,
        "the dropped proposal was not appended"
    );
    assert_eq!(leader.raft_log.committed, 1);

    net.recover();
    net.tick(1);
    assert_eq!(
        net.node(1).raw.raft.raft_log.committed,
        4,
        "the three commit"
    );
    assert_eq!(
        net.propose(1, &payload(100)),
        Ok(()),
        "taken again once committed"
    );
    assert_eq!(net.node(1).raw.raft.raft_log.committed, 5);
    assert_eq!(
        net.propose(1, &payload(1000)),
        Ok(()),
        "nothing uncommitted: any size"
    );
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_data().len(), 5, "node {id}");
    }
}
