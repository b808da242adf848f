//! What a multi-raft run simulates: the options a user pins ([`MultiOptions`]) and the features
//! each seed draws for itself ([`MultiFeatures`], swarm testing as in [`crate::sim::options`]).

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A bug planted in the simulated application, to show that the checker catches what it claims
/// to (a test-only hook: `raft-core` and `raft-multi` are untouched, the application around them
/// misbehaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiPlantedBug {
    /// At every fsync the first group of the batch that has entries is acknowledged but not
    /// written: the node counts towards a quorum for entries it does not hold.
    SkipPersistOneGroup,
    /// The failure detector never calls `node_down`: a group whose leader died while the group
    /// slept is never woken, so it never elects a new leader.
    NoFailureDetector,
    /// A node on the shared log writes every batch but never fsyncs it, and acknowledges it all
    /// the same: a power loss then takes entries and votes the node promised to keep.
    DiskSkipsFsync,
    /// A read of the shared log that fails with an I/O error is answered with the entries'
    /// places (index and term) and nothing in them, as a storage layer that swallows its read
    /// errors might: the core sends and applies empty entries.
    ReadErrorAsEmptyPayload,
}

/// What to simulate. `None` fields are drawn per seed; set ones are pinned.
#[derive(Debug, Clone)]
pub struct MultiOptions {
    /// Seeds every choice of the run, the drawn features included.
    pub seed: u64,
    /// Nodes, each holding a replica of every group (drawn from 3-5 when unset).
    pub nodes: Option<u64>,
    /// Groups (ids `1..=groups`).
    pub groups: u64,
    /// Events in the faulty phase.
    pub events: u64,
    /// Probability that an envelope is lost.
    pub loss: Option<f64>,
    /// Probability that an envelope is delivered twice.
    pub duplication: Option<f64>,
    /// Probability that delivery picks a random envelope in flight instead of the oldest.
    pub reordering: Option<f64>,
    /// Run crashes and restarts.
    pub crashes: bool,
    /// Run partitions.
    pub partitions: bool,
    /// The share of nodes whose groups live in one shared `MultiLog` on a simulated disk that
    /// loses, tears and reorders unsynced writes at a crash and fails fsyncs now and then (see
    /// `multisim::disk`); the others keep each group in a `MemStorage` that holds exactly what
    /// they synced. Drawn per seed when unset: half the nodes or all of them.
    pub disk: Option<f64>,
    /// Whether the core's reads of those disks fail now and then: `Some(true)` pins one read in
    /// ten failing and no entry cache (nearly every read goes to the disk), `Some(false)` no read
    /// errors; drawn per seed when unset.
    pub disk_faults: Option<bool>,
    /// Print every event.
    pub verbose: bool,
    /// Stop after this event (for replays); 0 means run them all.
    pub stop_after: u64,
    /// A bug to plant in the application (tests of the checker only).
    pub planted_bug: Option<MultiPlantedBug>,
    /// Keep sleeping groups live instead of frozen (`MultiConfig::freeze_sleeping_groups`
    /// off): a run must then go exactly as with freezing, since thawing restores the node.
    pub no_freeze: bool,
}

impl Default for MultiOptions {
    fn default() -> Self {
        MultiOptions {
            seed: 1,
            nodes: None,
            groups: 1000,
            events: 10_000,
            loss: None,
            duplication: None,
            reordering: None,
            crashes: true,
            partitions: true,
            disk: None,
            disk_faults: None,
            verbose: false,
            stop_after: 0,
            planted_bug: None,
            no_freeze: false,
        }
    }
}

