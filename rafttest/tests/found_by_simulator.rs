//! Bugs the swarm simulator (`raft-sim`) found in the core, each pinned by a hand-built scenario
//! that fails without its fix. (The late-snapshot case lives with the lent-entries tests:
//! `a_late_snapshot_older_than_the_one_requested_is_not_restored` in
//! `lent_entries/late_snapshot.rs`.)

use bytes::Bytes;
use raft_core::eraftpb::{Entry, EntryType, Message, MessageType};
use raft_core::{Config, RawNode, StateRole, Storage};
use storage_mem::MemStorage;

mod common;
use common::{append_msg, logger, msg, vote_request};

fn node(id: u64, storage: &MemStorage) -> RawNode<MemStorage> {
    let config = Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        ..Default::default()
    };
    RawNode::new(&config, storage.clone(), &logger()).expect("start")
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        entry_type: EntryType::EntryNormal as i32,
        index,
        term,
        data: Bytes::from(format!("{index}@{term}")),
        ..Default::default()
    }
}

/// An append from `from`, leading `term`, to node 2, after `prev`, with commit index 1.
fn append(from: u64, term: u64, prev: (u64, u64), entries: Vec<Entry>) -> Message {
    append_msg(from, 2, term, prev, entries, 1)
}

/// A snapshot from `from` (leading `term`) to node 2 at (`index`, `snap_term`) with `conf_state`.
fn snapshot_msg(
    from: u64,
    term: u64,
    (index, snap_term): (u64, u64),
    conf_state: raft_core::eraftpb::ConfState,
) -> Message {
    let mut snapshot = raft_core::eraftpb::Snapshot::default();
    let meta = snapshot.metadata.get_or_insert_with(Default::default);
    meta.index = index;
    meta.term = snap_term;
    meta.conf_state = Some(conf_state);
    Message {
        snapshot: Some(Box::new(snapshot)),
        ..msg(MessageType::MsgSnapshot, from, 2, term)
    }
}

/// A membership change of one node, and the log entry at (`index`, `term`) carrying it.
fn conf_change_entry(
    change_type: raft_core::eraftpb::ConfChangeType,
    node_id: u64,
    (index, term): (u64, u64),
) -> (raft_core::eraftpb::ConfChangeV2, Entry) {
    let cc = raft_core::eraftpb::ConfChangeV2 {
        changes: vec![raft_core::eraftpb::ConfChangeSingle {
            change_type: change_type as i32,
            node_id,
        }],
        ..Default::default()
    };
    let entry = Entry {
        entry_type: EntryType::EntryConfChangeV2 as i32,
        index,
        term,
        data: raft_proto::ConfChangeI::encode_to_bytes(&cc),
        ..Default::default()
    };
    (cc, entry)
}

