//! The `step_bytes` target: a decoded message stepped into a node in every role.

use crate::tracing;
use prost::Message as _;
use raft_core::eraftpb::Message;
use raft_testkit::{assert_invariants, config, fork_store, step_checked, Cluster, Flags, Peer};

/// The roles a message is stepped into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Node 2, following leader 1 in term 3.
    Follower,
    /// Node 3, restarted, campaigning in term 4 (its vote requests unanswered).
    Candidate,
    /// Node 3, restarted with pre-vote, asking for pre-votes in term 3.
    PreCandidate,
    /// Node 1, leading in term 3 with node 2 replicating and node 3 lagging.
    Leader,
    /// Node 4, a learner following leader 1.
    Learner,
}

/// A cluster of voters 1, 2, 3 and learner 4 through leaders 1 (term 1), 2 (term 2), 1 (term 3),
/// with entries committed in each term, then node 3 cut off while node 1 commits one more.
pub fn history_cluster(flags: Flags) -> Cluster {
    let mut c = Cluster::new(flags, &[1, 2, 3], &[4], &[]);
    c.trace = tracing();
    c.play_history(Some(3));
    c
}

/// A restarted copy of `p` (over a copy of its storage) with `flags`, which then campaigns.
fn campaigning_copy(p: &Peer, flags: Flags) -> Peer {
    let mut cfg = config(p.id(), flags);
    cfg.applied = p.applied;
    let mut copy = Peer::new(&cfg, fork_store(&p.store));
    copy.applied = p.applied;
    let _ = copy.raw.campaign();
    copy
}

/// One node in each [`Role`], built from a real cluster run.
pub fn role_fixtures(flags: Flags) -> Vec<(Role, Peer)> {
    let mut c = history_cluster(flags);
    let lagging = c.peers.remove(&3).expect("node 3");
    let candidate = campaigning_copy(
        &lagging,
        Flags {
            pre_vote: false,
            ..flags
        },
    );
    let pre_candidate = campaigning_copy(
        &lagging,
        Flags {
            pre_vote: true,
            ..flags
        },
    );
    vec![
        (Role::Follower, c.peers.remove(&2).expect("node 2")),
        (Role::Candidate, candidate),
        (Role::PreCandidate, pre_candidate),
        (Role::Leader, c.peers.remove(&1).expect("node 1")),
        (Role::Learner, c.peers.remove(&4).expect("node 4")),
    ]
}

/// The `step_bytes` target: byte 0 selects the flags, the rest is a protobuf `Message`, stepped
/// into a node in every role, followed by two rounds of the Ready cycle.
pub fn step_bytes(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(m) = Message::decode(rest) else {
        return;
    };
    for (role, mut p) in role_fixtures(Flags::from_byte(flags)) {
        let term = p.raw.raft.term;
        assert_invariants(&p, term, &format!("building the {role:?} fixture"));
        let _ = step_checked(&mut p, m.clone());
        let term = p.raw.raft.term;
        for _ in 0..2 {
            if let Err(e) = p.handle_ready() {
                panic!("{role:?} node {}: {e}", p.id());
            }
        }
        assert_invariants(&p, term, &format!("{role:?}: the Ready cycle"));
    }
}
