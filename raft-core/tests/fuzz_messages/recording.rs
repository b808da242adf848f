//! Recording: a short deterministic simulation of a 3-voter cluster (plus node 4, which joins, is
//! promoted and removed) that writes down each node's life, the inputs a replay gives a fresh
//! node.

use raft_core::eraftpb::{ConfChange, ConfChangeType, Message};
use raft_core::{SnapshotStatus, StateRole};
use raft_testkit::{config, Flags, Peer};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use storage_mem::{conf_state, MemStorage};

/// One input in a node's life.
#[derive(Debug, Clone)]
pub enum Event {
    Tick,
    Step(Message),
    Ready,
    Propose(Vec<u8>),
    Campaign,
    ReadIndex(Vec<u8>),
    ProposeConfChange(ConfChange),
    Transfer(u64),
    Compact,
    ReportUnreachable(u64),
    ReportSnapshot(u64, bool),
}

/// Term, vote, role, leader, commit, last index, last term, applied.
pub type Summary = (u64, u64, StateRole, u64, u64, u64, u64, u64);

/// Node `id` of a group bootstrapped as voters {1, 2, 3} (node 4 starts outside it).
pub fn node(id: u64, flags: Flags) -> Peer {
    let store = MemStorage::new_with_conf_state(conf_state([1, 2, 3], []));
    Peer::new(&config(id, flags), store)
}

/// Performs a non-step event on `p`; the messages a Ready sends, or what made the Ready
/// impossible to persist or advance.
pub fn perform(p: &mut Peer, ev: &Event) -> Result<Vec<Message>, String> {
    match ev {
        Event::Tick => p.raw.tick(),
        Event::Step(_) => unreachable!("steps are performed by the caller"),
        Event::Ready => return p.handle_ready(),
        Event::Propose(data) => {
            let _ = p.raw.propose(vec![], data.clone());
        }
        Event::Campaign => {
            let _ = p.raw.campaign();
        }
        Event::ReadIndex(ctx) => {
            let _ = p.raw.read_index(ctx.clone());
        }
        Event::ProposeConfChange(cc) => {
            let _ = p.raw.propose_conf_change(vec![], cc.clone());
        }
        Event::Transfer(to) => p.raw.transfer_leader(*to),
        Event::Compact => p.compact(),
        Event::ReportUnreachable(id) => p.raw.report_unreachable(*id),
        Event::ReportSnapshot(id, ok) => {
            let status = if *ok {
                SnapshotStatus::Finish
            } else {
                SnapshotStatus::Failure
            };
            p.raw.report_snapshot(*id, status);
        }
    }
    Ok(Vec::new())
}

/// What a replay of `p`'s life must reproduce.
pub fn summary(p: &Peer) -> Summary {
    let r = &p.raw.raft;
    (
        r.term,
        r.vote,
        r.state,
        r.leader_id,
        r.raft_log.committed,
        r.raft_log.last_index(),
        r.raft_log.last_term(),
        p.applied,
    )
}

/// A recorded run: each node's life, and each node's state at the end.
pub struct Trace {
    /// The flags every node ran with.
    pub flags: Flags,
    /// The seed of the schedule.
    pub seed: u64,
    /// Each node's inputs, in order.
    pub lives: BTreeMap<u64, Vec<Event>>,
    /// Each node's state at the end.
    pub finals: BTreeMap<u64, Summary>,
}

/// The schedule's generator: `rand`'s Xoshiro256++, which gives the same runs on every machine.
struct Rng(Xoshiro256PlusPlus);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

pub const NODES: [u64; 4] = [1, 2, 3, 4];
const ROUNDS: usize = 6_000;

struct Sim {
    peers: BTreeMap<u64, Peer>,
    lives: BTreeMap<u64, Vec<Event>>,
    net: Vec<Message>,
    rng: Rng,
    /// A node cut off from everyone until the given round.
    isolated: Option<(u64, usize)>,
}

impl Sim {
    fn act(&mut self, id: u64, ev: Event) {
        self.lives.get_mut(&id).expect("node").push(ev.clone());
        let p = self.peers.get_mut(&id).expect("node");
        match ev {
            Event::Step(m) => {
                let _ = p.raw.step(m);
            }
            ev => {
                let out = perform(p, &ev).expect("the recording run handles its Readys");
                self.net.extend(out);
            }
        }
    }

    fn leader(&self) -> Option<u64> {
        self.peers
            .values()
            .filter(|p| p.raw.raft.state == StateRole::Leader)
            .max_by_key(|p| p.raw.raft.term)
            .map(Peer::id)
    }

    fn random_node(&mut self) -> u64 {
        NODES[self.rng.below(NODES.len())]
    }
}

