//! `ConfChangeI` over both wire forms, and the compact text form of conf changes.

use std::borrow::Cow;

use bytes::Bytes;
use prost::Message as _;
use raft_proto::eraftpb::*;
use raft_proto::{
    conf_changes_from_string, conf_changes_to_string, new_conf_change_single, ConfChangeI,
};

fn v1() -> ConfChange {
    ConfChange {
        id: 7,
        change_type: ConfChangeType::AddLearnerNode as i32,
        node_id: 3,
        context: Bytes::from_static(b"ctx"),
    }
}

#[test]
fn v1_converts_to_single_auto_v2() {
    let want = ConfChangeV2 {
        transition: ConfChangeTransition::Auto as i32,
        changes: vec![new_conf_change_single(3, ConfChangeType::AddLearnerNode)],
        context: Bytes::from_static(b"ctx"),
    };
    let cc = v1();
    assert!(matches!(cc.as_v2(), Cow::Owned(_)));
    assert_eq!(*cc.as_v2(), want);
    assert_eq!(cc.as_v1(), Some(&cc));
    assert_eq!(cc.entry_type(), EntryType::EntryConfChange);
    assert_eq!(cc.clone().into_v2(), want);
    // A single Auto change takes the simple protocol.
    assert_eq!(want.enter_joint(), None);
    assert!(!want.leave_joint());
}

#[test]
fn v2_is_borrowed_as_is() {
    let cc = ConfChangeV2 {
        transition: ConfChangeTransition::Explicit as i32,
        changes: conf_changes_from_string("v1 r2").unwrap(),
        context: Bytes::new(),
    };
    assert!(matches!(cc.as_v2(), Cow::Borrowed(b) if *b == cc));
    assert_eq!(cc.as_v1(), None);
    assert_eq!(cc.entry_type(), EntryType::EntryConfChangeV2);
    assert_eq!(cc.clone().into_v2(), cc);
    assert_eq!(cc.enter_joint(), Some(false));
}

#[test]
fn encode_to_bytes_uses_the_own_form() {
    let cc = v1();
    assert_eq!(ConfChange::decode(cc.encode_to_bytes()).unwrap(), cc);
    let cc2 = cc.clone().into_v2();
    assert_eq!(ConfChangeV2::decode(cc2.encode_to_bytes()).unwrap(), cc2);
    assert_ne!(cc.encode_to_bytes(), cc2.encode_to_bytes());
}

#[test]
fn trait_objects_and_generics_accept_both_forms() {
    fn changes_of(cc: &impl ConfChangeI) -> String {
        conf_changes_to_string(&cc.as_v2().changes)
    }
    assert_eq!(changes_of(&v1()), "l3");
    assert_eq!(changes_of(&v1().into_v2()), "l3");
}

#[test]
fn text_form_round_trips() {
    for s in [
        "",
        "v1",
        "l2",
        "r3",
        "v1 l2 r3",
        "v2 v3 l4 r5 v18446744073709551615",
    ] {
        let ccs = conf_changes_from_string(s).unwrap();
        assert_eq!(conf_changes_to_string(&ccs), s);
        assert_eq!(
            conf_changes_from_string(&conf_changes_to_string(&ccs)).unwrap(),
            ccs
        );
    }
    assert_eq!(
        conf_changes_from_string("v1 l2 r3").unwrap(),
        vec![
            new_conf_change_single(1, ConfChangeType::AddNode),
            new_conf_change_single(2, ConfChangeType::AddLearnerNode),
            new_conf_change_single(3, ConfChangeType::RemoveNode),
        ]
    );
}

#[test]
fn text_form_tolerates_extra_whitespace() {
    let ccs = conf_changes_from_string("  v1\tl2   r3\n").unwrap();
    assert_eq!(conf_changes_to_string(&ccs), "v1 l2 r3");
    assert!(conf_changes_from_string("   ").unwrap().is_empty());
}

#[test]
fn text_form_rejects_bad_tokens() {
    let err = conf_changes_from_string("v1 u4").unwrap_err();
    assert!(
        err.contains("\"u4\"") && err.contains("update node"),
        "{err}"
    );
    for bad in [
        "x1",
        "v",
        "vv1",
        "v-1",
        "v+1",
        "v1x",
        "v18446744073709551616",
        "1",
    ] {
        let err = conf_changes_from_string(bad).unwrap_err();
        assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
    }
}

#[test]
fn text_form_shows_unknown_change_types() {
    let odd = ConfChangeSingle {
        change_type: 9,
        node_id: 4,
    };
    let s = conf_changes_to_string(&[new_conf_change_single(1, ConfChangeType::AddNode), odd]);
    assert_eq!(s, "v1 ?9:4");
    assert!(conf_changes_from_string(&s).is_err());
}
