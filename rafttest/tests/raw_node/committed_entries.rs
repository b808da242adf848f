//! Committed entries are handed out only once persisted locally, exactly once and in order (also
//! under random schedules with restarts), and paged by `max_committed_size_per_ready`.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeSet;

use crate::harness::*;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::{Config, Error};
use raft_proto::entry_size;

// ---------------------------------------------------------------------------------------------
// Committed entries: only once persisted locally, exactly once, in order.
// ---------------------------------------------------------------------------------------------

#[test]
fn follower_hands_out_committed_entries_only_after_persisting_them() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    let entries = vec![ent(1, 1, b"a"), ent(2, 1, b"b"), ent(3, 1, b"c")];
    p.step(append(1, 2, 1, (0, 0), entries.clone(), 3));
    let rd = p.ready();
    assert_eq!(rd.entries(), &entries[..]);
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 3)));
    assert!(
        rd.committed_entries().is_empty(),
        "entries committed by the leader are not applied before they are durable here: {:?}",
        indexes(rd.committed_entries())
    );
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(light.committed_entries(), &entries[..]);
    assert_eq!(
        light.commit_index(),
        None,
        "the commit index was already reported in the Ready's hard state"
    );
    p.node.advance_apply();
    assert!(!p.node.has_ready());
    assert_eq!(p.node.raft.raft_log.applied, 3);
}

/// Entries taken shared (`take_shared_entries`) are the ones the node hands out for applying once
/// durable, whether the writer still holds them when it reports (the node copies) or let them go
/// first (the node takes the very same buffer back).
#[test]
fn shared_entries_come_back_as_committed_entries_whether_held_or_released() {
    for release_first in [false, true] {
        let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
        let entries = vec![ent(1, 1, b"a"), ent(2, 1, b"b"), ent(3, 1, b"c")];
        p.step(append(1, 2, 1, (0, 0), entries.clone(), 3));
        let mut rd = p.ready();
        let shared = rd.take_shared_entries().expect("entries to persist");
        assert!(rd.entries().is_empty(), "taken out of the Ready");
        assert_eq!(&shared[..], &entries[..]);
        p.storage.wl().append(&shared).unwrap();
        p.storage.wl().set_hardstate(*rd.hard_state().unwrap());
        let number = rd.number();
        p.node.advance_append_async(rd);
        let ptr = shared.as_ptr();
        let held = if release_first {
            drop(shared);
            None
        } else {
            Some(shared)
        };
        p.node.on_persist_ready(number);
        let mut rd = p.ready();
        let committed = rd.take_committed_entries();
        assert_eq!(committed, entries, "release_first {release_first}");
        if release_first {
            assert_eq!(
                committed.as_ptr(),
                ptr,
                "the written buffer itself came back"
            );
        } else {
            let held = held.expect("held");
            assert_eq!(&held[..], &entries[..], "the writer's handle is untouched");
            assert_ne!(committed.as_ptr(), held.as_ptr());
        }
        p.node.advance(rd).unwrap();
        assert_eq!(p.node.raft.raft_log.applied, 3);
    }
}

#[test]
fn follower_with_async_persistence_hands_out_committed_entries_after_on_persist_ready() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(
        1,
        2,
        1,
        (0, 0),
        vec![ent(1, 1, b"a"), ent(2, 1, b"b")],
        2,
    ));
    let rd1 = p.ready();
    assert!(rd1.committed_entries().is_empty());
    assert!(
        !p.node.has_ready(),
        "nothing is appliable until the entries are reported persisted"
    );
    persist(&p.storage, &rd1);
    p.node.on_persist_ready(rd1.number());
    assert!(p.node.has_ready());
    let rd2 = p.ready();
    assert_eq!(rd2.number(), 2);
    assert_eq!(indexes(rd2.committed_entries()), vec![1, 2]);
    assert!(rd2.entries().is_empty());
    assert_eq!(
        rd2.hard_state(),
        None,
        "the commit went out with the first Ready"
    );
    let light = p.node.advance(rd2).unwrap();
    assert!(light.committed_entries().is_empty(), "no entry twice");
    assert!(!p.node.has_ready());
}

