//! Clusters of real `raftkv` processes on loopback: writes through every node, SIGKILL of the
//! leader and failover with no acknowledged write lost, restart and catch-up from a snapshot,
//! adding a node (`RAFT.ADDNODE`), leadership transfer, removing a node (`RAFT.REMOVENODE`), a
//! node without a quorum refusing reads rather than serving stale data, and the redirect write
//! mode with lease-based reads.

mod support;

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use raftkv::resp::Reply;
use support::{agreed_leader, info, info_u64, wait_for, Client, NodeProcess, TempDir, FAST};

/// How long any one step may take before the test fails (it never hangs).
const STEP: Duration = Duration::from_secs(20);

struct Cluster {
    /// Declared before `dir`: the processes are killed before their directory is removed.
    nodes: Vec<NodeProcess>,
    dir: TempDir,
    /// Every write a node acknowledged: key to value.
    acked: BTreeMap<String, String>,
}

impl Cluster {
    /// Starts nodes 1..=n of a new cluster with the fast clock and `extra` options.
    fn start(name: &str, n: u64, extra: &[&str]) -> Cluster {
        let dir = TempDir::new(name);
        let addrs: Vec<(u64, String)> = (1..=n).map(|id| (id, support::free_addr())).collect();
        let peers: Vec<String> = addrs.iter().map(|(id, a)| format!("{id}={a}")).collect();
        let mut options: Vec<String> = FAST.iter().chain(extra).map(|s| s.to_string()).collect();
        options.extend(["--peers".to_string(), peers.join(",")]);
        let mut nodes = Vec::new();
        for (id, addr) in &addrs {
            let mut node = NodeProcess::new(&dir.path, *id, addr, &options);
            node.start();
            nodes.push(node);
        }
        Cluster {
            nodes,
            dir,
            acked: BTreeMap::new(),
        }
    }

    /// The tail of every node's log, for failure messages.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ({}) ---\n{}", n.id, n.addr, n.log_tail(40)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn node(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn addr(&self, id: u64) -> String {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.addr.clone())
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The running nodes.
    fn live(&self) -> Vec<(u64, String)> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| (n.id, n.addr.clone()))
            .collect()
    }

    /// Waits until the running nodes agree on a leader, and returns it.
    fn leader(&self) -> u64 {
        let live = self.live();
        wait_for(
            "the running nodes to agree on a leader",
            STEP,
            || self.logs(),
            || agreed_leader(&live),
        )
    }

    /// A node's `INFO`, waiting for it to answer.
    fn info(&self, id: u64) -> BTreeMap<String, String> {
        let addr = self.addr(id);
        wait_for(
            &format!("INFO from node {id}"),
            STEP,
            || self.logs(),
            || info(&addr),
        )
    }

    /// Sends a command to node `via` until it answers `+OK` (retrying after errors such as "no
    /// leader" during an election, and after connection failures).
    fn ok_via(&self, via: u64, args: &[&str]) {
        let addr = self.addr(via);
        let what = format!("node {via} to answer +OK to {args:?}");
        wait_for(
            &what,
            STEP,
            || self.logs(),
            || {
                let mut client = Client::connect(&addr, Duration::from_secs(5)).ok()?;
                match client.cmd(args).ok()? {
                    Reply::Status(s) if s == "OK" => Some(()),
                    _ => {
                        thread::sleep(Duration::from_millis(50));
                        None
                    }
                }
            },
        )
    }

    /// Writes `key = value` through node `via` until acknowledged, and records it.
    fn set(&mut self, via: u64, key: &str, value: &str) {
        self.ok_via(via, &["SET", key, value]);
        self.acked.insert(key.to_string(), value.to_string());
    }

    /// Reads every acknowledged key through node `via` (a linearizable MGET) and fails at once if
    /// any value differs: a stale or lost value is never acceptable, only a retryable error is.
    fn check_all_readable(&self, via: u64) {
        let addr = self.addr(via);
        let keys: Vec<&str> = self.acked.keys().map(String::as_str).collect();
        let expected: Vec<Reply> = self
            .acked
            .values()
            .map(|v| Reply::Bulk(v.as_bytes().to_vec()))
            .collect();
        let mut args = vec!["MGET"];
        args.extend(&keys);
        let got = wait_for(
            &format!("node {via} to answer an MGET"),
            STEP,
            || self.logs(),
            || {
                let mut client = Client::connect(&addr, Duration::from_secs(5)).ok()?;
                match client.cmd(&args).ok()? {
                    Reply::Array(values) => Some(values),
                    _ => {
                        thread::sleep(Duration::from_millis(50));
                        None
                    }
                }
            },
        );
        for ((key, want), got) in keys.iter().zip(&expected).zip(&got) {
            assert_eq!(
                got,
                want,
                "node {via} lost or misread acknowledged key {key}\n{}",
                self.logs()
            );
        }
        assert_eq!(got.len(), expected.len());
    }

    /// Waits until node `id` reports `voters` as its membership.
    fn wait_voters(&self, id: u64, voters: &str) {
        let addr = self.addr(id);
        wait_for(
            &format!("node {id} to have voters {voters}"),
            STEP,
            || self.logs(),
            || info(&addr).filter(|i| i["voters"] == voters),
        );
    }

    /// Waits until node `id` has applied at least `index`.
    fn wait_applied(&self, id: u64, index: u64) {
        let addr = self.addr(id);
        wait_for(
            &format!("node {id} to apply index {index}"),
            STEP,
            || self.logs(),
            || info(&addr).filter(|i| info_u64(i, "applied_index") >= index),
        );
    }
}

