//! The state machine's tests: string commands, expiry by the replicated clock (deterministic
//! whatever the replica's own clock), and snapshots of every version.

use raft_core::eraftpb::SnapshotMetadata;

use super::*;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn set(key: &str, value: &str, condition: SetCondition, get: bool, expiry: SetExpiry) -> Op {
    Op::Set {
        key: k(key),
        value: k(value),
        condition,
        get,
        expiry,
    }
}

fn plain_set(key: &str, value: &str) -> Op {
    set(key, value, SetCondition::Always, false, SetExpiry::Clear)
}

/// Applies `op` stamped `now_ms`, without a session.
fn at(sm: &mut StateMachine, now_ms: u64, op: Op) -> Reply {
    sm.apply_write(&[], WriteEntry { now_ms, op })
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(k(s))
}

fn snapshot_of(sm: &StateMachine) -> Snapshot {
    Snapshot {
        data: sm.encode(),
        metadata: Some(SnapshotMetadata {
            conf_state: Some(sm.conf_state.clone()),
            index: sm.applied_index,
            term: 2,
        }),
    }
}

#[test]
fn incr_by_counts_from_zero_and_refuses_non_integers_and_overflow() {
    let mut sm = StateMachine::default();
    assert_eq!(sm.apply_op(Op::IncrBy(k("n"), 1)), Reply::Integer(1));
    assert_eq!(sm.apply_op(Op::IncrBy(k("n"), 41)), Reply::Integer(42));
    assert_eq!(sm.apply_op(Op::IncrBy(k("n"), -50)), Reply::Integer(-8));
    for bad in ["abc", "", " 1", "01", "+1", "-0", "9223372036854775808"] {
        sm.apply_op(plain_set("s", bad));
        assert_eq!(
            sm.apply_op(Op::IncrBy(k("s"), 1)),
            Reply::err("value is not an integer or out of range"),
            "INCR of {bad:?}"
        );
        assert_eq!(sm.get(b"s"), Some(&k(bad)), "unchanged");
    }
    sm.apply_op(plain_set("m", &i64::MAX.to_string()));
    assert_eq!(
        sm.apply_op(Op::IncrBy(k("m"), 1)),
        Reply::err("increment or decrement would overflow")
    );
    sm.apply_op(plain_set("low", &i64::MIN.to_string()));
    assert_eq!(
        sm.apply_op(Op::IncrBy(k("low"), -1)),
        Reply::err("increment or decrement would overflow")
    );
}

#[test]
fn append_and_setnx_and_del_answer_as_redis() {
    let mut sm = StateMachine::default();
    assert_eq!(
        sm.apply_op(Op::Append(k("a"), k("Hello"))),
        Reply::Integer(5)
    );
    assert_eq!(
        sm.apply_op(Op::Append(k("a"), k(" World"))),
        Reply::Integer(11)
    );
    assert_eq!(sm.get(b"a"), Some(&k("Hello World")));
    assert_eq!(sm.apply_op(Op::SetNx(k("a"), k("x"))), Reply::Integer(0));
    assert_eq!(sm.apply_op(Op::SetNx(k("b"), k("x"))), Reply::Integer(1));
    let del = Op::Del(vec![k("a"), k("zz"), k("a")]);
    assert_eq!(sm.apply_op(del), Reply::Integer(1));
    assert_eq!(sm.len(), 1);
}

#[test]
fn set_options_nx_xx_get_and_keepttl() {
    let mut sm = StateMachine::default();
    let (always, nx, xx) = (
        SetCondition::Always,
        SetCondition::IfAbsent,
        SetCondition::IfPresent,
    );
    let clear = SetExpiry::Clear;
    assert_eq!(sm.apply_op(set("k", "1", xx, false, clear)), Reply::Nil);
    assert_eq!(sm.get(b"k"), None, "XX on a missing key sets nothing");
    assert_eq!(sm.apply_op(set("k", "1", nx, false, clear)), Reply::ok());
    assert_eq!(sm.apply_op(set("k", "2", nx, false, clear)), Reply::Nil);
    assert_eq!(
        sm.apply_op(set("k", "3", nx, true, clear)),
        bulk("1"),
        "NX GET"
    );
    assert_eq!(sm.get(b"k"), Some(&k("1")));
    assert_eq!(sm.apply_op(set("k", "4", xx, true, clear)), bulk("1"));
    assert_eq!(
        sm.apply_op(set("new", "v", always, true, clear)),
        Reply::Nil
    );
    assert_eq!(sm.get(b"new"), Some(&k("v")));
    // KEEPTTL keeps the deadline; a plain SET clears it.
    at(
        &mut sm,
        1_000,
        set("t", "1", always, false, SetExpiry::At(5_000)),
    );
    at(
        &mut sm,
        1_000,
        set("t", "2", always, false, SetExpiry::Keep),
    );
    assert_eq!(sm.ttl(b"t"), Ttl::Remaining(4_000));
    at(&mut sm, 1_000, set("t", "3", always, false, clear));
    assert_eq!(sm.ttl(b"t"), Ttl::Persistent);
    assert_eq!(sm.ttl(b"nope"), Ttl::Missing);
}

