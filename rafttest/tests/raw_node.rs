//! Tests of the `RawNode` / `Ready` contract (DESIGN.md §4) and of restarts.
//!
//! Readys are handled by hand, so each test can check exactly what a Ready (or the `LightReady`
//! returned by `advance`) holds: numbering, `messages` versus `persisted_messages`, `must_sync`,
//! when hard and soft state are reported, when committed entries are handed out (only once, in
//! order, and only once persisted locally), paging by `max_committed_size_per_ready`, the split
//! `advance_append` / `advance_apply`, restarting from `MemStorage` with `Config::applied`, config
//! validation, refusals of `RawNode::step`, and seeded election timeouts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_core::eraftpb::{Entry, HardState, Message, MessageType};
use raft_core::{
    Config, Error, LightReady, RawNode, ReadOnlyOption, Ready, SoftState, StateRole, Storage,
    NO_LIMIT,
};
use raft_proto::{describe_message, entry_size};
use rafttest::network::default_config;
use rafttest::Network;
use storage_mem::{conf_state, MemStorage};

// ---------------------------------------------------------------------------------------------
// Helpers: a node driven by hand, and a small cluster of them.
// ---------------------------------------------------------------------------------------------

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Election timeout 10 ticks, heartbeat 1 tick, no size limits.
fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        max_size_per_msg: NO_LIMIT,
        ..Default::default()
    }
}

fn ent(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
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

fn append(
    from: u64,
    to: u64,
    term: u64,
    (index, log_term): (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    Message {
        index,
        log_term,
        entries,
        commit,
        ..msg(MessageType::MsgAppend, from, to, term)
    }
}

fn heartbeat(from: u64, to: u64, term: u64, commit: u64) -> Message {
    Message {
        commit,
        ..msg(MessageType::MsgHeartbeat, from, to, term)
    }
}

fn vote_request(from: u64, to: u64, term: u64, (index, log_term): (u64, u64)) -> Message {
    Message {
        index,
        log_term,
        ..msg(MessageType::MsgRequestVote, from, to, term)
    }
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

fn types(msgs: &[Message]) -> Vec<(MessageType, u64)> {
    msgs.iter().map(|m| (m.msg_type(), m.to)).collect()
}

fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

fn payloads(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.data.to_vec())
        .collect()
}

/// Persists what a Ready asks to persist.
fn persist(storage: &MemStorage, rd: &Ready) {
    let mut store = storage.wl();
    store.append(rd.entries()).expect("persist entries");
    if let Some(hs) = rd.hard_state() {
        store.set_hardstate(*hs);
    }
}

/// Persists the commit index a LightReady reports.
fn persist_light(storage: &MemStorage, light: &LightReady) {
    if let Some(commit) = light.commit_index() {
        storage.wl().mut_hard_state().commit = commit;
    }
}

/// A node handled by hand, the way an application would: it checks the Ready contract as it goes.
struct Peer {
    node: RawNode<MemStorage>,
    storage: MemStorage,
    /// Every committed entry handed out (across restarts), in order: `handed_out[i].index == i + 1`.
    handed_out: Vec<Entry>,
    /// The number of the last Ready taken from the current RawNode.
    last_number: u64,
}

impl Peer {
    fn start(cfg: &Config, storage: MemStorage) -> Peer {
        let node = RawNode::new(cfg, storage.clone(), &logger()).expect("valid config");
        Peer {
            node,
            storage,
            handed_out: Vec::new(),
            last_number: 0,
        }
    }

    /// A new node `cfg.id` of a cluster whose voters are `voters`.
    fn fresh(cfg: &Config, voters: &[u64]) -> Peer {
        Peer::start(
            cfg,
            MemStorage::new_with_conf_state(conf_state(voters.to_vec(), vec![])),
        )
    }

    fn id(&self) -> u64 {
        self.node.raft.id
    }

    fn step(&mut self, m: Message) {
        let desc = describe_message(&m);
        if let Err(e) = self.node.step(m) {
            panic!("node {} refused {desc}: {e}", self.id());
        }
    }

    /// Takes the next Ready, checking its number follows the previous one.
    fn ready(&mut self) -> Ready {
        let rd = self.node.ready().expect("ready");
        assert_eq!(
            rd.number(),
            self.last_number + 1,
            "node {}: Ready numbers must increase by one",
            self.id()
        );
        self.last_number = rd.number();
        rd
    }

    /// Records committed entries handed out, checking each is the next index, is committed and is
    /// already in this node's storage.
    fn hand_out(&mut self, entries: &[Entry], origin: &str) {
        let committed = self.node.raft.raft_log.committed;
        for e in entries {
            let next = self.handed_out.len() as u64 + 1;
            assert_eq!(
                e.index,
                next,
                "node {}: a {origin} handed out index {} but the next index not yet handed out is \
                 {next} (a duplicate or a gap)",
                self.id(),
                e.index
            );
            assert!(
                e.index <= committed,
                "node {}: a {origin} handed out index {} beyond the commit index {committed}",
                self.id(),
                e.index
            );
            let stored = self.storage.entries(e.index, e.index + 1, NO_LIMIT);
            assert_eq!(
                stored.as_deref().ok(),
                Some(std::slice::from_ref(e)),
                "node {}: a {origin} handed out index {} as committed before it was persisted locally",
                self.id(),
                e.index
            );
            self.handed_out.push(e.clone());
        }
    }

    /// Handles `rd` synchronously (send, persist, send, apply, advance, apply) and returns the
    /// messages to send.
    fn process(&mut self, mut rd: Ready) -> Vec<Message> {
        // Checked before this Ready's own entries are written: committed entries must already be
        // durable.
        self.hand_out(rd.committed_entries(), "Ready");
        let mut out = rd.take_messages();
        persist(&self.storage, &rd);
        out.extend(rd.take_persisted_messages());
        let mut light = self.node.advance(rd).expect("advance");
        persist_light(&self.storage, &light);
        self.hand_out(light.committed_entries(), "LightReady");
        out.extend(light.take_messages());
        self.node.advance_apply();
        out
    }

    /// Handles one Ready if there is one.
    fn handle_ready(&mut self) -> Option<Vec<Message>> {
        if !self.node.has_ready() {
            return None;
        }
        let rd = self.ready();
        Some(self.process(rd))
    }

    /// Handles Readys until there is none, returning all messages.
    fn drain(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(msgs) = self.handle_ready() {
            out.extend(msgs);
        }
        out
    }

    /// Restarts the node over its storage, telling it everything handed out was applied.
    fn restart(&mut self, cfg: &Config) {
        let cfg = Config {
            applied: self.handed_out.len() as u64,
            ..cfg.clone()
        };
        self.node = match RawNode::new(&cfg, self.storage.clone(), &logger()) {
            Ok(node) => node,
            Err(e) => panic!("node {} cannot restart: {e}", cfg.id),
        };
        self.last_number = 0;
    }
}

/// Voters `1..=n`, each a [`Peer`], and the messages in flight between them.
struct Cluster {
    peers: BTreeMap<u64, Peer>,
    net: VecDeque<Message>,
    config: fn(u64) -> Config,
}

impl Cluster {
    fn new(n: u64, config: fn(u64) -> Config) -> Cluster {
        let ids: Vec<u64> = (1..=n).collect();
        let peers = ids
            .iter()
            .map(|&id| (id, Peer::fresh(&config(id), &ids)))
            .collect();
        Cluster {
            peers,
            net: VecDeque::new(),
            config,
        }
    }

    fn peer(&mut self, id: u64) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such peer")
    }

    /// Delivers one message. Refusals other than a dropped proposal are bugs in a correct run.
    fn deliver(&mut self, m: Message) {
        let Some(peer) = self.peers.get_mut(&m.to) else {
            return;
        };
        let desc = describe_message(&m);
        match peer.node.step(m) {
            Ok(()) | Err(Error::ProposalDropped) => {}
            Err(e) => panic!("node {} refused {desc}: {e}", peer.id()),
        }
    }

    /// Handles one Ready at `id` (if any) and puts its messages on the network.
    fn handle(&mut self, id: u64) -> bool {
        match self.peer(id).handle_ready() {
            Some(msgs) => {
                self.net.extend(msgs);
                true
            }
            None => false,
        }
    }

    /// Handles `rd`, taken from `id` by a test, and puts its messages on the network.
    fn process(&mut self, id: u64, rd: Ready) {
        let msgs = self.peer(id).process(rd);
        self.net.extend(msgs);
    }

    /// Delivers everything in order and handles every Ready until nothing moves.
    fn stabilize(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                while self.handle(id) {
                    moved = true;
                }
            }
            while let Some(m) = self.net.pop_front() {
                moved = true;
                let to = m.to;
                self.deliver(m);
                while self.peers.contains_key(&to) && self.handle(to) {}
            }
            if !moved {
                return;
            }
        }
    }

    fn campaign(&mut self, id: u64) {
        self.peer(id).node.campaign().expect("campaign");
        self.stabilize();
    }

    /// A node that is leader in the highest term any node has reached, if there is one.
    fn leader(&self) -> Option<u64> {
        let top = self.peers.values().map(|p| p.node.raft.term).max()?;
        self.peers
            .values()
            .find(|p| p.node.raft.state == StateRole::Leader && p.node.raft.term == top)
            .map(|p| p.id())
    }

    fn restart(&mut self, id: u64) {
        let cfg = (self.config)(id);
        self.peer(id).restart(&cfg);
    }
}

