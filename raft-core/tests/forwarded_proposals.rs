//! Outcomes of proposals made on a follower (issue 18): the leader answers a stamped proposal
//! with where it appended it, or that it did not; the follower's tracker then decides it by the
//! entry committed at that index, or as unanswered once a later term's entry is applied.

use raft_core::eraftpb::{Entry, Message, MessageType};
use raft_core::proposal::{ForwardAnswer, ProposalOutcome, ProposalTracker, Proposed};
use raft_core::{Error, Storage};
use raft_testkit::{Cluster, Flags, SETTLE_BUDGET};

fn cluster() -> Cluster {
    let mut c = Cluster::new(Flags::ALL[0], &[1, 2, 3], &[], &[]);
    c.elect(1);
    c
}

/// What `node`'s application does after messages were stepped: answers first, then the entries
/// committed since `from` (read back from storage), in order.
fn decide(
    c: &mut Cluster,
    node: u64,
    tracker: &mut ProposalTracker<&'static str>,
    from: &mut u64,
) -> Vec<(&'static str, ProposalOutcome)> {
    let peer = c.peer(node);
    let mut outcomes = tracker.on_forward_answers(peer.raw.take_forward_answers());
    let applied = peer.applied;
    if applied >= *from {
        let entries: Vec<Entry> = peer
            .store
            .entries(*from, applied + 1, u64::MAX)
            .expect("applied entries are stored");
        outcomes.extend(tracker.on_committed(&entries));
        *from = applied + 1;
    }
    outcomes
}

fn forward(c: &mut Cluster, node: u64, data: &[u8]) -> (u64, u64) {
    match c.peer(node).raw.propose_tracked(vec![], data.to_vec()) {
        Ok(Proposed::Forwarded { leader, id, term }) => {
            assert_eq!(leader, c.peers[&node].raw.raft.leader_id);
            (id, term)
        }
        other => panic!("node {node} should forward: {other:?}"),
    }
}

fn entry_at(c: &Cluster, node: u64, index: u64) -> Entry {
    c.peers[&node]
        .store
        .entries(index, index + 1, u64::MAX)
        .expect("stored")
        .remove(0)
}

/// Node `node` forwards `data`, tracked in `tracker` under `data` itself; returns the stamp's term.
fn forward_tracked(
    c: &mut Cluster,
    node: u64,
    data: &'static str,
    tracker: &mut ProposalTracker<&'static str>,
) -> u64 {
    let (id, term) = forward(c, node, data.as_bytes());
    tracker.track_forwarded(data, id, term);
    term
}

/// Asserts that no entry with `data` is in the stored log of any of `ids`.
fn stored_nowhere(c: &Cluster, ids: &[u64], data: &[u8]) {
    for id in ids {
        let last = c.peers[id].raw.raft.raft_log.last_index();
        let entries = c.peers[id].store.entries(1, last + 1, u64::MAX).unwrap();
        assert!(entries.iter().all(|e| &e.data[..] != data), "node {id}");
    }
}

/// Leader 1 transfers leadership to node 3, which is cut off: the transfer stays under way.
fn transfer_to_cut_off_node_3(c: &mut Cluster) {
    c.isolated.insert(3);
    c.peer(1).raw.transfer_leader(3);
    c.stabilize(SETTLE_BUDGET);
}

#[test]
fn a_forwarded_proposal_is_answered_with_its_index_and_committed_there() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&2].applied + 1;
    let (id, term) = forward(&mut c, 2, b"x=1");
    assert_eq!(term, c.peers[&1].raw.raft.term);
    assert_ne!(id, 0);
    tracker.track_forwarded("x=1", id, term);
    c.ready(2);
    c.stabilize(SETTLE_BUDGET);
    let outcomes = decide(&mut c, 2, &mut tracker, &mut from);
    let [("x=1", ProposalOutcome::Committed { index, term: t })] = outcomes[..] else {
        panic!("expected one committed outcome, got {outcomes:?}");
    };
    assert_eq!(t, term);
    let e = entry_at(&c, 2, index);
    assert_eq!((e.term, &e.data[..]), (term, &b"x=1"[..]));
    assert!(tracker.is_empty());
}

