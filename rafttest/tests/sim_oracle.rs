//! The simulator as a pass/fail oracle for mutation testing (`cargo mutants`, see
//! `rafttest/mutants/README.md`): the default swarm over `SIM_ORACLE_SEEDS` seeds (default 300)
//! must find no violation. Ignored in ordinary runs; in release mode it takes seconds.

use rafttest::sim::{run, SimOptions};

#[test]
#[ignore = "the mutation-testing oracle; run in release with --ignored"]
fn the_default_swarm_finds_no_violation() {
    let seeds: u64 = std::env::var("SIM_ORACLE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 1..=seeds {
        let opts = SimOptions {
            seed,
            ..Default::default()
        };
        if let Err(failure) = run(&opts) {
            panic!("seed {seed}: {failure}");
        }
    }
}