/// Takes every Ready and handles it synchronously: writes it, applies it, advances.
fn drain(raw: &mut RawNode<MemStorage>, storage: &MemStorage) -> Vec<Message> {
    let mut sent = Vec::new();
    while raw.has_ready() {
        let mut rd = raw.ready().expect("ready");
        sent.extend(rd.take_messages());
        {
            let mut store = storage.wl();
            store.append(rd.entries()).expect("append");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        sent.extend(rd.take_persisted_messages());
        let mut light = raw.advance(rd).expect("advance");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        sent.extend(light.take_messages());
        raw.advance_apply();
    }
    sent
}

/// A single voter restarts with a stored commit index behind entries it had committed (and its
/// application had applied: the commit index is stored lazily, in a later Ready). A read must wait
/// for its first commit in the new term, which covers those entries again; answering at the stored
/// commit index is a stale read.
#[test]
fn a_restarted_single_voter_answers_reads_only_after_its_first_commit_in_its_term() {
    let storage = MemStorage::bootstrap([1], []).expect("bootstrap");
    {
        let mut store = storage.wl();
        store.append(&[entry(2, 1), entry(3, 1)]).expect("append");
        let hs = store.mut_hard_state();
        hs.term = 1;
        hs.commit = 1; // 2..=3 were committed before the crash; the commit index was not stored
    }
    let mut raw = node(1, &storage);
    raw.campaign().expect("campaign");
    assert_eq!(raw.raft.state, StateRole::Leader);
    raw.read_index(b"r".to_vec()).expect("read");
    // Before the new term's entry is durable, nothing may be answered.
    let rd = raw.ready().expect("ready");
    assert!(
        rd.read_states().is_empty(),
        "answered a read at {:?} before the first commit of the term (entries 2..=3 are \
         committed but not known to be)",
        rd.read_states().iter().map(|r| r.index).collect::<Vec<_>>()
    );
    {
        let mut store = storage.wl();
        store.append(rd.entries()).expect("append");
        if let Some(hs) = rd.hard_state() {
            store.set_hardstate(*hs);
        }
    }
    let mut light = raw.advance(rd).expect("advance");
    let _ = light.take_committed_entries();
    raw.advance_apply();
    let rd = raw.ready().expect("ready");
    let answered: Vec<u64> = rd.read_states().iter().map(|r| r.index).collect();
    assert_eq!(
        answered,
        vec![4],
        "the read is answered at the term's first commit"
    );
}

/// A follower that asked its leader for a snapshot covering its uncommitted tail forgets the
/// request when a new term begins: the new leader's log may never reach that index, and a node
/// waiting for it refuses every append.
#[test]
fn a_snapshot_request_does_not_outlive_its_term() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    // Leader 1 of term 2 sends 2..=5; the follower asks for a snapshot covering 5.
    raw.step(append(1, 2, (1, 1), (2..=5).map(|i| entry(i, 2)).collect()))
        .expect("append");
    drain(&mut raw, &storage);
    raw.request_snapshot().expect("request");
    drain(&mut raw, &storage);
    // Leader 3 of term 3 has only 2 of them and replaces the rest.
    raw.step(append(3, 3, (2, 2), vec![entry(3, 3)]))
        .expect("append");
    let sent = drain(&mut raw, &storage);
    let answer = sent
        .iter()
        .find(|m| m.msg_type() == MessageType::MsgAppendResponse && m.to == 3)
        .expect("an answer to leader 3");
    assert!(
        !answer.reject && answer.index == 3,
        "the follower still waits for the old request instead of taking the new leader's \
         append: {answer:?}"
    );
}

/// A follower acknowledges entries of leader 1 (term 2), but before a Ready carries them a newer
/// leader (term 3) replaces them. The acknowledgement must not leave with the next Ready: that
/// Ready writes the replacement, and leader 1 would count entries this node never stored.
#[test]
fn an_acknowledgement_of_entries_replaced_before_they_were_written_is_never_sent() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    raw.step(append(1, 2, (1, 1), (2..=6).map(|i| entry(i, 2)).collect()))
        .expect("append from leader 1");
    raw.step(append(3, 3, (1, 1), vec![entry(2, 3)]))
        .expect("append from leader 3");
    let sent = drain(&mut raw, &storage);
    let stored_last = storage.last_index().expect("last index");
    for m in &sent {
        if m.msg_type() == MessageType::MsgAppendResponse && !m.reject {
            assert!(
                m.term == 3 && m.index <= stored_last,
                "node 2 sent {m:?} though its storage ends at {stored_last} with \
                 {:?}: it acknowledges entries it never wrote",
                storage
                    .entries(2, stored_last + 1, u64::MAX)
                    .map(|es| es.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>())
            );
        }
    }
}

/// Delivers messages between the two nodes until none is left, dropping those `drop` picks.
fn exchange(
    nodes: &mut [(RawNode<MemStorage>, MemStorage); 2],
    mut msgs: Vec<Message>,
    drop: impl Fn(&Message) -> bool,
) {
    for _ in 0..100 {
        for (raw, storage) in nodes.iter_mut() {
            msgs.extend(drain(raw, storage));
        }
        if msgs.is_empty() {
            return;
        }
        for m in std::mem::take(&mut msgs) {
            if !drop(&m) {
                let _ = nodes[(m.to - 1) as usize].0.step(m);
            }
        }
    }
    panic!("the two nodes never went quiet");
}

/// In a group of two voters, the follower's acknowledgement of the leader's last entries is
/// lost, then its application asks for a snapshot (`request_snapshot`). From then on it refuses
/// appends and only reminds the leader of its request. The reminder leaves only once the
/// follower's log is durable and names its last entry: the leader must count that, or its commit
/// index (and any snapshot its application can take) never reaches the requested index, and the
/// group stalls for good.
#[test]
fn a_snapshot_request_from_a_follower_the_quorum_needs_does_not_stall_the_group() {
    let mut nodes = [1, 2].map(|id| {
        let storage = MemStorage::bootstrap([1, 2], []).expect("bootstrap");
        (node(id, &storage), storage)
    });
    nodes[0].0.campaign().expect("campaign");
    exchange(&mut nodes, Vec::new(), |_| false);
    assert_eq!(nodes[0].0.raft.state, StateRole::Leader);
    for i in 0..3u8 {
        nodes[0].0.propose(vec![], vec![i]).expect("propose");
    }
    // The follower appends and writes them; its acknowledgements are lost.
    exchange(&mut nodes, Vec::new(), |m| {
        m.msg_type() == MessageType::MsgAppendResponse && m.from == 2
    });
    let last = nodes[1].0.raft.raft_log.last_index();
    assert!(nodes[0].0.raft.raft_log.committed < last);
    nodes[1].0.request_snapshot().expect("request a snapshot");
    exchange(&mut nodes, Vec::new(), |_| false);
    assert_eq!(
        nodes[0].0.raft.raft_log.committed, last,
        "the leader never learned that the follower holds its entries: nothing can commit and \
         no snapshot can cover the request"
    );
}

