//! Peer authentication (issue 19): a forged peer that claims an unknown node id and sends a
//! heartbeat of term 10^12 raised the whole cluster's term. With a cluster secret
//! (`--cluster-secret-file`), a peer must answer a fresh challenge with an HMAC of the secret
//! before any of its messages is taken: the forger is refused, with a log line, and the cluster
//! goes on in its term. Without a secret the same forgery still works, which shows the test's
//! forger is real.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use raft_core::eraftpb::{Message, MessageType};
use raftkv::transport::{encode_frame, encode_handshake};
use support::{
    agreed_leader, info, info_u64, logs_of, set_until_ok, start_cluster, wait_for, NodeProcess,
    TempDir, STEP,
};

const FORGED_TERM: u64 = 1_000_000_000_000;

/// Connects to `addr` as a peer claiming to be node 99, skips or fails any challenge, and sends
/// heartbeats of a huge term to every node id.
fn forge(addr: &str) {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return;
    };
    let _ = conn.write_all(&encode_handshake(99, "127.0.0.1:9"));
    let mut frames = Vec::new();
    for to in 1..=3 {
        let heartbeat = Message {
            msg_type: MessageType::MsgHeartbeat as i32,
            from: 99,
            to,
            term: FORGED_TERM,
            ..Default::default()
        };
        encode_frame(&heartbeat, &mut frames);
    }
    // A wrong answer to the challenge (if one comes), then the frames.
    let _ = conn.write_all(&[0u8; 32]);
    let _ = conn.write_all(&frames);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut sink = Vec::new();
    let _ = conn.read_to_end(&mut sink);
}

/// The largest term any node reports.
fn max_term(nodes: &[NodeProcess], addrs: &[(u64, String)]) -> u64 {
    addrs
        .iter()
        .map(|(id, addr)| {
            let i = wait_for(
                &format!("INFO of node {id}"),
                STEP,
                || logs_of(nodes),
                || info(addr),
            );
            info_u64(&i, "term")
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_forged_peer_is_refused_with_a_cluster_secret_and_obeyed_without() {
    // With a secret: refused, the term stays, the cluster works on.
    let dir = TempDir::new("auth");
    let secret = dir.path.join("cluster-secret");
    std::fs::write(&secret, "a secret of more than sixteen bytes\n").unwrap();
    let option = format!("--cluster-secret-file={}", secret.display());
    let (nodes, addrs) = start_cluster(&dir, 3, &[option.as_str()]);
    let leader = wait_for(
        "a leader",
        STEP,
        || logs_of(&nodes),
        || agreed_leader(&addrs),
    );
    set_until_ok(&nodes, &addrs[leader as usize - 1].1, "k", "before");
    for (_, addr) in &addrs {
        forge(addr);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        max_term(&nodes, &addrs) < FORGED_TERM,
        "a forged heartbeat was taken\n{}",
        logs_of(&nodes)
    );
    let leader = wait_for(
        "a leader",
        STEP,
        || logs_of(&nodes),
        || agreed_leader(&addrs),
    );
    set_until_ok(&nodes, &addrs[leader as usize - 1].1, "k", "after");
    assert!(
        nodes.iter().all(|n| n
            .log_tail(200)
            .contains("refused a peer that did not prove the cluster secret")),
        "every node logs the refusal\n{}",
        logs_of(&nodes)
    );

    // Without: the same forger moves every node to its term.
    let open_dir = TempDir::new("auth-open");
    let (open_nodes, open_addrs) = start_cluster(&open_dir, 3, &[]);
    wait_for(
        "a leader",
        STEP,
        || logs_of(&open_nodes),
        || agreed_leader(&open_addrs),
    );
    for (_, addr) in &open_addrs {
        forge(addr);
    }
    wait_for(
        "the forged term on some node",
        STEP,
        || logs_of(&open_nodes),
        || (max_term(&open_nodes, &open_addrs) >= FORGED_TERM).then_some(()),
    );
}
