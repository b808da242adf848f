//! The event-driven connections (issue 20): pipelined commands of mixed kinds are answered in
//! request order, on the leader and on a follower; and a client that sends without reading
//! cannot grow the server's memory without limit while other clients go on being served.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use raftkv::resp::Reply;
use support::{
    encode_command, info, info_u64, start_cluster, wait_leader, Client, SingleNode, TempDir, STEP,
};

/// One pipeline mixing writes, reads and connection commands, and the replies Redis would give,
/// in order: `SET` and `INCR` followed at once by reads of what they wrote, `CLIENT SETNAME`
/// followed by `CLIENT GETNAME`, `PING`s in between.
fn mixed_pipeline(prefix: &str, rounds: usize) -> (Vec<u8>, Vec<Reply>) {
    let (mut frames, mut expected) = (Vec::new(), Vec::new());
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let counter = format!("{prefix}-counter");
    for i in 0..rounds {
        let key = format!("{prefix}-k{}", i % 7);
        let value = format!("v{i}");
        let name = format!("n{i}");
        let count = (i + 1).to_string();
        let commands: [(Vec<&str>, Reply); 7] = [
            (vec!["SET", &key, &value], Reply::ok()),
            (vec!["GET", &key], bulk(&value)),
            (vec!["INCR", &counter], Reply::Integer(i as i64 + 1)),
            (
                vec!["MGET", &key, &counter],
                Reply::Array(vec![bulk(&value), bulk(&count)]),
            ),
            (vec!["CLIENT", "SETNAME", &name], Reply::ok()),
            (vec!["PING"], Reply::Status("PONG".into())),
            (vec!["CLIENT", "GETNAME"], bulk(&name)),
        ];
        for (args, reply) in commands {
            frames.extend(encode_command(&args));
            expected.push(reply);
        }
    }
    (frames, expected)
}

#[test]
fn pipelined_writes_and_reads_are_answered_in_request_order() {
    let dir = TempDir::new("pipelining");
    let (nodes, addrs) = start_cluster(&dir, 3, &[]);
    let leader = wait_leader(&nodes, &addrs);
    let follower = addrs.iter().find(|(id, _)| *id != leader).unwrap();
    let leader = addrs.iter().find(|(id, _)| *id == leader).unwrap();
    for (role, addr) in [("leader", &leader.1), ("follower", &follower.1)] {
        let counters = || {
            let info = info(addr).expect("INFO");
            (
                info_u64(&info, "reads_served"),
                info_u64(&info, "read_rounds"),
            )
        };
        let (served_before, rounds_before) = counters();
        let (frames, expected) = mixed_pipeline(role, 150);
        let mut client = Client::connect(addr, STEP).unwrap();
        // All in one write: the server sees long runs of every kind in each read.
        client.send_raw(&frames).unwrap();
        for (n, want) in expected.iter().enumerate() {
            let got = client.read_reply().unwrap();
            assert_eq!(&got, want, "reply {n} on the {role}, in request order");
        }
        // A GET and an MGET per round of the pipeline, each after a write: INFO counts them
        // and the read index requests they took (at least one, at most one per read).
        let (served, rounds) = counters();
        assert_eq!(served - served_before, 300, "reads served on the {role}");
        let asked = rounds - rounds_before;
        assert!(
            (1..=300).contains(&asked),
            "{asked} read index requests for 300 reads on the {role}"
        );
    }
}

/// The resident and the peak resident memory of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the node's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn a_client_that_does_not_read_cannot_grow_the_server() {
    const VALUE_BYTES: usize = 256 * 1024;
    const GETS: usize = 2000;
    // Unbounded, the server would hold all the replies: 500 MiB.
    const BOUND_KIB: u64 = 160 * 1024;
    let server = SingleNode::start("slow-reader");
    let pid = server.node.pid().expect("a running node");
    let value = vec![b'x'; VALUE_BYTES];
    let mut frame = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n".to_vec();
    frame.extend(format!("${VALUE_BYTES}\r\n").as_bytes());
    frame.extend(&value);
    frame.extend(b"\r\n");
    let mut writer = server.client();
    writer.send_raw(&frame).unwrap();
    assert_eq!(writer.read_reply().unwrap(), Reply::ok());
    let (rss_before, _) = memory_kib(pid);

    let mut slow = TcpStream::connect(&server.node.addr).unwrap();
    slow.set_read_timeout(Some(STEP)).unwrap();
    let gets = encode_command(&["GET", "big"]).repeat(GETS);
    slow.write_all(&gets).unwrap();

    // Meanwhile other clients are served, a read of the large value included.
    for round in 0..20 {
        let mut other = server.client();
        assert_eq!(
            other.cmd(&["SET", "small", &round.to_string()]).unwrap(),
            Reply::ok(),
            "a write of another client while one does not read"
        );
        assert_eq!(
            other.cmd(&["GET", "small"]).unwrap(),
            Reply::Bulk(round.to_string().into_bytes())
        );
        assert_eq!(
            other.cmd(&["GET", "big"]).unwrap(),
            Reply::Bulk(value.clone())
        );
        thread::sleep(Duration::from_millis(50));
    }

    // Every reply arrives, whole and in order, once the client reads.
    let mut expected = format!("${VALUE_BYTES}\r\n").into_bytes();
    expected.extend(&value);
    expected.extend(b"\r\n");
    let mut reply = vec![0u8; expected.len()];
    for n in 0..GETS {
        slow.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("reply {n} of {GETS}: {e}"));
        assert!(reply == expected, "reply {n} is the value");
    }
    let (_, peak) = memory_kib(pid);
    assert!(
        peak.saturating_sub(rss_before) < BOUND_KIB,
        "the server's peak memory grew by {} MiB while a client pipelined {GETS} GETs of \
         {} KiB without reading (bound {} MiB)",
        peak.saturating_sub(rss_before) / 1024,
        VALUE_BYTES / 1024,
        BOUND_KIB / 1024
    );
}
