//! A step-by-step driver for datadriven "interaction" transcripts (etcd-io/raft's interaction
//! tests, in our own words and output format).
//!
//! An [`InteractionEnv`] holds a small cluster of [`RawNode<MemStorage>`](raft_core::RawNode)s and
//! a pool of messages in flight. Nothing happens on its own: a transcript says when each node hands
//! out a Ready, which messages are delivered or dropped, and when time passes, and the output shows
//! every Ready, every message and every membership change as it happens. The output is
//! deterministic (election timeouts are pinned to exactly `election-tick`), so a transcript diff is
//! a behaviour change.
//!
//! # Commands
//!
//! Node ids are bare numbers; when a command takes several, they are handled in increasing order
//! (datadriven arguments are unordered). Other arguments are named.
//!
//! | command | what it does |
//! |---|---|
//! | `add-nodes N [voters=(1,2,3)] [learners=(4)] [index=I] [pre-vote=true] [check-quorum=true] [read-only=lease\|safe] [step-down-on-removal=false] [max-inflight=M] [max-inflight-bytes=B] [max-size-per-msg=S] [election-tick=E] [heartbeat-tick=H]` | creates `N` nodes with the next free ids; `index` starts them from a snapshot at that index (term 1); without `voters` and `learners` they start with an empty membership |
//! | `campaign ID` | the node starts an election |
//! | `propose ID data=X` (or the data as input) | proposes an entry |
//! | `propose-conf-change ID [v1=true] [transition=auto\|implicit\|explicit]` + input `v4 l5 r3` | proposes a membership change (`v1` needs exactly one change; no changes is a leave-joint) |
//! | `read-index ID ctx=X` (or the context as input) | requests a read point |
//! | `transfer-leader ID to=T` | asks node `ID` to transfer leadership to `T` |
//! | `forget-leader ID` | the node forgets its leader (prints `refused` when it does not) |
//! | `request-snapshot ID` | the node asks its leader for a snapshot |
//! | `report-unreachable ID peer=T` | tells node `ID` that `T` is unreachable |
//! | `report-snapshot ID peer=T [status=finish\|failure]` | reports how sending a snapshot to `T` ended |
//! | `tick ID [n=K]`, `tick-election ID`, `tick-heartbeat ID` | ticks once (or `K` times), an election timeout's worth, a heartbeat interval's worth |
//! | `process-ready [ID...]` | each node (all when none given) handles one Ready: persist, apply, queue messages, advance |
//! | `deliver-msgs [ID...] [type=(MsgAppend,...)] [drop=true]` | delivers (or drops) the queued messages to those nodes (all when none given), in order |
//! | `stabilize [ID...]` | handles Readys and delivers messages among those nodes until nothing is left to do |
//! | `partition ID...` / `heal` | puts the listed nodes on a side of their own (messages across sides are dropped at delivery) / removes every partition |
//! | `raft-state` | one line per node: role, membership, term, vote, leader, commit, applied |
//! | `raft-log ID` | the node's log |
//! | `status ID` | the node's status, with every member's progress on a leader |
//! | `compact ID index=I` | snapshots the state machine at `I` and discards the log up to `I` |
//! | `snapshot ID` | snapshots the state machine at the applied index (no compaction) |
//! | `log-level none\|info\|debug` | `none` silences the output of the following commands (errors still show); the others restore it |
//!
//! Errors that a command returns from the Raft core are part of the output (`error: ...`).
//! Mistakes in a transcript (unknown command or argument, no such node) and broken invariants are
//! returned as `Err`, which fails the test. After every command the environment checks election
//! safety (at most one leader per term, over the whole run, §5.2) and state machine safety (no two
//! nodes apply different entries at one index, §5.4.3).
//!
//! Nodes use an election timeout of 3 ticks and a heartbeat interval of 1 tick unless told
//! otherwise; each Ready is persisted and applied at once (`advance`), and a node's state machine
//! is the list of entries with data it applied, which is also what its snapshots carry. Messages
//! are delivered only by `deliver-msgs` and `stabilize`; in particular the application's report on
//! a sent snapshot is a command of its own (`report-snapshot`).
//!
//! A transcript runs through [`InteractionEnv::handle`]; Rust tests can drive the same commands
//! with [`InteractionEnv::run`].

