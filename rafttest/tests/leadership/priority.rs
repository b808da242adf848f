//! Priority elections (raft-rs `Config::priority`): among equally up-to-date logs a voter refuses a
//! candidate of lower priority than its own, so the highest-priority node wins; a longer log still
//! wins over priority.

use crate::common::*;
use crate::*;
use raft_core::eraftpb::MessageType;
use raft_core::StateRole;
use rafttest::network::default_config;

/// The network's default config with priority = the node's id (node 3 ranks highest).
fn priority_is_id(id: u64) -> Config {
    Config {
        priority: id as i64,
        ..default_config(id)
    }
}

/// A voter 3 of {1, 2, 3} with priority 5 whose log ends at (1, 1), following nobody at term 1.
fn voter_with_priority_5() -> Raft<MemStorage> {
    let mut cfg = config(3);
    cfg.priority = 5;
    let mut r = raft_with(&cfg, storage_with(&[1, 2, 3], &[ent(1, 1)], 1, 1));
    r.become_follower(1, 0);
    r
}

/// How a voter with priority 5 and log ending at (1, 1) answers a `msg_type` request for term 2
/// from node 2 whose log ends at (`last_index`, 1) and that sends `priority` and
/// `deprecated_priority`: Some(granted), or None if it did not answer.
fn answer(msg_type: MessageType, last_index: u64, priority: i64, deprecated: u64) -> Option<bool> {
    let mut r = voter_with_priority_5();
    let mut m = vote_request(msg_type, 2, 3, 2, last_index, 1);
    m.priority = priority;
    m.deprecated_priority = deprecated;
    r.step(m).unwrap();
    let msgs = r.read_messages();
    assert!(
        msgs.len() <= 1,
        "more than one answer: {:?}",
        summary(&msgs)
    );
    let granted = msgs.first().map(|m| !m.reject);
    if msg_type == MessageType::MsgRequestVote {
        assert_eq!(
            r.vote,
            if granted == Some(true) { 2 } else { 0 },
            "recorded vote"
        );
    }
    granted
}

// raft-rs: "m.index > last_index || self.priority <= m.priority" on top of the log check (§5.4.1),
// for votes and pre-votes alike.
#[test]
fn a_voter_refuses_only_equally_up_to_date_candidates_of_lower_priority() {
    for msg_type in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        // (candidate's last index, priority, deprecated priority, granted?)
        let cases: [(u64, i64, u64, bool); 6] = [
            (1, 1, 0, false), // same log, lower priority: refused
            (1, 5, 0, true),  // same log, same priority
            (1, 9, 0, true),  // same log, higher priority
            (2, 1, 0, true),  // longer log beats priority
            (1, 0, 1, false), // an older raft-rs sends the deprecated unsigned field
            (1, 0, 9, true),
        ];
        for (last_index, priority, deprecated, want) in cases {
            assert_eq!(
                answer(msg_type, last_index, priority, deprecated),
                Some(want),
                "{msg_type:?} from a candidate with last index {last_index}, priority {priority}, \
                 deprecated priority {deprecated} to a voter with priority 5 and last index 1"
            );
        }
    }
}

// raft-rs priority elections: with equal logs the higher-priority candidate wins and a
// lower-priority one is refused by higher-priority voters.
#[test]
fn the_higher_priority_candidate_wins_among_equally_up_to_date_nodes() {
    let mut net = Network::with_config(3, priority_is_id);
    net.campaign(1);
    assert_eq!(
        net.leader(),
        None,
        "lowest-priority 1 won against higher-priority voters"
    );
    assert_eq!(
        net.node(1).state(),
        StateRole::Follower,
        "1 should have lost"
    );
    net.campaign(3);
    assert_eq!(net.leader(), Some(3));
    assert_eq!(net.node(3).term(), 2);

    // Without 3, node 1 (priority 1) is refused by 2 (priority 2), and 2 wins.
    net.isolate(3);
    net.campaign(1);
    assert_ne!(net.node(1).state(), StateRole::Leader);
    assert_eq!(net.node(2).raw.raft.vote, 0, "2 voted for lower-priority 1");
    net.campaign(2);
    assert_eq!(
        net.node(2).state(),
        StateRole::Leader,
        "2 should win with 1's vote"
    );
    assert_eq!(net.node(1).raw.raft.vote, 2);
    assert_eq!(net.node(1).raw.raft.leader_id, 2);
}

// §5.4.1 comes first: a candidate with a longer log wins even against a higher-priority voter, and
// a higher-priority candidate with a shorter log loses.
#[test]
fn a_longer_log_beats_priority() {
    let mut net = Network::with_config(3, priority_is_id);
    net.campaign(3);
    assert_eq!(net.leader(), Some(3));
    net.isolate(2);
    net.propose(3, b"x").expect("proposal accepted");
    assert_eq!(net.node(1).raw.raft.raft_log.last_index(), 2);
    assert_eq!(net.node(2).raw.raft.raft_log.last_index(), 1);
    net.recover();
    net.isolate(3);

    net.campaign(2);
    assert_ne!(
        net.node(2).state(),
        StateRole::Leader,
        "higher-priority 2 with a shorter log won"
    );
    net.campaign(1);
    assert_eq!(
        net.node(1).state(),
        StateRole::Leader,
        "1 with the longer log should win despite its lower priority"
    );
    assert_eq!(net.node(2).raw.raft.vote, 1);
    net.propose(1, b"y").expect("proposal accepted");
    assert_eq!(
        net.node(2).applied_data(),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
}
