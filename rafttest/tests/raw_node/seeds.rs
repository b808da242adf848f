//! Seeded election timeouts: the same seed gives the same timeouts and campaigns, within
//! `min_election_tick..max_election_tick`.

use crate::harness::*;
use raft_core::Config;

// ---------------------------------------------------------------------------------------------
// Seeded election timeouts.
// ---------------------------------------------------------------------------------------------

fn timeout_draws(cfg: &Config, n: usize) -> Vec<usize> {
    let mut p = Peer::fresh(cfg, &[1, 2, 3]);
    let mut draws = vec![p.node.raft.randomized_election_timeout()];
    for _ in 1..n {
        p.node.raft.reset_randomized_election_timeout();
        draws.push(p.node.raft.randomized_election_timeout());
    }
    draws
}

fn seeded(id: u64, seed: Option<u64>) -> Config {
    Config { seed, ..config(id) }
}

/// The number of ticks between successive campaigns of node `cfg.id` (which never wins: nobody
/// answers), `rounds` times.
fn ticks_between_campaigns(cfg: &Config, rounds: usize) -> Vec<usize> {
    let mut p = Peer::fresh(cfg, &[1, 2, 3]);
    let mut out = Vec::new();
    let mut ticks = 0;
    while out.len() < rounds {
        let term = p.node.raft.term;
        p.node.tick();
        ticks += 1;
        if p.node.raft.term != term {
            out.push(ticks);
            ticks = 0;
        }
        assert!(ticks <= 100, "node {} never campaigned", cfg.id);
    }
    out
}

#[test]
fn same_seed_gives_same_randomized_election_timeouts() {
    let a = timeout_draws(&seeded(1, Some(42)), 50);
    let b = timeout_draws(&seeded(2, Some(42)), 50);
    assert_eq!(
        a, b,
        "nodes 1 and 2 share a seed but drew different timeouts"
    );
    let c = timeout_draws(&seeded(1, Some(43)), 50);
    assert_ne!(a, c, "a different seed should give a different sequence");
}

#[test]
fn same_seed_campaigns_after_the_same_number_of_ticks() {
    let a = ticks_between_campaigns(&seeded(1, Some(7)), 8);
    let b = ticks_between_campaigns(&seeded(3, Some(7)), 8);
    assert_eq!(a, b);
    let c = ticks_between_campaigns(&seeded(1, Some(7)), 8);
    assert_eq!(a, c, "a rerun replays the same timeouts");
}

#[test]
fn config_seed_overrides_the_default_derived_from_id() {
    let default_1 = timeout_draws(&seeded(1, None), 50);
    let default_2 = timeout_draws(&seeded(2, None), 50);
    assert_ne!(
        default_1, default_2,
        "different ids should derive different seeds"
    );
    // Node 1 given node 2's derived seed draws node 2's sequence.
    let borrowed = Config::new(2).effective_seed();
    assert_eq!(seeded(1, Some(borrowed)).effective_seed(), borrowed);
    assert_eq!(timeout_draws(&seeded(1, Some(borrowed)), 50), default_2);
    assert_eq!(
        Config::new(5).effective_seed(),
        seeded(5, None).effective_seed()
    );
}

#[test]
fn randomized_election_timeouts_stay_within_min_and_max() {
    for draw in timeout_draws(&config(1), 200) {
        assert!(
            (10..20).contains(&draw),
            "default range [10, 20): drew {draw}"
        );
    }
    let cfg = Config {
        min_election_tick: 12,
        max_election_tick: 14,
        ..config(1)
    };
    let draws = timeout_draws(&cfg, 200);
    assert!(
        draws.iter().all(|d| (12..14).contains(d)),
        "draws: {draws:?}"
    );
    assert!(
        draws.contains(&12) && draws.contains(&13),
        "both values of [12, 14) should be drawn: {draws:?}"
    );
}
