//! Exact outputs of the one-line describers: transcripts depend on them, so any change shows up here.

use bytes::Bytes;
use raft_proto::eraftpb::*;
use raft_proto::*;

fn entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from_static(data),
        ..Default::default()
    }
}

fn conf_state() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    }
}

#[test]
fn describe_append() {
    let m = Message {
        msg_type: MessageType::MsgAppend as i32,
        to: 2,
        from: 1,
        term: 3,
        log_term: 2,
        index: 7,
        commit: 5,
        entries: vec![entry(2, 8, b"a"), entry(3, 9, b"b")],
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        r#"1->2 MsgAppend Term:3 Log:2/7 Commit:5 Entries:[2/8 EntryNormal "a", 3/9 EntryNormal "b"]"#
    );
}

#[test]
fn describe_rejections_and_optional_fields() {
    let m = Message {
        msg_type: MessageType::MsgAppendResponse as i32,
        to: 1,
        from: 2,
        term: 3,
        log_term: 2,
        index: 7,
        reject: true,
        reject_hint: 4,
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        "2->1 MsgAppendResponse Term:3 Log:2/7 Rejected (Hint: 4)"
    );

    let m = Message {
        msg_type: MessageType::MsgHeartbeat as i32,
        to: 2,
        from: 1,
        term: 3,
        commit: 5,
        commit_term: 3,
        context: Bytes::from_static(b"ri-1"),
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        r#"1->2 MsgHeartbeat Term:3 Log:0/0 Commit:5 CommitTerm:3 Context:"ri-1""#
    );

    let m = Message {
        msg_type: MessageType::MsgRequestVote as i32,
        to: 3,
        from: 1,
        term: 4,
        log_term: 3,
        index: 9,
        request_snapshot: 6,
        priority: -1,
        deprecated_priority: 2,
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        "1->3 MsgRequestVote Term:4 Log:3/9 RequestSnapshot:6 Priority:-1 DeprecatedPriority:2"
    );
}

#[test]
fn describe_snapshot_message() {
    let snap = Snapshot {
        data: Bytes::from_static(b"state"),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state()),
            index: 10,
            term: 2,
        }),
    };
    let m = Message {
        msg_type: MessageType::MsgSnapshot as i32,
        to: 2,
        from: 1,
        term: 3,
        snapshot: Some(Box::new(snap.clone())),
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        "1->2 MsgSnapshot Term:3 Log:0/0 Snapshot: Index:10 Term:2 ConfState:Voters:[1 2 3] \
         VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false"
    );
    assert_eq!(
        describe_snapshot(&snap),
        "Index:10 Term:2 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] \
         AutoLeave:false"
    );
    // A snapshot field that is set but empty is not shown.
    let m = Message {
        snapshot: Some(Box::new(Snapshot::default())),
        ..m
    };
    assert_eq!(describe_message(&m), "1->2 MsgSnapshot Term:3 Log:0/0");
    assert_eq!(
        describe_snapshot(&Snapshot::default()),
        "Index:0 Term:0 ConfState:Voters:[] VotersOutgoing:[] Learners:[] LearnersNext:[] \
         AutoLeave:false"
    );
}

#[test]
fn describe_unknown_types_without_panicking() {
    let m = Message {
        msg_type: 99,
        to: 2,
        from: 1,
        entries: vec![Entry {
            entry_type: 7,
            ..entry(1, 1, b"x")
        }],
        ..Default::default()
    };
    assert_eq!(
        describe_message(&m),
        r#"1->2 MessageType(99) Term:0 Log:0/0 Entries:[1/1 EntryType(7) "x"]"#
    );
}