#[test]
fn a_key_is_visible_until_an_entry_stamped_at_or_past_its_deadline_is_applied() {
    let mut sm = StateMachine::default();
    let expiry = SetExpiry::At(10_000);
    at(
        &mut sm,
        1_000,
        set("k", "v", SetCondition::Always, false, expiry),
    );
    assert_eq!(sm.ttl(b"k"), Ttl::Remaining(9_000));
    // However late the replica's own clock is, only the log moves the replicated one.
    at(&mut sm, 9_999, Op::ExpireSweep);
    assert_eq!(sm.get(b"k"), Some(&k("v")));
    assert_eq!(sm.ttl(b"k"), Ttl::Remaining(1));
    at(&mut sm, 10_000, Op::ExpireSweep);
    assert_eq!(sm.get(b"k"), None);
    assert_eq!(sm.ttl(b"k"), Ttl::Missing);
    assert_eq!((sm.len(), sm.data.len()), (0, 0), "swept from memory too");
    // An entry stamped earlier (a proposer whose clock is behind) does not bring it back.
    at(&mut sm, 5, Op::IncrBy(k("n"), 1));
    assert_eq!(sm.expiries.clock_ms(), 10_000);
}

#[test]
fn writes_see_an_expired_key_as_absent_before_any_sweep_removed_it() {
    // The key "k" = "5" expired by the clock but still in memory (no entry swept it yet).
    let expired = || {
        let mut sm = StateMachine::default();
        let ex = set("k", "5", SetCondition::Always, false, SetExpiry::At(100));
        at(&mut sm, 0, ex);
        sm.expiries.advance(100);
        assert_eq!((sm.get(b"k"), sm.data.len(), sm.len()), (None, 1, 0));
        sm
    };
    let cases = [
        (Op::IncrBy(k("k"), 1), Reply::Integer(1)),
        (Op::SetNx(k("k"), k("x")), Reply::Integer(1)),
        (Op::Append(k("k"), k("x")), Reply::Integer(1)),
        (Op::Del(vec![k("k")]), Reply::Integer(0)),
        (Op::Persist(k("k")), Reply::Integer(0)),
        (Op::ExpireAt(k("k"), 500), Reply::Integer(0)),
        (
            set("k", "v", SetCondition::IfPresent, true, SetExpiry::Keep),
            Reply::Nil,
        ),
    ];
    for (op, reply) in cases {
        let mut sm = expired();
        assert_eq!(sm.apply_op(op.clone()), reply, "{op:?}");
        let ttl = sm.ttl(b"k");
        assert!(
            ttl == Ttl::Missing || ttl == Ttl::Persistent,
            "{op:?}: the old deadline went with the key, got {ttl:?}"
        );
    }
}

#[test]
fn expire_persist_and_a_deadline_already_passed() {
    let mut sm = StateMachine::default();
    at(&mut sm, 1_000, plain_set("k", "v"));
    assert_eq!(
        at(&mut sm, 1_000, Op::ExpireAt(k("k"), 3_000)),
        Reply::Integer(1)
    );
    assert_eq!(sm.ttl(b"k"), Ttl::Remaining(2_000));
    assert_eq!(sm.expiring_len(), 1);
    assert_eq!(at(&mut sm, 1_000, Op::Persist(k("k"))), Reply::Integer(1));
    assert_eq!(at(&mut sm, 1_000, Op::Persist(k("k"))), Reply::Integer(0));
    assert_eq!(sm.ttl(b"k"), Ttl::Persistent);
    // EXPIRE to a time not after the replicated clock deletes the key at once.
    assert_eq!(
        at(&mut sm, 2_000, Op::ExpireAt(k("k"), 2_000)),
        Reply::Integer(1)
    );
    assert_eq!(sm.get(b"k"), None);
    // So does SET with a deadline already passed (the reply is as if it was set).
    let past = set("p", "v", SetCondition::Always, false, SetExpiry::At(1_500));
    assert_eq!(at(&mut sm, 2_000, past), Reply::ok());
    assert_eq!((sm.get(b"p"), sm.data.len()), (None, 0));
}

