//! Impossible input from the network, one test per class (DESIGN.md §5): the node refuses it with
//! the specific `Error` and its state is exactly as before, or, where the protocol has an answer
//! for it (an append that does not match, a stale snapshot), it answers and changes nothing else.
//!
//! Classes: commit past the last index, appends far beyond the log or with impossible entries,
//! snapshots older than the log or malformed, responses from unknown peers, local-only message
//! types, unknown type values, messages for another node, term overflow, read requests with the
//! wrong number of entries, vote requests from node 0.

use raft_core::eraftpb::{
    ConfState, Entry, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};
use raft_core::{Config, Error, RawNode, StateRole};
use storage_mem::{conf_state, MemStorage};

#[path = "support/node_state.rs"]
mod node_state;
use node_state::NodeState;

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn msg(msg_type: MessageType, from: u64, to: u64, term: u64) -> Message {
    Message {
        msg_type: msg_type as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

fn append(from: u64, to: u64, term: u64, index: u64, log_term: u64, commit: u64) -> Message {
    Message {
        index,
        log_term,
        commit,
        ..msg(MessageType::MsgAppend, from, to, term)
    }
}

struct Node {
    raw: RawNode<MemStorage>,
    store: MemStorage,
}

impl Node {
    fn new(id: u64, cfg: impl FnOnce(&mut Config)) -> Node {
        let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
        Node::over(id, store, cfg)
    }

    fn over(id: u64, store: MemStorage, cfg: impl FnOnce(&mut Config)) -> Node {
        let mut config = Config::new(id);
        cfg(&mut config);
        let raw = RawNode::new(&config, store.clone(), &logger()).expect("valid config");
        Node { raw, store }
    }

    /// Persists and applies the pending Ready (if any); returns what it sent.
    fn settle(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while self.raw.has_ready() {
            let mut rd = self.raw.ready().expect("ready");
            out.extend(rd.take_messages());
            {
                let mut s = self.store.wl();
                if !rd.snapshot().is_empty() {
                    s.apply_snapshot(rd.snapshot().clone())
                        .expect("store snapshot");
                }
                s.append(rd.entries()).expect("store entries");
                if let Some(hs) = rd.hard_state() {
                    s.set_hardstate(*hs);
                }
            }
            out.extend(rd.take_persisted_messages());
            let mut light = self.raw.advance(rd).expect("advance");
            if let Some(c) = light.commit_index() {
                self.store.wl().mut_hard_state().commit = c;
            }
            out.extend(light.take_messages());
            self.raw.advance_apply();
        }
        out
    }

    fn step_ok(&mut self, m: Message) {
        let d = raft_proto::describe_message(&m);
        self.raw
            .step(m)
            .unwrap_or_else(|e| panic!("fixture step {d} failed: {e}"));
    }

    /// The messages queued by the last step (not yet taken by a Ready).
    fn queued(&self) -> Vec<Message> {
        let r = &self.raw.raft;
        r.msgs.iter().chain(&r.msgs_after_append).cloned().collect()
    }
}

/// Node 2 of {1, 2, 3}, following leader 1 in term 2; log `1:t1 2:t1 3:t2 4:t2`, committed and
/// applied up to 3, all persisted.
fn follower() -> Node {
    let mut n = Node::new(2, |_| {});
    let mut m = append(1, 2, 2, 0, 0, 3);
    m.entries = vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)];
    n.step_ok(m);
    n.settle();
    let r = &n.raw.raft;
    assert_eq!(
        (
            r.term,
            r.leader_id,
            r.raft_log.last_index(),
            r.raft_log.committed
        ),
        (2, 1, 4, 3),
        "follower fixture"
    );
    n
}