#[test]
fn a_plain_proposal_is_forwarded_without_a_stamp_as_raft_rs_sends_it() {
    let mut c = cluster();
    c.peer(3).raw.propose(vec![], b"plain".to_vec()).unwrap();
    let out = c.peer(3).handle_ready().unwrap();
    let fwd: Vec<&Message> = out
        .iter()
        .filter(|m| m.msg_type == MessageType::MsgPropose as i32)
        .collect();
    assert_eq!(fwd.len(), 1);
    assert!(fwd[0].context.is_empty(), "{:?}", fwd[0]);
    assert_eq!(fwd[0].term, 0);
}

#[test]
fn a_proposal_reaching_a_node_that_no_longer_leads_its_term_is_answered_not_appended() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&3].applied + 1;
    let term = forward_tracked(&mut c, 3, "late", &mut tracker);
    // The forwarded proposal is held back while node 2 takes over.
    let held: Vec<Message> = c.peer(3).handle_ready().unwrap();
    c.elect(2);
    for m in held {
        c.queue.push_back(m);
    }
    c.stabilize(SETTLE_BUDGET);
    let outcomes = decide(&mut c, 3, &mut tracker, &mut from);
    assert_eq!(
        outcomes,
        vec![("late", ProposalOutcome::NotAppended { term })]
    );
    stored_nowhere(&c, &[1, 2, 3], b"late");
}

#[test]
fn a_leader_transferring_leadership_answers_not_appended() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&2].applied + 1;
    transfer_to_cut_off_node_3(&mut c);
    let term = forward_tracked(&mut c, 2, "during transfer", &mut tracker);
    c.ready(2);
    c.stabilize(SETTLE_BUDGET);
    assert_eq!(
        decide(&mut c, 2, &mut tracker, &mut from),
        vec![("during transfer", ProposalOutcome::NotAppended { term })]
    );
}

#[test]
fn an_appended_proposal_overwritten_by_a_later_leader_is_dropped() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&2].applied + 1;
    let term = forward_tracked(&mut c, 2, "lost", &mut tracker);
    let out = c.peer(2).handle_ready().unwrap();
    for m in out {
        c.deliver(m);
    }
    // The leader appended it and answered; its appends are lost with it.
    let out = c.peer(1).handle_ready().unwrap();
    let (answers, appends): (Vec<Message>, Vec<Message>) = out
        .into_iter()
        .partition(|m| m.msg_type == MessageType::MsgPropose as i32);
    assert_eq!(answers.len(), 1);
    assert!(appends
        .iter()
        .all(|m| m.msg_type == MessageType::MsgAppend as i32));
    for m in answers {
        c.deliver(m);
    }
    c.isolated.insert(1);
    c.elect(2);
    c.propose(2, b"winner");
    let outcomes = decide(&mut c, 2, &mut tracker, &mut from);
    let [(
        "lost",
        ProposalOutcome::Dropped {
            index,
            term: t,
            committed_term,
        },
    )] = outcomes[..]
    else {
        panic!("expected one dropped outcome, got {outcomes:?}");
    };
    assert_eq!(t, term);
    assert!(committed_term > term);
    assert_eq!(entry_at(&c, 2, index).term, committed_term);
}

#[test]
fn a_proposal_lost_on_the_way_is_unanswered_once_a_later_term_is_applied() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&3].applied + 1;
    let term = forward_tracked(&mut c, 3, "into the void", &mut tracker);
    let _lost = c.peer(3).handle_ready().unwrap();
    c.stabilize(SETTLE_BUDGET);
    assert_eq!(decide(&mut c, 3, &mut tracker, &mut from), vec![]);
    assert_eq!(tracker.len(), 1, "still waiting while term {term} lasts");
    c.elect(2);
    assert_eq!(
        decide(&mut c, 3, &mut tracker, &mut from),
        vec![("into the void", ProposalOutcome::Unanswered { term })]
    );
}

