//! What a run simulates: the options a user pins ([`SimOptions`]) and the features each seed draws
//! for itself ([`Features`], swarm testing).
//!
//! Swarm testing (Groce et al., ISSTA 2012; FoundationDB's BUGGIFY): instead of one fixed mix of
//! settings and faults for every run, each seed draws its own, so some runs have no pre-vote, some
//! one entry per message, some a window of one inflight append, some lease reads on a shared clock,
//! some a lossy network and others a clean one. A bug that a busy fixed mix hides (because another
//! mechanism masks it) shows up in the seeds whose mix leaves it exposed. Every option left unset
//! (`None`) is drawn from the seed; every option set is pinned for all seeds.

use raft_core::ReadOnlyOption;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A bug planted in the simulated application, to show that the checker catches what it claims
/// to (a test-only hook: the core is untouched, the application around it misbehaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// A restarted node's storage has lost the term and vote it persisted: it may vote again in a
    /// term it already voted in.
    ForgetVoteOnRestart,
    /// The application sends the messages that must wait for persistence (acknowledgements,
    /// votes) as soon as it takes the Ready: a crash then loses state others rely on.
    AckBeforePersist,
    /// A node on `storage-disk` never fsyncs, whatever `must_sync` says: its writes reach the
    /// disk's cache only, and a crash loses them after they were acknowledged.
    IgnoreMustSync,
    /// A node on `storage-disk` whose entries cannot be read (a transient I/O error) hands its
    /// core the entries the index knows of, their payload left empty, instead of the error.
    ReadErrorAsEmptyPayload,
}

/// What to simulate. `None` fields are drawn per seed (swarm testing); set ones are pinned.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seeds every choice of the run, the drawn features included.
    pub seed: u64,
    /// Initial voters `1..=nodes` (drawn from 1-7 when unset).
    pub nodes: Option<u64>,
    /// Spare ids that membership churn may add (`nodes+1..=nodes+spares`).
    pub spares: u64,
    /// Events in the faulty phase.
    pub events: u64,
    /// Probability that a sent message is lost.
    pub loss: Option<f64>,
    /// Probability that a sent message is delivered twice.
    pub duplication: Option<f64>,
    /// Probability that delivery picks a random in-flight message instead of the oldest.
    pub reordering: Option<f64>,
    /// Run crashes and restarts.
    pub crashes: bool,
    /// Run membership changes.
    pub membership: bool,
    /// Nodes run pre-vote.
    pub pre_vote: Option<bool>,
    /// Nodes run check-quorum.
    pub check_quorum: Option<bool>,
    /// How reads are confirmed (lease reads need check-quorum and run on a shared clock).
    pub read_mode: Option<ReadOnlyOption>,
    /// Draw the unset options per seed; with `false` they take the fixed defaults of
    /// [`Features::fixed`].
    pub swarm: bool,
    /// Print every event.
    pub verbose: bool,
    /// Stop after this event (for replays); 0 means run them all.
    pub stop_after: u64,
    /// A bug to plant in the application (tests of the checker only).
    pub planted_bug: Option<PlantedBug>,
    /// The share of nodes on `storage-disk` over a simulated disk (drawn per seed when unset).
    pub disk: Option<f64>,
    /// Whether those disks fail reads and, on one node, corrupt what they hold (drawn per seed
    /// when unset; see `Features::disk_read_errors` and `Features::damaged_disk`).
    pub disk_faults: Option<bool>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            nodes: None,
            spares: 2,
            events: 10_000,
            loss: None,
            duplication: None,
            reordering: None,
            crashes: true,
            membership: true,
            pre_vote: None,
            check_quorum: None,
            read_mode: None,
            swarm: true,
            verbose: false,
            stop_after: 0,
            planted_bug: None,
            disk: None,
            disk_faults: None,
        }
    }
}