/// Node 1 of {1, 2, 3}, leader of term 1 with its empty entry and two proposals committed by node
/// 2's acknowledgement (last index 3, commit 3).
fn leader() -> Node {
    let mut n = Node::new(1, |_| {});
    n.raw.campaign().expect("campaign");
    n.settle();
    n.step_ok(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1));
    n.settle();
    n.raw.propose(vec![], b"a".to_vec()).expect("propose");
    n.raw.propose(vec![], b"b".to_vec()).expect("propose");
    n.settle();
    let ack = Message {
        index: 3,
        ..msg(MessageType::MsgAppendResponse, 2, 1, 1)
    };
    n.step_ok(ack);
    n.settle();
    let r = &n.raw.raft;
    assert_eq!(
        (
            r.state,
            r.term,
            r.raft_log.last_index(),
            r.raft_log.committed
        ),
        (StateRole::Leader, 1, 3, 3),
        "leader fixture"
    );
    n
}

/// Node 3 of {1, 2, 3}, a candidate of term 1 waiting for votes.
fn candidate() -> Node {
    let mut n = Node::new(3, |_| {});
    n.raw.campaign().expect("campaign");
    n.settle();
    assert_eq!(n.raw.raft.state, StateRole::Candidate, "candidate fixture");
    n
}

// ---------------------------------------------------------------------------------------------
// "Nothing changed": everything a refused message could touch.
// ---------------------------------------------------------------------------------------------

/// The state a refused message must leave unchanged.
struct State;

impl State {
    fn of(n: &Node) -> NodeState {
        NodeState::of(&n.raw)
    }
}

/// Steps `m` into `n`, expects exactly `expected`, and that nothing changed.
fn assert_refused(n: &mut Node, m: Message, expected: &Error) {
    let before = State::of(n);
    let d = raft_proto::describe_message(&m);
    let result = n.raw.step(m);
    assert_eq!(
        result.as_ref(),
        Err(expected),
        "stepping {d} should be refused with `{expected}`"
    );
    assert_eq!(
        State::of(n),
        before,
        "refusing {d} changed the node's state"
    );
}

/// Steps `m` into `n`, expects `InvalidMessage` of this type and sender whose reason mentions
/// `reason_has`, and that nothing changed.
fn assert_invalid(n: &mut Node, m: Message, reason_has: &str) {
    let before = State::of(n);
    let d = raft_proto::describe_message(&m);
    let (msg_type, from) = (m.msg_type(), m.from);
    match n.raw.step(m) {
        Err(Error::InvalidMessage {
            msg_type: t,
            from: f,
            reason,
        }) => {
            assert_eq!(
                (t, f),
                (msg_type, from),
                "{d}: the error names the wrong message"
            );
            assert!(
                reason.contains(reason_has),
                "{d}: refused for `{reason}`, expected a reason about `{reason_has}`"
            );
        }
        other => panic!("{d} should be refused as invalid ({reason_has}), got {other:?}"),
    }
    assert_eq!(
        State::of(n),
        before,
        "refusing {d} changed the node's state"
    );
}

// ---------------------------------------------------------------------------------------------
// Commit past the last index.
// ---------------------------------------------------------------------------------------------

/// raft-rs and etcd panic here ("to_commit X is out of range"); we refuse the heartbeat, whether
/// it is of our term or of a higher one (the higher term is not adopted either).
#[test]
fn heartbeat_committing_past_the_last_index_is_rejected_and_changes_nothing() {
    for term in [2, 3, u64::MAX] {
        let mut n = follower();
        let m = Message {
            commit: 5,
            ..msg(MessageType::MsgHeartbeat, 1, 2, term)
        };
        assert_invalid(&mut n, m, "commit");
        let m = Message {
            commit: u64::MAX,
            ..msg(MessageType::MsgHeartbeat, 1, 2, term)
        };
        assert_invalid(&mut n, m, "commit");
    }
}

/// §5.3: a follower sets its commit index to min(leaderCommit, index of the last new entry); a
/// larger commit in an append is not an error but never commits entries the append did not cover.
#[test]
fn append_committing_past_its_last_entry_commits_only_what_it_covers() {
    let mut n = follower();
    // Entry 5 follows (4, t2); the leader claims commit 1000.
    let mut m = append(1, 2, 2, 4, 2, 1000);
    m.entries = vec![entry(5, 2)];
    n.raw.step(m).expect("a matching append is accepted");
    assert_eq!(n.raw.raft.raft_log.committed, 5, "commit is capped at 5");
    // An empty append matching at 3: commit may reach 3 at most (already 3), not 4 or beyond.
    let mut n = follower();
    n.raw
        .step(append(1, 2, 2, 3, 2, u64::MAX))
        .expect("a matching empty append is accepted");
    assert_eq!(
        n.raw.raft.raft_log.committed, 3,
        "an empty append at 3 commits nothing past 3"
    );
}

