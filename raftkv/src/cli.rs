//! Command-line parsing for the `raftkv` binary: `raftkv node ...` and `raftkv cluster ...`.

use std::path::PathBuf;
use std::time::Duration;

use crate::node::{NodeConfig, ReadMode, WriteMode};

/// The usage text.
pub const USAGE: &str = "\
raftkv: a replicated key-value server on Raft, speaking the Redis protocol

USAGE:
    raftkv node --id ID --addr HOST:PORT --data-dir DIR [--peers ID=HOST:PORT,...] [--join] [OPTIONS]
    raftkv cluster [--nodes N] [--dir DIR] [--base-port PORT] [OPTIONS]

node:
    --id ID                  this node's id (a positive integer)
    --addr HOST:PORT         where it listens, for Redis clients and peers alike
    --data-dir DIR           its storage (write-ahead log, hard state, snapshot)
    --peers ID=ADDR,...      the members of a new cluster, this node included; only read when
                             DIR is empty (a restarted node uses what it stored)
    --join                   start empty and wait to be added with RAFT.ADDNODE
    --exit-on-stdin-close    exit when standard input closes (how `cluster` and the tests make
                             sure a node does not outlive the process that started it)

cluster (starts N nodes as child processes on free loopback ports, prints their addresses):
    --nodes N                how many (default 3)
    --dir DIR                where their data goes (default: a new directory under the temp dir)
    --base-port PORT         use PORT, PORT+1, ... instead of free ports picked at random

OPTIONS (for both):
    --write-mode forward|redirect   writes on a follower: forwarded to the leader through Raft
                                    (default) or answered with -MOVED 0 <leader address>
    --read-mode safe|lease          ReadIndex confirmed by a heartbeat round (default) or by the
                                    leader lease
    --tick-ms MS                    the logical clock tick (default 100)
    --election-ticks N              election timeout in ticks (default 10)
    --heartbeat-ticks N             heartbeat interval in ticks (default 2)
    --snapshot-entries N            entries applied between snapshots (default 10000)
    --keep-entries N                entries kept behind a snapshot (default 1000)
    --request-timeout-ms MS         how long a request may wait (default 5000)
    --log-level LEVEL               error, warn, info (default), debug or trace
";

/// A node to run, and its log level.
#[derive(Debug, Clone)]
pub struct NodeArgs {
    /// The node's configuration.
    pub config: NodeConfig,
    /// The most detailed log level written to stderr.
    pub log_level: slog::Level,
    /// Exit when standard input reaches its end.
    pub exit_on_stdin_close: bool,
}

/// A local cluster to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterArgs {
    /// How many nodes.
    pub nodes: usize,
    /// Where their data goes.
    pub dir: Option<PathBuf>,
    /// The first port, if fixed.
    pub base_port: Option<u16>,
    /// Options passed on to every node.
    pub node_options: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Cli {
    /// Run one node.
    Node(NodeArgs),
    /// Start a local cluster.
    Cluster(ClusterArgs),
    /// Print the usage.
    Help,
}

/// Parses the arguments after the program name. The error says what is wrong.
pub fn parse(args: &[String]) -> Result<Cli, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(Cli::Help);
    };
    match sub.as_str() {
        "node" => parse_node(rest).map(Cli::Node),
        "cluster" => parse_cluster(rest).map(Cli::Cluster),
        "help" | "--help" | "-h" => Ok(Cli::Help),
        other => Err(format!(
            "unknown subcommand `{other}` (expected node or cluster)"
        )),
    }
}

/// Splits `--name value` and `--name=value` pairs; `--join` takes no value.
fn options(args: &[String]) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        if let Some((name, value)) = name.split_once('=') {
            out.push((name.to_string(), Some(value.to_string())));
        } else if matches!(name, "join" | "exit-on-stdin-close") {
            out.push((name.to_string(), None));
        } else {
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("--{name} needs a value"))?;
            out.push((name.to_string(), Some(value.clone())));
            i += 1;
        }
        i += 1;
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{name}: `{value}` is not a valid number"))
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peers(value: &str) -> Result<Vec<(u64, String)>, String> {
    value
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("--peers: `{part}` is not ID=HOST:PORT"))?;
            let id: u64 = number("peers", id)?;
            if id == 0 {
                return Err("--peers: node ids must be positive".to_string());
            }
            Ok((id, addr.to_string()))
        })
        .collect()
}

