//! Unit tests of the quorum arithmetic: [`MajorityConfig`] and [`JointConfig`] committed index and
//! vote result.

use super::*;

/// Acknowledged indexes as (voter, index) pairs; voters not listed are unknown.
struct Acked(Vec<(u64, u64)>);

impl AckedIndexer for Acked {
    fn acked_index(&self, id: u64) -> Option<u64> {
        self.0.iter().find(|(i, _)| *i == id).map(|(_, idx)| *idx)
    }
}

/// Acked indexes for voters 1, 2, ...: `Some(i)` acknowledged `i`, `None` unknown.
fn acked(indexes: &[Option<u64>]) -> Acked {
    Acked(
        indexes
            .iter()
            .enumerate()
            .filter_map(|(i, idx)| idx.map(|idx| (i as u64 + 1, idx)))
            .collect(),
    )
}

/// The largest index that at least a majority of `voters` acknowledged, found by trying every
/// candidate (an independent statement of what `committed_index` computes).
fn brute_force_committed(voters: &[u64], acked: &Acked) -> u64 {
    let quorum = voters.len() / 2 + 1;
    let index_of = |id: u64| acked.acked_index(id).unwrap_or(0);
    voters
        .iter()
        .map(|id| index_of(*id))
        .filter(|&cand| voters.iter().filter(|id| index_of(**id) >= cand).count() >= quorum)
        .max()
        .unwrap_or(0)
}

/// Votes for voters 1, 2, ...: `Some(true)` granted, `Some(false)` rejected, `None` not yet.
fn votes(v: &[Option<bool>]) -> impl Fn(u64) -> Option<bool> + '_ {
    move |id| v.get(id as usize - 1).copied().flatten()
}

const Y: Option<bool> = Some(true);
const N: Option<bool> = Some(false);

#[test]
fn majority_committed_index_for_zero_to_nine_voters() {
    // (acked index of voters 1..=n, None = unknown voter, expected)
    let cases: Vec<(Vec<Option<u64>>, u64)> = vec![
        // 0 voters: no constraint (so the other half of a joint config decides)
        (vec![], u64::MAX),
        // 1 voter
        (vec![None], 0),
        (vec![Some(12)], 12),
        // 2 voters: both needed
        (vec![Some(12), None], 0),
        (vec![Some(12), Some(5)], 5),
        (vec![Some(5), Some(12)], 5),
        // 3 voters
        (vec![None, None, None], 0),
        (vec![Some(12), None, None], 0),
        (vec![Some(12), Some(5), None], 5),
        (vec![Some(12), Some(5), Some(4)], 5),
        (vec![Some(5), Some(5), Some(12)], 5),
        (vec![Some(1), Some(1), Some(1)], 1),
        // 4 voters: three needed
        (vec![Some(12), Some(11), None, None], 0),
        (vec![Some(12), Some(11), Some(10), None], 10),
        (vec![Some(4), Some(3), Some(2), Some(1)], 2),
        // 5 voters
        (vec![Some(9), Some(8), Some(7), Some(6), Some(5)], 7),
        (vec![Some(9), Some(9), None, None, None], 0),
        (vec![Some(5), Some(9), None, Some(7), None], 5),
        // 6 voters: four needed
        (
            vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)],
            3,
        ),
        (vec![Some(6), Some(6), Some(6), None, None, None], 0),
        // 7 voters: the largest configuration without a heap allocation
        (
            vec![
                Some(10),
                Some(20),
                Some(30),
                Some(40),
                Some(50),
                Some(60),
                Some(70),
            ],
            40,
        ),
        (
            vec![Some(70), None, Some(50), None, Some(30), None, Some(10)],
            10,
        ),
        // 8 voters: five needed (heap path)
        ((1..=8).map(Some).collect(), 4),
        (
            vec![
                Some(8),
                Some(7),
                Some(6),
                Some(5),
                Some(4),
                None,
                None,
                None,
            ],
            4,
        ),
        (
            vec![Some(8), Some(7), Some(6), Some(5), None, None, None, None],
            0,
        ),
        // 9 voters: five needed (heap path)
        ((1..=9).map(Some).collect(), 5),
        ((1..=9).rev().map(Some).collect(), 5),
        (vec![Some(3); 9], 3),
        (
            vec![
                Some(9),
                None,
                Some(9),
                None,
                Some(9),
                None,
                Some(9),
                None,
                Some(2),
            ],
            2,
        ),
    ];
    for (i, (indexes, want)) in cases.into_iter().enumerate() {
        let voters: Vec<u64> = (1..=indexes.len() as u64).collect();
        let config = MajorityConfig::new(voters.iter().copied());
        let acked = acked(&indexes);
        assert_eq!(
            config.committed_index(&acked),
            want,
            "case {i}: {indexes:?}"
        );
        if !voters.is_empty() {
            assert_eq!(
                want,
                brute_force_committed(&voters, &acked),
                "case {i}: table disagrees with brute force"
            );
        }
    }
}