/// A follower lagging the leader's leader-side state: an append whose previous entry is far past
/// our log is answered with a rejection and a hint (our last index), never stored with a gap and
/// never committing anything.
#[test]
fn append_far_beyond_the_log_is_answered_with_a_rejection_and_changes_no_log() {
    // The hint is our largest index whose term is at most the append's previous term (raft-rs).
    for (index, log_term, hint) in [(1_000_000, 2, 4), (u64::MAX / 2 - 10, 2, 4), (6, 1, 2)] {
        let mut n = follower();
        let before = State::of(&n);
        let mut m = append(1, 2, 2, index, log_term, index + 1);
        m.entries = vec![entry(index + 1, 2)];
        n.raw
            .step(m)
            .expect("a non-matching append is answered, not refused");
        let after = State::of(&n);
        assert_eq!(
            (&after.log, after.committed, after.persisted),
            (&before.log, before.committed, before.persisted),
            "an append after index {index} changed the log or commit index"
        );
        let answers = n.queued();
        assert_eq!(answers.len(), 1, "one answer expected: {answers:?}");
        let a = &answers[0];
        assert!(
            a.msg_type() == MessageType::MsgAppendResponse && a.reject && a.to == 1,
            "expected a rejection to the leader, got {}",
            raft_proto::describe_message(a)
        );
        assert_eq!(
            a.reject_hint, hint,
            "rejection hint for an append after {index}"
        );
    }
}

/// Entry indexes that overflow u64 cannot be a real log.
#[test]
fn append_whose_entry_indexes_overflow_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 2, u64::MAX - 1, 2, 0);
    m.entries = vec![entry(u64::MAX, 2)];
    assert_invalid(&mut n, m, "overflow");
    let mut m = append(1, 2, 2, u64::MAX, 2, 0);
    m.entries = vec![entry(0, 2)];
    assert_invalid(&mut n, m, "overflow");
}

#[test]
fn append_with_entries_not_contiguous_after_the_previous_index_is_rejected() {
    for entries in [
        vec![entry(6, 2)],              // a gap after 4
        vec![entry(5, 2), entry(7, 2)], // a gap inside
        vec![entry(5, 2), entry(5, 2)], // a duplicate
        vec![entry(6, 2), entry(5, 2)], // reordered
        vec![entry(4, 2), entry(5, 2)], // starts at the previous index
    ] {
        let mut n = follower();
        let mut m = append(1, 2, 2, 4, 2, 3);
        m.entries = entries;
        assert_invalid(&mut n, m, "contiguous");
    }
}

/// Log terms never decrease along a log (§5.3 Log Matching follows from it).
#[test]
fn append_whose_entry_terms_decrease_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 3, 4, 2, 3);
    m.entries = vec![entry(5, 3), entry(6, 2)];
    assert_invalid(&mut n, m, "terms");
    // Below the previous entry's term.
    let mut m = append(1, 2, 3, 4, 2, 3);
    m.entries = vec![entry(5, 1)];
    assert_invalid(&mut n, m, "terms");
}

/// A leader only sends entries of its term or older (§5.3); an entry of a later term is forged.
#[test]
fn append_with_an_entry_term_above_the_message_term_is_rejected() {
    let mut n = follower();
    let mut m = append(1, 2, 2, 4, 2, 3);
    m.entries = vec![entry(5, 3)];
    assert_invalid(&mut n, m, "term");
    let mut m = append(1, 2, 2, 4, 2, 3);
    m.entries = vec![entry(5, u64::MAX)];
    assert_invalid(&mut n, m, "term");
}

