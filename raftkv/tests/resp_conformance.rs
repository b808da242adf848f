//! Redis-protocol conformance of a single-node `raftkv` server: every supported command, sent as
//! hand-written RESP2 frames, answered with the exact bytes Redis would send (errors included:
//! unknown command, wrong arity, INCR of a non-integer, protocol errors). The commands added for
//! client libraries (connection, string and expiry commands) are in `resp_commands.rs`.

mod support;

use support::{exchange, SingleNode as Server};

#[test]
fn ping_answers_pong_or_its_argument_and_echo_echoes() {
    let server = Server::start("ping");
    let mut c = server.client();
    exchange(&mut c, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    exchange(
        &mut c,
        b"*2\r\n$4\r\nping\r\n$5\r\nhello\r\n",
        b"$5\r\nhello\r\n",
    );
    exchange(&mut c, b"PING\r\n", b"+PONG\r\n");
    exchange(
        &mut c,
        b"*2\r\n$4\r\nECHO\r\n$3\r\na b\r\n",
        b"$3\r\na b\r\n",
    );
}

#[test]
fn set_then_get_returns_the_value_and_a_missing_key_is_nil() {
    let server = Server::start("set-get");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
        b"$5\r\nvalue\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", b"$-1\r\n");
    // Values are binary-safe: CRLF inside a bulk string is data.
    exchange(
        &mut c,
        b"*3\r\n$3\r\nset\r\n$3\r\nbin\r\n$4\r\na\r\nb\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$3\r\nget\r\n$3\r\nbin\r\n",
        b"$4\r\na\r\nb\r\n",
    );
    // Overwrite.
    exchange(&mut c, b"SET key other\r\n", b"+OK\r\n");
    exchange(&mut c, b"GET key\r\n", b"$5\r\nother\r\n");
}

#[test]
fn del_and_exists_count_the_keys_that_exist() {
    let server = Server::start("del-exists");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n",
        b"+OK\r\n",
    );
    // EXISTS counts a key each time it is named, as Redis does.
    exchange(
        &mut c,
        b"*4\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\na\r\n$1\r\nz\r\n",
        b":2\r\n",
    );
    exchange(
        &mut c,
        b"*4\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nz\r\n$1\r\nb\r\n",
        b":2\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nDEL\r\n$1\r\na\r\n", b":0\r\n");
    exchange(&mut c, b"*2\r\n$6\r\nEXISTS\r\n$1\r\na\r\n", b":0\r\n");
}

