//! Lease reads after a process pause (issue 19): a leader frozen with SIGSTOP for longer than an
//! election timeout, while the others elect a new leader and commit a write, must not answer a
//! read from its old lease when it resumes. The node loop delivers every tick that elapsed during
//! the pause before it steps a message or serves a read.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use raftkv::resp::Reply;
use support::{agreed_leader, wait_for, Client, NodeProcess, TempDir, FAST};

/// How long any one step may take before the test fails (it never hangs).
const STEP: Duration = Duration::from_secs(20);
/// Rounds of pause, failover, write, resume and read.
const ROUNDS: usize = 12;

fn logs(nodes: &[NodeProcess]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- node {} ---\n{}", n.id, n.log_tail(30)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets `key = value` through `addr` until `+OK`.
fn set(nodes: &[NodeProcess], addr: &str, key: &str, value: &str) {
    wait_for(
        &format!("SET {key} {value} via {addr}"),
        STEP,
        || logs(nodes),
        || {
            let mut client = Client::connect(addr, Duration::from_secs(2)).ok()?;
            match client.cmd(&["SET", key, value]).ok()? {
                Reply::Status(s) if s == "OK" => Some(()),
                _ => {
                    thread::sleep(Duration::from_millis(20));
                    None
                }
            }
        },
    )
}

#[test]
fn a_leader_paused_past_its_lease_serves_no_stale_read_when_it_resumes() {
    let dir = TempDir::new("pause");
    let addrs: Vec<(u64, String)> = (1..=3).map(|id| (id, support::free_addr())).collect();
    let peers: Vec<String> = addrs.iter().map(|(id, a)| format!("{id}={a}")).collect();
    let mut options: Vec<String> = FAST.iter().map(|s| s.to_string()).collect();
    options.extend(["--read-mode", "lease", "--peers"].map(String::from));
    options.push(peers.join(","));
    let mut nodes: Vec<NodeProcess> = addrs
        .iter()
        .map(|(id, addr)| NodeProcess::new(&dir.path, *id, addr, &options))
        .collect();
    for node in &mut nodes {
        node.start();
    }
    let mut stale = Vec::new();
    for round in 0..ROUNDS {
        let leader = wait_for("a leader", STEP, || logs(&nodes), || agreed_leader(&addrs));
        let old_addr = addrs[leader as usize - 1].1.clone();
        let old_value = format!("v{round}");
        set(&nodes, &old_addr, "k", &old_value);
        // Freeze the leader for several election timeouts (10 ticks of 25 ms).
        nodes[leader as usize - 1].signal("STOP");
        let others: Vec<(u64, String)> = addrs
            .iter()
            .filter(|(id, _)| *id != leader)
            .cloned()
            .collect();
        let new_leader = wait_for(
            "a new leader",
            STEP,
            || logs(&nodes),
            || agreed_leader(&others),
        );
        let new_value = format!("v{round}-after");
        set(&nodes, &addrs[new_leader as usize - 1].1, "k", &new_value);
        // Connect while it is frozen (the kernel accepts), so the read is the first thing it
        // sees when it resumes.
        let mut client = Client::connect(&old_addr, Duration::from_secs(5)).unwrap();
        client
            .send_raw(&support::encode_command(&["GET", "k"]))
            .unwrap();
        thread::sleep(Duration::from_millis(400));
        let resumed = Instant::now();
        nodes[leader as usize - 1].signal("CONT");
        let reply = client.read_reply();
        if let Ok(Reply::Bulk(v)) = &reply {
            if v == old_value.as_bytes() {
                stale.push((round, resumed.elapsed()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "a resumed leader served the value overwritten during its pause in rounds {stale:?}\n{}",
        logs(&nodes)
    );
}