mod delivery;
mod inspect;
mod local;
mod nodes;
mod ready;
mod snapshots;

use datadriven::TestCase;
use raft_core::eraftpb::{ConfState, Entry, Message};
use raft_core::{Config, RawNode, StateRole};
use std::collections::{BTreeMap, HashMap};
use storage_mem::MemStorage;

/// One node of an [`InteractionEnv`]: its RawNode, its storage and its state machine.
pub struct Node {
    /// The node.
    pub raw: RawNode<MemStorage>,
    /// Its persistent storage (shared with `raw`).
    pub storage: MemStorage,
    /// The configuration it was created with.
    pub config: Config,
    /// The state machine: every normal entry with data it applied, in order (restored from a
    /// snapshot's data when it installs one).
    pub applied: Vec<Entry>,
    /// The index of the last entry it applied, or of the snapshot it restored.
    pub applied_index: u64,
    /// Its membership over time: the index each configuration took effect at, oldest first. The
    /// first one is the membership it started with (or restored from a snapshot).
    pub conf_history: Vec<(u64, ConfState)>,
}

/// Where the output of a command goes: indented lines, which `log-level none` silences.
#[derive(Debug, Default)]
struct Output {
    buf: String,
    indent: usize,
    quiet: bool,
}

impl Output {
    /// Writes `text` (one or more lines) at the current indentation, unless silenced.
    fn line(&mut self, text: &str) {
        if !self.quiet {
            self.write(text);
        }
    }

    /// Writes an error line; errors show even when the output is silenced.
    fn error(&mut self, text: &str) {
        self.write(text);
    }

    fn write(&mut self, text: &str) {
        for line in text.lines() {
            for _ in 0..self.indent {
                self.buf.push_str("  ");
            }
            self.buf.push_str(line);
            self.buf.push('\n');
        }
    }
}

/// A cluster of nodes driven one step at a time by transcript commands (see the
/// [module docs](self) for the commands).
pub struct InteractionEnv {
    /// The nodes, by id.
    pub nodes: BTreeMap<u64, Node>,
    /// Messages sent and not yet delivered or dropped, oldest first.
    pub in_flight: Vec<Message>,
    /// The side of the partition each partitioned node is on; nodes not listed are on side 0.
    sides: BTreeMap<u64, u64>,
    next_side: u64,
    /// The leader of every term seen so far (election safety is checked against it).
    leaders: BTreeMap<u64, u64>,
    /// The first entry applied at each index by any node (state machine safety is checked
    /// against it).
    applied_log: BTreeMap<u64, Entry>,
    out: Output,
    logger: slog::Logger,
}

impl Default for InteractionEnv {
    fn default() -> Self {
        InteractionEnv::new()
    }
}

/// A mistake in the transcript or a broken invariant: fails the test.
type CmdResult = Result<(), String>;

impl InteractionEnv {
    /// An empty environment: no nodes, nothing in flight.
    pub fn new() -> InteractionEnv {
        InteractionEnv {
            nodes: BTreeMap::new(),
            in_flight: Vec::new(),
            sides: BTreeMap::new(),
            next_side: 1,
            leaders: BTreeMap::new(),
            applied_log: BTreeMap::new(),
            out: Output::default(),
            logger: slog::Logger::root(slog::Discard, slog::o!()),
        }
    }

    /// Runs one transcript command and returns its output (`ok` when it printed nothing).
    ///
    /// Returns `Err` for a mistake in the transcript (unknown command, unknown or malformed
    /// argument, no such node) and when an invariant is broken after the command.
    pub fn handle(&mut self, tc: &mut TestCase) -> Result<String, String> {
        let mut cmd = Command {
            directive: tc.directive.clone(),
            args: std::mem::take(&mut tc.args),
            input: tc.input.clone(),
        };
        self.execute(&mut cmd)
    }

    /// Runs one command given as a directive line, as in a transcript (for example
    /// `deliver-msgs 2 type=(MsgAppend,MsgSnapshot)`), and returns its output like
    /// [`handle`](Self::handle). For Rust tests that drive the environment directly.
    pub fn run(&mut self, line: &str) -> Result<String, String> {
        self.run_with_input(line, "")
    }

