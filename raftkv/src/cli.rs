//! Command-line parsing for the `raftkv` binary (clap derive): `raftkv node ...` runs one node,
//! `raftkv cluster ...` starts a local cluster of child processes.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::node::{NodeConfig, ReadMode, WriteMode};
use crate::peer_auth::ClusterSecret;

/// raftkv: a replicated key-value server on Raft, speaking the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "raftkv", arg_required_else_help = true)]
pub struct Command {
    /// What to run.
    #[command(subcommand)]
    pub sub: Sub,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run one node.
    Node(NodeOpts),
    /// Start N nodes as child processes on loopback ports and print their addresses.
    Cluster(ClusterOpts),
}

/// The options of `raftkv node`.
#[derive(Debug, Clone, Args)]
pub struct NodeOpts {
    /// This node's id (a positive integer)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Where it listens, for Redis clients and peers alike
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// Its storage (write-ahead log, hard state, snapshot)
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The members of a new cluster, this node included (ID=HOST:PORT,...); only read when
    /// DIR is empty (a restarted node uses what it stored)
    #[arg(long, value_name = "ID=ADDR,...", value_parser = parse_peers)]
    pub peers: Option<Peers>,
    /// Start empty and wait to be added with RAFT.ADDNODE
    #[arg(long)]
    pub join: bool,
    /// Exit when standard input closes (how `cluster` and the tests make sure a node does not
    /// outlive the process that started it)
    #[arg(long)]
    pub exit_on_stdin_close: bool,
    /// The options `cluster` passes on.
    #[command(flatten)]
    pub shared: SharedOpts,
}

/// The options of `raftkv cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterOpts {
    /// How many nodes
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub nodes: u16,
    /// Where their data goes [default: a new directory under the temp dir]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use PORT, PORT+1, ... instead of free ports picked at random
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,
    /// The options passed on to every node.
    #[command(flatten)]
    pub shared: SharedOpts,
}

/// The options of both subcommands (`cluster` passes them on to every node).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SharedOpts {
    /// Writes on a follower: forwarded to the leader through Raft, or answered with
    /// `-MOVED 0 <leader address>`
    #[arg(long, value_enum, default_value_t = WriteModeArg::Forward)]
    pub write_mode: WriteModeArg,
    /// Reads: ReadIndex confirmed by a heartbeat round (safe), or by the leader lease
    #[arg(long, value_enum, default_value_t = ReadModeArg::Safe)]
    pub read_mode: ReadModeArg,
    /// The logical clock tick in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub tick_ms: u64,
    /// Election timeout in ticks (must exceed --heartbeat-ticks)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub election_ticks: usize,
    /// Heartbeat interval in ticks
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_ticks: u64,
    /// Entries applied between snapshots
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub snapshot_entries: u64,
    /// Entries kept behind a snapshot
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub keep_entries: u64,
    /// How long a request may wait, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// The most detailed log level written to stderr
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// The most client connections served at once (Redis's maxclients)
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_clients: u64,
    /// Close a client connection idle this many seconds; 0 never does (Redis's timeout)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub client_timeout_secs: u64,
    /// A file holding the cluster's secret (16 bytes or more): peers must prove they know it
    /// before their messages are taken. Without one, any peer is trusted
    #[arg(long, value_name = "PATH")]
    pub cluster_secret_file: Option<PathBuf>,
}

/// The settings a node keeps in its data directory: (flag, clap argument id).
const STORED_SETTINGS: [(&str, &str); 8] = [
    ("write-mode", "write_mode"),
    ("read-mode", "read_mode"),
    ("tick-ms", "tick_ms"),
    ("election-ticks", "election_ticks"),
    ("heartbeat-ticks", "heartbeat_ticks"),
    ("snapshot-entries", "snapshot_entries"),
    ("keep-entries", "keep_entries"),
    ("request-timeout-ms", "request_timeout_ms"),
];

/// `--write-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WriteModeArg {
    /// Forward to the leader through Raft.
    Forward,
    /// Answer `-MOVED 0 <leader address>`.
    Redirect,
}

