//! Datadriven transcripts of the quorum arithmetic (`raft_core::quorum`): the committed index and
//! the election outcome of majority and joint configurations, one file per topic under
//! `testdata/quorum/`. Regenerate the expected outputs with `REWRITE=1` and review the diff.
//!
//! Directives (voter lists are ids; `idx` and `votes` give one value per voter of the union of
//! `cfg` and `cfgj`, in order of first appearance, `_` meaning unknown / not voted yet):
//!
//! - `committed cfg=(1,2,3) [cfgj=(1,2,4)] idx=(10,_,5,8)`: prints the `describe` table and the
//!   committed index. Without `cfgj` the configuration is a plain `MajorityConfig`; with it (even
//!   `cfgj=()`) a `JointConfig` with incoming `cfg` and outgoing `cfgj`.
//! - `vote cfg=(1,2,3) [cfgj=(...)] votes=(y,n,_)`: prints each half's tally and the result.
//!
//! Besides comparing against the transcript, the runner asserts on every case that the library
//! agrees with a brute-force statement of the majority rule (Raft §5.2 for votes, §5.3 for
//! commitment, thesis §4.3 for joint consensus), that a joint result is the combination of its
//! halves and does not depend on which half is incoming, and that the `describe` table marks the
//! row that holds the committed index.

use std::collections::HashMap;
use std::fmt::Write;

use datadriven::TestCase;
use raft_core::quorum::{AckedIndexer, JointConfig, MajorityConfig, VoteResult};

/// Acknowledged indexes by voter id; a voter that is absent is unknown.
struct Acks(HashMap<u64, u64>);

impl AckedIndexer for Acks {
    fn acked_index(&self, id: u64) -> Option<u64> {
        self.0.get(&id).copied()
    }
}

/// Votes by voter id: `true` granted, `false` rejected; an absent voter has not voted yet.
type Votes = HashMap<u64, bool>;

/// The configuration of a case: a plain majority, or a joint one when `cfgj` was given.
struct Configs {
    incoming: Vec<u64>,
    outgoing: Option<Vec<u64>>,
}

impl Configs {
    /// Takes `cfg` and the optional `cfgj` from the case; duplicate ids are an error.
    fn take(tc: &mut TestCase) -> Result<Configs, String> {
        let incoming: Vec<u64> = tc.take_args("cfg").map_err(|e| e.to_string())?;
        let outgoing: Option<Vec<u64>> = tc.try_take_args("cfgj").map_err(|e| e.to_string())?;
        for ids in std::iter::once(&incoming).chain(outgoing.as_ref()) {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != ids.len() {
                return Err(format!("duplicate voter in {ids:?}"));
            }
        }
        Ok(Configs { incoming, outgoing })
    }

    /// Every voter of either half, in order of first appearance: the order of `idx` and `votes`.
    fn union(&self) -> Vec<u64> {
        let mut ids = self.incoming.clone();
        for id in self.outgoing.iter().flatten() {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        ids
    }

    fn incoming(&self) -> MajorityConfig {
        MajorityConfig::new(self.incoming.iter().copied())
    }

    fn outgoing(&self) -> MajorityConfig {
        MajorityConfig::new(self.outgoing.iter().flatten().copied())
    }

    fn joint(&self) -> JointConfig {
        JointConfig {
            incoming: self.incoming(),
            outgoing: self.outgoing(),
        }
    }

    /// The same configuration with the halves swapped and every id list reversed.
    fn swapped(&self) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(self.outgoing.iter().flatten().rev().copied()),
            outgoing: MajorityConfig::new(self.incoming.iter().rev().copied()),
        }
    }
}

