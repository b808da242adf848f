//! `raftkv cluster`: a local cluster in one command, for trying the server out.
//!
//! Picks free loopback ports (or `--base-port` and the ports after it), starts one `raftkv node`
//! child process per node with the same `--peers` list, prints each node's address and log file,
//! and waits for the children. Ctrl-C (or SIGTERM) stops every node of the cluster, including one
//! the user restarted by hand from its data directory after killing it: each node's data
//! directory lock names the process using it ([`crate::storage::lock::lock_holder`]).

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::ClusterArgs;
use crate::storage::lock::lock_holder;

/// How long `stop` waits for the nodes to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends SIGTERM to the process using each data directory in `dirs` (a node this process started
/// or one restarted by hand) and waits until every directory is free. Returns the directories
/// still in use after `STOP_TIMEOUT` (10 s).
pub fn stop(dirs: &[PathBuf]) -> Vec<PathBuf> {
    for dir in dirs {
        if let Some(pid) = lock_holder(dir) {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let busy: Vec<PathBuf> = dirs
            .iter()
            .filter(|d| lock_holder(d).is_some())
            .cloned()
            .collect();
        if busy.is_empty() || Instant::now() >= deadline {
            return busy;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picks it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts the cluster and waits until every node has exited.
pub fn run(args: &ClusterArgs) -> io::Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            std::env::temp_dir().join(format!("raftkv-cluster-{}-{nanos}", std::process::id()))
        }
    };
    fs::create_dir_all(&dir)?;
    let mut ports = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        ports.push(match args.base_port {
            Some(base) => base + i as u16,
            None => free_port()?,
        });
    }
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
        .collect();
    let peers = peers.join(",");
    let exe = std::env::current_exe()?;
    let mut children: Vec<(u64, Child)> = Vec::new();
    // Held open while this process lives: when it dies, however it dies, the children see their
    // standard input close and exit (`--exit-on-stdin-close`).
    let mut lifelines: Vec<ChildStdin> = Vec::new();
    println!(
        "raftkv: starting {} nodes, data in {}",
        args.nodes,
        dir.display()
    );
    for (i, port) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let addr = format!("127.0.0.1:{port}");
        let data_dir = node_dir(&dir, id);
        let log_path = dir.join(format!("node-{id}.log"));
        let log = File::create(&log_path)?;
        let mut child = Command::new(&exe)
            .arg("node")
            .args(["--id", &id.to_string(), "--addr", &addr, "--peers", &peers])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&args.node_options)
            .arg("--exit-on-stdin-close")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        lifelines.extend(child.stdin.take());
        println!(
            "node {id}: {addr}  (pid {}, log {})",
            child.id(),
            log_path.display()
        );
        children.push((id, child));
    }
    if let Some(port) = ports.first() {
        println!("try: redis-cli -p {port} SET hello world; redis-cli -p {port} INFO");
    }
    let dirs: Vec<PathBuf> = (1..=args.nodes as u64)
        .map(|id| node_dir(&dir, id))
        .collect();
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        println!("raftkv: stopping the cluster");
        for dir in stop(&dirs) {
            eprintln!("raftkv cluster: {} is still in use", dir.display());
        }
        std::process::exit(130);
    })
    .map_err(io::Error::other)?;
    println!("Ctrl-C stops the cluster.");
    for (id, mut child) in children {
        let status = child.wait()?;
        println!("node {id} exited: {status}");
    }
    drop(lifelines);
    if stopping.load(Ordering::SeqCst) {
        // The handler is stopping the nodes and exits the process when it is done.
        loop {
            thread::park();
        }
    }
    Ok(())
}