/// A 3-node cluster in which node 1 was elected and everything settled (index 1 committed).
fn elected_cluster() -> Cluster {
    let mut c = Cluster::new(3, config);
    c.campaign(1);
    assert_eq!(c.leader(), Some(1), "node 1 should have won the election");
    c
}

// ---------------------------------------------------------------------------------------------
// A single voter needs no messages.
// ---------------------------------------------------------------------------------------------

#[test]
fn single_voter_campaign_becomes_leader_without_any_message() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    assert_eq!(p.node.raft.state, StateRole::Leader);

    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert!(
        rd.persisted_messages().is_empty(),
        "persisted: {:?}",
        rd.persisted_messages()
    );
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 1,
            raft_state: StateRole::Leader
        })
    );
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    // The new leader's empty entry (§5.4.2) is to be persisted; it is not committed before that.
    assert_eq!(rd.entries(), &[ent(1, 1, b"")]);
    assert!(rd.committed_entries().is_empty());
    assert!(rd.must_sync());
}

#[test]
fn single_voter_proposal_commits_in_the_light_ready_without_any_message() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    // Persisting the leader's own entry is all the quorum a single voter needs.
    assert_eq!(light.commit_index(), Some(1));
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert!(light.messages().is_empty());
    p.node.advance_apply();

    p.node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = p.ready();
    assert_eq!(rd.entries(), &[ent(2, 1, b"x")]);
    assert!(
        rd.committed_entries().is_empty(),
        "the proposal is not committed before it is persisted"
    );
    assert!(rd.messages().is_empty() && rd.persisted_messages().is_empty());
    assert_eq!(rd.hard_state(), None, "nothing of the hard state changed");
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(light.commit_index(), Some(2));
    assert_eq!(light.committed_entries(), &[ent(2, 1, b"x")]);
    assert!(light.messages().is_empty());
    p.node.advance_apply();
    assert!(
        !p.node.has_ready(),
        "the committed proposal was handed out in the LightReady; no Ready may repeat it"
    );
    for _ in 0..5 {
        p.node.tick();
    }
    assert!(
        !p.node.has_ready(),
        "ticks of a lone leader must not produce work"
    );
}

#[test]
fn single_voter_hands_out_every_proposal_exactly_once() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    p.drain();
    let mut n = 0u32;
    for batch in 1..=8u32 {
        for _ in 0..batch {
            n += 1;
            p.node.propose(vec![], n.to_be_bytes().to_vec()).unwrap();
        }
        // `Peer::process` checks every handed-out index is the next one and is persisted.
        p.drain();
    }
    let expected: Vec<Vec<u8>> = (1..=n).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(payloads(&p.handed_out), expected);
    assert_eq!(p.handed_out.len() as u64, p.node.raft.raft_log.committed);
}

// ---------------------------------------------------------------------------------------------
// Ready numbering.
// ---------------------------------------------------------------------------------------------

#[test]
fn ready_numbers_start_at_one_and_increase_by_one() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let mut numbers = Vec::new();
    for i in 0..5u8 {
        let rd = p.node.ready().unwrap();
        numbers.push(rd.number());
        p.node.advance(rd).unwrap();
        p.node.propose(vec![], vec![i]).unwrap();
    }
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
}

#[test]
fn ready_numbers_increase_while_readys_are_not_yet_advanced() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd1 = p.node.ready().unwrap();
    p.node.propose(vec![], b"a".to_vec()).unwrap();
    let rd2 = p.node.ready().unwrap();
    p.node.propose(vec![], b"b".to_vec()).unwrap();
    let rd3 = p.node.ready().unwrap();
    assert_eq!((rd1.number(), rd2.number(), rd3.number()), (1, 2, 3));
    // Each Ready hands out only what was not handed out before.
    assert_eq!(indexes(rd1.entries()), vec![1]);
    assert_eq!(indexes(rd2.entries()), vec![2]);
    assert_eq!(indexes(rd3.entries()), vec![3]);
}

// ---------------------------------------------------------------------------------------------
// messages() versus persisted_messages().
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_appends_are_in_messages_not_persisted_messages() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(
        types(rd.messages()),
        vec![(MessageType::MsgAppend, 2), (MessageType::MsgAppend, 3)]
    );
    for m in rd.messages() {
        assert_eq!(m.entries, vec![ent(2, 1, b"x")], "append to {}", m.to);
    }
    assert!(
        rd.persisted_messages().is_empty(),
        "a leader's appends may leave before it persists (thesis §10.2.1): {:?}",
        rd.persisted_messages()
    );
    c.process(1, rd);
    c.stabilize();
}

#[test]
fn leader_heartbeats_are_in_messages() {
    let mut c = elected_cluster();
    c.peer(1).node.tick(); // heartbeat_tick is 1
    let rd = c.peer(1).ready();
    assert_eq!(
        types(rd.messages()),
        vec![
            (MessageType::MsgHeartbeat, 2),
            (MessageType::MsgHeartbeat, 3)
        ]
    );
    assert!(rd.persisted_messages().is_empty());
    assert!(!rd.must_sync(), "heartbeats need no persistence");
    assert_eq!(rd.hard_state(), None);
}