#[test]
fn leader_hands_out_entries_committed_by_followers_only_after_persisting_them() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd1 = c.peer(1).ready();
    let appends = rd1.messages().to_vec();
    // The appends go out; the leader has not persisted its own entry yet.
    for m in appends {
        c.deliver(m);
    }
    c.handle(2);
    c.handle(3);
    let acks: Vec<Message> = c.net.drain(..).collect();
    assert_eq!(acks.len(), 2);
    for m in acks {
        c.deliver(m);
    }
    assert_eq!(
        c.peer(1).node.raft.raft_log.committed,
        2,
        "two followers make a quorum of three"
    );
    let rd2 = c.peer(1).ready();
    assert_eq!(rd2.hard_state().map(|h| h.commit), Some(2));
    assert!(
        rd2.committed_entries().is_empty(),
        "the leader must not apply an entry it has not persisted itself: {:?}",
        indexes(rd2.committed_entries())
    );
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd1);
    persist(&storage, &rd2);
    c.peer(1).node.on_persist_ready(rd1.number());
    let rd3 = c.peer(1).ready();
    assert_eq!(rd3.committed_entries(), &[ent(2, 1, b"x")]);
    let light = c.peer(1).node.advance(rd3).unwrap();
    assert!(light.committed_entries().is_empty());
}

#[test]
fn light_ready_carries_commit_entries_and_messages_when_the_local_write_completes_a_quorum() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    let to_2 = rd.messages().iter().find(|m| m.to == 2).unwrap().clone();
    c.deliver(to_2);
    c.handle(2);
    let ack = c.net.pop_front().expect("node 2 acknowledges");
    c.net.clear();
    c.deliver(ack);
    assert_eq!(
        c.peer(1).node.raft.raft_log.committed,
        1,
        "node 2 alone is no quorum while the leader has not persisted"
    );
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd);
    let light = c.peer(1).node.advance(rd).unwrap();
    assert_eq!(light.commit_index(), Some(2));
    assert_eq!(light.committed_entries(), &[ent(2, 1, b"x")]);
    // Both followers hear of the new commit index at once.
    assert_eq!(
        types(light.messages()),
        vec![(MessageType::MsgAppend, 2), (MessageType::MsgAppend, 3)]
    );
    assert!(light.messages().iter().all(|m| m.commit == 2));
}

#[test]
fn three_node_cluster_hands_out_each_index_once_in_order() {
    let mut c = elected_cluster();
    let mut proposed = BTreeSet::new();
    for i in 0..120u32 {
        let at = u64::from(i % 3) + 1;
        let data = i.to_be_bytes().to_vec();
        proposed.insert(data.clone());
        c.peer(at).node.propose(vec![], data).unwrap();
        if i % 7 == 6 {
            c.stabilize();
        }
        if i % 11 == 0 {
            // Handle only the leader's Ready, leaving the rest in flight for a while.
            c.handle(1);
        }
    }
    c.stabilize();
    let leader_log = c.peer(1).handed_out.clone();
    assert_eq!(leader_log.len(), 121, "the empty entry and every proposal");
    let applied: BTreeSet<Vec<u8>> = payloads(&leader_log).into_iter().collect();
    assert_eq!(applied, proposed);
    for id in 2..=3 {
        assert_eq!(
            c.peer(id).handed_out,
            leader_log,
            "node {id} applied a different sequence"
        );
    }
}

/// The schedules' generator: `rand`'s Xoshiro256++, replayable from its seed.
struct Rng(Xoshiro256PlusPlus);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

fn churn_config(id: u64) -> Config {
    Config {
        election_tick: 4,
        ..config(id)
    }
}