#[test]
fn mass_expiry_hides_every_key_at_once_and_removes_them_within_the_budget() {
    let mut sm = StateMachine::default();
    let total = 2 * SWEEP_KEYS_PER_ENTRY + 500;
    let pairs = (0..total).map(|i| (k(&format!("k{i}")), k("v"))).collect();
    at(&mut sm, 0, Op::MSet(pairs));
    for i in 0..total {
        at(&mut sm, 0, Op::ExpireAt(k(&format!("k{i}")), 50));
    }
    at(&mut sm, 0, plain_set("keep", "v"));
    assert!(!sm.sweep_due(49, 1_000));
    assert!(
        sm.sweep_due(50, 1_000),
        "a deadline has passed by the leader's clock"
    );
    at(&mut sm, 60, Op::ExpireSweep);
    assert_eq!(sm.len(), 1, "every expired key is invisible at once");
    assert_eq!(
        sm.data.len(),
        1 + total - SWEEP_KEYS_PER_ENTRY,
        "one budget removed"
    );
    assert_eq!((sm.get(b"k7"), sm.ttl(b"k7")), (None, Ttl::Missing));
    assert!(
        sm.sweep_due(0, 1_000),
        "expired keys wait in memory: sweep again"
    );
    at(&mut sm, 60, Op::ExpireSweep);
    at(&mut sm, 60, Op::ExpireSweep);
    assert_eq!(sm.data.len(), 1);
    assert!(!sm.sweep_due(60, 1_000), "no key has a deadline");
}

#[test]
fn sweeps_are_due_when_the_replicated_clock_lags_the_leaders_by_the_refresh() {
    let mut sm = StateMachine::default();
    let later = set(
        "k",
        "v",
        SetCondition::Always,
        false,
        SetExpiry::At(1_000_000),
    );
    at(&mut sm, 10_000, later);
    assert!(!sm.sweep_due(10_999, 1_000));
    assert!(
        sm.sweep_due(11_000, 1_000),
        "TTL answers would lag by a second"
    );
}

#[test]
fn replicas_that_apply_the_same_log_agree_whatever_their_clocks_and_snapshots() {
    // One log of stamped entries; proposers' clocks disagree (stamps go back and forth).
    let ex = |ms| SetExpiry::At(ms);
    let log: Vec<WriteEntry> = vec![
        (1_000, set("a", "1", SetCondition::Always, false, ex(2_000))),
        (1_200, Op::IncrBy(k("n"), 5)),
        (900, set("b", "2", SetCondition::Always, false, ex(1_950))),
        (1_500, Op::ExpireAt(k("n"), 2_500)),
        (1_940, Op::Append(k("a"), k("x"))),
        (
            1_960,
            set("b", "3", SetCondition::IfAbsent, true, SetExpiry::Keep),
        ),
        (2_000, Op::ExpireSweep),
        (1_000, Op::SetNx(k("a"), k("again"))),
        (2_400, Op::IncrBy(k("n"), 1)),
        (2_600, Op::ExpireSweep),
    ]
    .into_iter()
    .map(|(now_ms, op)| WriteEntry { now_ms, op })
    .collect();
    let mut whole = StateMachine::default();
    let replies: Vec<Reply> = log
        .iter()
        .map(|e| whole.apply_write(&[], e.clone()))
        .collect();
    for cut in 0..=log.len() {
        // A replica restarted from a snapshot taken after `cut` entries.
        let mut first = StateMachine::default();
        let mut seen: Vec<Reply> = log[..cut]
            .iter()
            .map(|e| first.apply_write(&[], e.clone()))
            .collect();
        let mut restored = StateMachine::decode(&snapshot_of(&first)).unwrap();
        assert_eq!(
            restored, first,
            "the snapshot after {cut} entries restores it"
        );
        seen.extend(
            log[cut..]
                .iter()
                .map(|e| restored.apply_write(&[], e.clone())),
        );
        assert_eq!(seen, replies, "replies with a snapshot after {cut} entries");
        assert_eq!(restored, whole, "state with a snapshot after {cut} entries");
    }
    assert_eq!(
        replies[5],
        Reply::Nil,
        "b was set at 900 to expire at 1950 and is gone at 1960: NX sets it, GET finds nothing"
    );
    assert_eq!(
        replies[7],
        Reply::Integer(1),
        "a expired at 2000: SETNX sets it"
    );
    assert_eq!(
        replies[8],
        Reply::Integer(6),
        "n expires at 2500, still there at 2400"
    );
    assert_eq!(whole.get(b"n"), None, "and gone at 2600");
    assert_eq!(
        (whole.get(b"b"), whole.ttl(b"b")),
        (Some(&k("3")), Ttl::Persistent),
        "SET KEEPTTL of a key that had expired keeps no deadline"
    );
}