#[test]
fn a_follower_without_a_leader_refuses_at_once() {
    let mut c = Cluster::new(Flags::ALL[0], &[1, 2, 3], &[], &[]);
    assert!(matches!(
        c.peer(2).raw.propose_tracked(vec![], b"x".to_vec()),
        Err(Error::ProposalDropped)
    ));
    assert!(c.peer(2).raw.take_forward_answers().is_empty());
}

#[test]
fn a_forged_or_unexpected_answer_is_ignored() {
    let mut c = cluster();
    let forged = Message {
        msg_type: MessageType::MsgPropose as i32,
        from: 1,
        to: 2,
        context: [&b"\xA6fwa"[..], &[7u8; 24][..]].concat().into(),
        ..Default::default()
    };
    c.deliver(forged).unwrap().unwrap();
    assert_eq!(
        c.peer(2).raw.take_forward_answers(),
        Vec::<ForwardAnswer>::new(),
        "node 2 forwarded nothing"
    );
}

#[test]
fn a_later_terms_leader_does_not_append_a_proposal_stamped_for_another_term() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&3].applied + 1;
    let term = forward_tracked(&mut c, 3, "old term", &mut tracker);
    let held: Vec<Message> = c.peer(3).handle_ready().unwrap();
    c.elect(2);
    // Passed on to the new leader by a node that does not read stamps (a raft-rs follower).
    for mut m in held {
        m.to = 2;
        c.queue.push_back(m);
    }
    c.stabilize(SETTLE_BUDGET);
    // Node 2 did not lead that term, so it cannot tell whether a copy was appended there: no
    // answer, and node 3 gives up once it applies an entry of node 2's term.
    assert!(c.peer(3).raw.take_forward_answers().is_empty());
    assert_eq!(
        decide(&mut c, 3, &mut tracker, &mut from),
        vec![("old term", ProposalOutcome::Unanswered { term })]
    );
    stored_nowhere(&c, &[2], b"old term");
}

#[test]
fn a_duplicated_forwarded_proposal_is_appended_once_and_answered_twice_alike() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&2].applied + 1;
    forward_tracked(&mut c, 2, "once", &mut tracker);
    let out = c.peer(2).handle_ready().unwrap();
    for m in out {
        c.queue.push_back(m.clone());
        c.queue.push_back(m);
    }
    c.stabilize(SETTLE_BUDGET);
    let answers = c.peer(2).raw.take_forward_answers();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0], answers[1]);
    let outcomes = tracker.on_forward_answers(answers);
    assert!(outcomes.is_empty());
    let last = c.peers[&2].raw.raft.raft_log.last_index();
    let copies = c.peers[&2]
        .store
        .entries(1, last + 1, u64::MAX)
        .unwrap()
        .iter()
        .filter(|e| &e.data[..] == b"once")
        .count();
    assert_eq!(copies, 1);
    let outcomes = decide(&mut c, 2, &mut tracker, &mut from);
    assert!(
        matches!(outcomes[..], [("once", ProposalOutcome::Committed { .. })]),
        "{outcomes:?}"
    );
}

#[test]
fn a_duplicate_of_a_refused_proposal_stays_refused() {
    let mut c = cluster();
    let mut tracker = ProposalTracker::new();
    let mut from = c.peers[&2].applied + 1;
    transfer_to_cut_off_node_3(&mut c);
    let term = forward_tracked(&mut c, 2, "refused", &mut tracker);
    let out = c.peer(2).handle_ready().unwrap();
    let copy = out.clone();
    for m in out {
        c.deliver(m);
    }
    // The transfer is given up (a tick past the election timeout), then the copy arrives.
    for _ in 0..30 {
        c.peer(1).raw.tick();
    }
    c.stabilize(SETTLE_BUDGET);
    assert_eq!(c.peers[&1].raw.raft.lead_transferee, None);
    c.queue.extend(copy);
    c.stabilize(SETTLE_BUDGET);
    assert_eq!(
        decide(&mut c, 2, &mut tracker, &mut from),
        vec![("refused", ProposalOutcome::NotAppended { term })]
    );
    stored_nowhere(&c, &[1], b"refused");
}