#[test]
fn majority_committed_index_matches_brute_force_for_many_inputs() {
    // Deterministic pseudo-random acked indexes for 1..=11 voters, some unknown.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 1..=11u64 {
        let voters: Vec<u64> = (1..=n).map(|i| i * 3).collect();
        let config = MajorityConfig::new(voters.clone());
        for _ in 0..200 {
            let acked = Acked(
                voters
                    .iter()
                    .filter_map(|id| {
                        let r = next();
                        (r % 5 != 0).then_some((*id, (r >> 8) % 10))
                    })
                    .collect(),
            );
            assert_eq!(
                config.committed_index(&acked),
                brute_force_committed(&voters, &acked),
                "{n} voters, acked {:?}",
                acked.0
            );
        }
    }
}

#[test]
fn majority_committed_index_ignores_non_voters() {
    let config = MajorityConfig::new([2, 4, 6]);
    let acked = Acked(vec![(1, 100), (2, 5), (3, 100), (4, 7), (5, 100), (6, 3)]);
    assert_eq!(
        config.committed_index(&acked),
        5,
        "acks of ids 1, 3 and 5 must not count"
    );
}

#[test]
fn majority_vote_result_table() {
    use VoteResult::{Lost, Pending, Won};
    let cases: Vec<(Vec<Option<bool>>, VoteResult)> = vec![
        // an empty configuration wins by convention
        (vec![], Won),
        // 1 voter
        (vec![None], Pending),
        (vec![N], Lost),
        (vec![Y], Won),
        // 2 voters: both needed
        (vec![Y, None], Pending),
        (vec![Y, Y], Won),
        (vec![Y, N], Lost),
        (vec![None, N], Lost),
        // 3 voters
        (vec![None, None, None], Pending),
        (vec![Y, N, None], Pending),
        (vec![Y, Y, None], Won),
        (vec![N, N, None], Lost),
        (vec![Y, N, N], Lost),
        (vec![Y, Y, N], Won),
        // 4 voters: three needed
        (vec![Y, Y, N, None], Pending),
        (vec![Y, N, N, None], Lost),
        (vec![Y, Y, N, N], Lost),
        (vec![Y, Y, Y, N], Won),
        // 5 voters
        (vec![Y, Y, Y, None, None], Won),
        (vec![Y, Y, N, N, None], Pending),
        (vec![N, N, N, Y, Y], Lost),
        (vec![None, None, N, N, N], Lost),
    ];
    for (i, (v, want)) in cases.into_iter().enumerate() {
        let config = MajorityConfig::new(1..=v.len() as u64);
        assert_eq!(config.vote_result(votes(&v)), want, "case {i}: {v:?}");
    }
}

#[test]
fn majority_vote_result_asks_only_voters() {
    let config = MajorityConfig::new([2, 3, 4]);
    let result = config.vote_result(|id| {
        assert!(
            [2, 3, 4].contains(&id),
            "asked for the vote of non-voter {id}"
        );
        Some(true)
    });
    assert_eq!(result, VoteResult::Won);
}

#[test]
fn majority_insert_remove_contains() {
    let mut config = MajorityConfig::new([3, 1, 2, 3, 1]);
    assert_eq!(config.ids(), &[1, 2, 3], "sorted without duplicates");
    assert_eq!(config.len(), 3);
    assert!(config.contains(2) && !config.contains(4));
    config.insert(4);
    config.insert(4);
    config.insert(0);
    assert_eq!(
        config.ids(),
        &[0, 1, 2, 3, 4],
        "insert keeps the ids sorted and unique"
    );
    config.remove(2);
    config.remove(2);
    config.remove(9);
    assert_eq!(config.ids(), &[0, 1, 3, 4]);
    assert!(!config.contains(2));
    for id in [0, 1, 3, 4] {
        config.remove(id);
    }
    assert!(config.is_empty());
    assert_eq!(config, MajorityConfig::default());
}

