//! Encode/decode round trips of every wire type, with every field set to a non-zero value (zero values
//! are not written at all, so they would not exercise the field).

use std::fmt::Debug;

use bytes::Bytes;
use raft_proto::eraftpb::*;

fn round_trip<M: prost::Message + Default + PartialEq + Debug>(value: &M) {
    let bytes = value.encode_to_vec();
    assert_eq!(bytes.len(), value.encoded_len());
    assert_eq!(&M::decode(&bytes[..]).unwrap(), value);
    // Decoding from `Bytes` (the zero-copy path for payloads) gives the same value.
    assert_eq!(&M::decode(Bytes::from(bytes)).unwrap(), value);
}

fn full_entry(index: u64) -> Entry {
    Entry {
        entry_type: EntryType::EntryConfChange as i32,
        term: u64::MAX,
        index,
        data: Bytes::from(vec![0u8, 1, 2, 255]),
        sync_log: true,
        context: Bytes::from_static(b"context"),
    }
}

fn full_conf_state() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4, u64::MAX],
        voters_outgoing: vec![1, 2, 5],
        learners_next: vec![5],
        auto_leave: true,
    }
}

fn full_snapshot() -> Snapshot {
    Snapshot {
        data: Bytes::from(vec![7u8; 1000]),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(full_conf_state()),
            index: 100,
            term: 9,
        }),
    }
}

#[test]
fn round_trip_entry() {
    round_trip(&full_entry(42));
}

#[test]
fn round_trip_message_with_every_field() {
    round_trip(&Message {
        msg_type: MessageType::MsgRequestPreVoteResponse as i32,
        to: u64::MAX,
        from: 1,
        term: 2,
        log_term: 3,
        index: 4,
        entries: (5..10).map(full_entry).collect(),
        commit: 6,
        snapshot: Some(Box::new(full_snapshot())),
        reject: true,
        reject_hint: 7,
        context: Bytes::from_static(b"read-index ctx"),
        request_snapshot: 8,
        deprecated_priority: 9,
        commit_term: 10,
        priority: i64::MIN,
    });
}

#[test]
fn round_trip_every_message_type() {
    for t in 0..=18 {
        let t = MessageType::try_from(t).expect("0..=18 are all defined");
        round_trip(&Message {
            msg_type: t as i32,
            to: 2,
            from: 1,
            ..Default::default()
        });
    }
}

#[test]
fn round_trip_hard_state() {
    round_trip(&HardState {
        term: 1,
        vote: 2,
        commit: u64::MAX,
    });
}

#[test]
fn round_trip_conf_state() {
    round_trip(&full_conf_state());
}

#[test]
fn round_trip_snapshot() {
    round_trip(&full_snapshot());
    round_trip(&Snapshot {
        data: Bytes::new(),
        metadata: Some(SnapshotMetadata::default()),
    });
}

#[test]
fn round_trip_conf_change() {
    round_trip(&ConfChange {
        id: 1,
        change_type: ConfChangeType::AddLearnerNode as i32,
        node_id: 2,
        context: Bytes::from_static(b"ctx"),
    });
}

#[test]
fn round_trip_conf_change_v2() {
    round_trip(&ConfChangeV2 {
        transition: ConfChangeTransition::Implicit as i32,
        changes: vec![
            ConfChangeSingle {
                change_type: ConfChangeType::RemoveNode as i32,
                node_id: 1,
            },
            ConfChangeSingle {
                change_type: ConfChangeType::AddNode as i32,
                node_id: 2,
            },
        ],
        context: Bytes::from_static(b"ctx"),
    });
}
