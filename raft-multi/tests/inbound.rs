//! Received envelopes: groups created by the application's hook, refused, removed; bad input
//! refused without a panic.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{group_config, logger, Cluster};
use prost::Message as _;
use raft_core::eraftpb::{Message, MessageType};
use raft_multi::{
    Envelope, EnvelopeError, Error, GroupMessage, InboundReport, MultiConfig, MultiRaft, NewGroup,
};
use storage_mem::MemStorage;

/// Groups `10..10 + count` on nodes 1 and 2 with voters 1, 2, 3; node 3 has no groups.
fn without_node_3(count: u64) -> Cluster {
    let mut cluster = Cluster::empty(&[1, 2, 3]);
    for group_id in 10..10 + count {
        cluster.add_group(1, group_id, &[1, 2, 3]);
        cluster.add_group(2, group_id, &[1, 2, 3]);
    }
    cluster
}

#[test]
fn a_group_is_created_when_its_first_message_arrives_and_the_hook_accepts() {
    let mut cluster = without_node_3(5);
    let asked = Arc::new(AtomicUsize::new(0));
    let asked_in_hook = asked.clone();
    cluster
        .node(3)
        .set_group_creator(Box::new(move |group_id, from_node, first| {
            asked_in_hook.fetch_add(1, Ordering::Relaxed);
            assert!((10..15).contains(&group_id));
            assert_eq!(from_node, first.from);
            // An empty storage: the leader sends a snapshot carrying the membership.
            NewGroup::Create(group_config(3), MemStorage::new())
        }));
    for group_id in 10..15 {
        cluster.node(1).campaign(group_id).unwrap();
    }
    cluster.stabilize();
    for group_id in 10..15 {
        cluster
            .node(1)
            .propose(group_id, vec![], b"hello".to_vec())
            .unwrap();
    }
    cluster.stabilize();
    let metrics = cluster.multi(3).metrics();
    assert_eq!(metrics.groups_created_on_message, 5);
    assert_eq!(asked.load(Ordering::Relaxed), 5, "asked once per group");
    for group_id in 10..15 {
        let status = cluster
            .multi(3)
            .group_status(group_id)
            .expect("created on node 3");
        assert_eq!(status.leader_id, 1);
        assert_eq!(cluster.applied(3, group_id), [b"hello".to_vec()]);
        let store = cluster.multi(3).store(group_id).expect("created on node 3");
        let conf = store.rl().conf_state().clone();
        assert_eq!(
            conf.voters,
            [1, 2, 3],
            "the membership came with the snapshot"
        );
    }
}

#[test]
fn a_group_the_hook_refuses_is_not_created_and_its_messages_are_dropped() {
    let mut cluster = without_node_3(4);
    cluster
        .node(3)
        .set_group_creator(Box::new(|_, _, _| NewGroup::Refuse));
    for group_id in 10..14 {
        cluster.node(1).campaign(group_id).unwrap();
    }
    cluster.stabilize();
    for group_id in 10..14 {
        cluster
            .node(1)
            .propose(group_id, vec![], b"two of three".to_vec())
            .unwrap();
    }
    cluster.stabilize();
    let node_3 = cluster.multi(3);
    assert_eq!(node_3.status().groups, 0);
    assert!(node_3.metrics().unknown_group_dropped >= 4);
    assert_eq!(node_3.metrics().messages_stepped, 0);
    for group_id in 10..14 {
        // Nodes 1 and 2 are a quorum: the groups work without node 3.
        assert_eq!(cluster.applied(2, group_id), [b"two of three".to_vec()]);
    }
}

fn lone_node() -> MultiRaft<MemStorage> {
    let mut node = MultiRaft::new(MultiConfig::new(1), &logger()).unwrap();
    let storage = MemStorage::bootstrap([1, 2, 3], []).unwrap();
    node.add_group(7, &group_config(1), storage).unwrap();
    node
}

fn heartbeat(from: u64, to: u64) -> Message {
    Message {
        msg_type: MessageType::MsgHeartbeat as i32,
        from,
        to,
        term: 5,
        ..Default::default()
    }
}

fn envelope(from_node: u64, to_node: u64, messages: Vec<(u64, Option<Message>)>) -> Envelope {
    Envelope {
        from_node,
        to_node,
        messages: messages
            .into_iter()
            .map(|(group_id, message)| GroupMessage { group_id, message })
            .collect(),
    }
}

#[test]
fn malformed_or_misaddressed_envelopes_are_refused_whole() {
    let mut node = lone_node();
    assert!(matches!(
        node.step_encoded(&[0xff, 0xff, 0xff]),
        Err(EnvelopeError::Decode(_))
    ));
    let for_node_9 = envelope(2, 9, vec![(7, Some(heartbeat(2, 9)))]);
    assert_eq!(
        node.step_envelope(for_node_9),
        Err(EnvelopeError::WrongNode {
            to_node: 9,
            node_id: 1
        })
    );
    let from_self = envelope(1, 1, vec![(7, Some(heartbeat(1, 1)))]);
    assert_eq!(
        node.step_envelope(from_self),
        Err(EnvelopeError::BadSender(1))
    );
    let from_nobody = envelope(0, 1, vec![(7, Some(heartbeat(0, 1)))]);
    assert_eq!(
        node.step_envelope(from_nobody),
        Err(EnvelopeError::BadSender(0))
    );
    assert_eq!(node.metrics().envelopes_refused, 4);
    assert_eq!(node.group(7).unwrap().raft.term, 1, "nothing was stepped");
}