#[test]
fn joint_committed_index_is_the_minimum_of_both_halves() {
    // (incoming, outgoing, acked, expected)
    type Case = (Vec<u64>, Vec<u64>, Vec<(u64, u64)>, u64);
    let cases: Vec<Case> = vec![
        // not joint: the incoming half alone
        (vec![1, 2, 3], vec![], vec![(1, 10), (2, 8), (3, 5)], 8),
        // same voters in both halves
        (
            vec![1, 2, 3],
            vec![1, 2, 3],
            vec![(1, 10), (2, 8), (3, 5)],
            8,
        ),
        // the outgoing half lags
        (
            vec![1, 2, 3],
            vec![4, 5, 6],
            vec![(1, 10), (2, 10), (3, 10), (4, 3), (5, 9), (6, 1)],
            3,
        ),
        // the incoming half lags
        (
            vec![4, 5, 6],
            vec![1, 2, 3],
            vec![(1, 10), (2, 10), (3, 10), (4, 3), (5, 9), (6, 1)],
            3,
        ),
        // overlapping halves: 3 counts for both
        (
            vec![1, 2, 3],
            vec![3, 4, 5],
            vec![(1, 9), (2, 2), (3, 7), (4, 1), (5, 8)],
            7,
        ),
        // an unknown voter in the outgoing half holds it back
        (vec![1], vec![1, 2], vec![(1, 9)], 0),
        // both halves empty: no constraint at all
        (vec![], vec![], vec![(1, 9)], u64::MAX),
    ];
    for (i, (incoming, outgoing, acks, want)) in cases.into_iter().enumerate() {
        let config = JointConfig {
            incoming: MajorityConfig::new(incoming),
            outgoing: MajorityConfig::new(outgoing),
        };
        let acked = Acked(acks);
        assert_eq!(config.committed_index(&acked), want, "case {i}");
        let halves = config
            .incoming
            .committed_index(&acked)
            .min(config.outgoing.committed_index(&acked));
        assert_eq!(
            want, halves,
            "case {i}: expected value is not the minimum of the halves"
        );
    }
}

#[test]
fn joint_vote_result_needs_both_halves() {
    use VoteResult::{Lost, Pending, Won};
    // Incoming {1, 2, 3}, outgoing {3, 4, 5}; votes of 1..=5.
    let config = JointConfig {
        incoming: MajorityConfig::new([1, 2, 3]),
        outgoing: MajorityConfig::new([3, 4, 5]),
    };
    let cases: Vec<(Vec<Option<bool>>, VoteResult)> = vec![
        (vec![None, None, None, None, None], Pending),
        // incoming won, outgoing pending
        (vec![Y, Y, None, None, None], Pending),
        // both won, 3 counting for both
        (vec![Y, None, Y, Y, None], Won),
        (vec![Y, Y, N, Y, Y], Won),
        // incoming won, outgoing lost
        (vec![Y, Y, N, N, None], Lost),
        // incoming lost, outgoing won
        (vec![N, N, Y, Y, Y], Lost),
        // incoming lost, outgoing pending
        (vec![N, N, None, None, None], Lost),
        // incoming pending, outgoing lost
        (vec![None, None, N, N, None], Lost),
        // incoming pending, outgoing won
        (vec![Y, N, None, Y, Y], Pending),
    ];
    for (i, (v, want)) in cases.into_iter().enumerate() {
        assert_eq!(config.vote_result(votes(&v)), want, "case {i}: {v:?}");
    }
}

#[test]
fn joint_with_empty_outgoing_behaves_like_the_incoming_majority() {
    let joint = JointConfig::new([1, 2, 3]);
    let majority = MajorityConfig::new([1, 2, 3]);
    assert!(!joint.is_joint());
    for v in [
        vec![None, None, None],
        vec![Y, None, None],
        vec![Y, Y, None],
        vec![N, N, Y],
    ] {
        assert_eq!(
            joint.vote_result(votes(&v)),
            majority.vote_result(votes(&v)),
            "votes {v:?}"
        );
    }
    let acked = Acked(vec![(1, 4), (2, 6), (3, 2)]);
    assert_eq!(joint.committed_index(&acked), 4);
    assert_eq!(
        JointConfig::default().vote_result(|_| None),
        VoteResult::Won,
        "no voters at all"
    );
}

#[test]
fn joint_membership_queries() {
    let config = JointConfig {
        incoming: MajorityConfig::new([1, 2, 3]),
        outgoing: MajorityConfig::new([3, 5]),
    };
    assert!(config.is_joint());
    assert_eq!(
        config.ids(),
        vec![1, 2, 3, 5],
        "both halves, sorted, without duplicates"
    );
    for id in [1, 2, 3, 5] {
        assert!(config.contains(id), "{id} is a voter of one half");
    }
    assert!(!config.contains(4));
}