#[test]
fn describe_entry_payloads() {
    assert_eq!(describe_entry(&entry(1, 5, b"")), r#"1/5 EntryNormal """#);
    assert_eq!(
        describe_entry(&entry(1, 5, b"say \"hi\"")),
        r#"1/5 EntryNormal "say \"hi\"""#
    );
    assert_eq!(
        describe_entry(&entry(1, 5, b"\x00\xffab")),
        "1/5 EntryNormal 0x00ff6162"
    );
    // Control characters make it binary, even in valid UTF-8.
    assert_eq!(
        describe_entry(&entry(1, 5, b"a\n")),
        "1/5 EntryNormal 0x610a"
    );
    let long_text = Entry {
        data: Bytes::from("x".repeat(100)),
        ..entry(1, 5, b"")
    };
    assert_eq!(
        describe_entry(&long_text),
        format!("1/5 EntryNormal \"{}\"...(100B)", "x".repeat(64))
    );
    let long_binary = Entry {
        data: Bytes::from(vec![0xab; 40]),
        ..entry(1, 5, b"")
    };
    assert_eq!(
        describe_entry(&long_binary),
        format!("1/5 EntryNormal 0x{}...(40B)", "ab".repeat(16))
    );
    // Cut at a character boundary: 63 ASCII bytes, then a 2-byte character that would cross 64.
    let multibyte = Entry {
        data: Bytes::from(format!("{}é", "y".repeat(63))),
        ..entry(1, 5, b"")
    };
    assert_eq!(
        describe_entry(&multibyte),
        format!("1/5 EntryNormal \"{}\"...(65B)", "y".repeat(63))
    );
    let with_context = Entry {
        context: Bytes::from_static(b"c1"),
        ..entry(2, 6, b"put")
    };
    assert_eq!(
        describe_entry(&with_context),
        r#"2/6 EntryNormal "put" Context:"c1""#
    );
}

#[test]
fn describe_conf_change_entries() {
    let v2 = ConfChangeV2 {
        changes: conf_changes_from_string("v2 v3 l4 r5").unwrap(),
        ..Default::default()
    };
    let e = Entry {
        entry_type: EntryType::EntryConfChangeV2 as i32,
        data: v2.encode_to_bytes(),
        ..entry(1, 5, b"")
    };
    assert_eq!(describe_entry(&e), "1/5 EntryConfChangeV2 v2 v3 l4 r5");

    let explicit = ConfChangeV2 {
        transition: ConfChangeTransition::Explicit as i32,
        ..v2
    };
    let e = Entry {
        data: explicit.encode_to_bytes(),
        ..e
    };
    assert_eq!(
        describe_entry(&e),
        "1/5 EntryConfChangeV2 v2 v3 l4 r5 Explicit"
    );

    // Leaving a joint config: no changes, Auto.
    let e = Entry {
        data: Bytes::new(),
        ..e
    };
    assert_eq!(describe_entry(&e), "1/5 EntryConfChangeV2");

    let v1 = ConfChange {
        change_type: ConfChangeType::RemoveNode as i32,
        node_id: 3,
        ..Default::default()
    };
    let e = Entry {
        entry_type: EntryType::EntryConfChange as i32,
        data: v1.encode_to_bytes(),
        ..entry(2, 7, b"")
    };
    assert_eq!(describe_entry(&e), "2/7 EntryConfChange r3");

    let garbage = Entry {
        data: Bytes::from_static(b"\xff"),
        ..e
    };
    assert_eq!(
        describe_entry(&garbage),
        "2/7 EntryConfChange <undecodable ConfChange 0xff>"
    );
}

#[test]
fn describe_states() {
    let hs = HardState {
        term: 1,
        vote: 2,
        commit: 3,
    };
    assert_eq!(describe_hard_state(&hs), "Term:1 Vote:2 Commit:3");
    assert_eq!(
        describe_conf_state(&conf_state()),
        "Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false"
    );
    let joint = ConfState {
        voters: vec![3, 1],
        voters_outgoing: vec![1, 2],
        learners_next: vec![2],
        auto_leave: true,
        ..Default::default()
    };
    assert_eq!(
        describe_conf_state(&joint),
        "Voters:[3 1] VotersOutgoing:[1 2] Learners:[] LearnersNext:[2] AutoLeave:true"
    );
}