    /// Like [`run`](Self::run), with the lines a transcript would give below the directive (the
    /// changes of `propose-conf-change`, for example).
    pub fn run_with_input(&mut self, line: &str, input: &str) -> Result<String, String> {
        let (directive, args) = parse_directive(line)?;
        let mut input = input.to_string();
        if !input.is_empty() && !input.ends_with('\n') {
            input.push('\n');
        }
        let mut cmd = Command {
            directive,
            args,
            input,
        };
        self.execute(&mut cmd)
    }

    fn execute(&mut self, cmd: &mut Command) -> Result<String, String> {
        self.out.buf.clear();
        self.out.indent = 0;
        let directive = cmd.directive.clone();
        self.dispatch(cmd)
            .and_then(|()| cmd.expect_empty())
            .and_then(|()| self.check_invariants())
            .map_err(|e| format!("{directive}: {e}"))?;
        if self.out.buf.is_empty() {
            return Ok("ok\n".to_string());
        }
        Ok(std::mem::take(&mut self.out.buf))
    }

    fn dispatch(&mut self, cmd: &mut Command) -> CmdResult {
        match cmd.directive.as_str() {
            "add-nodes" => self.add_nodes(cmd),
            "campaign" => self.campaign(cmd),
            "propose" => self.propose(cmd),
            "propose-conf-change" => self.propose_conf_change(cmd),
            "read-index" => self.read_index(cmd),
            "transfer-leader" => self.transfer_leader(cmd),
            "forget-leader" => self.forget_leader(cmd),
            "request-snapshot" => self.request_snapshot(cmd),
            "report-unreachable" => self.report_unreachable(cmd),
            "report-snapshot" => self.report_snapshot(cmd),
            "tick" => self.tick(cmd),
            "tick-election" => self.tick_election(cmd),
            "tick-heartbeat" => self.tick_heartbeat(cmd),
            "process-ready" => self.process_ready_cmd(cmd),
            "deliver-msgs" => self.deliver_msgs(cmd),
            "stabilize" => self.stabilize(cmd),
            "partition" => self.partition(cmd),
            "heal" => self.heal(),
            "raft-state" => self.raft_state(),
            "raft-log" => self.raft_log(cmd),
            "status" => self.status(cmd),
            "compact" => self.compact(cmd),
            "snapshot" => self.snapshot(cmd),
            "log-level" => self.log_level(cmd),
            other => Err(format!("unknown command {other:?}")),
        }
    }

