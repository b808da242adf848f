//! Golden byte vectors, written by hand from the protobuf encoding rules rather than produced by the
//! encoder, so that they fail if a field number, wire type or scalar type in `eraftpb.proto` changes.
//!
//! Reminders: a key is the varint `field_number << 3 | wire_type` (0 varint, 1 fixed64, 2 length
//! delimited, 5 fixed32); varints are little-endian base 128 with the high bit as "more"; proto3 omits
//! zero values; repeated scalars are packed into one length-delimited field; prost writes fields in
//! field-number order, which is what the vectors below assume.

use std::fmt::Debug;

use bytes::Bytes;
use prost::Message as _;
use raft_proto::eraftpb::*;

/// Asserts that `value` encodes to exactly `golden` and that `golden` decodes to exactly `value`.
fn check<M: prost::Message + Default + PartialEq + Debug>(value: &M, golden: &[u8]) {
    assert_eq!(value.encode_to_vec(), golden, "encoding of {value:?}");
    assert_eq!(&M::decode(golden).expect("golden vector decodes"), value);
}

fn entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from_static(data),
        ..Default::default()
    }
}

fn msg_append() -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        to: 2,
        from: 1,
        term: 3,
        log_term: 2,
        index: 7,
        commit: 5,
        entries: vec![entry(3, 8, b"a"), entry(3, 9, b"bc")],
        ..Default::default()
    }
}

#[rustfmt::skip]
const MSG_APPEND: &[u8] = &[
    0x08, 0x03,             // 1 msg_type (varint) = 3 MsgAppend
    0x10, 0x02,             // 2 to = 2
    0x18, 0x01,             // 3 from = 1
    0x20, 0x03,             // 4 term = 3
    0x28, 0x02,             // 5 log_term = 2
    0x30, 0x07,             // 6 index = 7
    0x3a, 0x07,             // 7 entries (length delimited), 7 bytes:
        0x10, 0x03,         //   2 term = 3 (1 entry_type = EntryNormal is zero: omitted)
        0x18, 0x08,         //   3 index = 8
        0x22, 0x01, b'a',   //   4 data, 1 byte: "a"
    0x3a, 0x08,             // 7 entries, 8 bytes:
        0x10, 0x03,         //   2 term = 3
        0x18, 0x09,         //   3 index = 9
        0x22, 0x02, b'b', b'c', // 4 data, 2 bytes: "bc"
    0x40, 0x05,             // 8 commit = 5 (key 8 << 3 = 0x40)
];

#[test]
fn golden_msg_append() {
    check(&msg_append(), MSG_APPEND);
}

#[test]
fn golden_vote_response_rejected() {
    let m = Message {
        msg_type: MessageType::MsgRequestVoteResponse as i32,
        to: 1,
        from: 2,
        term: 5,
        reject: true,
        reject_hint: 0,
        ..Default::default()
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x06, // 1 msg_type = 6 MsgRequestVoteResponse
        0x10, 0x01, // 2 to = 1
        0x18, 0x02, // 3 from = 2
        0x20, 0x05, // 4 term = 5
        0x50, 0x01, // 10 reject (bool as varint) = true; key 10 << 3 = 0x50. 11 reject_hint = 0: omitted
    ];
    check(&m, &golden);
}

#[test]
fn golden_hard_state() {
    let hs = HardState {
        term: 7,
        vote: 3,
        commit: 42,
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x07, // 1 term = 7
        0x10, 0x03, // 2 vote = 3
        0x18, 0x2a, // 3 commit = 42
    ];
    check(&hs, &golden);
}

#[test]
fn golden_multi_byte_varints() {
    let hs = HardState {
        term: 300,
        vote: u64::MAX,
        commit: 0,
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0xac, 0x02, // 1 term = 300 = 0b10_0101100: 0x2c | 0x80, then 0x02
        0x10,             // 2 vote = u64::MAX: 64 one bits = 9 groups of 7 plus a final 1
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                          // 3 commit = 0: omitted
    ];
    check(&hs, &golden);
}

#[test]
fn golden_conf_state_packed() {
    let cs = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    #[rustfmt::skip]
    let golden = [
        0x0a, 0x03, 0x01, 0x02, 0x03, // 1 voters, packed (length delimited), 3 bytes: 1 2 3
        0x12, 0x01, 0x04,             // 2 learners, packed, 1 byte: 4
                                      // 3, 4 empty and 5 auto_leave = false: omitted
    ];
    check(&cs, &golden);
}

