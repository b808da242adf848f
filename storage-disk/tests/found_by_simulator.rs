//! Bugs the simulator (`raft-sim --disk 1`) found in this crate, each replayed here as the
//! sequence of storage calls the simulated node made.

mod common;

use common::*;
use raft_core::eraftpb::HardState;
use raft_core::Storage;

/// raft-sim seed 49 (before 4df5cdb): a new leader's entries replaced a suffix written earlier in
/// the same segment, then a snapshot compacted the log past the replacement point. The first
/// live segment then began with records of the replaced suffix, and recovery took them for a gap
/// in the log ("entry 146 follows entry 106") and refused to open a sound storage.
#[test]
fn a_replaced_suffix_before_the_log_start_in_the_first_segment_is_skipped_on_recovery() {
    for seed in 0..50 {
        let fs = sim(seed);
        let opts = storage_disk::Options {
            group_id: 1,
            segment_bytes: 4096,
            cache_bytes: 16 << 20,
        };
        let s = open(&fs, &opts).unwrap();
        s.wl().apply_snapshot(snap(1, 1, &[1, 2, 3])).unwrap();
        s.wl().sync().unwrap();
        let ents: Vec<_> = (2..=175)
            .map(|i| ent(i, if i < 100 { 1 } else { 2 }))
            .collect();
        for chunk in ents.chunks(9) {
            s.wl().append(chunk).unwrap();
            s.wl().sync().unwrap();
        }
        s.wl().set_hard_state(HardState {
            term: 2,
            vote: 5,
            commit: 60,
        });
        s.wl().sync().unwrap();
        s.wl().set_conf_state(conf(&[1, 2, 3]));
        s.wl()
            .create_snapshot(60, Some(conf(&[1, 2, 3])), "s60".into())
            .unwrap();
        s.wl().compact(48).unwrap();
        s.wl().sync().unwrap();
        let new: Vec<_> = (106..=109).map(|i| ent(i, 3)).collect();
        s.wl().append(&new).unwrap();
        s.wl().set_hard_state(HardState {
            term: 3,
            vote: 0,
            commit: 60,
        });
        s.wl().sync().unwrap();
        let more: Vec<_> = (110..=116).map(|i| ent(i, 4)).collect();
        s.wl().append(&more).unwrap();
        s.wl().set_hard_state(HardState {
            term: 5,
            vote: 5,
            commit: 116,
        });
        s.wl().sync().unwrap();
        s.wl()
            .create_snapshot(116, Some(conf(&[1, 2, 3])), "s116".into())
            .unwrap();
        s.wl().compact(107).unwrap();
        s.wl().sync().unwrap();
        for i in 117..=119 {
            s.wl().append(&[ent(i, 6)]).unwrap();
            s.wl().sync().unwrap();
        }
        let after = fs.crash();
        let r = open(&after, &opts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(r.first_index().unwrap(), 107);
        assert_eq!(r.last_index().unwrap(), 119, "every synced entry is back");
        assert_eq!(
            r.term(106).unwrap(),
            3,
            "the replacing entry, not the replaced one"
        );
        assert_eq!(r.term(110).unwrap(), 4);
    }
}
