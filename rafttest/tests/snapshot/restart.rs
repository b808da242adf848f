//! Restarting from a storage that holds a snapshot and the log after it.

use raft_core::eraftpb::{Entry, HardState, Message};
use raft_core::{Config, Error, RawNode, Storage};
use raft_proto::prost::Message as _;
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

use crate::common::{index_terms, logger, replace_node, storage_with};
use crate::support::*;

/// Node 3's storage after a restart: it had restored a snapshot at `SNAP_INDEX` (membership
/// {1, 2, 3}; the storage started out with an older membership {1, 2}), then appended entries 11
/// and 12, committed. The snapshot's data is the `rafttest` state machine of entries 1..=10.
fn restarted_storage(all: &[Entry]) -> MemStorage {
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1, 2], vec![]));
    {
        let mut core = storage.wl();
        let data = network_snapshot_data(&all[..SNAP_INDEX as usize]);
        core.apply_snapshot(snapshot(SNAP_INDEX, 1, voters_cs(&VOTERS), &data))
            .unwrap();
        core.append(&all[SNAP_INDEX as usize..12]).unwrap();
        core.set_hardstate(HardState {
            term: 1,
            vote: 0,
            commit: 12,
        });
    }
    storage
}

/// The application's state machine, loaded back from the snapshot in its storage.
fn state_machine_from(storage: &MemStorage) -> Vec<Entry> {
    let snap = storage
        .snapshot(0, 0)
        .expect("the storage holds a snapshot");
    Message::decode(snap.data)
        .expect("network snapshot data")
        .entries
}

/// A restart over a snapshot at 10 and entries 11..=12 with `Config::applied` = 10: commit 12,
/// applied 10, the log starting after the snapshot, the membership from the snapshot; entries 11
/// and 12 are handed out (and nothing at or below 10). It then catches up with a leader of a newer
/// term by entries alone, and every node ends with the same state machine.
#[test]
fn a_restarted_node_recovers_from_its_snapshot_and_the_log_after_it() {
    let all = payload_entries(1, 15, 1);
    let storage3 = restarted_storage(&all);
    let cfg3 = Config {
        applied: SNAP_INDEX,
        ..default_config(3)
    };
    let mut node3 = Network::start_node(&cfg3, storage3.clone());
    {
        let r = &node3.raw.raft;
        assert_eq!(r.raft_log.committed, 12);
        assert_eq!(r.raft_log.applied, SNAP_INDEX);
        assert_eq!(r.raft_log.first_index(), SNAP_INDEX + 1);
        assert_eq!(r.raft_log.last_index(), 12);
        assert_eq!(r.raft_log.term(SNAP_INDEX).unwrap(), 1);
        assert_eq!(
            r.prs.conf_state(),
            voters_cs(&VOTERS),
            "membership from the snapshot"
        );
        assert_eq!(r.term, 1);
    }
    // The application loads its state machine from the snapshot, then applies what follows.
    node3.applied = state_machine_from(&storage3);
    assert_eq!(node3.applied.len(), 10);
    let mut rd = node3.raw.ready().unwrap();
    assert!(
        rd.snapshot().is_empty(),
        "the persisted snapshot is not handed out again"
    );
    let committed = rd.take_committed_entries();
    assert_eq!(
        committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![11, 12],
        "only the entries after the snapshot are applied"
    );
    node3.applied.extend(committed);
    node3.applied_index = 12;
    node3.raw.advance(rd).unwrap();
    node3.raw.advance_apply();

    // Nodes 1 and 2 hold all 15 entries; 1 is elected in term 2 and brings 3 up to date.
    let mut net = Network::new(3);
    for id in [1, 2] {
        replace_node(
            &mut net,
            &default_config(id),
            storage_with(&VOTERS, &all, 1, 12),
        );
    }
    net.nodes.insert(3, node3);
    net.campaign(1);
    assert_eq!(net.leader(), Some(1));
    let leader_log = index_terms(&net.node(1).raw.raft);
    assert_eq!(
        index_terms(&net.node(3).raw.raft),
        leader_log[SNAP_INDEX as usize..].to_vec(),
        "3's log after its snapshot matches the leader's"
    );
    assert_eq!(net.node(3).snapshots_restored, 0, "entries were enough");
    for id in 1..=3 {
        let n = net.node(id);
        assert_eq!(n.raw.raft.raft_log.committed, 16, "node {id}'s commit");
        assert_eq!(n.applied_index, 16, "node {id}'s applied index");
        assert_eq!(
            n.applied_data(),
            net.node(1).applied_data(),
            "node {id}'s state machine"
        );
    }
    assert_eq!(net.node(3).applied_data().len(), 15);
}

/// `Config::applied` below the snapshot means "applied as far as the snapshot": entries the
/// snapshot covers cannot be handed out. Beyond the commit index it is refused.
#[test]
fn config_applied_is_bounded_by_the_snapshot_and_the_commit() {
    let all = payload_entries(1, 15, 1);
    let storage = restarted_storage(&all);
    let low = Config {
        applied: 4,
        ..default_config(3)
    };
    let mut node = RawNode::new(&low, storage.clone(), &logger()).unwrap();
    assert_eq!(node.raft.raft_log.applied, SNAP_INDEX);
    let rd = node.ready().unwrap();
    assert_eq!(
        rd.committed_entries()
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        vec![11, 12]
    );

    let high = Config {
        applied: 13,
        ..default_config(3)
    };
    assert!(
        matches!(
            RawNode::new(&high, storage, &logger()).err(),
            Some(Error::ConfigInvalid {
                field: "applied",
                ..
            })
        ),
        "applied beyond the persisted commit is refused"
    );
}

/// A follower restores a snapshot from the leader in a running group, restarts, and comes back
/// with the snapshot as its log start; it then follows on.
#[test]
fn a_node_restarted_after_restoring_a_snapshot_keeps_it() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.isolate(3);
    for i in 0..6u8 {
        net.propose(1, &[i]).unwrap();
    }
    net.node_mut(1).snapshot_and_compact(0).unwrap();
    net.recover();
    net.tick(1);
    net.tick(1);
    assert_eq!(net.node(3).snapshots_restored, 1);
    let applied = net.node(3).applied_index;
    assert_eq!(applied, 7);

    net.restart(
        3,
        &Config {
            applied,
            ..default_config(3)
        },
    );
    let r = &net.node(3).raw.raft;
    assert_eq!(
        r.raft_log.first_index(),
        8,
        "the log starts after the snapshot"
    );
    assert_eq!((r.raft_log.committed, r.raft_log.applied), (7, 7));
    assert_eq!(r.prs.conf_state(), voters_cs(&VOTERS));

    net.propose(1, b"after restart").unwrap();
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_index, 8, "node {id}");
        assert_eq!(
            net.node(id).applied_data(),
            net.node(1).applied_data(),
            "node {id}"
        );
    }
}
