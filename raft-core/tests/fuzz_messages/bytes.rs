//! (a) Bytes decoded as a protobuf `Message` (random bytes, and encodings of recorded messages
//! with bytes flipped, inserted, removed or cut): whatever decodes is stepped into a follower, a
//! candidate, a pre-candidate, a leader and a learner, found at the points of the recorded lives
//! where a node is in that role.

use crate::recording::{node, perform, recorded_messages, traces, Event};
use crate::subject::{Subject, STEPPED_BYTES};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message as _;
use raft_core::eraftpb::Message;
use raft_core::StateRole;
use raft_testkit::Peer;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
    Learner,
}

pub const ROLES: [Role; 5] = [
    Role::Follower,
    Role::Candidate,
    Role::PreCandidate,
    Role::Leader,
    Role::Learner,
];

fn role_of(p: &Peer) -> Option<Role> {
    let r = &p.raw.raft;
    let is_learner = r.prs.conf().learners.contains(&r.id);
    match r.state {
        StateRole::Candidate => Some(Role::Candidate),
        StateRole::PreCandidate => Some(Role::PreCandidate),
        // A leader with followers to track.
        StateRole::Leader if r.prs.ids().count() >= 3 => Some(Role::Leader),
        StateRole::Follower if r.leader_id != 0 && is_learner => Some(Role::Learner),
        StateRole::Follower if r.leader_id != 0 && r.raft_log.last_index() > 2 => {
            Some(Role::Follower)
        }
        _ => None,
    }
}

/// A point in a recorded life: (trace, node, number of events replayed).
pub type RolePoint = (usize, u64, usize);

/// Where each role is reached in the recorded lives: (trace, node, events to replay), several
/// per role.
pub fn role_points() -> &'static BTreeMap<Role, Vec<RolePoint>> {
    static POINTS: OnceLock<BTreeMap<Role, Vec<RolePoint>>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut points: BTreeMap<Role, Vec<RolePoint>> = BTreeMap::new();
        for (ti, t) in traces().iter().enumerate() {
            for (&id, life) in &t.lives {
                let mut p = node(id, t.flags);
                let mut last_role = None;
                for (pos, ev) in life.iter().enumerate() {
                    match ev {
                        Event::Step(m) => {
                            let _ = p.raw.step(m.clone());
                        }
                        ev => {
                            perform(&mut p, ev).expect("replay of a recorded life");
                        }
                    }
                    let role = role_of(&p);
                    if role != last_role {
                        if let Some(role) = role {
                            let list = points.entry(role).or_default();
                            if list.len() < 40 {
                                list.push((ti, id, pos + 1));
                            }
                        }
                        last_role = role;
                    }
                }
            }
        }
        points
    })
}

/// Node `id` of trace `ti` after its first `len` events.
fn rebuild(ti: usize, id: u64, len: usize) -> Peer {
    let t = &traces()[ti];
    let mut p = node(id, t.flags);
    for ev in &t.lives[&id][..len] {
        match ev {
            Event::Step(m) => {
                let _ = p.raw.step(m.clone());
            }
            ev => {
                perform(&mut p, ev).expect("replay of a recorded life");
            }
        }
    }
    p
}

#[derive(Debug, Clone)]
pub enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
    Splice(Index, Vec<u8>),
}

#[derive(Debug, Clone)]
pub enum Bytes {
    Random(Vec<u8>),
    Mutated(Index, Vec<ByteEdit>),
}

pub fn bytes_input() -> impl Strategy<Value = Bytes> {
    let edit = prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        2 => any::<Index>().prop_map(ByteEdit::Remove),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..12)).prop_map(|(i, b)| ByteEdit::Splice(i, b)),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..80).prop_map(Bytes::Random),
        4 => (any::<Index>(), vec(edit, 0..4)).prop_map(|(i, e)| Bytes::Mutated(i, e)),
    ]
}

impl Bytes {
    fn render(&self) -> Vec<u8> {
        match self {
            Bytes::Random(b) => b.clone(),
            Bytes::Mutated(i, edits) => {
                let msgs = recorded_messages();
                let mut b = msgs[i.index(msgs.len())].encode_to_vec();
                for e in edits {
                    let n = b.len();
                    match e {
                        ByteEdit::Flip(i, bit) if n > 0 => b[i.index(n)] ^= 1 << bit,
                        ByteEdit::Set(i, v) if n > 0 => b[i.index(n)] = *v,
                        ByteEdit::Insert(i, v) => b.insert(i.index(n + 1), *v),
                        ByteEdit::Remove(i) if n > 0 => {
                            b.remove(i.index(n));
                        }
                        ByteEdit::Truncate(i) if n > 0 => b.truncate(i.index(n)),
                        ByteEdit::Splice(i, v) => {
                            let at = i.index(n + 1);
                            b.splice(at..at, v.iter().copied());
                        }
                        _ => {}
                    }
                }
                b
            }
        }
    }
}

/// Steps whatever decodes into a node in `role`, with a Ready now and then.
pub fn step_bytes(role: Role, fixture: Index, inputs: &[Bytes]) -> Result<(), TestCaseError> {
    let points = &role_points()[&role];
    let (ti, id, len) = points[fixture.index(points.len())];
    let mut s = Subject {
        peer: rebuild(ti, id, len),
        max_term: 0,
    };
    s.check(&|| format!("building the {role:?} fixture"))?;
    for (i, input) in inputs.iter().enumerate() {
        let Ok(m) = Message::decode(input.render().as_slice()) else {
            continue;
        };
        s.step(m, &STEPPED_BYTES)?;
        // Usually push each message's consequences through a Ready; sometimes let them pile up.
        if i % 4 != 3 {
            s.ready()?;
        }
    }
    s.ready()?;
    s.ready()
}
