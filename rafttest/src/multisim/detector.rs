//! The application's failure detector: some time after a node crashes or a link is cut, each
//! node that can no longer hear the other reports it down to its driver (`MultiRaft::node_down`),
//! which wakes the sleeping groups that would otherwise never notice (a follower whose leader it
//! was, a leader of which it is a member). Each notice comes in its own time, sometimes late
//! (CockroachDB's node liveness lapses after seconds, not ticks).

use rand::rngs::Xoshiro256PlusPlus;
use rand::RngExt;

/// A notice due: at `event`, node `on` reports node `down` down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Notice {
    pub event: u64,
    pub on: u64,
    pub down: u64,
}

/// Notices not yet delivered, in no particular order.
#[derive(Debug, Default)]
pub(crate) struct Detector {
    pub due: Vec<Notice>,
}

impl Detector {
    /// Schedules node `on` to report `down` some time after `now`: `delay` events give or take,
    /// one notice in four up to ten times later.
    pub fn schedule(
        &mut self,
        now: u64,
        on: u64,
        down: u64,
        delay: u64,
        rng: &mut Xoshiro256PlusPlus,
    ) {
        let wait = if rng.random_bool(0.25) {
            rng.random_range(delay..=delay * 10)
        } else {
            rng.random_range(delay / 2..=delay * 2)
        };
        self.due.push(Notice {
            event: now + wait.max(1),
            on,
            down,
        });
    }

    /// The notices due at or before `now`, in a replayable order; they are removed.
    pub fn take_due(&mut self, now: u64) -> Vec<Notice> {
        let mut due: Vec<Notice> = Vec::new();
        self.due.retain(|notice| {
            if notice.event <= now {
                due.push(*notice);
                false
            } else {
                true
            }
        });
        due.sort();
        due
    }

    /// Every notice still pending, delivered now (the heal phase: time passes until all are due).
    pub fn take_all(&mut self) -> Vec<Notice> {
        let mut due = std::mem::take(&mut self.due);
        due.sort();
        due
    }
}