/// Runs a random schedule (reordering, drops, ticks that cause elections, optionally restarts),
/// then heals the network and checks that every node handed out the same entries, each index once.
fn run_random_schedule(seed: u64, steps: usize, restarts: bool) {
    let mut rng = Rng::new(seed);
    let mut c = Cluster::new(3, churn_config);
    c.campaign(1);
    let mut next = 0u32;
    for _ in 0..steps {
        let id = rng.below(3) + 1;
        match rng.below(100) {
            0..=29 if !c.net.is_empty() => {
                let i = rng.below(c.net.len() as u64) as usize;
                let m = c.net.remove(i).unwrap();
                c.deliver(m);
            }
            30..=44 => {
                c.handle(id);
            }
            45..=59 => {
                next += 1;
                match c.peer(id).node.propose(vec![], next.to_be_bytes().to_vec()) {
                    Ok(()) | Err(Error::ProposalDropped) => {}
                    Err(e) => panic!("seed {seed}: proposal at {id} failed: {e}"),
                }
            }
            60..=62 if !c.net.is_empty() => {
                let i = rng.below(c.net.len() as u64) as usize;
                c.net.remove(i);
            }
            63..=69 => c.peer(id).node.tick(),
            70..=71 if restarts => {
                // Everything handled so far was persisted; what is still inside the node is lost.
                c.restart(id);
            }
            _ => {
                if let Some(m) = c.net.pop_front() {
                    c.deliver(m);
                }
            }
        }
    }
    // Heal: deliver everything, elect a leader if needed, heartbeat until everyone caught up.
    let mut candidate = 0u64;
    let mut proposed_final = false;
    for _ in 0..200 {
        c.stabilize();
        let Some(leader) = c.leader() else {
            candidate = candidate % 3 + 1;
            let _ = c.peer(candidate).node.campaign();
            continue;
        };
        if !proposed_final {
            // Commits everything the leader holds, whatever the term of its last entry.
            c.peer(leader)
                .node
                .propose(vec![], b"final".to_vec())
                .unwrap();
            proposed_final = true;
            continue;
        }
        let target = c.peer(leader).node.raft.raft_log.last_index();
        let done = c.peers.values().all(|p| {
            p.handed_out.len() as u64 == target && p.node.raft.raft_log.committed == target
        });
        if done {
            break;
        }
        c.peer(leader).node.tick();
    }
    let leader = c
        .leader()
        .unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
    let reference = c.peer(leader).handed_out.clone();
    assert_eq!(
        reference.len() as u64,
        c.peer(leader).node.raft.raft_log.last_index(),
        "seed {seed}: the leader did not apply its whole log"
    );
    assert!(
        payloads(&reference).iter().any(|d| d == b"final"),
        "seed {seed}: the final proposal was not applied"
    );
    let unique: BTreeSet<Vec<u8>> = payloads(&reference).into_iter().collect();
    assert_eq!(
        unique.len(),
        payloads(&reference).len(),
        "seed {seed}: a proposal was applied at two indexes"
    );
    for p in c.peers.values() {
        assert_eq!(
            p.handed_out,
            reference,
            "seed {seed}: node {} applied a different sequence than leader {leader}",
            p.id()
        );
    }
}

#[test]
fn random_schedules_hand_out_each_index_once_in_order() {
    for seed in 0..40 {
        run_random_schedule(seed, 400, false);
    }
}

#[test]
fn random_schedules_with_restarts_hand_out_each_index_once_in_order() {
    for seed in 100..140 {
        run_random_schedule(seed, 400, true);
    }
}

// ---------------------------------------------------------------------------------------------
// Paging committed entries.
// ---------------------------------------------------------------------------------------------

#[test]
fn max_committed_size_per_ready_pages_committed_entries() {
    let data = vec![7u8; 100];
    let one = entry_size(&ent(2, 1, &data));
    let limit = 2 * one + one / 2; // two entries fit, three do not
    let cfg = Config {
        max_committed_size_per_ready: limit,
        ..config(1)
    };
    let mut p = Peer::fresh(&cfg, &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for _ in 0..9 {
        p.node.propose(vec![], data.clone()).unwrap();
    }
    let pages = collect_pages(&mut p);
    let all: Vec<u64> = pages.iter().flat_map(|pg| indexes(pg)).collect();
    assert_eq!(
        all,
        (2..=10).collect::<Vec<u64>>(),
        "every entry once, in order"
    );
    assert!(
        pages.len() >= 5,
        "9 entries of which 2 fit a page need at least 5 pages, got {}",
        pages.len()
    );
    for pg in &pages {
        let size: u64 = pg.iter().map(entry_size).sum();
        assert!(
            pg.len() == 1 || size <= limit,
            "a page of {} entries has {size} bytes, over the limit {limit}",
            pg.len()
        );
    }
}

#[test]
fn max_committed_size_per_ready_below_one_entry_still_hands_out_one_entry_per_page() {
    let cfg = Config {
        max_committed_size_per_ready: 1,
        ..config(1)
    };
    let mut p = Peer::fresh(&cfg, &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for i in 0..6u8 {
        p.node.propose(vec![], vec![i; 10]).unwrap();
    }
    let pages = collect_pages(&mut p);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1; 6],
        "each page holds exactly one entry"
    );
    assert_eq!(
        pages.iter().flat_map(|pg| indexes(pg)).collect::<Vec<_>>(),
        (2..=7).collect::<Vec<u64>>()
    );
}
