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
        }
    }

    /// One line describing the features.
    pub fn describe(&self) -> String {
        format!(
            "{} nodes; loss {} duplication {} reordering {}; pre-vote {}; check-quorum {}; \
             election/heartbeat ticks {}/{}; quiesce after {} idle ticks; {} hot groups; chaos \
             {:.2}; crash any {}; tick weight {}; failure detector delay {} events",
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
        )
    }
}
