//! Redis-protocol conformance of the commands client libraries need beyond the basics, on a
//! single-node server: what libraries send on connecting (`HELLO`, `SELECT`, `CLIENT`, `COMMAND`,
//! `CONFIG`, `AUTH`), `INFO` sections and the keyspace line, the string commands (`INCRBY`,
//! `DECR`, `DECRBY`, `APPEND`, `STRLEN`, `GETSET`, `SETNX`, `SET`'s options) and expiry
//! (`EXPIRE`, `PEXPIRE`, `EXPIREAT`, `TTL`, `PTTL`, `PERSIST`, `SET EX|PX|EXAT|PXAT|KEEPTTL`,
//! `SETEX`, `PSETEX`).
//! Replies are checked byte for byte against what Redis 7 sends.

mod support;

use std::time::Duration;

use raftkv::resp::Reply;
use support::{encode_command as cmd, exchange, wait_for, SingleNode};

#[test]
fn hello_select_and_auth_answer_as_redis_without_a_password() {
    let server = SingleNode::start("hello");
    let mut c = server.client();
    c.send_raw(b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n").unwrap();
    let hello = c.read_raw_reply().unwrap();
    let prefix = b"*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n\
                   $5\r\nproto\r\n:2\r\n$2\r\nid\r\n:";
    assert!(
        hello.starts_with(prefix),
        "HELLO 2: {}",
        hello.escape_ascii()
    );
    let suffix = b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
                   $7\r\nmodules\r\n*0\r\n";
    assert!(hello.ends_with(suffix), "HELLO 2: {}", hello.escape_ascii());
    exchange(
        &mut c,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
        b"-NOPROTO sorry, this protocol version is not supported\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["HELLO", "x"]),
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["HELLO", "2", "FOO"]),
        b"-ERR Syntax error in HELLO option 'FOO'\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["HELLO", "2", "AUTH", "bob", "pw"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    // HELLO's SETNAME names the connection.
    c.send_raw(&cmd(&[
        "HELLO", "2", "AUTH", "default", "x", "SETNAME", "app",
    ]))
    .unwrap();
    assert!(c.read_raw_reply().unwrap().starts_with(b"*14\r\n"));
    exchange(&mut c, &cmd(&["CLIENT", "GETNAME"]), b"$3\r\napp\r\n");
    exchange(&mut c, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", b"+OK\r\n");
    exchange(
        &mut c,
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n",
        b"-ERR DB index is out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SELECT", "zero"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["AUTH", "secret"]),
        b"-ERR AUTH <password> called without any password configured for the default user. \
          Are you sure your configuration is correct?\r\n",
    );
    exchange(&mut c, &cmd(&["AUTH", "default", "any"]), b"+OK\r\n");
}

#[test]
fn client_names_and_ids_belong_to_their_connection() {
    let server = SingleNode::start("client");
    let (mut a, mut b) = (server.client(), server.client());
    exchange(
        &mut a,
        b"*2\r\n$6\r\nCLIENT\r\n$7\r\nGETNAME\r\n",
        b"$-1\r\n",
    );
    exchange(
        &mut a,
        b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$6\r\nworker\r\n",
        b"+OK\r\n",
    );
    exchange(&mut a, &cmd(&["client", "getname"]), b"$6\r\nworker\r\n");
    exchange(&mut b, &cmd(&["CLIENT", "GETNAME"]), b"$-1\r\n");
    let id = |c: &mut support::Client| match c.cmd(&["CLIENT", "ID"]).unwrap() {
        Reply::Integer(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    };
    let (id_a, id_b) = (id(&mut a), id(&mut b));
    assert!(id_a > 0 && id_b > 0 && id_a != id_b, "{id_a} {id_b}");
    assert_eq!(id(&mut a), id_a, "an id stays with its connection");
    exchange(
        &mut a,
        &cmd(&["CLIENT", "SETNAME", "two words"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    );
    exchange(
        &mut a,
        &cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        b"+OK\r\n",
    );
    exchange(
        &mut a,
        &cmd(&["CLIENT", "SETINFO", "LIB-VER", "5.0"]),
        b"+OK\r\n",
    );
    let Reply::Bulk(info) = a.cmd(&["CLIENT", "INFO"]).unwrap() else {
        panic!("CLIENT INFO is a bulk string")
    };
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.starts_with(&format!("id={id_a} addr=127.0.0.1:"))
            && info.contains(" name=worker db=0 ")
            && info.ends_with("lib-name=redis-py lib-ver=5.0\n"),
        "{info}"
    );
    exchange(
        &mut a,
        &cmd(&["CLIENT", "SETNAME"]),
        b"-ERR wrong number of arguments for 'client|setname' command\r\n",
    );
    exchange(
        &mut a,
        &cmd(&["CLIENT", "PAUSE", "10"]),
        b"-ERR unknown subcommand 'PAUSE'. Try CLIENT HELP.\r\n",
    );
    exchange(
        &mut a,
        &cmd(&["CLIENT"]),
        b"-ERR wrong number of arguments for 'client' command\r\n",
    );
}

#[test]
fn command_and_config_describe_the_server() {
    let server = SingleNode::start("command");
    let mut c = server.client();
    let count = raftkv::command::table::TABLE.len();
    exchange(
        &mut c,
        b"*2\r\n$7\r\nCOMMAND\r\n$5\r\nCOUNT\r\n",
        format!(":{count}\r\n").as_bytes(),
    );
    exchange(&mut c, b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n", b"*0\r\n");
    exchange(
        &mut c,
        &cmd(&["COMMAND", "INFO", "GET", "NOPE"]),
        b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
          *0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n",
    );
    match c.cmd(&["COMMAND"]).unwrap() {
        Reply::Array(all) => assert_eq!(all.len(), count),
        other => panic!("COMMAND answered {other:?}"),
    }
    exchange(
        &mut c,
        &cmd(&["COMMAND", "GETKEYS", "GET", "k"]),
        b"-ERR unknown subcommand 'GETKEYS'. Try COMMAND HELP.\r\n",
    );
    // What redis-benchmark asks for.
    exchange(
        &mut c,
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n",
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["CONFIG", "GET", "appendonly"]),
        b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["CONFIG", "GET", "databases", "MAXCLIENTS"]),
        b"*4\r\n$9\r\ndatabases\r\n$1\r\n1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n",
    );
    exchange(&mut c, &cmd(&["CONFIG", "GET", "no-such-thing"]), b"*0\r\n");
    exchange(
        &mut c,
        &cmd(&["CONFIG", "SET", "save", ""]),
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'save'\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["CONFIG", "GET"]),
        b"-ERR wrong number of arguments for 'config|get' command\r\n",
    );
}

#[test]
fn info_sections_and_the_keyspace_line() {
    let server = SingleNode::start("info-sections");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n",
        b"$12\r\n# Keyspace\r\n\r\n",
    );
    exchange(&mut c, &cmd(&["SET", "a", "1"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["SET", "b", "2", "EX", "100"]), b"+OK\r\n");
    let text = |reply| match reply {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    assert_eq!(
        text(c.cmd(&["INFO", "KEYSPACE"]).unwrap()),
        "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
    );
    let server_section = text(c.cmd(&["INFO", "server"]).unwrap());
    assert!(
        server_section.starts_with("# Server\r\n")
            && server_section.contains("redis_version:7.2.0\r\n")
            && !server_section.contains("# Raft"),
        "{server_section}"
    );
    let all = text(c.cmd(&["INFO", "all"]).unwrap());
    assert!(all.contains("# Server\r\n") && all.contains("# Raft\r\n") && all.contains("db0:"));
    assert_eq!(text(c.cmd(&["INFO", "commandstats"]).unwrap()), "");
}

#[test]
fn incrby_decr_decrby_append_strlen_getset_and_setnx() {
    let server = SingleNode::start("strings");
    let mut c = server.client();
    exchange(&mut c, &cmd(&["INCRBY", "n", "10"]), b":10\r\n");
    exchange(&mut c, &cmd(&["DECR", "n"]), b":9\r\n");
    exchange(&mut c, &cmd(&["DECRBY", "n", "20"]), b":-11\r\n");
    exchange(&mut c, &cmd(&["INCRBY", "n", "-1"]), b":-12\r\n");
    exchange(
        &mut c,
        &cmd(&["INCRBY", "n", "x"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["DECRBY", "n", "-9223372036854775808"]),
        b"-ERR decrement would overflow\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["INCRBY", "n", "-9223372036854775807"]),
        b"-ERR increment or decrement would overflow\r\n",
    );
    exchange(&mut c, &cmd(&["GET", "n"]), b"$3\r\n-12\r\n");
    exchange(&mut c, &cmd(&["APPEND", "s", "Hello"]), b":5\r\n");
    exchange(&mut c, &cmd(&["APPEND", "s", " World"]), b":11\r\n");
    exchange(&mut c, &cmd(&["STRLEN", "s"]), b":11\r\n");
    exchange(&mut c, &cmd(&["STRLEN", "missing"]), b":0\r\n");
    exchange(
        &mut c,
        &cmd(&["GETSET", "s", "new"]),
        b"$11\r\nHello World\r\n",
    );
    exchange(&mut c, &cmd(&["GETSET", "fresh", "v"]), b"$-1\r\n");
    exchange(&mut c, &cmd(&["GET", "s"]), b"$3\r\nnew\r\n");
    exchange(&mut c, &cmd(&["SETNX", "s", "other"]), b":0\r\n");
    exchange(&mut c, &cmd(&["SETNX", "t", "other"]), b":1\r\n");
    exchange(&mut c, &cmd(&["GET", "t"]), b"$5\r\nother\r\n");
    exchange(
        &mut c,
        &cmd(&["APPEND", "s"]),
        b"-ERR wrong number of arguments for 'append' command\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["DECRBY", "n"]),
        b"-ERR wrong number of arguments for 'decrby' command\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SETNX", "s", "a", "b"]),
        b"-ERR wrong number of arguments for 'setnx' command\r\n",
    );
}

#[test]
fn set_nx_xx_and_get() {
    let server = SingleNode::start("set-options");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$2\r\nXX\r\n",
        b"$-1\r\n",
    );
    exchange(
        &mut c,
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$2\r\nNX\r\n",
        b"+OK\r\n",
    );
    exchange(&mut c, &cmd(&["SET", "k", "2", "nx"]), b"$-1\r\n");
    exchange(
        &mut c,
        &cmd(&["SET", "k", "3", "XX", "GET"]),
        b"$1\r\n1\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SET", "k", "4", "NX", "GET"]),
        b"$1\r\n3\r\n",
    );
    exchange(&mut c, &cmd(&["SET", "other", "v", "GET"]), b"$-1\r\n");
    exchange(&mut c, &cmd(&["GET", "k"]), b"$1\r\n3\r\n");
    for bad in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "EX", "1", "PX", "1"],
        &["SET", "k", "v", "KEEPTTL", "EX", "1"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "WHATEVER"],
    ] {
        exchange(&mut c, &cmd(bad), b"-ERR syntax error\r\n");
    }
    exchange(
        &mut c,
        &cmd(&["SET", "k", "v", "EX", "soon"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SET", "k", "v", "EX", "0"]),
        b"-ERR invalid expire time in 'set' command\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SET", "k", "v", "PX", "-1"]),
        b"-ERR invalid expire time in 'set' command\r\n",
    );
}

