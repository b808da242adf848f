//! Byte level: every wire type, with every field set, decodes field for field in the other
//! library and re-encodes to the original; message type values agree; unknown fields are skipped;
//! packed and unpacked repeated ids both decode.

use prost::Message as _;
use protobuf::{Message as _, ProtobufEnum as _, RepeatedField, SingularPtrField};
use raft::eraftpb as theirs;
use raft_core::eraftpb as ours;
use raft_core::eraftpb::MessageType;

fn our_conf_state() -> ours::ConfState {
    ours::ConfState {
        voters: vec![1, 2, u64::MAX],
        learners: vec![4, 1 << 40],
        voters_outgoing: vec![1, 2, 7],
        learners_next: vec![9],
        auto_leave: true,
    }
}

fn our_conf_change_v2() -> ours::ConfChangeV2 {
    ours::ConfChangeV2 {
        transition: ours::ConfChangeTransition::Explicit as i32,
        changes: vec![
            ours::ConfChangeSingle {
                change_type: ours::ConfChangeType::AddNode as i32,
                node_id: 5,
            },
            ours::ConfChangeSingle {
                change_type: ours::ConfChangeType::RemoveNode as i32,
                node_id: u64::MAX - 1,
            },
            ours::ConfChangeSingle {
                change_type: ours::ConfChangeType::AddLearnerNode as i32,
                node_id: 300,
            },
        ],
        context: b"ccv2-context".to_vec().into(),
    }
}

fn our_conf_change() -> ours::ConfChange {
    ours::ConfChange {
        id: u64::MAX,
        change_type: ours::ConfChangeType::AddLearnerNode as i32,
        node_id: 1 << 33,
        context: b"cc-context".to_vec().into(),
    }
}

fn our_entry(entry_type: ours::EntryType, index: u64, data: Vec<u8>) -> ours::Entry {
    ours::Entry {
        entry_type: entry_type as i32,
        term: u64::MAX - 3,
        index,
        data: data.into(),
        sync_log: true,
        context: b"entry-context".to_vec().into(),
    }
}

fn our_snapshot() -> ours::Snapshot {
    ours::Snapshot {
        data: vec![0u8, 1, 2, 255].into(),
        metadata: Some(ours::SnapshotMetadata {
            conf_state: Some(our_conf_state()),
            index: 1 << 50,
            term: 77,
        }),
    }
}

fn our_full_message(msg_type: MessageType) -> ours::Message {
    ours::Message {
        msg_type: msg_type as i32,
        to: 2,
        from: u64::MAX,
        term: 1 << 62,
        log_term: 300,
        index: 128,
        entries: vec![
            our_entry(ours::EntryType::EntryNormal, 129, b"payload".to_vec()),
            our_entry(
                ours::EntryType::EntryConfChange,
                130,
                our_conf_change().encode_to_vec(),
            ),
            our_entry(
                ours::EntryType::EntryConfChangeV2,
                131,
                our_conf_change_v2().encode_to_vec(),
            ),
        ],
        commit: 127,
        snapshot: Some(Box::new(our_snapshot())),
        reject: true,
        reject_hint: 99,
        context: b"message-context".to_vec().into(),
        request_snapshot: 42,
        deprecated_priority: 5,
        commit_term: 299,
        priority: -12345,
    }
}

fn theirs_from<T: protobuf::Message>(bytes: &[u8], what: &str) -> T {
    T::parse_from_bytes(bytes).unwrap_or_else(|e| panic!("raft-rs cannot decode our {what}: {e}"))
}

fn ours_from<T: prost::Message + Default>(bytes: &[u8], what: &str) -> T {
    T::decode(bytes).unwrap_or_else(|e| panic!("we cannot decode raft-rs's {what}: {e}"))
}

