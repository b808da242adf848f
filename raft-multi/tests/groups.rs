//! Many groups on three nodes: elections, proposals, quiescence, wake-ups, batching.

mod common;

use common::Cluster;
use raft_core::StateRole;

const NODES: [u64; 3] = [1, 2, 3];
const GROUPS: u64 = 60;

fn group_ids() -> std::ops::Range<u64> {
    100..100 + GROUPS
}

/// Three nodes, every group elected (leaders spread over the nodes) with one write applied.
fn busy_cluster() -> Cluster {
    let mut cluster = Cluster::new(&NODES, group_ids());
    cluster.elect_spread(group_ids());
    for group_id in group_ids() {
        let leader = cluster
            .leader(group_id)
            .expect("every group elected a leader");
        cluster
            .node(leader)
            .propose(group_id, vec![], format!("first {group_id}").into_bytes())
            .unwrap();
    }
    cluster.stabilize();
    cluster
}

/// Ticks until every group sleeps on every node (at most `limit` ticks).
fn tick_until_asleep(cluster: &mut Cluster, limit: usize) {
    for _ in 0..limit {
        if NODES
            .iter()
            .all(|id| cluster.multi(*id).status().quiesced_groups == GROUPS as usize)
        {
            return;
        }
        cluster.tick();
    }
    let asleep: Vec<usize> = NODES
        .iter()
        .map(|id| cluster.multi(*id).status().quiesced_groups)
        .collect();
    panic!("not every group slept within {limit} ticks: asleep per node {asleep:?}");
}

#[test]
fn every_group_elects_one_leader_and_commits_on_every_node() {
    let cluster = busy_cluster();
    for group_id in group_ids() {
        let leader = cluster.leader(group_id).unwrap();
        assert_eq!(leader, NODES[(group_id % 3) as usize], "group {group_id}");
        for node_id in NODES {
            let status = cluster.multi(node_id).group_status(group_id).unwrap();
            assert_eq!(status.leader_id, leader, "group {group_id} on {node_id}");
            assert_eq!(
                cluster.applied(node_id, group_id),
                [format!("first {group_id}").into_bytes()],
                "group {group_id} on node {node_id}"
            );
        }
    }
}

#[test]
fn idle_groups_quiesce_and_then_ticks_touch_nothing() {
    let mut cluster = busy_cluster();
    tick_until_asleep(&mut cluster, 30);
    let before: Vec<_> = NODES
        .iter()
        .map(|id| cluster.multi(*id).metrics())
        .collect();
    for _ in 0..100 {
        cluster.tick();
    }
    for (index, node_id) in NODES.iter().enumerate() {
        let status = cluster.multi(*node_id).status();
        assert_eq!(status.awake_groups, 0, "node {node_id}");
        let after = status.metrics;
        assert_eq!(after.ticks, before[index].ticks + 100);
        assert_eq!(
            after.group_ticks, before[index].group_ticks,
            "node {node_id}: a sleeping group is never ticked"
        );
        assert_eq!(
            after.messages_sent, before[index].messages_sent,
            "node {node_id}: sleeping groups send nothing"
        );
    }
    let leaders_policy: u64 = NODES
        .iter()
        .map(|id| cluster.multi(*id).metrics().quiesced_by_policy)
        .sum();
    assert_eq!(
        leaders_policy, GROUPS,
        "each leader quiesced its group once"
    );
}

#[test]
fn a_proposal_wakes_only_its_group_and_commits() {
    let mut cluster = busy_cluster();
    tick_until_asleep(&mut cluster, 30);
    let group_id = 107;
    let leader = cluster.leader(group_id).unwrap();
    let follower = NODES.iter().copied().find(|id| *id != leader).unwrap();
    // On a follower: forwarded to the sleeping leader in an envelope, which wakes it.
    cluster
        .node(follower)
        .propose(group_id, vec![], b"second".to_vec())
        .unwrap();
    cluster.stabilize();
    for node_id in NODES {
        assert_eq!(
            cluster.applied(node_id, group_id).last().unwrap(),
            b"second",
            "node {node_id}"
        );
        let status = cluster.multi(node_id).status();
        assert_eq!(
            status.quiesced_groups,
            GROUPS as usize - 1,
            "node {node_id}: only group {group_id} woke"
        );
    }
    let ticks_before = cluster.multi(leader).metrics().group_ticks;
    cluster.tick();
    assert_eq!(
        cluster.multi(leader).metrics().group_ticks,
        ticks_before + 1,
        "only the woken group is ticked"
    );
    // Idle again, it goes back to sleep.
    tick_until_asleep(&mut cluster, 30);
}