/// `--read-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadModeArg {
    /// ReadIndex confirmed by a heartbeat round.
    Safe,
    /// ReadIndex confirmed by the leader lease.
    Lease,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Debug records too.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The slog level.
    pub fn level(self) -> slog::Level {
        match self {
            LogLevel::Error => slog::Level::Error,
            LogLevel::Warn => slog::Level::Warning,
            LogLevel::Info => slog::Level::Info,
            LogLevel::Debug => slog::Level::Debug,
            LogLevel::Trace => slog::Level::Trace,
        }
    }
}

/// The `--peers` list: (node id, address) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers(pub Vec<(u64, String)>);

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peers(value: &str) -> Result<Peers, String> {
    value
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not ID=HOST:PORT"))?;
            let id: u64 = id
                .parse()
                .map_err(|_| format!("`{id}` in `{part}` is not a node id"))?;
            if id == 0 {
                return Err(format!("`{part}`: node ids must be positive"));
            }
            Ok((id, addr.to_string()))
        })
        .collect::<Result<_, _>>()
        .map(Peers)
}

impl SharedOpts {
    /// Checks the rules that tie options together; the error names the option.
    fn check(&self, subcommand: &str) -> Result<(), clap::Error> {
        if self.election_ticks as u64 <= self.heartbeat_ticks {
            let mut command = Command::command();
            let command = command
                .find_subcommand_mut(subcommand)
                .expect("a subcommand of ours");
            return Err(command.error(
                ErrorKind::ValueValidation,
                format!(
                    "--election-ticks ({}) must be greater than --heartbeat-ticks ({})",
                    self.election_ticks, self.heartbeat_ticks
                ),
            ));
        }
        Ok(())
    }