/// Takes the list argument `name` with one value per voter of `union`; `_` is `None`.
fn take_per_voter<T>(
    tc: &mut TestCase,
    name: &str,
    union: &[u64],
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(u64, Option<T>)>, String> {
    let raw: Vec<String> = tc.take_args(name).map_err(|e| e.to_string())?;
    if raw.len() != union.len() {
        return Err(format!(
            "{name} has {} values but there are {} voters {union:?}",
            raw.len(),
            union.len()
        ));
    }
    union
        .iter()
        .zip(&raw)
        .map(|(id, value)| {
            if value == "_" {
                Ok((*id, None))
            } else {
                parse(value)
                    .map(|v| (*id, Some(v)))
                    .ok_or_else(|| format!("{name}: cannot parse {value:?} for voter {id}"))
            }
        })
        .collect()
}

/// `u64::MAX` by name (the "no constraint" committed index of an empty configuration).
fn show_index(index: u64) -> String {
    if index == u64::MAX {
        "u64::MAX".to_string()
    } else {
        index.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Independent statements of the majority rule.
// ---------------------------------------------------------------------------------------------

/// Whether the voters in `agree` are more than half of `voters` (an empty set is always agreed).
fn is_majority(voters: &[u64], agree: impl Fn(u64) -> bool) -> bool {
    voters.is_empty() || 2 * voters.iter().filter(|id| agree(**id)).count() > voters.len()
}

/// The largest index that more than half of `voters` acknowledged (unknown counts as 0), found by
/// trying every acknowledged index; `u64::MAX` for no voters.
fn brute_force_committed(voters: &[u64], acks: &Acks) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let index_of = |id: u64| acks.acked_index(id).unwrap_or(0);
    voters
        .iter()
        .map(|id| index_of(*id))
        .filter(|&cand| is_majority(voters, |id| index_of(id) >= cand))
        .max()
        .unwrap_or(0)
}

/// The largest index that more than half of each non-empty half acknowledged, by trying every
/// acknowledged index of either half; `u64::MAX` when both halves are empty.
fn brute_force_joint_committed(incoming: &[u64], outgoing: &[u64], acks: &Acks) -> u64 {
    if incoming.is_empty() && outgoing.is_empty() {
        return u64::MAX;
    }
    let index_of = |id: u64| acks.acked_index(id).unwrap_or(0);
    incoming
        .iter()
        .chain(outgoing)
        .map(|id| index_of(*id))
        .filter(|&cand| {
            is_majority(incoming, |id| index_of(id) >= cand)
                && is_majority(outgoing, |id| index_of(id) >= cand)
        })
        .max()
        .unwrap_or(0)
}

/// The election outcome by definition: won if the granted votes already make a majority of every
/// half, lost if not even granting all missing votes would, pending otherwise.
fn brute_force_vote(halves: &[&[u64]], votes: &Votes) -> VoteResult {
    let wins = |missing_grants: bool| {
        halves.iter().all(|voters| {
            is_majority(voters, |id| {
                votes.get(&id).copied().unwrap_or(missing_grants)
            })
        })
    };
    if wins(false) {
        VoteResult::Won
    } else if !wins(true) {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// Directives.
// ---------------------------------------------------------------------------------------------

/// Checks that exactly one row of `table` is marked as committed for `half` (`None`: the plain
/// `<- committed` of a majority table) and that it shows `committed` (`?` standing for 0).
fn assert_marked(table: &str, half: Option<&str>, committed: u64) {
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("<- committed") && half.is_none_or(|h| l.contains(h)))
        .collect();
    let [row] = rows.as_slice() else {
        panic!("{half:?}: expected exactly one row marked committed, found {rows:?} in\n{table}");
    };
    let shown = row
        .split("(id=")
        .next()
        .and_then(|head| head.split_whitespace().last());
    let ok = match shown {
        Some("?") => committed == 0,
        Some(s) => s.parse::<u64>().ok() == Some(committed),
        None => false,
    };
    assert!(
        ok,
        "{half:?}: the marked row should show committed index {committed}, found {shown:?} in\n{table}"
    );
}

/// `committed cfg=(...) [cfgj=(...)] idx=(...)`.
fn committed(tc: &mut TestCase) -> Result<String, String> {
    let configs = Configs::take(tc)?;
    let union = configs.union();
    let acks = Acks(
        take_per_voter(tc, "idx", &union, |s| s.parse::<u64>().ok())?
            .into_iter()
            .filter_map(|(id, idx)| idx.map(|idx| (id, idx)))
            .collect(),
    );
    let incoming = configs.incoming();
    let mut out = String::new();
    match &configs.outgoing {
        None => {
            let committed = incoming.committed_index(&acks);
            assert_eq!(
                committed,
                brute_force_committed(&configs.incoming, &acks),
                "{}: committed index of {incoming} disagrees with brute force",
                tc.directive
            );
            assert_eq!(
                committed,
                JointConfig::new(configs.incoming.iter().copied()).committed_index(&acks),
                "a non-joint JointConfig must commit what its majority commits"
            );
            let table = incoming.describe(&acks);
            if !incoming.is_empty() {
                assert_marked(&table, None, committed);
            }
            out.push_str(&table);
            let _ = writeln!(out, "committed {}", show_index(committed));
        }
        Some(outgoing_ids) => {
            let joint = configs.joint();
            let outgoing = configs.outgoing();
            let committed = joint.committed_index(&acks);
            let (ci, co) = (
                incoming.committed_index(&acks),
                outgoing.committed_index(&acks),
            );
            assert_eq!(
                committed,
                ci.min(co),
                "joint {joint}: committed index is not the minimum of its halves"
            );
            assert_eq!(
                committed,
                configs.swapped().committed_index(&acks),
                "joint {joint}: committed index depends on which half is incoming"
            );
            assert_eq!(
                committed,
                brute_force_joint_committed(&configs.incoming, outgoing_ids, &acks),
                "joint {joint}: committed index disagrees with brute force"
            );
            let table = joint.describe(&acks);
            if joint.is_joint() {
                for (name, half, index) in
                    [("incoming", &incoming, ci), ("outgoing", &outgoing, co)]
                {
                    if !half.is_empty() {
                        assert_marked(&table, Some(name), index);
                    }
                }
            } else if !incoming.is_empty() {
                assert_marked(&table, None, committed);
            }
            out.push_str(&table);
            let _ = writeln!(
                out,
                "committed {} = min(incoming {}, outgoing {})",
                show_index(committed),
                show_index(ci),
                show_index(co)
            );
        }
    }
    Ok(out)
}

/// One line for one half: its votes and tally, and its own result.
fn vote_line(label: &str, config: &MajorityConfig, votes: &Votes) -> String {
    let mut line = format!("{label}{config}");
    let (mut yes, mut no, mut missing) = (0, 0, 0);
    for id in config.ids() {
        let v = match votes.get(id) {
            Some(true) => {
                yes += 1;
                'y'
            }
            Some(false) => {
                no += 1;
                'n'
            }
            None => {
                missing += 1;
                '_'
            }
        };
        let _ = write!(line, " {id}:{v}");
    }
    let need = if config.is_empty() {
        0
    } else {
        config.len() / 2 + 1
    };
    let result = config.vote_result(|id| votes.get(&id).copied());
    let _ = write!(
        line,
        " => yes={yes} no={no} missing={missing} need={need} => {result:?}"
    );
    line
}

/// `vote cfg=(...) [cfgj=(...)] votes=(...)`.
fn vote(tc: &mut TestCase) -> Result<String, String> {
    let configs = Configs::take(tc)?;
    let union = configs.union();
    let votes: Votes = take_per_voter(tc, "votes", &union, |s| match s {
        "y" => Some(true),
        "n" => Some(false),
        _ => None,
    })?
    .into_iter()
    .filter_map(|(id, v)| v.map(|v| (id, v)))
    .collect();
    let vote_of = |id: u64| votes.get(&id).copied();
    let incoming = configs.incoming();
    match &configs.outgoing {
        None => {
            let result = incoming.vote_result(vote_of);
            assert_eq!(
                result,
                brute_force_vote(&[&configs.incoming], &votes),
                "{incoming}: vote result disagrees with the majority rule"
            );
            assert_eq!(
                result,
                JointConfig::new(configs.incoming.iter().copied()).vote_result(vote_of),
                "a non-joint JointConfig must decide as its majority does"
            );
            Ok(format!("{}\n", vote_line("", &incoming, &votes)))
        }
        Some(outgoing_ids) => {
            let joint = configs.joint();
            let result = joint.vote_result(vote_of);
            assert_eq!(
                result,
                brute_force_vote(&[&configs.incoming, outgoing_ids], &votes),
                "joint {joint}: vote result disagrees with the majority rule on both halves"
            );
            assert_eq!(
                result,
                configs.swapped().vote_result(vote_of),
                "joint {joint}: vote result depends on which half is incoming"
            );
            Ok(format!(
                "{}\n{}\njoint => {result:?}\n",
                vote_line("incoming ", &incoming, &votes),
                vote_line("outgoing ", &configs.outgoing(), &votes)
            ))
        }
    }
}

/// Runs one transcript file and returns how many cases it held.
fn run_transcript(path: &str) -> usize {
    let mut cases = 0;
    datadriven::walk(path, |f| {
        f.run(|tc: &mut TestCase| -> Result<String, String> {
            cases += 1;
            let out = match tc.directive.as_str() {
                "committed" => committed(tc)?,
                "vote" => vote(tc)?,
                other => return Err(format!("unknown directive {other:?}")),
            };
            tc.expect_empty().map_err(|e| e.to_string())?;
            Ok(out)
        })
    });
    assert!(cases > 0, "{path} holds no test case (or does not exist)");
    cases
}

/// The transcript files, each run by the test named after it.
const FILES: [&str; 4] = [
    "majority_commit.txt",
    "joint_commit.txt",
    "majority_vote.txt",
    "joint_vote.txt",
];

#[test]
fn majority_commit_transcript() {
    run_transcript("testdata/quorum/majority_commit.txt");
}

#[test]
fn joint_commit_transcript() {
    run_transcript("testdata/quorum/joint_commit.txt");
}

#[test]
fn majority_vote_transcript() {
    run_transcript("testdata/quorum/majority_vote.txt");
}

#[test]
fn joint_vote_transcript() {
    run_transcript("testdata/quorum/joint_vote.txt");
}

#[test]
fn every_quorum_transcript_file_is_run() {
    let mut found: Vec<String> = std::fs::read_dir("testdata/quorum")
        .expect("testdata/quorum must exist")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.starts_with('.') && !name.ends_with('~'))
        .collect();
    found.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        found, expected,
        "testdata/quorum holds a file no test runs (add it to FILES and give it a test)"
    );
}