    /// The node with `id`, or an error naming it.
    fn node_mut(&mut self, id: u64) -> Result<&mut Node, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    fn log_level(&mut self, cmd: &mut Command) -> CmdResult {
        let levels: Vec<String> = cmd
            .args
            .iter()
            .filter(|(_, vals)| vals.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        let [level] = levels.as_slice() else {
            return Err(format!(
                "expected one level (none, info, debug), got {levels:?}"
            ));
        };
        cmd.args.remove(level);
        self.out.quiet = match level.to_ascii_lowercase().as_str() {
            "none" => true,
            "info" | "debug" => false,
            other => return Err(format!("unknown log level {other:?}")),
        };
        Ok(())
    }

    /// Election safety (§5.2) over the whole run, and that no node leads a term it is not in.
    fn check_invariants(&mut self) -> CmdResult {
        for (id, node) in &self.nodes {
            if node.raw.raft.state != StateRole::Leader {
                continue;
            }
            let term = node.raw.raft.term;
            match self.leaders.get(&term) {
                Some(other) if other != id => {
                    return Err(format!(
                        "election safety broken: nodes {other} and {id} both led term {term}"
                    ))
                }
                _ => {
                    self.leaders.insert(term, *id);
                }
            }
        }
        Ok(())
    }
}

/// One command: a directive, its arguments (bare words have no values) and its input.
#[derive(Debug, Clone, Default)]
struct Command {
    directive: String,
    args: HashMap<String, Vec<String>>,
    input: String,
}

impl Command {
    /// Fails when an argument was given that the command did not take.
    fn expect_empty(&self) -> CmdResult {
        if self.args.is_empty() {
            return Ok(());
        }
        let mut unused: Vec<&String> = self.args.keys().collect();
        unused.sort();
        Err(format!("unknown arguments {unused:?}"))
    }
}

/// Parses a directive line: `directive word key=value key=(v1,v2) ...`, in datadriven's syntax.
fn parse_directive(line: &str) -> Result<(String, HashMap<String, Vec<String>>), String> {
    // Split at whitespace outside parentheses.
    let mut tokens = Vec::new();
    let (mut token, mut depth) = (String::new(), 0usize);
    for ch in line.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if ch.is_whitespace() && depth == 0 {
            if !token.is_empty() {
                tokens.push(std::mem::take(&mut token));
            }
        } else {
            token.push(ch);
        }
    }
    if !token.is_empty() {
        tokens.push(token);
    }
    let mut tokens = tokens.into_iter();
    let directive = tokens
        .next()
        .ok_or_else(|| format!("no directive in {line:?}"))?;
    let mut args = HashMap::new();
    for token in tokens {
        let (key, values) = match token.split_once('=') {
            None => (token.clone(), Vec::new()),
            Some((key, value)) => {
                let values = match value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
                    Some(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                        .collect(),
                    None => vec![value.to_string()],
                };
                (key.to_string(), values)
            }
        };
        if args.insert(key.clone(), values).is_some() {
            return Err(format!("argument {key} given twice in {line:?}"));
        }
    }
    Ok((directive, args))
}

/// Takes the bare numeric arguments (node ids or a count), in increasing order.
fn take_ids(cmd: &mut Command) -> Vec<u64> {
    let keys: Vec<(String, u64)> = cmd
        .args
        .iter()
        .filter(|(_, vals)| vals.is_empty())
        .filter_map(|(key, _)| key.parse::<u64>().ok().map(|id| (key.clone(), id)))
        .collect();
    let mut ids = Vec::with_capacity(keys.len());
    for (key, id) in keys {
        cmd.args.remove(&key);
        ids.push(id);
    }
    ids.sort_unstable();
    ids
}

/// Takes exactly one bare numeric argument.
fn take_one_id(cmd: &mut Command) -> Result<u64, String> {
    match take_ids(cmd).as_slice() {
        [id] => Ok(*id),
        ids => Err(format!("expected exactly one node id, got {ids:?}")),
    }
}

/// Takes the optional argument `name`, which must have exactly one value, parsed as `T`.
fn opt_arg<T>(cmd: &mut Command, name: &str) -> Result<Option<T>, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(values) = cmd.args.remove(name) else {
        return Ok(None);
    };
    match values.as_slice() {
        [value] => value
            .parse()
            .map(Some)
            .map_err(|e| format!("argument {name}={value}: {e}")),
        _ => Err(format!("argument {name} takes one value, got {values:?}")),
    }
}

/// Takes the optional list argument `name`, each value parsed as `T`.
fn opt_args<T>(cmd: &mut Command, name: &str) -> Result<Option<Vec<T>>, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(values) = cmd.args.remove(name) else {
        return Ok(None);
    };
    values
        .iter()
        .map(|value| {
            value
                .parse()
                .map_err(|e| format!("argument {name}={value}: {e}"))
        })
        .collect::<Result<Vec<T>, String>>()
        .map(Some)
}

/// Takes the required argument `name`, parsed as `T`.
fn req_arg<T>(cmd: &mut Command, name: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    opt_arg(cmd, name)?.ok_or_else(|| format!("missing argument {name}="))
}

/// A payload given as the argument `name` or, failing that, as the input text (without its final
/// newline).
fn payload_arg(cmd: &mut Command, name: &str) -> Result<Vec<u8>, String> {
    if let Some(value) = opt_arg::<String>(cmd, name)? {
        return Ok(value.into_bytes());
    }
    let input = cmd.input.strip_suffix('\n').unwrap_or(&cmd.input);
    if input.is_empty() {
        return Err(format!("give the payload as {name}=... or as the input"));
    }
    Ok(input.as_bytes().to_vec())
}