#[test]
fn a_failure_detector_wakes_the_groups_of_a_stopped_leader_and_they_elect_new_leaders() {
    let mut cluster = busy_cluster();
    tick_until_asleep(&mut cluster, 30);
    let led_by_1: Vec<u64> = group_ids()
        .filter(|g| cluster.leader(*g) == Some(1))
        .collect();
    assert_eq!(led_by_1.len(), GROUPS as usize / 3);
    let terms_before: std::collections::BTreeMap<u64, u64> = group_ids()
        .map(|g| (g, cluster.multi(2).group_status(g).unwrap().term))
        .collect();
    cluster.down.insert(1);
    // Asleep, nobody notices that node 1 stopped.
    for _ in 0..50 {
        cluster.tick();
    }
    for group_id in &led_by_1 {
        assert_eq!(cluster.leader(*group_id), None, "group {group_id}");
    }
    // The failure detector reports node 1 down. On 2 and 3 it wakes the groups node 1 led
    // (to elect a new leader) and the groups they lead themselves with node 1 as a member (to
    // check their quorum), not the groups they follow under a live leader.
    for node_id in [2, 3] {
        let led_here = group_ids()
            .filter(|g| cluster.leader(*g) == Some(node_id))
            .count();
        let woken = cluster.node(node_id).node_down(1);
        assert_eq!(woken, led_by_1.len() + led_here, "node {node_id}");
        assert_eq!(
            cluster.multi(node_id).status().awake_groups,
            led_by_1.len() + led_here
        );
    }
    for _ in 0..40 {
        cluster.tick();
    }
    for group_id in &led_by_1 {
        let leader = cluster
            .leader(*group_id)
            .unwrap_or_else(|| panic!("group {group_id} elected no new leader"));
        assert_ne!(leader, 1);
        cluster
            .node(leader)
            .propose(*group_id, vec![], b"after".to_vec())
            .unwrap();
    }
    cluster.stabilize();
    for group_id in &led_by_1 {
        for node_id in [2, 3] {
            assert_eq!(
                cluster.applied(node_id, *group_id).last().unwrap(),
                b"after"
            );
        }
    }
    // The groups node 2 or 3 led kept their leader and term: woken by their leader (which
    // checks its quorum), the followers never campaigned.
    for group_id in group_ids().filter(|g| !led_by_1.contains(g)) {
        let leader = NODES[(group_id % 3) as usize];
        assert_eq!(cluster.leader(group_id), Some(leader), "group {group_id}");
        let follower = 5 - leader;
        let status = cluster.multi(follower).group_status(group_id).unwrap();
        assert_eq!(status.role, StateRole::Follower);
        assert_eq!(status.term, terms_before[&group_id], "group {group_id}");
    }
}

#[test]
fn a_flush_sends_one_envelope_per_destination_node() {
    let mut cluster = busy_cluster();
    tick_until_asleep(&mut cluster, 30);
    // Node 1 proposes in every group it leads; its flush carries all the appends.
    let led_by_1: Vec<u64> = group_ids()
        .filter(|g| cluster.leader(*g) == Some(1))
        .collect();
    for group_id in &led_by_1 {
        cluster
            .node(1)
            .propose(*group_id, vec![], b"batched".to_vec())
            .unwrap();
    }
    cluster.flush_log.clear();
    cluster.process(1);
    assert_eq!(
        cluster.flush_log,
        [(1, 2)],
        "one envelope each for nodes 2 and 3"
    );
    let metrics = cluster.multi(1).metrics();
    assert_eq!(metrics.last_flush_envelopes, 2);
    assert_eq!(
        metrics.last_flush_messages,
        4 * led_by_1.len() as u64,
        "per group and follower: the heartbeat of the waking leader (its lease is forgotten) \
         and one append"
    );
    // Every later flush of every node also sends at most one envelope per other node.
    cluster.deliver();
    cluster.stabilize();
    assert!(cluster
        .flush_log
        .iter()
        .all(|(_, envelopes)| *envelopes <= 2));
    for group_id in &led_by_1 {
        assert_eq!(cluster.applied(3, *group_id).last().unwrap(), b"batched");
    }
}

#[test]
fn a_ready_batch_holds_every_group_with_work_and_one_sync_covers_it() {
    let mut cluster = busy_cluster();
    let led_by_2: Vec<u64> = group_ids()
        .filter(|g| cluster.leader(*g) == Some(2))
        .collect();
    for group_id in &led_by_2 {
        cluster
            .node(2)
            .propose(*group_id, vec![], b"x".to_vec())
            .unwrap();
    }
    let batch = cluster.node(2).ready();
    assert_eq!(batch.groups().len(), led_by_2.len());
    assert!(batch.must_sync(), "new entries must be synced");
    let mut in_batch: Vec<u64> = batch.groups().iter().map(|g| g.group_id()).collect();
    in_batch.sort_unstable();
    assert_eq!(in_batch, led_by_2);
    assert!(batch
        .groups()
        .iter()
        .all(|g| g.ready().entries().len() == 1));
    let node = cluster.nodes.get_mut(&2).unwrap();
    common::persist_and_apply(node, batch);
    cluster.stabilize();
    for group_id in &led_by_2 {
        assert_eq!(cluster.applied(1, *group_id).last().unwrap(), b"x");
    }
}