#[test]
fn follower_append_response_is_in_persisted_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgAppendResponse, 1)],
        "an append acknowledgement promises durable entries"
    );
    assert_eq!(rd.persisted_messages()[0].index, 1);
    assert!(!rd.persisted_messages()[0].reject);
}

#[test]
fn follower_heartbeat_response_is_in_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    p.drain();
    p.step(heartbeat(1, 2, 1, 0));
    let rd = p.ready();
    assert_eq!(
        types(rd.messages()),
        vec![(MessageType::MsgHeartbeatResponse, 1)]
    );
    assert!(rd.persisted_messages().is_empty());
}

#[test]
fn voter_vote_response_is_in_persisted_messages() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(vote_request(1, 2, 1, (0, 0)));
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgRequestVoteResponse, 1)],
        "a vote must be durable before it is sent (§5.2)"
    );
    assert!(!rd.persisted_messages()[0].reject);
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.must_sync());
}

#[test]
fn candidate_vote_requests_are_in_persisted_messages() {
    let mut p = Peer::fresh(&config(1), &[1, 2, 3]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![
            (MessageType::MsgRequestVote, 2),
            (MessageType::MsgRequestVote, 3)
        ],
        "a candidate's own term and vote must be durable before it asks for votes"
    );
    assert!(rd.persisted_messages().iter().all(|m| m.term == 1));
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 0,
            raft_state: StateRole::Candidate
        })
    );
    assert!(rd.must_sync());
}

fn pre_vote_config(id: u64) -> Config {
    Config {
        pre_vote: true,
        ..config(id)
    }
}

#[test]
fn pre_candidate_requests_are_in_messages_and_persist_nothing() {
    let mut p = Peer::fresh(&pre_vote_config(1), &[1, 2, 3]);
    p.node.campaign().unwrap();
    assert_eq!(p.node.raft.state, StateRole::PreCandidate);
    let rd = p.ready();
    assert_eq!(
        types(rd.messages()),
        vec![
            (MessageType::MsgRequestPreVote, 2),
            (MessageType::MsgRequestPreVote, 3)
        ]
    );
    // A pre-vote asks about the next term without moving to it (thesis §9.6).
    assert!(rd.messages().iter().all(|m| m.term == 1));
    assert!(rd.persisted_messages().is_empty());
    assert_eq!(
        rd.hard_state(),
        None,
        "a pre-candidate keeps its term and vote"
    );
    assert!(!rd.must_sync());
}

#[test]
fn won_pre_vote_moves_on_to_vote_requests_in_persisted_messages() {
    let mut c = Cluster::new(3, pre_vote_config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    let pre_votes = rd.messages().to_vec();
    c.process(1, rd);
    c.net.clear();
    // One granted pre-vote makes a quorum of three.
    c.deliver(pre_votes[0].clone());
    let rd = c.peer(2).ready();
    let grants = rd.persisted_messages().to_vec();
    assert_eq!(
        types(&grants),
        vec![(MessageType::MsgRequestPreVoteResponse, 1)]
    );
    c.process(2, rd);
    c.net.clear();
    c.deliver(grants[0].clone());
    assert_eq!(c.peer(1).node.raft.state, StateRole::Candidate);
    let rd = c.peer(1).ready();
    assert!(rd.messages().is_empty(), "messages: {:?}", rd.messages());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![
            (MessageType::MsgRequestVote, 2),
            (MessageType::MsgRequestVote, 3)
        ]
    );
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.must_sync());
}

// ---------------------------------------------------------------------------------------------
// must_sync.
// ---------------------------------------------------------------------------------------------

/// Follower 2 of {1, 2, 3} that holds entries 1..=2 of term 1 (persisted), commit 0.
fn follower_with_two_entries() -> Peer {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(
        1,
        2,
        1,
        (0, 0),
        vec![ent(1, 1, b"a"), ent(2, 1, b"b")],
        0,
    ));
    let rd = p.ready();
    assert!(rd.must_sync(), "a Ready with entries must sync");
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 0)));
    p.process(rd);
    assert!(!p.node.has_ready());
    p
}

#[test]
fn must_sync_when_the_ready_has_entries_even_if_hard_state_is_unchanged() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![ent(3, 1, b"c")], 0));
    let rd = p.ready();
    assert_eq!(indexes(rd.entries()), vec![3]);
    assert_eq!(rd.hard_state(), None);
    assert!(rd.must_sync());
}

#[test]
fn must_sync_when_only_the_term_changes() {
    let mut p = follower_with_two_entries();
    p.step(heartbeat(3, 2, 2, 0));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(2, 0, 0)));
    assert!(rd.must_sync(), "a new term must be durable");
}

#[test]
fn must_sync_when_only_the_vote_changes() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    // A response of a higher term moves node 2 to term 1 with no vote and no leader.
    p.step(msg(MessageType::MsgAppendResponse, 3, 2, 1));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 0)));
    p.process(rd);
    p.step(vote_request(1, 2, 1, (0, 0)));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 1, 0)));
    assert!(rd.entries().is_empty());
    assert!(rd.must_sync(), "a vote must be durable (§5.2)");
}

#[test]
fn must_sync_is_false_when_a_heartbeat_only_advances_commit() {
    let mut p = follower_with_two_entries();
    p.step(heartbeat(1, 2, 1, 2));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    assert!(
        !rd.must_sync(),
        "the commit index can be recovered from a quorum: no fsync needed"
    );
    // The entries were persisted by an earlier Ready, so they are handed out now.
    assert_eq!(indexes(rd.committed_entries()), vec![1, 2]);
}

#[test]
fn must_sync_is_false_when_an_empty_append_only_advances_commit() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![], 2));
    let rd = p.ready();
    assert!(rd.entries().is_empty());
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    assert!(!rd.must_sync());
    assert_eq!(
        types(rd.persisted_messages()),
        vec![(MessageType::MsgAppendResponse, 1)]
    );
    assert_eq!(indexes(rd.committed_entries()), vec![1, 2]);
}

// ---------------------------------------------------------------------------------------------
// hard_state and soft_state are reported only when they change.
// ---------------------------------------------------------------------------------------------

#[test]
fn hard_state_is_present_only_when_it_changed() {
    let mut p = follower_with_two_entries();
    p.step(append(1, 2, 1, (2, 1), vec![ent(3, 1, b"c")], 0));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), None, "term, vote and commit are unchanged");
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 2));
    let rd = p.ready();
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 2)));
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 2));
    assert!(p.node.has_ready(), "the heartbeat response must go out");
    let rd = p.ready();
    assert_eq!(
        rd.hard_state(),
        None,
        "the same commit index again is no change"
    );
}