#[test]
fn snapshot_data_restores_map_deadlines_clock_and_address_book() {
    let mut sm = StateMachine {
        applied_index: 9,
        conf_state: ConfState {
            voters: vec![1, 2],
            ..Default::default()
        },
        ..Default::default()
    };
    sm.members.insert(1, "127.0.0.1:1".to_string());
    sm.members.insert(2, "127.0.0.1:2".to_string());
    at(&mut sm, 7_000, plain_set("k", "v"));
    at(&mut sm, 7_000, Op::ExpireAt(k("k"), 9_000));
    let id = WriteId {
        node: 2,
        incarnation: 5,
        seq: 8,
        floor: 8,
    };
    let incr = || WriteEntry {
        now_ms: 7_500,
        op: Op::IncrBy(k("n"), 1),
    };
    let reply = sm.apply_write(&id.encode(), incr());
    let snapshot = snapshot_of(&sm);
    let mut restored = StateMachine::decode(&snapshot).unwrap();
    assert_eq!(restored, sm);
    assert_eq!(restored.expiries.clock_ms(), 7_500);
    assert_eq!(restored.ttl(b"k"), Ttl::Remaining(1_500));
    // The write session travels with it: a copy of the INCR gets the same reply, no effect.
    assert_eq!(restored.apply_write(&id.encode(), incr()), reply);
    assert_eq!(restored.get(b"n"), Some(&k("1")));
    let truncated = Snapshot {
        data: snapshot.data.slice(..snapshot.data.len() - 1),
        ..snapshot
    };
    assert!(StateMachine::decode(&truncated).is_err());
}

#[test]
fn a_deadline_for_a_key_not_in_the_map_is_refused() {
    let mut sm = StateMachine::default();
    at(&mut sm, 0, plain_set("k", "v"));
    at(&mut sm, 0, Op::ExpireAt(k("k"), 10));
    let mut data = sm.encode().to_vec();
    // The deadline's key is the last bytes but the 8 of its deadline: rename it.
    let at_key = data.len() - 9;
    data[at_key] = b'z';
    let snapshot = Snapshot {
        data: data.into(),
        metadata: Some(SnapshotMetadata::default()),
    };
    assert_eq!(
        StateMachine::decode(&snapshot),
        Err(DecodeError("snapshot deadline"))
    );
}

#[test]
fn version_1_and_2_snapshots_still_decode() {
    let mut sm = StateMachine::default();
    sm.apply_op(plain_set("k", "v"));
    let v3 = sm.encode().to_vec();
    // Version 3 ends with the clock and the deadline count (0 here): version 2 lacks them.
    let mut v2 = v3[..v3.len() - 16].to_vec();
    v2[0] = 2;
    // Version 2 ends with the session count (0 here): version 1 lacks it.
    let mut v1 = v2[..v2.len() - 4].to_vec();
    v1[0] = 1;
    for data in [v2, v1] {
        let snapshot = Snapshot {
            data: data.into(),
            metadata: Some(SnapshotMetadata::default()),
        };
        assert_eq!(StateMachine::decode(&snapshot), Ok(sm.clone()));
    }
    let mut v4 = v3;
    v4[0] = 4;
    let snapshot = Snapshot {
        data: v4.into(),
        metadata: Some(SnapshotMetadata::default()),
    };
    assert!(StateMachine::decode(&snapshot).is_err(), "a later version");
}