#[test]
fn incr_counts_from_zero_and_refuses_a_non_integer_value() {
    let server = Server::start("incr");
    let mut c = server.client();
    exchange(&mut c, b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", b":1\r\n");
    exchange(&mut c, b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", b":2\r\n");
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$1\r\nn\r\n", b"$1\r\n2\r\n");
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\ns\r\n$3\r\nabc\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$4\r\nINCR\r\n$1\r\ns\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$1\r\ns\r\n", b"$3\r\nabc\r\n");
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\nm\r\n$19\r\n9223372036854775807\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$4\r\nINCR\r\n$1\r\nm\r\n",
        b"-ERR increment or decrement would overflow\r\n",
    );
}

#[test]
fn mset_mget_and_dbsize_cover_many_keys() {
    let server = Server::start("mset");
    let mut c = server.client();
    exchange(&mut c, b"*1\r\n$6\r\nDBSIZE\r\n", b":0\r\n");
    exchange(
        &mut c,
        b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$2\r\n22\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nb\r\n",
        b"*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n",
    );
    exchange(&mut c, b"*1\r\n$6\r\nDBSIZE\r\n", b":2\r\n");
}

#[test]
fn info_reports_role_term_leader_and_indexes() {
    let server = Server::start("info");
    let mut c = server.client();
    exchange(&mut c, b"SET k v\r\n", b"+OK\r\n");
    c.send_raw(b"*1\r\n$4\r\nINFO\r\n").unwrap();
    let raw = c.read_raw_reply().unwrap();
    assert!(
        raw.starts_with(b"$"),
        "INFO is a bulk string: {}",
        raw.escape_ascii()
    );
    let info = support::info(&server.node.addr).expect("INFO parses");
    assert_eq!(info["role"], "leader");
    assert_eq!(info["leader_id"], "1");
    assert_eq!(info["leader_address"], server.node.addr);
    assert!(
        support::info_u64(&info, "term") >= 2,
        "a term after the bootstrap term"
    );
    let (commit, applied) = (
        support::info_u64(&info, "commit_index"),
        support::info_u64(&info, "applied_index"),
    );
    assert!(
        applied >= 3,
        "bootstrap, the leader's empty entry and the SET: {info:?}"
    );
    assert_eq!(
        commit, applied,
        "an idle single node has applied all it committed"
    );
    assert_eq!(info["voters"], "1");
    assert_eq!(info["db0"], "keys=1,expires=0,avg_ttl=0");
    // INFO takes optional section names.
    c.send_raw(b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
        .unwrap();
    assert!(c.read_raw_reply().unwrap().starts_with(b"$"));
}

#[test]
fn raft_admin_commands_report_and_validate() {
    let server = Server::start("admin");
    let mut c = server.client();
    c.send_raw(b"*1\r\n$11\r\nRAFT.STATUS\r\n").unwrap();
    let status = c.read_raw_reply().unwrap();
    let text = String::from_utf8_lossy(&status);
    assert!(text.contains("role:leader\r\n"), "{text}");
    assert!(
        text.contains("progress_1:match="),
        "the leader lists its progress: {text}"
    );
    // A transfer to the leader itself is accepted and has no effect (thesis §3.10).
    exchange(
        &mut c,
        b"*2\r\n$13\r\nRAFT.TRANSFER\r\n$1\r\n1\r\n",
        b"+OK\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$13\r\nRAFT.TRANSFER\r\n$1\r\n9\r\n",
        b"-ERR node 9 is not a voter\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$15\r\nRAFT.REMOVENODE\r\n$1\r\n0\r\n",
        b"-ERR invalid node id: expected a positive integer\r\n",
    );
    exchange(
        &mut c,
        b"*3\r\n$12\r\nRAFT.ADDNODE\r\n$1\r\n2\r\n$7\r\nnowhere\r\n",
        b"-ERR invalid address: expected ip:port\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$12\r\nRAFT.ADDNODE\r\n$1\r\n2\r\n",
        b"-ERR wrong number of arguments for 'raft.addnode' command\r\n",
    );
    // Removing the only voter is refused by the leader's conf change check.
    c.send_raw(b"*2\r\n$15\r\nRAFT.REMOVENODE\r\n$1\r\n1\r\n")
        .unwrap();
    let refused = c.read_raw_reply().unwrap();
    assert!(
        refused.starts_with(b"-ERR conf change refused"),
        "{}",
        refused.escape_ascii()
    );
    exchange(&mut c, b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn unknown_commands_and_wrong_arity_are_errors() {
    let server = Server::start("errors");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*2\r\n$8\r\nFLUSHALL\r\n$5\r\nASYNC\r\n",
        b"-ERR unknown command 'FLUSHALL', with args beginning with: 'ASYNC' \r\n",
    );
    exchange(
        &mut c,
        b"*1\r\n$3\r\nGET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n",
        b"-ERR wrong number of arguments for 'set' command\r\n",
    );
    exchange(
        &mut c,
        b"*4\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n",
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$6\r\nDBSIZE\r\n$1\r\nx\r\n",
        b"-ERR wrong number of arguments for 'dbsize' command\r\n",
    );
    exchange(
        &mut c,
        b"*1\r\n$4\r\nINCR\r\n",
        b"-ERR wrong number of arguments for 'incr' command\r\n",
    );
    exchange(
        &mut c,
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n$2\r\nXX\r\n",
        b"-ERR syntax error\r\n",
    );
    // The connection is still usable after command errors.
    exchange(&mut c, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = Server::start("pipeline");
    let mut c = server.client();
    // Redis runs a connection's commands in order: the GET before the SET must not see it, and
    // the GET after the INCR must see it.
    let mut frames = Vec::new();
    frames.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\np\r\n");
    frames.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n");
    frames.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\np\r\n");
    frames.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\np\r\n");
    frames.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    frames.extend_from_slice(b"*1\r\n$4\r\nNOPE\r\n");
    c.send_raw(&frames).unwrap();
    let expected: [&[u8]; 6] = [
        b"$-1\r\n",
        b"+OK\r\n",
        b":2\r\n",
        b"$1\r\n2\r\n",
        b"+PONG\r\n",
        b"-ERR unknown command 'NOPE', with args beginning with: \r\n",
    ];
    for (i, want) in expected.iter().enumerate() {
        let got = c.read_raw_reply().unwrap();
        assert_eq!(
            got.escape_ascii().to_string(),
            want.escape_ascii().to_string(),
            "reply {i}"
        );
    }
}

#[test]
fn protocol_error_is_reported_and_closes_the_connection() {
    let server = Server::start("protocol");
    let mut c = server.client();
    exchange(
        &mut c,
        b"*1\r\n:1\r\n",
        b"-ERR Protocol error: expected '$', got ':'\r\n",
    );
    assert!(
        c.is_closed_by_server(),
        "the server closes after a protocol error"
    );
    let mut c = server.client();
    exchange(
        &mut c,
        b"*x\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
    assert!(c.is_closed_by_server());
}

#[test]
fn quit_answers_ok_and_closes_the_connection() {
    let server = Server::start("quit");
    let mut c = server.client();
    exchange(&mut c, b"*1\r\n$4\r\nQUIT\r\n", b"+OK\r\n");
    assert!(c.is_closed_by_server(), "the server closes after QUIT");
}
