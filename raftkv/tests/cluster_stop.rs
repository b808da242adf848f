//! `raftkv cluster` stops every node of its cluster, a node the user killed and restarted by hand
//! included (issue 19), and a data directory is used by one process at a time.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{agreed_leader, info, wait_for, NodeProcess, TempDir, FAST, STEP};

/// Waits up to `STEP` for `child` to exit; its exit code (`None` if killed by a signal).
fn wait_exit(child: &mut Child, what: &str) -> Option<i32> {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "{what} did not exit");
        thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

#[test]
fn stopping_a_cluster_stops_a_node_restarted_by_hand() {
    let dir = TempDir::new("cluster-stop");
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["cluster", "--nodes", "3", "--dir"])
        .arg(&dir.path)
        .args(FAST)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // "node 1: 127.0.0.1:PORT  (pid N, log ...)"
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    let mut nodes: Vec<(u64, String, u32)> = Vec::new();
    while nodes.len() < 3 {
        let line = lines.next().expect("cluster output").unwrap();
        let Some(rest) = line.strip_prefix("node ") else {
            continue;
        };
        let (id, rest) = rest.split_once(": ").unwrap();
        let (addr, rest) = rest.split_once("  (pid ").unwrap();
        let pid = rest.split(',').next().unwrap();
        nodes.push((id.parse().unwrap(), addr.to_string(), pid.parse().unwrap()));
    }
    // Keep reading, so the cluster never blocks on a full pipe.
    let reader = thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let addrs: Vec<(u64, String)> = nodes.iter().map(|(id, a, _)| (*id, a.clone())).collect();
    let no_logs = String::new;
    wait_for("a leader", STEP, no_logs, || agreed_leader(&addrs));

    // Node 2 is killed and restarted by hand, outside the cluster process.
    let (_, addr2, pid2) = nodes[1].clone();
    signal(pid2, "KILL");
    let node2_dir = dir.path.join("node-2");
    wait_for("node 2's directory to be free", STEP, no_logs, || {
        raftkv::storage::lock::lock_holder(&node2_dir)
            .is_none()
            .then_some(())
    });
    let mut restarted = NodeProcess::new(&dir.path, 2, &addr2, &[]);
    restarted.start();
    wait_for("the restarted node to answer", STEP, no_logs, || {
        info(&addr2)
    });

    signal(cluster.id(), "TERM");
    assert_eq!(wait_exit(&mut cluster, "the cluster"), Some(130));
    for id in 1..=3 {
        let dir = dir.path.join(format!("node-{id}"));
        assert_eq!(
            raftkv::storage::lock::lock_holder(&dir),
            None,
            "node {id} still runs"
        );
    }
    wait_for("the node restarted by hand to exit", STEP, no_logs, || {
        (!restarted.is_alive()).then_some(())
    });
    let output = reader.join().unwrap();
    assert!(
        output.iter().any(|l| l == "raftkv: stopping the cluster"),
        "{output:?}"
    );
}

#[test]
fn a_second_node_on_a_data_directory_in_use_is_refused() {
    let dir = TempDir::new("dir-lock");
    let addr = support::free_addr();
    let peers = format!("1={addr}");
    let options: Vec<String> = FAST
        .iter()
        .map(|s| s.to_string())
        .chain(["--peers".to_string(), peers.clone()])
        .collect();
    let mut first = NodeProcess::new(&dir.path, 1, &addr, &options);
    first.start();
    wait_for(
        "the node to answer",
        STEP,
        || first.log_tail(20),
        || info(&addr),
    );
    let other_addr = support::free_addr();
    let second = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args([
            "node",
            "--id",
            "1",
            "--addr",
            &other_addr,
            "--peers",
            &peers,
        ])
        .arg("--data-dir")
        .arg(dir.path.join("node-1"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second node started");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let pid = fs::read_to_string(dir.path.join("node-1").join("LOCK")).unwrap();
    assert!(
        stderr.contains(&format!(
            "is in use by another process (pid {})",
            pid.trim()
        )),
        "{stderr}"
    );
    // The first node goes on serving.
    assert!(info(&addr).is_some());
}