impl SimOptions {
    /// The command that replays this run with verbose output up to `event`: the seed and the
    /// pinned options (the drawn ones follow from the seed).
    pub fn replay_command(&self, event: u64) -> String {
        let mut cmd = format!(
            "cargo run -p rafttest --release --bin raft-sim -- --seed {} --events {}",
            self.seed, self.events
        );
        let mut push = |s: String| {
            cmd.push(' ');
            cmd.push_str(&s);
        };
        if let Some(n) = self.nodes {
            push(format!("--nodes {n}"));
        }
        if self.spares != 2 {
            push(format!("--spares {}", self.spares));
        }
        for (value, flag) in [
            (self.loss, "--loss"),
            (self.duplication, "--duplication"),
            (self.reordering, "--reordering"),
        ] {
            if let Some(p) = value {
                push(format!("{flag} {p}"));
            }
        }
        for (on, flag) in [
            (self.crashes, "--no-crashes"),
            (self.membership, "--no-membership"),
            (self.swarm, "--no-swarm"),
        ] {
            if !on {
                push(flag.to_string());
            }
        }
        for (value, on, off) in [
            (self.pre_vote, "--pre-vote on", "--pre-vote off"),
            (self.check_quorum, "--check-quorum on", "--check-quorum off"),
        ] {
            if let Some(v) = value {
                push(if v { on } else { off }.to_string());
            }
        }
        if let Some(mode) = self.read_mode {
            push(format!("--read-mode {}", read_mode_name(mode)));
        }
        if let Some(share) = self.disk {
            push(format!("--disk {share}"));
        }
        if let Some(on) = self.disk_faults {
            push(format!("--disk-faults {}", if on { "on" } else { "off" }));
        }
        push(format!("--stop-after {event} --verbose"));
        cmd
    }
}

/// The command-line name of a read mode.
pub fn read_mode_name(mode: ReadOnlyOption) -> &'static str {
    match mode {
        ReadOnlyOption::Safe => "safe",
        ReadOnlyOption::LeaseBased => "lease",
    }
}

/// The per-read probabilities of an I/O error that seeds draw from (`--disk-faults on` pins the
/// highest).
const DISK_READ_ERRORS: [f64; 3] = [0.0, 0.01, 0.05];

/// How the nodes' clocks advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Each tick event ticks one node, each node at its own rate (clock skew). Lease reads are
    /// unsafe here by design (a lease assumes clocks that run at the same rate).
    Skewed,
    /// Each tick event ticks every running node: clocks run at one rate, as a lease needs.
    Shared,
}

/// The features and fault mix of one seed's run.
#[derive(Debug, Clone)]
pub struct Features {
    /// Initial voters.
    pub nodes: u64,
    /// Message loss, duplication and reordering probabilities.
    pub loss: f64,
    /// See [`SimOptions::duplication`].
    pub duplication: f64,
    /// See [`SimOptions::reordering`].
    pub reordering: f64,
    /// Pre-vote on every node.
    pub pre_vote: bool,
    /// Check-quorum on every node.
    pub check_quorum: bool,
    /// Read mode of every node.
    pub read_mode: ReadOnlyOption,
    /// How clocks advance.
    pub clock: Clock,
    /// `Config::election_tick` and `heartbeat_tick`.
    pub election_tick: usize,
    /// See [`Features::election_tick`].
    pub heartbeat_tick: usize,
    /// `Config::max_size_per_msg`.
    pub max_size_per_msg: u64,
    /// `Config::max_inflight_msgs`.
    pub max_inflight_msgs: usize,
    /// `Config::max_committed_size_per_ready`.
    pub max_committed_size_per_ready: u64,
    /// `Config::skip_bcast_commit`.
    pub skip_bcast_commit: bool,
    /// `Config::batch_append`.
    pub batch_append: bool,
    /// `Config::disable_proposal_forwarding`.
    pub no_forwarding: bool,
    /// How many Readys a node may hold unpersisted before it must write one (pipelining depth).
    pub async_depth: usize,
    /// Probability that a node handles its Readys synchronously (`advance`) instead of
    /// asynchronously (`on_persist_ready` / `advance_apply_to`); drawn per node.
    pub sync_share: f64,
    /// How often disks complete writes: 1.0 normal, lower is slower.
    pub disk_speed: f64,
    /// How often disruptive events (crashes, partitions, transfers, membership changes) happen,
    /// from 0.1 (mostly calm) to 1.0.
    pub chaos: f64,
    /// Probability that a newly elected leader is hit at once (cut off or crashed), and that a
    /// leader that just proposed a membership change is.
    pub targeted: f64,
    /// Crashes may take down any number of nodes (else a majority of the initial size stays up).
    pub crash_any: bool,
    /// Relative weight of ticks against message deliveries (a slow network elects more often).
    pub tick_weight: u32,
    /// Relative weight of taking and of writing Readys (low: many messages are stepped between
    /// two Readys; high: Readys follow every step).
    pub ready_weight: u32,
    /// Election priorities (raft-rs): `None` leaves every node at 0; `Some(salt)` gives node `id`
    /// the priority [`Features::priority`] derives from the salt.
    pub priorities: Option<u64>,
    /// Entry payload bytes in flight to one follower (`Config::max_inflight_bytes`).
    pub max_inflight_bytes: u64,
    /// Uncommitted payload bytes a leader accepts (`Config::max_uncommitted_size`).
    pub max_uncommitted_size: u64,
    /// A leader no longer a voter steps down (`Config::step_down_on_removal`).
    pub step_down_on_removal: bool,
    /// The randomised election timeout's upper bound, in election timeouts (2 is the default).
    pub election_spread: usize,
    /// The share of nodes whose durable state lives on `storage-disk` over a simulated disk that
    /// loses, tears and reorders unsynced writes at a crash (see `sim::disk`); 0 for none.
    pub disk_share: f64,
    /// On those disks, the probability that an fsync fails (the node then stops and restarts).
    pub disk_sync_errors: f64,
    /// On those disks, the probability that a read fails with an I/O error (transient: the core
    /// gives up on that read and retries later).
    pub disk_read_errors: f64,
    /// One node on `storage-disk` (of at least three voters) has a disk whose medium is damaged
    /// while the nemesis runs: bits flip at rest and writes are misdirected (see `sim::damage`).
    pub damaged_disk: bool,
    /// Leaders put idle groups to sleep (`RawNode::quiesce`); a failure detector wakes the nodes
    /// some time after a crash, and now and then at random.
    pub quiescence: bool,
}