/// Applies one of the options shared by `node` and `cluster`. Returns false if `name` is not one.
fn shared_option(
    config: &mut NodeConfig,
    log_level: &mut slog::Level,
    name: &str,
    value: &str,
) -> Result<bool, String> {
    match name {
        "write-mode" => {
            config.write_mode = match value {
                "forward" => WriteMode::Forward,
                "redirect" => WriteMode::Redirect,
                _ => {
                    return Err(format!(
                        "--write-mode: `{value}` is not forward or redirect"
                    ))
                }
            }
        }
        "read-mode" => {
            config.read_mode = match value {
                "safe" => ReadMode::Safe,
                "lease" => ReadMode::Lease,
                _ => return Err(format!("--read-mode: `{value}` is not safe or lease")),
            }
        }
        "tick-ms" => config.tick = Duration::from_millis(number(name, value)?),
        "election-ticks" => config.election_ticks = number(name, value)?,
        "heartbeat-ticks" => config.heartbeat_ticks = number(name, value)?,
        "snapshot-entries" => config.snapshot_entries = number(name, value)?,
        "keep-entries" => config.keep_entries = number(name, value)?,
        "request-timeout-ms" => {
            config.request_timeout = Duration::from_millis(number(name, value)?)
        }
        "log-level" => {
            *log_level = value
                .parse()
                .map_err(|_| format!("--log-level: `{value}` is not a log level"))?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_node(args: &[String]) -> Result<NodeArgs, String> {
    let mut config = NodeConfig::new(0, String::new(), PathBuf::new());
    let mut log_level = slog::Level::Info;
    let mut exit_on_stdin_close = false;
    let (mut has_addr, mut has_dir) = (false, false);
    for (name, value) in options(args)? {
        let value = value.unwrap_or_default();
        if shared_option(&mut config, &mut log_level, &name, &value)? {
            continue;
        }
        match name.as_str() {
            "id" => config.id = number(&name, &value)?,
            "addr" => {
                config.addr = value;
                has_addr = true;
            }
            "data-dir" => {
                config.data_dir = PathBuf::from(value);
                has_dir = true;
            }
            "peers" => config.peers = parse_peers(&value)?,
            "join" => config.join = true,
            "exit-on-stdin-close" => exit_on_stdin_close = true,
            _ => return Err(format!("unknown option --{name}")),
        }
    }
    if config.id == 0 {
        return Err("--id is required (a positive integer)".to_string());
    }
    if !has_addr || !has_dir {
        return Err("--addr and --data-dir are required".to_string());
    }
    if config.heartbeat_ticks == 0 || config.election_ticks <= config.heartbeat_ticks {
        return Err("--election-ticks must be greater than --heartbeat-ticks (> 0)".to_string());
    }
    if config.tick.is_zero() {
        return Err("--tick-ms must be positive".to_string());
    }
    Ok(NodeArgs {
        config,
        log_level,
        exit_on_stdin_close,
    })
}

fn parse_cluster(args: &[String]) -> Result<ClusterArgs, String> {
    let mut cluster = ClusterArgs {
        nodes: 3,
        dir: None,
        base_port: None,
        node_options: Vec::new(),
    };
    let mut scratch = NodeConfig::new(1, String::new(), PathBuf::new());
    let mut level = slog::Level::Info;
    for (name, value) in options(args)? {
        let value = value.unwrap_or_default();
        match name.as_str() {
            "nodes" => cluster.nodes = number(&name, &value)?,
            "dir" => cluster.dir = Some(PathBuf::from(value)),
            "base-port" => cluster.base_port = Some(number(&name, &value)?),
            _ => {
                if !shared_option(&mut scratch, &mut level, &name, &value)? {
                    return Err(format!("unknown option --{name}"));
                }
                cluster.node_options.push(format!("--{name}={value}"));
            }
        }
    }
    if cluster.nodes == 0 {
        return Err("--nodes must be at least 1".to_string());
    }
    Ok(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn node_arguments_fill_the_config() {
        let cli = parse(&words(
            "node --id 2 --addr 127.0.0.1:7002 --data-dir /tmp/x --peers 1=a:1,2=b:2 \
             --write-mode=redirect --read-mode lease --tick-ms 20 --join --exit-on-stdin-close",
        ))
        .unwrap();
        let Cli::Node(NodeArgs {
            config,
            exit_on_stdin_close,
            ..
        }) = cli
        else {
            panic!("expected a node, got {cli:?}");
        };
        assert!(exit_on_stdin_close);
        assert_eq!(config.id, 2);
        assert_eq!(config.addr, "127.0.0.1:7002");
        assert_eq!(
            config.peers,
            vec![(1, "a:1".to_string()), (2, "b:2".to_string())]
        );
        assert_eq!(config.write_mode, WriteMode::Redirect);
        assert_eq!(config.read_mode, ReadMode::Lease);
        assert_eq!(config.tick, Duration::from_millis(20));
        assert!(config.join);
    }

    #[test]
    fn node_arguments_are_checked() {
        for (line, complaint) in [
            ("node --addr a:1 --data-dir d", "--id is required"),
            ("node --id 1 --data-dir d", "--addr and --data-dir"),
            (
                "node --id 1 --addr a:1 --data-dir d --tick-ms x",
                "not a valid number",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --bogus 1",
                "unknown option --bogus",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --peers 1",
                "not ID=HOST:PORT",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --id",
                "--id needs a value",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --election-ticks 2",
                "greater than",
            ),
        ] {
            let err = parse(&words(line)).expect_err(line);
            assert!(err.contains(complaint), "{line}: {err}");
        }
        assert!(parse(&words("serve")).is_err());
    }

    #[test]
    fn cluster_arguments_pass_node_options_through() {
        let Cli::Cluster(cluster) = parse(&words(
            "cluster --nodes 5 --base-port 7001 --write-mode redirect --tick-ms 50",
        ))
        .unwrap() else {
            panic!("expected a cluster");
        };
        assert_eq!(cluster.nodes, 5);
        assert_eq!(cluster.base_port, Some(7001));
        assert_eq!(
            cluster.node_options,
            vec![
                "--write-mode=redirect".to_string(),
                "--tick-ms=50".to_string()
            ]
        );
        assert!(parse(&words("cluster --id 3")).is_err(), "--id is per node");
        assert!(matches!(parse(&[]), Ok(Cli::Help)));
    }
}