#[test]
fn golden_negative_priority() {
    let m = Message {
        msg_type: MessageType::MsgRequestVote as i32,
        to: 2,
        from: 1,
        term: 2,
        priority: -1,
        ..Default::default()
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x05, // 1 msg_type = 5 MsgRequestVote
        0x10, 0x02, // 2 to = 2
        0x18, 0x01, // 3 from = 1
        0x20, 0x02, // 4 term = 2
        0x80, 0x01, // key of 16 priority: 16 << 3 = 128 needs two varint bytes
        // int64 (not sint64) -1 is its two's complement as u64: always 10 bytes
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    check(&m, &golden);
}

/// Every field of Message, Entry, Snapshot, SnapshotMetadata and ConfState set once.
#[test]
fn golden_every_message_field() {
    let m = Message {
        msg_type: MessageType::MsgReadIndexResp as i32,
        to: 2,
        from: 1,
        term: 4,
        log_term: 3,
        index: 9,
        entries: vec![Entry {
            entry_type: EntryType::EntryConfChangeV2 as i32,
            term: 3,
            index: 10,
            data: Bytes::from_static(b"d"),
            sync_log: true,
            context: Bytes::from_static(b"c"),
        }],
        commit: 8,
        snapshot: Some(Box::new(Snapshot {
            data: Bytes::from_static(b"s"),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(ConfState {
                    voters: vec![1],
                    learners: vec![2],
                    voters_outgoing: vec![3],
                    learners_next: vec![2],
                    auto_leave: true,
                }),
                index: 7,
                term: 2,
            }),
        })),
        reject: true,
        reject_hint: 6,
        context: Bytes::from_static(b"ctx"),
        request_snapshot: 5,
        deprecated_priority: 7,
        commit_term: 3,
        priority: 300,
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x10,                   // 1 msg_type = 16 MsgReadIndexResp
        0x10, 0x02,                   // 2 to = 2
        0x18, 0x01,                   // 3 from = 1
        0x20, 0x04,                   // 4 term = 4
        0x28, 0x03,                   // 5 log_term = 3
        0x30, 0x09,                   // 6 index = 9
        0x3a, 0x0e,                   // 7 entries, 14 bytes:
            0x08, 0x02,               //   1 entry_type = 2 EntryConfChangeV2
            0x10, 0x03,               //   2 term = 3
            0x18, 0x0a,               //   3 index = 10
            0x22, 0x01, b'd',         //   4 data "d"
            0x28, 0x01,               //   5 sync_log = true
            0x32, 0x01, b'c',         //   6 context "c"
        0x40, 0x08,                   // 8 commit = 8
        0x4a, 0x19,                   // 9 snapshot, 25 bytes:
            0x0a, 0x01, b's',         //   1 data "s"
            0x12, 0x14,               //   2 metadata, 20 bytes:
                0x0a, 0x0e,           //     1 conf_state, 14 bytes:
                    0x0a, 0x01, 0x01, //       1 voters [1]
                    0x12, 0x01, 0x02, //       2 learners [2]
                    0x1a, 0x01, 0x03, //       3 voters_outgoing [3]
                    0x22, 0x01, 0x02, //       4 learners_next [2]
                    0x28, 0x01,       //       5 auto_leave = true
                0x10, 0x07,           //     2 index = 7
                0x18, 0x02,           //     3 term = 2
        0x50, 0x01,                   // 10 reject = true
        0x58, 0x06,                   // 11 reject_hint = 6
        0x62, 0x03, b'c', b't', b'x', // 12 context "ctx"
        0x68, 0x05,                   // 13 request_snapshot = 5
        0x70, 0x07,                   // 14 deprecated_priority = 7
        0x78, 0x03,                   // 15 commit_term = 3
        0x80, 0x01, 0xac, 0x02,       // 16 priority = 300 (two-byte key, two-byte value)
    ];
    check(&m, &golden);
}

#[test]
fn golden_conf_change_v1() {
    let cc = ConfChange {
        id: 1,
        change_type: ConfChangeType::RemoveNode as i32,
        node_id: 3,
        context: Bytes::from_static(b"x"),
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x01,       // 1 id = 1
        0x10, 0x01,       // 2 change_type = 1 RemoveNode
        0x18, 0x03,       // 3 node_id = 3
        0x22, 0x01, b'x', // 4 context "x"
    ];
    check(&cc, &golden);
}

#[test]
fn golden_conf_change_v2() {
    let cc = ConfChangeV2 {
        transition: ConfChangeTransition::Explicit as i32,
        changes: vec![
            ConfChangeSingle {
                change_type: ConfChangeType::AddNode as i32,
                node_id: 2,
            },
            ConfChangeSingle {
                change_type: ConfChangeType::AddLearnerNode as i32,
                node_id: 4,
            },
        ],
        context: Bytes::from_static(b"y"),
    };
    #[rustfmt::skip]
    let golden = [
        0x08, 0x02,             // 1 transition = 2 Explicit
        0x12, 0x02,             // 2 changes, 2 bytes:
            0x10, 0x02,         //   2 node_id = 2 (1 change_type = AddNode is zero: omitted)
        0x12, 0x04,             // 2 changes, 4 bytes:
            0x08, 0x02,         //   1 change_type = 2 AddLearnerNode
            0x10, 0x04,         //   2 node_id = 4
        0x1a, 0x01, b'y',       // 3 context "y"
    ];
    check(&cc, &golden);
}

