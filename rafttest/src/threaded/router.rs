//! The router: the shared object every driver thread sends its messages through, and the
//! network thread that hands delayed messages to their destination's inbox when their deadline
//! comes.

use super::inbox::{Delivery, Input};
use super::NetworkStats;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::SnapshotStatus;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The faults of one directed link.
#[derive(Debug, Clone, Copy, Default)]
struct LinkFaults {
    /// The probability that a message is lost.
    drop: f64,
    /// The range a message's delay is drawn from, when delayed at all.
    delay: Option<(Duration, Duration)>,
}

/// A message held by the network until `deliver_at`.
struct InFlight {
    deliver_at: Instant,
    /// Breaks ties so that messages due at the same instant keep their sending order.
    seq: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at, self.seq).cmp(&(other.deliver_at, other.seq))
    }
}

struct RouterState {
    inboxes: HashMap<u64, Sender<Input>>,
    links: HashMap<(u64, u64), LinkFaults>,
    rng: Xoshiro256PlusPlus,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: NetworkStats,
    shutdown: bool,
}

impl RouterState {
    /// Puts `m` in its destination's inbox now, telling a snapshot's sender how delivery went.
    fn deliver(&mut self, m: Message) {
        let (from, to) = (m.from, m.to);
        let is_snapshot = m.msg_type == MessageType::MsgSnapshot as i32;
        let delivered = match self.inboxes.get(&to) {
            Some(inbox) => inbox.send(Input::Delivery(Delivery::Msg(m))).is_ok(),
            None => false,
        };
        if delivered {
            self.stats.delivered += 1;
        } else {
            self.stats.dropped += 1;
        }
        if is_snapshot {
            // As an application's transport would: the leader learns whether the snapshot made it.
            let status = if delivered {
                SnapshotStatus::Finish
            } else {
                SnapshotStatus::Failure
            };
            if let Some(sender) = self.inboxes.get(&from) {
                let _ = sender.send(Input::Delivery(Delivery::SnapshotStatus(to, status)));
            }
        }
    }
}

/// Routes messages between node inboxes, applying per-link loss and delay.
pub(crate) struct Router {
    state: Mutex<RouterState>,
    /// Wakes the network thread when an earlier deadline appears or on shutdown.
    wake: Condvar,
}

impl Router {
    pub(crate) fn new(seed: u64) -> Router {
        Router {
            state: Mutex::new(RouterState {
                inboxes: HashMap::new(),
                links: HashMap::new(),
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
                in_flight: BinaryHeap::new(),
                seq: 0,
                stats: NetworkStats::default(),
                shutdown: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        // A panicking node thread must not take the whole network down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `inbox` the place messages to `id` go (replacing the inbox of a stopped incarnation).
    pub(crate) fn register(&self, id: u64, inbox: Sender<Input>) {
        self.lock().inboxes.insert(id, inbox);
    }

    /// Sends `m`: drops it with its link's probability, else delivers it now or holds it until a
    /// deadline drawn from its link's delay range.
    pub(crate) fn send(&self, m: Message) {
        let mut st = self.lock();
        let faults = st.links.get(&(m.from, m.to)).copied().unwrap_or_default();
        if faults.drop > 0.0 && st.rng.random_range(0.0..1.0) < faults.drop {
            st.stats.dropped += 1;
            if m.msg_type == MessageType::MsgSnapshot as i32 {
                if let Some(sender) = st.inboxes.get(&m.from) {
                    let failure = Delivery::SnapshotStatus(m.to, SnapshotStatus::Failure);
                    let _ = sender.send(Input::Delivery(failure));
                }
            }
            return;
        }
        match faults.delay {
            None => st.deliver(m),
            Some((min, max)) => {
                let nanos = st
                    .rng
                    .random_range(min.as_nanos() as u64..=max.as_nanos() as u64);
                let deliver_at = Instant::now() + Duration::from_nanos(nanos);
                let seq = st.seq;
                st.seq += 1;
                st.stats.delayed += 1;
                let earliest = st
                    .in_flight
                    .peek()
                    .is_none_or(|Reverse(f)| deliver_at < f.deliver_at);
                st.in_flight.push(Reverse(InFlight {
                    deliver_at,
                    seq,
                    msg: m,
                }));
                if earliest {
                    self.wake.notify_one();
                }
            }
        }
    }

    /// Sends every message of `msgs`.
    pub(crate) fn send_all(&self, msgs: Vec<Message>) {
        for m in msgs {
            self.send(m);
        }
    }

    pub(crate) fn set_drop(&self, from: u64, to: u64, p: f64) {
        self.lock().links.entry((from, to)).or_default().drop = p;
    }

    pub(crate) fn set_delay(&self, from: u64, to: u64, range: Option<(Duration, Duration)>) {
        self.lock().links.entry((from, to)).or_default().delay = range;
    }

    pub(crate) fn heal(&self) {
        self.lock().links.clear();
    }

    pub(crate) fn stats(&self) -> NetworkStats {
        self.lock().stats
    }

    /// Stops the network thread; messages still held are lost.
    pub(crate) fn shutdown(&self) {
        let mut st = self.lock();
        st.shutdown = true;
        st.in_flight.clear();
        st.inboxes.clear();
        self.wake.notify_all();
    }

    /// The network thread: delivers held messages when they fall due, until shutdown.
    pub(crate) fn run(&self) {
        let mut st = self.lock();
        loop {
            if st.shutdown {
                return;
            }
            let now = Instant::now();
            while st
                .in_flight
                .peek()
                .is_some_and(|Reverse(f)| f.deliver_at <= now)
            {
                let Reverse(f) = st.in_flight.pop().expect("peeked");
                st.deliver(f.msg);
            }
            // Sleep until the next deadline; a new earlier one or shutdown wakes us sooner.
            let wait = st
                .in_flight
                .peek()
                .map_or(Duration::from_millis(100), |Reverse(f)| {
                    f.deliver_at.saturating_duration_since(now)
                });
            st = self
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