#[test]
fn soft_state_is_present_only_when_leader_or_role_changed() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(1, 2, 1, (0, 0), vec![ent(1, 1, b"a")], 0));
    let rd = p.ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 1,
            raft_state: StateRole::Follower
        }),
        "the leader became known"
    );
    p.process(rd);

    p.step(heartbeat(1, 2, 1, 1));
    let rd = p.ready();
    assert_eq!(rd.soft_state(), None, "same leader, same role");
    p.process(rd);

    // A vote request of a higher term: still a follower, but of no known leader.
    p.step(vote_request(3, 2, 2, (1, 1)));
    let rd = p.ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 0,
            raft_state: StateRole::Follower
        })
    );
    assert_eq!(rd.hard_state(), Some(&hs(2, 3, 1)));
}

#[test]
fn leader_soft_state_reports_election_and_step_down() {
    let mut c = Cluster::new(3, config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(
        rd.soft_state().map(|s| s.raft_state),
        Some(StateRole::Candidate)
    );
    c.process(1, rd);
    c.stabilize();
    // The Readys handled during stabilize reported leadership; check the node agrees.
    assert_eq!(c.peer(1).node.raft.state, StateRole::Leader);

    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    assert_eq!(rd.soft_state(), None, "still the leader");
    c.process(1, rd);
    c.stabilize();

    // Node 3 wins term 2 without node 1; node 1 learns of it from a heartbeat.
    c.peer(1).step(heartbeat(3, 1, 2, 0));
    let rd = c.peer(1).ready();
    assert_eq!(
        rd.soft_state(),
        Some(&SoftState {
            leader_id: 3,
            raft_state: StateRole::Follower
        })
    );
    assert_eq!(rd.hard_state().map(|h| h.term), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Committed entries: only once persisted locally, exactly once, in order.
// ---------------------------------------------------------------------------------------------

#[test]
fn follower_hands_out_committed_entries_only_after_persisting_them() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    let entries = vec![ent(1, 1, b"a"), ent(2, 1, b"b"), ent(3, 1, b"c")];
    p.step(append(1, 2, 1, (0, 0), entries.clone(), 3));
    let rd = p.ready();
    assert_eq!(rd.entries(), &entries[..]);
    assert_eq!(rd.hard_state(), Some(&hs(1, 0, 3)));
    assert!(
        rd.committed_entries().is_empty(),
        "entries committed by the leader are not applied before they are durable here: {:?}",
        indexes(rd.committed_entries())
    );
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(light.committed_entries(), &entries[..]);
    assert_eq!(
        light.commit_index(),
        None,
        "the commit index was already reported in the Ready's hard state"
    );
    p.node.advance_apply();
    assert!(!p.node.has_ready());
    assert_eq!(p.node.raft.raft_log.applied, 3);
}

#[test]
fn follower_with_async_persistence_hands_out_committed_entries_after_on_persist_ready() {
    let mut p = Peer::fresh(&config(2), &[1, 2, 3]);
    p.step(append(
        1,
        2,
        1,
        (0, 0),
        vec![ent(1, 1, b"a"), ent(2, 1, b"b")],
        2,
    ));
    let rd1 = p.ready();
    assert!(rd1.committed_entries().is_empty());
    assert!(
        !p.node.has_ready(),
        "nothing is appliable until the entries are reported persisted"
    );
    persist(&p.storage, &rd1);
    p.node.on_persist_ready(rd1.number()).unwrap();
    assert!(p.node.has_ready());
    let rd2 = p.ready();
    assert_eq!(rd2.number(), 2);
    assert_eq!(indexes(rd2.committed_entries()), vec![1, 2]);
    assert!(rd2.entries().is_empty());
    assert_eq!(
        rd2.hard_state(),
        None,
        "the commit went out with the first Ready"
    );
    let light = p.node.advance(rd2).unwrap();
    assert!(light.committed_entries().is_empty(), "no entry twice");
    assert!(!p.node.has_ready());
}

#[test]
fn leader_hands_out_entries_committed_by_followers_only_after_persisting_them() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd1 = c.peer(1).ready();
    let appends = rd1.messages().to_vec();
    // The appends go out; the leader has not persisted its own entry yet.
    for m in appends {
        c.deliver(m);
    }
    c.handle(2);
    c.handle(3);
    let acks: Vec<Message> = c.net.drain(..).collect();
    assert_eq!(acks.len(), 2);
    for m in acks {
        c.deliver(m);
    }
    assert_eq!(
        c.peer(1).node.raft.raft_log.committed,
        2,
        "two followers make a quorum of three"
    );
    let rd2 = c.peer(1).ready();
    assert_eq!(rd2.hard_state().map(|h| h.commit), Some(2));
    assert!(
        rd2.committed_entries().is_empty(),
        "the leader must not apply an entry it has not persisted itself: {:?}",
        indexes(rd2.committed_entries())
    );
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd1);
    persist(&storage, &rd2);
    c.peer(1).node.on_persist_ready(rd1.number()).unwrap();
    let rd3 = c.peer(1).ready();
    assert_eq!(rd3.committed_entries(), &[ent(2, 1, b"x")]);
    let light = c.peer(1).node.advance(rd3).unwrap();
    assert!(light.committed_entries().is_empty());
}

#[test]
fn light_ready_carries_commit_entries_and_messages_when_the_local_write_completes_a_quorum() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    let to_2 = rd.messages().iter().find(|m| m.to == 2).unwrap().clone();
    c.deliver(to_2);
    c.handle(2);
    let ack = c.net.pop_front().expect("node 2 acknowledges");
    c.net.clear();
    c.deliver(ack);
    assert_eq!(
        c.peer(1).node.raft.raft_log.committed,
        1,
        "node 2 alone is no quorum while the leader has not persisted"
    );
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd);
    let light = c.peer(1).node.advance(rd).unwrap();
    assert_eq!(light.commit_index(), Some(2));
    assert_eq!(light.committed_entries(), &[ent(2, 1, b"x")]);
    // Both followers hear of the new commit index at once.
    assert_eq!(
        types(light.messages()),
        vec![(MessageType::MsgAppend, 2), (MessageType::MsgAppend, 3)]
    );
    assert!(light.messages().iter().all(|m| m.commit == 2));
}

#[test]
fn three_node_cluster_hands_out_each_index_once_in_order() {
    let mut c = elected_cluster();
    let mut proposed = BTreeSet::new();
    for i in 0..120u32 {
        let at = u64::from(i % 3) + 1;
        let data = i.to_be_bytes().to_vec();
        proposed.insert(data.clone());
        c.peer(at).node.propose(vec![], data).unwrap();
        if i % 7 == 6 {
            c.stabilize();
        }
        if i % 11 == 0 {
            // Handle only the leader's Ready, leaving the rest in flight for a while.
            c.handle(1);
        }
    }
    c.stabilize();
    let leader_log = c.peer(1).handed_out.clone();
    assert_eq!(leader_log.len(), 121, "the empty entry and every proposal");
    let applied: BTreeSet<Vec<u8>> = payloads(&leader_log).into_iter().collect();
    assert_eq!(applied, proposed);
    for id in 2..=3 {
        assert_eq!(
            c.peer(id).handed_out,
            leader_log,
            "node {id} applied a different sequence"
        );
    }
}

/// A small deterministic generator for schedules (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn churn_config(id: u64) -> Config {
    Config {
        election_tick: 4,
        ..config(id)
    }
}