#[test]
fn append_whose_previous_entry_term_is_above_the_message_term_is_rejected() {
    let mut n = follower();
    assert_invalid(&mut n, append(1, 2, 2, 4, 3, 3), "previous");
}

// ---------------------------------------------------------------------------------------------
// Snapshots.
// ---------------------------------------------------------------------------------------------

fn snapshot_msg(term: u64, metadata: Option<SnapshotMetadata>) -> Message {
    Message {
        snapshot: Some(Box::new(Snapshot {
            data: Default::default(),
            metadata,
        })),
        ..msg(MessageType::MsgSnapshot, 1, 2, term)
    }
}

fn meta(index: u64, term: u64, voters: &[u64]) -> SnapshotMetadata {
    SnapshotMetadata {
        conf_state: Some(conf_state(voters.iter().copied(), [])),
        index,
        term,
    }
}

/// A snapshot that ends before our commit index carries nothing new: it is ignored and answered
/// with our commit index so the leader resumes appending from there (etcd `handleSnapshot`).
#[test]
fn snapshot_older_than_the_commit_index_is_ignored_and_answered_with_the_commit_index() {
    for index in [1, 2] {
        let mut n = follower();
        let before = State::of(&n);
        n.raw
            .step(snapshot_msg(2, Some(meta(index, 1, &[1, 2, 3]))))
            .expect("a stale snapshot is answered, not refused");
        let after = State::of(&n);
        assert_eq!(
            (&after.log, after.committed, after.persisted, after.applied),
            (
                &before.log,
                before.committed,
                before.persisted,
                before.applied
            ),
            "a snapshot at {index} (commit 3) changed the log"
        );
        assert!(
            n.raw.raft.raft_log.unstable_snapshot().is_none(),
            "the stale snapshot was kept for persisting"
        );
        let answers = n.queued();
        assert!(
            matches!(answers.as_slice(), [a] if a.msg_type() == MessageType::MsgAppendResponse
                && !a.reject && a.index == 3 && a.to == 1),
            "expected one acknowledgement of index 3 (the commit index), got {answers:?}"
        );
    }
}

/// A snapshot whose last entry is our committed entry with another term contradicts what a
/// quorum committed (§5.4 Leader Completeness): no honest leader sends it. It must be ignored
/// like a stale one (etcd ignores every snapshot at or below the commit index). The core
/// restores it instead, replacing the committed entry; over a storage compacted at that index
/// (found by `fuzz_messages` with `RAFT_FUZZ_SCALE=100`), the Ready's snapshot is then refused
/// by `MemStorage::apply_snapshot` (not newer than its own) and the node cannot go on.
#[test]
fn snapshot_at_the_commit_index_contradicting_the_committed_entry_is_ignored() {
    let mut n = follower();
    // The follower compacts behind its applied (= committed) index, as applications do.
    {
        let mut s = n.store.wl();
        s.create_snapshot(3, None, Default::default())
            .expect("snapshot");
        s.compact(3).expect("compact");
    }
    let before = State::of(&n);
    // Committed entry 3 has term 2; this snapshot claims term 3 there.
    n.raw
        .step(snapshot_msg(3, Some(meta(3, 3, &[1, 2, 3]))))
        .expect("a snapshot at the commit index is answered, not refused");
    let after = State::of(&n);
    assert_eq!(
        (&after.log, after.committed),
        (&before.log, before.committed),
        "the committed entry at 3 (term 2) was replaced by a snapshot claiming term 3"
    );
    assert!(
        n.raw.raft.raft_log.unstable_snapshot().is_none(),
        "the contradicting snapshot is waiting to be persisted"
    );
    // Whatever the node decided, its Ready must be persistable.
    n.settle();
}

#[test]
fn snapshot_at_index_0_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(0, 1, &[1, 2, 3]))),
        "snapshot",
    );
}

#[test]
fn snapshot_without_a_snapshot_or_its_metadata_is_rejected() {
    let mut n = follower();
    assert_invalid(&mut n, snapshot_msg(2, None), "metadata");
    let mut m = snapshot_msg(2, None);
    m.snapshot = None;
    assert_invalid(&mut n, m, "metadata");
}

