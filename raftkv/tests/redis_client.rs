//! A real client library against a real cluster: the `redis` crate (sync API, as an application
//! would use it) connects to a 3-node raftkv cluster unchanged, through its connection handshake
//! (`CLIENT SETINFO`, and `SELECT` or `HELLO 3` when asked for), and runs string commands,
//! `SET`'s options, expiry, `MGET`, `DEL` and a pipeline; a follower serves reads that see the
//! leader's writes and expiries.

mod support;

use std::time::Duration;

use redis::{Commands, ExistenceCheck, SetExpiry, SetOptions};
use support::{logs_of, start_cluster, wait_for, wait_leader, TempDir, STEP};

/// A connection through the `redis` crate to `addr`, with reads that give up rather than hang.
fn connect(addr: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("a valid URL");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the redis crate cannot connect to {addr}: {e}"));
    con.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    con
}

#[test]
fn the_redis_crate_works_unchanged_against_a_three_node_cluster() {
    let dir = TempDir::new("redis-crate");
    let (nodes, addrs) = start_cluster(&dir, 3, &[]);
    let leader = wait_leader(&nodes, &addrs);
    let addr_of = |id: u64| addrs.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    let follower = addrs
        .iter()
        .map(|(id, _)| *id)
        .find(|id| *id != leader)
        .unwrap();
    let mut con = connect(&addr_of(leader));

    // Plain strings and counters.
    let () = con.set("greeting", "hello").unwrap();
    let got: Option<String> = con.get("greeting").unwrap();
    assert_eq!(got.as_deref(), Some("hello"));
    let missing: Option<String> = con.get("nope").unwrap();
    assert_eq!(missing, None);
    assert_eq!(con.incr::<_, _, i64>("visits", 5).unwrap(), 5);
    assert_eq!(con.incr::<_, _, i64>("visits", 1).unwrap(), 6);
    assert_eq!(con.decr::<_, _, i64>("visits", 10).unwrap(), -4);
    let not_a_number = con.incr::<_, _, i64>("greeting", 1).unwrap_err();
    assert_eq!(
        not_a_number.detail(),
        Some("value is not an integer or out of range"),
        "{not_a_number}"
    );
    assert_eq!(con.append::<_, _, i64>("greeting", " world").unwrap(), 11);
    assert_eq!(con.strlen::<_, i64>("greeting").unwrap(), 11);
    assert!(con.set_nx::<_, _, bool>("fresh", "1").unwrap());
    assert!(!con.set_nx::<_, _, bool>("fresh", "2").unwrap());

    // SET's options: NX, XX, GET.
    let nx = SetOptions::default().conditional_set(ExistenceCheck::NX);
    let set: Option<String> = con.set_options("opt", "1", nx).unwrap();
    assert_eq!(set.as_deref(), Some("OK"));
    let set: Option<String> = con.set_options("opt", "2", nx).unwrap();
    assert_eq!(set, None, "NX on an existing key sets nothing");
    let xx_get = SetOptions::default()
        .conditional_set(ExistenceCheck::XX)
        .get(true);
    let old: Option<String> = con.set_options("opt", "3", xx_get).unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    let old: Option<String> = con.set_options("absent", "3", xx_get).unwrap();
    assert_eq!(old, None);
    assert!(!con.exists::<_, bool>("absent").unwrap(), "XX sets nothing");

    // Expiry: SET EX, SETEX, EXPIRE, TTL, PERSIST.
    let ex = SetOptions::default().with_expiration(SetExpiry::EX(100));
    let () = con.set_options("session", "s", ex).unwrap();
    let ttl: i64 = con.ttl("session").unwrap();
    assert!((1..=100).contains(&ttl), "TTL after SET EX 100: {ttl}");
    let () = con.set_ex("cache", "c", 50).unwrap();
    let ttl: i64 = con.ttl("cache").unwrap();
    assert!((1..=50).contains(&ttl), "TTL after SETEX 50: {ttl}");
    assert_eq!(con.ttl::<_, i64>("greeting").unwrap(), -1, "no deadline");
    assert_eq!(con.ttl::<_, i64>("nope").unwrap(), -2, "no key");
    assert!(con.expire::<_, bool>("greeting", 30).unwrap());
    let ttl: i64 = con.ttl("greeting").unwrap();
    assert!((1..=30).contains(&ttl), "TTL after EXPIRE 30: {ttl}");
    assert!(con.persist::<_, bool>("greeting").unwrap());
    assert_eq!(con.ttl::<_, i64>("greeting").unwrap(), -1);
    assert!(!con.expire::<_, bool>("nope", 30).unwrap());

    // MGET and DEL.
    let () = con.mset(&[("a", "1"), ("b", "2")]).unwrap();
    let values: Vec<Option<String>> = con.mget(&["a", "nope", "b"]).unwrap();
    assert_eq!(values, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(con.del::<_, i64>(&["a", "b", "nope"]).unwrap(), 2);

    // A pipeline: commands sent together, replies in order.
    let (counted, value, ttl): (i64, String, i64) = redis::pipe()
        .set("p", 10)
        .ignore()
        .incr("p", 5)
        .get("p")
        .pexpire("p", 60_000)
        .ignore()
        .pttl("p")
        .query(&mut con)
        .unwrap();
    assert_eq!((counted, value.as_str()), (15, "15"));
    assert!((1..=60_000).contains(&ttl), "PTTL in the pipeline: {ttl}");

    // The connection's own state.
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("it")
        .query(&mut con)
        .unwrap();
    let name: Option<String> = redis::cmd("CLIENT").arg("GETNAME").query(&mut con).unwrap();
    assert_eq!(name.as_deref(), Some("it"));
    let () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();

    // A follower: its reads see every write acknowledged before them, and a key expires there
    // as on the leader (the leader's sweep is replicated), with no write to it.
    let mut on_follower = connect(&addr_of(follower));
    let got: Option<String> = on_follower.get("greeting").unwrap();
    assert_eq!(got.as_deref(), Some("hello world"));
    assert_eq!(on_follower.get::<_, i64>("visits").unwrap(), -4);
    let ttl: i64 = on_follower.ttl("session").unwrap();
    assert!((1..=100).contains(&ttl), "TTL on a follower: {ttl}");
    let px = SetOptions::default().with_expiration(SetExpiry::PX(300));
    let () = con.set_options("short", "v", px).unwrap();
    let got: Option<String> = on_follower.get("short").unwrap();
    assert!(
        got.is_none() || got.as_deref() == Some("v"),
        "the follower reads the write or its expiry: {got:?}"
    );
    wait_for(
        "the key to expire on the follower",
        STEP,
        || logs_of(&nodes),
        || {
            on_follower
                .get::<_, Option<String>>("short")
                .ok()?
                .is_none()
                .then_some(())
        },
    );
    assert_eq!(on_follower.ttl::<_, i64>("short").unwrap(), -2);
    // A write sent to the follower is forwarded to the leader; the leader reads it back.
    assert_eq!(on_follower.incr::<_, _, i64>("visits", 4).unwrap(), 0);
    assert_eq!(con.get::<_, i64>("visits").unwrap(), 0);

    // What the crate sends when asked for another database or for RESP3 is refused clearly.
    let other_db = redis::Client::open(format!("redis://{}/1", addr_of(leader))).unwrap();
    let refused = other_db.get_connection_with_timeout(Duration::from_secs(5));
    let error = refused.err().expect("SELECT 1 is refused");
    assert!(
        error.to_string().contains("DB index is out of range"),
        "{error}"
    );
    let resp3 = redis::Client::open(format!("redis://{}/?protocol=resp3", addr_of(leader)));
    let refused = resp3
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5));
    let error = refused.err().expect("HELLO 3 is refused");
    assert!(error.to_string().contains("NOPROTO"), "{error}");
}