/// A TTL reply as a number.
fn integer(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[test]
fn ttl_expire_persist_and_set_with_a_time() {
    let server = SingleNode::start("expiry");
    let mut c = server.client();
    exchange(&mut c, &cmd(&["TTL", "missing"]), b":-2\r\n");
    exchange(&mut c, &cmd(&["PTTL", "missing"]), b":-2\r\n");
    exchange(&mut c, &cmd(&["SET", "k", "v"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["TTL", "k"]), b":-1\r\n");
    exchange(&mut c, &cmd(&["EXPIRE", "k", "100"]), b":1\r\n");
    exchange(&mut c, &cmd(&["EXPIRE", "missing", "100"]), b":0\r\n");
    // The replicated clock may move on between the two commands (about a second per second):
    // a range, not one value.
    let ttl = integer(c.cmd(&["TTL", "k"]).unwrap());
    assert!((1..=100).contains(&ttl), "TTL after EXPIRE 100: {ttl}");
    let pttl = integer(c.cmd(&["PTTL", "k"]).unwrap());
    assert!((1..=100_000).contains(&pttl), "PTTL: {pttl}");
    exchange(&mut c, &cmd(&["PERSIST", "k"]), b":1\r\n");
    exchange(&mut c, &cmd(&["PERSIST", "k"]), b":0\r\n");
    exchange(&mut c, &cmd(&["TTL", "k"]), b":-1\r\n");
    exchange(&mut c, &cmd(&["PEXPIRE", "k", "50000"]), b":1\r\n");
    // SET KEEPTTL keeps the deadline, a plain SET drops it.
    exchange(&mut c, &cmd(&["SET", "k", "w", "KEEPTTL"]), b"+OK\r\n");
    assert!(integer(c.cmd(&["PTTL", "k"]).unwrap()) > 0);
    exchange(&mut c, &cmd(&["SET", "k", "x"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["PTTL", "k"]), b":-1\r\n");
    exchange(&mut c, &cmd(&["SET", "e", "v", "EX", "100"]), b"+OK\r\n");
    let ttl = integer(c.cmd(&["TTL", "e"]).unwrap());
    assert!((1..=100).contains(&ttl), "TTL after SET EX 100: {ttl}");
    exchange(&mut c, &cmd(&["SETEX", "s", "100", "v"]), b"+OK\r\n");
    let ttl = integer(c.cmd(&["TTL", "s"]).unwrap());
    assert!((1..=100).contains(&ttl), "TTL after SETEX 100: {ttl}");
    exchange(
        &mut c,
        &cmd(&["PSETEX", "s", "0", "v"]),
        b"-ERR invalid expire time in 'psetex' command\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["SET", "a", "v", "EXAT", "99999999999"]),
        b"+OK\r\n",
    );
    assert!(integer(c.cmd(&["TTL", "a"]).unwrap()) > 1_000_000);
    // A deadline already passed deletes the key at once.
    exchange(&mut c, &cmd(&["EXPIRE", "a", "-1"]), b":1\r\n");
    exchange(&mut c, &cmd(&["GET", "a"]), b"$-1\r\n");
    exchange(&mut c, &cmd(&["SET", "p", "v", "PXAT", "1"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["EXISTS", "p"]), b":0\r\n");
    exchange(&mut c, &cmd(&["SET", "q", "v"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["PEXPIREAT", "q", "1"]), b":1\r\n");
    exchange(&mut c, &cmd(&["TTL", "q"]), b":-2\r\n");
    exchange(
        &mut c,
        &cmd(&["EXPIRE", "k", "10", "NX"]),
        b"-ERR Unsupported option NX\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["EXPIRE", "k", "ten"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["EXPIRE", "k", "9223372036854775807"]),
        b"-ERR invalid expire time in 'expire' command\r\n",
    );
    exchange(
        &mut c,
        &cmd(&["TTL"]),
        b"-ERR wrong number of arguments for 'ttl' command\r\n",
    );
}

#[test]
fn a_key_set_with_px_disappears_without_any_other_write() {
    let server = SingleNode::start("expiry-sweep");
    let mut c = server.client();
    exchange(&mut c, &cmd(&["SET", "gone", "v", "PX", "200"]), b"+OK\r\n");
    exchange(&mut c, &cmd(&["SET", "kept", "v"]), b"+OK\r\n");
    // Nothing else is written: the leader's sweep moves the replicated clock past the deadline.
    wait_for(
        "the key to expire",
        Duration::from_secs(15),
        || server.node.log_tail(20),
        || (c.cmd(&["GET", "gone"]).ok()? == Reply::Nil).then_some(()),
    );
    exchange(&mut c, &cmd(&["TTL", "gone"]), b":-2\r\n");
    exchange(&mut c, &cmd(&["DBSIZE"]), b":1\r\n");
    exchange(&mut c, &cmd(&["GET", "kept"]), b"$1\r\nv\r\n");
}