/// Every group at a snapshot has at least one voter; a snapshot without one would leave the node
/// unable to count any quorum.
#[test]
fn snapshot_without_voters_is_rejected() {
    let mut n = follower();
    let mut no_conf = meta(10, 2, &[]);
    no_conf.conf_state = None;
    assert_invalid(&mut n, snapshot_msg(2, Some(no_conf)), "membership");
    let learners_only = SnapshotMetadata {
        conf_state: Some(ConfState {
            learners: vec![2],
            ..Default::default()
        }),
        index: 10,
        term: 2,
    };
    assert_invalid(&mut n, snapshot_msg(2, Some(learners_only)), "membership");
}

#[test]
fn snapshot_at_index_u64_max_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(u64::MAX, 2, &[1, 2, 3]))),
        "overflow",
    );
}

/// Index arithmetic near u64::MAX (issue 8: "integer overflow on terms and indexes is handled").
/// A snapshot at u64::MAX - 1 passes validation (only u64::MAX is refused) and is restored; the
/// node then wins an election and its empty entry takes index u64::MAX, so the next proposal's
/// index overflows: a panic in debug builds, a wrapped index 0 (last index 0, commit and
/// persisted above it) in release builds. Found by `fuzz_messages` (a mutated snapshot index).
/// Expected: refused up front, or the proposal refused; never an overflow.
#[test]
fn snapshot_near_u64_max_never_leads_to_an_index_overflow() {
    let mut n = follower();
    let index = u64::MAX - 1;
    let restored = n
        .raw
        .step(snapshot_msg(2, Some(meta(index, 2, &[1, 2, 3]))));
    if restored.is_ok() {
        n.settle();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            n.raw.campaign().expect("campaign");
            n.settle();
            let term = n.raw.raft.term;
            n.raw
                .step(msg(MessageType::MsgRequestVoteResponse, 1, 2, term))
                .expect("vote");
            n.settle();
            assert_eq!(n.raw.raft.state, StateRole::Leader, "node 2 leads");
            let proposal = n.raw.propose(vec![], b"x".to_vec());
            n.settle();
            proposal
        }));
        let proposal = result.expect("an index overflowed (panic in a debug build)");
        let log = &n.raw.raft.raft_log;
        assert!(
            log.committed <= log.last_index() && log.last_index() >= index,
            "the log wrapped around: last index {}, commit {} (proposal: {proposal:?})",
            log.last_index(),
            log.committed
        );
    }
}

/// A snapshot's last entry cannot be of a term later than the leader sending it, nor of term 0.
#[test]
fn snapshot_of_term_0_or_above_the_message_term_is_rejected() {
    let mut n = follower();
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(10, 0, &[1, 2, 3]))),
        "term",
    );
    assert_invalid(
        &mut n,
        snapshot_msg(2, Some(meta(10, 3, &[1, 2, 3]))),
        "term",
    );
}

// ---------------------------------------------------------------------------------------------
// Senders and recipients.
// ---------------------------------------------------------------------------------------------

#[test]
fn responses_from_a_node_outside_the_configuration_are_refused_with_step_peer_not_found() {
    let types = [
        MessageType::MsgAppendResponse,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVoteResponse,
    ];
    for (name, build, term) in [
        ("leader", leader as fn() -> Node, 1),
        ("follower", follower, 2),
        ("candidate", candidate, 1),
    ] {
        for t in types {
            for from in [4, 99, u64::MAX] {
                let mut n = build();
                let m = Message {
                    index: 1,
                    ..msg(t, from, n.raw.raft.id, term)
                };
                let before = State::of(&n);
                let result = n.raw.step(m);
                assert_eq!(
                    result,
                    Err(Error::StepPeerNotFound { msg_type: t, from }),
                    "{name}: {t:?} from unknown node {from}"
                );
                assert_eq!(
                    State::of(&n),
                    before,
                    "{name}: refusing {t:?} changed state"
                );
            }
        }
    }
}

