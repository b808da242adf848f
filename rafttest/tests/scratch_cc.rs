//! scratch
use raft_core::eraftpb::{ConfChangeType, ConfChangeV2};
use raft_proto::{conf_changes_from_string, new_conf_change_single};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::conf_state;

#[test]
fn scratch() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.add_node(&default_config(4), conf_state(vec![1, 2, 3], vec![]));
    let cc = raft_core::eraftpb::ConfChange {
        change_type: ConfChangeType::AddNode as i32,
        node_id: 4,
        ..Default::default()
    };
    net.node_mut(1).raw.propose_conf_change(vec![], cc).unwrap();
    net.stabilize();
    for id in 1..=4 {
        println!(
            "{id}: {:?} applied {} log {:?}",
            net.node(id).conf_state(),
            net.node(id).applied_index,
            net.node(id).conf_log
        );
    }
    net.propose(1, b"x").unwrap();
    for id in 1..=4 {
        println!("{id}: applied {:?}", net.node(id).applied_data());
    }
    // joint replace 3 by 5
    net.add_node(&default_config(5), conf_state(vec![1, 2, 3], vec![]));
    let cc = ConfChangeV2 {
        changes: conf_changes_from_string("r3 v5").unwrap(),
        ..Default::default()
    };
    net.node_mut(1).raw.propose_conf_change(vec![], cc).unwrap();
    net.stabilize();
    for id in 1..=5 {
        println!(
            "{id}: {:?} applied {} log {:?}",
            net.node(id).conf_state(),
            net.node(id).applied_index,
            net.node(id).conf_log
        );
    }
    let _ = new_conf_change_single(1, ConfChangeType::AddNode);
}

#[test]
fn scratch_snapshot() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.isolate(3);
    for i in 0..10u8 {
        net.propose(1, &[i]).unwrap();
    }
    net.node_mut(1).snapshot_and_compact(2).unwrap();
    println!(
        "leader first index {}",
        net.node(1).raw.raft.raft_log.first_index()
    );
    net.recover();
    net.propose(1, b"after").unwrap();
    for _ in 0..3 {
        net.tick(1);
    }
    for id in 1..=3 {
        let n = net.node(id);
        println!(
            "{id}: applied_index {} snaps {} data {:?} pr {:?}",
            n.applied_index,
            n.snapshots_restored,
            n.applied_data().len(),
            net.node(1)
                .raw
                .raft
                .prs
                .get(id)
                .map(|p| (p.state, p.matched, p.next_idx))
        );
    }
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
}

#[test]
fn scratch_read_transfer() {
    let mut net = Network::new(3);
    net.campaign(1);
    net.propose(1, b"a").unwrap();
    net.node_mut(2).raw.read_index(b"r2".to_vec()).unwrap();
    net.node_mut(1).raw.read_index(b"r1".to_vec()).unwrap();
    net.stabilize();
    println!(
        "1: {:?}\n2: {:?}",
        net.node(1).read_states,
        net.node(2).read_states
    );
    net.node_mut(1).raw.transfer_leader(3);
    net.stabilize();
    println!(
        "leader {:?} status {:?}",
        net.leader(),
        net.node(3).raw.status()
    );
    net.node_mut(2).raw.transfer_leader(2);
    net.stabilize();
    println!(
        "leader {:?} basic {:?}",
        net.leader(),
        net.node(2).raw.basic_status()
    );
}

#[test]
fn scratch_sim() {
    for seed in 1..=5 {
        let opts = rafttest::sim::SimOptions {
            seed,
            events: 50_000,
            ..Default::default()
        };
        match rafttest::sim::run(&opts) {
            Ok(r) => println!(
                "seed {seed}: ok {:?} reads {} writes {} terms {} voters {:?} recovery {}",
                r.counts,
                r.reads_served,
                r.writes_committed,
                r.terms_with_leader,
                r.final_voters,
                r.recovery_ticks
            ),
            Err(f) => println!("seed {seed}: {f}"),
        }
    }
}