/// Runs a random schedule (reordering, drops, ticks that cause elections, optionally restarts),
/// then heals the network and checks that every node handed out the same entries, each index once.
fn run_random_schedule(seed: u64, steps: usize, restarts: bool) {
    let mut rng = Rng::new(seed);
    let mut c = Cluster::new(3, churn_config);
    c.campaign(1);
    let mut next = 0u32;
    for _ in 0..steps {
        let id = rng.below(3) + 1;
        match rng.below(100) {
            0..=29 if !c.net.is_empty() => {
                let i = rng.below(c.net.len() as u64) as usize;
                let m = c.net.remove(i).unwrap();
                c.deliver(m);
            }
            30..=44 => {
                c.handle(id);
            }
            45..=59 => {
                next += 1;
                match c.peer(id).node.propose(vec![], next.to_be_bytes().to_vec()) {
                    Ok(()) | Err(Error::ProposalDropped) => {}
                    Err(e) => panic!("seed {seed}: proposal at {id} failed: {e}"),
                }
            }
            60..=62 if !c.net.is_empty() => {
                let i = rng.below(c.net.len() as u64) as usize;
                c.net.remove(i);
            }
            63..=69 => c.peer(id).node.tick(),
            70..=71 if restarts => {
                // Everything handled so far was persisted; what is still inside the node is lost.
                c.restart(id);
            }
            _ => {
                if let Some(m) = c.net.pop_front() {
                    c.deliver(m);
                }
            }
        }
    }
    // Heal: deliver everything, elect a leader if needed, heartbeat until everyone caught up.
    let mut candidate = 0u64;
    let mut proposed_final = false;
    for _ in 0..200 {
        c.stabilize();
        let Some(leader) = c.leader() else {
            candidate = candidate % 3 + 1;
            let _ = c.peer(candidate).node.campaign();
            continue;
        };
        if !proposed_final {
            // Commits everything the leader holds, whatever the term of its last entry.
            c.peer(leader)
                .node
                .propose(vec![], b"final".to_vec())
                .unwrap();
            proposed_final = true;
            continue;
        }
        let target = c.peer(leader).node.raft.raft_log.last_index();
        let done = c.peers.values().all(|p| {
            p.handed_out.len() as u64 == target && p.node.raft.raft_log.committed == target
        });
        if done {
            break;
        }
        c.peer(leader).node.tick();
    }
    let leader = c
        .leader()
        .unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
    let reference = c.peer(leader).handed_out.clone();
    assert_eq!(
        reference.len() as u64,
        c.peer(leader).node.raft.raft_log.last_index(),
        "seed {seed}: the leader did not apply its whole log"
    );
    assert!(
        payloads(&reference).iter().any(|d| d == b"final"),
        "seed {seed}: the final proposal was not applied"
    );
    let unique: BTreeSet<Vec<u8>> = payloads(&reference).into_iter().collect();
    assert_eq!(
        unique.len(),
        payloads(&reference).len(),
        "seed {seed}: a proposal was applied at two indexes"
    );
    for p in c.peers.values() {
        assert_eq!(
            p.handed_out,
            reference,
            "seed {seed}: node {} applied a different sequence than leader {leader}",
            p.id()
        );
    }
}

#[test]
fn random_schedules_hand_out_each_index_once_in_order() {
    for seed in 0..40 {
        run_random_schedule(seed, 400, false);
    }
}

#[test]
fn random_schedules_with_restarts_hand_out_each_index_once_in_order() {
    for seed in 100..140 {
        run_random_schedule(seed, 400, true);
    }
}

// ---------------------------------------------------------------------------------------------
// advance semantics.
// ---------------------------------------------------------------------------------------------

#[test]
fn has_ready_is_false_after_advance_when_nothing_else_happened() {
    let mut c = elected_cluster();
    for id in 1..=3 {
        assert!(!c.peer(id).node.has_ready(), "node {id} after stabilize");
    }
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    assert!(c.peer(1).node.has_ready());
    let rd = c.peer(1).ready();
    c.process(1, rd);
    assert!(
        !c.peer(1).node.has_ready(),
        "the leader has nothing more to do until followers answer"
    );
}

#[test]
fn advance_append_leaves_entries_unapplied_until_advance_apply() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance_append(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert_eq!(
        p.node.raft.raft_log.applied, 0,
        "advance_append must not mark anything applied"
    );
    assert!(
        !p.node.has_ready(),
        "entries being applied are not handed out again"
    );
    p.node.advance_apply();
    assert_eq!(p.node.raft.raft_log.applied, 1);
}

#[test]
fn advance_apply_to_is_capped_at_what_was_handed_out() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for d in [b"a", b"b", b"c"] {
        p.node.propose(vec![], d.to_vec()).unwrap();
    }
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance_append(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![2, 3, 4]);
    p.node.advance_apply_to(3);
    assert_eq!(p.node.raft.raft_log.applied, 3);
    p.node.advance_apply_to(100);
    assert_eq!(
        p.node.raft.raft_log.applied, 4,
        "applied cannot pass what was handed out"
    );
    assert!(!p.node.has_ready());
}

#[test]
fn advance_marks_only_the_readys_own_committed_entries_applied() {
    let mut p = Peer::fresh(&config(1), &[1]);
    p.node.campaign().unwrap();
    let rd = p.ready();
    persist(&p.storage, &rd);
    let light = p.node.advance(rd).unwrap();
    assert_eq!(indexes(light.committed_entries()), vec![1]);
    assert_eq!(
        p.node.raft.raft_log.applied, 0,
        "the LightReady's entries are applied only when advance_apply says so"
    );
    p.node.advance_apply();
    assert_eq!(p.node.raft.raft_log.applied, 1);
}