impl MultiOptions {
    /// The command that replays this run with verbose output up to `event`.
    pub fn replay_command(&self, event: u64) -> String {
        let mut cmd = format!(
            "cargo run -p rafttest --release --bin raft-sim -- --multi --seed {} --groups {} \
             --events {}",
            self.seed, self.groups, self.events
        );
        let mut push = |s: String| {
            cmd.push(' ');
            cmd.push_str(&s);
        };
        if let Some(n) = self.nodes {
            push(format!("--nodes {n}"));
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
        if let Some(share) = self.disk {
            push(format!("--disk {share}"));
        }
        if let Some(on) = self.disk_faults {
            push(format!("--disk-faults {}", if on { "on" } else { "off" }));
        }
        if !self.crashes && !self.partitions {
            push("--faults none".to_string());
        } else if !self.crashes {
            push("--faults network".to_string());
        } else if !self.partitions {
            push("--faults crashes".to_string());
        }
        push(format!("--stop-after {event} --verbose"));
        cmd
    }
}

/// The features and fault mix of one seed's run.
#[derive(Debug, Clone)]
pub struct MultiFeatures {
    /// Nodes.
    pub nodes: u64,
    /// Envelope loss, duplication and reordering probabilities.
    pub loss: f64,
    /// See [`MultiOptions::duplication`].
    pub duplication: f64,
    /// See [`MultiOptions::reordering`].
    pub reordering: f64,
    /// Pre-vote on every group.
    pub pre_vote: bool,
    /// Check-quorum on every group.
    pub check_quorum: bool,
    /// `Config::election_tick` and `heartbeat_tick`.
    pub election_tick: usize,
    /// See [`MultiFeatures::election_tick`].
    pub heartbeat_tick: usize,
    /// `MultiConfig::quiesce_after_idle_ticks`.
    pub quiesce_after: u32,
    /// Groups that take most proposals; the others get one now and then.
    pub hot_groups: u64,
    /// How often disruptive events (crashes, partitions) happen, from 0.1 to 1.0.
    pub chaos: f64,
    /// Crashes may take down any number of nodes (else a majority stays up).
    pub crash_any: bool,
    /// Relative weight of a node's tick against the other events.
    pub tick_weight: u32,
    /// The failure detector's usual delay, in events, before it reports a node down; one notice
    /// in four takes up to ten times longer.
    pub detector_delay: u64,
    /// `MultiConfig::freeze_sleeping_groups` (not drawn: [`MultiOptions::no_freeze`]).
    pub freeze: bool,
    /// The nodes whose groups live in a shared log on a simulated disk (see
    /// [`MultiOptions::disk`]), in increasing order.
    pub disk_nodes: Vec<u64>,
    /// On those disks: the chance that an fsync fails (the node then stops and restarts from
    /// what its disk kept).
    pub disk_sync_errors: f64,
    /// The chance that one unsynced sector survives a power loss.
    pub disk_keep_unsynced: f64,
    /// The shared log's segment size in bytes: small, so that segments rotate, lagging groups'
    /// entries are copied forward and checkpoints free old segments within a run.
    pub disk_segment_bytes: u64,
    /// The shared log's cache of recent entries per group, in bytes: with a small one most reads
    /// of the core go to the disk.
    pub disk_cache_bytes: usize,
    /// How many segments back a group's first entry may lie before the log copies it forward.
    pub disk_rewrite_lag: u64,
    /// The chance that one read of the disk fails with an I/O error while the core reads its
    /// groups (a transient error: the core gives up that read and tries again later).
    pub disk_read_errors: f64,
}

impl MultiFeatures {
    /// Draws the features of `opts.seed` (pinned options are kept).
    pub fn draw(opts: &MultiOptions) -> MultiFeatures {
        // Its own stream, so adding a feature changes no other draw of the run.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ 0x3417_4a57);
        let nodes = opts
            .nodes
            .unwrap_or([3, 3, 4, 5, 5][rng.random_range(0..5)]);
        let loss = opts
            .loss
            .unwrap_or([0.0, 0.02, 0.1, 0.2][rng.random_range(0..4)]);
        let duplication = opts
            .duplication
            .unwrap_or([0.0, 0.02, 0.1][rng.random_range(0..3)]);
        let reordering = opts
            .reordering
            .unwrap_or([0.0, 0.2, 0.5][rng.random_range(0..3)]);
        let (election_tick, heartbeat_tick) = [(10, 2), (10, 1), (6, 2)][rng.random_range(0..3)];
        MultiFeatures {
            nodes,
            loss,
            duplication,
            reordering,
            pre_vote: rng.random_bool(0.8),
            check_quorum: rng.random_bool(0.7),
            election_tick,
            heartbeat_tick,
            quiesce_after: [2, 5, 10, 30][rng.random_range(0..4)],
            hot_groups: [1, 4, 16][rng.random_range(0..3)].min(opts.groups),
            chaos: rng.random_range(0.1..1.0),
            crash_any: rng.random_bool(0.25),
            tick_weight: [30, 60, 150][rng.random_range(0..3)],
            detector_delay: [20, 100, 400][rng.random_range(0..3)],
            freeze: !opts.no_freeze,
            disk_nodes: Vec::new(),
            disk_sync_errors: 0.0,
            disk_keep_unsynced: 0.5,
            disk_segment_bytes: 0,
            disk_cache_bytes: 0,
            disk_rewrite_lag: 0,
            disk_read_errors: 0.0,
        }
        .draw_disks(opts, &mut rng)
    }

