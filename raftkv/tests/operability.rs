//! Operability (issue 19): a maximum client count (Redis's `maxclients`), an idle client timeout
//! (Redis's `timeout`), a node removed from the cluster that still answers `INFO`, and a restart
//! that keeps the node's settings.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use raftkv::resp::Reply;
use support::{
    info, logs_of, start_cluster, wait_for, wait_leader, Client, NodeProcess, TempDir, FAST, STEP,
};

fn ping(client: &mut Client) -> bool {
    client.cmd(&["PING"]).ok() == Some(Reply::Status("PONG".into()))
}

#[test]
fn clients_past_the_maximum_are_refused_and_idle_ones_closed() {
    let dir = TempDir::new("limits");
    let (nodes, addrs) = start_cluster(
        &dir,
        1,
        &["--max-clients", "2", "--client-timeout-secs", "1"],
    );
    let addr = addrs[0].1.clone();
    wait_for(
        "the node to answer",
        STEP,
        || logs_of(&nodes),
        || info(&addr),
    );
    let mut first = Client::connect(&addr, STEP).unwrap();
    let mut second = Client::connect(&addr, STEP).unwrap();
    assert!(ping(&mut first) && ping(&mut second));
    let mut third = Client::connect(&addr, STEP).unwrap();
    assert_eq!(
        third.cmd(&["PING"]).unwrap(),
        Reply::Error("ERR max number of clients reached".into())
    );
    assert!(third.is_closed_by_server(), "the refused client is closed");
    drop(first);
    let again = wait_for(
        "a slot to free up",
        STEP,
        || logs_of(&nodes),
        || {
            let mut c = Client::connect(&addr, STEP).ok()?;
            ping(&mut c).then_some(c)
        },
    );
    drop(again);

    // Idle for over a second: closed by the server.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "the idle connection ends without a reply");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "closed after {waited:?}, not after about a second"
    );
    // A connection used more often than the timeout stays open.
    drop(second);
    let mut busy = Client::connect(&addr, STEP).unwrap();
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(400));
        assert!(ping(&mut busy), "a client that keeps talking is not closed");
    }
}

#[test]
fn a_removed_node_still_answers_info_and_refuses_the_rest() {
    let dir = TempDir::new("removed");
    let (nodes, addrs) = start_cluster(&dir, 3, &[]);
    let leader = wait_leader(&nodes, &addrs);
    let addr = addrs[leader as usize - 1].1.clone();
    // The leader applies its own removal, so it knows it was removed.
    wait_for(
        "the removal to be applied",
        STEP,
        || logs_of(&nodes),
        || {
            let mut client = Client::connect(&addr, STEP).ok()?;
            match client.cmd(&["RAFT.REMOVENODE", &leader.to_string()]).ok()? {
                Reply::Status(s) if s == "OK" => Some(()),
                _ => {
                    thread::sleep(Duration::from_millis(50));
                    None
                }
            }
        },
    );
    let said = wait_for(
        "INFO to say the node was removed",
        STEP,
        || logs_of(&nodes),
        || info(&addr).filter(|i| i.get("role").map(String::as_str) == Some("removed")),
    );
    assert_eq!(said["role"], "removed");
    let mut client = Client::connect(&addr, STEP).unwrap();
    assert!(
        matches!(client.cmd(&["GET", "k"]).unwrap(), Reply::Error(e) if e.contains("removed")),
        "a removed node serves no reads"
    );
}

#[test]
fn a_restart_keeps_the_settings_and_refuses_contrary_ones() {
    let dir = TempDir::new("settings");
    let addr = support::free_addr();
    let peers = format!("1={addr}");
    let with = |extra: &[&str]| -> Vec<String> {
        FAST.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .chain(["--peers".to_string(), peers.clone()])
            .collect()
    };
    let mut first = NodeProcess::new(
        &dir.path,
        1,
        &addr,
        &with(&["--write-mode", "redirect", "--read-mode", "lease"]),
    );
    first.start();
    let i = wait_for("INFO", STEP, || first.log_tail(20), || info(&addr));
    assert_eq!(
        (i["write_mode"].as_str(), i["read_mode"].as_str()),
        ("redirect", "lease")
    );
    first.kill();

    // The README's restart: the same id, address and data directory, nothing else.
    let mut plain = NodeProcess::new(&dir.path, 1, &addr, &[]);
    plain.start();
    let i = wait_for(
        "INFO after a plain restart",
        STEP,
        || plain.log_tail(20),
        || info(&addr),
    );
    assert_eq!(
        (i["write_mode"].as_str(), i["read_mode"].as_str()),
        ("redirect", "lease")
    );
    plain.kill();

    // A contrary setting: the node refuses to start and says why.
    let mut contrary = NodeProcess::new(&dir.path, 1, &addr, &with(&["--write-mode", "forward"]));
    contrary.start();
    let log = wait_for(
        "the refusal",
        STEP,
        || contrary.log_tail(20),
        || {
            let log = contrary.log_tail(20);
            log.contains("--write-mode forward (stored: redirect)")
                .then_some(log)
        },
    );
    assert!(log.contains("disagree"), "{log}");
}