fn assert_conf_state_eq(o: &ours::ConfState, t: &theirs::ConfState) {
    assert_eq!(o.voters, t.voters, "ConfState.voters");
    assert_eq!(o.learners, t.learners, "ConfState.learners");
    assert_eq!(
        o.voters_outgoing, t.voters_outgoing,
        "ConfState.voters_outgoing"
    );
    assert_eq!(o.learners_next, t.learners_next, "ConfState.learners_next");
    assert_eq!(o.auto_leave, t.auto_leave, "ConfState.auto_leave");
}

fn assert_hard_state_eq(o: &ours::HardState, t: &theirs::HardState) {
    assert_eq!(
        (o.term, o.vote, o.commit),
        (t.term, t.vote, t.commit),
        "HardState (term, vote, commit)"
    );
}

fn assert_conf_change_eq(o: &ours::ConfChange, t: &theirs::ConfChange) {
    assert_eq!(o.id, t.id, "ConfChange.id");
    assert_eq!(
        o.change_type,
        t.get_change_type().value(),
        "ConfChange.change_type"
    );
    assert_eq!(o.node_id, t.node_id, "ConfChange.node_id");
    assert_eq!(o.context[..], t.context[..], "ConfChange.context");
}

fn assert_conf_change_v2_eq(o: &ours::ConfChangeV2, t: &theirs::ConfChangeV2) {
    assert_eq!(
        o.transition,
        t.get_transition().value(),
        "ConfChangeV2.transition"
    );
    assert_eq!(
        o.changes.len(),
        t.changes.len(),
        "ConfChangeV2.changes count"
    );
    for (i, (oc, tc)) in o.changes.iter().zip(t.changes.iter()).enumerate() {
        assert_eq!(
            (oc.change_type, oc.node_id),
            (tc.get_change_type().value(), tc.node_id),
            "ConfChangeV2.changes[{i}]"
        );
    }
    assert_eq!(o.context[..], t.context[..], "ConfChangeV2.context");
}

fn assert_entry_eq(o: &ours::Entry, t: &theirs::Entry) {
    assert_eq!(o.entry_type, t.get_entry_type().value(), "Entry.entry_type");
    assert_eq!(o.term, t.term, "Entry.term");
    assert_eq!(o.index, t.index, "Entry.index");
    assert_eq!(o.data[..], t.data[..], "Entry.data");
    assert_eq!(o.sync_log, t.sync_log, "Entry.sync_log");
    assert_eq!(o.context[..], t.context[..], "Entry.context");
}

fn assert_snapshot_eq(o: &ours::Snapshot, t: &theirs::Snapshot) {
    assert_eq!(o.data[..], t.data[..], "Snapshot.data");
    let om = o.metadata.as_ref();
    assert_eq!(om.is_some(), t.has_metadata(), "Snapshot.metadata presence");
    if let Some(om) = om {
        let tm = t.get_metadata();
        assert_eq!((om.index, om.term), (tm.index, tm.term), "SnapshotMetadata");
        assert_eq!(
            om.conf_state.is_some(),
            tm.has_conf_state(),
            "SnapshotMetadata.conf_state presence"
        );
        if let Some(cs) = &om.conf_state {
            assert_conf_state_eq(cs, tm.get_conf_state());
        }
    }
}

