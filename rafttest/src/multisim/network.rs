//! The network between the nodes: encoded envelopes in flight, lost, duplicated and reordered
//! with the seed's probabilities, and directed links that a partition cuts.

use std::collections::{BTreeSet, VecDeque};

use rand::rngs::Xoshiro256PlusPlus;
use rand::RngExt;

/// An envelope on the wire.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    pub from: u64,
    pub to: u64,
    /// The group of each message inside, for the checker (the receiver decodes the bytes).
    pub groups: Vec<u64>,
    pub bytes: Vec<u8>,
}

/// Envelopes in flight and the links that drop everything.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    pub in_flight: VecDeque<InFlight>,
    /// Directed links (from, to) that drop everything.
    pub cut: BTreeSet<(u64, u64)>,
    /// Envelopes and the messages in them sent so far.
    pub envelopes_sent: u64,
    pub messages_sent: u64,
    pub lost: u64,
    pub duplicated: u64,
}

impl Wire {
    /// Sends an envelope: counted, then lost or duplicated with the given probabilities.
    pub fn send(
        &mut self,
        envelope: InFlight,
        messages: usize,
        loss: f64,
        duplication: f64,
        rng: &mut Xoshiro256PlusPlus,
    ) {
        self.envelopes_sent += 1;
        self.messages_sent += messages as u64;
        if rng.random_bool(loss) {
            self.lost += 1;
            return;
        }
        if rng.random_bool(duplication) {
            self.duplicated += 1;
            self.in_flight.push_back(envelope.clone());
        }
        self.in_flight.push_back(envelope);
    }

    /// Takes the next envelope to deliver: the oldest, or with probability `reordering` a random
    /// one. An envelope on a cut link is dropped (returned as `None` in the second place).
    pub fn take(
        &mut self,
        reordering: f64,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Option<InFlight>> {
        if self.in_flight.is_empty() {
            return None;
        }
        let position = if rng.random_bool(reordering) {
            rng.random_range(0..self.in_flight.len())
        } else {
            0
        };
        let envelope = self.in_flight.remove(position)?;
        if self.cut.contains(&(envelope.from, envelope.to)) {
            return Some(None);
        }
        Some(Some(envelope))
    }
}