#[test]
fn impossible_messages_inside_an_envelope_are_dropped_and_the_rest_stepped() {
    let mut node = lone_node();
    let asked = Arc::new(AtomicUsize::new(0));
    let asked_in_hook = asked.clone();
    node.set_group_creator(Box::new(move |_, _, _| {
        asked_in_hook.fetch_add(1, Ordering::Relaxed);
        NewGroup::Refuse
    }));
    let response_for_unknown = Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        from: 2,
        to: 1,
        term: 5,
        ..Default::default()
    };
    let unknown_type = Message {
        msg_type: 99,
        ..heartbeat(2, 1)
    };
    let local_only = Message {
        msg_type: MessageType::MsgHup as i32,
        ..heartbeat(2, 1)
    };
    let messages = vec![
        (7, None),                       // no message
        (7, Some(heartbeat(2, 3))),      // for another node
        (7, Some(heartbeat(3, 1))),      // a sender other than the envelope's
        (7, Some(unknown_type)),         // refused by the group
        (7, Some(local_only)),           // refused by the group
        (8, Some(response_for_unknown)), // cannot start a group: the hook is not asked
        (9, Some(heartbeat(2, 1))),      // the hook refuses
        (7, Some(heartbeat(2, 1))),      // fine
    ];
    let report = node.step_envelope(envelope(2, 1, messages)).unwrap();
    assert_eq!(
        report,
        InboundReport {
            stepped: 1,
            created: 0,
            unknown_group: 2,
            dropped: 5,
            storage_errors: vec![],
        }
    );
    assert_eq!(asked.load(Ordering::Relaxed), 1, "asked only for group 9");
    let raw = node.group(7).unwrap();
    assert_eq!(
        (raw.raft.term, raw.raft.leader_id),
        (5, 2),
        "the good heartbeat was stepped"
    );
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut node = lone_node();
    node.set_group_creator(Box::new(|_, _, _| {
        NewGroup::Create(group_config(1), MemStorage::new())
    }));
    let valid = envelope(
        2,
        1,
        vec![(7, Some(heartbeat(2, 1))), (8, Some(heartbeat(2, 1)))],
    )
    .encode_to_vec();
    // A xorshift generator: the same inputs every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..20_000 {
        let bytes = if round % 2 == 0 {
            let mut bytes = valid.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            bytes
        } else {
            (0..next() % 64).map(|_| next() as u8).collect()
        };
        match node.step_encoded(&bytes) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        while node.has_ready() {
            let batch = node.ready();
            node.advance(batch);
        }
        node.flush();
    }
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn a_removed_group_is_tombstoned_until_forgotten() {
    let mut node = lone_node();
    node.set_group_creator(Box::new(|_, _, _| {
        NewGroup::Create(group_config(1), MemStorage::new())
    }));
    assert!(node.remove_group(7).is_some());
    assert!(node.is_tombstoned(7));
    assert!(node.group(7).is_none());
    let report = node
        .step_envelope(envelope(2, 1, vec![(7, Some(heartbeat(2, 1)))]))
        .unwrap();
    assert_eq!(
        report.unknown_group, 1,
        "a late message does not bring it back"
    );
    assert!(!node.contains(7));
    let storage = MemStorage::bootstrap([1, 2, 3], []).unwrap();
    assert_eq!(
        node.add_group(7, &group_config(1), storage.clone()),
        Err(Error::Tombstoned(7))
    );
    assert!(node.forget_tombstone(7));
    node.add_group(7, &group_config(1), storage).unwrap();
    assert!(node.contains(7));
}

#[test]
fn commands_on_unknown_groups_and_bad_configs_are_errors() {
    let mut node = lone_node();
    assert_eq!(
        node.propose(8, vec![], b"x".to_vec()),
        Err(Error::UnknownGroup(8))
    );
    assert_eq!(node.campaign(8), Err(Error::UnknownGroup(8)));
    assert_eq!(node.wake(8), Err(Error::UnknownGroup(8)));
    let storage = || MemStorage::bootstrap([1, 2, 3], []).unwrap();
    assert_eq!(
        node.add_group(7, &group_config(1), storage()),
        Err(Error::GroupExists(7))
    );
    assert_eq!(
        node.add_group(8, &group_config(2), storage()),
        Err(Error::WrongReplicaId {
            group_id: 8,
            config_id: 2,
            node_id: 1
        })
    );
    let bad = raft_core::Config {
        election_tick: 0,
        ..group_config(1)
    };
    assert!(matches!(
        node.add_group(8, &bad, storage()),
        Err(Error::Raft { group_id: 8, .. })
    ));
    assert!(MultiRaft::<MemStorage>::new(MultiConfig::new(0), &logger()).is_err());
}
