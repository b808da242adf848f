//! A leader frozen with SIGSTOP (issue 19). Lease reads: while the others elect a new leader and
//! commit a write, the frozen leader must not answer a read from its old lease when it resumes
//! (the node loop delivers every tick that elapsed during the pause before it steps a message or
//! serves a read). Failover: a write forwarded to the frozen leader is proposed again to the new
//! one at once, and applies once even when the old leader passes its copy on after resuming.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use raftkv::resp::Reply;
use support::{
    agreed_leader, logs_of, set_until_ok, start_cluster, wait_for, Client, TempDir, STEP,
};

/// Rounds of pause, failover, write, resume and read.
const ROUNDS: usize = 12;

#[test]
fn a_leader_paused_past_its_lease_serves_no_stale_read_when_it_resumes() {
    let dir = TempDir::new("pause");
    let (nodes, addrs) = start_cluster(&dir, 3, &["--read-mode", "lease"]);
    let mut stale = Vec::new();
    for round in 0..ROUNDS {
        let leader = wait_for(
            "a leader",
            STEP,
            || logs_of(&nodes),
            || agreed_leader(&addrs),
        );
        let old_addr = addrs[leader as usize - 1].1.clone();
        let old_value = format!("v{round}");
        set_until_ok(&nodes, &old_addr, "k", &old_value);
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
            || logs_of(&nodes),
            || agreed_leader(&others),
        );
        let new_value = format!("v{round}-after");
        set_until_ok(&nodes, &addrs[new_leader as usize - 1].1, "k", &new_value);
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
        logs_of(&nodes)
    );
}

#[test]
fn a_write_forwarded_to_a_frozen_leader_is_proposed_again_and_applies_once() {
    let dir = TempDir::new("failover");
    let (nodes, addrs) = start_cluster(&dir, 3, &[]);
    for round in 1..=3u64 {
        let leader = wait_for(
            "a leader",
            STEP,
            || logs_of(&nodes),
            || agreed_leader(&addrs),
        );
        let follower = if leader == 1 { 2 } else { 1 };
        let key = format!("counter{round}");
        nodes[leader as usize - 1].signal("STOP");
        let mut client = Client::connect(&addrs[follower as usize - 1].1, STEP).unwrap();
        let sent = Instant::now();
        let reply = client.cmd(&["INCR", &key]).unwrap();
        let took = sent.elapsed();
        nodes[leader as usize - 1].signal("CONT");
        assert_eq!(
            reply,
            Reply::Integer(1),
            "round {round}: the INCR sent through node {follower} while leader {leader} was \
             frozen, answered after {took:?}\n{}",
            logs_of(&nodes)
        );
        // Let the old leader resume and pass on whatever it held, then read back everywhere.
        thread::sleep(Duration::from_millis(500));
        for (id, addr) in &addrs {
            let value = wait_for(
                &format!("GET {key} on node {id}"),
                STEP,
                || logs_of(&nodes),
                || {
                    let mut client = Client::connect(addr, Duration::from_secs(2)).ok()?;
                    match client.cmd(&["GET", &key]).ok()? {
                        Reply::Bulk(v) => Some(v),
                        _ => None,
                    }
                },
            );
            assert_eq!(
                value, b"1",
                "round {round}: node {id} applied the INCR twice or never"
            );
        }
    }
}