#[test]
fn golden_snapshot_without_data() {
    let s = Snapshot {
        data: Bytes::new(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(ConfState::default()),
            index: 10,
            term: 2,
        }),
    };
    #[rustfmt::skip]
    let golden = [
                          // 1 data empty: omitted
        0x12, 0x06,       // 2 metadata, 6 bytes:
            0x0a, 0x00,   //   1 conf_state: a set sub-message is written even when empty
            0x10, 0x0a,   //   2 index = 10
            0x18, 0x02,   //   3 term = 2
    ];
    check(&s, &golden);
}

#[test]
fn zero_values_encode_to_nothing() {
    assert!(Message::default().encode_to_vec().is_empty());
    assert!(Entry::default().encode_to_vec().is_empty());
    assert!(HardState::default().encode_to_vec().is_empty());
    assert!(ConfState::default().encode_to_vec().is_empty());
    assert!(ConfChangeV2::default().encode_to_vec().is_empty());
}

// ---- decoders accept what a conforming peer may send (INTEROP.md "Encoding") ----

#[test]
fn decode_skips_unknown_fields() {
    let mut bytes = MSG_APPEND.to_vec();
    #[rustfmt::skip]
    bytes.extend_from_slice(&[
        0x98, 0x06, 0x2a,                   // 99 varint: key 99 << 3 = 792 = 0x18 | 0x80, 0x06; value 42
        0x92, 0x03, 0x02, 0xab, 0xcd,       // 50 length delimited: key 402 = 0x92 0x03; 2 bytes
        0x99, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, // 51 fixed64: key 409 = 0x99 0x03; 8 bytes
        0xa5, 0x03, 1, 2, 3, 4,             // 52 fixed32: key 421 = 0xa5 0x03; 4 bytes
    ]);
    assert_eq!(Message::decode(&bytes[..]).unwrap(), msg_append());

    // Unknown fields before known ones, and inside a nested entry, too.
    #[rustfmt::skip]
    let nested = [
        0x98, 0x06, 0x01,                // 99 varint = 1 (unknown)
        0x08, 0x03,                      // 1 msg_type = MsgAppend
        0x3a, 0x05,                      // 7 entries, 5 bytes:
            0x10, 0x03,                  //   2 term = 3
            0x98, 0x06, 0x07,            //   99 varint = 7 (unknown)
    ];
    let m = Message::decode(&nested[..]).unwrap();
    assert_eq!(m.msg_type, MessageType::MsgAppend as i32);
    assert_eq!(
        m.entries,
        vec![Entry {
            term: 3,
            ..Default::default()
        }]
    );
}

#[test]
fn decode_accepts_any_field_order() {
    #[rustfmt::skip]
    let hs = [
        0x18, 0x2a, // 3 commit = 42
        0x08, 0x07, // 1 term = 7
        0x10, 0x03, // 2 vote = 3
    ];
    let want = HardState {
        term: 7,
        vote: 3,
        commit: 42,
    };
    assert_eq!(HardState::decode(&hs[..]).unwrap(), want);

    // MSG_APPEND with commit first and msg_type last; repeated entries keep their relative order.
    let mut m = vec![0x40, 0x05];
    m.extend_from_slice(&MSG_APPEND[2..MSG_APPEND.len() - 2]);
    m.extend_from_slice(&[0x08, 0x03]);
    assert_eq!(Message::decode(&m[..]).unwrap(), msg_append());
}

#[test]
fn decode_accepts_unpacked_repeated_and_last_scalar_wins() {
    #[rustfmt::skip]
    let cs = [
        0x08, 0x01, // 1 voters, unpacked (one varint per element): 1
        0x12, 0x01, 0x04, // 2 learners, packed: 4
        0x08, 0x02, // 1 voters: 2
        0x0a, 0x01, 0x03, // 1 voters, packed: 3 (mixing both forms is legal)
    ];
    let want = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    assert_eq!(ConfState::decode(&cs[..]).unwrap(), want);

    let hs = [0x08, 0x01, 0x08, 0x09]; // 1 term = 1, then 1 term = 9: the last one wins
    assert_eq!(HardState::decode(&hs[..]).unwrap().term, 9);
}

#[test]
fn decode_keeps_unknown_enum_values() {
    // proto3 enums are open: an unknown value is kept as its number, and re-encoded unchanged.
    let bytes = [0x08, 0x63, 0x10, 0x02]; // 1 msg_type = 99, 2 to = 2
    let m = Message::decode(&bytes[..]).unwrap();
    assert_eq!(m.msg_type, 99);
    assert!(MessageType::try_from(m.msg_type).is_err());
    assert_eq!(m.encode_to_vec(), bytes);
}

#[test]
fn decode_rejects_truncated_input() {
    for cut in 1..MSG_APPEND.len() {
        // Cuts at field boundaries are valid (shorter) messages; the rest must be errors, never panics.
        let _ = Message::decode(&MSG_APPEND[..cut]);
    }
    assert!(Message::decode(&MSG_APPEND[..MSG_APPEND.len() - 1]).is_err());
    assert!(Message::decode(&MSG_APPEND[..16]).is_err()); // inside the first entry: 7 bytes announced, 2 present
}