/// `MsgHup`, `MsgBeat`, `MsgUnreachable`, `MsgSnapStatus` and `MsgCheckQuorum` are built by the
/// node for itself; from the network they would let anyone start elections or reset progress.
#[test]
fn local_message_types_from_the_network_are_refused_with_step_local_msg() {
    let local = [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
        MessageType::MsgCheckQuorum,
    ];
    for build in [leader as fn() -> Node, follower, candidate] {
        for t in local {
            for (from, term) in [(0, 0), (2, 1), (3, 7)] {
                let mut n = build();
                let to = n.raw.raft.id;
                assert_refused(&mut n, msg(t, from, to, term), &Error::StepLocalMsg(t));
            }
        }
    }
}

#[test]
fn unknown_message_type_values_are_refused() {
    for value in [19, 20, 100, -1, i32::MAX, i32::MIN] {
        let mut n = follower();
        let m = Message {
            msg_type: value,
            from: 1,
            to: 2,
            term: 2,
            ..Default::default()
        };
        assert_refused(&mut n, m, &Error::UnknownMessageType(value));
    }
}

#[test]
fn message_addressed_to_another_node_is_rejected() {
    for to in [1, 3, 99, u64::MAX] {
        let mut n = follower();
        let mut m = append(1, to, 2, 4, 2, 4);
        m.entries = vec![entry(5, 2)];
        assert_invalid(&mut n, m, "another node");
        // A vote request for someone else must not earn our vote either.
        let m = Message {
            index: 10,
            log_term: 5,
            ..msg(MessageType::MsgRequestVote, 3, to, 5)
        };
        assert_invalid(&mut n, m, "another node");
    }
}

#[test]
fn vote_requests_from_node_0_are_rejected() {
    for t in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
        for n in [follower(), leader(), candidate()] {
            let mut n = n;
            let id = n.raw.raft.id;
            let term = n.raw.raft.term + 1;
            let m = Message {
                index: 10,
                log_term: term,
                ..msg(t, 0, id, term)
            };
            assert_invalid(&mut n, m, "sender");
        }
    }
}

#[test]
fn read_index_messages_without_exactly_one_entry_are_rejected() {
    for t in [MessageType::MsgReadIndex, MessageType::MsgReadIndexResp] {
        for entries in [vec![], vec![entry(0, 0), entry(0, 0)]] {
            for n in [follower(), leader()] {
                let mut n = n;
                let id = n.raw.raft.id;
                let from = if id == 1 { 2 } else { 1 };
                // Requests travel without a term, answers with the leader's.
                let term = if t == MessageType::MsgReadIndex {
                    0
                } else {
                    n.raw.raft.term
                };
                let m = Message {
                    entries: entries.clone(),
                    index: 1,
                    ..msg(t, from, id, term)
                };
                assert_invalid(&mut n, m, "one entry");
            }
        }
    }
}

/// Messages of peers (not proposals or reads, which are forwarded without one) carry a term.
#[test]
fn peer_messages_without_a_term_are_rejected() {
    for t in [
        MessageType::MsgAppend,
        MessageType::MsgHeartbeat,
        MessageType::MsgRequestVote,
        MessageType::MsgTimeoutNow,
        MessageType::MsgSnapshot,
    ] {
        let mut n = follower();
        assert_invalid(&mut n, msg(t, 1, 2, 0), "term");
    }
}

#[test]
fn append_response_acknowledging_past_the_leaders_last_index_is_rejected() {
    let mut n = leader();
    for index in [4, 1_000, u64::MAX] {
        let m = Message {
            index,
            ..msg(MessageType::MsgAppendResponse, 2, 1, 1)
        };
        assert_invalid(&mut n, m, "beyond");
    }
}

// ---------------------------------------------------------------------------------------------
// Term overflow.
// ---------------------------------------------------------------------------------------------