/// A single voter wins its election at once, before its new term and vote are durable. What it
/// sends in that term (appends to its learner) must wait until they are: had the learner got
/// entries of the term and the voter crashed before persisting it, the voter would lead the same
/// term again after the restart with other entries at the same indexes, breaking log matching.
#[test]
fn a_single_voter_sends_nothing_of_its_term_before_the_term_is_durable() {
    let storage = MemStorage::bootstrap([1], [2]).expect("bootstrap");
    let mut raw = node(1, &storage);
    raw.campaign().expect("campaign");
    assert_eq!(raw.raft.state, StateRole::Leader);
    raw.propose(vec![], b"x".to_vec()).expect("propose");
    let mut rd = raw.ready().expect("ready");
    let term = raw.raft.term;
    assert_eq!(rd.hard_state().map(|hs| hs.term), Some(term));
    let early: Vec<Message> = rd.take_messages();
    assert!(
        early.iter().all(|m| m.term != term),
        "sent before its term {term} was durable: {early:?}"
    );
    let held = rd.take_persisted_messages();
    assert!(
        held.iter()
            .any(|m| m.msg_type() == MessageType::MsgAppend && m.to == 2),
        "the append to the learner goes out once the Ready is persisted: {held:?}"
    );
    {
        let mut store = storage.wl();
        store.append(rd.entries()).expect("append");
        store.set_hardstate(*rd.hard_state().expect("hard state"));
    }
    let mut light = raw.advance(rd).expect("advance");
    let _ = light.take_messages();
    raw.tick(); // a heartbeat is due
    let rd = raw.ready().expect("ready");
    assert!(
        rd.messages()
            .iter()
            .any(|m| m.msg_type() == MessageType::MsgHeartbeat && m.to == 2),
        "once the term is durable, messages leave at once again: {:?}",
        rd.messages()
    );
}

/// A follower whose application pipelines its Readys has made leader 1's entries 2..=5 (term 2)
/// durable, and has taken but not yet reported a later Ready, when leader 3 (term 3) sends a
/// snapshot at index 4 of a different history. Reporting the older Ready (`advance_append`) must
/// not hand back a commit index up to the snapshot: storage holds leader 1's entries there until
/// the snapshot's own Ready is written, and a stored commit over them would make them committed
/// on a restart.
#[test]
fn a_snapshot_not_yet_written_does_not_let_an_older_ready_report_its_commit_index() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    raw.step(append(1, 2, (1, 1), (2..=5).map(|i| entry(i, 2)).collect()))
        .expect("append from leader 1");
    drain(&mut raw, &storage);
    // A heartbeat's answer makes a Ready the application takes and has not reported yet.
    let mut heartbeat = msg(MessageType::MsgHeartbeat, 1, 2, 2);
    heartbeat.commit = 1;
    raw.step(heartbeat).expect("heartbeat from leader 1");
    let rd = raw.ready().expect("ready");
    let voters = raft_core::eraftpb::ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    raw.step(snapshot_msg(3, 3, (4, 3), voters))
        .expect("snapshot from leader 3");
    let light = raw.advance_append(rd).expect("advance_append");
    let stored_term_at_4 = storage.term(4).expect("term");
    assert!(
        light.commit_index().is_none_or(|c| c <= 1),
        "reported commit index {:?} while storage holds term {stored_term_at_4} at index 4, \
         not the snapshot's term 3",
        light.commit_index()
    );
}