fn assert_message_eq(o: &ours::Message, t: &theirs::Message) {
    assert_eq!(o.msg_type, t.get_msg_type().value(), "Message.msg_type");
    assert_eq!(o.to, t.to, "Message.to");
    assert_eq!(o.from, t.from, "Message.from");
    assert_eq!(o.term, t.term, "Message.term");
    assert_eq!(o.log_term, t.log_term, "Message.log_term");
    assert_eq!(o.index, t.index, "Message.index");
    assert_eq!(o.entries.len(), t.entries.len(), "Message.entries count");
    for (oe, te) in o.entries.iter().zip(t.entries.iter()) {
        assert_entry_eq(oe, te);
    }
    assert_eq!(o.commit, t.commit, "Message.commit");
    assert_eq!(
        o.snapshot.is_some(),
        t.has_snapshot(),
        "Message.snapshot presence"
    );
    if let Some(s) = &o.snapshot {
        assert_snapshot_eq(s, t.get_snapshot());
    }
    assert_eq!(o.reject, t.reject, "Message.reject");
    assert_eq!(o.reject_hint, t.reject_hint, "Message.reject_hint");
    assert_eq!(o.context[..], t.context[..], "Message.context");
    assert_eq!(
        o.request_snapshot, t.request_snapshot,
        "Message.request_snapshot"
    );
    assert_eq!(
        o.deprecated_priority, t.deprecated_priority,
        "Message.deprecated_priority"
    );
    assert_eq!(o.commit_term, t.commit_term, "Message.commit_term");
    assert_eq!(o.priority, t.priority, "Message.priority");
}

/// Every field of ours, encoded by prost, decodes in raft-rs to the same values; raft-rs re-encodes
/// it to bytes that decode back to the original.
#[test]
fn message_with_every_field_set_decodes_in_raft_rs() {
    for t in 0..=18 {
        let msg_type = MessageType::try_from(t).expect("wire value");
        let o = our_full_message(msg_type);
        let bytes = o.encode_to_vec();
        let t: theirs::Message = theirs_from(&bytes, "Message");
        assert_eq!(
            format!("{:?}", t.get_msg_type()),
            format!("{msg_type:?}"),
            "message type {} has another name in raft-rs",
            msg_type as i32
        );
        assert_message_eq(&o, &t);
        // The entries' payloads decode as raft-rs conf changes.
        let cc: theirs::ConfChange = theirs_from(&t.entries[1].data, "ConfChange in an entry");
        assert_conf_change_eq(&our_conf_change(), &cc);
        let cc2: theirs::ConfChangeV2 = theirs_from(&t.entries[2].data, "ConfChangeV2 in an entry");
        assert_conf_change_v2_eq(&our_conf_change_v2(), &cc2);
        assert!(
            t.unknown_fields.fields.is_none(),
            "raft-rs saw unknown fields"
        );
        // Sizes may differ: rust-protobuf 2 writes repeated ids unpacked (see
        // `repeated_ids_decode_packed_and_unpacked`), but nothing is lost either way.
        let back = t.write_to_bytes().expect("raft-rs encodes");
        assert_eq!(ours_from::<ours::Message>(&back, "Message"), o);
    }
}

fn their_conf_state() -> theirs::ConfState {
    theirs::ConfState {
        voters: vec![3, 1 << 45],
        learners: vec![u64::MAX],
        voters_outgoing: vec![3, 4],
        learners_next: vec![8, 9, 10],
        auto_leave: true,
        ..Default::default()
    }
}

fn their_full_message() -> theirs::Message {
    let cc = theirs::ConfChangeV2 {
        transition: theirs::ConfChangeTransition::Implicit,
        changes: RepeatedField::from_vec(vec![theirs::ConfChangeSingle {
            change_type: theirs::ConfChangeType::AddLearnerNode,
            node_id: 11,
            ..Default::default()
        }]),
        context: b"their-ccv2".to_vec().into(),
        ..Default::default()
    };
    let e1 = theirs::Entry {
        entry_type: theirs::EntryType::EntryConfChangeV2,
        term: 9,
        index: u64::MAX - 10,
        data: cc.write_to_bytes().expect("encode").into(),
        context: b"their-entry".to_vec().into(),
        sync_log: true,
        ..Default::default()
    };
    let e2 = theirs::Entry {
        term: 10,
        index: u64::MAX - 9,
        data: vec![7u8; 300].into(),
        ..Default::default()
    };
    let meta = theirs::SnapshotMetadata {
        conf_state: SingularPtrField::some(their_conf_state()),
        index: 1000,
        term: 1 << 40,
        ..Default::default()
    };
    let snap = theirs::Snapshot {
        data: b"their-snapshot".to_vec().into(),
        metadata: SingularPtrField::some(meta),
        ..Default::default()
    };
    theirs::Message {
        msg_type: theirs::MessageType::MsgRequestPreVoteResponse,
        to: 1 << 63,
        from: 3,
        term: 12,
        log_term: 11,
        index: 1 << 35,
        entries: RepeatedField::from_vec(vec![e1, e2]),
        commit: 17,
        commit_term: 6,
        snapshot: SingularPtrField::some(snap),
        request_snapshot: 5,
        reject: true,
        reject_hint: u64::MAX,
        context: b"their-context".to_vec().into(),
        deprecated_priority: u64::MAX,
        priority: i64::MIN,
        ..Default::default()
    }
}