#[test]
fn cluster_survives_leader_sigkill_restart_and_membership_changes() {
    // Small snapshot intervals, so that a node down for a while must be sent a snapshot.
    let mut cluster = Cluster::start(
        "failover",
        3,
        &["--snapshot-entries", "20", "--keep-entries", "5"],
    );
    cluster.leader();

    // Writes through every node: followers forward theirs to the leader through Raft.
    for id in 1..=3 {
        for j in 0..10 {
            cluster.set(id, &format!("before-{id}-{j}"), &format!("v{id}.{j}"));
        }
    }
    for id in 1..=3 {
        cluster.check_all_readable(id);
    }

    // SIGKILL the leader: a new one takes over and nothing acknowledged is lost (§5.4).
    let old = cluster.leader();
    cluster.node(old).kill();
    let new = cluster.leader();
    assert_ne!(new, old, "a killed node cannot still lead");
    let survivors: Vec<u64> = cluster.live().iter().map(|(id, _)| *id).collect();
    assert_eq!(survivors.len(), 2);
    for id in &survivors {
        cluster.check_all_readable(*id);
    }
    // More writes while it is down: enough for the others to snapshot and compact past its log.
    for j in 0..60 {
        let via = survivors[j % 2];
        cluster.set(via, &format!("during-{j}"), &j.to_string());
    }
    for id in &survivors {
        cluster.check_all_readable(*id);
    }

    // Restart it: it catches up, from a snapshot since its next entries were compacted away.
    let leader = cluster.leader();
    let commit = info_u64(&cluster.info(leader), "commit_index");
    cluster.node(old).start();
    cluster.wait_applied(old, commit);
    cluster.check_all_readable(old);
    let restarted = cluster.info(old);
    assert!(
        info_u64(&restarted, "snapshots_installed") >= 1,
        "node {old} was behind the leader's first index and must have been sent a snapshot: \
         {restarted:?}\n{}",
        cluster.logs()
    );

    // Add a fourth node: it starts empty and learns everything from the leader (a snapshot
    // first, as every node added later does).
    let leader = cluster.leader();
    let addr4 = support::free_addr();
    let join: Vec<String> = FAST
        .iter()
        .map(|s| s.to_string())
        .chain(["--join".to_string()])
        .collect();
    let mut fourth = NodeProcess::new(&cluster.dir.path, 4, &addr4, &join);
    fourth.start();
    cluster.nodes.push(fourth);
    cluster.ok_via(leader, &["RAFT.ADDNODE", "4", &addr4]);
    let commit = info_u64(&cluster.info(leader), "commit_index");
    cluster.wait_applied(4, commit);
    cluster.check_all_readable(4);
    for (id, _) in cluster.live() {
        cluster.wait_voters(id, "1,2,3,4");
    }

    // Hand leadership to the new node (thesis §3.10); asked again if an attempt times out.
    let what = "node 4 to lead after RAFT.TRANSFER 4";
    wait_for(
        what,
        STEP,
        || cluster.logs(),
        || {
            let leader = agreed_leader(&cluster.live())?;
            if leader == 4 {
                return Some(());
            }
            let mut client = Client::connect(&cluster.addr(leader), Duration::from_secs(5)).ok()?;
            let _ = client.cmd(&["RAFT.TRANSFER", "4"]);
            thread::sleep(Duration::from_millis(200));
            None
        },
    );

    // Remove the restarted node, asking a follower (the change is forwarded to the leader).
    let follower = if old == 1 { 2 } else { 1 };
    let old_id = old.to_string();
    cluster.ok_via(follower, &["RAFT.REMOVENODE", &old_id]);
    let expected_voters: Vec<String> = [1, 2, 3, 4]
        .iter()
        .filter(|id| **id != old)
        .map(u64::to_string)
        .collect();
    cluster.node(old).kill();
    let remaining: Vec<u64> = cluster.live().iter().map(|(id, _)| *id).collect();
    for id in &remaining {
        cluster.wait_voters(*id, &expected_voters.join(","));
    }
    for (j, id) in remaining.iter().enumerate() {
        cluster.set(*id, &format!("after-remove-{j}"), "x");
    }
    for id in &remaining {
        cluster.check_all_readable(*id);
    }

    // A node that cannot reach a quorum refuses reads instead of serving possibly stale data.
    let last = remaining[0];
    for id in &remaining[1..] {
        cluster.node(*id).kill();
    }
    let mut client = Client::connect(&cluster.addr(last), Duration::from_secs(10)).unwrap();
    match client.cmd(&["GET", "before-1-0"]).unwrap() {
        Reply::Error(e) => assert!(e.starts_with("CLUSTERDOWN"), "unexpected error {e}"),
        other => panic!(
            "node {last} alone served a read: {other:?}\n{}",
            cluster.logs()
        ),
    }
}

#[test]
fn redirect_mode_names_the_leader_and_lease_reads_are_served_by_followers() {
    let mut cluster = Cluster::start(
        "redirect",
        3,
        &["--write-mode", "redirect", "--read-mode", "lease"],
    );
    let leader = cluster.leader();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut client = Client::connect(&cluster.addr(follower), Duration::from_secs(5)).unwrap();
    let expected = format!("MOVED 0 {}", cluster.addr(leader));
    assert_eq!(
        client.cmd(&["SET", "k", "v"]).unwrap(),
        Reply::Error(expected),
        "a follower in redirect mode names the leader's address"
    );
    cluster.set(leader, "k", "v");
    // Reads are still served by followers (forwarded ReadIndex, confirmed by the leader lease).
    cluster.check_all_readable(follower);
    let info = cluster.info(follower);
    assert_eq!(info["write_mode"], "redirect");
    assert_eq!(info["read_mode"], "lease");
}