/// An application that pipelines its Readys may apply committed entries, snapshot and compact
/// before the Ready carrying their commit index is written. After a crash the stored commit index
/// is then behind the snapshot: the node starts from the snapshot instead of refusing to start.
#[test]
fn a_stored_commit_index_behind_the_snapshot_starts_from_the_snapshot() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    {
        let mut store = storage.wl();
        store
            .append(&(2..=6).map(|i| entry(i, 1)).collect::<Vec<_>>())
            .expect("append");
        store.mut_hard_state().term = 1;
        store.commit_to(5).expect("commit");
        store
            .create_snapshot(5, None, Bytes::new())
            .expect("snapshot");
        store.compact(6).expect("compact");
        store.mut_hard_state().commit = 3; // the newer commit index was never written
    }
    let raw = node(2, &storage);
    assert_eq!(
        raw.raft.raft_log.committed, 5,
        "the snapshot's entries are committed"
    );
}

/// Node 1 of voters {1, 2} holds entries 2..=4 of term 2 but only knows commit 1. Its leader
/// committed them (and, had entry 3 removed that leader, stepped down at once) without node 1
/// hearing of it. The vote rejection node 1 gets carries the commit index and its term: node 1
/// must take it (raft-rs `maybe_commit_by_vote`), or with a removed leader the group never
/// elects again (found by the simulator once the nemesis removed leaders).
fn candidate_with_uncommitted_tail(third: Entry) -> (RawNode<MemStorage>, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2], []).expect("bootstrap");
    {
        let mut store = storage.wl();
        store
            .append(&[entry(2, 2), third, entry(4, 2)])
            .expect("append");
        store.mut_hard_state().term = 2;
    }
    let mut raw = node(1, &storage);
    raw.campaign().expect("campaign");
    drain(&mut raw, &storage);
    assert_eq!(raw.raft.state, StateRole::Candidate);
    let term = raw.raft.term;
    raw.step(Message {
        reject: true,
        commit: 4,
        commit_term: 2,
        ..msg(MessageType::MsgRequestVoteResponse, 2, 1, term)
    })
    .expect("vote response");
    (raw, storage)
}

#[test]
fn a_vote_rejection_carrying_the_commit_index_moves_the_candidates_commit() {
    let (raw, _storage) = candidate_with_uncommitted_tail(entry(3, 2));
    assert_eq!(
        raw.raft.raft_log.committed, 4,
        "the rejection named index 4 of term 2 as committed, and the candidate holds it"
    );
}

#[test]
fn a_candidate_that_learns_a_membership_change_committed_steps_down() {
    let (_, change) = conf_change_entry(raft_core::eraftpb::ConfChangeType::RemoveNode, 2, (3, 2));
    let (raw, _storage) = candidate_with_uncommitted_tail(change);
    assert_eq!(raw.raft.raft_log.committed, 4);
    assert_eq!(
        raw.raft.state,
        StateRole::Follower,
        "it campaigned for a configuration a committed change replaces"
    );
}

/// Priorities only break ties between equally up-to-date logs. Voter 2 (priority 5) ends at index
/// 3 of term 1; candidate 3 (priority 0) ends at index 3 of term 2, a strictly better log. Comparing
/// the indexes alone, as raft-rs does, voter 2 refuses; if voter 2 cannot win itself (its log is
/// behind the others'), the group never elects again (found by the simulator with priorities).
#[test]
fn a_candidate_with_a_better_log_gets_the_vote_of_a_higher_priority_voter() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    {
        let mut store = storage.wl();
        store.append(&[entry(2, 1), entry(3, 1)]).expect("append");
        store.mut_hard_state().term = 2;
    }
    let config = Config {
        id: 2,
        election_tick: 10,
        heartbeat_tick: 1,
        priority: 5,
        ..Default::default()
    };
    let mut raw = RawNode::new(&config, storage.clone(), &logger()).expect("start");
    raw.step(vote_request(MessageType::MsgRequestVote, 3, 2, 3, 3, 2))
        .expect("vote request");
    let sent = drain(&mut raw, &storage);
    let answer = sent
        .iter()
        .find(|m| m.msg_type() == MessageType::MsgRequestVoteResponse)
        .expect("an answer");
    assert!(
        !answer.reject,
        "refused a candidate whose log ends at a later term: {answer:?}"
    );
}

