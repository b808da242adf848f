//! `entries()` failing: while handing out committed entries, and while a leader builds appends.

use crate::cluster::{assert_store_error, entry, history, Cluster, Node};
use crate::faulty::{Method, KINDS};
use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::tracker::ProgressState;

/// `ready()` is all or nothing: it fails without handing anything out or moving any cursor, and
/// the retry hands out the same committed entries.
#[test]
fn entries_failing_while_handing_out_committed_entries_fails_ready_and_changes_nothing() {
    for kind in KINDS {
        let what = format!("entries() failing with {kind:?} in ready()");
        let mut c = Cluster::restarted(&history(), 0);
        let n = c.node(2);
        n.store.fail(Method::Entries, kind);
        let before = n.observe();
        let result = n.raw.ready().map(|_| ());
        assert_store_error(&result, kind, &what);
        assert!(n.store.hits.get() > 0, "{what}: entries() was never called");
        assert_eq!(
            n.observe(),
            before,
            "{what}: the failed ready() changed the node"
        );
        n.store.heal();
        let rd = n.raw.ready().expect("storage recovered");
        let handed: Vec<u64> = rd.committed_entries().iter().map(|e| e.index).collect();
        assert_eq!(handed, [1, 2, 3, 4], "{what}: the retry hands out 1..=4");
        n.applied = 4;
        n.raw.advance(rd).expect("advance");
        c.elect(2);
        c.commits_again(&what);
    }
}

/// Node `n` (id 2) gets `entries` from leader 1 in term 1, all committed; returns the Ready that
/// hands them out (with nothing to apply yet), its entries and hard state already persisted.
fn append_committed_and_persist(n: &mut Node, entries: Vec<Entry>) -> raft_core::Ready {
    let commit = entries.last().map_or(0, |e| e.index);
    let m = Message {
        msg_type: MessageType::MsgAppend as i32,
        from: 1,
        to: 2,
        term: 1,
        entries,
        commit,
        ..Default::default()
    };
    n.raw.step(m).expect("append");
    let rd = n.raw.ready().expect("ready");
    assert!(rd.committed_entries().is_empty(), "nothing is durable yet");
    n.mem().wl().append(rd.entries()).expect("store");
    n.mem()
        .wl()
        .set_hardstate(*rd.hard_state().expect("hard state"));
    rd
}

/// Newly committed entries that the log could not keep in memory (here: past the apply cache's
/// byte limit) are read from storage in `advance`; if that fails the persistence is still
/// recorded, and the entries come in the next Ready, once and in order.
#[test]
fn entries_failing_in_advance_surfaces_and_the_next_ready_hands_the_entries_out() {
    for kind in KINDS {
        let what = format!("entries() failing with {kind:?} in advance()");
        let mut c = Cluster::new();
        let n = c.node(2);
        let mut big = entry(3, 1);
        big.data = vec![7; raft_core::log::DEFAULT_APPLY_CACHE_BYTES as usize + 1].into();
        let rd = append_committed_and_persist(n, vec![entry(1, 1), entry(2, 1), big]);
        n.store.fail(Method::Entries, kind);
        let result = n.raw.advance(rd).map(|_| ());
        assert_store_error(&result, kind, &what);
        assert!(n.store.hits.get() > 0, "{what}: entries() was never called");
        let r = &n.raw.raft;
        assert_eq!(
            (
                r.raft_log.persisted,
                r.raft_log.applying,
                r.raft_log.applied
            ),
            (3, 0, 0),
            "{what}: persistence is recorded, nothing is marked applied"
        );
        n.store.heal();
        let rd = n.raw.ready().expect("storage recovered");
        let handed: Vec<u64> = rd.committed_entries().iter().map(|e| e.index).collect();
        assert_eq!(handed, [1, 2, 3], "{what}: the next Ready hands out 1..=3");
        n.applied = 3;
        n.raw.advance(rd).expect("advance");
        // Node 2 holds entries from a leader the others never heard of: it leads next.
        c.elect(2);
        c.commits_again(&what);
    }
}

/// Entries that became durable are kept in memory until applied, so handing them out once they
/// commit does not read storage at all: a storage whose `entries()` fails does not hold them up.
#[test]
fn entries_durable_here_are_handed_out_without_reading_storage() {
    for kind in KINDS {
        let what = format!("entries() failing with {kind:?} while durable entries commit");
        let mut c = Cluster::new();
        let n = c.node(2);
        let rd = append_committed_and_persist(n, vec![entry(1, 1), entry(2, 1), entry(3, 1)]);
        n.store.fail(Method::Entries, kind);
        let mut light = n.raw.advance(rd).expect("no storage read needed");
        let handed: Vec<u64> = light
            .take_committed_entries()
            .iter()
            .map(|e| e.index)
            .collect();
        assert_eq!(handed, [1, 2, 3], "{what}: advance hands out 1..=3");
        assert_eq!(n.store.hits.get(), 0, "{what}: entries() was called");
        n.store.heal();
        n.applied = 3;
        n.raw.advance_apply();
        c.elect(2);
        c.commits_again(&what);
    }
}

/// A leader that cannot read the entries a lagging follower needs sends it nothing (rather than
/// an empty or wrong append) and leaves its progress alone; it sends them once storage recovers.
#[test]
fn entries_failing_while_a_leader_builds_appends_sends_nothing_and_recovers() {
    for kind in KINDS {
        let what = format!("entries() failing with {kind:?} while appending to a follower");
        let mut c = Cluster::new();
        c.elect(1);
        c.isolated.insert(3);
        for i in 0..5 {
            c.node(1).raw.propose(vec![], vec![i]).expect("propose");
            c.stabilize();
        }
        c.isolated.clear();
        // Everything node 3 misses is in the leader's storage, not in its unstable log.
        assert!(c.nodes[&1].raw.raft.raft_log.unstable_entries().is_empty());
        let leader_before = c.nodes[&1].observe();
        let follower_log = c.nodes[&3].observe().log.clone();
        c.node(1).store.fail(Method::Entries, kind);
        let delivered = c.heartbeat_rounds(3);
        let leader = &c.nodes[&1];
        assert!(
            leader.store.hits.get() > 0,
            "{what}: entries() was never called"
        );
        // Empty probes (their previous entry's term comes from term(), which works) may go out;
        // entries may not.
        let appends_to_3: Vec<_> = delivered
            .iter()
            .filter(|m| m.to == 3 && m.msg_type == MessageType::MsgAppend as i32)
            .collect();
        assert!(
            appends_to_3.iter().all(|m| m.entries.is_empty()),
            "{what}: entries reached node 3 although they could not be read: {appends_to_3:?}"
        );
        let after = leader.observe();
        assert_eq!(
            (&after.log, after.committed, after.term, after.role),
            (
                &leader_before.log,
                leader_before.committed,
                leader_before.term,
                leader_before.role
            ),
            "{what}: the leader's log changed"
        );
        let pr3 = c.nodes[&1].raw.raft.prs.get(3).expect("progress").clone();
        assert!(
            pr3.matched <= 1 && pr3.state != ProgressState::Snapshot,
            "{what}: node 3's progress moved although nothing was sent: {pr3:?}"
        );
        assert_eq!(
            c.nodes[&3].observe().log,
            follower_log,
            "{what}: node 3's log changed"
        );
        c.node(1).store.heal();
        c.heartbeat_rounds(2);
        c.commits_again(&what);
    }
}
