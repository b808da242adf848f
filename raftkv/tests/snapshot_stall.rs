//! Snapshots must not stall the cluster (issue 19). With a large map stored, every node makes a
//! periodic snapshot at about the same index and a node that was down is sent one and installs
//! it; meanwhile clients keep writing to the leader and reading from the leader and the other
//! follower. No leader may change (no term may move: nobody stopped hearing from the leader), and
//! every request is answered. The worst request latency is reported.
//!
//! `cargo test` runs it with a small map (the mechanics: snapshots are made on every node and one
//! is installed, with no election). The acceptance run of the issue, a 200 MB map and no request
//! above 100 ms, is the ignored test, run with
//! `cargo test -p raftkv --release --test snapshot_stall -- --ignored --nocapture`.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::resp::Reply;
use support::{
    agreed_leader, encode_command, info, info_u64, logs_of, start_cluster, wait_for, Client,
    TempDir, STEP,
};

/// Bytes of one value, and values per `MSET` (one log entry of 256 KiB).
const VALUE_BYTES: usize = 8 * 1024;
const PAIRS_PER_ENTRY: usize = 32;

#[test]
fn snapshots_of_a_small_map_stall_nobody() {
    let report = run(8);
    println!("{report}");
}

#[test]
#[ignore = "the issue's acceptance run: 200 MB, about a minute; run by hand in release"]
fn snapshots_of_a_200_mb_map_keep_every_request_under_100_ms() {
    let report = run(200);
    println!("{report}");
    assert!(
        report.worst < Duration::from_millis(100),
        "a request took {:?} while snapshots were made and installed\n{report}",
        report.worst
    );
}

/// What a run measured.
struct Report {
    megabytes: usize,
    requests: usize,
    worst: Duration,
    worst_what: String,
    load_time: Duration,
    installed_after: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} MB stored in {:.1?}; snapshots made on every node and one installed {:.1?} after \
             the down node restarted; {} requests, the slowest {:?} ({})",
            self.megabytes,
            self.load_time,
            self.installed_after,
            self.requests,
            self.worst,
            self.worst_what
        )
    }
}