impl Features {
    /// The fixed mix used with `--no-swarm` for unset options.
    pub fn fixed(opts: &SimOptions) -> Features {
        let check_quorum = opts.check_quorum.unwrap_or(true);
        let read_mode = opts.read_mode.unwrap_or(ReadOnlyOption::Safe);
        Features {
            nodes: opts.nodes.unwrap_or(5),
            loss: opts.loss.unwrap_or(0.05),
            duplication: opts.duplication.unwrap_or(0.02),
            reordering: opts.reordering.unwrap_or(0.2),
            pre_vote: opts.pre_vote.unwrap_or(true),
            check_quorum,
            read_mode,
            clock: if read_mode == ReadOnlyOption::LeaseBased {
                Clock::Shared
            } else {
                Clock::Skewed
            },
            election_tick: 10,
            heartbeat_tick: 2,
            max_size_per_msg: 4096,
            max_inflight_msgs: 8,
            max_committed_size_per_ready: u64::MAX,
            skip_bcast_commit: false,
            batch_append: false,
            no_forwarding: false,
            async_depth: usize::MAX,
            sync_share: 0.0,
            disk_speed: 1.0,
            chaos: 0.5,
            targeted: 0.0,
            crash_any: false,
            tick_weight: 160,
            ready_weight: 130,
            priorities: None,
            max_inflight_bytes: raft_core::NO_LIMIT,
            max_uncommitted_size: raft_core::NO_LIMIT,
            step_down_on_removal: true,
            election_spread: 2,
            disk_share: opts.disk.unwrap_or(0.0),
            disk_sync_errors: 0.0,
            disk_read_errors: if opts.disk_faults == Some(true) {
                DISK_READ_ERRORS[2]
            } else {
                0.0
            },
            damaged_disk: opts.disk_faults == Some(true),
            quiescence: false,
        }
    }