fn record(flags: Flags, seed: u64) -> Trace {
    let mut sim = Sim {
        peers: NODES.iter().map(|&id| (id, node(id, flags))).collect(),
        lives: NODES.iter().map(|&id| (id, Vec::new())).collect(),
        net: Vec::new(),
        rng: Rng(Xoshiro256PlusPlus::seed_from_u64(seed)),
        isolated: None,
    };
    for round in 0..ROUNDS {
        if sim.isolated.is_some_and(|(_, until)| until <= round) {
            sim.isolated = None;
        }
        // Weights per 1000: mostly ticks, deliveries and Readys, so that the cluster makes
        // progress between the rarer disruptions.
        let roll = sim.rng.below(1000);
        match roll {
            0..=199 => {
                let id = sim.random_node();
                sim.act(id, Event::Tick);
            }
            200..=659 => {
                if sim.net.is_empty() {
                    continue;
                }
                // Any message in flight: delivery out of order.
                let i = sim.rng.below(sim.net.len());
                let m = sim.net.swap_remove(i);
                if sim
                    .isolated
                    .is_some_and(|(id, _)| id == m.from || id == m.to)
                {
                    continue;
                }
                if sim.rng.below(40) == 0 {
                    sim.net.push(m.clone());
                }
                if sim.peers.contains_key(&m.to) {
                    sim.act(m.to, Event::Step(m));
                }
            }
            660..=889 => {
                let id = sim.random_node();
                sim.act(id, Event::Ready);
            }
            890..=939 => {
                let id = sim.random_node();
                let data = format!("p{round}").into_bytes();
                sim.act(id, Event::Propose(data));
            }
            940..=959 => {
                let id = sim.random_node();
                let ctx = format!("r{round}").into_bytes();
                sim.act(id, Event::ReadIndex(ctx));
            }
            960..=967 => {
                // Node 4 joins as a learner, is promoted, is removed, and so on.
                if let Some(l) = sim.leader() {
                    let prs = &sim.peers[&l].raw.raft.prs;
                    let change_type = match prs.get(4) {
                        None => ConfChangeType::AddLearnerNode,
                        Some(pr) if pr.is_learner => ConfChangeType::AddNode,
                        Some(_) => ConfChangeType::RemoveNode,
                    };
                    let cc = ConfChange {
                        change_type: change_type as i32,
                        node_id: 4,
                        ..Default::default()
                    };
                    sim.act(l, Event::ProposeConfChange(cc));
                }
            }
            968..=969 => {
                // Asked of any node: a follower forwards it to the leader.
                let (id, to) = (sim.random_node(), sim.random_node());
                sim.act(id, Event::Transfer(to));
            }
            970..=984 => {
                let id = sim.random_node();
                sim.act(id, Event::Compact);
            }
            985..=988 => {
                if sim.isolated.is_none() {
                    let id = sim.random_node();
                    let len = 100 + sim.rng.below(300);
                    sim.isolated = Some((id, round + len));
                }
            }
            989..=990 => {
                if let Some(l) = sim.leader() {
                    let id = sim.random_node();
                    sim.act(l, Event::ReportUnreachable(id));
                }
            }
            991..=992 => {
                if let Some(l) = sim.leader() {
                    let id = sim.random_node();
                    let ok = sim.rng.below(2) == 0;
                    sim.act(l, Event::ReportSnapshot(id, ok));
                }
            }
            993 => {
                let id = sim.random_node();
                sim.act(id, Event::Campaign);
            }
            _ => {
                if !sim.net.is_empty() {
                    let i = sim.rng.below(sim.net.len());
                    sim.net.swap_remove(i);
                }
            }
        }
        // A bounded network: the oldest messages are lost first.
        if sim.net.len() > 150 {
            sim.net.drain(..50);
        }
    }
    let finals = sim.peers.iter().map(|(id, p)| (*id, summary(p))).collect();
    Trace {
        flags,
        seed,
        lives: sim.lives,
        finals,
    }
}

/// The recorded runs: every flag combination, two seeds each.
pub fn traces() -> &'static [Trace] {
    static TRACES: OnceLock<Vec<Trace>> = OnceLock::new();
    TRACES.get_or_init(|| {
        Flags::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, &flags)| {
                [1u64, 2].map(|s| record(flags, 0x5EED_0000 + 16 * i as u64 + s))
            })
            .collect()
    })
}

/// Every message delivered in the recorded runs.
pub fn recorded_messages() -> &'static [Message] {
    static MSGS: OnceLock<Vec<Message>> = OnceLock::new();
    MSGS.get_or_init(|| {
        traces()
            .iter()
            .flat_map(|t| t.lives.values().flatten())
            .filter_map(|ev| match ev {
                Event::Step(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    })
}
