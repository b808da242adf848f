//! Frozen sleeping groups in the multi-raft simulator (issue 17): `raft-multi` packs a group
//! asleep with nothing in flight and thaws it when anything reaches it. Thawing restores exactly
//! the node that was frozen, so a run with freezing must do exactly what the same seed does
//! with every group kept live: the same events, in the same order (equal fingerprints).

use rafttest::multisim::{run, MultiOptions};

#[test]
fn freezing_sleeping_groups_changes_nothing_a_run_does() {
    let mut frozen = 0;
    for seed in [3, 11] {
        let opts = MultiOptions {
            seed,
            groups: 100,
            events: 2000,
            ..MultiOptions::default()
        };
        let with = run(&opts).unwrap_or_else(|failure| panic!("seed {seed}: {failure}"));
        let without = run(&MultiOptions {
            no_freeze: true,
            ..opts
        })
        .unwrap_or_else(|failure| panic!("seed {seed} without freezing: {failure}"));
        assert_eq!(without.frozen, 0, "seed {seed}: nothing frozen when off");
        assert!(with.naps > 0, "seed {seed}: groups slept");
        assert_eq!(
            with.fingerprint, without.fingerprint,
            "seed {seed}: the same run with and without freezing"
        );
        assert_eq!(with.envelopes_sent, without.envelopes_sent, "seed {seed}");
        frozen += with.frozen;
    }
    assert!(
        frozen >= 100,
        "sleeping groups were frozen only {frozen} times"
    );
}