    /// The secret in `--cluster-secret-file`, if one is given; the error names the option.
    fn secret(&self) -> Result<Option<ClusterSecret>, clap::Error> {
        self.cluster_secret_file
            .as_deref()
            .map(|path| {
                ClusterSecret::from_file(path).map_err(|e| {
                    Command::command().error(
                        ErrorKind::ValueValidation,
                        format!("--cluster-secret-file: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// Writes these options into a node's configuration (reading the secret file).
    fn apply(&self, config: &mut NodeConfig) -> Result<(), clap::Error> {
        config.cluster_secret = self.secret()?;
        self.apply_settings(config);
        Ok(())
    }

    /// Writes the settings (all but the secret) into a node's configuration.
    fn apply_settings(&self, config: &mut NodeConfig) {
        config.write_mode = match self.write_mode {
            WriteModeArg::Forward => WriteMode::Forward,
            WriteModeArg::Redirect => WriteMode::Redirect,
        };
        config.read_mode = match self.read_mode {
            ReadModeArg::Safe => ReadMode::Safe,
            ReadModeArg::Lease => ReadMode::Lease,
        };
        config.tick = Duration::from_millis(self.tick_ms);
        config.election_ticks = self.election_ticks;
        config.heartbeat_ticks = self.heartbeat_ticks as usize;
        config.snapshot_entries = self.snapshot_entries;
        config.keep_entries = self.keep_entries;
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        config.max_clients = usize::try_from(self.max_clients).unwrap_or(usize::MAX);
        config.client_idle_timeout =
            (self.client_timeout_secs > 0).then(|| Duration::from_secs(self.client_timeout_secs));
    }

    /// The same options as command-line arguments for a child `raftkv node`, every one spelled
    /// out (defaults included) so a node's options are visible in its command line.
    pub fn to_args(&self) -> Vec<String> {
        fn name<T: ValueEnum>(v: T) -> String {
            v.to_possible_value()
                .map(|p| p.get_name().to_string())
                .unwrap_or_default()
        }
        vec![
            format!("--write-mode={}", name(self.write_mode)),
            format!("--read-mode={}", name(self.read_mode)),
            format!("--tick-ms={}", self.tick_ms),
            format!("--election-ticks={}", self.election_ticks),
            format!("--heartbeat-ticks={}", self.heartbeat_ticks),
            format!("--snapshot-entries={}", self.snapshot_entries),
            format!("--keep-entries={}", self.keep_entries),
            format!("--request-timeout-ms={}", self.request_timeout_ms),
            format!("--log-level={}", name(self.log_level)),
            format!("--max-clients={}", self.max_clients),
            format!("--client-timeout-secs={}", self.client_timeout_secs),
        ]
        .into_iter()
        .chain(
            self.cluster_secret_file
                .iter()
                .map(|path| format!("--cluster-secret-file={}", path.display())),
        )
        .collect()
    }
}

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
}

/// Parses the arguments after the program name. A `--help` or `--version` request comes back as
/// an error whose exit code is 0; print it with `Error::exit` or `Error::print`.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let words =
        std::iter::once(std::ffi::OsString::from("raftkv")).chain(args.into_iter().map(Into::into));
    let matches = Command::command().try_get_matches_from(words)?;
    // The stored settings given on the command line (a restart takes the others from the data
    // directory).
    let explicit: Vec<String> = matches
        .subcommand_matches("node")
        .map(|m| {
            STORED_SETTINGS
                .iter()
                .filter(|(_, id)| m.value_source(id) == Some(ValueSource::CommandLine))
                .map(|(flag, _)| flag.to_string())
                .collect()
        })
        .unwrap_or_default();
    match Command::from_arg_matches(&matches)?.sub {
        Sub::Node(opts) => {
            opts.shared.check("node")?;
            let mut config = NodeConfig::new(opts.id, opts.addr, opts.data_dir);
            config.peers = opts.peers.map(|p| p.0).unwrap_or_default();
            config.join = opts.join;
            opts.shared.apply(&mut config)?;
            config.explicit_options = explicit;
            Ok(Cli::Node(NodeArgs {
                config,
                log_level: opts.shared.log_level.level(),
                exit_on_stdin_close: opts.exit_on_stdin_close,
            }))
        }
        Sub::Cluster(opts) => {
            opts.shared.check("cluster")?;
            // Refuse a bad secret file now rather than in every node.
            opts.shared.secret()?;
            Ok(Cli::Cluster(ClusterArgs {
                nodes: opts.nodes as usize,
                dir: opts.dir,
                base_port: opts.base_port,
                node_options: opts.shared.to_args(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn node_arguments_fill_the_config() {
        let cli = parse(words(
            "node --id 2 --addr 127.0.0.1:7002 --data-dir /tmp/x --peers 1=a:1,2=b:2 \
             --write-mode=redirect --read-mode lease --tick-ms 20 --join --exit-on-stdin-close \
             --log-level debug",
        ))
        .unwrap();
        let Cli::Node(NodeArgs {
            config,
            exit_on_stdin_close,
            log_level,
        }) = cli
        else {
            panic!("expected a node, got {cli:?}");
        };
        assert!(exit_on_stdin_close);
        assert_eq!(log_level, slog::Level::Debug);
        assert_eq!(config.id, 2);
        assert_eq!(config.addr, "127.0.0.1:7002");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
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
    fn the_stored_settings_given_on_the_command_line_are_named() {
        let Cli::Node(node) = parse(words(
            "node --id 1 --addr a:1 --data-dir d --write-mode redirect --tick-ms=20 --join",
        ))
        .unwrap() else {
            panic!("expected a node");
        };
        assert_eq!(node.config.explicit_options, vec!["write-mode", "tick-ms"]);
        let flags: Vec<&str> = STORED_SETTINGS.iter().map(|(flag, _)| *flag).collect();
        assert_eq!(
            flags,
            crate::node::options_file::STORED,
            "the same settings"
        );
    }

    #[test]
    fn unset_options_take_the_node_config_defaults() {
        let Cli::Node(node) = parse(words("node --id 1 --addr a:1 --data-dir d")).unwrap() else {
            panic!("expected a node");
        };
        let defaults = NodeConfig::new(1, "a:1", "d");
        let c = node.config;
        assert_eq!(c.write_mode, defaults.write_mode);
        assert_eq!(c.read_mode, defaults.read_mode);
        assert_eq!(c.tick, defaults.tick);
        assert_eq!(c.election_ticks, defaults.election_ticks);
        assert_eq!(c.heartbeat_ticks, defaults.heartbeat_ticks);
        assert_eq!(c.snapshot_entries, defaults.snapshot_entries);
        assert_eq!(c.keep_entries, defaults.keep_entries);
        assert_eq!(c.request_timeout, defaults.request_timeout);
        assert!(c.peers.is_empty() && !c.join);
        assert_eq!(node.log_level, slog::Level::Info);
    }

    #[test]
    fn bad_node_arguments_are_refused_with_the_option_named() {
        for (line, complaint) in [
            ("node --addr a:1 --data-dir d", "--id"),
            ("node --id 1 --data-dir d", "--addr"),
            ("node --id 0 --addr a:1 --data-dir d", "--id"),
            (
                "node --id 1 --addr a:1 --data-dir d --tick-ms x",
                "--tick-ms",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --tick-ms 0",
                "--tick-ms",
            ),
            ("node --id 1 --addr a:1 --data-dir d --bogus 1", "--bogus"),
            (
                "node --id 1 --addr a:1 --data-dir d --peers 1",
                "ID=HOST:PORT",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --peers 0=a:1",
                "positive",
            ),
            ("node --id 1 --addr a:1 --data-dir d --id", "--id"),
            (
                "node --id 1 --addr a:1 --data-dir d --read-mode fast",
                "--read-mode",
            ),
            (
                "node --id 1 --addr a:1 --data-dir d --election-ticks 2",
                "--election-ticks (2) must be greater than --heartbeat-ticks (2)",
            ),
            ("serve", "serve"),
        ] {
            let err = parse(words(line)).expect_err(line);
            assert_eq!(err.exit_code(), 2, "{line}");
            let text = err.to_string();
            assert!(text.contains(complaint), "{line}: {text}");
        }
    }

    #[test]
    fn cluster_arguments_pass_every_node_option_through() {
        let Cli::Cluster(cluster) = parse(words(
            "cluster --nodes 5 --base-port 7001 --write-mode redirect --tick-ms 50",
        ))
        .unwrap() else {
            panic!("expected a cluster");
        };
        assert_eq!(cluster.nodes, 5);
        assert_eq!(cluster.base_port, Some(7001));
        let options = cluster.node_options;
        assert!(options.contains(&"--write-mode=redirect".to_string()));
        assert!(options.contains(&"--tick-ms=50".to_string()));
        assert!(
            options.contains(&"--read-mode=safe".to_string()),
            "defaults too"
        );
        // What the cluster passes on, a node accepts.
        let node = ["node", "--id", "1", "--addr", "a:1", "--data-dir", "d"];
        let line = node.iter().map(|s| s.to_string()).chain(options);
        let Cli::Node(node) = parse(line).unwrap() else {
            panic!("expected a node");
        };
        assert_eq!(node.config.write_mode, WriteMode::Redirect);
        assert_eq!(node.config.tick, Duration::from_millis(50));
        assert!(parse(words("cluster --id 3")).is_err(), "--id is per node");
        assert!(parse(words("cluster --nodes 0")).is_err());
    }

    #[test]
    fn help_lists_every_option_with_its_default_and_exits_zero() {
        let no_args = parse(Vec::<String>::new()).unwrap_err();
        assert_eq!(no_args.exit_code(), 2, "no subcommand is a usage error");
        for (line, options) in [
            ("--help", &["node", "cluster"][..]),
            (
                "node --help",
                &[
                    "--id",
                    "--peers",
                    "--join",
                    "--exit-on-stdin-close",
                    "--tick-ms",
                    "[default: 100]",
                ][..],
            ),
            (
                "cluster --help",
                &["--nodes", "[default: 3]", "--base-port", "--write-mode"][..],
            ),
        ] {
            let err = parse(words(line)).unwrap_err();
            assert_eq!(err.exit_code(), 0, "{line}");
            let text = err.to_string();
            for option in options {
                assert!(
                    text.contains(option),
                    "{line}: {option} missing from\n{text}"
                );
            }
        }
    }
}
