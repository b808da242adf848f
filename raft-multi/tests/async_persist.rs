//! Persisting Ready batches in the background: messages that promise durability wait for
//! `on_persisted`, later batches may be taken meanwhile, applying is reported per group.

mod common;

use common::Cluster;
use prost::Message as _;
use raft_core::eraftpb::{Entry, HardState, MessageType};
use raft_multi::{Envelope, ReadyBatch};

const GROUPS: [u64; 3] = [1, 2, 3];

fn types(envelopes: &[Envelope]) -> Vec<MessageType> {
    envelopes
        .iter()
        .flat_map(|e| &e.messages)
        .map(|m| MessageType::try_from(m.message.as_ref().unwrap().msg_type).unwrap())
        .collect()
}

/// What a background writer gets from a batch: per group, the entries and hard state to write.
fn take_writes(batch: &mut ReadyBatch) -> Vec<(u64, Vec<Entry>, Option<HardState>)> {
    batch
        .groups_mut()
        .iter_mut()
        .map(|group| {
            let group_id = group.group_id();
            let ready = group.ready_mut();
            (group_id, ready.take_entries(), ready.hard_state().copied())
        })
        .collect()
}

#[test]
fn persisted_messages_wait_for_the_batch_to_be_durable() {
    let mut cluster = Cluster::new(&[1, 2, 3], GROUPS);
    for group_id in GROUPS {
        cluster.node(1).campaign(group_id).unwrap();
    }
    cluster.stabilize();
    for group_id in GROUPS {
        cluster
            .node(1)
            .propose(group_id, vec![], b"async".to_vec())
            .unwrap();
    }
    cluster.process(1);
    cluster.deliver();

    // Node 2 writes in the background.
    let node_2 = cluster.node(2);
    let mut first = node_2.ready();
    assert_eq!(first.groups().len(), 3);
    let writes = take_writes(&mut first);
    let pending = node_2.advance_append_async(first);
    assert!(
        !types(&node_2.flush()).contains(&MessageType::MsgAppendResponse),
        "no acknowledgement before the write is durable"
    );
    // Nothing new meanwhile: a second batch may be taken, and is empty.
    assert!(node_2.ready().is_empty());
    for (group_id, entries, hard_state) in writes {
        let store = node_2.group(group_id).unwrap().store().clone();
        store.wl().append(&entries).unwrap();
        if let Some(hard_state) = hard_state {
            store.wl().set_hardstate(hard_state);
        }
    }
    // ... one fsync, then:
    node_2.on_persisted(pending);
    let acks = node_2.flush();
    assert_eq!(acks.len(), 1, "one envelope, to the leader");
    assert_eq!(acks[0].to_node, 1);
    assert_eq!(types(&acks), vec![MessageType::MsgAppendResponse; 3]);
    for envelope in acks {
        cluster
            .node(1)
            .step_encoded(&envelope.encode_to_vec())
            .unwrap();
    }
    cluster.stabilize();
    for group_id in GROUPS {
        assert_eq!(cluster.applied(1, group_id), [b"async".to_vec()]);
    }
}

#[test]
fn batches_pipeline_and_applying_is_reported_per_group() {
    let mut cluster = Cluster::new(&[1, 2, 3], GROUPS);
    for group_id in GROUPS {
        cluster.node(1).campaign(group_id).unwrap();
    }
    cluster.stabilize();
    let node_1 = cluster.node(1);
    node_1.propose(1, vec![], b"a".to_vec()).unwrap();
    let mut first = node_1.ready();
    let first_writes = take_writes(&mut first);
    let first_pending = node_1.advance_append_async(first);
    node_1.propose(2, vec![], b"b".to_vec()).unwrap();
    let mut second = node_1.ready();
    assert_eq!(second.number(), first_pending.number() + 1);
    assert_eq!(second.groups().len(), 1, "only group 2 has new work");
    let second_writes = take_writes(&mut second);
    let second_pending = node_1.advance_append_async(second);
    for (group_id, entries, hard_state) in first_writes.into_iter().chain(second_writes) {
        let store = node_1.group(group_id).unwrap().store().clone();
        store.wl().append(&entries).unwrap();
        if let Some(hard_state) = hard_state {
            store.wl().set_hardstate(hard_state);
        }
    }
    node_1.on_persisted(first_pending);
    node_1.on_persisted(second_pending);
    // The appends (queued when the batches were taken) go out; the followers acknowledge; the
    // leader's next batch hands out the committed entries.
    for envelope in node_1.flush() {
        cluster
            .in_flight
            .push((envelope.to_node, envelope.encode_to_vec()));
    }
    cluster.deliver();
    for _ in 0..3 {
        cluster.process(2);
        cluster.process(3);
        cluster.deliver();
    }
    let node_1 = cluster.node(1);
    let mut batch = node_1.ready();
    let mut committed = Vec::new();
    for group in batch.groups_mut() {
        let group_id = group.group_id();
        let ready = group.ready_mut();
        let store = node_1.group(group_id).unwrap().store().clone();
        if let Some(hard_state) = ready.hard_state() {
            store.wl().set_hardstate(*hard_state);
        }
        for entry in ready.take_committed_entries() {
            committed.push((group_id, entry.index, entry.data.to_vec()));
        }
    }
    committed.sort();
    assert_eq!(
        committed
            .iter()
            .map(|(g, _, d)| (*g, d.clone()))
            .collect::<Vec<_>>(),
        [(1, b"a".to_vec()), (2, b"b".to_vec())]
    );
    let pending = node_1.advance_append_async(batch);
    node_1.on_persisted(pending);
    // Applied in the background, reported per group.
    for (group_id, index, _) in &committed {
        node_1.advance_apply_to(*group_id, *index).unwrap();
        assert_eq!(
            node_1.group(*group_id).unwrap().raft.raft_log.applied,
            *index
        );
    }
    assert!(node_1.advance_apply_to(99, 1).is_err());
}