/// Every field of raft-rs's message decodes with prost to the same values; we re-encode it to bytes
/// that raft-rs decodes back to the original.
#[test]
fn raft_rs_message_with_every_field_set_decodes_in_ours() {
    let t = their_full_message();
    let bytes = t.write_to_bytes().expect("raft-rs encodes");
    let o: ours::Message = ours_from(&bytes, "Message");
    assert_message_eq(&o, &t);
    let cc: ours::ConfChangeV2 = ours_from(&o.entries[0].data, "ConfChangeV2 in an entry");
    let their_cc: theirs::ConfChangeV2 = theirs_from(&t.entries[0].data, "ConfChangeV2");
    assert_conf_change_v2_eq(&cc, &their_cc);
    let back = o.encode_to_vec();
    assert_eq!(theirs_from::<theirs::Message>(&back, "Message"), t);
}

/// Every message type value names the same type in both libraries.
#[test]
fn message_type_values_name_the_same_types_in_both_libraries() {
    for v in 0..=18 {
        let o = MessageType::try_from(v).expect("our enum has it");
        let t = theirs::MessageType::from_i32(v).expect("raft-rs's enum has it");
        assert_eq!(format!("{o:?}"), format!("{t:?}"), "value {v}");
    }
    assert!(MessageType::try_from(19).is_err());
    assert!(theirs::MessageType::from_i32(19).is_none());
}

#[test]
fn hard_state_decodes_both_ways() {
    let o = ours::HardState {
        term: u64::MAX,
        vote: 3,
        commit: 1 << 33,
    };
    let t: theirs::HardState = theirs_from(&o.encode_to_vec(), "HardState");
    assert_hard_state_eq(&o, &t);
    let t = theirs::HardState {
        term: 5,
        vote: u64::MAX,
        commit: 4,
        ..Default::default()
    };
    let o: ours::HardState = ours_from(&t.write_to_bytes().expect("encode"), "HardState");
    assert_hard_state_eq(&o, &t);
}

#[test]
fn conf_state_decodes_both_ways() {
    let o = our_conf_state();
    let t: theirs::ConfState = theirs_from(&o.encode_to_vec(), "ConfState");
    assert_conf_state_eq(&o, &t);
    let t = their_conf_state();
    let o: ours::ConfState = ours_from(&t.write_to_bytes().expect("encode"), "ConfState");
    assert_conf_state_eq(&o, &t);
}

#[test]
fn entry_decodes_both_ways() {
    for ty in [
        ours::EntryType::EntryNormal,
        ours::EntryType::EntryConfChange,
        ours::EntryType::EntryConfChangeV2,
    ] {
        let o = our_entry(ty, u64::MAX, b"x".to_vec());
        let t: theirs::Entry = theirs_from(&o.encode_to_vec(), "Entry");
        assert_entry_eq(&o, &t);
        let back: ours::Entry = ours_from(&t.write_to_bytes().expect("encode"), "Entry");
        assert_eq!(back, o);
    }
    let t = their_full_message().entries[0].clone();
    let o: ours::Entry = ours_from(&t.write_to_bytes().expect("encode"), "Entry");
    assert_entry_eq(&o, &t);
}