    /// Draws which nodes are on the shared log and how their disks behave. Drawn after every
    /// other feature, so that those stay what they were before disks were added.
    fn draw_disks(mut self, opts: &MultiOptions, rng: &mut Xoshiro256PlusPlus) -> MultiFeatures {
        let share = opts.disk.unwrap_or([0.5, 1.0, 1.0][rng.random_range(0..3)]);
        let count = ((share * self.nodes as f64).round() as u64)
            .max(u64::from(share > 0.0))
            .min(self.nodes);
        let mut ids: Vec<u64> = (1..=self.nodes).collect();
        while ids.len() as u64 > count {
            ids.remove(rng.random_range(0..ids.len()));
        }
        self.disk_nodes = ids;
        self.disk_sync_errors = [0.0, 0.001, 0.01][rng.random_range(0..3)];
        self.disk_keep_unsynced = [0.1, 0.5, 0.9][rng.random_range(0..3)];
        // Groups here never compact, so the log frees segments only by copying every lagging
        // group's entries forward: the segments a group's first entry may lag behind must hold
        // far more than all groups' entries (about half a megabyte at the end of a long run),
        // or the copies themselves fill the log and are copied again without end.
        (self.disk_segment_bytes, self.disk_rewrite_lag) =
            [(32 << 10, 32), (64 << 10, 16), (256 << 10, 8)][rng.random_range(0..3)];
        self.disk_cache_bytes = [256, 64 << 10][rng.random_range(0..2)];
        // Drawn last, so that the draws above stay what they were before read errors: the
        // chance of a read error, and a cache of no entries (the log still keeps each group's
        // last one) that sends nearly every read of the core to the disk.
        let read_errors = [0.0, 0.01, 0.1][rng.random_range(0..3)];
        let no_cache = rng.random_bool(0.4);
        (self.disk_read_errors, self.disk_cache_bytes) = match opts.disk_faults {
            Some(true) => (0.1, 0),
            Some(false) => (0.0, self.disk_cache_bytes),
            None if no_cache => (read_errors, 0),
            None => (read_errors, self.disk_cache_bytes),
        };
        self
    }

    /// One line describing the features.
    pub fn describe(&self) -> String {
        format!(
            "{} nodes; loss {} duplication {} reordering {}; pre-vote {}; check-quorum {}; \
             election/heartbeat ticks {}/{}; quiesce after {} idle ticks; {} hot groups; chaos \
             {:.2}; crash any {}; tick weight {}; failure detector delay {} events; nodes on a \
             shared log {:?} (fsync errors {}, read errors {}, unsynced sectors kept {}, \
             segments of {} KiB, cache {} bytes per group, copy-forward lag {} segments)",
            self.nodes,
            self.loss,
            self.duplication,
            self.reordering,
            self.pre_vote,
            self.check_quorum,
            self.election_tick,
            self.heartbeat_tick,
            self.quiesce_after,
            self.hot_groups,
            self.chaos,
            self.crash_any,
            self.tick_weight,
            self.detector_delay,
            self.disk_nodes,
            self.disk_sync_errors,
            self.disk_read_errors,
            self.disk_keep_unsynced,
            self.disk_segment_bytes >> 10,
            self.disk_cache_bytes,
            self.disk_rewrite_lag,
        )
    }
}
