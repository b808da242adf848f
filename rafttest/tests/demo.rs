//! The `raft-sim` demo as a test: many seeds, with and without pre-vote, at several cluster sizes and
//! loss rates, must all finish with every safety check passing and every proposal applied once. A
//! longer soak is `cargo test -p rafttest --release --test demo -- --ignored`.

use rafttest::demo::{run, DemoOptions};

fn run_seeds(seeds: std::ops::Range<u64>, nodes: u64, drop_rate: f64, proposals: u64) {
    for seed in seeds {
        for pre_vote in [true, false] {
            let opts = DemoOptions {
                seed,
                nodes,
                proposals,
                drop_rate,
                pre_vote,
                verbose: false,
            };
            if let Err(violation) = run(&opts) {
                panic!(
                    "seed {seed} nodes {nodes} drop {drop_rate} pre_vote {pre_vote}: {violation}\n\
                     replay: cargo run -p rafttest --release --bin raft-sim -- --seed {seed} \
                     --nodes {nodes} --proposals {proposals} --drop {drop_rate} {} --verbose",
                    if pre_vote {
                        "--pre-vote"
                    } else {
                        "--no-pre-vote"
                    }
                );
            }
        }
    }
}

#[test]
fn five_nodes_with_five_percent_loss_stay_safe_and_live() {
    run_seeds(0..20, 5, 0.05, 200);
}

#[test]
fn three_and_seven_nodes_with_heavy_loss_stay_safe_and_live() {
    run_seeds(0..10, 3, 0.3, 100);
    run_seeds(0..10, 7, 0.3, 100);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let opts = DemoOptions {
        seed: 42,
        ..DemoOptions::default()
    };
    let (a, b) = (run(&opts).unwrap(), run(&opts).unwrap());
    assert_eq!(
        (
            a.ticks,
            a.delivered,
            a.dropped,
            a.leaders.clone(),
            a.final_commit
        ),
        (b.ticks, b.delivered, b.dropped, b.leaders, b.final_commit),
        "two runs of seed 42 differ"
    );
}

#[test]
#[ignore = "soak: run with --release -- --ignored"]
fn soak_many_seeds() {
    for nodes in [3, 5, 7] {
        run_seeds(0..500, nodes, 0.2, 300);
    }
}