/// Every peer message type at term u64::MAX, into each role: no arithmetic overflows. A message
/// of a higher term is adopted (§5.1) unless refused up front, and then nothing changes.
#[test]
fn messages_of_term_u64_max_never_overflow_and_are_adopted_or_refused_cleanly() {
    let types = [
        MessageType::MsgPropose,
        MessageType::MsgAppend,
        MessageType::MsgAppendResponse,
        MessageType::MsgRequestVote,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgSnapshot,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgTransferLeader,
        MessageType::MsgTimeoutNow,
        MessageType::MsgReadIndex,
        MessageType::MsgReadIndexResp,
        MessageType::MsgRequestPreVote,
        MessageType::MsgRequestPreVoteResponse,
    ];
    for (name, build) in [
        ("leader", leader as fn() -> Node),
        ("follower", follower),
        ("candidate", candidate),
    ] {
        for t in types {
            let mut n = build();
            let id = n.raw.raft.id;
            let from = if id == 3 { 2 } else { 3 };
            let mut m = Message {
                index: 4,
                log_term: u64::MAX,
                commit: 3,
                ..msg(t, from, id, u64::MAX)
            };
            if matches!(t, MessageType::MsgReadIndex | MessageType::MsgReadIndexResp) {
                m.entries = vec![Entry::default()];
            }
            if t == MessageType::MsgSnapshot {
                m.snapshot = Some(Box::new(Snapshot {
                    metadata: Some(meta(20, u64::MAX, &[1, 2, 3])),
                    ..Default::default()
                }));
            }
            let before = State::of(&n);
            let result = n.raw.step(m);
            let r = &n.raw.raft;
            match &result {
                Err(Error::ProposalDropped) | Err(Error::ReadIndexDropped) | Ok(()) => {}
                Err(e) => {
                    assert_eq!(
                        State::of(&n),
                        before,
                        "{name}: {t:?} refused with {e} changed state"
                    )
                }
            }
            // Proposals and reads travel without a term and depose no one; a pre-vote request and
            // a granted pre-vote do not start a term (thesis §9.6).
            let keeps_term = matches!(
                t,
                MessageType::MsgPropose
                    | MessageType::MsgReadIndex
                    | MessageType::MsgRequestPreVote
                    | MessageType::MsgRequestPreVoteResponse
            );
            if result.is_ok() && !keeps_term {
                assert_eq!(
                    r.term,
                    u64::MAX,
                    "{name}: {t:?} of term u64::MAX not adopted"
                );
            }
            for m in n.queued() {
                assert!(
                    m.term == 0 || m.term == u64::MAX || m.term == r.term,
                    "{name}: after {t:?} a message with a wrapped term: {}",
                    raft_proto::describe_message(&m)
                );
            }
            // The Ready cycle works at term u64::MAX.
            n.settle();
        }
    }
}

/// A node at term u64::MAX cannot start a new term: campaigning, an election timeout and a
/// transfer's MsgTimeoutNow all leave it a follower at u64::MAX, asking no one for votes.
#[test]
fn a_node_at_term_u64_max_refuses_to_campaign() {
    for pre_vote in [false, true] {
        let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
        store.wl().set_hardstate(HardState {
            term: u64::MAX,
            vote: 0,
            commit: 0,
        });
        let mut n = Node::over(2, store, |c| c.pre_vote = pre_vote);
        let before = State::of(&n);
        n.raw.campaign().expect("campaign is refused quietly");
        assert_eq!(
            State::of(&n),
            before,
            "campaign at u64::MAX changed the node"
        );
        for _ in 0..100 {
            n.raw.tick();
        }
        let r = &n.raw.raft;
        assert_eq!(
            (r.state, r.term, r.vote),
            (StateRole::Follower, u64::MAX, 0),
            "an election timeout at u64::MAX started a campaign (pre_vote {pre_vote})"
        );
        assert!(
            n.queued().is_empty(),
            "vote requests sent: {:?}",
            n.queued()
        );
        n.raw
            .step(msg(MessageType::MsgTimeoutNow, 1, 2, u64::MAX))
            .expect("MsgTimeoutNow is accepted");
        let r = &n.raw.raft;
        assert_eq!(
            (r.state, r.term),
            (StateRole::Follower, u64::MAX),
            "MsgTimeoutNow at u64::MAX started a campaign"
        );
        assert!(
            n.queued().is_empty(),
            "vote requests sent: {:?}",
            n.queued()
        );
    }
}