    /// Node `id`'s election priority: 0 to 2 when priorities are drawn, else 0.
    pub fn priority(&self, id: u64) -> i64 {
        self.priorities.map_or(0, |salt| {
            ((salt ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 62) as i64 % 3
        })
    }

    /// Draws the features of `opts.seed` (pinned options are kept).
    pub fn draw(opts: &SimOptions) -> Features {
        let mut f = Features::fixed(opts);
        // Its own stream, so adding a feature changes no other draw of the run.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0x5a7a_4d15);
        f.chaos = rng.random_range(0.1..1.0);
        if !opts.swarm {
            return f;
        }
        f.nodes = opts
            .nodes
            .unwrap_or_else(|| [1, 2, 3, 3, 3, 4, 5, 5, 5, 6, 7][rng.random_range(0..11)]);
        let net = rng.random_range(0..4u32);
        f.loss = opts.loss.unwrap_or(match net {
            0 => 0.0,
            1 => 0.02,
            2 => 0.1,
            _ => 0.25,
        });
        f.duplication = opts
            .duplication
            .unwrap_or([0.0, 0.02, 0.1][rng.random_range(0..3)]);
        f.reordering = opts
            .reordering
            .unwrap_or([0.0, 0.2, 0.5][rng.random_range(0..3)]);
        f.pre_vote = opts.pre_vote.unwrap_or(rng.random_bool(0.5));
        f.check_quorum = opts.check_quorum.unwrap_or(rng.random_bool(0.6));
        let lease = f.check_quorum && rng.random_bool(0.4);
        f.read_mode = opts.read_mode.unwrap_or(if lease {
            ReadOnlyOption::LeaseBased
        } else {
            ReadOnlyOption::Safe
        });
        if f.read_mode == ReadOnlyOption::LeaseBased {
            // Config::validate refuses a lease without check-quorum.
            f.check_quorum = true;
        }
        f.clock = if f.read_mode == ReadOnlyOption::LeaseBased || rng.random_bool(0.3) {
            Clock::Shared
        } else {
            Clock::Skewed
        };
        (f.election_tick, f.heartbeat_tick) =
            [(10, 2), (10, 1), (6, 2), (20, 3)][rng.random_range(0..4)];
        f.max_size_per_msg = [1, 64, 4096, u64::MAX][rng.random_range(0..4)];
        f.max_inflight_msgs = [1, 2, 8, 256][rng.random_range(0..4)];
        f.max_committed_size_per_ready = [1, 256, u64::MAX, u64::MAX][rng.random_range(0..4)];
        f.skip_bcast_commit = rng.random_bool(0.2);
        f.batch_append = rng.random_bool(0.3);
        f.no_forwarding = rng.random_bool(0.15);
        f.async_depth = [1, 2, 8, usize::MAX][rng.random_range(0..4)];
        f.sync_share = [0.0, 0.0, 0.5, 1.0][rng.random_range(0..4)];
        f.disk_speed = [1.0, 0.6, 0.25][rng.random_range(0..3)];
        f.targeted = [0.0, 0.3, 0.8][rng.random_range(0..3)];
        f.crash_any = rng.random_bool(0.25);
        f.tick_weight = [60, 160, 400][rng.random_range(0..3)];
        f.ready_weight = [30, 130, 130, 300][rng.random_range(0..4)];
        // Drawn last, so that the draws above stay what they were before these were added.
        f.priorities = rng.random_bool(0.25).then(|| rng.random());
        f.max_inflight_bytes =
            [raft_core::NO_LIMIT, raft_core::NO_LIMIT, 4096, 64][rng.random_range(0..4)];
        f.max_uncommitted_size =
            [raft_core::NO_LIMIT, raft_core::NO_LIMIT, 4096, 256][rng.random_range(0..4)];
        f.step_down_on_removal = rng.random_bool(0.75);
        f.election_spread = [2, 2, 3, 5][rng.random_range(0..4)];
        f.disk_share = opts
            .disk
            .unwrap_or([0.0, 0.0, 0.5, 1.0][rng.random_range(0..4)]);
        f.disk_sync_errors = [0.0, 0.001, 0.01][rng.random_range(0..3)];
        f.quiescence = rng.random_bool(0.4);
        let read_errors = DISK_READ_ERRORS[rng.random_range(0..3)];
        let damaged = rng.random_bool(0.5);
        if opts.disk_faults.is_none() {
            f.disk_read_errors = read_errors;
            f.damaged_disk = damaged;
        }
        f
    }

    /// One line naming every feature, for the verbose log and failure reports.
    pub fn describe(&self) -> String {
        let size = |s: u64| {
            if s == u64::MAX {
                "unlimited".to_string()
            } else {
                format!("{s} bytes")
            }
        };
        format!(
            "{} nodes; loss {} duplication {} reordering {}; pre-vote {}; check-quorum {}; reads \
             {}; clock {:?}; election/heartbeat ticks {}/{}; max msg {}; inflight {}; committed \
             per Ready {}; skip-bcast-commit {}; batch-append {}; forwarding {}; async depth {}; \
             sync nodes {}; disk speed {}; chaos {:.2}; targeted {}; crash any {}; tick weight {}; \
             ready weight {}; priorities {}; inflight bytes {}; uncommitted {}; \
             step-down-on-removal {}; election timeout up to {}x; nodes on storage-disk {}; \
             fsync errors {}; read errors {}; damaged disk {}; quiescence {}",
            self.nodes,
            self.loss,
            self.duplication,
            self.reordering,
            self.pre_vote,
            self.check_quorum,
            read_mode_name(self.read_mode),
            self.clock,
            self.election_tick,
            self.heartbeat_tick,
            size(self.max_size_per_msg),
            self.max_inflight_msgs,
            size(self.max_committed_size_per_ready),
            self.skip_bcast_commit,
            self.batch_append,
            !self.no_forwarding,
            if self.async_depth == usize::MAX {
                "unbounded".to_string()
            } else {
                self.async_depth.to_string()
            },
            self.sync_share,
            self.disk_speed,
            self.chaos,
            self.targeted,
            self.crash_any,
            self.tick_weight,
            self.ready_weight,
            self.priorities.is_some(),
            size(self.max_inflight_bytes),
            size(self.max_uncommitted_size),
            self.step_down_on_removal,
            self.election_spread,
            self.disk_share,
            self.disk_sync_errors,
            self.disk_read_errors,
            self.damaged_disk,
            self.quiescence,
        )
    }
}