/// Without pre-vote, a voter with an empty log that does not know its configuration changed
/// campaigned a few ticks before the only candidate that could win, term after term, and refused
/// it each time (it had voted for itself). A candidate that refuses a candidate with a strictly
/// better log, only because it voted for itself, restarts its election timer so the better one's
/// next term reaches it first.
#[test]
fn a_candidate_that_refuses_a_better_candidate_restarts_its_election_timer() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(3, &storage);
    raw.campaign().expect("campaign");
    drain(&mut raw, &storage);
    assert_eq!(raw.raft.state, StateRole::Candidate);
    // Nine ticks into the candidacy (an election timeout is at least ten).
    for _ in 0..9 {
        raw.tick();
    }
    let term = raw.raft.term;
    raw.step(vote_request(MessageType::MsgRequestVote, 2, 3, term, 7, 4))
        .expect("vote request");
    // Nine more ticks: a restarted timer has not run out yet; one kept running has (unless this
    // candidacy drew the longest timeout, 19 ticks).
    for _ in 0..9 {
        raw.tick();
    }
    assert_eq!(
        raw.raft.term, term,
        "the candidate kept its timer running against a better candidate and campaigned again"
    );
}

/// A follower was handed a committed membership change (entry 2) that its application has not
/// applied yet when a snapshot at index 5 arrives. Restoring it now would replace the
/// configuration, and the application's `apply_conf_change` for entry 2 would then run against
/// the snapshot's configuration (found by the simulator, whose nodes apply in the background).
/// The snapshot waits until the change is applied; the leader sends it again.
#[test]
fn a_snapshot_waits_for_a_handed_out_membership_change_to_be_applied() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    let (cc, change) = conf_change_entry(
        raft_core::eraftpb::ConfChangeType::AddLearnerNode,
        4,
        (2, 2),
    );
    let mut m = append(1, 2, (1, 1), vec![change]);
    m.commit = 2;
    raw.step(m).expect("append");
    let mut rd = raw.ready().expect("ready");
    {
        let mut store = storage.wl();
        store.append(rd.entries()).expect("append");
        if let Some(hs) = rd.hard_state() {
            store.set_hardstate(*hs);
        }
    }
    let mut handed_out = rd.take_committed_entries();
    let mut light = raw.advance(rd).expect("advance");
    handed_out.extend(light.take_committed_entries());
    assert!(
        handed_out.iter().any(|e| e.index == 2),
        "the change is handed out"
    );
    // Not applied yet: a snapshot from the leader arrives.
    let conf = raft_core::eraftpb::ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    raw.step(snapshot_msg(1, 2, (5, 2), conf))
        .expect("snapshot");
    let cs = raw.raft.prs.conf_state();
    assert!(
        cs.learners.is_empty(),
        "the configuration was replaced before the handed-out change was applied: {cs:?}"
    );
    assert!(
        raw.apply_conf_change(&cc).is_ok(),
        "applying the handed-out change works"
    );
}

