//! Helpers for the integration tests: temp dirs, `raftkv` node processes, a small RESP client and
//! polling with deadlines. Each test crate uses a different subset of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::resp::Reply;

/// A directory under the system temp dir with a name unique to this run, removed when dropped
/// (`tempfile`).
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempDir {
    /// Creates `<temp>/raftkv-<name>-<random>`.
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("raftkv-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        TempDir {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").to_string()
}

/// The node options every test uses: a fast clock, so elections take a fraction of a second.
pub const FAST: &[&str] = &[
    "--tick-ms",
    "25",
    "--election-ticks",
    "10",
    "--heartbeat-ticks",
    "2",
    "--request-timeout-ms",
    "2000",
];

/// One `raftkv node` process, restartable with the same arguments and data directory.
pub struct NodeProcess {
    /// Its id.
    pub id: u64,
    /// Its address.
    pub addr: String,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    /// A node `id` at `addr` keeping its data and log under `dir`, started with `extra` options
    /// after `--id`, `--addr` and `--data-dir` (not started yet).
    pub fn new(dir: &Path, id: u64, addr: &str, extra: &[String]) -> NodeProcess {
        NodeProcess {
            id,
            addr: addr.to_string(),
            data_dir: dir.join(format!("node-{id}")),
            log: dir.join(format!("node-{id}.log")),
            args: extra.to_vec(),
            child: None,
        }
    }

    /// Starts the process (its stderr is appended to its log file).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node's log");
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .arg("node")
            .args(["--id", &self.id.to_string(), "--addr", &self.addr])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            // The node exits when this pipe closes, so it never outlives a test that panics.
            .arg("--exit-on-stdin-close")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn raftkv");
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (what `Child::kill` sends on Unix) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the process a signal by name (`STOP`, `CONT`, ...) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("a running node");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} node {} failed", self.id);
    }

    /// Whether its process still runs (it was started, not killed, and has not exited).
    pub fn is_alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it was started and not killed.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small blocking RESP client.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`, with reads that give up after `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one whole reply and returns its exact bytes.
    pub fn read_raw_reply(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match Reply::parse(&self.buf) {
                Ok(Some((_, used))) => return Ok(self.buf.drain(..used).collect()),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let bytes = self.read_raw_reply()?;
        Ok(Reply::parse(&bytes)
            .ok()
            .flatten()
            .map(|(reply, _)| reply)
            .expect("read_raw_reply returns one whole reply"))
    }

    /// Whether the server closed the connection (read returns end of file) before `timeout`.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }

    /// Sends a command as a RESP array of bulk strings and reads the reply.
    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        self.send_raw(&encode_command(args))?;
        self.read_reply()
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Polls `f` every 25 ms until it returns `Some`, or panics with `what` (and `context()`, e.g. the
/// nodes' logs) once `timeout` has passed.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// The `INFO` fields of the node at `addr`, or `None` if it cannot be asked.
pub fn info(addr: &str) -> Option<BTreeMap<String, String>> {
    let mut client = Client::connect(addr, Duration::from_secs(2)).ok()?;
    let Reply::Bulk(text) = client.cmd(&["INFO"]).ok()? else {
        return None;
    };
    let text = String::from_utf8(text).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// One `INFO` field as a number.
pub fn info_u64(info: &BTreeMap<String, String>, field: &str) -> u64 {
    info.get(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO has no numeric field {field}: {info:?}"))
}

/// The id of the leader that every node of `addrs` that answers agrees on, and that itself says
/// it leads; `None` while there is none or they disagree.
pub fn agreed_leader(addrs: &[(u64, String)]) -> Option<u64> {
    let mut leader = None;
    for (_, addr) in addrs {
        let info = info(addr)?;
        let said: u64 = info.get("leader_id")?.parse().ok()?;
        if said == 0 || leader.is_some_and(|l| l != said) {
            return None;
        }
        leader = Some(said);
    }
    let leader = leader?;
    let (_, addr) = addrs.iter().find(|(id, _)| *id == leader)?;
    (info(addr)?.get("role")? == "leader").then_some(leader)
}

/// How long any one step of a cluster test may take before it fails (it never hangs).
pub const STEP: Duration = Duration::from_secs(20);

/// Starts nodes 1..=n of a new cluster in `dir`, with the fast clock and `extra` options.
pub fn start_cluster(
    dir: &TempDir,
    n: u64,
    extra: &[&str],
) -> (Vec<NodeProcess>, Vec<(u64, String)>) {
    let addrs: Vec<(u64, String)> = (1..=n).map(|id| (id, free_addr())).collect();
    let peers: Vec<String> = addrs.iter().map(|(id, a)| format!("{id}={a}")).collect();
    let mut options: Vec<String> = FAST.iter().chain(extra).map(|s| s.to_string()).collect();
    options.extend(["--peers".to_string(), peers.join(",")]);
    let mut nodes: Vec<NodeProcess> = addrs
        .iter()
        .map(|(id, addr)| NodeProcess::new(&dir.path, *id, addr, &options))
        .collect();
    for node in &mut nodes {
        node.start();
    }
    (nodes, addrs)
}

/// Waits (up to [`STEP`]) until the nodes at `addrs` agree on a leader; returns its id.
pub fn wait_leader(nodes: &[NodeProcess], addrs: &[(u64, String)]) -> u64 {
    wait_for("a leader", STEP, || logs_of(nodes), || agreed_leader(addrs))
}

/// The tail of every node's log, for failure messages.
pub fn logs_of(nodes: &[NodeProcess]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- node {} ---\n{}", n.id, n.log_tail(30)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `SET key value` to `addr` until it answers `+OK`.
pub fn set_until_ok(nodes: &[NodeProcess], addr: &str, key: &str, value: &str) {
    wait_for(
        &format!("SET {key} {value} via {addr}"),
        STEP,
        || logs_of(nodes),
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

/// A running single-node server (the process is killed before its directory is removed).
pub struct SingleNode {
    /// The node.
    pub node: NodeProcess,
    _dir: TempDir,
}

impl SingleNode {
    /// Starts a one-node cluster in a new temp dir named after `name` and waits until it leads.
    pub fn start(name: &str) -> SingleNode {
        let dir = TempDir::new(name);
        let addr = free_addr();
        let mut extra: Vec<String> = FAST.iter().map(|s| s.to_string()).collect();
        extra.extend(["--peers".to_string(), format!("1={addr}")]);
        let mut node = NodeProcess::new(&dir.path, 1, &addr, &extra);
        node.start();
        let server = SingleNode { node, _dir: dir };
        wait_for(
            "the single node to lead",
            Duration::from_secs(15),
            || server.node.log_tail(30),
            || info(&server.node.addr).filter(|i| i.get("role").is_some_and(|r| r == "leader")),
        );
        server
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.node.addr, Duration::from_secs(5)).expect("connect to the server")
    }
}

/// Sends `frame` and checks that the next reply is exactly `expected`.
pub fn exchange(client: &mut Client, frame: &[u8], expected: &[u8]) {
    client.send_raw(frame).expect("send");
    let reply = client.read_raw_reply().expect("a reply");
    assert_eq!(
        reply.escape_ascii().to_string(),
        expected.escape_ascii().to_string(),
        "reply to {}",
        frame.escape_ascii()
    );
}