#[test]
fn light_ready_commit_index_is_none_when_commit_did_not_move() {
    let mut c = elected_cluster();
    c.peer(1).node.propose(vec![], b"x".to_vec()).unwrap();
    let rd = c.peer(1).ready();
    let storage = c.peer(1).storage.clone();
    persist(&storage, &rd);
    let light = c.peer(1).node.advance(rd).unwrap();
    assert_eq!(
        light.commit_index(),
        None,
        "the leader alone is no quorum of three"
    );
    assert!(light.committed_entries().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Paging committed entries.
// ---------------------------------------------------------------------------------------------

/// Hands out every committed entry of `p` page by page; returns the pages.
fn collect_pages(p: &mut Peer) -> Vec<Vec<Entry>> {
    let mut pages = Vec::new();
    while p.node.has_ready() {
        let rd = p.ready();
        let page = rd.committed_entries().to_vec();
        persist(&p.storage, &rd);
        if !page.is_empty() {
            pages.push(page);
        }
        let light = p.node.advance(rd).unwrap();
        persist_light(&p.storage, &light);
        if !light.committed_entries().is_empty() {
            pages.push(light.committed_entries().to_vec());
        }
        p.node.advance_apply();
    }
    pages
}

#[test]
fn max_committed_size_per_ready_pages_committed_entries() {
    let data = vec![7u8; 100];
    let one = entry_size(&ent(2, 1, &data));
    let limit = 2 * one + one / 2; // two entries fit, three do not
    let cfg = Config {
        max_committed_size_per_ready: limit,
        ..config(1)
    };
    let mut p = Peer::fresh(&cfg, &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for _ in 0..9 {
        p.node.propose(vec![], data.clone()).unwrap();
    }
    let pages = collect_pages(&mut p);
    let all: Vec<u64> = pages.iter().flat_map(|pg| indexes(pg)).collect();
    assert_eq!(
        all,
        (2..=10).collect::<Vec<u64>>(),
        "every entry once, in order"
    );
    assert!(
        pages.len() >= 5,
        "9 entries of which 2 fit a page need at least 5 pages, got {}",
        pages.len()
    );
    for pg in &pages {
        let size: u64 = pg.iter().map(entry_size).sum();
        assert!(
            pg.len() == 1 || size <= limit,
            "a page of {} entries has {size} bytes, over the limit {limit}",
            pg.len()
        );
    }
}

#[test]
fn max_committed_size_per_ready_below_one_entry_still_hands_out_one_entry_per_page() {
    let cfg = Config {
        max_committed_size_per_ready: 1,
        ..config(1)
    };
    let mut p = Peer::fresh(&cfg, &[1]);
    p.node.campaign().unwrap();
    p.drain();
    for i in 0..6u8 {
        p.node.propose(vec![], vec![i; 10]).unwrap();
    }
    let pages = collect_pages(&mut p);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1; 6],
        "each page holds exactly one entry"
    );
    assert_eq!(
        pages.iter().flat_map(|pg| indexes(pg)).collect::<Vec<_>>(),
        (2..=7).collect::<Vec<u64>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Restarts.
// ---------------------------------------------------------------------------------------------

/// A 3-node network where node 1 leads term 1 and indexes 1..=6 are committed and applied
/// everywhere (the empty entry and "p1".."p5").
fn committed_network() -> Network {
    let mut net = Network::new(3);
    net.campaign(1);
    for i in 1..=5 {
        net.propose(1, format!("p{i}").as_bytes()).unwrap();
    }
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_index, 6, "node {id}");
        assert_eq!(
            net.node(id).storage.rl().hard_state().commit,
            6,
            "node {id}"
        );
    }
    net
}

fn restart_from(storage: &MemStorage, id: u64, applied: u64) -> Peer {
    let cfg = Config {
        applied,
        ..default_config(id)
    };
    let mut p = Peer::start(&cfg, storage.clone());
    p.handed_out = storage.entries(1, applied + 1, NO_LIMIT).unwrap();
    p
}

#[test]
fn restart_restores_term_vote_commit_and_log() {
    let net = committed_network();
    for id in 1..=3 {
        let p = restart_from(&net.node(id).storage, id, 0);
        let raft = &p.node.raft;
        assert_eq!(raft.term, 1, "node {id} term");
        assert_eq!(raft.vote, 1, "node {id} voted for 1 in term 1");
        assert_eq!(raft.raft_log.committed, 6, "node {id} commit");
        assert_eq!(raft.raft_log.last_index(), 6, "node {id} last index");
        assert_eq!(raft.raft_log.last_term(), 1, "node {id} last term");
        assert_eq!(
            raft.state,
            StateRole::Follower,
            "node {id} restarts as a follower"
        );
        assert_eq!(
            raft.leader_id, 0,
            "node {id} knows no leader after a restart"
        );
        assert_eq!(raft.hard_state(), hs(1, 1, 6));
    }
}

#[test]
fn restart_with_applied_zero_hands_out_committed_entries_again_exactly_once() {
    let net = committed_network();
    let mut p = restart_from(&net.node(2).storage, 2, 0);
    assert!(p.node.has_ready());
    let rd = p.ready();
    assert_eq!(rd.number(), 1, "a new RawNode numbers its Readys from 1");
    assert_eq!(indexes(rd.committed_entries()), (1..=6).collect::<Vec<_>>());
    assert_eq!(
        payloads(rd.committed_entries()),
        net.node(2).applied_data(),
        "the same entries as before the restart"
    );
    assert_eq!(rd.hard_state(), None, "the restored hard state is not news");
    assert_eq!(rd.soft_state(), None);
    assert!(rd.entries().is_empty());
    assert!(!rd.must_sync());
    assert!(rd.messages().is_empty() && rd.persisted_messages().is_empty());
    p.process(rd);
    assert!(!p.node.has_ready(), "nothing is handed out twice");
    assert_eq!(p.handed_out.len(), 6);
}

#[test]
fn restart_does_not_hand_out_entries_at_or_below_applied() {
    let net = committed_network();
    let mut p = restart_from(&net.node(3).storage, 3, 4);
    let rd = p.ready();
    assert_eq!(indexes(rd.committed_entries()), vec![5, 6]);
    p.process(rd);
    assert!(!p.node.has_ready());
    assert_eq!(p.node.raft.raft_log.applied, 6);
}

#[test]
fn restart_with_everything_applied_has_no_ready() {
    let net = committed_network();
    let p = restart_from(&net.node(1).storage, 1, 6);
    assert!(
        !p.node.has_ready(),
        "a node restarted with everything applied has nothing to do"
    );
    assert_eq!(p.node.raft.raft_log.applied, 6);
}

#[test]
fn restart_pages_committed_entries_again_with_max_committed_size_per_ready() {
    let net = committed_network();
    let cfg = Config {
        max_committed_size_per_ready: 1,
        ..default_config(2)
    };
    let mut p = Peer::start(&cfg, net.node(2).storage.clone());
    let pages = collect_pages(&mut p);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![1; 6]);
    assert_eq!(
        pages.iter().flat_map(|pg| indexes(pg)).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<u64>>()
    );
}

#[test]
fn restart_with_applied_beyond_commit_is_a_config_error_naming_applied() {
    let net = committed_network();
    let cfg = Config {
        applied: 7,
        ..default_config(1)
    };
    match RawNode::new(&cfg, net.node(1).storage.clone(), &logger()).err() {
        Some(Error::ConfigInvalid { field, .. }) => assert_eq!(field, "applied"),
        other => panic!("expected ConfigInvalid naming `applied`, got {other:?}"),
    }
    // A fresh storage has commit 0: any positive `applied` is beyond it.
    let fresh = MemStorage::new_with_conf_state(conf_state(vec![1], vec![]));
    let cfg = Config {
        applied: 1,
        ..default_config(1)
    };
    assert!(matches!(
        RawNode::new(&cfg, fresh, &logger()).err(),
        Some(Error::ConfigInvalid {
            field: "applied",
            ..
        })
    ));
}

#[test]
fn restarted_voter_keeps_its_vote_for_the_term() {
    let net = committed_network();
    let mut p = restart_from(&net.node(2).storage, 2, 6);
    // §5.2: at most one vote per term, even across a crash.
    p.step(vote_request(3, 2, 1, (6, 1)));
    let rd = p.ready();
    let replies = rd.persisted_messages().to_vec();
    assert_eq!(
        types(&replies),
        vec![(MessageType::MsgRequestVoteResponse, 3)]
    );
    assert!(
        replies[0].reject,
        "node 2 voted for 1 in term 1 before restarting"
    );
    p.process(rd);
    // The same candidate in a new term gets the vote: the refusal above was about the term.
    p.step(vote_request(3, 2, 2, (6, 1)));
    let rd = p.ready();
    assert!(!rd.persisted_messages()[0].reject);
    assert_eq!(rd.hard_state(), Some(&hs(2, 3, 6)));
}