/// A pipelining follower takes Ready A (entries 2..=4, commit 1) and then Ready B (commit 2)
/// before writing either; the leader's commit 4 arrives meanwhile. Reporting A with
/// `advance_append` must not hand back commit 4: B, written next, carries commit 2 and would move
/// the stored commit back, and as the core counted 4 as reported no later Ready would restore it
/// (found by the simulator: a leader's stored commit stayed behind its applied index, so its
/// application could not snapshot for a follower that asked for one, and the group stalled).
#[test]
fn an_older_ready_reported_with_advance_append_never_moves_the_stored_commit_back() {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    let heartbeat = |commit: u64| Message {
        commit,
        ..msg(MessageType::MsgHeartbeat, 1, 2, 2)
    };
    raw.step(append(1, 2, (1, 1), (2..=4).map(|i| entry(i, 2)).collect()))
        .expect("append");
    let a = raw.ready().expect("ready A");
    raw.step(heartbeat(2)).expect("commit 2");
    let b = raw.ready().expect("ready B");
    raw.step(heartbeat(4)).expect("commit 4");
    let mut stored = Vec::new();
    for rd in [a, b] {
        {
            let mut store = storage.wl();
            store.append(rd.entries()).expect("append");
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        stored.push(storage.rl().hard_state().commit);
        let light = raw.advance_append(rd).expect("advance_append");
        if let Some(commit) = light.commit_index() {
            storage.wl().mut_hard_state().commit = commit;
        }
        stored.push(storage.rl().hard_state().commit);
    }
    drain(&mut raw, &storage);
    stored.push(storage.rl().hard_state().commit);
    assert!(
        stored.windows(2).all(|w| w[0] <= w[1]),
        "the stored commit index went back: {stored:?}"
    );
    assert_eq!(
        stored.last(),
        Some(&4),
        "commit 4 is stored in the end: {stored:?}"
    );
}

/// A follower whose log is ahead of a candidate's refuses its vote, and the candidate's higher
/// term does not restart the follower's election timer (Raft paper, Figure 2: only the leader and
/// a granted vote do). With the timer restarted, a voter that cannot win, campaigning again in a
/// higher term each time it fires first, held off the voter that could win for over 500 round
/// trips in a two-voter group without pre-vote (found by the simulator's soak, seed 5846). A
/// granted vote still restarts the timer.
#[test]
fn a_refused_candidates_higher_term_does_not_restart_the_election_timer() {
    // Candidate 3, whose log ends at entry 1, asks for a vote in term 3.
    let (mut raw, storage) = follower_nine_ticks_without_its_leader();
    raw.step(vote_request(MessageType::MsgRequestVote, 3, 2, 3, 1, 1))
        .expect("vote request");
    assert_eq!(raw.raft.term, 3, "the higher term is taken");
    let refusals = drain(&mut raw, &storage);
    assert!(
        refusals
            .iter()
            .any(|m| m.msg_type == MessageType::MsgRequestVoteResponse as i32 && m.reject),
        "the vote is refused: {refusals:?}"
    );
    // Ten more ticks, 19 in all: a timer kept running has run out (every timeout drawn is 10 to
    // 19 ticks), so node 2 campaigns in term 4; a restarted one has not.
    for _ in 0..10 {
        raw.tick();
    }
    assert_eq!(
        (raw.raft.state, raw.raft.term),
        (StateRole::Candidate, 4),
        "the refused candidate's term restarted the election timer"
    );

    // A granted vote restarts it: candidate 3 is now as up to date as node 2.
    let (mut raw, _storage) = follower_nine_ticks_without_its_leader();
    raw.step(vote_request(MessageType::MsgRequestVote, 3, 2, 3, 2, 2))
        .expect("vote request");
    assert_eq!(raw.raft.vote, 3, "the vote is granted");
    for _ in 0..9 {
        raw.tick();
    }
    assert_eq!(
        (raw.raft.state, raw.raft.term),
        (StateRole::Follower, 3),
        "a granted vote restarts the timer"
    );
}

/// Node 2 of {1, 2, 3} holding entry 2 of term 2 from leader 1, nine ticks after hearing from it
/// (an election timeout is at least ten).
fn follower_nine_ticks_without_its_leader() -> (RawNode<MemStorage>, MemStorage) {
    let storage = MemStorage::bootstrap([1, 2, 3], []).expect("bootstrap");
    let mut raw = node(2, &storage);
    raw.step(append(1, 2, (1, 1), vec![entry(2, 2)]))
        .expect("append");
    drain(&mut raw, &storage);
    for _ in 0..9 {
        raw.tick();
    }
    (raw, storage)
}

/// Node 2 has applied a membership that makes it a learner, and has taken term 5 from a vote
/// request; leader 1, still in term 3, already counts 2 as a voter again (a later change 2 has not
/// learnt yet). Without check-quorum or pre-vote, etcd and raft-rs ignore the leader's lower-term
/// appends and count on the node's own vote requests to carry its term to the leader, but a
/// learner sends none, and the leader waited on it for good (found by the soak, seed 307324).
/// The node answers with its term, which deposes the stale leader; a voter still ignores them.
#[test]
fn a_node_that_cannot_campaign_answers_a_lower_term_leader_with_its_term() {
    let appended_from_term_3 = |learner: bool| {
        let learners: &[u64] = if learner { &[2] } else { &[] };
        let voters: &[u64] = if learner { &[1, 3] } else { &[1, 2, 3] };
        let storage = MemStorage::bootstrap(voters.iter().copied(), learners.iter().copied())
            .expect("bootstrap");
        let mut raw = node(2, &storage);
        raw.step(vote_request(MessageType::MsgRequestVote, 3, 2, 5, 0, 0))
            .expect("a vote request of term 5");
        drain(&mut raw, &storage);
        assert_eq!(raw.raft.term, 5);
        raw.step(append(1, 3, (1, 1), vec![entry(2, 3)]))
            .expect("an append of term 3");
        drain(&mut raw, &storage)
    };
    let answers = appended_from_term_3(true);
    assert!(
        answers.iter().any(|m| m.to == 1
            && m.msg_type == MessageType::MsgAppendResponse as i32
            && m.term == 5),
        "the learner tells the stale leader its term: {answers:?}"
    );
    let answers = appended_from_term_3(false);
    assert!(
        !answers.iter().any(|m| m.to == 1),
        "a voter (without check-quorum or pre-vote) still ignores it, as etcd does: {answers:?}"
    );
}