/// Stores about `megabytes` MB with node 3 down, then has every node snapshot while node 3
/// restarts and catches up from a snapshot, with clients probing all along.
fn run(megabytes: usize) -> Report {
    let entries = megabytes * 1024 * 1024 / (VALUE_BYTES * PAIRS_PER_ENTRY);
    // The periodic snapshot falls during the probes: a little after the load.
    let snapshot_every = (entries + 200).to_string();
    let dir = TempDir::new("snapshot-stall");
    let (mut nodes, addrs) = start_cluster(
        &dir,
        3,
        &[
            "--snapshot-entries",
            &snapshot_every,
            "--keep-entries",
            "50",
        ],
    );
    let leader = wait_for(
        "a leader",
        STEP,
        || logs_of(&nodes),
        || agreed_leader(&addrs),
    );
    // Node 3 goes down (a follower if possible) and misses the whole load.
    let down = if leader == 3 { 2 } else { 3 };
    nodes[down as usize - 1].kill();
    let up: Vec<(u64, String)> = addrs
        .iter()
        .filter(|(id, _)| *id != down)
        .cloned()
        .collect();
    let leader = wait_for("a leader", STEP, || logs_of(&nodes), || agreed_leader(&up));
    let leader_addr = addrs[leader as usize - 1].1.clone();
    let other = up.iter().find(|(id, _)| *id != leader).unwrap().1.clone();

    let started = Instant::now();
    load(&leader_addr, entries);
    let load_time = started.elapsed();
    let term = info_u64(&info(&leader_addr).unwrap(), "term");

    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let probes: Vec<_> = [(leader_addr.clone(), true), (other.clone(), false)]
        .into_iter()
        .map(|(addr, writes)| {
            let stop = stop.clone();
            let latencies = latencies.clone();
            thread::spawn(move || probe(&addr, writes, &stop, &latencies))
        })
        .collect();
    // Enough small writes to pass the snapshot threshold on every node.
    thread::sleep(Duration::from_millis(300));
    let mut writer = Client::connect(&leader_addr, Duration::from_secs(5)).unwrap();
    for i in 0..300 {
        let reply = writer.cmd(&["SET", &format!("small{i}"), "x"]).unwrap();
        assert_eq!(reply, Reply::Status("OK".into()), "SET small{i}");
    }
    for (id, addr) in &up {
        wait_for(
            &format!("node {id} makes a snapshot"),
            STEP,
            || logs_of(&nodes),
            || (info_u64(&info(addr)?, "snapshots_made") >= 1).then_some(()),
        );
    }
    let restarted = Instant::now();
    nodes[down as usize - 1].start();
    let down_addr = addrs[down as usize - 1].1.clone();
    wait_for(
        "the restarted node installs a snapshot",
        Duration::from_secs(120),
        || logs_of(&nodes),
        || (info_u64(&info(&down_addr)?, "snapshots_installed") >= 1).then_some(()),
    );
    let installed_after = restarted.elapsed();
    // Keep probing a little after the install.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for p in probes {
        p.join().expect("a probe thread panicked");
    }

    for (id, addr) in &addrs {
        let status = info(addr).expect("INFO");
        assert_eq!(
            info_u64(&status, "term"),
            term,
            "node {id} moved to another term: somebody started an election\n{}",
            logs_of(&nodes)
        );
        assert_eq!(info_u64(&status, "leader_id"), leader, "node {id}'s leader");
    }
    let latencies = latencies.lock().unwrap();
    let (worst, worst_what) = latencies
        .iter()
        .max_by_key(|(d, _)| *d)
        .cloned()
        .unwrap_or_default();
    assert!(latencies.len() > 10, "the probes ran: {}", latencies.len());
    Report {
        megabytes,
        requests: latencies.len(),
        worst,
        worst_what,
        load_time,
        installed_after,
    }
}

/// Writes `entries` MSETs of 32 values of 8 KiB through the leader, pipelined 8 at a time.
fn load(addr: &str, entries: usize) {
    let mut client = Client::connect(addr, Duration::from_secs(30)).unwrap();
    let value = "v".repeat(VALUE_BYTES);
    for chunk in (0..entries).collect::<Vec<_>>().chunks(8) {
        for entry in chunk {
            let keys: Vec<String> = (0..PAIRS_PER_ENTRY)
                .map(|i| format!("big{entry}-{i}"))
                .collect();
            let mut args = vec!["MSET"];
            for key in &keys {
                args.push(key);
                args.push(&value);
            }
            client.send_raw(&encode_command(&args)).unwrap();
        }
        for entry in chunk {
            let reply = client.read_reply().unwrap();
            assert_eq!(reply, Reply::Status("OK".into()), "MSET of entry {entry}");
        }
    }
}

/// One request at a time until `stop`: a `SET` and a `GET` of a probe key (only `GET`s when
/// `writes` is false), each timed.
fn probe(addr: &str, writes: bool, stop: &AtomicBool, out: &Mutex<Vec<(Duration, String)>>) {
    let mut client = Client::connect(addr, Duration::from_secs(30)).unwrap();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("probe-{addr}");
        let value = i.to_string();
        let command: Vec<&str> = if writes && i.is_multiple_of(2) {
            vec!["SET", &key, &value]
        } else {
            vec!["GET", "big0-0"]
        };
        let sent = Instant::now();
        let reply = client.cmd(&command).unwrap();
        let took = sent.elapsed();
        assert!(
            !matches!(reply, Reply::Error(_)),
            "{} via {addr}: {reply:?}",
            command[0]
        );
        out.lock()
            .unwrap()
            .push((took, format!("{} via {addr}", command[0])));
        i += 1;
        thread::sleep(Duration::from_millis(5));
    }
}