/// Ticks the leader until node `id` applied as much as the leader, at most `max` times.
fn tick_leader_until_caught_up(net: &mut Network, leader: u64, id: u64, max: usize) -> bool {
    for _ in 0..max {
        if net.node(id).applied_index == net.node(leader).applied_index {
            return true;
        }
        net.tick(leader);
    }
    net.node(id).applied_index == net.node(leader).applied_index
}

#[test]
fn restarted_follower_rejoins_and_catches_up_on_new_proposals() {
    let mut net = committed_network();
    net.isolate(3);
    for d in ["a", "b", "c"] {
        net.propose(1, d.as_bytes()).unwrap();
    }
    assert_eq!(net.node(1).applied_index, 9);
    assert_eq!(net.node(3).applied_index, 6);
    net.recover();
    let applied = net.node(3).applied_index;
    net.restart(
        3,
        &Config {
            applied,
            ..default_config(3)
        },
    );
    assert_eq!(net.node(3).raw.raft.raft_log.committed, 6);
    net.propose(1, b"d").unwrap();
    assert!(tick_leader_until_caught_up(&mut net, 1, 3, 20));
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
    assert_eq!(net.node(3).applied_index, 10);
}

#[test]
fn restarted_follower_rejoins_and_catches_up_on_heartbeats_alone() {
    let mut net = committed_network();
    net.isolate(3);
    for d in ["a", "b", "c"] {
        net.propose(1, d.as_bytes()).unwrap();
    }
    net.recover();
    let applied = net.node(3).applied_index;
    net.restart(
        3,
        &Config {
            applied,
            ..default_config(3)
        },
    );
    // No new proposal: an idle leader must still repair a follower whose appends were lost
    // (etcd and raft-rs answer a lagging heartbeat response with an append, even an empty one).
    assert!(
        tick_leader_until_caught_up(&mut net, 1, 3, 30),
        "node 3 is stuck at {} while the leader applied {}",
        net.node(3).applied_index,
        net.node(1).applied_index
    );
    assert_eq!(net.node(3).applied_data(), net.node(1).applied_data());
}