#[test]
fn snapshot_decodes_both_ways() {
    let o = our_snapshot();
    let t: theirs::Snapshot = theirs_from(&o.encode_to_vec(), "Snapshot");
    assert_snapshot_eq(&o, &t);
    let t = their_full_message().get_snapshot().clone();
    let o: ours::Snapshot = ours_from(&t.write_to_bytes().expect("encode"), "Snapshot");
    assert_snapshot_eq(&o, &t);
    // An empty snapshot is empty in both.
    let empty = ours::Snapshot::default().encode_to_vec();
    assert!(empty.is_empty());
    let t: theirs::Snapshot = theirs_from(&empty, "empty Snapshot");
    assert!(t.is_empty(), "raft-rs sees an empty snapshot");
}

#[test]
fn conf_change_decodes_both_ways() {
    let o = our_conf_change();
    let t: theirs::ConfChange = theirs_from(&o.encode_to_vec(), "ConfChange");
    assert_conf_change_eq(&o, &t);
    let t = theirs::ConfChange {
        id: 8,
        change_type: theirs::ConfChangeType::RemoveNode,
        node_id: u64::MAX,
        context: b"their-cc".to_vec().into(),
        ..Default::default()
    };
    let o: ours::ConfChange = ours_from(&t.write_to_bytes().expect("encode"), "ConfChange");
    assert_conf_change_eq(&o, &t);
}

#[test]
fn conf_change_v2_decodes_both_ways() {
    let o = our_conf_change_v2();
    let t: theirs::ConfChangeV2 = theirs_from(&o.encode_to_vec(), "ConfChangeV2");
    assert_conf_change_v2_eq(&o, &t);
    let t = their_full_message().entries[0].clone();
    let their_cc: theirs::ConfChangeV2 = theirs_from(&t.data, "ConfChangeV2");
    let o: ours::ConfChangeV2 =
        ours_from(&their_cc.write_to_bytes().expect("encode"), "ConfChangeV2");
    assert_conf_change_v2_eq(&o, &their_cc);
}

/// proto3 decoders skip fields they do not know: a message with an extra field 99 decodes in both
/// libraries to the same values as without it.
#[test]
fn both_libraries_skip_unknown_fields() {
    let o = our_full_message(MessageType::MsgAppend);
    let mut bytes = o.encode_to_vec();
    // Field 99, wire type 0 (varint): key = 99 << 3 = 792 = [0x98, 0x06]; value 1.
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    let t: theirs::Message = theirs_from(&bytes, "Message with an unknown field");
    assert_message_eq(&o, &t);
    assert_eq!(
        ours_from::<ours::Message>(&bytes, "Message with an unknown field"),
        o
    );
}

/// Repeated `uint64` ids (ConfState) are packed by default in proto3, and prost writes them packed;
/// rust-protobuf 2 (raft-rs 0.7) writes them one key per value. Parsers must accept both forms
/// (protobuf encoding spec, "packed repeated fields"), and both libraries do.
#[test]
fn repeated_ids_decode_packed_and_unpacked() {
    let o = ours::ConfState {
        voters: vec![1, 2],
        ..Default::default()
    };
    let packed = o.encode_to_vec();
    assert_eq!(
        packed,
        [0x0a, 0x02, 0x01, 0x02],
        "ours writes field 1 packed"
    );
    let t: theirs::ConfState = theirs_from(&packed, "packed ConfState");
    assert_eq!(t.voters, vec![1, 2]);
    let unpacked = t.write_to_bytes().expect("encode");
    assert_eq!(
        unpacked,
        [0x08, 0x01, 0x08, 0x02],
        "raft-rs writes field 1 unpacked"
    );
    let back: ours::ConfState = ours_from(&unpacked, "unpacked ConfState");
    assert_eq!(back, o);
}