#[test]
fn restarted_leader_rejoins_as_follower_and_catches_up() {
    let mut net = committed_network();
    let applied = net.node(1).applied_index;
    net.restart(
        1,
        &Config {
            applied,
            ..default_config(1)
        },
    );
    assert_eq!(net.node(1).state(), StateRole::Follower);
    assert_eq!(net.node(1).term(), 1);
    net.campaign(2);
    assert_eq!(net.leader(), Some(2));
    assert_eq!(net.node(1).raw.raft.leader_id, 2);
    net.propose(2, b"after").unwrap();
    assert!(tick_leader_until_caught_up(&mut net, 2, 1, 20));
    let expected: Vec<Vec<u8>> = ["p1", "p2", "p3", "p4", "p5", "after"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    for id in 1..=3 {
        assert_eq!(net.node(id).applied_data(), expected, "node {id}");
    }
}

#[test]
fn restarted_node_in_a_hand_driven_cluster_continues_without_duplicates() {
    let mut c = elected_cluster();
    for i in 0..10u8 {
        c.peer(1).node.propose(vec![], vec![i]).unwrap();
    }
    c.stabilize();
    c.restart(2);
    // `Peer::restart` passes applied = what node 2 handed out, so nothing may come again.
    assert!(!c.peer(2).node.has_ready());
    for i in 10..20u8 {
        c.peer(1).node.propose(vec![], vec![i]).unwrap();
    }
    c.stabilize();
    for _ in 0..5 {
        c.peer(1).node.tick();
        c.stabilize();
    }
    let leader_log = c.peer(1).handed_out.clone();
    assert_eq!(leader_log.len(), 21);
    assert_eq!(c.peer(2).handed_out, leader_log);
}

// ---------------------------------------------------------------------------------------------
// Config validation.
// ---------------------------------------------------------------------------------------------

fn assert_config_invalid(cfg: Config, expected_field: &str) {
    match cfg.validate() {
        Err(Error::ConfigInvalid { field, rule }) => {
            assert_eq!(
                field, expected_field,
                "validate named the wrong field ({rule})"
            )
        }
        other => {
            panic!("validate: expected ConfigInvalid naming `{expected_field}`, got {other:?}")
        }
    }
    let storage = MemStorage::new_with_conf_state(conf_state(vec![1], vec![]));
    match RawNode::new(&cfg, storage, &logger()).err() {
        Some(Error::ConfigInvalid { field, .. }) => assert_eq!(field, expected_field),
        other => {
            panic!("RawNode::new: expected ConfigInvalid naming `{expected_field}`, got {other:?}")
        }
    }
}

#[test]
fn config_defaults_with_a_node_id_are_valid() {
    assert_eq!(Config::new(1).validate(), Ok(()));
    assert_eq!(config(1).validate(), Ok(()));
    assert_eq!(default_config(1).validate(), Ok(()));
}

#[test]
fn config_rejects_id_zero() {
    assert_config_invalid(Config::default(), "id");
}

#[test]
fn config_rejects_zero_heartbeat_tick() {
    assert_config_invalid(
        Config {
            heartbeat_tick: 0,
            ..Config::new(1)
        },
        "heartbeat_tick",
    );
}

#[test]
fn config_rejects_election_tick_not_above_heartbeat_tick() {
    for election_tick in [1, 2] {
        assert_config_invalid(
            Config {
                election_tick,
                heartbeat_tick: 2,
                ..Config::new(1)
            },
            "election_tick",
        );
    }
    assert_eq!(
        Config {
            election_tick: 3,
            heartbeat_tick: 2,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_min_election_tick_below_election_tick() {
    assert_config_invalid(
        Config {
            min_election_tick: 9,
            ..Config::new(1)
        },
        "min_election_tick",
    );
}

#[test]
fn config_rejects_max_election_tick_not_above_min() {
    assert_config_invalid(
        Config {
            min_election_tick: 15,
            max_election_tick: 15,
            ..Config::new(1)
        },
        "max_election_tick",
    );
    // Only max set, at election_tick: the effective minimum (election_tick) is not below it.
    assert_config_invalid(
        Config {
            max_election_tick: 10,
            ..Config::new(1)
        },
        "max_election_tick",
    );
    assert_eq!(
        Config {
            min_election_tick: 15,
            max_election_tick: 16,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_zero_max_inflight_msgs() {
    assert_config_invalid(
        Config {
            max_inflight_msgs: 0,
            ..Config::new(1)
        },
        "max_inflight_msgs",
    );
}

#[test]
fn config_rejects_lease_based_reads_without_check_quorum() {
    assert_config_invalid(
        Config {
            read_only_option: ReadOnlyOption::LeaseBased,
            ..Config::new(1)
        },
        "read_only_option",
    );
    assert_eq!(
        Config {
            read_only_option: ReadOnlyOption::LeaseBased,
            check_quorum: true,
            ..Config::new(1)
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn config_rejects_zero_max_uncommitted_size() {
    assert_config_invalid(
        Config {
            max_uncommitted_size: 0,
            ..Config::new(1)
        },
        "max_uncommitted_size",
    );
}

#[test]
fn config_rejects_zero_max_committed_size_per_ready() {
    assert_config_invalid(
        Config {
            max_committed_size_per_ready: 0,
            ..Config::new(1)
        },
        "max_committed_size_per_ready",
    );
}

// ---------------------------------------------------------------------------------------------
// RawNode::step refusals.
// ---------------------------------------------------------------------------------------------

const LOCAL_ONLY: [MessageType; 5] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
];

/// Steps `m` into node `id` expecting `expected`, and checks nothing changed.
fn assert_refused(c: &mut Cluster, id: u64, m: Message, expected: Error) {
    let node = &mut c.peer(id).node;
    let before = (
        node.raft.hard_state(),
        node.raft.soft_state(),
        node.raft.raft_log.last_index(),
    );
    assert!(
        !node.has_ready(),
        "node {id} should be idle before the test"
    );
    let desc = describe_message(&m);
    assert_eq!(node.step(m), Err(expected), "node {id} stepping {desc}");
    let after = (
        node.raft.hard_state(),
        node.raft.soft_state(),
        node.raft.raft_log.last_index(),
    );
    assert_eq!(
        before, after,
        "node {id}: a refused {desc} changed the state"
    );
    assert!(
        !node.has_ready(),
        "node {id}: a refused {desc} produced work"
    );
}

#[test]
fn step_refuses_local_only_message_types_from_the_network() {
    let mut c = elected_cluster();
    for t in LOCAL_ONLY {
        // On the leader (MsgBeat would broadcast heartbeats, MsgCheckQuorum could depose it) and
        // on a follower (MsgHup would start an election).
        for (id, from) in [(1, 2), (2, 1)] {
            let term = c.peer(id).node.raft.term;
            assert_refused(&mut c, id, msg(t, from, id, term), Error::StepLocalMsg(t));
            assert_refused(&mut c, id, msg(t, 0, 0, 0), Error::StepLocalMsg(t));
        }
    }
}

#[test]
fn step_refuses_responses_from_nodes_outside_the_configuration() {
    let mut c = elected_cluster();
    for t in [
        MessageType::MsgAppendResponse,
        MessageType::MsgHeartbeatResponse,
        MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVoteResponse,
    ] {
        for id in [1, 2] {
            let expected = Error::StepPeerNotFound {
                msg_type: t,
                from: 9,
            };
            let m = Message {
                index: 1,
                ..msg(t, 9, id, 1)
            };
            assert_refused(&mut c, id, m, expected);
        }
    }
}

#[test]
fn step_refuses_a_vote_response_from_outside_the_configuration_while_campaigning() {
    let mut c = Cluster::new(3, config);
    c.peer(1).node.campaign().unwrap();
    let rd = c.peer(1).ready();
    c.peer(1).process(rd);
    assert_refused(
        &mut c,
        1,
        msg(MessageType::MsgRequestVoteResponse, 9, 1, 1),
        Error::StepPeerNotFound {
            msg_type: MessageType::MsgRequestVoteResponse,
            from: 9,
        },
    );
    assert_eq!(
        c.peer(1).node.raft.state,
        StateRole::Candidate,
        "an outsider's vote must not count"
    );
}

#[test]
fn step_refuses_unknown_message_type_values() {
    let mut c = elected_cluster();
    for value in [19, 99, -1, i32::MAX, i32::MIN] {
        for id in [1, 2] {
            let m = Message {
                msg_type: value,
                from: 3,
                to: id,
                term: 1,
                ..Default::default()
            };
            assert_refused(&mut c, id, m, Error::UnknownMessageType(value));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded election timeouts.
// ---------------------------------------------------------------------------------------------

fn timeout_draws(cfg: &Config, n: usize) -> Vec<usize> {
    let mut p = Peer::fresh(cfg, &[1, 2, 3]);
    let mut draws = vec![p.node.raft.randomized_election_timeout()];
    for _ in 1..n {
        p.node.raft.reset_randomized_election_timeout();
        draws.push(p.node.raft.randomized_election_timeout());
    }
    draws
}

fn seeded(id: u64, seed: Option<u64>) -> Config {
    Config { seed, ..config(id) }
}

/// The number of ticks between successive campaigns of node `cfg.id` (which never wins: nobody
/// answers), `rounds` times.
fn ticks_between_campaigns(cfg: &Config, rounds: usize) -> Vec<usize> {
    let mut p = Peer::fresh(cfg, &[1, 2, 3]);
    let mut out = Vec::new();
    let mut ticks = 0;
    while out.len() < rounds {
        let term = p.node.raft.term;
        p.node.tick();
        ticks += 1;
        if p.node.raft.term != term {
            out.push(ticks);
            ticks = 0;
        }
        assert!(ticks <= 100, "node {} never campaigned", cfg.id);
    }
    out
}

#[test]
fn same_seed_gives_same_randomized_election_timeouts() {
    let a = timeout_draws(&seeded(1, Some(42)), 50);
    let b = timeout_draws(&seeded(2, Some(42)), 50);
    assert_eq!(
        a, b,
        "nodes 1 and 2 share a seed but drew different timeouts"
    );
    let c = timeout_draws(&seeded(1, Some(43)), 50);
    assert_ne!(a, c, "a different seed should give a different sequence");
}

#[test]
fn same_seed_campaigns_after_the_same_number_of_ticks() {
    let a = ticks_between_campaigns(&seeded(1, Some(7)), 8);
    let b = ticks_between_campaigns(&seeded(3, Some(7)), 8);
    assert_eq!(a, b);
    let c = ticks_between_campaigns(&seeded(1, Some(7)), 8);
    assert_eq!(a, c, "a rerun replays the same timeouts");
}

#[test]
fn config_seed_overrides_the_default_derived_from_id() {
    let default_1 = timeout_draws(&seeded(1, None), 50);
    let default_2 = timeout_draws(&seeded(2, None), 50);
    assert_ne!(
        default_1, default_2,
        "different ids should derive different seeds"
    );
    // Node 1 given node 2's derived seed draws node 2's sequence.
    let borrowed = Config::new(2).effective_seed();
    assert_eq!(seeded(1, Some(borrowed)).effective_seed(), borrowed);
    assert_eq!(timeout_draws(&seeded(1, Some(borrowed)), 50), default_2);
    assert_eq!(
        Config::new(5).effective_seed(),
        seeded(5, None).effective_seed()
    );
}

#[test]
fn randomized_election_timeouts_stay_within_min_and_max() {
    for draw in timeout_draws(&config(1), 200) {
        assert!(
            (10..20).contains(&draw),
            "default range [10, 20): drew {draw}"
        );
    }
    let cfg = Config {
        min_election_tick: 12,
        max_election_tick: 14,
        ..config(1)
    };
    let draws = timeout_draws(&cfg, 200);
    assert!(
        draws.iter().all(|d| (12..14).contains(d)),
        "draws: {draws:?}"
    );
    assert!(
        draws.contains(&12) && draws.contains(&13),
        "both values of [12, 14) should be drawn: {draws:?}"
    );
}
